/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <string.h>

#include "capture.h"
#include "ignore.h"
#include "json.h"
#include "statcache.h"

int sb_capture_exclusions(sb_workspace *w, char *const *excludes, sb_scan_warn_fn warn,
			  void *userdata, sb_ignore **ret, sb_error *err)
{
	_cleanup_(sb_ignore_freep) sb_ignore *ign = NULL;
	int r = sb_ignore_new(&ign);
	if (r < 0)
		return r;
	for (char *const *p = excludes; p && *p; p++) {
		r = sb_ignore_add(ign, *p, err);
		if (r < 0)
			return sb_error_prefix(err, "--exclude");
	}
	sb_error e2 = SB_ERROR_INIT;
	r = sb_ignore_load_file(ign, sb_workspace_root_fd(w), SB_IGNORE_FILE, &e2);
	if (r == -ELOOP || r == -EINVAL) {
		/* Not a regular file: never followed, never waited on. */
		if (warn)
			warn(userdata, SB_IGNORE_FILE,
			     "not a regular file: its patterns are not used");
	} else if (r < 0 && r != -ENOENT) {
		if (err)
			*err = e2;
		return r;
	}
	*ret = TAKE_PTR(ign);
	return 0;
}

static char **ignore_patterns(const sb_ignore *ign)
{
	size_t n = sb_ignore_count(ign);
	if (n == 0)
		return NULL;
	char **v = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; v && i < n; i++)
		if (!(v[i] = strdup(sb_ignore_pattern(ign, i)))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	return v;
}

/*
 * The changes from the empty tree: everything the scan found is added. Saves
 * reading every tree of a first snapshot back just to count its entries.
 */
static sb_diff_counts all_added(const sb_scan_stats *st)
{
	return (sb_diff_counts){
	    .added = st->files + st->symlinks + st->fifos,
	    .added_dirs = st->dirs,
	};
}

/* Cache misses from which the stat cache is sorted on a thread of its own. */
#define SORT_ON_A_THREAD 4096

static void *sort_cache(void *cache)
{
	sb_statcache_sort(cache);
	return NULL;
}

int sb_capture(sb_workspace *w, const sb_capture_opts *opts, sb_capture_result *ret, sb_error *err)
{
	sb_store *store = sb_workspace_store(w);
	sb_capture_result res = {.id = -1, .parent = -1};
	_cleanup_(sb_ignore_freep) sb_ignore *ign = NULL;
	_cleanup_(sb_statcache_freep) sb_statcache *own = NULL;
	sb_statcache *cache = opts->cache;
	int r = sb_capture_exclusions(w, (char *const *)opts->excludes, opts->warn, opts->userdata,
				      &ign, err);
	if (r < 0)
		return r;

	if (cache) {
		/* the caller's */
	} else if (!(opts->flags & SB_CAPTURE_NO_CACHE)) {
		r = sb_statcache_load(sb_workspace_dir_fd(w), "index", &own, err);
		if (r < 0)
			return r;
		cache = own;
	} else {
		r = sb_statcache_new(&own);
		if (r < 0)
			return r;
		cache = own;
	}

	sb_scan_opts so = {
	    .cache = cache,
	    .ignore = ign,
	    .warn = opts->warn,
	    .progress = opts->progress,
	    .userdata = opts->userdata,
	};
	r = sb_scan_run(store, sb_workspace_root_fd(w), &so, &res.root, &res.scan, err);
	if (r < 0)
		return r;

	/* The parent is the head: what the workspace was last made equal to. */
	r = sb_snapshot_head(w, &res.parent, NULL);
	if (r < 0 && r != -ENOENT)
		return sb_error_errno(err, -r, "list snapshots of '%s'", sb_workspace_path(w));
	if (r == -ENOENT)
		res.parent = -1;

	bool save_cache =
	    own && (!(opts->flags & SB_CAPTURE_DRY) || (opts->flags & SB_CAPTURE_SAVE_CACHE));
	bool first = !(opts->flags & SB_CAPTURE_DRY) && res.parent < 0;
	sb_id parent_root;
	if (first) {
		/* The first snapshot's parent is the empty tree: make it real, in the
		 * same flush as the rest. */
		sb_tree empty = SB_TREE_INIT;
		r = sb_tree_save(store, &empty, &parent_root, err);
		if (r < 0)
			return r;
	}
	/*
	 * The stat cache's save sorts the records of the files read (the cache
	 * misses). After a first snapshot that takes about as long as the
	 * flush: both at once. A few misses sort faster than a thread starts.
	 */
	pthread_t sorter;
	bool sorting = save_cache && res.scan.files_hashed >= SORT_ON_A_THREAD &&
		       pthread_create(&sorter, NULL, sort_cache, cache) == 0;
	r = sb_store_flush(store, err);
	if (sorting)
		pthread_join(sorter, NULL);
	if (r < 0)
		return r;

	if (!(opts->flags & SB_CAPTURE_DRY)) {
		if (!first) {
			sb_snapshot p;
			r = sb_snapshot_read(w, res.parent, &p, err);
			if (r < 0)
				return r;
			parent_root = p.root;
			sb_snapshot_release(&p);
		}
		if (!first && sb_id_eq(&parent_root, &res.root) &&
		    !(opts->flags & SB_CAPTURE_NEW)) {
			res.id = res.parent;
			res.reused = true;
		} else {
			if (first)
				res.changes = all_added(&res.scan);
			else
				r = sb_diff_trees(store, &parent_root, &res.root, NULL,
						  sb_diff_count, &res.changes, err);
			if (r < 0)
				return r;
			sb_snapshot s;
			sb_snapshot_init(&s);
			s.root = res.root;
			s.parent = res.parent;
			s.reason = strdup(opts->reason ? opts->reason : "manual");
			s.message = opts->message ? strdup(opts->message) : NULL;
			s.command = sb_strv_copy(opts->command);
			s.exit_status = opts->exit_status;
			s.isolation = opts->isolation ? strdup(opts->isolation) : NULL;
			s.exclusions = ignore_patterns(ign);
			s.stats = (sb_snapshot_stats){
			    .files = res.scan.files,
			    .dirs = res.scan.dirs,
			    .symlinks = res.scan.symlinks,
			    .fifos = res.scan.fifos,
			    .bytes = res.scan.bytes,
			    .skipped = res.scan.skipped,
			    .added = res.changes.added,
			    .modified = res.changes.modified + res.changes.typechanged,
			    .deleted = res.changes.deleted,
			};
			if (!s.reason) {
				sb_snapshot_release(&s);
				return -ENOMEM;
			}
			r = sb_snapshot_write(w, &s, err);
			res.id = s.id;
			sb_snapshot_release(&s);
			if (r < 0)
				return r;
		}
	}

	if (!(opts->flags & SB_CAPTURE_DRY)) {
		r = sb_snapshot_set_head(w, res.id, err);
		if (r < 0)
			return r;
	}

	if (save_cache) {
		/* A stale cache only costs re-hashing; never fail the capture for it. */
		sb_error e2 = SB_ERROR_INIT;
		(void)sb_statcache_save(cache, sb_workspace_dir_fd(w), "index", &e2);
	}
	*ret = res;
	return 0;
}

/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "gc.h"
#include "reach.h"
#include "session.h"
#include "snapshot.h"
#include "statcache.h"
#include "workspace.h"

typedef struct gc {
	const sb_gc_opts *o;
	sb_gc_result *res;
	sb_reach *reach;
	const char *where; /* the workspace being marked, for problems */
	char root[48];	   /* what names the root being walked: "snapshot 3", ... */
	bool failed;	   /* a problem was found: msg says the first */
	char msg[SB_ERROR_MAX];
	bool found_target;
	sb_workspace **forgot_ws; /* the area of each res->forgotten */
} gc;

static void reach_problem(void *userdata, const sb_id *id, const char *path, const char *what)
{
	gc *g = userdata;
	(void)id;
	if (g->failed)
		return;
	g->failed = true;
	snprintf(g->msg, sizeof(g->msg), "workspace '%s', %s, %s%s%s: %s", g->where, g->root,
		 path[0] ? "path '" : "its root", path, path[0] ? "'" : "", what);
}

/* A problem met while marking: nothing has changed yet, and nothing will. */
static int stop(sb_error *err, const char *what)
{
	char copy[SB_ERROR_MAX]; /* what may be err's own message */
	snprintf(copy, sizeof(copy), "%s", what);
	return sb_error_set(err, EBADMSG,
			    "%s; gc removes nothing while it cannot tell what is still needed: run "
			    "'snapbox verify' and repair or remove what it names",
			    copy);
}

static int reached(gc *g, int r, sb_error *err)
{
	if (r < 0)
		return sb_error_errno(err, -r, "gc: walk the snapshots");
	return g->failed ? stop(err, g->msg) : 0;
}

/*
 * A stat cache that names what the store lacks (or cannot read) would make
 * the next scan record it unread. A cache can always be dropped: the next
 * scan reads every file again. A dry run only counts it.
 */
static int drop_cache(gc *g, sb_workspace *w, sb_error *err)
{
	g->failed = false;
	g->res->caches_dropped++;
	if (g->o->dry_run)
		return 0;
	int r = sb_statcache_remove(sb_workspace_dir_fd(w), "index", err);
	return r < 0 ? sb_error_prefix(err, "gc: workspace area '%s'", sb_workspace_area_path(w))
		     : 0;
}

static int cache_id(void *userdata, const sb_id *id, uint32_t mode)
{
	gc *g = userdata;
	if (S_ISDIR(mode))
		return sb_reach_tree(g->reach, id);
	if (S_ISREG(mode) || S_ISLNK(mode))
		return sb_reach_content(g->reach, id);
	return 0;
}

/* Adds id to the forgotten of area w (the last entry, or a new one). */
static int add_forgotten(gc *g, sb_workspace *w, int64_t id)
{
	sb_gc_result *res = g->res;
	if (!res->n_forgotten || g->forgot_ws[res->n_forgotten - 1] != w) {
		size_t n = res->n_forgotten + 1;
		sb_gc_forgot *v = realloc(res->forgotten, n * sizeof(*v));
		if (v)
			res->forgotten = v;
		sb_workspace **ws = realloc(g->forgot_ws, n * sizeof(*ws));
		if (ws)
			g->forgot_ws = ws;
		if (!v || !ws)
			return -ENOMEM;
		v[n - 1] = (sb_gc_forgot){.workspace = strdup(sb_workspace_path(w))};
		if (!v[n - 1].workspace)
			return -ENOMEM;
		ws[n - 1] = w;
		res->n_forgotten = n;
	}
	sb_gc_forgot *f = &res->forgotten[res->n_forgotten - 1];
	int64_t *ids = realloc(f->ids, (f->n + 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	f->ids = ids;
	f->ids[f->n++] = id;
	return 0;
}

/*
 * The workspace's roots but its stat cache: its manifests (but those
 * forgotten) and its session's trees. Fills res->forgotten for the targets.
 */
static int mark_workspace(gc *g, sb_workspace *w, sb_error *err)
{
	bool target = g->o->keep >= 0 &&
		      (!g->o->workspace_id || strcmp(sb_workspace_id(w), g->o->workspace_id) == 0);
	g->found_target |= target;
	g->where = sb_workspace_path(w);

	sb_session sess;
	sb_session_init(&sess);
	int r = sb_session_read(w, &sess, err);
	bool have_sess = r == 0;
	if (r < 0 && r != -ENOENT)
		return r == -EBADMSG ? stop(err, err->msg) : r;
	int64_t head = -1;
	if (sb_snapshot_head(w, &head, NULL) < 0)
		head = -1;

	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0;
	r = sb_snapshot_list(w, &ids, &n, err);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		bool old = target && (int64_t)(n - i) > g->o->keep;
		bool protected = ids[i] == head || (have_sess && ids[i] == sess.baseline);
		if (old && !protected) {
			r = add_forgotten(g, w, ids[i]);
			continue;
		}
		g->res->kept_protected += old;
		snprintf(g->root, sizeof(g->root), "snapshot %" PRId64, ids[i]);
		sb_snapshot m;
		r = sb_snapshot_read(w, ids[i], &m, err);
		if (r < 0) {
			r = r == -EBADMSG ? stop(err, err->msg) : r;
			break;
		}
		r = reached(g, sb_reach_tree(g->reach, &m.root), err);
		sb_snapshot_release(&m);
	}
	snprintf(g->root, sizeof(g->root), "the pending session");
	/* A session cut short before its record was written names no tree. */
	if (r >= 0 && have_sess && !sb_id_is_zero(&sess.baseline_root))
		r = reached(g, sb_reach_tree(g->reach, &sess.baseline_root), err);
	if (r >= 0 && have_sess && sess.has_staged)
		r = reached(g, sb_reach_tree(g->reach, &sess.staged_root), err);
	sb_session_release(&sess);
	return r;
}

/*
 * What the workspace's stat cache names. After every workspace's snapshots
 * and session: a cache that fails is dropped, not refused, and what it
 * reached (or failed to) must not hide a problem a snapshot would show.
 */
static int mark_cache(gc *g, sb_workspace *w, sb_error *err)
{
	g->where = sb_workspace_path(w);
	_cleanup_(sb_statcache_freep) sb_statcache *c = NULL;
	/* Made durable: gc keeps what it names now, and an older generation must
	 * not come back after a power loss. */
	int r = sb_statcache_sync(sb_workspace_dir_fd(w), "index", err);
	if (r < 0)
		return sb_error_prefix(err, "gc: workspace area '%s'", sb_workspace_area_path(w));
	r = sb_statcache_load(sb_workspace_dir_fd(w), "index", &c, err);
	if (r < 0)
		return sb_error_prefix(err, "gc: stat cache of workspace '%s'", g->where);
	snprintf(g->root, sizeof(g->root), "the stat cache");
	r = sb_statcache_foreach_id(c, cache_id, g);
	if (r < 0)
		return sb_error_errno(err, -r, "gc: walk the stat cache of workspace '%s'",
				      g->where);
	return g->failed ? drop_cache(g, w, err) : 0;
}

static bool is_area_name(const char *name)
{
	return strlen(name) == 32 && sb_is_lower_hex(name, 32);
}

/* Every workspace area, each locked (without waiting), appended to *ws. */
static int open_areas(sb_store *s, const char *store_root, sb_workspace ***ws, size_t *n,
		      sb_error *err)
{
	_cleanup_close_ int fd =
	    openat(sb_store_root_fd(s), "workspaces", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d)
		return sb_error_errno(err, errno, "read '%s/workspaces'", store_root);
	fd = -1;
	_cleanup_closedir_ DIR *dir = d;
	size_t cap = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dir);
		if (!de)
			break;
		if (!is_area_name(de->d_name))
			continue;
		sb_workspace **v = sb_grow(*ws, &cap, *n, sizeof(*v), 8);
		if (!v)
			return -ENOMEM;
		*ws = v;
		int r = sb_workspace_open_area(s, store_root, de->d_name, &v[*n], err);
		if (r < 0)
			return r;
		(*n)++;
		r = sb_workspace_lock(v[*n - 1], 0, err);
		if (r < 0)
			return sb_error_prefix(err, "gc: workspace '%s'",
					       sb_workspace_path(v[*n - 1]));
	}
	if (errno)
		return sb_error_errno(err, errno, "read '%s/workspaces'", store_root);
	return 0;
}

static bool live(void *userdata, const sb_id *id)
{
	return sb_reach_seen(userdata, id);
}

int sb_gc(const char *store_root, const sb_gc_opts *opts, sb_gc_result *ret, sb_error *err)
{
	*ret = (sb_gc_result){0};
	sb_store *s = NULL;
	int r = sb_store_open(store_root, SB_STORE_WRITE | SB_STORE_EXCLUSIVE, &s, err);
	if (r < 0)
		return r;
	gc g = {.o = opts, .res = ret};
	sb_reach_ops ops = {.problem = reach_problem, .userdata = &g};
	sb_workspace **ws = NULL;
	size_t n_ws = 0;
	sb_sweep *sweep = NULL;
	r = sb_sweep_begin(s, &sweep, err);
	if (r >= 0)
		r = sb_reach_new(s, &ops, &g.reach);
	if (r >= 0)
		r = open_areas(s, store_root, &ws, &n_ws, err);
	for (size_t i = 0; r >= 0 && i < n_ws; i++)
		r = mark_workspace(&g, ws[i], err);
	for (size_t i = 0; r >= 0 && i < n_ws; i++)
		r = mark_cache(&g, ws[i], err);
	if (r >= 0 && opts->workspace_id && opts->keep >= 0 && !g.found_target)
		r = sb_error_set(err, ENOENT, "the workspace has no snapshots in store '%s'",
				 store_root);
	ret->workspaces = n_ws;
	ret->live = g.reach ? sb_reach_count(g.reach) : 0;
	for (size_t i = 0; r >= 0 && !opts->dry_run && i < ret->n_forgotten; i++)
		r = sb_snapshot_forget(g.forgot_ws[i], ret->forgotten[i].ids, ret->forgotten[i].n,
				       err);
	if (r >= 0)
		r = sb_sweep_run(sweep, live, g.reach, opts->dry_run, &ret->sweep, err);
	if (r == -ENOMEM && !err->msg[0])
		sb_error_errno(err, ENOMEM, "gc");
	for (size_t i = 0; i < n_ws; i++)
		sb_workspace_free(ws[i]);
	free(ws);
	sb_reach_free(g.reach);
	sb_sweep_free(sweep);
	free(g.forgot_ws);
	sb_store_free(s);
	if (r < 0)
		sb_gc_result_release(ret);
	return r;
}

void sb_gc_result_release(sb_gc_result *r)
{
	for (size_t i = 0; i < r->n_forgotten; i++) {
		free(r->forgotten[i].workspace);
		free(r->forgotten[i].ids);
	}
	free(r->forgotten);
	r->forgotten = NULL;
	r->n_forgotten = 0;
}

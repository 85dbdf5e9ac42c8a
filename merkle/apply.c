/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "apply.h"
#include "changes.h"
#include "diff.h"
#include "edit.h"

static bool selected(const char *path, size_t len, const char *const *paths)
{
	if (!paths)
		return true;
	for (const char *const *p = paths; *p; p++) {
		size_t fl = strlen(*p);
		while (fl > 0 && (*p)[fl - 1] == '/')
			fl--;
		if (fl == 0 ||
		    (len >= fl && memcmp(path, *p, fl) == 0 && (len == fl || path[fl] == '/')))
			return true;
	}
	return false;
}

/*
 * Paths through which a change runs code on the host the next time git runs
 * there: a repository's config (core.fsmonitor, core.hooksPath, aliases...),
 * hooks, info/, submodule and worktree git dirs, and a file or symlink named
 * .git (a gitdir: redirect to a repository of the command's making). In any
 * repository of the workspace, nested ones too.
 */
static bool git_sensitive(const sb_diff_item *x)
{
	static const char *const inside[] = {"config",	"config.worktree", "hooks",    "info",
					     "modules", "worktrees",	   "commondir"};
	const char *p = x->path, *end = x->path + x->path_len;
	for (const char *c = p; c < end;) {
		const char *slash = memchr(c, '/', (size_t)(end - c));
		const char *ce = slash ? slash : end;
		if (ce - c == 4 && memcmp(c, ".git", 4) == 0) {
			if (!slash) /* the .git entry itself */
				return x->status != 'D' && x->new.type != SB_FT_DIR;
			const char *rest = slash + 1;
			size_t rl = (size_t)(end - rest);
			const char *re = memchr(rest, '/', rl);
			size_t first = re ? (size_t)(re - rest) : rl;
			for (size_t k = 0; k < ARRAY_SIZE(inside); k++)
				if (first == strlen(inside[k]) &&
				    memcmp(rest, inside[k], first) == 0)
					return true;
			return false;
		}
		c = slash ? slash + 1 : end;
	}
	return false;
}

/* Is a a proper ancestor of b? */
static bool is_ancestor(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen < blen && memcmp(a, b, alen) == 0 && b[alen] == '/';
}

/*
 * Binary search in the drift list (path order) for a path equal to p, or
 * the first path after it.
 */
static size_t lower_bound(const sb_diff_list *l, const char *p, size_t len)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sb_path_cmp(l->v[mid].path, l->v[mid].path_len, p, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const char *conflict_with(const sb_diff_list *drift, const sb_diff_item *c)
{
	/* The same path, or something below it. */
	size_t i = lower_bound(drift, c->path, c->path_len);
	if (i < drift->n) {
		const sb_diff_item *d = &drift->v[i];
		if (d->path_len == c->path_len && memcmp(d->path, c->path, c->path_len) == 0)
			return "changed in the workspace too";
		if (is_ancestor(c->path, c->path_len, d->path, d->path_len))
			return "the workspace changed something below it";
	}
	/* An ancestor added, deleted or retyped (a mode change of a directory is harmless). */
	for (size_t k = 0; k < c->path_len; k++) {
		if (c->path[k] != '/')
			continue;
		size_t j = lower_bound(drift, c->path, k);
		if (j < drift->n && drift->v[j].path_len == k &&
		    memcmp(drift->v[j].path, c->path, k) == 0 && drift->v[j].status != 'M')
			return "a parent directory changed in the workspace";
	}
	return NULL;
}

/*
 * Edits that turn `base` into base + the given changes. A directory added or
 * deleted whole is one edit; its descendants are skipped. A type change to or
 * from a directory arrives as D (and the old subtree) then A of one path: the
 * later edit replaces the earlier, so each path is edited once.
 */
static int build_edits(const sb_diff_list *l, const bool *take, sb_edit **ret, size_t *ret_n)
{
	sb_edit *e = calloc(l->n ? l->n : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	size_t n = 0;
	const sb_diff_item *whole = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const sb_diff_item *x = &l->v[i];
		if (!take[i])
			continue;
		if (whole && is_ancestor(whole->path, whole->path_len, x->path, x->path_len))
			continue;
		whole = NULL;
		sb_edit *d = &e[n];
		if (n && e[n - 1].path_len == x->path_len &&
		    memcmp(e[n - 1].path, x->path, x->path_len) == 0)
			d = &e[n - 1];
		else
			n++;
		memset(d, 0, sizeof(*d));
		d->path = x->path;
		d->path_len = x->path_len;
		if (x->status == 'D') {
			d->op = SB_EDIT_DELETE;
			if (x->old.type == SB_FT_DIR)
				whole = x;
		} else if (x->status == 'M' && x->new.type == SB_FT_DIR) {
			d->op = SB_EDIT_DIR; /* mode or mtime: children have edits of their own */
			d->entry = x->new;
		} else {
			d->op = SB_EDIT_PUT;
			d->entry = x->new;
			if (x->new.type == SB_FT_DIR)
				whole = x;
		}
	}
	*ret = e;
	*ret_n = n;
	return 0;
}

int sb_apply(sb_store *s, int root_fd, const sb_id *baseline, const sb_id *staged,
	     const sb_id *current, const sb_apply_opts *opts, sb_apply_conflict_fn cb,
	     void *userdata, sb_apply_result *ret, sb_error *err)
{
	sb_apply_result res = {0};
	sb_diff_list changes = {0}, drift = {0};
	_cleanup_free_ bool *take = NULL, *rest = NULL;
	_cleanup_free_ sb_edit *edits = NULL, *redits = NULL;
	size_t nedits = 0, nredits = 0;
	sb_diff_opts with_mtime = {.flags = SB_DIFF_MTIME};
	int r = sb_diff_trees(s, baseline, staged, &with_mtime, sb_diff_collect, &changes, err);
	if (r >= 0)
		r = sb_diff_trees(s, baseline, current, NULL, sb_diff_collect, &drift, err);
	if (r < 0)
		goto out;
	take = calloc(changes.n + 1, sizeof(bool));
	rest = calloc(changes.n + 1, sizeof(bool));
	if (!take || !rest) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < changes.n; i++) {
		sb_diff_item *x = &changes.v[i];
		take[i] = selected(x->path, x->path_len, opts->paths);
		rest[i] = !take[i];
		if (opts->protect &&
		    sb_ignore_excluded(opts->protect, x->path, x->path_len,
				       (x->new.type ? x->new.type : x->old.type) == SB_FT_DIR)) {
			/* Excluded paths are never written: not applied, not kept. */
			take[i] = rest[i] = false;
			res.excluded++;
			continue;
		}
		if (!take[i])
			continue;
		res.applied++;
		if (git_sensitive(x) && !(opts->flags & SB_APPLY_ALLOW_GIT)) {
			res.git++;
			if (cb)
				cb(userdata, x->path, x->path_len,
				   "changes git configuration or hooks: code that runs on this "
				   "machine");
		}
		const char *why = conflict_with(&drift, x);
		if (why) {
			res.conflicts++;
			if (cb)
				cb(userdata, x->path, x->path_len, why);
		}
	}
	if (res.git) {
		r = sb_error_set(err, EPERM,
				 "%llu staged change%s would make git run code on this machine "
				 "(hooks, config, a .git redirect); review them ('snapbox diff -- "
				 ".git'), then 'snapbox apply --allow-git-config', or apply other "
				 "paths by name",
				 (unsigned long long)res.git, res.git == 1 ? "" : "s");
		goto out;
	}
	if (res.conflicts && !(opts->flags & SB_APPLY_FORCE)) {
		r = sb_error_set(
		    err, ESTALE,
		    "%llu staged change%s conflict%s with edits made in the workspace "
		    "since the run; review them, then 'snapbox apply --force' to let the "
		    "staged version win",
		    (unsigned long long)res.conflicts, res.conflicts == 1 ? "" : "s",
		    res.conflicts == 1 ? "s" : "");
		goto out;
	}
	r = build_edits(&changes, take, &edits, &nedits);
	if (r >= 0)
		r = sb_tree_edit(s, current, edits, nedits, &res.merged, NULL, err);
	if (r >= 0)
		r = build_edits(&changes, rest, &redits, &nredits);
	if (r >= 0 && nredits) {
		res.has_remaining = true;
		r = sb_tree_edit(s, &res.merged, redits, nredits, &res.remaining, NULL, err);
	}
	if (r >= 0)
		r = sb_store_flush(s, err);
	if (r >= 0 && !(opts->flags & SB_APPLY_DRY))
		r = sb_restore_tree(s, root_fd, current, &res.merged, opts->protect, &res.written,
				    err);
out:
	sb_diff_list_release(&changes);
	sb_diff_list_release(&drift);
	if (r >= 0)
		*ret = res;
	return r;
}

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
		if (!take[i])
			continue;
		res.applied++;
		const char *why = conflict_with(&drift, x);
		if (why) {
			res.conflicts++;
			if (cb)
				cb(userdata, x->path, x->path_len, why);
		}
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

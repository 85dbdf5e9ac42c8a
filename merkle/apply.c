/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "apply.h"
#include "changes.h"
#include "diff.h"
#include "edit.h"

/* A diff, kept: path plus the entries on both sides. */
typedef struct item {
	char status;
	char *path;
	size_t len;
	sb_tree_entry old, new;
} item;

typedef struct items {
	item *v;
	size_t n, cap;
} items;

static int collect(void *userdata, const sb_diff_entry *e)
{
	items *l = userdata;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		item *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	item *x = &l->v[l->n];
	memset(x, 0, sizeof(*x));
	x->path = strndup(e->path, e->path_len);
	if (!x->path)
		return -ENOMEM;
	x->len = e->path_len;
	x->status = e->status;
	if (e->old) {
		x->old = *e->old;
		x->old.name = NULL;
	}
	if (e->new) {
		x->new = *e->new;
		x->new.name = NULL;
	}
	l->n++;
	return 0;
}

static void items_release(items *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

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
static size_t lower_bound(const items *l, const char *p, size_t len)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sb_path_cmp(l->v[mid].path, l->v[mid].len, p, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const char *conflict_with(const items *drift, const item *c)
{
	/* The same path, or something below it. */
	size_t i = lower_bound(drift, c->path, c->len);
	if (i < drift->n) {
		const item *d = &drift->v[i];
		if (d->len == c->len && memcmp(d->path, c->path, c->len) == 0)
			return "changed in the workspace too";
		if (is_ancestor(c->path, c->len, d->path, d->len))
			return "the workspace changed something below it";
	}
	/* An ancestor added, deleted or retyped (a mode change of a directory is harmless). */
	for (size_t k = 0; k < c->len; k++) {
		if (c->path[k] != '/')
			continue;
		size_t j = lower_bound(drift, c->path, k);
		if (j < drift->n && drift->v[j].len == k &&
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
static int build_edits(const items *l, const bool *take, sb_edit **ret, size_t *ret_n)
{
	sb_edit *e = calloc(l->n ? l->n : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	size_t n = 0;
	const item *whole = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const item *x = &l->v[i];
		if (!take[i])
			continue;
		if (whole && is_ancestor(whole->path, whole->len, x->path, x->len))
			continue;
		whole = NULL;
		sb_edit *d = &e[n];
		if (n && e[n - 1].path_len == x->len && memcmp(e[n - 1].path, x->path, x->len) == 0)
			d = &e[n - 1];
		else
			n++;
		memset(d, 0, sizeof(*d));
		d->path = x->path;
		d->path_len = x->len;
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
	items changes = {0}, drift = {0};
	_cleanup_free_ bool *take = NULL, *rest = NULL;
	_cleanup_free_ sb_edit *edits = NULL, *redits = NULL;
	size_t nedits = 0, nredits = 0;
	sb_diff_opts with_mtime = {.flags = SB_DIFF_MTIME};
	int r = sb_diff_trees(s, baseline, staged, &with_mtime, collect, &changes, err);
	if (r >= 0)
		r = sb_diff_trees(s, baseline, current, NULL, collect, &drift, err);
	if (r < 0)
		goto out;
	take = calloc(changes.n + 1, sizeof(bool));
	rest = calloc(changes.n + 1, sizeof(bool));
	if (!take || !rest) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < changes.n; i++) {
		item *x = &changes.v[i];
		take[i] = selected(x->path, x->len, opts->paths);
		rest[i] = !take[i];
		if (!take[i])
			continue;
		res.applied++;
		const char *why = conflict_with(&drift, x);
		if (why) {
			res.conflicts++;
			if (cb)
				cb(userdata, x->path, x->len, why);
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
	items_release(&changes);
	items_release(&drift);
	if (r >= 0)
		*ret = res;
	return r;
}

/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "buf.h"
#include "diff.h"

typedef struct walker {
	sb_store *store;
	const sb_diff_opts *opts;
	sb_diff_fn fn;
	void *userdata;
	sb_error *err;
	sb_buf path;
	unsigned depth;
} walker;

/* Every descent goes through here: a crafted store may nest without end. */
static int deeper(walker *w)
{
	if (++w->depth <= SB_TREE_MAX_DEPTH)
		return 0;
	return sb_error_set(w->err, ELOOP, "tree at '%.200s...' nests deeper than %d levels",
			    w->path.data, SB_TREE_MAX_DEPTH);
}

/* 1: path is inside a filter; 0: outside all; 2: path is an ancestor of a filter. */
static int filter_match(const walker *w, const char *path, size_t len)
{
	if (!w->opts || !w->opts->paths)
		return 1;
	int best = 0;
	for (const char *const *p = w->opts->paths; *p; p++) {
		size_t fl = strlen(*p);
		while (fl > 0 && (*p)[fl - 1] == '/')
			fl--;
		if (fl == 0)
			return 1;
		if (len >= fl && memcmp(path, *p, fl) == 0 && (len == fl || path[fl] == '/'))
			return 1;
		if (fl > len && memcmp(path, *p, len) == 0 && (*p)[len] == '/')
			best = 2;
	}
	return best;
}

static int emit(walker *w, char status, const sb_tree_entry *old, const sb_tree_entry *new)
{
	if (filter_match(w, w->path.data, w->path.len) != 1)
		return 0;
	sb_diff_entry e = {w->path.data, w->path.len, status, old, new};
	return w->fn(w->userdata, &e);
}

static int walk(walker *w, const sb_id *a, const sb_id *b);

static int push(walker *w, const sb_tree_entry *e, size_t *ret_saved)
{
	*ret_saved = w->path.len;
	if (w->path.len && sb_buf_putc(&w->path, '/') < 0)
		return -ENOMEM;
	return sb_buf_append(&w->path, e->name, e->name_len);
}

/* Report a whole subtree as added or deleted: the directory first, then its children. */
static int whole(walker *w, char status, const sb_tree_entry *e)
{
	int r = emit(w, status, status == 'D' ? e : NULL, status == 'A' ? e : NULL);
	if (r < 0 || e->type != SB_FT_DIR)
		return r;
	if (filter_match(w, w->path.data, w->path.len) == 0)
		return 0;
	sb_tree t = SB_TREE_INIT;
	r = deeper(w);
	if (r >= 0)
		r = sb_tree_load(w->store, &e->id, &t, w->err);
	for (size_t i = 0; r >= 0 && i < t.n; i++) {
		size_t saved;
		r = push(w, &t.v[i], &saved);
		if (r >= 0)
			r = whole(w, status, &t.v[i]);
		sb_buf_truncate(&w->path, saved);
	}
	sb_tree_release(&t);
	w->depth--;
	return r;
}

static bool meta_differs(const walker *w, const sb_tree_entry *x, const sb_tree_entry *y)
{
	if (x->mode != y->mode)
		return true;
	return (w->opts && (w->opts->flags & SB_DIFF_MTIME)) && x->mtime_ns != y->mtime_ns;
}

static int pair(walker *w, const sb_tree_entry *x, const sb_tree_entry *y)
{
	bool xd = x->type == SB_FT_DIR, yd = y->type == SB_FT_DIR;
	if (xd != yd) {
		int r = whole(w, 'D', x);
		return r < 0 ? r : whole(w, 'A', y);
	}
	if (xd) {
		int r = 0;
		if (meta_differs(w, x, y))
			r = emit(w, 'M', x, y);
		if (r >= 0 && !sb_id_eq(&x->id, &y->id) &&
		    filter_match(w, w->path.data, w->path.len) != 0)
			r = walk(w, &x->id, &y->id);
		return r;
	}
	if (x->type != y->type)
		return emit(w, 'T', x, y);
	if (!sb_id_eq(&x->id, &y->id) || x->size != y->size || meta_differs(w, x, y))
		return emit(w, 'M', x, y);
	return 0;
}

static int name_cmp(const sb_tree_entry *x, const sb_tree_entry *y)
{
	size_t n = MIN(x->name_len, y->name_len);
	int c = memcmp(x->name, y->name, n);
	if (c)
		return c;
	return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/*
 * Entries are merged in raw name order and each directory is descended into
 * at once. That yields path order (sb_path_cmp, '/' first): every child of
 * "a" is "a/..." and so sorts before any sibling "a<byte>..." of "a".
 */
static int walk(walker *w, const sb_id *a, const sb_id *b)
{
	if (sb_id_eq(a, b))
		return 0;
	sb_tree ta = SB_TREE_INIT, tb = SB_TREE_INIT;
	int r = deeper(w);
	if (r >= 0)
		r = sb_tree_load(w->store, a, &ta, w->err);
	if (r >= 0)
		r = sb_tree_load(w->store, b, &tb, w->err);
	size_t i = 0, j = 0;
	while (r >= 0 && (i < ta.n || j < tb.n)) {
		int c = i == ta.n ? 1 : j == tb.n ? -1 : name_cmp(&ta.v[i], &tb.v[j]);
		const sb_tree_entry *e = c <= 0 ? &ta.v[i] : &tb.v[j];
		size_t saved;
		r = push(w, e, &saved);
		if (r < 0)
			break;
		if (c < 0)
			r = whole(w, 'D', &ta.v[i++]);
		else if (c > 0)
			r = whole(w, 'A', &tb.v[j++]);
		else
			r = pair(w, &ta.v[i++], &tb.v[j++]);
		sb_buf_truncate(&w->path, saved);
	}
	sb_tree_release(&ta);
	sb_tree_release(&tb);
	w->depth--;
	return r;
}

int sb_diff_trees(sb_store *s, const sb_id *a, const sb_id *b, const sb_diff_opts *opts,
		  sb_diff_fn fn, void *userdata, sb_error *err)
{
	walker w = {s, opts, fn, userdata, err, SB_BUF_INIT, 0};
	if (sb_buf_reserve(&w.path, 256) < 0)
		return -ENOMEM;
	w.path.data[0] = 0;
	int r = walk(&w, a, b);
	sb_buf_release(&w.path);
	return r;
}

int sb_diff_count(void *userdata, const sb_diff_entry *e)
{
	sb_diff_counts *c = userdata;
	bool dir = (e->new ? e->new : e->old)->type == SB_FT_DIR;
	switch (e->status) {
	case 'A':
		if (dir)
			c->added_dirs++;
		else
			c->added++;
		break;
	case 'D':
		if (dir)
			c->deleted_dirs++;
		else
			c->deleted++;
		break;
	case 'M':
		if (!dir)
			c->modified++;
		break;
	case 'T':
		c->typechanged++;
		break;
	}
	return 0;
}

int sb_diff_collect(void *userdata, const sb_diff_entry *e)
{
	sb_diff_list *l = userdata;
	sb_diff_item *v = sb_grow(l->v, &l->cap, l->n, sizeof(*v), 64);
	if (!v)
		return -ENOMEM;
	l->v = v;
	sb_diff_item *x = &l->v[l->n];
	memset(x, 0, sizeof(*x));
	x->path = malloc(e->path_len + 1);
	if (!x->path)
		return -ENOMEM;
	memcpy(x->path, e->path, e->path_len);
	x->path[e->path_len] = 0;
	x->path_len = e->path_len;
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

void sb_diff_list_release(sb_diff_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

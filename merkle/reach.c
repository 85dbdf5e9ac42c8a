/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "buf.h"
#include "content.h"
#include "idtab.h"
#include "reach.h"
#include "tree.h"

struct sb_reach {
	sb_store *store;
	sb_reach_ops ops;
	sb_id *ids; /* every object reached, indexed by tab */
	size_t n, cap;
	sb_idtab tab;
	sb_buf path;
	unsigned depth;
	sb_reach_kind kind; /* SB_REACH_CONTENT until a content walk's first id */
};

int sb_reach_new(sb_store *s, const sb_reach_ops *ops, sb_reach **ret)
{
	sb_reach *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->store = s;
	r->ops = *ops;
	sb_idtab_init(&r->tab);
	*ret = r;
	return 0;
}

void sb_reach_free(sb_reach *r)
{
	if (!r)
		return;
	free(r->ids);
	sb_idtab_release(&r->tab);
	sb_buf_release(&r->path);
	free(r);
}

bool sb_reach_seen(const sb_reach *r, const sb_id *id)
{
	return sb_idtab_find(&r->tab, id, r->ids, sizeof(*r->ids)) != 0;
}

size_t sb_reach_count(const sb_reach *r)
{
	return r->n;
}

/* 1 if id is new (now recorded), 0 if reached before, -ENOMEM. */
static int mark(sb_reach *r, const sb_id *id)
{
	if (sb_reach_seen(r, id))
		return 0;
	sb_id *v = sb_grow(r->ids, &r->cap, r->n, sizeof(*v), 1024);
	if (!v)
		return -ENOMEM;
	r->ids = v;
	int e = sb_idtab_reserve(&r->tab, r->n, r->ids, sizeof(*r->ids));
	if (e < 0)
		return e;
	r->ids[r->n] = *id;
	sb_idtab_insert(&r->tab, id, r->n++);
	return 1;
}

static const char *where(const sb_reach *r)
{
	return r->path.len ? r->path.data : "";
}

static void problem(sb_reach *r, const sb_id *id, const char *what)
{
	r->ops.problem(r->ops.userdata, id, where(r), what);
}

static int object(sb_reach *r, const sb_id *id, sb_reach_kind kind)
{
	return r->ops.object ? r->ops.object(r->ops.userdata, id, kind, where(r)) : 0;
}

/* A chunk or symlink target, at each occurrence: reached without being read, so looked up. */
static int leaf(sb_reach *r, const sb_id *id, sb_reach_kind kind)
{
	int m = mark(r, id);
	if (m < 0)
		return m;
	if (!sb_store_has(r->store, id))
		problem(r, id,
			kind == SB_REACH_SYMLINK ? "missing symlink target" : "missing object");
	return object(r, id, kind);
}

/* sb_content_foreach_object's callback: the content id first, then its chunks. */
static int content_object(void *userdata, const sb_id *id)
{
	sb_reach *r = userdata;
	if (r->kind == SB_REACH_CONTENT) { /* the content itself: marked already */
		r->kind = SB_REACH_CHUNK;
		return object(r, id, SB_REACH_CONTENT);
	}
	return leaf(r, id, SB_REACH_CHUNK);
}

int sb_reach_content(sb_reach *r, const sb_id *id)
{
	int e = mark(r, id);
	if (e <= 0)
		return e;
	sb_error err = SB_ERROR_INIT;
	r->kind = SB_REACH_CONTENT;
	e = sb_content_foreach_object(r->store, id, content_object, r, &err);
	if (e == -ENOMEM || (e < 0 && !err.msg[0]))
		return e; /* out of memory, or ops.object's stop (which sets no message) */
	if (e < 0)
		problem(r, id, e == -ENOENT ? "missing content" : err.msg);
	return 0;
}

static int reach_entry(sb_reach *r, const sb_tree_entry *e)
{
	switch (e->type) {
	case SB_FT_DIR:
		return sb_reach_tree(r, &e->id);
	case SB_FT_REG:
		return sb_reach_content(r, &e->id);
	case SB_FT_SYMLINK:
		return leaf(r, &e->id, SB_REACH_SYMLINK);
	default:
		return 0;
	}
}

int sb_reach_tree(sb_reach *r, const sb_id *root)
{
	if (r->depth >= SB_TREE_MAX_DEPTH) {
		problem(r, root, "trees nest deeper than snapbox allows");
		return 0;
	}
	int e = mark(r, root);
	if (e <= 0)
		return e;
	sb_tree t = SB_TREE_INIT;
	sb_error err = SB_ERROR_INIT;
	e = sb_tree_load(r->store, root, &t, &err);
	if (e < 0) {
		problem(r, root, e == -ENOENT ? "missing tree" : err.msg);
		return e == -ENOMEM ? e : 0;
	}
	e = object(r, root, SB_REACH_TREE);
	for (size_t i = 0; e >= 0 && i < t.n; i++) {
		size_t saved = r->path.len;
		if ((r->path.len && sb_buf_putc(&r->path, '/') < 0) ||
		    sb_buf_append(&r->path, t.v[i].name, t.v[i].name_len) < 0)
			e = -ENOMEM;
		else {
			r->depth++;
			e = reach_entry(r, &t.v[i]);
			r->depth--;
		}
		sb_buf_truncate(&r->path, saved);
	}
	sb_tree_release(&t);
	return e;
}

/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "buf.h"
#include "content.h"
#include "fsck.h"
#include "snapshot.h"
#include "tree.h"

/* An open-addressing set of ids: the first 8 bytes of a SHA-256 are already uniform. */
typedef struct idset {
	sb_id *v;
	size_t n, cap;
} idset;

static uint64_t id_hash(const sb_id *id)
{
	uint64_t h;
	memcpy(&h, id->b, sizeof(h));
	return h;
}

/* 1 if added, 0 if present, -ENOMEM */
static int idset_add(idset *s, const sb_id *id)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		sb_id *v = calloc(cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (sb_id_is_zero(&s->v[i]))
				continue;
			size_t j = id_hash(&s->v[i]) & (cap - 1);
			while (!sb_id_is_zero(&v[j]))
				j = (j + 1) & (cap - 1);
			v[j] = s->v[i];
		}
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	size_t j = id_hash(id) & (s->cap - 1);
	while (!sb_id_is_zero(&s->v[j])) {
		if (sb_id_eq(&s->v[j], id))
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->v[j] = *id;
	s->n++;
	return 1;
}

typedef struct fsck {
	sb_store *store;
	sb_fsck_problem_fn cb;
	void *userdata;
	int64_t snapshot;
	idset seen;
	sb_buf path;
	sb_fsck_stats stats;
	int problems;
	unsigned depth;
} fsck;

static void problem(fsck *f, const sb_id *id, const char *what)
{
	f->problems++;
	f->cb(f->userdata, f->snapshot, id, f->path.len ? f->path.data : "/", what);
}

static int check_content_object(void *userdata, const sb_id *id)
{
	fsck *f = userdata;
	if (!sb_store_has(f->store, id))
		problem(f, id, "missing object");
	return 0;
}

static int check_entry(fsck *f, const sb_tree_entry *e);

static int check_tree(fsck *f, const sb_id *id)
{
	if (f->depth >= SB_TREE_MAX_DEPTH) {
		problem(f, id, "trees nest deeper than snapbox allows");
		return 0;
	}
	int r = idset_add(&f->seen, id);
	if (r <= 0)
		return r;
	sb_tree t = SB_TREE_INIT;
	sb_error e = SB_ERROR_INIT;
	r = sb_tree_load(f->store, id, &t, &e);
	if (r < 0) {
		problem(f, id, r == -ENOENT ? "missing tree" : e.msg);
		return r == -ENOMEM ? r : 0;
	}
	f->stats.trees++;
	for (size_t i = 0; r >= 0 && i < t.n; i++) {
		size_t saved = f->path.len;
		if ((f->path.len && sb_buf_putc(&f->path, '/') < 0) ||
		    sb_buf_append(&f->path, t.v[i].name, t.v[i].name_len) < 0)
			r = -ENOMEM;
		else {
			f->depth++;
			r = check_entry(f, &t.v[i]);
			f->depth--;
		}
		sb_buf_truncate(&f->path, saved);
	}
	sb_tree_release(&t);
	return r;
}

static int check_entry(fsck *f, const sb_tree_entry *e)
{
	switch (e->type) {
	case SB_FT_DIR:
		return check_tree(f, &e->id);
	case SB_FT_REG: {
		int r = idset_add(&f->seen, &e->id);
		if (r <= 0)
			return r;
		f->stats.contents++;
		sb_error err = SB_ERROR_INIT;
		r = sb_content_foreach_object(f->store, &e->id, check_content_object, f, &err);
		if (r < 0)
			problem(f, &e->id, r == -ENOENT ? "missing content" : err.msg);
		return r == -ENOMEM ? r : 0;
	}
	case SB_FT_SYMLINK:
		if (!sb_store_has(f->store, &e->id))
			problem(f, &e->id, "missing symlink target");
		return 0;
	default:
		return 0;
	}
}

int sb_fsck_snapshots(sb_workspace *w, sb_fsck_problem_fn cb, void *userdata,
		      sb_fsck_stats *ret_stats, sb_error *err)
{
	_cleanup_free_ int64_t *ids = NULL;
	size_t n;
	int r = sb_snapshot_list(w, &ids, &n, err);
	if (r < 0)
		return r;
	fsck f = {.store = sb_workspace_store(w), .cb = cb, .userdata = userdata};
	for (size_t i = 0; r >= 0 && i < n; i++) {
		sb_snapshot s;
		sb_error e = SB_ERROR_INIT;
		f.snapshot = ids[i];
		sb_buf_truncate(&f.path, 0);
		if (sb_snapshot_read(w, ids[i], &s, &e) < 0) {
			problem(&f, NULL, e.msg);
			continue;
		}
		f.stats.snapshots++;
		r = check_tree(&f, &s.root);
		sb_snapshot_release(&s);
	}
	free(f.seen.v);
	sb_buf_release(&f.path);
	if (r < 0)
		return sb_error_errno(err, -r, "verify snapshots");
	if (ret_stats)
		*ret_stats = f.stats;
	return f.problems;
}

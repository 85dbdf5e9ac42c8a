/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "edit.h"

typedef struct editor {
	sb_store *store;
	sb_edit_stats st;
	sb_error *err;
} editor;

/* Length of the first component of p (up to '/' or the end). */
static size_t first_len(const char *p, size_t len)
{
	const char *s = memchr(p, '/', len);
	return s ? (size_t)(s - p) : len;
}

/*
 * A directory being edited: entries [0, sorted) are the loaded tree, in
 * order; entries added since are appended, and arrive in order too (edits are
 * sorted), so both runs can be searched by halves. One sort at the end.
 */
typedef struct dir {
	sb_tree t;
	size_t sorted;
} dir;

static sb_tree_entry *get_entry(dir *d, const char *name, size_t len)
{
	sb_tree head = {d->t.v, d->sorted, 0}, tail = {d->t.v + d->sorted, d->t.n - d->sorted, 0};
	const sb_tree_entry *e = sb_tree_find(&head, name, len);
	if (!e)
		e = sb_tree_find(&tail, name, len);
	return (sb_tree_entry *)e;
}

static int set_entry(dir *d, const char *name, size_t len, const sb_tree_entry *e)
{
	sb_tree_entry *cur = get_entry(d, name, len);
	if (!cur) {
		cur = sb_tree_add(&d->t, name, len);
		if (!cur)
			return -ENOMEM;
	}
	char *keep = cur->name;
	*cur = *e;
	cur->name = keep;
	cur->name_len = len;
	return 0;
}

static void remove_entry(dir *d, sb_tree_entry *e)
{
	size_t i = (size_t)(e - d->t.v);
	sb_tree_remove(&d->t, i);
	if (i < d->sorted)
		d->sorted--;
}

/*
 * Applies edits[0..n) — all relative to this directory, sorted — to the tree
 * `id` (NULL: an empty directory) and stores the result in *ret.
 * `prefix_len` is how much of each edit's path names this directory (plus '/').
 */
static int edit_dir(editor *ed, const sb_id *id, const sb_edit *edits, size_t n, size_t prefix_len,
		    sb_id *ret)
{
	dir d = {SB_TREE_INIT, 0};
	int r = 0;
	/* The prefix names this directory: one '/' per level below the root. */
	size_t levels = 0;
	for (size_t k = 0; k < prefix_len; k++)
		levels += edits[0].path[k] == '/';
	if (levels >= SB_TREE_MAX_DEPTH)
		return sb_error_set(ed->err, ELOOP, "'%.200s...' nests deeper than %d levels",
				    edits[0].path, SB_TREE_MAX_DEPTH);
	if (id) {
		r = sb_tree_load(ed->store, id, &d.t, ed->err);
		if (r < 0)
			return r;
		d.sorted = d.t.n;
		ed->st.trees_read++;
	}
	size_t i = 0;
	while (r >= 0 && i < n) {
		const char *rel = edits[i].path + prefix_len;
		size_t rel_len = edits[i].path_len - prefix_len;
		size_t cl = first_len(rel, rel_len);
		if (cl == 0) {
			r = sb_error_set(ed->err, EINVAL, "bad path in edit list");
			break;
		}
		/* The group: every edit whose path starts with this component. */
		size_t j = i;
		while (j < n) {
			const char *o = edits[j].path + prefix_len;
			size_t ol = edits[j].path_len - prefix_len;
			if (ol < cl || memcmp(o, rel, cl) != 0 || (ol > cl && o[cl] != '/'))
				break;
			j++;
		}
		size_t k = i;
		if (rel_len == cl) {
			/* An edit of the entry itself comes first in its group. */
			const sb_edit *e = &edits[i];
			sb_tree_entry *cur = get_entry(&d, rel, cl);
			sb_tree_entry ne = e->entry;
			switch (e->op) {
			case SB_EDIT_DELETE:
				if (cur)
					remove_entry(&d, cur);
				break;
			case SB_EDIT_PUT:
				r = set_entry(&d, rel, cl, &ne);
				break;
			case SB_EDIT_DIR:
			case SB_EDIT_DIR_EMPTY:
				ne.type = SB_FT_DIR;
				ne.size = 0;
				if (e->op == SB_EDIT_DIR && cur && cur->type == SB_FT_DIR) {
					ne.id = cur->id;
				} else {
					sb_tree empty = SB_TREE_INIT;
					r = sb_tree_save(ed->store, &empty, &ne.id, ed->err);
				}
				if (r >= 0)
					r = set_entry(&d, rel, cl, &ne);
				break;
			default:
				r = sb_error_set(ed->err, EINVAL, "unknown edit");
			}
			k++;
		}
		if (r >= 0 && k < j) {
			/* Edits below this entry: it must be a directory by now. */
			sb_tree_entry *cur = get_entry(&d, rel, cl);
			if (!cur)
				r = sb_error_set(ed->err, ENOENT,
						 "edit below missing directory '%.*s'",
						 (int)(prefix_len + cl), edits[k].path);
			else if (cur->type != SB_FT_DIR)
				r = sb_error_set(ed->err, ENOTDIR,
						 "edit below non-directory '%.*s'",
						 (int)(prefix_len + cl), edits[k].path);
			else {
				sb_id child = cur->id, nid;
				r = edit_dir(ed, &child, edits + k, j - k, prefix_len + cl + 1,
					     &nid);
				if (r >= 0) {
					cur = get_entry(&d, rel, cl);
					cur->id = nid;
				}
			}
		}
		i = j;
	}
	if (r >= 0) {
		sb_tree_sort(&d.t);
		r = sb_tree_save(ed->store, &d.t, ret, ed->err);
		ed->st.trees_written++;
	}
	sb_tree_release(&d.t);
	return r;
}

int sb_tree_edit(sb_store *s, const sb_id *root, const sb_edit *edits, size_t n, sb_id *ret_root,
		 sb_edit_stats *ret_stats, sb_error *err)
{
	editor ed = {.store = s, .err = err};
	int r = n ? edit_dir(&ed, root, edits, n, 0, ret_root) : (*ret_root = *root, 0);
	if (ret_stats)
		*ret_stats = ed.st;
	return r;
}

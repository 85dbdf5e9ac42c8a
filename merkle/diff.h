/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Tree diff: walks two Merkle trees side by side and reports what differs,
 * skipping every pair of subtrees whose ids are equal — its cost follows the
 * number of differences, not the size of the tree (count the store's
 * objects_read to see it).
 *
 * Each difference is reported once, in path order (parents before children,
 * as sb_path_cmp sorts), through a callback:
 *
 *   'A'  added: only in b        (an added directory: itself, then every child)
 *   'D'  deleted: only in a      (a deleted directory: itself, then every child)
 *   'M'  modified: same type, other content, or other mode bits
 *        (or other mtime, with SB_DIFF_MTIME)
 *   'T'  type changed between file, symlink and fifo
 *
 * A path that is a directory on one side and not on the other is reported as
 * 'D' of the old entry (and its subtree) and 'A' of the new (and its subtree).
 * Directories themselves are reported as 'M' only when their mode (or mtime,
 * with SB_DIFF_MTIME) changed; their children speak for their contents.
 *
 * Path filters: with paths set, only entries at or below one of the given
 * prefixes are reported, and subtrees outside every prefix are not loaded.
 */

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "store.h"
#include "tree.h"

typedef enum sb_diff_flags {
	SB_DIFF_MTIME = 1 << 0, /* an mtime difference alone counts as 'M' */
} sb_diff_flags;

typedef struct sb_diff_entry {
	const char *path; /* '/'-joined, relative; valid during the callback only */
	size_t path_len;
	char status;		  /* 'A', 'D', 'M', 'T' */
	const sb_tree_entry *old; /* NULL for 'A' */
	const sb_tree_entry *new; /* NULL for 'D' */
} sb_diff_entry;

/* Return < 0 to stop the walk (that value is returned by sb_diff_trees). */
typedef int (*sb_diff_fn)(void *userdata, const sb_diff_entry *e);

typedef struct sb_diff_opts {
	sb_diff_flags flags;
	const char *const *paths; /* NULL-terminated prefixes, or NULL for all */
} sb_diff_opts;

int sb_diff_trees(sb_store *s, const sb_id *a, const sb_id *b, const sb_diff_opts *opts,
		  sb_diff_fn fn, void *userdata, sb_error *err);

/*
 * A diff kept in memory: sb_diff_collect is an sb_diff_fn appending a copy of
 * each entry (entries' names are not kept: .name is NULL) to an sb_diff_list.
 */
typedef struct sb_diff_item {
	char status; /* A D M T */
	char *path;  /* owned */
	size_t path_len;
	sb_tree_entry old, new; /* type SB_FT_NONE when absent */
} sb_diff_item;

typedef struct sb_diff_list {
	sb_diff_item *v;
	size_t n, cap;
} sb_diff_list;

int sb_diff_collect(void *list, const sb_diff_entry *e);
void sb_diff_list_release(sb_diff_list *l);

/* Counts per status, filled by sb_diff_count (a ready-made callback). */
typedef struct sb_diff_counts {
	uint64_t added, deleted, modified, typechanged;
	uint64_t added_dirs, deleted_dirs;
} sb_diff_counts;
int sb_diff_count(void *counts, const sb_diff_entry *e);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Tree edits: a new root from an old one plus a list of path edits, loading
 * and storing only the trees on the edited paths — O(edits x depth), never a
 * walk of the whole tree. This is how a run's staged changes become a tree
 * (baseline + change list) and how `apply` computes its snapshot without
 * re-scanning the workspace.
 *
 *   SB_EDIT_PUT        set path to entry (a file, symlink, fifo, or a
 *                      directory with entry.id as its whole subtree)
 *   SB_EDIT_DELETE     remove path (and everything below it); absent is fine
 *   SB_EDIT_DIR        make path a directory with entry's mode and mtime,
 *                      keeping its children if it already was one, else empty
 *   SB_EDIT_DIR_EMPTY  make path an empty directory (mode, mtime from entry):
 *                      an opaque directory replacing whatever was there
 *
 * Edits must be sorted by path (sb_path_cmp order, parents first) and name
 * each path at most once. An edit below a path that is not a directory
 * (after the edits before it) is -ENOTDIR naming the path; missing parent
 * directories are -ENOENT: the upper layer of an overlay always holds the
 * parents of what it changed.
 */

#include "error.h"
#include "store.h"
#include "tree.h"

typedef enum sb_edit_op {
	SB_EDIT_PUT = 1,
	SB_EDIT_DELETE,
	SB_EDIT_DIR,
	SB_EDIT_DIR_EMPTY,
} sb_edit_op;

typedef struct sb_edit {
	const char *path; /* relative, '/'-separated, no "." or ".." */
	size_t path_len;
	sb_edit_op op;
	sb_tree_entry entry; /* PUT: all fields; DIR*: mode, mtime_ns; name unused */
} sb_edit;

typedef struct sb_edit_stats {
	uint64_t trees_read, trees_written;
} sb_edit_stats;

int sb_tree_edit(sb_store *s, const sb_id *root, const sb_edit *edits, size_t n, sb_id *ret_root,
		 sb_edit_stats *ret_stats, sb_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Reference check of a workspace's snapshots: every manifest parses, and
 * every tree, file content, chunk and symlink target that a snapshot names
 * is present in the store and intact. Shared subtrees are checked once (a
 * set of visited tree ids), so the cost is the number of distinct trees.
 *
 * Each problem goes to cb with the snapshot id (-1 when not tied to one), the
 * object id when known, and the path inside the snapshot; checking goes on.
 * Returns the number of problems (>= 0) or a negative errno when the
 * workspace cannot be read at all.
 */

#include "error.h"
#include "hash.h"
#include "workspace.h"

typedef void (*sb_fsck_problem_fn)(void *userdata, int64_t snapshot, const sb_id *id,
				   const char *path, const char *what);

typedef struct sb_fsck_stats {
	uint64_t snapshots, trees, contents;
} sb_fsck_stats;

int sb_fsck_snapshots(sb_workspace *w, sb_fsck_problem_fn cb, void *userdata,
		      sb_fsck_stats *ret_stats, sb_error *err);

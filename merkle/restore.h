/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Restore: make the directory at root_fd, whose state is the tree cur (as a
 * scan just recorded it), equal to the tree target.
 *
 * The two trees are walked side by side, by directory fd, skipping every
 * pair of subtrees with equal ids, so the work follows the differences:
 *
 *   - entries only in cur are removed (directories recursively)
 *   - entries only in target are written (sb_export_entry: temp file +
 *     rename in the same directory, so no reader sees a half-written file)
 *   - a directory only in target whose tree equals a directory only in cur
 *     in the same parent is renamed, not rewritten
 *   - type changes remove the old entry, then write the new
 *   - equal content with other mode or mtime: only the attributes are set
 *   - directories get their mode and mtime after their children
 *
 * Only what the current tree records is removed: a directory that also holds
 * entries no scan recorded (sockets, files created since the scan, protected
 * paths) keeps them, and stays. A mount point inside the workspace is never
 * entered (-EXDEV naming it): no snapshot knows another filesystem's contents.
 *
 * Nothing is ever followed: directories are opened with O_NOFOLLOW relative
 * to their parent's fd, so a symlink planted where a directory was expected
 * (src -> /etc) is removed and replaced, never written through; removals use
 * unlinkat, attribute changes AT_SYMLINK_NOFOLLOW. Nothing outside root_fd is
 * created, modified or deleted.
 *
 * Paths matched by `protect` (the exclusions) are never touched: not removed,
 * not written, not descended into for removal.
 *
 * Restore is idempotent: killed part-way, a new scan + restore finishes the
 * job (leftover temp files are entries only in cur, and are removed). The
 * caller checks the result by re-scanning and comparing root ids.
 */

#include "error.h"
#include "ignore.h"
#include "store.h"
#include "tree.h"

typedef struct sb_restore_stats {
	uint64_t written; /* entries written (files, symlinks, fifos, dirs) */
	uint64_t removed; /* entries removed */
	uint64_t attrs;	  /* entries whose mode or mtime alone was set */
	uint64_t renamed; /* directories moved instead of rewritten */
	uint64_t kept;	  /* directories kept: they hold protected or unrecorded entries */
	uint64_t trees_compared;
} sb_restore_stats;

int sb_restore_tree(sb_store *s, int root_fd, const sb_id *cur, const sb_id *target,
		    const sb_ignore *protect, sb_restore_stats *ret_stats, sb_error *err);

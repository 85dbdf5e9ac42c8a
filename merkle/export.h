/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Writing stored trees out to the filesystem.
 *
 * sb_export_tree writes the tree root_id into dir_fd, which must be an empty
 * directory (-ENOTEMPTY naming it and what it holds, without touching it
 * otherwise). Files, directories, symlinks (never followed) and fifos come
 * out with their permission bits (setuid, setgid and sticky included: the
 * mode is applied after the content is written) and mtimes; file content is
 * written sparse (runs of zeros become holes). Directories are created 0700,
 * filled, then given their mode and mtime, deepest first, so read-only
 * directories and directory mtimes come out right. The root directory itself
 * has no entry in a tree: its mode and mtime are left alone. Ownership is
 * not restored. Everything is done by fd (openat, mkdirat, symlinkat,
 * mkfifoat, renameat2), so paths longer than PATH_MAX work; open directory
 * fds are bounded (ancestors are reopened with "..", checked by dev/inode).
 *
 * Every object read is verified by the store: a corrupt one is -EBADMSG
 * naming it (and the path being written). On error, what was written stays.
 *
 *   sb_export_stats st;
 *   sb_export_tree(store, &root, dir_fd, 0, &st, err);
 *
 * The building blocks, for restore:
 *
 *   sb_export_entry(store, dir_fd, e, path, flags, &child_fd, &st, err)
 *     materialises one entry under dir_fd as e->name. A file, symlink or fifo
 *     is created under a temporary name (".sb-tmp-<pid>-<n>" in the same
 *     directory), completed (content, mode, mtime) and renamed into place, so
 *     a name never holds a half-written file. With SB_EXPORT_REPLACE it
 *     replaces whatever non-directory holds the name: swapped with it
 *     (RENAME_EXCHANGE, a plain rename where that is not supported), the old
 *     entry then unlinked under the temporary name — a directory there is
 *     -EISDIR and stays. Without it, an existing name is -EEXIST. Nothing is
 *     fsync'ed: after a power failure a file just written may be empty or
 *     partly written (a restore run again rewrites it). A directory is created (or, with
 *     SB_EXPORT_REPLACE, an existing one reused) with mode 0700 and
 *     returned open in *ret_dir_fd; fill it, then call sb_export_dir_finish.
 *   sb_export_dir_finish(fd, e, path, err)
 *     gives a directory its final mode, then its mtime.
 */

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hash.h"
#include "store.h"
#include "tree.h"

typedef enum sb_export_flags {
	SB_EXPORT_REPLACE = 1 << 0,   /* sb_export_entry: rename over an existing name */
	SB_EXPORT_NO_SPARSE = 1 << 1, /* write zeros instead of leaving holes */
} sb_export_flags;

typedef struct sb_export_stats {
	uint64_t files, dirs, symlinks, fifos; /* created (the root not counted) */
	uint64_t bytes;			       /* file content written */
	uint64_t objects_read; /* trees, blobs and chunk lists read from the store */
} sb_export_stats;

int sb_export_tree(sb_store *s, const sb_id *root_id, int dir_fd, sb_export_flags flags,
		   sb_export_stats *ret_stats, sb_error *err);

/*
 * What a name must hold for SB_EXPORT_REPLACE to take it over, as a scan saw
 * it: a file, symlink or fifo of this type, size and mtime, or (present
 * false) nothing at all. A file, symlink or fifo is swapped in (or, for
 * nothing, renamed in with RENAME_NOREPLACE); the entry swapped out is then
 * lstat'ed under the temp name, so what gets deleted is exactly what was
 * checked. Anything else there — a file created or edited since the scan —
 * is swapped back, the new entry dropped, and -ESTALE returned naming it:
 * no edit is lost to a race with the scan. (Writes through a descriptor the
 * editor already holds are beyond any check.) Where renameat2's flags are
 * refused (NFS, an old kernel, a filter), the old entry is taken away as
 * sb_export_remove does, then the new one linked in, which no existing name
 * is lost to either; only where hard links are refused too is there a
 * window between a look and a rename.
 */
typedef struct sb_export_expect {
	bool present;
	sb_ftype type;
	uint64_t size;
	int64_t mtime_ns;
} sb_export_expect;

/* The expectation for a name a scan recorded as e (NULL: nothing there). */
sb_export_expect sb_export_expect_entry(const sb_tree_entry *e);

/*
 * Removes the non-directory dir_fd/name when it is what expect describes:
 * it is renamed to a temp name, checked there and unlinked, or given its
 * name back and -ESTALE returned (err says so). -ENOENT when nothing is
 * there and -EISDIR for a directory (err untouched: both left to the
 * caller); -errno otherwise.
 */
int sb_export_remove(int dir_fd, const char *name, const sb_export_expect *expect, sb_error *err);

/*
 * path (may be NULL: e->name is used) only names the entry in messages.
 * ret_dir_fd is required for a directory entry and ignored otherwise.
 * expect (may be NULL: whatever stands there is replaced) is only used with
 * SB_EXPORT_REPLACE, and not for directories, which are merged into.
 * stats (may be NULL) is added to.
 */
int sb_export_entry(sb_store *s, int dir_fd, const sb_tree_entry *e, const sb_export_expect *expect,
		    const char *path, sb_export_flags flags, int *ret_dir_fd,
		    sb_export_stats *stats, sb_error *err);

int sb_export_dir_finish(int fd, const sb_tree_entry *e, const char *path, sb_error *err);

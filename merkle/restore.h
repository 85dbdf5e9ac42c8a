/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Restore: make the directory at root_fd, whose state is the tree cur (as a
 * scan just recorded it), equal to the tree target; then check the result
 * by re-reading what was changed.
 *
 *   sb_restore_touched *t;
 *   sb_restore_run(store, root_fd, &cur, &target, &opts, &t, &stats, err);
 *   sb_restore_check(store, root_fd, &target, t, ignore, &rehashed, &root, &cs, err);
 *   sb_restore_touched_free(t);
 *
 * (sb_restore_tree is sb_restore_run without the record, for apply.)
 *
 * The two trees are walked side by side, by directory fd, skipping every
 * pair of subtrees with equal ids, so the work follows the differences:
 *
 *   - entries only in cur are removed (directories recursively)
 *   - entries only in target are written (sb_export_entry: temp file,
 *     then swapped into place in the same directory, so no reader sees a
 *     half-written file)
 *   - a directory only in target whose tree equals a directory only in cur
 *     in the same parent is renamed, not rewritten
 *   - type changes remove the old entry, then write the new
 *   - equal content with other mode or mtime: only the attributes are set
 *   - directories get their mode and mtime after their children
 *
 * Files, symlinks and fifos are written by a few threads at once (opts
 * threads); the walk, removals, renames and directories stay on the calling
 * thread, and a directory gets its mode and mtime only once every write into
 * it has landed. Nothing is fsync'ed (DESIGN.md: durability is the store's,
 * which holds the pre-restore state before anything here is written): after
 * a power failure a file being written may be empty or partly written, and
 * running the restore again rewrites it.
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
 * job (leftover temp files are entries only in cur, and are removed).
 *
 * The check (sb_restore_check) costs O(what the restore changed), not
 * O(workspace). After every write has landed it reads from the filesystem:
 *
 *   - every entry the restore wrote or whose mode or mtime it set: lstat
 *     (type, mode, size, mtime), a file's content re-hashed, a symlink's
 *     target re-read;
 *   - every directory in which the restore wrote, removed, renamed or set
 *     the attributes of an entry: listed again. A name the restore removed
 *     must be gone; a name that is there and not in the target is read (with
 *     the scanner's rules: excluded paths, sockets, devices, mount points
 *     and names over 255 bytes are left out) and is a difference; every
 *     other name must still be there, with the target's type (d_type);
 *   - every directory the restore walked through on the way to a change
 *     (the root included): its mode and mtime, through an fd opened without
 *     following symlinks;
 *   - every directory the restore wrote whole, and every entry in the
 *     target that the restore left alone because it is excluded now: its
 *     whole subtree, as above.
 *
 * It builds the trees of those directories bottom-up from what it read,
 * taking every other entry (with its id, and for a directory its whole
 * subtree) from the target — where the pre-restore scan found the workspace
 * already equal to it — re-encodes and hashes them (only the trees on the
 * paths of the changes), and compares the resulting root with target: the
 * first difference is -ESTALE naming the path and what differs. What it does
 * not see: a change, since the pre-restore scan, to an entry the restore did
 * not touch, other than a name appearing or vanishing in a directory it
 * changed (a file edited in a directory it left alone, say). The next scan
 * (status, snapshot) sees that.
 *
 * The files the check re-hashed can then go into a stat cache, so that the
 * next scan trusts them instead of hashing them again: sb_restore_record,
 * once the check has passed and the cache's stamp is past the writes
 * (sb_statcache_restamp_after). A file the check read within the clock
 * tick of its last change is read once more for its record (racily clean:
 * statcache.h); the others are recorded as the check read them:
 *
 *   t = CLOCK_REALTIME now                  right after sb_restore_run
 *   sb_restore_check(..., &rehashed, &root, ...)
 *   root equals target: sb_statcache_restamp_after(cache, t);
 *                       sb_restore_record(root_fd, rehashed, cache);
 */

#include <stdbool.h>

#include "error.h"
#include "ignore.h"
#include "statcache.h"
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

typedef struct sb_restore_opts {
	const sb_ignore *protect; /* never touched; may be NULL */
	int threads;		  /* file writers; 0: a default for this machine, 1: none */
} sb_restore_opts;

/* What one restore touched: the paths sb_restore_check re-reads. */
typedef struct sb_restore_touched sb_restore_touched;

void sb_restore_touched_free(sb_restore_touched *t);
static inline void sb_restore_touched_freep(sb_restore_touched **p)
{
	sb_restore_touched_free(*p);
}

/* ret_touched may be NULL (apply has no use for it). ret_stats is filled on failure too. */
int sb_restore_run(sb_store *s, int root_fd, const sb_id *cur, const sb_id *target,
		   const sb_restore_opts *opts, sb_restore_touched **ret_touched,
		   sb_restore_stats *ret_stats, sb_error *err);

int sb_restore_tree(sb_store *s, int root_fd, const sb_id *cur, const sb_id *target,
		    const sb_ignore *protect, sb_restore_stats *ret_stats, sb_error *err);

/* The files a check re-hashed (path, inode, content id), for sb_restore_record. */
typedef struct sb_restore_rehashed sb_restore_rehashed;

void sb_restore_rehashed_free(sb_restore_rehashed *r);
static inline void sb_restore_rehashed_freep(sb_restore_rehashed **p)
{
	sb_restore_rehashed_free(*p);
}

typedef struct sb_restore_check_stats {
	uint64_t dirs_listed;  /* directories listed again */
	uint64_t entries;      /* names lstat'ed in them */
	uint64_t files_hashed; /* files whose content was re-hashed */
	uint64_t bytes_hashed;
	uint64_t trees_encoded; /* trees re-encoded (the paths of the changes) */
} sb_restore_check_stats;

/*
 * touched: from the sb_restore_run that brought the workspace to target.
 * ignore: the exclusions a scan of the workspace would use now (after the
 * restore: the target's, with the restored .snapboxignore). ret_rehashed
 * may be NULL. Returns 0 with the root composed as above in *ret_root (it
 * equals target) and the files it re-hashed in *ret_rehashed; -ESTALE when
 * something differs, err naming the first path that does and how; other
 * errnos when the filesystem could not be read (err names the path).
 */
int sb_restore_check(sb_store *s, int root_fd, const sb_id *target,
		     const sb_restore_touched *touched, const sb_ignore *ignore,
		     sb_restore_rehashed **ret_rehashed, sb_id *ret_root,
		     sb_restore_check_stats *ret_stats, sb_error *err);

/*
 * Records in cache the files a check that passed re-hashed: each opened
 * again beneath root_fd (never through a symlink), stat'ed, read and
 * stat'ed again, and recorded with the first stat only when it is still
 * the same inode, did not change while read, and still holds what the check
 * read. That content is the target's, so the cache names only objects the
 * store holds; anything else is left for the next scan to hash. Returns how
 * many were recorded, or -ENOMEM.
 */
int sb_restore_record(int root_fd, const sb_restore_rehashed *rehashed, sb_statcache *cache);

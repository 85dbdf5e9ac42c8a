/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The scanner: records a directory tree into the store and returns its root
 * tree id.
 *
 * It walks by fd (openat O_NOFOLLOW|O_NOATIME where allowed, fstat the fd;
 * O_PATH for a directory whose listing the stat cache holds),
 * never follows a symlink, never builds a path string to open anything (so
 * paths longer than PATH_MAX work), does not cross into another filesystem's
 * mount unless SB_SCAN_CROSS_MOUNTS, and hashes file content on all cores.
 * The walk itself is spread too: a subtree may be handed to an idle worker
 * thread; the tree, the stats and the warnings are the same either way.
 * Sockets and device nodes are skipped and reported through warn().
 *
 * A stat cache (statcache.h) makes a re-scan of an unchanged tree hash
 * nothing: a file whose (dev, ino, mode, size, mtime, ctime) match the cache
 * reuses the cached id, unless it is racily clean (mtime not older than the
 * cache's own write time), as git does. A directory whose own stat matches
 * is not listed again either: its names come from the cache (each is still
 * stat'ed), as git's untracked cache does.
 *
 * A file that changes while it is read (size or mtime/ctime differ before
 * and after) is read again, a few times; it is never stored with an id that
 * does not match the stored bytes.
 *
 *   sb_scan_opts o = { .cache = cache, .ignore = ign, .warn = fn, ... };
 *   sb_scan_run(store, root_fd, &o, &root_id, &stats, err);
 *   then sb_statcache_save(cache, ...) and sb_store_flush(store, ...)
 *
 * Details the callers rely on:
 *  - root_fd may be O_PATH; it is not moved or closed. The root directory has
 *    no entry of its own in the tree; its children are the root tree.
 *  - A directory on another device (a mount point) is left out of the tree
 *    entirely, with a warning and counted in skipped: recording it as empty
 *    would make a restore empty the mounted filesystem's view, and recording
 *    nothing keeps it out of every later diff and restore.
 *  - A path matched by opts->ignore is left out (a directory is not entered)
 *    and counted in skipped, without a warning. The ignore file itself is
 *    never excluded (ignore.h).
 *  - A file, directory or symlink that vanishes or changes type between
 *    readdir and open is left out with a warning (it is gone: that is the
 *    truth). Anything that exists but cannot be read (EACCES, EIO, ...) fails
 *    the scan naming the path: a hole would read as a deletion to restore.
 *  - With a cache, sb_statcache_begin() is called at the start; every regular
 *    file read without a change under it, every directory listed (with the
 *    id of its tree), and every cache hit, is recorded for the next save. A
 *    cache hit is trusted without asking the store, and so is a directory's
 *    tree the cache names already: the cache lives beside the store's own
 *    workspace record and is saved only after the objects it names were
 *    flushed (capture.c), so its ids are in that store; whatever deletes
 *    objects (gc) must drop the cache entries naming them.
 *  - Stats: dirs does not count the root. files_hashed counts files read,
 *    rereads the extra reads of files that changed meanwhile, dirs_listed
 *    the directories whose names were read rather than taken from the cache.
 *  - progress runs on the calling thread, at most ten times a second, also
 *    while waiting for long hashes; warn runs on the calling thread too.
 *  - Open directory fds stay below a budget derived from RLIMIT_NOFILE (at
 *    most 1024): deeper trees close ancestors and reopen them through ".."
 *    (checked by device and inode; -ESTALE if one moved meanwhile).
 *  - On failure nothing is returned but err; objects already stored stay
 *    (unreferenced until something refers to them; gc drops them).
 */

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hash.h"
#include "store.h"

typedef struct sb_statcache sb_statcache;
typedef struct sb_ignore sb_ignore;

typedef enum sb_scan_flags {
	SB_SCAN_CROSS_MOUNTS = 1 << 0, /* descend into directories on other devices */
} sb_scan_flags;

typedef struct sb_scan_stats {
	uint64_t files, dirs, symlinks, fifos;
	uint64_t skipped;      /* sockets, devices, excluded paths */
	uint64_t bytes;	       /* total size of regular files */
	uint64_t files_hashed; /* files whose content was read (cache misses) */
	uint64_t bytes_hashed;
	uint64_t cache_hits;
	uint64_t rereads;     /* files read again because they changed meanwhile */
	uint64_t dirs_listed; /* directories read (the others' names came from the cache) */
} sb_scan_stats;

/* path is relative to the root, '/'-joined, not NUL-safe for display (quote it). */
typedef void (*sb_scan_warn_fn)(void *userdata, const char *path, const char *why);
/* Called from the walking thread now and then: entries seen, bytes hashed so far. */
typedef void (*sb_scan_progress_fn)(void *userdata, const sb_scan_stats *so_far);

typedef struct sb_scan_opts {
	sb_scan_flags flags;
	sb_statcache *cache;	 /* may be NULL: hash everything */
	const sb_ignore *ignore; /* may be NULL: exclude nothing */
	int threads;		 /* 0: one per online CPU */
	sb_scan_warn_fn warn;
	sb_scan_progress_fn progress;
	void *userdata;
} sb_scan_opts;

int sb_scan_run(sb_store *s, int root_fd, const sb_scan_opts *opts, sb_id *ret_root,
		sb_scan_stats *ret_stats, sb_error *err);

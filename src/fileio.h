/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Whole-buffer I/O and atomic replacement of small files.
 *
 * sb_write_atomic(dir_fd, name, ...) writes "name.lock" with O_EXCL, then
 * (SB_WRITE_SYNC) fsyncs it, renames it over name and fsyncs dir_fd — git's
 * lockfile protocol. A crash leaves either the old or the new file, and at
 * worst a stale name.lock, which the next writer reports as -EEXIST naming it.
 * On failure the lock file is removed and name is untouched.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include "error.h"

typedef enum sb_write_flags {
	SB_WRITE_SYNC = 1 << 0,	     /* fsync the file and its directory */
	SB_WRITE_NOCLOBBER = 1 << 1, /* fail with -EEXIST when name exists (link, not rename) */
	SB_WRITE_LOCKED = 1 << 2,    /* the caller holds the lock that guards name: a
				      * name.lock left behind is a crashed writer's, remove it */
} sb_write_flags;

/* read/write until done; short read at EOF returns the count read. */
ssize_t sb_read_full(int fd, void *buf, size_t len);
int sb_write_full(int fd, const void *buf, size_t len);
ssize_t sb_pread_full(int fd, void *buf, size_t len, off_t off);
int sb_pwrite_full(int fd, const void *buf, size_t len, off_t off);

/*
 * Opens a file beneath dir_fd for reading (no symlinks followed: -ELOOP) and
 * fstat's it into *ret_st. Anything but a regular file is -EINVAL (a fifo is
 * opened non-blocking, never waited on); a file larger than max is -EFBIG.
 * Returns the fd.
 */
int sb_open_file_at(int dir_fd, const char *name, uint64_t max, struct stat *ret_st, sb_error *err);

/*
 * Reads a whole file beneath dir_fd (no symlinks followed: -ELOOP) into a
 * malloc'd, NUL-terminated buffer. Anything but a regular file is -EINVAL
 * (a fifo is opened non-blocking, never waited on); files larger than max
 * give -EFBIG.
 */
int sb_read_file_at(int dir_fd, const char *name, size_t max, char **ret_data, size_t *ret_len,
		    sb_error *err);

int sb_write_atomic(int dir_fd, const char *name, const void *data, size_t len, mode_t mode,
		    sb_write_flags flags, sb_error *err);

/*
 * Removes name under dir_fd and, if it is a directory, everything in it,
 * without following any symlink; directories without write or search
 * permission for us are chmod'ed first. A missing name is not an error.
 */
int sb_remove_tree_at(int dir_fd, const char *name, sb_error *err);

/*
 * File times as nanoseconds since the epoch, and back. Saturating: a time
 * beyond what int64 nanoseconds hold (ext4 takes years past 2262) clamps
 * instead of overflowing; times before 1970 keep a tv_nsec in [0, 1e9).
 */
#define SB_NSEC 1000000000LL
int64_t sb_ns_from_timespec(const struct timespec *ts);
struct timespec sb_timespec_from_ns(int64_t ns);
/*
 * Renames from_fd/from to to_fd/to unless to exists (-EEXIST), as
 * renameat2(RENAME_NOREPLACE). Where that flag is refused (NFS, an old
 * kernel, a filter: EINVAL or ENOSYS), a non-directory is hard-linked then
 * unlinked, which is as atomic; only where links are refused too (and for a
 * directory) does it look, then rename, with a window between the two.
 * -errno.
 */
int sb_rename_noreplace(int from_fd, const char *from, int to_fd, const char *to);

/* The wall clock (CLOCK_REALTIME) in the same unit, to compare with file times. */
int64_t sb_now_ns(void);
/* The coarse wall clock (CLOCK_REALTIME_COARSE), which most file times come from. */
int64_t sb_coarse_now_ns(void);

/*
 * Whether two stats of one open file show it unchanged in between: same
 * inode, size, mtime and ctime (how a read is known to be stable).
 */
bool sb_stat_unchanged(const struct stat *a, const struct stat *b);

/* fsync a directory given as (dir_fd, name); name may be "." */
int sb_fsync_dir_at(int dir_fd, const char *name);

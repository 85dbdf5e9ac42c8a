/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The beneath-resolver: the one way a workspace path is opened for writing.
 *
 * A workspace is hostile. Any component of a path may have been swapped for a
 * symlink (say src -> /etc) between the moment snapbox looked and the moment it
 * writes. sb_open_beneath() opens a relative path so that resolution never
 * leaves dir_fd and never follows a symlink or magic link on any component,
 * including the last:
 *
 *   1. openat2(dir_fd, path, {flags, mode,
 *              RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS})
 *   2. when openat2 is refused (ENOSYS on old kernels, EPERM under a seccomp
 *      filter, E2BIG) or the path is longer than the kernel takes, an O_PATH
 *      walk: one openat(O_PATH|O_DIRECTORY|O_NOFOLLOW) per directory component,
 *      then openat(O_NOFOLLOW) on the last.
 *
 * Paths are '/'-separated byte strings; empty components and "." are skipped,
 * ".." and absolute paths are refused with -EXDEV. A symlink on the way gives
 * -ELOOP (or -ENOTDIR for a non-directory in the middle).
 *
 * All fds returned are O_CLOEXEC. Errors fill err with the path at fault.
 */

#include <stdbool.h>
#include <sys/types.h>
#include "error.h"

/* Returns an fd, or a negative errno. O_NOFOLLOW and O_CLOEXEC are added. */
int sb_open_beneath(int dir_fd, const char *path, int flags, mode_t mode, sb_error *err);

/*
 * Opens the directory holding the last component of path (O_PATH is not used:
 * the fd can be used with mkdirat, renameat, unlinkat, fchmodat ...).
 * *ret_name points into path at the last component (never empty, never "." or
 * ".."). Returns a directory fd or a negative errno.
 */
int sb_open_parent_beneath(int dir_fd, const char *path, const char **ret_name, sb_error *err);

/* Creates each missing directory component of path beneath dir_fd (mode for new ones). */
int sb_mkdir_beneath(int dir_fd, const char *path, mode_t mode, sb_error *err);

/*
 * Force the O_PATH walk (tests, and hosts where openat2 misbehaves). Also set
 * at start-up when the environment has SNAPBOX_NO_OPENAT2=1.
 */
void sb_safefs_force_fallback(bool on);
bool sb_safefs_fallback_forced(void);

/* Whether this kernel accepts openat2 with the resolve flags above. */
bool sb_safefs_have_openat2(void);

/* Reject a single name that is empty, ".", "..", or contains '/'. */
bool sb_name_is_valid(const char *name, size_t len);

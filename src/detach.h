/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Background work that no command waits for, git's `gc --auto` way: fn runs
 * in a double-forked, setsid'ed process (so it is no session leader, can
 * never acquire a terminal, and nobody has to reap it) named name, at nice
 * 19 and the lowest best-effort I/O priority — low, but not the idle
 * classes, which a busy machine can starve for as long as the load lasts —
 * with stdio on /dev/null, default signal dispositions, "/" as its working
 * directory, and every fd closed but keep[0..n_keep), which it finds as
 * SB_DETACH_FD(0), SB_DETACH_FD(1), ...
 *
 *   sb_detach("snapbox-trash", &trash_fd, 1, clean, NULL, &err);   merkle/trash.c
 *   sb_detach_close(mount_fd);                                     cli/run.c
 *
 * sb_detach returns once the process has closed every other fd it
 * inherited: until then it shares the caller's flock(2)s — the workspace
 * lock among them — and the next snapbox command would find the workspace
 * busy. It does not wait for fn.
 *
 * Fork safety: call both while the process has a single thread (fn may use
 * malloc and stdio, and so may the fd closing where close_range(2) is
 * missing).
 */

#include "error.h"

#include <stddef.h>

#define SB_DETACH_MAX_KEEP 2
#define SB_DETACH_FD(i)	   (3 + (i))

typedef void (*sb_detach_fn)(void *userdata);

/* 0 once started; a negative errno (err says what) when it could not be. */
int sb_detach(const char *name, const int *keep, size_t n_keep, sb_detach_fn fn, void *userdata,
	      sb_error *err);

/*
 * Hands fd, whose last close is slow (an overlay mount's: see
 * sb_sandbox_take_workspace_fd), to a detached process "snapbox-umount",
 * which closes it only once the caller's copy is closed, so that it and not
 * the caller pays. Falls back to closing it here.
 */
void sb_detach_close(int fd);

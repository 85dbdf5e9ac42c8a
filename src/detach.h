/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Background work that no command waits for, git's `gc --auto` way: fn runs
 * in a double-forked, setsid'ed process (so it is no session leader, can
 * never acquire a terminal, and nobody has to reap it) named name, at nice
 * 19 and the lowest best-effort I/O priority — low, but not the idle
 * classes, which a busy machine can starve for as long as the load lasts —
 * with stdio on /dev/null, default signal dispositions, "/" as its working
 * directory, and every fd closed but keep, which it finds as fd 3.
 *
 *   sb_detach("snapbox-trash", trash_fd, clean, NULL, &err);   merkle/trash.c
 *   sb_detach_close(mount_fd);                                 cli/run.c
 *
 * sb_detach returns once the process has closed every other fd it
 * inherited: until then it shares the caller's flock(2)s — the workspace
 * lock among them — and the next snapbox command would find the workspace
 * busy. It does not wait for fn.
 *
 * Fork safety: call it while the process has a single thread, as fn may use
 * malloc and stdio (sb_detach_close's only makes a close(2)).
 */

#include "error.h"

typedef void (*sb_detach_fn)(int keep_fd, void *userdata);

/* 0 once started; a negative errno (err says what) when it could not be. */
int sb_detach(const char *name, int keep, sb_detach_fn fn, void *userdata, sb_error *err);

/*
 * Closes fd, whose last close is slow (an overlay mount's: see
 * sb_sandbox_take_workspace_fd), in a detached process "snapbox-umount";
 * closes the caller's copy either way. Falls back to closing it here.
 */
void sb_detach_close(int fd);

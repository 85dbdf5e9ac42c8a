/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The workspace lock: one writer (snapshot, run, apply, restore, gc) per
 * workspace at a time. An flock(2) on a file, so a crashed holder releases it
 * with its last fd; the holder's pid is written into the file for the
 * "workspace is busy (pid N)" message.
 *
 *   sb_lock l = SB_LOCK_INIT;
 *   r = sb_lock_take(&l, dir_fd, "lock", SB_LOCK_WAIT?0, err);   -EBUSY when held
 *   ...
 *   sb_lock_release(&l);
 *
 * The fd is CLOEXEC, so a sandboxed child never inherits it.
 */

#include "error.h"

typedef struct sb_lock {
	int fd;
} sb_lock;

#define SB_LOCK_INIT \
	{            \
		-1   \
	}

typedef enum sb_lock_flags {
	SB_LOCK_WAIT = 1 << 0, /* block until the holder lets go */
} sb_lock_flags;

int sb_lock_take(sb_lock *l, int dir_fd, const char *name, sb_lock_flags flags, sb_error *err);
void sb_lock_release(sb_lock *l);

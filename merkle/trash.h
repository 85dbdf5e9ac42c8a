/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The trash: directories snapbox no longer needs (a run's overlay layers, a
 * discarded session), moved out of the way with one rename and deleted by a
 * detached background process, so that deleting 10k files never delays the
 * command that dropped them — git's `gc --auto` detaching.
 *
 *   <area>/trash/              area: a workspace's directory in the store
 *     <name>-<pid>-<ns>        one entry per sb_trash_put, deleted whole
 *
 *   sb_trash_put(area_fd, dir_fd, "upper", err);  rename dir_fd/upper into the trash
 *   sb_trash_clean(area_fd, err);                 start a cleaner if needed
 *
 * Only what was put there is ever deleted: the cleaner opens the trash by fd
 * and removes entries beneath it with *at() calls that never follow a
 * symlink (sb_remove_tree_at), so a hostile tree in an entry cannot send it
 * anywhere else.
 *
 * Cleaners. One at a time per trash, by an flock(2) on the trash directory.
 * A cleaner takes the lock, deletes every entry it finds, lets go, and looks
 * again: an entry put while it held the lock (whose own sb_trash_clean found
 * the lock taken and left it to this cleaner) is picked up on the next round.
 * A cleaner that is killed leaves its entries half deleted and the lock free;
 * the next sb_trash_clean starts another. An entry that cannot be deleted is
 * left for the next cleaner rather than retried in a loop.
 *
 * The cleaner is a detached process named "snapbox-trash" (src/detach.h:
 * double-forked, nice 19, every fd but the trash's closed before
 * sb_trash_clean returns, so it never keeps the workspace lock alive). Fork
 * safety: sb_trash_clean must be called while the process has a single
 * thread.
 */

#include "error.h"

/*
 * Moves dir_fd/name (any file type) into area_fd's trash, creating the trash
 * as needed. A missing name is not an error. When the rename cannot be done
 * (a trash on another filesystem), name is deleted on the spot instead.
 */
int sb_trash_put(int area_fd, int dir_fd, const char *name, sb_error *err);

/*
 * Starts a detached cleaner when area_fd's trash has entries and no cleaner
 * holds it. Returns without waiting for the deletion, but only once the
 * cleaner has closed every fd it inherited, so no flock of the caller's (the
 * workspace lock) outlives the caller. 1 when a cleaner was started, 0 when
 * none was needed, a negative errno when one could not be started (the trash
 * is then left for a later call; callers usually ignore this).
 */
int sb_trash_clean(int area_fd, sb_error *err);

/*
 * Empties area_fd's trash in the calling process, waiting for a running
 * cleaner to let go first. For tests and for callers that must not leave
 * anything behind. Goes on past an entry it cannot delete, and returns
 * that first failure.
 */
int sb_trash_empty(int area_fd, sb_error *err);

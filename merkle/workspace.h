/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A workspace as the store sees it: the directory being protected, and its
 * private area in the store.
 *
 *   $STORE/workspaces/<id>/      id = first 128 bits of SHA-256 of the
 *     path                       workspace's canonical path, in hex
 *     snapshots/<N>.json         manifests (snapshot.h)
 *     index                      stat cache
 *     lock                       one writer at a time (lock.h)
 *     session/                   staged changes of the last run
 *
 *   sb_workspace *w;
 *   sb_workspace_open(store_root, ws_path, SB_WS_CREATE | SB_WS_WRITE, &w, err);
 *   sb_workspace_lock(w, 0, err);     -EBUSY "workspace is busy (pid N)"
 *   ... sb_workspace_store(w), sb_workspace_root_fd(w), sb_workspace_dir_fd(w)
 *   sb_workspace_free(w);             releases the lock
 *
 * Opening without SB_WS_CREATE never creates anything: a workspace never snapshotted
 * gives -ENOENT ("no snapshots of '<path>' yet").
 */

#include <stdbool.h>

#include "error.h"
#include "store.h"

typedef struct sb_workspace sb_workspace;

typedef enum sb_ws_flags {
	SB_WS_WRITE = 1 << 0,  /* open the store for writing */
	SB_WS_CREATE = 1 << 1, /* create the store and the workspace area as needed */
} sb_ws_flags;

int sb_workspace_open(const char *store_root, const char *ws_path, sb_ws_flags flags,
		      sb_workspace **ret, sb_error *err);
/*
 * A workspace area by its id (gc visits every one), on a store the caller
 * opened and still owns. The workspace directory need not exist any more:
 * sb_workspace_root_fd is -1 and sb_workspace_path is what the area's
 * "path" file says (or "?"). -ENOENT when there is no such area.
 */
int sb_workspace_open_area(sb_store *s, const char *store_path, const char *id, sb_workspace **ret,
			   sb_error *err);
/* The id of the workspace at ws_path (its area: workspaces/<id>/). */
int sb_workspace_id_of(const char *ws_path, char ret[33], sb_error *err);
void sb_workspace_free(sb_workspace *w);
static inline void sb_workspace_freep(sb_workspace **w)
{
	sb_workspace_free(*w);
}

int sb_workspace_lock(sb_workspace *w, int lock_flags, sb_error *err);
void sb_workspace_unlock(sb_workspace *w);

sb_store *sb_workspace_store(sb_workspace *w);
/* The workspace directory itself (O_RDONLY|O_DIRECTORY). */
int sb_workspace_root_fd(sb_workspace *w);
/* Its area in the store: workspaces/<id>/ */
int sb_workspace_dir_fd(sb_workspace *w);
/* Canonical absolute path of the workspace. */
const char *sb_workspace_path(sb_workspace *w);
/* Absolute path of the store root and of the workspace area. */
const char *sb_workspace_store_path(sb_workspace *w);
const char *sb_workspace_area_path(sb_workspace *w);
/* The 32-hex-digit id. */
const char *sb_workspace_id(sb_workspace *w);

/* Default store root: $SNAPBOX_STORE, else $XDG_STATE_HOME/snapbox, else ~/.local/state/snapbox. */
int sb_store_default_path(char **ret_path, sb_error *err);

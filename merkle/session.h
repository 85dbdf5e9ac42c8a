/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The session: what `snapbox run` left for a person to review.
 *
 *   workspaces/<id>/session/
 *     session.json   {"state":"running"|"staged", "baseline":N,
 *                     "baseline_root":hex, "staged_root":hex|null,
 *                     "upper_xattr":"user"|"trusted", "boot_id":"...",
 *                     "command":[...], "started_ns":"...", "pid":P,
 *                     "exit_status":N|null, "isolation":"..."}
 *     upper/ work/   the overlay's layers, kept until the changes are staged
 *
 * Lifecycle:
 *
 *   (none) --run--> running --command ends--> staged (in upper/)
 *   staged (in upper/) --diff, apply: staged into the store--> staged
 *   staged --apply--> (none)          staged --apply PATH--> staged (the rest)
 *   running|staged --discard--> (none)
 *
 * "running" is written before the command starts, so a crash leaves a
 * session that status reports and discard cleans; a "running" session whose
 * pid is gone is stale. When the command ends, its changes are staged but
 * still in upper/ (staged_root null): the run only previews them. The first
 * diff or apply that needs them stages upper/ into the store as the tree
 * staged_root, records it, and removes upper/ and work/. upper_xattr says
 * which xattr namespace the overlay wrote ("user" in a user namespace,
 * "trusted" otherwise): the upper is read in that one only (overlay.h).
 *
 * Removing is a rename into the workspace's trash (trash.h), O(1) however
 * many files the command wrote, and a detached cleaner deletes them later;
 * each removal also starts a cleaner for whatever an earlier, killed one left.
 * These calls fork that cleaner: make them while single-threaded.
 *
 * All calls need the workspace lock but sb_session_read.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "hash.h"
#include "workspace.h"

typedef enum sb_session_state {
	SB_SESSION_RUNNING = 1,
	SB_SESSION_STAGED = 2,
} sb_session_state;

typedef struct sb_session {
	sb_session_state state;
	int64_t baseline;
	sb_id baseline_root;
	bool has_staged; /* staged_root is set: the changes are in the store */
	sb_id staged_root;
	bool upper_userxattr; /* the overlay wrote user.overlay.* xattrs */
	char boot_id[40];     /* the boot it was written in (set by sb_session_write) */
	char **command;	      /* NULL-terminated */
	int64_t started_ns;
	pid_t pid;
	int exit_status; /* -1: none yet */
	char *isolation; /* may be NULL */
} sb_session;

void sb_session_init(sb_session *s);
void sb_session_release(sb_session *s);

/* -ENOENT when there is no session. A damaged file is -EBADMSG naming it. */
int sb_session_read(sb_workspace *w, sb_session *ret, sb_error *err);
/* Creates session/ if needed; writes session.json atomically (synced). */
int sb_session_write(sb_workspace *w, const sb_session *s, sb_error *err);
/* Removes the whole session directory (layers included), into the trash. */
int sb_session_remove(sb_workspace *w, sb_error *err);
/* Creates (empty) and returns the absolute paths of session/upper and session/work. */
int sb_session_layers(sb_workspace *w, char **ret_upper, char **ret_work, sb_error *err);
/*
 * The upper is written through a volatile overlay (overlay.h): nothing in it
 * is durable until it is staged. True when s was written since the machine
 * last booted, so that a crash cannot have cut what upper/ holds short.
 */
bool sb_session_same_boot(const sb_session *s);
/* Opens session/upper (O_DIRECTORY, O_NOFOLLOW); -ENOENT when it is gone. */
int sb_session_upper_fd(sb_workspace *w, sb_error *err);
/* Removes session/upper and session/work into the trash, keeping session.json. */
int sb_session_drop_layers(sb_workspace *w, sb_error *err);
/* A running session whose process no longer exists. */
bool sb_session_is_stale(const sb_session *s);

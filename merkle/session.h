/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The session: what `snapbox run` left for a person to review.
 *
 *   workspaces/<id>/session/
 *     session.json   {"state":"running"|"staged", "baseline":N,
 *                     "baseline_root":hex, "staged_root":hex|null,
 *                     "command":[...], "started_ns":"...", "pid":P,
 *                     "exit_status":N|null, "isolation":"..."}
 *     upper/ work/   the overlay's layers while the command runs
 *
 * Lifecycle:
 *
 *   (none) --run--> running --command ends, upper staged--> staged
 *   staged --apply--> (none)          staged --apply PATH--> staged (the rest)
 *   running|staged --discard--> (none)
 *
 * "running" is written before the command starts, so a crash leaves a
 * session that status reports and discard cleans; a "running" session whose
 * pid is gone is stale. Once staged, the changes live in the store as the
 * tree staged_root: upper/ and work/ are removed.
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
	bool has_staged;
	sb_id staged_root;
	char **command; /* NULL-terminated */
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
/* Removes session/upper and session/work into the trash, keeping session.json. */
int sb_session_drop_layers(sb_workspace *w, sb_error *err);
/* A running session whose process no longer exists. */
bool sb_session_is_stale(const sb_session *s);

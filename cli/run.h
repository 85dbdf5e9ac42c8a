/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `snapbox run` as a sequence (DESIGN.md §4):
 *
 *   lock -> refuse a pending session -> baseline snapshot -> session.json
 *   (running) -> isolation layers -> sandbox with the workspace overlaid ->
 *   wait -> kill what is left -> read the upper -> preview it against the
 *   baseline (stage.h) -> session.json (staged, still in the upper) ->
 *   summary -> (--apply: stage it into the store, land it)
 *
 * Returns the process exit status: the command's own, 128+N on signal N,
 * 124 on timeout, 125 when snapbox failed before the command ran, 126/127
 * when it could not be executed / found.
 */

#include "cli.h"
#include "isolation.h"
#include "session.h"

typedef struct sb_run_opts {
	char **argv;
	bool apply;
	const char *backend; /* auto | kernel | fuse */
	sb_isolation_opts iso;
	const char **ro, **rw, **hide, **env;
	size_t n_ro, n_rw, n_hide, n_env;
} sb_run_opts;

int sb_cli_run(sb_cli *cli, const sb_run_opts *o);

/*
 * Lands the staged changes of w's session (all, or those under paths) — the
 * body of `snapbox apply`, also used by `run --apply`. Returns an exit status.
 */
int sb_cli_apply_session(sb_cli *cli, sb_workspace *w, const char *const *paths, bool force,
			 bool dry, bool allow_git);

/*
 * Stages a session whose changes are still in its upper directory into the
 * store (session.h): records staged_root in s and in session.json, then
 * drops the layers. A no-op for any other session. Needs the workspace lock;
 * forks the trash cleaner, so call it while single-threaded.
 */
int sb_cli_stage_session(sb_workspace *w, sb_session *s, sb_error *err);

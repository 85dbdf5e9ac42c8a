/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `snapbox run` as a sequence (DESIGN.md §4):
 *
 *   lock -> refuse a pending session -> baseline snapshot -> session.json
 *   (running) -> isolation layers -> sandbox with the workspace overlaid ->
 *   wait -> kill what is left -> read the upper -> stage it as a tree ->
 *   session.json (staged) -> layers into the trash, a background cleaner
 *   deletes them -> summary -> (--apply: land it)
 *
 * Returns the process exit status: the command's own, 128+N on signal N,
 * 124 on timeout, 125 when snapbox failed before the command ran, 126/127
 * when it could not be executed / found.
 */

#include "cli.h"
#include "isolation.h"

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

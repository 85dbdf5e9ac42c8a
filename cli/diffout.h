/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Renders a collected diff (changelist.h) whose contents live in the store:
 *
 *   sb_cli_print_patch  git-style unified diff ("diff --git a/P b/P", mode
 *                       lines, "--- a/P" / "+++ b/P", hunks), which `git
 *                       apply` and `patch -p1` accept for text files. Binary
 *                       content (a NUL in the first 8000 bytes, as git
 *                       decides) is reported as "Binary files ... differ".
 *                       Directories and fifos have no patch form (git has
 *                       none either); --name-status shows them. Modes are
 *                       shown as git shows them: 100644, 100755, 120000.
 *   sb_cli_print_stat   " path | N ++--" lines and a summary
 */

#include "changelist.h"
#include "store.h"

int sb_cli_print_patch(sb_cli *cli, sb_store *s, const sb_diff_list *c, unsigned context,
		       sb_error *err);
int sb_cli_print_stat(sb_cli *cli, sb_store *s, const sb_diff_list *c, sb_error *err);

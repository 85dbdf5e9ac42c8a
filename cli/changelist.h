/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A collected tree diff, for the verbs that print one (status, diff, run's
 * summary, restore --dry-run): sb_cli_changes_collect is an sb_diff_fn that
 * keeps a copy of every entry; the printers render the list as
 * "A path" lines, as a --stat table, or as JSON.
 */

#include <stdbool.h>

#include "cli.h"
#include "diff.h"

typedef struct sb_cli_change {
	char status; /* A D M T */
	char *path;
	size_t path_len;
	sb_tree_entry old, new; /* .name unused (NULL); type NONE when absent */
} sb_cli_change;

typedef struct sb_cli_changes {
	sb_cli_change *v;
	size_t n, cap;
} sb_cli_changes;

int sb_cli_changes_collect(void *changes, const sb_diff_entry *e);
void sb_cli_changes_release(sb_cli_changes *c);

/* "A path" lines (directories with a trailing '/'), coloured by status. */
void sb_cli_print_name_status(sb_cli *cli, const sb_cli_changes *c);
/* [{"status":"A","path":..,"type":..,"old":{..},"new":{..}}, ...] */
cJSON *sb_cli_changes_json(const sb_cli_changes *c);
const char *sb_cli_ftype_name(sb_ftype t);

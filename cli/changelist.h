/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Printing a collected tree diff (diff.h's sb_diff_list, filled by
 * sb_diff_collect) for the verbs that show one (status, diff, run's summary,
 * restore --dry-run): as "A path" lines, or as JSON.
 */

#include <stdbool.h>

#include "cli.h"
#include "diff.h"

/* "A path" lines (directories with a trailing '/'), coloured by status. */
void sb_cli_print_name_status(sb_cli *cli, const sb_diff_list *c);
/* [{"status":"A","path":..,"type":..,"old":{..},"new":{..}}, ...] */
cJSON *sb_cli_changes_json(const sb_diff_list *c);
const char *sb_cli_ftype_name(sb_ftype t);

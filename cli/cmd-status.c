/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "capture.h"
#include "changelist.h"
#include "cli.h"
#include "session.h"
#include <string.h>

int cmd_status(sb_cli *cli, int argc, char **argv)
{
	int r = sb_cli_plain_args(cli, argc, argv);
	if (r >= 0)
		return r;
	if (optind < argc)
		return sb_cli_usage(cli, "status", "status takes no operands ('%s')", argv[optind]);

	sb_error err = SB_ERROR_INIT;
	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, SB_WS_WRITE, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	int64_t latest;
	if (sb_snapshot_head(w, &latest, &err) < 0)
		return sb_cli_fail(cli, &err);
	sb_snapshot base;
	if (sb_snapshot_read(w, latest, &base, &err) < 0)
		return sb_cli_fail(cli, &err);

	sb_id root;
	sb_scan_stats scan;
	r = sb_cli_scan_current(cli, w, base.exclusions, &root, &scan, &err);
	if (r < 0) {
		sb_snapshot_release(&base);
		return sb_cli_fail(cli, &err);
	}

	sb_diff_list ch = {0};
	r = sb_diff_trees(sb_workspace_store(w), &base.root, &root, NULL, sb_diff_collect, &ch,
			  &err);
	if (r < 0) {
		sb_snapshot_release(&base);
		sb_diff_list_release(&ch);
		return sb_cli_fail(cli, &err);
	}
	sb_session sess;
	sb_error serr = SB_ERROR_INIT;
	int sr = sb_session_read(w, &sess, &serr);
	const char *pending = sr == -ENOENT			? NULL
			      : sr < 0				? "unreadable"
			      : sess.state == SB_SESSION_STAGED ? "staged"
			      : sb_session_is_stale(&sess)	? "interrupted"
								: "running";
	if (sr >= 0)
		sb_session_release(&sess);
	if (cli->json) {
		char hex[SB_HEX_LEN + 1];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "snapshot", (double)latest);
		cJSON_AddStringToObject(j, "root", sb_id_to_hex(&root, hex));
		cJSON_AddBoolToObject(j, "clean", ch.n == 0);
		cJSON_AddItemToObject(j, "changes", sb_cli_changes_json(&ch));
		cJSON_AddItemToObject(j, "scan", sb_cli_scan_json(&scan));
		if (pending)
			cJSON_AddStringToObject(j, "session", pending);
		else
			cJSON_AddNullToObject(j, "session");
		sb_cli_json_out(j);
	} else {
		if (ch.n == 0 && !cli->quiet)
			printf("no changes since snapshot %" PRId64 "\n", latest);
		sb_cli_print_name_status(cli, &ch);
		if (pending && strcmp(pending, "staged") == 0)
			printf(
			    "a run's changes are staged: 'snapbox diff' to review, 'snapbox apply' "
			    "or 'snapbox discard'\n");
		else if (pending && strcmp(pending, "running") == 0)
			printf("a run is in progress\n");
		else if (pending)
			printf("the last run was interrupted: 'snapbox discard' clears it\n");
	}
	sb_snapshot_release(&base);
	sb_diff_list_release(&ch);
	return SB_EXIT_OK;
}

/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "capture.h"
#include "changelist.h"
#include "cli.h"
#include "ignore.h"
#include "progress.h"
#include "restore.h"

int cmd_restore(sb_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool dry = false;
	int c;
	while ((c = sb_cli_getopt(cli, argc, argv, "+nh", opts)) != -1) {
		if (c == 'n')
			dry = true;
		else if (c == 'h')
			return sb_cli_help(sb_cli_find_verb("restore"));
		else
			return SB_EXIT_USAGE;
	}
	if (argc - optind != 1)
		return sb_cli_usage(cli, "restore", "restore takes one snapshot number");
	sb_error err = SB_ERROR_INIT;
	int64_t id;
	if (sb_snapshot_parse_id(argv[optind], &id, &err) < 0)
		return sb_cli_usage(cli, "restore", "%s", err.msg);

	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, SB_WS_WRITE, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	if (sb_workspace_lock(w, 0, &err) < 0)
		return sb_cli_fail(cli, &err);
	sb_snapshot target;
	if (sb_snapshot_read(w, id, &target, &err) < 0)
		return sb_cli_fail(cli, &err);

	int status = SB_EXIT_FAIL;
	sb_diff_list ch = {0};
	_cleanup_(sb_ignore_freep) sb_ignore *protect = NULL;
	sb_store *store = sb_workspace_store(w);
	char hex[SB_HEX_LEN + 1];

	/* The state we are about to change, kept so the restore can be undone. */
	sb_progress p;
	sb_progress_init(&p, cli, "saving current state");
	sb_capture_opts co = SB_CAPTURE_OPTS_INIT;
	co.flags = dry ? SB_CAPTURE_DRY | SB_CAPTURE_SAVE_CACHE : 0;
	co.reason = "pre-restore";
	co.excludes = (const char *const *)target.exclusions;
	co.progress = sb_progress_scan;
	co.warn = sb_progress_warn;
	co.userdata = &p;
	sb_capture_result pre;
	int r = sb_capture(w, &co, &pre, &err);
	sb_progress_done(&p);
	if (r < 0)
		goto out;

	if (dry) {
		sb_diff_opts d = {.flags = SB_DIFF_MTIME};
		if (sb_diff_trees(store, &pre.root, &target.root, &d, sb_diff_collect, &ch, &err) <
		    0)
			goto out;
		if (cli->json) {
			cJSON *j = cJSON_CreateObject();
			cJSON_AddNumberToObject(j, "snapshot", (double)id);
			cJSON_AddBoolToObject(j, "dry_run", true);
			cJSON_AddItemToObject(j, "changes", sb_cli_changes_json(&ch));
			sb_cli_json_out(j);
		} else {
			if (ch.n == 0 && !cli->quiet)
				printf("the workspace already equals snapshot %" PRId64 "\n", id);
			sb_cli_print_name_status(cli, &ch);
		}
		status = SB_EXIT_OK;
		goto out;
	}
	if (!cli->quiet && !cli->json) {
		if (pre.reused)
			printf("current state is snapshot %" PRId64 "\n", pre.id);
		else
			printf("saved current state as snapshot %" PRId64
			       " (undo with 'snapbox restore %" PRId64 "')\n",
			       pre.id, pre.id);
	}

	if (sb_capture_exclusions(w, target.exclusions, NULL, NULL, &protect, &err) < 0)
		goto out;
	sb_restore_stats rs;
	if (sb_restore_tree(store, sb_workspace_root_fd(w), &pre.root, &target.root, protect, &rs,
			    &err) < 0) {
		sb_error_prefix(&err,
				"restore of snapshot %" PRId64 " stopped part-way; run it "
				"again to finish (the previous state is snapshot %" PRId64 ")",
				id, pre.id);
		goto out;
	}

	/* Trust, but verify: the workspace must now hash to the snapshot's root. */
	sb_id now;
	if (sb_cli_scan_current(cli, w, target.exclusions, &now, NULL, &err) < 0)
		goto out;
	if (!sb_id_eq(&now, &target.root)) {
		char nhex[SB_HEX_LEN + 1];
		sb_error_set(
		    &err, EIO,
		    "after restore the workspace hashes to %s, not to snapshot %" PRId64
		    "'s root %s: something changed it meanwhile; run 'snapbox restore %" PRId64
		    "' again",
		    sb_id_to_hex(&now, nhex), id, sb_id_to_hex(&target.root, hex), id);
		goto out;
	}
	if (sb_snapshot_set_head(w, id, &err) < 0)
		goto out;
	sb_id_to_hex(&now, hex);
	if (cli->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "snapshot", (double)id);
		cJSON_AddStringToObject(j, "root", hex);
		cJSON_AddNumberToObject(j, "pre_restore", (double)pre.id);
		cJSON_AddBoolToObject(j, "pre_restore_reused", pre.reused);
		cJSON *st = cJSON_AddObjectToObject(j, "stats");
		cJSON_AddNumberToObject(st, "written", (double)rs.written);
		cJSON_AddNumberToObject(st, "removed", (double)rs.removed);
		cJSON_AddNumberToObject(st, "attrs", (double)rs.attrs);
		cJSON_AddNumberToObject(st, "renamed", (double)rs.renamed);
		cJSON_AddNumberToObject(st, "trees_compared", (double)rs.trees_compared);
		sb_cli_json_out(j);
	} else if (!cli->quiet) {
		printf("restored snapshot %" PRId64 " (root %s): %" PRIu64 " written, %" PRIu64
		       " removed, %" PRIu64 " attributes set, %" PRIu64 " directories moved\n",
		       id, hex, rs.written, rs.removed, rs.attrs, rs.renamed);
	}
	status = SB_EXIT_OK;
out:
	if (status != SB_EXIT_OK)
		sb_cli_fail(cli, &err);
	sb_diff_list_release(&ch);
	sb_snapshot_release(&target);
	return status;
}

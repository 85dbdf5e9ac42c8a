/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "changelist.h"
#include "cli.h"
#include "fileio.h"
#include "ignore.h"
#include "progress.h"
#include "restore.h"
#include "statcache.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Tests stop here (SIGSTOP) when the variable var is "1", to change the
 * workspace the way a concurrent writer would: SNAPBOX_TEST_PAUSE_BEFORE_WRITE
 * between the pre-restore snapshot and the writes,
 * SNAPBOX_TEST_PAUSE_BEFORE_CHECK between the writes and the check
 * (tests/cli-restore-check.sh).
 */
static void test_pause(const char *var)
{
	const char *e = getenv(var);
	if (e && e[0] == '1')
		raise(SIGSTOP);
}

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
	_cleanup_(sb_ignore_freep) sb_ignore *now_ignore = NULL;
	_cleanup_(sb_statcache_freep) sb_statcache *cache = NULL;
	_cleanup_(sb_restore_touched_freep) sb_restore_touched *touched = NULL;
	_cleanup_(sb_restore_rehashed_freep) sb_restore_rehashed *rehashed = NULL;
	sb_store *store = sb_workspace_store(w);
	/* the saved state, the diff and the check read the same trees again */
	sb_store_keep_trees(store, true);
	int dir_fd = sb_workspace_dir_fd(w), root_fd = sb_workspace_root_fd(w);
	char hex[SB_HEX_LEN + 1];
	int64_t t0 = now_ms(), t1, t2;
	bool save_cache = false; /* once the scan filled it */

	/*
	 * One stat cache for the whole restore: the pre-restore scan fills it,
	 * the files the check re-hashed are added, and it is saved once.
	 */
	int r = sb_statcache_load(dir_fd, "index", &cache, &err);
	if (r < 0)
		goto out;

	/* The state we are about to change, kept so the restore can be undone. */
	sb_capture_opts co = SB_CAPTURE_OPTS_INIT;
	co.flags = dry ? SB_CAPTURE_DRY : 0;
	co.reason = "pre-restore";
	co.excludes = (const char *const *)target.exclusions;
	co.cache = cache;
	sb_capture_result pre;
	r = sb_progress_capture(cli, "saving current state", w, &co, &pre, &err);
	if (r < 0)
		goto out;
	t1 = now_ms();
	save_cache = true;
	sb_cli_scan_info(cli, &pre.scan);

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
	test_pause("SNAPBOX_TEST_PAUSE_BEFORE_WRITE");
	sb_restore_stats rs;
	sb_restore_opts ro = {.protect = protect};
	if (sb_restore_run(store, root_fd, &pre.root, &target.root, &ro, &touched, &rs, &err) < 0) {
		sb_error_prefix(&err,
				"restore of snapshot %" PRId64 " stopped part-way; run it "
				"again to finish (the previous state is snapshot %" PRId64 ")",
				id, pre.id);
		goto out;
	}
	t2 = now_ms();
	int64_t written = sb_now_ns(); /* what restore wrote is not newer than this */
	test_pause("SNAPBOX_TEST_PAUSE_BEFORE_CHECK");

	/*
	 * Trust, but verify: re-read what the restore changed and compose the
	 * root from it (restore.h says exactly what that covers), with the
	 * exclusions a scan would use now that .snapboxignore is N's again.
	 */
	sb_id now;
	sb_restore_check_stats cs;
	r = sb_capture_exclusions(w, target.exclusions, NULL, NULL, &now_ignore, &err);
	if (r >= 0)
		r = sb_restore_check(store, root_fd, &target.root, touched, now_ignore, &rehashed,
				     &now, &cs, &err);
	if (r == -ESTALE) {
		char why[SB_ERROR_MAX];
		snprintf(why, sizeof(why), "%s", err.msg);
		sb_error_set(&err, ESTALE,
			     "after restore of snapshot %" PRId64 ", %s: something changed it "
			     "meanwhile; run 'snapbox restore %" PRId64 "' again",
			     id, why, id);
		goto out;
	}
	if (r < 0)
		goto out;
	sb_cli_info(cli,
		    "restore: saved the current state in %" PRId64 " ms, wrote in %" PRId64
		    " ms, checked in %" PRId64 " ms (%" PRIu64 " directories listed, %" PRIu64
		    " entries, %" PRIu64 " files re-hashed)",
		    t1 - t0, t2 - t1, now_ms() - t2, cs.dirs_listed, cs.entries, cs.files_hashed);
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
	/*
	 * What the check re-hashed goes into the stat cache, stamped after the
	 * writes, so the next scan trusts it instead of hashing it again.
	 */
	sb_statcache_restamp_after(cache, written);
	(void)sb_restore_record(root_fd, rehashed, cache);
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
		cJSON *ck = cJSON_AddObjectToObject(j, "check");
		cJSON_AddNumberToObject(ck, "dirs_listed", (double)cs.dirs_listed);
		cJSON_AddNumberToObject(ck, "entries", (double)cs.entries);
		cJSON_AddNumberToObject(ck, "files_hashed", (double)cs.files_hashed);
		cJSON_AddNumberToObject(ck, "trees_encoded", (double)cs.trees_encoded);
		sb_cli_json_out(j);
	} else if (!cli->quiet) {
		printf("restored snapshot %" PRId64 " (root %s): %" PRIu64 " written, %" PRIu64
		       " removed, %" PRIu64 " attributes set, %" PRIu64 " directories moved\n",
		       id, hex, rs.written, rs.removed, rs.attrs, rs.renamed);
	}
	status = SB_EXIT_OK;
out:
	if (save_cache) {
		/* A stale cache only costs re-hashing; never fail the restore for it. */
		sb_error e2 = SB_ERROR_INIT;
		(void)sb_statcache_save(cache, dir_fd, "index", &e2);
	}
	if (status != SB_EXIT_OK)
		sb_cli_fail(cli, &err);
	sb_diff_list_release(&ch);
	sb_snapshot_release(&target);
	return status;
}

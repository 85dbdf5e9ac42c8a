/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "changelist.h"
#include "cli.h"
#include "diffout.h"
#include "run.h"
#include "session.h"
#include "snapshot.h"

enum { FMT_PATCH, FMT_STAT, FMT_NAME_STATUS };

/* One side of the comparison: a snapshot, or the workspace as it is now. */
typedef struct side {
	int64_t snapshot; /* -1: the workspace */
	sb_id root;
	char **exclusions; /* of the snapshot side, reused when scanning */
} side;

static int load_side(sb_workspace *w, int64_t id, side *ret, sb_error *err)
{
	sb_snapshot s;
	int r = sb_snapshot_read(w, id, &s, err);
	if (r < 0)
		return r;
	ret->snapshot = id;
	ret->root = s.root;
	ret->exclusions = TAKE_PTR(s.exclusions);
	sb_snapshot_release(&s);
	return 0;
}

static void free_strv(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

int cmd_diff(sb_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"stat", no_argument, NULL, 's'},
	    {"name-status", no_argument, NULL, 'n'},
	    {"unified", required_argument, NULL, 'U'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int fmt = FMT_PATCH, c;
	unsigned context = 3;
	while ((c = sb_cli_getopt(cli, argc, argv, "+U:h", opts)) != -1) {
		switch (c) {
		case 's':
			fmt = FMT_STAT;
			break;
		case 'n':
			fmt = FMT_NAME_STATUS;
			break;
		case 'U': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v > 100000)
				return sb_cli_usage(cli, "diff", "-U '%s': not a line count",
						    optarg);
			context = (unsigned)v;
			break;
		}
		case 'h':
			return sb_cli_help(sb_cli_find_verb("diff"));
		default:
			return SB_EXIT_USAGE;
		}
	}
	/* Operands: up to two snapshot numbers, then paths after "--". */
	const char *ids[2] = {NULL, NULL};
	int nids = 0;
	char **paths = NULL;
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			paths = argv + i + 1;
			break;
		}
		if (nids == 2)
			return sb_cli_usage(cli, "diff",
					    "diff compares at most two snapshots ('%s')", argv[i]);
		ids[nids++] = argv[i];
	}
	sb_error err = SB_ERROR_INIT;
	int64_t a_id = -1, b_id = -1;
	if (nids >= 1 && sb_snapshot_parse_id(ids[0], &a_id, &err) < 0)
		return sb_cli_usage(cli, "diff", "%s", err.msg);
	if (nids == 2 && sb_snapshot_parse_id(ids[1], &b_id, &err) < 0)
		return sb_cli_usage(cli, "diff", "%s", err.msg);

	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, nids == 2 ? 0 : SB_WS_WRITE, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	side a = {0}, b = {.snapshot = -1};
	bool staged = false;
	if (nids == 0) {
		/* A run's staged changes come first: they are what waits for review. */
		sb_session sess;
		sb_session_init(&sess);
		int sr = sb_session_read(w, &sess, &err);
		if (sr >= 0 && sess.state == SB_SESSION_STAGED && !sess.has_staged) {
			/* Still in the upper: staged first, under the lock, as read under it. */
			sb_session_release(&sess);
			sr = sb_workspace_lock(w, 0, &err);
			if (sr >= 0)
				sr = sb_session_read(w, &sess, &err);
			if (sr >= 0)
				sr = sb_cli_stage_session(w, &sess, &err);
			if (sr < 0)
				sb_session_release(&sess);
		}
		if (sr < 0 && sr != -ENOENT)
			return sb_cli_fail(cli, &err);
		if (sr >= 0 && sess.state == SB_SESSION_STAGED && sess.has_staged) {
			staged = true;
			a_id = sess.baseline;
			b.root = sess.staged_root;
		}
		if (sr >= 0)
			sb_session_release(&sess);
		if (!staged && sb_snapshot_head(w, &a_id, &err) < 0)
			return sb_cli_fail(cli, &err);
	}

	int status = SB_EXIT_FAIL;
	sb_diff_list ch = {0};
	sb_store *store = sb_workspace_store(w);
	if (load_side(w, a_id, &a, &err) < 0)
		goto out;
	if (staged) {
		/* b.root is the staged tree */
	} else if (b_id >= 0) {
		if (load_side(w, b_id, &b, &err) < 0)
			goto out;
	} else if (sb_cli_scan_current(cli, w, a.exclusions, &b.root, NULL, &err) < 0) {
		goto out;
	}

	sb_store_stats before, after;
	sb_store_get_stats(store, &before);
	sb_diff_opts dopts = {.paths = (const char *const *)paths};
	if (sb_diff_trees(store, &a.root, &b.root, &dopts, sb_diff_collect, &ch, &err) < 0)
		goto out;
	sb_store_get_stats(store, &after);
	uint64_t reads = after.objects_read - before.objects_read;

	if (cli->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "from", (double)a.snapshot);
		if (b.snapshot >= 0)
			cJSON_AddNumberToObject(j, "to", (double)b.snapshot);
		else if (staged)
			cJSON_AddStringToObject(j, "to", "staged");
		else
			cJSON_AddStringToObject(j, "to", "workspace");
		cJSON_AddItemToObject(j, "changes", sb_cli_changes_json(&ch));
		cJSON *st = cJSON_AddObjectToObject(j, "stats");
		cJSON_AddNumberToObject(st, "tree_objects_read", (double)reads);
		sb_cli_json_out(j);
	} else if (fmt == FMT_NAME_STATUS) {
		sb_cli_print_name_status(cli, &ch);
	} else if (fmt == FMT_STAT) {
		if (sb_cli_print_stat(cli, store, &ch, &err) < 0)
			goto out;
	} else if (sb_cli_print_patch(cli, store, &ch, context, &err) < 0) {
		goto out;
	}
	sb_cli_info(cli, "compared %s with %s: %zu changes, %" PRIu64 " tree objects read",
		    ids[0] ? ids[0] : "latest",
		    b.snapshot >= 0 ? ids[1]
		    : staged	    ? "the staged changes"
				    : "the workspace",
		    ch.n, reads);
	status = SB_EXIT_OK;
out:
	if (status != SB_EXIT_OK)
		sb_cli_fail(cli, &err);
	sb_diff_list_release(&ch);
	free_strv(a.exclusions);
	free_strv(b.exclusions);
	return status;
}

/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "gc.h"
#include "parse.h"
#include "workspace.h"

static void print_json(const sb_gc_result *res, bool dry_run)
{
	const sb_sweep_stats *st = &res->sweep;
	cJSON *j = cJSON_CreateObject();
	cJSON_AddBoolToObject(j, "dry_run", dry_run);
	cJSON *f = cJSON_AddArrayToObject(j, "forgotten");
	for (size_t i = 0; i < res->n_forgotten; i++) {
		const sb_gc_forgot *fg = &res->forgotten[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "workspace",
				      sb_cli_json_path(fg->workspace, strlen(fg->workspace)));
		cJSON *ids = cJSON_AddArrayToObject(o, "snapshots");
		for (size_t k = 0; k < fg->n; k++)
			cJSON_AddItemToArray(ids, sb_cli_json_int(fg->ids[k]));
		cJSON_AddItemToArray(f, o);
	}
	cJSON_AddNumberToObject(j, "kept_protected", (double)res->kept_protected);
	cJSON_AddNumberToObject(j, "workspaces", (double)res->workspaces);
	cJSON_AddNumberToObject(j, "stat_caches_dropped", (double)res->caches_dropped);
	cJSON_AddNumberToObject(j, "live_objects", (double)res->live);
	cJSON_AddNumberToObject(j, "objects_dropped", (double)st->objects_dropped);
	cJSON_AddNumberToObject(j, "bytes_dropped", (double)st->bytes_dropped);
	cJSON_AddNumberToObject(j, "objects_copied", (double)st->objects_copied);
	cJSON_AddNumberToObject(j, "bytes_copied", (double)st->bytes_copied);
	cJSON_AddNumberToObject(j, "garbage_left_objects", (double)st->dead_left);
	cJSON_AddNumberToObject(j, "garbage_left_bytes", (double)st->dead_bytes_left);
	cJSON_AddNumberToObject(j, "packs_rewritten", (double)st->packs_rewritten);
	cJSON_AddNumberToObject(j, "packs_deleted", (double)st->packs_deleted);
	cJSON_AddNumberToObject(j, "leftovers_removed", (double)st->orphans_removed);
	cJSON_AddNumberToObject(j, "objects_damaged", (double)st->objects_damaged);
	cJSON_AddNumberToObject(j, "packs_before", (double)st->packs_before);
	cJSON_AddNumberToObject(j, "packs_after", (double)st->packs_after);
	cJSON_AddNumberToObject(j, "bytes_before", (double)st->bytes_before);
	cJSON_AddNumberToObject(j, "bytes_after", (double)st->bytes_after);
	sb_cli_json_out(j);
}

static void print_text(const sb_gc_result *res, bool dry_run)
{
	const sb_sweep_stats *st = &res->sweep;
	char a[32], b[32];
	for (size_t i = 0; i < res->n_forgotten; i++) {
		const sb_gc_forgot *fg = &res->forgotten[i];
		printf("%s %zu snapshot%s of ", dry_run ? "would forget" : "forgot", fg->n,
		       fg->n == 1 ? "" : "s");
		sb_cli_put_path(stdout, fg->workspace, strlen(fg->workspace));
		printf(":");
		for (size_t k = 0; k < fg->n; k++)
			printf(" %" PRId64, fg->ids[k]);
		printf("\n");
	}
	if (res->caches_dropped)
		printf("%s %zu stat cache%s naming objects the store lacks (the next snapshot "
		       "reads every file)\n",
		       dry_run ? "would drop" : "dropped", res->caches_dropped,
		       res->caches_dropped == 1 ? "" : "s");
	if (res->kept_protected)
		printf("kept %zu older snapshot%s: the head or a pending session's baseline\n",
		       res->kept_protected, res->kept_protected == 1 ? "" : "s");
	printf("%s %" PRIu64 " unreachable object%s (%s)", dry_run ? "would drop" : "dropped",
	       st->objects_dropped, st->objects_dropped == 1 ? "" : "s",
	       sb_cli_size(st->bytes_dropped, a, sizeof(a)));
	if (st->objects_copied)
		printf(", moving %" PRIu64 " live object%s (%s)", st->objects_copied,
		       st->objects_copied == 1 ? "" : "s",
		       sb_cli_size(st->bytes_copied, b, sizeof(b)));
	printf("\n");
	if (st->dead_left)
		printf("left %" PRIu64 " unreachable object%s (%s) in packs not worth rewriting\n",
		       st->dead_left, st->dead_left == 1 ? "" : "s",
		       sb_cli_size(st->dead_bytes_left, a, sizeof(a)));
	if (st->orphans_removed)
		printf("%s %" PRIu64 " file%s left by interrupted writers\n",
		       dry_run ? "would remove" : "removed", st->orphans_removed,
		       st->orphans_removed == 1 ? "" : "s");
	printf("store: %" PRIu64 " pack%s, %s -> %s%" PRIu64 " pack%s, %s\n", st->packs_before,
	       st->packs_before == 1 ? "" : "s", sb_cli_size(st->bytes_before, a, sizeof(a)),
	       dry_run ? "about " : "", st->packs_after, st->packs_after == 1 ? "" : "s",
	       sb_cli_size(st->bytes_after, b, sizeof(b)));
}

int cmd_gc(sb_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"keep", required_argument, NULL, 'k'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"all", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	sb_gc_opts o = {.keep = -1};
	bool all = false;
	sb_error err = SB_ERROR_INIT;
	int c;
	while ((c = sb_cli_getopt(cli, argc, argv, "+nh", opts)) != -1) {
		uint64_t keep;
		switch (c) {
		case 'k':
			if (sb_parse_uint64(optarg, 1, INT64_MAX, "--keep", &keep, &err) < 0)
				return sb_cli_usage(cli, "gc", "%s", err.msg);
			o.keep = (int64_t)keep;
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			return sb_cli_help(sb_cli_find_verb("gc"));
		default:
			return SB_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return sb_cli_usage(cli, "gc", "gc takes no operands ('%s')", argv[optind]);

	if (all && o.keep < 0)
		return sb_cli_usage(cli, "gc",
				    "--all applies --keep N to every workspace; give --keep");
	char id[33];
	if (o.keep >= 0 && !all) {
		if (sb_workspace_id_of(cli->workspace, id, &err) < 0)
			return sb_cli_fail(cli, &err);
		o.workspace_id = id;
	}
	_cleanup_free_ char *store = NULL;
	if (sb_cli_store_path(cli, &store, &err) < 0)
		return sb_cli_fail(cli, &err);
	sb_gc_result res;
	if (sb_gc(store, &o, &res, &err) < 0)
		return sb_cli_fail(cli, &err);
	if (cli->json)
		print_json(&res, o.dry_run);
	else if (!cli->quiet)
		print_text(&res, o.dry_run);
	if (res.sweep.objects_damaged)
		sb_cli_warn(cli,
			    "%" PRIu64 " live object%s had no good copy and %s kept as %s; run "
			    "'snapbox verify' to see which",
			    res.sweep.objects_damaged, res.sweep.objects_damaged == 1 ? "" : "s",
			    res.sweep.objects_damaged == 1 ? "was" : "were",
			    res.sweep.objects_damaged == 1 ? "it was" : "they were");
	sb_gc_result_release(&res);
	return SB_EXIT_OK;
}

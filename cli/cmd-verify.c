/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "fsck.h"

typedef struct report {
	sb_cli *cli;
	cJSON *list;
} report;

static void add(report *rp, int64_t snapshot, const sb_id *id, const char *path, const char *what)
{
	char hex[SB_HEX_LEN + 1] = "-";
	if (id)
		sb_id_to_hex(id, hex);
	if (rp->list) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "object", id ? hex : "");
		if (snapshot >= 0)
			cJSON_AddNumberToObject(j, "snapshot", (double)snapshot);
		if (path)
			cJSON_AddItemToObject(j, "path", sb_cli_json_path(path, strlen(path)));
		cJSON_AddStringToObject(j, "problem", what);
		cJSON_AddItemToArray(rp->list, j);
		return;
	}
	printf("%sbad%s %s", sb_cli_c(rp->cli->color_out, SB_C_RED),
	       sb_cli_c(rp->cli->color_out, SB_C_RESET), hex);
	if (snapshot >= 0) {
		printf(" snapshot %" PRId64 " ", snapshot);
		sb_cli_put_path(stdout, path, strlen(path));
	}
	printf(": %s\n", what);
}

static void object_problem(void *userdata, const sb_id *id, const char *what)
{
	add(userdata, -1, id, NULL, what);
}

static void ref_problem(void *userdata, int64_t snapshot, const sb_id *id, const char *path,
			const char *what)
{
	add(userdata, snapshot, id, path, what);
}

int cmd_verify(sb_cli *cli, int argc, char **argv)
{
	int r = sb_cli_plain_args(cli, argc, argv);
	if (r >= 0)
		return r;
	if (optind < argc)
		return sb_cli_usage(cli, "verify", "verify takes no operands ('%s')", argv[optind]);
	sb_error err = SB_ERROR_INIT;
	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, 0, &w, &err) < 0)
		return sb_cli_fail(cli, &err);

	report rp = {cli, cli->json ? cJSON_CreateArray() : NULL};
	uint64_t checked = 0;
	int bad_objects =
	    sb_store_verify_objects(sb_workspace_store(w), object_problem, &rp, &checked, &err);
	if (bad_objects < 0) {
		cJSON_Delete(rp.list);
		return sb_cli_fail(cli, &err);
	}
	sb_fsck_stats st = {0};
	int bad_refs = sb_fsck_snapshots(w, ref_problem, &rp, &st, &err);
	if (bad_refs < 0) {
		cJSON_Delete(rp.list);
		return sb_cli_fail(cli, &err);
	}
	int problems = bad_objects + bad_refs;
	if (rp.list) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddBoolToObject(j, "ok", problems == 0);
		cJSON_AddNumberToObject(j, "objects_checked", (double)checked);
		cJSON_AddNumberToObject(j, "snapshots_checked", (double)st.snapshots);
		cJSON_AddNumberToObject(j, "trees_checked", (double)st.trees);
		cJSON_AddItemToObject(j, "problems", rp.list);
		sb_cli_json_out(j);
	} else if (!cli->quiet) {
		printf("%" PRIu64 " objects, %" PRIu64 " snapshots, %" PRIu64
		       " trees checked: %s\n",
		       checked, st.snapshots, st.trees, problems ? "PROBLEMS FOUND" : "ok");
	}
	if (problems)
		return sb_cli_failf(cli, "%d problem%s in store '%s'", problems,
				    problems == 1 ? "" : "s", sb_workspace_store_path(w));
	return SB_EXIT_OK;
}

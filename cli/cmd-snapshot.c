/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "capture.h"
#include "cli.h"
#include "progress.h"

cJSON *sb_cli_scan_json(const sb_scan_stats *s)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "files", (double)s->files);
	cJSON_AddNumberToObject(j, "dirs", (double)s->dirs);
	cJSON_AddNumberToObject(j, "symlinks", (double)s->symlinks);
	cJSON_AddNumberToObject(j, "fifos", (double)s->fifos);
	cJSON_AddNumberToObject(j, "skipped", (double)s->skipped);
	cJSON_AddNumberToObject(j, "bytes", (double)s->bytes);
	cJSON_AddNumberToObject(j, "files_hashed", (double)s->files_hashed);
	cJSON_AddNumberToObject(j, "bytes_hashed", (double)s->bytes_hashed);
	cJSON_AddNumberToObject(j, "cache_hits", (double)s->cache_hits);
	cJSON_AddNumberToObject(j, "rereads", (double)s->rereads);
	cJSON_AddNumberToObject(j, "dirs_listed", (double)s->dirs_listed);
	return j;
}

void sb_cli_scan_info(sb_cli *cli, const sb_scan_stats *s)
{
	char a[32], b[32];
	sb_cli_info(cli,
		    "scanned %" PRIu64 " files, %" PRIu64 " dirs (%s); hashed %" PRIu64
		    " files (%s), %" PRIu64 " from the stat cache; listed %" PRIu64 " dirs",
		    s->files, s->dirs, sb_cli_size(s->bytes, a, sizeof(a)), s->files_hashed,
		    sb_cli_size(s->bytes_hashed, b, sizeof(b)), s->cache_hits, s->dirs_listed);
}

int cmd_snapshot(sb_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"message", required_argument, NULL, 'm'},
	    {"exclude", required_argument, NULL, 'x'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *message = NULL;
	_cleanup_free_ const char **excludes = calloc((size_t)argc + 1, sizeof(char *));
	size_t nex = 0;
	int c;
	if (!excludes)
		return SB_EXIT_FAIL;
	while ((c = sb_cli_getopt(cli, argc, argv, "+m:h", opts)) != -1) {
		switch (c) {
		case 'm':
			message = optarg;
			break;
		case 'x':
			excludes[nex++] = optarg;
			break;
		case 'h':
			return sb_cli_help(sb_cli_find_verb("snapshot"));
		default:
			return SB_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return sb_cli_usage(cli, "snapshot", "snapshot takes no operands ('%s')",
				    argv[optind]);

	sb_error err = SB_ERROR_INIT;
	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, SB_WS_CREATE | SB_WS_WRITE, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	if (sb_workspace_lock(w, 0, &err) < 0)
		return sb_cli_fail(cli, &err);

	sb_capture_opts co = SB_CAPTURE_OPTS_INIT;
	co.reason = "manual";
	co.message = message;
	co.excludes = excludes;
	sb_capture_result res;
	int r = sb_progress_capture(cli, "snapshot", w, &co, &res, &err);
	if (r < 0)
		return sb_cli_fail(cli, &err);

	char hex[SB_HEX_LEN + 1];
	sb_id_to_hex(&res.root, hex);
	if (cli->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "id", (double)res.id);
		cJSON_AddBoolToObject(j, "reused", res.reused);
		cJSON_AddStringToObject(j, "root", hex);
		cJSON *ch = cJSON_AddObjectToObject(j, "changes");
		cJSON_AddNumberToObject(ch, "added", (double)res.changes.added);
		cJSON_AddNumberToObject(ch, "modified",
					(double)(res.changes.modified + res.changes.typechanged));
		cJSON_AddNumberToObject(ch, "deleted", (double)res.changes.deleted);
		cJSON_AddItemToObject(j, "scan", sb_cli_scan_json(&res.scan));
		sb_cli_json_out(j);
	} else if (!cli->quiet) {
		if (res.reused)
			printf("nothing changed since snapshot %" PRId64 " (root %.12s)\n", res.id,
			       hex);
		else
			printf("snapshot %" PRId64 " (root %.12s): +%" PRIu64 " ~%" PRIu64
			       " -%" PRIu64 ", %" PRIu64 " files\n",
			       res.id, hex, res.changes.added,
			       res.changes.modified + res.changes.typechanged, res.changes.deleted,
			       res.scan.files);
	}
	sb_cli_scan_info(cli, &res.scan);
	return SB_EXIT_OK;
}

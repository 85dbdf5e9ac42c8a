/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "snapshot.h"

static cJSON *snapshot_json(const sb_snapshot *s)
{
	char hex[SB_HEX_LEN + 1], t[64];
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "id", (double)s->id);
	if (s->parent >= 0)
		cJSON_AddNumberToObject(j, "parent", (double)s->parent);
	else
		cJSON_AddNullToObject(j, "parent");
	cJSON_AddStringToObject(j, "root", sb_id_to_hex(&s->root, hex));
	cJSON_AddStringToObject(j, "time", sb_format_time(s->time_ns, t, sizeof(t)));
	cJSON_AddStringToObject(j, "reason", s->reason);
	if (s->message)
		cJSON_AddStringToObject(j, "message", s->message);
	else
		cJSON_AddNullToObject(j, "message");
	cJSON *cmd = cJSON_AddArrayToObject(j, "command");
	for (char **p = s->command; p && *p; p++)
		cJSON_AddItemToArray(cmd, cJSON_CreateString(*p));
	if (s->exit_status >= 0)
		cJSON_AddNumberToObject(j, "exit_status", s->exit_status);
	else
		cJSON_AddNullToObject(j, "exit_status");
	if (s->isolation)
		cJSON_AddStringToObject(j, "isolation", s->isolation);
	else
		cJSON_AddNullToObject(j, "isolation");
	cJSON *ex = cJSON_AddArrayToObject(j, "exclusions");
	for (char **p = s->exclusions; p && *p; p++)
		cJSON_AddItemToArray(ex, cJSON_CreateString(*p));
	cJSON *st = cJSON_AddObjectToObject(j, "stats");
	cJSON_AddNumberToObject(st, "files", (double)s->stats.files);
	cJSON_AddNumberToObject(st, "dirs", (double)s->stats.dirs);
	cJSON_AddNumberToObject(st, "symlinks", (double)s->stats.symlinks);
	cJSON_AddNumberToObject(st, "fifos", (double)s->stats.fifos);
	cJSON_AddNumberToObject(st, "bytes", (double)s->stats.bytes);
	cJSON_AddNumberToObject(st, "skipped", (double)s->stats.skipped);
	cJSON_AddNumberToObject(st, "added", (double)s->stats.added);
	cJSON_AddNumberToObject(st, "modified", (double)s->stats.modified);
	cJSON_AddNumberToObject(st, "deleted", (double)s->stats.deleted);
	return j;
}

static void put_command(FILE *f, char **argv, size_t max)
{
	size_t used = 0;
	for (char **p = argv; p && *p; p++) {
		size_t n = strlen(*p);
		if (used + n + 1 > max) {
			fputs(used ? " ..." : "...", f);
			return;
		}
		if (used)
			fputc(' ', f);
		sb_cli_put_path(f, *p, n);
		used += n + 1;
	}
}

int cmd_list(sb_cli *cli, int argc, char **argv)
{
	int r = sb_cli_plain_args(cli, argc, argv);
	if (r >= 0)
		return r;
	if (optind < argc)
		return sb_cli_usage(cli, "list", "list takes no arguments ('%s')", argv[optind]);
	sb_error err = SB_ERROR_INIT;
	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, 0, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	_cleanup_free_ int64_t *ids = NULL;
	size_t n;
	if (sb_snapshot_list(w, &ids, &n, &err) < 0)
		return sb_cli_fail(cli, &err);
	cJSON *arr = cli->json ? cJSON_CreateArray() : NULL;
	int status = SB_EXIT_OK;
	if (!cli->json && n > 0)
		printf("%s%4s  %-20s  %-11s  %7s %7s %7s  %s%s\n",
		       sb_cli_c(cli->color_out, SB_C_BOLD), "ID", "TIME", "REASON", "+ADD", "~MOD",
		       "-DEL", "COMMAND / MESSAGE", sb_cli_c(cli->color_out, SB_C_RESET));
	for (size_t i = 0; i < n; i++) {
		sb_snapshot s;
		if (sb_snapshot_read(w, ids[i], &s, &err) < 0) {
			/* One bad manifest must not hide the others. */
			sb_cli_fail(cli, &err);
			status = SB_EXIT_FAIL;
			continue;
		}
		if (arr) {
			cJSON_AddItemToArray(arr, snapshot_json(&s));
		} else {
			char t[64];
			printf("%4" PRId64 "  %-20s  %-11s  %s%7" PRIu64 "%s %s%7" PRIu64
			       "%s %s%7" PRIu64 "%s  ",
			       s.id, sb_format_time(s.time_ns, t, sizeof(t)), s.reason,
			       sb_cli_c(cli->color_out, SB_C_GREEN), s.stats.added,
			       sb_cli_c(cli->color_out, SB_C_RESET),
			       sb_cli_c(cli->color_out, SB_C_YELLOW), s.stats.modified,
			       sb_cli_c(cli->color_out, SB_C_RESET),
			       sb_cli_c(cli->color_out, SB_C_RED), s.stats.deleted,
			       sb_cli_c(cli->color_out, SB_C_RESET));
			if (s.command)
				put_command(stdout, s.command, 60);
			if (s.message) {
				if (s.command)
					fputs("  ", stdout);
				sb_cli_put_path(stdout, s.message, strlen(s.message));
			}
			putchar('\n');
		}
		sb_snapshot_release(&s);
	}
	if (arr)
		sb_cli_json_out(arr);
	else if (n == 0 && !cli->quiet)
		printf("no snapshots of %s yet\n", sb_workspace_path(w));
	return status;
}

int cmd_show(sb_cli *cli, int argc, char **argv)
{
	int r = sb_cli_plain_args(cli, argc, argv);
	if (r >= 0)
		return r;
	if (argc - optind != 1)
		return sb_cli_usage(cli, "show", "show takes one snapshot number");
	sb_error err = SB_ERROR_INIT;
	int64_t id;
	if (sb_snapshot_parse_id(argv[optind], &id, &err) < 0)
		return sb_cli_usage(cli, "show", "%s", err.msg);
	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, 0, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	sb_snapshot s;
	if (sb_snapshot_read(w, id, &s, &err) < 0)
		return sb_cli_fail(cli, &err);
	if (cli->json) {
		sb_cli_json_out(snapshot_json(&s));
	} else {
		char hex[SB_HEX_LEN + 1], t[64], sz[32];
		printf("snapshot %" PRId64 "\n", s.id);
		if (s.parent >= 0)
			printf("parent     %" PRId64 "\n", s.parent);
		printf("root       %s\n", sb_id_to_hex(&s.root, hex));
		printf("time       %s\n", sb_format_time(s.time_ns, t, sizeof(t)));
		printf("reason     %s\n", s.reason);
		if (s.message) {
			fputs("message    ", stdout);
			sb_cli_put_path(stdout, s.message, strlen(s.message));
			putchar('\n');
		}
		if (s.command) {
			fputs("command    ", stdout);
			put_command(stdout, s.command, SIZE_MAX / 2);
			putchar('\n');
		}
		if (s.exit_status >= 0)
			printf("exit       %d\n", s.exit_status);
		if (s.isolation)
			printf("isolation  %s\n", s.isolation);
		printf("contents   %" PRIu64 " files, %" PRIu64 " dirs, %" PRIu64
		       " symlinks, %" PRIu64 " fifos, %s\n",
		       s.stats.files, s.stats.dirs, s.stats.symlinks, s.stats.fifos,
		       sb_cli_size(s.stats.bytes, sz, sizeof(sz)));
		printf("changes    +%" PRIu64 " ~%" PRIu64 " -%" PRIu64 "\n", s.stats.added,
		       s.stats.modified, s.stats.deleted);
		for (char **p = s.exclusions; p && *p; p++)
			printf("excluded   %s\n", *p);
	}
	sb_snapshot_release(&s);
	return SB_EXIT_OK;
}

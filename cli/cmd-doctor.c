/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "overlay.h"
#include "probe.h"

/*
 * `snapbox doctor`: what this host can enforce, from sandbox/probe.h plus a
 * real kernel-overlay mount where `run` would put its upper layer. Exit 0
 * when `snapbox run` works here with its default layers (namespaces, the
 * kernel overlay, seccomp), 1 otherwise. cgroups (only needed for --memory,
 * --pids, --cpus and the resource report), Landlock (only required by
 * --strict), FUSE and openat2 are reported but do not decide the status.
 */

typedef struct row {
	const char *name;
	bool ok;
	bool required; /* decides the exit status */
	const char *needed_by;
	char detail[SB_PROBE_DETAIL_MAX + 64];
} row;

#define MAX_ROWS (SB_PROBE_MAX + 2)

static const char *needed_by(const char *name, bool root, bool *required)
{
	static const struct {
		const char *name, *by;
		int required; /* 0 never, 1 always, 2 only when not root */
	} table[] = {
	    {"userns", "run as non-root", 2},
	    {"userns_unprivileged", "other users' runs", 0},
	    {"overlay_userns", "run as non-root", 0},
	    {"fuse", "--backend fuse, mount", 0},
	    {"fusermount3", "--backend fuse, mount", 0},
	    {"seccomp", "run", 1},
	    {"cgroup", "--memory --pids --cpus", 0},
	    {"cgroup_controllers", "--memory --pids --cpus", 0},
	    {"landlock", "run --strict", 0},
	    {"openat2", "apply, restore (else O_PATH walk)", 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (strcmp(table[i].name, name) == 0) {
			*required = table[i].required == 1 || (table[i].required == 2 && !root);
			return table[i].by;
		}
	*required = false;
	return "";
}

/* Where run would put its upper layer: the store, or the temp dir when there is none yet. */
static const char *scratch_dir(sb_cli *cli, char **owned)
{
	struct stat st;
	sb_error err = SB_ERROR_INIT;
	if (cli->store) {
		if (stat(cli->store, &st) == 0 && S_ISDIR(st.st_mode))
			return cli->store;
	} else if (sb_store_default_path(owned, &err) >= 0 && stat(*owned, &st) == 0 &&
		   S_ISDIR(st.st_mode)) {
		return *owned;
	}
	const char *tmp = getenv("TMPDIR");
	return tmp && tmp[0] == '/' ? tmp : "/tmp";
}

static void probe_overlay(sb_cli *cli, row *r, bool root)
{
	_cleanup_free_ char *owned = NULL;
	const char *dir = scratch_dir(cli, &owned);
	sb_error err = SB_ERROR_INIT;
	int e = sb_overlay_probe(NULL, dir, root ? 0 : SB_OVERLAY_PROBE_USERNS, &err);
	r->name = "overlay";
	r->ok = e >= 0;
	r->required = true;
	r->needed_by = "run";
	if (e >= 0)
		snprintf(r->detail, sizeof(r->detail),
			 "kernel overlay%s with whiteouts, upper in %.200s",
			 root ? "" : " in a user namespace", dir);
	else
		snprintf(r->detail, sizeof(r->detail), "%.300s", err.msg);
}

static cJSON *rows_json(const row *rows, size_t n, bool can_run, bool can_limit)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "uid", (double)geteuid());
	cJSON_AddBoolToObject(j, "can_run", can_run);
	cJSON_AddBoolToObject(j, "can_limit", can_limit);
	cJSON *facts = cJSON_AddArrayToObject(j, "facts");
	cJSON *missing = cJSON_AddArrayToObject(j, "missing");
	for (size_t i = 0; i < n; i++) {
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "name", rows[i].name);
		cJSON_AddBoolToObject(f, "ok", rows[i].ok);
		cJSON_AddBoolToObject(f, "required", rows[i].required);
		cJSON_AddStringToObject(f, "needed_by", rows[i].needed_by);
		cJSON_AddStringToObject(f, "detail", rows[i].detail);
		cJSON_AddItemToArray(facts, f);
		if (rows[i].required && !rows[i].ok)
			cJSON_AddItemToArray(missing, cJSON_CreateString(rows[i].name));
	}
	return j;
}

static void rows_print(sb_cli *cli, const row *rows, size_t n)
{
	printf("%-20s %-4s %-34s %s\n", "feature", "ok", "needed by", "detail");
	for (size_t i = 0; i < n; i++) {
		const char *c = rows[i].ok ? SB_C_GREEN : rows[i].required ? SB_C_RED : SB_C_YELLOW;
		printf("%-20s %s%-4s%s %-34s %s\n", rows[i].name, sb_cli_c(cli->color_out, c),
		       rows[i].ok ? "yes" : "no", sb_cli_c(cli->color_out, SB_C_RESET),
		       rows[i].needed_by, rows[i].detail);
	}
}

int cmd_doctor(sb_cli *cli, int argc, char **argv)
{
	int r = sb_cli_plain_args(cli, argc, argv);
	if (r >= 0)
		return r;
	if (optind < argc)
		return sb_cli_usage(cli, "doctor", "doctor takes no operands ('%s')", argv[optind]);

	sb_probe p;
	sb_error err = SB_ERROR_INIT;
	if (sb_probe_run(&p, &err) < 0)
		return sb_cli_fail(cli, &err);

	bool root = geteuid() == 0;
	row rows[MAX_ROWS];
	size_t n = 0;
	memset(rows, 0, sizeof(rows));
	for (size_t i = 0; i < p.n && n < MAX_ROWS - 1; i++) {
		row *w = &rows[n++];
		w->name = p.facts[i].name;
		w->ok = p.facts[i].ok;
		w->needed_by = needed_by(w->name, root, &w->required);
		snprintf(w->detail, sizeof(w->detail), "%s", p.facts[i].detail);
		/* The real overlay mount goes right after the user-namespace facts. */
		if (strcmp(w->name, "overlay_userns") == 0)
			probe_overlay(cli, &rows[n++], root);
	}

	bool can_run = true, can_limit = false;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].required && !rows[i].ok)
			can_run = false;
		if (strcmp(rows[i].name, "cgroup_controllers") == 0)
			can_limit = rows[i].ok;
	}
	if (cli->json) {
		sb_cli_json_out(rows_json(rows, n, can_run, can_limit));
		return can_run ? SB_EXIT_OK : SB_EXIT_FAIL;
	}
	rows_print(cli, rows, n);
	const sb_probe_fact *ll = sb_probe_get(&p, "landlock");
	printf("\n");
	if (can_run) {
		printf("snapbox run works here as uid %u with namespaces, the kernel overlay and "
		       "seccomp;\n",
		       (unsigned)geteuid());
		printf("limits (--memory --pids --cpus): %s; Landlock: %s\n",
		       can_limit ? "enforced"
				 : "not available to this user (run refuses them: exit 125 unless "
				   "--allow-degraded)",
		       ll && ll->ok ? ll->detail
				    : "not available (a warning per run; --strict refuses)");
	} else {
		printf("snapbox run cannot work here as uid %u: missing", (unsigned)geteuid());
		for (size_t i = 0; i < n; i++)
			if (rows[i].required && !rows[i].ok)
				printf(" %s", rows[i].name);
		printf("\n");
	}
	return can_run ? SB_EXIT_OK : SB_EXIT_FAIL;
}

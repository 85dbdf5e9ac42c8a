/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What every verb shares: global options, the workspace and store they name,
 * and the only code in snapbox that prints or picks an exit status.
 *
 * A verb is `int cmd_<verb>(sb_cli *cli, int argc, char **argv)`: argv[0] is
 * the verb, global options have already been taken out. It returns the
 * process exit status: SB_EXIT_OK, SB_EXIT_FAIL (1), SB_EXIT_USAGE (2); `run`
 * also returns the command's own status or 124-127.
 *
 * Messages follow git: "snapbox: <what>: <why>", lowercase, no full stop,
 * the subject quoted.
 */

#include <stdbool.h>
#include <stdio.h>
#include <cJSON.h>

#include "error.h"
#include "workspace.h"

enum {
	SB_EXIT_OK = 0,
	SB_EXIT_FAIL = 1,
	SB_EXIT_USAGE = 2,
	SB_EXIT_TIMEOUT = 124,
	SB_EXIT_SETUP = 125,
	SB_EXIT_NOEXEC = 126,
	SB_EXIT_NOTFOUND = 127,
};

typedef struct sb_cli {
	const char *workspace; /* -C DIR, default "." */
	const char *store;     /* --store DIR; NULL: default resolution */
	bool json;
	bool quiet;
	int verbose;
	bool color_out; /* colour on stdout */
	bool color_err;
} sb_cli;

typedef struct sb_verb {
	const char *name;
	int (*fn)(sb_cli *cli, int argc, char **argv);
	const char *summary;
	const char *usage; /* full --help text after the "usage:" line */
} sb_verb;

/* Prints "snapbox: <msg>" (from err, or formatted) to stderr. Return SB_EXIT_FAIL. */
int sb_cli_fail(sb_cli *cli, const sb_error *err);
int sb_cli_failf(sb_cli *cli, const char *fmt, ...) _printf_(2, 3);
/* Usage error: prints it plus "see 'snapbox VERB --help'". Returns SB_EXIT_USAGE. */
int sb_cli_usage(sb_cli *cli, const char *verb, const char *fmt, ...) _printf_(3, 4);
void sb_cli_warn(sb_cli *cli, const char *fmt, ...) _printf_(2, 3);
/* -v output to stderr */
void sb_cli_info(sb_cli *cli, const char *fmt, ...) _printf_(2, 3);

/* Prints the verb's help (for --help). */
int sb_cli_help(const sb_verb *v);
const sb_verb *sb_cli_find_verb(const char *name);

/*
 * Verb-local option parsing: a thin getopt_long wrapper that also knows
 * --help. Returns the option char, -1 at the end, '?' after printing a usage
 * error (the caller returns SB_EXIT_USAGE), 'h' for --help.
 */
struct option;
int sb_cli_getopt(sb_cli *cli, int argc, char **argv, const char *shortopts,
		  const struct option *longopts);

/*
 * For verbs without options of their own: handles --help, rejects unknown
 * options, leaves optind at the first operand. Returns -1 to go on, else the
 * exit status the verb should return at once.
 */
int sb_cli_plain_args(sb_cli *cli, int argc, char **argv);

/* Opens the workspace named by -C with the store named by --store. */
int sb_cli_open(sb_cli *cli, sb_ws_flags flags, sb_workspace **ret, sb_error *err);
/* The store's path: --store, else the default (workspace.h); *ret malloc'd. */
int sb_cli_store_path(sb_cli *cli, char **ret, sb_error *err);

/* Colour escapes (empty strings when colour is off for that stream). */
const char *sb_cli_c(bool on, const char *which);
#define SB_C_RED    "\033[31m"
#define SB_C_GREEN  "\033[32m"
#define SB_C_YELLOW "\033[33m"
#define SB_C_CYAN   "\033[36m"
#define SB_C_BOLD   "\033[1m"
#define SB_C_RESET  "\033[m"

/*
 * Writes a workspace path for humans the way git does: as is when every byte
 * is printable and not '"' or '\\', else double-quoted with C escapes.
 */
void sb_cli_put_path(FILE *f, const char *path, size_t len);
/* JSON string for a path: raw bytes that are not valid UTF-8 are escaped as \\xNN text. */
cJSON *sb_cli_json_path(const char *path, size_t len);
/* An exact JSON integer (cJSON numbers are doubles: 53 bits). */
cJSON *sb_cli_json_int(int64_t v);
/* Prints a JSON document on stdout (takes ownership). */
void sb_cli_json_out(cJSON *j);

/* Human sizes: "1.5 MiB" */
const char *sb_cli_size(uint64_t bytes, char *buf, size_t size);

/* Scan counters as JSON / as a -v line (shared by snapshot, status, run). */
struct sb_scan_stats;
cJSON *sb_cli_scan_json(const struct sb_scan_stats *s);
void sb_cli_scan_info(sb_cli *cli, const struct sb_scan_stats *s);

/*
 * The workspace as it is now, as a root id (objects go to the store, no
 * manifest is written), scanned with the given exclusions — those of the
 * snapshot it will be compared with.
 */
int sb_cli_scan_current(sb_cli *cli, sb_workspace *w, char *const *excludes, sb_id *ret_root,
			struct sb_scan_stats *ret_stats, sb_error *err);

/* Verbs */
int cmd_snapshot(sb_cli *cli, int argc, char **argv);
int cmd_list(sb_cli *cli, int argc, char **argv);
int cmd_show(sb_cli *cli, int argc, char **argv);
int cmd_status(sb_cli *cli, int argc, char **argv);
int cmd_verify(sb_cli *cli, int argc, char **argv);
int cmd_export(sb_cli *cli, int argc, char **argv);
int cmd_diff(sb_cli *cli, int argc, char **argv);
int cmd_restore(sb_cli *cli, int argc, char **argv);
int cmd_run(sb_cli *cli, int argc, char **argv);
int cmd_apply(sb_cli *cli, int argc, char **argv);
int cmd_discard(sb_cli *cli, int argc, char **argv);
int cmd_doctor(sb_cli *cli, int argc, char **argv);
int cmd_gc(sb_cli *cli, int argc, char **argv);

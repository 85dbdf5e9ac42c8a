/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"

static const sb_verb verbs[] = {
    {"run", cmd_run, "run a command in the sandbox over a copy-on-write overlay",
     "snapbox run [OPTIONS] -- CMD [ARG...]\n\n"
     "Snapshots the workspace (reusing the head snapshot when nothing changed), then runs\n"
     "CMD in new user/mount/pid/ipc/uts/net/cgroup namespaces with the workspace behind a\n"
     "copy-on-write overlay: nothing it writes reaches the workspace. Afterwards the changes\n"
     "are staged for review: 'snapbox diff', then 'snapbox apply' or 'snapbox discard'.\n\n"
     "  --apply              land the changes at once (still recorded as a snapshot)\n"
     "  --net none|host      network: loopback only (default) or the host's\n"
     "  --memory SIZE        memory limit (swap 0), e.g. 512M\n"
     "  --cpus N             CPU quota, e.g. 0.5\n"
     "  --pids N             process limit\n"
     "  --timeout DURATION   kill the whole sandbox after DURATION (exit 124), e.g. 30s\n"
     "  --seccomp FILE       a Docker/OCI seccomp JSON profile; 'unconfined' turns it off\n"
     "  --nofile N, --fsize SIZE   rlimits (core dumps are always off)\n"
     "  --ro PATH, --rw PATH extra host paths, read-only or read-write (rw writes through!)\n"
     "  --hide PATH          mask a host path (secrets like ~/.ssh are masked by default)\n"
     "  --env K=V, --env K   set or pass through an environment variable\n"
     "  --backend auto|kernel|fuse  the copy-on-write layer (default auto)\n"
     "  --allow-degraded     run even when a requested layer or limit cannot be enforced\n"
     "  --strict             also refuse to run without Landlock\n\n"
     "Exit status: the command's own; 128+N when killed by signal N; 124 on timeout;\n"
     "125 when snapbox failed before the command ran; 126 not executable; 127 not found.\n"},
    {"apply", cmd_apply, "land the staged changes of the last run",
     "snapbox apply [--force] [--allow-git-config] [--dry-run] [PATH...]\n\n"
     "Writes the staged changes (all, or those under the given paths; the rest stay staged)\n"
     "into the workspace and records the result as a snapshot (reason 'apply'). Refuses when\n"
     "a path the run changed was also changed in the workspace since, listing the\n"
     "conflicts; --force lets the staged version win. Changes that would make git run code\n"
     "on this machine (a repository's config, hooks, info/, a .git redirect) are refused\n"
     "until you have reviewed them: --allow-git-config lands them. Changes to excluded\n"
     "paths are never written.\n"},
    {"discard", cmd_discard, "drop the staged changes of the last run",
     "snapbox discard\n\nDrops the staged changes (or what an interrupted run left).\n"},
    {"snapshot", cmd_snapshot, "record the workspace as it is now",
     "snapbox snapshot [-m MESSAGE] [--exclude PATTERN]...\n\n"
     "Records the workspace into the store (reason 'manual'). When nothing changed since\n"
     "the head snapshot (the one the workspace was last made equal to), it is reused and\n"
     "no new one is written.\n\n"
     "  -m, --message MSG      a note kept with the snapshot\n"
     "  --exclude PATTERN      leave out paths matching a gitignore-style pattern\n"
     "                         (also read from .snapboxignore at the workspace root)\n"},
    {"list", cmd_list, "list snapshots",
     "snapbox list\n\n"
     "Lists the workspace's snapshots: number, time, reason, command and the numbers of\n"
     "added, modified and deleted files against the parent.\n"},
    {"show", cmd_show, "show one snapshot",
     "snapbox show N\n\nPrints snapshot N's manifest: root id, time, reason, command, stats.\n"},
    {"status", cmd_status, "changes since the head snapshot",
     "snapbox status\n\n"
     "Lists files added (A), modified (M), deleted (D) or changed in type (T) in the\n"
     "workspace since the head snapshot (the one it was last made equal to), like\n"
     "'git status --short'.\n"},
    {"diff", cmd_diff, "compare snapshots and the workspace",
     "snapbox diff [--stat | --name-status | --json] [A [B]] [-- PATH...]\n\n"
     "  (no argument)   the staged changes of the last run, if any; else the latest\n"
     "                  snapshot against the workspace\n"
     "  A               snapshot A against the workspace\n"
     "  A B             snapshot A against snapshot B\n\n"
     "  --stat          a diffstat per file\n"
     "  --name-status   one line per path: A, M, D or T\n"
     "  --json          machine-readable list of changes\n"
     "  -U, --unified N lines of context (default 3)\n"
     "  --color[=WHEN]  always, never or auto (default: auto; NO_COLOR turns it off)\n"},
    {"restore", cmd_restore, "make the workspace equal to snapshot N",
     "snapbox restore N [--dry-run]\n\n"
     "Makes the workspace equal to snapshot N: contents, types, modes and mtimes; paths N\n"
     "lacks are removed (excluded paths are never touched). The current state is saved\n"
     "first as a 'pre-restore' snapshot, so a restore can itself be undone.\n\n"
     "  -n, --dry-run   list what would change and change nothing\n"},
    {"verify", cmd_verify, "re-hash and cross-check the store",
     "snapbox verify\n\n"
     "Reads every object of the store, re-hashes it, and checks that every snapshot's\n"
     "trees and contents are present. Exits 1 listing each corrupt or missing object.\n"},
    {"gc", cmd_gc, "forget old snapshots, drop objects nothing needs",
     "snapbox gc [--keep N [--all]] [--dry-run]\n\n"
     "Drops every object that no snapshot, staged session or stat cache of any workspace\n"
     "in the store still needs, and rewrites the packs that are mostly garbage or small.\n"
     "With --keep N it first forgets all but the newest N snapshots of this workspace;\n"
     "the head (what status compares with) and a pending session's baseline are always\n"
     "kept. Snapshot numbers are never reused: gc leaves holes.\n\n"
     "gc needs the store to itself: it fails at once while another snapbox command has\n"
     "the store open, and commands started while it runs wait for it. A store it cannot\n"
     "fully read (see 'snapbox verify') is left exactly as it is.\n\n"
     "  --keep N        forget all but the newest N snapshots of the workspace (N >= 1)\n"
     "  --all           with --keep: of every workspace in the store, those whose\n"
     "                  directory is gone included\n"
     "  -n, --dry-run   say what would be forgotten and dropped; change nothing\n"},
    {"export", cmd_export, "write a snapshot into a new or empty directory",
     "snapbox export N DIR\n\n"
     "Writes snapshot N into DIR, which must not exist or be empty: files, directories,\n"
     "symlinks, fifos, permission bits and mtimes. Runs of zeros become holes.\n"},
    {"doctor", cmd_doctor, "which isolation layers this host can enforce",
     "snapbox doctor [--json]\n\n"
     "Probes what this host lets this user enforce and prints it as a table: user\n"
     "namespaces (and whether unprivileged ones are allowed, incl. the AppArmor sysctl),\n"
     "a kernel overlay mounted where run puts its upper layer, FUSE, seccomp, the cgroup\n"
     "version and the controllers this user can limit, the Landlock ABI, openat2.\n\n"
     "Exit status: 0 when 'snapbox run' works here with its default layers (namespaces,\n"
     "kernel overlay, seccomp), 1 when it does not. Missing cgroup controllers (needed\n"
     "only by --memory, --pids, --cpus) or Landlock (needed only by --strict) are\n"
     "reported but leave the status at 0.\n"},
};

const sb_verb *sb_cli_find_verb(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

int sb_cli_help(const sb_verb *v)
{
	printf("usage: %s", v->usage);
	printf("\nGlobal options: -C DIR, --store DIR, --json, -q, -v, --help, --version\n");
	return SB_EXIT_OK;
}

static void main_help(void)
{
	printf("usage: snapbox [-C DIR] [--store DIR] [--json] [-q] [-v] VERB [ARGS]\n\n"
	       "Run untrusted commands against a workspace in a sandbox, review what they\n"
	       "changed, and return to any earlier state.\n\nVerbs:\n");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		printf("  %-10s %s\n", verbs[i].name, verbs[i].summary);
	printf("\nGlobal options (before or after the verb):\n"
	       "  -C DIR          the workspace (default: the current directory)\n"
	       "  --store DIR     the store (default: $SNAPBOX_STORE, else\n"
	       "                  $XDG_STATE_HOME/snapbox, else ~/.local/state/snapbox)\n"
	       "  --json          machine-readable output on read commands\n"
	       "  -q, --quiet     only errors\n"
	       "  -v, --verbose   more detail (repeat for more)\n"
	       "  --color=WHEN    always, never or auto (default; NO_COLOR disables)\n"
	       "  -h, --help      this text; 'snapbox VERB --help' for a verb\n"
	       "  --version       print the version\n"
	       "\nExit status: 0 success, 1 failure, 2 usage error.\n");
}

int sb_cli_getopt(sb_cli *cli, int argc, char **argv, const char *shortopts,
		  const struct option *longopts)
{
	opterr = 0;
	int idx = 0;
	int c = getopt_long(argc, argv, shortopts, longopts, &idx);
	if (c == '?') {
		if (optopt)
			sb_cli_usage(cli, argv[0], "%s: unknown option '-%c'", argv[0], optopt);
		else
			sb_cli_usage(cli, argv[0], "%s: unknown option '%s'", argv[0],
				     argv[optind - 1]);
		return '?';
	}
	if (c == ':') {
		sb_cli_usage(cli, argv[0], "%s: option '%s' needs a value", argv[0],
			     argv[optind - 1]);
		return '?';
	}
	return c;
}

int sb_cli_plain_args(sb_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c;
	while ((c = sb_cli_getopt(cli, argc, argv, "+h", opts)) != -1) {
		if (c == 'h')
			return sb_cli_help(sb_cli_find_verb(argv[0]));
		return SB_EXIT_USAGE;
	}
	return -1;
}

int sb_cli_store_path(sb_cli *cli, char **ret, sb_error *err)
{
	if (!cli->store)
		return sb_store_default_path(ret, err);
	*ret = strdup(cli->store);
	return *ret ? 0 : -ENOMEM;
}

int sb_cli_open(sb_cli *cli, sb_ws_flags flags, sb_workspace **ret, sb_error *err)
{
	_cleanup_free_ char *store = NULL;
	int r = sb_cli_store_path(cli, &store, err);
	if (r < 0)
		return r;
	return sb_workspace_open(store, cli->workspace, flags, ret, err);
}

static int color_mode(const char *when, int *ret)
{
	if (!when || strcmp(when, "auto") == 0)
		*ret = -1;
	else if (strcmp(when, "always") == 0)
		*ret = 1;
	else if (strcmp(when, "never") == 0)
		*ret = 0;
	else
		return -EINVAL;
	return 0;
}

/*
 * Global options may stand before or after the verb (but not after "--",
 * which belongs to `run`'s command). They are taken out of argv here so each
 * verb parses only its own.
 */
int main(int argc, char **argv)
{
	sb_cli cli = {.workspace = "."};
	int color = -1;
	bool help = false, version = false;
	int n = 0;
	_cleanup_free_ char **rest = calloc((size_t)argc + 1, sizeof(char *));
	if (!rest)
		return SB_EXIT_FAIL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (i < argc)
				rest[n++] = argv[i++];
			break;
		}
		if (strcmp(a, "-C") == 0 || strcmp(a, "--store") == 0) {
			if (i + 1 >= argc)
				return sb_cli_usage(&cli, NULL, "option '%s' needs a value", a);
			if (a[1] == 'C')
				cli.workspace = argv[++i];
			else
				cli.store = argv[++i];
		} else if (strncmp(a, "-C", 2) == 0) {
			cli.workspace = a + 2;
		} else if (strncmp(a, "--store=", 8) == 0) {
			cli.store = a + 8;
		} else if (strcmp(a, "--json") == 0) {
			cli.json = true;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			cli.quiet = true;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			cli.verbose++;
		} else if (strcmp(a, "-vv") == 0) {
			cli.verbose += 2;
		} else if (strcmp(a, "--color") == 0 || strncmp(a, "--color=", 8) == 0) {
			if (color_mode(a[7] ? a + 8 : NULL, &color) < 0)
				return sb_cli_usage(&cli, NULL,
						    "'%s': --color takes always, never or auto", a);
		} else if (strcmp(a, "--no-color") == 0) {
			color = 0;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			help = true;
		} else if (strcmp(a, "--version") == 0) {
			version = true;
		} else {
			rest[n++] = argv[i];
		}
	}
	rest[n] = NULL;

	const char *nc = getenv("NO_COLOR");
	bool no_color = nc && *nc;
	cli.color_out = color == 1 || (color == -1 && !no_color && isatty(STDOUT_FILENO));
	cli.color_err = color == 1 || (color == -1 && !no_color && isatty(STDERR_FILENO));

	if (version) {
		printf("snapbox %s\n", SNAPBOX_VERSION);
		return SB_EXIT_OK;
	}
	if (n == 0) {
		if (help) {
			main_help();
			return SB_EXIT_OK;
		}
		main_help();
		return SB_EXIT_USAGE;
	}
	const sb_verb *v = sb_cli_find_verb(rest[0]);
	if (!v)
		return sb_cli_usage(&cli, NULL, "'%s' is not a snapbox verb", rest[0]);
	if (help)
		return sb_cli_help(v);

	/* Deep trees keep one fd per level open; take what the hard limit allows. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	optind = 0;
	int r = v->fn(&cli, n, rest);
	fflush(stdout);
	return r;
}

/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <string.h>

#include "run.h"

enum {
	OPT_APPLY = 1000,
	OPT_NET,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_PIDS,
	OPT_TIMEOUT,
	OPT_RO,
	OPT_RW,
	OPT_HIDE,
	OPT_ENV,
	OPT_BACKEND,
	OPT_SECCOMP,
	OPT_NOFILE,
	OPT_FSIZE,
	OPT_ALLOW_DEGRADED,
	OPT_STRICT,
};

int cmd_run(sb_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"apply", no_argument, NULL, OPT_APPLY},
	    {"net", required_argument, NULL, OPT_NET},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"pids", required_argument, NULL, OPT_PIDS},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"ro", required_argument, NULL, OPT_RO},
	    {"rw", required_argument, NULL, OPT_RW},
	    {"hide", required_argument, NULL, OPT_HIDE},
	    {"env", required_argument, NULL, OPT_ENV},
	    {"backend", required_argument, NULL, OPT_BACKEND},
	    {"seccomp", required_argument, NULL, OPT_SECCOMP},
	    {"nofile", required_argument, NULL, OPT_NOFILE},
	    {"fsize", required_argument, NULL, OPT_FSIZE},
	    {"allow-degraded", no_argument, NULL, OPT_ALLOW_DEGRADED},
	    {"strict", no_argument, NULL, OPT_STRICT},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	sb_run_opts o = {0};
	size_t cap = (size_t)argc + 1;
	_cleanup_free_ const char **ro = calloc(cap, sizeof(char *));
	_cleanup_free_ const char **rw = calloc(cap, sizeof(char *));
	_cleanup_free_ const char **hide = calloc(cap, sizeof(char *));
	_cleanup_free_ const char **env = calloc(cap, sizeof(char *));
	if (!ro || !rw || !hide || !env)
		return SB_EXIT_SETUP;
	o.ro = ro, o.rw = rw, o.hide = hide, o.env = env;
	int c;
	/* '+': stop at the command, whose options are its own. */
	while ((c = sb_cli_getopt(cli, argc, argv, "+h", opts)) != -1) {
		switch (c) {
		case OPT_APPLY:
			o.apply = true;
			break;
		case OPT_NET:
			if (strcmp(optarg, "none") == 0)
				o.iso.net = SB_NET_NONE;
			else if (strcmp(optarg, "host") == 0)
				o.iso.net = SB_NET_HOST;
			else
				return sb_cli_usage(cli, "run", "--net '%s': use none or host",
						    optarg),
				       SB_EXIT_SETUP;
			break;
		case OPT_MEMORY:
			o.iso.memory = optarg;
			break;
		case OPT_CPUS:
			o.iso.cpus = optarg;
			break;
		case OPT_PIDS:
			o.iso.pids = optarg;
			break;
		case OPT_TIMEOUT:
			o.iso.timeout = optarg;
			break;
		case OPT_SECCOMP:
			o.iso.seccomp = optarg;
			break;
		case OPT_NOFILE:
			o.iso.nofile = optarg;
			break;
		case OPT_FSIZE:
			o.iso.fsize = optarg;
			break;
		case OPT_RO:
			ro[o.n_ro++] = optarg;
			break;
		case OPT_RW:
			rw[o.n_rw++] = optarg;
			break;
		case OPT_HIDE:
			hide[o.n_hide++] = optarg;
			break;
		case OPT_ENV:
			env[o.n_env++] = optarg;
			break;
		case OPT_BACKEND:
			if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "kernel") != 0 &&
			    strcmp(optarg, "fuse") != 0)
				return sb_cli_usage(cli, "run",
						    "--backend '%s': use auto, kernel or fuse",
						    optarg),
				       SB_EXIT_SETUP;
			o.backend = optarg;
			break;
		case OPT_ALLOW_DEGRADED:
			o.iso.allow_degraded = true;
			break;
		case OPT_STRICT:
			o.iso.strict = true;
			break;
		case 'h':
			return sb_cli_help(sb_cli_find_verb("run"));
		default:
			/* A usage error before the command ran: 125, as docker run does. */
			return SB_EXIT_SETUP;
		}
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc)
		return sb_cli_usage(cli, "run",
				    "run needs a command: snapbox run [OPTIONS] -- CMD "
				    "[ARG...]"),
		       SB_EXIT_SETUP;
	o.argv = argv + optind;
	o.iso.rw = rw;
	o.iso.n_rw = o.n_rw;
	return sb_cli_run(cli, &o);
}

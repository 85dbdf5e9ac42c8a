/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The isolation layers of `snapbox run` as the CLI sees them: options in,
 * sandbox artifacts out, a report at the end. Built in the parent, applied
 * in the child by sandbox/spawn.c (DESIGN.md §5).
 *
 *   sb_isolation_opts o;   filled from the command line / profile
 *   sb_isolation *iso;
 *   r = sb_isolation_prepare(&o, workspace, &cfg, &iso, err);
 *       fills cfg's seccomp_prog, cgroup_procs_fds, landlock_ruleset_fd,
 *       rlimits, timeout; a layer that cannot be enforced, or a limit asked
 *       for that cannot be, is -EOPNOTSUPP naming the layer and the flag that
 *       allows a degraded run — unless o.allow_degraded, in which case the
 *       layer is recorded as degraded and the run goes on
 *   sb_isolation_summary(iso, buf, size)   "userns mountns ... seccomp=default(NN rules)
 *                                           cgroup=v1(memory=64M) landlock=abi6"
 *   ... run ...
 *   sb_isolation_finish(iso, &result, &report, err)   kill what is left, read
 *                                                      the resource report, remove the cgroup
 *   sb_isolation_free(iso)
 */

#include <stdbool.h>
#include <stdint.h>
#include <cJSON.h>

#include "error.h"
#include "sandbox.h"

typedef struct sb_isolation sb_isolation;

typedef struct sb_isolation_opts {
	const char *memory;  /* --memory SIZE */
	const char *cpus;    /* --cpus N */
	const char *pids;    /* --pids N */
	const char *timeout; /* --timeout DURATION */
	const char *seccomp; /* --seccomp FILE|unconfined|default */
	const char *nofile;  /* --nofile N */
	const char *fsize;   /* --fsize SIZE */
	const char *const *rw; /* --rw paths: writable under Landlock too */
	size_t n_rw;
	sb_net_mode net;
	bool allow_degraded; /* --allow-degraded */
	bool strict;         /* --strict: a missing Landlock is fatal too */
} sb_isolation_opts;

typedef struct sb_isolation_report {
	uint64_t wall_ns;
	uint64_t cpu_usec;       /* UINT64_MAX: unknown */
	uint64_t peak_memory;    /* bytes; UINT64_MAX: unknown */
	uint64_t memory_limit;   /* 0: none */
	uint64_t throttled;      /* periods; UINT64_MAX: unknown */
	uint64_t oom_kills;      /* UINT64_MAX: unknown */
	uint64_t peak_pids;      /* UINT64_MAX: unknown */
	bool timed_out;
} sb_isolation_report;

int sb_isolation_prepare(const sb_isolation_opts *o, const char *workspace,
			 sb_sandbox_config *cfg, sb_isolation **ret, sb_error *err);
/* Warnings produced while preparing (unknown syscalls in a profile, degraded layers). */
size_t sb_isolation_warning_count(const sb_isolation *iso);
const char *sb_isolation_warning(const sb_isolation *iso, size_t i);
int sb_isolation_summary(const sb_isolation *iso, char *buf, size_t size);
int sb_isolation_finish(sb_isolation *iso, const sb_sandbox_result *res,
			sb_isolation_report *ret, sb_error *err);
void sb_isolation_free(sb_isolation *iso);
static inline void sb_isolation_freep(sb_isolation **iso)
{
	sb_isolation_free(*iso);
}
/* The report as JSON, and as the lines run prints after the command. */
cJSON *sb_isolation_report_json(const sb_isolation_report *r);
void sb_isolation_report_print(FILE *f, const sb_isolation_report *r);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The isolation layers of `snapbox run` as the CLI sees them: options in,
 * sandbox artifacts out, a report at the end. Built in the parent, applied
 * in the child by sandbox/spawn.c (DESIGN.md §5).
 *
 *   sb_isolation_opts o;   filled from the command line / profile
 *   sb_isolation *iso;
 *   fill cfg (argv, workspace, net, binds, workspace_mount...) first: the
 *   summary names the namespaces and the overlay from it
 *   r = sb_isolation_prepare(&o, workspace, &cfg, &iso, err);
 *       fills cfg's seccomp_prog/_flags, cgroup_procs_fds, landlock ruleset,
 *       ABI and inside paths, rlimits, timeout. Fail closed: a limit asked
 *       for (--memory, --pids, --cpus) that cannot be enforced, or Landlock
 *       missing under --strict, is -EOPNOTSUPP naming the layer, the flags
 *       and --allow-degraded; with o.allow_degraded the layer is recorded
 *       as not enforced and the run goes on. Landlock missing without
 *       --strict is degraded, not fatal. A bad value (--memory 12Q), a
 *       malformed seccomp profile: -EINVAL naming it.
 *   sb_isolation_summary(iso, buf, size)
 *       "userns mountns pidns ipcns utsns cgroupns netns=none overlay=kernel
 *        seccomp=default(62 rules) cgroup=v1(memory=64M,pids=256)
 *        landlock=abi7 rlimit=core=0 timeout=2s" (one line)
 *   ... run ...
 *   sb_isolation_finish(iso, &result, &report, err)   kill what is left, read
 *                                                      the resource report, remove the cgroup
 *   sb_isolation_free(iso)
 *
 * cfg keeps pointers into iso (the seccomp program, the Landlock paths):
 * iso must outlive sb_sandbox_start.
 *
 * Landlock: writes are allowed beneath the workspace mount, /tmp, /dev/shm,
 * /dev/pts (rules added inside the sandbox after its mounts), the --rw
 * paths, /dev/null-like devices, and the files behind the command's stdio
 * (so `echo x >/dev/stderr` works when stderr is a file). Reads are not
 * restricted (masked paths are hidden by mounts). Landlock does not filter
 * TCP: with --net none there is no network to reach; with --net host the
 * network is the user's choice. From ABI 6 signals and abstract unix sockets
 * are scoped to the sandbox.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <cJSON.h>

#include "error.h"
#include "sandbox.h"

typedef struct sb_isolation sb_isolation;

typedef struct sb_isolation_opts {
	const char *memory;    /* --memory SIZE */
	const char *cpus;      /* --cpus N */
	const char *pids;      /* --pids N */
	const char *timeout;   /* --timeout DURATION */
	const char *seccomp;   /* --seccomp FILE|unconfined|default */
	const char *nofile;    /* --nofile N */
	const char *fsize;     /* --fsize SIZE */
	const char *const *rw; /* --rw paths: writable under Landlock too */
	size_t n_rw;
	sb_net_mode net;
	bool allow_degraded; /* --allow-degraded */
	bool strict;	     /* --strict: a missing Landlock is fatal too */
} sb_isolation_opts;

#define SB_ISOLATION_NOTE_MAX 1024

typedef struct sb_isolation_report {
	uint64_t wall_ns;
	uint64_t cpu_usec;     /* UINT64_MAX: unknown */
	uint64_t peak_memory;  /* bytes; UINT64_MAX: unknown */
	uint64_t memory_limit; /* 0: none */
	uint64_t throttled;    /* periods; UINT64_MAX: unknown */
	uint64_t oom_kills;    /* UINT64_MAX: unknown */
	uint64_t peak_pids;    /* UINT64_MAX: unknown */
	bool timed_out;
	/* What was asked for or expected but not enforced, one "layer: why" per line. */
	char not_enforced[SB_ISOLATION_NOTE_MAX];
} sb_isolation_report;

int sb_isolation_prepare(const sb_isolation_opts *o, const char *workspace, sb_sandbox_config *cfg,
			 sb_isolation **ret, sb_error *err);
/* Warnings produced while preparing (unknown syscalls in a profile, degraded layers). */
size_t sb_isolation_warning_count(const sb_isolation *iso);
const char *sb_isolation_warning(const sb_isolation *iso, size_t i);
/* The one-line summary (see the top comment); -ENOBUFS when truncated. */
int sb_isolation_summary(const sb_isolation *iso, char *buf, size_t size);
int sb_isolation_finish(sb_isolation *iso, const sb_sandbox_result *res, sb_isolation_report *ret,
			sb_error *err);
void sb_isolation_free(sb_isolation *iso);
static inline void sb_isolation_freep(sb_isolation **iso)
{
	sb_isolation_free(*iso);
}
/* The report as JSON, and as the lines run prints after the command. */
cJSON *sb_isolation_report_json(const sb_isolation_report *r);
void sb_isolation_report_print(FILE *f, const sb_isolation_report *r);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * cgroups of a run: one fresh cgroup per run (snapbox-<pid>-<random>, under
 * the caller's own cgroup or a given parent) that holds every process of the
 * sandbox, so that snapbox can limit them (--memory, --pids, --cpus, io
 * weight), report what they used, and kill whatever is left at the end.
 *
 * v2 where the unified hierarchy offers memory, pids and cpu (and whatever
 * limit was asked for); otherwise v1, with one directory per hierarchy
 * (memory, cpu, cpuacct, pids, freezer, blkio as mounted). Swap is held at 0
 * with a memory limit (memory.swap.max=0 / memory.memsw.limit_in_bytes).
 *
 * Parent:
 *   sb_cgroup_limits lim = {0};
 *   lim.memory_max = bytes;  lim.pids_max = 64;  sb_cgroup_limits_set_cpus(&lim, 500, &err);
 *   sb_cgroup *cg = NULL;
 *   r = sb_cgroup_new(&lim, NULL, &cg, &err);
 *       -EOPNOTSUPP: a limit asked for cannot be enforced here; the message
 *        names the controller. With no limit asked for, the same errno
 *        means no cgroup could be made at all (rootless without a
 *        delegated subtree): report the layer UNAVAILABLE and go on, or
 *        fail closed, as the caller's policy says.
 *   n = sb_cgroup_join_fds(cg, &fds);     what the child writes "0" into, owned by cg
 *   fd = sb_cgroup_clone_fd(cg);          v2: clone straight into it (CLONE_INTO_CGROUP)
 *   ... clone ...
 *   while waiting: sb_cgroup_sample(cg) now and then (peaks where the kernel keeps none)
 *   ... the command exits ...
 *   sb_cgroup_report_read(cg, &rep, &err);   before the kill: peak, CPU, throttling, OOM kills
 *   sb_cgroup_destroy(cg, &err);             kill every process left, remove the directories
 *   sb_cgroup_free(cg);                      (also destroys, best effort, if not done yet)
 *
 * Child, before exec (async-signal-safe; the fds were inherited):
 *   r = sb_cgroup_join(fds, n);     writes "0" into each fd: moves itself
 * Join before anything that forks, so no process escapes the cgroup. The
 * write is checked against the credentials that opened the fd (the parent),
 * so it works from inside a user namespace.
 *
 * The cost of joining: moving a whole process (cgroup.procs) takes a global
 * lock whose first writer waits for an RCU grace period, 6-20 ms, the
 * slowest step of a sandbox's start. Moving only the calling thread skips
 * that lock (Linux >= 6.0), so on v1 the join fds are the "tasks" files,
 * which move the writing thread alone: the child must be single-threaded
 * when it joins, and then it moves whole. v2 has no such file for a
 * process in another domain; there the parent clones the child directly
 * into the cgroup (clone3 CLONE_INTO_CGROUP, Linux >= 5.7), which takes the
 * lock only for reading, and the join fd (cgroup.procs) is the fallback.
 *
 * Killing: v2 writes cgroup.kill (falls back to freeze + SIGKILL each +
 * thaw); v1 freezes through the freezer hierarchy, SIGKILLs each pid in
 * cgroup.procs, thaws, and loops until the cgroup is empty (pids are checked
 * against /proc/<pid>/cgroup before the signal, so a recycled pid outside is
 * never hit). A double-forked daemon therefore dies with the run.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "error.h"
#include "layers.h"

typedef struct sb_cgroup sb_cgroup;

typedef enum sb_cgroup_version {
	SB_CGROUP_AUTO = 0, /* options only: pick as described above */
	SB_CGROUP_V1 = 1,
	SB_CGROUP_V2 = 2,
} sb_cgroup_version;

/* Controllers, as a bit mask. CPUACCT and FREEZER exist as such on v1 only. */
typedef enum sb_cgroup_controller {
	SB_CG_MEMORY = 1 << 0,
	SB_CG_PIDS = 1 << 1,
	SB_CG_CPU = 1 << 2,
	SB_CG_CPUACCT = 1 << 3,
	SB_CG_FREEZER = 1 << 4,
	SB_CG_IO = 1 << 5, /* v2 io, v1 blkio */
} sb_cgroup_controller;

/* "memory", "pids", "cpu", "cpuacct", "freezer", "io" (for one bit). */
const char *sb_cgroup_controller_name(unsigned bit);

typedef struct sb_cgroup_limits {
	uint64_t memory_max;	/* bytes, 0 = no limit; swap 0 comes with it */
	uint64_t pids_max;	/* tasks, 0 = no limit */
	uint64_t cpu_quota_us;	/* CPU time per period, 0 = no limit */
	uint64_t cpu_period_us; /* 0 = 100000 */
	uint64_t cpu_burst_us;	/* 0 = none; applied where the kernel has it */
	uint32_t io_weight;	/* v2 scale 1..10000, 0 = leave alone */
} sb_cgroup_limits;

/* Quota and period for millicpus (sb_parse_cpus), e.g. 500 -> 50000/100000. */
int sb_cgroup_limits_set_cpus(sb_cgroup_limits *lim, uint64_t millicpus, sb_error *err);

typedef struct sb_cgroup_options {
	sb_cgroup_version version; /* SB_CGROUP_AUTO, or force one (tests) */
	const char *
	    parent; /* cgroup path to create beneath ("/a/b" as in /proc/self/cgroup); NULL: our own */
} sb_cgroup_options;

#define SB_CGROUP_UNKNOWN UINT64_MAX

/* What the run used. Each field is SB_CGROUP_UNKNOWN when this host does not tell. */
typedef struct sb_cgroup_report {
	uint64_t memory_peak;	     /* bytes */
	uint64_t cpu_usec;	     /* user + system */
	uint64_t cpu_periods;	     /* enforcement periods that had runnable tasks */
	uint64_t cpu_throttled;	     /* periods in which the quota ran out */
	uint64_t cpu_throttled_usec; /* time spent throttled */
	uint64_t oom_kills;	     /* processes the OOM killer took */
	uint64_t pids_peak;    /* most tasks at once (sampled when the kernel keeps no peak) */
	uint64_t pids_refused; /* forks refused by pids.max */
} sb_cgroup_report;

int sb_cgroup_new(const sb_cgroup_limits *lim, const sb_cgroup_options *opt, sb_cgroup **ret,
		  sb_error *err);

/*
 * The fds a single-threaded child writes "0" into to join (see above): on
 * v1 each hierarchy's "tasks", on v2 cgroup.procs. O_WRONLY|O_CLOEXEC.
 */
size_t sb_cgroup_join_fds(const sb_cgroup *cg, const int **ret_fds);

/* v2: the cgroup's directory fd, for clone3's CLONE_INTO_CGROUP; -1 on v1. */
int sb_cgroup_clone_fd(const sb_cgroup *cg);

/* Child side, async-signal-safe: write "0" into each fd. -errno on the first failure. */
int sb_cgroup_join(const int *fds, size_t n);

/* Parent side alternative: move pid in (every hierarchy). */
int sb_cgroup_add_pid(sb_cgroup *cg, pid_t pid, sb_error *err);

/* Update sampled peaks (pids, memory) where the kernel keeps none. Cheap; call every ~100 ms. */
int sb_cgroup_sample(sb_cgroup *cg);

int sb_cgroup_report_read(sb_cgroup *cg, sb_cgroup_report *ret, sb_error *err);

/*
 * SIGKILL every process in the cgroup and wait (up to ~5 s) until it is
 * empty. Returns the number of processes signalled (>= 0), -EBUSY when
 * something survived.
 */
int sb_cgroup_kill_all(sb_cgroup *cg, sb_error *err);

/* kill_all, then remove the directories. Idempotent. */
int sb_cgroup_destroy(sb_cgroup *cg, sb_error *err);
void sb_cgroup_free(sb_cgroup *cg);
static inline void sb_cgroup_freep(sb_cgroup **cg)
{
	sb_cgroup_free(*cg);
}

sb_cgroup_version sb_cgroup_version_of(const sb_cgroup *cg);
/* Controllers this cgroup has a directory for (v1) or enabled (v2). */
unsigned sb_cgroup_controllers(const sb_cgroup *cg);
/* The directory (v2), or the first hierarchy's directory (v1); for messages and tests. */
const char *sb_cgroup_path(const sb_cgroup *cg);
/* The directory in the hierarchy holding controller (v1), the one directory (v2); NULL if none. */
const char *sb_cgroup_path_of(const sb_cgroup *cg, sb_cgroup_controller controller);

/*
 * cg NULL: UNAVAILABLE with why_not as the reason (the new() error message).
 * Otherwise ENFORCED "v1(memory,pids,cpu)" naming the limited controllers
 * (or "v2" alone when nothing was limited), DEGRADED when a part of a limit
 * could not be applied (the reason says which).
 */
void sb_cgroup_layer_status(const sb_cgroup *cg, const char *why_not, sb_layer_status *st);

/*
 * Remove the empty cgroups of earlier runs whose snapbox process is gone
 * (snapbox-<pid>-<random> with no such pid: killed with -9, or crashed)
 * beneath our cgroup or opt->parent, in every hierarchy. Cgroups that still
 * hold processes are left alone. Returns how many directories went.
 */
int sb_cgroup_sweep(const sb_cgroup_options *opt, sb_error *err);

/* What this host offers (for `snapbox doctor`). */
typedef struct sb_cgroup_host {
	sb_cgroup_version version; /* what SB_CGROUP_AUTO picks; 0 when none is mounted */
	bool v2_mounted;
	unsigned v1_mounted; /* controllers with a v1 hierarchy */
	unsigned
	    v2_available; /* controllers in our cgroup's (or the parent's) v2 cgroup.controllers */
	unsigned usable;  /* controllers this user can make a child cgroup for, with that version */
} sb_cgroup_host;

int sb_cgroup_probe(const sb_cgroup_options *opt, sb_cgroup_host *ret, sb_error *err);

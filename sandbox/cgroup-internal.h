/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared by cgroup.c (common code, host discovery, file parsers),
 * cgroup-v1.c and cgroup-v2.c. The parsers take text, not files, so the
 * unit tests can feed them fixtures.
 */

#include <limits.h>
#include "cgroup.h"

#define SB_CG_MAX_DIRS	 8
#define SB_CG_MAX_MOUNTS 16
#define SB_CG_NAME_MAX	 64

/* One cgroup filesystem from /proc/self/mountinfo. */
struct sb_cgroup__mount {
	bool v2;
	unsigned controllers; /* v1: from the super options; v2: 0 */
	char root[PATH_MAX];  /* the cgroup shown at the mount point ("/" normally) */
	char point[PATH_MAX]; /* where it is mounted */
};

/* One directory of the run's cgroup (one per v1 hierarchy; one on v2). */
struct sb_cgroup__dir {
	unsigned controllers;
	char path[PATH_MAX];
	int dir_fd;
	int procs_fd;
	int join_fd; /* v1: tasks (see sb_cgroup_join_fds); v2: procs_fd again, not owned */
	bool created;
};

struct sb_cgroup {
	sb_cgroup_version version;
	char name[SB_CG_NAME_MAX];
	struct sb_cgroup__dir dirs[SB_CG_MAX_DIRS];
	size_t n_dirs;
	int join_fds[SB_CG_MAX_DIRS];
	unsigned limited; /* controllers with a limit written */
	sb_cgroup_limits lim;
	uint64_t sampled_pids_peak;
	uint64_t sampled_memory_peak;
	bool destroyed;
	char degraded[SB_LAYER_REASON_MAX]; /* non-empty: a part of a limit was skipped */
};

/* Everything discovery found out. */
struct sb_cgroup__host {
	struct sb_cgroup__mount mounts[SB_CG_MAX_MOUNTS];
	size_t n_mounts;
	char *proc_self_cgroup; /* text of /proc/self/cgroup */
};

void sb_cgroup__host_release(struct sb_cgroup__host *h);
int sb_cgroup__host_load(struct sb_cgroup__host *h, sb_error *err);

/* ---- parsers (text in, no I/O) ---- */

/* "memory,cpu" / "memory cpu pids" -> bits; unknown names ignored. */
unsigned sb_cgroup__parse_controllers(const char *text);

/* All cgroup/cgroup2 mounts in a mountinfo text. -EINVAL on a malformed line. */
int sb_cgroup__parse_mountinfo(const char *text, struct sb_cgroup__mount *out, size_t max,
			       size_t *ret_n);

/*
 * Our path in /proc/self/cgroup text: the "0::" line when v2, else the line
 * whose controller list contains controller. -ENOENT when absent.
 */
int sb_cgroup__own_path(const char *text, bool v2, unsigned controller, char *buf, size_t size);

/* "key value" lines (cpu.stat, memory.events, pids.events ...): -ENOENT if key is absent. */
int sb_cgroup__keyed(const char *text, const char *key, uint64_t *ret);

/* A file that holds one number, or "max" (-> UINT64_MAX). */
int sb_cgroup__number(const char *text, uint64_t *ret);

/* Directory of cgroup path cg_path in mount m: -EXDEV when m does not show it. */
int sb_cgroup__dir_in_mount(const struct sb_cgroup__mount *m, const char *cg_path, char *buf,
			    size_t size);

/* ---- file helpers on a cgroup directory fd ---- */

int sb_cgroup__write(int dir_fd, const char *file, const char *value);
int sb_cgroup__writef(int dir_fd, const char *file, const char *fmt, ...) _printf_(3, 4);
/* Whole file, malloc'd, NUL-terminated. */
int sb_cgroup__read(int dir_fd, const char *file, char **ret);
int sb_cgroup__read_number(int dir_fd, const char *file, uint64_t *ret);
int sb_cgroup__read_keyed(int dir_fd, const char *file, const char *key, uint64_t *ret);
bool sb_cgroup__exists(int dir_fd, const char *file);

/* Pids signalled so far by one kill_all, so each process is counted once. */
struct sb_cgroup__pidset {
	pid_t *v;
	size_t n, cap;
};

/*
 * SIGKILL every pid listed in dir's cgroup.procs that is still in a cgroup
 * named name (checked in /proc/<pid>/cgroup through a pidfd, so a recycled
 * pid is never hit). Returns how many of them were not in seen before (and
 * adds them).
 */
int sb_cgroup__kill_listed(int dir_fd, const char *name, struct sb_cgroup__pidset *seen);
/* True when cgroup.procs of every dir is empty. */
bool sb_cgroup__all_empty(const sb_cgroup *cg);
void sb_cgroup__sleep_ms(unsigned ms);

/* Open dir (O_DIRECTORY), its cgroup.procs (O_WRONLY) and, on v1, its tasks into d. */
int sb_cgroup__open_dir(struct sb_cgroup__dir *d, bool v1, sb_error *err);

/* ---- versions ---- */

int sb_cgroup__v1_create(sb_cgroup *cg, const struct sb_cgroup__host *h,
			 const sb_cgroup_options *opt, sb_error *err);
int sb_cgroup__v1_report(sb_cgroup *cg, sb_cgroup_report *rep);
int sb_cgroup__v1_kill(sb_cgroup *cg, sb_error *err);
int sb_cgroup__v1_sample(sb_cgroup *cg);
int sb_cgroup__v1_probe(const struct sb_cgroup__host *h, const sb_cgroup_options *opt,
			unsigned *ret_mounted, unsigned *ret_usable);

int sb_cgroup__v2_create(sb_cgroup *cg, const struct sb_cgroup__host *h,
			 const sb_cgroup_options *opt, sb_error *err);
int sb_cgroup__v2_report(sb_cgroup *cg, sb_cgroup_report *rep);
int sb_cgroup__v2_kill(sb_cgroup *cg, sb_error *err);
int sb_cgroup__v2_sample(sb_cgroup *cg);
/* The v2 parent directory and the controllers it offers; -ENOENT without a v2 mount. */
int sb_cgroup__v2_parent(const struct sb_cgroup__host *h, const sb_cgroup_options *opt, char *buf,
			 size_t size, unsigned *ret_available);

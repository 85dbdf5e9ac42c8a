/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared between spawn.c, reaper.c, mountplan.c, userns.c, netns.c, env.c and
 * caps.c. Everything named sb_sandbox__*_child runs between clone and exec:
 * no allocation, no stdio, no locks; it only reads memory prepared before
 * clone (the child is a copy of the parent's address space) and makes
 * syscalls.
 */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sandbox.h"

typedef struct sb_mountplan sb_mountplan;

/* The setup steps, in order; names appear in "sandbox setup failed at <step>". */
typedef enum sb_step {
	SB_STEP_NONE = 0,
	SB_STEP_STDIO,
	SB_STEP_PDEATHSIG,
	SB_STEP_USERNS,
	SB_STEP_HOSTNAME,
	SB_STEP_CGROUP,
	SB_STEP_CGROUPNS,
	SB_STEP_LOOPBACK,
	SB_STEP_MOUNT,
	SB_STEP_PIVOT,
	SB_STEP_CHDIR,
	SB_STEP_SETSID,
	SB_STEP_CLOSE_FDS,
	SB_STEP_CAPS,
	SB_STEP_NO_NEW_PRIVS,
	SB_STEP_FORK,
	SB_STEP_SIGNALS,
	SB_STEP_LANDLOCK,
	SB_STEP_RLIMIT,
	SB_STEP_SECCOMP,
	SB_STEP_EXEC,
	SB_STEP__MAX,
} sb_step;

const char *sb_sandbox__step_name(sb_step step);

typedef enum sb_report_kind {
	SB_REPORT_SETUP = 1, /* a setup step failed: step, error, path, note */
	SB_REPORT_EXEC = 2,  /* exec failed: error, path (the file tried) */
	SB_REPORT_EXIT = 3,  /* PID 1: the command's raw wait status */
} sb_report_kind;

#define SB_REPORT_PATH 2048
#define SB_REPORT_NOTE 1024

/* One record on a report pipe; smaller than PIPE_BUF, so written atomically. */
typedef struct sb_report {
	uint32_t kind;
	int32_t step;
	int32_t error;	/* positive errno */
	int32_t status; /* EXIT: raw wait status */
	char path[SB_REPORT_PATH];
	char note[SB_REPORT_NOTE]; /* kernel message or what was being done */
} sb_report;

_Static_assert(sizeof(sb_report) <= 4096, "sb_report must be written atomically");

/* Allocation-free string helpers for the child. */
void sb_sandbox__scopy(char *dst, size_t size, const char *src);
void sb_sandbox__scat(char *dst, size_t size, const char *src);
/* Writes a SETUP record; returns -error. */
int sb_sandbox__fail(int fd, sb_step step, int error, const char *path, const char *note);

/* Everything PID 1 and the command need, prepared before clone. */
typedef struct sb_child {
	int stdio[3];	 /* -1: keep */
	int setup_fd;	 /* write end: SETUP/EXEC records; EOF at exec */
	int status_fd;	 /* write end: PID 1's EXIT record */
	int alive_fd;	 /* read end: the supervisor holds the write end */
	int mount_sock;	 /* -1, or where to send an fd on the workspace mount */
	bool hold;	 /* SB_SANDBOX_HOLD: read one byte from alive_fd before the command */
	int landlock_fd; /* -1: none */
	int landlock_abi;
	const char *const *landlock_paths; /* inside; rules added by PID 1 after the mounts */
	size_t n_landlock_paths;
	const int *cgroup_fds;
	size_t n_cgroup_fds;
	int cgroup_clone_fd; /* -1: none */
	bool cgroup_joined;  /* set in PID 1 when the clone put it in cgroup_clone_fd */

	bool userns;
	char setgroups[8];
	char uid_map[64];
	char gid_map[64];

	bool netns;
	const char *hostname;
	sb_mountplan *plan;
	const char *cwd;
	int cap_last; /* highest capability number the kernel knows */

	/* exec */
	char **argv;	/* NULL-terminated */
	char **sh_argv; /* "sh", <path>, argv[1..], NULL: ENOEXEC fallback, [1] set late */
	char **envp;
	const char *path_env; /* PATH value inside (points into envp) */
	char *exec_buf;	      /* SB_REPORT_PATH bytes: candidate paths */
	char *eacces_buf;     /* SB_REPORT_PATH bytes: first path refused with EACCES */

	const struct sock_fprog *seccomp_prog;
	unsigned seccomp_flags;
	const struct sb_rlimit *rlimits;
	size_t n_rlimits;
} sb_child;

/* env.c: the reduced environment (NULL-terminated, malloc'd strings). */
int sb_sandbox__env_build(const sb_sandbox_config *cfg, char ***ret_envp, sb_error *err);
void sb_sandbox__env_free(char **envp);
/* The value of name in envp, or NULL. */
const char *sb_sandbox__env_get(char *const *envp, const char *name);

/* userns.c */
int sb_sandbox__userns_prepare(sb_child *c, sb_error *err);
int sb_sandbox__userns_child(const sb_child *c);

/* netns.c */
int sb_sandbox__loopback_up_child(void);

/* caps.c */
int sb_sandbox__cap_last(void);
int sb_sandbox__caps_drop_child(int cap_last);

/* reaper.c: PID 1 after setup; never returns. */
_Noreturn void sb_sandbox__reaper_child(sb_child *c);

/* The signals PID 1 forwards to the command, and the supervisor to PID 1. */
extern const int sb_sandbox__forwarded_signals[];
extern const size_t sb_sandbox__n_forwarded_signals;

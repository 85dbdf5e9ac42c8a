/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sandbox: run one command in fresh namespaces with a read-only view of
 * the host, the workspace mounted at its own path, and nothing reaching out.
 *
 * Calling sequence (the caller is the supervisor and stays outside):
 *
 *   sb_sandbox_config cfg;
 *   sb_sandbox_config_init(&cfg);               defaults: net none, no limits
 *   cfg.argv = argv;                            NULL-terminated
 *   cfg.workspace = "/home/u/proj";             absolute
 *   cfg.workspace_mount = sb_overlay_mount_hook; cfg.workspace_mount_data = ov;
 *   cfg.seccomp_prog = prog; cfg.landlock_ruleset_fd = fd; ...
 *
 *   sb_sandbox *sb;
 *   sb_sandbox_start(&cfg, &sb, &err);          clone; returns at once
 *   sb_sandbox_release(sb, &err);               with SB_SANDBOX_HOLD: the command may start
 *   sb_sandbox_wait_exec(sb, &err);             optional: until exec or failure
 *   sb_sandbox_wait(sb, &result, &err);         until the sandbox is gone
 *   sb_sandbox_free(sb);                        SIGKILLs it first if still alive
 *
 * or sb_sandbox_run(&cfg, &result, &err), which is start + wait + free.
 *
 * cfg and everything it points to only need to live until sb_sandbox_start
 * returns: the sandbox is a copy of the caller's memory at clone time. The
 * fds in cfg (cgroup.procs, Landlock ruleset, stdio) stay owned by the caller;
 * the sandbox holds its own copies. Call start and wait from the same thread:
 * PR_SET_PDEATHSIG fires when the *thread* that cloned the sandbox exits.
 *
 * Inside (DESIGN.md §5), in this order, all strings prepared before clone,
 * no allocation between clone and exec:
 *
 *   clone(NEWNS|NEWPID|NEWIPC|NEWUTS [|NEWNET] [|NEWUSER])  -> PID 1
 *   PID 1: pdeathsig, uid/gid map (user namespace), hostname, join cgroups
 *          (writes "0" to each cgroup_procs_fds fd, unless cloned into
 *          cgroup_clone_fd), unshare(NEWCGROUP), loopback
 *          up, the mount plan (read-only host root, /tmp, /dev, /proc,
 *          workspace, --ro/--rw, masks: secrets, daemon sockets such as
 *          /run/docker.sock and /run/user/UID, the store, --hide; see
 *          mountplan.h), pivot_root, setsid, close fds,
 *          drop every capability, no_new_privs; with SB_SANDBOX_HOLD,
 *          wait for sb_sandbox_release(); then clone the command (sharing
 *          PID 1's memory until it execs, as vfork) and
 *          reap: forwards HUP INT QUIT TERM USR1 USR2 WINCH CONT, reaps
 *          orphans, exits with the command's status when the command exits
 *          (the kernel then kills everything else in the pid namespace).
 *          After the mounts, PID 1 adds the Landlock rules for
 *          landlock_paths to the ruleset (their inodes exist only now).
 *   command: pdeathsig, default signal dispositions, landlock_restrict_self,
 *          setrlimit list, seccomp with seccomp_flags (last), exec with the
 *          reduced environment.
 *
 * A failure in PID 1 or the command before exec travels to the supervisor
 * as {step, errno, path} over a close-on-exec pipe; sb_sandbox_wait() turns
 * it into a result with SB_SANDBOX_SETUP_FAILED (exit code 125) or
 * SB_SANDBOX_EXEC_FAILED (126 not executable, 127 not found), so a command
 * that exits 127 by itself is never mistaken for a missing one.
 *
 * Errnos: -EINVAL bad config (message names the field and value), -ENOENT a
 * --ro/--rw path or the workspace is missing, -ENOSYS/-EPERM from clone when
 * the host forbids namespaces (message says which), -ECHILD when waiting twice.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "error.h"

struct sock_fprog;
struct sb_rlimit; /* sandbox/rlimit.h: {int resource; struct rlimit limit;} */

typedef struct sb_sandbox sb_sandbox;

typedef enum sb_net_mode {
	SB_NET_NONE = 0, /* new network namespace with only loopback, brought up */
	SB_NET_HOST = 1, /* the host's network namespace */
} sb_net_mode;

typedef enum sb_sandbox_flags {
	/* User namespace even when the caller is root (uid/gid mapped to themselves). */
	SB_SANDBOX_USERNS = 1 << 0,
	/*
	 * sb_sandbox_wait() blocks SIGHUP SIGINT SIGQUIT SIGTERM SIGUSR1 SIGUSR2
	 * SIGWINCH SIGCONT in the calling thread and relays them to the sandbox
	 * (the command lives in its own session, so a Ctrl-C at the terminal
	 * reaches only the supervisor). Only while inside sb_sandbox_wait();
	 * the mask is restored on return. SIGWINCH lets a TUI follow resizes.
	 */
	SB_SANDBOX_FORWARD_SIGNALS = 1 << 1,
	/* mount(2) binds and per-mount remounts instead of the new mount API. */
	SB_SANDBOX_CLASSIC_MOUNT = 1 << 2,
	/*
	 * PID 1 sets up everything (namespaces, cgroups, mounts, pivot_root,
	 * capabilities dropped...) and then holds until sb_sandbox_release():
	 * the caller overlaps the set-up with work of its own that must come
	 * before the command starts. The timeout and wall_ns count from the
	 * release.
	 */
	SB_SANDBOX_HOLD = 1 << 3,
} sb_sandbox_flags;

/* One extra bind at the same path inside as outside (--ro PATH, --rw PATH). */
typedef struct sb_sandbox_bind {
	const char *path;
	bool writable;
} sb_sandbox_bind;

/*
 * Mounts the workspace view at target inside the sandbox. Called in PID 1
 * between clone and exec, after the host root, /tmp, /dev and /proc are in
 * place: it must not allocate, lock, print or use stdio. host_root is the
 * prefix under which the host's root is reachable ("/oldroot"): layer paths
 * are host_root + the absolute host path. userns says whether the sandbox is
 * in a user namespace (kernel overlay: use userxattr). On failure returns
 * -errno and may put a NUL-terminated kernel message in msg.
 * sb_overlay_mount_hook (overlay/overlay.h) has this type.
 */
typedef int (*sb_sandbox_mount_fn)(void *data, const char *host_root, const char *target,
				   bool userns, char *msg, size_t msg_size);

typedef struct sb_sandbox_config {
	const char *const *argv; /* NULL-terminated; argv[0] without '/' is searched in PATH */
	const char *cwd;	 /* inside; NULL: the workspace, else "/" */

	/*
	 * The workspace, an absolute path; it appears at the same path inside.
	 * Exactly one way to mount it: workspace_mount (kernel overlay), or
	 * workspace_src (bind that directory read-write at the workspace path,
	 * e.g. a FUSE overlay's mount point), or neither (visible read-only like
	 * the rest of the host; kept visible when under /tmp or /dev/shm).
	 */
	const char *workspace;
	sb_sandbox_mount_fn workspace_mount;
	void *workspace_mount_data;
	const char *workspace_src;

	const char *home;	 /* whose secrets are masked, and HOME inside; NULL: $HOME */
	const char *store;	 /* the snapbox store, masked; NULL: none */
	const char *const *hide; /* --hide: more paths masked */
	size_t n_hide;
	const sb_sandbox_bind *binds; /* --ro / --rw */
	size_t n_binds;

	/*
	 * Environment: PATH HOME USER LOGNAME SHELL TERM LANG LC_* TZ from
	 * base_env (NULL: environ), then each env entry: "K=V" sets K, "K"
	 * passes K through from base_env when set there.
	 */
	const char *const *base_env;
	const char *const *env;
	size_t n_env;

	sb_net_mode net;
	const char *hostname; /* NULL: "snapbox" */

	/* Artifacts prepared by the isolation layers, applied in the sandbox. */
	/*
	 * Opened for writing by the caller; PID 1, still single-threaded,
	 * writes "0" to each: cgroup.procs files, or on cgroup v1 the "tasks"
	 * files, which move the writing thread alone and so skip the RCU
	 * grace period a process move waits for (sb_cgroup_join_fds).
	 */
	const int *cgroup_procs_fds;
	size_t n_cgroup_procs_fds;
	/*
	 * -1, or a cgroup v2 directory fd: PID 1 is cloned straight into it
	 * (clone3 CLONE_INTO_CGROUP) and then writes to no cgroup_procs_fds;
	 * on a kernel without it (before 5.7) the clone is retried without
	 * and PID 1 joins through cgroup_procs_fds.
	 */
	int cgroup_clone_fd;
	const struct sock_fprog *seccomp_prog; /* installed last, right before exec; NULL: none */
	unsigned seccomp_flags;	 /* SECCOMP_FILTER_FLAG_*: sb_seccomp_filter_flags() */
	int landlock_ruleset_fd; /* -1: none */
	int landlock_abi;	 /* the ruleset's ABI (sb_landlock_abi_of) */
	/*
	 * Paths as the sandbox sees them (after pivot_root) beneath which the
	 * command may write under Landlock: the roots of mounts the sandbox
	 * makes itself (the workspace overlay, /tmp, /dev/shm, /dev/pts), whose
	 * inodes do not exist before clone. PID 1 adds one rule per path to
	 * landlock_ruleset_fd after its mounts (sb_landlock_add_path); a
	 * missing path fails the run at the "landlock" step. Needs a ruleset.
	 * The rules land in the ruleset object the caller's fd names (a
	 * clone shares it): use one ruleset per sandbox.
	 */
	const char *const *landlock_paths;
	size_t n_landlock_paths;
	const struct sb_rlimit *rlimits; /* sb_rlimits.items, applied in order */
	size_t n_rlimits;

	uint64_t timeout_ms;	   /* 0: none. On expiry the sandbox is killed */
	uint64_t timeout_grace_ms; /* >0: SIGTERM first, SIGKILL this much later */

	int stdin_fd, stdout_fd, stderr_fd; /* -1: inherit the caller's */
	sb_sandbox_flags flags;
} sb_sandbox_config;

typedef enum sb_sandbox_outcome {
	SB_SANDBOX_EXITED = 0,	 /* the command exited; exit_code is its status */
	SB_SANDBOX_SIGNALED,	 /* the command (or the sandbox) died of `signal`; 128+signal */
	SB_SANDBOX_SETUP_FAILED, /* snapbox failed before the command ran; 125 */
	SB_SANDBOX_EXEC_FAILED,	 /* the command could not be run: 126 or 127 */
} sb_sandbox_outcome;

#define SB_SANDBOX_PATH_MAX 2048

typedef struct sb_sandbox_result {
	sb_sandbox_outcome outcome;
	int exit_code;	  /* what `snapbox run` exits with, per DESIGN.md §2 */
	int signal;	  /* SIGNALED: the signal number */
	bool timed_out;	  /* the supervisor killed the sandbox at the timeout */
	int error;	  /* SETUP_FAILED / EXEC_FAILED: positive errno */
	const char *step; /* SETUP_FAILED: static name of the step ("mount", "landlock"...) */
	char path[SB_SANDBOX_PATH_MAX]; /* SETUP/EXEC_FAILED: the path at fault, may be "" */
	char message[SB_ERROR_MAX];	/* SETUP/EXEC_FAILED: one line for the user, else "" */
	uint64_t wall_ns;		/* from start to the sandbox's end */
	struct rusage rusage;		/* PID 1 and every process it reaped */
} sb_sandbox_result;

void sb_sandbox_config_init(sb_sandbox_config *cfg);

/* Checks cfg, prepares everything, clones. On success *ret_sb owns the sandbox. */
int sb_sandbox_start(const sb_sandbox_config *cfg, sb_sandbox **ret_sb, sb_error *err);

/*
 * SB_SANDBOX_HOLD: lets the held PID 1 start the command, and starts the
 * timeout clock. Returns at once; a set-up that failed meanwhile is reported
 * by wait (and wait_exec) as usual. A no-op without SB_SANDBOX_HOLD or when
 * already released; wait and wait_exec release a held sandbox themselves.
 */
int sb_sandbox_release(sb_sandbox *sb, sb_error *err);

/* PID 1 of the sandbox, as the caller's pid namespace sees it. */
pid_t sb_sandbox_pid(const sb_sandbox *sb);

/*
 * Blocks until the command has been exec'd (returns 0) or setup/exec failed
 * (returns the negative errno, message in err; sb_sandbox_wait still gives
 * the full result). Optional.
 */
int sb_sandbox_wait_exec(sb_sandbox *sb, sb_error *err);

/* Sends sig to PID 1, which forwards HUP INT QUIT TERM USR1 USR2 WINCH CONT
 * to the command; SIGKILL ends the whole pid namespace at once. */
int sb_sandbox_kill(sb_sandbox *sb, int sig);

/*
 * Waits for the end (applying the timeout), reaps PID 1 and fills *ret. When
 * PID 1 is reaped every process of the sandbox is gone and its mounts are
 * released. Returns 0 whenever *ret describes the run — also for setup and
 * exec failures, which are outcomes, not errors; < 0 only when the
 * supervisor itself failed.
 */
int sb_sandbox_wait(sb_sandbox *sb, sb_sandbox_result *ret, sb_error *err);

/*
 * With workspace_mount: an fd (O_PATH, close-on-exec) on the mount the hook
 * made, sent by PID 1 during setup before anything else could cover it;
 * -ENOENT when there is none (no workspace_mount, setup failed before it,
 * already taken, or not sent yet: call it once the sandbox has ended).
 *
 * Why: the last reference to an overlay frees one dentry and inode per path
 * the command looked at — 170-350 ms after a command that read 80k files —
 * and without this fd that happens in PID 1's exit, which the wait waits
 * for. This fd keeps the mount alive past the sandbox's namespaces, so the
 * caller decides where that cost goes: a background process that closes it
 * (src/detach.h). The mount is detached from every namespace by then, and
 * nothing is left in the sandbox to use it. What moves with it: that CPU
 * time is no longer the run's (its cgroup, its timeout), and until the
 * close, the upper's deleted files keep their disk blocks.
 */
int sb_sandbox_take_workspace_fd(sb_sandbox *sb);

/* Kills (SIGKILL) and reaps the sandbox if still running; frees. NULL is fine. */
void sb_sandbox_free(sb_sandbox *sb);
void sb_sandbox_freep(sb_sandbox **sb);

/* start + wait + free. */
int sb_sandbox_run(const sb_sandbox_config *cfg, sb_sandbox_result *ret, sb_error *err);

/* Whether start would use a user namespace for cfg (not root, or SB_SANDBOX_USERNS). */
bool sb_sandbox_uses_userns(const sb_sandbox_config *cfg);

/*
 * Paths relative to $HOME masked by default (NULL-terminated): credentials
 * (.ssh .aws .gnupg .kube .docker .netrc .git-credentials .config/gcloud
 * .azure .pypirc .npmrc .config/gh .config/hub .password-store
 * .local/share/keyrings .Xauthority .ICEauthority ...) and shell histories.
 * Only those that exist are masked: directories with an empty read-only
 * tmpfs, files with /dev/null.
 */
const char *const *sb_sandbox_default_secrets(void);

/*
 * Absolute host paths masked by default, the same way, whoever runs the
 * sandbox (a root caller's command is uid 0, the owner of these files):
 * /etc/shadow /etc/gshadow (and their '-' backups) /etc/sudoers
 * /etc/sudoers.d /etc/security/opasswd /etc/ssh/ssh_host_*_key
 * /etc/ssl/private /etc/krb5.keytab. An entry with a '*' is a glob(3)
 * pattern. NULL-terminated.
 */
const char *const *sb_sandbox_system_secrets(void);

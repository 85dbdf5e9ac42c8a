/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "landlock.h"
#include "mountplan.h"
#include "sandbox-internal.h"

/*
 * Life of a sandbox object:
 *
 *   start ──> running ──(PID 1 exits / is killed)──> reaped ──> free
 *                │                                      ▲
 *                └──────── free (SIGKILL + reap) ───────┘
 *
 * The supervisor keeps: PID 1's pid and pidfd, the read ends of the setup
 * pipe (records from PID 1 and the command until exec; EOF once exec
 * succeeded) and the status pipe (PID 1's final record), and the write end
 * of the alive pipe, whose closing tells a just-cloned PID 1 that its
 * supervisor is already gone. With SB_SANDBOX_HOLD, PID 1 keeps the read
 * end and waits there for the byte sb_sandbox_release() writes (EOF: the
 * supervisor died); the supervisor holds a read end of its own as well, so
 * that this write can never raise SIGPIPE.
 */
struct sb_sandbox {
	pid_t pid;
	int pidfd;
	int setup_fd, status_fd, alive_fd, alive_rfd;
	int mount_sock; /* receives PID 1's fd on the workspace mount (SCM_RIGHTS) */
	struct timespec start;
	uint64_t timeout_ms, grace_ms;
	sb_sandbox_flags flags;
	bool held;
	bool reaped;
	bool have_setup_rep, setup_eof;
	sb_report setup_rep;
	char argv0[SB_SANDBOX_PATH_MAX];
	char path_env[512];
};

static const char *const step_names[SB_STEP__MAX] = {
    [SB_STEP_NONE] = "setup",
    [SB_STEP_STDIO] = "stdio",
    [SB_STEP_PDEATHSIG] = "parent-death signal",
    [SB_STEP_USERNS] = "user namespace map",
    [SB_STEP_HOSTNAME] = "hostname",
    [SB_STEP_CGROUP] = "cgroup join",
    [SB_STEP_CGROUPNS] = "cgroup namespace",
    [SB_STEP_LOOPBACK] = "loopback",
    [SB_STEP_MOUNT] = "mount",
    [SB_STEP_PIVOT] = "pivot_root",
    [SB_STEP_CHDIR] = "chdir",
    [SB_STEP_SETSID] = "setsid",
    [SB_STEP_CLOSE_FDS] = "closing fds",
    [SB_STEP_CAPS] = "dropping capabilities",
    [SB_STEP_NO_NEW_PRIVS] = "no_new_privs",
    [SB_STEP_FORK] = "fork",
    [SB_STEP_SIGNALS] = "signals",
    [SB_STEP_LANDLOCK] = "landlock",
    [SB_STEP_RLIMIT] = "rlimit",
    [SB_STEP_SECCOMP] = "seccomp",
    [SB_STEP_EXEC] = "exec",
};

const char *sb_sandbox__step_name(sb_step step)
{
	if ((int)step < 0 || step >= SB_STEP__MAX || !step_names[step])
		return "setup";
	return step_names[step];
}

void sb_sandbox__scopy(char *dst, size_t size, const char *src)
{
	if (size == 0)
		return;
	dst[0] = 0;
	sb_sandbox__scat(dst, size, src);
}

void sb_sandbox__scat(char *dst, size_t size, const char *src)
{
	size_t o = strnlen(dst, size);
	for (size_t i = 0; src && src[i] && o + 1 < size; i++)
		dst[o++] = src[i];
	if (o < size)
		dst[o] = 0;
}

int sb_sandbox__fail(int fd, sb_step step, int error, const char *path, const char *note)
{
	sb_report rep;
	memset(&rep, 0, sizeof(rep));
	rep.kind = SB_REPORT_SETUP;
	rep.step = step;
	rep.error = error;
	sb_sandbox__scopy(rep.path, sizeof(rep.path), path);
	sb_sandbox__scopy(rep.note, sizeof(rep.note), note);
	(void)!write(fd, &rep, sizeof(rep));
	return -error;
}

void sb_sandbox_config_init(sb_sandbox_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->net = SB_NET_NONE;
	cfg->landlock_ruleset_fd = -1;
	cfg->cgroup_clone_fd = -1;
	cfg->stdin_fd = cfg->stdout_fd = cfg->stderr_fd = -1;
}

bool sb_sandbox_uses_userns(const sb_sandbox_config *cfg)
{
	return geteuid() != 0 || (cfg->flags & SB_SANDBOX_USERNS);
}

pid_t sb_sandbox_pid(const sb_sandbox *sb)
{
	return sb->pid;
}

int sb_sandbox_take_workspace_fd(sb_sandbox *sb)
{
	if (sb->mount_sock < 0)
		return -ENOENT;
	char one;
	struct iovec iov = {.iov_base = &one, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = u.buf,
			   .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	while ((n = recvmsg(sb->mount_sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 &&
	       errno == EINTR)
		;
	int e = errno;
	CLOSE_FD(sb->mount_sock);
	if (n < 0)
		return e == EAGAIN ? -ENOENT : -e;
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	bool one_fd = h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
		      h->cmsg_len == CMSG_LEN(sizeof(int));
	int fd = -1;
	if (one_fd)
		memcpy(&fd, CMSG_DATA(h), sizeof(int));
	if (n != 1 || !one_fd || (m.msg_flags & MSG_CTRUNC)) {
		if (fd >= 0)
			close(fd);
		return -EBADMSG;
	}
	return fd;
}

/* ---- the child (PID 1) until the reaper takes over: no allocation ---- */

static int close_fds_except(int *keep, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	unsigned from = 0;
	for (size_t i = 0; i <= n; i++) {
		unsigned to = i < n ? (unsigned)keep[i] : ~0U;
		if (i < n && keep[i] < 0)
			continue;
		if (to > from) {
			unsigned last = i < n ? to - 1 : ~0U;
			if (syscall(SYS_close_range, from, last, 0) < 0) {
				if (errno != ENOSYS)
					return -errno;
				struct rlimit rl;
				unsigned max =
				    getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20
					? (unsigned)rl.rlim_cur
					: 1u << 16;
				for (unsigned fd = from; fd <= last && fd < max; fd++)
					close((int)fd);
			}
		}
		if (i < n)
			from = to + 1;
	}
	return 0;
}

static int setup_stdio(const sb_child *c)
{
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = c->stdio[i];
		/* Move sources out of 0..2 first, so one dup2 cannot clobber another's source. */
		if (fds[i] >= 0 && fds[i] < 3 && fds[i] != i &&
		    (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
			return -errno;
	}
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 0)
			continue;
		if (fds[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(fds[i], i) < 0)
			return -errno;
	}
	return 0;
}

/*
 * Hands the supervisor an fd on the workspace mount (see
 * sb_sandbox_take_workspace_fd). Best effort: without it the supervisor
 * only waits longer.
 */
static void send_workspace_mount(sb_child *c)
{
	if (c->mount_sock < 0)
		return;
	int mfd = c->plan->hook_fd;
	if (mfd >= 0) {
		char one = 1;
		struct iovec iov = {.iov_base = &one, .iov_len = 1};
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} u;
		memset(&u, 0, sizeof(u));
		struct msghdr m = {.msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = u.buf,
				   .msg_controllen = sizeof(u.buf)};
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &mfd, sizeof(int));
		(void)sendmsg(c->mount_sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		close(mfd);
		c->plan->hook_fd = -1;
	}
	close(c->mount_sock);
	c->mount_sock = -1;
}

static _Noreturn void child_main(sb_child *c)
{
	int fd = c->setup_fd;
	/*
	 * Parent-death signal first, then check the supervisor still holds the
	 * alive pipe: had it died before the prctl, the signal would never come.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
		sb_sandbox__fail(fd, SB_STEP_PDEATHSIG, errno, "", NULL);
		_exit(125);
	}
	struct pollfd pfd = {.fd = c->alive_fd, .events = POLLIN};
	if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR)))
		_exit(125);

	if (setup_stdio(c) < 0) {
		sb_sandbox__fail(fd, SB_STEP_STDIO, errno, "", "dup2");
		_exit(125);
	}
	if (c->userns && sb_sandbox__userns_child(c) < 0)
		_exit(125);
	if (sethostname(c->hostname, strlen(c->hostname)) < 0) {
		sb_sandbox__fail(fd, SB_STEP_HOSTNAME, errno, "", c->hostname);
		_exit(125);
	}
	/* Join first, then unshare: the new cgroup namespace is rooted at the sandbox's cgroup. */
	for (size_t i = 0; !c->cgroup_joined && i < c->n_cgroup_fds; i++)
		if (write(c->cgroup_fds[i], "0", 1) != 1) {
			sb_sandbox__fail(fd, SB_STEP_CGROUP, errno ? errno : EIO, "",
					 "writing \"0\" to cgroup.procs or tasks");
			_exit(125);
		}
	if (unshare(CLONE_NEWCGROUP) < 0 && errno != EINVAL) {
		sb_sandbox__fail(fd, SB_STEP_CGROUPNS, errno, "", "unshare(CLONE_NEWCGROUP)");
		_exit(125);
	}
	if (c->netns) {
		int r = sb_sandbox__loopback_up_child();
		if (r < 0) {
			sb_sandbox__fail(fd, SB_STEP_LOOPBACK, -r, "lo", "SIOCSIFFLAGS");
			_exit(125);
		}
	}

	sb_report rep;
	memset(&rep, 0, sizeof(rep));
	if (sb_mountplan_apply(c->plan, &rep) < 0) {
		(void)!write(fd, &rep, sizeof(rep));
		_exit(125);
	}
	if (chdir(c->cwd) < 0) {
		sb_sandbox__fail(fd, SB_STEP_CHDIR, errno, c->cwd, NULL);
		_exit(125);
	}
	send_workspace_mount(c);
	/*
	 * Landlock rules bind to inodes: the overlay, /tmp and /dev/shm the plan
	 * just mounted did not exist when the supervisor built the ruleset, so
	 * their rules can only be added now (see landlock.h). PID 1 itself stays
	 * unrestricted; the command restricts itself before exec.
	 */
	for (size_t i = 0; i < c->n_landlock_paths; i++) {
		int r = sb_landlock_add_path(c->landlock_fd, c->landlock_abi, c->landlock_paths[i]);
		if (r < 0) {
			sb_sandbox__fail(fd, SB_STEP_LANDLOCK, -r, c->landlock_paths[i],
					 "allowing writes beneath");
			_exit(125);
		}
	}
	if (setsid() < 0) {
		sb_sandbox__fail(fd, SB_STEP_SETSID, errno, "", NULL);
		_exit(125);
	}
	int keep[] = {
	    0, 1, 2, c->setup_fd, c->status_fd, c->landlock_fd, c->hold ? c->alive_fd : -1};
	if (close_fds_except(keep, ARRAY_SIZE(keep)) < 0) {
		sb_sandbox__fail(fd, SB_STEP_CLOSE_FDS, errno, "", "close_range");
		_exit(125);
	}
	int r = sb_sandbox__caps_drop_child(c->cap_last);
	if (r < 0) {
		sb_sandbox__fail(fd, SB_STEP_CAPS, -r, "", NULL);
		_exit(125);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		sb_sandbox__fail(fd, SB_STEP_NO_NEW_PRIVS, errno, "", NULL);
		_exit(125);
	}
	/* PID 1 holds the report pipes; keep the command from reading its memory via /proc/1. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (c->hold) {
		char go;
		ssize_t n;
		while ((n = read(c->alive_fd, &go, 1)) < 0 && errno == EINTR)
			;
		/* EOF: the supervisor is gone without releasing us. */
		if (n != 1)
			_exit(125);
		close(c->alive_fd);
	}
	sb_sandbox__reaper_child(c);
}

/* ---- the supervisor ---- */

/* A pipe, or with sock a datagram socket pair, never on fds 0..2. */
static int pair_above_stdio(int fds[2], bool sock)
{
	if (sock ? socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) < 0
		 : pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	/* Ours must not land on 0..2, where the child dup2()s the command's stdio. */
	for (int i = 0; i < 2; i++)
		if (fds[i] < 3) {
			int n = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (n < 0) {
				int e = errno;
				close(fds[0]);
				close(fds[1]);
				return -e;
			}
			close(fds[i]);
			fds[i] = n;
		}
	return 0;
}

static void close_pair(int fds[2])
{
	CLOSE_FD(fds[0]);
	CLOSE_FD(fds[1]);
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/*
 * clone3, into cgroup_fd when >= 0 (*ret_into then says whether that
 * worked, in the parent and in the child); falls back to clone(2).
 */
static long do_clone(unsigned long flags, int cgroup_fd, int *ret_pidfd, bool *ret_into)
{
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	int pidfd = -1;
	args.flags = flags | CLONE_PIDFD;
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	long pid = -1;
	*ret_into = cgroup_fd >= 0;
	if (*ret_into) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
		pid = syscall(SYS_clone3, &args, sizeof(args));
	}
	if (*ret_into && pid < 0) {
		/*
		 * Too old a kernel (E2BIG, EINVAL), or a cgroup that refuses
		 * us: clone without, and PID 1 joins by itself, failing with
		 * its own error if the cgroup is the problem.
		 */
		*ret_into = false;
		args.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
		args.cgroup = 0;
	}
	if (pid < 0)
		pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0 && (errno == ENOSYS || errno == E2BIG)) {
		pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
		if (pid > 0)
			pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	}
	if (pid > 0)
		*ret_pidfd = pidfd;
	return pid;
}

static uint64_t elapsed_ns(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - since->tv_sec) * 1000000000ull +
	       (uint64_t)(now.tv_nsec - since->tv_nsec);
}

void sb_sandbox_free(sb_sandbox *sb)
{
	if (!sb)
		return;
	if (!sb->reaped && sb->pid > 0) {
		sb_sandbox_kill(sb, SIGKILL);
		while (waitpid(sb->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	CLOSE_FD(sb->pidfd);
	CLOSE_FD(sb->setup_fd);
	CLOSE_FD(sb->status_fd);
	CLOSE_FD(sb->alive_fd);
	CLOSE_FD(sb->alive_rfd);
	CLOSE_FD(sb->mount_sock);
	free(sb);
}

void sb_sandbox_freep(sb_sandbox **sb)
{
	sb_sandbox_free(*sb);
	*sb = NULL;
}

typedef struct prep {
	sb_child c;
	sb_mountplan *plan;
	char **envp;
	char **sh_argv;
	char *bufs;
} prep;

static void prep_release(prep *p)
{
	sb_mountplan_free(p->plan);
	sb_sandbox__env_free(p->envp);
	free(p->sh_argv);
	free(p->bufs);
}

static int prepare(const sb_sandbox_config *cfg, prep *p, sb_error *err)
{
	sb_child *c = &p->c;
	size_t argc = 0;
	while (cfg->argv[argc])
		argc++;
	int r = sb_sandbox__env_build(cfg, &p->envp, err);
	if (r < 0)
		return r;
	bool userns = sb_sandbox_uses_userns(cfg);
	if ((r = sb_mountplan_new(cfg, userns, &p->plan, err)) < 0)
		return r;
	p->sh_argv = calloc(argc + 2, sizeof(char *));
	p->bufs = malloc(2 * SB_REPORT_PATH);
	if (!p->sh_argv || !p->bufs)
		return sb_error_errno(err, ENOMEM, "preparing the sandbox");
	p->sh_argv[0] = (char *)"/bin/sh";
	for (size_t i = 1; i < argc; i++)
		p->sh_argv[i + 1] = (char *)cfg->argv[i];

	c->stdio[0] = cfg->stdin_fd;
	c->stdio[1] = cfg->stdout_fd;
	c->stdio[2] = cfg->stderr_fd;
	c->landlock_fd = cfg->landlock_ruleset_fd;
	c->landlock_abi = cfg->landlock_abi;
	c->landlock_paths = cfg->landlock_paths;
	c->n_landlock_paths = cfg->n_landlock_paths;
	c->cgroup_fds = cfg->cgroup_procs_fds;
	c->n_cgroup_fds = cfg->n_cgroup_procs_fds;
	c->cgroup_clone_fd = cfg->cgroup_clone_fd;
	c->userns = userns;
	if (userns && (r = sb_sandbox__userns_prepare(c, err)) < 0)
		return r;
	c->netns = cfg->net == SB_NET_NONE;
	c->hostname = cfg->hostname ? cfg->hostname : "snapbox";
	c->plan = p->plan;
	c->cwd = cfg->cwd ? cfg->cwd : cfg->workspace ? cfg->workspace : "/";
	c->mount_sock = -1;
	c->cap_last = sb_sandbox__cap_last();
	c->argv = (char **)cfg->argv;
	c->sh_argv = p->sh_argv;
	c->envp = p->envp;
	c->path_env = sb_sandbox__env_get(p->envp, "PATH");
	c->exec_buf = p->bufs;
	c->eacces_buf = p->bufs + SB_REPORT_PATH;
	c->seccomp_prog = cfg->seccomp_prog;
	c->seccomp_flags = cfg->seccomp_flags;
	c->rlimits = cfg->rlimits;
	c->n_rlimits = cfg->n_rlimits;
	return 0;
}

static int check_config(const sb_sandbox_config *cfg, sb_error *err)
{
	if (!cfg->argv || !cfg->argv[0] || !cfg->argv[0][0])
		return sb_error_set(err, EINVAL, "no command to run in the sandbox");
	if (cfg->net != SB_NET_NONE && cfg->net != SB_NET_HOST)
		return sb_error_set(err, EINVAL, "network mode %d is not none or host", cfg->net);
	if (cfg->workspace_mount && cfg->workspace_src)
		return sb_error_set(err, EINVAL,
				    "workspace_mount and workspace_src are mutually exclusive");
	if ((cfg->workspace_mount || cfg->workspace_src) && !cfg->workspace)
		return sb_error_set(err, EINVAL, "a workspace mount needs a workspace path");
	if (cfg->cwd && cfg->cwd[0] != '/')
		return sb_error_set(err, EINVAL, "working directory '%s' is not absolute",
				    cfg->cwd);
	if (cfg->hostname && strlen(cfg->hostname) > 64)
		return sb_error_set(err, EINVAL, "hostname '%s' is too long", cfg->hostname);
	if (cfg->n_landlock_paths && cfg->landlock_ruleset_fd < 0)
		return sb_error_set(err, EINVAL, "Landlock paths given without a ruleset fd");
	for (size_t i = 0; i < cfg->n_landlock_paths; i++)
		if (!cfg->landlock_paths[i] || cfg->landlock_paths[i][0] != '/')
			return sb_error_set(err, EINVAL, "Landlock path '%s' is not absolute",
					    cfg->landlock_paths[i] ? cfg->landlock_paths[i]
								   : "(null)");
	if (cfg->seccomp_flags && !cfg->seccomp_prog)
		return sb_error_set(err, EINVAL, "seccomp flags 0x%x given without a filter",
				    cfg->seccomp_flags);
	/* Without the fallback, a refused CLONE_INTO_CGROUP would leave PID 1 outside. */
	if (cfg->cgroup_clone_fd >= 0 && cfg->n_cgroup_procs_fds == 0)
		return sb_error_set(
		    err, EINVAL,
		    "cgroup_clone_fd %d given without cgroup.procs fds to fall back on",
		    cfg->cgroup_clone_fd);
	for (size_t i = 0; i < cfg->n_cgroup_procs_fds; i++)
		if (cfg->cgroup_procs_fds[i] < 0)
			return sb_error_set(err, EINVAL, "cgroup.procs fd #%zu is %d", i,
					    cfg->cgroup_procs_fds[i]);
	return 0;
}

int sb_sandbox_start(const sb_sandbox_config *cfg, sb_sandbox **ret_sb, sb_error *err)
{
	int r = check_config(cfg, err);
	if (r < 0)
		return r;
	prep p;
	memset(&p, 0, sizeof(p));
	int setup[2] = {-1, -1}, status[2] = {-1, -1}, alive[2] = {-1, -1}, msock[2] = {-1, -1};
	sb_sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb) {
		r = sb_error_errno(err, ENOMEM, "sandbox");
		goto out;
	}
	sb->pid = -1;
	sb->pidfd = sb->setup_fd = sb->status_fd = sb->alive_fd = sb->alive_rfd = -1;
	sb->mount_sock = -1;
	sb->timeout_ms = cfg->timeout_ms;
	sb->grace_ms = cfg->timeout_grace_ms;
	sb->flags = cfg->flags;
	sb_sandbox__scopy(sb->argv0, sizeof(sb->argv0), cfg->argv[0]);

	if ((r = prepare(cfg, &p, err)) < 0)
		goto out;
	sb_sandbox__scopy(sb->path_env, sizeof(sb->path_env), p.c.path_env);
	if ((r = pair_above_stdio(setup, false)) < 0 || (r = pair_above_stdio(status, false)) < 0 ||
	    (r = pair_above_stdio(alive, false)) < 0 ||
	    (cfg->workspace_mount && (r = pair_above_stdio(msock, true)) < 0)) {
		r = sb_error_errno(err, -r, "creating the sandbox pipes");
		goto out;
	}
	p.c.mount_sock = msock[1];
	p.c.setup_fd = setup[1];
	p.c.status_fd = status[1];
	p.c.alive_fd = alive[0];
	p.c.hold = cfg->flags & SB_SANDBOX_HOLD;

	unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
	if (p.c.netns)
		flags |= CLONE_NEWNET;
	if (p.c.userns)
		flags |= CLONE_NEWUSER;
	clock_gettime(CLOCK_MONOTONIC, &sb->start);
	int pidfd = -1;
	long pid = do_clone(flags, p.c.cgroup_clone_fd, &pidfd, &p.c.cgroup_joined);
	if (pid < 0) {
		r = sb_error_errno(err, errno, "creating the sandbox namespaces (clone with %s%s)",
				   p.c.userns ? "a user namespace" : "mount/pid/ipc/uts",
				   p.c.netns ? " and a network namespace" : "");
		goto out;
	}
	if (pid == 0)
		child_main(&p.c);

	sb->pid = (pid_t)pid;
	sb->pidfd = pidfd;
	sb->setup_fd = TAKE_FD(setup[0]);
	sb->status_fd = TAKE_FD(status[0]);
	sb->alive_fd = TAKE_FD(alive[1]);
	sb->mount_sock = TAKE_FD(msock[0]);
	if (p.c.hold) {
		sb->alive_rfd = TAKE_FD(alive[0]);
		sb->held = true;
	}
	/* Nonblocking reads: a caller that forks later might keep a write end open. */
	fcntl(sb->setup_fd, F_SETFL, O_NONBLOCK);
	fcntl(sb->status_fd, F_SETFL, O_NONBLOCK);
	*ret_sb = TAKE_PTR(sb);
	r = 0;
out:
	close_pair(setup);
	close_pair(status);
	close_pair(alive);
	close_pair(msock);
	prep_release(&p);
	sb_sandbox_free(sb);
	return r;
}

int sb_sandbox_release(sb_sandbox *sb, sb_error *err)
{
	if (!sb->held)
		return 0;
	ssize_t n;
	while ((n = write(sb->alive_fd, "g", 1)) < 0 && errno == EINTR)
		;
	if (n != 1)
		return sb_error_errno(err, n < 0 ? errno : EIO, "releasing the sandbox");
	sb->held = false;
	clock_gettime(CLOCK_MONOTONIC, &sb->start);
	return 0;
}

int sb_sandbox_kill(sb_sandbox *sb, int sig)
{
	if (sb->reaped)
		return -ESRCH;
	if (sb->pidfd >= 0 && syscall(SYS_pidfd_send_signal, sb->pidfd, sig, NULL, 0) == 0)
		return 0;
	if (sb->pidfd >= 0 && errno != ENOSYS)
		return -errno;
	return kill(sb->pid, sig) < 0 ? -errno : 0;
}

/* Reads one record; 1 when read, 0 at EOF or nothing (yet), < 0 on error. */
static int read_report(int fd, sb_report *rep, bool *eof)
{
	size_t got = 0;
	while (got < sizeof(*rep)) {
		ssize_t n = read(fd, (char *)rep + got, sizeof(*rep) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && got > 0) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			poll(&pfd, 1, 1000);
			continue;
		}
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0) {
			if (eof)
				*eof = true;
			return 0;
		}
		got += (size_t)n;
	}
	return 1;
}

static void format_failure(const sb_sandbox *sb, const sb_report *rep, char *msg, size_t size)
{
	if (rep->kind == SB_REPORT_EXEC) {
		if (rep->error == ENOENT && !strchr(sb->argv0, '/'))
			snprintf(msg, size,
				 "command '%.400s' not found in PATH '%.400s' inside the sandbox",
				 rep->path, sb->path_env);
		else if (rep->error == ENOENT || rep->error == ENOTDIR)
			snprintf(msg, size, "command '%.800s' not found inside the sandbox",
				 rep->path);
		else
			snprintf(msg, size, "cannot execute '%.800s': %s", rep->path,
				 strerror(rep->error));
		return;
	}
	const char *step = sb_sandbox__step_name((sb_step)rep->step);
	if (rep->step == SB_STEP_RLIMIT) {
		snprintf(msg, size, "sandbox setup failed at %s: setrlimit resource %d: %s", step,
			 rep->status, strerror(rep->error));
		return;
	}
	int n = snprintf(msg, size, "sandbox setup failed at %s", step);
	if (n < 0 || (size_t)n >= size)
		return;
	if (rep->note[0] || rep->path[0]) {
		n += snprintf(msg + n, size - (size_t)n, ": %s%s%s%s", rep->note,
			      rep->note[0] && rep->path[0] ? " on " : "", rep->path[0] ? "'" : "",
			      rep->path);
		if (n >= 0 && (size_t)n < size && rep->path[0])
			n += snprintf(msg + n, size - (size_t)n, "'");
	}
	if (n >= 0 && (size_t)n < size)
		snprintf(msg + n, size - (size_t)n, ": %s", strerror(rep->error));
}

int sb_sandbox_wait_exec(sb_sandbox *sb, sb_error *err)
{
	int r = sb_sandbox_release(sb, err);
	if (r < 0)
		return r;
	while (!sb->have_setup_rep && !sb->setup_eof) {
		struct pollfd pfd = {.fd = sb->setup_fd, .events = POLLIN};
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return sb_error_errno(err, errno, "waiting for the sandbox");
		r = read_report(sb->setup_fd, &sb->setup_rep, &sb->setup_eof);
		if (r < 0)
			return sb_error_errno(err, -r, "reading the sandbox setup pipe");
		if (r > 0)
			sb->have_setup_rep = true;
	}
	if (!sb->have_setup_rep)
		return 0;
	char msg[SB_ERROR_MAX];
	format_failure(sb, &sb->setup_rep, msg, sizeof(msg));
	return sb_error_set(err, sb->setup_rep.error ? sb->setup_rep.error : EIO, "%s", msg);
}

static bool exited(const sb_sandbox *sb)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)sb->pid, &si, WEXITED | WNOWAIT | WNOHANG) == 0 &&
	       si.si_pid == sb->pid;
}

/* Waits until PID 1 has exited (not reaped), applying timeout and forwarding signals. */
static int wait_exit(sb_sandbox *sb, bool *timed_out, sb_error *err)
{
	int sfd = -1;
	sigset_t set, old;
	if (sb->flags & SB_SANDBOX_FORWARD_SIGNALS) {
		sigemptyset(&set);
		for (size_t i = 0; i < sb_sandbox__n_forwarded_signals; i++)
			sigaddset(&set, sb_sandbox__forwarded_signals[i]);
		pthread_sigmask(SIG_BLOCK, &set, &old);
		sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
		/* No signalfd: no relaying, and the signals act on us as before. */
		if (sfd < 0)
			pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	int64_t deadline_ms = sb->timeout_ms ? (int64_t)sb->timeout_ms : -1;
	int phase = 0; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
	int r = 0;
	for (;;) {
		struct pollfd pfd[2] = {
		    {.fd = sb->pidfd, .events = POLLIN},
		    {.fd = sfd, .events = POLLIN},
		};
		int64_t left = -1;
		if (deadline_ms >= 0) {
			left = deadline_ms - (int64_t)(elapsed_ns(&sb->start) / 1000000);
			if (left < 0)
				left = 0;
		}
		/* Without a pidfd (kernels before 5.3) poll for the exit every 20 ms. */
		if (sb->pidfd < 0 && (left < 0 || left > 20))
			left = 20;
		int n = poll(pfd, 2, left < 0 ? -1 : left > INT32_MAX ? INT32_MAX : (int)left);
		if (n < 0 && errno != EINTR) {
			r = sb_error_errno(err, errno, "waiting for the sandbox");
			break;
		}
		if (sb->pidfd >= 0 ? (n > 0 && (pfd[0].revents & POLLIN)) : exited(sb))
			break;
		if (n > 0 && sfd >= 0 && (pfd[1].revents & POLLIN)) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				sb_sandbox_kill(sb, (int)si.ssi_signo);
		}
		if (deadline_ms >= 0 &&
		    (int64_t)(elapsed_ns(&sb->start) / 1000000) >= deadline_ms) {
			*timed_out = true;
			if (phase == 0 && sb->grace_ms) {
				sb_sandbox_kill(sb, SIGTERM);
				phase = 1;
				deadline_ms += (int64_t)sb->grace_ms;
			} else {
				sb_sandbox_kill(sb, SIGKILL);
				phase = 2;
				deadline_ms = -1;
			}
		}
	}
	if (sfd >= 0) {
		/* Signals that raced with the end were meant for the sandbox: drop them. */
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof(si)) == sizeof(si))
			;
		close(sfd);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return r;
}

int sb_sandbox_wait(sb_sandbox *sb, sb_sandbox_result *ret, sb_error *err)
{
	if (sb->reaped)
		return sb_error_set(err, ECHILD, "the sandbox was already waited for");
	int r = sb_sandbox_release(sb, err);
	if (r < 0)
		return r;
	bool timed_out = false;
	r = wait_exit(sb, &timed_out, err);
	if (r < 0)
		return r;
	int status;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	pid_t p;
	while ((p = wait4(sb->pid, &status, 0, &ru)) < 0 && errno == EINTR)
		;
	if (p < 0)
		return sb_error_errno(err, errno, "reaping sandbox PID 1 (%d)", (int)sb->pid);
	sb->reaped = true;

	sb_sandbox_result res;
	memset(&res, 0, sizeof(res));
	res.wall_ns = elapsed_ns(&sb->start);
	res.rusage = ru;
	res.timed_out = timed_out;

	if (!sb->have_setup_rep && read_report(sb->setup_fd, &sb->setup_rep, NULL) > 0)
		sb->have_setup_rep = true;
	sb_report exit_rep;
	bool have_exit =
	    read_report(sb->status_fd, &exit_rep, NULL) > 0 && exit_rep.kind == SB_REPORT_EXIT;

	if (sb->have_setup_rep) {
		const sb_report *rep = &sb->setup_rep;
		res.error = rep->error;
		sb_sandbox__scopy(res.path, sizeof(res.path), rep->path);
		format_failure(sb, rep, res.message, sizeof(res.message));
		if (rep->kind == SB_REPORT_EXEC) {
			res.outcome = SB_SANDBOX_EXEC_FAILED;
			res.exit_code = rep->error == ENOENT || rep->error == ENOTDIR ? 127 : 126;
		} else {
			res.outcome = SB_SANDBOX_SETUP_FAILED;
			res.exit_code = 125;
			res.step = sb_sandbox__step_name((sb_step)rep->step);
		}
	} else {
		int st = have_exit ? exit_rep.status : status;
		if (WIFSIGNALED(st)) {
			res.outcome = SB_SANDBOX_SIGNALED;
			res.signal = WTERMSIG(st);
			res.exit_code = 128 + res.signal;
		} else {
			res.outcome = SB_SANDBOX_EXITED;
			res.exit_code = WEXITSTATUS(st);
		}
	}
	*ret = res;
	return 0;
}

int sb_sandbox_run(const sb_sandbox_config *cfg, sb_sandbox_result *ret, sb_error *err)
{
	_cleanup_(sb_sandbox_freep) sb_sandbox *sb = NULL;
	int r = sb_sandbox_start(cfg, &sb, err);
	if (r < 0)
		return r;
	return sb_sandbox_wait(sb, ret, err);
}

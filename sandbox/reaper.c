/* SPDX-License-Identifier: MIT */
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rlimit.h"
#include "sandbox-internal.h"

const int sb_sandbox__forwarded_signals[] = {
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT,
};
const size_t sb_sandbox__n_forwarded_signals = ARRAY_SIZE(sb_sandbox__forwarded_signals);

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void report_exec(const sb_child *c, int error, const char *path)
{
	sb_report rep;
	memset(&rep, 0, sizeof(rep));
	rep.kind = SB_REPORT_EXEC;
	rep.step = SB_STEP_EXEC;
	rep.error = error;
	sb_sandbox__scopy(rep.path, sizeof(rep.path), path);
	(void)!write(c->setup_fd, &rep, sizeof(rep));
}

/* Returns errno of the failed exec. Files without a #! line go to /bin/sh, as execvp does. */
static int try_exec(sb_child *c, const char *path)
{
	execve(path, c->argv, c->envp);
	int e = errno;
	if (e == ENOEXEC) {
		c->sh_argv[1] = (char *)path;
		execve("/bin/sh", c->sh_argv, c->envp);
	}
	return e;
}

static _Noreturn void exec_command(sb_child *c)
{
	const char *name = c->argv[0];
	if (strchr(name, '/')) {
		int e = try_exec(c, name);
		report_exec(c, e, name);
		_exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
	}
	const char *s = c->path_env ? c->path_env : DEFAULT_PATH;
	size_t name_len = strlen(name);
	bool eacces = false;
	for (;;) {
		size_t n = strcspn(s, ":");
		/* An empty PATH entry is the current directory. */
		if (n + name_len + 2 <= SB_REPORT_PATH) {
			memcpy(c->exec_buf, n ? s : ".", n ? n : 1);
			size_t o = n ? n : 1;
			c->exec_buf[o++] = '/';
			memcpy(c->exec_buf + o, name, name_len + 1);
			int e = try_exec(c, c->exec_buf);
			struct stat st;
			/* EACCES from an unsearchable PATH directory means "not there", as in bash. */
			if (e == EACCES && stat(c->exec_buf, &st) < 0)
				e = ENOENT;
			if (e == EACCES && !eacces) {
				eacces = true;
				sb_sandbox__scopy(c->eacces_buf, SB_REPORT_PATH, c->exec_buf);
			} else if (e != ENOENT && e != ENOTDIR && e != EACCES && e != ESTALE &&
				   e != ENODEV && e != ETIMEDOUT && e != ENAMETOOLONG &&
				   e != ELOOP) {
				report_exec(c, e, c->exec_buf);
				_exit(126);
			}
		}
		if (!s[n])
			break;
		s += n + 1;
	}
	if (eacces) {
		report_exec(c, EACCES, c->eacces_buf);
		_exit(126);
	}
	report_exec(c, ENOENT, name);
	_exit(127);
}

/* Undo whatever the supervisor had: handlers, ignored signals, a blocked mask. */
static void reset_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * The command from its vfork to exec. It shares PID 1's memory (and stack,
 * below PID 1's frame: it never returns) but nothing else: its own fd table,
 * signal handlers and mask, credentials (Landlock), rlimits and seccomp
 * filter. What it writes to memory (errno, exec_buf, eacces_buf,
 * sh_argv[1]) PID 1 never reads.
 */
static _Noreturn void command_child(sb_child *c)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(125);
	reset_signals();
	close(c->status_fd);

	if (c->landlock_fd >= 0) {
		if (syscall(SYS_landlock_restrict_self, c->landlock_fd, 0) < 0) {
			sb_sandbox__fail(c->setup_fd, SB_STEP_LANDLOCK, errno, "",
					 "landlock_restrict_self");
			_exit(125);
		}
		close(c->landlock_fd);
	}
	int resource = -1;
	if (sb_rlimits_apply(c->rlimits, c->n_rlimits, &resource) < 0) {
		/* The supervisor names the resource from status. */
		sb_report rep;
		memset(&rep, 0, sizeof(rep));
		rep.kind = SB_REPORT_SETUP;
		rep.step = SB_STEP_RLIMIT;
		rep.error = errno;
		rep.status = resource;
		(void)!write(c->setup_fd, &rep, sizeof(rep));
		_exit(125);
	}
	if (c->seccomp_prog) {
		long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, c->seccomp_flags,
				 c->seccomp_prog);
		/* prctl takes no flags: only a filter without any may fall back to it. */
		if (r < 0 && errno == ENOSYS && !c->seccomp_flags)
			r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, c->seccomp_prog, 0, 0);
		if (r < 0) {
			sb_sandbox__fail(c->setup_fd, SB_STEP_SECCOMP, errno, "",
					 "installing the seccomp filter");
			_exit(125);
		}
	}
	exec_command(c);
}

static void report_exit(const sb_child *c, int status)
{
	sb_report rep;
	memset(&rep, 0, sizeof(rep));
	rep.kind = SB_REPORT_EXIT;
	rep.status = status;
	(void)!write(c->status_fd, &rep, sizeof(rep));
}

/*
 * PID 1. Signals are only ever taken synchronously (sigwaitinfo), so no
 * handler can run at a bad moment. When the command ends, PID 1 exits at
 * once with its status; the kernel then kills whatever else is left in the
 * pid namespace (double-forked daemons included) before the supervisor's
 * wait for PID 1 returns.
 */
_Noreturn void sb_sandbox__reaper_child(sb_child *c)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sb_sandbox__n_forwarded_signals; i++)
		sigaddset(&set, sb_sandbox__forwarded_signals[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);

	/*
	 * vfork: the command shares PID 1's memory until it execs, and PID 1
	 * waits meanwhile. A fork would copy the page tables of the whole
	 * address space PID 1 inherited from the supervisor, only for exec to
	 * drop them again. The command never returns from here, writes nothing
	 * PID 1 reads (see command_child), and glibc's vfork takes no lock
	 * (fork() would take ones another thread may have held at clone).
	 */
	pid_t pid = vfork();
	if (pid < 0) {
		sb_sandbox__fail(c->setup_fd, SB_STEP_FORK, errno, "", "forking the command");
		_exit(125);
	}
	if (pid == 0)
		command_child(c);
	close(c->setup_fd);
	if (c->landlock_fd >= 0)
		close(c->landlock_fd);

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&set, &info);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill((pid_t)pid, sig);
			continue;
		}
		for (;;) {
			int status;
			pid_t p = waitpid(-1, &status, WNOHANG);
			if (p <= 0)
				break;
			if (p != pid)
				continue;
			report_exit(c, status);
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
			_exit(WEXITSTATUS(status));
		}
	}
}

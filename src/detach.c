/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "detach.h"
#include "macro.h"

/* ioprio_set(2): no libc wrapper. */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_BE	   2
#define IOPRIO_PRIO(c, l)  (((c) << 13) | (l))

/* Every fd from lowfd up; close_range(2) where the kernel has it. */
static void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0) == 0)
		return;
#endif
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			char *end;
			long fd = strtol(de->d_name, &end, 10);
			if (*end == 0 && fd >= lowfd && fd != dirfd(d))
				close((int)fd);
		}
		closedir(d);
		return;
	}
	struct rlimit rl;
	long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)MIN(rl.rlim_cur, 1u << 20) : 1024;
	for (long fd = lowfd; fd < max; fd++)
		close((int)fd);
}

/* The detached process: let go of everything the caller had, then fn. */
_noreturn_ static void detached(const char *name, const int *keep, size_t n_keep, sb_detach_fn fn,
				void *userdata)
{
	/* Above the slots first, so that moving one into its slot clobbers no other. */
	int hi[SB_DETACH_MAX_KEEP];
	for (size_t i = 0; i < n_keep; i++)
		if ((hi[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, SB_DETACH_FD((int)n_keep))) < 0)
			_exit(1);
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && nul >= 0; i++)
		if (nul != i)
			dup2(nul, i);
	for (size_t i = 0; i < n_keep; i++)
		if (dup3(hi[i], SB_DETACH_FD((int)i), O_CLOEXEC) < 0)
			_exit(1);
	/* This closes the caller's end of the ready pipe too: sb_detach returns. */
	close_from(SB_DETACH_FD((int)n_keep));
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	(void)!chdir("/");
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
	(void)setpriority(PRIO_PROCESS, 0, 19);
	(void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO(IOPRIO_CLASS_BE, 7));
	fn(userdata);
	_exit(0);
}

int sb_detach(const char *name, const int *keep, size_t n_keep, sb_detach_fn fn, void *userdata,
	      sb_error *err)
{
	if (n_keep > SB_DETACH_MAX_KEEP)
		return sb_error_set(err, EINVAL, "start %s: too many fds to keep", name);
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return sb_error_errno(err, errno, "start %s", name);
	pid_t pid = fork();
	if (pid < 0) {
		int r = sb_error_errno(err, errno, "start %s", name);
		close(ready[0]);
		close(ready[1]);
		return r;
	}
	if (pid == 0) {
		/* The middle process: a new session, the worker forked, gone. */
		(void)setsid();
		pid_t c = fork();
		if (c == 0)
			detached(name, keep, n_keep, fn, userdata);
		_exit(c < 0);
	}
	close(ready[1]);
	char c;
	while (read(ready[0], &c, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* (ECHILD, SIGCHLD ignored: the status is unknown, assume it worked.) */
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return sb_error_set(err, EAGAIN, "could not start %s", name);
	return 0;
}

/* SB_DETACH_FD(1) reads EOF once the caller has closed its copy of SB_DETACH_FD(0). */
static void close_last(void *userdata)
{
	(void)userdata;
	char c;
	while (read(SB_DETACH_FD(1), &c, 1) < 0 && errno == EINTR)
		;
	close(SB_DETACH_FD(0));
}

void sb_detach_close(int fd)
{
	if (fd < 0)
		return;
	int go[2];
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(fd);
		return;
	}
	int keep[] = {fd, go[0]};
	sb_error err = SB_ERROR_INIT;
	(void)sb_detach("snapbox-umount", keep, 2, close_last, NULL, &err);
	close(go[0]);
	/* Ours first (the middle process's went with it); then the go. */
	close(fd);
	close(go[1]);
}

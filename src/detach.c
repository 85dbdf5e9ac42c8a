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

/* Everything but fd 0..2 and keep; close_range(2) where the kernel has it. */
static void close_others(int keep)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0) == 0 &&
	    (keep == 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0) == 0))
		return;
#endif
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			char *end;
			long fd = strtol(de->d_name, &end, 10);
			if (*end == 0 && fd > 2 && fd != keep && fd != dirfd(d))
				close((int)fd);
		}
		closedir(d);
		return;
	}
	struct rlimit rl;
	long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)MIN(rl.rlim_cur, 1u << 20) : 1024;
	for (long fd = 3; fd < max; fd++)
		if (fd != keep)
			close((int)fd);
}

/* The detached process: let go of everything the caller had, then fn. */
_noreturn_ static void detached(const char *name, int keep, sb_detach_fn fn, void *userdata)
{
	/* Above stdio first: with fd 0 closed at start-up, keep may be 0. */
	int hi = fcntl(keep, F_DUPFD_CLOEXEC, 3);
	if (hi < 0)
		_exit(1);
	keep = hi;
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && nul >= 0; i++)
		if (nul != i)
			dup2(nul, i);
	/* This closes the caller's end of the ready pipe too: sb_detach returns. */
	close_others(keep);
	if (keep != 3 && dup3(keep, 3, O_CLOEXEC) == 3) {
		close(keep);
		keep = 3;
	}
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
	fn(keep, userdata);
	_exit(0);
}

int sb_detach(const char *name, int keep, sb_detach_fn fn, void *userdata, sb_error *err)
{
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
			detached(name, keep, fn, userdata);
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

static void close_keep(int keep, void *userdata)
{
	(void)userdata;
	close(keep);
}

void sb_detach_close(int fd)
{
	if (fd < 0)
		return;
	sb_error err = SB_ERROR_INIT;
	(void)sb_detach("snapbox-umount", fd, close_keep, NULL, &err);
	close(fd);
}

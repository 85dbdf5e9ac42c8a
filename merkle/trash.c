/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "fileio.h"
#include "trash.h"

#define TRASH "trash"

/* ioprio_set(2): no libc wrapper. */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_BE	   2
#define IOPRIO_PRIO(c, l)  (((c) << 13) | (l))

static int open_trash(int area_fd, bool create, sb_error *err)
{
	if (create && mkdirat(area_fd, TRASH, 0700) < 0 && errno != EEXIST)
		return sb_error_errno(err, errno, "create the trash");
	int fd = openat(area_fd, TRASH, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : sb_error_errno(err, errno, "open the trash");
	return fd;
}

static int rename_noreplace(int from_fd, const char *from, int to_fd, const char *to)
{
	if (renameat2(from_fd, from, to_fd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* A filesystem without RENAME_NOREPLACE: the name is unique anyway. */
	return renameat(from_fd, from, to_fd, to) < 0 ? -errno : 0;
}

int sb_trash_put(int area_fd, int dir_fd, const char *name, sb_error *err)
{
	_cleanup_close_ int tfd = open_trash(area_fd, true, err);
	if (tfd < 0)
		return tfd;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	bool chmodded = false;
	for (unsigned attempt = 0; attempt < 8; attempt++) {
		char entry[NAME_MAX + 1];
		snprintf(entry, sizeof(entry), "%.64s-%ld-%lld%09ld-%u", name, (long)getpid(),
			 (long long)ts.tv_sec, ts.tv_nsec, attempt);
		int r = rename_noreplace(dir_fd, name, tfd, entry);
		/*
		 * Moving a directory rewrites its "..", which needs write
		 * permission on it; the command may have chmod'ed the upper's
		 * root (its view of the workspace root).
		 */
		if ((r == -EACCES || r == -EPERM) && !chmodded) {
			chmodded = true;
			if (fchmodat(dir_fd, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
				r = rename_noreplace(dir_fd, name, tfd, entry);
		}
		if (r == 0 || r == -ENOENT)
			return 0;
		if (r != -EEXIST && r != -ENOTEMPTY)
			break;
	}
	/* Not movable (a trash on another filesystem): slow, but never wrong. */
	return sb_remove_tree_at(dir_fd, name, err);
}

/* 1 when the directory has no entries, 0 when it has, a negative errno on failure. */
static int dir_is_empty(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return 0;
	return 1;
}

/*
 * Deletes every entry of the trash it sees, going on past failures; returns
 * the first failure.
 */
static int empty_once(int tfd, sb_error *err)
{
	int fd = openat(tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sb_error_errno(err, errno, "read the trash");
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return sb_error_errno(err, errno, "read the trash");
	}
	int r = 0;
	struct dirent *de;
	sb_error e = SB_ERROR_INIT;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int k = sb_remove_tree_at(tfd, de->d_name, &e);
		if (k < 0 && r == 0) {
			r = k;
			if (err)
				*err = e;
		}
	}
	return r;
}

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

/*
 * The cleaner process, holding the trash lock on tfd. Detached from
 * everything snapbox had open: a terminal, stdio pipes someone waits on to
 * close (a test harness, a benchmark), the workspace lock's fd.
 */
_noreturn_ static void cleaner(int tfd)
{
	/* Above stdio first: with fd 0 closed at start-up, tfd may be 0. */
	int hi = fcntl(tfd, F_DUPFD_CLOEXEC, 3);
	if (hi < 0)
		_exit(1);
	tfd = hi;
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && nul >= 0; i++)
		if (nul != i)
			dup2(nul, i);
	close_others(tfd);
	if (tfd != 3 && dup3(tfd, 3, O_CLOEXEC) == 3) {
		close(tfd);
		tfd = 3;
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	(void)chdir("/");
	(void)prctl(PR_SET_NAME, "snapbox-trash", 0, 0, 0);
	/*
	 * Low priority, but not the idle classes: on a busy machine those can
	 * starve the cleaner for as long as the load lasts.
	 */
	(void)setpriority(PRIO_PROCESS, 0, 19);
	(void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO(IOPRIO_CLASS_BE, 7));
	/* A deep tree takes an fd per level (sb_remove_tree_at). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}

	bool held = true;
	for (;;) {
		if (!held && flock(tfd, LOCK_EX | LOCK_NB) < 0)
			break; /* another cleaner took over */
		int r = empty_once(tfd, NULL);
		(void)flock(tfd, LOCK_UN);
		held = false;
		if (r < 0 || dir_is_empty(tfd) != 0)
			break;
	}
	_exit(0);
}

int sb_trash_clean(int area_fd, sb_error *err)
{
	_cleanup_close_ int tfd = open_trash(area_fd, false, err);
	if (tfd == -ENOENT)
		return 0;
	if (tfd < 0)
		return tfd;
	int r = dir_is_empty(tfd);
	if (r < 0)
		return sb_error_errno(err, -r, "read the trash");
	if (r == 1)
		return 0;
	/* Held: its cleaner looks again after letting go, and will see our entries. */
	if (flock(tfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? 0 : sb_error_errno(err, errno, "lock the trash");
	/*
	 * Until the cleaner has closed what it inherited, it keeps our flocks
	 * too — the workspace lock among them, and the next snapbox command
	 * would find the workspace busy. Its end of this pipe closes with the
	 * rest: wait for that before returning.
	 */
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		r = sb_error_errno(err, errno, "start a trash cleaner");
		(void)flock(tfd, LOCK_UN);
		return r;
	}
	pid_t pid = fork();
	if (pid < 0) {
		r = sb_error_errno(err, errno, "start a trash cleaner");
		close(ready[0]);
		close(ready[1]);
		(void)flock(tfd, LOCK_UN);
		return r;
	}
	if (pid == 0) {
		/*
		 * The middle process: a new session, then the cleaner is forked
		 * and this one exits, so the cleaner is no session leader (it can
		 * never acquire a terminal) and nobody has to reap it.
		 */
		(void)setsid();
		pid_t c = fork();
		if (c == 0)
			cleaner(tfd);
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
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* No cleaner holds our lock: let go of it. */
		(void)flock(tfd, LOCK_UN);
		return sb_error_set(err, EAGAIN, "could not start a trash cleaner");
	}
	/* Closing our fd leaves the lock with the cleaner, which shares it. */
	return 1;
}

int sb_trash_empty(int area_fd, sb_error *err)
{
	_cleanup_close_ int tfd = open_trash(area_fd, false, err);
	if (tfd == -ENOENT)
		return 0;
	if (tfd < 0)
		return tfd;
	if (RETRY_EINTR(flock(tfd, LOCK_EX)) < 0)
		return sb_error_errno(err, errno, "lock the trash");
	int r = empty_once(tfd, err);
	(void)flock(tfd, LOCK_UN);
	return r;
}

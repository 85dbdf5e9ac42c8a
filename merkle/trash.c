/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "detach.h"
#include "fileio.h"
#include "trash.h"

#define TRASH "trash"

static int open_trash(int area_fd, bool create, sb_error *err)
{
	if (create && mkdirat(area_fd, TRASH, 0700) < 0 && errno != EEXIST)
		return sb_error_errno(err, errno, "create the trash");
	int fd = openat(area_fd, TRASH, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : sb_error_errno(err, errno, "open the trash");
	return fd;
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
		int r = sb_rename_noreplace(dir_fd, name, tfd, entry);
		/*
		 * Moving a directory rewrites its "..", which needs write
		 * permission on it; the command may have chmod'ed the upper's
		 * root (its view of the workspace root).
		 */
		if ((r == -EACCES || r == -EPERM) && !chmodded) {
			chmodded = true;
			if (fchmodat(dir_fd, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
				r = sb_rename_noreplace(dir_fd, name, tfd, entry);
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

/* The cleaner, in a detached process (detach.h), holding the trash lock on tfd. */
static void cleaner(void *userdata)
{
	(void)userdata;
	int tfd = SB_DETACH_FD(0);
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
	r = sb_detach("snapbox-trash", &tfd, 1, cleaner, NULL, err);
	if (r < 0) {
		/* No cleaner holds our lock: let go of it. */
		(void)flock(tfd, LOCK_UN);
		return r;
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

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "fileio.h"
#include "lock.h"

int sb_lock_take(sb_lock *l, int dir_fd, const char *name, sb_lock_flags flags, sb_error *err)
{
	_cleanup_close_ int fd =
	    openat(dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return sb_error_errno(err, errno, "open lock file '%s'", name);
	int op = LOCK_EX | ((flags & SB_LOCK_WAIT) ? 0 : LOCK_NB);
	if (RETRY_EINTR(flock(fd, op)) < 0) {
		if (errno != EWOULDBLOCK)
			return sb_error_errno(err, errno, "lock '%s'", name);
		char pid[32] = "";
		ssize_t n = sb_pread_full(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		return sb_error_set(err, EBUSY,
				    "workspace is busy (pid %s): another snapbox is working on it; "
				    "wait for it to finish",
				    pid[0] ? pid : "unknown");
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0)
		(void)sb_pwrite_full(fd, pid, (size_t)n, 0);
	l->fd = TAKE_FD(fd);
	return 0;
}

void sb_lock_release(sb_lock *l)
{
	if (l->fd >= 0) {
		/* Empty the pid before letting go, so a reader never blames us. */
		(void)ftruncate(l->fd, 0);
		CLOSE_FD(l->fd);
	}
}

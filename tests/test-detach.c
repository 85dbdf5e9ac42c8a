/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sb-test.h"
#include "detach.h"

/* What the detached process sees of itself, sent back through its fd. */
typedef struct seen {
	pid_t pid, ppid, sid;
	int nice, fds;
	bool second_is_zero;
	bool stdin_is_null;
	char name[16];
} seen;

static void report(void *userdata)
{
	(void)userdata;
	int keep = SB_DETACH_FD(0);
	seen s;
	memset(&s, 0, sizeof(s));
	s.pid = getpid();
	s.ppid = getppid();
	s.sid = getsid(0);
	errno = 0;
	s.nice = getpriority(PRIO_PROCESS, 0);
	struct stat st;
	s.stdin_is_null = fstat(0, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
	/* The second fd kept: the test gives /dev/zero. */
	s.second_is_zero =
	    fstat(SB_DETACH_FD(1), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5);
	(void)prctl(PR_GET_NAME, s.name, 0, 0, 0);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && strtol(de->d_name, NULL, 10) != dirfd(d))
			s.fds++;
	if (d)
		closedir(d);
	(void)!write(keep, &s, sizeof(s));
	/* Stay alive (holding whatever we inherited) until the test lets go. */
	char c;
	while (read(keep, &c, 1) > 0)
		;
}

TEST(detached_process_keeps_only_its_fd_and_no_lock)
{
	int lk = open("lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(lk >= 0);
	ASSERT_OK(flock(lk, LOCK_EX));
	int sp[2];
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(zero >= 0);
	int keep[] = {sp[1], zero};
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_detach("sb-test-detach", keep, 2, report, NULL, &err));
	close(sp[1]);
	close(zero);

	/* It is still running (waiting on sp), yet our lock ends with our fd. */
	close(lk);
	int again = open("lock", O_RDWR | O_CLOEXEC);
	ASSERT_TRUE(again >= 0);
	ASSERT_OK(flock(again, LOCK_EX | LOCK_NB));
	close(again);

	seen s;
	ASSERT_EQ(read(sp[0], &s, sizeof(s)), (ssize_t)sizeof(s));

	ASSERT_TRUE(s.pid != getpid() && s.ppid != getpid());
	ASSERT_TRUE(s.sid != getsid(0) && s.sid != s.pid); /* own session, not its leader */
	ASSERT_EQ(s.nice, 19);
	ASSERT_STREQ(s.name, "sb-test-detach");
	ASSERT_EQ(s.fds, 5); /* stdio and the two it was given, as 3 and 4 */
	ASSERT_TRUE(s.stdin_is_null);
	ASSERT_TRUE(s.second_is_zero);
	close(sp[0]);
}

TEST(detach_close_closes_every_copy)
{
	int sp[2];
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	sb_detach_close(sp[1]);
	/* Ours is closed at once: a second close fails. */
	ASSERT_TRUE(close(sp[1]) < 0 && errno == EBADF);
	/* The detached copy too: EOF once the last one is gone. */
	struct pollfd pfd = {.fd = sp[0], .events = POLLIN};
	ASSERT_EQ(poll(&pfd, 1, 10000), 1);
	char c;
	ASSERT_EQ(read(sp[0], &c, 1), 0);
	close(sp[0]);
	sb_detach_close(-1); /* nothing to do */
}

TEST(too_many_fds_to_keep_is_refused)
{
	int keep[SB_DETACH_MAX_KEEP + 1] = {0};
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_detach("sb-test-detach", keep, SB_DETACH_MAX_KEEP + 1, report, NULL, &err),
		   -EINVAL);
}

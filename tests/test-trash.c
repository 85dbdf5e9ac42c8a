/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "sb-test.h"
#include "trash.h"

/* The workspace area: "area", holding the trash. */
static int area(void)
{
	ASSERT_OK(mkdir("area", 0700));
	int fd = open("area", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	return fd;
}

static size_t trash_entries(void)
{
	DIR *d = opendir("area/trash");
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* Whether someone (a cleaner) holds the trash's flock. */
static bool trash_locked(void)
{
	int fd = open("area/trash", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

/* readlink of /proc/PID/fd/FD, or "" when it is gone. */
static void fd_target(pid_t pid, const char *fd, char *buf, size_t size)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "/proc/%d/fd/%s", (int)pid, fd);
	ssize_t n = readlink(p, buf, size - 1);
	buf[n > 0 ? n : 0] = 0;
}

/*
 * The cleaner working on area/trash: a snapbox-trash with it as fd 3, looked
 * for (in C: it must still be at work when found) for up to 5 s; 0 if none.
 */
static pid_t find_cleaner(const char *trash)
{
	for (int i = 0; i < 500; i++) {
		DIR *d = opendir("/proc");
		ASSERT_TRUE(d != NULL);
		struct dirent *de;
		pid_t found = 0;
		while (!found && (de = readdir(d))) {
			char *end, path[64], comm[32] = "", target[PATH_MAX];
			long pid = strtol(de->d_name, &end, 10);
			if (*end || pid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
			FILE *f = fopen(path, "re");
			if (!f)
				continue;
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = 0;
			fclose(f);
			fd_target((pid_t)pid, "3", target, sizeof(target));
			if (strcmp(comm, "snapbox-trash\n") == 0 && strcmp(target, trash) == 0)
				found = (pid_t)pid;
		}
		closedir(d);
		if (found)
			return found;
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	return 0;
}

/* The fds of pid above 2 that are neither trash nor beneath it, as "N N ". */
static void foreign_fds(pid_t pid, const char *trash, char *out, size_t size)
{
	char path[64], target[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	ASSERT_TRUE(d != NULL);
	size_t o = 0, tl = strlen(trash);
	out[0] = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || strtol(de->d_name, NULL, 10) < 3)
			continue;
		fd_target(pid, de->d_name, target, sizeof(target));
		/* "" : closed between the listing and the readlink. */
		if (!target[0] ||
		    (strncmp(target, trash, tl) == 0 && (target[tl] == 0 || target[tl] == '/')))
			continue;
		o += (size_t)snprintf(out + o, size - MIN(o, size), "%s ", de->d_name);
	}
	closedir(d);
}

/* Waits (bounded) for the trash to be empty and no cleaner to hold it. */
static void wait_cleaned(void)
{
	for (int i = 0; i < 1200; i++) {
		if (trash_entries() == 0 && !trash_locked())
			return;
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	sb_test_fail(__FILE__, __LINE__, "the trash still holds %zu entries after 120 s",
		     trash_entries());
}

/* A tree of n empty files at path, in two directories, beside a mode 000 one. */
static void make_tree(const char *path, int n)
{
	ASSERT_EQ(sb_test_sh("mkdir -p %s/a/b %s/locked && chmod 000 %s/locked", path, path, path),
		  0);
	char name[PATH_MAX];
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/a/%sf%d", path, i % 2 ? "b/" : "", i);
		int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		ASSERT_OK(fd);
		close(fd);
	}
}

TEST(put_moves_and_empty_deletes_only_beneath_the_trash)
{
	sb_error err = SB_ERROR_INIT;
	int afd = area();
	/* Outside the trash: a file reached by a symlink, one by a hard link. */
	ASSERT_EQ(sb_test_sh("echo keep > outside && mkdir -p outdir && echo keep > outdir/f && "
			     "mkdir -p s/upper/d/deep && ln -s ../outside s/upper/link && "
			     "ln -s ../../outdir s/upper/d/dirlink && ln outside s/upper/hard && "
			     "chmod 000 s/upper/d/deep && chmod 500 s/upper/d"),
		  0);
	int sfd = open("s", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(sfd);
	ASSERT_OK(sb_trash_put(afd, sfd, "upper", &err));
	ASSERT_TRUE(access("s/upper", F_OK) < 0 && errno == ENOENT);
	ASSERT_EQ(trash_entries(), 1);
	/* A name that is not there: nothing to do. */
	ASSERT_OK(sb_trash_put(afd, sfd, "missing", &err));
	ASSERT_EQ(trash_entries(), 1);

	ASSERT_OK(sb_trash_empty(afd, &err));
	ASSERT_EQ(trash_entries(), 0);
	ASSERT_EQ(sb_test_sh("grep -qx keep outside && grep -qx keep outdir/f"), 0);
	close(sfd);
	close(afd);
}

TEST(clean_without_trash_starts_nothing)
{
	sb_error err = SB_ERROR_INIT;
	int afd = area();
	ASSERT_EQ(sb_trash_clean(afd, &err), 0);
	ASSERT_OK(mkdir("area/trash", 0700));
	ASSERT_EQ(sb_trash_clean(afd, &err), 0);
	close(afd);
}

/*
 * The cleaner is detached: not our child, stdio on /dev/null, no fd of ours
 * but the trash, low priority. Killed, it leaves its entries for the next
 * sb_trash_clean.
 */
TEST(cleaner_is_detached_and_a_killed_ones_leftovers_are_cleaned)
{
	sb_error err = SB_ERROR_INIT;
	int afd = area();
	make_tree("victim", 40000);
	int dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(dfd);
	ASSERT_OK(sb_trash_put(afd, dfd, "victim", &err));
	ASSERT_EQ(sb_trash_clean(afd, &err), 1);
	ASSERT_TRUE(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	/* Deleting 40000 files at nice 19 takes a while: time to look at it. */
	char *trash = realpath("area/trash", NULL);
	ASSERT_TRUE(trash != NULL);
	pid_t pid = find_cleaner(trash);
	ASSERT_TRUE(pid > 0);
	char fds[256], out[3][PATH_MAX];
	foreign_fds(pid, trash, fds, sizeof(fds));
	for (int i = 0; i < 3; i++)
		fd_target(pid, (const char *[]){"0", "1", "2"}[i], out[i], sizeof(out[i]));
	pid_t sid = getsid(pid);
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, (id_t)pid);
	/* Stopped before asserting, so a failure cannot leave it running. */
	ASSERT_OK(kill(pid, SIGKILL));
	ASSERT_STREQ(fds, "");
	for (int i = 0; i < 3; i++)
		ASSERT_STREQ(out[i], "/dev/null");
	ASSERT_TRUE(sid > 0 && sid != pid && sid != getsid(0));
	ASSERT_EQ(nice, 19);
	free(trash);

	for (int i = 0; i < 1000 && trash_locked(); i++)
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	ASSERT_FALSE(trash_locked());
	ASSERT_EQ(trash_entries(), 1); /* half deleted, left behind */
	ASSERT_EQ(sb_trash_clean(afd, &err), 1);
	wait_cleaned();
	close(dfd);
	close(afd);
}

/*
 * While a cleaner holds the trash, a clean starts no second one; the holder
 * looks again after letting go and finds the new entry.
 */
TEST(one_cleaner_at_a_time)
{
	sb_error err = SB_ERROR_INIT;
	int afd = area();
	ASSERT_OK(mkdir("area/trash", 0700));
	int held = open("area/trash", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(held);
	ASSERT_OK(flock(held, LOCK_EX));
	make_tree("a", 10);
	int dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(sb_trash_put(afd, dfd, "a", &err));
	ASSERT_EQ(sb_trash_clean(afd, &err), 0);
	ASSERT_EQ(trash_entries(), 1);
	ASSERT_OK(flock(held, LOCK_UN));
	close(held);
	ASSERT_EQ(sb_trash_clean(afd, &err), 1);
	wait_cleaned();
	close(dfd);
	close(afd);
}

/*
 * The caller's flocks (the workspace lock) end with the caller: by the time
 * sb_trash_clean returns, the cleaner has closed what it inherited.
 */
TEST(cleaner_keeps_no_lock_of_the_callers)
{
	sb_error err = SB_ERROR_INIT;
	int afd = area();
	int dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(dfd);
	for (int i = 0; i < 20; i++) {
		make_tree("t", 200);
		int lk = open("lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		ASSERT_OK(lk);
		ASSERT_OK(flock(lk, LOCK_EX));
		ASSERT_OK(sb_trash_put(afd, dfd, "t", &err));
		ASSERT_TRUE(sb_trash_clean(afd, &err) >= 0);
		close(lk);
		int again = open("lock", O_RDWR | O_CLOEXEC);
		ASSERT_OK(again);
		ASSERT_TRUE(flock(again, LOCK_EX | LOCK_NB) == 0);
		close(again);
	}
	wait_cleaned();
	close(dfd);
	close(afd);
}

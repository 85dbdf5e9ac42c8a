/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "fileio.h"
#include "safefs.h"

ssize_t sb_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t sb_pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int sb_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

int sb_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

int sb_open_file_at(int dir_fd, const char *name, uint64_t max, struct stat *ret_st, sb_error *err)
{
	/* O_NONBLOCK: a fifo planted under the name must not hang us. */
	_cleanup_close_ int fd = sb_open_beneath(dir_fd, name, O_RDONLY | O_NONBLOCK, 0, err);
	if (fd < 0)
		return fd;
	if (fstat(fd, ret_st) < 0)
		return sb_error_errno(err, errno, "stat '%s'", name);
	if (!S_ISREG(ret_st->st_mode))
		return sb_error_set(err, EINVAL, "'%s' is not a regular file", name);
	if ((uint64_t)ret_st->st_size > max)
		return sb_error_set(err, EFBIG, "'%s' is larger than %" PRIu64 " bytes", name, max);
	return TAKE_FD(fd);
}

int sb_read_file_at(int dir_fd, const char *name, size_t max, char **ret_data, size_t *ret_len,
		    sb_error *err)
{
	struct stat st;
	_cleanup_close_ int fd = sb_open_file_at(dir_fd, name, max, &st, err);
	if (fd < 0)
		return fd;
	size_t cap = (size_t)st.st_size + 1;
	_cleanup_free_ char *data = malloc(cap);
	if (!data)
		return -ENOMEM;
	ssize_t n = sb_read_full(fd, data, cap - 1);
	if (n < 0)
		return sb_error_errno(err, (int)-n, "read '%s'", name);
	data[n] = 0;
	*ret_data = TAKE_PTR(data);
	if (ret_len)
		*ret_len = (size_t)n;
	return 0;
}

int sb_fsync_dir_at(int dir_fd, const char *name)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

int sb_write_atomic(int dir_fd, const char *name, const void *data, size_t len, mode_t mode,
		    sb_write_flags flags, sb_error *err)
{
	char lock[NAME_MAX + 8];
	if (snprintf(lock, sizeof(lock), "%s.lock", name) >= (int)sizeof(lock))
		return sb_error_set(err, ENAMETOOLONG, "file name '%s' too long", name);
	if (flags & SB_WRITE_LOCKED)
		(void)unlinkat(dir_fd, lock, 0);
	int fd = openat(dir_fd, lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return sb_error_set(
			    err, EEXIST,
			    "'%s' exists: another snapbox is writing, or one crashed "
			    "(remove it if no snapbox is running)",
			    lock);
		return sb_error_errno(err, errno, "create '%s'", lock);
	}
	int r = sb_write_full(fd, data, len);
	if (r == 0 && (flags & SB_WRITE_SYNC) && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0) {
		if (flags & SB_WRITE_NOCLOBBER)
			r = linkat(dir_fd, lock, dir_fd, name, 0) < 0 ? -errno : 0;
		else
			r = renameat(dir_fd, lock, dir_fd, name) < 0 ? -errno : 0;
	}
	if (r < 0 || (flags & SB_WRITE_NOCLOBBER))
		(void)unlinkat(dir_fd, lock, 0);
	if (r < 0)
		return sb_error_errno(err, -r, "write '%s'", name);
	if (flags & SB_WRITE_SYNC) {
		r = sb_fsync_dir_at(dir_fd, ".");
		if (r < 0)
			return sb_error_errno(err, -r, "fsync directory of '%s'", name);
	}
	return 0;
}

int sb_remove_tree_at(int dir_fd, const char *name, sb_error *err)
{
	if (unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return sb_error_errno(err, errno, "remove '%s'", name);
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES && fchmodat(dir_fd, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
		fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : sb_error_errno(err, errno, "open '%s'", name);
	/* Emptying needs write and search permission on the directory itself. */
	(void)fchmod(fd, 0700);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return sb_error_errno(err, errno, "read '%s'", name);
	}
	int r = 0;
	struct dirent *de;
	while (r >= 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			r = sb_remove_tree_at(dirfd(d), de->d_name, err);
	closedir(d);
	if (r >= 0 && unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = sb_error_errno(err, errno, "remove directory '%s'", name);
	return r;
}

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

bool sb_stat_unchanged(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       ts_eq(&a->st_mtim, &b->st_mtim) && ts_eq(&a->st_ctim, &b->st_ctim);
}

int64_t sb_ns_from_timespec(const struct timespec *ts)
{
	int64_t ns;
	if (__builtin_mul_overflow((int64_t)ts->tv_sec, SB_NSEC, &ns) ||
	    __builtin_add_overflow(ns, (int64_t)ts->tv_nsec, &ns))
		return ts->tv_sec < 0 ? INT64_MIN : INT64_MAX;
	return ns;
}

int sb_rename_noreplace(int from_fd, const char *from, int to_fd, const char *to)
{
	if (renameat2(from_fd, from, to_fd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (linkat(from_fd, from, to_fd, to, 0) == 0)
		return unlinkat(from_fd, from, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (errno == EEXIST || errno == ENOENT)
		return -errno;
	if (faccessat(to_fd, to, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	if (errno != ENOENT)
		return -errno;
	return renameat(from_fd, from, to_fd, to) < 0 ? -errno : 0;
}

int64_t sb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return sb_ns_from_timespec(&ts);
}

int64_t sb_coarse_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return sb_ns_from_timespec(&ts);
}

struct timespec sb_timespec_from_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / SB_NSEC, .tv_nsec = ns % SB_NSEC};
	if (ts.tv_nsec < 0) {
		ts.tv_nsec += SB_NSEC;
		ts.tv_sec--;
	}
	return ts;
}

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#include "safefs.h"

static int force_fallback = -1; /* -1: read SNAPBOX_NO_OPENAT2 on first use */

void sb_safefs_force_fallback(bool on)
{
	force_fallback = on;
}

bool sb_safefs_fallback_forced(void)
{
	if (force_fallback < 0) {
		const char *e = getenv("SNAPBOX_NO_OPENAT2");
		force_fallback = e && strcmp(e, "1") == 0;
	}
	return force_fallback;
}

bool sb_name_is_valid(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return memchr(name, '/', len) == NULL && memchr(name, 0, len) == NULL;
}

static int do_openat2(int dir_fd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
	    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = RETRY_EINTR(syscall(SYS_openat2, dir_fd, path, &how, sizeof(how)));
	return fd < 0 ? -errno : (int)fd;
}

bool sb_safefs_have_openat2(void)
{
	int fd = do_openat2(AT_FDCWD, ".", O_PATH | O_DIRECTORY, 0);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/*
 * O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR; report it as the
 * symlink it is, so callers see one errno for "a symlink was in the way".
 */
static int symlink_errno(int dir_fd, const char *name, int e)
{
	struct stat st;
	if (e == ENOTDIR && fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return ELOOP;
	return e;
}

/* The refusals after which the O_PATH walk is the right answer. */
static bool openat2_refused(int r)
{
	return r == -ENOSYS || r == -EPERM || r == -E2BIG || r == -ENAMETOOLONG;
}

/*
 * Split off one component: returns its length, advances *p past it and any
 * following slashes. Skips "." components.
 */
static size_t next_component(const char **p, const char **ret_start)
{
	for (;;) {
		while (**p == '/')
			(*p)++;
		const char *s = *p;
		while (**p && **p != '/')
			(*p)++;
		size_t n = (size_t)(*p - s);
		while (**p == '/')
			(*p)++;
		if (n == 1 && s[0] == '.')
			continue;
		*ret_start = s;
		return n;
	}
}

static int walk_open(int dir_fd, const char *path, int flags, mode_t mode, sb_error *err)
{
	_cleanup_close_ int cur = -1;
	const char *p = path, *comp;
	int base = dir_fd;
	char name[NAME_MAX + 1];

	for (;;) {
		size_t n = next_component(&p, &comp);
		if (n == 0) {
			/* path named the directory itself ("" or "." or "a/.") */
			if (cur >= 0 && !(flags & O_PATH)) {
				int fd = openat(cur, ".", flags | O_CLOEXEC | O_NOFOLLOW, mode);
				return fd < 0 ? sb_error_errno(err, errno, "open '%s'", path) : fd;
			}
			if (cur >= 0)
				return TAKE_FD(cur);
			int fd = openat(base, ".", flags | O_CLOEXEC, mode);
			return fd < 0 ? sb_error_errno(err, errno, "open '%s'", path) : fd;
		}
		if (n > NAME_MAX)
			return sb_error_set(err, ENAMETOOLONG,
					    "path component too long in '%.200s'", path);
		memcpy(name, comp, n);
		name[n] = 0;
		if (n == 2 && comp[0] == '.' && comp[1] == '.')
			return sb_error_set(err, EXDEV, "path '%.200s' climbs out with '..'", path);
		bool last = *p == 0;
		int fd;
		if (last)
			fd = openat(base, name, flags | O_CLOEXEC | O_NOFOLLOW, mode);
		else
			fd = openat(base, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return sb_error_errno(err, symlink_errno(base, name, errno),
					      "open '%.200s' (at '%s')", path, name);
		CLOSE_FD(cur);
		cur = fd;
		base = cur;
		if (last)
			return TAKE_FD(cur);
	}
}

int sb_open_beneath(int dir_fd, const char *path, int flags, mode_t mode, sb_error *err)
{
	if (path[0] == '/')
		return sb_error_set(err, EXDEV, "path '%.200s' is absolute", path);
	if (!sb_safefs_fallback_forced()) {
		int r = do_openat2(dir_fd, *path ? path : ".", flags, mode);
		if (r >= 0)
			return r;
		/* ENOTDIR may hide a symlink: the walk tells which. */
		if (!openat2_refused(r) && r != -ENOTDIR) {
			if (r == -ELOOP)
				return sb_error_set(err, ELOOP,
						    "'%.200s': a component is a symlink, refused",
						    path);
			if (r == -EXDEV)
				return sb_error_set(err, EXDEV,
						    "path '%.200s' escapes the workspace", path);
			return sb_error_errno(err, -r, "open '%.200s'", path);
		}
	}
	return walk_open(dir_fd, path, flags, mode, err);
}

static const char *last_component(const char *path, size_t *ret_dirlen)
{
	size_t len = strlen(path);
	while (len > 0 && path[len - 1] == '/')
		len--;
	size_t i = len;
	while (i > 0 && path[i - 1] != '/')
		i--;
	*ret_dirlen = i;
	return path + i;
}

int sb_open_parent_beneath(int dir_fd, const char *path, const char **ret_name, sb_error *err)
{
	size_t dirlen;
	const char *name = last_component(path, &dirlen);
	size_t nlen = strcspn(name, "/");
	if (!sb_name_is_valid(name, nlen))
		return sb_error_set(err, EINVAL, "'%.200s' does not end in a file name", path);
	if (name[nlen] != 0)
		return sb_error_set(err, EINVAL, "'%.200s' has a trailing slash", path);
	_cleanup_free_ char *dir = strndup(path, dirlen);
	if (!dir)
		return -ENOMEM;
	int fd = sb_open_beneath(dir_fd, dir, O_RDONLY | O_DIRECTORY, 0, err);
	if (fd < 0)
		return fd;
	*ret_name = name;
	return fd;
}

int sb_mkdir_beneath(int dir_fd, const char *path, mode_t mode, sb_error *err)
{
	_cleanup_close_ int cur = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return sb_error_errno(err, errno, "open workspace directory");
	const char *p = path, *comp;
	char name[NAME_MAX + 1];
	for (;;) {
		size_t n = next_component(&p, &comp);
		if (n == 0)
			return 0;
		if (n > NAME_MAX)
			return sb_error_set(err, ENAMETOOLONG,
					    "path component too long in '%.200s'", path);
		if (n == 2 && comp[0] == '.' && comp[1] == '.')
			return sb_error_set(err, EXDEV, "path '%.200s' climbs out with '..'", path);
		memcpy(name, comp, n);
		name[n] = 0;
		if (mkdirat(cur, name, mode) < 0 && errno != EEXIST)
			return sb_error_errno(err, errno, "mkdir '%.200s' (at '%s')", path, name);
		int fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return sb_error_errno(err, symlink_errno(cur, name, errno),
					      "open '%.200s' (at '%s')", path, name);
		CLOSE_FD(cur);
		cur = fd;
	}
}

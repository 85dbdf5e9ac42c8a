/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "overlay.h"

#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV  0x00000004
#endif

/* fsconfig commands (linux/mount.h), spelled out so any libc header set works. */
enum {
	CFG_SET_FLAG = 0,
	CFG_SET_STRING = 1,
	CFG_SET_FD = 5,
	CFG_CMD_CREATE = 6,
};

/* mount(2) options travel in one page. */
#define LEGACY_MAX 4095

struct sb_overlay {
	char *layer[3]; /* lower, upper, work */
	sb_overlay_flags flags;
	char *full[3]; /* root + layer, filled at mount time */
	char *esc[3];  /* full[] escaped, for fsconfig's upperdir and workdir strings */
	char *opts;    /* mount(2) options, filled at mount time */
	size_t opts_size;
};

static const char *const layer_key[3] = {"lowerdir", "upperdir", "workdir"};

void sb_overlay_free(sb_overlay *ov)
{
	if (!ov)
		return;
	for (int i = 0; i < 3; i++) {
		free(ov->layer[i]);
		free(ov->full[i]);
		free(ov->esc[i]);
	}
	free(ov->opts);
	free(ov);
}

void sb_overlay_freep(sb_overlay **ov)
{
	sb_overlay_free(*ov);
	*ov = NULL;
}

int sb_overlay_new(const char *lower, const char *upper, const char *work, sb_overlay_flags flags,
		   sb_overlay **ret, sb_error *err)
{
	const char *paths[3] = {lower, upper, work};
	for (int i = 0; i < 3; i++)
		if (!paths[i] || paths[i][0] != '/')
			return sb_error_set(err, EINVAL, "overlay %s '%s' is not an absolute path",
					    layer_key[i], paths[i] ? paths[i] : "(null)");
	_cleanup_(sb_overlay_freep) sb_overlay *ov = calloc(1, sizeof(*ov));
	if (!ov)
		return sb_error_errno(err, ENOMEM, "overlay");
	ov->flags = flags;
	size_t total = 0;
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(paths[i]);
		ov->layer[i] = strdup(paths[i]);
		ov->full[i] = malloc(n + SB_OVERLAY_ROOT_MAX + 1);
		ov->esc[i] = malloc(2 * (n + SB_OVERLAY_ROOT_MAX) + 1);
		if (!ov->layer[i] || !ov->full[i] || !ov->esc[i])
			return sb_error_errno(err, ENOMEM, "overlay");
		total += 2 * (n + SB_OVERLAY_ROOT_MAX) + 16;
	}
	ov->opts_size = total + 128;
	ov->opts = malloc(ov->opts_size);
	if (!ov->opts)
		return sb_error_errno(err, ENOMEM, "overlay");
	*ret = TAKE_PTR(ov);
	return 0;
}

int sb_overlay_escape(const char *path, char *buf, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; path[i]; i++) {
		bool esc = path[i] == '\\' || path[i] == ':' || path[i] == ',';
		if (o + (esc ? 2 : 1) + 1 > size)
			return -ENAMETOOLONG;
		if (esc)
			buf[o++] = '\\';
		buf[o++] = path[i];
	}
	if (o + 1 > size)
		return -ENAMETOOLONG;
	buf[o] = 0;
	return (int)o;
}

/* Allocation-free append; false when it did not fit. */
static bool put(char *buf, size_t size, size_t *o, const char *s)
{
	size_t n = strlen(s);
	if (*o + n + 1 > size)
		return false;
	memcpy(buf + *o, s, n + 1);
	*o += n;
	return true;
}

/* Keeps the kernel's last error line from the fs context log ("e overlayfs: ..."). */
static void drain_log(int fsfd, char *msg, size_t msg_size)
{
	char line[512];
	for (;;) {
		ssize_t n = read(fsfd, line, sizeof(line) - 1);
		if (n <= 0)
			break;
		line[n] = 0;
		if (line[n - 1] == '\n')
			line[n - 1] = 0;
		if (msg && msg_size && (line[0] == 'e' || !msg[0])) {
			size_t o = 0;
			msg[0] = 0;
			put(msg, msg_size, &o, line[0] && line[1] == ' ' ? line + 2 : line);
		}
	}
}

static long sys_fsconfig(int fd, unsigned cmd, const char *key, const void *value, int aux)
{
	return syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

typedef enum { M_DONE, M_UNSUPPORTED } method_result;

/*
 * Methods 1 and 2. A refusal while *setting* parameters means this kernel
 * lacks the method (fd layers before 6.13, "lowerdir+" before 6.8, a string
 * of 256 bytes or more): the caller tries the next one. A failure to create
 * or attach the superblock is the real answer.
 */
static int mount_fsconfig(sb_overlay *ov, const char *target, bool by_fd, bool userx, bool durable,
			  method_result *how, char *msg, size_t msg_size)
{
	*how = M_DONE;
	int fsfd = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0) {
		if (errno == ENOSYS || errno == EPERM)
			*how = M_UNSUPPORTED;
		return -errno;
	}
	int r = 0, fds[3] = {-1, -1, -1};
	static const char *const keys[3] = {"lowerdir+", "upperdir", "workdir"};
	for (int i = 0; i < 3 && r == 0; i++) {
		long c;
		if (by_fd) {
			fds[i] = open(ov->full[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fds[i] < 0) {
				r = -errno;
				break;
			}
			c = sys_fsconfig(fsfd, CFG_SET_FD, keys[i], NULL, fds[i]);
		} else {
			/*
			 * The kernel unescapes upperdir and workdir strings (a '\\'
			 * would vanish) but takes "lowerdir+" as it is.
			 */
			const char *v = ov->full[i];
			if (i > 0 && sb_overlay_escape(
					 ov->full[i], ov->esc[i],
					 2 * (strlen(ov->layer[i]) + SB_OVERLAY_ROOT_MAX) + 1) >= 0)
				v = ov->esc[i];
			c = sys_fsconfig(fsfd, CFG_SET_STRING, keys[i], v, 0);
		}
		if (c < 0) {
			r = -errno;
			*how = M_UNSUPPORTED;
		}
	}
	if (r == 0 && (sys_fsconfig(fsfd, CFG_SET_STRING, "redirect_dir",
				    userx ? "nofollow" : "off", 0) < 0 ||
		       sys_fsconfig(fsfd, CFG_SET_STRING, "metacopy", "off", 0) < 0 ||
		       sys_fsconfig(fsfd, CFG_SET_STRING, "index", "off", 0) < 0 ||
		       (userx && sys_fsconfig(fsfd, CFG_SET_FLAG, "userxattr", NULL, 0) < 0)))
		r = -errno;
	/* Before 5.10 the flag is unknown: the mount is then merely durable. */
	if (r == 0 && !durable)
		(void)sys_fsconfig(fsfd, CFG_SET_FLAG, "volatile", NULL, 0);
	if (r == 0 && sys_fsconfig(fsfd, CFG_CMD_CREATE, NULL, NULL, 0) < 0)
		r = -errno;
	int mfd = -1;
	if (r == 0) {
		mfd = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC,
				   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
		if (mfd < 0)
			r = -errno;
	}
	if (r == 0 &&
	    syscall(SYS_move_mount, mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		r = -errno;
	if (r < 0)
		drain_log(fsfd, msg, msg_size);
	if (mfd >= 0)
		close(mfd);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	close(fsfd);
	return r;
}

static int mount_legacy(sb_overlay *ov, const char *target, bool userx, bool durable)
{
	size_t o = 0;
	char *b = ov->opts;
	size_t size = MIN(ov->opts_size, (size_t)LEGACY_MAX + 1);
	for (int i = 0; i < 3; i++) {
		if ((i && !put(b, size, &o, ",")) || !put(b, size, &o, layer_key[i]) ||
		    !put(b, size, &o, "="))
			return -ENAMETOOLONG;
		int n = sb_overlay_escape(ov->full[i], b + o, size - o);
		if (n < 0)
			return n;
		o += (size_t)n;
	}
	if (!put(b, size, &o, userx ? ",redirect_dir=nofollow,userxattr" : ",redirect_dir=off") ||
	    !put(b, size, &o, ",metacopy=off,index=off"))
		return -ENAMETOOLONG;
	size_t plain = o;
	if (!durable && put(b, size, &o, ",volatile") &&
	    mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, b) == 0)
		return 0;
	/* Without "volatile" (before 5.10, or no room left for it): a durable mount. */
	b[plain] = 0;
	if (mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, b) < 0)
		return -errno;
	return 0;
}

int sb_overlay_mount(sb_overlay *ov, const char *root, const char *target,
		     sb_overlay_flags extra_flags, char *msg, size_t msg_size)
{
	sb_overlay_flags flags = ov->flags | extra_flags;
	bool userx = flags & SB_OVERLAY_USERXATTR;
	bool durable = flags & SB_OVERLAY_DURABLE;
	size_t rlen = root ? strlen(root) : 0;
	if (msg && msg_size)
		msg[0] = 0;
	if (rlen > SB_OVERLAY_ROOT_MAX)
		return -ENAMETOOLONG;
	for (int i = 0; i < 3; i++) {
		if (rlen)
			memcpy(ov->full[i], root, rlen);
		memcpy(ov->full[i] + rlen, ov->layer[i], strlen(ov->layer[i]) + 1);
	}
	if (!(flags & SB_OVERLAY_NO_FSCONFIG)) {
		method_result how;
		int r;
		if (!(flags & SB_OVERLAY_NO_FD)) {
			r = mount_fsconfig(ov, target, true, userx, durable, &how, msg, msg_size);
			if (r == 0 || how == M_DONE)
				return r;
		}
		r = mount_fsconfig(ov, target, false, userx, durable, &how, msg, msg_size);
		if (r == 0 || how == M_DONE || (flags & SB_OVERLAY_NO_LEGACY))
			return r;
		if (msg && msg_size)
			msg[0] = 0;
	}
	return mount_legacy(ov, target, userx, durable);
}

int sb_overlay_mount_hook(void *data, const char *host_root, const char *target, bool userns,
			  char *msg, size_t msg_size)
{
	return sb_overlay_mount(data, host_root, target, userns ? SB_OVERLAY_USERXATTR : 0, msg,
				msg_size);
}

/* ---- probe ---- */

/* Removes a small tree the probe made; work dirs left by overlayfs may be mode 000. */
static void rm_rf_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES && fchmodat(dfd, name, 0700, 0) == 0)
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		if (d) {
			struct dirent *de;
			while ((de = readdir(d)))
				if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
					rm_rf_at(dirfd(d), de->d_name);
			closedir(d);
		} else {
			close(fd);
		}
		unlinkat(dfd, name, AT_REMOVEDIR);
		return;
	}
	unlinkat(dfd, name, 0);
}

typedef struct probe_report {
	int step; /* 0 ok, 1 userns, 2 mount ns, 3 mount, 4 read, 5 whiteout mount, 6 unlink, 7 no whiteout */
	int error;
	char msg[512];
} probe_report;

static _Noreturn void probe_child(int fd, sb_overlay *ov1, sb_overlay *ov2, const char *m1,
				  const char *m2, const char *victim_upper, const char *maps[3])
{
	probe_report rep;
	memset(&rep, 0, sizeof(rep));
	bool userns = maps[0] != NULL;
	if (unshare(CLONE_NEWNS | (userns ? CLONE_NEWUSER : 0)) < 0) {
		rep.step = userns ? 1 : 2;
		goto fail;
	}
	static const char *const files[3] = {"/proc/self/setgroups", "/proc/self/uid_map",
					     "/proc/self/gid_map"};
	for (int i = 0; userns && i < 3; i++) {
		int f = open(files[i], O_WRONLY | O_CLOEXEC);
		if (f < 0 || write(f, maps[i], strlen(maps[i])) < 0) {
			rep.step = 1;
			goto fail;
		}
		close(f);
	}
	if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0) {
		rep.step = 2;
		goto fail;
	}
	int r = sb_overlay_mount(ov1, NULL, m1, 0, rep.msg, sizeof(rep.msg));
	if (r < 0) {
		errno = -r;
		rep.step = 3;
		goto fail;
	}
	int d = open(m1, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[4096];
	if (d < 0 || syscall(SYS_getdents64, d, buf, sizeof(buf)) < 0) {
		rep.step = 4;
		goto fail;
	}
	close(d);
	umount2(m1, MNT_DETACH);
	r = sb_overlay_mount(ov2, NULL, m2, 0, rep.msg, sizeof(rep.msg));
	if (r < 0) {
		errno = -r;
		rep.step = 5;
		goto fail;
	}
	d = open(m2, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d < 0 || unlinkat(d, "victim", 0) < 0) {
		rep.step = 6;
		goto fail;
	}
	close(d);
	umount2(m2, MNT_DETACH);
	struct stat st;
	if (lstat(victim_upper, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(0, 0)) {
		errno = EOPNOTSUPP;
		rep.step = 7;
		goto fail;
	}
	(void)!write(fd, &rep, sizeof(rep));
	_exit(0);
fail:
	rep.error = errno ? errno : EIO;
	(void)!write(fd, &rep, sizeof(rep));
	_exit(1);
}

int sb_overlay_probe(const char *lower, const char *scratch_dir, sb_overlay_probe_flags flags,
		     sb_error *err)
{
	static const char *const steps[] = {
	    "ok",
	    "creating a user namespace",
	    "creating a mount namespace",
	    "mounting overlayfs",
	    "reading the merged directory",
	    "mounting overlayfs on a scratch lower",
	    "deleting a lower file through the overlay",
	    "finding the whiteout in the upper",
	};
	bool userns = flags & SB_OVERLAY_PROBE_USERNS;
	char base[PATH_MAX];
	int n = snprintf(base, sizeof(base), "%s/overlay-probe-XXXXXX", scratch_dir);
	if (n < 0 || (size_t)n >= sizeof(base) - 32)
		return sb_error_set(err, ENAMETOOLONG, "probe directory under '%s'", scratch_dir);
	if (!mkdtemp(base))
		return sb_error_errno(err, errno, "creating a probe directory under '%s'",
				      scratch_dir);
	static const char *const dirs[] = {"l", "u1", "w1", "m1", "u2", "w2", "m2"};
	char p[7][PATH_MAX + 8], victim[PATH_MAX + 16];
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(p[i], sizeof(p[i]), "%s/%s", base, dirs[i]);
		if (mkdir(p[i], 0755) < 0) {
			r = sb_error_errno(err, errno, "creating '%s'", p[i]);
			goto out;
		}
	}
	snprintf(victim, sizeof(victim), "%s/victim", p[0]);
	int vfd = open(victim, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (vfd < 0) {
		r = sb_error_errno(err, errno, "creating '%s'", victim);
		goto out;
	}
	close(vfd);
	snprintf(victim, sizeof(victim), "%s/victim", p[4]);

	sb_overlay_flags of = userns ? SB_OVERLAY_USERXATTR : 0;
	_cleanup_(sb_overlay_freep) sb_overlay *ov1 = NULL;
	_cleanup_(sb_overlay_freep) sb_overlay *ov2 = NULL;
	if ((r = sb_overlay_new(lower ? lower : p[0], p[1], p[2], of, &ov1, err)) < 0 ||
	    (r = sb_overlay_new(p[0], p[4], p[5], of, &ov2, err)) < 0)
		goto out;
	char uid_map[64], gid_map[64];
	snprintf(uid_map, sizeof(uid_map), "%u %u 1\n", geteuid(), geteuid());
	snprintf(gid_map, sizeof(gid_map), "%u %u 1\n", getegid(), getegid());
	const char *maps[3] = {userns ? "deny" : NULL, uid_map, gid_map};

	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r = sb_error_errno(err, errno, "pipe");
		goto out;
	}
	/* A raw clone, as for the sandbox: no atfork handlers, no inherited lock state. */
	long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		close(pfd[0]);
		probe_child(pfd[1], ov1, ov2, p[3], p[6], victim, maps);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		r = sb_error_errno(err, errno, "forking the overlay probe");
		goto out;
	}
	probe_report rep;
	memset(&rep, 0, sizeof(rep));
	ssize_t got = read(pfd[0], &rep, sizeof(rep));
	close(pfd[0]);
	while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (got != (ssize_t)sizeof(rep))
		r = sb_error_set(err, EIO, "the overlay probe died");
	else if (rep.step != 0)
		r = sb_error_errno(err, rep.error, "overlay probe%s on '%s': %s%s%s%s",
				   userns ? " (user namespace)" : "",
				   rep.step == 3 && lower ? lower : scratch_dir,
				   steps[rep.step < 8 ? rep.step : 0], rep.msg[0] ? " (" : "",
				   rep.msg, rep.msg[0] ? ")" : "");
out:;
	int bfd = open(scratch_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (bfd >= 0) {
		rm_rf_at(bfd, strrchr(base, '/') + 1);
		close(bfd);
	}
	return r;
}

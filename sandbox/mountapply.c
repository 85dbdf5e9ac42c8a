/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mountplan.h"

/*
 * Replaying a mount plan in the sandbox's PID 1, between clone and exec:
 * no allocation, no stdio; every buffer was made by sb_mountplan_new().
 */

static long sys_open_tree(int dfd, const char *path, unsigned flags)
{
	return syscall(SYS_open_tree, dfd, path, flags);
}

static long sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to,
			   unsigned flags)
{
	return syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

static long sys_mount_setattr(int dfd, const char *path, unsigned flags, uint64_t attr)
{
	struct {
		uint64_t attr_set, attr_clr, propagation, userns_fd;
	} a = {attr, 0, 0, 0};
	return syscall(SYS_mount_setattr, dfd, path, flags, &a, sizeof(a));
}

static unsigned long attr_to_ms(uint64_t attr)
{
	return ((attr & MOUNT_ATTR_RDONLY) ? MS_RDONLY : 0) |
	       ((attr & MOUNT_ATTR_NOSUID) ? MS_NOSUID : 0) |
	       ((attr & MOUNT_ATTR_NODEV) ? MS_NODEV : 0) |
	       ((attr & MOUNT_ATTR_NOEXEC) ? MS_NOEXEC : 0);
}

/*
 * A bind remount must repeat the flags the mount already has: in a user
 * namespace, dropping a locked one (nosuid, nodev, noexec, atime) is EPERM.
 */
static int remount_one(const char *path, uint64_t attr)
{
	struct statfs sf;
	if (statfs(path, &sf) < 0)
		return -errno;
	unsigned long keep = 0;
	static const struct {
		unsigned long st, ms;
	} map[] = {
	    {ST_RDONLY, MS_RDONLY},	{ST_NOSUID, MS_NOSUID},	  {ST_NODEV, MS_NODEV},
	    {ST_NOEXEC, MS_NOEXEC},	{ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME},
	    {ST_RELATIME, MS_RELATIME},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if ((unsigned long)sf.f_flags & map[i].st)
			keep |= map[i].ms;
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | keep | attr_to_ms(attr), NULL) < 0)
		return -errno;
	return 0;
}

/* Undo mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash). */
static size_t unescape(char *out, size_t size, const char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[o++] = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) |
					  (s[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = 0;
	return o;
}

static bool path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* Field 5 of a mountinfo line is the mount point. */
static int remount_line(sb_mountplan *p, const char *line, size_t len, const char *prefix,
			uint64_t attr)
{
	const char *s = line, *end = line + len;
	for (int field = 0; field < 4; field++) {
		const char *sp = memchr(s, ' ', (size_t)(end - s));
		if (!sp)
			return -EBADMSG;
		s = sp + 1;
	}
	const char *sp = memchr(s, ' ', (size_t)(end - s));
	if (!sp)
		return -EBADMSG;
	unescape(p->mp_buf, PATH_MAX + 1, s, (size_t)(sp - s));
	if (!path_under(p->mp_buf, prefix))
		return 0;
	int r = remount_one(p->mp_buf, attr);
	/* A mount point covered by a later mount, or gone meanwhile: nothing visible to fix. */
	return r == -ENOENT ? 0 : r;
}

static int remount_tree(sb_mountplan *p, const char *prefix, uint64_t attr)
{
	int fd = open(SB_OLDROOT "/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t have = 0;
	int r = 0;
	for (;;) {
		ssize_t n = read(fd, p->io_buf + have, p->io_size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		have += (size_t)n;
		size_t start = 0;
		for (;;) {
			char *nl = memchr(p->io_buf + start, '\n', have - start);
			if (!nl)
				break;
			r = remount_line(p, p->io_buf + start, (size_t)(nl - p->io_buf - start),
					 prefix, attr);
			if (r < 0)
				goto out;
			start = (size_t)(nl - p->io_buf) + 1;
		}
		memmove(p->io_buf, p->io_buf + start, have - start);
		have -= start;
		if (n == 0)
			break;
		if (have == p->io_size) {
			r = -E2BIG;
			break;
		}
	}
out:
	close(fd);
	return r;
}

static int do_bind(sb_mountplan *p, const sb_mop *o)
{
	bool rec = o->flags & SB_MOP_REC;
	if (!p->classic) {
		int fd = (int)sys_open_tree(AT_FDCWD, o->src,
					    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
						(rec ? AT_RECURSIVE : 0));
		if (fd < 0 && errno == ENOSYS) {
			p->classic = true;
			return do_bind(p, o);
		}
		if (fd < 0)
			return -errno;
		int r = 0;
		if (o->attr && sys_mount_setattr(fd, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0),
						 o->attr) < 0)
			r = -errno;
		if (r >= 0 && sys_move_mount(fd, "", AT_FDCWD, o->dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			r = -errno;
		close(fd);
		if (r != -ENOSYS)
			return r;
		p->classic = true;
	}
	if (mount(o->src, o->dst, NULL, MS_BIND | (rec ? MS_REC : 0), NULL) < 0)
		return -errno;
	if (!o->attr)
		return 0;
	return rec ? remount_tree(p, o->dst, o->attr) : remount_one(o->dst, o->attr);
}

static int do_remount(sb_mountplan *p, const sb_mop *o)
{
	if (!p->classic) {
		if (sys_mount_setattr(AT_FDCWD, o->dst, (o->flags & SB_MOP_REC) ? AT_RECURSIVE : 0,
				      o->attr) == 0)
			return 0;
		if (errno != ENOSYS)
			return -errno;
	}
	return (o->flags & SB_MOP_REC) ? remount_tree(p, o->dst, o->attr)
				       : remount_one(o->dst, o->attr);
}

/* mkdir -p below "/", one component at a time; never follows a symlink. */
static int mkdir_p(const char *path)
{
	int dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	const char *s = path;
	char name[NAME_MAX + 1];
	int r = 0;
	while (*s) {
		while (*s == '/')
			s++;
		size_t n = strcspn(s, "/");
		if (n == 0)
			break;
		if (n > NAME_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		memcpy(name, s, n);
		name[n] = 0;
		s += n;
		if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		int next = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			r = -errno;
			break;
		}
		close(dfd);
		dfd = next;
	}
	close(dfd);
	return r;
}

static int run_op(sb_mountplan *p, const sb_mop *o, char *note, size_t note_size)
{
	int fd;
	switch (o->kind) {
	case SB_MOP_MKDIR_P:
		return mkdir_p(o->dst);
	case SB_MOP_MKFILE:
		fd = open(o->dst, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		close(fd);
		return 0;
	case SB_MOP_TMPFS:
		return mount("tmpfs", o->dst, "tmpfs", o->mflags, o->data) < 0 ? -errno : 0;
	case SB_MOP_PROC:
		return mount("proc", o->dst, "proc", o->mflags, NULL) < 0 ? -errno : 0;
	case SB_MOP_DEVPTS:
		return mount("devpts", o->dst, "devpts", o->mflags, o->data) < 0 ? -errno : 0;
	case SB_MOP_SYMLINK:
		return symlink(o->src, o->dst) < 0 ? -errno : 0;
	case SB_MOP_BIND:
		return do_bind(p, o);
	case SB_MOP_REMOUNT:
		return do_remount(p, o);
	case SB_MOP_HOOK: {
		int r = p->hook(p->hook_data, SB_OLDROOT, o->dst, p->userns, note, note_size);
		/* Before anything can cover it: the mount the hook made (sandbox.h says why). */
		if (r >= 0)
			p->hook_fd = open(o->dst, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		return r;
	}
	}
	return -EINVAL;
}

static int fail(sb_report *rep, sb_step step, int r, const char *path, const char *what,
		const char *src, const char *kmsg)
{
	rep->kind = SB_REPORT_SETUP;
	rep->step = step;
	rep->error = -r;
	sb_sandbox__scopy(rep->path, sizeof(rep->path), path);
	sb_sandbox__scopy(rep->note, sizeof(rep->note), what ? what : "");
	if (src) {
		sb_sandbox__scat(rep->note, sizeof(rep->note), " from '");
		sb_sandbox__scat(rep->note, sizeof(rep->note), src);
		sb_sandbox__scat(rep->note, sizeof(rep->note), "'");
	}
	if (kmsg && kmsg[0]) {
		sb_sandbox__scat(rep->note, sizeof(rep->note), " (");
		sb_sandbox__scat(rep->note, sizeof(rep->note), kmsg);
		sb_sandbox__scat(rep->note, sizeof(rep->note), ")");
	}
	return r;
}

static const char *shown(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(path, prefix, n) == 0)
		return path[n] ? path + n : "/";
	return path;
}

int sb_mountplan_apply(sb_mountplan *p, sb_report *rep)
{
	char kmsg[SB_REPORT_NOTE / 2];
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return fail(rep, SB_STEP_MOUNT, -errno, "/", "making the root a slave", NULL, NULL);
	/*
	 * Stage in a tmpfs on /tmp and pivot into it: the host stays reachable
	 * at /oldroot — including its real /tmp, which the staging tmpfs no
	 * longer covers once it has become the root.
	 */
	if (mount("tmpfs", SB_STAGING, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return fail(rep, SB_STEP_MOUNT, -errno, SB_STAGING, "staging tmpfs", NULL, NULL);
	if (chdir(SB_STAGING) < 0 || mkdir("newroot", 0755) < 0 || mkdir("oldroot", 0755) < 0)
		return fail(rep, SB_STEP_MOUNT, -errno, SB_STAGING, "staging directories", NULL,
			    NULL);
	if (syscall(SYS_pivot_root, ".", "oldroot") < 0)
		return fail(rep, SB_STEP_PIVOT, -errno, SB_STAGING,
			    "pivot_root into the staging tmpfs", NULL, NULL);
	if (chdir("/") < 0)
		return fail(rep, SB_STEP_PIVOT, -errno, "/", "chdir", NULL, NULL);

	for (size_t i = 0; i < p->n; i++) {
		const sb_mop *o = &p->ops[i];
		kmsg[0] = 0;
		int r = run_op(p, o, kmsg, sizeof(kmsg));
		if (r == -ENOENT && (o->flags & SB_MOP_OPTIONAL))
			continue;
		if (r < 0)
			return fail(rep, SB_STEP_MOUNT, r, shown(o->dst, SB_NEWROOT), o->what,
				    o->src && o->kind == SB_MOP_BIND ? shown(o->src, SB_OLDROOT)
								     : NULL,
				    kmsg);
	}

	if (umount2(SB_OLDROOT, MNT_DETACH) < 0)
		return fail(rep, SB_STEP_PIVOT, -errno, SB_OLDROOT, "detaching the host root", NULL,
			    NULL);
	/* pivot_root(".", ".") stacks the old root on the new one; detach it from there. */
	if (chdir(SB_NEWROOT) < 0)
		return fail(rep, SB_STEP_PIVOT, -errno, SB_NEWROOT, "chdir", NULL, NULL);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(rep, SB_STEP_PIVOT, -errno, "/", "pivot_root", NULL, NULL);
	if (umount2(".", MNT_DETACH) < 0)
		return fail(rep, SB_STEP_PIVOT, -errno, "/", "detaching the staging root", NULL,
			    NULL);
	if (chdir("/") < 0)
		return fail(rep, SB_STEP_PIVOT, -errno, "/", "chdir", NULL, NULL);
	return 0;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include "cgroup.h"
#include "landlock.h"
#include "probe.h"
#include "safefs.h"

static sb_probe_fact *fact(sb_probe *p, const char *name, bool ok, const char *fmt, ...)
    _printf_(4, 5);
static sb_probe_fact *fact(sb_probe *p, const char *name, bool ok, const char *fmt, ...)
{
	sb_probe_fact *f;
	va_list ap;

	if (p->n == SB_PROBE_MAX)
		return NULL;
	f = &p->facts[p->n++];
	f->name = name;
	f->ok = ok;
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
	return f;
}

/* A sysctl as a number; -1 when absent or unreadable. */
static long sysctl_num(const char *path)
{
	char buf[32];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	return end == buf ? -1 : v;
}

/* Wait for a probe child; its exit status is 0 or an errno. */
static int wait_child(pid_t pid)
{
	int st;
	if (RETRY_EINTR(waitpid(pid, &st, 0)) < 0)
		return errno;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return EINTR;
}

/* unshare(CLONE_NEWUSER) in a child, as uid (or as ourselves when uid < 0). */
static int try_userns(int uid)
{
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		if (uid >= 0 &&
		    (setgroups(0, NULL) < 0 || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) < 0 ||
		     setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0))
			_exit(errno & 0xff);
		_exit(unshare(CLONE_NEWUSER) < 0 ? (errno & 0xff) : 0);
	}
	return wait_child(pid);
}

static void probe_userns(sb_probe *p)
{
	int e = try_userns(-1);
	fact(p, "userns", e == 0, "%s", e == 0 ? "unshare(CLONE_NEWUSER) works" : strerror(e));

	long clone_ok = sysctl_num("/proc/sys/kernel/unprivileged_userns_clone");
	long max = sysctl_num("/proc/sys/user/max_user_namespaces");
	long aa = sysctl_num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
	char why[160] = "";
	bool ok = true;

	if (clone_ok == 0) {
		ok = false;
		snprintf(why, sizeof(why), "kernel.unprivileged_userns_clone=0");
	} else if (max == 0) {
		ok = false;
		snprintf(why, sizeof(why), "user.max_user_namespaces=0");
	} else if (aa == 1) {
		ok = false;
		snprintf(why, sizeof(why),
			 "kernel.apparmor_restrict_unprivileged_userns=1 (needs an AppArmor "
			 "profile allowing userns)");
	}
	if (geteuid() == 0) {
		int e2 = try_userns(65534);
		if (ok && e2 != 0) {
			ok = false;
			snprintf(why, sizeof(why), "as uid 65534: %s", strerror(e2));
		}
	} else if (ok && e != 0) {
		ok = false;
		snprintf(why, sizeof(why), "%s", strerror(e));
	}
	fact(p, "userns_unprivileged", ok, "%s%smax_user_namespaces=%ld", why, why[0] ? "; " : "",
	     max);
}

static int write_file(const char *path, const char *s)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		return -1;
	return 0;
}

static void rm_probe_dir(const char *base) /* strlen(base) < 640 */
{
	static const char *const parts[] = {"work/work", "work/index", "lower",
					    "upper",	 "work",       "merged"};
	char path[PATH_MAX];
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, parts[i]);
		(void)rmdir(path);
	}
	(void)rmdir(base);
}

static void probe_overlay(sb_probe *p)
{
	const char *tmp = getenv("TMPDIR");
	char base[640], opts[4 * 640 + 64], path[PATH_MAX];
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (!tmp || !*tmp || strpbrk(tmp, ",:\\") || strlen(tmp) > 512)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/snapbox-probe-XXXXXX", tmp);
	if (!mkdtemp(base)) {
		fact(p, "overlay_userns", false, "mkdtemp in %s: %s", tmp, strerror(errno));
		return;
	}
	static const char *const dirs[] = {"lower", "upper", "work", "merged"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, dirs[i]);
		(void)mkdir(path, 0700);
	}
	snprintf(opts, sizeof(opts), "lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", base,
		 base, base);

	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		fact(p, "overlay_userns", false, "pipe: %s", strerror(errno));
		rm_probe_dir(base);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char map[64], merged[640 + 16], o2[sizeof(opts) + 16];
		int e;
		close(fds[0]);
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			_exit(errno & 0xff);
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		if (write_file("/proc/self/uid_map", map) < 0)
			_exit(errno & 0xff);
		(void)write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		if (write_file("/proc/self/gid_map", map) < 0)
			_exit(errno & 0xff);
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(errno & 0xff);
		snprintf(merged, sizeof(merged), "%s/merged", base);
		/* userxattr (5.11) is what lets an unprivileged overlay keep its metadata. */
		snprintf(o2, sizeof(o2), "%s,userxattr", opts);
		if (mount("overlay", merged, "overlay", 0, o2) == 0) {
			(void)!write(fds[1], "userxattr", 9);
			_exit(0);
		}
		e = errno;
		if (mount("overlay", merged, "overlay", 0, opts) == 0)
			_exit(0);
		_exit((e ? e : errno) & 0xff);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		fact(p, "overlay_userns", false, "fork: %s", strerror(errno));
		rm_probe_dir(base);
		return;
	}
	char note[16] = "";
	ssize_t n = read(fds[0], note, sizeof(note) - 1);
	note[n > 0 ? n : 0] = 0;
	close(fds[0]);
	int e = wait_child(pid);
	rm_probe_dir(base);
	if (e == 0)
		fact(p, "overlay_userns", true, "overlay mounts in a user namespace%s%s",
		     note[0] ? " with " : "", note);
	else
		fact(p, "overlay_userns", false, "%s (upper in %s)", strerror(e), tmp);
}

static void probe_fuse(sb_probe *p)
{
	_cleanup_close_ int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	fact(p, "fuse", fd >= 0, "/dev/fuse: %s", fd >= 0 ? "opens read-write" : strerror(errno));

	const char *path = getenv("PATH");
	char cand[PATH_MAX];
	bool found = false;
	struct stat st;

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		if (len > 0 && len < sizeof(cand) - 16) {
			snprintf(cand, sizeof(cand), "%.*s/fusermount3", (int)len, path);
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(cand, X_OK) == 0) {
				found = true;
				break;
			}
		}
		path += len;
		if (*path == ':')
			path++;
	}
	if (!found) {
		fact(p, "fusermount3", false, "not found in PATH");
		return;
	}
	bool suid = (st.st_mode & S_ISUID) && st.st_uid == 0;
	fact(p, "fusermount3", suid || geteuid() == 0, "%s%s", cand,
	     suid ? " (setuid root)" : " (not setuid: only root can mount)");
}

static void probe_seccomp(sb_probe *p)
{
	int mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
	char actions[256] = "";
	_cleanup_close_ int fd =
	    open("/proc/sys/kernel/seccomp/actions_avail", O_RDONLY | O_CLOEXEC);

	if (mode < 0) {
		fact(p, "seccomp", false, "PR_GET_SECCOMP: %s (kernel without CONFIG_SECCOMP)",
		     strerror(errno));
		return;
	}
	if (fd >= 0) {
		ssize_t n = read(fd, actions, sizeof(actions) - 1);
		actions[n > 0 ? n : 0] = 0;
		actions[strcspn(actions, "\n")] = 0;
	}
	bool ok = mode != SECCOMP_MODE_STRICT && strstr(actions, "kill_process") &&
		  strstr(actions, "errno");
	fact(p, "seccomp", ok, "mode %d%s; actions: %s", mode,
	     mode == SECCOMP_MODE_FILTER ? " (already filtered; filters stack)" : "",
	     actions[0] ? actions : "unknown");
}

static void mask_list(unsigned mask, char *buf, size_t size)
{
	static const unsigned order[] = {SB_CG_MEMORY,	SB_CG_PIDS,    SB_CG_CPU,
					 SB_CG_CPUACCT, SB_CG_FREEZER, SB_CG_IO};
	size_t len = 0;
	buf[0] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		if (!(mask & order[i]))
			continue;
		int w = snprintf(buf + len, size - len, "%s%s", len ? "," : "",
				 sb_cgroup_controller_name(order[i]));
		if (w < 0 || (size_t)w >= size - len)
			break;
		len += (size_t)w;
	}
	if (!len)
		snprintf(buf, size, "none");
}

static void probe_cgroup(sb_probe *p)
{
	sb_error err = SB_ERROR_INIT;
	sb_cgroup_host h;
	char a[96], b[96];

	if (sb_cgroup_probe(NULL, &h, &err) < 0) {
		fact(p, "cgroup", false, "%s", err.msg);
		fact(p, "cgroup_controllers", false, "unknown");
		return;
	}
	if (h.version == SB_CGROUP_V2) {
		mask_list(h.v2_available, a, sizeof(a));
		fact(p, "cgroup", true, "v2 (%s); controllers offered: %s",
		     h.v1_mounted ? "hybrid" : "unified", a);
	} else if (h.version == SB_CGROUP_V1) {
		mask_list(h.v1_mounted, a, sizeof(a));
		mask_list(h.v2_available, b, sizeof(b));
		if (h.v2_mounted)
			fact(p, "cgroup", true,
			     "v1 (hybrid: v1 hierarchies %s; the cgroup2 mount offers %s)", a, b);
		else
			fact(p, "cgroup", true, "v1 (hierarchies %s)", a);
	} else {
		fact(p, "cgroup", false, "no cgroup filesystem mounted");
	}
	unsigned core = SB_CG_MEMORY | SB_CG_PIDS | SB_CG_CPU;
	mask_list(h.usable & (core | SB_CG_IO), a, sizeof(a));
	fact(p, "cgroup_controllers", (h.usable & core) == core, "this user can limit: %s%s", a,
	     (h.usable & core) == core ? "" : " (no delegated cgroup for the rest)");
}

int sb_probe_run(sb_probe *ret, sb_error *err)
{
	sb_probe p = {0};

	probe_userns(&p);
	probe_overlay(&p);
	probe_fuse(&p);
	probe_seccomp(&p);
	probe_cgroup(&p);
	int abi = sb_landlock_abi();
	if (abi > 0)
		fact(&p, "landlock", true, "ABI %d", abi);
	else
		fact(&p, "landlock", false, "not available in this kernel");
	bool o2 = sb_safefs_have_openat2();
	fact(&p, "openat2", o2, "%s",
	     o2 ? "RESOLVE_BENEATH works" : "refused; the O_PATH walk is used instead");
	*ret = p;
	return 0;
}

const sb_probe_fact *sb_probe_get(const sb_probe *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->facts[i].name, name) == 0)
			return &p->facts[i];
	return NULL;
}

/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "cgroup-internal.h"
#include "buf.h"
#include "fileio.h"

#define CG_FILE_MAX (16u << 20)

/* ---- file helpers ---- */

int sb_cgroup__write(int dir_fd, const char *file, const char *value)
{
	_cleanup_close_ int fd = openat(dir_fd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	/* One write: cgroup files take a value per write(2) call. */
	ssize_t n = RETRY_EINTR(write(fd, value, strlen(value)));
	if (n < 0)
		return -errno;
	return (size_t)n == strlen(value) ? 0 : -EIO;
}

int sb_cgroup__writef(int dir_fd, const char *file, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= sizeof(buf))
		return -EINVAL;
	return sb_cgroup__write(dir_fd, file, buf);
}

/* Read fd to EOF (cgroup and /proc files report size 0), malloc'd, NUL-terminated. */
static int read_fd_all(int fd, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t cap = 2048, len = 0;

	for (;;) {
		if (!buf || cap - len < 2) {
			if (cap > CG_FILE_MAX)
				return -EFBIG;
			char *n = realloc(buf, cap *= 2);
			if (!n)
				return -ENOMEM;
			buf = n;
		}
		ssize_t r = RETRY_EINTR(read(fd, buf + len, cap - len - 1));
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	return 0;
}

int sb_cgroup__read(int dir_fd, const char *file, char **ret)
{
	_cleanup_close_ int fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	return read_fd_all(fd, ret);
}

int sb_cgroup__read_number(int dir_fd, const char *file, uint64_t *ret)
{
	_cleanup_free_ char *t = NULL;
	int r = sb_cgroup__read(dir_fd, file, &t);
	return r < 0 ? r : sb_cgroup__number(t, ret);
}

int sb_cgroup__read_keyed(int dir_fd, const char *file, const char *key, uint64_t *ret)
{
	_cleanup_free_ char *t = NULL;
	int r = sb_cgroup__read(dir_fd, file, &t);
	return r < 0 ? r : sb_cgroup__keyed(t, key, ret);
}

bool sb_cgroup__exists(int dir_fd, const char *file)
{
	return faccessat(dir_fd, file, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

void sb_cgroup__sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Is pid (pinned by a pidfd) in a cgroup named name, or beneath one? */
static bool pid_in_cgroup(pid_t pid, const char *name)
{
	_cleanup_free_ char *t = NULL;
	_cleanup_close_ int fd = -1;
	size_t nl = strlen(name);
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read_fd_all(fd, &t) < 0)
		return false;
	for (const char *p = t; (p = strstr(p, name)); p += nl)
		if (p > t && p[-1] == '/' && (p[nl] == '\n' || p[nl] == '/' || !p[nl]))
			return true;
	return false;
}

/* Add pid to set; true when it was not there yet. */
static bool pidset_add(struct sb_cgroup__pidset *set, pid_t pid)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i] == pid)
			return false;
	pid_t *v = sb_grow(set->v, &set->cap, set->n, sizeof(*v), 64);
	if (!v)
		return true; /* only the count suffers */
	set->v = v;
	set->v[set->n++] = pid;
	return true;
}

int sb_cgroup__kill_listed(int dir_fd, const char *name, struct sb_cgroup__pidset *seen)
{
	_cleanup_free_ char *t = NULL;
	int killed = 0;

	if (sb_cgroup__read(dir_fd, "cgroup.procs", &t) < 0)
		return 0;
	for (char *p = t; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		p = end;
		while (*p == '\n')
			p++;
		if (pid <= 1)
			continue;
		/*
		 * Pin the pid first, then check it is still ours: if the process
		 * died and the number was reused by a process elsewhere, the
		 * check fails and nothing is sent.
		 */
		_cleanup_close_ int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
		if (pfd < 0)
			continue;
		if (!pid_in_cgroup((pid_t)pid, name))
			continue;
		/* A task killed in an earlier round may still be on its way out. */
		if (syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) == 0 &&
		    pidset_add(seen, (pid_t)pid))
			killed++;
	}
	return killed;
}

bool sb_cgroup__all_empty(const sb_cgroup *cg)
{
	for (size_t i = 0; i < cg->n_dirs; i++) {
		_cleanup_free_ char *t = NULL;
		if (cg->dirs[i].dir_fd < 0)
			continue;
		if (sb_cgroup__read(cg->dirs[i].dir_fd, "cgroup.procs", &t) < 0)
			continue;
		if (t[strspn(t, "\n")] != 0)
			return false;
	}
	return true;
}

int sb_cgroup__open_dir(struct sb_cgroup__dir *d, bool v1, sb_error *err)
{
	d->dir_fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (d->dir_fd < 0)
		return sb_error_errno(err, errno, "cgroup: open '%s'", d->path);
	d->procs_fd = openat(d->dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (d->procs_fd < 0)
		return sb_error_errno(err, errno, "cgroup: open '%s/cgroup.procs'", d->path);
	if (!v1) {
		d->join_fd = d->procs_fd;
		return 0;
	}
	d->join_fd = openat(d->dir_fd, "tasks", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (d->join_fd < 0)
		return sb_error_errno(err, errno, "cgroup: open '%s/tasks'", d->path);
	return 0;
}

/* ---- host discovery ---- */

static int read_path(const char *path, char **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return read_fd_all(fd, ret);
}

void sb_cgroup__host_release(struct sb_cgroup__host *h)
{
	free(h->proc_self_cgroup);
	h->proc_self_cgroup = NULL;
}

int sb_cgroup__host_load(struct sb_cgroup__host *h, sb_error *err)
{
	_cleanup_free_ char *mi = NULL;
	int r;

	r = read_path("/proc/self/mountinfo", &mi);
	if (r < 0)
		return sb_error_errno(err, -r, "cgroup: reading /proc/self/mountinfo");
	r = sb_cgroup__parse_mountinfo(mi, h->mounts, SB_CG_MAX_MOUNTS, &h->n_mounts);
	if (r < 0)
		return sb_error_errno(err, -r, "cgroup: parsing /proc/self/mountinfo");
	r = read_path("/proc/self/cgroup", &h->proc_self_cgroup);
	if (r < 0)
		return sb_error_errno(err, -r, "cgroup: reading /proc/self/cgroup");
	return 0;
}

static void host_freep(struct sb_cgroup__host **h)
{
	if (*h) {
		sb_cgroup__host_release(*h);
		free(*h);
	}
}

/* ---- the object ---- */

int sb_cgroup_limits_set_cpus(sb_cgroup_limits *lim, uint64_t millicpus, sb_error *err)
{
	uint64_t period = 100000, quota;

	if (millicpus == 0)
		return sb_error_set(err, EINVAL, "--cpus: must be more than 0");
	quota = millicpus * period / 1000;
	/* The kernel takes quotas of 1 ms or more: stretch the period for tiny shares. */
	if (quota < 1000) {
		period = 1000000;
		quota = millicpus * period / 1000;
	}
	if (quota < 1000)
		return sb_error_set(err, ERANGE, "--cpus: %" PRIu64 ".%03" PRIu64 " is below 0.001",
				    millicpus / 1000, millicpus % 1000);
	lim->cpu_quota_us = quota;
	lim->cpu_period_us = period;
	return 0;
}

static unsigned requested_controllers(const sb_cgroup_limits *lim)
{
	unsigned want = 0;
	if (lim->memory_max)
		want |= SB_CG_MEMORY;
	if (lim->pids_max)
		want |= SB_CG_PIDS;
	if (lim->cpu_quota_us || lim->cpu_burst_us)
		want |= SB_CG_CPU;
	if (lim->io_weight)
		want |= SB_CG_IO;
	return want;
}

static sb_cgroup_version pick_version(const struct sb_cgroup__host *h, const sb_cgroup_options *opt,
				      unsigned want)
{
	unsigned v1 = 0, avail = 0;
	bool v2 = false;
	char dir[PATH_MAX];

	for (size_t i = 0; i < h->n_mounts; i++) {
		if (h->mounts[i].v2)
			v2 = true;
		else
			v1 |= h->mounts[i].controllers;
	}
	if (!v1)
		return v2 ? SB_CGROUP_V2 : SB_CGROUP_AUTO;
	if (!v2 || sb_cgroup__v2_parent(h, opt, dir, sizeof(dir), &avail) < 0)
		return SB_CGROUP_V1;
	/* Hybrid: v2 only when it has what v1 would give us, and what was asked for. */
	want |= SB_CG_MEMORY | SB_CG_PIDS | SB_CG_CPU;
	return (avail & want) == want ? SB_CGROUP_V2 : SB_CGROUP_V1;
}

int sb_cgroup_new(const sb_cgroup_limits *lim, const sb_cgroup_options *opt, sb_cgroup **ret,
		  sb_error *err)
{
	static const sb_cgroup_options no_opt = {0};
	static const sb_cgroup_limits no_lim = {0};
	_cleanup_(host_freep) struct sb_cgroup__host *h = calloc(1, sizeof(*h));
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg = calloc(1, sizeof(*cg));
	uint32_t rnd = 0;
	int r;

	if (!h || !cg)
		return sb_error_errno(err, ENOMEM, "cgroup");
	if (!opt)
		opt = &no_opt;
	if (!lim)
		lim = &no_lim;
	if (opt->parent && opt->parent[0] != '/')
		return sb_error_set(err, EINVAL, "cgroup: parent '%s' must start with '/'",
				    opt->parent);
	for (size_t i = 0; i < SB_CG_MAX_DIRS; i++) {
		cg->dirs[i].dir_fd = -1;
		cg->dirs[i].procs_fd = -1;
		cg->dirs[i].join_fd = -1;
		cg->join_fds[i] = -1;
	}
	cg->lim = *lim;
	if (!cg->lim.cpu_period_us)
		cg->lim.cpu_period_us = 100000;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 8;
	snprintf(cg->name, sizeof(cg->name), "snapbox-%d-%08x", (int)getpid(), rnd);

	r = sb_cgroup__host_load(h, err);
	if (r < 0)
		return r;
	cg->version =
	    opt->version ? opt->version : pick_version(h, opt, requested_controllers(&cg->lim));
	switch (cg->version) {
	case SB_CGROUP_V1:
		r = sb_cgroup__v1_create(cg, h, opt, err);
		break;
	case SB_CGROUP_V2:
		r = sb_cgroup__v2_create(cg, h, opt, err);
		break;
	default:
		cg->destroyed = true;
		return sb_error_set(err, EOPNOTSUPP,
				    "cgroup: no cgroup filesystem is mounted (limits cannot be "
				    "enforced)");
	}
	if (r < 0)
		return r;
	for (size_t i = 0; i < cg->n_dirs; i++) {
		cg->join_fds[i] = cg->dirs[i].join_fd;
	}
	*ret = TAKE_PTR(cg);
	return 0;
}

size_t sb_cgroup_join_fds(const sb_cgroup *cg, const int **ret_fds)
{
	*ret_fds = cg->join_fds;
	return cg->n_dirs;
}

int sb_cgroup_clone_fd(const sb_cgroup *cg)
{
	if (cg->destroyed || cg->version != SB_CGROUP_V2 || cg->n_dirs == 0)
		return -1;
	return cg->dirs[0].dir_fd;
}

int sb_cgroup_join(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ssize_t w;
		do
			w = write(fds[i], "0", 1);
		while (w < 0 && errno == EINTR);
		if (w < 0)
			return -errno;
	}
	return 0;
}

int sb_cgroup_add_pid(sb_cgroup *cg, pid_t pid, sb_error *err)
{
	for (size_t i = 0; i < cg->n_dirs; i++) {
		char buf[32];
		int w = snprintf(buf, sizeof(buf), "%d", (int)pid);
		if (RETRY_EINTR(write(cg->dirs[i].procs_fd, buf, (size_t)w)) < 0)
			return sb_error_errno(err, errno, "cgroup: moving pid %d into '%s'",
					      (int)pid, cg->dirs[i].path);
	}
	return 0;
}

int sb_cgroup_sample(sb_cgroup *cg)
{
	if (cg->destroyed)
		return 0;
	return cg->version == SB_CGROUP_V2 ? sb_cgroup__v2_sample(cg) : sb_cgroup__v1_sample(cg);
}

int sb_cgroup_report_read(sb_cgroup *cg, sb_cgroup_report *ret, sb_error *err)
{
	sb_cgroup_report rep;

	memset(&rep, 0xff, sizeof(rep)); /* every field SB_CGROUP_UNKNOWN */
	if (cg->destroyed)
		return sb_error_set(err, ESTALE, "cgroup '%s': already removed", cg->name);
	sb_cgroup_sample(cg);
	if (cg->version == SB_CGROUP_V2)
		sb_cgroup__v2_report(cg, &rep);
	else
		sb_cgroup__v1_report(cg, &rep);
	*ret = rep;
	return 0;
}

int sb_cgroup_kill_all(sb_cgroup *cg, sb_error *err)
{
	if (cg->destroyed)
		return 0;
	return cg->version == SB_CGROUP_V2 ? sb_cgroup__v2_kill(cg, err)
					   : sb_cgroup__v1_kill(cg, err);
}

/* join_fd is procs_fd itself on v2: closed once. */
static void dir_close(struct sb_cgroup__dir *d)
{
	if (d->join_fd != d->procs_fd)
		CLOSE_FD(d->join_fd);
	d->join_fd = -1;
	CLOSE_FD(d->procs_fd);
	CLOSE_FD(d->dir_fd);
}

int sb_cgroup_destroy(sb_cgroup *cg, sb_error *err)
{
	int r, ret = 0;

	if (cg->destroyed)
		return 0;
	r = sb_cgroup_kill_all(cg, err);
	if (r < 0)
		ret = r;
	for (size_t i = cg->n_dirs; i-- > 0;) {
		struct sb_cgroup__dir *d = &cg->dirs[i];
		dir_close(d);
		cg->join_fds[i] = -1;
		if (!d->created)
			continue;
		/* An exiting task can hold the directory busy for a moment after SIGKILL. */
		for (int tries = 0; tries < 200; tries++) {
			if (rmdir(d->path) == 0 || errno == ENOENT) {
				d->created = false;
				break;
			}
			if (errno != EBUSY)
				break;
			sb_cgroup__sleep_ms(10);
		}
		if (d->created && ret == 0)
			ret = sb_error_errno(err, errno, "cgroup: rmdir '%s'", d->path);
	}
	cg->destroyed = ret == 0;
	return ret;
}

void sb_cgroup_free(sb_cgroup *cg)
{
	if (!cg)
		return;
	if (!cg->destroyed)
		(void)sb_cgroup_destroy(cg, NULL);
	for (size_t i = 0; i < SB_CG_MAX_DIRS; i++)
		dir_close(&cg->dirs[i]);
	free(cg);
}

sb_cgroup_version sb_cgroup_version_of(const sb_cgroup *cg)
{
	return cg->version;
}

unsigned sb_cgroup_controllers(const sb_cgroup *cg)
{
	unsigned c = 0;
	for (size_t i = 0; i < cg->n_dirs; i++)
		c |= cg->dirs[i].controllers;
	return c;
}

const char *sb_cgroup_path(const sb_cgroup *cg)
{
	return cg->n_dirs ? cg->dirs[0].path : "";
}

const char *sb_cgroup_path_of(const sb_cgroup *cg, sb_cgroup_controller controller)
{
	for (size_t i = 0; i < cg->n_dirs; i++)
		if (cg->dirs[i].controllers & controller)
			return cg->dirs[i].path;
	return NULL;
}

void sb_cgroup_layer_status(const sb_cgroup *cg, const char *why_not, sb_layer_status *st)
{
	char list[96] = "";
	size_t len = 0;

	if (!cg) {
		sb_layer_status_set(st, "cgroup", SB_LAYER_UNAVAILABLE, NULL);
		sb_layer_status_reason(st, "%s", why_not ? why_not : "no cgroup");
		return;
	}
	static const unsigned order[] = {SB_CG_MEMORY, SB_CG_PIDS, SB_CG_CPU, SB_CG_IO};
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		if (!(cg->limited & order[i]))
			continue;
		int w = snprintf(list + len, sizeof(list) - len, "%s%s", len ? "," : "",
				 sb_cgroup_controller_name(order[i]));
		if (w > 0 && (size_t)w < sizeof(list) - len)
			len += (size_t)w;
	}
	const char *v = cg->version == SB_CGROUP_V2 ? "v2" : "v1";
	sb_layer_status_set(st, "cgroup", cg->degraded[0] ? SB_LAYER_DEGRADED : SB_LAYER_ENFORCED,
			    len ? "%s(%s)" : "%s%s", v, list);
	if (cg->degraded[0])
		sb_layer_status_reason(st, "%s", cg->degraded);
}

/* "snapbox-<pid>-<8 hex>" whose pid is no more. */
static bool stale_name(const char *name)
{
	char *end;
	if (strncmp(name, "snapbox-", 8) != 0 || !isdigit((unsigned char)name[8]))
		return false;
	long pid = strtol(name + 8, &end, 10);
	if (*end != '-' || strlen(end + 1) != 8 || strspn(end + 1, "0123456789abcdef") != 8)
		return false;
	if (pid <= 0 || pid == getpid())
		return false;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int sb_cgroup_sweep(const sb_cgroup_options *opt, sb_error *err)
{
	static const sb_cgroup_options no_opt = {0};
	_cleanup_(host_freep) struct sb_cgroup__host *h = calloc(1, sizeof(*h));
	int removed = 0, r;

	if (!h)
		return sb_error_errno(err, ENOMEM, "cgroup");
	if (!opt)
		opt = &no_opt;
	r = sb_cgroup__host_load(h, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < h->n_mounts; i++) {
		const struct sb_cgroup__mount *m = &h->mounts[i];
		char own[PATH_MAX], base[PATH_MAX], path[PATH_MAX];
		unsigned first = m->controllers & -m->controllers;

		if (opt->parent)
			snprintf(own, sizeof(own), "%s", opt->parent);
		else if (sb_cgroup__own_path(h->proc_self_cgroup, m->v2, first, own, sizeof(own)) <
			 0)
			continue;
		if (sb_cgroup__dir_in_mount(m, own, base, sizeof(base)) < 0)
			continue;
		_cleanup_closedir_ DIR *d = opendir(base);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_type != DT_DIR || !stale_name(de->d_name))
				continue;
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", base, de->d_name) >=
			    sizeof(path))
				continue;
			if (rmdir(path) == 0)
				removed++;
		}
	}
	return removed;
}

int sb_cgroup_probe(const sb_cgroup_options *opt, sb_cgroup_host *ret, sb_error *err)
{
	static const sb_cgroup_options no_opt = {0};
	_cleanup_(host_freep) struct sb_cgroup__host *h = calloc(1, sizeof(*h));
	sb_cgroup_host out = {0};
	char dir[PATH_MAX];
	unsigned usable1 = 0;
	int r;

	if (!h)
		return sb_error_errno(err, ENOMEM, "cgroup");
	if (!opt)
		opt = &no_opt;
	r = sb_cgroup__host_load(h, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < h->n_mounts; i++)
		if (h->mounts[i].v2)
			out.v2_mounted = true;
	sb_cgroup__v1_probe(h, opt, &out.v1_mounted, &usable1);
	if (out.v2_mounted &&
	    sb_cgroup__v2_parent(h, opt, dir, sizeof(dir), &out.v2_available) == 0 &&
	    access(dir, W_OK) == 0)
		out.usable = out.v2_available;
	out.version = pick_version(h, opt, 0);
	if (out.version == SB_CGROUP_V1)
		out.usable = usable1;
	*ret = out;
	return 0;
}

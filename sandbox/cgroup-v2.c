/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup-internal.h"

/* v2 controllers we enable for a run when offered, limits or not (for the report). */
#define V2_WANTED (SB_CG_MEMORY | SB_CG_PIDS | SB_CG_CPU)

static void note_degraded(sb_cgroup *cg, const char *what)
{
	size_t len = strlen(cg->degraded);
	snprintf(cg->degraded + len, sizeof(cg->degraded) - len, "%s%s", len ? "; " : "", what);
}

static const struct sb_cgroup__mount *v2_mount(const struct sb_cgroup__host *h)
{
	for (size_t i = 0; i < h->n_mounts; i++)
		if (h->mounts[i].v2)
			return &h->mounts[i];
	return NULL;
}

int sb_cgroup__v2_parent(const struct sb_cgroup__host *h, const sb_cgroup_options *opt, char *buf,
			 size_t size, unsigned *ret_available)
{
	const struct sb_cgroup__mount *m = v2_mount(h);
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *ctl = NULL;
	char own[PATH_MAX];
	int r;

	if (!m)
		return -ENOENT;
	if (opt->parent) {
		if ((size_t)snprintf(own, sizeof(own), "%s", opt->parent) >= sizeof(own))
			return -ENAMETOOLONG;
	} else {
		r = sb_cgroup__own_path(h->proc_self_cgroup, true, 0, own, sizeof(own));
		if (r < 0)
			return r;
	}
	r = sb_cgroup__dir_in_mount(m, own, buf, size);
	if (r < 0)
		return r;
	*ret_available = 0;
	fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (sb_cgroup__read(fd, "cgroup.controllers", &ctl) == 0)
		*ret_available = sb_cgroup__parse_controllers(ctl);
	return 0;
}

/* "+memory" into the parent's subtree_control, unless it is there already. */
static int enable(int parent_fd, unsigned bit)
{
	_cleanup_free_ char *cur = NULL;
	char buf[32];

	if (sb_cgroup__read(parent_fd, "cgroup.subtree_control", &cur) == 0 &&
	    (sb_cgroup__parse_controllers(cur) & bit))
		return 0;
	snprintf(buf, sizeof(buf), "+%s", sb_cgroup_controller_name(bit));
	return sb_cgroup__write(parent_fd, "cgroup.subtree_control", buf);
}

static int write_limit(struct sb_cgroup__dir *d, const char *file, const char *value,
		       const char *controller, sb_error *err)
{
	int r = sb_cgroup__write(d->dir_fd, file, value);
	if (r < 0)
		return sb_error_errno(err, r == -ENOENT ? EOPNOTSUPP : -r,
				      "cgroup v2 '%s': writing '%s' to '%s/%s'", controller, value,
				      d->path, file);
	return 0;
}

static int v2_apply(sb_cgroup *cg, sb_error *err)
{
	const sb_cgroup_limits *lim = &cg->lim;
	struct sb_cgroup__dir *d = &cg->dirs[0];
	char v[64];
	int r;

	if (lim->memory_max) {
		snprintf(v, sizeof(v), "%" PRIu64, lim->memory_max);
		r = write_limit(d, "memory.max", v, "memory", err);
		if (r < 0)
			return r;
		/* Absent when the kernel runs without swap accounting; then there is no swap to cap. */
		r = sb_cgroup__write(d->dir_fd, "memory.swap.max", "0");
		if (r < 0 && r != -ENOENT)
			return sb_error_errno(err, -r,
					      "cgroup v2 'memory': writing '0' to "
					      "'%s/memory.swap.max'",
					      d->path);
		cg->limited |= SB_CG_MEMORY;
	}
	if (lim->pids_max) {
		snprintf(v, sizeof(v), "%" PRIu64, lim->pids_max);
		r = write_limit(d, "pids.max", v, "pids", err);
		if (r < 0)
			return r;
		cg->limited |= SB_CG_PIDS;
	}
	if (lim->cpu_quota_us) {
		snprintf(v, sizeof(v), "%" PRIu64 " %" PRIu64, lim->cpu_quota_us,
			 lim->cpu_period_us);
		r = write_limit(d, "cpu.max", v, "cpu", err);
		if (r < 0)
			return r;
		cg->limited |= SB_CG_CPU;
	}
	if (lim->cpu_burst_us) {
		snprintf(v, sizeof(v), "%" PRIu64, lim->cpu_burst_us);
		r = sb_cgroup__write(d->dir_fd, "cpu.max.burst", v);
		if (r == -ENOENT)
			note_degraded(cg, "no CPU burst: the kernel has no cpu.max.burst");
		else if (r < 0)
			return sb_error_errno(
			    err, -r, "cgroup v2 'cpu': writing '%s/cpu.max.burst'", d->path);
	}
	if (lim->io_weight) {
		snprintf(v, sizeof(v), "default %u", lim->io_weight);
		r = sb_cgroup__write(d->dir_fd, "io.weight", v);
		if (r == -ENOENT) {
			/* BFQ has its own file: same default (100), capped at 1000. */
			snprintf(v, sizeof(v), "%u", MAX(1u, MIN(1000u, lim->io_weight)));
			r = sb_cgroup__write(d->dir_fd, "io.bfq.weight", v);
		}
		if (r < 0)
			return sb_error_errno(err, r == -ENOENT ? EOPNOTSUPP : -r,
					      "cgroup v2 'io': no io.weight in '%s' (the I/O "
					      "scheduler does not do weights)",
					      d->path);
		cg->limited |= SB_CG_IO;
	}
	return 0;
}

int sb_cgroup__v2_create(sb_cgroup *cg, const struct sb_cgroup__host *h,
			 const sb_cgroup_options *opt, sb_error *err)
{
	struct sb_cgroup__dir *d = &cg->dirs[0];
	_cleanup_close_ int pfd = -1;
	char parent[PATH_MAX];
	unsigned avail = 0, need = 0, enabled = 0;
	int r;

	if (cg->lim.memory_max)
		need |= SB_CG_MEMORY;
	if (cg->lim.pids_max)
		need |= SB_CG_PIDS;
	if (cg->lim.cpu_quota_us || cg->lim.cpu_burst_us)
		need |= SB_CG_CPU;
	if (cg->lim.io_weight)
		need |= SB_CG_IO;

	r = sb_cgroup__v2_parent(h, opt, parent, sizeof(parent), &avail);
	if (r == -ENOENT && !v2_mount(h))
		return sb_error_set(err, EOPNOTSUPP, "cgroup v2: no cgroup2 filesystem is mounted");
	if (r < 0)
		return sb_error_errno(err, r == -EXDEV ? EOPNOTSUPP : -r,
				      "cgroup v2: finding our cgroup");
	if (need & ~avail) {
		unsigned miss = need & ~avail;
		return sb_error_set(err, EOPNOTSUPP,
				    "cgroup v2 '%s': the controller is not available in '%s' "
				    "(not in its cgroup.controllers); the limit cannot be enforced",
				    sb_cgroup_controller_name(miss & -miss), parent);
	}
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return sb_error_errno(err, errno, "cgroup v2: open '%s'", parent);

	for (unsigned bit = 1; bit <= SB_CG_IO; bit <<= 1) {
		if (!((V2_WANTED | need) & avail & bit))
			continue;
		r = enable(pfd, bit);
		if (r >= 0) {
			enabled |= bit;
			continue;
		}
		if (!(need & bit))
			continue; /* only for the report: do without */
		if (r == -EBUSY)
			return sb_error_set(
			    err, EOPNOTSUPP,
			    "cgroup v2 '%s': cannot enable it below '%s': that cgroup "
			    "holds processes (give a parent cgroup, e.g. a systemd "
			    "scope with Delegate=yes); the limit cannot be enforced",
			    sb_cgroup_controller_name(bit), parent);
		return sb_error_set(
		    err, (r == -EACCES || r == -EPERM) ? EOPNOTSUPP : -r,
		    "cgroup v2 '%s': cannot enable it in '%s/cgroup.subtree_control' "
		    "(%s); the limit cannot be enforced",
		    sb_cgroup_controller_name(bit), parent, strerror(-r));
	}

	if ((size_t)snprintf(d->path, sizeof(d->path), "%s/%s", parent, cg->name) >=
	    sizeof(d->path))
		return sb_error_set(err, ENAMETOOLONG, "cgroup v2: path too long under '%s'",
				    parent);
	if (mkdir(d->path, 0755) < 0) {
		int e = errno;
		if (e == EACCES || e == EPERM || e == EROFS)
			return sb_error_set(err, EOPNOTSUPP,
					    "cgroup v2: cannot create '%s' (%s): no delegated "
					    "cgroup; limits cannot be enforced",
					    d->path, strerror(e));
		return sb_error_errno(err, e, "cgroup v2: mkdir '%s'", d->path);
	}
	d->created = true;
	d->controllers = enabled;
	cg->n_dirs = 1;
	r = sb_cgroup__open_dir(d, false, err);
	if (r < 0)
		return r;
	return v2_apply(cg, err);
}

int sb_cgroup__v2_sample(sb_cgroup *cg)
{
	struct sb_cgroup__dir *d = &cg->dirs[0];
	uint64_t v;

	if (cg->n_dirs == 0 || d->dir_fd < 0)
		return 0;
	if (sb_cgroup__read_number(d->dir_fd, "pids.current", &v) == 0)
		cg->sampled_pids_peak = MAX(cg->sampled_pids_peak, v);
	if (sb_cgroup__read_number(d->dir_fd, "memory.current", &v) == 0)
		cg->sampled_memory_peak = MAX(cg->sampled_memory_peak, v);
	return 0;
}

int sb_cgroup__v2_report(sb_cgroup *cg, sb_cgroup_report *rep)
{
	struct sb_cgroup__dir *d = &cg->dirs[0];
	_cleanup_free_ char *stat = NULL;
	uint64_t v;

	if (cg->n_dirs == 0 || d->dir_fd < 0)
		return 0;
	if (d->controllers & SB_CG_MEMORY) {
		if (sb_cgroup__read_number(d->dir_fd, "memory.peak", &v) == 0)
			rep->memory_peak = v;
		else
			rep->memory_peak = cg->sampled_memory_peak;
		if (sb_cgroup__read_keyed(d->dir_fd, "memory.events", "oom_kill", &v) == 0)
			rep->oom_kills = v;
	}
	/* cpu.stat's usage lines are there without the cpu controller; the throttling ones are not. */
	if (sb_cgroup__read(d->dir_fd, "cpu.stat", &stat) == 0) {
		if (sb_cgroup__keyed(stat, "usage_usec", &v) == 0)
			rep->cpu_usec = v;
		if (sb_cgroup__keyed(stat, "nr_periods", &v) == 0)
			rep->cpu_periods = v;
		if (sb_cgroup__keyed(stat, "nr_throttled", &v) == 0)
			rep->cpu_throttled = v;
		if (sb_cgroup__keyed(stat, "throttled_usec", &v) == 0)
			rep->cpu_throttled_usec = v;
	}
	if (d->controllers & SB_CG_PIDS) {
		if (sb_cgroup__read_number(d->dir_fd, "pids.peak", &v) == 0)
			rep->pids_peak = v;
		else
			rep->pids_peak = cg->sampled_pids_peak;
		if (sb_cgroup__read_keyed(d->dir_fd, "pids.events", "max", &v) == 0)
			rep->pids_refused = v;
	}
	return 0;
}

static bool populated(int dir_fd)
{
	uint64_t v;
	/* "populated 0" means no live task here or below; zombies do not count. */
	return sb_cgroup__read_keyed(dir_fd, "cgroup.events", "populated", &v) != 0 || v != 0;
}

static bool frozen(int dir_fd)
{
	uint64_t v;
	return sb_cgroup__read_keyed(dir_fd, "cgroup.events", "frozen", &v) == 0 && v == 1;
}

/* Tasks listed in cgroup.procs (for the count kill_all returns). */
static int count_procs(int dir_fd)
{
	_cleanup_free_ char *t = NULL;
	int n = 0;

	if (sb_cgroup__read(dir_fd, "cgroup.procs", &t) < 0)
		return 0;
	for (const char *p = t; *p; p++)
		if (*p == '\n')
			n++;
	return n;
}

static void pidset_release(struct sb_cgroup__pidset *set)
{
	free(set->v);
}

int sb_cgroup__v2_kill(sb_cgroup *cg, sb_error *err)
{
	struct sb_cgroup__dir *d = &cg->dirs[0];
	_cleanup_(pidset_release) struct sb_cgroup__pidset seen = {0};
	bool have_kill;
	int killed = 0, n_before, r;

	if (cg->n_dirs == 0 || d->dir_fd < 0 || !populated(d->dir_fd))
		return 0;
	n_before = count_procs(d->dir_fd);
	/* cgroup.kill (5.14) kills the whole subtree at once, forks in flight included. */
	r = sb_cgroup__write(d->dir_fd, "cgroup.kill", "1");
	have_kill = r == 0;
	if (r < 0 && r != -ENOENT)
		return sb_error_errno(err, -r, "cgroup v2: writing '%s/cgroup.kill'", d->path);
	if (have_kill)
		killed = n_before;
	for (int round = 0; round < 500; round++) {
		if (!populated(d->dir_fd))
			return killed;
		if (!have_kill) {
			if (sb_cgroup__write(d->dir_fd, "cgroup.freeze", "1") == 0)
				for (int i = 0; i < 100 && !frozen(d->dir_fd); i++)
					sb_cgroup__sleep_ms(5);
			killed += sb_cgroup__kill_listed(d->dir_fd, cg->name, &seen);
			(void)sb_cgroup__write(d->dir_fd, "cgroup.freeze", "0");
		}
		sb_cgroup__sleep_ms(10);
	}
	if (!populated(d->dir_fd))
		return killed;
	return sb_error_set(err, EBUSY, "cgroup '%s': processes survived SIGKILL for 5 s", d->path);
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup-internal.h"

/* Hierarchies a run joins: the limits, the CPU accounting, and the freezer for the kill. */
#define V1_WANTED (SB_CG_MEMORY | SB_CG_PIDS | SB_CG_CPU | SB_CG_CPUACCT | SB_CG_FREEZER)

static void note_degraded(sb_cgroup *cg, const char *what)
{
	size_t len = strlen(cg->degraded);
	snprintf(cg->degraded + len, sizeof(cg->degraded) - len, "%s%s", len ? "; " : "", what);
}

/* The directory our cgroup (or opt->parent) has in hierarchy m. */
static int v1_base(const struct sb_cgroup__host *h, const struct sb_cgroup__mount *m,
		   const sb_cgroup_options *opt, char *buf, size_t size)
{
	char own[PATH_MAX];
	unsigned first = m->controllers & -m->controllers;
	int r;

	if (opt->parent) {
		r = snprintf(own, sizeof(own), "%s", opt->parent) < (int)sizeof(own)
			? 0
			: -ENAMETOOLONG;
	} else {
		r = sb_cgroup__own_path(h->proc_self_cgroup, false, first, own, sizeof(own));
	}
	if (r < 0)
		return r;
	return sb_cgroup__dir_in_mount(m, own, buf, size);
}

int sb_cgroup__v1_probe(const struct sb_cgroup__host *h, const sb_cgroup_options *opt,
			unsigned *ret_mounted, unsigned *ret_usable)
{
	unsigned mounted = 0, usable = 0;

	for (size_t i = 0; i < h->n_mounts; i++) {
		const struct sb_cgroup__mount *m = &h->mounts[i];
		char dir[PATH_MAX];
		if (m->v2)
			continue;
		mounted |= m->controllers;
		if (v1_base(h, m, opt, dir, sizeof(dir)) == 0 && access(dir, W_OK) == 0)
			usable |= m->controllers;
	}
	*ret_mounted = mounted;
	*ret_usable = usable;
	return 0;
}

static int write_limit(sb_cgroup *cg, struct sb_cgroup__dir *d, const char *file, uint64_t v,
		       const char *controller, sb_error *err)
{
	int r = sb_cgroup__writef(d->dir_fd, file, "%" PRIu64, v);
	if (r < 0)
		return sb_error_errno(err, r == -ENOENT ? EOPNOTSUPP : -r,
				      "cgroup v1 '%s': writing %" PRIu64 " to '%s/%s'", controller,
				      v, d->path, file);
	return 0;
}

static int v1_apply(sb_cgroup *cg, sb_error *err)
{
	const sb_cgroup_limits *lim = &cg->lim;
	int r;

	for (size_t i = 0; i < cg->n_dirs; i++) {
		struct sb_cgroup__dir *d = &cg->dirs[i];

		if ((d->controllers & SB_CG_MEMORY) && lim->memory_max) {
			r = write_limit(cg, d, "memory.limit_in_bytes", lim->memory_max, "memory",
					err);
			if (r < 0)
				return r;
			/* memsw is memory + swap, so equal to the limit means no swap at all. */
			r = sb_cgroup__writef(d->dir_fd, "memory.memsw.limit_in_bytes", "%" PRIu64,
					      lim->memory_max);
			if (r == -ENOENT) {
				/* Kernel booted without swap accounting: keep reclaim off swap. */
				(void)sb_cgroup__write(d->dir_fd, "memory.swappiness", "0");
			} else if (r < 0) {
				return sb_error_errno(err, -r,
						      "cgroup v1 'memory': writing "
						      "'%s/memory.memsw.limit_in_bytes'",
						      d->path);
			}
			cg->limited |= SB_CG_MEMORY;
		}
		if ((d->controllers & SB_CG_PIDS) && lim->pids_max) {
			r = write_limit(cg, d, "pids.max", lim->pids_max, "pids", err);
			if (r < 0)
				return r;
			cg->limited |= SB_CG_PIDS;
		}
		if ((d->controllers & SB_CG_CPU) && (lim->cpu_quota_us || lim->cpu_burst_us)) {
			r = write_limit(cg, d, "cpu.cfs_period_us", lim->cpu_period_us, "cpu", err);
			if (r >= 0 && lim->cpu_quota_us)
				r = write_limit(cg, d, "cpu.cfs_quota_us", lim->cpu_quota_us, "cpu",
						err);
			if (r < 0)
				return r;
			if (lim->cpu_burst_us) {
				r = sb_cgroup__writef(d->dir_fd, "cpu.cfs_burst_us", "%" PRIu64,
						      lim->cpu_burst_us);
				if (r == -ENOENT)
					note_degraded(cg, "no CPU burst: the kernel has no "
							  "cpu.cfs_burst_us");
				else if (r < 0)
					return sb_error_errno(err, -r,
							      "cgroup v1 'cpu': writing "
							      "'%s/cpu.cfs_burst_us'",
							      d->path);
			}
			cg->limited |= SB_CG_CPU;
		}
		if ((d->controllers & SB_CG_IO) && lim->io_weight) {
			/*
			 * The v2 scale (1..10000, default 100) as systemd maps it:
			 * BFQ shares the default of 100 (1..1000); CFQ's default
			 * is 500 (10..1000).
			 */
			uint64_t w = lim->io_weight;
			r = sb_cgroup__writef(d->dir_fd, "blkio.bfq.weight", "%" PRIu64,
					      MAX((uint64_t)1, MIN(w, (uint64_t)1000)));
			if (r == -ENOENT)
				r = sb_cgroup__writef(
				    d->dir_fd, "blkio.weight", "%" PRIu64,
				    MAX((uint64_t)10, MIN(w * 5, (uint64_t)1000)));
			if (r < 0)
				return sb_error_errno(err, r == -ENOENT ? EOPNOTSUPP : -r,
						      "cgroup v1 'io': no blkio weight in '%s' "
						      "(the I/O scheduler is not BFQ or CFQ)",
						      d->path);
			cg->limited |= SB_CG_IO;
		}
	}
	return 0;
}

int sb_cgroup__v1_create(sb_cgroup *cg, const struct sb_cgroup__host *h,
			 const sb_cgroup_options *opt, sb_error *err)
{
	unsigned want = V1_WANTED, need = 0, have = 0;
	int r;

	if (cg->lim.memory_max)
		need |= SB_CG_MEMORY;
	if (cg->lim.pids_max)
		need |= SB_CG_PIDS;
	if (cg->lim.cpu_quota_us || cg->lim.cpu_burst_us)
		need |= SB_CG_CPU;
	if (cg->lim.io_weight)
		need |= SB_CG_IO;
	want |= need;

	for (size_t i = 0; i < h->n_mounts; i++) {
		const struct sb_cgroup__mount *m = &h->mounts[i];
		struct sb_cgroup__dir *d;
		char base[PATH_MAX];

		if (m->v2 || !(m->controllers & want) || (m->controllers & have))
			continue; /* also skips a second mount of the same hierarchy */
		if (cg->n_dirs == SB_CG_MAX_DIRS)
			break;
		const char *cname =
		    sb_cgroup_controller_name(m->controllers & want & -(m->controllers & want));
		r = v1_base(h, m, opt, base, sizeof(base));
		if (r < 0) {
			if (m->controllers & need)
				return sb_error_errno(err, r == -EXDEV ? EOPNOTSUPP : -r,
						      "cgroup v1 '%s': our cgroup is not visible "
						      "under '%s'",
						      cname, m->point);
			continue;
		}
		d = &cg->dirs[cg->n_dirs];
		d->controllers = m->controllers;
		if ((size_t)snprintf(d->path, sizeof(d->path), "%s/%s", base, cg->name) >=
		    sizeof(d->path))
			return sb_error_set(err, ENAMETOOLONG, "cgroup v1 '%s': path too long",
					    cname);
		if (mkdir(d->path, 0755) < 0) {
			int e = errno;
			if (!(m->controllers & need))
				continue; /* a hierarchy we only use for reports: do without */
			if (e == EACCES || e == EPERM || e == EROFS)
				return sb_error_set(err, EOPNOTSUPP,
						    "cgroup v1 '%s': cannot create '%s' (%s); the "
						    "limit cannot be enforced",
						    cname, d->path, strerror(e));
			return sb_error_errno(err, e, "cgroup v1 '%s': mkdir '%s'", cname, d->path);
		}
		d->created = true;
		cg->n_dirs++;
		r = sb_cgroup__open_dir(d, true, err);
		if (r < 0)
			return r;
		have |= m->controllers;
	}
	if (need & ~have) {
		unsigned miss = need & ~have;
		return sb_error_set(err, EOPNOTSUPP,
				    "cgroup v1 '%s': no such hierarchy is mounted; the limit "
				    "cannot be enforced",
				    sb_cgroup_controller_name(miss & -miss));
	}
	if (cg->n_dirs == 0)
		return sb_error_set(
		    err, EOPNOTSUPP,
		    "cgroup v1: no hierarchy is writable by this user (no delegated "
		    "cgroup)");
	return v1_apply(cg, err);
}

static struct sb_cgroup__dir *dir_of(sb_cgroup *cg, unsigned controller)
{
	for (size_t i = 0; i < cg->n_dirs; i++)
		if ((cg->dirs[i].controllers & controller) && cg->dirs[i].dir_fd >= 0)
			return &cg->dirs[i];
	return NULL;
}

int sb_cgroup__v1_sample(sb_cgroup *cg)
{
	struct sb_cgroup__dir *d;
	uint64_t v;

	if ((d = dir_of(cg, SB_CG_PIDS)) &&
	    sb_cgroup__read_number(d->dir_fd, "pids.current", &v) == 0)
		cg->sampled_pids_peak = MAX(cg->sampled_pids_peak, v);
	if ((d = dir_of(cg, SB_CG_MEMORY)) &&
	    sb_cgroup__read_number(d->dir_fd, "memory.usage_in_bytes", &v) == 0)
		cg->sampled_memory_peak = MAX(cg->sampled_memory_peak, v);
	return 0;
}

int sb_cgroup__v1_report(sb_cgroup *cg, sb_cgroup_report *rep)
{
	struct sb_cgroup__dir *d;
	uint64_t v;

	if ((d = dir_of(cg, SB_CG_MEMORY))) {
		if (sb_cgroup__read_number(d->dir_fd, "memory.max_usage_in_bytes", &v) == 0)
			rep->memory_peak = v;
		else
			rep->memory_peak = cg->sampled_memory_peak;
		if (sb_cgroup__read_keyed(d->dir_fd, "memory.oom_control", "oom_kill", &v) == 0)
			rep->oom_kills = v;
	}
	if ((d = dir_of(cg, SB_CG_CPUACCT)) &&
	    sb_cgroup__read_number(d->dir_fd, "cpuacct.usage", &v) == 0)
		rep->cpu_usec = v / 1000;
	if ((d = dir_of(cg, SB_CG_CPU))) {
		if (sb_cgroup__read_keyed(d->dir_fd, "cpu.stat", "nr_periods", &v) == 0)
			rep->cpu_periods = v;
		if (sb_cgroup__read_keyed(d->dir_fd, "cpu.stat", "nr_throttled", &v) == 0)
			rep->cpu_throttled = v;
		if (sb_cgroup__read_keyed(d->dir_fd, "cpu.stat", "throttled_time", &v) == 0)
			rep->cpu_throttled_usec = v / 1000;
	}
	if ((d = dir_of(cg, SB_CG_PIDS))) {
		if (sb_cgroup__read_number(d->dir_fd, "pids.peak", &v) == 0)
			rep->pids_peak = v;
		else
			rep->pids_peak = cg->sampled_pids_peak;
		if (sb_cgroup__read_keyed(d->dir_fd, "pids.events", "max", &v) == 0)
			rep->pids_refused = v;
	}
	return 0;
}

static int freeze(struct sb_cgroup__dir *fz, bool on)
{
	int r = sb_cgroup__write(fz->dir_fd, "freezer.state", on ? "FROZEN" : "THAWED");
	if (r < 0 || !on)
		return r;
	/* FREEZING until every task has stopped; a task in an uninterruptible sleep can lag. */
	for (int i = 0; i < 100; i++) {
		_cleanup_free_ char *t = NULL;
		if (sb_cgroup__read(fz->dir_fd, "freezer.state", &t) == 0 &&
		    strncmp(t, "FROZEN", 6) == 0)
			return 0;
		sb_cgroup__sleep_ms(5);
	}
	return -ETIMEDOUT;
}

static void pidset_release(struct sb_cgroup__pidset *set)
{
	free(set->v);
}

int sb_cgroup__v1_kill(sb_cgroup *cg, sb_error *err)
{
	struct sb_cgroup__dir *fz = dir_of(cg, SB_CG_FREEZER);
	_cleanup_(pidset_release) struct sb_cgroup__pidset seen = {0};
	int killed = 0;

	/* ~5 s in all: SIGKILLed tasks in D state take their time to go. */
	for (int round = 0; round < 500; round++) {
		if (sb_cgroup__all_empty(cg))
			return killed;
		/*
		 * Frozen tasks cannot fork, so the list read below is complete;
		 * SIGKILL takes effect at the thaw.
		 */
		if (fz)
			(void)freeze(fz, true);
		for (size_t i = 0; i < cg->n_dirs; i++) {
			int n = sb_cgroup__kill_listed(cg->dirs[i].dir_fd, cg->name, &seen);
			killed += n;
			if (n > 0 || fz)
				break; /* every task is in every hierarchy: one list is enough */
		}
		if (fz)
			(void)freeze(fz, false);
		sb_cgroup__sleep_ms(10);
	}
	if (sb_cgroup__all_empty(cg))
		return killed;
	return sb_error_set(err, EBUSY, "cgroup '%s': processes survived SIGKILL for 5 s",
			    cg->dirs[0].path);
}

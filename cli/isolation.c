/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "cgroup.h"
#include "isolation.h"
#include "layers.h"
#include "parse.h"
#include "rlimit.h"
#include "seccomp.h"

enum { L_SECCOMP, L_CGROUP, L_LANDLOCK, L_RLIMIT, L_COUNT };

struct sb_isolation {
	sb_seccomp *seccomp;
	sb_cgroup *cgroup;
	sb_rlimits rlimits;
	sb_layer_status layers[L_COUNT];
	uint64_t memory_limit;
	char **warnings;
	size_t n_warnings;
};

static void warn(sb_isolation *iso, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	char **v = realloc(iso->warnings, (iso->n_warnings + 1) * sizeof(char *));
	if (!v) {
		free(msg);
		return;
	}
	iso->warnings = v;
	iso->warnings[iso->n_warnings++] = msg;
}

/*
 * Fail closed: a layer the user asked for that cannot be enforced stops the
 * run, unless --allow-degraded, which records it and goes on.
 */
static int not_enforced(sb_isolation *iso, const sb_isolation_opts *o, int layer,
			const sb_error *why, sb_error *err)
{
	sb_layer_status *st = &iso->layers[layer];
	if (!o->allow_degraded)
		return sb_error_set(err, EOPNOTSUPP,
				    "%s cannot be enforced on this host: %s (--allow-degraded runs "
				    "without it)",
				    st->name, why->msg);
	st->state = SB_LAYER_DEGRADED;
	snprintf(st->detail, sizeof(st->detail), "not enforced");
	snprintf(st->reason, sizeof(st->reason), "%.*s", (int)sizeof(st->reason) - 1, why->msg);
	warn(iso, "%s not enforced (--allow-degraded): %s", st->name, why->msg);
	return 0;
}

static int prepare_cgroup(sb_isolation *iso, const sb_isolation_opts *o, sb_error *err)
{
	sb_cgroup_limits lim = {0};
	bool asked = o->memory || o->pids || o->cpus;
	int r = 0;
	if (o->memory)
		r = sb_parse_size(o->memory, &lim.memory_max, err);
	if (r >= 0 && o->pids)
		r = sb_parse_uint64(o->pids, 1, UINT32_MAX, "--pids", &lim.pids_max, err);
	if (r >= 0 && o->cpus) {
		uint64_t milli;
		r = sb_parse_cpus(o->cpus, &milli, err);
		if (r >= 0)
			r = sb_cgroup_limits_set_cpus(&lim, milli, err);
	}
	if (r < 0)
		return r;
	iso->memory_limit = lim.memory_max;
	sb_cgroup_options opt = {0};
	sb_error why = SB_ERROR_INIT;
	r = sb_cgroup_new(&lim, &opt, &iso->cgroup, &why);
	if (r >= 0) {
		sb_cgroup_layer_status(iso->cgroup, NULL, &iso->layers[L_CGROUP]);
		return 0;
	}
	sb_cgroup_layer_status(NULL, why.msg, &iso->layers[L_CGROUP]);
	if (!asked) {
		/* Only accounting was lost: no limit was asked for. */
		warn(iso, "no cgroup for this run (%s): no resource report", why.msg);
		return 0;
	}
	return not_enforced(iso, o, L_CGROUP, &why, err);
}

int sb_isolation_prepare(const sb_isolation_opts *o, const char *workspace,
			 sb_sandbox_config *cfg, sb_isolation **ret, sb_error *err)
{
	_cleanup_(sb_isolation_freep) sb_isolation *iso = calloc(1, sizeof(*iso));
	if (!iso)
		return -ENOMEM;
	sb_rlimits_init(&iso->rlimits);
	int r;

	/* seccomp: the default policy, a Docker/OCI profile, or off when asked. */
	const char *sc = o->seccomp && strcmp(o->seccomp, "default") == 0 ? NULL : o->seccomp;
	r = sb_seccomp_new_from_option(sc, o->net == SB_NET_HOST ? SB_SECCOMP_NET : 0,
				       &iso->seccomp, err);
	if (r < 0)
		return r;
	sb_seccomp_layer_status(iso->seccomp, &iso->layers[L_SECCOMP]);
	for (size_t i = 0; iso->seccomp && i < sb_seccomp_warning_count(iso->seccomp); i++)
		warn(iso, "seccomp: %s", sb_seccomp_warning(iso->seccomp, i));
	cfg->seccomp_prog = iso->seccomp ? sb_seccomp_prog(iso->seccomp) : NULL;

	r = prepare_cgroup(iso, o, err);
	if (r < 0)
		return r;
	if (iso->cgroup) {
		const int *fds;
		cfg->n_cgroup_procs_fds = sb_cgroup_procs_fds(iso->cgroup, &fds);
		cfg->cgroup_procs_fds = fds;
	}

	/* rlimits: no core dumps by default; --nofile and --fsize when asked. */
	r = sb_rlimits_set(&iso->rlimits, RLIMIT_CORE, 0, 0, err);
	if (r >= 0 && o->nofile) {
		uint64_t n;
		r = sb_parse_uint64(o->nofile, 1, 1u << 30, "--nofile", &n, err);
		if (r >= 0)
			r = sb_rlimits_set_nofile(&iso->rlimits, n, err);
	}
	if (r >= 0 && o->fsize) {
		uint64_t n;
		r = sb_parse_size(o->fsize, &n, err);
		if (r >= 0)
			r = sb_rlimits_set_fsize(&iso->rlimits, n, err);
	}
	if (r < 0)
		return r;
	sb_rlimits_layer_status(&iso->rlimits, &iso->layers[L_RLIMIT]);
	cfg->rlimits = iso->rlimits.items;
	cfg->n_rlimits = iso->rlimits.n;

	/*
	 * Landlock's path rules bind to the sandbox's own mounts (the overlay,
	 * the fresh /tmp), so they can only be added inside it, after its
	 * mounts; spawn does not do that yet. Reported, not pretended.
	 */
	sb_layer_status_set(&iso->layers[L_LANDLOCK], "landlock", SB_LAYER_UNAVAILABLE, NULL);
	sb_layer_status_reason(&iso->layers[L_LANDLOCK],
			       "path rules for the sandbox's own mounts are not wired in yet");
	if (o->strict)
		return sb_error_set(err, EOPNOTSUPP,
				    "landlock cannot be enforced: %s (--strict asks for it)",
				    iso->layers[L_LANDLOCK].reason);

	if (o->timeout) {
		uint64_t ns;
		r = sb_parse_duration(o->timeout, &ns, err);
		if (r < 0)
			return r;
		cfg->timeout_ms = (ns + 999999) / 1000000;
		if (cfg->timeout_ms == 0)
			return sb_error_set(err, EINVAL, "--timeout %s: must be at least 1ms",
					    o->timeout);
	}
	(void)workspace;
	*ret = TAKE_PTR(iso);
	return 0;
}

size_t sb_isolation_warning_count(const sb_isolation *iso)
{
	return iso->n_warnings;
}

const char *sb_isolation_warning(const sb_isolation *iso, size_t i)
{
	return iso->warnings[i];
}

int sb_isolation_summary(const sb_isolation *iso, char *buf, size_t size)
{
	return sb_layers_summary(iso->layers, L_COUNT, buf, size);
}

int sb_isolation_finish(sb_isolation *iso, const sb_sandbox_result *res,
			sb_isolation_report *ret, sb_error *err)
{
	sb_isolation_report rep = {
		.cpu_usec = UINT64_MAX,
		.peak_memory = UINT64_MAX,
		.throttled = UINT64_MAX,
		.oom_kills = UINT64_MAX,
		.peak_pids = UINT64_MAX,
		.memory_limit = iso->memory_limit,
	};
	int r = 0;
	if (res) {
		rep.wall_ns = res->wall_ns;
		rep.timed_out = res->timed_out;
		rep.cpu_usec = (uint64_t)(res->rusage.ru_utime.tv_sec + res->rusage.ru_stime.tv_sec) *
				       1000000 +
			       (uint64_t)(res->rusage.ru_utime.tv_usec + res->rusage.ru_stime.tv_usec);
		rep.peak_memory = (uint64_t)res->rusage.ru_maxrss * 1024;
	}
	if (iso->cgroup) {
		/* Nothing outlives the run: kill what is left, then read the totals. */
		r = sb_cgroup_kill_all(iso->cgroup, err);
		sb_cgroup_report cr;
		sb_error e2 = SB_ERROR_INIT;
		if (sb_cgroup_report_read(iso->cgroup, &cr, &e2) >= 0) {
			if (cr.cpu_usec != SB_CGROUP_UNKNOWN)
				rep.cpu_usec = cr.cpu_usec;
			if (cr.memory_peak != SB_CGROUP_UNKNOWN)
				rep.peak_memory = cr.memory_peak;
			rep.throttled = cr.cpu_throttled;
			rep.oom_kills = cr.oom_kills;
			rep.peak_pids = cr.pids_peak;
		}
		int r2 = sb_cgroup_destroy(iso->cgroup, r < 0 ? NULL : err);
		if (r >= 0)
			r = r2;
	}
	*ret = rep;
	return r;
}

void sb_isolation_free(sb_isolation *iso)
{
	if (!iso)
		return;
	sb_seccomp_free(iso->seccomp);
	if (iso->cgroup) {
		sb_cgroup_destroy(iso->cgroup, NULL);
		sb_cgroup_free(iso->cgroup);
	}
	for (size_t i = 0; i < iso->n_warnings; i++)
		free(iso->warnings[i]);
	free(iso->warnings);
	free(iso);
}

static void add_u64(cJSON *j, const char *k, uint64_t v)
{
	if (v == UINT64_MAX)
		cJSON_AddNullToObject(j, k);
	else
		cJSON_AddNumberToObject(j, k, (double)v);
}

cJSON *sb_isolation_report_json(const sb_isolation_report *r)
{
	cJSON *j = cJSON_CreateObject();
	add_u64(j, "wall_ms", r->wall_ns / 1000000);
	add_u64(j, "cpu_ms", r->cpu_usec == UINT64_MAX ? UINT64_MAX : r->cpu_usec / 1000);
	add_u64(j, "peak_memory", r->peak_memory);
	add_u64(j, "memory_limit", r->memory_limit ? r->memory_limit : UINT64_MAX);
	add_u64(j, "throttled_periods", r->throttled);
	add_u64(j, "oom_kills", r->oom_kills);
	add_u64(j, "peak_pids", r->peak_pids);
	cJSON_AddBoolToObject(j, "timed_out", r->timed_out);
	return j;
}

static const char *size_str(uint64_t v, char *buf, size_t size)
{
	if (v == UINT64_MAX)
		return "?";
	if (v % (1u << 20) == 0 && v >= (1u << 20))
		snprintf(buf, size, "%" PRIu64 "M", v >> 20);
	else
		snprintf(buf, size, "%.1fM", (double)v / (1 << 20));
	return buf;
}

void sb_isolation_report_print(FILE *f, const sb_isolation_report *r)
{
	char a[32], b[32];
	fprintf(f, "resources: wall %.2fs", (double)r->wall_ns / 1e9);
	if (r->cpu_usec != UINT64_MAX)
		fprintf(f, ", cpu %.2fs", (double)r->cpu_usec / 1e6);
	if (r->peak_memory != UINT64_MAX)
		fprintf(f, ", peak memory %s", size_str(r->peak_memory, a, sizeof(a)));
	if (r->throttled != UINT64_MAX && r->throttled)
		fprintf(f, ", throttled %" PRIu64 " periods", r->throttled);
	if (r->peak_pids != UINT64_MAX)
		fprintf(f, ", peak processes %" PRIu64, r->peak_pids);
	fputc('\n', f);
	if (r->oom_kills != UINT64_MAX && r->oom_kills > 0)
		fprintf(f, "killed: out of memory (limit %s)\n",
			r->memory_limit ? size_str(r->memory_limit, b, sizeof(b)) : "none");
}

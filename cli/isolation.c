/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "isolation.h"
#include "landlock.h"
#include "layers.h"
#include "parse.h"
#include "rlimit.h"
#include "seccomp.h"

enum { L_SECCOMP, L_CGROUP, L_LANDLOCK, L_RLIMIT, L_COUNT };

/* Mounts the sandbox makes itself: their Landlock rules are added inside (landlock.h). */
static const char *const inside_writable[] = {"/tmp", "/dev/shm", "/dev/pts"};

struct sb_isolation {
	sb_seccomp *seccomp;
	sb_cgroup *cgroup;
	sb_landlock *landlock;
	sb_rlimits rlimits;
	sb_layer_status layers[L_COUNT];
	uint64_t memory_limit;
	char namespaces[160]; /* "userns mountns ... netns=none overlay=kernel" */
	char timeout[48];     /* "timeout=2s" or "" */
	const char *ll_paths[1 + ARRAY_SIZE(inside_writable)];
	char not_enforced[SB_ISOLATION_NOTE_MAX];
	char **warnings;
	size_t n_warnings;
};

static void warn(sb_isolation *iso, const char *fmt, ...) _printf_(2, 3);
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

static void note_not_enforced(sb_isolation *iso, const char *fmt, ...) _printf_(2, 3);
static void note_not_enforced(sb_isolation *iso, const char *fmt, ...)
{
	size_t len = strlen(iso->not_enforced);
	va_list ap;
	if (len + 2 >= sizeof(iso->not_enforced))
		return;
	if (len)
		iso->not_enforced[len++] = '\n';
	va_start(ap, fmt);
	vsnprintf(iso->not_enforced + len, sizeof(iso->not_enforced) - len, fmt, ap);
	va_end(ap);
}

/* A measured size: "64M", "1.5M". */
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

/* A limit, exactly as sb_parse_size reads it back: "64M", "1G", "1536K", "1000" bytes. */
static const char *limit_str(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "KMGT";
	for (int i = 3; i >= 0; i--) {
		uint64_t u = 1ull << (10 * (i + 1));
		if (v >= u && v % u == 0) {
			snprintf(buf, size, "%" PRIu64 "%c", v / u, units[i]);
			return buf;
		}
	}
	snprintf(buf, size, "%" PRIu64, v);
	return buf;
}

/* "--memory 64M --pids 64": the flags the user gave, for messages. */
static void asked_flags(const sb_isolation_opts *o, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s%s%s%s%s%s", o->memory ? "--memory " : "",
		 o->memory ? o->memory : "", o->memory && (o->pids || o->cpus) ? " " : "",
		 o->pids ? "--pids " : "", o->pids ? o->pids : "", o->pids && o->cpus ? " " : "",
		 o->cpus ? "--cpus " : "", o->cpus ? o->cpus : "");
}

/* "v1(memory=64M,pids=64,cpus=0.5)": the limits in force, for the summary. */
static void cgroup_detail(sb_isolation *iso, const sb_cgroup_limits *lim, uint64_t millicpus)
{
	sb_layer_status *st = &iso->layers[L_CGROUP];
	char list[96] = "", a[32];
	size_t len = 0;
	int w;

	if (lim->memory_max) {
		w = snprintf(list, sizeof(list), "memory=%s",
			     limit_str(lim->memory_max, a, sizeof(a)));
		len = w > 0 ? (size_t)w : 0;
	}
	if (lim->pids_max && len < sizeof(list)) {
		w = snprintf(list + len, sizeof(list) - len, "%spids=%" PRIu64, len ? "," : "",
			     lim->pids_max);
		len += w > 0 ? (size_t)w : 0;
	}
	if (millicpus && len < sizeof(list)) {
		w = snprintf(list + len, sizeof(list) - len, "%scpus=%" PRIu64, len ? "," : "",
			     millicpus / 1000);
		len += w > 0 ? (size_t)w : 0;
		if (millicpus % 1000 && len < sizeof(list)) {
			char frac[8];
			snprintf(frac, sizeof(frac), "%03" PRIu64, millicpus % 1000);
			for (int i = 2; i > 0 && frac[i] == '0'; i--)
				frac[i] = 0;
			w = snprintf(list + len, sizeof(list) - len, ".%s", frac);
			len += w > 0 ? (size_t)w : 0;
		}
	}
	const char *v = sb_cgroup_version_of(iso->cgroup) == SB_CGROUP_V2 ? "v2" : "v1";
	if (list[0])
		snprintf(st->detail, sizeof(st->detail), "%s(%s)", v, list);
	else
		snprintf(st->detail, sizeof(st->detail), "%s", v);
}

static int prepare_cgroup(sb_isolation *iso, const sb_isolation_opts *o, sb_error *err)
{
	sb_cgroup_limits lim = {0};
	uint64_t milli = 0;
	bool asked = o->memory || o->pids || o->cpus;
	int r = 0;
	if (o->memory)
		r = sb_parse_size(o->memory, &lim.memory_max, err);
	if (r >= 0 && o->memory && lim.memory_max == 0)
		r = sb_error_set(err, EINVAL, "--memory '%s': must be more than 0", o->memory);
	if (r >= 0 && o->pids)
		r = sb_parse_uint64(o->pids, 1, UINT32_MAX, "--pids", &lim.pids_max, err);
	if (r >= 0 && o->cpus) {
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
		cgroup_detail(iso, &lim, milli);
		return 0;
	}
	if (r == -ENOMEM || r == -EINVAL)
		return sb_error_set(err, -r, "%s", why.msg);
	sb_cgroup_layer_status(NULL, why.msg, &iso->layers[L_CGROUP]);
	if (!asked) {
		/* Only accounting is lost: no limit was asked for. */
		warn(iso, "no cgroup for this run (%s): no resource report", why.msg);
		return 0;
	}
	/* Fail closed: a limit asked for that cannot be enforced stops the run. */
	char flags[256];
	asked_flags(o, flags, sizeof(flags));
	iso->memory_limit = 0;
	if (!o->allow_degraded)
		return sb_error_set(err, EOPNOTSUPP,
				    "cgroup layer cannot enforce %s on this host: %s; "
				    "--allow-degraded runs without these limits",
				    flags, why.msg);
	warn(iso, "cgroup limits NOT enforced (--allow-degraded): %s: %s", flags, why.msg);
	note_not_enforced(iso, "cgroup: %s (%s)", flags, why.msg);
	return 0;
}

/* Rules the parent can add: host inodes the sandbox sees through bind mounts. */
static int landlock_parent_rules(sb_isolation *iso, const sb_isolation_opts *o,
				 const sb_sandbox_config *cfg, sb_error *err)
{
	for (size_t i = 0; i < o->n_rw; i++) {
		struct stat st;
		if (stat(o->rw[i], &st) < 0)
			return sb_error_errno(err, errno, "--rw '%s'", o->rw[i]);
		int r = sb_landlock_allow_write(iso->landlock, o->rw[i], err);
		if (r < 0)
			return r;
	}
	int r = sb_landlock_allow_devices(iso->landlock, err);
	if (r < 0)
		return r;
	/*
	 * The command may already write to its stdio through the fds; allowing
	 * the files behind them keeps /dev/stdout and /dev/stderr (reopened via
	 * /proc/self/fd) working when they are files or a terminal. Pipes and
	 * sockets cannot carry rules and are not restricted anyway.
	 */
	const int fds[3] = {cfg->stdin_fd >= 0 ? cfg->stdin_fd : 0,
			    cfg->stdout_fd >= 0 ? cfg->stdout_fd : 1,
			    cfg->stderr_fd >= 0 ? cfg->stderr_fd : 2};
	for (size_t i = 0; i < 3; i++) {
		struct stat st;
		int fl = fcntl(fds[i], F_GETFL);
		if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || fstat(fds[i], &st) < 0)
			continue;
		if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
			continue;
		sb_error ignored = SB_ERROR_INIT;
		(void)sb_landlock_allow_write_fd(iso->landlock, fds[i], "stdio", &ignored);
	}
	return 0;
}

static int prepare_landlock(sb_isolation *iso, const sb_isolation_opts *o, const char *workspace,
			    sb_sandbox_config *cfg, sb_error *err)
{
	sb_layer_status *st = &iso->layers[L_LANDLOCK];
	sb_error why = SB_ERROR_INIT;
	/* Scoping only where the kernel has it, so an older ABI is not "degraded" for it. */
	sb_landlock_flags fl =
	    sb_landlock_abi() >= 6 ? SB_LANDLOCK_SCOPE_SIGNAL | SB_LANDLOCK_SCOPE_ABSTRACT_UNIX : 0;
	int r = sb_landlock_new(fl, &iso->landlock, &why);
	if (r == -ENOMEM)
		return sb_error_set(err, ENOMEM, "%s", why.msg);
	if (r < 0) {
		sb_layer_status_set(st, "landlock", SB_LAYER_UNAVAILABLE, NULL);
		sb_layer_status_reason(st, "%s", why.msg);
		if (o->strict && !o->allow_degraded)
			return sb_error_set(err, EOPNOTSUPP,
					    "landlock layer cannot be enforced on this host: %s; "
					    "--strict refuses to run without it (--allow-degraded "
					    "runs anyway)",
					    why.msg);
		warn(iso,
		     "Landlock is not available (%s): writes are confined by read-only mounts only",
		     why.msg);
		note_not_enforced(iso, "landlock: %s", why.msg);
		return 0;
	}
	r = landlock_parent_rules(iso, o, cfg, err);
	if (r < 0)
		return r;
	size_t n = 0;
	if (workspace)
		iso->ll_paths[n++] = workspace;
	for (size_t i = 0; i < ARRAY_SIZE(inside_writable); i++)
		iso->ll_paths[n++] = inside_writable[i];
	cfg->landlock_ruleset_fd = sb_landlock_fd(iso->landlock);
	cfg->landlock_abi = sb_landlock_abi_of(iso->landlock);
	cfg->landlock_paths = iso->ll_paths;
	cfg->n_landlock_paths = n;
	sb_landlock_layer_status(iso->landlock, st);
	return 0;
}

static int prepare_rlimits(sb_isolation *iso, const sb_isolation_opts *o, sb_sandbox_config *cfg,
			   sb_error *err)
{
	/* No core dumps by default; --nofile and --fsize when asked. */
	int r = sb_rlimits_set(&iso->rlimits, RLIMIT_CORE, 0, 0, err);
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
	return 0;
}

static int prepare_timeout(sb_isolation *iso, const sb_isolation_opts *o, sb_sandbox_config *cfg,
			   sb_error *err)
{
	if (!o->timeout)
		return 0;
	uint64_t ns;
	int r = sb_parse_duration(o->timeout, &ns, err);
	if (r < 0)
		return r;
	cfg->timeout_ms = (ns + 999999) / 1000000;
	if (cfg->timeout_ms == 0)
		return sb_error_set(err, EINVAL, "--timeout '%s': must be at least 1ms",
				    o->timeout);
	snprintf(iso->timeout, sizeof(iso->timeout), "timeout=%.32s", o->timeout);
	return 0;
}

/* The namespaces and the workspace view, as spawn will make them from cfg. */
static void describe_sandbox(sb_isolation *iso, const sb_sandbox_config *cfg)
{
	const char *overlay = cfg->workspace_mount ? "kernel"
			      : cfg->workspace_src ? "fuse"
						   : "none";
	snprintf(iso->namespaces, sizeof(iso->namespaces),
		 "%smountns pidns ipcns utsns cgroupns netns=%s overlay=%s",
		 sb_sandbox_uses_userns(cfg) ? "userns " : "",
		 cfg->net == SB_NET_HOST ? "host" : "none", overlay);
}

int sb_isolation_prepare(const sb_isolation_opts *o, const char *workspace, sb_sandbox_config *cfg,
			 sb_isolation **ret, sb_error *err)
{
	_cleanup_(sb_isolation_freep) sb_isolation *iso = calloc(1, sizeof(*iso));
	if (!iso)
		return sb_error_errno(err, ENOMEM, "isolation layers");
	sb_rlimits_init(&iso->rlimits);
	describe_sandbox(iso, cfg);
	int r;

	/* Values first: a typo must not cost a cgroup or a profile parse. */
	if ((r = prepare_timeout(iso, o, cfg, err)) < 0 ||
	    (r = prepare_rlimits(iso, o, cfg, err)) < 0)
		return r;

	/* seccomp: the default policy, a Docker/OCI profile, or off when asked. */
	const char *sc = o->seccomp && strcmp(o->seccomp, "default") == 0 ? NULL : o->seccomp;
	r = sb_seccomp_new_from_option(sc, o->net == SB_NET_HOST ? SB_SECCOMP_NET : 0,
				       &iso->seccomp, err);
	if (r < 0)
		return r;
	sb_seccomp_layer_status(iso->seccomp, &iso->layers[L_SECCOMP]);
	if (!iso->seccomp)
		warn(iso, "the seccomp filter is off (--seccomp unconfined)");
	for (size_t i = 0; iso->seccomp && i < sb_seccomp_warning_count(iso->seccomp); i++)
		warn(iso, "seccomp: %s", sb_seccomp_warning(iso->seccomp, i));
	cfg->seccomp_prog = iso->seccomp ? sb_seccomp_prog(iso->seccomp) : NULL;
	cfg->seccomp_flags = sb_seccomp_filter_flags(iso->seccomp);

	if ((r = prepare_landlock(iso, o, workspace, cfg, err)) < 0)
		return r;

	/* Last: a cgroup is a side effect on the host, made once nothing else can fail. */
	if ((r = prepare_cgroup(iso, o, err)) < 0)
		return r;
	if (iso->cgroup) {
		const int *fds;
		cfg->n_cgroup_procs_fds = sb_cgroup_join_fds(iso->cgroup, &fds);
		cfg->cgroup_procs_fds = fds;
		cfg->cgroup_clone_fd = sb_cgroup_clone_fd(iso->cgroup);
	}
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
	int n = snprintf(buf, size, "%s ", iso->namespaces);
	if (n < 0 || (size_t)n >= size)
		return -ENOBUFS;
	int r = sb_layers_summary(iso->layers, L_COUNT, buf + n, size - (size_t)n);
	if (r < 0)
		return r;
	n += r;
	if (iso->timeout[0]) {
		int w = snprintf(buf + n, size - (size_t)n, " %s", iso->timeout);
		if (w < 0 || (size_t)w >= size - (size_t)n)
			return -ENOBUFS;
		n += w;
	}
	return n;
}

int sb_isolation_finish(sb_isolation *iso, const sb_sandbox_result *res, sb_isolation_report *ret,
			sb_error *err)
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
	memcpy(rep.not_enforced, iso->not_enforced, sizeof(rep.not_enforced));
	if (res) {
		rep.wall_ns = res->wall_ns;
		rep.timed_out = res->timed_out;
		rep.cpu_usec =
		    (uint64_t)(res->rusage.ru_utime.tv_sec + res->rusage.ru_stime.tv_sec) *
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
	sb_landlock_free(iso->landlock);
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
	cJSON_AddBoolToObject(j, "oom_killed",
			      r->oom_kills != UINT64_MAX && r->oom_kills > 0 && r->memory_limit);
	cJSON *ne = cJSON_AddArrayToObject(j, "not_enforced");
	for (const char *p = r->not_enforced; ne && *p;) {
		size_t len = strcspn(p, "\n");
		char line[SB_ISOLATION_NOTE_MAX];
		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		cJSON_AddItemToArray(ne, cJSON_CreateString(line));
		p += len;
		if (*p)
			p++;
	}
	return j;
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
			r->memory_limit ? limit_str(r->memory_limit, b, sizeof(b)) : "none");
	for (const char *p = r->not_enforced; *p;) {
		size_t len = strcspn(p, "\n");
		fprintf(f, "not enforced: %.*s\n", (int)len, p);
		p += len;
		if (*p)
			p++;
	}
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rlimit.h"

void sb_rlimits_init(sb_rlimits *rl)
{
	memset(rl, 0, sizeof(*rl));
	rl->items[0].resource = RLIMIT_CORE;
	rl->items[0].limit.rlim_cur = 0;
	rl->items[0].limit.rlim_max = 0;
	rl->n = 1;
}

static const char *resource_name(int resource)
{
	switch (resource) {
	case RLIMIT_CORE:
		return "core";
	case RLIMIT_NOFILE:
		return "nofile";
	case RLIMIT_FSIZE:
		return "fsize";
	case RLIMIT_NPROC:
		return "nproc";
	case RLIMIT_AS:
		return "as";
	case RLIMIT_STACK:
		return "stack";
	case RLIMIT_CPU:
		return "cpu";
	case RLIMIT_MEMLOCK:
		return "memlock";
	default:
		return "rlimit";
	}
}

static void fmt_rlim(char *buf, size_t size, rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, size, "unlimited");
	else
		snprintf(buf, size, "%" PRIu64, (uint64_t)v);
}

int sb_rlimits_set(sb_rlimits *rl, int resource, rlim_t soft, rlim_t hard, sb_error *err)
{
	struct rlimit cur;
	char a[32], b[32];
	size_t i;

	if (resource < 0 || resource >= RLIM_NLIMITS)
		return sb_error_set(err, EINVAL, "rlimit: unknown resource %d", resource);
	if (soft > hard) {
		fmt_rlim(a, sizeof(a), soft);
		fmt_rlim(b, sizeof(b), hard);
		return sb_error_set(err, EINVAL, "rlimit %s: soft limit %s above hard limit %s",
				    resource_name(resource), a, b);
	}
	if (getrlimit(resource, &cur) < 0)
		return sb_error_errno(err, errno, "getrlimit %s", resource_name(resource));
	/*
	 * Raising a hard limit needs CAP_SYS_RESOURCE in the initial user
	 * namespace; a child in its own user namespace never has that, even
	 * when snapbox runs as root, so refuse here where it can be named.
	 */
	if (hard > cur.rlim_max && geteuid() != 0) {
		fmt_rlim(a, sizeof(a), hard);
		fmt_rlim(b, sizeof(b), cur.rlim_max);
		return sb_error_set(err, EPERM,
				    "rlimit %s: %s is above the current hard limit %s (raise it "
				    "with ulimit -H first)",
				    resource_name(resource), a, b);
	}
	for (i = 0; i < rl->n; i++)
		if (rl->items[i].resource == resource)
			break;
	if (i == rl->n) {
		if (rl->n == SB_RLIMITS_MAX)
			return sb_error_set(err, ENOSPC, "rlimit: more than %d limits",
					    SB_RLIMITS_MAX);
		rl->n++;
	}
	rl->items[i].resource = resource;
	rl->items[i].limit.rlim_cur = soft;
	rl->items[i].limit.rlim_max = hard;
	return 0;
}

int sb_rlimits_set_nofile(sb_rlimits *rl, uint64_t n, sb_error *err)
{
	if (n < 3 || n >= RLIM_INFINITY)
		return sb_error_set(err, EINVAL, "nofile %" PRIu64 ": must be at least 3", n);
	return sb_rlimits_set(rl, RLIMIT_NOFILE, (rlim_t)n, (rlim_t)n, err);
}

int sb_rlimits_set_fsize(sb_rlimits *rl, uint64_t bytes, sb_error *err)
{
	if (bytes >= RLIM_INFINITY)
		return sb_error_set(err, EINVAL, "fsize %" PRIu64 ": too large", bytes);
	return sb_rlimits_set(rl, RLIMIT_FSIZE, (rlim_t)bytes, (rlim_t)bytes, err);
}

const sb_rlimit *sb_rlimits_get(const sb_rlimits *rl, int resource)
{
	for (size_t i = 0; i < rl->n; i++)
		if (rl->items[i].resource == resource)
			return &rl->items[i];
	return NULL;
}

int sb_rlimits_apply(const sb_rlimit *items, size_t n, int *ret_failed)
{
	for (size_t i = 0; i < n; i++) {
		if (setrlimit(items[i].resource, &items[i].limit) < 0) {
			if (ret_failed)
				*ret_failed = items[i].resource;
			return -errno;
		}
	}
	return 0;
}

void sb_rlimits_layer_status(const sb_rlimits *rl, sb_layer_status *st)
{
	char buf[SB_LAYER_DETAIL_MAX] = "";
	size_t len = 0;

	for (size_t i = 0; i < rl->n && len < sizeof(buf); i++) {
		char v[32];
		fmt_rlim(v, sizeof(v), rl->items[i].limit.rlim_max);
		int w = snprintf(buf + len, sizeof(buf) - len, "%s%s=%s", i ? "," : "",
				 resource_name(rl->items[i].resource), v);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	sb_layer_status_set(st, "rlimit", SB_LAYER_ENFORCED, "%s", buf);
}

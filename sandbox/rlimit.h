/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Resource limits of the sandboxed command: RLIMIT_CORE 0 always (a crash
 * must not drop a core file full of secrets into the workspace), plus the
 * optional nofile / fsize limits the user asked for.
 *
 * Parent:
 *   sb_rlimits rl;
 *   sb_rlimits_init(&rl);                       core 0
 *   r = sb_rlimits_set_nofile(&rl, 1024, &err);  optional
 *   r = sb_rlimits_set_fsize(&rl, bytes, &err);  optional
 *
 * Child (after no_new_privs and Landlock, before seccomp; async-signal-safe):
 *   for (i < rl.n) setrlimit(rl.items[i].resource, &rl.items[i].limit);
 *   or: r = sb_rlimits_apply(rl.items, rl.n, &failed_resource);
 *
 * sb_rlimits is a plain value (no heap), copied freely. Limits are checked
 * in the parent against the current hard limit: raising a hard limit needs
 * CAP_SYS_RESOURCE in the initial user namespace, which a rootless child
 * never has, so asking for more fails early with -EPERM naming the value.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include "error.h"
#include "layers.h"

#define SB_RLIMITS_MAX 8

typedef struct sb_rlimit {
	int resource; /* RLIMIT_* */
	struct rlimit limit;
} sb_rlimit;

typedef struct sb_rlimits {
	sb_rlimit items[SB_RLIMITS_MAX];
	size_t n;
} sb_rlimits;

/* Start with RLIMIT_CORE 0/0. */
void sb_rlimits_init(sb_rlimits *rl);

/*
 * Set (or replace) one limit. soft <= hard. -EINVAL bad values, -EPERM hard
 * above the current hard limit without privilege, -ENOSPC table full.
 */
int sb_rlimits_set(sb_rlimits *rl, int resource, rlim_t soft, rlim_t hard, sb_error *err);

/* Soft = hard = n open files (n >= 3: stdin, stdout, stderr). */
int sb_rlimits_set_nofile(sb_rlimits *rl, uint64_t n, sb_error *err);
/* Soft = hard = bytes: a write past it raises SIGXFSZ (kills by default), or EFBIG if ignored. */
int sb_rlimits_set_fsize(sb_rlimits *rl, uint64_t bytes, sb_error *err);

/* The entry for resource, or NULL. */
const sb_rlimit *sb_rlimits_get(const sb_rlimits *rl, int resource);

/*
 * Child side: setrlimit each item in order. Async-signal-safe. On failure
 * returns -errno and, if ret_failed is not NULL, the resource at fault.
 */
int sb_rlimits_apply(const sb_rlimit *items, size_t n, int *ret_failed);

/* ENFORCED "core=0,nofile=1024,fsize=1048576". */
void sb_rlimits_layer_status(const sb_rlimits *rl, sb_layer_status *st);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What this host can enforce, for `snapbox doctor` (and for picking
 * backends). Each fact is a name, a yes/no and a one-line detail; cli/
 * prints them as a table or JSON.
 *
 *   sb_probe p;
 *   r = sb_probe_run(&p, &err);      fills p.facts[0 .. p.n)
 *   for (i < p.n) print p.facts[i].name, ok ? "yes" : "no", p.facts[i].detail
 *
 * Facts, in this order (names are stable, for --json):
 *   userns               unshare(CLONE_NEWUSER) works for the current user
 *   userns_unprivileged  an unprivileged user may create one (the sysctls
 *                        kernel.unprivileged_userns_clone, user.max_user_namespaces,
 *                        kernel.apparmor_restrict_unprivileged_userns, and a
 *                        try as uid 65534 when we are root)
 *   overlay_userns       overlayfs mounts inside a user namespace (tried in
 *                        a forked child, in a temporary directory)
 *   fuse                 /dev/fuse opens read-write
 *   fusermount3          found in PATH (setuid root, or we are root)
 *   seccomp              seccomp filters can be installed (PR_GET_SECCOMP,
 *                        and kill_process/errno in actions_avail)
 *   cgroup               version in use (v1, v2, none)
 *   cgroup_controllers   which of memory, pids, cpu, io this user can limit
 *   landlock             the Landlock ABI (0 = none)
 *   openat2              openat2 with RESOLVE_BENEATH works
 *
 * The probe forks (overlay, userns tries) and waits for those children;
 * it must not be called from a multithreaded process. Temporary
 * directories go under $TMPDIR (or /tmp) and are removed.
 */

#include <stdbool.h>
#include <stddef.h>
#include "error.h"

#define SB_PROBE_MAX	    16
#define SB_PROBE_DETAIL_MAX 256

typedef struct sb_probe_fact {
	const char *name; /* static, see above */
	bool ok;
	char detail[SB_PROBE_DETAIL_MAX];
} sb_probe_fact;

typedef struct sb_probe {
	sb_probe_fact facts[SB_PROBE_MAX];
	size_t n;
} sb_probe;

/* Never fails for a missing feature (that is a fact); -errno only for ENOMEM and such. */
int sb_probe_run(sb_probe *ret, sb_error *err);

/* The fact called name, or NULL. */
const sb_probe_fact *sb_probe_get(const sb_probe *p, const char *name);

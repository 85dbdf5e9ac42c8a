/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The state of one isolation layer of a run (seccomp, landlock, cgroup,
 * rlimit, ...), as the run summary, the snapshot manifest and `doctor` show
 * it. Each layer module fills one of these (sb_seccomp_layer_status(), ...);
 * cli/ decides what a state means for the exit status (fail closed: a layer
 * the user asked for that is not ENFORCED stops the run unless
 * --allow-degraded).
 *
 *   sb_layer_status st[4];
 *   sb_seccomp_layer_status(sc, &st[0]);     "seccomp=default(62 rules)"
 *   sb_landlock_layer_status(ll, &st[1]);    "landlock=abi7"
 *   ...
 *   sb_layers_summary(st, 4, line, sizeof(line));
 *     -> "seccomp=default(62 rules) landlock=abi7 cgroup=v1(memory,pids,cpu) rlimit=core=0"
 *
 * Summary tokens: ENFORCED "name=detail" (or "name=on" with no detail),
 * DISABLED "name=off", UNAVAILABLE "name=unavailable", DEGRADED
 * "name=degraded(detail)". Reasons are not in the line (they are long);
 * print them from st[i].reason.
 */

#include <stdarg.h>
#include <stddef.h>
#include "error.h"

typedef enum sb_layer_state {
	SB_LAYER_ENFORCED = 0, /* applied in full */
	SB_LAYER_UNAVAILABLE,  /* this host (kernel, permissions) cannot apply it */
	SB_LAYER_DISABLED,     /* the user turned it off (e.g. --seccomp unconfined) */
	SB_LAYER_DEGRADED,     /* applied, but weaker than asked; reason says how */
} sb_layer_state;

#define SB_LAYER_DETAIL_MAX 128
#define SB_LAYER_REASON_MAX 256

typedef struct sb_layer_status {
	const char *name; /* static string: "seccomp", "landlock", "cgroup", "rlimit" */
	sb_layer_state state;
	char detail[SB_LAYER_DETAIL_MAX]; /* short, for the summary: "default(62 rules)" */
	char reason[SB_LAYER_REASON_MAX]; /* why not ENFORCED; empty when it is */
} sb_layer_status;

/* "enforced", "unavailable", "disabled", "degraded" */
const char *sb_layer_state_name(sb_layer_state state);

/* Fill st: name and state, detail from fmt (may be NULL), reason cleared. */
void sb_layer_status_set(sb_layer_status *st, const char *name, sb_layer_state state,
			 const char *fmt, ...) _printf_(4, 5);

/* Set the reason (formatted); keeps name, state and detail. */
void sb_layer_status_reason(sb_layer_status *st, const char *fmt, ...) _printf_(2, 3);

/*
 * One line, layers separated by a space, into buf (always NUL-terminated
 * when size > 0). Returns the length written, or -ENOBUFS when it had to be
 * truncated.
 */
int sb_layers_summary(const sb_layer_status *layers, size_t n, char *buf, size_t size);

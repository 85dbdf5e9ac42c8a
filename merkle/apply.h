/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Apply: land a session's staged changes (baseline -> staged) in the
 * workspace, whose state now is `current` (a fresh scan).
 *
 *   1. the staged changes: diff(baseline, staged), limited to `paths` when
 *      given (prefixes; the rest stay staged)
 *   2. drift: diff(baseline, current). A staged change conflicts when the
 *      workspace changed the same path, an ancestor of it (other than a
 *      mode change of a directory), or something below it. Conflicts are
 *      reported through cb; without SB_APPLY_FORCE, any conflict stops
 *      apply (-ESTALE) before anything is written
 *      Changes to excluded (protected) paths are dropped. Changes that would
 *      make git run code on the host — a repository's config, hooks, info/,
 *      submodule or worktree git dirs, a .git file redirecting elsewhere, in
 *      any repository of the workspace — are reported through cb and stop
 *      apply (-EPERM) unless SB_APPLY_ALLOW_GIT
 *   3. merged = current + the staged changes (edit.h: O(changes x depth))
 *   4. the workspace is brought from current to merged by restore.h's
 *      writer: temp + rename, never through a symlink, protected paths
 *      untouched
 *   5. remaining = merged + the changes not selected by `paths`, the new
 *      staged tree over the new baseline `merged`
 *
 * The caller records `merged` as a snapshot (reason "apply") without
 * re-scanning: the workspace now hashes to it.
 */

#include <stdbool.h>

#include "error.h"
#include "ignore.h"
#include "restore.h"
#include "store.h"

typedef enum sb_apply_flags {
	SB_APPLY_FORCE = 1 << 0,     /* staged changes win over drift */
	SB_APPLY_DRY = 1 << 1,	     /* compute and report, write nothing */
	SB_APPLY_ALLOW_GIT = 1 << 2, /* land changes to git config, hooks and .git redirects */
} sb_apply_flags;

typedef struct sb_apply_opts {
	sb_apply_flags flags;
	const char *const *paths; /* NULL-terminated prefixes, NULL for all */
	const sb_ignore *protect;
} sb_apply_opts;

typedef struct sb_apply_result {
	sb_id merged;
	bool has_remaining;
	sb_id remaining;
	uint64_t applied;   /* staged changes landed */
	uint64_t conflicts; /* reported through cb */
	uint64_t git;	    /* changes to git config/hooks (refused without ALLOW_GIT) */
	uint64_t excluded;  /* changes to excluded paths: dropped, never written */
	sb_restore_stats written;
} sb_apply_result;

/* path: relative, valid during the call; why: "changed in the workspace too" etc. */
typedef void (*sb_apply_conflict_fn)(void *userdata, const char *path, size_t len, const char *why);

int sb_apply(sb_store *s, int root_fd, const sb_id *baseline, const sb_id *staged,
	     const sb_id *current, const sb_apply_opts *opts, sb_apply_conflict_fn cb,
	     void *userdata, sb_apply_result *ret, sb_error *err);

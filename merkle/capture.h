/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Capture: the workspace as it is now, as a snapshot (or just as a root id).
 *
 *   1. exclusions: --exclude patterns + the workspace's .snapboxignore
 *   2. scan with the workspace's stat cache (only changed files are read)
 *   3. SB_CAPTURE_DRY: stop here, return the root (status, diff against the
 *      workspace). Objects written are flushed, never referenced by anything
 *      yet: the next snapshot reuses them, gc drops them otherwise.
 *   4. if the root equals the head snapshot's root (snapshot.h: what the
 *      workspace was last made equal to) and SB_CAPTURE_NEW is not set, reuse
 *      that snapshot (result.reused)
 *   5. otherwise flush the store, count changes against the parent, and
 *      write the manifest (snapshot.h) — in that order, so a manifest never
 *      names a missing object
 *   6. make it the head; save the stat cache (unless it is the caller's)
 *
 * The caller holds the workspace lock (for SB_CAPTURE_DRY it may not; the
 * stat cache is then not saved).
 */

#include <stdbool.h>

#include "diff.h"
#include "scan.h"
#include "snapshot.h"
#include "workspace.h"

typedef enum sb_capture_flags {
	SB_CAPTURE_DRY = 1 << 0,	/* compute the root id only, write no manifest */
	SB_CAPTURE_NEW = 1 << 1,	/* write a new snapshot even when nothing changed */
	SB_CAPTURE_NO_CACHE = 1 << 2,	/* hash every file (ignore the stat cache) */
	SB_CAPTURE_SAVE_CACHE = 1 << 3, /* with DRY: the caller holds the lock, save the cache */
} sb_capture_flags;

typedef struct sb_capture_opts {
	sb_capture_flags flags;
	const char *reason; /* default "manual" */
	const char *message;
	char *const *command; /* NULL-terminated, may be NULL */
	int exit_status;      /* -1: none */
	const char *isolation;
	const char *const *excludes; /* NULL-terminated extra patterns, may be NULL */
	/*
	 * The caller's stat cache (sb_statcache_load'ed from the workspace's
	 * "index"), or NULL: capture loads and saves its own. A caller's cache
	 * is used for the scan and not saved: the caller saves it, after adding
	 * records of its own (restore: the files it wrote).
	 */
	sb_statcache *cache;
	sb_scan_warn_fn warn;
	sb_scan_progress_fn progress;
	void *userdata;
} sb_capture_opts;

typedef struct sb_capture_result {
	int64_t id; /* the snapshot written or reused; -1 with DRY */
	bool reused;
	sb_id root;
	int64_t parent; /* latest snapshot before this capture, -1: none */
	sb_scan_stats scan;
	sb_diff_counts changes; /* against parent (not filled with DRY) */
} sb_capture_result;

#define SB_CAPTURE_OPTS_INIT      \
	{                         \
		.exit_status = -1 \
	}

/*
 * The exclusions a capture uses: the given patterns plus the workspace's
 * .snapboxignore. Restore and apply use the same set as the paths they must
 * never touch. A .snapboxignore that is not a regular file (a symlink, a
 * fifo) is not read: warn (may be NULL) says so, and the capture goes on.
 */
struct sb_ignore;
int sb_capture_exclusions(sb_workspace *w, char *const *patterns, sb_scan_warn_fn warn,
			  void *userdata, struct sb_ignore **ret, sb_error *err);

int sb_capture(sb_workspace *w, const sb_capture_opts *opts, sb_capture_result *ret, sb_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * gc: forget the old snapshots of one workspace, then drop every object
 * that nothing in the store needs any more.
 *
 *   1. Open the store exclusively (store.h: -EBUSY while any other snapbox
 *      has it open), read every index whole and check it
 *      (sb_sweep_begin), and lock every workspace area without
 *      waiting (-EBUSY naming the busy workspace).
 *   2. With opts.keep >= 1, the snapshots to forget in opts.workspace_id
 *      (or, when it is NULL, in every workspace, those whose directory is
 *      gone included): all but the newest keep, never the head (what status
 *      compares with) nor the baseline of a pending session.
 *   3. Live: what every workspace's remaining manifests reach (reach.h),
 *      its session's baseline and staged trees, and then, after those of
 *      every workspace, every id its stat cache names (a scan trusts those
 *      without asking the store, scan.h; its files are synced first, so an
 *      older generation cannot come back). Every object reached must be in
 *      an index.
 *   4. Forget the manifests, then sweep the packs (sb_sweep_run).
 *
 * Steps 1-3 change nothing, but for one repair: a stat cache that names an
 * object the store lacks or cannot read is removed (caches_dropped; the
 * next scan reads every file again; a dry run only counts it), as the next
 * scan would otherwise record that object unread. An index, manifest, session file, stat cache
 * file, tree or chunk list that cannot be read stops gc there (-EBADMSG naming it, and
 * saying to run 'snapbox verify'): what it names cannot be told from
 * garbage. With opts.dry_run nothing changes at all and ret says what
 * would. A crash leaves at worst garbage (store.h) or snapshots forgotten
 * whose objects are still there; a second gc finishes the job.
 *
 * gc holds the store exclusively from start to end: nothing it calls may
 * open the store again (sb_workspace_open does), or it waits for itself.
 */

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

typedef struct sb_gc_opts {
	const char *workspace_id; /* the workspace keep applies to; NULL: every one */
	int64_t keep;		  /* the newest this many stay; < 0: forget nothing */
	bool dry_run;
} sb_gc_opts;

/* The snapshots forgotten in one workspace. */
typedef struct sb_gc_forgot {
	char *workspace; /* its path, as its area records it */
	int64_t *ids;	 /* ascending */
	size_t n;
} sb_gc_forgot;

typedef struct sb_gc_result {
	sb_gc_forgot *forgotten; /* one per workspace that forgets any, in area order */
	size_t n_forgotten;
	size_t kept_protected; /* older than the newest keep, kept as head or baseline */
	size_t workspaces;     /* areas visited */
	size_t caches_dropped; /* stat caches naming what the store lacks, removed */
	uint64_t live;	       /* objects reached */
	sb_sweep_stats sweep;
} sb_gc_result;

int sb_gc(const char *store_root, const sb_gc_opts *opts, sb_gc_result *ret, sb_error *err);
void sb_gc_result_release(sb_gc_result *r);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Snapshot manifests: workspaces/<id>/snapshots/<N>.json, numbered from 0 in
 * creation order and never renumbered (gc leaves holes).
 *
 *   {"version":1, "id":N, "parent":N-1|null, "root":"<hex>",
 *    "time":"2026-11-22T12:00:00.123456789Z", "time_ns":..., "reason":"manual",
 *    "message":"...", "command":["argv",...], "exit_status":0|null,
 *    "isolation":"...", "exclusions":["pattern",...],
 *    "stats":{"files":..,"dirs":..,"symlinks":..,"fifos":..,"bytes":..,
 *             "skipped":..,"added":..,"modified":..,"deleted":..}}
 *
 * Durability: the caller flushes the store (sb_store_flush) before
 * sb_snapshot_write, which writes the manifest as N.json.lock, fsyncs it and
 * links it into place (never replacing an existing N), then fsyncs the
 * directory. A crash leaves at worst unreferenced objects, never a manifest
 * pointing at a missing object. Must be called with the workspace locked.
 *
 * sb_snapshot_read rejects (-EBADMSG, naming the file) a manifest that is not
 * valid JSON or lacks a field or has one of the wrong type or value.
 */

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hash.h"
#include "workspace.h"

typedef struct sb_snapshot_stats {
	uint64_t files, dirs, symlinks, fifos, bytes, skipped;
	uint64_t added, modified, deleted; /* against the parent */
} sb_snapshot_stats;

typedef struct sb_snapshot {
	int64_t id;	/* -1 until written */
	int64_t parent; /* -1: none */
	sb_id root;
	int64_t time_ns;
	char *reason;	   /* "baseline", "apply", "pre-apply", "pre-restore", "manual" */
	char *message;	   /* may be NULL */
	char **command;	   /* NULL-terminated argv, may be NULL */
	int exit_status;   /* -1: none */
	char *isolation;   /* may be NULL */
	char **exclusions; /* NULL-terminated, may be NULL */
	sb_snapshot_stats stats;
} sb_snapshot;

void sb_snapshot_init(sb_snapshot *s);
void sb_snapshot_release(sb_snapshot *s);

/* Assigns the next id (greatest existing + 1), sets parent if unset, writes. */
int sb_snapshot_write(sb_workspace *w, sb_snapshot *s, sb_error *err);
int sb_snapshot_read(sb_workspace *w, int64_t id, sb_snapshot *ret, sb_error *err);
/*
 * Forgets the manifests ids[0..n) (gc): each is removed, then the directory
 * is synced once. Their ids are never given out again while a later one
 * stays. Needs the workspace lock.
 */
int sb_snapshot_forget(sb_workspace *w, const int64_t *ids, size_t n, sb_error *err);
/* Ids in ascending order; *ret_ids malloc'd. Ignores files that are not N.json. */
int sb_snapshot_list(sb_workspace *w, int64_t **ret_ids, size_t *ret_n, sb_error *err);
/* Greatest id, or -ENOENT when there is none. */
int sb_snapshot_latest(sb_workspace *w, int64_t *ret_id, sb_error *err);
/*
 * The head: the snapshot the workspace was last made equal to (by snapshot,
 * run's baseline, apply or restore) — what status and diff compare with, as
 * git compares with HEAD. Stored in workspaces/<id>/head. When it is missing
 * or names a snapshot that no longer exists, the latest snapshot stands in.
 * set needs the workspace lock.
 */
int sb_snapshot_head(sb_workspace *w, int64_t *ret_id, sb_error *err);
int sb_snapshot_set_head(sb_workspace *w, int64_t id, sb_error *err);

/* Parse a user-given snapshot id ("3"); -EINVAL naming it otherwise. */
int sb_snapshot_parse_id(const char *s, int64_t *ret_id, sb_error *err);

/* "2026-11-22T12:00:00Z" style UTC time for display (buf >= 32 bytes). */
const char *sb_format_time(int64_t time_ns, char *buf, size_t size);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The object store: content-addressed, zstd-compressed, deduplicated, shared
 * by every workspace under one store directory.
 *
 * Layout under the store root:
 *   packs/pack-<hex>.pack   append-only records (never one file per object)
 *   packs/pack-<hex>.idx    sorted (id, offset, length) table beside each pack,
 *                           with a trailing SHA-256 over the table
 *
 * An object id is SHA-256 over a typed, length-prefixed header plus the
 * uncompressed payload:  "sbobj" type:u8 len:le64 payload.  The payload is
 * stored zstd-compressed (raw when it does not compress). Every byte read back
 * is re-hashed before use, and a mismatch is -EBADMSG naming the object. The
 * file formats are described in store-internal.h.
 *
 * Calling sequence:
 *
 *   sb_store *s;
 *   sb_store_open(root, SB_STORE_WRITE, &s, err);
 *   sb_store_put(s, SB_OBJ_BLOB, data, len, &id, err);   any thread
 *   sb_store_get(s, &id, 0, &type, &data, &len, err);      any thread
 *   sb_store_flush(s, err);   finish the pack: write its index, fsync pack,
 *                             index and packs/ — then, and only then, may a
 *                             manifest that references the objects be renamed
 *                             into place
 *   sb_store_free(s);         an unflushed pack is left without an index:
 *                             unreferenced garbage that gc removes
 *
 * Each writer appends to a pack of its own, created on the first put, so two
 * processes never contend. put() of an id already present anywhere in the
 * store writes nothing. get() of an id written by another process since open
 * re-reads the index list once (if packs/ changed) before giving -ENOENT.
 *
 * put/get/has are safe to call from several threads at once (hashing and
 * compression happen outside the store's lock).
 *
 * Small records are gathered in memory and appended in batches (large ones
 * are written at once), so a failed write may surface in a later put, get or
 * flush, naming the pack. It sticks: objects put() already reported stored
 * are lost, so every later put and flush fails with it and no index ever
 * points at them.
 *
 * Errnos beyond those listed per function: put on a store opened without
 * SB_STORE_WRITE is -EROFS; a payload over SB_OBJ_MAX is -EFBIG. An index
 * whose checksum or contents are wrong does not stop open (so verify can
 * report it): its objects are simply unknown, and a get() miss then says
 * -EBADMSG naming that index instead of -ENOENT.
 *
 * With sb_store_keep_trees(s, true), trees put or read are also kept in
 * memory (up to 8 MiB, objcache.h), so a tree read a second time costs no
 * I/O and no decompression; only bytes already hashed are kept. Off by
 * default: a command that reads each tree once (diff) would only pay for
 * the copies.
 *
 * A store keeps an fd open per pack it reads from, closing idle ones beyond
 * 256 or when the process runs out of fds.
 *
 * Every open store holds flock(LOCK_SH) on the root's gc.lock until it is
 * freed, waiting while a gc holds it; SB_STORE_EXCLUSIVE takes LOCK_EX
 * instead and fails at once (-EBUSY, "in use") when any other open store
 * holds it, so a gc never removes an object a writer is about to rely on
 * (put() of an id present writes nothing). A store that may only be read
 * and whose gc.lock cannot be created is opened without it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hash.h"

typedef struct sb_store sb_store;

typedef enum sb_obj_type {
	SB_OBJ_BLOB = 1,   /* file content, a chunk, or a symlink target */
	SB_OBJ_TREE = 2,   /* a canonical directory listing (tree.h) */
	SB_OBJ_CHUNKS = 3, /* a large file: the ordered list of its chunks (content.h) */
} sb_obj_type;

typedef enum sb_store_flags {
	SB_STORE_WRITE = 1 << 0,     /* open for writing (creates packs/ if missing) */
	SB_STORE_CREATE = 1 << 1,    /* create the store root if it does not exist */
	SB_STORE_EXCLUSIVE = 1 << 2, /* gc: no other process may have the store open */
} sb_store_flags;

/* Counters for tests and -v output: work done since open. */
typedef struct sb_store_stats {
	uint64_t objects_read;	  /* get() calls that returned an object (read or cached) */
	uint64_t cache_hits;	  /* of those, trees served from memory */
	uint64_t objects_written; /* put() calls that appended a new object */
	uint64_t objects_deduped; /* put() calls that found the object present */
	uint64_t bytes_written;	  /* compressed bytes appended to packs */
} sb_store_stats;

int sb_store_open(const char *root, sb_store_flags flags, sb_store **ret, sb_error *err);
void sb_store_free(sb_store *s);

/* The root directory fd (O_PATH not used; CLOEXEC), valid while s lives. */
int sb_store_root_fd(sb_store *s);

/* Largest payload a single object may have. */
#define SB_OBJ_MAX (64u << 20)

int sb_store_put(sb_store *s, sb_obj_type type, const void *data, size_t len, sb_id *ret_id,
		 sb_error *err);

/*
 * The compression level for the chunks of one large file, carried from
 * chunk to chunk by the caller; zeroed before the first. The first chunk
 * new to the store is compressed at levels 1 and 2, and the file keeps
 * level 1 when that cost at most 1/25 more bytes, level 2 otherwise. On
 * tables and already-compressed data level 1 costs 25-30% less CPU for
 * 1-3% more bytes; on logs and source it costs 12% more bytes.
 */
typedef struct sb_put_hint {
	int level; /* 0 until a chunk was compressed both ways */
} sb_put_hint;

/* sb_store_put of a chunk of the file hint belongs to (NULL: a plain put). */
int sb_store_put_hinted(sb_store *s, sb_obj_type type, const void *data, size_t len,
			sb_put_hint *hint, sb_id *ret_id, sb_error *err);
/* The id put() would give, without storing. */
void sb_store_hash(sb_obj_type type, const void *data, size_t len, sb_id *ret_id);

/*
 * Reads and verifies an object. *ret_data is malloc'd (caller frees). With
 * want != 0, an object of another type is -EBADMSG.
 *   -ENOENT   not in the store
 *   -EBADMSG  corrupt: hash mismatch, truncated, bad header, wrong type
 */
int sb_store_get(sb_store *s, const sb_id *id, sb_obj_type want, sb_obj_type *ret_type,
		 void **ret_data, size_t *ret_len, sb_error *err);

bool sb_store_has(sb_store *s, const sb_id *id);

/* Turns the in-memory tree cache on or off (off drops what it holds). */
void sb_store_keep_trees(sb_store *s, bool on);

/*
 * Type and payload length of an object, from the index alone (nothing is read
 * or verified). Like get(), re-reads the index list once before -ENOENT.
 */
int sb_store_stat(sb_store *s, const sb_id *id, sb_obj_type *ret_type, size_t *ret_len,
		  sb_error *err);

/*
 * Makes every object put so far durable and visible to other processes:
 * fsync each pack written since the last flush, then write its index (temp +
 * fsync + rename + fsync packs/). A writer goes on appending to the same pack
 * after a flush (until ~512 MiB); the next flush rewrites that pack's index.
 * Cheap when nothing was written.
 */
int sb_store_flush(sb_store *s, sb_error *err);

void sb_store_get_stats(sb_store *s, sb_store_stats *ret);

/*
 * Scratch mode, for a preview made of objects that must not be stored
 * (stage.h's SB_STAGE_PREVIEW): from sb_store_scratch_begin to
 * sb_store_scratch_end, put() keeps each object it does not find in the
 * store in memory only (hashed, neither compressed nor written, so nothing
 * a flush could make durable), and get(), has() and stat() find those
 * objects too. _end forgets them. -ENOMEM from _begin; nesting is -EBUSY.
 */
int sb_store_scratch_begin(sb_store *s);
void sb_store_scratch_end(sb_store *s);

/*
 * Verification: every object of every indexed pack is read, decompressed and
 * re-hashed; every index checksum is checked. Each bad object or file is
 * reported through cb (id may be NULL for a damaged pack/index file) and
 * verification goes on. Returns the number of problems found (>= 0), or a
 * negative errno when the store could not be read at all.
 */
typedef void (*sb_store_problem_fn)(void *userdata, const sb_id *id, const char *what);
int sb_store_verify_objects(sb_store *s, sb_store_problem_fn cb, void *userdata,
			    uint64_t *ret_checked, sb_error *err);

/*
 * Iterate every object id in the store's indexes and this writer's own
 * objects, each id once, in id order (for gc and verify). fn < 0 stops the
 * walk and is returned. When an index could not be read, every readable
 * object is still visited and then -EBADMSG names the unusable index: a
 * caller deciding what is garbage must not go on.
 */
typedef int (*sb_store_each_fn)(void *userdata, const sb_id *id, sb_obj_type type);
int sb_store_foreach(sb_store *s, sb_store_each_fn fn, void *userdata, sb_error *err);

/*
 * gc's sweep, on a store opened SB_STORE_WRITE | SB_STORE_EXCLUSIVE: every
 * indexed object for which live() is false is garbage. A pack holding only
 * garbage is removed. A pack at least 1/8 garbage, one under 32 MiB with
 * any garbage, and packs under 32 MiB when there are two or more, are
 * rewritten: their live records are copied as they are stored into new
 * packs, which are made durable first, and then removed. The other packs
 * keep their garbage (dead_left). Packs without an index whose writer is
 * gone, and temp files of an index never renamed into place, are removed
 * too.
 *
 * Each record copied is read back, decompressed and re-hashed first. Of an
 * id held by several records, none is copied when a kept pack's reads back
 * whole, else the first good one is; an id with no good record at all is
 * counted in objects_damaged and its record kept as it was (copied
 * verbatim, or left in the kept pack): gc never drops a good copy for a bad
 * one, nor the last copy of anything.
 *
 * Nothing is removed (-EBADMSG, saying to run verify) when an index cannot
 * be used (checksum, order, entries) or names a pack that is missing or
 * shorter than it says; -EBUSY when a pack is held by a writer (one that
 * does not take gc.lock). With dry_run nothing is read beyond the indexes,
 * nothing is written or removed, and the copy and _after figures are
 * estimates.
 */
typedef struct sb_sweep_stats {
	uint64_t packs_before, packs_after;	 /* pack files */
	uint64_t bytes_before, bytes_after;	 /* pack, index and leftover files */
	uint64_t objects_dropped, bytes_dropped; /* garbage records removed */
	uint64_t objects_copied, bytes_copied;	 /* live records moved to new packs */
	uint64_t dead_left, dead_bytes_left;	 /* garbage left in packs kept */
	uint64_t packs_rewritten, packs_deleted;
	uint64_t orphans_removed, orphan_bytes; /* leftovers of writers that died */
	uint64_t objects_damaged; /* live ids with no good record: kept as they were */
} sb_sweep_stats;

/*
 * _begin reads and checks every index (the refusals above but -EBUSY's),
 * so that gc learns of a damaged one before it marks anything; _run, once,
 * sweeps with what begin read.
 */
typedef struct sb_sweep sb_sweep;
typedef bool (*sb_store_live_fn)(void *userdata, const sb_id *id);
int sb_sweep_begin(sb_store *s, sb_sweep **ret, sb_error *err);
int sb_sweep_run(sb_sweep *w, sb_store_live_fn live, void *userdata, bool dry_run,
		 sb_sweep_stats *ret, sb_error *err);
void sb_sweep_free(sb_sweep *w);

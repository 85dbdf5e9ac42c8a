/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The stat cache: a per-workspace file (workspaces/<id>/index) mapping a
 * relative path to what lstat said of it when it was last hashed, and the
 * content id then computed:
 *
 *   path -> (dev, ino, mode, size, mtime_ns, ctime_ns, id)
 *
 * so a re-scan of an unchanged tree reads no file content.
 *
 *   sb_statcache *c;
 *   r = sb_statcache_load(area_fd, "index", &c, err);  SB_STATCACHE_LOADED,
 *                                           _MISSING or _CORRUPT (empty cache)
 *   sb_statcache_begin(c);          before the first stat of a scan
 *   sb_statcache_lookup(c, path, len, &key, &id)   true: reuse id
 *   sb_statcache_record(c, path, len, &key, &id)   every file of this scan
 *   sb_statcache_reuse(c, path, len, &key, &id)    both at once, on a hit
 *   sb_statcache_save(c, area_fd, "index", err);   writes what was recorded
 *   sb_statcache_free(c);
 *
 * Generations: lookup consults what was loaded (or last saved); record
 * builds the next generation, which save writes and then makes current.
 * Paths not recorded since begin are dropped on save. A record equal to a
 * trusted loaded one only marks it kept, so save costs a merge of the loaded
 * records with the changed ones, not a sort of all of them.
 *
 * Racily clean entries (git's rule): the file records a stamp, the coarse
 * wall-clock time (the clock file timestamps come from) taken by begin before
 * the scan stat'ed anything. An entry whose mtime or ctime is not older than
 * that stamp may have changed again within the same clock tick after it was
 * hashed, so lookup does not trust it. A timestamp with zero nanoseconds is
 * taken to come from a filesystem with whole-second (or FAT's two-second)
 * granularity and must be two seconds older than the stamp. Without begin,
 * the stamp is 0 and nothing recorded is trusted later.
 *
 * Format, little-endian: "sbindex1" stamp:le64 count:le64, then per entry,
 * sorted by path bytes, path_len:le32 dev:le64 ino:le64 mode:le32 size:le64
 * mtime_ns:le64 ctime_ns:le64 id:32 path, then SHA-256 of all that. A file
 * that fails any check is discarded whole (never partly trusted): load
 * returns SB_STATCACHE_CORRUPT with an empty cache, sb_statcache_problem()
 * says why. The file is a cache: save does not fsync (a torn write is caught
 * by the checksum next time), and must be called with the workspace locked —
 * a stale "<name>.lock" left by a crash is removed first.
 *
 * lookup and record may be called from several threads at once; begin, save
 * and free may not overlap anything else.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "error.h"
#include "hash.h"

typedef struct sb_statcache sb_statcache;

typedef struct sb_statcache_key {
	uint64_t dev, ino;
	uint32_t mode; /* full st_mode, type included */
	uint64_t size;
	int64_t mtime_ns, ctime_ns;
} sb_statcache_key;

typedef enum sb_statcache_state {
	SB_STATCACHE_LOADED = 0,
	SB_STATCACHE_MISSING = 1, /* no file yet: empty cache */
	SB_STATCACHE_CORRUPT = 2, /* file discarded: empty cache */
} sb_statcache_state;

/* Larger files are treated as corrupt. */
#define SB_STATCACHE_FILE_MAX (1u << 30)

void sb_statcache_key_from_stat(const struct stat *st, sb_statcache_key *ret);

int sb_statcache_new(sb_statcache **ret);
/* Returns an sb_statcache_state, or a negative errno (I/O, permission, ENOMEM). */
int sb_statcache_load(int dir_fd, const char *name, sb_statcache **ret, sb_error *err);
void sb_statcache_free(sb_statcache *c);
static inline void sb_statcache_freep(sb_statcache **p)
{
	sb_statcache_free(*p);
}

/* Why the loaded file was discarded (NULL when it was not). */
const char *sb_statcache_problem(const sb_statcache *c);
/* Entries available to lookup. */
size_t sb_statcache_count(const sb_statcache *c);

/* Starts a new generation: takes the stamp, forgets anything recorded. */
void sb_statcache_begin(sb_statcache *c);
/* Overrides the stamp begin took (tests). */
void sb_statcache_set_stamp(sb_statcache *c, int64_t stamp_ns);

/*
 * Moves the next generation's stamp to now, for a caller that changed files
 * itself after begin (restore) and records them afterwards: they are then
 * trusted by the next scan instead of hashed again. Records taken so far that
 * were racily clean under the old stamp are dropped first — their stat may
 * predate a change within the same clock tick, which the new stamp would no
 * longer catch. Not concurrent with record.
 */
void sb_statcache_restamp(sb_statcache *c);

/* True with *ret_id when path is cached with exactly key and is not racily clean. */
bool sb_statcache_lookup(const sb_statcache *c, const char *path, size_t len,
			 const sb_statcache_key *key, sb_id *ret_id);

/*
 * sb_statcache_lookup, and on a hit sb_statcache_record of the same key and
 * id, with one search: 1 with *ret_id, 0 when not cached so (nothing
 * recorded), -ENOMEM, -EOVERFLOW (more than 2^32 - 1 records in one scan).
 */
int sb_statcache_reuse(sb_statcache *c, const char *path, size_t len, const sb_statcache_key *key,
		       sb_id *ret_id);

/*
 * Adds path to the next generation (-ENOMEM; -EINVAL for a path over 4 GiB;
 * -EOVERFLOW past 2^32 - 1 records in one scan).
 */
int sb_statcache_record(sb_statcache *c, const char *path, size_t len, const sb_statcache_key *key,
			const sb_id *id);

/*
 * Puts the records recorded anew since begin in path order (the kept ones
 * are in order already), which save needs and otherwise does itself: a
 * caller may run this on a thread of its own while it does other work
 * (flushing the store), as long as nothing else uses c until it returns.
 */
void sb_statcache_sort(sb_statcache *c);

/*
 * Writes the new generation (atomically). When every record equals a loaded
 * one that was already trusted (none new, changed, removed or racily clean),
 * nothing is written: the file on disk already says all of it.
 */
int sb_statcache_save(sb_statcache *c, int dir_fd, const char *name, sb_error *err);

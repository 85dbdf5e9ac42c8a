/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The stat cache: a per-workspace file (workspaces/<id>/index) mapping a
 * relative path to what lstat said of it when it was last hashed, and the
 * content id then computed:
 *
 *   path -> (dev, ino, mode, size, mtime_ns, ctime_ns, id)
 *
 * so a re-scan of an unchanged tree reads no file content; and a directory's
 * path to what fstat said of it right before it was listed, and the names
 * then listed, so a re-scan lists no unchanged directory either.
 *
 *   sb_statcache *c;
 *   r = sb_statcache_load(area_fd, "index", &c, err);  SB_STATCACHE_LOADED,
 *                                           _MISSING or _CORRUPT (empty cache)
 *   sb_statcache_begin(c);          before the first stat of a scan
 *   sb_statcache_lookup(c, path, len, &key, &id)   true: reuse id
 *   sb_statcache_record(c, path, len, &key, &id)   every file of this scan
 *   sb_statcache_reuse(c, path, len, &key, &id)    both at once, on a hit
 *   sb_statcache_reuse_dir(c, path, len, &key, &names)   a directory's names
 *   sb_statcache_record_dir(c, path, len, &key, &names)  after listing it
 *   sb_statcache_save(c, area_fd, "index", err);   writes what was recorded
 *   sb_statcache_free(c);
 *
 * Generations: lookup consults what was loaded (or last saved); record
 * builds the next generation, which save writes and then makes current.
 * Paths not recorded since begin are dropped on save. A record equal to a
 * trusted loaded one only marks it kept, so save costs a merge of the loaded
 * records with the changed ones, not a sort of all of them.
 *
 * Racily clean entries (git's rule): each part of the file records a stamp,
 * the coarse wall-clock time (the clock file timestamps come from) taken by
 * begin before the scan stat'ed anything. An entry whose mtime or ctime is
 * not older than the stamp of the part it was written in may have changed
 * again within the same clock tick after it was read, so lookup does not
 * trust it. A timestamp with zero nanoseconds is taken to come from a
 * filesystem with whole-second (or FAT's two-second) granularity and must be
 * two seconds older than the stamp. Without begin, the stamp is 0 and nothing
 * recorded is trusted later.
 *
 * A directory's listing is trusted on the same terms as a file's content:
 * adding, removing or renaming an entry changes the directory's mtime and
 * ctime, as writing a file changes its own. Its names are all getdents64
 * gave (excluded ones, sockets and over-long names too: the scan applies its
 * rules to each name as before), each still stat'ed by the scan.
 *
 * Two files, little-endian: the base <name> and a delta <name>.delta.
 *
 *   base:  "sbindex2" stamp:le64 count:le64 record*, then SHA-256 over the
 *          SHA-256 of each half of all that (the first half: the first
 *          floor(n/2) of its n bytes)
 *   delta: "sbindexd" stamp:le64 count:le64 base_sum:32 record*, then
 *          SHA-256 of all that; base_sum is the base's checksum
 *   record: path_len:le32 dev:le64 ino:le64 mode:le32 size:le64 mtime_ns:le64
 *          ctime_ns:le64 id:32 path, and for a directory (S_IFDIR in mode)
 *          names_len:le32 names (sb_dirnames_pack; id is its tree's, or zero)
 *
 * Records of a file are sorted by path bytes, each path once. The delta
 * changes the base's records: a path's record replaces the base's, a
 * tombstone (mode 0, every other field zero) removes it. Only a directory's
 * path (the root's) or a tombstone's may be empty.
 *
 * save writes the delta anew (everything that differs from the base: a
 * re-scan that found 100 changed files writes about 100 records, not the
 * whole cache) while it stays under 1/4 of the base; otherwise it rewrites
 * the base and removes the delta. Both are written atomically (temp file +
 * rename). A base that fails any check discards both (never partly
 * trusted): load returns SB_STATCACHE_CORRUPT with an empty cache,
 * sb_statcache_problem() says why. A delta that fails a check, or names
 * another base (one left behind by a crash between a base rewrite and its
 * removal), is dropped whole: the base alone was a whole generation when
 * written. The files are a cache: save does not fsync (a torn write is
 * caught by the checksums next time), and must be called with the
 * workspace locked — a stale "<name>.lock" left by a crash is removed
 * first. Neither file is truncated in place (load maps them).
 *
 * lookup, record and the _dir calls may be called from several threads at
 * once; begin, save and free may not overlap anything else.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "dirnames.h"
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
/*
 * The files of cache name in dir_fd (the base and its delta), for gc:
 * _sync fsyncs those there; _remove removes them and syncs dir_fd.
 * A missing file is not an error.
 */
int sb_statcache_sync(int dir_fd, const char *name, sb_error *err);
int sb_statcache_remove(int dir_fd, const char *name, sb_error *err);
void sb_statcache_free(sb_statcache *c);
static inline void sb_statcache_freep(sb_statcache **p)
{
	sb_statcache_free(*p);
}

/* Why the loaded file was discarded (NULL when it was not). */
const char *sb_statcache_problem(const sb_statcache *c);
/* Entries available to lookup. */
size_t sb_statcache_count(const sb_statcache *c);
/*
 * Each id the loaded entries name, with the entry's st_mode: a file's
 * content, a symlink's target, a directory's tree (gc keeps them: a scan
 * trusts them without asking the store). fn < 0 stops and is returned.
 */
typedef int (*sb_statcache_id_fn)(void *userdata, const sb_id *id, uint32_t mode);
int sb_statcache_foreach_id(const sb_statcache *c, sb_statcache_id_fn fn, void *userdata);

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
 * longer catch. Waits until the coarse clock has passed the present (a clock
 * tick, a few ms), so that what was written so far is older than the stamp.
 * Not concurrent with record. Only records taken after it may name the files
 * written before it.
 */
void sb_statcache_restamp(sb_statcache *c);

/*
 * sb_statcache_restamp, for files written up to written_ns (CLOCK_REALTIME,
 * read after the last write): the wait is until the coarse clock has passed
 * that, which work done since may have covered already.
 */
void sb_statcache_restamp_after(sb_statcache *c, int64_t written_ns);

/*
 * Whether a file whose lstat gave key is racily clean for a read of it that
 * began once the coarse clock (CLOCK_REALTIME_COARSE) said stamp_ns: it may
 * have changed since without its key changing. When not, that read's id may
 * be recorded under key.
 */
bool sb_statcache_key_racy(const sb_statcache_key *key, int64_t stamp_ns);

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
 * Adds path to the next generation (-ENOMEM; -EINVAL for a path over 4 GiB,
 * an empty one or a key of a directory or of no file type; -EOVERFLOW past
 * 2^32 - 1 records in one scan).
 */
int sb_statcache_record(sb_statcache *c, const char *path, size_t len, const sb_statcache_key *key,
			const sb_id *id);

/*
 * A directory's record in the generation being built, as reuse_dir or
 * record_dir left it: for the tree id the scan computes for the directory
 * later. Valid until the next begin or save.
 */
typedef struct sb_statcache_dir {
	size_t at; /* cur's record index when kept, else its offset among the added */
	bool kept;
} sb_statcache_dir;

/* Whether a listing of the directory at path is cached (it may be stale). */
bool sb_statcache_has_dir(const sb_statcache *c, const char *path, size_t len);

/*
 * The directory at path ("" with len 0: the scan's root), fstat'ed as key
 * right before it would be listed: 1 with its names in *ret (the caller
 * releases them) when it was listed with exactly key and is not racily
 * clean, and then kept for the next generation (*ret_dir, may be NULL:
 * where); 0 when it must be listed; -ENOMEM, -EOVERFLOW.
 */
int sb_statcache_reuse_dir(sb_statcache *c, const char *path, size_t len,
			   const sb_statcache_key *key, sb_dirnames *ret,
			   sb_statcache_dir *ret_dir);

/*
 * Adds the directory at path, fstat'ed as key before it was listed as
 * names, to the next generation (*ret_dir, may be NULL: where), without a
 * tree id yet (-ENOMEM; -EINVAL when key is not a directory's; -EOVERFLOW).
 */
int sb_statcache_record_dir(sb_statcache *c, const char *path, size_t len,
			    const sb_statcache_key *key, const sb_dirnames *names,
			    sb_statcache_dir *ret_dir);

/*
 * Whether the directory's loaded record names tree as its tree id: then the
 * store holds that tree (a record names only what was stored, and the cache
 * is saved only after the store is flushed), and a scan need not ask it.
 */
bool sb_statcache_dir_knows(const sb_statcache *c, const sb_statcache_dir *d, const sb_id *tree);

/* Names tree, just stored, as the directory's tree id in the next generation. */
int sb_statcache_dir_set_tree(sb_statcache *c, const sb_statcache_dir *d, const sb_id *tree);

/*
 * Puts the records recorded anew since begin in path order (the kept ones
 * are in order already), which save needs and otherwise does itself: a
 * caller may run this on a thread of its own while it does other work
 * (flushing the store), as long as nothing else uses c until it returns.
 */
void sb_statcache_sort(sb_statcache *c);

/*
 * Writes the new generation: the delta against the base it was loaded
 * from, or the base whole (see the format above). When every record equals
 * a loaded one that was already trusted (none new, changed, removed or
 * racily clean), nothing is written: the file on disk already says all of it.
 */
int sb_statcache_save(sb_statcache *c, int dir_fd, const char *name, sb_error *err);

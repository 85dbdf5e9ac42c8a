/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Private to the stat cache: statcache.c (lookups and records) and
 * statcache-file.c (the files: load and save). statcache.h has the format.
 *
 * In memory, a generation is an array of record pointers in path order,
 * into the base's memory and the delta's, each record with the stamp of the
 * file it came from; the base's own records are kept apart too, so a save
 * can tell what differs from them.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "statcache.h"

#define MAGIC	    "sbindex2"
#define DELTA_MAGIC "sbindexd"
#define MAGIC_LEN   8
#define HDR_LEN	    (MAGIC_LEN + 8 + 8)
#define DELTA_HDR   (HDR_LEN + SB_ID_LEN)
#define REC_FIXED   (4 + 8 + 8 + 4 + 8 + 8 + 8 + SB_ID_LEN)
/* Offsets in a record (statcache.h): its mode, and its id (a directory's: its tree) */
#define REC_MODE 20
#define REC_ID	 48

/* Memory that records point into: a mapped file, or a buffer of ours. */
typedef struct block {
	char *p;
	size_t len;
	bool mapped;
} block;

/* A loaded (or last saved) generation. */
typedef struct gen {
	const char **rec; /* live records, in path order */
	uint8_t *sec;	  /* per record: 0 the base's, 1 the delta's; NULL: no delta */
	size_t n;
	int64_t stamps[2]; /* the base's, the delta's */
	block base_blk, delta_blk;
	/* The base as on disk, which a save may write a delta against. */
	bool have_base;
	const char **base; /* its records, in path order (rec itself without a delta) */
	size_t n_base, base_len;
	sb_id base_sum;
} gen;

/* A record of the next generation that is not a loaded one kept as it was. */
typedef struct added {
	size_t off;   /* into sb_statcache.add */
	uint32_t seq; /* recording order: the last record of a path wins */
} added;

/*
 * The next generation is cur's records marked kept (found unchanged and
 * trusted) plus the records added: a re-scan of a mostly unchanged tree
 * copies nothing per file, and save merges the two sorted sequences instead
 * of sorting every record.
 */
struct sb_statcache {
	gen cur;	/* what lookup sees */
	uint32_t *kept; /* per cur record: seq of its last keeping record, 0: none */
	sb_buf add;	/* serialized added records */
	added *addv;	/* in recording order until save sorts them */
	size_t n_add, cap_add;
	int64_t stamp;	      /* the next generation's */
	uint32_t seq;	      /* records taken since begin */
	bool add_sorted;      /* addv in path order (sb_statcache_sort) */
	pthread_mutex_t lock; /* record */
	const char *problem;
	/*
	 * Whether next differs from cur: a save of an unchanged generation is
	 * skipped, so a scan that found nothing new writes nothing (git writes
	 * its index only when an entry changed or was racily clean).
	 */
	bool dirty;
	size_t same; /* cur records kept */
};

/* Frees a generation and the memory its records are in (statcache-file.c). */
void sb_statcache__gen_release(gen *g);
/* Forgets the next generation, not its stamp (statcache.c). */
void sb_statcache__next_reset(sb_statcache *c);

/* ---- records, as the files hold them ---- */

static inline int path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, MIN(alen, blen));
	if (r)
		return r;
	return alen < blen ? -1 : alen > blen;
}

static inline size_t rec_path_len(const char *rec)
{
	return sb_le32(rec);
}

static inline const char *rec_path(const char *rec)
{
	return rec + REC_FIXED;
}

static inline uint32_t rec_mode(const char *rec)
{
	return sb_le32(rec + REC_MODE);
}

/* Where a directory's record keeps its names: length, then the packed listing. */
static inline const char *rec_names(const char *rec)
{
	return rec + REC_FIXED + rec_path_len(rec);
}

static inline size_t rec_len(const char *rec)
{
	size_t len = REC_FIXED + rec_path_len(rec);
	if (S_ISDIR(rec_mode(rec)))
		len += 4 + sb_le32(rec + len);
	return len;
}

static inline int rec_path_cmp(const char *a, const char *b)
{
	return path_cmp(rec_path(a), rec_path_len(a), rec_path(b), rec_path_len(b));
}

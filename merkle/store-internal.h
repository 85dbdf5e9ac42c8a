/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Private to the store (pack.c, packidx.c, store.c, verify.c, content.c, gc.c): the
 * on-disk formats and the in-memory tables.
 *
 * Pack file  packs/pack-<32 hex>.pack, append-only:
 *   header   "sbpack1\n" version:le32(1) reserved:le32(0)          16 bytes
 *   records  "SBR1" type:u8 flags:u8 reserved:le16 raw_len:le32
 *            stored_len:le32 id:32 payload[stored_len]   (48-byte header)
 *            flags SB_REC_ZSTD: payload is one zstd frame of raw_len bytes;
 *            without it the payload is the raw bytes (stored_len == raw_len).
 *   The id in each record lets a pack be re-indexed without its idx.
 *
 * Index file packs/pack-<32 hex>.idx, replaced atomically (temp + rename):
 *   header   "sbidx01\n" version:le32(1) count:le32 pack_size:le64  24 bytes
 *   entries  count x { id:32 offset:le64 raw_len:le32 stored_len:le32
 *            type:u8 flags:u8 reserved:le16 }   52 bytes, strictly ascending id
 *   trailer  SHA-256 over header and entries                         32 bytes
 *   pack_size is the length of the pack the index covers; a writer that goes
 *   on appending after a flush rewrites the index at its next flush.
 *
 * A writer holds flock(LOCK_SH) on each pack it appends to for as long as the
 * store is open, so gc can tell a live writer's pack (LOCK_EX|LOCK_NB fails)
 * from a crashed writer's garbage.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <zstd.h>

#include "error.h"
#include "hash.h"
#include "idtab.h"
#include "objcache.h"
#include "store.h"

#define SB_PACK_MAGIC	   "sbpack1\n"
#define SB_PACK_HEADER_LEN 16
#define SB_REC_MAGIC	   "SBR1"
#define SB_REC_HEADER_LEN  48
#define SB_IDX_MAGIC	   "sbidx01\n"
#define SB_IDX_VERSION	   1
#define SB_IDX_HEADER_LEN  24
#define SB_IDX_ENTRY_LEN   52
#define SB_IDX_TRAILER_LEN 32
#define SB_PACK_MAX_SIZE   (512ull << 20) /* start a new pack beyond this */
#define SB_PACK_NAME_LEN   (5 + 32)	  /* "pack-" + 32 hex */
/*
 * gc rewrites a pack smaller than this when it holds any garbage, and
 * merges such packs when there are two or more (each restore and each run
 * adds one, and every lookup that misses asks each pack's index).
 */
#define SB_GC_SMALL_PACK (32ull << 20)
/* On source trees level 2 costs ~25% less CPU than 3 for ~1% more bytes. */
#define SB_STORE_ZSTD_LEVEL 2
/* sb_put_hint: level 1 for a file whose probe chunk it grew by at most 1/this. */
#define SB_STORE_LEVEL1_SLACK 25
/*
 * Blobs below this are compressed at level 1: on the bench tree's 45k files
 * of 512 B-16 KiB it is 5% faster than level 2 and 0.2% smaller.
 */
#define SB_STORE_SMALL_BLOB (16u << 10)
/* Foreign pack fds kept open for reading before idle ones are closed. */
#define SB_STORE_MAX_OPEN_PACKS 256
/*
 * Records smaller than SB_STORE_WBUF_DIRECT are gathered in a buffer of
 * SB_STORE_WBUF_SIZE and appended with one write: most objects are a few
 * hundred bytes, and a system call for each costs more than copying them.
 * Larger records are written straight from the compressor's buffer.
 */
#define SB_STORE_WBUF_SIZE   (1u << 20)
#define SB_STORE_WBUF_DIRECT (128u << 10)
/*
 * Writeback of the bytes appended is started (sync_file_range) every this
 * many, by the thread that wrote them: the disk works while the scan does,
 * and the fsync at flush finds little left to submit.
 */
#define SB_STORE_WRITEBACK_STEP (16u << 20)

/*
 * Tree objects kept in memory once written or read (objcache.h): a restore
 * reads the trees it just saved and those of its target two or three times.
 * Trees average well under 1 KB, so this holds every tree a diff of a few
 * thousand directories touches.
 */
#define SB_STORE_TREE_CACHE (8u << 20)

/* An idx beyond this is not something we wrote (40M objects). */
#define SB_IDX_MAX_FILE (2ull << 30)

/* Largest stored payload a valid record can have (a zstd frame of SB_OBJ_MAX). */
#define SB_STORED_MAX ZSTD_COMPRESSBOUND(SB_OBJ_MAX)

enum {
	SB_REC_ZSTD = 1 << 0, /* payload is zstd-compressed */
};

/* One object's location. 56 bytes: ~5.6 MB for 100k objects. */
typedef struct sb_entry {
	sb_id id;
	uint64_t offset; /* of the record header in the pack */
	uint32_t raw_len;
	uint32_t stored_len;
	uint32_t pack; /* index into sb_store.packs */
	uint8_t type;
	uint8_t flags;
} sb_entry;

/*
 * A foreign pack's index, mapped read-only (packidx.c). Opening it checks the
 * header and that the size matches the count, nothing more: the checksum and
 * the order of the entries are verify's job, each entry is bounds-checked
 * when a lookup finds it, and every object read is re-hashed. So a damaged
 * index can hide objects (a miss) but never hand out wrong bytes.
 */
typedef struct sb_idx_map {
	const uint8_t *base; /* the whole file; NULL when not mapped */
	size_t len;
	uint32_t count;
	uint64_t pack_size;
	dev_t dev; /* of the file mapped: a rewritten index is a new inode */
	ino_t ino;
	uint32_t *fanout; /* [b] = entries with first id byte <= b; built on first use */
} sb_idx_map;

/*
 * A pack this store knows: from an index on disk, or one of its own. Never
 * freed before the store, so an fd copied out under the lock stays valid.
 */
typedef struct sb_pack {
	char name[SB_PACK_NAME_LEN + 1]; /* "pack-<hex>", no extension */
	uint32_t no;			 /* its index in sb_store.packs */
	int fd;				 /* -1 until first read (or closed while idle) */
	unsigned users;			 /* get() calls reading through fd right now */
	bool own;			 /* written by this store */
	bool dirty;			 /* own: entries not yet in its idx */
	uint64_t end;			 /* own: append offset */
	uint64_t written;		 /* own: bytes in the file; [written, end) are in wbuf */
	uint64_t wb_start;		 /* own: writeback started for the bytes before this */
	size_t first, count;		 /* own: its range in sb_store.w_ents */
	sb_idx_map idx;			 /* foreign: its index */
	uint64_t seen;			 /* reload generation that last saw its idx */
} sb_pack;

/* Compression state reused across puts and gets (a small pool per store). */
typedef struct sb_zctx {
	ZSTD_CCtx *c;
	int c_level; /* c's level; 0 before it is set */
	ZSTD_DCtx *d;
	uint8_t *buf; /* scratch: compressed bytes */
	size_t cap;
	uint8_t *buf2; /* the other level's bytes, when a chunk is compressed both ways */
	size_t cap2;
} sb_zctx;

/* An index that could not be used, kept to name it in errors. */
typedef struct sb_scratch sb_scratch;

typedef struct sb_bad_idx {
	char name[SB_PACK_NAME_LEN + 8];
	char why[192];
} sb_bad_idx;

#define SB_STORE_LOCK "gc.lock" /* store.h: shared by every open store, exclusive for gc */

struct sb_store {
	int root_fd;
	int lock_fd;  /* on SB_STORE_LOCK; -1 when opened without it */
	int packs_fd; /* -1 while a read-only store has no packs/ */
	sb_store_flags flags;
	uint64_t pack_max;   /* SB_PACK_MAX_SIZE; tests lower it */
	uint64_t small_pack; /* SB_GC_SMALL_PACK; tests lower it */

	pthread_mutex_t lock; /* everything below */
	sb_pack **packs;
	size_t n_packs, cap_packs;
	sb_pack **search; /* foreign packs with a usable, non-empty index, largest first */
	size_t n_search;
	size_t last_hit;  /* index in search of the last hit: tried first, as objects cluster */
	sb_entry *w_ents; /* own writes in append order, grouped by pack */
	size_t n_w, cap_w;
	sb_idtab w_idx; /* w_ents by id */
	size_t n_open;	/* foreign packs with an open fd */
	sb_pack *cur;	/* own pack being appended to */
	uint8_t *wbuf;	/* records of cur not yet written (see SB_STORE_WBUF_SIZE) */
	size_t wbuf_len;
	int werr; /* a buffered write failed: its objects are lost, nothing may be flushed */
	char werr_pack[SB_PACK_NAME_LEN + 1];
	sb_bad_idx *bad;
	size_t n_bad;
	bool loaded;		   /* the maps reflect packs/ as of dir_mtime */
	struct timespec dir_mtime; /* of packs/ before the last reload */
	struct timespec reload_time;
	uint64_t reloads; /* generation; for tests */
	sb_store_stats stats;

	sb_scratch *scratch; /* non-NULL in scratch mode (store.h) */
	sb_objcache trees;   /* verified tree objects, by id */
	bool keep_trees;     /* trees goes unused unless set (sb_store_keep_trees) */

	pthread_mutex_t flush_lock; /* serialises flushes */

	pthread_mutex_t pool_lock;
	sb_zctx **pool;
	size_t n_pool, cap_pool;
};

/*
 * The scratch layer (store-scratch.c), used under s->lock: put copies the
 * object in unless its id is there already; get returns a malloc'd copy, or
 * -ENOENT. -ENOMEM otherwise.
 */
sb_scratch *sb_scratch__new(void);
void sb_scratch__free(sb_scratch *sc);
int sb_scratch__put(sb_scratch *sc, sb_obj_type type, const sb_id *id, const void *data,
		    size_t len);
int sb_scratch__get(const sb_scratch *sc, const sb_id *id, sb_obj_type *ret_type, void **ret_data,
		    size_t *ret_len);

/* Id of an object: SHA-256("sbobj" type:u8 len:le64 payload). -ENOMEM only. */
int sb_store__hash(sb_obj_type type, const void *data, size_t len, sb_id *ret_id);

sb_zctx *sb_store__zctx_get(sb_store *s);
void sb_store__zctx_put(sb_store *s, sb_zctx *z);
int sb_zctx__reserve(sb_zctx *z, size_t cap);

/* Kind of damage sb_pack__read_record found, for verify's report. */
typedef enum sb_rec_problem {
	SB_REC_OK = 0,
	SB_REC_TRUNCATED,
	SB_REC_BAD_HEADER,
	SB_REC_DECOMPRESS,
	SB_REC_HASH_MISMATCH,
	SB_REC_IO,
} sb_rec_problem;

const char *sb_rec_problem_str(sb_rec_problem p);

/*
 * Reads the record e points at from fd, checks its header against e,
 * decompresses and re-hashes it. *ret_data is malloc'd (raw_len bytes, plus a
 * NUL so text objects can be parsed in place). -EBADMSG (with *ret_problem
 * set) on damage, naming the object and the pack; -errno on I/O errors.
 */
int sb_pack__read_record(int fd, const char *pack_name, const sb_entry *e, sb_zctx *z,
			 void **ret_data, sb_rec_problem *ret_problem, sb_error *err);

/*
 * Reads e's record as stored (for gc's repack): the header, checked against
 * e, and the stored_len payload bytes into buf, neither decompressed nor
 * re-hashed. -EBADMSG naming the object and the pack on a short read or a
 * bad header (buf is filled all the same); -errno on I/O errors.
 */
int sb_pack__read_stored(int fd, const char *pack_name, const sb_entry *e, void *buf,
			 sb_error *err);
/*
 * Checks a payload as stored (from sb_pack__read_stored) against e:
 * decompressed and re-hashed. 0, -EBADMSG when it is damaged, -ENOMEM.
 */
int sb_pack__check_stored(const sb_entry *e, const void *stored, sb_zctx *z);

/* Record header for an object about to be appended. */
void sb_pack__encode_record_header(uint8_t hdr[SB_REC_HEADER_LEN], const sb_entry *e);
void sb_pack__encode_pack_header(uint8_t hdr[SB_PACK_HEADER_LEN]);

/* Serialises sorted entries (ids strictly ascending) into an idx image. */
int sb_pack__encode_idx(const sb_entry *ents, size_t n, uint64_t pack_size, uint8_t **ret,
			size_t *ret_len);

/*
 * Reads and validates packs/<name>.idx: checksum, sortedness, lengths within
 * SB_OBJ_MAX, records inside pack_size. Entries get pack = pack_no.
 * -EBADMSG with why filled when the index is damaged; other -errno when it
 * cannot be read (why filled as well).
 */
int sb_pack__load_idx(int packs_fd, const char *name, uint32_t pack_no, sb_entry **ret_ents,
		      size_t *ret_n, uint64_t *ret_pack_size, char *why, size_t why_size);

/* Checks an index's header against its size. -EBADMSG with why filled. */
int sb_pack__check_idx_header(const uint8_t *p, uint64_t size, uint64_t *ret_count,
			      uint64_t *ret_pack_size, char *why, size_t why_size);
/* Decodes one 52-byte index entry; false when a field is impossible. */
bool sb_pack__decode_entry(const uint8_t *q, uint64_t pack_size, uint32_t pack_no, sb_entry *e);

/*
 * Maps packs/<name>.idx into m (unmapping what m held), or keeps m when it
 * already maps that very file. -EBADMSG (why filled) for a bad header,
 * -errno (why filled) when it cannot be opened or mapped.
 */
int sb_idx_map_open(int packs_fd, const char *name, sb_idx_map *m, char *why, size_t why_size);
void sb_idx_map_close(sb_idx_map *m);
/* 1 and *ret filled when found; 0 when absent; -EBADMSG when its entry is invalid. */
int sb_idx_map_find(sb_idx_map *m, uint32_t pack_no, const sb_id *id, sb_entry *ret);
/* Entry i, decoded; false when out of range or invalid. */
bool sb_idx_map_entry(const sb_idx_map *m, uint32_t i, uint32_t pack_no, sb_entry *ret);

/* True when fname is "pack-<32 lowercase hex><ext>"; copies the stem. */
bool sb_pack__parse_name(const char *fname, const char *ext, char stem[SB_PACK_NAME_LEN + 1]);

int sb_entry__cmp(const void *a, const void *b);

/* The rest is called with s->lock held. */
sb_pack *sb_store__pack_find_or_add(sb_store *s, const char *stem);
int sb_store__open_packs_dir(sb_store *s);
/*
 * Maps every foreign index (s->search, and s->bad for unusable ones). Pack
 * structs are kept by name, so fds other threads copied out stay valid.
 */
int sb_store__reload(sb_store *s, sb_error *err);
/* The same, skipped when packs/ has not changed since the last reload. */
int sb_store__reload_if_changed(sb_store *s, sb_error *err);

/* ---- store.c, for store-read.c ---- */
/*
 * Finds id: own writes first, then each mapped index (the one that held the
 * last object found first). 1 with *ret filled; 0 when absent; -EBADMSG
 * when the only entries for id are invalid, *ret_bad naming the index.
 */
int sb_store__lookup(sb_store *s, const sb_id *id, sb_entry *ret, const sb_pack **ret_bad);
/* Writes the buffered records of s->cur; a failure sticks (s->werr). */
int sb_store__wbuf_write(sb_store *s, sb_error *err);
/*
 * Appends a record copied from another pack as it is (gc's repack): e's id,
 * type, lengths and flags, with payload its stored bytes. An id this writer
 * wrote already is skipped; the store's other packs are not consulted.
 * Takes s->lock.
 */
int sb_store__put_record(sb_store *s, const sb_entry *e, const void *payload, sb_error *err);
/* Keeps a tree (e) just stored, found or read for the reads that follow, when asked to. */
void sb_store__cache_tree(sb_store *s, const sb_entry *e, const void *data, size_t len);

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
 *            type SB_REC_GROUP (not an object type): a solid group of
 *            small blobs, compressed as one frame (zstd's fixed cost per
 *            frame is ~4 us, more than a 1 KB file takes to compress, and
 *            neighbours compress better together). Its id is all zeros; its
 *            raw bytes are members back to back, each exactly the bytes its
 *            id hashes: "sbobj" type:u8 len:le64 payload[len].
 *   The id in each record, or in each group member's hash input, lets a pack
 *   be re-indexed without its idx.
 *
 * Index file packs/pack-<32 hex>.idx, replaced atomically (temp + rename):
 *   header   "sbidx01\n" version:le32(1) count:le32 pack_size:le64  24 bytes
 *   entries  count x { id:32 offset:le64 raw_len:le32 stored_len:le32
 *            type:u8 flags:u8 reserved:le16 }   52 bytes, strictly ascending id
 *            flags SB_REC_GROUPED: a member of the group record at offset;
 *            stored_len is then the member's offset in the group's raw bytes.
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
 * zstd levels. Level 2 costs ~25% less CPU than 3 for ~1% more bytes on
 * source trees; objects stored alone (16 KiB and up: chunks of large files,
 * most of the bytes) take level 1, ~15% less CPU for ~5% more bytes, which
 * the groups' better ratio on small files more than pays for.
 */
#define SB_STORE_ZSTD_LEVEL	  1
#define SB_STORE_ZSTD_LEVEL_GROUP 2
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
	SB_REC_ZSTD = 1 << 0,	 /* record: payload is zstd-compressed */
	SB_REC_GROUPED = 1 << 1, /* index entry: a member of a group record */
};

#define SB_REC_GROUP 0x10 /* record type of a group (never an object's) */
/*
 * Blobs under SB_GROUP_MEMBER_MAX go into groups, sealed once they hold
 * SB_GROUP_TARGET bytes: on a source tree that takes 1/3 less zstd time and
 * ~25% fewer bytes than compressing each alone, for ~35 us of decompression
 * per read of a member (a one-group cache per context serves its neighbours).
 */
#define SB_GROUP_MEMBER_MAX (16u << 10)
#define SB_GROUP_TARGET	    (32u << 10)
#define SB_GROUP_RAW_MAX    (64u << 10) /* no valid group is larger */
#define SB_MEMBER_HDR_LEN   14		/* "sbobj" type:u8 len:le64 */
/* pack of an entry whose group is still in memory (store-group.c) */
#define SB_PACK_PENDING UINT32_MAX

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
	ZSTD_DCtx *d;
	uint8_t *buf; /* scratch: compressed bytes */
	size_t cap;
	/* the last group read, raw: members next to each other are read together */
	uint8_t *grp; /* SB_GROUP_RAW_MAX bytes once used */
	size_t grp_len;
	uint64_t grp_off;
	char grp_pack[SB_PACK_NAME_LEN + 1]; /* "" when grp holds nothing */
} sb_zctx;

/* An index that could not be used, kept to name it in errors. */
typedef struct sb_scratch sb_scratch;
typedef struct sb_group sb_group;

typedef struct sb_bad_idx {
	char name[SB_PACK_NAME_LEN + 8];
	char why[192];
} sb_bad_idx;

struct sb_store {
	int root_fd;
	int packs_fd; /* -1 while a read-only store has no packs/ */
	sb_store_flags flags;
	uint64_t pack_max; /* SB_PACK_MAX_SIZE; tests lower it */

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

	pthread_mutex_t flush_lock; /* serialises flushes */

	sb_group **groups; /* small blobs not yet written (store-group.c) */
	size_t n_groups, cap_groups;
	uint64_t group_seq;	   /* of the last group opened */
	pthread_cond_t group_cond; /* signalled whenever a group is written */

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

/*
 * Groups of small blobs (store-group.c). Under s->lock unless said:
 *   _find     1 with *ret (pack SB_PACK_PENDING, offset the group's seq,
 *             stored_len the member's offset) when id waits in a group; 0
 *   _copy     a malloc'd copy (NUL after it) of a pending member; -ENOMEM
 *   _add      copies a new blob into the open group; when that fills it,
 *             *ret_full is the group, now the caller's to seal; -ENOMEM
 *   _seal     without the lock: compresses the group, appends its record,
 *             indexes its members. A failure sticks as s->werr.
 *   _seal_all without the lock: seals the open group and waits for those
 *             other threads are sealing (flush calls it first)
 *   _collect  copies the pending entries to out (when not NULL); their count
 *   _free_all drops every group (sb_store_free)
 */
int sb_group__find(sb_store *s, const sb_id *id, sb_entry *ret);
int sb_group__copy(sb_store *s, const sb_entry *e, void **ret_data);
int sb_group__add(sb_store *s, const sb_entry *e, const void *data, size_t len,
		  sb_group **ret_full);
int sb_group__seal(sb_store *s, sb_group *g, sb_error *err);
int sb_group__seal_all(sb_store *s, sb_error *err);
size_t sb_group__collect(sb_store *s, sb_entry *out);
void sb_group__free_all(sb_store *s);

/* A range of an own pack whose writeback is to start once s->lock is dropped. */
typedef struct sb_writeback {
	int fd;
	uint64_t off, len;
} sb_writeback;

/*
 * The writing side of store.c, for store-group.c. Under s->lock but for
 * _compress and _writeback_start:
 *   _compress          at zstd level, into z->buf unless that does not pay;
 *                      sets e's raw_len, stored_len and flags
 *   _reserve_entries   room for k more own entries; -ENOMEM
 *   _place             appends rec's record (payload of rec->stored_len
 *                      bytes) to this writer's pack, starting a new pack
 *                      when full; sets rec->offset and rec->pack
 *   _add_entry         indexes an own entry (reserved for) of that pack
 *   _werr_report       the error of an earlier failed append
 */
int sb_store__compress(sb_zctx *z, int level, const void *data, size_t len, sb_entry *e,
		       sb_error *err);
int sb_store__reserve_entries(sb_store *s, size_t k);
int sb_store__place(sb_store *s, sb_entry *rec, const void *payload, sb_writeback *wb,
		    sb_error *err);
void sb_store__add_entry(sb_store *s, const sb_entry *e);
int sb_store__werr_report(sb_store *s, sb_error *err);
void sb_store__writeback_start(const sb_writeback *wb);

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

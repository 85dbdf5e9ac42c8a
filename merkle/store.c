/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "buf.h"
#include "fileio.h"
#include "store-internal.h"

/* Scratch buffers above this go back to malloc instead of staying in the pool. */
#define SB_ZCTX_KEEP_MAX (8u << 20)
/*
 * Below this, store raw: zstd spends ~4 us building entropy tables for even a
 * 100-byte input and saves ~20% of a 500-byte one. Files this small are ~40%
 * of a source tree's files but ~1% of its bytes (bench tree: 110 ms less CPU
 * for 1.7 MB more), and reading them back needs no decompression.
 */
#define SB_COMPRESS_MIN 512

int sb_store__hash(sb_obj_type type, const void *data, size_t len, sb_id *ret_id)
{
	uint8_t hdr[5 + 1 + 8] = {'s', 'b', 'o', 'b', 'j', (uint8_t)type};
	for (int i = 0; i < 8; i++)
		hdr[6 + i] = (uint8_t)((uint64_t)len >> (8 * i));
	sb_sha256 h = {0};
	int r = sb_sha256_init(&h);
	if (r < 0)
		return r;
	sb_sha256_update(&h, hdr, sizeof(hdr));
	sb_sha256_update(&h, data, len);
	sb_sha256_final(&h, ret_id);
	return 0;
}

void sb_store_hash(sb_obj_type type, const void *data, size_t len, sb_id *ret_id)
{
	/* Only an allocation failure of a digest context can get here: an all-zero
	 * id matches no object, so the caller's lookup fails safely. */
	if (sb_store__hash(type, data, len, ret_id) < 0)
		memset(ret_id, 0, sizeof(*ret_id));
}

sb_zctx *sb_store__zctx_get(sb_store *s)
{
	sb_zctx *z = NULL;
	pthread_mutex_lock(&s->pool_lock);
	if (s->n_pool > 0)
		z = s->pool[--s->n_pool];
	pthread_mutex_unlock(&s->pool_lock);
	return z ? z : calloc(1, sizeof(sb_zctx));
}

static void zctx_free(sb_zctx *z)
{
	if (!z)
		return;
	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z->buf);
	free(z->buf2);
	free(z);
}

void sb_store__zctx_put(sb_store *s, sb_zctx *z)
{
	if (!z)
		return;
	if (z->cap > SB_ZCTX_KEEP_MAX) {
		free(z->buf);
		z->buf = NULL;
		z->cap = 0;
	}
	if (z->cap2 > SB_ZCTX_KEEP_MAX) {
		free(z->buf2);
		z->buf2 = NULL;
		z->cap2 = 0;
	}
	pthread_mutex_lock(&s->pool_lock);
	sb_zctx **np = sb_grow(s->pool, &s->cap_pool, s->n_pool, sizeof(*np), 8);
	if (!np) {
		pthread_mutex_unlock(&s->pool_lock);
		zctx_free(z);
		return;
	}
	s->pool = np;
	s->pool[s->n_pool++] = z;
	pthread_mutex_unlock(&s->pool_lock);
}

static const sb_entry *w_lookup(sb_store *s, const sb_id *id)
{
	uint32_t v = sb_idtab_find(&s->w_idx, id, s->w_ents, sizeof(*s->w_ents));
	return v ? &s->w_ents[v - 1] : NULL;
}

/* Room for one more own entry, taken before the record is written. */
static int w_reserve(sb_store *s)
{
	sb_entry *ne = sb_grow(s->w_ents, &s->cap_w, s->n_w, sizeof(*ne), 1024);
	if (!ne)
		return -ENOMEM;
	s->w_ents = ne;
	return sb_idtab_reserve(&s->w_idx, s->n_w, s->w_ents, sizeof(*s->w_ents));
}

/*
 * Own writes first (a hash table), then each mapped index: the one that held
 * the last object found (the objects of one snapshot sit together in the
 * pack that wrote them: a diff or restore of a recent snapshot would
 * otherwise miss in every older pack first), then the others, largest first.
 * 1 with *ret filled when found; 0 when absent; -EBADMSG when the only
 * entries for id are invalid, with *ret_bad naming the index.
 */
int sb_store__lookup(sb_store *s, const sb_id *id, sb_entry *ret, const sb_pack **ret_bad)
{
	const sb_entry *e = w_lookup(s, id);
	if (e) {
		*ret = *e;
		return 1;
	}
	const sb_pack *bad = NULL;
	size_t first = s->last_hit < s->n_search ? s->last_hit : 0;
	for (size_t k = 0; k < s->n_search; k++) {
		size_t i = k == 0 ? first : k <= first ? k - 1 : k;
		sb_pack *p = s->search[i];
		int r = sb_idx_map_find(&p->idx, p->no, id, ret);
		if (r > 0) {
			s->last_hit = i;
			return 1;
		}
		if (r < 0 && !bad)
			bad = p;
	}
	if (ret_bad)
		*ret_bad = bad;
	return bad ? -EBADMSG : 0;
}

/* ---- open / free ---- */

static int mkdir_parents(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*q = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Takes gc.lock as store.h says: shared (waiting for a gc), or exclusive at once. */
static int store_lock(int root_fd, const char *root, sb_store_flags flags, int *ret_fd,
		      sb_error *err)
{
	bool excl = flags & SB_STORE_EXCLUSIVE;
	*ret_fd = -1;
	_cleanup_close_ int fd =
	    openat(root_fd, SB_STORE_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && !excl && (errno == EACCES || errno == EROFS))
		fd = openat(root_fd, SB_STORE_LOCK, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	/* Read-only, and the lock cannot be made (or is missing, in a store
	 * written before there was one): nothing of ours a gc could undo. */
	if (fd < 0 && !(flags & (SB_STORE_WRITE | SB_STORE_EXCLUSIVE)) &&
	    (errno == EACCES || errno == EROFS || errno == ENOENT))
		return 0;
	if (fd < 0)
		return sb_error_errno(err, errno, "open lock file '%s/%s'", root, SB_STORE_LOCK);
	int op = excl ? LOCK_EX | LOCK_NB : LOCK_SH;
	if (RETRY_EINTR(flock(fd, op)) < 0) {
		if (errno == EWOULDBLOCK)
			return sb_error_set(err, EBUSY,
					    "store '%s' is in use by another snapbox command; "
					    "run this again when it has finished",
					    root);
		return sb_error_errno(err, errno, "lock '%s/%s'", root, SB_STORE_LOCK);
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int sb_store_open(const char *root, sb_store_flags flags, sb_store **ret, sb_error *err)
{
	if (flags & SB_STORE_CREATE) {
		int r = mkdir_parents(root, 0700);
		if (r < 0)
			return sb_error_errno(err, -r, "create store directory '%s'", root);
	}
	_cleanup_close_ int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return sb_error_errno(err, errno, "open store '%s'", root);
	if ((flags & SB_STORE_WRITE) && mkdirat(root_fd, "packs", 0700) < 0 && errno != EEXIST)
		return sb_error_errno(err, errno, "create '%s/packs'", root);
	_cleanup_close_ int lock_fd = -1;
	int r = store_lock(root_fd, root, flags, &lock_fd, err);
	if (r < 0)
		return r;

	sb_store *s = calloc(1, sizeof(*s));
	if (!s)
		return sb_error_errno(err, ENOMEM, "open store '%s'", root);
	s->root_fd = TAKE_FD(root_fd);
	s->lock_fd = TAKE_FD(lock_fd);
	s->packs_fd = -1;
	s->flags = flags;
	s->pack_max = SB_PACK_MAX_SIZE;
	s->small_pack = SB_GC_SMALL_PACK;
	sb_idtab_init(&s->w_idx);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->flush_lock, NULL);
	pthread_mutex_init(&s->pool_lock, NULL);

	pthread_mutex_lock(&s->lock);
	r = sb_store__reload(s, err);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		sb_store_free(s);
		sb_error_prefix(err, "open store '%s'", root);
		return r;
	}
	*ret = s;
	return 0;
}

void sb_store_free(sb_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_packs; i++) {
		CLOSE_FD(s->packs[i]->fd);
		sb_idx_map_close(&s->packs[i]->idx);
		free(s->packs[i]);
	}
	free(s->packs);
	free(s->search);
	free(s->w_ents);
	sb_idtab_release(&s->w_idx);
	free(s->wbuf);
	free(s->bad);
	sb_scratch__free(s->scratch);
	sb_objcache_release(&s->trees);
	for (size_t i = 0; i < s->n_pool; i++)
		zctx_free(s->pool[i]);
	free(s->pool);
	CLOSE_FD(s->packs_fd);
	CLOSE_FD(s->root_fd);
	CLOSE_FD(s->lock_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->flush_lock);
	pthread_mutex_destroy(&s->pool_lock);
	free(s);
}

int sb_store_root_fd(sb_store *s)
{
	return s->root_fd;
}

/* ---- writing ---- */

static int pwritev_full(int fd, struct iovec *iov, int cnt, off_t off)
{
	while (cnt > 0) {
		ssize_t n = pwritev(fd, iov, cnt, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* The failure of an earlier buffered write, which sticks (see wbuf_write). */
static int werr_report(sb_store *s, sb_error *err)
{
	return sb_error_errno(err, -s->werr, "append to 'packs/%s.pack' failed earlier",
			      s->werr_pack);
}

/*
 * Writes the buffered records of s->cur. put() has already handed out their
 * ids, so a failure loses objects callers believe stored: it sticks, and
 * every later put, flush and read of them fails. Under s->lock.
 */
int sb_store__wbuf_write(sb_store *s, sb_error *err)
{
	if (s->werr)
		return werr_report(s, err);
	if (s->wbuf_len == 0)
		return 0;
	sb_pack *p = s->cur;
	int r = sb_pwrite_full(p->fd, s->wbuf, s->wbuf_len, (off_t)p->written);
	if (r < 0) {
		s->werr = r;
		memcpy(s->werr_pack, p->name, sizeof(s->werr_pack));
		return werr_report(s, err);
	}
	p->written += s->wbuf_len;
	s->wbuf_len = 0;
	return 0;
}

/*
 * Appends e's record to s->cur at its end: small ones into the buffer, large
 * ones (after what is buffered) straight to the file. Under s->lock.
 */
static int append_record(sb_store *s, const sb_entry *e, const void *payload, sb_error *err)
{
	sb_pack *p = s->cur;
	size_t rec_len = SB_REC_HEADER_LEN + (size_t)e->stored_len;
	if (s->werr)
		return werr_report(s, err);
	if (!s->wbuf && rec_len < SB_STORE_WBUF_DIRECT)
		s->wbuf = malloc(SB_STORE_WBUF_SIZE); /* NULL: every record is written through */
	bool buffered = s->wbuf && rec_len < SB_STORE_WBUF_DIRECT;
	if (!buffered || s->wbuf_len + rec_len > SB_STORE_WBUF_SIZE) {
		int r = sb_store__wbuf_write(s, err);
		if (r < 0)
			return r;
	}
	uint8_t hdr[SB_REC_HEADER_LEN];
	sb_pack__encode_record_header(hdr, e);
	if (buffered) {
		memcpy(s->wbuf + s->wbuf_len, hdr, sizeof(hdr));
		memcpy(s->wbuf + s->wbuf_len + sizeof(hdr), payload, e->stored_len);
		s->wbuf_len += rec_len;
	} else {
		struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, e->stored_len}};
		/* A failed or partial write leaves written where it was: the next
		 * record overwrites the debris. */
		int r = pwritev_full(p->fd, iov, 2, (off_t)p->written);
		if (r < 0)
			return sb_error_errno(err, -r, "append to 'packs/%s.pack'", p->name);
		p->written += rec_len;
	}
	p->end += rec_len;
	return 0;
}

/* A range of an own pack whose writeback is to start once s->lock is dropped. */
typedef struct writeback {
	int fd;
	uint64_t off, len;
} writeback;

/* Takes the range written since the last one, when it is long enough. Under s->lock. */
static void writeback_take(sb_pack *p, writeback *ret)
{
	if (p->written - p->wb_start < SB_STORE_WRITEBACK_STEP)
		return;
	ret->fd = p->fd;
	ret->off = p->wb_start;
	ret->len = p->written - p->wb_start;
	p->wb_start = p->written;
}

static void writeback_start(const writeback *wb)
{
	/* A head start only, so failure does not matter: flush's fsync is what
	 * makes the bytes durable, and reports write errors. */
	if (wb->len)
		(void)sync_file_range(wb->fd, (off_t)wb->off, (off_t)wb->len,
				      SYNC_FILE_RANGE_WRITE);
}

/* Creates this writer's next pack. Called with s->lock held. */
static int pack_create(sb_store *s, sb_error *err)
{
	int r = sb_store__open_packs_dir(s);
	if (r < 0)
		return sb_error_errno(err, -r, "open store directory 'packs'");
	for (int attempt = 0; attempt < 8; attempt++) {
		uint8_t rnd[16];
		size_t got = 0;
		while (got < sizeof(rnd)) {
			ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
			if (n < 0 && errno != EINTR)
				return sb_error_errno(err, errno, "getrandom");
			if (n > 0)
				got += (size_t)n;
		}
		char stem[SB_PACK_NAME_LEN + 1], fname[SB_PACK_NAME_LEN + 8];
		memcpy(stem, "pack-", 5);
		sb_hex_encode(rnd, sizeof(rnd), stem + 5);
		snprintf(fname, sizeof(fname), "%s.pack", stem);
		_cleanup_close_ int fd = openat(
		    s->packs_fd, fname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return sb_error_errno(err, errno, "create 'packs/%s'", fname);
		uint8_t hdr[SB_PACK_HEADER_LEN];
		sb_pack__encode_pack_header(hdr);
		r = sb_pwrite_full(fd, hdr, sizeof(hdr), 0);
		if (r < 0) {
			(void)unlinkat(s->packs_fd, fname, 0);
			return sb_error_errno(err, -r, "write 'packs/%s'", fname);
		}
		/* Advisory only (see store-internal.h); a filesystem without flock
		 * costs gc that hint, not us correctness. */
		(void)flock(fd, LOCK_SH | LOCK_NB);
		sb_pack *p = sb_store__pack_find_or_add(s, stem);
		if (!p) {
			(void)unlinkat(s->packs_fd, fname, 0);
			return sb_error_errno(err, ENOMEM, "create pack");
		}
		p->own = true;
		p->fd = TAKE_FD(fd);
		p->end = SB_PACK_HEADER_LEN;
		p->written = SB_PACK_HEADER_LEN;
		p->wb_start = 0;
		p->first = s->n_w;
		p->count = 0;
		s->cur = p;
		return 0;
	}
	return sb_error_set(err, EEXIST, "cannot find a free pack name in 'packs'");
}

/*
 * Appends a new object's record (e: everything but offset and pack, which
 * it fills) to this writer's pack, starting a pack when there is none or
 * the current one is full, and lists it among the own writes. Under s->lock.
 */
static int append_new(sb_store *s, sb_entry *e, const void *payload, writeback *wb, sb_error *err)
{
	int r = w_reserve(s);
	if (r < 0)
		return sb_error_errno(err, -r, "store index");
	uint64_t rec_len = SB_REC_HEADER_LEN + (uint64_t)e->stored_len;
	if (s->cur && s->cur->count > 0 && s->cur->end + rec_len > s->pack_max) {
		/* sealed: its idx is written at the next flush */
		r = sb_store__wbuf_write(s, err);
		if (r < 0)
			return r;
		s->cur = NULL;
	}
	if (!s->cur) {
		r = pack_create(s, err);
		if (r < 0)
			return r;
	}
	e->offset = s->cur->end;
	e->pack = s->cur->no;
	r = append_record(s, e, payload, err);
	if (r < 0)
		return r;
	writeback_take(s->cur, wb);
	s->w_ents[s->n_w] = *e;
	sb_idtab_insert(&s->w_idx, &e->id, s->n_w++);
	s->cur->count++;
	s->cur->dirty = true;
	s->stats.objects_written++;
	s->stats.bytes_written += rec_len;
	return 0;
}

int sb_store__put_record(sb_store *s, const sb_entry *src, const void *payload, sb_error *err)
{
	sb_entry e = *src;
	writeback wb = {-1, 0, 0};
	int r = 0;
	pthread_mutex_lock(&s->lock);
	if (!sb_idtab_find(&s->w_idx, &e.id, s->w_ents, sizeof(*s->w_ents)))
		r = append_new(s, &e, payload, &wb, err);
	pthread_mutex_unlock(&s->lock);
	writeback_start(&wb);
	return r;
}

/*
 * Compresses data at level into z->buf. Returns the compressed length, or
 * len when that does not pay: incompressible data costs zstd little (it
 * gives up fast), and keeping it raw makes every later read of it free of
 * decompression. -ENOMEM, -EIO.
 */
static ssize_t compress_at(sb_zctx *z, int level, const void *data, size_t len)
{
	if (!z->c && !(z->c = ZSTD_createCCtx()))
		return -ENOMEM;
	if (z->c_level != level) {
		ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, level);
		z->c_level = level;
	}
	/* The full bound lets zstd compress in one pass, without its stream buffers. */
	size_t bound = ZSTD_compressBound(len);
	if (sb_zctx__reserve(z, bound) < 0)
		return -ENOMEM;
	size_t n = ZSTD_compress2(z->c, z->buf, bound, data, len);
	if (ZSTD_isError(n))
		return -EIO;
	return n < len - len / 32 ? (ssize_t)n : (ssize_t)len;
}

static void swap_bufs(sb_zctx *z)
{
	uint8_t *b = z->buf;
	size_t c = z->cap;
	z->buf = z->buf2;
	z->cap = z->cap2;
	z->buf2 = b;
	z->cap2 = c;
}

/*
 * The level hint asks for, or, the first time, both levels tried and the
 * one that suits kept (sb_put_hint); without a hint, by type and size.
 * Returns as compress_at.
 */
static ssize_t compress_hinted(sb_zctx *z, sb_obj_type type, sb_put_hint *hint, const void *data,
			       size_t len)
{
	if (!hint)
		return compress_at(
		    z, type == SB_OBJ_BLOB && len < SB_STORE_SMALL_BLOB ? 1 : SB_STORE_ZSTD_LEVEL,
		    data, len);
	if (hint->level)
		return compress_at(z, hint->level, data, len);
	ssize_t n2 = compress_at(z, SB_STORE_ZSTD_LEVEL, data, len);
	if (n2 < 0)
		return n2;
	swap_bufs(z);
	ssize_t n1 = compress_at(z, 1, data, len);
	if (n1 < 0)
		return n1;
	hint->level = n1 <= n2 + n2 / SB_STORE_LEVEL1_SLACK ? 1 : SB_STORE_ZSTD_LEVEL;
	if (hint->level == 1)
		return n1;
	swap_bufs(z);
	return n2;
}

/* Compresses data into z->buf unless that does not pay. Sets e's lengths and flags. */
static int compress_payload(sb_zctx *z, const void *data, size_t len, sb_put_hint *hint,
			    sb_entry *e, sb_error *err)
{
	e->raw_len = (uint32_t)len;
	e->stored_len = (uint32_t)len;
	e->flags = 0;
	if (len < SB_COMPRESS_MIN)
		return 0;
	ssize_t n = compress_hinted(z, e->type, hint, data, len);
	if (n == -ENOMEM)
		return sb_error_errno(err, ENOMEM, "compress %zu bytes", len);
	if (n < 0)
		return sb_error_set(err, EIO, "zstd compression of %zu bytes failed", len);
	if ((size_t)n < len) {
		e->stored_len = (uint32_t)n;
		e->flags = SB_REC_ZSTD;
	}
	return 0;
}

/*
 * Keeps a tree just stored or found present for the reads that follow (never
 * a scratch object: those must vanish with the scratch layer). Under s->lock.
 */
void sb_store__cache_tree(sb_store *s, const sb_entry *e, const void *data, size_t len)
{
	if (s->keep_trees && e->type == SB_OBJ_TREE)
		sb_objcache_put(&s->trees, &e->id, data, len);
}

void sb_store_keep_trees(sb_store *s, bool on)
{
	pthread_mutex_lock(&s->lock);
	if (on && !s->keep_trees)
		sb_objcache_init(&s->trees, SB_STORE_TREE_CACHE);
	if (!on)
		sb_objcache_release(&s->trees);
	s->keep_trees = on;
	pthread_mutex_unlock(&s->lock);
}

int sb_store_put(sb_store *s, sb_obj_type type, const void *data, size_t len, sb_id *ret_id,
		 sb_error *err)
{
	return sb_store_put_hinted(s, type, data, len, NULL, ret_id, err);
}

int sb_store_put_hinted(sb_store *s, sb_obj_type type, const void *data, size_t len,
			sb_put_hint *hint, sb_id *ret_id, sb_error *err)
{
	if (type < SB_OBJ_BLOB || type > SB_OBJ_CHUNKS)
		return sb_error_set(err, EINVAL, "invalid object type %d", (int)type);
	if (len > SB_OBJ_MAX)
		return sb_error_set(err, EFBIG, "object of %zu bytes exceeds the limit of %u", len,
				    SB_OBJ_MAX);
	if (!(s->flags & SB_STORE_WRITE))
		return sb_error_set(err, EROFS, "store was opened read-only");

	sb_entry e = {.type = (uint8_t)type};
	int r = sb_store__hash(type, data, len, &e.id);
	if (r < 0)
		return sb_error_errno(err, -r, "hash object");

	pthread_mutex_lock(&s->lock);
	sb_entry found;
	bool have = sb_store__lookup(s, &e.id, &found, NULL) > 0;
	if (have) {
		s->stats.objects_deduped++;
		sb_store__cache_tree(s, &e, data, len);
	}
	/* In scratch mode a new object goes no further than memory. */
	bool scratch = !have && s->scratch;
	if (scratch)
		r = sb_scratch__put(s->scratch, type, &e.id, data, len);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return sb_error_errno(err, -r, "an object kept in memory");
	if (have || scratch) {
		*ret_id = e.id;
		return 0;
	}

	sb_zctx *z = sb_store__zctx_get(s);
	if (!z)
		return sb_error_errno(err, ENOMEM, "compression context");
	r = compress_payload(z, data, len, hint, &e, err);
	if (r < 0) {
		sb_store__zctx_put(s, z);
		return r;
	}

	writeback wb = {-1, 0, 0};
	pthread_mutex_lock(&s->lock);
	if (sb_store__lookup(s, &e.id, &found, NULL) > 0) {
		/* Another thread stored it while we compressed. */
		s->stats.objects_deduped++;
		goto done;
	}
	r = append_new(s, &e, (e.flags & SB_REC_ZSTD) ? z->buf : data, &wb, err);
	if (r == 0)
		sb_store__cache_tree(s, &e, data, len);
done:
	pthread_mutex_unlock(&s->lock);
	writeback_start(&wb);
	sb_store__zctx_put(s, z);
	if (r < 0)
		return r;
	*ret_id = e.id;
	return 0;
}

int sb_store_scratch_begin(sb_store *s)
{
	sb_scratch *sc = sb_scratch__new();
	if (!sc)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	bool busy = s->scratch != NULL;
	if (!busy)
		s->scratch = sc;
	pthread_mutex_unlock(&s->lock);
	if (busy)
		sb_scratch__free(sc);
	return busy ? -EBUSY : 0;
}

void sb_store_scratch_end(sb_store *s)
{
	pthread_mutex_lock(&s->lock);
	sb_scratch *sc = s->scratch;
	s->scratch = NULL;
	pthread_mutex_unlock(&s->lock);
	sb_scratch__free(sc);
}

/* ---- flush ---- */

typedef struct flush_job {
	sb_pack *pack;
	sb_entry *ents;
	size_t n;
	uint64_t end;
} flush_job;

int sb_store_flush(sb_store *s, sb_error *err)
{
	int r = 0;
	flush_job *jobs = NULL;
	size_t n_jobs = 0;

	pthread_mutex_lock(&s->flush_lock);
	pthread_mutex_lock(&s->lock);
	r = sb_store__wbuf_write(s, err);
	if (r < 0) {
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_unlock(&s->flush_lock);
		return r;
	}
	for (size_t i = 0; i < s->n_packs; i++)
		if (s->packs[i]->own && s->packs[i]->dirty)
			n_jobs++;
	if (n_jobs)
		jobs = calloc(n_jobs, sizeof(*jobs));
	if (n_jobs && !jobs)
		r = -ENOMEM;
	for (size_t i = 0, j = 0; r == 0 && i < s->n_packs; i++) {
		sb_pack *p = s->packs[i];
		if (!p->own || !p->dirty)
			continue;
		jobs[j].pack = p;
		jobs[j].n = p->count;
		jobs[j].end = p->end;
		jobs[j].ents = malloc((p->count ? p->count : 1) * sizeof(sb_entry));
		if (!jobs[j].ents) {
			r = -ENOMEM;
			break;
		}
		memcpy(jobs[j].ents, s->w_ents + p->first, p->count * sizeof(sb_entry));
		j++;
	}
	if (r == 0)
		for (size_t j = 0; j < n_jobs; j++)
			jobs[j].pack->dirty = false;
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		sb_error_errno(err, -r, "flush store");
		goto out;
	}

	/* Pack bytes reach the disk before the index that points at them. */
	for (size_t j = 0; j < n_jobs; j++) {
		flush_job *jb = &jobs[j];
		char fname[SB_PACK_NAME_LEN + 8];
		if (fsync(jb->pack->fd) < 0) {
			r = sb_error_errno(err, errno, "fsync 'packs/%s.pack'", jb->pack->name);
			goto out;
		}
		qsort(jb->ents, jb->n, sizeof(sb_entry), sb_entry__cmp);
		_cleanup_free_ uint8_t *idx = NULL;
		size_t idx_len;
		r = sb_pack__encode_idx(jb->ents, jb->n, jb->end, &idx, &idx_len);
		if (r < 0) {
			sb_error_errno(err, -r, "encode index of 'packs/%s.pack'", jb->pack->name);
			goto out;
		}
		snprintf(fname, sizeof(fname), "%s.idx", jb->pack->name);
		r = sb_write_atomic(s->packs_fd, fname, idx, idx_len, 0444, SB_WRITE_SYNC, err);
		if (r < 0)
			goto out;
		jb->pack = NULL;
	}
out:
	if (r < 0 && jobs) {
		pthread_mutex_lock(&s->lock);
		for (size_t j = 0; j < n_jobs; j++)
			if (jobs[j].pack)
				jobs[j].pack->dirty = true;
		pthread_mutex_unlock(&s->lock);
	}
	for (size_t j = 0; j < n_jobs && jobs; j++)
		free(jobs[j].ents);
	free(jobs);
	pthread_mutex_unlock(&s->flush_lock);
	return r;
}

void sb_store_get_stats(sb_store *s, sb_store_stats *ret)
{
	pthread_mutex_lock(&s->lock);
	/* Field by field: objects_read is bumped outside the lock, atomically. */
	ret->objects_written = s->stats.objects_written;
	ret->objects_deduped = s->stats.objects_deduped;
	ret->bytes_written = s->stats.bytes_written;
	ret->cache_hits = s->stats.cache_hits;
	pthread_mutex_unlock(&s->lock);
	ret->objects_read = __atomic_load_n(&s->stats.objects_read, __ATOMIC_RELAXED);
}

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "cdc.h"
#include "content.h"
#include "fileio.h"
#include "store-internal.h"

#define CHUNKS_MAGIC	  "sbchnk1\n"
#define CHUNKS_HEADER_LEN 20
#define CHUNKS_ENTRY_LEN  36
/* Chunking buffer: the largest chunk plus room to read ahead in big steps. */
#define STREAM_BUF (SB_CDC_MAX + (1u << 20))
/* Sparse writes skip all-zero blocks of this size at aligned file offsets. */
#define SPARSE_BLOCK 4096

/* Where the objects a file is cut into go: the store, or only the hash. */
typedef struct emitter {
	sb_store *store; /* NULL: hash only */
} emitter;

/* hint: the level of a large file's chunks (store.h), or NULL. */
static int emit(const emitter *em, sb_obj_type type, const void *data, size_t len,
		sb_put_hint *hint, sb_id *ret_id, sb_error *err)
{
	if (em->store)
		return sb_store_put_hinted(em->store, type, data, len, hint, ret_id, err);
	int r = sb_store__hash(type, data, len, ret_id);
	return r < 0 ? sb_error_errno(err, -r, "hash content") : 0;
}

typedef struct chunk_list {
	sb_buf buf; /* header placeholder + entries */
	uint64_t count, total;
	sb_put_hint hint; /* one level for all the file's chunks */
} chunk_list;

static void chunk_list_release(chunk_list *l)
{
	sb_buf_release(&l->buf);
}

static int list_add(const emitter *em, chunk_list *l, const void *data, size_t len, sb_error *err)
{
	sb_id id;
	int r = emit(em, SB_OBJ_BLOB, data, len, &l->hint, &id, err);
	if (r < 0)
		return r;
	if (l->buf.len == 0 &&
	    sb_buf_append(&l->buf, CHUNKS_MAGIC "\0\0\0\0\0\0\0\0\0\0\0\0", CHUNKS_HEADER_LEN) < 0)
		return sb_error_errno(err, ENOMEM, "chunk list");
	if (sb_buf_put_le32(&l->buf, (uint32_t)len) < 0 ||
	    sb_buf_append(&l->buf, id.b, SB_ID_LEN) < 0)
		return sb_error_errno(err, ENOMEM, "chunk list");
	l->count++;
	l->total += len;
	return 0;
}

static int list_finish(const emitter *em, chunk_list *l, sb_id *ret_id, sb_error *err)
{
	if (l->count > UINT32_MAX || l->buf.len > SB_OBJ_MAX)
		return sb_error_set(err, EFBIG, "file of %" PRIu64 " bytes has too many chunks",
				    l->total);
	uint8_t *h = (uint8_t *)l->buf.data + 8;
	for (int i = 0; i < 4; i++)
		h[i] = (uint8_t)(l->count >> (8 * i));
	for (int i = 0; i < 8; i++)
		h[4 + i] = (uint8_t)(l->total >> (8 * i));
	return emit(em, SB_OBJ_CHUNKS, l->buf.data, l->buf.len, NULL, ret_id, err);
}

static int content_buf(const emitter *em, const void *data, size_t len, sb_id *ret_id,
		       sb_error *err)
{
	if (len <= SB_CONTENT_CHUNK_MIN_FILE)
		return emit(em, SB_OBJ_BLOB, data, len, NULL, ret_id, err);
	const uint8_t *p = data;
	_cleanup_(chunk_list_release) chunk_list l = {SB_BUF_INIT, 0, 0, {0}};
	while (len > 0) {
		size_t n = sb_cdc_cut(p, len);
		int r = list_add(em, &l, p, n, err);
		if (r < 0)
			return r;
		p += n;
		len -= n;
	}
	return list_finish(em, &l, ret_id, err);
}

static int grow(uint8_t **buf, size_t *cap, size_t want)
{
	if (*cap >= want)
		return 0;
	uint8_t *nb = realloc(*buf, want);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = want;
	return 0;
}

/* A file being read from offset 0 whatever its fd offset; a pipe as it comes. */
typedef struct reader {
	int fd;
	bool seekable;
	uint64_t pos;
	bool eof;
	uint64_t end; /* a short read ending here is EOF; UINT64_MAX: only a zero read is */
} reader;

/* Reads into buf[*fill..cap); sets r->eof at the end of the file. */
static int fill_some(reader *rd, uint8_t *buf, size_t cap, size_t *fill, sb_error *err)
{
	ssize_t n;
	for (;;) {
		n = rd->seekable ? pread(rd->fd, buf + *fill, cap - *fill, (off_t)rd->pos)
				 : read(rd->fd, buf + *fill, cap - *fill);
		if (n >= 0)
			break;
		if (errno == ESPIPE && rd->seekable && rd->pos == 0) {
			rd->seekable = false;
			continue;
		}
		if (errno != EINTR)
			return sb_error_errno(err, errno, "read file content at offset %" PRIu64,
					      rd->pos);
	}
	bool short_read = (size_t)n < cap - *fill;
	*fill += (size_t)n;
	rd->pos += (uint64_t)n;
	if (n == 0 || (short_read && rd->seekable && rd->pos == rd->end))
		rd->eof = true;
	return 0;
}

static int content_fd(const emitter *em, int fd, const struct stat *known, sb_id *ret_id,
		      uint64_t *ret_size, sb_error *err)
{
	/* Size the first buffer by fstat so that the common small file costs one
	 * small allocation; the size is only a hint, EOF decides. */
	struct stat st;
	if (!known && fstat(fd, &st) == 0)
		known = &st;
	size_t hint = 0;
	if (known && S_ISREG(known->st_mode) && known->st_size > 0)
		hint = (uint64_t)known->st_size < STREAM_BUF ? (size_t)known->st_size : STREAM_BUF;
	size_t cap = 0;
	_cleanup_free_ uint8_t *buf = NULL;
	if (grow(&buf, &cap, MAX(hint + 1, (size_t)4096)) < 0)
		return sb_error_errno(err, ENOMEM, "read buffer");

	size_t fill = 0;
	reader rd = {fd, true, 0, false, UINT64_MAX};
	/* Only the caller's stat may end a read early: the caller stats again. */
	if (known && known != &st && S_ISREG(known->st_mode))
		rd.end = (uint64_t)known->st_size;
	while (!rd.eof && fill <= SB_CONTENT_CHUNK_MIN_FILE) {
		if (fill == cap && grow(&buf, &cap, MIN(cap * 2, (size_t)STREAM_BUF)) < 0)
			return sb_error_errno(err, ENOMEM, "read buffer");
		int r = fill_some(&rd, buf, cap, &fill, err);
		if (r < 0)
			return r;
	}
	if (rd.eof && fill <= SB_CONTENT_CHUNK_MIN_FILE) {
		int r = emit(em, SB_OBJ_BLOB, buf, fill, NULL, ret_id, err);
		if (r < 0)
			return r;
		*ret_size = fill;
		return 0;
	}

	if (grow(&buf, &cap, STREAM_BUF) < 0)
		return sb_error_errno(err, ENOMEM, "read buffer");
	_cleanup_(chunk_list_release) chunk_list l = {SB_BUF_INIT, 0, 0, {0}};
	sb_cdc c;
	sb_cdc_init(&c);
	/* buf[start..scanned) is the current chunk, buf[scanned..fill) not yet cut. */
	size_t start = 0, scanned = 0;
	for (;;) {
		while (scanned < fill) {
			bool cut;
			scanned += sb_cdc_feed(&c, buf + scanned, fill - scanned, &cut);
			if (!cut)
				break;
			int r = list_add(em, &l, buf + start, scanned - start, err);
			if (r < 0)
				return r;
			start = scanned;
		}
		if (rd.eof)
			break;
		if (fill == cap) {
			/* Moves less than one chunk per chunk-sized step of reading. */
			memmove(buf, buf + start, fill - start);
			fill -= start;
			scanned -= start;
			start = 0;
		}
		int r = fill_some(&rd, buf, cap, &fill, err);
		if (r < 0)
			return r;
	}
	if (fill > start) {
		int r = list_add(em, &l, buf + start, fill - start, err);
		if (r < 0)
			return r;
	}
	int r = list_finish(em, &l, ret_id, err);
	if (r < 0)
		return r;
	*ret_size = l.total;
	return 0;
}

int sb_content_store_fd(sb_store *s, int fd, sb_id *ret_id, uint64_t *ret_size, sb_error *err)
{
	emitter em = {s};
	return content_fd(&em, fd, NULL, ret_id, ret_size, err);
}

int sb_content_store_fd_stat(sb_store *s, int fd, const struct stat *st, sb_id *ret_id,
			     uint64_t *ret_size, sb_error *err)
{
	emitter em = {s};
	return content_fd(&em, fd, st, ret_id, ret_size, err);
}

int sb_content_store_buf(sb_store *s, const void *data, size_t len, sb_id *ret_id, sb_error *err)
{
	emitter em = {s};
	return content_buf(&em, data, len, ret_id, err);
}

int sb_content_hash_fd(int fd, sb_id *ret_id, uint64_t *ret_size, sb_error *err)
{
	emitter em = {NULL};
	return content_fd(&em, fd, NULL, ret_id, ret_size, err);
}

/* ---- reading back ---- */

typedef struct chunk_ref {
	uint32_t size;
	sb_id id;
} chunk_ref;

/*
 * Parses and checks a chunk list: exact length, sizes adding up to the total.
 * Chunk contents are checked as they are read.
 */
static int parse_list(const sb_id *id, const uint8_t *p, size_t len, uint64_t *ret_count,
		      uint64_t *ret_total, sb_error *err)
{
	char hex[SB_HEX_LEN + 1];
	if (len < CHUNKS_HEADER_LEN || memcmp(p, CHUNKS_MAGIC, 8) != 0)
		return sb_error_set(err, EBADMSG, "chunk list %s has a bad header",
				    sb_id_to_hex(id, hex));
	uint64_t count = sb_le32(p + 8), total = sb_le64(p + 12);
	if ((len - CHUNKS_HEADER_LEN) % CHUNKS_ENTRY_LEN != 0 ||
	    (len - CHUNKS_HEADER_LEN) / CHUNKS_ENTRY_LEN != count)
		return sb_error_set(err, EBADMSG, "chunk list %s: %" PRIu64 " entries in %zu bytes",
				    sb_id_to_hex(id, hex), count, len);
	uint64_t sum = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint32_t sz = sb_le32(p + CHUNKS_HEADER_LEN + i * CHUNKS_ENTRY_LEN);
		if (sz == 0 || sz > SB_OBJ_MAX)
			return sb_error_set(err, EBADMSG,
					    "chunk list %s: chunk %" PRIu64
					    " has impossible size %" PRIu32,
					    sb_id_to_hex(id, hex), i, sz);
		sum += sz;
	}
	if (sum != total)
		return sb_error_set(
		    err, EBADMSG, "chunk list %s: chunks add up to %" PRIu64 " bytes, not %" PRIu64,
		    sb_id_to_hex(id, hex), sum, total);
	*ret_count = count;
	*ret_total = total;
	return 0;
}

static chunk_ref list_entry(const uint8_t *p, uint64_t i)
{
	chunk_ref c;
	const uint8_t *q = p + CHUNKS_HEADER_LEN + i * CHUNKS_ENTRY_LEN;
	c.size = sb_le32(q);
	memcpy(c.id.b, q + 4, SB_ID_LEN);
	return c;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	if (n == 0)
		return true;
	if (n < 16) {
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return false;
		return true;
	}
	static const uint8_t zero[16];
	return memcmp(p, zero, 16) == 0 && memcmp(p, p + 16, n - 16) == 0;
}

static int write_at(int fd, const uint8_t *p, size_t n, uint64_t off, const sb_id *id,
		    sb_error *err)
{
	int r = sb_pwrite_full(fd, p, n, (off_t)off);
	if (r < 0) {
		char hex[SB_HEX_LEN + 1];
		return sb_error_errno(err, -r, "write content %s at offset %" PRIu64,
				      sb_id_to_hex(id, hex), off);
	}
	return 0;
}

/* Writes p at file offset off, leaving holes for zero blocks when sparse. */
static int write_piece(int fd, const uint8_t *p, size_t n, uint64_t off, bool sparse,
		       const sb_id *id, sb_error *err)
{
	if (!sparse)
		return write_at(fd, p, n, off, id, err);
	size_t i = 0, run = 0; /* p[run..i) is data waiting to be written */
	while (i < n) {
		size_t blk = SPARSE_BLOCK - (size_t)((off + i) % SPARSE_BLOCK);
		if (blk > n - i)
			blk = n - i;
		if (all_zero(p + i, blk)) {
			if (i > run) {
				int r = write_at(fd, p + run, i - run, off + run, id, err);
				if (r < 0)
					return r;
			}
			run = i + blk;
		}
		i += blk;
	}
	if (n > run)
		return write_at(fd, p + run, n - run, off + run, id, err);
	return 0;
}

static int size_mismatch(const sb_id *id, uint64_t have, uint64_t want, sb_error *err)
{
	char hex[SB_HEX_LEN + 1];
	return sb_error_set(err, EBADMSG, "content %s is %" PRIu64 " bytes, expected %" PRIu64,
			    sb_id_to_hex(id, hex), have, want);
}

static int write_chunks(sb_store *s, const sb_id *id, const uint8_t *list, uint64_t count, int fd,
			bool sparse, sb_error *err)
{
	/* Runs of one repeated chunk (zeros, mostly) are fetched and checked once. */
	_cleanup_free_ uint8_t *prev = NULL;
	sb_id prev_id;
	bool prev_zero = false;
	uint64_t off = 0;
	for (uint64_t i = 0; i < count; i++) {
		chunk_ref c = list_entry(list, i);
		if (!prev || !sb_id_eq(&prev_id, &c.id)) {
			free(TAKE_PTR(prev));
			size_t len;
			void *data;
			int r = sb_store_get(s, &c.id, SB_OBJ_BLOB, NULL, &data, &len, err);
			if (r < 0)
				return r;
			prev = data;
			prev_id = c.id;
			if (len != c.size) {
				char hex[SB_HEX_LEN + 1];
				return sb_error_set(err, EBADMSG,
						    "chunk %" PRIu64
						    " of %s is %zu bytes, the list says %" PRIu32,
						    i, sb_id_to_hex(id, hex), len, c.size);
			}
			prev_zero = sparse && all_zero(prev, len);
		}
		if (!prev_zero) {
			int r = write_piece(fd, prev, c.size, off, sparse, &c.id, err);
			if (r < 0)
				return r;
		}
		off += c.size;
	}
	return 0;
}

int sb_content_write_fd(sb_store *s, const sb_id *id, uint64_t expect_size, int fd,
			sb_content_write_flags flags, sb_error *err)
{
	bool sparse = flags & SB_CONTENT_SPARSE;
	sb_obj_type type;
	_cleanup_free_ void *data = NULL;
	size_t len;
	int r = sb_store_get(s, id, 0, &type, &data, &len, err);
	if (r < 0)
		return r;

	uint64_t total;
	if (type == SB_OBJ_BLOB) {
		total = len;
		if (expect_size != UINT64_MAX && total != expect_size)
			return size_mismatch(id, total, expect_size, err);
		r = write_piece(fd, data, len, 0, sparse, id, err);
	} else if (type == SB_OBJ_CHUNKS) {
		uint64_t count;
		r = parse_list(id, data, len, &count, &total, err);
		if (r < 0)
			return r;
		if (expect_size != UINT64_MAX && total != expect_size)
			return size_mismatch(id, total, expect_size, err);
		r = write_chunks(s, id, data, count, fd, sparse, err);
	} else {
		char hex[SB_HEX_LEN + 1];
		return sb_error_set(err, EBADMSG, "object %s is a tree, not file content",
				    sb_id_to_hex(id, hex));
	}
	if (r < 0)
		return r;
	if (sparse && ftruncate(fd, (off_t)total) < 0)
		return sb_error_errno(err, errno, "truncate to %" PRIu64 " bytes", total);
	return 0;
}

int sb_content_foreach_object(sb_store *s, const sb_id *id, sb_content_each_fn fn, void *userdata,
			      sb_error *err)
{
	sb_obj_type type;
	int r = sb_store_stat(s, id, &type, NULL, err);
	if (r < 0)
		return r;
	if (type == SB_OBJ_BLOB)
		return fn(userdata, id);
	if (type != SB_OBJ_CHUNKS) {
		char hex[SB_HEX_LEN + 1];
		return sb_error_set(err, EBADMSG, "object %s is a tree, not file content",
				    sb_id_to_hex(id, hex));
	}
	_cleanup_free_ void *data = NULL;
	size_t len;
	r = sb_store_get(s, id, SB_OBJ_CHUNKS, NULL, &data, &len, err);
	if (r < 0)
		return r;
	uint64_t count, total;
	r = parse_list(id, data, len, &count, &total, err);
	if (r < 0)
		return r;
	r = fn(userdata, id);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < count; i++) {
		chunk_ref c = list_entry(data, i);
		if (i > 0) {
			chunk_ref prev = list_entry(data, i - 1);
			if (sb_id_eq(&c.id, &prev.id))
				continue;
		}
		r = fn(userdata, &c.id);
		if (r < 0)
			return r;
	}
	return 0;
}

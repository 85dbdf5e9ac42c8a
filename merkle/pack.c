/* SPDX-License-Identifier: MIT */
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "buf.h"
#include "fileio.h"
#include "store-internal.h"

int sb_entry__cmp(const void *a, const void *b)
{
	const uint8_t *x = ((const sb_entry *)a)->id.b, *y = ((const sb_entry *)b)->id.b;
	/* Ids are uniformly random: their first 8 bytes nearly always decide,
	 * compared as one big-endian word instead of byte by byte. */
	uint64_t hx, hy;
	memcpy(&hx, x, sizeof(hx));
	memcpy(&hy, y, sizeof(hy));
	hx = be64toh(hx);
	hy = be64toh(hy);
	if (hx != hy)
		return hx < hy ? -1 : 1;
	return memcmp(x + 8, y + 8, SB_ID_LEN - 8);
}

const char *sb_rec_problem_str(sb_rec_problem p)
{
	switch (p) {
	case SB_REC_OK:
		return "ok";
	case SB_REC_TRUNCATED:
		return "truncated";
	case SB_REC_BAD_HEADER:
		return "bad record header";
	case SB_REC_DECOMPRESS:
		return "decompression failed";
	case SB_REC_HASH_MISMATCH:
		return "hash mismatch";
	case SB_REC_IO:
		return "read error";
	}
	return "unknown problem";
}

int sb_zctx__reserve(sb_zctx *z, size_t cap)
{
	if (z->cap >= cap)
		return 0;
	/* No realloc: the old contents are scratch, copying them is waste. */
	uint8_t *p = malloc(cap);
	if (!p)
		return -ENOMEM;
	free(z->buf);
	z->buf = p;
	z->cap = cap;
	return 0;
}

void sb_pack__encode_pack_header(uint8_t hdr[SB_PACK_HEADER_LEN])
{
	memcpy(hdr, SB_PACK_MAGIC, 8);
	sb_put_le32(hdr + 8, 1);
	sb_put_le32(hdr + 12, 0);
}

void sb_pack__encode_record_header(uint8_t hdr[SB_REC_HEADER_LEN], const sb_entry *e)
{
	memcpy(hdr, SB_REC_MAGIC, 4);
	hdr[4] = e->type;
	hdr[5] = e->flags;
	sb_put_le16(hdr + 6, 0);
	sb_put_le32(hdr + 8, e->raw_len);
	sb_put_le32(hdr + 12, e->stored_len);
	memcpy(hdr + 16, e->id.b, SB_ID_LEN);
}

/* preadv until done or EOF; returns the bytes read. Adjusts iov in place. */
static ssize_t preadv_full(int fd, struct iovec *iov, int cnt, off_t off)
{
	size_t done = 0;
	while (cnt > 0) {
		ssize_t n = preadv(fd, iov, cnt, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
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
	return (ssize_t)done;
}

static int rec_fail(sb_error *err, sb_rec_problem *ret_problem, sb_rec_problem p,
		    const char *pack_name, const sb_entry *e)
{
	char hex[SB_HEX_LEN + 1];
	*ret_problem = p;
	return sb_error_set(err, EBADMSG,
			    "object %s in 'packs/%s.pack' at offset %" PRIu64 " is corrupt: %s",
			    sb_id_to_hex(&e->id, hex), pack_name, e->offset, sb_rec_problem_str(p));
}

static bool header_matches(const uint8_t hdr[SB_REC_HEADER_LEN], const sb_entry *e)
{
	return memcmp(hdr, SB_REC_MAGIC, 4) == 0 && hdr[4] == e->type && hdr[5] == e->flags &&
	       sb_le16(hdr + 6) == 0 && sb_le32(hdr + 8) == e->raw_len &&
	       sb_le32(hdr + 12) == e->stored_len && memcmp(hdr + 16, e->id.b, SB_ID_LEN) == 0;
}

/*
 * The payload as stored (stored_len bytes) into out (raw_len bytes; the same
 * buffer for a raw record), re-hashed against e's id: SB_REC_OK, the
 * problem found, or -ENOMEM.
 */
static int decode(const sb_entry *e, const void *stored, uint8_t *out, sb_zctx *z)
{
	if (e->flags & SB_REC_ZSTD) {
		if (!z->d && !(z->d = ZSTD_createDCtx()))
			return -ENOMEM;
		size_t n = ZSTD_decompressDCtx(z->d, out, e->raw_len, stored, e->stored_len);
		if (ZSTD_isError(n) || n != e->raw_len)
			return SB_REC_DECOMPRESS;
	}
	sb_id got;
	int r = sb_store__hash(e->type, out, e->raw_len, &got);
	if (r < 0)
		return r;
	return sb_id_eq(&got, &e->id) ? SB_REC_OK : SB_REC_HASH_MISMATCH;
}

int sb_pack__check_stored(const sb_entry *e, const void *stored, sb_zctx *z)
{
	bool zstd = e->flags & SB_REC_ZSTD;
	if (e->raw_len > SB_OBJ_MAX || (!zstd && e->stored_len != e->raw_len))
		return -EBADMSG;
	_cleanup_free_ uint8_t *out = zstd ? malloc((size_t)e->raw_len + 1) : NULL;
	if (zstd && !out)
		return -ENOMEM;
	int r = decode(e, stored, zstd ? out : (uint8_t *)stored, z);
	return r < 0 ? r : r > 0 ? -EBADMSG : 0;
}

/* Header and stored payload of e's record, the header checked against e. */
static int read_raw(int fd, const char *pack_name, const sb_entry *e, void *buf,
		    sb_rec_problem *ret_problem, sb_error *err)
{
	uint8_t hdr[SB_REC_HEADER_LEN];
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {buf, e->stored_len}};
	ssize_t n = preadv_full(fd, iov, 2, (off_t)e->offset);
	if (n < 0) {
		char hex[SB_HEX_LEN + 1];
		*ret_problem = SB_REC_IO;
		return sb_error_errno(err, (int)-n, "read object %s from 'packs/%s.pack'",
				      sb_id_to_hex(&e->id, hex), pack_name);
	}
	if ((size_t)n < SB_REC_HEADER_LEN + (size_t)e->stored_len)
		return rec_fail(err, ret_problem, SB_REC_TRUNCATED, pack_name, e);
	if (!header_matches(hdr, e))
		return rec_fail(err, ret_problem, SB_REC_BAD_HEADER, pack_name, e);
	return 0;
}

int sb_pack__read_stored(int fd, const char *pack_name, const sb_entry *e, void *buf, sb_error *err)
{
	sb_rec_problem p;
	if (e->stored_len > SB_STORED_MAX)
		return rec_fail(err, &p, SB_REC_BAD_HEADER, pack_name, e);
	return read_raw(fd, pack_name, e, buf, &p, err);
}

int sb_pack__read_record(int fd, const char *pack_name, const sb_entry *e, sb_zctx *z,
			 void **ret_data, sb_rec_problem *ret_problem, sb_error *err)
{
	sb_rec_problem dummy;
	if (!ret_problem)
		ret_problem = &dummy;
	*ret_problem = SB_REC_OK;

	bool zstd = e->flags & SB_REC_ZSTD;
	/* Lengths come from an index: bound them before trusting them with malloc. */
	if (e->raw_len > SB_OBJ_MAX || e->stored_len > SB_STORED_MAX ||
	    (!zstd && e->stored_len != e->raw_len))
		return rec_fail(err, ret_problem, SB_REC_BAD_HEADER, pack_name, e);

	_cleanup_free_ uint8_t *out = malloc((size_t)e->raw_len + 1);
	if (!out)
		return sb_error_errno(err, ENOMEM, "object of %" PRIu32 " bytes", e->raw_len);
	if (zstd && sb_zctx__reserve(z, e->stored_len) < 0)
		return sb_error_errno(err, ENOMEM, "object of %" PRIu32 " bytes", e->stored_len);

	int r = read_raw(fd, pack_name, e, zstd ? z->buf : out, ret_problem, err);
	if (r < 0)
		return r;
	r = decode(e, zstd ? z->buf : out, out, z);
	if (r < 0)
		return sb_error_errno(err, -r, "decompress or hash object");
	if (r > 0)
		return rec_fail(err, ret_problem, (sb_rec_problem)r, pack_name, e);

	out[e->raw_len] = 0;
	*ret_data = TAKE_PTR(out);
	return 0;
}

int sb_pack__encode_idx(const sb_entry *ents, size_t n, uint64_t pack_size, uint8_t **ret,
			size_t *ret_len)
{
	if (n > UINT32_MAX)
		return -EOVERFLOW;
	size_t len = SB_IDX_HEADER_LEN + n * SB_IDX_ENTRY_LEN + SB_IDX_TRAILER_LEN;
	uint8_t *p = malloc(len);
	if (!p)
		return -ENOMEM;
	memcpy(p, SB_IDX_MAGIC, 8);
	sb_put_le32(p + 8, SB_IDX_VERSION);
	sb_put_le32(p + 12, (uint32_t)n);
	sb_put_le64(p + 16, pack_size);
	uint8_t *q = p + SB_IDX_HEADER_LEN;
	for (size_t i = 0; i < n; i++, q += SB_IDX_ENTRY_LEN) {
		memcpy(q, ents[i].id.b, SB_ID_LEN);
		sb_put_le64(q + 32, ents[i].offset);
		sb_put_le32(q + 40, ents[i].raw_len);
		sb_put_le32(q + 44, ents[i].stored_len);
		q[48] = ents[i].type;
		q[49] = ents[i].flags;
		sb_put_le16(q + 50, 0);
	}
	sb_id sum;
	sb_sha256_buf(p, (size_t)(q - p), &sum);
	memcpy(q, sum.b, SB_ID_LEN);
	*ret = p;
	*ret_len = len;
	return 0;
}

int sb_pack__load_idx(int packs_fd, const char *name, uint32_t pack_no, sb_entry **ret_ents,
		      size_t *ret_n, uint64_t *ret_pack_size, char *why, size_t why_size)
{
	char fname[SB_PACK_NAME_LEN + 8];
	snprintf(fname, sizeof(fname), "%s.idx", name);
	why[0] = 0;

	_cleanup_close_ int fd = openat(packs_fd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;
		snprintf(why, why_size, "cannot open: %s", strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		snprintf(why, why_size, "cannot stat: %s", strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "not a regular file");
		return -EBADMSG;
	}
	uint64_t size = (uint64_t)st.st_size, count, pack_size;
	if (size < SB_IDX_HEADER_LEN + SB_IDX_TRAILER_LEN || size > SB_IDX_MAX_FILE) {
		snprintf(why, why_size, "impossible size %" PRIu64, size);
		return -EBADMSG;
	}
	_cleanup_free_ uint8_t *p = malloc(size);
	if (!p) {
		snprintf(why, why_size, "out of memory for %" PRIu64 " bytes", size);
		return -ENOMEM;
	}
	ssize_t got = sb_read_full(fd, p, size);
	if (got < 0) {
		snprintf(why, why_size, "read failed: %s", strerror((int)-got));
		return (int)got;
	}
	if ((uint64_t)got != size) {
		snprintf(why, why_size, "shrank while being read");
		return -EBADMSG;
	}

	sb_id sum;
	sb_sha256_buf(p, size - SB_IDX_TRAILER_LEN, &sum);
	if (memcmp(sum.b, p + size - SB_IDX_TRAILER_LEN, SB_ID_LEN) != 0) {
		snprintf(why, why_size, "checksum mismatch");
		return -EBADMSG;
	}
	int r = sb_pack__check_idx_header(p, size, &count, &pack_size, why, why_size);
	if (r < 0)
		return r;

	_cleanup_free_ sb_entry *ents = count ? calloc(count, sizeof(*ents)) : NULL;
	if (count && !ents) {
		snprintf(why, why_size, "out of memory for %" PRIu64 " entries", count);
		return -ENOMEM;
	}
	const uint8_t *q = p + SB_IDX_HEADER_LEN;
	for (uint64_t i = 0; i < count; i++, q += SB_IDX_ENTRY_LEN) {
		sb_entry *e = &ents[i];
		if (!sb_pack__decode_entry(q, pack_size, pack_no, e)) {
			snprintf(why, why_size, "entry %" PRIu64 " is invalid", i);
			return -EBADMSG;
		}
		if (i > 0 && memcmp(ents[i - 1].id.b, e->id.b, SB_ID_LEN) >= 0) {
			snprintf(why, why_size, "entries not sorted at %" PRIu64, i);
			return -EBADMSG;
		}
	}
	*ret_ents = TAKE_PTR(ents);
	*ret_n = count;
	if (ret_pack_size)
		*ret_pack_size = pack_size;
	return 0;
}

bool sb_pack__parse_name(const char *fname, const char *ext, char stem[SB_PACK_NAME_LEN + 1])
{
	size_t el = strlen(ext);
	if (strncmp(fname, "pack-", 5) != 0 || strlen(fname) != SB_PACK_NAME_LEN + el ||
	    strcmp(fname + SB_PACK_NAME_LEN, ext) != 0 ||
	    !sb_is_lower_hex(fname + 5, SB_PACK_NAME_LEN - 5))
		return false;
	memcpy(stem, fname, SB_PACK_NAME_LEN);
	stem[SB_PACK_NAME_LEN] = 0;
	return true;
}

/* ---- the store's pack list and merged table (all under s->lock) ---- */

static sb_pack *pack_add(sb_store *s, const char *stem)
{
	sb_pack **np = sb_grow(s->packs, &s->cap_packs, s->n_packs, sizeof(*np), 16);
	if (!np)
		return NULL;
	s->packs = np;
	sb_pack *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", stem);
	p->fd = -1;
	p->no = (uint32_t)s->n_packs;
	s->packs[s->n_packs++] = p;
	return p;
}

sb_pack *sb_store__pack_find_or_add(sb_store *s, const char *stem)
{
	for (size_t i = 0; i < s->n_packs; i++)
		if (strcmp(s->packs[i]->name, stem) == 0)
			return s->packs[i];
	return pack_add(s, stem);
}

static int pack_cmp(const void *a, const void *b)
{
	return strcmp((*(sb_pack *const *)a)->name, (*(sb_pack *const *)b)->name);
}

static int stem_pack_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(sb_pack *const *)elem)->name);
}

int sb_store__open_packs_dir(sb_store *s)
{
	if (s->packs_fd >= 0)
		return 0;
	int fd = openat(s->root_fd, "packs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	s->packs_fd = fd;
	return 0;
}

/* Largest index first: a hit (an unchanged tree, a get) is found sooner. */
static int search_cmp(const void *a, const void *b)
{
	uint32_t x = (*(sb_pack *const *)a)->idx.count, y = (*(sb_pack *const *)b)->idx.count;
	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Maps each foreign index not mapped yet (or replaced since), unmaps those
 * gone, and rebuilds the search order. Cost: a readdir and an open+fstat per
 * index; no index is read here (pages come in as lookups touch them).
 */
int sb_store__reload(sb_store *s, sb_error *err)
{
	int r = sb_store__open_packs_dir(s);
	if (r == -ENOENT && !(s->flags & SB_STORE_WRITE))
		return 0;
	if (r < 0)
		return sb_error_errno(err, -r, "open store directory 'packs'");

	/* Taken before reading, so a change made during the read shows next time. */
	struct stat dst;
	if (fstat(s->packs_fd, &dst) < 0)
		return sb_error_errno(err, errno, "stat store directory 'packs'");
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);

	int dfd = openat(s->packs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sb_error_errno(err, errno, "open store directory 'packs'");
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return sb_error_errno(err, errno, "open store directory 'packs'");
	}
	_cleanup_closedir_ DIR *dir = d;

	/* Packs by name: thousands of packs (no gc for long) must not cost k^2. */
	size_t n_known = s->n_packs;
	_cleanup_free_ sb_pack **known = malloc((n_known ? n_known : 1) * sizeof(*known));
	if (!known)
		return sb_error_errno(err, ENOMEM, "load store indexes");
	if (n_known) {
		memcpy(known, s->packs, n_known * sizeof(*known));
		qsort(known, n_known, sizeof(*known), pack_cmp);
	}
	uint64_t gen = s->reloads + 1;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dir);
		if (!de)
			break;
		char stem[SB_PACK_NAME_LEN + 1];
		if (!sb_pack__parse_name(de->d_name, ".idx", stem))
			continue;
		sb_pack **kp = bsearch(stem, known, n_known, sizeof(*known), stem_pack_cmp);
		sb_pack *p = kp ? *kp : pack_add(s, stem);
		if (!p)
			return sb_error_errno(err, ENOMEM, "load store indexes");
		p->seen = gen;
	}
	if (errno)
		return sb_error_errno(err, errno, "read store directory 'packs'");

	_cleanup_free_ sb_bad_idx *bad = NULL;
	_cleanup_free_ sb_pack **search = NULL;
	size_t n_bad = 0, n_search = 0;
	if (s->n_packs) {
		bad = calloc(s->n_packs, sizeof(*bad));
		search = calloc(s->n_packs, sizeof(*search));
		if (!bad || !search)
			return sb_error_errno(err, ENOMEM, "load store indexes");
	}
	for (size_t i = 0; i < s->n_packs; i++) {
		sb_pack *p = s->packs[i];
		if (p->own)
			continue;
		if (p->seen != gen) { /* removed by gc */
			sb_idx_map_close(&p->idx);
			continue;
		}
		char why[sizeof(bad->why)];
		r = sb_idx_map_open(s->packs_fd, p->name, &p->idx, why, sizeof(why));
		if (r == -ENOMEM)
			return sb_error_errno(err, ENOMEM, "map index 'packs/%s.idx'", p->name);
		if (r < 0)
			sb_idx_map_close(&p->idx);
		if (r < 0 && r != -ENOENT) { /* -ENOENT: removed by gc since readdir */
			snprintf(bad[n_bad].name, sizeof(bad[n_bad].name), "%s.idx", p->name);
			snprintf(bad[n_bad].why, sizeof(bad[n_bad].why), "%s", why);
			n_bad++;
		}
		if (r == 0 && p->idx.count > 0)
			search[n_search++] = p;
	}
	if (n_search)
		qsort(search, n_search, sizeof(*search), search_cmp);

	free(s->search);
	s->search = TAKE_PTR(search);
	s->n_search = n_search;
	s->last_hit = 0;
	free(s->bad);
	s->bad = TAKE_PTR(bad);
	s->n_bad = n_bad;
	s->dir_mtime = dst.st_mtim;
	s->reload_time = now;
	s->loaded = true;
	s->reloads = gen;
	return 0;
}

/*
 * Every index is created or replaced by a rename in packs/ (and gc unlinks
 * there), so an unchanged directory mtime means nothing new to read. File
 * timestamps come from a coarse clock: an mtime within a second of the last
 * reload might hide a second change in the same tick, so that case reloads.
 */
int sb_store__reload_if_changed(sb_store *s, sb_error *err)
{
	struct stat st;
	if (s->loaded && s->packs_fd >= 0 && fstat(s->packs_fd, &st) == 0 &&
	    st.st_mtim.tv_sec == s->dir_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == s->dir_mtime.tv_nsec &&
	    s->reload_time.tv_sec - st.st_mtim.tv_sec >= 2)
		return 0;
	return sb_store__reload(s, err);
}

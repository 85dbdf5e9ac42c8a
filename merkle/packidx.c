/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "buf.h"
#include "store-internal.h"

/* Below this many entries a plain binary search beats building a fanout. */
#define SB_IDX_FANOUT_MIN 64

bool sb_pack__decode_entry(const uint8_t *q, uint64_t pack_size, uint32_t pack_no, sb_entry *e)
{
	memcpy(e->id.b, q, SB_ID_LEN);
	e->offset = sb_le64(q + 32);
	e->raw_len = sb_le32(q + 40);
	e->stored_len = sb_le32(q + 44);
	e->type = q[48];
	e->flags = q[49];
	e->pack = pack_no;
	bool zstd = e->flags & SB_REC_ZSTD;
	return e->type >= SB_OBJ_BLOB && e->type <= SB_OBJ_CHUNKS && !(e->flags & ~SB_REC_ZSTD) &&
	       sb_le16(q + 50) == 0 && e->raw_len <= SB_OBJ_MAX && e->stored_len <= SB_STORED_MAX &&
	       (zstd || e->stored_len == e->raw_len) && e->offset >= SB_PACK_HEADER_LEN &&
	       e->offset <= pack_size &&
	       pack_size - e->offset >= SB_REC_HEADER_LEN + (uint64_t)e->stored_len;
}

int sb_pack__check_idx_header(const uint8_t *p, uint64_t size, uint64_t *ret_count,
			      uint64_t *ret_pack_size, char *why, size_t why_size)
{
	if (size < SB_IDX_HEADER_LEN + SB_IDX_TRAILER_LEN || size > SB_IDX_MAX_FILE) {
		snprintf(why, why_size, "impossible size %" PRIu64, size);
		return -EBADMSG;
	}
	if (memcmp(p, SB_IDX_MAGIC, 8) != 0 || sb_le32(p + 8) != SB_IDX_VERSION) {
		snprintf(why, why_size, "bad magic or unknown version");
		return -EBADMSG;
	}
	uint64_t count = sb_le32(p + 12);
	if (SB_IDX_HEADER_LEN + count * SB_IDX_ENTRY_LEN + SB_IDX_TRAILER_LEN != size) {
		snprintf(why, why_size, "count %" PRIu64 " does not match size %" PRIu64, count,
			 size);
		return -EBADMSG;
	}
	*ret_count = count;
	*ret_pack_size = sb_le64(p + 16);
	return 0;
}

int sb_idx_map_open(int packs_fd, const char *name, sb_idx_map *m, char *why, size_t why_size)
{
	char fname[SB_PACK_NAME_LEN + 8];
	snprintf(fname, sizeof(fname), "%s.idx", name);
	why[0] = 0;

	_cleanup_close_ int fd = openat(packs_fd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		snprintf(why, why_size, "cannot open: %s", strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "not a regular file");
		return -EBADMSG;
	}
	/* The same file as mapped already (an index is only ever replaced by a rename). */
	if (m->base && m->dev == st.st_dev && m->ino == st.st_ino && m->len == (uint64_t)st.st_size)
		return 0;

	uint64_t size = (uint64_t)st.st_size;
	if (size < SB_IDX_HEADER_LEN + SB_IDX_TRAILER_LEN || size > SB_IDX_MAX_FILE) {
		snprintf(why, why_size, "impossible size %" PRIu64, size);
		return -EBADMSG;
	}
	void *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (base == MAP_FAILED) {
		int e = errno;
		snprintf(why, why_size, "cannot map: %s", strerror(e));
		return -e;
	}
	uint64_t count, pack_size;
	int r = sb_pack__check_idx_header(base, size, &count, &pack_size, why, why_size);
	if (r < 0) {
		munmap(base, size);
		return r;
	}
	sb_idx_map_close(m);
	*m = (sb_idx_map){
	    .base = base,
	    .len = size,
	    .count = (uint32_t)count,
	    .pack_size = pack_size,
	    .dev = st.st_dev,
	    .ino = st.st_ino,
	};
	return 0;
}

void sb_idx_map_close(sb_idx_map *m)
{
	if (m->base)
		munmap((void *)m->base, m->len);
	free(m->fanout);
	*m = (sb_idx_map){0};
}

static const uint8_t *ent_at(const sb_idx_map *m, uint32_t i)
{
	return m->base + SB_IDX_HEADER_LEN + (size_t)i * SB_IDX_ENTRY_LEN;
}

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v; /* compilers turn this into one load and a byte swap */
}

/* First index in [lo, hi) whose id's first byte exceeds b. */
static uint32_t first_above(const sb_idx_map *m, uint32_t lo, uint32_t hi, uint8_t b)
{
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (ent_at(m, mid)[0] <= b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * fanout[b] = number of entries whose first id byte is <= b, found by 256
 * binary searches: no page of a large index is touched that a search would
 * not touch anyway. A damaged (unsorted) index gives a useless but bounded
 * table: each bound is clamped to its predecessor and to count.
 */
static int build_fanout(sb_idx_map *m)
{
	uint32_t *f = malloc(256 * sizeof(*f));
	if (!f)
		return -ENOMEM;
	uint32_t lo = 0;
	for (int b = 0; b < 256; b++) {
		lo = first_above(m, lo, m->count, (uint8_t)b);
		f[b] = lo;
	}
	m->fanout = f;
	return 0;
}

int sb_idx_map_find(sb_idx_map *m, uint32_t pack_no, const sb_id *id, sb_entry *ret)
{
	if (!m->base || m->count == 0)
		return 0;
	uint32_t lo = 0, hi = m->count;
	if (m->count >= SB_IDX_FANOUT_MIN && (m->fanout || build_fanout(m) == 0)) {
		uint8_t b = id->b[0];
		lo = b ? m->fanout[b - 1] : 0;
		hi = m->fanout[b];
	}
	/* Ids order as big-endian numbers: compare 8 bytes at a time, the rest on a tie. */
	uint64_t key = be64_at(id->b);
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const uint8_t *q = ent_at(m, mid);
		uint64_t k = be64_at(q);
		int c = k < key ? -1 : k > key ? 1 : memcmp(q + 8, id->b + 8, SB_ID_LEN - 8);
		if (c == 0)
			return sb_pack__decode_entry(q, m->pack_size, pack_no, ret) ? 1 : -EBADMSG;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

bool sb_idx_map_entry(const sb_idx_map *m, uint32_t i, uint32_t pack_no, sb_entry *ret)
{
	return i < m->count && sb_pack__decode_entry(ent_at(m, i), m->pack_size, pack_no, ret);
}

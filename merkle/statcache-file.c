/* SPDX-License-Identifier: MIT */
/*
 * The stat cache's files: the base ("index") and the delta beside it
 * ("index.delta"), loaded (mapped, checked, merged) and saved (a delta
 * against the base, or the base rewritten whole). statcache.h has the
 * format.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fileio.h"
#include "safefs.h"
#include "statcache-internal.h"

/*
 * A save writes a delta while it stays under 1/DELTA_SHARE of the base, and
 * rewrites the base otherwise: each save and load then handles at most that
 * much beyond the base, and a base rewrite is rare. The records of a restore
 * of 1000 files (their directories' names included) take ~400 KB: at 1/16
 * of an 80k-file tree's 12 MB base, every other one rewrote all 12 MB
 * (~20 ms); a delta of up to 3 MB costs a few ms to write and to load.
 */
#define DELTA_SHARE 4
/* A base smaller than this is checksummed on one thread: a thread costs more. */
#define SUM_THREAD_MIN (1u << 20)

static void block_release(block *b)
{
	if (b->mapped)
		munmap(b->p, b->len);
	else
		free(b->p);
	*b = (block){0};
}

void sb_statcache__gen_release(gen *g)
{
	block_release(&g->base_blk);
	block_release(&g->delta_blk);
	if (g->base != g->rec)
		free(g->base);
	free(g->rec);
	free(g->sec);
	memset(g, 0, sizeof(*g));
}

/*
 * The length of the record at p, of at most avail bytes, or 0 when it does
 * not fit or is malformed. A tombstone (mode 0: the path is gone) only
 * appears in a delta; only a directory (the root) may have an empty path.
 */
static size_t rec_check(const char *p, size_t avail, bool delta)
{
	if (avail < REC_FIXED)
		return 0;
	size_t plen = rec_path_len(p);
	uint32_t mode = rec_mode(p);
	if (avail - REC_FIXED < plen)
		return 0;
	size_t len = REC_FIXED + plen;
	if (mode == 0)
		return delta ? len : 0;
	if (!S_ISDIR(mode))
		return plen ? len : 0;
	if (avail - len < 4 || avail - len - 4 < sb_le32(p + len))
		return 0;
	return len + 4 + sb_le32(p + len);
}

/* ---- load ---- */

/*
 * Indexes the records of a file (base or delta) of len bytes whose header
 * is hdr bytes long, checking each and their order, into *ret_recs; returns
 * NULL when they are sound, or the reason to distrust the file.
 */
static const char *index_records(const char *data, size_t len, size_t hdr, bool delta,
				 const char ***ret_recs, size_t *ret_n)
{
	uint64_t count = sb_le64(data + MAGIC_LEN + 8);
	size_t end = len - SB_ID_LEN;
	if (count > (end - hdr) / REC_FIXED)
		return "entry count out of range";
	const char **v = malloc((count ? count : 1) * sizeof(*v));
	if (!v)
		return "out of memory";
	size_t at = hdr;
	for (uint64_t i = 0; i < count; i++) {
		size_t rl = rec_check(data + at, end - at, delta);
		const char *why = !rl ? "bad record"
				  : i > 0 && rec_path_cmp(v[i - 1], data + at) >= 0
				      ? "entries out of order"
				      : NULL;
		if (why) {
			free(v);
			return why;
		}
		v[i] = data + at;
		at += rl;
	}
	if (at != end) {
		free(v);
		return "trailing bytes";
	}
	*ret_recs = v;
	*ret_n = count;
	return NULL;
}

typedef struct half {
	const char *p;
	size_t len;
	sb_id sum;
} half;

static void *hash_half(void *arg)
{
	half *h = arg;
	sb_sha256_buf(h->p, h->len, &h->sum);
	return NULL;
}

/*
 * The base's checksum: SHA-256 over the SHA-256 of each half of it, the
 * halves hashed on two threads at once. A load checks the whole base (12 MB
 * for 80k files: 8 ms of SHA-256) before a scan can start.
 */
static int base_sum(const char *data, size_t len, sb_id *ret)
{
	half h[2] = {{.p = data, .len = len / 2}, {.p = data + len / 2, .len = len - len / 2}};
	pthread_t t;
	bool two = len >= SUM_THREAD_MIN && pthread_create(&t, NULL, hash_half, &h[0]) == 0;
	if (!two)
		hash_half(&h[0]);
	hash_half(&h[1]);
	if (two)
		pthread_join(t, NULL);
	sb_sha256 s;
	if (sb_sha256_init(&s) < 0)
		return -ENOMEM;
	sb_sha256_update(&s, h[0].sum.b, SB_ID_LEN);
	sb_sha256_update(&s, h[1].sum.b, SB_ID_LEN);
	sb_sha256_final(&s, ret);
	return 0;
}

/* Checks the base at data and makes it the generation; NULL, or why it is distrusted. */
static const char *parse_base(gen *g, const char *data, size_t len)
{
	if (len < HDR_LEN + SB_ID_LEN || memcmp(data, MAGIC, MAGIC_LEN) != 0)
		return "bad header";
	if (base_sum(data, len - SB_ID_LEN, &g->base_sum) < 0)
		return "out of memory";
	if (memcmp(g->base_sum.b, data + len - SB_ID_LEN, SB_ID_LEN) != 0)
		return "checksum mismatch";
	const char *why = index_records(data, len, HDR_LEN, false, &g->base, &g->n_base);
	if (why)
		return why;
	g->rec = g->base;
	g->n = g->n_base;
	g->stamps[0] = (int64_t)sb_le64(data + MAGIC_LEN);
	g->base_len = len;
	g->have_base = true;
	return NULL;
}

/* The base's records with the delta's over them: a path's delta record (or tombstone) wins. */
static int apply_delta(gen *g, const char **d, size_t nd)
{
	size_t cap = g->n_base + nd;
	const char **rec = malloc((cap ? cap : 1) * sizeof(*rec));
	uint8_t *sec = malloc(cap ? cap : 1);
	if (!rec || !sec) {
		free(rec);
		free(sec);
		return -ENOMEM;
	}
	size_t i = 0, j = 0, n = 0;
	while (i < g->n_base || j < nd) {
		int cmp = i == g->n_base ? 1 : j == nd ? -1 : rec_path_cmp(g->base[i], d[j]);
		if (cmp < 0) {
			rec[n] = g->base[i++];
			sec[n++] = 0;
			continue;
		}
		if (cmp == 0)
			i++;
		if (rec_mode(d[j]) != 0) {
			rec[n] = d[j];
			sec[n++] = 1;
		}
		j++;
	}
	g->rec = rec;
	g->sec = sec;
	g->n = n;
	return 0;
}

/* Applies the delta at data when it is sound and written against this base. */
static bool delta_sound(gen *g, const char *data, size_t len)
{
	if (len < DELTA_HDR + SB_ID_LEN || memcmp(data, DELTA_MAGIC, MAGIC_LEN) != 0 ||
	    memcmp(data + HDR_LEN, g->base_sum.b, SB_ID_LEN) != 0)
		return false;
	sb_id sum;
	sb_sha256_buf(data, len - SB_ID_LEN, &sum);
	if (memcmp(sum.b, data + len - SB_ID_LEN, SB_ID_LEN) != 0)
		return false;
	const char **d;
	size_t nd;
	if (index_records(data, len, DELTA_HDR, true, &d, &nd) != NULL)
		return false;
	int r = apply_delta(g, d, nd);
	free(d);
	if (r < 0)
		return false;
	g->stamps[1] = (int64_t)sb_le64(data + MAGIC_LEN);
	return true;
}

/*
 * The mapped delta, when sound and written against this base, joins the
 * generation; else g stays the base alone (a stale or damaged delta is
 * dropped whole, and the base was a whole generation when written).
 */
static void parse_delta(gen *g)
{
	if (!delta_sound(g, g->delta_blk.p, g->delta_blk.len))
		block_release(&g->delta_blk);
}

/*
 * Maps the regular file name (not read: no copy, and the pages come in at
 * once for the checksum). Both files are only ever replaced by a rename,
 * never truncated in place, so the mapping stays valid. -ENOENT, -ELOOP
 * (a symlink), -EINVAL (not a regular file), -EFBIG, other errnos.
 */
static int map_file(int dir_fd, const char *name, block *ret, sb_error *err)
{
	struct stat st;
	_cleanup_close_ int fd = sb_open_file_at(dir_fd, name, SB_STATCACHE_FILE_MAX, &st, err);
	if (fd < 0)
		return fd;
	*ret = (block){0};
	if (st.st_size == 0)
		return 0;
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED)
		return sb_error_errno(err, errno, "map '%s'", name);
	*ret = (block){.p = p, .len = (size_t)st.st_size, .mapped = true};
	return 0;
}

/* "<name>.delta" into buf (of NAME_MAX + 8 bytes); false when it does not fit. */
static bool delta_name(const char *name, char *buf)
{
	return snprintf(buf, NAME_MAX + 8, "%s.delta", name) < NAME_MAX + 8;
}

int sb_statcache_load(int dir_fd, const char *name, sb_statcache **ret, sb_error *err)
{
	sb_statcache *c;
	int r = sb_statcache_new(&c);
	if (r < 0)
		return r;
	gen *g = &c->cur;
	r = map_file(dir_fd, name, &g->base_blk, err);
	if (r == -ENOENT) {
		sb_error_clear(err);
		*ret = c;
		return SB_STATCACHE_MISSING;
	}
	if (r == -EFBIG || r == -EINVAL || r == -ELOOP) {
		/* not a plausible cache file: a cache is never worth failing over */
		sb_error_clear(err);
		c->problem = r == -EFBIG ? "file too large" : "not a regular file";
		*ret = c;
		return SB_STATCACHE_CORRUPT;
	}
	if (r < 0) {
		sb_statcache_free(c);
		return r;
	}
	const char *why = parse_base(g, g->base_blk.p, g->base_blk.len);
	if (why) {
		sb_statcache__gen_release(g);
		c->problem = why;
		*ret = c;
		return SB_STATCACHE_CORRUPT;
	}
	char dname[NAME_MAX + 8];
	sb_error e2 = SB_ERROR_INIT;
	if (delta_name(name, dname) && map_file(dir_fd, dname, &g->delta_blk, &e2) >= 0)
		parse_delta(g);
	*ret = c;
	return SB_STATCACHE_LOADED;
}

int sb_statcache_sync(int dir_fd, const char *name, sb_error *err)
{
	char dname[NAME_MAX + 8];
	const char *names[] = {name, delta_name(name, dname) ? dname : NULL};
	for (size_t i = 0; i < ARRAY_SIZE(names) && names[i]; i++) {
		_cleanup_close_ int fd =
		    openat(dir_fd, names[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0 || fsync(fd) < 0)
			return sb_error_errno(err, errno, "sync stat cache '%s'", names[i]);
	}
	return 0;
}

int sb_statcache_remove(int dir_fd, const char *name, sb_error *err)
{
	char dname[NAME_MAX + 8];
	const char *names[] = {name, delta_name(name, dname) ? dname : NULL};
	for (size_t i = 0; i < ARRAY_SIZE(names) && names[i]; i++)
		if (unlinkat(dir_fd, names[i], 0) < 0 && errno != ENOENT)
			return sb_error_errno(err, errno, "remove stat cache '%s'", names[i]);
	if (fsync(dir_fd) < 0)
		return sb_error_errno(err, errno, "sync the directory of stat cache '%s'", name);
	return 0;
}

/* ---- save ---- */

static inline const char *add_rec(const sb_statcache *c, size_t j)
{
	return c->add.data + c->addv[j].off;
}

static int added_cmp(const void *x, const void *y, void *arg)
{
	const char *base = arg;
	const added *ax = x, *ay = y;
	int r = rec_path_cmp(base + ax->off, base + ay->off);
	return r ? r : (ax->seq > ay->seq) - (ax->seq < ay->seq);
}

void sb_statcache_sort(sb_statcache *c)
{
	if (!c->add_sorted && c->n_add > 1)
		qsort_r(c->addv, c->n_add, sizeof(*c->addv), added_cmp, c->add.data);
	c->add_sorted = true;
}

/*
 * The first record of v at or after i whose path is not below rec's.
 * Gallops from i: when the other side's records are few and far between,
 * that costs a few comparisons each, not one per record of v.
 */
static size_t seek(const char *const *v, size_t n, size_t i, const char *rec)
{
	size_t lo = i, hi = i, step = 1;
	while (hi < n && rec_path_cmp(v[hi], rec) < 0) {
		lo = hi + 1;
		hi += step;
		step *= 2;
	}
	hi = MIN(hi, n);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rec_path_cmp(v[mid], rec) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The next generation, in path order, into next (room for cur.n + n_add):
 * cur's kept records and the added ones, each path once with its last
 * record (the later stat wins). Pointers into cur's memory and c->add.
 */
static size_t next_records(sb_statcache *c, const char **next)
{
	const gen *g = &c->cur;
	size_t i = 0, j = 0, n = 0;
	for (;;) {
		while (j + 1 < c->n_add && rec_path_cmp(add_rec(c, j), add_rec(c, j + 1)) == 0)
			j++;
		size_t stop = j < c->n_add ? seek(g->rec, g->n, i, add_rec(c, j)) : g->n;
		for (; i < stop; i++)
			if (c->kept && c->kept[i])
				next[n++] = g->rec[i];
		if (j == c->n_add)
			return n;
		bool same = i < g->n && rec_path_cmp(g->rec[i], add_rec(c, j)) == 0;
		if (same && c->kept && c->kept[i] > c->addv[j].seq)
			next[n++] = g->rec[i];
		else
			next[n++] = add_rec(c, j);
		i += same;
		j++;
	}
}

/*
 * Calls fn for every difference between the base and next: a record of
 * next that the base does not hold as it is (rec), or a path of the base
 * that next lacks (gone). Records kept from the base are the base's own
 * pointers, so equal runs cost no comparison.
 */
typedef void (*diff_fn)(void *arg, const char *rec, bool gone);

static void diff_base(const gen *g, const char **next, size_t n, diff_fn fn, void *arg)
{
	size_t i = 0, j = 0;
	while (i < g->n_base || j < n) {
		if (i < g->n_base && j < n && g->base[i] == next[j]) {
			i++;
			j++;
			continue;
		}
		int cmp = i == g->n_base ? 1 : j == n ? -1 : rec_path_cmp(g->base[i], next[j]);
		if (cmp < 0) {
			fn(arg, g->base[i++], true);
			continue;
		}
		fn(arg, next[j++], false);
		i += cmp == 0;
	}
}

typedef struct delta_size {
	size_t n, bytes;
} delta_size;

static void size_diff(void *arg, const char *rec, bool gone)
{
	delta_size *z = arg;
	z->n++;
	z->bytes += gone ? REC_FIXED + rec_path_len(rec) : rec_len(rec);
}

static void emit_diff(void *arg, const char *rec, bool gone)
{
	sb_buf *out = arg;
	if (!gone) {
		sb_buf_append(out, rec, rec_len(rec));
		return;
	}
	char tomb[REC_FIXED] = {0};
	sb_put_le32(tomb, (uint32_t)rec_path_len(rec));
	sb_buf_append(out, tomb, REC_FIXED);
	sb_buf_append(out, rec_path(rec), rec_path_len(rec));
}

/* Writes data as name (atomically: "<name>.lock", then renamed; a stale lock is a crashed writer's). */
static int write_file(int dir_fd, const char *name, const sb_buf *data, sb_error *err)
{
	return sb_write_atomic(dir_fd, name, data->data, data->len, 0600, SB_WRITE_LOCKED, err);
}

/*
 * Makes a generation of what was written: the records of next (n) with
 * those not kept from the base now pointing into data, in the order they
 * were written at data + hdr; data is taken.
 */
static int gen_from(gen *g, const char **next, size_t n, char *data, size_t len, size_t hdr,
		    bool delta, int64_t stamp)
{
	const char **rec = malloc((n ? n : 1) * sizeof(*rec));
	uint8_t *sec = delta ? malloc(n ? n : 1) : NULL;
	if (!rec || (delta && !sec)) {
		free(rec);
		free(sec);
		free(data);
		return -ENOMEM;
	}
	const char *at = data + hdr;
	size_t i = 0;
	for (size_t j = 0; j < n; j++) {
		if (delta) {
			/* the base's own records stay where they are (i: a cursor into it) */
			if (i < g->n_base && g->base[i] != next[j])
				i = seek(g->base, g->n_base, i, next[j]);
			if (i < g->n_base && g->base[i] == next[j]) {
				rec[j] = next[j];
				sec[j] = 0;
				i++;
				continue;
			}
			/* a tombstone written before this record is not a record of next */
			while (rec_mode(at) == 0)
				at += REC_FIXED + rec_path_len(at);
			sec[j] = 1;
		}
		rec[j] = at;
		at += rec_len(at);
	}
	if (delta) {
		block_release(&g->delta_blk);
		g->delta_blk = (block){.p = data, .len = len};
		if (g->base != g->rec)
			free(g->rec);
		free(g->sec);
		g->stamps[1] = stamp;
	} else {
		sb_statcache__gen_release(g);
		g->base_blk = (block){.p = data, .len = len};
		g->base = rec;
		g->n_base = n;
		g->base_len = len;
		g->have_base = true;
		g->stamps[0] = stamp;
	}
	g->rec = rec;
	g->sec = sec;
	g->n = n;
	return 0;
}

/*
 * Whether to write a delta: there is a base, and what differs from it is
 * small next to it.
 */
static bool want_delta(const gen *g, const delta_size *z)
{
	return g->have_base && DELTA_HDR + z->bytes + SB_ID_LEN <= g->base_len / DELTA_SHARE;
}

int sb_statcache_save(sb_statcache *c, int dir_fd, const char *name, sb_error *err)
{
	if (!c->dirty && c->n_add == 0 && c->same == c->cur.n && c->cur.n > 0)
		return 0; /* the file on disk already says all of this */
	char dname[NAME_MAX + 8];
	if (!delta_name(name, dname))
		return sb_error_set(err, ENAMETOOLONG, "stat cache name '%s' too long", name);
	sb_statcache_sort(c);
	gen *g = &c->cur;
	_cleanup_free_ const char **next = malloc((g->n + c->n_add + 1) * sizeof(*next));
	if (!next)
		return -ENOMEM;
	size_t n = next_records(c, next);

	delta_size z = {0};
	if (g->have_base)
		diff_base(g, next, n, size_diff, &z);
	bool delta = want_delta(g, &z);
	size_t bytes = delta ? DELTA_HDR : HDR_LEN;
	if (delta)
		bytes += z.bytes;
	for (size_t j = 0; !delta && j < n; j++)
		bytes += rec_len(next[j]);
	bytes += SB_ID_LEN;
	if (bytes > SB_STATCACHE_FILE_MAX)
		return sb_error_set(err, EFBIG, "stat cache '%s' would exceed %u bytes", name,
				    SB_STATCACHE_FILE_MAX);
	_cleanup_(sb_buf_release) sb_buf out = SB_BUF_INIT;
	if (sb_buf_reserve(&out, bytes) < 0)
		return -ENOMEM;
	sb_buf_append(&out, delta ? DELTA_MAGIC : MAGIC, MAGIC_LEN);
	sb_buf_put_le64(&out, (uint64_t)c->stamp);
	sb_buf_put_le64(&out, delta ? z.n : n);
	if (delta) {
		sb_buf_append(&out, g->base_sum.b, SB_ID_LEN);
		diff_base(g, next, n, emit_diff, &out);
	} else {
		for (size_t j = 0; j < n; j++)
			sb_buf_append(&out, next[j], rec_len(next[j]));
	}
	sb_id sum;
	if (!delta && base_sum(out.data, out.len, &sum) < 0)
		return -ENOMEM;
	if (delta)
		sb_sha256_buf(out.data, out.len, &sum);
	sb_buf_append(&out, sum.b, SB_ID_LEN);

	int r;
	if (delta) {
		r = write_file(dir_fd, dname, &out, err);
	} else {
		/* The base first: a delta left behind names the old base, and is ignored. */
		r = write_file(dir_fd, name, &out, err);
		if (r >= 0)
			(void)unlinkat(dir_fd, dname, 0);
	}
	if (r < 0)
		return r;
	size_t len;
	char *data = sb_buf_steal(&out, &len);
	r = gen_from(g, next, n, data, len, delta ? DELTA_HDR : HDR_LEN, delta, c->stamp);
	if (!delta && r >= 0)
		g->base_sum = sum;
	sb_statcache__next_reset(c);
	c->stamp = 0;
	c->problem = NULL;
	if (r < 0)
		sb_statcache__gen_release(g); /* a cache only: forget it rather than dangle */
	return r;
}

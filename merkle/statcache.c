/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "fileio.h"
#include "statcache.h"

#define MAGIC	  "sbindex1"
#define MAGIC_LEN 8
#define HDR_LEN	  (MAGIC_LEN + 8 + 8)
#define REC_FIXED (4 + 8 + 8 + 4 + 8 + 8 + 8 + SB_ID_LEN)
#define NSEC	  1000000000LL

/* A set of serialized records (the on-disk form) and an index over them. */
typedef struct gen {
	char *data;
	size_t len;
	size_t *off; /* record offsets into data */
	size_t n, cap;
	int64_t stamp;
} gen;

struct sb_statcache {
	gen cur;  /* what lookup sees */
	gen next; /* what record builds; data is an sb_buf's storage */
	size_t next_data_cap;
	pthread_mutex_t lock; /* record */
	const char *problem;
	/*
	 * Whether next differs from cur: a save of an unchanged generation is
	 * skipped, so a scan that found nothing new writes nothing (git writes
	 * its index only when an entry changed or was racily clean).
	 */
	bool dirty;
	size_t same;	  /* records of next identical to (and trusted in) cur */
	bool next_sorted; /* next's records are in path order (sb_statcache_sort) */
};

void sb_statcache_key_from_stat(const struct stat *st, sb_statcache_key *ret)
{
	ret->dev = (uint64_t)st->st_dev;
	ret->ino = (uint64_t)st->st_ino;
	ret->mode = (uint32_t)st->st_mode;
	ret->size = (uint64_t)st->st_size;
	ret->mtime_ns = sb_ns_from_timespec(&st->st_mtim);
	ret->ctime_ns = sb_ns_from_timespec(&st->st_ctim);
}

static void gen_release(gen *g)
{
	free(g->data);
	free(g->off);
	memset(g, 0, sizeof(*g));
}

int sb_statcache_new(sb_statcache **ret)
{
	sb_statcache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	*ret = c;
	return 0;
}

void sb_statcache_free(sb_statcache *c)
{
	if (!c)
		return;
	gen_release(&c->cur);
	gen_release(&c->next);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *sb_statcache_problem(const sb_statcache *c)
{
	return c->problem;
}

size_t sb_statcache_count(const sb_statcache *c)
{
	return c->cur.n;
}

static int path_cmp(const char *a, size_t alen, const char *b, size_t blen)
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

/*
 * Indexes a whole serialized file; returns NULL when it is sound, or the
 * reason to distrust it. Takes ownership of data either way.
 */
static const char *parse(gen *g, char *data, size_t len)
{
	g->data = data;
	g->len = len;
	if (len < HDR_LEN + SB_ID_LEN || memcmp(data, MAGIC, MAGIC_LEN) != 0)
		return "bad header";
	sb_id sum;
	sb_sha256_buf(data, len - SB_ID_LEN, &sum);
	if (memcmp(sum.b, data + len - SB_ID_LEN, SB_ID_LEN) != 0)
		return "checksum mismatch";
	g->stamp = (int64_t)sb_le64(data + MAGIC_LEN);
	uint64_t count = sb_le64(data + MAGIC_LEN + 8);
	size_t end = len - SB_ID_LEN;
	if (count > (end - HDR_LEN) / REC_FIXED)
		return "entry count out of range";
	if (count) {
		g->off = malloc(count * sizeof(*g->off));
		if (!g->off)
			return "out of memory";
	}
	g->cap = count;
	size_t p = HDR_LEN;
	for (uint64_t i = 0; i < count; i++) {
		if (end - p < REC_FIXED)
			return "truncated";
		size_t plen = rec_path_len(data + p);
		if (plen == 0 || end - p - REC_FIXED < plen)
			return "bad path length";
		if (i > 0) {
			const char *prev = data + g->off[i - 1];
			if (path_cmp(rec_path(prev), rec_path_len(prev), data + p + REC_FIXED,
				     plen) >= 0)
				return "entries out of order";
		}
		g->off[g->n++] = p;
		p += REC_FIXED + plen;
	}
	if (p != end)
		return "trailing bytes";
	return NULL;
}

int sb_statcache_load(int dir_fd, const char *name, sb_statcache **ret, sb_error *err)
{
	sb_statcache *c;
	int r = sb_statcache_new(&c);
	if (r < 0)
		return r;
	char *data = NULL;
	size_t len = 0;
	r = sb_read_file_at(dir_fd, name, SB_STATCACHE_FILE_MAX, &data, &len, err);
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
	const char *why = parse(&c->cur, data, len);
	if (why) {
		gen_release(&c->cur);
		c->problem = why;
		*ret = c;
		return SB_STATCACHE_CORRUPT;
	}
	*ret = c;
	return SB_STATCACHE_LOADED;
}

void sb_statcache_begin(sb_statcache *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	gen_release(&c->next);
	c->next_data_cap = 0;
	c->next.stamp = (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
	c->dirty = false;
	c->same = 0;
}

void sb_statcache_set_stamp(sb_statcache *c, int64_t stamp_ns)
{
	c->next.stamp = stamp_ns;
}

static bool racy(int64_t t, int64_t stamp)
{
	if (t % NSEC == 0)
		return t > stamp - 2 * NSEC;
	return t >= stamp;
}

void sb_statcache_restamp(sb_statcache *c)
{
	gen *g = &c->next;
	size_t k = 0;
	for (size_t i = 0; i < g->n; i++) {
		const char *rec = g->data + g->off[i];
		if (racy((int64_t)sb_le64(rec + 32), g->stamp) ||
		    racy((int64_t)sb_le64(rec + 40), g->stamp))
			continue;
		g->off[k++] = g->off[i];
	}
	g->n = k;
	/*
	 * Files written in the current tick of the coarse clock (the one file
	 * timestamps come from) would still be racy: wait for the next tick,
	 * a few ms at most.
	 */
	struct timespec t0, ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &t0);
	do {
		struct timespec nap = {0, 500000};
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	} while (ts.tv_sec == t0.tv_sec && ts.tv_nsec == t0.tv_nsec);
	g->stamp = (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
	c->dirty = true;
}

/* The loaded record for path, or NULL. */
static const char *find_cur(const sb_statcache *c, const char *path, size_t len)
{
	const gen *g = &c->cur;
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *rec = g->data + g->off[mid];
		int cmp = path_cmp(rec_path(rec), rec_path_len(rec), path, len);
		if (cmp < 0)
			lo = mid + 1;
		else if (cmp > 0)
			hi = mid;
		else
			return rec;
	}
	return NULL;
}

bool sb_statcache_lookup(const sb_statcache *c, const char *path, size_t len,
			 const sb_statcache_key *key, sb_id *ret_id)
{
	const gen *g = &c->cur;
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *rec = g->data + g->off[mid];
		int cmp = path_cmp(rec_path(rec), rec_path_len(rec), path, len);
		if (cmp < 0) {
			lo = mid + 1;
		} else if (cmp > 0) {
			hi = mid;
		} else {
			const char *p = rec + 4;
			if (sb_le64(p) != key->dev || sb_le64(p + 8) != key->ino ||
			    sb_le32(p + 16) != key->mode || sb_le64(p + 20) != key->size ||
			    (int64_t)sb_le64(p + 28) != key->mtime_ns ||
			    (int64_t)sb_le64(p + 36) != key->ctime_ns)
				return false;
			if (racy(key->mtime_ns, g->stamp) || racy(key->ctime_ns, g->stamp))
				return false;
			memcpy(ret_id->b, p + 44, SB_ID_LEN);
			return true;
		}
	}
	return false;
}

static void put64(char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (char)(v >> (8 * i));
}

static void put32(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
}

int sb_statcache_record(sb_statcache *c, const char *path, size_t len, const sb_statcache_key *key,
			const sb_id *id)
{
	if (len == 0 || len > UINT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	gen *g = &c->next;
	sb_buf b = {g->data, g->len, c->next_data_cap};
	int r = sb_buf_reserve(&b, REC_FIXED + len);
	if (r >= 0 && g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 1024;
		size_t *off = reallocarray(g->off, cap, sizeof(*off));
		if (!off)
			r = -ENOMEM;
		else {
			g->off = off;
			g->cap = cap;
		}
	}
	if (r >= 0) {
		char *p = b.data + b.len;
		put32(p, (uint32_t)len);
		put64(p + 4, key->dev);
		put64(p + 12, key->ino);
		put32(p + 20, key->mode);
		put64(p + 24, key->size);
		put64(p + 32, (uint64_t)key->mtime_ns);
		put64(p + 40, (uint64_t)key->ctime_ns);
		memcpy(p + 48, id->b, SB_ID_LEN);
		memcpy(p + REC_FIXED, path, len);
		/* Unchanged and trusted already: saving it again would change nothing. */
		const char *old = find_cur(c, path, len);
		if (old && memcmp(old, p, REC_FIXED) == 0 &&
		    !racy((int64_t)sb_le64(old + 32), c->cur.stamp) &&
		    !racy((int64_t)sb_le64(old + 40), c->cur.stamp))
			c->same++;
		else
			c->dirty = true;
		g->off[g->n++] = b.len;
		b.len += REC_FIXED + len;
		c->next_sorted = false;
	}
	g->data = b.data;
	g->len = b.len;
	c->next_data_cap = b.cap;
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int rec_cmp(const void *x, const void *y, void *arg)
{
	const char *base = arg;
	size_t ox = *(const size_t *)x, oy = *(const size_t *)y;
	const char *a = base + ox, *b = base + oy;
	int r = path_cmp(rec_path(a), rec_path_len(a), rec_path(b), rec_path_len(b));
	/* equal paths: recording order, so the last record sorts last */
	return r ? r : (ox > oy) - (ox < oy);
}

/* Whether the file on disk already says all that next does. */
static bool unchanged(const sb_statcache *c)
{
	return !c->dirty && c->same == c->cur.n && c->next.n == c->cur.n && c->cur.n > 0;
}

void sb_statcache_sort(sb_statcache *c)
{
	gen *g = &c->next;
	if (c->next_sorted || unchanged(c))
		return;
	if (g->n > 1)
		qsort_r(g->off, g->n, sizeof(*g->off), rec_cmp, g->data);
	c->next_sorted = true;
}

int sb_statcache_save(sb_statcache *c, int dir_fd, const char *name, sb_error *err)
{
	gen *g = &c->next;
	if (unchanged(c))
		return 0;
	sb_statcache_sort(c);
	sb_buf out = SB_BUF_INIT;
	size_t total = HDR_LEN + g->len + SB_ID_LEN;
	if (total > SB_STATCACHE_FILE_MAX)
		return sb_error_set(err, EFBIG, "stat cache '%s' would exceed %u bytes", name,
				    SB_STATCACHE_FILE_MAX);
	int r = sb_buf_reserve(&out, total);
	if (r < 0)
		return r;
	sb_buf_append(&out, MAGIC, MAGIC_LEN);
	sb_buf_put_le64(&out, (uint64_t)g->stamp);
	sb_buf_put_le64(&out, 0); /* count, patched below */
	uint64_t count = 0;
	for (size_t i = 0; i < g->n; i++) {
		const char *rec = g->data + g->off[i];
		/* a path recorded twice keeps its last record: the later stat */
		if (i + 1 < g->n) {
			const char *nx = g->data + g->off[i + 1];
			if (path_cmp(rec_path(rec), rec_path_len(rec), rec_path(nx),
				     rec_path_len(nx)) == 0)
				continue;
		}
		sb_buf_append(&out, rec, REC_FIXED + rec_path_len(rec));
		count++;
	}
	put64(out.data + MAGIC_LEN + 8, count);
	sb_id sum;
	sb_sha256_buf(out.data, out.len, &sum);
	sb_buf_append(&out, sum.b, SB_ID_LEN);

	char lock[NAME_MAX + 8];
	if (snprintf(lock, sizeof(lock), "%s.lock", name) < (int)sizeof(lock))
		(void)unlinkat(dir_fd, lock, 0);
	r = sb_write_atomic(dir_fd, name, out.data, out.len, 0600, 0, err);
	if (r < 0) {
		sb_buf_release(&out);
		return r;
	}
	size_t len;
	char *data = sb_buf_steal(&out, &len);
	gen fresh = {0};
	const char *why = parse(&fresh, data, len);
	if (why) {
		gen_release(&fresh);
		return sb_error_set(err, EIO, "stat cache '%s' just written: %s", name, why);
	}
	gen_release(&c->cur);
	c->cur = fresh;
	gen_release(&c->next);
	c->next_data_cap = 0;
	c->problem = NULL;
	return 0;
}

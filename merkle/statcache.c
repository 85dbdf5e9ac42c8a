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

/* A loaded (or last saved) file: its bytes and an index over its records. */
typedef struct gen {
	char *data;
	size_t len;
	size_t *off; /* record offsets into data, in path order */
	size_t n;
	int64_t stamp;
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

/* Forgets the next generation (not its stamp). */
static void next_reset(sb_statcache *c)
{
	free(c->kept);
	c->kept = NULL;
	sb_buf_release(&c->add);
	free(c->addv);
	c->addv = NULL;
	c->n_add = c->cap_add = 0;
	c->seq = 0;
	c->dirty = false;
	c->same = 0;
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
	next_reset(c);
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

static int rec_path_cmp(const char *a, const char *b)
{
	return path_cmp(rec_path(a), rec_path_len(a), rec_path(b), rec_path_len(b));
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
	next_reset(c);
	c->stamp = (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

void sb_statcache_set_stamp(sb_statcache *c, int64_t stamp_ns)
{
	c->stamp = stamp_ns;
}

static bool racy(int64_t t, int64_t stamp)
{
	if (t % NSEC == 0)
		return t > stamp - 2 * NSEC;
	return t >= stamp;
}

static bool rec_racy(const char *rec, int64_t stamp)
{
	return racy((int64_t)sb_le64(rec + 32), stamp) || racy((int64_t)sb_le64(rec + 40), stamp);
}

void sb_statcache_restamp(sb_statcache *c)
{
	size_t k = 0;
	for (size_t i = 0; i < c->n_add; i++)
		if (!rec_racy(c->add.data + c->addv[i].off, c->stamp))
			c->addv[k++] = c->addv[i];
	c->n_add = k;
	/* Kept records were trusted under cur's older stamp; only a clock set back makes them racy. */
	for (size_t i = 0; c->kept && i < c->cur.n; i++)
		if (c->kept[i] && rec_racy(c->cur.data + c->cur.off[i], c->stamp)) {
			c->kept[i] = 0;
			c->same--;
		}
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
	c->stamp = (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
	c->dirty = true;
}

/* The index of the loaded record for path, or SIZE_MAX. */
static size_t find_cur(const sb_statcache *c, const char *path, size_t len)
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
			return mid;
	}
	return SIZE_MAX;
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

/* The fixed part of a record, as the file holds it. */
static void rec_fixed(char *p, size_t len, const sb_statcache_key *key, const sb_id *id)
{
	put32(p, (uint32_t)len);
	put64(p + 4, key->dev);
	put64(p + 12, key->ino);
	put32(p + 20, key->mode);
	put64(p + 24, key->size);
	put64(p + 32, (uint64_t)key->mtime_ns);
	put64(p + 40, (uint64_t)key->ctime_ns);
	memcpy(p + 48, id->b, SB_ID_LEN);
}

/* cur record i, trusted, is recorded again unchanged. Under the lock. */
static int keep(sb_statcache *c, size_t i)
{
	if (c->seq == UINT32_MAX)
		return -EOVERFLOW;
	if (!c->kept && !(c->kept = calloc(c->cur.n, sizeof(*c->kept))))
		return -ENOMEM;
	if (!c->kept[i])
		c->same++;
	c->kept[i] = ++c->seq;
	return 0;
}

/* Appends a record to the next generation. Under the lock. */
static int add(sb_statcache *c, const char *fixed, const char *path, size_t len)
{
	if (c->seq == UINT32_MAX)
		return -EOVERFLOW;
	if (c->n_add == c->cap_add) {
		size_t cap = c->cap_add ? c->cap_add * 2 : 256;
		added *v = reallocarray(c->addv, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->addv = v;
		c->cap_add = cap;
	}
	size_t off = c->add.len;
	int r = sb_buf_reserve(&c->add, REC_FIXED + len);
	if (r < 0)
		return r;
	sb_buf_append(&c->add, fixed, REC_FIXED);
	sb_buf_append(&c->add, path, len);
	c->addv[c->n_add++] = (added){.off = off, .seq = ++c->seq};
	c->add_sorted = false;
	c->dirty = true;
	return 0;
}

/* The id of cur record i when it says exactly key and is not racily clean. */
static bool trusted(const sb_statcache *c, size_t i, const sb_statcache_key *key, sb_id *ret_id)
{
	const char *p = c->cur.data + c->cur.off[i] + 4;
	if (sb_le64(p) != key->dev || sb_le64(p + 8) != key->ino || sb_le32(p + 16) != key->mode ||
	    sb_le64(p + 20) != key->size || (int64_t)sb_le64(p + 28) != key->mtime_ns ||
	    (int64_t)sb_le64(p + 36) != key->ctime_ns)
		return false;
	if (racy(key->mtime_ns, c->cur.stamp) || racy(key->ctime_ns, c->cur.stamp))
		return false;
	memcpy(ret_id->b, p + 44, SB_ID_LEN);
	return true;
}

bool sb_statcache_lookup(const sb_statcache *c, const char *path, size_t len,
			 const sb_statcache_key *key, sb_id *ret_id)
{
	size_t i = find_cur(c, path, len);
	return i != SIZE_MAX && trusted(c, i, key, ret_id);
}

int sb_statcache_reuse(sb_statcache *c, const char *path, size_t len, const sb_statcache_key *key,
		       sb_id *ret_id)
{
	size_t i = find_cur(c, path, len);
	if (i == SIZE_MAX || !trusted(c, i, key, ret_id))
		return 0;
	pthread_mutex_lock(&c->lock);
	int r = keep(c, i);
	pthread_mutex_unlock(&c->lock);
	return r < 0 ? r : 1;
}

int sb_statcache_record(sb_statcache *c, const char *path, size_t len, const sb_statcache_key *key,
			const sb_id *id)
{
	if (len == 0 || len > UINT32_MAX)
		return -EINVAL;
	char fixed[REC_FIXED];
	rec_fixed(fixed, len, key, id);
	pthread_mutex_lock(&c->lock);
	/* Unchanged and trusted already: saving it again would change nothing. */
	size_t i = find_cur(c, path, len);
	int r;
	if (i != SIZE_MAX && memcmp(c->cur.data + c->cur.off[i], fixed, REC_FIXED) == 0 &&
	    !rec_racy(c->cur.data + c->cur.off[i], c->cur.stamp))
		r = keep(c, i);
	else
		r = add(c, fixed, path, len);
	pthread_mutex_unlock(&c->lock);
	return r;
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
 * The next generation in path order: the kept records of cur merged with
 * the added ones, each path once with its last record. Fills out (header,
 * records; no checksum) and ret_off with each record's offset in it.
 */
static int merge(sb_statcache *c, sb_buf *out, size_t **ret_off, size_t *ret_n)
{
	sb_statcache_sort(c);
	size_t cap = c->same + c->n_add;
	size_t *off = malloc(MAX(cap, 1) * sizeof(*off));
	if (!off)
		return -ENOMEM;
	size_t n = 0, i = 0, j = 0;
	const gen *g = &c->cur;
	for (;;) {
		while (i < g->n && !(c->kept && c->kept[i]))
			i++;
		/* a path added twice keeps its last record: the later stat */
		while (j + 1 < c->n_add && rec_path_cmp(c->add.data + c->addv[j].off,
							c->add.data + c->addv[j + 1].off) == 0)
			j++;
		if (i == g->n && j == c->n_add)
			break;
		const char *kr = i < g->n ? g->data + g->off[i] : NULL;
		const char *ar = j < c->n_add ? c->add.data + c->addv[j].off : NULL;
		int cmp = !kr ? 1 : !ar ? -1 : rec_path_cmp(kr, ar);
		const char *rec;
		if (cmp < 0) {
			rec = kr;
			i++;
		} else if (cmp > 0) {
			rec = ar;
			j++;
		} else {
			rec = c->kept[i] > c->addv[j].seq ? kr : ar;
			i++;
			j++;
		}
		off[n++] = out->len;
		sb_buf_append(out, rec, REC_FIXED + rec_path_len(rec));
	}
	*ret_off = off;
	*ret_n = n;
	return 0;
}

int sb_statcache_save(sb_statcache *c, int dir_fd, const char *name, sb_error *err)
{
	if (!c->dirty && c->n_add == 0 && c->same == c->cur.n && c->cur.n > 0)
		return 0; /* the file on disk already says all of this */
	size_t total = HDR_LEN + c->cur.len + c->add.len + SB_ID_LEN;
	if (total > SB_STATCACHE_FILE_MAX)
		return sb_error_set(err, EFBIG, "stat cache '%s' would exceed %u bytes", name,
				    SB_STATCACHE_FILE_MAX);
	sb_buf out = SB_BUF_INIT;
	int r = sb_buf_reserve(&out, total);
	if (r < 0)
		return r;
	sb_buf_append(&out, MAGIC, MAGIC_LEN);
	sb_buf_put_le64(&out, (uint64_t)c->stamp);
	sb_buf_put_le64(&out, 0); /* count, patched below */
	size_t *off, n;
	r = merge(c, &out, &off, &n);
	if (r < 0) {
		sb_buf_release(&out);
		return r;
	}
	put64(out.data + MAGIC_LEN + 8, n);
	sb_id sum;
	sb_sha256_buf(out.data, out.len, &sum);
	sb_buf_append(&out, sum.b, SB_ID_LEN);

	char lock[NAME_MAX + 8];
	if (snprintf(lock, sizeof(lock), "%s.lock", name) < (int)sizeof(lock))
		(void)unlinkat(dir_fd, lock, 0);
	r = sb_write_atomic(dir_fd, name, out.data, out.len, 0600, 0, err);
	if (r < 0) {
		free(off);
		sb_buf_release(&out);
		return r;
	}
	/* What was just written becomes what lookup sees. */
	gen_release(&c->cur);
	c->cur.off = off;
	c->cur.n = n;
	c->cur.stamp = c->stamp;
	c->cur.data = sb_buf_steal(&out, &c->cur.len);
	next_reset(c);
	c->stamp = 0;
	c->problem = NULL;
	return 0;
}

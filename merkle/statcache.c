/* SPDX-License-Identifier: MIT */
/*
 * Lookups and records: what a scan asks of the stat cache and tells it.
 * statcache-file.c loads and saves it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "buf.h"
#include "statcache-internal.h"

/* restamp's wait for the coarse clock: naps of 0.5 ms, 100 ms at most */
#define RESTAMP_NAP_NS 500000
#define RESTAMP_NAPS   200

void sb_statcache_key_from_stat(const struct stat *st, sb_statcache_key *ret)
{
	ret->dev = (uint64_t)st->st_dev;
	ret->ino = (uint64_t)st->st_ino;
	ret->mode = (uint32_t)st->st_mode;
	ret->size = (uint64_t)st->st_size;
	ret->mtime_ns = sb_ns_from_timespec(&st->st_mtim);
	ret->ctime_ns = sb_ns_from_timespec(&st->st_ctim);
}

void sb_statcache__next_reset(sb_statcache *c)
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
	sb_statcache__gen_release(&c->cur);
	sb_statcache__next_reset(c);
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

int sb_statcache_foreach_id(const sb_statcache *c, sb_statcache_id_fn fn, void *userdata)
{
	for (size_t i = 0; i < c->cur.n; i++) {
		const char *rec = c->cur.rec[i];
		sb_id id;
		memcpy(id.b, rec + REC_ID, SB_ID_LEN);
		if (sb_id_is_zero(&id))
			continue;
		int r = fn(userdata, &id, rec_mode(rec));
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- lookup and record ---- */

void sb_statcache_begin(sb_statcache *c)
{
	int64_t now = sb_coarse_now_ns();
	sb_statcache__next_reset(c);
	c->stamp = now;
}

void sb_statcache_set_stamp(sb_statcache *c, int64_t stamp_ns)
{
	c->stamp = stamp_ns;
}

static bool racy(int64_t t, int64_t stamp)
{
	if (t % SB_NSEC == 0)
		return t > stamp - 2 * SB_NSEC;
	return t >= stamp;
}

bool sb_statcache_key_racy(const sb_statcache_key *key, int64_t stamp_ns)
{
	return racy(key->mtime_ns, stamp_ns) || racy(key->ctime_ns, stamp_ns);
}

static bool rec_racy(const char *rec, int64_t stamp)
{
	return racy((int64_t)sb_le64(rec + 32), stamp) || racy((int64_t)sb_le64(rec + 40), stamp);
}

/* The stamp cur record i is judged by: the one of the file it came from. */
static int64_t cur_stamp(const gen *g, size_t i)
{
	return g->stamps[g->sec ? g->sec[i] : 0];
}

void sb_statcache_restamp_after(sb_statcache *c, int64_t written_ns)
{
	size_t k = 0;
	for (size_t i = 0; i < c->n_add; i++)
		if (!rec_racy(c->add.data + c->addv[i].off, c->stamp))
			c->addv[k++] = c->addv[i];
	c->n_add = k;
	/* Kept records were trusted under cur's older stamp; only a clock set back makes them racy. */
	for (size_t i = 0; c->kept && i < c->cur.n; i++)
		if (c->kept[i] && rec_racy(c->cur.rec[i], c->stamp)) {
			c->kept[i] = 0;
			c->same--;
		}
	/*
	 * Files written until written_ns would still be racy: wait until the
	 * coarse clock (the one stamps and most file timestamps come from) has
	 * passed it, a tick at most as a rule. Not just for its next tick: a
	 * file whose times were read since its last change gets a fine-grained
	 * timestamp, up to the real time of the write (multigrain timestamps,
	 * Linux 6.13), and the coarse clock can trail the real time by more
	 * than a tick when idle CPUs skipped ticks. Past a limit the wait is
	 * given up: the files then only count as racy.
	 */
	int64_t now = sb_coarse_now_ns();
	for (int i = 0; now <= written_ns && i < RESTAMP_NAPS; i++) {
		struct timespec nap = {0, RESTAMP_NAP_NS};
		nanosleep(&nap, NULL);
		now = sb_coarse_now_ns();
	}
	c->stamp = now;
	c->dirty = true;
}

void sb_statcache_restamp(sb_statcache *c)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	sb_statcache_restamp_after(c, sb_ns_from_timespec(&now));
}

/*
 * Where the last lookup on this thread ended. A scan looks paths up nearly
 * in path order, so the next one is usually a step or two on: galloping from
 * here takes a few comparisons where a binary search over every record
 * takes twenty. Only a hint: any value gives the same answers.
 */
static _Thread_local size_t finger;

static int cmp_at(const gen *g, size_t i, const char *path, size_t len)
{
	return path_cmp(rec_path(g->rec[i]), rec_path_len(g->rec[i]), path, len);
}

/* The index of the loaded record for path, or SIZE_MAX. */
static size_t find_cur(const sb_statcache *c, const char *path, size_t len)
{
	const gen *g = &c->cur;
	if (g->n == 0)
		return SIZE_MAX;
	/* Every record below lo sorts before path; none from hi on does. */
	size_t h = finger < g->n ? finger : g->n / 2, lo = 0, hi = g->n, step = 1;
	int cmp = cmp_at(g, h, path, len);
	if (cmp < 0) {
		for (lo = h + 1; step <= hi - lo; step *= 2) {
			size_t p = lo + step - 1;
			if (cmp_at(g, p, path, len) >= 0) {
				hi = p;
				break;
			}
			lo = p + 1;
		}
	} else if (cmp > 0) {
		for (hi = h; step <= hi - lo; step *= 2) {
			size_t p = hi - step;
			if (cmp_at(g, p, path, len) < 0) {
				lo = p + 1;
				break;
			}
			hi = p;
		}
	} else {
		return h;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp_at(g, mid, path, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == g->n || cmp_at(g, lo, path, len) != 0)
		return SIZE_MAX;
	finger = lo;
	return lo;
}

/* The fixed part of a record, as the file holds it. */
static void rec_fixed(char *p, size_t len, const sb_statcache_key *key, const sb_id *id)
{
	sb_put_le32(p, (uint32_t)len);
	sb_put_le64(p + 4, key->dev);
	sb_put_le64(p + 12, key->ino);
	sb_put_le32(p + 20, key->mode);
	sb_put_le64(p + 24, key->size);
	sb_put_le64(p + 32, (uint64_t)key->mtime_ns);
	sb_put_le64(p + 40, (uint64_t)key->ctime_ns);
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

/* Room for one more added record of size bytes; *ret_off is where it goes. Under the lock. */
static int add_room(sb_statcache *c, size_t size, size_t *ret_off)
{
	if (c->seq == UINT32_MAX)
		return -EOVERFLOW;
	added *v = sb_grow(c->addv, &c->cap_add, c->n_add, sizeof(*v), 256);
	if (!v)
		return -ENOMEM;
	c->addv = v;
	*ret_off = c->add.len;
	return sb_buf_reserve(&c->add, size);
}

/* The record just written at off joins the next generation. Under the lock. */
static void add_done(sb_statcache *c, size_t off)
{
	c->addv[c->n_add++] = (added){.off = off, .seq = ++c->seq};
	c->add_sorted = false;
	c->dirty = true;
}

/*
 * Appends a record (with a directory's listing) to the next generation;
 * *ret_off (may be NULL): where it is in c->add. Under the lock.
 */
static int add(sb_statcache *c, const char *fixed, const char *path, size_t len,
	       const sb_dirnames *names, size_t *ret_off)
{
	size_t names_len = names ? sb_dirnames_packed_size(names) : 0, off;
	if (names_len > UINT32_MAX)
		return -EOVERFLOW;
	int r = add_room(c, REC_FIXED + len + (names ? 4 + names_len : 0), &off);
	if (r < 0)
		return r;
	sb_buf_append(&c->add, fixed, REC_FIXED);
	sb_buf_append(&c->add, path, len);
	if (names) {
		sb_buf_put_le32(&c->add, (uint32_t)names_len);
		sb_dirnames_pack(names, c->add.data + c->add.len);
		c->add.len += names_len;
	}
	add_done(c, off);
	if (ret_off)
		*ret_off = off;
	return 0;
}

/* The id of cur record i when it says exactly key and is not racily clean. */
static bool trusted(const sb_statcache *c, size_t i, const sb_statcache_key *key, sb_id *ret_id)
{
	const char *p = c->cur.rec[i] + 4;
	if (sb_le64(p) != key->dev || sb_le64(p + 8) != key->ino || sb_le32(p + 16) != key->mode ||
	    sb_le64(p + 20) != key->size || (int64_t)sb_le64(p + 28) != key->mtime_ns ||
	    (int64_t)sb_le64(p + 36) != key->ctime_ns)
		return false;
	int64_t stamp = cur_stamp(&c->cur, i);
	if (racy(key->mtime_ns, stamp) || racy(key->ctime_ns, stamp))
		return false;
	memcpy(ret_id->b, p + 44, SB_ID_LEN);
	return true;
}

bool sb_statcache_lookup(const sb_statcache *c, const char *path, size_t len,
			 const sb_statcache_key *key, sb_id *ret_id)
{
	size_t i = S_ISDIR(key->mode) ? SIZE_MAX : find_cur(c, path, len);
	return i != SIZE_MAX && trusted(c, i, key, ret_id);
}

int sb_statcache_reuse(sb_statcache *c, const char *path, size_t len, const sb_statcache_key *key,
		       sb_id *ret_id)
{
	size_t i = S_ISDIR(key->mode) ? SIZE_MAX : find_cur(c, path, len);
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
	if (len == 0 || len > UINT32_MAX || S_ISDIR(key->mode) || (key->mode & S_IFMT) == 0)
		return -EINVAL;
	char fixed[REC_FIXED];
	rec_fixed(fixed, len, key, id);
	pthread_mutex_lock(&c->lock);
	/* Unchanged and trusted already: saving it again would change nothing. */
	size_t i = find_cur(c, path, len);
	int r;
	if (i != SIZE_MAX && memcmp(c->cur.rec[i], fixed, REC_FIXED) == 0 &&
	    !rec_racy(c->cur.rec[i], cur_stamp(&c->cur, i)))
		r = keep(c, i);
	else
		r = add(c, fixed, path, len, NULL, NULL);
	pthread_mutex_unlock(&c->lock);
	return r;
}

bool sb_statcache_has_dir(const sb_statcache *c, const char *path, size_t len)
{
	size_t i = find_cur(c, path, len);
	return i != SIZE_MAX && S_ISDIR(rec_mode(c->cur.rec[i]));
}

int sb_statcache_reuse_dir(sb_statcache *c, const char *path, size_t len,
			   const sb_statcache_key *key, sb_dirnames *ret, sb_statcache_dir *ret_dir)
{
	sb_id unused;
	size_t i = find_cur(c, path, len);
	if (i == SIZE_MAX || !S_ISDIR(key->mode) || !trusted(c, i, key, &unused))
		return 0;
	const char *names = rec_names(c->cur.rec[i]);
	int r = sb_dirnames_unpack(names + 4, sb_le32(names), ret);
	if (r == -EBADMSG)
		return 0; /* not a listing after all: the caller lists the directory */
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	r = keep(c, i);
	pthread_mutex_unlock(&c->lock);
	if (r < 0) {
		sb_dirnames_release(ret);
		return r;
	}
	if (ret_dir)
		*ret_dir = (sb_statcache_dir){.at = i, .kept = true};
	return 1;
}

int sb_statcache_record_dir(sb_statcache *c, const char *path, size_t len,
			    const sb_statcache_key *key, const sb_dirnames *names,
			    sb_statcache_dir *ret_dir)
{
	static const sb_id none;
	if (len > UINT32_MAX || !S_ISDIR(key->mode))
		return -EINVAL;
	char fixed[REC_FIXED];
	rec_fixed(fixed, len, key, &none);
	size_t off;
	pthread_mutex_lock(&c->lock);
	int r = add(c, fixed, len ? path : "", len, names, &off);
	pthread_mutex_unlock(&c->lock);
	if (r >= 0 && ret_dir)
		*ret_dir = (sb_statcache_dir){.at = off, .kept = false};
	return r;
}

bool sb_statcache_dir_knows(const sb_statcache *c, const sb_statcache_dir *d, const sb_id *tree)
{
	return d->kept && !sb_id_is_zero(tree) &&
	       memcmp(c->cur.rec[d->at] + REC_ID, tree->b, SB_ID_LEN) == 0;
}

int sb_statcache_dir_set_tree(sb_statcache *c, const sb_statcache_dir *d, const sb_id *tree)
{
	int r = 0;
	pthread_mutex_lock(&c->lock);
	if (!d->kept) {
		memcpy(c->add.data + d->at + REC_ID, tree->b, SB_ID_LEN);
	} else if (!sb_statcache_dir_knows(c, d, tree)) {
		/* Kept as loaded, but with another tree: a copy that names this one replaces it. */
		const char *rec = c->cur.rec[d->at];
		size_t len = rec_len(rec), off;
		r = add_room(c, len, &off);
		if (r >= 0) {
			sb_buf_append(&c->add, rec, len);
			memcpy(c->add.data + off + REC_ID, tree->b, SB_ID_LEN);
			add_done(c, off);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * gc's sweep (store.h: sb_sweep_begin, sb_sweep_run): which packs to delete, rewrite or
 * keep, the copy of the live records of those rewritten, and the removals,
 * in an order a crash at any point leaves safe: the new packs and their
 * indexes are durable before any old index goes, and an index goes before
 * its pack, so no index ever names a pack that is gone.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "buf.h"
#include "fileio.h"
#include "store-internal.h"

/*
 * A pack is rewritten when at least 1/this of its file is garbage (or when it
 * is small: SB_GC_SMALL_PACK, store-internal.h).
 */
#define SB_GC_GARBAGE_SHARE 8

typedef enum fate { KEEP, REWRITE, DELETE } fate;

typedef struct plan {
	sb_pack *p;
	sb_entry *ents; /* its index, checked whole (sb_pack__load_idx) */
	size_t n_ents;
	uint64_t pack_size, idx_size; /* of the files */
	uint64_t live, dead, live_bytes, dead_bytes;
	fate fate;
} plan;

/*
 * A record of a live id that a rewritten pack holds: that record, or a kept
 * pack's copy of the same id (which, when it reads back whole, makes copying
 * needless).
 */
typedef struct cand {
	sb_entry e;
	size_t plan; /* index into the plans */
} cand;

struct sb_sweep {
	sb_store *s;
	plan *v;
	size_t n;
	char **orphans; /* packs without an index, and temp files, in packs/ */
	size_t n_orphans, cap_orphans, orphan_packs;
	cand *cands; /* by id, a kept pack's record first */
	size_t n_cands, cap_cands;
	size_t *singles; /* cands of ids with one record, in pack and offset order */
	size_t n_singles;
	sb_sweep_stats st;
};
typedef struct sb_sweep sweep;

static void sweep_release(sweep *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].ents);
	free(w->v);
	for (size_t i = 0; i < w->n_orphans; i++)
		free(w->orphans[i]);
	free(w->orphans);
	free(w->cands);
	free(w->singles);
}

static uint64_t file_size_at(int dir_fd, const char *name)
{
	struct stat st;
	return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)
		   ? (uint64_t)st.st_size
		   : 0;
}

static int add_orphan(sweep *w, const char *name)
{
	char **v = sb_grow(w->orphans, &w->cap_orphans, w->n_orphans, sizeof(*v), 16);
	if (!v)
		return -ENOMEM;
	w->orphans = v;
	if (!(v[w->n_orphans] = strdup(name)))
		return -ENOMEM;
	w->n_orphans++;
	return 0;
}

/* A pack file no writer holds (store-internal.h: writers keep LOCK_SH on theirs). */
static bool unheld(int dir_fd, const char *name)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
}

/*
 * Every pack file, index and leftover in packs/: the sizes before, and the
 * leftovers to remove (a crashed writer's pack without an index, a temp
 * index that was never renamed into place).
 */
static int list_files(sweep *w, sb_error *err)
{
	int dfd = openat(w->s->packs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return sb_error_errno(err, errno, "read store directory 'packs'");
	}
	_cleanup_closedir_ DIR *dir = d;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dir);
		if (!de)
			break;
		char stem[SB_PACK_NAME_LEN + 1], idx[SB_PACK_NAME_LEN + 8];
		size_t len = strlen(de->d_name);
		bool pack = sb_pack__parse_name(de->d_name, ".pack", stem);
		bool temp = len > 5 && strcmp(de->d_name + len - 5, ".lock") == 0 &&
			    strncmp(de->d_name, "pack-", 5) == 0;
		if (!pack && !temp && !sb_pack__parse_name(de->d_name, ".idx", stem))
			continue;
		struct stat st;
		if (fstatat(w->s->packs_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue; /* not ours to count or remove */
		uint64_t size = (uint64_t)st.st_size;
		w->st.bytes_before += size;
		if (pack) {
			w->st.packs_before++;
			snprintf(idx, sizeof(idx), "%s.idx", stem);
			if (faccessat(w->s->packs_fd, idx, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
			    !unheld(w->s->packs_fd, de->d_name))
				continue;
		} else if (!temp) {
			continue;
		}
		if (add_orphan(w, de->d_name) < 0)
			return sb_error_errno(err, ENOMEM, "gc");
		w->st.orphan_bytes += size;
		w->orphan_packs += pack;
	}
	if (errno)
		return sb_error_errno(err, errno, "read store directory 'packs'");
	return 0;
}

static int bad_index(sb_error *err, const char *name, const char *why)
{
	return sb_error_set(err, EBADMSG,
			    "index 'packs/%s' cannot be used (%s); gc removes nothing while it "
			    "cannot tell what an index holds: run 'snapbox verify'",
			    name, why);
}

/*
 * Every indexed pack and its whole index, checked (sb_pack__load_idx: the
 * checksum too, since an entry whose id was damaged would make its record
 * look like garbage while the record is still whole).
 */
static int load_plans(sweep *w, sb_error *err)
{
	sb_store *s = w->s;
	pthread_mutex_lock(&s->lock);
	int r = sb_store__reload(s, err);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	if (s->n_bad)
		return bad_index(err, s->bad[0].name, s->bad[0].why);
	w->v = calloc(s->n_packs ? s->n_packs : 1, sizeof(*w->v));
	if (!w->v)
		return sb_error_errno(err, ENOMEM, "gc");
	for (size_t i = 0; i < s->n_packs; i++) {
		sb_pack *p = s->packs[i];
		if (p->own || !p->idx.base)
			continue;
		char fname[SB_PACK_NAME_LEN + 8];
		snprintf(fname, sizeof(fname), "%s.pack", p->name);
		struct stat st;
		if (fstatat(s->packs_fd, fname, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			return sb_error_set(
			    err, EBADMSG,
			    "'packs/%s.idx' indexes a pack that is missing or not a "
			    "file; gc removes nothing until 'snapbox verify' passes",
			    p->name);
		/* A writer that does not take gc.lock (an older snapbox) still
		 * holds its pack (store-internal.h). */
		if (!unheld(s->packs_fd, fname))
			return sb_error_set(
			    err, EBUSY,
			    "'packs/%s' is being written by another process; run gc "
			    "again when it has finished",
			    fname);
		plan *pl = &w->v[w->n++];
		*pl = (plan){.p = p, .pack_size = (uint64_t)st.st_size};
		snprintf(fname, sizeof(fname), "%s.idx", p->name);
		pl->idx_size = file_size_at(s->packs_fd, fname);
		char why[128];
		uint64_t indexed;
		r = sb_pack__load_idx(s->packs_fd, p->name, p->no, &pl->ents, &pl->n_ents, &indexed,
				      why, sizeof(why));
		if (r == -ENOMEM)
			return sb_error_errno(err, ENOMEM, "gc");
		if (r < 0)
			return bad_index(err, fname, why);
		if (indexed > pl->pack_size)
			return sb_error_set(
			    err, EBADMSG,
			    "'packs/%s.pack' is shorter than its index says (%" PRIu64
			    " of %" PRIu64 " bytes); gc removes nothing until "
			    "'snapbox verify' passes",
			    p->name, pl->pack_size, indexed);
	}
	return 0;
}

static void count_live(sweep *w, sb_store_live_fn live, void *userdata)
{
	for (size_t i = 0; i < w->n; i++) {
		plan *pl = &w->v[i];
		for (size_t k = 0; k < pl->n_ents; k++) {
			uint64_t rec = SB_REC_HEADER_LEN + (uint64_t)pl->ents[k].stored_len;
			if (live(userdata, &pl->ents[k].id)) {
				pl->live++;
				pl->live_bytes += rec;
			} else {
				pl->dead++;
				pl->dead_bytes += rec;
			}
		}
	}
}

static void decide(sweep *w)
{
	size_t small = 0;
	for (size_t i = 0; i < w->n; i++) {
		plan *pl = &w->v[i];
		uint64_t garbage =
		    pl->pack_size - MIN(pl->pack_size, SB_PACK_HEADER_LEN + pl->live_bytes);
		bool is_small = pl->pack_size < w->s->small_pack;
		if (pl->live == 0)
			pl->fate = DELETE;
		else if (garbage * SB_GC_GARBAGE_SHARE >= pl->pack_size || (is_small && pl->dead))
			pl->fate = REWRITE;
		else if (is_small)
			small++;
	}
	for (size_t i = 0; small >= 2 && i < w->n; i++)
		if (w->v[i].fate == KEEP && w->v[i].pack_size < w->s->small_pack)
			w->v[i].fate = REWRITE;
}

static int cand_cmp(const void *a, const void *b, void *plans)
{
	const cand *x = a, *y = b;
	const plan *v = plans;
	int c = sb_entry__cmp(&x->e, &y->e);
	if (c)
		return c;
	if (v[x->plan].fate != v[y->plan].fate)
		return v[x->plan].fate == KEEP ? -1 : 1;
	return x->plan < y->plan ? -1 : x->plan > y->plan;
}

static int single_cmp(const void *a, const void *b, void *cands)
{
	const cand *x = &((const cand *)cands)[*(const size_t *)a];
	const cand *y = &((const cand *)cands)[*(const size_t *)b];
	if (x->plan != y->plan)
		return x->plan < y->plan ? -1 : 1;
	return x->e.offset < y->e.offset ? -1 : x->e.offset > y->e.offset;
}

static int add_cand(sweep *w, const sb_entry *e, size_t plan_no)
{
	cand *v = sb_grow(w->cands, &w->cap_cands, w->n_cands, sizeof(*v), 1024);
	if (!v)
		return -ENOMEM;
	w->cands = v;
	v[w->n_cands++] = (cand){.e = *e, .plan = plan_no};
	return 0;
}

/* The end of the group of cands sharing cands[i]'s id. */
static size_t group_end(const sweep *w, size_t i)
{
	size_t j = i + 1;
	while (j < w->n_cands && sb_id_eq(&w->cands[j].e.id, &w->cands[i].e.id))
		j++;
	return j;
}

/*
 * Every record of each live id a rewritten pack holds (there may be several:
 * two writers storing the same content at once, or a gc cut short), grouped
 * by id; and the ids with one record, in pack and offset order, so most
 * reads are sequential and objects written together stay together.
 */
static int plan_copies(sweep *w, sb_store_live_fn live, void *userdata, sb_error *err)
{
	for (size_t i = 0; i < w->n; i++) {
		plan *pl = &w->v[i];
		for (size_t k = 0; pl->fate == REWRITE && k < pl->n_ents; k++) {
			const sb_entry *e = &pl->ents[k];
			if (!live(userdata, &e->id))
				continue;
			if (add_cand(w, e, i) < 0)
				return sb_error_errno(err, ENOMEM, "gc");
			for (size_t j = 0; j < w->n; j++) {
				const sb_entry *k2 = w->v[j].fate != KEEP
							 ? NULL
							 : bsearch(e, w->v[j].ents, w->v[j].n_ents,
								   sizeof(*e), sb_entry__cmp);
				if (k2 && add_cand(w, k2, j) < 0)
					return sb_error_errno(err, ENOMEM, "gc");
			}
		}
	}
	if (w->n_cands) /* (qsort's base must not be NULL, even for none) */
		qsort_r(w->cands, w->n_cands, sizeof(*w->cands), cand_cmp, w->v);
	/* A kept pack's record is added once per rewritten pack holding the id. */
	size_t out = 0;
	for (size_t i = 0; i < w->n_cands; i++)
		if (!out || cand_cmp(&w->cands[out - 1], &w->cands[i], w->v) != 0)
			w->cands[out++] = w->cands[i];
	w->n_cands = out;
	w->singles = malloc((out ? out : 1) * sizeof(*w->singles));
	if (!w->singles)
		return sb_error_errno(err, ENOMEM, "gc");
	for (size_t i = 0; i < w->n_cands; i = group_end(w, i))
		if (group_end(w, i) == i + 1)
			w->singles[w->n_singles++] = i;
	qsort_r(w->singles, w->n_singles, sizeof(*w->singles), single_cmp, w->cands);
	return 0;
}

/* Reading records back: one pack fd at a time, one buffer. */
typedef struct reader {
	sweep *w;
	sb_zctx *z;
	int fd;
	size_t fd_plan;
	uint8_t *buf;
	size_t cap;
} reader;

/*
 * Reads cand c's record into rd->buf: *whole when it would read back as it
 * is (header and payload), *payload_ok when its payload is good (a copy
 * gets a new header).
 */
static int read_cand(reader *rd, const cand *c, bool *whole, bool *payload_ok, sb_error *err)
{
	const char *name = rd->w->v[c->plan].p->name;
	if (c->plan != rd->fd_plan) {
		char fname[SB_PACK_NAME_LEN + 8];
		snprintf(fname, sizeof(fname), "%s.pack", name);
		CLOSE_FD(rd->fd);
		rd->fd = openat(rd->w->s->packs_fd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (rd->fd < 0)
			return sb_error_errno(err, errno, "open 'packs/%s'", fname);
		rd->fd_plan = c->plan;
	}
	if (c->e.stored_len > rd->cap) {
		uint8_t *nb = realloc(rd->buf, c->e.stored_len);
		if (!nb)
			return sb_error_errno(err, ENOMEM, "gc");
		rd->buf = nb;
		rd->cap = c->e.stored_len;
	}
	sb_error ignored = SB_ERROR_INIT;
	int r = sb_pack__read_stored(rd->fd, name, &c->e, rd->buf, &ignored);
	if (r < 0 && r != -EBADMSG)
		return sb_error_errno(err, -r, "read 'packs/%s.pack'", name);
	int v = sb_pack__check_stored(&c->e, rd->buf, rd->z);
	if (v == -ENOMEM)
		return sb_error_errno(err, ENOMEM, "gc");
	*payload_ok = v == 0;
	*whole = *payload_ok && r == 0;
	return 0;
}

static int put(reader *rd, const cand *c, sb_error *err)
{
	rd->w->st.objects_copied++;
	rd->w->st.bytes_copied += SB_REC_HEADER_LEN + (uint64_t)c->e.stored_len;
	return sb_store__put_record(rd->w->s, &c->e, rd->buf, err);
}

/*
 * One id's records [a, b): none is copied when a kept pack's reads back
 * whole; else the first good payload of a rewritten pack is. When none is
 * good the id is counted damaged, and (unless a kept pack still holds a
 * copy) the first rewritten record is copied as it is: nothing that was
 * there is lost.
 */
static int copy_group(reader *rd, size_t a, size_t b, sb_error *err)
{
	const sweep *w = rd->w;
	bool whole, good, kept = false;
	int r;
	for (size_t i = a; i < b && w->v[w->cands[i].plan].fate == KEEP; i++) {
		kept = true;
		if ((r = read_cand(rd, &w->cands[i], &whole, &good, err)) < 0)
			return r;
		if (whole)
			return 0;
	}
	size_t first = SIZE_MAX;
	for (size_t i = a; i < b; i++) {
		if (w->v[w->cands[i].plan].fate == KEEP)
			continue;
		first = MIN(first, i);
		if ((r = read_cand(rd, &w->cands[i], &whole, &good, err)) < 0)
			return r;
		if (good)
			return put(rd, &w->cands[i], err);
	}
	rd->w->st.objects_damaged++;
	if (kept || first == SIZE_MAX)
		return 0;
	if ((r = read_cand(rd, &w->cands[first], &whole, &good, err)) < 0)
		return r;
	return put(rd, &w->cands[first], err);
}

static int do_copies(sweep *w, sb_error *err)
{
	reader rd = {.w = w, .fd = -1, .fd_plan = SIZE_MAX, .z = sb_store__zctx_get(w->s)};
	if (!rd.z)
		return sb_error_errno(err, ENOMEM, "gc");
	w->st.objects_copied = w->st.bytes_copied = 0;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < w->n_singles; i++)
		r = copy_group(&rd, w->singles[i], w->singles[i] + 1, err);
	for (size_t i = 0; r >= 0 && i < w->n_cands; i = group_end(w, i))
		if (group_end(w, i) > i + 1)
			r = copy_group(&rd, i, group_end(w, i), err);
	CLOSE_FD(rd.fd);
	free(rd.buf);
	sb_store__zctx_put(w->s, rd.z);
	return r < 0 ? r : sb_store_flush(w->s, err);
}

static int unlink_synced(int dir_fd, const char *name, sb_error *err)
{
	if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT)
		return sb_error_errno(err, errno, "remove 'packs/%s'", name);
	return 0;
}

/* Indexes first, made durable, then the packs and leftovers. */
static int remove_old(sweep *w, sb_error *err)
{
	int dfd = w->s->packs_fd;
	char fname[SB_PACK_NAME_LEN + 8];
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < w->n; i++) {
			if (w->v[i].fate == KEEP)
				continue;
			snprintf(fname, sizeof(fname), "%s.%s", w->v[i].p->name,
				 pass == 0 ? "idx" : "pack");
			int r = unlink_synced(dfd, fname, err);
			if (r < 0)
				return r;
		}
		for (size_t i = 0; pass == 1 && i < w->n_orphans; i++) {
			int r = unlink_synced(dfd, w->orphans[i], err);
			if (r < 0)
				return r;
		}
		if (fsync(dfd) < 0)
			return sb_error_errno(err, errno, "fsync store directory 'packs'");
	}
	return 0;
}

static void count_after(sweep *w)
{
	sb_sweep_stats *st = &w->st;
	st->packs_after = st->packs_before - w->orphan_packs;
	st->bytes_after = st->bytes_before - st->orphan_bytes;
	for (size_t i = 0; i < w->n; i++) {
		const plan *pl = &w->v[i];
		if (pl->fate == KEEP) {
			st->dead_left += pl->dead;
			st->dead_bytes_left += pl->dead_bytes;
			continue;
		}
		st->objects_dropped += pl->dead;
		st->bytes_dropped += pl->dead_bytes;
		st->packs_after--;
		st->bytes_after -= pl->pack_size + pl->idx_size;
		st->packs_rewritten += pl->fate == REWRITE;
		st->packs_deleted += pl->fate == DELETE;
	}
	/* Without reading: one record per id no kept pack holds. */
	for (size_t i = 0; i < w->n_cands; i = group_end(w, i)) {
		if (w->v[w->cands[i].plan].fate == KEEP)
			continue;
		st->objects_copied++;
		st->bytes_copied += SB_REC_HEADER_LEN + (uint64_t)w->cands[i].e.stored_len;
	}
	/* An estimate, which a sweep that is carried out replaces with the count. */
	if (st->objects_copied) {
		st->packs_after += 1 + st->bytes_copied / w->s->pack_max;
		st->bytes_after +=
		    SB_PACK_HEADER_LEN + st->bytes_copied + st->objects_copied * SB_IDX_ENTRY_LEN;
	}
}

static int check_mode(sb_store *s, sb_error *err)
{
	if ((s->flags & (SB_STORE_WRITE | SB_STORE_EXCLUSIVE)) !=
	    (SB_STORE_WRITE | SB_STORE_EXCLUSIVE))
		return sb_error_set(err, EINVAL,
				    "gc needs the store open for writing, exclusively");
	return 0;
}

int sb_sweep_begin(sb_store *s, sb_sweep **ret, sb_error *err)
{
	int r = check_mode(s, err);
	if (r < 0)
		return r;
	sweep *w = calloc(1, sizeof(*w));
	if (!w)
		return sb_error_errno(err, ENOMEM, "gc");
	w->s = s;
	r = load_plans(w, err);
	if (r < 0) {
		sb_sweep_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void sb_sweep_free(sb_sweep *w)
{
	if (!w)
		return;
	sweep_release(w);
	free(w);
}

int sb_sweep_run(sb_sweep *w, sb_store_live_fn live, void *userdata, bool dry_run,
		 sb_sweep_stats *ret, sb_error *err)
{
	sb_store *s = w->s;
	int r = s->packs_fd >= 0 ? list_files(w, err) : 0;
	if (r >= 0) {
		count_live(w, live, userdata);
		decide(w);
		r = plan_copies(w, live, userdata, err);
	}
	if (r >= 0) {
		w->st.orphans_removed = w->n_orphans;
		count_after(w);
	}
	if (r >= 0 && !dry_run && s->packs_fd >= 0) {
		r = do_copies(w, err);
		if (r >= 0)
			r = remove_old(w, err);
		if (r >= 0) {
			pthread_mutex_lock(&s->lock);
			r = sb_store__reload(s, err);
			pthread_mutex_unlock(&s->lock);
		}
		sweep after = {.s = s};
		if (r >= 0)
			r = list_files(&after, err);
		w->st.packs_after = after.st.packs_before;
		w->st.bytes_after = after.st.bytes_before;
		sweep_release(&after);
	}
	if (r >= 0)
		*ret = w->st;
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * gc's sweep (store.h: sb_store_sweep): which packs to delete, rewrite or
 * keep, the copy of the live records of those rewritten, and the removals,
 * in an order a crash at any point leaves safe: the new packs and their
 * indexes are durable before any old index goes, and an index goes before
 * its pack, so no index ever names a pack that is gone.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "buf.h"
#include "fileio.h"
#include "store-internal.h"

/* A pack is rewritten when at least 1/this of its file is garbage... */
#define SB_GC_GARBAGE_SHARE 8
/*
 * ...or when it is smaller than this and holds any garbage; packs smaller
 * than this are merged when there are two or more (each restore and each
 * run adds one, and every lookup that misses asks each pack's index).
 */
#define SB_GC_SMALL_PACK (32ull << 20)

typedef enum fate { KEEP, REWRITE, DELETE } fate;

typedef struct plan {
	sb_pack *p;
	sb_entry *ents; /* its index, checked whole (sb_pack__load_idx) */
	size_t n_ents;
	uint64_t pack_size, idx_size; /* of the files */
	uint64_t live, dead, live_bytes, dead_bytes;
	fate fate;
} plan;

/* A live record of a pack being rewritten, and where it is. */
typedef struct copy {
	sb_entry e;
	size_t plan; /* index into the plans */
} copy;

typedef struct sweep {
	sb_store *s;
	plan *v;
	size_t n;
	char **orphans; /* packs without an index, and temp files, in packs/ */
	size_t n_orphans, cap_orphans;
	copy *copies;
	size_t n_copies;
	sb_sweep_stats st;
} sweep;

static void sweep_release(sweep *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].ents);
	free(w->v);
	for (size_t i = 0; i < w->n_orphans; i++)
		free(w->orphans[i]);
	free(w->orphans);
	free(w->copies);
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
		uint64_t size = file_size_at(w->s->packs_fd, de->d_name);
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
		plan *pl = &w->v[w->n++];
		*pl = (plan){.p = p, .pack_size = (uint64_t)st.st_size};
		snprintf(fname, sizeof(fname), "%s.idx", p->name);
		pl->idx_size = file_size_at(s->packs_fd, fname);
		char why[128];
		r = sb_pack__load_idx(s->packs_fd, p->name, p->no, &pl->ents, &pl->n_ents, NULL,
				      why, sizeof(why));
		if (r == -ENOMEM)
			return sb_error_errno(err, ENOMEM, "gc");
		if (r < 0)
			return bad_index(err, fname, why);
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
		bool is_small = pl->pack_size < SB_GC_SMALL_PACK;
		if (pl->live == 0)
			pl->fate = DELETE;
		else if (garbage * SB_GC_GARBAGE_SHARE >= pl->pack_size || (is_small && pl->dead))
			pl->fate = REWRITE;
		else if (is_small)
			small++;
	}
	for (size_t i = 0; small >= 2 && i < w->n; i++)
		if (w->v[i].fate == KEEP && w->v[i].pack_size < SB_GC_SMALL_PACK)
			w->v[i].fate = REWRITE;
}

static int copy_cmp_id(const void *a, const void *b)
{
	return sb_entry__cmp(&((const copy *)a)->e, &((const copy *)b)->e);
}

static int copy_cmp_place(const void *a, const void *b)
{
	const copy *x = a, *y = b;
	if (x->plan != y->plan)
		return x->plan < y->plan ? -1 : 1;
	return x->e.offset < y->e.offset ? -1 : x->e.offset > y->e.offset;
}

/*
 * The records to copy: each live id of a rewritten pack once, unless a kept
 * pack holds it too; in pack and offset order, so the reads are sequential
 * and objects written together stay together.
 */
static int plan_copies(sweep *w, sb_store_live_fn live, void *userdata, sb_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].fate == REWRITE)
			n += w->v[i].live;
	w->copies = malloc((n ? n : 1) * sizeof(*w->copies));
	if (!w->copies)
		return sb_error_errno(err, ENOMEM, "gc");
	for (size_t i = 0; i < w->n; i++) {
		plan *pl = &w->v[i];
		for (size_t k = 0; pl->fate == REWRITE && k < pl->n_ents; k++)
			if (live(userdata, &pl->ents[k].id))
				w->copies[w->n_copies++] = (copy){.e = pl->ents[k], .plan = i};
	}
	qsort(w->copies, w->n_copies, sizeof(*w->copies), copy_cmp_id);
	size_t out = 0;
	for (size_t i = 0; i < w->n_copies; i++) {
		const copy *c = &w->copies[i];
		if (out && sb_id_eq(&w->copies[out - 1].e.id, &c->e.id))
			continue;
		bool kept = false;
		for (size_t j = 0; !kept && j < w->n; j++)
			kept = w->v[j].fate == KEEP && bsearch(&c->e, w->v[j].ents, w->v[j].n_ents,
							       sizeof(sb_entry), sb_entry__cmp);
		if (!kept)
			w->copies[out++] = *c;
	}
	w->n_copies = out;
	qsort(w->copies, w->n_copies, sizeof(*w->copies), copy_cmp_place);
	return 0;
}

static int do_copies(sweep *w, sb_error *err)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t cap = 0;
	_cleanup_close_ int fd = -1;
	size_t fd_plan = SIZE_MAX;
	for (size_t i = 0; i < w->n_copies; i++) {
		const copy *c = &w->copies[i];
		const char *name = w->v[c->plan].p->name;
		if (c->plan != fd_plan) {
			char fname[SB_PACK_NAME_LEN + 8];
			snprintf(fname, sizeof(fname), "%s.pack", name);
			CLOSE_FD(fd);
			fd = openat(w->s->packs_fd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0)
				return sb_error_errno(err, errno, "open 'packs/%s'", fname);
			fd_plan = c->plan;
		}
		if (c->e.stored_len > cap) {
			uint8_t *nb = realloc(buf, c->e.stored_len);
			if (!nb)
				return sb_error_errno(err, ENOMEM, "gc");
			buf = nb;
			cap = c->e.stored_len;
		}
		int r = sb_pack__read_stored(fd, name, &c->e, buf, err);
		if (r == -EBADMSG)
			sb_error_prefix(err, "gc removes nothing until 'snapbox verify' passes");
		if (r < 0)
			return r;
		r = sb_store__put_record(w->s, &c->e, buf, err);
		if (r < 0)
			return r;
	}
	return sb_store_flush(w->s, err);
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
	st->packs_after = st->packs_before - st->orphans_removed;
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
	for (size_t i = 0; i < w->n_copies; i++) {
		st->objects_copied++;
		st->bytes_copied += SB_REC_HEADER_LEN + (uint64_t)w->copies[i].e.stored_len;
	}
	/* An estimate, which a sweep that is carried out replaces with the count. */
	if (st->objects_copied) {
		st->packs_after += 1 + st->bytes_copied / SB_PACK_MAX_SIZE;
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

int sb_store_check_indexes(sb_store *s, sb_error *err)
{
	sweep w = {.s = s};
	int r = check_mode(s, err);
	if (r >= 0)
		r = load_plans(&w, err);
	sweep_release(&w);
	return r;
}

int sb_store_sweep(sb_store *s, sb_store_live_fn live, void *userdata, bool dry_run,
		   sb_sweep_stats *ret, sb_error *err)
{
	int r = check_mode(s, err);
	if (r < 0)
		return r;
	sweep w = {.s = s};
	r = load_plans(&w, err);
	if (r >= 0 && s->packs_fd >= 0)
		r = list_files(&w, err);
	if (r >= 0) {
		count_live(&w, live, userdata);
		decide(&w);
		r = plan_copies(&w, live, userdata, err);
	}
	if (r >= 0) {
		w.st.orphans_removed = w.n_orphans;
		count_after(&w);
	}
	if (r >= 0 && !dry_run && s->packs_fd >= 0) {
		r = do_copies(&w, err);
		if (r >= 0)
			r = remove_old(&w, err);
		if (r >= 0) {
			pthread_mutex_lock(&s->lock);
			r = sb_store__reload(s, err);
			pthread_mutex_unlock(&s->lock);
		}
		sweep after = {.s = s};
		if (r >= 0)
			r = list_files(&after, err);
		w.st.packs_after = after.st.packs_before;
		w.st.bytes_after = after.st.bytes_before;
		sweep_release(&after);
	}
	if (r >= 0)
		*ret = w.st;
	sweep_release(&w);
	return r;
}

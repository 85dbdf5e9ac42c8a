/* SPDX-License-Identifier: MIT */
/*
 * The store's read side (store.h): objects found by id through the packs'
 * indexes, read back and checked (decompressed, re-hashed) before use; and
 * iteration over every object. store.c writes.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

/* ---- reading ---- */

static const char *type_name(int type)
{
	switch (type) {
	case SB_OBJ_BLOB:
		return "blob";
	case SB_OBJ_TREE:
		return "tree";
	case SB_OBJ_CHUNKS:
		return "chunk list";
	}
	return "unknown";
}

static int not_found(sb_store *s, const sb_id *id, sb_error *err)
{
	char hex[SB_HEX_LEN + 1];
	sb_id_to_hex(id, hex);
	if (s->n_bad > 0)
		return sb_error_set(
		    err, EBADMSG, "object %s not found, and index 'packs/%s' is unusable (%s)%s",
		    hex, s->bad[0].name, s->bad[0].why, s->n_bad > 1 ? " among others" : "");
	return sb_error_set(err, ENOENT, "object %s not found in the store", hex);
}

static int bad_entry(const sb_id *id, const sb_pack *p, sb_error *err)
{
	char hex[SB_HEX_LEN + 1];
	return sb_error_set(err, EBADMSG,
			    "object %s: its entry in index 'packs/%s.idx' is invalid "
			    "('snapbox verify' checks the whole store)",
			    sb_id_to_hex(id, hex), p->name);
}

/* Closes the fds of foreign packs no get() is reading from. Under s->lock. */
static void close_idle_packs(sb_store *s)
{
	for (size_t i = 0; i < s->n_packs; i++) {
		sb_pack *p = s->packs[i];
		if (!p->own && p->fd >= 0 && p->users == 0) {
			CLOSE_FD(p->fd);
			s->n_open--;
		}
	}
}

/*
 * Opens a foreign pack for reading. A store of thousands of packs (no gc for
 * a long time) must not run the process out of fds: past a bound, idle ones
 * are closed first. Under s->lock.
 */
static int pack_open(sb_store *s, sb_pack *p)
{
	char fname[SB_PACK_NAME_LEN + 8];
	snprintf(fname, sizeof(fname), "%s.pack", p->name);
	if (s->n_open >= SB_STORE_MAX_OPEN_PACKS)
		close_idle_packs(s);
	for (int attempt = 0;; attempt++) {
		p->fd = openat(s->packs_fd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (p->fd >= 0) {
			s->n_open++;
			return 0;
		}
		if ((errno != EMFILE && errno != ENFILE) || attempt > 0)
			return -errno;
		close_idle_packs(s);
	}
}

int sb_store_get(sb_store *s, const sb_id *id, sb_obj_type want, sb_obj_type *ret_type,
		 void **ret_data, size_t *ret_len, sb_error *err)
{
	sb_entry e;
	sb_pack *p = NULL;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->scratch) {
		sb_obj_type t;
		r = sb_scratch__get(s->scratch, id, &t, ret_data, ret_len);
		if (r == 0 && want && t != want) {
			free(*ret_data);
			r = -EBADMSG;
		}
		if (r != -ENOENT) {
			pthread_mutex_unlock(&s->lock);
			if (r < 0)
				return sb_error_errno(err, -r, "an object kept in memory");
			if (ret_type)
				*ret_type = t;
			return 0;
		}
		r = 0;
	}
	if (s->keep_trees && (!want || want == SB_OBJ_TREE) &&
	    sb_objcache_get(&s->trees, id, ret_data, ret_len) == 0) {
		s->stats.cache_hits++;
		pthread_mutex_unlock(&s->lock);
		__atomic_add_fetch(&s->stats.objects_read, 1, __ATOMIC_RELAXED);
		if (ret_type)
			*ret_type = SB_OBJ_TREE;
		return 0;
	}
	for (int attempt = 0;; attempt++) {
		const sb_pack *bad = NULL;
		int found = sb_store__lookup(s, id, &e, &bad);
		if (found > 0) {
			sb_pack *cand = s->packs[e.pack];
			if (cand->own && e.offset >= cand->written) {
				r = sb_store__wbuf_write(s, err);
				if (r < 0)
					break;
			}
			r = cand->fd >= 0 ? 0 : pack_open(s, cand);
			if (r == 0) {
				p = cand;
				p->users++;
				break;
			}
			if (r != -ENOENT || attempt > 0) {
				r = sb_error_errno(err, -r, "open 'packs/%s.pack'", cand->name);
				break;
			}
			/* The pack vanished (gc repacked it): look again. */
		}
		if (attempt > 0) {
			r = found < 0 ? bad_entry(id, bad, err) : not_found(s, id, err);
			break;
		}
		r = sb_store__reload_if_changed(s, err);
		if (r < 0)
			break;
	}
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;

	char hex[SB_HEX_LEN + 1];
	void *data = NULL;
	if (want && e.type != want) {
		r = sb_error_set(err, EBADMSG, "object %s is a %s, expected a %s",
				 sb_id_to_hex(id, hex), type_name(e.type), type_name(want));
	} else {
		sb_zctx *z = sb_store__zctx_get(s);
		if (z)
			r = sb_pack__read_record(p->fd, p->name, &e, z, &data, NULL, err);
		else
			r = sb_error_errno(err, ENOMEM, "decompression context");
		sb_store__zctx_put(s, z);
	}
	pthread_mutex_lock(&s->lock);
	p->users--;
	if (r == 0)
		sb_store__cache_tree(s, &e, data, e.raw_len);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	__atomic_add_fetch(&s->stats.objects_read, 1, __ATOMIC_RELAXED);
	if (ret_type)
		*ret_type = e.type;
	if (ret_len)
		*ret_len = e.raw_len;
	*ret_data = data;
	return 0;
}

bool sb_store_has(sb_store *s, const sb_id *id)
{
	sb_entry e;
	pthread_mutex_lock(&s->lock);
	bool have = sb_store__lookup(s, id, &e, NULL) > 0 ||
		    (s->scratch && sb_scratch__get(s->scratch, id, NULL, NULL, NULL) == 0);
	pthread_mutex_unlock(&s->lock);
	return have;
}

int sb_store_stat(sb_store *s, const sb_id *id, sb_obj_type *ret_type, size_t *ret_len,
		  sb_error *err)
{
	sb_entry e;
	const sb_pack *bad = NULL;
	pthread_mutex_lock(&s->lock);
	int found = sb_store__lookup(s, id, &e, &bad);
	int r = 0;
	sb_obj_type st;
	size_t sl;
	if (found == 0 && s->scratch && sb_scratch__get(s->scratch, id, &st, NULL, &sl) == 0) {
		found = 1;
		e.type = (uint8_t)st;
		e.raw_len = (uint32_t)sl;
	}
	if (found <= 0) {
		r = sb_store__reload_if_changed(s, err);
		if (r == 0)
			found = sb_store__lookup(s, id, &e, &bad);
		if (r == 0 && found <= 0)
			r = found < 0 ? bad_entry(id, bad, err) : not_found(s, id, err);
	}
	if (found > 0) {
		if (ret_type)
			*ret_type = e.type;
		if (ret_len)
			*ret_len = e.raw_len;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- iteration ---- */

int sb_store_foreach(sb_store *s, sb_store_each_fn fn, void *userdata, sb_error *err)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->n_w;
	for (size_t i = 0; i < s->n_search; i++)
		n += s->search[i]->idx.count;
	sb_entry *all = malloc((n ? n : 1) * sizeof(*all));
	sb_bad_idx bad = {{0}, {0}};
	bool have_bad = s->n_bad > 0;
	if (have_bad)
		bad = s->bad[0];
	size_t k = 0;
	for (size_t i = 0; all && i < s->n_search; i++) {
		const sb_pack *p = s->search[i];
		for (uint32_t j = 0; j < p->idx.count; j++) {
			if (sb_idx_map_entry(&p->idx, j, p->no, &all[k])) {
				k++;
			} else if (!have_bad) {
				have_bad = true;
				snprintf(bad.name, sizeof(bad.name), "%s.idx", p->name);
				snprintf(bad.why, sizeof(bad.why), "entry %" PRIu32 " is invalid",
					 j);
			}
		}
	}
	if (all && s->n_w)
		memcpy(all + k, s->w_ents, s->n_w * sizeof(*all));
	k += s->n_w;
	pthread_mutex_unlock(&s->lock);
	if (!all)
		return sb_error_errno(err, ENOMEM, "list store objects");
	_cleanup_free_ sb_entry *list = all;

	qsort(list, k, sizeof(*list), sb_entry__cmp);
	for (size_t i = 0; i < k; i++) {
		if (i > 0 && sb_id_eq(&list[i - 1].id, &list[i].id))
			continue;
		int r = fn(userdata, &list[i].id, (sb_obj_type)list[i].type);
		if (r < 0)
			return r;
	}
	if (have_bad)
		return sb_error_set(err, EBADMSG, "index 'packs/%s' is unusable (%s)", bad.name,
				    bad.why);
	return 0;
}

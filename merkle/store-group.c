/* SPDX-License-Identifier: MIT */
/*
 * Solid groups of small blobs (the format is in store-internal.h).
 *
 * put() copies a small blob into the open group under s->lock, right after
 * the lookup that found it new, so two threads never add one object twice.
 * The put that fills the group takes it: it compresses it outside the lock,
 * then appends one record and indexes the members under the lock, in one
 * step, so a member is always found either here or in the index. Until then
 * lookup() finds members here and get() copies their bytes from memory.
 */
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

struct sb_group {
	uint64_t seq;
	uint8_t *buf; /* members back to back, SB_GROUP_RAW_MAX bytes */
	size_t len;
	sb_entry *m; /* stored_len: offset in buf; offset: seq; pack: SB_PACK_PENDING */
	size_t n, cap;
	sb_idtab idx; /* m by id */
	bool sealing; /* taken by a thread that is writing it */
};

static void group_free(sb_group *g)
{
	if (!g)
		return;
	free(g->buf);
	free(g->m);
	sb_idtab_release(&g->idx);
	free(g);
}

void sb_group__free_all(sb_store *s)
{
	for (size_t i = 0; i < s->n_groups; i++)
		group_free(s->groups[i]);
	free(s->groups);
	s->groups = NULL;
	s->n_groups = s->cap_groups = 0;
}

int sb_group__find(sb_store *s, const sb_id *id, sb_entry *ret)
{
	for (size_t i = 0; i < s->n_groups; i++) {
		sb_group *g = s->groups[i];
		uint32_t k = sb_idtab_find(&g->idx, id, g->m, sizeof(*g->m));
		if (k) {
			*ret = g->m[k - 1];
			return 1;
		}
	}
	return 0;
}

int sb_group__copy(sb_store *s, const sb_entry *e, void **ret_data)
{
	for (size_t i = 0; i < s->n_groups; i++) {
		sb_group *g = s->groups[i];
		if (g->seq != e->offset)
			continue;
		uint8_t *out = malloc((size_t)e->raw_len + 1);
		if (!out)
			return -ENOMEM;
		memcpy(out, g->buf + e->stored_len + SB_MEMBER_HDR_LEN, e->raw_len);
		out[e->raw_len] = 0;
		*ret_data = out;
		return 0;
	}
	return -ENOENT; /* not reached: the caller found it under the same lock */
}

/* The group accepting members, opened when there is none. NULL on ENOMEM. */
static sb_group *open_group(sb_store *s)
{
	for (size_t i = 0; i < s->n_groups; i++)
		if (!s->groups[i]->sealing)
			return s->groups[i];
	if (s->n_groups == s->cap_groups) {
		size_t nc = s->cap_groups ? s->cap_groups * 2 : 4;
		sb_group **ng = realloc(s->groups, nc * sizeof(*ng));
		if (!ng)
			return NULL;
		s->groups = ng;
		s->cap_groups = nc;
	}
	sb_group *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->buf = malloc(SB_GROUP_RAW_MAX);
	if (!g->buf) {
		free(g);
		return NULL;
	}
	sb_idtab_init(&g->idx);
	g->seq = ++s->group_seq;
	s->groups[s->n_groups++] = g;
	return g;
}

int sb_group__add(sb_store *s, const sb_entry *e, const void *data, size_t len, sb_group **ret_full)
{
	sb_group *g = open_group(s);
	if (!g)
		return -ENOMEM;
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 64;
		sb_entry *nm = realloc(g->m, nc * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		g->m = nm;
		g->cap = nc;
	}
	int r = sb_idtab_reserve(&g->idx, g->n, g->m, sizeof(*g->m));
	if (r < 0)
		return r;
	/* target + the largest member + its header fit in SB_GROUP_RAW_MAX */
	uint8_t *p = g->buf + g->len;
	memcpy(p, "sbobj", 5);
	p[5] = e->type;
	for (int i = 0; i < 8; i++)
		p[6 + i] = (uint8_t)((uint64_t)len >> (8 * i));
	memcpy(p + SB_MEMBER_HDR_LEN, data, len);
	g->m[g->n] = (sb_entry){
	    .id = e->id,
	    .offset = g->seq,
	    .raw_len = (uint32_t)len,
	    .stored_len = (uint32_t)g->len,
	    .pack = SB_PACK_PENDING,
	    .type = e->type,
	    .flags = SB_REC_GROUPED,
	};
	sb_idtab_insert(&g->idx, &e->id, g->n++);
	g->len += SB_MEMBER_HDR_LEN + len;
	if (g->len >= SB_GROUP_TARGET) {
		g->sealing = true;
		*ret_full = g;
	}
	return 0;
}

/* Drops g from the list and wakes a flush waiting for it. Under s->lock. */
static void unlist(sb_store *s, sb_group *g)
{
	for (size_t i = 0; i < s->n_groups; i++)
		if (s->groups[i] == g) {
			s->groups[i] = s->groups[--s->n_groups];
			break;
		}
	pthread_cond_broadcast(&s->group_cond);
}

/* Records the first failure to write a group: its members are lost. Under s->lock. */
static void stick(sb_store *s, int r)
{
	if (s->werr)
		return;
	s->werr = r;
	snprintf(s->werr_pack, sizeof(s->werr_pack), "%s", s->cur ? s->cur->name : "(new)");
}

int sb_group__seal(sb_store *s, sb_group *g, sb_error *err)
{
	sb_entry rec = {.type = SB_REC_GROUP};
	sb_zctx *z = sb_store__zctx_get(s);
	int r = z ? sb_store__compress(z, SB_STORE_ZSTD_LEVEL_GROUP, g->buf, g->len, &rec, err)
		  : sb_error_errno(err, ENOMEM, "compression context");

	sb_writeback wb = {-1, 0, 0};
	pthread_mutex_lock(&s->lock);
	if (r >= 0 && s->werr)
		r = sb_store__werr_report(s, err);
	if (r >= 0) {
		r = sb_store__reserve_entries(s, g->n);
		if (r < 0)
			sb_error_errno(err, -r, "store index");
	}
	if (r >= 0)
		r = sb_store__place(s, &rec, (rec.flags & SB_REC_ZSTD) ? z->buf : g->buf, &wb, err);
	if (r >= 0) {
		for (size_t i = 0; i < g->n; i++) {
			g->m[i].offset = rec.offset;
			g->m[i].pack = rec.pack;
			sb_store__add_entry(s, &g->m[i]);
		}
	} else {
		stick(s, r);
	}
	unlist(s, g);
	pthread_mutex_unlock(&s->lock);
	sb_store__writeback_start(&wb);
	sb_store__zctx_put(s, z);
	group_free(g);
	return r < 0 ? r : 0;
}

int sb_group__seal_all(sb_store *s, sb_error *err)
{
	pthread_mutex_lock(&s->lock);
	uint64_t upto = s->group_seq; /* groups opened later hold later puts */
	for (;;) {
		sb_group *open = NULL;
		bool busy = false;
		for (size_t i = 0; i < s->n_groups; i++) {
			sb_group *g = s->groups[i];
			if (g->seq > upto)
				continue;
			if (g->sealing)
				busy = true;
			else
				open = g;
		}
		if (open) {
			open->sealing = true;
			pthread_mutex_unlock(&s->lock);
			int r = sb_group__seal(s, open, err);
			if (r < 0)
				return r;
			pthread_mutex_lock(&s->lock);
		} else if (busy) {
			pthread_cond_wait(&s->group_cond, &s->lock);
		} else {
			break;
		}
	}
	int r = s->werr ? sb_store__werr_report(s, err) : 0;
	pthread_mutex_unlock(&s->lock);
	return r;
}

size_t sb_group__collect(sb_store *s, sb_entry *out)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n_groups; i++) {
		const sb_group *g = s->groups[i];
		if (out)
			memcpy(out + k, g->m, g->n * sizeof(*g->m));
		k += g->n;
	}
	return k;
}

/* SPDX-License-Identifier: MIT */
#include "objcache.h"
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void gen_init(sb_objcache_gen *g)
{
	*g = (sb_objcache_gen){0};
	sb_idtab_init(&g->idx);
}

static void gen_release(sb_objcache_gen *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i].data);
	free(g->v);
	sb_idtab_release(&g->idx);
	*g = (sb_objcache_gen){0};
}

/* The live entry for id (one moved to the young generation has no data left). */
static sb_objcache_entry *gen_find(sb_objcache_gen *g, const sb_id *id)
{
	uint32_t k = sb_idtab_find(&g->idx, id, g->v, sizeof(*g->v));
	return k && g->v[k - 1].data ? &g->v[k - 1] : NULL;
}

/* Takes ownership of data on success. -ENOMEM. */
static int gen_add(sb_objcache_gen *g, const sb_id *id, void *data, size_t len)
{
	sb_objcache_entry *nv = sb_grow(g->v, &g->cap, g->n, sizeof(*nv), 256);
	if (!nv)
		return -ENOMEM;
	g->v = nv;
	int r = sb_idtab_reserve(&g->idx, g->n, g->v, sizeof(*g->v));
	if (r < 0)
		return r;
	g->v[g->n] = (sb_objcache_entry){.id = *id, .data = data, .len = len};
	sb_idtab_insert(&g->idx, id, g->n++);
	g->bytes += len;
	return 0;
}

void sb_objcache_init(sb_objcache *c, size_t max_bytes)
{
	*c = (sb_objcache){.max_bytes = max_bytes};
	gen_init(&c->young);
	gen_init(&c->old);
}

void sb_objcache_release(sb_objcache *c)
{
	gen_release(&c->young);
	gen_release(&c->old);
}

/* Makes room in the young generation for len more bytes by aging it. */
static void age(sb_objcache *c, size_t len)
{
	if (c->young.bytes + len <= c->max_bytes / 2)
		return;
	gen_release(&c->old);
	c->old = c->young;
	gen_init(&c->young);
}

static int insert(sb_objcache *c, const sb_id *id, void *data, size_t len)
{
	age(c, len);
	return gen_add(&c->young, id, data, len);
}

static void *dup_nul(const void *data, size_t len)
{
	char *p = malloc(len + 1);
	if (p) {
		memcpy(p, data, len);
		p[len] = 0;
	}
	return p;
}

int sb_objcache_get(sb_objcache *c, const sb_id *id, void **ret_data, size_t *ret_len)
{
	sb_objcache_entry *e = gen_find(&c->young, id);
	if (!e) {
		sb_objcache_entry *o = gen_find(&c->old, id);
		if (!o)
			return -ENOENT;
		/*
		 * Still in use: its bytes move to the young generation, before
		 * aging may free the old one; the old entry is left empty.
		 */
		void *data = TAKE_PTR(o->data);
		size_t len = o->len;
		c->old.bytes -= len;
		if (insert(c, id, data, len) < 0) {
			free(data);
			return -ENOMEM;
		}
		e = &c->young.v[c->young.n - 1];
	}
	void *out = dup_nul(e->data, e->len);
	if (!out)
		return -ENOMEM;
	*ret_data = out;
	if (ret_len)
		*ret_len = e->len;
	return 0;
}

void sb_objcache_put(sb_objcache *c, const sb_id *id, const void *data, size_t len)
{
	if (len > c->max_bytes / 4 || gen_find(&c->young, id) || gen_find(&c->old, id))
		return;
	void *copy = dup_nul(data, len);
	if (copy && insert(c, id, copy, len) < 0)
		free(copy);
}

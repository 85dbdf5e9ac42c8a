/* SPDX-License-Identifier: MIT */
/*
 * The store's scratch layer (store.h, sb_store_scratch_begin): objects put
 * while it is on live in memory only, found by id through an open-addressing
 * table. Ids are SHA-256 outputs, so their first bytes are already uniform:
 * no keyed hash is needed, and an adversary choosing contents cannot aim at
 * a slot without breaking SHA-256.
 */
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

typedef struct scratch_obj {
	sb_id id;
	sb_obj_type type;
	size_t len;
	void *data;
} scratch_obj;

struct sb_scratch {
	scratch_obj *objs;
	size_t n, cap;
	uint32_t *slots; /* objs index + 1, 0 = empty */
	size_t n_slots;	 /* a power of two, at least twice n */
};

sb_scratch *sb_scratch__new(void)
{
	return calloc(1, sizeof(sb_scratch));
}

void sb_scratch__free(sb_scratch *sc)
{
	if (!sc)
		return;
	for (size_t i = 0; i < sc->n; i++)
		free(sc->objs[i].data);
	free(sc->objs);
	free(sc->slots);
	free(sc);
}

static size_t slot_of(const sb_scratch *sc, const sb_id *id)
{
	uint64_t h;
	memcpy(&h, id->b, sizeof(h));
	return (size_t)h & (sc->n_slots - 1);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t probe(const sb_scratch *sc, const sb_id *id)
{
	size_t i = slot_of(sc, id);
	while (sc->slots[i] && !sb_id_eq(&sc->objs[sc->slots[i] - 1].id, id))
		i = (i + 1) & (sc->n_slots - 1);
	return i;
}

static const scratch_obj *find(const sb_scratch *sc, const sb_id *id)
{
	if (sc->n == 0)
		return NULL;
	uint32_t k = sc->slots[probe(sc, id)];
	return k ? &sc->objs[k - 1] : NULL;
}

static int grow(sb_scratch *sc)
{
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		scratch_obj *v = realloc(sc->objs, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		sc->objs = v;
		sc->cap = cap;
	}
	if ((sc->n + 1) * 2 <= sc->n_slots)
		return 0;
	size_t n_slots = sc->n_slots ? sc->n_slots * 2 : 128;
	uint32_t *slots = calloc(n_slots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	free(sc->slots);
	sc->slots = slots;
	sc->n_slots = n_slots;
	for (size_t k = 0; k < sc->n; k++)
		sc->slots[probe(sc, &sc->objs[k].id)] = (uint32_t)(k + 1);
	return 0;
}

int sb_scratch__put(sb_scratch *sc, sb_obj_type type, const sb_id *id, const void *data, size_t len)
{
	if (find(sc, id))
		return 0;
	if (sc->n >= UINT32_MAX - 1 || grow(sc) < 0)
		return -ENOMEM;
	void *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	sc->objs[sc->n] = (scratch_obj){*id, type, len, copy};
	sc->slots[probe(sc, id)] = (uint32_t)(sc->n + 1);
	sc->n++;
	return 0;
}

int sb_scratch__get(const sb_scratch *sc, const sb_id *id, sb_obj_type *ret_type, void **ret_data,
		    size_t *ret_len)
{
	const scratch_obj *o = find(sc, id);
	if (!o)
		return -ENOENT;
	if (ret_data) {
		void *copy = malloc(o->len ? o->len : 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, o->data, o->len);
		*ret_data = copy;
	}
	if (ret_type)
		*ret_type = o->type;
	if (ret_len)
		*ret_len = o->len;
	return 0;
}

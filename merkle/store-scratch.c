/* SPDX-License-Identifier: MIT */
/*
 * The store's scratch layer (store.h, sb_store_scratch_begin): objects put
 * while it is on live in memory only, found by id (idtab.h).
 */
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"
#include "buf.h"

typedef struct scratch_obj {
	sb_id id;
	sb_obj_type type;
	size_t len;
	void *data;
} scratch_obj;

struct sb_scratch {
	scratch_obj *objs;
	size_t n, cap;
	sb_idtab idx; /* objs by id */
};

sb_scratch *sb_scratch__new(void)
{
	sb_scratch *sc = calloc(1, sizeof(sb_scratch));
	if (sc)
		sb_idtab_init(&sc->idx);
	return sc;
}

void sb_scratch__free(sb_scratch *sc)
{
	if (!sc)
		return;
	for (size_t i = 0; i < sc->n; i++)
		free(sc->objs[i].data);
	free(sc->objs);
	sb_idtab_release(&sc->idx);
	free(sc);
}

static const scratch_obj *find(const sb_scratch *sc, const sb_id *id)
{
	uint32_t k = sb_idtab_find(&sc->idx, id, sc->objs, sizeof(*sc->objs));
	return k ? &sc->objs[k - 1] : NULL;
}

static int grow(sb_scratch *sc)
{
	scratch_obj *v = sb_grow(sc->objs, &sc->cap, sc->n, sizeof(*v), 64);
	if (!v)
		return -ENOMEM;
	sc->objs = v;
	return sb_idtab_reserve(&sc->idx, sc->n, sc->objs, sizeof(*sc->objs));
}

int sb_scratch__put(sb_scratch *sc, sb_obj_type type, const sb_id *id, const void *data, size_t len)
{
	if (find(sc, id))
		return 0;
	if (grow(sc) < 0)
		return -ENOMEM;
	void *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	sc->objs[sc->n] = (scratch_obj){*id, type, len, copy};
	sb_idtab_insert(&sc->idx, id, sc->n++);
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

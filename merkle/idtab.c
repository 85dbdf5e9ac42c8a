/* SPDX-License-Identifier: MIT */
#include "idtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void sb_idtab_init(sb_idtab *t)
{
	*t = (sb_idtab){0};
	if (getrandom(&t->key, sizeof(t->key), GRND_NONBLOCK) != sizeof(t->key))
		t->key = (uint64_t)(uintptr_t)t ^ (uint64_t)getpid() << 32;
	t->key |= 1;
}

void sb_idtab_release(sb_idtab *t)
{
	free(t->slots);
	t->slots = NULL;
	t->size = 0;
}

static size_t slot_of(const sb_idtab *t, const sb_id *id)
{
	uint64_t h;
	memcpy(&h, id->b, sizeof(h));
	return (size_t)((h * t->key) >> (64 - __builtin_ctzll(t->size)));
}

static const sb_id *id_at(const void *base, size_t stride, uint32_t v)
{
	return (const sb_id *)((const char *)base + (size_t)(v - 1) * stride);
}

uint32_t sb_idtab_find(const sb_idtab *t, const sb_id *id, const void *base, size_t stride)
{
	if (!t->size)
		return 0;
	for (size_t i = slot_of(t, id);; i = (i + 1) & (t->size - 1)) {
		uint32_t v = t->slots[i];
		if (!v || sb_id_eq(id_at(base, stride, v), id))
			return v;
	}
}

void sb_idtab_insert(sb_idtab *t, const sb_id *id, size_t i)
{
	size_t k = slot_of(t, id);
	while (t->slots[k])
		k = (k + 1) & (t->size - 1);
	t->slots[k] = (uint32_t)(i + 1);
}

int sb_idtab_reserve(sb_idtab *t, size_t n, const void *base, size_t stride)
{
	if (n + 1 >= UINT32_MAX)
		return -EOVERFLOW;
	if ((n + 1) * 2 <= t->size)
		return 0;
	sb_idtab grown = {.size = t->size ? t->size * 2 : 128, .key = t->key};
	grown.slots = calloc(grown.size, sizeof(*grown.slots));
	if (!grown.slots)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		sb_idtab_insert(&grown, id_at(base, stride, (uint32_t)(i + 1)), i);
	free(t->slots);
	*t = grown;
	return 0;
}

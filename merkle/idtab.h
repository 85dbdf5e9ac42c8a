/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An index by object id over an array the caller owns: open addressing with
 * linear probing, slots holding element index + 1 (0 = empty). Each element
 * starts with its sb_id; the table reads ids from the array (base, stride)
 * instead of copying them.
 *
 * Ids are SHA-256 of content a hostile workspace controls: grinding a few
 * hundred thousand hashes per file would pile ids into one probe run of a
 * table indexed by fixed bits. Multiply-shift with a per-table random odd key
 * picks the bits unpredictably.
 *
 *   sb_idtab t;
 *   sb_idtab_init(&t);
 *   sb_idtab_reserve(&t, n, v, sizeof(*v));   before v[n] is added
 *   sb_idtab_insert(&t, &v[n].id, n);
 *   uint32_t k = sb_idtab_find(&t, id, v, sizeof(*v));   v[k - 1], or 0
 *   sb_idtab_release(&t);
 */

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

typedef struct sb_idtab {
	uint32_t *slots;
	size_t size;  /* a power of two, more than twice the elements; 0 before the first */
	uint64_t key; /* odd, random */
} sb_idtab;

void sb_idtab_init(sb_idtab *t);
void sb_idtab_release(sb_idtab *t);

/* Index + 1 of the element with id among those inserted from base, or 0. */
uint32_t sb_idtab_find(const sb_idtab *t, const sb_id *id, const void *base, size_t stride);

/*
 * Room for one more than the n elements at base, rehashing them when the
 * table grows. -ENOMEM; -EOVERFLOW past UINT32_MAX - 1 elements.
 */
int sb_idtab_reserve(sb_idtab *t, size_t n, const void *base, size_t stride);

/* Adds element index i (not present yet; reserved for). */
void sb_idtab_insert(sb_idtab *t, const sb_id *id, size_t i);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A bounded in-memory cache of object bytes by id, for objects read again and
 * again within one command: a restore diffs the tree it just saved against
 * the target, then checks the target's trees once more. Only bytes already
 * verified go in (put() hashed them; get() re-hashed them), so a hit is as
 * trustworthy as a read.
 *
 * Two generations: entries go into the young one; when it holds more than
 * half the budget it becomes the old one and the previous old one is freed.
 * A zeroed sb_objcache may be released without init.
 * A hit in the old generation moves the entry back to the young one. So the
 * cache holds at most max_bytes of payload and a working set that is still
 * in use survives, with no per-entry bookkeeping. Not thread-safe: the store
 * calls it under its lock.
 *
 *   sb_objcache c;
 *   sb_objcache_init(&c, 8 << 20);
 *   sb_objcache_put(&c, &id, data, len);
 *   void *copy; size_t len;
 *   if (sb_objcache_get(&c, &id, &copy, &len) == 0) ... free(copy);
 *   sb_objcache_release(&c);
 */

#include <stddef.h>

#include "hash.h"
#include "idtab.h"

typedef struct sb_objcache_entry {
	sb_id id; /* first: the id table reads it in place */
	void *data;
	size_t len;
} sb_objcache_entry;

typedef struct sb_objcache_gen {
	sb_objcache_entry *v;
	size_t n, cap;
	size_t bytes;
	sb_idtab idx;
} sb_objcache_gen;

typedef struct sb_objcache {
	sb_objcache_gen young, old;
	size_t max_bytes;
} sb_objcache;

void sb_objcache_init(sb_objcache *c, size_t max_bytes);
void sb_objcache_release(sb_objcache *c);

/*
 * A malloc'd copy of the bytes cached for id, with a NUL after them (as
 * sb_store_get gives; ret_len may be NULL). 0 on a hit; -ENOENT on a miss;
 * -ENOMEM.
 */
int sb_objcache_get(sb_objcache *c, const sb_id *id, void **ret_data, size_t *ret_len);

/*
 * Keeps a copy of data under id (nothing when it is there already or larger
 * than a quarter of the budget). Best effort: a failed allocation caches
 * nothing.
 */
void sb_objcache_put(sb_objcache *c, const sb_id *id, const void *data, size_t len);

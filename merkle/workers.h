/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A parallel for-loop over independent items, for work whose items are all
 * known up front (staging an upper layer's files): fn(ctx, worker, i, err)
 * runs once for each i in [0, n), on up to `threads` threads of which the
 * caller's is one. Items are handed out one at a time in index order, so a
 * slow item never holds back the rest, and each worker sees its items in
 * increasing order.
 *
 *   static int hash_one(void *ctx, unsigned worker, size_t i, sb_error *err);
 *   int t = sb_workers_count(0);       per-worker state: an array of t
 *   r = sb_workers_for(n, t, hash_one, &ctx, err);
 *
 * fn is called concurrently for different i and must only write state of
 * its own item, of its worker (worker < threads: one thread's at a time), or
 * use atomics. The first failure stops the handing out of
 * items (those already running finish) and is returned with its message in
 * err. A thread that cannot be started is not an error: the others, and at
 * worst the caller alone, do its share.
 */

#include <stddef.h>

#include "error.h"

typedef int (*sb_workers_fn)(void *ctx, unsigned worker, size_t i, sb_error *err);

/* Threads to use: requested when > 0, else the CPUs this process may run on; 1..64. */
int sb_workers_count(int requested);

/* threads: 0 for sb_workers_count(0). Returns 0 or the first failure. */
int sb_workers_for(size_t n, int threads, sb_workers_fn fn, void *ctx, sb_error *err);

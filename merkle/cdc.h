/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Content-defined chunking, FastCDC-style: a gear rolling hash
 * (h = (h << 1) + gear[byte]) with normalized chunking. No cut before
 * SB_CDC_MIN bytes (those bytes are not even hashed); up to SB_CDC_AVG a
 * strict mask (22 bits) makes cuts rare, after it a loose one (18 bits) makes
 * them likely; a chunk never exceeds SB_CDC_MAX. Cut points depend only on
 * the bytes of the chunk itself, so an insertion shifts at most the chunks
 * around it, and the sizes cluster near SB_CDC_AVG.
 *
 * The gear table is generated in code from a fixed seed: chunk boundaries,
 * and so content ids, are stable across builds and machines. Changing any of
 * this changes the ids of every large file.
 *
 * Streaming: feed consecutive pieces of a file; each call consumes bytes up
 * to the next cut point (inclusive) or the whole piece.
 *
 *   sb_cdc c;
 *   sb_cdc_init(&c);
 *   while (have data p, n) {
 *           bool cut;
 *           size_t used = sb_cdc_feed(&c, p, n, &cut);
 *           ... the current chunk grows by p[0..used); if cut, it ends here
 *           p += used; n -= used;
 *   }
 *   ... at EOF a non-empty current chunk is the last one
 *
 * No allocation, no errors; the state is a few words and may be copied.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_CDC_MIN (256u << 10)
#define SB_CDC_AVG (1u << 20)
#define SB_CDC_MAX (4u << 20)

typedef struct sb_cdc {
	uint64_t hash;
	size_t pos; /* bytes of the current chunk seen so far */
} sb_cdc;

void sb_cdc_init(sb_cdc *c);

/*
 * Consumes data[0..ret) into the current chunk. *ret_cut is true when the
 * chunk ends after those bytes (the state is then ready for the next chunk);
 * otherwise ret == len.
 */
size_t sb_cdc_feed(sb_cdc *c, const void *data, size_t len, bool *ret_cut);

/* Length of the first chunk of data[0..len) when data is the whole rest of a file. */
size_t sb_cdc_cut(const void *data, size_t len);

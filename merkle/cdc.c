/* SPDX-License-Identifier: MIT */
#include <pthread.h>

#include "cdc.h"
#include "macro.h"

/* log2(SB_CDC_AVG) + 2 and - 2: FastCDC's normalization level 2. */
#define MASK_S_BITS 22
#define MASK_L_BITS 18

static uint64_t gear[256];
static uint64_t mask_s, mask_l;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* splitmix64: a fixed, well-mixed sequence; the seed is part of the format. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Mask bits sit in the high half, where each bit of the gear hash depends on
 * the most recent ~64 bytes, and every other bit, so that a near miss at one
 * position does not make a hit at the next one likely.
 */
static uint64_t spread_mask(int bits)
{
	uint64_t m = 0;
	for (int i = 0; i < bits; i++)
		m |= 1ull << (63 - 2 * i);
	return m;
}

static void init_tables(void)
{
	uint64_t state = 0x736e6170626f7863ull; /* "snapboxc" */
	for (int i = 0; i < 256; i++)
		gear[i] = splitmix64(&state);
	mask_s = spread_mask(MASK_S_BITS);
	mask_l = spread_mask(MASK_L_BITS);
}

/*
 * Rolls p[i..end) into *hp. Returns the first position after whose byte
 * (h & m) == 0, or end with *hp holding the hash so far. Four bytes a round
 * with one branch for all four: the tests, not the hash, limit a bytewise
 * loop. The cut points are exactly those of the bytewise loop.
 */
static size_t roll(const uint8_t *p, size_t i, size_t end, uint64_t m, uint64_t *hp)
{
	uint64_t h = *hp;
	for (; i + 4 <= end; i += 4) {
		uint64_t h1 = (h << 1) + gear[p[i]];
		uint64_t h2 = (h1 << 1) + gear[p[i + 1]];
		uint64_t h3 = (h2 << 1) + gear[p[i + 2]];
		uint64_t h4 = (h3 << 1) + gear[p[i + 3]];
		if (__builtin_expect(!((h1 & m) && (h2 & m) && (h3 & m) && (h4 & m)), 0))
			return !(h1 & m) ? i : !(h2 & m) ? i + 1 : !(h3 & m) ? i + 2 : i + 3;
		h = h4;
	}
	for (; i < end; i++) {
		h = (h << 1) + gear[p[i]];
		if (!(h & m))
			return i;
	}
	*hp = h;
	return end;
}

void sb_cdc_init(sb_cdc *c)
{
	pthread_once(&once, init_tables);
	c->hash = 0;
	c->pos = 0;
}

size_t sb_cdc_feed(sb_cdc *c, const void *data, size_t len, bool *ret_cut)
{
	const uint8_t *p = data;
	size_t off = c->pos; /* chunk position of p[0] */
	uint64_t h = c->hash;
	const uint64_t ms = mask_s, ml = mask_l;

	*ret_cut = false;
	size_t i = off < SB_CDC_MIN ? SB_CDC_MIN - off : 0;
	if (i >= len) {
		c->pos = off + len;
		return len;
	}
	size_t end_s = off < SB_CDC_AVG ? MIN(len, SB_CDC_AVG - off) : i;
	size_t end_l = MIN(len, SB_CDC_MAX - off);

	if (i < end_s) {
		i = roll(p, i, end_s, ms, &h);
		if (i < end_s)
			goto cut;
	}
	if (i < end_l) {
		i = roll(p, i, end_l, ml, &h);
		if (i < end_l)
			goto cut;
	}
	if (off + end_l == SB_CDC_MAX) {
		i = end_l - 1; /* forced cut: the chunk is SB_CDC_MAX long */
		goto cut;
	}
	c->hash = h;
	c->pos = off + len;
	return len;

cut:
	c->hash = 0;
	c->pos = 0;
	*ret_cut = true;
	return i + 1;
}

size_t sb_cdc_cut(const void *data, size_t len)
{
	sb_cdc c;
	bool cut;
	sb_cdc_init(&c);
	size_t n = sb_cdc_feed(&c, data, len, &cut);
	return cut ? n : len;
}

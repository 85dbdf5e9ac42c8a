/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A growable byte buffer. Embedded: sb_buf_init / sb_buf_release.
 *
 *   sb_buf b = SB_BUF_INIT;
 *   sb_buf_append(&b, p, n); sb_buf_printf(&b, "%d", x);
 *   use b.data, b.len (b.data is NUL-terminated after any append)
 *   sb_buf_release(&b);
 *
 * Appends return 0 or -ENOMEM; on failure the buffer keeps its old contents.
 */

#include <stddef.h>
#include <stdint.h>
#include "macro.h"

typedef struct sb_buf {
	char *data;
	size_t len;
	size_t cap;
} sb_buf;

#define SB_BUF_INIT        \
	{                  \
		NULL, 0, 0 \
	}

void sb_buf_init(sb_buf *b);
void sb_buf_release(sb_buf *b);
int sb_buf_reserve(sb_buf *b, size_t extra);
int sb_buf_append(sb_buf *b, const void *data, size_t len);
int sb_buf_putc(sb_buf *b, char c);
int sb_buf_puts(sb_buf *b, const char *s);
int sb_buf_printf(sb_buf *b, const char *fmt, ...) _printf_(2, 3);
int sb_buf_put_u8(sb_buf *b, uint8_t v);
int sb_buf_put_le16(sb_buf *b, uint16_t v);
int sb_buf_put_le32(sb_buf *b, uint32_t v);
int sb_buf_put_le64(sb_buf *b, uint64_t v);

/*
 * Room for element n of a growable array of elem-byte elements at v with
 * *cap slots: v itself while n < *cap, else v reallocated to double the
 * slots (min at first) with *cap updated. NULL on ENOMEM, when v and *cap
 * are left as they were.
 *
 *   item *nv = sb_grow(a->v, &a->cap, a->n, sizeof(*nv), 64);
 *   if (!nv)
 *           return -ENOMEM;
 *   a->v = nv;
 *   a->v[a->n++] = x;
 */
void *sb_grow(void *v, size_t *cap, size_t n, size_t elem, size_t min);
/* Hand the storage to the caller (NUL-terminated, may be NULL if empty). */
char *sb_buf_steal(sb_buf *b, size_t *ret_len);
void sb_buf_truncate(sb_buf *b, size_t len);

/* Little-endian decoding helpers for parsers: no alignment assumptions. */
static inline uint16_t sb_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t sb_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t sb_le64(const void *p)
{
	return (uint64_t)sb_le32(p) | (uint64_t)sb_le32((const uint8_t *)p + 4) << 32;
}

/* And encoding: v as n little-endian bytes at p. */
static inline void sb_put_le(void *p, uint64_t v, int n)
{
	uint8_t *b = p;
	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}
static inline void sb_put_le16(void *p, uint16_t v)
{
	sb_put_le(p, v, 2);
}
static inline void sb_put_le32(void *p, uint32_t v)
{
	sb_put_le(p, v, 4);
}
static inline void sb_put_le64(void *p, uint64_t v)
{
	sb_put_le(p, v, 8);
}

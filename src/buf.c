/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

void sb_buf_init(sb_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void sb_buf_release(sb_buf *b)
{
	free(b->data);
	sb_buf_init(b);
}

int sb_buf_reserve(sb_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void *sb_grow(void *v, size_t *cap, size_t n, size_t elem, size_t min)
{
	if (n < *cap)
		return v;
	size_t nc = *cap ? *cap : min;
	while (nc <= n) {
		if (nc > SIZE_MAX / 2)
			return NULL;
		nc *= 2;
	}
	if (nc > SIZE_MAX / elem)
		return NULL;
	void *p = realloc(v, nc * elem);
	if (p)
		*cap = nc;
	return p;
}

int sb_buf_append(sb_buf *b, const void *data, size_t len)
{
	int r = sb_buf_reserve(b, len);
	if (r < 0)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
	return 0;
}

int sb_buf_putc(sb_buf *b, char c)
{
	return sb_buf_append(b, &c, 1);
}

int sb_buf_puts(sb_buf *b, const char *s)
{
	return sb_buf_append(b, s, strlen(s));
}

int sb_buf_printf(sb_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	int r = sb_buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int sb_buf_put_u8(sb_buf *b, uint8_t v)
{
	return sb_buf_append(b, &v, 1);
}

int sb_buf_put_le16(sb_buf *b, uint16_t v)
{
	uint8_t p[2];
	sb_put_le16(p, v);
	return sb_buf_append(b, p, 2);
}

int sb_buf_put_le32(sb_buf *b, uint32_t v)
{
	uint8_t p[4];
	sb_put_le32(p, v);
	return sb_buf_append(b, p, 4);
}

int sb_buf_put_le64(sb_buf *b, uint64_t v)
{
	uint8_t p[8];
	sb_put_le64(p, v);
	return sb_buf_append(b, p, 8);
}

char *sb_buf_steal(sb_buf *b, size_t *ret_len)
{
	char *p = b->data;
	if (ret_len)
		*ret_len = b->len;
	sb_buf_init(b);
	return p;
}

void sb_buf_truncate(sb_buf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->data[len] = 0;
	}
}

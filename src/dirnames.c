/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dirnames.h"
#include "macro.h"

#define GETDENTS_BUF (64 << 10)

/* Records sort by the name after their type byte. */
static int name_cmp(const void *a, const void *b, void *arg)
{
	const char *base = arg;
	return strcmp(base + *(const size_t *)a + 1, base + *(const size_t *)b + 1);
}

int sb_dirnames_read(int fd, sb_dirnames *ret)
{
	_cleanup_free_ char *buf = malloc(GETDENTS_BUF);
	if (!buf)
		return -ENOMEM;
	sb_buf names = SB_BUF_INIT;
	size_t *off = NULL, n = 0, cap = 0;
	int r = 0;
	for (;;) {
		ssize_t got = getdents64(fd, buf, GETDENTS_BUF);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			break;
		}
		if (got == 0)
			break;
		for (ssize_t pos = 0; r >= 0 && pos < got;) {
			struct dirent64 *de = (struct dirent64 *)(buf + pos);
			pos += de->d_reclen;
			const char *nm = de->d_name;
			if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
				continue;
			size_t *o = sb_grow(off, &cap, n, sizeof(*o), 64);
			if (!o) {
				r = -ENOMEM;
				break;
			}
			off = o;
			off[n++] = names.len;
			r = sb_buf_putc(&names, (char)de->d_type);
			if (r >= 0)
				r = sb_buf_append(&names, nm, strlen(nm) + 1);
		}
		if (r < 0)
			break;
	}
	if (r < 0) {
		sb_buf_release(&names);
		free(off);
		return r;
	}
	if (n > 1)
		qsort_r(off, n, sizeof(*off), name_cmp, names.data);
	*ret = (sb_dirnames){.data = names.data, .off = off, .n = n};
	return 0;
}

void sb_dirnames_release(sb_dirnames *d)
{
	free(d->data);
	free(d->off);
	*d = (sb_dirnames){0};
}

size_t sb_dirnames_packed_size(const sb_dirnames *d)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++)
		n += 1 + strlen(sb_dirnames_name(d, i)) + 1;
	return n;
}

void sb_dirnames_pack(const sb_dirnames *d, char *out)
{
	for (size_t i = 0; i < d->n; i++) {
		const char *rec = d->data + d->off[i];
		size_t len = 1 + strlen(rec + 1) + 1;
		memcpy(out, rec, len);
		out += len;
	}
}

/* The length of the record at p (at most avail bytes) when it is a valid one, else 0. */
static size_t packed_record(const char *p, size_t avail, const char *prev)
{
	if (avail < 3)
		return 0; /* type, at least one name byte, NUL */
	const char *nm = p + 1;
	const char *nul = memchr(nm, 0, avail - 1);
	if (!nul || nul == nm || memchr(nm, '/', (size_t)(nul - nm)))
		return 0;
	if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
		return 0;
	if (prev && strcmp(prev, nm) >= 0)
		return 0;
	return (size_t)(nul - p) + 1;
}

int sb_dirnames_unpack(const char *blob, size_t len, sb_dirnames *ret)
{
	size_t n = 0;
	const char *prev = NULL;
	for (size_t at = 0; at < len; n++) {
		size_t rl = packed_record(blob + at, len - at, prev);
		if (!rl)
			return -EBADMSG;
		prev = blob + at + 1;
		at += rl;
	}
	_cleanup_free_ char *data = malloc(len ? len : 1);
	_cleanup_free_ size_t *off = malloc((n ? n : 1) * sizeof(*off));
	if (!data || !off)
		return -ENOMEM;
	memcpy(data, blob, len);
	for (size_t at = 0, i = 0; i < n; i++) {
		off[i] = at;
		at += 1 + strlen(data + at + 1) + 1;
	}
	*ret = (sb_dirnames){.data = TAKE_PTR(data), .off = TAKE_PTR(off), .n = n};
	return 0;
}

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
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				size_t *o = reallocarray(off, cap, sizeof(*o));
				if (!o) {
					r = -ENOMEM;
					break;
				}
				off = o;
			}
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

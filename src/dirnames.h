/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every name in a directory, read whole with getdents64 and sorted by bytes
 * (the order trees keep), "." and ".." left out:
 *
 *   sb_dirnames d;
 *   r = sb_dirnames_read(fd, &d);        -errno of getdents64, or -ENOMEM
 *   for (size_t i = 0; i < d.n; i++)
 *           use sb_dirnames_name(&d, i), sb_dirnames_type(&d, i)
 *   sb_dirnames_release(&d);
 *
 * The type is getdents64's d_type (DT_UNKNOWN on filesystems that do not
 * fill it): a hint to be confirmed by a stat, never trusted alone. fd is
 * read from its current position (a fresh open reads the whole directory).
 */

#include <stddef.h>

typedef struct sb_dirnames {
	char *data;  /* records: d_type:u8, then the name and its NUL */
	size_t *off; /* of each record in data, in name order */
	size_t n;
} sb_dirnames;

int sb_dirnames_read(int fd, sb_dirnames *ret);
void sb_dirnames_release(sb_dirnames *d);

static inline const char *sb_dirnames_name(const sb_dirnames *d, size_t i)
{
	return d->data + d->off[i] + 1;
}

static inline unsigned char sb_dirnames_type(const sb_dirnames *d, size_t i)
{
	return (unsigned char)d->data[d->off[i]];
}

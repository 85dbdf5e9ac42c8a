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
 *
 * A listing can be kept as one blob and read back later (the stat cache
 * keeps directories' listings so):
 *
 *   char *blob = malloc(sb_dirnames_packed_size(&d));
 *   sb_dirnames_pack(&d, blob);              d_type, name, NUL; in name order
 *   r = sb_dirnames_unpack(blob, len, &d2);  -EBADMSG, -ENOMEM
 */

#include <stddef.h>

typedef struct sb_dirnames {
	char *data;  /* records: d_type:u8, then the name and its NUL */
	size_t *off; /* of each record in data, in name order */
	size_t n;
} sb_dirnames;

int sb_dirnames_read(int fd, sb_dirnames *ret);
void sb_dirnames_release(sb_dirnames *d);

size_t sb_dirnames_packed_size(const sb_dirnames *d);
void sb_dirnames_pack(const sb_dirnames *d, char *out);
/*
 * A copy of what sb_dirnames_pack wrote. -EBADMSG when blob is not such a
 * listing: a record unterminated, a name empty, ".", ".." or holding '/',
 * names not in strictly ascending byte order.
 */
int sb_dirnames_unpack(const char *blob, size_t len, sb_dirnames *ret);

static inline const char *sb_dirnames_name(const sb_dirnames *d, size_t i)
{
	return d->data + d->off[i] + 1;
}

static inline unsigned char sb_dirnames_type(const sb_dirnames *d, size_t i)
{
	return (unsigned char)d->data[d->off[i]];
}

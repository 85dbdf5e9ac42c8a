/* SPDX-License-Identifier: MIT */
/*
 * What a restore's check re-hashed, and its entry into the stat cache
 * afterwards (restore.h: sb_restore_record). The check runs right after the
 * writes, while the coarse clock stamps come from may still be at or before
 * the files' timestamps: a file the check read within the clock tick of its
 * last change is racily clean, and its read cannot make its record
 * (statcache.h). Reading such a file once more after the stamp costs less
 * than sleeping until the clock has passed the writes before the check; the
 * others (most: the check takes a few ticks, and the writes before it more)
 * are recorded as the check read them.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "content.h"
#include "fileio.h"
#include "restore-internal.h"
#include "safefs.h"

typedef struct rehash {
	size_t off, len; /* of its path in paths */
	sb_statcache_key key;
	int64_t read_ns;
	sb_id id;
} rehash;

struct sb_restore_rehashed {
	sb_buf paths;
	rehash *v;
	size_t n, cap;
};

int sb_restore__rehashed_new(sb_restore_rehashed **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

void sb_restore_rehashed_free(sb_restore_rehashed *r)
{
	if (!r)
		return;
	sb_buf_release(&r->paths);
	free(r->v);
	free(r);
}

int sb_restore__rehashed_add(sb_restore_rehashed *r, const char *path, size_t len,
			     const struct stat *st, const sb_id *id, int64_t read_ns)
{
	rehash *v = sb_grow(r->v, &r->cap, r->n, sizeof(*v), 64);
	if (!v)
		return -ENOMEM;
	r->v = v;
	size_t off = r->paths.len;
	int e = sb_buf_append(&r->paths, path, len);
	if (e >= 0)
		e = sb_buf_putc(&r->paths, '\0');
	if (e < 0)
		return e;
	rehash *x = &r->v[r->n++];
	*x = (rehash){.off = off, .len = len, .read_ns = read_ns, .id = *id};
	sb_statcache_key_from_stat(st, &x->key);
	return 0;
}

/*
 * Records path as the check read it, or when that read was racily clean,
 * reads it again as the scanner would; 1 when recorded, 0 when not (gone,
 * replaced, changing, other content: the next scan hashes it), -ENOMEM.
 */
static int record_one(int root_fd, const char *path, const rehash *x, sb_statcache *cache)
{
	if (!sb_statcache_key_racy(&x->key, x->read_ns)) {
		int r = sb_statcache_record(cache, path, x->len, &x->key, &x->id);
		return r < 0 ? r : 1;
	}
	sb_error e = SB_ERROR_INIT;
	_cleanup_close_ int fd =
	    sb_open_beneath(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOATIME, 0, &e);
	if (fd == -EPERM)
		fd = sb_open_beneath(root_fd, path, O_RDONLY | O_NONBLOCK, 0, &e);
	struct stat before, after;
	if (fd < 0 || fstat(fd, &before) < 0 || !S_ISREG(before.st_mode) ||
	    (uint64_t)before.st_ino != x->key.ino)
		return 0;
	sb_id id;
	uint64_t n = 0;
	if (sb_content_hash_fd(fd, &id, &n, &e) < 0 || fstat(fd, &after) < 0)
		return 0;
	/* Other content than the check's may not be in the store: never name it. */
	if (n != (uint64_t)before.st_size || !sb_stat_unchanged(&before, &after) ||
	    !sb_id_eq(&id, &x->id))
		return 0;
	sb_statcache_key key;
	sb_statcache_key_from_stat(&before, &key);
	int r = sb_statcache_record(cache, path, x->len, &key, &id);
	return r < 0 ? r : 1;
}

int sb_restore_record(int root_fd, const sb_restore_rehashed *rehashed, sb_statcache *cache)
{
	int n = 0;
	for (size_t i = 0; rehashed && i < rehashed->n; i++) {
		const rehash *x = &rehashed->v[i];
		int r = record_one(root_fd, rehashed->paths.data + x->off, x, cache);
		if (r == -ENOMEM)
			return r;
		n += r > 0;
	}
	return n;
}

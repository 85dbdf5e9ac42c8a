/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "store-internal.h"
#include "buf.h"

/*
 * Verification reads the indexes from disk afresh rather than trusting the
 * tables loaded at open: a damaged index must show up here even when it was
 * already damaged at open (and so never loaded).
 */

typedef struct verify_ctx {
	sb_store_problem_fn cb;
	void *userdata;
	uint64_t problems;
} verify_ctx;

static void report(verify_ctx *v, const sb_id *id, const char *fmt, ...) _printf_(3, 4);

static void report(verify_ctx *v, const sb_id *id, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	v->problems++;
	if (v->cb)
		v->cb(v->userdata, id, what);
}

static int offset_cmp(const void *a, const void *b)
{
	uint64_t x = ((const sb_entry *)a)->offset, y = ((const sb_entry *)b)->offset;
	return x < y ? -1 : x > y;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Collects the stems of every index in packs/. */
static int list_indexes(int packs_fd, char (**ret)[SB_PACK_NAME_LEN + 1], size_t *ret_n,
			sb_error *err)
{
	int dfd = openat(packs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sb_error_errno(err, errno, "open store directory 'packs'");
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return sb_error_errno(err, errno, "open store directory 'packs'");
	}
	_cleanup_closedir_ DIR *dir = d;
	char(*names)[SB_PACK_NAME_LEN + 1] = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(dir))) {
		char stem[SB_PACK_NAME_LEN + 1];
		if (!sb_pack__parse_name(de->d_name, ".idx", stem)) {
			errno = 0;
			continue;
		}
		void *nn = sb_grow(names, &cap, n, sizeof(*names), 16);
		if (!nn) {
			free(names);
			return sb_error_errno(err, ENOMEM, "list store indexes");
		}
		names = nn;
		memcpy(names[n++], stem, sizeof(stem));
		errno = 0;
	}
	if (errno) {
		int e = errno;
		free(names);
		return sb_error_errno(err, e, "read store directory 'packs'");
	}
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*ret = names;
	*ret_n = n;
	return 0;
}

static int verify_pack(sb_store *s, verify_ctx *v, sb_zctx *z, const char *stem, uint64_t *checked,
		       sb_error *err)
{
	char why[192];
	_cleanup_free_ sb_entry *ents = NULL;
	size_t n = 0;
	int r = sb_pack__load_idx(s->packs_fd, stem, 0, &ents, &n, NULL, why, sizeof(why));
	if (r == -ENOMEM)
		return sb_error_errno(err, ENOMEM, "load index 'packs/%s.idx'", stem);
	if (r == -ENOENT)
		return 0; /* removed by gc meanwhile */
	if (r < 0) {
		report(v, NULL, "index 'packs/%s.idx' is unusable: %s", stem, why);
		return 0;
	}

	char fname[SB_PACK_NAME_LEN + 8];
	snprintf(fname, sizeof(fname), "%s.pack", stem);
	_cleanup_close_ int fd = openat(s->packs_fd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		report(v, NULL,
		       "pack 'packs/%s' of index '%s.idx' (%zu objects) cannot be read: %s", fname,
		       stem, n, strerror(errno));
		return 0;
	}
	uint64_t size = (uint64_t)st.st_size;

	/* Offset order turns the pass into one sequential read of the pack. */
	if (n)
		qsort(ents, n, sizeof(*ents), offset_cmp);
	for (size_t i = 0; i < n; i++) {
		const sb_entry *e = &ents[i];
		(*checked)++;
		uint64_t need = SB_REC_HEADER_LEN + (uint64_t)e->stored_len;
		if (e->offset > size || size - e->offset < need) {
			report(v, &e->id,
			       "truncated: record at offset %" PRIu64 " (%" PRIu64
			       " bytes) extends past the end of 'packs/%s' (%" PRIu64 " bytes)",
			       e->offset, need, fname, size);
			continue;
		}
		void *data = NULL;
		sb_rec_problem p = SB_REC_OK;
		sb_error e2 = SB_ERROR_INIT;
		r = sb_pack__read_record(fd, stem, e, z, &data, &p, &e2);
		free(data);
		if (r == -ENOMEM)
			return sb_error_errno(err, ENOMEM, "verify 'packs/%s'", fname);
		if (r < 0 && p != SB_REC_OK && p != SB_REC_IO)
			report(v, &e->id, "%s in 'packs/%s' at offset %" PRIu64,
			       sb_rec_problem_str(p), fname, e->offset);
		else if (r < 0)
			report(v, &e->id, "%s", e2.msg);
	}
	return 0;
}

int sb_store_verify_objects(sb_store *s, sb_store_problem_fn cb, void *userdata,
			    uint64_t *ret_checked, sb_error *err)
{
	verify_ctx v = {cb, userdata, 0};
	uint64_t checked = 0;

	pthread_mutex_lock(&s->lock);
	int fd = s->packs_fd;
	if (fd < 0) {
		fd = openat(s->root_fd, "packs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0)
			s->packs_fd = fd;
	}
	pthread_mutex_unlock(&s->lock);
	if (fd < 0) {
		if (errno != ENOENT)
			return sb_error_errno(err, errno, "open store directory 'packs'");
		if (ret_checked)
			*ret_checked = 0;
		return 0; /* an empty store */
	}

	char(*names)[SB_PACK_NAME_LEN + 1] = NULL;
	size_t n = 0;
	int r = list_indexes(fd, &names, &n, err);
	if (r < 0)
		return r;
	_cleanup_free_ void *names_owner = names;

	sb_zctx *z = sb_store__zctx_get(s);
	if (!z)
		return sb_error_errno(err, ENOMEM, "verify store");
	for (size_t i = 0; i < n && r == 0; i++)
		r = verify_pack(s, &v, z, names[i], &checked, err);
	sb_store__zctx_put(s, z);
	if (r < 0)
		return r;
	if (ret_checked)
		*ret_checked = checked;
	return v.problems > INT32_MAX ? INT32_MAX : (int)v.problems;
}

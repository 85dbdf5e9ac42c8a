/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <sys/mman.h>

#include "content.h"
#include "diffout.h"
#include "fileio.h"
#include "linediff.h"

#define DIFF_MAX_BYTES (64u << 20)

typedef struct blob {
	char *data;
	size_t len;
	bool binary;
	bool present;
} blob;

static void blob_release(blob *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Contents of a file or symlink entry; NONE/dir/fifo entries give an absent blob. */
static int load(sb_store *s, const sb_tree_entry *e, blob *ret, sb_error *err)
{
	memset(ret, 0, sizeof(*ret));
	if (e->type != SB_FT_SYMLINK && e->type != SB_FT_REG)
		return 0;
	ret->present = true;
	bool reg = e->type == SB_FT_REG;
	if (reg && e->size > DIFF_MAX_BYTES) {
		ret->binary = true;
		return 0;
	}
	if (!reg || e->size <= SB_CONTENT_CHUNK_MIN_FILE) {
		/* One blob (content.h): read it whole. */
		void *data;
		size_t len;
		int r = sb_store_get(s, &e->id, SB_OBJ_BLOB, NULL, &data, &len, err);
		if (r < 0)
			return r;
		ret->data = data;
		ret->len = len;
		if (reg && len != e->size)
			return sb_error_set(err, EBADMSG,
					    "content is %zu bytes, its tree says %llu", len,
					    (unsigned long long)e->size);
	} else {
		/* A chunk list: let content.c assemble it. */
		_cleanup_close_ int fd = memfd_create("snapbox-diff", MFD_CLOEXEC);
		if (fd < 0)
			return sb_error_errno(err, errno, "memfd_create");
		int r = sb_content_write_fd(s, &e->id, e->size, fd, 0, err);
		if (r < 0)
			return r;
		ret->data = malloc(e->size + 1);
		if (!ret->data)
			return -ENOMEM;
		ssize_t n = sb_pread_full(fd, ret->data, e->size, 0);
		if (n < 0 || (uint64_t)n != e->size)
			return sb_error_errno(err, n < 0 ? (int)-n : EIO, "read back content");
		ret->len = e->size;
	}
	ret->binary = reg && memchr(ret->data, 0, MIN(ret->len, (size_t)8000)) != NULL;
	return 0;
}

static unsigned git_mode(const sb_tree_entry *e)
{
	if (e->type == SB_FT_SYMLINK)
		return 0120000;
	return (e->mode & 0111) ? 0100755 : 0100644;
}

static bool patchable(const sb_tree_entry *e)
{
	return e->type == SB_FT_REG || e->type == SB_FT_SYMLINK;
}

static void put_prefixed(FILE *f, const char *prefix, const char *path, size_t len)
{
	size_t pl = strlen(prefix);
	char *p = malloc(pl + len + 1);
	if (!p)
		return;
	memcpy(p, prefix, pl);
	memcpy(p + pl, path, len);
	p[pl + len] = 0;
	sb_cli_put_path(f, p, pl + len);
	free(p);
}

/* One file's patch, from old (may be NONE) to new (may be NONE). */
static int patch_one(sb_cli *cli, sb_store *s, const char *path, size_t plen,
		     const sb_tree_entry *old, const sb_tree_entry *new, unsigned context,
		     sb_error *err)
{
	bool has_old = patchable(old), has_new = patchable(new);
	if (!has_old && !has_new)
		return 0;
	if (has_old && has_new && sb_id_eq(&old->id, &new->id) && git_mode(old) == git_mode(new))
		return 0; /* only bits git does not show changed */
	blob a, b;
	int r = has_old ? load(s, old, &a, err) : (memset(&a, 0, sizeof(a)), 0);
	if (r < 0)
		return r;
	r = has_new ? load(s, new, &b, err) : (memset(&b, 0, sizeof(b)), 0);
	if (r < 0) {
		blob_release(&a);
		return r;
	}
	const char *bold = sb_cli_c(cli->color_out, SB_C_BOLD);
	const char *reset = sb_cli_c(cli->color_out, SB_C_RESET);
	fputs(bold, stdout);
	fputs("diff --git ", stdout);
	put_prefixed(stdout, "a/", path, plen);
	putchar(' ');
	put_prefixed(stdout, "b/", path, plen);
	putchar('\n');
	if (!has_old)
		printf("new file mode %06o\n", git_mode(new));
	else if (!has_new)
		printf("deleted file mode %06o\n", git_mode(old));
	else if (git_mode(old) != git_mode(new))
		printf("old mode %06o\nnew mode %06o\n", git_mode(old), git_mode(new));
	fputs(reset, stdout);
	bool same = has_old && has_new && sb_id_eq(&old->id, &new->id);
	if (!same && (a.binary || b.binary)) {
		fputs("Binary files ", stdout);
		if (has_old)
			put_prefixed(stdout, "a/", path, plen);
		else
			fputs("/dev/null", stdout);
		fputs(" and ", stdout);
		if (has_new)
			put_prefixed(stdout, "b/", path, plen);
		else
			fputs("/dev/null", stdout);
		fputs(" differ\n", stdout);
	} else if (!same && (a.len || b.len)) {
		fputs(bold, stdout);
		fputs("--- ", stdout);
		if (has_old)
			put_prefixed(stdout, "a/", path, plen);
		else
			fputs("/dev/null", stdout);
		/* As git does: a TAB ends a name with spaces, so GNU patch reads it whole. */
		bool space = memchr(path, ' ', plen) != NULL;
		if (space && has_old)
			putchar('\t');
		fputs("\n+++ ", stdout);
		if (has_new)
			put_prefixed(stdout, "b/", path, plen);
		else
			fputs("/dev/null", stdout);
		if (space && has_new)
			putchar('\t');
		putchar('\n');
		fputs(reset, stdout);
		sb_linediff_colors colors = {sb_cli_c(cli->color_out, SB_C_CYAN),
					     sb_cli_c(cli->color_out, SB_C_RED),
					     sb_cli_c(cli->color_out, SB_C_GREEN), reset};
		r = sb_linediff_write(stdout, a.data ? a.data : "", a.len, b.data ? b.data : "",
				      b.len, context, &colors, NULL, NULL);
	}
	blob_release(&a);
	blob_release(&b);
	return r;
}

int sb_cli_print_patch(sb_cli *cli, sb_store *s, const sb_diff_list *c, unsigned context,
		       sb_error *err)
{
	static const sb_tree_entry none = {0};
	for (size_t i = 0; i < c->n; i++) {
		const sb_diff_item *x = &c->v[i];
		int r;
		/* A type change has no single patch: git shows a deletion and an addition. */
		if (x->status == 'T' || (x->old.type != SB_FT_NONE && x->new.type != SB_FT_NONE &&
					 x->old.type != x->new.type)) {
			r = patch_one(cli, s, x->path, x->path_len, &x->old, &none, context, err);
			if (r >= 0)
				r = patch_one(cli, s, x->path, x->path_len, &none, &x->new, context,
					      err);
		} else {
			r = patch_one(cli, s, x->path, x->path_len, &x->old, &x->new, context, err);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

typedef struct stat_row {
	uint64_t added, removed;
	bool binary;
	uint64_t old_size, new_size;
} stat_row;

int sb_cli_print_stat(sb_cli *cli, sb_store *s, const sb_diff_list *c, sb_error *err)
{
	_cleanup_free_ stat_row *rows = calloc(c->n ? c->n : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	uint64_t tot_add = 0, tot_del = 0, maxchg = 0;
	size_t files = 0, width = 0;
	for (size_t i = 0; i < c->n; i++) {
		const sb_diff_item *x = &c->v[i];
		if (!patchable(&x->old) && !patchable(&x->new))
			continue;
		blob a, b;
		int r = load(s, &x->old, &a, err);
		if (r < 0)
			return r;
		r = load(s, &x->new, &b, err);
		if (r < 0) {
			blob_release(&a);
			return r;
		}
		stat_row *row = &rows[i];
		row->binary = a.binary || b.binary;
		row->old_size = x->old.size;
		row->new_size = x->new.size;
		if (!row->binary)
			r = sb_linediff_count(a.data ? a.data : "", a.len, b.data ? b.data : "",
					      b.len, &row->added, &row->removed);
		blob_release(&a);
		blob_release(&b);
		if (r < 0)
			return r;
		tot_add += row->added;
		tot_del += row->removed;
		maxchg = MAX(maxchg, row->added + row->removed);
		files++;
		width = MAX(width, MIN(x->path_len, (size_t)50));
	}
	const unsigned bar = 40;
	for (size_t i = 0; i < c->n; i++) {
		const sb_diff_item *x = &c->v[i];
		if (!patchable(&x->old) && !patchable(&x->new))
			continue;
		stat_row *row = &rows[i];
		putchar(' ');
		sb_cli_put_path(stdout, x->path, x->path_len);
		for (size_t k = x->path_len; k < width; k++)
			putchar(' ');
		if (row->binary) {
			printf(" | Bin %llu -> %llu bytes\n", (unsigned long long)row->old_size,
			       (unsigned long long)row->new_size);
			continue;
		}
		uint64_t chg = row->added + row->removed;
		uint64_t plus = row->added, minus = row->removed;
		if (maxchg > bar) {
			plus = (row->added * bar + maxchg - 1) / maxchg;
			minus = (row->removed * bar + maxchg - 1) / maxchg;
		}
		printf(" | %5llu %s", (unsigned long long)chg,
		       sb_cli_c(cli->color_out, SB_C_GREEN));
		for (uint64_t k = 0; k < plus; k++)
			putchar('+');
		printf("%s", sb_cli_c(cli->color_out, SB_C_RED));
		for (uint64_t k = 0; k < minus; k++)
			putchar('-');
		printf("%s\n", sb_cli_c(cli->color_out, SB_C_RESET));
	}
	printf(" %zu file%s changed, %llu insertion%s(+), %llu deletion%s(-)\n", files,
	       files == 1 ? "" : "s", (unsigned long long)tot_add, tot_add == 1 ? "" : "s",
	       (unsigned long long)tot_del, tot_del == 1 ? "" : "s");
	return 0;
}

/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "changes.h"
#include "buf.h"
#include "macro.h"

void sb_changes_init(sb_changes *c)
{
	c->v = NULL;
	c->n = c->cap = 0;
}

void sb_changes_release(sb_changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].path);
	free(c->v);
	sb_changes_init(c);
}

sb_change *sb_changes_add(sb_changes *c, const char *path, size_t path_len)
{
	sb_change *v = sb_grow(c->v, &c->cap, c->n, sizeof(*v), 16);
	if (!v)
		return NULL;
	c->v = v;
	char *p = malloc(path_len + 1);
	if (!p)
		return NULL;
	memcpy(p, path, path_len);
	p[path_len] = 0;
	sb_change *e = &c->v[c->n++];
	memset(e, 0, sizeof(*e));
	e->path = p;
	e->path_len = path_len;
	return e;
}

int sb_path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = MIN(alen, blen);
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x == y)
			continue;
		/* '/' sorts first so "a/b" comes right after "a", before "a-b". */
		if (x == '/')
			return -1;
		if (y == '/')
			return 1;
		return x < y ? -1 : 1;
	}
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int cmp_change(const void *x, const void *y)
{
	const sb_change *a = x, *b = y;
	return sb_path_cmp(a->path, a->path_len, b->path, b->path_len);
}

void sb_changes_sort(sb_changes *c)
{
	if (c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), cmp_change);
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"
#include "buf.h"

#define TREE_MAGIC     "sbtree1\n"
#define TREE_MAGIC_LEN 8
#define TREE_HDR_LEN   (TREE_MAGIC_LEN + 4)
/* type mode size mtime id name_len, without the name */
#define ENTRY_FIXED  (1 + 4 + 8 + 8 + SB_ID_LEN + 2)
#define NAME_MAX_LEN 255
#define SYMLINK_MAX  4095 /* PATH_MAX - 1: what symlink(2) accepts */

void sb_tree_init(sb_tree *t)
{
	t->v = NULL;
	t->n = t->cap = 0;
}

void sb_tree_release(sb_tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	sb_tree_init(t);
}

void sb_tree_entry_release(sb_tree_entry *e)
{
	if (!e)
		return;
	free(e->name);
	memset(e, 0, sizeof(*e));
}

int sb_tree_entry_copy(const sb_tree_entry *src, sb_tree_entry *ret)
{
	char *name = malloc(src->name_len + 1);
	if (!name)
		return -ENOMEM;
	memcpy(name, src->name, src->name_len);
	name[src->name_len] = 0;
	*ret = *src;
	ret->name = name;
	return 0;
}

sb_tree_entry *sb_tree_add(sb_tree *t, const char *name, size_t name_len)
{
	sb_tree_entry *v = sb_grow(t->v, &t->cap, t->n, sizeof(*v), 16);
	if (!v)
		return NULL;
	t->v = v;
	char *copy = malloc(name_len + 1);
	if (!copy)
		return NULL;
	memcpy(copy, name, name_len);
	copy[name_len] = 0;
	sb_tree_entry *e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->name = copy;
	e->name_len = name_len;
	return e;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, MIN(alen, blen));
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int entry_cmp(const void *x, const void *y)
{
	const sb_tree_entry *a = x, *b = y;
	return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

void sb_tree_sort(sb_tree *t)
{
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(t->v[0]), entry_cmp);
}

const sb_tree_entry *sb_tree_find(const sb_tree *t, const char *name, size_t name_len)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(t->v[mid].name, t->v[mid].name_len, name, name_len);
		if (c == 0)
			return &t->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void sb_tree_remove(sb_tree *t, size_t i)
{
	if (i >= t->n)
		return;
	free(t->v[i].name);
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
	t->n--;
}

static bool name_ok(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return !memchr(name, '/', len) && !memchr(name, 0, len);
}

/*
 * The one rule set both directions share. Returns a static reason, or NULL
 * when the entry is acceptable. need_id is off for decode: a zero id cannot
 * be produced by hashing, but it is not malformed either, and a store with
 * such an entry fails on the object lookup with a clearer message.
 */
static const char *entry_problem(const sb_tree_entry *e, bool need_id)
{
	if (!name_ok(e->name, e->name_len))
		return "invalid name";
	if (e->mode & ~07777u)
		return "mode has bits above 07777";
	switch (e->type) {
	case SB_FT_REG:
		break;
	case SB_FT_DIR:
		if (e->size != 0)
			return "directory with a non-zero size";
		break;
	case SB_FT_SYMLINK:
		if (e->size == 0 || e->size > SYMLINK_MAX)
			return "symlink target length out of range";
		break;
	case SB_FT_FIFO:
		if (e->size != 0)
			return "fifo with a non-zero size";
		if (!sb_id_is_zero(&e->id))
			return "fifo with a non-zero id";
		return NULL;
	default:
		return "unknown entry type";
	}
	if (need_id && sb_id_is_zero(&e->id))
		return "missing object id";
	return NULL;
}

int sb_tree_encode(const sb_tree *t, sb_buf *out, sb_error *err)
{
	char q[128];
	if (t->n > UINT32_MAX)
		return sb_error_set(err, EINVAL, "tree with %zu entries is too large", t->n);
	for (size_t i = 0; i < t->n; i++) {
		const sb_tree_entry *e = &t->v[i];
		const char *why = entry_problem(e, true);
		if (!why && i > 0 &&
		    name_cmp(t->v[i - 1].name, t->v[i - 1].name_len, e->name, e->name_len) >= 0)
			why = "entries not sorted or repeated";
		if (why)
			return sb_error_set(err, EINVAL, "tree entry '%s': %s",
					    sb_quote(q, sizeof(q), e->name, e->name_len), why);
	}
	/* Sized first, then written in place: a scan encodes every directory. */
	size_t len = TREE_HDR_LEN;
	for (size_t i = 0; i < t->n; i++)
		len += ENTRY_FIXED + t->v[i].name_len;
	int r = sb_buf_reserve(out, len);
	if (r < 0)
		return sb_error_errno(err, -r, "encoding a tree");
	uint8_t *p = (uint8_t *)out->data + out->len;
	memcpy(p, TREE_MAGIC, TREE_MAGIC_LEN);
	sb_put_le(p + TREE_MAGIC_LEN, t->n, 4);
	p += TREE_HDR_LEN;
	for (size_t i = 0; i < t->n; i++) {
		const sb_tree_entry *e = &t->v[i];
		p[0] = (uint8_t)e->type;
		sb_put_le(p + 1, e->mode, 4);
		sb_put_le(p + 5, e->size, 8);
		sb_put_le(p + 13, (uint64_t)e->mtime_ns, 8);
		memcpy(p + 21, e->id.b, SB_ID_LEN);
		sb_put_le(p + 21 + SB_ID_LEN, e->name_len, 2);
		memcpy(p + ENTRY_FIXED, e->name, e->name_len);
		p += ENTRY_FIXED + e->name_len;
	}
	out->len += len;
	out->data[out->len] = 0;
	return 0;
}

int sb_tree_decode(const void *data, size_t len, sb_tree *ret, sb_error *err)
{
	const uint8_t *p = data, *end = p + len;
	if (len < TREE_HDR_LEN || memcmp(p, TREE_MAGIC, TREE_MAGIC_LEN) != 0)
		return sb_error_set(err, EBADMSG, "not a tree object (bad header)");
	uint32_t count = sb_le32(p + TREE_MAGIC_LEN);
	p += TREE_HDR_LEN;
	/* Each entry takes at least ENTRY_FIXED + 1 bytes: bound the allocation. */
	if ((uint64_t)count > (uint64_t)(end - p) / (ENTRY_FIXED + 1))
		return sb_error_set(err, EBADMSG, "tree claims %" PRIu32 " entries in %zu bytes",
				    count, len);
	_cleanup_(sb_tree_releasep) sb_tree t = SB_TREE_INIT;
	if (count) {
		t.v = calloc(count, sizeof(t.v[0]));
		if (!t.v)
			return -ENOMEM;
		t.cap = count;
	}
	char q[128];
	for (uint32_t i = 0; i < count; i++) {
		if ((size_t)(end - p) < ENTRY_FIXED)
			return sb_error_set(err, EBADMSG, "tree truncated in entry %" PRIu32, i);
		sb_tree_entry e = {0};
		e.type = (sb_ftype)p[0];
		e.mode = sb_le32(p + 1);
		e.size = sb_le64(p + 5);
		e.mtime_ns = (int64_t)sb_le64(p + 13);
		memcpy(e.id.b, p + 21, SB_ID_LEN);
		e.name_len = sb_le16(p + 21 + SB_ID_LEN);
		p += ENTRY_FIXED;
		if ((size_t)(end - p) < e.name_len)
			return sb_error_set(err, EBADMSG, "tree truncated in entry %" PRIu32, i);
		e.name = (char *)p;
		const char *why = entry_problem(&e, false);
		if (!why && i > 0 &&
		    name_cmp(t.v[i - 1].name, t.v[i - 1].name_len, e.name, e.name_len) >= 0)
			why = "entries not sorted or repeated";
		if (why)
			return sb_error_set(err, EBADMSG, "tree entry %" PRIu32 " '%s': %s", i,
					    sb_quote(q, sizeof(q), e.name, e.name_len), why);
		e.name = malloc(e.name_len + 1);
		if (!e.name)
			return -ENOMEM;
		memcpy(e.name, p, e.name_len);
		e.name[e.name_len] = 0;
		p += e.name_len;
		t.v[t.n++] = e;
	}
	if (p != end)
		return sb_error_set(err, EBADMSG, "tree has %zu trailing bytes", (size_t)(end - p));
	*ret = t;
	sb_tree_init(&t);
	return 0;
}

int sb_tree_save(sb_store *s, const sb_tree *t, sb_id *ret_id, sb_error *err)
{
	sb_buf b = SB_BUF_INIT;
	int r = sb_tree_encode(t, &b, err);
	if (r >= 0)
		r = sb_store_put(s, SB_OBJ_TREE, b.data, b.len, ret_id, err);
	sb_buf_release(&b);
	return r;
}

int sb_tree_load(sb_store *s, const sb_id *id, sb_tree *ret, sb_error *err)
{
	_cleanup_free_ void *data = NULL;
	size_t len = 0;
	sb_obj_type type;
	int r = sb_store_get(s, id, SB_OBJ_TREE, &type, &data, &len, err);
	if (r < 0)
		return r;
	r = sb_tree_decode(data, len, ret, err);
	if (r < 0) {
		char hex[SB_HEX_LEN + 1];
		return sb_error_prefix(err, "tree object %s", sb_id_to_hex(id, hex));
	}
	return 0;
}

void sb_tree_empty_id(sb_id *ret_id)
{
	uint8_t hdr[TREE_HDR_LEN] = TREE_MAGIC; /* count 0 */
	sb_store_hash(SB_OBJ_TREE, hdr, sizeof(hdr), ret_id);
}

int sb_tree_lookup(sb_store *s, const sb_id *root, const char *path, size_t path_len,
		   sb_tree_entry *ret_entry, sb_error *err)
{
	sb_tree_entry cur = {.type = SB_FT_DIR, .id = *root};
	const char *name = "";
	size_t name_len = 0;
	size_t i = 0;
	char q[256];
	for (;;) {
		while (i < path_len && path[i] == '/')
			i++;
		if (i == path_len)
			break;
		size_t start = i;
		while (i < path_len && path[i] != '/')
			i++;
		const char *comp = path + start;
		size_t n = i - start;
		if (!name_ok(comp, n))
			return sb_error_set(err, EINVAL, "invalid path component in '%s'",
					    sb_quote(q, sizeof(q), path, path_len));
		if (cur.type != SB_FT_DIR)
			return sb_error_set(err, ENOENT, "'%s': not a directory on the way",
					    sb_quote(q, sizeof(q), path, path_len));
		_cleanup_(sb_tree_releasep) sb_tree t = SB_TREE_INIT;
		int r = sb_tree_load(s, &cur.id, &t, err);
		if (r < 0)
			return r;
		const sb_tree_entry *e = sb_tree_find(&t, comp, n);
		if (!e)
			return sb_error_set(err, ENOENT, "'%s' not found",
					    sb_quote(q, sizeof(q), path, path_len));
		cur = *e;
		cur.name = NULL;
		name = comp;
		name_len = n;
	}
	char *copy = malloc(name_len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, name, name_len);
	copy[name_len] = 0;
	cur.name = copy;
	cur.name_len = name_len;
	*ret_entry = cur;
	return 0;
}

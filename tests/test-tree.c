/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>

#include "sb-test.h"
#include "buf.h"
#include "error.h"
#include "hash.h"
#include "store.h"
#include "tree.h"

static void fill_id(sb_id *id, uint8_t seed)
{
	for (int i = 0; i < SB_ID_LEN; i++)
		id->b[i] = (uint8_t)(seed + i * 7 + 1);
}

static sb_tree_entry *add(sb_tree *t, const char *name, size_t len, sb_ftype type, uint32_t mode,
			  uint64_t size, int64_t mtime, uint8_t seed)
{
	sb_tree_entry *e = sb_tree_add(t, name, len);
	ASSERT_TRUE(e != NULL);
	e->type = type;
	e->mode = mode;
	e->size = size;
	e->mtime_ns = mtime;
	if (type != SB_FT_FIFO)
		fill_id(&e->id, seed);
	return e;
}

/* A tree with hostile names: newline, 0xff, leading dash, spaces, 255 bytes. */
static void hostile_tree(sb_tree *t)
{
	char long_name[255];
	memset(long_name, 'L', sizeof(long_name));
	long_name[0] = (char)0xff;
	add(t, "new\nline", 8, SB_FT_REG, 0644, 12, 1700000000123456789LL, 1);
	add(t, "\xff\xfe", 2, SB_FT_REG, 04755, 0, -5, 2);
	add(t, "-rf", 3, SB_FT_SYMLINK, 0777, 4095, 0, 3);
	add(t, "with space ", 11, SB_FT_DIR, 01777, 0, 42, 4);
	add(t, "fifo", 4, SB_FT_FIFO, 0600, 0, 7, 0);
	add(t, long_name, sizeof(long_name), SB_FT_REG, 0, UINT64_MAX, INT64_MIN, 5);
	add(t, "a", 1, SB_FT_REG, 07777, 1, INT64_MAX, 6);
	add(t, "ab", 2, SB_FT_REG, 0400, 2, 1, 7);
	sb_tree_sort(t);
}

static void assert_trees_equal(const sb_tree *a, const sb_tree *b)
{
	ASSERT_EQ(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		ASSERT_EQ(a->v[i].name_len, b->v[i].name_len);
		ASSERT_MEMEQ(a->v[i].name, b->v[i].name, a->v[i].name_len);
		ASSERT_EQ(b->v[i].name[b->v[i].name_len], 0);
		ASSERT_EQ(a->v[i].type, b->v[i].type);
		ASSERT_EQ(a->v[i].mode, b->v[i].mode);
		ASSERT_TRUE(a->v[i].size == b->v[i].size);
		ASSERT_TRUE(a->v[i].mtime_ns == b->v[i].mtime_ns);
		ASSERT_TRUE(sb_id_eq(&a->v[i].id, &b->v[i].id));
	}
}

TEST(sort_is_bytewise_shorter_first)
{
	sb_tree t = SB_TREE_INIT;
	hostile_tree(&t);
	/* '-' 0x2d < 'a' < 'ab' < 'f' < 'n' < 'w' < 0xff 0xfe < 0xff 'L'... */
	ASSERT_STREQ(t.v[0].name, "-rf");
	ASSERT_STREQ(t.v[1].name, "a");
	ASSERT_STREQ(t.v[2].name, "ab");
	ASSERT_STREQ(t.v[3].name, "fifo");
	ASSERT_STREQ(t.v[4].name, "new\nline");
	ASSERT_STREQ(t.v[5].name, "with space ");
	ASSERT_EQ(t.v[6].name_len, 255);
	ASSERT_STREQ(t.v[7].name, "\xff\xfe");
	ASSERT_TRUE(sb_tree_find(&t, "ab", 2) == &t.v[2]);
	ASSERT_TRUE(sb_tree_find(&t, "a\0", 2) == NULL);
	ASSERT_TRUE(sb_tree_find(&t, "zz", 2) == NULL);
	sb_tree_remove(&t, 1);
	ASSERT_STREQ(t.v[1].name, "ab");
	ASSERT_EQ(t.n, 7);
	sb_tree_release(&t);
}

TEST(encode_decode_round_trip)
{
	sb_error err = SB_ERROR_INIT;
	sb_tree t = SB_TREE_INIT, back = SB_TREE_INIT;
	hostile_tree(&t);
	sb_buf b = SB_BUF_INIT, b2 = SB_BUF_INIT;
	ASSERT_OK(sb_tree_encode(&t, &b, &err));
	ASSERT_OK(sb_tree_decode(b.data, b.len, &back, &err));
	assert_trees_equal(&t, &back);
	ASSERT_OK(sb_tree_encode(&back, &b2, &err));
	ASSERT_EQ(b.len, b2.len);
	ASSERT_MEMEQ(b.data, b2.data, b.len);
	sb_tree_release(&t);
	sb_tree_release(&back);
	sb_buf_release(&b);
	sb_buf_release(&b2);
}

/* The byte layout, written out by hand from the format in tree.h. */
TEST(encoding_matches_the_documented_layout)
{
	sb_error err = SB_ERROR_INIT;
	sb_tree t = SB_TREE_INIT;
	sb_tree_entry *e = sb_tree_add(&t, "x\n", 2);
	e->type = SB_FT_REG;
	e->mode = 04755;
	e->size = 0x0102030405060708ULL;
	e->mtime_ns = -2;
	memset(e->id.b, 0xab, SB_ID_LEN);
	sb_buf b = SB_BUF_INIT;
	ASSERT_OK(sb_tree_encode(&t, &b, &err));
	uint8_t want[12 + 1 + 4 + 8 + 8 + 32 + 2 + 2];
	size_t o = 0;
	memcpy(want, "sbtree1\n\x01\x00\x00\x00", 12);
	o = 12;
	want[o++] = 1;
	memcpy(want + o, "\xed\x09\x00\x00", 4);
	o += 4;
	memcpy(want + o, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	o += 8;
	memcpy(want + o, "\xfe\xff\xff\xff\xff\xff\xff\xff", 8);
	o += 8;
	memset(want + o, 0xab, 32);
	o += 32;
	memcpy(want + o, "\x02\x00x\n", 4);
	o += 4;
	ASSERT_EQ(o, sizeof(want));
	ASSERT_EQ(b.len, sizeof(want));
	ASSERT_MEMEQ(b.data, want, sizeof(want));
	sb_buf_release(&b);
	sb_tree_release(&t);
}

/* Encodes a two-entry tree with e1 / e2 tweaked by the caller; expects decode to refuse. */
static void expect_rejected(const char *what, void (*tweak)(sb_buf *b, size_t off2))
{
	sb_error err = SB_ERROR_INIT;
	sb_tree t = SB_TREE_INIT;
	add(&t, "aa", 2, SB_FT_REG, 0644, 3, 1, 1);
	add(&t, "bb", 2, SB_FT_REG, 0644, 3, 1, 2);
	sb_buf b = SB_BUF_INIT;
	ASSERT_OK(sb_tree_encode(&t, &b, &err));
	size_t off2 = 12 + 55 + 2; /* second entry */
	tweak(&b, off2);
	sb_tree out = SB_TREE_INIT;
	int r = sb_tree_decode(b.data, b.len, &out, &err);
	if (r != -EBADMSG)
		sb_test_fail(__FILE__, __LINE__, "%s: decode gave %d, expected -EBADMSG", what, r);
	ASSERT_TRUE(err.msg[0] != 0);
	ASSERT_EQ(out.n, 0);
	ASSERT_TRUE(out.v == NULL);
	sb_buf_release(&b);
	sb_tree_release(&t);
}

#define NAME(off) ((off) + 55)
static void t_unsorted(sb_buf *b, size_t o)
{
	b->data[NAME(o)] = 'A';
}
static void t_dup(sb_buf *b, size_t o)
{
	b->data[NAME(o)] = 'a';
	b->data[NAME(o) + 1] = 'a';
}
static void t_slash(sb_buf *b, size_t o)
{
	b->data[NAME(o)] = '/';
}
static void t_nul(sb_buf *b, size_t o)
{
	b->data[NAME(o) + 1] = 0;
}
static void t_dotdot(sb_buf *b, size_t o)
{
	b->data[NAME(o)] = '.';
	b->data[NAME(o) + 1] = '.';
}
static void t_dot(sb_buf *b, size_t o)
{
	/* name "b." shortened to "." by shrinking the length and moving nothing: trailing byte */
	b->data[o + 53] = 1;
	b->data[NAME(o)] = '.';
	sb_buf_truncate(b, b->len - 1);
}
static void t_empty_name(sb_buf *b, size_t o)
{
	b->data[o + 53] = 0;
	sb_buf_truncate(b, b->len - 2);
}
static void t_bad_type0(sb_buf *b, size_t o)
{
	b->data[o] = 0;
}
static void t_bad_type5(sb_buf *b, size_t o)
{
	b->data[o] = 5;
}
static void t_bad_mode(sb_buf *b, size_t o)
{
	b->data[o + 2] = 0x10; /* 010000 */
}
static void t_trailing(sb_buf *b, size_t o)
{
	sb_buf_putc(b, 0);
}
static void t_count_high(sb_buf *b, size_t o)
{
	b->data[8] = 3;
}
static void t_count_huge(sb_buf *b, size_t o)
{
	memcpy(b->data + 8, "\xff\xff\xff\xff", 4);
}
static void t_magic(sb_buf *b, size_t o)
{
	b->data[6] = '2';
}
static void t_dir_size(sb_buf *b, size_t o)
{
	b->data[o] = SB_FT_DIR; /* size stays 3 */
}
static void t_fifo_id(sb_buf *b, size_t o)
{
	b->data[o] = SB_FT_FIFO;
	memset(b->data + o + 5, 0, 8); /* size 0, id left non-zero */
}
static void t_symlink_zero(sb_buf *b, size_t o)
{
	b->data[o] = SB_FT_SYMLINK;
	memset(b->data + o + 5, 0, 8);
}
static void t_long_name(sb_buf *b, size_t o)
{
	b->data[o + 53] = 0; /* 256 */
	b->data[o + 54] = 1;
	for (int i = 0; i < 254; i++)
		sb_buf_putc(b, 'z');
}

TEST(decode_rejects_malformed)
{
	expect_rejected("unsorted", t_unsorted);
	expect_rejected("duplicate", t_dup);
	expect_rejected("slash", t_slash);
	expect_rejected("nul", t_nul);
	expect_rejected("dotdot", t_dotdot);
	expect_rejected("dot", t_dot);
	expect_rejected("empty name", t_empty_name);
	expect_rejected("type 0", t_bad_type0);
	expect_rejected("type 5", t_bad_type5);
	expect_rejected("mode", t_bad_mode);
	expect_rejected("trailing", t_trailing);
	expect_rejected("count too high", t_count_high);
	expect_rejected("count huge", t_count_huge);
	expect_rejected("magic", t_magic);
	expect_rejected("dir with size", t_dir_size);
	expect_rejected("fifo with id", t_fifo_id);
	expect_rejected("symlink of size 0", t_symlink_zero);
	expect_rejected("256-byte name", t_long_name);
}

TEST(decode_rejects_every_truncation)
{
	sb_error err = SB_ERROR_INIT;
	sb_tree t = SB_TREE_INIT;
	hostile_tree(&t);
	sb_buf b = SB_BUF_INIT;
	ASSERT_OK(sb_tree_encode(&t, &b, &err));
	for (size_t len = 0; len < b.len; len++) {
		sb_tree out = SB_TREE_INIT;
		ASSERT_ERR(sb_tree_decode(b.data, len, &out, &err), -EBADMSG);
	}
	sb_buf_release(&b);
	sb_tree_release(&t);
}

TEST(encode_refuses_what_decode_would)
{
	sb_error err = SB_ERROR_INIT;
	sb_buf b = SB_BUF_INIT;
	char big[256];
	memset(big, 'n', sizeof(big));
	struct {
		const char *name;
		size_t len;
		sb_ftype type;
		uint32_t mode;
		uint64_t size;
		uint8_t seed;
	} bad[] = {
	    {big, 256, SB_FT_REG, 0644, 0, 1},	    {"a/b", 3, SB_FT_REG, 0644, 0, 1},
	    {"..", 2, SB_FT_REG, 0644, 0, 1},	    {"", 0, SB_FT_REG, 0644, 0, 1},
	    {"x", 1, SB_FT_REG, 010644, 0, 1},	    {"x", 1, (sb_ftype)9, 0644, 0, 1},
	    {"x", 1, SB_FT_REG, 0644, 0, 0},	    {"x", 1, SB_FT_DIR, 0755, 1, 1},
	    {"x", 1, SB_FT_SYMLINK, 0777, 4096, 1},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		sb_tree t = SB_TREE_INIT;
		sb_tree_entry *e = sb_tree_add(&t, bad[i].name, bad[i].len);
		e->type = bad[i].type;
		e->mode = bad[i].mode;
		e->size = bad[i].size;
		if (bad[i].seed)
			fill_id(&e->id, bad[i].seed);
		if (sb_tree_encode(&t, &b, &err) != -EINVAL)
			sb_test_fail(__FILE__, __LINE__, "bad entry %zu was encoded", i);
		ASSERT_EQ(b.len, 0);
		sb_tree_release(&t);
	}
	sb_tree t = SB_TREE_INIT;
	add(&t, "b", 1, SB_FT_REG, 0644, 0, 0, 1);
	add(&t, "a", 1, SB_FT_REG, 0644, 0, 0, 1);
	ASSERT_ERR(sb_tree_encode(&t, &b, &err), -EINVAL);
	sb_tree_sort(&t);
	ASSERT_OK(sb_tree_encode(&t, &b, &err));
	sb_tree_release(&t);
	sb_buf_release(&b);
}

static sb_store *open_store(void)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = NULL;
	int r = sb_store_open("store", SB_STORE_WRITE | SB_STORE_CREATE, &s, &err);
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "store: %s", err.msg);
	return s;
}

/* Independent oracle: sha256sum over "sbobj" type len "sbtree1\n" count(0). */
TEST(empty_tree_id)
{
	sb_id id, saved;
	sb_tree_empty_id(&id);
	char hex[SB_HEX_LEN + 1];
	char *want =
	    sb_test_sh_out("printf 'sbobj\\002\\014\\0\\0\\0\\0\\0\\0\\0sbtree1\\n\\0\\0\\0\\0' "
			   "| sha256sum | cut -c1-64");
	want[strcspn(want, "\n")] = 0;
	ASSERT_STREQ(sb_id_to_hex(&id, hex), want);
	free(want);

	sb_error err = SB_ERROR_INIT;
	sb_store *s = open_store();
	sb_tree t = SB_TREE_INIT;
	ASSERT_OK(sb_tree_save(s, &t, &saved, &err));
	ASSERT_TRUE(sb_id_eq(&id, &saved));
	ASSERT_OK(sb_tree_load(s, &saved, &t, &err));
	ASSERT_EQ(t.n, 0);
	sb_store_free(s);
}

TEST(save_load_and_lookup)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = open_store();
	sb_id blob, leaf_id, mid_id, root_id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "hello", 5, &blob, &err));

	sb_tree leaf = SB_TREE_INIT, mid = SB_TREE_INIT, root = SB_TREE_INIT, back = SB_TREE_INIT;
	sb_tree_entry *e = sb_tree_add(&leaf, "f\n\xff", 3);
	e->type = SB_FT_REG;
	e->mode = 0640;
	e->size = 5;
	e->mtime_ns = 99;
	e->id = blob;
	ASSERT_OK(sb_tree_save(s, &leaf, &leaf_id, &err));
	e = sb_tree_add(&mid, "leaf", 4);
	e->type = SB_FT_DIR;
	e->mode = 0755;
	e->id = leaf_id;
	ASSERT_OK(sb_tree_save(s, &mid, &mid_id, &err));
	e = sb_tree_add(&root, "mid", 3);
	e->type = SB_FT_DIR;
	e->mode = 0700;
	e->id = mid_id;
	e = sb_tree_add(&root, "file", 4);
	e->type = SB_FT_REG;
	e->mode = 0600;
	e->size = 5;
	e->id = blob;
	sb_tree_sort(&root);
	ASSERT_OK(sb_tree_save(s, &root, &root_id, &err));

	ASSERT_OK(sb_tree_load(s, &root_id, &back, &err));
	assert_trees_equal(&root, &back);
	sb_tree_release(&back);

	sb_store_stats before, after;
	sb_store_get_stats(s, &before);
	sb_tree_entry found;
	ASSERT_OK(sb_tree_lookup(s, &root_id, "mid/leaf/f\n\xff", 12, &found, &err));
	sb_store_get_stats(s, &after);
	ASSERT_EQ(after.objects_read - before.objects_read, 3); /* one tree per level */
	ASSERT_EQ(found.type, SB_FT_REG);
	ASSERT_EQ(found.mode, 0640);
	ASSERT_EQ(found.name_len, 3);
	ASSERT_MEMEQ(found.name, "f\n\xff", 4);
	ASSERT_TRUE(sb_id_eq(&found.id, &blob));
	sb_tree_entry_release(&found);

	ASSERT_OK(sb_tree_lookup(s, &root_id, "/mid//leaf/", 11, &found, &err));
	ASSERT_EQ(found.type, SB_FT_DIR);
	ASSERT_TRUE(sb_id_eq(&found.id, &leaf_id));
	ASSERT_STREQ(found.name, "leaf");
	sb_tree_entry_release(&found);

	ASSERT_OK(sb_tree_lookup(s, &root_id, "", 0, &found, &err));
	ASSERT_EQ(found.type, SB_FT_DIR);
	ASSERT_TRUE(sb_id_eq(&found.id, &root_id));
	sb_tree_entry_release(&found);

	ASSERT_ERR(sb_tree_lookup(s, &root_id, "mid/nope", 8, &found, &err), -ENOENT);
	ASSERT_ERR(sb_tree_lookup(s, &root_id, "file/x", 6, &found, &err), -ENOENT);
	ASSERT_ERR(sb_tree_lookup(s, &root_id, "mid/../file", 11, &found, &err), -EINVAL);
	/* a blob is not a tree: the store refuses the type */
	ASSERT_ERR(sb_tree_lookup(s, &blob, "x", 1, &found, &err), -EBADMSG);

	sb_tree_release(&leaf);
	sb_tree_release(&mid);
	sb_tree_release(&root);
	sb_store_free(s);
}

/* A stored object that is well-formed for the store but not a valid tree. */
TEST(load_rejects_a_malformed_tree_object)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = open_store();
	static const char junk[] = "sbtree1\n\x01\x00\x00\x00";
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_TREE, junk, sizeof(junk) - 1, &id, &err));
	sb_tree t = SB_TREE_INIT;
	ASSERT_ERR(sb_tree_load(s, &id, &t, &err), -EBADMSG);
	char hex[SB_HEX_LEN + 1];
	ASSERT_TRUE(strstr(err.msg, sb_id_to_hex(&id, hex)) != NULL);
	sb_store_free(s);
}

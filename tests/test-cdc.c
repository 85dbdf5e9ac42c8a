/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "sb-test.h"
#include "sb-test-store.h"
#include "buf.h"
#include "cdc.h"
#include "content.h"
#include "fileio.h"
#include "hash.h"
#include "store.h"

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

typedef struct cuts {
	size_t n;
	size_t len[4096];
} cuts;

static void cut_all(const uint8_t *p, size_t n, cuts *c)
{
	c->n = 0;
	while (n > 0) {
		size_t k = sb_cdc_cut(p, n);
		ASSERT_TRUE(k > 0 && k <= n);
		ASSERT_TRUE(c->n < 4096);
		c->len[c->n++] = k;
		p += k;
		n -= k;
	}
}

/* Feeds the data in pieces of random sizes, as a reader of a file would. */
static void cut_streaming(const uint8_t *p, size_t n, uint64_t seed, cuts *c)
{
	sb_cdc st;
	sb_cdc_init(&st);
	size_t cur = 0;
	uint64_t x = seed;
	c->n = 0;
	while (n > 0) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		size_t piece = 1 + (size_t)((x >> 33) % (700u << 10));
		if (piece > n)
			piece = n;
		while (piece > 0) {
			bool cut;
			size_t used = sb_cdc_feed(&st, p, piece, &cut);
			cur += used;
			p += used;
			n -= used;
			piece -= used;
			if (cut) {
				c->len[c->n++] = cur;
				cur = 0;
			}
		}
	}
	if (cur)
		c->len[c->n++] = cur;
}

TEST(cdc_is_deterministic_and_streaming_agrees)
{
	size_t n = 20u << 20;
	uint8_t *p = malloc(n);
	ASSERT_TRUE(p);
	fill_random(p, n, 1);
	static cuts a, b, c;
	cut_all(p, n, &a);
	cut_all(p, n, &b);
	ASSERT_EQ(a.n, b.n);
	ASSERT_MEMEQ(a.len, b.len, a.n * sizeof(size_t));
	for (uint64_t seed = 1; seed < 4; seed++) {
		cut_streaming(p, n, seed, &c);
		ASSERT_EQ(a.n, c.n);
		ASSERT_MEMEQ(a.len, c.len, a.n * sizeof(size_t));
	}
	free(p);
}

TEST(cdc_chunk_sizes_within_bounds)
{
	size_t n = 64u << 20;
	uint8_t *p = malloc(n);
	ASSERT_TRUE(p);
	fill_random(p, n, 7);
	static cuts a;
	cut_all(p, n, &a);
	for (size_t i = 0; i + 1 < a.n; i++) {
		ASSERT_TRUE(a.len[i] > SB_CDC_MIN);
		ASSERT_TRUE(a.len[i] <= SB_CDC_MAX);
	}
	ASSERT_TRUE(a.len[a.n - 1] <= SB_CDC_MAX);
	size_t avg = n / a.n;
	printf("# %zu chunks, average %zu KiB\n", a.n, avg >> 10);
	ASSERT_TRUE(avg > (512u << 10) && avg < (2u << 20));

	/* zeros: the hash settles, chunks are all alike and still bounded */
	memset(p, 0, n);
	cut_all(p, n, &a);
	for (size_t i = 0; i + 1 < a.n; i++) {
		ASSERT_TRUE(a.len[i] > SB_CDC_MIN && a.len[i] <= SB_CDC_MAX);
		ASSERT_EQ(a.len[i], a.len[0]);
	}
	free(p);
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(sb_id));
}

static size_t chunk_ids(const uint8_t *p, size_t n, sb_id *ids)
{
	size_t k = 0;
	while (n > 0) {
		size_t c = sb_cdc_cut(p, n);
		sb_sha256_buf(p, c, &ids[k++]);
		p += c;
		n -= c;
	}
	qsort(ids, k, sizeof(*ids), id_cmp);
	return k;
}

TEST(cdc_insertion_keeps_most_chunks)
{
	size_t n = 20u << 20;
	uint8_t *p = malloc(n + 1);
	ASSERT_TRUE(p);
	fill_random(p, n, 3);
	static sb_id a[256], b[256];
	size_t na = chunk_ids(p, n, a);
	memmove(p + 1001, p + 1000, n - 1000);
	p[1000] = 0x5a;
	size_t nb = chunk_ids(p, n + 1, b);
	size_t shared = 0;
	for (size_t i = 0; i < nb; i++)
		if (bsearch(&b[i], a, na, sizeof(sb_id), id_cmp))
			shared++;
	printf("# %zu of %zu chunks shared after a 1-byte insertion\n", shared, nb);
	ASSERT_TRUE(shared * 100 >= nb * 80);
	free(p);
}

/* ---- content ---- */

static void export_file(sb_store *s, const sb_id *id, uint64_t size, const char *path,
			sb_content_write_flags flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	sb_error err = SB_ERROR_INIT;
	if (sb_content_write_fd(s, id, size, fd, flags, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "export %s: %s", path, err.msg);
	close(fd);
}

static void round_trip(sb_store *s, const char *path, uint64_t size, sb_obj_type want_type)
{
	sb_id id, id2;
	uint64_t got;
	sb_test_store_file(s, path, &id, &got);
	ASSERT_EQ(got, size);
	sb_obj_type type;
	ASSERT_OK(sb_store_stat(s, &id, &type, NULL, NULL));
	ASSERT_EQ(type, want_type);

	/* hashing without storing, and storing from memory, agree */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_OK(lseek(fd, (off_t)(size / 2), SEEK_SET)); /* content is read from offset 0 */
	ASSERT_OK(sb_content_hash_fd(fd, &id2, &got, NULL));
	ASSERT_TRUE(sb_id_eq(&id, &id2));
	ASSERT_EQ(got, size);
	uint8_t *buf = malloc(size + 1);
	ASSERT_TRUE(buf);
	ASSERT_EQ(sb_pread_full(fd, buf, size + 1, 0), (ssize_t)size);
	close(fd);
	ASSERT_OK(sb_content_store_buf(s, buf, size, &id2, NULL));
	ASSERT_TRUE(sb_id_eq(&id, &id2));
	free(buf);

	/* the caller's stat: the same id; a stat that says more is read to EOF */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	struct stat st;
	ASSERT_OK(fstat(fd, &st));
	ASSERT_OK(sb_content_store_fd_stat(s, fd, &st, &id2, &got, NULL));
	ASSERT_TRUE(sb_id_eq(&id, &id2));
	ASSERT_EQ(got, size);
	st.st_size++;
	ASSERT_OK(sb_content_store_fd_stat(s, fd, &st, &id2, &got, NULL));
	ASSERT_TRUE(sb_id_eq(&id, &id2));
	ASSERT_EQ(got, size);
	close(fd);

	/* a pipe has no size to hint at */
	int pfd[2];
	ASSERT_OK(pipe2(pfd, O_CLOEXEC));
	pid_t pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		close(pfd[0]);
		int in = open(path, O_RDONLY | O_CLOEXEC);
		char b[65536];
		ssize_t n;
		while ((n = read(in, b, sizeof(b))) > 0)
			if (sb_write_full(pfd[1], b, (size_t)n) < 0)
				_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	ASSERT_OK(sb_content_hash_fd(pfd[0], &id2, &got, NULL));
	close(pfd[0]);
	ASSERT_TRUE(sb_id_eq(&id, &id2));
	ASSERT_EQ(got, size);

	char out[256];
	snprintf(out, sizeof(out), "%s.out", path);
	export_file(s, &id, size, out, 0);
	ASSERT_EQ(sb_test_sh("cmp -s '%s' '%s'", path, out), 0);
	char *a = sb_test_sh_out("sha256sum < '%s'", path),
	     *b = sb_test_sh_out("sha256sum < '%s'", out);
	ASSERT_STREQ(a, b);
	free(a);
	free(b);
	snprintf(out, sizeof(out), "%s.sparse", path);
	export_file(s, &id, size, out, SB_CONTENT_SPARSE);
	ASSERT_EQ(sb_test_sh("cmp -s '%s' '%s'", path, out), 0);
}

TEST(content_round_trip_sizes)
{
	sb_store *s = sb_test_open_store();
	static const struct {
		uint64_t size;
		sb_obj_type type;
	} cases[] = {
	    {0, SB_OBJ_BLOB},
	    {1, SB_OBJ_BLOB},
	    {4097, SB_OBJ_BLOB},
	    {SB_CONTENT_CHUNK_MIN_FILE - 1, SB_OBJ_BLOB},
	    {SB_CONTENT_CHUNK_MIN_FILE, SB_OBJ_BLOB},
	    {SB_CONTENT_CHUNK_MIN_FILE + 1, SB_OBJ_CHUNKS},
	    {(13u << 20) + 7, SB_OBJ_CHUNKS},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char path[64];
		snprintf(path, sizeof(path), "f%zu", i);
		ASSERT_EQ(sb_test_sh("head -c %llu /dev/urandom > %s",
				     (unsigned long long)cases[i].size, path),
			  0);
		round_trip(s, path, cases[i].size, cases[i].type);
	}
	/* compressible text, chunked */
	ASSERT_EQ(
	    sb_test_sh("for i in $(seq 1 400000); do echo \"line $i of some text\"; done > text"),
	    0);
	struct stat st;
	ASSERT_OK(stat("text", &st));
	round_trip(s, "text", (uint64_t)st.st_size, SB_OBJ_CHUNKS);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
}

static int count_visit(void *userdata, const sb_id *id)
{
	(*(int *)userdata)++;
	return 0;
}

TEST(content_foreach_and_bad_input)
{
	sb_store *s = sb_test_open_store();
	size_t n = 9u << 20;
	uint8_t *p = malloc(n);
	ASSERT_TRUE(p);
	fill_random(p, n, 11);
	sb_id id, small;
	ASSERT_OK(sb_content_store_buf(s, p, n, &id, NULL));
	ASSERT_OK(sb_content_store_buf(s, "tiny", 4, &small, NULL));
	int visits = 0;
	ASSERT_OK(sb_content_foreach_object(s, &id, count_visit, &visits, NULL));
	ASSERT_TRUE(visits >= 4); /* the list and at least 3 chunks */
	visits = 0;
	ASSERT_OK(sb_content_foreach_object(s, &small, count_visit, &visits, NULL));
	ASSERT_EQ(visits, 1);

	sb_error err = SB_ERROR_INIT;
	int fd = open("o1", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_ERR(sb_content_write_fd(s, &id, n + 1, fd, 0, &err), -EBADMSG);
	ASSERT_ERR(sb_content_write_fd(s, &small, 5, fd, 0, &err), -EBADMSG);
	close(fd);

	/* a chunk list whose sizes do not add up, and one that lies about a chunk's size */
	sb_buf b = SB_BUF_INIT;
	ASSERT_OK(sb_buf_append(&b, "sbchnk1\n", 8));
	ASSERT_OK(sb_buf_put_le32(&b, 1));
	ASSERT_OK(sb_buf_put_le64(&b, 5));
	ASSERT_OK(sb_buf_put_le32(&b, 4));
	ASSERT_OK(sb_buf_append(&b, small.b, SB_ID_LEN));
	sb_id bad;
	ASSERT_OK(sb_store_put(s, SB_OBJ_CHUNKS, b.data, b.len, &bad, NULL));
	fd = open("o2", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_ERR(sb_content_write_fd(s, &bad, UINT64_MAX, fd, 0, &err), -EBADMSG);
	ASSERT_TRUE(strstr(err.msg, "add up"));
	sb_buf_truncate(&b, 0);
	ASSERT_OK(sb_buf_append(&b, "sbchnk1\n", 8));
	ASSERT_OK(sb_buf_put_le32(&b, 1));
	ASSERT_OK(sb_buf_put_le64(&b, 3));
	ASSERT_OK(sb_buf_put_le32(&b, 3));
	ASSERT_OK(sb_buf_append(&b, small.b, SB_ID_LEN));
	ASSERT_OK(sb_store_put(s, SB_OBJ_CHUNKS, b.data, b.len, &bad, NULL));
	ASSERT_ERR(sb_content_write_fd(s, &bad, UINT64_MAX, fd, 0, &err), -EBADMSG);
	close(fd);
	sb_buf_release(&b);

	sb_id tree, missing;
	ASSERT_OK(sb_store_put(s, SB_OBJ_TREE, "t", 1, &tree, NULL));
	fd = open("o3", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_ERR(sb_content_write_fd(s, &tree, UINT64_MAX, fd, 0, &err), -EBADMSG);
	sb_store_hash(SB_OBJ_BLOB, "missing", 7, &missing);
	ASSERT_ERR(sb_content_write_fd(s, &missing, UINT64_MAX, fd, 0, &err), -ENOENT);
	close(fd);
	free(p);
	sb_store_free(s);
}

static uint64_t allocated(const char *path)
{
	struct stat st;
	ASSERT_OK(stat(path, &st));
	return (uint64_t)st.st_blocks * 512;
}

TEST(sparse_export_leaves_holes)
{
	/* 64 MiB of mostly zeros with islands of data, some unaligned */
	ASSERT_EQ(
	    sb_test_sh(
		"truncate -s 64M f && "
		"head -c 10000 /dev/urandom | dd of=f bs=1 seek=0 conv=notrunc status=none && "
		"head -c 5000 /dev/urandom | dd of=f bs=1 seek=10485763 conv=notrunc status=none "
		"&& "
		"head -c 3 /dev/urandom | dd of=f bs=1 seek=67108861 conv=notrunc status=none"),
	    0);
	sb_store *s = sb_test_open_store();
	sb_id id;
	uint64_t size;
	sb_test_store_file(s, "f", &id, &size);
	ASSERT_EQ(size, 64u << 20);
	export_file(s, &id, size, "sparse", SB_CONTENT_SPARSE);
	export_file(s, &id, size, "dense", 0);
	ASSERT_EQ(sb_test_sh("cmp -s f sparse && cmp -s f dense"), 0);
	uint64_t a = allocated("sparse"), d = allocated("dense");
	printf("# sparse export allocates %llu KiB, dense %llu KiB\n", (unsigned long long)a >> 10,
	       (unsigned long long)d >> 10);
	if (d < (32u << 20))
		SB_SKIP("this filesystem does not allocate written zeros either (%llu KiB)",
			(unsigned long long)d >> 10);
	ASSERT_TRUE(a < (1u << 20));

	/* a sparse file with a trailing hole: truncate makes the size right */
	ASSERT_EQ(sb_test_sh("printf data > g && truncate -s 9M g"), 0);
	sb_test_store_file(s, "g", &id, &size);
	export_file(s, &id, size, "g.out", SB_CONTENT_SPARSE);
	ASSERT_EQ(sb_test_sh("cmp -s g g.out"), 0);
	ASSERT_TRUE(allocated("g.out") < (64u << 10));
	sb_store_free(s);
}

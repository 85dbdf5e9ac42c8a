/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "sb-test.h"
#include "fileio.h"
#include "hash.h"
#include "idtab.h"
#include "store-internal.h"
#include "store.h"

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Object i: deterministic content of mixed kinds (text-like, random, zeros). */
static size_t make_obj(unsigned i, uint8_t *buf, size_t cap)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * (i + 1);
	size_t len = (size_t)(rng_next(&s) % (i % 10 == 0 ? cap : 4096));
	switch (i % 3) {
	case 0:
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rng_next(&s);
		break;
	case 1:
		for (size_t k = 0; k < len; k++)
			buf[k] = "the quick brown fox jumps\n"[(k + i) % 26];
		break;
	default:
		memset(buf, 0, len);
		if (len > 8)
			memcpy(buf, &i, sizeof(i));
	}
	return len;
}

static sb_store *open_store(sb_store_flags flags)
{
	sb_store *s = NULL;
	sb_error err = SB_ERROR_INIT;
	int r = sb_store_open("store", flags, &s, &err);
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "open: %s", err.msg);
	return s;
}

#define OBJ_CAP (300u << 10)

static void put_range(sb_store *s, unsigned from, unsigned to, sb_id *ids)
{
	uint8_t *buf = malloc(OBJ_CAP);
	ASSERT_TRUE(buf);
	for (unsigned i = from; i < to; i++) {
		size_t len = make_obj(i, buf, OBJ_CAP);
		sb_error err = SB_ERROR_INIT;
		int r = sb_store_put(s, (sb_obj_type)(1 + i % 3), buf, len, &ids[i], &err);
		if (r < 0)
			sb_test_fail(__FILE__, __LINE__, "put %u: %s", i, err.msg);
	}
	free(buf);
}

static void check_range(sb_store *s, unsigned from, unsigned to, const sb_id *ids)
{
	uint8_t *buf = malloc(OBJ_CAP);
	ASSERT_TRUE(buf);
	for (unsigned i = from; i < to; i++) {
		size_t len = make_obj(i, buf, OBJ_CAP), got_len = 0;
		void *data = NULL;
		sb_obj_type type = 0;
		sb_error err = SB_ERROR_INIT;
		int r = sb_store_get(s, &ids[i], 0, &type, &data, &got_len, &err);
		if (r < 0)
			sb_test_fail(__FILE__, __LINE__, "get %u: %s", i, err.msg);
		ASSERT_EQ(type, 1 + i % 3);
		ASSERT_EQ(got_len, len);
		ASSERT_MEMEQ(data, buf, len);
		free(data);
	}
	free(buf);
}

static int count_files(const char *suffix)
{
	DIR *d = opendir("store/packs");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Path of the only file with this suffix in store/packs (static buffer). */
static const char *only_file(const char *suffix)
{
	static char path[512];
	ASSERT_EQ(count_files(suffix), 1);
	DIR *d = opendir("store/packs");
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			snprintf(path, sizeof(path), "store/packs/%s", de->d_name);
	}
	closedir(d);
	return path;
}

static off_t file_size(const char *path)
{
	struct stat st;
	ASSERT_OK(stat(path, &st));
	return st.st_size;
}

static void flip_byte(const char *path, off_t off)
{
	chmod(path, 0644);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_OK(fd);
	uint8_t b;
	ASSERT_EQ(pread(fd, &b, 1, off), 1);
	b ^= 0xff;
	ASSERT_EQ(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

typedef struct problems {
	int n;
	int with_id;
	char last[512];
	sb_id last_id;
} problems;

static void on_problem(void *userdata, const sb_id *id, const char *what)
{
	problems *p = userdata;
	p->n++;
	if (id) {
		p->with_id++;
		p->last_id = *id;
	}
	snprintf(p->last, sizeof(p->last), "%s", what);
}

static int verify(sb_store *s, problems *p, uint64_t *checked)
{
	sb_error err = SB_ERROR_INIT;
	memset(p, 0, sizeof(*p));
	int r = sb_store_verify_objects(s, on_problem, p, checked, &err);
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "verify: %s", err.msg);
	ASSERT_EQ(r, p->n);
	return r;
}

static int count_cb(void *userdata, const sb_id *id, sb_obj_type type)
{
	(*(uint64_t *)userdata)++;
	return 0;
}

static uint64_t count_objects(sb_store *s)
{
	uint64_t n = 0;
	ASSERT_OK(sb_store_foreach(s, count_cb, &n, NULL));
	return n;
}

/* ---- tests ---- */

TEST(id_matches_independent_sha256)
{
	/* "sbobj" type:u8 len:le64 payload, hashed by coreutils. */
	static const char payload[] = "hello\n";
	sb_id id;
	sb_store_hash(SB_OBJ_BLOB, payload, 6, &id);
	ASSERT_EQ(sb_test_sh("printf 'sbobj\\001\\006\\0\\0\\0\\0\\0\\0\\0hello\\n' > obj"), 0);
	char *want = sb_test_sh_out("sha256sum obj | cut -c1-64");
	want[strcspn(want, "\n")] = 0;
	char hex[SB_HEX_LEN + 1];
	ASSERT_STREQ(sb_id_to_hex(&id, hex), want);
	free(want);
}

TEST(round_trip_many_objects)
{
	enum { N = 3000 };
	static sb_id ids[N];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	put_range(s, 0, N, ids);
	check_range(s, 0, N, ids); /* from the unflushed pack */
	sb_store_stats st;
	sb_store_get_stats(s, &st);
	ASSERT_EQ(st.objects_written + st.objects_deduped, N);
	ASSERT_EQ(st.objects_read, N);
	ASSERT_TRUE(st.bytes_written > 0);
	ASSERT_EQ(count_objects(s), st.objects_written);
	for (unsigned i = 0; i < N; i += 97) {
		sb_obj_type t;
		size_t len;
		ASSERT_TRUE(sb_store_has(s, &ids[i]));
		ASSERT_OK(sb_store_stat(s, &ids[i], &t, &len, NULL));
		ASSERT_EQ(t, 1 + i % 3);
	}
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);

	s = open_store(0);
	check_range(s, 0, N, ids);
	problems p;
	uint64_t checked = 0;
	ASSERT_EQ(verify(s, &p, &checked), 0);
	ASSERT_EQ(checked, count_objects(s));
	sb_store_free(s);
	ASSERT_EQ(count_files(".pack"), 1);
	ASSERT_EQ(count_files(".idx"), 1);
}

/*
 * Scratch mode: objects put meanwhile are found by get, has and stat, but
 * never reach a pack, even across a flush; objects already stored are
 * deduplicated as usual; ending it forgets the rest.
 */
TEST(scratch_objects_stay_in_memory)
{
	enum { N = 600 };
	static sb_id ids[N];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	put_range(s, 0, N / 2, ids);
	ASSERT_OK(sb_store_flush(s, NULL));
	uint64_t stored = count_objects(s);
	sb_store_stats before, after;
	sb_store_get_stats(s, &before);

	ASSERT_OK(sb_store_scratch_begin(s));
	ASSERT_EQ(sb_store_scratch_begin(s), -EBUSY);
	put_range(s, 0, N, ids); /* half known, half new */
	check_range(s, 0, N, ids);
	sb_obj_type t;
	size_t len;
	ASSERT_TRUE(sb_store_has(s, &ids[N - 1]));
	ASSERT_OK(sb_store_stat(s, &ids[N - 1], &t, &len, NULL));
	ASSERT_EQ(t, 1 + (N - 1) % 3);
	void *data = NULL;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_store_get(s, &ids[N - 1], t == SB_OBJ_TREE ? SB_OBJ_BLOB : SB_OBJ_TREE, NULL,
				&data, &len, &err),
		   -EBADMSG);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_get_stats(s, &after);
	ASSERT_EQ(after.objects_written, before.objects_written);
	ASSERT_EQ(after.objects_deduped - before.objects_deduped, N / 2);
	ASSERT_EQ(count_objects(s), stored);
	sb_store_scratch_end(s);

	ASSERT_FALSE(sb_store_has(s, &ids[N - 1]));
	ASSERT_TRUE(sb_store_has(s, &ids[0]));
	ASSERT_ERR(sb_store_get(s, &ids[N - 1], 0, NULL, &data, &len, &err), -ENOENT);
	sb_store_free(s);
	ASSERT_EQ(count_files(".pack"), 1);
}

TEST(missing_object_and_wrong_type)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id id, other;
	ASSERT_OK(sb_store_put(s, SB_OBJ_TREE, "tree!", 5, &id, NULL));
	sb_store_hash(SB_OBJ_BLOB, "nope", 4, &other);
	void *data = NULL;
	size_t len;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_store_get(s, &other, 0, NULL, &data, &len, &err), -ENOENT);
	char hex[SB_HEX_LEN + 1];
	ASSERT_TRUE(strstr(err.msg, sb_id_to_hex(&other, hex)));
	ASSERT_ERR(sb_store_get(s, &id, SB_OBJ_BLOB, NULL, &data, &len, &err), -EBADMSG);
	ASSERT_OK(sb_store_get(s, &id, SB_OBJ_TREE, NULL, &data, &len, &err));
	ASSERT_EQ(len, 5);
	ASSERT_MEMEQ(data, "tree!", 5);
	free(data);
	ASSERT_ERR(sb_store_put(s, (sb_obj_type)9, "x", 1, &id, NULL), -EINVAL);
	sb_store_free(s);

	/* read-only: no writes, and no store directory created on the way */
	s = open_store(0);
	ASSERT_ERR(sb_store_put(s, SB_OBJ_BLOB, "x", 1, &id, NULL), -EROFS);
	sb_store_free(s);
	sb_store *none = NULL;
	ASSERT_ERR(sb_store_open("absent", 0, &none, &err), -ENOENT);
	ASSERT_TRUE(strstr(err.msg, "absent"));
	ASSERT_OK(sb_store_open("a/b/c", SB_STORE_CREATE | SB_STORE_WRITE, &none, NULL));
	sb_store_free(none);
}

TEST(empty_and_max_sized_objects)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "", 0, &id, NULL));
	void *data;
	size_t len = 99;
	ASSERT_OK(sb_store_get(s, &id, SB_OBJ_BLOB, NULL, &data, &len, NULL));
	ASSERT_EQ(len, 0);
	free(data);
	uint8_t *big = calloc(1, SB_OBJ_MAX + 1);
	ASSERT_TRUE(big);
	big[12345] = 1;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, big, SB_OBJ_MAX, &id, NULL));
	ASSERT_ERR(sb_store_put(s, SB_OBJ_BLOB, big, SB_OBJ_MAX + 1, &id, NULL), -EFBIG);
	ASSERT_OK(sb_store_get(s, &id, SB_OBJ_BLOB, NULL, &data, &len, NULL));
	ASSERT_EQ(len, SB_OBJ_MAX);
	ASSERT_MEMEQ(data, big, SB_OBJ_MAX);
	free(data);
	free(big);
	sb_store_free(s);
}

TEST(dedup_within_writer_and_across_opens)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id a, b;
	static const char text[] = "same bytes, same id";
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, text, sizeof(text), &a, NULL));
	off_t size1 = file_size(only_file(".pack"));
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, text, sizeof(text), &b, NULL));
	ASSERT_TRUE(sb_id_eq(&a, &b));
	ASSERT_EQ(file_size(only_file(".pack")), size1);
	/* same bytes, other type: another object */
	ASSERT_OK(sb_store_put(s, SB_OBJ_TREE, text, sizeof(text), &b, NULL));
	ASSERT_FALSE(sb_id_eq(&a, &b));
	sb_store_stats st;
	sb_store_get_stats(s, &st);
	ASSERT_EQ(st.objects_written, 2);
	ASSERT_EQ(st.objects_deduped, 1);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);

	s = open_store(SB_STORE_WRITE);
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, text, sizeof(text), &b, NULL));
	ASSERT_OK(sb_store_put(s, SB_OBJ_TREE, text, sizeof(text), &b, NULL));
	sb_store_get_stats(s, &st);
	ASSERT_EQ(st.objects_written, 0);
	ASSERT_EQ(st.objects_deduped, 2);
	ASSERT_OK(sb_store_flush(s, NULL)); /* nothing to write: no new pack */
	sb_store_free(s);
	ASSERT_EQ(count_files(".pack"), 1);
}

TEST(two_processes_write_at_once)
{
	enum { N = 1200 };
	static sb_id ids[N + 400];
	sb_store_free(open_store(SB_STORE_WRITE | SB_STORE_CREATE));
	pid_t pids[2];
	for (int c = 0; c < 2; c++) {
		pids[c] = fork();
		ASSERT_OK(pids[c]);
		if (pids[c] == 0) {
			/* both write [0, N) in opposite orders plus 200 objects of their own */
			sb_store *s = open_store(SB_STORE_WRITE);
			uint8_t *buf = malloc(OBJ_CAP);
			for (unsigned k = 0; k < N + 200; k++) {
				unsigned i = k < N ? (c ? N - 1 - k : k) : N + 200 * c + (k - N);
				size_t len = make_obj(i, buf, OBJ_CAP);
				sb_id id;
				if (sb_store_put(s, (sb_obj_type)(1 + i % 3), buf, len, &id, NULL) <
				    0)
					_exit(1);
			}
			if (sb_store_flush(s, NULL) < 0)
				_exit(2);
			sb_store_free(s);
			free(buf);
			_exit(0);
		}
	}
	for (int c = 0; c < 2; c++) {
		int st;
		ASSERT_EQ(waitpid(pids[c], &st, 0), pids[c]);
		ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	ASSERT_EQ(count_files(".pack"), 2);
	ASSERT_EQ(count_files(".idx"), 2);

	sb_store *s = open_store(SB_STORE_WRITE);
	put_range(s, 0, N + 400, ids); /* computes the ids; all must dedup */
	sb_store_stats st;
	sb_store_get_stats(s, &st);
	ASSERT_EQ(st.objects_written, 0);
	check_range(s, 0, N + 400, ids);
	uint64_t unique = count_objects(s);
	ASSERT_TRUE(unique <= N + 400);
	problems p;
	uint64_t checked;
	ASSERT_EQ(verify(s, &p, &checked), 0);
	ASSERT_TRUE(checked >= unique);
	sb_store_free(s);
}

/*
 * gc.lock: every open store holds it shared, gc exclusively. util-linux
 * flock(1) is the oracle for what the file's lock is.
 */
TEST(gc_lock_excludes_every_other_open)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	ASSERT_EQ(sb_test_sh("flock -n -s store/gc.lock true"), 0);
	ASSERT_EQ(sb_test_sh("flock -n -x store/gc.lock true"), 1);
	sb_store *g = NULL;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_store_open("store", SB_STORE_WRITE | SB_STORE_EXCLUSIVE, &g, &err), -EBUSY);
	ASSERT_TRUE(strstr(err.msg, "in use by another snapbox") != NULL);
	sb_store_free(s);

	/*
	 * A plain open waits while the gc holds the store, then goes on. The
	 * child is forked first: one forked later would share the gc's lock.
	 */
	int go[2], done[2];
	ASSERT_OK(pipe(go));
	ASSERT_OK(pipe(done));
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		sb_store_free(open_store(0));
		_exit(write(done[1], "k", 1) == 1 ? 0 : 1);
	}
	g = open_store(SB_STORE_WRITE | SB_STORE_EXCLUSIVE);
	ASSERT_EQ(sb_test_sh("flock -n -s store/gc.lock true"), 1);
	ASSERT_EQ(write(go[1], "g", 1), 1);
	struct pollfd p = {.fd = done[0], .events = POLLIN};
	ASSERT_EQ(poll(&p, 1, 300), 0);
	sb_store_free(g);
	ASSERT_EQ(poll(&p, 1, 30000), 1);
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A sweep's live(): the even-numbered objects of ids[0..n). */
typedef struct evens {
	const sb_id *ids;
	unsigned n;
} evens;

/* One sweep of s (opened exclusively), from its indexes to its removals. */
static void sweep_store(sb_store *s, sb_store_live_fn live, void *userdata, bool dry_run,
			sb_sweep_stats *st)
{
	sb_sweep *w = NULL;
	sb_error err = SB_ERROR_INIT;
	if (sb_sweep_begin(s, &w, &err) < 0 ||
	    sb_sweep_run(w, live, userdata, dry_run, st, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "sweep: %s", err.msg);
	sb_sweep_free(w);
}

static bool even_live(void *userdata, const sb_id *id)
{
	const evens *e = userdata;
	for (unsigned i = 0; i < e->n; i += 2)
		if (sb_id_eq(&e->ids[i], id))
			return true;
	return false;
}

/*
 * A sweep keeps every live object once and readable, drops the rest, and
 * merges small packs: two packs holding the same objects (what a gc cut
 * short between writing its new pack and removing the old leaves) and a
 * third of other objects end as one pack.
 */
TEST(sweep_keeps_live_objects_once_and_drops_the_rest)
{
	enum { N = 120 };
	sb_id ids[N];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	put_range(s, 0, 80, ids);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	const char *idx = only_file(".idx");
	ASSERT_EQ(sb_test_sh("cd store/packs && p=$(basename %s .idx) && "
			     "cp $p.pack pack-00000000000000000000000000000001.pack && "
			     "cp $p.idx pack-00000000000000000000000000000001.idx",
			     idx),
		  0);
	s = open_store(SB_STORE_WRITE);
	put_range(s, 80, N, ids);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	ASSERT_EQ(count_files(".idx"), 3);
	uint64_t before = count_objects(s = open_store(0));
	sb_store_free(s);
	ASSERT_EQ(before, N); /* foreach visits each id once */

	s = open_store(SB_STORE_WRITE | SB_STORE_EXCLUSIVE);
	evens e = {ids, N};
	sb_sweep_stats st;
	sweep_store(s, even_live, &e, true, &st);
	ASSERT_EQ(count_files(".idx"), 3); /* a dry run changes nothing */
	sweep_store(s, even_live, &e, false, &st);
	sb_store_free(s);
	ASSERT_EQ(count_files(".idx"), 1);
	ASSERT_EQ(count_files(".pack"), 1);
	ASSERT_EQ(st.objects_copied, N / 2);
	ASSERT_EQ(st.objects_dropped, 80 + 40 / 2); /* both copies of the first 80's odd half */
	ASSERT_EQ(st.packs_before, 3);
	ASSERT_EQ(st.packs_after, 1);

	s = open_store(0);
	ASSERT_EQ(count_objects(s), N / 2);
	for (unsigned i = 0; i < N; i += 2)
		check_range(s, i, i + 1, ids);
	for (unsigned i = 1; i < N; i += 2)
		ASSERT_FALSE(sb_store_has(s, &ids[i]));
	problems p = {0};
	uint64_t checked = 0;
	ASSERT_EQ(verify(s, &p, &checked), 0);
	ASSERT_EQ(checked, N / 2);
	sb_store_free(s);
}

static bool all_live(void *userdata, const sb_id *id)
{
	return true;
}

static bool live_unless(void *userdata, const sb_id *id)
{
	return !sb_id_eq(userdata, id);
}

/* Puts len random bytes (stored raw: a flipped byte is a hash mismatch). */
static sb_id put_random(sb_store *s, size_t len)
{
	uint8_t *buf = malloc(len);
	ASSERT_TRUE(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rand();
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, buf, len, &id, NULL));
	free(buf);
	return id;
}

static void sweep_all(sb_store_live_fn live, void *userdata, sb_sweep_stats *st)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_EXCLUSIVE);
	sweep_store(s, live, userdata, false, st);
	sb_store_free(s);
}

/*
 * Two records of one object, one of them damaged: whichever pack holds the
 * damaged one, the sweep keeps the good one.
 */
TEST(sweep_keeps_the_good_one_of_two_copies)
{
	for (int bad = 1; bad <= 2; bad++) {
		ASSERT_EQ(sb_test_sh("rm -rf store"), 0);
		sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
		sb_id x = put_random(s, 100000);
		ASSERT_OK(sb_store_flush(s, NULL));
		sb_store_free(s);
		/* The only record sits right after the pack header: flip a payload byte. */
		ASSERT_EQ(sb_test_sh("cd store/packs && p=$(basename pack-*.idx .idx) && "
				     "for n in 1 2; do q=pack-0000000000000000000000000000000$n; "
				     "cp $p.pack $q.pack && cp $p.idx $q.idx; done && rm $p.* && "
				     "chmod u+w pack-*2.pack pack-*1.pack"),
			  0);
		char path[128];
		snprintf(path, sizeof(path),
			 "store/packs/pack-0000000000000000000000000000000%d.pack", bad);
		flip_byte(path, SB_PACK_HEADER_LEN + SB_REC_HEADER_LEN + 500);

		sb_sweep_stats st;
		sweep_all(all_live, NULL, &st);
		ASSERT_EQ(st.objects_damaged, 0);
		ASSERT_EQ(st.objects_copied, 1);
		ASSERT_EQ(count_files(".idx"), 1);
		s = open_store(0);
		problems p;
		uint64_t checked = 0;
		ASSERT_EQ(verify(s, &p, &checked), 0);
		ASSERT_EQ(checked, 1);
		void *data = NULL;
		size_t len = 0;
		ASSERT_OK(sb_store_get(s, &x, SB_OBJ_BLOB, NULL, &data, &len, NULL));
		ASSERT_EQ(len, 100000);
		free(data);
		sb_store_free(s);
	}
}

/*
 * A pack that stays holds a damaged record of a live object; a pack being
 * rewritten holds a good one: the good one is copied, not dropped in
 * favour of the copy that stays.
 */
TEST(sweep_copies_a_good_record_when_the_kept_one_is_damaged)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	srand(7);
	sb_id x = put_random(s, 50000);
	put_random(s, 50000); /* y, live */
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	ASSERT_EQ(sb_test_sh("chmod u+w store/packs/pack-*.pack"), 0);
	flip_byte(only_file(".pack"), SB_PACK_HEADER_LEN + SB_REC_HEADER_LEN + 500);

	/* A second pack, written apart: x again, and z, which is garbage. */
	sb_store *s2 = NULL;
	ASSERT_OK(sb_store_open("store2", SB_STORE_WRITE | SB_STORE_CREATE, &s2, NULL));
	srand(7); /* the same bytes as x */
	sb_id x2 = put_random(s2, 50000);
	ASSERT_TRUE(sb_id_eq(&x, &x2));
	sb_id z = put_random(s2, 200000);
	ASSERT_OK(sb_store_flush(s2, NULL));
	sb_store_free(s2);
	ASSERT_EQ(sb_test_sh("mv store2/packs/pack-* store/packs/"), 0);

	sb_store *probe = open_store(SB_STORE_WRITE | SB_STORE_EXCLUSIVE);
	probe->small_pack = 0; /* no pack is small: the first stays, the second is 4/5 garbage */
	sb_sweep_stats st;
	sweep_store(probe, live_unless, &z, false, &st);
	sb_store_free(probe);
	ASSERT_EQ(st.packs_rewritten, 1);
	ASSERT_EQ(st.objects_copied, 1);
	ASSERT_EQ(st.objects_damaged, 0);
	/* The pack kept (its damaged x, and y) and the new one (the good x). */
	s = open_store(0);
	problems p;
	uint64_t checked = 0;
	ASSERT_EQ(verify(s, &p, &checked), 1);
	ASSERT_EQ(checked, 3);
	ASSERT_TRUE(sb_id_eq(&p.last_id, &x));
	ASSERT_FALSE(sb_store_has(s, &z));
	sb_store_free(s);
}

TEST(second_writer_sees_flushed_objects)
{
	enum { N = 300 };
	static sb_id ids[2 * N];
	sb_store *a = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_store *b = open_store(SB_STORE_WRITE); /* opened before a writes */
	put_range(a, 0, N, ids);
	ASSERT_FALSE(sb_store_has(b, &ids[0]));
	ASSERT_OK(sb_store_flush(a, NULL));
	/* b finds a's objects once it re-reads the index list on a miss */
	check_range(b, 0, N, ids);
	ASSERT_TRUE(sb_store_has(b, &ids[1]));
	put_range(b, 0, 2 * N, ids);
	sb_store_stats st;
	sb_store_get_stats(b, &st);
	ASSERT_EQ(st.objects_written + st.objects_deduped, 2 * N);
	ASSERT_TRUE(st.objects_deduped >= N);
	/* a keeps appending to its pack after its flush; the next flush rewrites its idx */
	put_range(a, N, 2 * N, ids);
	ASSERT_OK(sb_store_flush(a, NULL));
	ASSERT_OK(sb_store_flush(b, NULL));
	sb_store_free(a);
	sb_store_free(b);
	ASSERT_EQ(count_files(".idx"), 2);
	sb_store *c = open_store(0);
	check_range(c, 0, 2 * N, ids);
	problems p;
	ASSERT_EQ(verify(c, &p, NULL), 0);
	sb_store_free(c);
}

TEST(unflushed_pack_is_ignored)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id kept, lost;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "kept", 4, &kept, NULL));
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	s = open_store(SB_STORE_WRITE);
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "lost", 4, &lost, NULL));
	sb_store_free(s); /* no flush: as if the process died */
	ASSERT_EQ(count_files(".pack"), 2);
	ASSERT_EQ(count_files(".idx"), 1);

	s = open_store(SB_STORE_WRITE);
	ASSERT_TRUE(sb_store_has(s, &kept));
	ASSERT_FALSE(sb_store_has(s, &lost));
	void *data;
	size_t len;
	ASSERT_ERR(sb_store_get(s, &lost, 0, NULL, &data, &len, NULL), -ENOENT);
	problems p;
	uint64_t checked;
	ASSERT_EQ(verify(s, &p, &checked), 0);
	ASSERT_EQ(checked, 1);
	/* storing it again works and is durable this time */
	sb_id again;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "lost", 4, &again, NULL));
	ASSERT_TRUE(sb_id_eq(&again, &lost));
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	s = open_store(0);
	ASSERT_TRUE(sb_store_has(s, &lost));
	sb_store_free(s);
}

/* Flip every byte of a lone record in turn: each flip must be caught. */
static void flip_every_byte(const void *payload, size_t len)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, payload, len, &id, NULL));
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	char hex[SB_HEX_LEN + 1];
	sb_id_to_hex(&id, hex);
	const char *pack = only_file(".pack");
	char pack_name[128];
	snprintf(pack_name, sizeof(pack_name), "%s", strrchr(pack, '/') + 1);
	off_t size = file_size(pack);
	ASSERT_TRUE(size > SB_PACK_HEADER_LEN + SB_REC_HEADER_LEN);

	for (off_t off = SB_PACK_HEADER_LEN; off < size; off++) {
		flip_byte(pack, off);
		s = open_store(0);
		void *data = NULL;
		size_t got;
		sb_error err = SB_ERROR_INIT;
		int r = sb_store_get(s, &id, 0, NULL, &data, &got, &err);
		if (r != -EBADMSG)
			sb_test_fail(__FILE__, __LINE__, "flip at %lld of %lld: get = %d (%s)",
				     (long long)off, (long long)size, r, err.msg);
		ASSERT_TRUE(strstr(err.msg, hex));
		ASSERT_TRUE(strstr(err.msg, pack_name));
		problems p;
		ASSERT_EQ(verify(s, &p, NULL), 1);
		ASSERT_EQ(p.with_id, 1);
		ASSERT_TRUE(sb_id_eq(&p.last_id, &id));
		sb_store_free(s);
		flip_byte(pack, off);
	}
	s = open_store(0);
	void *data;
	size_t got;
	ASSERT_OK(sb_store_get(s, &id, 0, NULL, &data, &got, NULL));
	ASSERT_EQ(got, len);
	ASSERT_MEMEQ(data, payload, len);
	free(data);
	sb_store_free(s);
}

TEST(flipped_byte_in_compressed_record)
{
	char text[2000];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "abcabcabd\n"[i % 10];
	flip_every_byte(text, sizeof(text));
}

TEST(flipped_byte_in_raw_record)
{
	uint8_t rnd[300];
	uint64_t s = 42;
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)rng_next(&s);
	flip_every_byte(rnd, sizeof(rnd));
}

/*
 * The id table: every id inserted is found, others are not, and ids a
 * hostile workspace ground to agree in all but 16 middle bits of what a
 * table could index by (the first 8 bytes) still spread instead of piling
 * into one probe run.
 */
TEST(id_table_spreads_ground_ids)
{
	enum { N = 4000 };
	static sb_id ids[N];
	sb_idtab t;
	sb_idtab_init(&t);
	for (size_t i = 0; i < N; i++) {
		memset(&ids[i], 0xa5, sizeof(ids[i]));
		uint64_t h = 0x1234567800009abcull | (uint64_t)i << 16; /* bits 16-31 vary */
		memcpy(ids[i].b, &h, sizeof(h));
		ASSERT_EQ(sb_idtab_find(&t, &ids[i], ids, sizeof(ids[0])), 0);
		ASSERT_OK(sb_idtab_reserve(&t, i, ids, sizeof(ids[0])));
		sb_idtab_insert(&t, &ids[i], i);
	}
	for (size_t i = 0; i < N; i++)
		ASSERT_EQ(sb_idtab_find(&t, &ids[i], ids, sizeof(ids[0])), i + 1);
	sb_id other;
	memset(&other, 0x5a, sizeof(other));
	ASSERT_EQ(sb_idtab_find(&t, &other, ids, sizeof(ids[0])), 0);
	size_t run = 0, longest = 0;
	for (size_t k = 0; k < 2 * t.size; k++) { /* twice round: a run may wrap */
		run = t.slots[k & (t.size - 1)] ? run + 1 : 0;
		longest = run > longest ? run : longest;
	}
	ASSERT_TRUE(longest < 100);
	sb_idtab_release(&t);
}

/*
 * Objects under 512 bytes are stored raw (zstd's fixed cost outweighs its
 * gain there), larger compressible ones compressed: the bytes appended say.
 */
TEST(small_objects_stored_raw)
{
	char text[4096];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "const value = 1;\n"[i % 17];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_store_stats st;
	uint64_t before = 0;
	static const size_t lens[] = {100, 511, 512, 4096};
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		sb_id id;
		text[0] = (char)('a' + k); /* a new object each time */
		ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, text, lens[k], &id, NULL));
		sb_store_get_stats(s, &st);
		uint64_t stored = st.bytes_written - before - SB_REC_HEADER_LEN;
		before = st.bytes_written;
		if (lens[k] < 512)
			ASSERT_EQ(stored, lens[k]);
		else
			ASSERT_TRUE(stored < lens[k] / 4);
		void *data;
		size_t got;
		ASSERT_OK(sb_store_get(s, &id, 0, NULL, &data, &got, NULL));
		ASSERT_EQ(got, lens[k]);
		ASSERT_MEMEQ(data, text, lens[k]);
		free(data);
	}
	sb_store_free(s);
}

/*
 * 1 MiB of one kind: 0 lines of words, 1 rows of numbers, 2 random bytes,
 * 3 half words, half random (level 1 costs ~2% more bytes there).
 */
static void fill_kind(int kind, uint64_t seed, uint8_t *buf, size_t len)
{
	if (kind == 3) {
		fill_kind(0, seed, buf, len / 2);
		fill_kind(2, seed, buf + len / 2, len - len / 2);
		return;
	}
	static char words[300][10];
	uint64_t vs = 5;
	for (int w = 0; w < 300; w++) {
		int wl = 3 + (int)(rng_next(&vs) % 7);
		for (int c = 0; c < wl; c++)
			words[w][c] = (char)('a' + rng_next(&vs) % 26);
		words[w][wl] = 0;
	}
	size_t n = 0;
	while (n < len) {
		char line[160];
		uint64_t a = rng_next(&seed), b = rng_next(&seed);
		int k = 0;
		if (kind == 0)
			for (int w = 0, nw = 6 + (int)(a % 7); w < nw; w++)
				k +=
				    snprintf(line + k, sizeof(line) - (size_t)k, "%s%c",
					     words[rng_next(&seed) % 300], w + 1 < nw ? ' ' : '\n');
		else if (kind == 1)
			k = snprintf(line, sizeof(line), "%u,%u.%02u,%u,%u\n",
				     (unsigned)(a % 100000), (unsigned)(b % 1000),
				     (unsigned)(a % 100), (unsigned)(b % 10), (unsigned)(a >> 40));
		else
			for (; k < 8; k++)
				line[k] = (char)(a >> (8 * k));
		size_t take = MIN((size_t)k, len - n);
		memcpy(buf + n, line, take);
		n += take;
	}
}

/* What the store keeps of len bytes at level: compressed, or raw when that saves under 1/32. */
static size_t stored_at(const uint8_t *buf, size_t len, int level)
{
	size_t cap = ZSTD_compressBound(len);
	uint8_t *out = malloc(cap);
	ASSERT_TRUE(out);
	size_t n = ZSTD_compress(out, cap, buf, len, level);
	ASSERT_FALSE(ZSTD_isError(n));
	free(out);
	return n < len - len / 32 ? n : len;
}

/*
 * A large file's chunks keep the level its first new chunk suits: level 1
 * when that costs at most 1/25 more bytes than level 2, judged here by
 * libzstd itself. A chunk already stored decides nothing.
 */
TEST(chunk_level_follows_the_first_new_chunk)
{
	enum { LEN = 1 << 20 };
	static uint8_t buf[LEN];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	bool saw[3] = {false, false, false};
	for (int kind = 0; kind < 4; kind++) {
		sb_put_hint hint = {0};
		sb_store_stats st;
		sb_id id;
		for (int chunk = 0; chunk < 3; chunk++) {
			fill_kind(kind, 1000 * (uint64_t)kind + (uint64_t)chunk + 1, buf, LEN);
			size_t n1 = stored_at(buf, LEN, 1), n2 = stored_at(buf, LEN, 2);
			int want = hint.level ? hint.level : n1 <= n2 + n2 / 25 ? 1 : 2;
			if (chunk == 0) {
				/* Present already: no probe, no level. */
				ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, buf, LEN, &id, NULL));
				ASSERT_OK(sb_store_put_hinted(s, SB_OBJ_BLOB, buf, LEN, &hint, &id,
							      NULL));
				ASSERT_EQ(hint.level, 0);
				continue;
			}
			sb_store_get_stats(s, &st);
			uint64_t before = st.bytes_written;
			ASSERT_OK(sb_store_put_hinted(s, SB_OBJ_BLOB, buf, LEN, &hint, &id, NULL));
			sb_store_get_stats(s, &st);
			ASSERT_EQ(hint.level, want);
			ASSERT_EQ(st.bytes_written - before,
				  SB_REC_HEADER_LEN + (want == 1 ? n1 : n2));
			void *data;
			size_t got;
			ASSERT_OK(sb_store_get(s, &id, SB_OBJ_BLOB, NULL, &data, &got, NULL));
			ASSERT_EQ(got, LEN);
			ASSERT_MEMEQ(data, buf, LEN);
			free(data);
		}
		saw[hint.level] = true;
	}
	/* The kinds were chosen so that both outcomes are exercised. */
	ASSERT_TRUE(saw[1]);
	ASSERT_TRUE(saw[2]);
	sb_store_free(s);
}

/* A whole blob under 16 KiB is kept at level 1, a larger one or a tree at level 2. */
TEST(whole_blob_level_by_size)
{
	static uint8_t buf[20000];
	fill_kind(0, 77, buf, sizeof(buf));
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	int telling = 0;
	static const struct {
		sb_obj_type type;
		size_t len;
		int level;
	} cases[] = {
	    {SB_OBJ_BLOB, 4000, 1},	{SB_OBJ_BLOB, 9000, 1},	 {SB_OBJ_BLOB, (16 << 10) - 1, 1},
	    {SB_OBJ_BLOB, 16 << 10, 2}, {SB_OBJ_BLOB, 20000, 2}, {SB_OBJ_TREE, 4000, 2},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		sb_store_stats st;
		sb_store_get_stats(s, &st);
		uint64_t before = st.bytes_written;
		sb_id id;
		ASSERT_OK(sb_store_put(s, cases[k].type, buf, cases[k].len, &id, NULL));
		sb_store_get_stats(s, &st);
		size_t want = stored_at(buf, cases[k].len, cases[k].level);
		ASSERT_EQ(st.bytes_written - before, SB_REC_HEADER_LEN + want);
		/* Where the levels differ on these bytes, the size says which was used. */
		if (want != stored_at(buf, cases[k].len, 3 - cases[k].level))
			telling++;
	}
	printf("# %d of the cases tell the levels apart\n", telling);
	ASSERT_TRUE(telling >= 4);
	sb_store_free(s);
}

TEST(flipped_byte_named_by_verify_among_many)
{
	enum { N = 200 };
	static sb_id ids[N];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	put_range(s, 0, N, ids);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	const char *pack = only_file(".pack");
	flip_byte(pack, file_size(pack) - 1); /* inside the last record */
	s = open_store(0);
	problems p;
	uint64_t checked;
	ASSERT_EQ(verify(s, &p, &checked), 1);
	ASSERT_EQ(checked, count_objects(s));
	void *data;
	size_t len;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_store_get(s, &p.last_id, 0, NULL, &data, &len, &err), -EBADMSG);
	printf("# %s\n# verify: %s\n", err.msg, p.last);
	sb_store_free(s);
}

TEST(truncated_pack)
{
	enum { N = 100 };
	static sb_id ids[N];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	put_range(s, 0, N, ids);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	const char *pack = only_file(".pack");
	off_t size = file_size(pack);
	ASSERT_OK(truncate(pack, size - 5000));
	s = open_store(0);
	problems p;
	int n = verify(s, &p, NULL);
	ASSERT_TRUE(n >= 1);
	ASSERT_TRUE(strstr(p.last, "truncated"));
	ASSERT_TRUE(strstr(p.last, "past the end"));
	void *data;
	size_t len;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_store_get(s, &p.last_id, 0, NULL, &data, &len, &err), -EBADMSG);
	ASSERT_TRUE(strstr(err.msg, "truncated"));
	sb_store_free(s);
}

/* A store of n objects in one pack whose idx has byte off flipped; its file name in name. */
static void store_with_damaged_idx(sb_id *ids, unsigned n, off_t off, char name[128])
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	put_range(s, 0, n, ids);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	const char *idx = only_file(".idx");
	snprintf(name, 128, "%s", strrchr(idx, '/') + 1);
	flip_byte(idx, off);
}

TEST(corrupt_idx_checksum)
{
	enum { N = 50 };
	static sb_id ids[N];
	char idx_name[128];
	store_with_damaged_idx(ids, N, SB_IDX_HEADER_LEN + 7, idx_name);

	/*
	 * Open maps indexes without hashing them (verify does): the damaged
	 * entry's id is not one anybody asks for, the others still work, and
	 * verify names the index.
	 */
	sb_store *s = open_store(SB_STORE_WRITE);
	void *data;
	size_t len;
	ASSERT_OK(sb_store_get(s, &ids[3], 0, NULL, &data, &len, NULL));
	free(data);
	problems p;
	ASSERT_EQ(verify(s, &p, NULL), 1);
	ASSERT_EQ(p.with_id, 0);
	ASSERT_TRUE(strstr(p.last, idx_name));
	ASSERT_TRUE(strstr(p.last, "checksum mismatch"));
	sb_store_free(s);
}

/* An index whose header is damaged is unusable: a miss names it. */
TEST(corrupt_idx_header)
{
	enum { N = 50 };
	static sb_id ids[N];
	char idx_name[128];
	store_with_damaged_idx(ids, N, 13, idx_name); /* the count */

	sb_store *s = open_store(SB_STORE_WRITE); /* open still works: verify must run */
	ASSERT_FALSE(sb_store_has(s, &ids[3]));
	void *data;
	size_t len;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_store_get(s, &ids[3], 0, NULL, &data, &len, &err), -EBADMSG);
	ASSERT_TRUE(strstr(err.msg, idx_name));
	ASSERT_TRUE(strstr(err.msg, "does not match size"));
	problems p;
	ASSERT_EQ(verify(s, &p, NULL), 1);
	ASSERT_TRUE(strstr(p.last, idx_name));
	uint64_t n = 0;
	ASSERT_ERR(sb_store_foreach(s, count_cb, &n, &err), -EBADMSG);
	sb_store_free(s);
}

/* An idx with a valid checksum whose entry claims ~4 GiB: rejected, never allocated. */
TEST(huge_length_fields_do_not_allocate)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "small", 5, &id, NULL));
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	const char *idx = only_file(".idx");
	char *data;
	size_t len;
	ASSERT_OK(sb_read_file_at(AT_FDCWD, idx, 1 << 20, &data, &len, NULL));
	ASSERT_EQ(len, SB_IDX_HEADER_LEN + SB_IDX_ENTRY_LEN + SB_IDX_TRAILER_LEN);
	uint8_t *e = (uint8_t *)data + SB_IDX_HEADER_LEN;
	memset(e + 40, 0xff, 8); /* raw_len and stored_len */
	sb_id sum;
	sb_sha256_buf(data, len - SB_IDX_TRAILER_LEN, &sum);
	memcpy(data + len - SB_IDX_TRAILER_LEN, sum.b, SB_ID_LEN);
	chmod(idx, 0644);
	ASSERT_OK(sb_write_atomic(AT_FDCWD, idx, data, len, 0444, 0, NULL));
	free(data);

	s = open_store(0);
	void *obj;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_store_get(s, &id, 0, NULL, &obj, &len, &err), -EBADMSG);
	problems p;
	ASSERT_EQ(verify(s, &p, NULL), 1);
	ASSERT_TRUE(strstr(p.last, "invalid"));

	/* The record reader bounds lengths itself too. */
	sb_entry bogus = {.id = id,
			  .offset = SB_PACK_HEADER_LEN,
			  .raw_len = 0xfffffff0u,
			  .stored_len = 0xfffffff0u,
			  .type = SB_OBJ_BLOB,
			  .flags = SB_REC_ZSTD};
	sb_zctx z = {0};
	sb_rec_problem prob;
	ASSERT_ERR(sb_pack__read_record(-1, "pack-x", &bogus, &z, &obj, &prob, &err), -EBADMSG);
	ASSERT_EQ(prob, SB_REC_BAD_HEADER);
	sb_store_free(s);
}

/* A record header that lies about its length while the idx is right. */
TEST(bogus_record_header_length)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "x", 1, &id, NULL));
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	const char *pack = only_file(".pack");
	chmod(pack, 0644);
	int fd = open(pack, O_RDWR | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_EQ(pwrite(fd, "\xff\xff\xff\x7f", 4, SB_PACK_HEADER_LEN + 12), 4);
	close(fd);
	s = open_store(0);
	void *obj;
	size_t len;
	ASSERT_ERR(sb_store_get(s, &id, 0, NULL, &obj, &len, NULL), -EBADMSG);
	sb_store_free(s);
}

/* Small records wait in memory: a failed write of them sticks. */
TEST(failed_buffered_write_sticks)
{
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id kept, lost, later;
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "kept", 4, &kept, NULL));
	ASSERT_OK(sb_store_flush(s, NULL));
	ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, "lost", 4, &lost, NULL));
	/* The pack's fd now refuses writes, as a full disk would. */
	int ro = open("store", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(ro);
	ASSERT_OK(dup3(ro, s->cur->fd, O_CLOEXEC));
	close(ro);
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_store_flush(s, &err), -EBADF);
	ASSERT_TRUE(strstr(err.msg, ".pack"));
	void *data;
	size_t len;
	ASSERT_ERR(sb_store_get(s, &lost, 0, NULL, &data, &len, NULL), -EBADF);
	ASSERT_ERR(sb_store_put(s, SB_OBJ_BLOB, "later", 5, &later, NULL), -EBADF);
	ASSERT_ERR(sb_store_flush(s, NULL), -EBADF);
	sb_store_free(s);

	s = open_store(0);
	ASSERT_TRUE(sb_store_has(s, &kept));
	ASSERT_FALSE(sb_store_has(s, &lost));
	sb_store_free(s);
}

TEST(pack_rolls_over_at_cap)
{
	enum { N = 400 };
	static sb_id ids[N];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	s->pack_max = 1 << 20;
	put_range(s, 0, N, ids);
	int packs = count_files(".pack");
	ASSERT_TRUE(packs >= 3);
	check_range(s, 0, N, ids);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	ASSERT_EQ(count_files(".idx"), packs);
	s = open_store(0);
	check_range(s, 0, N, ids);
	problems p;
	ASSERT_EQ(verify(s, &p, NULL), 0);
	sb_store_free(s);
}

typedef struct thread_arg {
	sb_store *s;
	unsigned seed;
	sb_id *ids;
	int failed;
} thread_arg;

enum { MT_N = 1500 };

static void *mt_worker(void *p)
{
	thread_arg *a = p;
	uint8_t *buf = malloc(OBJ_CAP);
	uint64_t rs = a->seed * 7919 + 1;
	for (unsigned k = 0; k < MT_N && buf; k++) {
		/* everyone stores everything, each in its own order, reading back as it goes */
		unsigned i = (unsigned)((k + a->seed * 500) % MT_N);
		size_t len = make_obj(i, buf, OBJ_CAP);
		sb_id id;
		if (sb_store_put(a->s, (sb_obj_type)(1 + i % 3), buf, len, &id, NULL) < 0) {
			a->failed = 1;
			break;
		}
		a->ids[i] = id;
		unsigned j = (unsigned)(rng_next(&rs) % (k + 1));
		j = (unsigned)((j + a->seed * 500) % MT_N);
		void *data;
		size_t got;
		len = make_obj(j, buf, OBJ_CAP);
		if (sb_store_get(a->s, &a->ids[j], 0, NULL, &data, &got, NULL) < 0 || got != len ||
		    memcmp(data, buf, len) != 0) {
			a->failed = 2;
			break;
		}
		free(data);
	}
	free(buf);
	return NULL;
}

TEST(four_threads_put_consistently)
{
	static sb_id ids[4][MT_N];
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	pthread_t th[4];
	thread_arg args[4];
	for (unsigned t = 0; t < 4; t++) {
		args[t] = (thread_arg){s, t, ids[t], 0};
		ASSERT_EQ(pthread_create(&th[t], NULL, mt_worker, &args[t]), 0);
	}
	for (unsigned t = 0; t < 4; t++) {
		ASSERT_EQ(pthread_join(th[t], NULL), 0);
		ASSERT_EQ(args[t].failed, 0);
	}
	for (unsigned i = 0; i < MT_N; i++)
		for (unsigned t = 1; t < 4; t++)
			ASSERT_TRUE(sb_id_eq(&ids[0][i], &ids[t][i]));
	sb_store_stats st;
	sb_store_get_stats(s, &st);
	uint64_t unique = count_objects(s);
	ASSERT_EQ(st.objects_written, unique);
	ASSERT_EQ(st.objects_written + st.objects_deduped, 4 * MT_N);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);
	s = open_store(0);
	check_range(s, 0, MT_N, ids[0]);
	problems p;
	uint64_t checked;
	ASSERT_EQ(verify(s, &p, &checked), 0);
	ASSERT_EQ(checked, unique);
	sb_store_free(s);
}

/* Lookup speed and the memory the table takes for 100k+ objects. */
TEST(hundred_thousand_objects)
{
	enum { N = 120000 };
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id *ids = malloc(N * sizeof(*ids));
	ASSERT_TRUE(ids);
	for (unsigned i = 0; i < N; i++) {
		char b[32];
		int n = snprintf(b, sizeof(b), "object %u", i);
		ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, b, (size_t)n, &ids[i], NULL));
	}
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = open_store(SB_STORE_WRITE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double open_ms =
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	/* Opening maps the index; it neither reads nor copies its entries. */
	ASSERT_EQ(s->n_search, 1);
	ASSERT_EQ(s->search[0]->idx.count, N);
	ASSERT_TRUE(s->search[0]->idx.fanout == NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < N; i++)
		ASSERT_TRUE(sb_store_has(s, &ids[i]));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double has_us =
	    ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / N;
	ASSERT_TRUE(s->search[0]->idx.fanout != NULL);
	printf("# open %.1f ms, has() %.2f us\n", open_ms, has_us);
	sb_store_free(s);
	free(ids);
}

/* Many packs (no gc for a long time) must not exhaust the process's fds. */
TEST(many_packs_low_fd_limit)
{
	enum { PACKS = 120 };
	sb_id ids[PACKS];
	for (unsigned i = 0; i < PACKS; i++) {
		sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
		char b[32];
		int n = snprintf(b, sizeof(b), "pack %u", i);
		ASSERT_OK(sb_store_put(s, SB_OBJ_BLOB, b, (size_t)n, &ids[i], NULL));
		ASSERT_OK(sb_store_flush(s, NULL));
		sb_store_free(s);
	}
	ASSERT_EQ(count_files(".idx"), PACKS);
	struct rlimit rl = {48, 48};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		SB_SKIP("cannot lower RLIMIT_NOFILE (under valgrind?): %s", strerror(errno));
	sb_store *s = open_store(SB_STORE_WRITE);
	for (int round = 0; round < 2; round++)
		for (unsigned i = 0; i < PACKS; i++) {
			void *data;
			size_t len;
			sb_error err = SB_ERROR_INIT;
			int r = sb_store_get(s, &ids[i], SB_OBJ_BLOB, NULL, &data, &len, &err);
			if (r < 0)
				sb_test_fail(__FILE__, __LINE__, "get %u: %s", i, err.msg);
			free(data);
		}
	problems p;
	ASSERT_EQ(verify(s, &p, NULL), 0);
	sb_store_free(s);
}

/* A miss re-reads the indexes only when packs/ changed since the last read. */
TEST(miss_rereads_indexes_only_after_a_change)
{
	sb_store *w = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id a, b, missing;
	ASSERT_OK(sb_store_put(w, SB_OBJ_BLOB, "a", 1, &a, NULL));
	ASSERT_OK(sb_store_flush(w, NULL));
	sb_store_free(w);
	/* as if the last change were long ago */
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	ASSERT_OK(utimensat(AT_FDCWD, "store/packs", old, 0));

	sb_store *s = open_store(0);
	uint64_t base = s->reloads;
	sb_store_hash(SB_OBJ_BLOB, "nowhere", 7, &missing);
	for (int i = 0; i < 50; i++) {
		void *data;
		size_t len;
		ASSERT_ERR(sb_store_get(s, &missing, 0, NULL, &data, &len, NULL), -ENOENT);
		ASSERT_ERR(sb_store_stat(s, &missing, NULL, NULL, NULL), -ENOENT);
	}
	ASSERT_EQ(s->reloads, base);

	w = open_store(SB_STORE_WRITE);
	ASSERT_OK(sb_store_put(w, SB_OBJ_BLOB, "b", 1, &b, NULL));
	ASSERT_OK(sb_store_flush(w, NULL));
	sb_store_free(w);
	void *data;
	size_t len;
	ASSERT_OK(sb_store_get(s, &b, SB_OBJ_BLOB, NULL, &data, &len, NULL));
	free(data);
	ASSERT_EQ(s->reloads, base + 1);
	sb_store_free(s);
}

/*
 * A tree read once is served from memory the second time: no read of the
 * pack, so damage done to the pack after the first (verified) read does not
 * reach this store, while a fresh reader still finds it. The type check
 * still applies to a cached tree.
 */
TEST(trees_read_again_come_from_memory)
{
	const char payload[] = "sbtree1\n\0\0\0\0 -- not decoded here, only stored";
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_TREE, payload, sizeof(payload), &id, NULL));
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);

	s = open_store(0);
	sb_store_keep_trees(s, true);
	sb_store_stats st;
	void *data = NULL;
	size_t len;
	ASSERT_OK(sb_store_get(s, &id, SB_OBJ_TREE, NULL, &data, &len, NULL));
	free(data);
	sb_store_get_stats(s, &st);
	ASSERT_EQ(st.cache_hits, 0);
	flip_byte(only_file(".pack"), file_size(only_file(".pack")) - 1);
	sb_obj_type t;
	ASSERT_OK(sb_store_get(s, &id, 0, &t, &data, &len, NULL));
	ASSERT_EQ(t, SB_OBJ_TREE);
	ASSERT_EQ(len, sizeof(payload));
	ASSERT_MEMEQ(data, payload, len);
	ASSERT_EQ(((char *)data)[len], 0);
	free(data);
	sb_store_get_stats(s, &st);
	ASSERT_EQ(st.cache_hits, 1);
	ASSERT_EQ(st.objects_read, 2);
	ASSERT_ERR(sb_store_get(s, &id, SB_OBJ_BLOB, NULL, &data, &len, NULL), -EBADMSG);
	sb_store_keep_trees(s, false); /* off: read from the pack again */
	ASSERT_ERR(sb_store_get(s, &id, SB_OBJ_TREE, NULL, &data, &len, NULL), -EBADMSG);
	sb_store_free(s);

	s = open_store(0);
	ASSERT_ERR(sb_store_get(s, &id, SB_OBJ_TREE, NULL, &data, &len, NULL), -EBADMSG);
	sb_store_free(s);
}

/*
 * A tree this store wrote is kept too: damage to the pack after the put does
 * not reach this writer. The length may be left unasked on a hit.
 */
TEST(trees_put_are_kept)
{
	const char payload[] = "sbtree1\n\0\0\0\0 -- a tree this writer made";
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_store_keep_trees(s, true);
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_TREE, payload, sizeof(payload), &id, NULL));
	ASSERT_OK(sb_store_flush(s, NULL));
	flip_byte(only_file(".pack"), file_size(only_file(".pack")) - 1);
	void *data = NULL;
	ASSERT_OK(sb_store_get(s, &id, SB_OBJ_TREE, NULL, &data, NULL, NULL));
	ASSERT_MEMEQ(data, payload, sizeof(payload));
	free(data);
	sb_store_stats st;
	sb_store_get_stats(s, &st);
	ASSERT_EQ(st.cache_hits, 1);
	sb_store_free(s);
}

/* A tree put in scratch mode is not kept by the cache beyond the scratch layer. */
TEST(scratch_trees_are_not_cached)
{
	const char payload[] = "a tree that only a preview made";
	sb_store *s = open_store(SB_STORE_WRITE | SB_STORE_CREATE);
	sb_store_keep_trees(s, true);
	ASSERT_OK(sb_store_scratch_begin(s));
	sb_id id;
	ASSERT_OK(sb_store_put(s, SB_OBJ_TREE, payload, sizeof(payload), &id, NULL));
	void *data = NULL;
	size_t len;
	ASSERT_OK(sb_store_get(s, &id, SB_OBJ_TREE, NULL, &data, &len, NULL));
	free(data);
	sb_store_scratch_end(s);
	ASSERT_ERR(sb_store_get(s, &id, SB_OBJ_TREE, NULL, &data, &len, NULL), -ENOENT);
	sb_store_free(s);
}

/*
 * The cache keeps at most its budget; what is still being read survives the
 * aging that drops what is not.
 */
TEST(object_cache_is_bounded_and_keeps_what_is_used)
{
	enum { N = 400, LEN = 1000 };
	static sb_id ids[N];
	static uint8_t buf[LEN];
	sb_objcache c;
	sb_objcache_init(&c, 64 << 10);
	for (unsigned i = 0; i < N; i++) {
		memset(buf, (int)i, sizeof(buf));
		sb_store_hash(SB_OBJ_TREE, buf, sizeof(buf), &ids[i]);
		sb_objcache_put(&c, &ids[i], buf, sizeof(buf));
		ASSERT_TRUE(c.young.bytes + c.old.bytes <= 64 << 10);
		/* object 0 is read after every put: it must never be dropped */
		void *data = NULL;
		size_t len = 0;
		ASSERT_OK(sb_objcache_get(&c, &ids[0], &data, &len));
		ASSERT_EQ(len, LEN);
		ASSERT_EQ(((uint8_t *)data)[LEN - 1], 0);
		free(data);
	}
	/* the most recent are held (young, or old and moved back without aging) */
	for (unsigned i = N - 1; i >= N - 15; i--) {
		void *data = NULL;
		size_t len = 0;
		ASSERT_OK(sb_objcache_get(&c, &ids[i], &data, &len));
		ASSERT_EQ(((uint8_t *)data)[0], (uint8_t)i);
		free(data);
	}
	ASSERT_ERR(sb_objcache_get(&c, &ids[1], NULL, NULL), -ENOENT); /* the oldest went */
	ASSERT_TRUE(c.young.n + c.old.n < 2 * 33 + 2);
	/* too big for the budget: not kept */
	static uint8_t big[20 << 10];
	sb_id bid;
	sb_store_hash(SB_OBJ_TREE, big, sizeof(big), &bid);
	sb_objcache_put(&c, &bid, big, sizeof(big));
	ASSERT_ERR(sb_objcache_get(&c, &bid, NULL, NULL), -ENOENT);
	sb_objcache_release(&c);
}

/* SPDX-License-Identifier: MIT */
/*
 * The scanner's parts: exclusions (gitignore syntax, checked against git
 * check-ignore as the oracle) and the stat cache.
 */
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>
#include <time.h>
#include <inttypes.h>
#include "sb-test.h"
#include "buf.h"
#include "content.h"
#include "error.h"
#include "export.h"
#include "fileio.h"
#include "safefs.h"
#include "ignore.h"
#include "scan.h"
#include "statcache.h"
#include "store.h"
#include "tree.h"

/* ---- exclusions ---- */

typedef struct ign_case {
	const char *patterns; /* newline-separated, as in a .gitignore */
	const char *path;
	bool is_dir;
	bool want;
	bool git; /* also ask git */
} ign_case;

static const ign_case ign_cases[] = {
    {"*.o", "a.o", false, true, true},
    {"*.o", "dir/sub/b.o", false, true, true},
    {"*.o", "a.oo", false, false, true},
    {"*.o", "x.o", true, true, true},
    {"build/", "build", true, true, true},
    {"build/", "build", false, false, true},
    {"build/", "src/build", true, true, true},
    {"build/", "build/x/y.c", false, true, true},
    {"/build", "build", false, true, true},
    {"/build", "src/build", false, false, true},
    {"doc/*.txt", "doc/a.txt", false, true, true},
    {"doc/*.txt", "doc/x/a.txt", false, false, true},
    {"doc/*.txt", "x/doc/a.txt", false, false, true},
    {"**/foo", "foo", false, true, true},
    {"**/foo", "a/b/foo", false, true, true},
    {"**/foo", "a/foox", false, false, true},
    {"foo/**", "foo/a", false, true, true},
    {"foo/**", "foo/a/b", false, true, true},
    {"foo/**", "foo", true, false, true},
    {"a/**/b", "a/b", false, true, true},
    {"a/**/b", "a/x/b", false, true, true},
    {"a/**/b", "a/x/y/b", false, true, true},
    {"a/**/b", "a/xb", false, false, true},
    {"x**y", "xay", false, true, true},
    {"/x**y", "x/y", false, false, true},
    {"a?c", "abc", false, true, true},
    {"/a?c", "a/c", false, false, true},
    {"[abc].txt", "b.txt", false, true, true},
    {"[abc].txt", "d.txt", false, false, true},
    {"[!abc].txt", "d.txt", false, true, true},
    {"[!abc].txt", "a.txt", false, false, true},
    {"[a-c]x", "bx", false, true, true},
    {"[a-c]x", "dx", false, false, true},
    {"[[:digit:]]*", "1abc", false, true, true},
    {"[[:digit:]]*", "abc", false, false, true},
    {"[]]x", "]x", false, true, true},
    {"\\#hash", "#hash", false, true, true},
    {"#hash", "#hash", false, false, true},
    {"\\!bang", "!bang", false, true, true},
    {"trail\\ ", "trail ", false, true, true},
    {"trail\\ ", "trail", false, false, true},
    {"trail  ", "trail", false, true, true},
    {"*.log\n!keep.log", "a.log", false, true, true},
    {"*.log\n!keep.log", "keep.log", false, false, true},
    {"*.log\n!keep.log", "x/keep.log", false, false, true},
    {"!keep.log\n*.log", "keep.log", false, true, true},
    {"dir/\n!dir/keep", "dir/keep", false, true, true}, /* parent excluded: no way back */
    {"\xff*", "\xff\xfe", false, true, true},
    {"*", "nl\nname", false, true, true},
    {"sp ace", "d/sp ace", false, true, true},
    {"**", "any/thing", false, true, true},
    {"a/b", "x/a/b", false, false, true},
    {"*", ".snapboxignore", false, false, false}, /* the ignore file itself stays */
    {"*", "sub/.snapboxignore", false, true, true},
    {"*.tmp\r", "x.tmp", false, true, false}, /* CRLF files */
};

static sb_ignore *ignore_from(const char *patterns)
{
	sb_ignore *ign;
	ASSERT_OK(sb_ignore_new(&ign));
	ASSERT_OK(sb_write_atomic(AT_FDCWD, "ign", patterns, strlen(patterns), 0644, 0, NULL));
	ASSERT_EQ(sb_ignore_load_file(ign, AT_FDCWD, "ign", NULL), 1);
	unlink("ign");
	return ign;
}

TEST(ignore_table)
{
	for (size_t i = 0; i < ARRAY_SIZE(ign_cases); i++) {
		const ign_case *c = &ign_cases[i];
		sb_ignore *ign = ignore_from(c->patterns);
		bool got = sb_ignore_excluded(ign, c->path, strlen(c->path), c->is_dir);
		if (got != c->want)
			sb_test_fail(__FILE__, __LINE__, "case %zu: '%s' on '%s' gave %d", i,
				     c->patterns, c->path, got);
		sb_ignore_free(ign);
	}
}

/* The table's expectations are git's: ask git itself (check-ignore --no-index). */
TEST(ignore_table_agrees_with_git)
{
	sb_error err = SB_ERROR_INIT;
	if (sb_test_sh("git --version >/dev/null 2>&1") != 0)
		SB_SKIP("git is not installed");
	for (size_t i = 0; i < ARRAY_SIZE(ign_cases); i++) {
		const ign_case *c = &ign_cases[i];
		if (!c->git)
			continue;
		ASSERT_EQ(sb_test_sh("rm -rf g && git init -q g"), 0);
		int dfd = open("g", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT_OK(dfd);
		ASSERT_OK(sb_write_atomic(dfd, ".gitignore", c->patterns, strlen(c->patterns), 0644,
					  0, &err));
		const char *slash = strrchr(c->path, '/');
		if (slash) {
			char parent[256];
			snprintf(parent, sizeof(parent), "%.*s", (int)(slash - c->path), c->path);
			ASSERT_OK(sb_mkdir_beneath(dfd, parent, 0755, &err));
		}
		if (c->is_dir)
			ASSERT_OK(sb_mkdir_beneath(dfd, c->path, 0755, &err));
		else
			close(sb_open_beneath(dfd, c->path, O_WRONLY | O_CREAT, 0644, &err));
		close(dfd);
		ASSERT_OK(
		    sb_write_atomic(AT_FDCWD, "p", c->path, strlen(c->path) + 1, 0644, 0, &err));
		int rc = sb_test_sh("cd g && git check-ignore --no-index -q --stdin -z < ../p");
		ASSERT_TRUE(rc == 0 || rc == 1);
		unlink("p");
		if ((rc == 0) != c->want)
			sb_test_fail(__FILE__, __LINE__, "case %zu: git says %s for '%s' on '%s'",
				     i, rc == 0 ? "ignored" : "not ignored", c->patterns, c->path);
	}
}

TEST(ignore_file_precedence_and_patterns_list)
{
	sb_error err = SB_ERROR_INIT;
	sb_ignore *ign;
	ASSERT_OK(sb_ignore_new(&ign));
	ASSERT_EQ(sb_ignore_load_file(ign, AT_FDCWD, SB_IGNORE_FILE, &err), 0); /* absent */
	ASSERT_OK(sb_ignore_add(ign, "*.tmp", &err));
	static const char file[] = "# comment\n\n*.log \n!keep.tmp\r\nbad[\n/only/\n";
	ASSERT_OK(sb_write_atomic(AT_FDCWD, SB_IGNORE_FILE, file, sizeof(file) - 1, 0644, 0, &err));
	ASSERT_EQ(sb_ignore_load_file(ign, AT_FDCWD, SB_IGNORE_FILE, &err), 1);
	/* the command line comes last and wins over the file's "!keep.tmp" */
	ASSERT_TRUE(sb_ignore_match(ign, "keep.tmp", 8, false));
	ASSERT_TRUE(sb_ignore_match(ign, "x.log", 5, false));
	ASSERT_TRUE(sb_ignore_match(ign, "only", 4, true));
	ASSERT_FALSE(sb_ignore_match(ign, "a/only", 6, true));
	ASSERT_FALSE(sb_ignore_match(ign, "bad[", 4, false)); /* the bad line was skipped */
	ASSERT_EQ(sb_ignore_count(ign), 4);
	ASSERT_STREQ(sb_ignore_pattern(ign, 0), "*.log");
	ASSERT_STREQ(sb_ignore_pattern(ign, 1), "!keep.tmp");
	ASSERT_STREQ(sb_ignore_pattern(ign, 2), "/only/");
	ASSERT_STREQ(sb_ignore_pattern(ign, 3), "*.tmp");
	ASSERT_TRUE(sb_ignore_pattern(ign, 4) == NULL);

	/* Rebuilding from the recorded list gives the same answers. */
	sb_ignore *again;
	ASSERT_OK(sb_ignore_new(&again));
	for (size_t i = 0; i < sb_ignore_count(ign); i++)
		ASSERT_OK(sb_ignore_add(again, sb_ignore_pattern(ign, i), &err));
	const char *probe[] = {"keep.tmp", "x.log", "only", "a/only", "y.tmp", "z"};
	for (size_t i = 0; i < ARRAY_SIZE(probe); i++)
		for (int d = 0; d < 2; d++)
			ASSERT_EQ(sb_ignore_match(ign, probe[i], strlen(probe[i]), d),
				  sb_ignore_match(again, probe[i], strlen(probe[i]), d));
	sb_ignore_free(again);
	sb_ignore_free(ign);
	ASSERT_FALSE(sb_ignore_match(NULL, "x", 1, false));
}

TEST(ignore_rejects_bad_patterns_and_files)
{
	sb_error err = SB_ERROR_INIT;
	sb_ignore *ign;
	ASSERT_OK(sb_ignore_new(&ign));
	const char *bad[] = {"", "   ", "#comment", "/", "!", "!/", "abc\\", "[abc", "x/[!"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ASSERT_ERR(sb_ignore_add(ign, bad[i], &err), -EINVAL);
		ASSERT_TRUE(strstr(err.msg, "exclude pattern") != NULL);
	}
	ASSERT_EQ(sb_ignore_count(ign), 0);

	ASSERT_EQ(symlink("/etc/passwd", SB_IGNORE_FILE), 0);
	ASSERT_ERR(sb_ignore_load_file(ign, AT_FDCWD, SB_IGNORE_FILE, &err), -ELOOP);
	unlink(SB_IGNORE_FILE);
	ASSERT_EQ(sb_test_sh("truncate -s %u " SB_IGNORE_FILE, SB_IGNORE_FILE_MAX + 1), 0);
	ASSERT_ERR(sb_ignore_load_file(ign, AT_FDCWD, SB_IGNORE_FILE, &err), -EFBIG);
	sb_ignore_free(ign);
}

/* Backtracking must stay bounded on patterns built to explode it. */
TEST(ignore_pathological_pattern_is_fast)
{
	sb_error err = SB_ERROR_INIT;
	sb_ignore *ign;
	ASSERT_OK(sb_ignore_new(&ign));
	ASSERT_OK(sb_ignore_add(ign, "/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", &err));
	ASSERT_OK(sb_ignore_add(ign, "**/a/**/a/**/a/**/a/**/a/**/a/**/b", &err));
	char path[4096];
	for (size_t i = 0; i < sizeof(path); i++)
		path[i] = (i % 2) ? '/' : 'a';
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_FALSE(sb_ignore_match(ign, path, 400, false));
	ASSERT_FALSE(sb_ignore_match(ign, path, sizeof(path) - 1, false));
	memset(path, 'a', sizeof(path));
	ASSERT_FALSE(sb_ignore_match(ign, path, sizeof(path), false));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ASSERT_TRUE(t1.tv_sec - t0.tv_sec < 5);
	sb_ignore_free(ign);
}

/* ---- stat cache ---- */

static sb_statcache_key key_of(uint64_t n)
{
	sb_statcache_key k = {.dev = 8,
			      .ino = 1000 + n,
			      .mode = 0100644,
			      .size = n * 3,
			      .mtime_ns = 1000000000123LL + (int64_t)n,
			      .ctime_ns = 1000000000456LL};
	return k;
}

static void id_of(uint64_t n, sb_id *id)
{
	sb_sha256_buf(&n, sizeof(n), id);
}

/* A new, empty cache whose generation is stamped stamp. */
static sb_statcache *new_cache(int64_t stamp)
{
	sb_statcache *c;
	ASSERT_OK(sb_statcache_new(&c));
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, stamp);
	return c;
}

/* k with field f (0-5: dev, ino, mode, size, mtime, ctime) changed; mode becomes other_mode. */
static sb_statcache_key key_but(const sb_statcache_key *k, int f, uint32_t other_mode)
{
	sb_statcache_key m = *k;
	switch (f) {
	case 0:
		m.dev++;
		break;
	case 1:
		m.ino++;
		break;
	case 2:
		m.mode = other_mode;
		break;
	case 3:
		m.size++;
		break;
	case 4:
		m.mtime_ns++;
		break;
	default:
		m.ctime_ns++;
		break;
	}
	return m;
}

TEST(statcache_save_load_lookup)
{
	sb_error err = SB_ERROR_INIT;
	sb_statcache *c;
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_MISSING);
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, 2000000000000LL);
	enum { N = 100000 };
	char path[64];
	/* recorded out of order, with hostile bytes */
	for (uint64_t i = N; i-- > 0;) {
		int len =
		    snprintf(path, sizeof(path), "d%03u/\xff\nf%07" PRIu64, (unsigned)(i % 7), i);
		sb_statcache_key k = key_of(i);
		sb_id id;
		id_of(i, &id);
		ASSERT_OK(sb_statcache_record(c, path, (size_t)len, &k, &id));
	}
	/* lookups see the loaded generation only: nothing yet */
	sb_statcache_key k0 = key_of(0);
	sb_id got, want;
	ASSERT_FALSE(sb_statcache_lookup(c, "d000/\xff\nf0000000", 15, &k0, &got));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	ASSERT_EQ(sb_statcache_count(c), N);
	sb_statcache_free(c);

	struct stat st;
	ASSERT_OK(stat("index", &st));
	ASSERT_EQ(st.st_mode & 0777, 0600);
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	ASSERT_EQ(sb_statcache_count(c), N);
	for (uint64_t i = 0; i < N; i++) {
		int len =
		    snprintf(path, sizeof(path), "d%03u/\xff\nf%07" PRIu64, (unsigned)(i % 7), i);
		sb_statcache_key k = key_of(i);
		id_of(i, &want);
		ASSERT_TRUE(sb_statcache_lookup(c, path, (size_t)len, &k, &got));
		ASSERT_TRUE(sb_id_eq(&got, &want));
	}
	/* any field differing is a miss */
	sb_statcache_key k = key_of(5);
	int len = snprintf(path, sizeof(path), "d%03u/\xff\nf%07u", 5u, 5u);
	for (int f = 0; f < 6; f++) {
		sb_statcache_key m = key_but(&k, f, 0100755);
		ASSERT_FALSE(sb_statcache_lookup(c, path, (size_t)len, &m, &got));
	}
	ASSERT_TRUE(sb_statcache_lookup(c, path, (size_t)len, &k, &got));
	ASSERT_FALSE(sb_statcache_lookup(c, "nope", 4, &k, &got));

	/* A new generation keeps only what was recorded again. */
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, 2000000000000LL);
	id_of(5, &want);
	ASSERT_OK(sb_statcache_record(c, path, (size_t)len, &k, &want));
	ASSERT_OK(sb_statcache_record(c, path, (size_t)len, &k, &want)); /* twice: kept once */
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	ASSERT_EQ(sb_statcache_count(c), 1);
	ASSERT_TRUE(sb_statcache_lookup(c, path, (size_t)len, &k, &got));
	sb_statcache_free(c);
}

TEST(statcache_racily_clean_entries_are_not_trusted)
{
	sb_error err = SB_ERROR_INIT;
	const int64_t stamp = 1700000000500000000LL;
	sb_statcache *c = new_cache(stamp);
	struct {
		const char *path;
		int64_t mtime, ctime;
		bool trusted;
	} cases[] = {
	    {"older", stamp - 1, stamp - 1, true},
	    {"mtime-equal", stamp, stamp - 1, false},
	    {"ctime-equal", stamp - 1, stamp, false},
	    {"newer", stamp + 5, stamp - 1, false},
	    /* whole seconds: a coarse filesystem, must be 2 s older */
	    {"coarse-recent", 1700000000000000000LL - 1000000000LL, stamp - 1, false},
	    {"coarse-old", 1700000000000000000LL - 2000000000LL, stamp - 1, true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sb_statcache_key k = key_of(i);
		k.mtime_ns = cases[i].mtime;
		k.ctime_ns = cases[i].ctime;
		sb_id id;
		id_of(i, &id);
		ASSERT_OK(sb_statcache_record(c, cases[i].path, strlen(cases[i].path), &k, &id));
	}
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sb_statcache_key k = key_of(i);
		k.mtime_ns = cases[i].mtime;
		k.ctime_ns = cases[i].ctime;
		sb_id id;
		if (sb_statcache_lookup(c, cases[i].path, strlen(cases[i].path), &k, &id) !=
		    cases[i].trusted)
			sb_test_fail(__FILE__, __LINE__, "'%s' trusted should be %d", cases[i].path,
				     cases[i].trusted);
	}
	sb_statcache_free(c);

	/* Without begin, the stamp is 0: nothing recorded is ever trusted. */
	ASSERT_OK(sb_statcache_new(&c));
	sb_statcache_key k = key_of(1);
	sb_id id;
	id_of(1, &id);
	ASSERT_OK(sb_statcache_record(c, "x", 1, &k, &id));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	ASSERT_FALSE(sb_statcache_lookup(c, "x", 1, &k, &id));
	sb_statcache_free(c);
}

/* restamp: records racy under the old stamp are dropped; later ones get the new stamp. */
TEST(statcache_restamp)
{
	sb_error err = SB_ERROR_INIT;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	const int64_t t = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
	sb_statcache *c = new_cache(t - 10000000000LL); /* stamped ten seconds ago */
	sb_statcache_key old = key_of(1), racy = key_of(2), after = key_of(3);
	old.mtime_ns = old.ctime_ns = t - 20000000000LL;
	racy.mtime_ns = racy.ctime_ns = t - 5000000000LL; /* after the old stamp */
	after.mtime_ns = after.ctime_ns = t - 1000000000LL;
	sb_id id;
	id_of(1, &id);
	ASSERT_OK(sb_statcache_record(c, "old", 3, &old, &id));
	ASSERT_OK(sb_statcache_record(c, "racy", 4, &racy, &id));
	sb_statcache_restamp(c);
	ASSERT_OK(sb_statcache_record(c, "after", 5, &after, &id));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);

	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	ASSERT_EQ(sb_statcache_count(c), 2);
	sb_id got;
	ASSERT_TRUE(sb_statcache_lookup(c, "old", 3, &old, &got));
	ASSERT_FALSE(sb_statcache_lookup(c, "racy", 4, &racy, &got));
	ASSERT_TRUE(sb_statcache_lookup(c, "after", 5, &after, &got));
	sb_statcache_free(c);
}

/*
 * restamp_after: the stamp passes the given write time (waiting for the
 * coarse clock if need be), so a file written up to then and recorded
 * afterwards is trusted on load; one written after it is not.
 */
TEST(statcache_restamp_after_passes_the_writes)
{
	sb_error err = SB_ERROR_INIT;
	int64_t written = sb_now_ns();
	sb_statcache *c = new_cache(written - 10 * SB_NSEC);
	sb_statcache_restamp_after(c, written);
	ASSERT_TRUE(sb_coarse_now_ns() > written);
	sb_statcache_key at = key_of(1), later = key_of(2);
	at.mtime_ns = at.ctime_ns = written;
	later.mtime_ns = later.ctime_ns = sb_coarse_now_ns() + SB_NSEC;
	sb_id id;
	id_of(1, &id);
	ASSERT_OK(sb_statcache_record(c, "at", 2, &at, &id));
	ASSERT_OK(sb_statcache_record(c, "later", 5, &later, &id));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	sb_id got;
	ASSERT_TRUE(sb_statcache_lookup(c, "at", 2, &at, &got));
	ASSERT_FALSE(sb_statcache_lookup(c, "later", 5, &later, &got));
	sb_statcache_free(c);
}

/* A read that began after a file's last change, by the coarse clock, is not racy. */
TEST(statcache_key_racy)
{
	const int64_t t = 1700000000123456789LL, whole = 1700000000000000000LL;
	sb_statcache_key k = key_of(1);
	k.mtime_ns = k.ctime_ns = t;
	ASSERT_FALSE(sb_statcache_key_racy(&k, t + 1));
	ASSERT_TRUE(sb_statcache_key_racy(&k, t));
	k.ctime_ns = t + 1; /* a chmod after the write */
	ASSERT_TRUE(sb_statcache_key_racy(&k, t + 1));
	ASSERT_FALSE(sb_statcache_key_racy(&k, t + 2));
	/* whole seconds: a coarse filesystem, two seconds of margin */
	k.mtime_ns = k.ctime_ns = whole;
	ASSERT_TRUE(sb_statcache_key_racy(&k, whole + SB_NSEC));
	ASSERT_TRUE(sb_statcache_key_racy(&k, whole + 2 * SB_NSEC - 1));
	ASSERT_FALSE(sb_statcache_key_racy(&k, whole + 2 * SB_NSEC));
}

/*
 * The next generation is the loaded records found unchanged (kept) merged
 * with the changed and new ones: the last record of a path wins, whichever
 * kind it is, and paths not recorded are dropped.
 */
TEST(statcache_kept_and_changed_records_merge)
{
	sb_error err = SB_ERROR_INIT;
	const int64_t stamp = 2000000000000LL;
	sb_statcache *c = new_cache(stamp);
	char path[16];
	sb_id id, got;
	for (uint64_t i = 0; i < 20; i++) {
		int len = snprintf(path, sizeof(path), "f%02" PRIu64, i);
		sb_statcache_key k = key_of(i);
		id_of(i, &id);
		ASSERT_OK(sb_statcache_record(c, path, (size_t)len, &k, &id));
	}
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));

	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, stamp);
	for (uint64_t i = 0; i < 10; i++) {
		int len = snprintf(path, sizeof(path), "f%02" PRIu64, i);
		sb_statcache_key k = key_of(i);
		ASSERT_EQ(sb_statcache_reuse(c, path, (size_t)len, &k, &got), 1);
		id_of(i, &id);
		ASSERT_TRUE(sb_id_eq(&got, &id));
	}
	sb_statcache_key k5 = key_of(5), k10 = key_of(10), k11 = key_of(11), k12 = key_of(12);
	sb_statcache_key changed = key_of(100), nope = key_of(7);
	ASSERT_EQ(sb_statcache_reuse(c, "f05", 3, &k5, &got), 1); /* twice: kept once */
	ASSERT_EQ(sb_statcache_reuse(c, "nope", 4, &nope, &got), 0);
	ASSERT_EQ(sb_statcache_reuse(c, "f13", 3, &changed, &got), 0); /* a miss records nothing */
	id_of(100, &id);
	ASSERT_OK(sb_statcache_record(c, "f10", 3, &changed, &id));
	ASSERT_OK(sb_statcache_record(c, "f11", 3, &changed, &id));
	id_of(11, &got);
	ASSERT_OK(sb_statcache_record(c, "f11", 3, &k11, &got)); /* back as loaded: last wins */
	ASSERT_EQ(sb_statcache_reuse(c, "f12", 3, &k12, &got), 1);
	ASSERT_OK(sb_statcache_record(c, "f12", 3, &changed, &id)); /* changed after: last wins */
	ASSERT_OK(sb_statcache_record(c, "g", 1, &changed, &id));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));

	for (int pass = 0; pass < 2; pass++) {
		/* as saved, then as loaded again */
		ASSERT_EQ(sb_statcache_count(c), 14);
		ASSERT_TRUE(sb_statcache_lookup(c, "f05", 3, &k5, &got));
		ASSERT_TRUE(sb_statcache_lookup(c, "f10", 3, &changed, &got));
		ASSERT_TRUE(sb_id_eq(&got, &id));
		ASSERT_FALSE(sb_statcache_lookup(c, "f10", 3, &k10, &got));
		ASSERT_TRUE(sb_statcache_lookup(c, "f11", 3, &k11, &got));
		ASSERT_TRUE(sb_statcache_lookup(c, "f12", 3, &changed, &got));
		ASSERT_FALSE(sb_statcache_lookup(c, "f12", 3, &k12, &got));
		ASSERT_TRUE(sb_statcache_lookup(c, "g", 1, &changed, &got));
		sb_statcache_key k13 = key_of(13);
		ASSERT_FALSE(sb_statcache_lookup(c, "f13", 3, &k13, &got));
		ASSERT_FALSE(sb_statcache_lookup(c, "nope", 4, &nope, &got));
		sb_statcache_free(c);
		ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	}

	/* Every record kept: nothing to write. */
	struct stat before, after;
	ASSERT_OK(stat("index", &before));
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, stamp);
	const char *names[] = {"f00", "f01", "f02", "f03", "f04", "f05", "f06",
			       "f07", "f08", "f09", "f10", "f11", "f12", "g"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		sb_statcache_key k = i < 10 ? key_of(i) : i == 11 ? k11 : changed;
		ASSERT_EQ(sb_statcache_reuse(c, names[i], strlen(names[i]), &k, &got), 1);
	}
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	ASSERT_OK(stat("index", &after));
	ASSERT_EQ(before.st_ino, after.st_ino);
	sb_statcache_free(c);
}

TEST(statcache_corruption_means_empty)
{
	sb_error err = SB_ERROR_INIT;
	sb_statcache *c;
	ASSERT_OK(sb_statcache_new(&c));
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, 2000000000000LL);
	for (uint64_t i = 0; i < 50; i++) {
		char path[32];
		int len = snprintf(path, sizeof(path), "f%02" PRIu64, i);
		sb_statcache_key k = key_of(i);
		sb_id id;
		id_of(i, &id);
		ASSERT_OK(sb_statcache_record(c, path, (size_t)len, &k, &id));
	}
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);
	ASSERT_EQ(sb_test_sh("cp index good"), 0);
	off_t size = 0;
	struct stat st;
	ASSERT_OK(stat("good", &st));
	size = st.st_size;

	/* every single flipped byte, at a spread of offsets, is caught */
	for (off_t off = 0; off < size; off += 7) {
		ASSERT_EQ(sb_test_sh("cp good index && printf '\\377' | dd of=index bs=1 seek=%lld "
				     "conv=notrunc status=none && ! cmp -s good index",
				     (long long)off),
			  0);
		ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_CORRUPT);
		ASSERT_EQ(sb_statcache_count(c), 0);
		ASSERT_TRUE(sb_statcache_problem(c) != NULL);
		sb_statcache_free(c);
	}
	const char *damage[] = {
	    "truncate -s 0 index",	    "truncate -s -1 index",
	    "truncate -s +1 index",	    "head -c 100 /dev/urandom > index",
	    "rm index && ln -s good index", "rm index && mkdir index",
	};
	for (size_t i = 0; i < ARRAY_SIZE(damage); i++) {
		ASSERT_EQ(sb_test_sh("rm -rf index && cp good index && %s", damage[i]), 0);
		int r = sb_statcache_load(AT_FDCWD, "index", &c, &err);
		if (r != SB_STATCACHE_CORRUPT)
			sb_test_fail(__FILE__, __LINE__, "'%s': load gave %d", damage[i], r);
		ASSERT_EQ(sb_statcache_count(c), 0);
		sb_statcache_free(c);
	}
	/* A stale lock left by a crash does not stop the next save. */
	ASSERT_EQ(sb_test_sh("rm -rf index && cp good index && touch index.lock"), 0);
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	ASSERT_EQ(sb_statcache_count(c), 50);
	sb_statcache_begin(c);
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	ASSERT_EQ(access("index.lock", F_OK), -1);
	sb_statcache_free(c);
}

#define NSEC_PER_S 1000000000LL

/* A listing of names, as sb_dirnames_read would give it (sorted). */
static void names_of(sb_dirnames *d, const char *const *v, size_t n)
{
	sb_buf b = SB_BUF_INIT;
	size_t *off = calloc(n ? n : 1, sizeof(*off));
	ASSERT_TRUE(off != NULL);
	for (size_t i = 0; i < n; i++) {
		off[i] = b.len;
		ASSERT_OK(sb_buf_putc(&b, (char)DT_REG));
		ASSERT_OK(sb_buf_append(&b, v[i], strlen(v[i]) + 1));
	}
	*d = (sb_dirnames){.data = b.data, .off = off, .n = n};
}

static sb_statcache_key dir_key(uint64_t n)
{
	sb_statcache_key k = key_of(n);
	k.mode = 040755;
	return k;
}

/* A directory's listing comes back only for exactly its key, and not when racy. */
TEST(statcache_directory_listings)
{
	sb_error err = SB_ERROR_INIT;
	const int64_t stamp = 2000000000000LL;
	sb_statcache *c = new_cache(stamp);
	const char *root_names[] = {"a", "b.c", "sub"};
	const char *sub_names[] = {"x", "\xff\n"};
	sb_dirnames root, sub, none, got;
	names_of(&root, root_names, 3);
	names_of(&sub, sub_names, 2);
	names_of(&none, NULL, 0);
	sb_statcache_key kr = dir_key(1), ks = dir_key(2), ke = dir_key(3), racy = dir_key(4);
	racy.ctime_ns = stamp;
	ASSERT_OK(sb_statcache_record_dir(c, "", 0, &kr, &root, NULL));
	ASSERT_OK(sb_statcache_record_dir(c, "sub", 3, &ks, &sub, NULL));
	ASSERT_OK(sb_statcache_record_dir(c, "sub/empty", 9, &ke, &none, NULL));
	ASSERT_OK(sb_statcache_record_dir(c, "racy", 4, &racy, &none, NULL));
	sb_statcache_key kf = key_of(5);
	sb_id id;
	id_of(5, &id);
	ASSERT_OK(sb_statcache_record(c, "a", 1, &kf, &id));
	ASSERT_ERR(sb_statcache_record_dir(c, "a", 1, &kf, &none, NULL), -EINVAL);
	ASSERT_ERR(sb_statcache_record(c, "sub", 3, &ks, &id), -EINVAL);
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);

	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	ASSERT_EQ(sb_statcache_count(c), 5);
	ASSERT_EQ(sb_statcache_reuse_dir(c, "", 0, &kr, &got, NULL), 1);
	ASSERT_EQ(got.n, 3);
	for (size_t i = 0; i < 3; i++) {
		ASSERT_STREQ(sb_dirnames_name(&got, i), root_names[i]);
		ASSERT_EQ(sb_dirnames_type(&got, i), DT_REG);
	}
	sb_dirnames_release(&got);
	ASSERT_EQ(sb_statcache_reuse_dir(c, "sub", 3, &ks, &got, NULL), 1);
	ASSERT_EQ(got.n, 2);
	ASSERT_STREQ(sb_dirnames_name(&got, 1), "\xff\n");
	sb_dirnames_release(&got);
	ASSERT_EQ(sb_statcache_reuse_dir(c, "sub/empty", 9, &ke, &got, NULL), 1);
	ASSERT_EQ(got.n, 0);
	sb_dirnames_release(&got);
	/* racy, another key, a file's record, an unknown path: list it */
	ASSERT_EQ(sb_statcache_reuse_dir(c, "racy", 4, &racy, &got, NULL), 0);
	for (int f = 0; f < 6; f++) {
		sb_statcache_key m = key_but(&ks, f, 040700);
		ASSERT_EQ(sb_statcache_reuse_dir(c, "sub", 3, &m, &got, NULL), 0);
	}
	sb_statcache_key ka = kf;
	ka.mode = 040755;
	ASSERT_EQ(sb_statcache_reuse_dir(c, "a", 1, &ka, &got, NULL), 0);
	ASSERT_FALSE(sb_statcache_lookup(c, "sub", 3, &ks, &id));
	ASSERT_EQ(sb_statcache_reuse_dir(c, "nope", 4, &ks, &got, NULL), 0);
	/* has_dir: a directory's record of any key (racy too), never a file's */
	ASSERT_TRUE(sb_statcache_has_dir(c, "", 0));
	ASSERT_TRUE(sb_statcache_has_dir(c, "sub/empty", 9));
	ASSERT_TRUE(sb_statcache_has_dir(c, "racy", 4));
	ASSERT_FALSE(sb_statcache_has_dir(c, "a", 1));
	ASSERT_FALSE(sb_statcache_has_dir(c, "nope", 4));
	ASSERT_FALSE(sb_statcache_has_dir(c, "su", 2));

	/* A tree id set for a directory comes back with its record. */
	sb_statcache_dir d;
	sb_id t1, t2;
	id_of(100, &t1);
	id_of(200, &t2);
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, stamp);
	ASSERT_EQ(sb_statcache_reuse_dir(c, "sub", 3, &ks, &got, &d), 1);
	sb_dirnames_release(&got);
	ASSERT_FALSE(sb_statcache_dir_knows(c, &d, &t1)); /* none yet */
	ASSERT_OK(sb_statcache_dir_set_tree(c, &d, &t1));
	ASSERT_OK(sb_statcache_record_dir(c, "new", 3, &ke, &none, &d));
	ASSERT_FALSE(sb_statcache_dir_knows(c, &d, &t2));
	ASSERT_OK(sb_statcache_dir_set_tree(c, &d, &t2));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	ASSERT_EQ(sb_statcache_count(c), 2);
	ASSERT_EQ(sb_statcache_reuse_dir(c, "sub", 3, &ks, &got, &d), 1);
	ASSERT_EQ(got.n, 2);
	sb_dirnames_release(&got);
	ASSERT_TRUE(sb_statcache_dir_knows(c, &d, &t1));
	ASSERT_FALSE(sb_statcache_dir_knows(c, &d, &t2));
	ASSERT_EQ(sb_statcache_reuse_dir(c, "new", 3, &ke, &got, &d), 1);
	sb_dirnames_release(&got);
	ASSERT_TRUE(sb_statcache_dir_knows(c, &d, &t2));
	sb_statcache_free(c);
	sb_dirnames_release(&root);
	sb_dirnames_release(&sub);
	sb_dirnames_release(&none);
}

/* Records path "f<i>" for i in [from, to) with key_of(i + bump) and a stamp. */
static void record_range(sb_statcache *c, uint64_t from, uint64_t to, uint64_t bump)
{
	for (uint64_t i = from; i < to; i++) {
		char path[32];
		int len = snprintf(path, sizeof(path), "f%05" PRIu64, i);
		sb_statcache_key k = key_of(i + bump);
		sb_id id;
		id_of(i + bump, &id);
		ASSERT_OK(sb_statcache_record(c, path, (size_t)len, &k, &id));
	}
}

/* A new cache stamped stamp, holding the records of record_range(0, n, 0). */
static sb_statcache *cache_of(int64_t stamp, uint64_t n)
{
	sb_statcache *c = new_cache(stamp);
	record_range(c, 0, n, 0);
	return c;
}

static bool has(sb_statcache *c, uint64_t i, uint64_t bump)
{
	char path[32];
	int len = snprintf(path, sizeof(path), "f%05" PRIu64, i);
	sb_statcache_key k = key_of(i + bump);
	sb_id got, want;
	id_of(i + bump, &want);
	return sb_statcache_lookup(c, path, (size_t)len, &k, &got) && sb_id_eq(&got, &want);
}

/*
 * A small change is saved as a delta beside the base, which stays as it is;
 * a large one rewrites the base and drops the delta. Each record is judged
 * by the stamp of the file it was written in.
 */
TEST(statcache_delta_saves)
{
	sb_error err = SB_ERROR_INIT;
	const int64_t stamp = 2000000000000LL;
	enum { N = 2000 };
	sb_statcache *c = cache_of(stamp, N);
	/* racy under the base's stamp */
	sb_statcache_key late = key_of(N);
	late.mtime_ns = stamp + 5;
	sb_id id;
	id_of(N, &id);
	ASSERT_OK(sb_statcache_record(c, "late", 4, &late, &id));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);
	struct stat base0, st;
	ASSERT_OK(stat("index", &base0));
	ASSERT_EQ(access("index.delta", F_OK), -1);

	/* f00000-f00009 changed, f00010-f00019 gone, "late" re-read later, the rest kept */
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, stamp + NSEC_PER_S);
	record_range(c, 0, 10, 1000000);
	for (uint64_t i = 20; i < N; i++) {
		char path[32];
		int len = snprintf(path, sizeof(path), "f%05" PRIu64, i);
		sb_statcache_key k = key_of(i);
		sb_id got;
		ASSERT_EQ(sb_statcache_reuse(c, path, (size_t)len, &k, &got), 1);
	}
	ASSERT_EQ(sb_statcache_reuse(c, "late", 4, &late, &id), 0); /* racy: not trusted */
	ASSERT_OK(sb_statcache_record(c, "late", 4, &late, &id));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	ASSERT_OK(stat("index", &st));
	ASSERT_EQ(st.st_ino, base0.st_ino);
	ASSERT_EQ(st.st_size, base0.st_size);
	ASSERT_OK(stat("index.delta", &st));
	ASSERT_TRUE(st.st_size < base0.st_size / 16);

	for (int pass = 0; pass < 2; pass++) {
		/* as saved, then as loaded again */
		ASSERT_EQ(sb_statcache_count(c), N - 10 + 1);
		for (uint64_t i = 0; i < N; i++) {
			ASSERT_EQ(has(c, i, 1000000), i < 10);
			ASSERT_EQ(has(c, i, 0), i >= 20);
		}
		sb_id got;
		/* by the delta's stamp */
		ASSERT_TRUE(sb_statcache_lookup(c, "late", 4, &late, &got));
		sb_statcache_free(c);
		ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	}

	/* The next delta is against the base again: f00000 back as it was, f00020 gone too. */
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, stamp + 2 * NSEC_PER_S);
	record_range(c, 0, 1, 0);
	record_range(c, 1, 10, 1000000);
	record_range(c, 21, N, 0);
	ASSERT_OK(sb_statcache_record(c, "late", 4, &late, &id));
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	ASSERT_OK(stat("index", &st));
	ASSERT_EQ(st.st_ino, base0.st_ino);
	ASSERT_EQ(sb_test_sh("cp index.delta delta-of-base0"), 0);
	for (int pass = 0; pass < 2; pass++) {
		ASSERT_EQ(sb_statcache_count(c), N - 11 + 1);
		for (uint64_t i = 0; i < N; i++) {
			ASSERT_EQ(has(c, i, 1000000), i >= 1 && i < 10);
			ASSERT_EQ(has(c, i, 0), i == 0 || i >= 21);
		}
		sb_statcache_free(c);
		ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	}

	/* Half of it changed: the base is rewritten whole, the delta goes. */
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, stamp + 3 * NSEC_PER_S);
	record_range(c, 0, N / 2, 2000000);
	record_range(c, N / 2, N, 0);
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	ASSERT_OK(stat("index", &st));
	ASSERT_NE(st.st_ino, base0.st_ino);
	ASSERT_EQ(access("index.delta", F_OK), -1);
	for (int pass = 0; pass < 2; pass++) {
		ASSERT_EQ(sb_statcache_count(c), N);
		for (uint64_t i = 0; i < N; i++)
			ASSERT_TRUE(has(c, i, i < N / 2 ? 2000000 : 0));
		sb_statcache_free(c);
		ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	}
	sb_statcache_free(c);

	/* A delta written against another base is not applied. */
	ASSERT_EQ(sb_test_sh("cp delta-of-base0 index.delta"), 0);
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	ASSERT_EQ(sb_statcache_count(c), N);
	ASSERT_TRUE(has(c, 0, 2000000));
	ASSERT_TRUE(has(c, N - 1, 0));
	sb_statcache_free(c);
}

/* A damaged delta is dropped whole; the base alone still loads. */
TEST(statcache_damaged_delta_is_dropped)
{
	sb_error err = SB_ERROR_INIT;
	const int64_t stamp = 2000000000000LL;
	enum { N = 500 };
	sb_statcache *c = cache_of(stamp, N);
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_begin(c);
	sb_statcache_set_stamp(c, stamp);
	record_range(c, 0, 1, 1000000);
	record_range(c, 2, N, 0);
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);
	ASSERT_EQ(sb_test_sh("cp index.delta good"), 0);
	struct stat st;
	ASSERT_OK(stat("good", &st));
	for (off_t off = 0; off < st.st_size; off += 3) {
		ASSERT_EQ(
		    sb_test_sh("cp good index.delta && printf '\\377' | dd of=index.delta bs=1 "
			       "seek=%lld conv=notrunc status=none && ! cmp -s good index.delta",
			       (long long)off),
		    0);
		ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
		ASSERT_EQ(sb_statcache_count(c), N);
		ASSERT_TRUE(has(c, 0, 0));
		ASSERT_FALSE(has(c, 0, 1000000));
		ASSERT_TRUE(has(c, 1, 0));
		sb_statcache_free(c);
	}
	const char *damage[] = {
	    "truncate -s 0 index.delta",
	    "truncate -s -1 index.delta",
	    "truncate -s +1 index.delta",
	    "rm index.delta && ln -s good index.delta",
	    "rm index.delta && mkfifo index.delta",
	};
	for (size_t i = 0; i < ARRAY_SIZE(damage); i++) {
		ASSERT_EQ(sb_test_sh("rm -f index.delta && cp good index.delta && %s", damage[i]),
			  0);
		ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
		ASSERT_EQ(sb_statcache_count(c), N);
		ASSERT_TRUE(has(c, 1, 0));
		sb_statcache_free(c);
	}
	/* the sound one */
	ASSERT_EQ(sb_test_sh("rm -f index.delta && cp good index.delta"), 0);
	ASSERT_EQ(sb_statcache_load(AT_FDCWD, "index", &c, &err), SB_STATCACHE_LOADED);
	ASSERT_EQ(sb_statcache_count(c), N - 1);
	ASSERT_TRUE(has(c, 0, 1000000));
	ASSERT_FALSE(has(c, 1, 0));
	sb_statcache_free(c);
}

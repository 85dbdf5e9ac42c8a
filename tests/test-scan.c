/* SPDX-License-Identifier: MIT */
/*
 * The scanner and export. The oracle is independent of snapbox: a listing
 * by find(1) (type, mode, size, mtime, link target, path) plus sha256sum(1)
 * of every regular file, compared between the scanned tree and its export.
 * The exclusion matcher and the stat cache have tests of their own
 * (test-ignore.c).
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <seccomp.h>
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

/* ---- scan and export ---- */

static sb_buf warnings = SB_BUF_INIT;

static void collect_warning(void *userdata, const char *path, const char *why)
{
	sb_buf_printf(&warnings, "%s: %s\n", path, why);
}

static sb_store *open_store(void)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = NULL;
	if (sb_store_open("store", SB_STORE_WRITE | SB_STORE_CREATE, &s, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "store: %s", err.msg);
	return s;
}

static int scan_dir(sb_store *s, const char *dir, sb_statcache *cache, const sb_ignore *ign,
		    sb_scan_flags flags, sb_id *root, sb_scan_stats *st, sb_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	sb_scan_opts o = {.flags = flags, .cache = cache, .ignore = ign, .warn = collect_warning};
	int r = sb_scan_run(s, fd, &o, root, st, err);
	close(fd);
	return r;
}

static void scan_ok(sb_store *s, const char *dir, sb_statcache *cache, sb_id *root,
		    sb_scan_stats *st)
{
	sb_error err = SB_ERROR_INIT;
	if (scan_dir(s, dir, cache, NULL, 0, root, st, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "scan '%s': %s", dir, err.msg);
}

static void export_ok(sb_store *s, const sb_id *root, const char *dir, sb_export_stats *st)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir -p '%s'", dir), 0);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	if (sb_export_tree(s, root, fd, 0, st, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "export to '%s': %s", dir, err.msg);
	close(fd);
}

/*
 * The oracle: type, mode, size, mtime, link target and path of everything but
 * directories' sizes (which depend on history) and the types snapbox skips,
 * plus sha256sum of each file under 100 MiB (bigger ones: cmp them).
 * -execdir keeps sha256sum working beyond PATH_MAX; it names files by
 * basename only, so test trees keep regular file basenames unique.
 */
static void listing(const char *dir, const char *out)
{
	ASSERT_EQ(sb_test_sh("cd '%s' && { "
			     "find . -mindepth 1 ! -type d ! -type s ! -type c ! -type b "
			     "-printf '%%y %%m %%s %%T@ %%l %%P\\0' && "
			     "find . -mindepth 1 -type d -printf '%%y %%m %%T@ %%P\\0' && "
			     "find . -type f -size -100M -execdir sha256sum -z {} + ; } "
			     "| LC_ALL=C sort -z > '%s/%s'",
			     dir, sb_test_dir(), out),
		  0);
}

static void assert_same_listing(const char *a, const char *b)
{
	listing(a, "list-a");
	listing(b, "list-b");
	if (sb_test_sh("cmp -s list-a list-b") != 0) {
		sb_test_sh("tr '\\0' '\\n' < list-a > la; tr '\\0' '\\n' < list-b > lb; "
			   "diff la lb | head -40 >&2");
		sb_test_fail(__FILE__, __LINE__, "listings of '%s' and '%s' differ", a, b);
	}
	/* the listing is not vacuous */
	ASSERT_EQ(sb_test_sh("test $(tr -cd '\\0' < list-a | wc -c) -gt 3"), 0);
}

static void mkfile_at(int dfd, const char *name, const void *data, size_t len, mode_t mode)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		sb_test_fail(__FILE__, __LINE__, "create '%s': %s", name, strerror(errno));
	ASSERT_OK(sb_write_full(fd, data, len));
	ASSERT_OK(fchmod(fd, mode));
	close(fd);
}

static int mkdir_open(int dfd, const char *name, mode_t mode)
{
	if (mkdirat(dfd, name, 0700) < 0)
		sb_test_fail(__FILE__, __LINE__, "mkdir '%s': %s", name, strerror(errno));
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_OK(fchmod(fd, mode));
	return fd;
}

static void set_mtime_at(int dfd, const char *name, int64_t sec, long nsec)
{
	struct timespec t[2] = {{sec, nsec}, {sec, nsec}};
	ASSERT_OK(utimensat(dfd, name, t, AT_SYMLINK_NOFOLLOW));
}

static bool have_warning(const char *needle)
{
	return warnings.data && memmem(warnings.data, warnings.len, needle, strlen(needle));
}

/* Builds the hostile tree under "src"; returns the number of regular files. */
static int hostile_tree(void)
{
	ASSERT_OK(mkdir("src", 0755));
	int src = open("src", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(src);
	int files = 0;
	char long_name[256];
	memset(long_name, 'L', 255);
	long_name[255] = 0;
	long_name[0] = (char)0xff;

	mkfile_at(src, "sp ace", "space\n", 6, 0644), files++;
	mkfile_at(src, "-rf", "dash\n", 5, 0644), files++;
	mkfile_at(src, "nl\nname", "newline\n", 8, 0644), files++;
	mkfile_at(src, "\xff\xfe\x80 bin", "\x00\x01\x02", 3, 0644), files++;
	mkfile_at(src, long_name, "long\n", 5, 0640), files++;
	mkfile_at(src, "*glob?[x]\\", "glob\n", 5, 0644), files++;
	mkfile_at(src, "setuid", "#!/bin/sh\n", 10, 04755), files++;
	mkfile_at(src, "setgid", "g\n", 2, 02711), files++;
	mkfile_at(src, "zero-perm", "secret\n", 7, 0), files++;
	mkfile_at(src, "empty", "", 0, 0644), files++;
	mkfile_at(src, "hl-a", "hard link\n", 10, 0644), files++;
	ASSERT_OK(linkat(src, "hl-a", src, "hl-b", 0));
	files++;
	set_mtime_at(src, "sp ace", 1000000000, 123456789);
	set_mtime_at(src, "-rf", -1, 999999999); /* before the epoch */

	int big = openat(src, "sparse-1g", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_OK(big);
	ASSERT_OK(ftruncate(big, 1 << 30));
	ASSERT_OK(sb_pwrite_full(big, "middle", 6, 512 << 20));
	close(big), files++;

	/* a 6 MiB file of varied bytes: chunked content */
	sb_buf b = SB_BUF_INIT;
	uint32_t x = 12345;
	for (int i = 0; i < (6 << 20) / 4; i++) {
		x = x * 1103515245u + 12345u;
		sb_buf_append(&b, &x, 4);
	}
	mkfile_at(src, "chunky", b.data, b.len, 0600), files++;
	sb_buf_release(&b);

	ASSERT_OK(symlinkat("no/such/target", src, "dangling"));
	ASSERT_OK(symlinkat("/etc/passwd", src, "to-outside"));
	ASSERT_OK(symlinkat("../../..", src, "up"));
	ASSERT_OK(symlinkat("\xff\n target", src, "weird-target"));
	ASSERT_OK(symlinkat("dirs", src, "link-to-dir"));
	set_mtime_at(src, "dangling", 1234567890, 5);
	ASSERT_OK(mkfifoat(src, "fifo", 0640));

	int dirs = mkdir_open(src, "dirs", 0755);
	int e = mkdir_open(dirs, "empty-dir", 0700);
	close(e);
	int sticky = mkdir_open(dirs, "sticky", 01777);
	mkfile_at(sticky, "in-sticky", "s\n", 2, 0666), files++;
	close(sticky);
	int sgid = mkdir_open(dirs, "setgid-dir", 02755);
	close(sgid);
	int ro = mkdir_open(dirs, "read-only", 0755);
	mkfile_at(ro, "in-ro", "ro\n", 3, 0444), files++;
	ASSERT_OK(fchmod(ro, 0555));
	close(ro);
	int closed = mkdir_open(dirs, "no-access", 0755);
	mkfile_at(closed, "in-no-access", "na\n", 3, 0644), files++;
	ASSERT_OK(fchmod(closed, 0));
	close(closed);
	set_mtime_at(dirs, "empty-dir", 1500000000, 1);

	/* 45 levels of 110-byte names: the bottom is beyond PATH_MAX */
	int cur = dup(dirs);
	for (int i = 0; i < 45; i++) {
		char name[128];
		snprintf(name, sizeof(name), "deep%02d-%0104d", i, 0);
		int next = mkdir_open(cur, name, 0755);
		close(cur);
		cur = next;
	}
	mkfile_at(cur, "deep-bottom", "bottom\n", 7, 0600), files++;
	ASSERT_OK(symlinkat("../../../deep-link", cur, "deep-symlink"));
	close(cur);
	close(dirs);

	/* skipped kinds: a socket and, as root, a device node */
	int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(sk);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "src/sock");
	ASSERT_OK(bind(sk, (struct sockaddr *)&sa, sizeof(sa)));
	close(sk);
	if (sb_test_is_root())
		ASSERT_OK(mknodat(src, "null-dev", S_IFCHR | 0666, makedev(1, 3)));
	close(src);
	return files;
}

TEST(hostile_tree_round_trip)
{
	int files = hostile_tree();
	sb_store *s = open_store();
	sb_id root;
	sb_scan_stats st;
	scan_ok(s, "src", NULL, &root, &st);
	ASSERT_EQ(st.files, files);
	ASSERT_EQ(st.files_hashed, files);
	ASSERT_EQ(st.symlinks, 6);
	ASSERT_EQ(st.fifos, 1);
	ASSERT_EQ(st.dirs, 6 + 45);
	ASSERT_EQ(st.skipped, sb_test_is_root() ? 2 : 1);
	ASSERT_TRUE(st.bytes > (1u << 30));
	ASSERT_TRUE(have_warning("sock: socket"));
	if (sb_test_is_root())
		ASSERT_TRUE(have_warning("null-dev: device"));

	sb_export_stats xs;
	export_ok(s, &root, "dst", &xs);
	ASSERT_EQ(xs.files, files);
	ASSERT_EQ(xs.dirs, st.dirs);
	ASSERT_EQ(xs.symlinks, 6);
	ASSERT_EQ(xs.fifos, 1);
	ASSERT_TRUE(xs.objects_read > st.dirs);
	assert_same_listing("src", "dst");

	ASSERT_EQ(sb_test_sh("cmp src/sparse-1g dst/sparse-1g"), 0);
	/* the 1 GiB file came back sparse */
	struct stat sst;
	ASSERT_OK(stat("dst/sparse-1g", &sst));
	ASSERT_EQ(sst.st_size, 1 << 30);
	ASSERT_TRUE((uint64_t)sst.st_blocks * 512 < (16u << 20));

	/* scanning the export gives the same root id */
	sb_id again;
	scan_ok(s, "dst", NULL, &again, &st);
	ASSERT_TRUE(sb_id_eq(&root, &again));
	sb_store_free(s);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static sb_statcache *load_cache(void)
{
	sb_error err = SB_ERROR_INIT;
	sb_statcache *c;
	int r = sb_statcache_load(AT_FDCWD, "index", &c, &err);
	ASSERT_TRUE(r == SB_STATCACHE_LOADED || r == SB_STATCACHE_MISSING);
	return c;
}

static void save_cache(sb_statcache *c)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_statcache_save(c, AT_FDCWD, "index", &err));
	sb_statcache_free(c);
}

/* Scans ws with the on-disk cache, saves it, returns the stats. */
static sb_scan_stats cached_scan(sb_store *s, sb_id *root)
{
	sb_statcache *c = load_cache();
	sb_scan_stats st;
	scan_ok(s, "ws", c, root, &st);
	save_cache(c);
	return st;
}

TEST(rescan_uses_the_stat_cache)
{
	ASSERT_EQ(
	    sb_test_sh("mkdir -p ws/d1 ws/d2/e && for i in 0 1 2 3 4 5 6 7 8 9; do "
		       "echo a$i > ws/f$i; echo b$i > ws/d1/g$i; echo c$i > ws/d2/e/h$i; done "
		       "&& ln -s f1 ws/link"),
	    0);
	sleep_ms(50); /* older than the first scan's stamp, by more than a clock tick */
	sb_store *s = open_store();
	sb_id r1, r2, r3;
	sb_scan_stats st = cached_scan(s, &r1);
	ASSERT_EQ(st.files, 30);
	ASSERT_EQ(st.files_hashed, 30);
	ASSERT_EQ(st.cache_hits, 0);

	st = cached_scan(s, &r2);
	ASSERT_EQ(st.files_hashed, 0);
	ASSERT_EQ(st.bytes_hashed, 0);
	ASSERT_EQ(st.cache_hits, 30);
	ASSERT_TRUE(sb_id_eq(&r1, &r2));

	/* touching one file re-hashes exactly that one */
	ASSERT_EQ(sb_test_sh("touch ws/d1/g3"), 0);
	sleep_ms(50);
	st = cached_scan(s, &r3);
	ASSERT_EQ(st.files_hashed, 1);
	ASSERT_EQ(st.cache_hits, 29);
	ASSERT_FALSE(sb_id_eq(&r1, &r3));

	/* same size, mtime put back: the ctime gives it away */
	ASSERT_EQ(sb_test_sh("touch -r ws/d1/g3 ref && echo X0 > ws/d1/g3 && touch -r ref ws/d1/g3 "
			     "&& rm ref"),
		  0);
	sleep_ms(50);
	st = cached_scan(s, &r2);
	ASSERT_EQ(st.files_hashed, 1);
	ASSERT_FALSE(sb_id_eq(&r2, &r3));
	sb_tree_entry e;
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_tree_lookup(s, &r2, "d1/g3", 5, &e, &err));
	sb_id want;
	ASSERT_OK(sb_content_store_buf(s, "X0\n", 3, &want, &err));
	ASSERT_TRUE(sb_id_eq(&e.id, &want));
	sb_tree_entry_release(&e);

	/* racily clean: an mtime not older than the cache stamp is never trusted */
	ASSERT_EQ(sb_test_sh("touch -d '2099-01-01 00:00:00.5' ws/f7"), 0);
	sleep_ms(50);
	st = cached_scan(s, &r2);
	ASSERT_EQ(st.files_hashed, 1);
	st = cached_scan(s, &r3);
	ASSERT_EQ(st.files_hashed, 1); /* unchanged, but still racy */
	ASSERT_EQ(st.cache_hits, 29);
	ASSERT_TRUE(sb_id_eq(&r2, &r3));
	sb_store_free(s);
	/*
	 * A cache hit does not ask the store (scan.h): the cache is kept in the
	 * store it describes, which capture's tests cover.
	 */
}

/* The root a scan without any cache gives: the truth to compare with. */
static void uncached_root(sb_store *s, sb_id *root)
{
	sb_scan_stats st;
	scan_ok(s, "ws", NULL, root, &st);
	ASSERT_EQ(st.cache_hits, 0);
}

/*
 * A cached re-scan of ws that lists `listed` directories and agrees with an
 * uncached one; *ret_puts (may be NULL): how many objects it handed the store.
 */
static void rescan_puts(sb_store *s, const sb_ignore *ign, uint64_t listed, sb_id *root,
			uint64_t *ret_puts)
{
	sb_error err = SB_ERROR_INIT;
	sb_statcache *c = load_cache();
	sb_scan_stats st;
	sb_store_stats before, after;
	sb_store_get_stats(s, &before);
	if (scan_dir(s, "ws", c, ign, 0, root, &st, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "scan: %s", err.msg);
	sb_store_get_stats(s, &after);
	ASSERT_OK(sb_store_flush(s, &err)); /* before the cache that names its objects */
	save_cache(c);
	if (ret_puts)
		*ret_puts = after.objects_written + after.objects_deduped - before.objects_written -
			    before.objects_deduped;
	if (st.dirs_listed != listed)
		sb_test_fail(__FILE__, __LINE__, "listed %" PRIu64 " directories, not %" PRIu64,
			     st.dirs_listed, listed);
	sb_id truth;
	sb_scan_stats tst;
	if (scan_dir(s, "ws", NULL, ign, 0, &truth, &tst, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "scan: %s", err.msg);
	ASSERT_TRUE(sb_id_eq(root, &truth));
	ASSERT_EQ(st.files, tst.files);
	ASSERT_EQ(st.skipped, tst.skipped);
}

static void rescan_lists(sb_store *s, const sb_ignore *ign, uint64_t listed, sb_id *root)
{
	rescan_puts(s, ign, listed, root, NULL);
}

/*
 * An unchanged directory is not listed again; any change to its entries
 * (its mtime put back or not), a replaced directory, a racy one, or other
 * exclusions: the re-scan still sees exactly what is there.
 */
TEST(rescan_reuses_directory_listings)
{
	ASSERT_EQ(sb_test_sh("mkdir -p ws/d1 ws/d2/e && for i in 0 1 2 3; do echo a$i > ws/f$i; "
			     "echo b$i > ws/d1/g$i; echo c$i > ws/d2/e/h$i; done && "
			     "echo o > ws/x.o && ln -s f1 ws/link && mkfifo ws/d1/fifo"),
		  0);
	sleep_ms(50);
	sb_store *s = open_store();
	sb_error err = SB_ERROR_INIT;
	sb_ignore *ign;
	ASSERT_OK(sb_ignore_new(&ign));
	ASSERT_OK(sb_ignore_add(ign, "*.o", &err));
	sb_id r0, r1, r2;
	uint64_t puts;
	rescan_puts(s, NULL, 4, &r0, &puts); /* the root, d1, d2, d2/e */
	ASSERT_EQ(puts, 4 + 1 + 13);	     /* 4 trees, the link's target, 13 files */
	rescan_puts(s, NULL, 0, &r1, &puts);
	ASSERT_TRUE(sb_id_eq(&r0, &r1));
	ASSERT_EQ(puts, 1); /* the link's target; the trees are known to be stored */

	/* a new name, in the deepest directory: that one is listed */
	ASSERT_EQ(sb_test_sh("echo new > ws/d2/e/new"), 0);
	sleep_ms(50);
	rescan_puts(s, NULL, 1, &r1, &puts);
	ASSERT_FALSE(sb_id_eq(&r0, &r1));
	ASSERT_EQ(puts, 1 + 1 + 3); /* the link, the file, d2/e, d2, the root */
	rescan_lists(s, NULL, 0, &r2);
	ASSERT_TRUE(sb_id_eq(&r1, &r2));

	/* renamed within d1, d1's mtime put back: its ctime still tells */
	ASSERT_EQ(sb_test_sh("touch -r ws/d1 ref && mv ws/d1/g1 ws/d1/g1b && touch -r ref ws/d1 "
			     "&& rm ref"),
		  0);
	sleep_ms(50);
	rescan_lists(s, NULL, 1, &r1);
	sb_tree_entry e;
	ASSERT_OK(sb_tree_lookup(s, &r1, "d1/g1b", 6, &e, &err));
	sb_tree_entry_release(&e);
	ASSERT_ERR(sb_tree_lookup(s, &r1, "d1/g1", 5, &e, &err), -ENOENT);

	/* removed; a directory replaced by another of the same name */
	ASSERT_EQ(sb_test_sh("rm ws/d1/g2 && rm -r ws/d2/e && mkdir ws/d2/e && echo z > ws/d2/e/z"),
		  0);
	sleep_ms(50);
	rescan_lists(s, NULL, 3, &r1); /* d1, d2, the new d2/e */
	rescan_lists(s, NULL, 0, &r2);
	ASSERT_TRUE(sb_id_eq(&r1, &r2));

	/* other exclusions: the names excluded before were listed too */
	rescan_lists(s, ign, 0, &r1);
	ASSERT_ERR(sb_tree_lookup(s, &r1, "x.o", 3, &e, &err), -ENOENT);
	rescan_lists(s, NULL, 0, &r2);
	ASSERT_OK(sb_tree_lookup(s, &r2, "x.o", 3, &e, &err));
	sb_tree_entry_release(&e);

	/* racily clean: a directory mtime not older than the stamp is listed every time */
	ASSERT_EQ(sb_test_sh("touch -d '2099-01-01 00:00:00.5' ws/d2"), 0);
	sleep_ms(50);
	rescan_lists(s, NULL, 1, &r1);
	rescan_lists(s, NULL, 1, &r2);
	ASSERT_TRUE(sb_id_eq(&r1, &r2));
	uncached_root(s, &r2);
	ASSERT_TRUE(sb_id_eq(&r1, &r2));
	sb_ignore_free(ign);
	sb_store_free(s);
}

TEST(exclusions)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir -p ws/build/x ws/sub ws/src && touch ws/build/x/o ws/a.o "
			     "ws/sub/b.o ws/a.log ws/keep.log ws/src/main.c && "
			     "printf '*.log\\n!keep.log\\n' > ws/.snapboxignore"),
		  0);
	int ws = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sb_ignore *ign;
	ASSERT_OK(sb_ignore_new(&ign));
	ASSERT_EQ(sb_ignore_load_file(ign, ws, SB_IGNORE_FILE, &err), 1);
	ASSERT_OK(sb_ignore_add(ign, "build/", &err));
	ASSERT_OK(sb_ignore_add(ign, "*.o", &err));
	ASSERT_OK(sb_ignore_add(ign, ".snapboxignore", &err)); /* has no effect on the file */
	close(ws);
	sb_store *s = open_store();
	sb_id root;
	sb_scan_stats st;
	ASSERT_OK(scan_dir(s, "ws", NULL, ign, 0, &root, &st, &err));
	ASSERT_EQ(st.skipped, 4); /* build (not entered), a.o, sub/b.o, a.log */
	ASSERT_EQ(st.files, 3);
	sb_tree_entry e;
	const char *gone[] = {"build", "a.o", "sub/b.o", "a.log", "build/x/o"};
	for (size_t i = 0; i < ARRAY_SIZE(gone); i++)
		ASSERT_ERR(sb_tree_lookup(s, &root, gone[i], strlen(gone[i]), &e, &err), -ENOENT);
	const char *kept[] = {"keep.log", ".snapboxignore", "src/main.c", "sub"};
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++) {
		ASSERT_OK(sb_tree_lookup(s, &root, kept[i], strlen(kept[i]), &e, &err));
		sb_tree_entry_release(&e);
	}
	sb_ignore_free(ign);
	sb_store_free(s);
}

TEST(other_filesystems_are_not_entered)
{
	sb_error err = SB_ERROR_INIT;
	if (unshare(CLONE_NEWNS) < 0)
		SB_SKIP("cannot create a mount namespace: %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		SB_SKIP("cannot make mounts private: %s", strerror(errno));
	ASSERT_EQ(sb_test_sh("mkdir -p ws/mnt ws/plain && echo x > ws/plain/f"), 0);
	if (mount("tmpfs", "ws/mnt", "tmpfs", 0, "size=1m") < 0)
		SB_SKIP("cannot mount a tmpfs: %s", strerror(errno));
	ASSERT_EQ(sb_test_sh("echo inside > ws/mnt/on-tmpfs"), 0);
	sb_store *s = open_store();
	sb_id root;
	sb_scan_stats st;
	ASSERT_OK(scan_dir(s, "ws", NULL, NULL, 0, &root, &st, &err));
	ASSERT_EQ(st.skipped, 1);
	ASSERT_EQ(st.files, 1);
	ASSERT_TRUE(have_warning("mnt: mount point"));
	sb_tree_entry e;
	ASSERT_ERR(sb_tree_lookup(s, &root, "mnt", 3, &e, &err), -ENOENT);

	ASSERT_OK(scan_dir(s, "ws", NULL, NULL, SB_SCAN_CROSS_MOUNTS, &root, &st, &err));
	ASSERT_EQ(st.skipped, 0);
	ASSERT_OK(sb_tree_lookup(s, &root, "mnt/on-tmpfs", 12, &e, &err));
	sb_tree_entry_release(&e);
	sb_store_free(s);
	ASSERT_OK(umount("ws/mnt"));
}

/*
 * The walk is spread over the worker threads (subtrees handed to idle ones);
 * the result must not depend on it: same root id, same stats, same warnings,
 * all delivered on the calling thread, with and without the stat cache.
 */
static pthread_t scan_caller;
static bool warned_elsewhere;

static void collect_warning_here(void *userdata, const char *path, const char *why)
{
	if (!pthread_equal(pthread_self(), scan_caller))
		warned_elsewhere = true;
	collect_warning(userdata, path, why);
}

static void scan_threads(sb_store *s, sb_statcache *cache, const sb_ignore *ign, int threads,
			 sb_id *root, sb_scan_stats *st, char **ret_warnings)
{
	sb_error err = SB_ERROR_INIT;
	int fd = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	sb_buf_truncate(&warnings, 0);
	scan_caller = pthread_self();
	sb_scan_opts o = {
	    .cache = cache, .ignore = ign, .threads = threads, .warn = collect_warning_here};
	if (sb_scan_run(s, fd, &o, root, st, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "scan with %d threads: %s", threads, err.msg);
	close(fd);
	ASSERT_FALSE(warned_elsewhere);
	/* warnings come in walk order only per thread: compare them sorted */
	ASSERT_OK(sb_buf_putc(&warnings, '\0'));
	FILE *f = fopen("warn-list", "w");
	ASSERT_TRUE(f != NULL);
	fputs(warnings.data, f);
	fclose(f);
	ASSERT_EQ(sb_test_sh("LC_ALL=C sort warn-list > warn-sorted"), 0);
	char *data;
	size_t len;
	ASSERT_OK(sb_read_file_at(AT_FDCWD, "warn-sorted", 1 << 20, &data, &len, &err));
	*ret_warnings = strndup(data, len);
	free(data);
}

TEST(parallel_walk_gives_the_same_tree)
{
	bool mounted = false;
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		mounted = true;
	ASSERT_EQ(
	    sb_test_sh(
		"mkdir ws && cd ws && for a in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do "
		"for b in x 'y z' $'nl\\n' -dash $'\\xff\\xfe' q; do "
		"mkdir -p \"d$a/$b/deeper/still\" && echo \"$a$b\" > \"d$a/$b/f\" && "
		"echo o > \"d$a/$b/x.o\" && echo s > \"d$a/$b/deeper/still/g\" && "
		"ln -s ../f \"d$a/$b/deeper/ln\" && ln -s /nowhere \"d$a/$b/dangling\"; "
		"done; mkfifo d$a/fifo; mkdir -p d$a/skipme/sub && echo k > d$a/skipme/sub/k; "
		"done && mkdir -p mnt && echo top > top && mkdir empty"),
	    0);
	for (int i = 0; i < 4; i++) {
		/* a socket deep down: a warning from inside a handed-over subtree */
		int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_OK(sk);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "ws/d%d/q/deeper/sock", i * 3);
		ASSERT_OK(bind(sk, (struct sockaddr *)&sa, sizeof(sa)));
		close(sk);
	}
	if (mounted && mount("tmpfs", "ws/mnt", "tmpfs", 0, "size=1m") < 0)
		mounted = false;
	if (mounted)
		ASSERT_EQ(sb_test_sh("echo inside > ws/mnt/on-tmpfs"), 0);
	sleep_ms(50); /* older than the first scan's stamp, by more than a clock tick */

	sb_error err = SB_ERROR_INIT;
	sb_ignore *ign;
	ASSERT_OK(sb_ignore_new(&ign));
	ASSERT_OK(sb_ignore_add(ign, "*.o", &err));
	ASSERT_OK(sb_ignore_add(ign, "skipme/", &err));
	sb_store *s = open_store();
	sb_statcache *c1, *c4;
	ASSERT_OK(sb_statcache_new(&c1));
	ASSERT_OK(sb_statcache_new(&c4));
	sb_id r1, r4;
	sb_scan_stats s1, s4;
	char *w1, *w4;
	for (int pass = 0; pass < 2; pass++) {
		scan_threads(s, c1, ign, 1, &r1, &s1, &w1);
		scan_threads(s, c4, ign, 4, &r4, &s4, &w4);
		ASSERT_TRUE(sb_id_eq(&r1, &r4));
		ASSERT_EQ(memcmp(&s1, &s4, sizeof(s1)), 0);
		ASSERT_STREQ(w1, w4);
		ASSERT_EQ(s1.files, 1 + 16 * 6 * 2);
		ASSERT_EQ(s1.symlinks, 16 * 6 * 2);
		ASSERT_EQ(s1.fifos, 16);
		ASSERT_EQ(s1.dirs, 16 * (1 + 6 * 3) + 1 + (mounted ? 0 : 1));
		ASSERT_EQ(s1.skipped, 16 * 6 + 16 + 4 + (mounted ? 1 : 0));
		ASSERT_EQ(s1.cache_hits, pass ? s1.files : 0);
		ASSERT_TRUE(strstr(w1, "d9/q/deeper/sock: socket") != NULL);
		if (mounted)
			ASSERT_TRUE(strstr(w1, "mnt: mount point") != NULL);
		free(w1);
		free(w4);
		/* the next pass looks up what this one recorded */
		ASSERT_OK(sb_statcache_save(c1, AT_FDCWD, "i1", &err));
		ASSERT_OK(sb_statcache_save(c4, AT_FDCWD, "i4", &err));
	}
	sb_statcache_free(c1);
	sb_statcache_free(c4);
	sb_ignore_free(ign);
	sb_store_free(s);
	if (mounted)
		ASSERT_OK(umount("ws/mnt"));
}

/*
 * One subtree much larger than the rest (node_modules beside src): the walk
 * of it, handed to a worker, hands its own subtrees to the workers that went
 * idle, and so on; whatever the split, the tree is the same, and a failure
 * deep inside ends the scan with it, every handed-over walk completed (the
 * sanitizer builds see a walk outliving its parent's directory nodes).
 */
static void lopsided_tree(void)
{
	ASSERT_EQ(
	    sb_test_sh("mkdir -p ws/a && echo a > ws/a/f && cd ws && for i in $(seq 1 40); do "
		       "for j in 1 2 3; do mkdir -p big/s$i/t$j/u && echo $i$j > big/s$i/t$j/f "
		       "&& echo u > big/s$i/t$j/u/g; done; done"),
	    0);
}

TEST(walks_handed_over_hand_over_again)
{
	lopsided_tree();
	sleep_ms(50); /* older than the first scan's stamp, by more than a clock tick */
	sb_store *s = open_store();
	sb_id r1, rn;
	sb_scan_stats s1, sn;
	char *w1, *wn;
	scan_threads(s, NULL, NULL, 1, &r1, &s1, &w1);
	ASSERT_EQ(s1.files, 1 + 40 * 3 * 2);
	sb_statcache *c;
	ASSERT_OK(sb_statcache_new(&c));
	for (int pass = 0; pass < 6; pass++) {
		scan_threads(s, pass & 1 ? c : NULL, NULL, 2 << (pass / 2), &rn, &sn, &wn);
		ASSERT_TRUE(sb_id_eq(&r1, &rn));
		ASSERT_EQ(sn.files, s1.files);
		ASSERT_EQ(sn.dirs, s1.dirs);
		ASSERT_STREQ(wn, w1);
		free(wn);
	}
	free(w1);
	sb_statcache_free(c);
	sb_store_free(s);
}

TEST(failure_inside_a_walk_handed_over_twice)
{
	if (!sb_test_is_root())
		SB_SKIP("needs root to switch to an unprivileged user");
	lopsided_tree();
	ASSERT_EQ(sb_test_sh("chmod 0 ws/big/s33/t2 && mkdir store && chown 65534 store"), 0);
	ASSERT_OK(setgroups(0, NULL));
	ASSERT_OK(setresgid(65534, 65534, 65534));
	ASSERT_OK(setresuid(65534, 65534, 65534));
	sb_store *s = open_store();
	for (int threads = 2; threads <= 16; threads *= 2) {
		sb_error err = SB_ERROR_INIT;
		int fd = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT_OK(fd);
		sb_scan_opts o = {.threads = threads, .warn = collect_warning};
		sb_id root;
		ASSERT_ERR(sb_scan_run(s, fd, &o, &root, NULL, &err), -EACCES);
		close(fd);
		if (!strstr(err.msg, "big/s33/t2"))
			sb_test_fail(__FILE__, __LINE__, "%d threads: %s", threads, err.msg);
	}
	sb_store_free(s);
}

/*
 * A writer rewrites a file while it is scanned again and again. Whatever the
 * scanner records must be exactly what it stored: the entry's size equals the
 * stored length, and the stored bytes hash back to the entry's id. Once the
 * writer stops, a scan through the stat cache must see the final content.
 */
TEST(file_changing_during_scan)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(
	    sb_test_sh("mkdir ws && head -c 3000000 /dev/urandom > ws/hot && echo c > ws/cold"), 0);
	pid_t pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		static char buf[65536];
		for (unsigned k = 0;; k++) {
			int fd = open("ws/hot", O_WRONLY | O_CLOEXEC | ((k % 16) ? 0 : O_TRUNC));
			memset(buf, (int)k, sizeof(buf));
			if (fd >= 0) {
				(void)!pwrite(fd, buf, sizeof(buf), (off_t)(k % 48) * 65536);
				close(fd);
			}
			sleep_ms(1);
		}
	}
	sb_store *s = open_store();
	uint64_t rereads = 0, unstable = 0;
	for (int i = 0; i < 12; i++) {
		sb_statcache *c = load_cache();
		sb_id root;
		sb_scan_stats st;
		sb_buf_truncate(&warnings, 0);
		scan_ok(s, "ws", (i % 2) ? c : NULL, &root, &st);
		save_cache(c);
		rereads += st.rereads;
		if (have_warning("hot: changed while being read"))
			unstable++;
		sb_tree_entry e;
		ASSERT_OK(sb_tree_lookup(s, &root, "hot", 3, &e, &err));
		int fd = open("out", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		ASSERT_OK(fd);
		ASSERT_OK(sb_content_write_fd(s, &e.id, e.size, fd, 0, &err));
		struct stat ost;
		ASSERT_OK(fstat(fd, &ost));
		ASSERT_EQ(ost.st_size, e.size);
		ASSERT_OK(lseek(fd, 0, SEEK_SET));
		sb_id back;
		uint64_t n;
		ASSERT_OK(sb_content_hash_fd(fd, &back, &n, &err));
		ASSERT_TRUE(sb_id_eq(&back, &e.id));
		close(fd);
		sb_tree_entry_release(&e);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("# %" PRIu64 " rereads, %" PRIu64 " scans stored hot as last read\n", rereads,
	       unstable);

	sleep_ms(50);
	sb_id root;
	sb_scan_stats st;
	sb_statcache *c = load_cache();
	scan_ok(s, "ws", c, &root, &st);
	save_cache(c);
	c = load_cache();
	scan_ok(s, "ws", c, &root, &st);
	save_cache(c);
	ASSERT_EQ(st.files_hashed, 0);
	export_ok(s, &root, "dst", NULL);
	ASSERT_EQ(sb_test_sh("cmp ws/hot dst/hot && cmp ws/cold dst/cold"), 0);
	sb_store_free(s);
}

/* Deeper than the fd budget allows: ancestors are closed and reopened. */
TEST(deep_tree_with_few_fds)
{
	struct rlimit rl = {64, 64};
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));
	ASSERT_OK(mkdir("ws", 0755));
	int cur = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; i < 90; i++) {
		char name[64];
		snprintf(name, sizeof(name), "file-%02d", i);
		mkfile_at(cur, name, name, strlen(name), 0600);
		snprintf(name, sizeof(name), "level-%02d-%040d", i, 0);
		int next = mkdir_open(cur, name, i % 3 ? 0755 : 0555);
		close(cur);
		cur = next;
	}
	close(cur);
	sb_store *s = open_store();
	sb_id root, again, many;
	sb_scan_stats st;
	scan_ok(s, "ws", NULL, &root, &st);
	ASSERT_EQ(st.dirs, 90);
	ASSERT_EQ(st.files, 90);
	export_ok(s, &root, "dst", NULL);
	assert_same_listing("ws", "dst");
	scan_ok(s, "dst", NULL, &again, &st);
	ASSERT_TRUE(sb_id_eq(&root, &again));
	/* More threads than fds to share: the caller's walk keeps the whole (small) budget. */
	char *warned;
	scan_threads(s, NULL, NULL, 16, &many, &st, &warned);
	free(warned);
	ASSERT_TRUE(sb_id_eq(&root, &many));
	sb_store_free(s);
}

TEST(export_refuses_a_non_empty_directory)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir -p ws dst && echo x > ws/f && echo mine > dst/keep"), 0);
	sb_store *s = open_store();
	sb_id root;
	sb_scan_stats st;
	scan_ok(s, "ws", NULL, &root, &st);
	int fd = open("dst", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_ERR(sb_export_tree(s, &root, fd, 0, NULL, &err), -ENOTEMPTY);
	ASSERT_TRUE(strstr(err.msg, "dst") != NULL);
	ASSERT_TRUE(strstr(err.msg, "keep") != NULL);
	close(fd);
	ASSERT_EQ(sb_test_sh("test \"$(ls -A dst)\" = keep && test \"$(cat dst/keep)\" = mine"), 0);
	sb_store_free(s);
}

TEST(export_names_a_corrupt_object)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir ws && head -c 8192 /dev/urandom > ws/rand && echo ok > ws/ok"),
		  0);
	sb_store *s = open_store();
	sb_id root;
	sb_scan_stats st;
	scan_ok(s, "ws", NULL, &root, &st);
	ASSERT_OK(sb_store_flush(s, &err));
	sb_tree_entry e;
	ASSERT_OK(sb_tree_lookup(s, &root, "rand", 4, &e, &err));
	sb_store_free(s);

	/* incompressible bytes are stored as they are: find them and flip one */
	char *data;
	size_t len;
	ASSERT_OK(sb_read_file_at(AT_FDCWD, "ws/rand", 1 << 20, &data, &len, &err));
	char *pack = sb_test_sh_out("ls store/packs/*.pack | head -1");
	pack[strcspn(pack, "\n")] = 0;
	char *pd;
	size_t plen;
	ASSERT_OK(sb_read_file_at(AT_FDCWD, pack, 1 << 30, &pd, &plen, &err));
	char *at = memmem(pd, plen, data, 64);
	if (!at)
		SB_SKIP("the store compressed random bytes: cannot locate them to corrupt");
	int fd = open(pack, O_WRONLY | O_CLOEXEC);
	char flip = (char)(at[100] ^ 1);
	ASSERT_OK(sb_pwrite_full(fd, &flip, 1, (at - pd) + 100));
	close(fd);

	s = open_store();
	ASSERT_EQ(sb_test_sh("mkdir dst"), 0);
	fd = open("dst", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_ERR(sb_export_tree(s, &root, fd, 0, NULL, &err), -EBADMSG);
	char hex[SB_HEX_LEN + 1];
	ASSERT_TRUE(strstr(err.msg, sb_id_to_hex(&e.id, hex)) != NULL);
	ASSERT_TRUE(strstr(err.msg, "rand") != NULL);
	/* nothing half-written under the real name, no temp left */
	ASSERT_EQ(sb_test_sh("test ! -e dst/rand && test -z \"$(ls -A dst | grep sb-tmp)\""), 0);
	close(fd);
	sb_tree_entry_release(&e);
	free(data);
	free(pd);
	free(pack);
	sb_store_free(s);
}

TEST(export_entry_replace)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = open_store();
	ASSERT_EQ(sb_test_sh("mkdir d && echo old > d/f && ln -s old d/l"), 0);
	int dfd = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sb_tree_entry e = {.name = "f",
			   .name_len = 1,
			   .type = SB_FT_REG,
			   .mode = 04750,
			   .size = 4,
			   .mtime_ns = 1600000000000000001LL};
	ASSERT_OK(sb_content_store_buf(s, "new\n", 4, &e.id, &err));
	ASSERT_ERR(sb_export_entry(s, dfd, &e, NULL, NULL, 0, NULL, NULL, &err), -EEXIST);
	ASSERT_EQ(sb_test_sh("test \"$(cat d/f)\" = old && test $(ls -A d | wc -l) = 2"), 0);
	sb_export_stats xs = {0};
	ASSERT_OK(sb_export_entry(s, dfd, &e, NULL, "d/f", SB_EXPORT_REPLACE, NULL, &xs, &err));
	ASSERT_EQ(xs.files, 1);
	ASSERT_EQ(sb_test_sh("test \"$(cat d/f)\" = new && test $(stat -c %%a d/f) = 4750 && "
			     "test $(stat -c %%Y d/f) = 1600000000"),
		  0);
	/* a symlink replaced by a file: the link is replaced, its target untouched */
	e.name = "l";
	ASSERT_OK(sb_export_entry(s, dfd, &e, NULL, NULL, SB_EXPORT_REPLACE, NULL, NULL, &err));
	ASSERT_EQ(sb_test_sh("test -f d/l && ! test -L d/l && ! test -e d/old"), 0);
	/* a directory is made (or reused) writable, then finished */
	sb_tree_entry de = {.name = "sub",
			    .name_len = 3,
			    .type = SB_FT_DIR,
			    .mode = 0500,
			    .mtime_ns = 1000000000LL};
	int sub = -1;
	ASSERT_OK(sb_export_entry(s, dfd, &de, NULL, NULL, 0, &sub, NULL, &err));
	ASSERT_OK(sub);
	ASSERT_OK(sb_export_dir_finish(sub, &de, NULL, &err));
	close(sub);
	ASSERT_EQ(sb_test_sh("test $(stat -c %%a d/sub) = 500 && test $(stat -c %%Y d/sub) = 1"),
		  0);
	ASSERT_OK(sb_export_entry(s, dfd, &de, NULL, NULL, SB_EXPORT_REPLACE, &sub, NULL, &err));
	close(sub);
	ASSERT_EQ(sb_test_sh("test $(stat -c %%a d/sub) = 700 && test -z \"$(ls -A d | grep "
			     "sb-tmp)\""),
		  0);
	close(dfd);
	sb_store_free(s);
}

/* What a scan would have recorded for d/name, now. */
static sb_export_expect expect_now(int dfd, const char *name)
{
	struct stat st;
	ASSERT_OK(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW));
	return (sb_export_expect){.present = true,
				  .type = SB_FT_REG,
				  .size = (uint64_t)st.st_size,
				  .mtime_ns = sb_ns_from_timespec(&st.st_mtim)};
}

/*
 * Export with every renameat2 that carries a flag failing with errnum, as on
 * a filesystem without RENAME_EXCHANGE and RENAME_NOREPLACE (EINVAL) or
 * under a filter that blocks the call (ENOSYS); with no_links, hard links
 * refused too (the last fallback: a look, then a rename). Runs in a child:
 * the filter stays with the process.
 */
static void export_with_rename_flags_refused(int errnum, bool no_links)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	ASSERT_TRUE(ctx != NULL);
	ASSERT_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(errnum), SCMP_SYS(renameat2), 1,
				   SCMP_A4(SCMP_CMP_NE, 0)));
	if (no_links) {
		ASSERT_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(linkat), 0));
		ASSERT_OK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(link), 0));
	}
	ASSERT_OK(seccomp_load(ctx));
	seccomp_release(ctx);
	ASSERT_EQ(renameat2(AT_FDCWD, "nothing", AT_FDCWD, "either", RENAME_NOREPLACE), -1);
	/* glibc answers the kernel's ENOSYS with EINVAL when flags are given */
	ASSERT_TRUE(errno == errnum || errno == EINVAL);

	sb_error err = SB_ERROR_INIT;
	sb_store *s = open_store();
	ASSERT_EQ(sb_test_sh("mkdir d && echo old > d/f && echo gone > d/g && echo mine > d/h"), 0);
	int dfd = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(dfd);
	sb_tree_entry e = {.name = "f",
			   .name_len = 1,
			   .type = SB_FT_REG,
			   .mode = 0640,
			   .size = 4,
			   .mtime_ns = 1600000000000000001LL};
	ASSERT_OK(sb_content_store_buf(s, "new\n", 4, &e.id, &err));
	/* replaced, where it is as the scan saw it */
	sb_export_expect x = expect_now(dfd, "f");
	ASSERT_OK(sb_export_entry(s, dfd, &e, &x, NULL, SB_EXPORT_REPLACE, NULL, NULL, &err));
	ASSERT_EQ(sb_test_sh("test \"$(cat d/f)\" = new && test $(stat -c %%a d/f) = 640"), 0);
	/* written where the scan saw nothing */
	e.name = "n";
	sb_export_expect none = {.present = false};
	ASSERT_OK(sb_export_entry(s, dfd, &e, &none, NULL, SB_EXPORT_REPLACE, NULL, NULL, &err));
	ASSERT_EQ(
	    sb_test_sh("test \"$(cat d/n)\" = new && test $(stat -c %%h d/f d/n | sort -u) = 1"),
	    0);
	/* removed, where it is as the scan saw it */
	x = expect_now(dfd, "g");
	ASSERT_OK(sb_export_remove(dfd, "g", &x, &err));
	ASSERT_EQ(sb_test_sh("test ! -e d/g"), 0);
	/* edited since the scan: neither replaced nor removed, and said so */
	x = expect_now(dfd, "h");
	ASSERT_EQ(sb_test_sh("echo edited since the scan > d/h"), 0);
	e.name = "h";
	ASSERT_ERR(sb_export_entry(s, dfd, &e, &x, NULL, SB_EXPORT_REPLACE, NULL, NULL, &err),
		   -ESTALE);
	ASSERT_TRUE(strstr(err.msg, "not overwritten") != NULL);
	ASSERT_ERR(sb_export_remove(dfd, "h", &x, &err), -ESTALE);
	ASSERT_TRUE(strstr(err.msg, "not removed") != NULL);
	/* something appeared where the scan saw nothing: kept */
	ASSERT_EQ(sb_test_sh("echo appeared > d/a"), 0);
	e.name = "a";
	ASSERT_ERR(sb_export_entry(s, dfd, &e, &none, NULL, SB_EXPORT_REPLACE, NULL, NULL, &err),
		   -ESTALE);
	ASSERT_EQ(
	    sb_test_sh("test \"$(cat d/h)\" = 'edited since the scan' && "
		       "test \"$(cat d/a)\" = appeared && test -z \"$(ls -A d | grep sb-tmp)\" "
		       "&& test \"$(ls d | tr '\\n' ' ')\" = 'a f h n '"),
	    0);
	close(dfd);
	sb_store_free(s);
}

TEST(export_falls_back_without_rename_flags)
{
	const struct {
		int err;
		bool no_links;
	} cases[] = {{EINVAL, false}, {ENOSYS, false}, {EINVAL, true}};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		pid_t pid = fork();
		ASSERT_OK(pid);
		if (pid == 0) {
			char dir[32];
			snprintf(dir, sizeof(dir), "case%zu", i);
			if (mkdir(dir, 0700) < 0 || chdir(dir) < 0)
				_exit(1);
			export_with_rename_flags_refused(cases[i].err, cases[i].no_links);
			_exit(0);
		}
		int st;
		ASSERT_EQ(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			sb_test_fail(__FILE__, __LINE__, "renameat2 flags refused (%s)%s: failed",
				     strerror(cases[i].err), cases[i].no_links ? ", no links" : "");
	}
}

/*
 * Answers the filter's notifications (renameat2 with RENAME_EXCHANGE): the
 * first goes through, the second fails with EIO, any later one goes through.
 */
typedef struct exchange_referee {
	int fd; /* the notification fd, once the filter is loaded; -1 before */
	pthread_mutex_t lock;
	pthread_cond_t ready;
} exchange_referee;

static void *referee_main(void *arg)
{
	exchange_referee *ref = arg;
	pthread_mutex_lock(&ref->lock);
	while (ref->fd < 0)
		pthread_cond_wait(&ref->ready, &ref->lock);
	int fd = ref->fd;
	pthread_mutex_unlock(&ref->lock);
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	if (seccomp_notify_alloc(&req, &resp) < 0)
		return NULL;
	for (unsigned n = 1;; n++) {
		memset(req, 0, sizeof(*req)); /* the kernel refuses one that is not */
		int r = seccomp_notify_receive(fd, req);
		if (r < 0) {
			fprintf(stderr, "# referee: receive: %s\n", strerror(-r));
			break;
		}
		resp->id = req->id;
		resp->val = 0;
		resp->error = n == 2 ? -EIO : 0;
		resp->flags = n == 2 ? 0 : SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		r = seccomp_notify_respond(fd, resp);
		if (r < 0 && r != -ENOENT) {
			fprintf(stderr, "# referee: respond: %s\n", strerror(-r));
			break;
		}
	}
	seccomp_notify_free(req, resp);
	return NULL;
}

/*
 * The user's file is swapped out, found edited since the scan, and the swap
 * back fails: it must be kept under the temp name and the error must say
 * where, never unlinked; our file holds the name.
 */
static void exchange_back_refused(void)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = open_store();
	ASSERT_EQ(sb_test_sh("mkdir d && echo old > d/f"), 0);
	int dfd = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(dfd);
	sb_tree_entry e = {.name = "f", .name_len = 1, .type = SB_FT_REG, .mode = 0640, .size = 4};
	ASSERT_OK(sb_content_store_buf(s, "new\n", 4, &e.id, &err));
	sb_export_expect x = expect_now(dfd, "f");
	ASSERT_EQ(sb_test_sh("echo edited since the scan > d/f"), 0);

	/* The referee runs before the filter, so the filter does not hold it. */
	exchange_referee ref = {-1, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
	pthread_t t;
	ASSERT_OK(pthread_create(&t, NULL, referee_main, &ref));
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	ASSERT_TRUE(ctx != NULL);
	ASSERT_OK(seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(renameat2), 1,
				   SCMP_A4(SCMP_CMP_EQ, RENAME_EXCHANGE)));
	ASSERT_OK(seccomp_load(ctx));
	pthread_mutex_lock(&ref.lock);
	ref.fd = seccomp_notify_fd(ctx);
	pthread_cond_signal(&ref.ready);
	pthread_mutex_unlock(&ref.lock);
	ASSERT_TRUE(ref.fd >= 0);

	ASSERT_ERR(sb_export_entry(s, dfd, &e, &x, NULL, SB_EXPORT_REPLACE, NULL, NULL, &err),
		   -ESTALE);
	printf("# %s\n", err.msg);
	ASSERT_TRUE(strstr(err.msg, "could not be given its name back") != NULL);
	const char *at = strstr(err.msg, ".sb-tmp-");
	ASSERT_TRUE(at != NULL);
	char kept[64];
	snprintf(kept, sizeof(kept), "%.*s", (int)strcspn(at, "'"), at);
	ASSERT_EQ(sb_test_sh("test \"$(cat 'd/%s')\" = 'edited since the scan' && "
			     "test \"$(cat d/f)\" = new && test $(ls -A d | wc -l) = 2",
			     kept),
		  0);
	close(dfd);
	sb_store_free(s);
	seccomp_release(ctx);
}

TEST(export_keeps_the_users_file_when_the_swap_back_fails)
{
	pid_t pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		if (mkdir("child", 0700) < 0 || chdir("child") < 0)
			_exit(1);
		alarm(60); /* a referee that stopped answering would leave us waiting */
		exchange_back_refused();
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static unsigned progress_calls;

static void count_progress(void *userdata, const sb_scan_stats *so_far)
{
	progress_calls++;
}

TEST(progress_is_rate_limited)
{
	ASSERT_EQ(sb_test_sh("mkdir ws && head -c 64000000 /dev/urandom > ws/big && "
			     "for i in $(seq 1 300); do echo $i > ws/f$i; done"),
		  0);
	sb_store *s = open_store();
	int fd = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sb_scan_opts o = {.progress = count_progress, .threads = 1};
	sb_id root;
	sb_scan_stats st;
	sb_error err = SB_ERROR_INIT;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_OK(sb_scan_run(s, fd, &o, &root, &st, &err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("# scan took %.2f s, %u progress calls\n", secs, progress_calls);
	ASSERT_TRUE(progress_calls <= (unsigned)(secs * 10) + 2);
	if (secs > 0.5)
		ASSERT_TRUE(progress_calls >= 1);
	close(fd);
	sb_store_free(s);
}

/*
 * An unreadable directory is an error naming it, never a silent hole (a
 * restore would take a hole for a deletion). Files of another owner are still
 * read (O_NOATIME is refused for them: the fallback must work).
 */
TEST(unreadable_directory_is_an_error)
{
	if (!sb_test_is_root())
		SB_SKIP("needs root to switch to an unprivileged user");
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir -p ws/open ws/secret store && echo a > ws/open/f && "
			     "echo b > ws/secret/g && chmod 0 ws/secret && chown 65534 store"),
		  0);
	ASSERT_OK(setgroups(0, NULL));
	ASSERT_OK(setresgid(65534, 65534, 65534));
	ASSERT_OK(setresuid(65534, 65534, 65534));
	sb_store *s = open_store();
	sb_id root;
	sb_scan_stats st;
	ASSERT_ERR(scan_dir(s, "ws", NULL, NULL, 0, &root, &st, &err), -EACCES);
	ASSERT_TRUE(strstr(err.msg, "secret") != NULL);
	ASSERT_EQ(sb_test_sh("chmod 0 ws/open/f 2>/dev/null || true"), 0); /* not ours: stays */
	/* without the secret directory (excluded), root-owned files read fine */
	sb_ignore *ign;
	ASSERT_OK(sb_ignore_new(&ign));
	ASSERT_OK(sb_ignore_add(ign, "/secret", &err));
	ASSERT_OK(scan_dir(s, "ws", NULL, ign, 0, &root, &st, &err));
	ASSERT_EQ(st.files_hashed, 1);
	sb_ignore_free(ign);
	sb_store_free(s);
}

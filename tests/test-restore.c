/* SPDX-License-Identifier: MIT */
/*
 * Restore and its check. The check is exercised honestly: the library runs
 * the writes (sb_restore_run) and the check (sb_restore_check) as two calls,
 * so a test changes the workspace between them the way a concurrent writer
 * would, and the check must see it — or, outside what it covers, must not
 * claim to (a full scan is the judge).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "sb-test.h"
#include "sb-test-store.h"
#include "sb-test-tree.h"
#include "content.h"
#include "export.h"
#include "fileio.h"
#include "restore-internal.h"
#include "restore.h"
#include "scan.h"
#include "statcache.h"
#include "store.h"

/*
 * A workspace ws at state A (scanned into *a), then changed to state B
 * (scanned into *b): edits, a removal, additions, a type change, a mode
 * change, a new directory, a removed directory, and a deep change.
 */
static void two_states(sb_store *s, sb_id *a, sb_id *b)
{
	ASSERT_EQ(
	    sb_test_sh("mkdir -p ws/src/lib ws/docs ws/old/x ws/deep/a/b/c ws/quiet && "
		       "for i in 1 2 3 4 5; do echo $i > ws/src/f$i; echo q$i > ws/quiet/q$i; "
		       "done && echo lib > ws/src/lib/l && echo d > ws/docs/readme && "
		       "echo o > ws/old/x/o && echo deep > ws/deep/a/b/c/file && "
		       "ln -s f1 ws/src/link && mkfifo ws/src/pipe && chmod 600 ws/src/f2 && "
		       "touch -d 2020-01-01 ws/src/f3 ws/deep/a/b/c/file"),
	    0);
	sb_test_scan(s, "ws", a);
	ASSERT_EQ(sb_test_sh("cd ws && echo changed >> src/f1 && rm src/f4 && echo new > src/f6 && "
			     "rm src/link && echo notalink > src/link && chmod 640 src/f2 && "
			     "mkdir -p newdir/in && echo n > newdir/in/n && rm -r old && "
			     "echo deeper >> deep/a/b/c/file && touch -d 2021-01-01 src/f5 quiet"),
		  0);
	sb_test_scan(s, "ws", b);
}

typedef struct restored {
	sb_restore_touched *touched;
	sb_restore_stats st;
	int root_fd;
} restored;

/* Writes: the workspace goes from cur to target. */
static void run(sb_store *s, const sb_id *cur, const sb_id *target, int threads, restored *ret)
{
	sb_error err = SB_ERROR_INIT;
	ret->root_fd = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(ret->root_fd);
	sb_restore_opts o = {.threads = threads};
	if (sb_restore_run(s, ret->root_fd, cur, target, &o, &ret->touched, &ret->st, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "restore: %s", err.msg);
}

static int check(sb_store *s, restored *rs, const sb_id *target, sb_id *ret_root,
		 sb_restore_check_stats *ret_cs, sb_error *err)
{
	sb_restore_check_stats cs;
	int r =
	    sb_restore_check(s, rs->root_fd, target, rs->touched, NULL, NULL, ret_root, &cs, err);
	if (ret_cs)
		*ret_cs = cs;
	return r;
}

static void done(restored *rs)
{
	sb_restore_touched_free(rs->touched);
	close(rs->root_fd);
}

/* restore B -> A, with the check's root compared to a full scan's. */
TEST(check_agrees_with_a_full_scan)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	sb_id a, b, root, scanned;
	two_states(s, &a, &b);
	for (int threads = 1; threads <= 4; threads += 3) {
		restored rs;
		run(s, &b, &a, threads, &rs);
		ASSERT_TRUE(rs.st.written > 0 && rs.st.removed > 0 && rs.st.attrs > 0);
		ASSERT_OK(check(s, &rs, &a, &root, NULL, &err));
		ASSERT_TRUE(sb_id_eq(&root, &a));
		sb_test_scan(s, "ws", &scanned);
		ASSERT_TRUE(sb_id_eq(&scanned, &a));
		done(&rs);
		/* and forward again, A -> B */
		run(s, &a, &b, threads, &rs);
		ASSERT_OK(check(s, &rs, &b, &root, NULL, &err));
		ASSERT_TRUE(sb_id_eq(&root, &b));
		sb_test_scan(s, "ws", &scanned);
		ASSERT_TRUE(sb_id_eq(&scanned, &b));
		done(&rs); /* the workspace is B again, as the next round needs */
	}
	sb_store_free(s);
}

/*
 * Each tamper runs between the writes and the check, on a path the restore
 * touched (or in a directory it changed); the check must fail naming it.
 */
static void tampered(const char *cmd, const char *names, const char *how)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	sb_id a, b, root;
	two_states(s, &a, &b);
	restored rs;
	run(s, &b, &a, 0, &rs);
	ASSERT_EQ(sb_test_sh("cd ws && %s", cmd), 0);
	ASSERT_ERR(check(s, &rs, &a, &root, NULL, &err), -ESTALE);
	if (!strstr(err.msg, names) || !strstr(err.msg, how))
		sb_test_fail(__FILE__, __LINE__, "after '%s': \"%s\" does not name %s (%s)", cmd,
			     err.msg, names, how);
	done(&rs);
	sb_store_free(s);
}

/*
 * A change made between the scan and the restore (cmd, in the workspace at
 * state B) to a path the restore to A would write or remove: the restore
 * stops naming it, the change survives (shell oracle `check`), and no temp
 * name is left behind.
 */
static void raced(const char *cmd, const char *name, const char *how, const char *check_cmd)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	sb_id a, b;
	two_states(s, &a, &b);
	ASSERT_EQ(sb_test_sh("cd ws && %s", cmd), 0);
	int fd = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	sb_restore_opts o = {.threads = 4};
	sb_restore_touched *t = NULL;
	sb_restore_stats st;
	ASSERT_ERR(sb_restore_run(s, fd, &b, &a, &o, &t, &st, &err), -ESTALE);
	if (!strstr(err.msg, name) || !strstr(err.msg, how))
		sb_test_fail(__FILE__, __LINE__, "after '%s': \"%s\" does not name %s (%s)", cmd,
			     err.msg, name, how);
	sb_restore_touched_free(t);
	close(fd);
	ASSERT_EQ(sb_test_sh("cd ws && %s", check_cmd), 0);
	ASSERT_EQ(sb_test_sh("test -z \"$(find ws -name '.sb-tmp-*')\""), 0);
	sb_store_free(s);
}

TEST(restore_keeps_a_file_edited_after_the_scan)
{
	/* the restore to A rewrites src/f1 */
	raced("echo mine > src/f1", "src/f1", "not overwritten", "test \"$(cat src/f1)\" = mine");
}

TEST(restore_keeps_a_file_created_after_the_scan)
{
	/* src/f4 is only in A: the restore creates it */
	raced("echo mine > src/f4", "src/f4", "not overwritten", "test \"$(cat src/f4)\" = mine");
}

TEST(restore_keeps_a_file_edited_before_its_removal)
{
	/* src/f6 is only in B: the restore removes it */
	raced("echo mine >> src/f6", "src/f6", "not removed", "grep -q mine src/f6");
}

TEST(restore_keeps_a_symlink_put_where_a_file_was)
{
	/* src/link is a file in B and a symlink in A: the file is removed first */
	raced("rm src/link && ln -s elsewhere src/link", "src/link", "not removed",
	      "test \"$(readlink src/link)\" = elsewhere");
}

TEST(check_catches_content_changed_with_size_and_mtime_kept)
{
	/* f1 was rewritten by the restore ("1"); same size, mtime put back */
	tampered("m=$(stat -c %y src/f1) && echo 9 > src/f1 && touch -d \"$m\" src/f1", "src/f1",
		 "other content");
}

TEST(check_catches_a_removal_undone)
{
	/* newdir was removed by the restore */
	tampered("mkdir newdir", "newdir", "does not have");
}

TEST(check_catches_a_write_gone)
{
	tampered("rm src/f4", "src/f4", "missing");
}

TEST(check_catches_a_mode_changed)
{
	tampered("chmod 604 src/f2", "src/f2", "mode 0604");
}

TEST(check_catches_a_type_changed)
{
	tampered("rm src/link && echo x > src/link", "src/link", "is a file, not a symlink");
}

TEST(check_catches_a_new_entry_in_a_changed_directory)
{
	tampered("echo stray > src/stray", "src/stray", "does not have");
}

TEST(check_catches_a_directory_mtime_set_alone)
{
	/* quiet/ only had its mtime changed in B: the restore set it back */
	tampered("touch -d 2002-02-02 quiet", "quiet", "mtime");
}

TEST(check_catches_a_directory_mtime_on_the_way)
{
	/* deep/a/b was walked through on the way to deep/a/b/c/file */
	tampered("touch -d 2001-01-01 deep/a/b", "deep/a/b", "mtime");
}

TEST(check_catches_a_change_inside_a_directory_written_whole)
{
	/* old/ was removed after A: restore B -> A writes it whole */
	tampered("echo x >> old/x/o", "old/x/o", "");
}

/*
 * Outside what the check covers: a file in a directory the restore did not
 * change. The check does not see it (and says nothing about it); a scan does.
 * This pins down the documented scope, so that it is never claimed wider.
 */
TEST(check_scope_ends_at_untouched_directories)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	sb_id a, b, root, scanned;
	two_states(s, &a, &b);
	restored rs;
	run(s, &b, &a, 0, &rs);
	ASSERT_EQ(sb_test_sh("echo changed > ws/quiet/q1"), 0);
	ASSERT_OK(check(s, &rs, &a, &root, NULL, &err));
	ASSERT_TRUE(sb_id_eq(&root, &a));
	sb_test_scan(s, "ws", &scanned);
	ASSERT_FALSE(sb_id_eq(&scanned, &a));
	done(&rs);
	sb_store_free(s);
}

/* One file changed deep in a wide tree: the check lists one directory. */
TEST(check_work_follows_the_changes)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("for d in $(seq 1 30); do mkdir -p ws/d$d/e; for f in $(seq 1 20); do "
			     "echo $d$f > ws/d$d/e/f$f; done; done"),
		  0);
	sb_id a, b, root;
	sb_test_scan(s, "ws", &a);
	ASSERT_EQ(sb_test_sh("echo more >> ws/d7/e/f3"), 0);
	sb_test_scan(s, "ws", &b);
	restored rs;
	run(s, &b, &a, 0, &rs);
	sb_restore_check_stats cs;
	ASSERT_OK(check(s, &rs, &a, &root, &cs, &err));
	ASSERT_TRUE(sb_id_eq(&root, &a));
	ASSERT_EQ(cs.dirs_listed, 1);	/* d7/e, where the file was written */
	ASSERT_EQ(cs.files_hashed, 1);	/* d7/e/f3 */
	ASSERT_EQ(cs.trees_encoded, 3); /* d7/e, d7, the root */
	ASSERT_TRUE(cs.entries <= 3);
	done(&rs);
	sb_store_free(s);
}

/* The files under ws that the stat cache trusts now, each checked against its content. */
static size_t trusted_files(int root_fd, sb_statcache *c, const char *const *paths, size_t n)
{
	sb_error err = SB_ERROR_INIT;
	size_t trusted = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		ASSERT_OK(fstatat(root_fd, paths[i], &st, AT_SYMLINK_NOFOLLOW));
		sb_statcache_key key;
		sb_statcache_key_from_stat(&st, &key);
		sb_id id, want;
		if (!sb_statcache_lookup(c, paths[i], strlen(paths[i]), &key, &id))
			continue;
		int fd = openat(root_fd, paths[i], O_RDONLY | O_CLOEXEC);
		uint64_t size;
		ASSERT_OK(sb_content_hash_fd(fd, &want, &size, &err));
		close(fd);
		if (!sb_id_eq(&id, &want))
			sb_test_fail(__FILE__, __LINE__,
				     "'%s' is trusted with another content's id", paths[i]);
		trusted++;
	}
	return trusted;
}

/* Saves c into area/index and loads it back, as the next scan would see it. */
static sb_statcache *save_and_load(sb_statcache *c)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir -p area"), 0);
	int area = open("area", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(sb_statcache_save(c, area, "index", &err));
	sb_statcache_free(c);
	ASSERT_EQ(sb_statcache_load(area, "index", &c, &err), SB_STATCACHE_LOADED);
	close(area);
	return c;
}

/*
 * What the check re-hashed goes into the stat cache: a file changed since
 * the check is never trusted with its new stat (re-read and left out when
 * the check's read was racily clean, else recorded under the stat the check
 * saw, which no longer matches).
 */
TEST(check_records_written_files_in_the_stat_cache)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	sb_id a, b, root;
	two_states(s, &a, &b);
	restored rs;
	run(s, &b, &a, 0, &rs);
	sb_statcache *c;
	ASSERT_OK(sb_statcache_new(&c));
	sb_statcache_begin(c);
	sb_restore_rehashed *rh = NULL;
	ASSERT_OK(sb_restore_check(s, rs.root_fd, &a, rs.touched, NULL, &rh, &root, NULL, &err));
	ASSERT_TRUE(rh != NULL);
	/* a stamp past every file here: what was recorded is trusted on load */
	sb_statcache_set_stamp(c, INT64_MAX / 2);
	ASSERT_EQ(sb_test_sh("echo changed > ws/deep/a/b/c/file"), 0);
	int n = sb_restore_record(rs.root_fd, rh, c);
	sb_restore_rehashed_free(rh);
	/*
	 * written: src/f1, src/f4, deep/a/b/c/file (changed since), old/x/o;
	 * re-hashed after their chmod and touch: src/f2, src/f5
	 */
	ASSERT_TRUE(n == 5 || n == 6);
	c = save_and_load(c);
	ASSERT_EQ(sb_statcache_count(c), (size_t)n);
	const char *same[] = {"src/f1", "src/f2", "src/f4", "src/f5", "old/x/o"};
	ASSERT_EQ(trusted_files(rs.root_fd, c, same, ARRAY_SIZE(same)), ARRAY_SIZE(same));
	const char *changed[] = {"deep/a/b/c/file"};
	ASSERT_EQ(trusted_files(rs.root_fd, c, changed, 1), 0);
	sb_statcache_free(c);
	done(&rs);
	sb_store_free(s);
}

/*
 * A read that began after the file's last change (by the coarse clock) is
 * recorded as read; a racily clean one is read again, and left out when the
 * file no longer holds what the check read.
 */
TEST(record_reads_again_only_racily_clean_reads)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir ws && for f in after racy racy-changed after-changed; do "
			     "echo $f > ws/$f; done"),
		  0);
	int root_fd = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(root_fd);
	const char *names[] = {"after", "racy", "racy-changed", "after-changed"};
	sb_restore_rehashed *rh;
	ASSERT_OK(sb_restore__rehashed_new(&rh));
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int fd = openat(root_fd, names[i], O_RDONLY | O_CLOEXEC);
		struct stat st;
		ASSERT_OK(fstat(fd, &st));
		sb_id id;
		uint64_t size;
		ASSERT_OK(sb_content_hash_fd(fd, &id, &size, &err));
		close(fd);
		int64_t ctime = sb_ns_from_timespec(&st.st_ctim);
		/* "after*": read a second after the change; the others within its tick */
		int64_t read_ns = names[i][0] == 'a' ? ctime + SB_NSEC : ctime;
		ASSERT_OK(
		    sb_restore__rehashed_add(rh, names[i], strlen(names[i]), &st, &id, read_ns));
	}
	ASSERT_EQ(sb_test_sh("echo other > ws/racy-changed && echo other > ws/after-changed"), 0);
	sb_statcache *c;
	ASSERT_OK(sb_statcache_new(&c));
	sb_statcache_set_stamp(c, INT64_MAX / 2);
	/* after-changed is recorded under the stat it had, racy-changed not at all */
	ASSERT_EQ(sb_restore_record(root_fd, rh, c), 3);
	sb_restore_rehashed_free(rh);
	c = save_and_load(c);
	ASSERT_EQ(sb_statcache_count(c), 3);
	ASSERT_EQ(trusted_files(root_fd, c, names, 2), 2);
	ASSERT_EQ(trusted_files(root_fd, c, names + 2, 2), 0);
	sb_statcache_free(c);
	close(root_fd);
}

/*
 * A read-only directory with a fixed mtime, many files rewritten in it by
 * several writers: its mode and mtime are set only after the last write.
 */
TEST(writers_finish_directories_last)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(
	    sb_test_sh("mkdir -p ws/ro && for f in $(seq 1 300); do echo $f > ws/ro/f$f; done "
		       "&& touch -d 2019-05-05 ws/ro && chmod 555 ws/ro"),
	    0);
	sb_id a, b, root;
	sb_test_scan(s, "ws", &a);
	char *want = sb_test_sh_out("stat -c '%%a %%Y' ws/ro");
	ASSERT_EQ(sb_test_sh("chmod 755 ws/ro && for f in $(seq 1 300); do echo x$f > ws/ro/f$f; "
			     "done && rm ws/ro/f7 && echo new > ws/ro/g"),
		  0);
	sb_test_scan(s, "ws", &b);
	restored rs;
	run(s, &b, &a, 8, &rs);
	ASSERT_EQ(rs.st.written, 300);
	ASSERT_OK(check(s, &rs, &a, &root, NULL, &err));
	char *got = sb_test_sh_out("stat -c '%%a %%Y' ws/ro");
	ASSERT_STREQ(got, want);
	ASSERT_EQ(sb_test_sh("test -z \"$(find ws -name '.sb-tmp-*')\""), 0);
	free(want);
	free(got);
	done(&rs);
	sb_store_free(s);
}

/* A writer's failure stops the restore and names the path. */
TEST(writer_failure_is_reported)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir -p ws/d && for f in $(seq 1 50); do echo $f > ws/d/f$f; done"),
		  0);
	sb_id a, b, d_id, target;
	sb_test_scan(s, "ws", &a);
	ASSERT_EQ(sb_test_sh("for f in $(seq 1 50); do echo y$f > ws/d/f$f; done"), 0);
	sb_test_scan(s, "ws", &b);
	/* the target names content for d/f20 that the store does not have */
	sb_tree root = SB_TREE_INIT, d = SB_TREE_INIT;
	ASSERT_OK(sb_tree_load(s, &a, &root, &err));
	ASSERT_OK(sb_tree_load(s, &root.v[0].id, &d, &err));
	sb_tree_entry *f20 = (sb_tree_entry *)sb_tree_find(&d, "f20", 3);
	ASSERT_TRUE(f20 != NULL);
	memset(f20->id.b, 0x11, SB_ID_LEN);
	ASSERT_OK(sb_tree_save(s, &d, &d_id, &err));
	root.v[0].id = d_id;
	ASSERT_OK(sb_tree_save(s, &root, &target, &err));
	sb_tree_release(&root);
	sb_tree_release(&d);
	int fd = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sb_restore_opts o = {.threads = 4};
	sb_restore_touched *t = NULL;
	ASSERT_ERR(sb_restore_run(s, fd, &b, &target, &o, &t, NULL, &err), -ENOENT);
	if (!strstr(err.msg, "d/f20"))
		sb_test_fail(__FILE__, __LINE__, "\"%s\" does not name d/f20", err.msg);
	sb_restore_touched_free(t);
	close(fd);
	sb_store_free(s);
}

/*
 * Replacing a name with a file never moves a directory found there, not
 * even for a moment under a temp name: -EISDIR, the directory and what it
 * holds untouched, no temp left behind.
 */
TEST(replace_never_moves_a_directory_aside)
{
	sb_store *s = sb_test_open_store();
	sb_error err = SB_ERROR_INIT;
	ASSERT_EQ(sb_test_sh("mkdir -p d/name && echo keep > d/name/inside"), 0);
	char name[] = "name";
	sb_tree_entry e = {.name = name, .name_len = 4, .type = SB_FT_REG, .mode = 0644, .size = 4};
	ASSERT_OK(sb_content_store_buf(s, "new\n", 4, &e.id, &err));
	int dfd = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(dfd);
	ASSERT_ERR(sb_export_entry(s, dfd, &e, NULL, "name", SB_EXPORT_REPLACE, NULL, NULL, &err),
		   -EISDIR);
	close(dfd);
	ASSERT_EQ(sb_test_sh("test \"$(cat d/name/inside)\" = keep && test \"$(ls -A d)\" = name"),
		  0);
	sb_store_free(s);
}

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include "sb-test.h"
#include "sb-test-store.h"
#include "sb-test-tree.h"
#include "overlay.h"
#include "stage.h"
#include "workers.h"

static void read_upper(const char *dir, sb_upper_flags flags, sb_changes *ret)
{
	sb_error err = SB_ERROR_INIT;
	if (sb_upper_read_path(dir, flags, ret, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "read %s: %s", dir, err.msg);
}

static int stage(sb_store *s, const sb_id *base, const sb_changes *c, sb_id *ret_root,
		 sb_stage_stats *ret_stats, sb_error *err)
{
	int up = open("up", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(up);
	int r = sb_stage_upper(s, base, c, up, ret_root, ret_stats, err);
	close(up);
	return r;
}

static void add(sb_changes *c, const char *path, sb_ftype type)
{
	sb_change *e = sb_changes_add(c, path, strlen(path));
	ASSERT_TRUE(e != NULL);
	e->kind = SB_CHANGE_WRITE;
	e->type = type;
	e->mode = 0644;
}

/*
 * An upper of thousands of files in several directories, hostile names,
 * symlinks, setuid and setgid files and a file large enough to be chunked,
 * staged on every core: the tree equals the upper copied over the base (with
 * the privilege bits dropped), and equals what one core stages.
 */
TEST(many_files_on_all_cores_equal_one_core)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = sb_test_open_store();
	ASSERT_EQ(
	    sb_test_sh(
		"mkdir -p ws/d1 && echo a > ws/a && echo x > ws/d1/x && "
		"mkdir -p up/d1 up/d2/sub up/d3 && cd up && "
		"for d in d1 d2/sub d3; do i=0; while [ $i -lt 700 ]; do "
		"echo \"$d $i\" > $d/f$i; i=$((i+1)); done; done && "
		"echo nl > \"$(printf 'new\\nline')\" && echo hi > \"$(printf '\\377\\001')\" "
		"&& echo long > $(printf 'n%%.0s' $(seq 1 255)) && "
		"ln -s ../a d2/rel && ln -s /etc/passwd d3/abs && "
		"echo su > d1/su && chmod 4755 d1/su && echo sg > d3/sg && chmod 2750 d3/sg "
		"&& head -c 6000000 /dev/urandom > d2/big && echo a2 > a"),
	    0);
	sb_changes c = SB_CHANGES_INIT;
	read_upper("up", 0, &c);
	sb_id base, all, one;
	sb_test_scan(s, "ws", &base);
	sb_stage_stats st;
	ASSERT_OK(stage(s, &base, &c, &all, &st, &err));
	ASSERT_EQ(st.files, 3 * 700 + 3 + 2 + 2);
	ASSERT_EQ(st.stripped, 2);

	ASSERT_EQ(sb_test_sh("cp -a ws exp && cp -a up/. exp/ && chmod u-s exp/d1/su && "
			     "chmod g-s exp/d3/sg"),
		  0);
	sb_test_export(s, &all, "out");
	sb_test_same_tree("out", "exp");

	/* Regular files listed without a stat: staging takes mode, size, mtime itself. */
	sb_changes plain = SB_CHANGES_INIT;
	read_upper("up", SB_UPPER_PLAIN_FILES, &plain);
	sb_id from_plain;
	sb_stage_stats stp;
	ASSERT_OK(stage(s, &base, &plain, &from_plain, &stp, &err));
	ASSERT_TRUE(sb_id_eq(&all, &from_plain));
	ASSERT_EQ(stp.files, st.files);
	ASSERT_EQ(stp.stripped, st.stripped);
	sb_changes_release(&plain);

	if (sb_workers_count(0) < 2)
		SB_SKIP("one CPU: nothing to compare the parallel staging with");
	cpu_set_t set;
	CPU_ZERO(&set);
	ASSERT_OK(sched_getaffinity(0, sizeof(set), &set));
	int cpu = 0;
	while (!CPU_ISSET(cpu, &set))
		cpu++;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ASSERT_OK(sched_setaffinity(0, sizeof(set), &set));
	ASSERT_EQ(sb_workers_count(0), 1);
	sb_stage_stats st1;
	ASSERT_OK(stage(s, &base, &c, &one, &st1, &err));
	ASSERT_TRUE(sb_id_eq(&all, &one));
	ASSERT_EQ(st1.files, st.files);
	ASSERT_EQ(st1.bytes, st.bytes);
	ASSERT_EQ(st1.stripped, st.stripped);
	sb_changes_release(&c);
	sb_store_free(s);
}

/*
 * A path recorded as a file that is now a symlink, or below a directory that
 * is now a symlink (to a directory outside), is refused, never followed; one
 * failure among many files is the one reported.
 */
TEST(symlinks_are_never_followed)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = sb_test_open_store();
	ASSERT_EQ(
	    sb_test_sh("mkdir -p ws outside up/d && echo secret > outside/f && "
		       "i=0; while [ $i -lt 300 ]; do echo $i > up/d/f$i; i=$((i+1)); done && "
		       "ln -s ../outside/f up/evil && ln -s ../outside up/dl"),
	    0);
	sb_id base, root;
	sb_test_scan(s, "ws", &base);

	sb_changes c = SB_CHANGES_INIT;
	read_upper("up", 0, &c);
	add(&c, "evil2", SB_FT_REG);
	ASSERT_OK(symlink("../outside/f", "up/evil2"));
	sb_changes_sort(&c);
	ASSERT_ERR(stage(s, &base, &c, &root, NULL, &err), -ELOOP);
	ASSERT_TRUE(strstr(err.msg, "evil2") != NULL);
	sb_changes_release(&c);

	sb_changes c2 = SB_CHANGES_INIT;
	add(&c2, "dl", SB_FT_DIR);
	add(&c2, "dl/f", SB_FT_REG);
	sb_error err2 = SB_ERROR_INIT;
	ASSERT_TRUE(stage(s, &base, &c2, &root, NULL, &err2) < 0);
	ASSERT_TRUE(strstr(err2.msg, "dl") != NULL);
	sb_changes_release(&c2);

	/* One file gone among hundreds: that one is named. */
	sb_changes c3 = SB_CHANGES_INIT;
	ASSERT_OK(unlink("up/evil") | unlink("up/evil2") | unlink("up/dl"));
	read_upper("up", 0, &c3);
	ASSERT_OK(unlink("up/d/f123"));
	sb_error err3 = SB_ERROR_INIT;
	ASSERT_ERR(stage(s, &base, &c3, &root, NULL, &err3), -ENOENT);
	ASSERT_TRUE(strstr(err3.msg, "d/f123") != NULL);
	sb_changes_release(&c3);
	sb_store_free(s);
}

/* Staging reads each file without touching its atime (one inode write fewer per file). */
TEST(staging_leaves_atimes_alone)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = sb_test_open_store();
	ASSERT_EQ(sb_test_sh("mkdir -p ws up && echo new > up/f && touch -a -d 2001-01-01 up/f"),
		  0);
	struct stat before, after;
	ASSERT_OK(stat("up/f", &before));
	sb_changes c = SB_CHANGES_INIT;
	read_upper("up", 0, &c);
	sb_id base, root;
	sb_test_scan(s, "ws", &base);
	ASSERT_OK(stage(s, &base, &c, &root, NULL, &err));
	ASSERT_OK(stat("up/f", &after));
	ASSERT_EQ(after.st_atim.tv_sec, before.st_atim.tv_sec);
	sb_changes_release(&c);
	sb_store_free(s);
}

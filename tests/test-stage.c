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
	int r = sb_stage_upper(s, base, c, up, 0, ret_root, ret_stats, err);
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

static void preview(sb_store *s, const sb_id *base, const sb_changes *c, sb_diff_list *ret,
		    sb_stage_preview_stats *ret_stats)
{
	sb_error err = SB_ERROR_INIT;
	int up = open("up", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(up);
	if (sb_stage_preview(s, base, c, up, ret, ret_stats, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "preview: %s", err.msg);
	close(up);
}

static void same_entry(const sb_tree_entry *p, const sb_tree_entry *d)
{
	ASSERT_EQ(p->type, d->type);
	ASSERT_EQ(p->mode, d->mode);
	ASSERT_EQ(p->size, d->size);
	ASSERT_EQ(p->mtime_ns, d->mtime_ns);
	if (!sb_stage_id_unread(&p->id))
		ASSERT_TRUE(sb_id_eq(&p->id, &d->id));
}

/*
 * The oracle of a preview is the diff of the tree staging really makes: the
 * same entries in the same order, with the same attributes, and the same ids
 * wherever the preview read a file; pending exactly when the staged root
 * differs from the base.
 */
static void preview_equals_staging(sb_store *s, const sb_id *base, const sb_changes *c,
				   sb_stage_preview_stats *ret_stats, size_t *ret_n)
{
	sb_error err = SB_ERROR_INIT;
	sb_diff_list p = {0}, d = {0};
	preview(s, base, c, &p, ret_stats);
	sb_id root;
	ASSERT_OK(stage(s, base, c, &root, NULL, &err));
	ASSERT_OK(sb_diff_trees(s, base, &root, NULL, sb_diff_collect, &d, &err));
	ASSERT_EQ(p.n, d.n);
	for (size_t i = 0; i < p.n; i++) {
		ASSERT_EQ(p.v[i].status, d.v[i].status);
		ASSERT_STREQ(p.v[i].path, d.v[i].path);
		same_entry(&p.v[i].old, &d.v[i].old);
		same_entry(&p.v[i].new, &d.v[i].new);
	}
	ASSERT_EQ(ret_stats->pending, !sb_id_eq(&root, base));
	*ret_n = p.n;
	sb_diff_list_release(&p);
	sb_diff_list_release(&d);
}

static void delete (sb_changes *c, const char *path)
{
	sb_change *e = sb_changes_add(c, path, strlen(path));
	ASSERT_TRUE(e != NULL);
	e->kind = SB_CHANGE_DELETE;
}

static size_t find_change(const sb_changes *c, const char *path)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i].path, path) == 0)
			return i;
	sb_test_fail(__FILE__, __LINE__, "no change for %s", path);
	return 0;
}

/*
 * Every kind of change a run leaves, previewed: copy-ups that changed
 * nothing (absent), a new mtime alone (absent, but pending), same-size edits
 * (read, so told apart from copy-ups), grown files, mode changes, setuid
 * bits dropped, symlinks retargeted or copied up, type changes, fifos, new
 * directories, deletions of files and of whole directories, and an opaque
 * directory replacing its lower one.
 */
TEST(preview_reports_what_staging_changes)
{
	sb_store *s = sb_test_open_store();
	ASSERT_EQ(
	    sb_test_sh(
		"mkdir -p ws/dir/sub ws/gone/deep ws/opq/keep && cd ws && "
		"echo same > same && echo touched > touched && echo aaaa > samesize && "
		"echo grow > grown && echo mode > chmod && echo f > tochange && "
		"ln -s same link && ln -s same relink && echo x > dir/x && echo y > dir/sub/y && "
		"echo g > gone/g && echo d > gone/deep/d && echo o > opq/old && echo k > "
		"opq/keep/k "
		"&& echo del > del && touch -d @1000 * dir/* && cd .. && mkdir up && "
		"cp -a ws/same ws/touched ws/samesize ws/grown ws/chmod ws/link up/ && "
		"touch -d @2000 up/touched && printf 'bbbb\\n' > up/samesize && touch -d @1000 "
		"up/samesize && echo more >> up/grown && chmod 600 up/chmod && "
		"ln -s grown up/relink && ln -s same up/tochange && mkfifo up/fifo && "
		"echo su > up/su && chmod 4755 up/su && mkdir -p up/new/deeper && "
		"echo n > up/new/deeper/n && mkdir up/opq && echo fresh > up/opq/fresh"),
	    0);
	sb_id base;
	sb_test_scan(s, "ws", &base);
	sb_changes c = SB_CHANGES_INIT;
	read_upper("up", SB_UPPER_PLAIN_FILES, &c);
	delete (&c, "del");
	delete (&c, "gone");
	sb_changes_sort(&c);
	c.v[find_change(&c, "opq")].opaque = true;

	sb_stage_preview_stats st;
	size_t n;
	preview_equals_staging(s, &base, &c, &st, &n);
	ASSERT_TRUE(st.pending);
	ASSERT_EQ(st.stripped, 1);
	ASSERT_EQ(st.hashed, 3); /* same, touched, samesize: the others differ in size or mode */
	/*
	 * samesize grown chmod relink tochange(T) fifo su new/ new/deeper/ new/deeper/n
	 * del gone/ gone/deep/ gone/deep/d gone/g opq/old opq/keep/ opq/keep/k opq/fresh
	 */
	ASSERT_EQ(n, 19);
	ASSERT_EQ(st.bytes, 5 + 10 + 5 + 3 + 2 + 6);

	/* Only copy-ups that changed nothing: no entry, nothing pending. */
	sb_changes_release(&c);
	ASSERT_EQ(sb_test_sh("rm -rf up && mkdir up && cp -a ws/same ws/link up/"), 0);
	read_upper("up", SB_UPPER_PLAIN_FILES, &c);
	preview_equals_staging(s, &base, &c, &st, &n);
	ASSERT_EQ(n, 0);
	ASSERT_FALSE(st.pending);
	sb_changes_release(&c);
	sb_store_free(s);
}

/* A preview stores nothing: the store holds no new object once it returns. */
TEST(preview_writes_nothing)
{
	sb_store *s = sb_test_open_store();
	ASSERT_EQ(sb_test_sh("mkdir -p ws up/d && echo a > ws/a && echo new > up/d/f && "
			     "ln -s a up/l && echo changed > up/a"),
		  0);
	sb_id base;
	sb_test_scan(s, "ws", &base);
	sb_store_stats before, after;
	sb_store_get_stats(s, &before);
	sb_changes c = SB_CHANGES_INIT;
	read_upper("up", SB_UPPER_PLAIN_FILES, &c);
	sb_diff_list p = {0};
	sb_stage_preview_stats st;
	preview(s, &base, &c, &p, &st);
	sb_store_get_stats(s, &after);
	ASSERT_EQ(after.objects_written, before.objects_written);
	ASSERT_EQ(p.n, 4); /* a, d/, d/f, l */
	for (size_t i = 0; i < p.n; i++)
		if (p.v[i].new.type == SB_FT_REG)
			ASSERT_TRUE(sb_stage_id_unread(&p.v[i].new.id));
	/* the preview's trees are gone with it */
	sb_error err = SB_ERROR_INIT;
	sb_id root;
	ASSERT_OK(stage(s, &base, &c, &root, NULL, &err));
	sb_store_get_stats(s, &after);
	ASSERT_TRUE(after.objects_written > before.objects_written);
	sb_diff_list_release(&p);
	sb_changes_release(&c);
	sb_store_free(s);
}

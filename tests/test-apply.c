/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>

#include "sb-test.h"
#include "sb-test-store.h"
#include "sb-test-tree.h"
#include "apply.h"
#include "edit.h"
#include "stage.h"
#include "store.h"

static void add(sb_changes *c, const char *path, sb_change_kind kind, sb_ftype type, uint32_t mode,
		bool opaque)
{
	sb_change *e = sb_changes_add(c, path, strlen(path));
	ASSERT_TRUE(e != NULL);
	e->kind = kind;
	e->type = type;
	e->mode = mode;
	e->opaque = opaque;
}

/*
 * A hand-made upper layer: a modified file, a new directory with a file, a
 * deleted file, a deleted directory, an opaque directory, a symlink, a fifo.
 * The staged tree must equal the expected tree built with cp/rm.
 */
static void make_base_and_upper(sb_changes *c)
{
	ASSERT_EQ(sb_test_sh("mkdir -p ws/keep ws/gone ws/opq/old ws/sub && echo a > ws/a && "
			     "echo b > ws/b && echo k > ws/keep/k && echo g > ws/gone/g && "
			     "echo o > ws/opq/old/o && echo s > ws/sub/s && "
			     "mkdir -p up/newdir up/opq up/sub && echo A2 > up/a && "
			     "echo x > up/newdir/x && echo fresh > up/opq/fresh && "
			     "ln -s a up/sub/link && mkfifo up/sub/pipe && chmod 700 up/sub"),
		  0);
	add(c, "a", SB_CHANGE_WRITE, SB_FT_REG, 0644, false);
	add(c, "b", SB_CHANGE_DELETE, SB_FT_NONE, 0, false);
	add(c, "gone", SB_CHANGE_DELETE, SB_FT_NONE, 0, false);
	add(c, "newdir", SB_CHANGE_WRITE, SB_FT_DIR, 0755, false);
	add(c, "newdir/x", SB_CHANGE_WRITE, SB_FT_REG, 0644, false);
	add(c, "opq", SB_CHANGE_WRITE, SB_FT_DIR, 0755, true);
	add(c, "opq/fresh", SB_CHANGE_WRITE, SB_FT_REG, 0644, false);
	add(c, "sub", SB_CHANGE_WRITE, SB_FT_DIR, 0700, false);
	add(c, "sub/link", SB_CHANGE_WRITE, SB_FT_SYMLINK, 0777, false);
	add(c, "sub/pipe", SB_CHANGE_WRITE, SB_FT_FIFO, 0644, false);
	sb_changes_sort(c);
	ASSERT_EQ(
	    sb_test_sh("cp -a ws exp && cp -a up/a exp/a && rm -r exp/b exp/gone exp/opq && "
		       "cp -a up/newdir up/opq exp/ && cp -a up/sub/link up/sub/pipe exp/sub/ "
		       "&& chmod 700 exp/sub"),
	    0);
}

/* The base tree scanned and the hand-made upper staged over it. */
static void stage_fixture(sb_store *s, sb_id *ret_base, sb_id *ret_staged)
{
	sb_error err = SB_ERROR_INIT;
	sb_changes c = SB_CHANGES_INIT;
	make_base_and_upper(&c);
	sb_test_scan(s, "ws", ret_base);
	int up = open("up", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(up);
	ASSERT_OK(sb_stage_upper(s, ret_base, &c, up, 0, ret_staged, NULL, &err));
	close(up);
	sb_changes_release(&c);
}

TEST(stage_upper_equals_expected_tree)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = sb_test_open_store();
	sb_changes c = SB_CHANGES_INIT;
	make_base_and_upper(&c);
	sb_id base, staged;
	sb_test_scan(s, "ws", &base);
	int up = open("up", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sb_stage_stats st;
	ASSERT_OK(sb_stage_upper(s, &base, &c, up, 0, &staged, &st, &err));
	ASSERT_EQ(st.deletions, 2);
	sb_test_export(s, &staged, "out");
	sb_test_same_tree("out", "exp");
	ASSERT_FALSE(sb_id_eq(&base, &staged));
	close(up);
	sb_changes_release(&c);
	sb_store_free(s);
}

TEST(edit_rejects_edits_below_files)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = sb_test_open_store();
	ASSERT_EQ(sb_test_sh("mkdir ws && echo f > ws/f"), 0);
	sb_id base, out;
	sb_test_scan(s, "ws", &base);
	sb_edit e = {.path = "f/x", .path_len = 3, .op = SB_EDIT_DELETE};
	ASSERT_ERR(sb_tree_edit(s, &base, &e, 1, &out, NULL, &err), -ENOTDIR);
	sb_edit m = {.path = "missing/x", .path_len = 9, .op = SB_EDIT_DELETE};
	ASSERT_ERR(sb_tree_edit(s, &base, &m, 1, &out, NULL, &err), -ENOENT);
	ASSERT_TRUE(strstr(err.msg, "missing") != NULL);
	sb_store_free(s);
}

static char conflicts[4096];
static void on_conflict(void *ud, const char *path, size_t len, const char *why)
{
	size_t n = strlen(conflicts);
	snprintf(conflicts + n, sizeof(conflicts) - n, "%.*s;", (int)len, path);
}

TEST(apply_lands_changes_and_refuses_drift)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = sb_test_open_store();
	sb_id base, staged, cur;
	stage_fixture(s, &base, &staged);
	int ws = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	/* Drift on a path the session changed: refused, nothing written. */
	ASSERT_EQ(sb_test_sh("echo drift >> ws/a && echo mine > ws/unrelated"), 0);
	char *before = sb_test_sh_out(SB_TEST_LISTING, "ws");
	sb_test_scan(s, "ws", &cur);
	sb_apply_opts o = {0};
	sb_apply_result res;
	conflicts[0] = 0;
	ASSERT_ERR(sb_apply(s, ws, &base, &staged, &cur, &o, on_conflict, NULL, &res, &err),
		   -ESTALE);
	ASSERT_STREQ(conflicts, "a;");
	char *after = sb_test_sh_out(SB_TEST_LISTING, "ws");
	ASSERT_STREQ(before, after);
	free(after);

	/* --force: the staged version wins, unrelated edits stay. */
	o.flags = SB_APPLY_FORCE;
	ASSERT_OK(sb_apply(s, ws, &base, &staged, &cur, &o, on_conflict, NULL, &res, &err));
	ASSERT_FALSE(res.has_remaining);
	ASSERT_EQ(sb_test_sh("echo mine > exp/unrelated"), 0);
	sb_test_same_tree("ws", "exp");
	sb_id now;
	sb_test_scan(s, "ws", &now);
	ASSERT_TRUE(sb_id_eq(&now, &res.merged)); /* the snapshot needs no re-scan */
	free(before);
	close(ws);
	sb_store_free(s);
}

/*
 * Edits made after apply's scan (current), before its writes: a file the
 * session changes is saved again, one it deletes too, and a file appears
 * where the session adds one. Apply must not lose any of them: it stops
 * with -ESTALE naming the path, and each stays as the user left it.
 */
TEST(apply_keeps_edits_made_after_its_scan)
{
	const char *edits[] = {
	    "echo saved again > ws/a",
	    "echo saved again > ws/b",
	    "mkdir -p ws/newdir && echo mine > ws/newdir/x",
	};
	const char *paths[] = {"a", "b", "newdir/x"};
	for (size_t i = 0; i < ARRAY_SIZE(edits); i++) {
		sb_error err = SB_ERROR_INIT;
		ASSERT_EQ(sb_test_sh("rm -rf ws up exp store"), 0);
		sb_store *s = sb_test_open_store();
		sb_id base, staged, cur;
		stage_fixture(s, &base, &staged);
		sb_test_scan(s, "ws", &cur);
		ASSERT_EQ(sb_test_sh("sleep 0.01 && %s", edits[i]), 0);
		char *before = sb_test_sh_out("cat ws/%s", paths[i]);
		int ws = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		sb_apply_opts o = {0};
		sb_apply_result res;
		conflicts[0] = 0;
		ASSERT_ERR(sb_apply(s, ws, &base, &staged, &cur, &o, on_conflict, NULL, &res, &err),
			   -ESTALE);
		ASSERT_STREQ(conflicts, ""); /* the scan saw no drift: the writes caught it */
		if (!strstr(err.msg, paths[i]))
			sb_test_fail(__FILE__, __LINE__, "'%s' not named: %s", paths[i], err.msg);
		char *after = sb_test_sh_out("cat ws/%s", paths[i]);
		ASSERT_STREQ(before, after);
		ASSERT_EQ(sb_test_sh("test -z \"$(find ws -name '.sb-tmp-*')\""), 0);
		free(before);
		free(after);
		close(ws);
		sb_store_free(s);
	}
}

TEST(apply_some_paths_keeps_the_rest_staged)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = sb_test_open_store();
	sb_id base, staged, cur;
	stage_fixture(s, &base, &staged);
	int ws = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sb_test_scan(s, "ws", &cur);
	const char *paths[] = {"newdir", "b", NULL};
	sb_apply_opts o = {.paths = paths};
	sb_apply_result res;
	ASSERT_OK(sb_apply(s, ws, &base, &staged, &cur, &o, NULL, NULL, &res, &err));
	ASSERT_TRUE(access("ws/newdir/x", F_OK) == 0);
	ASSERT_TRUE(access("ws/b", F_OK) < 0);
	ASSERT_TRUE(access("ws/gone/g", F_OK) == 0); /* not selected: still staged */
	ASSERT_TRUE(res.has_remaining);
	/* Applying the rest gives the full expected tree. */
	sb_test_scan(s, "ws", &cur);
	sb_apply_opts all = {0};
	sb_apply_result res2;
	ASSERT_OK(
	    sb_apply(s, ws, &res.merged, &res.remaining, &cur, &all, NULL, NULL, &res2, &err));
	sb_test_same_tree("ws", "exp");
	close(ws);
	sb_store_free(s);
}

TEST(apply_never_writes_through_a_planted_symlink)
{
	sb_error err = SB_ERROR_INIT;
	sb_store *s = sb_test_open_store();
	ASSERT_EQ(sb_test_sh("mkdir -p ws/dir outside up/dir && echo old > ws/dir/f && "
			     "echo precious > outside/f && echo new > up/dir/f"),
		  0);
	sb_id base, staged, cur;
	sb_test_scan(s, "ws", &base);
	sb_changes c = SB_CHANGES_INIT;
	add(&c, "dir", SB_CHANGE_WRITE, SB_FT_DIR, 0755, false);
	add(&c, "dir/f", SB_CHANGE_WRITE, SB_FT_REG, 0644, false);
	int up = open("up", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(sb_stage_upper(s, &base, &c, up, 0, &staged, NULL, &err));
	/* The workspace's dir is swapped for a symlink to outside. */
	ASSERT_EQ(sb_test_sh("rm -r ws/dir && ln -s ../outside ws/dir"), 0);
	int ws = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sb_test_scan(s, "ws", &cur);
	sb_apply_opts o = {.flags = SB_APPLY_FORCE};
	sb_apply_result res;
	conflicts[0] = 0;
	ASSERT_OK(sb_apply(s, ws, &base, &staged, &cur, &o, on_conflict, NULL, &res, &err));
	ASSERT_TRUE(strstr(conflicts, "dir") != NULL);
	ASSERT_EQ(sb_test_sh("test \"$(cat outside/f)\" = precious && test ! -L ws/dir && "
			     "test \"$(cat ws/dir/f)\" = new"),
		  0);
	close(ws);
	close(up);
	sb_changes_release(&c);
	sb_store_free(s);
}

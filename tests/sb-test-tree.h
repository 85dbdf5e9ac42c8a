/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Tree helpers shared by the tests that stage or apply: scan a directory
 * into the store, export a tree back out, and compare two directories by an
 * independent listing (find and sha256sum: type, mode, size, link target and
 * content of every entry; no times, and no sizes of directories, which
 * depend on the filesystem's history).
 */

#include <fcntl.h>
#include <unistd.h>

#include "export.h"
#include "sb-test.h"
#include "scan.h"
#include "store.h"

#define SB_TEST_LISTING                                                                        \
	"cd %s && { find . -mindepth 1 ! -type d -printf '%%y %%m %%s %%l|%%P\\n' | LC_ALL=C " \
	"sort; "                                                                               \
	"find . -mindepth 1 -type d -printf '%%y %%m|%%P\\n' | LC_ALL=C sort; "                \
	"find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; }"

static inline void sb_test_scan(sb_store *s, const char *dir, sb_id *ret)
{
	sb_error err = SB_ERROR_INIT;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	sb_scan_opts o = {0};
	sb_scan_stats st;
	if (sb_scan_run(s, fd, &o, ret, &st, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "scan %s: %s", dir, err.msg);
	close(fd);
}

static inline void sb_test_export(sb_store *s, const sb_id *root, const char *dir)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(mkdir(dir, 0755));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	if (sb_export_tree(s, root, fd, 0, NULL, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "export to %s: %s", dir, err.msg);
	close(fd);
}

static inline void sb_test_same_tree(const char *a, const char *b)
{
	char *x = sb_test_sh_out(SB_TEST_LISTING, a), *y = sb_test_sh_out(SB_TEST_LISTING, b);
	if (strcmp(x, y) != 0) {
		fprintf(stderr, "# %s:\n%s# %s:\n%s", a, x, b, y);
		ASSERT_STREQ(x, y);
	}
	free(x);
	free(y);
}

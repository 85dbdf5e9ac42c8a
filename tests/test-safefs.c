/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "sb-test.h"
#include "error.h"
#include "fileio.h"
#include "safefs.h"

/*
 * Every check runs twice: once through openat2 and once through the O_PATH
 * walk that stands in when openat2 is refused.
 */
static void check_resolver(bool fallback)
{
	sb_error err = SB_ERROR_INIT;
	sb_safefs_force_fallback(fallback);
	ASSERT_EQ(sb_test_sh("mkdir -p ws/d/e outside && echo secret > outside/f && "
			     "echo in > ws/d/e/f && ln -s ../../outside ws/d/esc && "
			     "ln -s /etc ws/abs && ln -s e ws/d/rel"),
		  0);
	int ws = open("ws", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(ws);

	int fd = sb_open_beneath(ws, "d/e/f", O_RDONLY, 0, &err);
	ASSERT_OK(fd);
	close(fd);
	fd = sb_open_beneath(ws, "./d//e/./f", O_RDONLY, 0, &err);
	ASSERT_OK(fd);
	close(fd);

	/* No symlink is followed, wherever it stands. */
	ASSERT_ERR(sb_open_beneath(ws, "d/esc/f", O_RDONLY, 0, &err), -ELOOP);
	ASSERT_ERR(sb_open_beneath(ws, "abs/passwd", O_RDONLY, 0, &err), -ELOOP);
	ASSERT_ERR(sb_open_beneath(ws, "d/rel/f", O_RDONLY, 0, &err), -ELOOP);
	ASSERT_ERR(sb_open_beneath(ws, "d/rel", O_RDONLY, 0, &err), -ELOOP);
	ASSERT_ERR(sb_open_beneath(ws, "d/esc/new", O_WRONLY | O_CREAT, 0644, &err), -ELOOP);
	ASSERT_TRUE(access("outside/new", F_OK) < 0);
	/* No climbing out, no absolute paths. */
	ASSERT_ERR(sb_open_beneath(ws, "../outside/f", O_RDONLY, 0, &err), -EXDEV);
	ASSERT_ERR(sb_open_beneath(ws, "d/../../outside/f", O_RDONLY, 0, &err), -EXDEV);
	ASSERT_ERR(sb_open_beneath(ws, "/etc/passwd", O_RDONLY, 0, &err), -EXDEV);

	const char *name = NULL;
	int dfd = sb_open_parent_beneath(ws, "d/e/new", &name, &err);
	ASSERT_OK(dfd);
	ASSERT_STREQ(name, "new");
	close(dfd);
	ASSERT_ERR(sb_open_parent_beneath(ws, "d/esc/new", &name, &err), -ELOOP);
	ASSERT_ERR(sb_open_parent_beneath(ws, "d/..", &name, &err), -EINVAL);

	ASSERT_OK(sb_mkdir_beneath(ws, "x/y/z", 0755, &err));
	struct stat st;
	ASSERT_OK(fstatat(ws, "x/y/z", &st, 0));
	ASSERT_TRUE(S_ISDIR(st.st_mode));
	ASSERT_ERR(sb_mkdir_beneath(ws, "d/esc/m", 0755, &err), -ELOOP);
	ASSERT_TRUE(access("outside/m", F_OK) < 0);
	ASSERT_TRUE(strstr(err.msg, "esc") != NULL);

	char *data = NULL;
	ASSERT_OK(sb_read_file_at(AT_FDCWD, "outside/f", 100, &data, NULL, &err));
	ASSERT_STREQ(data, "secret\n");
	free(data);
	close(ws);
}

TEST(resolver_openat2)
{
	if (!sb_safefs_have_openat2())
		SB_SKIP("openat2 is not available on this kernel");
	check_resolver(false);
}

TEST(resolver_opath_walk)
{
	check_resolver(true);
}

/* Paths longer than PATH_MAX work through the walk. */
TEST(resolver_long_path)
{
	sb_error err = SB_ERROR_INIT;
	char comp[201];
	memset(comp, 'a', 200);
	comp[200] = 0;
	int cur = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *path = calloc(1, 30 * 202 + 8);
	for (int i = 0; i < 25; i++) {
		ASSERT_OK(mkdirat(cur, comp, 0755));
		int n = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT_OK(n);
		close(cur);
		cur = n;
		size_t l = strlen(path);
		memcpy(path + l, comp, 200);
		path[l + 200] = '/';
		path[l + 201] = 0;
	}
	close(cur);
	size_t l = strlen(path);
	memcpy(path + l, "leaf", 5);
	ASSERT_TRUE(strlen(path) > PATH_MAX);
	for (int fb = 0; fb < 2; fb++) {
		sb_safefs_force_fallback(fb);
		int fd = sb_open_beneath(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0600, &err);
		ASSERT_OK(fd);
		close(fd);
	}
	free(path);
}

TEST(name_validation)
{
	ASSERT_TRUE(sb_name_is_valid("a", 1));
	ASSERT_TRUE(sb_name_is_valid("-rf \n\xff", 6));
	ASSERT_FALSE(sb_name_is_valid("", 0));
	ASSERT_FALSE(sb_name_is_valid(".", 1));
	ASSERT_FALSE(sb_name_is_valid("..", 2));
	ASSERT_FALSE(sb_name_is_valid("a/b", 3));
}

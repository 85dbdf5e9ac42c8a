/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where the test binary and the source tree are, without an absolute path
 * in any source file: the binary from /proc/self/exe, the source root from
 * the build directory's meson-info/meson-info.json. Header-only, for the
 * tests that read testdata/ or run a helper built beside them.
 */

#include <cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "fileio.h"
#include "sb-test.h"

/* The directory holding this test binary (build/tests). */
static inline void sb_test_exe_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	ASSERT_TRUE(n > 0);
	buf[n] = 0;
	*strrchr(buf, '/') = 0;
}

/* malloc'd source root; SKIPs when the build has no meson-info. */
static inline char *sb_test_source_root(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], buf[65536];
	int fd;

	sb_test_exe_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/../meson-info/meson-info.json", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		SB_SKIP("no meson-info beside the build (%s)", path);
	ssize_t n = sb_read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_TRUE(n > 0);
	buf[n] = 0;
	cJSON *j = cJSON_Parse(buf);
	ASSERT_TRUE(j);
	cJSON *src = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "directories"), "source");
	ASSERT_TRUE(cJSON_IsString(src));
	char *s = strdup(src->valuestring);
	cJSON_Delete(j);
	ASSERT_TRUE(s);
	return s;
}

/* malloc'd, NUL-terminated text of testdata/<rel>. */
static inline char *sb_test_read_testdata(const char *rel)
{
	char *root = sb_test_source_root(), *path = NULL;
	char *data = malloc(1 << 20);
	ASSERT_TRUE(data);
	ASSERT_TRUE(asprintf(&path, "%s/testdata/%s", root, rel) > 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		sb_test_fail(__FILE__, __LINE__, "open %s: %s", path, strerror(errno));
	ssize_t n = sb_read_full(fd, data, (1 << 20) - 1);
	ASSERT_TRUE(n >= 0);
	data[n] = 0;
	close(fd);
	free(path);
	free(root);
	return data;
}

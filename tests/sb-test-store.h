/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Store helpers shared by the tests that need a real store in their temp
 * directory: a failing call fails the test with the store's own message.
 */

#include <fcntl.h>
#include <unistd.h>

#include "content.h"
#include "sb-test.h"
#include "store.h"

/* A writable store at ./store, created as needed. */
static inline sb_store *sb_test_open_store(void)
{
	sb_store *s = NULL;
	sb_error err = SB_ERROR_INIT;
	if (sb_store_open("store", SB_STORE_WRITE | SB_STORE_CREATE, &s, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "open: %s", err.msg);
	return s;
}

/* Stores the file at path as content; returns its id and size. */
static inline void sb_test_store_file(sb_store *s, const char *path, sb_id *ret_id,
				      uint64_t *ret_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	sb_error err = SB_ERROR_INIT;
	if (sb_content_store_fd(s, fd, ret_id, ret_size, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "store %s: %s", path, err.msg);
	close(fd);
}

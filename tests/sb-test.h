/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A tiny TAP test harness. Each TEST() runs in a forked child, inside a fresh
 * temporary directory (removed afterwards), so a crash or a leaked fd in one
 * test cannot mask another. A test passes by returning, fails on the first
 * ASSERT that does not hold (printing the expression, file:line and errno
 * text), and skips with SB_SKIP("reason") — never silently.
 *
 *   TEST(round_trip) {
 *           ASSERT_OK(sb_something(...));
 *           ASSERT_EQ(x, 3);
 *   }
 *
 * Link with tests/sb-test.c, which provides main(). Run one test with
 * SB_TEST=name. The binary's output is TAP for meson's 'tap' protocol.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*sb_test_fn)(void);
void sb_test_register(const char *name, sb_test_fn fn);
void sb_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
void sb_test_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* The test's own temp directory (the cwd at test start), absolute. */
const char *sb_test_dir(void);
/* Runs a shell command; returns its exit status (or 128+signal). */
int sb_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a shell command and returns its stdout (malloc'd, NUL-terminated). */
char *sb_test_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True when running as root. */
bool sb_test_is_root(void);

#define TEST(name)                                                     \
	static void test_##name(void);                                 \
	__attribute__((constructor)) static void register_##name(void) \
	{                                                              \
		sb_test_register(#name, test_##name);                  \
	}                                                              \
	static void test_##name(void)

#define SB_SKIP(...) sb_test_skip(__VA_ARGS__)

#define ASSERT_TRUE(expr)                                                             \
	do {                                                                          \
		if (!(expr))                                                          \
			sb_test_fail(__FILE__, __LINE__, "expected true: %s", #expr); \
	} while (0)

#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))

#define ASSERT_OK(expr)                                                               \
	do {                                                                          \
		long long _r = (long long)(expr);                                     \
		if (_r < 0)                                                           \
			sb_test_fail(__FILE__, __LINE__, "%s = %lld (%s)", #expr, _r, \
				     strerror((int)-_r));                             \
	} while (0)

/* expr must return exactly the negative errno err (e.g. ASSERT_ERR(f(), -ENOENT)) */
#define ASSERT_ERR(expr, err)                                                                  \
	do {                                                                                   \
		long long _r = (long long)(expr), _e = (long long)(err);                       \
		if (_r != _e)                                                                  \
			sb_test_fail(__FILE__, __LINE__, "%s = %lld (%s), expected %lld (%s)", \
				     #expr, _r, _r < 0 ? strerror((int)-_r) : "ok", _e,        \
				     strerror((int)-_e));                                      \
	} while (0)

#define ASSERT_EQ(a, b)                                                                        \
	do {                                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);                            \
		if (_a != _b)                                                                  \
			sb_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, \
				     _b);                                                      \
	} while (0)

#define ASSERT_NE(a, b)                                                                      \
	do {                                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);                          \
		if (_a == _b)                                                                \
			sb_test_fail(__FILE__, __LINE__, "%s != %s: both %lld", #a, #b, _a); \
	} while (0)

#define ASSERT_STREQ(a, b)                                                                     \
	do {                                                                                   \
		const char *_a = (a), *_b = (b);                                               \
		if (!_a || !_b || strcmp(_a, _b) != 0)                                         \
			sb_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
				     _a ? _a : "(null)", _b ? _b : "(null)");                  \
	} while (0)

#define ASSERT_MEMEQ(a, b, n)                                                                 \
	do {                                                                                  \
		if (memcmp((a), (b), (n)) != 0)                                               \
			sb_test_fail(__FILE__, __LINE__, "memory differs: %s vs %s", #a, #b); \
	} while (0)

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Small language helpers shared by every module: scope-bound cleanup in the
 * systemd style, ownership hand-off, and a few arithmetic guards.
 *
 *   _cleanup_free_ char *s = strdup(x);   freed when s leaves scope
 *   _cleanup_close_ int fd = open(...);   closed when fd leaves scope (if >= 0)
 *   return TAKE_PTR(s);                   hand ownership on; s becomes NULL
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>
#include <dirent.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _unused_       __attribute__((unused))
#define _noreturn_     __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _must_check_   __attribute__((warn_unused_result))
#define _likely_(x)    __builtin_expect(!!(x), 1)
#define _unlikely_(x)  __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

static inline void sb__freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(sb__freep)

static inline void sb__closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(sb__closep)

static inline void sb__fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(sb__fclosep)

static inline void sb__closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(sb__closedirp)

#define TAKE_PTR(p)                     \
	({                              \
		__typeof__(p) _p = (p); \
		(p) = NULL;             \
		_p;                     \
	})

#define TAKE_FD(fd)             \
	({                      \
		int _fd = (fd); \
		(fd) = -1;      \
		_fd;            \
	})

/* Close fd (if open) and set it to -1. */
#define CLOSE_FD(fd)               \
	do {                       \
		if ((fd) >= 0)     \
			close(fd); \
		(fd) = -1;         \
	} while (0)

/* Retry a syscall expression while it fails with EINTR. */
#define RETRY_EINTR(expr)                         \
	({                                        \
		__typeof__(expr) _r;              \
		do                                \
			_r = (expr);              \
		while (_r < 0 && errno == EINTR); \
		_r;                               \
	})

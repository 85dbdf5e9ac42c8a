/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Error context. Every fallible function returns int: >= 0 on success, a
 * negative errno on failure. The errno is part of the API:
 *
 *   -ENOENT      a missing file, object or snapshot
 *   -EBADMSG     corrupt data (hash mismatch, bad header, truncated object)
 *   -EXDEV       a path tried to escape the directory it must stay beneath
 *   -EOPNOTSUPP  a kernel feature is missing
 *   -EBUSY       the workspace is locked by another snapbox
 *   -EINVAL      bad user input (the message names the value)
 *
 * Human context travels in a caller-owned sb_error filled where the failing
 * path is known, so a message can name the file at fault:
 *
 *   return sb_error_errno(err, errno, "openat '%s'", name);
 *     -> err->msg = "openat 'foo': No such file or directory", returns -ENOENT
 *
 * err may be NULL: the code is still returned, the message is dropped. The
 * first error set wins only if callers stop at it; a later set overwrites.
 * Library code never prints; cli/ prints err->msg.
 */

#include <stddef.h>
#include "macro.h"

#define SB_ERROR_MAX 1024

typedef struct sb_error {
	int code; /* positive errno, 0 when no error was set */
	char msg[SB_ERROR_MAX];
} sb_error;

#define SB_ERROR_INIT     \
	{                 \
		0,        \
		{         \
			0 \
		}         \
	}

/* Set code and formatted message; returns -code. */
int sb_error_set(sb_error *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Like sb_error_set, appending ": strerror(code)". Returns -code. */
int sb_error_errno(sb_error *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Prefix the existing message with more context ("what: old message"). Returns -code. */
int sb_error_prefix(sb_error *err, const char *fmt, ...) _printf_(2, 3);

/* Forget any error. */
void sb_error_clear(sb_error *err);

/*
 * Render bytes for a message: printable ASCII kept, everything else as \xNN,
 * truncated with "..." to fit buf. Names in a workspace are hostile bytes.
 */
const char *sb_quote(char *buf, size_t size, const char *s, size_t len);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Parsers for the numbers a user types on the command line or in a profile:
 * sizes (--memory 64M, --fsize 1G), durations (--timeout 2s), CPU counts
 * (--cpus 0.5) and plain unsigned integers (--pids 64, nofile 1024).
 *
 * All are strict: the whole string must be consumed, no sign, no leading or
 * trailing space. On failure the output is left untouched and err names the
 * value ("invalid size '64Q': ..."). Errnos:
 *
 *   -EINVAL  not a well-formed value (empty, junk, unknown suffix, zero CPUs)
 *   -ERANGE  well formed but does not fit (overflow, outside [min, max])
 *
 * Sizes are binary (K = 1024), as docker --memory and systemd MemoryMax= read
 * them: "64M", "64m", "64MiB", "64MB", "1.5G", "4096" (bytes), "512k".
 * A fraction is allowed with a suffix and rounds down to whole bytes.
 *
 * Durations: one or more <number><unit> groups, "1h30m", "2s", "1.5s",
 * "250ms"; units ns, us, ms, s, m/min, h, d. A bare number is seconds, as
 * timeout(1) reads it. Result in nanoseconds.
 *
 * CPUs: a decimal with at most three fractional digits ("0.5", "2",
 * "0.125"), result in thousandths of a CPU (500, 2000, 125); must be > 0.
 */

#include <stdint.h>
#include "error.h"

int sb_parse_size(const char *s, uint64_t *ret_bytes, sb_error *err);
int sb_parse_duration(const char *s, uint64_t *ret_nsec, sb_error *err);
int sb_parse_cpus(const char *s, uint64_t *ret_millicpus, sb_error *err);

/* Decimal unsigned integer within [min, max]; what names the value in messages ("--pids"). */
int sb_parse_uint64(const char *s, uint64_t min, uint64_t max, const char *what, uint64_t *ret,
		    sb_error *err);

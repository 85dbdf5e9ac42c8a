/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Line diff of two buffers (Myers' O(ND) greedy algorithm after trimming the
 * common prefix and suffix), producing unified-diff hunks.
 *
 * Memory is O(D^2) for D differing lines; past SB_LINEDIFF_MAX_D the result
 * falls back to replacing the whole differing middle, which is still a
 * correct (if larger) patch.
 *
 *   sb_linediff_write(f, a, alen, b, blen, context, colors) prints the
 *   "@@ -l,n +l,n @@" hunks (with "\ No newline at end of file" markers) and
 *   fills ret_added / ret_removed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SB_LINEDIFF_MAX_D 4000

typedef struct sb_linediff_colors {
	const char *frag, *old, *new, *reset; /* "" when colour is off */
} sb_linediff_colors;

/* Counts only (for --stat). */
int sb_linediff_count(const char *a, size_t alen, const char *b, size_t blen, uint64_t *ret_added,
		      uint64_t *ret_removed);

int sb_linediff_write(FILE *f, const char *a, size_t alen, const char *b, size_t blen,
		      unsigned context, const sb_linediff_colors *colors, uint64_t *ret_added,
		      uint64_t *ret_removed);

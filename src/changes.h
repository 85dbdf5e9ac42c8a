/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The change list: what a sandboxed run left in its upper layer, as raw
 * entries, before anything is compared with the baseline. overlay/ produces
 * it (O(size of upper)); merkle/ consumes it to compute the new tree as
 * baseline + changes (O(changes x depth)); cli/ classifies and prints it.
 *
 * Each entry names a path relative to the workspace root (bytes, '/'-joined,
 * no leading slash) and says what the upper layer holds there:
 *
 *   SB_CHANGE_WRITE   the upper has an entry of `type` (file content, a
 *                     symlink, a fifo, or a directory); for a directory the
 *                     entry alone says "exists with these attributes" and its
 *                     children appear as entries of their own
 *   SB_CHANGE_DELETE  a whiteout: the path no longer exists
 *
 * A directory entry with `opaque` set replaces the lower directory wholesale:
 * none of the lower children survive (they are not listed as deletions).
 *
 * The list is sorted by path bytes (sb_changes_sort) so that a parent always
 * precedes its children.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sb_ftype {
	SB_FT_NONE = 0,
	SB_FT_REG = 1,
	SB_FT_DIR = 2,
	SB_FT_SYMLINK = 3,
	SB_FT_FIFO = 4,
} sb_ftype;

typedef enum sb_change_kind {
	SB_CHANGE_WRITE = 1,
	SB_CHANGE_DELETE = 2,
} sb_change_kind;

typedef struct sb_change {
	char *path; /* owned, NUL-terminated; path_len excludes the NUL */
	size_t path_len;
	sb_change_kind kind;
	sb_ftype type; /* WRITE: type in the upper; DELETE: SB_FT_NONE */
	uint32_t mode; /* permission bits (07777) */
	uint64_t size;
	int64_t mtime_ns;
	bool opaque; /* directory replaces the lower one wholesale */
} sb_change;

typedef struct sb_changes {
	sb_change *v;
	size_t n, cap;
} sb_changes;

#define SB_CHANGES_INIT    \
	{                  \
		NULL, 0, 0 \
	}

void sb_changes_init(sb_changes *c);
void sb_changes_release(sb_changes *c);
/* Copies path; returns the new entry (zeroed but for path) or NULL on ENOMEM. */
sb_change *sb_changes_add(sb_changes *c, const char *path, size_t path_len);
/* Sorts by path with '/' ordered before every other byte, so children follow parents. */
void sb_changes_sort(sb_changes *c);
/* Compare two paths in that order. */
int sb_path_cmp(const char *a, size_t alen, const char *b, size_t blen);

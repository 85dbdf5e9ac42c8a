/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Canonical tree objects: one directory's entries, sorted by raw name bytes
 * (names are bytes, not UTF-8; any byte but '/' and NUL), each with
 *
 *   type      SB_FT_REG, SB_FT_DIR, SB_FT_SYMLINK, SB_FT_FIFO
 *   mode      permission bits (07777)
 *   size      bytes (file content; symlink target length; 0 for dirs, fifos)
 *   mtime_ns  modification time, nanoseconds since the epoch
 *   id        REG: content id (content.h); DIR: the child tree's id;
 *             SYMLINK: a blob holding the target; FIFO: all zeros
 *
 * Equal subtrees have equal ids, so diff and restore skip them whole.
 *
 * Encoding (SB_OBJ_TREE payload), all integers little-endian:
 *   "sbtree1\n" count:le32 then per entry
 *   type:u8 mode:le32 size:le64 mtime_ns:le64 id:32 name_len:le16 name
 * Decoding rejects (-EBADMSG) anything that encoding could not have produced:
 * unknown types, mode bits above 07777, names empty / "." / ".." / with '/' or
 * NUL / over 255 bytes, entries out of order or repeated, trailing bytes.
 */

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "changes.h"
#include "error.h"
#include "hash.h"
#include "store.h"

/*
 * How deep a tree may nest. Every walker (scan, stage, diff, restore, verify)
 * refuses deeper trees with -ELOOP naming the path, instead of running out of
 * stack or file descriptors on a tree a hostile command built 100k levels deep.
 */
#define SB_TREE_MAX_DEPTH 1024

typedef struct sb_tree_entry {
	char *name; /* owned, NUL-terminated (names never contain NUL) */
	size_t name_len;
	sb_ftype type;
	uint32_t mode;
	uint64_t size;
	int64_t mtime_ns;
	sb_id id;
} sb_tree_entry;

typedef struct sb_tree {
	sb_tree_entry *v;
	size_t n, cap;
} sb_tree;

#define SB_TREE_INIT       \
	{                  \
		NULL, 0, 0 \
	}

void sb_tree_init(sb_tree *t);
void sb_tree_release(sb_tree *t);
/* For _cleanup_(sb_tree_releasep) on an embedded sb_tree. */
static inline void sb_tree_releasep(sb_tree *t)
{
	sb_tree_release(t);
}
/* Frees e->name (from sb_tree_lookup) and zeroes the entry. NULL-safe. */
void sb_tree_entry_release(sb_tree_entry *e);
/* Deep copy of one entry (name duplicated); -ENOMEM. */
int sb_tree_entry_copy(const sb_tree_entry *src, sb_tree_entry *ret);
/* Appends an entry (copying name); returns it zeroed but for the name, or NULL on ENOMEM. */
sb_tree_entry *sb_tree_add(sb_tree *t, const char *name, size_t name_len);
/* Sorts by raw name bytes (memcmp, shorter first on a common prefix). */
void sb_tree_sort(sb_tree *t);
/* Binary search in a sorted tree; NULL when absent. */
const sb_tree_entry *sb_tree_find(const sb_tree *t, const char *name, size_t name_len);
/* Removes entry i, keeping order. */
void sb_tree_remove(sb_tree *t, size_t i);

/*
 * Appends the encoding to out. The tree must be sorted and valid by the same
 * rules decode applies (plus: REG, DIR and SYMLINK ids are not all zeros):
 * -EINVAL naming the entry otherwise, so nothing undecodable is ever stored.
 */
int sb_tree_encode(const sb_tree *t, sb_buf *out, sb_error *err);
/*
 * *ret is overwritten on success (any previous contents are not released);
 * untouched on failure. -EBADMSG with the reason in err.
 */
int sb_tree_decode(const void *data, size_t len, sb_tree *ret, sb_error *err);

/* Encode + sb_store_put / sb_store_get + decode. */
int sb_tree_save(sb_store *s, const sb_tree *t, sb_id *ret_id, sb_error *err);
int sb_tree_load(sb_store *s, const sb_id *id, sb_tree *ret, sb_error *err);

/* The id of the empty tree (a workspace with nothing in it). */
void sb_tree_empty_id(sb_id *ret_id);

/*
 * Looks a '/'-separated relative path up from root: fills *ret_entry with a
 * copy whose name is malloc'd — release it with sb_tree_entry_release().
 * Empty components are skipped; an empty path (or only slashes) gives a DIR
 * entry for the root itself (name "", id = *root, mode and mtime 0).
 * Returns 0 when found, -ENOENT when some component is missing or not a dir,
 * -EINVAL for a "." or ".." component, -EBADMSG for a corrupt tree on the way.
 * Loads O(depth) trees.
 */
int sb_tree_lookup(sb_store *s, const sb_id *root, const char *path, size_t path_len,
		   sb_tree_entry *ret_entry, sb_error *err);

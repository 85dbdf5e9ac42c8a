/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Reachability: every object a tree reaches — its subtrees, each file's
 * content (the blob, or the chunk list and its chunks) and each symlink
 * target. Trees and contents are walked once however many trees share
 * them, so a walk of many snapshots costs the number of distinct trees. verify checks what a
 * walk reaches (fsck.h); gc keeps it (gc.h).
 *
 *   sb_reach *r;
 *   sb_reach_new(store, &ops, &r);
 *   sb_reach_tree(r, &root);        once per root; shared parts are skipped
 *   sb_reach_content(r, &id);       a file's content named outside a tree
 *   sb_reach_seen(r, &id)           was it reached?
 *   sb_reach_free(r);
 *
 * Trees and chunk lists are read (and so verified) to find what they name;
 * a blob content is found in an index; chunks and symlink targets are not
 * read but looked up. A tree or content that cannot be read, a chunk or
 * symlink target in no index ("missing object", "missing symlink target"),
 * or trees nested deeper than SB_TREE_MAX_DEPTH, go to ops.problem with the
 * path inside the root, and the walk goes on beside them: what an
 * unreadable tree or content names is not reached. -ENOMEM, or what ops.object
 * returned when it stopped the walk (< 0).
 */

#include <stdbool.h>
#include <stddef.h>

#include "hash.h"
#include "store.h"

typedef enum sb_reach_kind {
	SB_REACH_TREE,	  /* a tree, read */
	SB_REACH_CONTENT, /* a file's content: its blob, or its chunk list (read) */
	SB_REACH_CHUNK,	  /* a chunk of a chunk list */
	SB_REACH_SYMLINK, /* a symlink's target */
} sb_reach_kind;

typedef struct sb_reach_ops {
	/*
	 * Each tree and content reached, once; each chunk of each content and
	 * each symlink target wherever it occurs (so a missing one is named at
	 * every path). path is where ("" for the root). < 0 stops the walk.
	 */
	int (*object)(void *userdata, const sb_id *id, sb_reach_kind kind, const char *path);
	/* A tree or content that could not be read; what says why. */
	void (*problem)(void *userdata, const sb_id *id, const char *path, const char *what);
	void *userdata;
} sb_reach_ops;

typedef struct sb_reach sb_reach;

int sb_reach_new(sb_store *s, const sb_reach_ops *ops, sb_reach **ret);
void sb_reach_free(sb_reach *r);

int sb_reach_tree(sb_reach *r, const sb_id *root);
int sb_reach_content(sb_reach *r, const sb_id *id);
bool sb_reach_seen(const sb_reach *r, const sb_id *id);
/* Objects reached so far. */
size_t sb_reach_count(const sb_reach *r);

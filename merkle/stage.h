/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Staging: a sandboxed run's upper layer, read into a change list
 * (src/changes.h), becomes a tree in the store: the baseline tree with the
 * changes applied (edit.h), contents read from the upper directory through
 * the beneath-resolver. A file's mode, size and mtime are taken from the
 * file as it is opened (the change list may leave them 0:
 * SB_UPPER_PLAIN_FILES in overlay.h), its size read as final (one that
 * changes is an error): nothing writes to a finished run's upper. Once
 * staged, the upper directory is no longer needed: diff, apply and discard
 * work on store objects alone.
 *
 * Setuid and setgid bits on files written by the command are dropped (counted
 * in stripped): applied, they would hand the command's choice of program the
 * caller's privileges.
 *
 * With SB_STAGE_PREVIEW, regular files are stat'ed, not read: each one's id
 * in the resulting tree is the unread id (every byte 0xff,
 * sb_stage_id_unread), which no object has. Such a tree is only for a store
 * in scratch mode (store.h); sb_stage_preview wraps it.
 *
 * Cost: O(size of the changes), plus O(changes x depth) trees; a preview
 * O(number of changes), reading only the files it must (below).
 */

#include <stdbool.h>

#include "changes.h"
#include "diff.h"
#include "error.h"
#include "store.h"

typedef enum sb_stage_flags {
	SB_STAGE_PREVIEW = 1 << 0, /* files stat'ed, not read (see above) */
} sb_stage_flags;

typedef struct sb_stage_stats {
	uint64_t files, bytes, deletions, dirs;
	uint64_t stripped; /* files whose setuid/setgid bits were dropped */
} sb_stage_stats;

int sb_stage_upper(sb_store *s, const sb_id *base_root, const sb_changes *changes, int upper_fd,
		   sb_stage_flags flags, sb_id *ret_root, sb_stage_stats *ret_stats, sb_error *err);
bool sb_stage_id_unread(const sb_id *id);

/*
 * What staging would change, without staging: appends to *ret the entries
 * sb_diff_trees(base_root, <the staged root>) would report, in the same
 * order, with nothing written to the store. A directory's new id is the
 * unread id, and so is a regular file's unless the file had to be read: one whose type, mode and size
 * equal the baseline's is hashed (hashed counts them), to tell an edit from
 * a copy-up that changed nothing. pending says whether staging would give a
 * root other than base_root at all (a new mtime alone counts, though the
 * diff does not show it). The store must be open for writing and not in
 * scratch mode. On error *ret may hold entries: release it either way.
 */
typedef struct sb_stage_preview_stats {
	uint64_t bytes;	   /* sizes of the files the entries add or modify */
	uint64_t stripped; /* as sb_stage_stats' */
	uint64_t hashed;   /* files read */
	bool pending;
} sb_stage_preview_stats;

int sb_stage_preview(sb_store *s, const sb_id *base_root, const sb_changes *changes, int upper_fd,
		     sb_diff_list *ret, sb_stage_preview_stats *ret_stats, sb_error *err);

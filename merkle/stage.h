/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Staging: a sandboxed run's upper layer, read into a change list
 * (src/changes.h), becomes a tree in the store: the baseline tree with the
 * changes applied (edit.h), contents read from the upper directory through
 * the beneath-resolver. A file's mode, size and mtime are taken from the
 * file as it is opened (the change list may leave them 0:
 * SB_UPPER_PLAIN_FILES in overlay.h), its size read as final (one
 * that changes is an error): nothing writes to a finished run's upper. Once staged, the upper directory is no longer needed:
 * diff, apply and discard work on store objects alone.
 *
 * Setuid and setgid bits on files written by the command are dropped (counted
 * in stripped): applied, they would hand the command's choice of program the
 * caller's privileges.
 *
 * Cost: O(size of the changes), plus O(changes x depth) trees.
 */

#include "changes.h"
#include "error.h"
#include "store.h"

typedef struct sb_stage_stats {
	uint64_t files, bytes, deletions, dirs;
	uint64_t stripped; /* files whose setuid/setgid bits were dropped */
} sb_stage_stats;

int sb_stage_upper(sb_store *s, const sb_id *base_root, const sb_changes *changes, int upper_fd,
		   sb_id *ret_root, sb_stage_stats *ret_stats, sb_error *err);

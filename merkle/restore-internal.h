/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Private to restore: the file writers (restore-write.c) the walk
 * (restore.c) hands its writes to, and what the walk touched, for the check
 * (restore-check.c).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "restore.h"

typedef enum sb_restore__kind {
	SB_RESTORE__DIR = 1 << 0,     /* a directory walked on the way to changes */
	SB_RESTORE__CHANGED = 1 << 1, /* a directory in which an entry was written, removed,
				       * renamed or given other attributes */
	SB_RESTORE__WHOLE = 1 << 2,   /* a directory written whole: everything below is new */
	SB_RESTORE__WRITTEN = 1 << 3, /* a file, symlink or fifo written */
	SB_RESTORE__ATTRS = 1 << 4,   /* mode and mtime set, content left alone */
	SB_RESTORE__SKIPPED = 1 << 5, /* in the target but excluded now: left as it is */
} sb_restore__kind;

typedef struct sb_restore__mark {
	char *path; /* relative, '/'-joined; "" is the root */
	size_t len;
	unsigned kinds; /* sb_restore__kind */
	sb_tree tree;	/* DIR: the target's tree of this directory, as the walk loaded it */
} sb_restore__mark;

struct sb_restore_touched {
	sb_restore__mark *v;
	size_t n, cap;
};

/* Sorts by path bytes and merges the marks of one path (restore.c, at the end). */
void sb_restore__touched_seal(sb_restore_touched *t);
/* The mark of path, or NULL. t must be sealed. */
const sb_restore__mark *sb_restore__touched_find(const sb_restore_touched *t, const char *path,
						 size_t len);

/* ---- writers (restore-write.c) ---- */

/* A directory being filled; see the lifecycle atop restore-write.c. */
typedef struct sb_restore__dir {
	int fd;
	bool own_fd;	    /* false for the root: the caller's fd */
	bool finish;	    /* give it self's mode and mtime when done */
	unsigned refs;	    /* the walker's, and one per queued write */
	sb_tree_entry self; /* owns its name */
	char *path;	    /* for messages */
} sb_restore__dir;

typedef struct sb_restore__writers sb_restore__writers;

/* threads: 0 for a default, 1 to write on the calling thread. */
int sb_restore__writers_new(sb_store *s, int threads, sb_restore__writers **ret, sb_error *err);
/*
 * Waits for every queued write and frees w. Returns ret when it is an error
 * (what was still queued is skipped), else the first write's failure (err
 * then says it), else 0.
 */
int sb_restore__writers_free(sb_restore__writers *w, int ret, uint64_t *ret_written, sb_error *err);

/* With one reference, the walker's. NULL on ENOMEM. fd is taken when own_fd. */
sb_restore__dir *sb_restore__dir_new(int fd, bool own_fd, const sb_tree_entry *self,
				     const char *path);
/*
 * Writes the non-directory e into d over had, what the scan recorded at its
 * name (NULL: nothing; see sb_export_expect), now or later on a writer
 * thread. A failure of an earlier write comes back here (with err) so the
 * walk stops.
 */
int sb_restore__write(sb_restore__writers *w, sb_restore__dir *d, const sb_tree_entry *e,
		      const sb_tree_entry *had, const char *path, sb_error *err);
/* The walker is done with d (ret: how its walk went); finished now or by the last write. */
int sb_restore__dir_done(sb_restore__writers *w, sb_restore__dir *d, int ret, sb_error *err);

/* ---- what the check re-hashed (restore-record.c) ---- */

int sb_restore__rehashed_new(sb_restore_rehashed **ret);
/*
 * The check read the file at path, fstat'ed as st before, as id; the read
 * began once the coarse clock said read_ns. -ENOMEM.
 */
int sb_restore__rehashed_add(sb_restore_rehashed *r, const char *path, size_t len,
			     const struct stat *st, const sb_id *id, int64_t read_ns);

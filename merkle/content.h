/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * File content in the store. A file of up to SB_CONTENT_CHUNK_MIN_FILE bytes
 * is one SB_OBJ_BLOB; a larger one is cut by content-defined chunking
 * (cdc.h, FastCDC-style, average ~1 MiB) into blobs, listed in order by an
 * SB_OBJ_CHUNKS object:
 *
 *   "sbchnk1\n" count:le32 total_size:le64 then per chunk  size:le32 id:32
 *
 * so an edit to a big file stores only the chunks it touched. The content id
 * of a file is the id of its blob or of its chunk list: the choice depends on
 * the size alone, so equal files always get equal ids.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "error.h"
#include "hash.h"
#include "store.h"

#define SB_CONTENT_CHUNK_MIN_FILE (4u << 20)

/*
 * Reads fd from offset 0 to EOF, stores the content, returns its id and the
 * number of bytes read (which the caller compares with what it stat'ed to
 * notice a file changing under it). Streams: memory use is bounded by the
 * chunk size, not the file size.
 */
int sb_content_store_fd(sb_store *s, int fd, sb_id *ret_id, uint64_t *ret_size, sb_error *err);

/*
 * Same, for a regular file the caller has just fstat'ed (st) and fstat's
 * again afterwards to notice a change: st sizes the read buffer, and a read
 * that comes up short exactly at st->st_size is taken as EOF without another
 * read to confirm it. A file that grew meanwhile is then stored short, which
 * the caller's second fstat reveals.
 */
int sb_content_store_fd_stat(sb_store *s, int fd, const struct stat *st, sb_id *ret_id,
			     uint64_t *ret_size, sb_error *err);

/* Same, for bytes in memory (tests, apply of small files). */
int sb_content_store_buf(sb_store *s, const void *data, size_t len, sb_id *ret_id, sb_error *err);

/* The id sb_content_store_fd would give, without storing (no-op copy-up detection). */
int sb_content_hash_fd(int fd, sb_id *ret_id, uint64_t *ret_size, sb_error *err);

typedef enum sb_content_write_flags {
	SB_CONTENT_SPARSE = 1 << 0, /* seek over runs of zeros (>= 4 KiB, aligned) to leave holes */
} sb_content_write_flags;

/*
 * Writes the content with id to fd (at offset 0, which must be an empty
 * regular file), verifying every object read. With SB_CONTENT_SPARSE the file
 * is ftruncate'd to its full size at the end so trailing holes count.
 * expect_size (if not UINT64_MAX) must match the stored total: -EBADMSG else.
 */
int sb_content_write_fd(sb_store *s, const sb_id *id, uint64_t expect_size, int fd,
			sb_content_write_flags flags, sb_error *err);

/*
 * Visits the ids of every object the content is made of (the chunk list and
 * its chunks, or the single blob), for verify and gc.
 */
typedef int (*sb_content_each_fn)(void *userdata, const sb_id *id);
int sb_content_foreach_object(sb_store *s, const sb_id *id, sb_content_each_fn fn, void *userdata,
			      sb_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Exclusions in gitignore syntax, from `--exclude PATTERN` and from the
 * `.snapboxignore` file at the workspace root.
 *
 *   sb_ignore *ign;
 *   sb_ignore_new(&ign);
 *   sb_ignore_load_file(ign, root_fd, SB_IGNORE_FILE, err);  0 absent, 1 loaded
 *   sb_ignore_add(ign, "build/", err);                        each --exclude
 *   ... sb_ignore_match(ign, "src/x.o", 7, false) ...
 *   record sb_ignore_pattern(ign, 0 .. sb_ignore_count(ign)-1) in the manifest;
 *   later, sb_ignore_add() each recorded string in order rebuilds the same set
 *   sb_ignore_free(ign);
 *
 * Syntax (as gitignore(5)): blank lines and lines starting with '#' are
 * skipped; trailing spaces are dropped unless escaped with '\'; a trailing
 * '\r' is dropped; '!' negates (re-includes); a trailing '/' matches only
 * directories; a pattern with a '/' at its start or middle is anchored at the
 * workspace root (the leading '/' is dropped), otherwise it matches the last
 * component at any depth; '*' and '?' match anything but '/'; '[...]' is a
 * class ('!' or '^' negates, ranges, [:alpha:]-style names, never '/');
 * '**' as a whole component matches any number of components ("**" + "/x",
 * "a/" + "**", "a/" + "**" + "/b"), elsewhere it is a plain '*'; '\' makes the
 * next byte literal. Matching is byte-wise and case-sensitive.
 *
 * Precedence: the last matching pattern decides. Patterns from the file are
 * always placed before every sb_ignore_add() pattern, so the command line
 * wins whatever the call order; sb_ignore_pattern() lists them in that
 * effective order. As in git, a path inside an excluded directory cannot be
 * re-included (the scanner never enters the directory; sb_ignore_excluded()
 * checks ancestors for callers that have a bare path).
 *
 * The ignore file itself (SB_IGNORE_FILE at the root) is never excluded.
 *
 * Errors: sb_ignore_add gives -EINVAL naming a pattern that is empty, only a
 * comment, "/" or "!" alone, ends in an unescaped '\', or has an unclosed
 * '['. In the file such lines are skipped (as git does). The file is read
 * through the beneath-resolver (a symlink is -ELOOP), at most
 * SB_IGNORE_FILE_MAX bytes (-EFBIG beyond).
 */

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define SB_IGNORE_FILE	      ".snapboxignore"
#define SB_IGNORE_FILE_MAX    (1u << 20)
#define SB_IGNORE_PATTERN_MAX 4096 /* bytes in one pattern */

typedef struct sb_ignore sb_ignore;

int sb_ignore_new(sb_ignore **ret);
void sb_ignore_free(sb_ignore *ign);
static inline void sb_ignore_freep(sb_ignore **p)
{
	sb_ignore_free(*p);
}

/* One pattern, as a command-line --exclude (or as recorded in a manifest). */
int sb_ignore_add(sb_ignore *ign, const char *pattern, sb_error *err);

/*
 * Reads patterns from name beneath root_fd. Returns 1 when read, 0 when the
 * file does not exist, negative errno otherwise.
 */
int sb_ignore_load_file(sb_ignore *ign, int root_fd, const char *name, sb_error *err);

/* Patterns in evaluation order, as written (trailing spaces trimmed). */
size_t sb_ignore_count(const sb_ignore *ign);
const char *sb_ignore_pattern(const sb_ignore *ign, size_t i);

/*
 * Whether path (relative to the root, '/'-joined, no leading or trailing
 * slash) is excluded, assuming its parent directories are not. This is what a
 * walker asks for each entry before entering it. ign may be NULL (false).
 */
bool sb_ignore_match(const sb_ignore *ign, const char *path, size_t len, bool is_dir);

/* Same, but true also when any parent directory of path is excluded. */
bool sb_ignore_excluded(const sb_ignore *ign, const char *path, size_t len, bool is_dir);

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "content.h"
#include "edit.h"
#include "fileio.h"
#include "safefs.h"
#include "stage.h"

static int64_t mtime_of(const struct stat *st)
{
	return sb_ns_from_timespec(&st->st_mtim);
}

static int stage_file(sb_store *s, int upper_fd, const sb_change *c, sb_tree_entry *e,
		      sb_stage_stats *st, sb_error *err)
{
	_cleanup_close_ int fd = sb_open_beneath(upper_fd, c->path, O_RDONLY | O_NONBLOCK, 0, err);
	if (fd < 0)
		return fd;
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return sb_error_errno(err, errno, "stat staged '%s'", c->path);
	if (!S_ISREG(sb.st_mode))
		return sb_error_set(err, EINVAL, "staged '%s' is no longer a regular file",
				    c->path);
	uint64_t size;
	int r = sb_content_store_fd(s, fd, &e->id, &size, err);
	if (r < 0)
		return r;
	e->type = SB_FT_REG;
	/*
	 * The command is an adversary: a setuid or setgid bit it set would become
	 * a privileged program on the host once applied. Never staged.
	 */
	e->mode = sb.st_mode & 07777;
	if (e->mode & (S_ISUID | S_ISGID)) {
		e->mode &= ~(mode_t)(S_ISUID | S_ISGID);
		st->stripped++;
	}
	e->size = size;
	e->mtime_ns = mtime_of(&sb);
	st->files++;
	st->bytes += size;
	return 0;
}

static int stage_symlink(sb_store *s, int upper_fd, const sb_change *c, sb_tree_entry *e,
			 sb_error *err)
{
	const char *name;
	_cleanup_close_ int dfd = sb_open_parent_beneath(upper_fd, c->path, &name, err);
	if (dfd < 0)
		return dfd;
	char target[PATH_MAX + 1];
	ssize_t n = readlinkat(dfd, name, target, sizeof(target));
	if (n < 0)
		return sb_error_errno(err, errno, "readlink staged '%s'", c->path);
	if (n == 0 || (size_t)n >= sizeof(target))
		return sb_error_set(err, EINVAL, "staged symlink '%s' has a bad target", c->path);
	struct stat sb;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return sb_error_errno(err, errno, "stat staged '%s'", c->path);
	int r = sb_store_put(s, SB_OBJ_BLOB, target, (size_t)n, &e->id, err);
	if (r < 0)
		return r;
	e->type = SB_FT_SYMLINK;
	e->mode = 0777;
	e->size = (uint64_t)n;
	e->mtime_ns = mtime_of(&sb);
	return 0;
}

int sb_stage_upper(sb_store *s, const sb_id *base_root, const sb_changes *changes, int upper_fd,
		   sb_id *ret_root, sb_stage_stats *ret_stats, sb_error *err)
{
	sb_stage_stats st = {0};
	_cleanup_free_ sb_edit *edits = calloc(changes->n ? changes->n : 1, sizeof(*edits));
	if (!edits)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < changes->n; i++) {
		const sb_change *c = &changes->v[i];
		sb_edit *e = &edits[i];
		e->path = c->path;
		e->path_len = c->path_len;
		e->entry.mode = c->mode & 07777;
		e->entry.mtime_ns = c->mtime_ns;
		if (c->kind == SB_CHANGE_DELETE) {
			e->op = SB_EDIT_DELETE;
			st.deletions++;
			continue;
		}
		e->op = SB_EDIT_PUT;
		switch (c->type) {
		case SB_FT_REG:
			r = stage_file(s, upper_fd, c, &e->entry, &st, err);
			break;
		case SB_FT_SYMLINK:
			r = stage_symlink(s, upper_fd, c, &e->entry, err);
			break;
		case SB_FT_FIFO:
			e->entry.type = SB_FT_FIFO;
			break;
		case SB_FT_DIR:
			e->op = c->opaque ? SB_EDIT_DIR_EMPTY : SB_EDIT_DIR;
			st.dirs++;
			break;
		default:
			r = sb_error_set(err, EINVAL, "staged '%s' has an unknown type", c->path);
		}
	}
	if (r >= 0)
		r = sb_tree_edit(s, base_root, edits, changes->n, ret_root, NULL, err);
	if (r >= 0 && ret_stats)
		*ret_stats = st;
	return r;
}

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "export.h"
#include "restore.h"

typedef struct restorer {
	sb_store *store;
	const sb_ignore *protect;
	sb_restore_stats st;
	sb_export_stats ex;
	sb_buf path;
	sb_error *err;
} restorer;

static int push_name(restorer *r, const char *name, size_t len, size_t *ret_saved)
{
	*ret_saved = r->path.len;
	if (r->path.len && sb_buf_putc(&r->path, '/') < 0)
		return -ENOMEM;
	return sb_buf_append(&r->path, name, len);
}

static void pop(restorer *r, size_t saved)
{
	sb_buf_truncate(&r->path, saved);
}

static const char *where(restorer *r)
{
	return r->path.len ? r->path.data : ".";
}

static bool protected(restorer *r, bool is_dir)
{
	return r->protect && sb_ignore_excluded(r->protect, r->path.data, r->path.len, is_dir);
}

/*
 * Directories are made writable by us while we change them (a read-only
 * directory in the tree must still be filled or emptied); the final mode is
 * set by sb_export_dir_finish.
 */
static int open_dir(restorer *r, int dfd, const char *name, int *ret_fd)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
		(void)fchmod(fd, (st.st_mode & 07777) | 0700);
	*ret_fd = fd;
	return 0;
}

static int remove_entry(restorer *r, int dfd, const char *name);

/* Empties and removes the directory name; keeps protected children (and so the directory). */
static int remove_dir(restorer *r, int dfd, const char *name)
{
	int fd;
	int e = open_dir(r, dfd, name, &fd);
	if (e == -ENOTDIR || e == -ELOOP)
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT
			   ? sb_error_errno(r->err, errno, "remove '%s'", where(r))
			   : 0;
	if (e == -ENOENT)
		return 0;
	if (e < 0)
		return sb_error_errno(r->err, -e, "open '%s'", where(r));
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		int x = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		close(fd);
		return sb_error_errno(r->err, x, "read '%s'", where(r));
	}
	int ret = 0;
	bool kept = false;
	struct dirent *de;
	while (ret >= 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		size_t saved;
		ret = push_name(r, de->d_name, strlen(de->d_name), &saved);
		if (ret >= 0) {
			if (protected(r, de->d_type == DT_DIR))
				kept = true;
			else
				ret = remove_entry(r, fd, de->d_name);
		}
		pop(r, saved);
	}
	closedir(d);
	close(fd);
	if (ret < 0 || kept)
		return ret;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return sb_error_errno(r->err, errno, "remove directory '%s'", where(r));
	r->st.removed++;
	return 0;
}

static int remove_entry(restorer *r, int dfd, const char *name)
{
	if (unlinkat(dfd, name, 0) == 0) {
		r->st.removed++;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	if (errno == EISDIR || errno == EPERM)
		return remove_dir(r, dfd, name);
	return sb_error_errno(r->err, errno, "remove '%s'", where(r));
}

static int restore_dir(restorer *r, int dfd, const sb_id *cur, const sb_id *tgt);

/* Writes e (and for a directory, its whole subtree) where nothing stands now. */
static int write_entry(restorer *r, int dfd, const sb_tree_entry *e)
{
	int cfd = -1;
	int ret =
	    sb_export_entry(r->store, dfd, e, where(r), SB_EXPORT_REPLACE, &cfd, &r->ex, r->err);
	if (ret < 0)
		return ret;
	r->st.written++;
	if (e->type != SB_FT_DIR)
		return 0;
	ret = sb_export_tree(r->store, &e->id, cfd, 0, NULL, r->err);
	if (ret == -ENOTEMPTY) {
		/* A directory was already there (a race with the scan): merge into it. */
		ret = restore_dir(r, cfd, NULL, &e->id);
	}
	if (ret >= 0)
		ret = sb_export_dir_finish(cfd, e, where(r), r->err);
	close(cfd);
	return ret;
}

static int set_attrs(restorer *r, int dfd, const sb_tree_entry *e)
{
	if (e->type != SB_FT_SYMLINK && fchmodat(dfd, e->name, e->mode, AT_SYMLINK_NOFOLLOW) < 0)
		return sb_error_errno(r->err, errno, "chmod '%s'", where(r));
	struct timespec ts[2] = {
	    {.tv_nsec = UTIME_OMIT},
	    {.tv_sec = e->mtime_ns / 1000000000, .tv_nsec = e->mtime_ns % 1000000000},
	};
	if (utimensat(dfd, e->name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return sb_error_errno(r->err, errno, "set mtime of '%s'", where(r));
	r->st.attrs++;
	return 0;
}

/* Both sides have a directory here. */
static int update_dir(restorer *r, int dfd, const sb_tree_entry *c, const sb_tree_entry *t)
{
	if (sb_id_eq(&c->id, &t->id) && c->mode == t->mode && c->mtime_ns == t->mtime_ns)
		return 0;
	int cfd;
	int e = open_dir(r, dfd, t->name, &cfd);
	if (e == -ENOTDIR || e == -ELOOP || e == -ENOENT) {
		/* Swapped for something else since the scan: replace it. */
		int ret = remove_entry(r, dfd, t->name);
		return ret < 0 ? ret : write_entry(r, dfd, t);
	}
	if (e < 0)
		return sb_error_errno(r->err, -e, "open '%s'", where(r));
	int ret = 0;
	if (!sb_id_eq(&c->id, &t->id))
		ret = restore_dir(r, cfd, &c->id, &t->id);
	if (ret >= 0)
		ret = sb_export_dir_finish(cfd, t, where(r), r->err);
	close(cfd);
	return ret;
}

static int update_entry(restorer *r, int dfd, const sb_tree_entry *c, const sb_tree_entry *t)
{
	bool cd = c->type == SB_FT_DIR, td = t->type == SB_FT_DIR;
	if (cd && td)
		return update_dir(r, dfd, c, t);
	if (cd || c->type != t->type) {
		int ret = remove_entry(r, dfd, t->name);
		return ret < 0 ? ret : write_entry(r, dfd, t);
	}
	if (!sb_id_eq(&c->id, &t->id) || c->size != t->size)
		return write_entry(r, dfd, t); /* renamed over the old one */
	if (c->mode != t->mode || c->mtime_ns != t->mtime_ns)
		return set_attrs(r, dfd, t);
	return 0;
}

static int name_cmp(const sb_tree_entry *x, const sb_tree_entry *y)
{
	size_t n = MIN(x->name_len, y->name_len);
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* A directory only in cur with the same tree as t (only in target): move it. */
static sb_tree_entry *rename_source(sb_tree *ct, const sb_tree *tt, const sb_tree_entry *t)
{
	if (t->type != SB_FT_DIR)
		return NULL;
	for (size_t i = 0; i < ct->n; i++) {
		sb_tree_entry *c = &ct->v[i];
		if (c->type == SB_FT_DIR && c->name && sb_id_eq(&c->id, &t->id) &&
		    !sb_tree_find(tt, c->name, c->name_len))
			return c;
	}
	return NULL;
}

/* cur may be NULL: the directory holds nothing we know of. */
static int restore_dir(restorer *r, int dfd, const sb_id *cur, const sb_id *tgt)
{
	sb_tree ct = SB_TREE_INIT, tt = SB_TREE_INIT;
	int ret = cur ? sb_tree_load(r->store, cur, &ct, r->err) : 0;
	if (ret >= 0)
		ret = sb_tree_load(r->store, tgt, &tt, r->err);
	r->st.trees_compared++;
	size_t saved;

	/* Renames first: they save rewriting whole subtrees. */
	for (size_t i = 0; ret >= 0 && i < tt.n; i++) {
		const sb_tree_entry *t = &tt.v[i];
		if (sb_tree_find(&ct, t->name, t->name_len))
			continue;
		sb_tree_entry *c = rename_source(&ct, &tt, t);
		if (!c)
			continue;
		ret = push_name(r, t->name, t->name_len, &saved);
		if (ret >= 0 && !protected(r, true)) {
			if (renameat(dfd, c->name, dfd, t->name) == 0) {
				r->st.renamed++;
				/* Now present under the new name: adjust cur. */
				free(c->name);
				c->name = strndup(t->name, t->name_len);
				c->name_len = t->name_len;
				if (!c->name)
					ret = -ENOMEM;
				sb_tree_sort(&ct);
			}
		}
		pop(r, saved);
	}

	/* Merge: removals, writes and updates in name order. */
	size_t i = 0, j = 0;
	while (ret >= 0 && (i < ct.n || j < tt.n)) {
		int c = i == ct.n ? 1 : j == tt.n ? -1 : name_cmp(&ct.v[i], &tt.v[j]);
		const sb_tree_entry *e = c <= 0 ? &ct.v[i] : &tt.v[j];
		ret = push_name(r, e->name, e->name_len, &saved);
		if (ret < 0)
			break;
		bool is_dir = e->type == SB_FT_DIR;
		if (protected(r, is_dir)) {
			/* excluded: never touched */
		} else if (c < 0) {
			ret = remove_entry(r, dfd, ct.v[i].name);
		} else if (c > 0) {
			/* Something unknown may stand there (a crash, a race): clear it. */
			struct stat st;
			if (fstatat(dfd, tt.v[j].name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    (S_ISDIR(st.st_mode) || tt.v[j].type == SB_FT_DIR))
				ret = remove_entry(r, dfd, tt.v[j].name);
			if (ret >= 0)
				ret = write_entry(r, dfd, &tt.v[j]);
		} else {
			ret = update_entry(r, dfd, &ct.v[i], &tt.v[j]);
		}
		pop(r, saved);
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	sb_tree_release(&ct);
	sb_tree_release(&tt);
	return ret;
}

int sb_restore_tree(sb_store *s, int root_fd, const sb_id *cur, const sb_id *target,
		    const sb_ignore *protect, sb_restore_stats *ret_stats, sb_error *err)
{
	restorer r = {.store = s, .protect = protect, .err = err};
	int ret = sb_id_eq(cur, target) ? 0 : restore_dir(&r, root_fd, cur, target);
	sb_buf_release(&r.path);
	if (ret_stats)
		*ret_stats = r.st;
	return ret;
}

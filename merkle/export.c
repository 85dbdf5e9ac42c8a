/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "buf.h"
#include "content.h"
#include "export.h"
#include "fileio.h"

static atomic_uint tmp_counter;

static const char *display(const sb_tree_entry *e, const char *path, char *buf, size_t size)
{
	return path ? sb_quote(buf, size, path, strlen(path))
		    : sb_quote(buf, size, e->name, e->name_len);
}

/* Sets mode then mtime on an open fd (atime left as it is). */
static int finish_fd(int fd, const sb_tree_entry *e)
{
	struct timespec t[2] = {{.tv_nsec = UTIME_OMIT}, sb_timespec_from_ns(e->mtime_ns)};
	if (fchmod(fd, (mode_t)e->mode) < 0)
		return -errno;
	if (futimens(fd, t) < 0)
		return -errno;
	return 0;
}

int sb_export_dir_finish(int fd, const sb_tree_entry *e, const char *path, sb_error *err)
{
	int r = finish_fd(fd, e);
	if (r < 0) {
		char q[256];
		return sb_error_errno(err, -r, "set mode and mtime of '%s'",
				      display(e, path, q, sizeof(q)));
	}
	return 0;
}

static void tmp_name(char *buf, size_t size)
{
	snprintf(buf, size, ".sb-tmp-%ld-%u", (long)getpid(), atomic_fetch_add(&tmp_counter, 1));
}

sb_export_expect sb_export_expect_entry(const sb_tree_entry *e)
{
	if (!e)
		return (sb_export_expect){.present = false};
	return (sb_export_expect){
	    .present = true, .type = e->type, .size = e->size, .mtime_ns = e->mtime_ns};
}

/* Whether st (an lstat) is the entry x describes. */
static bool as_expected(const struct stat *st, const sb_export_expect *x)
{
	sb_ftype t = S_ISREG(st->st_mode)    ? SB_FT_REG
		     : S_ISLNK(st->st_mode)  ? SB_FT_SYMLINK
		     : S_ISFIFO(st->st_mode) ? SB_FT_FIFO
					     : SB_FT_NONE;
	if (!x->present || t == SB_FT_NONE || t != x->type ||
	    sb_ns_from_timespec(&st->st_mtim) != x->mtime_ns)
		return false;
	return t == SB_FT_FIFO || (uint64_t)st->st_size == x->size;
}

/* verb: what was not done to it ("overwritten", "removed"). */
static int changed_since_scan(const char *tmp, bool kept_aside, const char *verb, sb_error *err)
{
	if (kept_aside)
		return sb_error_set(err, ESTALE,
				    "is not what the scan recorded (created or changed since), and "
				    "could not be given its name back: it is now at '%s' beside it",
				    tmp);
	return sb_error_set(err, ESTALE,
			    "is not what the scan recorded (created or changed since): left as it "
			    "is, not %s; run the command again to take it into account",
			    verb);
}

/*
 * Takes the non-directory at name out of the way when it is what expect
 * describes: renamed to a temp name, checked there and unlinked, or given
 * its name back and -ESTALE returned (err says it was not verb'ed). -ENOENT
 * when nothing is there and -EISDIR for a directory (err untouched).
 */
static int remove_checked(int dir_fd, const char *name, const sb_export_expect *expect,
			  const char *verb, sb_error *err)
{
	struct stat st;
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -ENOENT : sb_error_errno(err, errno, "stat");
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!as_expected(&st, expect))
		return changed_since_scan(NULL, false, verb, err);
	char tmp[64];
	int r;
	do {
		tmp_name(tmp, sizeof(tmp));
		r = sb_rename_noreplace(dir_fd, name, dir_fd, tmp);
	} while (r == -EEXIST);
	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0)
		return sb_error_errno(err, -r, "remove");
	/* Under the temp name it is ours alone: what is checked is what goes. */
	int sr = fstatat(dir_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (sr == -ENOENT)
		return 0;
	if (sr == 0 && !S_ISDIR(st.st_mode) && as_expected(&st, expect))
		return unlinkat(dir_fd, tmp, 0) < 0 && errno != ENOENT
			   ? sb_error_errno(err, errno, "remove")
			   : 0;
	bool kept_aside = sb_rename_noreplace(dir_fd, tmp, dir_fd, name) < 0;
	if (!kept_aside && sr == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	return changed_since_scan(tmp, kept_aside, verb, err);
}

int sb_export_remove(int dir_fd, const char *name, const sb_export_expect *expect, sb_error *err)
{
	return remove_checked(dir_fd, name, expect, "removed", err);
}

/*
 * Swaps the finished temp with what holds the name, checks what came out
 * (x, may be NULL), then removes that under the temp name. The name holds a
 * whole entry, old or new, at every moment, as with a rename over it; but
 * ext4 starts writing the new file's data out on a rename that replaces a
 * file (auto_da_alloc), inside the rename, which made that rename the
 * dearest step of a restore and kept writers in one directory from
 * overlapping. Replacing a directory is not ours to do (-EISDIR, as rename
 * says): one found there is never swapped out, and one that appears between
 * that look and the swap is swapped back at once, so a directory of the
 * user's never waits under a temp name. On failure the temp name holds our
 * entry, for the caller to remove, unless *kept_aside says the user's entry
 * is stuck there.
 */
static int exchange(int dir_fd, const char *tmp, const sb_tree_entry *e, const sb_export_expect *x,
		    bool *kept_aside)
{
	struct stat st;
	if (fstatat(dir_fd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	if (renameat2(dir_fd, tmp, dir_fd, e->name, RENAME_EXCHANGE) < 0)
		return -errno;
	int r = 0;
	if (fstatat(dir_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = errno == ENOENT ? 0 : -errno; /* gone meanwhile: nothing left to lose */
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (x && !as_expected(&st, x))
		r = -ESTALE;
	else if (unlinkat(dir_fd, tmp, 0) < 0 && errno != ENOENT)
		r = -errno;
	if (r < 0 && renameat2(dir_fd, tmp, dir_fd, e->name, RENAME_EXCHANGE) < 0)
		*kept_aside = true;
	return r;
}

/*
 * Moves the finished temp into place (see sb_export_expect); removes it on
 * failure, unless the user's entry is what the temp name holds then.
 */
static int place(int dir_fd, const char *tmp, const sb_tree_entry *e, const sb_export_expect *x,
		 sb_export_flags flags, sb_error *err)
{
	int r;
	bool kept_aside = false;
	if (!(flags & SB_EXPORT_REPLACE) || (x && !x->present)) {
		r = sb_rename_noreplace(dir_fd, tmp, dir_fd, e->name);
		if (r == -EEXIST && x)
			r = -ESTALE;
	} else {
		r = exchange(dir_fd, tmp, e, x, &kept_aside);
		bool empty = r == -ENOENT; /* nothing stood at the name */
		if ((r == -EINVAL || r == -ENOSYS) && x) {
			/* no RENAME_EXCHANGE: the old entry goes as a removal does, then ours comes */
			r = remove_checked(dir_fd, e->name, x, "overwritten", err);
			if (r < 0 && r != -ENOENT && r != -EISDIR) {
				/* the temp is ours, never moved; err names theirs */
				(void)unlinkat(dir_fd, tmp, 0);
				return r;
			}
			empty = r != -EISDIR;
		}
		if (empty && x) {
			r = sb_rename_noreplace(dir_fd, tmp, dir_fd, e->name);
			if (r == -EEXIST)
				r = -ESTALE;
		} else if (r == -ENOENT || r == -EINVAL || r == -ENOSYS) {
			/* nothing expected: whatever stands there is replaced */
			r = renameat(dir_fd, tmp, dir_fd, e->name) < 0 ? -errno : 0;
		}
	}
	if (r < 0 && !kept_aside) {
		/*
		 * The temp name should hold our entry again; one saved into the
		 * name between a swap and its swap back would be here instead,
		 * and is never ours to delete.
		 */
		struct stat st;
		sb_export_expect ours = sb_export_expect_entry(e);
		if (fstatat(dir_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && !as_expected(&st, &ours))
			kept_aside = true;
		else
			(void)unlinkat(dir_fd, tmp, 0);
	}
	if (r == -ESTALE || kept_aside)
		return changed_since_scan(tmp, kept_aside, "overwritten", err);
	return r < 0 ? sb_error_errno(err, -r, "rename into place") : 0;
}

static int export_file(sb_store *s, int dir_fd, const sb_tree_entry *e, const sb_export_expect *x,
		       sb_export_flags flags, char *tmp, size_t tmp_size, sb_error *err)
{
	int fd;
	for (;;) {
		tmp_name(tmp, tmp_size);
		fd =
		    openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0)
		return sb_error_errno(err, errno, "create a temporary file");
	sb_content_write_flags wf = (flags & SB_EXPORT_NO_SPARSE) ? 0 : SB_CONTENT_SPARSE;
	int r = sb_content_write_fd(s, &e->id, e->size, fd, wf, err);
	if (r >= 0) {
		r = finish_fd(fd, e);
		if (r < 0)
			sb_error_errno(err, -r, "set mode and mtime");
	}
	if (close(fd) < 0 && r >= 0)
		r = sb_error_errno(err, errno, "close");
	if (r < 0) {
		(void)unlinkat(dir_fd, tmp, 0);
		return r;
	}
	return place(dir_fd, tmp, e, x, flags, err);
}

static int export_symlink(sb_store *s, int dir_fd, const sb_tree_entry *e,
			  const sb_export_expect *x, sb_export_flags flags, char *tmp,
			  size_t tmp_size, sb_error *err)
{
	_cleanup_free_ char *target = NULL;
	size_t len = 0;
	sb_obj_type type;
	int r = sb_store_get(s, &e->id, SB_OBJ_BLOB, &type, (void **)&target, &len, err);
	if (r < 0)
		return r;
	if (len != e->size || len == 0 || memchr(target, 0, len)) {
		char hex[SB_HEX_LEN + 1];
		return sb_error_set(err, EBADMSG, "symlink target object %s does not fit the entry",
				    sb_id_to_hex(&e->id, hex));
	}
	_cleanup_free_ char *z = malloc(len + 1);
	if (!z)
		return -ENOMEM;
	memcpy(z, target, len);
	z[len] = 0;
	for (;;) {
		tmp_name(tmp, tmp_size);
		r = symlinkat(z, dir_fd, tmp);
		if (r == 0 || errno != EEXIST)
			break;
	}
	if (r < 0)
		return sb_error_errno(err, errno, "create a symlink");
	struct timespec t[2] = {{.tv_nsec = UTIME_OMIT}, sb_timespec_from_ns(e->mtime_ns)};
	if (utimensat(dir_fd, tmp, t, AT_SYMLINK_NOFOLLOW) < 0) {
		r = sb_error_errno(err, errno, "set symlink mtime");
		(void)unlinkat(dir_fd, tmp, 0);
		return r;
	}
	return place(dir_fd, tmp, e, x, flags, err);
}

static int export_fifo(int dir_fd, const sb_tree_entry *e, const sb_export_expect *x,
		       sb_export_flags flags, char *tmp, size_t tmp_size, sb_error *err)
{
	int r;
	for (;;) {
		tmp_name(tmp, tmp_size);
		r = mkfifoat(dir_fd, tmp, 0600);
		if (r == 0 || errno != EEXIST)
			break;
	}
	if (r < 0)
		return sb_error_errno(err, errno, "create a fifo");
	/* a reader open with O_NONBLOCK does not wait for a writer */
	int fd = openat(dir_fd, tmp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		r = sb_error_errno(err, errno, "open the new fifo");
	else if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		r = sb_error_set(err, EIO, "the new fifo was replaced");
	else if ((r = finish_fd(fd, e)) < 0)
		sb_error_errno(err, -r, "set mode and mtime");
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		(void)unlinkat(dir_fd, tmp, 0);
		return r;
	}
	return place(dir_fd, tmp, e, x, flags, err);
}

static int export_dir(int dir_fd, const sb_tree_entry *e, sb_export_flags flags, int *ret_fd,
		      sb_error *err)
{
	bool made = mkdirat(dir_fd, e->name, 0700) == 0;
	if (!made && !(errno == EEXIST && (flags & SB_EXPORT_REPLACE)))
		return sb_error_errno(err, errno, "create directory");
	int fd = openat(dir_fd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sb_error_errno(err, errno, "open directory");
	/* whatever the umask or the old mode, we must be able to fill it */
	if (fchmod(fd, 0700) < 0) {
		int r = sb_error_errno(err, errno, "make directory writable");
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int sb_export_entry(sb_store *s, int dir_fd, const sb_tree_entry *e, const sb_export_expect *expect,
		    const char *path, sb_export_flags flags, int *ret_dir_fd,
		    sb_export_stats *stats, sb_error *err)
{
	char tmp[64], q[256];
	int r;
	switch (e->type) {
	case SB_FT_REG:
		r = export_file(s, dir_fd, e, expect, flags, tmp, sizeof(tmp), err);
		if (r >= 0 && stats) {
			stats->files++;
			stats->bytes += e->size;
		}
		break;
	case SB_FT_SYMLINK:
		r = export_symlink(s, dir_fd, e, expect, flags, tmp, sizeof(tmp), err);
		if (r >= 0 && stats)
			stats->symlinks++;
		break;
	case SB_FT_FIFO:
		r = export_fifo(dir_fd, e, expect, flags, tmp, sizeof(tmp), err);
		if (r >= 0 && stats)
			stats->fifos++;
		break;
	case SB_FT_DIR:
		r = export_dir(dir_fd, e, flags, ret_dir_fd, err);
		if (r >= 0 && stats)
			stats->dirs++;
		break;
	default:
		r = sb_error_set(err, EBADMSG, "unknown entry type %d", (int)e->type);
		break;
	}
	if (r < 0)
		return sb_error_prefix(err, "'%s'", display(e, path, q, sizeof(q)));
	return 0;
}

/* -ENOTEMPTY unless the directory at fd holds nothing. */
static int check_empty(int dir_fd, sb_error *err)
{
	_cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sb_error_errno(err, errno, "open the export directory");
	char buf[4096];
	for (;;) {
		ssize_t n = getdents64(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sb_error_errno(err, errno, "read the export directory");
		if (n == 0)
			return 0;
		for (ssize_t pos = 0; pos < n;) {
			struct dirent64 *de = (struct dirent64 *)(buf + pos);
			pos += de->d_reclen;
			const char *nm = de->d_name;
			if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
				continue;
			char self[64], where[PATH_MAX], q[256];
			snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
			ssize_t l = readlink(self, where, sizeof(where) - 1);
			if (l < 0)
				l = snprintf(where, sizeof(where), "(the export directory)");
			where[l] = 0;
			char qw[512];
			return sb_error_set(err, ENOTEMPTY,
					    "'%s' is not empty (it holds '%s'): export needs a new "
					    "or empty directory",
					    sb_quote(qw, sizeof(qw), where, (size_t)l),
					    sb_quote(q, sizeof(q), nm, strlen(nm)));
		}
	}
}

typedef struct xframe {
	sb_tree tree;
	size_t next;
	int fd; /* -1 while closed to save fds */
	dev_t dev;
	ino_t ino;
	sb_tree_entry self; /* the entry naming this directory (name not owned) */
	size_t path_len;
} xframe;

typedef struct exporter {
	sb_store *s;
	sb_export_flags flags;
	sb_export_stats *stats;
	sb_error *err;
	xframe *st;
	size_t depth, cap;
	size_t open, budget;
	sb_buf path;
} exporter;

static int xpush(exporter *x, int fd, const sb_id *tree_id, const sb_tree_entry *self)
{
	xframe *v = sb_grow(x->st, &x->cap, x->depth, sizeof(*v), 64);
	if (!v) {
		close(fd);
		return -ENOMEM;
	}
	x->st = v;
	xframe *f = &x->st[x->depth];
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->path_len = x->path.len;
	if (self)
		f->self = *self;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return sb_error_errno(x->err, errno, "stat a new directory");
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	x->depth++;
	x->open++;
	int r = sb_tree_load(x->s, tree_id, &f->tree, x->err);
	if (r < 0 && x->path.len) {
		char q[256];
		sb_error_prefix(x->err, "'%s'", sb_quote(q, sizeof(q), x->path.data, x->path.len));
	}
	return r;
}

static void xrelease(exporter *x, xframe *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		x->open--;
	}
	f->fd = -1;
	sb_tree_release(&f->tree);
}

static int xpop(exporter *x)
{
	xframe *f = &x->st[x->depth - 1];
	char q[256];
	int r = 0;
	if (x->depth >= 2 && x->st[x->depth - 2].fd < 0) {
		/* before finishing f: its final mode may forbid the lookup of ".." */
		xframe *p = &x->st[x->depth - 2];
		int fd = openat(f->fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			r = sb_error_errno(x->err, errno, "reopen parent of '%s'",
					   sb_quote(q, sizeof(q), x->path.data, f->path_len));
		else if (st.st_dev != p->dev || st.st_ino != p->ino)
			r = sb_error_set(x->err, ESTALE, "directory '%s' moved during the export",
					 sb_quote(q, sizeof(q), x->path.data, p->path_len));
		if (r < 0) {
			if (fd >= 0)
				close(fd);
		} else {
			p->fd = fd;
			x->open++;
		}
	}
	if (r >= 0 && x->depth >= 2) {
		sb_buf_truncate(&x->path, f->path_len);
		r = sb_export_dir_finish(f->fd, &f->self, x->path.data, x->err);
	}
	xrelease(x, f);
	x->depth--;
	return r;
}

static int xvisit(exporter *x, xframe *f, const sb_tree_entry *e)
{
	sb_buf_truncate(&x->path, f->path_len);
	int r = 0;
	if (x->path.len)
		r = sb_buf_putc(&x->path, '/');
	if (r >= 0)
		r = sb_buf_append(&x->path, e->name, e->name_len);
	if (r < 0)
		return r;
	if (e->type == SB_FT_DIR) {
		for (size_t i = 0; i + 1 < x->depth && x->open >= x->budget; i++)
			if (x->st[i].fd >= 0) {
				close(x->st[i].fd);
				x->st[i].fd = -1;
				x->open--;
			}
	}
	int child = -1;
	r = sb_export_entry(x->s, f->fd, e, NULL, x->path.data, x->flags, &child, x->stats, x->err);
	if (r < 0 || e->type != SB_FT_DIR)
		return r;
	return xpush(x, child, &e->id, e); /* f is stale from here on */
}

int sb_export_tree(sb_store *s, const sb_id *root_id, int dir_fd, sb_export_flags flags,
		   sb_export_stats *ret_stats, sb_error *err)
{
	int r = check_empty(dir_fd, err);
	if (r < 0)
		return r;
	sb_store_stats before, after;
	sb_store_get_stats(s, &before);
	sb_export_stats stats = {0};
	exporter x = {.s = s, .flags = flags & ~SB_EXPORT_REPLACE, .stats = &stats, .err = err};
	struct rlimit rl;
	rlim_t soft = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		soft = rl.rlim_cur;
	x.budget = soft / 4 > 256 ? 256 : soft / 4 < 4 ? 4 : soft / 4;

	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sb_error_errno(err, errno, "open the export directory");
	r = xpush(&x, fd, root_id, NULL);
	while (r >= 0 && x.depth > 0) {
		xframe *f = &x.st[x.depth - 1];
		if (f->next == f->tree.n)
			r = xpop(&x);
		else
			r = xvisit(&x, f, &f->tree.v[f->next++]);
	}
	while (x.depth > 0)
		xrelease(&x, &x.st[--x.depth]);
	free(x.st);
	sb_buf_release(&x.path);
	if (r < 0)
		return r;
	sb_store_get_stats(s, &after);
	stats.objects_read = after.objects_read - before.objects_read;
	if (ret_stats)
		*ret_stats = stats;
	return 0;
}

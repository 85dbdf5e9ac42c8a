/* SPDX-License-Identifier: MIT */
/*
 * The restore walk: current and target trees side by side, on the calling
 * thread. Writes of files, symlinks and fifos go to the writers
 * (restore-write.c); everything the walk touches is marked for the check
 * (restore-check.c).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "export.h"
#include "fileio.h"
#include "restore-internal.h"
#include "restore.h"

typedef struct restorer {
	sb_store *store;
	dev_t dev; /* the workspace's filesystem: nothing on another one is touched */
	unsigned depth;
	const sb_ignore *protect;
	sb_restore_stats st;
	sb_export_stats ex;
	sb_buf path;
	sb_restore_touched *touched; /* NULL: not recorded */
	size_t dir_mark;	     /* index of the current directory's mark in touched */
	sb_restore__writers *w;
	sb_error *err;
} restorer;

/* ---- what was touched ---- */

/* Marks the current path; *ret_idx (may be NULL) is where the mark is. */
static int mark(restorer *r, unsigned kinds, size_t *ret_idx)
{
	sb_restore_touched *t = r->touched;
	if (!t)
		return 0;
	sb_restore__mark *v = sb_grow(t->v, &t->cap, t->n, sizeof(*v), 64);
	if (!v)
		return -ENOMEM;
	t->v = v;
	char *p = malloc(r->path.len + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, r->path.len ? r->path.data : "", r->path.len);
	p[r->path.len] = 0;
	if (ret_idx)
		*ret_idx = t->n;
	t->v[t->n++] = (sb_restore__mark){.path = p, .len = r->path.len, .kinds = kinds};
	return 0;
}

/* An entry of the current directory is about to change. */
static void changed(restorer *r)
{
	if (r->touched && r->dir_mark < r->touched->n)
		r->touched->v[r->dir_mark].kinds |= SB_RESTORE__CHANGED;
}

static int mark_cmp(const void *a, const void *b)
{
	const sb_restore__mark *x = a, *y = b;
	size_t n = MIN(x->len, y->len);
	int c = n ? memcmp(x->path, y->path, n) : 0; /* the root's path may be NULL */
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

void sb_restore__touched_seal(sb_restore_touched *t)
{
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), mark_cmp);
	size_t k = 0;
	for (size_t i = 0; i < t->n; i++) {
		sb_restore__mark *m = &t->v[i];
		if (k && mark_cmp(&t->v[k - 1], m) == 0) {
			sb_restore__mark *keep = &t->v[k - 1];
			keep->kinds |= m->kinds;
			if (m->kinds & SB_RESTORE__DIR) {
				/* the walked one carries the tree */
				sb_tree_release(&keep->tree);
				keep->tree = m->tree;
				sb_tree_init(&m->tree);
			}
			sb_tree_release(&m->tree);
			free(m->path);
		} else {
			t->v[k++] = *m;
		}
	}
	t->n = k;
}

const sb_restore__mark *sb_restore__touched_find(const sb_restore_touched *t, const char *path,
						 size_t len)
{
	sb_restore__mark key = {.path = (char *)path, .len = len};
	return t && t->n ? bsearch(&key, t->v, t->n, sizeof(*t->v), mark_cmp) : NULL;
}

void sb_restore_touched_free(sb_restore_touched *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].path);
		sb_tree_release(&t->v[i].tree);
	}
	free(t->v);
	free(t);
}

/* ---- the walk ---- */

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

static int mount_point(restorer *r)
{
	return sb_error_set(r->err, EXDEV,
			    "'%s' is a mount point (another filesystem): snapbox never "
			    "writes into or removes another filesystem; unmount it first",
			    where(r));
}

/*
 * Opens a directory to change it: never through a symlink, never onto another
 * filesystem (a mount point inside the workspace is not ours to fill or
 * empty: the scan leaves it out, so no snapshot knows its contents). It is
 * made writable by us while we change it (a read-only directory must still be
 * filled or emptied); sb_export_dir_finish sets the final mode.
 */
static int open_dir(restorer *r, int dfd, const char *name, int *ret_fd)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (st.st_dev != r->dev) {
		close(fd);
		return mount_point(r);
	}
	if ((st.st_mode & 0700) != 0700)
		(void)fchmod(fd, (st.st_mode & 07777) | 0700);
	*ret_fd = fd;
	return 0;
}

static int remove_entry(restorer *r, int dfd, const char *name, const sb_tree_entry *known);

/*
 * Removes the directory `name`, whose contents the tree `known` records:
 * only those entries are removed. Anything else found there (a socket, a
 * file created since the scan) and protected paths stay, and so then does the
 * directory. Returns 1 when the directory was kept.
 */
static int remove_dir(restorer *r, int dfd, const char *name, const sb_id *known)
{
	int fd;
	int e = open_dir(r, dfd, name, &fd);
	if (e == -ENOENT)
		return 0;
	if (e < 0)
		return e == -EXDEV ? e : sb_error_errno(r->err, -e, "open '%s'", where(r));
	sb_tree t = SB_TREE_INIT;
	int ret = known ? sb_tree_load(r->store, known, &t, r->err) : 0;
	for (size_t i = 0; ret >= 0 && i < t.n; i++) {
		size_t saved;
		ret = push_name(r, t.v[i].name, t.v[i].name_len, &saved);
		if (ret >= 0 && !protected(r, t.v[i].type == SB_FT_DIR))
			ret = remove_entry(r, fd, t.v[i].name, &t.v[i]);
		pop(r, saved);
	}
	sb_tree_release(&t);
	close(fd);
	if (ret < 0)
		return ret;
	if (unlinkat(dfd, name, AT_REMOVEDIR) == 0) {
		r->st.removed++;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	if (errno == ENOTEMPTY || errno == EEXIST)
		return 1;
	return sb_error_errno(r->err, errno, "remove directory '%s'", where(r));
}

/*
 * known: what the scan recorded at this name (NULL: nothing). Anything else
 * found there — a file created or edited since — is never removed
 * (sb_export_remove): the restore stops with -ESTALE naming it.
 */
static int remove_entry(restorer *r, int dfd, const char *name, const sb_tree_entry *known)
{
	sb_export_expect x = sb_export_expect_entry(known);
	int ret = sb_export_remove(dfd, name, &x, r->err);
	if (ret == 0)
		r->st.removed++;
	if (ret == 0 || ret == -ENOENT)
		return 0;
	if (ret != -EISDIR)
		return sb_error_prefix(r->err, "'%s'", where(r));
	int kept = remove_dir(r, dfd, name, known && known->type == SB_FT_DIR ? &known->id : NULL);
	if (kept > 0)
		r->st.kept++;
	return kept < 0 ? kept : 0;
}

/*
 * Clears a name for a new entry: removes what stands there, or fails naming
 * it when that is a directory holding entries snapbox never recorded.
 */
static int clear_name(restorer *r, int dfd, const char *name, const sb_tree_entry *known)
{
	changed(r);
	int ret = remove_entry(r, dfd, name, known);
	if (ret < 0)
		return ret;
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return sb_error_set(
		    r->err, ENOTEMPTY,
		    "'%s' holds entries no snapshot recorded (created since the scan, "
		    "or excluded); snapbox does not delete them: move them away and "
		    "run again",
		    where(r));
	return 0;
}

static int restore_dir(restorer *r, sb_restore__dir *d, const sb_id *cur, const sb_id *tgt);
static int restore_dir_at(restorer *r, sb_restore__dir *d, const sb_id *cur, const sb_id *tgt);

/*
 * Writes e (and for a directory, its whole subtree) over had, what the scan
 * recorded at its name (NULL: nothing; sb_export_expect).
 */
static int write_entry(restorer *r, sb_restore__dir *d, const sb_tree_entry *e,
		       const sb_tree_entry *had)
{
	changed(r);
	if (e->type != SB_FT_DIR) {
		int ret = mark(r, SB_RESTORE__WRITTEN, NULL);
		return ret < 0 ? ret : sb_restore__write(r->w, d, e, had, where(r), r->err);
	}
	int ret = mark(r, SB_RESTORE__WHOLE, NULL);
	int cfd = -1;
	if (ret >= 0)
		ret = sb_export_entry(r->store, d->fd, e, NULL, where(r), SB_EXPORT_REPLACE, &cfd,
				      &r->ex, r->err);
	if (ret < 0)
		return ret;
	r->st.written++;
	struct stat st;
	if (fstat(cfd, &st) == 0 && st.st_dev != r->dev) {
		close(cfd);
		return mount_point(r);
	}
	sb_restore__dir *cd = sb_restore__dir_new(cfd, true, e, where(r));
	if (!cd) {
		close(cfd);
		return -ENOMEM;
	}
	ret = sb_export_tree(r->store, &e->id, cfd, 0, NULL, r->err);
	if (ret == -ENOTEMPTY) {
		/* A directory was already there (a race with the scan): merge into it. */
		ret = restore_dir(r, cd, NULL, &e->id);
	}
	return sb_restore__dir_done(r->w, cd, ret, r->err);
}

static int set_attrs(restorer *r, int dfd, const sb_tree_entry *e)
{
	changed(r);
	int ret = mark(r, SB_RESTORE__ATTRS, NULL);
	if (ret < 0)
		return ret;
	if (e->type != SB_FT_SYMLINK && fchmodat(dfd, e->name, e->mode, AT_SYMLINK_NOFOLLOW) < 0)
		return sb_error_errno(r->err, errno, "chmod '%s'", where(r));
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, sb_timespec_from_ns(e->mtime_ns)};
	if (utimensat(dfd, e->name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return sb_error_errno(r->err, errno, "set mtime of '%s'", where(r));
	r->st.attrs++;
	return 0;
}

/* Both sides have a directory here. */
static int update_dir(restorer *r, sb_restore__dir *d, const sb_tree_entry *c,
		      const sb_tree_entry *t)
{
	if (sb_id_eq(&c->id, &t->id) && c->mode == t->mode && c->mtime_ns == t->mtime_ns)
		return 0;
	int cfd;
	int e = open_dir(r, d->fd, t->name, &cfd);
	if (e == -ENOTDIR || e == -ELOOP || e == -ENOENT) {
		/* Not the directory the scan recorded: clear_name removes nothing
		 * unrecorded, so an entry standing here stops the restore, named;
		 * an empty name is filled. */
		int ret = clear_name(r, d->fd, t->name, NULL);
		return ret < 0 ? ret : write_entry(r, d, t, NULL);
	}
	if (e < 0)
		return e == -EXDEV ? e : sb_error_errno(r->err, -e, "open '%s'", where(r));
	sb_restore__dir *cd = sb_restore__dir_new(cfd, true, t, where(r));
	if (!cd) {
		close(cfd);
		return -ENOMEM;
	}
	int ret = 0;
	if (!sb_id_eq(&c->id, &t->id))
		ret = restore_dir(r, cd, &c->id, &t->id);
	else
		ret = mark(r, SB_RESTORE__ATTRS, NULL); /* only its mode and mtime are set */
	return sb_restore__dir_done(r->w, cd, ret, r->err);
}

static int update_entry(restorer *r, sb_restore__dir *d, const sb_tree_entry *c,
			const sb_tree_entry *t)
{
	bool cd = c->type == SB_FT_DIR, td = t->type == SB_FT_DIR;
	if (cd && td)
		return update_dir(r, d, c, t);
	if (cd || c->type != t->type) {
		int ret = clear_name(r, d->fd, t->name, c);
		return ret < 0 ? ret : write_entry(r, d, t, NULL);
	}
	if (!sb_id_eq(&c->id, &t->id) || c->size != t->size)
		return write_entry(r, d, t, c); /* swapped with the old one */
	if (c->mode != t->mode || c->mtime_ns != t->mtime_ns)
		return set_attrs(r, d->fd, t);
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
static int restore_dir(restorer *r, sb_restore__dir *d, const sb_id *cur, const sb_id *tgt)
{
	if (r->depth >= SB_TREE_MAX_DEPTH)
		return sb_error_set(r->err, ELOOP, "'%.200s...' nests deeper than %d levels",
				    where(r), SB_TREE_MAX_DEPTH);
	r->depth++;
	size_t parent_mark = r->dir_mark;
	int ret = mark(r, SB_RESTORE__DIR, &r->dir_mark);
	if (ret >= 0)
		ret = restore_dir_at(r, d, cur, tgt);
	r->dir_mark = parent_mark;
	r->depth--;
	return ret;
}

static int restore_dir_at(restorer *r, sb_restore__dir *d, const sb_id *cur, const sb_id *tgt)
{
	int dfd = d->fd;
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
			changed(r);
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
			/* excluded: never touched; but the check must see it as it is */
			if (c >= 0) {
				changed(r);
				ret = mark(r, SB_RESTORE__SKIPPED, NULL);
			}
		} else if (c < 0) {
			changed(r);
			ret = remove_entry(r, dfd, ct.v[i].name, &ct.v[i]);
		} else if (c > 0) {
			/*
			 * Something the scan did not see may stand there (a race):
			 * a directory is merged into (write_entry), never emptied;
			 * anything else is left alone and named (-ESTALE).
			 */
			struct stat st;
			if (fstatat(dfd, tt.v[j].name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISDIR(st.st_mode) != (tt.v[j].type == SB_FT_DIR))
				ret = clear_name(r, dfd, tt.v[j].name, NULL);
			if (ret >= 0)
				ret = write_entry(r, d, &tt.v[j], NULL);
		} else {
			ret = update_entry(r, d, &ct.v[i], &tt.v[j]);
		}
		pop(r, saved);
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	if (r->touched && r->dir_mark < r->touched->n) {
		/* The check reads this directory against the same tree: keep it. */
		sb_restore__mark *m = &r->touched->v[r->dir_mark];
		sb_tree_release(&m->tree);
		m->tree = tt;
		sb_tree_init(&tt);
	}
	sb_tree_release(&ct);
	sb_tree_release(&tt);
	return ret;
}

int sb_restore_run(sb_store *s, int root_fd, const sb_id *cur, const sb_id *target,
		   const sb_restore_opts *opts, sb_restore_touched **ret_touched,
		   sb_restore_stats *ret_stats, sb_error *err)
{
	static const sb_restore_opts none;
	if (!opts)
		opts = &none;
	restorer r = {.store = s, .protect = opts->protect, .dir_mark = SIZE_MAX, .err = err};
	struct stat st;
	if (fstat(root_fd, &st) < 0)
		return sb_error_errno(err, errno, "stat the workspace");
	r.dev = st.st_dev;
	if (ret_touched) {
		r.touched = calloc(1, sizeof(*r.touched));
		if (!r.touched)
			return -ENOMEM;
	}
	int ret = sb_restore__writers_new(s, opts->threads, &r.w, err);
	if (ret >= 0 && !sb_id_eq(cur, target)) {
		sb_restore__dir *root = sb_restore__dir_new(root_fd, false, NULL, ".");
		if (!root)
			ret = -ENOMEM;
		else
			ret = sb_restore__dir_done(r.w, root, restore_dir(&r, root, cur, target),
						   err);
	}
	if (r.w) {
		uint64_t written = 0;
		ret = sb_restore__writers_free(r.w, ret, &written, err);
		r.st.written += written;
	}
	sb_buf_release(&r.path);
	if (r.touched && ret >= 0) {
		sb_restore__touched_seal(r.touched);
		*ret_touched = r.touched;
	} else {
		sb_restore_touched_free(r.touched);
	}
	if (ret_stats)
		*ret_stats = r.st;
	return ret;
}

int sb_restore_tree(sb_store *s, int root_fd, const sb_id *cur, const sb_id *target,
		    const sb_ignore *protect, sb_restore_stats *ret_stats, sb_error *err)
{
	sb_restore_opts o = {.protect = protect};
	return sb_restore_run(s, root_fd, cur, target, &o, NULL, ret_stats, err);
}

/* SPDX-License-Identifier: MIT */
/*
 * The check after a restore (restore.h says what it covers). It walks the
 * directories the restore walked, top-down, and builds each one's tree from
 * what the filesystem says now wherever the restore acted, and from the
 * target elsewhere; the trees are hashed bottom-up into a root id.
 *
 * Where it reads the filesystem it follows the scanner's rules for what a
 * tree holds (scan.h), so that there the root it computes is the one a full
 * re-scan would compute.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "dirnames.h"
#include "content.h"
#include "fileio.h"
#include "restore-internal.h"
#include "restore.h"

#define NAME_MAX_LEN 255 /* longer names are left out, as the scanner does */

typedef struct checker {
	sb_store *store;
	const sb_restore_touched *t;
	const sb_ignore *ign;
	sb_restore_rehashed *rehashed; /* NULL: not wanted */
	dev_t dev;
	unsigned depth;
	sb_buf path;
	sb_restore_check_stats st;
	sb_error *err;
	char q[512];
} checker;

static const char *qpath(checker *ck)
{
	return sb_quote(ck->q, sizeof(ck->q), ck->path.len ? ck->path.data : ".", ck->path.len);
}

static int push_name(checker *ck, const char *name, size_t len, size_t *ret_saved)
{
	*ret_saved = ck->path.len;
	if (ck->path.len && sb_buf_putc(&ck->path, '/') < 0)
		return -ENOMEM;
	return sb_buf_append(&ck->path, name, len);
}

/* A difference: the check stops at the first one, naming it. */
static int differs(checker *ck, const char *what)
{
	return sb_error_set(ck->err, ESTALE, "'%s' %s", qpath(ck), what);
}

static unsigned kinds_here(checker *ck)
{
	const sb_restore__mark *m = sb_restore__touched_find(ck->t, ck->path.data, ck->path.len);
	return m ? m->kinds : 0;
}

static bool dtype_is(unsigned char d_type, sb_ftype type)
{
	switch (type) {
	case SB_FT_REG:
		return d_type == DT_REG;
	case SB_FT_DIR:
		return d_type == DT_DIR;
	case SB_FT_SYMLINK:
		return d_type == DT_LNK;
	case SB_FT_FIFO:
		return d_type == DT_FIFO;
	default:
		return false;
	}
}

/* Re-hashes the file name (lstat'ed as *st) into e; notes it in ck->rehashed. */
static int hash_file(checker *ck, int dfd, const char *name, const struct stat *st,
		     sb_tree_entry *e)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
	_cleanup_close_ int fd = openat(dfd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name, flags);
	if (fd < 0 && (errno == ENOENT || errno == ELOOP || errno == ENXIO))
		return differs(ck, "was replaced or removed while being checked");
	if (fd < 0)
		return sb_error_errno(ck->err, errno, "open '%s'", qpath(ck));
	struct stat before, after;
	int64_t read_ns = sb_coarse_now_ns(); /* before anything is read (sb_restore_record) */
	if (fstat(fd, &before) < 0)
		return sb_error_errno(ck->err, errno, "stat '%s'", qpath(ck));
	if (!S_ISREG(before.st_mode) || before.st_ino != st->st_ino)
		return differs(ck, "was replaced while being checked");
	uint64_t n = 0;
	int r = sb_content_hash_fd(fd, &e->id, &n, ck->err);
	if (r < 0)
		return sb_error_prefix(ck->err, "'%s'", qpath(ck));
	if (fstat(fd, &after) < 0)
		return sb_error_errno(ck->err, errno, "stat '%s'", qpath(ck));
	if (n != (uint64_t)before.st_size || !sb_stat_unchanged(&before, &after))
		return differs(ck, "changed while being checked");
	ck->st.files_hashed++;
	ck->st.bytes_hashed += n;
	e->size = n;
	e->mode = (uint32_t)before.st_mode & 07777;
	e->mtime_ns = sb_ns_from_timespec(&before.st_mtim);
	if (ck->rehashed)
		return sb_restore__rehashed_add(ck->rehashed, ck->path.data, ck->path.len, &before,
						&e->id, read_ns);
	return 0;
}

static int read_symlink(checker *ck, int dfd, const char *name, sb_tree_entry *e)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(dfd, name, target, sizeof(target));
	if (n < 0 && (errno == ENOENT || errno == EINVAL))
		return differs(ck, "was replaced or removed while being checked");
	if (n < 0)
		return sb_error_errno(ck->err, errno, "readlink '%s'", qpath(ck));
	if (n == 0 || (size_t)n >= sizeof(target))
		return sb_error_set(ck->err, ENAMETOOLONG,
				    "symlink '%s': target length out of range", qpath(ck));
	e->size = (uint64_t)n;
	sb_store_hash(SB_OBJ_BLOB, target, (size_t)n, &e->id);
	return 0;
}

static int check_dir(checker *ck, int fd, const sb_id *want_id, bool whole, sb_id *ret_id);

/* Adds a copy of e (its name included) to got. */
static int add(sb_tree *got, const sb_tree_entry *e)
{
	sb_tree_entry *slot = sb_tree_add(got, e->name, e->name_len);
	if (!slot)
		return -ENOMEM;
	char *name = slot->name;
	*slot = *e;
	slot->name = name;
	return 0;
}

/*
 * Reads the entry `name` from the filesystem, as a scan would record it, into
 * got (nothing when a scan would leave it out). x: what the target has there
 * (may be NULL). The restore did not touch it when !whole && !kinds: then x's
 * id stands for its content (the pre-restore scan read it) when the type
 * agrees.
 */
static int observe(checker *ck, int dfd, const char *name, size_t nlen, const sb_tree_entry *x,
		   unsigned kinds, bool whole, sb_tree *got)
{
	if (nlen > NAME_MAX_LEN)
		return 0;
	struct stat st;
	_cleanup_close_ int dir_fd = -1;
	if (!whole && (kinds & SB_RESTORE__DIR)) {
		/* A directory the restore walked: open it straight away. */
		dir_fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir_fd >= 0 && fstat(dir_fd, &st) < 0)
			return sb_error_errno(ck->err, errno, "stat '%s'", qpath(ck));
	}
	if (dir_fd < 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0; /* absent is what the tree will say */
		return sb_error_errno(ck->err, errno, "stat '%s'", qpath(ck));
	}
	ck->st.entries++;
	if (sb_ignore_match(ck->ign, ck->path.data, ck->path.len, S_ISDIR(st.st_mode)))
		return 0;
	sb_tree_entry e = {
	    .name = (char *)name,
	    .name_len = nlen,
	    .mode = (uint32_t)st.st_mode & 07777,
	    .size = (uint64_t)st.st_size,
	    .mtime_ns = sb_ns_from_timespec(&st.st_mtim),
	};
	bool untouched = !whole && !kinds && x;
	int r = 0;
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		e.type = SB_FT_REG;
		if (untouched && x->type == e.type)
			e.id = x->id;
		else
			r = hash_file(ck, dfd, name, &st, &e);
		break;
	case S_IFLNK:
		e.type = SB_FT_SYMLINK;
		if (untouched && x->type == e.type)
			e.id = x->id;
		else
			r = read_symlink(ck, dfd, name, &e);
		break;
	case S_IFIFO:
		e.type = SB_FT_FIFO;
		e.size = 0;
		break;
	case S_IFDIR:
		if (st.st_dev != ck->dev)
			return 0; /* a mount point: never part of a tree */
		e.type = SB_FT_DIR;
		e.size = 0;
		bool known = x && x->type == SB_FT_DIR;
		if (known && !whole &&
		    !(kinds & (SB_RESTORE__DIR | SB_RESTORE__WHOLE | SB_RESTORE__SKIPPED))) {
			e.id = x->id; /* a subtree the restore left alone */
			break;
		}
		if (dir_fd < 0) {
			dir_fd =
			    openat(dfd, name,
				   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			struct stat fst;
			if (dir_fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP))
				return differs(ck, "was replaced or removed while being checked");
			if (dir_fd < 0)
				return sb_error_errno(ck->err, errno, "open '%s'", qpath(ck));
			if (fstat(dir_fd, &fst) < 0)
				return sb_error_errno(ck->err, errno, "stat '%s'", qpath(ck));
			if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)
				return differs(ck, "was replaced while being checked");
		}
		/* Not in the target, written whole or left alone: read all below. */
		bool all = whole || !known || (kinds & (SB_RESTORE__WHOLE | SB_RESTORE__SKIPPED));
		r = check_dir(ck, dir_fd, known ? &x->id : NULL, all, &e.id);
		break;
	default:
		return 0; /* sockets, devices: never part of a tree */
	}
	return r < 0 ? r : add(got, &e);
}

static const char *type_name(sb_ftype t)
{
	switch (t) {
	case SB_FT_REG:
		return "a file";
	case SB_FT_DIR:
		return "a directory";
	case SB_FT_SYMLINK:
		return "a symlink";
	case SB_FT_FIFO:
		return "a fifo";
	default:
		return "something else";
	}
}

/* want and got differ: name the first entry that does, and how. */
static int explain(checker *ck, const sb_tree *want, const sb_tree *got)
{
	size_t i = 0, j = 0, saved;
	char what[160];
	while (i < want->n || j < got->n) {
		const sb_tree_entry *w = i < want->n ? &want->v[i] : NULL;
		const sb_tree_entry *g = j < got->n ? &got->v[j] : NULL;
		int c = !w ? 1 : !g ? -1 : strcmp(w->name, g->name);
		const sb_tree_entry *e = c <= 0 ? w : g;
		int r = push_name(ck, e->name, e->name_len, &saved);
		if (r < 0)
			return r;
		what[0] = 0;
		if (c < 0)
			snprintf(what, sizeof(what), "is missing (the target has %s there)",
				 type_name(w->type));
		else if (c > 0)
			snprintf(what, sizeof(what), "is %s the target does not have",
				 type_name(g->type));
		else if (w->type != g->type)
			snprintf(what, sizeof(what), "is %s, not %s", type_name(g->type),
				 type_name(w->type));
		else if (w->mode != g->mode)
			snprintf(what, sizeof(what), "has mode %04o, not %04o", g->mode, w->mode);
		else if (w->size != g->size)
			snprintf(what, sizeof(what), "has %" PRIu64 " bytes, not %" PRIu64, g->size,
				 w->size);
		else if (w->mtime_ns != g->mtime_ns)
			snprintf(what, sizeof(what), "has another mtime than the target's");
		else if (!sb_id_eq(&w->id, &g->id))
			snprintf(what, sizeof(what), "has other content than the target's");
		if (what[0])
			return differs(ck, what);
		sb_buf_truncate(&ck->path, saved);
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	return differs(ck, "differs from the target");
}

/* A directory the restore changed (or wrote whole): every name in it now. */
static int read_listed(checker *ck, int fd, const sb_tree *want, bool whole, sb_tree *got)
{
	sb_dirnames names;
	int r = sb_dirnames_read(fd, &names);
	if (r < 0 && r != -ENOMEM)
		return sb_error_errno(ck->err, -r, "list '%s'", qpath(ck));
	if (r < 0)
		return r;
	ck->st.dirs_listed++;
	for (size_t i = 0; r >= 0 && i < names.n; i++) {
		unsigned char d_type = sb_dirnames_type(&names, i);
		const char *name = sb_dirnames_name(&names, i);
		size_t nlen = strlen(name), saved;
		const sb_tree_entry *x = sb_tree_find(want, name, nlen);
		r = push_name(ck, name, nlen, &saved);
		if (r < 0)
			break;
		unsigned kinds = whole ? 0 : kinds_here(ck);
		if (!whole && !kinds && x && dtype_is(d_type, x->type)) {
			/* still there, untouched: as the pre-restore scan found it */
			r = add(got, x);
		} else {
			r = observe(ck, fd, name, nlen, x, kinds, whole, got);
		}
		sb_buf_truncate(&ck->path, saved);
	}
	sb_dirnames_release(&names);
	return r;
}

/* A directory the restore only walked through: its touched entries. */
static int read_walked(checker *ck, int fd, const sb_tree *want, sb_tree *got)
{
	int r = 0;
	for (size_t i = 0; r >= 0 && i < want->n; i++) {
		const sb_tree_entry *x = &want->v[i];
		size_t saved;
		r = push_name(ck, x->name, x->name_len, &saved);
		if (r < 0)
			break;
		unsigned kinds = kinds_here(ck);
		r = kinds ? observe(ck, fd, x->name, x->name_len, x, kinds, false, got)
			  : add(got, x);
		sb_buf_truncate(&ck->path, saved);
	}
	return r;
}

/* want_id NULL: the target has no directory here (then whole is set). */
static int check_dir(checker *ck, int fd, const sb_id *want_id, bool whole, sb_id *ret_id)
{
	if (ck->depth >= SB_TREE_MAX_DEPTH)
		return sb_error_set(ck->err, ELOOP, "'%.200s...' nests deeper than %d levels",
				    qpath(ck), SB_TREE_MAX_DEPTH);
	_cleanup_(sb_tree_releasep) sb_tree loaded = SB_TREE_INIT;
	_cleanup_(sb_tree_releasep) sb_tree got = SB_TREE_INIT;
	const sb_restore__mark *m =
	    whole ? NULL : sb_restore__touched_find(ck->t, ck->path.data, ck->path.len);
	const sb_tree *want = &loaded;
	int r = 0;
	if (m && (m->kinds & SB_RESTORE__DIR))
		want = &m->tree; /* as the restore loaded it */
	else if (want_id)
		r = sb_tree_load(ck->store, want_id, &loaded, ck->err);
	bool list = whole || !m || (m->kinds & (SB_RESTORE__CHANGED | SB_RESTORE__WHOLE));
	ck->depth++;
	if (r >= 0)
		r = list ? read_listed(ck, fd, want, whole || (m && (m->kinds & SB_RESTORE__WHOLE)),
				       &got)
			 : read_walked(ck, fd, want, &got);
	ck->depth--;
	sb_buf enc = SB_BUF_INIT;
	sb_id id;
	if (r >= 0)
		r = sb_tree_encode(&got, &enc, ck->err);
	if (r >= 0) {
		sb_store_hash(SB_OBJ_TREE, enc.data, enc.len, &id);
		ck->st.trees_encoded++;
		if (want_id && !sb_id_eq(&id, want_id))
			r = explain(ck, want, &got);
	}
	sb_buf_release(&enc);
	if (r >= 0)
		*ret_id = id;
	return r;
}

int sb_restore_check(sb_store *s, int root_fd, const sb_id *target,
		     const sb_restore_touched *touched, const sb_ignore *ignore,
		     sb_restore_rehashed **ret_rehashed, sb_id *ret_root,
		     sb_restore_check_stats *ret_stats, sb_error *err)
{
	checker ck = {.store = s, .t = touched, .ign = ignore, .err = err};
	_cleanup_(sb_restore_rehashed_freep) sb_restore_rehashed *rehashed = NULL;
	if (ret_rehashed && sb_restore__rehashed_new(&rehashed) < 0)
		return -ENOMEM;
	ck.rehashed = rehashed;
	sb_id root = *target;
	int r = 0;
	const sb_restore__mark *m = sb_restore__touched_find(touched, "", 0);
	if (m && (m->kinds & SB_RESTORE__DIR)) {
		_cleanup_close_ int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return sb_error_errno(err, errno, "open the workspace");
		ck.dev = st.st_dev;
		r = check_dir(&ck, fd, target, false, &root);
	}
	sb_buf_release(&ck.path);
	if (ret_stats)
		*ret_stats = ck.st;
	if (r >= 0) {
		*ret_root = root;
		if (ret_rehashed)
			*ret_rehashed = TAKE_PTR(rehashed);
	}
	return r;
}

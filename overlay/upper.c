/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "overlay.h"
#include "buf.h"

#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif

/*
 * At most this many directory fds are open at once, however deep the upper
 * goes: the root's, which is never let go of, and those of the deepest
 * MAX_OPEN_FDS - 1 directories on the current path.
 */
#define MAX_OPEN_FDS 32

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

typedef struct subdir {
	char *name;
	size_t change; /* index of its entry in the change list */
	bool xwhiteouts;
	dev_t dev; /* as listed in its parent: what opening it by name must find */
	ino_t ino;
} subdir;

typedef struct frame {
	int fd;		 /* -1 while evicted; reopened from the nearest open ancestor */
	char *name;	 /* this directory's name in its parent (NULL for the root) */
	size_t path_len; /* its path's length in the reader's path buffer */
	dev_t dev;
	ino_t ino;
	subdir *subs;
	size_t n_subs, next;
} frame;

typedef struct reader {
	sb_upper_flags flags;
	sb_changes *out;
	sb_error *err;
	char *path; /* the current directory's path, '/'-joined, no leading slash */
	size_t path_cap;
	frame *frames;
	size_t depth, frames_cap;
	char *xbuf; /* xattr name list */
	size_t xcap;
	int have_xattrat; /* -1 unknown, 0 no, 1 yes */
} reader;

typedef struct entry {
	char *name;
	size_t len;
	struct stat st;
} entry;

/* ---- xattrs of (dir_fd, name) without following a symlink ---- */

static ssize_t list_xattrs(reader *rd, int dfd, const char *name, char *buf, size_t size)
{
	if (rd->have_xattrat != 0) {
		long n = syscall(SYS_listxattrat, dfd, name, AT_SYMLINK_NOFOLLOW, buf, size);
		if (n >= 0 || errno != ENOSYS) {
			rd->have_xattrat = 1;
			return n < 0 ? -errno : n;
		}
		rd->have_xattrat = 0;
	}
	/* Before Linux 6.13: the same file through the directory's /proc/self/fd link. */
	char p[64 + NAME_MAX];
	snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dfd, name);
	ssize_t n = llistxattr(p, buf, size);
	return n < 0 ? -errno : n;
}

static ssize_t get_xattr(reader *rd, int dfd, const char *name, const char *key, char *val,
			 size_t size)
{
	if (rd->have_xattrat == 1) {
		struct {
			uint64_t value;
			uint32_t size, flags;
		} args = {(uint64_t)(uintptr_t)val, (uint32_t)size, 0};
		long n = syscall(SYS_getxattrat, dfd, name, AT_SYMLINK_NOFOLLOW, key, &args,
				 sizeof(args));
		return n < 0 ? -errno : n;
	}
	char p[64 + NAME_MAX];
	snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dfd, name);
	ssize_t n = lgetxattr(p, key, val, size);
	return n < 0 ? -errno : n;
}

typedef struct ovl_attrs {
	char opaque;   /* 0, 'y' or 'x' */
	bool whiteout; /* overlay.whiteout present */
	bool redirect;
	bool metacopy;
	bool fuse_opaque; /* user.fuseoverlayfs.opaque */
} ovl_attrs;

/*
 * Only the namespace the kernel itself used is believed: in a root-mode
 * overlay (trusted.overlay.*) the sandboxed command, though it cannot set
 * trusted.*, can set user.* xattrs on what it creates, and a forged
 * user.overlay.opaque would make staging delete lower files the command
 * itself still saw. With userxattr the kernel refuses, or escapes as
 * user.overlay.overlay.*, what the command sets in that namespace, and
 * trusted.* is out of its reach anyway.
 */
static bool xattr_is(const reader *rd, const char *n, const char *suffix)
{
	const char *prefix =
	    (rd->flags & SB_UPPER_USERXATTR) ? "user.overlay." : "trusted.overlay.";
	size_t pl = strlen(prefix);
	return strncmp(n, prefix, pl) == 0 && strcmp(n + pl, suffix) == 0;
}

static int read_attrs(reader *rd, int dfd, const char *name, ovl_attrs *a)
{
	memset(a, 0, sizeof(*a));
	ssize_t n;
	for (;;) {
		n = list_xattrs(rd, dfd, name, rd->xbuf, rd->xcap);
		if (n != -ERANGE)
			break;
		n = list_xattrs(rd, dfd, name, NULL, 0);
		if (n < 0)
			break;
		char *b = realloc(rd->xbuf, (size_t)n + 256);
		if (!b)
			return -ENOMEM;
		rd->xbuf = b;
		rd->xcap = (size_t)n + 256;
	}
	/* A filesystem without xattrs has no overlay markers either. */
	if (n == -EOPNOTSUPP || n == -ENOTSUP)
		return 0;
	if (n < 0)
		return (int)n;
	for (size_t o = 0; o < (size_t)n;) {
		const char *key = rd->xbuf + o;
		size_t kl = strnlen(key, (size_t)n - o);
		if (xattr_is(rd, key, "opaque")) {
			char v[8];
			ssize_t vl = get_xattr(rd, dfd, name, key, v, sizeof(v));
			if (vl == 1 && (v[0] == 'y' || v[0] == 'x') && a->opaque != 'y')
				a->opaque = v[0];
		} else if (xattr_is(rd, key, "whiteout")) {
			a->whiteout = true;
		} else if (xattr_is(rd, key, "redirect")) {
			a->redirect = true;
		} else if (xattr_is(rd, key, "metacopy")) {
			a->metacopy = true;
		} else if (strcmp(key, "user.fuseoverlayfs.opaque") == 0) {
			a->fuse_opaque = true;
		}
		o += kl + 1;
	}
	return 0;
}

/* ---- the walk ---- */

static int path_push(reader *rd, size_t at, const char *name, size_t len)
{
	size_t need = at + (at ? 1 : 0) + len + 1;
	if (need > rd->path_cap) {
		size_t cap = MAX(need, rd->path_cap * 2);
		char *p = realloc(rd->path, cap);
		if (!p)
			return -ENOMEM;
		rd->path = p;
		rd->path_cap = cap;
	}
	if (at)
		rd->path[at++] = '/';
	memcpy(rd->path + at, name, len);
	rd->path[at + len] = 0;
	return (int)(at + len);
}

static int fail_at(reader *rd, int code, const char *what, size_t at, const char *name, size_t len)
{
	char q[512];
	int n = path_push(rd, at, name, len);
	if (n < 0)
		return sb_error_errno(rd->err, ENOMEM, "reading the upper layer");
	return sb_error_set(rd->err, code, "upper layer entry '%s': %s",
			    sb_quote(q, sizeof(q), rd->path, (size_t)n), what);
}

static sb_change *emit(reader *rd, size_t at, const char *name, size_t len)
{
	if (path_push(rd, at, name, len) < 0)
		return NULL;
	return sb_changes_add(rd->out, rd->path, at + (at ? 1 : 0) + len);
}

static void fill(sb_change *c, sb_ftype type, const struct stat *st)
{
	c->kind = SB_CHANGE_WRITE;
	c->type = type;
	c->mode = st->st_mode & 07777;
	c->size = type == SB_FT_DIR ? 0 : (uint64_t)st->st_size;
	c->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int cmp_entry(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	int c = memcmp(x->name, y->name, MIN(x->len, y->len));
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static entry *find_entry(entry *v, size_t n, const char *name, size_t len)
{
	entry key = {(char *)name, len, {0}};
	return bsearch(&key, v, n, sizeof(*v), cmp_entry);
}

/* A directory next to a .wh.NAME of its own name was deleted and recreated: opaque. */
static bool has_whiteout_for(entry *v, size_t n, const entry *e)
{
	char wh[NAME_MAX + sizeof(WH_PREFIX)];
	size_t pl = strlen(WH_PREFIX);
	if (e->len + pl >= sizeof(wh))
		return false;
	memcpy(wh, WH_PREFIX, pl);
	memcpy(wh + pl, e->name, e->len);
	return find_entry(v, n, wh, pl + e->len) != NULL;
}

static void free_entries(entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/*
 * Reads every entry of a directory (names and lstat) so the fd can be let go
 * of later. With plain, a regular file's type comes from its directory entry
 * and it is not stat'ed: its st is all zero but for S_IFREG.
 */
static int slurp(int fd, bool plain, entry **ret, size_t *ret_n)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return -errno;
	}
	entry *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		entry *nv = sb_grow(v, &cap, n, sizeof(*v), 32);
		if (!nv) {
			r = -ENOMEM;
			break;
		}
		v = nv;
		entry *e = &v[n];
		e->len = strlen(de->d_name);
		e->name = strdup(de->d_name);
		if (!e->name) {
			r = -ENOMEM;
			break;
		}
		n++;
		if (plain && de->d_type == DT_REG) {
			memset(&e->st, 0, sizeof(e->st));
			e->st.st_mode = S_IFREG;
		} else if (fstatat(fd, e->name, &e->st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			break;
		}
		errno = 0;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	if (r < 0) {
		free_entries(v, n);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_entry);
	*ret = v;
	*ret_n = n;
	return 0;
}

static int add_subdir(frame *f, const char *name, size_t change, bool xwhiteouts,
		      const struct stat *st)
{
	subdir *v = realloc(f->subs, (f->n_subs + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	f->subs = v;
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	v[f->n_subs++] = (subdir){copy, change, xwhiteouts, st->st_dev, st->st_ino};
	return 0;
}

/*
 * Classifies the entries of one directory (fd, path at rd->path[0..at)) into
 * changes, queueing subdirectories in f. self is the index of the
 * directory's own change entry (SIZE_MAX for the root).
 */
static int read_dir(reader *rd, frame *f, int fd, size_t at, size_t self, bool xwhiteouts)
{
	entry *v = NULL;
	size_t n = 0;
	/* A zero-size file in an opaque=x directory may be a whiteout: those are stat'ed. */
	bool plain = (rd->flags & SB_UPPER_PLAIN_FILES) && !xwhiteouts;
	int r = slurp(fd, plain, &v, &n);
	if (r < 0) {
		char q[512];
		return sb_error_errno(rd->err, -r, "reading upper directory '%s'",
				      at ? sb_quote(q, sizeof(q), rd->path, at) : ".");
	}
	bool wh_names = rd->flags & SB_UPPER_WH_NAMES;
	for (size_t i = 0; i < n && r >= 0; i++) {
		entry *e = &v[i];
		const struct stat *st = &e->st;
		size_t plen = strlen(WH_PREFIX);
		if (wh_names && strcmp(e->name, WH_OPAQUE) == 0) {
			if (self == SIZE_MAX)
				r = fail_at(rd, EOPNOTSUPP, "opaque marker on the upper root", at,
					    e->name, e->len);
			else
				rd->out->v[self].opaque = true;
			continue;
		}
		if (wh_names && e->len > plen && memcmp(e->name, WH_PREFIX, plen) == 0) {
			const char *target = e->name + plen;
			size_t tlen = e->len - plen;
			/* NAME itself is there too: deleted, then recreated (see the NAME entry). */
			if (find_entry(v, n, target, tlen))
				continue;
			sb_change *c = emit(rd, at, target, tlen);
			if (!c) {
				r = -ENOMEM;
				break;
			}
			c->kind = SB_CHANGE_DELETE;
			continue;
		}
		if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0)) {
			sb_change *c = emit(rd, at, e->name, e->len);
			if (!c) {
				r = -ENOMEM;
				break;
			}
			c->kind = SB_CHANGE_DELETE;
			continue;
		}
		if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
			r = fail_at(rd, EOPNOTSUPP, "device node in the upper layer", at, e->name,
				    e->len);
			break;
		}
		if (S_ISSOCK(st->st_mode))
			continue;
		ovl_attrs a;
		memset(&a, 0, sizeof(a));
		if ((S_ISDIR(st->st_mode) || (S_ISREG(st->st_mode) && !plain)) &&
		    (r = read_attrs(rd, fd, e->name, &a)) < 0) {
			r = fail_at(rd, -r, "reading its xattrs failed", at, e->name, e->len);
			break;
		}
		if (a.redirect) {
			r = fail_at(
			    rd, EOPNOTSUPP,
			    "overlay redirect xattr (a directory renamed with redirect_dir=on)", at,
			    e->name, e->len);
			break;
		}
		if (a.metacopy) {
			r = fail_at(
			    rd, EOPNOTSUPP,
			    "overlay metacopy xattr (metadata-only copy-up, data in the lower)", at,
			    e->name, e->len);
			break;
		}
		if (S_ISREG(st->st_mode) && xwhiteouts && a.whiteout && st->st_size == 0) {
			sb_change *c = emit(rd, at, e->name, e->len);
			if (!c) {
				r = -ENOMEM;
				break;
			}
			c->kind = SB_CHANGE_DELETE;
			continue;
		}
		sb_ftype type = S_ISREG(st->st_mode)   ? SB_FT_REG
				: S_ISDIR(st->st_mode) ? SB_FT_DIR
				: S_ISLNK(st->st_mode) ? SB_FT_SYMLINK
						       : SB_FT_FIFO;
		sb_change *c = emit(rd, at, e->name, e->len);
		if (!c) {
			r = -ENOMEM;
			break;
		}
		fill(c, type, st);
		if (type == SB_FT_DIR) {
			c->opaque = a.opaque == 'y' || (wh_names && a.fuse_opaque) ||
				    (wh_names && has_whiteout_for(v, n, e));
			r = add_subdir(f, e->name, rd->out->n - 1, a.opaque == 'x', st);
		}
	}
	if (r == -ENOMEM)
		r = sb_error_errno(rd->err, ENOMEM, "reading the upper layer");
	free_entries(v, n);
	return r;
}

static int open_dir(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * Opens a directory listed earlier, by name. A different inode there means
 * the upper changed while it was read: its change list would mix two states.
 */
static int open_listed(int dfd, const char *name, dev_t dev, ino_t ino)
{
	int fd = open_dir(dfd, name);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (st.st_dev != dev || st.st_ino != ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* The lowest frame index other than the root's that may hold an fd while k is the deepest. */
static size_t window_start(size_t k)
{
	return k > MAX_OPEN_FDS - 1 ? k - (MAX_OPEN_FDS - 2) : 1;
}

/*
 * The fd of frame k, the deepest frame, reopening it from the nearest open
 * ancestor. Frame 0 (the root) is never evicted, so the search stops there;
 * the frames reopened on the way stay open when they lie in k's window, so
 * climbing out of a deep tree reopens each level about once, not once per
 * level below it.
 */
static int frame_fd(reader *rd, size_t k)
{
	if (rd->frames[k].fd >= 0)
		return rd->frames[k].fd;
	size_t j = k;
	while (j > 0 && rd->frames[j].fd < 0)
		j--;
	if (rd->frames[j].fd < 0)
		return -EBADF;
	size_t low = window_start(k);
	int fd = rd->frames[j].fd;
	for (size_t i = j + 1; i <= k; i++) {
		frame *fr = &rd->frames[i];
		int next = open_listed(fd, fr->name, fr->dev, fr->ino);
		if (i - 1 > j && i - 1 < low)
			close(fd);
		if (next < 0)
			return next;
		if (i >= low)
			fr->fd = next;
		fd = next;
	}
	return fd;
}

static void pop(reader *rd)
{
	frame *f = &rd->frames[--rd->depth];
	CLOSE_FD(f->fd);
	free(f->name);
	for (size_t i = 0; i < f->n_subs; i++)
		free(f->subs[i].name);
	free(f->subs);
}

static int walk(reader *rd, int root_fd)
{
	int fd = open_dir(root_fd, ".");
	if (fd < 0)
		return sb_error_errno(rd->err, -fd, "opening the upper layer");
	ovl_attrs a;
	int r = read_attrs(rd, root_fd, ".", &a);
	if (r < 0) {
		close(fd);
		return sb_error_errno(rd->err, -r, "reading the upper layer root's xattrs");
	}
	if (a.redirect || a.metacopy || a.opaque == 'y' ||
	    ((rd->flags & SB_UPPER_WH_NAMES) && a.fuse_opaque)) {
		close(fd);
		return sb_error_set(rd->err, EOPNOTSUPP,
				    "upper layer root carries an overlay %s xattr",
				    a.redirect	 ? "redirect"
				    : a.metacopy ? "metacopy"
						 : "opaque");
	}
	rd->frames = calloc(16, sizeof(frame));
	if (!rd->frames) {
		close(fd);
		return sb_error_errno(rd->err, ENOMEM, "reading the upper layer");
	}
	rd->frames_cap = 16;
	rd->frames[0] = (frame){.fd = fd};
	rd->depth = 1;
	r = read_dir(rd, &rd->frames[0], fd, 0, SIZE_MAX, a.opaque == 'x');

	while (r >= 0 && rd->depth > 0) {
		size_t k = rd->depth - 1;
		frame *f = &rd->frames[k];
		if (f->next == f->n_subs) {
			pop(rd);
			continue;
		}
		subdir *s = &f->subs[f->next++];
		size_t at = f->path_len;
		int pfd = frame_fd(rd, k);
		if (pfd < 0) {
			char q[512];
			r = sb_error_errno(rd->err, -pfd, "reopening upper directory '%s'%s",
					   sb_quote(q, sizeof(q), rd->path, at),
					   pfd == -ESTALE ? " (it changed while being read)" : "");
			break;
		}
		int cfd = open_listed(pfd, s->name, s->dev, s->ino);
		if (cfd < 0) {
			r = fail_at(rd, -cfd,
				    cfd == -ESTALE ? "the directory changed while being read"
						   : "cannot open the directory",
				    at, s->name, strlen(s->name));
			break;
		}
		int len = path_push(rd, at, s->name, strlen(s->name));
		if (len >= 0 && rd->depth == rd->frames_cap) {
			frame *nv = reallocarray(rd->frames, rd->frames_cap * 2, sizeof(frame));
			if (nv) {
				rd->frames = nv;
				rd->frames_cap *= 2;
			} else {
				len = -ENOMEM;
			}
		}
		if (len < 0) {
			close(cfd);
			r = sb_error_errno(rd->err, ENOMEM, "reading the upper layer");
			break;
		}
		size_t lo = window_start(rd->depth);
		if (lo > 1)
			CLOSE_FD(rd->frames[lo - 1].fd);
		/* Ownership of the name moves to the new frame. */
		frame *nf = &rd->frames[rd->depth++];
		f = &rd->frames[k];
		s = &f->subs[f->next - 1];
		*nf = (frame){.fd = cfd,
			      .name = TAKE_PTR(s->name),
			      .path_len = (size_t)len,
			      .dev = s->dev,
			      .ino = s->ino};
		r = read_dir(rd, nf, cfd, (size_t)len, s->change, s->xwhiteouts);
	}
	while (rd->depth > 0)
		pop(rd);
	return r;
}

int sb_upper_read(int upper_fd, sb_upper_flags flags, sb_changes *ret, sb_error *err)
{
	sb_changes out = SB_CHANGES_INIT;
	reader rd = {.flags = flags, .out = &out, .err = err, .have_xattrat = -1};
	/* Tests exercise the pre-6.13 path (xattrs through /proc/self/fd) with this. */
	const char *no_at = getenv("SNAPBOX_NO_XATTRAT");
	if (no_at && strcmp(no_at, "1") == 0)
		rd.have_xattrat = 0;
	rd.xcap = 1024;
	rd.xbuf = malloc(rd.xcap);
	rd.path_cap = 256;
	rd.path = malloc(rd.path_cap);
	int r;
	if (!rd.xbuf || !rd.path)
		r = sb_error_errno(err, ENOMEM, "reading the upper layer");
	else
		r = walk(&rd, upper_fd);
	free(rd.xbuf);
	free(rd.path);
	free(rd.frames);
	if (r < 0) {
		sb_changes_release(&out);
		return r;
	}
	sb_changes_sort(&out);
	*ret = out;
	return 0;
}

int sb_upper_read_path(const char *upper, sb_upper_flags flags, sb_changes *ret, sb_error *err)
{
	_cleanup_close_ int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sb_error_errno(err, errno, "opening upper layer '%s'", upper);
	return sb_upper_read(fd, flags, ret, err);
}

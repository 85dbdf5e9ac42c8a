/* SPDX-License-Identifier: MIT */
/*
 * One walking thread (the caller's) and N worker threads, which hash files
 * and, when idle, walk whole subtrees the walker hands them (a tree job: a
 * nested walker with its own frames, fd share and stats, hashing its files
 * itself rather than queueing them; its warnings are kept for the caller's
 * thread, and its root id fills the parent's entry on completion). A nested
 * walk hands subtrees over in the same way and completes them itself: they
 * come back on its own list, and before it ends it waits for them, running
 * queued jobs meanwhile (scan-jobs.c).
 *
 * The walker reads each directory's names whole (getdents64) and sorts them,
 * or takes them from the stat cache when the directory is as it was when
 * last listed, and lstat's each entry. Directories are entered depth-first;
 * symlinks and fifos are recorded on the spot; a regular file either reuses
 * its stat-cache id or becomes a job for the hashers. A job holds a reference on its directory's
 * fd so it can openat(dir, name) after the walker has moved on.
 *
 * Each directory is a dnode whose tree fills in as answers arrive; `pending`
 * counts the entries still without an id (jobs, unfinished subdirectories).
 * Completions come back to the walker, which alone touches dnodes, the stat
 * cache's next generation and the stats: no locking beyond the queues. A
 * dnode whose walk is over and whose pending count reaches zero is encoded,
 * stored, and its id handed to its parent — trees are built bottom-up.
 *
 * Open directory fds are bounded: past the budget the walker first waits for
 * jobs to release theirs, then closes the fds of its shallowest ancestors and
 * reopens each with openat(child, "..") on the way back up, checking dev and
 * inode so a directory moved meanwhile is an error, not a wrong tree.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "content.h"
#include "ignore.h"
#include "scan-internal.h"
#include "scan.h"
#include "statcache.h"
#include "tree.h"

static dirref *dirref_new(walker *w, int fd, bool path_only)
{
	dirref *ref = malloc(sizeof(*ref));
	if (!ref)
		return NULL;
	ref->fd = fd;
	ref->path_only = path_only;
	atomic_init(&ref->refs, 1);
	ref->count = w->open_dirs;
	atomic_fetch_add(ref->count, 1);
	return ref;
}

int sb_scan__fail(walker *w, int r)
{
	if (w->r >= 0)
		w->r = r;
	atomic_store(&w->sc->abort, true);
	return r;
}

static const char *qpath(walker *w, const char *path, size_t len)
{
	return sb_quote(w->qbuf, sizeof(w->qbuf), path, len);
}

void sb_scan__warn(walker *w, const char *path, const char *why)
{
	const sb_scan_opts *o = w->sc->o;
	if (!o->warn)
		return;
	if (!w->nested) {
		o->warn(o->userdata, path, why);
		return;
	}
	/* warn runs on the calling thread: keep it for the walker completing the job */
	if (sb_buf_puts(&w->warnings, path) < 0 || sb_buf_putc(&w->warnings, '\0') < 0 ||
	    sb_buf_puts(&w->warnings, why) < 0 || sb_buf_putc(&w->warnings, '\0') < 0)
		sb_scan__fail(w, -ENOMEM);
}

static dnode *dnode_new(walker *w, dnode *parent, size_t parent_idx, const struct stat *st)
{
	dnode *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->parent = parent;
	d->parent_idx = parent_idx;
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	d->next = w->live;
	if (w->live)
		w->live->prev = d;
	w->live = d;
	return d;
}

static void dnode_free(walker *w, dnode *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		w->live = d->next;
	if (d->next)
		d->next->prev = d->prev;
	sb_tree_release(&d->tree);
	free(d);
}

/*
 * Stores the tree of d, unless the stat cache names it as d's tree already:
 * then the store has it (a re-scan of an unchanged directory asks the store
 * nothing), as with a file's id.
 */
static int save_tree(walker *w, dnode *d, sb_id *ret_id)
{
	sb_statcache *cache = w->sc->o->cache;
	if (!d->cached)
		return sb_tree_save(w->sc->store, &d->tree, ret_id, w->err);
	sb_buf enc = SB_BUF_INIT;
	int r = sb_tree_encode(&d->tree, &enc, w->err);
	if (r >= 0) {
		sb_store_hash(SB_OBJ_TREE, enc.data, enc.len, ret_id);
		if (!sb_statcache_dir_knows(cache, &d->cdir, ret_id))
			r = sb_store_put(w->sc->store, SB_OBJ_TREE, enc.data, enc.len, ret_id,
					 w->err);
	}
	sb_buf_release(&enc);
	if (r >= 0)
		r = sb_statcache_dir_set_tree(cache, &d->cdir, ret_id);
	return r;
}

/* Encodes and stores every finished directory from d upwards. */
int sb_scan__finalize(walker *w, dnode *d)
{
	while (d && d->walked && d->pending == 0) {
		size_t k = 0;
		for (size_t i = 0; i < d->tree.n; i++) {
			if (d->tree.v[i].type == SB_FT_NONE)
				free(d->tree.v[i].name);
			else
				d->tree.v[k++] = d->tree.v[i];
		}
		d->tree.n = k;
		sb_id id;
		int r = save_tree(w, d, &id);
		dnode *p = d->parent;
		if (r < 0) {
			if (p)
				sb_error_prefix(w->err, "directory '%s'",
						qpath(w, p->tree.v[d->parent_idx].name,
						      p->tree.v[d->parent_idx].name_len));
			return sb_scan__fail(w, r);
		}
		size_t idx = d->parent_idx;
		dnode_free(w, d);
		if (!p) {
			w->root = id;
			w->have_root = true;
			return 0;
		}
		p->tree.v[idx].id = id;
		p->pending--;
		d = p;
	}
	return 0;
}

static int open_dir_at(int dir_fd, const char *name)
{
	int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
	int fd = openat(dir_fd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dir_fd, name, flags);
	return fd;
}

/*
 * All names of the directory at fd, sorted by bytes, into f: from the stat
 * cache when the directory is as it was when last listed (st: fstat'ed
 * before, so a change made while it is listed shows in the next scan's key).
 */
static int read_names(walker *w, const struct stat *st, frame *f)
{
	sb_statcache *cache = w->sc->o->cache;
	const char *path = w->path.len ? w->path.data : "";
	sb_statcache_key key;
	f->next = 0;
	if (cache) {
		sb_statcache_key_from_stat(st, &key);
		int r =
		    sb_statcache_reuse_dir(cache, path, w->path.len, &key, &f->names, &f->d->cdir);
		f->d->cached = r > 0;
		if (r != 0)
			return r < 0 ? r : 0;
	}
	dirref *ref = f->ref;
	if (ref->path_only) {
		/* "." of an O_PATH fd is that same directory, now open for reading. */
		int fd = open_dir_at(ref->fd, ".");
		if (fd < 0)
			return sb_error_errno(w->err, errno, "open directory '%s'",
					      qpath(w, w->path.data, w->path.len));
		close(ref->fd);
		ref->fd = fd;
		ref->path_only = false;
	}
	int r = sb_dirnames_read(ref->fd, &f->names);
	if (r < 0 && r != -ENOMEM)
		return sb_error_errno(w->err, -r, "read directory '%s'",
				      qpath(w, w->path.data, w->path.len));
	if (r >= 0)
		w->stats.dirs_listed++;
	if (r >= 0 && cache) {
		r = sb_statcache_record_dir(cache, path, w->path.len, &key, &f->names, &f->d->cdir);
		f->d->cached = r >= 0;
	}
	return r;
}

/* Enters the directory at fd (taken; path_only: an O_PATH fd), fstat'ed as st. */
static int push(walker *w, int fd, bool path_only, const struct stat *st, dnode *d)
{
	if (w->depth0 + w->depth > SB_TREE_MAX_DEPTH) {
		close(fd);
		return sb_error_set(w->err, ELOOP,
				    "'%.200s...' nests deeper than %d directories; snapbox refuses "
				    "trees that deep (exclude it with --exclude or .snapboxignore)",
				    w->path.data, SB_TREE_MAX_DEPTH);
	}
	frame *s = sb_grow(w->stack, &w->stack_cap, w->depth, sizeof(*s), 64);
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	w->stack = s;
	frame *f = &w->stack[w->depth];
	memset(f, 0, sizeof(*f));
	f->d = d;
	f->path_len = w->path.len;
	f->ref = dirref_new(w, fd, path_only);
	if (!f->ref) {
		close(fd);
		return -ENOMEM;
	}
	w->depth++;
	return read_names(w, st, f);
}

static void frame_release(walker *w, frame *f)
{
	sb_scan__dirref_unref(f->ref);
	f->ref = NULL;
	sb_dirnames_release(&f->names);
}

/* Leaves the top directory: its walk is over. */
static int pop(walker *w)
{
	frame *f = &w->stack[w->depth - 1];
	int r = 0;
	if (w->depth >= 2 && !w->stack[w->depth - 2].ref) {
		frame *p = &w->stack[w->depth - 2];
		int fd = open_dir_at(f->ref->fd, "..");
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = sb_error_errno(w->err, errno, "reopen parent of '%s'",
					   qpath(w, w->path.data, f->path_len));
		} else if (st.st_dev != p->d->dev || st.st_ino != p->d->ino) {
			r = sb_error_set(w->err, ESTALE, "directory '%s' moved during the scan",
					 qpath(w, w->path.data, p->path_len));
		} else {
			p->ref = dirref_new(w, fd, false);
			fd = -1;
			if (!p->ref)
				r = -ENOMEM;
		}
		if (fd >= 0)
			close(fd);
	}
	dnode *d = f->d;
	frame_release(w, f);
	w->depth--;
	if (r < 0)
		return sb_scan__fail(w, r);
	d->walked = true;
	return sb_scan__finalize(w, d);
}

/* Before opening one more directory: keep within the fd budget. */
static int make_room(walker *w)
{
	while (!w->nested && atomic_load(w->open_dirs) >= w->budget && w->sc->inflight > 0) {
		int r = sb_scan__drain(w, 1);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i + 1 < w->depth && atomic_load(w->open_dirs) >= w->budget; i++) {
		if (w->stack[i].ref) {
			sb_scan__dirref_unref(w->stack[i].ref);
			w->stack[i].ref = NULL;
		}
	}
	return 0;
}

/*
 * A regular file: reused from the stat cache, or queued for a hasher. st is
 * NULL when the file was not stat'ed (see unstat_ok): the hasher's fstat
 * fills in its attributes.
 */
static int visit_file(walker *w, frame *f, const char *name, const struct stat *st)
{
	dnode *d = f->d;
	sb_tree_entry *e = sb_tree_add(&d->tree, name, strlen(name));
	if (!e)
		return -ENOMEM;
	e->type = SB_FT_REG;
	w->stats.files++;
	off_t walk_size = 0;
	if (st) {
		e->mode = (uint32_t)st->st_mode & 07777;
		e->size = (uint64_t)st->st_size;
		e->mtime_ns = sb_scan__ts_ns(&st->st_mtim);
		walk_size = st->st_size;
		w->stats.bytes += (uint64_t)walk_size;
	}
	if (st && w->sc->o->cache) {
		sb_statcache_key key;
		sb_statcache_key_from_stat(st, &key);
		int r =
		    sb_statcache_reuse(w->sc->o->cache, w->path.data, w->path.len, &key, &e->id);
		if (r != 0) {
			w->stats.cache_hits += r > 0;
			return r;
		}
	}
	size_t idx = d->tree.n - 1;
	while (!w->nested && w->sc->inflight >= MAX_INFLIGHT) {
		int r = sb_scan__drain(w, DRAIN_BATCH);
		if (r < 0)
			return r;
	}
	job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->path = malloc(w->path.len + 1);
	if (!j->path) {
		free(j);
		return -ENOMEM;
	}
	memcpy(j->path, w->path.data, w->path.len + 1);
	j->path_len = w->path.len;
	j->name_off = w->path.len - strlen(name);
	j->walk_size = walk_size;
	j->d = d;
	j->idx = idx;
	j->ref = f->ref;
	atomic_fetch_add(&f->ref->refs, 1);
	d->pending++;
	j->tree_fd = -1;
	if (!w->nested) {
		sb_scan__queue(w, j);
		return 0;
	}
	/* a worker's own walk: waiting on the other workers could deadlock them all */
	sb_scan__hash(w->sc, j);
	sb_scan__dirref_unref(j->ref);
	j->ref = NULL;
	return sb_scan__complete(w, j);
}

/*
 * st: the directory's lstat; pfd (taken), when >= 0: an O_PATH fd of it,
 * which st came from (visit).
 */
static int visit_dir(walker *w, frame *f, const char *name, const struct stat *st, int pfd)
{
	if (st->st_dev != f->d->dev && !(w->sc->o->flags & SB_SCAN_CROSS_MOUNTS)) {
		if (pfd >= 0)
			close(pfd);
		sb_scan__warn(w, w->path.data, "mount point of another filesystem: not entered");
		w->stats.skipped++;
		return 0;
	}
	int fd = pfd, r;
	struct stat fst = *st;
	if (pfd < 0) {
		r = make_room(w);
		if (r < 0)
			return r;
		fd = open_dir_at(f->ref->fd, name);
		if (fd < 0) {
			if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
				sb_scan__warn(w, w->path.data,
					      "vanished or replaced during the scan; left out");
				return 0;
			}
			return sb_error_errno(w->err, errno, "open directory '%s'",
					      qpath(w, w->path.data, w->path.len));
		}
		if (fstat(fd, &fst) < 0) {
			r = sb_error_errno(w->err, errno, "stat '%s'",
					   qpath(w, w->path.data, w->path.len));
			close(fd);
			return r;
		}
		if (fst.st_dev != f->d->dev && !(w->sc->o->flags & SB_SCAN_CROSS_MOUNTS)) {
			close(fd);
			sb_scan__warn(w, w->path.data,
				      "mount point of another filesystem: not entered");
			w->stats.skipped++;
			return 0;
		}
	}
	dnode *parent = f->d;
	sb_tree_entry *e = sb_tree_add(&parent->tree, name, strlen(name));
	if (!e) {
		close(fd);
		return -ENOMEM;
	}
	e->type = SB_FT_DIR;
	e->mode = (uint32_t)fst.st_mode & 07777;
	e->mtime_ns = sb_scan__ts_ns(&fst.st_mtim);
	dnode *d = dnode_new(w, parent, parent->tree.n - 1, &fst);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	parent->pending++;
	w->stats.dirs++;
	if (sb_scan__want_helper(w)) {
		dnode_free(w, d);
		return sb_scan__hand_over(w, parent, parent->tree.n - 1, fd, pfd >= 0);
	}
	return push(w, fd, pfd >= 0, &fst, d); /* f is stale from here on */
}

static int visit_symlink(walker *w, frame *f, const char *name, const struct stat *st)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(f->ref->fd, name, target, sizeof(target));
	if (n < 0 && (errno == ENOENT || errno == EINVAL)) {
		sb_scan__warn(w, w->path.data, "vanished or replaced during the scan; left out");
		return 0;
	}
	if (n < 0)
		return sb_error_errno(w->err, errno, "readlink '%s'",
				      qpath(w, w->path.data, w->path.len));
	if (n == 0 || (size_t)n >= sizeof(target))
		return sb_error_set(w->err, ENAMETOOLONG,
				    "symlink '%s': target length out of range",
				    qpath(w, w->path.data, w->path.len));
	sb_id id;
	int r = sb_store_put(w->sc->store, SB_OBJ_BLOB, target, (size_t)n, &id, w->err);
	if (r < 0)
		return r;
	sb_tree_entry *e = sb_tree_add(&f->d->tree, name, strlen(name));
	if (!e)
		return -ENOMEM;
	e->type = SB_FT_SYMLINK;
	e->mode = (uint32_t)st->st_mode & 07777;
	e->size = (uint64_t)n;
	e->mtime_ns = sb_scan__ts_ns(&st->st_mtim);
	e->id = id;
	w->stats.symlinks++;
	return 0;
}

/*
 * The lstat of a directory's entry, by an O_PATH fd of it (*ret_fd) when it
 * is a directory (d_type says so) whose listing the stat cache holds: that
 * fd then serves the walk (*at calls), and the stat by name and the open
 * after it become one open. O_PATH without O_DIRECTORY triggers no
 * automount, as a stat does not; O_NOFOLLOW stats a symlink itself.
 * *ret_fd is -1 when the stat was by name. -ENOENT when the entry is gone;
 * other errors with w->err set.
 */
static int stat_entry(walker *w, frame *f, const char *name, unsigned char d_type, struct stat *st,
		      int *ret_fd)
{
	*ret_fd = -1;
	sb_statcache *cache = w->sc->o->cache;
	if (d_type == DT_DIR && cache && sb_statcache_has_dir(cache, w->path.data, w->path.len)) {
		int r = make_room(w);
		if (r < 0)
			return r;
		int fd = openat(f->ref->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, st) == 0) {
			*ret_fd = fd;
			return 0;
		}
		if (fd >= 0)
			close(fd);
	}
	if (fstatat(f->ref->fd, name, st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno == ENOENT)
		return -ENOENT;
	return sb_error_errno(w->err, errno, "stat '%s'", qpath(w, w->path.data, w->path.len));
}

/*
 * Whether an entry can go to a hasher without a stat by name: a regular file
 * (d_type says so) that no stat cache record could match, as on a first
 * snapshot. The hasher's open and fstat then stand in for the stat (one
 * system call fewer per file); should the entry have become something else
 * meanwhile, the hasher's fstat tells, as it does for any file replaced
 * between the walk and the read.
 */
static bool unstat_ok(const walker *w, unsigned char d_type)
{
	const sb_statcache *cache = w->sc->o->cache;
	return d_type == DT_REG && (!cache || sb_statcache_count(cache) == 0);
}

static int visit(walker *w, frame *f, const char *name, unsigned char d_type)
{
	sb_buf_truncate(&w->path, f->path_len);
	int r = 0;
	if (w->path.len)
		r = sb_buf_putc(&w->path, '/');
	if (r >= 0)
		r = sb_buf_puts(&w->path, name);
	if (r < 0)
		return r;
	if (strlen(name) > 255) {
		/* some filesystems (ntfs3, cifs) hand out longer names; trees cannot hold them */
		sb_scan__warn(w, w->path.data, "name longer than 255 bytes: skipped");
		w->stats.skipped++;
		return 0;
	}
	bool unstat = unstat_ok(w, d_type);
	struct stat st;
	int pfd = -1;
	if (!unstat) {
		r = stat_entry(w, f, name, d_type, &st, &pfd);
		if (r == -ENOENT) {
			sb_scan__warn(w, w->path.data, "vanished during the scan");
			return 0;
		}
		if (r < 0)
			return r;
		if (pfd >= 0 && !S_ISDIR(st.st_mode)) {
			close(pfd); /* no longer a directory: as if stat'ed by name */
			pfd = -1;
		}
	}
	bool is_dir = !unstat && S_ISDIR(st.st_mode);
	if (sb_ignore_match(w->sc->o->ignore, w->path.data, w->path.len, is_dir)) {
		if (pfd >= 0)
			close(pfd);
		w->stats.skipped++;
		return 0;
	}
	if (unstat)
		return visit_file(w, f, name, NULL);
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		return visit_file(w, f, name, &st);
	case S_IFDIR:
		return visit_dir(w, f, name, &st, pfd);
	case S_IFLNK:
		return visit_symlink(w, f, name, &st);
	case S_IFIFO: {
		sb_tree_entry *e = sb_tree_add(&f->d->tree, name, strlen(name));
		if (!e)
			return -ENOMEM;
		e->type = SB_FT_FIFO;
		e->mode = (uint32_t)st.st_mode & 07777;
		e->mtime_ns = sb_scan__ts_ns(&st.st_mtim);
		w->stats.fifos++;
		return 0;
	}
	case S_IFSOCK:
		sb_scan__warn(w, w->path.data, "socket: skipped");
		break;
	case S_IFCHR:
	case S_IFBLK:
		sb_scan__warn(w, w->path.data, "device node: skipped");
		break;
	default:
		sb_scan__warn(w, w->path.data, "unknown file type: skipped");
		break;
	}
	w->stats.skipped++;
	return 0;
}

static size_t fd_budget(int threads)
{
	struct rlimit rl;
	rlim_t soft = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		soft = rl.rlim_cur;
	/* half for the rest of the process: stdio, the store's packs, hashers' files */
	long b = (long)(soft / 2) - 16 - threads;
	return (size_t)MAX(4, MIN(b, 1024));
}

static void walker_init(walker *w, scanner *sc, bool nested, size_t budget)
{
	w->sc = sc;
	w->nested = nested;
	w->budget = budget;
	atomic_init(&w->own_open, 0);
	w->open_dirs = nested ? &w->own_open : &sc->open_dirs;
	w->path = (sb_buf)SB_BUF_INIT;
	w->warnings = (sb_buf)SB_BUF_INIT;
}

void sb_scan__walker_release(walker *w)
{
	while (w->depth > 0)
		frame_release(w, &w->stack[--w->depth]);
	while (w->live)
		dnode_free(w, w->live);
	free(w->stack);
	w->stack = NULL;
	sb_buf_release(&w->path);
	sb_buf_release(&w->warnings);
}

/* Walks the directory at fd (owned; path_only: an O_PATH fd) whose path is w->path. */
static int walk(walker *w, int fd, bool path_only)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		if (w->nested)
			return sb_error_errno(w->err, errno, "stat '%s'",
					      qpath(w, w->path.data, w->path.len));
		return sb_error_errno(w->err, errno, "stat the directory to scan");
	}
	dnode *root = dnode_new(w, NULL, 0, &st);
	if (!root) {
		close(fd);
		return -ENOMEM;
	}
	int r = push(w, fd, path_only, &st, root);
	while (r >= 0 && w->depth > 0) {
		if (w->nested && atomic_load(&w->sc->abort)) {
			r = -ECANCELED;
			break;
		}
		r = sb_scan__drain(w, 0);
		if (r < 0)
			break;
		sb_scan__progress(w);
		frame *f = &w->stack[w->depth - 1];
		if (f->next == f->names.n) {
			r = pop(w);
		} else {
			size_t i = f->next++;
			r = visit(w, f, sb_dirnames_name(&f->names, i),
				  sb_dirnames_type(&f->names, i));
		}
	}
	if (r < 0)
		sb_scan__fail(w, r);
	while (!w->nested && w->sc->inflight > 0)
		sb_scan__drain(w, DRAIN_BATCH);
	/* even after a failure: what was handed over points into w's dnodes */
	while (w->nested && w->outstanding > 0)
		sb_scan__drain(w, 1);
	return w->r;
}

void sb_scan__walk_subtree(scanner *sc, job *j, unsigned level)
{
	walker *w = calloc(1, sizeof(*w));
	j->err = calloc(1, sizeof(*j->err));
	if (!w || !j->err) {
		free(w);
		j->r = -ENOMEM;
		return;
	}
	*j->err = (sb_error)SB_ERROR_INIT;
	walker_init(w, sc, true, sc->share);
	w->level = level;
	j->nested = w;
	w->err = j->err;
	w->depth0 = j->depth0;
	if (atomic_load(&sc->abort)) {
		j->r = -ECANCELED;
		return;
	}
	int r = sb_buf_append(&w->path, j->path, j->path_len);
	if (r >= 0)
		r = sb_buf_putc(&w->path, '\0');
	if (r >= 0) {
		w->path.len = j->path_len;
		int fd = j->tree_fd;
		j->tree_fd = -1;
		r = walk(w, fd, j->tree_path_only);
	}
	if (r >= 0 && !w->have_root)
		r = sb_error_set(w->err, EIO, "walk of '%s' ended without a tree",
				 qpath(w, j->path, j->path_len));
	j->r = r < 0 ? r : 0;
	if (r >= 0)
		j->id = w->root;
	/* only what the caller's thread needs: warnings and stats */
	while (w->depth > 0)
		frame_release(w, &w->stack[--w->depth]);
	while (w->live)
		dnode_free(w, w->live);
}

int sb_scan_run(sb_store *s, int root_fd, const sb_scan_opts *opts, sb_id *ret_root,
		sb_scan_stats *ret_stats, sb_error *err)
{
	static const sb_scan_opts none;
	scanner *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->store = s;
	sc->o = opts ? opts : &none;
	pthread_mutex_init(&sc->mu, NULL);
	pthread_cond_init(&sc->work_cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->done_cv, &ca);
	pthread_cond_init(&sc->child_cv, NULL);
	pthread_condattr_destroy(&ca);
	atomic_init(&sc->abort, false);
	atomic_init(&sc->open_dirs, 0);
	sc->wake_at = SIZE_MAX;
	int n = sc->o->threads > 0 ? sc->o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	n = MAX(1, MIN(n, 64));
	size_t budget = fd_budget(n);
	/*
	 * Each nested walk gets a share of the budget (and one fd while queued);
	 * with too few fds to go round, the caller's thread walks alone.
	 */
	size_t share = budget / (2 * (size_t)n);
	if (share >= 16)
		sc->share = share;
	else
		share = 0;
	walker *w = &sc->main;
	/* The nested walks' shares come out of the caller's; without them, all is its. */
	size_t reserved = share ? (size_t)n * (share + 1) : 0;
	walker_init(w, sc, false, budget - reserved);
	w->err = err;
	sc->threads = calloc((size_t)n, sizeof(pthread_t));
	int r = sc->threads ? 0 : -ENOMEM;
	for (int i = 0; r >= 0 && i < n; i++) {
		int e = pthread_create(&sc->threads[i], NULL, sb_scan__worker, sc);
		if (e)
			r = sb_error_errno(err, e, "start a hashing thread");
		else
			sc->n_threads++;
	}
	if (r >= 0 && sc->o->cache)
		sb_statcache_begin(sc->o->cache);
	if (r >= 0) {
		int fd = open_dir_at(root_fd, ".");
		r = fd < 0 ? sb_error_errno(err, errno, "open the directory to scan")
			   : walk(w, fd, false);
	} else {
		sb_scan__fail(w, r);
	}

	pthread_mutex_lock(&sc->mu);
	sc->stop = true;
	pthread_cond_broadcast(&sc->work_cv);
	pthread_mutex_unlock(&sc->mu);
	for (int i = 0; i < sc->n_threads; i++)
		pthread_join(sc->threads[i], NULL);
	while (sc->q_head) {
		job *j = sc->q_head;
		sc->q_head = j->next;
		sb_scan__job_free(j);
	}
	sb_scan__walker_release(w);
	free(sc->threads);
	if (r >= 0 && !w->have_root)
		r = sb_error_set(err, EIO, "scan ended without a root tree");
	if (r >= 0) {
		*ret_root = w->root;
		if (ret_stats)
			*ret_stats = w->stats;
	}
	pthread_mutex_destroy(&sc->mu);
	pthread_cond_destroy(&sc->work_cv);
	pthread_cond_destroy(&sc->done_cv);
	pthread_cond_destroy(&sc->child_cv);
	free(sc);
	return r;
}

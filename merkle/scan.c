/* SPDX-License-Identifier: MIT */
/*
 * One walking thread (the caller's) and N hashing threads.
 *
 * The walker reads each directory's names whole (getdents64), sorts them, and
 * lstat's each entry. Directories are entered depth-first; symlinks and fifos
 * are recorded on the spot; a regular file either reuses its stat-cache id or
 * becomes a job for the hashers. A job holds a reference on its directory's
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

static dirref *dirref_new(scanner *sc, int fd)
{
	dirref *ref = malloc(sizeof(*ref));
	if (!ref)
		return NULL;
	ref->fd = fd;
	atomic_init(&ref->refs, 1);
	atomic_fetch_add(&sc->open_dirs, 1);
	return ref;
}

static int fail(scanner *sc, int r)
{
	if (sc->r >= 0)
		sc->r = r;
	atomic_store(&sc->abort, true);
	return r;
}

static const char *qpath(scanner *sc, const char *path, size_t len)
{
	return sb_quote(sc->qbuf, sizeof(sc->qbuf), path, len);
}

static void warn(scanner *sc, const char *path, const char *why)
{
	if (sc->o->warn)
		sc->o->warn(sc->o->userdata, path, why);
}

static dnode *dnode_new(scanner *sc, dnode *parent, size_t parent_idx, const struct stat *st)
{
	dnode *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->parent = parent;
	d->parent_idx = parent_idx;
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	d->next = sc->live;
	if (sc->live)
		sc->live->prev = d;
	sc->live = d;
	return d;
}

static void dnode_free(scanner *sc, dnode *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		sc->live = d->next;
	if (d->next)
		d->next->prev = d->prev;
	sb_tree_release(&d->tree);
	free(d);
}

/* Encodes and stores every finished directory from d upwards. */
static int finalize(scanner *sc, dnode *d)
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
		int r = sb_tree_save(sc->store, &d->tree, &id, sc->err);
		dnode *p = d->parent;
		if (r < 0) {
			if (p)
				sb_error_prefix(sc->err, "directory '%s'",
						qpath(sc, p->tree.v[d->parent_idx].name,
						      p->tree.v[d->parent_idx].name_len));
			return fail(sc, r);
		}
		size_t idx = d->parent_idx;
		dnode_free(sc, d);
		if (!p) {
			sc->root = id;
			sc->have_root = true;
			return 0;
		}
		p->tree.v[idx].id = id;
		p->pending--;
		d = p;
	}
	return 0;
}

static void job_free(job *j)
{
	free(j->path);
	free(j->err);
	free(j);
}

/* The walker's side of a finished job. */
static int complete(scanner *sc, job *j)
{
	int r = 0;
	sb_tree_entry *e = &j->d->tree.v[j->idx];
	if (j->r < 0) {
		if (j->r != -ECANCELED) {
			if (j->err)
				*sc->err = *j->err;
			fail(sc, j->r);
		}
		e->type = SB_FT_NONE;
	} else if (j->gone) {
		warn(sc, j->path, j->gone_why);
		e->type = SB_FT_NONE;
		sc->stats.files--;
		sc->stats.bytes -= (uint64_t)j->walk_size;
	} else {
		e->id = j->id;
		e->size = j->size;
		e->mode = (uint32_t)j->st.st_mode & 07777;
		e->mtime_ns = sb_scan__ts_ns(&j->st.st_mtim);
		sc->stats.bytes += j->size - (uint64_t)j->walk_size;
		sc->stats.files_hashed++;
		sc->stats.bytes_hashed += j->bytes_read;
		sc->stats.rereads += j->reads - 1;
		if (!j->stable) {
			warn(sc, j->path, "changed while being read; stored as last read");
		} else if (sc->o->cache) {
			sb_statcache_key key;
			sb_statcache_key_from_stat(&j->st, &key);
			r = sb_statcache_record(sc->o->cache, j->path, j->path_len, &key, &j->id);
			if (r < 0)
				fail(sc, r);
		}
	}
	dnode *d = j->d;
	d->pending--;
	job_free(j);
	if (r >= 0 && sc->r >= 0)
		r = finalize(sc, d);
	return r;
}

static void progress(scanner *sc)
{
	if (!sc->o->progress)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (sb_scan__ts_ns(&now) - sc->last_progress < NSEC / 10)
		return;
	sc->last_progress = sb_scan__ts_ns(&now);
	sc->o->progress(sc->o->userdata, &sc->stats);
}

/* Waits (when block) for finished jobs and completes them all. */
static int drain(scanner *sc, bool block)
{
	pthread_mutex_lock(&sc->mu);
	while (block && !sc->done_head && sc->inflight > 0) {
		/* wake now and then so progress keeps coming during long hashes */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += NSEC / 10;
		if (until.tv_nsec >= NSEC) {
			until.tv_sec++;
			until.tv_nsec -= NSEC;
		}
		if (pthread_cond_timedwait(&sc->done_cv, &sc->mu, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&sc->mu);
			progress(sc);
			pthread_mutex_lock(&sc->mu);
		}
	}
	job *list = sc->done_head;
	sc->done_head = NULL;
	pthread_mutex_unlock(&sc->mu);
	size_t n = 0;
	while (list) {
		job *next = list->next;
		complete(sc, list);
		list = next;
		n++;
	}
	if (n) {
		pthread_mutex_lock(&sc->mu);
		sc->inflight -= n;
		pthread_mutex_unlock(&sc->mu);
	}
	return sc->r;
}

static void queue(scanner *sc, job *j)
{
	pthread_mutex_lock(&sc->mu);
	j->next = NULL;
	if (sc->q_tail)
		sc->q_tail->next = j;
	else
		sc->q_head = j;
	sc->q_tail = j;
	sc->inflight++;
	pthread_cond_signal(&sc->work_cv);
	pthread_mutex_unlock(&sc->mu);
}

/* All names of the directory at fd, sorted by bytes, into f. */
static int read_names(scanner *sc, int fd, frame *f)
{
	int r = sb_dirnames_read(fd, &f->names);
	if (r < 0 && r != -ENOMEM)
		return sb_error_errno(sc->err, -r, "read directory '%s'",
				      qpath(sc, sc->path.data, sc->path.len));
	f->next = 0;
	return r;
}

static int open_dir_at(int dir_fd, const char *name)
{
	int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
	int fd = openat(dir_fd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dir_fd, name, flags);
	return fd;
}

static int push(scanner *sc, int fd, dnode *d)
{
	if (sc->depth > SB_TREE_MAX_DEPTH) {
		close(fd);
		return sb_error_set(sc->err, ELOOP,
				    "'%.200s...' nests deeper than %d directories; snapbox refuses "
				    "trees that deep (exclude it with --exclude or .snapboxignore)",
				    sc->path.data, SB_TREE_MAX_DEPTH);
	}
	if (sc->depth == sc->stack_cap) {
		size_t cap = sc->stack_cap ? sc->stack_cap * 2 : 64;
		frame *s = reallocarray(sc->stack, cap, sizeof(*s));
		if (!s) {
			close(fd);
			return -ENOMEM;
		}
		sc->stack = s;
		sc->stack_cap = cap;
	}
	frame *f = &sc->stack[sc->depth];
	memset(f, 0, sizeof(*f));
	f->d = d;
	f->path_len = sc->path.len;
	f->ref = dirref_new(sc, fd);
	if (!f->ref) {
		close(fd);
		return -ENOMEM;
	}
	sc->depth++;
	return read_names(sc, fd, f);
}

static void frame_release(scanner *sc, frame *f)
{
	sb_scan__dirref_unref(sc, f->ref);
	f->ref = NULL;
	sb_dirnames_release(&f->names);
}

/* Leaves the top directory: its walk is over. */
static int pop(scanner *sc)
{
	frame *f = &sc->stack[sc->depth - 1];
	int r = 0;
	if (sc->depth >= 2 && !sc->stack[sc->depth - 2].ref) {
		frame *p = &sc->stack[sc->depth - 2];
		int fd = open_dir_at(f->ref->fd, "..");
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = sb_error_errno(sc->err, errno, "reopen parent of '%s'",
					   qpath(sc, sc->path.data, f->path_len));
		} else if (st.st_dev != p->d->dev || st.st_ino != p->d->ino) {
			r = sb_error_set(sc->err, ESTALE, "directory '%s' moved during the scan",
					 qpath(sc, sc->path.data, p->path_len));
		} else {
			p->ref = dirref_new(sc, fd);
			fd = -1;
			if (!p->ref)
				r = -ENOMEM;
		}
		if (fd >= 0)
			close(fd);
	}
	dnode *d = f->d;
	frame_release(sc, f);
	sc->depth--;
	if (r < 0)
		return fail(sc, r);
	d->walked = true;
	return finalize(sc, d);
}

/* Before opening one more directory: keep within the fd budget. */
static int make_room(scanner *sc)
{
	while (atomic_load(&sc->open_dirs) >= sc->budget && sc->inflight > 0) {
		int r = drain(sc, true);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i + 1 < sc->depth && atomic_load(&sc->open_dirs) >= sc->budget; i++) {
		if (sc->stack[i].ref) {
			sb_scan__dirref_unref(sc, sc->stack[i].ref);
			sc->stack[i].ref = NULL;
		}
	}
	return 0;
}

static int visit_file(scanner *sc, frame *f, const char *name, const struct stat *st)
{
	dnode *d = f->d;
	sb_tree_entry *e = sb_tree_add(&d->tree, name, strlen(name));
	if (!e)
		return -ENOMEM;
	e->type = SB_FT_REG;
	e->mode = (uint32_t)st->st_mode & 07777;
	e->size = (uint64_t)st->st_size;
	e->mtime_ns = sb_scan__ts_ns(&st->st_mtim);
	sc->stats.files++;
	sc->stats.bytes += (uint64_t)st->st_size;
	if (sc->o->cache) {
		sb_statcache_key key;
		sb_statcache_key_from_stat(st, &key);
		if (sb_statcache_lookup(sc->o->cache, sc->path.data, sc->path.len, &key, &e->id)) {
			sc->stats.cache_hits++;
			return sb_statcache_record(sc->o->cache, sc->path.data, sc->path.len, &key,
						   &e->id);
		}
	}
	size_t idx = d->tree.n - 1;
	while (sc->inflight >= MAX_INFLIGHT) {
		int r = drain(sc, true);
		if (r < 0)
			return r;
	}
	job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->path = malloc(sc->path.len + 1);
	if (!j->path) {
		free(j);
		return -ENOMEM;
	}
	memcpy(j->path, sc->path.data, sc->path.len + 1);
	j->path_len = sc->path.len;
	j->name_off = sc->path.len - strlen(name);
	j->walk_size = st->st_size;
	j->d = d;
	j->idx = idx;
	j->ref = f->ref;
	atomic_fetch_add(&f->ref->refs, 1);
	d->pending++;
	queue(sc, j);
	return 0;
}

static int visit_dir(scanner *sc, frame *f, const char *name, const struct stat *st)
{
	if (st->st_dev != f->d->dev && !(sc->o->flags & SB_SCAN_CROSS_MOUNTS)) {
		warn(sc, sc->path.data, "mount point of another filesystem: not entered");
		sc->stats.skipped++;
		return 0;
	}
	int r = make_room(sc);
	if (r < 0)
		return r;
	int fd = open_dir_at(f->ref->fd, name);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
			warn(sc, sc->path.data, "vanished or replaced during the scan; left out");
			return 0;
		}
		return sb_error_errno(sc->err, errno, "open directory '%s'",
				      qpath(sc, sc->path.data, sc->path.len));
	}
	struct stat fst;
	if (fstat(fd, &fst) < 0) {
		r = sb_error_errno(sc->err, errno, "stat '%s'",
				   qpath(sc, sc->path.data, sc->path.len));
		close(fd);
		return r;
	}
	if (fst.st_dev != f->d->dev && !(sc->o->flags & SB_SCAN_CROSS_MOUNTS)) {
		close(fd);
		warn(sc, sc->path.data, "mount point of another filesystem: not entered");
		sc->stats.skipped++;
		return 0;
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
	dnode *d = dnode_new(sc, parent, parent->tree.n - 1, &fst);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	parent->pending++;
	sc->stats.dirs++;
	return push(sc, fd, d); /* f is stale from here on */
}

static int visit_symlink(scanner *sc, frame *f, const char *name, const struct stat *st)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(f->ref->fd, name, target, sizeof(target));
	if (n < 0 && (errno == ENOENT || errno == EINVAL)) {
		warn(sc, sc->path.data, "vanished or replaced during the scan; left out");
		return 0;
	}
	if (n < 0)
		return sb_error_errno(sc->err, errno, "readlink '%s'",
				      qpath(sc, sc->path.data, sc->path.len));
	if (n == 0 || (size_t)n >= sizeof(target))
		return sb_error_set(sc->err, ENAMETOOLONG,
				    "symlink '%s': target length out of range",
				    qpath(sc, sc->path.data, sc->path.len));
	sb_id id;
	int r = sb_store_put(sc->store, SB_OBJ_BLOB, target, (size_t)n, &id, sc->err);
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
	sc->stats.symlinks++;
	return 0;
}

static int visit(scanner *sc, frame *f, const char *name)
{
	sb_buf_truncate(&sc->path, f->path_len);
	int r = 0;
	if (sc->path.len)
		r = sb_buf_putc(&sc->path, '/');
	if (r >= 0)
		r = sb_buf_puts(&sc->path, name);
	if (r < 0)
		return r;
	if (strlen(name) > 255) {
		/* some filesystems (ntfs3, cifs) hand out longer names; trees cannot hold them */
		warn(sc, sc->path.data, "name longer than 255 bytes: skipped");
		sc->stats.skipped++;
		return 0;
	}
	struct stat st;
	if (fstatat(f->ref->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT) {
			warn(sc, sc->path.data, "vanished during the scan");
			return 0;
		}
		return sb_error_errno(sc->err, errno, "stat '%s'",
				      qpath(sc, sc->path.data, sc->path.len));
	}
	if (sb_ignore_match(sc->o->ignore, sc->path.data, sc->path.len, S_ISDIR(st.st_mode))) {
		sc->stats.skipped++;
		return 0;
	}
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		return visit_file(sc, f, name, &st);
	case S_IFDIR:
		return visit_dir(sc, f, name, &st);
	case S_IFLNK:
		return visit_symlink(sc, f, name, &st);
	case S_IFIFO: {
		sb_tree_entry *e = sb_tree_add(&f->d->tree, name, strlen(name));
		if (!e)
			return -ENOMEM;
		e->type = SB_FT_FIFO;
		e->mode = (uint32_t)st.st_mode & 07777;
		e->mtime_ns = sb_scan__ts_ns(&st.st_mtim);
		sc->stats.fifos++;
		return 0;
	}
	case S_IFSOCK:
		warn(sc, sc->path.data, "socket: skipped");
		break;
	case S_IFCHR:
	case S_IFBLK:
		warn(sc, sc->path.data, "device node: skipped");
		break;
	default:
		warn(sc, sc->path.data, "unknown file type: skipped");
		break;
	}
	sc->stats.skipped++;
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

static int walk(scanner *sc, int root_fd)
{
	int fd = open_dir_at(root_fd, ".");
	if (fd < 0)
		return sb_error_errno(sc->err, errno, "open the directory to scan");
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return sb_error_errno(sc->err, errno, "stat the directory to scan");
	}
	dnode *root = dnode_new(sc, NULL, 0, &st);
	if (!root) {
		close(fd);
		return -ENOMEM;
	}
	int r = push(sc, fd, root);
	while (r >= 0 && sc->depth > 0) {
		r = drain(sc, false);
		if (r < 0)
			break;
		progress(sc);
		frame *f = &sc->stack[sc->depth - 1];
		if (f->next == f->names.n)
			r = pop(sc);
		else
			r = visit(sc, f, sb_dirnames_name(&f->names, f->next++));
	}
	if (r < 0)
		fail(sc, r);
	while (sc->inflight > 0)
		drain(sc, true);
	return sc->r;
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
	sc->err = err;
	pthread_mutex_init(&sc->mu, NULL);
	pthread_cond_init(&sc->work_cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&sc->abort, false);
	atomic_init(&sc->open_dirs, 0);
	int n = sc->o->threads > 0 ? sc->o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	n = MAX(1, MIN(n, 64));
	sc->budget = fd_budget(n);
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
	if (r >= 0)
		r = walk(sc, root_fd);
	else
		fail(sc, r);

	pthread_mutex_lock(&sc->mu);
	sc->stop = true;
	pthread_cond_broadcast(&sc->work_cv);
	pthread_mutex_unlock(&sc->mu);
	for (int i = 0; i < sc->n_threads; i++)
		pthread_join(sc->threads[i], NULL);
	while (sc->depth > 0)
		frame_release(sc, &sc->stack[--sc->depth]);
	while (sc->live)
		dnode_free(sc, sc->live);
	free(sc->stack);
	free(sc->threads);
	sb_buf_release(&sc->path);
	if (r >= 0 && !sc->have_root)
		r = sb_error_set(err, EIO, "scan ended without a root tree");
	if (r >= 0) {
		*ret_root = sc->root;
		if (ret_stats)
			*ret_stats = sc->stats;
	}
	pthread_mutex_destroy(&sc->mu);
	pthread_cond_destroy(&sc->work_cv);
	pthread_cond_destroy(&sc->done_cv);
	free(sc);
	return r;
}

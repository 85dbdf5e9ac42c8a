/* SPDX-License-Identifier: MIT */
/*
 * The restore's file writers: a few threads that write files, symlinks and
 * fifos (sb_export_entry) while the walk goes on, because each write mostly
 * waits on the filesystem — creating, swapping and freeing inodes — rather
 * than on the CPU.
 *
 * A directory being filled (sb_restore__dir) lives until its last reference
 * is dropped:
 *
 *   open ──walker leaves it──> walked ──last queued write lands──> finished
 *     (each queued write holds a reference)   (mode and mtime set, fd closed)
 *
 * Whoever drops the last reference — the walker leaving the directory or a
 * writer finishing the last write into it — sets its mode and mtime, so no
 * later write into it changes its mtime again, and a read-only directory is
 * made read-only only once nothing more is written into it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export.h"
#include "fileio.h"
#include "restore-internal.h"
#include "workers.h"

#define MAX_QUEUED 256 /* writes queued or running */

typedef struct job {
	struct job *next;
	sb_restore__dir *dir;
	sb_tree_entry e; /* owns its name */
	sb_export_expect had;
	char *path;
} job;

struct sb_restore__writers {
	sb_store *store;
	pthread_mutex_t mu; /* everything below, and every dir's refs */
	pthread_cond_t work_cv, room_cv;
	job *head, *tail;
	size_t queued; /* queued or running */
	bool stop;
	int r; /* the first failure; once set, what is queued is skipped */
	sb_error err;
	uint64_t written;
	pthread_t *threads;
	int n;
};

sb_restore__dir *sb_restore__dir_new(int fd, bool own_fd, const sb_tree_entry *self,
				     const char *path)
{
	sb_restore__dir *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->fd = fd;
	d->own_fd = own_fd;
	d->refs = 1;
	d->path = strdup(path);
	if (!d->path || (self && sb_tree_entry_copy(self, &d->self) < 0)) {
		free(d->path);
		free(d);
		return NULL;
	}
	d->finish = self != NULL;
	return d;
}

/*
 * Whether d already has its final mode and mtime: a directory the walk only
 * passed through. Setting them again would change nothing but its ctime,
 * and a new ctime makes the next scan list the directory again.
 */
static bool dir_attrs_match(const sb_restore__dir *d)
{
	struct stat st;
	return fstat(d->fd, &st) == 0 && (st.st_mode & 07777) == d->self.mode &&
	       sb_ns_from_timespec(&st.st_mtim) == d->self.mtime_ns;
}

/*
 * The last reference is gone. Any thread. err may be NULL. Only a directory
 * whose walk and writes all went well (ok, and no write of the pool failed)
 * gets its final mode and mtime: a half-restored one must not turn
 * read-only or look finished; the restore run again finishes it.
 */
static int dir_finish(sb_restore__writers *w, sb_restore__dir *d, bool ok, sb_error *err)
{
	pthread_mutex_lock(&w->mu);
	ok = ok && w->r >= 0;
	pthread_mutex_unlock(&w->mu);
	int r = ok && d->finish && !dir_attrs_match(d)
		    ? sb_export_dir_finish(d->fd, &d->self, d->path, err)
		    : 0;
	if (d->own_fd)
		close(d->fd);
	sb_tree_entry_release(&d->self);
	free(d->path);
	free(d);
	return r;
}

/* Drops one reference; returns d when the caller must finish it. */
static sb_restore__dir *dir_unref(sb_restore__writers *w, sb_restore__dir *d)
{
	pthread_mutex_lock(&w->mu);
	bool last = --d->refs == 0;
	pthread_mutex_unlock(&w->mu);
	return last ? d : NULL;
}

static void run_job(sb_restore__writers *w, job *j)
{
	sb_error e = SB_ERROR_INIT;
	int r = 0;
	pthread_mutex_lock(&w->mu);
	bool skip = w->r < 0;
	pthread_mutex_unlock(&w->mu);
	/*
	 * A file smaller than a sparse block can hold no hole: writing it
	 * plainly saves the ftruncate that ends a sparse write.
	 */
	sb_export_flags xf = SB_EXPORT_REPLACE | (j->e.size < 4096 ? SB_EXPORT_NO_SPARSE : 0);
	if (!skip)
		r = sb_export_entry(w->store, j->dir->fd, &j->e, &j->had, j->path, xf, NULL, NULL,
				    &e);
	sb_restore__dir *fin = dir_unref(w, j->dir);
	if (fin) {
		int fr = dir_finish(w, fin, r >= 0 && !skip, r < 0 ? NULL : &e);
		if (r >= 0)
			r = fr;
	}
	pthread_mutex_lock(&w->mu);
	if (r < 0 && w->r >= 0) {
		w->r = r;
		w->err = e;
	} else if (r >= 0 && !skip) {
		w->written++;
	}
	w->queued--;
	pthread_cond_signal(&w->room_cv);
	pthread_mutex_unlock(&w->mu);
	sb_tree_entry_release(&j->e);
	free(j->path);
	free(j);
}

static void *writer_main(void *arg)
{
	sb_restore__writers *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->work_cv, &w->mu);
		if (!w->head)
			break;
		job *j = w->head;
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->mu);
		run_job(w, j);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int sb_restore__writers_new(sb_store *s, int threads, sb_restore__writers **ret, sb_error *err)
{
	if (threads <= 0) {
		/* Writes wait on the filesystem more than they compute: overlap a few. */
		threads = MAX(2, MIN(2 * sb_workers_count(0), 8));
	}
	sb_restore__writers *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->store = s;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work_cv, NULL);
	pthread_cond_init(&w->room_cv, NULL);
	if (threads > 1 && !(w->threads = calloc((size_t)threads, sizeof(pthread_t)))) {
		(void)sb_restore__writers_free(w, 0, NULL, NULL);
		return -ENOMEM;
	}
	for (int i = 0; threads > 1 && i < threads; i++) {
		int e = pthread_create(&w->threads[i], NULL, writer_main, w);
		if (e && w->n == 0) {
			(void)sb_restore__writers_free(w, 0, NULL, NULL);
			return sb_error_errno(err, e, "start a writer thread");
		}
		if (e)
			break; /* fewer writers will do */
		w->n++;
	}
	*ret = w;
	return 0;
}

int sb_restore__writers_free(sb_restore__writers *w, int ret, uint64_t *ret_written, sb_error *err)
{
	pthread_mutex_lock(&w->mu);
	if (ret < 0 && w->r >= 0)
		w->r = ret; /* the walk failed: skip what is still queued */
	w->stop = true;
	pthread_cond_broadcast(&w->work_cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	if (ret >= 0 && w->r < 0) {
		ret = w->r;
		if (err)
			*err = w->err;
	}
	if (ret_written)
		*ret_written = w->written;
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work_cv);
	pthread_cond_destroy(&w->room_cv);
	free(w->threads);
	free(w);
	return ret;
}

int sb_restore__write(sb_restore__writers *w, sb_restore__dir *d, const sb_tree_entry *e,
		      const sb_tree_entry *had, const char *path, sb_error *err)
{
	job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->dir = d;
	j->had = sb_export_expect_entry(had);
	j->path = strdup(path);
	if (!j->path || sb_tree_entry_copy(e, &j->e) < 0) {
		free(j->path);
		free(j);
		return -ENOMEM;
	}
	pthread_mutex_lock(&w->mu);
	d->refs++;
	w->queued++;
	if (w->n == 0) {
		pthread_mutex_unlock(&w->mu);
		run_job(w, j); /* no threads: write it now */
		pthread_mutex_lock(&w->mu);
	} else {
		while (w->queued > MAX_QUEUED && w->r >= 0)
			pthread_cond_wait(&w->room_cv, &w->mu);
		if (w->tail)
			w->tail->next = j;
		else
			w->head = j;
		w->tail = j;
		pthread_cond_signal(&w->work_cv);
	}
	int r = w->r;
	if (r < 0 && err)
		*err = w->err;
	pthread_mutex_unlock(&w->mu);
	return r < 0 ? r : 0;
}

int sb_restore__dir_done(sb_restore__writers *w, sb_restore__dir *d, int ret, sb_error *err)
{
	sb_restore__dir *fin = dir_unref(w, d);
	if (!fin)
		return ret;
	int r = dir_finish(w, fin, ret >= 0, ret < 0 ? NULL : err);
	return ret < 0 ? ret : r;
}

/* SPDX-License-Identifier: MIT */
/*
 * The worker threads of the scanner: open a queued file by its directory's
 * fd, store its content, and report back to the walker (scan.c); or walk a
 * subtree the walker handed over.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "content.h"
#include "scan-internal.h"

void sb_scan__dirref_unref(dirref *ref)
{
	if (ref && atomic_fetch_sub(&ref->refs, 1) == 1) {
		close(ref->fd);
		atomic_fetch_sub(ref->count, 1);
		free(ref);
	}
}

static void job_error(job *j, const sb_error *e, int r)
{
	j->r = r;
	j->err = malloc(sizeof(*j->err));
	if (j->err) {
		*j->err = *e;
		char q[512];
		sb_error_prefix(j->err, "'%s'", sb_quote(q, sizeof(q), j->path, j->path_len));
	}
}

/*
 * Hasher thread. A file that changes while it is read is read again; the
 * id is always the one of the bytes actually stored, and only a read that saw
 * no change before and after (stable) may enter the stat cache.
 */
void sb_scan__hash(scanner *sc, job *j)
{
	sb_error e = SB_ERROR_INIT;
	if (atomic_load(&sc->abort)) {
		j->r = -ECANCELED;
		return;
	}
	const char *name = j->path + j->name_off;
	int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
	int fd = openat(j->ref->fd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(j->ref->fd, name, flags);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP || errno == ENXIO || errno == ENODEV) {
			j->gone = true;
			j->gone_why = "vanished or replaced during the scan; left out";
		} else {
			job_error(j, &e, sb_error_errno(&e, errno, "open"));
		}
		return;
	}
	for (unsigned attempt = 0; attempt < MAX_READS; attempt++) {
		struct stat before, after;
		if (fstat(fd, &before) < 0) {
			job_error(j, &e, sb_error_errno(&e, errno, "stat"));
			break;
		}
		if (!S_ISREG(before.st_mode)) {
			j->gone = true;
			j->gone_why = "replaced by another file type during the scan; left out";
			break;
		}
		sb_id id;
		uint64_t n = 0;
		int r = sb_content_store_fd_stat(sc->store, fd, &before, &id, &n, &e);
		if (r < 0) {
			job_error(j, &e, r);
			break;
		}
		j->reads++;
		j->bytes_read += n;
		j->id = id;
		j->size = n;
		j->st = before;
		if (fstat(fd, &after) < 0) {
			job_error(j, &e, sb_error_errno(&e, errno, "stat"));
			break;
		}
		if (n == (uint64_t)before.st_size && sb_stat_unchanged(&before, &after)) {
			j->stable = true;
			break;
		}
		if (atomic_load(&sc->abort))
			break;
	}
	close(fd);
}

job *sb_scan__dequeue(scanner *sc)
{
	job *j = sc->q_head;
	sc->q_head = j->next;
	if (!sc->q_head)
		sc->q_tail = NULL;
	sc->queued--;
	return j;
}

void sb_scan__run(scanner *sc, job *j, unsigned level)
{
	if (j->tree) {
		sb_scan__walk_subtree(sc, j, level);
	} else {
		sb_scan__hash(sc, j);
		sb_scan__dirref_unref(j->ref);
		j->ref = NULL;
	}
	pthread_mutex_lock(&sc->mu);
	if (j->owner) {
		j->next = j->owner->done_head;
		j->owner->done_head = j;
		pthread_cond_broadcast(&sc->child_cv);
	} else {
		j->next = sc->done_head;
		sc->done_head = j;
		if (++sc->n_done >= sc->wake_at)
			pthread_cond_signal(&sc->done_cv);
	}
	pthread_mutex_unlock(&sc->mu);
}

void *sb_scan__worker(void *arg)
{
	scanner *sc = arg;
	pthread_mutex_lock(&sc->mu);
	for (;;) {
		sc->idle++;
		while (!sc->q_head && !sc->stop)
			pthread_cond_wait(&sc->work_cv, &sc->mu);
		sc->idle--;
		if (!sc->q_head)
			break;
		job *j = sb_scan__dequeue(sc);
		pthread_mutex_unlock(&sc->mu);
		sb_scan__run(sc, j, 0);
		pthread_mutex_lock(&sc->mu);
	}
	pthread_mutex_unlock(&sc->mu);
	return NULL;
}

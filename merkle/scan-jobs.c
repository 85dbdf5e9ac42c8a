/* SPDX-License-Identifier: MIT */
/*
 * The walkers' side of the scanner's queue (scan.c has the design): jobs
 * queued and subtrees handed over, and the finished ones completed into the
 * directories that wait for them — the caller's walker from the shared done
 * list, a nested walk from its own.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scan-internal.h"

void sb_scan__job_free(job *j)
{
	if (j->tree_fd >= 0)
		close(j->tree_fd);
	if (j->nested) {
		sb_scan__walker_release(j->nested);
		free(j->nested);
	}
	free(j->path);
	free(j->err);
	free(j);
}

static void add_stats(sb_scan_stats *to, const sb_scan_stats *s)
{
	to->files += s->files;
	to->dirs += s->dirs;
	to->symlinks += s->symlinks;
	to->fifos += s->fifos;
	to->skipped += s->skipped;
	to->bytes += s->bytes;
	to->files_hashed += s->files_hashed;
	to->bytes_hashed += s->bytes_hashed;
	to->cache_hits += s->cache_hits;
	to->rereads += s->rereads;
	to->dirs_listed += s->dirs_listed;
}

/* The walker's side of a finished job. */
int sb_scan__complete(walker *w, job *j)
{
	int r = 0;
	sb_tree_entry *e = &j->d->tree.v[j->idx];
	if (j->tree && j->nested) {
		const sb_buf *b = &j->nested->warnings;
		for (size_t at = 0; at < b->len;) {
			const char *path = b->data + at;
			const char *why = path + strlen(path) + 1;
			sb_scan__warn(w, path, why);
			at = (size_t)(why + strlen(why) + 1 - b->data);
		}
		if (j->r >= 0)
			add_stats(&w->stats, &j->nested->stats);
	}
	if (j->r < 0) {
		/* the failure that set off the cancellations is the one to report */
		if (j->r != -ECANCELED && (w->r >= 0 || w->r == -ECANCELED)) {
			if (j->err)
				*w->err = *j->err;
			w->r = j->r;
			atomic_store(&w->sc->abort, true);
		}
		e->type = SB_FT_NONE;
	} else if (j->tree) {
		e->id = j->id;
	} else if (j->gone) {
		sb_scan__warn(w, j->path, j->gone_why);
		e->type = SB_FT_NONE;
		w->stats.files--;
		w->stats.bytes -= (uint64_t)j->walk_size;
	} else {
		e->id = j->id;
		e->size = j->size;
		e->mode = (uint32_t)j->st.st_mode & 07777;
		e->mtime_ns = sb_scan__ts_ns(&j->st.st_mtim);
		w->stats.bytes += j->size - (uint64_t)j->walk_size;
		w->stats.files_hashed++;
		w->stats.bytes_hashed += j->bytes_read;
		w->stats.rereads += j->reads - 1;
		if (!j->stable) {
			sb_scan__warn(w, j->path, "changed while being read; stored as last read");
		} else if (w->sc->o->cache) {
			sb_statcache_key key;
			sb_statcache_key_from_stat(&j->st, &key);
			r = sb_statcache_record(w->sc->o->cache, j->path, j->path_len, &key,
						&j->id);
			if (r < 0)
				sb_scan__fail(w, r);
		}
	}
	dnode *d = j->d;
	d->pending--;
	sb_scan__job_free(j);
	if (r >= 0 && w->r >= 0)
		r = sb_scan__finalize(w, d);
	return r;
}

void sb_scan__progress(walker *w)
{
	if (w->nested || !w->sc->o->progress)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (sb_scan__ts_ns(&now) - w->sc->last_progress < SB_NSEC / 10)
		return;
	w->sc->last_progress = sb_scan__ts_ns(&now);
	w->sc->o->progress(w->sc->o->userdata, &w->stats);
}

/*
 * A nested walk's drain: completes the subtrees it handed over that are
 * done, first waiting (wait) for one. While it waits it runs queued jobs
 * itself, so no thread idles on another's walk and none can wait forever:
 * what it waits for is queued (it runs it) or running (and, being deeper,
 * finishes).
 */
static int drain_own(walker *w, bool wait)
{
	scanner *sc = w->sc;
	if (w->outstanding == 0)
		return w->r;
	pthread_mutex_lock(&sc->mu);
	while (wait && !w->done_head) {
		if (sc->q_head) {
			job *j = sb_scan__dequeue(sc);
			pthread_mutex_unlock(&sc->mu);
			sb_scan__run(sc, j, w->level + 1);
			pthread_mutex_lock(&sc->mu);
		} else {
			pthread_cond_wait(&sc->child_cv, &sc->mu);
		}
	}
	job *list = w->done_head;
	w->done_head = NULL;
	pthread_mutex_unlock(&sc->mu);
	while (list) {
		job *next = list->next;
		w->outstanding--;
		sb_scan__complete(w, list);
		list = next;
	}
	return w->r;
}

/*
 * Completes every finished job, first waiting (want > 0) until want of them,
 * or all those in flight, have finished.
 */
int sb_scan__drain(walker *w, size_t want)
{
	if (w->nested)
		return drain_own(w, want > 0);
	pthread_mutex_lock(&w->sc->mu);
	/* Only the walker lowers inflight, so need holds while it waits. */
	size_t need = MIN(want, w->sc->inflight);
	if (w->sc->n_done < need)
		w->sc->wake_at = need;
	while (w->sc->n_done < need) {
		/* wake now and then so progress keeps coming during long hashes */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += SB_NSEC / 10;
		if (until.tv_nsec >= SB_NSEC) {
			until.tv_sec++;
			until.tv_nsec -= SB_NSEC;
		}
		if (pthread_cond_timedwait(&w->sc->done_cv, &w->sc->mu, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&w->sc->mu);
			sb_scan__progress(w);
			pthread_mutex_lock(&w->sc->mu);
		}
	}
	job *list = w->sc->done_head;
	w->sc->done_head = NULL;
	w->sc->n_done = 0;
	w->sc->wake_at = SIZE_MAX;
	pthread_mutex_unlock(&w->sc->mu);
	size_t n = 0;
	while (list) {
		job *next = list->next;
		sb_scan__complete(w, list);
		list = next;
		n++;
	}
	if (n) {
		pthread_mutex_lock(&w->sc->mu);
		w->sc->inflight -= n;
		pthread_mutex_unlock(&w->sc->mu);
	}
	return w->r;
}

void sb_scan__queue(walker *w, job *j)
{
	if (w->nested) {
		j->owner = w;
		w->outstanding++;
	}
	pthread_mutex_lock(&w->sc->mu);
	j->next = NULL;
	if (w->sc->q_tail)
		w->sc->q_tail->next = j;
	else
		w->sc->q_head = j;
	w->sc->q_tail = j;
	if (!w->nested)
		w->sc->inflight++;
	w->sc->queued++;
	pthread_cond_signal(&w->sc->work_cv);
	pthread_mutex_unlock(&w->sc->mu);
}

/*
 * Whether to give a directory to a worker rather than enter it: when one
 * is idle. A re-scan of an unchanged tree is nearly all metadata system
 * calls, so the walk itself is spread over the cores this way; and since a
 * walk handed over may hand over in turn, a worker that finished its part
 * takes a share of the largest one still going (node_modules, say).
 */
bool sb_scan__want_helper(walker *w)
{
	scanner *sc = w->sc;
	if (!sc->share || w->level >= MAX_HELP_LEVEL)
		return false;
	pthread_mutex_lock(&sc->mu);
	bool r = (size_t)sc->idle > sc->queued && (w->nested || sc->inflight < MAX_INFLIGHT);
	pthread_mutex_unlock(&sc->mu);
	return r;
}

int sb_scan__hand_over(walker *w, dnode *parent, size_t idx, int fd, bool path_only)
{
	job *j = calloc(1, sizeof(*j));
	if (!j) {
		close(fd);
		return -ENOMEM;
	}
	j->tree = true;
	j->tree_fd = fd;
	j->tree_path_only = path_only;
	j->path = strndup(w->path.data, w->path.len);
	if (!j->path) {
		sb_scan__job_free(j);
		return -ENOMEM;
	}
	j->path_len = w->path.len;
	j->depth0 = w->depth0 + w->depth;
	j->d = parent;
	j->idx = idx;
	sb_scan__queue(w, j);
	return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Private to the scanner (scan.c: the walking thread; scan-hash.c: the
 * hashing threads). See the top of scan.c for how they cooperate.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "dirnames.h"
#include "error.h"
#include "fileio.h"
#include "hash.h"
#include "scan.h"
#include "statcache.h"
#include "store.h"
#include "tree.h"

#define MAX_READS    4	  /* a file still changing after this is stored as last read */
#define MAX_INFLIGHT 1024 /* jobs queued, running or awaiting the walker */
/*
 * Finished jobs the walker waits for when it must wait: woken for each one,
 * it would cost two context switches per file.
 */
#define DRAIN_BATCH 64
/*
 * A nested walk that waits for the subtrees it handed over runs queued jobs
 * meanwhile, each a level above it; a walk at this level hands nothing over,
 * so it never waits, and a thread nests at most this many walks.
 */
#define MAX_HELP_LEVEL 4

/* A directory fd shared by the walker's frame and the jobs queued from it. */
typedef struct dirref {
	int fd;
	bool path_only; /* O_PATH: for *at calls, not for reading (read_names reopens it) */
	atomic_uint refs;
	atomic_size_t *count; /* the open_dirs it is counted in */
} dirref;

/* A directory whose tree is being assembled. Its walker's thread only. */
typedef struct dnode {
	struct dnode *parent, *prev, *next; /* prev/next: every live dnode, for teardown */
	size_t parent_idx;		    /* our entry in parent->tree */
	sb_tree tree;
	size_t pending; /* entries without an id yet */
	bool walked;	/* all names visited */
	dev_t dev;
	ino_t ino;
	bool cached;	       /* in the stat cache as cdir */
	sb_statcache_dir cdir; /* for its tree id */
} dnode;

typedef struct walker walker;

/*
 * One file to hash, or one subtree to walk (tree). The walker fills the
 * first part, a worker the rest.
 */
typedef struct job {
	struct job *next;
	dnode *d;
	size_t idx;
	walker *owner; /* a nested walk that handed this subtree over; NULL: the caller's */
	dirref *ref;   /* file: its directory */
	char *path;    /* relative, NUL-terminated; the name is its tail */
	size_t path_len, name_off;
	off_t walk_size;
	bool tree;	     /* walk the directory at tree_fd instead */
	int tree_fd;	     /* owned by the job */
	bool tree_path_only; /* tree_fd is O_PATH */
	size_t depth0;	     /* tree: depth of that directory below the root */
	walker *nested;	     /* tree: its walk, results and buffered warnings */
	/* results */
	int r;
	sb_error *err; /* with r < 0, when there is a message */
	bool gone;     /* vanished or replaced: leave it out */
	const char *gone_why;
	bool stable; /* the last read saw no change */
	struct stat st;
	sb_id id;
	uint64_t size, bytes_read;
	unsigned reads;
} job;

typedef struct frame {
	dnode *d;
	dirref *ref;	   /* NULL while closed to save fds (never for the top frame) */
	sb_dirnames names; /* sorted */
	size_t next;	   /* the next name to visit */
	size_t path_len;   /* this directory's path in walker.path */
} frame;

typedef struct scanner scanner;

/*
 * One depth-first walk: the caller's (main), or a worker's walk of a subtree
 * handed to it (nested), which hashes its files itself, keeps its warnings
 * for the caller's thread to deliver, and may hand subtrees of its own over.
 */
struct walker {
	scanner *sc;
	bool nested;
	unsigned level;	    /* nested: walks below it on its thread (MAX_HELP_LEVEL) */
	size_t outstanding; /* nested: subtrees handed over, not yet completed */
	job *done_head;	    /* nested: those finished, under sc->mu */
	sb_error *err;
	sb_scan_stats stats;
	int r;
	frame *stack;
	size_t depth, stack_cap;
	size_t depth0; /* of the walk's top directory below the scan's root */
	sb_buf path;   /* nested: starts with the subtree's own path */
	dnode *live;
	sb_id root;
	bool have_root;
	atomic_size_t own_open; /* nested: its directory fds */
	atomic_size_t *open_dirs;
	size_t budget;
	sb_buf warnings; /* nested: "path\0why\0" records */
	char qbuf[512];
};

struct scanner {
	sb_store *store;
	const sb_scan_opts *o;

	pthread_mutex_t mu; /* the two lists and the counts below, idle, stop */
	pthread_cond_t work_cv, done_cv;
	pthread_cond_t child_cv; /* a subtree a nested walk handed over is done */
	job *q_head, *q_tail, *done_head;
	size_t inflight, queued;
	size_t n_done;	/* jobs on the done list */
	size_t wake_at; /* signal done_cv when n_done reaches this */
	int idle;	/* workers waiting for a job */
	bool stop;
	atomic_bool abort;
	atomic_size_t open_dirs; /* the main walker's and its file jobs' */
	size_t share;		 /* directory fds of one nested walk; 0: none */
	pthread_t *threads;
	int n_threads;
	int64_t last_progress;

	walker main;
};

static inline int64_t sb_scan__ts_ns(const struct timespec *ts)
{
	return sb_ns_from_timespec(ts);
}

/* ---- scan.c: the walk ---- */

/* Records r as w's failure unless it has one, and stops every walk. Returns r. */
int sb_scan__fail(walker *w, int r);

/* A warning about path: given to the caller's callback now, or kept by a nested walk. */
void sb_scan__warn(walker *w, const char *path, const char *why);

/* Encodes and stores every finished directory from d upwards. */
int sb_scan__finalize(walker *w, dnode *d);

/* Frees what w holds (frames, directory nodes, buffers); not w itself. */
void sb_scan__walker_release(walker *w);

/* ---- scan-jobs.c: the queue, the walkers' side ---- */

void sb_scan__job_free(job *j);

/* Queues j: for a worker, or for anyone to run (a nested walk's). */
void sb_scan__queue(walker *w, job *j);

/*
 * Whether to give a directory to a worker rather than enter it; then
 * sb_scan__hand_over queues it (fd taken) as the entry idx of parent.
 */
bool sb_scan__want_helper(walker *w);
int sb_scan__hand_over(walker *w, dnode *parent, size_t idx, int fd, bool path_only);

/* The walker's side of a finished job: its entry filled in, its directory finalized. */
int sb_scan__complete(walker *w, job *j);

/*
 * Completes every finished job of w, first waiting (want > 0) until want of
 * them, or all those in flight, have finished. Returns w->r.
 */
int sb_scan__drain(walker *w, size_t want);

/* The caller's progress callback, at most every 100 ms; the caller's walker only. */
void sb_scan__progress(walker *w);

/* ---- scan-hash.c: the workers ---- */

/* Drops one reference; the last one closes the fd. Any thread. */
void sb_scan__dirref_unref(dirref *ref);

/* Reads and stores a file job's content. Any thread. */
void sb_scan__hash(scanner *sc, job *j);

/* Walks a tree job's subtree as a walk at level (scan.c). A worker thread. */
void sb_scan__walk_subtree(scanner *sc, job *j, unsigned level);

/* Takes the first queued job; sc->mu held and the queue not empty. */
job *sb_scan__dequeue(scanner *sc);

/*
 * Runs a job taken off the queue (sc->mu not held), a tree job as a walk at
 * level, and hands it back to the walker that queued it.
 */
void sb_scan__run(scanner *sc, job *j, unsigned level);

/* A worker thread: takes jobs from sc's queue until sc->stop. */
void *sb_scan__worker(void *arg);

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
#include "store.h"
#include "tree.h"

#define MAX_READS    4	  /* a file still changing after this is stored as last read */
#define MAX_INFLIGHT 1024 /* jobs queued, running or awaiting the walker */
#define NSEC	     1000000000LL

/* A directory fd shared by the walker's frame and the jobs queued from it. */
typedef struct dirref {
	int fd;
	atomic_uint refs;
} dirref;

/* A directory whose tree is being assembled. Walker thread only. */
typedef struct dnode {
	struct dnode *parent, *prev, *next; /* prev/next: every live dnode, for teardown */
	size_t parent_idx;		    /* our entry in parent->tree */
	sb_tree tree;
	size_t pending; /* entries without an id yet */
	bool walked;	/* all names visited */
	dev_t dev;
	ino_t ino;
} dnode;

/* One file to hash. The walker fills the first part, a hasher the rest. */
typedef struct job {
	struct job *next;
	dnode *d;
	size_t idx;
	dirref *ref;
	char *path; /* relative, NUL-terminated; the name is its tail */
	size_t path_len, name_off;
	off_t walk_size;
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
	size_t path_len;   /* this directory's path in scanner.path */
} frame;

typedef struct scanner {
	sb_store *store;
	const sb_scan_opts *o;
	sb_error *err;
	sb_scan_stats stats;
	int r;

	pthread_mutex_t mu; /* the two lists, inflight, stop */
	pthread_cond_t work_cv, done_cv;
	job *q_head, *q_tail, *done_head;
	size_t inflight;
	bool stop;
	atomic_bool abort;
	atomic_size_t open_dirs;
	size_t budget;
	pthread_t *threads;
	int n_threads;

	frame *stack;
	size_t depth, stack_cap;
	sb_buf path;
	dnode *live;
	sb_id root;
	bool have_root;
	int64_t last_progress;
	char qbuf[512];
} scanner;

static inline int64_t sb_scan__ts_ns(const struct timespec *ts)
{
	return sb_ns_from_timespec(ts);
}

/* Drops one reference; the last one closes the fd. Any thread. */
void sb_scan__dirref_unref(scanner *sc, dirref *ref);

/* A hashing thread: takes jobs from sc's queue until sc->stop. */
void *sb_scan__worker(void *arg);

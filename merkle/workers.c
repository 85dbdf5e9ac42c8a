/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workers.h"

#define WORKERS_MAX 64

typedef struct pool pool;

typedef struct worker {
	pool *p;
	unsigned no;
} worker;

struct pool {
	size_t n;
	sb_workers_fn fn;
	void *ctx;
	atomic_size_t next;
	atomic_bool stop;
	pthread_mutex_t mu; /* r, err */
	int r;
	sb_error *err;
};

int sb_workers_count(int requested)
{
	long n = requested;
	if (n <= 0) {
		/* The affinity mask, not the machine: taskset and cpusets shrink it. */
		cpu_set_t set;
		n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
								 : sysconf(_SC_NPROCESSORS_ONLN);
	}
	return (int)MAX(1, MIN(n, WORKERS_MAX));
}

static void *work(void *arg)
{
	const worker *w = arg;
	pool *p = w->p;
	sb_error e = SB_ERROR_INIT;
	while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		size_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		if (i >= p->n)
			break;
		int r = p->fn(p->ctx, w->no, i, &e);
		if (r >= 0)
			continue;
		atomic_store(&p->stop, true);
		pthread_mutex_lock(&p->mu);
		if (p->r >= 0) {
			p->r = r;
			if (p->err)
				*p->err = e;
		}
		pthread_mutex_unlock(&p->mu);
		break;
	}
	return NULL;
}

int sb_workers_for(size_t n, int threads, sb_workers_fn fn, void *ctx, sb_error *err)
{
	if (n == 0)
		return 0;
	pool p = {.n = n, .fn = fn, .ctx = ctx, .err = err};
	atomic_init(&p.next, 0);
	atomic_init(&p.stop, false);
	pthread_mutex_init(&p.mu, NULL);
	size_t want = (size_t)sb_workers_count(threads);
	want = MIN(want, n);
	pthread_t tid[WORKERS_MAX];
	worker ws[WORKERS_MAX];
	size_t started = 0;
	for (size_t i = 0; i < want; i++)
		ws[i] = (worker){&p, (unsigned)i};
	/* The caller is worker 0. */
	while (started + 1 < want &&
	       pthread_create(&tid[started], NULL, work, &ws[started + 1]) == 0)
		started++;
	work(&ws[0]);
	for (size_t i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	pthread_mutex_destroy(&p.mu);
	return p.r;
}

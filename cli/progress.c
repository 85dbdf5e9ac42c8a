/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"

static double elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

void sb_progress_init(sb_progress *p, sb_cli *cli, const char *label)
{
	memset(p, 0, sizeof(*p));
	p->cli = cli;
	p->label = label;
	p->enabled = !cli->quiet && !cli->json && isatty(STDERR_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	p->last = p->start;
}

void sb_progress_scan(void *userdata, const sb_scan_stats *s)
{
	sb_progress *p = userdata;
	if (!p->enabled)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (elapsed(&p->start, &now) < 1.0 || elapsed(&p->last, &now) < 0.1)
		return;
	p->last = now;
	p->shown = true;
	char sz[32];
	fprintf(stderr, "\r\033[K%s: %" PRIu64 " files, %" PRIu64 " dirs, %s read", p->label,
		s->files, s->dirs, sb_cli_size(s->bytes_hashed, sz, sizeof(sz)));
	fflush(stderr);
}

void sb_progress_done(sb_progress *p)
{
	if (p->shown)
		fputs("\r\033[K", stderr);
	p->shown = false;
}

void sb_progress_warn(void *userdata, const char *path, const char *why)
{
	sb_progress *p = userdata;
	if (p->cli->quiet)
		return;
	sb_progress_done(p);
	fprintf(stderr, "%ssnapbox: warning: %s", sb_cli_c(p->cli->color_err, SB_C_YELLOW),
		sb_cli_c(p->cli->color_err, SB_C_RESET));
	sb_cli_put_path(stderr, path, strlen(path));
	fprintf(stderr, ": %s\n", why);
}

int sb_progress_capture(sb_cli *cli, const char *label, sb_workspace *w, sb_capture_opts *co,
			sb_capture_result *ret, sb_error *err)
{
	sb_progress p;
	sb_progress_init(&p, cli, label);
	co->progress = sb_progress_scan;
	co->warn = sb_progress_warn;
	co->userdata = &p;
	int r = sb_capture(w, co, ret, err);
	sb_progress_done(&p);
	return r;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A progress line on stderr for long scans: only when stderr is a terminal,
 * not with -q or --json, and only once the work has taken a second. Redrawn
 * at most ten times a second, erased when done.
 *
 *   sb_progress p; sb_progress_init(&p, cli, "scanning");
 *   opts.progress = sb_progress_scan; opts.userdata = &p;   (scan.h callback)
 *   ...; sb_progress_done(&p);
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "capture.h"
#include "cli.h"
#include "scan.h"

typedef struct sb_progress {
	sb_cli *cli;
	const char *label;
	bool enabled, shown;
	struct timespec start, last;
} sb_progress;

void sb_progress_init(sb_progress *p, sb_cli *cli, const char *label);
void sb_progress_scan(void *userdata, const sb_scan_stats *so_far);
void sb_progress_done(sb_progress *p);
/* The scanner's warning callback: "warning: 'path': why" (userdata: sb_progress). */
void sb_progress_warn(void *userdata, const char *path, const char *why);

/*
 * sb_capture() with a progress line labelled label and warnings on stderr:
 * sets co's progress, warn and userdata.
 */
int sb_progress_capture(sb_cli *cli, const char *label, sb_workspace *w, sb_capture_opts *co,
			sb_capture_result *ret, sb_error *err);

/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "fsck.h"
#include "reach.h"
#include "snapshot.h"

typedef struct fsck {
	sb_fsck_problem_fn cb;
	void *userdata;
	int64_t snapshot;
	sb_fsck_stats stats;
	int problems;
} fsck;

static void problem(void *userdata, const sb_id *id, const char *path, const char *what)
{
	fsck *f = userdata;
	f->problems++;
	f->cb(f->userdata, f->snapshot, id, path[0] ? path : "/", what);
}

static int count_object(void *userdata, const sb_id *id, sb_reach_kind kind, const char *path)
{
	fsck *f = userdata;
	if (kind == SB_REACH_TREE)
		f->stats.trees++;
	else if (kind == SB_REACH_CONTENT)
		f->stats.contents++;
	return 0;
}

int sb_fsck_snapshots(sb_workspace *w, sb_fsck_problem_fn cb, void *userdata,
		      sb_fsck_stats *ret_stats, sb_error *err)
{
	_cleanup_free_ int64_t *ids = NULL;
	size_t n;
	int r = sb_snapshot_list(w, &ids, &n, err);
	if (r < 0)
		return r;
	fsck f = {.cb = cb, .userdata = userdata};
	sb_reach_ops ops = {.object = count_object, .problem = problem, .userdata = &f};
	sb_reach *reach = NULL;
	r = sb_reach_new(sb_workspace_store(w), &ops, &reach);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		sb_snapshot s;
		sb_error e = SB_ERROR_INIT;
		f.snapshot = ids[i];
		if (sb_snapshot_read(w, ids[i], &s, &e) < 0) {
			problem(&f, NULL, "", e.msg);
			continue;
		}
		f.stats.snapshots++;
		r = sb_reach_tree(reach, &s.root);
		sb_snapshot_release(&s);
	}
	sb_reach_free(reach);
	if (r < 0)
		return sb_error_errno(err, -r, "verify snapshots");
	if (ret_stats)
		*ret_stats = f.stats;
	return f.problems;
}

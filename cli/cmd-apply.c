/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "apply.h"
#include "capture.h"
#include "diff.h"
#include "ignore.h"
#include "run.h"
#include "session.h"
#include "snapshot.h"

typedef struct conflicts {
	sb_cli *cli;
	size_t n;
} conflicts;

static void on_conflict(void *userdata, const char *path, size_t len, const char *why)
{
	conflicts *c = userdata;
	c->n++;
	fprintf(stderr, "%ssnapbox:%s ", sb_cli_c(c->cli->color_err, SB_C_RED),
		sb_cli_c(c->cli->color_err, SB_C_RESET));
	sb_cli_put_path(stderr, path, len);
	fprintf(stderr, ": %s\n", why);
}

/* How a diff moves a snapshot's content counts. */
typedef struct delta {
	sb_diff_counts c;
	int64_t files, dirs, symlinks, fifos, bytes;
} delta;

static void type_delta(delta *d, const sb_tree_entry *x, int64_t sign)
{
	switch (x->type) {
	case SB_FT_REG:
		d->files += sign;
		d->bytes += sign * (int64_t)x->size;
		break;
	case SB_FT_DIR:
		d->dirs += sign;
		break;
	case SB_FT_SYMLINK:
		d->symlinks += sign;
		break;
	case SB_FT_FIFO:
		d->fifos += sign;
		break;
	default:
		break;
	}
}

static int count_delta(void *userdata, const sb_diff_entry *e)
{
	delta *d = userdata;
	if (e->old)
		type_delta(d, e->old, -1);
	if (e->new)
		type_delta(d, e->new, 1);
	return sb_diff_count(&d->c, e);
}

static uint64_t moved(uint64_t v, int64_t by)
{
	return by < 0 && (uint64_t)-by > v ? 0 : (uint64_t)((int64_t)v + by);
}

/*
 * The apply snapshot's stats: its parent's, moved by the differences — a walk
 * of what changed only, no re-scan.
 */
static int apply_stats(sb_workspace *w, int64_t parent, const sb_id *root, sb_snapshot_stats *ret,
		       sb_error *err)
{
	sb_snapshot p;
	int r = sb_snapshot_read(w, parent, &p, err);
	if (r < 0)
		return r;
	delta d = {0};
	r = sb_diff_trees(sb_workspace_store(w), &p.root, root, NULL, count_delta, &d, err);
	if (r >= 0) {
		sb_snapshot_stats st = p.stats;
		st.files = moved(st.files, d.files);
		st.dirs = moved(st.dirs, d.dirs);
		st.symlinks = moved(st.symlinks, d.symlinks);
		st.fifos = moved(st.fifos, d.fifos);
		st.bytes = moved(st.bytes, d.bytes);
		st.added = d.c.added;
		st.modified = d.c.modified + d.c.typechanged;
		st.deleted = d.c.deleted;
		*ret = st;
	}
	sb_snapshot_release(&p);
	return r;
}

int sb_cli_apply_session(sb_cli *cli, sb_workspace *w, const char *const *paths, bool force,
			 bool dry, bool allow_git)
{
	sb_error err = SB_ERROR_INIT;
	sb_session s;
	sb_session_init(&s);
	int r = sb_session_read(w, &s, &err);
	if (r == -ENOENT)
		return sb_cli_failf(cli,
				    "nothing is staged in '%s' (run a command with "
				    "'snapbox run' first)",
				    sb_workspace_path(w));
	if (r >= 0)
		r = sb_cli_stage_session(w, &s, &err);
	if (r < 0) {
		sb_session_release(&s);
		return sb_cli_fail(cli, &err);
	}
	if (s.state != SB_SESSION_STAGED || !s.has_staged) {
		sb_session_release(&s);
		return sb_cli_failf(cli,
				    "the last run on '%s' did not finish; nothing to apply "
				    "('snapbox discard' clears it)",
				    sb_workspace_path(w));
	}
	sb_snapshot base;
	int status = SB_EXIT_FAIL;
	_cleanup_(sb_ignore_freep) sb_ignore *protect = NULL;
	if (sb_snapshot_read(w, s.baseline, &base, &err) < 0) {
		sb_session_release(&s);
		return sb_cli_fail(cli, &err);
	}
	sb_id current;
	conflicts cf = {cli, 0};
	sb_apply_result res;
	if (force && !dry) {
		/*
		 * --force may write over edits made in the workspace since the run:
		 * keep them as a snapshot first (reused when nothing changed), as
		 * restore keeps its pre-restore state.
		 */
		sb_capture_opts co = SB_CAPTURE_OPTS_INIT;
		co.reason = "pre-apply";
		co.excludes = (const char *const *)base.exclusions;
		sb_capture_result pre;
		if (sb_capture(w, &co, &pre, &err) < 0)
			goto out;
		current = pre.root;
		if (!pre.reused && !cli->quiet && !cli->json)
			printf("saved the workspace as snapshot %" PRId64 " before --force\n",
			       pre.id);
	} else if (sb_cli_scan_current(cli, w, base.exclusions, &current, NULL, &err) < 0) {
		goto out;
	}
	if (sb_capture_exclusions(w, base.exclusions, NULL, NULL, &protect, &err) < 0)
		goto out;
	sb_apply_opts ao = {
	    .flags = (force ? SB_APPLY_FORCE : 0) | (dry ? SB_APPLY_DRY : 0) |
		     (allow_git ? SB_APPLY_ALLOW_GIT : 0),
	    .paths = paths,
	    .protect = protect,
	};
	r = sb_apply(sb_workspace_store(w), sb_workspace_root_fd(w), &s.baseline_root,
		     &s.staged_root, &current, &ao, on_conflict, &cf, &res, &err);
	if (r < 0)
		goto out;
	if (dry) {
		if (!cli->quiet)
			printf("%" PRIu64 " staged changes would be applied, %" PRIu64
			       " conflicts\n",
			       res.applied, res.conflicts);
		status = SB_EXIT_OK;
		goto out;
	}
	if (res.applied == 0) {
		if (!cli->quiet)
			printf("no staged changes match the given paths\n");
		status = SB_EXIT_OK;
		goto out;
	}

	/* The workspace now hashes to `merged`: record it without a re-scan. */
	sb_snapshot snap;
	sb_snapshot_init(&snap);
	snap.root = res.merged;
	snap.reason = strdup("apply");
	snap.command = s.command;
	snap.exit_status = s.exit_status;
	snap.isolation = s.isolation;
	snap.exclusions = base.exclusions;
	r = sb_snapshot_head(w, &snap.parent, &err);
	if (r >= 0)
		r = apply_stats(w, snap.parent, &res.merged, &snap.stats, &err);
	if (r >= 0)
		r = snap.reason ? sb_snapshot_write(w, &snap, &err) : -ENOMEM;
	if (r >= 0)
		r = sb_snapshot_set_head(w, snap.id, &err);
	free(snap.reason);
	if (r < 0)
		goto out;

	if (res.has_remaining) {
		s.baseline = snap.id;
		s.baseline_root = res.merged;
		s.staged_root = res.remaining;
		r = sb_session_write(w, &s, &err);
	} else {
		r = sb_session_remove(w, &err);
	}
	if (r < 0)
		goto out;
	if (cli->json) {
		char hex[SB_HEX_LEN + 1];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "snapshot", (double)snap.id);
		cJSON_AddStringToObject(j, "root", sb_id_to_hex(&res.merged, hex));
		cJSON_AddNumberToObject(j, "applied", (double)res.applied);
		cJSON_AddNumberToObject(j, "conflicts_overridden", (double)res.conflicts);
		cJSON_AddBoolToObject(j, "remaining", res.has_remaining);
		sb_cli_json_out(j);
	} else if (!cli->quiet) {
		printf("applied %" PRIu64 " change%s: snapshot %" PRId64 " (undo with 'snapbox "
		       "restore %" PRId64 "')%s\n",
		       res.applied, res.applied == 1 ? "" : "s", snap.id, s.baseline,
		       res.has_remaining ? "; the rest stay staged" : "");
	}
	status = SB_EXIT_OK;
out:
	if (status != SB_EXIT_OK)
		sb_cli_fail(cli, &err);
	sb_snapshot_release(&base);
	sb_session_release(&s);
	return status;
}

int cmd_apply(sb_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"allow-git-config", no_argument, NULL, 'G'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool force = false, dry = false, allow_git = false;
	int c;
	while ((c = sb_cli_getopt(cli, argc, argv, "+fnh", opts)) != -1) {
		if (c == 'f')
			force = true;
		else if (c == 'G')
			allow_git = true;
		else if (c == 'n')
			dry = true;
		else if (c == 'h')
			return sb_cli_help(sb_cli_find_verb("apply"));
		else
			return SB_EXIT_USAGE;
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	sb_error err = SB_ERROR_INIT;
	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, SB_WS_WRITE, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	if (sb_workspace_lock(w, 0, &err) < 0)
		return sb_cli_fail(cli, &err);
	return sb_cli_apply_session(cli, w,
				    optind < argc ? (const char *const *)argv + optind : NULL,
				    force, dry, allow_git);
}

int cmd_discard(sb_cli *cli, int argc, char **argv)
{
	int r = sb_cli_plain_args(cli, argc, argv);
	if (r >= 0)
		return r;
	if (optind < argc)
		return sb_cli_usage(cli, "discard", "discard takes no operands ('%s')",
				    argv[optind]);
	sb_error err = SB_ERROR_INIT;
	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, SB_WS_WRITE, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	if (sb_workspace_lock(w, 0, &err) < 0)
		return sb_cli_fail(cli, &err);
	sb_session s;
	r = sb_session_read(w, &s, &err);
	if (r == -ENOENT) {
		if (!cli->quiet)
			printf("nothing to discard\n");
		return SB_EXIT_OK;
	}
	if (r >= 0)
		sb_session_release(&s);
	/* A corrupt record is discarded too: that is what the message says to do. */
	if (sb_session_remove(w, &err) < 0)
		return sb_cli_fail(cli, &err);
	if (!cli->quiet)
		printf("discarded the staged changes of the last run\n");
	return SB_EXIT_OK;
}

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "changelist.h"
#include "detach.h"
#include "fileio.h"
#include "overlay.h"
#include "progress.h"
#include "run.h"
#include "session.h"
#include "stage.h"

/* A run that cannot start: say why, exit 125 (docker run's "the daemon failed"). */
static int setup_failed(sb_cli *cli, const sb_error *err)
{
	sb_cli_fail(cli, err);
	return SB_EXIT_SETUP;
}

/* A run that cannot start after its layers exist: kill the held sandbox, drop them. */
static int drop_session(sb_cli *cli, sb_workspace *w, sb_sandbox **sb, const sb_error *err)
{
	sb_sandbox_freep(sb);
	sb_error e2 = SB_ERROR_INIT;
	(void)sb_session_remove(w, &e2);
	return setup_failed(cli, err);
}

static int refuse_pending(sb_cli *cli, sb_workspace *w)
{
	sb_session s;
	sb_error err = SB_ERROR_INIT;
	int r = sb_session_read(w, &s, &err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return setup_failed(cli, &err);
	bool staged = s.state == SB_SESSION_STAGED;
	bool stale = sb_session_is_stale(&s);
	sb_session_release(&s);
	if (staged)
		sb_cli_failf(cli,
			     "a previous run's changes are still staged in '%s'; review them "
			     "with 'snapbox diff', then 'snapbox apply' or 'snapbox discard'",
			     sb_workspace_path(w));
	else if (stale)
		sb_cli_failf(cli,
			     "a previous run on '%s' did not finish (snapbox was killed); "
			     "'snapbox discard' clears it",
			     sb_workspace_path(w));
	else
		sb_cli_failf(cli, "another run is in progress on '%s'", sb_workspace_path(w));
	return SB_EXIT_SETUP;
}

static void summarize(FILE *f, sb_cli *cli, const sb_run_opts *o, const sb_sandbox_result *res,
		      const sb_diff_list *ch, uint64_t staged_bytes, const sb_isolation_report *rep)
{
	if (res->timed_out)
		fprintf(f, "snapbox: %s timed out after %s and was killed\n", o->argv[0],
			o->iso.timeout);
	else if (res->outcome == SB_SANDBOX_SIGNALED)
		fprintf(f, "snapbox: %s was killed by signal %d\n", o->argv[0], res->signal);
	else if (res->outcome == SB_SANDBOX_EXITED && res->exit_code != 0)
		fprintf(f, "snapbox: %s exited with status %d\n", o->argv[0], res->exit_code);
	if (rep)
		sb_isolation_report_print(f, rep);
	if (ch->n == 0) {
		fprintf(f, "snapbox: no changes to the workspace\n");
		return;
	}
	sb_diff_counts n = {0};
	for (size_t i = 0; i < ch->n; i++) {
		const sb_diff_item *x = &ch->v[i];
		const sb_tree_entry *e = x->status == 'D' ? &x->old : &x->new;
		bool color = cli->color_err;
		const char *c = x->status == 'A'   ? SB_C_GREEN
				: x->status == 'D' ? SB_C_RED
						   : SB_C_YELLOW;
		fprintf(f, "%s%c%s ", sb_cli_c(color, c), x->status, sb_cli_c(color, SB_C_RESET));
		sb_cli_put_path(f, x->path, x->path_len);
		fputs(e->type == SB_FT_DIR ? "/\n" : "\n", f);
		if (e->type == SB_FT_DIR)
			continue;
		n.added += x->status == 'A';
		n.deleted += x->status == 'D';
		n.modified += x->status == 'M';
		n.typechanged += x->status == 'T';
	}
	char sz[32];
	fprintf(f,
		"%" PRIu64 " added, %" PRIu64 " modified, %" PRIu64 " deleted, %" PRIu64
		" type changed; %s staged\n",
		n.added, n.modified, n.deleted, n.typechanged,
		sb_cli_size(staged_bytes, sz, sizeof(sz)));
	if (!o->apply)
		fprintf(f, "review: snapbox diff   land: snapbox apply   drop: snapbox discard\n");
}

/*
 * stderr is unbuffered: the summary of a run that wrote 10k files would cost
 * 40k write(2)s. Written through a buffered stream on a copy of fd 2 instead.
 */
static void print_summary(sb_cli *cli, const sb_run_opts *o, const sb_sandbox_result *res,
			  const sb_diff_list *ch, uint64_t staged_bytes,
			  const sb_isolation_report *rep)
{
	if (cli->quiet)
		return;
	fflush(stderr);
	int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	_cleanup_fclose_ FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		if (fd >= 0)
			close(fd);
		summarize(stderr, cli, o, res, ch, staged_bytes, rep);
		return;
	}
	(void)setvbuf(f, NULL, _IOFBF, 1 << 16);
	summarize(f, cli, o, res, ch, staged_bytes, rep);
}

static cJSON *result_json(const sb_sandbox_result *res, int64_t baseline, bool staged,
			  const sb_diff_list *ch, const sb_isolation_report *rep,
			  const char *isolation)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "exit_status", res->exit_code);
	if (res->outcome == SB_SANDBOX_SIGNALED)
		cJSON_AddNumberToObject(j, "signal", res->signal);
	cJSON_AddBoolToObject(j, "timed_out", res->timed_out);
	cJSON_AddNumberToObject(j, "baseline", (double)baseline);
	cJSON_AddBoolToObject(j, "staged", staged);
	cJSON_AddStringToObject(j, "isolation", isolation);
	cJSON_AddItemToObject(j, "changes", sb_cli_changes_json(ch));
	if (rep)
		cJSON_AddItemToObject(j, "resources", sb_isolation_report_json(rep));
	return j;
}

int sb_cli_run(sb_cli *cli, const sb_run_opts *o)
{
	sb_error err = SB_ERROR_INIT;
	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, SB_WS_CREATE | SB_WS_WRITE, &w, &err) < 0)
		return setup_failed(cli, &err);
	if (sb_workspace_lock(w, 0, &err) < 0)
		return setup_failed(cli, &err);
	int r = refuse_pending(cli, w);
	if (r)
		return r;
	if (o->backend && strcmp(o->backend, "auto") != 0 && strcmp(o->backend, "kernel") != 0) {
		sb_error_set(&err, EOPNOTSUPP,
			     "--backend %s: only the kernel overlay backend is available in this "
			     "build; use --backend kernel (or auto)",
			     o->backend);
		return setup_failed(cli, &err);
	}

	/*
	 * 1. The isolation layers, before anything is recorded: a layer that
	 * cannot be enforced stops the run here (fail closed), and the baseline
	 * and the session record which layers the command ran under.
	 */
	sb_sandbox_config cfg;
	sb_sandbox_config_init(&cfg);
	cfg.argv = (const char *const *)o->argv;
	cfg.workspace = sb_workspace_path(w);
	cfg.store = sb_workspace_store_path(w);
	cfg.net = o->iso.net;
	cfg.hide = o->hide;
	cfg.n_hide = o->n_hide;
	cfg.env = o->env;
	cfg.n_env = o->n_env;
	cfg.flags |= SB_SANDBOX_FORWARD_SIGNALS;
	_cleanup_free_ sb_sandbox_bind *binds = calloc(o->n_ro + o->n_rw + 1, sizeof(*binds));
	if (!binds)
		return SB_EXIT_SETUP;
	for (size_t i = 0; i < o->n_ro; i++)
		binds[cfg.n_binds++] = (sb_sandbox_bind){o->ro[i], false};
	for (size_t i = 0; i < o->n_rw; i++)
		binds[cfg.n_binds++] = (sb_sandbox_bind){o->rw[i], true};
	cfg.binds = binds;
	cfg.workspace_mount = sb_overlay_mount_hook; /* its data once the session exists */

	_cleanup_(sb_isolation_freep) sb_isolation *iso = NULL;
	if (sb_isolation_prepare(&o->iso, sb_workspace_path(w), &cfg, &iso, &err) < 0)
		return setup_failed(cli, &err);
	for (size_t i = 0; i < sb_isolation_warning_count(iso); i++)
		sb_cli_warn(cli, "%s", sb_isolation_warning(iso, i));
	char layers[512] = "";
	sb_isolation_summary(iso, layers, sizeof(layers));
	sb_cli_info(cli, "isolation: %s", layers);

	/*
	 * 2. The sandbox, held: it sets itself up (namespaces, mounts, cgroup,
	 * filters) while the baseline is taken, and the command starts only
	 * once the session is recorded. If snapbox dies meanwhile, the held
	 * sandbox dies with it before running anything.
	 */
	_cleanup_free_ char *upper = NULL, *work = NULL;
	_cleanup_(sb_overlay_freep) sb_overlay *ov = NULL;
	_cleanup_(sb_sandbox_freep) sb_sandbox *sb = NULL;
	if (sb_session_layers(w, &upper, &work, &err) < 0 ||
	    sb_overlay_new(sb_workspace_path(w), upper, work, 0, &ov, &err) < 0)
		return drop_session(cli, w, &sb, &err);
	cfg.workspace_mount_data = ov;
	cfg.flags |= SB_SANDBOX_HOLD;
	if (sb_sandbox_start(&cfg, &sb, &err) < 0)
		return drop_session(cli, w, &sb, &err);

	/* 3. The baseline: reused when the workspace is unchanged. */
	sb_capture_opts co = SB_CAPTURE_OPTS_INIT;
	co.reason = "baseline";
	co.command = o->argv;
	co.isolation = layers;
	sb_capture_result base;
	r = sb_progress_capture(cli, "baseline", w, &co, &base, &err);
	if (r < 0)
		return drop_session(cli, w, &sb, &err);
	sb_cli_info(cli, "baseline: snapshot %" PRId64 "%s", base.id,
		    base.reused ? " (reused)" : "");
	sb_cli_scan_info(cli, &base.scan);

	/* 4. The session record, before anything runs: a crash leaves it for discard. */
	sb_session sess;
	sb_session_init(&sess);
	sess.state = SB_SESSION_RUNNING;
	sess.baseline = base.id;
	sess.baseline_root = base.root;
	sess.command = o->argv;
	sess.started_ns = sb_now_ns();
	sess.pid = getpid();
	sess.isolation = layers;
	sess.upper_userxattr = sb_sandbox_uses_userns(&cfg);
	if (sb_session_write(w, &sess, &err) < 0)
		return drop_session(cli, w, &sb, &err);

	/* 5. The command. */
	sb_sandbox_result res;
	r = sb_sandbox_release(sb, &err);
	if (r >= 0)
		r = sb_sandbox_wait(sb, &res, &err);
	/* Freeing the overlay's dentries and inodes goes to the background (sandbox.h). */
	sb_detach_close(sb_sandbox_take_workspace_fd(sb));
	sb_sandbox_freep(&sb);
	sb_isolation_report rep = {0};
	sb_error ferr = SB_ERROR_INIT;
	int fr = sb_isolation_finish(iso, r < 0 ? NULL : &res, &rep, &ferr);
	if (r < 0) {
		sb_error e2 = SB_ERROR_INIT;
		(void)sb_session_remove(w, &e2);
		return setup_failed(cli, &err);
	}
	if (fr < 0)
		sb_cli_warn(cli, "%s", ferr.msg);
	if (res.outcome == SB_SANDBOX_SETUP_FAILED || res.outcome == SB_SANDBOX_EXEC_FAILED) {
		/* Nothing ran (or nothing could be run): no session to keep. */
		sb_cli_failf(cli, "%s",
			     res.message[0] ? res.message : "the sandbox could not start");
		sb_error e2 = SB_ERROR_INIT;
		(void)sb_session_remove(w, &e2);
		return res.exit_code;
	}

	/*
	 * 6. What the command changed: the upper layer, previewed against the
	 * baseline. The changes stay staged in the upper; the first diff or
	 * apply stores them (session.h), so a discarded run never pays for it.
	 */
	sb_upper_flags uf = SB_UPPER_PLAIN_FILES;
	if (sess.upper_userxattr)
		uf |= SB_UPPER_USERXATTR;
	sb_changes changes = SB_CHANGES_INIT;
	sb_diff_list ch = {0};
	sb_stage_preview_stats pst = {0};
	_cleanup_close_ int upper_fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = upper_fd < 0 ? sb_error_errno(&err, errno, "open '%s'", upper)
			 : sb_upper_read(upper_fd, uf, &changes, &err);
	if (r >= 0)
		r = sb_stage_preview(sb_workspace_store(w), &base.root, &changes, upper_fd, &ch,
				     &pst, &err);
	sb_changes_release(&changes);
	if (r >= 0 && !pst.pending) {
		r = sb_session_remove(w, &err);
	} else if (r >= 0) {
		sess.state = SB_SESSION_STAGED;
		sess.exit_status = res.exit_code;
		sess.isolation = layers;
		r = sb_session_write(w, &sess, &err);
	}
	if (r < 0) {
		sb_diff_list_release(&ch);
		sb_cli_fail(cli, &err);
		sb_cli_failf(cli, "the changes are kept in '%s'; 'snapbox discard' drops them",
			     upper);
		return res.exit_code ? res.exit_code : SB_EXIT_FAIL;
	}
	if (cli->json)
		sb_cli_json_out(result_json(&res, base.id, pst.pending, &ch, &rep, layers));
	else
		print_summary(cli, o, &res, &ch, pst.bytes, &rep);
	if (pst.stripped)
		sb_cli_warn(cli,
			    "dropped the setuid/setgid bits the command set on %llu file%s: "
			    "snapbox never stages privileged programs",
			    (unsigned long long)pst.stripped, pst.stripped == 1 ? "" : "s");
	bool pending = pst.pending;
	sb_diff_list_release(&ch);

	if (o->apply && pending) {
		int st = sb_cli_apply_session(cli, w, NULL, false, false, false);
		if (st != SB_EXIT_OK)
			return st;
	}
	return res.timed_out ? SB_EXIT_TIMEOUT : res.exit_code;
}

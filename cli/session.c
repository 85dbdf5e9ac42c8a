/* SPDX-License-Identifier: MIT */
/*
 * A run leaves its changes staged in the session's upper directory and only
 * previews them (session.h): most runs are reviewed once, or discarded, and
 * discarding must not pay for hashing and compressing what the command
 * wrote. The first command that needs the changes as a tree stages them.
 */
#include "overlay.h"
#include "run.h"
#include "stage.h"

int sb_cli_stage_session(sb_workspace *w, sb_session *s, sb_error *err)
{
	if (s->state != SB_SESSION_STAGED || s->has_staged)
		return 0;
	if (!sb_session_same_boot(s))
		return sb_error_set(err, ESTALE,
				    "the last run's changes in '%s/session/upper' were never made "
				    "durable, and the machine restarted since: they may be cut "
				    "short; 'snapbox discard' drops them",
				    sb_workspace_area_path(w));
	_cleanup_close_ int up = sb_session_upper_fd(w, err);
	if (up == -ENOENT) /* not -ENOENT: that would read as "no session" */
		return sb_error_set(err, ESTALE,
				    "the staged changes are missing from '%s/session/upper'; "
				    "'snapbox discard' clears the session",
				    sb_workspace_area_path(w));
	if (up < 0)
		return up;
	sb_store *store = sb_workspace_store(w);
	sb_upper_flags uf = SB_UPPER_PLAIN_FILES | (s->upper_userxattr ? SB_UPPER_USERXATTR : 0);
	sb_changes changes = SB_CHANGES_INIT;
	int r = sb_upper_read(up, uf, &changes, err);
	sb_id root;
	if (r >= 0)
		r = sb_stage_upper(store, &s->baseline_root, &changes, up, 0, &root, NULL, err);
	sb_changes_release(&changes);
	if (r >= 0)
		r = sb_store_flush(store, err);
	if (r < 0)
		return r;
	s->has_staged = true;
	s->staged_root = root;
	r = sb_session_write(w, s, err);
	return r < 0 ? r : sb_session_drop_layers(w, err);
}

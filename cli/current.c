/* SPDX-License-Identifier: MIT */
#include "capture.h"
#include "cli.h"
#include "progress.h"

int sb_cli_scan_current(sb_cli *cli, sb_workspace *w, char *const *excludes, sb_id *ret_root,
			sb_scan_stats *ret_stats, sb_error *err)
{
	/* Save the stat cache only when no other snapbox is writing. */
	bool locked = sb_workspace_lock(w, 0, NULL) >= 0;
	sb_capture_opts co = SB_CAPTURE_OPTS_INIT;
	co.flags = SB_CAPTURE_DRY | (locked ? SB_CAPTURE_SAVE_CACHE : 0);
	co.excludes = (const char *const *)excludes;
	sb_capture_result res;
	int r = sb_progress_capture(cli, "scanning", w, &co, &res, err);
	if (locked)
		sb_workspace_unlock(w);
	if (r < 0)
		return r;
	*ret_root = res.root;
	if (ret_stats)
		*ret_stats = res.scan;
	sb_cli_scan_info(cli, &res.scan);
	return 0;
}

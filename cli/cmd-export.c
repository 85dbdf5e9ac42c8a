/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "cli.h"
#include "export.h"
#include "snapshot.h"

int cmd_export(sb_cli *cli, int argc, char **argv)
{
	int r = sb_cli_plain_args(cli, argc, argv);
	if (r >= 0)
		return r;
	if (argc - optind != 2)
		return sb_cli_usage(cli, "export",
				    "export takes a snapshot number and a directory");
	sb_error err = SB_ERROR_INIT;
	int64_t id;
	if (sb_snapshot_parse_id(argv[optind], &id, &err) < 0)
		return sb_cli_usage(cli, "export", "%s", err.msg);
	const char *dir = argv[optind + 1];

	_cleanup_(sb_workspace_freep) sb_workspace *w = NULL;
	if (sb_cli_open(cli, 0, &w, &err) < 0)
		return sb_cli_fail(cli, &err);
	sb_snapshot s;
	if (sb_snapshot_read(w, id, &s, &err) < 0)
		return sb_cli_fail(cli, &err);
	sb_id root = s.root;
	sb_snapshot_release(&s);

	/* A new directory, or an empty one: never write into a populated tree. */
	bool created = mkdir(dir, 0755) == 0;
	if (!created && errno != EEXIST)
		return sb_cli_failf(cli, "cannot create '%s': %s", dir, strerror(errno));
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sb_cli_failf(cli, "cannot open '%s': %s", dir,
				    errno == ELOOP ? "it is a symlink" : strerror(errno));
	sb_export_stats st = {0};
	r = sb_export_tree(sb_workspace_store(w), &root, fd, 0, &st, &err);
	if (r < 0) {
		if (r == -ENOTEMPTY)
			return sb_cli_failf(cli,
					    "'%s' is not empty; export writes only into a new "
					    "or empty directory",
					    dir);
		return sb_cli_fail(cli, &err);
	}
	if (cli->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "snapshot", (double)id);
		cJSON_AddStringToObject(j, "directory", dir);
		cJSON_AddNumberToObject(j, "files", (double)st.files);
		cJSON_AddNumberToObject(j, "dirs", (double)st.dirs);
		cJSON_AddNumberToObject(j, "symlinks", (double)st.symlinks);
		cJSON_AddNumberToObject(j, "fifos", (double)st.fifos);
		cJSON_AddNumberToObject(j, "bytes", (double)st.bytes);
		cJSON_AddNumberToObject(j, "objects_read", (double)st.objects_read);
		sb_cli_json_out(j);
	} else if (!cli->quiet) {
		char sz[32];
		printf("exported snapshot %" PRId64 " to %s: %" PRIu64 " files, %" PRIu64
		       " dirs, %" PRIu64 " symlinks, %" PRIu64 " fifos, %s\n",
		       id, dir, st.files, st.dirs, st.symlinks, st.fifos,
		       sb_cli_size(st.bytes, sz, sizeof(sz)));
	}
	return SB_EXIT_OK;
}

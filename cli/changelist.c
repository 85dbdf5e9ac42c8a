/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "changelist.h"
#include "stage.h"

const char *sb_cli_ftype_name(sb_ftype t)
{
	switch (t) {
	case SB_FT_REG:
		return "file";
	case SB_FT_DIR:
		return "dir";
	case SB_FT_SYMLINK:
		return "symlink";
	case SB_FT_FIFO:
		return "fifo";
	default:
		return "none";
	}
}

static const char *status_color(char s)
{
	switch (s) {
	case 'A':
		return SB_C_GREEN;
	case 'D':
		return SB_C_RED;
	default:
		return SB_C_YELLOW;
	}
}

void sb_cli_print_name_status(sb_cli *cli, const sb_diff_list *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const sb_diff_item *x = &c->v[i];
		const sb_tree_entry *e = x->status == 'D' ? &x->old : &x->new;
		printf("%s%c%s ", sb_cli_c(cli->color_out, status_color(x->status)), x->status,
		       sb_cli_c(cli->color_out, SB_C_RESET));
		sb_cli_put_path(stdout, x->path, x->path_len);
		if (e->type == SB_FT_DIR)
			putchar('/');
		putchar('\n');
	}
}

static cJSON *entry_json(const sb_tree_entry *e)
{
	if (e->type == SB_FT_NONE)
		return cJSON_CreateNull();
	char hex[SB_HEX_LEN + 1], mode[8];
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "type", sb_cli_ftype_name(e->type));
	snprintf(mode, sizeof(mode), "%04o", e->mode);
	cJSON_AddStringToObject(j, "mode", mode);
	cJSON_AddItemToObject(j, "size", sb_cli_json_int((int64_t)e->size));
	cJSON_AddItemToObject(j, "mtime_ns", sb_cli_json_int(e->mtime_ns));
	/* A file a run's preview did not read (stage.h): its id is not known yet. */
	if (e->type != SB_FT_FIFO && sb_stage_id_unread(&e->id))
		cJSON_AddNullToObject(j, "id");
	else if (e->type != SB_FT_FIFO)
		cJSON_AddStringToObject(j, "id", sb_id_to_hex(&e->id, hex));
	return j;
}

cJSON *sb_cli_changes_json(const sb_diff_list *c)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < c->n; i++) {
		const sb_diff_item *x = &c->v[i];
		char st[2] = {x->status, 0};
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "status", st);
		cJSON_AddItemToObject(j, "path", sb_cli_json_path(x->path, x->path_len));
		cJSON_AddItemToObject(j, "old", entry_json(&x->old));
		cJSON_AddItemToObject(j, "new", entry_json(&x->new));
		cJSON_AddItemToArray(a, j);
	}
	return a;
}

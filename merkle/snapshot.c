/* SPDX-License-Identifier: MIT */
#include <cJSON.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "buf.h"
#include "json.h"
#include "snapshot.h"

#define MANIFEST_MAX (16u << 20)

void sb_snapshot_init(sb_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->id = -1;
	s->parent = -1;
	s->exit_status = -1;
}

void sb_snapshot_release(sb_snapshot *s)
{
	free(s->reason);
	free(s->message);
	free(s->isolation);
	sb_strv_free(s->command);
	sb_strv_free(s->exclusions);
	sb_snapshot_init(s);
}

const char *sb_format_time(int64_t time_ns, char *buf, size_t size)
{
	time_t t = (time_t)(time_ns / 1000000000);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%" PRId64, time_ns);
	return buf;
}

int sb_snapshot_parse_id(const char *s, int64_t *ret_id, sb_error *err)
{
	char *end = NULL;
	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		goto bad;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > INT64_MAX / 2)
		goto bad;
	*ret_id = (int64_t)v;
	return 0;
bad:
	return sb_error_set(err, EINVAL, "'%s' is not a snapshot number (see 'snapbox list')",
			    s ? s : "");
}

int sb_snapshot_list(sb_workspace *w, int64_t **ret_ids, size_t *ret_n, sb_error *err)
{
	int fd = openat(sb_workspace_dir_fd(w), "snapshots", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret_ids = NULL;
			*ret_n = 0;
			return 0;
		}
		return sb_error_errno(err, errno, "open '%s/snapshots'", sb_workspace_area_path(w));
	}
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return sb_error_errno(err, errno, "read '%s/snapshots'", sb_workspace_area_path(w));
	}
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		size_t len = strlen(name);
		if (len < 6 || strcmp(name + len - 5, ".json") != 0)
			continue;
		char num[32];
		if (len - 5 >= sizeof(num))
			continue;
		memcpy(num, name, len - 5);
		num[len - 5] = 0;
		int64_t id;
		if (sb_snapshot_parse_id(num, &id, NULL) < 0)
			continue;
		/* "007.json" is not ours: ids are written without leading zeros. */
		if (num[0] == '0' && num[1])
			continue;
		int64_t *p = sb_grow(ids, &cap, n, sizeof(*ids), 32);
		if (!p)
			return -ENOMEM;
		ids = p;
		ids[n++] = id;
	}
	/* insertion sort is fine: lists are short and nearly sorted */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
			int64_t t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	*ret_ids = TAKE_PTR(ids);
	*ret_n = n;
	return 0;
}

int sb_snapshot_latest(sb_workspace *w, int64_t *ret_id, sb_error *err)
{
	_cleanup_free_ int64_t *ids = NULL;
	size_t n;
	int r = sb_snapshot_list(w, &ids, &n, err);
	if (r < 0)
		return r;
	if (n == 0)
		return sb_error_set(err, ENOENT, "no snapshots of '%s' yet; run 'snapbox snapshot'",
				    sb_workspace_path(w));
	*ret_id = ids[n - 1];
	return 0;
}

/* cJSON numbers are doubles: integers above 2^53 would lose bits. */
static cJSON *num(int64_t v)
{
	return cJSON_CreateNumber((double)v);
}

int sb_snapshot_write(sb_workspace *w, sb_snapshot *s, sb_error *err)
{
	int64_t latest = -1;
	int r = sb_snapshot_latest(w, &latest, NULL);
	if (r < 0 && r != -ENOENT)
		return sb_error_errno(err, -r, "list snapshots");
	int64_t id = latest + 1;
	if (s->parent < 0)
		s->parent = latest;
	if (s->time_ns == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		s->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}

	cJSON *j = cJSON_CreateObject();
	if (!j)
		return -ENOMEM;
	char hex[SB_HEX_LEN + 1], tbuf[64];
	cJSON_AddItemToObject(j, "version", num(1));
	cJSON_AddItemToObject(j, "id", num(id));
	cJSON_AddItemToObject(j, "parent", s->parent >= 0 ? num(s->parent) : cJSON_CreateNull());
	cJSON_AddStringToObject(j, "root", sb_id_to_hex(&s->root, hex));
	cJSON_AddStringToObject(j, "time", sb_format_time(s->time_ns, tbuf, sizeof(tbuf)));
	/* Nanoseconds exceed a double's 53 bits: kept as a decimal string. */
	sb_json_add_i64str(j, "time_ns", s->time_ns);
	cJSON_AddStringToObject(j, "reason", s->reason ? s->reason : "manual");
	cJSON_AddItemToObject(j, "message",
			      s->message ? cJSON_CreateString(s->message) : cJSON_CreateNull());
	cJSON_AddItemToObject(j, "command",
			      s->command ? sb_json_strv(s->command) : cJSON_CreateNull());
	cJSON_AddItemToObject(j, "exit_status",
			      s->exit_status >= 0 ? num(s->exit_status) : cJSON_CreateNull());
	cJSON_AddItemToObject(j, "isolation",
			      s->isolation ? cJSON_CreateString(s->isolation) : cJSON_CreateNull());
	cJSON_AddItemToObject(j, "exclusions", sb_json_strv(s->exclusions));
	cJSON *st = cJSON_AddObjectToObject(j, "stats");
	if (st) {
		cJSON_AddItemToObject(st, "files", num((int64_t)s->stats.files));
		cJSON_AddItemToObject(st, "dirs", num((int64_t)s->stats.dirs));
		cJSON_AddItemToObject(st, "symlinks", num((int64_t)s->stats.symlinks));
		cJSON_AddItemToObject(st, "fifos", num((int64_t)s->stats.fifos));
		cJSON_AddItemToObject(st, "bytes", num((int64_t)s->stats.bytes));
		cJSON_AddItemToObject(st, "skipped", num((int64_t)s->stats.skipped));
		cJSON_AddItemToObject(st, "added", num((int64_t)s->stats.added));
		cJSON_AddItemToObject(st, "modified", num((int64_t)s->stats.modified));
		cJSON_AddItemToObject(st, "deleted", num((int64_t)s->stats.deleted));
	}
	_cleanup_free_ char *text = cJSON_Print(j);
	cJSON_Delete(j);
	if (!text)
		return -ENOMEM;
	size_t len = strlen(text);
	text[len] = 0;

	_cleanup_close_ int dfd =
	    openat(sb_workspace_dir_fd(w), "snapshots", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sb_error_errno(err, errno, "open '%s/snapshots'", sb_workspace_area_path(w));
	char name[40];
	snprintf(name, sizeof(name), "%" PRId64 ".json", id);
	_cleanup_free_ char *body = NULL;
	if (asprintf(&body, "%s\n", text) < 0)
		return -ENOMEM;
	r = sb_write_atomic(dfd, name, body, strlen(body), 0600,
			    SB_WRITE_SYNC | SB_WRITE_NOCLOBBER | SB_WRITE_LOCKED, err);
	if (r < 0)
		return r;
	s->id = id;
	return 0;
}

int sb_snapshot_forget(sb_workspace *w, const int64_t *ids, size_t n, sb_error *err)
{
	_cleanup_close_ int dfd =
	    openat(sb_workspace_dir_fd(w), "snapshots", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sb_error_errno(err, errno, "open '%s/snapshots'", sb_workspace_area_path(w));
	for (size_t i = 0; i < n; i++) {
		char name[40];
		snprintf(name, sizeof(name), "%" PRId64 ".json", ids[i]);
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return sb_error_errno(err, errno, "remove '%s/snapshots/%s'",
					      sb_workspace_area_path(w), name);
	}
	if (fsync(dfd) < 0)
		return sb_error_errno(err, errno, "fsync '%s/snapshots'",
				      sb_workspace_area_path(w));
	return 0;
}

static int bad(sb_error *err, const char *file, const char *what)
{
	return sb_error_set(err, EBADMSG,
			    "snapshot manifest '%s' is corrupt (%s); 'snapbox verify' checks the "
			    "store, restore from a backup or remove the file",
			    file, what);
}

int sb_snapshot_read(sb_workspace *w, int64_t id, sb_snapshot *ret, sb_error *err)
{
	char name[64];
	snprintf(name, sizeof(name), "snapshots/%" PRId64 ".json", id);
	_cleanup_free_ char *data = NULL;
	size_t len;
	sb_error e2 = SB_ERROR_INIT;
	int r = sb_read_file_at(sb_workspace_dir_fd(w), name, MANIFEST_MAX, &data, &len, &e2);
	if (r == -ENOENT)
		return sb_error_set(err, ENOENT, "no snapshot %" PRId64 " (see 'snapbox list')",
				    id);
	if (r < 0)
		return sb_error_set(err, -r, "snapshot %" PRId64 ": %s", id, e2.msg);

	char file[PATH_MAX];
	snprintf(file, sizeof(file), "%s/%s", sb_workspace_area_path(w), name);
	cJSON *j = cJSON_ParseWithLength(data, len);
	if (!j)
		return bad(err, file, "not valid JSON");
	sb_snapshot s;
	sb_snapshot_init(&s);
	const char *what = NULL;
	int64_t version, fid;
	char *root = NULL;
	if (!cJSON_IsObject(j))
		what = "not a JSON object";
	else if (sb_json_get_int(j, "version", false, &version) < 0 || version != 1)
		what = "unknown version";
	else if (sb_json_get_int(j, "id", false, &fid) < 0 || fid != id)
		what = "id does not match the file name";
	else if (sb_json_get_int(j, "parent", true, &s.parent) < 0)
		what = "bad parent";
	else if (sb_json_get_str(j, "root", false, &root) < 0 || sb_id_from_hex(root, &s.root) < 0)
		what = "bad root id";
	else if (sb_json_get_i64str(j, "time_ns", &s.time_ns) < 0)
		what = "bad time";
	else if (sb_json_get_str(j, "reason", false, &s.reason) < 0)
		what = "bad reason";
	else if (sb_json_get_str(j, "message", true, &s.message) < 0)
		what = "bad message";
	else if (sb_json_get_strv(j, "command", &s.command) < 0)
		what = "bad command";
	else if (sb_json_get_str(j, "isolation", true, &s.isolation) < 0)
		what = "bad isolation";
	else if (sb_json_get_strv(j, "exclusions", &s.exclusions) < 0)
		what = "bad exclusions";
	else {
		int64_t es;
		if (sb_json_get_int(j, "exit_status", true, &es) < 0 || es > 255)
			what = "bad exit status";
		else
			s.exit_status = (int)es;
	}
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "stats");
	if (!what && cJSON_IsObject(st)) {
		struct {
			const char *k;
			uint64_t *v;
		} f[] = {{"files", &s.stats.files},	  {"dirs", &s.stats.dirs},
			 {"symlinks", &s.stats.symlinks}, {"fifos", &s.stats.fifos},
			 {"bytes", &s.stats.bytes},	  {"skipped", &s.stats.skipped},
			 {"added", &s.stats.added},	  {"modified", &s.stats.modified},
			 {"deleted", &s.stats.deleted}};
		for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
			int64_t v;
			if (sb_json_get_int(st, f[i].k, true, &v) < 0) {
				what = "bad stats";
				break;
			}
			*f[i].v = v < 0 ? 0 : (uint64_t)v;
		}
	}
	free(root);
	cJSON_Delete(j);
	if (what) {
		sb_snapshot_release(&s);
		return bad(err, file, what);
	}
	s.id = id;
	*ret = s;
	return 0;
}

int sb_snapshot_head(sb_workspace *w, int64_t *ret_id, sb_error *err)
{
	_cleanup_free_ char *data = NULL;
	int64_t id;
	if (sb_read_file_at(sb_workspace_dir_fd(w), "head", 64, &data, NULL, NULL) >= 0) {
		data[strcspn(data, "\n")] = 0;
		char name[64];
		snprintf(name, sizeof(name), "snapshots/%s.json", data);
		if (sb_snapshot_parse_id(data, &id, NULL) >= 0 &&
		    faccessat(sb_workspace_dir_fd(w), name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
			*ret_id = id;
			return 0;
		}
	}
	return sb_snapshot_latest(w, ret_id, err);
}

int sb_snapshot_set_head(sb_workspace *w, int64_t id, sb_error *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRId64 "\n", id);
	return sb_write_atomic(sb_workspace_dir_fd(w), "head", buf, (size_t)n, 0600,
			       SB_WRITE_LOCKED, err);
}

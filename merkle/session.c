/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "json.h"
#include "session.h"
#include "trash.h"

#define SESSION_MAX (1u << 20)

void sb_session_init(sb_session *s)
{
	memset(s, 0, sizeof(*s));
	s->baseline = -1;
	s->exit_status = -1;
}

void sb_session_release(sb_session *s)
{
	sb_strv_free(s->command);
	free(s->isolation);
	sb_session_init(s);
}

/* The kernel's id of this boot, or "" when it cannot be read. */
static void boot_id(char out[40])
{
	out[0] = 0;
	_cleanup_close_ int fd =
	    open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = fd < 0 ? -1 : read(fd, out, 39);
	n = n < 0 ? 0 : n;
	out[n] = 0;
	out[strcspn(out, "\n")] = 0;
}

bool sb_session_same_boot(const sb_session *s)
{
	char now[40];
	boot_id(now);
	return now[0] && strcmp(now, s->boot_id) == 0;
}

/* The directory name beneath dir_fd (never a symlink); -ENOENT without a message. */
static int open_dir(sb_workspace *w, int dir_fd, const char *name, const char *shown, sb_error *err)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT
				       : sb_error_errno(err, errno, "open '%s/%s'",
							sb_workspace_area_path(w), shown);
	return fd;
}

static int session_dir(sb_workspace *w, bool create, sb_error *err)
{
	int dfd = sb_workspace_dir_fd(w);
	if (create && mkdirat(dfd, "session", 0700) < 0 && errno != EEXIST)
		return sb_error_errno(err, errno, "create '%s/session'", sb_workspace_area_path(w));
	return open_dir(w, dfd, "session", "session", err);
}

int sb_session_read(sb_workspace *w, sb_session *ret, sb_error *err)
{
	_cleanup_close_ int fd = session_dir(w, false, err);
	if (fd < 0)
		return fd;
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = sb_read_file_at(fd, "session.json", SESSION_MAX, &data, &len, NULL);
	if (r == -ENOENT) {
		/* A directory without its record: a crash before the first write. */
		sb_session_init(ret);
		ret->state = SB_SESSION_RUNNING;
		return 0;
	}
	const char *what = NULL;
	cJSON *j = r < 0 ? NULL : cJSON_ParseWithLength(data, len);
	sb_session s;
	sb_session_init(&s);
	_cleanup_free_ char *state = NULL, *base = NULL, *staged = NULL, *xattr = NULL,
			    *boot = NULL;
	int64_t pid = -1, es = -1;
	if (!j)
		what = "not valid JSON";
	else if (sb_json_get_str(j, "state", false, &state) < 0 ||
		 (strcmp(state, "running") != 0 && strcmp(state, "staged") != 0))
		what = "bad state";
	else if (sb_json_get_int(j, "baseline", false, &s.baseline) < 0)
		what = "bad baseline";
	else if (sb_json_get_str(j, "baseline_root", false, &base) < 0 ||
		 sb_id_from_hex(base, &s.baseline_root) < 0)
		what = "bad baseline root";
	else if (sb_json_get_str(j, "staged_root", true, &staged) < 0 ||
		 (staged && sb_id_from_hex(staged, &s.staged_root) < 0))
		what = "bad staged root";
	else if (sb_json_get_str(j, "upper_xattr", true, &xattr) < 0 ||
		 (xattr && strcmp(xattr, "user") != 0 && strcmp(xattr, "trusted") != 0) ||
		 (!xattr && !staged && strcmp(state, "staged") == 0))
		/* an upper read in the wrong namespace would miss or invent whiteouts */
		what = "bad upper xattr namespace";
	else if (sb_json_get_str(j, "boot_id", true, &boot) < 0 ||
		 (boot && strlen(boot) >= sizeof(s.boot_id)))
		what = "bad boot id";
	else if (sb_json_get_strv(j, "command", &s.command) < 0)
		what = "bad command";
	else if (sb_json_get_i64str(j, "started_ns", &s.started_ns) < 0)
		what = "bad start time";
	else if (sb_json_get_int(j, "pid", true, &pid) < 0)
		what = "bad pid";
	else if (sb_json_get_int(j, "exit_status", true, &es) < 0 || es > 255)
		what = "bad exit status";
	else if (sb_json_get_str(j, "isolation", true, &s.isolation) < 0)
		what = "bad isolation";
	cJSON_Delete(j);
	if (what) {
		sb_session_release(&s);
		return sb_error_set(err, EBADMSG,
				    "session record '%s/session/session.json' is corrupt (%s); "
				    "'snapbox discard' removes it",
				    sb_workspace_area_path(w), what);
	}
	s.state = strcmp(state, "staged") == 0 ? SB_SESSION_STAGED : SB_SESSION_RUNNING;
	s.has_staged = staged != NULL;
	s.upper_userxattr = xattr && strcmp(xattr, "user") == 0;
	if (boot)
		memcpy(s.boot_id, boot, strlen(boot) + 1);
	s.pid = (pid_t)pid;
	s.exit_status = (int)es;
	*ret = s;
	return 0;
}

int sb_session_write(sb_workspace *w, const sb_session *s, sb_error *err)
{
	_cleanup_close_ int fd = session_dir(w, true, err);
	if (fd < 0)
		return fd;
	char hex[SB_HEX_LEN + 1];
	cJSON *j = cJSON_CreateObject();
	if (!j)
		return -ENOMEM;
	cJSON_AddStringToObject(j, "state", s->state == SB_SESSION_STAGED ? "staged" : "running");
	cJSON_AddNumberToObject(j, "baseline", (double)s->baseline);
	cJSON_AddStringToObject(j, "baseline_root", sb_id_to_hex(&s->baseline_root, hex));
	if (s->has_staged)
		cJSON_AddStringToObject(j, "staged_root", sb_id_to_hex(&s->staged_root, hex));
	else
		cJSON_AddNullToObject(j, "staged_root");
	cJSON_AddStringToObject(j, "upper_xattr", s->upper_userxattr ? "user" : "trusted");
	char boot[40];
	boot_id(boot);
	cJSON_AddStringToObject(j, "boot_id", boot);
	cJSON_AddItemToObject(j, "command", sb_json_strv(s->command));
	sb_json_add_i64str(j, "started_ns", s->started_ns);
	cJSON_AddNumberToObject(j, "pid", (double)s->pid);
	if (s->exit_status >= 0)
		cJSON_AddNumberToObject(j, "exit_status", s->exit_status);
	else
		cJSON_AddNullToObject(j, "exit_status");
	if (s->isolation)
		cJSON_AddStringToObject(j, "isolation", s->isolation);
	else
		cJSON_AddNullToObject(j, "isolation");
	_cleanup_free_ char *text = cJSON_Print(j);
	cJSON_Delete(j);
	if (!text)
		return -ENOMEM;
	return sb_write_atomic(fd, "session.json", text, strlen(text), 0600,
			       SB_WRITE_SYNC | SB_WRITE_LOCKED, err);
}

/*
 * A cleaner that cannot be started is no failure of the caller's: the trash
 * waits for the next command that drops something.
 */
static void clean_trash(sb_workspace *w)
{
	sb_error e = SB_ERROR_INIT;
	(void)sb_trash_clean(sb_workspace_dir_fd(w), &e);
}

int sb_session_remove(sb_workspace *w, sb_error *err)
{
	int r = sb_trash_put(sb_workspace_dir_fd(w), sb_workspace_dir_fd(w), "session", err);
	clean_trash(w);
	return r;
}

int sb_session_layers(sb_workspace *w, char **ret_upper, char **ret_work, sb_error *err)
{
	_cleanup_close_ int fd = session_dir(w, true, err);
	if (fd < 0)
		return fd;
	int r = sb_session_drop_layers(w, err);
	if (r < 0)
		return r;
	if (mkdirat(fd, "upper", 0755) < 0 || mkdirat(fd, "work", 0700) < 0)
		return sb_error_errno(err, errno, "create session layers in '%s/session'",
				      sb_workspace_area_path(w));
	if (asprintf(ret_upper, "%s/session/upper", sb_workspace_area_path(w)) < 0)
		return -ENOMEM;
	if (asprintf(ret_work, "%s/session/work", sb_workspace_area_path(w)) < 0) {
		free(*ret_upper);
		return -ENOMEM;
	}
	return 0;
}

int sb_session_upper_fd(sb_workspace *w, sb_error *err)
{
	_cleanup_close_ int fd = session_dir(w, false, err);
	if (fd < 0)
		return fd;
	return open_dir(w, fd, "upper", "session/upper", err);
}

int sb_session_drop_layers(sb_workspace *w, sb_error *err)
{
	_cleanup_close_ int fd = session_dir(w, false, err);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	int r = sb_trash_put(sb_workspace_dir_fd(w), fd, "upper", err);
	if (r >= 0)
		r = sb_trash_put(sb_workspace_dir_fd(w), fd, "work", err);
	clean_trash(w);
	return r;
}

bool sb_session_is_stale(const sb_session *s)
{
	return s->state == SB_SESSION_RUNNING &&
	       (s->pid <= 0 || (kill(s->pid, 0) < 0 && errno == ESRCH));
}

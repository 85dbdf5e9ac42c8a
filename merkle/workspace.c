/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "hash.h"
#include "lock.h"
#include "workspace.h"

struct sb_workspace {
	char *path;
	char *store_path;
	char *area_path;
	char id[33];
	int root_fd;
	int dir_fd;
	sb_store *store;
	bool store_borrowed; /* sb_workspace_open_area: the caller's */
	sb_lock lock;
};

int sb_store_default_path(char **ret_path, sb_error *err)
{
	const char *e = getenv("SNAPBOX_STORE");
	char *p = NULL;
	if (e && *e) {
		p = strdup(e);
	} else if ((e = getenv("XDG_STATE_HOME")) && e[0] == '/') {
		if (asprintf(&p, "%s/snapbox", e) < 0)
			p = NULL;
	} else {
		const char *home = getenv("HOME");
		if (!home || home[0] != '/') {
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home)
			return sb_error_set(err, ENOENT,
					    "cannot find a home directory for the store; "
					    "set SNAPBOX_STORE or use --store DIR");
		if (asprintf(&p, "%s/.local/state/snapbox", home) < 0)
			p = NULL;
	}
	if (!p)
		return -ENOMEM;
	*ret_path = p;
	return 0;
}

static int mkdir_p(const char *path, mode_t mode, sb_error *err)
{
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	for (char *s = copy + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(copy, mode) < 0 && errno != EEXIST)
				return sb_error_errno(err, errno, "create directory '%s'", copy);
			*s = c;
			if (c == 0)
				break;
		}
	}
	return 0;
}

static void workspace_id(const char *canonical, char out[33])
{
	sb_id id;
	sb_sha256_buf(canonical, strlen(canonical), &id);
	sb_hex_encode(id.b, 16, out);
}

int sb_workspace_open(const char *store_root, const char *ws_path, sb_ws_flags flags,
		      sb_workspace **ret, sb_error *err)
{
	int r;
	_cleanup_free_ char *canon = realpath(ws_path, NULL);
	if (!canon)
		return sb_error_errno(err, errno, "workspace '%s'", ws_path);
	_cleanup_close_ int root_fd = open(canon, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return sb_error_errno(err, errno, "workspace '%s'", canon);

	_cleanup_free_ char *store_abs = NULL;
	if (flags & SB_WS_CREATE) {
		r = mkdir_p(store_root, 0700, err);
		if (r < 0)
			return r;
	}
	store_abs = realpath(store_root, NULL);
	if (!store_abs) {
		if (errno == ENOENT)
			return sb_error_set(err, ENOENT,
					    "no snapshots of '%s' yet (store '%s' "
					    "does not exist); run 'snapbox snapshot' first",
					    canon, store_root);
		return sb_error_errno(err, errno, "store '%s'", store_root);
	}
	/* A store inside the workspace would snapshot itself. */
	size_t cl = strlen(canon);
	if (strncmp(store_abs, canon, cl) == 0 && (store_abs[cl] == '/' || store_abs[cl] == 0) &&
	    strcmp(canon, "/") != 0)
		return sb_error_set(err, EINVAL,
				    "store '%s' lies inside the workspace '%s'; choose a store "
				    "outside it (--store DIR or SNAPBOX_STORE)",
				    store_abs, canon);

	_cleanup_free_ sb_workspace *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->root_fd = w->dir_fd = -1;
	w->lock.fd = -1;
	workspace_id(canon, w->id);
	if (asprintf(&w->area_path, "%s/workspaces/%s", store_abs, w->id) < 0)
		return -ENOMEM;

	if (flags & SB_WS_CREATE) {
		r = mkdir_p(w->area_path, 0700, err);
		if (r < 0)
			goto fail;
	}
	w->dir_fd = open(w->area_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0) {
		if (errno == ENOENT)
			r = sb_error_set(err, ENOENT,
					 "no snapshots of '%s' yet; run 'snapbox snapshot' first",
					 canon);
		else
			r = sb_error_errno(err, errno, "workspace area '%s'", w->area_path);
		goto fail;
	}
	if (flags & SB_WS_CREATE) {
		if (mkdirat(w->dir_fd, "snapshots", 0700) < 0 && errno != EEXIST) {
			r = sb_error_errno(err, errno, "create '%s/snapshots'", w->area_path);
			goto fail;
		}
		/* "path" is for humans; rewrite only when missing or different. */
		_cleanup_free_ char *old = NULL;
		if (sb_read_file_at(w->dir_fd, "path", PATH_MAX + 2, &old, NULL, NULL) < 0 ||
		    strncmp(old, canon, strlen(canon)) != 0) {
			_cleanup_free_ char *line = NULL;
			if (asprintf(&line, "%s\n", canon) < 0) {
				r = -ENOMEM;
				goto fail;
			}
			r = sb_write_atomic(w->dir_fd, "path", line, strlen(line), 0600, 0, err);
			if (r < 0)
				goto fail;
		}
	}
	r = sb_store_open(store_abs, (flags & SB_WS_WRITE) ? SB_STORE_WRITE : 0, &w->store, err);
	if (r < 0)
		goto fail;
	w->path = TAKE_PTR(canon);
	w->store_path = TAKE_PTR(store_abs);
	w->root_fd = TAKE_FD(root_fd);
	*ret = TAKE_PTR(w);
	return 0;
fail:
	CLOSE_FD(w->dir_fd);
	free(w->area_path);
	return r;
}

int sb_workspace_id_of(const char *ws_path, char ret[33], sb_error *err)
{
	_cleanup_free_ char *canon = realpath(ws_path, NULL);
	if (!canon)
		return sb_error_errno(err, errno, "workspace '%s'", ws_path);
	workspace_id(canon, ret);
	return 0;
}

int sb_workspace_open_area(sb_store *s, const char *store_path, const char *id, sb_workspace **ret,
			   sb_error *err)
{
	_cleanup_free_ sb_workspace *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->root_fd = w->dir_fd = w->lock.fd = -1;
	snprintf(w->id, sizeof(w->id), "%s", id);
	if (asprintf(&w->area_path, "%s/workspaces/%s", store_path, id) < 0)
		return -ENOMEM;
	w->store_path = strdup(store_path);
	w->dir_fd = open(w->area_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	int r = 0;
	if (w->dir_fd < 0)
		r = sb_error_errno(err, errno, "workspace area '%s'", w->area_path);
	else if (!w->store_path)
		r = -ENOMEM;
	else if (sb_read_file_at(w->dir_fd, "path", PATH_MAX + 2, &w->path, NULL, NULL) < 0 &&
		 !(w->path = strdup("?")))
		r = -ENOMEM;
	if (r < 0) {
		CLOSE_FD(w->dir_fd);
		free(w->area_path);
		free(w->store_path);
		return r;
	}
	w->path[strcspn(w->path, "\n")] = 0;
	w->store = s;
	w->store_borrowed = true;
	*ret = TAKE_PTR(w);
	return 0;
}

void sb_workspace_free(sb_workspace *w)
{
	if (!w)
		return;
	sb_lock_release(&w->lock);
	if (!w->store_borrowed)
		sb_store_free(w->store);
	CLOSE_FD(w->root_fd);
	CLOSE_FD(w->dir_fd);
	free(w->path);
	free(w->store_path);
	free(w->area_path);
	free(w);
}

int sb_workspace_lock(sb_workspace *w, int lock_flags, sb_error *err)
{
	int r = sb_lock_take(&w->lock, w->dir_fd, "lock", (sb_lock_flags)lock_flags, err);
	if (r == -EBUSY)
		return r;
	if (r < 0)
		return sb_error_prefix(err, "workspace '%s'", w->path);
	return 0;
}

void sb_workspace_unlock(sb_workspace *w)
{
	sb_lock_release(&w->lock);
}

sb_store *sb_workspace_store(sb_workspace *w)
{
	return w->store;
}

int sb_workspace_root_fd(sb_workspace *w)
{
	return w->root_fd;
}

int sb_workspace_dir_fd(sb_workspace *w)
{
	return w->dir_fd;
}

const char *sb_workspace_path(sb_workspace *w)
{
	return w->path;
}

const char *sb_workspace_store_path(sb_workspace *w)
{
	return w->store_path;
}

const char *sb_workspace_area_path(sb_workspace *w)
{
	return w->area_path;
}

const char *sb_workspace_id(sb_workspace *w)
{
	return w->id;
}

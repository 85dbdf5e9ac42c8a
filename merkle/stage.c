/* SPDX-License-Identifier: MIT */
/*
 * Deletions, directories and fifos become edits on the spot; regular files
 * and symlinks, whose contents must be read, hashed and compressed, are
 * staged on all cores (workers.h). Each worker writes only its own items'
 * edits, so the edit list is the same whatever order the files were read in.
 *
 * A worker keeps the last directory it opened (beneath the upper, no symlink
 * on the way): the change list is sorted, so the files of one directory come
 * in a run, and each is then one openat(dir, name, O_NOFOLLOW) instead of a
 * resolution of its whole path.
 *
 * A preview runs the same staging with each regular file stat'ed instead of
 * read, into the store's scratch mode, and lets the tree diff say what
 * changed: one diff for both, so a run's summary cannot disagree with
 * `snapbox diff`. Its only own rule is the reading of a file the metadata
 * cannot tell from the baseline's.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "content.h"
#include "edit.h"
#include "fileio.h"
#include "safefs.h"
#include "stage.h"
#include "workers.h"

typedef struct parent_dir {
	const char *path; /* the directory's path: a prefix of a change's path */
	size_t len;
	int fd;
} parent_dir;

typedef struct stager {
	sb_store *s;
	int upper_fd;
	bool preview; /* SB_STAGE_PREVIEW: files are stat'ed, not read */
	const sb_changes *changes;
	sb_edit *edits;
	size_t *contents;    /* indices of the files and symlinks, for the workers */
	parent_dir *parents; /* one per worker */
	atomic_uint_fast64_t files, bytes, stripped;
} stager;

static int64_t mtime_of(const struct stat *st)
{
	return sb_ns_from_timespec(&st->st_mtim);
}

/* The command names its files: quoted (escapes and all) before they reach a terminal. */
static const char *qpath(const char *path, char *buf, size_t size)
{
	return sb_quote(buf, size, path, strlen(path));
}

/* "<what> staged '<path>': <errno's text>", for the errno a call just set. */
static int fail_errno(const char *path, const char *what, sb_error *err)
{
	int e = errno;
	char q[512];
	return sb_error_errno(err, e, "%s staged '%s'", what, qpath(path, q, sizeof(q)));
}

/* The directory holding c->path, and in *ret_name the last component. */
static int open_parent(stager *sg, parent_dir *pd, const sb_change *c, const char **ret_name,
		       sb_error *err)
{
	const char *slash = memrchr(c->path, '/', c->path_len);
	size_t len = slash ? (size_t)(slash - c->path) : 0;
	const char *name = slash ? slash + 1 : c->path;
	if (pd->fd >= 0 && pd->len == len && memcmp(pd->path, c->path, len) == 0 &&
	    sb_name_is_valid(name, c->path_len - (size_t)(name - c->path))) {
		*ret_name = name;
		return pd->fd;
	}
	CLOSE_FD(pd->fd);
	int fd = sb_open_parent_beneath(sg->upper_fd, c->path, ret_name, err);
	if (fd < 0)
		return fd;
	*pd = (parent_dir){c->path, len, fd};
	return fd;
}

/*
 * Reading a file the command just wrote would update its atime: one inode
 * write per file, dearer than the read. O_NOATIME needs us to own the file
 * (or CAP_FOWNER): EPERM means retry without it.
 */
static int open_staged(int dir_fd, const char *name, const char *path, sb_error *err)
{
	int flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dir_fd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dir_fd, name, flags);
	if (fd < 0 && errno == ELOOP) {
		char q[512];
		return sb_error_set(err, ELOOP, "staged '%s' is now a symlink, refused",
				    qpath(path, q, sizeof(q)));
	}
	return fd < 0 ? fail_errno(path, "open", err) : fd;
}

/* The entry of a regular file, from its stat: type, mode (never setuid/setgid), size, mtime. */
static void file_entry(stager *sg, const struct stat *sb, uint64_t size, sb_tree_entry *e)
{
	e->type = SB_FT_REG;
	/*
	 * The command is an adversary: a setuid or setgid bit it set would become
	 * a privileged program on the host once applied. Never staged.
	 */
	e->mode = sb->st_mode & 07777;
	if (e->mode & (S_ISUID | S_ISGID)) {
		e->mode &= ~(mode_t)(S_ISUID | S_ISGID);
		atomic_fetch_add(&sg->stripped, 1);
	}
	e->size = size;
	e->mtime_ns = mtime_of(sb);
	atomic_fetch_add(&sg->files, 1);
	atomic_fetch_add(&sg->bytes, size);
}

static int not_regular(const char *path, sb_error *err)
{
	char q[512];
	return sb_error_set(err, EINVAL, "staged '%s' is no longer a regular file",
			    qpath(path, q, sizeof(q)));
}

bool sb_stage_id_unread(const sb_id *id)
{
	for (size_t i = 0; i < sizeof(id->b); i++)
		if (id->b[i] != 0xff)
			return false;
	return true;
}

/* A preview leaves the contents unread: the id says so (stage.h). */
static int preview_file(stager *sg, int dfd, const char *name, const sb_change *c, sb_tree_entry *e,
			sb_error *err)
{
	struct stat sb;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return fail_errno(c->path, "stat", err);
	if (!S_ISREG(sb.st_mode))
		return not_regular(c->path, err);
	memset(&e->id, 0xff, sizeof(e->id));
	file_entry(sg, &sb, (uint64_t)sb.st_size, e);
	return 0;
}

static int stage_file(stager *sg, parent_dir *pd, const sb_change *c, sb_tree_entry *e,
		      sb_error *err)
{
	const char *name;
	int dfd = open_parent(sg, pd, c, &name, err);
	if (dfd < 0)
		return dfd;
	if (sg->preview)
		return preview_file(sg, dfd, name, c, e, err);
	_cleanup_close_ int fd = open_staged(dfd, name, c->path, err);
	if (fd < 0)
		return fd;
	char q[512];
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return fail_errno(c->path, "stat", err);
	if (!S_ISREG(sb.st_mode))
		return not_regular(c->path, err);
	/*
	 * The sandbox is gone and nothing writes to the upper any more: the size
	 * stat'ed is final, and a read that ends there needs no second one.
	 */
	uint64_t size;
	int r = sb_content_store_fd_stat(sg->s, fd, &sb, &e->id, &size, err);
	if (r < 0)
		return sb_error_prefix(err, "staged '%s'", qpath(c->path, q, sizeof(q)));
	if (size != (uint64_t)sb.st_size)
		return sb_error_set(err, EIO, "staged '%s' changed size while read",
				    qpath(c->path, q, sizeof(q)));
	file_entry(sg, &sb, size, e);
	return 0;
}

static int stage_symlink(stager *sg, parent_dir *pd, const sb_change *c, sb_tree_entry *e,
			 sb_error *err)
{
	const char *name;
	int dfd = open_parent(sg, pd, c, &name, err);
	if (dfd < 0)
		return dfd;
	char target[PATH_MAX + 1], q[512];
	ssize_t n = readlinkat(dfd, name, target, sizeof(target));
	if (n < 0)
		return fail_errno(c->path, "readlink", err);
	if (n == 0 || (size_t)n >= sizeof(target))
		return sb_error_set(err, EINVAL, "staged symlink '%s' has a bad target",
				    qpath(c->path, q, sizeof(q)));
	struct stat sb;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return fail_errno(c->path, "stat", err);
	int r = sb_store_put(sg->s, SB_OBJ_BLOB, target, (size_t)n, &e->id, err);
	if (r < 0)
		return r;
	e->type = SB_FT_SYMLINK;
	e->mode = 0777;
	e->size = (uint64_t)n;
	e->mtime_ns = mtime_of(&sb);
	return 0;
}

/* A worker's item: the i-th file or symlink. */
static int stage_content(void *ctx, unsigned worker, size_t i, sb_error *err)
{
	stager *sg = ctx;
	size_t k = sg->contents[i];
	const sb_change *c = &sg->changes->v[k];
	sb_tree_entry *e = &sg->edits[k].entry;
	parent_dir *pd = &sg->parents[worker];
	return c->type == SB_FT_REG ? stage_file(sg, pd, c, e, err)
				    : stage_symlink(sg, pd, c, e, err);
}

static int stage_contents(stager *sg, size_t n_contents, sb_error *err)
{
	int threads = sb_workers_count(0);
	_cleanup_free_ parent_dir *parents = calloc((size_t)threads, sizeof(*parents));
	if (!parents)
		return -ENOMEM;
	for (int t = 0; t < threads; t++)
		parents[t].fd = -1;
	sg->parents = parents;
	/* safefs reads its environment switch on first use: here, not racing in the workers. */
	(void)sb_safefs_fallback_forced();
	int r = sb_workers_for(n_contents, threads, stage_content, sg, err);
	for (int t = 0; t < threads; t++)
		CLOSE_FD(parents[t].fd);
	sg->parents = NULL;
	return r;
}

int sb_stage_upper(sb_store *s, const sb_id *base_root, const sb_changes *changes, int upper_fd,
		   sb_stage_flags flags, sb_id *ret_root, sb_stage_stats *ret_stats, sb_error *err)
{
	sb_stage_stats st = {0};
	size_t n = changes->n;
	_cleanup_free_ sb_edit *edits = calloc(n ? n : 1, sizeof(*edits));
	_cleanup_free_ size_t *contents = calloc(n ? n : 1, sizeof(*contents));
	if (!edits || !contents)
		return -ENOMEM;
	stager sg = {.s = s,
		     .upper_fd = upper_fd,
		     .preview = flags & SB_STAGE_PREVIEW,
		     .changes = changes,
		     .edits = edits,
		     .contents = contents};
	atomic_init(&sg.files, 0);
	atomic_init(&sg.bytes, 0);
	atomic_init(&sg.stripped, 0);
	size_t n_contents = 0;
	char q[512];
	for (size_t i = 0; i < n; i++) {
		const sb_change *c = &changes->v[i];
		sb_edit *e = &edits[i];
		e->path = c->path;
		e->path_len = c->path_len;
		e->entry.mode = c->mode & 07777;
		e->entry.mtime_ns = c->mtime_ns;
		if (c->kind == SB_CHANGE_DELETE) {
			e->op = SB_EDIT_DELETE;
			st.deletions++;
			continue;
		}
		e->op = SB_EDIT_PUT;
		switch (c->type) {
		case SB_FT_REG:
		case SB_FT_SYMLINK:
			contents[n_contents++] = i;
			break;
		case SB_FT_FIFO:
			e->entry.type = SB_FT_FIFO;
			break;
		case SB_FT_DIR:
			e->op = c->opaque ? SB_EDIT_DIR_EMPTY : SB_EDIT_DIR;
			st.dirs++;
			break;
		default:
			return sb_error_set(err, EINVAL, "staged '%s' has an unknown type",
					    qpath(c->path, q, sizeof(q)));
		}
	}
	int r = stage_contents(&sg, n_contents, err);
	if (r >= 0)
		r = sb_tree_edit(s, base_root, edits, n, ret_root, NULL, err);
	if (r < 0)
		return r;
	st.files = atomic_load(&sg.files);
	st.bytes = atomic_load(&sg.bytes);
	st.stripped = atomic_load(&sg.stripped);
	if (ret_stats)
		*ret_stats = st;
	return 0;
}

/* ---- preview ---- */

typedef struct previewer {
	int upper_fd;
	sb_diff_list *out;
	sb_stage_preview_stats st;
	sb_error *err;
} previewer;

/* The content id of the upper's file at path, read as staging would read it. */
static int upper_file_id(previewer *pv, const char *path, size_t len, sb_id *ret_id)
{
	_cleanup_free_ char *p = strndup(path, len);
	if (!p)
		return -ENOMEM;
	const char *name;
	_cleanup_close_ int dfd = sb_open_parent_beneath(pv->upper_fd, p, &name, pv->err);
	if (dfd < 0)
		return dfd;
	_cleanup_close_ int fd = open_staged(dfd, name, p, pv->err);
	if (fd < 0)
		return fd;
	uint64_t size;
	int r = sb_content_hash_fd(fd, ret_id, &size, pv->err);
	pv->st.hashed++;
	if (r < 0) {
		char q[512];
		return sb_error_prefix(pv->err, "staged '%s'", qpath(p, q, sizeof(q)));
	}
	return 0;
}

/*
 * Keeps what the real diff (without SB_DIFF_MTIME) would report, given a diff
 * of the preview tree with SB_DIFF_MTIME: every regular file of the upper has
 * the unread id there, so an 'M' file of unchanged mode and size is read to tell
 * an edit from a copy-up; a change of mtime alone is not reported but still
 * leaves something to stage.
 */
static int preview_entry(void *userdata, const sb_diff_entry *d)
{
	previewer *pv = userdata;
	sb_diff_entry shown = *d;
	sb_tree_entry known;
	if (d->status == 'M') {
		const sb_tree_entry *o = d->old, *n = d->new;
		bool same_meta = o->mode == n->mode && o->size == n->size;
		if (n->type == SB_FT_REG && sb_stage_id_unread(&n->id) && same_meta) {
			known = *n;
			int r = upper_file_id(pv, d->path, d->path_len, &known.id);
			if (r < 0)
				return r;
			shown.new = &known;
		}
		bool same_content = n->type == SB_FT_DIR || sb_id_eq(&o->id, &shown.new->id);
		if (o->mode == n->mode && same_content && (n->type == SB_FT_DIR || same_meta)) {
			if (o->mtime_ns != n->mtime_ns)
				pv->st.pending = true;
			return 0;
		}
	}
	pv->st.pending = true;
	if (d->status != 'D' && shown.new->type == SB_FT_REG)
		pv->st.bytes += shown.new->size;
	if (d->status != 'D' && shown.new->type == SB_FT_DIR) {
		/* made of unread ids: not the id staging will give */
		known = *shown.new;
		memset(&known.id, 0xff, sizeof(known.id));
		shown.new = &known;
	}
	return sb_diff_collect(pv->out, &shown);
}

int sb_stage_preview(sb_store *s, const sb_id *base_root, const sb_changes *changes, int upper_fd,
		     sb_diff_list *ret, sb_stage_preview_stats *ret_stats, sb_error *err)
{
	int r = sb_store_scratch_begin(s);
	if (r < 0)
		return sb_error_errno(err, -r, "a preview's objects in memory");
	sb_id root;
	sb_stage_stats st;
	previewer pv = {.upper_fd = upper_fd, .out = ret, .err = err};
	r = sb_stage_upper(s, base_root, changes, upper_fd, SB_STAGE_PREVIEW, &root, &st, err);
	if (r >= 0) {
		sb_diff_opts o = {.flags = SB_DIFF_MTIME};
		r = sb_diff_trees(s, base_root, &root, &o, preview_entry, &pv, err);
	}
	sb_store_scratch_end(s);
	if (r < 0)
		return r;
	pv.st.stripped = st.stripped;
	if (ret_stats)
		*ret_stats = pv.st;
	return 0;
}

/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "sb-test.h"
#include "changes.h"
#include "fileio.h"
#include "overlay.h"

/*
 * Upper layers built by hand (mknod, setxattr, .wh. files, hostile names)
 * and by a real overlay mount; each test asserts the exact change list.
 */

static void mkfile(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ASSERT_OK(fd);
	ASSERT_OK(sb_write_full(fd, text, strlen(text)));
	close(fd);
	ASSERT_OK(chmod(path, mode));
}

static void setx(const char *path, const char *key, const char *val)
{
	if (lsetxattr(path, key, val, strlen(val), 0) < 0)
		sb_test_fail(__FILE__, __LINE__, "setxattr %s %s: %s", path, key, strerror(errno));
}

static bool user_xattrs_here(void)
{
	mkfile("xattr-probe", "", 0644);
	bool ok = lsetxattr("xattr-probe", "user.sbtest", "1", 1, 0) == 0;
	unlink("xattr-probe");
	return ok;
}

static void read_upper(const char *dir, sb_upper_flags flags, sb_changes *ch)
{
	sb_error err = SB_ERROR_INIT;
	int r = sb_upper_read_path(dir, flags, ch, &err);
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "sb_upper_read_path: %s", err.msg);
}

/* Renders the list as "K path type opaque" lines, one per entry (W/D). */
static char *render(const sb_changes *ch)
{
	size_t cap = 64;
	for (size_t i = 0; i < ch->n; i++)
		cap += ch->v[i].path_len + 16;
	char *s = malloc(cap);
	size_t o = 0;
	s[0] = 0;
	static const char *const types = "-fdlp";
	for (size_t i = 0; i < ch->n; i++) {
		const sb_change *c = &ch->v[i];
		o += (size_t)snprintf(s + o, cap - o, "%c %s %c%s\n",
				      c->kind == SB_CHANGE_WRITE ? 'W' : 'D', c->path,
				      types[c->type], c->opaque ? " opaque" : "");
	}
	return s;
}

static void expect(const sb_changes *ch, const char *want)
{
	char *got = render(ch);
	if (strcmp(got, want) != 0)
		sb_test_fail(__FILE__, __LINE__, "change list:\n%s--- expected:\n%s", got, want);
	free(got);
}

TEST(plain_entries_carry_type_mode_size_mtime)
{
	ASSERT_EQ(sb_test_sh("mkdir -p up/dir/sub && ln -s target up/link && mkfifo up/fifo"), 0);
	mkfile("up/file", "hello", 0640);
	struct timespec ts[2] = {{1000, 5}, {1234567890, 123456789}};
	ASSERT_OK(utimensat(AT_FDCWD, "up/file", ts, 0));
	mkfile("up/dir/sub/deep", "x", 0755);
	/* A socket has no content: skipped. */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "up/sock");
	ASSERT_OK(bind(s, (struct sockaddr *)&a, sizeof(a)));
	close(s);
	/* Plain files: the same list, regular files unstat'ed, the others as before. */
	for (int plain = 0; plain < 2; plain++) {
		sb_changes ch;
		read_upper("up", plain ? SB_UPPER_PLAIN_FILES : 0, &ch);
		expect(&ch, "W dir d\n"
			    "W dir/sub d\n"
			    "W dir/sub/deep f\n"
			    "W fifo p\n"
			    "W file f\n"
			    "W link l\n");
		const sb_change *f = &ch.v[4];
		ASSERT_EQ(f->mode, plain ? 0 : 0640);
		ASSERT_EQ(f->size, plain ? 0 : 5);
		ASSERT_EQ(f->mtime_ns, plain ? 0 : 1234567890123456789ll);
		ASSERT_EQ(ch.v[2].mode, plain ? 0 : 0755);
		ASSERT_EQ(ch.v[5].size, 6); /* symlink: length of "target" */
		ASSERT_EQ(ch.v[0].mode, 0755);
		sb_changes_release(&ch);
	}
}

TEST(sorted_parents_before_children)
{
	ASSERT_EQ(sb_test_sh("mkdir -p up/a/b && touch up/a-b up/a0 up/a/b/c"), 0);
	sb_changes ch;
	read_upper("up", 0, &ch);
	expect(&ch, "W a d\n"
		    "W a/b d\n"
		    "W a/b/c f\n"
		    "W a-b f\n"
		    "W a0 f\n");
	sb_changes_release(&ch);
}

TEST(kernel_whiteout_char_device)
{
	if (!sb_test_is_root())
		SB_SKIP("mknod of a 0/0 whiteout needs root outside a user namespace");
	ASSERT_EQ(sb_test_sh("mkdir -p up/d"), 0);
	ASSERT_OK(mknod("up/gone", S_IFCHR | 0, makedev(0, 0)));
	ASSERT_OK(mknod("up/d/gone-too", S_IFCHR | 0, makedev(0, 0)));
	sb_changes ch;
	read_upper("up", 0, &ch);
	expect(&ch, "W d d\n"
		    "D d/gone-too -\n"
		    "D gone -\n");
	sb_changes_release(&ch);
}

TEST(sort_is_by_path_bytes)
{
	/* The list's order is sb_path_cmp's: '/' before every other byte. */
	ASSERT_EQ(sb_test_sh("mkdir -p up/d && touch up/d/x up/d.txt"), 0);
	sb_changes ch;
	read_upper("up", 0, &ch);
	expect(&ch, "W d d\nW d/x f\nW d.txt f\n");
	sb_changes_release(&ch);
}

TEST(other_device_nodes_are_refused)
{
	if (!sb_test_is_root())
		SB_SKIP("mknod needs root");
	ASSERT_EQ(sb_test_sh("mkdir -p up"), 0);
	ASSERT_OK(mknod("up/null", S_IFCHR | 0600, makedev(1, 3)));
	sb_changes ch = SB_CHANGES_INIT;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_upper_read_path("up", 0, &ch, &err), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(err.msg, "'null'"));
	ASSERT_EQ(ch.n, 0);
}

static void expect_refused(const char *key, const char *what, bool dir);
static void expect_refused_with(sb_upper_flags flags, const char *what);

static void check_opaque_and_xwhiteouts(const char *ns)
{
	sb_upper_flags flags = strcmp(ns, "user") == 0 ? SB_UPPER_USERXATTR : 0;
	char key[64];
	ASSERT_EQ(sb_test_sh("mkdir -p up/opq/kid up/xdir up/plain"), 0);
	snprintf(key, sizeof(key), "%s.overlay.opaque", ns);
	setx("up/opq", key, "y");
	setx("up/xdir", key, "x");
	mkfile("up/xdir/wh", "", 0644);
	mkfile("up/xdir/not-empty", "data", 0644);
	mkfile("up/plain/wh-outside-x", "", 0644);
	snprintf(key, sizeof(key), "%s.overlay.whiteout", ns);
	setx("up/xdir/wh", key, "");
	setx("up/xdir/not-empty", key, "");
	setx("up/plain/wh-outside-x", key, "");
	/* An escaped marker (overlay.overlay.*) belongs to a nested overlay, not to us. */
	snprintf(key, sizeof(key), "%s.overlay.overlay.opaque", ns);
	setx("up/plain", key, "y");
	/* Plain files still look at the files of an opaque=x directory. */
	sb_upper_flags variants[] = {flags, flags | SB_UPPER_PLAIN_FILES};
	for (size_t i = 0; i < ARRAY_SIZE(variants); i++) {
		sb_changes ch;
		read_upper("up", variants[i], &ch);
		expect(&ch, "W opq d opaque\n"
			    "W opq/kid d\n"
			    "W plain d\n"
			    "W plain/wh-outside-x f\n"
			    "W xdir d\n"
			    "W xdir/not-empty f\n"
			    "D xdir/wh -\n");
		sb_changes_release(&ch);
	}
}

TEST(opaque_and_xattr_whiteouts_trusted)
{
	if (!sb_test_is_root())
		SB_SKIP("trusted.* xattrs need CAP_SYS_ADMIN");
	check_opaque_and_xwhiteouts("trusted");
}

TEST(opaque_and_xattr_whiteouts_user)
{
	if (!user_xattrs_here())
		SB_SKIP("the test directory's filesystem has no user.* xattrs");
	check_opaque_and_xwhiteouts("user");
}

TEST(xattrs_through_proc_fallback)
{
	if (!user_xattrs_here())
		SB_SKIP("the test directory's filesystem has no user.* xattrs");
	setenv("SNAPBOX_NO_XATTRAT", "1", 1);
	check_opaque_and_xwhiteouts("user");
	ASSERT_EQ(sb_test_sh("rm -rf up"), 0);
	expect_refused("user.overlay.redirect", "redirect", true);
}

static void expect_refused(const char *key, const char *what, bool dir)
{
	ASSERT_EQ(sb_test_sh("mkdir -p up/ok up/sub"), 0);
	if (dir) {
		ASSERT_EQ(sb_test_sh("mkdir up/sub/bad"), 0);
	} else {
		mkfile("up/sub/bad", "", 0644);
	}
	setx("up/sub/bad", key, "/somewhere");
	sb_upper_flags flags = strncmp(key, "user.", 5) == 0 ? SB_UPPER_USERXATTR : 0;
	sb_changes ch = SB_CHANGES_INIT;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_upper_read_path("up", flags, &ch, &err), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(err.msg, "'sub/bad'"));
	ASSERT_TRUE(strstr(err.msg, what));
	ASSERT_EQ(ch.n, 0);
}

TEST(redirect_and_metacopy_are_refused)
{
	if (user_xattrs_here()) {
		expect_refused("user.overlay.redirect", "redirect", true);
		ASSERT_EQ(sb_test_sh("rm -rf up"), 0);
		expect_refused("user.overlay.metacopy", "metacopy", false);
		ASSERT_EQ(sb_test_sh("rm -rf up"), 0);
	}
	if (!sb_test_is_root())
		SB_SKIP("trusted.* xattrs need CAP_SYS_ADMIN");
	expect_refused("trusted.overlay.redirect", "redirect", true);
	ASSERT_EQ(sb_test_sh("rm -rf up"), 0);
	expect_refused("trusted.overlay.metacopy", "metacopy", false);
}

/*
 * Plain files (an upper of our own mount, metacopy=off) are not asked for
 * xattrs: a metacopy marker there is a plain file's xattr. A redirect on a
 * directory is still refused.
 */
TEST(plain_files_skip_the_metacopy_check)
{
	if (!user_xattrs_here())
		SB_SKIP("the test directory's filesystem has no user.* xattrs");
	ASSERT_EQ(sb_test_sh("mkdir -p up/sub"), 0);
	mkfile("up/sub/file", "data", 0644);
	setx("up/sub/file", "user.overlay.metacopy", "");
	sb_upper_flags flags = SB_UPPER_USERXATTR | SB_UPPER_PLAIN_FILES;
	sb_changes ch;
	read_upper("up", flags, &ch);
	expect(&ch, "W sub d\n"
		    "W sub/file f\n");
	sb_changes_release(&ch);
	ASSERT_EQ(sb_test_sh("rm -rf up && mkdir -p up/sub/bad"), 0);
	setx("up/sub/bad", "user.overlay.redirect", "/somewhere");
	expect_refused_with(flags, "redirect");
}

/*
 * The command in a root-mode sandbox can set user.* xattrs on what it
 * writes: a user.overlay.opaque it forged must not make staging delete the
 * lower contents of a directory. Markers count only in the namespace the
 * kernel wrote (trusted by default, user with SB_UPPER_USERXATTR).
 */
static void build_marked(const char *ns)
{
	char key[64];
	ASSERT_EQ(sb_test_sh("mkdir -p up/%s-opq/kid up/%s-x", ns, ns), 0);
	char dir[64], file[64];
	snprintf(dir, sizeof(dir), "up/%s-opq", ns);
	snprintf(key, sizeof(key), "%s.overlay.opaque", ns);
	setx(dir, key, "y");
	snprintf(dir, sizeof(dir), "up/%s-x", ns);
	setx(dir, key, "x");
	snprintf(file, sizeof(file), "up/%s-x/wh", ns);
	mkfile(file, "", 0644);
	snprintf(key, sizeof(key), "%s.overlay.whiteout", ns);
	setx(file, key, "");
}

static void expect_refused_with(sb_upper_flags flags, const char *what)
{
	sb_changes ch = SB_CHANGES_INIT;
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_upper_read_path("up", flags, &ch, &err), -EOPNOTSUPP);
	if (!strstr(err.msg, what))
		sb_test_fail(__FILE__, __LINE__, "message '%s' lacks '%s'", err.msg, what);
	ASSERT_EQ(ch.n, 0);
}

TEST(user_overlay_xattrs_ignored_in_trusted_mode)
{
	if (!user_xattrs_here())
		SB_SKIP("the test directory's filesystem has no user.* xattrs");
	build_marked("user");
	sb_changes ch;
	read_upper("up", 0, &ch);
	expect(&ch, "W user-opq d\n"
		    "W user-opq/kid d\n"
		    "W user-x d\n"
		    "W user-x/wh f\n");
	sb_changes_release(&ch);
	read_upper("up", SB_UPPER_USERXATTR, &ch);
	expect(&ch, "W user-opq d opaque\n"
		    "W user-opq/kid d\n"
		    "W user-x d\n"
		    "D user-x/wh -\n");
	sb_changes_release(&ch);
	/* Forged redirect, metacopy and a root opaque marker: plain data in trusted mode. */
	ASSERT_EQ(sb_test_sh("mkdir up/redir && echo m > up/meta"), 0);
	setx("up/redir", "user.overlay.redirect", "/elsewhere");
	setx("up/meta", "user.overlay.metacopy", "");
	setx("up", "user.overlay.opaque", "y");
	read_upper("up", 0, &ch);
	ASSERT_EQ(ch.n, 6);
	for (size_t i = 0; i < ch.n; i++) {
		ASSERT_EQ(ch.v[i].kind, SB_CHANGE_WRITE);
		ASSERT_FALSE(ch.v[i].opaque);
	}
	sb_changes_release(&ch);
	expect_refused_with(SB_UPPER_USERXATTR, "opaque");
	ASSERT_OK(lremovexattr("up", "user.overlay.opaque"));
	expect_refused_with(SB_UPPER_USERXATTR, "metacopy");
	ASSERT_OK(lremovexattr("up/meta", "user.overlay.metacopy"));
	expect_refused_with(SB_UPPER_USERXATTR, "redirect");
}

TEST(trusted_overlay_xattrs_ignored_with_userxattr)
{
	if (!sb_test_is_root())
		SB_SKIP("trusted.* xattrs need CAP_SYS_ADMIN");
	build_marked("trusted");
	sb_changes ch;
	read_upper("up", SB_UPPER_USERXATTR, &ch);
	expect(&ch, "W trusted-opq d\n"
		    "W trusted-opq/kid d\n"
		    "W trusted-x d\n"
		    "W trusted-x/wh f\n");
	sb_changes_release(&ch);
	read_upper("up", 0, &ch);
	expect(&ch, "W trusted-opq d opaque\n"
		    "W trusted-opq/kid d\n"
		    "W trusted-x d\n"
		    "D trusted-x/wh -\n");
	sb_changes_release(&ch);
	ASSERT_EQ(sb_test_sh("mkdir up/redir && echo m > up/meta"), 0);
	setx("up/redir", "trusted.overlay.redirect", "/elsewhere");
	setx("up/meta", "trusted.overlay.metacopy", "");
	setx("up", "trusted.overlay.opaque", "y");
	read_upper("up", SB_UPPER_USERXATTR, &ch);
	ASSERT_EQ(ch.n, 6);
	for (size_t i = 0; i < ch.n; i++) {
		ASSERT_EQ(ch.v[i].kind, SB_CHANGE_WRITE);
		ASSERT_FALSE(ch.v[i].opaque);
	}
	sb_changes_release(&ch);
	expect_refused_with(0, "opaque");
	ASSERT_OK(lremovexattr("up", "trusted.overlay.opaque"));
	expect_refused_with(0, "metacopy");
	ASSERT_OK(lremovexattr("up/meta", "trusted.overlay.metacopy"));
	expect_refused_with(0, "redirect");
}

TEST(fuse_overlayfs_wh_names)
{
	ASSERT_EQ(
	    sb_test_sh("mkdir -p up/d up/again up/keep && touch up/.wh.gone up/d/.wh..wh..opq "
		       "up/d/new up/.wh.again up/keep/.wh.inner up/.wh.file-back up/file-back"),
	    0);
	sb_changes ch;
	read_upper("up", SB_UPPER_WH_NAMES, &ch);
	expect(&ch, "W again d opaque\n"
		    "W d d opaque\n"
		    "W d/new f\n"
		    "W file-back f\n"
		    "D gone -\n"
		    "W keep d\n"
		    "D keep/inner -\n");
	sb_changes_release(&ch);
	/* For the kernel backend these are ordinary names. */
	read_upper("up", 0, &ch);
	ASSERT_EQ(ch.n, 10);
	sb_changes_release(&ch);
	/* An opaque marker on the root cannot be represented. */
	ASSERT_EQ(sb_test_sh("touch up/.wh..wh..opq"), 0);
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_upper_read_path("up", SB_UPPER_WH_NAMES, &ch, &err), -EOPNOTSUPP);
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

TEST(hostile_names_and_deep_trees)
{
	ASSERT_OK(mkdir("up", 0755));
	int up = open("up", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(up);
	char longname[256];
	memset(longname, 'L', 255);
	longname[255] = 0;
	const char *names[] = {"new\nline", "\xff\xfe-not-utf8", longname, "sp ace", "-dash"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int fd = openat(up, names[i], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ASSERT_OK(fd);
		close(fd);
	}
	/* 100 levels: deeper than the reader keeps fds open, longer than PATH_MAX. */
	int d = dup(up);
	for (int i = 0; i < 100; i++) {
		ASSERT_OK(mkdirat(d, longname + 200, 0755));
		int next = openat(d, longname + 200, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT_OK(next);
		close(d);
		d = next;
	}
	int fd = openat(d, "bottom", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_OK(fd);
	close(fd);
	close(d);
	int before = count_fds();
	sb_changes ch;
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_upper_read(up, 0, &ch, &err));
	ASSERT_EQ(count_fds(), before);
	ASSERT_EQ(ch.n, ARRAY_SIZE(names) + 101);
	size_t found = 0;
	for (size_t i = 0; i < ch.n; i++)
		for (size_t k = 0; k < ARRAY_SIZE(names); k++)
			if (ch.v[i].path_len == strlen(names[k]) &&
			    memcmp(ch.v[i].path, names[k], ch.v[i].path_len) == 0)
				found++;
	ASSERT_EQ(found, ARRAY_SIZE(names));
	const sb_change *last = NULL;
	for (size_t i = 0; i < ch.n; i++)
		if (ch.v[i].path_len > 4 &&
		    memcmp(ch.v[i].path + ch.v[i].path_len - 7, "/bottom", 7) == 0)
			last = &ch.v[i];
	ASSERT_TRUE(last);
	ASSERT_EQ(last->path_len, 100 * 56 + 6);
	ASSERT_EQ(last->mode, 0600);
	for (size_t i = 1; i < ch.n; i++)
		ASSERT_TRUE(sb_path_cmp(ch.v[i - 1].path, ch.v[i - 1].path_len, ch.v[i].path,
					ch.v[i].path_len) < 0);
	sb_changes_release(&ch);
	close(up);
}

/*
 * A chain of directories levels deep ("c/d/d/..."), with siblings met after
 * the walk comes back up: a directory "s" holding a file and a file "z" at
 * each depth in sib (0 is the upper's root), plus "e" next to "c". Climbing
 * back past the levels whose fds were let go of reopens them.
 */
static void deep_with_siblings(int levels, const int *sib, size_t n_sib)
{
	ASSERT_OK(mkdir("up", 0755));
	int d = open("up", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(d);
	for (int depth = 0; depth < levels; depth++) {
		for (size_t i = 0; i < n_sib; i++) {
			if (sib[i] != depth)
				continue;
			ASSERT_OK(mkdirat(d, "s", 0750));
			int fd = openat(d, "s/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			ASSERT_OK(fd);
			ASSERT_EQ(write(fd, "xyz", 3), 3);
			close(fd);
			fd = openat(d, "z", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			ASSERT_OK(fd);
			close(fd);
		}
		const char *name = depth == 0 ? "c" : "d";
		ASSERT_OK(mkdirat(d, name, 0755));
		int next = openat(d, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT_OK(next);
		close(d);
		d = next;
	}
	int fd = openat(d, "bottom", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	close(fd);
	close(d);
	ASSERT_OK(mkdir("up/e", 0700));

	/* The oracle: find's listing, in the same "W type mode path" form. */
	char *want = sb_test_sh_out("cd up && find . -mindepth 1 -printf 'W %%y %%m %%P\\n' | "
				    "LC_ALL=C sort");
	/* The reader keeps its own bound whatever the depth: a tight fd limit must do. */
	struct rlimit rl;
	ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
	struct rlimit tight = {(rlim_t)count_fds() + 48, rl.rlim_max};
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &tight));
	int before = count_fds();
	sb_changes ch;
	read_upper("up", 0, &ch);
	ASSERT_EQ(count_fds(), before);
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));

	size_t cap = 64, o = 0;
	for (size_t i = 0; i < ch.n; i++)
		cap += ch.v[i].path_len + 32;
	char **lines = calloc(ch.n + 1, sizeof(char *));
	char *got = malloc(cap);
	ASSERT_TRUE(lines && got);
	static const char *const types = "-fdlp";
	for (size_t i = 0; i < ch.n; i++) {
		const sb_change *c = &ch.v[i];
		ASSERT_EQ(c->kind, SB_CHANGE_WRITE);
		ASSERT_FALSE(c->opaque);
		bool in_s = c->path_len >= 3 && memcmp(c->path + c->path_len - 3, "s/f", 3) == 0;
		if (c->type == SB_FT_REG)
			ASSERT_EQ(c->size, in_s ? 3 : 0);
		if (asprintf(&lines[i], "W %c %o %s\n", types[c->type], (unsigned)c->mode,
			     c->path) < 0)
			ASSERT_TRUE(false);
		if (i > 0)
			ASSERT_TRUE(sb_path_cmp(ch.v[i - 1].path, ch.v[i - 1].path_len, c->path,
						c->path_len) < 0);
	}
	qsort(lines, ch.n, sizeof(char *), cmp_line);
	got[0] = 0;
	for (size_t i = 0; i < ch.n; i++) {
		size_t n = strlen(lines[i]);
		memcpy(got + o, lines[i], n + 1);
		o += n;
		free(lines[i]);
	}
	if (strcmp(got, want) != 0)
		sb_test_fail(__FILE__, __LINE__, "%d levels: change list\n%s--- find says:\n%s",
			     levels, got, want);
	/* chain + bottom + e, and s, s/f, z per sibling depth */
	ASSERT_EQ(ch.n, (size_t)levels + 2 + 3 * n_sib);
	free(lines);
	free(got);
	free(want);
	sb_changes_release(&ch);
}

TEST(deep_upper_then_siblings_40)
{
	static const int sib[] = {0, 1, 2, 8, 9, 30, 31, 32, 33, 38, 39};
	deep_with_siblings(40, sib, ARRAY_SIZE(sib));
}

TEST(deep_upper_then_siblings_200)
{
	static const int sib[] = {0, 1, 5, 31, 32, 33, 63, 64, 100, 150, 167, 168, 169, 198, 199};
	deep_with_siblings(200, sib, ARRAY_SIZE(sib));
}

/* The trigger as reported: mkdir -p c/d/... (40 levels); mkdir e. */
TEST(deep_upper_then_sibling_at_root)
{
	ASSERT_EQ(sb_test_sh("mkdir up && cd up && p=c && i=1 && while [ $i -lt 40 ]; do "
			     "p=$p/d; i=$((i+1)); done && mkdir -p $p && mkdir e"),
		  0);
	sb_changes ch;
	read_upper("up", 0, &ch);
	ASSERT_EQ(ch.n, 41);
	ASSERT_STREQ(ch.v[40].path, "e");
	sb_changes_release(&ch);
}

TEST(escape_for_mount_options)
{
	char buf[64];
	ASSERT_EQ(sb_overlay_escape("/a:b,c\\d e", buf, sizeof(buf)), 13);
	ASSERT_STREQ(buf, "/a\\:b\\,c\\\\d e");
	ASSERT_ERR(sb_overlay_escape("/a:b", buf, 5), -ENAMETOOLONG);
	ASSERT_EQ(sb_overlay_escape("", buf, 1), 0);
}

/* ---- real overlay mounts ---- */

static bool enter_mount_ns(bool userns)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (unshare(CLONE_NEWNS | (userns ? CLONE_NEWUSER : 0)) < 0)
		return false;
	if (userns) {
		char map[64];
		int fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "deny", 4) != 4)
			return false;
		close(fd);
		snprintf(map, sizeof(map), "%u %u 1", uid, uid);
		fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, map, strlen(map)) < 0)
			return false;
		close(fd);
		snprintf(map, sizeof(map), "%u %u 1", gid, gid);
		fd = open("/proc/self/gid_map", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, map, strlen(map)) < 0)
			return false;
		close(fd);
	}
	return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

static void mount_here(const char *lower, const char *upper, const char *work, const char *merged,
		       sb_overlay_flags flags)
{
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "%s", sb_test_dir());
	char l[PATH_MAX * 2], u[PATH_MAX * 2], w[PATH_MAX * 2], m[PATH_MAX * 2];
	snprintf(l, sizeof(l), "%s/%s", base, lower);
	snprintf(u, sizeof(u), "%s/%s", base, upper);
	snprintf(w, sizeof(w), "%s/%s", base, work);
	snprintf(m, sizeof(m), "%s/%s", base, merged);
	sb_overlay *ov;
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_overlay_new(l, u, w, flags, &ov, &err));
	char msg[256];
	int r = sb_overlay_mount(ov, NULL, m, 0, msg, sizeof(msg));
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "overlay mount: %s (%s)", strerror(-r), msg);
	sb_overlay_free(ov);
}

/* The edits of the issue, done through a real overlay, then the exact list. */
static void edits_through_overlay(sb_overlay_flags flags, bool userns)
{
	ASSERT_EQ(sb_test_sh("mkdir -p lower/f/ff lower/g upper work merged && echo a > lower/a && "
			     "echo b > lower/b && echo c > lower/c && echo e > lower/e && "
			     "chmod 644 lower/e && echo x > lower/f/x && echo y > lower/f/ff/y && "
			     "echo h > lower/g/h"),
		  0);
	char *before = sb_test_sh_out("cd lower && find . -printf '%%y %%m %%s %%p\\n' | sort && "
				      "find . -type f -exec sha256sum {} + | sort");
	if (!enter_mount_ns(userns))
		SB_SKIP("cannot create a %s namespace here: %s", userns ? "user" : "mount",
			strerror(errno));
	mount_here("lower", "upper", "work", "merged", flags);
	ASSERT_EQ(sb_test_sh("cd merged && echo new > a && rm b && mkdir d && mv c d/ && "
			     "chmod 755 e && rm -r f && mv g h && echo made > made"),
		  0);
	ASSERT_OK(umount2("merged", 0));
	sb_upper_flags uflags = (flags & SB_OVERLAY_USERXATTR) ? SB_UPPER_USERXATTR : 0;
	char *after = sb_test_sh_out("cd lower && find . -printf '%%y %%m %%s %%p\\n' | sort && "
				     "find . -type f -exec sha256sum {} + | sort");
	ASSERT_STREQ(after, before); /* the lower is untouched, by find + sha256sum */
	sb_changes ch;
	read_upper("upper", uflags, &ch);
	/* redirect_dir=off: the renamed directory is a copy plus a whiteout. */
	expect(&ch, "W a f\n"
		    "D b -\n"
		    "D c -\n"
		    "W d d\n"
		    "W d/c f\n"
		    "W e f\n"
		    "D f -\n"
		    "D g -\n"
		    "W h d\n"
		    "W h/h f\n"
		    "W made f\n");
	ASSERT_EQ(ch.v[5].mode, 0755);
	ASSERT_EQ(ch.v[0].size, 4);
	sb_changes_release(&ch);
	free(before);
	free(after);
}

TEST(real_overlay_edits_fd_layers)
{
	if (!sb_test_is_root())
		SB_SKIP("mounting overlayfs outside a user namespace needs root");
	edits_through_overlay(0, false);
}

TEST(real_overlay_edits_legacy_mount)
{
	if (!sb_test_is_root())
		SB_SKIP("mounting overlayfs outside a user namespace needs root");
	edits_through_overlay(SB_OVERLAY_NO_FSCONFIG, false);
}

TEST(real_overlay_edits_in_user_namespace)
{
	edits_through_overlay(SB_OVERLAY_USERXATTR, true);
}

/* A deleted-then-recreated directory is opaque, in user.* xattrs with userxattr. */
TEST(real_overlay_opaque_dir_userxattr)
{
	ASSERT_EQ(sb_test_sh("mkdir -p lower/dir upper work merged && echo 1 > lower/dir/old"), 0);
	if (!enter_mount_ns(true))
		SB_SKIP("cannot create a user namespace here: %s", strerror(errno));
	mount_here("lower", "upper", "work", "merged", SB_OVERLAY_USERXATTR);
	ASSERT_EQ(sb_test_sh("cd merged && rm -r dir && mkdir dir && echo 2 > dir/new"), 0);
	ASSERT_OK(umount2("merged", 0));
	ASSERT_EQ(sb_test_sh("getfattr --absolute-names -n user.overlay.opaque upper/dir "
			     ">/dev/null 2>&1 || test \"$(id -u)\" != 0"),
		  0);
	sb_changes ch;
	read_upper("upper", SB_UPPER_USERXATTR, &ch);
	expect(&ch, "W dir d opaque\n"
		    "W dir/new f\n");
	sb_changes_release(&ch);
}

/*
 * Through a real root-mode overlay, user.overlay.opaque set on a lower
 * directory (as the sandboxed command could) copies it up with that xattr;
 * the reader must not turn it into an opaque directory that would delete
 * the lower's contents at staging.
 */
TEST(real_overlay_forged_user_opaque_is_plain)
{
	if (!sb_test_is_root())
		SB_SKIP("mounting overlayfs outside a user namespace needs root");
	if (!user_xattrs_here())
		SB_SKIP("the test directory's filesystem has no user.* xattrs");
	ASSERT_EQ(sb_test_sh("mkdir -p lower/dir upper work merged && echo 1 > lower/dir/old"), 0);
	if (!enter_mount_ns(false))
		SB_SKIP("cannot create a mount namespace here: %s", strerror(errno));
	mount_here("lower", "upper", "work", "merged", 0);
	ASSERT_OK(lsetxattr("merged/dir", "user.overlay.opaque", "y", 1, 0));
	ASSERT_EQ(sb_test_sh("echo 2 > merged/dir/new && grep -qx 1 merged/dir/old"), 0);
	ASSERT_OK(umount2("merged", 0));
	/* Copied up with the forged xattr, as an independent tool sees it. */
	ASSERT_EQ(sb_test_sh("getfattr --absolute-names --only-values -n user.overlay.opaque "
			     "upper/dir 2>/dev/null | grep -qx y"),
		  0);
	sb_changes ch;
	read_upper("upper", 0, &ch);
	expect(&ch, "W dir d\n"
		    "W dir/new f\n");
	sb_changes_release(&ch);
}

static void hostile_layer_paths(sb_overlay_flags flags)
{
	/* Unprivileged: the same in a user namespace, with userxattr. */
	bool userns = !sb_test_is_root();
	if (userns)
		flags |= SB_OVERLAY_USERXATTR;
	const char *lower = "low:er,1\\x y", *upper = "up:per,2\\", *work = "wo,rk:3\\";
	ASSERT_EQ(sb_test_sh("mkdir -p 'low:er,1\\x y' 'up:per,2\\' 'wo,rk:3\\' merged && "
			     "echo l > 'low:er,1\\x y/f'"),
		  0);
	if (!enter_mount_ns(userns))
		SB_SKIP("cannot create a user namespace here: %s", strerror(errno));
	mount_here(lower, upper, work, "merged", flags);
	ASSERT_EQ(sb_test_sh("cat merged/f | grep -qx l && echo n > merged/g"), 0);
	ASSERT_OK(umount2("merged", 0));
	ASSERT_EQ(sb_test_sh("grep -qx n 'up:per,2\\/g'"), 0);
}

TEST(hostile_layer_paths_fd)
{
	hostile_layer_paths(SB_OVERLAY_NO_LEGACY);
}

TEST(hostile_layer_paths_fsconfig_strings)
{
	/* No fallback to mount(2): the strings method itself must cope. */
	hostile_layer_paths(SB_OVERLAY_NO_FD | SB_OVERLAY_NO_LEGACY);
}

TEST(hostile_layer_paths_legacy_escaped)
{
	hostile_layer_paths(SB_OVERLAY_NO_FSCONFIG);
}

/*
 * "volatile" among the overlay's super options in our mountinfo, by an
 * independent grep (newer kernels show it as "fsync=volatile").
 */
static bool shows_volatile(const char *merged)
{
	return sb_test_sh("grep -F ' %s/%s ' /proc/self/mountinfo | grep -qE "
			  "'[ ,](fsync=)?volatile(,|$)'",
			  sb_test_dir(), merged) == 0;
}

static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int a = 0, b = 0;
	return uname(&u) == 0 && sscanf(u.release, "%d.%d", &a, &b) == 2 &&
	       (a > major || (a == major && b >= minor));
}

/*
 * Every method mounts a volatile overlay (no sync of the upper's filesystem
 * when the sandbox's mount namespace goes away), unless SB_OVERLAY_DURABLE;
 * what was written is in the upper after the unmount either way.
 */
TEST(overlay_is_volatile_unless_durable)
{
	if (!kernel_at_least(5, 10))
		SB_SKIP("overlayfs has no volatile option before Linux 5.10");
	static const sb_overlay_flags methods[] = {
	    SB_OVERLAY_NO_LEGACY,
	    SB_OVERLAY_NO_FD | SB_OVERLAY_NO_LEGACY,
	    SB_OVERLAY_NO_FSCONFIG,
	};
	bool userns = !sb_test_is_root();
	ASSERT_EQ(sb_test_sh("mkdir -p lower && echo l > lower/f"), 0);
	if (!enter_mount_ns(userns))
		SB_SKIP("cannot create a %s namespace here: %s", userns ? "user" : "mount",
			strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
		for (int durable = 0; durable < 2; durable++) {
			sb_overlay_flags fl = methods[i] | (userns ? SB_OVERLAY_USERXATTR : 0) |
					      (durable ? SB_OVERLAY_DURABLE : 0);
			char u[32], w[32], m[32];
			snprintf(u, sizeof(u), "u%zu%d", i, durable);
			snprintf(w, sizeof(w), "w%zu%d", i, durable);
			snprintf(m, sizeof(m), "m%zu%d", i, durable);
			ASSERT_EQ(sb_test_sh("mkdir %s %s %s", u, w, m), 0);
			mount_here("lower", u, w, m, fl);
			ASSERT_EQ(shows_volatile(m), !durable);
			ASSERT_EQ(sb_test_sh("echo n > %s/g && grep -qx l %s/f", m, m), 0);
			ASSERT_OK(umount2(m, 0));
			ASSERT_EQ(sb_test_sh("grep -qx n %s/g", u), 0);
			/*
			 * The mark a volatile mount leaves: its work directory is
			 * single-use. (Overlayfs makes "work" mode 000: only root
			 * looks inside.)
			 */
			if (!userns)
				ASSERT_EQ(sb_test_sh("test -d %s/%s", w, "work/incompat/volatile"),
					  durable ? 1 : 0);
		}
	}
}

TEST(probe_reports_what_works)
{
	ASSERT_EQ(sb_test_sh("mkdir -p scratch ws && echo w > ws/f"), 0);
	char ws[PATH_MAX], scratch[PATH_MAX];
	snprintf(ws, sizeof(ws), "%s/ws", sb_test_dir());
	snprintf(scratch, sizeof(scratch), "%s/scratch", sb_test_dir());
	sb_error err = SB_ERROR_INIT;
	if (sb_test_is_root()) {
		ASSERT_OK(sb_overlay_probe(ws, scratch, 0, &err));
		ASSERT_OK(sb_overlay_probe(NULL, scratch, 0, &err));
	}
	int r = sb_overlay_probe(ws, scratch, SB_OVERLAY_PROBE_USERNS, &err);
	if (r < 0 && strstr(err.msg, "creating a user namespace"))
		SB_SKIP("no user namespaces: %s", err.msg);
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "%s", err.msg);
	/* It cleans up after itself. */
	ASSERT_EQ(sb_test_sh("test -z \"$(ls -A scratch)\""), 0);
	/* A lower that is not a directory fails at the mount, and the message says where. */
	char file[PATH_MAX + 8];
	snprintf(file, sizeof(file), "%s/f", ws);
	r = sb_overlay_probe(file, scratch, sb_test_is_root() ? 0 : SB_OVERLAY_PROBE_USERNS, &err);
	ASSERT_ERR(r, -ENOTDIR);
	ASSERT_TRUE(strstr(err.msg, "mounting overlayfs"));
	ASSERT_TRUE(strstr(err.msg, file));
	ASSERT_EQ(sb_test_sh("test -z \"$(ls -A scratch)\" && test \"$(ls -A ws)\" = f"), 0);
}

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb-test.h"
#include "fileio.h"
#include "mountplan.h"
#include "sandbox.h"

/*
 * The mount plan on its own: what it decides in the parent (which secrets,
 * where mount points are created, what is refused) and, as root, what a
 * replay leaves in a fresh mount namespace, checked with statvfs/open.
 */

static sb_sandbox_config base_cfg(const char *home)
{
	sb_sandbox_config cfg;
	sb_sandbox_config_init(&cfg);
	cfg.home = home;
	return cfg;
}

/* All op descriptions, one per line. */
static char *describe(const sb_mountplan *p)
{
	size_t cap = 1 << 16, o = 0;
	char *s = malloc(cap);
	s[0] = 0;
	for (size_t i = 0; i < sb_mountplan_size(p); i++) {
		char line[8192];
		sb_mountplan_describe(p, i, line, sizeof(line));
		size_t n = strlen(line);
		if (o + n + 2 > cap)
			s = realloc(s, cap *= 2);
		memcpy(s + o, line, n);
		s[o + n] = '\n';
		o += n + 1;
		s[o] = 0;
	}
	return s;
}

static char *plan_text(const sb_sandbox_config *cfg)
{
	sb_mountplan *p;
	sb_error err = SB_ERROR_INIT;
	int r = sb_mountplan_new(cfg, false, &p, &err);
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "sb_mountplan_new: %s", err.msg);
	char *s = describe(p);
	sb_mountplan_free(p);
	return s;
}

__attribute__((format(printf, 2, 3))) static bool has_line(const char *text, const char *fmt, ...)
{
	va_list ap;
	char want[8192];
	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	return strstr(text, want) != NULL;
}

TEST(only_existing_secrets_are_masked)
{
	ASSERT_EQ(sb_test_sh("mkdir -p home/.ssh home/.config/gcloud elsewhere/aws-real && "
			     "echo k > home/.ssh/id_rsa && echo n > home/.netrc && "
			     "ln -s ../elsewhere/aws-real home/.aws && ln -s nowhere home/.kube && "
			     "echo h > home/.bash_history && echo x > home/.Xauthority && "
			     "echo i > home/.ICEauthority && mkdir -p home/.config/gh "
			     "home/.config/hub home/.local/share/keyrings home/.password-store"),
		  0);
	char home[PATH_MAX], d[PATH_MAX + 64];
	snprintf(home, sizeof(home), "%s/home", sb_test_dir());
	sb_sandbox_config cfg = base_cfg(home);
	char *t = plan_text(&cfg);
	/* Directories: an empty read-only tmpfs. Files: /dev/null. */
	ASSERT_TRUE(has_line(t, "tmpfs optional /newroot%s/.ssh ro", home));
	ASSERT_TRUE(has_line(t, "tmpfs optional /newroot%s/.config/gcloud ro", home));
	ASSERT_TRUE(has_line(t, "bind optional /oldroot/dev/null -> /newroot%s/.netrc ro", home));
	ASSERT_TRUE(
	    has_line(t, "bind optional /oldroot/dev/null -> /newroot%s/.bash_history ro", home));
	ASSERT_TRUE(
	    has_line(t, "bind optional /oldroot/dev/null -> /newroot%s/.Xauthority ro", home));
	ASSERT_TRUE(
	    has_line(t, "bind optional /oldroot/dev/null -> /newroot%s/.ICEauthority ro", home));
	const char *dirs[] = {".config/gh", ".config/hub", ".local/share/keyrings",
			      ".password-store"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (!has_line(t, "tmpfs optional /newroot%s/%s ro", home, dirs[i]))
			sb_test_fail(__FILE__, __LINE__, "%s not masked in:\n%s", dirs[i], t);
	/* A symlinked secret is masked where it really is; a dangling one is skipped. */
	snprintf(d, sizeof(d), "%s/elsewhere/aws-real", sb_test_dir());
	ASSERT_TRUE(has_line(t, "tmpfs optional /newroot%s ro", d));
	ASSERT_FALSE(has_line(t, "%s/.kube", home));
	ASSERT_FALSE(has_line(t, "%s/.gnupg", home));
	free(t);

	/* A bind naming a secret (or something inside it) exposes it on purpose. */
	snprintf(d, sizeof(d), "%s/.ssh", home);
	sb_sandbox_bind binds[] = {{d, false}};
	cfg.binds = binds;
	cfg.n_binds = 1;
	t = plan_text(&cfg);
	ASSERT_FALSE(has_line(t, "tmpfs optional /newroot%s/.ssh ro", home));
	ASSERT_TRUE(has_line(t, "bind rec /oldroot%s/.ssh", home));
	free(t);
	/* ... but a bind of the whole home does not unmask what is inside. */
	binds[0].path = home;
	t = plan_text(&cfg);
	ASSERT_TRUE(has_line(t, "tmpfs optional /newroot%s/.ssh ro", home));
	free(t);
}

static void replay(sb_sandbox_config *cfg, void (*check)(void));

/* Host files a root caller's command would own: masked when, and only when, they exist. */
TEST(system_secrets_that_exist_are_masked)
{
	sb_sandbox_config cfg = base_cfg("/nonexistent");
	char *t = plan_text(&cfg);
	const char *files[] = {"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-",
			       "/etc/sudoers"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		struct stat st;
		bool exists = stat(files[i], &st) == 0 && S_ISREG(st.st_mode);
		bool masked =
		    has_line(t, "bind optional /oldroot/dev/null -> /newroot%s ro\n", files[i]);
		if (exists != masked)
			sb_test_fail(__FILE__, __LINE__, "%s exists=%d masked=%d in:\n%s", files[i],
				     exists, masked, t);
	}
	struct stat st;
	bool exists = stat("/etc/sudoers.d", &st) == 0 && S_ISDIR(st.st_mode);
	ASSERT_EQ(has_line(t, "tmpfs optional /newroot/etc/sudoers.d ro"), exists);
	free(t);
	/* The listed secrets are what the plan masks. */
	const char *const *sys = sb_sandbox_system_secrets();
	size_t n = 0;
	for (; sys[n]; n++)
		ASSERT_TRUE(sys[n][0] == '/');
	ASSERT_TRUE(n >= 7);

	/* An explicit bind of the secret exposes it on purpose, like a home secret. */
	if (access("/etc/shadow", F_OK) == 0) {
		sb_sandbox_bind binds[] = {{"/etc/shadow", false}};
		cfg.binds = binds;
		cfg.n_binds = 1;
		t = plan_text(&cfg);
		ASSERT_FALSE(has_line(t, "/oldroot/dev/null -> /newroot/etc/shadow ro\n"));
		ASSERT_TRUE(has_line(t, "bind rec /oldroot/etc/shadow -> /newroot/etc/shadow ro"));
		free(t);
	}
}

/*
 * SSH host keys are found by pattern: a tmpfs over /etc/ssh (in this test's
 * own mount namespace) with fake keys; private ones masked, .pub ones not,
 * and a replay leaves them empty.
 */
static void check_host_keys_empty(void)
{
	char buf[64];
	int fd = open("/etc/ssh/ssh_host_ed25519_key", O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_EQ(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	fd = open("/etc/ssh/ssh_host_ed25519_key.pub", O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_EQ(read(fd, buf, sizeof(buf)), 4);
	close(fd);
	if (access("/etc/shadow", F_OK) == 0) {
		fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
		ASSERT_OK(fd);
		ASSERT_EQ(read(fd, buf, sizeof(buf)), 0);
		close(fd);
	}
}

TEST(ssh_host_keys_are_masked_by_pattern)
{
	if (!sb_test_is_root())
		SB_SKIP("needs root to mount a fake /etc/ssh in a private mount namespace");
	if (access("/etc/ssh", F_OK) < 0)
		SB_SKIP("no /etc/ssh on this host to mount the fake keys over");
	ASSERT_OK(unshare(CLONE_NEWNS));
	ASSERT_OK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	ASSERT_OK(mount("tmpfs", "/etc/ssh", "tmpfs", 0, "mode=0755"));
	ASSERT_EQ(
	    sb_test_sh("cd /etc/ssh && echo priv > ssh_host_ed25519_key && "
		       "echo pub > ssh_host_ed25519_key.pub && echo rsa > ssh_host_rsa_key && "
		       "echo cfg > sshd_config && chmod 600 ssh_host_*_key"),
	    0);
	sb_sandbox_config cfg = base_cfg("/nonexistent");
	char *t = plan_text(&cfg);
	ASSERT_TRUE(has_line(t, "-> /newroot/etc/ssh/ssh_host_ed25519_key ro\n"));
	ASSERT_TRUE(has_line(t, "-> /newroot/etc/ssh/ssh_host_rsa_key ro\n"));
	ASSERT_FALSE(has_line(t, "/newroot/etc/ssh/ssh_host_ed25519_key.pub"));
	ASSERT_FALSE(has_line(t, "/newroot/etc/ssh/sshd_config"));
	free(t);
	replay(&cfg, check_host_keys_empty);
}

TEST(order_follows_the_design)
{
	ASSERT_EQ(sb_test_sh("mkdir -p ws home/.ssh extra store"), 0);
	char ws[PATH_MAX], home[PATH_MAX], extra[PATH_MAX], store[PATH_MAX];
	snprintf(ws, sizeof(ws), "%s/ws", sb_test_dir());
	snprintf(home, sizeof(home), "%s/home", sb_test_dir());
	snprintf(extra, sizeof(extra), "%s/extra", sb_test_dir());
	snprintf(store, sizeof(store), "%s/store", sb_test_dir());
	sb_sandbox_config cfg = base_cfg(home);
	cfg.workspace = ws;
	cfg.workspace_src = extra;
	cfg.store = store;
	sb_sandbox_bind binds[] = {{extra, true}};
	cfg.binds = binds;
	cfg.n_binds = 1;
	char *t = plan_text(&cfg);
	const char *steps[] = {"bind rec /oldroot -> /newroot ro",
			       "tmpfs /newroot/tmp",
			       "tmpfs /newroot/dev ",
			       "devpts /newroot/dev/pts",
			       "remount /newroot/dev ro",
			       "proc /newroot/proc",
			       "bind rec /oldroot",	  /* workspace */
			       "tmpfs optional /newroot", /* .ssh */
			       NULL};
	const char *at = t;
	for (size_t i = 0; steps[i]; i++) {
		const char *next = strstr(at, steps[i]);
		if (!next)
			sb_test_fail(__FILE__, __LINE__, "'%s' missing or out of order in:\n%s",
				     steps[i], t);
		at = next + 1;
	}
	/* The store is masked, after the user's binds (which may not uncover it). */
	char want[PATH_MAX + 64], bind[PATH_MAX + 64];
	snprintf(want, sizeof(want), "tmpfs optional /newroot%s ro", store);
	snprintf(bind, sizeof(bind), "-> /newroot%s\n", extra);
	const char *last_bind = NULL;
	for (const char *s = strstr(t, bind); s; s = strstr(s + 1, bind))
		last_bind = s;
	ASSERT_TRUE(last_bind);
	ASSERT_TRUE(strstr(t, want) > last_bind);
	free(t);
}

TEST(mount_points_only_in_fresh_tmpfs)
{
	char tws[64] = "/tmp/sbx-mp-XXXXXX";
	ASSERT_TRUE(mkdtemp(tws));
	ASSERT_EQ(sb_test_sh("mkdir -p ws"), 0);
	sb_sandbox_config cfg = base_cfg("/nonexistent");
	cfg.workspace = tws;
	char *t = plan_text(&cfg);
	/* Under the fresh /tmp: the mount point is made, and without an overlay a ro bind keeps it. */
	ASSERT_TRUE(has_line(t, "mkdir /newroot%s", tws));
	ASSERT_TRUE(has_line(t, "bind rec /oldroot%s", tws));
	free(t);
	char ws[PATH_MAX];
	snprintf(ws, sizeof(ws), "%s/ws", sb_test_dir());
	cfg.workspace = ws;
	t = plan_text(&cfg);
	ASSERT_FALSE(has_line(t, "mkdir /newroot%s", ws));
	free(t);
	rmdir(tws);
}

TEST(bad_paths_are_refused_with_the_value)
{
	sb_sandbox_config cfg = base_cfg("/nonexistent");
	sb_mountplan *p;
	sb_error err = SB_ERROR_INIT;
	const char *bad[] = {"relative/ws", "/", "/proc/self", "/dev/pts", "/nonexistent/ws"};
	int want[] = {-EINVAL, -EINVAL, -EINVAL, -EINVAL, -ENOENT};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cfg.workspace = bad[i];
		ASSERT_ERR(sb_mountplan_new(&cfg, false, &p, &err), want[i]);
		ASSERT_TRUE(strstr(err.msg, bad[i]) || strstr(err.msg, "/proc") ||
			    strstr(err.msg, "/dev"));
	}
	cfg.workspace = NULL;
	sb_sandbox_bind binds[] = {{"/dev", true}};
	cfg.binds = binds;
	cfg.n_binds = 1;
	ASSERT_ERR(sb_mountplan_new(&cfg, false, &p, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.msg, "'/dev'"));
}

/*
 * Replays a plan in a child with its own mount namespace, then runs check()
 * there (after pivot_root: "/" is the sandbox's root).
 */
static void replay(sb_sandbox_config *cfg, void (*check)(void))
{
	if (!sb_test_is_root())
		SB_SKIP("replaying a plan outside a sandbox needs root");
	sb_mountplan *p;
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_mountplan_new(cfg, false, &p, &err));
	pid_t pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0)
			_exit(2);
		sb_report rep;
		memset(&rep, 0, sizeof(rep));
		if (sb_mountplan_apply(p, &rep) < 0)
			sb_test_fail(__FILE__, __LINE__, "apply: %s '%s': %s", rep.note, rep.path,
				     strerror(rep.error));
		check();
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	sb_mountplan_free(p);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

static char g_dir[PATH_MAX];

static bool readonly(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		sb_test_fail(__FILE__, __LINE__, "statvfs %s: %s", path, strerror(errno));
	return sv.f_flag & ST_RDONLY;
}

static void check_hostile_submounts(void)
{
	char p[PATH_MAX + 64];
	ASSERT_TRUE(readonly("/"));
	ASSERT_TRUE(readonly("/usr"));
	ASSERT_FALSE(readonly("/tmp"));
	ASSERT_FALSE(readonly("/dev/shm"));
	ASSERT_TRUE(readonly("/dev"));
	ASSERT_TRUE(readonly("/proc/sys"));
	snprintf(p, sizeof(p), "%s/we\\ird\nname\tmnt", g_dir);
	ASSERT_TRUE(readonly(p));
	snprintf(p, sizeof(p), "%s/we\\ird\nname\tmnt/inner", g_dir);
	ASSERT_TRUE(readonly(p));
	snprintf(p, sizeof(p), "%s/we\\ird\nname\tmnt/inner/f", g_dir);
	ASSERT_ERR(open(p, O_WRONLY | O_CLOEXEC) < 0 ? -errno : 0, -EROFS);
	/* The old root is gone from the view. */
	ASSERT_ERR(access("/oldroot", F_OK) < 0 ? -errno : 0, -ENOENT);
	ASSERT_ERR(access("/newroot", F_OK) < 0 ? -errno : 0, -ENOENT);
}

static void hostile_submounts(sb_sandbox_flags flags)
{
	if (!sb_test_is_root())
		SB_SKIP("needs root to make submounts on the host side");
	snprintf(g_dir, sizeof(g_dir), "%s", sb_test_dir());
	ASSERT_OK(unshare(CLONE_NEWNS));
	ASSERT_OK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	/* mountinfo escapes these bytes as \134 \012 \011: the classic remount must undo that. */
	char mnt[PATH_MAX + 64], inner[PATH_MAX + 80];
	snprintf(mnt, sizeof(mnt), "%s/we\\ird\nname\tmnt", g_dir);
	snprintf(inner, sizeof(inner), "%s/inner", mnt);
	ASSERT_OK(mkdir(mnt, 0755));
	ASSERT_OK(mount("tmpfs", mnt, "tmpfs", 0, NULL));
	ASSERT_OK(mkdir(inner, 0755));
	ASSERT_OK(mount("tmpfs", inner, "tmpfs", 0, NULL));
	char f[PATH_MAX + 96];
	snprintf(f, sizeof(f), "%s/f", inner);
	int fd = open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	close(fd);
	sb_sandbox_config cfg = base_cfg("/nonexistent");
	cfg.flags = flags;
	replay(&cfg, check_hostile_submounts);
}

TEST(readonly_reaches_hostile_submounts_new_api)
{
	hostile_submounts(0);
}

TEST(readonly_reaches_hostile_submounts_classic)
{
	hostile_submounts(SB_SANDBOX_CLASSIC_MOUNT);
}

/* As uid 0 without capabilities, root-owned /proc files must still not be writable. */
TEST(proc_knobs_are_readonly_for_root)
{
	if (!sb_test_is_root())
		SB_SKIP("the proc hardening matters for root callers");
	sb_sandbox_config cfg = base_cfg("/nonexistent");
	const char *argv[] = {"sh", "-c",
			      "echo x > /proc/sys/kernel/domainname; echo \"a=$?\"; "
			      "echo h > /proc/sysrq-trigger; echo \"b=$?\"; "
			      "wc -c < /proc/timer_list; echo \"c=$?\"",
			      NULL};
	cfg.argv = argv;
	int p[2];
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	cfg.stdout_fd = cfg.stderr_fd = p[1];
	sb_sandbox_result res;
	sb_error err = SB_ERROR_INIT;
	sb_sandbox *sb;
	ASSERT_OK(sb_sandbox_start(&cfg, &sb, &err));
	close(p[1]);
	char out[4096];
	ssize_t n = sb_read_full(p[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = 0;
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	sb_sandbox_free(sb);
	close(p[0]);
	ASSERT_TRUE(strstr(out, "a=0") == NULL);
	ASSERT_TRUE(strstr(out, "b=0") == NULL);
	if (!strstr(out, "\n0\nc=0"))
		sb_test_fail(__FILE__, __LINE__, "output: %s", out);
}

/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb-test.h"
#include "cgroup.h"
#include "changes.h"
#include "fileio.h"
#include "overlay.h"
#include "rlimit.h"
#include "sandbox.h"

/*
 * Every test builds a workspace "ws" (files a, b), a session "store/session"
 * (upper, work) and a fake home with secrets in its own temp dir, runs a
 * real sandbox and checks the result with independent tools (sha256sum,
 * pgrep, stat) from outside.
 */

typedef struct fx {
	char dir[1024];
	char ws[1100];
	char upper[1100];
	char work[1100];
	char store[1100];
	char home[1100];
	sb_overlay *ov;
	sb_sandbox_config cfg;
	const char *argv[8];
} fx;

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	ASSERT_OK(sb_write_full(fd, text, strlen(text)));
	close(fd);
}

static void fx_init(fx *f, bool overlay)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "%s", sb_test_dir());
	snprintf(f->ws, sizeof(f->ws), "%s/ws", f->dir);
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	snprintf(f->upper, sizeof(f->upper), "%s/store/session/upper", f->dir);
	snprintf(f->work, sizeof(f->work), "%s/store/session/work", f->dir);
	snprintf(f->home, sizeof(f->home), "%s/home", f->dir);
	ASSERT_EQ(
	    sb_test_sh("mkdir -p ws/sub store/session/upper store/session/work "
		       "home/.ssh home/.config/gh && echo alpha > ws/a && echo beta > ws/b && "
		       "echo secret-key > home/.ssh/id_rsa && echo machine x > home/.netrc && "
		       "echo xauth-cookie > home/.Xauthority && "
		       "echo gh-token > home/.config/gh/hosts.yml"),
	    0);
	sb_sandbox_config_init(&f->cfg);
	f->cfg.workspace = f->ws;
	f->cfg.home = f->home;
	f->cfg.store = f->store;
	f->cfg.argv = f->argv;
	if (overlay) {
		sb_error err = SB_ERROR_INIT;
		int r = sb_overlay_new(f->ws, f->upper, f->work, 0, &f->ov, &err);
		if (r < 0)
			sb_test_fail(__FILE__, __LINE__, "%s", err.msg);
		f->cfg.workspace_mount = sb_overlay_mount_hook;
		f->cfg.workspace_mount_data = f->ov;
	}
}

static void sh(fx *f, const char *script)
{
	f->argv[0] = "sh";
	f->argv[1] = "-c";
	f->argv[2] = script;
	f->argv[3] = NULL;
}

/*
 * Starts the sandbox with its stdout (with both, its stderr too) on a pipe
 * and returns the pipe's read end in *ret_rfd. The config's fds are reset
 * afterwards: the write end is closed here.
 */
static sb_sandbox *start_piped(fx *f, bool both, int *ret_rfd)
{
	int p[2];
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	f->cfg.stdout_fd = p[1];
	if (both)
		f->cfg.stderr_fd = p[1];
	sb_error err = SB_ERROR_INIT;
	sb_sandbox *sb = NULL;
	int r = sb_sandbox_start(&f->cfg, &sb, &err);
	close(p[1]);
	f->cfg.stdout_fd = -1;
	if (both)
		f->cfg.stderr_fd = -1;
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "start: %s", err.msg);
	*ret_rfd = p[0];
	return sb;
}

/* Runs the sandbox with stdout+stderr captured; returns the output (malloc'd). */
static char *run(fx *f, sb_sandbox_result *res)
{
	int rfd;
	sb_sandbox *sb = start_piped(f, true, &rfd);
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	ASSERT_TRUE(out);
	ssize_t n;
	while ((n = read(rfd, out + len, cap - len - 1)) > 0)
		len += (size_t)n;
	out[len] = 0;
	close(rfd);
	sb_error err = SB_ERROR_INIT;
	int r = sb_sandbox_wait(sb, res, &err);
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "wait: %s", err.msg);
	sb_sandbox_free(sb);
	return out;
}

static char *run_sh(fx *f, const char *script, sb_sandbox_result *res)
{
	sh(f, script);
	return run(f, res);
}

/* Without capturing output: the supervisor's wait (and its timeout) starts at once. */
static void run_plain(fx *f, const char *script, sb_sandbox_result *res)
{
	sh(f, script);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	f->cfg.stdout_fd = f->cfg.stderr_fd = null;
	sb_error err = SB_ERROR_INIT;
	int r = sb_sandbox_run(&f->cfg, res, &err);
	close(null);
	f->cfg.stdout_fd = f->cfg.stderr_fd = -1;
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "run: %s", err.msg);
}

static void fx_release(fx *f)
{
	sb_overlay_free(f->ov);
	f->ov = NULL;
}

static long atol_ok(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return end == s ? -1 : v;
}

static void need_namespaces(void)
{
	if (!sb_test_is_root()) {
		int r = sb_test_sh("unshare -Urm true 2>/dev/null");
		if (r != 0)
			SB_SKIP("this host refuses unprivileged user namespaces");
	}
}

TEST(exit_status_is_the_commands)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	sb_sandbox_result res;
	free(run_sh(&f, "exit 3", &res));
	ASSERT_EQ(res.outcome, SB_SANDBOX_EXITED);
	ASSERT_EQ(res.exit_code, 3);
	ASSERT_FALSE(res.timed_out);
	ASSERT_TRUE(res.wall_ns > 0);
	free(run_sh(&f, "exit 127", &res));
	/* A command exiting 127 by itself is not a missing command. */
	ASSERT_EQ(res.outcome, SB_SANDBOX_EXITED);
	ASSERT_EQ(res.exit_code, 127);
	ASSERT_STREQ(res.message, "");
	fx_release(&f);
}

TEST(killed_by_signal_is_128_plus_n)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	sb_sandbox_result res;
	free(run_sh(&f, "kill -9 $$", &res));
	ASSERT_EQ(res.outcome, SB_SANDBOX_SIGNALED);
	ASSERT_EQ(res.signal, SIGKILL);
	ASSERT_EQ(res.exit_code, 137);
	fx_release(&f);
}

TEST(missing_command_is_127_with_the_path)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	sb_sandbox_result res;
	f.argv[0] = "sb-no-such-command";
	f.argv[1] = NULL;
	free(run(&f, &res));
	ASSERT_EQ(res.outcome, SB_SANDBOX_EXEC_FAILED);
	ASSERT_EQ(res.exit_code, 127);
	ASSERT_EQ(res.error, ENOENT);
	ASSERT_STREQ(res.path, "sb-no-such-command");
	ASSERT_TRUE(strstr(res.message, "'sb-no-such-command' not found in PATH"));

	f.argv[0] = "/nonexistent/dir/tool";
	free(run(&f, &res));
	ASSERT_EQ(res.exit_code, 127);
	ASSERT_STREQ(res.path, "/nonexistent/dir/tool");
	ASSERT_TRUE(strstr(res.message, "/nonexistent/dir/tool"));
	fx_release(&f);
}

TEST(not_executable_is_126)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	char script[PATH_MAX];
	snprintf(script, sizeof(script), "%s/script.sh", f.ws);
	write_file(script, "#!/bin/sh\necho ran\n");
	ASSERT_OK(chmod(script, 0644));
	sb_sandbox_result res;
	f.argv[0] = script;
	f.argv[1] = NULL;
	char *out = run(&f, &res);
	ASSERT_EQ(res.outcome, SB_SANDBOX_EXEC_FAILED);
	ASSERT_EQ(res.exit_code, 126);
	ASSERT_EQ(res.error, EACCES);
	ASSERT_STREQ(res.path, script);
	ASSERT_TRUE(strstr(out, "ran") == NULL);
	free(out);
	/* Found in PATH but not executable: 126 naming the file found. */
	f.argv[0] = "script.sh";
	char env_path[PATH_MAX];
	snprintf(env_path, sizeof(env_path), "PATH=/nonexistent:%s", f.ws);
	const char *env[] = {env_path};
	f.cfg.env = env;
	f.cfg.n_env = 1;
	free(run(&f, &res));
	ASSERT_EQ(res.exit_code, 126);
	ASSERT_STREQ(res.path, script);
	fx_release(&f);
}

static char *sha256_of(const char *path)
{
	char *s = sb_test_sh_out("sha256sum < '%s' | cut -c1-64", path);
	s[strcspn(s, "\n")] = 0;
	return s;
}

/*
 * Writes outside the workspace hit a read-only root (EROFS), writes inside
 * land in the upper and never in the lower.
 */
static void check_overlay_and_readonly(sb_sandbox_flags flags)
{
	fx f;
	fx_init(&f, true);
	f.cfg.flags |= flags;
	char a[1200], b[1200], up_a[1200], script[8192];
	snprintf(a, sizeof(a), "%s/a", f.ws);
	snprintf(b, sizeof(b), "%s/b", f.ws);
	snprintf(up_a, sizeof(up_a), "%s/a", f.upper);
	char *before_a = sha256_of(a), *before_b = sha256_of(b);
	snprintf(script, sizeof(script),
		 "touch /usr/sbx-probe; echo \"usr=$?\"; touch '%s/sbx-probe'; echo \"dir=$?\"; "
		 "echo changed > '%s' && rm '%s' && echo fresh > '%s/c' && mkdir '%s/d' && "
		 "echo ws-ok",
		 f.dir, a, b, f.ws, f.ws);
	sb_sandbox_result res;
	char *out = run_sh(&f, script, &res);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(strstr(out, "usr=1"));
	ASSERT_TRUE(strstr(out, "dir=1"));
	ASSERT_TRUE(strstr(out, "Read-only file system"));
	ASSERT_TRUE(strstr(out, "ws-ok"));
	free(out);
	/* The lower is untouched, by an independent hash. */
	char *after_a = sha256_of(a), *after_b = sha256_of(b);
	ASSERT_STREQ(after_a, before_a);
	ASSERT_STREQ(after_b, before_b);
	ASSERT_EQ(sb_test_sh("test ! -e '%s/c' && test ! -e '%s/d' && test ! -e /usr/sbx-probe",
			     f.ws, f.ws),
		  0);
	ASSERT_EQ(sb_test_sh("grep -qx changed '%s'", up_a), 0);
	sb_changes ch;
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_upper_read_path(
	    f.upper, sb_sandbox_uses_userns(&f.cfg) ? SB_UPPER_USERXATTR : 0, &ch, &err));
	ASSERT_EQ(ch.n, 4);
	ASSERT_STREQ(ch.v[0].path, "a");
	ASSERT_EQ(ch.v[0].kind, SB_CHANGE_WRITE);
	ASSERT_STREQ(ch.v[1].path, "b");
	ASSERT_EQ(ch.v[1].kind, SB_CHANGE_DELETE);
	ASSERT_STREQ(ch.v[2].path, "c");
	ASSERT_STREQ(ch.v[3].path, "d");
	ASSERT_EQ(ch.v[3].type, SB_FT_DIR);
	sb_changes_release(&ch);
	free(before_a);
	free(before_b);
	free(after_a);
	free(after_b);
	fx_release(&f);
}

TEST(overlay_catches_writes_and_root_is_readonly)
{
	need_namespaces();
	check_overlay_and_readonly(0);
}

/*
 * The workspace mount's fd outlives the sandbox: the overlay stays readable
 * through it (the command's write and the lower's file), so whoever closes it
 * last pays for the teardown. Without an overlay there is none.
 */
TEST(workspace_mount_fd_outlives_the_sandbox)
{
	need_namespaces();
	fx f;
	fx_init(&f, true);
	sh(&f, "echo written > new");
	sb_error err = SB_ERROR_INIT;
	sb_sandbox *sb = NULL;
	ASSERT_OK(sb_sandbox_start(&f.cfg, &sb, &err));
	sb_sandbox_result res;
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	ASSERT_EQ(res.exit_code, 0);
	int fd = sb_sandbox_take_workspace_fd(sb);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(sb_sandbox_take_workspace_fd(sb), -ENOENT);
	sb_sandbox_free(sb);
	struct statfs sf;
	ASSERT_OK(fstatfs(fd, &sf));
	ASSERT_EQ((unsigned long)sf.f_type, 0x794c7630ul); /* OVERLAYFS_SUPER_MAGIC */
	ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	char buf[32];
	int nf = openat(fd, "new", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(nf >= 0);
	ssize_t n = read(nf, buf, sizeof(buf));
	close(nf);
	ASSERT_TRUE(n == 8 && memcmp(buf, "written\n", 8) == 0);
	int af = openat(fd, "a", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(af >= 0);
	n = read(af, buf, sizeof(buf));
	close(af);
	ASSERT_TRUE(n == 6 && memcmp(buf, "alpha\n", 6) == 0);
	/* The workspace itself never saw the write. */
	ASSERT_EQ(sb_test_sh("test ! -e ws/new"), 0);
	close(fd);
	fx_release(&f);

	fx_init(&f, false);
	sh(&f, "true");
	ASSERT_OK(sb_sandbox_start(&f.cfg, &sb, &err));
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	ASSERT_EQ(sb_sandbox_take_workspace_fd(sb), -ENOENT);
	sb_sandbox_free(sb);
}

TEST(overlay_and_readonly_with_classic_mounts)
{
	need_namespaces();
	check_overlay_and_readonly(SB_SANDBOX_CLASSIC_MOUNT);
}

/* A host submount (tmpfs, writable on the host) must be read-only inside too. */
static void check_submount_readonly(sb_sandbox_flags flags)
{
	if (!sb_test_is_root())
		SB_SKIP("needs root to make a submount on the host side");
	ASSERT_OK(unshare(CLONE_NEWNS));
	ASSERT_OK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	ASSERT_EQ(sb_test_sh("mkdir -p 'sub mnt' && mount -t tmpfs tmpfs 'sub mnt' && "
			     "mkdir 'sub mnt/inner' && mount -t tmpfs tmpfs 'sub mnt/inner' && "
			     "touch 'sub mnt/inner/host-ok'"),
		  0);
	fx f;
	fx_init(&f, false);
	f.cfg.flags |= flags;
	char script[8192];
	snprintf(script, sizeof(script),
		 "cd '%s/sub mnt' && ls inner/host-ok && { touch x; echo \"a=$?\"; "
		 "touch inner/y; echo \"b=$?\"; }",
		 f.dir);
	sb_sandbox_result res;
	char *out = run_sh(&f, script, &res);
	ASSERT_TRUE(strstr(out, "inner/host-ok"));
	ASSERT_TRUE(strstr(out, "a=1"));
	ASSERT_TRUE(strstr(out, "b=1"));
	ASSERT_TRUE(strstr(out, "Read-only file system"));
	free(out);
	fx_release(&f);
}

TEST(submounts_are_readonly_new_api)
{
	check_submount_readonly(0);
}

TEST(submounts_are_readonly_classic)
{
	check_submount_readonly(SB_SANDBOX_CLASSIC_MOUNT);
}

TEST(tmp_is_private_and_empty)
{
	need_namespaces();
	char marker[128];
	snprintf(marker, sizeof(marker), "/tmp/sbx-marker-%d", (int)getpid());
	write_file(marker, "host\n");
	fx f;
	fx_init(&f, false);
	sb_sandbox_result res;
	char *out = run_sh(&f,
			   "ls -A /tmp | wc -l; echo inside > /tmp/mine && cat /tmp/mine; "
			   "ls -A /dev/shm | wc -l; ls /dev",
			   &res);
	unlink(marker);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(strncmp(out, "0\ninside\n0\n", 11) == 0);
	ASSERT_TRUE(strstr(out, "null") && strstr(out, "urandom") && strstr(out, "pts") &&
		    strstr(out, "ptmx"));
	free(out);
	ASSERT_EQ(access("/tmp/mine", F_OK), -1);
	fx_release(&f);
}

TEST(proc_shows_only_sandbox_pids)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	sb_sandbox_result res;
	char *out = run_sh(&f, "echo $$; ls /proc | grep -c '^[0-9]'", &res);
	ASSERT_EQ(res.exit_code, 0);
	/* PID 1 (the reaper), the shell (2), ls and grep at most. */
	int self = -1, count = -1;
	ASSERT_EQ(sscanf(out, "%d %d", &self, &count), 2);
	ASSERT_EQ(self, 2);
	ASSERT_TRUE(count >= 2 && count <= 4);
	free(out);
	fx_release(&f);
}

static int listen_loopback(int *ret_port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(s);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ASSERT_OK(bind(s, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(listen(s, 8));
	socklen_t len = sizeof(a);
	ASSERT_OK(getsockname(s, (struct sockaddr *)&a, &len));
	*ret_port = ntohs(a.sin_port);
	return s;
}

TEST(network_none_has_only_loopback_up)
{
	need_namespaces();
	int port;
	int s = listen_loopback(&port);
	fx f;
	fx_init(&f, false);
	char script[256];
	/* "refused" proves lo is up (a down lo says "unreachable"); the host's listener is not there. */
	snprintf(script, sizeof(script),
		 "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>&1; echo \"host=$?\"; "
		 "cat /proc/net/dev | grep -c ':'",
		 port);
	sb_sandbox_result res;
	char *out = run_sh(&f, script, &res);
	ASSERT_TRUE(strstr(out, "Connection refused"));
	ASSERT_TRUE(strstr(out, "host=1"));
	ASSERT_TRUE(strstr(out, "\n1\n")); /* one interface: lo */
	free(out);

	f.cfg.net = SB_NET_HOST;
	out = run_sh(&f, script, &res);
	ASSERT_TRUE(strstr(out, "host=0"));
	free(out);
	close(s);
	fx_release(&f);
}

TEST(secrets_and_store_are_masked)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	ASSERT_EQ(
	    sb_test_sh("mkdir -p hidden-dir && echo top > hidden-dir/t && echo s > store/obj"), 0);
	char hide[1200], script[8192];
	snprintf(hide, sizeof(hide), "%s/hidden-dir", f.dir);
	const char *hides[] = {hide};
	f.cfg.hide = hides;
	f.cfg.n_hide = 1;
	snprintf(script, sizeof(script),
		 "echo \"home=$HOME\"; cat \"$HOME/.ssh/id_rsa\"; echo \"key=$?\"; "
		 "ls -A \"$HOME/.ssh\" | wc -l; cat \"$HOME/.netrc\" | wc -c; "
		 "cat '%s/t'; echo \"hide=$?\"; ls -A '%s' | wc -l; touch \"$HOME/.ssh/new\"; "
		 "echo \"w=$?\"; cat \"$HOME/.Xauthority\" \"$HOME/.config/gh/hosts.yml\"; "
		 "echo \"x=$?\"; wc -c < \"$HOME/.Xauthority\"",
		 hide, f.store);
	sb_sandbox_result res;
	char *out = run_sh(&f, script, &res);
	char want_home[1200];
	snprintf(want_home, sizeof(want_home), "home=%s\n", f.home);
	ASSERT_TRUE(strstr(out, want_home));
	ASSERT_TRUE(strstr(out, "key=1"));
	ASSERT_TRUE(strstr(out, "secret-key") == NULL);
	ASSERT_TRUE(strstr(out, "machine") == NULL);
	ASSERT_TRUE(strstr(out, "hide=1"));
	ASSERT_TRUE(strstr(out, "top") == NULL);
	ASSERT_TRUE(strstr(out, "w=1"));
	/* .ssh empty, .netrc empty, store empty. */
	ASSERT_TRUE(strstr(out, "\n0\n0\n"));
	/* X cookie and GitHub token: an empty file, an empty directory. */
	ASSERT_TRUE(strstr(out, "xauth-cookie") == NULL);
	ASSERT_TRUE(strstr(out, "gh-token") == NULL);
	ASSERT_TRUE(strstr(out, "x=1\n0\n"));
	free(out);

	/* An explicit bind of the secret wins over the default mask. */
	char ssh[1200];
	snprintf(ssh, sizeof(ssh), "%s/.ssh", f.home);
	sb_sandbox_bind binds[] = {{ssh, false}};
	f.cfg.binds = binds;
	f.cfg.n_binds = 1;
	out = run_sh(&f, "cat \"$HOME/.ssh/id_rsa\"", &res);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(strstr(out, "secret-key"));
	free(out);
	fx_release(&f);
}

/*
 * As root the command is uid 0 without capabilities: owner permission alone
 * would let it read /etc/shadow (0640 root:shadow). The mask must hide it,
 * with and without a user namespace (root's uid 0 maps to itself).
 */
static void check_shadow_masked(sb_sandbox_flags flags)
{
	if (!sb_test_is_root())
		SB_SKIP("only a root caller's command owns /etc/shadow");
	if (access("/etc/shadow", R_OK) < 0)
		SB_SKIP("no readable /etc/shadow on this host");
	fx f;
	fx_init(&f, false);
	f.cfg.flags |= flags;
	char *want = sb_test_sh_out("sha256sum < /etc/shadow | cut -c1-64");
	sb_sandbox_result res;
	char *out = run_sh(&f,
			   "id -u; sha256sum < /etc/shadow | cut -c1-64; wc -c < /etc/shadow; "
			   "cat /etc/gshadow /etc/shadow- /etc/gshadow- 2>/dev/null | wc -c",
			   &res);
	ASSERT_EQ(res.exit_code, 0);
	if (strncmp(out, "0\n", 2) != 0)
		sb_test_fail(__FILE__, __LINE__, "not uid 0 inside: %s", out);
	if (strstr(out, want) || !strstr(out, "\n0\n0\n"))
		sb_test_fail(__FILE__, __LINE__, "/etc/shadow readable inside:\n%s", out);
	free(out);
	/* What stops it is the mask: exposed on purpose, the same command reads it. */
	sb_sandbox_bind binds[] = {{"/etc/shadow", false}};
	f.cfg.binds = binds;
	f.cfg.n_binds = 1;
	out = run_sh(&f, "sha256sum < /etc/shadow | cut -c1-64", &res);
	if (!strstr(out, want))
		sb_test_fail(__FILE__, __LINE__, "bound /etc/shadow not readable: %s", out);
	free(out);
	free(want);
	fx_release(&f);
}

TEST(root_cannot_read_system_secrets)
{
	check_shadow_masked(0);
}

TEST(root_cannot_read_system_secrets_in_user_namespace)
{
	check_shadow_masked(SB_SANDBOX_USERNS);
}

TEST(environment_is_reduced)
{
	need_namespaces();
	setenv("SBX_SECRET_TOKEN", "hunter2", 1);
	setenv("SBX_PASSED", "through", 1);
	setenv("LC_SBXTEST", "kept", 1);
	fx f;
	fx_init(&f, false);
	const char *env[] = {"SBX_PASSED", "SBX_SET=value=with=eq", "SBX_UNSET_THING"};
	f.cfg.env = env;
	f.cfg.n_env = 3;
	sb_sandbox_result res;
	char *out = run_sh(&f, "env", &res);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(strstr(out, "hunter2") == NULL);
	ASSERT_TRUE(strstr(out, "SBX_PASSED=through\n"));
	ASSERT_TRUE(strstr(out, "SBX_SET=value=with=eq\n"));
	ASSERT_TRUE(strstr(out, "LC_SBXTEST=kept\n"));
	ASSERT_TRUE(strstr(out, "SBX_UNSET_THING") == NULL);
	ASSERT_TRUE(strstr(out, "PATH="));
	free(out);
	fx_release(&f);
}

static bool marker_running(const char *marker)
{
	/* "[s]leep" keeps pgrep from matching the shell that runs it. */
	return sb_test_sh("pgrep -f '[s]leep %s' >/dev/null", marker) == 0;
}

TEST(double_forked_daemon_dies_with_the_sandbox)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	char marker[64], script[256];
	/* A unique argument for sleep: pgrep finds it by its command line from the host. */
	snprintf(marker, sizeof(marker), "1000%d.5", (int)getpid());
	snprintf(script, sizeof(script),
		 "setsid sh -c 'sleep %s </dev/null >/dev/null 2>&1 &' & sleep 0.6; exit 0",
		 marker);
	sh(&f, script);
	sb_error err = SB_ERROR_INIT;
	sb_sandbox *sb;
	ASSERT_OK(sb_sandbox_start(&f.cfg, &sb, &err));
	ASSERT_OK(sb_sandbox_wait_exec(sb, &err));
	bool seen = false;
	for (int i = 0; i < 50 && !seen; i++) {
		seen = marker_running(marker);
		if (!seen)
			usleep(20000);
	}
	ASSERT_TRUE(seen); /* the daemon really ran (so the check below can fail) */
	sb_sandbox_result res;
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_FALSE(marker_running(marker));
	sb_sandbox_free(sb);
	fx_release(&f);
}

TEST(timeout_kills_and_reports)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	f.cfg.timeout_ms = 300;
	sb_sandbox_result res;
	run_plain(&f, "sleep 100", &res);
	ASSERT_TRUE(res.timed_out);
	ASSERT_EQ(res.outcome, SB_SANDBOX_SIGNALED);
	ASSERT_EQ(res.exit_code, 137);
	ASSERT_TRUE(res.wall_ns >= 300000000ull && res.wall_ns < 5000000000ull);

	/* With a grace period the command gets SIGTERM first (relayed by PID 1). */
	f.cfg.timeout_grace_ms = 2000;
	run_plain(&f, "trap 'exit 42' TERM; while :; do sleep 0.05; done", &res);
	ASSERT_TRUE(res.timed_out);
	ASSERT_EQ(res.exit_code, 42);
	fx_release(&f);
}

TEST(signals_reach_the_command_through_pid1)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	sh(&f, "trap 'exit 7' USR1; trap 'exit 9' TERM; while :; do sleep 0.05; done");
	sb_error err = SB_ERROR_INIT;
	sb_sandbox *sb;
	ASSERT_OK(sb_sandbox_start(&f.cfg, &sb, &err));
	ASSERT_OK(sb_sandbox_wait_exec(sb, &err));
	usleep(200000);
	ASSERT_OK(sb_sandbox_kill(sb, SIGUSR1));
	sb_sandbox_result res;
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	ASSERT_EQ(res.outcome, SB_SANDBOX_EXITED);
	ASSERT_EQ(res.exit_code, 7);
	sb_sandbox_free(sb);
	fx_release(&f);
}

TEST(forwarded_signal_from_the_supervisor)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	f.cfg.flags |= SB_SANDBOX_FORWARD_SIGNALS;
	sh(&f, "trap 'exit 5' INT; while :; do sleep 0.05; done");
	sb_error err = SB_ERROR_INIT;
	sb_sandbox *sb;
	ASSERT_OK(sb_sandbox_start(&f.cfg, &sb, &err));
	ASSERT_OK(sb_sandbox_wait_exec(sb, &err));
	usleep(200000);
	/* A child of ours sends SIGINT to us while we sit in wait(): relayed, not fatal. */
	pid_t me = getpid();
	pid_t k = fork();
	if (k == 0) {
		usleep(200000);
		kill(me, SIGINT);
		_exit(0);
	}
	sb_sandbox_result res;
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	waitpid(k, NULL, 0);
	ASSERT_EQ(res.exit_code, 5);
	sb_sandbox_free(sb);
	fx_release(&f);
}

static int failing_mount(void *data, const char *host_root, const char *target, bool userns,
			 char *msg, size_t msg_size)
{
	snprintf(msg, msg_size, "test refuses");
	return -EPERM;
}

TEST(setup_failure_names_the_step)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	f.cfg.workspace_mount = failing_mount;
	sb_sandbox_result res;
	char *out = run_sh(&f, "echo should-not-run", &res);
	ASSERT_EQ(res.outcome, SB_SANDBOX_SETUP_FAILED);
	ASSERT_EQ(res.exit_code, 125);
	ASSERT_EQ(res.error, EPERM);
	ASSERT_STREQ(res.step, "mount");
	ASSERT_STREQ(res.path, f.ws);
	ASSERT_TRUE(strstr(res.message, "sandbox setup failed at mount"));
	ASSERT_TRUE(strstr(res.message, "test refuses"));
	ASSERT_TRUE(strstr(out, "should-not-run") == NULL);
	free(out);

	/* wait_exec says the same before the end. */
	f.cfg.stdout_fd = f.cfg.stderr_fd = -1;
	sb_error err = SB_ERROR_INIT;
	sb_sandbox *sb;
	ASSERT_OK(sb_sandbox_start(&f.cfg, &sb, &err));
	ASSERT_ERR(sb_sandbox_wait_exec(sb, &err), -EPERM);
	ASSERT_TRUE(strstr(err.msg, "sandbox setup failed at mount"));
	sb_sandbox_free(sb);

	/* A cgroup.procs fd that cannot be written fails the run, never silently. */
	f.cfg.workspace_mount = NULL;
	int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
	f.cfg.cgroup_procs_fds = &ro;
	f.cfg.n_cgroup_procs_fds = 1;
	free(run_sh(&f, "true", &res));
	ASSERT_EQ(res.exit_code, 125);
	ASSERT_STREQ(res.step, "cgroup join");
	close(ro);

	/* Parent-side refusals are plain errors with the value named. */
	sb_sandbox_config_init(&f.cfg);
	f.cfg.argv = f.argv;
	sb_sandbox_bind bad[] = {{"/nonexistent/sbx-ro", false}};
	f.cfg.binds = bad;
	f.cfg.n_binds = 1;
	ASSERT_ERR(sb_sandbox_start(&f.cfg, &sb, &err), -ENOENT);
	ASSERT_TRUE(strstr(err.msg, "/nonexistent/sbx-ro"));
	fx_release(&f);
}

/* New upper and work directories: a volatile overlay's work directory is single-use. */
static void fresh_layers(fx *f)
{
	ASSERT_EQ(sb_test_sh("chmod -R u+rwx '%s' && rm -rf '%s' '%s' && mkdir '%s' '%s'", f->work,
			     f->upper, f->work, f->upper, f->work),
		  0);
}

/* Children of pid, from the host, by pgrep. */
static long children_of(pid_t pid)
{
	char *n = sb_test_sh_out("pgrep -c -P %d || true", (int)pid);
	long v = atol_ok(n);
	free(n);
	return v;
}

/*
 * SB_SANDBOX_HOLD: PID 1 sets up and waits; nothing of the command runs
 * until the release, which also starts the timeout clock.
 */
TEST(hold_until_release)
{
	need_namespaces();
	fx f;
	fx_init(&f, true);
	f.cfg.flags |= SB_SANDBOX_HOLD;
	f.cfg.timeout_ms = 400;
	sh(&f, "sleep 0.1; echo ran");
	int rfd;
	sb_sandbox *sb = start_piped(&f, false, &rfd);
	sb_error err = SB_ERROR_INIT;
	/* Held past the timeout it will get: the clock has not started. */
	struct pollfd pfd = {.fd = rfd, .events = POLLIN};
	ASSERT_EQ(poll(&pfd, 1, 600), 0);
	/* Set up (its own mount namespace, the overlay mounted), but no command yet. */
	ASSERT_EQ(sb_test_sh("test \"$(readlink /proc/%d/ns/mnt)\" != \"$(readlink "
			     "/proc/self/ns/mnt)\"",
			     (int)sb_sandbox_pid(sb)),
		  0);
	ASSERT_EQ(children_of(sb_sandbox_pid(sb)), 0);
	ASSERT_OK(sb_sandbox_release(sb, &err));
	ASSERT_OK(sb_sandbox_release(sb, &err)); /* once is enough */
	char out[64] = "";
	ssize_t n = read(rfd, out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = 0;
	sb_sandbox_result res;
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	sb_sandbox_free(sb);
	close(rfd);
	ASSERT_STREQ(out, "ran\n");
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(!res.timed_out);
	ASSERT_TRUE(res.wall_ns < 400000000ull);

	/* A set-up failure while held: the release is fine, wait reports it. */
	f.cfg.workspace_mount = failing_mount;
	ASSERT_OK(sb_sandbox_start(&f.cfg, &sb, &err));
	usleep(100000);
	ASSERT_OK(sb_sandbox_release(sb, &err));
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	sb_sandbox_free(sb);
	ASSERT_EQ(res.exit_code, 125);
	ASSERT_STREQ(res.step, "mount");

	/* Never released: wait releases it; sb_sandbox_run works as without the flag. */
	f.cfg.workspace_mount = sb_overlay_mount_hook;
	fresh_layers(&f);
	f.cfg.timeout_ms = 0;
	run_plain(&f, "exit 7", &res);
	ASSERT_EQ(res.exit_code, 7);

	/* Freed while held: PID 1 is gone, and the command never ran. */
	fresh_layers(&f);
	sh(&f, "echo x > held-ran");
	ASSERT_OK(sb_sandbox_start(&f.cfg, &sb, &err));
	pid_t pid1 = sb_sandbox_pid(sb);
	usleep(100000);
	sb_sandbox_free(sb);
	ASSERT_TRUE(kill(pid1, 0) < 0 && errno == ESRCH);
	ASSERT_EQ(sb_test_sh("test ! -e '%s/held-ran'", f.upper), 0);
	fx_release(&f);
}

TEST(capabilities_session_and_privileges)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	sb_sandbox_result res;
	char *out = run_sh(&f,
			   "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' "
			   "/proc/self/status; read a b c d e sid rest < /proc/self/stat; "
			   "echo \"sid=$sid\"; hostname; pwd",
			   &res);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(strstr(out, "CapInh:\t0000000000000000"));
	ASSERT_TRUE(strstr(out, "CapPrm:\t0000000000000000"));
	ASSERT_TRUE(strstr(out, "CapEff:\t0000000000000000"));
	ASSERT_TRUE(strstr(out, "CapBnd:\t0000000000000000"));
	ASSERT_TRUE(strstr(out, "CapAmb:\t0000000000000000"));
	ASSERT_TRUE(strstr(out, "NoNewPrivs:\t1"));
	ASSERT_TRUE(strstr(out, "sid=1\n")); /* its own session, led by PID 1 */
	ASSERT_TRUE(strstr(out, "snapbox\n"));
	char want[1200];
	snprintf(want, sizeof(want), "\n%s\n", f.ws); /* cwd defaults to the workspace */
	ASSERT_TRUE(strstr(out, want));
	free(out);
	fx_release(&f);
}

TEST(ro_and_rw_binds)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	ASSERT_EQ(sb_test_sh("mkdir -p robind rwbind && echo r > robind/f"), 0);
	char ro[1200], rw[1200], script[8192];
	snprintf(ro, sizeof(ro), "%s/robind", f.dir);
	snprintf(rw, sizeof(rw), "%s/rwbind", f.dir);
	sb_sandbox_bind binds[] = {{ro, false}, {rw, true}};
	f.cfg.binds = binds;
	f.cfg.n_binds = 2;
	snprintf(script, sizeof(script),
		 "cat '%s/f'; touch '%s/x'; echo \"ro=$?\"; echo w > '%s/y'; echo \"rw=$?\"", ro,
		 ro, rw);
	sb_sandbox_result res;
	char *out = run_sh(&f, script, &res);
	ASSERT_TRUE(strstr(out, "ro=1"));
	ASSERT_TRUE(strstr(out, "rw=0"));
	free(out);
	ASSERT_EQ(sb_test_sh("grep -qx w rwbind/y && test ! -e robind/x"), 0);
	fx_release(&f);
}

TEST(workspace_under_tmp_stays_visible)
{
	need_namespaces();
	char tws[64];
	snprintf(tws, sizeof(tws), "/tmp/sbx-ws-XXXXXX");
	ASSERT_TRUE(mkdtemp(tws));
	char file[128];
	snprintf(file, sizeof(file), "%s/in-ws", tws);
	write_file(file, "lower\n");
	fx f;
	fx_init(&f, false);
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_overlay_new(tws, f.upper, f.work, 0, &f.ov, &err));
	f.cfg.workspace = tws;
	f.cfg.workspace_mount = sb_overlay_mount_hook;
	f.cfg.workspace_mount_data = f.ov;
	sb_sandbox_result res;
	char *out = run_sh(&f, "cat in-ws && echo upper > new && ls -A /tmp | wc -l", &res);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(strstr(out, "lower\n1\n"));
	free(out);
	char up[1200];
	snprintf(up, sizeof(up), "%s/new", f.upper);
	ASSERT_EQ(access(up, F_OK), 0);
	ASSERT_EQ(sb_test_sh("test ! -e '%s/new'", tws), 0);

	/* Without an overlay it is still there, read-only. */
	f.cfg.workspace_mount = NULL;
	out = run_sh(&f, "cat in-ws; touch x; echo \"t=$?\"", &res);
	ASSERT_TRUE(strstr(out, "lower\n"));
	ASSERT_TRUE(strstr(out, "t=1"));
	free(out);
	sb_test_sh("rm -rf '%s'", tws);
	fx_release(&f);
}

TEST(rlimits_are_applied)
{
	need_namespaces();
	fx f;
	fx_init(&f, false);
	sb_rlimits rl;
	sb_rlimits_init(&rl);
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_rlimits_set_nofile(&rl, 17, &err));
	f.cfg.rlimits = rl.items;
	f.cfg.n_rlimits = rl.n;
	sb_sandbox_result res;
	char *out = run_sh(&f, "ulimit -n; ulimit -c", &res);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_STREQ(out, "17\n0\n");
	free(out);
	fx_release(&f);
}

/* uname(2) refused with EPERM by a hand-written filter: the filter really is installed. */
TEST(seccomp_filter_is_installed_last)
{
	need_namespaces();
#if defined(__x86_64__)
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_uname, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = ARRAY_SIZE(code), .filter = code};
	fx f;
	fx_init(&f, false);
	f.argv[0] = "uname";
	f.argv[1] = NULL;
	sb_sandbox_result res;
	free(run(&f, &res));
	ASSERT_EQ(res.exit_code, 0);
	f.cfg.seccomp_prog = &prog;
	char *out = run(&f, &res);
	ASSERT_EQ(res.outcome, SB_SANDBOX_EXITED);
	ASSERT_NE(res.exit_code, 0);
	ASSERT_TRUE(strstr(out, "Operation not permitted"));
	free(out);
	fx_release(&f);
#else
	SB_SKIP("the hand-written filter is x86-64 only");
#endif
}

TEST(landlock_ruleset_is_enforced)
{
	need_namespaces();
	struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_WRITE_FILE |
								  LANDLOCK_ACCESS_FS_MAKE_REG};
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		SB_SKIP("Landlock unavailable: %s", strerror(errno));
	fx f;
	fx_init(&f, false);
	f.cfg.landlock_ruleset_fd = fd;
	sb_sandbox_result res;
	char *out = run_sh(&f, "echo x > /tmp/t; echo \"w=$?\"", &res);
	ASSERT_TRUE(strstr(out, "w=0") == NULL);
	ASSERT_TRUE(strstr(out, "Permission denied"));
	free(out);
	close(fd);
	fx_release(&f);
}

TEST(cgroup_procs_fd_is_joined)
{
	if (!sb_test_is_root())
		SB_SKIP("creating a cgroup needs root here");
	char cg[128];
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/pids/sbx-test-%d", (int)getpid());
	if (mkdir(cg, 0755) < 0)
		SB_SKIP("cannot create %s: %s", cg, strerror(errno));
	char procs[160];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	fx f;
	fx_init(&f, false);
	f.cfg.cgroup_procs_fds = &fd;
	f.cfg.n_cgroup_procs_fds = 1;
	sh(&f, "grep pids /proc/self/cgroup; sleep 0.5");
	int rfd;
	sb_sandbox *sb = start_piped(&f, false, &rfd);
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_sandbox_wait_exec(sb, &err));
	/* From the host: PID 1 and the command are in the cgroup. */
	char *members = sb_test_sh_out("wc -l < %s", procs);
	ASSERT_TRUE(atol_ok(members) >= 2);
	free(members);
	char out[256] = "";
	ssize_t n = read(rfd, out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = 0;
	sb_sandbox_result res;
	ASSERT_OK(sb_sandbox_wait(sb, &res, &err));
	sb_sandbox_free(sb);
	close(rfd);
	close(fd);
	rmdir(cg);
	ASSERT_EQ(res.exit_code, 0);
	/* Inside, its cgroup namespace is rooted at the sandbox's cgroup. */
	ASSERT_TRUE(strstr(out, ":pids:/\n"));
	fx_release(&f);
}

/*
 * Runs "cat /proc/self/cgroup; sleep 0.3" with the given cgroup fds; while it
 * sleeps, counts the processes in cg from the host (into *ret_members).
 * Returns the command's output.
 */
static char *run_in_cgroup(fx *f, sb_cgroup *cg, int clone_fd, const int *fds, size_t n,
			   sb_sandbox_result *res, long *ret_members)
{
	f->cfg.cgroup_clone_fd = clone_fd;
	f->cfg.cgroup_procs_fds = fds;
	f->cfg.n_cgroup_procs_fds = n;
	sh(f, "cat /proc/self/cgroup; sleep 0.3");
	int rfd;
	sb_sandbox *sb = start_piped(f, false, &rfd);
	sb_error err = SB_ERROR_INIT;
	if (sb_sandbox_wait_exec(sb, &err) < 0)
		fprintf(stderr, "# %s\n", err.msg);
	char *members = sb_test_sh_out("wc -l < '%s/cgroup.procs'", sb_cgroup_path(cg));
	*ret_members = atol_ok(members);
	free(members);
	char *out = calloc(1, 4096);
	ASSERT_TRUE(out);
	ssize_t r, len = 0;
	while (len < 4095 && (r = read(rfd, out + len, (size_t)(4095 - len))) > 0)
		len += r;
	close(rfd);
	ASSERT_OK(sb_sandbox_wait(sb, res, &err));
	sb_sandbox_free(sb);
	return out;
}

/*
 * cgroup v2: PID 1 is cloned straight into the cgroup (CLONE_INTO_CGROUP)
 * and joins nothing itself: its join fd is /dev/full, where writing "0"
 * would fail the run at "cgroup join".
 */
TEST(cgroup_v2_clone_into)
{
	if (!sb_test_is_root())
		SB_SKIP("creating a cgroup needs root here");
	struct utsname u;
	int major = 0, minor = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2 ||
	    major * 100 + minor < 507)
		SB_SKIP("clone3 has no CLONE_INTO_CGROUP before Linux 5.7");
	sb_cgroup_options opt = {.version = SB_CGROUP_V2};
	sb_cgroup *cg = NULL;
	sb_error err = SB_ERROR_INIT;
	if (sb_cgroup_new(NULL, &opt, &cg, &err) < 0)
		SB_SKIP("no cgroup v2 here: %s", err.msg);
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	ASSERT_OK(full);
	fx f;
	fx_init(&f, false);
	sb_sandbox_result res;
	long members;
	char *out = run_in_cgroup(&f, cg, sb_cgroup_clone_fd(cg), &full, 1, &res, &members);
	if (res.exit_code != 0)
		fprintf(stderr, "# %s\n", res.message);
	ASSERT_EQ(res.exit_code, 0);
	/* PID 1 and the command, seen from the host; inside, the cgroup is the namespace's root. */
	ASSERT_TRUE(members >= 2);
	ASSERT_TRUE(strstr(out, "0::/\n"));
	free(out);
	close(full);
	sb_cgroup_free(cg);
	fx_release(&f);
}

/* A clone fd the kernel refuses (not a cgroup): PID 1 joins through its join fds instead. */
TEST(cgroup_clone_fd_falls_back_to_joining)
{
	if (!sb_test_is_root())
		SB_SKIP("creating a cgroup needs root here");
	sb_cgroup *cg = NULL;
	sb_error err = SB_ERROR_INIT;
	if (sb_cgroup_new(NULL, NULL, &cg, &err) < 0)
		SB_SKIP("no cgroup here: %s", err.msg);
	int notcg = open(sb_test_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(notcg);
	const int *fds;
	size_t n = sb_cgroup_join_fds(cg, &fds);
	fx f;
	fx_init(&f, false);
	sb_sandbox_result res;
	long members;
	char *out = run_in_cgroup(&f, cg, notcg, fds, n, &res, &members);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(members >= 2);
	free(out);
	/* Without join fds to fall back on, a clone fd is refused before anything starts. */
	f.cfg.cgroup_procs_fds = NULL;
	f.cfg.n_cgroup_procs_fds = 0;
	sb_sandbox *sb = NULL;
	ASSERT_ERR(sb_sandbox_start(&f.cfg, &sb, &err), -EINVAL);
	ASSERT_TRUE(sb == NULL);
	close(notcg);
	sb_cgroup_free(cg);
	fx_release(&f);
}

static void identity_body(uid_t want_uid, gid_t want_gid)
{
	fx f;
	fx_init(&f, true);
	sb_sandbox_result res;
	char *out = run_sh(&f,
			   "id -u; id -g; cat /proc/self/uid_map; echo hi > new-file && "
			   "stat -c %u new-file",
			   &res);
	if (res.exit_code != 0)
		fprintf(stderr, "# %s\n", res.message);
	ASSERT_EQ(res.exit_code, 0);
	char want[256];
	snprintf(want, sizeof(want), "%u\n%u\n", want_uid, want_gid);
	ASSERT_TRUE(strncmp(out, want, strlen(want)) == 0);
	/* Mapped to itself: the command does not believe it is root (unless it is). */
	snprintf(want, sizeof(want), "%u %u 1", want_uid, want_uid);
	char *map = strstr(out, "\n") ? strstr(strstr(out, "\n") + 1, "\n") + 1 : out;
	char a[32], b[32], c[32];
	ASSERT_EQ(sscanf(map, "%31s %31s %31s", a, b, c), 3);
	char got[128];
	snprintf(got, sizeof(got), "%s %s %s", a, b, c);
	ASSERT_STREQ(got, want);
	free(out);
	char up[1200];
	snprintf(up, sizeof(up), "%s/new-file", f.upper);
	struct stat st;
	ASSERT_OK(stat(up, &st));
	ASSERT_EQ(st.st_uid, want_uid);
	fx_release(&f);
}

TEST(rootless_uid_inside_is_the_callers)
{
	need_namespaces();
	if (!sb_test_is_root()) {
		identity_body(getuid(), getgid());
		return;
	}
	/* As root, become nobody in a child: the unprivileged path runs in every CI. */
	ASSERT_OK(chown(sb_test_dir(), 65534, 65534));
	pid_t pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(3);
		identity_body(65534, 65534);
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

TEST(root_in_forced_user_namespace)
{
	if (!sb_test_is_root())
		SB_SKIP("the forced user namespace is for root callers");
	fx f;
	fx_init(&f, true);
	f.cfg.flags |= SB_SANDBOX_USERNS;
	ASSERT_TRUE(sb_sandbox_uses_userns(&f.cfg));
	sb_sandbox_result res;
	char *out = run_sh(&f, "cat /proc/self/uid_map; echo x > y && echo ok", &res);
	ASSERT_EQ(res.exit_code, 0);
	ASSERT_TRUE(strstr(out, "ok"));
	free(out);
	char y[1200];
	snprintf(y, sizeof(y), "%s/y", f.upper);
	ASSERT_EQ(access(y, F_OK), 0);
	fx_release(&f);
}

/*
 * A read-only view does not stop connect() on a Unix socket; a masked one
 * does. (The same mask covers /run/docker.sock, the system bus, /run/user/UID.)
 */
TEST(unix_socket_reachable_unless_masked)
{
	need_namespaces();
	if (access("/usr/bin/python3", X_OK) < 0)
		SB_SKIP("no /usr/bin/python3 to connect with");
	fx f;
	fx_init(&f, false);
	char path[1200], script[4096];
	snprintf(path, sizeof(path), "%s/agent.sock", f.dir);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		SB_SKIP("test directory too long for a socket path");
	memcpy(a.sun_path, path, strlen(path) + 1);
	ASSERT_OK(bind(s, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(listen(s, 4));
	snprintf(script, sizeof(script),
		 "/usr/bin/python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); "
		 "s.connect(\"%s\")' 2>/dev/null; echo \"c=$?\"",
		 path);
	sb_sandbox_result res;
	char *out = run_sh(&f, script, &res);
	ASSERT_TRUE(strstr(out, "c=0")); /* the threat is real */
	free(out);
	const char *hide[] = {path};
	f.cfg.hide = hide;
	f.cfg.n_hide = 1;
	out = run_sh(&f, script, &res);
	ASSERT_TRUE(strstr(out, "c=1"));
	free(out);
	close(s);
	fx_release(&f);
}

TEST(nothing_survives_a_killed_supervisor)
{
	need_namespaces();
	char marker[64], script[256];
	snprintf(marker, sizeof(marker), "2000%d.25", (int)getpid());
	snprintf(script, sizeof(script), "sleep %s & sleep %s", marker, marker);
	int ready[2];
	ASSERT_OK(pipe2(ready, O_CLOEXEC));
	pid_t sup = fork();
	ASSERT_OK(sup);
	if (sup == 0) {
		fx f;
		fx_init(&f, false);
		sh(&f, script);
		sb_error err = SB_ERROR_INIT;
		sb_sandbox *sb;
		if (sb_sandbox_start(&f.cfg, &sb, &err) < 0 || sb_sandbox_wait_exec(sb, &err) < 0)
			_exit(1);
		(void)!write(ready[1], "r", 1);
		pause(); /* killed with SIGKILL: no cleanup of ours runs */
		_exit(0);
	}
	close(ready[1]);
	char c;
	ASSERT_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	bool seen = false;
	for (int i = 0; i < 50 && !seen; i++) {
		seen = marker_running(marker);
		if (!seen)
			usleep(20000);
	}
	ASSERT_TRUE(seen);
	ASSERT_OK(kill(sup, SIGKILL));
	ASSERT_EQ(waitpid(sup, NULL, 0), sup);
	bool gone = false;
	for (int i = 0; i < 100 && !gone; i++) {
		gone = !marker_running(marker);
		if (!gone)
			usleep(20000);
	}
	ASSERT_TRUE(gone);
}

static void check_caller_fds_do_not_leak_in(bool overlay)
{
	need_namespaces();
	fx f;
	fx_init(&f, overlay);
	int leak = open("home/.ssh/id_rsa", O_RDONLY); /* deliberately without O_CLOEXEC */
	ASSERT_OK(leak);
	int leak2 = dup2(leak, 50);
	ASSERT_EQ(leak2, 50);
	sb_sandbox_result res;
	char *out = run_sh(&f, "ls /proc/self/fd | tr '\\n' ' '; cat <&50", &res);
	ASSERT_TRUE(strncmp(out, "0 1 2 3 \n", 9) == 0 || strncmp(out, "0 1 2 3 ", 8) == 0);
	ASSERT_TRUE(strstr(out, "secret-key") == NULL);
	free(out);
	close(leak);
	close(leak2);
	fx_release(&f);
}

TEST(caller_fds_do_not_leak_in)
{
	check_caller_fds_do_not_leak_in(false);
}

/* With the overlay, PID 1 also holds the socket for the mount's fd: not the command. */
TEST(caller_fds_do_not_leak_in_with_overlay)
{
	check_caller_fds_do_not_leak_in(true);
}

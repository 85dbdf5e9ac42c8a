/* SPDX-License-Identifier: MIT */
/*
 * Landlock, rlimits and the layer summary. Each ruleset is applied in a
 * forked child exactly as the spawn code applies it (no_new_privs, then
 * landlock_restrict_self on the fd built in the parent); the child then
 * tries things and reports each errno over a pipe.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "landlock.h"
#include "layers.h"
#include "rlimit.h"
#include "sb-test.h"

static void need_landlock(void)
{
	if (sb_landlock_abi() <= 0) {
		sb_layer_status st;
		sb_landlock_layer_status(NULL, &st);
		SB_SKIP("no Landlock: %s", st.reason);
	}
}

/* 0 or the errno of a failed step. */
static int try_create(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	int e = write(fd, "x", 1) == 1 ? 0 : errno;
	close(fd);
	return e;
}

static int try_(int r)
{
	return r < 0 ? errno : 0;
}

#define MAX_CHECKS 16

struct outcome {
	int n;
	int got[MAX_CHECKS];
};

typedef void (*child_fn)(struct outcome *o);

/*
 * Fork; the child optionally becomes uid 65534, sets no_new_privs,
 * restricts itself with ruleset_fd (unless -1), runs fn and sends back the
 * outcome.
 */
static void run_restricted(int ruleset_fd, bool as_nobody, child_fn fn, struct outcome *o)
{
	int fds[2], st;

	ASSERT_OK(pipe2(fds, O_CLOEXEC));
	fflush(stdout);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		struct outcome out = {0};
		close(fds[0]);
		if (as_nobody && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
				  setresuid(65534, 65534, 65534) < 0))
			_exit(122);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			_exit(123);
		if (ruleset_fd >= 0 && sb_landlock_apply(ruleset_fd) < 0)
			_exit(124);
		fn(&out);
		if (write(fds[1], &out, sizeof(out)) != sizeof(out))
			_exit(125);
		_exit(0);
	}
	close(fds[1]);
	memset(o, 0, sizeof(*o));
	ssize_t n = read(fds[0], o, sizeof(*o));
	close(fds[0]);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		sb_test_fail(__FILE__, __LINE__, "restricted child: status %#x", st);
	ASSERT_EQ(n, (ssize_t)sizeof(*o));
}

/*
 * Fork; in a private mount namespace mount a tmpfs over each of over[] and
 * bind "rw" onto "bound"; if child_rule, add a rule for "allowed" (now the
 * tmpfs root) with the child-side call; then restrict and run fn.
 */
static void run_restricted_mounts(int ruleset_fd, const char *const *over, bool child_rule,
				  child_fn fn, struct outcome *o)
{
	int fds[2], st;

	ASSERT_OK(pipe2(fds, O_CLOEXEC));
	fflush(stdout);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		struct outcome out = {0};
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(120);
		for (; *over; over++)
			if (mount("tmpfs", *over, "tmpfs", 0, "mode=0777") < 0)
				_exit(121);
		if (mount("rw", "bound", NULL, MS_BIND, NULL) < 0)
			_exit(122);
		if (child_rule &&
		    sb_landlock_add_path(ruleset_fd, sb_landlock_abi(), "allowed") < 0)
			_exit(123);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sb_landlock_apply(ruleset_fd) < 0)
			_exit(124);
		fn(&out);
		_exit(write(fds[1], &out, sizeof(out)) == sizeof(out) ? 0 : 125);
	}
	close(fds[1]);
	memset(o, 0, sizeof(*o));
	ssize_t n = read(fds[0], o, sizeof(*o));
	close(fds[0]);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		sb_test_fail(__FILE__, __LINE__, "restricted child: status %#x", st);
	ASSERT_EQ(n, (ssize_t)sizeof(*o));
}

static void fs_checks(struct outcome *o)
{
	char buf[8];
	int fd;

	o->got[o->n++] = try_create("allowed/new");	   /* 0: create inside */
	o->got[o->n++] = try_(mkdir("allowed/dir", 0755)); /* 1: mkdir inside */
	o->got[o->n++] = try_(unlink("allowed/old"));	   /* 2: unlink inside */
	o->got[o->n++] = try_create("outside/new");	   /* 3: create outside */
	o->got[o->n++] = try_(mkdir("outside/dir", 0755)); /* 4: mkdir outside */
	o->got[o->n++] = try_(unlink("outside/old"));	   /* 5: unlink outside */
	fd = open("outside/old", O_WRONLY | O_CLOEXEC);	   /* 6: write existing outside */
	o->got[o->n++] = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	o->got[o->n++] = try_(truncate("outside/old", 0));	       /* 7: truncate outside */
	o->got[o->n++] = try_(rename("allowed/new", "outside/moved")); /* 8: move out */
	fd = open("outside/old", O_RDONLY | O_CLOEXEC);		       /* 9: read outside */
	o->got[o->n++] = fd < 0 ? errno : (read(fd, buf, sizeof(buf)) >= 0 ? 0 : errno);
	if (fd >= 0)
		close(fd);
	o->got[o->n++] = try_(access("/bin/sh", X_OK)); /* 10: exec bits readable */
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);	/* 11: /dev/null writable */
	o->got[o->n++] = fd < 0 ? errno : (write(fd, "x", 1) == 1 ? 0 : errno);
	if (fd >= 0)
		close(fd);
}

static void make_tree(bool world_writable)
{
	ASSERT_OK(mkdir("allowed", 0755));
	ASSERT_OK(mkdir("outside", 0755));
	ASSERT_EQ(try_create("allowed/old"), 0);
	ASSERT_EQ(try_create("outside/old"), 0);
	if (world_writable)
		ASSERT_EQ(
		    sb_test_sh("chmod 777 allowed outside && chmod 666 allowed/old outside/old"),
		    0);
}

static void expect_fs(const struct outcome *o, int abi)
{
	ASSERT_EQ(o->n, 12);
	ASSERT_EQ(o->got[0], 0);
	ASSERT_EQ(o->got[1], 0);
	ASSERT_EQ(o->got[2], 0);
	ASSERT_EQ(o->got[3], EACCES);
	ASSERT_EQ(o->got[4], EACCES);
	ASSERT_EQ(o->got[5], EACCES);
	ASSERT_EQ(o->got[6], EACCES);
	if (abi >= 3)
		ASSERT_EQ(o->got[7], EACCES);
	/* Landlock answers a cross-hierarchy rename it refuses with EXDEV (ABI 2+) or EACCES. */
	ASSERT_TRUE(o->got[8] == EXDEV || o->got[8] == EACCES);
	ASSERT_EQ(o->got[9], 0);
	ASSERT_EQ(o->got[10], 0);
	ASSERT_EQ(o->got[11], 0);
}

TEST(writes_only_beneath_allowed)
{
	_cleanup_(sb_landlock_freep) sb_landlock *ll = NULL;
	sb_error err = SB_ERROR_INIT;
	struct outcome o;
	struct stat st;

	need_landlock();
	make_tree(false);
	ASSERT_OK(sb_landlock_new(0, &ll, &err));
	ASSERT_OK(sb_landlock_allow_write(ll, "allowed", &err));
	ASSERT_OK(sb_landlock_allow_devices(ll, &err));
	run_restricted(sb_landlock_fd(ll), false, fs_checks, &o);
	expect_fs(&o, sb_landlock_abi_of(ll));
	/* Independent look from outside the sandbox. */
	ASSERT_OK(stat("allowed/new", &st));
	ASSERT_OK(stat("allowed/dir", &st));
	ASSERT_TRUE(stat("outside/new", &st) < 0 && errno == ENOENT);
	ASSERT_OK(stat("outside/old", &st));
	ASSERT_EQ(st.st_size, 1);
	ASSERT_TRUE(stat("allowed/old", &st) < 0 && errno == ENOENT);
}

TEST(writes_only_beneath_allowed_unprivileged)
{
	_cleanup_(sb_landlock_freep) sb_landlock *ll = NULL;
	struct outcome o;

	need_landlock();
	if (!sb_test_is_root())
		SB_SKIP("needs root to switch to uid 65534 (already unprivileged: the test above "
			"covers it)");
	make_tree(true);
	ASSERT_OK(sb_landlock_new(0, &ll, NULL));
	ASSERT_OK(sb_landlock_allow_write(ll, "allowed", NULL));
	ASSERT_OK(sb_landlock_allow_devices(ll, NULL));
	run_restricted(sb_landlock_fd(ll), true, fs_checks, &o);
	expect_fs(&o, sb_landlock_abi_of(ll));
}

static void mounted_checks(struct outcome *o)
{
	o->got[o->n++] = try_create("allowed/in-tmpfs");
	o->got[o->n++] = try_create("outside/in-tmpfs");
	o->got[o->n++] = try_create("bound/via-bind");
}

/*
 * The spawn code mounts the overlay (and a fresh /tmp) in the child, over
 * host directories. Landlock skips the directory a mount hides, so a rule
 * on the host's directory does not cover what is mounted on it; a bind
 * mount, sharing the host's dentries, is covered. This pins both facts the
 * API's split (parent rules for bind mounts, child rules for new mounts)
 * rests on.
 */
TEST(parent_rule_vs_mounts_placed_later)
{
	_cleanup_(sb_landlock_freep) sb_landlock *ll = NULL;
	static const char *const over[] = {"allowed", "outside", NULL};
	struct outcome o;

	need_landlock();
	if (!sb_test_is_root())
		SB_SKIP("mounting in a private mount namespace needs root here");
	make_tree(false);
	ASSERT_OK(mkdir("bound", 0755));
	ASSERT_OK(mkdir("rw", 0755));
	ASSERT_OK(sb_landlock_new(0, &ll, NULL));
	ASSERT_OK(sb_landlock_allow_write(ll, "allowed", NULL));
	ASSERT_OK(sb_landlock_allow_write(ll, "rw", NULL));

	/* Parent rule only: the tmpfs over "allowed" is not covered; the bind of "rw" is. */
	run_restricted_mounts(sb_landlock_fd(ll), over, false, mounted_checks, &o);
	ASSERT_EQ(o.got[0], EACCES);
	ASSERT_EQ(o.got[1], EACCES);
	ASSERT_EQ(o.got[2], 0);

	/* The child names the new tmpfs root before restricting: covered. */
	run_restricted_mounts(sb_landlock_fd(ll), over, true, mounted_checks, &o);
	ASSERT_EQ(o.got[0], 0);
	ASSERT_EQ(o.got[1], EACCES);
	ASSERT_EQ(o.got[2], 0);
}

static int listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(listen(fd, 4));
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
	*port = ntohs(a.sin_port);
	return fd;
}

static int ports[2];
static int try_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int e = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? errno : 0;
	close(fd);
	return e;
}

static void net_checks(struct outcome *o)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	o->got[o->n++] = try_connect(ports[0]);
	o->got[o->n++] = try_connect(ports[1]);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	o->got[o->n++] = fd < 0 ? errno : try_(bind(fd, (struct sockaddr *)&a, sizeof(a)));
	if (fd >= 0)
		close(fd);
}

TEST(tcp_connect_only_to_allowed_port)
{
	_cleanup_(sb_landlock_freep) sb_landlock *ll = NULL;
	_cleanup_close_ int l0 = -1, l1 = -1;
	sb_layer_status st;
	struct outcome o;

	need_landlock();
	if (sb_landlock_abi() < 4)
		SB_SKIP("Landlock ABI %d has no TCP rules (needs 4)", sb_landlock_abi());
	l0 = listener(&ports[0]);
	l1 = listener(&ports[1]);
	ASSERT_OK(sb_landlock_new(SB_LANDLOCK_NET, &ll, NULL));
	ASSERT_OK(sb_landlock_allow_tcp(ll, (uint16_t)ports[0], SB_LANDLOCK_CONNECT, NULL));
	sb_landlock_layer_status(ll, &st);
	ASSERT_EQ(st.state, SB_LAYER_ENFORCED);
	ASSERT_TRUE(strstr(st.detail, "+tcp"));
	run_restricted(sb_landlock_fd(ll), false, net_checks, &o);
	ASSERT_EQ(o.got[0], 0);
	ASSERT_EQ(o.got[1], EACCES);
	ASSERT_EQ(o.got[2], EACCES); /* bind to port 0 is a bind too */
}

TEST(layer_status_and_errors)
{
	_cleanup_(sb_landlock_freep) sb_landlock *ll = NULL;
	sb_error err = SB_ERROR_INIT;
	sb_layer_status st;
	char want[16];

	need_landlock();
	ASSERT_OK(sb_landlock_new(0, &ll, NULL));
	sb_landlock_layer_status(ll, &st);
	ASSERT_EQ(st.state, SB_LAYER_ENFORCED);
	snprintf(want, sizeof(want), "abi%d", sb_landlock_abi());
	ASSERT_STREQ(st.detail, want);
	ASSERT_ERR(sb_landlock_allow_write(ll, "no/such/dir", &err), -ENOENT);
	ASSERT_TRUE(strstr(err.msg, "no/such/dir"));
	/* TCP ports without SB_LANDLOCK_NET is a caller bug, said as such. */
	ASSERT_ERR(sb_landlock_allow_tcp(ll, 80, SB_LANDLOCK_CONNECT, &err), -EINVAL);
	/* The ruleset fd must not leak into the sandboxed command. */
	ASSERT_TRUE(fcntl(sb_landlock_fd(ll), F_GETFD) & FD_CLOEXEC);
}

/* ---- rlimits ---- */

static sb_rlimits limits;
static void rlimit_checks(struct outcome *o)
{
	struct rlimit r;
	int failed = -1;

	o->got[o->n++] = -sb_rlimits_apply(limits.items, limits.n, &failed);
	getrlimit(RLIMIT_CORE, &r);
	o->got[o->n++] = (int)r.rlim_max; /* 0 */
	getrlimit(RLIMIT_NOFILE, &r);
	o->got[o->n++] = (int)r.rlim_cur; /* 32 */
	int e = 0, opened[64], n = 0;
	for (; n < 64 && !e; n++)
		if ((opened[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
			e = errno;
	o->got[o->n++] = e; /* EMFILE */
	while (n-- > 0)
		if (opened[n] >= 0)
			close(opened[n]);
	signal(SIGXFSZ, SIG_IGN);
	int fd = open("big", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char buf[8192] = {0};
	ssize_t w = fd >= 0 ? write(fd, buf, sizeof(buf)) : -1;
	o->got[o->n++] = (int)w;				      /* short: 4096 */
	o->got[o->n++] = write(fd, buf, sizeof(buf)) < 0 ? errno : 0; /* EFBIG */
}

TEST(rlimits_applied)
{
	sb_error err = SB_ERROR_INIT;
	struct outcome o;
	int st;

	sb_rlimits_init(&limits);
	ASSERT_EQ(limits.n, 1);
	ASSERT_OK(sb_rlimits_set_nofile(&limits, 32, &err));
	ASSERT_OK(sb_rlimits_set_fsize(&limits, 4096, &err));
	ASSERT_OK(sb_rlimits_set_nofile(&limits, 32, &err)); /* replaces, does not add */
	ASSERT_EQ(limits.n, 3);
	ASSERT_ERR(sb_rlimits_set_nofile(&limits, 2, &err), -EINVAL);
	ASSERT_ERR(sb_rlimits_set(&limits, RLIMIT_NOFILE, 10, 5, &err), -EINVAL);
	run_restricted(-1, false, rlimit_checks, &o);
	ASSERT_EQ(o.got[0], 0);
	ASSERT_EQ(o.got[1], 0);
	ASSERT_EQ(o.got[2], 32);
	ASSERT_EQ(o.got[3], EMFILE);
	ASSERT_EQ(o.got[4], 4096);
	ASSERT_EQ(o.got[5], EFBIG);

	/* core 0: a crash leaves no core dump. */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		sb_rlimits_apply(limits.items, limits.n, NULL);
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	ASSERT_FALSE(WCOREDUMP(st));

	sb_layer_status ls;
	sb_rlimits_layer_status(&limits, &ls);
	ASSERT_STREQ(ls.detail, "core=0,nofile=32,fsize=4096");
}

TEST(rlimit_above_hard_refused_unprivileged)
{
	if (!sb_test_is_root())
		SB_SKIP("needs root to switch to uid 65534");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		sb_rlimits rl;
		sb_error err = SB_ERROR_INIT;
		struct rlimit cur = {1024, 1024};
		if (setrlimit(RLIMIT_NOFILE, &cur) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(10);
		sb_rlimits_init(&rl);
		if (sb_rlimits_set_nofile(&rl, 4096, &err) != -EPERM)
			_exit(11);
		if (!strstr(err.msg, "4096") || !strstr(err.msg, "1024"))
			_exit(12);
		_exit(sb_rlimits_set_nofile(&rl, 512, &err) == 0 ? 0 : 13);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* ---- the summary line ---- */

TEST(layers_summary)
{
	sb_layer_status st[4];
	char line[256], tiny[16];

	sb_layer_status_set(&st[0], "seccomp", SB_LAYER_ENFORCED, "default(%d rules)", 62);
	sb_layer_status_set(&st[1], "landlock", SB_LAYER_UNAVAILABLE, NULL);
	sb_layer_status_reason(&st[1], "kernel without Landlock");
	sb_layer_status_set(&st[2], "cgroup", SB_LAYER_DEGRADED, "v2(memory)");
	sb_layer_status_set(&st[3], "rlimit", SB_LAYER_DISABLED, NULL);
	ASSERT_EQ(sb_layers_summary(st, 4, line, sizeof(line)),
		  (int)strlen("seccomp=default(62 rules) landlock=unavailable "
			      "cgroup=degraded(v2(memory)) rlimit=off"));
	ASSERT_STREQ(line, "seccomp=default(62 rules) landlock=unavailable "
			   "cgroup=degraded(v2(memory)) rlimit=off");
	ASSERT_STREQ(st[1].reason, "kernel without Landlock");
	ASSERT_STREQ(sb_layer_state_name(st[2].state), "degraded");
	ASSERT_ERR(sb_layers_summary(st, 4, tiny, sizeof(tiny)), -ENOBUFS);
	ASSERT_EQ(strlen(tiny), sizeof(tiny) - 1);
	ASSERT_STREQ(tiny + sizeof(tiny) - 4, "...");
	ASSERT_EQ(sb_layers_summary(st, 0, line, sizeof(line)), 0);
	ASSERT_STREQ(line, "");
}

/* SPDX-License-Identifier: MIT */
/*
 * cgroups: limits proven on real processes (a child joins through the
 * cgroup.procs fds exactly as the spawn code does, then misbehaves), the
 * report checked against what happened, the kill and the removal checked
 * with independent looks at /proc and the cgroup filesystem. The parsers
 * run on fixture files from testdata/cgroup.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-internal.h"
#include "landlock.h"
#include "probe.h"
#include "safefs.h"
#include "sb-test-src.h"

/* ---- parsers, on fixtures ---- */

TEST(parse_mountinfo_hybrid)
{
	_cleanup_free_ char *t = sb_test_read_testdata("cgroup/mountinfo-hybrid");
	struct sb_cgroup__mount m[SB_CG_MAX_MOUNTS];
	size_t n = 0;

	ASSERT_OK(sb_cgroup__parse_mountinfo(t, m, SB_CG_MAX_MOUNTS, &n));
	/* unified, cpu+cpuacct, memory, pids, freezer, blkio; name=systemd and net_cls skipped */
	ASSERT_EQ(n, 6);
	ASSERT_TRUE(m[0].v2);
	ASSERT_STREQ(m[0].point, "/sys/fs/cgroup/unified");
	ASSERT_EQ(m[1].controllers, SB_CG_CPU | SB_CG_CPUACCT);
	ASSERT_STREQ(m[1].point, "/sys/fs/cgroup/cpu,cpuacct");
	ASSERT_EQ(m[2].controllers, SB_CG_MEMORY);
	ASSERT_EQ(m[3].controllers, SB_CG_PIDS);
	ASSERT_EQ(m[4].controllers, SB_CG_FREEZER);
	ASSERT_EQ(m[5].controllers, SB_CG_IO);
	ASSERT_STREQ(m[2].root, "/");
}

TEST(parse_mountinfo_unified_and_escapes)
{
	_cleanup_free_ char *t = sb_test_read_testdata("cgroup/mountinfo-unified");
	struct sb_cgroup__mount m[4];
	size_t n = 0;

	ASSERT_OK(sb_cgroup__parse_mountinfo(t, m, 4, &n));
	ASSERT_EQ(n, 1);
	ASSERT_TRUE(m[0].v2);
	ASSERT_STREQ(m[0].point, "/sys/fs/cgroup");
	ASSERT_ERR(sb_cgroup__parse_mountinfo("12 1 0:2 / /x rw no-separator\n", m, 4, &n),
		   -EINVAL);
	/* A cgroup mount point with a space comes escaped as \040. */
	ASSERT_OK(
	    sb_cgroup__parse_mountinfo("1 0 0:1 / /c\\040g rw - cgroup2 cgroup2 rw\n", m, 4, &n));
	ASSERT_EQ(n, 1);
	ASSERT_STREQ(m[0].point, "/c g");
}

TEST(parse_proc_self_cgroup)
{
	_cleanup_free_ char *h = sb_test_read_testdata("cgroup/proc-cgroup-hybrid");
	_cleanup_free_ char *u = sb_test_read_testdata("cgroup/proc-cgroup-unified");
	char p[PATH_MAX];

	ASSERT_OK(sb_cgroup__own_path(h, false, SB_CG_MEMORY, p, sizeof(p)));
	ASSERT_STREQ(p, "/user.slice/user-1000.slice/session-2.scope");
	ASSERT_OK(sb_cgroup__own_path(h, false, SB_CG_CPUACCT, p, sizeof(p)));
	ASSERT_STREQ(p, "/user.slice");
	ASSERT_OK(sb_cgroup__own_path(h, false, SB_CG_FREEZER, p, sizeof(p)));
	ASSERT_STREQ(p, "/");
	ASSERT_ERR(sb_cgroup__own_path(h, false, SB_CG_IO, p, sizeof(p)), -ENOENT);
	ASSERT_OK(sb_cgroup__own_path(h, true, 0, p, sizeof(p)));
	ASSERT_STREQ(p, "/user.slice/user-1000.slice/session-2.scope");
	ASSERT_OK(sb_cgroup__own_path(u, true, 0, p, sizeof(p)));
	ASSERT_STREQ(p, "/user.slice/user-1000.slice/user@1000.service/app.slice/snapbox.scope");
	ASSERT_ERR(sb_cgroup__own_path(u, false, SB_CG_MEMORY, p, sizeof(p)), -ENOENT);
	ASSERT_ERR(sb_cgroup__own_path(u, true, 0, p, 8), -ENAMETOOLONG);
}

TEST(dir_in_mount_container_root)
{
	_cleanup_free_ char *t = sb_test_read_testdata("cgroup/mountinfo-container");
	struct sb_cgroup__mount m[4];
	char d[PATH_MAX];
	size_t n = 0;

	ASSERT_OK(sb_cgroup__parse_mountinfo(t, m, 4, &n));
	ASSERT_EQ(n, 2);
	ASSERT_STREQ(m[0].root, "/docker/abc123");
	/* Our cgroup as /proc shows it, inside a mount whose root is that cgroup. */
	ASSERT_OK(sb_cgroup__dir_in_mount(&m[0], "/docker/abc123", d, sizeof(d)));
	ASSERT_STREQ(d, "/sys/fs/cgroup/memory");
	ASSERT_OK(sb_cgroup__dir_in_mount(&m[0], "/docker/abc123/sub", d, sizeof(d)));
	ASSERT_STREQ(d, "/sys/fs/cgroup/memory/sub");
	ASSERT_ERR(sb_cgroup__dir_in_mount(&m[0], "/docker/abc1234", d, sizeof(d)), -EXDEV);
	ASSERT_ERR(sb_cgroup__dir_in_mount(&m[0], "/other", d, sizeof(d)), -EXDEV);
	ASSERT_ERR(sb_cgroup__dir_in_mount(&m[0], "/docker/abc123/../x", d, sizeof(d)), -EXDEV);
}

TEST(parse_keyed_files)
{
	_cleanup_free_ char *cs = sb_test_read_testdata("cgroup/cpu.stat");
	_cleanup_free_ char *me = sb_test_read_testdata("cgroup/memory.events");
	_cleanup_free_ char *oc = sb_test_read_testdata("cgroup/memory.oom_control");
	uint64_t v = 0;

	ASSERT_OK(sb_cgroup__keyed(cs, "usage_usec", &v));
	ASSERT_EQ(v, 1023456);
	ASSERT_OK(sb_cgroup__keyed(cs, "nr_throttled", &v));
	ASSERT_EQ(v, 11);
	ASSERT_OK(sb_cgroup__keyed(cs, "throttled_usec", &v));
	ASSERT_EQ(v, 987654);
	ASSERT_ERR(sb_cgroup__keyed(cs, "usage", &v), -ENOENT);
	/* "oom" must not match "oom_kill", nor "oom_kill" match "oom_kill_disable". */
	ASSERT_OK(sb_cgroup__keyed(me, "oom", &v));
	ASSERT_EQ(v, 3);
	ASSERT_OK(sb_cgroup__keyed(me, "oom_kill", &v));
	ASSERT_EQ(v, 2);
	ASSERT_OK(sb_cgroup__keyed(oc, "oom_kill", &v));
	ASSERT_EQ(v, 1);
	ASSERT_ERR(sb_cgroup__keyed("a x\n", "a", &v), -EBADMSG);
	ASSERT_OK(sb_cgroup__number("max\n", &v));
	ASSERT_EQ(v, UINT64_MAX);
	ASSERT_OK(sb_cgroup__number("67108864\n", &v));
	ASSERT_EQ(v, 67108864);
	ASSERT_ERR(sb_cgroup__number("-1\n", &v), -EBADMSG);
	ASSERT_EQ(sb_cgroup__parse_controllers("cpuset cpu io memory hugetlb pids rdma misc\n"),
		  SB_CG_CPU | SB_CG_IO | SB_CG_MEMORY | SB_CG_PIDS);
}

TEST(cpus_to_quota)
{
	sb_cgroup_limits l = {0};

	ASSERT_OK(sb_cgroup_limits_set_cpus(&l, 500, NULL));
	ASSERT_EQ(l.cpu_quota_us, 50000);
	ASSERT_EQ(l.cpu_period_us, 100000);
	ASSERT_OK(sb_cgroup_limits_set_cpus(&l, 2000, NULL));
	ASSERT_EQ(l.cpu_quota_us, 200000);
	/* Below 1 ms per 100 ms: the period stretches to 1 s. */
	ASSERT_OK(sb_cgroup_limits_set_cpus(&l, 5, NULL));
	ASSERT_EQ(l.cpu_quota_us, 5000);
	ASSERT_EQ(l.cpu_period_us, 1000000);
	ASSERT_ERR(sb_cgroup_limits_set_cpus(&l, 0, NULL), -EINVAL);
}

/* ---- real cgroups ---- */

static void need_root(void)
{
	if (!sb_test_is_root())
		SB_SKIP("creating cgroups needs root or a delegated cgroup; the rootless "
			"refusal is tested by unprivileged_cannot_enforce");
}

/* New cgroup or SKIP with the reason when this host cannot make one with lim. */
static sb_cgroup *new_cgroup(const sb_cgroup_limits *lim, const sb_cgroup_options *opt)
{
	sb_error err = SB_ERROR_INIT;
	sb_cgroup *cg = NULL;
	/* An earlier failed test (or a snapbox killed with -9) may have left some. */
	int swept = sb_cgroup_sweep(opt, NULL);
	if (swept > 0)
		printf("# swept %d stale cgroup directories\n", swept);
	int r = sb_cgroup_new(lim, opt, &cg, &err);
	if (r == -EOPNOTSUPP)
		SB_SKIP("%s", err.msg);
	if (r < 0)
		sb_test_fail(__FILE__, __LINE__, "sb_cgroup_new: %s", err.msg);
	printf("# cgroup v%d at %s\n", (int)sb_cgroup_version_of(cg), sb_cgroup_path(cg));
	return cg;
}

/*
 * Fork a child that joins cg the way the spawn code does (writing "0" into
 * the inherited join fds while single-threaded) and then runs fn. Returns
 * its pid.
 */
static pid_t spawn_in(sb_cgroup *cg, void (*fn)(int), int arg)
{
	const int *fds;
	size_t n = sb_cgroup_join_fds(cg, &fds);

	fflush(stdout);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (sb_cgroup_join(fds, n) < 0)
			_exit(100);
		fn(arg);
		_exit(0);
	}
	return pid;
}

static void dirs_gone(sb_cgroup *cg, char paths[][PATH_MAX], size_t n)
{
	struct stat st;
	for (size_t i = 0; i < n; i++)
		if (stat(paths[i], &st) == 0 || errno != ENOENT)
			sb_test_fail(__FILE__, __LINE__, "%s still exists", paths[i]);
}

static size_t save_paths(sb_cgroup *cg, char paths[][PATH_MAX])
{
	static const unsigned all[] = {SB_CG_MEMORY,  SB_CG_PIDS,    SB_CG_CPU,
				       SB_CG_CPUACCT, SB_CG_FREEZER, SB_CG_IO};
	size_t n = 0;
	snprintf(paths[n++], PATH_MAX, "%s", sb_cgroup_path(cg));
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		const char *p = sb_cgroup_path_of(cg, all[i]);
		if (p)
			snprintf(paths[n++], PATH_MAX, "%s", p);
	}
	return n;
}

static void eat_memory(int mb)
{
	for (int i = 0; i < mb; i++) {
		char *p =
		    mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(101);
		memset(p, 0x5a, 1 << 20);
	}
	_exit(0); /* reached only when the limit did not hold */
}

static void memory_limit_oom_kills(const sb_cgroup_options *opt)
{
	sb_cgroup_limits lim = {.memory_max = 64 << 20};
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg = NULL;
	sb_cgroup_report rep;
	char paths[8][PATH_MAX];
	int st;

	cg = new_cgroup(&lim, opt);
	size_t np = save_paths(cg, paths);
	/* Swap held at 0, checked in the files themselves. */
	const char *mdir = sb_cgroup_path_of(cg, SB_CG_MEMORY);
	if (sb_cgroup_version_of(cg) == SB_CGROUP_V1)
		ASSERT_EQ(sb_test_sh("grep -qx 67108864 '%s/memory.limit_in_bytes' && "
				     "{ ! test -e '%s/memory.memsw.limit_in_bytes' || "
				     "grep -qx 67108864 '%s/memory.memsw.limit_in_bytes'; }",
				     mdir, mdir, mdir),
			  0);
	else
		ASSERT_EQ(sb_test_sh("grep -qx 67108864 '%s/memory.max' && "
				     "{ ! test -e '%s/memory.swap.max' || "
				     "grep -qx 0 '%s/memory.swap.max'; }",
				     mdir, mdir, mdir),
			  0);
	pid_t pid = spawn_in(cg, eat_memory, 200);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), SIGKILL);
	ASSERT_OK(sb_cgroup_report_read(cg, &rep, NULL));
	printf("# oom_kills %" PRIu64 ", peak %" PRIu64 " bytes\n", rep.oom_kills, rep.memory_peak);
	ASSERT_TRUE(rep.oom_kills != SB_CGROUP_UNKNOWN && rep.oom_kills >= 1);
	ASSERT_TRUE(rep.memory_peak <= (64u << 20));
	ASSERT_TRUE(rep.memory_peak >= (32u << 20));
	sb_layer_status ls;
	sb_cgroup_layer_status(cg, NULL, &ls);
	ASSERT_EQ(ls.state, SB_LAYER_ENFORCED);
	ASSERT_TRUE(strstr(ls.detail, "(memory)"));
	ASSERT_OK(sb_cgroup_destroy(cg, NULL));
	dirs_gone(cg, paths, np);
}

/* Fork until refused; each child sleeps. Reports "<forked> <errno>" on fd. */
static int report_fd = -1;
static void fork_bomb(int max)
{
	int forked = 0, e = 0;
	for (; forked < max; forked++) {
		pid_t p = fork();
		if (p < 0) {
			e = errno;
			break;
		}
		if (p == 0) {
			for (;;)
				pause();
		}
	}
	dprintf(report_fd, "%d %d\n", forked, e);
	_exit(0);
}

static void pids_limit_refuses_fork(const sb_cgroup_options *opt)
{
	sb_cgroup_limits lim = {.pids_max = 64};
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg = NULL;
	sb_cgroup_report rep;
	char paths[8][PATH_MAX], buf[64] = "";
	int fds[2], st, forked = -1, e = -1;

	ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
	cg = new_cgroup(&lim, opt);
	size_t np = save_paths(cg, paths);
	ASSERT_OK(pipe2(fds, O_CLOEXEC));
	report_fd = fds[1];
	pid_t pid = spawn_in(cg, fork_bomb, 200);
	close(fds[1]);
	ASSERT_TRUE(read(fds[0], buf, sizeof(buf) - 1) > 0);
	close(fds[0]);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_EQ(sscanf(buf, "%d %d", &forked, &e), 2);
	printf("# forked %d, then errno %d\n", forked, e);
	ASSERT_EQ(e, EAGAIN);
	ASSERT_EQ(forked, 63); /* 64 tasks: the bomb itself and 63 children */
	ASSERT_OK(sb_cgroup_report_read(cg, &rep, NULL));
	ASSERT_EQ(rep.pids_peak, 64);
	ASSERT_TRUE(rep.pids_refused >= 1 && rep.pids_refused != SB_CGROUP_UNKNOWN);
	/* The 63 sleepers outlived their parent: the kill must find them all. */
	ASSERT_EQ(sb_cgroup_kill_all(cg, NULL), 63);
	for (int i = 0; i < 63; i++) {
		pid_t w = waitpid(-1, &st, 0);
		ASSERT_TRUE(w > 0);
		ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	}
	ASSERT_OK(sb_cgroup_destroy(cg, NULL));
	dirs_gone(cg, paths, np);
	/* And the host still forks. */
	pid = fork();
	if (pid == 0)
		_exit(0);
	ASSERT_TRUE(pid > 0);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
}

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void spin(int msec)
{
	uint64_t end = now_usec() + (uint64_t)msec * 1000;
	volatile uint64_t x = 0;
	while (now_usec() < end)
		for (int i = 0; i < 10000; i++)
			x += (uint64_t)i;
}

static void cpu_quota_halves_cpu_time(const sb_cgroup_options *opt)
{
	sb_cgroup_limits lim = {0};
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg = NULL;
	sb_cgroup_report rep;
	int st;

	ASSERT_OK(sb_cgroup_limits_set_cpus(&lim, 500, NULL));
	lim.cpu_burst_us = 20000;
	cg = new_cgroup(&lim, opt);
	const char *dir = sb_cgroup_path_of(cg, SB_CG_CPU);
	if (sb_cgroup_version_of(cg) == SB_CGROUP_V1) {
		ASSERT_EQ(sb_test_sh("grep -qx 50000 '%s/cpu.cfs_quota_us' && "
				     "grep -qx 100000 '%s/cpu.cfs_period_us'",
				     dir, dir),
			  0);
		if (sb_test_sh("test -e '%s/cpu.cfs_burst_us'", dir) == 0)
			ASSERT_EQ(sb_test_sh("grep -qx 20000 '%s/cpu.cfs_burst_us'", dir), 0);
	} else {
		ASSERT_EQ(sb_test_sh("grep -qx '50000 100000' '%s/cpu.max'", dir), 0);
	}
	uint64_t t0 = now_usec();
	pid_t pid = spawn_in(cg, spin, 2000);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	uint64_t wall = now_usec() - t0;
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ASSERT_OK(sb_cgroup_report_read(cg, &rep, NULL));
	ASSERT_TRUE(rep.cpu_usec != SB_CGROUP_UNKNOWN);
	double ratio = (double)rep.cpu_usec / (double)wall;
	printf("# cpu %" PRIu64 " us over %" PRIu64 " us wall = %.2f; throttled %" PRIu64
	       " of %" PRIu64 " periods\n",
	       rep.cpu_usec, wall, ratio, rep.cpu_throttled, rep.cpu_periods);
	ASSERT_TRUE(ratio >= 0.4 && ratio <= 0.6);
	ASSERT_TRUE(rep.cpu_throttled >= 5 && rep.cpu_throttled != SB_CGROUP_UNKNOWN);
}

TEST(io_weight_written)
{
	sb_cgroup_limits lim = {.io_weight = 300};
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg = NULL;
	_cleanup_free_ char *got = NULL;

	need_root();
	cg = new_cgroup(&lim, NULL);
	const char *dir = sb_cgroup_path_of(cg, SB_CG_IO);
	ASSERT_TRUE(dir);
	if (sb_cgroup_version_of(cg) == SB_CGROUP_V1)
		got = sb_test_sh_out("cat '%s/blkio.bfq.weight' 2>/dev/null || "
				     "cat '%s/blkio.weight'",
				     dir, dir);
	else
		got = sb_test_sh_out("cat '%s/io.weight' 2>/dev/null || cat '%s/io.bfq.weight'",
				     dir, dir);
	printf("# io weight file says: %s", got);
	/* BFQ keeps the value (its default is 100 like v2's); CFQ's scale is 5x. */
	ASSERT_TRUE(strstr(got, "300") || strstr(got, "1000"));
}

TEST(memory_limit_oom_kills)
{
	need_root();
	memory_limit_oom_kills(NULL);
}

TEST(pids_limit_refuses_fork)
{
	need_root();
	pids_limit_refuses_fork(NULL);
}

TEST(cpu_quota_halves_cpu_time)
{
	need_root();
	cpu_quota_halves_cpu_time(NULL);
}

/* The same limits forced onto v2, where the unified hierarchy can take them. */
TEST(v2_limits)
{
	const unsigned core = SB_CG_MEMORY | SB_CG_PIDS | SB_CG_CPU;
	sb_cgroup_options opt = {.version = SB_CGROUP_V2};
	sb_cgroup_host host;

	need_root();
	ASSERT_OK(sb_cgroup_probe(NULL, &host, NULL));
	if (!host.v2_mounted)
		SB_SKIP("no cgroup2 filesystem is mounted");
	if ((host.v2_available & core) != core)
		SB_SKIP("the cgroup2 mount offers no memory/pids/cpu controller here (they are "
			"bound to the v1 hierarchies, and a controller cannot be in both); the v2 "
			"paths without limits run in v2_forced");
	memory_limit_oom_kills(&opt);
	pids_limit_refuses_fork(&opt);
	cpu_quota_halves_cpu_time(&opt);
}

/* Double fork: the grandchild leaves the session and sleeps; reports its pid on fd. */
static void daemonize(int fd)
{
	pid_t p = fork();
	if (p < 0)
		_exit(102);
	if (p > 0)
		_exit(0);
	setsid();
	p = fork();
	if (p < 0)
		_exit(103);
	if (p > 0)
		_exit(0);
	pid_t me = getpid();
	(void)!write(fd, &me, sizeof(me));
	for (;;)
		pause();
}

static void kill_all_removes_daemon(const sb_cgroup_options *opt)
{
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg = NULL;
	char paths[8][PATH_MAX];
	int fds[2], st;
	pid_t daemon = 0;

	/* Orphans come to us, so we can see how they died. */
	ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
	cg = new_cgroup(NULL, opt);
	size_t np = save_paths(cg, paths);
	ASSERT_OK(pipe2(fds, O_CLOEXEC));
	pid_t pid = spawn_in(cg, daemonize, fds[1]);
	close(fds[1]);
	ASSERT_EQ(read(fds[0], &daemon, sizeof(daemon)), (ssize_t)sizeof(daemon));
	close(fds[0]);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* Independent look: the daemon is alive, reparented, and listed in the cgroup. */
	int pfd = (int)syscall(SYS_pidfd_open, daemon, 0);
	ASSERT_TRUE(pfd >= 0);
	ASSERT_EQ(sb_test_sh("grep -qx %d '%s/cgroup.procs'", (int)daemon, paths[0]), 0);

	ASSERT_OK(sb_cgroup_destroy(cg, NULL));
	/* The pidfd turns readable when the process is gone. */
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	ASSERT_EQ(poll(&p, 1, 5000), 1);
	close(pfd);
	ASSERT_EQ(waitpid(daemon, &st, 0), daemon);
	ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	dirs_gone(cg, paths, np);
	/* Idempotent. */
	ASSERT_OK(sb_cgroup_destroy(cg, NULL));
}

/*
 * The spawn code joins from inside the sandbox's user namespace: the write
 * is checked against the credentials that opened the fd (ours), not the
 * child's mapped ones.
 */
TEST(join_from_inside_user_namespace)
{
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg = NULL;
	const int *fds;
	int pipefd[2], st;

	need_root();
	cg = new_cgroup(NULL, NULL);
	size_t n = sb_cgroup_join_fds(cg, &fds);
	ASSERT_OK(pipe2(pipefd, O_CLOEXEC));
	fflush(stdout);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		char c;
		/* uid 0 outside maps to nothing inside: an unprivileged-looking child. */
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(10);
		if (sb_cgroup_join(fds, n) < 0)
			_exit(11);
		close(pipefd[1]);
		(void)!read(pipefd[0], &c, 1); /* wait for the parent's look */
		_exit(0);
	}
	close(pipefd[0]);
	/* Independent look: the kernel's own view of where the child is. */
	for (int i = 0; i < 200; i++) {
		if (sb_test_sh("grep -q '/%s$' /proc/%d/cgroup",
			       strrchr(sb_cgroup_path(cg), '/') + 1, (int)pid) == 0)
			break;
		usleep(10000);
	}
	ASSERT_EQ(sb_test_sh("test $(grep -c '/%s$' /proc/%d/cgroup) -eq %zu",
			     strrchr(sb_cgroup_path(cg), '/') + 1, (int)pid, n),
		  0);
	close(pipefd[1]);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* Forks once, then both sleep until killed. */
static void fork_and_sleep(int unused)
{
	(void)unused;
	(void)fork();
	for (;;)
		pause();
}

/* The file behind fd, by the kernel's own account. */
static void fd_path(int fd, char *buf, size_t size)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, buf, size - 1);
	ASSERT_TRUE(n > 0);
	buf[n] = 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/*
 * Joining without the RCU grace period of a process move: on v1 the child
 * writes to each hierarchy's "tasks" (its one thread, so all of it moves);
 * v2 offers the directory for CLONE_INTO_CGROUP, and cgroup.procs. A child
 * that joined so, and what it forks, are in every hierarchy's cgroup.procs.
 */
static void join_fds_move_the_child_whole(const sb_cgroup_options *opt)
{
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg = new_cgroup(NULL, opt);
	const int *fds;
	char path[PATH_MAX + 32], want[PATH_MAX + 32];
	size_t n = sb_cgroup_join_fds(cg, &fds);
	bool v1 = sb_cgroup_version_of(cg) == SB_CGROUP_V1;
	ASSERT_TRUE(n >= 1);
	for (size_t i = 0; i < n; i++) {
		fd_path(fds[i], path, sizeof(path));
		ASSERT_TRUE(ends_with(path, v1 ? "/tasks" : "/cgroup.procs"));
	}
	if (v1) {
		ASSERT_EQ(sb_cgroup_clone_fd(cg), -1);
	} else {
		ASSERT_TRUE(sb_cgroup_clone_fd(cg) >= 0);
		fd_path(sb_cgroup_clone_fd(cg), path, sizeof(path));
		ASSERT_STREQ(path, sb_cgroup_path(cg));
	}
	/* The child forks a grandchild after joining: both are listed everywhere. */
	pid_t pid = spawn_in(cg, fork_and_sleep, 0);
	char name[SB_CG_NAME_MAX];
	snprintf(name, sizeof(name), "%s", strrchr(sb_cgroup_path(cg), '/') + 1);
	for (int i = 0; i < 200; i++) {
		if (sb_test_sh("test $(grep -c '/%s$' /proc/%d/cgroup) -eq %zu", name, (int)pid,
			       n) == 0)
			break;
		usleep(10000);
	}
	ASSERT_EQ(sb_test_sh("test $(grep -c '/%s$' /proc/%d/cgroup) -eq %zu", name, (int)pid, n),
		  0);
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%s/cgroup.procs", cg->dirs[i].path);
		ASSERT_EQ(sb_test_sh("test $(wc -l < '%s') -eq 2", want), 0);
	}
	ASSERT_TRUE(sb_cgroup_kill_all(cg, NULL) >= 1);
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_OK(sb_cgroup_destroy(cg, NULL));
	ASSERT_EQ(sb_cgroup_clone_fd(cg), -1);
}

TEST(join_fds_move_the_child_whole)
{
	need_root();
	join_fds_move_the_child_whole(NULL);
}

TEST(join_fds_move_the_child_whole_v2)
{
	sb_cgroup_options opt = {.version = SB_CGROUP_V2};
	sb_cgroup_host host;
	need_root();
	ASSERT_OK(sb_cgroup_probe(NULL, &host, NULL));
	if (!host.v2_mounted)
		SB_SKIP("no cgroup2 filesystem mounted");
	join_fds_move_the_child_whole(&opt);
}

TEST(kill_all_removes_double_forked)
{
	need_root();
	kill_all_removes_daemon(NULL);
}

/*
 * v2 on a host whose unified hierarchy has no controllers (hybrid): the
 * cgroup itself still works (cgroup.procs, cgroup.kill, cpu.stat), so the
 * v2 join/kill/report/removal paths run for real; limits are refused naming
 * the controller.
 */
TEST(v2_forced)
{
	sb_cgroup_options opt = {.version = SB_CGROUP_V2};
	sb_cgroup_limits lim = {.memory_max = 64 << 20};
	sb_cgroup_host host;
	sb_error err = SB_ERROR_INIT;
	sb_cgroup *cg = NULL;

	need_root();
	ASSERT_OK(sb_cgroup_probe(NULL, &host, NULL));
	if (!host.v2_mounted)
		SB_SKIP("no cgroup2 filesystem mounted");
	if (host.v2_available & SB_CG_MEMORY) {
		printf("# v2 has the memory controller: the limits tests above ran on v2\n");
	} else {
		ASSERT_ERR(sb_cgroup_new(&lim, &opt, &cg, &err), -EOPNOTSUPP);
		printf("# %s\n", err.msg);
		ASSERT_TRUE(strstr(err.msg, "'memory'"));
		ASSERT_TRUE(cg == NULL);
	}
	kill_all_removes_daemon(&opt);

	/* CPU time is reported from cpu.stat even without the cpu controller. */
	_cleanup_(sb_cgroup_freep) sb_cgroup *cg2 = new_cgroup(NULL, &opt);
	sb_cgroup_report rep;
	int st;
	pid_t pid = spawn_in(cg2, spin, 300);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_OK(sb_cgroup_report_read(cg2, &rep, NULL));
	printf("# v2 cpu %" PRIu64 " us for a 300 ms spin\n", rep.cpu_usec);
	ASSERT_TRUE(rep.cpu_usec >= 30000 && rep.cpu_usec != SB_CGROUP_UNKNOWN);
	sb_layer_status ls;
	sb_cgroup_layer_status(cg2, NULL, &ls);
	ASSERT_STREQ(ls.detail, "v2");
}

TEST(v1_forced_matches_auto_here)
{
	sb_cgroup_host host;
	ASSERT_OK(sb_cgroup_probe(NULL, &host, NULL));
	printf("# auto picks v%d; v1 hierarchies %#x, v2 offers %#x, usable %#x\n",
	       (int)host.version, host.v1_mounted, host.v2_available, host.usable);
	if (host.v1_mounted & SB_CG_MEMORY) {
		/* A hybrid whose v2 lacks memory must choose v1, or limits would be lost. */
		if (!(host.v2_available & SB_CG_MEMORY))
			ASSERT_EQ(host.version, SB_CGROUP_V1);
	}
}

TEST(sweep_removes_stale_only)
{
	_cleanup_(sb_cgroup_freep) sb_cgroup *live = NULL;
	char stale[PATH_MAX + 32], base[PATH_MAX];
	struct stat st;

	need_root();
	live = new_cgroup(NULL, NULL);
	/* A stale one beside it: pid 2^22+1 is above any pid_max. */
	snprintf(base, sizeof(base), "%s", sb_cgroup_path(live));
	*strrchr(base, '/') = 0;
	snprintf(stale, sizeof(stale), "%s/snapbox-4194305-0123abcd", base);
	ASSERT_OK(mkdir(stale, 0755));
	ASSERT_TRUE(sb_cgroup_sweep(NULL, NULL) >= 1);
	ASSERT_TRUE(stat(stale, &st) < 0 && errno == ENOENT);
	/* Ours (our pid is alive) stays. */
	ASSERT_OK(stat(sb_cgroup_path(live), &st));
}

TEST(unprivileged_cannot_enforce)
{
	if (!sb_test_is_root())
		SB_SKIP("needs root to switch to uid 65534");
	fflush(stdout);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		sb_cgroup_limits lim = {.memory_max = 64 << 20};
		sb_error err = SB_ERROR_INIT;
		sb_cgroup *cg = NULL;
		sb_cgroup_host host;

		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(10);
		if (sb_cgroup_probe(NULL, &host, NULL) < 0 || host.usable != 0)
			_exit(11);
		if (sb_cgroup_new(&lim, NULL, &cg, &err) != -EOPNOTSUPP || cg)
			_exit(12);
		printf("# as uid 65534: %s\n", err.msg);
		fflush(stdout);
		if (!strstr(err.msg, "memory"))
			_exit(13);
		/* With no limit asked for: still no cgroup, said as such. */
		if (sb_cgroup_new(NULL, NULL, &cg, &err) != -EOPNOTSUPP || cg)
			_exit(14);
		printf("# as uid 65534, no limits: %s\n", err.msg);
		_exit(0);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

/* ---- the doctor's facts ---- */

TEST(probe_facts)
{
	static const char *const names[] = {
	    "userns", "userns_unprivileged", "overlay_userns", "fuse",	  "fusermount3", "seccomp",
	    "cgroup", "cgroup_controllers",  "landlock",       "openat2",
	};
	sb_probe p;
	char sysdir[PATH_MAX];

	ASSERT_OK(sb_probe_run(&p, NULL));
	ASSERT_EQ(p.n, ARRAY_SIZE(names));
	for (size_t i = 0; i < p.n; i++) {
		printf("# %-20s %-3s %s\n", p.facts[i].name, p.facts[i].ok ? "yes" : "no",
		       p.facts[i].detail);
		ASSERT_STREQ(p.facts[i].name, names[i]);
		ASSERT_TRUE(p.facts[i].detail[0]);
	}
	/* Cross-checks against independent looks at the same host. */
	ASSERT_EQ(sb_probe_get(&p, "landlock")->ok, sb_landlock_abi() > 0);
	ASSERT_EQ(sb_probe_get(&p, "openat2")->ok, sb_safefs_have_openat2());
	ASSERT_EQ(sb_probe_get(&p, "fuse")->ok, access("/dev/fuse", R_OK | W_OK) == 0);
	ASSERT_EQ(sb_probe_get(&p, "seccomp")->ok,
		  sb_test_sh("grep -q kill_process /proc/sys/kernel/seccomp/actions_avail") == 0);
	ASSERT_EQ(sb_probe_get(&p, "fusermount3")->ok || !sb_test_is_root(),
		  sb_test_sh("command -v fusermount3 >/dev/null") == 0);
	/* Whether unshare(CLONE_NEWUSER) works, as the shell sees it. */
	ASSERT_EQ(sb_probe_get(&p, "userns")->ok, sb_test_sh("unshare -U true 2>/dev/null") == 0);
	snprintf(sysdir, sizeof(sysdir), "%s", sb_probe_get(&p, "cgroup")->detail);
	if (sb_test_sh("grep -q ' - cgroup cgroup .*memory' /proc/self/mountinfo") == 0 &&
	    sb_test_sh("grep -qw memory /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null") !=
		0)
		ASSERT_TRUE(strncmp(sysdir, "v1", 2) == 0);
	ASSERT_TRUE(sb_probe_get(&p, "nonesuch") == NULL);
	/* The probe cleans up after itself. */
	ASSERT_EQ(sb_test_sh("ls -d \"${TMPDIR:-/tmp}\"/snapbox-probe-* 2>/dev/null | grep -q ."),
		  1);
}

TEST(probe_facts_unprivileged)
{
	if (!sb_test_is_root())
		SB_SKIP("needs root to switch to uid 65534");
	fflush(stdout);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		sb_probe p;
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(10);
		/* As after an exec: a set*uid without one leaves /proc/self owned by root. */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		if (sb_probe_run(&p, NULL) < 0)
			_exit(11);
		for (size_t i = 0; i < p.n; i++)
			printf("# %-20s %-3s %s\n", p.facts[i].name, p.facts[i].ok ? "yes" : "no",
			       p.facts[i].detail);
		fflush(stdout);
		/* Nothing here is delegated to nobody. */
		if (sb_probe_get(&p, "cgroup_controllers")->ok)
			_exit(12);
		/* And the answer agrees with the userns fact as root saw it. */
		_exit(sb_probe_get(&p, "userns")->ok == sb_probe_get(&p, "userns_unprivileged")->ok
			  ? 0
			  : 13);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

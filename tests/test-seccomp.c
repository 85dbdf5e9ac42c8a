/* SPDX-License-Identifier: MIT */
/*
 * The seccomp layer, proven by installing each compiled filter in a forked
 * child and running tests/try-syscall under it: every call of the default
 * policy's deny list is attempted with harmless arguments and must fail with
 * the documented errno, while a run of the same program without the filter
 * shows the kernel would have answered differently (so the filter, not the
 * arguments, made the difference).
 */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb-test-src.h"
#include "seccomp.h"

static char *testdata(const char *name)
{
	_cleanup_free_ char *root = sb_test_source_root();
	char *p = NULL;
	ASSERT_TRUE(asprintf(&p, "%s/testdata/seccomp/%s", root, name) > 0);
	return p;
}

/* ---- running try-syscall under a filter ---- */

#define MAX_NAMES 128

struct results {
	size_t n;
	char name[MAX_NAMES][48];
	char value[MAX_NAMES][24]; /* "0", "1", "killed:31", "unknown" */
};

/*
 * Fork; the child sets no_new_privs, optionally drops to uid 65534,
 * installs prog (unless NULL) and execs try-syscall with names.
 */
static void run_try(const struct sock_fprog *prog, unsigned flags, bool as_nobody,
		    const char *const *names, size_t n, struct results *res)
{
	char dir[PATH_MAX], helper[PATH_MAX + 16];
	int fds[2];
	char out[16384];
	size_t len = 0;

	sb_test_exe_dir(dir, sizeof(dir));
	snprintf(helper, sizeof(helper), "%s/try-syscall", dir);
	ASSERT_TRUE(access(helper, X_OK) == 0);
	ASSERT_TRUE(n + 2 < MAX_NAMES);
	ASSERT_OK(pipe2(fds, O_CLOEXEC));
	fflush(stdout);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		const char *argv[MAX_NAMES + 2];
		argv[0] = "try-syscall";
		for (size_t i = 0; i < n; i++)
			argv[i + 1] = names[i];
		argv[n + 1] = NULL;
		if (dup2(fds[1], 1) < 0)
			_exit(120);
		if (as_nobody && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
				  setresuid(65534, 65534, 65534) < 0))
			_exit(121);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			_exit(122);
		/*
		 * In a sanitizer build, LeakSanitizer stops the world with ptrace
		 * at exit, which a filter may refuse (it then spins forever).
		 */
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		if (prog && sb_seccomp_apply(prog, flags) < 0)
			_exit(123);
		execv(helper, (char *const *)argv);
		_exit(124);
	}
	close(fds[1]);
	for (;;) {
		ssize_t r = read(fds[0], out + len, sizeof(out) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fds[0]);
	out[len] = 0;
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		sb_test_fail(__FILE__, __LINE__, "try-syscall: status %#x, output:\n%s", st, out);
	memset(res, 0, sizeof(*res));
	for (char *p = out; *p && res->n < MAX_NAMES;) {
		char *eol = strchr(p, '\n');
		if (eol)
			*eol = 0;
		char *sp = strchr(p, ' ');
		ASSERT_TRUE(sp);
		*sp = 0;
		snprintf(res->name[res->n], sizeof(res->name[0]), "%.47s", p);
		snprintf(res->value[res->n], sizeof(res->value[0]), "%.23s", sp + 1);
		res->n++;
		if (!eol)
			break;
		p = eol + 1;
	}
	ASSERT_EQ(res->n, n);
}

static const char *result_of(const struct results *res, const char *name)
{
	for (size_t i = 0; i < res->n; i++)
		if (strcmp(res->name[i], name) == 0)
			return res->value[i];
	sb_test_fail(__FILE__, __LINE__, "no result for %s", name);
}

struct expect {
	const char *name;
	const char *value;
	bool kernel_agrees; /* this kernel may give the same answer without a filter */
};

/*
 * Run names without a filter and with prog; each must give its expected
 * value under the filter, and (as root, where the baseline is known) a
 * different one without it.
 */
static void check(const struct sock_fprog *prog, unsigned flags, const struct expect *ex, size_t n,
		  bool as_nobody)
{
	const char *names[MAX_NAMES];
	static struct results base, got;
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		names[i] = ex[i].name;
	run_try(NULL, 0, as_nobody, names, n, &base);
	run_try(prog, flags, as_nobody, names, n, &got);
	for (size_t i = 0; i < n; i++) {
		const char *g = result_of(&got, ex[i].name);
		const char *b = result_of(&base, ex[i].name);
		if (strcmp(g, ex[i].value) != 0) {
			printf("# %s: got %s under the filter, expected %s (without: %s)\n",
			       ex[i].name, g, ex[i].value, b);
			bad++;
		} else if (strcmp(ex[i].value, "0") != 0 && strcmp(b, g) == 0 &&
			   !ex[i].kernel_agrees) {
			/* Unprivileged, the kernel itself says EPERM to some of these. */
			if (!as_nobody && geteuid() == 0) {
				printf("# %s: %s with and without the filter: proves nothing\n",
				       ex[i].name, g);
				bad++;
			}
		}
	}
	ASSERT_EQ(bad, 0);
}

#define EPERM_S	 "1"
#define ENOSYS_S "38"
#define EAFNO_S	 "97"
#define KILLED	 "killed:31"

static const struct expect default_denied[] = {
    {"ptrace", EPERM_S},
    {"process_vm_readv", EPERM_S},
    {"process_vm_writev", EPERM_S},
    {"mount", EPERM_S},
    {"umount2", EPERM_S},
    {"pivot_root", EPERM_S},
    {"chroot", EPERM_S},
    {"fsopen", ENOSYS_S},
    {"fsconfig", ENOSYS_S},
    {"fsmount", ENOSYS_S},
    {"fspick", ENOSYS_S},
    {"move_mount", ENOSYS_S},
    {"open_tree", ENOSYS_S},
    {"open_tree_attr", ENOSYS_S},
    {"mount_setattr", ENOSYS_S},
    {"unshare", EPERM_S},
    {"unshare-newuser", EPERM_S},
    {"unshare-newns", EPERM_S},
    {"setns", EPERM_S},
    {"clone3", ENOSYS_S},
    {"clone-newns", EPERM_S},
    {"clone-newuser", EPERM_S},
    {"clone-newpid", EPERM_S},
    {"clone-newnet", EPERM_S},
    {"clone-newuts", EPERM_S},
    {"clone-newipc", EPERM_S},
    {"clone-newcgroup", EPERM_S},
    {"keyctl", EPERM_S},
    {"add_key", EPERM_S},
    {"request_key", EPERM_S},
    {"bpf", EPERM_S},
    {"perf_event_open", EPERM_S},
    {"userfaultfd", EPERM_S},
    {"kexec_load", EPERM_S},
    {"kexec_file_load", EPERM_S},
    {"init_module", EPERM_S},
    {"finit_module", EPERM_S},
    {"delete_module", EPERM_S},
    {"open_by_handle_at", EPERM_S},
    {"name_to_handle_at", EPERM_S},
    {"io_uring_setup", EPERM_S},
    {"io_uring_enter", EPERM_S},
    {"io_uring_register", EPERM_S},
    {"reboot", EPERM_S},
    {"swapon", EPERM_S},
    {"swapoff", EPERM_S},
    {"acct", EPERM_S},
    {"quotactl", EPERM_S},
    {"quotactl_fd", EPERM_S},
    {"syslog", EPERM_S},
    {"settimeofday", EPERM_S},
    {"clock_settime", EPERM_S},
    {"clock_adjtime", EPERM_S},
    {"adjtimex", EPERM_S},
    {"iopl", EPERM_S},
    {"ioperm", EPERM_S},
    {"uselib", EPERM_S},
    {"lookup_dcookie", EPERM_S},
    {"personality-addr-no-randomize", EPERM_S},
    {"personality-high-bits", EPERM_S},
    {"ioctl-tiocsti", EPERM_S},
    {"ioctl-tiocsti-high-bits", EPERM_S},
    {"ioctl-tioclinux", EPERM_S},
    {"socket-packet", EAFNO_S},
    {"socket-alg", EAFNO_S, true}, /* AF_ALG may not be built */
    {"socket-vsock", EAFNO_S, true},
    {"socket-xdp", EAFNO_S, true},
    {"socket-unspec", EAFNO_S, true}, /* the kernel refuses AF_UNSPEC itself */
    {"socket-netlink-audit", EAFNO_S},
    {"socket-unix-high-bits", EAFNO_S},
    {"i386-getpid", KILLED},
    {"x32-getpid", KILLED},
};

static const struct expect default_allowed[] = {
    {"open", "0"},
    {"read", "0"},
    {"write", "0"},
    {"mmap", "0"},
    {"getpid", "0"},
    {"fork", "0"},
    {"clone", "0"},
    {"thread", "0"},	  /* clone3 -> ENOSYS -> glibc falls back to clone */
    {"posix_spawn", "0"}, /* the same for posix_spawn, and exec works */
    {"mkdir", "0"},
    {"personality-query", "0"},
    {"personality-linux32", "0"},
    {"personality-uname26", "0"},
    {"ioctl-tiocgwinsz", "0"},
    {"socket-unix", "0"},
};

static void need_x86_64(void)
{
#if !defined(__x86_64__)
	SB_SKIP("the expectations (i386/x32 kill, syscall numbers) are written for x86-64");
#endif
}

TEST(default_policy_denies)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;
	sb_error err = SB_ERROR_INIT;
	struct expect ex[ARRAY_SIZE(default_denied) + 3];
	size_t n = 0;

	need_x86_64();
	ASSERT_OK(sb_seccomp_new_default(0, &sc, &err));
	for (size_t i = 0; i < ARRAY_SIZE(default_denied); i++)
		ex[n++] = default_denied[i];
	/* Network off: only AF_UNIX. */
	ex[n++] = (struct expect){"socket-inet", EAFNO_S};
	ex[n++] = (struct expect){"socket-inet6", EAFNO_S};
	ex[n++] = (struct expect){"socket-netlink-route", EAFNO_S};
	check(sb_seccomp_prog(sc), sb_seccomp_filter_flags(sc), ex, n, false);
}

TEST(default_policy_allows_ordinary_calls)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;

	need_x86_64();
	ASSERT_OK(sb_seccomp_new_default(0, &sc, NULL));
	check(sb_seccomp_prog(sc), 0, default_allowed, ARRAY_SIZE(default_allowed), false);
}

TEST(default_policy_with_network)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;
	static const struct expect ex[] = {
	    {"socket-unix", "0"},
	    {"socket-inet", "0"},
	    {"socket-inet6", "0"},
	    {"socket-netlink-route", "0"},
	    {"socket-netlink-audit", EAFNO_S},
	    {"socket-packet", EAFNO_S},
	    {"socket-vsock", EAFNO_S, true},
	    {"socket-unspec", EAFNO_S, true},
	    {"socket-unix-high-bits", EAFNO_S},
	    {"ptrace", EPERM_S},
	    {"i386-getpid", KILLED},
	};

	need_x86_64();
	ASSERT_OK(sb_seccomp_new_default(SB_SECCOMP_NET, &sc, NULL));
	check(sb_seccomp_prog(sc), 0, ex, ARRAY_SIZE(ex), false);
}

TEST(default_policy_unprivileged)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;
	static const struct expect ex[] = {
	    {"ptrace", EPERM_S},
	    {"unshare-newuser", EPERM_S},
	    {"clone-newuser", EPERM_S},
	    {"fsopen", ENOSYS_S},
	    {"clone3", ENOSYS_S},
	    {"ioctl-tiocsti", EPERM_S},
	    {"socket-inet", EAFNO_S},
	    {"i386-getpid", KILLED},
	    {"x32-getpid", KILLED},
	    {"getpid", "0"},
	    {"thread", "0"},
	    {"socket-unix", "0"},
	};

	need_x86_64();
	if (!sb_test_is_root())
		SB_SKIP("needs root to switch to uid 65534 (already unprivileged: the other tests "
			"cover it)");
	ASSERT_OK(sb_seccomp_new_default(0, &sc, NULL));
	check(sb_seccomp_prog(sc), 0, ex, ARRAY_SIZE(ex), true);
}

TEST(default_policy_summary)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;
	_cleanup_(sb_seccomp_freep) sb_seccomp *net = NULL;
	sb_layer_status st;
	char want[64];

	ASSERT_OK(sb_seccomp_new_default(0, &sc, NULL));
	ASSERT_OK(sb_seccomp_new_default(SB_SECCOMP_NET, &net, NULL));
	printf("# default policy: %zu rules (network off), %zu (network on), %u BPF insns\n",
	       sb_seccomp_rule_count(sc), sb_seccomp_rule_count(net), sb_seccomp_prog(sc)->len);
	ASSERT_TRUE(sb_seccomp_rule_count(sc) >= 50);
	/* With the network on, socket needs more rules: holes between the allowed families. */
	ASSERT_TRUE(sb_seccomp_rule_count(net) > sb_seccomp_rule_count(sc));
	ASSERT_EQ(sb_seccomp_warning_count(sc), 0);
	sb_seccomp_layer_status(sc, &st);
	ASSERT_EQ(st.state, SB_LAYER_ENFORCED);
	snprintf(want, sizeof(want), "default(%zu rules)", sb_seccomp_rule_count(sc));
	ASSERT_STREQ(st.detail, want);
	sb_seccomp_layer_status(NULL, &st);
	ASSERT_EQ(st.state, SB_LAYER_DISABLED);
}

TEST(option_unconfined_disables)
{
	sb_seccomp *sc = (sb_seccomp *)1;
	ASSERT_OK(sb_seccomp_new_from_option("unconfined", 0, &sc, NULL));
	ASSERT_TRUE(sc == NULL);
	ASSERT_OK(sb_seccomp_new_from_option(NULL, 0, &sc, NULL));
	ASSERT_TRUE(sc != NULL);
	ASSERT_TRUE(sb_seccomp_rule_count(sc) > 0);
	sb_seccomp_free(sc);
}

TEST(oci_profile_denies_mkdir)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;
	_cleanup_free_ char *path = testdata("deny-mkdir.json");
	sb_error err = SB_ERROR_INIT;
	static const struct expect ex[] = {
		{"mkdir", "13"},
		{"mkdirat", "13"},
		{"getpid", "0"},
		{"open", "0"},
#if defined(__x86_64__)
		/* The profile lists x86 and x32: their calls are filtered, not killed. */
		{"i386-getpid", "0"},
#endif
	};

	ASSERT_OK(sb_seccomp_new_from_option(path, 0, &sc, &err));
	ASSERT_EQ(sb_seccomp_rule_count(sc), 2);
	ASSERT_EQ(sb_seccomp_warning_count(sc), 0);
	check(sb_seccomp_prog(sc), sb_seccomp_filter_flags(sc), ex, ARRAY_SIZE(ex), false);

	sb_layer_status st;
	sb_seccomp_layer_status(sc, &st);
	ASSERT_STREQ(st.detail, "profile(deny-mkdir.json, 2 rules)");
}

TEST(oci_profile_args_and_warnings)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;
	_cleanup_free_ char *path = testdata("args.json");
	sb_error err = SB_ERROR_INIT;
	static const struct expect ex[] = {
	    {"socket-inet6", EAFNO_S},
	    {"socket-inet", "0"},
	    {"personality-linux32", EPERM_S},
	    {"personality-uname26", EPERM_S},
	    {"personality-query", "0"},
	    {"clone-newuser", EPERM_S},
	    {"clone-newns", "0"},
	    {"fork", "0"},
	    {"mkdir", "0"},
	    {"mkdirat", "13"},
	    {"getpid", "0"},
	};

	ASSERT_OK(sb_seccomp_new_oci_file(path, &sc, &err));
	/* socket 1, personality 2 (OR), clone 1, getppid 1, mkdirat 1; getpid = default. */
	ASSERT_EQ(sb_seccomp_rule_count(sc), 6);
	ASSERT_EQ(sb_seccomp_warning_count(sc), 1);
	const char *w = sb_seccomp_warning(sc, 0);
	printf("# warning: %s\n", w);
	ASSERT_TRUE(strstr(w, "args.json"));
	ASSERT_TRUE(strstr(w, "syscalls[3].names[0]"));
	ASSERT_TRUE(strstr(w, "no_such_syscall_xyz"));
	check(sb_seccomp_prog(sc), 0, ex, ARRAY_SIZE(ex), false);
}

TEST(oci_malformed_file_names_file)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;
	_cleanup_free_ char *path = testdata("malformed.json");
	sb_error err = SB_ERROR_INIT;

	ASSERT_ERR(sb_seccomp_new_oci_file(path, &sc, &err), -EINVAL);
	ASSERT_TRUE(sc == NULL);
	printf("# %s\n", err.msg);
	ASSERT_TRUE(strstr(err.msg, "malformed.json"));
	/* The trailing comma ends line 7; cJSON stops at the '}' on line 8. */
	ASSERT_TRUE(strstr(err.msg, "not valid JSON at line 8"));

	ASSERT_ERR(sb_seccomp_new_oci_file("no-such-profile.json", &sc, &err), -ENOENT);
	ASSERT_TRUE(strstr(err.msg, "no-such-profile.json"));
	ASSERT_ERR(sb_seccomp_new_oci_file(".", &sc, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.msg, "not a regular file"));
}

/* Each bad profile must fail before anything runs, naming the JSON path at fault. */
TEST(oci_semantic_errors_name_json_path)
{
	static const struct {
		const char *json;
		const char *path;
		int err;
	} cases[] = {
	    {"[]", "$", EINVAL},
	    {"{}", "defaultAction", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_MAYBE\"}", "defaultAction", EINVAL},
	    {"{\"defaultAction\": 1}", "defaultAction", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": {}}", "syscalls", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"action\": "
	     "\"SCMP_ACT_ERRNO\"}]}",
	     "syscalls[0]", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": \"mkdir\", "
	     "\"action\": \"SCMP_ACT_ERRNO\"}]}",
	     "syscalls[0].names", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\", 3], "
	     "\"action\": \"SCMP_ACT_ERRNO\"}]}",
	     "syscalls[0].names[1]", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
	     "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1, \"op\": "
	     "\"SCMP_CMP_ALMOST\"}]}]}",
	     "syscalls[0].args[0].op", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
	     "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 6, \"value\": 1, \"op\": "
	     "\"SCMP_CMP_EQ\"}]}]}",
	     "syscalls[0].args[0].index", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
	     "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": -1, \"op\": "
	     "\"SCMP_CMP_EQ\"}]}]}",
	     "syscalls[0].args[0].value", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
	     "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1.5, \"op\": "
	     "\"SCMP_CMP_EQ\"}]}]}",
	     "syscalls[0].args[0].value", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
	     "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 99999}]}",
	     "syscalls[0].action(errnoRet)", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
	     "\"action\": \"SCMP_ACT_NOTIFY\"}]}",
	     "syscalls[0].action", EOPNOTSUPP},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": \"SCMP_ARCH_X86\"}",
	     "architectures", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_BOGUS\"]}",
	     "flags[0]", EINVAL},
	    {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
	     "\"action\": \"SCMP_ACT_ERRNO\", \"includes\": {\"minKernel\": \"new\"}}]}",
	     "syscalls[0].includes.minKernel", EINVAL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sb_seccomp *sc = NULL;
		sb_error err = SB_ERROR_INIT;
		char want[128];
		int r = sb_seccomp_new_oci_data("bad.json", cases[i].json, strlen(cases[i].json),
						&sc, &err);
		snprintf(want, sizeof(want), "'bad.json': %s:", cases[i].path);
		if (r != -cases[i].err || !strstr(err.msg, want) || sc)
			sb_test_fail(__FILE__, __LINE__, "case %zu: r=%d msg=%s (want %s)", i, r,
				     err.msg, want);
	}
}

TEST(oci_features)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = NULL;
	sb_error err = SB_ERROR_INIT;
	/* archMap with the native entry, flags, old single "name", args null, and a
	 * syscall newer than libseccomp that only our table knows. */
	static const char json[] =
	    "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38,"
	    " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\", \"subArchitectures\":"
	    "   [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},"
	    "  {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": "
	    "[\"SCMP_ARCH_ARM\"]}],"
	    " \"flags\": [\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"],"
	    " \"syscalls\": [{\"name\": \"read\", \"action\": \"SCMP_ACT_ALLOW\", \"args\": null},"
	    "  {\"names\": [\"listmount\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\","
	    "   \"includes\": {\"minKernel\": \"4.0\", \"arches\": [\"amd64\", \"arm64\"]}},"
	    "  {\"names\": [\"close\"], \"action\": \"SCMP_ACT_ALLOW\","
	    "   \"excludes\": {\"arches\": [\"amd64\"]}}]}";

	need_x86_64();
	ASSERT_OK(sb_seccomp_new_oci_data("f.json", json, strlen(json), &sc, &err));
	/* read, listmount, write; close is excluded on amd64. */
	ASSERT_EQ(sb_seccomp_rule_count(sc), 3);
	ASSERT_EQ(sb_seccomp_filter_flags(sc), SECCOMP_FILTER_FLAG_SPEC_ALLOW);
	/* listmount only exists for the native architecture here: said so once. */
	ASSERT_EQ(sb_seccomp_warning_count(sc), 1);
	ASSERT_TRUE(strstr(sb_seccomp_warning(sc, 0), "listmount"));
}

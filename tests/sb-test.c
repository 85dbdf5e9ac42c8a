/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <limits.h>

#include "sb-test.h"

#define MAX_TESTS 256

static struct {
	const char *name;
	sb_test_fn fn;
} tests[MAX_TESTS];
static size_t n_tests;
static char test_dir[PATH_MAX];
static int skip_fd = -1;

void sb_test_register(const char *name, sb_test_fn fn)
{
	if (n_tests == MAX_TESTS) {
		fprintf(stderr, "too many tests\n");
		abort();
	}
	tests[n_tests].name = name;
	tests[n_tests].fn = fn;
	n_tests++;
}

void sb_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "# %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	_exit(1);
}

void sb_test_skip(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 0 && skip_fd >= 0)
		(void)!write(skip_fd, msg, strlen(msg));
	fflush(stdout);
	_exit(77);
}

const char *sb_test_dir(void)
{
	return test_dir;
}

bool sb_test_is_root(void)
{
	return geteuid() == 0;
}

static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	return s;
}

int sb_test_sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = vformat(fmt, ap);
	va_end(ap);
	fflush(stdout);
	int st = system(cmd);
	free(cmd);
	if (st < 0)
		return -errno;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

char *sb_test_sh_out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = vformat(fmt, ap);
	va_end(ap);
	fflush(stdout);
	FILE *p = popen(cmd, "r");
	free(cmd);
	if (!p)
		abort();
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	size_t n;
	while (out && (n = fread(out + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (cap - len < 2)
			out = realloc(out, cap *= 2);
	}
	pclose(p);
	if (!out)
		abort();
	out[len] = 0;
	return out;
}

static void remove_tree(const char *dir)
{
	char *cmd = NULL;
	if (asprintf(&cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir) < 0)
		abort();
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", dir);
	free(cmd);
}

static int run_one(size_t i, size_t num)
{
	const char *base = getenv("SB_TEST_TMPDIR");
	if (!base)
		base = getenv("TMPDIR");
	if (!base)
		base = "/var/tmp";
	snprintf(test_dir, sizeof(test_dir), "%s/sbtest-%s-XXXXXX", base, tests[i].name);
	if (!mkdtemp(test_dir)) {
		printf("not ok %zu %s # cannot create %s: %s\n", num, tests[i].name, test_dir,
		       strerror(errno));
		return 1;
	}
	/* Unprivileged runs need the directory reachable for other users too. */
	chmod(test_dir, 0755);
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		abort();
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(pipefd[0]);
		skip_fd = pipefd[1];
		if (chdir(test_dir) < 0)
			_exit(1);
		tests[i].fn();
		fflush(stdout);
		_exit(0);
	}
	close(pipefd[1]);
	char reason[512];
	ssize_t n = read(pipefd[0], reason, sizeof(reason) - 1);
	reason[n > 0 ? n : 0] = 0;
	close(pipefd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!getenv("SB_TEST_KEEP"))
		remove_tree(test_dir);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		printf("ok %zu %s\n", num, tests[i].name);
		return 0;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("ok %zu %s # SKIP %s\n", num, tests[i].name, reason);
		return 0;
	}
	if (WIFSIGNALED(st))
		printf("not ok %zu %s # killed by signal %d\n", num, tests[i].name, WTERMSIG(st));
	else
		printf("not ok %zu %s\n", num, tests[i].name);
	return 1;
}

int main(void)
{
	const char *only = getenv("SB_TEST");
	size_t total = 0;
	for (size_t i = 0; i < n_tests; i++)
		if (!only || strcmp(only, tests[i].name) == 0)
			total++;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..%zu\n", total);
	int failed = 0;
	size_t num = 0;
	for (size_t i = 0; i < n_tests; i++)
		if (!only || strcmp(only, tests[i].name) == 0)
			failed |= run_one(i, ++num);
	return failed;
}

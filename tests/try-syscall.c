/* SPDX-License-Identifier: MIT */
/*
 * try-syscall NAME...: attempt each named system call with harmless
 * arguments and print one line per name on stdout:
 *
 *   NAME ERRNO        0 when the call succeeded, else the errno it failed with
 *   NAME killed:SIG   the attempt was killed by a signal (SIGSYS: seccomp kill)
 *   NAME unknown      not a name this program knows (exit status 2 at the end)
 *
 * Each attempt runs in its own forked child, so a call that succeeds
 * (unshare, personality) or kills cannot change the next one. The arguments
 * are chosen so that, without a filter, the kernel fails the call with an
 * errno other than the one a filter returns (EFAULT from an unreadable
 * pointer, EINVAL from impossible flags, EBADF from fd -1), or the call
 * succeeds; the test compares a run with and without the filter. Nothing
 * here changes the machine: reboot gets a wrong magic number, settimeofday
 * an unreadable pointer, acct never NULL.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/netlink.h>

#define BAD	  ((void *)8) /* never readable: EFAULT */
#define ALL_FLAGS (~0UL)

static long do_clone(unsigned long flags)
{
	long r = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return r;
}

static long do_socket(unsigned long domain, int type, int proto)
{
	long r = syscall(SYS_socket, domain, type, proto);
	if (r >= 0)
		close((int)r);
	return r;
}

static long do_i386_getpid(void)
{
#if defined(__x86_64__)
	long ret = 20; /* __NR_getpid on i386 */
	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return 0;
#else
	errno = ENOTSUP;
	return -1;
#endif
}

static long do_x32_getpid(void)
{
#if defined(__x86_64__)
	return syscall(0x40000000 | 39); /* __X32_SYSCALL_BIT | __NR_getpid */
#else
	errno = ENOTSUP;
	return -1;
#endif
}

static long do_tiocgwinsz(void)
{
	struct winsize ws;
	int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	long r = ioctl(fd, TIOCGWINSZ, &ws);
	close(fd);
	return r;
}

static long do_mkdir(int at)
{
	char name[64];
	snprintf(name, sizeof(name), "try-syscall-%d", (int)getpid());
	long r = at ? mkdirat(AT_FDCWD, name, 0700) : mkdir(name, 0700);
	if (r == 0)
		rmdir(name);
	return r;
}

static long do_rw(int write_it)
{
	char buf[16] = {0};
	int fd = open(write_it ? "/dev/null" : "/dev/zero",
		      (write_it ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -1;
	long r = write_it ? write(fd, buf, sizeof(buf)) : read(fd, buf, sizeof(buf));
	close(fd);
	return r;
}

static long do_mmap(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	munmap(p, 4096);
	return 0;
}

static long do_open(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return fd;
}

static void *thread_main(void *arg)
{
	return arg;
}

/* glibc creates threads with clone3 and falls back to clone on ENOSYS. */
static long do_thread(void)
{
	pthread_t t;
	int e = pthread_create(&t, NULL, thread_main, NULL);
	if (e) {
		errno = e;
		return -1;
	}
	pthread_join(t, NULL);
	return 0;
}

static long do_posix_spawn(void)
{
	extern char **environ;
	char *argv[] = {"true", NULL};
	pid_t pid;
	int st, e = posix_spawnp(&pid, "true", NULL, NULL, argv, environ);
	if (e) {
		errno = e;
		return -1;
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		errno = ECHILD;
		return -1;
	}
	return 0;
}

static long attempt(const char *n)
{
#define IS(s) (strcmp(n, s) == 0)
	if (IS("ptrace"))
		return syscall(SYS_ptrace, 2 /* PEEKDATA */, -1, NULL, NULL);
	if (IS("process_vm_readv"))
		return syscall(SYS_process_vm_readv, 0, NULL, 0, NULL, 0, 1);
	if (IS("process_vm_writev"))
		return syscall(SYS_process_vm_writev, 0, NULL, 0, NULL, 0, 1);
	if (IS("mount"))
		return syscall(SYS_mount, BAD, BAD, BAD, 0, BAD);
	if (IS("umount2"))
		return syscall(SYS_umount2, BAD, ALL_FLAGS);
	if (IS("pivot_root"))
		return syscall(SYS_pivot_root, BAD, BAD);
	if (IS("chroot"))
		return syscall(SYS_chroot, BAD);
	if (IS("fsopen"))
		return syscall(SYS_fsopen, BAD, ALL_FLAGS);
	if (IS("fsconfig"))
		return syscall(SYS_fsconfig, -1, 0xffff, NULL, NULL, 0);
	if (IS("fsmount"))
		return syscall(SYS_fsmount, -1, ALL_FLAGS, 0);
	if (IS("fspick"))
		return syscall(SYS_fspick, -1, BAD, ALL_FLAGS);
	if (IS("move_mount"))
		return syscall(SYS_move_mount, -1, BAD, -1, BAD, ALL_FLAGS);
	if (IS("open_tree"))
		return syscall(SYS_open_tree, -1, BAD, ALL_FLAGS);
#if defined(__x86_64__)
	if (IS("open_tree_attr"))
		return syscall(467, -1, BAD, ALL_FLAGS, NULL, 0);
#endif
	if (IS("mount_setattr"))
		return syscall(SYS_mount_setattr, -1, BAD, ALL_FLAGS, NULL, 0);
	if (IS("unshare"))
		return syscall(SYS_unshare, ALL_FLAGS);
	if (IS("unshare-newuser"))
		return unshare(CLONE_NEWUSER);
	if (IS("unshare-newns"))
		return unshare(CLONE_NEWNS);
	if (IS("setns"))
		return syscall(SYS_setns, -1, 0);
	if (IS("clone3"))
		return syscall(SYS_clone3, NULL, 0);
	if (IS("clone"))
		return do_clone(0);
	if (IS("clone-newns"))
		return do_clone(CLONE_NEWNS);
	if (IS("clone-newuser"))
		return do_clone(CLONE_NEWUSER);
	if (IS("clone-newpid"))
		return do_clone(CLONE_NEWPID);
	if (IS("clone-newnet"))
		return do_clone(CLONE_NEWNET);
	if (IS("clone-newuts"))
		return do_clone(CLONE_NEWUTS);
	if (IS("clone-newipc"))
		return do_clone(CLONE_NEWIPC);
	if (IS("clone-newcgroup"))
		return do_clone(CLONE_NEWCGROUP);
	if (IS("fork")) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p > 0)
			waitpid(p, NULL, 0);
		return p;
	}
	if (IS("thread"))
		return do_thread();
	if (IS("posix_spawn"))
		return do_posix_spawn();
	if (IS("keyctl"))
		return syscall(SYS_keyctl, 9999, 0, 0, 0, 0);
	if (IS("add_key"))
		return syscall(SYS_add_key, BAD, BAD, NULL, 0, 0);
	if (IS("request_key"))
		return syscall(SYS_request_key, BAD, BAD, NULL, 0);
	if (IS("bpf"))
		return syscall(SYS_bpf, 9999, NULL, 0);
	if (IS("perf_event_open"))
		return syscall(SYS_perf_event_open, BAD, 0, -1, -1, 0);
	if (IS("userfaultfd"))
		return syscall(SYS_userfaultfd, ALL_FLAGS);
	if (IS("kexec_load"))
		return syscall(SYS_kexec_load, 0, 0, NULL, 0xffff0000UL);
	if (IS("kexec_file_load"))
		return syscall(SYS_kexec_file_load, -1, -1, 0, NULL, ALL_FLAGS);
	if (IS("init_module"))
		return syscall(SYS_init_module, BAD, 0, BAD);
	if (IS("finit_module"))
		return syscall(SYS_finit_module, -1, BAD, 0);
	if (IS("delete_module"))
		return syscall(SYS_delete_module, BAD, 0);
	if (IS("open_by_handle_at"))
		return syscall(SYS_open_by_handle_at, -1, BAD, 0);
	if (IS("name_to_handle_at"))
		return syscall(SYS_name_to_handle_at, -1, BAD, BAD, BAD, ALL_FLAGS);
	if (IS("io_uring_setup"))
		return syscall(SYS_io_uring_setup, 0, BAD);
	if (IS("io_uring_enter"))
		return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
	if (IS("io_uring_register"))
		return syscall(SYS_io_uring_register, -1, 0, NULL, 0);
	if (IS("reboot"))
		return syscall(SYS_reboot, 0, 0, 0, NULL); /* wrong magic: EINVAL */
	if (IS("swapon"))
		return syscall(SYS_swapon, BAD, 0);
	if (IS("swapoff"))
		return syscall(SYS_swapoff, BAD);
	if (IS("acct"))
		return syscall(SYS_acct, BAD);
	if (IS("quotactl"))
		return syscall(SYS_quotactl, 0, BAD, 0, NULL);
	if (IS("quotactl_fd"))
		return syscall(SYS_quotactl_fd, -1, 0, 0, NULL);
	if (IS("syslog"))
		return syscall(SYS_syslog, 9999, NULL, 0);
	if (IS("settimeofday"))
		return syscall(SYS_settimeofday, BAD, NULL);
	if (IS("clock_settime"))
		return syscall(SYS_clock_settime, 9999, BAD);
	if (IS("clock_adjtime"))
		return syscall(SYS_clock_adjtime, 9999, BAD);
	if (IS("adjtimex"))
		return syscall(SYS_adjtimex, BAD);
#if defined(__x86_64__)
	if (IS("iopl"))
		return syscall(SYS_iopl, 99);
	if (IS("ioperm"))
		return syscall(SYS_ioperm, ALL_FLAGS, 1, 1);
	if (IS("uselib"))
		return syscall(SYS_uselib, BAD);
	if (IS("lookup_dcookie"))
		return syscall(SYS_lookup_dcookie, 0, NULL, 0);
#endif
	if (IS("personality-query"))
		return syscall(SYS_personality, 0xffffffffUL) < 0 ? -1 : 0;
	if (IS("personality-linux32"))
		return syscall(SYS_personality, 0x8UL) < 0 ? -1 : 0;
	if (IS("personality-uname26"))
		return syscall(SYS_personality, 0x20000UL) < 0 ? -1 : 0;
	if (IS("personality-addr-no-randomize"))
		return syscall(SYS_personality, (unsigned long)ADDR_NO_RANDOMIZE) < 0 ? -1 : 0;
	if (IS("personality-high-bits"))
		return syscall(SYS_personality, 0x100000000UL) < 0 ? -1 : 0;
	if (IS("ioctl-tiocsti"))
		return syscall(SYS_ioctl, -1, (unsigned long)TIOCSTI, BAD);
	if (IS("ioctl-tiocsti-high-bits"))
		return syscall(SYS_ioctl, -1, (1UL << 32) | TIOCSTI, BAD);
	if (IS("ioctl-tioclinux"))
		return syscall(SYS_ioctl, -1, (unsigned long)TIOCLINUX, BAD);
	if (IS("ioctl-tiocgwinsz"))
		return do_tiocgwinsz();
	if (IS("socket-unix"))
		return do_socket(AF_UNIX, SOCK_STREAM, 0);
	if (IS("socket-unix-high-bits"))
		return do_socket((1UL << 32) | AF_UNIX, SOCK_STREAM, 0);
	if (IS("socket-inet"))
		return do_socket(AF_INET, SOCK_STREAM, 0);
	if (IS("socket-inet6"))
		return do_socket(AF_INET6, SOCK_DGRAM, 0);
	if (IS("socket-netlink-route"))
		return do_socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (IS("socket-netlink-audit"))
		return do_socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
	if (IS("socket-packet"))
		return do_socket(AF_PACKET, SOCK_RAW, 0);
	if (IS("socket-alg"))
		return do_socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (IS("socket-vsock"))
		return do_socket(AF_VSOCK, SOCK_STREAM, 0);
	if (IS("socket-xdp"))
		return do_socket(AF_XDP, SOCK_RAW, 0);
	if (IS("socket-unspec"))
		return do_socket(AF_UNSPEC, SOCK_STREAM, 0);
	if (IS("open"))
		return do_open();
	if (IS("read"))
		return do_rw(0);
	if (IS("write"))
		return do_rw(1);
	if (IS("mmap"))
		return do_mmap();
	if (IS("getpid"))
		return syscall(SYS_getpid);
	if (IS("mkdir"))
		return do_mkdir(0);
	if (IS("mkdirat"))
		return do_mkdir(1);
	if (IS("i386-getpid"))
		return do_i386_getpid();
	if (IS("x32-getpid"))
		return do_x32_getpid();
#undef IS
	errno = 0;
	return -2;
}

int main(int argc, char **argv)
{
	int status = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		int st;
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			errno = 0;
			long r = attempt(argv[i]);
			if (r == -2 && errno == 0)
				_exit(255);
			_exit(r < 0 ? (errno & 0xff) : 0);
		}
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR) {
				perror("waitpid");
				return 1;
			}
		if (WIFSIGNALED(st)) {
			printf("%s killed:%d\n", argv[i], WTERMSIG(st));
		} else if (WEXITSTATUS(st) == 255) {
			printf("%s unknown\n", argv[i]);
			status = 2;
		} else {
			printf("%s %d\n", argv[i], WEXITSTATUS(st));
		}
	}
	return status;
}

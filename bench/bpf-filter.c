/* SPDX-License-Identifier: MIT */
/*
 * Writes a compiled seccomp BPF program to stdout, for `bwrap --seccomp FD`
 * in bench/run.sh: default allow, EPERM for roughly the syscalls snapbox's
 * default policy refuses, so bwrap's start-up is compared with a filter of
 * similar size. Built by run.sh with `cc bpf-filter.c -lseccomp`; not part
 * of snapbox.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <unistd.h>

static const char *const denied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "uselib",
    "lookup_dcookie",
    "open_by_handle_at",
    "name_to_handle_at",
};

int main(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return 1;
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) < 0) {
			fprintf(stderr, "bpf-filter: cannot add a rule for %s\n", denied[i]);
			return 1;
		}
	}
	int r = seccomp_export_bpf(ctx, STDOUT_FILENO);
	seccomp_release(ctx);
	if (r < 0) {
		fprintf(stderr, "bpf-filter: seccomp_export_bpf failed: %d\n", r);
		return 1;
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * seccomp: the system-call filter of `snapbox run`, built in the parent,
 * installed by the child as its very last step before exec.
 *
 * Parent (may allocate, may fail with a message):
 *
 *   sb_seccomp *sc = NULL;
 *   r = sb_seccomp_new_from_option(opt_seccomp, net ? SB_SECCOMP_NET : 0, &sc, &err);
 *       opt NULL         -> the default policy (sb_seccomp_new_default)
 *       opt "unconfined" -> r = 0, sc = NULL: the layer is disabled
 *       otherwise        -> a Docker/OCI JSON profile file (sb_seccomp_new_oci_file)
 *   for (i < sb_seccomp_warning_count(sc)) print sb_seccomp_warning(sc, i);
 *   prog  = sb_seccomp_prog(sc);            struct sock_fprog, owned by sc
 *   flags = sb_seccomp_filter_flags(sc);    SECCOMP_FILTER_FLAG_* for seccomp(2)
 *   ... clone, wait ...
 *   sb_seccomp_free(sc);                    after the child has exec'd or died
 *
 * Child (between clone and exec: no malloc, no stdio), after
 * prctl(PR_SET_NO_NEW_PRIVS, 1) and everything else, right before execve:
 *
 *   if (prog) r = sb_seccomp_apply(prog, flags);   (or the raw syscall:
 *       syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog))
 *
 * The program stays valid in the child because it was built before fork and
 * the child's copy of memory is never freed. Only execve (and what the
 * dynamic loader needs) must be allowed by a custom profile; the default
 * policy allows both.
 *
 * The default policy (modelled on Docker's default profile and flatpak's
 * filter; default action ALLOW, so syscalls newer than this list work):
 *   EPERM   ptrace, process_vm_readv/writev, mount, umount2, pivot_root,
 *           chroot, unshare, setns, clone with any CLONE_NEW* flag, keyctl,
 *           add_key, request_key, bpf, perf_event_open, userfaultfd,
 *           kexec_load, kexec_file_load, init/finit/delete_module,
 *           open_by_handle_at, name_to_handle_at, io_uring_*, reboot,
 *           swapon/off, acct, quotactl(_fd), syslog, settimeofday,
 *           clock_settime, clock_adjtime, adjtimex, iopl, ioperm, uselib,
 *           lookup_dcookie, ioctl TIOCSTI / TIOCLINUX (low 32 bits of the
 *           request compared), personality other than 0x0, 0x8, 0x20000,
 *           0x20008, 0xffffffff
 *   ENOSYS  clone3 (libc falls back to clone, whose flags can be checked),
 *           fsopen, fsconfig, fsmount, fspick, move_mount, open_tree,
 *           open_tree_attr, mount_setattr (libraries fall back to mount(2))
 *   EAFNOSUPPORT  socket() of any family but AF_UNIX; with SB_SECCOMP_NET
 *           also AF_INET, AF_INET6 and AF_NETLINK with protocol NETLINK_ROUTE
 *   KILL    (whole process, SIGSYS) any call from a foreign architecture:
 *           i386 (int 0x80) and x32 on x86-64
 * sb_seccomp_rule_count() says how many rules that made (62 on x86-64 with
 * networking off, 75 with it on; personality counts as one).
 *
 * Errnos: -EINVAL bad profile (message names the file and the JSON path),
 * -ENOENT/-EACCES profile unreadable, -EFBIG profile over 4 MiB,
 * -EOPNOTSUPP libseccomp or the kernel lacks something asked for,
 * -ENOMEM.
 */

#include <stdbool.h>
#include <stddef.h>
#include <linux/filter.h>

/*
 * This header shadows libseccomp's <seccomp.h> on the include path. Our own
 * .c files that need libseccomp define SB_WANT_LIBSECCOMP (through
 * seccomp-internal.h) and get it from here, before anything else includes us.
 */
#ifdef SB_WANT_LIBSECCOMP
#include_next <seccomp.h>
#endif

#include "error.h"
#include "layers.h"

typedef struct sb_seccomp sb_seccomp;

typedef enum sb_seccomp_flags {
	SB_SECCOMP_NET = 1 << 0, /* network on: socket() may make INET, INET6, NETLINK_ROUTE */
} sb_seccomp_flags;

int sb_seccomp_new_default(sb_seccomp_flags flags, sb_seccomp **ret, sb_error *err);

/*
 * A Docker/OCI seccomp profile, loaded as it is (SB_SECCOMP_NET plays no
 * part): defaultAction, defaultErrnoRet, architectures or archMap, flags,
 * syscalls[] with names (or name), action, errnoRet, args[{index, value,
 * valueTwo, op}], includes/excludes {caps, arches, minKernel}. Rules
 * conditioned on capabilities are dropped (the sandbox holds none). Unknown
 * syscall names are skipped with a warning. Numbers must be integers in
 * [0, 2^53] (JSON doubles are exact up to there). SCMP_ACT_NOTIFY is refused.
 */
int sb_seccomp_new_oci_file(const char *path, sb_seccomp **ret, sb_error *err);
/* Same from memory; name is used in messages in place of the file name. */
int sb_seccomp_new_oci_data(const char *name, const char *json, size_t len, sb_seccomp **ret,
			    sb_error *err);

/* The --seccomp option: NULL, "unconfined" or a file (see the top comment). */
int sb_seccomp_new_from_option(const char *opt, sb_seccomp_flags flags, sb_seccomp **ret,
			       sb_error *err);

void sb_seccomp_free(sb_seccomp *sc);
static inline void sb_seccomp_freep(sb_seccomp **sc)
{
	sb_seccomp_free(*sc);
}

const struct sock_fprog *sb_seccomp_prog(const sb_seccomp *sc);
unsigned sb_seccomp_filter_flags(const sb_seccomp *sc);
size_t sb_seccomp_rule_count(const sb_seccomp *sc);
size_t sb_seccomp_warning_count(const sb_seccomp *sc);
const char *sb_seccomp_warning(const sb_seccomp *sc, size_t i);

/* sc NULL means unconfined: DISABLED. Otherwise ENFORCED "default(62 rules)"/"profile(x.json, 12 rules)". */
void sb_seccomp_layer_status(const sb_seccomp *sc, sb_layer_status *st);

/*
 * Child side: install prog. Async-signal-safe (one syscall). The caller must
 * have set no_new_privs (or hold CAP_SYS_ADMIN). Returns 0 or -errno.
 */
int sb_seccomp_apply(const struct sock_fprog *prog, unsigned flags);

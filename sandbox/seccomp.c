/* SPDX-License-Identifier: MIT */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>

#include "fileio.h"
#include "seccomp-internal.h"

struct sb_seccomp {
	struct sock_fprog prog; /* .filter points at insns */
	struct sock_filter *insns;
	unsigned filter_flags;
	size_t rules;
	char detail[SB_LAYER_DETAIL_MAX];
	char **warnings;
	size_t n_warnings;
};

/*
 * Syscalls newer than libseccomp 2.5.4's tables, x86-64 numbers. The kernel
 * has them whatever libseccomp knows; a profile naming them (Docker's default
 * allows statmount, listmount, mseal ...) must not silently lose them, and
 * the default policy must still see open_tree_attr.
 */
#if defined(__x86_64__)
static const struct {
	const char *name;
	int nr;
} newer_syscalls[] = {
    {"uretprobe", 335},
    {"statmount", 457},
    {"listmount", 458},
    {"lsm_get_self_attr", 459},
    {"lsm_set_self_attr", 460},
    {"lsm_list_modules", 461},
    {"mseal", 462},
    {"setxattrat", 463},
    {"getxattrat", 464},
    {"listxattrat", 465},
    {"removexattrat", 466},
    {"open_tree_attr", 467},
    {"file_getattr", 468},
    {"file_setattr", 469},
};
#endif

int sb_seccomp__resolve(const char *name, bool *ret_native_only)
{
	int nr = seccomp_syscall_resolve_name(name);

	*ret_native_only = false;
	if (nr != __NR_SCMP_ERROR)
		return nr;
#if defined(__x86_64__)
	for (size_t i = 0; i < ARRAY_SIZE(newer_syscalls); i++)
		if (strcmp(name, newer_syscalls[i].name) == 0) {
			*ret_native_only = true;
			return newer_syscalls[i].nr;
		}
#endif
	return __NR_SCMP_ERROR;
}

static void free_warnings(char **warnings, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(warnings[i]);
	free(warnings);
}

void sb_seccomp_free(sb_seccomp *sc)
{
	if (!sc)
		return;
	free(sc->insns);
	free_warnings(sc->warnings, sc->n_warnings);
	free(sc);
}

int sb_seccomp__finish(scmp_filter_ctx ctx, const struct sock_filter *prefix, size_t n_prefix,
		       size_t rules, unsigned filter_flags, const char *kind, const char *name,
		       char **warnings, size_t n_warnings, sb_seccomp **ret, sb_error *err)
{
	_cleanup_(sb_seccomp_freep) sb_seccomp *sc = calloc(1, sizeof(*sc));
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t n_insns;
	int r;

	if (!sc) {
		free_warnings(warnings, n_warnings);
		return sb_error_errno(err, ENOMEM, "seccomp");
	}
	sc->warnings = warnings;
	sc->n_warnings = n_warnings;
	sc->rules = rules;
	sc->filter_flags = filter_flags;

	/*
	 * libseccomp 2.5 can only export into an fd (seccomp_export_bpf_mem is
	 * 2.6); a memfd keeps it off any filesystem.
	 */
	fd = memfd_create("snapbox-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return sb_error_errno(err, errno, "seccomp: memfd_create");
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return sb_error_errno(err, -r, "seccomp: compiling the filter");
	if (fstat(fd, &st) < 0)
		return sb_error_errno(err, errno, "seccomp: fstat");
	if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0)
		return sb_error_set(err, EINVAL, "seccomp: libseccomp produced %lld bytes of BPF",
				    (long long)st.st_size);
	n_insns = n_prefix + (size_t)st.st_size / sizeof(struct sock_filter);
	if (n_insns > BPF_MAXINSNS)
		return sb_error_set(err, E2BIG,
				    "seccomp: the filter needs %zu instructions, the kernel takes "
				    "at most %d",
				    n_insns, BPF_MAXINSNS);
	sc->insns = calloc(n_insns, sizeof(struct sock_filter));
	if (!sc->insns)
		return sb_error_errno(err, ENOMEM, "seccomp");
	if (n_prefix > 0)
		memcpy(sc->insns, prefix, n_prefix * sizeof(struct sock_filter));
	ssize_t n = sb_pread_full(fd, sc->insns + n_prefix, (size_t)st.st_size, 0);
	if (n < 0)
		return sb_error_errno(err, (int)-n, "seccomp: reading the compiled filter");
	if ((size_t)n != (size_t)st.st_size)
		return sb_error_set(err, EIO, "seccomp: short read of the compiled filter");
	sc->prog.len = (unsigned short)n_insns;
	sc->prog.filter = sc->insns;
	if (name)
		snprintf(sc->detail, sizeof(sc->detail), "%s(%s, %zu rules)", kind, name, rules);
	else
		snprintf(sc->detail, sizeof(sc->detail), "%s(%zu rules)", kind, rules);
	*ret = TAKE_PTR(sc);
	return 0;
}

/* ---- the default policy ---- */

static const struct {
	const char *name;
	int err;
} denied[] = {
    /* Looking into or steering other processes. */
    {"ptrace", EPERM},
    {"process_vm_readv", EPERM},
    {"process_vm_writev", EPERM},
    /* The mount table: the sandbox's own is final once it runs. */
    {"mount", EPERM},
    {"umount", EPERM},
    {"umount2", EPERM},
    {"pivot_root", EPERM},
    {"chroot", EPERM},
    /* New mount API: ENOSYS makes util-linux and glibc fall back to mount(2). */
    {"fsopen", ENOSYS},
    {"fsconfig", ENOSYS},
    {"fsmount", ENOSYS},
    {"fspick", ENOSYS},
    {"move_mount", ENOSYS},
    {"open_tree", ENOSYS},
    {"open_tree_attr", ENOSYS},
    {"mount_setattr", ENOSYS},
    /* Namespaces; clone3 hides its flags in memory a filter cannot read. */
    {"unshare", EPERM},
    {"setns", EPERM},
    {"clone3", ENOSYS},
    /* Kernel keyrings are not namespaced. */
    {"keyctl", EPERM},
    {"add_key", EPERM},
    {"request_key", EPERM},
    /* Large kernel attack surface, little use to a build. */
    {"bpf", EPERM},
    {"perf_event_open", EPERM},
    {"userfaultfd", EPERM},
    {"io_uring_setup", EPERM},
    {"io_uring_enter", EPERM},
    {"io_uring_register", EPERM},
    /* The machine itself. */
    {"kexec_load", EPERM},
    {"kexec_file_load", EPERM},
    {"init_module", EPERM},
    {"finit_module", EPERM},
    {"delete_module", EPERM},
    {"reboot", EPERM},
    {"swapon", EPERM},
    {"swapoff", EPERM},
    {"acct", EPERM},
    {"quotactl", EPERM},
    {"quotactl_fd", EPERM},
    {"syslog", EPERM},
    {"settimeofday", EPERM},
    {"stime", EPERM},
    {"clock_settime", EPERM},
    {"clock_adjtime", EPERM},
    {"adjtimex", EPERM},
    {"iopl", EPERM},
    {"ioperm", EPERM},
    {"uselib", EPERM},
    {"lookup_dcookie", EPERM},
    {"nfsservctl", EPERM},
    {"vm86", EPERM},
    {"vm86old", EPERM},
    /* File handles bypass path lookup (the "shocker" escape). */
    {"open_by_handle_at", EPERM},
    {"name_to_handle_at", EPERM},
};

static const uint64_t clone_ns_flags[] = {
    CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
};

/* personality() values Docker allows: PER_LINUX, PER_LINUX32, UNAME26 and both, query. */
static const uint32_t personality_ok[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

/* The argument index of clone's flags: s390 and cris swap the first two. */
#if defined(__s390__) || defined(__s390x__) || defined(__CRIS__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

#if __BYTE_ORDER == __LITTLE_ENDIAN
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define ARG_HI(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#define ARG_HI(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#endif

/*
 * libseccomp takes one comparison per argument per rule and no ALLOW rule
 * under an ALLOW default, so "personality(x) unless x is one of five values"
 * cannot be said with it. This prefix says it, then falls through to
 * libseccomp's program (whose jumps are all relative, so it does not mind
 * being moved). Anything not native-arch personality() falls through too.
 */
static size_t personality_prefix(struct sock_filter *f, uint32_t arch, int nr)
{
	const size_t n_ok = ARRAY_SIZE(personality_ok);
	const size_t deny = 7 + n_ok; /* 7 loads and jumps, then one JEQ per value */
	const size_t end = deny + 1;
	size_t i = 0;

	f[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					    offsetof(struct seccomp_data, arch));
	i++;
	f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 0,
					    (uint8_t)(end - i - 1));
	i++;
	f[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					    offsetof(struct seccomp_data, nr));
	i++;
	f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0,
					    (uint8_t)(end - i - 1));
	i++;
	/* Any high bit set: not one of the values (the kernel would ignore it; we do not). */
	f[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(0));
	i++;
	f[i] =
	    (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, (uint8_t)(deny - i - 1));
	i++;
	f[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
	i++;
	for (size_t k = 0; k < n_ok; k++) {
		f[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, personality_ok[k],
						    (uint8_t)(end - i - 1), 0);
		i++;
	}
	/* The last JEQ's false branch falls into deny. */
	f[i] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	i++;
	return i;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n_cmp,
		    const struct scmp_arg_cmp *cmp, size_t *rules, sb_error *err)
{
	bool native_only;
	int nr = sb_seccomp__resolve(name, &native_only);
	int r;

	/* Not a syscall of this architecture (umount, stime, vm86 on x86-64). */
	if (nr < 0)
		return 0;
	r = seccomp_rule_add_array(ctx, action, nr, n_cmp, cmp);
	if (r < 0)
		return sb_error_errno(err, -r, "seccomp: adding the rule for '%s'", name);
	(*rules)++;
	return 0;
}

/* socket(domain, ...) -> EAFNOSUPPORT for every domain not in allowed (sorted). */
static int add_socket_rules(scmp_filter_ctx ctx, const uint64_t *allowed, size_t n, size_t *rules,
			    sb_error *err)
{
	const uint32_t act = SCMP_ACT_ERRNO(EAFNOSUPPORT);
	uint64_t v = 0;
	int r;

	/*
	 * One comparison per rule: an EQ for each hole below the largest
	 * allowed domain, then one GE above it. Whole 64-bit compares: a
	 * domain with stray high bits never equals an allowed one, so it is
	 * refused (the kernel would have truncated it to an int).
	 */
	for (size_t i = 0; i < n; i++) {
		for (; v < allowed[i]; v++) {
			struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_EQ, v);
			r = add_rule(ctx, act, "socket", 1, &c, rules, err);
			if (r < 0)
				return r;
		}
		v = allowed[i] + 1;
	}
	struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_GE, v);
	return add_rule(ctx, act, "socket", 1, &c, rules, err);
}

static void ctx_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

int sb_seccomp_new_default(sb_seccomp_flags flags, sb_seccomp **ret, sb_error *err)
{
	_cleanup_(ctx_releasep) scmp_filter_ctx ctx = NULL;
	struct sock_filter prefix[16];
	size_t rules = 0, n_prefix;
	int r;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return sb_error_set(err, ENOMEM, "seccomp: seccomp_init failed");
	/* Only the native architecture is in the filter: i386 and x32 calls hit BADARCH. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r < 0)
		return sb_error_errno(err, -r,
				      "seccomp: kill-process for foreign architectures "
				      "(needs Linux 4.14 and libseccomp 2.4)");
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r < 0)
		return sb_error_errno(err, -r, "seccomp: filter attribute");

	for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
		r = add_rule(ctx, SCMP_ACT_ERRNO((uint32_t)denied[i].err), denied[i].name, 0, NULL,
			     &rules, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(clone_ns_flags); i++) {
		struct scmp_arg_cmp c = SCMP_CMP(CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ,
						 clone_ns_flags[i], clone_ns_flags[i]);
		r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &c, &rules, err);
		if (r < 0)
			return r;
	}
	/* ioctl takes an int-sized request; userspace may leave junk in the high half. */
	static const uint64_t bad_ioctls[] = {TIOCSTI, TIOCLINUX};
	for (size_t i = 0; i < ARRAY_SIZE(bad_ioctls); i++) {
		struct scmp_arg_cmp c =
		    SCMP_A1(SCMP_CMP_MASKED_EQ, UINT64_C(0xffffffff), bad_ioctls[i]);
		r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, &c, &rules, err);
		if (r < 0)
			return r;
	}
	if (flags & SB_SECCOMP_NET) {
		static const uint64_t fams[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
		struct scmp_arg_cmp c[2] = {SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
					    SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE)};
		r = add_socket_rules(ctx, fams, ARRAY_SIZE(fams), &rules, err);
		if (r < 0)
			return r;
		/* Route netlink answers getaddrinfo and ip addr; audit, uevents etc. stay shut. */
		r = add_rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 2, c, &rules, err);
	} else {
		static const uint64_t fams[] = {AF_UNIX};
		r = add_socket_rules(ctx, fams, ARRAY_SIZE(fams), &rules, err);
	}
	if (r < 0)
		return r;

	n_prefix = personality_prefix(prefix, seccomp_arch_native(), SCMP_SYS(personality));
	rules++;
	return sb_seccomp__finish(ctx, prefix, n_prefix, rules, 0, "default", NULL, NULL, 0, ret,
				  err);
}

int sb_seccomp_new_from_option(const char *opt, sb_seccomp_flags flags, sb_seccomp **ret,
			       sb_error *err)
{
	if (!opt)
		return sb_seccomp_new_default(flags, ret, err);
	if (strcmp(opt, "unconfined") == 0) {
		*ret = NULL;
		return 0;
	}
	return sb_seccomp_new_oci_file(opt, ret, err);
}

const struct sock_fprog *sb_seccomp_prog(const sb_seccomp *sc)
{
	return sc ? &sc->prog : NULL;
}

unsigned sb_seccomp_filter_flags(const sb_seccomp *sc)
{
	return sc ? sc->filter_flags : 0;
}

size_t sb_seccomp_rule_count(const sb_seccomp *sc)
{
	return sc ? sc->rules : 0;
}

size_t sb_seccomp_warning_count(const sb_seccomp *sc)
{
	return sc ? sc->n_warnings : 0;
}

const char *sb_seccomp_warning(const sb_seccomp *sc, size_t i)
{
	return sc && i < sc->n_warnings ? sc->warnings[i] : NULL;
}

void sb_seccomp_layer_status(const sb_seccomp *sc, sb_layer_status *st)
{
	if (!sc) {
		sb_layer_status_set(st, "seccomp", SB_LAYER_DISABLED, NULL);
		sb_layer_status_reason(st, "--seccomp unconfined");
		return;
	}
	sb_layer_status_set(st, "seccomp", SB_LAYER_ENFORCED, "%s", sc->detail);
}

int sb_seccomp_apply(const struct sock_fprog *prog, unsigned flags)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog) < 0)
		return -errno;
	return 0;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "landlock.h"

/*
 * Our own copies of the uapi: distribution headers lag the kernel (the one
 * here stops at ABI 2), and the numbers are ABI, so they never change.
 */
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH	  1
#define LL_RULE_NET_PORT	  2

#define LL_FS_WRITE_FILE       (1ULL << 1)
#define LL_FS_REMOVE_DIR       (1ULL << 4)
#define LL_FS_REMOVE_FILE      (1ULL << 5)
#define LL_FS_MAKE_CHAR	       (1ULL << 6)
#define LL_FS_MAKE_DIR	       (1ULL << 7)
#define LL_FS_MAKE_REG	       (1ULL << 8)
#define LL_FS_MAKE_SOCK	       (1ULL << 9)
#define LL_FS_MAKE_FIFO	       (1ULL << 10)
#define LL_FS_MAKE_BLOCK       (1ULL << 11)
#define LL_FS_MAKE_SYM	       (1ULL << 12)
#define LL_FS_REFER	       (1ULL << 13) /* ABI 2 */
#define LL_FS_TRUNCATE	       (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV	       (1ULL << 15) /* ABI 5 */
#define LL_NET_BIND_TCP	       (1ULL << 0)  /* ABI 4 */
#define LL_NET_CONNECT_TCP     (1ULL << 1)  /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)  /* ABI 6 */
#define LL_SCOPE_SIGNAL	       (1ULL << 1)  /* ABI 6 */

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;	     /* ABI 6 */
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

/* Rights that make sense on a single file (the kernel refuses the rest there). */
#define LL_FILE_RIGHTS (LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

struct sb_landlock {
	int fd;
	int abi;
	uint64_t handled_fs;
	uint64_t handled_net;
	uint64_t scoped;
	sb_landlock_flags flags;
	bool degraded;
	char degraded_why[160];
};

static int last_abi_errno;

int sb_landlock_abi(void)
{
	long r = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (r < 0) {
		last_abi_errno = errno;
		return 0;
	}
	return (int)r;
}

static const char *unavailable_reason(int e)
{
	switch (e) {
	case ENOSYS:
		return "the kernel is built without Landlock (CONFIG_SECURITY_LANDLOCK)";
	case EOPNOTSUPP:
		return "Landlock is disabled at boot (add landlock to the lsm= kernel parameter)";
	case EPERM:
		return "a seccomp filter refuses landlock_create_ruleset";
	default:
		return "landlock_create_ruleset failed";
	}
}

static uint64_t handled_fs_for(int abi)
{
	uint64_t a = LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_CHAR |
		     LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO |
		     LL_FS_MAKE_BLOCK | LL_FS_MAKE_SYM;
	if (abi >= 2)
		a |= LL_FS_REFER;
	if (abi >= 3)
		a |= LL_FS_TRUNCATE;
	if (abi >= 5)
		a |= LL_FS_IOCTL_DEV;
	return a;
}

void sb_landlock_free(sb_landlock *ll)
{
	if (!ll)
		return;
	if (ll->fd >= 0)
		close(ll->fd);
	free(ll);
}

int sb_landlock_new(sb_landlock_flags flags, sb_landlock **ret, sb_error *err)
{
	_cleanup_(sb_landlock_freep) sb_landlock *ll = NULL;
	struct ll_ruleset_attr attr = {0};
	size_t size;
	int abi = sb_landlock_abi();

	if (abi <= 0)
		return sb_error_set(err, EOPNOTSUPP, "landlock: %s",
				    unavailable_reason(last_abi_errno));
	ll = calloc(1, sizeof(*ll));
	if (!ll)
		return sb_error_errno(err, ENOMEM, "landlock");
	ll->fd = -1;
	ll->abi = abi;
	ll->flags = flags;
	ll->handled_fs = handled_fs_for(abi);
	attr.handled_access_fs = ll->handled_fs;
	size = sizeof(attr.handled_access_fs);
	if ((flags & SB_LANDLOCK_NET) && abi < 4) {
		ll->degraded = true;
		snprintf(ll->degraded_why, sizeof(ll->degraded_why),
			 "no TCP rules: Landlock ABI %d, they need 4 (Linux 6.7)", abi);
	} else if (flags & SB_LANDLOCK_NET) {
		ll->handled_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr.handled_access_net = ll->handled_net;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (flags & (SB_LANDLOCK_SCOPE_SIGNAL | SB_LANDLOCK_SCOPE_ABSTRACT_UNIX)) {
		if (abi < 6) {
			ll->degraded = true;
			snprintf(ll->degraded_why, sizeof(ll->degraded_why),
				 "no scoping: Landlock ABI %d, it needs 6 (Linux 6.12)", abi);
		} else {
			if (flags & SB_LANDLOCK_SCOPE_SIGNAL)
				ll->scoped |= LL_SCOPE_SIGNAL;
			if (flags & SB_LANDLOCK_SCOPE_ABSTRACT_UNIX)
				ll->scoped |= LL_SCOPE_ABSTRACT_UNIX;
			attr.scoped = ll->scoped;
			size = sizeof(attr);
		}
	}
	long fd = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0)
		return sb_error_errno(err, errno, "landlock_create_ruleset (ABI %d)", abi);
	ll->fd = (int)fd; /* the kernel makes it O_CLOEXEC */
	*ret = TAKE_PTR(ll);
	return 0;
}

int sb_landlock_add_path_fd(int ruleset_fd, int abi, int path_fd, sb_landlock_access access)
{
	struct ll_path_beneath_attr pb;
	uint64_t handled = handled_fs_for(abi);

	pb.allowed_access = access == SB_LANDLOCK_WRITE_TREE ? handled : handled & LL_FILE_RIGHTS;
	pb.parent_fd = path_fd;
	if (syscall(SYS_landlock_add_rule, ruleset_fd, LL_RULE_PATH_BENEATH, &pb, 0) < 0)
		return -errno;
	return 0;
}

int sb_landlock_add_path(int ruleset_fd, int abi, const char *path)
{
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else
		r = sb_landlock_add_path_fd(ruleset_fd, abi, fd,
					    S_ISDIR(st.st_mode) ? SB_LANDLOCK_WRITE_TREE
								: SB_LANDLOCK_WRITE_FILE);
	close(fd);
	return r;
}

int sb_landlock_allow_write_fd(sb_landlock *ll, int fd, const char *name, sb_error *err)
{
	char q[256];
	struct stat st;
	int r;

	sb_quote(q, sizeof(q), name ? name : "(fd)", strlen(name ? name : "(fd)"));
	if (fstat(fd, &st) < 0)
		return sb_error_errno(err, errno, "landlock: stat '%s'", q);
	r = sb_landlock_add_path_fd(ll->fd, ll->abi, fd,
				    S_ISDIR(st.st_mode) ? SB_LANDLOCK_WRITE_TREE
							: SB_LANDLOCK_WRITE_FILE);
	if (r < 0)
		return sb_error_errno(err, -r, "landlock: allowing writes to '%s'", q);
	return 0;
}

int sb_landlock_allow_write(sb_landlock *ll, const char *path, sb_error *err)
{
	_cleanup_close_ int fd = -1;
	char q[256];

	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return sb_error_errno(err, errno, "landlock: open '%s'",
				      sb_quote(q, sizeof(q), path, strlen(path)));
	return sb_landlock_allow_write_fd(ll, fd, path, err);
}

int sb_landlock_allow_devices(sb_landlock *ll, sb_error *err)
{
	static const char *const devices[] = {
	    "/dev/null",    "/dev/zero", "/dev/full", "/dev/random",
	    "/dev/urandom", "/dev/tty",	 "/dev/ptmx", "/dev/pts",
	};
	for (size_t i = 0; i < ARRAY_SIZE(devices); i++) {
		_cleanup_close_ int fd = open(devices[i], O_PATH | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return sb_error_errno(err, errno, "landlock: open '%s'", devices[i]);
		}
		int r = sb_landlock_allow_write_fd(ll, fd, devices[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

int sb_landlock_allow_tcp(sb_landlock *ll, uint16_t port, sb_landlock_tcp what, sb_error *err)
{
	struct ll_net_port_attr np = {0};

	if (!(ll->flags & SB_LANDLOCK_NET))
		return sb_error_set(
		    err, EINVAL, "landlock: TCP port %u allowed but TCP is not restricted", port);
	/* ABI < 4: nothing is restricted, so nothing to allow (the status says degraded). */
	if (!ll->handled_net)
		return 0;
	if (what & SB_LANDLOCK_BIND)
		np.allowed_access |= LL_NET_BIND_TCP;
	if (what & SB_LANDLOCK_CONNECT)
		np.allowed_access |= LL_NET_CONNECT_TCP;
	if (!np.allowed_access)
		return sb_error_set(err, EINVAL, "landlock: TCP port %u: neither bind nor connect",
				    port);
	np.port = port;
	if (syscall(SYS_landlock_add_rule, ll->fd, LL_RULE_NET_PORT, &np, 0) < 0)
		return sb_error_errno(err, errno, "landlock: allowing TCP port %u", port);
	return 0;
}

int sb_landlock_fd(const sb_landlock *ll)
{
	return ll ? ll->fd : -1;
}

int sb_landlock_abi_of(const sb_landlock *ll)
{
	return ll ? ll->abi : 0;
}

void sb_landlock_layer_status(const sb_landlock *ll, sb_layer_status *st)
{
	if (!ll) {
		int abi = sb_landlock_abi();
		if (abi > 0) {
			sb_layer_status_set(st, "landlock", SB_LAYER_DISABLED, NULL);
			sb_layer_status_reason(st, "not requested");
		} else {
			sb_layer_status_set(st, "landlock", SB_LAYER_UNAVAILABLE, NULL);
			sb_layer_status_reason(st, "%s", unavailable_reason(last_abi_errno));
		}
		return;
	}
	if (ll->degraded) {
		sb_layer_status_set(st, "landlock", SB_LAYER_DEGRADED, "abi%d", ll->abi);
		sb_layer_status_reason(st, "%s", ll->degraded_why);
		return;
	}
	sb_layer_status_set(st, "landlock", SB_LAYER_ENFORCED, "abi%d%s", ll->abi,
			    ll->handled_net ? "+tcp" : "");
}

int sb_landlock_apply(int ruleset_fd)
{
	if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
		return -errno;
	return 0;
}

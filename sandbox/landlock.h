/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Landlock: the sandboxed command may read and execute anywhere its mount
 * namespace shows it, but create, write, remove, rename into, truncate (and,
 * ABI >= 5, ioctl on devices) only beneath the paths it is given: the
 * workspace mount, /tmp, /dev/shm, the --rw paths, and a few devices
 * (/dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty,
 * /dev/ptmx, /dev/pts). With SB_LANDLOCK_NET (ABI >= 4) TCP bind and connect
 * are refused except for the ports allowed one by one.
 *
 * Parent, before clone:
 *   sb_landlock *ll = NULL;
 *   r = sb_landlock_new(SB_LANDLOCK_NET, &ll, &err);   -EOPNOTSUPP: no Landlock
 *   r = sb_landlock_allow_write(ll, rw_path, &err);     each --rw path (bind-mounted)
 *   r = sb_landlock_allow_devices(ll, &err);            /dev/null & co (bind-mounted)
 *   r = sb_landlock_allow_tcp(ll, 443, SB_LANDLOCK_CONNECT, &err);   optional
 *   fd = sb_landlock_fd(ll);  abi = sb_landlock_abi_of(ll);
 *   ... clone; the child inherits fd ...
 *   sb_landlock_free(ll);               after the child has exec'd or died
 *
 * Child, after its mounts are in place, after prctl(PR_SET_NO_NEW_PRIVS, 1),
 * before rlimits and seccomp (async-signal-safe, plain syscalls):
 *   r = sb_landlock_add_path(fd, abi, workspace);   the overlay's root
 *   r = sb_landlock_add_path(fd, abi, "/tmp");      the fresh tmpfs
 *   r = sb_landlock_add_path(fd, abi, "/dev/shm");
 *   r = sb_landlock_apply(fd);  = syscall(SYS_landlock_restrict_self, fd, 0)
 * The ruleset fd is close-on-exec, so it does not leak into the command.
 *
 * Why the split: rules are bound to inodes, not path strings, and Landlock
 * skips the directory a mount hides ("hidden mount points"). A rule the
 * parent puts on the host's /ws therefore does NOT cover an overlay or tmpfs
 * the child later mounts ON /ws (test-landlock proves it); the child has to
 * name the new mount's root itself. A bind mount shares the host's dentries,
 * so rules on host paths that are bind-mounted (--rw paths, /dev/null, and
 * the read-only host root) keep working after pivot_root.
 *
 * Status: sb_landlock_layer_status() says ENFORCED "abi7", DEGRADED when a
 * part asked for is beyond this kernel's ABI (TCP rules before ABI 4), and
 * UNAVAILABLE (ll NULL) when the kernel has no Landlock; the caller treats
 * the last as degraded isolation (fail closed unless --allow-degraded).
 */

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "layers.h"

typedef struct sb_landlock sb_landlock;

typedef enum sb_landlock_flags {
	SB_LANDLOCK_NET = 1 << 0,	   /* restrict TCP bind/connect (ABI >= 4), allow by port */
	SB_LANDLOCK_SCOPE_SIGNAL = 1 << 1, /* no signals to processes outside (ABI >= 6) */
	SB_LANDLOCK_SCOPE_ABSTRACT_UNIX = 1 << 2, /* no abstract unix sockets outside (ABI >= 6) */
} sb_landlock_flags;

typedef enum sb_landlock_tcp {
	SB_LANDLOCK_BIND = 1 << 0,
	SB_LANDLOCK_CONNECT = 1 << 1,
} sb_landlock_tcp;

/* Which access a path gets (sb_landlock_add_path_fd). */
typedef enum sb_landlock_access {
	SB_LANDLOCK_WRITE_TREE = 0, /* a directory: everything beneath is writable */
	SB_LANDLOCK_WRITE_FILE = 1, /* one file or device: write, truncate, ioctl */
} sb_landlock_access;

/* The kernel's Landlock ABI version, 0 when it has none (or it is disabled at boot). */
int sb_landlock_abi(void);

/* -EOPNOTSUPP (message says why) when the kernel lacks Landlock. */
int sb_landlock_new(sb_landlock_flags flags, sb_landlock **ret, sb_error *err);
void sb_landlock_free(sb_landlock *ll);
static inline void sb_landlock_freep(sb_landlock **ll)
{
	sb_landlock_free(*ll);
}

/*
 * Allow writes beneath path (a directory) or to path (a file/device); the
 * kind is taken from the inode. Symlinks in path are followed (the rule
 * lands on the target, which is what a bind mount of it shows). Only for
 * host paths the child will see through bind mounts (see the top comment).
 * -ENOENT etc. naming the path.
 */
int sb_landlock_allow_write(sb_landlock *ll, const char *path, sb_error *err);
/* Same, on an fd the caller opened (any kind, O_PATH is fine); ll does not take it. */
int sb_landlock_allow_write_fd(sb_landlock *ll, int fd, const char *name, sb_error *err);
/* The usual writable devices that exist on this host (missing ones are skipped). */
int sb_landlock_allow_devices(sb_landlock *ll, sb_error *err);

/* Allow TCP bind and/or connect on port. Without SB_LANDLOCK_NET: -EINVAL. */
int sb_landlock_allow_tcp(sb_landlock *ll, uint16_t port, sb_landlock_tcp what, sb_error *err);

int sb_landlock_fd(const sb_landlock *ll);
int sb_landlock_abi_of(const sb_landlock *ll);

/* ll NULL: UNAVAILABLE (reason from sb_landlock_abi()); see the top comment. */
void sb_landlock_layer_status(const sb_landlock *ll, sb_layer_status *st);

/*
 * Child side, async-signal-safe (no malloc, no stdio), -errno on failure.
 * abi is the ruleset's (sb_landlock_abi_of, read in the parent).
 * add_path: open path O_PATH, allow writes beneath it (a directory) or to it
 * (anything else), close. add_path_fd: the same on an fd the caller holds.
 * apply: needs no_new_privs (or CAP_SYS_ADMIN).
 */
int sb_landlock_add_path(int ruleset_fd, int abi, const char *path);
int sb_landlock_add_path_fd(int ruleset_fd, int abi, int path_fd, sb_landlock_access access);
int sb_landlock_apply(int ruleset_fd);

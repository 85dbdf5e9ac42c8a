/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The mount plan: the sandbox's filesystem view, computed in the supervisor
 * (all paths canonicalized, every string allocated) and replayed in the
 * sandbox's PID 1 without allocating.
 *
 *   sb_mountplan *p;
 *   sb_mountplan_new(&cfg, userns, &p, &err);    parent: realpath, lstat, strings
 *   ... clone(CLONE_NEWNS | ...) ...
 *   sb_mountplan_apply(p, &report);              child: mounts, then pivot_root
 *   sb_mountplan_free(p);                        parent
 *
 * Apply, in order (DESIGN.md §5):
 *   make / a recursive slave; tmpfs staging root on /tmp; pivot_root into it
 *   with the host at /oldroot; then the ops:
 *     /newroot   recursive bind of the host root, read-only, nosuid, nodev
 *                (mount_setattr AT_RECURSIVE on a detached clone, so every
 *                submount is read-only before it is attached; with
 *                SB_SANDBOX_CLASSIC_MOUNT or without the new mount API, a
 *                remount of every submount listed in /proc/self/mountinfo)
 *     /tmp       fresh tmpfs
 *     /dev       tmpfs with null zero full random urandom tty bound from the
 *                host, devpts (new instance) + ptmx link, shm tmpfs, fd/std*
 *                links; then remounted read-only (pts and shm stay writable)
 *     /proc      fresh proc; sys sysrq-trigger irq bus read-only, kcore keys
 *                timer_list sched_debug masked
 *     workspace  the hook (overlay) / bind of workspace_src / read-only bind
 *                when under /tmp or /dev/shm (mount points created there)
 *     --ro/--rw  recursive binds (read-only ones read-only all the way down)
 *     secrets    default secrets under home and system secrets (/etc/shadow,
 *                sudoers, SSH host keys, ...; sb_sandbox_system_secrets())
 *                that exist (skipped when a bind names the secret or a path
 *                inside it), daemon sockets
 *                (/run/docker.sock, the system bus, ...) and the caller's
 *                /run/user/UID (a read-only mount does not stop connect()),
 *                the store, --hide:
 *                directories get an empty read-only tmpfs, files /dev/null
 *   detach /oldroot; pivot_root into /newroot; cwd "/".
 *
 * Mount targets are canonical host paths, so no symlink is followed while
 * mounting (a symlink resolved under /newroot would lead to the host).
 * Errors: -EINVAL (a path that is not absolute, a workspace under /dev or
 * /proc), -ENOENT (a --ro/--rw path or the workspace does not exist).
 */

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mount.h>

#include "error.h"
#include "sandbox-internal.h"
#include "sandbox.h"

int sb_mountplan_new(const sb_sandbox_config *cfg, bool userns, sb_mountplan **ret, sb_error *err);
void sb_mountplan_free(sb_mountplan *p);

/*
 * Runs the plan in the calling process, which must own its mount namespace.
 * On failure fills rep (kind SETUP, step MOUNT or PIVOT, errno, path as seen
 * inside, note) and returns -errno; the namespace is then half-built and must
 * be thrown away.
 */
int sb_mountplan_apply(sb_mountplan *p, sb_report *rep);

/* Number of ops, and a one-line description of op i (tests, debugging). */
size_t sb_mountplan_size(const sb_mountplan *p);
const char *sb_mountplan_describe(const sb_mountplan *p, size_t i, char *buf, size_t size);

/* ---- private to mountplan.c (building) and mountapply.c (replaying) ---- */

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV  0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

#define SB_OLDROOT "/oldroot" /* the host, while the new root is built */
#define SB_NEWROOT "/newroot"
#define SB_STAGING "/tmp" /* where the staging tmpfs is mounted */

typedef enum sb_mop_kind {
	SB_MOP_MKDIR_P,
	SB_MOP_MKFILE,
	SB_MOP_TMPFS,
	SB_MOP_BIND,
	SB_MOP_PROC,
	SB_MOP_DEVPTS,
	SB_MOP_SYMLINK,
	SB_MOP_REMOUNT,
	SB_MOP_HOOK,
} sb_mop_kind;

enum {
	SB_MOP_REC = 1 << 0,	  /* recursive bind / attributes */
	SB_MOP_OPTIONAL = 1 << 1, /* skip when source or target is missing */
};

typedef struct sb_mop {
	sb_mop_kind kind;
	unsigned flags;
	uint64_t attr;	      /* MOUNT_ATTR_* applied to a bind or remount */
	unsigned long mflags; /* MS_* for a new filesystem */
	const char *src;      /* bind source under /oldroot; symlink text */
	const char *dst;      /* under /newroot */
	const char *data;     /* fs options */
	const char *what;     /* for messages */
} sb_mop;

struct sb_mountplan {
	sb_mop *ops;
	size_t n, cap;
	char **strs;
	size_t n_strs, cap_strs;
	bool classic, userns;
	sb_sandbox_mount_fn hook;
	void *hook_data;
	int hook_fd;  /* child, after apply: O_PATH on what the hook mounted, or -1 */
	char *io_buf; /* classic: /proc/self/mountinfo chunks */
	size_t io_size;
	char *mp_buf; /* classic: one unescaped mount point */
};

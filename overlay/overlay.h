/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The kernel overlayfs backend and the upper-layer reader.
 *
 * Mounting (kernel.c):
 *
 *   sb_overlay *ov;
 *   sb_overlay_new(workspace, session_upper, session_work, 0, &ov, &err);
 *   cfg.workspace_mount = sb_overlay_mount_hook;     sandbox/sandbox.h
 *   cfg.workspace_mount_data = ov;                   mounted inside the sandbox
 *   ... or sb_overlay_mount(ov, NULL, target, msg, sizeof(msg)) directly ...
 *   sb_overlay_free(ov);
 *
 * sb_overlay_new does every allocation; sb_overlay_mount allocates nothing,
 * takes no lock and prints nothing, so it may run between clone and exec.
 * The mount is always nosuid,nodev, with index=off, metacopy=off and
 * redirect_dir=off (nofollow with userxattr), so renamed directories show up
 * in the upper as copy + whiteout and no file is ever a metadata-only
 * copy-up: the upper alone describes every change. It is also volatile
 * (Linux >= 5.10; silently durable before): the kernel never syncs the
 * upper's filesystem for it. An upper is read once the sandbox is gone and
 * thrown away after a crash anyway, and a durable overlay flushes the
 * store's filesystem (a journal commit and a disk cache flush, several ms)
 * when its mount namespace goes away. A volatile mount leaves
 * "work/incompat/volatile" behind, so give every mount a fresh work
 * directory. SB_OVERLAY_DURABLE opts out. It tries, in order:
 *
 *   1. fsopen("overlay") with each layer given by fd (FSCONFIG_SET_FD,
 *      Linux >= 6.13): no path string, so no escaping and no length limit;
 *   2. fsconfig "lowerdir+"/"upperdir"/"workdir" path strings (>= 6.8;
 *      fsconfig refuses strings of 256 bytes or more);
 *   3. mount(2) with an options string, '\\' ':' ',' escaped with '\\'
 *      (one page at most).
 *
 * The upper and work directories must be on one filesystem that supports
 * xattrs (trusted.* as root, user.* with SB_OVERLAY_USERXATTR), and not
 * inside the lower directory.
 *
 * Errnos: -EINVAL bad paths, -ENAMETOOLONG options beyond what every method
 * accepts, -EOPNOTSUPP no overlayfs; otherwise the kernel's.
 *
 * Reading the upper (upper.c) — see sb_upper_read below.
 */

#include <stdbool.h>
#include <stddef.h>

#include "changes.h"
#include "error.h"

typedef struct sb_overlay sb_overlay;

typedef enum sb_overlay_flags {
	SB_OVERLAY_USERXATTR = 1 << 0,	 /* user.overlay.* xattrs: mounting in a user namespace */
	SB_OVERLAY_NO_FD = 1 << 1,	 /* skip method 1 (tests) */
	SB_OVERLAY_NO_FSCONFIG = 1 << 2, /* skip methods 1 and 2: mount(2) only (tests) */
	SB_OVERLAY_NO_LEGACY = 1 << 3,	 /* never fall back to method 3 (tests) */
	SB_OVERLAY_DURABLE = 1 << 4, /* not volatile: syncs on unmount, fsync reaches the disk */
} sb_overlay_flags;

/* Paths are absolute. Copies them and preallocates every buffer mounting needs. */
int sb_overlay_new(const char *lower, const char *upper, const char *work, sb_overlay_flags flags,
		   sb_overlay **ret, sb_error *err);
void sb_overlay_free(sb_overlay *ov);
void sb_overlay_freep(sb_overlay **ov);

/*
 * Mounts the overlay on target. root, when not NULL, is prepended to the
 * layer paths (the sandbox passes "/oldroot", where the host's root is while
 * it builds the new one); at most SB_OVERLAY_ROOT_MAX bytes. extra_flags are
 * or'ed with the flags given to sb_overlay_new. On failure returns -errno and
 * puts the kernel's own explanation (overlayfs logs one for most refusals),
 * if any, in msg. No allocation.
 */
#define SB_OVERLAY_ROOT_MAX 64
int sb_overlay_mount(sb_overlay *ov, const char *root, const char *target,
		     sb_overlay_flags extra_flags, char *msg, size_t msg_size);

/* sandbox.h's sb_sandbox_mount_fn: data is an sb_overlay; userns adds userxattr. */
int sb_overlay_mount_hook(void *data, const char *host_root, const char *target, bool userns,
			  char *msg, size_t msg_size);

/*
 * Escapes path for a mount(2) overlay option value: '\\', ':' and ',' get a
 * '\\' before them. Returns the length written (without NUL) or -ENAMETOOLONG
 * when size is too small.
 */
int sb_overlay_escape(const char *path, char *buf, size_t size);

typedef enum sb_overlay_probe_flags {
	SB_OVERLAY_PROBE_USERNS = 1 << 0, /* as an unprivileged user would: in a user namespace */
} sb_overlay_probe_flags;

/*
 * Can a kernel overlay be mounted here? In a throw-away child (and mount
 * namespace; plus a user namespace with SB_OVERLAY_PROBE_USERNS), mounts an
 * overlay whose upper and work live in a fresh directory under scratch_dir
 * (give a directory on the store's filesystem), with lower (the workspace;
 * NULL for a scratch one) as the lower layer, then deletes a lower file
 * through a second scratch mount and checks a whiteout appeared in the
 * upper. Removes what it created. Returns 0 when all worked, else -errno
 * with err saying which step failed and the kernel's message.
 */
int sb_overlay_probe(const char *lower, const char *scratch_dir, sb_overlay_probe_flags flags,
		     sb_error *err);

/*
 * Reading an upper layer into a change list, in O(entries in the upper): the
 * lower tree is never touched. Walks by fd (O_NOFOLLOW everywhere; at most 32
 * directory fds open whatever the depth: the root's and the deepest levels',
 * the others reopened by name when the walk climbs back to them, checked to
 * be the same inode as listed); names are arbitrary bytes.
 *
 * The overlay xattrs are read in one namespace only, the one the kernel
 * wrote: OVL below is "trusted.overlay." by default (an overlay mounted as
 * root) and "user.overlay." with SB_UPPER_USERXATTR (mounted with userxattr,
 * in a user namespace). The other namespace is ignored: in a root-mode
 * sandbox the command can set user.* xattrs on what it creates, and a forged
 * user.overlay.opaque there must not delete lower files it still saw. Pass
 * SB_UPPER_USERXATTR exactly when the sandbox used a user namespace
 * (sb_sandbox_uses_userns()), i.e. when the overlay was mounted with
 * SB_OVERLAY_USERXATTR.
 *
 *   char device 0/0                       whiteout: SB_CHANGE_DELETE
 *   OVL opaque = "y"                      directory entry with opaque set
 *   OVL opaque = "x"                      directory whose zero-size regular
 *                                         files carrying
 *   OVL whiteout                          are whiteouts (the kernel's rule)
 *   .wh.NAME (SB_UPPER_WH_NAMES)          whiteout of NAME (fuse-overlayfs)
 *   .wh..wh..opq (SB_UPPER_WH_NAMES)      its directory is opaque; a NAME
 *                                         directory next to a .wh.NAME is
 *                                         also opaque (deleted, then
 *                                         recreated), as is one carrying
 *                                         user.fuseoverlayfs.opaque
 *   anything else                         SB_CHANGE_WRITE with type, mode,
 *                                         size and mtime from the upper
 *
 * Refused, with -EOPNOTSUPP naming the path: OVL redirect (a directory
 * renamed with redirect_dir=on; its lower contents would be missing from the
 * list), OVL metacopy (a metadata-only copy-up: the data is still in the
 * lower), an opaque marker on the upper's root, and device nodes other than
 * whiteouts. Sockets are skipped (they carry no content). -ESTALE when a
 * directory changed while it was read. The result is sorted
 * (sb_changes_sort). On error *ret is left untouched. xattrs are read with
 * listxattrat/getxattrat (Linux >= 6.13), else through /proc/self/fd/N/NAME
 * (forced with the environment variable SNAPBOX_NO_XATTRAT=1).
 *
 * SB_UPPER_PLAIN_FILES, for an upper written by snapbox's own kernel overlay
 * (metacopy=off, so no file carries a metacopy xattr the command could not
 * forge either): a regular file outside an opaque=x directory is plain
 * content. It is listed from its directory entry's type alone, with no lstat
 * and no xattr read, and its mode, size and mtime are left 0: the caller
 * stats it when it opens it to read it (stage.h does). With 10k new files
 * this halves the reading of the upper.
 */
typedef enum sb_upper_flags {
	SB_UPPER_WH_NAMES =
	    1 << 0, /* interpret .wh.* names (FUSE backend); otherwise plain names */
	SB_UPPER_USERXATTR = 1 << 1,   /* user.overlay.* xattrs only (userxattr mount, user
					namespace); otherwise trusted.overlay.* only */
	SB_UPPER_PLAIN_FILES = 1 << 2, /* regular files unread and unstat'ed (see above) */
} sb_upper_flags;

int sb_upper_read(int upper_fd, sb_upper_flags flags, sb_changes *ret, sb_error *err);
int sb_upper_read_path(const char *upper, sb_upper_flags flags, sb_changes *ret, sb_error *err);

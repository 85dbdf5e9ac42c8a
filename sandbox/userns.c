/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sandbox-internal.h"

int sb_sandbox__userns_prepare(sb_child *c, sb_error *err)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	/*
	 * The caller's ids mapped to themselves: files keep their owners, and the
	 * command sees its own uid, not root. A process may write this one-line
	 * map for itself from inside the new namespace, so no helper and no
	 * round trip with the supervisor is needed.
	 */
	int n1 = snprintf(c->uid_map, sizeof(c->uid_map), "%u %u 1\n", uid, uid);
	int n2 = snprintf(c->gid_map, sizeof(c->gid_map), "%u %u 1\n", gid, gid);
	if (n1 < 0 || (size_t)n1 >= sizeof(c->uid_map) || n2 < 0 ||
	    (size_t)n2 >= sizeof(c->gid_map))
		return sb_error_set(err, EOVERFLOW, "uid/gid map for %u/%u", uid, gid);
	/* Unprivileged gid_map writes require setgroups to be denied first. */
	sb_sandbox__scopy(c->setgroups, sizeof(c->setgroups), "deny");
	return 0;
}

static int write_maps(const sb_child *c);

static int write_proc(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = strlen(data);
	ssize_t n = write(fd, data, len);
	int e = n < 0 ? errno : (size_t)n != len ? EIO : 0;
	close(fd);
	return -e;
}

int sb_sandbox__userns_child(const sb_child *c)
{
	/*
	 * A caller that switched away from root is not dumpable, which makes its
	 * /proc/self files root-owned and the map files unwritable for it. Be
	 * dumpable just long enough to write them (PID 1 turns it off again).
	 */
	int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (dumpable == 0)
		(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	int r = write_maps(c);
	if (dumpable == 0)
		(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return r;
}

static int write_maps(const sb_child *c)
{
	int r = write_proc("/proc/self/setgroups", c->setgroups);
	/* Kernels before 3.19 have no setgroups file and need no denial. */
	if (r < 0 && r != -ENOENT)
		return sb_sandbox__fail(c->setup_fd, SB_STEP_USERNS, -r, "/proc/self/setgroups",
					NULL);
	r = write_proc("/proc/self/uid_map", c->uid_map);
	if (r < 0)
		return sb_sandbox__fail(c->setup_fd, SB_STEP_USERNS, -r, "/proc/self/uid_map",
					c->uid_map);
	r = write_proc("/proc/self/gid_map", c->gid_map);
	if (r < 0)
		return sb_sandbox__fail(c->setup_fd, SB_STEP_USERNS, -r, "/proc/self/gid_map",
					c->gid_map);
	return 0;
}

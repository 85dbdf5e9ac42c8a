/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mountplan.h"
#include "buf.h"

static const char *const default_secrets[] = {
    ".ssh",
    ".aws",
    ".gnupg",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".config/gcloud",
    ".azure",
    ".pypirc",
    ".npmrc",
    ".config/gh",
    ".config/hub",
    ".vault-token",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".terraform.d/credentials.tfrc.json",
    ".local/share/keyrings",
    ".password-store",
    ".Xauthority",
    ".ICEauthority",
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".history",
    ".python_history",
    ".node_repl_history",
    ".psql_history",
    ".mysql_history",
    ".sqlite_history",
    ".rediscli_history",
    ".lesshst",
    ".local/share/fish/fish_history",
    NULL,
};

/*
 * Without a user namespace the command runs as uid 0 (no capabilities, but
 * the owner of these files), and in a user namespace a root caller's uid 0
 * is mapped to itself: owner permission alone would let it read them.
 * Masked when they exist; a '*' makes the entry a glob(3) pattern.
 */
static const char *const system_secrets[] = {
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/security/opasswd",
    "/etc/ssh/ssh_host_*_key",
    "/etc/ssl/private",
    "/etc/krb5.keytab",
    NULL,
};

/*
 * A read-only mount does not stop connect() on a Unix socket: daemons that
 * act for the user (docker = root, the session bus, ssh/gpg agents under
 * the runtime dir) would be a way out. Masked when they exist.
 */
static const char *const system_sockets[] = {
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd",
    "/run/podman",
    "/run/dbus/system_bus_socket",
    "/run/snapd.socket",
    "/run/snapd-snap.socket",
    "/run/systemd/private",
    "/run/systemd/userdb",
    NULL,
};

const char *const *sb_sandbox_default_secrets(void)
{
	return default_secrets;
}

const char *const *sb_sandbox_system_secrets(void)
{
	return system_secrets;
}

/* ---- parent side: building ---- */

static const char *keep(sb_mountplan *p, char *s)
{
	if (!s)
		return NULL;
	char **v = sb_grow(p->strs, &p->cap_strs, p->n_strs, sizeof(*v), 32);
	if (!v) {
		free(s);
		return NULL;
	}
	p->strs = v;
	p->strs[p->n_strs++] = s;
	return s;
}

static const char *join(sb_mountplan *p, const char *prefix, const char *path)
{
	size_t a = strlen(prefix), b = strlen(path);
	if (b == 1 && path[0] == '/')
		b = 0; /* "/newroot" + "/" is the new root itself */
	char *s = malloc(a + b + 1);
	if (!s)
		return NULL;
	memcpy(s, prefix, a);
	memcpy(s + a, path, b);
	s[a + b] = 0;
	return keep(p, s);
}

static int add(sb_mountplan *p, sb_mop_kind kind, unsigned flags, uint64_t attr,
	       unsigned long mflags, const char *src, const char *dst, const char *data,
	       const char *what)
{
	if (!dst || (src == NULL && (kind == SB_MOP_BIND || kind == SB_MOP_SYMLINK)))
		return -ENOMEM; /* a failed join() */
	sb_mop *v = sb_grow(p->ops, &p->cap, p->n, sizeof(*v), 64);
	if (!v)
		return -ENOMEM;
	p->ops = v;
	p->ops[p->n++] = (sb_mop){kind, flags, attr, mflags, src, dst, data, what};
	return 0;
}

/* A host path as a bind source (under /oldroot) and the same path as a target. */
static int add_bind(sb_mountplan *p, const char *host, const char *inside, unsigned flags,
		    uint64_t attr, const char *what)
{
	return add(p, SB_MOP_BIND, flags, attr, 0, join(p, SB_OLDROOT, host),
		   join(p, SB_NEWROOT, inside), NULL, what);
}

static bool under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n == 1 && prefix[0] == '/')
		return true;
	return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* Paths whose parent the plan mounts fresh, so a mount point may be created. */
static bool in_fresh_tmpfs(const char *path)
{
	return under(path, "/tmp") || under(path, "/dev/shm");
}

static bool in_forbidden(const char *path)
{
	return (under(path, "/dev") && !under(path, "/dev/shm")) || under(path, "/proc");
}

void sb_mountplan_free(sb_mountplan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_strs; i++)
		free(p->strs[i]);
	free(p->strs);
	free(p->ops);
	free(p->io_buf);
	free(p->mp_buf);
	free(p);
}

static void freep(sb_mountplan **p)
{
	sb_mountplan_free(*p);
}

static int canonical(sb_mountplan *p, const char *what, const char *path, const char **ret,
		     sb_error *err)
{
	if (!path || path[0] != '/')
		return sb_error_set(err, EINVAL, "%s '%s' is not an absolute path", what,
				    path ? path : "(null)");
	char *c = realpath(path, NULL);
	if (!c)
		return sb_error_errno(err, errno, "%s '%s'", what, path);
	if (!keep(p, c))
		return sb_error_errno(err, ENOMEM, "%s '%s'", what, path);
	*ret = c;
	return 0;
}

static int plan_dev(sb_mountplan *p)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const char *const links[][2] = {
	    {"pts/ptmx", "/dev/ptmx"},		{"/proc/self/fd", "/dev/fd"},
	    {"/proc/self/fd/0", "/dev/stdin"},	{"/proc/self/fd/1", "/dev/stdout"},
	    {"/proc/self/fd/2", "/dev/stderr"},
	};
	int r = add(p, SB_MOP_TMPFS, 0, 0, MS_NOSUID | MS_NOEXEC, NULL, join(p, SB_NEWROOT, "/dev"),
		    "mode=0755", "tmpfs");
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(nodes); i++) {
		char path[32];
		snprintf(path, sizeof(path), "/dev/%s", nodes[i]);
		const char *dst = join(p, SB_NEWROOT, path);
		r = add(p, SB_MOP_MKFILE, 0, 0, 0, NULL, dst, NULL, "device node");
		if (r >= 0)
			r = add(p, SB_MOP_BIND, SB_MOP_OPTIONAL,
				MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0, join(p, SB_OLDROOT, path),
				dst, NULL, "bind");
	}
	if (r >= 0)
		r = add(p, SB_MOP_MKDIR_P, 0, 0, 0, NULL, join(p, SB_NEWROOT, "/dev/pts"), NULL,
			"mkdir");
	if (r >= 0)
		r = add(p, SB_MOP_MKDIR_P, 0, 0, 0, NULL, join(p, SB_NEWROOT, "/dev/shm"), NULL,
			"mkdir");
	if (r >= 0)
		r = add(p, SB_MOP_DEVPTS, 0, 0, MS_NOSUID | MS_NOEXEC, NULL,
			join(p, SB_NEWROOT, "/dev/pts"), "newinstance,ptmxmode=0666,mode=620",
			"devpts");
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(links); i++)
		r = add(p, SB_MOP_SYMLINK, 0, 0, 0, links[i][0], join(p, SB_NEWROOT, links[i][1]),
			NULL, "symlink");
	if (r >= 0)
		r = add(p, SB_MOP_TMPFS, 0, 0, MS_NOSUID | MS_NODEV, NULL,
			join(p, SB_NEWROOT, "/dev/shm"), "mode=1777", "tmpfs");
	if (r >= 0)
		r = add(p, SB_MOP_REMOUNT, 0,
			MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0, NULL,
			join(p, SB_NEWROOT, "/dev"), NULL, "read-only remount");
	return r;
}

/*
 * Without a user namespace the command runs as uid 0 (with no capabilities),
 * and root-owned files under /proc/sys or /proc/sysrq-trigger would still be
 * writable by owner permission: make them read-only, as Docker does.
 */
static int plan_proc(sb_mountplan *p)
{
	static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq",
					 "/proc/bus"};
	static const char *const masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
					     "/proc/sched_debug"};
	int r = add(p, SB_MOP_PROC, 0, 0, MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
		    join(p, SB_NEWROOT, "/proc"), NULL, "proc");
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(ro); i++) {
		const char *dst = join(p, SB_NEWROOT, ro[i]);
		r = add(p, SB_MOP_BIND, SB_MOP_OPTIONAL | SB_MOP_REC,
			MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
			    MOUNT_ATTR_NOEXEC,
			0, dst, dst, NULL, "read-only bind");
	}
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(masked); i++)
		r = add(p, SB_MOP_BIND, SB_MOP_OPTIONAL, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0,
			join(p, SB_OLDROOT, "/dev/null"), join(p, SB_NEWROOT, masked[i]), NULL,
			"mask");
	return r;
}

/* Creates the mount point for path when it lies in a tmpfs the plan made. */
static int plan_mountpoint(sb_mountplan *p, const char *path, bool dir)
{
	if (!in_fresh_tmpfs(path))
		return 0;
	if (dir)
		return add(p, SB_MOP_MKDIR_P, 0, 0, 0, NULL, join(p, SB_NEWROOT, path), NULL,
			   "mkdir");
	char *parent = strdup(path);
	if (!keep(p, parent))
		return -ENOMEM;
	*strrchr(parent, '/') = 0;
	int r = parent[0] ? add(p, SB_MOP_MKDIR_P, 0, 0, 0, NULL, join(p, SB_NEWROOT, parent), NULL,
				"mkdir")
			  : 0;
	if (r >= 0)
		r = add(p, SB_MOP_MKFILE, 0, 0, 0, NULL, join(p, SB_NEWROOT, path), NULL, "mkfile");
	return r;
}

static int plan_mask(sb_mountplan *p, const char *path, const char *what)
{
	char *c = realpath(path, NULL);
	if (!c)
		return 0; /* nothing there (or a dangling link): nothing to hide */
	if (!keep(p, c))
		return -ENOMEM;
	struct stat st;
	if (lstat(c, &st) < 0)
		return 0;
	if (S_ISDIR(st.st_mode))
		return add(p, SB_MOP_TMPFS, SB_MOP_OPTIONAL, 0,
			   MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
			   join(p, SB_NEWROOT, c), "size=4k,nr_inodes=8,mode=0755", what);
	return add(p, SB_MOP_BIND, SB_MOP_OPTIONAL, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0,
		   join(p, SB_OLDROOT, "/dev/null"), join(p, SB_NEWROOT, c), NULL, what);
}

/* A bind that names the secret or something inside it was asked for on purpose. */
static bool exposed_by_bind(const sb_sandbox_config *cfg, const char *const *bind_paths,
			    const char *secret)
{
	for (size_t i = 0; i < cfg->n_binds; i++)
		if (bind_paths[i] && under(bind_paths[i], secret))
			return true;
	return false;
}

/* A secret is masked where it really is, unless a bind exposes it on purpose. */
static int plan_secret(sb_mountplan *p, const sb_sandbox_config *cfg, const char *const *bind_paths,
		       const char *path)
{
	_cleanup_free_ char *c = realpath(path, NULL);
	if (!c || exposed_by_bind(cfg, bind_paths, c))
		return 0;
	return plan_mask(p, c, "mask");
}

static int plan_system_secrets(sb_mountplan *p, const sb_sandbox_config *cfg,
			       const char *const *bind_paths)
{
	int r = 0;
	for (size_t i = 0; r >= 0 && system_secrets[i]; i++) {
		if (!strchr(system_secrets[i], '*')) {
			r = plan_secret(p, cfg, bind_paths, system_secrets[i]);
			continue;
		}
		glob_t g = {0};
		int gr = glob(system_secrets[i], GLOB_NOSORT, NULL, &g);
		if (gr == GLOB_NOSPACE)
			r = -ENOMEM;
		/*
		 * GLOB_ABORTED: a directory the supervisor cannot read, so nor
		 * can the command, which runs with no more rights than it.
		 */
		for (size_t k = 0; gr == 0 && r >= 0 && k < g.gl_pathc; k++)
			r = plan_secret(p, cfg, bind_paths, g.gl_pathv[k]);
		globfree(&g);
	}
	return r;
}

static int plan_secrets(sb_mountplan *p, const sb_sandbox_config *cfg,
			const char *const *bind_paths)
{
	const char *home = cfg->home ? cfg->home : getenv("HOME");
	int r = 0;
	if (home && home[0] == '/') {
		char *real_home = realpath(home, NULL);
		for (size_t i = 0; r >= 0 && real_home && default_secrets[i]; i++) {
			size_t n = strlen(real_home) + strlen(default_secrets[i]) + 2;
			char *path = malloc(n);
			if (!path) {
				r = -ENOMEM;
				break;
			}
			snprintf(path, n, "%s/%s", real_home, default_secrets[i]);
			r = plan_secret(p, cfg, bind_paths, path);
			free(path);
		}
		free(real_home);
	}
	if (r >= 0)
		r = plan_system_secrets(p, cfg, bind_paths);
	for (size_t i = 0; r >= 0 && system_sockets[i]; i++)
		r = plan_mask(p, system_sockets[i], "mask");
	char runtime[64];
	snprintf(runtime, sizeof(runtime), "/run/user/%u", (unsigned)getuid());
	if (r >= 0)
		r = plan_mask(p, runtime, "mask of the runtime directory");
	if (r >= 0 && cfg->store)
		r = plan_mask(p, cfg->store, "mask of the store");
	for (size_t i = 0; r >= 0 && i < cfg->n_hide; i++) {
		if (!cfg->hide[i] || cfg->hide[i][0] != '/')
			return -EINVAL;
		r = plan_mask(p, cfg->hide[i], "mask");
	}
	return r;
}

static int plan_workspace(sb_mountplan *p, const sb_sandbox_config *cfg, const char *ws,
			  sb_error *err)
{
	if (strcmp(ws, "/") == 0 || in_forbidden(ws))
		return sb_error_set(err, EINVAL, "workspace '%s' cannot be mounted in the sandbox",
				    ws);
	int r = plan_mountpoint(p, ws, true);
	if (r < 0)
		return sb_error_errno(err, -r, "planning mounts");
	if (cfg->workspace_mount) {
		r = add(p, SB_MOP_HOOK, 0, 0, 0, NULL, join(p, SB_NEWROOT, ws), NULL,
			"workspace mount");
	} else if (cfg->workspace_src) {
		const char *src;
		if ((r = canonical(p, "workspace source", cfg->workspace_src, &src, err)) < 0)
			return r;
		r = add_bind(p, src, ws, SB_MOP_REC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, "bind");
	} else if (in_fresh_tmpfs(ws)) {
		r = add_bind(p, ws, ws, SB_MOP_REC,
			     MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
			     "read-only bind");
	}
	return r < 0 ? sb_error_errno(err, -r, "planning mounts") : 0;
}

int sb_mountplan_new(const sb_sandbox_config *cfg, bool userns, sb_mountplan **ret, sb_error *err)
{
	_cleanup_(freep) sb_mountplan *p = calloc(1, sizeof(*p));
	if (!p)
		return sb_error_errno(err, ENOMEM, "mount plan");
	p->userns = userns;
	p->classic = cfg->flags & SB_SANDBOX_CLASSIC_MOUNT;
	p->hook = cfg->workspace_mount;
	p->hook_data = cfg->workspace_mount_data;
	p->hook_fd = -1;
	p->io_size = 64 * 1024;
	p->io_buf = malloc(p->io_size);
	p->mp_buf = malloc(PATH_MAX + 1);
	if (!p->io_buf || !p->mp_buf)
		return sb_error_errno(err, ENOMEM, "mount plan");

	const char *ws = NULL;
	int r;
	if (cfg->workspace && (r = canonical(p, "workspace", cfg->workspace, &ws, err)) < 0)
		return r;
	_cleanup_free_ const char **bind_paths = calloc(cfg->n_binds + 1, sizeof(char *));
	if (!bind_paths)
		return sb_error_errno(err, ENOMEM, "mount plan");
	for (size_t i = 0; i < cfg->n_binds; i++) {
		if ((r = canonical(p, cfg->binds[i].writable ? "--rw" : "--ro", cfg->binds[i].path,
				   &bind_paths[i], err)) < 0)
			return r;
		if (in_forbidden(bind_paths[i]) || strcmp(bind_paths[i], "/") == 0)
			return sb_error_set(err, EINVAL, "cannot bind '%s' into the sandbox",
					    bind_paths[i]);
	}

	r = add(p, SB_MOP_BIND, SB_MOP_REC,
		MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, SB_OLDROOT, SB_NEWROOT,
		NULL, "read-only bind of the host root");
	if (r >= 0)
		r = add(p, SB_MOP_TMPFS, 0, 0, MS_NOSUID | MS_NODEV, NULL,
			join(p, SB_NEWROOT, "/tmp"), "mode=1777", "tmpfs");
	if (r >= 0)
		r = plan_dev(p);
	if (r >= 0)
		r = plan_proc(p);
	if (r < 0)
		return sb_error_errno(err, -r, "planning mounts");
	if (ws && (r = plan_workspace(p, cfg, ws, err)) < 0)
		return r;
	for (size_t i = 0; r >= 0 && i < cfg->n_binds; i++) {
		struct stat st;
		if (stat(bind_paths[i], &st) < 0)
			return sb_error_errno(err, errno, "bind '%s'", bind_paths[i]);
		r = plan_mountpoint(p, bind_paths[i], S_ISDIR(st.st_mode));
		if (r >= 0)
			r = add_bind(p, bind_paths[i], bind_paths[i], SB_MOP_REC,
				     (cfg->binds[i].writable ? 0 : MOUNT_ATTR_RDONLY) |
					 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
				     cfg->binds[i].writable ? "read-write bind" : "read-only bind");
	}
	if (r >= 0)
		r = plan_secrets(p, cfg, bind_paths);
	if (r == -EINVAL)
		return sb_error_set(err, EINVAL, "--hide paths must be absolute");
	if (r < 0)
		return sb_error_errno(err, -r, "planning mounts");
	*ret = TAKE_PTR(p);
	return 0;
}

size_t sb_mountplan_size(const sb_mountplan *p)
{
	return p->n;
}

const char *sb_mountplan_describe(const sb_mountplan *p, size_t i, char *buf, size_t size)
{
	static const char *const kinds[] = {"mkdir",  "mkfile",	 "tmpfs",   "bind", "proc",
					    "devpts", "symlink", "remount", "hook"};
	const sb_mop *o = &p->ops[i];
	snprintf(buf, size, "%s%s%s %s%s%s%s%s%s", kinds[o->kind],
		 (o->flags & SB_MOP_REC) ? " rec" : "",
		 (o->flags & SB_MOP_OPTIONAL) ? " optional" : "", o->src ? o->src : "",
		 o->src ? " -> " : "", o->dst,
		 (o->attr & MOUNT_ATTR_RDONLY) || (o->mflags & MS_RDONLY) ? " ro" : "",
		 o->data ? " " : "", o->data ? o->data : "");
	return buf;
}

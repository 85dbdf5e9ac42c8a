/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "sandbox-internal.h"
#include "buf.h"

extern char **environ;

static const char *const allowed[] = {
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ",
};

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool key_allowed(const char *kv, size_t klen)
{
	if (klen > 3 && memcmp(kv, "LC_", 3) == 0)
		return true;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (strlen(allowed[i]) == klen && memcmp(kv, allowed[i], klen) == 0)
			return true;
	return false;
}

typedef struct envv {
	char **v;
	size_t n, cap;
} envv;

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Sets (replacing an earlier entry with the same key) a copy of kv. */
static int envv_set(envv *e, const char *kv, size_t kv_len)
{
	size_t klen = key_len(kv);
	char *copy = strndup(kv, kv_len);
	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < e->n; i++)
		if (key_len(e->v[i]) == klen && memcmp(e->v[i], kv, klen) == 0) {
			free(e->v[i]);
			e->v[i] = copy;
			return 0;
		}
	char **v = sb_grow(e->v, &e->cap, e->n + 1, sizeof(*v), 16); /* and the NULL */
	if (!v) {
		free(copy);
		return -ENOMEM;
	}
	e->v = v;
	e->v[e->n++] = copy;
	e->v[e->n] = NULL;
	return 0;
}

static const char *base_get(const char *const *base, const char *key, size_t klen)
{
	for (size_t i = 0; base && base[i]; i++)
		if (strncmp(base[i], key, klen) == 0 && base[i][klen] == '=')
			return base[i];
	return NULL;
}

void sb_sandbox__env_free(char **envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		free(envp[i]);
	free(envp);
}

const char *sb_sandbox__env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

int sb_sandbox__env_build(const sb_sandbox_config *cfg, char ***ret_envp, sb_error *err)
{
	const char *const *base = cfg->base_env ? cfg->base_env : (const char *const *)environ;
	envv e = {NULL, 0, 0};
	int r = 0;

	for (size_t i = 0; base && base[i]; i++) {
		size_t klen = key_len(base[i]);
		if (base[i][klen] == '=' && key_allowed(base[i], klen) &&
		    (r = envv_set(&e, base[i], strlen(base[i]))) < 0)
			goto fail;
	}
	if (cfg->home) {
		size_t n = strlen(cfg->home) + 6;
		char *kv = malloc(n);
		if (!kv) {
			r = -ENOMEM;
			goto fail;
		}
		snprintf(kv, n, "HOME=%s", cfg->home);
		r = envv_set(&e, kv, n - 1);
		free(kv);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_env; i++) {
		const char *kv = cfg->env[i];
		size_t klen = kv ? key_len(kv) : 0;
		if (!kv || klen == 0) {
			r = sb_error_set(err, EINVAL, "--env '%s': empty variable name",
					 kv ? kv : "(null)");
			goto fail2;
		}
		if (kv[klen] == '=') {
			r = envv_set(&e, kv, strlen(kv));
		} else {
			const char *from = base_get(base, kv, klen);
			r = from ? envv_set(&e, from, strlen(from)) : 0;
		}
		if (r < 0)
			goto fail;
	}
	if (!sb_sandbox__env_get(e.v, "PATH") &&
	    (r = envv_set(&e, "PATH=" DEFAULT_PATH, strlen("PATH=" DEFAULT_PATH))) < 0)
		goto fail;
	*ret_envp = e.v;
	return 0;
fail:
	sb_error_errno(err, -r, "building the sandbox environment");
fail2:
	sb_sandbox__env_free(e.v);
	return r;
}

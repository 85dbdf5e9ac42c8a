/* SPDX-License-Identifier: MIT */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <linux/seccomp.h>

#include "fileio.h"
#include "seccomp-internal.h"

#define PROFILE_MAX  (4u << 20)
#define JSON_INT_MAX 9007199254740992.0 /* 2^53: every integer up to here is exact */
#define MAX_ARGS     6

#if defined(__x86_64__)
#define GO_ARCH "amd64"
#elif defined(__i386__)
#define GO_ARCH "386"
#elif defined(__aarch64__)
#define GO_ARCH "arm64"
#elif defined(__arm__)
#define GO_ARCH "arm"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define GO_ARCH "ppc64le"
#elif defined(__s390x__)
#define GO_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define GO_ARCH "riscv64"
#elif defined(__loongarch64)
#define GO_ARCH "loong64"
#else
#define GO_ARCH "unknown"
#endif

struct oci {
	char qname[256];     /* the profile's name, quoted for messages */
	scmp_filter_ctx ctx; /* native architecture */
	scmp_filter_ctx sub; /* the other architectures of the profile, or NULL */
	uint32_t default_action;
	unsigned filter_flags;
	size_t rules;
	char **warnings;
	size_t n_warnings;
	unsigned kernel_major, kernel_minor;
	sb_error *err;
};

static int oci_fail(struct oci *o, int code, const char *path, const char *fmt, ...) _printf_(4, 5);
static int oci_fail(struct oci *o, int code, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sb_error_set(o->err, code, "seccomp profile '%s': %s: %s", o->qname, path, msg);
}

static int oci_warn(struct oci *o, const char *path, const char *fmt, ...) _printf_(3, 4);
static int oci_warn(struct oci *o, const char *path, const char *fmt, ...)
{
	char msg[512], *w = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char **n = realloc(o->warnings, (o->n_warnings + 1) * sizeof(*n));
	if (!n)
		return sb_error_errno(o->err, ENOMEM, "seccomp profile '%s'", o->qname);
	o->warnings = n;
	if (asprintf(&w, "seccomp profile '%s': %s: %s", o->qname, path, msg) < 0)
		return sb_error_errno(o->err, ENOMEM, "seccomp profile '%s'", o->qname);
	o->warnings[o->n_warnings++] = w;
	return 0;
}

static void oci_release(struct oci *o)
{
	if (o->ctx)
		seccomp_release(o->ctx);
	if (o->sub)
		seccomp_release(o->sub);
	for (size_t i = 0; i < o->n_warnings; i++)
		free(o->warnings[i]);
	free(o->warnings);
}

static int get_u64(struct oci *o, const cJSON *item, const char *path, uint64_t max, uint64_t *ret)
{
	if (!cJSON_IsNumber(item))
		return oci_fail(o, EINVAL, path, "expected a number");
	double d = item->valuedouble;
	if (!(d >= 0 && d <= JSON_INT_MAX) || (double)(uint64_t)d != d)
		return oci_fail(o, EINVAL, path, "expected an integer between 0 and 2^53");
	if ((uint64_t)d > max)
		return oci_fail(o, EINVAL, path, "%.0f is more than %llu", d,
				(unsigned long long)max);
	*ret = (uint64_t)d;
	return 0;
}

static const char *get_str(const cJSON *item)
{
	return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* errno_item is the errnoRet next to the action (may be NULL: EPERM, as runc does). */
static int parse_action(struct oci *o, const cJSON *item, const cJSON *errno_item,
			uint64_t errno_default, const char *path, uint32_t *ret)
{
	const char *s = get_str(item);
	uint64_t e = errno_default;
	int r;

	if (!s)
		return oci_fail(o, EINVAL, path, "expected an action string (SCMP_ACT_...)");
	if (errno_item && !cJSON_IsNull(errno_item)) {
		char p[256];
		snprintf(p, sizeof(p), "%.200s(errnoRet)", path);
		r = get_u64(o, errno_item, p, 4095, &e);
		if (r < 0)
			return r;
	}
	if (strcmp(s, "SCMP_ACT_ALLOW") == 0)
		*ret = SCMP_ACT_ALLOW;
	else if (strcmp(s, "SCMP_ACT_ERRNO") == 0)
		*ret = SCMP_ACT_ERRNO((uint32_t)e);
	else if (strcmp(s, "SCMP_ACT_KILL") == 0 || strcmp(s, "SCMP_ACT_KILL_THREAD") == 0)
		*ret = SCMP_ACT_KILL_THREAD;
	else if (strcmp(s, "SCMP_ACT_KILL_PROCESS") == 0)
		*ret = SCMP_ACT_KILL_PROCESS;
	else if (strcmp(s, "SCMP_ACT_TRAP") == 0)
		*ret = SCMP_ACT_TRAP;
	else if (strcmp(s, "SCMP_ACT_TRACE") == 0)
		*ret = SCMP_ACT_TRACE((uint32_t)e);
	else if (strcmp(s, "SCMP_ACT_LOG") == 0)
		*ret = SCMP_ACT_LOG;
	else if (strcmp(s, "SCMP_ACT_NOTIFY") == 0)
		return oci_fail(
		    o, EOPNOTSUPP, path,
		    "SCMP_ACT_NOTIFY needs a seccomp agent, which snapbox does not run");
	else
		return oci_fail(o, EINVAL, path, "unknown action \"%.64s\"", s);
	return 0;
}

static int parse_op(struct oci *o, const cJSON *item, const char *path, enum scmp_compare *ret)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
	    {"SCMP_CMP_NE", SCMP_CMP_NE},
	    {"SCMP_CMP_LT", SCMP_CMP_LT},
	    {"SCMP_CMP_LE", SCMP_CMP_LE},
	    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
	    {"SCMP_CMP_GE", SCMP_CMP_GE},
	    {"SCMP_CMP_GT", SCMP_CMP_GT},
	    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
	};
	const char *s = get_str(item);

	if (!s)
		return oci_fail(o, EINVAL, path, "expected an operator string (SCMP_CMP_...)");
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (strcmp(s, ops[i].name) == 0) {
			*ret = ops[i].op;
			return 0;
		}
	return oci_fail(o, EINVAL, path, "unknown operator \"%.64s\"", s);
}

/* "SCMP_ARCH_X86_64" -> libseccomp's token, 0 when unknown. */
static uint32_t arch_token(const char *s)
{
	char name[32];
	size_t i;

	if (!s || strncmp(s, "SCMP_ARCH_", 10) != 0)
		return 0;
	s += 10;
	for (i = 0; s[i] && i + 1 < sizeof(name); i++)
		name[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
	if (s[i])
		return 0;
	name[i] = 0;
	return seccomp_arch_resolve_name(name);
}

static int add_arch(struct oci *o, const cJSON *item, const char *path)
{
	uint32_t tok = arch_token(get_str(item));
	int r;

	if (!get_str(item))
		return oci_fail(o, EINVAL, path, "expected an architecture string (SCMP_ARCH_...)");
	if (tok == 0)
		return oci_warn(o, path, "unknown architecture \"%.64s\", ignored", get_str(item));
	if (tok == seccomp_arch_native())
		return 0;
	if (!o->sub) {
		o->sub = seccomp_init(o->default_action);
		if (!o->sub)
			return sb_error_set(o->err, ENOMEM, "seccomp_init failed");
		r = seccomp_attr_set(o->sub, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
		if (r >= 0)
			r = seccomp_attr_set(o->sub, SCMP_FLTATR_CTL_NNP, 0);
		if (r >= 0)
			r = seccomp_arch_remove(o->sub, seccomp_arch_native());
		if (r < 0)
			return sb_error_errno(o->err, -r, "seccomp profile '%s': architectures",
					      o->qname);
	}
	r = seccomp_arch_add(o->sub, tok);
	if (r < 0 && r != -EEXIST)
		return oci_fail(o, -r, path, "cannot add architecture \"%.64s\": %s", get_str(item),
				strerror(-r));
	return 0;
}

static int parse_arches(struct oci *o, const cJSON *root)
{
	const cJSON *arches = cJSON_GetObjectItemCaseSensitive(root, "architectures");
	const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "archMap");
	const cJSON *a;
	char path[128];
	size_t i = 0;
	int r;

	if (arches && !cJSON_IsNull(arches)) {
		if (!cJSON_IsArray(arches))
			return oci_fail(o, EINVAL, "architectures", "expected an array");
		cJSON_ArrayForEach (a, arches) {
			snprintf(path, sizeof(path), "architectures[%zu]", i++);
			r = add_arch(o, a, path);
			if (r < 0)
				return r;
		}
	}
	if (!map || cJSON_IsNull(map))
		return 0;
	if (!cJSON_IsArray(map))
		return oci_fail(o, EINVAL, "archMap", "expected an array");
	/* Docker's reading: the entry of the native architecture brings its sub-architectures. */
	cJSON_ArrayForEach (a, map) {
		const cJSON *main = cJSON_GetObjectItemCaseSensitive(a, "architecture");
		const cJSON *subs = cJSON_GetObjectItemCaseSensitive(a, "subArchitectures");
		const cJSON *s;
		size_t k = 0;

		snprintf(path, sizeof(path), "archMap[%zu].architecture", i);
		if (!cJSON_IsObject(a) || !get_str(main))
			return oci_fail(o, EINVAL, path, "expected an architecture string");
		if (arch_token(get_str(main)) != seccomp_arch_native()) {
			i++;
			continue;
		}
		if (subs && !cJSON_IsNull(subs) && !cJSON_IsArray(subs)) {
			snprintf(path, sizeof(path), "archMap[%zu].subArchitectures", i);
			return oci_fail(o, EINVAL, path, "expected an array");
		}
		cJSON_ArrayForEach (s, subs) {
			snprintf(path, sizeof(path), "archMap[%zu].subArchitectures[%zu]", i, k++);
			r = add_arch(o, s, path);
			if (r < 0)
				return r;
		}
		i++;
	}
	return 0;
}

static bool str_in_array(const cJSON *arr, const char *s)
{
	const cJSON *a;
	cJSON_ArrayForEach (a, arr) {
		if (get_str(a) && strcmp(get_str(a), s) == 0)
			return true;
	}
	return false;
}

static bool array_nonempty(const cJSON *arr)
{
	return cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0;
}

/*
 * Docker's includes/excludes. The sandbox keeps no capabilities, so a rule
 * that needs one is dropped and one excluded by one stays.
 */
static int rule_applies(struct oci *o, const cJSON *rule, const char *path, bool *ret)
{
	const cJSON *inc = cJSON_GetObjectItemCaseSensitive(rule, "includes");
	const cJSON *exc = cJSON_GetObjectItemCaseSensitive(rule, "excludes");

	*ret = false;
	if (inc && cJSON_IsObject(inc)) {
		const cJSON *arches = cJSON_GetObjectItemCaseSensitive(inc, "arches");
		const cJSON *kern = cJSON_GetObjectItemCaseSensitive(inc, "minKernel");
		if (array_nonempty(cJSON_GetObjectItemCaseSensitive(inc, "caps")))
			return 0;
		if (array_nonempty(arches) && !str_in_array(arches, GO_ARCH))
			return 0;
		if (kern && !cJSON_IsNull(kern)) {
			unsigned maj = 0, min = 0;
			char p[256];
			if (!get_str(kern) || sscanf(get_str(kern), "%u.%u", &maj, &min) < 1) {
				snprintf(p, sizeof(p), "%.200s.includes.minKernel", path);
				return oci_fail(o, EINVAL, p, "expected a version like \"5.8\"");
			}
			if (o->kernel_major < maj ||
			    (o->kernel_major == maj && o->kernel_minor < min))
				return 0;
		}
	}
	if (exc && cJSON_IsObject(exc)) {
		const cJSON *arches = cJSON_GetObjectItemCaseSensitive(exc, "arches");
		if (array_nonempty(arches) && str_in_array(arches, GO_ARCH))
			return 0;
	}
	*ret = true;
	return 0;
}

static int add_one(struct oci *o, const char *name, const char *path, uint32_t action, unsigned n,
		   const struct scmp_arg_cmp *cmp, bool *warned_native)
{
	bool native_only;
	int nr = sb_seccomp__resolve(name, &native_only);
	int r;

	if (nr == __NR_SCMP_ERROR)
		return oci_warn(o, path, "unknown syscall \"%.64s\", rule skipped", name);
	r = seccomp_rule_add_array(o->ctx, action, nr, n, cmp);
	if (r < 0)
		return oci_fail(o, -r, path, "libseccomp refused the rule for \"%.64s\": %s", name,
				strerror(-r));
	if (o->sub && !native_only) {
		r = seccomp_rule_add_array(o->sub, action, nr, n, cmp);
		if (r < 0)
			return oci_fail(o, -r, path,
					"libseccomp refused the rule for \"%.64s\": %s", name,
					strerror(-r));
	} else if (o->sub && !*warned_native) {
		*warned_native = true;
		r = oci_warn(o, path,
			     "\"%.64s\" is newer than libseccomp: filtered for the native "
			     "architecture only",
			     name);
		if (r < 0)
			return r;
	}
	o->rules++;
	return 0;
}

static int parse_rule(struct oci *o, const cJSON *rule, size_t idx)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(rule, "names");
	const cJSON *name1 = cJSON_GetObjectItemCaseSensitive(rule, "name");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(rule, "args");
	struct scmp_arg_cmp cmp[MAX_ARGS];
	unsigned n_cmp = 0, seen = 0;
	bool repeated = false, applies, warned_native = false;
	char path[256];
	uint32_t action;
	int r;

	snprintf(path, sizeof(path), "syscalls[%zu]", idx);
	if (!cJSON_IsObject(rule))
		return oci_fail(o, EINVAL, path, "expected an object");
	r = rule_applies(o, rule, path, &applies);
	if (r < 0 || !applies)
		return r;
	snprintf(path, sizeof(path), "syscalls[%zu].action", idx);
	r = parse_action(o, cJSON_GetObjectItemCaseSensitive(rule, "action"),
			 cJSON_GetObjectItemCaseSensitive(rule, "errnoRet"), EPERM, path, &action);
	if (r < 0)
		return r;

	if (args && !cJSON_IsNull(args)) {
		const cJSON *a;
		snprintf(path, sizeof(path), "syscalls[%zu].args", idx);
		if (!cJSON_IsArray(args))
			return oci_fail(o, EINVAL, path, "expected an array");
		if (cJSON_GetArraySize(args) > MAX_ARGS)
			return oci_fail(o, EINVAL, path, "more than %d conditions", MAX_ARGS);
		cJSON_ArrayForEach (a, args) {
			uint64_t index = 0, value = 0, value2 = 0;
			enum scmp_compare op = SCMP_CMP_EQ;

			snprintf(path, sizeof(path), "syscalls[%zu].args[%u]", idx, n_cmp);
			if (!cJSON_IsObject(a))
				return oci_fail(o, EINVAL, path, "expected an object");
			snprintf(path, sizeof(path), "syscalls[%zu].args[%u].index", idx, n_cmp);
			r = get_u64(o, cJSON_GetObjectItemCaseSensitive(a, "index"), path,
				    MAX_ARGS - 1, &index);
			if (r < 0)
				return r;
			snprintf(path, sizeof(path), "syscalls[%zu].args[%u].value", idx, n_cmp);
			r = get_u64(o, cJSON_GetObjectItemCaseSensitive(a, "value"), path,
				    UINT64_MAX, &value);
			if (r < 0)
				return r;
			const cJSON *v2 = cJSON_GetObjectItemCaseSensitive(a, "valueTwo");
			if (v2 && !cJSON_IsNull(v2)) {
				snprintf(path, sizeof(path), "syscalls[%zu].args[%u].valueTwo", idx,
					 n_cmp);
				r = get_u64(o, v2, path, UINT64_MAX, &value2);
				if (r < 0)
					return r;
			}
			snprintf(path, sizeof(path), "syscalls[%zu].args[%u].op", idx, n_cmp);
			r = parse_op(o, cJSON_GetObjectItemCaseSensitive(a, "op"), path, &op);
			if (r < 0)
				return r;
			if (seen & (1u << index))
				repeated = true;
			seen |= 1u << index;
			/* OCI: for MASKED_EQ, value is the mask and valueTwo the datum. */
			cmp[n_cmp++] = (struct scmp_arg_cmp){
			    .arg = (unsigned)index, .op = op, .datum_a = value, .datum_b = value2};
		}
	}

	/* The default already does this; libseccomp would refuse it (runc skips it too). */
	if (action == o->default_action)
		return 0;

	const cJSON *list = names;
	if (!list || cJSON_IsNull(list)) {
		if (!get_str(name1)) {
			snprintf(path, sizeof(path), "syscalls[%zu]", idx);
			return oci_fail(o, EINVAL, path, "has neither \"names\" nor \"name\"");
		}
		list = NULL;
	} else if (!cJSON_IsArray(list)) {
		snprintf(path, sizeof(path), "syscalls[%zu].names", idx);
		return oci_fail(o, EINVAL, path, "expected an array of syscall names");
	}

	size_t k = 0;
	const cJSON *nm = list ? list->child : name1;
	for (; nm; nm = list ? nm->next : NULL, k++) {
		const char *sys = get_str(nm);
		if (list)
			snprintf(path, sizeof(path), "syscalls[%zu].names[%zu]", idx, k);
		else
			snprintf(path, sizeof(path), "syscalls[%zu].name", idx);
		if (!sys)
			return oci_fail(o, EINVAL, path, "expected a syscall name");
		if (!repeated) {
			r = add_one(o, sys, path, action, n_cmp, cmp, &warned_native);
			if (r < 0)
				return r;
			continue;
		}
		/*
		 * Two conditions on one argument: libseccomp takes one per rule,
		 * so each becomes its own rule (OR), as runc reads such profiles.
		 */
		for (unsigned c = 0; c < n_cmp; c++) {
			r = add_one(o, sys, path, action, 1, &cmp[c], &warned_native);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int parse_flags(struct oci *o, const cJSON *flags)
{
	const cJSON *f;
	char path[64];
	size_t i = 0;

	if (!flags || cJSON_IsNull(flags))
		return 0;
	if (!cJSON_IsArray(flags))
		return oci_fail(o, EINVAL, "flags", "expected an array");
	cJSON_ArrayForEach (f, flags) {
		const char *s = get_str(f);
		snprintf(path, sizeof(path), "flags[%zu]", i++);
		if (!s)
			return oci_fail(o, EINVAL, path, "expected a flag string");
		if (strcmp(s, "SECCOMP_FILTER_FLAG_LOG") == 0)
			o->filter_flags |= SECCOMP_FILTER_FLAG_LOG;
		else if (strcmp(s, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
			o->filter_flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
		else if (strcmp(s, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
			continue; /* the child is single-threaded: nothing to sync */
		else
			return oci_fail(o, EINVAL, path, "unsupported flag \"%.64s\"", s);
	}
	return 0;
}

static void line_col(const char *json, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (json[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int parse_profile(struct oci *o, const char *json, size_t len)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	uint64_t def_errno = EPERM;
	int r;

	if (!root) {
		unsigned line, col;
		size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
		line_col(json, off, &line, &col);
		return sb_error_set(o->err, EINVAL,
				    "seccomp profile '%s': not valid JSON at line %u, column %u",
				    o->qname, line, col);
	}
	if (!cJSON_IsObject(root)) {
		r = oci_fail(o, EINVAL, "$", "expected a JSON object");
		goto out;
	}
	const cJSON *de = cJSON_GetObjectItemCaseSensitive(root, "defaultErrnoRet");
	if (de && !cJSON_IsNull(de)) {
		r = get_u64(o, de, "defaultErrnoRet", 4095, &def_errno);
		if (r < 0)
			goto out;
	}
	const cJSON *da = cJSON_GetObjectItemCaseSensitive(root, "defaultAction");
	if (!da) {
		r = oci_fail(o, EINVAL, "defaultAction", "missing");
		goto out;
	}
	r = parse_action(o, da, NULL, def_errno, "defaultAction", &o->default_action);
	if (r < 0)
		goto out;
	const char *lp = get_str(cJSON_GetObjectItemCaseSensitive(root, "listenerPath"));
	if (lp && *lp) {
		r = oci_fail(o, EOPNOTSUPP, "listenerPath", "seccomp agents are not supported");
		goto out;
	}
	r = parse_flags(o, cJSON_GetObjectItemCaseSensitive(root, "flags"));
	if (r < 0)
		goto out;

	o->ctx = seccomp_init(o->default_action);
	if (!o->ctx) {
		r = sb_error_set(o->err, ENOMEM, "seccomp_init failed");
		goto out;
	}
	r = seccomp_attr_set(o->ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r >= 0)
		r = seccomp_attr_set(o->ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r < 0) {
		r = sb_error_errno(o->err, -r, "seccomp profile '%s': filter attributes", o->qname);
		goto out;
	}
	r = parse_arches(o, root);
	if (r < 0)
		goto out;

	const cJSON *sys = cJSON_GetObjectItemCaseSensitive(root, "syscalls");
	if (sys && !cJSON_IsNull(sys)) {
		const cJSON *rule;
		size_t i = 0;
		if (!cJSON_IsArray(sys)) {
			r = oci_fail(o, EINVAL, "syscalls", "expected an array");
			goto out;
		}
		cJSON_ArrayForEach (rule, sys) {
			r = parse_rule(o, rule, i++);
			if (r < 0)
				goto out;
		}
	}
	if (o->sub) {
		r = seccomp_merge(o->ctx, o->sub);
		if (r < 0) {
			r = sb_error_errno(o->err, -r,
					   "seccomp profile '%s': merging the architectures",
					   o->qname);
			goto out;
		}
		o->sub = NULL; /* merged into ctx, which now owns it */
	}
	r = 0;
out:
	cJSON_Delete(root);
	return r;
}

int sb_seccomp_new_oci_data(const char *name, const char *json, size_t len, sb_seccomp **ret,
			    sb_error *err)
{
	struct oci o = {.err = err};
	struct utsname u;
	const char *base;
	int r;

	if (!name)
		name = "(memory)";
	sb_quote(o.qname, sizeof(o.qname), name, strlen(name));
	if (uname(&u) == 0)
		(void)!sscanf(u.release, "%u.%u", &o.kernel_major, &o.kernel_minor);
	r = parse_profile(&o, json, len);
	if (r < 0) {
		oci_release(&o);
		return r;
	}
	base = strrchr(o.qname, '/');
	base = base ? base + 1 : o.qname;
	r = sb_seccomp__finish(o.ctx, NULL, 0, o.rules, o.filter_flags, "profile", base, o.warnings,
			       o.n_warnings, ret, err);
	o.warnings = NULL;
	o.n_warnings = 0;
	oci_release(&o);
	if (r < 0)
		return sb_error_prefix(err, "seccomp profile '%s'", name);
	return r;
}

int sb_seccomp_new_oci_file(const char *path, sb_seccomp **ret, sb_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	char q[256];
	struct stat st;

	sb_quote(q, sizeof(q), path, strlen(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return sb_error_errno(err, errno, "seccomp profile '%s'", q);
	if (fstat(fd, &st) < 0)
		return sb_error_errno(err, errno, "seccomp profile '%s'", q);
	if (!S_ISREG(st.st_mode))
		return sb_error_set(err, EINVAL, "seccomp profile '%s': not a regular file", q);
	if ((uint64_t)st.st_size > PROFILE_MAX)
		return sb_error_set(err, EFBIG, "seccomp profile '%s': larger than %u bytes", q,
				    PROFILE_MAX);
	data = malloc((size_t)st.st_size + 1);
	if (!data)
		return sb_error_errno(err, ENOMEM, "seccomp profile '%s'", q);
	ssize_t n = sb_read_full(fd, data, (size_t)st.st_size);
	if (n < 0)
		return sb_error_errno(err, (int)-n, "seccomp profile '%s': read", q);
	data[n] = 0;
	return sb_seccomp_new_oci_data(path, data, (size_t)n, ret, err);
}

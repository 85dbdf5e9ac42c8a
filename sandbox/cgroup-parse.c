/* SPDX-License-Identifier: MIT */
/*
 * Parsers for the kernel's cgroup texts (mountinfo, /proc/self/cgroup,
 * keyed and single-number files). Text in, no I/O: the unit tests feed them
 * fixtures from testdata/cgroup.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgroup-internal.h"

static const struct {
	const char *name;
	unsigned bit;
} controller_names[] = {
    {"memory", SB_CG_MEMORY},	{"pids", SB_CG_PIDS},	    {"cpu", SB_CG_CPU},
    {"cpuacct", SB_CG_CPUACCT}, {"freezer", SB_CG_FREEZER}, {"io", SB_CG_IO},
    {"blkio", SB_CG_IO},
};

const char *sb_cgroup_controller_name(unsigned bit)
{
	for (size_t i = 0; i < ARRAY_SIZE(controller_names); i++)
		if (controller_names[i].bit == bit)
			return controller_names[i].name;
	return "?";
}

unsigned sb_cgroup__parse_controllers(const char *text)
{
	unsigned bits = 0;
	const char *p = text;

	while (p && *p) {
		size_t n = strcspn(p, ", \t\n");
		for (size_t i = 0; n > 0 && i < ARRAY_SIZE(controller_names); i++)
			if (strlen(controller_names[i].name) == n &&
			    memcmp(p, controller_names[i].name, n) == 0)
				bits |= controller_names[i].bit;
		p += n;
		p += strspn(p, ", \t\n");
	}
	return bits;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static int unescape_field(const char *s, size_t len, char *buf, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			c = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) |
				   (s[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= size)
			return -ENAMETOOLONG;
		buf[o++] = c;
	}
	buf[o] = 0;
	return 0;
}

int sb_cgroup__parse_mountinfo(const char *text, struct sb_cgroup__mount *out, size_t max,
			       size_t *ret_n)
{
	const char *line = text;
	size_t n = 0;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *f[6];
		size_t flen[6];
		const char *p = line, *end = line + len;

		/* id parent maj:min root mountpoint options ... - fstype source superopts */
		for (int i = 0; i < 6; i++) {
			while (p < end && *p == ' ')
				p++;
			f[i] = p;
			while (p < end && *p != ' ')
				p++;
			flen[i] = (size_t)(p - f[i]);
		}
		const char *sep = NULL;
		for (const char *q = p; q + 2 < end + 1; q++)
			if (q[0] == ' ' && q[1] == '-' && (q + 2 == end || q[2] == ' ')) {
				sep = q + 2;
				break;
			}
		if (len > 0 && (flen[4] == 0 || !sep))
			return -EINVAL;
		if (sep) {
			const char *fs = sep, *src, *opts;
			size_t fslen, optlen;
			while (fs < end && *fs == ' ')
				fs++;
			fslen = strcspn(fs, " \n");
			src = fs + fslen;
			while (src < end && *src == ' ')
				src++;
			src += strcspn(src, " \n");
			opts = src;
			while (opts < end && *opts == ' ')
				opts++;
			optlen = (size_t)(end - opts);
			bool v2 = fslen == 7 && memcmp(fs, "cgroup2", 7) == 0;
			bool v1 = fslen == 6 && memcmp(fs, "cgroup", 6) == 0;
			if ((v1 || v2) && n < max) {
				struct sb_cgroup__mount *m = &out[n];
				char optbuf[512];
				memset(m, 0, sizeof(*m));
				m->v2 = v2;
				if (unescape_field(f[3], flen[3], m->root, sizeof(m->root)) < 0 ||
				    unescape_field(f[4], flen[4], m->point, sizeof(m->point)) < 0)
					return -ENAMETOOLONG;
				if (v1) {
					size_t l = MIN(optlen, sizeof(optbuf) - 1);
					memcpy(optbuf, opts, l);
					optbuf[l] = 0;
					m->controllers = sb_cgroup__parse_controllers(optbuf);
				}
				/* A v1 mount of no controller we use (name=systemd): skip it. */
				if (v2 || m->controllers)
					n++;
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	*ret_n = n;
	return 0;
}

int sb_cgroup__own_path(const char *text, bool v2, unsigned controller, char *buf, size_t size)
{
	const char *line = text;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;

		if (c2) {
			size_t clen = (size_t)(c2 - c1 - 1);
			bool match;
			if (v2) {
				match = clen == 0 && c1 - line == 1 && line[0] == '0';
			} else {
				char list[256];
				size_t l = MIN(clen, sizeof(list) - 1);
				memcpy(list, c1 + 1, l);
				list[l] = 0;
				match =
				    clen > 0 && (sb_cgroup__parse_controllers(list) & controller);
			}
			if (match) {
				size_t plen = len - (size_t)(c2 + 1 - line);
				if (plen + 1 > size)
					return -ENAMETOOLONG;
				memcpy(buf, c2 + 1, plen);
				buf[plen] = 0;
				return 0;
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

int sb_cgroup__keyed(const char *text, const char *key, uint64_t *ret)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (line && *line) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			char *end;
			const char *v = line + klen + 1;
			if (!isdigit((unsigned char)*v))
				return -EBADMSG;
			errno = 0;
			unsigned long long x = strtoull(v, &end, 10);
			if (errno || (*end && *end != '\n'))
				return -EBADMSG;
			*ret = x;
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -ENOENT;
}

int sb_cgroup__number(const char *text, uint64_t *ret)
{
	char *end;

	if (strncmp(text, "max", 3) == 0 && (text[3] == 0 || text[3] == '\n')) {
		*ret = UINT64_MAX;
		return 0;
	}
	if (!isdigit((unsigned char)text[0]))
		return -EBADMSG;
	errno = 0;
	unsigned long long x = strtoull(text, &end, 10);
	if (errno || (*end && *end != '\n'))
		return -EBADMSG;
	*ret = x;
	return 0;
}

int sb_cgroup__dir_in_mount(const struct sb_cgroup__mount *m, const char *cg_path, char *buf,
			    size_t size)
{
	size_t rl = strlen(m->root);
	const char *rel;
	int w;

	if (strcmp(m->root, "/") == 0) {
		rel = cg_path;
	} else if (strncmp(cg_path, m->root, rl) == 0 && (cg_path[rl] == '/' || !cg_path[rl])) {
		rel = cg_path + rl;
	} else {
		return -EXDEV;
	}
	while (*rel == '/')
		rel++;
	if (strstr(rel, "/../") || strncmp(rel, "../", 3) == 0 || strcmp(rel, "..") == 0)
		return -EXDEV;
	w = *rel ? snprintf(buf, size, "%s/%s", m->point, rel)
		 : snprintf(buf, size, "%s", m->point);
	if (w < 0 || (size_t)w >= size)
		return -ENAMETOOLONG;
	return 0;
}

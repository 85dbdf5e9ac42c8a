/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "buf.h"
#include "ignore.h"

typedef struct pattern {
	char *text; /* as written (trimmed), for the manifest */
	char *pat;  /* what is matched: no '!', leading or trailing '/' */
	size_t len;
	bool negate;
	bool dir_only;
	bool basename; /* no '/' inside: match the last component only */
} pattern;

struct sb_ignore {
	pattern *v;
	size_t n, cap;
	size_t n_file; /* v[0 .. n_file) came from the ignore file */
};

int sb_ignore_new(sb_ignore **ret)
{
	sb_ignore *ign = calloc(1, sizeof(*ign));
	if (!ign)
		return -ENOMEM;
	*ret = ign;
	return 0;
}

void sb_ignore_free(sb_ignore *ign)
{
	if (!ign)
		return;
	for (size_t i = 0; i < ign->n; i++) {
		free(ign->v[i].text);
		free(ign->v[i].pat);
	}
	free(ign->v);
	free(ign);
}

size_t sb_ignore_count(const sb_ignore *ign)
{
	return ign ? ign->n : 0;
}

const char *sb_ignore_pattern(const sb_ignore *ign, size_t i)
{
	return ign && i < ign->n ? ign->v[i].text : NULL;
}

/* Length of a bracket expression starting at p[0] == '[', or 0 when unclosed. */
static size_t class_len(const char *p, size_t n)
{
	size_t i = 1;
	if (i < n && (p[i] == '!' || p[i] == '^'))
		i++;
	if (i < n && p[i] == ']')
		i++;
	while (i < n && p[i] != ']') {
		if (p[i] == '\\') {
			i += 2;
			continue;
		}
		if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
			const char *close = memmem(p + i + 2, n - i - 2, ":]", 2);
			if (close) {
				i = (size_t)(close - p) + 2;
				continue;
			}
		}
		i++;
	}
	return i < n ? i + 1 : 0;
}

/* Why a pattern body cannot be used, or NULL. */
static const char *body_problem(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\') {
			if (i + 1 == n)
				return "ends with an unescaped '\\'";
			i++;
		} else if (p[i] == '[') {
			size_t l = class_len(p + i, n - i);
			if (!l)
				return "has an unclosed '['";
			i += l - 1;
		}
	}
	return NULL;
}

/*
 * Parses one line into *ret. Returns 1 for a pattern, 0 for a blank or
 * comment line, -EINVAL (reason in *why) for an unusable one.
 */
static int parse(const char *line, size_t n, pattern *ret, const char **why)
{
	if (n && line[n - 1] == '\r')
		n--;
	/* Trailing spaces go unless the last one is escaped. */
	while (n && line[n - 1] == ' ') {
		size_t bs = 0;
		while (bs < n - 1 && line[n - 2 - bs] == '\\')
			bs++;
		if (bs % 2)
			break;
		n--;
	}
	if (n == 0 || line[0] == '#')
		return 0;
	if (n > SB_IGNORE_PATTERN_MAX) {
		*why = "is too long";
		return -EINVAL;
	}
	if (memchr(line, 0, n)) {
		*why = "contains a NUL byte";
		return -EINVAL;
	}
	pattern pt = {0};
	const char *p = line;
	size_t len = n;
	if (p[0] == '!') {
		pt.negate = true;
		p++;
		len--;
	}
	while (len && p[len - 1] == '/') {
		/* an escaped trailing slash is still a slash: names never hold one */
		pt.dir_only = true;
		len--;
	}
	if (len && p[0] == '/') {
		p++;
		len--;
		pt.basename = false;
	} else {
		pt.basename = !memchr(p, '/', len);
	}
	if (len == 0) {
		*why = "matches nothing";
		return -EINVAL;
	}
	*why = body_problem(p, len);
	if (*why)
		return -EINVAL;
	pt.text = strndup(line, n);
	pt.pat = strndup(p, len);
	if (!pt.text || !pt.pat) {
		free(pt.text);
		free(pt.pat);
		return -ENOMEM;
	}
	pt.len = len;
	*ret = pt;
	return 1;
}

static int insert(sb_ignore *ign, size_t at, const pattern *pt)
{
	pattern *v = sb_grow(ign->v, &ign->cap, ign->n, sizeof(*v), 8);
	if (!v)
		return -ENOMEM;
	ign->v = v;
	memmove(&ign->v[at + 1], &ign->v[at], (ign->n - at) * sizeof(*pt));
	ign->v[at] = *pt;
	ign->n++;
	return 0;
}

int sb_ignore_add(sb_ignore *ign, const char *pattern_text, sb_error *err)
{
	char q[256];
	size_t n = strlen(pattern_text);
	pattern pt;
	const char *why = "is empty or a comment";
	int r = parse(pattern_text, n, &pt, &why);
	if (r == -ENOMEM)
		return r;
	if (r <= 0)
		return sb_error_set(err, EINVAL, "exclude pattern '%s' %s",
				    sb_quote(q, sizeof(q), pattern_text, n), why);
	r = insert(ign, ign->n, &pt);
	if (r < 0) {
		free(pt.text);
		free(pt.pat);
	}
	return r;
}

int sb_ignore_load_file(sb_ignore *ign, int root_fd, const char *name, sb_error *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = sb_read_file_at(root_fd, name, SB_IGNORE_FILE_MAX, &data, &len, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(data + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : len - off;
		pattern pt;
		const char *why;
		r = parse(data + off, n, &pt, &why);
		if (r == -ENOMEM)
			return r;
		if (r > 0) {
			r = insert(ign, ign->n_file, &pt);
			if (r < 0) {
				free(pt.text);
				free(pt.pat);
				return r;
			}
			ign->n_file++;
		}
		off += n + 1;
	}
	return 1;
}

/* Results of one match attempt; the aborts prune hopeless backtracking. */
enum {
	M_MATCH,
	M_NOMATCH,
	M_ABORT_ALL,   /* text ran out: no shorter text can match either */
	M_ABORT_SLASH, /* a '*' met a '/': only an enclosing '**' can help */
};

static bool in_named_class(const char *name, size_t n, uint8_t c)
{
#define IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
	bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z';
	bool digit = c >= '0' && c <= '9';
	if (IS("alpha"))
		return upper || lower;
	if (IS("alnum"))
		return upper || lower || digit;
	if (IS("digit"))
		return digit;
	if (IS("upper"))
		return upper;
	if (IS("lower"))
		return lower;
	if (IS("xdigit"))
		return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	if (IS("space"))
		return c == ' ' || (c >= '\t' && c <= '\r');
	if (IS("blank"))
		return c == ' ' || c == '\t';
	if (IS("punct"))
		return c > ' ' && c < 0x7f && !upper && !lower && !digit;
	if (IS("graph"))
		return c > ' ' && c < 0x7f;
	if (IS("print"))
		return c >= ' ' && c < 0x7f;
	if (IS("cntrl"))
		return c < ' ' || c == 0x7f;
	return false;
#undef IS
}

/* p[0] == '[', plen from class_len(). */
static bool class_match(const char *p, size_t plen, uint8_t c)
{
	size_t i = 1, end = plen - 1;
	bool neg = false, hit = false;
	if (p[i] == '!' || p[i] == '^') {
		neg = true;
		i++;
	}
	bool first = true;
	while (i < end && (first || p[i] != ']')) {
		first = false;
		uint8_t lo;
		if (p[i] == '[' && i + 1 < end && p[i + 1] == ':') {
			const char *close = memmem(p + i + 2, end - i - 2, ":]", 2);
			if (close) {
				if (in_named_class(p + i + 2, (size_t)(close - (p + i + 2)), c))
					hit = true;
				i = (size_t)(close - p) + 2;
				continue;
			}
		}
		if (p[i] == '\\')
			i++;
		lo = (uint8_t)p[i++];
		uint8_t hi = lo;
		if (i + 1 < end && p[i] == '-' && p[i + 1] != ']') {
			i++;
			if (p[i] == '\\')
				i++;
			hi = (uint8_t)p[i++];
		}
		if (c >= lo && c <= hi)
			hit = true;
	}
	return hit != neg;
}

static int wild(const char *pat, const char *p, const char *pe, const char *t, const char *te)
{
	for (; p < pe; p++, t++) {
		if (*p == '*') {
			const char *s = p;
			while (p + 1 < pe && p[1] == '*')
				p++;
			bool dstar =
			    p > s && (s == pat || s[-1] == '/') && (p + 1 == pe || p[1] == '/');
			p++;
			if (p == pe) {
				if (dstar || !memchr(t, '/', (size_t)(te - t)))
					return M_MATCH;
				return M_ABORT_SLASH;
			}
			if (dstar) {
				/* p is at the '/' after "**": zero or more whole components */
				for (const char *x = t;;) {
					int r = wild(pat, p + 1, pe, x, te);
					if (r == M_MATCH || r == M_ABORT_ALL)
						return r;
					const char *sl = memchr(x, '/', (size_t)(te - x));
					if (!sl)
						return M_ABORT_ALL;
					x = sl + 1;
				}
			}
			for (const char *x = t;; x++) {
				int r = wild(pat, p, pe, x, te);
				if (r != M_NOMATCH)
					return r;
				if (x == te)
					return M_ABORT_ALL;
				if (*x == '/')
					return M_ABORT_SLASH;
			}
		}
		if (t == te)
			return M_ABORT_ALL;
		switch (*p) {
		case '?':
			if (*t == '/')
				return M_NOMATCH;
			break;
		case '[': {
			size_t l = class_len(p, (size_t)(pe - p));
			if (!l || *t == '/' || !class_match(p, l, (uint8_t)*t))
				return M_NOMATCH;
			p += l - 1;
			break;
		}
		case '\\':
			p++;
			/* fallthrough */
		default:
			if (*p != *t)
				return M_NOMATCH;
		}
	}
	return t == te ? M_MATCH : M_NOMATCH;
}

static bool pattern_matches(const pattern *pt, const char *path, size_t len, bool is_dir)
{
	if (pt->dir_only && !is_dir)
		return false;
	const char *t = path, *te = path + len;
	if (pt->basename) {
		const char *sl = memrchr(path, '/', len);
		if (sl)
			t = sl + 1;
	}
	return wild(pt->pat, pt->pat, pt->pat + pt->len, t, te) == M_MATCH;
}

bool sb_ignore_match(const sb_ignore *ign, const char *path, size_t len, bool is_dir)
{
	if (!ign || len == 0)
		return false;
	if (!is_dir && len == sizeof(SB_IGNORE_FILE) - 1 && memcmp(path, SB_IGNORE_FILE, len) == 0)
		return false;
	for (size_t i = ign->n; i-- > 0;)
		if (pattern_matches(&ign->v[i], path, len, is_dir))
			return !ign->v[i].negate;
	return false;
}

bool sb_ignore_excluded(const sb_ignore *ign, const char *path, size_t len, bool is_dir)
{
	if (!ign || !ign->n)
		return false;
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/' && i > 0 && sb_ignore_match(ign, path, i, true))
			return true;
	return sb_ignore_match(ign, path, len, is_dir);
}

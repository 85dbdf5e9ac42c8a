/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "linediff.h"
#include "buf.h"
#include "macro.h"

typedef struct line {
	const char *p;
	size_t len; /* including the '\n' when there is one */
	uint64_t hash;
} line;

typedef struct lines {
	line *v;
	size_t n;
} lines;

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static int split(const char *p, size_t len, lines *ret)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '\n')
			n++;
	if (len && p[len - 1] != '\n')
		n++;
	ret->v = calloc(n ? n : 1, sizeof(line));
	if (!ret->v)
		return -ENOMEM;
	ret->n = 0;
	size_t start = 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '\n' || i == len - 1) {
			line *l = &ret->v[ret->n++];
			l->p = p + start;
			l->len = i + 1 - start;
			l->hash = fnv(l->p, l->len);
			start = i + 1;
		}
	return 0;
}

static bool eq(const line *x, const line *y)
{
	return x->hash == y->hash && x->len == y->len && memcmp(x->p, y->p, x->len) == 0;
}

/*
 * The edit script as a sequence of ops over a[0..n) and b[0..m): ' ' keep,
 * '-' remove a line of a, '+' add a line of b.
 */
typedef struct script {
	char *op;
	size_t n, cap;
} script;

static int push(script *s, char op)
{
	char *p = sb_grow(s->op, &s->cap, s->n, 1, 256);
	if (!p)
		return -ENOMEM;
	s->op = p;
	s->op[s->n++] = op;
	return 0;
}

/*
 * Myers: V[k] is the furthest x on diagonal k after d edits. Every round's
 * V window (2d+1 entries) is kept so the path can be walked back; that is the
 * O(D^2) memory, bounded by SB_LINEDIFF_MAX_D. Returns 0, or 1 when D was too
 * large (the caller then replaces the whole range).
 */
static int myers(const line *a, size_t n, const line *b, size_t m, script *out)
{
	if (n > INT32_MAX / 2 || m > INT32_MAX / 2)
		return 1;
	size_t max = n + m;
	size_t dmax = MIN(max, (size_t)SB_LINEDIFF_MAX_D);
	/* trace[d] holds V[-d..d] after round d */
	size_t total = (dmax + 1) * (dmax + 1);
	_cleanup_free_ int32_t *trace =
	    malloc(total * sizeof(int32_t)); /* lazily backed by the kernel */
	_cleanup_free_ int64_t *v = malloc((2 * dmax + 3) * sizeof(int64_t));
	if (!trace || !v)
		return -ENOMEM;
	int64_t off = (int64_t)dmax + 1;
	v[off + 1] = 0;
	size_t dfound = SIZE_MAX;
	for (size_t d = 0; d <= dmax; d++) {
		int64_t D = (int64_t)d;
		for (int64_t k = -D; k <= D; k += 2) {
			int64_t x;
			if (k == -D || (k != D && v[off + k - 1] < v[off + k + 1]))
				x = v[off + k + 1];
			else
				x = v[off + k - 1] + 1;
			int64_t y = x - k;
			while (x < (int64_t)n && y < (int64_t)m && eq(&a[x], &b[y])) {
				x++;
				y++;
			}
			v[off + k] = x;
		}
		int32_t *row = trace + d * d;
		for (int64_t k = -D; k <= D; k++)
			row[k + D] = (int32_t)v[off + k];
		for (int64_t k = -D; k <= D; k += 2)
			if (v[off + k] >= (int64_t)n && v[off + k] - k >= (int64_t)m) {
				dfound = d;
				goto found;
			}
	}
	return 1;
found:;
	/*
	 * Walk back from (n, m). In round d the path took one edit from diagonal
	 * pk (down: insert b[y], right: delete a[x]) and then a snake of equal
	 * lines; undo the snake, then the edit.
	 */
	script rev = {0};
	int64_t x = (int64_t)n, y = (int64_t)m;
	int r = 0;
	for (int64_t d = (int64_t)dfound; d > 0 && r >= 0; d--) {
		const int32_t *prev = trace + (size_t)(d - 1) * (size_t)(d - 1);
		int64_t pd = d - 1, k = x - y;
		bool down = k == -d || (k != d && prev[k - 1 + pd] < prev[k + 1 + pd]);
		int64_t pk = down ? k + 1 : k - 1;
		int64_t px = prev[pk + pd], py = px - pk;
		int64_t mx = down ? px : px + 1; /* where the snake began */
		while (r >= 0 && x > mx) {
			r = push(&rev, ' ');
			x--;
			y--;
		}
		if (r >= 0)
			r = push(&rev, down ? '+' : '-');
		x = px;
		y = py;
	}
	while (r >= 0 && x > 0) {
		r = push(&rev, ' ');
		x--;
	}
	for (size_t i = rev.n; r >= 0 && i > 0; i--)
		r = push(out, rev.op[i - 1]);
	free(rev.op);
	return r;
}

static int build_script(const lines *la, const lines *lb, script *s)
{
	size_t pre = 0, suf = 0;
	while (pre < la->n && pre < lb->n && eq(&la->v[pre], &lb->v[pre]))
		pre++;
	while (suf < la->n - pre && suf < lb->n - pre &&
	       eq(&la->v[la->n - 1 - suf], &lb->v[lb->n - 1 - suf]))
		suf++;
	for (size_t i = 0; i < pre; i++)
		if (push(s, ' ') < 0)
			return -ENOMEM;
	size_t n = la->n - pre - suf, m = lb->n - pre - suf;
	int r = myers(la->v + pre, n, lb->v + pre, m, s);
	if (r < 0)
		return r;
	if (r == 1) {
		for (size_t i = 0; i < n; i++)
			if (push(s, '-') < 0)
				return -ENOMEM;
		for (size_t i = 0; i < m; i++)
			if (push(s, '+') < 0)
				return -ENOMEM;
	}
	for (size_t i = 0; i < suf; i++)
		if (push(s, ' ') < 0)
			return -ENOMEM;
	return 0;
}

/*
 * The bytes of a and b that make whole equal lines at their start (*ret_head)
 * and at their end (*ret_tail), not overlapping. The line diff trims equal
 * lines itself; finding them here first spares splitting and hashing them.
 */
static void common_lines(const char *a, size_t alen, const char *b, size_t blen, size_t *ret_head,
			 size_t *ret_tail)
{
	size_t n = MIN(alen, blen), head = 0, i = 0;
	while (i < n && a[i] == b[i])
		if (a[i++] == '\n')
			head = i;
	if (i == alen && i == blen)
		head = i; /* equal: the last line needs no newline */
	size_t an = alen - head, bn = blen - head, tail = 0;
	for (size_t k = 1; k <= MIN(an, bn) && a[alen - k] == b[blen - k]; k++)
		if ((k == an || a[alen - k - 1] == '\n') && (k == bn || b[blen - k - 1] == '\n'))
			tail = k; /* a line starts here in both: a tail of whole lines */
	*ret_head = head;
	*ret_tail = tail;
}

int sb_linediff_count(const char *a, size_t alen, const char *b, size_t blen, uint64_t *ret_added,
		      uint64_t *ret_removed)
{
	size_t head, tail;
	common_lines(a, alen, b, blen, &head, &tail);
	return sb_linediff_write(NULL, a + head, alen - head - tail, b + head, blen - head - tail,
				 0, NULL, ret_added, ret_removed);
}

static void put_line(FILE *f, const char *color, char op, const line *l, const char *reset)
{
	bool nl = l->len && l->p[l->len - 1] == '\n';
	fputs(color, f);
	fputc(op, f);
	fwrite(l->p, 1, nl ? l->len - 1 : l->len, f);
	fputs(reset, f);
	fputc('\n', f);
	if (!nl)
		fputs("\\ No newline at end of file\n", f);
}

int sb_linediff_write(FILE *f, const char *a, size_t alen, const char *b, size_t blen,
		      unsigned context, const sb_linediff_colors *colors, uint64_t *ret_added,
		      uint64_t *ret_removed)
{
	static const sb_linediff_colors plain = {"", "", "", ""};
	if (!colors)
		colors = &plain;
	lines la = {0}, lb = {0};
	script s = {0};
	int r = split(a, alen, &la);
	if (r >= 0)
		r = split(b, blen, &lb);
	if (r >= 0)
		r = build_script(&la, &lb, &s);
	if (r < 0)
		goto out;
	uint64_t added = 0, removed = 0;
	for (size_t i = 0; i < s.n; i++) {
		added += s.op[i] == '+';
		removed += s.op[i] == '-';
	}
	if (f) {
		/* Group changes into hunks with `context` lines around them. */
		size_t i = 0, ai = 0, bi = 0;
		while (i < s.n) {
			while (i < s.n && s.op[i] == ' ') {
				i++;
				ai++;
				bi++;
			}
			if (i == s.n)
				break;
			size_t lead = MIN((size_t)context, MIN(ai, bi));
			size_t hs = i - lead, ha = ai - lead, hb = bi - lead;
			/* extend while the gap between changes is <= 2*context */
			size_t e = i, ea = ai, eb = bi;
			for (;;) {
				while (e < s.n && s.op[e] != ' ') {
					ea += s.op[e] == '-';
					eb += s.op[e] == '+';
					e++;
				}
				size_t g = e;
				while (g < s.n && s.op[g] == ' ')
					g++;
				if (g < s.n && g - e <= 2 * (size_t)context) {
					ea += g - e;
					eb += g - e;
					e = g;
					continue;
				}
				size_t trail = MIN((size_t)context, g - e);
				ea += trail;
				eb += trail;
				e += trail;
				break;
			}
			size_t na = ea - ha, nb = eb - hb;
			fprintf(f, "%s@@ -%zu", colors->frag, na ? ha + 1 : ha);
			if (na != 1)
				fprintf(f, ",%zu", na);
			fprintf(f, " +%zu", nb ? hb + 1 : hb);
			if (nb != 1)
				fprintf(f, ",%zu", nb);
			fprintf(f, " @@%s\n", colors->reset);
			size_t x = ha, y = hb;
			for (size_t k = hs; k < e; k++) {
				if (s.op[k] == ' ') {
					put_line(f, "", ' ', &la.v[x++], "");
					y++;
				} else if (s.op[k] == '-') {
					put_line(f, colors->old, '-', &la.v[x++], colors->reset);
				} else {
					put_line(f, colors->new, '+', &lb.v[y++], colors->reset);
				}
			}
			i = e;
			ai = ea;
			bi = eb;
		}
	}
	if (ret_added)
		*ret_added = added;
	if (ret_removed)
		*ret_removed = removed;
out:
	free(la.v);
	free(lb.v);
	free(s.op);
	return r;
}

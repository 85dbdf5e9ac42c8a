/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

/*
 * A decimal "I[.F]" read from *p. The fraction keeps at most 18 digits (the
 * rest are dropped, which only ever rounds down). Returns -EINVAL when there
 * is no digit at all, -ERANGE when I overflows.
 */
struct decimal {
	uint64_t ipart;
	uint64_t frac;	      /* the kept fraction digits as an integer */
	uint64_t frac_div;    /* 10^(number of kept digits) */
	unsigned frac_digits; /* all fraction digits seen, kept or not */
	bool has_dot;
};

static int parse_decimal(const char **p, struct decimal *d)
{
	const char *s = *p;
	bool any = false;

	memset(d, 0, sizeof(*d));
	d->frac_div = 1;
	while (*s >= '0' && *s <= '9') {
		unsigned digit = (unsigned)(*s - '0');
		if (d->ipart > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		d->ipart = d->ipart * 10 + digit;
		any = true;
		s++;
	}
	if (*s == '.') {
		d->has_dot = true;
		s++;
		while (*s >= '0' && *s <= '9') {
			if (d->frac_digits < 18) {
				d->frac = d->frac * 10 + (uint64_t)(*s - '0');
				d->frac_div *= 10;
			}
			d->frac_digits++;
			any = true;
			s++;
		}
	}
	if (!any)
		return -EINVAL;
	*p = s;
	return 0;
}

/* d * mult, rounded down; -ERANGE when it does not fit. */
static int decimal_scale(const struct decimal *d, uint64_t mult, uint64_t *ret)
{
	unsigned __int128 v = (unsigned __int128)d->ipart * mult;
	v += (unsigned __int128)d->frac * mult / d->frac_div;
	if (v > UINT64_MAX)
		return -ERANGE;
	*ret = (uint64_t)v;
	return 0;
}

static const struct {
	const char *suffix;
	unsigned shift;
} size_suffixes[] = {
    {"", 0},	 {"b", 0},   {"k", 10},	  {"kb", 10},  {"kib", 10}, {"m", 20},	 {"mb", 20},
    {"mib", 20}, {"g", 30},  {"gb", 30},  {"gib", 30}, {"t", 40},   {"tb", 40},	 {"tib", 40},
    {"p", 50},	 {"pb", 50}, {"pib", 50}, {"e", 60},   {"eb", 60},  {"eib", 60},
};

int sb_parse_size(const char *s, uint64_t *ret_bytes, sb_error *err)
{
	const char *p = s;
	struct decimal d;
	uint64_t v;
	int r;

	if (!s)
		return sb_error_set(err, EINVAL, "invalid size: empty");
	r = parse_decimal(&p, &d);
	if (r == -ERANGE)
		return sb_error_set(err, ERANGE, "invalid size '%s': too large", s);
	if (r < 0)
		goto bad;
	for (size_t i = 0; i < ARRAY_SIZE(size_suffixes); i++) {
		if (strcasecmp(p, size_suffixes[i].suffix) != 0)
			continue;
		/* "1.5" bytes is meaningless; a fraction needs a unit to scale. */
		if (d.has_dot && size_suffixes[i].shift == 0)
			goto bad;
		if (decimal_scale(&d, UINT64_C(1) << size_suffixes[i].shift, &v) < 0)
			return sb_error_set(err, ERANGE, "invalid size '%s': too large", s);
		*ret_bytes = v;
		return 0;
	}
bad:
	return sb_error_set(err, EINVAL,
			    "invalid size '%s': expected a number with an optional K, M, G or T "
			    "suffix (e.g. 512M)",
			    s);
}

static const struct {
	const char *unit;
	uint64_t nsec;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"ms", 1000000},
    {"s", UINT64_C(1000000000)},
    {"sec", UINT64_C(1000000000)},
    {"m", UINT64_C(60000000000)},
    {"min", UINT64_C(60000000000)},
    {"h", UINT64_C(3600000000000)},
    {"d", UINT64_C(86400000000000)},
};

int sb_parse_duration(const char *s, uint64_t *ret_nsec, sb_error *err)
{
	const char *p = s;
	uint64_t total = 0;
	unsigned groups = 0;

	if (!s || !*s)
		goto bad;
	while (*p) {
		struct decimal d;
		char unit[8];
		size_t n = 0;
		uint64_t mult = 0, v;
		int r = parse_decimal(&p, &d);

		if (r == -ERANGE)
			goto range;
		if (r < 0)
			goto bad;
		while (isalpha((unsigned char)*p)) {
			if (n + 1 >= sizeof(unit))
				goto bad;
			unit[n++] = (char)tolower((unsigned char)*p++);
		}
		unit[n] = 0;
		if (n == 0) {
			/* A bare number means seconds, and only on its own. */
			if (groups > 0 || *p)
				goto bad;
			mult = UINT64_C(1000000000);
		}
		for (size_t i = 0; n > 0 && i < ARRAY_SIZE(duration_units); i++)
			if (strcmp(unit, duration_units[i].unit) == 0)
				mult = duration_units[i].nsec;
		if (mult == 0)
			goto bad;
		if (decimal_scale(&d, mult, &v) < 0 || v > UINT64_MAX - total)
			goto range;
		total += v;
		groups++;
	}
	*ret_nsec = total;
	return 0;
range:
	return sb_error_set(err, ERANGE, "invalid duration '%s': too large", s);
bad:
	return sb_error_set(err, EINVAL,
			    "invalid duration '%s': expected e.g. 30s, 1.5s, 250ms, 10m, 1h30m "
			    "(a bare number is seconds)",
			    s ? s : "");
}

int sb_parse_cpus(const char *s, uint64_t *ret_millicpus, sb_error *err)
{
	const char *p = s;
	struct decimal d;
	uint64_t v;
	int r;

	if (!s)
		goto bad;
	r = parse_decimal(&p, &d);
	if (r == -ERANGE)
		goto range;
	if (r < 0 || *p || d.frac_digits > 3)
		goto bad;
	if (decimal_scale(&d, 1000, &v) < 0 || v > UINT64_C(1000000000))
		goto range;
	if (v == 0)
		return sb_error_set(err, EINVAL, "invalid CPU count '%s': must be more than 0", s);
	*ret_millicpus = v;
	return 0;
range:
	return sb_error_set(err, ERANGE, "invalid CPU count '%s': too large", s);
bad:
	return sb_error_set(err, EINVAL,
			    "invalid CPU count '%s': expected a decimal with at most 3 "
			    "fractional digits (e.g. 0.5, 2)",
			    s ? s : "");
}

int sb_parse_uint64(const char *s, uint64_t min, uint64_t max, const char *what, uint64_t *ret,
		    sb_error *err)
{
	const char *p = s;
	uint64_t v = 0;

	if (!what)
		what = "value";
	if (!s || !*s)
		return sb_error_set(err, EINVAL, "invalid %s '': expected a number", what);
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return sb_error_set(err, EINVAL, "invalid %s '%s': expected a number", what,
					    s);
		unsigned digit = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return sb_error_set(err, ERANGE, "invalid %s '%s': too large", what, s);
		v = v * 10 + digit;
	}
	if (v < min || v > max)
		return sb_error_set(err, ERANGE,
				    "invalid %s '%s': must be between %" PRIu64 " and %" PRIu64,
				    what, s, min, max);
	*ret = v;
	return 0;
}

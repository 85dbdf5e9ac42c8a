/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <string.h>

#include "cli.h"

static void vmsg(bool color, const char *prefix_color, const char *prefix, const char *fmt,
		 va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s%s%s", sb_cli_c(color, prefix_color), prefix,
		sb_cli_c(color, SB_C_RESET));
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int sb_cli_failf(sb_cli *cli, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli->color_err, SB_C_RED, "snapbox: ", fmt, ap);
	va_end(ap);
	return SB_EXIT_FAIL;
}

int sb_cli_fail(sb_cli *cli, const sb_error *err)
{
	return sb_cli_failf(cli, "%s",
			    err->msg[0] ? err->msg : strerror(err->code ? err->code : EIO));
}

int sb_cli_usage(sb_cli *cli, const char *verb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli->color_err, SB_C_RED, "snapbox: ", fmt, ap);
	va_end(ap);
	if (verb)
		fprintf(stderr, "see 'snapbox %s --help'\n", verb);
	else
		fprintf(stderr, "see 'snapbox --help'\n");
	return SB_EXIT_USAGE;
}

void sb_cli_warn(sb_cli *cli, const char *fmt, ...)
{
	if (cli->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli->color_err, SB_C_YELLOW, "snapbox: warning: ", fmt, ap);
	va_end(ap);
}

void sb_cli_info(sb_cli *cli, const char *fmt, ...)
{
	if (!cli->verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli->color_err, SB_C_CYAN, "snapbox: ", fmt, ap);
	va_end(ap);
}

const char *sb_cli_c(bool on, const char *which)
{
	return on ? which : "";
}

static bool needs_quoting(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			return true;
	}
	return false;
}

void sb_cli_put_path(FILE *f, const char *path, size_t len)
{
	if (!needs_quoting(path, len)) {
		fwrite(path, 1, len, f);
		return;
	}
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c >= 0x7f)
				fprintf(f, "\\%03o", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
	if (p[0] < 0x80)
		return p[0] ? 1 : 0;
	size_t n;
	uint32_t cp;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

cJSON *sb_cli_json_path(const char *path, size_t len)
{
	/* JSON strings are Unicode: bytes that are not UTF-8 become "\xNN" text. */
	char *out = malloc(len * 4 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)path;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(p + i, len - i);
		if (n && !(n == 1 && p[i] == '\\')) {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		} else {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", p[i]);
			i++;
		}
	}
	out[o] = 0;
	cJSON *s = cJSON_CreateString(out);
	free(out);
	return s;
}

cJSON *sb_cli_json_int(int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return cJSON_CreateRaw(buf);
}

void sb_cli_json_out(cJSON *j)
{
	char *s = j ? cJSON_Print(j) : NULL;
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
	}
	free(s);
	cJSON_Delete(j);
}

const char *sb_cli_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

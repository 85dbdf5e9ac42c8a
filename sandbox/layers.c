/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "layers.h"

const char *sb_layer_state_name(sb_layer_state state)
{
	switch (state) {
	case SB_LAYER_ENFORCED:
		return "enforced";
	case SB_LAYER_UNAVAILABLE:
		return "unavailable";
	case SB_LAYER_DISABLED:
		return "disabled";
	case SB_LAYER_DEGRADED:
		return "degraded";
	}
	return "unknown";
}

void sb_layer_status_set(sb_layer_status *st, const char *name, sb_layer_state state,
			 const char *fmt, ...)
{
	st->name = name;
	st->state = state;
	st->detail[0] = 0;
	st->reason[0] = 0;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(st->detail, sizeof(st->detail), fmt, ap);
		va_end(ap);
	}
}

void sb_layer_status_reason(sb_layer_status *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
}

int sb_layers_summary(const sb_layer_status *layers, size_t n, char *buf, size_t size)
{
	size_t len = 0;
	bool truncated = false;

	if (size > 0)
		buf[0] = 0;
	for (size_t i = 0; i < n; i++) {
		const sb_layer_status *st = &layers[i];
		const char *name = st->name ? st->name : "?";
		const char *sep = i > 0 ? " " : "";
		int w;

		switch (st->state) {
		case SB_LAYER_ENFORCED:
			w = snprintf(buf + len, size - len, "%s%s=%s", sep, name,
				     st->detail[0] ? st->detail : "on");
			break;
		case SB_LAYER_DISABLED:
			w = snprintf(buf + len, size - len, "%s%s=off", sep, name);
			break;
		case SB_LAYER_UNAVAILABLE:
			w = snprintf(buf + len, size - len, "%s%s=unavailable", sep, name);
			break;
		case SB_LAYER_DEGRADED:
		default:
			if (st->detail[0])
				w = snprintf(buf + len, size - len, "%s%s=degraded(%s)", sep, name,
					     st->detail);
			else
				w = snprintf(buf + len, size - len, "%s%s=degraded", sep, name);
			break;
		}
		if (w < 0 || (size_t)w >= size - len) {
			truncated = true;
			break;
		}
		len += (size_t)w;
	}
	if (truncated) {
		if (size >= 4)
			memcpy(buf + size - 4, "...", 4);
		return -ENOBUFS;
	}
	return (int)len;
}

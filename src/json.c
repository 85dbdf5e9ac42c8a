/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int sb_json_get_int(const cJSON *obj, const char *key, bool nullable, int64_t *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (nullable && (!v || cJSON_IsNull(v))) {
		*ret = -1;
		return 0;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9.007199254740992e15 ||
	    v->valuedouble != (double)(int64_t)v->valuedouble)
		return -EBADMSG;
	*ret = (int64_t)v->valuedouble;
	return 0;
}

int sb_json_get_str(const cJSON *obj, const char *key, bool nullable, char **ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (nullable && (!v || cJSON_IsNull(v))) {
		*ret = NULL;
		return 0;
	}
	if (!cJSON_IsString(v))
		return -EBADMSG;
	*ret = strdup(v->valuestring);
	return *ret ? 0 : -ENOMEM;
}

int sb_json_get_strv(const cJSON *obj, const char *key, char ***ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	*ret = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsArray(v))
		return -EBADMSG;
	int n = cJSON_GetArraySize(v);
	char **out = calloc((size_t)n + 1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach (e, v) {
		if (!cJSON_IsString(e) || !(out[i++] = strdup(e->valuestring))) {
			sb_strv_free(out);
			return -EBADMSG;
		}
	}
	*ret = out;
	return 0;
}

int sb_json_get_i64str(const cJSON *obj, const char *key, int64_t *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsString(v) || !v->valuestring[0])
		return -EBADMSG;
	char *end;
	errno = 0;
	long long t = strtoll(v->valuestring, &end, 10);
	if (errno || *end)
		return -EBADMSG;
	*ret = t;
	return 0;
}

int sb_json_add_i64str(cJSON *obj, const char *key, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return cJSON_AddStringToObject(obj, key, buf) ? 0 : -ENOMEM;
}

cJSON *sb_json_strv(char *const *v)
{
	cJSON *a = cJSON_CreateArray();
	for (char *const *p = v; a && p && *p; p++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*p));
	return a;
}

char **sb_strv_copy(char *const *src)
{
	if (!src)
		return NULL;
	size_t n = 0;
	while (src[n])
		n++;
	char **v = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; v && i < n; i++)
		if (!(v[i] = strdup(src[i]))) {
			sb_strv_free(v);
			return NULL;
		}
	return v;
}

void sb_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

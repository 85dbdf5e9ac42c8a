/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Small cJSON helpers shared by the manifest readers: strict field access
 * that returns -EBADMSG for a missing field or one of the wrong type, and
 * NULL-terminated string vectors.
 *
 * Integers beyond 2^53 do not survive a double: write them with
 * sb_json_add_i64 (a decimal string) and read them with sb_json_get_i64str.
 */

#include <stdbool.h>
#include <stdint.h>
#include <cJSON.h>

/* Non-negative integer that a double holds exactly; nullable: null/missing gives -1. */
int sb_json_get_int(const cJSON *obj, const char *key, bool nullable, int64_t *ret);
/* strdup'ed string; nullable: null/missing gives NULL. */
int sb_json_get_str(const cJSON *obj, const char *key, bool nullable, char **ret);
/* Array of strings as a NULL-terminated vector; null/missing gives NULL. */
int sb_json_get_strv(const cJSON *obj, const char *key, char ***ret);
/* A 64-bit integer written as a decimal string. */
int sb_json_get_i64str(const cJSON *obj, const char *key, int64_t *ret);
int sb_json_add_i64str(cJSON *obj, const char *key, int64_t v);

cJSON *sb_json_strv(char *const *v);
char **sb_strv_copy(char *const *v);
void sb_strv_free(char **v);

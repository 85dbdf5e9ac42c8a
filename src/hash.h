/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * SHA-256 through OpenSSL's EVP interface (which uses SHA-NI where the CPU has
 * it), object ids, and hex.
 *
 *   sb_sha256 h;
 *   sb_sha256_init(&h); sb_sha256_update(&h, p, n); ...; sb_sha256_final(&h, &id);
 *
 * An sb_sha256 owns an EVP context: every init must be matched by final or
 * release (release accepts a context that was never initialised, if zeroed).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_ID_LEN  32
#define SB_HEX_LEN (SB_ID_LEN * 2)

typedef struct sb_id {
	uint8_t b[SB_ID_LEN];
} sb_id;

typedef struct sb_sha256 {
	void *ctx; /* EVP_MD_CTX */
} sb_sha256;

int sb_sha256_init(sb_sha256 *h);
void sb_sha256_update(sb_sha256 *h, const void *data, size_t len);
/* Writes the digest to ret_id and releases the context. */
void sb_sha256_final(sb_sha256 *h, sb_id *ret_id);
void sb_sha256_release(sb_sha256 *h);

/* One-shot digest of a buffer. */
void sb_sha256_buf(const void *data, size_t len, sb_id *ret_id);

/* Lowercase hex; out must hold SB_HEX_LEN + 1 bytes. Returns out. */
char *sb_id_to_hex(const sb_id *id, char *out);
/* Parses exactly SB_HEX_LEN hex digits (either case). -EINVAL otherwise. */
int sb_id_from_hex(const char *hex, sb_id *ret_id);
/* Hex of arbitrary bytes into out (2*len+1 bytes). */
void sb_hex_encode(const void *data, size_t len, char *out);
/* The n chars at s are lowercase hex digits, as sb_hex_encode writes them. */
bool sb_is_lower_hex(const char *s, size_t n);

static inline bool sb_id_eq(const sb_id *a, const sb_id *b)
{
	return __builtin_memcmp(a->b, b->b, SB_ID_LEN) == 0;
}
int sb_id_cmp(const sb_id *a, const sb_id *b);
bool sb_id_is_zero(const sb_id *id);

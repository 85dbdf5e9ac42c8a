/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "hash.h"

static EVP_MD *sha256_md;

/*
 * OpenSSL's configuration file is not read: an object id must not depend on
 * a machine's crypto policy, and parsing it cost ~0.25 ms of every command's
 * start here (a third of OpenSSL's start-up).
 */
static void fetch_sha256(void)
{
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/*
 * EVP_sha256() makes every digest look its implementation up again (a
 * locked search of OpenSSL's method store); fetched once, it is only
 * referenced. Falls back to that lookup if the fetch failed. Never freed, on
 * purpose: an EVP_MD_free after OpenSSL's own exit-time cleanup would be a
 * use after free, and the static pointer keeps it reachable.
 */
static const EVP_MD *sha256(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, fetch_sha256);
	return sha256_md ? sha256_md : EVP_sha256();
}

int sb_sha256_init(sb_sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c)
		return -ENOMEM;
	if (EVP_DigestInit_ex(c, sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return -EIO;
	}
	h->ctx = c;
	return 0;
}

void sb_sha256_update(sb_sha256 *h, const void *data, size_t len)
{
	assert(h->ctx);
	/* EVP_DigestUpdate only fails on a misused context. */
	(void)EVP_DigestUpdate(h->ctx, data, len);
}

void sb_sha256_final(sb_sha256 *h, sb_id *ret_id)
{
	unsigned int n = 0;
	assert(h->ctx);
	(void)EVP_DigestFinal_ex(h->ctx, ret_id->b, &n);
	assert(n == SB_ID_LEN);
	sb_sha256_release(h);
}

void sb_sha256_release(sb_sha256 *h)
{
	if (h && h->ctx) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
	}
}

void sb_sha256_buf(const void *data, size_t len, sb_id *ret_id)
{
	unsigned int n = 0;
	(void)EVP_Digest(data, len, ret_id->b, &n, sha256(), NULL);
	assert(n == SB_ID_LEN);
}

void sb_hex_encode(const void *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = 0;
}

char *sb_id_to_hex(const sb_id *id, char *out)
{
	sb_hex_encode(id->b, SB_ID_LEN, out);
	return out;
}

bool sb_is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sb_id_from_hex(const char *hex, sb_id *ret_id)
{
	sb_id id;
	if (!hex || strlen(hex) != SB_HEX_LEN)
		return -EINVAL;
	for (size_t i = 0; i < SB_ID_LEN; i++) {
		int hi = unhex(hex[2 * i]), lo = unhex(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		id.b[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret_id = id;
	return 0;
}

int sb_id_cmp(const sb_id *a, const sb_id *b)
{
	return memcmp(a->b, b->b, SB_ID_LEN);
}

bool sb_id_is_zero(const sb_id *id)
{
	for (size_t i = 0; i < SB_ID_LEN; i++)
		if (id->b[i])
			return false;
	return true;
}

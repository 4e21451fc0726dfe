/* store_key.c -- store record names; see store_key.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/evp.h>

#include "store_key.h"
#include "xmalloc.h"

static const char *
sep_for(const char *prefix)
{
	size_t n = strlen(prefix);

	if (n == 0 || strchr(".:_-", prefix[n - 1]) != NULL)
		return "";
	return ":";
}

char *
store_key_make(const char *prefix, const char *body)
{
	const char *sep = sep_for(prefix);
	size_t len = strlen(prefix) + strlen(sep) + strlen(body) + 1;
	char *k = xmalloc(len);

	snprintf(k, len, "%s%s%s", prefix, sep, body);
	return k;
}

char *
store_key_hash(const char *prefix, const char *const *parts, size_t nparts)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[33];
	size_t i;

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		abort();	/* out of memory, or no SHA-256 at all */
	for (i = 0; i < nparts; i++)
		EVP_DigestUpdate(c, parts[i], strlen(parts[i]) + 1);
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return store_key_make(prefix, hex);
}

char *
store_key_net(int family, const uint8_t addr[16], unsigned v4mask,
    unsigned v6mask, char *out, size_t len)
{
	uint8_t a[16];
	char txt[INET6_ADDRSTRLEN];
	unsigned bits = family == AF_INET ? v4mask : v6mask;
	unsigned i, n = family == AF_INET ? 4 : 16;

	memcpy(a, addr, n);
	if (bits > n * 8)
		bits = n * 8;
	for (i = 0; i < n; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ?
		    bits - 8 * i : 0;

		a[i] &= (uint8_t)(0xff00u >> keep);
	}
	if (inet_ntop(family, a, txt, sizeof(txt)) == NULL)
		snprintf(txt, sizeof(txt), "?");
	snprintf(out, len, "%s/%u", txt, bits);
	return out;
}

char *
store_key_addr(const char *addr, char *out, size_t len)
{
	size_t j = 0;

	if (len == 0)
		return out;
	for (; addr != NULL && *addr != '\0' && j + 1 < len; addr++) {
		unsigned char c = (unsigned char)*addr;

		if (c == '<' || c == '>' || isspace(c) || c < 0x20)
			continue;
		out[j++] = (char)tolower(c);
	}
	out[j] = '\0';
	return out;
}

uint64_t
store_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

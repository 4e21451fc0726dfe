/* split_feed.h -- shared by the reply-parser fuzz targets: a deterministic
 * pseudo-random split of the input into pieces (so every parser is fed
 * across arbitrary read boundaries, reproducibly from the input itself),
 * and the check that a parser's error/name text is printable ASCII and
 * NUL-terminated.  Header-only: each target is one translation unit. */
#ifndef RMILTER_FUZZ_SPLIT_FEED_H
#define RMILTER_FUZZ_SPLIT_FEED_H

#include <stdint.h>
#include <stdlib.h>

/* The seed of the split, from the input's first byte. */
static inline uint32_t
fuzz_seed(uint8_t first)
{
	return 0x9e3779b9u ^ ((uint32_t)first << 8) ^ first;
}

/* xorshift32 */
static inline uint32_t
fuzz_rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* The next piece: the rest (one time in four), or 1..32 bytes. */
static inline size_t
fuzz_piece(uint32_t *seed, size_t rest)
{
	uint32_t x = fuzz_rnd(seed);
	size_t m = rest < 32 ? rest : 32;

	if ((x & 3) == 0)
		return rest;
	return 1 + (x >> 2) % m;
}

/* Aborts unless S (a SIZE-byte field) holds printable ASCII up to a NUL;
 * with NONEMPTY also unless it holds at least one character. */
static inline void
fuzz_check_printable(const char *s, size_t size, int nonempty)
{
	size_t k;

	for (k = 0; k < size && s[k] != '\0'; k++)
		if (s[k] < ' ' || s[k] > '~')
			abort();
	if (k == size || (nonempty && k == 0))
		abort();
}

#endif

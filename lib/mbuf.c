/* mbuf.c -- a growable byte buffer with a read offset. */
#include <stdlib.h>
#include <string.h>

#include "mbuf.h"
#include "xmalloc.h"

uint8_t *
mbuf_reserve(struct mbuf *b, size_t n)
{
	size_t need;

	if (b->off > 0 && b->off == b->len) {
		b->off = b->len = 0;
	} else if (b->off > 0 && b->cap - b->len < n) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	need = b->len + n;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < need)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	return b->p + b->len;
}

void
mbuf_append(struct mbuf *b, const void *data, size_t n)
{
	if (n == 0)
		return;
	memcpy(mbuf_reserve(b, n), data, n);
	b->len += n;
}

void
mbuf_append_u8(struct mbuf *b, uint8_t v)
{
	*mbuf_reserve(b, 1) = v;
	b->len++;
}

void
mbuf_append_u32(struct mbuf *b, uint32_t v)
{
	uint8_t *p = mbuf_reserve(b, 4);

	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	b->len += 4;
}

void
mbuf_consume(struct mbuf *b, size_t n)
{
	if (n >= b->len - b->off) {
		b->off = b->len = 0;
		return;
	}
	b->off += n;
}

void
mbuf_reset(struct mbuf *b)
{
	b->off = b->len = 0;
}

void
mbuf_free(struct mbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->off = b->len = b->cap = 0;
}

int
mbuf_take_line(struct mbuf *line, const uint8_t *p, size_t n, size_t *i,
    size_t *budget, size_t *len)
{
	const uint8_t *nl = memchr(p + *i, '\n', n - *i);
	size_t take = nl ? (size_t)(nl - (p + *i)) + 1 : n - *i;

	if (take > *budget)
		return -1;
	*budget -= take;
	mbuf_append(line, p + *i, take);
	*i += take;
	if (nl == NULL)
		return 0;
	line->len--;				/* the LF */
	if (mbuf_avail(line) > 0 && line->p[line->len - 1] == '\r')
		line->len--;
	*mbuf_reserve(line, 1) = '\0';		/* not counted in len */
	*len = mbuf_avail(line);
	return 1;
}

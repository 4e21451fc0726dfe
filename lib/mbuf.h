/* mbuf.h -- a growable byte buffer with a read offset (input and output queues). */
#ifndef RMILTER_MBUF_H
#define RMILTER_MBUF_H

#include <stddef.h>
#include <stdint.h>

struct mbuf {
	uint8_t *p;
	size_t off;	/* first unread byte */
	size_t len;	/* end of data (p + len) */
	size_t cap;
};

/* Unread bytes. */
static inline size_t
mbuf_avail(const struct mbuf *b)
{
	return b->len - b->off;
}

static inline const uint8_t *
mbuf_data(const struct mbuf *b)
{
	return b->p + b->off;
}

/* Makes room for at least N more bytes after len (compacts first); returns
 * the write position. */
uint8_t *mbuf_reserve(struct mbuf *b, size_t n);
void mbuf_append(struct mbuf *b, const void *data, size_t n);
void mbuf_append_u8(struct mbuf *b, uint8_t v);
void mbuf_append_u32(struct mbuf *b, uint32_t v);	/* big-endian */
/* Marks N bytes as read; resets to empty when everything was read. */
void mbuf_consume(struct mbuf *b, size_t n);
void mbuf_reset(struct mbuf *b);
/* Collects one text line from P[*I..N) into LINE, charging the bytes to
 * *BUDGET.  Returns 1 when the line is complete (its LF or CR LF removed,
 * NUL-terminated past len, *LEN its length), 0 when P ran out first, -1
 * when *BUDGET would be exceeded.  Advances *I past what it took.  For the
 * sans-IO reply parsers (HTTP, SPAMD). */
int mbuf_take_line(struct mbuf *line, const uint8_t *p, size_t n, size_t *i,
    size_t *budget, size_t *len);
/* Releases the storage; the buffer is reusable (empty) afterwards. */
void mbuf_free(struct mbuf *b);

#endif

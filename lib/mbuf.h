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
/* Releases the storage; the buffer is reusable (empty) afterwards. */
void mbuf_free(struct mbuf *b);

#endif

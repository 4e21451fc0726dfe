/* clamd_proto.h -- sans-IO clamd INSTREAM codec (NUL-delimited "z" mode).
 *
 * No sockets, no event loop.  Request: clamd_instream_begin(), then the
 * message in chunks (clamd_instream_chunk(), each at most the caller's
 * chunk limit), then clamd_instream_end() (a zero-length chunk).  clamd
 * answers once, after the last chunk or as soon as the stream passes its
 * StreamMaxLength ("INSTREAM size limit exceeded. ERROR").
 *
 * Contract of the reply parser:
 *   - The reply is one line ended by NUL (z mode), by LF (a server that
 *     ignores z mode; a CR before it is dropped), or by EOF; it may arrive
 *     in any split.  Bytes after the terminator are not consumed.
 *   - "<prefix>: OK" -> CLAMD_DONE, CLAMD_CLEAN.
 *     "<prefix>: NAME FOUND" -> CLAMD_DONE, CLAMD_VIRUS, virus = NAME (the
 *     text after the last ": " and before the final " FOUND"; bytes outside
 *     printable ASCII become '?'; at most 255 bytes).
 *     "... ERROR" -> CLAMD_DONE, CLAMD_FAILED, error = the text before
 *     " ERROR" (sanitized likewise); size_limit when it says "size limit
 *     exceeded".
 *   - CLAMD_ERROR (the rc) = the reply is none of those, is over 4096 bytes,
 *     or is empty at EOF; error[] says why.  Once DONE or ERROR, later
 *     feed/eof calls return the same and consume nothing. */
#ifndef RMILTER_CLAMD_PROTO_H
#define RMILTER_CLAMD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbuf.h"

#define CLAMD_REPLY_MAX	4096u	/* reply bytes before the terminator */

/* "zINSTREAM\0" */
void clamd_instream_begin(struct mbuf *out);
/* <uint32 big-endian N><N bytes>.  N = 0 appends nothing (a zero-length
 * chunk would end the stream); N over 4 GiB - 1 is split. */
void clamd_instream_chunk(struct mbuf *out, const uint8_t *p, size_t n);
/* The zero-length chunk that ends the stream. */
void clamd_instream_end(struct mbuf *out);

enum clamd_rc {
	CLAMD_MORE = 0,		/* everything consumed, feed more */
	CLAMD_DONE,		/* a reply parsed: see status */
	CLAMD_ERROR,		/* garbage, too long, or empty: error[] */
};

enum clamd_status {
	CLAMD_CLEAN,
	CLAMD_VIRUS,
	CLAMD_FAILED,		/* clamd said ERROR (incl. size limit) */
};

struct clamd_reply {
	enum clamd_status status;
	char virus[256];	/* CLAMD_VIRUS: the signature name */
	char error[160];	/* FAILED: clamd's text; CLAMD_ERROR: why */
	bool size_limit;	/* "INSTREAM size limit exceeded" */

	/* private state */
	int state;
	size_t len;
	char buf[CLAMD_REPLY_MAX + 1];
};

void clamd_reply_init(struct clamd_reply *r);

/* Feeds P[0..N).  CLAMD_MORE: all consumed, no terminator yet.  CLAMD_DONE:
 * *USED bytes up to and including the terminator were the reply.
 * CLAMD_ERROR: error[] says why. */
enum clamd_rc clamd_reply_feed(struct clamd_reply *r, const uint8_t *p,
    size_t n, size_t *used);

/* clamd closed the connection: the bytes so far are the reply (DONE or
 * ERROR as above; ERROR "empty reply" when there are none). */
enum clamd_rc clamd_reply_eof(struct clamd_reply *r);

/* Releases nothing today (the reply holds no heap memory); call it anyway. */
void clamd_reply_free(struct clamd_reply *r);

#endif

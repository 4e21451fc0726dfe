/* http_reply.h -- sans-IO HTTP/1.0 and 1.1 client codec (the rspamd client).
 *
 * No sockets, no event loop: response bytes in -> status, a few headers and
 * the decoded body out; request lines and headers appended to an mbuf.  We do
 * not use evhttp: libevent 2.1's evhttp cannot talk over a unix socket or a
 * connection we supply.
 *
 * Contract of the response parser:
 *   - http_reply_feed() may be given the reply in any split; it consumes what
 *     it needs and stops after the reply (bytes after HTTP_DONE, e.g. a
 *     pipelined reply, are not consumed: *USED tells how many were).
 *   - Status line "HTTP/1.x NNN [reason]" (x a single digit, NNN 100..599);
 *     interim 1xx replies (100 Continue, ...) are skipped, 101 is an error.
 *   - Lines end in CRLF or a bare LF.  A NUL or another control character
 *     (except HTAB) in the head is an error; so is a head over 64 KiB (all
 *     interim replies included).  Folded header lines (obs-fold) are joined
 *     with one space, as RFC 9112 5.2 asks of a user agent.
 *   - Body framing: none for 1xx/204/304; else Transfer-Encoding: chunked
 *     (extensions and trailers skipped; another coding is an error; chunked
 *     together with Content-Length is an error); else Content-Length (a
 *     list of equal values is fine, disagreeing or non-digit values, or a
 *     value over the body cap, are errors); else the body runs to EOF
 *     (http_reply_eof(), and keepalive is false).
 *   - The decoded body is capped at MAX_BODY bytes (error past it).
 *   - After HTTP_DONE, body.p is non-NULL and NUL-terminated at body.len
 *     (the NUL is not counted), so a JSON body can be handed on as is.
 *   - After HTTP_ERROR, error[] says why (short, printable, for logs); every
 *     later feed/eof returns HTTP_ERROR again and consumes nothing.
 * The caller owns the struct; http_reply_free() releases the body and the
 * private buffers (the struct may then be re-initialised for the next reply
 * on a keep-alive connection). */
#ifndef RMILTER_HTTP_REPLY_H
#define RMILTER_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbuf.h"

#define HTTP_HEAD_MAX		(64u * 1024u)		/* status + headers */
#define HTTP_BODY_MAX_DEFAULT	(16u * 1024u * 1024u)
#define HTTP_CHUNK_LINE_MAX	4096u			/* size + extensions */

enum http_rc {
	HTTP_MORE = 0,		/* everything consumed, feed more */
	HTTP_DONE,		/* a whole reply parsed */
	HTTP_ERROR,		/* malformed or over a limit: see error[] */
};

struct http_reply {
	int status;		/* e.g. 200 (the final, non-1xx status) */
	int minor;		/* HTTP/1.x */
	bool keepalive;		/* the connection may carry another request */
	bool no_reply;		/* HTTP_ERROR at EOF before any byte: the peer
				 * closed an idle connection (safe to retry) */
	struct mbuf body;	/* decoded body */
	char content_type[64];	/* "" if absent; truncated */
	char error[128];	/* why HTTP_ERROR */

	/* private parser state below */
	int state;
	size_t max_body;
	size_t budget;		/* bytes the current line phase may still take
				 * (head incl. interim replies, chunk-size
				 * line, trailers) */
	uint64_t remaining;	/* Content-Length or chunk bytes still due */
	uint64_t content_length;
	bool has_length;
	bool chunked;
	bool conn_close;
	bool conn_keepalive;
	bool got_bytes;
	struct mbuf line;	/* the current, incomplete line */
	struct mbuf hdr;	/* the current header, kept for obs-fold */
};

/* Prepares R for a reply; MAX_BODY 0 means HTTP_BODY_MAX_DEFAULT. */
void http_reply_init(struct http_reply *r, size_t max_body);

/* Feeds P[0..N).  Returns HTTP_MORE (all N consumed), HTTP_DONE (*USED
 * bytes consumed; the rest belongs to whatever follows the reply) or
 * HTTP_ERROR (error[] set).  Once DONE or ERROR, it returns the same again
 * with *USED = 0. */
enum http_rc http_reply_feed(struct http_reply *r, const uint8_t *p, size_t n,
    size_t *used);

/* The peer closed the connection: HTTP_DONE if the reply was complete or
 * its body is delimited by EOF, else HTTP_ERROR ("reply cut short"; or
 * "connection closed before the reply" with no_reply set). */
enum http_rc http_reply_eof(struct http_reply *r);

void http_reply_free(struct http_reply *r);

/* ---- request helpers: append to OUT -------------------------------------- */

/* "METHOD PATH HTTP/1.1\r\n"; control characters and spaces are dropped
 * from METHOD and PATH. */
void http_request_line(struct mbuf *out, const char *method,
    const char *path);
/* "Name: value\r\n".  Bytes that may not appear in a field name (controls,
 * separators, ':') are dropped from NAME; CR, LF and the other control
 * characters except HTAB are dropped from VALUE (no header injection). */
void http_request_header(struct mbuf *out, const char *name,
    const char *value);
/* The blank line ending the head: "\r\n". */
void http_request_end(struct mbuf *out);

#endif

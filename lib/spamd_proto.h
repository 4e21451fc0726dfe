/* spamd_proto.h -- sans-IO SpamAssassin SPAMC/1.5 client codec.
 *
 * No sockets, no event loop.  The request is a head from
 * spamd_request_head() followed by exactly CONTENT_LENGTH message bytes;
 * spamd answers and closes the connection.
 *
 * Contract of the reply parser:
 *   - spamd_reply_feed() takes the reply in any split and consumes what it
 *     needs; bytes after a complete reply are not consumed.
 *   - Status line "SPAMD/1.x CODE MESSAGE": CODE 0 is success; any other
 *     code ("SPAMD/1.0 76 Bad header line") is SPAMD_ERROR with code set
 *     and error[] = "spamd error 76: Bad header line".
 *   - Header lines end in CRLF or LF; a NUL or another control character
 *     (except HTAB) is an error; the head is capped at 16 KiB.
 *     "Content-length: N" (digits; duplicates must agree; N <= MAX_LEN) and
 *     "Spam: True|False|Yes|No ; SCORE / THRESHOLD" (decimal numbers, may be
 *     negative, |x| <= 1e9) are read; other headers are ignored.  A reply
 *     without a Spam: header is an error ("no Spam: header").
 *   - The body is Content-length bytes, or without Content-length (CHECK)
 *     everything up to EOF, capped at MAX_LEN.
 *   - On SPAMD_DONE: report = the body (NUL bytes turned into spaces), NULL
 *     if empty; symbols = the body when it is one comma-separated list of
 *     rule names (SYMBOLS; trailing CR LF and blanks dropped), else NULL.
 *     Both are owned by the reply and freed by spamd_reply_free().
 *   - After SPAMD_ERROR, every later feed/eof returns SPAMD_ERROR again. */
#ifndef RMILTER_SPAMD_PROTO_H
#define RMILTER_SPAMD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbuf.h"

#define SPAMD_HEAD_MAX		(16u * 1024u)
#define SPAMD_REPLY_MAX_DEFAULT	(1024u * 1024u)
#define SPAMD_SCORE_MAX		1e9	/* |score|, |threshold| */

/* Appends "VERB SPAMC/1.5\r\nContent-length: N\r\nUser: USER\r\n\r\n".
 * VERB is SYMBOLS, REPORT or CHECK; USER may be NULL (no User: line).
 * Control characters and spaces are dropped from VERB and USER. */
void spamd_request_head(struct mbuf *out, const char *verb,
    uint64_t content_length, const char *user);

enum spamd_rc {
	SPAMD_MORE = 0,		/* everything consumed, feed more */
	SPAMD_DONE,		/* a whole reply parsed */
	SPAMD_ERROR,		/* spamd failed, or the reply is bad: error[] */
};

struct spamd_reply {
	int code;		/* the status line's code (0 = EX_OK) */
	bool is_spam;
	double score, threshold;
	char *symbols;		/* "GTUBE,NO_RECEIVED" (owned) or NULL */
	char *report;		/* the body as text (owned) or NULL */
	char error[128];	/* why SPAMD_ERROR */

	/* private state */
	int state;
	size_t max_len;
	size_t budget;		/* head bytes still allowed */
	uint64_t content_length;
	bool has_length;
	bool has_spam;
	bool got_bytes;
	struct mbuf line;	/* the current, incomplete head line */
	struct mbuf body;
};

/* Prepares R; MAX_LEN (the body cap) 0 means SPAMD_REPLY_MAX_DEFAULT. */
void spamd_reply_init(struct spamd_reply *r, size_t max_len);

/* Feeds P[0..N).  SPAMD_MORE: all consumed.  SPAMD_DONE: *USED bytes were
 * the end of the reply.  SPAMD_ERROR: error[] says why.  Once DONE or
 * ERROR it returns the same with *USED = 0. */
enum spamd_rc spamd_reply_feed(struct spamd_reply *r, const uint8_t *p,
    size_t n, size_t *used);

/* spamd closed the connection: SPAMD_DONE if the head and all
 * Content-length bytes (or, without Content-length, anything) arrived;
 * else SPAMD_ERROR ("reply cut short"). */
enum spamd_rc spamd_reply_eof(struct spamd_reply *r);

void spamd_reply_free(struct spamd_reply *r);

#endif

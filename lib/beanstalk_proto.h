/* beanstalk_proto.h -- sans-IO beanstalkd client codec: the commands of a
 * job put (an optional "use", then "put") and the parser of their replies.
 *
 * No sockets, no event loop.  Request, written in one go (pipelined):
 *   beanstalk_use_build()  "use <tube>\r\n"           (only for a tube other
 *                                                     than the connection's)
 *   beanstalk_put_head()   "put <pri> <delay> <ttr> <bytes>\r\n"
 *   the job data           exactly <bytes> bytes, any content
 *   beanstalk_put_tail()   "\r\n"
 *
 * Contract of the reply parser (beanstalk_reply_feed / _eof):
 *   - Replies are lines ended by "\r\n" (a bare "\n" is accepted too); they
 *     may arrive in any split.  A line longer than BEANSTALK_LINE_MAX bytes
 *     is an error, found without buffering more than that.
 *   - With a tube given to beanstalk_reply_init(), the first line answers
 *     "use": "USING <tube>" (the same tube, else an error) goes on to the
 *     put's reply; OUT_OF_MEMORY, INTERNAL_ERROR, BAD_FORMAT or
 *     UNKNOWN_COMMAND end the exchange (BEANSTALK_DONE with that status,
 *     failed_use set: the put's own reply, which follows on the wire, is not
 *     read).
 *   - The put's reply: "INSERTED <id>" -> BEANSTALK_DONE, status INSERTED,
 *     id; "BURIED <id>" -> DONE, BURIED (stored, but buried: beanstalkd ran
 *     out of memory growing its queue); EXPECTED_CRLF, JOB_TOO_BIG,
 *     DRAINING and the four general errors above -> DONE with that status.
 *     <id> is 1 to 20 decimal digits that fit in 64 bits.
 *   - Anything else (an unknown line, an empty line, a bad id, an
 *     over-long line, EOF before the reply is complete) -> BEANSTALK_ERROR,
 *     error[] says why (peer bytes outside printable ASCII shown as '?').
 *   - BEANSTALK_DONE consumes up to and including the last reply's newline;
 *     bytes after it are not consumed.  Once DONE or ERROR, later feed and
 *     eof calls return the same and consume nothing. */
#ifndef RMILTER_BEANSTALK_PROTO_H
#define RMILTER_BEANSTALK_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbuf.h"

#define BEANSTALK_LINE_MAX	256u	/* reply bytes before the newline */
#define BEANSTALK_TUBE_MAX	200u	/* beanstalkd's longest tube name */
#define BEANSTALK_TUBE_DEFAULT	"default"	/* a new connection's tube */

/* true if NAME is a tube name beanstalkd accepts: 1..200 bytes of letters,
 * digits and "-+/;.$_()", not starting with '-'. */
bool beanstalk_tube_valid(const char *name);

/* "use <tube>\r\n"; TUBE must be valid (beanstalk_tube_valid). */
void beanstalk_use_build(struct mbuf *out, const char *tube);
/* "put <pri> <delay> <ttr> <bytes>\r\n": the job data (BYTES bytes) and
 * beanstalk_put_tail() must follow. */
void beanstalk_put_head(struct mbuf *out, uint32_t pri, uint32_t delay,
    uint32_t ttr, uint64_t bytes);
/* "\r\n" after the job data. */
void beanstalk_put_tail(struct mbuf *out);

enum beanstalk_rc {
	BEANSTALK_MORE = 0,	/* everything consumed, feed more */
	BEANSTALK_DONE,		/* the exchange ended: see status */
	BEANSTALK_ERROR,	/* not a beanstalkd reply: error[] */
};

enum beanstalk_status {
	BEANSTALK_INSERTED = 0,
	BEANSTALK_BURIED,
	BEANSTALK_EXPECTED_CRLF,
	BEANSTALK_JOB_TOO_BIG,
	BEANSTALK_DRAINING,
	BEANSTALK_OUT_OF_MEMORY,
	BEANSTALK_INTERNAL_ERROR,
	BEANSTALK_BAD_FORMAT,
	BEANSTALK_UNKNOWN_COMMAND,
};

struct beanstalk_reply {
	enum beanstalk_status status;	/* after DONE */
	uint64_t id;			/* INSERTED, BURIED: the job id */
	bool failed_use;		/* DONE: the error answered "use" */
	char error[200];		/* ERROR: why; DONE: the status explained */

	/* private state */
	int state;
	char tube[BEANSTALK_TUBE_MAX + 1];	/* "use" sent: expected echo */
	size_t len;
	char buf[BEANSTALK_LINE_MAX + 1];
};

/* A parser for one exchange; TUBE: the tube of a "use" sent before the put
 * (NULL or "": none sent). */
void beanstalk_reply_init(struct beanstalk_reply *r, const char *tube);

/* Feeds P[0..N).  BEANSTALK_MORE: all consumed.  BEANSTALK_DONE: *USED bytes
 * were the replies.  BEANSTALK_ERROR: error[] says why. */
enum beanstalk_rc beanstalk_reply_feed(struct beanstalk_reply *r,
    const uint8_t *p, size_t n, size_t *used);

/* The server closed the connection: ERROR unless the exchange was done. */
enum beanstalk_rc beanstalk_reply_eof(struct beanstalk_reply *r);

/* "INSERTED", "JOB_TOO_BIG", ... */
const char *beanstalk_status_name(enum beanstalk_status st);

#endif

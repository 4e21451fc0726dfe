/* dns_answer.h -- one DNS answer (name, type) as the resolver hands it on:
 * a status and the records of the asked type, parsed from the raw reply.
 *
 * Sans-IO: dns_answer_parse() turns the c-ares status and the reply bytes
 * (network input) into a struct dns_answer; it never trusts the bytes (the
 * c-ares parsers check every length) and caps what it keeps. */
#ifndef RMILTER_DNS_ANSWER_H
#define RMILTER_DNS_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#define DNS_T_A		1
#define DNS_T_PTR	12
#define DNS_T_MX	15
#define DNS_T_TXT	16
#define DNS_T_AAAA	28

#define DNS_ANSWER_MAX_RR	64	/* records kept per answer */
#define DNS_ANSWER_MAX_TEXT	8192	/* bytes kept per TXT record */

enum dns_status {
	DNS_OK = 0,		/* records in rr[] (at least one) */
	DNS_NXDOMAIN,		/* the name does not exist */
	DNS_NODATA,		/* the name exists, no record of the type */
	DNS_TEMPFAIL,		/* timeout, SERVFAIL, refused, bad reply ... */
};

struct dns_rr {
	uint8_t addr[16];	/* A: addr[0..3]; AAAA: all 16 */
	char *text;		/* TXT (strings of one record joined), MX
				 * exchange, PTR name; NUL-terminated (a NUL
				 * inside TXT data ends it); NULL for A/AAAA */
};

struct dns_answer {
	enum dns_status status;
	int type;		/* DNS_T_* asked for */
	size_t n;
	struct dns_rr *rr;	/* n records (owned) */
	uint32_t ttl;		/* seconds the answer may be kept: the least
				 * TTL of the answer records; NXDOMAIN and
				 * NODATA: the SOA's (RFC 2308), else 0 */
	char why[64];		/* TEMPFAIL: what went wrong, for logs */
};

/* Fills A from a c-ares query result: ARES_STATUS as passed to the query
 * callback, ABUF/ALEN the reply (may be NULL/0).  TYPE is the type asked
 * for (A, AAAA, TXT, MX or PTR; any other gives TEMPFAIL).  Always fills A
 * (free with dns_answer_free); an unparsable reply is TEMPFAIL. */
void dns_answer_parse(struct dns_answer *a, int type, int ares_status,
    const uint8_t *abuf, size_t alen);

/* The TTL of a reply (see dns_answer.ttl); -1 if the bytes are malformed.
 * Walks the header, the questions, the answers and, without answers, the
 * authority records, checking every length. */
long dns_reply_ttl(const uint8_t *abuf, size_t alen);

/* A deep copy of SRC into DST. */
void dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src);
void dns_answer_free(struct dns_answer *a);

const char *dns_status_name(enum dns_status st);
const char *dns_type_name(int type);

#endif

/* spamd_proto.c -- sans-IO SPAMC/1.5 request head and SPAMD reply parser.
 * See spamd_proto.h for the contract. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spamd_proto.h"
#include "xmalloc.h"

enum spamd_state {
	SS_STATUS,		/* "SPAMD/1.x CODE MESSAGE" */
	SS_HEADER,		/* header lines up to the blank line */
	SS_BODY_LENGTH,		/* Content-length bytes */
	SS_BODY_EOF,		/* everything up to EOF */
	SS_DONE,
	SS_ERROR,
};

static enum spamd_rc spamd_fail(struct spamd_reply *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static enum spamd_rc status_parse(struct spamd_reply *, const char *, size_t);
static enum spamd_rc header_parse(struct spamd_reply *, const char *, size_t);
static enum spamd_rc spam_parse(struct spamd_reply *, const char *, size_t);
static int number_parse(const char *, size_t, double *);
static enum spamd_rc head_end(struct spamd_reply *);
static enum spamd_rc reply_done(struct spamd_reply *);

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_symbol_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    is_digit(c) || c == '_' || c == '-' || c == '.' || c == ':';
}

static enum spamd_rc
spamd_fail(struct spamd_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->state = SS_ERROR;
	return SPAMD_ERROR;
}

/* Appends S without control characters and spaces. */
static void
append_word(struct mbuf *out, const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s > ' ' && (unsigned char)*s != 0x7f)
			mbuf_append_u8(out, (uint8_t)*s);
}

void
spamd_request_head(struct mbuf *out, const char *verb,
    uint64_t content_length, const char *user)
{
	char num[32];
	int len;

	append_word(out, verb);
	mbuf_append(out, " SPAMC/1.5\r\n", 12);
	len = snprintf(num, sizeof(num), "%" PRIu64, content_length);
	mbuf_append(out, "Content-length: ", 16);
	mbuf_append(out, num, (size_t)len);
	mbuf_append(out, "\r\n", 2);
	if (user != NULL) {
		size_t before = mbuf_avail(out);

		mbuf_append(out, "User: ", 6);
		append_word(out, user);
		if (mbuf_avail(out) == before + 6)
			out->len -= 6;	/* nothing left of USER */
		else
			mbuf_append(out, "\r\n", 2);
	}
	mbuf_append(out, "\r\n", 2);
}

void
spamd_reply_init(struct spamd_reply *r, size_t max_len)
{
	memset(r, 0, sizeof(*r));
	r->max_len = max_len ? max_len : SPAMD_REPLY_MAX_DEFAULT;
	r->budget = SPAMD_HEAD_MAX;
	r->state = SS_STATUS;
}

void
spamd_reply_free(struct spamd_reply *r)
{
	free(r->symbols);
	free(r->report);
	r->symbols = r->report = NULL;
	mbuf_free(&r->line);
	mbuf_free(&r->body);
}


/* "SPAMD/1.x CODE[ MESSAGE]" */
static enum spamd_rc
status_parse(struct spamd_reply *r, const char *s, size_t len)
{
	size_t k = 8, nd = 0;
	int code = 0;

	if (len < 10 || memcmp(s, "SPAMD/1.", 8) != 0 || !is_digit(s[8]))
		return spamd_fail(r, "status line garbled");
	while (k < len && is_digit(s[k]))
		k++;
	if (k >= len || s[k] != ' ')
		return spamd_fail(r, "status line garbled");
	while (k < len && s[k] == ' ')
		k++;
	while (k < len && is_digit(s[k])) {
		if (++nd > 4)
			return spamd_fail(r, "status line garbled");
		code = code * 10 + (s[k] - '0');
		k++;
	}
	if (nd == 0 || (k < len && s[k] != ' '))
		return spamd_fail(r, "status line garbled");
	while (k < len && s[k] == ' ')
		k++;
	r->code = code;
	if (code != 0)
		return spamd_fail(r, "spamd error %d: %.80s", code, s + k);
	r->state = SS_HEADER;
	return SPAMD_MORE;
}

/* A decimal number: [+-] digits [. digits] or [+-] . digits; at most 10
 * integer and 8 fraction digits.  0 with *OUT set, or -1. */
static int
number_parse(const char *s, size_t len, double *out)
{
	uint64_t m = 0;
	size_t k = 0, ni = 0, nf = 0;
	bool neg = false;
	double v;

	if (k < len && (s[k] == '-' || s[k] == '+'))
		neg = s[k++] == '-';
	for (; k < len && is_digit(s[k]); k++, ni++) {
		if (ni >= 10)
			return -1;
		m = m * 10 + (uint64_t)(s[k] - '0');
	}
	if (k < len && s[k] == '.') {
		for (k++; k < len && is_digit(s[k]); k++, nf++) {
			if (nf >= 8)
				return -1;
			m = m * 10 + (uint64_t)(s[k] - '0');
		}
	}
	if (ni + nf == 0 || k != len)
		return -1;
	v = (double)m;
	while (nf-- > 0)
		v /= 10;
	*out = neg ? -v : v;
	return 0;
}

/* "True ; 1000.0 / 5.0" (also False, Yes, No) */
static enum spamd_rc
spam_parse(struct spamd_reply *r, const char *v, size_t len)
{
	const char *semi = memchr(v, ';', len), *slash, *a, *b;
	size_t wl, al, bl;

	if (r->has_spam)
		return spamd_fail(r, "duplicate Spam: header");
	if (semi == NULL)
		return spamd_fail(r, "Spam: header garbled");
	wl = (size_t)(semi - v);
	while (wl > 0 && is_ows(v[wl - 1]))
		wl--;
	if ((wl == 4 && strncasecmp(v, "True", 4) == 0) ||
	    (wl == 3 && strncasecmp(v, "Yes", 3) == 0))
		r->is_spam = true;
	else if ((wl == 5 && strncasecmp(v, "False", 5) == 0) ||
	    (wl == 2 && strncasecmp(v, "No", 2) == 0))
		r->is_spam = false;
	else
		return spamd_fail(r, "Spam: header garbled");
	a = semi + 1;
	slash = memchr(a, '/', len - (size_t)(a - v));
	if (slash == NULL)
		return spamd_fail(r, "Spam: header garbled");
	al = (size_t)(slash - a);
	b = slash + 1;
	bl = len - (size_t)(b - v);
	while (al > 0 && is_ows(*a)) {
		a++;
		al--;
	}
	while (al > 0 && is_ows(a[al - 1]))
		al--;
	while (bl > 0 && is_ows(*b)) {
		b++;
		bl--;
	}
	while (bl > 0 && is_ows(b[bl - 1]))
		bl--;
	if (number_parse(a, al, &r->score) < 0 ||
	    number_parse(b, bl, &r->threshold) < 0)
		return spamd_fail(r, "Spam: score or threshold not a number");
	if (!isfinite(r->score) || !isfinite(r->threshold) ||
	    fabs(r->score) > SPAMD_SCORE_MAX ||
	    fabs(r->threshold) > SPAMD_SCORE_MAX)
		return spamd_fail(r, "Spam: score or threshold out of range");
	r->has_spam = true;
	return SPAMD_MORE;
}

static enum spamd_rc
length_parse(struct spamd_reply *r, const char *v, size_t len)
{
	uint64_t x = 0;
	size_t k;

	if (len == 0)
		return spamd_fail(r, "Content-length not a number");
	for (k = 0; k < len; k++) {
		unsigned d;

		if (!is_digit(v[k]))
			return spamd_fail(r, "Content-length not a number");
		d = (unsigned)(v[k] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return spamd_fail(r, "Content-length overflow");
		x = x * 10 + d;
	}
	if (r->has_length && x != r->content_length)
		return spamd_fail(r, "Content-length values disagree");
	r->has_length = true;
	r->content_length = x;
	return SPAMD_MORE;
}

static enum spamd_rc
header_parse(struct spamd_reply *r, const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len), *v;
	size_t nlen, vlen;

	if (colon == NULL)
		return spamd_fail(r, "header line without a colon");
	nlen = (size_t)(colon - s);
	while (nlen > 0 && is_ows(s[nlen - 1]))
		nlen--;
	if (nlen == 0)
		return spamd_fail(r, "empty header name");
	v = colon + 1;
	vlen = len - (size_t)(v - s);
	while (vlen > 0 && is_ows(*v)) {
		v++;
		vlen--;
	}
	while (vlen > 0 && is_ows(v[vlen - 1]))
		vlen--;
	if (nlen == 14 && strncasecmp(s, "Content-length", 14) == 0)
		return length_parse(r, v, vlen);
	if (nlen == 4 && strncasecmp(s, "Spam", 4) == 0)
		return spam_parse(r, v, vlen);
	return SPAMD_MORE;
}

static enum spamd_rc
head_end(struct spamd_reply *r)
{
	if (!r->has_spam)
		return spamd_fail(r, "no Spam: header");
	if (!r->has_length) {
		r->state = SS_BODY_EOF;
		return SPAMD_MORE;
	}
	if (r->content_length > r->max_len)
		return spamd_fail(r, "body over %zu bytes", r->max_len);
	if (r->content_length == 0)
		return reply_done(r);
	r->state = SS_BODY_LENGTH;
	return SPAMD_MORE;
}

/* The body is in r->body: make report and (if it is one) symbols. */
static enum spamd_rc
reply_done(struct spamd_reply *r)
{
	const char *b = (const char *)mbuf_data(&r->body);
	size_t len = mbuf_avail(&r->body), k, start, end;
	bool list = true, need_name = true;

	r->state = SS_DONE;
	if (len == 0)
		return SPAMD_DONE;
	r->report = xmalloc(len + 1);
	for (k = 0; k < len; k++)
		r->report[k] = b[k] == '\0' ? ' ' : b[k];
	r->report[len] = '\0';

	start = 0;
	end = len;
	while (start < end && (is_ows(b[start]) || b[start] == '\r' ||
	    b[start] == '\n'))
		start++;
	while (end > start && (is_ows(b[end - 1]) || b[end - 1] == '\r' ||
	    b[end - 1] == '\n'))
		end--;
	if (start == end)
		return SPAMD_DONE;
	for (k = start; k < end && list; k++) {
		if (b[k] == ',') {
			list = !need_name;
			need_name = true;
		} else if (is_symbol_char(b[k])) {
			need_name = false;
		} else {
			list = false;
		}
	}
	if (list && !need_name)
		r->symbols = xstrndup(b + start, end - start);
	return SPAMD_DONE;
}

enum spamd_rc
spamd_reply_feed(struct spamd_reply *r, const uint8_t *p, size_t n,
    size_t *used)
{
	enum spamd_rc rc = SPAMD_MORE;
	size_t i = 0, len, take, k;
	const char *s;
	int lr;

	*used = 0;
	if (r->state == SS_DONE)
		return SPAMD_DONE;
	if (r->state == SS_ERROR)
		return SPAMD_ERROR;
	if (n > 0)
		r->got_bytes = true;
	while (i < n && rc == SPAMD_MORE) {
		switch (r->state) {
		case SS_STATUS:
		case SS_HEADER:
			if ((lr = mbuf_take_line(&r->line, p, n, &i,
			    &r->budget, &len)) < 0) {
				rc = spamd_fail(r, "head over %u bytes",
				    SPAMD_HEAD_MAX);
				break;
			}
			if (lr == 0) {
				/* not spamd at all: fail now, not at the
				 * head limit or the timeout */
				k = mbuf_avail(&r->line);
				if (r->state == SS_STATUS && memcmp(
				    mbuf_data(&r->line), "SPAMD/1.",
				    k < 8 ? k : 8) != 0)
					rc = spamd_fail(r,
					    "status line garbled");
				break;
			}
			s = (const char *)mbuf_data(&r->line);
			for (k = 0; k < len; k++)
				if (((unsigned char)s[k] < ' ' &&
				    s[k] != '\t') || s[k] == 0x7f)
					break;
			if (k < len)
				rc = spamd_fail(r, "%s in head", s[k] == '\0' ?
				    "NUL byte" : "control character");
			else if (r->state == SS_STATUS)
				rc = status_parse(r, s, len);
			else if (len == 0)
				rc = head_end(r);
			else
				rc = header_parse(r, s, len);
			mbuf_reset(&r->line);
			break;
		case SS_BODY_LENGTH:
			take = n - i;
			if (take > r->content_length - mbuf_avail(&r->body))
				take = (size_t)(r->content_length -
				    mbuf_avail(&r->body));
			mbuf_append(&r->body, p + i, take);
			i += take;
			if (mbuf_avail(&r->body) == r->content_length)
				rc = reply_done(r);
			break;
		case SS_BODY_EOF:
			take = n - i;
			if (take > r->max_len - mbuf_avail(&r->body)) {
				rc = spamd_fail(r, "body over %zu bytes",
				    r->max_len);
				break;
			}
			mbuf_append(&r->body, p + i, take);
			i += take;
			break;
		default:
			rc = spamd_fail(r, "parser in a bad state");
			break;
		}
	}
	*used = i;
	return rc;
}

enum spamd_rc
spamd_reply_eof(struct spamd_reply *r)
{
	switch (r->state) {
	case SS_DONE:
		return SPAMD_DONE;
	case SS_ERROR:
		return SPAMD_ERROR;
	case SS_BODY_EOF:
		return reply_done(r);
	case SS_BODY_LENGTH:
		return spamd_fail(r, "reply cut short (%zu of %" PRIu64
		    " body bytes)", mbuf_avail(&r->body), r->content_length);
	case SS_STATUS:
		if (!r->got_bytes)
			return spamd_fail(r, "connection closed before the "
			    "reply");
		/* FALLTHROUGH */
	default:
		return spamd_fail(r, "reply cut short");
	}
}

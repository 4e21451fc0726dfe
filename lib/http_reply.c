/* http_reply.c -- sans-IO HTTP/1.x response parser and request helpers.
 * A byte-driven state machine over caller buffers; see http_reply.h for the
 * contract.  Lines are collected in r->line, bounded by a per-phase budget
 * (head, chunk-size line, trailers), before anything looks at them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_reply.h"

enum http_state {
	HS_STATUS,		/* status line (blank lines skipped) */
	HS_HEADER,		/* header lines up to the blank line */
	HS_BODY_LENGTH,		/* Content-Length bytes */
	HS_BODY_EOF,		/* everything up to EOF */
	HS_CHUNK_SIZE,		/* chunk-size [; extensions] line */
	HS_CHUNK_DATA,		/* chunk bytes */
	HS_CHUNK_CRLF,		/* the line end after a chunk's data */
	HS_TRAILER,		/* trailer lines up to the blank line */
	HS_DONE,
	HS_ERROR,
};

static enum http_rc http_fail(struct http_reply *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static int line_check(struct http_reply *, const char *);
static bool status_prefix_bad(const struct http_reply *);
static enum http_rc status_parse(struct http_reply *, const char *, size_t);
static enum http_rc header_process(struct http_reply *, const char *,
    size_t);
static enum http_rc head_line(struct http_reply *, const char *, size_t);
static enum http_rc head_end(struct http_reply *);
static enum http_rc chunk_size_parse(struct http_reply *, const char *,
    size_t);
static enum http_rc reply_done(struct http_reply *);

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

/* RFC 9110 tchar */
static bool
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static enum http_rc
http_fail(struct http_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->state = HS_ERROR;
	r->keepalive = false;
	return HTTP_ERROR;
}

void
http_reply_init(struct http_reply *r, size_t max_body)
{
	memset(r, 0, sizeof(*r));
	r->max_body = max_body ? max_body : HTTP_BODY_MAX_DEFAULT;
	r->state = HS_STATUS;
	r->budget = HTTP_HEAD_MAX;
}

void
http_reply_free(struct http_reply *r)
{
	mbuf_free(&r->body);
	mbuf_free(&r->line);
	mbuf_free(&r->hdr);
}


/* 0 if the complete line S (r->line) holds no NUL and no control character
 * other than HTAB; else fails R and returns -1.  WHAT names the part. */
static int
line_check(struct http_reply *r, const char *what)
{
	const uint8_t *s = mbuf_data(&r->line);
	size_t len = mbuf_avail(&r->line), k;

	for (k = 0; k < len; k++) {
		if (s[k] == '\0') {
			http_fail(r, "NUL byte in %s", what);
			return -1;
		}
		if ((s[k] < ' ' && s[k] != '\t') || s[k] == 0x7f) {
			http_fail(r, "control character 0x%02x in %s", s[k],
			    what);
			return -1;
		}
	}
	return 0;
}

/* true when the incomplete status line in r->line can no longer start
 * with "HTTP/1." (a peer that is not an HTTP server fails at once instead
 * of at the head limit or the timeout). */
static bool
status_prefix_bad(const struct http_reply *r)
{
	const uint8_t *s = mbuf_data(&r->line);
	size_t len = mbuf_avail(&r->line);

	if (len == 0 || s[0] == '\r')
		return false;
	if (len > 7)
		len = 7;
	return memcmp(s, "HTTP/1.", len) != 0;
}

/* "HTTP/1.x NNN[ reason]" */
static enum http_rc
status_parse(struct http_reply *r, const char *s, size_t len)
{
	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !is_digit(s[7]) ||
	    s[8] != ' ' || !is_digit(s[9]) || !is_digit(s[10]) ||
	    !is_digit(s[11]) || (len > 12 && s[12] != ' '))
		return http_fail(r, "status line garbled");
	r->minor = s[7] - '0';
	r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (r->status < 100 || r->status > 599)
		return http_fail(r, "status %d out of range", r->status);
	if (r->status == 101)
		return http_fail(r, "unexpected 101 Switching Protocols");
	r->state = HS_HEADER;
	return HTTP_MORE;
}

/* Decimal list "N" or "N, N": every element equal. */
static enum http_rc
content_length_parse(struct http_reply *r, const char *v, size_t len)
{
	size_t k = 0;

	for (;;) {
		uint64_t x = 0;
		size_t ndig = 0;

		while (k < len && is_ows(v[k]))
			k++;
		while (k < len && is_digit(v[k])) {
			unsigned d = (unsigned)(v[k] - '0');

			if (x > (UINT64_MAX - d) / 10)
				return http_fail(r, "Content-Length overflow");
			x = x * 10 + d;
			ndig++;
			k++;
		}
		while (k < len && is_ows(v[k]))
			k++;
		if (ndig == 0 || (k < len && v[k] != ','))
			return http_fail(r, "Content-Length not a number");
		if (r->has_length && x != r->content_length)
			return http_fail(r, "Content-Length values disagree");
		r->has_length = true;
		r->content_length = x;
		if (k == len)
			return HTTP_MORE;
		k++;	/* ',' */
	}
}

/* Calls FN on each non-empty element of the comma-separated list V. */
static enum http_rc
list_each(struct http_reply *r, const char *v, size_t len,
    enum http_rc (*fn)(struct http_reply *, const char *, size_t))
{
	size_t k = 0, a, b;
	enum http_rc rc;

	while (k < len) {
		while (k < len && (is_ows(v[k]) || v[k] == ','))
			k++;
		a = k;
		while (k < len && v[k] != ',')
			k++;
		b = k;
		while (b > a && is_ows(v[b - 1]))
			b--;
		if (b > a && (rc = fn(r, v + a, b - a)) != HTTP_MORE)
			return rc;
	}
	return HTTP_MORE;
}

static enum http_rc
te_token(struct http_reply *r, const char *t, size_t len)
{
	if (len == 7 && strncasecmp(t, "chunked", 7) == 0) {
		if (r->chunked)
			return http_fail(r, "chunked applied twice");
		r->chunked = true;
		return HTTP_MORE;
	}
	if (len == 8 && strncasecmp(t, "identity", 8) == 0 && !r->chunked)
		return HTTP_MORE;
	return http_fail(r, "unsupported transfer-coding \"%.*s\"",
	    len > 32 ? 32 : (int)len, t);
}

static enum http_rc
conn_token(struct http_reply *r, const char *t, size_t len)
{
	if (len == 5 && strncasecmp(t, "close", 5) == 0)
		r->conn_close = true;
	else if (len == 10 && strncasecmp(t, "keep-alive", 10) == 0)
		r->conn_keepalive = true;
	return HTTP_MORE;
}

/* One complete header field "Name: value" (folds already joined). */
static enum http_rc
header_process(struct http_reply *r, const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len), *v;
	size_t nlen, vlen, k;

	if (colon == NULL)
		return http_fail(r, "header line without a colon");
	nlen = (size_t)(colon - s);
	if (nlen == 0)
		return http_fail(r, "empty header name");
	for (k = 0; k < nlen; k++)
		if (!is_tchar((unsigned char)s[k]))
			return http_fail(r, "header name garbled");
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && is_ows(*v)) {
		v++;
		vlen--;
	}
	while (vlen > 0 && is_ows(v[vlen - 1]))
		vlen--;
	if (r->status < 200)
		return HTTP_MORE;	/* interim reply: syntax only */
	if (nlen == 14 && strncasecmp(s, "Content-Length", 14) == 0)
		return content_length_parse(r, v, vlen);
	if (nlen == 17 && strncasecmp(s, "Transfer-Encoding", 17) == 0) {
		if (vlen == 0)
			return http_fail(r, "empty Transfer-Encoding");
		return list_each(r, v, vlen, te_token);
	}
	if (nlen == 10 && strncasecmp(s, "Connection", 10) == 0)
		return list_each(r, v, vlen, conn_token);
	if (nlen == 12 && strncasecmp(s, "Content-Type", 12) == 0) {
		if (vlen >= sizeof(r->content_type))
			vlen = sizeof(r->content_type) - 1;
		memcpy(r->content_type, v, vlen);
		r->content_type[vlen] = '\0';
	}
	return HTTP_MORE;
}

/* A complete line in HS_HEADER.  A header is kept in r->hdr until the next
 * line shows it is not folded. */
static enum http_rc
head_line(struct http_reply *r, const char *s, size_t len)
{
	enum http_rc rc;

	if (len > 0 && is_ows(s[0])) {
		if (mbuf_avail(&r->hdr) == 0)
			return http_fail(r, "folded line before any header");
		while (len > 0 && is_ows(*s)) {
			s++;
			len--;
		}
		mbuf_append_u8(&r->hdr, ' ');
		mbuf_append(&r->hdr, s, len);
		return HTTP_MORE;
	}
	if (mbuf_avail(&r->hdr) > 0) {
		rc = header_process(r, (const char *)mbuf_data(&r->hdr),
		    mbuf_avail(&r->hdr));
		mbuf_reset(&r->hdr);
		if (rc != HTTP_MORE)
			return rc;
	}
	if (len == 0)
		return head_end(r);
	mbuf_append(&r->hdr, s, len);
	return HTTP_MORE;
}

/* The blank line after the headers: choose the body framing. */
static enum http_rc
head_end(struct http_reply *r)
{
	if (r->status < 200) {
		/* interim: the real reply follows */
		r->state = HS_STATUS;
		return HTTP_MORE;
	}
	if (r->chunked && r->has_length)
		return http_fail(r, "both Content-Length and "
		    "Transfer-Encoding");
	r->keepalive = !r->conn_close && (r->minor >= 1 || r->conn_keepalive);
	if (r->status == 204 || r->status == 304)
		return reply_done(r);
	if (r->chunked) {
		if (r->minor == 0)
			r->keepalive = false;	/* RFC 9112 6.1 */
		r->state = HS_CHUNK_SIZE;
		r->budget = HTTP_CHUNK_LINE_MAX;
		return HTTP_MORE;
	}
	if (r->has_length) {
		if (r->content_length > r->max_body)
			return http_fail(r, "body over %zu bytes",
			    r->max_body);
		r->remaining = r->content_length;
		if (r->remaining == 0)
			return reply_done(r);
		r->state = HS_BODY_LENGTH;
		return HTTP_MORE;
	}
	r->keepalive = false;
	r->state = HS_BODY_EOF;
	return HTTP_MORE;
}

/* chunk-size [BWS ; extensions] */
static enum http_rc
chunk_size_parse(struct http_reply *r, const char *s, size_t len)
{
	uint64_t v = 0;
	size_t k = 0;
	int d;

	while (k < len && (d = hex_value(s[k])) >= 0) {
		if (v > (UINT64_MAX >> 4))
			return http_fail(r, "chunk size overflow");
		v = (v << 4) | (uint64_t)d;
		k++;
	}
	if (k == 0)
		return http_fail(r, "chunk size garbled");
	while (k < len && is_ows(s[k]))
		k++;
	if (k < len && s[k] != ';')
		return http_fail(r, "chunk size garbled");
	if (v == 0) {
		r->state = HS_TRAILER;
		r->budget = HTTP_HEAD_MAX;
		return HTTP_MORE;
	}
	if (v > r->max_body - mbuf_avail(&r->body))
		return http_fail(r, "body over %zu bytes", r->max_body);
	r->remaining = v;
	r->state = HS_CHUNK_DATA;
	return HTTP_MORE;
}

static enum http_rc
reply_done(struct http_reply *r)
{
	*mbuf_reserve(&r->body, 1) = '\0';	/* not counted in len */
	r->state = HS_DONE;
	return HTTP_DONE;
}

enum http_rc
http_reply_feed(struct http_reply *r, const uint8_t *p, size_t n,
    size_t *used)
{
	enum http_rc rc = HTTP_MORE;
	size_t i = 0, len, take;
	const char *s;
	int lr;

	*used = 0;
	if (r->state == HS_DONE)
		return HTTP_DONE;
	if (r->state == HS_ERROR)
		return HTTP_ERROR;
	if (n > 0)
		r->got_bytes = true;
	while (i < n && rc == HTTP_MORE) {
		switch (r->state) {
		case HS_STATUS:
		case HS_HEADER:
			if ((lr = mbuf_take_line(&r->line, p, n, &i,
			    &r->budget, &len)) < 0) {
				rc = http_fail(r, "head over %u bytes",
				    HTTP_HEAD_MAX);
				break;
			}
			if (lr == 0) {
				if (r->state == HS_STATUS &&
				    status_prefix_bad(r)) {
					rc = http_fail(r,
					    "status line garbled");
				}
				break;
			}
			s = (const char *)mbuf_data(&r->line);
			if (line_check(r, "head") < 0) {
				rc = HTTP_ERROR;
				break;
			}
			if (r->state == HS_STATUS)
				rc = len == 0 ? HTTP_MORE :
				    status_parse(r, s, len);
			else
				rc = head_line(r, s, len);
			mbuf_reset(&r->line);
			break;
		case HS_BODY_LENGTH:
			take = n - i;
			if (take > r->remaining)
				take = (size_t)r->remaining;
			mbuf_append(&r->body, p + i, take);
			i += take;
			r->remaining -= take;
			if (r->remaining == 0)
				rc = reply_done(r);
			break;
		case HS_BODY_EOF:
			take = n - i;
			if (take > r->max_body - mbuf_avail(&r->body)) {
				rc = http_fail(r, "body over %zu bytes",
				    r->max_body);
				break;
			}
			mbuf_append(&r->body, p + i, take);
			i += take;
			break;
		case HS_CHUNK_SIZE:
			if ((lr = mbuf_take_line(&r->line, p, n, &i,
			    &r->budget, &len)) < 0) {
				rc = http_fail(r, "chunk-size line over %u "
				    "bytes", HTTP_CHUNK_LINE_MAX);
				break;
			}
			if (lr == 0)
				break;
			if (line_check(r, "chunk-size line") < 0) {
				rc = HTTP_ERROR;
				break;
			}
			rc = chunk_size_parse(r,
			    (const char *)mbuf_data(&r->line), len);
			mbuf_reset(&r->line);
			break;
		case HS_CHUNK_DATA:
			take = n - i;
			if (take > r->remaining)
				take = (size_t)r->remaining;
			mbuf_append(&r->body, p + i, take);
			i += take;
			r->remaining -= take;
			if (r->remaining == 0) {
				r->state = HS_CHUNK_CRLF;
				r->budget = 2;
			}
			break;
		case HS_CHUNK_CRLF:
			lr = mbuf_take_line(&r->line, p, n, &i, &r->budget,
			    &len);
			if (lr < 0 || (lr == 1 && len != 0)) {
				rc = http_fail(r, "chunk data not followed "
				    "by CRLF");
				break;
			}
			if (lr == 1) {
				mbuf_reset(&r->line);
				r->state = HS_CHUNK_SIZE;
				r->budget = HTTP_CHUNK_LINE_MAX;
			}
			break;
		case HS_TRAILER:
			if ((lr = mbuf_take_line(&r->line, p, n, &i,
			    &r->budget, &len)) < 0) {
				rc = http_fail(r, "trailers over %u bytes",
				    HTTP_HEAD_MAX);
				break;
			}
			if (lr == 0)
				break;
			if (line_check(r, "trailer") < 0) {
				rc = HTTP_ERROR;
				break;
			}
			mbuf_reset(&r->line);
			if (len == 0)
				rc = reply_done(r);
			break;
		default:
			rc = http_fail(r, "parser in a bad state");
			break;
		}
	}
	*used = i;
	return rc;
}

enum http_rc
http_reply_eof(struct http_reply *r)
{
	switch (r->state) {
	case HS_DONE:
		return HTTP_DONE;
	case HS_ERROR:
		return HTTP_ERROR;
	case HS_BODY_EOF:
		return reply_done(r);
	case HS_STATUS:
		if (!r->got_bytes) {
			r->no_reply = true;
			return http_fail(r, "connection closed before the "
			    "reply");
		}
		/* FALLTHROUGH */
	default:
		return http_fail(r, "reply cut short");
	}
}

/* ---- request helpers ---------------------------------------------------- */

static bool
is_ctl(unsigned char c)
{
	return c < ' ' || c == 0x7f;
}

void
http_request_line(struct mbuf *out, const char *method, const char *path)
{
	const unsigned char *s;

	for (s = (const unsigned char *)method; *s != '\0'; s++)
		if (!is_ctl(*s) && *s != ' ')
			mbuf_append_u8(out, *s);
	mbuf_append_u8(out, ' ');
	for (s = (const unsigned char *)path; *s != '\0'; s++)
		if (!is_ctl(*s) && *s != ' ')
			mbuf_append_u8(out, *s);
	mbuf_append(out, " HTTP/1.1\r\n", 11);
}

void
http_request_header(struct mbuf *out, const char *name, const char *value)
{
	const unsigned char *s;

	for (s = (const unsigned char *)name; *s != '\0'; s++)
		if (is_tchar(*s))
			mbuf_append_u8(out, *s);
	mbuf_append(out, ": ", 2);
	for (s = (const unsigned char *)value; *s != '\0'; s++)
		if (!is_ctl(*s) || *s == '\t')
			mbuf_append_u8(out, *s);
	mbuf_append(out, "\r\n", 2);
}

void
http_request_end(struct mbuf *out)
{
	mbuf_append(out, "\r\n", 2);
}

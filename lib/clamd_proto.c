/* clamd_proto.c -- sans-IO clamd INSTREAM request encoder and reply parser.
 * See clamd_proto.h for the contract. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clamd_proto.h"

enum clamd_state {
	CS_READ,		/* collecting the reply line */
	CS_DONE,
	CS_ERROR,
};

static enum clamd_rc clamd_fail(struct clamd_reply *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static enum clamd_rc reply_parse(struct clamd_reply *);

void
clamd_instream_begin(struct mbuf *out)
{
	mbuf_append(out, "zINSTREAM", 10);	/* with its NUL */
}

void
clamd_instream_chunk(struct mbuf *out, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t c = n > UINT32_MAX ? UINT32_MAX : n;

		mbuf_append_u32(out, (uint32_t)c);
		mbuf_append(out, p, c);
		p += c;
		n -= c;
	}
}

void
clamd_instream_end(struct mbuf *out)
{
	mbuf_append_u32(out, 0);
}

static enum clamd_rc
clamd_fail(struct clamd_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->state = CS_ERROR;
	return CLAMD_ERROR;
}

void
clamd_reply_init(struct clamd_reply *r)
{
	memset(r, 0, offsetof(struct clamd_reply, buf));
	r->buf[0] = '\0';
	r->status = CLAMD_FAILED;
	r->state = CS_READ;
}

void
clamd_reply_free(struct clamd_reply *r)
{
	r->len = 0;
}

/* Copies S[0..LEN) to DST (SIZE bytes, NUL-terminated, truncated), bytes
 * outside printable ASCII turned into '?'. */
static void
copy_printable(char *dst, size_t size, const char *s, size_t len)
{
	size_t k;

	if (len > size - 1)
		len = size - 1;
	for (k = 0; k < len; k++)
		dst[k] = (s[k] >= ' ' && s[k] <= '~') ? s[k] : '?';
	dst[len] = '\0';
}

static bool
ends_with(const char *s, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);

	return len >= sl && memcmp(s + len - sl, suffix, sl) == 0;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The line in r->buf[0..len). */
static enum clamd_rc
reply_parse(struct clamd_reply *r)
{
	const char *s = r->buf, *name;
	size_t len = r->len, nlen, k;
	char shown[64];

	while (len > 0 && is_blank(*s)) {
		s++;
		len--;
	}
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	if (len == 0)
		return clamd_fail(r, "empty reply");
	if (ends_with(s, len, " FOUND")) {
		nlen = len - 6;
		while (nlen > 0 && is_blank(s[nlen - 1]))
			nlen--;
		name = s;
		for (k = nlen; k >= 2; k--) {
			if (s[k - 2] == ':' && s[k - 1] == ' ') {
				name = s + k;
				break;
			}
		}
		nlen -= (size_t)(name - s);
		while (nlen > 0 && is_blank(*name)) {
			name++;
			nlen--;
		}
		if (nlen == 0 || name[nlen - 1] == ':')
			return clamd_fail(r, "FOUND without a virus name");
		copy_printable(r->virus, sizeof(r->virus), name, nlen);
		r->status = CLAMD_VIRUS;
	} else if ((len == 2 && memcmp(s, "OK", 2) == 0) ||
	    ends_with(s, len, ": OK")) {
		r->status = CLAMD_CLEAN;
	} else if ((len == 5 && memcmp(s, "ERROR", 5) == 0) ||
	    ends_with(s, len, " ERROR")) {
		nlen = len >= 6 ? len - 6 : 0;
		while (nlen > 0 && is_blank(s[nlen - 1]))
			nlen--;
		if (nlen == 0)
			snprintf(r->error, sizeof(r->error), "clamd ERROR");
		else
			copy_printable(r->error, sizeof(r->error), s, nlen);
		r->size_limit = memmem(s, nlen, "size limit exceeded", 19) !=
		    NULL;
		r->status = CLAMD_FAILED;
	} else {
		copy_printable(shown, sizeof(shown), s, len);
		return clamd_fail(r, "unexpected reply \"%s\"", shown);
	}
	r->state = CS_DONE;
	return CLAMD_DONE;
}

enum clamd_rc
clamd_reply_feed(struct clamd_reply *r, const uint8_t *p, size_t n,
    size_t *used)
{
	size_t i;

	*used = 0;
	if (r->state == CS_DONE)
		return CLAMD_DONE;
	if (r->state == CS_ERROR)
		return CLAMD_ERROR;
	for (i = 0; i < n; i++) {
		if (p[i] == '\0' || p[i] == '\n') {
			*used = i + 1;
			r->buf[r->len] = '\0';
			return reply_parse(r);
		}
		if (r->len >= CLAMD_REPLY_MAX) {
			*used = i;
			return clamd_fail(r, "reply over %u bytes",
			    CLAMD_REPLY_MAX);
		}
		r->buf[r->len++] = (char)p[i];
	}
	*used = n;
	return CLAMD_MORE;
}

enum clamd_rc
clamd_reply_eof(struct clamd_reply *r)
{
	if (r->state == CS_DONE)
		return CLAMD_DONE;
	if (r->state == CS_ERROR)
		return CLAMD_ERROR;
	r->buf[r->len] = '\0';
	return reply_parse(r);
}

/* beanstalk_proto.c -- sans-IO beanstalkd put encoder and reply parser.
 * See beanstalk_proto.h for the contract. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "beanstalk_proto.h"

enum beanstalk_state {
	BS_WANT_USING = 0,	/* "use" sent: its reply comes first */
	BS_WANT_PUT,		/* the put's reply */
	BS_DONE,
	BS_ERROR,
};

/* The error replies, with what they mean; PUT_ONLY: not a reply to use. */
static const struct {
	const char *word;
	enum beanstalk_status st;
	bool put_only;
	const char *why;
} bs_errors[] = {
	{ "EXPECTED_CRLF", BEANSTALK_EXPECTED_CRLF, true,
	    "the job data did not end with CRLF" },
	{ "JOB_TOO_BIG", BEANSTALK_JOB_TOO_BIG, true,
	    "the job is larger than beanstalkd's max job size (-z)" },
	{ "DRAINING", BEANSTALK_DRAINING, true,
	    "beanstalkd is draining and takes no new jobs" },
	{ "OUT_OF_MEMORY", BEANSTALK_OUT_OF_MEMORY, false,
	    "beanstalkd is out of memory" },
	{ "INTERNAL_ERROR", BEANSTALK_INTERNAL_ERROR, false,
	    "beanstalkd internal error" },
	{ "BAD_FORMAT", BEANSTALK_BAD_FORMAT, false,
	    "beanstalkd says the command was malformed" },
	{ "UNKNOWN_COMMAND", BEANSTALK_UNKNOWN_COMMAND, false,
	    "beanstalkd does not know the command" },
};

static enum beanstalk_rc bs_fail(struct beanstalk_reply *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

bool
beanstalk_tube_valid(const char *name)
{
	static const char extra[] = "-+/;.$_()";
	size_t i;

	if (name == NULL || name[0] == '\0' || name[0] == '-')
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		unsigned char c = (unsigned char)name[i];

		if (i >= BEANSTALK_TUBE_MAX)
			return false;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(extra, c) != NULL)
			continue;
		return false;
	}
	return true;
}

void
beanstalk_use_build(struct mbuf *out, const char *tube)
{
	mbuf_append(out, "use ", 4);
	mbuf_append(out, tube, strlen(tube));
	mbuf_append(out, "\r\n", 2);
}

void
beanstalk_put_head(struct mbuf *out, uint32_t pri, uint32_t delay,
    uint32_t ttr, uint64_t bytes)
{
	char line[96];
	int n;

	n = snprintf(line, sizeof(line), "put %" PRIu32 " %" PRIu32 " %" PRIu32
	    " %" PRIu64 "\r\n", pri, delay, ttr, bytes);
	mbuf_append(out, line, (size_t)n);
}

void
beanstalk_put_tail(struct mbuf *out)
{
	mbuf_append(out, "\r\n", 2);
}

const char *
beanstalk_status_name(enum beanstalk_status st)
{
	size_t i;

	switch (st) {
	case BEANSTALK_INSERTED:
		return "INSERTED";
	case BEANSTALK_BURIED:
		return "BURIED";
	default:
		break;
	}
	for (i = 0; i < sizeof(bs_errors) / sizeof(bs_errors[0]); i++)
		if (bs_errors[i].st == st)
			return bs_errors[i].word;
	return "?";
}

void
beanstalk_reply_init(struct beanstalk_reply *r, const char *tube)
{
	memset(r, 0, sizeof(*r));
	if (tube != NULL && tube[0] != '\0') {
		snprintf(r->tube, sizeof(r->tube), "%s", tube);
		r->state = BS_WANT_USING;
	} else {
		r->state = BS_WANT_PUT;
	}
}

static enum beanstalk_rc
bs_fail(struct beanstalk_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->state = BS_ERROR;
	return BEANSTALK_ERROR;
}

/* The first bytes of the current line, printable, for an error message. */
static const char *
bs_sample(const struct beanstalk_reply *r, char *out, size_t outlen)
{
	size_t i, n = r->len < outlen - 1 ? r->len : outlen - 1;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)r->buf[i];

		out[i] = c >= ' ' && c <= '~' ? (char)c : '?';
	}
	out[n] = '\0';
	return out;
}

/* Parses the decimal job id at S (the rest of the line). */
static bool
bs_id(const char *s, size_t len, uint64_t *id)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return false;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*id = v;
	return true;
}

/* true if the line is exactly WORD followed by " <id>"; the id in *ID. */
static bool
bs_word_id(const struct beanstalk_reply *r, const char *word, uint64_t *id,
    bool *bad_id)
{
	size_t wl = strlen(word);

	if (r->len < wl + 1 || memcmp(r->buf, word, wl) != 0 ||
	    r->buf[wl] != ' ')
		return false;
	*bad_id = !bs_id(r->buf + wl + 1, r->len - wl - 1, id);
	return true;
}

static enum beanstalk_rc
bs_done(struct beanstalk_reply *r, enum beanstalk_status st, const char *why)
{
	r->status = st;
	r->state = BS_DONE;
	if (why != NULL)
		snprintf(r->error, sizeof(r->error), "%s%s: %s",
		    r->failed_use ? "use: " : "", beanstalk_status_name(st),
		    why);
	return BEANSTALK_DONE;
}

/* One complete reply line in buf[0..len) (newline removed). */
static enum beanstalk_rc
bs_line(struct beanstalk_reply *r)
{
	char sample[64];
	bool bad_id = false;
	size_t i;

	if (r->len == 0)
		return bs_fail(r, "empty reply line");
	if (memchr(r->buf, '\0', r->len) != NULL)
		return bs_fail(r, "NUL byte in the reply \"%s\"",
		    bs_sample(r, sample, sizeof(sample)));
	r->buf[r->len] = '\0';
	for (i = 0; i < sizeof(bs_errors) / sizeof(bs_errors[0]); i++) {
		if (strcmp(r->buf, bs_errors[i].word) != 0)
			continue;
		if (r->state == BS_WANT_USING && bs_errors[i].put_only)
			break;		/* not an answer to "use" */
		r->failed_use = r->state == BS_WANT_USING;
		return bs_done(r, bs_errors[i].st, bs_errors[i].why);
	}
	if (r->state == BS_WANT_USING) {
		if (r->len > 6 && memcmp(r->buf, "USING ", 6) == 0) {
			if (strcmp(r->buf + 6, r->tube) != 0)
				return bs_fail(r, "\"use %s\" answered with "
				    "\"%s\"", r->tube,
				    bs_sample(r, sample, sizeof(sample)));
			r->state = BS_WANT_PUT;
			return BEANSTALK_MORE;
		}
		return bs_fail(r, "unexpected reply to use: \"%s\"",
		    bs_sample(r, sample, sizeof(sample)));
	}
	if (bs_word_id(r, "INSERTED", &r->id, &bad_id)) {
		if (bad_id)
			return bs_fail(r, "bad job id in \"%s\"",
			    bs_sample(r, sample, sizeof(sample)));
		return bs_done(r, BEANSTALK_INSERTED, NULL);
	}
	if (bs_word_id(r, "BURIED", &r->id, &bad_id)) {
		if (bad_id)
			return bs_fail(r, "bad job id in \"%s\"",
			    bs_sample(r, sample, sizeof(sample)));
		return bs_done(r, BEANSTALK_BURIED, "stored but buried: "
		    "beanstalkd is out of memory for its queue");
	}
	return bs_fail(r, "unexpected reply to put: \"%s\"",
	    bs_sample(r, sample, sizeof(sample)));
}

enum beanstalk_rc
beanstalk_reply_feed(struct beanstalk_reply *r, const uint8_t *p, size_t n,
    size_t *used)
{
	size_t i;

	*used = 0;
	if (r->state == BS_DONE)
		return BEANSTALK_DONE;
	if (r->state == BS_ERROR)
		return BEANSTALK_ERROR;
	for (i = 0; i < n; i++) {
		enum beanstalk_rc rc;

		if (p[i] != '\n') {
			if (r->len >= BEANSTALK_LINE_MAX) {
				*used = i + 1;
				return bs_fail(r, "reply line longer than %u "
				    "bytes", BEANSTALK_LINE_MAX);
			}
			r->buf[r->len++] = (char)p[i];
			continue;
		}
		if (r->len > 0 && r->buf[r->len - 1] == '\r')
			r->len--;
		rc = bs_line(r);
		r->len = 0;
		if (rc != BEANSTALK_MORE) {
			*used = i + 1;
			return rc;
		}
	}
	*used = n;
	return BEANSTALK_MORE;
}

enum beanstalk_rc
beanstalk_reply_eof(struct beanstalk_reply *r)
{
	if (r->state == BS_DONE)
		return BEANSTALK_DONE;
	if (r->state == BS_ERROR)
		return BEANSTALK_ERROR;
	if (r->len > 0)
		return bs_fail(r, "connection closed in the middle of a reply "
		    "line");
	return bs_fail(r, "connection closed before the reply to %s",
	    r->state == BS_WANT_USING ? "use" : "put");
}

/* rspamd_reply.c -- parse rspamd's /checkv2 JSON reply (jansson) into a
 * struct rspamd_result with every string sanitized, and format rmilter's
 * X-Spamd-Result value.  See rspamd_reply.h for the contract. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mbuf.h"
#include "rspamd_reply.h"
#include "xmalloc.h"

#define ERR_SHOWN_MAX	40	/* bytes of a peer string quoted in ERR */
#define TIME_REAL_MAX	1e6	/* s; a larger time_real is ignored */

static void set_err(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void buf_printf(struct mbuf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static const struct {
	const char *name;
	enum rspamd_action action;
} rspamd_actions[] = {
	{ "no action", RSPAMD_NO_ACTION },
	{ "greylist", RSPAMD_GREYLIST },
	{ "add header", RSPAMD_ADD_HEADER },
	{ "rewrite subject", RSPAMD_REWRITE_SUBJECT },
	{ "soft reject", RSPAMD_SOFT_REJECT },
	{ "reject", RSPAMD_REJECT },
	{ "discard", RSPAMD_DISCARD },
	{ "quarantine", RSPAMD_QUARANTINE },
};

#define NACTIONS (sizeof(rspamd_actions) / sizeof(rspamd_actions[0]))

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
buf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	va_start(ap, fmt);
	vsnprintf((char *)mbuf_reserve(b, (size_t)n + 1), (size_t)n + 1, fmt,
	    ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *
rspamd_action_name(enum rspamd_action a)
{
	size_t i;

	for (i = 0; i < NACTIONS; i++)
		if (rspamd_actions[i].action == a)
			return rspamd_actions[i].name;
	return "unknown";
}

/* "reject", "soft reject" or "soft_reject", any case.  0 or -1. */
static int
action_lookup(const char *s, size_t len, enum rspamd_action *a)
{
	size_t i, k;

	for (i = 0; i < NACTIONS; i++) {
		const char *n = rspamd_actions[i].name;

		if (strlen(n) != len)
			continue;
		for (k = 0; k < len; k++) {
			char c = s[k];

			if (c == '_')
				c = ' ';
			else if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (c != n[k])
				break;
		}
		if (k == len) {
			*a = rspamd_actions[i].action;
			return 0;
		}
	}
	return -1;
}

static bool
is_ctl(unsigned char c)
{
	return c < ' ' || c == 0x7f;
}

/* A copy of S[0..LEN) with every control character (NUL, CR, LF, ...)
 * turned into a space. */
static char *
san_line(const char *s, size_t len)
{
	char *d = xmalloc(len + 1);
	size_t k;

	for (k = 0; k < len; k++)
		d[k] = is_ctl((unsigned char)s[k]) ? ' ' : s[k];
	d[len] = '\0';
	return d;
}

/* A copy of the header value S[0..LEN): a fold (CR LF or LF, then a blank)
 * becomes LF + the blank; other control characters but HTAB become spaces;
 * trailing blanks and folds are dropped. */
static char *
san_header(const char *s, size_t len)
{
	char *d = xmalloc(len + 1);
	size_t k, o = 0;

	for (k = 0; k < len; k++) {
		unsigned char c = (unsigned char)s[k];
		bool blank_next;

		if (c == '\r' && k + 2 < len && s[k + 1] == '\n' &&
		    (s[k + 2] == ' ' || s[k + 2] == '\t'))
			continue;	/* the LF that follows makes the fold */
		blank_next = k + 1 < len && (s[k + 1] == ' ' ||
		    s[k + 1] == '\t');
		if (c == '\n' && blank_next && o > 0)
			d[o++] = '\n';
		else if (c == '\t')
			d[o++] = '\t';
		else
			d[o++] = is_ctl(c) ? ' ' : (char)c;
	}
	while (o > 0 && (d[o - 1] == ' ' || d[o - 1] == '\t' ||
	    d[o - 1] == '\n'))
		o--;
	d[o] = '\0';
	return d;
}

/* A field name: printable ASCII without ':', not empty. */
static bool
header_name_valid(const char *s, size_t len)
{
	size_t k;

	if (len == 0)
		return false;
	for (k = 0; k < len; k++)
		if (s[k] <= ' ' || s[k] > '~' || s[k] == ':')
			return false;
	return true;
}

static char *
string_dup(json_t *v, bool header)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);

	return header ? san_header(s, len) : san_line(s, len);
}

/* The options array joined with ", ", at most RSPAMD_OPTIONS_MAX bytes (cut
 * at a UTF-8 character boundary); NULL if there are none. */
static char *
options_join(json_t *arr)
{
	struct mbuf b = { 0 };
	json_t *o;
	size_t i, cut;
	char *s;

	if (!json_is_array(arr))
		return NULL;
	json_array_foreach(arr, i, o) {
		if (!json_is_string(o))
			continue;
		if (mbuf_avail(&b) > 0)
			mbuf_append(&b, ", ", 2);
		s = string_dup(o, false);
		mbuf_append(&b, s, strlen(s));
		free(s);
		if (mbuf_avail(&b) >= RSPAMD_OPTIONS_MAX)
			break;
	}
	if (mbuf_avail(&b) == 0) {
		mbuf_free(&b);
		return NULL;
	}
	if (b.len > RSPAMD_OPTIONS_MAX) {
		cut = RSPAMD_OPTIONS_MAX;
		while (cut > 0 && (b.p[cut] & 0xc0) == 0x80)
			cut--;
		b.len = cut;
	}
	mbuf_append_u8(&b, '\0');
	return (char *)b.p;
}

/* Members of OBJ that are objects are symbols (name = the key). */
static void
symbols_parse(struct rspamd_result *r, json_t *obj)
{
	const char *key;
	size_t klen, cap = 0;
	json_t *val, *sc;
	struct rspamd_symbol *sym;
	double score;

	json_object_keylen_foreach(obj, key, klen, val) {
		if (!json_is_object(val))
			continue;
		if (r->nsymbols >= RSPAMD_SYMBOLS_MAX)
			break;
		sc = json_object_get(val, "score");
		score = json_is_number(sc) ? json_number_value(sc) : 0;
		if (!isfinite(score) || fabs(score) > RSPAMD_SCORE_MAX)
			continue;
		if (r->nsymbols == cap) {
			cap = cap ? cap * 2 : 16;
			r->symbols = xrealloc(r->symbols, cap *
			    sizeof(*r->symbols));
		}
		sym = &r->symbols[r->nsymbols++];
		sym->name = san_line(key, klen);
		sym->score = score;
		sym->options = options_join(json_object_get(val, "options"));
	}
}

/* One add_headers value: "v" or {"value": "v", "order": n}. */
static void
add_header_one(struct rspamd_result *r, const char *name, size_t nlen,
    json_t *v)
{
	struct rspamd_hdr *h;
	json_t *val = v, *ord = NULL;

	if (r->nadd >= RSPAMD_HEADERS_MAX)
		return;
	if (json_is_object(v)) {
		val = json_object_get(v, "value");
		ord = json_object_get(v, "order");
	}
	if (!json_is_string(val))
		return;
	if (r->add == NULL)
		r->add = xcalloc(RSPAMD_HEADERS_MAX, sizeof(*r->add));
	h = &r->add[r->nadd++];
	h->name = san_line(name, nlen);
	h->value = string_dup(val, true);
	if (json_is_integer(ord) && json_integer_value(ord) >= INT_MIN &&
	    json_integer_value(ord) <= INT_MAX) {
		h->order = (int)json_integer_value(ord);
		h->has_order = true;
	}
}

static int
milter_parse(struct rspamd_result *r, json_t *blk, char *err, size_t errlen)
{
	json_t *add, *rm, *val, *el;
	const char *key;
	size_t klen, i;

	if (!json_is_object(blk)) {
		set_err(err, errlen, "milter block not an object");
		return -1;
	}
	add = json_object_get(blk, "add_headers");
	rm = json_object_get(blk, "remove_headers");
	if (add != NULL && !json_is_object(add)) {
		set_err(err, errlen, "add_headers not an object");
		return -1;
	}
	if (rm != NULL && !json_is_object(rm)) {
		set_err(err, errlen, "remove_headers not an object");
		return -1;
	}
	if (add != NULL) {
		json_object_keylen_foreach(add, key, klen, val) {
			if (!header_name_valid(key, klen))
				continue;
			if (json_is_array(val)) {
				json_array_foreach(val, i, el)
					add_header_one(r, key, klen, el);
			} else {
				add_header_one(r, key, klen, val);
			}
		}
	}
	if (rm != NULL) {
		json_object_keylen_foreach(rm, key, klen, val) {
			json_int_t x;

			if (r->nrm >= RSPAMD_HEADERS_MAX)
				break;
			if (!header_name_valid(key, klen) ||
			    !json_is_integer(val))
				continue;
			x = json_integer_value(val);
			if (x < INT_MIN || x > INT_MAX)
				continue;
			if (r->rm == NULL)
				r->rm = xcalloc(RSPAMD_HEADERS_MAX,
				    sizeof(*r->rm));
			r->rm[r->nrm].name = san_line(key, klen);
			r->rm[r->nrm].index = (int)x;
			r->nrm++;
		}
	}
	return 0;
}

/* A required score field NAME of M into *OUT.  0 or -1 with ERR. */
static int
score_get(json_t *m, const char *name, bool required, double *out, char *err,
    size_t errlen)
{
	json_t *v = json_object_get(m, name);

	if (v == NULL) {
		if (!required)
			return 0;
		set_err(err, errlen, "no %s", name);
		return -1;
	}
	if (!json_is_number(v)) {
		set_err(err, errlen, "%s not a number", name);
		return -1;
	}
	*out = json_number_value(v);
	if (!isfinite(*out) || fabs(*out) > RSPAMD_SCORE_MAX) {
		set_err(err, errlen, "%s out of range", name);
		return -1;
	}
	return 0;
}

static int
action_get(struct rspamd_result *r, json_t *m, char *err, size_t errlen)
{
	json_t *v = json_object_get(m, "action");
	const char *s;
	size_t len;
	char *shown;

	if (v == NULL) {
		if (r->is_skipped)
			return 0;	/* RSPAMD_NO_ACTION */
		set_err(err, errlen, "no action");
		return -1;
	}
	if (!json_is_string(v)) {
		set_err(err, errlen, "action not a string");
		return -1;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (action_lookup(s, len, &r->action) == 0)
		return 0;
	shown = san_line(s, len > ERR_SHOWN_MAX ? ERR_SHOWN_MAX : len);
	set_err(err, errlen, "unknown action \"%s\"", shown);
	free(shown);
	return -1;
}

int
rspamd_result_parse(struct rspamd_result *r, const char *json, size_t len,
    char *err, size_t errlen)
{
	json_error_t je;
	json_t *top, *m, *v, *d;

	memset(r, 0, sizeof(*r));
	top = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
	    JSON_DECODE_ANY, &je);
	if (top == NULL) {
		set_err(err, errlen, "not JSON: %.80s (at byte %d)", je.text,
		    je.position);
		return -1;
	}
	if (!json_is_object(top)) {
		set_err(err, errlen, "not a JSON object");
		goto fail;
	}
	/* the metric: top level, or the older "default" object */
	m = top;
	d = json_object_get(top, "default");
	if (json_object_get(top, "action") == NULL && json_is_object(d))
		m = d;
	if (json_is_boolean(v = json_object_get(top, "is_skipped")) ||
	    json_is_boolean(v = json_object_get(m, "is_skipped")))
		r->is_skipped = json_is_true(v);
	if (action_get(r, m, err, errlen) < 0 ||
	    score_get(m, "score", !r->is_skipped, &r->score, err,
	    errlen) < 0 ||
	    score_get(m, "required_score", !r->is_skipped, &r->required_score,
	    err, errlen) < 0)
		goto fail;

	if ((v = json_object_get(m, "symbols")) != NULL) {
		if (!json_is_object(v)) {
			set_err(err, errlen, "symbols not an object");
			goto fail;
		}
		symbols_parse(r, v);
	} else if (m != top) {
		symbols_parse(r, m);
	}

	if (json_is_string(v = json_object_get(m, "subject")) ||
	    json_is_string(v = json_object_get(top, "subject")))
		r->subject = string_dup(v, false);
	/* (json_is_* evaluate their argument twice: no self-assignment) */
	v = json_object_get(top, "messages");
	v = json_is_object(v) ? json_object_get(v, "smtp_message") : NULL;
	if (json_is_string(v))
		r->smtp_message = string_dup(v, false);
	if (json_is_string(v = json_object_get(top, "message-id")))
		r->message_id = string_dup(v, false);
	v = json_object_get(top, "dkim-signature");
	if (json_is_array(v))
		v = json_array_get(v, 0);
	if (json_is_string(v))
		r->dkim_signature = string_dup(v, true);
	if (json_is_number(v = json_object_get(top, "time_real")) &&
	    isfinite(json_number_value(v)) && json_number_value(v) >= 0 &&
	    json_number_value(v) <= TIME_REAL_MAX)
		r->time_real = json_number_value(v);

	if ((v = json_object_get(top, "milter")) != NULL ||
	    (v = json_object_get(top, "rmilter")) != NULL) {
		if (milter_parse(r, v, err, errlen) < 0)
			goto fail;
	}
	json_decref(top);
	return 0;
fail:
	json_decref(top);
	rspamd_result_free(r);
	return -1;
}

void
rspamd_result_free(struct rspamd_result *r)
{
	size_t i;

	for (i = 0; i < r->nsymbols; i++) {
		free(r->symbols[i].name);
		free(r->symbols[i].options);
	}
	for (i = 0; i < r->nadd; i++) {
		free(r->add[i].name);
		free(r->add[i].value);
	}
	for (i = 0; i < r->nrm; i++)
		free(r->rm[i].name);
	free(r->symbols);
	free(r->add);
	free(r->rm);
	free(r->subject);
	free(r->smtp_message);
	free(r->message_id);
	free(r->dkim_signature);
	memset(r, 0, sizeof(*r));
}

/* Descending |score|, then ascending name. */
static int
symbol_cmp(const void *a, const void *b)
{
	const struct rspamd_symbol *x = *(const struct rspamd_symbol *const *)a;
	const struct rspamd_symbol *y = *(const struct rspamd_symbol *const *)b;
	double ax = fabs(x->score), ay = fabs(y->score);

	if (ax > ay)
		return -1;
	if (ax < ay)
		return 1;
	return strcmp(x->name, y->name);
}

/* -0.0 prints as 0.00 */
static double
unsigned_zero(double x)
{
	return x == 0 ? 0.0 : x;
}

char *
rspamd_result_format(const struct rspamd_result *r)
{
	struct mbuf b = { 0 };
	const struct rspamd_symbol **v = NULL;
	size_t i;

	buf_printf(&b, "default: %s [%.2f / %.2f]",
	    r->score >= r->required_score ? "True" : "False",
	    unsigned_zero(r->score), unsigned_zero(r->required_score));
	if (r->nsymbols > 0) {
		v = xcalloc(r->nsymbols, sizeof(*v));
		for (i = 0; i < r->nsymbols; i++)
			v[i] = &r->symbols[i];
		qsort(v, r->nsymbols, sizeof(*v), symbol_cmp);
	}
	for (i = 0; i < r->nsymbols; i++)
		buf_printf(&b, "\n\t %s(%.2f)[%s]", v[i]->name,
		    unsigned_zero(v[i]->score),
		    v[i]->options ? v[i]->options : "");
	free(v);
	mbuf_append_u8(&b, '\0');
	return (char *)b.p;
}

/* template.c -- expansion of reply text templates (${queue_id}, ${from}, ...)
 * into one line that is safe inside an SMTP reply. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "template.h"

/* The output: a fixed buffer, filled up to len-1 bytes. */
struct template_out {
	char	*p;
	size_t	 len;		/* size of p */
	size_t	 n;		/* bytes written */
	bool	 truncated;	/* a byte did not fit */
	bool	 in_ctl;	/* the last byte written replaced a control run */
};

static void
template_out_byte(struct template_out *o, unsigned char c)
{
	bool ctl = c < 0x20 || c == 0x7f;

	if (ctl) {		/* a run of control bytes -> one space */
		if (o->in_ctl)
			return;
		c = ' ';
	}
	if (o->truncated || o->n + 1 >= o->len) {
		o->truncated = true;
		return;
	}
	o->p[o->n++] = (char)c;
	o->in_ctl = ctl;
}

static void
template_out_bytes(struct template_out *o, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && !o->truncated; i++)
		template_out_byte(o, (unsigned char)s[i]);
}

/* After a truncation, drops a UTF-8 sequence whose tail was cut off. */
static void
template_out_trim_utf8(struct template_out *o)
{
	size_t i = o->n, back = 0, need;
	unsigned char c;

	while (i > 0 && back < 4 &&
	    ((unsigned char)o->p[i - 1] & 0xc0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0)
		return;
	c = (unsigned char)o->p[i - 1];
	if ((c & 0xe0) == 0xc0)
		need = 2;
	else if ((c & 0xf0) == 0xe0)
		need = 3;
	else if ((c & 0xf8) == 0xf0)
		need = 4;
	else
		return;		/* ASCII or not a lead byte: leave it */
	if (back + 1 < need)
		o->n = i - 1;
}

/* The value of variable NAME (NL bytes), formatted into SCORE if needed;
 * NULL if NAME is not a known variable. */
static const char *
template_var_lookup(const char *name, size_t nl,
    const struct template_vars *v, char *score, size_t scorelen)
{
	static const struct template_vars none;
	static const struct {
		const char *name;
		size_t off;
	} tab[] = {
		{ "queue_id", offsetof(struct template_vars, queue_id) },
		{ "from", offsetof(struct template_vars, from) },
		{ "rcpt", offsetof(struct template_vars, rcpt) },
		{ "ip", offsetof(struct template_vars, ip) },
		{ "helo", offsetof(struct template_vars, helo) },
		{ "module", offsetof(struct template_vars, module) },
		{ "reason", offsetof(struct template_vars, reason) },
	};
	size_t i;

	if (v == NULL)
		v = &none;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		const char *val;

		if (strlen(tab[i].name) != nl ||
		    memcmp(tab[i].name, name, nl) != 0)
			continue;
		memcpy(&val, (const char *)v + tab[i].off, sizeof(val));
		return val != NULL ? val : "";
	}
	if (nl == 5 && memcmp(name, "score", 5) == 0) {
		double d = v->score;

		if (!v->has_score)
			return "";
		if (d == 0)	/* no "-0.00" */
			d = 0;
		snprintf(score, scorelen, "%.2f", d);
		return score;
	}
	return NULL;
}

static bool
template_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

/* Expands TMPL into OUT (LEN bytes, NUL-terminated whenever LEN > 0).
 * ${name} of a known variable becomes its value (a NULL value or a score
 * without has_score: ""); anything else -- an unknown ${x}, a '$' without
 * '{', an unterminated "${" -- is kept as written.  In values and in the
 * literal text alike, every run of control bytes (CR, LF, TAB, ...) becomes
 * one space, so the result is a single line; '%' is kept (the milter
 * codec escapes it).  On truncation a cut-off UTF-8 sequence is dropped.
 * Returns strlen(OUT). */
size_t
template_expand(const char *tmpl, const struct template_vars *v, char *out,
    size_t len)
{
	struct template_out o = { out, len, 0, false, false };
	char score[400];	/* "%.2f" of DBL_MAX is 312 bytes */
	const char *s = tmpl != NULL ? tmpl : "";

	if (out == NULL || len == 0)
		return 0;
	while (*s != '\0' && !o.truncated) {
		const char *name, *e, *val;

		if (s[0] != '$' || s[1] != '{') {
			template_out_byte(&o, (unsigned char)*s++);
			continue;
		}
		name = s + 2;
		for (e = name; template_name_char(*e); e++)
			;
		if (*e != '}') {	/* not a variable: keep the "$" */
			template_out_byte(&o, (unsigned char)*s++);
			continue;
		}
		val = template_var_lookup(name, (size_t)(e - name), v, score,
		    sizeof(score));
		if (val != NULL)
			template_out_bytes(&o, val, strlen(val));
		else
			template_out_bytes(&o, s, (size_t)(e + 1 - s));
		s = e + 1;
	}
	if (o.truncated)
		template_out_trim_utf8(&o);
	out[o.n] = '\0';
	return o.n;
}

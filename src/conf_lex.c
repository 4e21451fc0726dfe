/* conf_lex.c -- rmilter.conf tokenizer: words, quoted strings, regexes and
 * punctuation, with line tracking.  Sans-IO: works on a memory buffer. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"
#include "xmalloc.h"

struct conf_sbuf {
	char *p;
	size_t len, cap;
};

static void conf_sbuf_putc(struct conf_sbuf *b, char c);
static enum conf_tok_kind conf_lex_error(struct conf_tok *t, unsigned line,
    const char *msg);
static enum conf_tok_kind conf_lex_string(struct conf_lexer *lx,
    struct conf_tok *t);
static enum conf_tok_kind conf_lex_regex(struct conf_lexer *lx,
    struct conf_tok *t);
static enum conf_tok_kind conf_lex_word(struct conf_lexer *lx,
    struct conf_tok *t);
static bool conf_lex_is_word_end(const struct conf_lexer *lx, const char *p);

static void
conf_sbuf_putc(struct conf_sbuf *b, char c)
{
	if (b->len + 2 > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->p = xrealloc(b->p, b->cap);
	}
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

/* Starts tokenizing BUF (LEN bytes, not owned) named FILE at line 1. */
void
conf_lex_init(struct conf_lexer *lx, const char *file, const char *buf,
    size_t len)
{
	lx->file = file;
	lx->p = buf;
	lx->end = buf + len;
	lx->line = 1;
}

/* Frees the strings of T and zeroes it. */
void
conf_tok_clear(struct conf_tok *t)
{
	free(t->text);
	free(t->flags);
	memset(t, 0, sizeof(*t));
}

/* A static description of token kind K, for messages. */
const char *
conf_tok_kind_name(enum conf_tok_kind k)
{
	switch (k) {
	case CONF_TOK_EOF:	return "end of file";
	case CONF_TOK_WORD:	return "word";
	case CONF_TOK_STRING:	return "quoted string";
	case CONF_TOK_REGEX:	return "regex";
	case CONF_TOK_LBRACE:	return "'{'";
	case CONF_TOK_RBRACE:	return "'}'";
	case CONF_TOK_SEMI:	return "';'";
	case CONF_TOK_COMMA:	return "','";
	case CONF_TOK_EQ:	return "'='";
	case CONF_TOK_PLUSEQ:	return "'+='";
	case CONF_TOK_ERROR:	return "invalid input";
	}
	return "token";
}

static enum conf_tok_kind
conf_lex_error(struct conf_tok *t, unsigned line, const char *msg)
{
	t->kind = CONF_TOK_ERROR;
	t->line = line;
	t->text = xstrdup(msg);
	t->len = strlen(msg);
	return t->kind;
}

/* "..." or '...'; backslash escapes \" \' \\ \n \t, any other \x is kept
 * as written.  A string ends on its line. */
static enum conf_tok_kind
conf_lex_string(struct conf_lexer *lx, struct conf_tok *t)
{
	struct conf_sbuf b = { NULL, 0, 0 };
	char q = *lx->p++;

	conf_sbuf_putc(&b, '\0');	/* always allocated, "" for empty */
	b.len = 0;
	while (lx->p < lx->end && *lx->p != q) {
		char c = *lx->p;

		if (c == '\n' || c == '\0' || b.len >= CONF_MAX_TOKEN) {
			free(b.p);
			return conf_lex_error(t, t->line, c == '\0' ?
			    "NUL byte inside a quoted string" :
			    b.len >= CONF_MAX_TOKEN ? "quoted string too long" :
			    "unterminated quoted string (strings end on their line)");
		}
		if (c == '\\' && lx->p + 1 < lx->end) {
			char n = lx->p[1];

			if (n == q || n == '\\') {
				conf_sbuf_putc(&b, n);
				lx->p += 2;
				continue;
			} else if (n == 'n') {
				conf_sbuf_putc(&b, '\n');
				lx->p += 2;
				continue;
			} else if (n == 't') {
				conf_sbuf_putc(&b, '\t');
				lx->p += 2;
				continue;
			}
		}
		conf_sbuf_putc(&b, c);
		lx->p++;
	}
	if (lx->p >= lx->end) {
		free(b.p);
		return conf_lex_error(t, t->line, "unterminated quoted string");
	}
	lx->p++;		/* closing quote */
	t->kind = CONF_TOK_STRING;
	t->text = b.p;
	t->len = b.len;
	return t->kind;
}

/* /pattern/flags: the pattern ends at the first unescaped '/' on the same
 * line; the flags are the letters and digits right after it. */
static enum conf_tok_kind
conf_lex_regex(struct conf_lexer *lx, struct conf_tok *t)
{
	const char *s = lx->p + 1, *q = s, *f;

	while (q < lx->end && *q != '/' && *q != '\n' && *q != '\0') {
		if (*q == '\\' && q + 1 < lx->end && q[1] != '\n' &&
		    q[1] != '\0')
			q++;
		q++;
	}
	if (q >= lx->end || *q != '/')
		return conf_lex_error(t, t->line, q < lx->end && *q == '\0' ?
		    "NUL byte inside a regex" :
		    "unterminated regex (expected /pattern/flags on one line)");
	if ((size_t)(q - s) > CONF_MAX_TOKEN)
		return conf_lex_error(t, t->line, "regex too long");
	f = q + 1;
	while (f < lx->end && ((*f >= 'a' && *f <= 'z') ||
	    (*f >= 'A' && *f <= 'Z') || (*f >= '0' && *f <= '9')) &&
	    f - q < 32)
		f++;
	t->kind = CONF_TOK_REGEX;
	t->text = xstrndup(s, (size_t)(q - s));
	t->len = (size_t)(q - s);
	t->flags = xstrndup(q + 1, (size_t)(f - q - 1));
	lx->p = f;
	return t->kind;
}

static bool
conf_lex_is_word_end(const struct conf_lexer *lx, const char *p)
{
	switch (*p) {
	case ' ': case '\t': case '\r': case '\n': case '\f': case '\v':
	case '{': case '}': case ';': case ',': case '=': case '"':
	case '\0':
		return true;
	case '+':
		return p + 1 < lx->end && p[1] == '=';
	default:
		return false;
	}
}

static enum conf_tok_kind
conf_lex_word(struct conf_lexer *lx, struct conf_tok *t)
{
	const char *s = lx->p;

	while (lx->p < lx->end && !conf_lex_is_word_end(lx, lx->p))
		lx->p++;
	if ((size_t)(lx->p - s) > CONF_MAX_TOKEN)
		return conf_lex_error(t, t->line, "word too long");
	t->kind = CONF_TOK_WORD;
	t->len = (size_t)(lx->p - s);
	t->text = xstrndup(s, t->len);
	return t->kind;
}

/* See conf_internal.h: the next token; T's strings are owned by T. */
enum conf_tok_kind
conf_lex_next(struct conf_lexer *lx, struct conf_tok *t, bool regex_mode)
{
	memset(t, 0, sizeof(*t));
	for (;;) {
		if (lx->p >= lx->end) {
			t->kind = CONF_TOK_EOF;
			t->line = lx->line;
			return t->kind;
		}
		switch (*lx->p) {
		case '\n':
			lx->line++;
			/* FALLTHROUGH */
		case ' ': case '\t': case '\r': case '\f': case '\v':
			lx->p++;
			continue;
		case '#':
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
			continue;
		default:
			break;
		}
		break;
	}
	t->line = lx->line;
	switch (*lx->p) {
	case '\0':
		lx->p++;
		return conf_lex_error(t, t->line, "NUL byte in input");
	case '{':
		lx->p++;
		return t->kind = CONF_TOK_LBRACE;
	case '}':
		lx->p++;
		return t->kind = CONF_TOK_RBRACE;
	case ';':
		lx->p++;
		return t->kind = CONF_TOK_SEMI;
	case ',':
		lx->p++;
		return t->kind = CONF_TOK_COMMA;
	case '=':
		lx->p++;
		return t->kind = CONF_TOK_EQ;
	case '+':
		if (lx->p + 1 < lx->end && lx->p[1] == '=') {
			lx->p += 2;
			return t->kind = CONF_TOK_PLUSEQ;
		}
		break;
	case '"': case '\'':
		return conf_lex_string(lx, t);
	case '/':
		if (regex_mode)
			return conf_lex_regex(lx, t);
		break;
	default:
		break;
	}
	return conf_lex_word(lx, t);
}

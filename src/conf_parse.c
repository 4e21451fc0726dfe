/* conf_parse.c -- rmilter.conf grammar: statements and sections into an
 * AST, with .include/.try_include expanded in place.
 *
 *   file      := stmt*
 *   stmt      := NAME ('=' | '+=') values? term
 *              | NAME '{' stmt* '}' ';'?
 *              | NAME values? term                 (rule sections)
 *              | ('.include' | '.try_include') GLOB term
 *   values    := value ((',')? value)*             a ',' may end a line
 *   value     := WORD | STRING | REGEX | '{' value (',' value)* '}'
 *   term      := ';' | before '}' | at top level: end of line or file
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"
#include "xmalloc.h"

struct conf_parser {
	struct conf_lexer lx;
	struct conf_ast *ast;
	struct conf_diag *d;
	const char *file;	/* interned */
	const char *basedir;	/* for relative includes; NULL = cwd */
	struct conf_tok tok;	/* lookahead */
	bool have;
	unsigned incdepth;
};

static const char *conf_ast_intern(struct conf_ast *ast, const char *name);
static struct conf_tok *conf_parser_peek(struct conf_parser *p, bool regex);
static void conf_parser_drop(struct conf_parser *p);
static int conf_parser_fail(struct conf_parser *p, unsigned line,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int conf_parser_tokerr(struct conf_parser *p, struct conf_tok *t,
    const char *what);
static struct conf_node *conf_node_add(struct conf_node *parent,
    enum conf_node_kind kind, char *name, const char *file, unsigned line);
static void conf_node_addval(struct conf_node *n, struct conf_tok *t,
    unsigned group);
static void conf_node_free(struct conf_node *n);
static int conf_parse_values(struct conf_parser *p, struct conf_node *n,
    bool regex, unsigned *lastline);
static int conf_parse_term(struct conf_parser *p, const char *name,
    unsigned depth, unsigned lastline);
static int conf_parse_include(struct conf_parser *p, struct conf_node *parent,
    const char *secname, unsigned depth, bool must_match, unsigned line);
static int conf_parse_body(struct conf_parser *p, struct conf_node *parent,
    const char *secname, unsigned depth, bool file_body);
static int conf_parse_run(struct conf_ast *ast, const char *file,
    const char *buf, size_t len, const char *basedir, unsigned incdepth,
    struct conf_node *parent, const char *secname, unsigned depth,
    struct conf_diag *d);

static const char *
conf_ast_intern(struct conf_ast *ast, const char *name)
{
	size_t i;

	for (i = 0; i < ast->nfiles; i++)
		if (strcmp(ast->files[i], name) == 0)
			return ast->files[i];
	ast->files = xrealloc(ast->files, (ast->nfiles + 1) *
	    sizeof(*ast->files));
	ast->files[ast->nfiles] = xstrdup(name);
	return ast->files[ast->nfiles++];
}

static struct conf_tok *
conf_parser_peek(struct conf_parser *p, bool regex)
{
	if (!p->have) {
		conf_lex_next(&p->lx, &p->tok, regex);
		p->have = true;
	}
	return &p->tok;
}

static void
conf_parser_drop(struct conf_parser *p)
{
	conf_tok_clear(&p->tok);
	p->have = false;
}

static int
conf_parser_fail(struct conf_parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_diag_vadd(p->d, CONF_DIAG_ERROR, p->file, line, fmt, ap);
	va_end(ap);
	return -1;
}

/* Reports an unexpected token T while expecting WHAT. */
static int
conf_parser_tokerr(struct conf_parser *p, struct conf_tok *t,
    const char *what)
{
	if (t->kind == CONF_TOK_ERROR)
		return conf_parser_fail(p, t->line, "%s", t->text);
	if (t->kind == CONF_TOK_WORD || t->kind == CONF_TOK_STRING)
		return conf_parser_fail(p, t->line, "expected %s, got %s '%.64s'",
		    what, conf_tok_kind_name(t->kind), t->text);
	if (t->kind == CONF_TOK_REGEX)
		return conf_parser_fail(p, t->line, "expected %s, got regex "
		    "'/%.64s/'", what, t->text);
	return conf_parser_fail(p, t->line, "expected %s, got %s", what,
	    conf_tok_kind_name(t->kind));
}

static struct conf_node *
conf_node_add(struct conf_node *parent, enum conf_node_kind kind, char *name,
    const char *file, unsigned line)
{
	struct conf_node *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->name = name;
	n->file = file;
	n->line = line;
	if (parent->nkids == parent->capkids) {
		parent->capkids = parent->capkids ? parent->capkids * 2 : 8;
		parent->kids = xrealloc(parent->kids, parent->capkids *
		    sizeof(*parent->kids));
	}
	parent->kids[parent->nkids++] = n;
	return n;
}

/* Moves the token's strings into a new value of N. */
static void
conf_node_addval(struct conf_node *n, struct conf_tok *t, unsigned group)
{
	struct conf_val *v;

	n->vals = xrealloc(n->vals, (n->nvals + 1) * sizeof(*n->vals));
	v = &n->vals[n->nvals++];
	v->kind = t->kind == CONF_TOK_REGEX ? CONF_VAL_REGEX :
	    t->kind == CONF_TOK_STRING ? CONF_VAL_STRING : CONF_VAL_WORD;
	v->text = t->text;
	v->len = t->len;
	v->flags = t->flags;
	v->line = t->line;
	v->group = group;
	t->text = NULL;
	t->flags = NULL;
}

static void
conf_node_free(struct conf_node *n)
{
	size_t i;

	for (i = 0; i < n->nvals; i++) {
		free(n->vals[i].text);
		free(n->vals[i].flags);
	}
	free(n->vals);
	for (i = 0; i < n->nkids; i++) {
		conf_node_free(n->kids[i]);
		free(n->kids[i]);
	}
	free(n->kids);
	free(n->name);
}

void
conf_ast_free(struct conf_ast *ast)
{
	size_t i;

	conf_node_free(&ast->root);
	for (i = 0; i < ast->nfiles; i++)
		free(ast->files[i]);
	free(ast->files);
	memset(ast, 0, sizeof(*ast));
}

/* Reads the values of statement N.  A value on a new line without a ','
 * before it ends the list (for "name =" the first value may follow on the
 * next line).  *LASTLINE is the line of the last value. */
static int
conf_parse_values(struct conf_parser *p, struct conf_node *n, bool regex,
    unsigned *lastline)
{
	bool need = false;
	unsigned groups = 0;
	struct conf_tok *t;

	for (;;) {
		t = conf_parser_peek(p, regex);
		if (t->kind == CONF_TOK_WORD || t->kind == CONF_TOK_STRING ||
		    t->kind == CONF_TOK_REGEX) {
			if (!need && t->line != *lastline &&
			    (n->nvals > 0 || n->kind == CONF_NODE_CMD))
				break;
			conf_node_addval(n, t, 0);
			*lastline = t->line;
			conf_parser_drop(p);
			need = false;
			continue;
		}
		if (t->kind == CONF_TOK_LBRACE && n->kind != CONF_NODE_CMD &&
		    (n->nvals == 0 || need)) {
			/* "{a, b}": a mirror pair; the schema decides */
			groups++;
			conf_parser_drop(p);
			for (;;) {
				t = conf_parser_peek(p, regex);
				if (t->kind == CONF_TOK_RBRACE) {
					*lastline = t->line;
					conf_parser_drop(p);
					break;
				}
				if (t->kind == CONF_TOK_COMMA) {
					conf_parser_drop(p);
					continue;
				}
				if (t->kind != CONF_TOK_WORD &&
				    t->kind != CONF_TOK_STRING &&
				    t->kind != CONF_TOK_REGEX)
					return conf_parser_tokerr(p, t,
					    "a value or '}' in a {a, b} group");
				conf_node_addval(n, t, groups);
				conf_parser_drop(p);
			}
			need = false;
			continue;
		}
		if (t->kind == CONF_TOK_COMMA) {
			if (n->nvals == 0 || need)
				return conf_parser_fail(p, t->line, "unexpected "
				    "',' in the value of '%s'", n->name);
			*lastline = t->line;
			conf_parser_drop(p);
			need = true;
			continue;
		}
		if (t->kind == CONF_TOK_ERROR)
			return conf_parser_tokerr(p, t, "a value");
		break;
	}
	if (need)
		return conf_parser_tokerr(p, t, "a value after ','");
	return 0;
}

/* The end of statement N: ';', or (not consumed) '}' or end of file, or at
 * the top level the end of the line. */
static int
conf_parse_term(struct conf_parser *p, const char *name, unsigned depth,
    unsigned lastline)
{
	struct conf_tok *t = conf_parser_peek(p, false);

	if (t->kind == CONF_TOK_SEMI) {
		conf_parser_drop(p);
		return 0;
	}
	if (t->kind == CONF_TOK_RBRACE || t->kind == CONF_TOK_EOF)
		return 0;
	if (depth == 0 && t->line > lastline)
		return 0;
	if (t->kind == CONF_TOK_ERROR)
		return conf_parser_tokerr(p, t, "';'");
	if (t->kind == CONF_TOK_EQ || t->kind == CONF_TOK_PLUSEQ)
		return conf_parser_fail(p, t->line, "unexpected %s after the "
		    "value of '%s' (missing ';' on the line before?)",
		    conf_tok_kind_name(t->kind), name);
	if (t->kind == CONF_TOK_LBRACE)
		return conf_parser_fail(p, t->line, "unexpected '{' after "
		    "'%s' (a section is written 'name { ... }')", name);
	return conf_parser_fail(p, lastline, "missing ';' after '%s' "
	    "(next is %s on line %u)", name, conf_tok_kind_name(t->kind),
	    t->line);
}

char *
conf_read_file(const char *path, size_t *lenp)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > CONF_MAX_FILE_SIZE) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	if (buf == NULL)
		buf = xmalloc(1);
	buf[len] = '\0';
	*lenp = len;
	return buf;
fail:
	saved = errno;
	close(fd);
	free(buf);
	errno = saved;
	return NULL;
}

static int
conf_parse_include(struct conf_parser *p, struct conf_node *parent,
    const char *secname, unsigned depth, bool must_match, unsigned line)
{
	const char *dname = must_match ? ".include" : ".try_include";
	struct conf_tok *t = conf_parser_peek(p, false);
	char *pattern;
	glob_t g;
	size_t i;
	int rc, ret = 0;

	if ((t->kind != CONF_TOK_WORD && t->kind != CONF_TOK_STRING) ||
	    t->line != line)
		return conf_parser_tokerr(p, t, "a file name or glob after "
		    "the include directive");
	if (t->len == 0)
		return conf_parser_fail(p, line, "%s: empty file name", dname);
	if (t->text[0] != '/' && p->basedir != NULL) {
		size_t n = strlen(p->basedir) + 1 + t->len + 1;

		pattern = xmalloc(n);
		snprintf(pattern, n, "%s/%s", p->basedir, t->text);
	} else
		pattern = xstrdup(t->text);
	conf_parser_drop(p);
	if (conf_parse_term(p, dname, depth, line) < 0) {
		free(pattern);
		return -1;
	}
#ifdef FUZZING
	ret = conf_parser_fail(p, line, "%s is disabled in fuzzing builds",
	    dname);
	free(pattern);
	return ret;
#else
	if (p->incdepth + 1 >= CONF_MAX_INCLUDE_DEPTH) {
		ret = conf_parser_fail(p, line, "%s '%s': includes nested too "
		    "deeply (more than %d levels; an include loop?)", dname,
		    pattern, CONF_MAX_INCLUDE_DEPTH);
		free(pattern);
		return ret;
	}
	memset(&g, 0, sizeof(g));
	rc = glob(pattern, 0, NULL, &g);
	if (rc == GLOB_NOMATCH) {
		if (must_match)
			ret = conf_parser_fail(p, line, ".include '%s' matches "
			    "no file (use .try_include for an optional file)",
			    pattern);
	} else if (rc != 0) {
		ret = conf_parser_fail(p, line, "%s '%s': %s", dname, pattern,
		    rc == GLOB_NOSPACE ? "out of memory" : "read error");
	} else {
		for (i = 0; i < g.gl_pathc && ret == 0; i++) {
			const char *path = g.gl_pathv[i];
			size_t len;
			char *buf, *dir, *slash;

			if ((buf = conf_read_file(path, &len)) == NULL) {
				ret = conf_parser_fail(p, line, "%s '%s': %s",
				    dname, path, strerror(errno));
				break;
			}
			dir = xstrdup(path);
			if ((slash = strrchr(dir, '/')) != NULL)
				*(slash == dir ? slash + 1 : slash) = '\0';
			else {
				free(dir);
				dir = NULL;
			}
			ret = conf_parse_run(p->ast, path, buf, len, dir,
			    p->incdepth + 1, parent, secname, depth, p->d);
			free(dir);
			free(buf);
		}
	}
	globfree(&g);
	free(pattern);
	return ret;
#endif
}

/* Parses statements into PARENT until end of file (FILE_BODY) or until a
 * '}' (left unconsumed; end of file also returns 0 and the caller reports
 * the unterminated section).  Returns 0 or -1 after a syntax error. */
static int
conf_parse_body(struct conf_parser *p, struct conf_node *parent,
    const char *secname, unsigned depth, bool file_body)
{
	struct conf_tok *t;
	struct conf_node *n;
	unsigned line, lastline;
	char *name;

	for (;;) {
		t = conf_parser_peek(p, false);
		switch (t->kind) {
		case CONF_TOK_EOF:
			return 0;
		case CONF_TOK_RBRACE:
			if (file_body)
				return conf_parser_fail(p, t->line,
				    "unexpected '}' (no section is open)");
			return 0;
		case CONF_TOK_SEMI:
			conf_parser_drop(p);	/* empty statement */
			continue;
		case CONF_TOK_WORD:
			break;
		default:
			return conf_parser_tokerr(p, t, "a directive name");
		}
		name = t->text;
		t->text = NULL;
		line = t->line;
		conf_parser_drop(p);
		if (name[0] == '.') {
			bool must = strcmp(name, ".include") == 0;

			if (!must && strcmp(name, ".try_include") != 0) {
				conf_parser_fail(p, line, "unknown directive "
				    "'%.64s' (expected .include or "
				    ".try_include)", name);
				free(name);
				return -1;
			}
			free(name);
			if (conf_parse_include(p, parent, secname, depth, must,
			    line) < 0)
				return -1;
			continue;
		}
		t = conf_parser_peek(p, strcmp(secname, "rule") == 0);
		if (t->kind == CONF_TOK_LBRACE) {
			int rc;

			conf_parser_drop(p);
			n = conf_node_add(parent, CONF_NODE_SECTION, name,
			    p->file, line);
			if (depth + 1 >= CONF_MAX_SECTION_DEPTH)
				return conf_parser_fail(p, line, "sections "
				    "nested too deeply (more than %d levels)",
				    CONF_MAX_SECTION_DEPTH);
			rc = conf_parse_body(p, n, name, depth + 1, false);
			if (rc < 0)
				return -1;
			t = conf_parser_peek(p, false);
			if (t->kind != CONF_TOK_RBRACE)
				return conf_parser_fail(p, line, "unterminated "
				    "section '%.64s' (missing '}')", name);
			conf_parser_drop(p);
			continue;
		}
		lastline = line;
		if (t->kind == CONF_TOK_EQ || t->kind == CONF_TOK_PLUSEQ) {
			n = conf_node_add(parent, t->kind == CONF_TOK_EQ ?
			    CONF_NODE_SET : CONF_NODE_APPEND, name, p->file,
			    line);
			lastline = t->line;
			conf_parser_drop(p);
			if (conf_parse_values(p, n, conf_schema_wants_regex(
			    secname, name), &lastline) < 0)
				return -1;
		} else {
			n = conf_node_add(parent, CONF_NODE_CMD, name, p->file,
			    line);
			if (conf_parse_values(p, n, strcmp(secname, "rule") == 0,
			    &lastline) < 0)
				return -1;
		}
		if (conf_parse_term(p, n->name, depth, lastline) < 0)
			return -1;
	}
}

static int
conf_parse_run(struct conf_ast *ast, const char *file, const char *buf,
    size_t len, const char *basedir, unsigned incdepth,
    struct conf_node *parent, const char *secname, unsigned depth,
    struct conf_diag *d)
{
	struct conf_parser p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.ast = ast;
	p.d = d;
	p.file = conf_ast_intern(ast, file);
	p.basedir = basedir;
	p.incdepth = incdepth;
	conf_lex_init(&p.lx, p.file, buf, len);
	rc = conf_parse_body(&p, parent, secname, depth, true);
	if (p.have)
		conf_parser_drop(&p);
	return rc;
}

int
conf_parse_buffer(struct conf_ast *ast, const char *name, const char *buf,
    size_t len, const char *basedir, struct conf_diag *d)
{
	if (ast->root.name == NULL) {
		ast->root.kind = CONF_NODE_SECTION;
		ast->root.name = xstrdup("");
	}
	return conf_parse_run(ast, name, buf, len, basedir, 0, &ast->root, "",
	    0, d);
}

int
conf_parse_file(struct conf_ast *ast, const char *path, struct conf_diag *d)
{
	char *buf, *dir, *slash;
	size_t len;
	int rc;

	if ((buf = conf_read_file(path, &len)) == NULL) {
		conf_diag_add(d, CONF_DIAG_ERROR, path, 0, "cannot read: %s",
		    strerror(errno));
		return -1;
	}
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else {
		free(dir);
		dir = NULL;
	}
	rc = conf_parse_buffer(ast, path, buf, len, dir, d);
	free(dir);
	free(buf);
	return rc;
}

/* conf_internal.h -- private interfaces of the rmilter.conf loader:
 * tokenizer (conf_lex.c), generic grammar/AST (conf_parse.c), declarative
 * schema (conf_schema.c) and the diag helpers (conf.c).  For the loader and
 * its tests only. */
#ifndef RMILTER_CONF_INTERNAL_H
#define RMILTER_CONF_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "conf_sections.h"

#define CONF_MAX_INCLUDE_DEPTH	16	/* nested .include levels */
#define CONF_MAX_SECTION_DEPTH	16	/* nested section { } levels */
#define CONF_MAX_FILE_SIZE	(16u * 1024 * 1024)
#define CONF_MAX_DIAGS		200	/* further diagnostics are dropped */
#define CONF_MAX_TOKEN		65536	/* longest word, string or regex */

/* ---- diagnostics (conf.c) ------------------------------------------------ */

/* Appends one entry; FILE may be NULL, LINE 0.  After CONF_MAX_DIAGS entries
 * further ones are dropped (errors are still counted). */
void conf_diag_add(struct conf_diag *d, enum conf_diag_level level,
    const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void conf_diag_vadd(struct conf_diag *d, enum conf_diag_level level,
    const char *file, unsigned line, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* ---- tokenizer (conf_lex.c) ----------------------------------------------- */

enum conf_tok_kind {
	CONF_TOK_EOF = 0,
	CONF_TOK_WORD,		/* bare word: foo, /var/run/x.pid, 10s, inet:1@h */
	CONF_TOK_STRING,	/* "quoted" or 'quoted', escapes resolved */
	CONF_TOK_REGEX,		/* /pattern/flags (only in regex mode) */
	CONF_TOK_LBRACE,
	CONF_TOK_RBRACE,
	CONF_TOK_SEMI,
	CONF_TOK_COMMA,
	CONF_TOK_EQ,
	CONF_TOK_PLUSEQ,
	CONF_TOK_ERROR,		/* text holds the message */
};

struct conf_tok {
	enum conf_tok_kind kind;
	char *text;		/* owned; WORD/STRING value, REGEX pattern, ERROR msg */
	size_t len;		/* strlen(text) */
	char *flags;		/* REGEX: flag letters (owned), else NULL */
	unsigned line;		/* line of the token's first character */
};

struct conf_lexer {
	const char *file;	/* for diagnostics; not owned */
	const char *p;		/* cursor */
	const char *end;
	unsigned line;
};

void conf_lex_init(struct conf_lexer *lx, const char *file, const char *buf,
    size_t len);
/* Reads the next token into T (which the caller clears with conf_tok_clear).
 * With REGEX_MODE a token starting with '/' is read as /pattern/flags. */
enum conf_tok_kind conf_lex_next(struct conf_lexer *lx, struct conf_tok *t,
    bool regex_mode);
void conf_tok_clear(struct conf_tok *t);
/* "'{'", "end of file", "word 'foo'" ... for messages; T may be NULL-text. */
const char *conf_tok_kind_name(enum conf_tok_kind k);

/* ---- AST (conf_parse.c) ------------------------------------------------- */

enum conf_val_kind { CONF_VAL_WORD, CONF_VAL_STRING, CONF_VAL_REGEX };

struct conf_val {
	enum conf_val_kind kind;
	char *text;		/* owned */
	size_t len;
	char *flags;		/* REGEX only */
	unsigned line;
	unsigned group;		/* 0, or n for the n-th "{a, b}" group */
};

enum conf_node_kind {
	CONF_NODE_SET,		/* name = values */
	CONF_NODE_APPEND,	/* name += values */
	CONF_NODE_CMD,		/* name values   (rule sections) */
	CONF_NODE_SECTION,	/* name { ... } */
};

struct conf_node {
	enum conf_node_kind kind;
	char *name;		/* owned */
	const char *file;	/* owned by the AST's file table */
	unsigned line;
	struct conf_val *vals;
	size_t nvals;
	struct conf_node **kids;	/* SECTION */
	size_t nkids, capkids;
};

struct conf_ast {
	struct conf_node root;	/* a SECTION named "" */
	char **files;		/* every file name seen (interned) */
	size_t nfiles;
};

/* Parses BUF as file NAME into AST->root, following .include relative to
 * BASEDIR (NULL = current directory).  Syntax errors go to D; returns 0, or
 * -1 after a syntax error (the AST then holds what was parsed). */
int conf_parse_buffer(struct conf_ast *ast, const char *name, const char *buf,
    size_t len, const char *basedir, struct conf_diag *d);
/* Same for a file on disk (includes relative to its directory). */
int conf_parse_file(struct conf_ast *ast, const char *path,
    struct conf_diag *d);
void conf_ast_free(struct conf_ast *ast);

/* Reads a whole file (at most CONF_MAX_FILE_SIZE); returns a NUL-terminated
 * malloc'd buffer and its length, or NULL with errno set. */
char *conf_read_file(const char *path, size_t *lenp);

/* ---- schema (conf_schema.c) -------------------------------------------- */

enum conf_type {
	CONF_T_STRING,		/* bare or quoted; "" = unset (NULL) */
	CONF_T_QSTRING,		/* text, usually quoted; "" kept */
	CONF_T_FLAG,		/* yes/no true/false on/off y/n 1/0, any case */
	CONF_T_UINT,		/* unsigned in [min, max] */
	CONF_T_SIZE,		/* 10k 10M 1G (binary); bare = bytes */
	CONF_T_TIME,		/* 500ms 10s 5m 2h 1d 1.5s; bare = unit ms */
	CONF_T_OCTAL,		/* 0600 */
	CONF_T_FLOAT,		/* double in [min, max] */
	CONF_T_PERCENT,		/* 0..100; a value <= 1 is a fraction */
	CONF_T_ENUM,		/* one of choices "a|b|c", stored as int index */
	CONF_T_KEYWORD,		/* one of choices, stored as a string */
	CONF_T_BUCKET,		/* burst:rate */
	CONF_T_LISTEN,		/* unix:/p local:/p inet:port@host inet6: fd:N */
	CONF_T_NETLIST,		/* IPs and networks */
	CONF_T_RCPTLIST,	/* user, @domain, user@domain */
	CONF_T_STRLIST,
	CONF_T_REGEX,		/* /pattern/flags */
	CONF_T_SERVERS,		/* server list, default port = unit */
};

#define CONF_F_NOTIMPL	0x01	/* module not implemented yet: notice */
#define CONF_F_ALIAS	0x02	/* alternative name of the previous entry */
#define CONF_F_RSPAMD	0x04	/* servers: "r:" prefix allowed */
#define CONF_F_NOFILE	0x08	/* listed in neither sample nor man page */

struct conf_directive {
	const char *section;	/* "" = global, "spamd", "dkim.domain" */
	const char *name;
	enum conf_type type;
	size_t offset;		/* in the section's struct */
	double min, max;	/* UINT/FLOAT/TIME (ms)/SIZE/OCTAL; 0,0 = none */
	const char *def;	/* default, in config syntax; NULL = none */
	unsigned flags;
	unsigned unit;		/* TIME: ms per bare number; SERVERS: port */
	const char *choices;	/* ENUM/KEYWORD: "a|b|c" */
	const char *help;	/* one line */
};

/* The whole table and its size. */
const struct conf_directive *conf_schema_table(size_t *n);
/* Sections accepted at the top level, NULL-terminated ("rule" included). */
const char *const *conf_schema_sections(void);
/* true if values of SECTION.NAME are regexes (lexed in regex mode);
 * SECTION is "" for the global level. */
bool conf_schema_wants_regex(const char *section, const char *name);
/* Fills C with every default. */
void conf_schema_defaults(struct rmilter_config *c);
/* Applies the AST to C; every problem goes to D. */
void conf_schema_apply(struct rmilter_config *c, const struct conf_ast *ast,
    struct conf_diag *d);
/* Frees everything the schema allocated in C (not C itself). */
void conf_schema_free(struct rmilter_config *c);

/* Value parsers shared with tests. Each returns 0, or -1 with a message in
 * ERR (ERRLEN bytes). */
int conf_parse_time(const char *s, unsigned unit_ms, uint64_t *out,
    char *err, size_t errlen);
int conf_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);
int conf_parse_flag(const char *s, bool *out);
int conf_parse_listen(const char *s, struct conf_listen *l, char *err,
    size_t errlen);
int conf_parse_net(const char *s, struct conf_net *n, char *err,
    size_t errlen);
int conf_parse_server(const char *s, unsigned defport, bool allow_rspamd,
    struct conf_server *sv, char *err, size_t errlen);
void conf_listen_free(struct conf_listen *l);
void conf_server_free(struct conf_server *sv);

/* Levenshtein distance, capped at 100. */
unsigned conf_edit_distance(const char *a, const char *b);

#endif

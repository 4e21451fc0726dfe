/* conf.c -- rmilter.conf loading entry points, reference counting,
 * diagnostics and the list matchers used at run time. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf_internal.h"
#include "dns_client.h"
#include "store.h"
#include "upstream.h"
#include "xmalloc.h"

static struct rmilter_config *conf_load_ast(const char *path,
    struct conf_ast *ast, int parse_rc, struct conf_diag *d,
    size_t errors_before);

void
conf_diag_init(struct conf_diag *d)
{
	memset(d, 0, sizeof(*d));
}

void
conf_diag_free(struct conf_diag *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void
conf_diag_vadd(struct conf_diag *d, enum conf_diag_level level,
    const char *file, unsigned line, const char *fmt, va_list ap)
{
	struct conf_diag_entry *e;
	char buf[1024];

	if (level == CONF_DIAG_ERROR)
		d->nerrors++;
	if (d->n >= CONF_MAX_DIAGS)
		return;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	vsnprintf(buf, sizeof(buf), fmt, ap);
	e = &d->v[d->n++];
	e->level = level;
	e->file = file != NULL ? xstrdup(file) : NULL;
	e->line = line;
	e->msg = xstrdup(buf);
}

void
conf_diag_add(struct conf_diag *d, enum conf_diag_level level,
    const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_diag_vadd(d, level, file, line, fmt, ap);
	va_end(ap);
}

void
conf_diag_format(const struct conf_diag_entry *e, char *buf, size_t len)
{
	const char *lvl = e->level == CONF_DIAG_ERROR ? "error" :
	    e->level == CONF_DIAG_WARNING ? "warning" : "notice";

	if (len == 0)
		return;
	if (e->file != NULL && e->line > 0)
		snprintf(buf, len, "%s:%u: %s: %s", e->file, e->line, lvl,
		    e->msg);
	else if (e->file != NULL)
		snprintf(buf, len, "%s: %s: %s", e->file, lvl, e->msg);
	else
		snprintf(buf, len, "%s: %s", lvl, e->msg);
}

/* Builds the config from a parsed AST (consumed).  NULL if this load added
 * an error to D (errors already in D before the load do not count). */
static struct rmilter_config *
conf_load_ast(const char *path, struct conf_ast *ast, int parse_rc,
    struct conf_diag *d, size_t errors_before)
{
	struct rmilter_config *c = xcalloc(1, sizeof(*c));

	c->refcnt = 1;
	c->path = xstrdup(path);
	conf_schema_defaults(c);
	if (parse_rc == 0)
		conf_schema_apply(c, ast, d);
	conf_ast_free(ast);
	if (parse_rc != 0 || d->nerrors > errors_before) {
		conf_unref(c);
		return NULL;
	}
	return c;
}

struct rmilter_config *
conf_load(const char *path, struct conf_diag *d)
{
	struct conf_ast ast;
	size_t before = d->nerrors;
	int rc;

	memset(&ast, 0, sizeof(ast));
	rc = conf_parse_file(&ast, path, d);
	return conf_load_ast(path, &ast, rc, d, before);
}

struct rmilter_config *
conf_load_buffer(const char *name, const char *buf, size_t len,
    struct conf_diag *d)
{
	struct conf_ast ast;
	size_t before = d->nerrors;
	int rc;

	memset(&ast, 0, sizeof(ast));
	if (len > CONF_MAX_FILE_SIZE) {
		conf_diag_add(d, CONF_DIAG_ERROR, name, 0, "configuration too "
		    "large (more than %u bytes)", CONF_MAX_FILE_SIZE);
		return NULL;
	}
	rc = conf_parse_buffer(&ast, name, buf, len, NULL, d);
	return conf_load_ast(name, &ast, rc, d, before);
}

struct rmilter_config *
conf_ref(struct rmilter_config *c)
{
	if (c != NULL)
		c->refcnt++;
	return c;
}

void
conf_unref(struct rmilter_config *c)
{
	if (c == NULL || --c->refcnt > 0)
		return;
	conf_schema_free(c);
	free(c->pipeline_cache);
	store_free_list(c->stores);
	upstream_pool_free_list(c->upstreams);
	dns_client_free(c->dns);
	free(c->path);
	free(c);
}

bool
conf_netlist_match(const struct conf_netlist *list, int family,
    const void *addr)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const uint8_t *a = addr;
	size_t i;

	if (list == NULL || addr == NULL)
		return false;
	if (family == AF_INET6 && memcmp(a, mapped, 12) == 0) {
		family = AF_INET;
		a += 12;
	}
	if (family != AF_INET && family != AF_INET6)
		return false;
	for (i = 0; i < list->n; i++) {
		const struct conf_net *n = &list->v[i];
		unsigned full = n->prefix / 8, rest = n->prefix % 8;

		if (n->family != family)
			continue;
		if (memcmp(n->addr, a, full) != 0)
			continue;
		if (rest != 0 && ((n->addr[full] ^ a[full]) &
		    (uint8_t)(0xff << (8 - rest))) != 0)
			continue;
		return true;
	}
	return false;
}

bool
conf_rcptlist_match(const struct conf_rcptlist *list, const char *rcpt)
{
	const char *s, *e, *at, *p;
	size_t ulen, dlen, i;

	if (list == NULL || rcpt == NULL)
		return false;
	s = rcpt;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e - s >= 2 && *s == '<' && e[-1] == '>') {
		s++;
		e--;
	}
	at = NULL;
	for (p = s; p < e; p++)
		if (*p == '@')
			at = p;
	ulen = (size_t)((at ? at : e) - s);
	dlen = at ? (size_t)(e - at - 1) : 0;
	for (i = 0; i < list->n; i++) {
		const struct conf_rcpt *r = &list->v[i];

		if (r->user != NULL && (strlen(r->user) != ulen ||
		    strncasecmp(r->user, s, ulen) != 0))
			continue;
		if (r->domain != NULL && (at == NULL ||
		    strlen(r->domain) != dlen ||
		    strncasecmp(r->domain, at + 1, dlen) != 0))
			continue;
		if (r->user == NULL && r->domain == NULL)
			continue;
		return true;
	}
	return false;
}

/* test_dkim.c -- unit tests of DKIM signing: key files (PEM, DER, RSA,
 * Ed25519, garbage, permissions), the domain -> key lookup (exact before
 * wildcard, sign_subdomains, never a substring, key directories and their
 * cache), config errors with file:line, and whole messages signed by a
 * real session and verified in-process by libopendkim's verifier (keys
 * answered from a file, no DNS). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "tt.h"
#include "harness.h"

#include "conf_internal.h"
#include "conf_sections.h"
#include "dkim_keys.h"
#include "xmalloc.h"

static char tdir[256];

static void test_dkim_cleanup(void) __attribute__((destructor));

static void
test_dkim_cleanup(void)
{
	char cmd[300];

	if (tdir[0] != '\0' && strstr(tdir, "test_dkim.") != NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tdir);
	}
}

/* The private test directory, with keys made once:
 *   rsa.pem (0600), rsa.der, ed.pem, open.pem (0644), junk.key,
 *   dir/other.example.sel.key, dir/ed.example.sel.key (Ed25519),
 *   pub.txt: the query file of libopendkim's verifier. */
static const char *
dir(void)
{
	static EVP_PKEY *rsa, *ed;
	char p[512];
	FILE *f;

	if (tdir[0] != '\0')
		return tdir;
	snprintf(tdir, sizeof(tdir), "%s/test_dkim.XXXXXX",
	    getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tdir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(p, sizeof(p), "%s/dir", tdir);
	mkdir(p, 0700);
	rsa = EVP_RSA_gen(1024);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (rsa == NULL || ed == NULL)
		exit(2);
#define WRITE_KEY(name, key, mode, der) do {				\
		snprintf(p, sizeof(p), "%s/%s", tdir, name);		\
		f = fopen(p, "w");					\
		if (der)						\
			i2d_PrivateKey_fp(f, key);			\
		else							\
			PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL,	\
			    NULL);					\
		fclose(f);						\
		chmod(p, mode);						\
	} while (0)
	WRITE_KEY("rsa.pem", rsa, 0600, 0);
	WRITE_KEY("rsa.der", rsa, 0600, 1);
	WRITE_KEY("ed.pem", ed, 0600, 0);
	WRITE_KEY("open.pem", rsa, 0644, 0);
	WRITE_KEY("dir/other.example.sel.key", rsa, 0600, 0);
	WRITE_KEY("dir/ed.example.sel.key", ed, 0600, 0);
	snprintf(p, sizeof(p), "%s/junk.key", tdir);
	f = fopen(p, "w");
	fputs("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n"
	    "-----END PRIVATE KEY-----\n", f);
	fclose(f);
	chmod(p, 0600);
	{
		unsigned char *der = NULL, b64[4096];
		int n = i2d_PUBKEY(rsa, &der);

		EVP_EncodeBlock(b64, der, n);
		OPENSSL_free(der);
		snprintf(p, sizeof(p), "%s/pub.txt", tdir);
		f = fopen(p, "w");
		fprintf(f, "sel._domainkey.test.example v=DKIM1; k=rsa; p=%s\n",
		    b64);
		fclose(f);
	}
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	return tdir;
}

static char *
path(const char *name)
{
	static char buf[16][512];
	static int i;

	i = (i + 1) % 16;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir(), name);
	return buf[i];
}

/* ---- keys ------------------------------------------------------------------ */

static void
test_domain_valid(void)
{
	TT_CHECK(dkim_domain_valid("example.com"));
	TT_CHECK(dkim_domain_valid("a-b_c.Example.COM"));
	TT_CHECK(dkim_domain_valid("localhost"));
	TT_CHECK(!dkim_domain_valid(""));
	TT_CHECK(!dkim_domain_valid(".example.com"));
	TT_CHECK(!dkim_domain_valid("example.com."));
	TT_CHECK(!dkim_domain_valid("a..b"));
	TT_CHECK(!dkim_domain_valid("../etc/passwd"));
	TT_CHECK(!dkim_domain_valid("a/b"));
	TT_CHECK(!dkim_domain_valid("a b"));
	TT_CHECK(!dkim_domain_valid("*"));
}

static void
test_key_load(void)
{
	struct dkim_key k;
	char err[512], warn[512];

	TT_CHECK_INT(dkim_key_load(path("rsa.pem"), &k, err, sizeof(err),
	    warn, sizeof(warn)), ==, 0);
	TT_CHECK_INT(k.type, ==, DKIM_KEY_RSA);
	TT_CHECK_INT(k.bits, ==, 1024);
	TT_CHECK(k.pem != NULL && strstr(k.pem, "BEGIN PRIVATE KEY") != NULL);
	TT_CHECK_STR(warn, "");
	dkim_key_clear(&k);
	TT_CHECK(k.pem == NULL);

	/* DER is re-encoded as PEM (libopendkim reads PEM) */
	TT_CHECK_INT(dkim_key_load(path("rsa.der"), &k, err, sizeof(err),
	    warn, sizeof(warn)), ==, 0);
	TT_CHECK(k.pem != NULL && strstr(k.pem, "BEGIN PRIVATE KEY") != NULL);
	dkim_key_clear(&k);

	TT_CHECK_INT(dkim_key_load(path("ed.pem"), &k, err, sizeof(err),
	    warn, sizeof(warn)), ==, 0);
	TT_CHECK_INT(k.type, ==, DKIM_KEY_ED25519);
	dkim_key_clear(&k);

	/* world-readable: loads, with a warning */
	TT_CHECK_INT(dkim_key_load(path("open.pem"), &k, err, sizeof(err),
	    warn, sizeof(warn)), ==, 0);
	TT_CHECK(strstr(warn, "world-readable") != NULL);
	TT_CHECK(strstr(warn, "0644") != NULL);
	dkim_key_clear(&k);

	TT_CHECK_INT(dkim_key_load(path("junk.key"), &k, err, sizeof(err),
	    warn, sizeof(warn)), ==, -1);
	TT_CHECK(strstr(err, "junk.key: not a private key") != NULL);
	TT_CHECK(k.pem == NULL);
	TT_CHECK_INT(dkim_key_load(path("missing.key"), &k, err, sizeof(err),
	    warn, sizeof(warn)), ==, -1);
	TT_CHECK(strstr(err, "No such file") != NULL);
	TT_CHECK_INT(dkim_key_load(path("dir"), &k, err, sizeof(err), warn,
	    sizeof(warn)), ==, -1);
	TT_CHECK(strstr(err, "not a regular file") != NULL);
}

/* ---- config and lookup ----------------------------------------------------------- */

/* Loads TEXT and runs the dkim config check; DIAG keeps the problems. */
static struct rmilter_config *
load(const char *text, struct conf_diag *d)
{
	struct rmilter_config *c;

	conf_diag_init(d);
	c = conf_load_buffer("t.conf", text, strlen(text), d);
	if (c != NULL)
		dkim_keys_check_config(c, d);
	return c;
}

/* true if D has an entry of LEVEL at LINE containing TEXT. */
static bool
diag_has(const struct conf_diag *d, enum conf_diag_level level,
    unsigned line, const char *text)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].level == level && (line == 0 ||
		    d->v[i].line == line) && strstr(d->v[i].msg, text) != NULL)
			return true;
	return false;
}

static void
dump(const struct conf_diag *d)
{
	char line[1200];
	size_t i;

	for (i = 0; i < d->n; i++) {
		conf_diag_format(&d->v[i], line, sizeof(line));
		fprintf(stderr, "  diag: %s\n", line);
	}
}

static void
test_lookup(void)
{
	struct conf_diag d;
	struct rmilter_config *c;
	struct dkim_keyset *ks;
	struct dkim_match m;
	char text[2048], err[512];

	snprintf(text, sizeof(text),
	    "dkim {\n"
	    "  domain { key = %s; domain = \"*\"; selector = \"sel\"; }\n"
	    "  domain { key = %s; domain = \"Test.Example\"; selector = \"s1\"; }\n"
	    "  domain { key = %s; domain = \"parent.example\"; selector = \"p\"; "
	    "sign_subdomains = yes; }\n"
	    "  domain { key = %s; domain = \"b.parent.example\"; selector = \"b\"; "
	    "sign_subdomains = yes; }\n"
	    "}\n", path("dir"), path("rsa.pem"), path("rsa.der"),
	    path("rsa.pem"));
	c = load(text, &d);
	TT_CHECK(c != NULL && d.nerrors == 0);
	if (c == NULL || d.nerrors > 0) {
		dump(&d);
		conf_diag_free(&d);
		conf_unref(c);
		return;
	}
	ks = c->sections->dkim.keys;
	TT_CHECK(ks != NULL);

	/* the exact entry beats the earlier wildcard; any case */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "TEST.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_OK);
	TT_CHECK_STR(m.domain, "test.example");
	TT_CHECK_STR(m.selector, "s1");
	TT_CHECK_STR(m.path, path("rsa.pem"));
	TT_CHECK(m.key != NULL && m.key->pem != NULL);

	/* the wildcard's key directory: DIR/<domain>.<selector>.key */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "Other.Example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_OK);
	TT_CHECK_STR(m.domain, "other.example");
	TT_CHECK_STR(m.selector, "sel");
	TT_CHECK_STR(m.path, path("dir/other.example.sel.key"));

	/* no file in the directory: no key */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "nokey.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_NONE);
	TT_CHECK_STR(err, "no key for domain nokey.example");
	/* never a substring: nottest.example is not test.example */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "nottest.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_NONE);
	/* nor a subdomain without sign_subdomains */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "sub.test.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_NONE);

	/* sign_subdomains: signed as the closest listed parent */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "x.y.parent.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_OK);
	TT_CHECK_STR(m.domain, "parent.example");
	TT_CHECK_STR(m.selector, "p");
	TT_CHECK_INT(dkim_keyset_lookup(ks, "a.b.parent.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_OK);
	TT_CHECK_STR(m.domain, "b.parent.example");
	TT_CHECK_INT(dkim_keyset_lookup(ks, "parent.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_OK);
	TT_CHECK_STR(m.selector, "p");
	/* "xparent.example" ends in "parent.example" but is not below it */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "xparent.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_NONE);

	/* a hostile domain never becomes a path */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "../../etc/x", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_NONE);
	TT_CHECK(strstr(err, "not a domain name") != NULL);

	/* an Ed25519 key in the directory while sign_alg needs RSA */
	TT_CHECK_INT(dkim_keyset_lookup(ks, "ed.example", &m, err,
	    sizeof(err)), ==, DKIM_LOOKUP_ERROR);
	TT_CHECK(strstr(err, "an Ed25519 key, but sign_alg needs an RSA") !=
	    NULL);
	conf_diag_free(&d);
	conf_unref(c);
}

/* A replaced key directory file is read again; a removed one is gone. */
static void
test_dir_cache(void)
{
	struct conf_diag d;
	struct rmilter_config *c;
	struct dkim_match m;
	char text[1024], err[512], *pem1, cmd[1200];
	struct timeval tv[2];

	snprintf(text, sizeof(text), "dkim { domain { key = %s; domain = "
	    "\"*\"; selector = \"sel\"; } }\n", path("dir"));
	c = load(text, &d);
	TT_CHECK(c != NULL && d.nerrors == 0);
	if (c == NULL) {
		conf_diag_free(&d);
		return;
	}
	snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", path("rsa.pem"),
	    path("dir/cache.example.sel.key"));
	TT_CHECK_INT(system(cmd), ==, 0);
	TT_CHECK_INT(dkim_keyset_lookup(c->sections->dkim.keys,
	    "cache.example", &m, err, sizeof(err)), ==, DKIM_LOOKUP_OK);
	pem1 = m.key ? xstrdup(m.key->pem) : xstrdup("");
	/* the same file again: from the cache, same key */
	TT_CHECK_INT(dkim_keyset_lookup(c->sections->dkim.keys,
	    "cache.example", &m, err, sizeof(err)), ==, DKIM_LOOKUP_OK);
	TT_CHECK(m.key != NULL && strcmp(m.key->pem, pem1) == 0);
	/* replaced by a broken file (another mtime): read again -> error */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path("junk.key"),
	    path("dir/cache.example.sel.key"));
	TT_CHECK_INT(system(cmd), ==, 0);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec += 5;
	tv[1] = tv[0];
	utimes(path("dir/cache.example.sel.key"), tv);
	TT_CHECK_INT(dkim_keyset_lookup(c->sections->dkim.keys,
	    "cache.example", &m, err, sizeof(err)), ==, DKIM_LOOKUP_ERROR);
	TT_CHECK(strstr(err, "not a private key") != NULL);
	unlink(path("dir/cache.example.sel.key"));
	TT_CHECK_INT(dkim_keyset_lookup(c->sections->dkim.keys,
	    "cache.example", &m, err, sizeof(err)), ==, DKIM_LOOKUP_NONE);
	free(pem1);
	conf_diag_free(&d);
	conf_unref(c);
}

static void
test_config_errors(void)
{
	struct conf_diag d;
	struct rmilter_config *c;
	char text[2048];

	snprintf(text, sizeof(text),
	    "# line 1\n"
	    "dkim {\n"
	    "  domain { key = %s; domain = \"a.example\"; selector = \"s\"; }\n"
	    "  domain { key = %s; domain = \"b.example\"; selector = \"s\"; }\n"
	    "  domain { key = %s; domain = \"c.example\"; selector = \"s\"; }\n"
	    "  domain { key = %s; domain = \"d.example\"; selector = \"s\"; }\n"
	    "  domain { key = %s; domain = \"bad..example\"; selector = \"s\"; }\n"
	    "  domain { key = %s; domain = \"e.example\"; selector = \"a/b\"; }\n"
	    "  domain { key = %s; domain = \"f.example\"; selector = \"s\"; }\n"
	    "  domain { key = %s; domain = \"f.example\"; selector = \"s2\"; }\n"
	    "}\n", path("junk.key"), path("missing.key"), path("open.pem"),
	    path("ed.pem"), path("rsa.pem"), path("rsa.pem"), path("rsa.pem"),
	    path("rsa.pem"));
	c = load(text, &d);
	TT_CHECK(c != NULL);
	TT_CHECK(diag_has(&d, CONF_DIAG_ERROR, 3, "not a private key"));
	TT_CHECK(diag_has(&d, CONF_DIAG_ERROR, 4, "No such file"));
	TT_CHECK(diag_has(&d, CONF_DIAG_WARNING, 5, "world-readable"));
	TT_CHECK(!diag_has(&d, CONF_DIAG_ERROR, 5, ""));
	TT_CHECK(diag_has(&d, CONF_DIAG_ERROR, 6, "an Ed25519 key, but "
	    "sign_alg needs an RSA key"));
	TT_CHECK(diag_has(&d, CONF_DIAG_ERROR, 7, "not a domain name"));
	TT_CHECK(diag_has(&d, CONF_DIAG_ERROR, 8, "is not a DNS label"));
	TT_CHECK(diag_has(&d, CONF_DIAG_WARNING, 10, "is listed before"));
	TT_CHECK(d.nerrors == 5);
	if (d.nerrors != 5)
		dump(&d);
	/* every diagnostic names the file */
	TT_CHECK(d.n > 0 && d.v[0].file != NULL &&
	    strcmp(d.v[0].file, "t.conf") == 0);
	conf_diag_free(&d);
	conf_unref(c);

	/* sign_alg = ed25519 takes the Ed25519 key; sign_headers needs from */
	snprintf(text, sizeof(text),
	    "dkim {\n  sign_alg = ed25519;\n  sign_headers = to, subject;\n"
	    "  domain { key = %s; domain = \"a.example\"; selector = \"s\"; }\n"
	    "}\n", path("ed.pem"));
	c = load(text, &d);
	TT_CHECK(c != NULL);
	TT_CHECK(diag_has(&d, CONF_DIAG_ERROR, 0, "must include From"));
	/* libopendkim <= 2.11.0 leaks every Ed25519 key: refused */
	TT_CHECK(diag_has(&d, CONF_DIAG_ERROR, 0, "frees no Ed25519 key") ==
	    (dkim_libversion() <= 0x020B00FFu));
	TT_CHECK(!diag_has(&d, CONF_DIAG_ERROR, 4, ""));
	TT_CHECK(diag_has(&d, CONF_DIAG_WARNING, 0, "'from' is not in "
	    "sign_headers"));
	conf_diag_free(&d);
	conf_unref(c);

	/* the parser alone never opens key files (the sample config) */
	conf_diag_init(&d);
	snprintf(text, sizeof(text), "dkim { domain { key = /nonexistent/"
	    "x.key; domain = \"a.example\"; selector = \"s\"; } }\n");
	c = conf_load_buffer("t.conf", text, strlen(text), &d);
	TT_CHECK(c != NULL && d.nerrors == 0);
	TT_CHECK(c != NULL && c->sections->dkim.keys == NULL);
	TT_CHECK(!diag_has(&d, CONF_DIAG_NOTICE, 0, "not implemented"));
	conf_diag_free(&d);
	conf_unref(c);
}

/* ---- whole messages: a real session signs, libopendkim verifies --------------- */

/* Sends one message (headers NAME\0VALUE pairs in HDRS, body BODY) and
 * collects the DKIM-Signature the session inserts; returns the header
 * line "DKIM-Signature: ..." (static) or NULL if none was inserted. */
static const char *
sign_message(const char *const *hdrs, size_t nh, const char *body)
{
	static char sig[8192];
	struct reply r;
	char buf[2048];
	size_t i, n;
	int c, guard = 0;
	const char *found = NULL;

	negotiate(6, 0x1ff, 0x1fffff, &r);
	envelope(&r, "<a@test.example>", "<b@dest.example>");
	TT_CHECK(strchr("c-", event_('T', "", 0, &r)) != NULL);
	for (i = 0; i < nh; i++) {
		/* as Postfix with HDR_LEADSPC: the value as written after
		 * the colon; a value starting with '!' is written without
		 * the usual space */
		const char *v = hdrs[2 * i + 1];

		n = (size_t)snprintf(buf, sizeof(buf), "%s%c%s%s", hdrs[2 * i],
		    0, *v == '!' ? "" : " ", *v == '!' ? v + 1 : v) + 1;
		TT_CHECK(strchr("c-", event_('L', buf, n, &r)) != NULL);
	}
	TT_CHECK(strchr("c-", event_('N', "", 0, &r)) != NULL);
	TT_CHECK(strchr("cs-", event_('B', body, strlen(body), &r)) != NULL);
	send_frame('D', LIT("Ei\0QID1"));
	send_frame('E', "", 0);
	c = read_reply(&r) < 0 ? -1 : r.cmd;
	while (c > 0 && c != 'c' && c != 'a' && guard++ < 10) {
		/* SMFIR_INSHEADER: index, name\0, value\0 */
		if (c == 'i' && r.len > 4 && strcmp((const char *)r.data + 4,
		    "DKIM-Signature") == 0 && rd32(r.data) == 0) {
			snprintf(sig, sizeof(sig), "DKIM-Signature:%.8000s",
			    (const char *)r.data + 4 + 15);
			found = sig;
		}
		c = read_reply(&r) < 0 ? -1 : r.cmd;
	}
	TT_CHECK(c == 'c');
	return found;
}

/* Verifies SIG over the message with libopendkim (key from pub.txt);
 * returns the DKIM_STAT of dkim_eom. */
static DKIM_STAT
verify(const char *sig, const char *const *hdrs, size_t nh,
    const char *body)
{
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	DKIM *v;
	DKIM_STAT st;
	dkim_query_t q = DKIM_QUERY_FILE;
	char buf[8192], *o;
	const char *p;
	size_t i;

	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &q, sizeof(q));
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO,
	    (void *)path("pub.txt"), strlen(path("pub.txt")));
	v = dkim_verify(lib, (const u_char *)"t", NULL, &st);
	/* the signature as the MTA writes it: LF folding -> CRLF */
	for (o = buf, p = sig; *p != '\0' && o < buf + sizeof(buf) - 2; p++) {
		if (*p == '\n')
			*o++ = '\r';
		*o++ = *p;
	}
	*o = '\0';
	dkim_header(v, (u_char *)buf, strlen(buf));
	for (i = 0; i < nh; i++) {
		const char *hv = hdrs[2 * i + 1];

		snprintf(buf, sizeof(buf), "%s:%s%s", hdrs[2 * i],
		    *hv == '!' ? "" : " ", *hv == '!' ? hv + 1 : hv);
		dkim_header(v, (u_char *)buf, strlen(buf));
	}
	dkim_eoh(v);
	dkim_body(v, (u_char *)(uintptr_t)body, strlen(body));
	st = dkim_eom(v, NULL);
	dkim_free(v);
	dkim_close(lib);
	return st;
}

static void
sign_verify(const char *extra, const char *want_c)
{
	static const char *const hdrs[] = {
		"From", "Alice <alice@test.example>",
		"To", "bob@dest.example,\r\n\tcarol@dest.example",
		"Subject", "hello  world",
		"X-Unsigned", "anything",
		"Date", "!Sun, 22 Nov 2026 10:00:00 +0000",	/* "Date:Sun" */
	};
	const char *body = "line one\r\nline  two \r\n\r\n";
	char text[1024];
	const char *sig;

	snprintf(text, sizeof(text), "bind_socket = \"inet:1@127.0.0.1\";\n"
	    "dkim {\n  %s\n  domain { key = %s; domain = \"test.example\"; "
	    "selector = \"sel\"; }\n}\n", extra, path("rsa.pem"));
	setup(text);
	sig = sign_message(hdrs, 5, body);
	TT_CHECK(sig != NULL);
	if (sig != NULL) {
		TT_CHECK(strstr(sig, want_c) != NULL);
		TT_CHECK(strstr(sig, "d=test.example") != NULL);
		TT_CHECK(strstr(sig, "s=sel") != NULL);
		TT_CHECK(strstr(sig, "a=rsa-sha256") != NULL);
		TT_CHECK(strstr(sig, "\r") == NULL);
		TT_CHECK_INT(verify(sig, hdrs, 5, body), ==, DKIM_STAT_OK);
		/* a changed body or header does not verify */
		TT_CHECK(verify(sig, hdrs, 5, "line one\r\n") != DKIM_STAT_OK);
		{
			const char *h2[10];

			memcpy(h2, hdrs, sizeof(h2));
			h2[5] = "hello world!";
			TT_CHECK(verify(sig, h2, 5, body) != DKIM_STAT_OK);
			/* a header outside sign_headers may change */
			h2[5] = hdrs[5];
			h2[7] = "changed";
			TT_CHECK_INT(verify(sig, h2, 5, body), ==,
			    DKIM_STAT_OK);
			/* "Date:Sun" was signed as written: with simple
			 * canonicalization "Date: Sun" is another header */
			h2[9] = hdrs[9] + 1;
			TT_CHECK((verify(sig, h2, 5, body) == DKIM_STAT_OK) ==
			    (strstr(want_c, "=relaxed/") != NULL));
		}
	}
	teardown();
}

static void
test_sign_simple(void)
{
	sign_verify("sign_networks = 127.0.0.1;", "c=simple/simple");
}

static void
test_sign_relaxed_folded(void)
{
	sign_verify("header_canon = relaxed; body_canon = relaxed; "
	    "fold_header = yes;", "c=relaxed/relaxed");
}

/* auth_only: a sender that is neither authenticated nor in sign_networks
 * gets no signature. */
static void
test_not_signed_unauthenticated(void)
{
	static const char *const hdrs[] = { "From", "a@test.example" };
	char text[512];

	snprintf(text, sizeof(text), "bind_socket = \"inet:1@127.0.0.1\";\n"
	    "dkim { domain { key = %s; domain = \"test.example\"; "
	    "selector = \"sel\"; } }\n", path("rsa.pem"));
	setup(text);
	harness_auth = false;
	TT_CHECK(sign_message(hdrs, 1, "x\r\n") == NULL);
	harness_auth = true;
	teardown();
	/* the same with the SASL login: signed */
	setup(text);
	TT_CHECK(sign_message(hdrs, 1, "x\r\n") != NULL);
	teardown();
}

/* use_domain: the From header's domain (default) or the envelope's; and
 * max_size. */
static void
test_domain_choice_and_size(void)
{
	static const char *const hdrs[] = { "From", "x@other.example" };
	char text[512];
	const char *sig;

	/* envelope <a@test.example>, From x@other.example: no key for the
	 * header's domain */
	snprintf(text, sizeof(text), "bind_socket = \"inet:1@127.0.0.1\";\n"
	    "dkim { domain { key = %s; domain = \"test.example\"; "
	    "selector = \"sel\"; } }\n", path("rsa.pem"));
	setup(text);
	TT_CHECK(sign_message(hdrs, 1, "x\r\n") == NULL);
	teardown();
	snprintf(text, sizeof(text), "bind_socket = \"inet:1@127.0.0.1\";\n"
	    "dkim { use_domain = envelope; domain { key = %s; domain = "
	    "\"test.example\"; selector = \"sel\"; } }\n", path("rsa.pem"));
	setup(text);
	sig = sign_message(hdrs, 1, "x\r\n");
	TT_CHECK(sig != NULL && strstr(sig, "d=test.example") != NULL);
	teardown();
	/* max_size: a larger message is not signed */
	snprintf(text, sizeof(text), "bind_socket = \"inet:1@127.0.0.1\";\n"
	    "dkim { use_domain = envelope; max_size = 20; domain { key = %s; "
	    "domain = \"test.example\"; selector = \"sel\"; } }\n",
	    path("rsa.pem"));
	setup(text);
	TT_CHECK(sign_message(hdrs, 1, "a body longer than twenty bytes\r\n")
	    == NULL);
	teardown();
}

TT_MAIN(
	{ "dkim/domain_valid", test_domain_valid },
	{ "dkim/key_load", test_key_load },
	{ "dkim/lookup", test_lookup },
	{ "dkim/dir_cache", test_dir_cache },
	{ "dkim/config_errors", test_config_errors },
	{ "dkim/sign_simple", test_sign_simple },
	{ "dkim/sign_relaxed_folded", test_sign_relaxed_folded },
	{ "dkim/not_signed_unauthenticated", test_not_signed_unauthenticated },
	{ "dkim/domain_choice_and_size", test_domain_choice_and_size },
)

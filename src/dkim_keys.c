/* dkim_keys.c -- DKIM signing keys per config generation: loading and
 * checking key files, the key directory cache, the domain -> key lookup
 * and the libopendkim handle.  Contract in dkim_keys.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf_internal.h"
#include "conf_sections.h"
#include "dkim_keys.h"
#include "log.h"
#include "xmalloc.h"

#define DKIM_KEY_MAX_FILE	(64 * 1024)	/* 16384-bit PEM: ~12 KiB */
#define DKIM_DIR_CACHE_MAX	256		/* key directory files cached */
#define DKIM_RSA_MIN_BITS	1024		/* verifiers refuse less */
/* libopendkim up to 2.11.0 (Debian 12: 2.11.0~beta2) signs with Ed25519 but
 * dkim_free() never frees the key it loaded for it (dkim_privkey_load():
 * its key struct and the EVP_PKEY leak on every signature; RSA keys are
 * freed): sign_alg = ed25519 is refused with such a library */
#define DKIM_ED25519_LEAKY_UPTO	0x020B00FFu

/* rmilter 1.6's list, plus content-disposition, resent-date, list-help
 * and list-unsubscribe-post */
static const char *const dkim_default_headers[] = {
	"from", "sender", "reply-to", "subject", "date", "message-id", "to",
	"cc", "mime-version", "content-type", "content-transfer-encoding",
	"content-disposition", "resent-to", "resent-cc", "resent-from",
	"resent-sender", "resent-message-id", "resent-date", "in-reply-to",
	"references", "list-id", "list-help", "list-owner",
	"list-unsubscribe", "list-unsubscribe-post", "list-subscribe",
	"list-post", NULL,
};

enum dkim_entry_kind { DKIM_ENTRY_FILE = 0, DKIM_ENTRY_DIR };

struct dkim_entry {
	enum dkim_entry_kind kind;
	char *domain;		/* lowercase; "*" = any */
	char *selector;
	char *path;
	bool wildcard;
	bool subdomains;
	bool broken;		/* its key failed to load (config error) */
	struct dkim_key key;	/* FILE */
};

struct dkim_cached {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct dkim_key key;
	uint64_t used;		/* lookup clock at the last use (eviction) */
};

struct dkim_keyset {
	DKIM_LIB *lib;
	enum dkim_key_type want;	/* key type sign_alg needs */
	struct dkim_entry *v;
	size_t n;
	char **sign;		/* lowercase, NULL-terminated */
	char **oversign;
	struct dkim_cached cache[DKIM_DIR_CACHE_MAX];
	size_t ncache;
	uint64_t clock;
};

/* ---- keys ----------------------------------------------------------------- */

/* Never prompts for a passphrase: an encrypted key is an error. */
static int
dkim_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* Parses BUF (PEM, else DER) into a key; 0 or -1 with ERR. */
static int
dkim_key_parse(const uint8_t *buf, size_t len, struct dkim_key *key,
    char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	BIO *in, *out;
	BUF_MEM *mem;
	int id, rc = -1;

	in = BIO_new_mem_buf(buf, (int)len);
	if (in == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pk = PEM_read_bio_PrivateKey(in, NULL, dkim_no_passphrase, NULL);
	if (pk == NULL) {
		const uint8_t *p = buf;

		pk = d2i_AutoPrivateKey(NULL, &p, (long)len);
	}
	BIO_free(in);
	if (pk == NULL) {
		snprintf(err, errlen, "not a private key (PEM or DER; an "
		    "encrypted key is not supported)");
		return -1;
	}
	id = EVP_PKEY_base_id(pk);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "not an RSA or Ed25519 key");
		goto out;
	}
	key->type = id == EVP_PKEY_RSA ? DKIM_KEY_RSA : DKIM_KEY_ED25519;
	key->bits = (unsigned)EVP_PKEY_bits(pk);
	if ((out = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PKCS8PrivateKey(out, pk, NULL, NULL, 0, NULL,
	    NULL)) {
		BIO_free(out);
		snprintf(err, errlen, "cannot re-encode the key");
		goto out;
	}
	BIO_get_mem_ptr(out, &mem);
	key->pem = xmalloc(mem->length + 1);
	memcpy(key->pem, mem->data, mem->length);
	key->pem[mem->length] = '\0';
	OPENSSL_cleanse(mem->data, mem->length);
	BIO_free(out);
	rc = 0;
out:
	EVP_PKEY_free(pk);
	return rc;
}

int
dkim_key_load(const char *path, struct dkim_key *key, char *err,
    size_t errlen, char *warn, size_t warnlen)
{
	uint8_t *buf;
	struct stat st;
	ssize_t r = 0;
	size_t got = 0;
	int fd, rc;

	memset(key, 0, sizeof(*key));
	warn[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_size > DKIM_KEY_MAX_FILE) {
		snprintf(err, errlen, "%s is too large for a key (%lld bytes)",
		    path, (long long)st.st_size);
		close(fd);
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		snprintf(err, errlen, "cannot read %s: %s", path, r < 0 ?
		    strerror(errno) : "short read");
		free(buf);
		return -1;
	}
	rc = dkim_key_parse(buf, got, key, err, errlen);
	OPENSSL_cleanse(buf, got);
	free(buf);
	if (rc < 0) {
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s: %s", path, tmp);
		return -1;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH | S_IWGRP))
		snprintf(warn, warnlen, "key file %s is %s (mode %04o); make "
		    "it readable by rmilter's user only (chmod 0600 or 0640)",
		    path, st.st_mode & S_IROTH ? "world-readable" : "writable "
		    "by others", (unsigned)(st.st_mode & 07777));
	else if (key->type == DKIM_KEY_RSA && key->bits < DKIM_RSA_MIN_BITS)
		snprintf(warn, warnlen, "key file %s: an RSA key of %u bits; "
		    "verifiers ignore signatures of keys under %u bits", path,
		    key->bits, DKIM_RSA_MIN_BITS);
	return 0;
}

void
dkim_key_clear(struct dkim_key *key)
{
	if (key->pem != NULL) {
		OPENSSL_cleanse(key->pem, strlen(key->pem));
		free(key->pem);
	}
	memset(key, 0, sizeof(*key));
}

static const char *
dkim_key_type_name(enum dkim_key_type t)
{
	return t == DKIM_KEY_RSA ? "an RSA" : "an Ed25519";
}

/* ---- names ------------------------------------------------------------------ */

bool
dkim_domain_valid(const char *s)
{
	size_t len = 0, label = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++, len++) {
		if (*s == '.') {
			if (label == 0)
				return false;	/* leading or double dot */
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && len <= 253;
}

static bool
dkim_header_name_valid(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

static char *
dkim_lower_dup(const char *s)
{
	char *d = xstrdup(s), *p;

	for (p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static void
dkim_strv_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* ---- the keyset ------------------------------------------------------------- */

/* Copies a header list (or the built-in one when L is empty), lowercased;
 * a bad name is an error at the dkim section. */
static char **
dkim_names(const struct conf_strlist *l, const char *const *def,
    const char *what, struct conf_diag *d, const char *file)
{
	size_t i, n = l->n;
	char **v;

	if (n == 0 && def != NULL)
		while (def[n] != NULL)
			n++;
	v = xcalloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		const char *s = l->n > 0 ? l->v[i] : def[i];

		if (!dkim_header_name_valid(s))
			conf_diag_add(d, CONF_DIAG_ERROR, file, 0, "dkim.%s: "
			    "'%.64s' is not a header name", what, s);
		v[i] = dkim_lower_dup(s);
	}
	return v;
}

static bool
dkim_strv_has(char *const *v, const char *s)
{
	size_t i;

	for (i = 0; v[i] != NULL; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* Loads entry E (from domain section DOM); problems go to D. */
static void
dkim_entry_load(struct dkim_keyset *ks, struct dkim_entry *e,
    const struct conf_dkim_domain *dom, struct conf_diag *d)
{
	char err[512], warn[512], path[1024];
	struct stat st;

	if (stat(e->path, &st) < 0) {
		conf_diag_add(d, CONF_DIAG_ERROR, dom->file, dom->line,
		    "dkim domain '%s': key %s: %s", dom->domain, e->path,
		    strerror(errno));
		e->broken = true;
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		e->kind = DKIM_ENTRY_DIR;
		if (access(e->path, R_OK | X_OK) < 0)
			conf_diag_add(d, CONF_DIAG_WARNING, dom->file,
			    dom->line, "dkim domain '%s': key directory %s "
			    "is not readable: %s", dom->domain, e->path,
			    strerror(errno));
		if (e->wildcard)
			return;
		snprintf(path, sizeof(path), "%s/%s.%s.key", e->path,
		    e->domain, e->selector);
		if (access(path, F_OK) < 0)
			conf_diag_add(d, CONF_DIAG_WARNING, dom->file,
			    dom->line, "dkim domain '%s': no key file %s yet "
			    "(mail of the domain is not signed until there "
			    "is one)", dom->domain, path);
		return;
	}
	e->kind = DKIM_ENTRY_FILE;
	if (dkim_key_load(e->path, &e->key, err, sizeof(err), warn,
	    sizeof(warn)) < 0) {
		conf_diag_add(d, CONF_DIAG_ERROR, dom->file, dom->line,
		    "dkim domain '%s': %s", dom->domain, err);
		e->broken = true;
		return;
	}
	if (warn[0] != '\0')
		conf_diag_add(d, CONF_DIAG_WARNING, dom->file, dom->line,
		    "dkim domain '%s': %s", dom->domain, warn);
	if (e->key.type != ks->want) {
		conf_diag_add(d, CONF_DIAG_ERROR, dom->file, dom->line,
		    "dkim domain '%s': %s is %s key, but sign_alg needs %s "
		    "key", dom->domain, e->path, dkim_key_type_name(
		    e->key.type), dkim_key_type_name(ks->want));
		e->broken = true;
	}
}

struct dkim_keyset *
dkim_keyset_new(const struct conf_dkim *dk, struct conf_diag *d)
{
	struct dkim_keyset *ks;
	const char *file = NULL;
	size_t i, j;

	ks = xcalloc(1, sizeof(*ks));
	ks->want = dk->sign_alg == CONF_DKIM_ED25519 ? DKIM_KEY_ED25519 :
	    DKIM_KEY_RSA;
	if (dk->ndomains > 0)
		file = dk->domains[0].file;
	ks->sign = dkim_names(&dk->sign_headers, dkim_default_headers,
	    "sign_headers", d, file);
	ks->oversign = dkim_names(&dk->oversign_headers, NULL,
	    "oversign_headers", d, file);
	if (!dkim_strv_has(ks->sign, "from"))
		conf_diag_add(d, CONF_DIAG_ERROR, file, 0, "dkim.sign_headers "
		    "must include From (RFC 6376 5.4)");
	for (i = 0; ks->oversign[i] != NULL; i++)
		if (!dkim_strv_has(ks->sign, ks->oversign[i]))
			conf_diag_add(d, CONF_DIAG_WARNING, file, 0,
			    "dkim.oversign_headers: '%s' is not in "
			    "sign_headers; it is not signed", ks->oversign[i]);
	ks->lib = dkim_init(NULL, NULL);
	if (ks->lib == NULL) {
		conf_diag_add(d, CONF_DIAG_ERROR, file, 0, "dkim: libopendkim "
		    "could not be initialized");
		dkim_keyset_free(ks);
		return NULL;
	}
	(void)dkim_options(ks->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
	    ks->sign, sizeof(ks->sign));
	(void)dkim_options(ks->lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
	    ks->oversign, sizeof(ks->oversign));
	if (dk->sign_alg == CONF_DKIM_ED25519 &&
	    !dkim_libfeature(ks->lib, DKIM_FEATURE_ED25519))
		conf_diag_add(d, CONF_DIAG_ERROR, file, 0, "dkim.sign_alg = "
		    "ed25519: this libopendkim has no Ed25519 support");
	else if (dk->sign_alg == CONF_DKIM_ED25519 &&
	    dkim_libversion() <= DKIM_ED25519_LEAKY_UPTO)
		conf_diag_add(d, CONF_DIAG_ERROR, file, 0, "dkim.sign_alg = "
		    "ed25519: libopendkim %u.%u.%u frees no Ed25519 key after "
		    "signing (about 1.3 KB lost per message); use sha256 (RSA "
		    "keys) with this library", dkim_libversion() >> 24,
		    (dkim_libversion() >> 16) & 0xff,
		    (dkim_libversion() >> 8) & 0xff);
	if (dk->present && dk->ndomains == 0)
		conf_diag_add(d, CONF_DIAG_WARNING, NULL, 0, "dkim: no "
		    "domain { } entries; no message will be signed");
	ks->v = xcalloc(dk->ndomains + 1, sizeof(*ks->v));
	for (i = 0; i < dk->ndomains; i++) {
		const struct conf_dkim_domain *dom = &dk->domains[i];
		struct dkim_entry *e = &ks->v[ks->n];

		if (dom->key == NULL || dom->domain == NULL ||
		    dom->selector == NULL)
			continue;	/* the parser reported it */
		e->domain = dkim_lower_dup(dom->domain);
		e->selector = xstrdup(dom->selector);
		e->path = xstrdup(dom->key);
		e->wildcard = strcmp(e->domain, "*") == 0;
		e->subdomains = dom->sign_subdomains;
		ks->n++;
		if (!e->wildcard && !dkim_domain_valid(e->domain)) {
			conf_diag_add(d, CONF_DIAG_ERROR, dom->file, dom->line,
			    "dkim domain '%.64s': not a domain name (or \"*\")",
			    dom->domain);
			e->broken = true;
			continue;
		}
		if (!dkim_domain_valid(e->selector)) {
			conf_diag_add(d, CONF_DIAG_ERROR, dom->file, dom->line,
			    "dkim domain '%s': selector '%.64s' is not a "
			    "DNS label", dom->domain, dom->selector);
			e->broken = true;
			continue;
		}
		if (e->wildcard && e->subdomains)
			conf_diag_add(d, CONF_DIAG_WARNING, dom->file,
			    dom->line, "dkim domain \"*\": sign_subdomains "
			    "has no effect (\"*\" matches every domain)");
		for (j = 0; j + 1 < ks->n; j++)
			if (!e->wildcard && strcmp(ks->v[j].domain,
			    e->domain) == 0)
				conf_diag_add(d, CONF_DIAG_WARNING, dom->file,
				    dom->line, "dkim domain '%s' is listed "
				    "before; this entry is used only when the "
				    "earlier one's key directory has no key for "
				    "it", dom->domain);
		dkim_entry_load(ks, e, dom, d);
	}
	return ks;
}

void
dkim_keyset_free(struct dkim_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++) {
		free(ks->v[i].domain);
		free(ks->v[i].selector);
		free(ks->v[i].path);
		dkim_key_clear(&ks->v[i].key);
	}
	free(ks->v);
	for (i = 0; i < ks->ncache; i++) {
		free(ks->cache[i].path);
		dkim_key_clear(&ks->cache[i].key);
	}
	if (ks->lib != NULL)
		dkim_close(ks->lib);
	dkim_strv_free(ks->sign);
	dkim_strv_free(ks->oversign);
	free(ks);
}

DKIM_LIB *
dkim_keyset_lib(const struct dkim_keyset *ks)
{
	return ks->lib;
}

bool
dkim_keyset_signs(const struct dkim_keyset *ks, const char *name)
{
	return dkim_strv_has(ks->sign, name);
}

/* ---- lookup ----------------------------------------------------------------- */

/* The key file PATH of a key directory, from the cache or read now.
 * Returns OK, NONE (no such file) or ERROR (ERR filled). */
static enum dkim_lookup_rc
dkim_dir_key(struct dkim_keyset *ks, const char *path,
    const struct dkim_key **out, char *err, size_t errlen)
{
	struct dkim_cached *c = NULL;
	struct dkim_key key;
	char warn[512];
	struct stat st;
	size_t i, victim = 0;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return DKIM_LOOKUP_NONE;
		snprintf(err, errlen, "key %s: %s", path, strerror(errno));
		return DKIM_LOOKUP_ERROR;
	}
	ks->clock++;
	for (i = 0; i < ks->ncache; i++) {
		if (strcmp(ks->cache[i].path, path) == 0) {
			c = &ks->cache[i];
			break;
		}
		if (ks->cache[i].used < ks->cache[victim].used)
			victim = i;
	}
	if (c != NULL && c->dev == st.st_dev && c->ino == st.st_ino &&
	    c->size == st.st_size &&
	    c->mtime.tv_sec == st.st_mtim.tv_sec &&
	    c->mtime.tv_nsec == st.st_mtim.tv_nsec) {
		c->used = ks->clock;
		*out = &c->key;
		return DKIM_LOOKUP_OK;
	}
	if (dkim_key_load(path, &key, err, errlen, warn, sizeof(warn)) < 0)
		return DKIM_LOOKUP_ERROR;
	if (warn[0] != '\0')
		log_warning("dkim: %s", warn);
	if (key.type != ks->want) {
		snprintf(err, errlen, "key %s is %s key, but sign_alg needs %s "
		    "key", path, dkim_key_type_name(key.type),
		    dkim_key_type_name(ks->want));
		dkim_key_clear(&key);
		return DKIM_LOOKUP_ERROR;
	}
	if (c == NULL) {
		if (ks->ncache < DKIM_DIR_CACHE_MAX) {
			c = &ks->cache[ks->ncache++];
		} else {
			c = &ks->cache[victim];
			free(c->path);
			dkim_key_clear(&c->key);
		}
		c->path = xstrdup(path);
	} else {
		dkim_key_clear(&c->key);
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = st.st_size;
	c->mtime = st.st_mtim;
	c->key = key;
	c->used = ks->clock;
	*out = &c->key;
	return DKIM_LOOKUP_OK;
}

/* Tries entry E for d= NAME. */
static enum dkim_lookup_rc
dkim_entry_try(struct dkim_keyset *ks, const struct dkim_entry *e,
    const char *name, struct dkim_match *m, char *err, size_t errlen)
{
	if (e->broken) {
		snprintf(err, errlen, "the key of domain entry '%s' (%s) did "
		    "not load; see the config check", e->domain, e->path);
		return DKIM_LOOKUP_ERROR;
	}
	snprintf(m->domain, sizeof(m->domain), "%s", name);
	m->selector = e->selector;
	if (e->kind == DKIM_ENTRY_FILE) {
		snprintf(m->path, sizeof(m->path), "%s", e->path);
		m->key = &e->key;
		return DKIM_LOOKUP_OK;
	}
	snprintf(m->path, sizeof(m->path), "%s/%s.%s.key", e->path, name,
	    e->selector);
	return dkim_dir_key(ks, m->path, &m->key, err, errlen);
}

enum dkim_lookup_rc
dkim_keyset_lookup(struct dkim_keyset *ks, const char *domain,
    struct dkim_match *m, char *err, size_t errlen)
{
	const struct dkim_entry *best = NULL;
	enum dkim_lookup_rc rc;
	char dom[256], *p;
	size_t i, dl, el;

	memset(m, 0, sizeof(m->domain) + sizeof(m->path));
	m->key = NULL;
	m->selector = NULL;
	snprintf(dom, sizeof(dom), "%s", domain);
	for (p = dom; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!dkim_domain_valid(dom)) {
		snprintf(err, errlen, "sender domain '%.64s' is not a domain "
		    "name", domain);
		return DKIM_LOOKUP_NONE;
	}
	dl = strlen(dom);
	/* 1. the domain itself */
	for (i = 0; i < ks->n; i++) {
		if (ks->v[i].wildcard || strcmp(ks->v[i].domain, dom) != 0)
			continue;
		if ((rc = dkim_entry_try(ks, &ks->v[i], dom, m, err,
		    errlen)) != DKIM_LOOKUP_NONE)
			return rc;
	}
	/* 2. the closest parent domain that signs its subdomains */
	for (i = 0; i < ks->n; i++) {
		const struct dkim_entry *e = &ks->v[i];

		if (e->wildcard || !e->subdomains)
			continue;
		el = strlen(e->domain);
		if (el >= dl || dom[dl - el - 1] != '.' ||
		    strcmp(dom + dl - el, e->domain) != 0)
			continue;
		if (best == NULL || el > strlen(best->domain))
			best = e;
	}
	if (best != NULL && (rc = dkim_entry_try(ks, best, best->domain, m,
	    err, errlen)) != DKIM_LOOKUP_NONE)
		return rc;
	/* 3. the wildcards */
	for (i = 0; i < ks->n; i++) {
		if (!ks->v[i].wildcard)
			continue;
		if ((rc = dkim_entry_try(ks, &ks->v[i], dom, m, err,
		    errlen)) != DKIM_LOOKUP_NONE)
			return rc;
	}
	snprintf(err, errlen, "no key for domain %s", dom);
	return DKIM_LOOKUP_NONE;
}

/* ---- the config generation ---------------------------------------------------- */

void
dkim_keys_check_config(const struct rmilter_config *conf,
    struct conf_diag *d)
{
	/* the keyset is a cache of the (otherwise read-only) config */
	struct conf_dkim *dk;

	if (conf->sections == NULL)
		return;
	dk = &((struct rmilter_config *)conf)->sections->dkim;
	if (!dk->present)
		return;
	dkim_keyset_free(dk->keys);
	dk->keys = dkim_keyset_new(dk, d);
}

struct dkim_keyset *
dkim_keys_get(const struct rmilter_config *conf)
{
	struct conf_dkim *dk = &((struct rmilter_config *)conf)->sections->dkim;
	struct conf_diag d;
	char line[1200];
	size_t i;

	if (dk->keys != NULL)
		return dk->keys;
	conf_diag_init(&d);
	dk->keys = dkim_keyset_new(dk, &d);
	for (i = 0; i < d.n; i++) {
		conf_diag_format(&d.v[i], line, sizeof(line));
		log_warning("%s", line);
	}
	conf_diag_free(&d);
	return dk->keys;
}

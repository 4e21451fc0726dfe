/* dkim_keys.h -- the DKIM signing keys of one config generation: the
 * dkim { domain { } } entries with their keys loaded, the libopendkim
 * library handle configured for them, and the lookup sender domain ->
 * (d=, selector, key).
 *
 * Lifetime: a keyset is made when the config is checked
 * (dkim_keys_check_config(), called by pipeline_check_config(), so
 * `rmilter -t` and SIGHUP report key errors with file:line and refuse the
 * config), hangs off struct conf_dkim and is freed with the config
 * (conf_schema_free()).  The parser itself never touches key files.
 *
 * Lookup order for a sender domain D (lowercased, checked to be a plain
 * host name, so it can never name a path outside a key directory):
 *   1. an entry whose domain is D (config order; the first one wins);
 *   2. the entry with the longest domain P such that D ends in ".P" and
 *      sign_subdomains = yes: the mail is signed as P (d=P, P's key);
 *   3. every "*" entry in config order: d=D.
 * A key file entry always has its key.  A key directory entry reads
 * DIR/<name>.<selector>.key where <name> is the d= domain; when that file
 * does not exist the next candidate is tried.  A named domain is never
 * matched as a substring (rmilter 1.6 used strstr()).
 *
 * Key directory files are read when first needed and cached per keyset by
 * path, keyed by (device, inode, size, mtime): a replaced key is re-read,
 * one stat() per message otherwise.  Files are small (at most 64 KiB) and
 * local, so reading one does not hold the event loop for long. */
#ifndef RMILTER_DKIM_KEYS_H
#define RMILTER_DKIM_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include <opendkim/dkim.h>

struct conf_diag;
struct conf_dkim;
struct rmilter_config;
struct dkim_keyset;

enum dkim_key_type { DKIM_KEY_RSA = 0, DKIM_KEY_ED25519 };

/* A private key, re-encoded as unencrypted PKCS#8 PEM (what libopendkim
 * reads); the PEM is wiped when the key is freed. */
struct dkim_key {
	char *pem;
	enum dkim_key_type type;
	unsigned bits;
};

/* Reads and checks the key at PATH (PEM or DER, RSA or Ed25519).  Returns
 * 0, or -1 with ERR filled.  WARN gets a non-fatal remark (world-readable
 * file, RSA key under 1024 bits), or "" if there is none. */
int dkim_key_load(const char *path, struct dkim_key *key, char *err,
    size_t errlen, char *warn, size_t warnlen);
void dkim_key_clear(struct dkim_key *key);

/* Builds the keyset for DK.  Errors and warnings go to DIAG with the file
 * and line of the offending domain { } section; returns NULL only if DK
 * has errors (DIAG then has at least one error). */
struct dkim_keyset *dkim_keyset_new(const struct conf_dkim *dk,
    struct conf_diag *diag);
void dkim_keyset_free(struct dkim_keyset *ks);	/* NULL ok */

/* The library handle (signed-header lists set). */
DKIM_LIB *dkim_keyset_lib(const struct dkim_keyset *ks);

/* true if lowercase header NAME is one of the signed headers. */
bool dkim_keyset_signs(const struct dkim_keyset *ks, const char *name);

enum dkim_lookup_rc { DKIM_LOOKUP_OK = 0, DKIM_LOOKUP_NONE,
    DKIM_LOOKUP_ERROR };

struct dkim_match {
	char domain[256];		/* d= */
	const char *selector;		/* s= (owned by the keyset) */
	const struct dkim_key *key;	/* valid until the next lookup */
	char path[512];			/* where the key came from */
};

/* Finds the key for sender domain DOMAIN (any case).  NONE: no entry
 * applies (ERR says why, e.g. "no key for domain x").  ERROR: an entry
 * applies but its key cannot be used (unreadable, bad, wrong type); ERR
 * names the file and the reason. */
enum dkim_lookup_rc dkim_keyset_lookup(struct dkim_keyset *ks,
    const char *domain, struct dkim_match *m, char *err, size_t errlen);

/* true if S is a host name usable as a d= domain and in a file name:
 * labels of letters, digits, '-' and '_', separated by single dots. */
bool dkim_domain_valid(const char *s);

/* The config check: builds CONF's keyset (if it has a dkim section) and
 * keeps it in conf->sections->dkim.keys. */
void dkim_keys_check_config(const struct rmilter_config *conf,
    struct conf_diag *diag);

/* CONF's keyset; built now (problems logged) if the config was never
 * checked.  NULL if the config's keys have errors. */
struct dkim_keyset *dkim_keys_get(const struct rmilter_config *conf);

#endif

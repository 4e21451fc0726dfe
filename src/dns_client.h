/* dns_client.h -- non-blocking DNS queries (c-ares) on the daemon's libevent
 * loop: A, AAAA, TXT, MX and PTR, which libevent's evdns cannot all ask.
 *
 * One client per configuration generation (conf->dns, made at first use
 * from the dns { } section, freed with the config); without nameservers it
 * uses /etc/resolv.conf as c-ares reads it.  A query's callback runs exactly
 * once, from the loop (never inside dns_query()), unless the query was
 * cancelled first: after dns_query_cancel() it never runs. */
#ifndef RMILTER_DNS_CLIENT_H
#define RMILTER_DNS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "dns_answer.h"

struct conf_diag;
struct dns_client;
struct dns_query;
struct event_base;
struct rmilter_config;

/* ANS is valid only during the call (copy what is kept). */
typedef void (*dns_done_fn)(void *ud, const struct dns_answer *ans);

/* The client of CONF's dns section, made at first use on daemon_base().
 * NULL (logged once) when c-ares cannot be set up. */
struct dns_client *dns_client_get(const struct rmilter_config *conf);

/* A client on BASE: SERVERS "ip[:port],[ipv6]:port" (NULL or "": from
 * /etc/resolv.conf), per-try TIMEOUT_MS and TRIES, an answer cache of
 * CACHE_SIZE entries (0: none; answers are kept for their TTL, at most an
 * hour, TEMPFAIL never).  NULL with ERR filled on failure.  For the daemon
 * (via dns_client_get) and the tests. */
struct dns_client *dns_client_new(struct event_base *base,
    const char *servers, unsigned timeout_ms, unsigned tries,
    size_t cache_size, char *err, size_t errlen);

/* Queries answered without a query of their own (from the cache, or by
 * one in flight for the same name and type), queries sent, answers kept. */
void dns_client_stats(const struct dns_client *c, unsigned long *hits,
    unsigned long *misses, size_t *cached);
/* Frees C; queries still in flight are cancelled (callbacks not run). */
void dns_client_free(struct dns_client *c);

/* Asks NAME/TYPE (DNS_T_*); CB(UD, answer) later.  Returns a handle for
 * dns_query_cancel(), valid until the callback starts. */
struct dns_query *dns_query(struct dns_client *c, const char *name, int type,
    dns_done_fn cb, void *ud);
void dns_query_cancel(struct dns_query *q);

/* Queries in flight (sent, answer not delivered yet). */
unsigned dns_client_inflight(const struct dns_client *c);

/* "ip:port,[ipv6]:port" of the dns section D into BUF, or "" when it names
 * none (then /etc/resolv.conf is used). */
struct conf_dns;
void dns_servers_csv(const struct conf_dns *d, char *buf, size_t len);

/* Config test: the dns section's nameservers must be IP addresses. */
void dns_check_config(const struct rmilter_config *conf,
    struct conf_diag *diag);

#endif

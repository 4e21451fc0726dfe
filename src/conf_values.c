/* conf_values.c -- sans-IO parsers for rmilter.conf value syntaxes: times,
 * sizes, flags, listen sockets, IP networks and server addresses.  None of
 * them resolves host names or touches the network. */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf_internal.h"
#include "xmalloc.h"

static int conf_parse_port(const char *s, size_t len, unsigned *port);
static bool conf_is_hostname(const char *s, size_t len);
static int conf_parse_decimal(const char **pp, double *out);

/* Reads digits[.digits] at *PP; returns 0 or -1 if there are no digits. */
static int
conf_parse_decimal(const char **pp, double *out)
{
	const char *p = *pp;
	double v = 0, scale = 1;
	bool any = false;

	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p++ - '0');
		any = true;
		if (v > 1e18)
			return -1;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			scale /= 10;
			v += (*p++ - '0') * scale;
			any = true;
		}
	}
	if (!any)
		return -1;
	*pp = p;
	*out = v;
	return 0;
}

/* Time: one or more NUMBER[UNIT] ("1h30m"); units ms s m min h d w.  A bare
 * number (alone) is in UNIT_MS milliseconds.  The result is milliseconds. */
int
conf_parse_time(const char *s, unsigned unit_ms, uint64_t *out, char *err,
    size_t errlen)
{
	static const struct { const char *name; double ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "sec", 1000 }, { "m", 60000 },
		{ "min", 60000 }, { "h", 3600000 }, { "d", 86400000 },
		{ "w", 604800000 },
	};
	const char *p = s;
	double total = 0;
	unsigned ncomp = 0;

	if (*p == '\0')
		goto bad;
	while (*p != '\0') {
		double v, mult = -1;
		const char *u;
		size_t ulen, i;

		if (conf_parse_decimal(&p, &v) < 0)
			goto bad;
		u = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			p++;
		ulen = (size_t)(p - u);
		ncomp++;
		if (ulen == 0) {
			if (ncomp > 1 || *p != '\0')
				goto bad;
			mult = unit_ms;
		}
		for (i = 0; ulen > 0 && i < sizeof(units) / sizeof(units[0]);
		    i++)
			if (strlen(units[i].name) == ulen &&
			    strncasecmp(units[i].name, u, ulen) == 0)
				mult = units[i].ms;
		if (mult < 0)
			goto bad;
		total += v * mult;
		if (total > 1e15)
			goto bad;
	}
	*out = (uint64_t)(total + 0.5);
	return 0;
bad:
	snprintf(err, errlen, "expected a time like 10s, 500ms, 5m, 2h, 1d "
	    "or 1.5s; got '%.64s'", s);
	return -1;
}

/* Size: NUMBER[k|m|g|t][b|ib], binary units, any case; bare = bytes. */
int
conf_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
	const char *p = s;
	double v, mult = 1;

	if (conf_parse_decimal(&p, &v) < 0)
		goto bad;
	switch (*p) {
	case 'k': case 'K': mult = 1024.0; p++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; p++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; p++; break;
	case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; p++; break;
	default: break;
	}
	if (mult > 1 && (*p == 'i' || *p == 'I'))
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p != '\0' || v * mult > 9.0e18)
		goto bad;
	*out = (uint64_t)(v * mult + 0.5);
	return 0;
bad:
	snprintf(err, errlen, "expected a size like 512, 10k, 10M or 1G; got "
	    "'%.64s'", s);
	return -1;
}

/* yes/true/on/y/1 or no/false/off/n/0, any case; returns 0 or -1. */
int
conf_parse_flag(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "y", "1" };
	static const char *const no[] = { "no", "false", "off", "n", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int
conf_parse_port(const char *s, size_t len, unsigned *port)
{
	unsigned v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

static bool
conf_is_hostname(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

/* Frees the strings of L and zeroes it (L itself is not freed). */
void
conf_listen_free(struct conf_listen *l)
{
	free(l->path);
	free(l->host);
	free(l->text);
	memset(l, 0, sizeof(*l));
}

/* unix:/path local:/path /path inet:port[@host] inet6:port[@[addr]] fd:N */
int
conf_parse_listen(const char *s, struct conf_listen *l, char *err,
    size_t errlen)
{
	struct conf_listen n;
	const char *p, *at;
	unsigned char buf[16];
	char host[INET6_ADDRSTRLEN + 2];
	size_t hl;

	memset(&n, 0, sizeof(n));
	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0 ||
	    s[0] == '/') {
		p = s[0] == '/' ? s : strchr(s, ':') + 1;
		if (*p == '\0' || strlen(p) > 107) {
			snprintf(err, errlen, "bad unix socket '%.64s': the "
			    "path must be 1..107 bytes", s);
			return -1;
		}
		n.kind = CONF_LISTEN_UNIX;
		n.path = xstrdup(p);
	} else if (strncmp(s, "inet:", 5) == 0 || strncmp(s, "inet6:", 6) == 0) {
		bool six = s[4] == '6';

		p = s + (six ? 6 : 5);
		at = strchr(p, '@');
		if (conf_parse_port(p, at ? (size_t)(at - p) : strlen(p),
		    &n.port) < 0) {
			snprintf(err, errlen, "bad port in '%.64s' (1..65535)", s);
			return -1;
		}
		n.kind = six ? CONF_LISTEN_INET6 : CONF_LISTEN_INET;
		if (at != NULL) {
			at++;
			hl = strlen(at);
			if (hl >= 2 && at[0] == '[' && at[hl - 1] == ']') {
				at++;
				hl -= 2;
			}
			if (hl == 0 || hl >= sizeof(host)) {
				snprintf(err, errlen, "bad address in '%.64s'", s);
				return -1;
			}
			memcpy(host, at, hl);
			host[hl] = '\0';
			if (!six && strcasecmp(host, "localhost") == 0)
				strcpy(host, "127.0.0.1");
			if (!six && inet_pton(AF_INET, host, buf) == 1)
				n.host = strcmp(host, "0.0.0.0") == 0 ? NULL :
				    xstrdup(host);
			else if (inet_pton(AF_INET6, host, buf) == 1) {
				n.kind = CONF_LISTEN_INET6;
				n.host = strcmp(host, "::") == 0 ? NULL :
				    xstrdup(host);
			} else if (strcmp(host, "*") == 0)
				n.host = NULL;
			else {
				snprintf(err, errlen, "bad address '%.64s' in "
				    "'%.64s': write an IP address (host names "
				    "other than localhost are not resolved)",
				    host, s);
				return -1;
			}
		}
	} else if (strncmp(s, "fd:", 3) == 0) {
		long v;
		char *end;

		p = s + 3;
		v = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : -1;
		if (v < 0 || v > INT_MAX || *end != '\0') {
			snprintf(err, errlen, "bad descriptor in '%.64s' "
			    "(expected fd:N, e.g. fd:3)", s);
			return -1;
		}
		n.kind = CONF_LISTEN_FD;
		n.fd = (int)v;
	} else {
		snprintf(err, errlen, "expected a socket like unix:/path, "
		    "inet:11339@127.0.0.1, inet6:11339@[::1] or fd:3; got "
		    "'%.64s'", s);
		return -1;
	}
	n.text = xstrdup(s);
	conf_listen_free(l);
	*l = n;
	return 0;
}

/* ADDR[/PREFIX], [ADDR][/PREFIX] or [ADDR/PREFIX].  Returns 0, 1 if host
 * bits were set and cleared, or -1. */
int
conf_parse_net(const char *s, struct conf_net *n, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *a;
	size_t len = strlen(s), i;
	unsigned prefix, max, bits;
	bool masked = false;

	if (len == 0 || len >= sizeof(buf))
		goto bad;
	memcpy(buf, s, len + 1);
	a = buf;
	if (a[0] == '[') {
		char *rb = strchr(a, ']');

		if (rb == NULL)
			goto bad;
		memmove(rb, rb + 1, strlen(rb + 1) + 1);
		a++;
	}
	slash = strchr(a, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, a, n->addr) == 1) {
		n->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, a, n->addr) == 1) {
		n->family = AF_INET6;
		max = 128;
	} else
		goto bad;
	prefix = max;
	if (slash != NULL) {
		char *end;
		unsigned long v;

		if (*slash < '0' || *slash > '9' || strlen(slash) > 3)
			goto badprefix;
		v = strtoul(slash, &end, 10);
		if (*end != '\0' || v > max)
			goto badprefix;
		prefix = (unsigned)v;
	}
	n->prefix = prefix;
	for (i = 0, bits = prefix; i < max / 8; i++) {
		uint8_t keep = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

		if ((n->addr[i] & ~keep) != 0)
			masked = true;
		n->addr[i] &= keep;
		bits = bits >= 8 ? bits - 8 : 0;
	}
	return masked ? 1 : 0;
badprefix:
	snprintf(err, errlen, "bad prefix length in '%.64s' (0..%u)", s, max);
	return -1;
bad:
	for (i = 0; i < len; i++)
		if (isalpha((unsigned char)s[i]) && s[i] != ':' &&
		    !isxdigit((unsigned char)s[i]))
			break;
	if (i < len && conf_is_hostname(s, len))
		snprintf(err, errlen, "'%.64s' is not an IP address or network; "
		    "host names are not resolved (write the address, e.g. "
		    "192.0.2.1, 10.0.0.0/8 or 2001:db8::/32)", s);
	else
		snprintf(err, errlen, "expected an IP address or network like "
		    "192.0.2.1, 10.0.0.0/8, ::1 or [2001:db8::]/32; got "
		    "'%.64s'", s);
	return -1;
}

/* Frees the strings of SV and zeroes it. */
void
conf_server_free(struct conf_server *sv)
{
	free(sv->text);
	free(sv->host);
	free(sv->path);
	memset(sv, 0, sizeof(*sv));
}

/* [r:]host[:port[:priority]], [r:][ipv6][:port[:priority]], bare IPv6, or a
 * unix socket path starting with '/' or '.'. */
int
conf_parse_server(const char *s, unsigned defport, bool allow_rspamd,
    struct conf_server *sv, char *err, size_t errlen)
{
	struct conf_server n;
	const char *p = s, *hs, *he, *rest;
	unsigned char buf[16];
	char tmp[INET6_ADDRSTRLEN + 1];

	memset(&n, 0, sizeof(n));
	if (strncmp(p, "r:", 2) == 0) {
		if (!allow_rspamd) {
			snprintf(err, errlen, "'%.64s': the 'r:' prefix is only "
			    "meaningful in spamd.servers", s);
			return -1;
		}
		n.is_rspamd = true;
		p += 2;
	}
	if (*p == '/' || *p == '.') {
		if (strlen(p) > 107) {
			snprintf(err, errlen, "unix socket path too long in "
			    "'%.64s' (at most 107 bytes)", s);
			return -1;
		}
		n.path = xstrdup(p);
		n.text = xstrdup(s);
		*sv = n;
		return 0;
	}
	if (*p == '[') {
		hs = p + 1;
		if ((he = strchr(hs, ']')) == NULL)
			goto bad;
		rest = he + 1;
		if ((size_t)(he - hs) >= sizeof(tmp))
			goto bad;
		memcpy(tmp, hs, (size_t)(he - hs));
		tmp[he - hs] = '\0';
		if (inet_pton(AF_INET6, tmp, buf) != 1)
			goto bad;
	} else if (strchr(p, ':') != strrchr(p, ':') &&
	    inet_pton(AF_INET6, p, buf) == 1) {
		hs = p;
		he = p + strlen(p);
		rest = he;
	} else {
		hs = p;
		he = p + strcspn(p, ":");
		rest = he;
		if (!conf_is_hostname(hs, (size_t)(he - hs)))
			goto bad;
	}
	n.port = defport;
	if (*rest == ':') {
		const char *ps = rest + 1, *pe = ps + strcspn(ps, ":");

		if (conf_parse_port(ps, (size_t)(pe - ps), &n.port) < 0) {
			snprintf(err, errlen, "bad port in '%.64s' (1..65535)", s);
			return -1;
		}
		if (*pe == ':') {
			char *end;
			unsigned long v;

			pe++;
			v = (*pe >= '0' && *pe <= '9') ? strtoul(pe, &end, 10) :
			    ULONG_MAX;
			if (v > 65535 || *end != '\0') {
				snprintf(err, errlen, "bad priority in '%.64s' "
				    "(0..65535)", s);
				return -1;
			}
			n.priority = (unsigned)v;
		}
	} else if (*rest != '\0')
		goto bad;
	else if (n.is_rspamd && defport == CONF_PORT_SPAMD)
		n.port = CONF_PORT_RSPAMD;
	n.host = xstrndup(hs, (size_t)(he - hs));
	n.text = xstrdup(s);
	*sv = n;
	return 0;
bad:
	snprintf(err, errlen, "expected a server like host, host:port, "
	    "host:port:priority, [ipv6]:port or /path/to/socket; got '%.64s'",
	    s);
	return -1;
}

/* Case-insensitive Levenshtein distance; 100 if a name is over 64 bytes. */
unsigned
conf_edit_distance(const char *a, const char *b)
{
	unsigned row[65], i, j, la = (unsigned)strlen(a),
	    lb = (unsigned)strlen(b);

	if (la > 64 || lb > 64)
		return 100;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		unsigned diag = row[0], up;

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			unsigned best;

			up = row[j];
			best = diag + (tolower((unsigned char)a[i - 1]) !=
			    tolower((unsigned char)b[j - 1]));
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

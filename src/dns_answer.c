/* dns_answer.c -- raw DNS reply -> struct dns_answer (sans-IO).
 *
 * The c-ares parsers (ares_parse_*_reply) do the byte work and check every
 * length; this file maps their results and statuses onto DNS_OK / NXDOMAIN
 * / NODATA / TEMPFAIL, joins the strings of one TXT record, and caps what
 * it keeps (DNS_ANSWER_MAX_RR records, DNS_ANSWER_MAX_TEXT bytes each). */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netdb.h>

#include <ares.h>

#include "dns_answer.h"
#include "xmalloc.h"

const char *
dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_TEMPFAIL:
		return "tempfail";
	}
	return "?";
}

const char *
dns_type_name(int type)
{
	switch (type) {
	case DNS_T_A:
		return "A";
	case DNS_T_AAAA:
		return "AAAA";
	case DNS_T_TXT:
		return "TXT";
	case DNS_T_MX:
		return "MX";
	case DNS_T_PTR:
		return "PTR";
	}
	return "?";
}

static void
answer_fail(struct dns_answer *a, enum dns_status st, const char *why)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->rr[i].text);
	free(a->rr);
	a->rr = NULL;
	a->n = 0;
	a->status = st;
	snprintf(a->why, sizeof(a->why), "%s", why);
}

static struct dns_rr *
answer_add(struct dns_answer *a)
{
	if (a->n >= DNS_ANSWER_MAX_RR)
		return NULL;
	a->rr = xrealloc(a->rr, (a->n + 1) * sizeof(*a->rr));
	memset(&a->rr[a->n], 0, sizeof(a->rr[a->n]));
	return &a->rr[a->n++];
}

static int
parse_a(struct dns_answer *a, const uint8_t *abuf, int alen)
{
	struct ares_addrttl at[DNS_ANSWER_MAX_RR];
	int n = DNS_ANSWER_MAX_RR, rc, i;
	struct dns_rr *r;

	rc = ares_parse_a_reply(abuf, alen, NULL, at, &n);
	if (rc != ARES_SUCCESS)
		return rc;
	for (i = 0; i < n && (r = answer_add(a)) != NULL; i++)
		memcpy(r->addr, &at[i].ipaddr, 4);
	return ARES_SUCCESS;
}

static int
parse_aaaa(struct dns_answer *a, const uint8_t *abuf, int alen)
{
	struct ares_addr6ttl at[DNS_ANSWER_MAX_RR];
	int n = DNS_ANSWER_MAX_RR, rc, i;
	struct dns_rr *r;

	rc = ares_parse_aaaa_reply(abuf, alen, NULL, at, &n);
	if (rc != ARES_SUCCESS)
		return rc;
	for (i = 0; i < n && (r = answer_add(a)) != NULL; i++)
		memcpy(r->addr, &at[i].ip6addr, 16);
	return ARES_SUCCESS;
}

/* The strings of one record are joined (RFC 7208 3.3); a record is cut at
 * DNS_ANSWER_MAX_TEXT bytes. */
static int
parse_txt(struct dns_answer *a, const uint8_t *abuf, int alen)
{
	struct ares_txt_ext *txt = NULL, *t;
	struct dns_rr *r = NULL;
	size_t len = 0, add;
	int rc;

	rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (rc != ARES_SUCCESS)
		return rc;
	for (t = txt; t != NULL; t = t->next) {
		if (t->record_start || r == NULL) {
			if ((r = answer_add(a)) == NULL)
				break;
			r->text = xcalloc(1, 1);
			len = 0;
		}
		add = t->length;
		if (len + add > DNS_ANSWER_MAX_TEXT)
			add = DNS_ANSWER_MAX_TEXT - len;
		if (add == 0)
			continue;
		r->text = xrealloc(r->text, len + add + 1);
		memcpy(r->text + len, t->txt, add);
		len += add;
		r->text[len] = '\0';
	}
	ares_free_data(txt);
	return ARES_SUCCESS;
}

static int
parse_mx(struct dns_answer *a, const uint8_t *abuf, int alen)
{
	struct ares_mx_reply *mx = NULL, *m;
	struct dns_rr *r;
	int rc;

	rc = ares_parse_mx_reply(abuf, alen, &mx);
	if (rc != ARES_SUCCESS)
		return rc;
	for (m = mx; m != NULL && (r = answer_add(a)) != NULL; m = m->next)
		r->text = xstrdup(m->host != NULL ? m->host : "");
	ares_free_data(mx);
	return ARES_SUCCESS;
}

static int
parse_ptr(struct dns_answer *a, const uint8_t *abuf, int alen)
{
	static const uint8_t any[4];
	struct hostent *h = NULL;
	struct dns_rr *r;
	char **al;
	int rc;

	rc = ares_parse_ptr_reply(abuf, alen, any, sizeof(any), AF_INET, &h);
	if (rc != ARES_SUCCESS)
		return rc;
	if (h->h_name != NULL && (r = answer_add(a)) != NULL)
		r->text = xstrdup(h->h_name);
	for (al = h->h_aliases; al != NULL && *al != NULL; al++)
		if ((r = answer_add(a)) != NULL)
			r->text = xstrdup(*al);
	ares_free_hostent(h);
	return ARES_SUCCESS;
}

/* Skips the name at *OFF (labels or a compression pointer). */
static bool
reply_skip_name(const uint8_t *b, size_t len, size_t *off)
{
	unsigned char *name = NULL;
	long enclen = 0;

	if (*off >= len || ares_expand_name(b + *off, b, (int)len,
	    (char **)&name, &enclen) != ARES_SUCCESS)
		return false;
	ares_free_string(name);
	if (enclen <= 0 || (size_t)enclen > len - *off)
		return false;
	*off += (size_t)enclen;
	return true;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

long
dns_reply_ttl(const uint8_t *b, size_t len)
{
	size_t off = 12, i, rdlen;
	unsigned qd, an, ns;
	uint32_t ttl, best = UINT32_MAX;

	if (b == NULL || len < 12 || len > 65535)
		return -1;
	qd = (unsigned)b[4] << 8 | b[5];
	an = (unsigned)b[6] << 8 | b[7];
	ns = (unsigned)b[8] << 8 | b[9];
	for (i = 0; i < qd; i++) {
		if (!reply_skip_name(b, len, &off) || len - off < 4)
			return -1;
		off += 4;
	}
	/* the answers' least TTL; without answers, the authority's SOA */
	for (i = 0; i < (an > 0 ? an : ns); i++) {
		unsigned type;

		if (!reply_skip_name(b, len, &off) || len - off < 10)
			return -1;
		type = (unsigned)b[off] << 8 | b[off + 1];
		ttl = get32(b + off + 4);
		rdlen = (size_t)b[off + 8] << 8 | b[off + 9];
		off += 10;
		if (rdlen > len - off)
			return -1;
		if (an == 0 && type == 6 && rdlen >= 4) {
			/* SOA: the lesser of its TTL and its MINIMUM */
			if (get32(b + off + rdlen - 4) < ttl)
				ttl = get32(b + off + rdlen - 4);
		} else if (an == 0) {
			off += rdlen;
			continue;
		}
		if (ttl < best)
			best = ttl;
		off += rdlen;
	}
	if (best == UINT32_MAX)
		return 0;
	return best > 0x7fffffff ? 0 : (long)best;
}

void
dns_answer_parse(struct dns_answer *a, int type, int ares_status,
    const uint8_t *abuf, size_t alen)
{
	int rc;

	long ttl;

	memset(a, 0, sizeof(*a));
	a->type = type;
	ttl = abuf != NULL ? dns_reply_ttl(abuf, alen) : 0;
	switch (ares_status) {
	case ARES_SUCCESS:
		break;
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		answer_fail(a, DNS_NXDOMAIN, "");
		a->ttl = ttl > 0 ? (uint32_t)ttl : 0;
		return;
	case ARES_ENODATA:
		answer_fail(a, DNS_NODATA, "");
		a->ttl = ttl > 0 ? (uint32_t)ttl : 0;
		return;
	default:
		answer_fail(a, DNS_TEMPFAIL, ares_strerror(ares_status));
		return;
	}
	if (abuf == NULL || alen == 0 || alen > 65535) {
		answer_fail(a, DNS_TEMPFAIL, "empty reply");
		return;
	}
	switch (type) {
	case DNS_T_A:
		rc = parse_a(a, abuf, (int)alen);
		break;
	case DNS_T_AAAA:
		rc = parse_aaaa(a, abuf, (int)alen);
		break;
	case DNS_T_TXT:
		rc = parse_txt(a, abuf, (int)alen);
		break;
	case DNS_T_MX:
		rc = parse_mx(a, abuf, (int)alen);
		break;
	case DNS_T_PTR:
		rc = parse_ptr(a, abuf, (int)alen);
		break;
	default:
		answer_fail(a, DNS_TEMPFAIL, "unsupported type");
		return;
	}
	if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && a->n == 0))
		answer_fail(a, DNS_NODATA, "");
	else if (rc == ARES_ENOTFOUND)
		answer_fail(a, DNS_NXDOMAIN, "");
	else if (rc != ARES_SUCCESS)
		answer_fail(a, DNS_TEMPFAIL, ares_strerror(rc));
	else
		a->status = DNS_OK;
	if (a->status != DNS_TEMPFAIL)
		a->ttl = ttl > 0 ? (uint32_t)ttl : 0;
}

void
dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src)
{
	size_t i;

	*dst = *src;
	dst->rr = NULL;
	if (src->n == 0)
		return;
	dst->rr = xcalloc(src->n, sizeof(*dst->rr));
	for (i = 0; i < src->n; i++) {
		dst->rr[i] = src->rr[i];
		if (src->rr[i].text != NULL)
			dst->rr[i].text = xstrdup(src->rr[i].text);
	}
}

void
dns_answer_free(struct dns_answer *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++)
		free(a->rr[i].text);
	free(a->rr);
	a->rr = NULL;
	a->n = 0;
}

/* test_spf.c -- the spf module's DNS parts without a network:
 *  - dns/: dns_answer_parse on replies built here (TXT chunks joined, MX,
 *    A, AAAA, PTR, NODATA) and on bad input (empty, truncated, garbage,
 *    a reply of another type, every c-ares status);
 *  - layer/: libspf2 over the layer of spf_dns.c, answered round by round
 *    from a table (as the module does with c-ares): pass, fail, softfail,
 *    neutral, none, NXDOMAIN, include chains (rounds counted), redirect, a,
 *    mx, exists, exp=, permerror (two records, bad syntax, include of a
 *    domain without SPF), temperror (a server failure), loopback, and the
 *    SPF type never asked; with prefetch, an include chain in 2 rounds;
 *  - client/: dns_client against a fake UDP DNS server in this process (on
 *    127.0.0.1, same event loop): an answer, a server that never answers
 *    (timeout -> TEMPFAIL), cancel before the answer (callback never runs),
 *    freeing the client with queries in flight, and the answer cache (a
 *    hit never asks the server, a TEMPFAIL is not kept; TTLs from replies). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <ares.h>
#include <event2/event.h>
#include <spf2/spf.h>

#include "dns_answer.h"
#include "dns_client.h"
#include "spf_dns.h"
#include "tt.h"

/* ---- a DNS reply builder --------------------------------------------------------- */

struct pkt {
	uint8_t b[4096];
	size_t n;
	size_t ancount_at;
	unsigned an;
};

static void
put8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (uint8_t)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void
put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

static void
put_name(struct pkt *p, const char *name)
{
	const char *s = name, *dot;

	while (*s != '\0') {
		size_t l;

		dot = strchr(s, '.');
		l = dot ? (size_t)(dot - s) : strlen(s);
		put8(p, (unsigned)l);
		memcpy(p->b + p->n, s, l);
		p->n += l;
		s += l;
		if (*s == '.')
			s++;
	}
	put8(p, 0);
}

/* Header + question; RCODE in the flags. */
static void
pkt_start(struct pkt *p, uint16_t id, const char *qname, int qtype, int rcode)
{
	memset(p, 0, sizeof(*p));
	put16(p, id);
	put16(p, 0x8180 | (unsigned)rcode);	/* QR RD RA */
	put16(p, 1);
	p->ancount_at = p->n;
	put16(p, 0);
	put16(p, 0);
	put16(p, 0);
	put_name(p, qname);
	put16(p, (unsigned)qtype);
	put16(p, 1);
}

/* An answer RR for the question's name (compression pointer to 12). */
static void
pkt_rr(struct pkt *p, int type, const uint8_t *rdata, size_t rlen)
{
	put16(p, 0xc00c);
	put16(p, (unsigned)type);
	put16(p, 1);
	put32(p, 300);
	put16(p, (unsigned)rlen);
	memcpy(p->b + p->n, rdata, rlen);
	p->n += rlen;
	p->an++;
	p->b[p->ancount_at] = (uint8_t)(p->an >> 8);
	p->b[p->ancount_at + 1] = (uint8_t)(p->an & 0xff);
}

/* TXT rdata from "chunk|chunk" */
static void
pkt_txt(struct pkt *p, const char *chunks)
{
	uint8_t rd[1024];
	size_t n = 0;
	const char *s = chunks;

	for (;;) {
		const char *e = strchr(s, '|');
		size_t l = e ? (size_t)(e - s) : strlen(s);

		rd[n++] = (uint8_t)l;
		memcpy(rd + n, s, l);
		n += l;
		if (e == NULL)
			break;
		s = e + 1;
	}
	pkt_rr(p, DNS_T_TXT, rd, n);
}

static void
pkt_name_rr(struct pkt *p, int type, unsigned pref, const char *name)
{
	struct pkt tmp;

	memset(&tmp, 0, sizeof(tmp));
	if (type == DNS_T_MX)
		put16(&tmp, pref);
	put_name(&tmp, name);
	pkt_rr(p, type, tmp.b, tmp.n);
}

/* ---- dns/: the answer parser --------------------------------------------------------- */

static void
test_parse_txt(void)
{
	struct pkt p;
	struct dns_answer a;

	pkt_start(&p, 1, "test.example", DNS_T_TXT, 0);
	pkt_txt(&p, "v=spf1 ip4:192.0.2.0/24 |-all");
	pkt_txt(&p, "other record");
	dns_answer_parse(&a, DNS_T_TXT, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_OK);
	TT_CHECK_INT(a.n, ==, 2);
	if (a.n == 2) {
		TT_CHECK_STR(a.rr[0].text, "v=spf1 ip4:192.0.2.0/24 -all");
		TT_CHECK_STR(a.rr[1].text, "other record");
	}
	dns_answer_free(&a);
}

static void
test_parse_types(void)
{
	struct pkt p;
	struct dns_answer a;
	static const uint8_t v4[4] = { 192, 0, 2, 7 };
	uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	v6[15] = 1;
	pkt_start(&p, 2, "a.example", DNS_T_A, 0);
	pkt_rr(&p, DNS_T_A, v4, 4);
	dns_answer_parse(&a, DNS_T_A, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_OK);
	TT_CHECK_INT(a.n, ==, 1);
	if (a.n == 1)
		TT_CHECK(memcmp(a.rr[0].addr, v4, 4) == 0);
	dns_answer_free(&a);

	pkt_start(&p, 3, "a.example", DNS_T_AAAA, 0);
	pkt_rr(&p, DNS_T_AAAA, v6, 16);
	dns_answer_parse(&a, DNS_T_AAAA, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_OK);
	if (a.n == 1)
		TT_CHECK(memcmp(a.rr[0].addr, v6, 16) == 0);
	dns_answer_free(&a);

	pkt_start(&p, 4, "m.example", DNS_T_MX, 0);
	pkt_name_rr(&p, DNS_T_MX, 10, "mx1.m.example");
	pkt_name_rr(&p, DNS_T_MX, 20, "mx2.m.example");
	dns_answer_parse(&a, DNS_T_MX, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_OK);
	TT_CHECK_INT(a.n, ==, 2);
	if (a.n == 2) {
		TT_CHECK_STR(a.rr[0].text, "mx1.m.example");
		TT_CHECK_STR(a.rr[1].text, "mx2.m.example");
	}
	dns_answer_free(&a);

	pkt_start(&p, 5, "7.2.0.192.in-addr.arpa", DNS_T_PTR, 0);
	pkt_name_rr(&p, DNS_T_PTR, 0, "host.example");
	dns_answer_parse(&a, DNS_T_PTR, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_OK);
	if (a.n >= 1)
		TT_CHECK_STR(a.rr[0].text, "host.example");
	dns_answer_free(&a);
}

static void
test_parse_bad(void)
{
	struct pkt p;
	struct dns_answer a;
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t v4[4] = { 192, 0, 2, 7 };
	size_t cut;

	/* statuses without a reply */
	dns_answer_parse(&a, DNS_T_TXT, ARES_ENOTFOUND, NULL, 0);
	TT_CHECK_INT(a.status, ==, DNS_NXDOMAIN);
	dns_answer_parse(&a, DNS_T_TXT, ARES_ENODATA, NULL, 0);
	TT_CHECK_INT(a.status, ==, DNS_NODATA);
	dns_answer_parse(&a, DNS_T_TXT, ARES_ETIMEOUT, NULL, 0);
	TT_CHECK_INT(a.status, ==, DNS_TEMPFAIL);
	dns_answer_parse(&a, DNS_T_TXT, ARES_ESERVFAIL, NULL, 0);
	TT_CHECK_INT(a.status, ==, DNS_TEMPFAIL);
	dns_answer_parse(&a, DNS_T_TXT, ARES_EREFUSED, NULL, 0);
	TT_CHECK_INT(a.status, ==, DNS_TEMPFAIL);
	/* success but no bytes, garbage, a truncated reply */
	dns_answer_parse(&a, DNS_T_TXT, ARES_SUCCESS, NULL, 0);
	TT_CHECK_INT(a.status, ==, DNS_TEMPFAIL);
	dns_answer_parse(&a, DNS_T_TXT, ARES_SUCCESS, garbage,
	    sizeof(garbage));
	TT_CHECK_INT(a.status, ==, DNS_TEMPFAIL);
	TT_CHECK_INT(a.n, ==, 0);
	pkt_start(&p, 6, "test.example", DNS_T_TXT, 0);
	pkt_txt(&p, "v=spf1 -all");
	for (cut = 1; cut < p.n; cut++) {
		dns_answer_parse(&a, DNS_T_TXT, ARES_SUCCESS, p.b, cut);
		TT_CHECK(a.status != DNS_OK);
		dns_answer_free(&a);
	}
	/* NOERROR without answers: NODATA */
	pkt_start(&p, 7, "test.example", DNS_T_TXT, 0);
	dns_answer_parse(&a, DNS_T_TXT, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_NODATA);
	/* an A record where TXT was asked: no TXT data */
	pkt_start(&p, 8, "test.example", DNS_T_TXT, 0);
	pkt_rr(&p, DNS_T_A, v4, 4);
	dns_answer_parse(&a, DNS_T_TXT, ARES_SUCCESS, p.b, p.n);
	TT_CHECK(a.status != DNS_OK);
	dns_answer_free(&a);
	/* an A record with a 3-byte address */
	pkt_start(&p, 9, "a.example", DNS_T_A, 0);
	pkt_rr(&p, DNS_T_A, v4, 3);
	dns_answer_parse(&a, DNS_T_A, ARES_SUCCESS, p.b, p.n);
	TT_CHECK(a.status != DNS_OK);
	dns_answer_free(&a);
	/* a type the parser does not know */
	pkt_start(&p, 10, "a.example", 33, 0);
	dns_answer_parse(&a, 33, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_TEMPFAIL);
	dns_answer_free(&a);
}

static void
test_parse_caps(void)
{
	struct pkt p;
	struct dns_answer a;
	char big[256];
	int i;

	/* more records than DNS_ANSWER_MAX_RR: capped */
	pkt_start(&p, 11, "t.example", DNS_T_TXT, 0);
	for (i = 0; i < DNS_ANSWER_MAX_RR + 6; i++)
		pkt_txt(&p, "x");
	dns_answer_parse(&a, DNS_T_TXT, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_OK);
	TT_CHECK_INT(a.n, ==, DNS_ANSWER_MAX_RR);
	dns_answer_free(&a);
	/* one record of many 255-byte strings: joined */
	memset(big, 'a', 255);
	big[255] = '\0';
	pkt_start(&p, 12, "t.example", DNS_T_TXT, 0);
	{
		char chunks[1100];

		snprintf(chunks, sizeof(chunks), "%s|%s|%s|%s", big, big, big,
		    big);
		pkt_txt(&p, chunks);
	}
	dns_answer_parse(&a, DNS_T_TXT, ARES_SUCCESS, p.b, p.n);
	TT_CHECK_INT(a.status, ==, DNS_OK);
	if (a.n == 1)
		TT_CHECK_INT(strlen(a.rr[0].text), ==, 4 * 255);
	dns_answer_free(&a);
}

/* ---- layer/: libspf2 over the view, answered from a table --------------------------- */

struct zrec {
	const char *name;
	int type;
	enum dns_status st;
	const char *data;	/* TXT text | MX host | PTR name | A/AAAA address */
};

static const struct zrec zone[] = {
	{ "pass.example", DNS_T_TXT, DNS_OK, "v=spf1 ip4:192.0.2.0/24 -all" },
	{ "soft.example", DNS_T_TXT, DNS_OK, "v=spf1 ~all" },
	{ "neutral.example", DNS_T_TXT, DNS_OK, "v=spf1 ?all" },
	{ "nospf.example", DNS_T_TXT, DNS_OK, "some other text" },
	{ "nospf.example", DNS_T_A, DNS_OK, "192.0.2.99" },
	{ "two.example", DNS_T_TXT, DNS_OK, "v=spf1 -all" },
	{ "two.example", DNS_T_TXT, DNS_OK, "v=spf1 +all" },
	{ "syntax.example", DNS_T_TXT, DNS_OK, "v=spf1 ip4:192.0.2.0/99 bogus:x -all" },
	{ "inc1.example", DNS_T_TXT, DNS_OK, "v=spf1 include:inc2.example -all" },
	{ "inc2.example", DNS_T_TXT, DNS_OK, "v=spf1 include:inc3.example -all" },
	{ "inc3.example", DNS_T_TXT, DNS_OK, "v=spf1 a:relay.inc3.example -all" },
	{ "relay.inc3.example", DNS_T_A, DNS_OK, "198.51.100.7" },
	{ "incnone.example", DNS_T_TXT, DNS_OK, "v=spf1 include:nospf.example -all" },
	{ "redir.example", DNS_T_TXT, DNS_OK, "v=spf1 redirect=pass.example" },
	{ "mx.example", DNS_T_TXT, DNS_OK, "v=spf1 mx -all" },
	{ "mx.example", DNS_T_MX, DNS_OK, "mail.mx.example" },
	{ "mail.mx.example", DNS_T_A, DNS_OK, "203.0.113.5" },
	{ "exists.example", DNS_T_TXT, DNS_OK, "v=spf1 exists:%{i}.ok.exists.example -all" },
	{ "203.0.113.6.ok.exists.example", DNS_T_A, DNS_OK, "127.0.0.2" },
	{ "exp.example", DNS_T_TXT, DNS_OK, "v=spf1 -all exp=why.exp.example" },
	{ "why.exp.example", DNS_T_TXT, DNS_OK, "%{i} may not send for %{d}" },
	{ "temp.example", DNS_T_TXT, DNS_TEMPFAIL, NULL },
	{ "inctemp.example", DNS_T_TXT, DNS_OK, "v=spf1 include:temp.example -all" },
	{ "v6.example", DNS_T_TXT, DNS_OK, "v=spf1 a -all" },
	{ "v6.example", DNS_T_AAAA, DNS_OK, "2001:db8::25" },
};

static unsigned zone_asked;
static bool use_prefetch;	/* as mod_spf: answers prefetch what they name */

/* The answer of the table for NAME/TYPE (NXDOMAIN if the name is absent,
 * NODATA if only other types exist). */
static void
zone_answer(const char *name, int type, struct dns_answer *a)
{
	size_t i;
	bool known = false;

	memset(a, 0, sizeof(*a));
	a->type = type;
	zone_asked++;
	for (i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
		const struct zrec *z = &zone[i];

		if (strcmp(z->name, name) != 0)
			continue;
		known = true;
		if (z->type != type)
			continue;
		if (z->st != DNS_OK) {
			a->status = z->st;
			return;
		}
		a->rr = realloc(a->rr, (a->n + 1) * sizeof(*a->rr));
		memset(&a->rr[a->n], 0, sizeof(a->rr[a->n]));
		if (type == DNS_T_A)
			inet_pton(AF_INET, z->data, a->rr[a->n].addr);
		else if (type == DNS_T_AAAA)
			inet_pton(AF_INET6, z->data, a->rr[a->n].addr);
		else
			a->rr[a->n].text = strdup(z->data);
		a->n++;
	}
	a->status = a->n > 0 ? DNS_OK : known ? DNS_NODATA : DNS_NXDOMAIN;
}

struct check_out {
	SPF_result_t result;
	SPF_errcode_t err;
	unsigned rounds;
	char exp[256];
	bool type99;
};

/* What mod_spf does, with the table as the resolver. */
static void
check(const char *ip, const char *from, const char *helo,
    struct check_out *out)
{
	struct spf_view vw;
	SPF_server_t *srv;
	SPF_dns_server_t *layer;
	SPF_request_t *req;
	SPF_response_t *resp = NULL;
	size_t i;

	memset(out, 0, sizeof(*out));
	spf_view_init(&vw);
	layer = spf_dns_layer_new(&vw);
	srv = SPF_server_new_dns(layer, 0);
	SPF_server_set_rec_dom(srv, "mx.test");
	req = SPF_request_new(srv);
	if (strchr(ip, ':'))
		SPF_request_set_ipv6_str(req, ip);
	else
		SPF_request_set_ipv4_str(req, ip);
	SPF_request_set_helo_dom(req, helo);
	SPF_request_set_env_from(req, from);
	for (;;) {
		if (resp != NULL)
			SPF_response_free(resp);
		resp = NULL;
		out->err = SPF_request_query_mailfrom(req, &resp);
		out->rounds++;
		if (vw.wanted == 0 || out->rounds > 30)
			break;
		for (i = 0; i < vw.n; i++) {
			struct dns_answer a;

			if (vw.v[i].answered)
				continue;
			if (vw.v[i].type == 99)
				out->type99 = true;
			vw.v[i].asked = true;
			vw.wanted--;
			zone_answer(vw.v[i].name, vw.v[i].type, &a);
			spf_view_answer(&vw, vw.v[i].name, vw.v[i].type, &a);
			if (use_prefetch) {
				char owner[300];

				snprintf(owner, sizeof(owner), "%s",
				    vw.v[i].name);
				spf_dns_prefetch(&vw, owner, vw.v[i].type, &a,
				    strchr(ip, ':') ? AF_INET6 : AF_INET);
			}
			dns_answer_free(&a);
		}
	}
	out->result = SPF_response_result(resp);
	if (SPF_response_get_explanation(resp) != NULL)
		snprintf(out->exp, sizeof(out->exp), "%s",
		    SPF_response_get_explanation(resp));
	SPF_response_free(resp);
	SPF_request_free(req);
	SPF_server_free(srv);
	spf_dns_layer_free(layer);
	spf_view_free(&vw);
}

static void
test_layer_results(void)
{
	struct check_out o;

	check("192.0.2.1", "a@pass.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	TT_CHECK_INT(o.rounds, ==, 2);
	check("203.0.113.9", "a@pass.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_FAIL);
	check("203.0.113.9", "a@soft.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_SOFTFAIL);
	check("203.0.113.9", "a@neutral.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_NEUTRAL);
	/* no SPF record, or no such domain: no result, NOT_SPF (mod_spf: none) */
	check("203.0.113.9", "a@nospf.example", "h.example", &o);
	TT_CHECK(o.result == SPF_RESULT_NONE || o.result == SPF_RESULT_INVALID);
	TT_CHECK_INT(o.err, ==, SPF_E_NOT_SPF);
	check("203.0.113.9", "a@missing.example", "h.example", &o);
	TT_CHECK(o.result == SPF_RESULT_NONE || o.result == SPF_RESULT_INVALID);
	TT_CHECK_INT(o.err, ==, SPF_E_NOT_SPF);
	/* the null sender: the HELO name is checked */
	check("192.0.2.1", "", "pass.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	/* the SPF RR type (99) is never asked */
	TT_CHECK(!o.type99);
	/* loopback: libspf2's free pass, without any lookup */
	zone_asked = 0;
	check("127.0.0.1", "a@soft.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	TT_CHECK_INT(zone_asked, ==, 0);
}

static void
test_layer_mechanisms(void)
{
	struct check_out o;

	/* include chain of three: one round per record, one for the A */
	check("198.51.100.7", "a@inc1.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	TT_CHECK_INT(o.rounds, ==, 5);
	check("203.0.113.9", "a@inc1.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_FAIL);
	check("192.0.2.3", "a@redir.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	check("203.0.113.5", "a@mx.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	check("203.0.113.6", "a@mx.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_FAIL);
	check("203.0.113.6", "a@exists.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	check("203.0.113.7", "a@exists.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_FAIL);
	check("2001:db8::25", "a@v6.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	check("2001:db8::26", "a@v6.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_FAIL);
	/* exp=: the domain's explanation, macros expanded */
	check("203.0.113.9", "a@exp.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_FAIL);
	TT_CHECK_STR(o.exp, "203.0.113.9 may not send for exp.example");
}

/* Prefetch: the names an answer will lead to are asked with it, so a
 * chain of includes costs two evaluations instead of one per level; the
 * results do not change. */
static void
test_layer_prefetch(void)
{
	struct check_out o;
	struct spf_view vw;
	struct dns_answer a;

	use_prefetch = true;
	check("198.51.100.7", "a@inc1.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	TT_CHECK_INT(o.rounds, ==, 2);
	check("203.0.113.9", "a@inc1.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_FAIL);
	check("203.0.113.5", "a@mx.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	TT_CHECK_INT(o.rounds, ==, 2);
	check("2001:db8::25", "a@v6.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	check("203.0.113.6", "a@exists.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PASS);
	use_prefetch = false;

	/* what a record names: no macros, cidr cut, qualifiers skipped */
	spf_view_init(&vw);
	memset(&a, 0, sizeof(a));
	a.status = DNS_OK;
	a.n = 1;
	a.rr = calloc(1, sizeof(*a.rr));
	a.rr[0].text = strdup("v=spf1 a mx/24 -a:h.x.example/28 "
	    "?include:i.example redirect=r.example exists:%{i}.e.example "
	    "include:%{d}.m.example ptr ip4:192.0.2.1 ~all");
	TT_CHECK_INT(spf_dns_prefetch(&vw, "own.example", DNS_T_TXT, &a,
	    AF_INET), ==, 5);
	TT_CHECK(spf_view_find(&vw, "own.example", DNS_T_A) != NULL);
	TT_CHECK(spf_view_find(&vw, "own.example", DNS_T_MX) != NULL);
	TT_CHECK(spf_view_find(&vw, "h.x.example", DNS_T_A) != NULL);
	TT_CHECK(spf_view_find(&vw, "i.example", DNS_T_TXT) != NULL);
	TT_CHECK(spf_view_find(&vw, "r.example", DNS_T_TXT) != NULL);
	TT_CHECK_INT(vw.wanted, ==, 5);
	/* again: nothing new */
	TT_CHECK_INT(spf_dns_prefetch(&vw, "own.example", DNS_T_TXT, &a,
	    AF_INET), ==, 0);
	/* not an SPF record: nothing */
	free(a.rr[0].text);
	a.rr[0].text = strdup("v=spf10 include:no.example");
	TT_CHECK_INT(spf_dns_prefetch(&vw, "own.example", DNS_T_TXT, &a,
	    AF_INET), ==, 0);
	dns_answer_free(&a);
	spf_view_free(&vw);
}

static void
test_layer_errors(void)
{
	struct check_out o;

	check("192.0.2.1", "a@two.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PERMERROR);
	check("192.0.2.1", "a@incnone.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_PERMERROR);
	/* a record that does not compile: NOT_SPF with a compile error
	 * among the messages (mod_spf: permerror) */
	check("192.0.2.1", "a@syntax.example", "h.example", &o);
	TT_CHECK(o.result == SPF_RESULT_PERMERROR ||
	    o.err == SPF_E_NOT_SPF);
	/* a server failure: temperror, at the top and inside an include */
	check("192.0.2.1", "a@temp.example", "h.example", &o);
	TT_CHECK_INT(o.err, ==, SPF_E_DNS_ERROR);
	check("192.0.2.1", "a@inctemp.example", "h.example", &o);
	TT_CHECK_INT(o.result, ==, SPF_RESULT_TEMPERROR);
}

static void
test_layer_names(void)
{
	char out[300];
	char longlabel[80];

	TT_CHECK(spf_dns_name_ok("Mail.Example.", out, sizeof(out)));
	TT_CHECK_STR(out, "mail.example");
	TT_CHECK(!spf_dns_name_ok("", out, sizeof(out)));
	TT_CHECK(!spf_dns_name_ok(".", out, sizeof(out)));
	TT_CHECK(!spf_dns_name_ok("a..b", out, sizeof(out)));
	TT_CHECK(!spf_dns_name_ok("a b.example", out, sizeof(out)));
	memset(longlabel, 'x', 64);
	longlabel[64] = '\0';
	TT_CHECK(!spf_dns_name_ok(longlabel, out, sizeof(out)));
	longlabel[63] = '\0';
	TT_CHECK(spf_dns_name_ok(longlabel, out, sizeof(out)));
}

/* ---- client/: dns_client against a fake server in this process ----------------------- */

static struct event_base *base;
static int srv_fd = -1;
static struct event *srv_ev;
static int srv_port;
static bool srv_silent;		/* receive but never answer */
static unsigned srv_got;

static void
srv_on_read(evutil_socket_t fd, short what, void *arg)
{
	uint8_t q[512];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from,
	    &fl);
	struct pkt p;
	size_t qend;

	if (n < 17)
		return;
	srv_got++;
	if (srv_silent)
		return;
	/* echo the question (ends 4 bytes after its name), add a TXT */
	for (qend = 12; qend < (size_t)n && q[qend] != 0; qend += q[qend] + 1)
		;
	qend += 5;
	if (qend > (size_t)n)
		return;
	memset(&p, 0, sizeof(p));
	memcpy(p.b, q, qend);
	p.n = qend;
	p.b[2] = 0x81;
	p.b[3] = 0x80;
	p.ancount_at = 6;
	pkt_txt(&p, "v=spf1 -all");
	sendto(fd, p.b, p.n, 0, (struct sockaddr *)&from, fl);
}

static bool
srv_start(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	srv_fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(srv_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(srv_fd, (struct sockaddr *)&sin, &sl) < 0)
		return false;
	srv_port = ntohs(sin.sin_port);
	evutil_make_socket_nonblocking(srv_fd);
	srv_ev = event_new(base, srv_fd, EV_READ | EV_PERSIST, srv_on_read,
	    NULL);
	event_add(srv_ev, NULL);
	return true;
}

static void
srv_stop(void)
{
	if (srv_ev != NULL)
		event_free(srv_ev);
	srv_ev = NULL;
	if (srv_fd >= 0)
		close(srv_fd);
	srv_fd = -1;
}

struct got {
	unsigned calls;
	struct dns_answer ans;
};

static void
on_done(void *ud, const struct dns_answer *a)
{
	struct got *g = ud;

	g->calls++;
	dns_answer_free(&g->ans);
	dns_answer_copy(&g->ans, a);
	event_base_loopbreak(base);
}

static void
run_loop(double secs)
{
	struct timeval tv = { (time_t)secs, (suseconds_t)((secs -
	    (double)(time_t)secs) * 1e6) };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static size_t client_cache;	/* cache_size of the next client */

static struct dns_client *
client_new(unsigned timeout_ms)
{
	char servers[64], err[256];
	struct dns_client *c;

	snprintf(servers, sizeof(servers), "127.0.0.1:%d", srv_port);
	c = dns_client_new(base, servers, timeout_ms, 1, client_cache, err,
	    sizeof(err));
	if (c == NULL)
		fprintf(stderr, "  dns_client_new: %s\n", err);
	return c;
}

static void
test_client_answer(void)
{
	struct dns_client *c;
	struct got g;

	memset(&g, 0, sizeof(g));
	base = event_base_new();
	TT_CHECK(srv_start());
	srv_silent = false;
	if ((c = client_new(1000)) != NULL) {
		dns_query(c, "test.example", DNS_T_TXT, on_done, &g);
		TT_CHECK_INT(g.calls, ==, 0);	/* never inside dns_query */
		run_loop(5);
		TT_CHECK_INT(g.calls, ==, 1);
		TT_CHECK_INT(g.ans.status, ==, DNS_OK);
		if (g.ans.n == 1)
			TT_CHECK_STR(g.ans.rr[0].text, "v=spf1 -all");
		TT_CHECK_INT(dns_client_inflight(c), ==, 0);
		dns_client_free(c);
	}
	dns_answer_free(&g.ans);
	srv_stop();
	event_base_free(base);
}

static void
test_client_timeout(void)
{
	struct dns_client *c;
	struct got g;
	struct timeval t0, t1;
	double ms;

	memset(&g, 0, sizeof(g));
	base = event_base_new();
	TT_CHECK(srv_start());
	srv_silent = true;
	srv_got = 0;
	if ((c = client_new(200)) != NULL) {
		gettimeofday(&t0, NULL);
		dns_query(c, "slow.example", DNS_T_TXT, on_done, &g);
		run_loop(5);
		gettimeofday(&t1, NULL);
		ms = (double)(t1.tv_sec - t0.tv_sec) * 1000.0 +
		    (double)(t1.tv_usec - t0.tv_usec) / 1000.0;
		TT_CHECK_INT(g.calls, ==, 1);
		TT_CHECK_INT(g.ans.status, ==, DNS_TEMPFAIL);
		TT_CHECK(srv_got >= 1);
		TT_CHECK(ms >= 150 && ms < 3000);
		dns_client_free(c);
	}
	dns_answer_free(&g.ans);
	srv_stop();
	event_base_free(base);
}

static void
test_client_cancel(void)
{
	struct dns_client *c;
	struct got g, g2;
	struct dns_query *q;

	memset(&g, 0, sizeof(g));
	memset(&g2, 0, sizeof(g2));
	base = event_base_new();
	TT_CHECK(srv_start());
	srv_silent = false;
	if ((c = client_new(1000)) != NULL) {
		/* cancelled at once: never called, even though answered */
		q = dns_query(c, "one.example", DNS_T_TXT, on_done, &g);
		dns_query_cancel(q);
		dns_query(c, "two.example", DNS_T_TXT, on_done, &g2);
		run_loop(5);
		TT_CHECK_INT(g.calls, ==, 0);
		TT_CHECK_INT(g2.calls, ==, 1);
		/* freed with a query in flight (the server stays silent) */
		srv_silent = true;
		dns_query(c, "three.example", DNS_T_TXT, on_done, &g);
		run_loop(0.1);
		TT_CHECK_INT(dns_client_inflight(c), ==, 1);
		dns_client_free(c);
		TT_CHECK_INT(g.calls, ==, 0);
	}
	dns_answer_free(&g.ans);
	dns_answer_free(&g2.ans);
	srv_stop();
	event_base_free(base);
}

static void
on_done_count(void *ud, const struct dns_answer *a)
{
	struct got *g = ud;

	g->calls++;
	dns_answer_free(&g->ans);
	dns_answer_copy(&g->ans, a);
}

/* Queries for a name and type in flight share its one query: every one
 * gets the answer (a copy), a cancelled one is never called, and a
 * cancelled leader still answers its followers.  No cache involved. */
static void
test_client_shared(void)
{
	struct dns_client *c;
	struct got g[4];
	struct dns_query *q[4];
	unsigned long hits, misses;
	size_t cached;
	int i;

	memset(g, 0, sizeof(g));
	base = event_base_new();
	TT_CHECK(srv_start());
	srv_silent = false;
	srv_got = 0;
	client_cache = 0;
	if ((c = client_new(1000)) != NULL) {
		for (i = 0; i < 4; i++)
			q[i] = dns_query(c, i == 3 ? "Shared.Example." :
			    "shared.example", DNS_T_TXT, on_done_count, &g[i]);
		dns_query_cancel(q[0]);		/* the leader */
		dns_query_cancel(q[2]);		/* a follower */
		TT_CHECK_INT(dns_client_inflight(c), ==, 1);
		run_loop(0.5);
		TT_CHECK_INT(srv_got, ==, 1);
		TT_CHECK_INT(g[0].calls, ==, 0);
		TT_CHECK_INT(g[2].calls, ==, 0);
		for (i = 1; i < 4; i += 2) {
			TT_CHECK_INT(g[i].calls, ==, 1);
			TT_CHECK_INT(g[i].ans.status, ==, DNS_OK);
			if (g[i].ans.n == 1)
				TT_CHECK_STR(g[i].ans.rr[0].text,
				    "v=spf1 -all");
		}
		dns_client_stats(c, &hits, &misses, &cached);
		TT_CHECK_INT(misses, ==, 1);
		TT_CHECK_INT(hits, ==, 3);
		/* the next one is sent again (no cache) */
		dns_query(c, "shared.example", DNS_T_TXT, on_done_count, &g[1]);
		run_loop(0.5);
		TT_CHECK_INT(srv_got, ==, 2);
		TT_CHECK_INT(g[1].calls, ==, 2);
		/* freed with a leader and followers in flight */
		srv_silent = true;
		dns_query(c, "lost.example", DNS_T_TXT, on_done_count, &g[0]);
		dns_query(c, "lost.example", DNS_T_TXT, on_done_count, &g[2]);
		run_loop(0.1);
		dns_client_free(c);
		TT_CHECK_INT(g[0].calls + g[2].calls, ==, 0);
	}
	for (i = 0; i < 4; i++)
		dns_answer_free(&g[i].ans);
	srv_stop();
	event_base_free(base);
}

/* The cache: a second query is answered without the server, from the
 * loop; a TEMPFAIL is not kept; TTLs are read from the reply. */
static void
test_client_cache(void)
{
	struct dns_client *c;
	struct got g;
	struct pkt p;
	unsigned long hits, misses;
	size_t cached;
	static const uint8_t soa[] = { 1, 'a', 0, 1, 'b', 0, 0, 0, 0, 1,
	    0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 42 };

	/* TTLs: the answers' least; without answers the SOA's minimum */
	pkt_start(&p, 1, "t.example", DNS_T_TXT, 0);
	pkt_txt(&p, "x");
	TT_CHECK_INT(dns_reply_ttl(p.b, p.n), ==, 300);
	TT_CHECK_INT(dns_reply_ttl(p.b, p.n - 1), ==, -1);
	pkt_start(&p, 2, "t.example", DNS_T_TXT, 3);
	TT_CHECK_INT(dns_reply_ttl(p.b, p.n), ==, 0);
	p.b[9] = 1;	/* one authority record: an SOA, MINIMUM 42 */
	put16(&p, 0xc00c);
	put16(&p, 6);
	put16(&p, 1);
	put32(&p, 3600);
	put16(&p, sizeof(soa));
	memcpy(p.b + p.n, soa, sizeof(soa));
	p.n += sizeof(soa);
	TT_CHECK_INT(dns_reply_ttl(p.b, p.n), ==, 42);

	memset(&g, 0, sizeof(g));
	base = event_base_new();
	TT_CHECK(srv_start());
	srv_silent = false;
	srv_got = 0;
	client_cache = 16;
	if ((c = client_new(300)) != NULL) {
		dns_query(c, "cached.example", DNS_T_TXT, on_done, &g);
		run_loop(5);
		TT_CHECK_INT(g.calls, ==, 1);
		TT_CHECK_INT(srv_got, ==, 1);
		dns_query(c, "Cached.Example.", DNS_T_TXT, on_done, &g);
		TT_CHECK_INT(g.calls, ==, 1);	/* never inside dns_query */
		run_loop(5);
		TT_CHECK_INT(g.calls, ==, 2);
		TT_CHECK_INT(srv_got, ==, 1);	/* from the cache */
		TT_CHECK_INT(g.ans.status, ==, DNS_OK);
		if (g.ans.n == 1)
			TT_CHECK_STR(g.ans.rr[0].text, "v=spf1 -all");
		/* another type is another entry */
		dns_query(c, "cached.example", DNS_T_MX, on_done, &g);
		run_loop(5);
		TT_CHECK_INT(srv_got, ==, 2);
		/* a timeout is not kept */
		srv_silent = true;
		dns_query(c, "lost.example", DNS_T_TXT, on_done, &g);
		run_loop(5);
		TT_CHECK_INT(g.ans.status, ==, DNS_TEMPFAIL);
		srv_silent = false;
		dns_query(c, "lost.example", DNS_T_TXT, on_done, &g);
		run_loop(5);
		TT_CHECK_INT(g.ans.status, ==, DNS_OK);
		dns_client_stats(c, &hits, &misses, &cached);
		TT_CHECK_INT(hits, ==, 1);
		TT_CHECK_INT(misses, ==, 4);
		TT_CHECK_INT(cached, ==, 3);
		dns_client_free(c);
	}
	client_cache = 0;
	dns_answer_free(&g.ans);
	srv_stop();
	event_base_free(base);
}

TT_MAIN(
	{ "dns/parse_txt", test_parse_txt },
	{ "dns/parse_types", test_parse_types },
	{ "dns/parse_bad", test_parse_bad },
	{ "dns/parse_caps", test_parse_caps },
	{ "layer/results", test_layer_results },
	{ "layer/mechanisms", test_layer_mechanisms },
	{ "layer/errors", test_layer_errors },
	{ "layer/prefetch", test_layer_prefetch },
	{ "layer/names", test_layer_names },
	{ "client/answer", test_client_answer },
	{ "client/timeout", test_client_timeout },
	{ "client/cancel", test_client_cancel },
	{ "client/cache", test_client_cache },
	{ "client/shared", test_client_shared },
)

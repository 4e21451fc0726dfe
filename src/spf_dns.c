/* spf_dns.c -- the libspf2 DNS layer of the spf module: answers from the
 * check's view of DNS answers, notes what it lacks (see spf_dns.h). */
#include <ctype.h>
#include <netdb.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf_dns.h>
#include <spf2/spf_dns_rr.h>

#include "spf_dns.h"
#include "xmalloc.h"

void
spf_view_init(struct spf_view *vw)
{
	memset(vw, 0, sizeof(*vw));
}

void
spf_view_free(struct spf_view *vw)
{
	size_t i;

	for (i = 0; i < vw->n; i++) {
		free(vw->v[i].name);
		dns_answer_free(&vw->v[i].ans);
	}
	free(vw->v);
	memset(vw, 0, sizeof(*vw));
}

bool
spf_dns_name_ok(const char *name, char *out, size_t outlen)
{
	size_t len, i, label = 0;

	if (name == NULL)
		return false;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_VIEW_MAX_NAME || len >= outlen)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (ch <= ' ' || ch >= 0x7f || ++label > 63) {
			return false;
		}
		out[i] = (char)tolower(ch);
	}
	out[len] = '\0';
	return true;
}

struct spf_view_entry *
spf_view_find(struct spf_view *vw, const char *name, int type)
{
	size_t i;

	for (i = 0; i < vw->n; i++)
		if (vw->v[i].type == type && strcmp(vw->v[i].name, name) == 0)
			return &vw->v[i];
	return NULL;
}

static struct spf_view_entry *
view_add(struct spf_view *vw, const char *name, int type)
{
	struct spf_view_entry *e;

	if (vw->n >= SPF_VIEW_MAX_NAMES) {
		vw->full = true;
		return NULL;
	}
	vw->v = xrealloc(vw->v, (vw->n + 1) * sizeof(*vw->v));
	e = &vw->v[vw->n++];
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(name);
	e->type = type;
	return e;
}

void
spf_view_answer(struct spf_view *vw, const char *name, int type,
    const struct dns_answer *ans)
{
	struct spf_view_entry *e = spf_view_find(vw, name, type);

	if (e == NULL && (e = view_add(vw, name, type)) == NULL)
		return;
	if (!e->answered && !e->asked && vw->wanted > 0)
		vw->wanted--;
	dns_answer_free(&e->ans);
	dns_answer_copy(&e->ans, ans);
	e->answered = true;
}

bool
spf_view_want(struct spf_view *vw, const char *name, int type)
{
	char n[SPF_VIEW_MAX_NAME + 2];

	if (!spf_dns_name_ok(name, n, sizeof(n)) ||
	    spf_view_find(vw, n, type) != NULL)
		return false;
	if (view_add(vw, n, type) == NULL)
		return false;
	vw->wanted++;
	return true;
}

/* The target of a mechanism's "name" part: "x.example/24" -> x.example;
 * NULL for a macro (expanded only by libspf2, with the request). */
static bool
prefetch_target(const char *s, size_t len, char *out, size_t outlen)
{
	size_t n = len;

	if (memchr(s, '/', len) != NULL)
		n = (size_t)((const char *)memchr(s, '/', len) - s);
	if (n == 0 || n >= outlen || memchr(s, '%', n) != NULL)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

unsigned
spf_dns_prefetch(struct spf_view *vw, const char *owner, int type,
    const struct dns_answer *ans, int family)
{
	int atype = family == AF_INET6 ? DNS_T_AAAA : DNS_T_A;
	unsigned added = 0;
	size_t i;

	if (ans->status != DNS_OK || vw->n >= SPF_VIEW_MAX_NAMES / 2)
		return 0;
	if (type == DNS_T_MX) {
		for (i = 0; i < ans->n && i < SPF_PREFETCH_MX; i++)
			if (ans->rr[i].text != NULL)
				added += spf_view_want(vw, ans->rr[i].text, atype);
		return added;
	}
	if (type != DNS_T_TXT)
		return 0;
	for (i = 0; i < ans->n; i++) {
		const char *p = ans->rr[i].text, *e;
		char t[SPF_VIEW_MAX_NAME + 2];

		if (p == NULL || strncasecmp(p, "v=spf1", 6) != 0 ||
		    (p[6] != ' ' && p[6] != '\0'))
			continue;
		for (p += 6; *p != '\0'; p = e) {
			size_t len;

			while (*p == ' ')
				p++;
			for (e = p; *e != '\0' && *e != ' '; e++)
				;
			len = (size_t)(e - p);
			if (len > 0 && strchr("+-~?", *p) != NULL) {
				p++;
				len--;
			}
			if (len > 8 && strncasecmp(p, "include:", 8) == 0 &&
			    prefetch_target(p + 8, len - 8, t, sizeof(t)))
				added += spf_view_want(vw, t, DNS_T_TXT);
			else if (len > 9 && strncasecmp(p, "redirect=", 9) == 0 &&
			    prefetch_target(p + 9, len - 9, t, sizeof(t)))
				added += spf_view_want(vw, t, DNS_T_TXT);
			else if (len > 2 && strncasecmp(p, "a:", 2) == 0 &&
			    prefetch_target(p + 2, len - 2, t, sizeof(t)))
				added += spf_view_want(vw, t, atype);
			else if (len > 3 && strncasecmp(p, "mx:", 3) == 0 &&
			    prefetch_target(p + 3, len - 3, t, sizeof(t)))
				added += spf_view_want(vw, t, DNS_T_MX);
			else if ((len == 1 || (len > 1 && p[1] == '/')) &&
			    (*p == 'a' || *p == 'A'))
				added += spf_view_want(vw, owner, atype);
			else if ((len == 2 || (len > 2 && p[2] == '/')) &&
			    strncasecmp(p, "mx", 2) == 0)
				added += spf_view_want(vw, owner, DNS_T_MX);
		}
	}
	return added;
}

/* ---- the libspf2 layer ------------------------------------------------------ */

char *
spf_dns_exp_text(const char *text)
{
	size_t n = 0, i;
	char *out;

	for (i = 0; text[i] != '\0'; i++)
		n += text[i] == ' ' ? 3 : 1;
	out = xmalloc(n + 1);
	for (i = 0, n = 0; text[i] != '\0'; i++) {
		if (text[i] == ' ') {
			memcpy(out + n, "%_", 2);
			n += 2;
		} else {
			out[n++] = text[i];
		}
	}
	out[n] = '\0';
	return out;
}

static SPF_dns_rr_t *
layer_rr(SPF_dns_server_t *srv, const char *domain, ns_type type,
    SPF_dns_stat_t herrno)
{
	return SPF_dns_rr_new_init(srv, domain, type, 0, herrno);
}

/* The answer E as libspf2's record set. */
static SPF_dns_rr_t *
layer_from_answer(SPF_dns_server_t *srv, const char *domain, ns_type type,
    const struct dns_answer *a)
{
	SPF_dns_rr_t *rr;
	size_t i;
	int k = 0;

	switch (a->status) {
	case DNS_NXDOMAIN:
		return layer_rr(srv, domain, type, HOST_NOT_FOUND);
	case DNS_NODATA:
		return layer_rr(srv, domain, type, NO_DATA);
	case DNS_TEMPFAIL:
		return layer_rr(srv, domain, type, TRY_AGAIN);
	case DNS_OK:
		break;
	}
	if ((rr = layer_rr(srv, domain, type, NETDB_SUCCESS)) == NULL)
		return NULL;
	for (i = 0; i < a->n; i++) {
		const struct dns_rr *r = &a->rr[i];
		size_t len;

		switch (type) {
		case ns_t_a:
			if (SPF_dns_rr_buf_realloc(rr, k, sizeof(struct in_addr))
			    != SPF_E_SUCCESS)
				goto oom;
			memcpy(&rr->rr[k]->a, r->addr, 4);
			break;
		case ns_t_aaaa:
			if (SPF_dns_rr_buf_realloc(rr, k,
			    sizeof(struct in6_addr)) != SPF_E_SUCCESS)
				goto oom;
			memcpy(&rr->rr[k]->aaaa, r->addr, 16);
			break;
		case ns_t_txt:
			if (r->text == NULL)
				continue;
			if (strncasecmp(r->text, "v=spf1", 6) == 0) {
				len = strlen(r->text) + 1;
				if (SPF_dns_rr_buf_realloc(rr, k, len) !=
				    SPF_E_SUCCESS)
					goto oom;
				memcpy(rr->rr[k]->txt, r->text, len);
			} else {
				char *t = spf_dns_exp_text(r->text);

				len = strlen(t) + 1;
				if (SPF_dns_rr_buf_realloc(rr, k, len) !=
				    SPF_E_SUCCESS) {
					free(t);
					goto oom;
				}
				memcpy(rr->rr[k]->txt, t, len);
				free(t);
			}
			break;
		case ns_t_mx:
		case ns_t_ptr:
			if (r->text == NULL)
				continue;
			len = strlen(r->text) + 1;
			if (SPF_dns_rr_buf_realloc(rr, k, len) != SPF_E_SUCCESS)
				goto oom;
			memcpy(rr->rr[k]->txt, r->text, len);
			break;
		default:
			continue;
		}
		k++;
	}
	rr->num_rr = k;
	if (k == 0)
		rr->herrno = NO_DATA;
	return rr;
oom:
	SPF_dns_rr_free(rr);
	return NULL;
}

/* libspf2's lookup: from the view, or TRY_AGAIN with the name noted. */
static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
    int should_cache)
{
	struct spf_view *vw = srv->hook;
	struct spf_view_entry *e;
	char name[SPF_VIEW_MAX_NAME + 2];

	vw->lookups++;
	if (type == ns_t_spf)
		return layer_rr(srv, domain, type, NO_DATA);
	if (type != ns_t_a && type != ns_t_aaaa && type != ns_t_txt &&
	    type != ns_t_mx && type != ns_t_ptr)
		return layer_rr(srv, domain, type, NO_DATA);
	if (!spf_dns_name_ok(domain, name, sizeof(name)))
		return layer_rr(srv, domain, type, HOST_NOT_FOUND);
	if ((e = spf_view_find(vw, name, (int)type)) != NULL && e->answered)
		return layer_from_answer(srv, domain, type, &e->ans);
	if (e == NULL && (e = view_add(vw, name, (int)type)) != NULL)
		vw->wanted++;
	return layer_rr(srv, domain, type, TRY_AGAIN);
}

void
spf_dns_layer_free(SPF_dns_server_t *srv)
{
	free(srv);
}

SPF_dns_server_t *
spf_dns_layer_new(struct spf_view *vw)
{
	SPF_dns_server_t *srv = xcalloc(1, sizeof(*srv));

	srv->destroy = NULL;	/* ours: libspf2 1.2.10 never frees a layer
				 * given to SPF_server_new_dns() */
	srv->lookup = layer_lookup;
	srv->name = "rmilter";
	srv->hook = vw;
	return srv;
}

/* spf_dns.h -- a libspf2 DNS layer that never blocks: it answers from the
 * per-check view of DNS answers, and a name it does not have yet is noted as
 * wanted and answered TRY_AGAIN.
 *
 * The spf module evaluates, resolves the wanted names (dns_client.c, in
 * parallel), stores the answers in the view and evaluates again, until an
 * evaluation wants nothing new: its result is then the result of the
 * check.  Each round adds at least one answer, so with SPF_VIEW_MAX_NAMES
 * (and the module's round limit) the check always ends.
 *
 * The SPF type (99) is never asked: RFC 7208 dropped it, and the layer
 * answers NO_DATA so that libspf2 goes on with TXT at once. */
#ifndef RMILTER_SPF_DNS_H
#define RMILTER_SPF_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include <netinet/in.h>		/* before spf2/spf.h, which needs in_addr */
#include <spf2/spf.h>

#include "dns_answer.h"

#define SPF_VIEW_MAX_NAMES	256	/* (name, type) pairs per check */
#define SPF_VIEW_MAX_NAME	253	/* longest name asked */

struct spf_view_entry {
	char *name;		/* lowercase, no trailing dot */
	int type;
	bool answered;		/* ans is valid; else wanted */
	bool asked;		/* handed to the resolver */
	struct dns_answer ans;
};

struct spf_view {
	struct spf_view_entry *v;
	size_t n;
	size_t wanted;		/* entries not answered and not asked */
	bool full;		/* a name was refused: SPF_VIEW_MAX_NAMES */
	unsigned lookups;	/* lookups libspf2 made (all rounds) */
};

void spf_view_init(struct spf_view *vw);
void spf_view_free(struct spf_view *vw);

/* The entry of NAME/TYPE, or NULL. */
struct spf_view_entry *spf_view_find(struct spf_view *vw, const char *name,
    int type);
/* Stores a copy of ANS as the answer of NAME/TYPE (added if missing). */
void spf_view_answer(struct spf_view *vw, const char *name, int type,
    const struct dns_answer *ans);

/* Notes NAME/TYPE as wanted unless the view has it; true if added. */
bool spf_view_want(struct spf_view *vw, const char *name, int type);

#define SPF_PREFETCH_MX	10	/* MX hosts whose address is prefetched */

/* Prefetch: from the answer ANS of OWNER/TYPE, the names the evaluation
 * will want next, noted as wanted: for an SPF record its include:,
 * redirect=, a and mx targets (those without macros), for an MX answer
 * the hosts' addresses (A or AAAA after FAMILY, the client's).  Lets the
 * module ask a whole include chain while the first round still waits,
 * instead of one level per round.  Returns how many were added. */
unsigned spf_dns_prefetch(struct spf_view *vw, const char *owner, int type,
    const struct dns_answer *ans, int family);

/* A libspf2 DNS layer over VW (VW must outlive it), for
 * SPF_server_new_dns().  Freed with spf_dns_layer_free() after
 * SPF_server_free() (it has no destroy hook, so libspf2 never frees it). */
SPF_dns_server_t *spf_dns_layer_new(struct spf_view *vw);
void spf_dns_layer_free(SPF_dns_server_t *srv);

/* TEXT with every space written "%_" (malloc'd).  libspf2 1.2.10 mangles
 * the literal spaces RFC 7208 allows in explanations (exp= records and the
 * configured default); the macro for a space is expanded correctly. */
char *spf_dns_exp_text(const char *text);

/* Normalises NAME into OUT (lowercase, trailing dot removed); false if it
 * cannot be a DNS name (empty, too long, empty or overlong label). */
bool spf_dns_name_ok(const char *name, char *out, size_t outlen);

#endif

/* milter_edit.c -- a session's macro tables and the end-of-message edits
 * (add/insert/change headers, envelope changes, body replacement,
 * quarantine), checked against the actions negotiated with the MTA. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "milter_session.h"
#include "milter_session_internal.h"
#include "xmalloc.h"

/* Macros are kept as the D payload itself (name\0value\0 pairs), one
 * buffer per stage slot: no per-macro allocation, lookups scan the pairs. */
static int
macro_slot(uint8_t stage)
{
	switch (stage) {
	case SMFIC_CONNECT: return MSLOT_CONNECT;
	case SMFIC_HELO: return MSLOT_HELO;
	case SMFIC_MAIL: return MSLOT_MAIL;
	case SMFIC_RCPT: return MSLOT_RCPT;
	case SMFIC_DATA: return MSLOT_DATA;
	case SMFIC_HEADER:
	case SMFIC_EOH: return MSLOT_EOH;
	case SMFIC_BODY:
	case SMFIC_BODYEOB: return MSLOT_EOM;
	case SMFIC_UNKNOWN: return MSLOT_UNKNOWN;
	default: return -1;
	}
}

void
session_macros_clear(struct milter_session *s, int from)
{
	int i;

	for (i = from; i < MSLOT_COUNT; i++)
		s->macros[i].len = 0;
}

void
session_macros_free(struct milter_session *s)
{
	int i;

	for (i = 0; i < MSLOT_COUNT; i++) {
		free(s->macros[i].raw);
		s->macros[i].raw = NULL;
		s->macros[i].len = s->macros[i].cap = 0;
	}
}

int
session_store_macros(struct milter_session *s, const struct milter_frame *f)
{
	struct milter_macro_iter it;
	struct milter_macro_table *t;
	const char *err, *name, *value;
	const uint8_t *good;
	uint8_t stage;
	size_t len;
	int slot, rc;

	if (milter_decode_macro(f, &stage, &it, &err) < 0)
		return -1;
	if ((slot = macro_slot(stage)) < 0)
		return 0;	/* unknown stage: ignored, like libmilter */
	/* a new stage's macros clear those of all later stages */
	session_macros_clear(s, slot);
	/* keep the well-formed prefix of the list */
	good = it.p;
	while ((rc = milter_macro_next(&it, &name, &value)) == 1)
		good = it.p;
	len = (size_t)(good - (f->data + 1));
	t = &s->macros[slot];
	if (len > t->cap) {
		free(t->raw);
		t->cap = len < 128 ? 128 : (uint32_t)len;
		t->raw = xmalloc(t->cap);
	}
	if (len > 0)
		memcpy(t->raw, f->data + 1, len);
	t->len = (uint32_t)len;
	return rc < 0 ? -1 : 0;
}

static bool
macro_name_eq(const char *have, const char *want)
{
	size_t hl, wl;

	if (strcmp(have, want) == 0)
		return true;
	if (*have == '{')
		have++;
	if (*want == '{')
		want++;
	hl = strcspn(have, "}");
	wl = strcspn(want, "}");
	return hl == wl && strncmp(have, want, hl) == 0;
}

const char *
milter_session_macro(const struct milter_session *s, const char *name)
{
	const char *n, *v;
	int i;

	for (i = MSLOT_COUNT - 1; i >= 0; i--) {
		const struct milter_macro_table *t = &s->macros[i];
		struct milter_macro_iter it = { t->raw, t->raw + t->len };

		if (t->len == 0)
			continue;
		while (milter_macro_next(&it, &n, &v) == 1)
			if (macro_name_eq(n, name))
				return v;
	}
	return NULL;
}


static int
mod_allowed(struct milter_session *s, uint32_t action, const char *what)
{
	if (s->phase != PH_EOM) {
		log_warning("%s %s requested outside end of message", s->sid,
		    what);
		return -1;
	}
	if ((s->actions & action) == 0) {
		log_warning("%s %s not negotiated with the MTA; skipped",
		    s->sid, what);
		return -1;
	}
	s->msg.nmods++;
	return 0;
}

/* With HDR_LEADSPC the MTA adds no space after the colon: we must. */
static const char *
hdr_value(struct milter_session *s, const char *value, char **tofree)
{
	*tofree = NULL;
	if (!(s->protocol & SMFIP_HDR_LEADSPC) || *value == ' ' ||
	    *value == '\t' || *value == '\0')
		return value;
	*tofree = xmalloc(strlen(value) + 2);
	(*tofree)[0] = ' ';
	strcpy(*tofree + 1, value);
	return *tofree;
}

int
milter_session_add_header(struct milter_session *s, const char *name,
    const char *value)
{
	char *f;

	if (mod_allowed(s, SMFIF_ADDHDRS, "add header") < 0)
		return -1;
	milter_put_addheader(&s->msg.mods, name, hdr_value(s, value, &f));
	free(f);
	return 0;
}

int
milter_session_ins_header(struct milter_session *s, uint32_t idx,
    const char *name, const char *value)
{
	char *f;

	if (mod_allowed(s, SMFIF_ADDHDRS, "insert header") < 0)
		return -1;
	milter_put_insheader(&s->msg.mods, idx, name, hdr_value(s, value, &f));
	free(f);
	return 0;
}

int
milter_session_chg_header(struct milter_session *s, const char *name,
    uint32_t idx, const char *value)
{
	char *f;

	if (mod_allowed(s, SMFIF_CHGHDRS, "change header") < 0)
		return -1;
	milter_put_chgheader(&s->msg.mods, idx, name, hdr_value(s, value, &f));
	free(f);
	return 0;
}

int
milter_session_chg_from(struct milter_session *s, const char *from,
    const char *args)
{
	if (mod_allowed(s, SMFIF_CHGFROM, "change sender") < 0)
		return -1;
	milter_put_chgfrom(&s->msg.mods, from, args);
	return 0;
}

int
milter_session_add_rcpt(struct milter_session *s, const char *rcpt,
    const char *args)
{
	if (mod_allowed(s, args ? SMFIF_ADDRCPT_PAR : SMFIF_ADDRCPT,
	    "add recipient") < 0)
		return -1;
	milter_put_addrcpt(&s->msg.mods, rcpt, args);
	return 0;
}

int
milter_session_del_rcpt(struct milter_session *s, const char *rcpt)
{
	if (mod_allowed(s, SMFIF_DELRCPT, "delete recipient") < 0)
		return -1;
	milter_put_delrcpt(&s->msg.mods, rcpt);
	return 0;
}

int
milter_session_replace_body(struct milter_session *s, const void *body,
    size_t len)
{
	if (mod_allowed(s, SMFIF_CHGBODY, "replace body") < 0)
		return -1;
	mbuf_reset(&s->msg.mods_body);
	milter_put_replbody(&s->msg.mods_body, body, len);
	return 0;
}

int
milter_session_quarantine(struct milter_session *s, const char *reason)
{
	if (mod_allowed(s, SMFIF_QUARANTINE, "quarantine") < 0)
		return -1;
	milter_put_quarantine(&s->msg.mods, reason);
	return 0;
}

void
milter_session_progress(struct milter_session *s)
{
	if (s->phase != PH_EOM)
		return;
	milter_put_simple(&s->out, SMFIR_PROGRESS);
	if (!s->in_callback)
		session_flush(s);
}

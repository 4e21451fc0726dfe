/* milter_dispatch.c -- the protocol state machine of a session: which
 * command is legal when, option negotiation from the policy's needs, the
 * command handlers, and turning verdicts into replies (exactly one per
 * event unless a no-reply flag was negotiated). */
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
#include "pipeline.h"
#include "xmalloc.h"

#define MAX_RCPTS	10000
#define MAX_HEADERS	10000
#define MAX_ARGS	64
#define PROGRESS_INTERVAL_MS	10000

static const char *const default_macros_none[SMFIM_COUNT];

/* The protocol bits that suppress each stage and its reply. */
static const struct {
	enum policy_stage stage;
	uint32_t no_bit, nr_bit;
} stage_bits[] = {
	{ STAGE_CONNECT, SMFIP_NOCONNECT, SMFIP_NR_CONN },
	{ STAGE_HELO, SMFIP_NOHELO, SMFIP_NR_HELO },
	{ STAGE_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL },
	{ STAGE_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT },
	{ STAGE_DATA, SMFIP_NODATA, SMFIP_NR_DATA },
	{ STAGE_HEADER, SMFIP_NOHDRS, SMFIP_NR_HDR },
	{ STAGE_EOH, SMFIP_NOEOH, SMFIP_NR_EOH },
	{ STAGE_BODY, SMFIP_NOBODY, SMFIP_NR_BODY },
	{ STAGE_UNKNOWN, SMFIP_NOUNKNOWN, SMFIP_NR_UNKN },
};


static char *
join_args(const char **argv, size_t argc)
{
	size_t i, len = 0;
	char *s, *p;

	if (argc == 0)
		return NULL;
	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	p = s = xmalloc(len);
	for (i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]);

		memcpy(p, argv[i], l);
		p += l;
		*p++ = (i + 1 < argc) ? ' ' : '\0';
	}
	return s;
}

/* Appends the reply for VERDICT at a reply-bearing stage. */
static void
put_verdict(struct milter_session *s, uint8_t cmd, struct policy_verdict *v)
{
	const char *err = NULL;
	char code[4], xcode[16];
	const char *text;
	uint8_t simple;

	switch (v->action) {
	case POLICY_CONTINUE:
	case POLICY_PENDING:
		milter_put_simple(&s->out, SMFIR_CONTINUE);
		return;
	case POLICY_ACCEPT:
		milter_put_simple(&s->out, SMFIR_ACCEPT);
		return;
	case POLICY_DISCARD:
		if (cmd == SMFIC_CONNECT || cmd == SMFIC_HELO) {
			log_warning("%s discard is not allowed at %s, "
			    "continuing", s->sid, milter_cmd_name(cmd));
			milter_put_simple(&s->out, SMFIR_CONTINUE);
		} else {
			milter_put_simple(&s->out, SMFIR_DISCARD);
		}
		return;
	case POLICY_SKIP:
		milter_put_simple(&s->out, (s->protocol & SMFIP_SKIP) ?
		    SMFIR_SKIP : SMFIR_CONTINUE);
		return;
	case POLICY_REJECT:
	case POLICY_TEMPFAIL:
		break;
	}
	simple = v->action == POLICY_REJECT ? SMFIR_REJECT : SMFIR_TEMPFAIL;
	if (v->reply == NULL) {
		milter_put_simple(&s->out, simple);
		return;
	}
	/* "DDD X.Y.Z text" or "DDD text" */
	text = v->reply;
	if (strlen(text) < 4 || text[3] != ' ')
		goto bad;
	memcpy(code, text, 3);
	code[3] = '\0';
	text += 4;
	xcode[0] = '\0';
	if (text[0] >= '2' && text[0] <= '5' && text[1] == '.') {
		size_t xl = strcspn(text, " \n");

		if (xl < sizeof(xcode)) {
			memcpy(xcode, text, xl);
			xcode[xl] = '\0';
			text += xl;
			if (*text == ' ')
				text++;
		}
	}
	if ((code[0] == '5') != (v->action == POLICY_REJECT))
		goto bad;
	if (milter_put_replycode(&s->out, code, xcode[0] ? xcode : NULL, text,
	    &err) == 0)
		return;
bad:
	log_warning("%s invalid reply text \"%.80s\" (%s), sending a plain %s",
	    s->sid, v->reply, err ? err : "reply class mismatch",
	    v->action == POLICY_REJECT ? "reject" : "tempfail");
	milter_put_simple(&s->out, simple);
}

static enum policy_stage
cmd_stage(uint8_t cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT: return STAGE_CONNECT;
	case SMFIC_HELO: return STAGE_HELO;
	case SMFIC_MAIL: return STAGE_MAIL;
	case SMFIC_RCPT: return STAGE_RCPT;
	case SMFIC_DATA: return STAGE_DATA;
	case SMFIC_HEADER: return STAGE_HEADER;
	case SMFIC_EOH: return STAGE_EOH;
	case SMFIC_BODY: return STAGE_BODY;
	case SMFIC_BODYEOB: return STAGE_EOM;
	default: return STAGE_UNKNOWN;
	}
}

static bool
may_reply(const struct milter_session *s, uint8_t cmd)
{
	return (s->protocol & milter_cmd_nr_bit(cmd)) == 0;
}

/* Sends the EOM result: edits (unless the message is refused), then the
 * final decision, all into s->out. */
static void
session_finish_eom(struct milter_session *s, struct policy_verdict *v)
{
	struct milter_msg *m = &s->msg;
	bool refused = v->action == POLICY_REJECT ||
	    v->action == POLICY_TEMPFAIL || v->action == POLICY_DISCARD;

	if (v->action == POLICY_SKIP || v->action == POLICY_PENDING)
		v->action = POLICY_CONTINUE;
	if (!refused) {
		mbuf_append(&s->out, mbuf_data(&m->mods), mbuf_avail(&m->mods));
		/* REPLBODY frames must be contiguous: after the other edits */
		mbuf_append(&s->out, mbuf_data(&m->mods_body),
		    mbuf_avail(&m->mods_body));
	}
	put_verdict(s, SMFIC_BODYEOB, v);
	event_del(&s->ev_progress);
	pipeline_msg_end(s, policy_action_name(v->action), v, STAGE_EOM);
	policy_verdict_clear(v);
	msg_reset(s);
	s->nmessages++;
	session_enter_phase(s, PH_SESSION);
	if (daemon_is_draining())
		milter_session_close(s, "shutting down");
}

/* Handles the verdict for CMD (reply or remember it). */
static void
session_apply_verdict(struct milter_session *s, uint8_t cmd,
    struct policy_verdict *v)
{
	struct milter_msg *m = &s->msg;

	if (cmd == SMFIC_BODYEOB) {
		session_finish_eom(s, v);
		return;
	}
	if (cmd == SMFIC_RCPT && (v->action == POLICY_REJECT ||
	    v->action == POLICY_TEMPFAIL) && m->nrcpts > 0) {
		/* only this recipient is refused: forget it */
		struct milter_rcpt *r = &m->rcpts[--m->nrcpts];

		free(r->addr);
		free(r->args);
	}
	if (cmd == SMFIC_BODY && v->action == POLICY_SKIP)
		m->skip_body = true;
	if (cmd == SMFIC_BODY && v->action == POLICY_CONTINUE && m->skip_body)
		v->action = POLICY_SKIP;
	if (may_reply(s, cmd)) {
		put_verdict(s, cmd, v);
		if (cmd != SMFIC_RCPT && v->action != POLICY_CONTINUE &&
		    v->action != POLICY_SKIP && (m->active ||
		    cmd == SMFIC_CONNECT || cmd == SMFIC_HELO)) {
			/* the message's (or session's) fate is sent now */
			pipeline_msg_end(s, policy_action_name(v->action), v,
			    cmd_stage(cmd));
				}
		policy_verdict_clear(v);
		return;
	}
	/* a no-reply stage: keep the first non-continue verdict for EOM */
	if (v->action != POLICY_CONTINUE && v->action != POLICY_SKIP &&
	    m->deferred.action == POLICY_CONTINUE && m->active) {
		m->deferred = *v;
		v->reply = NULL;
	}
	policy_verdict_clear(v);
}

/* Runs the policy for CMD unless it does not need the stage; EV carries
 * the stage's data (header, body chunk, recipient index). */
static void
session_run_stage(struct milter_session *s, uint8_t cmd,
    const struct module_event *ev)
{
	static const struct module_event none;
	struct policy_verdict v = { POLICY_CONTINUE, NULL, "" };
	enum policy_stage st = cmd_stage(cmd);
	enum policy_action a = POLICY_CONTINUE;

	if (ev == NULL)
		ev = &none;
	if (cmd == SMFIC_BODYEOB && s->msg.broken) {
		v.action = POLICY_TEMPFAIL;
		v.reply = xstrdup("451 4.3.0 Malformed milter input, "
		    "try again later");
		session_apply_verdict(s, cmd, &v);
		return;
	}
	if (cmd == SMFIC_BODYEOB &&
	    s->msg.deferred.action != POLICY_CONTINUE) {
		v = s->msg.deferred;
		memset(&s->msg.deferred, 0, sizeof(s->msg.deferred));
		session_apply_verdict(s, cmd, &v);
		return;
	}
	if ((s->stages & STAGE_BIT(st)) || cmd == SMFIC_BODYEOB)
		a = pipeline_run(s, st, ev, &v);
	if (a == POLICY_PENDING) {
		s->pending = true;
		s->pending_cmd = cmd;
		if (cmd == SMFIC_BODYEOB) {
			struct timeval tv = { PROGRESS_INTERVAL_MS / 1000, 0 };

			event_add(&s->ev_progress, &tv);
		}
		return;
	}
	session_apply_verdict(s, cmd, &v);
}

void
milter_session_resume(struct milter_session *s, struct policy_verdict *v)
{
	struct policy_verdict mine = *v;

	v->reply = NULL;
	if (!s->pending || s->phase == PH_CLOSED) {
		policy_verdict_clear(&mine);
		return;
	}
	s->pending = false;
	if (mine.action == POLICY_PENDING)
		mine.action = POLICY_CONTINUE;
	session_apply_verdict(s, s->pending_cmd, &mine);
	milter_session_run(s);
}

static void
session_optneg(struct milter_session *s, const struct milter_frame *f)
{
	struct milter_optneg o;
	struct policy_needs needs;
	uint32_t want_proto = 0, nr = 0, mta_actions;
	size_t k;
	const char *err;
	const char *const *macros = default_macros_none;

	if (milter_decode_optneg(f, &o, &err) < 0) {
		milter_session_close(s, err);
		return;
	}
	if (o.version < MILTER_VERSION_MIN) {
		milter_session_close(s, "MTA milter protocol version < 2");
		return;
	}
	s->mta_version = o.version;
	s->mta_actions = o.actions;
	s->mta_protocol = o.protocol;
	s->version = o.version < MILTER_VERSION_MAX ? o.version :
	    MILTER_VERSION_MAX;
	mta_actions = o.actions ? o.actions : 0x0f;	/* 0 = V1 actions */

	pipeline_conn_init(&s->pipe, s->conf);
	policy_needs_get(s->conf, &needs);
	s->stages = needs.stages;
	/* suppress every event the policy does not need, and the reply to
	 * every event where it never answers anything but continue */
	for (k = 0; k < sizeof(stage_bits) / sizeof(stage_bits[0]); k++) {
		uint32_t bit = STAGE_BIT(stage_bits[k].stage);

		if (!(needs.stages & bit))
			want_proto |= stage_bits[k].no_bit;
		if (!(needs.replies & bit))
			nr |= stage_bits[k].nr_bit;
	}
	s->body_limit = needs.body_limit;
	if (needs.body_limit > 0 && (o.protocol & SMFIP_SKIP))
		nr &= ~SMFIP_NR_BODY;	/* answer chunks so we can SKIP */
	want_proto |= nr | SMFIP_SKIP | SMFIP_HDR_LEADSPC | SMFIP_MDS_1M |
	    SMFIP_MDS_256K;
	/* only what the MTA offers; MDS: the larger one if both */
	s->protocol = want_proto & o.protocol;
	if (s->protocol & SMFIP_MDS_1M)
		s->protocol &= ~SMFIP_MDS_256K;
	s->actions = needs.actions & mta_actions;
	if (mta_actions & SMFIF_SETSYMLIST) {
		s->actions |= SMFIF_SETSYMLIST;
		macros = needs.macros;
	}
	milter_put_optneg(&s->out, s->version, s->actions, s->protocol,
	    macros);
	log_debug("%s optneg: MTA v%u actions=0x%x protocol=0x%x -> v%u "
	    "actions=0x%x protocol=0x%x", s->sid, o.version, o.actions,
	    o.protocol, s->version, s->actions, s->protocol);
	if ((needs.actions & ~mta_actions & ~SMFIF_SETSYMLIST) != 0)
		log_info("%s MTA does not allow actions 0x%x; those edits "
		    "will be skipped", s->sid,
		    needs.actions & ~mta_actions & ~SMFIF_SETSYMLIST);
	session_enter_phase(s, PH_CONNECT);
}

static void
session_protocol_error(struct milter_session *s, const struct milter_frame *f,
    const char *what)
{
	/* The frame boundary is intact: answer what expects an answer with a
	 * tempfail, and tempfail the message at EOM if we cannot answer now. */
	log_warning("%s protocol error at %s: %s", s->sid,
	    milter_cmd_name(f->cmd), what);
	if (f->cmd == SMFIC_BODYEOB) {
		struct policy_verdict v = { POLICY_TEMPFAIL, NULL, "" };

		v.reply = xstrdup("451 4.3.0 Malformed milter input, "
		    "try again later");
		session_finish_eom(s, &v);
		return;
	}
	if (may_reply(s, f->cmd)) {
		milter_put_simple(&s->out, SMFIR_TEMPFAIL);
		return;
	}
	if (s->msg.active)
		s->msg.broken = true;
}

/* Which phases each command is legal in (lenient where Postfix is). */
static bool
cmd_allowed(const struct milter_session *s, uint8_t cmd)
{
	enum milter_phase ph = s->phase;

	switch (cmd) {
	case SMFIC_CONNECT:
		return ph == PH_CONNECT;
	case SMFIC_HELO:
		return ph == PH_CONNECT || ph == PH_SESSION;
	case SMFIC_MAIL:
		return ph >= PH_CONNECT && ph <= PH_BODY;
	case SMFIC_RCPT:
		return ph == PH_MAIL || ph == PH_RCPT;
	case SMFIC_DATA:
		return ph == PH_MAIL || ph == PH_RCPT;
	case SMFIC_HEADER:
		return ph >= PH_MAIL && ph <= PH_HEADERS;
	case SMFIC_EOH:
		return ph >= PH_MAIL && ph <= PH_HEADERS;
	case SMFIC_BODY:
	case SMFIC_BODYEOB:
		return ph >= PH_MAIL && ph <= PH_BODY;
	case SMFIC_UNKNOWN:
		return ph >= PH_CONNECT && ph <= PH_BODY;
	default:
		return true;
	}
}

static void
session_connect(struct milter_session *s, const struct milter_frame *f)
{
	struct milter_connect c;
	const char *err;

	if (milter_decode_connect(f, &c, &err) < 0) {
		session_protocol_error(s, f, err);
		return;
	}
	free(s->hostname);
	free(s->addr);
	s->hostname = xstrdup(c.hostname);
	s->family = c.family;
	s->port = c.port;
	s->addr = xstrdup(c.family == 'U' ? "" : c.address);
	session_enter_phase(s, PH_SESSION);
	log_debug("%s connect from %s[%s] family %c", s->sid, s->hostname,
	    s->addr, s->family);
	session_run_stage(s, SMFIC_CONNECT, NULL);
}

static void
session_helo(struct milter_session *s, const struct milter_frame *f)
{
	const char *helo, *err;

	if (milter_decode_string(f, &helo, &err) < 0) {
		session_protocol_error(s, f, err);
		return;
	}
	free(s->helo);
	s->helo = xstrdup(helo);
	session_enter_phase(s, PH_SESSION);
	session_run_stage(s, SMFIC_HELO, NULL);
}

static void
session_mail(struct milter_session *s, const struct milter_frame *f)
{
	const char *argv[MAX_ARGS], *err;
	size_t argc;

	if (milter_decode_argv(f, argv, MAX_ARGS, &argc, &err) < 0) {
		msg_begin(s);
		session_enter_phase(s, PH_MAIL);
		session_protocol_error(s, f, err);
		return;
	}
	msg_begin(s);
	s->msg.from = xstrdup(argv[0]);
	s->msg.from_args = join_args(argv + 1,
	    (argc > MAX_ARGS ? MAX_ARGS : argc) - 1);
	session_enter_phase(s, PH_MAIL);
	session_run_stage(s, SMFIC_MAIL, NULL);
}

static void
session_rcpt(struct milter_session *s, const struct milter_frame *f)
{
	struct module_event ev = { 0 };
	const char *argv[MAX_ARGS], *err;
	struct milter_msg *m = &s->msg;
	size_t argc;

	if (milter_decode_argv(f, argv, MAX_ARGS, &argc, &err) < 0) {
		session_protocol_error(s, f, err);
		return;
	}
	if (m->nrcpts >= MAX_RCPTS) {
		session_protocol_error(s, f, "too many recipients");
		return;
	}
	if (m->nrcpts == m->rcptcap) {
		m->rcptcap = m->rcptcap ? m->rcptcap * 2 : 4;
		m->rcpts = xrealloc(m->rcpts, m->rcptcap * sizeof(*m->rcpts));
	}
	m->rcpts[m->nrcpts].addr = xstrdup(argv[0]);
	m->rcpts[m->nrcpts].args = join_args(argv + 1,
	    (argc > MAX_ARGS ? MAX_ARGS : argc) - 1);
	m->nrcpts++;
	session_enter_phase(s, PH_RCPT);
	ev.rcpt = m->nrcpts - 1;
	session_run_stage(s, SMFIC_RCPT, &ev);
}

static void
session_header(struct milter_session *s, const struct milter_frame *f)
{
	struct module_event ev = { 0 };
	struct milter_msg *m = &s->msg;
	const char *name, *value, *err;

	session_enter_phase(s, PH_HEADERS);
	if (milter_decode_header(f, &name, &value, &err) < 0) {
		session_protocol_error(s, f, err);
		return;
	}
	m->hdr_bytes += f->len + 1;
	if (s->protocol & SMFIP_HDR_LEADSPC) {
		if (*value == ' ')
			value++;
		else
			ev.hdr_nosp = true;
	}
	if (m->nhdrs >= MAX_HEADERS) {
		if (m->nhdrs == MAX_HEADERS)
			log_info("%s more than %u headers; not keeping the "
			    "rest", s->sid, MAX_HEADERS);
	} else {
		if (m->nhdrs == m->hdrcap) {
			m->hdrcap = m->hdrcap ? m->hdrcap * 2 : 16;
			m->hdrs = xrealloc(m->hdrs,
			    m->hdrcap * sizeof(*m->hdrs));
		}
		m->hdrs[m->nhdrs].name = xstrdup(name);
		m->hdrs[m->nhdrs].value = xstrdup(value);
		m->hdrs[m->nhdrs].nosp = ev.hdr_nosp;
		m->nhdrs++;
	}
	ev.hdr_name = name;
	ev.hdr_value = value;
	session_run_stage(s, SMFIC_HEADER, &ev);
}

static void
session_body(struct milter_session *s, const struct milter_frame *f)
{
	struct module_event ev = { 0 };

	session_enter_phase(s, PH_BODY);
	s->msg.body_bytes += f->len;
	if (s->body_limit > 0 && s->msg.body_bytes >= s->body_limit &&
	    !s->msg.skip_body) {
		/* the policy sees this last chunk; the reply is SKIP */
		s->msg.skip_body = true;
		ev.body = f->data;
		ev.body_len = f->len;
		session_run_stage(s, SMFIC_BODY, &ev);
		return;
	}
	if (s->msg.skip_body) {
		if (may_reply(s, f->cmd))
			milter_put_simple(&s->out, (s->protocol & SMFIP_SKIP) ?
			    SMFIR_SKIP : SMFIR_CONTINUE);
		return;
	}
	ev.body = f->data;
	ev.body_len = f->len;
	session_run_stage(s, SMFIC_BODY, &ev);
}

/* Dispatches one frame.  Commands that need no reply never get one. */
void
session_handle_frame(struct milter_session *s, const struct milter_frame *f)
{
	if (s->phase == PH_OPTNEG && f->cmd != SMFIC_OPTNEG) {
		if (f->cmd == SMFIC_QUIT) {
			milter_session_close(s, NULL);
			return;
		}
		milter_session_close(s, "command before option negotiation");
		return;
	}
	if (!milter_cmd_known(f->cmd)) {
		char why[64];

		snprintf(why, sizeof(why), "unknown command byte 0x%02x",
		    f->cmd);
		milter_session_close(s, why);
		return;
	}
	if (!cmd_allowed(s, f->cmd)) {
		char why[96];

		snprintf(why, sizeof(why), "command out of order in phase %s",
		    session_phase_name(s->phase));
		session_protocol_error(s, f, why);
		return;
	}
	switch (f->cmd) {
	case SMFIC_OPTNEG:
		if (s->phase != PH_OPTNEG) {
			milter_session_close(s, "second option negotiation");
			return;
		}
		session_optneg(s, f);
		break;
	case SMFIC_MACRO:
		if (session_store_macros(s, f) < 0)
			log_info("%s malformed macro list ignored", s->sid);
		break;
	case SMFIC_CONNECT:
		session_connect(s, f);
		break;
	case SMFIC_HELO:
		session_helo(s, f);
		break;
	case SMFIC_MAIL:
		session_mail(s, f);
		break;
	case SMFIC_RCPT:
		session_rcpt(s, f);
		break;
	case SMFIC_DATA:
		session_enter_phase(s, PH_DATA);
		session_run_stage(s, SMFIC_DATA, NULL);
		break;
	case SMFIC_HEADER:
		session_header(s, f);
		break;
	case SMFIC_EOH:
		session_enter_phase(s, PH_BODY);
		session_run_stage(s, SMFIC_EOH, NULL);
		break;
	case SMFIC_BODY:
		session_body(s, f);
		break;
	case SMFIC_BODYEOB:
		if (f->len > 0)		/* libmilter: data in EOB = last chunk */
			s->msg.body_bytes += f->len;
		session_enter_phase(s, PH_EOM);
		session_run_stage(s, SMFIC_BODYEOB, NULL);
		break;
	case SMFIC_UNKNOWN:
		session_run_stage(s, SMFIC_UNKNOWN, NULL);
		break;
	case SMFIC_ABORT:
		if (s->msg.active) {
			log_debug("%s transaction aborted", s->sid);
			msg_reset(s);
		}
		if (s->phase > PH_SESSION)
			session_enter_phase(s, PH_SESSION);
		if (daemon_is_draining())
			milter_session_close(s, "shutting down");
		break;
	case SMFIC_QUIT:
		milter_session_close(s, NULL);
		break;
	case SMFIC_QUIT_NC:
		conn_reset(s);
		session_enter_phase(s, PH_CONNECT);
		break;
	}
}

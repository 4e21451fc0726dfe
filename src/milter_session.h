/* milter_session.h -- one MTA connection: the protocol state machine on
 * libevent, per-connection and per-message state, replies and EOM edits. */
#ifndef RMILTER_MILTER_SESSION_H
#define RMILTER_MILTER_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "mbuf.h"
#include "milter_proto.h"
#include "pipeline.h"
#include "policy.h"

struct rmilter_config;

/* Protocol phase; every transition goes through session_enter_phase(). */
enum milter_phase {
	PH_OPTNEG = 0,	/* waiting for SMFIC_OPTNEG */
	PH_CONNECT,	/* negotiated, waiting for CONNECT (or HELO/MAIL) */
	PH_SESSION,	/* connected, no transaction */
	PH_MAIL,	/* MAIL seen */
	PH_RCPT,	/* at least one RCPT seen */
	PH_DATA,	/* DATA seen */
	PH_HEADERS,	/* headers arriving */
	PH_BODY,	/* EOH or body seen */
	PH_EOM,		/* EOM received, final reply not sent yet */
	PH_CLOSED,
};

/* Macro tables, one per stage the MTA sends macros for. */
enum milter_macro_slot {
	MSLOT_CONNECT = 0, MSLOT_HELO, MSLOT_MAIL, MSLOT_RCPT, MSLOT_DATA,
	MSLOT_EOH, MSLOT_EOM, MSLOT_UNKNOWN, MSLOT_COUNT
};

struct milter_macro_table {
	uint8_t *raw;		/* name\0value\0 pairs as the MTA sent them */
	uint32_t len, cap;
};

struct milter_rcpt {
	char *addr;		/* as sent, with <> */
	char *args;		/* ESMTP args joined by ' ', or NULL */
};

struct milter_header {
	char *name;
	char *value;		/* leading space stripped, folding as sent (LF) */
	bool nosp;		/* written "Name:value", no space after the
				 * colon (known when HDR_LEADSPC was agreed) */
};

/* Per-transaction state; reset exactly at ABORT and after the EOM reply. */
struct milter_msg {
	bool active;
	struct timeval start;
	char *from;		/* as sent, with <> */
	char *from_args;
	struct milter_rcpt *rcpts;
	unsigned nrcpts, rcptcap;
	struct milter_header *hdrs;
	unsigned nhdrs, hdrcap;
	uint64_t hdr_bytes;
	uint64_t body_bytes;
	bool skip_body;		/* SKIP sent / body no longer wanted */
	bool broken;		/* bad input at a no-reply stage: tempfail at EOM */
	struct policy_verdict deferred;	/* verdict that could not be sent yet */
	struct mbuf mods;	/* encoded EOM edits except body replacement */
	struct mbuf mods_body;	/* encoded REPLBODY frames */
	unsigned nmods;
	struct pipeline_msg *pipe;	/* module state (pipeline.c) */
	enum policy_stage cur_stage;	/* stage being run */
};

struct milter_session {
	uint64_t id;
	char sid[13];		/* 12 hex digits, for logs */
	int fd;
	bool is_tcp;
	struct event ev_read, ev_write, ev_timer, ev_progress;
	struct mbuf in, out;
	struct timeval accepted;
	uint64_t partial_since_ms;	/* a frame is incomplete since then */

	enum milter_phase phase;
	bool closing;		/* free at the end of the current callback */
	bool in_callback;
	bool pending;		/* waiting for an asynchronous verdict */
	uint8_t pending_cmd;
	bool read_paused;

	struct rmilter_config *conf;	/* the config this session started on */

	/* negotiation */
	uint32_t mta_version, mta_actions, mta_protocol;
	uint32_t version, actions, protocol;
	uint32_t stages;	/* policy stages we receive */
	uint64_t body_limit;	/* SKIP the body after this many bytes (0: no) */

	/* connection */
	char *hostname;
	char family;
	uint16_t port;
	char *addr;
	char *helo;
	struct milter_macro_table macros[MSLOT_COUNT];
	unsigned nmessages;

	struct milter_msg msg;
	struct pipeline_conn pipe;	/* the modules of this session's config */

	struct milter_session *next, *prev;	/* daemon's session list */
};

/* Takes ownership of FD (non-blocking), starts reading.  Never fails (OOM
 * aborts). */
struct milter_session *milter_session_new(struct event_base *base, int fd,
    bool is_tcp, struct rmilter_config *conf);

/* The live session with this id, or NULL (it may have closed). */
struct milter_session *milter_session_lookup(uint64_t id);

/* Processes buffered input, flushes output, frees the session if it was
 * closed; the last call of every entry point into a session.  May free S. */
void milter_session_run(struct milter_session *s);

/* Delivers the verdict of a pending stage (POLICY_PENDING) and continues
 * with buffered input.  Takes ownership of V's reply.  May free S. */
void milter_session_resume(struct milter_session *s, struct policy_verdict *v);

/* Asks a session to close (after flushing what is queued).  Safe from any
 * callback; the session is freed at the end of its current callback, or now
 * if no callback of it is running. */
void milter_session_close(struct milter_session *s, const char *reason);

/* Closes sessions that have no transaction in flight (graceful shutdown);
 * returns how many sessions remain. */
unsigned milter_session_drain(void);
unsigned milter_session_count(void);
/* Frees every session now (final shutdown). */
void milter_session_free_all(void);

/* Macro value by name ("i", "{auth_authen}" or "auth_authen"), latest stage
 * first; NULL if not sent. */
const char *milter_session_macro(const struct milter_session *s,
    const char *name);

/* EOM modifications; each returns -1 (and logs) when the negotiated actions
 * do not allow it.  Valid only while the EOM verdict is being decided. */
int milter_session_add_header(struct milter_session *s, const char *name,
    const char *value);
int milter_session_ins_header(struct milter_session *s, uint32_t idx,
    const char *name, const char *value);
int milter_session_chg_header(struct milter_session *s, const char *name,
    uint32_t idx, const char *value);
int milter_session_chg_from(struct milter_session *s, const char *from,
    const char *args);
int milter_session_add_rcpt(struct milter_session *s, const char *rcpt,
    const char *args);
int milter_session_del_rcpt(struct milter_session *s, const char *rcpt);
int milter_session_replace_body(struct milter_session *s, const void *body,
    size_t len);
int milter_session_quarantine(struct milter_session *s, const char *reason);
/* Sends SMFIR_PROGRESS now (EOM only). */
void milter_session_progress(struct milter_session *s);

#endif

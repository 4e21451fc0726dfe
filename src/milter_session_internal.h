/* milter_session_internal.h -- what the session's files share:
 * milter_session.c (lifecycle, IO, timers), milter_dispatch.c (commands,
 * negotiation, verdicts) and milter_edit.c (macros, EOM edits). */
#ifndef RMILTER_MILTER_SESSION_INTERNAL_H
#define RMILTER_MILTER_SESSION_INTERNAL_H

#include "milter_session.h"

/* milter_session.c */
void session_enter_phase(struct milter_session *s, enum milter_phase ph);
const char *session_phase_name(enum milter_phase ph);
/* Writes what s->out holds; arms the write event if the socket is full. */
void session_flush(struct milter_session *s);
void msg_reset(struct milter_session *s);	/* forget the transaction */
void msg_begin(struct milter_session *s);	/* MAIL: a new transaction */
void conn_reset(struct milter_session *s);	/* QUIT_NC: a new connection */

/* milter_dispatch.c */
/* Handles one complete frame (F points into a buffer valid only now). */
void session_handle_frame(struct milter_session *s,
    const struct milter_frame *f);

/* milter_edit.c */
/* Stores a D packet; returns -1 if the list is malformed (kept up to it). */
int session_store_macros(struct milter_session *s,
    const struct milter_frame *f);
/* Clears the macros of slot FROM and every later slot. */
void session_macros_clear(struct milter_session *s, int from);
void session_macros_free(struct milter_session *s);

#endif

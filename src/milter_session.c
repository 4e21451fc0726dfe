/* milter_session.c -- one MTA connection: non-blocking IO on libevent, the
 * protocol state machine, per-message state and the replies.
 *
 * Input is read into s->in and parsed frame by frame (milter_proto.c); every
 * reply is appended to s->out and written once per batch of input, so the
 * EOM edits and the final decision leave in a single write.  A session is
 * only ever freed by session_run_end() at the end of one of its own
 * callbacks (or by milter_session_free_all at exit). */
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

#define READ_CHUNK		16384
#define OUT_HIGH_WATER		(256u * 1024u)
#define PROGRESS_INTERVAL_MS	10000

/* ---- registry: list + hash by id ------------------------------------------ */

static struct milter_session *sessions_head;
static unsigned sessions_count;
static unsigned id_nbuckets;
static uint64_t next_id;

/* id -> session: a fixed power-of-two table of small arrays. */
static struct id_chain {
	struct milter_session **v;
	unsigned n, cap;
} *chains;

static unsigned
id_hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (unsigned)id & (id_nbuckets - 1);
}

static void
registry_add(struct milter_session *s)
{
	struct id_chain *c;

	if (id_nbuckets == 0) {
		id_nbuckets = 1024;
		chains = xcalloc(id_nbuckets, sizeof(*chains));
	}
	c = &chains[id_hash(s->id)];
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 4;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = s;
	s->next = sessions_head;
	s->prev = NULL;
	if (sessions_head != NULL)
		sessions_head->prev = s;
	sessions_head = s;
	sessions_count++;
}

static void
registry_remove(struct milter_session *s)
{
	struct id_chain *c = &chains[id_hash(s->id)];
	unsigned i;

	for (i = 0; i < c->n; i++) {
		if (c->v[i] == s) {
			c->v[i] = c->v[--c->n];
			break;
		}
	}
	if (c->n == 0 && c->cap > 16) {
		free(c->v);
		c->v = NULL;
		c->cap = 0;
	}
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		sessions_head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	sessions_count--;
}

struct milter_session *
milter_session_lookup(uint64_t id)
{
	struct id_chain *c;
	unsigned i;

	if (id_nbuckets == 0)
		return NULL;
	c = &chains[id_hash(id)];
	for (i = 0; i < c->n; i++)
		if (c->v[i]->id == id)
			return c->v[i];
	return NULL;
}

unsigned
milter_session_count(void)
{
	return sessions_count;
}

static const char *const phase_names[] = {
	"optneg", "connect", "session", "mail", "rcpt", "data", "headers",
	"body", "eom", "closed"
};

static void session_free(struct milter_session *s);

const char *
session_phase_name(enum milter_phase ph)
{
	return ph <= PH_CLOSED ? phase_names[ph] : "?";
}

void
session_enter_phase(struct milter_session *s, enum milter_phase ph)
{
	if (s->phase != ph)
		log_debug("%s phase %s -> %s", s->sid, phase_names[s->phase],
		    phase_names[ph]);
	s->phase = ph;
}

static uint64_t
now_ms(void)
{
	struct timeval tv;

	event_base_gettimeofday_cached(daemon_base(), &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void
msg_reset(struct milter_session *s)
{
	struct milter_msg *m = &s->msg;
	unsigned i;

	pipeline_msg_abort(s);	/* records a refusal before it is forgotten */
	free(m->from);
	free(m->from_args);
	for (i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].args);
	}
	for (i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
	}
	free(m->rcpts);
	free(m->hdrs);
	policy_verdict_clear(&m->deferred);
	mbuf_free(&m->mods);
	mbuf_free(&m->mods_body);
	memset(m, 0, sizeof(*m));
}

void
msg_begin(struct milter_session *s)
{
	if (s->msg.active)
		msg_reset(s);
	s->msg.active = true;
	gettimeofday(&s->msg.start, NULL);
}

void
conn_reset(struct milter_session *s)
{
	msg_reset(s);
	free(s->hostname);
	free(s->addr);
	free(s->helo);
	s->hostname = s->addr = s->helo = NULL;
	s->family = 0;
	s->port = 0;
	session_macros_clear(s, 0);
}

void
session_flush(struct milter_session *s)
{
	ssize_t n;

	while (mbuf_avail(&s->out) > 0) {
		n = write(s->fd, mbuf_data(&s->out), mbuf_avail(&s->out));
		if (n > 0) {
			mbuf_consume(&s->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(&s->ev_write, NULL);
			return;
		}
		log_info("%s write to MTA failed: %s", s->sid,
		    n < 0 ? strerror(errno) : "short write");
		mbuf_reset(&s->out);
		milter_session_close(s, NULL);
		return;
	}
	if (s->out.cap > 65536) {	/* do not keep big buffers idle */
		mbuf_free(&s->out);
	}
}

static uint64_t
phase_timeout(const struct milter_session *s)
{
	switch (s->phase) {
	case PH_OPTNEG:
		return s->conf->handshake_timeout;
	case PH_DATA:
	case PH_HEADERS:
	case PH_BODY:
	case PH_EOM:
		return s->conf->content_timeout;
	default:
		return s->conf->command_timeout;
	}
}

static void
session_arm_timer(struct milter_session *s)
{
	uint64_t t = phase_timeout(s), now, left;
	struct timeval tv;

	if (s->pending) {
		event_del(&s->ev_timer);
		return;
	}
	if (mbuf_avail(&s->in) > 0) {
		now = now_ms();
		if (s->partial_since_ms == 0)
			s->partial_since_ms = now;
		left = s->partial_since_ms + s->conf->frame_timeout > now ?
		    s->partial_since_ms + s->conf->frame_timeout - now : 0;
		if (left < t)
			t = left;
	} else {
		s->partial_since_ms = 0;
	}
	tv.tv_sec = (time_t)(t / 1000);
	tv.tv_usec = (suseconds_t)((t % 1000) * 1000);
	event_add(&s->ev_timer, &tv);
}

/* Parses and handles every complete frame in BUF; returns the bytes used
 * (the rest is a partial frame, or input held back while a verdict is
 * pending or the session closes). */
static size_t
session_process_bytes(struct milter_session *s, const uint8_t *buf,
    size_t len)
{
	struct milter_frame f;
	enum milter_parse_rc rc;
	const char *err = NULL;
	size_t used, off = 0;

	while (!s->pending && !s->closing && off < len) {
		rc = milter_frame_parse(buf + off, len - off, MILTER_MAX_FRAME,
		    &f, &used, &err);
		if (rc == MILTER_PARSE_NEED_MORE)
			break;
		if (rc == MILTER_PARSE_ERROR) {
			milter_session_close(s, err);
			return len;	/* drop the rest */
		}
		s->partial_since_ms = 0;
		session_handle_frame(s, &f);
		off += used;
	}
	return off;
}

/* Input kept from earlier reads (partial frame, or held while pending). */
static void
session_process_input(struct milter_session *s)
{
	size_t used;

	if (mbuf_avail(&s->in) == 0)
		return;
	used = session_process_bytes(s, mbuf_data(&s->in), mbuf_avail(&s->in));
	mbuf_consume(&s->in, used);
	if (mbuf_avail(&s->in) == 0)
		mbuf_free(&s->in);	/* idle sessions hold no buffer */
}

void
milter_session_run(struct milter_session *s)
{
	s->in_callback = true;
	session_process_input(s);
	session_flush(s);
	s->in_callback = false;
	if (s->closing) {
		if (mbuf_avail(&s->out) > 0 && s->phase != PH_CLOSED) {
			/* let the last replies go out (bounded), then free */
			struct timeval tv = { 5, 0 };

			event_del(&s->ev_read);
			event_add(&s->ev_timer, &tv);
			return;
		}
		session_free(s);
		return;
	}
	/* backpressure: stop reading while the MTA does not read us */
	if (mbuf_avail(&s->out) > OUT_HIGH_WATER || s->pending) {
		if (!s->read_paused && mbuf_avail(&s->in) > OUT_HIGH_WATER) {
			event_del(&s->ev_read);
			s->read_paused = true;
		}
	} else if (s->read_paused) {
		event_add(&s->ev_read, NULL);
		s->read_paused = false;
	}
	session_arm_timer(s);
}

/* Reads into one buffer shared by all sessions (the loop is single
 * threaded): complete frames are handled straight from it and only a
 * trailing partial frame is copied into the session. */
static void
session_on_read(evutil_socket_t fd, short what, void *arg)
{
	static uint8_t rbuf[2 * 65536];
	struct milter_session *s = arg;
	size_t used;
	ssize_t n;

	if (mbuf_avail(&s->in) > 0) {
		/* continue the partial frame in the session's own buffer */
		uint8_t *p = mbuf_reserve(&s->in, READ_CHUNK);

		n = read(fd, p, s->in.cap - s->in.len);
		if (n > 0)
			s->in.len += (size_t)n;
	} else {
		n = read(fd, rbuf, sizeof(rbuf));
		if (n > 0) {
			s->in_callback = true;
			used = session_process_bytes(s, rbuf, (size_t)n);
			s->in_callback = false;
			if (used < (size_t)n && !s->closing)
				mbuf_append(&s->in, rbuf + used,
				    (size_t)n - used);
		}
	}
	if (n == 0) {
		if (mbuf_avail(&s->in) > 0)
			log_info("%s MTA closed the connection in the middle "
			    "of a frame (%zu bytes of it received)", s->sid,
			    mbuf_avail(&s->in));
		else if (s->msg.active && s->phase != PH_EOM)
			log_info("%s MTA closed the connection in phase %s",
			    s->sid, phase_names[s->phase]);
		else
			log_debug("%s MTA closed the connection", s->sid);
		s->phase = PH_CLOSED;
		milter_session_close(s, NULL);
	} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR) {
		log_info("%s read error: %s", s->sid, strerror(errno));
		s->phase = PH_CLOSED;
		milter_session_close(s, NULL);
	}
	milter_session_run(s);
}

static void
session_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct milter_session *s = arg;

	milter_session_run(s);
}

static void
session_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct milter_session *s = arg;
	char why[96];

	if (s->partial_since_ms != 0 && mbuf_avail(&s->in) > 0)
		snprintf(why, sizeof(why), "timeout: incomplete frame for "
		    "%llu ms (phase %s)",
		    (unsigned long long)s->conf->frame_timeout,
		    phase_names[s->phase]);
	else
		snprintf(why, sizeof(why), "timeout: idle in phase %s",
		    phase_names[s->phase]);
	s->phase = PH_CLOSED;
	mbuf_reset(&s->out);
	milter_session_close(s, why);
	milter_session_run(s);
}

static void
session_on_progress(evutil_socket_t fd, short what, void *arg)
{
	struct milter_session *s = arg;
	struct timeval tv = { PROGRESS_INTERVAL_MS / 1000, 0 };

	if (!s->pending || s->pending_cmd != SMFIC_BODYEOB)
		return;
	milter_put_simple(&s->out, SMFIR_PROGRESS);
	event_add(&s->ev_progress, &tv);
	milter_session_run(s);
}

struct milter_session *
milter_session_new(struct event_base *base, int fd, bool is_tcp,
    struct rmilter_config *conf)
{
	struct milter_session *s = xcalloc(1, sizeof(*s));

	if (next_id == 0) {
		struct timeval tv;

		gettimeofday(&tv, NULL);
		/* unique across restarts: seconds in the high bits */
		next_id = ((uint64_t)tv.tv_sec << 20) ^ (uint64_t)getpid();
		next_id &= 0xffffffffffffULL;
	}
	s->id = next_id++;
	snprintf(s->sid, sizeof(s->sid), "%012llx",
	    (unsigned long long)(s->id & 0xffffffffffffULL));
	s->fd = fd;
	s->is_tcp = is_tcp;
	s->conf = conf_ref(conf);
	s->phase = PH_OPTNEG;
	gettimeofday(&s->accepted, NULL);
	event_assign(&s->ev_read, base, fd, EV_READ | EV_PERSIST,
	    session_on_read, s);
	event_assign(&s->ev_write, base, fd, EV_WRITE, session_on_write, s);
	evtimer_assign(&s->ev_timer, base, session_on_timeout, s);
	evtimer_assign(&s->ev_progress, base, session_on_progress, s);
	registry_add(s);
	event_add(&s->ev_read, NULL);
	session_arm_timer(s);
	return s;
}

void
milter_session_close(struct milter_session *s, const char *reason)
{
	if (reason != NULL && !s->closing)
		log_info("%s closing connection: %s", s->sid, reason);
	s->closing = true;
}

/* Frees S: called only from daemon_session_run or at final shutdown. */
static void
session_free(struct milter_session *s)
{
	if (s->msg.active && s->phase != PH_EOM)
		log_debug("%s closed during a transaction", s->sid);
	event_del(&s->ev_read);
	event_del(&s->ev_write);
	event_del(&s->ev_timer);
	event_del(&s->ev_progress);
	registry_remove(s);
	close(s->fd);
	conn_reset(s);
	session_macros_free(s);
	mbuf_free(&s->in);
	mbuf_free(&s->out);
	conf_unref(s->conf);
	free(s);
	daemon_session_closed();
}

unsigned
milter_session_drain(void)
{
	struct milter_session *s, *next;

	for (s = sessions_head; s != NULL; s = next) {
		next = s->next;
		if (!s->msg.active && !s->pending && !s->in_callback) {
			milter_session_close(s, NULL);
			milter_session_run(s);
		}
	}
	return sessions_count;
}

void
milter_session_free_all(void)
{
	unsigned i;

	while (sessions_head != NULL) {
		sessions_head->in_callback = false;
		session_free(sessions_head);
	}
	for (i = 0; i < id_nbuckets; i++)
		free(chains[i].v);
	free(chains);
	chains = NULL;
	id_nbuckets = 0;
}


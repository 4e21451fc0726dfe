/* beanstalk_queue.c -- the fire-and-forget beanstalkd job queue: copies a
 * job's bytes out of the message spool, bounds what is in flight, puts the
 * job on the upstream layer with the beanstalk_proto codec, and logs and
 * counts every outcome.  See beanstalk.h for the contract.
 *
 * A job is in exactly one state:
 *   IN FLIGHT   on the upstream engine (queued for a connection, connecting,
 *               writing, reading the answer; retried on another server of
 *               the pool if there is one), listed in jobs_head
 *   ENDED       its completion ran (sent or failed) or it was cancelled at
 *               shutdown: unlisted, its config reference released, freed */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "beanstalk.h"
#include "beanstalk_proto.h"
#include "conf.h"
#include "daemon.h"
#include "conf_sections.h"
#include "log.h"
#include "scan.h"
#include "spool.h"
#include "upstream.h"
#include "xmalloc.h"

#define BS_PRIORITY		1025	/* rmilter 1.6's job priority */
#define BS_MAX_INFLIGHT		32	/* connections per server */
#define BS_IDLE_TIMEOUT		30000	/* ms a kept connection may idle */
#define BS_SHUTDOWN_GRACE_MS	2000	/* jobs in flight at exit may finish */

struct bs_job {
	struct upstream_req *req;
	struct rmilter_config *conf;	/* one reference: the pool lives in it */
	enum beanstalk_kind kind;
	uint64_t bytes;			/* job data (charged to the bound) */
	char sid[16];
	char qid[32];
	const char *tube;		/* "use" sent (in conf), or NULL */
	struct beanstalk_reply reply;
	struct bs_job *prev, *next;
};

static struct {
	struct bs_job *head;
	unsigned n;
	uint64_t bytes;
	struct beanstalk_counters c;
} Q;

static const char *const kind_names[BEANSTALK_NKINDS] = {
	"headers", "copy", "spam"
};

static const char *const pool_names[BEANSTALK_NKINDS] = {
	"beanstalk", "beanstalk_copy", "beanstalk_spam"
};

const char *
beanstalk_kind_name(enum beanstalk_kind kind)
{
	return (unsigned)kind < BEANSTALK_NKINDS ? kind_names[kind] : "?";
}

void
beanstalk_queue_counters(struct beanstalk_counters *c)
{
	*c = Q.c;
	c->inflight = Q.n;
	c->inflight_bytes = Q.bytes;
}

static const struct conf_serverlist *
kind_servers(const struct conf_beanstalk *bc, enum beanstalk_kind kind)
{
	switch (kind) {
	case BEANSTALK_COPY:
		return &bc->copy_server;
	case BEANSTALK_SPAM:
		return &bc->spam_server;
	default:
		return &bc->servers;
	}
}

/* The pool of KIND for CONF, made at first use (cached in the config). */
static struct upstream_pool *
kind_pool(const struct rmilter_config *conf, enum beanstalk_kind kind)
{
	const struct conf_beanstalk *bc = &conf->sections->beanstalk;
	const struct conf_serverlist *sl = kind_servers(bc, kind);
	struct upstream_params p = {
		.connect_timeout = bc->connect_timeout,
		.io_timeout = bc->timeout,
		.error_time = bc->error_time,
		.dead_time = bc->dead_time,
		.maxerrors = bc->maxerrors,
		/* a second server when there is one; never the same again
		 * (the job is not worth delaying the others) */
		.attempts = sl->n > 1 ? 2 : 1,
		.retry_delay = 0,
		.max_inflight = BS_MAX_INFLIGHT,
		.max_queue = bc->max_queue,
		.idle_timeout = BS_IDLE_TIMEOUT,
		.strategy = UPSTREAM_ROUND_ROBIN,
	};

	return scan_pool(conf, pool_names[kind], sl, &p);
}

/* ---- the codec seam ------------------------------------------------------ */

/* Replies that blame the server (or say it is not a beanstalkd): retried
 * on another server and counted against its health.  JOB_TOO_BIG and
 * BURIED are about the job: a healthy server's final answer. */
static bool
status_is_server_error(enum beanstalk_status st)
{
	return st != BEANSTALK_INSERTED && st != BEANSTALK_BURIED &&
	    st != BEANSTALK_JOB_TOO_BIG;
}

static void
bs_begin(void *ud)
{
	struct bs_job *j = ud;

	beanstalk_reply_init(&j->reply, j->tube);
}

static enum upstream_parse
bs_map(struct bs_job *j, enum beanstalk_rc rc)
{
	switch (rc) {
	case BEANSTALK_MORE:
		return UPSTREAM_MORE;
	case BEANSTALK_DONE:
		return status_is_server_error(j->reply.status) ?
		    UPSTREAM_ERROR : UPSTREAM_DONE;
	default:
		return UPSTREAM_ERROR;
	}
}

static enum upstream_parse
bs_feed(void *ud, const uint8_t *p, size_t n, size_t *used)
{
	struct bs_job *j = ud;

	return bs_map(j, beanstalk_reply_feed(&j->reply, p, n, used));
}

static enum upstream_parse
bs_eof(void *ud)
{
	struct bs_job *j = ud;

	return bs_map(j, beanstalk_reply_eof(&j->reply));
}

static bool
bs_keepalive(void *ud)
{
	struct bs_job *j = ud;

	/* after an error answer the put's data may still be unread */
	return j->reply.status == BEANSTALK_INSERTED;
}

static const char *
bs_error(void *ud)
{
	struct bs_job *j = ud;

	return j->reply.error[0] ? j->reply.error : "unreadable reply";
}

static const struct upstream_codec bs_codec = {
	.begin = bs_begin,
	.feed = bs_feed,
	.eof = bs_eof,
	.keepalive = bs_keepalive,
	.error = bs_error,
};

/* ---- jobs ------------------------------------------------------------------ */

static void
job_unlink(struct bs_job *j)
{
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		Q.head = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	Q.n--;
	Q.bytes -= j->bytes;
}

/* Ends J (listed): unlinks it, releases its config (which may free the
 * config and its pools: the engine is done with the request) and frees it. */
static void
job_end(struct bs_job *j)
{
	job_unlink(j);
	conf_unref(j->conf);
	free(j);
}

static void
job_done(void *ud, const struct upstream_result *r)
{
	struct bs_job *j = ud;
	const char *kind = kind_names[j->kind];

	j->req = NULL;		/* the engine frees it after this call */
	if (r->ok && j->reply.status == BEANSTALK_INSERTED) {
		Q.c.sent[j->kind]++;
		log_debug("%s beanstalk: %s job of %" PRIu64 " bytes (qid %s) "
		    "put on %s as job %" PRIu64 " (%.1f ms)", j->sid, kind,
		    j->bytes, j->qid, r->server, j->reply.id, r->ms);
	} else {
		Q.c.failed[j->kind]++;
		log_warning("%s beanstalk: %s job of %" PRIu64 " bytes (qid %s) "
		    "failed after %u attempt%s, %.1f ms: %s%s%s", j->sid, kind,
		    j->bytes, j->qid, r->attempts, r->attempts == 1 ? "" : "s",
		    r->ms, r->ok ? r->server : "", r->ok ? ": " : "",
		    r->ok ? j->reply.error : r->error);
	}
	job_end(j);
}

/* Logs and counts a job that is not sent. */
static bool
job_drop(enum beanstalk_kind kind, const char *sid, const char *qid,
    uint64_t len, const char *why)
{
	Q.c.dropped[kind]++;
	log_warning("%s beanstalk: %s job of %" PRIu64 " bytes (qid %s) "
	    "dropped: %s (%" PRIu64 " %s jobs dropped so far)", sid,
	    kind_names[kind], len, qid, why, Q.c.dropped[kind],
	    kind_names[kind]);
	return false;
}

/* Copies the first LEN bytes of SP to the end of OUT; 0, or -1 with ERR. */
static int
spool_copy(struct mbuf *out, const struct spool *sp, uint64_t len, char *err,
    size_t errlen)
{
	uint8_t *w = mbuf_reserve(out, (size_t)len);
	uint64_t off = 0;

	while (off < len) {
		ssize_t n = spool_read(sp, off, w + off, (size_t)(len - off));

		if (n <= 0) {
			snprintf(err, errlen, "reading the message spool at "
			    "byte %" PRIu64 " failed", off);
			return -1;
		}
		off += (uint64_t)n;
	}
	out->len += (size_t)len;
	return 0;
}

bool
beanstalk_queue_put(const struct rmilter_config *conf,
    enum beanstalk_kind kind, const struct spool *sp, uint64_t len,
    const char *sid, const char *qid)
{
	const struct conf_beanstalk *bc = &conf->sections->beanstalk;
	struct upstream_payload pl;
	struct bs_job *j;
	char why[160];
	uint64_t ttr = bc->lifetime / 1000;

	if (qid == NULL || *qid == '\0')
		qid = "NOQUEUE";
	if (Q.n >= bc->max_queue) {
		snprintf(why, sizeof(why), "%u jobs in flight (max_queue)",
		    Q.n);
		return job_drop(kind, sid, qid, len, why);
	}
	if (len > bc->max_queue_bytes || Q.bytes + len > bc->max_queue_bytes) {
		snprintf(why, sizeof(why), "%" PRIu64 " bytes in flight, "
		    "max_queue_bytes is %" PRIu64, Q.bytes, bc->max_queue_bytes);
		return job_drop(kind, sid, qid, len, why);
	}
	memset(&pl, 0, sizeof(pl));
	if (bc->tube != NULL && strcmp(bc->tube, BEANSTALK_TUBE_DEFAULT) != 0)
		beanstalk_use_build(&pl.head, bc->tube);
	beanstalk_put_head(&pl.head, BS_PRIORITY, 0, (uint32_t)(ttr == 0 ? 1 :
	    ttr > UINT32_MAX ? UINT32_MAX : ttr), len);
	if (spool_copy(&pl.head, sp, len, why, sizeof(why)) < 0) {
		mbuf_free(&pl.head);
		return job_drop(kind, sid, qid, len, why);
	}
	beanstalk_put_tail(&pl.head);
	j = xcalloc(1, sizeof(*j));
	j->conf = conf_ref((struct rmilter_config *)conf);
	j->kind = kind;
	j->bytes = len;
	snprintf(j->sid, sizeof(j->sid), "%s", sid);
	snprintf(j->qid, sizeof(j->qid), "%s", qid);
	if (bc->tube != NULL && strcmp(bc->tube, BEANSTALK_TUBE_DEFAULT) != 0)
		j->tube = bc->tube;
	j->next = Q.head;
	if (Q.head != NULL)
		Q.head->prev = j;
	Q.head = j;
	Q.n++;
	Q.bytes += len;
	j->req = upstream_request(kind_pool(conf, kind), &pl, &bs_codec, j,
	    job_done);
	return true;
}

static void
grace_over(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

void
beanstalk_queue_shutdown(void)
{
	struct event_base *base = daemon_base();
	struct timeval tv = { BS_SHUTDOWN_GRACE_MS / 1000,
	    (BS_SHUTDOWN_GRACE_MS % 1000) * 1000 };
	struct event *timer;
	bool over = false;
	unsigned n;
	uint64_t bytes;

	if (Q.n > 0 && base != NULL) {
		log_notice("beanstalk: waiting up to %.1f s for %u job%s in "
		    "flight", BS_SHUTDOWN_GRACE_MS / 1000.0, Q.n,
		    Q.n == 1 ? "" : "s");
		timer = evtimer_new(base, grace_over, &over);
		evtimer_add(timer, &tv);
		while (Q.n > 0 && !over)
			event_base_loop(base, EVLOOP_ONCE);
		event_free(timer);
	}
	n = Q.n;
	bytes = Q.bytes;
	while (Q.head != NULL) {
		struct bs_job *j = Q.head;

		upstream_request_cancel(j->req);
		Q.c.dropped[j->kind]++;
		job_end(j);
	}
	if (n > 0)
		log_warning("beanstalk: %u job%s (%" PRIu64 " bytes) still in "
		    "flight at exit dropped", n, n == 1 ? "" : "s", bytes);
}

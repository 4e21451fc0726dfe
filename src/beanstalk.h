/* beanstalk.h -- the beanstalk subsystem as the rest of the daemon sees it:
 * the fire-and-forget job queue (beanstalk_queue.c) that the module
 * (mod_beanstalk.c) feeds, its counters (rmilter -s), its shutdown, and
 * the module's load-time checks.
 *
 * A job never delays or fails a message: it is queued after the message's
 * verdict was sent, its bytes are copied out of the message spool at once
 * (the spool goes away with the message), and it is sent from the event
 * loop on the upstream layer (health, timeouts, kept connections).  What is
 * in flight is bounded, over every pool and config generation, by
 * beanstalk.max_queue jobs and beanstalk.max_queue_bytes bytes; a job over
 * either bound is dropped.  Every drop and every failed job is logged once
 * and counted. */
#ifndef RMILTER_BEANSTALK_H
#define RMILTER_BEANSTALK_H

#include <stdbool.h>
#include <stdint.h>

struct conf_diag;
struct rmilter_config;
struct spool;

/* What a job carries, and to which server list it goes. */
enum beanstalk_kind {
	BEANSTALK_HEADERS = 0,	/* servers: headers (or all, id_regexp) */
	BEANSTALK_COPY,		/* copy_server: the whole message */
	BEANSTALK_SPAM,		/* spam_server: the whole message */
	BEANSTALK_NKINDS
};

struct beanstalk_counters {
	uint64_t sent[BEANSTALK_NKINDS];	/* INSERTED */
	uint64_t failed[BEANSTALK_NKINDS];	/* every attempt failed, or
						 * refused by beanstalkd */
	uint64_t dropped[BEANSTALK_NKINDS];	/* never sent: queue full,
						 * unreadable spool, shutdown */
	unsigned inflight;			/* jobs now */
	uint64_t inflight_bytes;		/* their data */
};

/* Queues the first LEN bytes of SP as a job of KIND on the pool of CONF's
 * server list for KIND (which must not be empty).  The bytes are copied
 * before it returns, so SP may be freed right after.  SID and QID (may be
 * NULL) name the message in the logs.  Returns false if the job was dropped
 * (logged and counted); the outcome of a queued job is logged if it fails,
 * and counted either way.  Holds a reference on CONF until the job ends. */
bool beanstalk_queue_put(const struct rmilter_config *conf,
    enum beanstalk_kind kind, const struct spool *sp, uint64_t len,
    const char *sid, const char *qid);

/* The counters since start (all config generations). */
void beanstalk_queue_counters(struct beanstalk_counters *c);

/* "headers", "copy", "spam". */
const char *beanstalk_kind_name(enum beanstalk_kind kind);

/* At exit: runs the event loop up to 2 s while jobs are in flight, then
 * cancels the rest (counted and logged as dropped) and releases their
 * configs.  The daemon calls it after its sessions, listeners and signal
 * events are gone, before it frees its own config and the event base. */
void beanstalk_queue_shutdown(void);

/* Load-time checks of the beanstalk section (pipeline_check_config): an
 * invalid tube is an error; a send_beanstalk_* flag without servers, or
 * servers without their flag, or spam copies without a spam scanner, are
 * warnings with the section's file:line. */
void beanstalk_check_config(const struct rmilter_config *conf,
    struct conf_diag *d);

#endif

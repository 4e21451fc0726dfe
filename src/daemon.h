/* daemon.h -- the process: event loop, listeners, config generations,
 * signals, graceful shutdown.  What sessions need from it. */
#ifndef RMILTER_DAEMON_H
#define RMILTER_DAEMON_H

#include <stdbool.h>

#include <event2/event.h>


struct rmilter_config;

struct event_base *daemon_base(void);
/* The current config generation (NULL before start). */
struct rmilter_config *daemon_conf(void);
/* Unit tests: use BASE and CONF without running the daemon. */
void daemon_test_init(struct event_base *base, struct rmilter_config *conf);
bool daemon_is_draining(void);
/* A session was freed (connection slot available, maybe shutdown done). */
void daemon_session_closed(void);

#endif

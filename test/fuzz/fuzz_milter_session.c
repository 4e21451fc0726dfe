/* fuzz_milter_session.c -- libFuzzer target: arbitrary bytes from an "MTA"
 * into a real session (state machine, macros, test policy, EOM edits) over a
 * socketpair; the session must never crash, leak or hang. */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "milter_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct rmilter_config *conf;

static void
init_once(void)
{
	static const char text[] =
	    "bind_socket = \"inet:1@127.0.0.1\";\ntest_policy = yes;\n"
	    "log_level = error;\n";
	struct conf_diag d;

	log_configure(LOG_TO_STDERR, "fuzz", NULL, NULL, LOG_LEVEL_ERROR);
	conf_diag_init(&d);
	conf = conf_load_buffer("fuzz.conf", text, sizeof(text) - 1, &d);
	conf_diag_free(&d);
	base = event_base_new();
	daemon_test_init(base, conf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sink[65536];
	int sv[2], i, bufsz = 1 << 20;

	if (base == NULL)
		init_once();
	if (size > 256 * 1024)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	milter_session_new(base, sv[0], false, conf);
	if (size > 0 && write(sv[1], data, size) < 0)
		;	/* a full socket buffer is fine: partial input */
	for (i = 0; i < 8; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
	}
	close(sv[1]);
	event_base_loop(base, EVLOOP_NONBLOCK);
	milter_session_free_all();	/* whatever is left (pending delays) */
	return 0;
}

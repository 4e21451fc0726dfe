/*
 * hload.c -- rspamd HTTP load generator, for `make bench` (scan part).
 *
 * POST /checkv2 at a fixed concurrency: one kept-alive HTTP/1.1 connection
 * per concurrent slot, each slot sends its next request as soon as the
 * reply to the previous one is read.  The request carries the headers
 * rmilter's rspamd module sends (Host, Content-Length, IP, Helo, Hostname,
 * From, Rcpt, Queue-Id, MTA-Tag, MTA-Name) and the message mload sends
 * (From, To, Subject, Message-Id, Date, then -b body bytes of 76-column
 * CRLF lines), as rmilter spools it.
 *
 * A reply counts as a scan when it is HTTP 200 with a JSON body that has
 * an "action"; everything else is an error.  A connection the server
 * closes (or answers with "Connection: close") is reopened and counted.
 *
 * One thread, libevent, non-blocking sockets.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o hload hload.c -levent
 */
#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define HLOAD_MAX_REPLY		(4u << 20)
#define HLOAD_MAX_ERRLOG	10
#define HLOAD_NACTIONS		7

static const char *const hload_actions[HLOAD_NACTIONS] = {
	"no action", "greylist", "add header", "rewrite subject",
	"soft reject", "reject", "other"
};

struct hload_buf {
	char	*data;
	size_t	 len;
	size_t	 off;
	size_t	 cap;
};

struct hload_conn {
	int		 fd;
	unsigned	 id;
	int		 connected;
	int		 busy;		/* a request is out */
	struct event	*ev_read;
	struct event	*ev_write;
	struct event	*ev_timer;
	struct hload_buf wbuf;
	struct hload_buf rbuf;
	double		 t_sent;
	/* reply parser */
	int		 head_done;
	int		 status;
	size_t		 body_off;	/* where the body starts in rbuf */
	long long	 clen;		/* -1: unknown */
	int		 chunked;
	int		 close_after;
};

/* Options. */
static const char	*opt_addr = "127.0.0.1:11333";
static unsigned		 opt_conc = 10;
static unsigned		 opt_total = 1000;
static size_t		 opt_body = 2048;
static double		 opt_timeout = 60;
static double		 opt_req_timeout = 30;
static const char	*opt_ip = "127.0.0.1";
static const char	*opt_host = "localhost";
static const char	*opt_helo = "client.test.example";
static int		 opt_json;
static const char	*opt_label = "";
static int		 opt_verbose;

/* Run state. */
static struct sockaddr_in hload_sa;
static struct event_base *hload_base;
static struct hload_conn *hload_conns;
static char		*hload_body;
static unsigned		 hload_sent;		/* requests started */
static unsigned		 hload_done;		/* replies (any) + failed */
static double		 hload_start;
static double		*hload_lat;
static unsigned		 hload_nlat;

/* Results. */
static unsigned long	 hload_ok;
static unsigned long	 hload_errors;
static unsigned long	 hload_non200;
static unsigned long	 hload_noaction;
static unsigned long	 hload_connects;
static unsigned long	 hload_server_closes;
static unsigned long	 hload_timeouts;
static unsigned long	 hload_unfinished;
static unsigned long	 hload_act[HLOAD_NACTIONS];
static unsigned		 hload_errlogged;
static int		 hload_stopping;

static void	hload_die(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
static void	conn_fail(struct hload_conn *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	conn_next(struct hload_conn *);
static void	conn_open(struct hload_conn *);

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hload [-a HOST:PORT] [-c conc] [-n total] [-b body-bytes] "
	    "[-t run-timeout-s]\n"
	    "             [-T request-timeout-s] [-I client-ip] "
	    "[-h client-hostname] [-j] [-v] [-L label]\n"
	    "  POST /checkv2 over one kept-alive connection per slot "
	    "(default %s)\n", opt_addr);
	exit(2);
}

static void
hload_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("hload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
buf_reserve(struct hload_buf *b, size_t more)
{
	if (b->cap - b->len >= more)
		return;
	if (b->off > 0 && b->off == b->len) {
		b->off = b->len = 0;
		if (b->cap >= more)
			return;
	}
	while (b->cap - b->len < more)
		b->cap = b->cap ? b->cap * 2 : 8192;
	if ((b->data = realloc(b->data, b->cap)) == NULL)
		hload_die("out of memory");
}

static void
buf_printf(struct hload_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			hload_die("vsnprintf");
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		buf_reserve(b, (size_t)n + 1);
	}
}

static void
buf_put(struct hload_buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* ---- connections ------------------------------------------------------------ */

static void
conn_close(struct hload_conn *c)
{
	if (c->fd >= 0) {
		event_del(c->ev_read);
		event_del(c->ev_write);
		event_free(c->ev_read);
		event_free(c->ev_write);
		c->ev_read = c->ev_write = NULL;
		close(c->fd);
		c->fd = -1;
	}
	c->connected = 0;
	c->rbuf.len = c->rbuf.off = 0;
	c->wbuf.len = c->wbuf.off = 0;
}

static void
hload_maybe_stop(void)
{
	if (hload_done >= opt_total)
		event_base_loopbreak(hload_base);
}

static void
conn_fail(struct hload_conn *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (hload_errlogged++ < HLOAD_MAX_ERRLOG)
		fprintf(stderr, "hload: conn %u: %s\n", c->id, why);
	if (c->busy) {
		hload_errors++;
		hload_done++;
		c->busy = 0;
	}
	evtimer_del(c->ev_timer);
	conn_close(c);
	hload_maybe_stop();
	if (!hload_stopping)
		conn_next(c);
}

static int
conn_flush(struct hload_conn *c)
{
	struct hload_buf *b = &c->wbuf;

	while (b->off < b->len) {
		ssize_t n = write(c->fd, b->data + b->off, b->len - b->off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				event_add(c->ev_write, NULL);
				return 0;
			}
			conn_fail(c, "write: %s", strerror(errno));
			return -1;
		}
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	return 0;
}

/* Queue request number `seq` on c. */
static void
conn_request(struct hload_conn *c, unsigned seq)
{
	char qid[16], hdrs[1024];
	int hlen;

	snprintf(qid, sizeof(qid), "%011X", seq + 1);
	hlen = snprintf(hdrs, sizeof(hdrs),
	    "From: Bench Sender <bench@test.example>\r\n"
	    "To: <rcpt1@dest.example>\r\n"
	    "Subject: bench message %s\r\n"
	    "Message-Id: <%s.%u@test.example>\r\n"
	    "Date: Sat, 22 Nov 2025 03:30:00 +0000\r\n"
	    "\r\n", qid, qid, c->id);
	buf_printf(&c->wbuf,
	    "POST /checkv2 HTTP/1.1\r\n"
	    "Host: rspamd\r\n"
	    "Content-Length: %zu\r\n"
	    "IP: %s\r\n"
	    "Helo: %s\r\n"
	    "%s%s%s"
	    "From: bench@test.example\r\n"
	    "Rcpt: rcpt1@dest.example\r\n"
	    "Queue-Id: %s\r\n"
	    "MTA-Tag: mx.test.example\r\n"
	    "MTA-Name: mx.test.example\r\n"
	    "\r\n", (size_t)hlen + opt_body, opt_ip, opt_helo,
	    *opt_host ? "Hostname: " : "", opt_host, *opt_host ? "\r\n" : "",
	    qid);
	buf_put(&c->wbuf, hdrs, (size_t)hlen);
	buf_put(&c->wbuf, hload_body, opt_body);
	c->busy = 1;
	c->head_done = 0;
	c->status = 0;
	c->clen = -1;
	c->chunked = 0;
	c->close_after = 0;
	c->t_sent = now_ms();
	{
		struct timeval tv = { (time_t)opt_req_timeout, 0 };

		evtimer_add(c->ev_timer, &tv);
	}
	if (c->connected)
		conn_flush(c);
	else
		event_add(c->ev_write, NULL);
}

/* Start the next request on c, if any is left. */
static void
conn_next(struct hload_conn *c)
{
	if (hload_sent >= opt_total || hload_stopping) {
		if (c->fd >= 0)
			conn_close(c);
		return;
	}
	if (c->fd < 0)
		conn_open(c);
	if (c->fd < 0)
		return;
	conn_request(c, hload_sent++);
}

static void
reply_done(struct hload_conn *c, const char *body, size_t blen)
{
	const char *p, *end = body + blen;
	int i;

	evtimer_del(c->ev_timer);
	c->busy = 0;
	hload_done++;
	if (hload_nlat < opt_total)
		hload_lat[hload_nlat++] = now_ms() - c->t_sent;
	if (c->status != 200) {
		hload_non200++;
		hload_errors++;
		if (hload_errlogged++ < HLOAD_MAX_ERRLOG)
			fprintf(stderr, "hload: conn %u: HTTP %d: %.*s\n",
			    c->id, c->status, (int)(blen > 200 ? 200 : blen),
			    body);
		return;
	}
	p = memmem(body, blen, "\"action\"", 8);
	if (p == NULL) {
		hload_noaction++;
		hload_errors++;
		if (hload_errlogged++ < HLOAD_MAX_ERRLOG)
			fprintf(stderr, "hload: conn %u: no action in reply: "
			    "%.*s\n", c->id, (int)(blen > 200 ? 200 : blen),
			    body);
		return;
	}
	if (opt_verbose && c->id == 0)
		fprintf(stderr, "hload: reply: %.*s\n",
		    (int)(blen > 600 ? 600 : blen), body);
	p += 8;
	while (p < end && (*p == ' ' || *p == ':'))
		p++;
	if (p < end && *p == '"')
		p++;
	for (i = 0; i < HLOAD_NACTIONS - 1; i++) {
		size_t l = strlen(hload_actions[i]);

		if ((size_t)(end - p) > l && memcmp(p, hload_actions[i], l) == 0
		    && p[l] == '"')
			break;
	}
	hload_act[i]++;
	hload_ok++;
}

/* Try to parse a complete reply from rbuf.  1: one consumed, 0: need more,
 * -1: c was failed. */
static int
conn_parse(struct hload_conn *c)
{
	struct hload_buf *b = &c->rbuf;
	char *s = b->data + b->off;
	size_t avail = b->len - b->off;

	if (!c->head_done) {
		char *eoh = memmem(s, avail, "\r\n\r\n", 4), *line, *nl;

		if (eoh == NULL) {
			if (avail > 65536) {
				conn_fail(c, "reply head too long");
				return -1;
			}
			return 0;
		}
		if (avail < 12 || memcmp(s, "HTTP/1.", 7) != 0) {
			conn_fail(c, "not an HTTP reply: %.40s", s);
			return -1;
		}
		c->status = atoi(s + 9);
		line = memchr(s, '\n', (size_t)(eoh - s)) ;
		while (line != NULL && line < eoh) {
			line++;
			nl = memchr(line, '\r', (size_t)(eoh + 2 - line));
			if (nl == NULL)
				break;
			if (strncasecmp(line, "Content-Length:", 15) == 0)
				c->clen = atoll(line + 15);
			else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0
			    && memmem(line, (size_t)(nl - line), "chunked", 7))
				c->chunked = 1;
			else if (strncasecmp(line, "Connection:", 11) == 0 &&
			    memmem(line, (size_t)(nl - line), "close", 5))
				c->close_after = 1;
			line = nl + 1;
		}
		if (memcmp(s, "HTTP/1.0", 8) == 0 && !c->close_after) {
			/* 1.0 without keep-alive: the server closes */
			c->close_after = 1;
		}
		c->head_done = 1;
		c->body_off = (size_t)(eoh + 4 - b->data);
		if (c->chunked) {
			conn_fail(c, "chunked replies are not supported");
			return -1;
		}
		if (c->clen < 0 && !c->close_after) {
			conn_fail(c, "reply without Content-Length");
			return -1;
		}
		if (c->clen > (long long)HLOAD_MAX_REPLY) {
			conn_fail(c, "reply too long (%lld)", c->clen);
			return -1;
		}
	}
	if (c->clen < 0)
		return 0;	/* read to EOF */
	if (b->len - c->body_off < (size_t)c->clen)
		return 0;
	reply_done(c, b->data + c->body_off, (size_t)c->clen);
	b->off = c->body_off + (size_t)c->clen;
	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->off != b->len) {
		conn_fail(c, "%zu bytes after the reply", b->len - b->off);
		return -1;
	}
	return 1;
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct hload_conn *c = arg;
	int r, eof = 0;

	(void)what;
	for (;;) {
		ssize_t n;

		buf_reserve(&c->rbuf, 16384);
		n = read(fd, c->rbuf.data + c->rbuf.len,
		    c->rbuf.cap - c->rbuf.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_fail(c, "read: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			eof = 1;
			break;
		}
		c->rbuf.len += (size_t)n;
	}
	if (!c->busy) {
		if (c->rbuf.len > c->rbuf.off) {
			conn_fail(c, "data while no request is out");
			return;
		}
		if (eof) {
			/* idle keep-alive closed by the server */
			hload_server_closes++;
			conn_close(c);
		}
		return;
	}
	r = conn_parse(c);
	if (r < 0)
		return;
	if (r == 0) {
		if (!eof)
			return;
		if (!c->head_done || c->clen >= 0) {
			conn_fail(c, "server closed the connection mid-reply");
			return;
		}
		/* body delimited by EOF */
		reply_done(c, c->rbuf.data + c->body_off,
		    c->rbuf.len - c->body_off);
		c->close_after = 1;
	}
	if (c->close_after || eof) {
		hload_server_closes++;
		conn_close(c);
	}
	hload_maybe_stop();
	conn_next(c);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
	struct hload_conn *c = arg;

	(void)what;
	if (!c->connected) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err != 0) {
			conn_fail(c, "connect: %s", strerror(err));
			return;
		}
		c->connected = 1;
	}
	conn_flush(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct hload_conn *c = arg;

	(void)fd;
	(void)what;
	hload_timeouts++;
	conn_fail(c, "no reply within %.0f s", opt_req_timeout);
}

static void
conn_open(struct hload_conn *c)
{
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		hload_die("socket: %s", strerror(errno));
	/* rmilter sets TCP_NODELAY on its upstream sockets too */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&hload_sa, sizeof(hload_sa)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		if (hload_errlogged++ < HLOAD_MAX_ERRLOG)
			fprintf(stderr, "hload: conn %u: connect: %s\n", c->id,
			    strerror(errno));
		hload_errors++;
		hload_done++;
		hload_sent++;
		hload_maybe_stop();
		return;
	}
	c->fd = fd;
	c->connected = 0;
	c->ev_read = event_new(hload_base, fd, EV_READ | EV_PERSIST, on_read,
	    c);
	c->ev_write = event_new(hload_base, fd, EV_WRITE, on_write, c);
	if (c->ev_read == NULL || c->ev_write == NULL)
		hload_die("event_new");
	event_add(c->ev_read, NULL);
	hload_connects++;
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(hload_base);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double p)
{
	size_t i;

	if (hload_nlat == 0)
		return 0;
	i = (size_t)(p * (hload_nlat - 1) + 0.5);
	return hload_lat[i];
}

static void
report(double elapsed)
{
	double mps = elapsed > 0 ? hload_ok / (elapsed / 1e3) : 0;
	struct rusage ru;
	double self_cpu = 0;
	int i, first;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		self_cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	qsort(hload_lat, hload_nlat, sizeof(double), cmp_double);
	if (opt_json) {
		printf("{\"label\":\"%s\",\"addr\":\"%s\",\"concurrency\":%u,"
		    "\"total\":%u,\"body\":%zu,\"messages\":%lu,"
		    "\"errors\":%lu,\"non200\":%lu,\"no_action\":%lu,"
		    "\"timeouts\":%lu,\"unfinished\":%lu,\"connects\":%lu,"
		    "\"server_closes\":%lu,\"elapsed_s\":%.3f,"
		    "\"msgs_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
		    "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"hload_cpu_s\":%.2f,"
		    "\"actions\":{",
		    opt_label, opt_addr, opt_conc, opt_total, opt_body,
		    hload_ok, hload_errors, hload_non200, hload_noaction,
		    hload_timeouts, hload_unfinished, hload_connects,
		    hload_server_closes, elapsed / 1e3, mps, pct(0.5),
		    pct(0.9), pct(0.99), pct(1.0), self_cpu);
		first = 1;
		for (i = 0; i < HLOAD_NACTIONS; i++)
			if (hload_act[i]) {
				printf("%s\"%s\":%lu", first ? "" : ",",
				    hload_actions[i], hload_act[i]);
				first = 0;
			}
		printf("}}\n");
		return;
	}
	printf("target      http://%s/checkv2 %s\n", opt_addr, opt_label);
	printf("load        concurrency %u, %u requests, %zu body bytes\n",
	    opt_conc, opt_total, opt_body);
	printf("scans       %lu\n", hload_ok);
	printf("errors      %lu (non-200 %lu, no action %lu, timeouts %lu, "
	    "unfinished %lu)\n", hload_errors, hload_non200, hload_noaction,
	    hload_timeouts, hload_unfinished);
	printf("connections %lu opened, %lu closed by the server\n",
	    hload_connects, hload_server_closes);
	printf("elapsed     %.3f s\n", elapsed / 1e3);
	printf("msgs/s      %.1f\n", mps);
	printf("latency ms  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
	    pct(0.5), pct(0.9), pct(0.99), pct(1.0));
	printf("hload cpu   %.2f s\n", self_cpu);
	printf("actions    ");
	for (i = 0; i < HLOAD_NACTIONS; i++)
		if (hload_act[i])
			printf(" \"%s\"=%lu", hload_actions[i], hload_act[i]);
	printf("\n");
}

static unsigned long
parse_num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	struct event *deadline;
	struct timeval tv;
	struct rlimit rl;
	char host[64];
	const char *colon;
	size_t i;
	int ch;

	while ((ch = getopt(argc, argv, "a:c:n:b:t:T:I:h:jvL:")) != -1) {
		switch (ch) {
		case 'a': opt_addr = optarg; break;
		case 'c': opt_conc = parse_num(optarg); break;
		case 'n': opt_total = parse_num(optarg); break;
		case 'b': opt_body = parse_num(optarg); break;
		case 't': opt_timeout = parse_num(optarg); break;
		case 'T': opt_req_timeout = parse_num(optarg); break;
		case 'I': opt_ip = optarg; break;
		case 'h': opt_host = optarg; break;
		case 'j': opt_json = 1; break;
		case 'v': opt_verbose = 1; break;
		case 'L': opt_label = optarg; break;
		default: usage();
		}
	}
	if (opt_conc < 1 || opt_total < 1 || opt_timeout < 1 ||
	    opt_req_timeout < 1 || opt_conc > 60000)
		usage();
	colon = strrchr(opt_addr, ':');
	if (colon == NULL || (size_t)(colon - opt_addr) >= sizeof(host))
		hload_die("bad address %s (HOST:PORT)", opt_addr);
	memcpy(host, opt_addr, (size_t)(colon - opt_addr));
	host[colon - opt_addr] = '\0';
	memset(&hload_sa, 0, sizeof(hload_sa));
	hload_sa.sin_family = AF_INET;
	hload_sa.sin_port = htons((uint16_t)parse_num(colon + 1));
	if (inet_pton(AF_INET, host, &hload_sa.sin_addr) != 1)
		hload_die("bad IPv4 address %s", host);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)opt_conc + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Body: the same bytes as mload's (76-character CRLF lines). */
	if ((hload_body = malloc(opt_body + 1)) == NULL)
		hload_die("out of memory");
	for (i = 0; i < opt_body; i++) {
		size_t col = i % 78;

		hload_body[i] = col == 76 ? '\r' : col == 77 ? '\n' :
		    "abcdefghijklmnopqrstuvwxyz0123456789"[(i / 78 + col) % 36];
	}
	if (opt_body >= 2) {
		hload_body[opt_body - 2] = '\r';
		hload_body[opt_body - 1] = '\n';
	}

	if ((hload_base = event_base_new()) == NULL)
		hload_die("event_base_new");
	hload_conns = calloc(opt_conc, sizeof(*hload_conns));
	hload_lat = calloc(opt_total, sizeof(double));
	if (hload_conns == NULL || hload_lat == NULL)
		hload_die("out of memory");
	deadline = evtimer_new(hload_base, on_deadline, NULL);
	tv.tv_sec = (time_t)opt_timeout;
	tv.tv_usec = 0;
	evtimer_add(deadline, &tv);

	hload_start = now_ms();
	for (i = 0; i < opt_conc; i++) {
		struct hload_conn *c = &hload_conns[i];

		c->fd = -1;
		c->id = (unsigned)i;
		c->ev_timer = evtimer_new(hload_base, on_timer, c);
		if (c->ev_timer == NULL)
			hload_die("evtimer_new");
		conn_next(c);
	}
	if (hload_done < opt_total)
		event_base_dispatch(hload_base);
	hload_stopping = 1;
	{
		double elapsed = now_ms() - hload_start;

		hload_unfinished = opt_total - hload_done;
		hload_errors += hload_unfinished;
		for (i = 0; i < opt_conc; i++) {
			evtimer_del(hload_conns[i].ev_timer);
			conn_close(&hload_conns[i]);
		}
		report(elapsed);
	}
	return hload_errors > 0 ? 1 : 0;
}

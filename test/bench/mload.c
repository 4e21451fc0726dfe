/*
 * mload.c -- milter-protocol load generator (the MTA side), for `make bench`.
 *
 * One thread, non-blocking sockets on an epoll loop.  Every connection
 * speaks exactly what Postfix 3.7 speaks (docs: milter-protocol.md §8):
 * OPTNEG, D'C'+CONNECT, D'H'+HELO, then per message D'M'+MAIL,
 * D'R'+RCPT..., D'T'+DATA, D'L'+HEADER..., D'N'+EOH, D'B'+BODY...,
 * D'E'+EOB, the EOB modifications and final decision, ABORT; after the
 * last message ABORT, ABORT, QUIT and close.
 *
 * The NO* and NR_* bits the milter returns in its OPTNEG reply are
 * honoured: suppressed events are not sent (their macros still are, as
 * Postfix does), and no reply is awaited for NR_* events, so consecutive
 * no-reply events leave in one write().
 *
 * Latency of a message = MAIL written -> final EOB reply read.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o mload mload.c
 */
#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Protocol constants (mfdef.h). */
#define SMFIP_NOCONNECT		0x00000001u
#define SMFIP_NOHELO		0x00000002u
#define SMFIP_NOMAIL		0x00000004u
#define SMFIP_NORCPT		0x00000008u
#define SMFIP_NOBODY		0x00000010u
#define SMFIP_NOHDRS		0x00000020u
#define SMFIP_NOEOH		0x00000040u
#define SMFIP_NR_HDR		0x00000080u
#define SMFIP_NOUNKNOWN		0x00000100u
#define SMFIP_NODATA		0x00000200u
#define SMFIP_NR_CONN		0x00001000u
#define SMFIP_NR_HELO		0x00002000u
#define SMFIP_NR_MAIL		0x00004000u
#define SMFIP_NR_RCPT		0x00008000u
#define SMFIP_NR_DATA		0x00010000u
#define SMFIP_NR_EOH		0x00040000u
#define SMFIP_NR_BODY		0x00080000u
#define SMFIP_HDR_LEADSPC	0x00100000u

#define MLOAD_VERSION		6u
#define MLOAD_ACTIONS		0x1FFu
#define MLOAD_CHUNK		65535u		/* Postfix MILTER_CHUNK_SIZE */
#define MLOAD_MAX_FRAME		(16u << 20)	/* sanity cap on a reply */
#define MLOAD_TRACE_LEN		96		/* per-connection frame trace */
#define MLOAD_MAX_ERRLOG	10		/* errors printed in detail */
#define MLOAD_DRAIN_MS		1000		/* wait for the milter's close */

/* Where a connection is in the Postfix sequence. */
enum mload_stage {
	ST_CONNECTING,
	ST_OPTNEG,
	ST_CONNECT,
	ST_HELO,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_HDR,
	ST_EOH,
	ST_BODY,
	ST_EOB,
	ST_NEXT,		/* message finished: ABORT + next or QUIT */
	ST_DRAIN,		/* QUIT written, waiting for the milter's EOF */
	ST_DONE
};

static const char *const mload_stage_names[] = {
	"CONNECTING", "OPTNEG", "CONNECT", "HELO", "MAIL", "RCPT", "DATA",
	"HEADER", "EOH", "BODY", "EOB", "NEXT", "DRAIN", "DONE"
};

struct mload_buf {
	char		*data;
	size_t		 len;
	size_t		 off;		/* consumed prefix (write side) */
	size_t		 cap;
};

struct mload_conn {
	int		 fd;
	unsigned	 id;
	enum mload_stage stage;
	int		 waiting;	/* a reply to `stage` is awaited */
	unsigned	 idx;		/* rcpt / header / body chunk index */
	unsigned	 msgs_left;	/* messages still to send */
	unsigned	 msgs_total;
	int		 msg_open;	/* MAIL sent, no final reply yet */
	uint32_t	 proto;		/* negotiated protocol bits */
	unsigned	 version;
	int		 epout;		/* EPOLLOUT currently registered */
	int		 free_slot;	/* counted in the concurrency window */
	double		 t_mail;
	double		 deadline;
	unsigned	 qid;
	char		 from[256];	/* envelope sender of the open message */
	char		 yclass;	/* a 'y' reply's code class (-f) */
	struct mload_buf rbuf;
	struct mload_buf wbuf;
	char		 trace[MLOAD_TRACE_LEN];
	unsigned	 tlen;
	struct mload_conn *next_free;
};

/* Options. */
static const char	*opt_socket = "inet:23461@127.0.0.1";
static unsigned		 opt_conc = 10;
static unsigned		 opt_total = 1000;
static unsigned		 opt_per_conn = 1;
static unsigned		 opt_rcpts = 1;
static size_t		 opt_body = 2048;
static unsigned		 opt_hdrs;
static uint32_t		 opt_proto = 0x1FFFFFu;
static int		 opt_addhdr;
static double		 opt_timeout = 120;
static double		 opt_conn_timeout = 30;
static int		 opt_json;
static int		 opt_verbose;
static int		 opt_nodelay;
static const char	*opt_label = "";
static const char	*opt_client_ip = "127.0.0.1";	/* CONNECT address */
static const char	*opt_client_name = "localhost";	/* CONNECT hostname */
static const char	*opt_from_fmt;		/* -F: NULL = bench@test.example */
static const char	*opt_rcpt_fmt;		/* -R: NULL = rcpt%r@dest.example */
static unsigned		 opt_msg_base;		/* -o: added to message numbers */
static int		 opt_final_at;		/* -f: finals per stage */

/* Target address. */
static struct sockaddr_storage	mload_addr;
static socklen_t		mload_addrlen;
static int			mload_is_unix;

/* Run state. */
static int			 mload_ep = -1;
static struct mload_conn	*mload_conns;
static unsigned			 mload_nconns;
static unsigned			 mload_next_conn;	/* next to start */
static unsigned			 mload_active;		/* in window */
static unsigned			 mload_open_fds;
static double			 mload_connect_pause;	/* EAGAIN backoff */
static char			*mload_body;
static unsigned			 mload_qid_seq;

/* Results. */
static double		*mload_lat;		/* ms, per completed message */
static unsigned		 mload_nlat;
static unsigned long	 mload_ok;
static unsigned long	 mload_errors;
static unsigned long	 mload_conn_errors;
static unsigned long	 mload_timeouts;
static unsigned long	 mload_unfinished;
static unsigned long	 mload_finals[256];
static unsigned long	 mload_mods[256];
static unsigned long	 mload_final_at[ST_DONE + 1][256];
static unsigned long	 mload_noclose;
static unsigned		 mload_errlogged;
static uint32_t		 mload_neg_proto;
static uint32_t		 mload_neg_actions;
static unsigned		 mload_neg_version;
static int		 mload_negotiated;
static int		 mload_warned_bits;

static void	usage(void) __attribute__((noreturn));
static double	now_ms(void);
static void	mload_die(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
static int	mload_parse_socket(const char *);
static void	buf_reserve(struct mload_buf *, size_t);
static void	frame_begin(struct mload_buf *, char, size_t *);
static void	frame_end(struct mload_buf *, size_t);
static void	frame_put(struct mload_buf *, const void *, size_t);
static void	frame_puts(struct mload_buf *, const char *);
static void	frame_put32(struct mload_buf *, uint32_t);
static void	conn_trace(struct mload_conn *, char, char);
static void	conn_start(struct mload_conn *);
static void	conn_fail(struct mload_conn *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	conn_close(struct mload_conn *);
static void	conn_release_slot(struct mload_conn *);
static int	conn_flush(struct mload_conn *);
static void	conn_step(struct mload_conn *);
static void	conn_on_frame(struct mload_conn *, char, const char *,
		    uint32_t);
static void	conn_on_readable(struct mload_conn *);
static void	conn_on_writable(struct mload_conn *);
static void	conn_set_out(struct mload_conn *, int);
static void	conn_message_done(struct mload_conn *, char);
static void	mload_fill_window(double);
static void	mload_check_timers(double);
static int	cmp_double(const void *, const void *);

static void
usage(void)
{
	fprintf(stderr,
	    "usage: mload [-s SOCKET] [-c conc] [-n total] [-m per-conn] "
	    "[-r rcpts] [-b body-bytes]\n"
	    "             [-H extra-headers] [-p proto-hex] [-A] "
	    "[-t run-timeout-s] [-T conn-timeout-s]\n"
	    "             [-j] [-v] [-N] [-L label] [-I client-ip] "
	    "[-i client-hostname]\n"
	    "             [-F sender-fmt] [-R rcpt-fmt] [-o msg-base] [-f]\n"
	    "  -s inet:PORT@HOST | unix:/path   (default %s)\n"
	    "  -p protocol bits offered in OPTNEG (default 0x1FFFFF)\n"
	    "  -A add 'X-Rmilter-Test: addheader X-Bench yes'\n"
	    "  -N set TCP_NODELAY on the MTA side (Postfix does not)\n"
	    "  -I/-i the SMTP client's IPv4 address and name in CONNECT "
	    "(default 127.0.0.1, localhost)\n"
	    "  -F/-R envelope sender / recipient formats: %%m message number "
	    "(1.., plus -o),\n"
	    "     %%r recipient number (1..), %%c connection number, %%%% "
	    "a %%; -F '' is the null\n"
	    "     sender (default bench@test.example, rcpt%%r@dest.example)\n"
	    "  -f count the final replies per stage (finals_at; a 'y' reply "
	    "code as T 4xx,\n"
	    "     R 5xx, Y other)\n"
	    "  -j one JSON line on stdout; -v trace connection 0's frames\n",
	    opt_socket);
	exit(2);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
mload_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/*
 * Parse inet:PORT@HOST or unix:/path (also local:) into mload_addr.
 * Returns 0, or -1 on a malformed spec.
 */
static int
mload_parse_socket(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&mload_addr;
		const char *path = strchr(spec, ':') + 1;

		if (strlen(path) >= sizeof(sun->sun_path))
			return -1;
		memset(sun, 0, sizeof(*sun));
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		mload_addrlen = sizeof(*sun);
		mload_is_unix = 1;
		return 0;
	}
	if (strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0) {
		struct addrinfo hints, *res;
		char port[16], host[256];
		const char *p = strchr(spec, ':') + 1;
		const char *at = strchr(p, '@');

		if (at == NULL || (size_t)(at - p) >= sizeof(port) ||
		    strlen(at + 1) >= sizeof(host))
			return -1;
		memcpy(port, p, at - p);
		port[at - p] = '\0';
		strcpy(host, at + 1);
		if (host[0] == '[') {
			memmove(host, host + 1, strlen(host));
			host[strcspn(host, "]")] = '\0';
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, port, &hints, &res) != 0)
			return -1;
		memcpy(&mload_addr, res->ai_addr, res->ai_addrlen);
		mload_addrlen = res->ai_addrlen;
		freeaddrinfo(res);
		return 0;
	}
	return -1;
}

static void
buf_reserve(struct mload_buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + more <= b->cap)
			return;
	}
	while (b->cap < b->len + more)
		b->cap = b->cap ? b->cap * 2 : 1024;
	if ((b->data = realloc(b->data, b->cap)) == NULL)
		mload_die("out of memory");
}

/* Start a frame with command `cmd`; *mark remembers where its length goes. */
static void
frame_begin(struct mload_buf *b, char cmd, size_t *mark)
{
	buf_reserve(b, 5);
	*mark = b->len;
	b->len += 4;
	b->data[b->len++] = cmd;
}

static void
frame_end(struct mload_buf *b, size_t mark)
{
	uint32_t n = htonl((uint32_t)(b->len - mark - 4));

	memcpy(b->data + mark, &n, 4);
}

static void
frame_put(struct mload_buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* Append a C string with its NUL. */
static void
frame_puts(struct mload_buf *b, const char *s)
{
	frame_put(b, s, strlen(s) + 1);
}

static void
frame_put32(struct mload_buf *b, uint32_t v)
{
	v = htonl(v);
	frame_put(b, &v, 4);
}

/* Record one frame in the connection's trace: dir '>' sent, '<' read. */
static void
conn_trace(struct mload_conn *c, char dir, char cmd)
{
	if (c->tlen + 3 >= MLOAD_TRACE_LEN) {
		memmove(c->trace, c->trace + 30, c->tlen - 30);
		c->tlen -= 30;
		c->trace[0] = '.';
		c->trace[1] = '.';
	}
	if (opt_verbose && c->id == 0)
		fprintf(stderr, "mload: conn 0 %c '%c'\n", dir, cmd);
	c->trace[c->tlen++] = dir;
	c->trace[c->tlen++] = (cmd >= 0x20 && cmd < 0x7f) ? cmd : '?';
	c->trace[c->tlen++] = ' ';
	c->trace[c->tlen] = '\0';
}

/* Append a D (macro) frame for `stage` with NULL-terminated name/value list. */
static void
emit_macros(struct mload_conn *c, char stage, const char *const *kv)
{
	size_t m;

	frame_begin(&c->wbuf, 'D', &m);
	frame_put(&c->wbuf, &stage, 1);
	for (; kv != NULL && kv[0] != NULL; kv += 2) {
		frame_puts(&c->wbuf, kv[0]);
		frame_puts(&c->wbuf, kv[1]);
	}
	frame_end(&c->wbuf, m);
	conn_trace(c, '>', 'D');
}

/* Append a command frame with raw data. */
static void
emit_cmd(struct mload_conn *c, char cmd, const void *data, size_t len)
{
	size_t m;

	frame_begin(&c->wbuf, cmd, &m);
	if (len > 0)
		frame_put(&c->wbuf, data, len);
	frame_end(&c->wbuf, m);
	conn_trace(c, '>', cmd);
}

/*
 * Expand an address format (-F, -R): %m message number, %r recipient
 * number, %c connection number, %% a percent sign; anything else as is.
 */
static void
addr_expand(char *out, size_t len, const char *fmt, unsigned m, unsigned r,
    unsigned cid)
{
	size_t o = 0;
	int n;

	for (; *fmt != '\0' && o + 1 < len; fmt++) {
		unsigned v;

		if (fmt[0] != '%' || fmt[1] == '\0') {
			out[o++] = *fmt;
			continue;
		}
		switch (fmt[1]) {
		case 'm': v = m; break;
		case 'r': v = r; break;
		case 'c': v = cid; break;
		case '%':
			out[o++] = '%';
			fmt++;
			continue;
		default:
			out[o++] = *fmt;
			continue;
		}
		fmt++;
		n = snprintf(out + o, len - o, "%u", v);
		if (n < 0 || (size_t)n >= len - o) {
			o = len - 1;
			break;
		}
		o += (size_t)n;
	}
	out[o] = '\0';
}

static void
emit_header(struct mload_conn *c, const char *qid, const char *name,
    const char *value)
{
	const char *kv[] = { "i", qid, NULL };
	size_t m;

	emit_macros(c, 'L', kv);
	if (c->proto & SMFIP_NOHDRS)
		return;
	frame_begin(&c->wbuf, 'L', &m);
	frame_puts(&c->wbuf, name);
	if (c->proto & SMFIP_HDR_LEADSPC)
		frame_put(&c->wbuf, " ", 1);
	frame_puts(&c->wbuf, value);
	frame_end(&c->wbuf, m);
	conn_trace(c, '>', 'L');
}

/* Number of header lines per message (5 standard + extras + -A). */
static unsigned
msg_nheaders(void)
{
	return 5 + opt_hdrs + (opt_addhdr ? 1 : 0);
}

static unsigned
msg_nchunks(void)
{
	return opt_body == 0 ? 0 : (unsigned)((opt_body + MLOAD_CHUNK - 1) /
	    MLOAD_CHUNK);
}

/*
 * Append the frames of the current stage and move on while no reply is
 * needed; stop (c->waiting = 1) at the first event whose reply we must read,
 * or at a terminal stage.  Then write everything in one go.
 */
static void
conn_step(struct mload_conn *c)
{
	char qid[16], buf[512], val[256];
	uint32_t p = c->proto;

	snprintf(qid, sizeof(qid), "%011X", c->qid);
	while (!c->waiting && c->stage != ST_DRAIN && c->stage != ST_DONE) {
		switch (c->stage) {
		case ST_OPTNEG: {
			size_t m;

			frame_begin(&c->wbuf, 'O', &m);
			frame_put32(&c->wbuf, MLOAD_VERSION);
			frame_put32(&c->wbuf, MLOAD_ACTIONS);
			frame_put32(&c->wbuf, opt_proto);
			frame_end(&c->wbuf, m);
			conn_trace(c, '>', 'O');
			c->waiting = 1;
			break;
		}
		case ST_CONNECT: {
			const char *kv[] = {
				"j", "mx.test.example",
				"{daemon_name}", "mx.test.example",
				"{daemon_addr}", "127.0.0.1",
				"v", "Postfix 3.7.11",
				"_", val, NULL };
			uint16_t cport = htons((uint16_t)(10000 + c->id % 50000));
			size_t nl = strlen(opt_client_name) + 1;
			size_t il = strlen(opt_client_ip) + 1;

			snprintf(val, sizeof(val), "%s [%s]", opt_client_name,
			    opt_client_ip);
			emit_macros(c, 'C', kv);
			if (!(p & SMFIP_NOCONNECT)) {
				/* "localhost\0" '4' port "127.0.0.1\0" */
				memcpy(buf, opt_client_name, nl);
				buf[nl] = '4';
				memcpy(buf + nl + 1, &cport, 2);
				memcpy(buf + nl + 3, opt_client_ip, il);
				emit_cmd(c, 'C', buf, nl + 3 + il);
				c->waiting = !(p & SMFIP_NR_CONN);
			}
			if (!c->waiting)
				c->stage = ST_HELO;
			break;
		}
		case ST_HELO:
			emit_macros(c, 'H', NULL);
			if (!(p & SMFIP_NOHELO)) {
				emit_cmd(c, 'H', "client.test.example", 20);
				c->waiting = !(p & SMFIP_NR_HELO);
			}
			if (!c->waiting)
				c->stage = ST_MAIL;
			break;
		case ST_MAIL: {
			const char *kv[] = { "{mail_addr}", c->from,
			    "i", qid, NULL };
			int n;

			c->qid = ++mload_qid_seq;
			c->msgs_left--;
			snprintf(qid, sizeof(qid), "%011X", c->qid);
			if (opt_from_fmt != NULL)
				addr_expand(c->from, sizeof(c->from),
				    opt_from_fmt, opt_msg_base + c->qid, 0,
				    c->id);
			else
				strcpy(c->from, "bench@test.example");
			c->msg_open = 1;
			c->t_mail = now_ms();
			emit_macros(c, 'M', kv);
			if (!(p & SMFIP_NOMAIL)) {
				n = snprintf(buf, sizeof(buf),
				    "<%s>%cSIZE=%zu", c->from, 0,
				    opt_body + 300 + 40 * opt_hdrs);
				emit_cmd(c, 'M', buf, (size_t)n + 1);
				c->waiting = !(p & SMFIP_NR_MAIL);
			}
			c->idx = 0;
			if (!c->waiting)
				c->stage = ST_RCPT;
			break;
		}
		case ST_RCPT: {
			const char *kv[] = { "i", qid, "{rcpt_addr}", val,
			    "{rcpt_host}", "[127.0.0.1]:25",
			    "{rcpt_mailer}", "smtp", NULL };
			int n;

			if (opt_rcpt_fmt != NULL)
				addr_expand(val, sizeof(val), opt_rcpt_fmt,
				    opt_msg_base + c->qid, c->idx + 1, c->id);
			else
				snprintf(val, sizeof(val),
				    "rcpt%u@dest.example", c->idx + 1);
			emit_macros(c, 'R', kv);
			if (!(p & SMFIP_NORCPT)) {
				n = snprintf(buf, sizeof(buf), "<%s>", val);
				emit_cmd(c, 'R', buf, (size_t)n + 1);
				c->waiting = !(p & SMFIP_NR_RCPT);
			}
			if (!c->waiting && ++c->idx >= opt_rcpts) {
				c->stage = ST_DATA;
				c->idx = 0;
			}
			break;
		}
		case ST_DATA: {
			const char *kv[] = { "i", qid, NULL };

			emit_macros(c, 'T', kv);
			if (!(p & SMFIP_NODATA) && c->version >= 4) {
				emit_cmd(c, 'T', NULL, 0);
				c->waiting = !(p & SMFIP_NR_DATA);
			}
			if (!c->waiting) {
				c->stage = ST_HDR;
				c->idx = 0;
			}
			break;
		}
		case ST_HDR: {
			unsigned i = c->idx;

			if (i == 0) {
				emit_header(c, qid, "From",
				    "Bench Sender <bench@test.example>");
			} else if (i == 1) {
				emit_header(c, qid, "To", "<rcpt1@dest.example>");
			} else if (i == 2) {
				snprintf(val, sizeof(val), "bench message %s",
				    qid);
				emit_header(c, qid, "Subject", val);
			} else if (i == 3) {
				snprintf(val, sizeof(val), "<%s.%u@test.example>",
				    qid, c->id);
				emit_header(c, qid, "Message-Id", val);
			} else if (i == 4) {
				emit_header(c, qid, "Date",
				    "Sat, 22 Nov 2025 03:30:00 +0000");
			} else if (i < 5 + opt_hdrs) {
				snprintf(buf, sizeof(buf), "X-Bench-Extra-%u",
				    i - 4);
				snprintf(val, sizeof(val), "extra header line "
				    "number %u of the load generator", i - 4);
				emit_header(c, qid, buf, val);
			} else {
				emit_header(c, qid, "X-Rmilter-Test",
				    "addheader X-Bench yes");
			}
			if (!(p & SMFIP_NOHDRS))
				c->waiting = !(p & SMFIP_NR_HDR);
			if (!c->waiting && ++c->idx >= msg_nheaders()) {
				c->stage = ST_EOH;
				c->idx = 0;
			}
			break;
		}
		case ST_EOH: {
			const char *kv[] = { "i", qid, NULL };

			emit_macros(c, 'N', kv);
			if (!(p & SMFIP_NOEOH)) {
				emit_cmd(c, 'N', NULL, 0);
				c->waiting = !(p & SMFIP_NR_EOH);
			}
			if (!c->waiting) {
				c->stage = msg_nchunks() ? ST_BODY : ST_EOB;
				c->idx = 0;
			}
			break;
		}
		case ST_BODY: {
			const char *kv[] = { "i", qid, NULL };
			size_t off = (size_t)c->idx * MLOAD_CHUNK;
			size_t n = opt_body - off;

			if (n > MLOAD_CHUNK)
				n = MLOAD_CHUNK;
			emit_macros(c, 'B', kv);
			if (!(p & SMFIP_NOBODY)) {
				emit_cmd(c, 'B', mload_body + off, n);
				c->waiting = !(p & SMFIP_NR_BODY);
			}
			if (!c->waiting && ++c->idx >= msg_nchunks()) {
				c->stage = ST_EOB;
				c->idx = 0;
			}
			break;
		}
		case ST_EOB: {
			const char *kv[] = { "i", qid, NULL };

			emit_macros(c, 'E', kv);
			emit_cmd(c, 'E', NULL, 0);
			c->waiting = 1;
			break;
		}
		case ST_NEXT:
			/* Postfix: mail_reset() aborts after every message. */
			emit_cmd(c, 'A', NULL, 0);
			if (c->msgs_left > 0) {
				c->stage = ST_MAIL;
				break;
			}
			/* helo_reset() + quit */
			emit_cmd(c, 'A', NULL, 0);
			emit_cmd(c, 'Q', NULL, 0);
			c->stage = ST_DRAIN;
			break;
		default:
			conn_fail(c, 0, "internal: step in stage %s",
			    mload_stage_names[c->stage]);
			return;
		}
	}
	if (c->wbuf.len > c->wbuf.off && conn_flush(c) < 0)
		return;
	if (c->stage == ST_DRAIN) {
		/*
		 * The window slot is free once QUIT is out; the socket stays
		 * until the milter closes (it does on QUIT), so the TIME_WAIT
		 * lands on the server side and ephemeral ports survive.
		 */
		conn_release_slot(c);
		c->deadline = now_ms() + MLOAD_DRAIN_MS;
	}
}

/* Write as much of wbuf as possible. Returns 0, or -1 if c was failed. */
static int
conn_flush(struct mload_conn *c)
{
	struct mload_buf *b = &c->wbuf;

	while (b->off < b->len) {
		ssize_t n = write(c->fd, b->data + b->off, b->len - b->off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				conn_set_out(c, 1);
				return 0;
			}
			conn_fail(c, 1, "write: %s", strerror(errno));
			return -1;
		}
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	if (c->epout && c->stage != ST_CONNECTING)
		conn_set_out(c, 0);
	return 0;
}

static void
conn_set_out(struct mload_conn *c, int on)
{
	struct epoll_event ev;

	if (c->epout == on)
		return;
	c->epout = on;
	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.ptr = c;
	epoll_ctl(mload_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
conn_release_slot(struct mload_conn *c)
{
	if (c->free_slot) {
		c->free_slot = 0;
		mload_active--;
	}
}

static void
conn_close(struct mload_conn *c)
{
	if (c->fd >= 0) {
		close(c->fd);	/* also removes it from the epoll set */
		c->fd = -1;
		mload_open_fds--;
	}
	conn_release_slot(c);
	c->stage = ST_DONE;
	free(c->rbuf.data);
	free(c->wbuf.data);
	memset(&c->rbuf, 0, sizeof(c->rbuf));
	memset(&c->wbuf, 0, sizeof(c->wbuf));
}

/*
 * Fail connection c: the open message and all messages not yet sent count
 * as errors.  `io` marks a transport error (vs a protocol error).
 * Prints the reason and the frame trace for the first few failures.
 */
static void
conn_fail(struct mload_conn *c, int io, const char *fmt, ...)
{
	char why[256];
	unsigned lost = c->msgs_left + (c->msg_open ? 1 : 0);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	mload_errors += lost;
	if (c->stage == ST_CONNECTING)
		mload_conn_errors++;
	if (mload_errlogged++ < MLOAD_MAX_ERRLOG)
		fprintf(stderr, "mload: conn %u: %s error in stage %s "
		    "(waiting=%d, msg %u/%u): %s\n  trace: %s\n", c->id,
		    io ? "I/O" : "protocol", mload_stage_names[c->stage],
		    c->waiting, c->msgs_total - c->msgs_left, c->msgs_total,
		    why, c->trace);
	c->msgs_left = 0;
	c->msg_open = 0;
	conn_close(c);
}

static void
conn_message_done(struct mload_conn *c, char final)
{
	if (c->msg_open) {
		if (mload_nlat < opt_total)
			mload_lat[mload_nlat++] = now_ms() - c->t_mail;
		mload_finals[(unsigned char)final]++;
		mload_final_at[c->stage][(unsigned char)(final == 'y' ?
		    c->yclass : final)]++;
		mload_ok++;
		c->msg_open = 0;
	}
	c->waiting = 0;
	c->idx = 0;
	c->stage = ST_NEXT;
}

/* Handle the OPTNEG reply: record and honour the negotiated bits. */
static void
conn_on_optneg(struct mload_conn *c, const char *d, uint32_t len)
{
	uint32_t v[3];

	if (len < 12) {
		conn_fail(c, 0, "OPTNEG reply too short (%u bytes)", len);
		return;
	}
	memcpy(v, d, 12);
	v[0] = ntohl(v[0]);
	v[1] = ntohl(v[1]);
	v[2] = ntohl(v[2]);
	if (v[0] < 2 || v[0] > MLOAD_VERSION) {
		conn_fail(c, 0, "OPTNEG version %u conflicts with ours (%u)",
		    v[0], MLOAD_VERSION);
		return;
	}
	if ((v[1] & ~MLOAD_ACTIONS) != 0) {
		conn_fail(c, 0, "OPTNEG action mask 0x%x conflicts with "
		    "offered 0x%x", v[1], MLOAD_ACTIONS);
		return;
	}
	if ((v[2] & ~opt_proto) != 0 && !mload_warned_bits) {
		mload_warned_bits = 1;
		fprintf(stderr, "mload: warning: milter protocol mask 0x%x "
		    "includes bits not offered (0x%x); ignoring them\n",
		    v[2], v[2] & ~opt_proto);
	}
	c->version = v[0];
	c->proto = v[2] & opt_proto;
	if (!mload_negotiated) {
		mload_negotiated = 1;
		mload_neg_version = v[0];
		mload_neg_actions = v[1];
		mload_neg_proto = v[2];
	}
	c->waiting = 0;
	c->stage = ST_CONNECT;
}

/*
 * One complete reply frame.  May fail (and free) the connection; callers
 * check c->fd afterwards.
 */
static void
conn_on_frame(struct mload_conn *c, char cmd, const char *d, uint32_t len)
{
	conn_trace(c, '<', cmd);
	if (opt_verbose && c->id == 0 && len > 0) {
		uint32_t i;

		fputs("mload: conn 0   data \"", stderr);
		for (i = 0; i < len && i < 120; i++)
			if (d[i] >= 0x20 && d[i] < 0x7f && d[i] != '\\')
				fputc(d[i], stderr);
			else
				fprintf(stderr, "\\x%02x", (unsigned char)d[i]);
		fputs(i < len ? "\"...\n" : "\"\n", stderr);
	}
	if (!c->waiting) {
		conn_fail(c, 0, "unexpected reply '%c' (len %u) while not "
		    "waiting for one", cmd, len + 1);
		return;
	}
	c->deadline = now_ms() + opt_conn_timeout * 1e3;
	if (cmd == 'y')		/* SMFIR_REPLYCODE: "451 4.7.1 ..." */
		c->yclass = len > 0 && d[0] == '4' ? 'T' : len > 0 &&
		    d[0] == '5' ? 'R' : 'Y';
	if (c->stage == ST_OPTNEG) {
		if (cmd != 'O') {
			conn_fail(c, 0, "expected OPTNEG reply, got '%c'", cmd);
			return;
		}
		conn_on_optneg(c, d, len);
		return;
	}
	if (cmd == 'p')		/* progress: keep waiting */
		return;
	if (c->stage == ST_EOB) {
		switch (cmd) {
		case 'h': case 'i': case 'm': case 'e': case '+': case '2':
		case '-': case 'b': case 'q':
			mload_mods[(unsigned char)cmd]++;
			return;
		case 'c': case 'a': case 'r': case 't': case 'd': case '4':
			if (len != 0) {
				conn_fail(c, 0, "reply '%c' followed by %u "
				    "data bytes", cmd, len);
				return;
			}
			/* FALLTHROUGH */
		case 'y':
			conn_message_done(c, cmd);
			if (cmd == '4') {
				c->msgs_left = 0;
				conn_close(c);
			}
			return;
		default:
			conn_fail(c, 0, "unexpected reply '%c' at EOB", cmd);
			return;
		}
	}
	/* Envelope, header and body events: exactly one decision. */
	switch (cmd) {
	case 'c':
		break;
	case 's':
		if (c->stage != ST_BODY) {
			conn_fail(c, 0, "SKIP outside the body");
			return;
		}
		c->waiting = 0;
		c->stage = ST_EOB;
		return;
	case 'a': case 'r': case 't': case 'd': case 'y': case '4':
		if (c->stage == ST_CONNECT || c->stage == ST_HELO ||
		    cmd == '4') {
			/* session-wide: Postfix drops the milter socket */
			mload_finals[(unsigned char)cmd] += c->msgs_left;
			mload_final_at[c->stage][(unsigned char)(cmd == 'y' ?
			    c->yclass : cmd)] += c->msgs_left;
			mload_ok += c->msgs_left;
			c->msgs_left = 0;
			if (c->msg_open)
				conn_message_done(c, cmd);
			conn_close(c);
			return;
		}
		conn_message_done(c, cmd);
		return;
	default:
		conn_fail(c, 0, "unexpected reply '%c' after %s", cmd,
		    mload_stage_names[c->stage]);
		return;
	}
	if (cmd != 'c' || len != 0) {
		conn_fail(c, 0, "reply '%c' followed by %u data bytes", cmd,
		    len);
		return;
	}
	c->waiting = 0;
	switch (c->stage) {
	case ST_CONNECT: c->stage = ST_HELO; break;
	case ST_HELO:	c->stage = ST_MAIL; break;
	case ST_MAIL:	c->stage = ST_RCPT; c->idx = 0; break;
	case ST_RCPT:
		if (++c->idx >= opt_rcpts) {
			c->stage = ST_DATA;
			c->idx = 0;
		}
		break;
	case ST_DATA:	c->stage = ST_HDR; c->idx = 0; break;
	case ST_HDR:
		if (++c->idx >= msg_nheaders()) {
			c->stage = ST_EOH;
			c->idx = 0;
		}
		break;
	case ST_EOH:
		c->stage = msg_nchunks() ? ST_BODY : ST_EOB;
		c->idx = 0;
		break;
	case ST_BODY:
		if (++c->idx >= msg_nchunks()) {
			c->stage = ST_EOB;
			c->idx = 0;
		}
		break;
	default:
		conn_fail(c, 0, "internal: reply in stage %s",
		    mload_stage_names[c->stage]);
		return;
	}
}

/* Read what is there, split it into frames (any alignment), act on them. */
static void
conn_on_readable(struct mload_conn *c)
{
	struct mload_buf *b = &c->rbuf;

	for (;;) {
		size_t avail;
		ssize_t n;

		buf_reserve(b, 16384);
		avail = b->cap - b->len;
		n = read(c->fd, b->data + b->len, avail);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			if (c->stage == ST_DRAIN) {
				conn_close(c);
				return;
			}
			conn_fail(c, 1, "read: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			if (c->stage == ST_DRAIN) {
				conn_close(c);
				return;
			}
			conn_fail(c, 1, "milter closed the connection");
			return;
		}
		b->len += (size_t)n;
		if ((size_t)n < avail)
			break;	/* short read: socket drained */
	}
	if (c->stage == ST_DRAIN) {
		if (b->len > 0) {
			conn_fail(c, 0, "%zu bytes after QUIT", b->len);
			return;
		}
		return;
	}
	while (b->len - b->off >= 5) {
		uint32_t flen;
		char cmd;

		memcpy(&flen, b->data + b->off, 4);
		flen = ntohl(flen);
		if (flen < 1 || flen > MLOAD_MAX_FRAME) {
			conn_fail(c, 0, "bad reply length %u", flen);
			return;
		}
		if (b->len - b->off - 4 < flen)
			break;
		cmd = b->data[b->off + 4];
		b->off += 4 + flen;
		conn_on_frame(c, cmd, b->data + b->off - flen + 1, flen - 1);
		if (c->fd < 0)
			return;
	}
	if (b->off == b->len)
		b->off = b->len = 0;
	if (!c->waiting)
		conn_step(c);
}

static void
conn_on_writable(struct mload_conn *c)
{
	if (c->stage == ST_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err != 0) {
			conn_fail(c, 1, "connect: %s", strerror(err));
			return;
		}
		c->stage = ST_OPTNEG;
		conn_set_out(c, 0);
		conn_step(c);
		return;
	}
	conn_flush(c);
}

static void
conn_start(struct mload_conn *c)
{
	struct epoll_event ev;
	int fd, one = 1;

	fd = socket(mload_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0)
		mload_die("socket: %s (raise ulimit -n?)", strerror(errno));
	if (!mload_is_unix && opt_nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	mload_open_fds++;
	c->stage = ST_CONNECTING;
	c->free_slot = 1;
	mload_active++;
	c->deadline = now_ms() + opt_conn_timeout * 1e3;
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	c->epout = 1;
	if (epoll_ctl(mload_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		mload_die("epoll_ctl: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&mload_addr, mload_addrlen) == 0 ||
	    errno == EINPROGRESS)
		return;
	if (errno == EAGAIN && mload_is_unix) {
		/* UNIX listen queue full: retry this connection shortly. */
		close(fd);
		c->fd = -1;
		mload_open_fds--;
		conn_release_slot(c);
		c->stage = ST_DONE;
		mload_next_conn = c->id;	/* restart from here */
		mload_connect_pause = now_ms() + 2;
		return;
	}
	conn_fail(c, 1, "connect: %s", strerror(errno));
}

/* Open connections until the window holds opt_conc of them. */
static void
mload_fill_window(double now)
{
	if (now < mload_connect_pause)
		return;
	while (mload_active < opt_conc && mload_next_conn < mload_nconns) {
		struct mload_conn *c = &mload_conns[mload_next_conn++];

		conn_start(c);
		if (mload_connect_pause > now)
			break;
	}
}

/* Fail connections whose deadline passed. */
static void
mload_check_timers(double now)
{
	unsigned i;

	for (i = 0; i < mload_next_conn; i++) {
		struct mload_conn *c = &mload_conns[i];

		if (c->fd < 0 || c->deadline > now)
			continue;
		if (c->stage == ST_DRAIN) {
			mload_noclose++;
			conn_close(c);
			continue;
		}
		mload_timeouts += c->msgs_left + (c->msg_open ? 1 : 0);
		conn_fail(c, 1, "timeout (%.1f s without progress)",
		    opt_conn_timeout);
	}
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

	if (mload_nlat == 0)
		return 0;
	i = (size_t)(p * (mload_nlat - 1) + 0.5);
	return mload_lat[i];
}

/* The final replies per stage (-f): JSON ,"finals_at":{"RCPT":{"t":3}..}
 * or text lines "finals at RCPT  t=3".  A 'y' (reply code) counts as T
 * (4xx), R (5xx) or Y (anything else). */
static void
report_final_at(int json)
{
	static const char finals[] = "cart4dTRY";
	const char *s;
	int st, first = 1, any;

	if (json)
		printf(",\"finals_at\":{");
	for (st = 0; st <= ST_DONE; st++) {
		any = 0;
		for (s = finals; *s; s++)
			if (mload_final_at[st][(unsigned char)*s])
				any = 1;
		if (!any)
			continue;
		if (json)
			printf("%s\"%s\":{", first ? "" : ",",
			    mload_stage_names[st]);
		else
			printf("finals at %-7s", mload_stage_names[st]);
		first = 0;
		any = 0;
		for (s = finals; *s; s++) {
			unsigned long v = mload_final_at[st][(unsigned char)*s];

			if (v == 0)
				continue;
			if (json)
				printf("%s\"%c\":%lu", any ? "," : "", *s, v);
			else
				printf(" %c=%lu", *s, v);
			any = 1;
		}
		printf(json ? "}" : "\n");
	}
	if (json)
		printf("}");
}

static void
mload_report(double elapsed)
{
	static const char finals[] = "carty4d";
	static const char mods[] = "himeq+2-b";
	double mps = elapsed > 0 ? mload_ok / (elapsed / 1e3) : 0;
	struct rusage ru;
	double self_cpu = 0;
	const char *s;
	int first;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		self_cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;

	qsort(mload_lat, mload_nlat, sizeof(double), cmp_double);
	if (opt_json) {
		printf("{\"label\":\"%s\",\"socket\":\"%s\",\"concurrency\":%u,"
		    "\"total\":%u,\"per_conn\":%u,\"rcpts\":%u,\"body\":%zu,"
		    "\"offered\":\"0x%x\",\"negotiated\":{\"version\":%u,"
		    "\"actions\":\"0x%x\",\"protocol\":\"0x%x\"},"
		    "\"messages\":%lu,\"errors\":%lu,\"timeouts\":%lu,"
		    "\"conn_errors\":%lu,\"unfinished\":%lu,"
		    "\"no_close_after_quit\":%lu,\"elapsed_s\":%.3f,"
		    "\"msgs_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
		    "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"mload_cpu_s\":%.2f,"
		    "\"finals\":{",
		    opt_label, opt_socket, opt_conc, opt_total, opt_per_conn,
		    opt_rcpts, opt_body, opt_proto, mload_neg_version,
		    mload_neg_actions, mload_neg_proto, mload_ok, mload_errors,
		    mload_timeouts, mload_conn_errors, mload_unfinished,
		    mload_noclose, elapsed / 1e3, mps, pct(0.5), pct(0.9),
		    pct(0.99), pct(1.0), self_cpu);
		first = 1;
		for (s = finals; *s; s++)
			if (mload_finals[(unsigned char)*s]) {
				printf("%s\"%c\":%lu", first ? "" : ",", *s,
				    mload_finals[(unsigned char)*s]);
				first = 0;
			}
		printf("},\"mods\":{");
		first = 1;
		for (s = mods; *s; s++)
			if (mload_mods[(unsigned char)*s]) {
				printf("%s\"%c\":%lu", first ? "" : ",", *s,
				    mload_mods[(unsigned char)*s]);
				first = 0;
			}
		printf("}");
		if (opt_final_at)
			report_final_at(1);
		printf("}\n");
		return;
	}
	printf("target      %s %s\n", opt_socket, opt_label);
	printf("offered     version 6 actions 0x%x protocol 0x%x\n",
	    MLOAD_ACTIONS, opt_proto);
	printf("negotiated  version %u actions 0x%x protocol 0x%x\n",
	    mload_neg_version, mload_neg_actions, mload_neg_proto);
	printf("load        concurrency %u, %u msgs, %u/conn, %u rcpt, "
	    "%zu body bytes, %u extra hdrs%s\n", opt_conc, opt_total,
	    opt_per_conn, opt_rcpts, opt_body, opt_hdrs,
	    opt_addhdr ? ", addheader" : "");
	printf("messages    %lu\n", mload_ok);
	printf("errors      %lu (timeouts %lu, failed connects %lu, "
	    "unfinished at run timeout %lu)\n", mload_errors, mload_timeouts,
	    mload_conn_errors, mload_unfinished);
	printf("elapsed     %.3f s\n", elapsed / 1e3);
	printf("msgs/s      %.1f\n", mps);
	printf("latency ms  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
	    pct(0.5), pct(0.9), pct(0.99), pct(1.0));
	printf("mload cpu   %.2f s (%.0f us/msg)\n", self_cpu,
	    mload_ok ? self_cpu / mload_ok * 1e6 : 0);
	printf("finals     ");
	for (s = finals; *s; s++)
		if (mload_finals[(unsigned char)*s])
			printf(" %c=%lu", *s, mload_finals[(unsigned char)*s]);
	printf("\nmods       ");
	for (s = mods; *s; s++)
		if (mload_mods[(unsigned char)*s])
			printf(" %c=%lu", *s, mload_mods[(unsigned char)*s]);
	printf("\n");
	if (opt_final_at)
		report_final_at(0);
	if (mload_noclose)
		printf("warning     %lu connections not closed by the milter "
		    "within %d ms after QUIT\n", mload_noclose, MLOAD_DRAIN_MS);
}

static unsigned long
parse_num(const char *s, int base)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, base);
	if (errno != 0 || *end != '\0' || end == s)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[512];
	struct rlimit rl;
	double start, stop_at, last_timer_check, now;
	size_t i;
	int ch;

	while ((ch = getopt(argc, argv, "s:c:n:m:r:b:H:p:At:T:jvNL:I:i:F:R:o:f")) != -1) {
		switch (ch) {
		case 's': opt_socket = optarg; break;
		case 'c': opt_conc = parse_num(optarg, 10); break;
		case 'n': opt_total = parse_num(optarg, 10); break;
		case 'm': opt_per_conn = parse_num(optarg, 10); break;
		case 'r': opt_rcpts = parse_num(optarg, 10); break;
		case 'b': opt_body = parse_num(optarg, 10); break;
		case 'H': opt_hdrs = parse_num(optarg, 10); break;
		case 'p': opt_proto = parse_num(optarg, 16); break;
		case 'A': opt_addhdr = 1; break;
		case 't': opt_timeout = parse_num(optarg, 10); break;
		case 'T': opt_conn_timeout = parse_num(optarg, 10); break;
		case 'j': opt_json = 1; break;
		case 'v': opt_verbose = 1; break;
		case 'N': opt_nodelay = 1; break;
		case 'L': opt_label = optarg; break;
		case 'I': opt_client_ip = optarg; break;
		case 'i': opt_client_name = optarg; break;
		case 'F': opt_from_fmt = optarg; break;
		case 'R': opt_rcpt_fmt = optarg; break;
		case 'o': opt_msg_base = parse_num(optarg, 10); break;
		case 'f': opt_final_at = 1; break;
		default: usage();
		}
	}
	if (opt_conc < 1 || opt_total < 1 || opt_per_conn < 1 ||
	    opt_rcpts < 1 || opt_conc > 100000 || opt_timeout < 1 ||
	    opt_conn_timeout < 1)
		usage();
	if (strlen(opt_client_ip) > 100 || strlen(opt_client_name) > 200)
		usage();
	if (mload_parse_socket(opt_socket) < 0)
		mload_die("bad socket spec: %s", opt_socket);
	signal(SIGPIPE, SIG_IGN);

	/* Enough descriptors for the window plus draining sockets. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t want = (rlim_t)opt_conc * 2 + 64;

		if (rl.rlim_cur < want) {
			rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur < (rlim_t)opt_conc + 16)
			mload_die("RLIMIT_NOFILE %lu too low for concurrency "
			    "%u", (unsigned long)rl.rlim_cur, opt_conc);
	}

	/* Body: 76-character lines with CRLF. */
	if ((mload_body = malloc(opt_body + 1)) == NULL)
		mload_die("out of memory");
	for (i = 0; i < opt_body; i++) {
		size_t col = i % 78;

		mload_body[i] = col == 76 ? '\r' : col == 77 ? '\n' :
		    "abcdefghijklmnopqrstuvwxyz0123456789"[(i / 78 + col) % 36];
	}
	if (opt_body >= 2) {
		mload_body[opt_body - 2] = '\r';
		mload_body[opt_body - 1] = '\n';
	}

	mload_nconns = (opt_total + opt_per_conn - 1) / opt_per_conn;
	mload_conns = calloc(mload_nconns, sizeof(*mload_conns));
	mload_lat = calloc(opt_total, sizeof(double));
	if (mload_conns == NULL || mload_lat == NULL)
		mload_die("out of memory");
	for (i = 0; i < mload_nconns; i++) {
		struct mload_conn *c = &mload_conns[i];

		c->fd = -1;
		c->id = (unsigned)i;
		c->stage = ST_DONE;
		c->msgs_total = opt_per_conn;
		if (i == mload_nconns - 1 && opt_total % opt_per_conn)
			c->msgs_total = opt_total % opt_per_conn;
		c->msgs_left = c->msgs_total;
	}
	if ((mload_ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		mload_die("epoll_create1: %s", strerror(errno));

	start = last_timer_check = now_ms();
	stop_at = start + opt_timeout * 1e3;
	mload_fill_window(start);
	for (;;) {
		int n, k, wait_ms;

		now = now_ms();
		if (mload_next_conn >= mload_nconns && mload_active == 0)
			break;
		if (now >= stop_at)
			break;
		wait_ms = 100;
		if (mload_connect_pause > now)
			wait_ms = 2;
		n = epoll_wait(mload_ep, evs, 512, wait_ms);
		if (n < 0 && errno != EINTR)
			mload_die("epoll_wait: %s", strerror(errno));
		for (k = 0; k < n; k++) {
			struct mload_conn *c = evs[k].data.ptr;

			if (c->fd < 0)
				continue;
			if (evs[k].events & (EPOLLOUT | EPOLLERR)) {
				conn_on_writable(c);
				if (c->fd < 0)
					continue;
			}
			if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				conn_on_readable(c);
			/* Any I/O is progress: restart the connection's clock. */
			if (c->fd >= 0 && c->stage != ST_DRAIN)
				c->deadline = now_ms() + opt_conn_timeout * 1e3;
		}
		now = now_ms();
		mload_fill_window(now);
		if (now - last_timer_check >= 100) {
			last_timer_check = now;
			mload_check_timers(now);
		}
	}
	now = now_ms();
	/* Whatever is still open at the run timeout is unfinished. */
	for (i = 0; i < mload_nconns; i++) {
		struct mload_conn *c = &mload_conns[i];

		if (i >= mload_next_conn)
			mload_unfinished += c->msgs_total;
		else if (c->fd >= 0 && c->stage != ST_DRAIN)
			mload_unfinished += c->msgs_left + (c->msg_open ? 1 : 0);
	}
	mload_errors += mload_unfinished;
	mload_report(now - start);
	return (mload_errors > 0) ? 1 : 0;
}

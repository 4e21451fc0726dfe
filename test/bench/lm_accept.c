/*
 * lm_accept.c -- the "libmilter floor" for `make bench`: an accept-everything
 * milter on Sendmail's libmilter (thread per connection).
 *
 * Every callback is registered and returns SMFIS_CONTINUE, so libmilter
 * negotiates no NO* bits and replies to every stage; EOM returns
 * SMFIS_ACCEPT.  A message carrying an "X-Rmilter-Test:" header whose value
 * contains "addheader" gets smfi_addheader("X-Bench", "yes") at EOM, the
 * same work rmilter's test policy does for the TCP Nagle comparison.
 *
 * usage: lm_accept inet:PORT@127.0.0.1 | unix:/path
 * Build: cc -O2 -Wall -Wextra -Werror -o lm_accept lm_accept.c -lmilter -lpthread
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libmilter/mfapi.h>

/* Per-connection state: does the current message want a header added? */
struct lm_priv {
	int	addhdr;
};

static struct lm_priv *
lm_priv_get(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static sfsistat
lm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	struct lm_priv *p;

	(void)host;
	(void)sa;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return SMFIS_TEMPFAIL;
	smfi_setpriv(ctx, p);
	return SMFIS_CONTINUE;
}

static sfsistat
lm_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	(void)helo;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_envfrom(SMFICTX *ctx, char **argv)
{
	struct lm_priv *p = lm_priv_get(ctx);

	(void)argv;
	if (p != NULL)
		p->addhdr = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_data(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_unknown(SMFICTX *ctx, const char *cmd)
{
	(void)ctx;
	(void)cmd;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_header(SMFICTX *ctx, char *name, char *value)
{
	struct lm_priv *p = lm_priv_get(ctx);

	if (p != NULL && strcasecmp(name, "X-Rmilter-Test") == 0 &&
	    strstr(value, "addheader") != NULL)
		p->addhdr = 1;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	(void)chunk;
	(void)len;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_eom(SMFICTX *ctx)
{
	struct lm_priv *p = lm_priv_get(ctx);

	if (p != NULL && p->addhdr) {
		smfi_addheader(ctx, "X-Bench", "yes");
		p->addhdr = 0;
	}
	return SMFIS_ACCEPT;
}

static sfsistat
lm_abort(SMFICTX *ctx)
{
	struct lm_priv *p = lm_priv_get(ctx);

	if (p != NULL)
		p->addhdr = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
lm_close(SMFICTX *ctx)
{
	free(lm_priv_get(ctx));
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static struct smfiDesc lm_desc = {
	"lm_accept",		/* filter name */
	SMFI_VERSION,		/* version code */
	SMFIF_ADDHDRS,		/* flags */
	lm_connect,		/* connection info filter */
	lm_helo,		/* SMTP HELO command filter */
	lm_envfrom,		/* envelope sender filter */
	lm_envrcpt,		/* envelope recipient filter */
	lm_header,		/* header filter */
	lm_eoh,			/* end of header */
	lm_body,		/* body block filter */
	lm_eom,			/* end of message */
	lm_abort,		/* message aborted */
	lm_close,		/* connection cleanup */
	lm_unknown,		/* unknown SMTP commands */
	lm_data,		/* DATA command */
	NULL			/* negotiate: libmilter default */
};

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: lm_accept inet:PORT@127.0.0.1\n");
		return 2;
	}
	if (smfi_setconn(argv[1]) == MI_FAILURE) {
		fprintf(stderr, "lm_accept: smfi_setconn %s failed\n", argv[1]);
		return 1;
	}
	if (smfi_setbacklog(4096) == MI_FAILURE)
		fprintf(stderr, "lm_accept: smfi_setbacklog failed\n");
	if (smfi_register(lm_desc) == MI_FAILURE) {
		fprintf(stderr, "lm_accept: smfi_register failed\n");
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}

/* milter_proto.c -- sans-IO milter protocol codec: framing, payload decoders,
 * reply encoders.  Pure functions over caller buffers. */
#include <string.h>

#include "milter_proto.h"

static uint32_t
rd_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

enum milter_parse_rc
milter_frame_parse(const uint8_t *buf, size_t len, size_t max,
    struct milter_frame *f, size_t *consumed, const char **err)
{
	uint32_t flen;

	*consumed = 0;
	if (len < 4)
		return MILTER_PARSE_NEED_MORE;
	flen = rd_u32(buf);
	if (flen == 0) {
		*err = "frame length 0";
		return MILTER_PARSE_ERROR;
	}
	if (flen > max) {
		*err = "frame length over the limit";
		return MILTER_PARSE_ERROR;
	}
	if (len >= 5 && buf[4] < ' ') {
		*err = "invalid command byte";
		return MILTER_PARSE_ERROR;
	}
	if (len - 4 < flen) {
		*consumed = flen - (len - 4);
		return MILTER_PARSE_NEED_MORE;
	}
	f->cmd = buf[4];
	f->data = buf + 5;
	f->len = flen - 1;
	*consumed = (size_t)flen + 4;
	return MILTER_PARSE_FRAME;
}

static const struct {
	uint8_t cmd;
	const char *name;
	uint32_t no_bit;
	uint32_t nr_bit;
} milter_cmds[] = {
	{ SMFIC_ABORT, "abort", 0, 0 },
	{ SMFIC_BODY, "body", SMFIP_NOBODY, SMFIP_NR_BODY },
	{ SMFIC_CONNECT, "connect", SMFIP_NOCONNECT, SMFIP_NR_CONN },
	{ SMFIC_MACRO, "macro", 0, 0 },
	{ SMFIC_BODYEOB, "eob", 0, 0 },
	{ SMFIC_HELO, "helo", SMFIP_NOHELO, SMFIP_NR_HELO },
	{ SMFIC_QUIT_NC, "quit-nc", 0, 0 },
	{ SMFIC_HEADER, "header", SMFIP_NOHDRS, SMFIP_NR_HDR },
	{ SMFIC_MAIL, "mail", SMFIP_NOMAIL, SMFIP_NR_MAIL },
	{ SMFIC_EOH, "eoh", SMFIP_NOEOH, SMFIP_NR_EOH },
	{ SMFIC_OPTNEG, "optneg", 0, 0 },
	{ SMFIC_QUIT, "quit", 0, 0 },
	{ SMFIC_RCPT, "rcpt", SMFIP_NORCPT, SMFIP_NR_RCPT },
	{ SMFIC_DATA, "data", SMFIP_NODATA, SMFIP_NR_DATA },
	{ SMFIC_UNKNOWN, "unknown", SMFIP_NOUNKNOWN, SMFIP_NR_UNKN },
};

#define NCMDS (sizeof(milter_cmds) / sizeof(milter_cmds[0]))

bool
milter_cmd_known(uint8_t cmd)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (milter_cmds[i].cmd == cmd)
			return true;
	return false;
}

const char *
milter_cmd_name(uint8_t cmd)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (milter_cmds[i].cmd == cmd)
			return milter_cmds[i].name;
	return "invalid";
}

uint32_t
milter_cmd_nr_bit(uint8_t cmd)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (milter_cmds[i].cmd == cmd)
			return milter_cmds[i].nr_bit;
	return 0;
}

uint32_t
milter_cmd_no_bit(uint8_t cmd)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (milter_cmds[i].cmd == cmd)
			return milter_cmds[i].no_bit;
	return 0;
}

/* ---- decoders ----------------------------------------------------------- */

/* Reads a NUL-terminated string at *P (bounded by END); advances past it. */
static const char *
take_string(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nul;
	const char *s;

	if (*p >= end)
		return NULL;
	nul = memchr(*p, '\0', (size_t)(end - *p));
	if (nul == NULL)
		return NULL;
	s = (const char *)*p;
	*p = nul + 1;
	return s;
}

int
milter_decode_optneg(const struct milter_frame *f, struct milter_optneg *o,
    const char **err)
{
	if (f->len < 12) {
		*err = "OPTNEG shorter than 12 bytes";
		return -1;
	}
	o->version = rd_u32(f->data);
	o->actions = rd_u32(f->data + 4);
	o->protocol = rd_u32(f->data + 8);
	return 0;
}

int
milter_decode_connect(const struct milter_frame *f, struct milter_connect *c,
    const char **err)
{
	const uint8_t *p = f->data, *end = f->data + f->len;

	if ((c->hostname = take_string(&p, end)) == NULL) {
		*err = "CONNECT without a NUL-terminated host name";
		return -1;
	}
	if (p >= end) {
		*err = "CONNECT without an address family";
		return -1;
	}
	c->family = (char)*p++;
	c->port = 0;
	c->address = "";
	switch (c->family) {
	case 'U':
		/* unknown family: nothing follows (tolerate trailing bytes) */
		return 0;
	case '4':
	case '6':
	case 'L':
		break;
	default:
		*err = "CONNECT with an unknown address family";
		return -1;
	}
	if (end - p < 2) {
		*err = "CONNECT truncated before the port";
		return -1;
	}
	c->port = (uint16_t)((p[0] << 8) | p[1]);
	p += 2;
	if ((c->address = take_string(&p, end)) == NULL) {
		*err = "CONNECT without a NUL-terminated address";
		return -1;
	}
	if (p != end) {
		*err = "CONNECT with trailing bytes";
		return -1;
	}
	return 0;
}

int
milter_decode_string(const struct milter_frame *f, const char **s,
    const char **err)
{
	const uint8_t *p = f->data, *end = f->data + f->len;

	if ((*s = take_string(&p, end)) == NULL) {
		*err = "payload is not a NUL-terminated string";
		return -1;
	}
	return 0;
}

int
milter_decode_argv(const struct milter_frame *f, const char **argv, size_t max,
    size_t *argc, const char **err)
{
	const uint8_t *p = f->data, *end = f->data + f->len;
	const char *s;
	size_t n = 0;

	if (f->len == 0 || f->data[f->len - 1] != '\0') {
		*err = "argument list not NUL-terminated";
		return -1;
	}
	while (p < end) {
		if ((s = take_string(&p, end)) == NULL) {
			*err = "argument list not NUL-terminated";
			return -1;
		}
		if (n < max)
			argv[n] = s;
		n++;
	}
	*argc = n;
	return 0;
}

int
milter_decode_header(const struct milter_frame *f, const char **name,
    const char **value, const char **err)
{
	const uint8_t *p = f->data, *end = f->data + f->len;

	if ((*name = take_string(&p, end)) == NULL ||
	    (*value = take_string(&p, end)) == NULL) {
		*err = "HEADER is not name\\0value\\0";
		return -1;
	}
	if (**name == '\0') {
		*err = "HEADER with an empty name";
		return -1;
	}
	return 0;
}

int
milter_decode_macro(const struct milter_frame *f, uint8_t *stage,
    struct milter_macro_iter *it, const char **err)
{
	if (f->len < 1) {
		*err = "MACRO without a stage byte";
		return -1;
	}
	*stage = f->data[0];
	it->p = f->data + 1;
	it->end = f->data + f->len;
	return 0;
}

int
milter_macro_next(struct milter_macro_iter *it, const char **name,
    const char **value)
{
	if (it->p >= it->end)
		return 0;
	if ((*name = take_string(&it->p, it->end)) == NULL ||
	    (*value = take_string(&it->p, it->end)) == NULL) {
		it->p = it->end;
		return -1;
	}
	return 1;
}

/* ---- encoders ------------------------------------------------------------ */

void
milter_put_frame(struct mbuf *out, uint8_t cmd, const void *data, size_t len)
{
	mbuf_append_u32(out, (uint32_t)len + 1);
	mbuf_append_u8(out, cmd);
	mbuf_append(out, data, len);
}

void
milter_put_simple(struct mbuf *out, uint8_t cmd)
{
	uint8_t *p = mbuf_reserve(out, 5);

	p[0] = p[1] = p[2] = 0;
	p[3] = 1;
	p[4] = cmd;
	out->len += 5;
}

void
milter_put_optneg(struct mbuf *out, uint32_t version, uint32_t actions,
    uint32_t protocol, const char *const macros[SMFIM_COUNT])
{
	size_t len = 12, i;

	for (i = 0; macros != NULL && i < SMFIM_COUNT; i++)
		if (macros[i] != NULL)
			len += 4 + strlen(macros[i]) + 1;
	mbuf_append_u32(out, (uint32_t)len + 1);
	mbuf_append_u8(out, SMFIC_OPTNEG);
	mbuf_append_u32(out, version);
	mbuf_append_u32(out, actions);
	mbuf_append_u32(out, protocol);
	for (i = 0; macros != NULL && i < SMFIM_COUNT; i++) {
		if (macros[i] == NULL)
			continue;
		mbuf_append_u32(out, (uint32_t)i);
		mbuf_append(out, macros[i], strlen(macros[i]) + 1);
	}
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* x.y.z with 1-3 digits in y and z, x in [245]. */
static bool
xcode_valid(const char *x)
{
	int i, n;

	if (x[0] != '2' && x[0] != '4' && x[0] != '5')
		return false;
	if (x[1] != '.')
		return false;
	x += 2;
	for (i = 0; i < 2; i++) {
		for (n = 0; is_digit(*x); x++)
			n++;
		if (n < 1 || n > 3)
			return false;
		if (i == 0 && *x++ != '.')
			return false;
	}
	return *x == '\0';
}

int
milter_put_replycode(struct mbuf *out, const char *code, const char *xcode,
    const char *text, const char **err)
{
	struct mbuf tmp = { 0 };
	const char *line, *nl;
	size_t nlines = 0;

	if (strlen(code) != 3 || (code[0] != '4' && code[0] != '5') ||
	    !is_digit(code[1]) || !is_digit(code[2])) {
		*err = "reply code must be 4xx or 5xx";
		return -1;
	}
	if (xcode != NULL && (!xcode_valid(xcode) || xcode[0] != code[0])) {
		*err = "enhanced status must be x.y.z with the code's class";
		return -1;
	}
	if (text == NULL)
		text = "";
	for (line = text;; line = nl + 1) {
		size_t llen, k;

		nl = strchr(line, '\n');
		llen = nl ? (size_t)(nl - line) : strlen(line);
		if (llen > MILTER_REPLY_LINE_MAX) {
			*err = "reply line longer than 980 characters";
			goto fail;
		}
		for (k = 0; k < llen; k++) {
			if (line[k] == '\r') {
				*err = "reply text contains CR";
				goto fail;
			}
		}
		if (++nlines > MILTER_REPLY_LINES_MAX) {
			*err = "reply has more than 32 lines";
			goto fail;
		}
		mbuf_append(&tmp, code, 3);
		mbuf_append_u8(&tmp, nl ? '-' : ' ');
		if (xcode != NULL) {
			mbuf_append(&tmp, xcode, strlen(xcode));
			mbuf_append_u8(&tmp, ' ');
		}
		for (k = 0; k < llen; k++) {
			if (line[k] == '%')
				mbuf_append_u8(&tmp, '%');
			mbuf_append_u8(&tmp, (uint8_t)line[k]);
		}
		if (nl == NULL)
			break;
		mbuf_append(&tmp, "\r\n", 2);
	}
	mbuf_append_u8(&tmp, '\0');
	milter_put_frame(out, SMFIR_REPLYCODE, mbuf_data(&tmp), mbuf_avail(&tmp));
	mbuf_free(&tmp);
	return 0;
fail:
	mbuf_free(&tmp);
	return -1;
}

static void
put_name_value(struct mbuf *out, uint8_t cmd, bool has_index, uint32_t index,
    const char *name, const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;

	mbuf_append_u32(out, (uint32_t)(1 + (has_index ? 4 : 0) + nl + vl));
	mbuf_append_u8(out, cmd);
	if (has_index)
		mbuf_append_u32(out, index);
	mbuf_append(out, name, nl);
	mbuf_append(out, value, vl);
}

void
milter_put_addheader(struct mbuf *out, const char *name, const char *value)
{
	put_name_value(out, SMFIR_ADDHEADER, false, 0, name, value);
}

void
milter_put_insheader(struct mbuf *out, uint32_t index, const char *name,
    const char *value)
{
	put_name_value(out, SMFIR_INSHEADER, true, index, name, value);
}

void
milter_put_chgheader(struct mbuf *out, uint32_t index, const char *name,
    const char *value)
{
	put_name_value(out, SMFIR_CHGHEADER, true, index, name, value);
}

static void
put_addr_args(struct mbuf *out, uint8_t cmd, const char *addr,
    const char *args)
{
	size_t al = strlen(addr) + 1, gl = args ? strlen(args) + 1 : 0;

	mbuf_append_u32(out, (uint32_t)(1 + al + gl));
	mbuf_append_u8(out, cmd);
	mbuf_append(out, addr, al);
	if (args != NULL)
		mbuf_append(out, args, gl);
}

void
milter_put_chgfrom(struct mbuf *out, const char *from, const char *args)
{
	put_addr_args(out, SMFIR_CHGFROM, from, args);
}

void
milter_put_addrcpt(struct mbuf *out, const char *rcpt, const char *args)
{
	put_addr_args(out, args ? SMFIR_ADDRCPT_PAR : SMFIR_ADDRCPT, rcpt,
	    args);
}

void
milter_put_delrcpt(struct mbuf *out, const char *rcpt)
{
	put_addr_args(out, SMFIR_DELRCPT, rcpt, NULL);
}

void
milter_put_quarantine(struct mbuf *out, const char *reason)
{
	put_addr_args(out, SMFIR_QUARANTINE,
	    (reason && *reason) ? reason : "quarantined", NULL);
}

void
milter_put_replbody(struct mbuf *out, const void *body, size_t len)
{
	const uint8_t *p = body;

	do {
		size_t n = len > MILTER_CHUNK_SIZE ? MILTER_CHUNK_SIZE : len;

		milter_put_frame(out, SMFIR_REPLBODY, p, n);
		p += n;
		len -= n;
	} while (len > 0);
}

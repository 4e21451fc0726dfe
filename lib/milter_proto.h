/* milter_proto.h -- sans-IO milter protocol codec (versions 2..6).
 *
 * No sockets, no event loop: bytes in -> frames out (milter_frame_parse),
 * payload decoders that point into the frame (no copies), and encoders that
 * append whole frames to an mbuf.  Every length is checked before it is
 * trusted.  Wire facts: ../shared/docs/milter-protocol.md. */
#ifndef RMILTER_MILTER_PROTO_H
#define RMILTER_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbuf.h"

/* Commands, MTA -> milter */
#define SMFIC_ABORT	'A'
#define SMFIC_BODY	'B'
#define SMFIC_CONNECT	'C'
#define SMFIC_MACRO	'D'
#define SMFIC_BODYEOB	'E'
#define SMFIC_HELO	'H'
#define SMFIC_QUIT_NC	'K'
#define SMFIC_HEADER	'L'
#define SMFIC_MAIL	'M'
#define SMFIC_EOH	'N'
#define SMFIC_OPTNEG	'O'
#define SMFIC_QUIT	'Q'
#define SMFIC_RCPT	'R'
#define SMFIC_DATA	'T'
#define SMFIC_UNKNOWN	'U'

/* Replies, milter -> MTA */
#define SMFIR_ADDRCPT		'+'
#define SMFIR_DELRCPT		'-'
#define SMFIR_ADDRCPT_PAR	'2'
#define SMFIR_SHUTDOWN		'4'
#define SMFIR_ACCEPT		'a'
#define SMFIR_REPLBODY		'b'
#define SMFIR_CONTINUE		'c'
#define SMFIR_DISCARD		'd'
#define SMFIR_CHGFROM		'e'
#define SMFIR_CONN_FAIL		'f'
#define SMFIR_ADDHEADER		'h'
#define SMFIR_INSHEADER		'i'
#define SMFIR_SETSYMLIST	'l'
#define SMFIR_CHGHEADER		'm'
#define SMFIR_PROGRESS		'p'
#define SMFIR_QUARANTINE	'q'
#define SMFIR_REJECT		'r'
#define SMFIR_SKIP		's'
#define SMFIR_TEMPFAIL		't'
#define SMFIR_REPLYCODE		'y'

/* Actions (SMFIF_*) */
#define SMFIF_ADDHDRS		0x001u
#define SMFIF_CHGBODY		0x002u
#define SMFIF_ADDRCPT		0x004u
#define SMFIF_DELRCPT		0x008u
#define SMFIF_CHGHDRS		0x010u
#define SMFIF_QUARANTINE	0x020u
#define SMFIF_CHGFROM		0x040u
#define SMFIF_ADDRCPT_PAR	0x080u
#define SMFIF_SETSYMLIST	0x100u

/* Protocol bits (SMFIP_*) */
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
#define SMFIP_SKIP		0x00000400u
#define SMFIP_RCPT_REJ		0x00000800u
#define SMFIP_NR_CONN		0x00001000u
#define SMFIP_NR_HELO		0x00002000u
#define SMFIP_NR_MAIL		0x00004000u
#define SMFIP_NR_RCPT		0x00008000u
#define SMFIP_NR_DATA		0x00010000u
#define SMFIP_NR_UNKN		0x00020000u
#define SMFIP_NR_EOH		0x00040000u
#define SMFIP_NR_BODY		0x00080000u
#define SMFIP_HDR_LEADSPC	0x00100000u
#define SMFIP_MDS_256K		0x10000000u
#define SMFIP_MDS_1M		0x20000000u

/* Macro stages in the OPTNEG reply (note EOM < EOH). */
enum milter_macro_stage {
	SMFIM_CONNECT = 0,
	SMFIM_HELO = 1,
	SMFIM_ENVFROM = 2,
	SMFIM_ENVRCPT = 3,
	SMFIM_DATA = 4,
	SMFIM_EOM = 5,
	SMFIM_EOH = 6,
	SMFIM_COUNT = 7,
};

#define MILTER_VERSION_MAX	6u
#define MILTER_VERSION_MIN	2u
#define MILTER_CHUNK_SIZE	65535u		/* body/replbody chunk */
#define MILTER_MAX_FRAME	(1024u * 1024u)	/* len field cap (MDS_1M + slack) */
#define MILTER_REPLY_LINE_MAX	980u
#define MILTER_REPLY_LINES_MAX	32u

struct milter_frame {
	uint8_t cmd;
	const uint8_t *data;	/* points into the caller's buffer */
	size_t len;		/* data bytes (len field - 1) */
};

enum milter_parse_rc {
	MILTER_PARSE_NEED_MORE = 0,
	MILTER_PARSE_FRAME = 1,
	MILTER_PARSE_ERROR = -1,
};

/* Parses one frame from BUF[0..LEN).  On FRAME, *F points into BUF and
 * *CONSUMED is the frame's total size.  On NEED_MORE nothing is consumed
 * (*CONSUMED = bytes still missing, when known, else 0).  On ERROR (length
 * 0, length > MAX, command byte < ' '), *ERR names the problem. */
enum milter_parse_rc milter_frame_parse(const uint8_t *buf, size_t len,
    size_t max, struct milter_frame *f, size_t *consumed, const char **err);

/* true for the command bytes this codec knows. */
bool milter_cmd_known(uint8_t cmd);
const char *milter_cmd_name(uint8_t cmd);

/* ---- payload decoders: return 0, or -1 with *err set ------------------- */

struct milter_optneg {
	uint32_t version;
	uint32_t actions;
	uint32_t protocol;
};
int milter_decode_optneg(const struct milter_frame *f, struct milter_optneg *o,
    const char **err);

struct milter_connect {
	const char *hostname;
	char family;		/* '4', '6', 'L' (unix), 'U' (unknown) */
	uint16_t port;
	const char *address;	/* "" for family 'U' */
};
int milter_decode_connect(const struct milter_frame *f,
    struct milter_connect *c, const char **err);

/* One NUL-terminated string filling the payload (HELO, UNKNOWN, QUARANTINE). */
int milter_decode_string(const struct milter_frame *f, const char **s,
    const char **err);

/* NUL-terminated strings filling the payload (MAIL, RCPT): at least one;
 * at most MAX are stored, *ARGC is the total count. */
int milter_decode_argv(const struct milter_frame *f, const char **argv,
    size_t max, size_t *argc, const char **err);

int milter_decode_header(const struct milter_frame *f, const char **name,
    const char **value, const char **err);

/* Macro packet: first byte = stage command, then name\0value\0 pairs. */
struct milter_macro_iter {
	const uint8_t *p, *end;
};
int milter_decode_macro(const struct milter_frame *f, uint8_t *stage,
    struct milter_macro_iter *it, const char **err);
/* Returns 1 with the next pair, 0 at the end, -1 on a malformed list. */
int milter_macro_next(struct milter_macro_iter *it, const char **name,
    const char **value);

/* ---- encoders: append one or more complete frames to OUT ----------------- */

void milter_put_frame(struct mbuf *out, uint8_t cmd, const void *data,
    size_t len);
void milter_put_simple(struct mbuf *out, uint8_t cmd);	/* c a r t d s p 4 */
/* OPTNEG reply; MACROS[stage] (space-separated names) may be NULL. */
void milter_put_optneg(struct mbuf *out, uint32_t version, uint32_t actions,
    uint32_t protocol, const char *const macros[SMFIM_COUNT]);

/* SMFIR_REPLYCODE from CODE ("550"), XCODE ("5.7.1" or NULL) and TEXT,
 * where TEXT may hold several lines separated by '\n' (multi-line reply,
 * at most 32 lines of at most 980 chars).  '%' is doubled (Postfix treats
 * the reply as a format string).  Returns -1 with *err if the code is not
 * 4xx/5xx, the xcode's class differs from the code's, or a line has CR/NUL
 * or is too long; nothing is appended then. */
int milter_put_replycode(struct mbuf *out, const char *code, const char *xcode,
    const char *text, const char **err);

void milter_put_addheader(struct mbuf *out, const char *name,
    const char *value);
void milter_put_insheader(struct mbuf *out, uint32_t index, const char *name,
    const char *value);
void milter_put_chgheader(struct mbuf *out, uint32_t index, const char *name,
    const char *value);
void milter_put_chgfrom(struct mbuf *out, const char *from, const char *args);
/* ARGS non-NULL -> SMFIR_ADDRCPT_PAR, else SMFIR_ADDRCPT. */
void milter_put_addrcpt(struct mbuf *out, const char *rcpt, const char *args);
void milter_put_delrcpt(struct mbuf *out, const char *rcpt);
void milter_put_quarantine(struct mbuf *out, const char *reason);
/* Body replacement, split into SMFIR_REPLBODY frames of <= 65535 bytes. */
void milter_put_replbody(struct mbuf *out, const void *body, size_t len);

/* The NR_* bit that suppresses the reply to CMD, or 0. */
uint32_t milter_cmd_nr_bit(uint8_t cmd);
/* The NO* bit that suppresses CMD itself, or 0. */
uint32_t milter_cmd_no_bit(uint8_t cmd);

#endif

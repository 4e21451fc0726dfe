/* fuzz_milter_proto.c -- libFuzzer target: arbitrary bytes through the frame
 * parser and every payload decoder, and the reply encoders on what they
 * decoded. */
#include <stdint.h>
#include <string.h>

#include "milter_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
decode_one(const struct milter_frame *f, struct mbuf *out)
{
	const char *err, *a, *b, *argv[8];
	struct milter_optneg o;
	struct milter_connect c;
	struct milter_macro_iter it;
	uint8_t stage;
	size_t argc;

	switch (f->cmd) {
	case SMFIC_OPTNEG:
		if (milter_decode_optneg(f, &o, &err) == 0)
			milter_put_optneg(out, o.version, o.actions,
			    o.protocol, NULL);
		break;
	case SMFIC_CONNECT:
		if (milter_decode_connect(f, &c, &err) == 0)
			milter_put_addheader(out, c.hostname, c.address);
		break;
	case SMFIC_MACRO:
		if (milter_decode_macro(f, &stage, &it, &err) == 0)
			while (milter_macro_next(&it, &a, &b) == 1)
				;
		break;
	case SMFIC_MAIL:
	case SMFIC_RCPT:
		if (milter_decode_argv(f, argv, 8, &argc, &err) == 0) {
			milter_put_chgfrom(out, argv[0], argc > 1 ? argv[1] :
			    NULL);
			milter_put_replycode(out, "550", "5.7.1", argv[0],
			    &err);
		}
		break;
	case SMFIC_HEADER:
		if (milter_decode_header(f, &a, &b, &err) == 0) {
			milter_put_chgheader(out, 1, a, b);
			milter_put_replycode(out, "451", NULL, b, &err);
		}
		break;
	case SMFIC_HELO:
	case SMFIC_UNKNOWN:
		if (milter_decode_string(f, &a, &err) == 0)
			milter_put_quarantine(out, a);
		break;
	case SMFIC_BODY:
		milter_put_replbody(out, f->data, f->len);
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbuf out = { 0 };
	struct milter_frame f;
	const char *err;
	size_t off = 0, used;

	while (off < size) {
		enum milter_parse_rc rc = milter_frame_parse(data + off,
		    size - off, 65536 * 4, &f, &used, &err);

		if (rc != MILTER_PARSE_FRAME)
			break;
		(void)milter_cmd_known(f.cmd);
		decode_one(&f, &out);
		off += used;
		mbuf_reset(&out);
	}
	mbuf_free(&out);
	return 0;
}

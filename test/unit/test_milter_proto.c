/* test_milter_proto.c -- the sans-IO codec: framing, decoders, encoders,
 * malformed and hostile input. */
#include <string.h>

#include "milter_proto.h"
#include "tt.h"

static size_t
frame(uint8_t *buf, uint8_t cmd, const void *data, size_t len)
{
	uint32_t l = (uint32_t)len + 1;

	buf[0] = (uint8_t)(l >> 24);
	buf[1] = (uint8_t)(l >> 16);
	buf[2] = (uint8_t)(l >> 8);
	buf[3] = (uint8_t)l;
	buf[4] = cmd;
	memcpy(buf + 5, data, len);
	return len + 5;
}

static void
test_frame_split(void)
{
	uint8_t buf[64];
	struct milter_frame f;
	const char *err = NULL;
	size_t n = frame(buf, 'H', "mx.example\0", 11), used, i;

	/* every prefix is "need more", never a frame or an error */
	for (i = 0; i < n; i++)
		TT_CHECK_INT(milter_frame_parse(buf, i, MILTER_MAX_FRAME, &f,
		    &used, &err), ==, MILTER_PARSE_NEED_MORE);
	TT_CHECK_INT(milter_frame_parse(buf, n, MILTER_MAX_FRAME, &f, &used,
	    &err), ==, MILTER_PARSE_FRAME);
	TT_CHECK_INT(used, ==, n);
	TT_CHECK_INT(f.cmd, ==, 'H');
	TT_CHECK_INT(f.len, ==, 11);
}

static void
test_frame_two_in_one(void)
{
	uint8_t buf[64];
	struct milter_frame f;
	const char *err;
	size_t n, used;

	n = frame(buf, 'D', "Hj\0x\0", 5);
	n += frame(buf + n, 'T', "", 0);
	TT_CHECK_INT(milter_frame_parse(buf, n, MILTER_MAX_FRAME, &f, &used,
	    &err), ==, MILTER_PARSE_FRAME);
	TT_CHECK_INT(f.cmd, ==, 'D');
	TT_CHECK_INT(milter_frame_parse(buf + used, n - used, MILTER_MAX_FRAME,
	    &f, &used, &err), ==, MILTER_PARSE_FRAME);
	TT_CHECK_INT(f.cmd, ==, 'T');
	TT_CHECK_INT(f.len, ==, 0);
}

static void
test_frame_bad(void)
{
	struct milter_frame f;
	const char *err = NULL;
	size_t used;
	const uint8_t zero[] = { 0, 0, 0, 0, 'C' };
	const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, 'B' };
	const uint8_t ctl[] = { 0, 0, 0, 1, 0x03 };
	const uint8_t over[] = { 0, 0x10, 0, 2, 'B' };

	TT_CHECK_INT(milter_frame_parse(zero, 5, MILTER_MAX_FRAME, &f, &used,
	    &err), ==, MILTER_PARSE_ERROR);
	TT_CHECK(err != NULL);
	TT_CHECK_INT(milter_frame_parse(huge, 5, MILTER_MAX_FRAME, &f, &used,
	    &err), ==, MILTER_PARSE_ERROR);
	TT_CHECK_INT(milter_frame_parse(huge, 4, MILTER_MAX_FRAME, &f, &used,
	    &err), ==, MILTER_PARSE_ERROR);	/* known bad before cmd */
	TT_CHECK_INT(milter_frame_parse(ctl, 5, MILTER_MAX_FRAME, &f, &used,
	    &err), ==, MILTER_PARSE_ERROR);
	TT_CHECK_INT(milter_frame_parse(over, 5, MILTER_MAX_FRAME, &f, &used,
	    &err), ==, MILTER_PARSE_ERROR);
}

static struct milter_frame
mk(uint8_t cmd, const void *data, size_t len)
{
	struct milter_frame f = { cmd, data, len };

	return f;
}

static void
test_optneg(void)
{
	const uint8_t d[12] = { 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff };
	struct milter_optneg o;
	struct milter_frame f = mk('O', d, 12);
	const char *err;

	TT_CHECK_INT(milter_decode_optneg(&f, &o, &err), ==, 0);
	TT_CHECK_INT(o.version, ==, 6);
	TT_CHECK_INT(o.actions, ==, 0x1ff);
	TT_CHECK_INT(o.protocol, ==, 0x1fffff);
	f.len = 11;
	TT_CHECK_INT(milter_decode_optneg(&f, &o, &err), ==, -1);
}

static void
test_connect(void)
{
	static const uint8_t v4[] = "localhost\0" "4\x8d\xb2" "127.0.0.1";
	static const uint8_t v6[] = "h\0" "6\x00\x19" "::1";
	static const uint8_t ux[] = "h\0" "L\x00\x00" "/tmp/sock";
	static const uint8_t un[] = "h\0" "U";
	struct milter_connect c;
	struct milter_frame f;
	const char *err;

	f = mk('C', v4, sizeof(v4));
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, 0);
	TT_CHECK_STR(c.hostname, "localhost");
	TT_CHECK_INT(c.family, ==, '4');
	TT_CHECK_INT(c.port, ==, 36274);
	TT_CHECK_STR(c.address, "127.0.0.1");
	f = mk('C', v6, sizeof(v6));
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, 0);
	TT_CHECK_STR(c.address, "::1");
	TT_CHECK_INT(c.port, ==, 25);
	f = mk('C', ux, sizeof(ux));
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, 0);
	TT_CHECK_INT(c.family, ==, 'L');
	f = mk('C', un, sizeof(un) - 1);
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, 0);
	TT_CHECK_INT(c.family, ==, 'U');
	TT_CHECK_STR(c.address, "");
	/* truncated: no NUL after the address, no port, bad family, empty */
	f = mk('C', v4, sizeof(v4) - 1);
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, -1);
	f = mk('C', v4, 11);
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, -1);
	f = mk('C', "h\0X\0\0a", 7);
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, -1);
	f = mk('C', "", 0);
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, -1);
	f = mk('C', "nonul", 5);
	TT_CHECK_INT(milter_decode_connect(&f, &c, &err), ==, -1);
}

static void
test_argv(void)
{
	static const uint8_t m[] = "<a@test.example>\0size=95\0BODY=8BITMIME";
	const char *argv[4], *err;
	struct milter_frame f = mk('M', m, sizeof(m));
	size_t argc;

	TT_CHECK_INT(milter_decode_argv(&f, argv, 4, &argc, &err), ==, 0);
	TT_CHECK_INT(argc, ==, 3);
	TT_CHECK_STR(argv[0], "<a@test.example>");
	TT_CHECK_STR(argv[2], "BODY=8BITMIME");
	f.len--;	/* last string unterminated */
	TT_CHECK_INT(milter_decode_argv(&f, argv, 4, &argc, &err), ==, -1);
	f.len = 0;
	TT_CHECK_INT(milter_decode_argv(&f, argv, 4, &argc, &err), ==, -1);
	/* more strings than slots: counted, not stored */
	f = mk('M', "a\0b\0c\0d\0e", 10);
	TT_CHECK_INT(milter_decode_argv(&f, argv, 2, &argc, &err), ==, 0);
	TT_CHECK_INT(argc, ==, 5);
}

static void
test_header_and_macros(void)
{
	static const uint8_t h[] = "X-Folded\0part1\n\tpart2";
	static const uint8_t d[] = "Cj\0mx.test\0{daemon_name}\0mx\0_\0l [1]";
	struct milter_macro_iter it;
	const char *n, *v, *err;
	struct milter_frame f = mk('L', h, sizeof(h));
	uint8_t stage;
	int count = 0;

	TT_CHECK_INT(milter_decode_header(&f, &n, &v, &err), ==, 0);
	TT_CHECK_STR(n, "X-Folded");
	TT_CHECK_STR(v, "part1\n\tpart2");
	f = mk('L', "\0v", 3);
	TT_CHECK_INT(milter_decode_header(&f, &n, &v, &err), ==, -1);
	f = mk('L', "name", 4);
	TT_CHECK_INT(milter_decode_header(&f, &n, &v, &err), ==, -1);

	f = mk('D', d, sizeof(d));
	TT_CHECK_INT(milter_decode_macro(&f, &stage, &it, &err), ==, 0);
	TT_CHECK_INT(stage, ==, 'C');
	while (milter_macro_next(&it, &n, &v) == 1)
		count++;
	TT_CHECK_INT(count, ==, 3);
	/* a name without a value is malformed */
	f = mk('D', "Cj\0mx\0k", 8);
	TT_CHECK_INT(milter_decode_macro(&f, &stage, &it, &err), ==, 0);
	TT_CHECK_INT(milter_macro_next(&it, &n, &v), ==, 1);
	TT_CHECK_INT(milter_macro_next(&it, &n, &v), ==, -1);
	/* empty list (Postfix sends "D H" with no pairs) */
	f = mk('D', "H", 1);
	TT_CHECK_INT(milter_decode_macro(&f, &stage, &it, &err), ==, 0);
	TT_CHECK_INT(milter_macro_next(&it, &n, &v), ==, 0);
	f = mk('D', "", 0);
	TT_CHECK_INT(milter_decode_macro(&f, &stage, &it, &err), ==, -1);
}

static void
test_put_optneg(void)
{
	struct mbuf b = { 0 };
	const char *macros[SMFIM_COUNT] = { NULL };
	static const uint8_t want[] = { 0, 0, 0, 13 + 4 + 2, 'O', 0, 0, 0, 6,
		0, 0, 0, 0x21, 0, 0, 0x10, 0x80, 0, 0, 0, 5, 'i', 0 };

	macros[SMFIM_EOM] = "i";
	milter_put_optneg(&b, 6, 0x21, 0x1080, macros);
	TT_CHECK_INT(mbuf_avail(&b), ==, sizeof(want));
	TT_CHECK(memcmp(mbuf_data(&b), want, sizeof(want)) == 0);
	mbuf_free(&b);
}

static void
test_replycode(void)
{
	struct mbuf b = { 0 };
	const char *err = NULL;

	TT_CHECK_INT(milter_put_replycode(&b, "550", "5.7.1", "no 100%", &err),
	    ==, 0);
	TT_CHECK_INT(mbuf_data(&b)[4], ==, 'y');
	TT_CHECK_STR((const char *)mbuf_data(&b) + 5, "550 5.7.1 no 100%%");
	mbuf_reset(&b);
	TT_CHECK_INT(milter_put_replycode(&b, "554", "5.7.1",
	    "first line\nsecond line", &err), ==, 0);
	TT_CHECK_STR((const char *)mbuf_data(&b) + 5,
	    "554-5.7.1 first line\r\n554 5.7.1 second line");
	mbuf_reset(&b);
	TT_CHECK_INT(milter_put_replycode(&b, "451", NULL, "later", &err), ==,
	    0);
	TT_CHECK_STR((const char *)mbuf_data(&b) + 5, "451 later");
	mbuf_reset(&b);
	/* invalid: 2xx, class mismatch, bad xcode, CR, too long */
	TT_CHECK_INT(milter_put_replycode(&b, "250", NULL, "ok", &err), ==, -1);
	TT_CHECK_INT(milter_put_replycode(&b, "550", "4.7.1", "x", &err), ==,
	    -1);
	TT_CHECK_INT(milter_put_replycode(&b, "550", "5.7", "x", &err), ==, -1);
	TT_CHECK_INT(milter_put_replycode(&b, "550", "5.7.1234", "x", &err), ==,
	    -1);
	TT_CHECK_INT(milter_put_replycode(&b, "55", NULL, "x", &err), ==, -1);
	TT_CHECK_INT(milter_put_replycode(&b, "550", NULL, "a\rb", &err), ==,
	    -1);
	{
		char longl[1200];

		memset(longl, 'x', sizeof(longl) - 1);
		longl[sizeof(longl) - 1] = '\0';
		TT_CHECK_INT(milter_put_replycode(&b, "550", NULL, longl,
		    &err), ==, -1);
	}
	TT_CHECK_INT(mbuf_avail(&b), ==, 0);
	mbuf_free(&b);
}

static void
test_put_mods(void)
{
	struct mbuf b = { 0 };
	static uint8_t big[70000];
	struct milter_frame f;
	const char *err;
	size_t used, off = 0;
	int frames = 0;

	milter_put_addheader(&b, "X-A", "v");
	milter_put_insheader(&b, 0, "X-B", "w");
	milter_put_chgheader(&b, 2, "Subject", "");
	milter_put_chgfrom(&b, "<f@x>", "RET=HDRS");
	milter_put_addrcpt(&b, "<r@x>", NULL);
	milter_put_addrcpt(&b, "<r@x>", "NOTIFY=NEVER");
	milter_put_delrcpt(&b, "<d@x>");
	milter_put_quarantine(&b, "held");
	milter_put_replbody(&b, big, sizeof(big));
	milter_put_simple(&b, SMFIR_CONTINUE);
	while (milter_frame_parse(mbuf_data(&b) + off, mbuf_avail(&b) - off,
	    MILTER_MAX_FRAME, &f, &used, &err) == MILTER_PARSE_FRAME) {
		off += used;
		frames++;
		if (frames == 2)
			TT_CHECK(f.cmd == 'i' && f.len == 4 + 4 + 2 &&
			    f.data[3] == 0);
		if (frames == 6)
			TT_CHECK(f.cmd == '2');
		if (frames == 9)
			TT_CHECK(f.cmd == 'b' && f.len == 65535);
		if (frames == 10)
			TT_CHECK(f.cmd == 'b' && f.len == 70000 - 65535);
	}
	TT_CHECK_INT(frames, ==, 11);
	TT_CHECK_INT(off, ==, mbuf_avail(&b));
	TT_CHECK_INT(milter_cmd_nr_bit('R'), ==, SMFIP_NR_RCPT);
	TT_CHECK_INT(milter_cmd_no_bit('B'), ==, SMFIP_NOBODY);
	TT_CHECK(!milter_cmd_known('Z'));
	mbuf_free(&b);
}

TT_MAIN(
	{ "proto/frame_split", test_frame_split },
	{ "proto/frame_two_in_one", test_frame_two_in_one },
	{ "proto/frame_bad", test_frame_bad },
	{ "proto/optneg", test_optneg },
	{ "proto/connect", test_connect },
	{ "proto/argv", test_argv },
	{ "proto/header_macros", test_header_and_macros },
	{ "proto/put_optneg", test_put_optneg },
	{ "proto/replycode", test_replycode },
	{ "proto/put_mods", test_put_mods },
)

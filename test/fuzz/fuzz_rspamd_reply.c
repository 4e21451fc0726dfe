/* fuzz_rspamd_reply.c -- libFuzzer target: arbitrary bytes as rspamd's
 * /checkv2 JSON; on success, every stored string must be free of line
 * breaks that could start a header or reply line, and the X-Spamd-Result
 * value is formatted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rspamd_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No control characters at all. */
static void
check_line(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			abort();
}

/* Only folds: LF always followed by a blank, no CR, never leading. */
static void
check_header(const char *s)
{
	size_t k;

	for (k = 0; s != NULL && s[k] != '\0'; k++) {
		unsigned char c = (unsigned char)s[k];

		if (c == '\n' && (k == 0 || (s[k + 1] != ' ' &&
		    s[k + 1] != '\t')))
			abort();
		if (c != '\n' && c != '\t' && (c < ' ' || c == 0x7f))
			abort();
	}
}

static void
check_name(const char *s)
{
	if (*s == '\0')
		abort();
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == ':')
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rspamd_result r;
	char err[128], *s;
	size_t i;

	err[0] = '\0';
	if (rspamd_result_parse(&r, (const char *)data, size, err,
	    sizeof(err)) < 0) {
		if (err[0] == '\0' || r.nsymbols != 0 || r.subject != NULL)
			abort();
		rspamd_result_free(&r);
		return 0;
	}
	if (r.nsymbols > RSPAMD_SYMBOLS_MAX || r.nadd > RSPAMD_HEADERS_MAX ||
	    r.nrm > RSPAMD_HEADERS_MAX)
		abort();
	check_line(r.subject);
	check_line(r.smtp_message);
	check_line(r.message_id);
	check_header(r.dkim_signature);
	for (i = 0; i < r.nsymbols; i++) {
		check_line(r.symbols[i].name);
		check_line(r.symbols[i].options);
		if (r.symbols[i].options != NULL &&
		    strlen(r.symbols[i].options) > RSPAMD_OPTIONS_MAX)
			abort();
	}
	for (i = 0; i < r.nadd; i++) {
		check_name(r.add[i].name);
		check_header(r.add[i].value);
	}
	for (i = 0; i < r.nrm; i++)
		check_name(r.rm[i].name);
	(void)rspamd_action_name(r.action);
	s = rspamd_result_format(&r);
	free(s);
	rspamd_result_free(&r);
	return 0;
}

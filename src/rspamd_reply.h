/* rspamd_reply.h -- rspamd's /checkv2 JSON reply -> struct rspamd_result,
 * and rmilter's X-Spamd-Result header value.
 *
 * Contract:
 *   - rspamd_result_parse() takes the HTTP body (any bytes; it need not be
 *     NUL-terminated).  Both shapes are accepted: the current one (score,
 *     required_score, action, subject, symbols at the top level) and the
 *     older one with those inside a "default" metric object (where symbols
 *     may also be the metric's object members themselves).  The reply block
 *     is "milter", or the legacy "rmilter".
 *   - Required: action (a known action name) and score; required_score too
 *     unless is_skipped is true.  Wrong types for those, for "symbols", for
 *     the milter block and its add_headers / remove_headers are errors.
 *     Optional scalars (is_skipped, subject, messages.smtp_message,
 *     message-id, dkim-signature, time_real) of a wrong type are ignored;
 *     so are individual symbol or header entries of a wrong shape.
 *     Unknown fields are ignored.  Duplicate keys are an error, and so is
 *     a NUL in an object key (jansson refuses it; in values it is allowed
 *     and sanitized).
 *   - Every string is sanitized before it is stored: NUL and control
 *     characters become spaces.  Header values (add_headers and
 *     dkim_signature) keep folding: CR LF or LF followed by a space or tab
 *     becomes LF + that blank (milter wants LF-only folds); any other CR or
 *     LF becomes a space, so no value can start a new header line.  Header
 *     names that are not printable ASCII without ':' are dropped.
 *   - At most RSPAMD_SYMBOLS_MAX symbols and RSPAMD_HEADERS_MAX entries in
 *     each header list are kept (the rest are ignored); a symbol's options
 *     are joined with ", " up to RSPAMD_OPTIONS_MAX bytes.
 *   - Scores beyond +-RSPAMD_SCORE_MAX are an error for the message score
 *     and required_score; such a symbol is dropped.
 *   - The result owns all its strings and arrays; rspamd_result_free()
 *     releases them.  After a failed parse the result is empty (freeing it
 *     is allowed and does nothing). */
#ifndef RMILTER_RSPAMD_REPLY_H
#define RMILTER_RSPAMD_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define RSPAMD_SYMBOLS_MAX	2048
#define RSPAMD_HEADERS_MAX	64
#define RSPAMD_OPTIONS_MAX	1024
#define RSPAMD_SCORE_MAX	1e9

enum rspamd_action {
	RSPAMD_NO_ACTION = 0,
	RSPAMD_GREYLIST,
	RSPAMD_ADD_HEADER,
	RSPAMD_REWRITE_SUBJECT,
	RSPAMD_SOFT_REJECT,
	RSPAMD_REJECT,
	RSPAMD_DISCARD,
	RSPAMD_QUARANTINE,
};

struct rspamd_symbol {
	char *name;
	double score;
	char *options;		/* "a, b" or NULL */
};

/* milter.add_headers, arrays flattened */
struct rspamd_hdr {
	char *name;
	char *value;
	int order;
	bool has_order;
};

/* milter.remove_headers: index 0 = every instance */
struct rspamd_rmhdr {
	char *name;
	int index;
};

struct rspamd_result {
	enum rspamd_action action;
	bool is_skipped;
	double score, required_score;
	/* NULL if absent */
	char *subject, *smtp_message, *message_id, *dkim_signature;
	struct rspamd_symbol *symbols;
	size_t nsymbols;
	struct rspamd_hdr *add;
	size_t nadd;
	struct rspamd_rmhdr *rm;
	size_t nrm;
	double time_real;	/* seconds; 0 if absent */
};

/* Parses JSON[0..LEN) into R (overwritten).  Returns 0, or -1 with ERR
 * (ERRLEN bytes) filled: "not JSON: ...", "not a JSON object", "no action",
 * "unknown action \"x\"", "score not a number", ... */
int rspamd_result_parse(struct rspamd_result *r, const char *json, size_t len,
    char *err, size_t errlen);
void rspamd_result_free(struct rspamd_result *r);

/* "no action", "greylist", "add header", "rewrite subject", "soft reject",
 * "reject", "discard", "quarantine"; "unknown" for anything else. */
const char *rspamd_action_name(enum rspamd_action a);

/* rmilter's X-Spamd-Result value: "default: True [15.00 / 15.00]" (True
 * when score >= required_score), then per symbol "\n\t SYM(0.00)[opt1,
 * opt2]" sorted by descending |score|, then by name.  Returns a malloc'd
 * string the caller frees. */
char *rspamd_result_format(const struct rspamd_result *r);

#endif

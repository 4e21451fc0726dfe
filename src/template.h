/* template.h -- reply text templates: ${queue_id}, ${from}, ${rcpt}, ${ip},
 * ${helo}, ${module}, ${reason}, ${score}. */
#ifndef RMILTER_TEMPLATE_H
#define RMILTER_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

struct template_vars {
	const char *queue_id;
	const char *from;
	const char *rcpt;
	const char *ip;
	const char *helo;
	const char *module;
	const char *reason;
	double score;
	bool has_score;
};

/* Expands TMPL into OUT (size LEN, always NUL-terminated, truncated if
 * needed).  Unknown variables are kept as written; a missing value expands
 * to "".  Values are made safe for an SMTP reply: CR, LF and other control
 * characters become spaces.  Returns the length written. */
size_t template_expand(const char *tmpl, const struct template_vars *v,
    char *out, size_t len);

#endif

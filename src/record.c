/* record.c -- emits a decision record: the one summary log line per message
 * (queue id, client, helo, envelope, auth, size, final action, and per
 * module: result, reason, ms), the JSON audit record and the counters. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "record.h"

/* Appends printf output to BUF at *OFF, never past LEN. */
static void
put(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

static void
summary_modules(const struct decision_record *r, char *buf, size_t len,
    size_t *off)
{
	char esc[200];
	size_t i;

	for (i = 0; i < r->nmodules; i++) {
		const struct module_result *m = r->modules[i].res;

		if (m->skipped) {
			put(buf, len, off, " %s=skipped (%s)", r->modules[i].name,
			    m->why);
			continue;
		}
		if (!m->ran && m->action == MACT_NONE)
			continue;
		log_escape(esc, sizeof(esc), m->reason, sizeof(m->reason));
		put(buf, len, off, " %s=%s (%s%s%.1f ms", r->modules[i].name,
		    module_action_name(m->action), esc, esc[0] ? ", " : "",
		    m->ms);
		if (m->has_score)
			put(buf, len, off, ", score %.2f", m->score);
		if (m->rcpt_refused > 0)
			put(buf, len, off, ", %u rcpt refused", m->rcpt_refused);
		if (m->server[0] != '\0')
			put(buf, len, off, ", server %s", m->server);
		if (m->error[0] != '\0') {
			log_escape(esc, sizeof(esc), m->error, sizeof(m->error));
			put(buf, len, off, ", error: %s", esc);
		}
		if (m->shadow_action != MACT_NONE) {
			log_escape(esc, sizeof(esc), m->shadow_reason,
			    sizeof(m->shadow_reason));
			put(buf, len, off, ", shadow: would %s: %s",
			    module_action_name(m->shadow_action), esc);
		}
		put(buf, len, off, ")");
	}
}

/* The summary line is kept under ~2 KB (syslog truncates long lines):
 * recipients beyond what fits are counted, not listed. */
static void
record_log_summary(const struct decision_record *r)
{
	char line[2048], esc[300];
	size_t off = 0, i;

	log_escape(esc, sizeof(esc), r->queue_id, 64);
	put(line, sizeof(line), &off, "%s msg done: qid=%s", r->sid, esc);
	log_escape(esc, sizeof(esc), r->client_host, 256);
	put(line, sizeof(line), &off, " client=%s[", esc);
	log_escape(esc, sizeof(esc), r->client_addr, 64);
	put(line, sizeof(line), &off, "%s]", esc);
	log_escape(esc, sizeof(esc), r->helo, 256);
	put(line, sizeof(line), &off, " helo=%s", esc);
	log_escape(esc, sizeof(esc), r->from, 256);
	put(line, sizeof(line), &off, " from=%s rcpts=%zu:", esc, r->nrcpts);
	for (i = 0; i < r->nrcpts && off < 900; i++) {
		log_escape(esc, sizeof(esc), r->rcpts[i], 256);
		put(line, sizeof(line), &off, "%s%s", i ? "," : "", esc);
	}
	if (i < r->nrcpts)
		put(line, sizeof(line), &off, ",...");
	if (r->rcpts_refused > 0)
		put(line, sizeof(line), &off, " refused=%u", r->rcpts_refused);
	log_escape(esc, sizeof(esc), r->auth_user ? r->auth_user : "-", 128);
	put(line, sizeof(line), &off, " auth=%s%s size=%llu action=%s", esc,
	    r->authenticated && r->auth_user == NULL ? "(our_networks)" : "",
	    (unsigned long long)r->size, r->action);
	if (r->decided_by != NULL)
		put(line, sizeof(line), &off, " by=%s@%s", r->decided_by,
		    r->stage);
	if (r->reply != NULL) {
		log_escape(esc, sizeof(esc), r->reply, 256);
		put(line, sizeof(line), &off, " reply=\"%s\"", esc);
	}
	if (r->whitelisted)
		put(line, sizeof(line), &off, " whitelisted");
	if (r->noop)
		put(line, sizeof(line), &off, " noop");
	put(line, sizeof(line), &off, " ms=%.1f", r->ms);
	summary_modules(r, line, sizeof(line), &off);
	log_info("%s", line);
}

void (*record_emit_hook)(const struct decision_record *r);

void
record_emit(const struct rmilter_config *conf, const struct decision_record *r)
{
	if (record_emit_hook != NULL)
		record_emit_hook(r);
	if (log_get_level() >= LOG_LEVEL_INFO)
		record_log_summary(r);
	if (conf->audit_log != NULL)
		audit_log_write(conf, r);
	stats_count(r);
}

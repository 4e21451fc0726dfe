/* log.c -- leveled logging to syslog, stderr or a file (reopened on SIGUSR1). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include <stdlib.h>

static struct {
	enum log_target target;
	enum log_level level;
	char ident[64];
	char *file;
	FILE *fp;
} L = { LOG_TO_STDERR, LOG_LEVEL_INFO, "rmilter", NULL, NULL };

static const char *const level_names[] = {
	"error", "warning", "notice", "info", "debug"
};

static const int level_syslog[] = {
	LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG
};

static const struct {
	const char *name;
	int fac;
} facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

int
log_facility_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcasecmp(name, facilities[i].name) == 0)
			return facilities[i].fac;
	return -1;
}

void
log_init(const char *ident)
{
	snprintf(L.ident, sizeof(L.ident), "%s", ident);
	L.target = LOG_TO_STDERR;
	L.level = LOG_LEVEL_INFO;
}

enum log_level
log_get_level(void)
{
	return L.level;
}

int
log_configure(enum log_target target, const char *ident, const char *facility,
    const char *file, enum log_level level)
{
	FILE *fp = NULL;
	int fac;

	if (target == LOG_TO_FILE) {
		if ((fp = fopen(file, "a")) == NULL) {
			log_error("cannot open log file %s: %s", file,
			    strerror(errno));
			return -1;
		}
		setvbuf(fp, NULL, _IOLBF, 0);
	}
	if (L.fp != NULL)
		fclose(L.fp);
	L.fp = fp;
	free(L.file);
	L.file = file ? xstrdup(file) : NULL;
	if (L.target == LOG_TO_SYSLOG)
		closelog();
	snprintf(L.ident, sizeof(L.ident), "%s", ident ? ident : "rmilter");
	if (target == LOG_TO_SYSLOG) {
		fac = log_facility_parse(facility ? facility : "mail");
		openlog(L.ident, LOG_PID | LOG_NDELAY, fac < 0 ? LOG_MAIL : fac);
	}
	L.target = target;
	L.level = level;
	return 0;
}

void
log_reopen(void)
{
	FILE *fp;

	if (L.target != LOG_TO_FILE || L.file == NULL)
		return;
	if ((fp = fopen(L.file, "a")) == NULL) {
		log_error("cannot reopen log file %s: %s", L.file,
		    strerror(errno));
		return;
	}
	setvbuf(fp, NULL, _IOLBF, 0);
	fclose(L.fp);
	L.fp = fp;
	log_info("log file %s reopened", L.file);
}

void
log_close(void)
{
	if (L.fp != NULL)
		fclose(L.fp);
	L.fp = NULL;
	free(L.file);
	L.file = NULL;
	if (L.target == LOG_TO_SYSLOG)
		closelog();
	L.target = LOG_TO_STDERR;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[2048], ts[64];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	FILE *fp;

	if (lvl > L.level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (L.target == LOG_TO_SYSLOG) {
		syslog(level_syslog[lvl], "%s: %s", level_names[lvl], line);
		return;
	}
	fp = (L.target == LOG_TO_FILE && L.fp != NULL) ? L.fp : stderr;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(fp, "%s.%03d %s[%d]: %s: %s\n", ts, (int)(tv.tv_usec / 1000),
	    L.ident, (int)getpid(), level_names[lvl], line);
}

char *
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i, j = 0;

	if (dstlen == 0)
		return dst;
	for (i = 0; i < srclen && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];

		if (j + 4 >= dstlen) {
			if (dstlen >= 4) {
				j = dstlen - 4;
				memcpy(dst + j, "...", 3);
				j += 3;
			}
			break;
		}
		dst[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[j] = '\0';
	return dst;
}

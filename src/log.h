/* log.h -- leveled logging to syslog, stderr or a file. */
#ifndef RMILTER_LOG_H
#define RMILTER_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "conf.h"

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_FILE };

/* Starts logging to stderr at info level (before the config is read). */
void log_init(const char *ident);
/* Applies TARGET/level; FILE is used for LOG_TO_FILE, FACILITY for syslog.
 * Returns -1 (and keeps the previous target) if the file cannot be opened. */
int log_configure(enum log_target target, const char *ident,
    const char *facility, const char *file, enum log_level level);
/* Reopens the log file (SIGUSR1); no-op for other targets. */
void log_reopen(void);
void log_close(void);
enum log_level log_get_level(void);
int log_facility_parse(const char *name);	/* -1 if unknown */

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	do {						\
	if (log_get_level() >= LOG_LEVEL_DEBUG)				\
		log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);			\
} while (0)

/* Copies peer-supplied bytes into DST (size DSTLEN, always NUL-terminated),
 * replacing non-printable bytes by '?' and truncating with "..." ; returns DST. */
char *log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);

#endif

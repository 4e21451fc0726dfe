/* stats_internal.h -- what stats.c shares with its tests and fuzz target:
 * the control-socket command parser (a pure function) and test hooks. */
#ifndef RMILTER_STATS_INTERNAL_H
#define RMILTER_STATS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#define STATS_CONTROL_MAX_LINE	1024	/* bytes of input accepted */
#define STATS_CONTROL_TIMEOUT	2	/* s a client may take in all */
#define STATS_CONTROL_MAX_CONNS	16	/* more are closed at once */
#define STATS_MAX_MODULES	32	/* module names counted */

enum stats_cmd {
	STATS_CMD_MORE = 0,	/* no complete line yet */
	STATS_CMD_STATS,	/* "stats": the text counters */
	STATS_CMD_JSON,		/* "stats json": the same as one JSON object */
	STATS_CMD_UNKNOWN,	/* a line, but not a command we know */
	STATS_CMD_TOO_LONG,	/* STATS_CONTROL_MAX_LINE bytes, no newline */
	STATS_CMD_EMPTY,	/* end of input before any byte */
};

/* Parses the first line of the LEN bytes at BUF (not NUL-terminated, any
 * bytes).  The line ends at '\n' ("\r\n" and trailing blanks are ignored)
 * or, if EOF is true, at the end of the input. */
enum stats_cmd stats_control_parse(const char *buf, size_t len, bool eof);

/* The counters as one JSON object on one line plus '\n'; malloc'ed. */
char *stats_format_json(void);

/* Tests: sets every counter back to zero. */
void stats_reset(void);

#endif

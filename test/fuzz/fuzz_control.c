/* fuzz_control.c -- libFuzzer target for the control-socket command parser
 * (stats_control_parse): any bytes, with and without end of input, and
 * every prefix of the input as the server sees it arrive. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stats_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	enum stats_cmd a, b;
	size_t i;

	a = stats_control_parse(buf, size, false);
	b = stats_control_parse(buf, size, true);
	if (b == STATS_CMD_MORE)
		__builtin_trap();	/* end of input always decides */
	if (a != STATS_CMD_MORE && a != b)
		__builtin_trap();	/* a full line does not depend on EOF */
	if (a == STATS_CMD_MORE &&
	    (memchr(buf, '\n', size) != NULL || size >= STATS_CONTROL_MAX_LINE))
		__builtin_trap();
	/* the bytes arriving one by one: once decided, more input changes
	 * nothing */
	for (i = 0; i < size && i <= STATS_CONTROL_MAX_LINE + 1; i++) {
		enum stats_cmd p = stats_control_parse(buf, i, false);

		if (p != STATS_CMD_MORE && p != a)
			__builtin_trap();
	}
	return 0;
}

/* fuzz_conf.c -- libFuzzer target for the rmilter.conf loader.  Build with
 * -DFUZZING so that .include is refused (no filesystem access from input). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"

#ifndef FUZZING
#error "build the fuzz target with -DFUZZING (it disables .include)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_diag d;
	struct rmilter_config *c;
	char buf[1200];
	size_t i;

	conf_diag_init(&d);
	c = conf_load_buffer("fuzz.conf", (const char *)data, size, &d);
	for (i = 0; i < d.n; i++)	/* exercise the formatter too */
		conf_diag_format(&d.v[i], buf, sizeof(buf));
	if (c != NULL && d.nerrors != 0)
		__builtin_trap();	/* a config is only returned error-free */
	conf_unref(c);
	conf_diag_free(&d);
	return 0;
}

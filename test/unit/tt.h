/* tt.h -- a tiny unit-test runner: case tables, name filters, one summary line.
 *
 * A test file defines   static void test_x(void) { TT_CHECK(...); }
 * and ends with         TT_MAIN({"group/x", test_x}, ...)
 * Run: ./test_foo [-l] [substring...]   Last line: "N passed, N failed". */
#ifndef TT_H
#define TT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tt_case {
	const char *name;
	void (*fn)(void);
};

static int tt_failed_checks;

#define TT_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "  %s:%d: check failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
		tt_failed_checks++;					\
	}								\
} while (0)

#define TT_CHECK_INT(a, op, b) do {					\
	long long tt_a_ = (long long)(a), tt_b_ = (long long)(b);	\
	if (!(tt_a_ op tt_b_)) {					\
		fprintf(stderr, "  %s:%d: check failed: %s %s %s "	\
		    "(%lld vs %lld)\n", __FILE__, __LINE__, #a, #op, #b, \
		    tt_a_, tt_b_);					\
		tt_failed_checks++;					\
	}								\
} while (0)

#define TT_CHECK_STR(a, b) do {						\
	const char *tt_a_ = (a), *tt_b_ = (b);				\
	if (tt_a_ == NULL || tt_b_ == NULL || strcmp(tt_a_, tt_b_) != 0) { \
		fprintf(stderr, "  %s:%d: check failed: %s == %s "	\
		    "(\"%s\" vs \"%s\")\n", __FILE__, __LINE__, #a, #b,	\
		    tt_a_ ? tt_a_ : "(null)", tt_b_ ? tt_b_ : "(null)");	\
		tt_failed_checks++;					\
	}								\
} while (0)

static int
tt_run(const struct tt_case *cases, size_t n, int argc, char **argv)
{
	int passed = 0, failed = 0, i;
	size_t k;

	if (argc > 1 && strcmp(argv[1], "-l") == 0) {
		for (k = 0; k < n; k++)
			printf("%s\n", cases[k].name);
		return 0;
	}
	for (k = 0; k < n; k++) {
		int want = argc <= 1;
		for (i = 1; i < argc; i++)
			if (strstr(cases[k].name, argv[i]) != NULL)
				want = 1;
		if (!want)
			continue;
		tt_failed_checks = 0;
		cases[k].fn();
		if (tt_failed_checks == 0) {
			passed++;
			printf("ok   %s\n", cases[k].name);
		} else {
			failed++;
			printf("FAIL %s\n", cases[k].name);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define TT_MAIN(...)							\
	static const struct tt_case tt_cases_[] = { __VA_ARGS__ };	\
	int main(int argc, char **argv)					\
	{								\
		return tt_run(tt_cases_, sizeof(tt_cases_) /		\
		    sizeof(tt_cases_[0]), argc, argv);			\
	}

#endif

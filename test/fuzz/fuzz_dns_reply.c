/* fuzz_dns_reply.c -- libFuzzer target for dns_answer_parse (the DNS reply
 * bytes of the spf module's resolver: network input).
 *
 * Input: byte 0 picks the type asked (mod 5: A, AAAA, TXT, MX, PTR), the
 * rest is the reply as c-ares would hand it with ARES_SUCCESS.  Checked: no
 * crash or leak; a DNS_OK answer has 1..DNS_ANSWER_MAX_RR records, each TXT,
 * MX and PTR record has a NUL-terminated text (TXT at most
 * DNS_ANSWER_MAX_TEXT bytes); any other status has no records; a copy
 * equals the original. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[5] = { DNS_T_A, DNS_T_AAAA, DNS_T_TXT,
	    DNS_T_MX, DNS_T_PTR };
	struct dns_answer a, b;
	int type;
	size_t i;

	if (size < 1)
		return 0;
	type = types[data[0] % 5];
	dns_answer_parse(&a, type, 0 /* ARES_SUCCESS */, data + 1, size - 1);
	if (a.status == DNS_OK) {
		if (a.n == 0 || a.n > DNS_ANSWER_MAX_RR)
			abort();
		for (i = 0; i < a.n; i++) {
			if (type == DNS_T_A || type == DNS_T_AAAA)
				continue;
			if (a.rr[i].text == NULL)
				abort();
			if (type == DNS_T_TXT &&
			    strlen(a.rr[i].text) > DNS_ANSWER_MAX_TEXT)
				abort();
		}
	} else if (a.n != 0 || a.rr != NULL) {
		abort();
	}
	dns_answer_copy(&b, &a);
	if (b.n != a.n || b.status != a.status)
		abort();
	for (i = 0; i < a.n; i++)
		if (memcmp(a.rr[i].addr, b.rr[i].addr, 16) != 0 ||
		    (a.rr[i].text != NULL &&
		    strcmp(a.rr[i].text, b.rr[i].text) != 0))
			abort();
	dns_answer_free(&b);
	dns_answer_free(&a);
	return 0;
}

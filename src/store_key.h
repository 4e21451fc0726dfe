/* store_key.h -- how the policy modules name their store records: a
 * configured prefix, a separator, and a printable body (hashed when it
 * carries free text such as a triplet), so keys are portable, bounded and
 * the same on every MTA that shares the store. */
#ifndef RMILTER_STORE_KEY_H
#define RMILTER_STORE_KEY_H

#include <stddef.h>
#include <stdint.h>

/* PREFIX + ":" (unless PREFIX already ends in '.', ':', '_' or '-') +
 * BODY; malloc'ed. */
char *store_key_make(const char *prefix, const char *body);

/* PREFIX + sep + the hex SHA-256 (first 16 bytes) of the NUL-separated
 * PARTS; malloc'ed. */
char *store_key_hash(const char *prefix, const char *const *parts,
    size_t nparts);

/* The client network of ADDR (FAMILY AF_INET/AF_INET6) with the mask:
 * "192.0.2.0/24", "2001:db8::/64".  Returns OUT. */
char *store_key_net(int family, const uint8_t addr[16], unsigned v4mask,
    unsigned v6mask, char *out, size_t len);

/* An address as a key body: lowercased, without <> and blanks; "" for the
 * null sender.  Returns OUT. */
char *store_key_addr(const char *addr, char *out, size_t len);

/* Wall-clock milliseconds: the NOW of store operations (shared by every
 * MTA of a redis store, so not a monotonic clock). */
uint64_t store_now(void);

#endif

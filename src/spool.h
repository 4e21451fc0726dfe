/* spool.h -- the message as delivered (headers, blank line, body), kept in
 * memory up to a limit and then in a temp file that is unlinked as soon as it
 * is created (so it never outlives the process, even on a crash).  Shared by
 * every module that reads the whole message; readers get the memory or the
 * fd, never a copy. */
#ifndef RMILTER_SPOOL_H
#define RMILTER_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spool;

/* A new empty spool; the file (if needed) is made in TEMPDIR with MODE.
 * Never fails (memory only until the first spill). */
struct spool *spool_new(const char *tempdir, unsigned mode,
    uint64_t memory_limit);
/* Appends N bytes; spills to a file once the total passes the limit.
 * Returns -1 and fills ERR if the file cannot be made or written (the
 * spool is then unusable: the caller tempfails the message). */
int spool_append(struct spool *sp, const void *p, size_t n, char *err,
    size_t errlen);
uint64_t spool_size(const struct spool *sp);
/* The bytes, if in memory (else NULL). */
const uint8_t *spool_memory(const struct spool *sp, size_t *len);
/* The file descriptor, if on file (else -1); read it with pread. */
int spool_fd(const struct spool *sp);
/* Copies up to N bytes at OFF into BUF; returns bytes read or -1. */
ssize_t spool_read(const struct spool *sp, uint64_t off, void *buf, size_t n);
void spool_free(struct spool *sp);	/* NULL ok */

/* Number of spools that went to a file since start, and that are open now
 * (for the counters and the tests). */
uint64_t spool_files_total(void);
unsigned spool_files_open(void);

#endif

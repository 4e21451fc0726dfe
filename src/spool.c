/* spool.c -- the message spool: a growable memory buffer up to a limit, then
 * an anonymous temp file (created with mkostemp and unlinked at once, so it
 * never outlives the process, not even on SIGKILL). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "xmalloc.h"

#define SPOOL_TEMPLATE	"rmilter.XXXXXX"
#define SPOOL_MIN_CAP	4096
#define SPOOL_ERR_LEN	256

struct spool {
	char		*tempdir;	/* owned copy */
	unsigned	 mode;		/* file mode, applied with fchmod */
	uint64_t	 limit;		/* bytes kept in memory at most */
	uint64_t	 size;		/* bytes stored (memory or file) */
	uint8_t		*mem;		/* memory case: buffer of cap bytes */
	size_t		 cap;
	int		 fd;		/* file case: >= 0 (unlinked file) */
	bool		 failed;	/* sticky: every append fails */
	char		 err[SPOOL_ERR_LEN];	/* the first error, replayed */
};

static uint64_t spool_nfiles_total;
static unsigned spool_nfiles_open;

static void
spool_err_copy(const struct spool *sp, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", sp->err);
}

/* Marks SP failed with "spool: WHAT TEMPDIR: strerror(ERRNUM)", releases its
 * memory and file, copies the message into ERR; returns -1. */
static int
spool_fail(struct spool *sp, const char *what, int errnum, char *err,
    size_t errlen)
{
	snprintf(sp->err, sizeof(sp->err), "spool: %s %s: %s", what,
	    sp->tempdir, strerror(errnum));
	sp->failed = true;
	free(sp->mem);
	sp->mem = NULL;
	sp->cap = 0;
	if (sp->fd >= 0) {
		close(sp->fd);
		sp->fd = -1;
		spool_nfiles_open--;
	}
	spool_err_copy(sp, err, errlen);
	return -1;
}

/* Writes all N bytes of P to FD (retries partial writes and EINTR).
 * Returns 0, or -1 with errno set. */
static int
spool_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t chunk = n > (1u << 30) ? (1u << 30) : n;
		ssize_t w = write(fd, p, chunk);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {		/* should not happen on a regular file */
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Creates the unlinked temp file and moves the memory content into it.
 * Returns 0, or -1 with SP failed and ERR filled. */
static int
spool_spill(struct spool *sp, char *err, size_t errlen)
{
	size_t dl = strlen(sp->tempdir);
	char *path;
	int fd, e;

	path = xmalloc(dl + 1 + sizeof(SPOOL_TEMPLATE));
	memcpy(path, sp->tempdir, dl);
	path[dl] = '/';
	memcpy(path + dl + 1, SPOOL_TEMPLATE, sizeof(SPOOL_TEMPLATE));
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		free(path);
		return spool_fail(sp, "cannot create a file in", e, err,
		    errlen);
	}
	/* no name for longer than this */
	if (unlink(path) != 0) {
		e = errno;
		free(path);
		close(fd);
		return spool_fail(sp, "cannot unlink a new file in", e, err,
		    errlen);
	}
	free(path);
	sp->fd = fd;
	spool_nfiles_total++;
	spool_nfiles_open++;
	if (fchmod(fd, sp->mode & 07777) != 0)
		return spool_fail(sp, "cannot set the mode of a file in",
		    errno, err, errlen);
	if (sp->size > 0 &&
	    spool_write_all(fd, sp->mem, (size_t)sp->size) != 0)
		return spool_fail(sp, "cannot write to a file in", errno, err,
		    errlen);
	free(sp->mem);
	sp->mem = NULL;
	sp->cap = 0;
	return 0;
}

struct spool *
spool_new(const char *tempdir, unsigned mode, uint64_t memory_limit)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));

	sp->tempdir = xstrdup(tempdir != NULL && *tempdir != '\0' ?
	    tempdir : "/tmp");
	sp->mode = mode;
	sp->limit = memory_limit;
	sp->fd = -1;
	return sp;
}

/* Appends N bytes of P.  The spool stays in memory while its total is at
 * most the limit (so with a limit of 0 the first non-empty append makes
 * the file).  Returns 0, or -1 with ERR filled; after a failure the spool
 * holds no memory and no file, and every later append fails with the same
 * message. */
int
spool_append(struct spool *sp, const void *p, size_t n, char *err,
    size_t errlen)
{
	uint64_t total;

	if (sp == NULL || (p == NULL && n > 0)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "spool: invalid append");
		return -1;
	}
	if (sp->failed) {
		spool_err_copy(sp, err, errlen);
		return -1;
	}
	if (n == 0)
		return 0;
	if ((uint64_t)n > UINT64_MAX - sp->size)
		return spool_fail(sp, "message too large for", EFBIG, err,
		    errlen);
	total = sp->size + n;
	if (sp->fd < 0 && (total > sp->limit || total > SIZE_MAX)) {
		if (spool_spill(sp, err, errlen) != 0)
			return -1;
	}
	if (sp->fd >= 0) {
		if (spool_write_all(sp->fd, p, n) != 0)
			return spool_fail(sp, "cannot write to a file in",
			    errno, err, errlen);
		sp->size = total;
		return 0;
	}
	if (total > sp->cap) {
		size_t cap = sp->cap ? sp->cap : SPOOL_MIN_CAP;

		while (cap < total && cap <= SIZE_MAX / 2)
			cap *= 2;
		if (cap < total)
			cap = (size_t)total;
		if (cap > sp->limit)	/* never hold more than the limit */
			cap = (size_t)sp->limit;
		sp->mem = xrealloc(sp->mem, cap);
		sp->cap = cap;
	}
	memcpy(sp->mem + sp->size, p, n);
	sp->size = total;
	return 0;
}

uint64_t
spool_size(const struct spool *sp)
{
	return sp != NULL ? sp->size : 0;
}

/* The bytes if the spool is in memory (non-NULL even when empty), else
 * NULL (on file, or failed). */
const uint8_t *
spool_memory(const struct spool *sp, size_t *len)
{
	static const uint8_t empty[1];

	if (sp == NULL || sp->failed || sp->fd >= 0) {
		if (len != NULL)
			*len = 0;
		return NULL;
	}
	if (len != NULL)
		*len = (size_t)sp->size;
	return sp->mem != NULL ? sp->mem : empty;
}

int
spool_fd(const struct spool *sp)
{
	return sp != NULL ? sp->fd : -1;
}

/* Copies up to N bytes at OFF into BUF: returns the count (0 at or past the
 * end), or -1 (errno set) on a read error or a failed spool. */
ssize_t
spool_read(const struct spool *sp, uint64_t off, void *buf, size_t n)
{
	size_t want, got = 0;

	if (sp == NULL || (buf == NULL && n > 0)) {
		errno = EINVAL;
		return -1;
	}
	if (sp->failed) {
		errno = EIO;
		return -1;
	}
	if (off >= sp->size || n == 0)
		return 0;
	want = sp->size - off < n ? (size_t)(sp->size - off) : n;
	if (want > SSIZE_MAX)
		want = SSIZE_MAX;
	if (sp->fd < 0) {
		memcpy(buf, sp->mem + off, want);
		return (ssize_t)want;
	}
	while (got < want) {
		ssize_t r = pread(sp->fd, (uint8_t *)buf + got, want - got,
		    (off_t)(off + got));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

void
spool_free(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->fd >= 0) {
		close(sp->fd);
		spool_nfiles_open--;
	}
	free(sp->mem);
	free(sp->tempdir);
	free(sp);
}

uint64_t
spool_files_total(void)
{
	return spool_nfiles_total;
}

unsigned
spool_files_open(void)
{
	return spool_nfiles_open;
}

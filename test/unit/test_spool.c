/* test_spool.c -- unit tests of the message spool: memory/file boundary,
 * content across the spill, the unlinked temp file, its mode, counters,
 * failure paths and fd/file leaks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "tt.h"

static char tmpdir[256];

static void test_spool_cleanup(void) __attribute__((destructor));

static void
test_spool_cleanup(void)
{
	if (tmpdir[0] != '\0')
		rmdir(tmpdir);
}

/* A fresh private directory for the temp files (created once). */
static const char *
dir(void)
{
	if (tmpdir[0] == '\0') {
		const char *t = getenv("TMPDIR");

		snprintf(tmpdir, sizeof(tmpdir), "%s/test_spool.XXXXXX",
		    t != NULL && *t != '\0' ? t : "/tmp");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return tmpdir;
}

/* Number of entries named rmilter.* in D. */
static int
count_spool_names(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	int n = 0;

	if (dp == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL)
		if (strncmp(de->d_name, "rmilter.", 8) == 0)
			n++;
	closedir(dp);
	return n;
}

/* Number of open fds of this process. */
static int
count_fds(void)
{
	DIR *dp = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (dp == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dp);
	return n - 1;		/* the DIR's own fd */
}

static void
fill_random(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	srand(seed);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
}

/* Reads the whole spool three ways (spool_read in odd chunks, spool_memory
 * or the fd with pread) and compares with WANT. */
static void
check_content(struct spool *sp, const uint8_t *want, size_t n)
{
	uint8_t *buf = malloc(n + 1);
	size_t off = 0, chunk = 1;
	const uint8_t *m;
	size_t ml = 12345;
	ssize_t r;

	TT_CHECK_INT(spool_size(sp), ==, n);
	while (off < n) {
		r = spool_read(sp, off, buf + off, chunk);
		TT_CHECK(r > 0);
		if (r <= 0)
			break;
		off += (size_t)r;
		chunk = chunk * 3 + 1;
	}
	TT_CHECK_INT(off, ==, n);
	TT_CHECK(n == 0 || memcmp(buf, want, n) == 0);
	TT_CHECK_INT(spool_read(sp, n, buf, 1), ==, 0);
	TT_CHECK_INT(spool_read(sp, (uint64_t)n + 100, buf, 1), ==, 0);
	m = spool_memory(sp, &ml);
	if (spool_fd(sp) >= 0) {
		TT_CHECK(m == NULL);
		TT_CHECK_INT(ml, ==, 0);
		memset(buf, 0, n);
		r = pread(spool_fd(sp), buf, n + 1, 0);
		TT_CHECK_INT(r, ==, n);	/* nothing beyond the size */
		TT_CHECK(n == 0 || memcmp(buf, want, n) == 0);
	} else {
		TT_CHECK(m != NULL);
		TT_CHECK_INT(ml, ==, n);
		TT_CHECK(m == NULL || n == 0 || memcmp(m, want, n) == 0);
	}
	free(buf);
}

static void
test_memory_only(void)
{
	char err[256] = "";
	struct spool *sp = spool_new(dir(), 0600, 1000);
	uint64_t total = spool_files_total();
	size_t ml = 99;

	TT_CHECK(spool_memory(sp, &ml) != NULL);	/* empty, in memory */
	TT_CHECK_INT(ml, ==, 0);
	TT_CHECK_INT(spool_size(sp), ==, 0);
	TT_CHECK_INT(spool_fd(sp), ==, -1);
	TT_CHECK_INT(spool_append(sp, "hello ", 6, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_append(sp, "", 0, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_append(sp, NULL, 0, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_append(sp, "world", 5, err, sizeof(err)), ==, 0);
	check_content(sp, (const uint8_t *)"hello world", 11);
	TT_CHECK_INT(spool_fd(sp), ==, -1);
	TT_CHECK_INT(spool_files_total(), ==, total);
	TT_CHECK_INT(spool_files_open(), ==, 0);
	spool_free(sp);
	spool_free(NULL);
}

/* Total of SIZE bytes in one append, or in appends of STEP bytes, with the
 * limit LIMIT: the spool must be on file exactly when SIZE > LIMIT. */
static void
boundary_case(uint64_t limit, size_t size, size_t step)
{
	char err[256] = "";
	uint8_t *data = malloc(size + 1);
	struct spool *sp = spool_new(dir(), 0600, limit);
	uint64_t total = spool_files_total();
	size_t off = 0;

	fill_random(data, size, (unsigned)(size * 31 + step));
	while (off < size) {
		size_t n = size - off < step ? size - off : step;

		TT_CHECK_INT(spool_append(sp, data + off, n, err,
		    sizeof(err)), ==, 0);
		off += n;
		/* on file exactly once the total passed the limit */
		TT_CHECK_INT(spool_fd(sp) >= 0, ==, off > limit);
	}
	TT_CHECK_INT(spool_fd(sp) >= 0, ==, size > limit);
	TT_CHECK_INT(spool_files_total(), ==, total + (size > limit));
	TT_CHECK_INT(spool_files_open(), ==, size > limit);
	check_content(sp, data, size);
	spool_free(sp);
	TT_CHECK_INT(spool_files_open(), ==, 0);
	TT_CHECK_INT(count_spool_names(dir()), ==, 0);
	free(data);
}

static void
test_boundary_one_append(void)
{
	boundary_case(1000, 999, 100000);
	boundary_case(1000, 1000, 100000);
	boundary_case(1000, 1001, 100000);
	boundary_case(1, 1, 100000);
	boundary_case(1, 2, 100000);
	boundary_case(4096, 4096, 100000);	/* the first buffer size */
	boundary_case(4097, 4097, 100000);
	boundary_case(4097, 4098, 100000);
}

static void
test_boundary_many_appends(void)
{
	static const size_t steps[] = { 1, 3, 7, 100, 999, 1000 };
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		boundary_case(1000, 999, steps[i]);
		boundary_case(1000, 1000, steps[i]);
		boundary_case(1000, 1001, steps[i]);
		boundary_case(1000, 5000, steps[i]);
	}
}

static void
test_limit_zero(void)
{
	char err[256] = "";
	struct spool *sp = spool_new(dir(), 0600, 0);
	size_t ml;

	/* empty: nothing to keep yet, no file made for nothing */
	TT_CHECK_INT(spool_append(sp, "", 0, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_fd(sp), ==, -1);
	TT_CHECK_INT(spool_append(sp, "x", 1, err, sizeof(err)), ==, 0);
	TT_CHECK(spool_fd(sp) >= 0);
	TT_CHECK(spool_memory(sp, &ml) == NULL);
	TT_CHECK_INT(spool_files_open(), ==, 1);
	check_content(sp, (const uint8_t *)"x", 1);
	spool_free(sp);
	TT_CHECK_INT(spool_files_open(), ==, 0);
	boundary_case(0, 1, 1);
	boundary_case(0, 20000, 777);
}

/* Random data, random append sizes, across the spill: all read paths
 * return the same bytes. */
static void
test_random_content(void)
{
	static const uint64_t limits[] = { 0, 1, 100, 4095, 65536, 1 << 20 };
	size_t i, size = 300000;
	uint8_t *data = malloc(size);
	char err[256];

	fill_random(data, size, 42);
	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct spool *sp = spool_new(dir(), 0600, limits[i]);
		size_t off = 0;

		srand((unsigned)i + 7);
		while (off < size) {
			size_t n = (size_t)rand() % 9000;

			if (n > size - off)
				n = size - off;
			TT_CHECK_INT(spool_append(sp, data + off, n, err,
			    sizeof(err)), ==, 0);
			off += n;
			if (off == 50000)	/* partial content check */
				check_content(sp, data, off);
		}
		check_content(sp, data, size);
		TT_CHECK_INT(spool_fd(sp) >= 0, ==, size > limits[i]);
		spool_free(sp);
	}
	free(data);
	TT_CHECK_INT(spool_files_open(), ==, 0);
}

/* The temp file has no name from the moment it exists, its mode is the
 * configured one and its fd is close-on-exec. */
static void
test_file_unlinked_mode_cloexec(void)
{
	static const unsigned modes[] = { 0600, 0640, 0400, 0644 };
	size_t i;
	char err[256];

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct spool *sp = spool_new(dir(), modes[i], 10);
		char link[64], target[512];
		struct stat st;
		ssize_t l;
		int fd;

		TT_CHECK_INT(spool_append(sp, "0123456789abc", 13, err,
		    sizeof(err)), ==, 0);
		fd = spool_fd(sp);
		TT_CHECK(fd >= 0);
		TT_CHECK_INT(count_spool_names(dir()), ==, 0);
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		l = readlink(link, target, sizeof(target) - 1);
		TT_CHECK(l > 0);
		if (l > 0) {
			target[l] = '\0';
			TT_CHECK(strncmp(target, dir(), strlen(dir())) == 0);
			TT_CHECK(strstr(target, "/rmilter.") != NULL);
			TT_CHECK(strstr(target, "(deleted)") != NULL);
		}
		TT_CHECK_INT(fstat(fd, &st), ==, 0);
		TT_CHECK_INT(st.st_mode & 07777, ==, modes[i]);
		TT_CHECK_INT(st.st_nlink, ==, 0);
		TT_CHECK(S_ISREG(st.st_mode));
		TT_CHECK_INT(st.st_size, ==, 13);
		TT_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		spool_free(sp);
	}
}

static void
test_counters(void)
{
	char err[256];
	uint64_t total = spool_files_total();
	struct spool *a = spool_new(dir(), 0600, 4);
	struct spool *b = spool_new(dir(), 0600, 4);
	struct spool *c = spool_new(dir(), 0600, 4);

	TT_CHECK_INT(spool_files_open(), ==, 0);
	TT_CHECK_INT(spool_append(a, "12345", 5, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_append(b, "1234", 4, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_append(c, "12345", 5, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_files_open(), ==, 2);
	TT_CHECK_INT(spool_files_total(), ==, total + 2);
	TT_CHECK_INT(spool_append(a, "more", 4, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_files_total(), ==, total + 2);	/* once each */
	TT_CHECK_INT(spool_append(b, "5", 1, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_files_open(), ==, 3);
	TT_CHECK_INT(spool_files_total(), ==, total + 3);
	spool_free(a);
	TT_CHECK_INT(spool_files_open(), ==, 2);
	spool_free(b);
	spool_free(c);
	TT_CHECK_INT(spool_files_open(), ==, 0);
	TT_CHECK_INT(spool_files_total(), ==, total + 3);
}

/* Asserts that SP fails now and on every later append with the same
 * message, which contains WANT; and holds nothing afterwards. */
static void
check_failed(struct spool *sp, const char *want)
{
	char err[256] = "", err2[256] = "", tiny[8];
	uint8_t b[4];
	size_t ml;

	TT_CHECK_INT(spool_append(sp, "abcdefghijklmnop", 16, err,
	    sizeof(err)), ==, -1);
	TT_CHECK(strncmp(err, "spool: ", 7) == 0);
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, want);
		TT_CHECK(0);
	}
	TT_CHECK_INT(spool_append(sp, "x", 1, err2, sizeof(err2)), ==, -1);
	TT_CHECK_STR(err2, err);	/* sticky, same message */
	TT_CHECK_INT(spool_append(sp, "", 0, err2, sizeof(err2)), ==, -1);
	TT_CHECK_INT(spool_append(sp, "x", 1, NULL, 0), ==, -1);
	TT_CHECK_INT(spool_append(sp, "x", 1, tiny, sizeof(tiny)), ==, -1);
	TT_CHECK_INT(strlen(tiny), ==, sizeof(tiny) - 1);
	TT_CHECK_INT(spool_fd(sp), ==, -1);
	TT_CHECK(spool_memory(sp, &ml) == NULL);
	TT_CHECK_INT(spool_read(sp, 0, b, sizeof(b)), ==, -1);
	TT_CHECK_INT(spool_files_open(), ==, 0);
}

static void
test_fail_tempdir_missing(void)
{
	char missing[512], err[1024];
	struct spool *sp;
	uint64_t total = spool_files_total();

	snprintf(missing, sizeof(missing), "%s/no/such/dir", dir());
	sp = spool_new(missing, 0600, 8);
	TT_CHECK_INT(spool_append(sp, "12345678", 8, err, sizeof(err)), ==, 0);
	check_failed(sp, "No such file or directory");
	snprintf(err, sizeof(err), "spool: cannot create a file in %s: "
	    "No such file or directory", missing);
	{
		char e2[1024];

		spool_append(sp, "x", 1, e2, sizeof(e2));
		TT_CHECK_STR(e2, err);
	}
	TT_CHECK_INT(spool_files_total(), ==, total);
	spool_free(sp);

	/* limit 0: the very first byte fails */
	sp = spool_new(missing, 0600, 0);
	check_failed(sp, "cannot create a file in");
	spool_free(sp);

	/* sticky: the directory appearing later does not revive the spool */
	snprintf(missing, sizeof(missing), "%s/later", dir());
	sp = spool_new(missing, 0600, 0);
	TT_CHECK_INT(spool_append(sp, "ab", 2, err, sizeof(err)), ==, -1);
	TT_CHECK_INT(mkdir(missing, 0700), ==, 0);
	TT_CHECK_INT(spool_append(sp, "ab", 2, err, sizeof(err)), ==, -1);
	TT_CHECK_INT(spool_fd(sp), ==, -1);
	TT_CHECK_INT(spool_files_total(), ==, total);
	spool_free(sp);
	TT_CHECK_INT(count_spool_names(missing), ==, 0);
	rmdir(missing);
}

static void
test_fail_tempdir_not_a_dir(void)
{
	char file[512];
	struct spool *sp;
	int fd;

	/* root can write anywhere: a regular file is never a directory */
	snprintf(file, sizeof(file), "%s/plainfile", dir());
	fd = open(file, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	TT_CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	sp = spool_new(file, 0600, 3);
	check_failed(sp, "Not a directory");
	spool_free(sp);
	unlink(file);
	TT_CHECK_INT(count_spool_names(dir()), ==, 0);

	if (geteuid() != 0) {	/* not writable: only meaningful as non-root */
		char ro[512];

		snprintf(ro, sizeof(ro), "%s/ro", dir());
		TT_CHECK_INT(mkdir(ro, 0500), ==, 0);
		sp = spool_new(ro, 0600, 3);
		check_failed(sp, "Permission denied");
		spool_free(sp);
		rmdir(ro);
	}
}

/* A write failure (file size limit hit) after the spill: the spool fails,
 * releases its file and stays failed. */
static void
test_fail_write(void)
{
	char err[256];
	struct spool *sp = spool_new(dir(), 0600, 0);
	uint8_t big[8192];

	/* ENOSPC without filling a disk: after the spill, put /dev/full
	 * under the spool's fd number (dup2), so its next write fails. */
	memset(big, 'z', sizeof(big));
	TT_CHECK_INT(spool_append(sp, big, 10, err, sizeof(err)), ==, 0);
	TT_CHECK(spool_fd(sp) >= 0);
	TT_CHECK_INT(spool_files_open(), ==, 1);
	{
		int full = open("/dev/full", O_WRONLY | O_CLOEXEC);

		if (full < 0) {
			printf("     (no /dev/full: write failure not tested)\n");
			spool_free(sp);
			return;
		}
		TT_CHECK(dup2(full, spool_fd(sp)) == spool_fd(sp));
		close(full);
	}
	check_failed(sp, "No space left on device");
	TT_CHECK_INT(spool_files_open(), ==, 0);
	spool_free(sp);
	TT_CHECK_INT(spool_files_open(), ==, 0);
}

static void
test_invalid_args(void)
{
	char err[256] = "";
	struct spool *sp = spool_new(NULL, 0600, 10);	/* default /tmp */
	uint8_t b[2];

	TT_CHECK_INT(spool_append(NULL, "x", 1, err, sizeof(err)), ==, -1);
	TT_CHECK(err[0] != '\0');
	TT_CHECK_INT(spool_append(sp, NULL, 1, err, sizeof(err)), ==, -1);
	TT_CHECK_INT(spool_read(NULL, 0, b, 1), ==, -1);
	TT_CHECK_INT(spool_size(NULL), ==, 0);
	TT_CHECK_INT(spool_fd(NULL), ==, -1);
	TT_CHECK(spool_memory(NULL, NULL) == NULL);
	TT_CHECK_INT(spool_append(sp, "abc", 3, err, sizeof(err)), ==, 0);
	TT_CHECK_INT(spool_read(sp, 0, b, 0), ==, 0);
	TT_CHECK_INT(spool_read(sp, 2, b, 2), ==, 1);
	TT_CHECK_INT(b[0], ==, 'c');
	spool_free(sp);
}

/* 1,000 spools (most spilled, some freed before, some after the spill,
 * some failed) leave no open file, no fd and no name behind. */
static void
test_no_leak_1000(void)
{
	char err[256], missing[512];
	int fds = count_fds(), i;
	uint64_t total = spool_files_total();
	uint8_t chunk[700];

	memset(chunk, 'm', sizeof(chunk));
	snprintf(missing, sizeof(missing), "%s/missing", dir());
	for (i = 0; i < 1000; i++) {
		struct spool *sp = spool_new(i % 10 == 9 ? missing : dir(),
		    0600, 1024);
		int k, n = i % 5;	/* n * 700 bytes */

		for (k = 0; k < n; k++)
			spool_append(sp, chunk, sizeof(chunk), err,
			    sizeof(err));
		spool_free(sp);
	}
	TT_CHECK_INT(spool_files_open(), ==, 0);
	TT_CHECK_INT(count_fds(), ==, fds);
	TT_CHECK_INT(count_spool_names(dir()), ==, 0);
	/* n >= 2 spills (600), minus the 100 (all n == 4) pointed at the
	 * missing dir */
	TT_CHECK_INT(spool_files_total() - total, ==, 500);
}

TT_MAIN(
	{"spool/memory_only", test_memory_only},
	{"spool/boundary_one_append", test_boundary_one_append},
	{"spool/boundary_many_appends", test_boundary_many_appends},
	{"spool/limit_zero", test_limit_zero},
	{"spool/random_content", test_random_content},
	{"spool/file_unlinked_mode_cloexec", test_file_unlinked_mode_cloexec},
	{"spool/counters", test_counters},
	{"spool/fail_tempdir_missing", test_fail_tempdir_missing},
	{"spool/fail_tempdir_not_a_dir", test_fail_tempdir_not_a_dir},
	{"spool/fail_write", test_fail_write},
	{"spool/invalid_args", test_invalid_args},
	{"spool/no_leak_1000", test_no_leak_1000}
)

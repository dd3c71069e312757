/*
 * fileutil.h: what the file-system suites share (filetests, fstests2) on
 * top of testcase.h, which it includes: a suite defines SUITE, includes
 * this instead of testcase.h, and gets
 *   CHECK(cond)   a failed check names its line, the condition and errno;
 *   ERR(call, e)  a call that must fail (-1) with errno e;
 *   put(), get()  a short file written whole / read whole;
 *   self, dir     the program's own absolute path (for exec), and the
 *                 scratch directory every case runs in;
 *   run_in_scratch()  run_suite() in a scratch directory made with mkdtemp
 *                 under $<env> or /tmp and removed at the end.
 *
 *	#define SUITE "fstests2"
 *	#include "fileutil.h"
 *	...
 *	int main(int argc, char **argv)
 *	{
 *		static const struct suite s = {
 *			.cases = cases, .ncases = NCASES(cases),
 *			.usage = "[-l] [--skip CASE]... [CASE...]",
 *			.before = to_scratch, .in_process = 1,
 *		};
 *		return run_in_scratch(&s, argc, argv, "FSTESTS2_DIR");
 *	}
 */
#ifndef FERRITE_FILEUTIL_H
#define FERRITE_FILEUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every check names its line and condition (and errno). */
#define CHECK(cond)                                                             \
	do {                                                                    \
		if (!(cond))                                                    \
			fail("line %d: %s (errno %d)", __LINE__, #cond, errno); \
	} while (0)
#include "testcase.h"

/* A call that must fail with errno `e`. */
#define ERR(call, e)                                                         \
	do {                                                                 \
		errno = 0;                                                   \
		long r_ = (long)(call);                                      \
		if (r_ != -1 || errno != (e))                                \
			fail("line %d: %s gave %ld errno %d, want errno %d", \
			     __LINE__, #call, r_, errno, (e));               \
	} while (0)

static char self[4096]; /* the program, absolute */
static char dir[512];   /* the scratch directory */

/* Writes `text` as the whole of `path` (created 0644); 0 or -1. */
TC_UNUSED static int put(const char *path, const char *text)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The whole (short) contents of `path`, NUL-terminated; "" on error. */
TC_UNUSED static const char *get(const char *path)
{
	static char buf[256];
	buf[0] = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return buf;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

/* suite.before: each case starts from the scratch directory. */
static void to_scratch(void)
{
	CHECK(chdir(dir) == 0);
}

/* Sets `self` from argv[0], makes the scratch directory under $env (or
 * /tmp), runs the suite there and removes the directory: run_suite()'s
 * status, 1 if there is no scratch directory. */
TC_UNUSED static int run_in_scratch(const struct suite *s, int argc, char **argv, const char *env)
{
	if (argv[0][0] == '/') {
		snprintf(self, sizeof self, "%s", argv[0]);
	} else {
		char cwd[2048];
		if (getcwd(cwd, sizeof cwd))
			snprintf(self, sizeof self, "%s/%s", cwd, argv[0]);
	}
	const char *base = getenv(env);
	snprintf(dir, sizeof dir, "%s/" SUITE ".XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		say(SUITE ": cannot make a scratch directory in %s\n", base ? base : "/tmp");
		return 1;
	}
	int status = run_suite(s, argc, argv);
	if (chdir("/") != 0 || rmdir(dir) != 0)
		say(SUITE ": scratch directory %s not empty at the end\n", dir);
	return status;
}

#endif

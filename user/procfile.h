/*
 * procfile.h: what the /proc suites share (proctests, proctests2) on top of
 * testcase.h, which it includes: a suite defines SUITE (and SLURP_PIECE if
 * it wants small reads), includes this instead of testcase.h, and gets
 *   CHECK(cond, fmt, ...)  a failed check first says where it is
 *                          ("SUITE:   function:line: check failed: cond"),
 *                          then fail()s with the message;
 *   slurp()                a whole file into a buffer.
 */
#ifndef FERRITE_PROCFILE_H
#define FERRITE_PROCFILE_H

#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "say.h"

/* A failed check names where it is, then ends the case. */
#define CHECK(cond, ...)                                                           \
	do {                                                                       \
		if (!(cond)) {                                                     \
			say(SUITE ":   %s:%d: check failed: %s\n", __func__, __LINE__, \
			    #cond);                                                \
			fail(__VA_ARGS__);                                         \
		}                                                                  \
	} while (0)
#include "testcase.h"

/* How much one read() of slurp() asks for at most (a suite may want a
 * reader going through the file in pieces); by default all that fits. */
#ifndef SLURP_PIECE
#define SLURP_PIECE ((size_t)-1)
#endif

/* The whole file into buf (NUL-terminated, cut to size - 1 bytes); its
 * length, or -1. */
static long slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	size_t len = 0;
	for (;;) {
		size_t want = size - 1 - len < SLURP_PIECE ? size - 1 - len : SLURP_PIECE;
		if (want == 0)
			break;
		ssize_t n = read(fd, buf + len, want);
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = 0;
	return len;
}

#endif

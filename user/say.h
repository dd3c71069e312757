/*
 * say(): printf to fd 1 without stdio buffering, so nothing buffered is
 * duplicated by fork and a line is out before a crash. Messages longer
 * than 1023 bytes are cut. Shared by usertests and fuzz.
 */
#ifndef FERRITE_SAY_H
#define FERRITE_SAY_H

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 1)
		n = sizeof buf - 1;
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w <= 0)
			break;
		p += w;
		n -= w;
	}
}

#endif

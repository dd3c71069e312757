/*
 * catbench: console output throughput, in TSC cycles. Writes ~126 KB of
 * text (2000 lines of 63 bytes, like a decompressor printing a text file)
 * to standard output twice: in 4 KiB writes ("block", what stdio does for a
 * big fwrite) and one write per line ("lines", what line-buffered printf
 * does on a terminal). Prints, after each,
 *
 *   catbench: NAME CYCLES
 *
 * and at the end "catbench-end: BYTES bytes". The same static binary runs
 * on Ferrite and on Linux in the same QEMU (tools/bench-console).
 *
 *   catbench [-q] [ITEM...]     -q: 200 lines (host tests); ITEM: block, lines
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "say.h"

#define LINE 63
#define MAX_LINES 2000

static char text[MAX_LINES * LINE];

static inline uint64_t tsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Text that changes from line to line (words of varying length), so no
 * two screens look alike. */
static void make_text(int lines)
{
	static const char *words[] = {"the", "page", "frame", "of", "memory", "is",
				      "mapped", "copy-on-write", "and", "swapped", "out",
				      "to", "zram", "when", "reclaim", "runs"};
	uint32_t seed = 12345;
	for (int l = 0; l < lines; l++) {
		char *p = text + l * LINE;
		int n = 0;
		n += snprintf(p, LINE, "%5d:", l + 1);
		while (n < LINE - 1) {
			seed = seed * 1103515245 + 12345;
			const char *w = words[(seed >> 16) % 16];
			int wl = strlen(w);
			p[n++] = ' ';
			for (int i = 0; i < wl && n < LINE - 1; i++)
				p[n++] = w[i];
		}
		p[LINE - 1] = '\n';
	}
}

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w <= 0)
			exit(1);
		p += w;
		n -= (size_t)w;
	}
}

int main(int argc, char **argv)
{
	int lines = MAX_LINES, quick = 0, want_block = 1, want_lines = 1;
	int a = 1;
	if (a < argc && !strcmp(argv[a], "-q")) {
		lines = 200;
		quick = 1;
		a++;
	}
	if (a < argc) {
		want_block = want_lines = 0;
		for (; a < argc; a++) {
			if (!strcmp(argv[a], "block"))
				want_block = 1;
			else if (!strcmp(argv[a], "lines"))
				want_lines = 1;
			else {
				say("catbench: unknown item %s\n", argv[a]);
				return 2;
			}
		}
	}
	(void)quick;
	make_text(lines);
	size_t total = (size_t)lines * LINE, written = 0;
	uint64_t block = 0, per_line = 0;
	if (want_block) {
		uint64_t t0 = tsc();
		for (size_t at = 0; at < total; at += 4096)
			write_all(text + at, total - at < 4096 ? total - at : 4096);
		block = tsc() - t0;
		written += total;
	}
	if (want_lines) {
		uint64_t t0 = tsc();
		for (int l = 0; l < lines; l++)
			write_all(text + l * LINE, LINE);
		per_line = tsc() - t0;
		written += total;
	}
	/* The results after all the text, so they are the last lines. */
	if (want_block)
		say("catbench: block %llu\n", (unsigned long long)block);
	if (want_lines)
		say("catbench: lines %llu\n", (unsigned long long)per_line);
	say("catbench-end: %zu bytes\n", written);
	return 0;
}

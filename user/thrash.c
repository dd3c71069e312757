/*
 * thrash: deterministic workloads whose memory exceeds RAM, to compare page
 * replacement (Ferrite against Linux: tools/bench-swap; a scan against a hot
 * set: tests/swap_workingset.rs).
 *
 *   thrash loop MIB PASSES
 *       Writes MIB MiB of anonymous pages, then PASSES times reads and
 *       rewrites every page in order (a loop larger than memory).
 *   thrash scan HOT_MIB SCAN_MIB [CHUNK_KIB]
 *       Writes a hot set of HOT_MIB MiB, then writes a one-time region of
 *       SCAN_MIB MiB in chunks of CHUNK_KIB KiB (default 1024), touching
 *       (reading and rewriting) every hot page after each chunk. The scan's
 *       pages are never read again, so every page swapped back in while it
 *       runs belongs to the hot set (or to the program itself).
 *
 * Every page carries its index and a touch count, checked at each touch and
 * at the end; the rest repeats one word (compressed swap stores it small, but
 * never as a single same-filled word). Prints
 *   thrash: MemTotal N kB MemAvailable N kB   (when /proc/meminfo exists)
 *   thrash: MODE ... cycles C                 (TSC cycles for the whole run)
 *   thrash: majflt N minflt N                 (getrusage; "unavailable" without it)
 *   thrash: ok
 * and exits 0, or names the first wrong page and exits 1.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

#include "say.h"

#define PAGE 4096UL

static inline uint64_t tsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Word 0: the page's tag; word 1: its touch count; every 64th word a value
 * derived from the tag; the rest one repeated word. */
static void fill(uint64_t *p, uint64_t tag)
{
	uint64_t v = mix(tag);
	for (unsigned i = 0; i < PAGE / 8; i++)
		p[i] = (i & 63) == 0 ? v + i : 0x5a5a5a5a5a5a5a5aULL;
	p[0] = tag;
	p[1] = 0;
}

static char *region(size_t pages)
{
	char *mem = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		say("thrash: mmap of %zu pages failed\n", pages);
		exit(1);
	}
	return mem;
}

static int bad(const char *what, size_t i, const uint64_t *p, uint64_t tag, uint64_t count)
{
	say("thrash: %s page %zu is wrong: tag %#llx count %llu, expected %#llx %llu\n", what, i,
	    (unsigned long long)p[0], (unsigned long long)p[1], (unsigned long long)tag,
	    (unsigned long long)count);
	return 1;
}

/* Checks page i (tag `tag`, touched `count` times) and touches it again. */
static int touch(const char *what, char *mem, size_t i, uint64_t tag, uint64_t count)
{
	uint64_t *p = (uint64_t *)(mem + i * PAGE);
	if (p[0] != tag || p[1] != count || p[64] != mix(tag) + 64)
		return bad(what, i, p, tag, count);
	p[1] = count + 1;
	return 0;
}

static int loop(size_t mib, unsigned passes)
{
	size_t pages = mib * 256;
	char *mem = region(pages);
	for (size_t i = 0; i < pages; i++)
		fill((uint64_t *)(mem + i * PAGE), i);
	for (unsigned pass = 0; pass < passes; pass++)
		for (size_t i = 0; i < pages; i++)
			if (touch("loop", mem, i, i, pass))
				return 1;
	for (size_t i = 0; i < pages; i++) {
		const uint64_t *p = (const uint64_t *)(mem + i * PAGE);
		if (p[0] != i || p[1] != passes)
			return bad("loop end", i, p, i, passes);
	}
	return 0;
}

static int scan(size_t hot_mib, size_t scan_mib, size_t chunk_kib)
{
	size_t hot_pages = hot_mib * 256, scan_pages = scan_mib * 256;
	size_t chunk = chunk_kib / 4 ? chunk_kib / 4 : 1;
	char *hot = region(hot_pages);
	char *cold = region(scan_pages);
	for (size_t i = 0; i < hot_pages; i++)
		fill((uint64_t *)(hot + i * PAGE), i);
	uint64_t rounds = 0;
	for (size_t start = 0; start < scan_pages; start += chunk) {
		size_t end = start + chunk < scan_pages ? start + chunk : scan_pages;
		for (size_t i = start; i < end; i++)
			fill((uint64_t *)(cold + i * PAGE), (1ULL << 40) + i);
		for (size_t i = 0; i < hot_pages; i++)
			if (touch("hot", hot, i, i, rounds))
				return 1;
		rounds++;
	}
	for (size_t i = 0; i < hot_pages; i++) {
		const uint64_t *p = (const uint64_t *)(hot + i * PAGE);
		if (p[0] != i || p[1] != rounds)
			return bad("hot end", i, p, i, rounds);
	}
	/* The scan's first page, once (its data must have survived too). */
	const uint64_t *p = (const uint64_t *)cold;
	if (p[0] != 1ULL << 40 || p[1] != 0)
		return bad("scan", 0, p, 1ULL << 40, 0);
	say("thrash: scan: %llu rounds over the hot set\n", (unsigned long long)rounds);
	return 0;
}

/* MemTotal and MemAvailable from /proc/meminfo, when the kernel has it. */
static void meminfo(void)
{
	static char buf[4096];
	int f = open("/proc/meminfo", O_RDONLY);
	if (f < 0)
		return;
	ssize_t n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n <= 0)
		return;
	buf[n] = 0;
	char *total = strstr(buf, "MemTotal:"), *avail = strstr(buf, "MemAvailable:");
	if (total && avail)
		say("thrash: MemTotal %lu kB MemAvailable %lu kB\n", strtoul(total + 9, 0, 10),
		    strtoul(avail + 13, 0, 10));
}

static int usage(void)
{
	say("usage: thrash loop MIB PASSES | thrash scan HOT_MIB SCAN_MIB [CHUNK_KIB]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	meminfo();
	int failed;
	uint64_t t0 = tsc();
	if (!strcmp(argv[1], "loop") && argc == 4) {
		failed = loop(strtoul(argv[2], 0, 10), strtoul(argv[3], 0, 10));
	} else if (!strcmp(argv[1], "scan") && (argc == 4 || argc == 5)) {
		failed = scan(strtoul(argv[2], 0, 10), strtoul(argv[3], 0, 10),
			      argc == 5 ? strtoul(argv[4], 0, 10) : 1024);
	} else {
		return usage();
	}
	uint64_t cycles = tsc() - t0;
	if (failed)
		return 1;
	say("thrash: %s %s %s%s%s cycles %llu\n", argv[1], argv[2], argv[3], argc == 5 ? " " : "",
	    argc == 5 ? argv[4] : "", (unsigned long long)cycles);
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		say("thrash: majflt %ld minflt %ld\n", ru.ru_majflt, ru.ru_minflt);
	else
		say("thrash: majflt unavailable\n");
	say("thrash: ok\n");
	return 0;
}

/*
 * mmbench: the cost of each memory system call and fault, in TSC cycles.
 *
 * The same static binary runs on Ferrite and on Linux (natively, or in the
 * same QEMU through tools/bench-linux), so the figures compare directly.
 * Each item is measured several times; the median is printed as
 *
 *   mmbench: NAME CYCLES
 *
 * one line per item, NAME in [a-z0-9-], CYCLES a decimal integer (per call
 * or per fault, as the item says below). Nothing else starts with
 * "mmbench: ". The last line is "mmbench-end: N items, R reps".
 *
 *   mmbench [-q] [-r REPS] [NAME...]
 *     -q       quick: 3 repetitions (host tests)
 *     -r REPS  repetitions per item (default 15; heavy items use fewer)
 *     NAME     run only the named items (default: all)
 *     -l       list the items and what each measures
 *
 * Large regions get MADV_NOHUGEPAGE so Linux (THP "always" in Debian's
 * kernel) faults 4 KiB pages like Ferrite does.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "say.h"

#define PAGE 4096UL
#define MIB (1024UL * 1024)
#define MAX_REPS 101

static inline uint64_t tsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

static void die(const char *what)
{
	say("mmbench: FAILED: %s\n", what);
	exit(1);
}

static void *map(size_t len, int prot)
{
	void *p = mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	if (len >= 64 * PAGE)
		madvise(p, len, MADV_NOHUGEPAGE); /* Ferrite accepts and ignores it */
	return p;
}

static void unmap(void *p, size_t len)
{
	if (munmap(p, len) != 0)
		die("munmap");
}

static void touch(void *p, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE)
		((volatile char *)p)[off] = 1;
}

static void protect(void *p, size_t len, int prot)
{
	if (mprotect(p, len, prot) != 0)
		die("mprotect");
}

/* A page shared with forked children, for the figures they measure. */
static volatile uint64_t *shared;

/* ---- the items: each returns one sample, in cycles ---- */

static uint64_t b_getpid(void)
{
	uint64_t t0 = tsc();
	syscall(SYS_getpid);
	return tsc() - t0;
}

static uint64_t b_mmap_munmap_1p(void)
{
	uint64_t t0 = tsc();
	void *p = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	unmap(p, PAGE);
	return tsc() - t0;
}

static uint64_t b_mmap_munmap_1m(void)
{
	uint64_t t0 = tsc();
	void *p = mmap(0, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	unmap(p, MIB);
	return tsc() - t0;
}

/* mprotect of NP pages in the middle of a touched 4*NP-page (at least
 * 64-page) region: RW -> RO splits it in three (the "-back" item times
 * RO -> RW, which merges them again). */
static uint64_t mprotect_mid(size_t np, int back)
{
	size_t len = (np * 4 < 64 ? 64 : np * 4) * PAGE;
	char *p = map(len, PROT_READ | PROT_WRITE);
	touch(p, len);
	char *mid = p + (len / PAGE / 2 - np / 2) * PAGE;
	uint64_t t;
	if (!back) {
		uint64_t t0 = tsc();
		protect(mid, np * PAGE, PROT_READ);
		t = tsc() - t0;
	} else {
		protect(mid, np * PAGE, PROT_READ);
		uint64_t t0 = tsc();
		protect(mid, np * PAGE, PROT_READ | PROT_WRITE);
		t = tsc() - t0;
	}
	unmap(p, len);
	return t;
}

static uint64_t b_mprotect_1p(void) { return mprotect_mid(1, 0); }
static uint64_t b_mprotect_1p_back(void) { return mprotect_mid(1, 1); }
static uint64_t b_mprotect_64p(void) { return mprotect_mid(64, 0); }
static uint64_t b_mprotect_64p_back(void) { return mprotect_mid(64, 1); }

/* A one-page region on its own: no split, no merge. */
static uint64_t b_mprotect_1p_whole(void)
{
	char *p = map(PAGE, PROT_READ | PROT_WRITE);
	touch(p, PAGE);
	uint64_t t0 = tsc();
	protect(p, PAGE, PROT_READ);
	uint64_t t = tsc() - t0;
	unmap(p, PAGE);
	return t;
}

static uint64_t b_munmap_64m(void)
{
	size_t len = 64 * MIB;
	char *p = map(len, PROT_READ | PROT_WRITE);
	touch(p, len);
	uint64_t t0 = tsc();
	unmap(p, len);
	return tsc() - t0;
}

/* Grow a one-page region in place to two pages (the page above is free). */
static uint64_t b_mremap_grow(void)
{
	char *p = map(2 * PAGE, PROT_READ | PROT_WRITE);
	unmap(p + PAGE, PAGE);
	touch(p, PAGE);
	uint64_t t0 = tsc();
	void *q = mremap(p, PAGE, 2 * PAGE, 0);
	uint64_t t = tsc() - t0;
	if (q != p)
		die("mremap in place");
	unmap(p, 2 * PAGE);
	return t;
}

/* Move 16 touched pages to a free place (MREMAP_FIXED). */
static uint64_t b_mremap_move(void)
{
	size_t len = 16 * PAGE;
	char *p = map(2 * len, PROT_READ | PROT_WRITE);
	unmap(p + len, len);
	touch(p, len);
	uint64_t t0 = tsc();
	void *q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, p + len);
	uint64_t t = tsc() - t0;
	if (q != p + len)
		die("mremap move");
	unmap(q, len);
	return t;
}

static uint64_t dontneed(size_t np)
{
	size_t len = np * PAGE;
	char *p = map(len < 64 * PAGE ? 64 * PAGE : len, PROT_READ | PROT_WRITE);
	touch(p, len);
	uint64_t t0 = tsc();
	if (madvise(p, len, MADV_DONTNEED) != 0)
		die("madvise");
	uint64_t t = tsc() - t0;
	unmap(p, len < 64 * PAGE ? 64 * PAGE : len);
	return t;
}

static uint64_t b_madvise_dontneed_1p(void) { return dontneed(1); }
static uint64_t b_madvise_dontneed_64p(void) { return dontneed(64); }

/* One brk call: grow by a page, then (untimed) shrink back. */
static uint64_t b_brk(void)
{
	uintptr_t cur = syscall(SYS_brk, 0);
	uint64_t t0 = tsc();
	uintptr_t got = syscall(SYS_brk, cur + PAGE);
	uint64_t t = tsc() - t0;
	if (got != cur + PAGE)
		die("brk");
	syscall(SYS_brk, cur);
	return t;
}

#define FAULT_PAGES 256

/* Per fault: write each page of a fresh region. */
static uint64_t b_fault_demand_zero(void)
{
	size_t len = FAULT_PAGES * PAGE;
	char *p = map(len, PROT_READ | PROT_WRITE);
	uint64_t t0 = tsc();
	touch(p, len);
	uint64_t t = tsc() - t0;
	unmap(p, len);
	return t / FAULT_PAGES;
}

/* Per fault: read each page of a fresh region (maps the zero page). */
static uint64_t b_fault_zero_page(void)
{
	size_t len = FAULT_PAGES * PAGE;
	char *p = map(len, PROT_READ | PROT_WRITE);
	unsigned sum = 0;
	uint64_t t0 = tsc();
	for (size_t off = 0; off < len; off += PAGE)
		sum += ((volatile char *)p)[off];
	uint64_t t = tsc() - t0;
	if (sum)
		die("zero page is not zero");
	unmap(p, len);
	return t / FAULT_PAGES;
}

static void wait_child(pid_t pid)
{
	int st;
	if (pid < 0)
		die("fork");
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("child");
}

/* Per fault: the child writes each page its parent had touched. */
static uint64_t b_fault_cow(void)
{
	size_t len = FAULT_PAGES * PAGE;
	char *p = map(len, PROT_READ | PROT_WRITE);
	touch(p, len);
	pid_t pid = fork();
	if (pid == 0) {
		uint64_t t0 = tsc();
		for (size_t off = 0; off < len; off += PAGE)
			((volatile char *)p)[off] = 2;
		shared[0] = (tsc() - t0) / FAULT_PAGES;
		_exit(0);
	}
	wait_child(pid);
	unmap(p, len);
	return shared[0];
}

/* fork of a process with 64 MiB touched: until the first of parent and
 * child runs again, whichever the scheduler picks. */
static char *fork_area;
#define FORK_MIB 64

static uint64_t b_fork_64m(void)
{
	if (!fork_area) {
		fork_area = map(FORK_MIB * MIB, PROT_READ | PROT_WRITE);
		touch(fork_area, FORK_MIB * MIB);
	}
	shared[1] = UINT64_MAX;
	uint64_t t0 = tsc();
	pid_t pid = fork();
	if (pid == 0) {
		shared[1] = tsc();
		_exit(0);
	}
	uint64_t t1 = tsc();
	wait_child(pid);
	uint64_t first = shared[1] < t1 ? shared[1] : t1;
	return first - t0;
}

struct item {
	const char *name;
	uint64_t (*run)(void);
	int max_reps; /* 0: no limit below -r */
	const char *what;
};

static const struct item items[] = {
	{"getpid", b_getpid, 0, "one getpid system call (context)"},
	{"mmap-munmap-1p", b_mmap_munmap_1p, 0, "mmap + munmap of one anonymous page"},
	{"mmap-munmap-1m", b_mmap_munmap_1m, 0, "mmap + munmap of 1 MiB, untouched"},
	{"mprotect-1p", b_mprotect_1p, 0, "RW->RO of the middle page of 64 touched (split)"},
	{"mprotect-1p-back", b_mprotect_1p_back, 0, "RO->RW of that page again (merge)"},
	{"mprotect-1p-whole", b_mprotect_1p_whole, 0, "RW->RO of a touched one-page region"},
	{"mprotect-64p", b_mprotect_64p, 0, "RW->RO of the middle 64 pages of 256 touched"},
	{"mprotect-64p-back", b_mprotect_64p_back, 0, "RO->RW of those 64 pages again"},
	{"munmap-64m", b_munmap_64m, 5, "munmap of 64 MiB, every page touched"},
	{"mremap-grow", b_mremap_grow, 0, "mremap 1 -> 2 pages in place"},
	{"mremap-move", b_mremap_move, 0, "mremap moving 16 touched pages (FIXED)"},
	{"madvise-dontneed-1p", b_madvise_dontneed_1p, 0, "MADV_DONTNEED of one touched page"},
	{"madvise-dontneed-64p", b_madvise_dontneed_64p, 0, "MADV_DONTNEED of 64 touched pages"},
	{"brk", b_brk, 0, "brk growing the heap by one page"},
	{"fault-demand-zero", b_fault_demand_zero, 0, "write fault on a fresh anonymous page"},
	{"fault-zero-page", b_fault_zero_page, 0, "read fault on a fresh anonymous page"},
	{"fault-cow", b_fault_cow, 0, "write fault in a forked child (copy)"},
	{"fork-64m", b_fork_64m, 7, "fork of a process with 64 MiB touched"},
};
#define NITEMS (sizeof items / sizeof items[0])

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(void)
{
	say("usage: mmbench [-q] [-r REPS] [-l] [NAME...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int reps = 15;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-q")) {
			reps = 3;
		} else if (!strcmp(argv[i], "-r") && i + 1 < argc) {
			reps = atoi(argv[++i]);
			if (reps < 1 || reps > MAX_REPS)
				usage();
		} else if (!strcmp(argv[i], "-l")) {
			for (size_t k = 0; k < NITEMS; k++)
				say("%-22s %s\n", items[k].name, items[k].what);
			return 0;
		} else {
			usage();
		}
	}
	for (int k = i; k < argc; k++) {
		size_t n = 0;
		while (n < NITEMS && strcmp(items[n].name, argv[k]))
			n++;
		if (n == NITEMS) {
			say("mmbench: no item named %s\n", argv[k]);
			return 2;
		}
	}
	shared = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		die("mmap shared");
	int ran = 0;
	for (size_t n = 0; n < NITEMS; n++) {
		const struct item *it = &items[n];
		if (i < argc) {
			int wanted = 0;
			for (int k = i; k < argc; k++)
				wanted |= !strcmp(argv[k], it->name);
			if (!wanted)
				continue;
		}
		int r = it->max_reps && it->max_reps < reps ? it->max_reps : reps;
		uint64_t s[MAX_REPS];
		it->run(); /* warm up: code, stack and page tables in place */
		for (int k = 0; k < r; k++)
			s[k] = it->run();
		qsort(s, r, sizeof s[0], cmp_u64);
		say("mmbench: %s %llu\n", it->name, (unsigned long long)s[r / 2]);
		ran++;
	}
	if (fork_area)
		unmap(fork_area, FORK_MIB * MIB);
	say("mmbench-end: %d items, %d reps\n", ran, reps);
	return 0;
}

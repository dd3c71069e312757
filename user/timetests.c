/*
 * timetests: the clocks, the sleeps and the vDSO, checked against what
 * Linux does (run natively by run-host-tests.sh, and on Ferrite by
 * tests/time.rs).
 *
 * Usage: timetests [--epoch SECS] [CASE...]
 *   --epoch SECS   CLOCK_REALTIME must be within 5 s of SECS (Unix time;
 *                  on Ferrite the test kernel passes the RTC's reading)
 *   CASE...        run only these cases
 *        timetests --sleep-stats [N]    sleep N times (default 200) for
 *                  100 us, 1 ms and 10 ms and print the distribution of
 *                  what each took (min, median, p90, p99, max in us)
 *        timetests --bench [N]          clock_gettime(CLOCK_MONOTONIC)
 *                  cost in TSC cycles: through libc (the vDSO if there is
 *                  one), the vDSO symbol directly and the raw system call
 *
 * Output: "timetests: <case> ... ok" or "... FAILED (<why>)" per case, then
 * "timetests: N passed, M failed". Exit status 0 iff all passed.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE "timetests"
#include "testcase.h"

#define NS 1000000000LL
#define BAD_PTR ((void *)0x10)
#define KERNEL_PTR ((void *)0xffff888000000000ul)

static long long expect_epoch = -1;

static long long ts_ns(struct timespec t)
{
	return t.tv_sec * NS + t.tv_nsec;
}

/* Through the raw system call, never the vDSO. */
static long sys_gettime(long clk, void *ts)
{
	return syscall(SYS_clock_gettime, clk, ts);
}

static long long sys_now(long clk)
{
	struct timespec t;
	if (sys_gettime(clk, &t) != 0)
		return -1;
	return ts_ns(t);
}

static long long now(clockid_t clk)
{
	struct timespec t;
	clock_gettime(clk, &t);
	return ts_ns(t);
}

static inline uint64_t tsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

/* ---- the vDSO, looked up as musl does (DT_HASH/DT_GNU_HASH + versions) ---- */

static void *vdso_sym(const char *vername, const char *name)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return NULL;
	Elf64_Ehdr *eh = (void *)base;
	Elf64_Phdr *ph = (void *)(base + eh->e_phoff);
	Elf64_Dyn *dyn = NULL;
	unsigned long load = 0;
	int have_load = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !have_load) {
			load = base + ph[i].p_offset - ph[i].p_vaddr;
			have_load = 1;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn = (void *)(base + ph[i].p_offset);
		}
	}
	if (!dyn || !have_load)
		return NULL;
	char *strings = NULL;
	Elf64_Sym *syms = NULL;
	Elf32_Word *hashtab = NULL, *ghashtab = NULL;
	Elf64_Half *versym = NULL;
	Elf64_Verdef *verdef = NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		void *p = (void *)(load + dyn->d_un.d_ptr);
		switch (dyn->d_tag) {
		case DT_STRTAB: strings = p; break;
		case DT_SYMTAB: syms = p; break;
		case DT_HASH: hashtab = p; break;
		case DT_GNU_HASH: ghashtab = p; break;
		case DT_VERSYM: versym = p; break;
		case DT_VERDEF: verdef = p; break;
		}
	}
	if (!strings || !syms || (!hashtab && !ghashtab))
		return NULL;
	size_t nsym = 0;
	if (hashtab) {
		nsym = hashtab[1];
	} else {
		/* GNU hash: the last chain's end. */
		uint32_t nbuckets = ghashtab[0], symoff = ghashtab[1], bloom = ghashtab[2];
		uint32_t *buckets = ghashtab + 4 + bloom * 2;
		uint32_t *chain = buckets + nbuckets;
		uint32_t max = 0;
		for (uint32_t i = 0; i < nbuckets; i++)
			if (buckets[i] > max)
				max = buckets[i];
		if (max >= symoff)
			while (!(chain[max - symoff] & 1))
				max++;
		nsym = max ? max + 1 : 0;
	}
	for (size_t i = 0; i < nsym; i++) {
		int type = ELF64_ST_TYPE(syms[i].st_info), bind = ELF64_ST_BIND(syms[i].st_info);
		if (type != STT_FUNC || (bind != STB_GLOBAL && bind != STB_WEAK) || !syms[i].st_shndx)
			continue;
		if (strcmp(name, strings + syms[i].st_name))
			continue;
		if (versym && verdef) {
			int ver = versym[i] & 0x7fff;
			Elf64_Verdef *d = verdef;
			int found = 0;
			for (;;) {
				if (!(d->vd_flags & VER_FLG_BASE) && (d->vd_ndx & 0x7fff) == ver) {
					Elf64_Verdaux *aux = (void *)((char *)d + d->vd_aux);
					found = strcmp(vername, strings + aux->vda_name) == 0;
					break;
				}
				if (!d->vd_next)
					break;
				d = (void *)((char *)d + d->vd_next);
			}
			if (!found)
				continue;
		}
		return (void *)(load + syms[i].st_value);
	}
	return NULL;
}

typedef int (*gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);
typedef long (*getcpu_fn)(unsigned *, unsigned *, void *);

/* ---- cases ---- */

static void t_realtime(void)
{
	struct timespec ts;
	CHECK(clock_gettime(CLOCK_REALTIME, &ts) == 0, "clock_gettime: %s", strerror(errno));
	long long real = ts.tv_sec;
	/* 2020-01-01 .. 2100-01-01 */
	CHECK(real > 1577836800LL && real < 4102444800LL, "CLOCK_REALTIME %lld is no date of this century", real);
	if (expect_epoch >= 0)
		CHECK(llabs(real - expect_epoch) <= 5, "CLOCK_REALTIME %lld, the RTC said %lld", real, expect_epoch);
	struct timeval tv;
	CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday: %s", strerror(errno));
	CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000, "tv_usec %ld", (long)tv.tv_usec);
	time_t t = time(NULL);
	long long sys_t = syscall(SYS_time, NULL);
	long long sys_real = sys_now(CLOCK_REALTIME) / NS;
	CHECK(llabs(tv.tv_sec - real) <= 1 && llabs(t - real) <= 1 && llabs(sys_t - real) <= 1 &&
		      llabs(sys_real - real) <= 1,
	      "clock_gettime %lld, gettimeofday %lld, time %lld, SYS_time %lld, syscall %lld disagree", real,
	      (long long)tv.tv_sec, (long long)t, sys_t, sys_real);
	time_t stored = 0;
	CHECK(syscall(SYS_time, &stored) == stored && llabs(stored - real) <= 1, "time(&t) stored %lld",
	      (long long)stored);
	/* REALTIME - MONOTONIC is steady: nothing moves the wall clock. */
	long long d1 = now(CLOCK_REALTIME) - now(CLOCK_MONOTONIC);
	usleep(20000);
	long long d2 = now(CLOCK_REALTIME) - now(CLOCK_MONOTONIC);
	CHECK(llabs(d1 - d2) < 5000000, "REALTIME - MONOTONIC moved by %lld ns in 20 ms", d2 - d1);
}

static void t_monotonic(void)
{
	static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
					   CLOCK_MONOTONIC_COARSE, CLOCK_REALTIME_COARSE,
					   CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
	for (unsigned c = 0; c < sizeof clocks / sizeof *clocks; c++) {
		long long last = 0;
		for (int i = 0; i < 20000; i++) {
			/* Alternate the vDSO (through libc) and the system call. */
			long long t = i & 1 ? sys_now(clocks[c]) : now(clocks[c]);
			CHECK(t >= last, "clock %d went back from %lld to %lld (read %d)", clocks[c], last, t, i);
			last = t;
		}
	}
	/* The fine clocks move within 1 ms of polling; the coarse ones are
	 * at least as old as the fine ones. */
	long long a = now(CLOCK_MONOTONIC), b;
	int spins = 0;
	while ((b = now(CLOCK_MONOTONIC)) == a && spins < 1000000)
		spins++;
	CHECK(b > a && b - a < 1000000, "CLOCK_MONOTONIC stepped %lld ns", b - a);
	long long coarse = now(CLOCK_MONOTONIC_COARSE), fine = now(CLOCK_MONOTONIC);
	CHECK(coarse <= fine && fine - coarse < 50000000, "coarse %lld vs fine %lld", coarse, fine);
	long long boot = now(CLOCK_BOOTTIME);
	fine = now(CLOCK_MONOTONIC);
	CHECK(boot >= fine - 1000000, "BOOTTIME %lld is behind MONOTONIC %lld", boot, fine);
}

static void t_getres(void)
{
	struct timespec r;
	CHECK(clock_getres(CLOCK_MONOTONIC, &r) == 0 && r.tv_sec == 0 && r.tv_nsec == 1,
	      "CLOCK_MONOTONIC resolution %ld.%09ld", (long)r.tv_sec, r.tv_nsec);
	CHECK(clock_getres(CLOCK_REALTIME, &r) == 0 && r.tv_sec == 0 && r.tv_nsec == 1,
	      "CLOCK_REALTIME resolution %ld.%09ld", (long)r.tv_sec, r.tv_nsec);
	CHECK(clock_getres(CLOCK_MONOTONIC_COARSE, &r) == 0 && r.tv_sec == 0 && r.tv_nsec >= 1000000 &&
		      r.tv_nsec <= 10000000,
	      "CLOCK_MONOTONIC_COARSE resolution %ld.%09ld", (long)r.tv_sec, r.tv_nsec);
	CHECK(syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL) == 0, "getres with NULL: %s", strerror(errno));
	CHECK(syscall(SYS_clock_getres, CLOCK_MONOTONIC, BAD_PTR) == -1 && errno == EFAULT,
	      "getres to a bad pointer: %s", strerror(errno));
	CHECK(syscall(SYS_clock_getres, 42, &r) == -1 && errno == EINVAL, "getres clock 42: %s", strerror(errno));
}

static void t_errors(void)
{
	struct timespec ts;
	static const long bad_clocks[] = {10, 12, 16, 1000, 0x7fffffff, -5 /* type 3 */};
	for (unsigned i = 0; i < sizeof bad_clocks / sizeof *bad_clocks; i++) {
		errno = 0;
		CHECK(sys_gettime(bad_clocks[i], &ts) == -1 && errno == EINVAL, "clock_gettime(%ld): %s",
		      bad_clocks[i], strerror(errno));
		CHECK(clock_gettime(bad_clocks[i], &ts) == -1 && errno == EINVAL, "libc clock_gettime(%ld): %s",
		      bad_clocks[i], strerror(errno));
	}
	/* Our own CPU clock by pid (clock_getcpuclockid(0 or getpid())). */
	clockid_t mine;
	CHECK(clock_getcpuclockid(getpid(), &mine) == 0, "clock_getcpuclockid");
	CHECK(sys_gettime(mine, &ts) == 0, "our CPU clock %d: %s", mine, strerror(errno));
	void *bad[] = {BAD_PTR, KERNEL_PTR, (void *)-1l};
	for (unsigned i = 0; i < 3; i++) {
		CHECK(sys_gettime(CLOCK_MONOTONIC, bad[i]) == -1 && errno == EFAULT, "clock_gettime to %p: %s",
		      bad[i], strerror(errno));
		CHECK(sys_gettime(CLOCK_REALTIME, bad[i]) == -1 && errno == EFAULT, "REALTIME to %p: %s", bad[i],
		      strerror(errno));
		CHECK(syscall(SYS_gettimeofday, bad[i], NULL) == -1 && errno == EFAULT, "gettimeofday to %p: %s",
		      bad[i], strerror(errno));
		CHECK(syscall(SYS_gettimeofday, NULL, bad[i]) == -1 && errno == EFAULT, "timezone to %p: %s",
		      bad[i], strerror(errno));
		CHECK(syscall(SYS_time, bad[i]) == -1 && errno == EFAULT, "time to %p: %s", bad[i],
		      strerror(errno));
		CHECK(syscall(SYS_nanosleep, bad[i], NULL) == -1 && errno == EFAULT, "nanosleep from %p: %s", bad[i],
		      strerror(errno));
		CHECK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, bad[i], NULL) == -1 && errno == EFAULT,
		      "clock_nanosleep from %p: %s", bad[i], strerror(errno));
	}
	CHECK(syscall(SYS_gettimeofday, NULL, NULL) == 0, "gettimeofday(NULL, NULL): %s", strerror(errno));
	struct timezone tz = {77, 77};
	struct timeval tv;
	CHECK(syscall(SYS_gettimeofday, &tv, &tz) == 0 && tz.tz_minuteswest == 0 && tz.tz_dsttime == 0,
	      "timezone %d %d", tz.tz_minuteswest, tz.tz_dsttime);
	/* Bad requests. */
	struct timespec bad_req[] = {{0, 1000000000}, {0, -1}, {-1, 0}, {0, 0x7fffffffffffffffl}};
	for (unsigned i = 0; i < 4; i++) {
		CHECK(syscall(SYS_nanosleep, &bad_req[i], NULL) == -1 && errno == EINVAL, "nanosleep {%ld, %ld}: %s",
		      (long)bad_req[i].tv_sec, bad_req[i].tv_nsec, strerror(errno));
		CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad_req[i], NULL) == EINVAL,
		      "clock_nanosleep {%ld, %ld}", (long)bad_req[i].tv_sec, bad_req[i].tv_nsec);
	}
	struct timespec ms = {0, 1000000};
	CHECK(clock_nanosleep(42, 0, &ms, NULL) == EINVAL, "clock_nanosleep on clock 42");
	CHECK(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ms, NULL) == EINVAL, "clock_nanosleep THREAD_CPUTIME");
	int e = clock_nanosleep(CLOCK_MONOTONIC_RAW, 0, &ms, NULL);
	CHECK(e == EOPNOTSUPP, "clock_nanosleep MONOTONIC_RAW: %s", strerror(e));
	e = clock_nanosleep(CLOCK_MONOTONIC_COARSE, 0, &ms, NULL);
	CHECK(e == EOPNOTSUPP, "clock_nanosleep MONOTONIC_COARSE: %s", strerror(e));
	/* A zero sleep returns at once; rem is untouched when not interrupted. */
	struct timespec zero = {0, 0}, rem = {7, 7};
	CHECK(nanosleep(&zero, &rem) == 0 && rem.tv_sec == 7 && rem.tv_nsec == 7, "nanosleep(0) touched rem");
}

/* A grows-down region at the minimum mmap address (64 KiB) must not grow
 * down to a null pointer: a sleep from NULL fails with EFAULT (it read
 * whatever the grown page held, and with a file's bytes there it slept for
 * centuries: `make fuzz` on 2 CPUs, FUZZ_SEED=77), and so does a write to
 * NULL.  Linux's expand_downwards refuses to grow below mmap_min_addr. */
static void t_null_below_stack(void)
{
	void *at = (void *)0x10000ul;
	void *p = mmap(at, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0);
	if (p != at) {
		set_note("no mapping at %p (%s): skipped", at, strerror(errno));
		return;
	}
	CHECK(syscall(SYS_nanosleep, NULL, NULL) == -1 && errno == EFAULT, "nanosleep from NULL: %s",
	      strerror(errno));
	CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, NULL) == -1 && errno == EFAULT,
	      "clock_gettime to NULL: %s", strerror(errno));
	CHECK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, (void *)8, NULL) == -1 && errno == EFAULT,
	      "clock_nanosleep from 8: %s", strerror(errno));
	/* The region is still one page: nothing grew. */
	unsigned char v;
	CHECK(mincore((void *)0, 4096, &v) == -1 && errno == ENOMEM, "page 0 is mapped");
	CHECK(munmap(p, 4096) == 0, "munmap: %s", strerror(errno));
}

static void t_sleep(void)
{
	/* 1 ms sleeps: each at least 1 ms; the median well under 5 ms. */
	long long took[21];
	for (int i = 0; i < 21; i++) {
		struct timespec req = {0, 1000000};
		long long t0 = now(CLOCK_MONOTONIC);
		CHECK(nanosleep(&req, NULL) == 0, "nanosleep: %s", strerror(errno));
		took[i] = now(CLOCK_MONOTONIC) - t0;
		CHECK(took[i] >= 1000000, "a 1 ms sleep took %lld ns", took[i]);
	}
	for (int i = 0; i < 21; i++)
		for (int j = i + 1; j < 21; j++)
			if (took[j] < took[i]) {
				long long x = took[i];
				took[i] = took[j];
				took[j] = x;
			}
	CHECK(took[10] < 5000000, "1 ms sleeps: median %lld ns", took[10]);
	/* Absolute: MONOTONIC now + 3 ms, REALTIME now + 3 ms. */
	static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME};
	for (int c = 0; c < 3; c++) {
		long long deadline = now(clocks[c]) + 3000000;
		struct timespec abs = {deadline / NS, deadline % NS};
		int e = clock_nanosleep(clocks[c], TIMER_ABSTIME, &abs, NULL);
		long long after = now(clocks[c]);
		CHECK(e == 0 && after >= deadline, "TIMER_ABSTIME on clock %d: %s, woke %lld ns early", clocks[c],
		      strerror(e), deadline - after);
		CHECK(after - deadline < 100000000, "TIMER_ABSTIME on clock %d: woke %lld ns late", clocks[c],
		      after - deadline);
	}
	/* A deadline in the past returns at once. */
	long long t0 = now(CLOCK_MONOTONIC);
	struct timespec past = {(t0 - 1000000) / NS, (t0 - 1000000) % NS};
	CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL) == 0, "past deadline");
	CHECK(now(CLOCK_MONOTONIC) - t0 < 50000000, "a past deadline slept");
	/* Relative clock_nanosleep 2 ms. */
	struct timespec two = {0, 2000000};
	t0 = now(CLOCK_MONOTONIC);
	CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &two, NULL) == 0, "clock_nanosleep 2 ms");
	CHECK(now(CLOCK_MONOTONIC) - t0 >= 2000000, "clock_nanosleep 2 ms was short");
}

static void t_cputime(void)
{
	/* Spinning: CPU time grows (20 ms of it within 5 s, however loaded
	 * the machine is), never by more than the time that passed. */
	long long c0 = now(CLOCK_PROCESS_CPUTIME_ID), m0 = now(CLOCK_MONOTONIC), c1, m1;
	do {
		c1 = now(CLOCK_PROCESS_CPUTIME_ID);
		m1 = now(CLOCK_MONOTONIC);
	} while (c1 - c0 < 20000000 && m1 - m0 < 5 * NS);
	CHECK(c1 - c0 >= 20000000, "spun %lld ns, CPU time grew only %lld ns", m1 - m0, c1 - c0);
	CHECK(c1 - c0 <= m1 - m0 + 1000000, "spun %lld ns, CPU time grew %lld ns", m1 - m0, c1 - c0);
	usleep(50000);
	long long c2 = now(CLOCK_PROCESS_CPUTIME_ID);
	CHECK(c2 - c1 < 10000000, "sleeping 50 ms took %lld ns of CPU time", c2 - c1);
	long long t = now(CLOCK_THREAD_CPUTIME_ID);
	CHECK(t > 0 && t <= now(CLOCK_PROCESS_CPUTIME_ID), "thread CPU time %lld", t);
}

static void t_vdso(void)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	CHECK(base != 0, "no AT_SYSINFO_EHDR in the auxiliary vector");
	CHECK(memcmp((void *)base, ELFMAG, SELFMAG) == 0, "AT_SYSINFO_EHDR %#lx is not an ELF header", base);
	CHECK(base % 4096 == 0, "vDSO at %#lx is not page aligned", base);
	gettime_fn gt = vdso_sym("LINUX_2.6", "__vdso_clock_gettime");
	gettimeofday_fn gtod = vdso_sym("LINUX_2.6", "__vdso_gettimeofday");
	time_fn tm = vdso_sym("LINUX_2.6", "__vdso_time");
	getcpu_fn gc = vdso_sym("LINUX_2.6", "__vdso_getcpu");
	CHECK(gt && gtod && tm && gc, "vDSO symbols: clock_gettime %p gettimeofday %p time %p getcpu %p", gt,
	      gtod, tm, gc);
	CHECK(vdso_sym("LINUX_2.5", "__vdso_clock_gettime") == NULL, "a wrong version matched");
	static const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
					   CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE};
	for (int c = 0; c < 6; c++) {
		struct timespec v;
		long long before = sys_now(clocks[c]);
		CHECK(gt(clocks[c], &v) == 0, "vDSO clock_gettime(%d) failed", clocks[c]);
		long long after = sys_now(clocks[c]);
		CHECK(v.tv_nsec >= 0 && v.tv_nsec < NS, "vDSO tv_nsec %ld", v.tv_nsec);
		CHECK(before <= ts_ns(v) && ts_ns(v) <= after,
		      "clock %d: syscall %lld, vDSO %lld, syscall %lld: out of order", clocks[c], before, ts_ns(v),
		      after);
	}
	/* Clocks the vDSO does not handle go to the system call: same errors. */
	struct timespec v;
	CHECK(gt(42, &v) == -EINVAL || (gt(42, &v) == -1 && errno == EINVAL), "vDSO clock 42");
	long long c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	CHECK(gt(CLOCK_PROCESS_CPUTIME_ID, &v) == 0 && ts_ns(v) >= c0, "vDSO CPU clock");
	struct timeval tv;
	struct timezone tz = {5, 5};
	long long before = sys_now(CLOCK_REALTIME) / 1000;
	CHECK(gtod(&tv, &tz) == 0, "vDSO gettimeofday failed");
	long long after = sys_now(CLOCK_REALTIME) / 1000;
	long long us = (long long)tv.tv_sec * 1000000 + tv.tv_usec;
	CHECK(before <= us && us <= after && tz.tz_minuteswest == 0, "vDSO gettimeofday %lld not in [%lld, %lld]",
	      us, before, after);
	CHECK(gtod(NULL, NULL) == 0, "vDSO gettimeofday(NULL, NULL)");
	time_t t1 = 0, t0 = syscall(SYS_time, NULL);
	time_t t = tm(&t1);
	CHECK(t >= t0 && t <= t0 + 1 && t1 == t, "vDSO time %lld, syscall %lld", (long long)t, (long long)t0);
	CHECK(tm(NULL) >= t0, "vDSO time(NULL)");
	unsigned cpu = 99, node = 99;
	CHECK(gc(&cpu, &node, NULL) == 0 && cpu < 4096 && node < 1024, "vDSO getcpu: cpu %u node %u", cpu, node);
	CHECK(gc(NULL, NULL, NULL) == 0, "vDSO getcpu(NULL, NULL)");
	/* The maps name it (when there is a /proc to read). */
	FILE *f = fopen("/proc/self/maps", "r");
	if (f) {
		char line[512];
		int seen = 0;
		while (fgets(line, sizeof line, f))
			if (strstr(line, "[vdso]") && strtoul(line, NULL, 16) == base)
				seen = 1;
		fclose(f);
		CHECK(seen, "/proc/self/maps has no [vdso] line at %#lx", base);
	}
	/* A fork child has it at the same place and it works there. */
	pid_t pid = fork();
	if (pid == 0) {
		struct timespec c;
		_exit(getauxval(AT_SYSINFO_EHDR) == base && gt(CLOCK_MONOTONIC, &c) == 0 && c.tv_sec >= 0 ? 0 : 1);
	}
	int status;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the vDSO failed in a fork child (status %#x)",
	      status);
}

static struct testcase cases[] = {
	{"realtime", t_realtime, 0, 0}, {"monotonic", t_monotonic, 0, 0}, {"getres", t_getres, 0, 0},
	{"errors", t_errors, 0, 0},     {"sleep", t_sleep, 0, 0},         {"cputime", t_cputime, 0, 0},
	{"vdso", t_vdso, 0, 0},         {"null-below-stack", t_null_below_stack, 0, 0},
};

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static int sleep_stats(int n)
{
	static const long reqs[] = {100000, 1000000, 10000000};
	long long *took = malloc(n * sizeof *took);
	if (!took || n < 1)
		return 1;
	for (int r = 0; r < 3; r++) {
		for (int i = 0; i < n; i++) {
			struct timespec req = {0, reqs[r]};
			long long t0 = now(CLOCK_MONOTONIC);
			nanosleep(&req, NULL);
			took[i] = now(CLOCK_MONOTONIC) - t0;
		}
		qsort(took, n, sizeof *took, cmp_ll);
		say("timetests: sleep %ld us x %d: min %lld median %lld p90 %lld p99 %lld max %lld us\n",
		    reqs[r] / 1000, n, took[0] / 1000, took[n / 2] / 1000, took[n * 9 / 10] / 1000,
		    took[n * 99 / 100] / 1000, took[n - 1] / 1000);
	}
	free(took);
	return 0;
}

static int bench(int n)
{
	gettime_fn gt = vdso_sym("LINUX_2.6", "__vdso_clock_gettime");
	long long *c = malloc(11 * sizeof *c);
	for (int kind = 0; kind < 3; kind++) {
		if (kind == 1 && !gt) {
			say("timetests: bench vdso: none\n");
			continue;
		}
		for (int rep = 0; rep < 11; rep++) {
			struct timespec ts;
			uint64_t t0 = tsc();
			for (int i = 0; i < n; i++) {
				if (kind == 0)
					clock_gettime(CLOCK_MONOTONIC, &ts);
				else if (kind == 1)
					gt(CLOCK_MONOTONIC, &ts);
				else
					sys_gettime(CLOCK_MONOTONIC, &ts);
			}
			c[rep] = (tsc() - t0) / n;
		}
		qsort(c, 11, sizeof *c, cmp_ll);
		say("timetests: bench clock_gettime-%s %lld cycles\n",
		    kind == 0 ? "libc" : kind == 1 ? "vdso" : "syscall", c[5]);
	}
	free(c);
	return 0;
}

static int options(int argc, char **argv, int i)
{
	if (strcmp(argv[i], "--epoch") != 0 || i + 1 >= argc)
		return 0;
	expect_epoch = atoll(argv[i + 1]);
	return 2;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sleep-stats") == 0)
			return sleep_stats(i + 1 < argc ? atoi(argv[i + 1]) : 200);
		if (strcmp(argv[i], "--bench") == 0)
			return bench(i + 1 < argc ? atoi(argv[i + 1]) : 10000);
	}
	/* In this process: the CPU-time and vDSO cases look at the process
	 * the suite runs in. */
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[--epoch SECS] [CASE...] | --sleep-stats [N] | --bench [N]",
		.option = options,
		.in_process = 1,
	};
	return run_suite(&suite, argc, argv);
}

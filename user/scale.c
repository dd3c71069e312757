/*
 * scale: page-fault and allocation scalability, in the style of
 * will-it-scale (github.com/antonblanchard/will-it-scale): N tasks run the
 * same loop at once and the operations they finish per second are counted.
 * Run on 1, 2, ... N tasks, it shows how far the kernel's memory paths
 * scale with CPUs: on an ideal kernel N tasks on N CPUs do N times the
 * work of one.
 *
 * Tests (each a loop a task runs until told to stop):
 *   page_fault1  mmap MEM of anonymous memory, write one byte per page
 *                (a fault each), munmap; one operation per page.
 *   page_fault2  the same over a private mapping of a file (a fault that
 *                copies the file's page: copy-on-write of file pages).
 *   malloc1      malloc(MEM) and free it untouched (mmap + munmap of a
 *                large region); one operation per pair.
 * and two variants of each: "processes" (N forked processes, separate
 * address spaces: nothing shared but the kernel) and "threads" (N threads
 * of one process: one address space, whose lock they share).
 *
 * And, asked for by name only, "shootdown": the cost of a TLB shootdown
 * as a program sees it. munmap of one page just written, in TSC cycles
 * (the median of many), alone and with 1 .. MAXTASKS-1 other threads of
 * the process spinning (so running on other CPUs, with the address space
 * loaded there: every munmap must invalidate their TLBs too):
 *   "scale: shootdown threads 2 munmap-cycles 23456"
 *
 * Usage: scale [-t SECONDS] [-m MIB] [-n MAXTASKS] [-d DIR] [TEST[-VARIANT]...]
 *   -t  seconds measured per point (default 1; a warm-up of a fifth of it
 *       comes first)
 *   -m  MEM in MiB (default 16; will-it-scale uses 128)
 *   -n  the largest task count (default: the CPUs this process may run on)
 *   -d  directory for page_fault2's files (default /tmp)
 *   no TEST: all three, both variants (not shootdown).
 * Output, per test and task count:
 *   "scale: page_fault1-processes tasks 2 ops/s 123456 speedup 1.93"
 * (speedup: ops/s over the same test's 1-task figure), and at the end
 * "scale: done". A variant the kernel cannot run (threads where clone of a
 * thread fails) prints "scale: TEST-threads: unsupported (ERRNO)" and is
 * skipped. Exit 0 on success, 1 on a failure, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

#define PAGE 4096ul
#define MAX_TASKS 64

/* Shared with every task: one counter per task on its own cache line, and
 * the stop flag. */
struct shared {
	volatile int stop;
	struct {
		volatile uint64_t ops;
		char pad[56];
	} task[MAX_TASKS];
};

static struct shared *sh;
static size_t mem = 16ul << 20;
static const char *dir = "/tmp";

static uint64_t cycles(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
#else
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
#endif
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec t = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static void die(const char *what)
{
	say("scale: FAILED: %s: %s\n", what, strerror(errno));
	_exit(1);
}

static void page_fault1(int me)
{
	while (!sh->stop) {
		char *p = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		for (size_t off = 0; off < mem && !sh->stop; off += PAGE) {
			p[off] = 1;
			sh->task[me].ops++;
		}
		munmap(p, mem);
	}
}

static void page_fault2(int me)
{
	char path[256];
	snprintf(path, sizeof path, "%s/scale.%d.%d", dir, (int)getpid(), me);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("open");
	unlink(path);
	if (ftruncate(fd, (off_t)mem) != 0)
		die("ftruncate");
	while (!sh->stop) {
		char *p = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
		for (size_t off = 0; off < mem && !sh->stop; off += PAGE) {
			p[off] = 1;
			sh->task[me].ops++;
		}
		munmap(p, mem);
	}
	close(fd);
}

static void malloc1(int me)
{
	while (!sh->stop) {
		void *p = malloc(mem);
		if (!p)
			die("malloc");
		free(p);
		sh->task[me].ops++;
	}
}

static const struct test {
	const char *name;
	void (*loop)(int);
} tests[] = {
	{"page_fault1", page_fault1},
	{"page_fault2", page_fault2},
	{"malloc1", malloc1},
};
#define NTESTS (int)(sizeof tests / sizeof tests[0])

static const struct test *running;

static void *thread_main(void *arg)
{
	running->loop((int)(intptr_t)arg);
	return NULL;
}

static uint64_t total_ops(int n)
{
	uint64_t sum = 0;
	for (int i = 0; i < n; i++)
		sum += sh->task[i].ops;
	return sum;
}

/* Runs `t` on `n` tasks for `secs` (after a warm-up); its ops/s, or -1 if
 * the variant cannot run here (errno says why). */
static double measure(const struct test *t, int threads, int n, double secs)
{
	memset((void *)sh, 0, sizeof *sh);
	running = t;
	pid_t pids[MAX_TASKS];
	pthread_t tids[MAX_TASKS];
	int started = 0;
	for (int i = 0; i < n; i++) {
		if (threads) {
			int e = pthread_create(&tids[i], NULL, thread_main, (void *)(intptr_t)i);
			if (e != 0) {
				errno = e;
				break;
			}
		} else {
			pids[i] = fork();
			if (pids[i] < 0)
				break;
			if (pids[i] == 0) {
				t->loop(i);
				_exit(0);
			}
		}
		started++;
	}
	double rate = -1;
	int err = errno;
	if (started == n) {
		sleep_s(secs / 5);
		uint64_t before = total_ops(n);
		double t0 = now_s();
		sleep_s(secs);
		uint64_t after = total_ops(n);
		rate = (after - before) / (now_s() - t0);
	}
	sh->stop = 1;
	for (int i = 0; i < started; i++) {
		if (threads) {
			pthread_join(tids[i], NULL);
		} else {
			int st;
			if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
			    WEXITSTATUS(st) != 0) {
				say("scale: FAILED: %s task %d ended with status %#x\n", t->name, i, st);
				exit(1);
			}
		}
	}
	errno = err;
	return rate;
}

/* The shootdown measurement's spinning threads: touch their own page of
 * the address space now and then, until told to stop. */
static volatile int spin_stop;
static volatile int spinning;

static void *spinner(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&spinning, 1, __ATOMIC_SEQ_CST);
	while (!spin_stop)
		__asm__ volatile("" ::: "memory");
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The median cycles of munmaps of one page just written: `rounds` of
 * them, or as many as `secs` seconds allow (at least 11). */
static uint64_t munmap_cycles(int rounds, double secs)
{
	static uint64_t t[4096];
	if (rounds > 4096)
		rounds = 4096;
	double end = now_s() + secs;
	for (int i = 0; i < rounds; i++) {
		if (i >= 11 && now_s() > end) {
			rounds = i;
			break;
		}
		char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		p[0] = 1;
		uint64_t t0 = cycles();
		if (munmap(p, PAGE) != 0)
			die("munmap");
		t[i] = cycles() - t0;
	}
	qsort(t, (size_t)rounds, sizeof t[0], cmp_u64);
	return t[rounds / 2];
}

/* "shootdown": munmap of one page alone, then with 1 .. max-1 threads
 * spinning on the other CPUs. */
static void shootdown(int max, double secs)
{
	int rounds = (int)(secs * 1000);
	if (rounds < 50)
		rounds = 50;
	pthread_t tids[MAX_TASKS];
	int started = 0;
	spin_stop = 0;
	spinning = 0;
	munmap_cycles(rounds / 4 + 1, secs / 5); /* warm-up */
	for (int n = 1; n <= max; n++) {
		if (n > 1) {
			int e = pthread_create(&tids[started], NULL, spinner, NULL);
			if (e != 0) {
				say("scale: shootdown-threads: unsupported (%s)\n", strerror(e));
				break;
			}
			started++;
			while (spinning < started)
				sched_yield();
			sleep_s(0.05); /* on their CPUs */
		}
		say("scale: shootdown threads %d munmap-cycles %llu\n", n,
		    (unsigned long long)munmap_cycles(rounds, secs));
	}
	spin_stop = 1;
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
}

static int usage(void)
{
	say("usage: scale [-t SECONDS] [-m MIB] [-n MAXTASKS] [-d DIR] [TEST[-VARIANT]...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	double secs = 1;
	int max = 0;
	int opt;
	while ((opt = getopt(argc, argv, "t:m:n:d:")) != -1) {
		switch (opt) {
		case 't':
			secs = atof(optarg);
			break;
		case 'm':
			mem = (size_t)atol(optarg) << 20;
			break;
		case 'n':
			max = atoi(optarg);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			return usage();
		}
	}
	if (secs <= 0 || mem < PAGE || max < 0 || max > MAX_TASKS)
		return usage();
	if (max == 0) {
		cpu_set_t set;
		max = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
		if (max > MAX_TASKS)
			max = MAX_TASKS;
	}
	/* Which test-variant pairs to run: bit 2*test + threads. */
	unsigned want = 0;
	int shoot = 0;
	for (int a = optind; a < argc; a++) {
		unsigned before = want;
		if (!strcmp(argv[a], "shootdown")) {
			shoot = 1;
			continue;
		}
		for (int i = 0; i < NTESTS; i++) {
			size_t len = strlen(tests[i].name);
			if (strncmp(argv[a], tests[i].name, len) != 0)
				continue;
			const char *v = argv[a] + len;
			if (!*v || !strcmp(v, "-processes"))
				want |= 1u << (2 * i);
			if (!*v || !strcmp(v, "-threads"))
				want |= 1u << (2 * i + 1);
		}
		if (want == before) {
			say("scale: no test named %s\n", argv[a]);
			return 2;
		}
	}
	if (!want && !shoot)
		want = (1u << (2 * NTESTS)) - 1;
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap of the counters");
	say("scale: %d tasks at most, %zu MiB, %.1f s per point\n", max, mem >> 20, secs);
	for (int i = 0; i < NTESTS; i++) {
		for (int threads = 0; threads < 2; threads++) {
			if (!(want & (1u << (2 * i + threads))))
				continue;
			const char *variant = threads ? "threads" : "processes";
			double one = 0;
			for (int n = 1; n <= max; n++) {
				double r = measure(&tests[i], threads, n, secs);
				if (r < 0) {
					say("scale: %s-%s: unsupported (%s)\n", tests[i].name, variant,
					    strerror(errno));
					break;
				}
				if (n == 1)
					one = r;
				say("scale: %s-%s tasks %d ops/s %.0f speedup %.2f\n", tests[i].name,
				    variant, n, r, one > 0 ? r / one : 0);
			}
		}
	}
	if (shoot)
		shootdown(max, secs);
	say("scale: done\n");
	return 0;
}

/*
 * proctests2: the load average, /proc/stat's counters, the VmPeak/VmHWM
 * peaks and locked memory (mlockall(MCL_FUTURE), MAP_LOCKED, mremap of a
 * locked region, RLIMIT_MEMLOCK, VmLck), as Linux shows them.
 *
 *   proctests2            run every case (but those run only by name)
 *   proctests2 NAME...    run the named cases
 *   proctests2 -l         list the cases (--skip CASE: all but CASE)
 *   proctests2 hold MiB   map and touch MiB of anonymous memory, print
 *                         "hold: ready", then sleep until killed (a
 *                         target for pmap)
 *
 * Every case passes natively on Linux (user/run-host-tests.sh), so what
 * is expected is what Linux does. Every case runs in a child of its own
 * (user/testcase.h: locks and MCL_FUTURE die with it); a locking case
 * locks at most a few dozen pages, and expects what RLIMIT_MEMLOCK allows
 * the caller: a process with CAP_IPC_LOCK (root) is not held to it, as on
 * Linux (memlock-limit's note says which).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE "proctests2"
#include "procfile.h"

#define PAGE 4096UL

static char text[256 * 1024];

/* The number after "name" at the start of a line ("Name:  N kB",
 * "ctxt N"), or -1. */
static long long field(const char *t, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, name, n) == 0 && (p[n] == ':' || p[n] == ' '))
			return strtoll(p + n + 1, NULL, 10);
	}
	return -1;
}

static long status(const char *name)
{
	if (slurp("/proc/self/status", text, sizeof text) <= 0)
		return -1;
	return (long)field(text, name);
}

static long long stat_field(const char *name)
{
	if (slurp("/proc/stat", text, sizeof text) <= 0)
		return -1;
	return field(text, name);
}

/* Whether this process holds CAP_IPC_LOCK (bit 14 of CapEff). */
static int cap_ipc_lock(void)
{
	if (slurp("/proc/self/status", text, sizeof text) <= 0)
		return 0;
	const char *p = strstr(text, "\nCapEff:\t");
	return p && (strtoull(p + 9, NULL, 16) >> 14 & 1);
}

static void *map(size_t len, int prot, int flags)
{
	return mmap(NULL, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* Pages of [p, p + n pages) resident, by mincore. */
static int resident(void *p, int n)
{
	unsigned char vec[256];
	if (n > 256 || mincore(p, n * PAGE, vec) != 0)
		return -1;
	int r = 0;
	for (int i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

/* --- /proc/loadavg ------------------------------------------------------ */

struct loadavg {
	int avg[3]; /* hundredths */
	int running, total, last;
};

static int read_loadavg(struct loadavg *l)
{
	if (slurp("/proc/loadavg", text, sizeof text) <= 0)
		return -1;
	int i[3], f[3], used = 0;
	if (sscanf(text, "%d.%2d %d.%2d %d.%2d %d/%d %d\n%n", &i[0], &f[0], &i[1], &f[1], &i[2],
		   &f[2], &l->running, &l->total, &l->last, &used) != 9 ||
	    text[used] != 0)
		return -1;
	for (int k = 0; k < 3; k++)
		l->avg[k] = i[k] * 100 + f[k];
	return 0;
}

static void loadavg_format(void)
{
	struct loadavg l;
	CHECK(read_loadavg(&l) == 0, "loadavg: %s", text);
	/* "0.00 0.01 0.05 1/123 4567": two decimals each, like Linux. */
	CHECK(text[1] == '.' || text[2] == '.' || text[3] == '.', "%s", text);
	CHECK(l.running >= 1 && l.total >= l.running && l.last >= getpid(), "%s (pid %d)", text,
	      getpid());
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	CHECK(pid > 0, "fork");
	waitpid(pid, NULL, 0);
	CHECK(read_loadavg(&l) == 0 && l.last >= pid, "after fork of %d: %s", pid, text);
}

/* One spinning child for 11 s (two 5 s samples at least): the 1-minute
 * average is at least 1 - (1884/2048)^2 = 0.15; sysinfo agrees. */
static void loadavg_rises(void)
{
	pid_t spinner = fork();
	if (spinner == 0) {
		for (;;)
			__asm__ volatile("" ::: "memory");
	}
	CHECK(spinner > 0, "fork");
	struct timespec ts = {11, 0};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	struct loadavg l, l2;
	struct sysinfo si;
	int agree = 0;
	for (int tries = 0; tries < 3 && !agree; tries++) {
		if (read_loadavg(&l) != 0 || sysinfo(&si) != 0 || read_loadavg(&l2) != 0)
			break;
		/* sysinfo's loads have 16 fraction bits: the same rounding
		 * as /proc/loadavg's ((x >> 5) + 10) * 100 >> 11. */
		int one = (int)((((si.loads[0] >> 5) + 10) * 100) >> 11);
		agree = memcmp(l.avg, l2.avg, sizeof l.avg) != 0 || one == l.avg[0];
		if (memcmp(l.avg, l2.avg, sizeof l.avg) == 0 && one != l.avg[0]) {
			say(SUITE ":   sysinfo load %d, loadavg %d\n", one, l.avg[0]);
			agree = 0;
			break;
		}
	}
	kill(spinner, SIGKILL);
	waitpid(spinner, NULL, 0);
	CHECK(agree, "sysinfo's loads are not /proc/loadavg's");
	CHECK(l.avg[0] >= 15, "1-minute load %d.%02d after 11 s of a busy child", l.avg[0] / 100,
	      l.avg[0] % 100);
	CHECK(l.running >= 1, "running %d", l.running);
}

/* --- /proc/stat --------------------------------------------------------- */

static void stat_counters(void)
{
	CHECK(slurp("/proc/stat", text, sizeof text) > 0, "open: %s", strerror(errno));
	/* Linux's order after the CPU lines and intr. */
	const char *order[] = {"\nctxt ", "\nbtime ", "\nprocesses ", "\nprocs_running ",
			       "\nprocs_blocked "};
	const char *at = text;
	for (int i = 0; i < 5; i++) {
		const char *p = strstr(at, order[i]);
		CHECK(p, "no %s after the one before", order[i] + 1);
		at = p + 1;
	}
	CHECK(field(text, "procs_running") >= 1 && field(text, "procs_blocked") >= 0, "procs");
	/* btime: the boot's wall-clock second, time now less the uptime. */
	long long btime = field(text, "btime");
	char up[128];
	CHECK(slurp("/proc/uptime", up, sizeof up) > 0, "uptime");
	long long uptime = atoll(up);
	long long now = time(NULL);
	CHECK(btime > 1000000000 && llabs(now - uptime - btime) <= 2,
	      "btime %lld, now %lld, uptime %lld", btime, now, uptime);
	/* processes: every fork counts. */
	long long forks = field(text, "processes");
	for (int i = 0; i < 3; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		CHECK(pid > 0, "fork");
		waitpid(pid, NULL, 0);
	}
	long long forks2 = stat_field("processes");
	CHECK(forks > 0 && forks2 >= forks + 3, "processes %lld then %lld", forks, forks2);
	/* ctxt: a ping-pong over two pipes switches at every hand-over. */
	long long ctxt = stat_field("ctxt");
	int ab[2], ba[2];
	CHECK(pipe(ab) == 0 && pipe(ba) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(ab[1]);
		close(ba[0]);
		while (read(ab[0], &c, 1) == 1 && write(ba[1], &c, 1) == 1)
			;
		_exit(0);
	}
	CHECK(pid > 0, "fork");
	for (int i = 0; i < 20; i++) {
		char c = (char)i;
		CHECK(write(ab[1], &c, 1) == 1 && read(ba[0], &c, 1) == 1, "ping %d", i);
	}
	close(ab[1]);
	waitpid(pid, NULL, 0);
	close(ab[0]);
	close(ba[0]);
	close(ba[1]);
	long long ctxt2 = stat_field("ctxt");
	CHECK(ctxt > 0 && ctxt2 >= ctxt + 20, "ctxt %lld then %lld after 20 round trips", ctxt,
	      ctxt2);
}

/* --- VmPeak / VmHWM ------------------------------------------------------ */

static void vm_peaks(void)
{
	enum { MIB = 16 };
	size_t len = MIB << 20;
	long size0 = status("VmSize");
	char *m = map(len, PROT_READ | PROT_WRITE, 0);
	CHECK(m != MAP_FAILED, "mmap");
	for (size_t off = 0; off < len; off += PAGE)
		m[off] = 1;
	long size1 = status("VmSize"), rss1 = status("VmRSS");
	long peak1 = status("VmPeak"), hwm1 = status("VmHWM");
	CHECK(size1 >= size0 + MIB * 1024 && peak1 >= size1 && hwm1 >= rss1 &&
		      rss1 >= MIB * 1024,
	      "mapped: VmSize %ld VmPeak %ld VmRSS %ld VmHWM %ld", size1, peak1, rss1, hwm1);
	munmap(m, len);
	long size2 = status("VmSize"), rss2 = status("VmRSS");
	long peak2 = status("VmPeak"), hwm2 = status("VmHWM");
	/* Gone from the sizes, kept in the peaks. */
	CHECK(size2 <= size1 - MIB * 1024 && rss2 <= rss1 - MIB * 1024 + 64,
	      "unmapped: VmSize %ld VmRSS %ld", size2, rss2);
	/* (Linux's RSS counters lag a little: per-task caches.) */
	CHECK(peak2 >= size1 && hwm2 >= rss1 - 512, "peaks after munmap: VmPeak %ld (was %ld) VmHWM %ld (was %ld)",
	      peak2, size1, hwm2, rss1);
	/* MADV_DONTNEED drops pages: the peak keeps them too. */
	char *d = map(4 << 20, PROT_READ | PROT_WRITE, 0);
	CHECK(d != MAP_FAILED, "mmap");
	for (size_t off = 0; off < (4 << 20); off += PAGE)
		d[off] = 1;
	long rss3 = status("VmRSS");
	CHECK(madvise(d, 4 << 20, MADV_DONTNEED) == 0, "madvise");
	CHECK(status("VmHWM") >= rss3 - 512, "VmHWM %ld below the RSS %ld before MADV_DONTNEED",
	      status("VmHWM"), rss3);
	munmap(d, 4 << 20);
	/* A fork's child starts its own peaks (Linux's dup_mm): below the
	 * parent's. */
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		long h = status("VmHWM"), r = status("VmRSS");
		long v[2] = {h, r};
		write(p[1], v, sizeof v);
		_exit(0);
	}
	long v[2] = {0, 0};
	CHECK(pid > 0 && read(p[0], v, sizeof v) == sizeof v, "child");
	waitpid(pid, NULL, 0);
	close(p[0]);
	close(p[1]);
	CHECK(v[0] >= v[1] && v[0] < hwm2 - MIB * 512, "child VmHWM %ld VmRSS %ld, parent VmHWM %ld",
	      v[0], v[1], hwm2);
}

/* --- locked memory ---------------------------------------------------------- */

static void vmlck(void)
{
	long lck0 = status("VmLck");
	char *m = map(8 * PAGE, PROT_READ | PROT_WRITE, 0);
	CHECK(m != MAP_FAILED, "mmap");
	CHECK(mlock(m, 4 * PAGE) == 0, "mlock: %s", strerror(errno));
	CHECK(status("VmLck") == lck0 + 16, "VmLck %ld after locking 16 kB (was %ld)",
	      status("VmLck"), lck0);
	/* Locking again counts once. */
	CHECK(mlock(m, 6 * PAGE) == 0, "mlock: %s", strerror(errno));
	CHECK(status("VmLck") == lck0 + 24, "VmLck %ld", status("VmLck"));
	CHECK(munlock(m + PAGE, PAGE) == 0, "munlock");
	CHECK(status("VmLck") == lck0 + 20, "VmLck %ld", status("VmLck"));
	/* Unmapping a locked page unlocks it. */
	CHECK(munmap(m + 5 * PAGE, PAGE) == 0, "munmap");
	CHECK(status("VmLck") == lck0 + 16, "VmLck %ld", status("VmLck"));
	/* MAP_LOCKED: locked and populated. */
	char *l = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_LOCKED);
	CHECK(l != MAP_FAILED, "mmap(MAP_LOCKED): %s", strerror(errno));
	CHECK(resident(l, 4) == 4, "MAP_LOCKED: %d of 4 pages resident", resident(l, 4));
	CHECK(status("VmLck") == lck0 + 32, "VmLck %ld", status("VmLck"));
	CHECK(munlockall() == 0, "munlockall");
	CHECK(status("VmLck") == 0, "VmLck %ld after munlockall", status("VmLck"));
}

static void mlockall_future(void)
{
	CHECK(mlockall(MCL_FUTURE) == 0, "mlockall(MCL_FUTURE): %s", strerror(errno));
	/* Regions mapped before stay unlocked. */
	CHECK(status("VmLck") == 0, "VmLck %ld", status("VmLck"));
	char *m = map(4 * PAGE, PROT_READ | PROT_WRITE, 0);
	CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
	CHECK(resident(m, 4) == 4, "%d of 4 pages resident", resident(m, 4));
	CHECK(status("VmLck") == 16, "VmLck %ld", status("VmLck"));
	/* A read-only mapping is populated too (for reading). */
	char *r = map(2 * PAGE, PROT_READ, 0);
	CHECK(r != MAP_FAILED && resident(r, 2) == 2, "read-only: %d of 2", resident(r, 2));
	/* The heap grows locked and populated. */
	/* (musl's brk() refuses: the system call itself.) */
	char *brk0 = (char *)syscall(SYS_brk, 0);
	char *top = (char *)(((uintptr_t)brk0 + PAGE - 1) & ~(PAGE - 1));
	CHECK((char *)syscall(SYS_brk, top + 2 * PAGE) == top + 2 * PAGE, "brk refused");
	CHECK(resident(top, 2) == 2, "heap: %d of 2 pages resident", resident(top, 2));
	/* 4 + 2 + 2 pages. */
	CHECK(status("VmLck") == 32, "VmLck %ld", status("VmLck"));
	/* MCL_ONFAULT: locked, not populated. */
	CHECK(mlockall(MCL_FUTURE | MCL_ONFAULT) == 0, "mlockall(MCL_FUTURE|MCL_ONFAULT)");
	long lck = status("VmLck");
	char *o = map(4 * PAGE, PROT_READ | PROT_WRITE, 0);
	CHECK(o != MAP_FAILED && resident(o, 4) == 0, "ONFAULT: %d of 4 resident", resident(o, 4));
	CHECK(status("VmLck") == lck + 16, "VmLck %ld (was %ld)", status("VmLck"), lck);
	/* mlockall(MCL_CURRENT) alone ends MCL_FUTURE. */
	CHECK(mlockall(MCL_CURRENT | MCL_ONFAULT) == 0, "mlockall(MCL_CURRENT|MCL_ONFAULT)");
	lck = status("VmLck");
	char *n = map(4 * PAGE, PROT_READ | PROT_WRITE, 0);
	CHECK(n != MAP_FAILED && resident(n, 4) == 0 && status("VmLck") == lck,
	      "after MCL_CURRENT: %d resident, VmLck %ld (was %ld)", resident(n, 4),
	      status("VmLck"), lck);
	/* munlockall ends it too. */
	CHECK(mlockall(MCL_FUTURE) == 0 && munlockall() == 0, "munlockall");
	char *u = map(4 * PAGE, PROT_READ | PROT_WRITE, 0);
	CHECK(u != MAP_FAILED && resident(u, 4) == 0 && status("VmLck") == 0,
	      "after munlockall: %d resident, VmLck %ld", resident(u, 4), status("VmLck"));
}

static void mremap_locked(void)
{
	/* Grown in place: the new part locked and populated. */
	char *m = map(8 * PAGE, PROT_READ | PROT_WRITE, 0);
	CHECK(m != MAP_FAILED && munmap(m + 4 * PAGE, 4 * PAGE) == 0, "mmap");
	CHECK(mlock(m, 4 * PAGE) == 0, "mlock: %s", strerror(errno));
	char *g = mremap(m, 4 * PAGE, 8 * PAGE, 0);
	CHECK(g == m, "mremap in place: %p (%s)", (void *)g, strerror(errno));
	CHECK(resident(m, 8) == 8, "grown in place: %d of 8 resident", resident(m, 8));
	CHECK(status("VmLck") == 32, "VmLck %ld", status("VmLck"));
	/* Moved (a page mapped right above blocks growth in place): the lock
	 * goes along, the new part is populated. */
	char *b = map(5 * PAGE, PROT_READ | PROT_WRITE, 0);
	CHECK(b != MAP_FAILED && munmap(b + 4 * PAGE, PAGE) == 0, "mmap");
	char *blocker = mmap(b + 4 * PAGE, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			     -1, 0);
	CHECK(blocker == b + 4 * PAGE, "blocker");
	CHECK(mlock(b, 4 * PAGE) == 0, "mlock");
	b[0] = 42;
	char *n = mremap(b, 4 * PAGE, 12 * PAGE, MREMAP_MAYMOVE);
	CHECK(n != MAP_FAILED && n != b, "mremap move: %p (%s)", (void *)n, strerror(errno));
	CHECK(n[0] == 42, "contents moved");
	CHECK(resident(n, 12) == 12, "moved: %d of 12 resident", resident(n, 12));
	CHECK(status("VmLck") == 32 + 48, "VmLck %ld after the move", status("VmLck"));
	/* Shrunk: the lock shrinks with it. */
	CHECK(mremap(n, 12 * PAGE, 2 * PAGE, 0) == n, "shrink");
	CHECK(status("VmLck") == 32 + 8, "VmLck %ld after shrinking", status("VmLck"));
}

/* RLIMIT_MEMLOCK: a process without CAP_IPC_LOCK is held to it (mlock
 * ENOMEM, mmap(MAP_LOCKED) EAGAIN, 0: EPERM); one with it (root) is not. */
static void memlock_limit(void)
{
	int cap = cap_ipc_lock();
	struct rlimit rl = {2 * PAGE, RLIM_INFINITY};
	getrlimit(RLIMIT_MEMLOCK, &rl);
	rl.rlim_cur = 2 * PAGE;
	CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit: %s", strerror(errno));
	char *m = map(4 * PAGE, PROT_READ | PROT_WRITE, 0);
	CHECK(m != MAP_FAILED, "mmap");
	CHECK(mlock(m, 2 * PAGE) == 0, "mlock within the limit: %s", strerror(errno));
	int r = mlock(m, 4 * PAGE);
	if (cap)
		CHECK(r == 0, "mlock past the limit with CAP_IPC_LOCK: %s", strerror(errno));
	else
		CHECK(r == -1 && errno == ENOMEM, "mlock past the limit: %d %s", r, strerror(errno));
	char *l = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_LOCKED);
	if (cap)
		CHECK(l != MAP_FAILED, "MAP_LOCKED with CAP_IPC_LOCK: %s", strerror(errno));
	else
		CHECK(l == MAP_FAILED && errno == EAGAIN, "MAP_LOCKED past the limit: %s",
		      strerror(errno));
	r = mlockall(MCL_CURRENT | MCL_ONFAULT);
	if (cap)
		CHECK(r == 0, "mlockall with CAP_IPC_LOCK: %s", strerror(errno));
	else
		CHECK(r == -1 && errno == ENOMEM, "mlockall past the limit: %s", strerror(errno));
	CHECK(munlockall() == 0, "munlockall");
	rl.rlim_cur = 0;
	CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit 0");
	r = mlock(m, PAGE);
	if (cap)
		CHECK(r == 0, "mlock with limit 0 and CAP_IPC_LOCK: %s", strerror(errno));
	else
		CHECK(r == -1 && errno == EPERM, "mlock with limit 0: %s", strerror(errno));
	set_note("CAP_IPC_LOCK %s", cap ? "held (limit not applied)" : "not held (limit applied)");
}

/* --- hold: a target for pmap ------------------------------------------------ */

static int hold(long mib)
{
	size_t len = (size_t)mib << 20;
	char *m = map(len, PROT_READ | PROT_WRITE, 0);
	if (m == MAP_FAILED)
		return 1;
	for (size_t off = 0; off < len; off += PAGE)
		m[off] = 1;
	/* A locked region too (pmap -X shows it). */
	char *l = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_LOCKED);
	if (l == MAP_FAILED)
		return 1;
	say("hold: ready %p %ld MiB, locked %p\n", (void *)m, mib, (void *)l);
	for (;;)
		pause();
}

static struct testcase cases[] = {
	{"loadavg-format", loadavg_format, 0, 0},
	/* 11 s: run-host-tests.sh and tests/procfs2.rs name it. */
	{"loadavg-rises", loadavg_rises, 0, BY_NAME},
	{"stat-counters", stat_counters, 0, 0},
	{"vm-peaks", vm_peaks, 0, 0},
	{"vmlck", vmlck, 0, 0},
	{"mlockall-future", mlockall_future, 0, 0},
	{"mremap-locked", mremap_locked, 0, 0},
	{"memlock-limit", memlock_limit, 0, 0},
};

int main(int argc, char **argv)
{
	memset(text, 1, sizeof text);
	if (argc == 3 && strcmp(argv[1], "hold") == 0)
		return hold(atol(argv[2]));
	/* Each case in a child of its own (testcase.h's default): the locks,
	 * MCL_FUTURE and RLIMIT_MEMLOCK of a locking case die with it, and the
	 * peaks vm-peaks reads are the child's own. */
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--skip CASE]... [CASE...] | hold MiB",
	};
	return run_suite(&suite, argc, argv);
}

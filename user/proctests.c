/*
 * proctests: /proc read from a program, as Linux tools read it.
 *
 *   proctests            run every case
 *   proctests NAME...    run the named cases
 *   proctests -l         list the cases
 *
 * Every case passes natively on Linux (user/run-host-tests.sh), so what
 * is expected is what Linux does; on Ferrite it runs once the VFS mounts
 * /proc. Only reads, and only the program's own memory: harmless on the
 * host. Files are read with read(2) into static buffers (no stdio, no
 * malloc), so reading does not change the figures being read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE "proctests"
/* Small reads: a reader going through the file in pieces. */
#define SLURP_PIECE 1000
#include "procfile.h"

#define PAGE 4096UL

static const char *argv0;
static int g_argc;
static char **g_argv;

static char text[512 * 1024];
static char text2[512 * 1024];

/* The value of "Name:   123 kB" in text, or -1. */
static long field(const char *t, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, name, n) == 0 && p[n] == ':')
			return strtol(p + n + 1, NULL, 10);
	}
	return -1;
}

/* Sum of every "Name: N kB" line's N in t. */
static long sum_field(const char *t, const char *name)
{
	size_t n = strlen(name);
	long sum = 0;
	for (const char *p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, name, n) == 0 && p[n] == ':')
			sum += strtol(p + n + 1, NULL, 10);
	}
	return sum;
}

static void meminfo_format(void)
{
	CHECK(slurp("/proc/meminfo", text, sizeof text) > 0, "open: %s", strerror(errno));
	CHECK(strncmp(text, "MemTotal:", 9) == 0, "first line: %.40s", text);
	const char *names[] = {"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached",
			       "SwapCached", "Active", "Inactive", "SwapTotal", "SwapFree",
			       "AnonPages", "Mapped", "Shmem", "Slab", "SUnreclaim",
			       "KernelStack", "PageTables", "CommitLimit", "Committed_AS"};
	/* In this order, each "Name:" padded to 16, the value to 8, " kB". */
	const char *at = text;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char label[32];
		snprintf(label, sizeof label, "\n%s:", names[i]);
		const char *p = i == 0 ? text - 1 : strstr(at, label);
		CHECK(p, "no %s after the one before", names[i]);
		p++;
		const char *nl = strchr(p, '\n');
		CHECK(nl && nl - p >= 27 && strncmp(nl - 3, " kB", 3) == 0, "line %.30s", p);
		CHECK(p[15] == ' ' || (size_t)(strchr(p, ':') - p) >= 15, "label %.30s", p);
		at = p;
	}
	long total = field(text, "MemTotal"), free = field(text, "MemFree");
	CHECK(total > 0 && free > 0 && free <= total, "MemTotal %ld MemFree %ld", total, free);
	CHECK(field(text, "MemAvailable") >= free, "MemAvailable below MemFree");
	CHECK(field(text, "SwapFree") <= field(text, "SwapTotal"), "swap");
}

/* The maps line holding addr: its fields. */
static int maps_line(const char *maps, unsigned long addr, unsigned long *start,
		     unsigned long *end, char perms[5], char *name, size_t name_size)
{
	for (const char *p = maps; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		unsigned long s, e, off, ino;
		unsigned maj, min;
		int used = 0;
		if (sscanf(p, "%lx-%lx %4s %lx %x:%x %lu %n", &s, &e, perms, &off, &maj, &min,
			   &ino, &used) < 7)
			return -1;
		if (addr >= s && addr < e) {
			*start = s;
			*end = e;
			const char *nl = strchr(p, '\n');
			size_t len = nl ? (size_t)(nl - (p + used)) : strlen(p + used);
			if (len >= name_size)
				len = name_size - 1;
			memcpy(name, p + used, len);
			name[len] = 0;
			return 0;
		}
	}
	return -1;
}

static int data_word = 1;

static void self_maps(void)
{
	char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap");
	mprotect(m + PAGE, PAGE, PROT_READ);
	CHECK(slurp("/proc/self/maps", text, sizeof text) > 0, "open: %s", strerror(errno));
	unsigned long s, e;
	char perms[5], name[256];
	CHECK(maps_line(text, (unsigned long)m, &s, &e, perms, name, sizeof name) == 0,
	      "no line for %p in\n%s", (void *)m, text);
	CHECK(s == (unsigned long)m && e == s + PAGE && strcmp(perms, "rw-p") == 0,
	      "first page: %lx-%lx %s", s, e, perms);
	CHECK(maps_line(text, (unsigned long)m + PAGE, &s, &e, perms, name, sizeof name) == 0 &&
		      strcmp(perms, "r--p") == 0 && e == (unsigned long)m + 2 * PAGE,
	      "split by mprotect: %s", perms);
	CHECK(maps_line(text, (unsigned long)&data_word, &s, &e, perms, name, sizeof name) == 0 &&
		      perms[0] == 'r' && perms[1] == 'w',
	      "data: %s", perms);
	CHECK(maps_line(text, (unsigned long)&s, &s, &e, perms, name, sizeof name) == 0 &&
		      strcmp(name, "[stack]") == 0,
	      "stack named %s", name);
	CHECK(maps_line(text, (unsigned long)self_maps, &s, &e, perms, name, sizeof name) == 0 &&
		      perms[2] == 'x' && strstr(name, "proctests"),
	      "text: %s %s", perms, name);
	munmap(m, 3 * PAGE);
}

static int read_statm(long v[7])
{
	if (slurp("/proc/self/statm", text2, sizeof text2) <= 0)
		return -1;
	return sscanf(text2, "%ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		      &v[6]) == 7
		       ? 0
		       : -1;
}

static void statm_grows(void)
{
	long before[7], after[7];
	CHECK(read_statm(before) == 0, "statm: %s", text2);
	CHECK(before[0] >= before[1] && before[1] >= before[2], "size %ld resident %ld shared %ld",
	      before[0], before[1], before[2]);
	enum { N = 64 };
	char *m = mmap(NULL, N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap");
	for (int i = 0; i < N; i++)
		m[i * PAGE] = 1;
	CHECK(read_statm(after) == 0, "statm");
	CHECK(after[0] - before[0] == N, "size grew by %ld pages", after[0] - before[0]);
	CHECK(after[1] - before[1] >= N, "resident grew by %ld pages", after[1] - before[1]);
	munmap(m, N * PAGE);
	CHECK(read_statm(after) == 0 && after[0] == before[0], "size back: %ld", after[0]);
}

static void status_agrees(void)
{
	long v[7];
	CHECK(slurp("/proc/self/status", text, sizeof text) > 0, "open");
	CHECK(read_statm(v) == 0, "statm");
	CHECK(strncmp(text, "Name:\tproctests\n", 16) == 0, "%.30s", text);
	CHECK(strstr(text, "\nState:\tR (running)\n"), "state");
	char want[64];
	snprintf(want, sizeof want, "\nPid:\t%d\nPPid:\t%d\n", getpid(), getppid());
	CHECK(strstr(text, want), "no %s", want);
	long rss = field(text, "VmRSS");
	CHECK(rss == field(text, "RssAnon") + field(text, "RssFile") + field(text, "RssShmem"),
	      "VmRSS %ld", rss);
	CHECK(field(text, "VmSize") == v[0] * 4, "VmSize %ld statm %ld", field(text, "VmSize"),
	      v[0]);
	/* status and statm were read one after the other: nothing in between. */
	CHECK(rss == v[1] * 4, "VmRSS %ld statm resident %ld", rss, v[1]);
	CHECK(field(text, "VmExe") == v[3] * 4, "VmExe %ld text %ld", field(text, "VmExe"), v[3]);
}

static void smaps_sums(void)
{
	CHECK(slurp("/proc/self/smaps", text, sizeof text) > 0, "open");
	CHECK(slurp("/proc/self/smaps_rollup", text2, sizeof text2) > 0, "open rollup");
	CHECK(strstr(text2, " [rollup]\n"), "%.100s", text2);
	const char *names[] = {"Rss", "Shared_Clean", "Shared_Dirty", "Private_Clean",
			       "Private_Dirty", "Anonymous", "Swap"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		long sum = sum_field(text, names[i]), total = field(text2, names[i]);
		CHECK(sum == total, "%s: regions %ld kB, rollup %ld kB", names[i], sum, total);
	}
	long pss = sum_field(text, "Pss"), total = field(text2, "Pss");
	CHECK(total >= pss && total - pss < 64, "Pss %ld vs %ld", pss, total);
	CHECK(strstr(text, "\nVmFlags: rd "), "no VmFlags");
	CHECK(field(text, "Size") > 0 && field(text, "KernelPageSize") == 4, "Size");
}

/* The pagemap entry of the page at addr. */
static uint64_t pagemap_entry(int fd, const void *addr)
{
	uint64_t e = 0;
	off_t off = (uintptr_t)addr / PAGE * 8;
	if (pread(fd, &e, 8, off) != 8)
		return ~0ULL;
	return e;
}

/* CAP_SYS_ADMIN in the effective set: Linux shows frame numbers only then. */
static int can_see_pfns(void)
{
	if (slurp("/proc/self/status", text2, sizeof text2) <= 0)
		return 0;
	const char *p = strstr(text2, "\nCapEff:\t");
	return p && (strtoull(p + 9, NULL, 16) >> 21 & 1);
}

#define PM_PFN(e) ((e) & ((1ULL << 55) - 1))
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_FILE (1ULL << 61)
#define PM_SWAP (1ULL << 62)
#define PM_PRESENT (1ULL << 63)

static void pagemap_touched(void)
{
	int pfns = can_see_pfns();
	int fd = open("/proc/self/pagemap", O_RDONLY);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap");
	m[0] = 1;
	uint64_t e = pagemap_entry(fd, m);
	CHECK(e & PM_PRESENT, "written page not present: %#llx", (unsigned long long)e);
	CHECK(!(e & (PM_SWAP | PM_FILE)), "anonymous page: %#llx", (unsigned long long)e);
	CHECK(e & PM_EXCLUSIVE, "mapped once: %#llx", (unsigned long long)e);
	CHECK(pfns ? PM_PFN(e) != 0 : PM_PFN(e) == 0, "PFN %#llx with%s CAP_SYS_ADMIN",
	      (unsigned long long)PM_PFN(e), pfns ? "" : "out");
	uint64_t untouched = pagemap_entry(fd, m + PAGE);
	CHECK(!(untouched & (PM_PRESENT | PM_SWAP)) && PM_PFN(untouched) == 0,
	      "untouched page: %#llx", (unsigned long long)untouched);
	/* The program's own text: a file page. */
	uint64_t code = pagemap_entry(fd, (void *)pagemap_touched);
	CHECK((code & (PM_PRESENT | PM_FILE)) == (PM_PRESENT | PM_FILE), "text: %#llx",
	      (unsigned long long)code);
	munmap(m, 2 * PAGE);
	CHECK(pagemap_entry(fd, m) == 0, "unmapped page: %#llx",
	      (unsigned long long)pagemap_entry(fd, m));
	/* Whole entries only. */
	uint64_t buf[2];
	CHECK(pread(fd, buf, 8, 4) < 0 && errno == EINVAL, "unaligned offset");
	CHECK(pread(fd, buf, 5, 0) < 0 && errno == EINVAL, "unaligned count");
	/* Many pages in one read: the same entries as one by one. */
	static uint64_t many[512];
	char *stack_page = (char *)((uintptr_t)&e & ~(PAGE - 1));
	/* Ending at the stack page (the stack may sit just below the top of
	 * user space, where a read stops). */
	off_t first = (uintptr_t)stack_page / PAGE - 511;
	CHECK(pread(fd, many, sizeof many, first * 8) == sizeof many, "long read");
	CHECK(many[511] & PM_PRESENT, "stack page: %#llx", (unsigned long long)many[511]);
	CHECK(many[511] == pagemap_entry(fd, stack_page), "long read vs one entry");
	close(fd);
}

/* After fork the parent's written page is shared (copy-on-write) until a
 * write: not exclusive, the same frame in both. */
static void pagemap_fork(void)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	CHECK(fd >= 0, "open");
	char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile int *flag =
		mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED && flag != MAP_FAILED, "mmap");
	m[0] = 1;
	uint64_t before = pagemap_entry(fd, m);
	CHECK(before & PM_EXCLUSIVE, "before fork: %#llx", (unsigned long long)before);
	pid_t child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		/* Hold the page until the parent looked. */
		while (!*flag)
			sched_yield();
		_exit(m[0] == 1 ? 0 : 1);
	}
	uint64_t shared = pagemap_entry(fd, m);
	*flag = 1;
	int status;
	waitpid(child, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	CHECK(shared & PM_PRESENT, "shared: %#llx", (unsigned long long)shared);
	CHECK(!(shared & PM_EXCLUSIVE), "mapped twice but exclusive: %#llx",
	      (unsigned long long)shared);
	CHECK(PM_PFN(shared) == PM_PFN(before), "frame moved");
	m[0] = 2;
	uint64_t after = pagemap_entry(fd, m);
	CHECK(after & PM_EXCLUSIVE, "after the child left and a write: %#llx",
	      (unsigned long long)after);
	munmap(m, PAGE);
	munmap((void *)flag, PAGE);
	close(fd);
}

static void self_files(void)
{
	char link[256];
	ssize_t n = readlink("/proc/self", link, sizeof link - 1);
	CHECK(n > 0, "readlink /proc/self: %s", strerror(errno));
	link[n] = 0;
	CHECK(atoi(link) == getpid(), "/proc/self -> %s", link);
	n = readlink("/proc/self/exe", link, sizeof link - 1);
	CHECK(n > 0, "readlink exe: %s", strerror(errno));
	link[n] = 0;
	CHECK(link[0] == '/' && strstr(link, "/proctests"), "exe -> %s", link);
	long len = slurp("/proc/self/cmdline", text, sizeof text);
	long want = 0;
	for (int i = 0; i < g_argc; i++) {
		CHECK(strcmp(text + want, g_argv[i]) == 0, "argv[%d] %s", i, text + want);
		want += strlen(g_argv[i]) + 1;
	}
	CHECK(len == want, "cmdline %ld bytes, argv %ld", len, want);
	CHECK(slurp("/proc/self/comm", text, sizeof text) > 0 && strcmp(text, "proctests\n") == 0,
	      "comm %s", text);
	CHECK(slurp("/proc/self/stat", text, sizeof text) > 0, "stat");
	int pid, ppid;
	char state;
	CHECK(sscanf(text, "%d (proctests) %c %d", &pid, &state, &ppid) == 3, "%.60s", text);
	CHECK(pid == getpid() && ppid == getppid() && state == 'R', "pid %d ppid %d %c", pid,
	      ppid, state);
	int fields = 0;
	for (char *p = strrchr(text, ')') + 1; *p; p++)
		if (*p == ' ')
			fields++;
	CHECK(fields + 2 >= 52, "stat has %d fields", fields + 2);
	(void)argv0;
}

static void system_files(void)
{
	unsigned long a, b, c, d;
	CHECK(slurp("/proc/uptime", text, sizeof text) > 0 &&
		      sscanf(text, "%lu.%2lu %lu.%2lu", &a, &b, &c, &d) == 4,
	      "uptime %s", text);
	int running, total, last;
	double l1, l5, l15;
	CHECK(slurp("/proc/loadavg", text, sizeof text) > 0 &&
		      sscanf(text, "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &running, &total,
			     &last) == 6 &&
		      running >= 1 && total >= running,
	      "loadavg %s", text);
	CHECK(slurp("/proc/stat", text, sizeof text) > 0 && strncmp(text, "cpu  ", 5) == 0 &&
		      strstr(text, "\ncpu0 "),
	      "stat %.40s", text);
	CHECK(slurp("/proc/cpuinfo", text, sizeof text) > 0 &&
		      strncmp(text, "processor\t: 0\n", 14) == 0 && strstr(text, "\nflags\t\t: "),
	      "cpuinfo %.40s", text);
	CHECK(slurp("/proc/vmstat", text, sizeof text) > 0 &&
		      strncmp(text, "nr_free_pages ", 14) == 0 && strstr(text, "\npgfault "),
	      "vmstat %.40s", text);
	CHECK(slurp("/proc/buddyinfo", text, sizeof text) > 0 && strncmp(text, "Node 0, zone", 12) == 0,
	      "buddyinfo %.40s", text);
	CHECK(slurp("/proc/swaps", text, sizeof text) > 0 &&
		      strncmp(text, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n", 40) == 0,
	      "swaps %.60s", text);
}

static void sys_vm(void)
{
	CHECK(slurp("/proc/sys/vm/overcommit_memory", text, sizeof text) == 2 &&
		      strchr("012", text[0]) && text[1] == '\n',
	      "overcommit_memory %s", text);
	CHECK(slurp("/proc/sys/vm/swappiness", text, sizeof text) > 1 && atoi(text) <= 200,
	      "swappiness %s", text);
	CHECK(slurp("/proc/sys/vm/overcommit_ratio", text, sizeof text) > 1, "overcommit_ratio");
	CHECK(slurp("/proc/sys/vm/min_free_kbytes", text, sizeof text) > 1 && atol(text) > 0,
	      "min_free_kbytes %s", text);
	/* Writing garbage is refused (EINVAL), and leaves the value. */
	if (geteuid() == 0) {
		char before[32];
		slurp("/proc/sys/vm/overcommit_memory", before, sizeof before);
		int fd = open("/proc/sys/vm/overcommit_memory", O_WRONLY);
		if (fd >= 0) {
			ssize_t n = write(fd, "x\n", 2);
			CHECK(n < 0 && errno == EINVAL, "garbage written: %zd", n);
			close(fd);
		}
		slurp("/proc/sys/vm/overcommit_memory", text, sizeof text);
		CHECK(strcmp(text, before) == 0, "value changed");
	}
}

static struct testcase cases[] = {
	{"meminfo-format", meminfo_format, 0, 0}, {"self-maps", self_maps, 0, 0},
	{"statm-grows", statm_grows, 0, 0},	  {"status-agrees", status_agrees, 0, 0},
	{"smaps-sums", smaps_sums, 0, 0},	  {"pagemap-touched", pagemap_touched, 0, 0},
	{"pagemap-fork", pagemap_fork, 0, 0},	  {"self-files", self_files, 0, 0},
	{"system-files", system_files, 0, 0},	  {"sys-vm", sys_vm, 0, 0},
};

int main(int argc, char **argv)
{
	argv0 = argv[0];
	/* The buffers' pages present from the start: reading a file into
	 * them must not change the figures read next. */
	memset(text, 1, sizeof text);
	memset(text2, 1, sizeof text2);
	g_argc = argc;
	g_argv = argv;
	/* In this process: the cases read their own /proc/self, whose
	 * figures a fork's copy-on-write would change. */
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--skip CASE]... [CASE...]",
		.in_process = 1,
	};
	return run_suite(&suite, argc, argv);
}

/*
 * systests: the process and machine calls a C library makes (glibc at
 * start-up, busybox applets): resource limits (getrlimit, setrlimit,
 * prlimit64, with RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK enforced),
 * getrandom, sysinfo, the identity calls, set_robust_list/get_robust_list,
 * rseq, sched_getaffinity/sched_setaffinity, getcpu, getpriority/
 * setpriority, prctl (the name), mincore and the mlock family.
 *
 * Each case runs in a child of its own (so a limit it sets dies with it)
 * and must exit 0, or be killed by SIGSEGV where it says so. The expected
 * results are Linux's: run-host-tests.sh runs this natively too. Nothing
 * here needs privileges or raises a limit above what it was: on the host
 * the calls only lower limits, raise the nice value, and set ids to what
 * they already are.
 *
 * Usage: systests [CASE...]   (no argument: every case but mlock-pressure,
 *        which runs only when named: systests mlock-pressure [MIB])
 * Output: "systests: <case> ... ok" or "... FAILED (<why>)", then
 * "systests: N passed, M failed". Exit status 0 iff all passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUITE "systests"
#include "testcase.h"

#define PAGE 4096ul
#define MiB (1024ul * 1024ul)
#define KERNEL_ADDR 0xffff888000000000ul

#ifndef SYS_rseq
#define SYS_rseq 334
#endif
#ifndef SYS_mlock2
#define SYS_mlock2 325
#endif
#ifndef SYS_getrandom
#define SYS_getrandom 318
#endif

static int on_ferrite;

/* A raw system call that must fail with `want`. */
#define EXPECT_ERR(want, what, call)                                                   \
	do {                                                                           \
		errno = 0;                                                             \
		long r_ = (long)(call);                                                \
		CHECK(r_ == -1 && errno == (want), "%s returned %ld, errno %d (%s), expected %s", \
		      what, r_, errno, strerror(errno), #want);                        \
	} while (0)

#define EXPECT_OK(what, call)                                                          \
	do {                                                                           \
		errno = 0;                                                             \
		long r_ = (long)(call);                                                \
		CHECK(r_ == 0, "%s returned %ld, errno %d (%s)", what, r_, errno,     \
		      strerror(errno));                                                \
	} while (0)

static void *map(size_t len, int prot, int flags)
{
	return mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

static void *unmapped_page(void)
{
	void *p = map(PAGE, PROT_READ, MAP_PRIVATE);
	CHECK(p != MAP_FAILED && munmap(p, PAGE) == 0, "map/unmap a page failed");
	return p;
}

struct rlim64 {
	uint64_t cur, max;
};

static struct rlim64 get_limit(int resource)
{
	struct rlim64 r;
	CHECK(syscall(SYS_prlimit64, 0, resource, NULL, &r) == 0, "prlimit64(%d) failed: %s",
	      resource, strerror(errno));
	return r;
}

/* Lowers (never raises) the soft limit of `resource` to `bytes`. */
static void lower_limit(int resource, uint64_t bytes)
{
	struct rlim64 r = get_limit(resource);
	CHECK(bytes <= r.cur, "limit %d is already below %lu", resource, (unsigned long)bytes);
	r.cur = bytes;
	EXPECT_OK("prlimit64(set)", syscall(SYS_prlimit64, 0, resource, &r, NULL));
}

/* --- resource limits ------------------------------------------------------ */

static void t_rlimit_basics(void)
{
	struct rlimit rl;
	EXPECT_OK("getrlimit(RLIMIT_STACK)", syscall(SYS_getrlimit, RLIMIT_STACK, &rl));
	/* run-host-tests.sh sets 8 MiB, Ferrite's default. */
	CHECK(rl.rlim_cur == 8 * MiB, "RLIMIT_STACK soft is %lu", (unsigned long)rl.rlim_cur);
	CHECK(rl.rlim_max >= rl.rlim_cur, "stack hard below soft");
	EXPECT_OK("getrlimit(RLIMIT_NOFILE)", syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl));
	CHECK(rl.rlim_cur >= 64 && rl.rlim_cur <= rl.rlim_max, "RLIMIT_NOFILE %lu/%lu",
	      (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
	EXPECT_OK("getrlimit(RLIMIT_AS)", syscall(SYS_getrlimit, RLIMIT_AS, &rl));
	CHECK(rl.rlim_cur == RLIM_INFINITY, "RLIMIT_AS is %lu", (unsigned long)rl.rlim_cur);
	/* prlimit64 for pid 0 and for our own pid agrees with getrlimit. */
	struct rlim64 a, b;
	EXPECT_OK("prlimit64(0)", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &a));
	EXPECT_OK("prlimit64(self)", syscall(SYS_prlimit64, getpid(), RLIMIT_NOFILE, NULL, &b));
	EXPECT_OK("getrlimit(RLIMIT_NOFILE)", syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl));
	CHECK(a.cur == b.cur && a.max == b.max && a.cur == rl.rlim_cur, "prlimit64 disagrees");
	/* Errors. */
	EXPECT_ERR(EINVAL, "getrlimit(99)", syscall(SYS_getrlimit, 99, &rl));
	EXPECT_ERR(EINVAL, "prlimit64(resource 16)", syscall(SYS_prlimit64, 0, 16, NULL, &a));
	EXPECT_ERR(EFAULT, "getrlimit(NULL)", syscall(SYS_getrlimit, RLIMIT_STACK, NULL));
	EXPECT_ERR(EFAULT, "getrlimit(kernel)",
		   syscall(SYS_getrlimit, RLIMIT_STACK, (void *)KERNEL_ADDR));
	EXPECT_ERR(EFAULT, "setrlimit(unmapped)",
		   syscall(SYS_setrlimit, RLIMIT_CORE, unmapped_page()));
	EXPECT_ERR(ESRCH, "prlimit64(no such pid)",
		   syscall(SYS_prlimit64, 0x3ffffff0, RLIMIT_NOFILE, NULL, &a));
	struct rlim64 bad = {2, 1};
	EXPECT_ERR(EINVAL, "prlimit64(soft > hard)",
		   syscall(SYS_prlimit64, 0, RLIMIT_CORE, &bad, NULL));
	/* Lowering works and reads back; old values come back in `old`. */
	struct rlim64 core0 = {0, 0}, old;
	EXPECT_OK("prlimit64(RLIMIT_CORE 0/0)",
		  syscall(SYS_prlimit64, 0, RLIMIT_CORE, &core0, &old));
	CHECK(old.cur <= old.max, "old core limit %lu/%lu", (unsigned long)old.cur,
	      (unsigned long)old.max);
	a = get_limit(RLIMIT_CORE);
	CHECK(a.cur == 0 && a.max == 0, "RLIMIT_CORE reads %lu/%lu", (unsigned long)a.cur,
	      (unsigned long)a.max);
	lower_limit(RLIMIT_NOFILE, 32);
	EXPECT_OK("getrlimit(RLIMIT_NOFILE)", syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl));
	CHECK(rl.rlim_cur == 32, "RLIMIT_NOFILE now %lu", (unsigned long)rl.rlim_cur);
}

/* A fork keeps the limits; an exec too (checked by the kernel test). */
static void t_rlimit_fork(void)
{
	lower_limit(RLIMIT_AS, 1024 * MiB);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork failed");
	if (pid == 0)
		_exit(get_limit(RLIMIT_AS).cur == 1024 * MiB ? 0 : 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the child does not have the parent's RLIMIT_AS");
}

static void t_rlimit_as(void)
{
	lower_limit(RLIMIT_AS, 128 * MiB);
	/* More than the limit: ENOMEM, whatever the protection. */
	EXPECT_ERR(ENOMEM, "mmap(256 MiB) under RLIMIT_AS 128 MiB",
		   (long)map(256 * MiB, PROT_NONE, MAP_PRIVATE | MAP_NORESERVE));
	EXPECT_ERR(ENOMEM, "mmap(200 MiB RW)",
		   (long)map(200 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE));
	/* Less works, and growing it past the limit with mremap does not. */
	char *p = map(16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	CHECK(p != MAP_FAILED, "mmap(16 MiB) failed: %s", strerror(errno));
	p[0] = 1;
	EXPECT_ERR(ENOMEM, "mremap(16 -> 200 MiB)",
		   (long)mremap(p, 16 * MiB, 200 * MiB, MREMAP_MAYMOVE));
	char *q = mremap(p, 16 * MiB, 32 * MiB, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED && q[0] == 1, "mremap(16 -> 32 MiB) failed: %s", strerror(errno));
	/* brk too. */
	uintptr_t cur = syscall(SYS_brk, 0);
	CHECK(syscall(SYS_brk, cur + 200 * MiB) == (long)cur, "brk grew 200 MiB past RLIMIT_AS");
	CHECK(syscall(SYS_brk, cur + PAGE) == (long)(cur + PAGE), "brk(+1 page) failed");
	/* Unmapping gives the room back. */
	CHECK(munmap(q, 32 * MiB) == 0, "munmap failed");
	void *r = map(100 * MiB, PROT_NONE, MAP_PRIVATE | MAP_NORESERVE);
	CHECK(r != MAP_FAILED, "mmap(100 MiB) after munmap failed: %s", strerror(errno));
}

static void t_rlimit_data(void)
{
	lower_limit(RLIMIT_DATA, 32 * MiB);
	uintptr_t cur = syscall(SYS_brk, 0);
	CHECK(syscall(SYS_brk, cur + 64 * MiB) == (long)cur, "brk grew 64 MiB past RLIMIT_DATA");
	CHECK(syscall(SYS_brk, cur + MiB) == (long)(cur + MiB), "brk(+1 MiB) failed");
	EXPECT_ERR(ENOMEM, "mmap(64 MiB private RW) under RLIMIT_DATA 32 MiB",
		   (long)map(64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE));
	/* Not data: read-only private, and shared memory. */
	void *ro = map(64 * MiB, PROT_READ, MAP_PRIVATE);
	CHECK(ro != MAP_FAILED, "mmap(64 MiB read-only) failed: %s", strerror(errno));
	void *sh = map(64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE);
	CHECK(sh != MAP_FAILED, "mmap(64 MiB shared) failed: %s", strerror(errno));
	void *small = map(4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	CHECK(small != MAP_FAILED, "mmap(4 MiB private RW) failed: %s", strerror(errno));
}

static volatile int sink;

/* Uses about `kib` KiB of stack, a page at a time. */
static int use_stack(int kib)
{
	volatile char buf[4000];
	buf[0] = (char)kib;
	if (kib <= 4)
		return buf[0];
	return use_stack(kib - 4) + buf[0];
}

/* The stack may grow to RLIMIT_STACK and no further (SIGSEGV). */
static void t_rlimit_stack(void)
{
	sink = use_stack(1024); /* 1 MiB: fine under 8 MiB */
	lower_limit(RLIMIT_STACK, 256 * 1024);
	sink = use_stack(2048); /* 2 MiB: past 256 KiB */
	fail("2 MiB of stack under RLIMIT_STACK 256 KiB did not fault");
}

/* --- getrandom, sysinfo --------------------------------------------------------- */

static void t_getrandom(void)
{
	unsigned char a[64], b[64], zero[64] = {0};
	CHECK(syscall(SYS_getrandom, a, sizeof a, 0) == 64, "getrandom(64) failed: %s",
	      strerror(errno));
	CHECK(syscall(SYS_getrandom, b, sizeof b, 1 /* GRND_NONBLOCK */) == 64,
	      "getrandom(NONBLOCK) failed");
	CHECK(memcmp(a, b, 64) != 0 && memcmp(a, zero, 64) != 0, "getrandom repeats itself");
	CHECK(syscall(SYS_getrandom, b, sizeof b, 2 /* GRND_RANDOM */) == 64,
	      "getrandom(RANDOM) failed");
	CHECK(syscall(SYS_getrandom, b, 0, 0) == 0, "getrandom(len 0) is not 0");
	/* A million bits: every byte value turns up. */
	static unsigned char big[128 * 1024];
	CHECK(syscall(SYS_getrandom, big, sizeof big, 0) == (long)sizeof big, "getrandom(128K)");
	int seen[256] = {0}, distinct = 0;
	for (size_t i = 0; i < sizeof big; i++)
		if (!seen[big[i]]++)
			distinct++;
	CHECK(distinct == 256, "only %d byte values in 128 KiB", distinct);
	EXPECT_ERR(EINVAL, "getrandom(flags 0x100)", syscall(SYS_getrandom, a, 8, 0x100));
	EXPECT_ERR(EINVAL, "getrandom(RANDOM|INSECURE)", syscall(SYS_getrandom, a, 8, 2 | 4));
	EXPECT_ERR(EFAULT, "getrandom(NULL)", syscall(SYS_getrandom, NULL, 16, 0));
	EXPECT_ERR(EFAULT, "getrandom(kernel)",
		   syscall(SYS_getrandom, (void *)KERNEL_ADDR, 16, 0));
	/* A buffer running into an unmapped page: the bytes before it. */
	char *p = map(2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	CHECK(p != MAP_FAILED && munmap(p + PAGE, PAGE) == 0, "map failed");
	long n = syscall(SYS_getrandom, p + PAGE - 10, 100, 0);
	CHECK(n == 10, "getrandom across the end of a mapping returned %ld (errno %d)", n, errno);
}

static void t_sysinfo(void)
{
	struct sysinfo si;
	memset(&si, 0xff, sizeof si);
	EXPECT_OK("sysinfo", syscall(SYS_sysinfo, &si));
	uint64_t unit = si.mem_unit;
	CHECK(unit >= 1 && si.totalram > 0, "totalram %lu unit %lu", si.totalram,
	      (unsigned long)unit);
	CHECK(si.freeram <= si.totalram && si.sharedram <= si.totalram, "free %lu total %lu",
	      si.freeram, si.totalram);
	CHECK(si.freeswap <= si.totalswap, "freeswap %lu totalswap %lu", si.freeswap,
	      si.totalswap);
	CHECK(si.procs >= 1 && si.uptime < 100L * 365 * 86400, "procs %u uptime %lu", si.procs,
	      (unsigned long)si.uptime);
	/* A 16 MiB touch shows in freeram (nothing else here allocates). */
	EXPECT_ERR(EFAULT, "sysinfo(NULL)", syscall(SYS_sysinfo, NULL));
	EXPECT_ERR(EFAULT, "sysinfo(kernel)", syscall(SYS_sysinfo, (void *)KERNEL_ADDR));
}

/* --- identity ------------------------------------------------------------------- */

static void t_identity(void)
{
	long uid = syscall(SYS_getuid), gid = syscall(SYS_getgid);
	CHECK(syscall(SYS_geteuid) == uid && syscall(SYS_getegid) == gid, "effective ids differ");
	if (on_ferrite)
		CHECK(uid == 0 && gid == 0, "not root on Ferrite: uid %ld gid %ld", uid, gid);
	unsigned r, e, s;
	EXPECT_OK("getresuid", syscall(SYS_getresuid, &r, &e, &s));
	CHECK(r == uid && e == uid && s == uid, "getresuid %u %u %u", r, e, s);
	EXPECT_OK("getresgid", syscall(SYS_getresgid, &r, &e, &s));
	CHECK(r == gid && e == gid && s == gid, "getresgid %u %u %u", r, e, s);
	EXPECT_ERR(EFAULT, "getresuid(NULL)", syscall(SYS_getresuid, NULL, &e, &s));
	EXPECT_ERR(EFAULT, "getresgid(kernel)",
		   syscall(SYS_getresgid, &r, &e, (void *)KERNEL_ADDR));
	/* Setting what we already are always works. */
	EXPECT_OK("setuid(self)", syscall(SYS_setuid, uid));
	EXPECT_OK("setgid(self)", syscall(SYS_setgid, gid));
	EXPECT_OK("setresuid(-1,-1,-1)", syscall(SYS_setresuid, -1, -1, -1));
	EXPECT_OK("setresuid(self)", syscall(SYS_setresuid, uid, uid, uid));
	EXPECT_OK("setreuid(-1, self)", syscall(SYS_setreuid, -1, uid));
	EXPECT_OK("setresgid(self,-1,self)", syscall(SYS_setresgid, gid, -1, gid));
	long n = syscall(SYS_getgroups, 0, NULL);
	CHECK(n >= 0, "getgroups(0) failed: %s", strerror(errno));
	EXPECT_ERR(EINVAL, "getgroups(-1)", syscall(SYS_getgroups, -1, NULL));
	if (on_ferrite) {
		/* One user: no other id exists (as in a user namespace mapping
		 * only root). */
		EXPECT_ERR(EINVAL, "setuid(1000)", syscall(SYS_setuid, 1000));
		EXPECT_ERR(EINVAL, "setresgid(0, 5, 0)", syscall(SYS_setresgid, 0, 5, 0));
		unsigned zero = 0, five = 5;
		EXPECT_OK("setgroups(1, {0})", syscall(SYS_setgroups, 1, &zero));
		EXPECT_ERR(EINVAL, "setgroups(1, {5})", syscall(SYS_setgroups, 1, &five));
		EXPECT_ERR(EFAULT, "setgroups(1, NULL)", syscall(SYS_setgroups, 1, NULL));
	}
}

/* --- robust futex list, rseq -------------------------------------------------- */

static void t_robust_list(void)
{
	static struct {
		void *next;
		long offset;
		void *pending;
	} head = {&head, 0, NULL};
	EXPECT_OK("set_robust_list", syscall(SYS_set_robust_list, &head, sizeof head));
	void *got;
	size_t len;
	EXPECT_OK("get_robust_list", syscall(SYS_get_robust_list, 0, &got, &len));
	CHECK(got == &head && len == 24, "get_robust_list: %p %zu", got, len);
	EXPECT_ERR(EINVAL, "set_robust_list(len 23)", syscall(SYS_set_robust_list, &head, 23));
	EXPECT_ERR(ESRCH, "get_robust_list(no such pid)",
		   syscall(SYS_get_robust_list, 0x3ffffff0, &got, &len));
	EXPECT_ERR(EFAULT, "get_robust_list(NULL)", syscall(SYS_get_robust_list, 0, NULL, &len));
	/* A fork's child starts without one. */
	pid_t pid = fork();
	CHECK(pid >= 0, "fork failed");
	if (pid == 0) {
		syscall(SYS_get_robust_list, 0, &got, &len);
		_exit(got == NULL ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the child inherited the robust list");
}

struct rseq_area {
	uint32_t cpu_id_start;
	int32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t pad[3];
} __attribute__((aligned(32)));

#define RSEQ_SIG 0x53053053

static void t_rseq(void)
{
	static struct rseq_area area, other;
	area.cpu_id = -1;
	long r = syscall(SYS_rseq, &area, sizeof area, 0, RSEQ_SIG);
	CHECK(r == 0, "rseq(register) returned %ld, errno %d (%s)", r, errno, strerror(errno));
	cpu_set_t set;
	CHECK(sched_getaffinity(0, sizeof set, &set) == 0, "sched_getaffinity failed");
	CHECK(area.cpu_id >= 0 && CPU_ISSET(area.cpu_id, &set), "rseq cpu_id %d", area.cpu_id);
	EXPECT_ERR(EBUSY, "rseq(again)", syscall(SYS_rseq, &area, sizeof area, 0, RSEQ_SIG));
	EXPECT_ERR(EINVAL, "rseq(another area)", syscall(SYS_rseq, &other, sizeof other, 0, RSEQ_SIG));
	EXPECT_ERR(EPERM, "rseq(another signature)", syscall(SYS_rseq, &area, sizeof area, 0, 1));
	EXPECT_ERR(EPERM, "rseq(unregister, wrong signature)",
		   syscall(SYS_rseq, &area, sizeof area, 1, 1));
	EXPECT_ERR(EINVAL, "rseq(flags 2)", syscall(SYS_rseq, &area, sizeof area, 2, RSEQ_SIG));
	EXPECT_OK("rseq(unregister)", syscall(SYS_rseq, &area, sizeof area, 1, RSEQ_SIG));
	CHECK(area.cpu_id == -1, "cpu_id after unregister: %d", area.cpu_id);
	EXPECT_ERR(EINVAL, "rseq(unregister twice)",
		   syscall(SYS_rseq, &area, sizeof area, 1, RSEQ_SIG));
	EXPECT_ERR(EINVAL, "rseq(unaligned)",
		   syscall(SYS_rseq, (char *)&area + 8, sizeof area, 0, RSEQ_SIG));
	EXPECT_ERR(EINVAL, "rseq(len 16)", syscall(SYS_rseq, &area, 16, 0, RSEQ_SIG));
	EXPECT_ERR(EFAULT, "rseq(kernel)",
		   syscall(SYS_rseq, (void *)KERNEL_ADDR, sizeof area, 0, RSEQ_SIG));
}

/* --- prctl ------------------------------------------------------------------------ */

static void t_prctl(void)
{
	char name[32];
	EXPECT_OK("prctl(PR_SET_NAME)", prctl(PR_SET_NAME, "systests-x", 0, 0, 0));
	memset(name, 0x55, sizeof name);
	EXPECT_OK("prctl(PR_GET_NAME)", prctl(PR_GET_NAME, name, 0, 0, 0));
	CHECK(strcmp(name, "systests-x") == 0, "name is \"%.20s\"", name);
	/* Cut to 15 bytes. */
	EXPECT_OK("prctl(PR_SET_NAME long)", prctl(PR_SET_NAME, "abcdefghijklmnopqrstuvwxyz", 0, 0, 0));
	EXPECT_OK("prctl(PR_GET_NAME)", prctl(PR_GET_NAME, name, 0, 0, 0));
	CHECK(strcmp(name, "abcdefghijklmno") == 0, "long name is \"%.20s\"", name);
	CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1, "not dumpable");
	EXPECT_ERR(EFAULT, "prctl(PR_SET_NAME, NULL)", prctl(PR_SET_NAME, NULL, 0, 0, 0));
	EXPECT_ERR(EFAULT, "prctl(PR_GET_NAME, kernel)",
		   prctl(PR_GET_NAME, (void *)KERNEL_ADDR, 0, 0, 0));
	EXPECT_ERR(EINVAL, "prctl(9999)", prctl(9999, 0, 0, 0, 0));
}

/* --- CPUs and priority ------------------------------------------------------------ */

static void t_affinity(void)
{
	cpu_set_t set;
	/* The call writes the kernel's mask size; the rest stays as it was. */
	CPU_ZERO(&set);
	long n = syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
	CHECK(n >= 8 && n % 8 == 0 && n <= (long)sizeof set, "sched_getaffinity returned %ld", n);
	CHECK(CPU_COUNT(&set) >= 1, "no CPU in the mask");
	if (on_ferrite)
		CHECK(CPU_ISSET(0, &set), "Ferrite's mask lacks the boot CPU");
	unsigned cpu = 9999, node = 9999;
	EXPECT_OK("getcpu", syscall(SYS_getcpu, &cpu, &node, NULL));
	CHECK(CPU_ISSET(cpu, &set) && node < 1024, "getcpu: cpu %u node %u", cpu, node);
	EXPECT_OK("getcpu(NULL, NULL)", syscall(SYS_getcpu, NULL, NULL, NULL));
	EXPECT_ERR(EFAULT, "getcpu(kernel)", syscall(SYS_getcpu, (void *)KERNEL_ADDR, NULL, NULL));
	EXPECT_ERR(EINVAL, "sched_getaffinity(len 4)", syscall(SYS_sched_getaffinity, 0, 4, &set));
	EXPECT_ERR(EINVAL, "sched_getaffinity(len 12)",
		   syscall(SYS_sched_getaffinity, 0, 12, &set));
	EXPECT_ERR(EFAULT, "sched_getaffinity(NULL)",
		   syscall(SYS_sched_getaffinity, 0, sizeof set, NULL));
	EXPECT_ERR(ESRCH, "sched_getaffinity(no such pid)",
		   syscall(SYS_sched_getaffinity, 0x3ffffff0, sizeof set, &set));
	/* Setting the mask we have works; an empty one is EINVAL. */
	EXPECT_OK("sched_setaffinity(same)", syscall(SYS_sched_setaffinity, 0, sizeof set, &set));
	cpu_set_t none;
	CPU_ZERO(&none);
	EXPECT_ERR(EINVAL, "sched_setaffinity(empty)",
		   syscall(SYS_sched_setaffinity, 0, sizeof none, &none));
	EXPECT_ERR(EFAULT, "sched_setaffinity(NULL)",
		   syscall(SYS_sched_setaffinity, 0, sizeof set, NULL));
}

static void t_priority(void)
{
	errno = 0;
	long raw = syscall(SYS_getpriority, PRIO_PROCESS, 0);
	CHECK(raw >= 1 && raw <= 40, "getpriority (raw) returned %ld", raw);
	int nice0 = 20 - (int)raw;
	CHECK(getpriority(PRIO_PROCESS, 0) == nice0, "libc getpriority disagrees");
	CHECK(syscall(SYS_getpriority, PRIO_PROCESS, getpid()) == raw, "getpriority(self pid)");
	if (nice0 < 19) {
		/* Raising the nice value needs no privilege. */
		EXPECT_OK("setpriority(+1)", syscall(SYS_setpriority, PRIO_PROCESS, 0, nice0 + 1));
		CHECK(syscall(SYS_getpriority, PRIO_PROCESS, 0) == raw - 1, "nice did not change");
	}
	/* Beyond 19 is 19. */
	EXPECT_OK("setpriority(100)", syscall(SYS_setpriority, PRIO_PROCESS, 0, 100));
	CHECK(syscall(SYS_getpriority, PRIO_PROCESS, 0) == 1, "nice 100 is not 19");
	EXPECT_ERR(EINVAL, "getpriority(which 7)", syscall(SYS_getpriority, 7, 0));
	EXPECT_ERR(ESRCH, "getpriority(no such pid)",
		   syscall(SYS_getpriority, PRIO_PROCESS, 0x3ffffff0));
	EXPECT_ERR(ESRCH, "setpriority(no such pid)",
		   syscall(SYS_setpriority, PRIO_PROCESS, 0x3ffffff0, 5));
}

/* --- mincore, mlock ---------------------------------------------------------------- */

static void t_mincore(void)
{
	char *p = map(16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	CHECK(p != MAP_FAILED, "mmap failed");
	p[0] = p[3 * PAGE] = p[7 * PAGE + 5] = 1;
	unsigned char vec[16];
	memset(vec, 0xee, sizeof vec);
	EXPECT_OK("mincore", syscall(SYS_mincore, p, 16 * PAGE, vec));
	for (int i = 0; i < 16; i++) {
		int want = i == 0 || i == 3 || i == 7;
		CHECK((vec[i] & 1) == want, "page %d: mincore says %d", i, vec[i]);
	}
	/* The length is rounded up to whole pages. */
	memset(vec, 0xee, sizeof vec);
	EXPECT_OK("mincore(1 byte)", syscall(SYS_mincore, p + 3 * PAGE, 1, vec));
	CHECK(vec[0] == 1 && vec[1] == 0xee, "mincore(1 byte) wrote %d %d", vec[0], vec[1]);
	/* MADV_DONTNEED drops them. */
	CHECK(madvise(p, 16 * PAGE, MADV_DONTNEED) == 0, "madvise failed");
	EXPECT_OK("mincore", syscall(SYS_mincore, p, 16 * PAGE, vec));
	for (int i = 0; i < 16; i++)
		CHECK(vec[i] == 0, "page %d resident after MADV_DONTNEED", i);
	EXPECT_ERR(EINVAL, "mincore(unaligned)", syscall(SYS_mincore, p + 1, PAGE, vec));
	EXPECT_ERR(EFAULT, "mincore(vec NULL)", syscall(SYS_mincore, p, PAGE, NULL));
	EXPECT_ERR(ENOMEM, "mincore(unmapped)", syscall(SYS_mincore, unmapped_page(), PAGE, vec));
	CHECK(munmap(p + 5 * PAGE, PAGE) == 0, "munmap failed");
	EXPECT_ERR(ENOMEM, "mincore(with a hole)", syscall(SYS_mincore, p, 16 * PAGE, vec));
	EXPECT_ERR(ENOMEM, "mincore(kernel)", syscall(SYS_mincore, KERNEL_ADDR, PAGE, vec));
	EXPECT_OK("mincore(len 0)", syscall(SYS_mincore, p, 0, vec));
}

static void t_mlock(void)
{
	char *p = map(8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	CHECK(p != MAP_FAILED, "mmap failed");
	unsigned char vec[8];
	/* mlock faults every page in (written: each gets its own frame). */
	EXPECT_OK("mlock", syscall(SYS_mlock, p + 10, 4 * PAGE));
	EXPECT_OK("mincore", syscall(SYS_mincore, p, 8 * PAGE, vec));
	for (int i = 0; i < 8; i++)
		CHECK((vec[i] & 1) == (i <= 4), "page %d: resident %d after mlock(5 pages)", i,
		      vec[i]);
	EXPECT_OK("munlock", syscall(SYS_munlock, p, 8 * PAGE));
	/* MLOCK_ONFAULT leaves them to the first touch. */
	char *q = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	CHECK(q != MAP_FAILED, "mmap failed");
	EXPECT_OK("mlock2(ONFAULT)", syscall(SYS_mlock2, q, 4 * PAGE, 1));
	EXPECT_OK("mincore", syscall(SYS_mincore, q, 4 * PAGE, vec));
	CHECK(vec[0] == 0 && vec[3] == 0, "MLOCK_ONFAULT populated");
	EXPECT_OK("munlock", syscall(SYS_munlock, q, 4 * PAGE));
	/* PROT_NONE memory cannot be faulted in: ENOMEM (Linux's
	 * populate fails there); locked on fault, it is fine. */
	char *n = map(2 * PAGE, PROT_NONE, MAP_PRIVATE);
	EXPECT_ERR(ENOMEM, "mlock(PROT_NONE)", syscall(SYS_mlock, n, 2 * PAGE));
	EXPECT_OK("mlock2(PROT_NONE, ONFAULT)", syscall(SYS_mlock2, n, 2 * PAGE, 1));
	EXPECT_OK("munlock(PROT_NONE)", syscall(SYS_munlock, n, 2 * PAGE));
	EXPECT_OK("mlock(len 0)", syscall(SYS_mlock, p, 0));
	EXPECT_ERR(ENOMEM, "mlock(unmapped)", syscall(SYS_mlock, unmapped_page(), PAGE));
	EXPECT_ERR(ENOMEM, "munlock(unmapped)", syscall(SYS_munlock, unmapped_page(), PAGE));
	EXPECT_ERR(EINVAL, "mlock2(flags 2)", syscall(SYS_mlock2, p, PAGE, 2));
	EXPECT_ERR(EINVAL, "mlockall(0)", syscall(SYS_mlockall, 0));
	EXPECT_ERR(EINVAL, "mlockall(MCL_ONFAULT alone)", syscall(SYS_mlockall, 4));
	EXPECT_ERR(EINVAL, "mlockall(8)", syscall(SYS_mlockall, 8));
	EXPECT_OK("munlockall", syscall(SYS_munlockall));
}

/* mlockall(MCL_CURRENT) faults everything in: Ferrite only (an
 * unprivileged host process is held to RLIMIT_MEMLOCK). */
static void t_mlockall(void)
{
	if (!on_ferrite)
		return;
	char *p = map(8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	CHECK(p != MAP_FAILED, "mmap failed");
	EXPECT_OK("mlockall(MCL_CURRENT)", syscall(SYS_mlockall, 1));
	unsigned char vec[8];
	EXPECT_OK("mincore", syscall(SYS_mincore, p, 8 * PAGE, vec));
	for (int i = 0; i < 8; i++)
		CHECK(vec[i] == 1, "page %d not resident after mlockall", i);
	EXPECT_OK("munlockall", syscall(SYS_munlockall));
}

/* mlock'ed pages stay resident under memory pressure while unlocked ones
 * go to swap: Ferrite only, by name (tests/glibc.rs runs it on a 64 MiB
 * machine with swap on; argv: MiB to touch, default 96). */
static long hog_mib = 96;

static void t_mlock_pressure(void)
{
	const size_t len = 2 * MiB, pages = len / PAGE;
	/* Locked and unlocked, private and shared (shmem) memory. */
	unsigned char *locked = map(len, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	unsigned char *plain = map(len, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	unsigned char *shlocked = map(len, PROT_READ | PROT_WRITE, MAP_SHARED);
	CHECK(locked != MAP_FAILED && plain != MAP_FAILED && shlocked != MAP_FAILED, "mmap failed");
	EXPECT_OK("mlock", syscall(SYS_mlock, locked, len));
	EXPECT_OK("mlock(shared)", syscall(SYS_mlock, shlocked, len));
	for (size_t i = 0; i < pages; i++) {
		locked[i * PAGE] = (unsigned char)(i * 7 + 1);
		plain[i * PAGE] = (unsigned char)(i * 5 + 3);
		shlocked[i * PAGE] = (unsigned char)(i * 3 + 2);
	}
	/* More than the machine has: the kernel must swap. */
	size_t hog = (size_t)hog_mib * MiB;
	unsigned char *h = map(hog, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
	CHECK(h != MAP_FAILED, "mmap(hog) failed: %s", strerror(errno));
	for (size_t off = 0; off < hog; off += PAGE)
		h[off] = (unsigned char)(off >> 12);
	static unsigned char vec[2 * MiB / PAGE];
	EXPECT_OK("mincore(plain)", syscall(SYS_mincore, plain, len, vec));
	size_t plain_in = 0;
	for (size_t i = 0; i < pages; i++)
		plain_in += vec[i] & 1;
	EXPECT_OK("mincore(locked)", syscall(SYS_mincore, locked, len, vec));
	for (size_t i = 0; i < pages; i++)
		CHECK(vec[i] & 1, "locked page %zu was reclaimed (unlocked: %zu of %zu resident)", i,
		      plain_in, pages);
	EXPECT_OK("mincore(shared locked)", syscall(SYS_mincore, shlocked, len, vec));
	for (size_t i = 0; i < pages; i++)
		CHECK(vec[i] & 1, "locked shared page %zu was reclaimed", i);
	CHECK(plain_in < pages, "no pressure: every unlocked page stayed resident");
	for (size_t i = 0; i < pages; i++) {
		CHECK(locked[i * PAGE] == (unsigned char)(i * 7 + 1), "locked page %zu changed", i);
		CHECK(plain[i * PAGE] == (unsigned char)(i * 5 + 3), "unlocked page %zu changed", i);
		CHECK(shlocked[i * PAGE] == (unsigned char)(i * 3 + 2), "shared page %zu changed", i);
	}
	say("systests: mlock-pressure: %zu of %zu locked pages resident (and %zu shared), %zu of %zu "
	    "unlocked\n",
	    pages, pages, pages, plain_in, pages);
}

/* --- the runner ------------------------------------------------------------------ */

static struct testcase cases[] = {
	{"rlimit-basics", t_rlimit_basics, 0, 0},
	{"rlimit-fork", t_rlimit_fork, 0, 0},
	{"rlimit-as", t_rlimit_as, 0, 0},
	{"rlimit-data", t_rlimit_data, 0, 0},
	{"rlimit-stack", t_rlimit_stack, SIGSEGV, 0},
	{"getrandom", t_getrandom, 0, 0},
	{"sysinfo", t_sysinfo, 0, 0},
	{"identity", t_identity, 0, 0},
	{"robust-list", t_robust_list, 0, 0},
	{"rseq", t_rseq, 0, 0},
	{"prctl", t_prctl, 0, 0},
	{"affinity", t_affinity, 0, 0},
	{"priority", t_priority, 0, 0},
	{"mincore", t_mincore, 0, 0},
	{"mlock", t_mlock, 0, 0},
	{"mlockall", t_mlockall, 0, 0},
	/* Needs memory pressure and swap: tests/glibc.rs names it. */
	{"mlock-pressure", t_mlock_pressure, 0, BY_NAME},
};
int main(int argc, char **argv)
{
	struct utsname u;
	on_ferrite = uname(&u) == 0 && strcmp(u.sysname, "Ferrite") == 0;
	if (argc > 2 && strcmp(argv[1], "mlock-pressure") == 0) {
		hog_mib = atol(argv[2]);
		argc = 2;
	}
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--skip CASE]... [CASE...] | mlock-pressure [MIB]",
	};
	return run_suite(&suite, argc, argv);
}

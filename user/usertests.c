/*
 * usertests: a memory-management test suite for Ferrite, in the spirit of
 * xv6's usertests.
 *
 * Every case runs in a child process of its own, so a case that crashes
 * (on purpose or not) cannot take the suite down.  The parent learns the
 * result from wait4():
 *   - a case that should succeed must exit with status 0;
 *   - a case that should crash must be killed by SIGSEGV (or, for an
 *     access to a file mapping past the end of its file, by SIGBUS).
 * A case can leave a one-line explanation in a page of MAP_SHARED memory
 * that the parent prints after the case's name.
 *
 * Usage: usertests [-l] [--max-procs N] [--oom-mib N] [--skip CASE]... [CASE...]
 *   -l             list the cases and exit
 *   --max-procs N  cap for the fork-until-out-of-memory case (default 200)
 *   --oom-mib N    MiB each process of that case allocates (default 4)
 *   --skip CASE    do not run CASE (may be repeated)
 *   CASE...        run only these cases (some run only when named: -l says)
 *
 * Output: "usertests: <case> ... ok" or "... FAILED (<why>)" per case,
 * then "usertests: N passed, M failed".  Exit status 0 iff all passed.
 *
 * System calls used: read, write, readv, writev, open, close, lseek, mmap,
 * munmap, mremap, mprotect, madvise, brk, fork, execve (always refused),
 * wait4, exit_group, getpid, clock_gettime, nanosleep, sched_yield, uname,
 * access (musl: faccessat; Linux only, ENOSYS on Ferrite is fine) and
 * unknown numbers (ENOSYS); and from musl itself arch_prctl and
 * set_tid_address (start-up), rt_sigprocmask and gettid (inside fork()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE "usertests"
#include "testcase.h"

#define PAGE 4096ul
#define KERNEL_ADDR 0xffff888000000000ul /* Ferrite's (and Linux's) direct map */

static long max_procs = 200;
static long oom_mib = 4;
static uintptr_t initial_brk;

static void *map_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "mmap(%zu) failed: %s", len, strerror(errno));
	return p;
}

/* An address with nothing mapped there: map a page and unmap it again. */
static void *unmapped_page(void)
{
	void *p = map_anon(PAGE, PROT_READ | PROT_WRITE);
	CHECK(munmap(p, PAGE) == 0, "munmap failed: %s", strerror(errno));
	return p;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Copy to/from user memory with bad pointers: the kernel must return
 * EFAULT instead of crashing (or of reading its own memory). */

/* A raw system call that must fail with EFAULT. */
#define EXPECT_EFAULT(name, call)                                            \
	do {                                                                 \
		errno = 0;                                                   \
		long r_ = (call);                                            \
		CHECK(r_ == -1 && errno == EFAULT,                           \
		      "%s returned %ld, errno %d (%s), expected EFAULT", name, \
		      r_, errno, strerror(errno));                           \
	} while (0)

static void t_efault_write_kernel(void)
{
	EXPECT_EFAULT("write(1, kernel address, 16)",
		      syscall(SYS_write, 1, opaque(KERNEL_ADDR), 16));
}

static void t_efault_write_unmapped(void)
{
	EXPECT_EFAULT("write(1, unmapped address, 16)",
		      syscall(SYS_write, 1, unmapped_page(), 16));
}

static void t_efault_write_half(void)
{
	/* Two pages, then unmap the second: the buffer runs off the end of
	 * the mapping.  The bytes that are mapped form a harmless line. */
	static const char msg[] =
		"usertests: (efault-write-half: these bytes come from the mapped page)\n";
	char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(munmap(p + PAGE, PAGE) == 0, "munmap failed: %s", strerror(errno));
	size_t len = sizeof msg - 1;
	char *buf = p + PAGE - len;
	memcpy(buf, msg, len);
	errno = 0;
	long r = syscall(SYS_write, 1, buf, len + 100);
	if (r == -1 && errno == EFAULT)
		set_note("EFAULT");
	else if (r > 0 && (size_t)r <= len)
		set_note("short write of %ld bytes", r);
	else
		fail("write returned %ld, errno %d (%s)", r, errno, strerror(errno));
}

static void t_efault_writev(void)
{
	/* The iovec array itself is bad, then an iovec entry points badly. */
	EXPECT_EFAULT("writev(1, kernel iovec, 1)",
		      syscall(SYS_writev, 1, opaque(KERNEL_ADDR), 1));
	struct iovec iov = {opaque(KERNEL_ADDR), 16};
	EXPECT_EFAULT("writev(1, {kernel buffer}, 1)",
		      syscall(SYS_writev, 1, &iov, 1));
}

static void t_efault_read_kernel(void)
{
	EXPECT_EFAULT("read(0, kernel address, 16)",
		      syscall(SYS_read, 0, opaque(KERNEL_ADDR), 16));
}

static void t_efault_uname(void)
{
	EXPECT_EFAULT("uname(kernel address)",
		      syscall(SYS_uname, opaque(KERNEL_ADDR)));
	EXPECT_EFAULT("uname(unmapped address)", syscall(SYS_uname, unmapped_page()));
	struct utsname u;
	CHECK(syscall(SYS_uname, &u) == 0, "uname(valid) failed: %s", strerror(errno));
}

/* CLOCK_MONOTONIC has sub-millisecond resolution and never goes back:
 * the first change seen while polling it comes within a millisecond (a
 * clock counting 10 ms timer ticks always moves by exactly 10 ms), in at
 * least one of ten tries (a preemption may stretch one). */
static long long ns_of(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static void t_clock_monotonic_fine(void)
{
	struct timespec a, b;
	long long best = -1;
	for (int try = 0; try < 10; try++) {
		CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0, "clock_gettime: %s", strerror(errno));
		do {
			CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0, "clock_gettime: %s",
			      strerror(errno));
			CHECK(ns_of(&b) >= ns_of(&a), "CLOCK_MONOTONIC went back by %lld ns",
			      ns_of(&a) - ns_of(&b));
		} while (ns_of(&b) == ns_of(&a));
		long long d = ns_of(&b) - ns_of(&a);
		if (best < 0 || d < best)
			best = d;
		CHECK(b.tv_nsec >= 0 && b.tv_nsec < 1000000000L, "tv_nsec %ld", b.tv_nsec);
	}
	CHECK(best > 0 && best < 1000000, "CLOCK_MONOTONIC moves in steps of %lld ns", best);
}

static void t_efault_clock(void)
{
	/* The raw system call: libc would use the vDSO if there is one. */
	EXPECT_EFAULT("clock_gettime(CLOCK_MONOTONIC, kernel address)",
		      syscall(SYS_clock_gettime, CLOCK_MONOTONIC, opaque(KERNEL_ADDR)));
	EXPECT_EFAULT("clock_gettime(CLOCK_MONOTONIC, unmapped address)",
		      syscall(SYS_clock_gettime, CLOCK_MONOTONIC, unmapped_page()));
	/* A read-only buffer cannot be written either. */
	void *ro = map_anon(PAGE, PROT_READ);
	EXPECT_EFAULT("clock_gettime(CLOCK_MONOTONIC, read-only page)",
		      syscall(SYS_clock_gettime, CLOCK_MONOTONIC, ro));
}

/* ------------------------------------------------------------------ */
/* brk: musl's sbrk() refuses to move the break, so use the raw call.
 * Linux returns the new break on success and the old one on failure. */

static uintptr_t raw_brk(uintptr_t addr)
{
	return (uintptr_t)syscall(SYS_brk, addr);
}

/* Ask for a new break; return 1 if the kernel moved it there. */
static int set_brk(uintptr_t want)
{
	uintptr_t got = raw_brk(want);
	return got == want;
}

static void expect_brk_refused(uintptr_t cur, uintptr_t want, const char *what)
{
	errno = 0;
	long r = syscall(SYS_brk, want);
	/* Linux: returns the unchanged break.  Also accept -1/ENOMEM. */
	CHECK((uintptr_t)r == cur || (r == -1 && errno == ENOMEM),
	      "brk(%s) returned %#lx (break was %#lx)", what, (unsigned long)r,
	      (unsigned long)cur);
	CHECK(raw_brk(0) == cur, "brk(%s) moved the break to %#lx", what,
	      (unsigned long)raw_brk(0));
}

static void t_brk_grow_shrink(void)
{
	uintptr_t cur = raw_brk(0);
	CHECK(cur != 0 && cur >= initial_brk, "brk(0) returned %#lx", (unsigned long)cur);
	uintptr_t base = (cur + PAGE - 1) & ~(PAGE - 1);
	const int n = 16;

	CHECK(set_brk(base + n * PAGE), "growing the break by %d pages failed", n);
	unsigned char *p = (unsigned char *)base;
	CHECK(all_bytes(p, n * PAGE, 0), "fresh brk memory is not zero");
	for (int i = 0; i < n; i++)
		memset(p + i * PAGE, 0x40 + i, PAGE);
	for (int i = 0; i < n; i++)
		CHECK(all_bytes(p + i * PAGE, PAGE, 0x40 + i), "brk page %d lost its data", i);

	CHECK(set_brk(base + PAGE), "shrinking the break failed");
	CHECK(raw_brk(0) == base + PAGE, "brk(0) disagrees after shrinking");
	CHECK(all_bytes(p, PAGE, 0x40), "page kept after shrinking lost its data");

	CHECK(set_brk(base + n * PAGE), "growing the break again failed");
	CHECK(all_bytes(p, PAGE, 0x40), "first page lost its data after regrowing");
	CHECK(all_bytes(p + PAGE, (n - 1) * PAGE, 0),
	      "regrown brk memory is not zero (old data came back)");
	memset(p + PAGE, 0x77, (n - 1) * PAGE);

	CHECK(set_brk(cur), "shrinking back to the start failed");
}

static void t_brk_shrink_unmaps(void)
{
	uintptr_t cur = raw_brk(0);
	uintptr_t base = (cur + PAGE - 1) & ~(PAGE - 1);
	CHECK(set_brk(base + 2 * PAGE), "growing the break failed");
	volatile char *gone = (volatile char *)(base + PAGE);
	*gone = 1;
	CHECK(set_brk(base + PAGE), "shrinking the break failed");
	*gone = 2; /* must fault */
	set_note("wrote to memory above the break after shrinking it");
}

static int host_overcommit_mode(void);

static void t_brk_absurd(void)
{
	uintptr_t cur = raw_brk(0);
	/* More than any machine's RAM and swap: refused unless the policy
	 * is "always" (vm.overcommit_memory=1, which grants it, as Linux does
	 * on a host so configured). */
	if (host_overcommit_mode() != 1)
		expect_brk_refused(cur, cur + (1ul << 46), "+64 TiB");
	expect_brk_refused(cur, cur + (1ul << 47), "+128 TiB");
	expect_brk_refused(cur, KERNEL_ADDR, "kernel address");
	/* Below where the heap started. */
	expect_brk_refused(cur, initial_brk - (1ul << 20), "1 MiB below the start");
	/* The break still works afterwards. */
	uintptr_t base = (cur + PAGE - 1) & ~(PAGE - 1);
	CHECK(set_brk(base + PAGE), "brk no longer grows after the refused requests");
	*(volatile char *)base = 1;
	CHECK(set_brk(cur), "shrinking back failed");
}

/* ------------------------------------------------------------------ */
/* mmap and friends. */

static void t_mmap_rw(void)
{
	const size_t n = 64;
	unsigned char *p = map_anon(n * PAGE, PROT_READ | PROT_WRITE);
	CHECK(((uintptr_t)p & (PAGE - 1)) == 0, "mmap returned unaligned %p", (void *)p);
	CHECK(all_bytes(p, n * PAGE, 0), "fresh anonymous memory is not zero");
	for (size_t i = 0; i < n * PAGE; i++)
		p[i] = (unsigned char)(i * 7 + i / PAGE);
	for (size_t i = 0; i < n * PAGE; i++)
		CHECK(p[i] == (unsigned char)(i * 7 + i / PAGE), "byte %zu lost its value", i);
	CHECK(munmap(p, n * PAGE) == 0, "munmap failed: %s", strerror(errno));
	/* A hinted mapping: the hint may be ignored, but the result must work. */
	unsigned char *h = mmap(p, PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(h != MAP_FAILED, "hinted mmap failed: %s", strerror(errno));
	h[PAGE - 1] = 1;
}

static void t_mmap_readonly_read(void)
{
	unsigned char *p = map_anon(4 * PAGE, PROT_READ);
	CHECK(all_bytes(p, 4 * PAGE, 0), "PROT_READ memory does not read as zero");
}

static void t_mmap_readonly_write(void)
{
	volatile char *p = map_anon(PAGE, PROT_READ);
	CHECK(p[10] == 0, "PROT_READ memory does not read as zero");
	p[10] = 1; /* must fault */
	set_note("wrote to a PROT_READ mapping");
}

static void t_mprotect_keeps_data(void)
{
	unsigned char *p = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	memset(p, 0x3c, 8 * PAGE);
	CHECK(mprotect(p, 8 * PAGE, PROT_READ) == 0, "mprotect(PROT_READ): %s", strerror(errno));
	CHECK(all_bytes(p, 8 * PAGE, 0x3c), "data changed after mprotect(PROT_READ)");
	CHECK(mprotect(p + 2 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE) == 0,
	      "mprotect(middle, PROT_READ|PROT_WRITE): %s", strerror(errno));
	memset(p + 2 * PAGE, 0x3d, 2 * PAGE);
	CHECK(all_bytes(p, 2 * PAGE, 0x3c) && all_bytes(p + 2 * PAGE, 2 * PAGE, 0x3d) &&
		      all_bytes(p + 4 * PAGE, 4 * PAGE, 0x3c),
	      "data wrong after making the middle writable again");
}

static void t_mprotect_none(void)
{
	volatile char *p = map_anon(PAGE, PROT_READ | PROT_WRITE);
	p[0] = 5;
	CHECK(mprotect((void *)p, PAGE, PROT_NONE) == 0, "mprotect(PROT_NONE): %s",
	      strerror(errno));
	(void)p[0]; /* must fault */
	set_note("read from a PROT_NONE page");
}

static void t_munmap_access(void)
{
	volatile char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	p[2 * PAGE] = 1;
	/* Unmap the middle two pages only; the rest must still work. */
	CHECK(munmap((char *)p + PAGE, 2 * PAGE) == 0, "munmap: %s", strerror(errno));
	p[0] = 1;
	p[3 * PAGE] = 1;
	(void)p[2 * PAGE]; /* must fault */
	set_note("read from an unmapped page");
}

static void t_mmap_fixed_replace(void)
{
	unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	memset(p, 0xaa, 4 * PAGE);
	unsigned char *q = mmap(p + PAGE, 2 * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(q == p + PAGE, "MAP_FIXED returned %p, wanted %p", (void *)q, (void *)(p + PAGE));
	CHECK(all_bytes(p + PAGE, 2 * PAGE, 0), "MAP_FIXED pages still hold the old data");
	CHECK(all_bytes(p, PAGE, 0xaa) && all_bytes(p + 3 * PAGE, PAGE, 0xaa),
	      "pages around the MAP_FIXED mapping lost their data");
	memset(q, 0xbb, 2 * PAGE);
	CHECK(all_bytes(p, PAGE, 0xaa) && all_bytes(p + 3 * PAGE, PAGE, 0xaa),
	      "writing the new mapping changed its neighbours");
}

static void t_mmap_shared_fork(void)
{
	volatile unsigned char *sh = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
					  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED, "mmap(MAP_SHARED) failed: %s", strerror(errno));
	volatile unsigned char *priv = map_anon(PAGE, PROT_READ | PROT_WRITE);
	sh[0] = 1;
	priv[0] = 1;
	pid_t pid = xfork();
	if (pid == 0) {
		sh[0] = 2;
		sh[PAGE + 5] = 3; /* a page the parent never touched */
		priv[0] = 2;
		_exit(0);
	}
	int st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	CHECK(sh[0] == 2, "parent does not see the child's write to a shared page");
	CHECK(sh[PAGE + 5] == 3, "parent does not see the child's write to an untouched shared page");
	CHECK(priv[0] == 1, "child's write to a private page leaked into the parent");
}

static void t_mremap_grow(void)
{
	unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	for (int i = 0; i < 4; i++)
		memset(p + i * PAGE, 0x10 + i, PAGE);
	unsigned char *q = mremap(p, 4 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED, "mremap(grow) failed: %s", strerror(errno));
	for (int i = 0; i < 4; i++)
		CHECK(all_bytes(q + i * PAGE, PAGE, 0x10 + i), "page %d lost its data in mremap", i);
	CHECK(all_bytes(q + 4 * PAGE, 60 * PAGE, 0), "grown part is not zero");
	memset(q + 4 * PAGE, 0x55, 60 * PAGE);
	CHECK(all_bytes(q + 63 * PAGE, PAGE, 0x55), "grown part is not writable");
	/* Shrink it again. */
	unsigned char *r = mremap(q, 64 * PAGE, 2 * PAGE, 0);
	CHECK(r == q, "mremap(shrink) returned %p: %s", (void *)r, strerror(errno));
	CHECK(all_bytes(r, PAGE, 0x10) && all_bytes(r + PAGE, PAGE, 0x11),
	      "data lost after shrinking with mremap");
}

static void t_madvise_dontneed(void)
{
	unsigned char *p = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	memset(p, 0x99, 8 * PAGE);
	CHECK(madvise(p + 2 * PAGE, 4 * PAGE, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
	CHECK(all_bytes(p + 2 * PAGE, 4 * PAGE, 0), "MADV_DONTNEED pages do not read as zero");
	CHECK(all_bytes(p, 2 * PAGE, 0x99) && all_bytes(p + 6 * PAGE, 2 * PAGE, 0x99),
	      "pages outside the MADV_DONTNEED range changed");
	memset(p + 2 * PAGE, 0x11, 4 * PAGE); /* still usable */
	CHECK(all_bytes(p + 2 * PAGE, 4 * PAGE, 0x11), "memory unusable after MADV_DONTNEED");
}

static long raw_mmap(void *addr, size_t len, int prot, int flags)
{
	return syscall(SYS_mmap, addr, len, prot, flags, -1, 0);
}

static void t_mmap_bad(void)
{
	int rw = PROT_READ | PROT_WRITE, anon = MAP_PRIVATE | MAP_ANONYMOUS;
	errno = 0;
	long r = raw_mmap(NULL, 0, rw, anon);
	CHECK(r == -1 && errno == EINVAL, "mmap(length 0) returned %#lx, errno %d", r, errno);
	errno = 0;
	r = raw_mmap(NULL, 1ul << 47, rw, anon);
	CHECK(r == -1 && errno == ENOMEM, "mmap(128 TiB) returned %#lx, errno %d", r, errno);
	void *p = map_anon(2 * PAGE, rw);
	errno = 0;
	r = raw_mmap((char *)p + 100, PAGE, rw, anon | MAP_FIXED);
	CHECK(r == -1 && errno == EINVAL, "unaligned MAP_FIXED returned %#lx, errno %d", r, errno);
	errno = 0;
	r = raw_mmap(opaque(KERNEL_ADDR), PAGE, rw, anon | MAP_FIXED);
	CHECK(r == -1, "MAP_FIXED at a kernel address returned %#lx", r);
	errno = 0;
	r = syscall(SYS_munmap, (char *)p + 100, PAGE);
	CHECK(r == -1 && errno == EINVAL, "unaligned munmap returned %ld, errno %d", r, errno);
}

/* ------------------------------------------------------------------ */
/* Protection of the program's own memory. */

static volatile long recursion_limit = 1l << 40; /* never reached */

static long recurse(long depth)
{
	volatile char frame[1024];
	frame[0] = (char)depth;
	frame[sizeof frame - 1] = (char)depth;
	if (depth >= recursion_limit)
		return 0;
	return recurse(depth + 1) + frame[0] + frame[sizeof frame - 1];
}

static void t_stack_overflow(void)
{
	long r = recurse(0);
	set_note("unbounded recursion returned %ld", r);
}

static void t_stack_grow(void)
{
	/* 256 KiB of recursion must be fine. */
	recursion_limit = 256;
	long r = recurse(0);
	CHECK(r != 12345, "impossible"); /* keep the call */
}

static void t_text_readonly(void)
{
	volatile unsigned char *code = opaque((uintptr_t)&t_stack_grow);
	unsigned char old = *code; /* readable */
	*code = (unsigned char)(old ^ 0xff); /* must fault */
	set_note("wrote to the program's own code");
}

static void t_rodata_readonly(void)
{
	static const char text[] = "read-only data";
	volatile char *p = opaque((uintptr_t)text);
	CHECK(p[0] == 'r', "cannot read read-only data");
	p[0] = 'R'; /* must fault */
	set_note("wrote to read-only data");
}

typedef void (*fn_t)(void);

static void call_ret_at(unsigned char *where)
{
	where[0] = 0xc3; /* ret */
	fn_t fn = (fn_t)opaque((uintptr_t)where);
	fn();
}

static void t_nx_heap(void)
{
	unsigned char *buf = malloc(64);
	CHECK(buf != NULL, "malloc failed");
	call_ret_at(buf); /* must fault */
	set_note("executed code in a malloc'd buffer");
}

static void t_nx_stack(void)
{
	unsigned char buf[64];
	call_ret_at(buf); /* must fault */
	set_note("executed code on the stack");
}

static void t_nx_mmap(void)
{
	/* Anonymous memory mapped without PROT_EXEC cannot be executed. */
	call_ret_at(map_anon(PAGE, PROT_READ | PROT_WRITE)); /* must fault */
	set_note("executed code in a PROT_READ|PROT_WRITE mapping");
}

static void t_exec_mmap(void)
{
	/* The control experiment: with PROT_EXEC, the same thing works. */
	unsigned char *p = map_anon(PAGE, PROT_READ | PROT_WRITE);
	p[0] = 0xc3;
	CHECK(mprotect(p, PAGE, PROT_READ | PROT_EXEC) == 0, "mprotect(PROT_EXEC): %s",
	      strerror(errno));
	((fn_t)opaque((uintptr_t)p))();
}

static void t_kernel_read(void)
{
	volatile char *k = opaque(KERNEL_ADDR);
	(void)*k; /* must fault */
	set_note("read kernel memory at %#lx", KERNEL_ADDR);
}

static void t_kernel_write(void)
{
	volatile char *k = opaque(KERNEL_ADDR + 0x1000);
	*k = 0; /* must fault */
	set_note("wrote kernel memory");
}

static void t_null_read(void)
{
	volatile char *z = opaque(0);
	(void)*z; /* must fault */
	set_note("read address 0");
}

/* ------------------------------------------------------------------ */
/* fork. */

static int wait_flag(volatile int *flag, int want)
{
	for (int i = 0; i < 10000; i++) { /* about 10 s at most */
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) == want)
			return 1;
		sched_yield();
		sleep_ms(1);
	}
	return 0;
}

static int cow_global = 1;

static void t_fork_cow(void)
{
	volatile int *sync = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sync != MAP_FAILED, "mmap(MAP_SHARED) failed: %s", strerror(errno));
	const size_t len = 64 * 1024;
	unsigned char *heap = malloc(len);
	CHECK(heap != NULL, "malloc failed");
	memset(heap, 'P', len);
	volatile int on_stack = 1;
	cow_global = 1;

	pid_t pid = xfork();
	if (pid == 0) {
		/* The child writes everything, then waits for the parent's writes. */
		memset(heap, 'C', len);
		cow_global = 2;
		on_stack = 2;
		__atomic_store_n(&sync[0], 1, __ATOMIC_RELEASE);
		if (!wait_flag(&sync[1], 1))
			_exit(10);
		if (!all_bytes(heap, len, 'C') || cow_global != 2 || on_stack != 2)
			_exit(11); /* the parent's writes leaked in */
		_exit(0);
	}
	CHECK(wait_flag(&sync[0], 1), "child never signalled");
	CHECK(all_bytes(heap, len, 'P'), "child's heap writes leaked into the parent");
	CHECK(cow_global == 1, "child's write to a global leaked into the parent");
	CHECK(on_stack == 1, "child's write to the stack leaked into the parent");
	memset(heap, 'Q', len);
	cow_global = 3;
	on_stack = 3;
	__atomic_store_n(&sync[1], 1, __ATOMIC_RELEASE);
	int st = xwait(pid);
	CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 10), "child timed out waiting");
	CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 11),
	      "parent's writes after fork leaked into the child");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	CHECK(all_bytes(heap, len, 'Q') && cow_global == 3 && on_stack == 3,
	      "parent lost its own writes");
}

static void t_fork_many(void)
{
	/* Fork and reap a few children in a row; each exit status comes back. */
	for (int i = 0; i < 20; i++) {
		pid_t pid = xfork();
		if (pid == 0)
			_exit(i);
		int st = xwait(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == i, "child %d: status %#x", i, st);
	}
	/* Several alive at once, reaped in any order. */
	pid_t pids[8];
	for (int i = 0; i < 8; i++) {
		pids[i] = xfork();
		if (pids[i] == 0) {
			sleep_ms(5);
			_exit(100 + i);
		}
	}
	for (int n = 0; n < 8; n++) {
		int st;
		pid_t r = wait(&st);
		CHECK(r > 0, "wait failed: %s", strerror(errno));
		int i = 0;
		while (i < 8 && pids[i] != r)
			i++;
		CHECK(i < 8, "wait returned unknown pid %d", (int)r);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 100 + i, "child %d: status %#x", i, st);
		pids[i] = -1;
	}
	errno = 0;
	CHECK(wait(NULL) == -1 && errno == ECHILD, "wait with no children: errno %d", errno);
}

/*
 * Fork until memory runs out.  A chain of processes: each one maps and
 * touches oom_mib MiB, then forks the next one and waits for it, so all
 * of them stay alive at once.  The chain stops when fork (or mmap) fails,
 * when the OOM killer kills one of its processes, or at max_procs.  The
 * OOM killer chooses the largest process, which is not necessarily the
 * one that faulted (on Linux and on Ferrite alike): the processes below
 * the victim live on, orphaned, and stop at their next step once they see
 * that the chain has stopped.  Then it unwinds by itself (there is no
 * kill() to clean up with), and the supervisor checks that the kernel
 * still works.
 */
enum { STOP_NONE, STOP_CAP, STOP_FORK, STOP_MMAP, STOP_KILLED };

struct oom_state {
	int depth;   /* deepest process that finished touching its memory */
	int stop;    /* why the chain stopped */
	int err;     /* errno of the failed fork/mmap, or the killing signal */
	int at;      /* depth where it stopped */
};

static void oom_stop(volatile struct oom_state *s, int why, int err, int at)
{
	if (s->stop == STOP_NONE) {
		s->err = err;
		s->at = at;
		__atomic_store_n(&s->stop, why, __ATOMIC_RELEASE);
	}
}

static void oom_member(volatile struct oom_state *s)
{
	size_t len = (size_t)oom_mib << 20;
	int depth = 1;
	unsigned char *inherited = NULL;
	for (;;) {
		/* The chain stopped elsewhere (a process above us was killed). */
		if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) != STOP_NONE)
			_exit(0);
		/* Drop the parent's memory (shared copy-on-write): keep only our own. */
		if (inherited)
			munmap(inherited, len);
		unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			oom_stop(s, STOP_MMAP, errno, depth);
			_exit(0);
		}
		for (size_t i = 0; i < len; i += PAGE) {
			if (i % (256 * PAGE) == 0 &&
			    __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) != STOP_NONE)
				_exit(0);
			mem[i] = (unsigned char)depth;
		}
		s->depth = depth;
		if (depth >= max_procs) {
			oom_stop(s, STOP_CAP, 0, depth);
			_exit(0);
		}
		pid_t pid = fork();
		if (pid < 0) {
			oom_stop(s, STOP_FORK, errno, depth + 1);
			_exit(0);
		}
		if (pid == 0) {
			/* The child becomes the next member of the chain. */
			depth++;
			inherited = mem;
			continue;
		}
		int st = 0;
		pid_t r;
		do
			r = waitpid(pid, &st, 0);
		while (r < 0 && errno == EINTR);
		if (r == pid && WIFSIGNALED(st))
			oom_stop(s, STOP_KILLED, WTERMSIG(st), depth + 1);
		/* Our memory must be intact. */
		for (size_t i = 0; i < len; i += PAGE)
			if (mem[i] != (unsigned char)depth)
				_exit(1);
		_exit(r == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 0);
	}
}

static void t_fork_oom(void)
{
	volatile struct oom_state *s = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
					    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(s != MAP_FAILED, "mmap(MAP_SHARED) failed: %s", strerror(errno));
	pid_t pid = xfork();
	if (pid == 0)
		oom_member(s);
	int st = xwait(pid);
	int stop = __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
	if (WIFSIGNALED(st) && stop == STOP_NONE)
		oom_stop(s, STOP_KILLED, WTERMSIG(st), 1), stop = STOP_KILLED;
	CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) != 0),
	      "a process in the chain found its memory corrupted");
	switch (stop) {
	case STOP_CAP:
		set_note("reached the cap of %d processes x %ld MiB without running out",
			 s->at, oom_mib);
		break;
	case STOP_FORK:
		CHECK(s->err == ENOMEM || s->err == EAGAIN, "fork failed with errno %d (%s)",
		      s->err, strerror(s->err));
		set_note("%d processes x %ld MiB, then fork failed with %s", s->depth, oom_mib,
			 s->err == ENOMEM ? "ENOMEM" : "EAGAIN");
		break;
	case STOP_MMAP:
		CHECK(s->err == ENOMEM, "mmap failed with errno %d (%s)", s->err,
		      strerror(s->err));
		set_note("%d processes x %ld MiB, then mmap failed with ENOMEM", s->depth, oom_mib);
		break;
	case STOP_KILLED:
		CHECK(s->err == SIGKILL, "process %d of the chain died by signal %d", s->at, s->err);
		set_note("%d processes x %ld MiB, then process %d was killed by SIGKILL", s->depth,
			 oom_mib, s->at);
		break;
	default:
		fail("the chain ended without saying why (status %#x)", st);
	}

	/* The kernel lives: fork, allocate and exit work again. */
	char why[NOTE_SIZE];
	strncpy(why, note, sizeof why - 1);
	why[sizeof why - 1] = 0;
	for (int tries = 0;; tries++) {
		pid = fork();
		if (pid >= 0)
			break;
		/* Memory of the unwound chain may still be on its way back. */
		CHECK(tries < 1000, "fork still fails after the chain ended: %s", strerror(errno));
		sleep_ms(10);
	}
	if (pid == 0) {
		size_t len = (size_t)oom_mib << 20;
		unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			_exit(2);
		for (size_t i = 0; i < len; i += PAGE)
			m[i] = 1;
		_exit(42);
	}
	st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42,
	      "after the chain: a fresh child could not allocate %ld MiB (status %#x)", oom_mib, st);
	set_note("%s; the kernel lives", why);
}


/* ------------------------------------------------------------------ */
/* Hostile arguments (issue 10): empty and huge ranges, addresses below
 * the minimum mmap address, leaks of shared memory, file mappings past
 * the end of the file, unknown system calls, iovec and argv limits.
 * The expected results are Linux's (measured on Linux 6.x). */

static const char *self_path; /* argv[0] */
static int on_ferrite;        /* uname().sysname is "Ferrite" */

/* Expect a raw call to fail with exactly errno e. */
#define EXPECT_ERR(e, name, call)                                              \
	do {                                                                   \
		errno = 0;                                                     \
		long r_ = (long)(call);                                        \
		CHECK(r_ == -1 && errno == (e), "%s returned %ld, errno %d (%s), expected %s", \
		      name, r_, errno, strerror(errno), #e);                   \
	} while (0)

#define EXPECT_ZERO(name, call)                                                \
	do {                                                                   \
		errno = 0;                                                     \
		long r_ = (long)(call);                                        \
		CHECK(r_ == 0, "%s returned %ld, errno %d (%s), expected 0", name, \
		      r_, errno, strerror(errno));                             \
	} while (0)

#define HUGE_LEN (~0ul - PAGE + 1) /* 2^64 - 4096 */

static void t_madvise_empty(void)
{
	unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	memset(p, 0x5a, 4 * PAGE);
	/* The empty range [0, 0): nothing to do, success. */
	EXPECT_ZERO("madvise(NULL, 0, MADV_DONTNEED)", syscall(SYS_madvise, 0, 0, MADV_DONTNEED));
	EXPECT_ZERO("madvise(p, 0, MADV_DONTNEED)", syscall(SYS_madvise, p, 0, MADV_DONTNEED));
	EXPECT_ZERO("mprotect(p, 0, PROT_READ)", syscall(SYS_mprotect, p, 0, PROT_READ));
	EXPECT_ERR(EINVAL, "munmap(p, 0)", syscall(SYS_munmap, p, 0));
	/* Ranges that wrap around the end of the address space. */
	EXPECT_ERR(EINVAL, "madvise(p, 2^64-4096, MADV_DONTNEED)",
		   syscall(SYS_madvise, p, HUGE_LEN, MADV_DONTNEED));
	EXPECT_ERR(ENOMEM, "mprotect(p, 2^64-4096, PROT_READ)",
		   syscall(SYS_mprotect, p, HUGE_LEN, PROT_READ));
	EXPECT_ERR(EINVAL, "munmap(p, 2^64-4096)", syscall(SYS_munmap, p, HUGE_LEN));
	/* Nothing changed: same data, still writable. */
	CHECK(all_bytes(p, 4 * PAGE, 0x5a), "the data changed after the empty/huge calls");
	memset(p, 0x5b, 4 * PAGE);
	CHECK(all_bytes(p, 4 * PAGE, 0x5b), "memory no longer writable");
	/* And the process still works. */
	void *q = map_anon(PAGE, PROT_READ | PROT_WRITE);
	CHECK(munmap(q, PAGE) == 0, "munmap failed: %s", strerror(errno));
}

static void t_mremap_huge(void)
{
	unsigned char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	memset(p, 0x6c, 2 * PAGE);
	/* old + old_len wraps: Linux refuses with EINVAL. */
	EXPECT_ERR(EINVAL, "mremap(p, 2^64-4096, 8192, 0)",
		   syscall(SYS_mremap, p, HUGE_LEN, 2 * PAGE, 0, 0));
	EXPECT_ERR(EINVAL, "mremap(p, 2^64-4096, 8192, MREMAP_MAYMOVE)",
		   syscall(SYS_mremap, p, HUGE_LEN, 2 * PAGE, MREMAP_MAYMOVE, 0));
	/* new_addr + new_len wraps. */
	EXPECT_ERR(EINVAL, "mremap(p, 4096, 8192, MAYMOVE|FIXED, 2^64-4096)",
		   syscall(SYS_mremap, p, PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, HUGE_LEN));
	/* A huge new length. */
	errno = 0;
	long r = syscall(SYS_mremap, p, PAGE, HUGE_LEN, MREMAP_MAYMOVE, 0);
	CHECK(r == -1 && (errno == EINVAL || errno == ENOMEM),
	      "mremap(p, 4096, 2^64-4096, MAYMOVE) returned %#lx, errno %d", r, errno);
	CHECK(all_bytes(p, 2 * PAGE, 0x6c), "the mapping changed after refused mremaps");
	memset(p, 0x6d, 2 * PAGE);
}

/* A refused attempt to map something below the minimum mmap address.
 * Linux refuses it with EPERM unless the caller may (root with
 * CAP_SYS_RAWIO): then it works and is undone here. Ferrite: EPERM. */
static void expect_low_refused(long r, uintptr_t want, size_t len, const char *what)
{
	if (r == -1 && errno == EPERM)
		return;
	if (!on_ferrite && (uintptr_t)r == want) {
		CHECK(munmap((void *)want, len) == 0, "munmap(%#lx) failed: %s",
		      (unsigned long)want, strerror(errno));
		return;
	}
	fail("%s returned %#lx, errno %d (%s), expected EPERM", what, r, errno, strerror(errno));
}

static void t_mremap_below_min(void)
{
	const size_t len = 2 * PAGE;
	uintptr_t targets[] = {0, 0x1000};
	for (int i = 0; i < 2; i++) {
		unsigned char *p = map_anon(PAGE, PROT_READ | PROT_WRITE);
		p[0] = 0x42;
		errno = 0;
		long r = syscall(SYS_mremap, p, PAGE, len, MREMAP_MAYMOVE | MREMAP_FIXED, targets[i]);
		char what[80];
		snprintf(what, sizeof what, "mremap(p, 4096, 8192, MAYMOVE|FIXED, %#lx)",
			 (unsigned long)targets[i]);
		int moved = r != -1;
		expect_low_refused(r, targets[i], len, what);
		if (!moved)
			CHECK(p[0] == 0x42, "the refused mremap lost the data");
	}
	t_null_read(); /* must still fault */
}

static void t_mmap_below_min(void)
{
	uintptr_t targets[] = {0, 0x1000};
	for (int i = 0; i < 2; i++) {
		errno = 0;
		long r = syscall(SYS_mmap, targets[i], PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		char what[80];
		snprintf(what, sizeof what, "mmap(%#lx, 4096, RW, MAP_FIXED)",
			 (unsigned long)targets[i]);
		expect_low_refused(r, targets[i], PAGE, what);
	}
	t_null_read(); /* must still fault */
}

#define SHARED_MIB 1
/* 2 GiB in all: far more than the RAM of the machine tests/proc.rs boots
 * (256 MiB), so a leak starves it (a machine with more than 2 GiB of RAM
 * would not notice). */
static const int shared_rounds = 2000;

static void t_shared_anon_freed(void)
{
	const size_t len = (size_t)SHARED_MIB << 20;
	for (int i = 0; i < shared_rounds; i++) {
		unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		CHECK(p != MAP_FAILED, "round %d: mmap(1 MiB, MAP_SHARED) failed: %s (after %d MiB)",
		      i, strerror(errno), i * SHARED_MIB);
		for (size_t off = 0; off < len; off += PAGE)
			p[off] = (unsigned char)(i + 1);
		CHECK(p[len - PAGE] == (unsigned char)(i + 1), "round %d: data lost", i);
		CHECK(munmap(p, len) == 0, "round %d: munmap failed: %s", i, strerror(errno));
	}
	set_note("%d x %d MiB shared, touched and unmapped", shared_rounds, SHARED_MIB);
}

static void t_shared_anon_fork_freed(void)
{
	const size_t len = (size_t)SHARED_MIB << 20;
	const int rounds = 300; /* 300 MiB: more than a 256 MiB machine */
	for (int i = 0; i < rounds; i++) {
		unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		CHECK(p != MAP_FAILED, "round %d: mmap(MAP_SHARED) failed: %s", i, strerror(errno));
		pid_t pid = fork();
		CHECK(pid >= 0, "round %d: fork failed: %s", i, strerror(errno));
		if (pid == 0) {
			for (size_t off = 0; off < len; off += PAGE)
				p[off] = (unsigned char)(i + 7);
			munmap(p, len);
			_exit(0);
		}
		int st = xwait(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: child status %#x", i, st);
		for (size_t off = 0; off < len; off += PAGE)
			CHECK(p[off] == (unsigned char)(i + 7),
			      "round %d: the parent does not see the child's write at +%#zx", i, off);
		CHECK(munmap(p, len) == 0, "round %d: munmap failed: %s", i, strerror(errno));
	}
	set_note("%d rounds of 1 MiB shared between parent and child", rounds);
}

/* Opens the program's own file (Linux: argv[0]; Ferrite: /bin/NAME). */
static int open_self(void)
{
	int fd = open(self_path, O_RDONLY);
	if (fd < 0) {
		const char *base = strrchr(self_path, '/');
		char path[256];
		snprintf(path, sizeof path, "/bin/%s", base ? base + 1 : self_path);
		fd = open(path, O_RDONLY);
	}
	CHECK(fd >= 0, "cannot open the program's own file %s: %s", self_path, strerror(errno));
	return fd;
}

/* The file's size, without fstat (Ferrite has lseek, not fstat). */
static size_t file_size(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	CHECK(end > 0, "lseek(SEEK_END) failed: %s", strerror(errno));
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek(0) failed: %s", strerror(errno));
	return (size_t)end;
}

static void t_file_map_sigbus(void)
{
	int fd = open_self();
	size_t size = file_size(fd);
	const size_t len = 1 << 20;
	CHECK(size + 2 * PAGE < len, "the program file (%zu bytes) is too big for this test", size);
	unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(m != MAP_FAILED, "mmap(file, 1 MiB) failed: %s", strerror(errno));
	/* The mapped bytes are the file's. */
	static unsigned char buf[4096];
	for (size_t off = 0; off < size; off += sizeof buf) {
		ssize_t n = read(fd, buf, sizeof buf);
		CHECK(n > 0, "read at %zu failed: %s", off, strerror(errno));
		CHECK(memcmp(m + off, buf, (size_t)n) == 0, "mapped bytes differ at %zu", off);
	}
	/* The partial last page reads zeros past the end of the file. */
	size_t last_end = (size + PAGE - 1) & ~(PAGE - 1);
	CHECK(all_bytes(m + size, last_end - size, 0),
	      "the last page of the file is not zero past the end of the file");
	/* A page wholly past the end: SIGBUS. */
	volatile unsigned char *past = m + last_end;
	unsigned char v = *past; /* must die of SIGBUS */
	set_note("read %#x from a page wholly past the end of the file", v);
}

static void t_file_map_past_eof(void)
{
	int fd = open_self();
	size_t size = file_size(fd);
	size_t base = (size + PAGE - 1) & ~(PAGE - 1);
	const size_t len = 1 << 20;
	/* 1 MiB windows far past the end of the file: mapping them is fine,
	 * touching them is SIGBUS, every time (no memory is spent there). */
	for (int i = 0; i < 64; i++) {
		off_t offset = (off_t)(base + (size_t)(i + 1) * len * 4);
		unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, offset);
		CHECK(m != MAP_FAILED, "mmap(file, offset %#lx) failed: %s", (long)offset,
		      strerror(errno));
		pid_t pid = xfork();
		if (pid == 0) {
			unsigned sum = 0;
			for (size_t off = 0; off < len; off += PAGE)
				sum += ((volatile unsigned char *)m)[off];
			_exit(sum ? 3 : 4);
		}
		int st = xwait(pid);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS,
		      "window %d at offset %#lx: touching it gave status %#x, expected SIGBUS", i,
		      (long)offset, st);
		CHECK(munmap(m, len) == 0, "munmap failed: %s", strerror(errno));
	}
	set_note("64 windows past the end of the file, each touch SIGBUS");
}

static void t_unknown_syscalls(void)
{
	long nrs[] = {1000, 600, 512, 547, 1099, -1};
	for (int k = 0; k < 100; k++)
		for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
			errno = 0;
			long r = syscall(nrs[i], 1, 2, 3, 4, 5, 6);
			CHECK(r == -1 && errno == ENOSYS, "syscall(%ld) returned %ld, errno %d", nrs[i],
			      r, errno);
		}
	/* Still alive, still working. */
	CHECK(getpid() > 0, "getpid failed");
}

static void t_iov_limits(void)
{
	static struct iovec iov[1025];
	static unsigned char got[1024];
	int fd = open_self();
	static unsigned char want[1024];
	CHECK(read(fd, want, sizeof want) == (ssize_t)sizeof want, "read failed: %s",
	      strerror(errno));
	/* 1024 vectors (UIO_MAXIOV) of one byte each: allowed. */
	for (int i = 0; i < 1025; i++)
		iov[i] = (struct iovec){got + (i % 1024), 1};
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek failed");
	long r = syscall(SYS_readv, fd, iov, 1024);
	CHECK(r == 1024, "readv(1024 vectors) returned %ld, errno %d (%s)", r, errno, strerror(errno));
	CHECK(memcmp(got, want, sizeof want) == 0, "readv(1024 vectors) read the wrong bytes");
	for (int i = 0; i < 1024; i++)
		iov[i].iov_len = 0;
	r = syscall(SYS_writev, 1, iov, 1024);
	CHECK(r == 0, "writev(1024 empty vectors) returned %ld, errno %d", r, errno);
	/* 1025: EINVAL. */
	EXPECT_ERR(EINVAL, "readv(fd, iov, 1025)", syscall(SYS_readv, fd, iov, 1025));
	EXPECT_ERR(EINVAL, "writev(1, iov, 1025)", syscall(SYS_writev, 1, iov, 1025));
	EXPECT_ERR(EINVAL, "writev(1, iov, 1 << 20)", syscall(SYS_writev, 1, iov, 1 << 20));
	/* A length that is negative as ssize_t: EINVAL. */
	struct iovec neg = {got, 1ul << 63};
	EXPECT_ERR(EINVAL, "readv({buf, 2^63})", syscall(SYS_readv, fd, &neg, 1));
	EXPECT_ERR(EINVAL, "writev({buf, 2^63})", syscall(SYS_writev, 1, &neg, 1));
	/* A segment that runs out of user space: EFAULT for the whole call. */
	void *un = unmapped_page();
	struct iovec beyond[2] = {{got, 16}, {un, 1ul << 46}};
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek failed");
	EXPECT_ERR(EFAULT, "readv({buf, 16}, {unmapped, 2^46})", syscall(SYS_readv, fd, beyond, 2));
	EXPECT_ERR(EFAULT, "readv({unmapped, 2^46})", syscall(SYS_readv, fd, &beyond[1], 1));
	EXPECT_ERR(EFAULT, "writev({unmapped, 2^46})", syscall(SYS_writev, 1, &beyond[1], 1));
	static char line[] = "usertests: (iov-limits: this line must not be written)\n";
	struct iovec wbeyond[2] = {{line, sizeof line - 1}, {un, 1ul << 46}};
	EXPECT_ERR(EFAULT, "writev({line}, {unmapped, 2^46})", syscall(SYS_writev, 1, wbeyond, 2));
	/* A mapped segment, then an unmapped one inside user space: the bytes
	 * before the hole are read (a partial count), like Linux. */
	struct iovec half[2] = {{got, 16}, {un, 16}};
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek failed");
	r = syscall(SYS_readv, fd, half, 2);
	CHECK(r == 16, "readv({buf, 16}, {unmapped, 16}) returned %ld, errno %d (%s), expected 16", r,
	      errno, strerror(errno));
	/* The iovec array itself runs into an unmapped page. */
	struct iovec *edge = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(munmap((char *)edge + PAGE, PAGE) == 0, "munmap failed");
	struct iovec *tail = (struct iovec *)((char *)edge + PAGE) - 4;
	for (int i = 0; i < 4; i++)
		tail[i] = (struct iovec){got, 0};
	EXPECT_ERR(EFAULT, "readv(iovec array running into a hole, 1024)",
		   syscall(SYS_readv, fd, tail, 1024));
}

static void t_execve_limits(void)
{
	int fd = open_self();
	close(fd);
	/* A path that exists, so the argument checks are what fails. */
	const char *path = self_path;
	if (access(path, X_OK) != 0) {
		static char bin[256];
		const char *base = strrchr(self_path, '/');
		snprintf(bin, sizeof bin, "/bin/%s", base ? base + 1 : self_path);
		path = bin;
	}
	/* One argument longer than MAX_ARG_STRLEN (128 KiB). */
	const size_t big_len = 200 * 1024;
	char *big = map_anon(big_len, PROT_READ | PROT_WRITE);
	memset(big, 'x', big_len - 1);
	char *one_big[] = {"usertests", big, NULL};
	EXPECT_ERR(E2BIG, "execve(argv with a 200 KiB string)",
		   syscall(SYS_execve, path, one_big, NULL));
	/* 128 arguments of 64 KiB each: 8 MiB in all, over every ARG_MAX. */
	big[64 * 1024 - 1] = 0;
	static char *many[130];
	many[0] = "usertests";
	for (int i = 1; i < 129; i++)
		many[i] = big;
	EXPECT_ERR(E2BIG, "execve(128 x 64 KiB arguments)", syscall(SYS_execve, path, many, NULL));
	EXPECT_ERR(E2BIG, "execve(envp of 128 x 64 KiB)",
		   syscall(SYS_execve, path, one_big + 2, many));
	/* Bad pointers: the array, an element, the path, the environment. */
	void *un = unmapped_page();
	char *kernel_elem[] = {"usertests", opaque(KERNEL_ADDR), NULL};
	char *unmapped_elem[] = {"usertests", un, NULL};
	EXPECT_ERR(EFAULT, "execve(argv = kernel address)",
		   syscall(SYS_execve, path, opaque(KERNEL_ADDR), NULL));
	EXPECT_ERR(EFAULT, "execve(argv = unmapped)", syscall(SYS_execve, path, un, NULL));
	EXPECT_ERR(EFAULT, "execve(argv[1] = kernel address)",
		   syscall(SYS_execve, path, kernel_elem, NULL));
	EXPECT_ERR(EFAULT, "execve(argv[1] = unmapped)",
		   syscall(SYS_execve, path, unmapped_elem, NULL));
	EXPECT_ERR(EFAULT, "execve(envp[1] = kernel address)",
		   syscall(SYS_execve, path, NULL, kernel_elem));
	EXPECT_ERR(EFAULT, "execve(path = kernel address)",
		   syscall(SYS_execve, opaque(KERNEL_ADDR), kernel_elem, NULL));
	EXPECT_ERR(EFAULT, "execve(path = non-canonical)",
		   syscall(SYS_execve, opaque(0x8000000000000000ul), NULL, NULL));
}

/* ------------------------------------------------------------------ */
/* Overcommit (issue 12): what is charged to Committed_AS, and when the
 * policy (vm.overcommit_memory) refuses.  BIG is more than the RAM and
 * swap of any machine these run on, and fits in the user half twice, so
 * only the overcommit policy decides whether it is granted.  The expected
 * results are Linux 6.1's. */

#define BIG (64ul << 40) /* 64 TiB */

/* vm.overcommit_memory of this Linux machine, or -1 where there is no
 * /proc (Ferrite: the kernel test that runs a case sets the mode). */
static int host_overcommit_mode(void)
{
	int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY);
	if (fd < 0)
		return -1;
	char c = 0;
	long n = read(fd, &c, 1);
	close(fd);
	return n == 1 && c >= '0' && c <= '2' ? c - '0' : -1;
}

/* True (and a note saying so) if this Linux machine is not in `mode`. */
static int skip_unless_mode(int mode)
{
	int host = on_ferrite ? -1 : host_overcommit_mode();
	if (host >= 0 && host != mode) {
		set_note("skipped: vm.overcommit_memory is %d here, the case needs %d", host, mode);
		return 1;
	}
	return 0;
}

static void *try_map(size_t len, int prot, int flags)
{
	errno = 0;
	return mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

/* Writes and reads back the first and last page of [p, p + len). */
static void touch_ends(unsigned char *p, size_t len, const char *what)
{
	p[0] = 0x5a;
	p[len - 1] = 0xa5;
	CHECK(p[0] == 0x5a && p[len - 1] == 0xa5, "%s: written bytes did not stay", what);
	CHECK(p[PAGE] == 0, "%s: untouched page not zero", what);
}

/* Mode 0, the default: one request larger than RAM + swap is refused;
 * MAP_NORESERVE, read-only private and file-less shared-with-NORESERVE
 * mappings are not charged, so they are granted at any size. */
static void t_overcommit_heuristic(void)
{
	if (skip_unless_mode(0))
		return;
	int rw = PROT_READ | PROT_WRITE, priv = MAP_PRIVATE, nores = MAP_NORESERVE;
	void *p = try_map(BIG, rw, priv);
	CHECK(p == MAP_FAILED && errno == ENOMEM, "mmap(64 TiB, private writable) gave %p, errno %d",
	      p, errno);

	/* The example: 4 GiB with MAP_NORESERVE (any machine). */
	unsigned char *q = try_map(4ul << 30, rw, priv | nores);
	CHECK(q != MAP_FAILED, "mmap(4 GiB, MAP_NORESERVE) failed: %s", strerror(errno));
	touch_ends(q, 4ul << 30, "4 GiB MAP_NORESERVE");
	CHECK(munmap(q, 4ul << 30) == 0, "munmap(4 GiB) failed");
	q = try_map(BIG, rw, priv | nores);
	CHECK(q != MAP_FAILED, "mmap(64 TiB, MAP_NORESERVE) failed: %s", strerror(errno));
	touch_ends(q, BIG, "64 TiB MAP_NORESERVE");
	/* Not charged, so it may grow (mremap) and be copied (fork). */
	pid_t pid = xfork();
	if (pid == 0)
		_exit(q[0] == 0x5a ? 0 : 1);
	int st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork with 64 TiB MAP_NORESERVE: status %#x", st);
	CHECK(munmap(q, BIG) == 0, "munmap(64 TiB) failed");

	/* Read-only private: not charged until made writable, and then the
	 * whole request is refused, one page is not. */
	q = try_map(BIG, PROT_READ, priv);
	CHECK(q != MAP_FAILED, "mmap(64 TiB, read-only) failed: %s", strerror(errno));
	CHECK(q[BIG - 1] == 0, "read-only 64 TiB mapping not zero");
	EXPECT_ERR(ENOMEM, "mprotect(64 TiB, PROT_WRITE)", mprotect(q, BIG, rw));
	EXPECT_ZERO("mprotect(one page, PROT_WRITE)", mprotect(q + PAGE, PAGE, rw));
	q[PAGE] = 1;
	CHECK(munmap(q, BIG) == 0, "munmap(64 TiB) failed");

	/* Shared anonymous memory is charged for its size even read-only
	 * (shmem), unless MAP_NORESERVE. */
	p = try_map(BIG, PROT_READ, MAP_SHARED);
	CHECK(p == MAP_FAILED && errno == ENOMEM, "mmap(64 TiB, shared read-only) gave %p, errno %d",
	      p, errno);
	q = try_map(BIG, rw, MAP_SHARED | nores);
	CHECK(q != MAP_FAILED, "mmap(64 TiB, shared, MAP_NORESERVE) failed: %s", strerror(errno));
	q[0] = 7;
	CHECK(q[0] == 7, "shared MAP_NORESERVE page lost its byte");
	CHECK(munmap(q, BIG) == 0, "munmap(64 TiB shared) failed");

	/* mremap: growth of a charged mapping is charged; of a NORESERVE one
	 * not. */
	q = try_map(PAGE, rw, priv);
	CHECK(q != MAP_FAILED, "mmap(1 page) failed");
	q[0] = 3;
	errno = 0;
	void *r = mremap(q, PAGE, BIG, MREMAP_MAYMOVE);
	CHECK(r == MAP_FAILED && errno == ENOMEM, "mremap(1 page -> 64 TiB) gave %p, errno %d", r,
	      errno);
	CHECK(q[0] == 3, "refused mremap lost the data");
	CHECK(munmap(q, PAGE) == 0, "munmap failed");
	q = try_map(PAGE, rw, priv | nores);
	CHECK(q != MAP_FAILED, "mmap(1 page, MAP_NORESERVE) failed");
	q[0] = 4;
	r = mremap(q, PAGE, BIG, MREMAP_MAYMOVE);
	CHECK(r != MAP_FAILED, "mremap(MAP_NORESERVE page -> 64 TiB) failed: %s", strerror(errno));
	CHECK(((unsigned char *)r)[0] == 4, "mremap lost the data");
	CHECK(munmap(r, BIG) == 0, "munmap failed");
}

#define STRICT_CHUNK (1ul << 20)
#define STRICT_MAX 65536
static unsigned char *strict_chunks[STRICT_MAX];

/* Maps STRICT_CHUNK private writable chunks until the policy refuses;
 * returns how many it got (from `from` on). */
static long fill_commit(long from)
{
	long n = from;
	for (; n < STRICT_MAX; n++) {
		unsigned char *c = try_map(STRICT_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		if (c == MAP_FAILED) {
			CHECK(errno == ENOMEM, "mmap failed with errno %d, expected ENOMEM", errno);
			break;
		}
		strict_chunks[n] = c;
	}
	CHECK(n < STRICT_MAX, "%ld MiB committed without a refusal: not strict", n);
	return n;
}

/* Then single pages up to the last one the policy grants (fewer than a
 * chunk's); returns how many. */
static unsigned char *strict_pages[STRICT_CHUNK / PAGE];

static long fill_pages(void)
{
	long n = 0;
	for (; n < (long)(STRICT_CHUNK / PAGE); n++) {
		unsigned char *c = try_map(PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		if (c == MAP_FAILED) {
			CHECK(errno == ENOMEM, "mmap failed with errno %d, expected ENOMEM", errno);
			break;
		}
		strict_pages[n] = c;
	}
	CHECK(n < (long)(STRICT_CHUNK / PAGE), "a whole chunk's pages fit after the chunks did not");
	return n;
}

static void unmap_chunks(long from, long to)
{
	for (long i = from; i < to; i++)
		CHECK(munmap(strict_chunks[i], STRICT_CHUNK) == 0, "munmap of chunk %ld failed", i);
}

/* Mode 2 (run by name, with the mode set; skipped natively otherwise):
 * nothing past CommitLimit, MAP_NORESERVE ignored, and what is unmapped
 * may be committed again. */
static void t_overcommit_strict(void)
{
	if (skip_unless_mode(2))
		return;
	int rw = PROT_READ | PROT_WRITE;
	void *p = try_map(BIG, rw, MAP_PRIVATE | MAP_NORESERVE);
	CHECK(p == MAP_FAILED && errno == ENOMEM, "mmap(64 TiB, MAP_NORESERVE) gave %p, errno %d",
	      p, errno);
	p = try_map(BIG, PROT_READ, MAP_SHARED | MAP_NORESERVE);
	CHECK(p == MAP_FAILED && errno == ENOMEM,
	      "mmap(64 TiB, shared, MAP_NORESERVE) gave %p, errno %d", p, errno);

	long n = fill_commit(0);
	CHECK(n >= 8, "only %ld MiB could be committed", n);
	long pages = fill_pages();
	/* Full: one more page of any charged kind is refused. */
	p = try_map(PAGE, rw, MAP_PRIVATE | MAP_NORESERVE);
	CHECK(p == MAP_FAILED && errno == ENOMEM, "full, MAP_NORESERVE page gave %p, errno %d", p,
	      errno);
	p = try_map(STRICT_CHUNK, rw, MAP_SHARED);
	CHECK(p == MAP_FAILED && errno == ENOMEM, "full, shared 1 MiB gave %p, errno %d", p, errno);
	uintptr_t cur = raw_brk(0);
	CHECK(raw_brk(cur + STRICT_CHUNK) == cur, "full, brk still grew by 1 MiB");
	/* Read-only is not charged; making it writable is. */
	unsigned char *ro = try_map(STRICT_CHUNK, PROT_READ, MAP_PRIVATE);
	CHECK(ro != MAP_FAILED, "full, read-only 1 MiB failed: %s", strerror(errno));
	EXPECT_ERR(ENOMEM, "full, mprotect(1 MiB, PROT_WRITE)", mprotect(ro, STRICT_CHUNK, rw));
	CHECK(munmap(ro, STRICT_CHUNK) == 0, "munmap failed");
	/* The child of a fork would need as much again. */
	errno = 0;
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		xwait(pid);
	CHECK(pid < 0 && errno == ENOMEM, "full, fork gave %d, errno %d", (int)pid, errno);

	/* Unmapping gives back: one chunk, then exactly one more fits. */
	unmap_chunks(n - 1, n);
	CHECK(fill_commit(n - 1) == n, "after unmapping 1 MiB, not exactly 1 MiB fits again");
	for (long i = 0; i < pages; i++)
		CHECK(munmap(strict_pages[i], PAGE) == 0, "munmap of page %ld failed", i);
	/* With three quarters given back, a fork fits. */
	unmap_chunks(n / 4, n);
	pid = fork();
	CHECK(pid >= 0, "fork after unmapping 3/4 failed: %s", strerror(errno));
	if (pid == 0)
		_exit(strict_chunks[0][0] == 0 ? 0 : 1);
	int st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	/* Everything back: as much fits as before (give or take a page of
	 * stack the calls since may have grown). */
	unmap_chunks(0, n / 4);
	long again = fill_commit(0);
	CHECK(again >= n - 1 && again <= n + 1, "%ld MiB fit at first, %ld after unmapping all", n,
	      again);
	unmap_chunks(0, again);
	set_note("%ld MiB + %ld pages committed, then ENOMEM; fork refused when full", n, pages);
}

/* ------------------------------------------------------------------ */

static struct testcase cases[] = {
	{"efault-write-kernel", t_efault_write_kernel, 0, 0},
	{"efault-write-unmapped", t_efault_write_unmapped, 0, 0},
	{"efault-write-half", t_efault_write_half, 0, 0},
	{"efault-writev", t_efault_writev, 0, 0},
	{"efault-read-kernel", t_efault_read_kernel, 0, 0},
	{"efault-uname", t_efault_uname, 0, 0},
	{"efault-clock-gettime", t_efault_clock, 0, 0},
	{"clock-monotonic-fine", t_clock_monotonic_fine, 0, 0},
	{"brk-grow-shrink", t_brk_grow_shrink, 0, 0},
	{"brk-shrink-unmaps", t_brk_shrink_unmaps, SIGSEGV, 0},
	{"brk-absurd", t_brk_absurd, 0, 0},
	{"mmap-rw", t_mmap_rw, 0, 0},
	{"mmap-readonly-read", t_mmap_readonly_read, 0, 0},
	{"mmap-readonly-write", t_mmap_readonly_write, SIGSEGV, 0},
	{"mprotect-keeps-data", t_mprotect_keeps_data, 0, 0},
	{"mprotect-none", t_mprotect_none, SIGSEGV, 0},
	{"munmap-access", t_munmap_access, SIGSEGV, 0},
	{"mmap-fixed-replace", t_mmap_fixed_replace, 0, 0},
	{"mmap-shared-fork", t_mmap_shared_fork, 0, 0},
	{"mremap-grow", t_mremap_grow, 0, 0},
	{"madvise-dontneed", t_madvise_dontneed, 0, 0},
	{"mmap-bad-args", t_mmap_bad, 0, 0},
	{"stack-grow", t_stack_grow, 0, 0},
	{"stack-overflow", t_stack_overflow, SIGSEGV, 0},
	{"text-readonly", t_text_readonly, SIGSEGV, 0},
	{"rodata-readonly", t_rodata_readonly, SIGSEGV, 0},
	{"nx-heap", t_nx_heap, SIGSEGV, 0},
	{"nx-stack", t_nx_stack, SIGSEGV, 0},
	{"nx-mmap", t_nx_mmap, SIGSEGV, 0},
	{"exec-mmap", t_exec_mmap, 0, 0},
	{"kernel-read", t_kernel_read, SIGSEGV, 0},
	{"kernel-write", t_kernel_write, SIGSEGV, 0},
	{"null-read", t_null_read, SIGSEGV, 0},
	{"fork-cow", t_fork_cow, 0, 0},
	{"fork-many", t_fork_many, 0, 0},
	{"madvise-empty", t_madvise_empty, 0, 0},
	{"mremap-huge", t_mremap_huge, 0, 0},
	{"mremap-below-min", t_mremap_below_min, SIGSEGV, 0},
	{"mmap-below-min", t_mmap_below_min, SIGSEGV, 0},
	{"shared-anon-freed", t_shared_anon_freed, 0, 0},
	{"shared-anon-fork-freed", t_shared_anon_fork_freed, 0, 0},
	{"file-map-sigbus", t_file_map_sigbus, SIGBUS, 0},
	{"file-map-past-eof", t_file_map_past_eof, 0, 0},
	{"unknown-syscalls", t_unknown_syscalls, 0, 0},
	{"iov-limits", t_iov_limits, 0, 0},
	{"execve-limits", t_execve_limits, 0, 0},
	{"overcommit-heuristic", t_overcommit_heuristic, 0, 0},
	/* By name only: needs vm.overcommit_memory=2 (tests/overcommit.rs). */
	{"overcommit-strict", t_overcommit_strict, 0, BY_NAME},
	{"fork-oom", t_fork_oom, 0, 0},
};
static int options(int argc, char **argv, int i)
{
	long *value = strcmp(argv[i], "--max-procs") == 0 ? &max_procs
		      : strcmp(argv[i], "--oom-mib") == 0 ? &oom_mib
							  : NULL;
	if (!value || i + 1 >= argc || atol(argv[i + 1]) < 1)
		return 0;
	*value = atol(argv[i + 1]);
	return 2;
}

int main(int argc, char **argv)
{
	initial_brk = raw_brk(0);
	self_path = argv[0];
	struct utsname uts;
	on_ferrite = uname(&uts) == 0 && strcmp(uts.sysname, "Ferrite") == 0;
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--max-procs N] [--oom-mib N] [--skip CASE]... [CASE...]",
		.option = options,
	};
	return run_suite(&suite, argc, argv);
}

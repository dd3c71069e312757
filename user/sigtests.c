/*
 * sigtests: POSIX signals, as Linux x86_64 delivers them.  Every case runs
 * in a child of its own (a case that goes wrong cannot take the suite
 * down); the parent checks how it ended.  Runs natively on Linux too
 * (user/run-host-tests.sh), so "right" means "what Linux does".
 *
 * Usage: sigtests [-l] [CASE...]
 *   -l        list the cases
 *   CASE...   run only these
 * Modes used by tests/signals.rs (Ctrl-C on Ferrite's console):
 *   sigtests --sigint-read   SIGINT handler, then a blocking read of stdin:
 *                            prints "sigtests: read interrupted" and exits 0
 *                            when the read fails with EINTR after the handler
 *   sigtests --raise N       raise(N) with the default action, then exit 0
 *   sigtests --bench N       N getpids, then N signal round trips (kill to
 *                            self, handler, rt_sigreturn): ns each
 *   sigtests --exec-check    (internal) checks the signal state exec left
 *
 * Output: "sigtests: <case> ... ok" or "... FAILED (<why>)" per case, then
 * "sigtests: N passed, M failed"; exit status 0 iff all passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define SUITE "sigtests"
#include "testcase.h"

#define PAGE 4096ul

static const char *self_path;

static void handle(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction(%d): %s", sig, strerror(errno));
}

static void set_disposition(int sig, void (*h)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction(%d): %s", sig, strerror(errno));
}

static int blocked_now(int sig)
{
	sigset_t s;
	sigprocmask(SIG_BLOCK, NULL, &s);
	return sigismember(&s, sig);
}

/* A page shared with the children forked after it (MAP_SHARED): flags
 * that order a parent's steps and a child's without a race against time. */
static volatile int *shared_page(void)
{
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED, "mmap shared: %s", strerror(errno));
	return p;
}

/* Whether pid is asleep (state S in /proc/PID/stat: blocked in a call). */
static int asleep(pid_t pid)
{
	char path[32], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *end = strrchr(buf, ')');
	return end && end[1] == ' ' && end[2] == 'S';
}

/* The last signal a recording handler saw. */
static volatile sig_atomic_t got, got_count;
static volatile int got_code, got_pid, got_status, got_blocked_self;
static void *volatile got_addr;
static void *volatile got_uc;
static volatile uintptr_t got_stack;

static void record(int sig, siginfo_t *si, void *uc)
{
	int local;
	got = sig;
	got_count++;
	got_code = si->si_code;
	got_pid = si->si_pid;
	got_status = si->si_status;
	got_addr = si->si_addr;
	got_uc = uc;
	got_stack = (uintptr_t)&local;
	got_blocked_self = blocked_now(sig);
}

static void reset_record(void)
{
	got = got_count = 0;
	got_code = got_pid = got_status = got_blocked_self = 0;
	got_addr = got_uc = NULL;
	got_stack = 0;
}

/* ---- cases ---- */

static void t_handler_siginfo(void)
{
	handle(SIGUSR1, record, 0);
	CHECK(kill(getpid(), SIGUSR1) == 0, "kill: %s", strerror(errno));
	CHECK(got == SIGUSR1 && got_count == 1, "handler ran %d times, signal %d", got_count, got);
	CHECK(got_code == SI_USER, "si_code %d, expected SI_USER", got_code);
	CHECK(got_pid == getpid(), "si_pid %d, expected %d", got_pid, getpid());
	CHECK(got_blocked_self, "the signal was not blocked inside its handler");
	CHECK(!blocked_now(SIGUSR1), "the mask was not restored after the handler");
	ucontext_t *uc = got_uc;
	CHECK(uc != NULL, "no ucontext");
	/* tgkill: si_code SI_TKILL. */
	reset_record();
	CHECK(syscall(SYS_tgkill, getpid(), getpid(), SIGUSR1) == 0, "tgkill: %s", strerror(errno));
	CHECK(got == SIGUSR1 && got_code == SI_TKILL, "tgkill: signal %d code %d", got, got_code);
	reset_record();
	CHECK(syscall(SYS_tkill, getpid(), SIGUSR1) == 0, "tkill: %s", strerror(errno));
	CHECK(got == SIGUSR1 && got_code == SI_TKILL, "tkill: signal %d code %d", got, got_code);
	/* Signal 0: only the existence check. */
	CHECK(kill(getpid(), 0) == 0, "kill(self, 0): %s", strerror(errno));
}

static void t_bad_args(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	errno = 0;
	CHECK(sigaction(SIGKILL, &sa, NULL) < 0 && errno == EINVAL, "sigaction(SIGKILL) allowed");
	CHECK(sigaction(SIGSTOP, &sa, NULL) < 0 && errno == EINVAL, "sigaction(SIGSTOP) allowed");
	CHECK(syscall(SYS_rt_sigaction, 0, NULL, NULL, 8) < 0 && errno == EINVAL, "signal 0");
	CHECK(syscall(SYS_rt_sigaction, 65, NULL, NULL, 8) < 0 && errno == EINVAL, "signal 65");
	CHECK(syscall(SYS_rt_sigaction, SIGUSR1, NULL, NULL, 4) < 0 && errno == EINVAL,
	      "sigsetsize 4");
	CHECK(syscall(SYS_rt_sigaction, SIGUSR1, (void *)8, NULL, 8) < 0 && errno == EFAULT,
	      "bad act pointer");
	CHECK(syscall(SYS_rt_sigprocmask, 7, &sa.sa_mask, NULL, 8) < 0 && errno == EINVAL,
	      "sigprocmask how 7");
	CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, (void *)8, NULL, 8) < 0 && errno == EFAULT,
	      "sigprocmask bad set");
	CHECK(kill(getpid(), 65) < 0 && errno == EINVAL, "kill(65)");
	CHECK(syscall(SYS_tgkill, getpid(), getpid(), 99) < 0 && errno == EINVAL, "tgkill(99)");
	CHECK(syscall(SYS_tgkill, -1, getpid(), SIGUSR1) < 0 && errno == EINVAL, "tgkill tgid -1");
	/* SIGKILL and SIGSTOP cannot be blocked. */
	uint64_t all = ~0ull, now = 0;
	CHECK(syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8) == 0, "block all");
	CHECK(syscall(SYS_rt_sigprocmask, SIG_SETMASK, NULL, &now, 8) == 0, "read mask");
	CHECK(now == ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1))),
	      "blocking all gave mask %#llx", (unsigned long long)now);
}

static void t_mask_blocks(void)
{
	handle(SIGUSR1, record, 0);
	sigset_t s, pend;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	CHECK(sigprocmask(SIG_BLOCK, &s, NULL) == 0, "sigprocmask: %s", strerror(errno));
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR1); /* standard signals do not queue */
	CHECK(got_count == 0, "the handler ran while the signal was blocked");
	CHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGUSR1), "sigpending lacks SIGUSR1");
	CHECK(!sigismember(&pend, SIGUSR2), "sigpending shows SIGUSR2");
	CHECK(sigprocmask(SIG_UNBLOCK, &s, NULL) == 0, "unblock: %s", strerror(errno));
	CHECK(got_count == 1, "after unblocking the handler ran %d times, expected 1", got_count);
	CHECK(sigpending(&pend) == 0 && !sigismember(&pend, SIGUSR1), "still pending");
	/* A blocked, ignored signal is discarded once ignored. */
	sigprocmask(SIG_BLOCK, &s, NULL);
	kill(getpid(), SIGUSR1);
	set_disposition(SIGUSR1, SIG_IGN);
	CHECK(sigpending(&pend) == 0 && !sigismember(&pend, SIGUSR1),
	      "an ignored signal stayed pending");
}

static void t_handler_flags(void)
{
	/* sa_mask: SIGUSR2 blocked in the handler of SIGUSR1. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = record;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	CHECK(got_count == 1 && got_blocked_self, "handler did not run with SIGUSR1 blocked");
	/* SA_NODEFER: the signal is not blocked in its handler. */
	reset_record();
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	CHECK(got_count == 1 && !got_blocked_self, "SA_NODEFER: the signal was blocked");
	/* SA_RESETHAND: the action goes back to SIG_DFL when it runs. */
	reset_record();
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	struct sigaction old;
	sigaction(SIGUSR1, NULL, &old);
	CHECK(got_count == 1 && old.sa_handler == SIG_DFL, "SA_RESETHAND: handler still installed");
	/* The old action reads back as set. */
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGUSR2, NULL, &old);
	CHECK(old.sa_sigaction == record && (old.sa_flags & SA_RESTART) &&
		      sigismember(&old.sa_mask, SIGUSR2),
	      "sigaction read back a different action (flags %#x)", old.sa_flags);
}

static char *alt_base;
static size_t alt_size;
static volatile int alt_onstack_flag;

static void on_alt(int sig, siginfo_t *si, void *uc)
{
	record(sig, si, uc);
	stack_t now;
	sigaltstack(NULL, &now);
	alt_onstack_flag = now.ss_flags;
}

static void t_sigaltstack(void)
{
	alt_size = 64 * 1024;
	alt_base = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(alt_base != MAP_FAILED, "mmap");
	stack_t ss = {.ss_sp = alt_base, .ss_size = 1024, .ss_flags = 0}, old;
	CHECK(sigaltstack(&ss, NULL) < 0 && errno == ENOMEM, "a 1 KiB altstack was accepted");
	ss.ss_flags = 12345;
	ss.ss_size = alt_size;
	CHECK(sigaltstack(&ss, NULL) < 0 && errno == EINVAL, "bad ss_flags accepted");
	CHECK(sigaltstack(NULL, &old) == 0 && (old.ss_flags & SS_DISABLE), "initially not disabled");
	ss.ss_flags = 0;
	CHECK(sigaltstack(&ss, NULL) == 0, "sigaltstack: %s", strerror(errno));
	CHECK(sigaltstack(NULL, &old) == 0 && old.ss_sp == alt_base && old.ss_size == alt_size &&
		      old.ss_flags == 0,
	      "read back sp %p size %zu flags %d", old.ss_sp, old.ss_size, old.ss_flags);
	handle(SIGUSR1, on_alt, SA_ONSTACK);
	raise(SIGUSR1);
	CHECK(got_count == 1, "handler did not run");
	CHECK(got_stack > (uintptr_t)alt_base && got_stack < (uintptr_t)alt_base + alt_size,
	      "handler's stack at %#lx, not on the altstack %p", (unsigned long)got_stack, alt_base);
	CHECK(alt_onstack_flag == SS_ONSTACK, "inside the handler ss_flags %d, not SS_ONSTACK",
	      alt_onstack_flag);
	/* Without SA_ONSTACK the handler runs on the normal stack. */
	reset_record();
	handle(SIGUSR2, record, 0);
	raise(SIGUSR2);
	CHECK(got_stack && !(got_stack > (uintptr_t)alt_base &&
			     got_stack < (uintptr_t)alt_base + alt_size),
	      "a handler without SA_ONSTACK ran on the altstack");
	ss.ss_flags = SS_DISABLE;
	CHECK(sigaltstack(&ss, NULL) == 0 && sigaltstack(NULL, &old) == 0 &&
		      (old.ss_flags & SS_DISABLE),
	      "SS_DISABLE did not disable");
}

/* SIGSEGV handler that makes the page writable (mprotect) and resumes. */
static char *prot_page;
static void fix_prot(int sig, siginfo_t *si, void *uc)
{
	record(sig, si, uc);
	char *page = (char *)((uintptr_t)si->si_addr & ~(PAGE - 1));
	if (mprotect(page, PAGE, PROT_READ | PROT_WRITE) != 0)
		_exit(40);
}

static void t_segv_mprotect(void)
{
	handle(SIGSEGV, fix_prot, 0);
	prot_page = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(prot_page != MAP_FAILED, "mmap");
	volatile char *p = prot_page + 123;
	*p = 42; /* faults, the handler fixes, the write is retried */
	CHECK(*p == 42, "the write did not land after the handler");
	CHECK(got == SIGSEGV && got_count == 1, "handler ran %d times", got_count);
	CHECK(got_addr == prot_page + 123, "si_addr %p, expected %p", got_addr, prot_page + 123);
	CHECK(got_code == SEGV_ACCERR, "si_code %d, expected SEGV_ACCERR", got_code);
	ucontext_t *uc = got_uc;
	(void)uc;
}

/* User-level demand paging: the handler maps a page where the fault was and
 * fills it with its page number. */
static char *region;
#define REGION_PAGES 64
static void map_on_demand(int sig, siginfo_t *si, void *uc)
{
	record(sig, si, uc);
	uintptr_t page = (uintptr_t)si->si_addr & ~(PAGE - 1);
	if (page < (uintptr_t)region || page >= (uintptr_t)region + REGION_PAGES * PAGE)
		_exit(41);
	char *m = mmap((void *)page, PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (m != (char *)page)
		_exit(42);
	memset(m, (int)((page - (uintptr_t)region) / PAGE), PAGE);
}

static void t_demand_paging(void)
{
	region = mmap(NULL, REGION_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(region != MAP_FAILED, "mmap");
	handle(SIGSEGV, map_on_demand, 0);
	unsigned long sum = 0;
	for (int i = REGION_PAGES - 1; i >= 0; i--) {
		volatile unsigned char *p = (unsigned char *)region + i * PAGE + 7;
		sum += *p;
		CHECK(*p == i, "page %d reads %d", i, *p);
	}
	CHECK(got_count == REGION_PAGES, "%d faults for %d pages", got_count, REGION_PAGES);
	CHECK(got_code == SEGV_ACCERR, "si_code %d for a PROT_NONE page", got_code);
	CHECK(sum == REGION_PAGES * (REGION_PAGES - 1) / 2, "sum %lu", sum);
	/* An unmapped hole: SEGV_MAPERR, fixed by mapping it. */
	reset_record();
	munmap(region, PAGE);
	volatile unsigned char *hole = (unsigned char *)region + 5;
	CHECK(*hole == 0, "the page mapped in the hole reads %d", *hole);
	CHECK(got_count == 1 && got_code == SEGV_MAPERR && got_addr == region + 5,
	      "hole: %d faults, si_code %d, si_addr %p", got_count, got_code, got_addr);
}

/* SIGBUS past the end of a file mapping, fixed by mapping anonymous memory. */
static void map_anon_over(int sig, siginfo_t *si, void *uc)
{
	record(sig, si, uc);
	uintptr_t page = (uintptr_t)si->si_addr & ~(PAGE - 1);
	if (mmap((void *)page, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	    MAP_FAILED)
		_exit(43);
}

static int open_self(void)
{
	int fd = open(self_path, O_RDONLY);
	if (fd < 0) {
		const char *base = strrchr(self_path, '/');
		char path[256];
		snprintf(path, sizeof path, "/bin/%s", base ? base + 1 : self_path);
		fd = open(path, O_RDONLY);
	}
	CHECK(fd >= 0, "cannot open the program's own file %s", self_path);
	return fd;
}

static void t_sigbus_file(void)
{
	int fd = open_self();
	off_t size = lseek(fd, 0, SEEK_END);
	CHECK(size > 0, "lseek");
	size_t len = ((size_t)size + 4 * PAGE) & ~(PAGE - 1);
	unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(m != MAP_FAILED, "mmap file");
	handle(SIGBUS, map_anon_over, 0);
	volatile unsigned char *past = m + len - PAGE + 9;
	CHECK(*past == 0, "the page mapped past the end reads %d", *past);
	CHECK(got == SIGBUS && got_count == 1, "handler: signal %d, %d times", got, got_count);
	CHECK(got_code == BUS_ADRERR, "si_code %d, expected BUS_ADRERR", got_code);
	CHECK(got_addr == (void *)past, "si_addr %p, expected %p", got_addr, (void *)past);
}

/* SIGILL and SIGFPE: the handler steps over the instruction by editing the
 * saved RIP, which rt_sigreturn restores. */
static void skip2(int sig, siginfo_t *si, void *ucv)
{
	record(sig, si, ucv);
	ucontext_t *uc = ucv;
	uc->uc_mcontext.gregs[REG_RIP] += 2;
	uc->uc_mcontext.gregs[REG_RAX] = 1234; /* the register comes back */
}

static void t_sigill_sigfpe(void)
{
	handle(SIGILL, skip2, 0);
	handle(SIGFPE, skip2, 0);
	long rax;
	void *ud2_at;
	__asm__ volatile("lea 1f(%%rip), %1\n"
			 "xor %%eax, %%eax\n"
			 "1: ud2\n"
			 : "=a"(rax), "=r"(ud2_at));
	CHECK(got == SIGILL && got_code == ILL_ILLOPN, "ud2: signal %d code %d", got, got_code);
	CHECK(got_addr == ud2_at, "ud2: si_addr %p, expected %p", got_addr, ud2_at);
	CHECK(rax == 1234, "RAX set in the handler did not come back: %ld", rax);
	reset_record();
	unsigned int q = 7, zero = 0;
	__asm__ volatile("xor %%edx, %%edx\n"
			 "div %%ecx\n" /* f7 f1: two bytes */
			 : "+a"(q)
			 : "c"(zero)
			 : "rdx");
	CHECK(got == SIGFPE && got_code == FPE_INTDIV, "div 0: signal %d code %d", got, got_code);
	CHECK(q == 1234, "RAX after the skipped div %u", q);
}

/* int3: SIGTRAP, reported after the instruction (a trap, not a fault). */
static volatile uintptr_t trap_rip;
static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	record(sig, si, ucv);
	trap_rip = ((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
}

static void t_sigtrap(void)
{
	handle(SIGTRAP, on_trap, 0);
	void *after;
	__asm__ volatile("lea 1f(%%rip), %0\n"
			 "int3\n"
			 "1:\n"
			 : "=r"(after));
	CHECK(got == SIGTRAP && got_count == 1, "int3: signal %d, %d times", got, got_count);
	CHECK(got_code == SI_KERNEL, "int3: si_code %#x, expected SI_KERNEL", got_code);
	CHECK(trap_rip == (uintptr_t)after, "saved RIP %#lx, expected %p", (unsigned long)trap_rip,
	      after);
}

static void t_sigtrap_default(void)
{
	__asm__ volatile("int3");
	fail("survived int3");
}

/* The handler's FPU state is fresh, the interrupted one comes back. */
static volatile double handler_result;
static void fpu_handler(int sig, siginfo_t *si, void *ucv)
{
	record(sig, si, ucv);
	volatile double x = 1.5;
	for (int i = 0; i < 10; i++)
		x = x * 3.25 + 0.125;
	handler_result = x;
	ucontext_t *uc = ucv;
	if (!uc->uc_mcontext.fpregs || ((uintptr_t)uc->uc_mcontext.fpregs & 15))
		_exit(44);
	/* MXCSR as the interrupted code had it (the default 0x1f80, bit 5 masked). */
	if ((uc->uc_mcontext.fpregs->mxcsr & 0xffc0) != 0x1f80)
		_exit(45);
}

static void t_fpu_preserved(void)
{
	handle(SIGUSR1, fpu_handler, 0);
	/* xmm7 holds a value across a kill(self) system call, during whose
	 * return the handler runs (with a fresh FPU). */
	double in = 2.718281828, out = 0;
	long pid = getpid();
	__asm__ volatile("movsd %[in], %%xmm7\n"
			 "mov $62, %%eax\n"
			 "mov %[pid], %%rdi\n"
			 "mov $10, %%esi\n"
			 "syscall\n"
			 "movsd %%xmm7, %[out]\n"
			 : [out] "=m"(out)
			 : [in] "m"(in), [pid] "r"(pid)
			 : "rax", "rdi", "rsi", "rcx", "r11", "xmm7", "memory");
	CHECK(got_count == 1, "handler did not run");
	CHECK(out == in, "xmm7 %f after the handler, expected %f", out, in);
	CHECK(handler_result > 1000, "handler's float math %f", handler_result);
}

static void t_sigchld(void)
{
	handle(SIGCHLD, record, 0);
	sigset_t s, old;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	sigprocmask(SIG_BLOCK, &s, &old);
	pid_t child = fork();
	if (child == 0)
		_exit(7);
	CHECK(child > 0, "fork");
	while (!got)
		sigsuspend(&old);
	CHECK(got == SIGCHLD && got_pid == child, "SIGCHLD si_pid %d, child %d", got_pid, child);
	CHECK(got_code == CLD_EXITED && got_status == 7, "SIGCHLD code %d status %d", got_code,
	      got_status);
	int st;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 7, "waitpid");
	/* Killed child: CLD_KILLED with the signal. */
	reset_record();
	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	kill(child, SIGTERM);
	while (!got)
		sigsuspend(&old);
	CHECK(got_code == CLD_KILLED && got_status == SIGTERM, "killed: code %d status %d",
	      got_code, got_status);
	waitpid(child, &st, 0);
	/* Default SIGCHLD is ignored: nothing happens, wait still works. */
	sigprocmask(SIG_SETMASK, &old, NULL);
	set_disposition(SIGCHLD, SIG_DFL);
	child = fork();
	if (child == 0)
		_exit(3);
	CHECK(waitpid(child, &st, 0) == child && WEXITSTATUS(st) == 3, "waitpid after SIG_DFL");
}

static void exit_42(int sig)
{
	(void)sig;
	_exit(42);
}

/* kill of a child, default actions, wait statuses. */
static void t_kill_child(void)
{
	handle(SIGUSR1, record, 0);
	struct {
		int sig;
		int handler; /* 0: default, 1: handler exits 42, 2: ignored */
		int want_sig; /* the status: killed by this, or 0 */
		int want_exit;
	} rows[] = {
		{SIGTERM, 0, SIGTERM, 0}, {SIGKILL, 0, SIGKILL, 0}, {SIGINT, 0, SIGINT, 0},
		{SIGUSR2, 0, SIGUSR2, 0}, {SIGQUIT, 0, SIGQUIT, 0}, {SIGSEGV, 0, SIGSEGV, 0},
		{SIGUSR1, 1, 0, 42},	  {SIGTERM, 2, 0, 9},	    {SIGCHLD, 0, 0, 9},
		{SIGWINCH, 0, 0, 9},	  {SIGRTMIN + 1, 0, SIGRTMIN + 1, 0},
	};
	/* sent[0]: the parent's kill() returned. */
	volatile int *sent = shared_page();
	for (unsigned i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		sent[0] = 0;
		pid_t child = fork();
		CHECK(child >= 0, "fork");
		if (child == 0) {
			if (rows[i].handler == 1)
				set_disposition(rows[i].sig, exit_42);
			if (rows[i].handler == 2)
				set_disposition(rows[i].sig, SIG_IGN);
			/* Tell the parent we are ready, then wait until its kill()
			 * returned (not a fixed time: a parent held up longer
			 * than that would find the child gone with exit 9), and
			 * make one more system call: a signal that acts is
			 * delivered on its way back at the latest. Still here:
			 * it was ignored, exit 9 (after 30 s in any case). */
			kill(getppid(), SIGUSR1);
			for (int t = 0; t < 3000 && !sent[0]; t++)
				sleep_ms(10);
			getppid();
			_exit(9);
		}
		while (!got)
			sleep_ms(1);
		got = 0;
		CHECK(kill(child, rows[i].sig) == 0, "kill(%d): %s", rows[i].sig, strerror(errno));
		sent[0] = 1;
		int st;
		CHECK(waitpid(child, &st, 0) == child, "waitpid");
		if (rows[i].want_sig)
			CHECK(WIFSIGNALED(st) && WTERMSIG(st) == rows[i].want_sig,
			      "signal %d: status %#x, expected death by %d", rows[i].sig, st,
			      rows[i].want_sig);
		else
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == rows[i].want_exit,
			      "signal %d: status %#x, expected exit %d", rows[i].sig, st,
			      rows[i].want_exit);
		if (rows[i].sig == SIGTERM || rows[i].sig == SIGINT)
			CHECK(!WCOREDUMP(st), "core bit for signal %d", rows[i].sig);
	}
	/* A reaped child is gone. */
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	CHECK(kill(child, SIGTERM) < 0 && errno == ESRCH, "kill of a reaped child: not ESRCH");
}

/* Stop and continue: WUNTRACED, WCONTINUED, SIGCHLD codes, signals held
 * while stopped. */
static void t_stop_cont(void)
{
	handle(SIGCHLD, record, SA_RESTART);
	pid_t c = fork();
	if (c == 0) {
		/* After SIGCONT it waits for SIGUSR1, so the parent sees the
		 * continue before the exit (an exit would supersede it). */
		handle(SIGUSR1, record, 0);
		raise(SIGSTOP);
		while (got != SIGUSR1)
			sleep_ms(1);
		_exit(7);
	}
	int st;
	CHECK(waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP,
	      "waitpid(WUNTRACED): status %#x", st);
	while (!got)
		sleep_ms(1);
	CHECK(got == SIGCHLD && got_code == CLD_STOPPED && got_status == SIGSTOP,
	      "SIGCHLD for the stop: code %d status %d", got_code, got_status);
	CHECK(waitpid(c, &st, WNOHANG | WUNTRACED) == 0, "the stop was reported twice");
	reset_record();
	CHECK(kill(c, SIGCONT) == 0, "kill(SIGCONT)");
	CHECK(waitpid(c, &st, WCONTINUED) == c && WIFCONTINUED(st),
	      "waitpid(WCONTINUED): status %#x", st);
	CHECK(kill(c, SIGUSR1) == 0, "kill(SIGUSR1)");
	CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 7,
	      "after SIGCONT: status %#x", st);
	/* SIGTSTP stops too; a SIGTERM sent meanwhile waits for SIGCONT. */
	c = fork();
	if (c == 0) {
		raise(SIGTSTP);
		_exit(8);
	}
	CHECK(waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP,
	      "SIGTSTP: status %#x", st);
	kill(c, SIGTERM);
	sleep_ms(20);
	CHECK(waitpid(c, &st, WNOHANG) == 0, "a stopped process died of SIGTERM");
	kill(c, SIGCONT);
	CHECK(waitpid(c, &st, 0) == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
	      "after SIGCONT the pending SIGTERM: status %#x", st);
	/* A sleep, a pause and a wait4 go on after a stop and SIGCONT (no
	 * handler ran: they restart, no EINTR). The grandchild the wait4
	 * waits for exits only when told (step[0] = 2), after the second
	 * stop: with a fixed 150 ms, a parent held up 50 ms found the child
	 * already gone instead of stopped. */
	volatile int *step = shared_page();
	c = fork();
	if (c == 0) {
		struct timespec ts = {0, 200 * 1000000};
		if (nanosleep(&ts, NULL) != 0)
			_exit(10);
		pid_t g = fork();
		if (g == 0) {
			for (int t = 0; t < 3000 && step[0] != 2; t++)
				sleep_ms(10);
			_exit(0);
		}
		step[0] = 1;
		int gst;
		if (waitpid(g, &gst, 0) != g)
			_exit(11);
		_exit(0);
	}
	sleep_ms(50);
	kill(c, SIGSTOP);
	CHECK(waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st), "stop in nanosleep: %#x", st);
	kill(c, SIGCONT);
	/* Until the child is in its wait4 (asleep, past step 1). */
	for (int t = 0; t < 3000 && !(step[0] == 1 && asleep(c)); t++)
		sleep_ms(10);
	kill(c, SIGSTOP);
	CHECK(waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st), "stop in wait4: %#x", st);
	kill(c, SIGCONT);
	step[0] = 2;
	CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "nanosleep or wait4 failed after a stop: status %#x", st);
	/* SIGKILL ends a stopped process. */
	c = fork();
	if (c == 0) {
		raise(SIGSTOP);
		_exit(9);
	}
	waitpid(c, &st, WUNTRACED);
	kill(c, SIGKILL);
	CHECK(waitpid(c, &st, 0) == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	      "SIGKILL on a stopped process: status %#x", st);
}

static void t_kill_self_default(void)
{
	/* raise(SIGTERM) with the default action: the parent sees death by
	 * SIGTERM (checked by the case table: expect SIGTERM). */
	raise(SIGTERM);
	fail("survived SIGTERM");
}

static void t_ignore(void)
{
	set_disposition(SIGTERM, SIG_IGN);
	raise(SIGTERM);
	set_disposition(SIGCHLD, SIG_DFL);
	raise(SIGCHLD);
	raise(SIGURG);
}

/* rt_sigreturn on garbage: the process dies by SIGSEGV, nothing else. */
static void garbage_sigreturn(void *sp)
{
	__asm__ volatile("mov %0, %%rsp\n"
			 "mov $15, %%eax\n"
			 "syscall\n"
			 "ud2\n"
			 :
			 : "r"(sp)
			 : "memory");
}

static void t_sigreturn_unmapped(void)
{
	garbage_sigreturn((void *)0x1000); /* nothing mapped there */
}

static void t_sigreturn_bad_rip(void)
{
	static unsigned char frame[4096] __attribute__((aligned(64)));
	memset(frame, 0, sizeof frame);
	/* A ucontext whose RIP is not canonical and whose RSP is garbage. */
	uint64_t *greg = (uint64_t *)(frame + 40);
	greg[REG_RIP] = 0x8000000000001234ull;
	greg[REG_RSP] = 0xdeadbeef;
	greg[REG_EFL] = ~0ull;
	garbage_sigreturn(frame);
}

static void t_sigreturn_random(void)
{
	/* Random bytes (fixed seed), several times, each in its own child:
	 * each child must die by a signal or exit, never hang the system. */
	unsigned long seed = 12345;
	for (int round = 0; round < 16; round++) {
		pid_t child = fork();
		if (child == 0) {
			static unsigned char frame[2048] __attribute__((aligned(64)));
			for (size_t i = 0; i < sizeof frame; i++) {
				seed = seed * 6364136223846793005ul + 1442695040888963407ul;
				frame[i] = seed >> 56;
			}
			/* With a few points aimed at real memory. */
			if (round & 1)
				((uint64_t *)(frame + 40))[REG_RSP] = (uintptr_t)(frame + 1024);
			garbage_sigreturn(frame);
			_exit(0);
		}
		int st;
		CHECK(waitpid(child, &st, 0) == child, "waitpid");
		CHECK(WIFSIGNALED(st) || WIFEXITED(st), "round %d: status %#x", round, st);
		seed += round;
	}
}

/* EINTR: a signal interrupts nanosleep and wait4. */
static void nop_handler(int sig, siginfo_t *si, void *uc)
{
	record(sig, si, uc);
}

/* A child that sends sig to this process after ms, and only once this
 * process is asleep (in the call the signal must interrupt: sent before
 * the call, the handler runs first and the call waits its full time, or
 * for ever). */
static volatile int *poke_done; /* if set: [0] = 1 once the poke was sent */

static pid_t poke_parent_after(int ms, int sig)
{
	pid_t parent = getpid();
	pid_t child = fork();
	if (child == 0) {
		sleep_ms(ms);
		for (int t = 0; t < 3000 && !asleep(parent); t++)
			sleep_ms(10);
		kill(parent, sig);
		if (poke_done)
			poke_done[0] = 1;
		_exit(0);
	}
	return child;
}

static void t_eintr(void)
{
	handle(SIGUSR1, nop_handler, 0);
	pid_t poker = poke_parent_after(50, SIGUSR1);
	struct timespec ts = {10, 0}, rem = {0, 0};
	errno = 0;
	int r = nanosleep(&ts, &rem);
	CHECK(r < 0 && errno == EINTR, "nanosleep: %d %s, expected EINTR", r, strerror(errno));
	CHECK(got_count == 1, "handler ran %d times", got_count);
	CHECK(rem.tv_sec > 5 && rem.tv_sec <= 10, "rem %ld s", (long)rem.tv_sec);
	waitpid(poker, NULL, 0);
	/* wait4 for a child that will not exit soon. */
	pid_t sleeper = fork();
	if (sleeper == 0) {
		for (;;)
			pause();
	}
	reset_record();
	poker = poke_parent_after(50, SIGUSR1);
	int st;
	errno = 0;
	r = waitpid(sleeper, &st, 0);
	CHECK(r < 0 && errno == EINTR, "waitpid: %d %s, expected EINTR", r, strerror(errno));
	CHECK(got_count == 1, "handler ran %d times", got_count);
	/* pause() returns EINTR after a handler. */
	reset_record();
	waitpid(poker, NULL, 0);
	poker = poke_parent_after(30, SIGUSR1);
	errno = 0;
	r = pause();
	CHECK(r < 0 && errno == EINTR && got_count == 1, "pause: %d %s", r, strerror(errno));
	waitpid(poker, NULL, 0);
	kill(sleeper, SIGKILL);
	CHECK(waitpid(sleeper, &st, 0) == sleeper && WTERMSIG(st) == SIGKILL, "sleeper");
}

static void t_sa_restart(void)
{
	/* With SA_RESTART, wait4 resumes after the handler. */
	handle(SIGUSR1, nop_handler, SA_RESTART);
	/* The child exits only once the poke was sent (after 150 ms at the
	 * least): with a time alone, a poker held up longer came after the
	 * exit, and the handler had not run when wait4 returned. */
	poke_done = shared_page();
	pid_t late = fork();
	if (late == 0) {
		sleep_ms(150);
		for (int t = 0; t < 3000 && !poke_done[0]; t++)
			sleep_ms(10);
		_exit(5);
	}
	pid_t poker = poke_parent_after(30, SIGUSR1);
	int st;
	pid_t r = waitpid(late, &st, 0);
	CHECK(r == late && WIFEXITED(st) && WEXITSTATUS(st) == 5, "waitpid: %d %s", r,
	      r < 0 ? strerror(errno) : "");
	CHECK(got_count == 1, "handler ran %d times", got_count);
	waitpid(poker, NULL, 0);
}

static void t_sigsuspend(void)
{
	handle(SIGUSR1, record, 0);
	sigset_t s, none, now;
	sigemptyset(&s);
	sigemptyset(&none);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	pid_t poker = poke_parent_after(20, SIGUSR1);
	errno = 0;
	int r = sigsuspend(&none);
	CHECK(r < 0 && errno == EINTR && got_count == 1, "sigsuspend %d %s, handler %d", r,
	      strerror(errno), got_count);
	CHECK(got_blocked_self, "SIGUSR1 not blocked in the handler");
	sigprocmask(SIG_BLOCK, NULL, &now);
	CHECK(sigismember(&now, SIGUSR1), "the mask was not restored after sigsuspend");
	waitpid(poker, NULL, 0);
}

static void t_fork_inherits(void)
{
	handle(SIGUSR1, record, 0);
	sigset_t s, pend;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigprocmask(SIG_BLOCK, &s, NULL);
	raise(SIGUSR2);
	pid_t child = fork();
	if (child == 0) {
		sigpending(&pend);
		if (sigismember(&pend, SIGUSR2))
			_exit(20); /* pending is not inherited */
		if (!blocked_now(SIGUSR2))
			_exit(21); /* the mask is */
		raise(SIGUSR1);
		_exit(got == SIGUSR1 ? 0 : 22); /* and the handler */
	}
	int st;
	waitpid(child, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	sigpending(&pend);
	CHECK(sigismember(&pend, SIGUSR2), "the parent lost its pending SIGUSR2");
	set_disposition(SIGUSR2, SIG_IGN);
}

static void t_exec_resets(void)
{
	handle(SIGUSR1, record, 0);
	set_disposition(SIGUSR2, SIG_IGN);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	sigprocmask(SIG_BLOCK, &s, NULL);
	char *argv[] = {(char *)self_path, "--exec-check", NULL};
	execv(self_path, argv);
	const char *base = strrchr(self_path, '/');
	char path[256];
	snprintf(path, sizeof path, "/bin/%s", base ? base + 1 : self_path);
	argv[0] = path;
	execv(path, argv);
	fail("execv: %s", strerror(errno));
}

static int exec_check(void)
{
	struct sigaction a;
	sigaction(SIGUSR1, NULL, &a);
	if (a.sa_handler != SIG_DFL)
		return 30;
	sigaction(SIGUSR2, NULL, &a);
	if (a.sa_handler != SIG_IGN)
		return 31;
	if (!blocked_now(SIGTERM))
		return 32;
	return 0;
}

static void t_nested(void)
{
	/* A handler interrupted by another signal (nested frames). */
	handle(SIGUSR2, record, 0);
	handle(SIGUSR1, record, 0);
	sigset_t both;
	sigemptyset(&both);
	sigaddset(&both, SIGUSR1);
	sigaddset(&both, SIGUSR2);
	sigprocmask(SIG_BLOCK, &both, NULL);
	raise(SIGUSR2);
	raise(SIGUSR1);
	sigprocmask(SIG_UNBLOCK, &both, NULL);
	CHECK(got_count == 2, "%d handlers ran, expected 2", got_count);
}

static int sigint_read(void)
{
	handle(SIGINT, record, 0);
	say("sigtests: waiting for SIGINT\n");
	char c;
	errno = 0;
	ssize_t r = read(0, &c, 1);
	if (r < 0 && errno == EINTR && got == SIGINT) {
		say("sigtests: read interrupted\n");
		return 0;
	}
	say("sigtests: read returned %zd (%s), handler saw %d\n", r, strerror(errno), got);
	return 1;
}

/* Cost of a getpid and of a signal round trip (kill to self, handler,
 * rt_sigreturn), in nanoseconds each. */
static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int bench(long n)
{
	handle(SIGUSR1, record, 0);
	pid_t me = getpid();
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getpid);
	double t1 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_kill, me, SIGUSR1);
	double t2 = now_ns();
	if (got_count != n) {
		say("sigtests: bench: %d handlers ran for %ld signals\n", got_count, n);
		return 1;
	}
	say("sigtests: bench: getpid %.0f ns, signal round trip %.0f ns (%ld each)\n",
	    (t1 - t0) / n, (t2 - t1) / n, n);
	return 0;
}

/* ---- the table ---- */

static struct testcase cases[] = {
	{"handler-siginfo", t_handler_siginfo, 0, 0},
	{"bad-args", t_bad_args, 0, 0},
	{"mask-blocks", t_mask_blocks, 0, 0},
	{"handler-flags", t_handler_flags, 0, 0},
	{"sigaltstack", t_sigaltstack, 0, 0},
	{"segv-mprotect", t_segv_mprotect, 0, 0},
	{"demand-paging", t_demand_paging, 0, 0},
	{"sigbus-file", t_sigbus_file, 0, 0},
	{"sigill-sigfpe", t_sigill_sigfpe, 0, 0},
	{"sigtrap", t_sigtrap, 0, 0},
	{"sigtrap-default", t_sigtrap_default, SIGTRAP, 0},
	{"fpu-preserved", t_fpu_preserved, 0, 0},
	{"sigchld", t_sigchld, 0, 0},
	{"kill-child", t_kill_child, 0, 0},
	{"stop-cont", t_stop_cont, 0, 0},
	{"kill-self-default", t_kill_self_default, SIGTERM, 0},
	{"ignore", t_ignore, 0, 0},
	{"sigreturn-unmapped", t_sigreturn_unmapped, SIGSEGV, 0},
	{"sigreturn-bad-rip", t_sigreturn_bad_rip, SIGSEGV, 0},
	{"sigreturn-random", t_sigreturn_random, 0, 0},
	{"eintr", t_eintr, 0, 0},
	{"sa-restart", t_sa_restart, 0, 0},
	{"sigsuspend", t_sigsuspend, 0, 0},
	{"fork-inherits", t_fork_inherits, 0, 0},
	{"exec-resets", t_exec_resets, 0, 0},
	{"nested", t_nested, 0, 0},
};
int main(int argc, char **argv)
{
	self_path = argv[0];
	if (argc == 2 && strcmp(argv[1], "--exec-check") == 0)
		return exec_check();
	if (argc == 2 && strcmp(argv[1], "--sigint-read") == 0)
		return sigint_read();
	if (argc == 3 && strcmp(argv[1], "--bench") == 0)
		return bench(atol(argv[2]) > 0 ? atol(argv[2]) : 1);
	if (argc == 3 && strcmp(argv[1], "--raise") == 0) {
		raise(atoi(argv[2]));
		return 0;
	}
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--skip CASE]... [CASE...] | --sigint-read | --raise N | --bench N",
		.before = reset_record,
	};
	return run_suite(&suite, argc, argv);
}

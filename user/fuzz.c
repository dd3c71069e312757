/*
 * fuzz: Ferrite's system-call fuzzer.
 *
 * Usage: fuzz [-s SEED] [-n CALLS] [-b BATCH] [-r BATCHNO] [-v] [-t] [-k] [-q]
 *   -s SEED     PRNG seed (default 1); the same seed makes the same choices
 *   -n CALLS    stop after this many random calls (default 20000)
 *   -b BATCH    calls per child process (default 100)
 *   -r BATCHNO  run only batch BATCHNO (to reproduce a failure); implies -v
 *   -v          log every call of every batch and its result (through the
 *               parent, after the batch ends)
 *   -t          trace: the child writes each call to fd 1 *before* making
 *               it (it keeps fd 1 open; fuzzed calls never get fd 1), so
 *               the call that panics a kernel is the last line printed
 *   -k          keep going after an invariant violation (each is printed;
 *               the exit status is still 1)
 *   -q          no progress lines
 *
 * The parent runs batches until CALLS calls are done.  Each batch is a
 * forked child that makes BATCH random system calls, so a child that
 * unmaps its own stack, faults or is killed for lack of memory costs
 * nothing but that batch.  The child's choices come from a splitmix64
 * stream seeded with (SEED, batch number): a batch is reproducible on its
 * own with -r.
 *
 * The calls: the system calls Ferrite implements (read, write, open,
 * openat, close, lseek, readv, writev, mmap, mprotect, munmap, mremap,
 * madvise, brk, rt_sigaction (SIG_DFL, SIG_IGN or a handler that counts,
 * never for a fault signal), rt_sigprocmask, kill, tkill and tgkill (only
 * to the child itself or to pids and groups that cannot exist, never a stop
 * signal or SIGKILL), sigaltstack, rt_sigpending, rt_sigsuspend (always
 * with a bad size: it never waits), rt_sigreturn (a random frame whose RIP
 * cannot run: the child dies of SIGSEGV), ioctl, sched_yield,
 * nanosleep (never more than 10 ms), getpid, gettid, getppid,
 * set_tid_address, fork, vfork, clone (the new process exits at once;
 * also threads with musl's pthread_create flags, which exit at once),
 * futex (WAIT, WAKE, REQUEUE, CMP_REQUEUE and the BITSET forms, waits
 * never longer than 10 ms),
 * execve (never with a path that could run), wait4 (always WNOHANG),
 * uname, arch_prctl (the FS base is always restored), clock_gettime,
 * clock_getres, gettimeofday, time, clock_nanosleep (never more than
 * 10 ms, absolute times always past),
 * pipe and pipe2 (a pipe that would block is closed at once: only
 * O_NONBLOCK pipes join the descriptors later calls use), poll, ppoll,
 * select and pselect6 (never a timeout over 10 ms, never an infinite
 * one), and the process and machine calls: getrlimit, prlimit64, getrandom,
 * sysinfo, the identity calls, set/get_robust_list, rseq, sched_get/
 * setaffinity, getcpu, get/setpriority, mincore, mlock, mlock2, munlock,
 * mlockall (never populating everything), munlockall, prctl), the
 * queued-signal, timer and group calls (rt_sigqueueinfo,
 * rt_tgsigqueueinfo, rt_sigtimedwait of at most 10 ms, alarm, setitimer,
 * getitimer, setpgid, getpgid, getpgrp, setsid, getsid, kill of the
 * child's own group) and
 * unknown numbers 512..1099 (ENOSYS on Linux x86_64 too: 512..547 are
 * x32-only and need the x32 bit).  Arguments come from nasty sets: 0, 1,
 * -1, the child's own mappings (a table of what mmap/mremap/brk
 * returned), their ends, unaligned addresses, kernel addresses,
 * non-canonical ones, huge lengths (2^63, 2^64-4096, 2^64-1) and random
 * flag bits.
 *
 * Invariant, checked after every call: an address mmap, mremap or brk
 * returns on success lies in user space (below 0x0000800000000000), and
 * for mmap and a moving mremap at or above the minimum mmap address
 * (Ferrite's USER_MIN, 0x10000; on Linux /proc/sys/vm/mmap_min_addr).  A violation
 * prints "fuzz: INVARIANT VIOLATED ..." with the seed, batch, call index
 * and the call, and the fuzzer exits 1.
 *
 * Run natively on Linux (user/run-host-tests.sh does), the child first
 * drops root (uid/gid 65534), limits its address space and closes every
 * file descriptor, and the argument sets leave out what could harm the
 * host (write access to files, O_CREAT outside the scratch directory
 * (mkdtemp under /tmp, removed at the end: the only place the file-system
 * calls create, rename or remove anything), MAP_POPULATE/MAP_LOCKED,
 * MADV_HWPOISON and friends, unknown ioctls, namespace clone flags).
 *
 * Output: progress lines "fuzz: N/CALLS calls ...", then
 * "fuzz: done: N calls, B batches, seed S, ...".  Exit 0, or 1 on a
 * failure (printed with the seed and the last call).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

#define PAGE 4096ul
#define USER_END 0x0000800000000000ul
#define KERNEL_ADDR 0xffff888000000000ul
#define KERNEL_TEXT 0xffffffff80000000ul
#define SHARED_HINT 0x300000000000ul /* the parent's shared pages: 48 TiB */

typedef unsigned long u64;

/* ------------------------------------------------------------------ */
/* Raw system calls: no errno, no TLS (the FS base may be wrong for a
 * moment), no libc wrappers with their own ideas. */

static long raw6(long nr, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5)
{
	register u64 r10 __asm__("r10") = a3;
	register u64 r8 __asm__("r8") = a4;
	register u64 r9 __asm__("r9") = a5;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* fork, vfork, clone: the new process exits at once, touching nothing
 * (not even the stack, which it may share with us). */
static long raw_spawn(long nr, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4)
{
	register u64 r10 __asm__("r10") = a3;
	register u64 r8 __asm__("r8") = a4;
	long ret;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "mov $60, %%eax\n\t"
			 "xor %%edi, %%edi\n\t"
			 "syscall\n\t"
			 "ud2\n"
			 "1:"
			 : "=a"(ret)
			 : "0"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
}

/* ------------------------------------------------------------------ */
/* splitmix64: small, fast, and every seed gives a good stream. */

static u64 rng_state;

static u64 rnd(void)
{
	u64 z = (rng_state += 0x9e3779b97f4a7c15ul);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ul;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebul;
	return z ^ (z >> 31);
}

/* A number in [0, n). */
static u64 below(u64 n)
{
	return n ? rnd() % n : 0;
}

static int chance(int percent)
{
	return (int)below(100) < percent;
}

/* ------------------------------------------------------------------ */
/* State shared between the parent and a batch child. */

#define LOG_SIZE (1u << 20)

struct shared {
	u64 seed;
	long batch;
	long call;          /* index of the call being made */
	long calls_done;    /* random calls completed in this batch */
	u64 violated;       /* violation_cookie(batch): the report is valid */
	char last[512];     /* the call being made */
	char violation[512];
	unsigned log_len;   /* -v: the batch's call log */
	char log[LOG_SIZE];
};

static struct shared *sh;

static u64 violation_cookie(long batch)
{
	return 0x56494f4c41544544ul ^ (u64)batch;
}
static int verbose;
static int trace;
static int keep_going;
static int on_ferrite;
static u64 min_mmap = 0x10000; /* Ferrite's USER_MIN */
static const char *self_path;

static void logf_(const char *fmt, ...)
{
	if (!verbose || sh->log_len >= LOG_SIZE - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(sh->log + sh->log_len, LOG_SIZE - sh->log_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		sh->log_len += (unsigned)n < LOG_SIZE - sh->log_len ? (unsigned)n
								    : LOG_SIZE - 1 - sh->log_len;
}

/* ------------------------------------------------------------------ */
/* The child's view of its own memory: what mmap/mremap returned. */

#define NMAPS 24

struct region {
	u64 start, len;
};

static struct region maps[NMAPS];
static int nmaps;
static u64 cur_brk;
static int fds[16];
static int nfds;
static u64 stack_addr; /* somewhere on our stack */
static u64 text_addr;  /* our own code */
static u64 data_addr;  /* our own data */
static u64 unmapped;   /* a page known to be unmapped at batch start */

static void add_map(u64 start, u64 len)
{
	if (len == 0)
		return;
	if (nmaps < NMAPS) {
		maps[nmaps++] = (struct region){start, len};
	} else {
		maps[below(NMAPS)] = (struct region){start, len};
	}
}

/* After a successful munmap (or the source of a move): forget regions
 * that start inside [start, start+len). */
static void drop_maps(u64 start, u64 len)
{
	for (int i = 0; i < nmaps;) {
		if (maps[i].start >= start && maps[i].start - start < len) {
			maps[i] = maps[--nmaps];
		} else {
			i++;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Nasty values. */

static const u64 huge_lens[] = {
	1ul << 63, ~0ul - PAGE + 1, ~0ul, 1ul << 47, 1ul << 46, 1ul << 40, 1ul << 32,
	0x7ffffffff000ul,
};

static u64 pick_len(void)
{
	switch (below(10)) {
	case 0:
		return 0;
	case 1:
		return 1 + below(PAGE * 2);
	case 2:
		return huge_lens[below(sizeof huge_lens / sizeof huge_lens[0])];
	case 3:
		return (below(1024) + 1) * PAGE; /* up to 4 MiB */
	case 4:
		if (nmaps) {
			/* Crossing the end of a mapping. */
			struct region *r = &maps[below(nmaps)];
			return r->len + (below(4) + 1) * PAGE;
		}
		return PAGE;
	case 5:
		return rnd();
	default:
		return (below(16) + 1) * PAGE;
	}
}

static u64 pick_addr(void)
{
	/* Mostly the child's own mappings (so most batches live long enough
	 * to be useful), otherwise something nasty. */
	switch (nmaps && chance(70) ? 99 : below(16)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return ~0ul;
	case 3:
		return KERNEL_ADDR + below(1 << 20) * PAGE;
	case 4:
		return KERNEL_TEXT;
	case 5:
		return 0x0000800000000000ul - PAGE * below(2);
	case 6:
		return 0x8000000000000000ul;
	case 7:
		return below(0x10) * PAGE; /* below the minimum mmap address */
	case 8:
		return unmapped;
	case 9:
		/* Our own stack, code or data: rarely (the batch ends). */
		if (chance(20))
			return (below(3) == 0 ? stack_addr : below(2) ? text_addr : data_addr) &
			       ~(PAGE - 1);
		return 0x10000;
	case 10:
		return cur_brk + (below(8) - 4) * PAGE;
	case 11:
		return rnd() & 0x00007ffffffff000ul;
	case 12:
		return ~0ul - PAGE + 1;
	default:
		if (nmaps) {
			struct region *r = &maps[below(nmaps)];
			u64 pages = r->len / PAGE;
			u64 a = r->start + below(pages + 1) * PAGE;
			switch (below(8)) {
			case 0:
				return a + 1 + below(PAGE - 1); /* unaligned */
			case 1:
				return r->start - PAGE;
			case 2:
				return r->start + r->len;
			default:
				return a;
			}
		}
		return unmapped;
	}
}

/* A buffer address for the kernel to read or write. */
static u64 pick_buf(void)
{
	if (chance(40) && nmaps) {
		struct region *r = &maps[below(nmaps)];
		return r->start + below(r->len);
	}
	return pick_addr();
}

static int pick_fd(void)
{
	static const int odd[] = {0, 1, 2, -1, 63, 64, 1000, 0x7fffffff};
	if (nfds && chance(60))
		return fds[below(nfds)];
	int fd = odd[below(sizeof odd / sizeof odd[0])];
	return trace && fd == 1 ? 2 : fd; /* fd 1 is the trace */
}

static u64 pick_prot(void)
{
	if (chance(80))
		return below(8);
	return rnd() & (chance(50) ? 0xff : ~0ul);
}

/* ------------------------------------------------------------------ */
/* One random call. */

struct call {
	const char *name;
	long nr;
	u64 a[6];
	int nargs;
};

static void describe(const struct call *c, char *out, size_t size)
{
	int n = snprintf(out, size, "%s(", c->name);
	for (int i = 0; i < c->nargs && n > 0 && (size_t)n < size; i++)
		n += snprintf(out + n, size - n, "%s%#lx", i ? ", " : "", c->a[i]);
	if (n > 0 && (size_t)n < size)
		snprintf(out + n, size - n, ")");
}

static void violated(const struct call *c, long ret, const char *what)
{
	char desc[400];
	describe(c, desc, sizeof desc);
	snprintf(sh->violation, sizeof sh->violation,
		 "seed %lu batch %ld call %ld: %s returned %#lx: %s", sh->seed, sh->batch, sh->call,
		 desc, (u64)ret, what);
	__atomic_store_n(&sh->violated, violation_cookie(sh->batch), __ATOMIC_RELEASE);
	raw6(SYS_exit_group, 99, 0, 0, 0, 0, 0);
}

static const char *const paths[] = {
	"/bin/hello", "/etc/motd", "/", "/nonexistent", "/bin/", "bin/hello", "", "/bin/fuzz/x",
	"/dev/null", "/tmp", "..", ".", "/proc/self/exe",
};

/* File-system calls that change the tree only ever name paths inside
 * the scratch directory main() makes (mkdtemp under /tmp), absolute, so
 * neither the working directory nor a directory descriptor can move
 * them elsewhere; a bad path is a pointer that cannot hold a string. */
static char scratch[64];
static char scratch_paths[6][128];
static const char *const scratch_names[] = {"f0", "f1", "d0", "d0/f0", "d0/d1", "d1"};

static u64 pick_scratch_path(void)
{
	static const u64 bad[] = {0, KERNEL_ADDR, 0x8000000000000000ul, 1};
	if (!scratch[0] || chance(10))
		return bad[below(4)];
	return (u64)scratch_paths[below(6)];
}

static void make_scratch(void)
{
	snprintf(scratch, sizeof scratch, "/tmp/fuzz.XXXXXX");
	if (!mkdtemp(scratch)) {
		scratch[0] = 0;
		return;
	}
	/* The Linux child runs as nobody. */
	chmod(scratch, 0777);
	for (int i = 0; i < 6; i++)
		snprintf(scratch_paths[i], sizeof scratch_paths[i], "%s/%s", scratch, scratch_names[i]);
}

/* Removes everything below `path` (a directory inside the scratch
 * directory; renames may have moved the names around), depth first,
 * never following a link. */
static void remove_tree(const char *path, int depth)
{
	DIR *d = depth < 16 ? opendir(path) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char sub[512];
			snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
			struct stat st;
			if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
				remove_tree(sub, depth + 1);
				rmdir(sub);
			} else {
				unlink(sub);
			}
		}
		closedir(d);
	}
}

static void remove_scratch(void)
{
	if (!scratch[0])
		return;
	remove_tree(scratch, 0);
	if (rmdir(scratch) != 0)
		say("fuzz: scratch directory %s left behind\n", scratch);
}

static u64 pick_path(void)
{
	switch (below(6)) {
	case 0:
		return pick_addr();
	case 1:
		return self_path ? (u64)self_path : (u64)"/bin/fuzz";
	default:
		return (u64)paths[below(sizeof paths / sizeof paths[0])];
	}
}

/* A path execve may be given: nothing that could run. */
static u64 pick_exec_path(void)
{
	static const char *const noexec[] = {"/nonexistent", "/", "/etc/motd", "/bin/", ""};
	switch (below(5)) {
	case 0:
		return KERNEL_ADDR;
	case 1:
		return 0;
	case 2:
		return unmapped;
	case 3:
		return 0x8000000000000000ul;
	default:
		return (u64)noexec[below(sizeof noexec / sizeof noexec[0])];
	}
}

/* A small array of pointers (argv/envp, iovecs) with nasty contents. */
static u64 ptr_array[1100 * 2];
static u64 argv_array[2][9];

static u64 pick_ptr_array(int which)
{
	if (chance(30))
		return pick_addr();
	u64 *arr = argv_array[which];
	u64 n = below(8);
	for (u64 i = 0; i < n; i++)
		arr[i] = chance(50) ? (u64)paths[below(8)] : pick_buf();
	arr[n] = 0;
	return (u64)arr;
}

static u64 pick_iov(u64 *count)
{
	u64 n;
	switch (below(6)) {
	case 0:
		n = 1024;
		break;
	case 1:
		n = 1025;
		break;
	case 2:
		n = rnd();
		break;
	default:
		n = below(8);
	}
	*count = n;
	if (chance(20))
		return pick_addr();
	u64 fill = n > 1100 ? 1100 : n;
	for (u64 i = 0; i < fill; i++) {
		ptr_array[2 * i] = pick_buf();
		ptr_array[2 * i + 1] = chance(50) ? below(PAGE * 2) : pick_len();
	}
	return (u64)ptr_array;
}

static struct timespec ts_small, ts_bad;
/* Words for futex and the thread clone's tid pointers (all 0: a wait on
 * them with value 0 sleeps until its short timeout). */
static unsigned futex_words[3];
/* Linux with vm.mmap_min_addr = 0 lets a batch map page 0: then a NULL
 * timespec is a real one holding any length of time (a sleep forever). */
static int null_mappable;

static u64 pick_timespec(void)
{
	switch (below(6)) {
	case 0:
		ts_small = (struct timespec){0, (long)below(10 * 1000 * 1000)};
		return (u64)&ts_small;
	case 1:
		ts_bad = (struct timespec){(long)below(3) - 1, 1000 * 1000 * 1000 + (long)below(10)};
		return (u64)&ts_bad; /* EINVAL */
	case 2:
		return null_mappable ? KERNEL_ADDR : 0;
	case 3:
		return KERNEL_ADDR;
	default:
		/* Never a page of ours: what it holds could be any length
		 * of time. */
		return 0x8000000000000000ul;
	}
}

/* Linux-safe subsets (Ferrite gets random bits as well). */
#define SAFE_MAP_FLAGS                                                                      \
	(MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_DENYWRITE | \
	 MAP_EXECUTABLE | MAP_STACK | MAP_FIXED_NOREPLACE | MAP_NORESERVE)
#define SAFE_CLONE_FLAGS                                                              \
	(CLONE_VM | CLONE_VFORK | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_SYSVSEM | \
	 CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | CLONE_SETTLS |   \
	 CLONE_THREAD)

static u64 pick_map_flags(void)
{
	u64 f;
	switch (below(8)) {
	case 0:
		f = rnd();
		break;
	case 1:
		f = MAP_SHARED | MAP_ANONYMOUS;
		break;
	case 2:
		f = MAP_PRIVATE | (chance(50) ? MAP_ANONYMOUS : 0);
		break;
	case 3:
		f = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
		break;
	case 4:
		f = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
		break;
	case 5:
		f = (chance(50) ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE |
		    (chance(70) ? MAP_ANONYMOUS : 0);
		break;
	default:
		f = MAP_PRIVATE | MAP_ANONYMOUS;
	}
	/* Overcommit: not charged (and so granted at any size) but in mode 2. */
	if (chance(15))
		f |= MAP_NORESERVE;
	if (!on_ferrite)
		f &= SAFE_MAP_FLAGS;
	return f;
}

static u64 pick_madvice(void)
{
	/* Linux: only advice that neither needs privileges nor populates
	 * (MADV_HWPOISON, MADV_SOFT_OFFLINE, MADV_POPULATE_* left out). */
	static const u64 safe[] = {
		MADV_DONTNEED, MADV_DONTNEED, MADV_DONTNEED, MADV_NORMAL,    MADV_RANDOM,
		MADV_SEQUENTIAL, MADV_WILLNEED, MADV_FREE,   MADV_DONTFORK,  MADV_DOFORK,
		MADV_DONTDUMP,   MADV_DODUMP,   MADV_COLD,   MADV_PAGEOUT,   12345,
	};
	if (on_ferrite && chance(20))
		return chance(50) ? below(128) : rnd();
	return safe[below(sizeof safe / sizeof safe[0])];
}

/* A resource limit for prlimit64/setrlimit: on Linux only lowering ones
 * (RLIMIT_CORE to 0, or a soft limit above the hard: EINVAL), never a
 * raise; on Ferrite anything. */
static u64 rlim_buf[2];

static u64 pick_new_rlimit(void)
{
	if (chance(30))
		return chance(50) || !on_ferrite ? 0 : pick_buf();
	if (!on_ferrite) {
		rlim_buf[0] = chance(50) ? 0 : 2;
		rlim_buf[1] = chance(50) ? 0 : 1;
		return (u64)rlim_buf;
	}
	rlim_buf[0] = chance(50) ? ~0ul : (chance(50) ? pick_len() : below(64) * PAGE * 1024);
	rlim_buf[1] = chance(70) ? ~0ul : pick_len();
	return (u64)rlim_buf;
}

/* The process and machine calls (Ferrite's syscall/system.rs and the
 * mincore/mlock family).  On Linux: no limit raised, no id changed (only
 * -1 "unchanged"), affinity and priority of this process alone, no page
 * locked (mlock only with invalid flags, munlock), prctl only the name and
 * dumpable options. */
#define SET(n, nrv, cnt) (c->name = (n), c->nr = (nrv), c->nargs = (cnt))
static void make_sys_call(struct call *c)
{
	u64 *a = c->a;
	static const u64 resources[] = {RLIMIT_AS,     RLIMIT_DATA, RLIMIT_STACK, RLIMIT_NOFILE,
					RLIMIT_MEMLOCK, RLIMIT_CORE, 16,          99};
	switch (below(16)) {
	case 0:
		SET("getrlimit", SYS_getrlimit, 2);
		a[0] = resources[below(8)];
		a[1] = pick_buf();
		break;
	case 1:
		SET("prlimit64", SYS_prlimit64, 4);
		a[0] = chance(70) ? 0 : (chance(50) ? (u64)getpid() : below(1 << 16));
		a[1] = on_ferrite || chance(50) ? resources[below(8)] : RLIMIT_CORE;
		a[2] = on_ferrite || a[1] == RLIMIT_CORE ? pick_new_rlimit() : 0;
		if (!on_ferrite && a[0] != 0 && a[0] != (u64)getpid())
			a[2] = 0; /* another process's limits: read only */
		a[3] = chance(50) ? 0 : pick_buf();
		break;
	case 2:
		SET("getrandom", SYS_getrandom, 3);
		a[0] = pick_buf();
		a[1] = chance(70) ? below(4 * PAGE) : pick_len();
		a[2] = chance(80) ? below(8) : rnd();
		break;
	case 3:
		SET("sysinfo", SYS_sysinfo, 1);
		a[0] = pick_buf();
		break;
	case 4: {
		static const struct {
			const char *n;
			long nr;
		} ids[] = {{"getuid", SYS_getuid},   {"geteuid", SYS_geteuid},
			   {"getgid", SYS_getgid},   {"getegid", SYS_getegid},
			   {"getresuid", SYS_getresuid}, {"getresgid", SYS_getresgid},
			   {"getgroups", SYS_getgroups}};
		int i = (int)below(7);
		SET(ids[i].n, ids[i].nr, 3);
		a[0] = chance(50) ? below(70000) : pick_buf();
		a[1] = pick_buf();
		a[2] = pick_buf();
		break;
	}
	case 5: {
		static const struct {
			const char *n;
			long nr;
			int nargs;
		} sets[] = {{"setuid", SYS_setuid, 1},       {"setgid", SYS_setgid, 1},
			    {"setreuid", SYS_setreuid, 2},   {"setregid", SYS_setregid, 2},
			    {"setresuid", SYS_setresuid, 3}, {"setresgid", SYS_setresgid, 3},
			    {"setfsuid", SYS_setfsuid, 1},   {"setgroups", SYS_setgroups, 2}};
		int i = (int)below(8);
		SET(sets[i].n, sets[i].nr, sets[i].nargs);
		for (int j = 0; j < 3; j++)
			a[j] = on_ferrite ? (chance(50) ? below(3) : (chance(50) ? ~0ul : rnd()))
					  : ~0ul; /* Linux: "unchanged" only */
		if (sets[i].nr == SYS_setgroups) {
			a[0] = on_ferrite ? below(4) : 0;
			a[1] = pick_buf();
			if (!on_ferrite)
				c->nr = SYS_getgroups; /* never set groups on the host */
		} else if (!on_ferrite && sets[i].nargs == 1) {
			c->nr = SYS_getuid; /* setuid(-1) is EINVAL but pointless */
		}
		break;
	}
	case 6:
		SET("set_robust_list", SYS_set_robust_list, 2);
		a[0] = pick_buf();
		a[1] = chance(70) ? 24 : pick_len();
		break;
	case 7:
		SET("get_robust_list", SYS_get_robust_list, 3);
		a[0] = chance(70) ? 0 : below(1 << 16);
		a[1] = pick_buf();
		a[2] = pick_buf();
		break;
	case 8:
		SET("rseq", SYS_rseq, 4);
		a[0] = chance(50) ? (pick_buf() & ~31ul) : pick_buf();
		a[1] = chance(60) ? 32 : below(80);
		a[2] = chance(70) ? below(2) : rnd();
		a[3] = chance(70) ? 0x53053053 : rnd();
		break;
	case 9:
		SET("sched_getaffinity", SYS_sched_getaffinity, 3);
		a[0] = chance(70) ? 0 : below(1 << 16);
		a[1] = chance(70) ? 8 * below(20) : pick_len();
		a[2] = pick_buf();
		break;
	case 10:
		SET("sched_setaffinity", SYS_sched_setaffinity, 3);
		a[0] = on_ferrite && chance(30) ? below(1 << 16) : 0;
		a[1] = chance(70) ? 8 * below(20) : pick_len();
		a[2] = pick_buf();
		break;
	case 11:
		SET("getcpu", SYS_getcpu, 3);
		a[0] = chance(30) ? 0 : pick_buf();
		a[1] = chance(30) ? 0 : pick_buf();
		a[2] = chance(70) ? 0 : pick_buf();
		break;
	case 12:
		if (chance(50)) {
			SET("getpriority", SYS_getpriority, 2);
			a[0] = chance(80) ? below(3) : rnd();
			a[1] = chance(50) ? 0 : below(1 << 16);
		} else {
			SET("setpriority", SYS_setpriority, 3);
			a[0] = on_ferrite ? below(4) : 0; /* Linux: this process only */
			a[1] = on_ferrite && chance(30) ? below(1 << 16) : 0;
			a[2] = chance(80) ? below(40) - 20 : rnd();
		}
		break;
	case 13:
		SET("mincore", SYS_mincore, 3);
		a[0] = pick_addr();
		a[1] = chance(60) ? below(64) * PAGE + below(2) : pick_len();
		a[2] = pick_buf();
		break;
	case 14:
		switch (below(5)) {
		case 0:
			SET("mlock", SYS_mlock, 2);
			break;
		case 1:
			SET("mlock2", SYS_mlock2, 3);
			a[2] = chance(50) ? 1 /* MLOCK_ONFAULT */ : rnd();
			break;
		case 2:
			SET("munlock", SYS_munlock, 2);
			break;
		case 3:
			SET("mlockall", SYS_mlockall, 1);
			/* Ferrite: never MCL_CURRENT, nor MCL_FUTURE, without
			 * MCL_ONFAULT (they would fault in every region, or every
			 * later one, some of them huge). */
			a[0] = chance(50) ? 6 : (rnd() | 8);
			break;
		default:
			SET("munlockall", SYS_munlockall, 0);
		}
		if (c->nr != SYS_mlockall) {
			a[0] = pick_addr();
			/* Short: mlock faults every page in. */
			a[1] = below(64) * PAGE + below(2);
		}
		if (!on_ferrite) {
			/* Linux: never lock a page; invalid flags (EINVAL) only. */
			if (c->nr == SYS_mlock)
				c->nr = SYS_munlock;
			if (c->nr == SYS_mlock2)
				a[2] |= 2;
			if (c->nr == SYS_mlockall)
				a[0] = 8;
		}
		break;
	default:
		SET("prctl", SYS_prctl, 5);
		if (on_ferrite && chance(30))
			a[0] = chance(50) ? below(80) : rnd();
		else
			a[0] = (u64[]){3, 4, 15, 16, 9999}[below(5)];
		a[1] = a[0] == 4 ? below(3) : pick_buf();
		break;
	}
}
#undef SET
/* The file-system calls (issue 13): descriptors, paths, stat. Calls that
 * change the tree name only scratch paths (pick_scratch_path). */
static void make_fs_call(struct call *c)
{
	u64 *a = c->a;
#define SET(n, nrv, cnt) (c->name = (n), c->nr = (nrv), c->nargs = (cnt))
	static const u64 fcntl_cmds[] = {F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC, 9999};
	u64 dirfd = (u64)(long)(chance(50) ? AT_FDCWD : pick_fd());
	switch (below(30)) {
	case 0:
		SET("pread64", SYS_pread64, 4);
		a[0] = (u64)(long)pick_fd(), a[1] = pick_buf(), a[2] = pick_len();
		a[3] = chance(70) ? below(1 << 16) : rnd();
		break;
	case 1:
		SET("pwrite64", SYS_pwrite64, 4);
		a[0] = (u64)(long)pick_fd(), a[1] = pick_buf(), a[2] = pick_len();
		a[3] = chance(70) ? below(1 << 16) : rnd();
		break;
	case 2:
		SET("stat", below(2) ? SYS_stat : SYS_lstat, 2);
		a[0] = pick_path(), a[1] = pick_buf();
		break;
	case 3:
		SET("fstat", SYS_fstat, 2);
		a[0] = (u64)(long)pick_fd(), a[1] = pick_buf();
		break;
	case 4:
		SET("newfstatat", SYS_newfstatat, 4);
		a[0] = dirfd, a[1] = pick_path(), a[2] = pick_buf();
		a[3] = chance(70) ? (below(2) ? 0x100 : 0x1000) : rnd();
		break;
	case 5:
		SET("statx", SYS_statx, 5);
		a[0] = dirfd, a[1] = pick_path(), a[2] = chance(70) ? 0 : rnd() & 0xffff;
		a[3] = chance(70) ? 0x7ff : rnd(), a[4] = pick_buf();
		break;
	case 6:
		SET("getdents64", SYS_getdents64, 3);
		a[0] = (u64)(long)pick_fd(), a[1] = pick_buf(), a[2] = pick_len();
		break;
	case 7:
		SET("mkdir", SYS_mkdir, 2);
		/* The owner may always remove and list what it made. */
		a[0] = pick_scratch_path(), a[1] = below(01000) | 0700;
		break;
	case 8:
		SET("mkdirat", SYS_mkdirat, 3);
		a[0] = dirfd, a[1] = pick_scratch_path(), a[2] = below(01000) | 0700;
		break;
	case 9:
		SET(below(2) ? "unlink" : "rmdir", 0, 1);
		c->nr = c->name[0] == 'u' ? SYS_unlink : SYS_rmdir;
		a[0] = pick_scratch_path();
		break;
	case 10:
		SET("unlinkat", SYS_unlinkat, 3);
		a[0] = dirfd, a[1] = pick_scratch_path(), a[2] = chance(70) ? 0x200 * below(2) : rnd();
		break;
	case 11:
		SET("renameat2", SYS_renameat2, 5);
		a[0] = dirfd, a[1] = pick_scratch_path(), a[2] = dirfd, a[3] = pick_scratch_path();
		a[4] = chance(70) ? below(2) : rnd() & 7;
		break;
	case 12:
		SET(below(2) ? "rename" : "renameat", 0, 4);
		c->nr = c->name[6] == 'a' ? SYS_renameat : SYS_rename;
		if (c->nr == SYS_rename)
			a[0] = pick_scratch_path(), a[1] = pick_scratch_path();
		else
			a[0] = dirfd, a[1] = pick_scratch_path(), a[2] = dirfd, a[3] = pick_scratch_path();
		break;
	case 13:
		SET("getcwd", SYS_getcwd, 2);
		a[0] = pick_buf(), a[1] = pick_len();
		break;
	case 14:
		SET(below(2) ? "chdir" : "fchdir", 0, 1);
		c->nr = c->name[0] == 'c' ? SYS_chdir : SYS_fchdir;
		a[0] = c->nr == SYS_chdir ? pick_path() : (u64)(long)pick_fd();
		break;
	case 15:
		SET("faccessat2", below(2) ? SYS_faccessat : 439, 4);
		a[0] = dirfd, a[1] = pick_path(), a[2] = chance(80) ? below(8) : rnd();
		a[3] = chance(70) ? 0 : rnd() & 0x1300;
		break;
	case 16:
		SET("access", SYS_access, 2);
		a[0] = pick_path(), a[1] = chance(80) ? below(8) : rnd();
		break;
	case 17:
		SET("readlinkat", below(2) ? SYS_readlinkat : SYS_readlink, 4);
		if (c->nr == SYS_readlink)
			a[0] = pick_path(), a[1] = pick_buf(), a[2] = pick_len();
		else
			a[0] = dirfd, a[1] = pick_path(), a[2] = pick_buf(), a[3] = pick_len();
		break;
	case 18:
		SET("umask", SYS_umask, 1);
		a[0] = chance(80) ? 022 : rnd();
		break;
	case 19:
		/* ftruncate on a descriptor (the Linux child opens read-only);
		 * truncate only on scratch paths. */
		if (below(2)) {
			SET("ftruncate", SYS_ftruncate, 2);
			a[0] = (u64)(long)pick_fd();
		} else {
			SET("truncate", SYS_truncate, 2);
			a[0] = pick_scratch_path();
		}
		a[1] = chance(70) ? below(1 << 16) : pick_len();
		break;
	case 20:
		SET(below(2) ? "fsync" : "fdatasync", 0, 1);
		c->nr = c->name[1] == 's' ? SYS_fsync : SYS_fdatasync;
		a[0] = (u64)(long)pick_fd();
		break;
	case 21:
		switch (below(3)) {
		case 0:
			SET("dup", SYS_dup, 1);
			a[0] = (u64)(long)pick_fd();
			break;
		case 1:
			SET("dup2", SYS_dup2, 2);
			a[0] = (u64)(long)pick_fd(), a[1] = chance(80) ? 3 + below(60) : rnd();
			break;
		default:
			SET("dup3", SYS_dup3, 3);
			a[0] = (u64)(long)pick_fd(), a[1] = chance(80) ? 3 + below(60) : rnd();
			a[2] = chance(70) ? O_CLOEXEC * below(2) : rnd();
		}
		break;
	case 22:
		SET("fcntl", SYS_fcntl, 3);
		a[0] = (u64)(long)pick_fd(), a[1] = fcntl_cmds[below(7)];
		a[2] = chance(70) ? below(64) : rnd();
		break;
	case 23:
		/* chmod family: scratch paths only; the owner keeps rwx. */
		switch (below(4)) {
		case 0:
			SET("chmod", SYS_chmod, 2);
			a[0] = pick_scratch_path(), a[1] = (rnd() & 07777) | 0700;
			break;
		case 1:
			SET("fchmodat", SYS_fchmodat, 3);
			a[0] = dirfd, a[1] = pick_scratch_path(), a[2] = (rnd() & 07777) | 0700;
			break;
		case 2:
			SET("fchmodat2", 452, 4);
			a[0] = dirfd, a[1] = pick_scratch_path(), a[2] = (rnd() & 07777) | 0700;
			a[3] = chance(70) ? 0x100 * below(2) : rnd() & 0x1fff;
			break;
		default:
			/* The Linux child is nobody: only its own files change. */
			SET("fchmod", SYS_fchmod, 2);
			a[0] = (u64)(long)pick_fd(), a[1] = (rnd() & 07777) | 0700;
		}
		break;
	case 24: {
		static struct timespec ts[2];
		static const long nsecs[] = {0, 999999999, 1000000000, -1, (1l << 30) - 1, (1l << 30) - 2};
		for (int i = 0; i < 2; i++)
			ts[i] = (struct timespec){(long)rnd() >> below(64), nsecs[below(6)]};
		SET("utimensat", SYS_utimensat, 4);
		/* A NULL path is the descriptor itself (futimens). */
		a[0] = chance(30) ? (u64)(long)pick_fd() : dirfd;
		a[1] = chance(30) ? 0 : pick_scratch_path();
		a[2] = chance(20) ? 0 : chance(80) ? (u64)ts : pick_addr();
		a[3] = chance(70) ? 0x100 * below(2) : rnd() & 0x1fff;
		break;
	}
	case 25: {
		static struct timeval tv[2];
		for (int i = 0; i < 2; i++)
			tv[i] = (struct timeval){(long)below(1 << 30), chance(80) ? (long)below(1000000) : (long)rnd()};
		SET("utimes", SYS_utimes, 2);
		a[0] = pick_scratch_path(), a[1] = chance(20) ? 0 : chance(80) ? (u64)tv : pick_addr();
		break;
	}
	case 26:
		/* Hard links between scratch names only. */
		if (below(2)) {
			SET("link", SYS_link, 2);
			a[0] = pick_scratch_path(), a[1] = pick_scratch_path();
		} else {
			SET("linkat", SYS_linkat, 5);
			a[0] = dirfd, a[1] = pick_scratch_path(), a[2] = dirfd, a[3] = pick_scratch_path();
			a[4] = chance(70) ? 0x400 * below(2) : rnd() & 0x1fff;
		}
		break;
	case 27:
		/* Symbolic links in the scratch directory pointing into it
		 * (absolute targets only: a relative "../x" could lead out,
		 * and a later open with O_TRUNC would follow it). */
		if (below(2)) {
			SET("symlink", SYS_symlink, 2);
			a[0] = pick_scratch_path(), a[1] = pick_scratch_path();
		} else {
			SET("symlinkat", SYS_symlinkat, 3);
			a[0] = pick_scratch_path(), a[1] = dirfd, a[2] = pick_scratch_path();
		}
		break;
	default:
		/* open a scratch file for writing, maybe creating it */
		SET("openat", SYS_openat, 4);
		a[0] = dirfd, a[1] = pick_scratch_path();
		a[2] = (rnd() & (O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_NONBLOCK | O_CLOEXEC |
				 O_DIRECTORY)) | below(3);
		/* The owner may always remove and list what it made. */
		a[3] = below(01000) | 0600;
		break;
	}
#undef SET
}

static u64 sigset_buf[4];

/* pipe/pipe2's answer, when given our own array. */
static int pipe_pair[2];
static struct pollfd pollfds[8];
static fd_set fdsets[3];
static struct timespec poll_ts;
static u64 pselect_data[2];

/* A timeout for ppoll/pselect6: at most 10 ms, never NULL (forever). */
static u64 pick_wait_timespec(void)
{
	switch (below(5)) {
	case 0:
		poll_ts = (struct timespec){0, (long)below(10 * 1000 * 1000)};
		return (u64)&poll_ts;
	case 1:
		poll_ts = (struct timespec){(long)below(3) - 1, 1000 * 1000 * 1000 + (long)below(10)};
		return (u64)&poll_ts; /* EINVAL */
	case 2:
		return KERNEL_ADDR;
	case 3:
		/* Never a page of ours (see pick_timespec). */
		return 0x8000000000000000ul;
	default:
		poll_ts = (struct timespec){0, 0};
		return (u64)&poll_ts;
	}
}

/* A sigset pointer and its size, for ppoll and pselect6. */
static void pick_sigmask(u64 *mask, u64 *size)
{
	*mask = chance(50) ? 0 : chance(70) ? (u64)sigset_buf : pick_addr();
	*size = chance(80) ? 8 : below(200);
}
/* Signals: a handler that only counts, and the restorer it returns through
 * (rt_sigreturn), as a C library's. */
static volatile long handler_runs;
static void fuzz_handler(int sig)
{
	(void)sig;
	handler_runs++;
}
__asm__(".text\n"
	"fuzz_restorer:\n"
	"	mov $15, %eax\n"
	"	syscall\n"
	"	ud2\n");
extern char fuzz_restorer[];

/* Faults (and SIGTRAP, SIGSYS) never get the handler: it would return to
 * the faulting instruction for ever. */
static int synchronous_sig(u64 sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE ||
	       sig == SIGTRAP || sig == SIGSYS;
}

/* A signal to send ourselves: mostly harmless ones (0, ignored by default,
 * or one we may have a handler for), sometimes one that ends the batch;
 * never SIGKILL or a stop signal (a stopped child would hang the parent's
 * waitpid on Linux). */
static u64 pick_sig(void)
{
	/* SIGUSR1 has the handler from the batch's start (unless a fuzzed
	 * rt_sigaction changed that). */
	static const u64 mild[] = {0, SIGCHLD, SIGURG, SIGWINCH, SIGUSR1, SIGUSR1, 65, 1000};
	static const u64 fatal[] = {SIGUSR2, SIGALRM, SIGHUP, SIGTERM, 40, 64};
	if (chance(90))
		return mild[below(sizeof mild / sizeof mild[0])];
	if (chance(50))
		return fatal[below(sizeof fatal / sizeof fatal[0])];
	u64 s = below(65);
	if (s == SIGKILL || s == SIGSTOP || s == SIGTSTP || s == SIGTTIN || s == SIGTTOU)
		s = 0;
	return s;
}

/* Signal calls at ourselves only: never another pid that exists (the
 * parent, the test runner), never process groups (0, -1). */
static u64 pick_sig_pid(void)
{
	switch (below(6)) {
	case 0:
		return 0x7fffffff; /* no such process */
	case 1:
		return (u64)-0x7fffffffl; /* no such group */
	default:
		return (u64)raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
	}
}

static u64 stack_t_buf[3];
static unsigned char fake_frame[1024] __attribute__((aligned(64)));
/* The process and machine calls draw from a stream of their own, so the
 * other calls of a seed are the ones they were before these were added
 * (a seed keeps naming the same campaign, only with calls in between). */
static u64 sys_rng_state;

/* Queued signals, sigtimedwait, timers, process groups: a stream of their
 * own too.  On Linux: signals only to the child itself or to pids and
 * groups that cannot exist (a group is only ever the child's own, -pid,
 * which exists only if it made itself a leader), waits of at most 10 ms,
 * timers of this child only (their signals may end the batch). */
static u64 sig2_rng_state;
static u64 sig2_info[16];
static u64 itimer_buf[4];

static void make_sig2_call(struct call *c)
{
	u64 *a = c->a;
	u64 me = (u64)raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
#define SET(n, nrv, cnt) (c->name = (n), c->nr = (nrv), c->nargs = (cnt))
	for (int i = 0; i < 16; i++)
		sig2_info[i] = chance(70) ? below(8) : rnd();
	((int *)sig2_info)[2] = chance(50) ? -1 /* SI_QUEUE */ : (int)rnd();
	switch (below(13)) {
	case 0:
		SET("rt_sigqueueinfo", SYS_rt_sigqueueinfo, 3);
		a[0] = pick_sig_pid();
		a[1] = chance(50) ? 32 + below(33) : pick_sig();
		a[2] = chance(80) ? (u64)sig2_info : pick_addr();
		break;
	case 1:
		SET("rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo, 4);
		a[0] = pick_sig_pid();
		a[1] = chance(80) ? a[0] : pick_sig_pid();
		a[2] = chance(50) ? 32 + below(33) : pick_sig();
		a[3] = chance(80) ? (u64)sig2_info : pick_addr();
		break;
	case 2:
	case 3:
		SET("rt_sigtimedwait", SYS_rt_sigtimedwait, 4);
		sigset_buf[0] = chance(50) ? rnd() : 1ul << below(64);
		a[0] = chance(80) ? (u64)sigset_buf : pick_addr();
		a[1] = chance(30) ? 0 : chance(70) ? (u64)sig2_info : pick_addr();
		a[2] = pick_wait_timespec(); /* never NULL (forever) */
		a[3] = chance(90) ? 8 : below(200);
		break;
	case 4:
		SET("alarm", SYS_alarm, 1);
		a[0] = chance(70) ? below(3) : (on_ferrite ? rnd() : below(100));
		break;
	case 5:
		SET("setitimer", SYS_setitimer, 3);
		a[0] = chance(90) ? below(3) : (on_ferrite ? rnd() : below(10));
		for (int i = 0; i < 4; i++)
			itimer_buf[i] = chance(80) ? below(10000) : (chance(50) ? 1000000 : rnd());
		if (!on_ferrite && (itimer_buf[2] || itimer_buf[3] >= 1000000))
			itimer_buf[2] = 0, itimer_buf[3] = below(10000);
		a[1] = chance(10) ? 0 : chance(80) ? (u64)itimer_buf : pick_addr();
		a[2] = chance(50) ? 0 : pick_buf();
		break;
	case 6:
		SET("getitimer", SYS_getitimer, 2);
		a[0] = chance(90) ? below(3) : rnd();
		a[1] = chance(80) ? pick_buf() : pick_addr();
		break;
	case 7:
		SET("setpgid", SYS_setpgid, 2);
		a[0] = chance(60) ? 0 : chance(50) ? me : pick_sig_pid();
		a[1] = chance(40) ? 0 : chance(50) ? me : (on_ferrite ? rnd() : 0x7fffffff);
		break;
	case 8:
		SET("getpgid", SYS_getpgid, 1);
		a[0] = chance(50) ? 0 : chance(50) ? me : rnd();
		break;
	case 9:
		SET("getsid", SYS_getsid, 1);
		a[0] = chance(50) ? 0 : chance(50) ? me : rnd();
		break;
	case 10:
		SET("getpgrp", SYS_getpgrp, 0);
		break;
	case 11:
		SET("setsid", SYS_setsid, 0);
		break;
	default:
		/* Our own group, if we lead one (no such group otherwise). */
		SET("kill", SYS_kill, 2);
		a[0] = (u64)-(long)me;
		a[1] = chance(50) ? SIGUSR1 : pick_sig();
	}
#undef SET
}

static void make_call(struct call *c)
{
	memset(c, 0, sizeof *c);
	u64 main_state = rng_state;
	rng_state = sys_rng_state;
	int sys = below(16) == 0;
	if (sys)
		make_sys_call(c);
	sys_rng_state = rng_state;
	rng_state = main_state;
	if (sys)
		return;
	rng_state = sig2_rng_state;
	int sig2 = below(24) == 0;
	if (sig2)
		make_sig2_call(c);
	sig2_rng_state = rng_state;
	rng_state = main_state;
	if (sig2)
		return;
	u64 *a = c->a;
	unsigned k = (unsigned)below(100);
#define SET(n, nrv, cnt) (c->name = (n), c->nr = (nrv), c->nargs = (cnt))
	if (k < 12) {
		SET("mmap", SYS_mmap, 6);
		a[0] = chance(60) ? 0 : pick_addr();
		a[1] = chance(70) ? (below(64) + 1) * PAGE : pick_len();
		a[2] = pick_prot();
		a[3] = pick_map_flags();
		a[4] = (u64)(long)pick_fd();
		a[5] = chance(70) ? 0 : (chance(50) ? below(64) * PAGE : pick_len());
		if (!on_ferrite && (a[3] & MAP_ANONYMOUS) == 0 && (a[3] & MAP_SHARED))
			a[2] &= ~(u64)PROT_WRITE; /* never a shared writable file map */
	} else if (k < 20) {
		SET("munmap", SYS_munmap, 2);
		a[0] = pick_addr();
		a[1] = pick_len();
	} else if (k < 27) {
		SET("mprotect", SYS_mprotect, 3);
		a[0] = pick_addr();
		a[1] = pick_len();
		a[2] = pick_prot();
	} else if (k < 34) {
		SET("mremap", SYS_mremap, 5);
		a[0] = pick_addr();
		a[1] = pick_len();
		a[2] = chance(60) ? (below(64) + 1) * PAGE : pick_len();
		a[3] = chance(80) ? below(4) : (chance(50) ? below(8) : rnd());
		a[4] = pick_addr();
	} else if (k < 41) {
		SET("madvise", SYS_madvise, 3);
		a[0] = pick_addr();
		a[1] = pick_len();
		a[2] = pick_madvice();
	} else if (k < 45) {
		SET("brk", SYS_brk, 1);
		switch (below(5)) {
		case 0:
			a[0] = 0;
			break;
		case 1:
			a[0] = cur_brk + below(64) * PAGE + below(2) * below(PAGE);
			break;
		case 2:
			a[0] = cur_brk - below(16) * PAGE;
			break;
		default:
			a[0] = pick_addr();
		}
	} else if (k < 50) {
		SET("read", SYS_read, 3);
		a[0] = (u64)(long)pick_fd();
		a[1] = pick_buf();
		a[2] = pick_len();
	} else if (k < 53) {
		SET("write", SYS_write, 3);
		a[0] = (u64)(long)pick_fd();
		a[1] = pick_buf();
		a[2] = pick_len();
	} else if (k < 56) {
		SET(below(2) ? "readv" : "writev", 0, 3);
		c->nr = c->name[0] == 'r' ? SYS_readv : SYS_writev;
		a[0] = (u64)(long)pick_fd();
		a[1] = pick_iov(&a[2]);
	} else if (k < 60) {
		if (below(2)) {
			SET("open", SYS_open, 3);
			a[0] = pick_path();
			a[1] = rnd() & (O_NONBLOCK | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW);
			if (on_ferrite)
				a[1] |= below(4);
			a[2] = below(0777);
		} else {
			SET("openat", SYS_openat, 4);
			a[0] = (u64)(long)(chance(50) ? AT_FDCWD : pick_fd());
			a[1] = pick_path();
			a[2] = rnd() & (O_NONBLOCK | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW);
			if (on_ferrite)
				a[2] |= below(4);
			a[3] = below(0777);
		}
	} else if (k < 63) {
		SET("close", SYS_close, 1);
		a[0] = (u64)(long)pick_fd();
	} else if (k < 65) {
		SET("lseek", SYS_lseek, 3);
		a[0] = (u64)(long)pick_fd();
		a[1] = chance(50) ? below(1 << 20) : pick_len();
		a[2] = below(6);
	} else if (k < 67) {
		SET("rt_sigaction", SYS_rt_sigaction, 4);
		static struct {
			u64 handler, flags, restorer, mask;
		} act;
		a[0] = below(70);
		/* SIG_DFL, SIG_IGN, or a handler that counts (not for faults). */
		act.handler = below(3);
		act.flags = rnd() & 0xdc000007ul;
		if (act.handler == 2 && !synchronous_sig(a[0])) {
			act.handler = (u64)fuzz_handler;
			act.restorer = (u64)fuzz_restorer;
			act.flags |= chance(90) ? 0x04000000ul /* SA_RESTORER */ : 0;
		} else {
			act.handler &= 1;
		}
		act.mask = rnd();
		a[1] = chance(50) ? (u64)&act : (chance(50) ? 0 : pick_addr());
		a[2] = chance(50) ? 0 : pick_buf();
		a[3] = chance(80) ? 8 : below(200);
	} else if (k < 69) {
		SET("rt_sigprocmask", SYS_rt_sigprocmask, 4);
		sigset_buf[0] = rnd();
		a[0] = below(4);
		a[1] = chance(50) ? (u64)sigset_buf : (chance(50) ? 0 : pick_addr());
		a[2] = chance(50) ? 0 : pick_buf();
		a[3] = chance(80) ? 8 : below(200);
	} else if (k < 71) {
		SET("ioctl", SYS_ioctl, 3);
		static const u64 safe_req[] = {0x5413 /* TIOCGWINSZ */, 0x5401 /* TCGETS */,
					       0x541b /* FIONREAD */, 0};
		a[0] = (u64)(long)pick_fd();
		a[1] = on_ferrite && chance(30) ? rnd() : safe_req[below(4)];
		a[2] = pick_buf();
	} else if (k < 73) {
		SET("nanosleep", SYS_nanosleep, 2);
		a[0] = pick_timespec();
		a[1] = chance(50) ? 0 : pick_buf();
	} else if (k < 75) {
		static const struct {
			const char *n;
			long nr;
		} simple[] = {{"sched_yield", SYS_sched_yield}, {"getpid", SYS_getpid},
			      {"gettid", SYS_gettid},           {"getppid", SYS_getppid}};
		int i = (int)below(4);
		SET(simple[i].n, simple[i].nr, 0);
	} else if (k < 76) {
		SET("set_tid_address", SYS_set_tid_address, 1);
		a[0] = pick_buf();
	} else if (k < 79) {
		switch (below(5)) {
		case 0:
			SET("fork", SYS_fork, 0);
			break;
		case 3:
			/* A thread as musl's pthread_create makes one; it exits
			 * at once (SYS_exit: itself only), touching nothing but
			 * the tid words (CLONE_PARENT_SETTID, CHILD_CLEARTID). */
			SET("clone", SYS_clone, 5);
			a[0] = 0x7d0f00ul; /* VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|
					    * SETTLS|PARENT_SETTID|CHILD_CLEARTID|
					    * DETACHED */
			if (chance(20))
				a[0] ^= 1ul << below(24);
			a[1] = chance(60) ? 0 : pick_buf();
			a[2] = chance(50) ? (u64)&futex_words[1] : pick_buf();
			a[3] = chance(50) ? (u64)&futex_words[2] : pick_buf();
			a[4] = pick_buf();
			break;
		case 4: {
			/* futex: waits only with a timeout of at most 10 ms
			 * (relative, or an absolute one long past). */
			static const u64 cmds[] = {0, 1, 3, 4, 9, 10};
			SET("futex", SYS_futex, 6);
			a[0] = chance(50) ? (u64)&futex_words[below(3)] : pick_buf();
			a[1] = cmds[below(6)] | (chance(50) ? 128 : 0) | (chance(10) ? 256 : 0);
			if (chance(5))
				a[1] = 14 + below(100); /* no such operation */
			a[2] = chance(50) ? 0 : rnd();
			int waits = (a[1] & 0x7f) == 0 || (a[1] & 0x7f) == 9;
			a[3] = waits ? pick_wait_timespec() : (chance(50) ? below(4) : rnd());
			a[4] = chance(50) ? (u64)&futex_words[below(3)] : pick_buf();
			a[5] = chance(50) ? 0xfffffffful : rnd();
			break;
		}
		case 1:
			SET("vfork", SYS_vfork, 0);
			break;
		default:
			SET("clone", SYS_clone, 5);
			a[0] = chance(50) ? SIGCHLD : (rnd() & (on_ferrite ? ~0ul : SAFE_CLONE_FLAGS)) |
								   SIGCHLD;
			a[1] = chance(60) ? 0 : pick_buf();
			a[2] = pick_buf();
			a[3] = pick_buf();
			a[4] = pick_buf();
		}
	} else if (k < 81) {
		SET("execve", SYS_execve, 3);
		a[0] = pick_exec_path();
		a[1] = pick_ptr_array(0);
		a[2] = pick_ptr_array(1);
	} else if (k < 84) {
		SET("wait4", SYS_wait4, 4);
		static const long pids[] = {-1, 0, 1, 2, -2, 0x7fffffff};
		a[0] = (u64)pids[below(6)];
		a[1] = chance(50) ? 0 : pick_buf();
		a[2] = WNOHANG | (chance(30) ? (rnd() & 0x7000000aul) : 0);
		a[3] = chance(70) ? 0 : pick_buf();
	} else if (k < 86) {
		SET("uname", SYS_uname, 1);
		a[0] = pick_buf();
	} else if (k < 88) {
		SET("arch_prctl", SYS_arch_prctl, 2);
		a[0] = chance(80) ? (below(2) ? 0x1003 /* GET_FS */ : 0x1002 /* SET_FS */)
				  : 0x1000 + below(8);
		a[1] = pick_buf();
	} else if (k < 90) {
		/* The clocks. Sleeps are pick_timespec's (at most 10 ms, or
		 * invalid), so even TIMER_ABSTIME ones end at once: a time
		 * under 10 ms is past on every clock of a running machine. */
		u64 clk = chance(70) ? below(12) : rnd();
		switch (below(6)) {
		case 0:
			SET("clock_gettime", SYS_clock_gettime, 2);
			a[0] = clk;
			a[1] = pick_buf();
			break;
		case 1:
			SET("clock_getres", SYS_clock_getres, 2);
			a[0] = clk;
			a[1] = chance(20) ? 0 : pick_buf();
			break;
		case 2:
			SET("gettimeofday", SYS_gettimeofday, 2);
			a[0] = chance(20) ? 0 : pick_buf();
			a[1] = chance(50) ? 0 : pick_buf();
			break;
		case 3:
			SET("time", SYS_time, 1);
			a[0] = chance(30) ? 0 : pick_buf();
			break;
		default:
			SET("clock_nanosleep", SYS_clock_nanosleep, 4);
			/* Never a CPU-time clock (Linux sleeps until the
			 * sleeper itself has run that long: forever) or an
			 * alarm clock (it would arm the RTC's wake alarm). */
			static const u64 sleep_clocks[] = {0, 1, 4, 5, 6, 7, 10, 11, 12, 0x7fffffff};
			a[0] = on_ferrite && chance(30) ? clk : sleep_clocks[below(10)];
			a[1] = chance(50) ? 0 : chance(80) ? 1 /* TIMER_ABSTIME */ : rnd();
			a[2] = pick_timespec();
			a[3] = chance(50) ? 0 : pick_buf();
		}
	} else if (k < 94) {
		switch (below(8)) {
		case 0:
			SET("kill", SYS_kill, 2);
			a[0] = pick_sig_pid();
			a[1] = pick_sig();
			break;
		case 1:
			SET("tkill", SYS_tkill, 2);
			a[0] = pick_sig_pid();
			a[1] = pick_sig();
			break;
		case 2:
			SET("tgkill", SYS_tgkill, 3);
			a[0] = pick_sig_pid();
			a[1] = chance(80) ? a[0] : pick_sig_pid();
			a[2] = pick_sig();
			break;
		case 3:
			SET("sigaltstack", SYS_sigaltstack, 2);
			stack_t_buf[0] = chance(50) ? pick_addr() : (u64)fake_frame;
			stack_t_buf[1] = chance(70) ? below(4) : rnd();
			stack_t_buf[2] = chance(70) ? below(64) * 1024 : pick_len();
			a[0] = chance(60) ? (u64)stack_t_buf : (chance(50) ? 0 : pick_addr());
			a[1] = chance(50) ? 0 : pick_buf();
			break;
		case 4:
			SET("rt_sigpending", SYS_rt_sigpending, 2);
			a[0] = chance(20) ? 0 : pick_buf();
			a[1] = chance(80) ? 8 : below(200);
			break;
		case 5:
			/* Never a call that could wait: the size is always wrong. */
			SET("rt_sigsuspend", SYS_rt_sigsuspend, 2);
			a[0] = chance(50) ? (u64)sigset_buf : pick_addr();
			a[1] = 9 + below(200);
			break;
		case 6:
			if (chance(25)) {
				/* A garbage frame; its RIP is never one that could run,
				 * so the child dies of SIGSEGV (the batch ends). */
				static const u64 bad_rip[] = {0, 1, 0x8000000000000000ul,
							      KERNEL_TEXT, 0x0000800000000000ul};
				SET("rt_sigreturn", SYS_rt_sigreturn, 1);
				for (size_t i = 0; i < sizeof fake_frame; i++)
					fake_frame[i] = (unsigned char)rnd();
				((u64 *)(fake_frame + 40))[16] = bad_rip[below(5)];
				a[0] = chance(70) ? (u64)fake_frame : pick_addr();
				break;
			}
			/* fall through */
		default:
			/* The handler, if one is installed for a signal. */
			SET("kill", SYS_kill, 2);
			a[0] = (u64)raw6(SYS_getpid, 0, 0, 0, 0, 0, 0);
			a[1] = chance(50) ? SIGUSR1 : pick_sig();
		}
	} else if (k < 96) {
		make_fs_call(c);
	} else if (k < 97) {
		if (below(3) == 0) {
			SET("pipe", SYS_pipe, 1);
		} else {
			SET("pipe2", SYS_pipe2, 2);
			a[1] = chance(80) ? (rnd() & (O_NONBLOCK | O_CLOEXEC)) : rnd();
		}
		a[0] = chance(70) ? (u64)pipe_pair : pick_buf();
	} else if (k < 98) {
		u64 n = chance(90) ? below(9) : (chance(50) ? 1025 + below(4) : rnd());
		for (int i = 0; i < 8; i++)
			pollfds[i] = (struct pollfd){chance(90) ? pick_fd() : -(int)below(3),
						     (short)(chance(80) ? below(8) : rnd()), (short)rnd()};
		if (below(2)) {
			SET("poll", SYS_poll, 3);
			a[2] = chance(70) ? 0 : below(11); /* ms; never -1 */
		} else {
			SET("ppoll", SYS_ppoll, 5);
			a[2] = pick_wait_timespec();
			pick_sigmask(&a[3], &a[4]);
		}
		a[0] = chance(80) ? (u64)pollfds : pick_addr();
		a[1] = n;
	} else if (k < 99) {
		for (int i = 0; i < 3; i++) {
			FD_ZERO(&fdsets[i]);
			for (int j = (int)below(4); j > 0; j--) {
				int fd = chance(80) ? pick_fd() : (int)below(80);
				if (fd >= 0 && fd < FD_SETSIZE)
					FD_SET(fd, &fdsets[i]);
			}
		}
		a[0] = chance(90) ? below(70) : rnd();
		for (int i = 0; i < 3; i++)
			a[1 + i] = chance(20) ? 0 : chance(80) ? (u64)&fdsets[i] : pick_buf();
		if (below(2)) {
			SET("select", SYS_select, 5);
			static struct timeval tv;
			tv = (struct timeval){chance(90) ? 0 : -1,
					      chance(90) ? (long)below(10000) : -(long)below(5)};
			/* Never NULL (forever) nor a page that may be ours. */
			a[4] = chance(80) ? (u64)&tv : (chance(50) ? KERNEL_ADDR : 0x8000000000000000ul);
		} else {
			SET("pselect6", SYS_pselect6, 6);
			a[4] = pick_wait_timespec();
			pick_sigmask(&pselect_data[0], &pselect_data[1]);
			a[5] = chance(30) ? 0 : chance(80) ? (u64)pselect_data : pick_addr();
		}
	} else {
		SET("unknown", 512 + (long)below(588), 6);
		for (int i = 0; i < 6; i++)
			a[i] = chance(50) ? pick_addr() : pick_len();
	}
#undef SET
}

/* Make the call; arch_prctl(ARCH_SET_FS) and the spawning calls are
 * special.  Returns the raw result (-errno on failure). */
static long do_call(struct call *c)
{
	u64 *a = c->a;
	if (c->nr == SYS_arch_prctl && a[0] == 0x1002) {
		/* Set FS to the nasty value and put the old one back at once:
		 * FS is musl's thread pointer. */
		u64 old = 0;
		raw6(SYS_arch_prctl, 0x1003, (u64)&old, 0, 0, 0, 0);
		long r = raw6(SYS_arch_prctl, 0x1002, a[1], 0, 0, 0, 0);
		raw6(SYS_arch_prctl, 0x1002, old, 0, 0, 0, 0);
		return r;
	}
	if (c->nr == SYS_fork || c->nr == SYS_vfork || c->nr == SYS_clone)
		return raw_spawn(c->nr, a[0], a[1], a[2], a[3], a[4]);
	if (c->nr == SYS_rt_sigreturn) {
		/* The frame is read at RSP: this never returns. */
		__asm__ volatile("mov %0, %%rsp\n"
				 "mov $15, %%eax\n"
				 "syscall\n"
				 "ud2\n"
				 :
				 : "r"(a[0])
				 : "memory");
	}
	return raw6(c->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* What the result means for our tables, and the invariants. */
static void after_call(struct call *c, long r)
{
	u64 *a = c->a;
	int ok = r >= 0 || r < -4095;
	switch (c->nr) {
	case SYS_mmap:
	case SYS_mremap:
		if (!ok)
			break;
		if ((u64)r >= USER_END)
			violated(c, r, "mapping outside user space");
		/*
		 * mremap that stays in place (a shrink is a munmap of the tail,
		 * allowed anywhere, as on Linux) returns the old address: no new
		 * place was mapped, so only a moved result is checked.
		 */
		if ((u64)r < min_mmap && !(c->nr == SYS_mremap && (u64)r == a[0]))
			violated(c, r, "mapping below the minimum mmap address");
		if ((u64)r & (PAGE - 1))
			violated(c, r, "unaligned mapping address");
		if (c->nr == SYS_mmap) {
			u64 len = (a[1] + PAGE - 1) & ~(PAGE - 1);
			if (len && (u64)r + len > USER_END)
				violated(c, r, "mapping runs past the end of user space");
			add_map((u64)r, len);
		} else {
			u64 len = (a[2] + PAGE - 1) & ~(PAGE - 1);
			u64 old_len = (a[1] + PAGE - 1) & ~(PAGE - 1);
			/*
			 * In place with no growth (Linux returns the address of
			 * a same-length or shrinking call without looking at the
			 * length), nothing new was mapped; otherwise the whole
			 * result must fit.
			 */
			int grew = (u64)r != a[0] || len > old_len;
			if (grew && len && (u64)r + len > USER_END)
				violated(c, r, "mapping runs past the end of user space");
			if ((u64)r != a[0])
				drop_maps(a[0], (a[1] + PAGE - 1) & ~(PAGE - 1));
			add_map((u64)r, len);
		}
		break;
	case SYS_munmap:
		if (r == 0)
			drop_maps(a[0], (a[1] + PAGE - 1) & ~(PAGE - 1));
		break;
	case SYS_brk:
		/* brk returns the (new or old) break, never an error. */
		if ((u64)r >= USER_END)
			violated(c, r, "break outside user space");
		if (ok && (u64)r != 0)
			cur_brk = (u64)r;
		break;
	case SYS_open:
	case SYS_openat:
		if (r >= 0 && nfds < 16)
			fds[nfds++] = (int)r;
		break;
	case SYS_fcntl:
		/* A pipe must stay O_NONBLOCK (a blocking read of a pipe whose
		 * writer is ourselves waits forever): F_SETFL through any of its
		 * descriptors sets it again. */
		if (r == 0 && a[1] == F_SETFL && !(a[2] & O_NONBLOCK)) {
			struct stat st;
			if (raw6(SYS_fstat, a[0], (u64)&st, 0, 0, 0, 0) == 0 && S_ISFIFO(st.st_mode))
				raw6(SYS_fcntl, a[0], F_SETFL, O_NONBLOCK, 0, 0, 0);
		}
		break;
	case SYS_pipe:
	case SYS_pipe2:
		if (r == 0) {
			/* The kernel wrote the pair there, so it is ours to read. */
			int pair[2];
			memcpy(pair, (void *)a[0], sizeof pair);
			int nonblock = c->nr == SYS_pipe2 && (a[1] & O_NONBLOCK);
			for (int i = 0; i < 2; i++) {
				/* A blocking end would wait forever (we hold both). */
				if (nonblock && nfds < 16 && !(trace && pair[i] == 1))
					fds[nfds++] = pair[i];
				else if (!(trace && pair[i] == 1))
					raw6(SYS_close, (u64)pair[i], 0, 0, 0, 0, 0);
			}
		} else if (r != -EFAULT && r != -EINVAL && r != -EMFILE && r != -ENFILE &&
			   r != -ENOMEM) {
			violated(c, r, "pipe failed with an unexpected errno");
		}
		break;
	case SYS_close:
		if (r == 0)
			for (int i = 0; i < nfds; i++)
				if (fds[i] == (int)a[0])
					fds[i] = fds[--nfds];
		break;
	case SYS_wait4:
		if (r < 0 && r != -ECHILD && r != -EFAULT && r != -EINVAL)
			violated(c, r, "wait4 with WNOHANG failed with an unexpected errno");
		break;
	case SYS_nanosleep:
		break;
	default:
		if (c->nr >= 512 && r != -ENOSYS)
			violated(c, r, "an unknown system call did not return ENOSYS");
	}
}

/* Linux only: a child that cannot harm the machine it runs on. */
#define SANDBOX_FAILED 98
static void sandbox_linux_child(void)
{
	struct rlimit as = {1ul << 30, 1ul << 30};
	setrlimit(RLIMIT_AS, &as);
	struct rlimit core = {0, 0};
	setrlimit(RLIMIT_CORE, &core);
	struct rlimit nproc = {4096, 4096};
	setrlimit(RLIMIT_NPROC, &nproc);
	if (geteuid() == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(SANDBOX_FAILED);
	}
	/* Every descriptor but the trace's (close_range: Linux 5.9). */
	for (int fd = 0; fd < 3; fd++)
		if (!(trace && fd == 1))
			raw6(SYS_close, fd, 0, 0, 0, 0, 0);
	if (raw6(SYS_close_range, 3, ~0u, 0, 0, 0, 0) != 0)
		for (int fd = 3; fd < 1024; fd++)
			raw6(SYS_close, fd, 0, 0, 0, 0, 0);
}

static void run_batch(u64 seed, long batch, long ncalls)
{
	rng_state = seed * 0x9e3779b97f4a7c15ul ^ ((u64)batch + 1) * 0xd1b54a32d192ed03ul;
	sys_rng_state = rng_state ^ 0x2545f4914f6cdd1dul;
	sig2_rng_state = rng_state ^ 0x9e3779b97f4a7c15ul;
	rnd();
	if (on_ferrite) {
		/* fd 0 is the console: a read from it would wait forever. */
		for (int fd = 0; fd < 3; fd++)
			if (!(trace && fd == 1))
				raw6(SYS_close, fd, 0, 0, 0, 0, 0);
	} else {
		sandbox_linux_child();
	}
	/* Writes to pipes whose reader is gone: EPIPE, not a dead batch. */
	struct {
		u64 handler, flags, restorer, mask;
	} ign = {1 /* SIG_IGN */, 0x04000000 /* SA_RESTORER */, 0, 0};
	raw6(SYS_rt_sigaction, SIGPIPE, (u64)&ign, 0, 8, 0, 0);
	volatile int here = 0;
	stack_addr = (u64)&here;
	text_addr = (u64)&run_batch;
	data_addr = (u64)&rng_state;
	cur_brk = (u64)raw6(SYS_brk, 0, 0, 0, 0, 0, 0);
	/* A few mappings to start from. */
	long r = raw6(SYS_mmap, 0, PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r > 0) {
		unmapped = (u64)r;
		raw6(SYS_munmap, (u64)r, PAGE, 0, 0, 0, 0);
	}
	r = raw6(SYS_mmap, 0, 16 * PAGE, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r > 0)
		add_map((u64)r, 16 * PAGE);
	r = raw6(SYS_mmap, 0, 4 * PAGE, 3, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r > 0)
		add_map((u64)r, 4 * PAGE);
	/* A handler for SIGUSR1, so signals to ourselves get delivered. */
	static u64 usr1_act[4];
	usr1_act[0] = (u64)fuzz_handler;
	usr1_act[1] = 0x04000000ul; /* SA_RESTORER */
	usr1_act[2] = (u64)fuzz_restorer;
	raw6(SYS_rt_sigaction, SIGUSR1, (u64)usr1_act, 0, 8, 0, 0);
	const char *self = on_ferrite ? "/bin/fuzz" : self_path;
	long fd = raw6(SYS_open, (u64)self, O_RDONLY, 0, 0, 0, 0);
	if (fd >= 0) {
		fds[nfds++] = (int)fd;
		r = raw6(SYS_mmap, 0, 8 * PAGE, PROT_READ, MAP_PRIVATE, (u64)fd, 0);
		if (r > 0)
			add_map((u64)r, 8 * PAGE);
	}
	for (long i = 0; i < ncalls; i++) {
		struct call c;
		make_call(&c);
		sh->call = i;
		describe(&c, sh->last, sizeof sh->last);
		logf_("  %ld: %s", i, sh->last);
		if (trace) {
			char line[600];
			int len = snprintf(line, sizeof line, "fuzz: trace: seed %lu batch %ld call %ld: %s\n",
					   seed, batch, i, sh->last);
			raw6(SYS_write, 1, (u64)line, (u64)len, 0, 0, 0);
		}
		r = do_call(&c);
		logf_(" = %#lx\n", (u64)r);
		after_call(&c, r);
		sh->calls_done = i + 1;
	}
	/* Reap what we forked (their exit is immediate). */
	while (raw6(SYS_wait4, -1, 0, 0, 0, 0, 0) > 0)
		;
	raw6(SYS_exit_group, 0, 0, 0, 0, 0, 0);
}

/* ------------------------------------------------------------------ */
/* The parent. */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
	say("usage: fuzz [-s SEED] [-n CALLS] [-b BATCH] [-r BATCHNO] [-v] [-t] [-k] [-q]\n");
	_exit(2);
}

static u64 num_arg(const char *s)
{
	char *end;
	errno = 0;
	u64 v = strtoul(s, &end, 0);
	if (errno || *end || end == s)
		usage();
	return v;
}

static void dump_log(void)
{
	if (verbose && sh->log_len) {
		const char *p = sh->log;
		unsigned left = sh->log_len;
		while (left) {
			ssize_t w = write(1, p, left);
			if (w <= 0)
				break;
			p += w;
			left -= (unsigned)w;
		}
	}
}

int main(int argc, char **argv)
{
	u64 seed = 1;
	long calls = 20000, batch = 100, only = -1;
	int quiet = 0;
	self_path = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-s") == 0 && i + 1 < argc)
			seed = num_arg(argv[++i]);
		else if (strcmp(a, "-n") == 0 && i + 1 < argc)
			calls = (long)num_arg(argv[++i]);
		else if (strcmp(a, "-b") == 0 && i + 1 < argc)
			batch = (long)num_arg(argv[++i]);
		else if (strcmp(a, "-r") == 0 && i + 1 < argc)
			only = (long)num_arg(argv[++i]), verbose = 1;
		else if (strcmp(a, "-v") == 0)
			verbose = 1;
		else if (strcmp(a, "-t") == 0)
			trace = 1;
		else if (strcmp(a, "-k") == 0)
			keep_going = 1;
		else if (strcmp(a, "-q") == 0)
			quiet = 1;
		else
			usage();
	}
	if (batch < 1 || calls < 0)
		usage();

	struct utsname u;
	on_ferrite = uname(&u) == 0 && strcmp(u.sysname, "Ferrite") == 0;
	if (!on_ferrite) {
		int fd = open("/proc/sys/vm/mmap_min_addr", O_RDONLY);
		char c = 0;
		null_mappable = fd >= 0 && read(fd, &c, 1) == 1 && c == '0';
		if (fd >= 0)
			close(fd);
	}
	make_scratch();
	if (!on_ferrite) {
		FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");
		unsigned long v;
		if (f && fscanf(f, "%lu", &v) == 1)
			min_mmap = v;
		if (f)
			fclose(f);
	}
	/* The shared pages, far from where the children's mappings go (a
	 * length running past one of those must not reach the report) and
	 * between two 16 MiB PROT_NONE guard regions. */
	size_t sh_len = (sizeof *sh + PAGE - 1) & ~(PAGE - 1), guard = 16ul << 20;
	char *area = mmap((void *)SHARED_HINT, sh_len + 2 * guard, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	sh = area == MAP_FAILED ? MAP_FAILED
				: mmap(area + guard, sh_len, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (sh == MAP_FAILED) {
		say("fuzz: cannot map the shared page: %s\n", strerror(errno));
		return 1;
	}
	sh->seed = seed;
	say("fuzz: seed %lu, %ld calls in batches of %ld, on %s, minimum mmap address %#lx\n", seed,
	    calls, batch, on_ferrite ? "Ferrite" : u.sysname, min_mmap);

	long violations = 0, done = 0, batches = 0, exited = 0, segv = 0, sigbus = 0, killed = 0, other = 0,
	     fork_fail = 0;
	double start = now_s();
	long next_report = calls / 10;
	long first = only >= 0 ? only : 0;
	for (long b = first; only >= 0 ? b == only : done < calls; b++) {
		long n = only >= 0 ? batch : (calls - done < batch ? calls - done : batch);
		sh->batch = b;
		sh->call = -1;
		sh->calls_done = 0;
		sh->last[0] = 0;
		sh->log_len = 0;
		sh->violated = 0;
		pid_t pid = fork();
		if (pid < 0) {
			/* Out of memory or processes: try again a little later. */
			if (++fork_fail > 1000) {
				say("fuzz: FAILED: fork keeps failing: %s (seed %lu, batch %ld)\n",
				    strerror(errno), seed, b);
				return 1;
			}
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
			b--;
			continue;
		}
		if (pid == 0)
			run_batch(seed, b, n);
		int st;
		pid_t r;
		double began = now_s();
		int warned = 0, spins = 0;
		for (;;) {
			r = waitpid(pid, &st, WNOHANG);
			if (r != 0)
				break;
			if (spins++ < 50) {
				sched_yield();
				continue;
			}
			struct timespec ts = {0, 1000 * 1000};
			nanosleep(&ts, NULL);
			if (!warned && now_s() - began > 60) {
				say("fuzz: batch %ld (seed %lu) still running after 60 s; call %ld: %s\n",
				    b, seed, sh->call, sh->last);
				warned = 1;
			}
		}
		if (r != pid) {
			say("fuzz: FAILED: waitpid: %s (seed %lu, batch %ld)\n", strerror(errno), seed,
			    b);
			return 1;
		}
		batches++;
		/* The calls made, the one a child died in included. */
		done += sh->call + 1;
		if (verbose)
			say("fuzz: batch %ld:\n", b);
		dump_log();
		/* A violation is exit status 99; the report in the shared page
		 * counts only with its cookie (the child may have written over
		 * the page through a bad pointer). */
		if (WIFEXITED(st) && WEXITSTATUS(st) == 99) {
			sh->violation[sizeof sh->violation - 1] = 0;
			sh->last[sizeof sh->last - 1] = 0;
			if (sh->violated == violation_cookie(b))
				say("fuzz: INVARIANT VIOLATED: %s\n", sh->violation);
			else
				say("fuzz: INVARIANT VIOLATED: seed %lu batch %ld (the report was "
				    "overwritten); last call %ld: %s\n",
				    seed, b, sh->call, sh->last);
			say("fuzz: reproduce with: fuzz -s %lu -b %ld -r %ld\n", seed, batch, b);
			if (!keep_going)
				return 1;
			violations++;
			continue;
		}
		if (!on_ferrite && WIFEXITED(st) && WEXITSTATUS(st) == SANDBOX_FAILED &&
		    sh->call < 0) {
			say("fuzz: FAILED: the child could not drop root (setuid 65534); "
			    "not fuzzing this machine as root\n");
			return 1;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			exited++;
		} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) {
			segv++;
		} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) {
			sigbus++;
		} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
			/* Out of memory: say which call it was, the first few times. */
			if (++killed <= 3)
				say("fuzz: batch %ld killed by SIGKILL (out of memory?) at call %ld: %s\n", b,
				    sh->call, sh->last);
		} else {
			/* A child may exit with anything once it has unmapped or
			 * overwritten its own code or data; say how, for the record. */
			other++;
			if (verbose || other <= 10)
				say("fuzz: batch %ld ended with %s %d at call %ld: %s\n", b,
				    WIFSIGNALED(st) ? "signal" : "exit status",
				    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), sh->call,
				    sh->last);
		}
		if (verbose && WIFSIGNALED(st))
			say("fuzz: batch %ld killed by signal %d at call %ld: %s\n", b, WTERMSIG(st),
			    sh->call, sh->last);
		if (!quiet && only < 0 && done >= next_report && done < calls) {
			double t = now_s();
			say("fuzz: %ld/%ld calls, %ld batches (exited %ld, SIGSEGV %ld, SIGBUS %ld, "
			    "SIGKILL %ld, other %ld), %.0f calls/s\n",
			    done, calls, batches, exited, segv, sigbus, killed, other,
			    (done) / (t - start > 0 ? t - start : 1));
			next_report += calls / 10 ? calls / 10 : 1;
		}
	}
	double t = now_s() - start;
	remove_scratch();
	say("fuzz: done: %ld calls, %ld batches, seed %lu, exited %ld, SIGSEGV %ld, SIGBUS %ld, "
	    "SIGKILL %ld, other %ld, %.1f s, %.0f calls/s%s\n",
	    done, batches, seed, exited, segv, sigbus, killed, other, t, done / (t > 0 ? t : 1),
	    violations ? "" : "; no invariant violated");
	if (violations) {
		say("fuzz: FAILED: %ld batches violated an invariant (seed %lu)\n", violations, seed);
		return 1;
	}
	return 0;
}

/*
 * smptests: the address space changed under threads running on other CPUs.
 * Each case is built to fail on a kernel with a real SMP bug (a TLB entry
 * left behind on another CPU, a fault installed twice, a frame lost when a
 * thread group dies mid-fault).  Runs on Ferrite (tests/smptests.rs, on one,
 * two and four CPUs) and natively on Linux (run-host-tests.sh), which is
 * the reference: every check is what Linux does.
 *
 *   smptests [-l] [-r ROUNDS] [CASE...]
 *
 * -r ROUNDS: rounds of each hammer (default 200; more to hunt, fewer for
 * a quick look).
 *
 * Cases:
 *   munmap-hammer      readers (one per CPU and one more) spin reading a
 *                      page filled with the round number; the main thread
 *                      munmaps it and only then publishes "gone": a read
 *                      that began after "gone" must fault (SIGSEGV, caught
 *                      per thread), and a read must never see another
 *                      round's number (each round maps a new page at the
 *                      same address with MAP_FIXED: a stale TLB entry
 *                      reads the old frame).
 *   mprotect-hammer    writers spin writing their own slots; the main
 *                      thread mprotects the page read-only and publishes
 *                      it: a write that began after that must fault, and
 *                      the page must not change after mprotect returned.
 *                      Each writer reads back what it wrote (a write to a
 *                      stale frame shows as a lost write).
 *   fork-while-writing writers keep counting in a private page while the
 *                      main thread forks: the child's copy must not change
 *                      after fork, and must hold no count the parent's
 *                      writers reached after fork returned.
 *   same-page-faults   threads meet at a barrier, then all first-touch the
 *                      same fresh page (half of them read first), each
 *                      writing its own slot: every slot must hold its
 *                      writer's value (two frames installed = lost writes).
 *   distinct-page-faults threads meet at a barrier, then each first-touches
 *                      its own pages of one region (interleaved, so they
 *                      share page tables; half read first), checking each
 *                      reads zero: every page must hold its writer's
 *                      values (faults on different pages overlap, each
 *                      clearing its frame with the address space unlocked).
 *   file-remap-faults  threads write-fault their own pages of a private
 *                      file mapping (copies of the file's pages), checking
 *                      each copy holds the file's bytes; each round maps
 *                      the other of two files at the same address
 *                      (MAP_FIXED): every copy must come from the file
 *                      mapped now (a kernel that prepares copies ahead of
 *                      the lock from what the last fault there needed must
 *                      not install one of the old file's pages).
 *   exit-while-faulting a thread group calls exit_group from one thread
 *                      while the others fault, mmap and munmap: it must
 *                      end with that thread's status (tests/smptests.rs
 *                      then checks every frame came back).
 */
#define _GNU_SOURCE
#define SUITE "smptests"
#include "threadutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>

#define PAGE 4096
#define MAX_THREADS 16

static int rounds = 200;

/* One thread per CPU and one more (at least two), so that some thread is
 * always running elsewhere while the main thread changes the space. */
static int nworkers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	n += 1;
	if (n < 2)
		n = 2;
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	return (int)n;
}

/* ---- per-thread SIGSEGV recovery ---- */

static __thread sigjmp_buf *segv_jb;

static void on_segv(int sig)
{
	(void)sig;
	if (segv_jb)
		siglongjmp(*segv_jb, 1);
	/* Not expected here: die of it. */
	signal(SIGSEGV, SIG_DFL);
	raise(SIGSEGV);
}

static void catch_segv(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_segv;
	sa.sa_flags = SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0)
		fail("sigaction: %s", strerror(errno));
}

/* Spin-wait helper: yields now and then (one CPU, more threads). */
static void relax(volatile unsigned *spins)
{
	if (++*spins % 64 == 0)
		sched_yield();
}

static void *xmmap(void *addr, int prot, int flags)
{
	void *p = mmap(addr, PAGE, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	if (addr && p != addr)
		fail("MAP_FIXED mmap at %p gave %p", addr, p);
	return p;
}

/* ---- munmap-hammer ---- */

static struct {
	volatile int *page;    /* the address every round maps */
	atomic_int round;      /* the round mapped now (from 1) */
	atomic_int gone;       /* the last round whose munmap returned */
	atomic_int stop;
	atomic_int read_in[MAX_THREADS]; /* last round a thread read in */
	atomic_int acked[MAX_THREADS];   /* last round a thread saw gone */
	atomic_long reads, faults;
} mh;

static void *munmap_reader(void *arg)
{
	int me = (int)(intptr_t)arg;
	sigjmp_buf jb;
	segv_jb = &jb;
	volatile long reads = 0, faults = 0;
	volatile unsigned spins = 0;
	if (sigsetjmp(jb, 0)) {
		/* The read faulted: fine at any time from the munmap on. Wait
		 * for the main thread to say the munmap returned, say so, and
		 * wait for the next round. */
		faults++;
		int r = atomic_load(&mh.round);
		while (atomic_load(&mh.gone) != r && !atomic_load(&mh.stop))
			relax(&spins);
		if (atomic_load(&mh.gone) == r && atomic_load(&mh.read_in[me]) != r)
			atomic_store(&mh.read_in[me], r);
		atomic_store(&mh.acked[me], r);
		while (atomic_load(&mh.round) == r && !atomic_load(&mh.stop))
			relax(&spins);
	}
	for (;;) {
		if (atomic_load(&mh.stop))
			break;
		int g = atomic_load(&mh.gone);
		int r = atomic_load(&mh.round);
		if (atomic_load(&mh.acked[me]) == r) {
			/* Already through this round: wait for the next. */
			relax(&spins);
			continue;
		}
		int v = *mh.page;
		reads++;
		if (g == r)
			fail("thread %d read the page of round %d (value %d) after its munmap "
			     "returned: a stale TLB entry",
			     me, r, v);
		if (v != r)
			fail("thread %d read %d in round %d: another round's frame (a stale "
			     "TLB entry)",
			     me, v, r);
		atomic_store(&mh.read_in[me], r);
		if (reads % 256 == 0)
			sched_yield();
	}
	atomic_fetch_add(&mh.reads, reads);
	atomic_fetch_add(&mh.faults, faults);
	segv_jb = NULL;
	return NULL;
}

static void wait_all(atomic_int *what, int n, int r)
{
	volatile unsigned spins = 0;
	for (int i = 0; i < n; i++)
		while (atomic_load(&what[i]) != r)
			relax(&spins);
}

static void t_munmap_hammer(void)
{
	catch_segv();
	int n = nworkers();
	/* The threads first (their stacks are mappings too), then the
	 * address: nothing else maps between a round's munmap and the next
	 * round's MAP_FIXED. */
	pthread_t t[MAX_THREADS];
	mh.page = xmmap(NULL, PROT_READ | PROT_WRITE, 0);
	for (int i = 0; i < n; i++)
		t[i] = xcreate(munmap_reader, (void *)(intptr_t)i);
	for (int r = 1; r <= rounds; r++) {
		/* The same address each round (MAP_FIXED), a new frame. */
		volatile int *p = xmmap((void *)mh.page, PROT_READ | PROT_WRITE, MAP_FIXED);
		for (int i = 0; i < PAGE / (int)sizeof(int); i++)
			p[i] = r;
		atomic_store(&mh.round, r);
		/* Every reader has the page in its TLB (read it this round). */
		wait_all(mh.read_in, n, r);
		if (munmap((void *)p, PAGE) != 0)
			fail("munmap: %s", strerror(errno));
		atomic_store(&mh.gone, r);
		/* Every reader faulted on it since. */
		wait_all(mh.acked, n, r);
	}
	atomic_store(&mh.stop, 1);
	for (int i = 0; i < n; i++)
		xjoin(t[i]);
	set_note("%d threads, %d rounds, %ld reads, %ld faults", n, rounds,
		 (long)atomic_load(&mh.reads), (long)atomic_load(&mh.faults));
}

/* ---- mprotect-hammer ---- */

static struct {
	volatile long *page;
	atomic_int round; /* the round writable now */
	atomic_int ro;    /* the last round whose mprotect returned */
	atomic_int stop;
	atomic_int wrote_in[MAX_THREADS];
	atomic_int acked[MAX_THREADS];
	atomic_long writes, faults;
} ph;

/* Each writer owns one slot per cache line. */
#define SLOT(i) ((i) * 8)

static void *mprotect_writer(void *arg)
{
	int me = (int)(intptr_t)arg;
	sigjmp_buf jb;
	segv_jb = &jb;
	volatile long writes = 0, faults = 0;
	volatile unsigned spins = 0;
	volatile long *slot = ph.page + SLOT(me);
	if (sigsetjmp(jb, 0)) {
		faults++;
		int r = atomic_load(&ph.round);
		while (atomic_load(&ph.ro) != r && !atomic_load(&ph.stop))
			relax(&spins);
		if (atomic_load(&ph.ro) == r && atomic_load(&ph.wrote_in[me]) != r)
			atomic_store(&ph.wrote_in[me], r);
		atomic_store(&ph.acked[me], r);
		while (atomic_load(&ph.round) == r && !atomic_load(&ph.stop))
			relax(&spins);
	}
	for (;;) {
		if (atomic_load(&ph.stop))
			break;
		int g = atomic_load(&ph.ro);
		int r = atomic_load(&ph.round);
		if (atomic_load(&ph.acked[me]) == r) {
			relax(&spins);
			continue;
		}
		/* The slot holds what this thread wrote last (the main thread
		 * zeroes it before each round). */
		long v = *slot;
		long want = atomic_load(&ph.wrote_in[me]) == r ? writes : 0;
		if (v != want)
			fail("thread %d: its slot holds %ld, it wrote %ld last (round %d): "
			     "a write went to another frame",
			     me, v, want, r);
		*slot = writes + 1;
		writes++;
		if (g == r)
			fail("thread %d wrote the page of round %d after mprotect(PROT_READ) "
			     "returned: a stale writable TLB entry",
			     me, r);
		atomic_store(&ph.wrote_in[me], r);
		if (writes % 256 == 0)
			sched_yield();
	}
	atomic_fetch_add(&ph.writes, writes);
	atomic_fetch_add(&ph.faults, faults);
	segv_jb = NULL;
	return NULL;
}

static void t_mprotect_hammer(void)
{
	catch_segv();
	int n = nworkers();
	static long snap[PAGE / sizeof(long)];
	ph.page = xmmap(NULL, PROT_READ | PROT_WRITE, 0);
	pthread_t t[MAX_THREADS];
	/* Round 0 is not a round: the writers wait in it (acked = 0). */
	for (int i = 0; i < n; i++)
		t[i] = xcreate(mprotect_writer, (void *)(intptr_t)i);
	long lastw[MAX_THREADS] = {0};
	for (int r = 1; r <= rounds; r++) {
		/* A writer's count goes on across rounds: the slot starts at
		 * what it wrote last. */
		if (r % 2) {
			/* Odd rounds: a new page at the same address. */
			xmmap((void *)ph.page, PROT_READ | PROT_WRITE, MAP_FIXED);
		} else if (mprotect((void *)ph.page, PAGE, PROT_READ | PROT_WRITE) != 0) {
			fail("mprotect(RW): %s", strerror(errno));
		}
		for (int i = 0; i < n; i++)
			ph.page[SLOT(i)] = 0;
		atomic_store(&ph.round, r);
		wait_all(ph.wrote_in, n, r);
		if (mprotect((void *)ph.page, PAGE, PROT_READ) != 0)
			fail("mprotect(PROT_READ): %s", strerror(errno));
		memcpy(snap, (void *)ph.page, PAGE);
		atomic_store(&ph.ro, r);
		wait_all(ph.acked, n, r);
		if (memcmp(snap, (void *)ph.page, PAGE) != 0) {
			for (int i = 0; i < PAGE / (int)sizeof(long); i++)
				if (snap[i] != ph.page[i])
					fail("round %d: word %d changed from %ld to %ld after "
					     "mprotect(PROT_READ) returned",
					     r, i, snap[i], ph.page[i]);
		}
		for (int i = 0; i < n; i++)
			lastw[i] = ph.page[SLOT(i)];
	}
	(void)lastw;
	atomic_store(&ph.stop, 1);
	for (int i = 0; i < n; i++)
		xjoin(t[i]);
	set_note("%d threads, %d rounds, %ld writes, %ld faults", n, rounds,
		 (long)atomic_load(&ph.writes), (long)atomic_load(&ph.faults));
}

/* ---- fork-while-writing ---- */

static struct {
	volatile long *page; /* private: the writers count in it */
	atomic_int stop;
	atomic_int started;
	atomic_long writes;
} fw;

static void *fork_writer(void *arg)
{
	int me = (int)(intptr_t)arg;
	volatile long *slot = fw.page + SLOT(me);
	long last = *slot;
	atomic_fetch_add(&fw.started, 1);
	long writes = 0;
	while (!atomic_load(&fw.stop)) {
		long v = *slot;
		if (v != last)
			fail("writer %d: its slot holds %ld, it wrote %ld last: a write went "
			     "to the frame fork shared (a stale writable TLB entry)",
			     me, v, last);
		*slot = ++last;
		writes++;
		if (writes % 256 == 0)
			sched_yield();
	}
	atomic_fetch_add(&fw.writes, writes);
	return NULL;
}

static void t_fork_while_writing(void)
{
	int n = nworkers();
	fw.page = xmmap(NULL, PROT_READ | PROT_WRITE, 0);
	/* The child's report: its first and last look at the page. */
	long *shared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    -1, 0);
	if (shared == MAP_FAILED)
		fail("mmap shared: %s", strerror(errno));
	for (int i = 0; i < n; i++)
		fw.page[SLOT(i)] = 0;
	pthread_t t[MAX_THREADS];
	for (int i = 0; i < n; i++)
		t[i] = xcreate(fork_writer, (void *)(intptr_t)i);
	volatile unsigned spins = 0;
	while (atomic_load(&fw.started) < n)
		relax(&spins);
	int forks = rounds / 4 > 10 ? rounds / 4 : 10;
	for (int k = 0; k < forks; k++) {
		long after[MAX_THREADS];
		pid_t pid = xfork();
		if (pid == 0) {
			/* The child: one thread. Its copy must stay as it was. */
			long first[MAX_THREADS];
			for (int i = 0; i < n; i++)
				first[i] = fw.page[SLOT(i)];
			for (int j = 0; j < 20; j++) {
				sched_yield();
				for (int i = 0; i < n; i++)
					if (fw.page[SLOT(i)] != first[i])
						_exit(10 + i);
			}
			for (int i = 0; i < n; i++)
				shared[i] = first[i];
			_exit(0);
		}
		/* The parent, after fork returned: the writers' counts now. */
		for (int i = 0; i < n; i++)
			after[i] = fw.page[SLOT(i)];
		int st = xwait(pid);
		if (WIFEXITED(st) && WEXITSTATUS(st) >= 10)
			fail("fork %d: writer %d's slot changed in the child after fork (a "
			     "stale writable TLB entry wrote the shared frame)",
			     k, WEXITSTATUS(st) - 10);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail("fork %d: child status %#x", k, st);
		for (int i = 0; i < n; i++)
			if (shared[i] > after[i])
				fail("fork %d: the child sees writer %d's count %ld, which it "
				     "reached after fork returned (at %ld then)",
				     k, i, shared[i], after[i]);
	}
	atomic_store(&fw.stop, 1);
	for (int i = 0; i < n; i++)
		xjoin(t[i]);
	set_note("%d writers, %d forks, %ld writes", n, forks, (long)atomic_load(&fw.writes));
}

/* ---- same-page-faults ---- */

#define SP_PAGES 32

static struct {
	char *region;
	int n;
	atomic_int arrived;
	atomic_int gen;
} sp;

/* A sense-reversing barrier that yields while it waits. */
static void sp_barrier(void)
{
	int g = atomic_load(&sp.gen);
	if (atomic_fetch_add(&sp.arrived, 1) == sp.n - 1) {
		atomic_store(&sp.arrived, 0);
		atomic_store(&sp.gen, g + 1);
		return;
	}
	volatile unsigned spins = 0;
	while (atomic_load(&sp.gen) == g)
		relax(&spins);
}

static long sp_value(int thread, int round, int page)
{
	return (1L << 48) | ((long)round << 24) | ((long)page << 8) | thread;
}

static void *sp_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	int per = rounds / 10 > 4 ? rounds / 10 : 4;
	for (int r = 0; r < per; r++) {
		for (int p = 0; p < SP_PAGES; p++) {
			volatile long *page = (volatile long *)(sp.region + (size_t)p * PAGE);
			sp_barrier();
			/* Half read first (the zero page, then a write fault). */
			if (me % 2 && page[SLOT(me) + 1] != 0)
				fail("thread %d: a fresh page reads %ld", me, page[SLOT(me) + 1]);
			page[SLOT(me)] = sp_value(me, r, p);
		}
		sp_barrier();
		for (int p = 0; p < SP_PAGES; p++) {
			volatile long *page = (volatile long *)(sp.region + (size_t)p * PAGE);
			for (int i = 0; i < sp.n; i++)
				if (page[SLOT(i)] != sp_value(i, r, p))
					fail("round %d page %d: thread %d sees slot %d holding "
					     "%#lx, not %#lx (a write lost: two frames "
					     "installed?)",
					     r, p, me, i, page[SLOT(i)], sp_value(i, r, p));
		}
		sp_barrier();
		if (me == 0 && madvise(sp.region, SP_PAGES * PAGE, MADV_DONTNEED) != 0)
			fail("madvise: %s", strerror(errno));
		sp_barrier();
	}
	return NULL;
}

static void t_same_page_faults(void)
{
	sp.n = nworkers() + 1;
	if (sp.n < 3)
		sp.n = 3;
	if (sp.n > MAX_THREADS)
		sp.n = MAX_THREADS;
	sp.region = mmap(NULL, SP_PAGES * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sp.region == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	pthread_t t[MAX_THREADS];
	for (int i = 1; i < sp.n; i++)
		t[i] = xcreate(sp_thread, (void *)(intptr_t)i);
	sp_thread((void *)0);
	for (int i = 1; i < sp.n; i++)
		xjoin(t[i]);
	set_note("%d threads, %d pages x %d rounds", sp.n, SP_PAGES,
		 rounds / 10 > 4 ? rounds / 10 : 4);
}

/* ---- distinct-page-faults ---- */

#define DP_PAGES 48 /* per thread */

static long dp_value(int thread, int round, int page, int word)
{
	return (2L << 48) | ((long)round << 32) | ((long)page << 16) | ((long)word << 8) |
	       thread;
}

static void *dp_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	int per = rounds / 10 > 4 ? rounds / 10 : 4;
	for (int r = 0; r < per; r++) {
		sp_barrier();
		for (int k = 0; k < DP_PAGES; k++) {
			int p = k * sp.n + me;
			volatile long *page = (volatile long *)(sp.region + (size_t)p * PAGE);
			if ((me + k) % 2) {
				for (int w = 0; w < PAGE / 8; w += 64)
					if (page[w] != 0)
						fail("thread %d: fresh page %d reads %#lx at word %d",
						     me, p, page[w], w);
			}
			page[0] = dp_value(me, r, p, 0);
			page[PAGE / 8 - 1] = dp_value(me, r, p, 1);
		}
		sp_barrier();
		for (int p = 0; p < DP_PAGES * sp.n; p++) {
			volatile long *page = (volatile long *)(sp.region + (size_t)p * PAGE);
			int owner = p % sp.n;
			if (page[0] != dp_value(owner, r, p, 0) ||
			    page[PAGE / 8 - 1] != dp_value(owner, r, p, 1))
				fail("round %d page %d: thread %d sees %#lx/%#lx, not thread %d's "
				     "values (a fill lost or misplaced)",
				     r, p, me, page[0], page[PAGE / 8 - 1], owner);
			for (int w = 1; w < PAGE / 8 - 1; w += 61)
				if (page[w] != 0)
					fail("round %d page %d: word %d is %#lx, not zero", r, p, w,
					     page[w]);
		}
		sp_barrier();
		if (me == 0 &&
		    madvise(sp.region, (size_t)DP_PAGES * sp.n * PAGE, MADV_DONTNEED) != 0)
			fail("madvise: %s", strerror(errno));
	}
	sp_barrier();
	return NULL;
}

static void t_distinct_page_faults(void)
{
	sp.n = nworkers();
	atomic_store(&sp.arrived, 0);
	sp.region = mmap(NULL, (size_t)DP_PAGES * sp.n * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sp.region == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	pthread_t t[MAX_THREADS];
	for (int i = 1; i < sp.n; i++)
		t[i] = xcreate(dp_thread, (void *)(intptr_t)i);
	dp_thread((void *)0);
	for (int i = 1; i < sp.n; i++)
		xjoin(t[i]);
	if (munmap(sp.region, (size_t)DP_PAGES * sp.n * PAGE) != 0)
		fail("munmap: %s", strerror(errno));
	set_note("%d threads, %d pages each x %d rounds", sp.n, DP_PAGES,
		 rounds / 10 > 4 ? rounds / 10 : 4);
}

/* ---- file-remap-faults ---- */

static int fr_fd[2];

static long fr_tag(int file, int page, int word)
{
	return (3L << 48) | ((long)file << 40) | ((long)page << 8) | word;
}

static void *fr_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	int per = rounds / 10 > 4 ? rounds / 10 : 4;
	for (int r = 0; r < per; r++) {
		int f = r % 2;
		sp_barrier(); /* round r's file is mapped */
		for (int k = 0; k < DP_PAGES; k++) {
			int p = k * sp.n + me;
			volatile long *page = (volatile long *)(sp.region + (size_t)p * PAGE);
			/* A write first: the fault copies the file's page. */
			page[1] = dp_value(me, r, p, 1);
			if (page[0] != fr_tag(f, p, 0) || page[PAGE / 8 - 1] != fr_tag(f, p, 1))
				fail("round %d page %d: thread %d's copy holds %#lx/%#lx, not "
				     "file %d's %#lx (a copy of the other file's page?)",
				     r, p, me, page[0], page[PAGE / 8 - 1], f, fr_tag(f, p, 0));
		}
		sp_barrier(); /* done: the main thread maps the other file */
		sp_barrier();
	}
	return NULL;
}

static void t_file_remap_faults(void)
{
	sp.n = nworkers();
	if (sp.n < 2)
		sp.n = 2;
	atomic_store(&sp.arrived, 0);
	size_t len = (size_t)DP_PAGES * sp.n * PAGE;
	static long buf[PAGE / 8];
	for (int f = 0; f < 2; f++) {
		char path[64];
		snprintf(path, sizeof path, "/tmp/smptests.%d.%d", (int)getpid(), f);
		fr_fd[f] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fr_fd[f] < 0)
			fail("open %s: %s", path, strerror(errno));
		unlink(path);
		for (int p = 0; p < DP_PAGES * sp.n; p++) {
			memset(buf, 0, sizeof buf);
			buf[0] = fr_tag(f, p, 0);
			buf[PAGE / 8 - 1] = fr_tag(f, p, 1);
			if (write(fr_fd[f], buf, PAGE) != PAGE)
				fail("write: %s", strerror(errno));
		}
	}
	sp.region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fr_fd[0], 0);
	if (sp.region == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	pthread_t t[MAX_THREADS];
	for (int i = 1; i < sp.n; i++)
		t[i] = xcreate(fr_thread, (void *)(intptr_t)i);
	int per = rounds / 10 > 4 ? rounds / 10 : 4;
	for (int r = 0; r < per; r++) {
		int f = r % 2;
		volatile long *page;
		sp_barrier();
		for (int k = 0; k < DP_PAGES; k++) {
			int p = k * sp.n;
			page = (volatile long *)(sp.region + (size_t)p * PAGE);
			page[1] = dp_value(0, r, p, 1);
			if (page[0] != fr_tag(f, p, 0))
				fail("round %d page %d: the main thread's copy holds %#lx, not "
				     "file %d's",
				     r, p, page[0], f);
		}
		sp_barrier();
		/* The other file at the same address, replacing this one. */
		if (mmap(sp.region, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
			 fr_fd[1 - f], 0) != sp.region)
			fail("mmap MAP_FIXED: %s", strerror(errno));
		sp_barrier();
	}
	for (int i = 1; i < sp.n; i++)
		xjoin(t[i]);
	if (munmap(sp.region, len) != 0)
		fail("munmap: %s", strerror(errno));
	close(fr_fd[0]);
	close(fr_fd[1]);
	set_note("%d threads, %d pages each x %d rounds, two files", sp.n, DP_PAGES, per);
}

/* ---- exit-while-faulting ---- */

static atomic_int ef_go;

static void *ef_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	unsigned long x = (unsigned long)me * 2654435761u + 1;
	char *held = NULL;
	size_t held_len = 0;
	for (;;) {
		/* Fault pages in, munmap some, map more: whatever is under way
		 * when the group exits must be given back. */
		size_t len = (size_t)(1 + x % 8) * PAGE;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);
		if (p != MAP_FAILED) {
			for (size_t o = 0; o < len; o += PAGE)
				p[o] = (char)me;
			/* Keep the last one mapped: the group dies holding some. */
			if (held)
				munmap(held, held_len);
			held = p;
			held_len = len;
		}
		x = x * 6364136223846793005ul + 1442695040888963407ul;
		atomic_fetch_add(&ef_go, 1);
	}
	return NULL;
}

static void t_exit_while_faulting(void)
{
	int n = nworkers();
	int groups = rounds / 20 > 5 ? rounds / 20 : 5;
	for (int k = 0; k < groups; k++) {
		pid_t pid = xfork();
		if (pid == 0) {
			pthread_t t;
			for (int i = 0; i < n; i++)
				if (pthread_create(&t, NULL, ef_thread, (void *)(intptr_t)i))
					_exit(2);
			/* Let them get going, then end the group from here. */
			unsigned spins = 0;
			while (atomic_load(&ef_go) < 50 * n)
				relax(&spins);
			syscall(SYS_exit_group, 42);
			_exit(3);
		}
		int st = xwait(pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 42)
			fail("group %d: status %#x, expected exit 42", k, st);
	}
	set_note("%d groups of %d threads", groups, n + 1);
}

static struct testcase cases[] = {
	{"munmap-hammer", t_munmap_hammer, 0, 0},
	{"mprotect-hammer", t_mprotect_hammer, 0, 0},
	{"fork-while-writing", t_fork_while_writing, 0, 0},
	{"same-page-faults", t_same_page_faults, 0, 0},
	{"distinct-page-faults", t_distinct_page_faults, 0, 0},
	{"file-remap-faults", t_file_remap_faults, 0, 0},
	{"exit-while-faulting", t_exit_while_faulting, 0, 0},
};

static int options(int argc, char **argv, int i)
{
	if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
		rounds = atoi(argv[i + 1]);
		if (rounds < 1)
			rounds = 1;
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct suite s = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [-r ROUNDS] [CASE...]",
		.option = options,
	};
	return run_suite(&s, argc, argv);
}

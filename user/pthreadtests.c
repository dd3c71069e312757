/*
 * pthreadtests: POSIX threads on musl (clone with CLONE_THREAD, futex,
 * exit vs exit_group, tgkill, fork and execve from a thread).  Runs on
 * Ferrite (tests/threads.rs) and natively on Linux (run-host-tests.sh),
 * which is the reference: every check is what Linux does.
 *
 *   pthreadtests [-l] [CASE...]
 *   pthreadtests --exec-probe PID   (what exec-from-thread runs: checks
 *                                    that it is process PID, one thread)
 */
#define _GNU_SOURCE
#define SUITE "pthreadtests"
#include "threadutil.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>

#define PAGE 4096

/* <linux/futex.h> (musl-gcc has no kernel headers). */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | FUTEX_PRIVATE_FLAG)

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static long futex(volatile uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* ---- create and join ---- */

static void *twice(void *arg) { return (void *)((uintptr_t)arg * 2); }

static void t_create_join(void)
{
	/* Rounds of 32 at once: 320 threads, their stacks reused. */
	for (int round = 0; round < 10; round++) {
		pthread_t t[32];
		for (uintptr_t i = 0; i < 32; i++)
			t[i] = xcreate(twice, (void *)(i + round));
		for (uintptr_t i = 0; i < 32; i++) {
			uintptr_t r = (uintptr_t)xjoin(t[i]);
			CHECK(r == 2 * (i + round), "thread %d returned %lu", (int)i, (unsigned long)r);
		}
	}
}

/* ---- a new thread knows its tid from its first instruction ---- */

/* musl's pthread_self()->tid is the word clone's CLONE_PARENT_SETTID
 * writes; Linux writes it before the thread can run.  Written after,
 * a thread started at once on another CPU sees 0, and its first
 * error-checking mutex lock says EDEADLK (the free lock's owner 0 is
 * "itself"). */
static void *lock_first(void *arg)
{
	(void)arg;
	pthread_mutexattr_t a;
	pthread_mutex_t m;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&m, &a);
	int r = pthread_mutex_lock(&m);
	int again = r == 0 ? pthread_mutex_lock(&m) : 0;
	int u = r == 0 ? pthread_mutex_unlock(&m) : 0;
	return (void *)(uintptr_t)(r == 0 && again == EDEADLK && u == 0 ? 0 : 1000 + r);
}

static void t_tid_known_at_start(void)
{
	for (int round = 0; round < 8; round++) {
		pthread_t t[16];
		for (int i = 0; i < 16; i++)
			t[i] = xcreate(lock_first, NULL);
		for (int i = 0; i < 16; i++) {
			uintptr_t r = (uintptr_t)xjoin(t[i]);
			CHECK(r == 0, "thread %d: first lock gave %d", i, (int)r - 1000);
		}
	}
}

struct ids {
	pid_t pid, tid, ppid, self; /* self: where /proc/self points */
};

static void *ids_of(void *arg)
{
	struct ids *out = arg;
	out->pid = getpid();
	out->tid = gettid_();
	out->ppid = getppid();
	char link[32] = {0};
	out->self = readlink("/proc/self", link, sizeof link - 1) > 0 ? atoi(link) : -1;
	return NULL;
}

static void t_ids(void)
{
	struct ids a[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		t[i] = xcreate(ids_of, &a[i]);
	for (int i = 0; i < 4; i++)
		xjoin(t[i]);
	CHECK(gettid_() == getpid(), "main thread: tid %d, pid %d", (int)gettid_(), (int)getpid());
	for (int i = 0; i < 4; i++) {
		CHECK(a[i].pid == getpid(), "thread pid %d, process %d", (int)a[i].pid, (int)getpid());
		CHECK(a[i].ppid == getppid(), "thread ppid %d, process %d", (int)a[i].ppid,
		      (int)getppid());
		CHECK(a[i].tid != getpid() && a[i].tid > 0, "thread tid %d", (int)a[i].tid);
		CHECK(a[i].self == getpid(), "/proc/self in a thread is %d, the process %d",
		      (int)a[i].self, (int)getpid());
		for (int j = 0; j < i; j++)
			CHECK(a[i].tid != a[j].tid, "two threads with tid %d", (int)a[i].tid);
	}
}

static void *detached_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return NULL;
}

static void t_detached(void)
{
	static atomic_int done;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < 100; i++) {
		pthread_t t;
		int e = pthread_create(&t, &attr, detached_fn, &done);
		CHECK(e == 0, "pthread_create: %s", strerror(e));
	}
	for (int i = 0; i < 500 && atomic_load(&done) < 100; i++)
		sleep_ms(10);
	CHECK(atomic_load(&done) == 100, "%d of 100 detached threads ran", atomic_load(&done));
}

/* ---- mutexes and condition variables ---- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
#define ADDERS 8
#define ADDS 20000

static void *adder(void *arg)
{
	(void)arg;
	for (int i = 0; i < ADDS; i++) {
		pthread_mutex_lock(&lock);
		long v = counter;
		if ((i & 255) == 0)
			sched_yield(); /* hold the lock across a switch: contention */
		counter = v + 1;
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static void t_mutex_counter(void)
{
	pthread_t t[ADDERS];
	for (int i = 0; i < ADDERS; i++)
		t[i] = xcreate(adder, NULL);
	for (int i = 0; i < ADDERS; i++)
		xjoin(t[i]);
	CHECK(counter == (long)ADDERS * ADDS, "counter %ld, want %ld", counter, (long)ADDERS * ADDS);
}

static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int turn;
#define ROUNDS 1000

static void *ponger(void *arg)
{
	int me = (int)(uintptr_t)arg;
	for (int i = 0; i < ROUNDS; i++) {
		pthread_mutex_lock(&lock);
		while (turn % 2 != me)
			pthread_cond_wait(&cond, &lock);
		turn++;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static void t_condvar_pingpong(void)
{
	pthread_t a = xcreate(ponger, (void *)0), b = xcreate(ponger, (void *)1);
	xjoin(a);
	xjoin(b);
	CHECK(turn == 2 * ROUNDS, "turn %d, want %d", turn, 2 * ROUNDS);
}

/* Timed wait on a condition nobody signals: ETIMEDOUT after its time. */
static void t_condvar_timeout(void)
{
	struct timespec t0, deadline;
	clock_gettime(CLOCK_REALTIME, &t0);
	deadline = t0;
	deadline.tv_nsec += 50 * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&lock);
	int e = pthread_cond_timedwait(&cond, &lock, &deadline);
	pthread_mutex_unlock(&lock);
	CHECK(e == ETIMEDOUT, "pthread_cond_timedwait: %s", strerror(e));
	struct timespec t1;
	clock_gettime(CLOCK_REALTIME, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK(ms >= 45, "timed out after %ld ms, want 50", ms);
}

/* ---- memory ---- */

#define WRITERS 4
#define SLICE_PAGES 16
static unsigned char *region;

static void *writer(void *arg)
{
	int me = (int)(uintptr_t)arg;
	unsigned char *mine = region + me * SLICE_PAGES * PAGE;
	for (int i = 0; i < SLICE_PAGES * PAGE; i++)
		mine[i] = (unsigned char)(me * 37 + i);
	return NULL;
}

static void t_shared_mmap(void)
{
	region = mmap(NULL, WRITERS * SLICE_PAGES * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(region != MAP_FAILED, "mmap: %s", strerror(errno));
	pthread_t t[WRITERS];
	for (int i = 0; i < WRITERS; i++)
		t[i] = xcreate(writer, (void *)(uintptr_t)i);
	for (int i = 0; i < WRITERS; i++)
		xjoin(t[i]);
	for (int me = 0; me < WRITERS; me++)
		for (int i = 0; i < SLICE_PAGES * PAGE; i++)
			CHECK(region[me * SLICE_PAGES * PAGE + i] == (unsigned char)(me * 37 + i),
			      "byte %d of slice %d", i, me);
	CHECK(munmap(region, WRITERS * SLICE_PAGES * PAGE) == 0, "munmap");
}

/* A thread touches a page another thread unmapped: SIGSEGV kills the
 * whole process (the case expects it). */
static volatile int step;

static void *toucher(void *arg)
{
	(void)arg;
	region[0] = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST); /* the write before step */
	step = 1;
	while (step != 2)
		sched_yield();
	region[0] = 2; /* unmapped by now */
	step = 3;
	return NULL;
}

static void t_munmap_other_thread(void)
{
	region = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(region != MAP_FAILED, "mmap: %s", strerror(errno));
	pthread_t t = xcreate(toucher, NULL);
	while (step != 1)
		sched_yield();
	CHECK(munmap(region, PAGE) == 0, "munmap");
	step = 2;
	xjoin(t);
	fail("the write after munmap did not fault (step %d)", step);
}

/* mprotect by one thread, a write by another: the writer takes SIGSEGV
 * in its own handler (on its own tid), which makes the page writable. */
static volatile pid_t segv_tid;
static volatile void *segv_addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	segv_tid = gettid_();
	segv_addr = si->si_addr;
	mprotect(region, PAGE, PROT_READ | PROT_WRITE);
}

static volatile pid_t writer_tid;

static void *protected_writer(void *arg)
{
	(void)arg;
	writer_tid = gettid_();
	region[8] = 1;
	/* region is not volatile: without the barrier the compiler stores
	 * step first, and the mprotect can come before this write. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	step = 1;
	while (step != 2)
		sched_yield();
	region[16] = 2; /* read-only now: faults once */
	return NULL;
}

static void t_mprotect_other_thread(void)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	region = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(region != MAP_FAILED, "mmap: %s", strerror(errno));
	step = 0;
	pthread_t t = xcreate(protected_writer, NULL);
	while (step != 1)
		sched_yield();
	CHECK(mprotect(region, PAGE, PROT_READ) == 0, "mprotect");
	step = 2;
	xjoin(t);
	CHECK(segv_tid == writer_tid, "SIGSEGV went to tid %d, the writer is %d", (int)segv_tid,
	      (int)writer_tid);
	CHECK(segv_addr == region + 16, "fault address %p, want %p", (void *)segv_addr,
	      (void *)(region + 16));
	CHECK(region[16] == 2 && region[8] == 1, "the write did not land");
}

/* ---- exit ---- */

static void *exit_seven(void *arg)
{
	(void)arg;
	sleep_ms(20);
	exit(7);
}

/* The main thread leaves with pthread_exit; the process lives on until
 * its other thread calls exit(7): the parent sees 7, once. */
static void t_main_exits_first(void)
{
	pid_t pid = xfork();
	if (pid == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, exit_seven, NULL))
			_exit(90);
		pthread_exit(NULL);
	}
	int st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %#x, want exit 7", st);
	CHECK(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "a second status was reported");
}

static void *exit_value(void *arg)
{
	pthread_exit(arg);
}

static void *blocker(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* One thread's exit leaves the others; exit_group (_exit) from a thread
 * ends them all, the main thread blocked in a join among them. */
static void t_exit_vs_exit_group(void)
{
	pthread_t t = xcreate(exit_value, (void *)42);
	CHECK(xjoin(t) == (void *)42, "pthread_exit value lost");
	pid_t pid = xfork();
	if (pid == 0) {
		pthread_t b1, b2;
		if (pthread_create(&b1, NULL, blocker, NULL) || pthread_create(&b2, NULL, exit_seven, NULL))
			_exit(90);
		pthread_join(b1, NULL); /* never returns */
		_exit(91);
	}
	int st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %#x, want exit 7", st);
}

static int eb_fd;

static void *blocked_reader(void *arg)
{
	(void)arg;
	char c;
	read(eb_fd, &c, 1); /* nothing ever comes */
	return NULL;
}

/* exit_group while another thread sleeps in a pipe read: the group ends,
 * and the read end it held is closed with it (the writer then gets
 * EPIPE), as the kernel must drop what a sleeping thread held. */
static void t_exit_group_frees_blocked_reader(void)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	pid_t pid = xfork();
	if (pid == 0) {
		close(p[1]);
		eb_fd = p[0];
		pthread_t t;
		if (pthread_create(&t, NULL, blocked_reader, NULL))
			_exit(90);
		sleep_ms(30); /* let it block */
		syscall(SYS_exit_group, 5);
		_exit(91);
	}
	close(p[0]);
	int st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5, "status %#x, want exit 5", st);
	char c = 'x';
	ssize_t n = write(p[1], &c, 1);
	CHECK(n == -1 && errno == EPIPE,
	      "write after the reader's group ended: %zd (%s), want EPIPE: the sleeping "
	      "reader's file was never closed",
	      n, n < 0 ? strerror(errno) : "written");
	close(p[1]);
	signal(SIGPIPE, SIG_DFL);
}

static void *segv_now(void *arg)
{
	(void)arg;
	sleep_ms(10);
	*(volatile int *)opaque(8) = 1;
	return NULL;
}

/* A fatal signal in one thread kills the process: the parent sees it. */
static void t_fatal_signal_kills_group(void)
{
	pid_t pid = xfork();
	if (pid == 0) {
		pthread_t b1, b2;
		if (pthread_create(&b1, NULL, blocker, NULL) || pthread_create(&b2, NULL, segv_now, NULL))
			_exit(90);
		for (;;)
			pause();
	}
	int st = xwait(pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x, want SIGSEGV", st);
}

/* ---- signals to threads ---- */

static volatile pid_t usr1_tid;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_tid = gettid_();
}

static volatile pid_t target_tid;
static volatile int target_stop;

static void *target(void *arg)
{
	(void)arg;
	target_tid = gettid_();
	while (!target_stop)
		sched_yield();
	return NULL;
}

static void t_tgkill(void)
{
	signal(SIGUSR1, on_usr1);
	pthread_t t = xcreate(target, NULL);
	while (!target_tid)
		sched_yield();
	CHECK(pthread_kill(t, SIGUSR1) == 0, "pthread_kill");
	for (int i = 0; i < 2000 && !usr1_tid; i++)
		sleep_ms(5);
	CHECK(usr1_tid == target_tid, "SIGUSR1 ran on tid %d, sent to %d", (int)usr1_tid,
	      (int)target_tid);
	/* A tid of another group, an unknown tid. */
	errno = 0;
	CHECK(syscall(SYS_tgkill, getppid(), target_tid, 0) < 0 && errno == ESRCH,
	      "tgkill with the wrong tgid: %s", strerror(errno));
	errno = 0;
	CHECK(syscall(SYS_tgkill, getpid(), target_tid, 0) == 0, "tgkill(sig 0): %s", strerror(errno));
	errno = 0;
	CHECK(syscall(SYS_tkill, -1, SIGUSR1) < 0 && errno == EINVAL, "tkill(-1): %s",
	      strerror(errno));
	usr1_tid = 0;
	CHECK(syscall(SYS_tkill, target_tid, SIGUSR1) == 0, "tkill: %s", strerror(errno));
	for (int i = 0; i < 2000 && !usr1_tid; i++)
		sleep_ms(5);
	CHECK(usr1_tid == target_tid, "tkill's SIGUSR1 ran on tid %d", (int)usr1_tid);
	target_stop = 1;
	xjoin(t);
}

/* kill() to the process goes to a thread that does not block it. */
static void *target_unblocked(void *arg)
{
	sigset_t *set = arg;
	pthread_sigmask(SIG_UNBLOCK, set, NULL);
	target_tid = gettid_();
	while (!target_stop)
		sched_yield();
	return NULL;
}

static void t_kill_to_process(void)
{
	signal(SIGUSR1, on_usr1);
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t t = xcreate(target_unblocked, &set);
	while (!target_tid)
		sched_yield();
	CHECK(kill(getpid(), SIGUSR1) == 0, "kill: %s", strerror(errno));
	for (int i = 0; i < 2000 && !usr1_tid; i++)
		sleep_ms(5);
	CHECK(usr1_tid == target_tid, "kill's SIGUSR1 ran on tid %d, the unblocked thread is %d",
	      (int)usr1_tid, (int)target_tid);
	target_stop = 1;
	xjoin(t);
}

/* ---- fork and exec ---- */

static volatile long spins;

static void *spinner(void *arg)
{
	(void)arg;
	while (!target_stop)
		spins++, sched_yield();
	return NULL;
}

static void *forker(void *arg)
{
	pid_t parent = *(pid_t *)arg;
	pid_t pid = fork();
	if (pid < 0)
		return (void *)1;
	if (pid == 0) {
		/* One thread here: the spinner's counter stands still. */
		if (getppid() != parent)
			_exit(10);
		if (getpid() != gettid_())
			_exit(11);
		long a = spins;
		sleep_ms(50);
		if (spins != a)
			_exit(12);
		/* And threads still work in the child. */
		pthread_t t;
		void *r;
		if (pthread_create(&t, NULL, twice, (void *)21) || pthread_join(t, &r) || r != (void *)42)
			_exit(13);
		_exit(0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return (void *)2;
	return (void *)(uintptr_t)(WIFEXITED(st) ? WEXITSTATUS(st) + 100 : 3);
}

static void t_fork_from_thread(void)
{
	target_stop = 0;
	pthread_t s = xcreate(spinner, NULL);
	pid_t me = getpid();
	pthread_t f = xcreate(forker, &me);
	uintptr_t r = (uintptr_t)xjoin(f);
	target_stop = 1;
	xjoin(s);
	CHECK(r == 100, "forking thread: %lu (100+status of the child, see forker)", (unsigned long)r);
}

static char *self_exe = "/proc/self/exe";

static void *execer(void *arg)
{
	char pid[16];
	snprintf(pid, sizeof pid, "%d", (int)(intptr_t)arg);
	char *argv[] = {"pthreadtests", "--exec-probe", pid, NULL};
	sleep_ms(10);
	execv(self_exe, argv);
	_exit(20);
}

/* execve from a thread that is not the main one: the others end, the
 * new program is the same process (pid), with one thread. */
static void t_exec_from_thread(void)
{
	pid_t pid = xfork();
	if (pid == 0) {
		pthread_t b, e;
		if (pthread_create(&b, NULL, blocker, NULL) ||
		    pthread_create(&e, NULL, execer, (void *)(intptr_t)getpid()))
			_exit(90);
		pthread_join(b, NULL);
		_exit(91);
	}
	int st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, want exit 0 (probe: 1 wrong pid)",
	      st);
	CHECK(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "a second status was reported");
}

/* ---- futex directly ---- */

static void on_alarm(int sig) { (void)sig; }

static void t_futex_errors(void)
{
	static volatile uint32_t word = 5;
	struct timespec ts = {0, 20 * 1000000};
	errno = 0;
	CHECK(futex(&word, FUTEX_WAIT_PRIVATE, 6, &ts) < 0 && errno == EAGAIN,
	      "wait with the wrong value: %s", strerror(errno));
	errno = 0;
	CHECK(futex(&word, FUTEX_WAIT, 6, &ts) < 0 && errno == EAGAIN,
	      "shared wait with the wrong value: %s", strerror(errno));
	errno = 0;
	CHECK(futex(&word, FUTEX_WAIT_PRIVATE, 5, &ts) < 0 && errno == ETIMEDOUT,
	      "timed wait: %s", strerror(errno));
	CHECK(futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL) == 0, "wake with no waiter");
	errno = 0;
	CHECK(futex((volatile uint32_t *)((char *)&word + 1), FUTEX_WAKE, 1, NULL) < 0 &&
		      errno == EINVAL,
	      "unaligned: %s", strerror(errno));
	errno = 0;
	CHECK(futex(opaque(8), FUTEX_WAIT, 0, &ts) < 0 && errno == EFAULT, "bad address: %s",
	      strerror(errno));
	struct timespec bad = {0, 1000000000};
	errno = 0;
	CHECK(futex(&word, FUTEX_WAIT_PRIVATE, 5, &bad) < 0 && errno == EINVAL, "bad timeout: %s",
	      strerror(errno));
	errno = 0;
	CHECK(futex(&word, FUTEX_WAIT_PRIVATE, 5, opaque(8)) < 0 && errno == EFAULT,
	      "bad timeout pointer: %s", strerror(errno));
	/* A signal with a handler (no SA_RESTART) ends a wait: EINTR. */
	struct sigaction sa = {0};
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 0}, {0, 30000}};
	setitimer(ITIMER_REAL, &it, NULL);
	struct timespec longer = {5, 0};
	errno = 0;
	CHECK(futex(&word, FUTEX_WAIT_PRIVATE, 5, &longer) < 0 && errno == EINTR,
	      "wait and a signal: %s", strerror(errno));
}

static volatile uint32_t pword;
static volatile int waiter_in;

static void *futex_waiter(void *arg)
{
	(void)arg;
	waiter_in = 1;
	while (pword == 0) {
		struct timespec ts = {2, 0};
		futex(&pword, FUTEX_WAIT_PRIVATE, 0, &ts);
	}
	return (void *)1;
}

/* The wake is tried until it finds the waiter asleep (up to 10 s), the
 * word still 0 (a woken waiter just waits again): after a fixed 20 ms,
 * a waiter held up between its flag and its futex call (its CPU
 * descheduled on a loaded host) was not waiting yet, and the wake
 * found nobody. */
static void t_futex_wake_thread(void)
{
	pthread_t t = xcreate(futex_waiter, NULL);
	while (!waiter_in)
		sched_yield();
	long n = 0;
	for (int i = 0; i < 2000 && n == 0; i++) {
		sleep_ms(5);
		n = futex(&pword, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	}
	CHECK(n == 1, "woke %ld, want the 1 waiter", n);
	pword = 1;
	futex(&pword, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	CHECK(xjoin(t) == (void *)1, "join");
}

/* A shared futex in MAP_SHARED memory: a forked child waits (no PRIVATE
 * flag), the parent wakes it. */
static void t_futex_shared(void)
{
	volatile uint32_t *w = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				    -1, 0);
	CHECK(w != MAP_FAILED, "mmap: %s", strerror(errno));
	w[1] = 0;
	pid_t pid = xfork();
	if (pid == 0) {
		w[1] = 1;
		struct timespec ts = {5, 0};
		long r = futex(&w[0], FUTEX_WAIT, 0, &ts);
		_exit(r == 0 ? 0 : 30 + errno % 100);
	}
	while (w[1] != 1)
		sched_yield();
	long n = 0;
	for (int i = 0; i < 500 && n == 0; i++) {
		sleep_ms(5);
		n = futex(&w[0], FUTEX_WAKE, 1, NULL);
	}
	CHECK(n == 1, "woke %ld", n);
	int st = xwait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x (30+errno: the wait failed)",
	      st);
}

static struct testcase cases[] = {
	{"create-join", t_create_join, 0, 0},
	{"ids", t_ids, 0, 0},
	{"tid-known-at-start", t_tid_known_at_start, 0, 0},
	{"detached", t_detached, 0, 0},
	{"mutex-counter", t_mutex_counter, 0, 0},
	{"condvar-pingpong", t_condvar_pingpong, 0, 0},
	{"condvar-timeout", t_condvar_timeout, 0, 0},
	{"shared-mmap", t_shared_mmap, 0, 0},
	{"munmap-other-thread", t_munmap_other_thread, SIGSEGV, 0},
	{"mprotect-other-thread", t_mprotect_other_thread, 0, 0},
	{"main-exits-first", t_main_exits_first, 0, 0},
	{"exit-vs-exit-group", t_exit_vs_exit_group, 0, 0},
	{"exit-group-frees-blocked-reader", t_exit_group_frees_blocked_reader, 0, 0},
	{"fatal-signal-kills-group", t_fatal_signal_kills_group, 0, 0},
	{"tgkill", t_tgkill, 0, 0},
	{"kill-to-process", t_kill_to_process, 0, 0},
	{"fork-from-thread", t_fork_from_thread, 0, 0},
	{"exec-from-thread", t_exec_from_thread, 0, 0},
	{"futex-errors", t_futex_errors, 0, 0},
	{"futex-wake-thread", t_futex_wake_thread, 0, 0},
	{"futex-shared", t_futex_shared, 0, 0},
};

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--exec-probe") == 0) {
		/* The same process, one thread: its tid is its pid. */
		int ok = getpid() == atoi(argv[2]) && gettid_() == getpid();
		if (!ok)
			say("pthreadtests: exec probe: pid %d tid %d, want %s\n", (int)getpid(),
			    (int)gettid_(), argv[2]);
		return ok ? 0 : 1;
	}
	static const struct suite s = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [CASE...]",
	};
	return run_suite(&s, argc, argv);
}

/*
 * sigtests2: queued real-time signals (rt_sigqueueinfo, rt_tgsigqueueinfo,
 * the RLIMIT_SIGPENDING limit), rt_sigtimedwait, alarm and the interval
 * timers, process groups and sessions (setpgid, setsid, kill and waitpid by
 * group, /proc/PID/stat), and the signal masks of ppoll and pselect6, as
 * Linux x86_64 does them.  Every case runs in a child of its own, which
 * first makes itself a process group of its own; the parent checks how it
 * ended.  Runs natively on Linux too (user/run-host-tests.sh).
 *
 * Usage: sigtests2 [-l] [--skip CASE]... [CASE...]
 *   -l        list the cases
 *   CASE...   run only these
 *
 * Output: "sigtests2: <case> ... ok" or "... FAILED (<why>)" per case, then
 * "sigtests2: N passed, M failed"; exit status 0 iff all passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE "sigtests2"
#include "testcase.h"

/* A raw system call that must fail with `err`. */
#define FAILS(call, err, what)                                                           \
	do {                                                                             \
		long r_ = (call);                                                        \
		CHECK(r_ == -1 && errno == (err), "%s: %ld (%s), expected %s", what, r_, \
		      strerror(errno), strerror(err));                                   \
	} while (0)

/* The signals the recording handler saw, in order. */
#define MAXREC 64
static volatile int nrec;
static volatile int rec_sig[MAXREC], rec_code[MAXREC], rec_pid[MAXREC], rec_val[MAXREC];

static void record(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (nrec < MAXREC) {
		rec_sig[nrec] = sig;
		rec_code[nrec] = si->si_code;
		rec_pid[nrec] = si->si_pid;
		rec_val[nrec] = si->si_value.sival_int;
	}
	nrec++;
}

static void handle(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = record;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction(%d): %s", sig, strerror(errno));
}

static void block(int sig, int how)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	CHECK(sigprocmask(how, &s, NULL) == 0, "sigprocmask: %s", strerror(errno));
}

static int blocked_now(int sig)
{
	sigset_t s;
	sigprocmask(SIG_BLOCK, NULL, &s);
	return sigismember(&s, sig);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long queueinfo(pid_t pid, int sig, int code, int value)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = sig;
	si.si_code = code;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = value;
	return syscall(SYS_rt_sigqueueinfo, pid, sig, &si);
}

static long timedwait(const sigset_t *set, siginfo_t *si, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	return syscall(SYS_rt_sigtimedwait, set, si, ms < 0 ? NULL : &ts, 8);
}

/* ---- queued real-time signals ---- */

/* Every real-time send is one delivery, in order, with its own info;
 * standard signals coalesce; the lower signal goes first. */
static void t_rt_queue(void)
{
	int rt = SIGRTMIN + 1;
	handle(rt);
	handle(SIGUSR1);
	block(rt, SIG_BLOCK);
	block(SIGUSR1, SIG_BLOCK);
	for (int i = 0; i < 5; i++) {
		union sigval v = {.sival_int = 100 + i};
		CHECK(sigqueue(getpid(), rt, v) == 0, "sigqueue %d: %s", i, strerror(errno));
	}
	CHECK(kill(getpid(), rt) == 0, "kill(rt): %s", strerror(errno));
	CHECK(kill(getpid(), SIGUSR1) == 0 && kill(getpid(), SIGUSR1) == 0, "kill(SIGUSR1)");
	sigset_t p;
	sigpending(&p);
	CHECK(sigismember(&p, rt) && sigismember(&p, SIGUSR1), "not both pending");
	CHECK(nrec == 0, "delivered while blocked");
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	CHECK(nrec == 7, "%d deliveries, expected 7 (1 SIGUSR1 + 6 queued)", nrec);
	/* Both are taken at once, the lower first: the real-time handler's
	 * frame goes on top of SIGUSR1's and runs first (Linux too). */
	int usr1 = 0, k = 0;
	for (int i = 0; i < 7; i++) {
		if (rec_sig[i] == SIGUSR1) {
			usr1++;
			CHECK(rec_code[i] == SI_USER, "SIGUSR1 code %d", rec_code[i]);
			continue;
		}
		int want_code = k < 5 ? SI_QUEUE : SI_USER;
		CHECK(rec_sig[i] == rt && rec_code[i] == want_code && rec_pid[i] == getpid() &&
			      (k == 5 || rec_val[i] == 100 + k),
		      "rt entry %d: signal %d code %d value %d pid %d", k, rec_sig[i], rec_code[i],
		      rec_val[i], rec_pid[i]);
		k++;
	}
	CHECK(usr1 == 1 && k == 6, "%d SIGUSR1, %d real-time", usr1, k);
	sigpending(&p);
	CHECK(!sigismember(&p, rt), "still pending after all deliveries");
}

/* si_code and si_pid of kill, tgkill, rt_tgsigqueueinfo; the rules of
 * rt_sigqueueinfo (EPERM for kernel codes to others, EFAULT, EINVAL,
 * ESRCH). */
static void t_rt_codes(void)
{
	int rt = SIGRTMIN + 2;
	handle(rt);
	nrec = 0;
	CHECK(syscall(SYS_tgkill, getpid(), getpid(), rt) == 0, "tgkill: %s", strerror(errno));
	CHECK(nrec == 1 && rec_code[0] == SI_TKILL && rec_pid[0] == getpid(), "tgkill: code %d",
	      rec_code[0]);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_code = SI_QUEUE;
	si.si_pid = 4242;
	si.si_value.sival_int = 77;
	nrec = 0;
	CHECK(syscall(SYS_rt_tgsigqueueinfo, getpid(), getpid(), rt, &si) == 0,
	      "rt_tgsigqueueinfo: %s", strerror(errno));
	CHECK(nrec == 1 && rec_code[0] == SI_QUEUE && rec_pid[0] == 4242 && rec_val[0] == 77,
	      "rt_tgsigqueueinfo: code %d pid %d value %d", rec_code[0], rec_pid[0], rec_val[0]);
	/* A code >= 0 is fine for oneself... */
	nrec = 0;
	CHECK(queueinfo(getpid(), rt, SI_USER, 5) == 0, "queueinfo(self, SI_USER): %s",
	      strerror(errno));
	CHECK(nrec == 1 && rec_code[0] == SI_USER, "SI_USER to self: %d", nrec);
	/* ...but not for another process. The child waits with the signal
	 * blocked until sigsuspend (no race with the send). */
	block(rt, SIG_BLOCK);
	pid_t child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		signal(rt, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigsuspend(&none);
		_exit(0);
	}
	FAILS(queueinfo(child, rt, SI_USER, 0), EPERM, "SI_USER to a child");
	FAILS(queueinfo(child, rt, SI_TKILL, 0), EPERM, "SI_TKILL to a child");
	FAILS(queueinfo(child, rt, SI_KERNEL, 0), EPERM, "SI_KERNEL to a child");
	FAILS(syscall(SYS_rt_sigqueueinfo, child, rt, (void *)16), EFAULT, "bad info");
	FAILS(queueinfo(child, 65, SI_QUEUE, 0), EINVAL, "signal 65");
	CHECK(queueinfo(child, 0, SI_QUEUE, 0) == 0, "signal 0: %s", strerror(errno));
	FAILS(queueinfo(0x3fffffff, rt, SI_QUEUE, 0), ESRCH, "no such process");
	memset(&si, 0, sizeof si);
	si.si_code = SI_QUEUE;
	FAILS(syscall(SYS_rt_tgsigqueueinfo, 0, child, rt, &si), EINVAL, "tgid 0");
	FAILS(syscall(SYS_rt_tgsigqueueinfo, getpid(), child, rt, &si), ESRCH, "wrong tgid");
	/* The child dies of it (the default action of a real-time signal). */
	CHECK(queueinfo(child, rt, SI_QUEUE, 0) == 0, "queue to child: %s", strerror(errno));
	int st;
	CHECK(waitpid(child, &st, 0) == child && WIFSIGNALED(st) && WTERMSIG(st) == rt,
	      "child status %#x", st);
}

/* The queue is bounded by RLIMIT_SIGPENDING: past it, sigqueue fails with
 * EAGAIN while kill still makes the signal pending (its info lost). */
static void t_rt_limit(void)
{
	int rt = SIGRTMIN + 3;
	struct rlimit rl = {8, 8};
	CHECK(setrlimit(RLIMIT_SIGPENDING, &rl) == 0, "setrlimit: %s", strerror(errno));
	block(rt, SIG_BLOCK);
	int n = 0;
	for (; n < 100; n++) {
		union sigval v = {.sival_int = n};
		if (sigqueue(getpid(), rt, v) != 0)
			break;
	}
	CHECK(n >= 1 && n <= 8 && errno == EAGAIN, "queued %d, then %s", n, strerror(errno));
	CHECK(kill(getpid(), rt) == 0, "kill with the queue full: %s", strerror(errno));
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, rt);
	siginfo_t si;
	for (int i = 0; i < n; i++) {
		CHECK(timedwait(&set, &si, 0) == rt, "entry %d: %s", i, strerror(errno));
		CHECK(si.si_value.sival_int == i && si.si_code == SI_QUEUE, "entry %d: value %d", i,
		      si.si_value.sival_int);
	}
	FAILS(timedwait(&set, &si, 0), EAGAIN, "after the queue");
	/* Room again. */
	union sigval v = {.sival_int = 9};
	CHECK(sigqueue(getpid(), rt, v) == 0, "sigqueue after draining: %s", strerror(errno));
	CHECK(timedwait(&set, &si, 0) == rt && si.si_value.sival_int == 9, "after draining");
}

/* A process that dies with signals queued and timers armed: nothing stays
 * behind (tests/signals2.rs counts the frames). */
static void t_rt_exit(void)
{
	int rt = SIGRTMIN + 4;
	block(rt, SIG_BLOCK);
	block(SIGALRM, SIG_BLOCK);
	int n = 0;
	for (; n < 600; n++) {
		union sigval v = {.sival_int = n};
		if (sigqueue(getpid(), rt, v) != 0)
			break;
	}
	CHECK(n >= 100, "only %d queued: %s", n, strerror(errno));
	alarm(100);
	struct itimerval it = {{0, 10000}, {0, 10000}};
	CHECK(setitimer(ITIMER_PROF, &it, NULL) == 0, "setitimer: %s", strerror(errno));
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
	/* Exits with them all. */
}

/* ---- rt_sigtimedwait ---- */

static void t_sigtimedwait(void)
{
	handle(SIGUSR2);
	block(SIGUSR2, SIG_BLOCK);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	siginfo_t si;
	/* Nothing pending: a zero timeout is EAGAIN at once, a short one
	 * after the time. */
	FAILS(timedwait(&set, &si, 0), EAGAIN, "zero timeout");
	long t0 = now_ms();
	FAILS(timedwait(&set, &si, 50), EAGAIN, "50 ms timeout");
	long took = now_ms() - t0;
	CHECK(took >= 45 && took < 2000, "50 ms timeout took %ld ms", took);
	/* Pending: taken, not delivered to the handler. */
	nrec = 0;
	raise(SIGUSR2);
	memset(&si, 0, sizeof si);
	CHECK(sigwaitinfo(&set, &si) == SIGUSR2, "sigwaitinfo: %s", strerror(errno));
	CHECK(si.si_signo == SIGUSR2 && si.si_code == SI_TKILL && si.si_pid == getpid(),
	      "info: signo %d code %d pid %d", si.si_signo, si.si_code, si.si_pid);
	CHECK(nrec == 0, "the handler ran too");
	CHECK(blocked_now(SIGUSR2), "the mask changed");
	/* Sent while waiting, by another process. */
	pid_t child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		sleep_ms(30);
		kill(getppid(), SIGUSR2);
		_exit(0);
	}
	memset(&si, 0, sizeof si);
	CHECK(timedwait(&set, &si, 5000) == SIGUSR2, "wait for the child's: %s", strerror(errno));
	CHECK(si.si_code == SI_USER && si.si_pid == child, "child's: code %d pid %d", si.si_code,
	      si.si_pid);
	waitpid(child, NULL, 0);
	/* A signal outside the set ends the wait: EINTR, its handler ran. */
	handle(SIGALRM);
	nrec = 0;
	struct itimerval it = {{0, 0}, {0, 30000}};
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
	t0 = now_ms();
	FAILS(timedwait(&set, &si, 5000), EINTR, "interrupted wait");
	CHECK(nrec == 1 && rec_sig[0] == SIGALRM, "handler: %d runs", nrec);
	CHECK(now_ms() - t0 < 3000, "the alarm did not end the wait early");
	/* A signal ignored by default (SIGCHLD) is not lost while waited for. */
	block(SIGCHLD, SIG_BLOCK);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		sleep_ms(30);
		_exit(7);
	}
	memset(&si, 0, sizeof si);
	CHECK(timedwait(&set, &si, 5000) == SIGCHLD, "SIGCHLD: %s", strerror(errno));
	CHECK(si.si_code == CLD_EXITED && si.si_pid == child && si.si_status == 7,
	      "SIGCHLD info: code %d pid %d status %d", si.si_code, si.si_pid, si.si_status);
	waitpid(child, NULL, 0);
	/* Bad arguments. */
	struct timespec bad = {0, 1000000000};
	FAILS(syscall(SYS_rt_sigtimedwait, &set, NULL, &bad, 8), EINVAL, "tv_nsec 1e9");
	struct timespec neg = {-1, 0};
	FAILS(syscall(SYS_rt_sigtimedwait, &set, NULL, &neg, 8), EINVAL, "tv_sec -1");
	FAILS(syscall(SYS_rt_sigtimedwait, &set, NULL, NULL, 4), EINVAL, "sigsetsize 4");
	FAILS(syscall(SYS_rt_sigtimedwait, (void *)16, NULL, NULL, 8), EFAULT, "bad set");
	FAILS(syscall(SYS_rt_sigtimedwait, &set, NULL, (void *)16, 8), EFAULT, "bad timeout");
}

/* ---- alarm and interval timers ---- */

static void t_alarm(void)
{
	CHECK(alarm(10) == 0, "first alarm");
	unsigned left = alarm(5);
	CHECK(left == 10 || left == 9, "alarm(5) returned %u, expected 10", left);
	CHECK(alarm(0) == 5, "alarm(0) did not return 5");
	CHECK(alarm(0) == 0, "alarm(0) twice");
	handle(SIGALRM);
	nrec = 0;
	long t0 = now_ms();
	alarm(1);
	while (nrec == 0 && now_ms() - t0 < 5000)
		pause();
	long took = now_ms() - t0;
	CHECK(nrec == 1 && rec_sig[0] == SIGALRM && rec_code[0] == SI_KERNEL,
	      "SIGALRM: %d runs, code %d", nrec, rec_code[0]);
	CHECK(took >= 950 && took < 2000, "alarm(1) came after %ld ms", took);
	/* An alarm interrupts a sleep: EINTR. */
	nrec = 0;
	struct itimerval it = {{0, 0}, {0, 20000}};
	setitimer(ITIMER_REAL, &it, NULL);
	struct timespec ts = {5, 0};
	CHECK(nanosleep(&ts, &ts) == -1 && errno == EINTR, "nanosleep not interrupted");
	CHECK(nrec == 1 && ts.tv_sec >= 3, "nanosleep: %d runs, %ld s left", nrec, (long)ts.tv_sec);
	/* A forked child has no timers. */
	alarm(50);
	pid_t child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		struct itimerval cur;
		getitimer(ITIMER_REAL, &cur);
		_exit(alarm(0) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0 ? 0 : 1);
	}
	int st;
	CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the child inherited the alarm");
	left = alarm(0);
	CHECK(left >= 49 && left <= 50, "the parent's alarm: %u left", left);
}

static void t_itimer_real(void)
{
	handle(SIGALRM);
	nrec = 0;
	struct itimerval it = {{0, 20000}, {0, 20000}}, old, cur;
	long t0 = now_ms();
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
	CHECK(getitimer(ITIMER_REAL, &cur) == 0, "getitimer: %s", strerror(errno));
	CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == 20000,
	      "interval %ld.%06ld", (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec);
	CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 20000,
	      "value %ld.%06ld", (long)cur.it_value.tv_sec, (long)cur.it_value.tv_usec);
	sigset_t none;
	sigemptyset(&none);
	while (nrec < 5 && now_ms() - t0 < 5000)
		sigsuspend(&none);
	long took = now_ms() - t0;
	CHECK(nrec >= 5 && took >= 90 && took < 2000, "%d SIGALRMs after %ld ms", nrec, took);
	/* Disarmed: the old value comes back. */
	struct itimerval zero = {{0, 0}, {0, 0}};
	CHECK(setitimer(ITIMER_REAL, &zero, &old) == 0, "disarm: %s", strerror(errno));
	CHECK(old.it_interval.tv_usec == 20000 && old.it_value.tv_usec <= 20000, "old value");
	getitimer(ITIMER_REAL, &cur);
	CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0 && cur.it_interval.tv_usec == 0,
	      "still armed after disarming");
	int seen = nrec;
	sleep_ms(60);
	CHECK(nrec == seen, "SIGALRM after disarming");
	/* Bad arguments. */
	struct itimerval bad = {{0, 0}, {0, 1000000}};
	FAILS(setitimer(ITIMER_REAL, &bad, NULL), EINVAL, "tv_usec 1e6");
	struct itimerval neg = {{0, 0}, {-1, 0}};
	FAILS(setitimer(ITIMER_REAL, &neg, NULL), EINVAL, "tv_sec -1");
	FAILS(syscall(SYS_setitimer, 3, &it, NULL), EINVAL, "timer 3");
	FAILS(syscall(SYS_getitimer, 3, &cur), EINVAL, "getitimer 3");
	FAILS(syscall(SYS_getitimer, ITIMER_REAL, (void *)16), EFAULT, "getitimer bad pointer");
	FAILS(syscall(SYS_setitimer, ITIMER_REAL, (void *)16, NULL), EFAULT, "setitimer bad pointer");
}

/* ITIMER_VIRTUAL and ITIMER_PROF count the CPU time of a spinning process. */
static void t_itimer_cpu(void)
{
	handle(SIGVTALRM);
	handle(SIGPROF);
	nrec = 0;
	struct itimerval it = {{0, 0}, {0, 50000}};
	CHECK(setitimer(ITIMER_VIRTUAL, &it, NULL) == 0, "ITIMER_VIRTUAL: %s", strerror(errno));
	CHECK(setitimer(ITIMER_PROF, &it, NULL) == 0, "ITIMER_PROF: %s", strerror(errno));
	/* Not wall time: a sleep does not count for VIRTUAL. */
	struct itimerval cur;
	getitimer(ITIMER_VIRTUAL, &cur);
	/* (Linux rounds it to its tick.) */
	CHECK(cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 100000, "virtual value %ld",
	      (long)cur.it_value.tv_usec);
	long t0 = now_ms();
	int vt = 0, prof = 0;
	volatile unsigned long spin = 0;
	while ((!vt || !prof) && now_ms() - t0 < 10000) {
		spin++;
		for (int i = 0; i < nrec && i < MAXREC; i++) {
			vt |= rec_sig[i] == SIGVTALRM;
			prof |= rec_sig[i] == SIGPROF;
		}
	}
	CHECK(vt && prof, "after %ld ms: SIGVTALRM %d, SIGPROF %d", now_ms() - t0, vt, prof);
}

/* ---- process groups and sessions ---- */

/* Field `n` (1-based) of /proc/PID/stat, -1 if there is none. */
static long stat_field(pid_t pid, int n)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t len = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p += 2; /* field 3 */
	for (int f = 3; f < n; f++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	return strtol(p, NULL, 10);
}

static void pgrp_in_session(void)
{
	pid_t me = getpid();
	CHECK(getpgrp() == me && getpgid(0) == me && getpgid(me) == me, "pgid %d, expected %d",
	      getpgrp(), me);
	pid_t sid = getsid(0);
	CHECK(sid > 0 && sid == getsid(me) && sid != me, "sid %d", sid);
	CHECK(stat_field(me, 5) == me && stat_field(me, 6) == sid, "/proc stat: pgrp %ld session %ld",
	      stat_field(me, 5), stat_field(me, 6));
	/* A group leader cannot start a session. */
	FAILS(setsid(), EPERM, "setsid of a group leader");
	FAILS(setpgid(0, -1), EINVAL, "pgid -1");
	FAILS(getpgid(0x3fffffff), ESRCH, "getpgid of nobody");
	FAILS(getsid(0x3fffffff), ESRCH, "getsid of nobody");
	FAILS(setpgid(getppid(), getppid()), ESRCH, "setpgid of the parent");
	FAILS(setpgid(0, 0x3fffffff), EPERM, "joining a group that does not exist");
	/* Children inherit the group; the parent moves one to its own. */
	int go[2];
	CHECK(pipe(go) == 0, "pipe");
	pid_t a = fork();
	CHECK(a >= 0, "fork");
	if (a == 0) {
		char c;
		read(go[0], &c, 1);
		/* Now a group leader of its own: setsid fails. */
		_exit(getpgrp() == getpid() && setsid() == -1 && errno == EPERM ? 0 : 1);
	}
	CHECK(getpgid(a) == me, "child's group %d, expected %d", getpgid(a), me);
	CHECK(setpgid(a, a) == 0 && getpgid(a) == a, "setpgid(child): %s", strerror(errno));
	CHECK(stat_field(a, 5) == a && stat_field(a, 6) == sid, "child's /proc stat: %ld %ld",
	      stat_field(a, 5), stat_field(a, 6));
	/* Back into ours: a group of the same session. */
	CHECK(setpgid(a, me) == 0 && getpgid(a) == me, "setpgid back: %s", strerror(errno));
	CHECK(setpgid(a, a) == 0, "setpgid again: %s", strerror(errno));
	write(go[1], "x", 1);
	int st;
	CHECK(waitpid(a, &st, 0) == a && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child a: status %#x", st);
	/* A child that is not a leader starts a session; then it is out of
	 * reach of setpgid. */
	int ready[2];
	CHECK(pipe(ready) == 0, "pipe");
	pid_t b = fork();
	CHECK(b >= 0, "fork");
	if (b == 0) {
		pid_t s = setsid();
		int ok = s == getpid() && getsid(0) == s && getpgrp() == s;
		ok = ok && setpgid(0, getppid()) == -1 && errno == EPERM;
		write(ready[1], ok ? "y" : "n", 1);
		char c;
		read(go[0], &c, 1);
		_exit(0);
	}
	char c = 0;
	read(ready[0], &c, 1);
	CHECK(c == 'y', "setsid in the child");
	CHECK(getsid(b) == b && getpgid(b) == b, "child b: sid %d pgid %d", getsid(b), getpgid(b));
	FAILS(setpgid(b, me), EPERM, "setpgid of a child in another session");
	CHECK(stat_field(b, 6) == b, "child b's /proc session %ld", stat_field(b, 6));
	write(go[1], "x", 1);
	waitpid(b, NULL, 0);
}

/* The checks run in a session of the case's own making, as a group leader
 * that is not the session leader: the runner's session may be out of sight
 * (in a PID namespace whose session leader is outside it, getsid gives 0). */
static void t_pgrp(void)
{
	pid_t h = fork();
	CHECK(h >= 0, "fork");
	if (h == 0) {
		/* Not a group leader (the case is), so setsid works. */
		if (setsid() != getpid())
			fail("setsid: %s", strerror(errno));
		pid_t g = fork();
		if (g < 0)
			fail("fork: %s", strerror(errno));
		if (g == 0) {
			if (setpgid(0, 0) != 0)
				fail("setpgid: %s", strerror(errno));
			pgrp_in_session();
			_exit(0);
		}
		int st;
		if (waitpid(g, &st, 0) != g)
			fail("waitpid: %s", strerror(errno));
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	int st;
	CHECK(waitpid(h, &st, 0) == h && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "session child: status %#x", st);
}

/* kill(0), kill(-pgid), waitpid(0) and waitpid(-pgid). */
static void t_kill_group(void)
{
	pid_t me = getpid();
	/* Two children in our group, one in a group of its own. */
	pid_t kids[3];
	for (int i = 0; i < 3; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0, "fork");
		if (kids[i] == 0) {
			if (i == 2)
				setpgid(0, 0);
			for (;;)
				pause();
		}
	}
	/* Ours only after the fork: the children die of it. */
	handle(SIGUSR1);
	nrec = 0;
	pid_t other = kids[2];
	setpgid(other, other); /* both sides, as shells do */
	CHECK(getpgid(other) == other, "the third child's group");
	CHECK(kill(-other, 0) == 0, "kill(-group, 0): %s", strerror(errno));
	FAILS(kill(-0x3fffffff, SIGUSR1), ESRCH, "kill of an empty group");
	/* kill(0): ours (the caller too, whose handler runs). */
	CHECK(kill(0, SIGUSR1) == 0, "kill(0): %s", strerror(errno));
	CHECK(nrec == 1 && rec_sig[0] == SIGUSR1 && rec_pid[0] == me, "our handler: %d runs",
	      nrec);
	int st;
	for (int i = 0; i < 2; i++) {
		pid_t r = waitpid(0, &st, 0);
		CHECK((r == kids[0] || r == kids[1]) && WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1,
		      "waitpid(0): %d status %#x", r, st);
	}
	/* The other group's child lives on; waitpid(0) does not see it. */
	FAILS(waitpid(0, &st, WNOHANG), ECHILD, "waitpid(0) with none in the group");
	CHECK(waitpid(-other, &st, WNOHANG) == 0, "the other group's child is gone");
	CHECK(kill(-other, SIGTERM) == 0, "kill(-group): %s", strerror(errno));
	CHECK(waitpid(-other, &st, 0) == other && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
	      "waitpid(-group): status %#x", st);
	FAILS(waitpid(-other, &st, 0), ECHILD, "waitpid of an empty group");
	CHECK(nrec == 1, "our handler ran again");
}

/* ---- ppoll and pselect6 masks ---- */

static void t_ppoll_mask(void)
{
	handle(SIGUSR1);
	block(SIGUSR1, SIG_BLOCK);
	nrec = 0;
	raise(SIGUSR1);
	sigset_t empty, usr1;
	sigemptyset(&empty);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	/* The mask lets the pending signal in: EINTR, handler ran, the old
	 * mask back. */
	struct timespec ts = {5, 0};
	long t0 = now_ms();
	FAILS(ppoll(NULL, 0, &ts, &empty), EINTR, "ppoll with SIGUSR1 let in");
	CHECK(nrec == 1 && now_ms() - t0 < 3000, "handler: %d runs", nrec);
	CHECK(blocked_now(SIGUSR1), "the mask was not restored");
	/* A mask that blocks: the signal waits until after the call. */
	block(SIGUSR1, SIG_UNBLOCK);
	block(SIGUSR1, SIG_BLOCK);
	nrec = 0;
	raise(SIGUSR1);
	struct timespec short_ts = {0, 30000000};
	CHECK(ppoll(NULL, 0, &short_ts, &usr1) == 0, "ppoll timeout: %s", strerror(errno));
	CHECK(nrec == 0, "delivered through a blocking mask");
	/* A descriptor ready: the call returns it and the signal stays
	 * pending (the mask comes back before it could be taken). */
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	write(p[1], "x", 1);
	struct pollfd pfd = {p[0], POLLIN, 0};
	CHECK(ppoll(&pfd, 1, &ts, &empty) == 1 && pfd.revents == POLLIN, "ppoll ready");
	CHECK(nrec == 0, "delivered although the call succeeded");
	sigset_t pend;
	sigpending(&pend);
	CHECK(sigismember(&pend, SIGUSR1), "no longer pending");
	block(SIGUSR1, SIG_UNBLOCK);
	CHECK(nrec == 1, "not delivered at unblock");
	/* A signal sent during the wait. */
	block(SIGUSR1, SIG_BLOCK);
	nrec = 0;
	pid_t child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		sleep_ms(30);
		kill(getppid(), SIGUSR1);
		_exit(0);
	}
	FAILS(ppoll(NULL, 0, &ts, &empty), EINTR, "ppoll woken by a signal");
	CHECK(nrec == 1 && blocked_now(SIGUSR1), "after the wake: %d runs", nrec);
	waitpid(child, NULL, 0);
	FAILS(syscall(SYS_ppoll, NULL, 0, &ts, &empty, 4), EINVAL, "sigsetsize 4");
	FAILS(syscall(SYS_ppoll, NULL, 0, &ts, (void *)16, 8), EFAULT, "bad mask");
}

static void t_pselect_mask(void)
{
	handle(SIGUSR1);
	block(SIGUSR1, SIG_BLOCK);
	nrec = 0;
	raise(SIGUSR1);
	sigset_t empty, usr1;
	sigemptyset(&empty);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	struct timespec ts = {5, 0};
	FAILS(pselect(0, NULL, NULL, NULL, &ts, &empty), EINTR, "pselect with SIGUSR1 let in");
	CHECK(nrec == 1 && blocked_now(SIGUSR1), "handler %d runs, blocked %d", nrec,
	      blocked_now(SIGUSR1));
	nrec = 0;
	raise(SIGUSR1);
	struct timespec short_ts = {0, 30000000};
	CHECK(pselect(0, NULL, NULL, NULL, &short_ts, &usr1) == 0, "pselect timeout: %s",
	      strerror(errno));
	CHECK(nrec == 0, "delivered through a blocking mask");
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	write(p[1], "x", 1);
	fd_set r;
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	CHECK(pselect(p[0] + 1, &r, NULL, NULL, &ts, &empty) == 1 && FD_ISSET(p[0], &r),
	      "pselect ready");
	CHECK(nrec == 0, "delivered although the call succeeded");
	block(SIGUSR1, SIG_UNBLOCK);
	CHECK(nrec == 1, "not delivered at unblock");
}

static struct testcase cases[] = {
	{"rt-queue", t_rt_queue, 0, 0},
	{"rt-codes", t_rt_codes, 0, 0},
	{"rt-limit", t_rt_limit, 0, 0},
	{"rt-exit", t_rt_exit, 0, 0},
	{"sigtimedwait", t_sigtimedwait, 0, 0},
	{"alarm", t_alarm, 0, 0},
	{"itimer-real", t_itimer_real, 0, 0},
	{"itimer-cpu", t_itimer_cpu, 0, 0},
	{"pgrp", t_pgrp, 0, 0},
	{"kill-group", t_kill_group, 0, 0},
	{"ppoll-mask", t_ppoll_mask, 0, 0},
	{"pselect-mask", t_pselect_mask, 0, 0},
};

/* suite.before, in the case's child: a group of its own (kill(0) must not
 * reach the runner). */
static void own_group(void)
{
	CHECK(setpgid(0, 0) == 0, "setpgid: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--skip CASE]... [CASE...]",
		.before = own_group,
	};
	return run_suite(&suite, argc, argv);
}

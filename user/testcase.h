/*
 * testcase.h: the case runner the user test suites share (usertests,
 * pipetests, sigtests, sigtests2, systests, filetests, fstests2, proctests,
 * proctests2, timetests, pthreadtests, smptests; the file-system ones
 * through fileutil.h, the /proc ones through procfile.h, the thread ones
 * through threadutil.h).
 *
 * A suite defines SUITE (its name: the first word of every line it prints)
 * before it includes this, writes its cases as void functions that end in
 * fail() (or a failed CHECK) when something is wrong, lists them in a table
 * and hands main's arguments to run_suite():
 *
 *	#define SUITE "pipetests"
 *	#include "testcase.h"
 *	...
 *	static struct testcase cases[] = {
 *		{"basic", t_basic, 0, 0},
 *		{"sigpipe-default", t_sigpipe_default, SIGPIPE, 0},
 *	};
 *	int main(int argc, char **argv)
 *	{
 *		static const struct suite s = {
 *			.cases = cases, .ncases = NCASES(cases), .usage = "[-l] [CASE...]",
 *		};
 *		return run_suite(&s, argc, argv);
 *	}
 *
 * Each case runs in a forked child of its own, so a case that crashes (on
 * purpose or not) cannot take the suite down, and what it changes (limits,
 * signal state, descriptors) dies with it.  A case that expects no signal
 * must exit 0 (returning from its function does); one that expects signal
 * S must be killed by S.  fail() leaves a one-line explanation in a page of
 * MAP_SHARED memory (the note) that the parent prints after the case's name;
 * set_note() leaves one without failing.  A suite whose cases must run in
 * the suite's own process (suite.in_process: e.g. proctests, whose figures a
 * fork's copy-on-write would change) gets the same fail(): it jumps back to
 * the runner, which goes on with the next case.
 *
 * Arguments run_suite() takes:
 *   -l            list the cases (and what each expects) and exit 0
 *   --skip CASE   do not run CASE (may be repeated)
 *   CASE...       run only these (the BY_NAME ones run only when named)
 *   and whatever suite.option takes; anything else starting with '-' prints
 *   "usage: SUITE <suite.usage>" and exits 2, an unknown case name prints
 *   "SUITE: no case named X" and exits 2.
 * Output: "SUITE: starting N cases (pid P)", then per case "SUITE: CASE ...
 * ok" (with " (SIGNAME)" for a case that expects a signal, and ": NOTE" if it
 * left a note) or "SUITE: CASE ... FAILED (why)", then "SUITE: N passed, M
 * failed".  run_suite() returns 0 iff all passed (main returns it).
 */
#ifndef FERRITE_TESTCASE_H
#define FERRITE_TESTCASE_H

#ifndef SUITE
#error "define SUITE (the suite's name) before including testcase.h"
#endif

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

#define TC_UNUSED __attribute__((unused))

/* The note: MAP_SHARED (forked cases), so a case's child can explain itself. */
static char *note;
#define NOTE_SIZE 512

/* In-process cases: fail() jumps back to the runner, in this process only
 * (a child a case forked just exits 1). */
static jmp_buf tc_unwind;
static pid_t tc_unwind_pid;

static void tc_vnote(const char *fmt, va_list ap)
{
	if (note) {
		vsnprintf(note, NOTE_SIZE, fmt, ap);
	} else {
		/* Outside a case (a suite's helper mode): say it. */
		char buf[NOTE_SIZE];
		vsnprintf(buf, sizeof buf, fmt, ap);
		say(SUITE ": %s\n", buf);
	}
}

/* Leave a note for the runner to print after the case's name. */
TC_UNUSED __attribute__((format(printf, 1, 2))) static void set_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tc_vnote(fmt, ap);
	va_end(ap);
}

/* Fail the current case: explain why and end it (exit status 1). */
__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tc_vnote(fmt, ap);
	va_end(ap);
	if (tc_unwind_pid && getpid() == tc_unwind_pid)
		longjmp(tc_unwind, 1);
	_exit(1);
}

/* A suite may define its own CHECK (on fail()) before including this. */
#ifndef CHECK
#define CHECK(cond, ...)                   \
	do {                               \
		if (!(cond))               \
			fail(__VA_ARGS__); \
	} while (0)
#endif

/* Hide a constant address from the compiler, so that it cannot turn a
 * deliberate bad access into something else (e.g. a trap instruction). */
TC_UNUSED static void *opaque(uintptr_t addr)
{
	__asm__ volatile("" : "+r"(addr));
	return (void *)addr;
}

TC_UNUSED static pid_t xfork(void)
{
	pid_t pid = fork();
	if (pid < 0)
		fail("fork failed: %s", strerror(errno));
	return pid;
}

/* Wait for pid (through EINTR); return its raw wait status. */
TC_UNUSED static int xwait(pid_t pid)
{
	int status;
	pid_t r;
	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	if (r != pid)
		fail("waitpid(%d) returned %d: %s", (int)pid, (int)r, strerror(errno));
	return status;
}

/* Sleep ms milliseconds, all of them (through EINTR). */
TC_UNUSED static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* The runner. */

/* testcase.flags: BY_NAME the table's (runs only when named), the others
 * the runner's (--skip, not named). */
enum { BY_NAME = 1, TC_SKIPPED = 2, TC_NOT_NAMED = 4 };

struct testcase {
	const char *name;
	void (*fn)(void);
	int expect; /* 0: must exit 0; else the signal that must kill it */
	int flags;
};

struct suite {
	struct testcase *cases;
	int ncases;
	const char *usage; /* the arguments, for "usage: SUITE ..." */
	/* The suite's own options: argv[i] starts with '-'; return how many
	 * arguments it took (0: not an option of the suite's). */
	int (*option)(int argc, char **argv, int i);
	/* Run where the case runs (the child), just before it. */
	void (*before)(void);
	int in_process; /* run the cases in this process, not in children */
};

#define NCASES(cases) ((int)(sizeof(cases) / sizeof((cases)[0])))

TC_UNUSED static const char *signame(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGKILL: return "SIGKILL";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGTRAP: return "SIGTRAP";
	case SIGABRT: return "SIGABRT";
	case SIGFPE: return "SIGFPE";
	case SIGPIPE: return "SIGPIPE";
	case SIGTERM: return "SIGTERM";
	default: return "signal";
	}
}

/* Run one case in this process (suite.in_process); return 1 if it passed. */
static int tc_run_here(const struct suite *s, struct testcase *tc)
{
	tc_unwind_pid = getpid();
	int ok = 1;
	if (setjmp(tc_unwind) == 0) {
		if (s->before)
			s->before();
		tc->fn();
	} else {
		ok = 0;
	}
	tc_unwind_pid = 0;
	if (ok)
		say(SUITE ": %s ... ok%s%s\n", tc->name, note[0] ? ": " : "", note);
	else
		say(SUITE ": %s ... FAILED (%s)\n", tc->name, note[0] ? note : "failed");
	return ok;
}

/* Run one case in a child; return 1 if it passed. */
static int tc_run_child(const struct suite *s, struct testcase *tc)
{
	pid_t pid = fork();
	if (pid < 0) {
		say(SUITE ": %s ... FAILED (fork: %s)\n", tc->name, strerror(errno));
		return 0;
	}
	if (pid == 0) {
		if (s->before)
			s->before();
		tc->fn();
		_exit(tc->expect ? 3 : 0);
	}
	int st;
	pid_t r;
	do
		r = waitpid(pid, &st, 0);
	while (r < 0 && errno == EINTR);
	if (r != pid) {
		say(SUITE ": %s ... FAILED (waitpid: %s)\n", tc->name, strerror(errno));
		return 0;
	}
	char why[NOTE_SIZE + 64];
	int ok;
	if (!tc->expect) {
		ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (WIFSIGNALED(st))
			snprintf(why, sizeof why, "killed by %s (%d)%s%s", signame(WTERMSIG(st)),
				 WTERMSIG(st), note[0] ? ": " : "", note);
		else if (!ok)
			snprintf(why, sizeof why, "%s", note[0] ? note : "exit status not 0");
	} else {
		int want = tc->expect;
		ok = WIFSIGNALED(st) && WTERMSIG(st) == want;
		if (WIFSIGNALED(st) && !ok)
			snprintf(why, sizeof why, "killed by %s (%d), expected %s (%d)%s%s",
				 signame(WTERMSIG(st)), WTERMSIG(st), signame(want), want,
				 note[0] ? ": " : "", note);
		else if (!ok)
			snprintf(why, sizeof why, "expected %s (%d) but %s", signame(want), want,
				 note[0] ? note : "the child exited normally");
	}
	if (ok)
		say(SUITE ": %s ... ok%s%s%s%s%s\n", tc->name, tc->expect ? " (" : "",
		    tc->expect ? signame(tc->expect) : "", tc->expect ? ")" : "",
		    note[0] ? ": " : "", note);
	else
		say(SUITE ": %s ... FAILED (%s)\n", tc->name, why);
	return ok;
}

static struct testcase *tc_find(const struct suite *s, const char *name)
{
	for (int i = 0; i < s->ncases; i++)
		if (strcmp(s->cases[i].name, name) == 0)
			return &s->cases[i];
	return NULL;
}

/* Parse the arguments, run the chosen cases, print the summary; 0 iff all
 * passed, 2 for a bad argument. */
TC_UNUSED static int run_suite(const struct suite *s, int argc, char **argv)
{
	static char here_note[NOTE_SIZE];
	int selected = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int took;
		if (strcmp(a, "-l") == 0) {
			for (int j = 0; j < s->ncases; j++)
				say("%s%s%s%s%s\n", s->cases[j].name,
				    s->cases[j].expect ? " (expects " : "",
				    s->cases[j].expect ? signame(s->cases[j].expect) : "",
				    s->cases[j].expect ? ")" : "",
				    s->cases[j].flags & BY_NAME ? " (only when named)" : "");
			return 0;
		} else if (strcmp(a, "--skip") == 0 && i + 1 < argc) {
			struct testcase *tc = tc_find(s, argv[++i]);
			if (!tc) {
				say(SUITE ": no case named %s\n", argv[i]);
				return 2;
			}
			tc->flags |= TC_SKIPPED;
		} else if (a[0] == '-' && s->option && (took = s->option(argc, argv, i)) > 0) {
			i += took - 1;
		} else if (a[0] == '-') {
			say("usage: " SUITE " %s\n", s->usage);
			return 2;
		} else {
			struct testcase *tc = tc_find(s, a);
			if (!tc) {
				say(SUITE ": no case named %s\n", a);
				return 2;
			}
			if (!selected)
				for (int j = 0; j < s->ncases; j++)
					s->cases[j].flags |= TC_NOT_NAMED;
			selected = 1;
			tc->flags &= ~(TC_NOT_NAMED | BY_NAME);
		}
	}

	if (s->in_process) {
		note = here_note;
	} else {
		note = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (note == MAP_FAILED) {
			note = NULL;
			say(SUITE ": cannot map the shared note page: %s\n", strerror(errno));
			return 1;
		}
	}

	int torun = 0;
	for (int j = 0; j < s->ncases; j++)
		torun += !s->cases[j].flags;
	say(SUITE ": starting %d cases (pid %d)\n", torun, (int)getpid());
	int passed = 0, failed = 0;
	for (int j = 0; j < s->ncases; j++) {
		struct testcase *tc = &s->cases[j];
		if (tc->flags)
			continue;
		memset(note, 0, NOTE_SIZE);
		if (s->in_process ? tc_run_here(s, tc) : tc_run_child(s, tc))
			passed++;
		else
			failed++;
	}
	say(SUITE ": %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif

/*
 * pipetests: pipes, poll and select, checked against what Linux does.
 *
 * Usage: pipetests [-l] [--skip CASE]... [CASE...]
 *        pipetests count          count the bytes and lines of standard input
 *        pipetests gen N          write N bytes (lines of a pattern) to stdout
 *        pipetests block [poll]   wait forever on a pipe nobody writes (read or poll)
 *
 * Each case runs in a forked child; it must exit 0 (or, for sigpipe-default,
 * be killed by SIGPIPE).  Output: "pipetests: CASE ... ok" or "... FAILED
 * (why)", then "pipetests: N passed, M failed"; exit status 0 iff all passed.
 * The helper modes are for shell pipelines and redirections (tests/pipes.rs).
 *
 * System calls: pipe, pipe2, read, write, close, fcntl (F_GETFD, F_GETFL),
 * poll, ppoll, select, pselect6, fork, wait4, nanosleep, clock_gettime,
 * rt_sigaction (SIGPIPE ignored or default), open, mmap, munmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE "pipetests"
#include "testcase.h"

#define PAGE 4096ul
#define KERNEL_ADDR 0xffff888000000000ul
#define CAPACITY 65536

static long raw(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	long r = syscall(nr, a0, a1, a2, a3, a4, a5);
	return r < 0 ? -errno : r;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void xpipe(int fd[2])
{
	CHECK(pipe(fd) == 0, "pipe: %s", strerror(errno));
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		CHECK(w > 0, "write of %zu: %zd (%s)", len, w, strerror(errno));
		p += w;
		len -= (size_t)w;
	}
}

/* Reads until end of file or `len` bytes; returns the count. */
static size_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);
		CHECK(r >= 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static void ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------ */

static void t_basic(void)
{
	int fd[2];
	xpipe(fd);
	CHECK(fd[0] >= 3 && fd[1] == fd[0] + 1, "fds %d %d", fd[0], fd[1]);
	CHECK(write(fd[1], "hello", 5) == 5, "write: %s", strerror(errno));
	CHECK(write(fd[1], " world", 6) == 6, "write 2");
	char buf[64] = {0};
	CHECK(read(fd[0], buf, 3) == 3 && memcmp(buf, "hel", 3) == 0, "first read");
	CHECK(read(fd[0], buf, sizeof buf) == 8 && memcmp(buf, "lo world", 8) == 0,
	      "a read takes what is there, not more");
	CHECK(write(fd[1], "", 0) == 0, "empty write");
	CHECK(read(fd[0], buf, 0) == 0, "empty read");
	/* Wrong ends. */
	CHECK(write(fd[0], "x", 1) == -1 && errno == EBADF, "write to the read end: %s",
	      strerror(errno));
	CHECK(read(fd[1], buf, 1) == -1 && errno == EBADF, "read from the write end: %s",
	      strerror(errno));
	CHECK(lseek(fd[0], 0, SEEK_SET) == -1 && errno == ESPIPE, "lseek: %s", strerror(errno));
	CHECK(close(fd[0]) == 0 && close(fd[1]) == 0, "close");
	CHECK(close(fd[0]) == -1 && errno == EBADF, "double close");
}

static void t_pipe2_flags(void)
{
	int fd[2];
	CHECK(pipe2(fd, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		int fdfl = fcntl(fd[i], F_GETFD), fl = fcntl(fd[i], F_GETFL);
		CHECK(fdfl == FD_CLOEXEC, "fd %d F_GETFD %d (%s)", fd[i], fdfl, strerror(errno));
		CHECK(fl >= 0 && (fl & O_NONBLOCK), "fd %d F_GETFL %#x", fd[i], fl);
		CHECK((fl & O_ACCMODE) == (i ? O_WRONLY : O_RDONLY), "fd %d access mode %#x", fd[i],
		      fl);
	}
	int p[2];
	xpipe(p);
	CHECK(fcntl(p[0], F_GETFD) == 0 && (fcntl(p[0], F_GETFL) & O_NONBLOCK) == 0,
	      "pipe() sets no flags");
	errno = 0;
	CHECK(pipe2(fd, 0x1000 /* O_DSYNC */) == -1 && errno == EINVAL, "pipe2 bad flag: %s",
	      strerror(errno));
	CHECK(pipe2(fd, ~0) == -1 && errno == EINVAL, "pipe2 all flags: %s", strerror(errno));
}

static void t_bad_pointers(void)
{
	CHECK(raw(SYS_pipe, 0, 0, 0, 0, 0, 0) == -EFAULT, "pipe(NULL)");
	CHECK(raw(SYS_pipe, (long)opaque(KERNEL_ADDR), 0, 0, 0, 0, 0) == -EFAULT, "pipe(kernel)");
	CHECK(raw(SYS_pipe2, 1, 0, 0, 0, 0, 0) == -EFAULT, "pipe2(1)");
	void *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ro != MAP_FAILED, "mmap");
	CHECK(raw(SYS_pipe, (long)ro, 0, 0, 0, 0, 0) == -EFAULT, "pipe(read-only page)");
	/* Half on a mapped page, half off. */
	char *two = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(two != MAP_FAILED && munmap(two + PAGE, PAGE) == 0, "mmap 2");
	CHECK(raw(SYS_pipe, (long)(two + PAGE - 4), 0, 0, 0, 0, 0) == -EFAULT, "pipe(straddling)");
	/* No descriptor leaked by the failures: the lowest free is still 3. */
	int fd[2];
	xpipe(fd);
	CHECK(fd[0] == 3 && fd[1] == 4, "a failed pipe left descriptors open: got %d %d", fd[0],
	      fd[1]);
	/* read/write with bad buffers. */
	CHECK(write(fd[1], "abc", 3) == 3, "write");
	CHECK(raw(SYS_read, fd[0], (long)opaque(KERNEL_ADDR), 3, 0, 0, 0) == -EFAULT,
	      "read to kernel");
	CHECK(raw(SYS_read, fd[0], (long)ro, 3, 0, 0, 0) == -EFAULT, "read to read-only");
	CHECK(raw(SYS_write, fd[1], (long)opaque(KERNEL_ADDR), 3, 0, 0, 0) == -EFAULT,
	      "write from kernel");
	CHECK(raw(SYS_write, fd[1], (long)(two + PAGE), 3, 0, 0, 0) == -EFAULT,
	      "write from unmapped");
}

static void t_eof(void)
{
	int fd[2];
	xpipe(fd);
	write_all(fd[1], "tail", 4);
	close(fd[1]);
	char buf[16];
	CHECK(read(fd[0], buf, sizeof buf) == 4, "data before EOF");
	CHECK(read(fd[0], buf, sizeof buf) == 0, "EOF");
	CHECK(read(fd[0], buf, sizeof buf) == 0, "EOF again");
	/* A writer in a child: EOF once it exits (its end closes). */
	xpipe(fd);
	pid_t pid = xfork();
	if (pid == 0) {
		close(fd[0]);
		sleep_ms(30);
		write_all(fd[1], "bye", 3);
		_exit(0);
	}
	close(fd[1]);
	CHECK(read_full(fd[0], buf, sizeof buf) == 3 && memcmp(buf, "bye", 3) == 0,
	      "child's data then EOF");
	CHECK(xwait(pid) == 0, "child");
}

static void t_epipe(void)
{
	ignore_sigpipe();
	int fd[2];
	xpipe(fd);
	close(fd[0]);
	CHECK(write(fd[1], "x", 1) == -1 && errno == EPIPE, "write without reader: %s",
	      strerror(errno));
	/* A reader that exits while the writer waits on a full pipe. */
	xpipe(fd);
	pid_t pid = xfork();
	if (pid == 0) {
		close(fd[1]);
		sleep_ms(50);
		_exit(0);
	}
	close(fd[0]);
	static char big[CAPACITY * 2];
	ssize_t w = write(fd[1], big, sizeof big);
	/* Linux returns what went in before the reader left, or EPIPE. */
	CHECK((w == -1 && errno == EPIPE) || (w > 0 && w <= CAPACITY), "blocked write: %zd (%s)", w,
	      strerror(errno));
	CHECK(write(fd[1], "x", 1) == -1 && errno == EPIPE, "then EPIPE");
	xwait(pid);
}

static void t_sigpipe_default(void)
{
	signal(SIGPIPE, SIG_DFL);
	int fd[2];
	xpipe(fd);
	close(fd[0]);
	write(fd[1], "x", 1);
	fail("write without reader returned (%s) instead of killing by SIGPIPE", strerror(errno));
}

/* The reader blocks until a child writes; 256 KiB then flow through. */
static void t_fork_blocking(void)
{
	int fd[2];
	xpipe(fd);
	/* The time is taken before the fork (see poll-timeout). */
	double t0 = now_ms();
	pid_t pid = xfork();
	if (pid == 0) {
		close(fd[0]);
		sleep_ms(80);
		static unsigned char buf[1000];
		unsigned v = 0;
		for (int total = 0; total < 256 * 1024;) {
			int n = 256 * 1024 - total < 1000 ? 256 * 1024 - total : 1000;
			for (int i = 0; i < n; i++)
				buf[i] = (unsigned char)(v++ * 7);
			write_all(fd[1], buf, (size_t)n);
			total += n;
		}
		_exit(0);
	}
	close(fd[1]);
	unsigned char c;
	CHECK(read(fd[0], &c, 1) == 1 && c == 0, "first byte");
	/* (Ferrite's nanosleep still counts 10 ms ticks: a wide margin.) */
	CHECK(now_ms() - t0 >= 30, "the read did not wait for the writer (%.1f ms)", now_ms() - t0);
	unsigned v = 1;
	static unsigned char buf[3000];
	size_t total = 1;
	for (;;) {
		ssize_t r = read(fd[0], buf, sizeof buf);
		CHECK(r >= 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++, v++)
			CHECK(buf[i] == (unsigned char)(v * 7), "byte %u is wrong", v);
		total += (size_t)r;
	}
	CHECK(total == 256 * 1024, "got %zu bytes", total);
	CHECK(xwait(pid) == 0, "writer");
}

/* One write() much larger than the pipe: the writer waits for the reader
 * and the call returns the whole length. */
static void t_large_write(void)
{
	int fd[2];
	xpipe(fd);
	size_t len = 1 << 20;
	pid_t pid = xfork();
	if (pid == 0) {
		close(fd[0]);
		unsigned char *p = malloc(len);
		CHECK(p, "malloc");
		for (size_t i = 0; i < len; i++)
			p[i] = (unsigned char)(i % 251);
		ssize_t w = write(fd[1], p, len);
		CHECK(w == (ssize_t)len, "write returned %zd", w);
		_exit(0);
	}
	close(fd[1]);
	sleep_ms(30); /* let the writer fill the pipe and wait */
	unsigned char *q = malloc(len + 1);
	CHECK(q, "malloc");
	CHECK(read_full(fd[0], q, len + 1) == len, "length");
	for (size_t i = 0; i < len; i++)
		CHECK(q[i] == (unsigned char)(i % 251), "byte %zu", i);
	CHECK(xwait(pid) == 0, "writer");
}

/* Several writers, records of `size` bytes each (<= PIPE_BUF): every record
 * arrives whole (POSIX atomicity), whatever the reader's read sizes. */
static void atomic_writers(size_t size, int writers, int records)
{
	int fd[2];
	xpipe(fd);
	for (int w = 0; w < writers; w++) {
		if (xfork() == 0) {
			close(fd[0]);
			unsigned char *rec = malloc(size);
			memset(rec, 'A' + w, size);
			for (int i = 0; i < records; i++)
				CHECK(write(fd[1], rec, size) == (ssize_t)size, "short write");
			_exit(0);
		}
	}
	close(fd[1]);
	size_t total = (size_t)writers * records * size;
	unsigned char *all = malloc(total + 1);
	size_t got = 0;
	/* Odd read sizes, to cut across records. */
	for (unsigned k = 0;; k++) {
		size_t want = 1 + (k * 977) % 5000;
		if (want > total + 1 - got)
			want = total + 1 - got;
		ssize_t r = read(fd[0], all + got, want);
		CHECK(r >= 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	CHECK(got == total, "got %zu of %zu bytes", got, total);
	int count[26] = {0};
	for (size_t at = 0; at < total; at += size) {
		unsigned char c = all[at];
		CHECK(c >= 'A' && c < 'A' + writers, "record at %zu starts with %#x", at, c);
		for (size_t i = 1; i < size; i++)
			CHECK(all[at + i] == c, "record at %zu (writer %c) interleaved at byte %zu", at, c,
			      i);
		count[c - 'A']++;
	}
	for (int w = 0; w < writers; w++)
		CHECK(count[w] == records, "writer %d: %d records", w, count[w]);
	for (int w = 0; w < writers; w++)
		CHECK(wait(NULL) > 0, "wait");
}

static void t_atomic_4096(void)
{
	atomic_writers(4096, 4, 64);
}

static void t_atomic_small(void)
{
	atomic_writers(300, 5, 400);
}

static void t_nonblock(void)
{
	int fd[2];
	CHECK(pipe2(fd, O_NONBLOCK) == 0, "pipe2");
	char buf[PAGE];
	CHECK(read(fd[0], buf, 1) == -1 && errno == EAGAIN, "empty read: %s", strerror(errno));
	memset(buf, 'x', sizeof buf);
	size_t total = 0;
	for (;;) {
		ssize_t w = write(fd[1], buf, sizeof buf);
		if (w < 0) {
			CHECK(errno == EAGAIN, "full write: %s", strerror(errno));
			break;
		}
		total += (size_t)w;
		CHECK(total <= 1 << 20, "the pipe never fills");
	}
	CHECK(total == CAPACITY, "capacity %zu, not 64 KiB", total);
	CHECK(write(fd[1], "y", 1) == -1 && errno == EAGAIN, "1 byte to a full pipe");
	/* 100 bytes of room: an atomic write of a page still waits. */
	CHECK(read(fd[0], buf, 100) == 100, "read 100");
	CHECK(write(fd[1], buf, PAGE) == -1 && errno == EAGAIN, "atomic write without room");
	/* A page read frees room for a page. */
	CHECK(read(fd[0], buf, PAGE) == PAGE, "read a page");
	CHECK(write(fd[1], buf, PAGE) == PAGE, "page write after a page read: %s", strerror(errno));
	/* Larger than PIPE_BUF, partial room: a partial write. */
	CHECK(read(fd[0], buf, PAGE) == PAGE && read(fd[0], buf, 1000) == 1000, "reads");
	static char big[3 * PAGE];
	ssize_t w = write(fd[1], big, sizeof big);
	CHECK(w > 0 && w < (ssize_t)sizeof big, "partial nonblocking write: %zd", w);
	/* Drain, then EAGAIN again; with the writer gone, EOF instead. */
	while (read(fd[0], buf, sizeof buf) > 0)
		;
	CHECK(errno == EAGAIN, "drained: %s", strerror(errno));
	close(fd[1]);
	CHECK(read(fd[0], buf, 1) == 0, "nonblocking EOF");
}

static short revents1(int fd, short events, int timeout)
{
	struct pollfd p = {fd, events, 0x5a5a};
	int n = poll(&p, 1, timeout);
	CHECK(n >= 0, "poll: %s", strerror(errno));
	CHECK((n == 0) == (p.revents == 0), "poll returned %d with revents %#x", n, p.revents);
	return p.revents;
}

static void t_poll_pipe(void)
{
	int fd[2];
	xpipe(fd);
	CHECK(revents1(fd[0], POLLIN, 0) == 0, "empty pipe readable");
	CHECK(revents1(fd[1], POLLOUT, 0) == POLLOUT, "empty pipe not writable");
	CHECK(revents1(fd[1], POLLIN, 0) == 0, "write end readable");
	write_all(fd[1], "a", 1);
	CHECK(revents1(fd[0], POLLIN | POLLOUT, 0) == POLLIN, "read end: %#x",
	      revents1(fd[0], POLLIN | POLLOUT, 0));
	/* Full: no POLLOUT. */
	int q[2];
	CHECK(pipe2(q, O_NONBLOCK) == 0, "pipe2");
	char buf[PAGE] = {0};
	while (write(q[1], buf, sizeof buf) > 0)
		;
	CHECK(revents1(q[1], POLLOUT, 0) == 0, "full pipe writable");
	CHECK(revents1(q[1], POLLOUT, 20) == 0, "full pipe writable after a wait");
	/* Writers gone: POLLHUP (with POLLIN while data is left). */
	close(fd[1]);
	CHECK(revents1(fd[0], POLLIN, 0) == (POLLIN | POLLHUP), "data + hangup: %#x",
	      revents1(fd[0], POLLIN, 0));
	CHECK(read(fd[0], buf, 1) == 1, "read");
	CHECK(revents1(fd[0], POLLIN, 0) == POLLHUP, "hangup: %#x", revents1(fd[0], POLLIN, 0));
	/* POLLHUP is reported even when not asked for. */
	CHECK(revents1(fd[0], 0, 0) == POLLHUP, "unasked hangup");
	/* Readers gone: POLLERR on the write end. */
	close(q[0]);
	CHECK(revents1(q[1], POLLOUT, 0) & POLLERR, "no POLLERR without readers");
	/* A closed descriptor: POLLNVAL; a negative one: ignored. */
	struct pollfd ps[3] = {{fd[0], POLLIN, 0}, {-1, POLLIN, 0x77}, {fd[0] + 50, POLLIN, 0}};
	CHECK(poll(ps, 3, 0) == 2, "poll of three");
	CHECK(ps[0].revents == POLLHUP && ps[1].revents == 0 && ps[2].revents == POLLNVAL,
	      "revents %#x %#x %#x", ps[0].revents, ps[1].revents, ps[2].revents);
}

static void t_poll_file(void)
{
	extern char *self_path;
	/* Ferrite's shell passes the bare name as argv[0]. */
	const char *path = strchr(self_path, '/') ? self_path : "/bin/pipetests";
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	short r = revents1(fd, POLLIN | POLLOUT, -1);
	CHECK((r & (POLLIN | POLLOUT)) == (POLLIN | POLLOUT), "a file is always ready: %#x", r);
}

static void t_poll_timeout(void)
{
	int fd[2];
	xpipe(fd);
	struct pollfd p = {fd[0], POLLIN, 0};
	double t0 = now_ms();
	CHECK(poll(&p, 1, 60) == 0, "timeout");
	double dt = now_ms() - t0;
	CHECK(dt >= 59 && dt < 2000, "poll 60 ms took %.1f ms", dt);
	t0 = now_ms();
	CHECK(poll(NULL, 0, 30) == 0, "poll of nothing");
	dt = now_ms() - t0;
	CHECK(dt >= 29 && dt < 2000, "poll(NULL, 0, 30) took %.1f ms", dt);
	/* -1: forever, until a child writes. The time is taken before the
	 * fork: after it, a parent held up 50 ms (a loaded host) reached
	 * poll after the write and the wait looked too short. */
	t0 = now_ms();
	pid_t pid = xfork();
	if (pid == 0) {
		sleep_ms(80);
		write_all(fd[1], "z", 1);
		_exit(0);
	}
	CHECK(poll(&p, 1, -1) == 1 && p.revents == POLLIN, "woken by the write");
	CHECK(now_ms() - t0 >= 30, "did not wait (%.1f ms)", now_ms() - t0);
	xwait(pid);
	/* Woken by the last writer going away. */
	char c;
	CHECK(read(fd[0], &c, 1) == 1, "read");
	pid = xfork();
	if (pid == 0) {
		sleep_ms(40);
		_exit(0);
	}
	close(fd[1]);
	CHECK(poll(&p, 1, 5000) == 1 && p.revents == POLLHUP, "woken by the hangup: %#x",
	      p.revents);
	xwait(pid);
}

static void t_poll_bad(void)
{
	int fd[2];
	xpipe(fd);
	CHECK(raw(SYS_poll, 0, 1, 0, 0, 0, 0) == -EFAULT, "poll(NULL, 1)");
	CHECK(raw(SYS_poll, (long)opaque(KERNEL_ADDR), 1, 0, 0, 0, 0) == -EFAULT, "poll(kernel)");
	CHECK(raw(SYS_poll, 0, 0, 0, 0, 0, 0) == 0, "poll(NULL, 0, 0)");
	struct pollfd p = {fd[0], POLLIN, 0};
	CHECK(raw(SYS_poll, (long)&p, 0x7fffffff, 0, 0, 0, 0) == -EINVAL, "nfds over the limit");
	/* Read-only array: the results cannot be written back. */
	struct pollfd *ro =
		mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro[0] = (struct pollfd){fd[1], POLLOUT, 0};
	mprotect(ro, PAGE, PROT_READ);
	CHECK(raw(SYS_poll, (long)ro, 1, 0, 0, 0, 0) == -EFAULT, "read-only pollfd");
	/* ppoll: bad timespec, bad sigset size. */
	struct timespec bad = {0, 1000000000};
	CHECK(raw(SYS_ppoll, (long)&p, 1, (long)&bad, 0, 8, 0) == -EINVAL, "ppoll tv_nsec 1e9");
	bad = (struct timespec){-1, 0};
	CHECK(raw(SYS_ppoll, (long)&p, 1, (long)&bad, 0, 8, 0) == -EINVAL, "ppoll negative");
	CHECK(raw(SYS_ppoll, (long)&p, 1, (long)opaque(KERNEL_ADDR), 0, 8, 0) == -EFAULT,
	      "ppoll bad timespec pointer");
	uint64_t mask = 0;
	struct timespec zero = {0, 0};
	CHECK(raw(SYS_ppoll, (long)&p, 1, (long)&zero, (long)&mask, 7, 0) == -EINVAL,
	      "ppoll sigset size 7");
	CHECK(raw(SYS_ppoll, (long)&p, 1, (long)&zero, (long)&mask, 8, 0) == 0, "ppoll ok");
}

static void t_ppoll(void)
{
	int fd[2];
	xpipe(fd);
	struct pollfd p = {fd[0], POLLIN, 0};
	struct timespec ts = {0, 40 * 1000000};
	double t0 = now_ms();
	CHECK(ppoll(&p, 1, &ts, NULL) == 0, "ppoll timeout");
	double dt = now_ms() - t0;
	CHECK(dt >= 39 && dt < 2000, "ppoll 40 ms took %.1f", dt);
	write_all(fd[1], "q", 1);
	CHECK(ppoll(&p, 1, NULL, NULL) == 1 && p.revents == POLLIN, "ppoll ready");
	sigset_t set;
	sigemptyset(&set);
	CHECK(ppoll(&p, 1, NULL, &set) == 1, "ppoll with a mask");
}

static void t_select(void)
{
	int fd[2];
	xpipe(fd);
	fd_set r, w;
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_SET(fd[0], &r);
	FD_SET(fd[1], &w);
	struct timeval tv = {0, 0};
	CHECK(select(fd[1] + 1, &r, &w, NULL, &tv) == 1, "select: %s", strerror(errno));
	CHECK(!FD_ISSET(fd[0], &r) && FD_ISSET(fd[1], &w), "sets after select");
	write_all(fd[1], "s", 1);
	FD_ZERO(&r);
	FD_SET(fd[0], &r);
	FD_SET(fd[1], &r); /* the write end never reads */
	CHECK(select(fd[1] + 1, &r, NULL, NULL, NULL) == 1, "select readable");
	CHECK(FD_ISSET(fd[0], &r) && !FD_ISSET(fd[1], &r), "read set");
	/* Timeout: updated to what is left (0 after it runs out). */
	char c;
	CHECK(read(fd[0], &c, 1) == 1, "read");
	FD_ZERO(&r);
	FD_SET(fd[0], &r);
	tv = (struct timeval){0, 50000};
	double t0 = now_ms();
	/* Raw: musl's select() passes the kernel a copy of the timeout. */
	CHECK(raw(SYS_select, fd[0] + 1, (long)&r, 0, 0, (long)&tv, 0) == 0, "select timeout");
	double dt = now_ms() - t0;
	CHECK(dt >= 49 && dt < 2000, "select 50 ms took %.1f", dt);
	CHECK(tv.tv_sec == 0 && tv.tv_usec == 0, "timeout left %ld.%06ld", (long)tv.tv_sec,
	      (long)tv.tv_usec);
	CHECK(!FD_ISSET(fd[0], &r), "set not cleared");
	/* select(0, ...) sleeps. */
	tv = (struct timeval){0, 30000};
	t0 = now_ms();
	CHECK(select(0, NULL, NULL, NULL, &tv) == 0, "select sleep");
	CHECK(now_ms() - t0 >= 29, "select sleep too short");
	/* Hangup counts as readable; an exceptfds bit never shows for a pipe. */
	close(fd[1]);
	fd_set e;
	FD_ZERO(&r);
	FD_ZERO(&e);
	FD_SET(fd[0], &r);
	FD_SET(fd[0], &e);
	CHECK(select(fd[0] + 1, &r, NULL, &e, NULL) == 1, "select hangup");
	CHECK(FD_ISSET(fd[0], &r) && !FD_ISSET(fd[0], &e), "hangup sets");
	/* Woken by a child. */
	int q[2];
	xpipe(q);
	pid_t pid = xfork();
	if (pid == 0) {
		sleep_ms(40);
		write_all(q[1], "k", 1);
		_exit(0);
	}
	FD_ZERO(&r);
	FD_SET(q[0], &r);
	CHECK(select(q[0] + 1, &r, NULL, NULL, NULL) == 1 && FD_ISSET(q[0], &r), "woken");
	xwait(pid);
}

static void t_select_bad(void)
{
	int fd[2];
	xpipe(fd);
	fd_set r;
	FD_ZERO(&r);
	FD_SET(fd[0] + 20, &r); /* not open */
	struct timeval tv = {0, 0};
	CHECK(raw(SYS_select, fd[0] + 21, (long)&r, 0, 0, (long)&tv, 0) == -EBADF, "closed fd");
	CHECK(raw(SYS_select, -1, 0, 0, 0, (long)&tv, 0) == -EINVAL, "negative nfds");
	FD_ZERO(&r);
	FD_SET(fd[0], &r);
	CHECK(raw(SYS_select, fd[0] + 1, (long)opaque(KERNEL_ADDR), 0, 0, (long)&tv, 0) == -EFAULT,
	      "bad set");
	CHECK(raw(SYS_select, fd[0] + 1, (long)&r, 0, 0, (long)opaque(KERNEL_ADDR), 0) == -EFAULT,
	      "bad timeval");
	tv = (struct timeval){0, -1};
	CHECK(raw(SYS_select, fd[0] + 1, (long)&r, 0, 0, (long)&tv, 0) == -EINVAL, "tv_usec -1");
	/* tv_usec of a second or more is carried into the seconds (Linux). */
	write_all(fd[1], "r", 1);
	tv = (struct timeval){0, 2500000};
	CHECK(raw(SYS_select, fd[0] + 1, (long)&r, 0, 0, (long)&tv, 0) == 1, "tv_usec 2.5e6");
	CHECK(tv.tv_sec == 2 && tv.tv_usec > 400000, "left %ld.%06ld", (long)tv.tv_sec,
	      (long)tv.tv_usec);
	char c;
	CHECK(read(fd[0], &c, 1) == 1, "read");
	tv = (struct timeval){-1, 0};
	CHECK(raw(SYS_select, fd[0] + 1, (long)&r, 0, 0, (long)&tv, 0) == -EINVAL, "negative tv");
	/* pselect6: bad timespec and bad sigset sizes. */
	struct timespec ts = {0, 1000000000};
	CHECK(raw(SYS_pselect6, fd[0] + 1, (long)&r, 0, 0, (long)&ts, 0) == -EINVAL,
	      "pselect tv_nsec 1e9");
	ts = (struct timespec){0, 0};
	uint64_t mask = 0;
	struct {
		void *set;
		size_t size;
	} data = {&mask, 7};
	CHECK(raw(SYS_pselect6, fd[0] + 1, (long)&r, 0, 0, (long)&ts, (long)&data) == -EINVAL,
	      "pselect sigset size 7");
	data.size = 8;
	FD_ZERO(&r);
	FD_SET(fd[0], &r);
	CHECK(raw(SYS_pselect6, fd[0] + 1, (long)&r, 0, 0, (long)&ts, (long)&data) == 0,
	      "pselect ok");
	CHECK(raw(SYS_pselect6, fd[0] + 1, (long)&r, 0, 0, (long)&ts,
		  (long)opaque(KERNEL_ADDR)) == -EFAULT,
	      "pselect bad data");
	/* A huge nfds is cut to the table size (Linux), not refused. */
	tv = (struct timeval){0, 0};
	CHECK(raw(SYS_select, 1 << 20, 0, 0, 0, (long)&tv, 0) == 0, "huge nfds with no sets: %s",
	      strerror(errno));
}

static void t_pselect(void)
{
	int fd[2];
	xpipe(fd);
	fd_set r;
	FD_ZERO(&r);
	FD_SET(fd[0], &r);
	struct timespec ts = {0, 30 * 1000000};
	double t0 = now_ms();
	CHECK(pselect(fd[0] + 1, &r, NULL, NULL, &ts, NULL) == 0, "pselect timeout");
	CHECK(now_ms() - t0 >= 29, "pselect too short");
	write_all(fd[1], "p", 1);
	FD_SET(fd[0], &r);
	sigset_t set;
	sigemptyset(&set);
	CHECK(pselect(fd[0] + 1, &r, NULL, NULL, NULL, &set) == 1 && FD_ISSET(fd[0], &r),
	      "pselect ready");
}

/* Descriptors are shared by fork: EOF needs every copy of the write end
 * closed. */
static void t_fork_shares_ends(void)
{
	int fd[2];
	xpipe(fd);
	pid_t pid = xfork();
	if (pid == 0) {
		sleep_ms(60); /* holds fd[1] open meanwhile */
		_exit(0);
	}
	close(fd[1]);
	struct pollfd p = {fd[0], POLLIN, 0};
	CHECK(poll(&p, 1, 0) == 0, "EOF while the child holds the write end");
	char c;
	CHECK(read(fd[0], &c, 1) == 0, "EOF after the child exits");
	xwait(pid);
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* A signal with a handler (no SA_RESTART) ends a blocked read, write and
 * poll with EINTR. */
static void t_eintr(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	int fd[2];
	xpipe(fd);
	pid_t parent = getpid();
	for (int what = 0; what < 3; what++) {
		pid_t pid = xfork();
		if (pid == 0) {
			sleep_ms(60);
			kill(parent, SIGUSR1);
			_exit(0);
		}
		char buf[PAGE];
		if (what == 0) {
			CHECK(read(fd[0], buf, 1) == -1 && errno == EINTR, "read: %s", strerror(errno));
		} else if (what == 1) {
			struct pollfd p = {fd[0], POLLIN, 0};
			CHECK(poll(&p, 1, -1) == -1 && errno == EINTR, "poll: %s", strerror(errno));
		} else {
			memset(buf, 0, sizeof buf);
			ssize_t w;
			while ((w = write(fd[1], buf, sizeof buf)) > 0)
				; /* fills the pipe, then waits */
			CHECK(w == -1 && errno == EINTR, "write: %zd %s", w, strerror(errno));
		}
		xwait(pid);
	}
}

/* ------------------------------------------------------------------ */

char *self_path;

static struct testcase cases[] = {
	{"basic", t_basic, 0, 0},
	{"pipe2-flags", t_pipe2_flags, 0, 0},
	{"bad-pointers", t_bad_pointers, 0, 0},
	{"eof", t_eof, 0, 0},
	{"epipe", t_epipe, 0, 0},
	{"sigpipe-default", t_sigpipe_default, SIGPIPE, 0},
	{"fork-blocking", t_fork_blocking, 0, 0},
	{"fork-shares-ends", t_fork_shares_ends, 0, 0},
	{"large-write", t_large_write, 0, 0},
	{"atomic-4096", t_atomic_4096, 0, 0},
	{"atomic-small", t_atomic_small, 0, 0},
	{"nonblock", t_nonblock, 0, 0},
	{"poll-pipe", t_poll_pipe, 0, 0},
	{"poll-file", t_poll_file, 0, 0},
	{"poll-timeout", t_poll_timeout, 0, 0},
	{"poll-bad", t_poll_bad, 0, 0},
	{"ppoll", t_ppoll, 0, 0},
	{"select", t_select, 0, 0},
	{"select-bad", t_select_bad, 0, 0},
	{"pselect", t_pselect, 0, 0},
	{"eintr", t_eintr, 0, 0},
};
/* ------------------------------------------------------------------ */
/* Helper modes for shell pipelines. */

static int mode_count(void)
{
	static char buf[8192];
	unsigned long bytes = 0, lines = 0, sum = 0;
	for (;;) {
		ssize_t r = read(0, buf, sizeof buf);
		if (r < 0) {
			say("pipetests count: read: %s\n", strerror(errno));
			return 1;
		}
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			lines += buf[i] == '\n';
			sum = sum * 31 + (unsigned char)buf[i];
		}
		bytes += (unsigned long)r;
	}
	say("count: %lu bytes, %lu lines, hash %lx\n", bytes, lines, sum);
	return 0;
}

/* N bytes of lines "line 000001 ...\n" (the last one cut to fit). */
static int mode_gen(unsigned long n)
{
	static char buf[8192];
	unsigned long line = 0, done = 0;
	size_t used = 0;
	while (done < n) {
		char l[64];
		int len = snprintf(l, sizeof l, "line %06lu abcdefghijklmnopqrstuvwxyz\n", ++line);
		for (int i = 0; i < len && done < n; i++, done++) {
			buf[used++] = l[i];
			if (used == sizeof buf) {
				write_all(1, buf, used);
				used = 0;
			}
		}
	}
	if (used)
		write_all(1, buf, used);
	return 0;
}

/* Waits forever on a pipe it holds both ends of: in read, or (with
 * "poll") in poll with no timeout. */
static int mode_block(int use_poll)
{
	int fd[2];
	if (pipe(fd) != 0)
		return 1;
	say("pipetests block: waiting on an empty pipe%s\n", use_poll ? " in poll" : "");
	if (use_poll) {
		struct pollfd p = {fd[0], POLLIN, 0};
		int n = poll(&p, 1, -1);
		say("pipetests block: poll returned %d\n", n);
	} else {
		char c;
		ssize_t r = read(fd[0], &c, 1);
		say("pipetests block: read returned %zd\n", r);
	}
	return 1;
}

int main(int argc, char **argv)
{
	self_path = argv[0];
	if (argc >= 2 && strcmp(argv[1], "count") == 0)
		return mode_count();
	if (argc == 3 && strcmp(argv[1], "gen") == 0)
		return mode_gen(strtoul(argv[2], NULL, 0));
	if (argc >= 2 && strcmp(argv[1], "block") == 0)
		return mode_block(argc >= 3 && strcmp(argv[2], "poll") == 0);
	/* The cases count descriptors from 3: nothing else open. */
	for (int fd = 3; fd < 64; fd++)
		close(fd);
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--skip CASE]... [CASE...] | count | gen N | block [poll]",
	};
	return run_suite(&suite, argc, argv);
}

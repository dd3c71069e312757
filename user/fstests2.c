/*
 * fstests2: the file-system calls issue 13 left for last, checked against
 * what Linux does: execve of a program copied into a writable file system,
 * timestamps and utimensat, chmod, hard and symbolic links,
 * /proc/self/fd and fdinfo, pages of a shared mapping counted in the
 * file's blocks, and one offset shared by two processes writing and
 * reading at once.
 *
 * Runs natively on Linux (user/run-host-tests.sh) and on Ferrite
 * (tests/fs2.rs). Everything it creates is inside a directory it makes
 * with mkdtemp under $FSTESTS2_DIR or /tmp, and removes at the end.
 *
 * The cases run in this process, one after the other, each from the
 * scratch directory (user/fileutil.h, on user/testcase.h).
 *
 * Usage: fstests2 [-l] [--skip CASE]... [CASE...]
 *                 (no case: all but "mapfill", run only when named: it
 *                 touches a shared mapping of a file until the file
 *                 system is full)
 * Output: "fstests2: <case> ... ok" or "... FAILED (<why>)" per case, then
 * "fstests2: N passed, M failed". Exit status 0 iff all passed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUITE "fstests2"
#include "fileutil.h"

static int64_t ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return ns(t);
}

/* Long enough for the file system's clock (Linux: a jiffy) to move on. */
static void pause_a_little(void)
{
	struct timespec t = {0, 30 * 1000 * 1000};
	nanosleep(&t, 0);
}

/* Copies `from` to `to` (created with `mode`). */
static int copy(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_WRONLY | O_TRUNC, mode);
	if (in < 0 || out < 0)
		return -1;
	static char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, n) != n)
			return -1;
	close(in);
	close(out);
	return n == 0 ? 0 : -1;
}

/* Runs `path` with `arg` in a child; its wait status, or -errno of the
 * execve (reported through a close-on-exec pipe). */
static int run(const char *path, const char *arg)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1000;
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = {(char *)path, (char *)arg, 0};
		char *envp[] = {0};
		execve(path, argv, envp);
		int e = errno;
		if (write(p[1], &e, sizeof e) != sizeof e)
			_exit(126);
		_exit(127);
	}
	close(p[1]);
	int e = 0;
	ssize_t got = read(p[0], &e, sizeof e);
	close(p[0]);
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1001;
	return got == sizeof e ? -e : status;
}

static void t_exec_copy(void)
{
	/* The program itself, copied here: runs from this file system. */
	CHECK(copy(self, "prog", 0755) == 0);
	int st = run("./prog", "--exit42");
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 42);
	/* Renamed and its old name reused: still the same program. */
	CHECK(rename("prog", "prog2") == 0);
	st = run("./prog2", "--exit42");
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 42);
	/* Through a symbolic link, from an absolute path. */
	CHECK(symlink("prog2", "plink") == 0);
	char abs[1024];
	snprintf(abs, sizeof abs, "%s/plink", dir);
	st = run(abs, "--exit42");
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 42);
	/* No x bit: EACCES. */
	CHECK(chmod("prog2", 0644) == 0);
	CHECK(run("./prog2", "--exit42") == -EACCES);
	CHECK(chmod("prog2", 0700) == 0);
	st = run("./prog2", "--exit42");
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 42);
	/* Not a program: ENOEXEC. A directory: EACCES. */
	CHECK(put("text", "this is not a program, just some text\n") == 0);
	CHECK(chmod("text", 0755) == 0);
	CHECK(run("./text", "x") == -ENOEXEC);
	CHECK(put("empty", "") == 0);
	CHECK(chmod("empty", 0755) == 0);
	CHECK(run("./empty", "x") == -ENOEXEC);
	CHECK(mkdir("d", 0755) == 0);
	CHECK(run("./d", "x") == -EACCES);
	CHECK(unlink("plink") == 0 && unlink("prog2") == 0 && unlink("text") == 0);
	CHECK(unlink("empty") == 0 && rmdir("d") == 0);
}

static void t_exec_unlinked(void)
{
	/* A program whose file loses its name while it runs keeps running. */
	CHECK(copy(self, "prog", 0755) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[1]);
		dup2(p[0], 0);
		char *argv[] = {"prog", "--wait-stdin", 0};
		char *envp[] = {0};
		execve("./prog", argv, envp);
		_exit(127);
	}
	close(p[0]);
	pause_a_little();
	CHECK(unlink("prog") == 0);
	/* Its pages were never read yet maybe: they must still be there. */
	CHECK(write(p[1], "x", 1) == 1);
	close(p[1]);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 43);
}

/* When a read moves atime, by the scratch directory's mount options (the
 * host running these natively may mount it noatime or strictatime).
 * Ferrite has no statfs: its tmpfs is relatime, as Linux's default. */
enum { ATIME_RELATIME, ATIME_NEVER, ATIME_STRICT };
static int atime_rule(void)
{
	struct statvfs v;
	if (statvfs(".", &v) != 0)
		return ATIME_RELATIME;
	if (v.f_flag & ST_NOATIME)
		return ATIME_NEVER;
	return v.f_flag & ST_RELATIME ? ATIME_RELATIME : ATIME_STRICT;
}

static void t_times(void)
{
	struct stat a, b;
	int64_t before = now_ns();
	int fd = open("f", O_CREAT | O_RDWR, 0644);
	CHECK(fd >= 0);
	CHECK(fstat(fd, &a) == 0);
	/* A new file: all three now (within the clock's coarseness). */
	CHECK(ns(a.st_mtim) == ns(a.st_ctim) && ns(a.st_atim) == ns(a.st_mtim));
	CHECK(ns(a.st_mtim) > before - 1000000000LL && ns(a.st_mtim) < now_ns() + 1000000000LL);
	/* A write moves mtime and ctime, not atime. */
	pause_a_little();
	CHECK(write(fd, "hello", 5) == 5);
	CHECK(fstat(fd, &b) == 0);
	CHECK(ns(b.st_mtim) > ns(a.st_mtim) && ns(b.st_ctim) == ns(b.st_mtim));
	CHECK(ns(b.st_atim) == ns(a.st_atim));
	/* A read moves atime (relatime: it was older than mtime), unless the
	 * file system is mounted noatime. */
	int rule = atime_rule();
	pause_a_little();
	char buf[8];
	CHECK(pread(fd, buf, 5, 0) == 5);
	CHECK(fstat(fd, &a) == 0);
	CHECK(ns(a.st_mtim) == ns(b.st_mtim));
	if (rule == ATIME_NEVER)
		CHECK(ns(a.st_atim) == ns(b.st_atim));
	else
		CHECK(ns(a.st_atim) > ns(b.st_mtim));
	/* ...but not again right away (relatime: atime is newer now); with
	 * strictatime every read moves it. */
	pause_a_little();
	CHECK(pread(fd, buf, 5, 0) == 5);
	CHECK(fstat(fd, &b) == 0);
	if (rule == ATIME_STRICT)
		CHECK(ns(b.st_atim) > ns(a.st_atim));
	else
		CHECK(ns(b.st_atim) == ns(a.st_atim));
	/* truncate: mtime and ctime. */
	pause_a_little();
	CHECK(ftruncate(fd, 2) == 0);
	CHECK(fstat(fd, &b) == 0);
	CHECK(ns(b.st_mtim) > ns(a.st_mtim) && ns(b.st_ctim) == ns(b.st_mtim));
	/* chmod: ctime only. */
	pause_a_little();
	CHECK(fchmod(fd, 0600) == 0);
	CHECK(fstat(fd, &a) == 0);
	CHECK(ns(a.st_ctim) > ns(b.st_ctim) && ns(a.st_mtim) == ns(b.st_mtim));
	CHECK((a.st_mode & 07777) == 0600);
	/* A link: ctime of the file. */
	pause_a_little();
	CHECK(link("f", "g") == 0);
	CHECK(fstat(fd, &b) == 0);
	CHECK(ns(b.st_ctim) > ns(a.st_ctim) && ns(b.st_mtim) == ns(a.st_mtim));
	close(fd);
	CHECK(unlink("g") == 0 && unlink("f") == 0);
}

static void t_dir_times(void)
{
	struct stat a, b, c;
	CHECK(mkdir("d", 0755) == 0 && mkdir("e", 0755) == 0);
	CHECK(stat("d", &a) == 0);
	pause_a_little();
	CHECK(put("d/f", "x") == 0);
	CHECK(stat("d", &b) == 0);
	CHECK(ns(b.st_mtim) > ns(a.st_mtim) && ns(b.st_ctim) == ns(b.st_mtim));
	/* rename between directories: both change, and the file's ctime. */
	struct stat f0, f1;
	CHECK(stat("d/f", &f0) == 0);
	pause_a_little();
	CHECK(rename("d/f", "e/f") == 0);
	CHECK(stat("d", &a) == 0 && stat("e", &c) == 0 && stat("e/f", &f1) == 0);
	CHECK(ns(a.st_mtim) > ns(b.st_mtim) && ns(c.st_mtim) > ns(b.st_mtim));
	CHECK(ns(f1.st_ctim) > ns(f0.st_ctim) && ns(f1.st_mtim) == ns(f0.st_mtim));
	/* unlink: the directory. */
	pause_a_little();
	CHECK(unlink("e/f") == 0);
	CHECK(stat("e", &b) == 0);
	CHECK(ns(b.st_mtim) > ns(c.st_mtim));
	/* symlink and mkdir too. */
	pause_a_little();
	CHECK(symlink("x", "e/l") == 0);
	CHECK(stat("e", &c) == 0);
	CHECK(ns(c.st_mtim) > ns(b.st_mtim));
	CHECK(unlink("e/l") == 0 && rmdir("d") == 0 && rmdir("e") == 0);
}

static void t_utimensat(void)
{
	struct stat s;
	CHECK(put("f", "data") == 0);
	struct timespec t[2] = {{1000, 500}, {2000, 999999999}};
	CHECK(utimensat(AT_FDCWD, "f", t, 0) == 0);
	CHECK(stat("f", &s) == 0);
	CHECK(s.st_atim.tv_sec == 1000 && s.st_atim.tv_nsec == 500);
	CHECK(s.st_mtim.tv_sec == 2000 && s.st_mtim.tv_nsec == 999999999);
	/* ctime is now whatever the times set. */
	CHECK(ns(s.st_ctim) > now_ns() - 5000000000LL);
	/* UTIME_OMIT keeps one; UTIME_NOW sets it to now. */
	struct timespec o[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	int64_t before = now_ns();
	CHECK(utimensat(AT_FDCWD, "f", o, 0) == 0);
	CHECK(stat("f", &s) == 0);
	CHECK(s.st_atim.tv_sec == 1000 && s.st_atim.tv_nsec == 500);
	CHECK(ns(s.st_mtim) > before - 1000000000LL);
	/* futimens, both now (NULL). */
	int fd = open("f", O_RDONLY);
	CHECK(fd >= 0);
	struct timespec old[2] = {{5, 0}, {6, 0}};
	CHECK(futimens(fd, old) == 0);
	CHECK(fstat(fd, &s) == 0 && s.st_atim.tv_sec == 5 && s.st_mtim.tv_sec == 6);
	CHECK(futimens(fd, 0) == 0);
	CHECK(fstat(fd, &s) == 0 && ns(s.st_atim) > before - 1000000000LL);
	CHECK(ns(s.st_mtim) == ns(s.st_atim));
	close(fd);
	/* A bad nanosecond field: EINVAL; a missing file: ENOENT. */
	struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
	ERR(utimensat(AT_FDCWD, "f", bad, 0), EINVAL);
	ERR(utimensat(AT_FDCWD, "missing", 0, 0), ENOENT);
	ERR(utimensat(AT_FDCWD, "f", 0, 0x4000), EINVAL);
	/* utimes (microseconds). */
	struct timeval tv[2] = {{300, 7}, {400, 8}};
	CHECK(utimes("f", tv) == 0);
	CHECK(stat("f", &s) == 0 && s.st_atim.tv_nsec == 7000 && s.st_mtim.tv_sec == 400);
	/* AT_SYMLINK_NOFOLLOW changes the link itself, not its target. */
	CHECK(symlink("f", "l") == 0);
	CHECK(utimensat(AT_FDCWD, "l", t, AT_SYMLINK_NOFOLLOW) == 0);
	struct stat ls;
	CHECK(lstat("l", &ls) == 0 && ls.st_mtim.tv_sec == 2000);
	CHECK(stat("f", &s) == 0 && s.st_mtim.tv_sec == 400);
	CHECK(unlink("l") == 0 && unlink("f") == 0);
	/* The root directory has a time (the ramdisk's on Ferrite). */
	CHECK(stat("/", &s) == 0 && s.st_mtim.tv_sec > 0);
}

static void t_chmod(void)
{
	struct stat s;
	CHECK(put("f", "x") == 0);
	CHECK(chmod("f", 0640) == 0);
	CHECK(stat("f", &s) == 0 && (s.st_mode & 07777) == 0640 && S_ISREG(s.st_mode));
	CHECK(fchmodat(AT_FDCWD, "f", 04755, 0) == 0);
	CHECK(stat("f", &s) == 0 && (s.st_mode & 07777) == 04755);
	/* Through a symbolic link: the target. */
	CHECK(symlink("f", "l") == 0);
	CHECK(chmod("l", 0600) == 0);
	CHECK(stat("f", &s) == 0 && (s.st_mode & 07777) == 0600);
	CHECK(lstat("l", &s) == 0 && (s.st_mode & 0777) == 0777 && S_ISLNK(s.st_mode));
	/* A directory. */
	CHECK(mkdir("d", 0755) == 0);
	CHECK(chmod("d", 0700) == 0);
	CHECK(stat("d", &s) == 0 && (s.st_mode & 07777) == 0700 && S_ISDIR(s.st_mode));
	/* fchmod on a descriptor; the mode shows in fstat. */
	int fd = open("f", O_RDONLY);
	CHECK(fd >= 0);
	CHECK(fchmod(fd, 0444) == 0);
	CHECK(fstat(fd, &s) == 0 && (s.st_mode & 07777) == 0444);
	close(fd);
	ERR(chmod("missing", 0644), ENOENT);
	ERR(fchmod(-1, 0644), EBADF);
	CHECK(unlink("l") == 0 && unlink("f") == 0 && rmdir("d") == 0);
}

static void t_hard_links(void)
{
	struct stat a, b;
	CHECK(put("a", "one") == 0);
	CHECK(link("a", "b") == 0);
	CHECK(stat("a", &a) == 0 && stat("b", &b) == 0);
	CHECK(a.st_ino == b.st_ino && a.st_nlink == 2 && b.st_nlink == 2);
	/* One file: a write by one name shows by the other. */
	CHECK(put("b", "two") == 0);
	CHECK(!strcmp(get("a"), "two"));
	CHECK(mkdir("d", 0755) == 0);
	CHECK(linkat(AT_FDCWD, "a", AT_FDCWD, "d/c", 0) == 0);
	CHECK(stat("d/c", &b) == 0 && b.st_nlink == 3);
	CHECK(unlink("a") == 0);
	CHECK(stat("b", &b) == 0 && b.st_nlink == 2 && !strcmp(get("d/c"), "two"));
	/* Refusals. */
	ERR(link("b", "d/c"), EEXIST);
	ERR(link("missing", "x"), ENOENT);
	ERR(link("d", "d2"), EPERM);
	ERR(link("b", "nodir/x"), ENOENT);
	ERR(link("/proc/self/status", "x"), EXDEV);
	/* The file lives while a descriptor holds it, with no name left. */
	int fd = open("b", O_RDWR);
	CHECK(fd >= 0);
	CHECK(unlink("b") == 0 && unlink("d/c") == 0);
	CHECK(fstat(fd, &b) == 0 && b.st_nlink == 0);
	char buf[8] = {0};
	CHECK(pread(fd, buf, 3, 0) == 3 && !memcmp(buf, "two", 3));
	close(fd);
	/* A link to a symbolic link (not followed), or followed. */
	CHECK(put("t", "target") == 0);
	CHECK(symlink("t", "s") == 0);
	CHECK(linkat(AT_FDCWD, "s", AT_FDCWD, "s2", 0) == 0);
	CHECK(lstat("s2", &a) == 0 && S_ISLNK(a.st_mode) && a.st_nlink == 2);
	CHECK(linkat(AT_FDCWD, "s", AT_FDCWD, "t2", AT_SYMLINK_FOLLOW) == 0);
	CHECK(lstat("t2", &a) == 0 && S_ISREG(a.st_mode) && a.st_nlink == 2);
	/* rename onto another name of the same file: nothing happens. */
	CHECK(rename("t", "t2") == 0);
	CHECK(lstat("t", &a) == 0 && a.st_nlink == 2);
	/* rename over a linked name: that name's count goes down. */
	CHECK(put("other", "o") == 0);
	CHECK(rename("other", "t2") == 0);
	CHECK(stat("t", &a) == 0 && a.st_nlink == 1);
	CHECK(unlink("t") == 0 && unlink("t2") == 0 && unlink("s") == 0 && unlink("s2") == 0);
	CHECK(rmdir("d") == 0);
}

static void t_symlinks(void)
{
	char buf[256];
	struct stat s;
	CHECK(put("f", "contents") == 0);
	CHECK(symlink("f", "l") == 0);
	ssize_t n = readlink("l", buf, sizeof buf);
	CHECK(n == 1 && buf[0] == 'f');
	CHECK(lstat("l", &s) == 0 && S_ISLNK(s.st_mode) && s.st_size == 1);
	CHECK(stat("l", &s) == 0 && S_ISREG(s.st_mode) && s.st_size == 8);
	CHECK(!strcmp(get("l"), "contents"));
	/* readlink cuts without a NUL; of a non-link: EINVAL. */
	CHECK(symlink("a-longer-target", "l2") == 0);
	CHECK(readlink("l2", buf, 4) == 4 && !memcmp(buf, "a-lo", 4));
	ERR(readlink("f", buf, sizeof buf), EINVAL);
	CHECK(readlinkat(AT_FDCWD, "l2", buf, sizeof buf) == 15);
	/* Dangling: open ENOENT, lstat fine. */
	ERR(open("l2", O_RDONLY), ENOENT);
	CHECK(lstat("l2", &s) == 0);
	/* Relative to the link's own directory; through a link to a dir. */
	CHECK(mkdir("d", 0755) == 0);
	CHECK(symlink("../f", "d/up") == 0);
	CHECK(!strcmp(get("d/up"), "contents"));
	CHECK(symlink("d", "dl") == 0);
	CHECK(!strcmp(get("dl/up"), "contents"));
	CHECK(put("dl/new", "via link") == 0);
	CHECK(!strcmp(get("d/new"), "via link"));
	/* Absolute target. */
	char abs[1024];
	snprintf(abs, sizeof abs, "%s/f", dir);
	CHECK(symlink(abs, "abs") == 0);
	CHECK(!strcmp(get("abs"), "contents"));
	/* A loop: ELOOP; O_NOFOLLOW on a link: ELOOP. */
	CHECK(symlink("loop2", "loop1") == 0 && symlink("loop1", "loop2") == 0);
	ERR(open("loop1", O_RDONLY), ELOOP);
	ERR(open("l", O_RDONLY | O_NOFOLLOW), ELOOP);
	/* Refusals. */
	ERR(symlink("x", "f"), EEXIST);
	ERR(symlink("", "empty"), ENOENT);
	ERR(symlink("x", "nodir/l"), ENOENT);
	/* symlinkat relative to a directory descriptor. */
	int dfd = open("d", O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0);
	CHECK(symlinkat("new", dfd, "l3") == 0);
	CHECK(!strcmp(get("d/l3"), "via link"));
	close(dfd);
	/* unlink removes the link, not the target; rename moves the link. */
	CHECK(rename("l", "l4") == 0);
	CHECK(!strcmp(get("l4"), "contents"));
	CHECK(unlink("l4") == 0 && !strcmp(get("f"), "contents"));
	/* rmdir of a link to a directory: ENOTDIR. */
	ERR(rmdir("dl"), ENOTDIR);
	/* getdents shows the type. */
	DIR *dp = opendir(".");
	CHECK(dp);
	int links = 0;
	struct dirent *e;
	while ((e = readdir(dp)))
		if (e->d_type == DT_LNK)
			links++;
	closedir(dp);
	CHECK(links == 5); /* l2 dl abs loop1 loop2 */
	const char *names[] = {"l2", "dl", "abs", "loop1", "loop2", "d/up", "d/new", "d/l3", "f"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		CHECK(unlink(names[i]) == 0);
	CHECK(rmdir("d") == 0);
}

/* /proc/self/fd/<fd>'s target. */
static const char *fd_link(int fd)
{
	static char buf[1024];
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static void t_proc_fd(void)
{
	char want[1024];
	int fd = open("f", O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0);
	snprintf(want, sizeof want, "%s/f", dir);
	CHECK(!strcmp(fd_link(fd), want));
	struct stat s;
	CHECK(lstat("/proc/self/fd/0", &s) == 0 && S_ISLNK(s.st_mode));
	int p[2];
	CHECK(pipe(p) == 0);
	struct stat ps;
	CHECK(fstat(p[0], &ps) == 0);
	char pipe_name[64];
	snprintf(pipe_name, sizeof pipe_name, "pipe:[%lu]", (unsigned long)ps.st_ino);
	CHECK(!strcmp(fd_link(p[0]), pipe_name) && !strcmp(fd_link(p[1]), pipe_name));
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(null >= 0 && !strcmp(fd_link(null), "/dev/null"));
	/* The directory lists exactly the open descriptors. */
	DIR *dp = opendir("/proc/self/fd");
	CHECK(dp);
	int seen = 0, mine = dirfd(dp);
	struct dirent *e;
	while ((e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		int n = atoi(e->d_name);
		if (n == fd || n == p[0] || n == p[1] || n == null || n == mine)
			seen++;
		CHECK(e->d_type == DT_LNK);
		CHECK(fcntl(n, F_GETFD) >= 0);
	}
	closedir(dp);
	CHECK(seen == 5);
	/* fdinfo: the offset and the flags. */
	CHECK(write(fd, "hello", 5) == 5);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	CHECK(strstr(get(path), "pos:\t5\n") != 0);
	CHECK(strstr(get(path), "flags:\t0100002\n") != 0 || strstr(get(path), "flags:\t02\n") != 0);
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", null);
	CHECK(strstr(get(path), "flags:\t02") != 0); /* O_CLOEXEC | ... */
	/* A closed descriptor is gone from both. */
	close(p[1]);
	snprintf(path, sizeof path, "/proc/self/fd/%d", p[1]);
	ERR(readlink(path, want, sizeof want), ENOENT);
	/* Deleted: " (deleted)" after the path. */
	CHECK(unlink("f") == 0);
	snprintf(want, sizeof want, "%s/f (deleted)", dir);
	CHECK(!strcmp(fd_link(fd), want));
	/* Another process's: the parent's, seen from a child. */
	pid_t pid = fork();
	if (pid == 0) {
		char other[64];
		snprintf(other, sizeof other, "/proc/%d/fd/%d", (int)getppid(), p[0]);
		char buf[64];
		ssize_t n = readlink(other, buf, sizeof buf - 1);
		buf[n > 0 ? n : 0] = 0;
		_exit(n > 0 && !strcmp(buf, pipe_name) ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fd);
	close(p[0]);
	close(null);
}

static void t_mmap_blocks(void)
{
	/* Pages first touched through a shared mapping are the file's. */
	int fd = open("m", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 64 * 4096) == 0);
	struct stat s;
	CHECK(fstat(fd, &s) == 0);
	long before = (long)s.st_blocks;
	char *m = mmap(0, 64 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	for (int i = 0; i < 16; i++)
		m[i * 4096] = (char)(i + 1);
	CHECK(fstat(fd, &s) == 0);
	CHECK((long)s.st_blocks >= before + 16 * 8);
	char c;
	CHECK(pread(fd, &c, 1, 5 * 4096) == 1 && c == 6);
	CHECK(munmap(m, 64 * 4096) == 0);
	/* Truncated away: the blocks go. */
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(fstat(fd, &s) == 0 && s.st_blocks == 0);
	close(fd);
	CHECK(unlink("m") == 0);
}

/* Two processes write one byte at a time through one description: every
 * byte lands at its own offset. Then both read it back 4 bytes at a time:
 * every record is read by exactly one of them. */
#define RECORDS 3000
static void t_shared_offset(void)
{
	int fd = open("o", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < RECORDS; i++)
			if (write(fd, "c", 1) != 1)
				_exit(1);
		_exit(0);
	}
	for (int i = 0; i < RECORDS; i++)
		CHECK(write(fd, "p", 1) == 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct stat s;
	CHECK(fstat(fd, &s) == 0 && s.st_size == 2 * RECORDS);
	CHECK(lseek(fd, 0, SEEK_CUR) == 2 * RECORDS);
	/* Records 0..RECORDS-1 as 4-byte ints. */
	CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	for (int i = 0; i < RECORDS; i++)
		CHECK(write(fd, &i, 4) == 4);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		long count = 0, sum = 0;
		int v;
		while (read(fd, &v, 4) == 4) {
			count++;
			sum += v;
		}
		long out[2] = {count, sum};
		_exit(write(p[1], out, sizeof out) == sizeof out ? 0 : 1);
	}
	close(p[1]);
	long count = 0, sum = 0;
	int v;
	while (read(fd, &v, 4) == 4) {
		count++;
		sum += v;
	}
	long theirs[2] = {0, 0};
	CHECK(read(p[0], theirs, sizeof theirs) == sizeof theirs);
	close(p[0]);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (count + theirs[0] != RECORDS || sum + theirs[1] != (long)RECORDS * (RECORDS - 1) / 2)
		fail("read %ld + %ld records, sum %ld", count, theirs[0], sum + theirs[1]);
	close(fd);
	CHECK(unlink("o") == 0);
}

/* Named only: a shared mapping of a file far bigger than the file system
 * may hold, touched page by page in a child until the fault is refused
 * (SIGBUS, as Linux's tmpfs); then the pages are all the file's, and
 * writing to another file is refused too (ENOSPC) until it goes. */
static void t_mapfill(void)
{
	long len = 512L << 20;
	int fd = open("big", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, len) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		char *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			_exit(2);
		for (long at = 0; at < len; at += 4096) {
			m[at] = 1;
			if (write(p[1], "x", 1) != 1)
				_exit(3);
		}
		_exit(0);
	}
	close(p[1]);
	long pages = 0;
	char buf[4096];
	ssize_t n;
	while ((n = read(p[0], buf, sizeof buf)) > 0)
		pages += n;
	close(p[0]);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGBUS)
		fail("child status %#x after %ld pages, want SIGBUS", st, pages);
	struct stat s;
	CHECK(fstat(fd, &s) == 0 && s.st_blocks == pages * 8);
	int g = open("g", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(g >= 0);
	ERR(write(g, buf, 4096), ENOSPC);
	close(fd);
	CHECK(unlink("big") == 0);
	CHECK(write(g, buf, 4096) == 4096);
	close(g);
	CHECK(unlink("g") == 0);
	say("fstests2: mapfill: %ld KiB touched before SIGBUS\n", pages * 4);
}

static struct testcase cases[] = {
	{"exec-copy", t_exec_copy, 0, 0},
	{"exec-unlinked", t_exec_unlinked, 0, 0},
	{"times", t_times, 0, 0},
	{"dir-times", t_dir_times, 0, 0},
	{"utimensat", t_utimensat, 0, 0},
	{"chmod", t_chmod, 0, 0},
	{"hard-links", t_hard_links, 0, 0},
	{"symlinks", t_symlinks, 0, 0},
	{"proc-fd", t_proc_fd, 0, 0},
	{"mmap-blocks", t_mmap_blocks, 0, 0},
	{"shared-offset", t_shared_offset, 0, 0},
	{"mapfill", t_mapfill, 0, BY_NAME},
};

int main(int argc, char **argv)
{
	/* The copies run by exec-copy and exec-unlinked. */
	if (argc == 2 && !strcmp(argv[1], "--exit42"))
		return 42;
	if (argc == 2 && !strcmp(argv[1], "--wait-stdin")) {
		char c;
		return read(0, &c, 1) == 1 ? 43 : 1;
	}
	/* In this process (as it always was): each case starts from the
	 * scratch directory. */
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--skip CASE]... [CASE...]",
		.before = to_scratch,
		.in_process = 1,
	};
	return run_in_scratch(&suite, argc, argv, "FSTESTS2_DIR");
}

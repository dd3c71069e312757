/*
 * filetests: the file-system calls, checked against what Linux does.
 *
 * Runs natively on Linux (user/run-host-tests.sh) and on Ferrite
 * (tests/vfs.rs). Everything it creates is inside a directory it makes
 * with mkdtemp under $FILETESTS_DIR or /tmp, and removes at the end.
 *
 * Usage: filetests [CASE...]   (no case: all but the ones run only when
 *                               named: "fill", which writes until the
 *                               file system is full)
 * Output: "filetests: <case> ... ok" or "... FAILED (<why>)" per case, then
 * "filetests: N passed, M failed". Exit status 0 iff all passed.
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
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUITE "filetests"
#include "fileutil.h"

#define BAD ((void *)1) /* an address nothing maps */

static long size_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void t_open_create(void)
{
	int fd = open("f", O_CREAT | O_EXCL | O_RDWR, 0600);
	CHECK(fd >= 0);
	ERR(open("f", O_CREAT | O_EXCL | O_RDWR, 0600), EEXIST);
	ERR(open("missing", O_RDONLY), ENOENT);
	ERR(open("missing/x", O_CREAT | O_RDWR, 0600), ENOENT);
	ERR(open("f/x", O_RDONLY), ENOTDIR);
	ERR(open("f/", O_RDONLY), ENOTDIR);
	ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	ERR(open(".", O_WRONLY), EISDIR);
	ERR(open(".", O_RDWR), EISDIR);
	ERR(open(NULL, O_RDONLY), EFAULT);
	ERR(open(BAD, O_RDONLY), EFAULT);
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	ERR(open(longname, O_CREAT | O_RDWR, 0600), ENAMETOOLONG);
	int d = open(".", O_RDONLY | O_DIRECTORY);
	CHECK(d >= 0);
	char c;
	ERR(read(d, &c, 1), EISDIR);
	close(d);
	CHECK(close(fd) == 0);
	ERR(close(fd), EBADF);
	/* creat() */
	fd = creat("g", 0600);
	CHECK(fd >= 0);
	ERR(read(fd, &c, 1), EBADF);
	close(fd);
	fd = open("g", O_RDONLY);
	ERR(write(fd, "x", 1), EBADF);
	close(fd);
	CHECK(unlink("f") == 0 && unlink("g") == 0);
}

static void t_read_write_seek(void)
{
	int fd = open("rw", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, "hello world", 11) == 11);
	CHECK(lseek(fd, 0, SEEK_CUR) == 11);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	char buf[32] = {0};
	CHECK(read(fd, buf, sizeof buf) == 11 && memcmp(buf, "hello world", 11) == 0);
	CHECK(read(fd, buf, sizeof buf) == 0);
	CHECK(lseek(fd, -5, SEEK_END) == 6);
	CHECK(read(fd, buf, 5) == 5 && memcmp(buf, "world", 5) == 0);
	ERR(lseek(fd, -100, SEEK_CUR), EINVAL);
	ERR(lseek(fd, 0, 7), EINVAL);
	/* A write past the end leaves a hole of zeros. */
	CHECK(lseek(fd, 20, SEEK_SET) == 20);
	CHECK(write(fd, "!", 1) == 1);
	CHECK(size_of("rw") == 21);
	CHECK(pread(fd, buf, 10, 11) == 10);
	for (int i = 0; i < 9; i++)
		CHECK(buf[i] == 0);
	CHECK(buf[9] == '!');
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	ERR(read(fd, NULL, 10), EFAULT);
	ERR(read(fd, BAD, 10), EFAULT);
	ERR(write(fd, BAD, 10), EFAULT);
	CHECK(size_of("rw") == 21);
	/* readv/writev */
	struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	CHECK(writev(fd, iov, 2) == 4);
	CHECK(pread(fd, buf, 4, 0) == 4 && memcmp(buf, "abcd", 4) == 0);
	close(fd);
	CHECK(unlink("rw") == 0);
}

static void t_pread_pwrite(void)
{
	int fd = open("p", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "xyz", 3, 100) == 3);
	CHECK(lseek(fd, 0, SEEK_CUR) == 0); /* pwrite leaves the offset */
	CHECK(size_of("p") == 103);
	char buf[8];
	CHECK(pread(fd, buf, 8, 99) == 4 && buf[0] == 0 && memcmp(buf + 1, "xyz", 3) == 0);
	CHECK(lseek(fd, 0, SEEK_CUR) == 0);
	CHECK(pread(fd, buf, 8, 1000) == 0);
	ERR(pread(fd, buf, 8, -1), EINVAL);
	ERR(pwrite(fd, buf, 8, -1), EINVAL);
	ERR(pread(fd, BAD, 8, 99), EFAULT);
	ERR(pread(999, buf, 8, 0), EBADF);
	int d = open("/dev/null", O_RDWR);
	CHECK(d >= 0);
	CHECK(pwrite(d, "a", 1, 0) == 1);
	close(d);
	close(fd);
	CHECK(unlink("p") == 0);
}

static void t_append(void)
{
	CHECK(put("a", "12345") == 0);
	int fd = open("a", O_WRONLY | O_APPEND);
	CHECK(fd >= 0);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	CHECK(write(fd, "67", 2) == 2);
	CHECK(lseek(fd, 0, SEEK_CUR) == 7);
	CHECK(size_of("a") == 7);
	int fl = fcntl(fd, F_GETFL);
	CHECK(fl >= 0 && (fl & O_APPEND) && (fl & O_ACCMODE) == O_WRONLY);
	CHECK(fcntl(fd, F_SETFL, 0) == 0);
	CHECK(!(fcntl(fd, F_GETFL) & O_APPEND));
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	CHECK(write(fd, "x", 1) == 1);
	close(fd);
	char buf[8] = {0};
	fd = open("a", O_RDONLY);
	CHECK(read(fd, buf, 8) == 7 && memcmp(buf, "x234567", 7) == 0);
	close(fd);
	CHECK(unlink("a") == 0);
}

static void t_truncate(void)
{
	CHECK(put("t", "abcdefgh") == 0);
	int fd = open("t", O_RDWR | O_TRUNC);
	CHECK(fd >= 0);
	CHECK(size_of("t") == 0);
	CHECK(write(fd, "abcdefgh", 8) == 8);
	CHECK(ftruncate(fd, 3) == 0 && size_of("t") == 3);
	CHECK(ftruncate(fd, 6) == 0 && size_of("t") == 6);
	char buf[8];
	CHECK(pread(fd, buf, 8, 0) == 6 && memcmp(buf, "abc\0\0\0", 6) == 0);
	ERR(ftruncate(fd, -1), EINVAL);
	CHECK(truncate("t", 10000) == 0 && size_of("t") == 10000);
	CHECK(truncate("t", 1) == 0 && size_of("t") == 1);
	ERR(truncate("missing", 1), ENOENT);
	ERR(truncate(".", 1), EISDIR);
	ERR(truncate(BAD, 1), EFAULT);
	close(fd);
	fd = open("t", O_RDONLY);
	ERR(ftruncate(fd, 0), EINVAL);
	close(fd);
	ERR(ftruncate(999, 0), EBADF);
	CHECK(unlink("t") == 0);
}

static void t_stat(void)
{
	CHECK(put("s", "12345") == 0);
	struct stat st, st2;
	CHECK(stat("s", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 5 && st.st_nlink == 1);
	CHECK(lstat("s", &st2) == 0 && st2.st_ino == st.st_ino);
	int fd = open("s", O_RDONLY);
	CHECK(fstat(fd, &st2) == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev);
	CHECK(fstatat(AT_FDCWD, "s", &st2, 0) == 0 && st2.st_size == 5);
	CHECK(fstatat(fd, "", &st2, AT_EMPTY_PATH) == 0 && st2.st_ino == st.st_ino);
	ERR(fstatat(fd, "", &st2, 0), ENOENT);
	ERR(fstatat(fd, "x", &st2, 0), ENOTDIR);
	ERR(fstatat(AT_FDCWD, "s", &st2, 0x40000000), EINVAL);
	close(fd);
	CHECK(stat(".", &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(stat("/", &st) == 0 && S_ISDIR(st.st_mode));
	ERR(stat("missing", &st), ENOENT);
	ERR(stat("s/x", &st), ENOTDIR);
	ERR(stat("", &st), ENOENT);
	/* Raw calls: libc's wrappers may copy the struct themselves. */
	ERR(syscall(SYS_stat, "s", BAD), EFAULT);
	ERR(syscall(SYS_stat, BAD, &st), EFAULT);
	ERR(syscall(SYS_lstat, "s", BAD), EFAULT);
	ERR(syscall(SYS_newfstatat, AT_FDCWD, "s", BAD, 0), EFAULT);
	ERR(syscall(SYS_fstat, 0, BAD), EFAULT);
	ERR(fstat(999, &st), EBADF);
	ERR(fstat(-1, &st), EBADF);
#ifdef SYS_statx
	/* struct statx by offset: musl may not declare it. */
	uint64_t sx[32];
	CHECK(syscall(SYS_statx, AT_FDCWD, "s", 0, 0x7ff, sx) == 0);
	uint32_t mask;
	uint16_t mode;
	uint64_t size;
	memcpy(&mask, (char *)sx + 0, 4);
	memcpy(&mode, (char *)sx + 0x1c, 2);
	memcpy(&size, (char *)sx + 0x28, 8);
	CHECK(size == 5 && S_ISREG(mode) && (mask & 0x200 /* STATX_SIZE */));
	ERR(syscall(SYS_statx, AT_FDCWD, "missing", 0, 0x7ff, sx), ENOENT);
	ERR(syscall(SYS_statx, AT_FDCWD, "s", 0, 0x7ff, BAD), EFAULT);
#endif
	CHECK(unlink("s") == 0);
}

static void t_mkdir_rmdir(void)
{
	CHECK(mkdir("d", 0755) == 0);
	ERR(mkdir("d", 0755), EEXIST);
	ERR(mkdir("missing/d", 0755), ENOENT);
	ERR(mkdir(BAD, 0755), EFAULT);
	CHECK(mkdir("d/e/", 0755) == 0);
	struct stat st;
	CHECK(stat("d/e", &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(stat("d", &st) == 0 && st.st_nlink == 3);
	ERR(rmdir("d"), ENOTEMPTY);
	ERR(unlink("d"), EISDIR);
	CHECK(put("d/f", "x") == 0);
	ERR(rmdir("d/f"), ENOTDIR);
	ERR(mkdir("d/f/g", 0755), ENOTDIR);
	ERR(rmdir("d/e/."), EINVAL);
	ERR(rmdir("missing"), ENOENT);
	CHECK(unlink("d/f") == 0);
	CHECK(rmdir("d/e") == 0);
	CHECK(rmdir("d") == 0);
	ERR(stat("d", &st), ENOENT);
}

static void t_getdents(void)
{
	CHECK(mkdir("g", 0755) == 0);
	CHECK(put("g/a", "1") == 0 && put("g/bb", "2") == 0 && mkdir("g/ccc", 0755) == 0);
	int fd = open("g", O_RDONLY | O_DIRECTORY);
	CHECK(fd >= 0);
	char buf[4096];
	int seen = 0, dots = 0;
	/* A small buffer: several calls. */
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, 64);
		CHECK(n >= 0);
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64 *d = (void *)(buf + off);
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..")) {
				dots++;
				CHECK(d->d_type == DT_DIR);
			} else if (!strcmp(d->d_name, "a")) {
				seen |= 1;
				CHECK(d->d_type == DT_REG);
			} else if (!strcmp(d->d_name, "bb")) {
				seen |= 2;
			} else if (!strcmp(d->d_name, "ccc")) {
				seen |= 4;
				CHECK(d->d_type == DT_DIR);
			} else {
				fail("unexpected entry %s", d->d_name);
			}
			off += d->d_reclen;
		}
	}
	CHECK(seen == 7 && dots == 2);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	ERR(syscall(SYS_getdents64, fd, buf, 8), EINVAL);
	ERR(syscall(SYS_getdents64, fd, BAD, 4096), EFAULT);
	close(fd);
	ERR(syscall(SYS_getdents64, 999, buf, 4096), EBADF);
	fd = open("g/a", O_RDONLY);
	ERR(syscall(SYS_getdents64, fd, buf, 4096), ENOTDIR);
	close(fd);
	/* opendir/readdir over the same call. */
	DIR *dir = opendir("g");
	CHECK(dir != NULL);
	int count = 0;
	while (readdir(dir))
		count++;
	closedir(dir);
	CHECK(count == 5);
	CHECK(unlink("g/a") == 0 && unlink("g/bb") == 0 && rmdir("g/ccc") == 0 && rmdir("g") == 0);
}

static void t_unlink(void)
{
	CHECK(put("u", "still here") == 0);
	int fd = open("u", O_RDONLY);
	CHECK(fd >= 0);
	CHECK(unlink("u") == 0);
	struct stat st;
	ERR(stat("u", &st), ENOENT);
	ERR(unlink("u"), ENOENT);
	ERR(unlink(BAD), EFAULT);
	ERR(unlink("."), EISDIR);
	/* The open file lives on without a name. */
	char buf[16] = {0};
	CHECK(read(fd, buf, sizeof buf) == 10 && !memcmp(buf, "still here", 10));
	CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0);
	close(fd);
}

static void t_rename(void)
{
	CHECK(put("r1", "one") == 0 && put("r2", "two") == 0);
	CHECK(rename("r1", "r3") == 0);
	struct stat st;
	ERR(stat("r1", &st), ENOENT);
	CHECK(size_of("r3") == 3);
	CHECK(rename("r3", "r2") == 0); /* replaces */
	char buf[4] = {0};
	int fd = open("r2", O_RDONLY);
	CHECK(read(fd, buf, 3) == 3 && !memcmp(buf, "one", 3));
	close(fd);
	ERR(rename("missing", "x"), ENOENT);
	CHECK(mkdir("rd", 0755) == 0 && mkdir("re", 0755) == 0 && put("re/x", "x") == 0);
	ERR(rename("r2", "rd"), EISDIR);
	ERR(rename("rd", "r2"), ENOTDIR);
	ERR(rename("rd", "re"), ENOTEMPTY);
	ERR(rename("rd", "rd/sub"), EINVAL);
	ERR(rename(BAD, "x"), EFAULT);
	CHECK(rename("r2", "rd/moved") == 0);
	CHECK(size_of("rd/moved") == 3);
	CHECK(rename("rd", "rf") == 0 && size_of("rf/moved") == 3);
	CHECK(rename("rf/moved", "rf/moved") == 0);
#ifdef SYS_renameat2
	CHECK(put("r4", "4") == 0);
	ERR(syscall(SYS_renameat2, AT_FDCWD, "r4", AT_FDCWD, "rf/moved", 1 /* RENAME_NOREPLACE */), EEXIST);
	CHECK(syscall(SYS_renameat2, AT_FDCWD, "r4", AT_FDCWD, "r5", 1) == 0);
	CHECK(unlink("r5") == 0);
#endif
	CHECK(renameat(AT_FDCWD, "rf/moved", AT_FDCWD, "back") == 0 && unlink("back") == 0);
	CHECK(unlink("re/x") == 0 && rmdir("re") == 0 && rmdir("rf") == 0);
}

static void t_cwd(void)
{
	char start[4096], buf[4096];
	CHECK(getcwd(start, sizeof start) != NULL && start[0] == '/');
	CHECK(mkdir("c", 0755) == 0);
	CHECK(chdir("c") == 0);
	CHECK(getcwd(buf, sizeof buf) != NULL);
	CHECK(strlen(buf) == strlen(start) + 2 && !strncmp(buf, start, strlen(start)) &&
	      !strcmp(buf + strlen(start), "/c"));
	CHECK(put("inner", "i") == 0);
	CHECK(chdir("..") == 0);
	CHECK(getcwd(buf, sizeof buf) != NULL && !strcmp(buf, start));
	CHECK(size_of("c/inner") == 1);
	CHECK(size_of("c/../c/./inner") == 1);
	ERR(chdir("missing"), ENOENT);
	ERR(chdir("c/inner"), ENOTDIR);
	ERR(chdir(BAD), EFAULT);
	ERR(syscall(SYS_getcwd, buf, 1), ERANGE);
	ERR(syscall(SYS_getcwd, BAD, sizeof buf), EFAULT);
	CHECK(syscall(SYS_getcwd, buf, sizeof buf) == (long)strlen(start) + 1);
	int fd = open("c", O_RDONLY | O_DIRECTORY);
	CHECK(fchdir(fd) == 0);
	CHECK(size_of("inner") == 1);
	close(fd);
	CHECK(chdir(start) == 0);
	fd = open("c/inner", O_RDONLY);
	ERR(fchdir(fd), ENOTDIR);
	close(fd);
	ERR(fchdir(999), EBADF);
	/* The root's parent is the root. */
	CHECK(chdir("/..") == 0 && getcwd(buf, sizeof buf) && !strcmp(buf, "/"));
	CHECK(chdir(start) == 0);
	CHECK(unlink("c/inner") == 0 && rmdir("c") == 0);
}

static void t_at_calls(void)
{
	CHECK(mkdir("at", 0755) == 0);
	int d = open("at", O_RDONLY | O_DIRECTORY);
	CHECK(d >= 0);
	int fd = openat(d, "f", O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0 && write(fd, "abc", 3) == 3);
	CHECK(size_of("at/f") == 3);
	CHECK(mkdirat(d, "sub", 0755) == 0);
	CHECK(faccessat(d, "f", R_OK | W_OK, 0) == 0);
	struct stat st;
	CHECK(fstatat(d, "sub", &st, 0) == 0 && S_ISDIR(st.st_mode));
	CHECK(renameat(d, "f", d, "sub/g") == 0);
	ERR(openat(fd, "x", O_RDONLY), ENOTDIR);
	ERR(openat(999, "x", O_RDONLY), EBADF);
	ERR(unlinkat(d, "sub", 0), EISDIR);
	ERR(unlinkat(d, "sub", AT_REMOVEDIR), ENOTEMPTY);
	ERR(unlinkat(d, "sub/g", 0x1234), EINVAL);
	CHECK(unlinkat(d, "sub/g", 0) == 0);
	CHECK(unlinkat(d, "sub", AT_REMOVEDIR) == 0);
	/* An absolute path ignores the directory descriptor. */
	CHECK(fstatat(999, "/", &st, 0) == 0);
	close(fd);
	close(d);
	CHECK(rmdir("at") == 0);
}

static void t_access(void)
{
	CHECK(put("ac", "x") == 0);
	CHECK(access("ac", F_OK) == 0);
	CHECK(access("ac", R_OK | W_OK) == 0);
	CHECK(access(".", X_OK) == 0);
	ERR(access("missing", F_OK), ENOENT);
	ERR(access("ac", 0x80), EINVAL);
	ERR(access(BAD, F_OK), EFAULT);
	ERR(access("ac/x", F_OK), ENOTDIR);
	CHECK(unlink("ac") == 0);
}

static void t_readlink(void)
{
	char buf[256];
	CHECK(put("l", "x") == 0);
	ERR(readlink("l", buf, sizeof buf), EINVAL);
	ERR(readlink("missing", buf, sizeof buf), ENOENT);
	ERR(readlink("l", buf, 0), EINVAL);
	ERR(readlink(BAD, buf, sizeof buf), EFAULT);
	ERR(readlinkat(AT_FDCWD, "missing", buf, sizeof buf), ENOENT);
	/* /proc/self/exe names this program where /proc exists. */
	long n = readlink("/proc/self/exe", buf, sizeof buf);
	if (n >= 0)
		CHECK(n > 0 && buf[0] == '/');
	CHECK(unlink("l") == 0);
}

static void t_umask(void)
{
	mode_t old = umask(022);
	CHECK(umask(022) == 022);
	int fd = open("m", O_CREAT | O_RDWR, 0666);
	struct stat st;
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0644);
	close(fd);
	CHECK(umask(077) == 022);
	CHECK(mkdir("md", 0777) == 0 && stat("md", &st) == 0 && (st.st_mode & 0777) == 0700);
	umask(old);
	CHECK(unlink("m") == 0 && rmdir("md") == 0);
}

static void t_dup_fcntl(void)
{
	int fd = open("dp", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	int d = dup(fd);
	CHECK(d > fd);
	CHECK(write(fd, "abc", 3) == 3);
	CHECK(lseek(d, 0, SEEK_CUR) == 3); /* one offset */
	CHECK(fcntl(fd, F_SETFL, O_APPEND) == 0);
	CHECK(fcntl(d, F_GETFL) & O_APPEND); /* one set of status flags */
	CHECK(fcntl(d, F_SETFD, FD_CLOEXEC) == 0);
	CHECK(fcntl(d, F_GETFD) == FD_CLOEXEC && fcntl(fd, F_GETFD) == 0); /* per descriptor */
	int hi = fcntl(fd, F_DUPFD, 50);
	CHECK(hi >= 50 && fcntl(hi, F_GETFD) == 0);
	int hic = fcntl(fd, F_DUPFD_CLOEXEC, 50);
	CHECK(hic > 50 && fcntl(hic, F_GETFD) == FD_CLOEXEC);
	ERR(fcntl(fd, F_DUPFD, -1), EINVAL);
	CHECK(dup2(fd, 40) == 40 && fcntl(40, F_GETFD) == 0);
	CHECK(dup2(fd, fd) == fd);
	ERR(dup2(999, 41), EBADF);
	ERR(dup2(fd, -1), EBADF);
	ERR(dup3(fd, fd, 0), EINVAL);
	ERR(syscall(SYS_dup3, fd, 42, 0x1234), EINVAL);
	CHECK(dup3(fd, 42, O_CLOEXEC) == 42 && fcntl(42, F_GETFD) == FD_CLOEXEC);
	/* dup2 over an open descriptor closes what it named. */
	int other = open("/dev/null", O_RDONLY);
	CHECK(dup2(fd, other) == other);
	CHECK(write(other, "d", 1) == 1 && size_of("dp") == 4);
	ERR(dup(999), EBADF);
	ERR(fcntl(999, F_GETFD), EBADF);
	ERR(fcntl(999, F_GETFL), EBADF);
	ERR(fcntl(fd, 9999), EINVAL);
	/* F_SETFL leaves the access mode alone. */
	CHECK(fcntl(fd, F_SETFL, O_RDONLY | O_NONBLOCK) == 0);
	CHECK((fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == (O_RDWR | O_NONBLOCK));
	close(d), close(hi), close(hic), close(40), close(42), close(other);
	CHECK(write(fd, "e", 1) == 1);
	close(fd);
	CHECK(unlink("dp") == 0);
}

static void t_fork_shares(void)
{
	int fd = open("fk", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(write(fd, "abc", 3) == 3 ? 0 : 1);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(lseek(fd, 0, SEEK_CUR) == 3);
	CHECK(write(fd, "def", 3) == 3);
	char buf[8] = {0};
	CHECK(pread(fd, buf, 8, 0) == 6 && !memcmp(buf, "abcdef", 6));
	close(fd);
	CHECK(unlink("fk") == 0);
}

/* exec'd by t_cloexec: fd a must be closed, fd b open. */
static int fdcheck(int a, int b)
{
	errno = 0;
	if (fcntl(a, F_GETFD) != -1 || errno != EBADF)
		return 1;
	return fcntl(b, F_GETFD) == 0 ? 0 : 2;
}

static void t_cloexec(void)
{
	int a = open(".", O_RDONLY | O_CLOEXEC);
	int b = open(".", O_RDONLY);
	CHECK(a >= 0 && b >= 0 && fcntl(a, F_GETFD) == FD_CLOEXEC);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char sa[16], sb[16];
		snprintf(sa, sizeof sa, "%d", a);
		snprintf(sb, sizeof sb, "%d", b);
		char *argv[] = {"filetests", "--fdcheck", sa, sb, NULL};
		execv(self, argv);
		_exit(3);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail("exec'd check exited %d", WEXITSTATUS(status));
	close(a), close(b);
}

static void t_dev(void)
{
	char buf[64];
	int fd = open("/dev/null", O_RDWR);
	CHECK(fd >= 0);
	CHECK(read(fd, buf, sizeof buf) == 0 && write(fd, "x", 1) == 1);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
	close(fd);
	fd = open("/dev/zero", O_RDONLY);
	memset(buf, 7, sizeof buf);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) == sizeof buf);
	for (size_t i = 0; i < sizeof buf; i++)
		CHECK(buf[i] == 0);
	ERR(read(fd, BAD, 8), EFAULT);
	close(fd);
	fd = open("/dev/full", O_RDWR);
	CHECK(fd >= 0);
	ERR(write(fd, "x", 1), ENOSPC);
	CHECK(read(fd, buf, 8) == 8);
	close(fd);
	fd = open("/dev/urandom", O_RDONLY);
	memset(buf, 0, sizeof buf);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) == sizeof buf);
	int nonzero = 0;
	for (size_t i = 0; i < sizeof buf; i++)
		nonzero += buf[i] != 0;
	CHECK(nonzero > 32);
	close(fd);
	fd = open("/dev/random", O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, 16) == 16);
	close(fd);
	CHECK(stat("/dev/zero", &st) == 0 && major(st.st_rdev) == 1 && minor(st.st_rdev) == 5);
	CHECK(stat("/dev", &st) == 0 && S_ISDIR(st.st_mode));
	ERR(open("/dev/no-such-device", O_RDONLY), ENOENT);
}

static void t_fsync(void)
{
	int fd = open("fs", O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0);
	CHECK(fsync(fd) == 0 && fdatasync(fd) == 0);
	ERR(fsync(999), EBADF);
	ERR(fdatasync(-1), EBADF);
	close(fd);
	CHECK(unlink("fs") == 0);
}

static void t_big_file(void)
{
	enum { SIZE = 1 << 20 };
	char *buf = malloc(SIZE);
	CHECK(buf != NULL);
	for (int i = 0; i < SIZE; i++)
		buf[i] = (char)(i * 7 + i / 4096);
	int fd = open("big", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, SIZE) == SIZE);
	CHECK(size_of("big") == SIZE);
	char *back = malloc(SIZE);
	CHECK(back != NULL);
	CHECK(pread(fd, back, SIZE, 0) == SIZE && !memcmp(buf, back, SIZE));
	/* Unaligned pieces across page edges. */
	CHECK(pread(fd, back, 10000, 4090) == 10000 && !memcmp(buf + 4090, back, 10000));
	free(buf), free(back);
	close(fd);
	CHECK(unlink("big") == 0);
}

static void t_mmap_shared(void)
{
	int fd = open("mm", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 8192) == 0);
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	memcpy(p + 4000, "through the map", 15);
	char buf[16] = {0};
	CHECK(pread(fd, buf, 15, 4000) == 15 && !memcmp(buf, "through the map", 15));
	CHECK(pwrite(fd, "through write", 13, 100) == 13);
	CHECK(!memcmp(p + 100, "through write", 13));
	CHECK(msync(p, 8192, MS_SYNC) == 0);
	ERR(msync(p + 1, 4096, MS_SYNC), EINVAL);
	/* A private mapping does not write through. */
	char *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(q != MAP_FAILED && !memcmp(q + 100, "through write", 13));
	q[0] = 'Q';
	CHECK(pread(fd, buf, 1, 0) == 1 && buf[0] == 0);
	munmap(q, 4096);
	/* Shrink: the page past the end is gone from the mapping (SIGBUS). */
	CHECK(ftruncate(fd, 4096) == 0);
	CHECK(!memcmp(p + 100, "through write", 13));
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		volatile char c = p[4096];
		(void)c;
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
	/* Growing again: the bytes that were cut read as zero. */
	CHECK(ftruncate(fd, 8192) == 0);
	CHECK(p[4000] == 't' && p[4096] == 0);
	munmap(p, 8192);
	/* A read-only descriptor cannot be mapped shared and writable. */
	int ro = open("mm", O_RDONLY);
	ERR(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0), EACCES);
	/* Nor made writable afterwards (Linux's VM_MAYWRITE): its writes would
	 * reach the file, which every process mapping or running it sees. */
	char *shared_ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
	CHECK(shared_ro != MAP_FAILED);
	ERR(mprotect(shared_ro, 4096, PROT_READ | PROT_WRITE), EACCES);
	ERR(mprotect(shared_ro, 4096, PROT_WRITE), EACCES);
	CHECK(shared_ro[100] == 't');
	CHECK(munmap(shared_ro, 4096) == 0);
	close(ro);
	close(fd);
	CHECK(unlink("mm") == 0);
}

/* Only when named: fill the file system; nothing written may be lost. */
static void t_fill(void)
{
	int fd = open("fill", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(fd >= 0);
	char chunk[4096];
	long total = 0;
	for (;;) {
		memset(chunk, (char)(total / 4096), sizeof chunk);
		ssize_t n = write(fd, chunk, sizeof chunk);
		if (n < 0) {
			CHECK(errno == ENOSPC || errno == ENOMEM);
			break;
		}
		total += n;
		if (n < (ssize_t)sizeof chunk)
			continue;
	}
	CHECK(total > 0);
	CHECK(size_of("fill") == total);
	for (long at = 0; at < total; at += 4096) {
		CHECK(pread(fd, chunk, 4096, at) > 0);
		long n = total - at < 4096 ? total - at : 4096;
		for (long i = 0; i < n; i++)
			if (chunk[i] != (char)(at / 4096))
				fail("byte %ld lost", at + i);
	}
	/* Another file cannot get a page either; after the unlink it can. */
	int g = open("fill2", O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK(g >= 0);
	ERR(write(g, chunk, 4096), ENOSPC);
	close(fd);
	CHECK(unlink("fill") == 0);
	CHECK(write(g, chunk, 4096) == 4096);
	close(g);
	CHECK(unlink("fill2") == 0);
	say("filetests: fill: %ld KiB written before the file system was full\n", total / 1024);
}

static struct testcase cases[] = {
	{"open-create", t_open_create, 0, 0},
	{"read-write-seek", t_read_write_seek, 0, 0},
	{"pread-pwrite", t_pread_pwrite, 0, 0},
	{"append", t_append, 0, 0},
	{"truncate", t_truncate, 0, 0},
	{"stat", t_stat, 0, 0},
	{"mkdir-rmdir", t_mkdir_rmdir, 0, 0},
	{"getdents", t_getdents, 0, 0},
	{"unlink", t_unlink, 0, 0},
	{"rename", t_rename, 0, 0},
	{"cwd", t_cwd, 0, 0},
	{"at-calls", t_at_calls, 0, 0},
	{"access", t_access, 0, 0},
	{"readlink", t_readlink, 0, 0},
	{"umask", t_umask, 0, 0},
	{"dup-fcntl", t_dup_fcntl, 0, 0},
	{"fork-shares-offset", t_fork_shares, 0, 0},
	{"cloexec", t_cloexec, 0, 0},
	{"dev", t_dev, 0, 0},
	{"fsync", t_fsync, 0, 0},
	{"big-file", t_big_file, 0, 0},
	{"mmap-shared", t_mmap_shared, 0, 0},
	{"fill", t_fill, 0, BY_NAME},
};

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--fdcheck"))
		return fdcheck(atoi(argv[2]), atoi(argv[3]));
	/* In this process (as it always was): each case starts from the
	 * scratch directory. */
	static const struct suite suite = {
		.cases = cases,
		.ncases = NCASES(cases),
		.usage = "[-l] [--skip CASE]... [CASE...]",
		.before = to_scratch,
		.in_process = 1,
	};
	return run_in_scratch(&suite, argc, argv, "FILETESTS_DIR");
}

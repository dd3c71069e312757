/*
 * shmtests: tmpfs files and shared anonymous memory bigger than the
 * machine's free memory (on Ferrite they go to swap, as Linux's shmem):
 * every page carries its index and a seed in a few words (the rest repeats
 * one word, so compressed swap stores it small, yet never as a single
 * "same-filled" word), and every page is checked after the others pushed
 * it out.
 *
 *   shmtests write PATH MIB SEED     write PATH (MIB MiB) page by page,
 *                                    then read it all back and check it
 *   shmtests check PATH MIB SEED     read PATH back (read, pread, and a
 *                                    MAP_SHARED mapping) and check it
 *   shmtests truncate PATH MIB SEED  cut PATH to half, check what is left
 *                                    (and that the rest reads as gone),
 *                                    grow it again (the new half reads as
 *                                    zeros), then unlink it
 *   shmtests shared MIB              a MAP_SHARED|MAP_ANONYMOUS region of
 *                                    MIB MiB: a child writes it all, the
 *                                    parent checks it and rewrites it, a
 *                                    second child checks that
 * Each prints "shmtests: MODE ok ..." and exits 0 when every check passes,
 * 1 with a line saying what was wrong otherwise, 2 for bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pagepattern.h"
#include "say.h"

static int zero(const uint64_t *p)
{
	for (unsigned i = 0; i < PAGE / 8; i++)
		if (p[i])
			return 0;
	return 1;
}

static int fail(const char *mode, const char *what, size_t page)
{
	say("shmtests: %s: %s (page %zu, errno %d)\n", mode, what, page, errno);
	return 1;
}

static uint64_t page_buf[PAGE / 8];

/* Reads every page of fd from the start with read(): each must be good. */
static int read_all(const char *mode, int fd, size_t pages, uint64_t seed)
{
	if (lseek(fd, 0, SEEK_SET) != 0)
		return fail(mode, "lseek", 0);
	for (size_t i = 0; i < pages; i++) {
		if (read(fd, page_buf, PAGE) != (ssize_t)PAGE)
			return fail(mode, "short read", i);
		if (!pattern_ok(page_buf, i, seed))
			return fail(mode, "read: wrong contents", i);
	}
	if (read(fd, page_buf, PAGE) != 0)
		return fail(mode, "read past the end", pages);
	return 0;
}

static int do_write(const char *path, size_t pages, uint64_t seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fail("write", "open", 0);
	for (size_t i = 0; i < pages; i++) {
		fill(page_buf, i, seed);
		if (write(fd, page_buf, PAGE) != (ssize_t)PAGE)
			return fail("write", "short write", i);
	}
	int bad = read_all("write", fd, pages, seed);
	close(fd);
	if (!bad)
		say("shmtests: write ok %zu pages\n", pages);
	return bad;
}

static int do_check(const char *path, size_t pages, uint64_t seed)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return fail("check", "open", 0);
	struct stat st;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size != pages * PAGE)
		return fail("check", "size", 0);
	if (read_all("check", fd, pages, seed))
		return 1;
	/* Backwards with pread: the other end of the file was pushed out last. */
	for (size_t i = pages; i-- > 0;) {
		if (pread(fd, page_buf, PAGE, i * PAGE) != (ssize_t)PAGE)
			return fail("check", "short pread", i);
		if (!pattern_ok(page_buf, i, seed))
			return fail("check", "pread: wrong contents", i);
	}
	/* Through a shared mapping: each fault fills from the file. */
	char *map = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return fail("check", "mmap", 0);
	for (size_t i = 0; i < pages; i++)
		if (!pattern_ok((const uint64_t *)(map + i * PAGE), i, seed))
			return fail("check", "mapping: wrong contents", i);
	munmap(map, pages * PAGE);
	close(fd);
	say("shmtests: check ok %zu pages\n", pages);
	return 0;
}

static int do_truncate(const char *path, size_t pages, uint64_t seed)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return fail("truncate", "open", 0);
	size_t half = pages / 2;
	/* Cut in the middle of a page: its tail must read as zeros later. */
	off_t cut = (off_t)(half * PAGE + 100);
	if (ftruncate(fd, cut) != 0)
		return fail("truncate", "ftruncate", half);
	for (size_t i = 0; i < half; i++) {
		if (pread(fd, page_buf, PAGE, i * PAGE) != (ssize_t)PAGE)
			return fail("truncate", "short pread", i);
		if (!pattern_ok(page_buf, i, seed))
			return fail("truncate", "pread: wrong contents", i);
	}
	if (pread(fd, page_buf, PAGE, half * PAGE) != 100)
		return fail("truncate", "last page: not 100 bytes", half);
	uint64_t want[PAGE / 8];
	fill(want, half, seed);
	if (memcmp(page_buf, want, 100) != 0)
		return fail("truncate", "last page: wrong contents", half);
	/* Grown again: everything past the cut reads as zeros. */
	if (ftruncate(fd, (off_t)(pages * PAGE)) != 0)
		return fail("truncate", "ftruncate up", pages);
	if (pread(fd, page_buf, PAGE, half * PAGE) != (ssize_t)PAGE)
		return fail("truncate", "short pread after growing", half);
	if (memcmp(page_buf, want, 100) != 0)
		return fail("truncate", "cut page: head lost", half);
	for (unsigned k = 100 / 8 + 1; k < PAGE / 8; k++)
		if (page_buf[k])
			return fail("truncate", "cut page: tail not zero", half);
	for (size_t i = half + 1; i < pages; i++) {
		if (pread(fd, page_buf, PAGE, i * PAGE) != (ssize_t)PAGE)
			return fail("truncate", "short pread of the new half", i);
		if (!zero(page_buf))
			return fail("truncate", "new half: not zero", i);
	}
	close(fd);
	if (unlink(path) != 0)
		return fail("truncate", "unlink", 0);
	say("shmtests: truncate ok %zu of %zu pages kept\n", half, pages);
	return 0;
}

/* Checks every page of the shared region: 0 if all hold `seed`. */
static int check_region(const char *who, const char *mem, size_t pages, uint64_t seed)
{
	for (size_t i = 0; i < pages; i++)
		if (!pattern_ok((const uint64_t *)(mem + i * PAGE), i, seed)) {
			say("shmtests: shared: %s: page %zu of %zu is wrong\n", who, i, pages);
			return 1;
		}
	return 0;
}

static int child_status(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The "Swap:" of the region at `start` in /proc/self/smaps, in kB; -1 if
 * it cannot be read. */
static long smaps_swap_kb(const void *start)
{
	static char text[1 << 16];
	int fd = open("/proc/self/smaps", O_RDONLY);
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t n;
	while (len < sizeof text - 1 && (n = read(fd, text + len, sizeof text - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	text[len] = 0;
	char head[32];
	snprintf(head, sizeof head, "%lx-", (unsigned long)start);
	for (char *line = text; line && *line;) {
		if (strncmp(line, head, strlen(head)) == 0) {
			char *swap = strstr(line, "\nSwap:");
			return swap ? strtol(swap + 6, NULL, 10) : -1;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -1;
}

static int do_shared(size_t pages)
{
	char *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
	if (mem == MAP_FAILED)
		return fail("shared", "mmap", 0);
	/* A child writes every page (pages first touched after the fork are
	 * shared too). */
	pid_t pid = fork();
	if (pid < 0)
		return fail("shared", "fork", 0);
	if (pid == 0) {
		for (size_t i = 0; i < pages; i++)
			fill((uint64_t *)(mem + i * PAGE), i, 1);
		_exit(0);
	}
	if (child_status(pid) != 0)
		return fail("shared", "writer child failed", 0);
	/* What of it is swapped out now (Ferrite: the region is bigger than
	 * RAM; a Linux machine with memory to spare may show 0). */
	say("shmtests: shared: smaps Swap %ld kB\n", smaps_swap_kb(mem));
	if (check_region("parent", mem, pages, 1))
		return 1;
	for (size_t i = 0; i < pages; i++)
		fill((uint64_t *)(mem + i * PAGE), i, 2);
	pid = fork();
	if (pid < 0)
		return fail("shared", "fork", 0);
	if (pid == 0)
		_exit(check_region("child", mem, pages, 2));
	if (child_status(pid) != 0)
		return fail("shared", "checker child failed", 0);
	munmap(mem, pages * PAGE);
	say("shmtests: shared ok %zu pages\n", pages);
	return 0;
}

static int usage(void)
{
	say("usage: shmtests write|check|truncate PATH MIB SEED | shared MIB\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "shared") == 0) {
		size_t mib = strtoul(argv[2], NULL, 0);
		return mib ? do_shared(mib * 256) : usage();
	}
	if (argc != 5)
		return usage();
	size_t pages = strtoul(argv[3], NULL, 0) * 256;
	uint64_t seed = strtoull(argv[4], NULL, 0);
	if (!pages)
		return usage();
	if (strcmp(argv[1], "write") == 0)
		return do_write(argv[2], pages, seed);
	if (strcmp(argv[1], "check") == 0)
		return do_check(argv[2], pages, seed);
	if (strcmp(argv[1], "truncate") == 0)
		return do_truncate(argv[2], pages, seed);
	return usage();
}

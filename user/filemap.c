/*
 * filemap: run while the kernel takes our file pages away.
 *
 * A program's text and initialised data are pages of its file in the page
 * cache, mapped privately; so is a private mmap of a file.  The kernel may
 * drop such a page (clean, it comes back from the file) even while it is
 * mapped, by unmapping it from every address space first: the next touch
 * faults it in again.  A page a process has written is its own copy and
 * must never go.
 *
 * filemap reads its own program file into memory, maps the same file
 * privately and writes one byte of it (a private copy of that page), then
 * forks.  Parent and child each go round ROUNDS times: compare a page of
 * the mapping with the copy read (the whole of it in the first and last
 * round; the written byte must still be there), check a table in
 * initialised data, yield.  Run it while something drops page-cache
 * pages (tests/filemap.rs does, between rounds) and it must still see the
 * right bytes.  Exits 0 if both did.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 300
#define PAGE 4096
#define MARK 0x5a
#define PATTERN 0x0123456789abcdefull

/* Initialised data: file pages, only read. */
static unsigned long long table[2048] = {[0 ... 2047] = PATTERN};

/* Checks bytes [from, to) of the mapping, the written byte and the table. */
static int check(const unsigned char *map, const unsigned char *copy, size_t from, size_t to)
{
	if (map[PAGE] != MARK) {
		printf("filemap: the written byte is %#x\n", map[PAGE]);
		return 0;
	}
	for (size_t i = from; i < to; i++) {
		unsigned char want = i == PAGE ? MARK : copy[i];
		if (map[i] != want) {
			printf("filemap: byte %zu is %#x, not %#x\n", i, map[i], want);
			return 0;
		}
	}
	for (int i = 0; i < 2048; i++) {
		if (table[i] != PATTERN) {
			printf("filemap: table[%d] changed\n", i);
			return 0;
		}
	}
	return 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0); /* nothing buffered twice by fork */
	const char *path = argc > 1 ? argv[1] : "/bin/filemap";
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		printf("filemap: cannot open %s\n", path);
		return 1;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 2 * PAGE || lseek(fd, 0, SEEK_SET) != 0) {
		printf("filemap: %s too small or not seekable\n", path);
		return 1;
	}
	unsigned char *copy = malloc(size);
	size_t got = 0;
	while (copy && got < (size_t)size) {
		ssize_t n = read(fd, copy + got, size - got);
		if (n <= 0)
			break;
		got += n;
	}
	unsigned char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (got != (size_t)size || map == MAP_FAILED) {
		printf("filemap: read %zu of %lld bytes, or mmap failed\n", got, (long long)size);
		return 1;
	}
	map[PAGE] = MARK; /* this page is ours now: it must never go back */
	pid_t child = fork();
	if (child < 0) {
		printf("filemap: fork failed\n");
		return 1;
	}
	const char *who = child == 0 ? "child" : "parent";
	/* One page of the mapping a round (so the others lie idle for a while),
	 * the whole of it first and last. */
	size_t pages = (size + PAGE - 1) / PAGE;
	for (int round = 0; round <= ROUNDS; round++) {
		size_t page = round % pages;
		size_t from = page * PAGE, to = from + PAGE < (size_t)size ? from + PAGE : (size_t)size;
		if (round == 0 || round == ROUNDS)
			from = 0, to = size;
		if (!check(map, copy, from, to)) {
			printf("filemap: %s wrong in round %d\n", who, round);
			return 1;
		}
		sched_yield();
	}
	printf("filemap: %s ok after %d rounds over %lld bytes\n", who, ROUNDS, (long long)size);
	if (child == 0)
		return 0;
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("filemap: child failed\n");
		return 1;
	}
	return 0;
}

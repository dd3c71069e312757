/*
 * memhog: take memory and hold it, or fill memory and check it; for the
 * OOM killer's tests.
 *
 *   memhog hold MIB   map and touch MIB MiB, say so, then sleep forever
 *                     (blocked in nanosleep: the OOM killer's big victim)
 *   memhog fill MIB   map and write MIB MiB page by page, then check every
 *                     page still holds what was written; exit 0 if so
 *   memhog lock MIB   map MIB MiB and mlock it: the kernel faults every
 *                     page in inside the system call (its user-copy path,
 *                     where an OOM wait happens in the kernel); exit 0 if
 *                     that worked, 3 if mlock failed
 *
 * Output: "memhog: holding N MiB" / "memhog: filled N MiB, checked";
 * "memhog: mmap of N MiB failed: ..." (exit 2), "memhog: page N corrupted"
 * (exit 1), a usage line (exit 2).  If the kernel runs out of memory while
 * a page is touched, the process may be killed (SIGKILL) instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096ul

static unsigned char *map(long mib)
{
	size_t len = (size_t)mib << 20;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("memhog: mmap of %ld MiB failed: %s\n", mib, strerror(errno));
		exit(2);
	}
	return p;
}

/* What page i holds: a few bytes that differ from page to page. */
static unsigned long mark(size_t i)
{
	return i * 2654435761ul + 0x5eed;
}

int main(int argc, char **argv)
{
	long mib = argc == 3 ? atol(argv[2]) : 0;
	if (mib < 1 || (strcmp(argv[1], "hold") != 0 && strcmp(argv[1], "fill") != 0 &&
			strcmp(argv[1], "lock") != 0)) {
		printf("usage: memhog hold|fill|lock MIB\n");
		return 2;
	}
	unsigned char *p = map(mib);
	if (strcmp(argv[1], "lock") == 0) {
		if (mlock(p, (size_t)mib << 20) != 0) {
			printf("memhog: mlock of %ld MiB failed: %s\n", mib, strerror(errno));
			return 3;
		}
		printf("memhog: locked %ld MiB\n", mib);
		return 0;
	}
	size_t pages = ((size_t)mib << 20) / PAGE;
	for (size_t i = 0; i < pages; i++) {
		unsigned long m = mark(i);
		memcpy(p + i * PAGE, &m, sizeof m);
		memcpy(p + i * PAGE + PAGE - sizeof m, &m, sizeof m);
	}
	if (strcmp(argv[1], "hold") == 0) {
		printf("memhog: holding %ld MiB\n", mib);
		fflush(stdout);
		struct timespec second = {1, 0};
		for (;;)
			nanosleep(&second, NULL);
	}
	for (size_t i = 0; i < pages; i++) {
		unsigned long a, b;
		memcpy(&a, p + i * PAGE, sizeof a);
		memcpy(&b, p + i * PAGE + PAGE - sizeof b, sizeof b);
		if (a != mark(i) || b != mark(i)) {
			printf("memhog: page %zu corrupted\n", i);
			return 1;
		}
	}
	printf("memhog: filled %ld MiB, checked\n", mib);
	return 0;
}

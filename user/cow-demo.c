/*
 * cow-demo: watch copy-on-write happen.
 *
 * The parent maps 4 MiB (1024 pages) of private anonymous memory and
 * writes its own mark into every page.  Then it forks.  fork() does not
 * copy the 4 MiB: parent and child share the same physical pages, marked
 * read-only.  When the child writes to a page, it takes a page fault and
 * the kernel gives it a private copy of just that page.  So after the
 * child has written to half of the pages, the parent must still see its
 * own data in all 1024 pages.
 *
 * As a contrast, one page is mapped MAP_SHARED: there the child's write
 * is visible to the parent, because shared pages are never copied.
 *
 * Exits 0 if everything behaved as described, 1 otherwise.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define NPAGES 1024
#define PARENT_MARK 0x5041524e54000000ull /* "PARNT" */
#define CHILD_MARK 0x4348494c44000000ull  /* "CHILD" */

/* Each page holds its index and the owner's mark in every word. */
static void stamp(unsigned char *mem, int page, uint64_t mark)
{
	uint64_t *w = (uint64_t *)(void *)(mem + (size_t)page * PAGE);
	for (int i = 0; i < PAGE / 8; i++)
		w[i] = mark | (uint64_t)page;
}

static int holds(unsigned char *mem, int page, uint64_t mark)
{
	uint64_t *w = (uint64_t *)(void *)(mem + (size_t)page * PAGE);
	for (int i = 0; i < PAGE / 8; i++)
		if (w[i] != (mark | (uint64_t)page))
			return 0;
	return 1;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0); /* no buffered text duplicated by fork */

	unsigned char *mem = mmap(NULL, (size_t)NPAGES * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile uint64_t *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || shared == MAP_FAILED) {
		printf("cow-demo: mmap failed\n");
		return 1;
	}
	for (int p = 0; p < NPAGES; p++)
		stamp(mem, p, PARENT_MARK);
	*shared = PARENT_MARK;
	printf("cow-demo: parent %d filled %d pages (%d KiB) at %p with its own data\n",
	       (int)getpid(), NPAGES, NPAGES * PAGE / 1024, (void *)mem);

	double t0 = now_ms();
	pid_t pid = fork();
	if (pid < 0) {
		printf("cow-demo: fork failed\n");
		return 1;
	}
	if (pid == 0) {
		printf("cow-demo: child %d forked in %.2f ms: its pages are shared with the parent, read-only\n",
		       (int)getpid(), now_ms() - t0);
		int inherited = 0;
		for (int p = 0; p < NPAGES; p++)
			inherited += holds(mem, p, PARENT_MARK);
		printf("cow-demo: child sees the parent's data in %d of %d pages\n",
		       inherited, NPAGES);

		/* Write every other page: each first write is a COW fault. */
		double t1 = now_ms();
		int written = 0;
		for (int p = 0; p < NPAGES; p += 2, written++)
			stamp(mem, p, CHILD_MARK);
		double t2 = now_ms();
		/* Write them again: now the copies are the child's own, no faults. */
		for (int p = 0; p < NPAGES; p += 2)
			stamp(mem, p, CHILD_MARK);
		double t3 = now_ms();
		printf("cow-demo: child wrote %d pages: first write %.2f ms (copy-on-write faults), "
		       "second write %.2f ms (pages already private)\n",
		       written, t2 - t1, t3 - t2);

		int own = 0, parents = 0;
		for (int p = 0; p < NPAGES; p++) {
			if (p % 2 == 0)
				own += holds(mem, p, CHILD_MARK);
			else
				parents += holds(mem, p, PARENT_MARK);
		}
		printf("cow-demo: child sees its own data in %d pages and the parent's in %d pages\n",
		       own, parents);
		*shared = CHILD_MARK;
		printf("cow-demo: child also wrote into the MAP_SHARED page, then exits\n");
		_exit(own == written && parents == NPAGES - written ? 0 : 1);
	}

	int status;
	if (waitpid(pid, &status, 0) != pid) {
		printf("cow-demo: waitpid failed\n");
		return 1;
	}
	int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!child_ok)
		printf("cow-demo: the child saw wrong data (status 0x%x)\n", status);

	int still = 0;
	for (int p = 0; p < NPAGES; p++)
		still += holds(mem, p, PARENT_MARK);
	printf("cow-demo: parent: %d pages still hold the parent's data after the child wrote %d\n",
	       still, NPAGES / 2);
	int shared_ok = *shared == CHILD_MARK;
	printf("cow-demo: parent: the MAP_SHARED page %s\n",
	       shared_ok ? "shows the child's write (shared pages are not copied)"
			 : "does NOT show the child's write (wrong!)");

	if (child_ok && still == NPAGES && shared_ok) {
		printf("cow-demo: ok: private pages were copied on write, shared pages were not\n");
		return 0;
	}
	printf("cow-demo: FAILED\n");
	return 1;
}

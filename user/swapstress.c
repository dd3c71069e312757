/*
 * swapstress: touch more anonymous memory than the machine has, then check
 * every page. Each page carries its index, a per-run seed and a checksum
 * in a few words (the rest of the page repeats one word, so compressed
 * swap stores it small, yet never as a single "same-filled" word). Then fork:
 * parent and child rewrite alternate pages and each checks its own view,
 * so pages shared copy-on-write are swapped out and in on both sides.
 *
 *   swapstress MIB [PASSES]
 * Prints "swapstress: ok MIB MiB" and exits 0 when every check passes.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pagepattern.h"
#include "say.h"

static int verify(const char *who, char *mem, size_t pages, uint64_t seed_even, uint64_t seed_odd)
{
	for (size_t i = 0; i < pages; i++) {
		uint64_t seed = (i & 1) ? seed_odd : seed_even;
		if (!pattern_ok((const uint64_t *)(mem + i * PAGE), i, seed)) {
			say("swapstress: %s: page %zu of %zu is wrong\n", who, i, pages);
			return 0;
		}
	}
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		say("usage: swapstress MIB [PASSES]\n");
		return 2;
	}
	size_t mib = strtoul(argv[1], 0, 10);
	int passes = argc > 2 ? atoi(argv[2]) : 2;
	size_t pages = mib * 256;
	char *mem = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		say("swapstress: mmap of %zu MiB failed\n", mib);
		return 1;
	}
	for (size_t i = 0; i < pages; i++)
		fill((uint64_t *)(mem + i * PAGE), i, 1);
	for (int pass = 0; pass < passes; pass++)
		if (!verify("verify", mem, pages, 1, 1))
			return 1;
	pid_t pid = fork();
	if (pid < 0) {
		say("swapstress: fork failed\n");
		return 1;
	}
	/* Parent rewrites even pages (seed 2), child odd ones (seed 3). */
	int child = pid == 0;
	for (size_t i = child ? 1 : 0; i < pages; i += 2)
		fill((uint64_t *)(mem + i * PAGE), i, child ? 3 : 2);
	int ok = child ? verify("child", mem, pages, 1, 3) : verify("parent", mem, pages, 2, 1);
	if (child)
		_exit(ok ? 0 : 1);
	int status = 0;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		say("swapstress: child failed (status %#x)\n", status);
		return 1;
	}
	if (!ok || !verify("parent after child exit", mem, pages, 2, 1))
		return 1;
	say("swapstress: ok %zu MiB\n", mib);
	return 0;
}

/*
 * malloc-stress: hammer musl's malloc with a deterministic random mix of
 * malloc, calloc, realloc and free, and check every byte of every block.
 *
 * musl's allocator gets small and medium blocks from the brk heap and
 * from anonymous mmap groups, and gives each large block (> 128 KiB) its
 * own mmap; growing a large block uses mremap, freeing it uses munmap.
 * So this exercises brk, mmap, munmap and mremap in the kernel, plus
 * page faults on fresh memory.  Every block is filled with a pattern that
 * depends on the block's identity; if a page ever shows up with the wrong
 * contents (lost, shared by mistake, zeroed...) the check finds it.
 *
 * Prints "malloc-stress: ok N allocations" and exits 0, or exits 1 with a
 * message describing the corruption.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 256
#define ROUNDS 8000
#define LIVE_LIMIT (16u << 20) /* keep at most 16 MiB live */

struct slot {
	unsigned char *p;
	size_t size;
	uint64_t tag;
};

static struct slot slots[SLOTS];
static uint64_t rng_state = 0x243f6a8885a308d3ull; /* fixed seed */
static size_t live_bytes;
static unsigned long allocations, frees, reallocs, big_blocks;

/* xorshift64*: small, fast, deterministic. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void die(const char *what, struct slot *s, size_t off)
{
	printf("malloc-stress: FAILED: %s (block %p, size %zu, offset %zu)\n",
	       what, (void *)s->p, s->size, off);
	fflush(stdout);
	exit(1);
}

/*
 * The pattern is a sequence of 64-bit words, word w = tag ^ (w * golden),
 * stored little-endian; a byte's value is the matching byte of its word.
 * Blocks from malloc are 16-byte aligned, so whole words can be used.
 */
static uint64_t pattern_word(uint64_t tag, size_t w)
{
	return tag ^ (w * 0x9e3779b97f4a7c15ull);
}

static unsigned char pattern_byte(uint64_t tag, size_t i)
{
	return (unsigned char)(pattern_word(tag, i / 8) >> ((i % 8) * 8));
}

static void fill(struct slot *s, size_t from)
{
	size_t i = from;
	for (; i < s->size && i % 8; i++)
		s->p[i] = pattern_byte(s->tag, i);
	uint64_t *w = (uint64_t *)(void *)s->p;
	for (; i + 8 <= s->size; i += 8)
		w[i / 8] = pattern_word(s->tag, i / 8);
	for (; i < s->size; i++)
		s->p[i] = pattern_byte(s->tag, i);
}

static void check(struct slot *s, size_t upto, const char *when)
{
	const uint64_t *w = (const uint64_t *)(const void *)s->p;
	size_t i = 0;
	for (; i + 8 <= upto; i += 8)
		if (w[i / 8] != pattern_word(s->tag, i / 8))
			break;
	for (; i < upto; i++)
		if (s->p[i] != pattern_byte(s->tag, i))
			die(when, s, i);
}

/* Mostly small sizes, some medium, a few large (mmap'd by malloc). */
static size_t random_size(void)
{
	uint64_t r = rnd() % 1000;
	if (r < 700)
		return 1 + rnd() % 256;
	if (r < 950)
		return 257 + rnd() % 16384;
	if (r < 990)
		return 16384 + rnd() % (128 * 1024);
	big_blocks++;
	return 128 * 1024 + rnd() % (384 * 1024);
}

static void release(struct slot *s)
{
	check(s, s->size, "pattern damaged before free");
	free(s->p);
	live_bytes -= s->size;
	s->p = NULL;
	s->size = 0;
	frees++;
}

int main(void)
{
	for (int round = 0; round < ROUNDS; round++) {
		struct slot *s = &slots[rnd() % SLOTS];
		if (s->p) {
			if (rnd() % 3 == 0) {
				/* realloc: the old contents must survive the move */
				size_t nsize = random_size();
				if (live_bytes - s->size + nsize > LIVE_LIMIT) {
					release(s);
					continue;
				}
				check(s, s->size, "pattern damaged before realloc");
				unsigned char *np = realloc(s->p, nsize);
				if (!np) {
					printf("malloc-stress: FAILED: realloc(%zu) returned NULL\n",
					       nsize);
					return 1;
				}
				size_t keep = s->size < nsize ? s->size : nsize;
				live_bytes = live_bytes - s->size + nsize;
				s->p = np;
				s->size = nsize;
				check(s, keep, "realloc lost old contents");
				fill(s, keep);
				reallocs++;
			} else {
				release(s);
			}
			continue;
		}
		size_t size = random_size();
		if (live_bytes + size > LIVE_LIMIT)
			continue;
		int zeroed = rnd() % 8 == 0;
		s->p = zeroed ? calloc(1, size) : malloc(size);
		if (!s->p) {
			printf("malloc-stress: FAILED: %s(%zu) returned NULL\n",
			       zeroed ? "calloc" : "malloc", size);
			return 1;
		}
		s->size = size;
		s->tag = rnd() | 1;
		if (zeroed)
			for (size_t i = 0; i < size; i++)
				if (s->p[i])
					die("calloc memory not zero", s, i);
		fill(s, 0);
		live_bytes += size;
		allocations++;
	}
	/* Check and free everything that is left. */
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].p)
			release(&slots[i]);
	printf("malloc-stress: %lu mallocs, %lu reallocs, %lu frees, %lu large (mmap) blocks\n",
	       allocations, reallocs, frees, big_blocks);
	printf("malloc-stress: ok %lu allocations\n", allocations + reallocs);
	return 0;
}

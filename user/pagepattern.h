/*
 * pagepattern.h — the page contents swapstress and shmtests write and check:
 * a word per 64 derived from the page's index and a seed, a same-filled
 * word elsewhere (compressible, but not the zero or same-filled page zram
 * stores as one word), and the index and seed in words 1 and 2, so a page
 * that came back at the wrong place or from the wrong writer is caught.
 */
#ifndef PAGEPATTERN_H
#define PAGEPATTERN_H

#include <stdint.h>

#define PAGE 4096UL

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Writes page `index`'s pattern for `seed` into `p`. */
static void fill(uint64_t *p, uint64_t index, uint64_t seed)
{
	uint64_t v = mix(index ^ seed);
	for (unsigned i = 0; i < PAGE / 8; i++)
		p[i] = (i & 63) == 0 ? v + i : 0x5a5a5a5a5a5a5a5aULL;
	p[1] = index;
	p[2] = seed;
}

/* 1 if `p` holds page `index`'s pattern for `seed`, else 0. */
static int pattern_ok(const uint64_t *p, uint64_t index, uint64_t seed)
{
	uint64_t v = mix(index ^ seed);
	if (p[1] != index || p[2] != seed)
		return 0;
	for (unsigned i = 0; i < PAGE / 8; i++) {
		if (i == 1 || i == 2)
			continue;
		uint64_t want = (i & 63) == 0 ? v + i : 0x5a5a5a5a5a5a5a5aULL;
		if (p[i] != want)
			return 0;
	}
	return 1;
}

#endif

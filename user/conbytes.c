/*
 * conbytes: binary output through standard output. The console must pass
 * every byte through unchanged (tests/console.rs captures it in the kernel;
 * run-host-tests.sh compares it with cmp on Linux).
 *
 *   conbytes           the 256 byte values 0..255 in one write
 *   conbytes split     the same, one write per byte
 *   conbytes utf8      "<€>" with the euro sign's 3 bytes split over two
 *                      writes (1 + 2), then a newline: one character
 */
#include <string.h>
#include <unistd.h>

static int put(const void *p, size_t n)
{
	return write(1, p, n) == (ssize_t)n ? 0 : 1;
}

int main(int argc, char **argv)
{
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	if (argc < 2)
		return put(all, sizeof all);
	if (!strcmp(argv[1], "split")) {
		for (int i = 0; i < 256; i++)
			if (put(all + i, 1))
				return 1;
		return 0;
	}
	if (!strcmp(argv[1], "utf8")) {
		const char *euro = "\xe2\x82\xac";
		return put("<", 1) | put(euro, 1) | put(euro + 1, 2) | put(">\n", 2);
	}
	return 2;
}

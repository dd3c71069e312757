/*
 * cat: copy each FILE (or standard input, also for "-") to standard
 * output, like POSIX cat without options.  For the kernel shell's
 * redirections and pipelines: `run hello > /tmp/out`, `run cat /tmp/out`.
 * Errors go to standard error; exit status 1 if a file could not be
 * opened or read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


static int copy(int fd, const char *name)
{
	static char buf[16384];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			dprintf(2, "cat: %s: %s\n", name, strerror(errno));
			return 1;
		}
		if (r == 0)
			return 0;
		for (char *p = buf; r > 0;) {
			ssize_t w = write(1, p, (size_t)r);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return 1;
			p += w;
			r -= w;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return copy(0, "stdin");
	int status = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-") == 0) {
			status |= copy(0, "stdin");
			continue;
		}
		int fd = open(argv[i], O_RDONLY);
		if (fd < 0) {
			dprintf(2, "cat: %s: %s\n", argv[i], strerror(errno));
			status = 1;
			continue;
		}
		status |= copy(fd, argv[i]);
		close(fd);
	}
	return status;
}

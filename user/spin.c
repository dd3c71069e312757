/*
 * spin: burn CPU forever.
 *
 * Used to check that a process that never makes a system call cannot
 * freeze the kernel: the timer interrupt must still preempt it.
 * With an argument N (seconds) it stops after about N seconds instead,
 * which is handy for testing it on a normal Linux machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long counter;

int main(int argc, char **argv)
{
	if (argc < 2) {
		printf("spin: spinning forever\n");
		fflush(stdout);
		for (;;)
			counter++;
	}
	/* Bounded variant: look at the clock only every few million turns. */
	long seconds = atol(argv[1]);
	printf("spin: spinning for %ld s\n", seconds);
	fflush(stdout);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		for (int i = 0; i < (1 << 22); i++)
			counter++;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= seconds)
			break;
	}
	printf("spin: stopped after %ld s\n", seconds);
	return 0;
}

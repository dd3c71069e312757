/*
 * hello: the smallest Ferrite user program.
 *
 * It shows that the kernel loaded an ELF file, built a stack with argc,
 * argv, envp and the auxiliary vector, and that libc (musl) could start up
 * (TLS via arch_prctl, set_tid_address) and print through write/writev.
 * The same source is also linked as a static-PIE (hello-pie), which the
 * kernel must load at some base address and which relocates itself.
 */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	printf("hello from ferrite user space\n");
	printf("hello: pid %d, parent %d, main() at %p\n", (int)getpid(),
	       (int)getppid(), (void *)main);
	printf("hello: argc = %d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("hello: argv[%d] = \"%s\"\n", i, argv[i]);
	return 0;
}

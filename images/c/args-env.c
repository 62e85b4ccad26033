//! args-env: prints what the program was started with: `argc=N`, one `argv[i]=...` line per
//! argument (argv[0] included) and one `env: K=V` line per environment entry, then exits 0.
//! Built with glibc (`args-env-glibc`) and musl (`args-env-musl`) to compare both start-ups.

#include <stdio.h>

extern char **environ;

int main(int argc, char **argv)
{
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	for (char **e = environ; *e; e++)
		printf("env: %s\n", *e);
	return 0;
}

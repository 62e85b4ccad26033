//! hello: the smallest test program. Prints "hello, world", then each argument on a line of
//! its own, and exits 0. Built twice: `hello-musl` (static) and `hello-musl-pie` (static-pie).

#include <stdio.h>

int main(int argc, char **argv)
{
	puts("hello, world");
	for (int i = 1; i < argc; i++)
		puts(argv[i]);
	return 0;
}

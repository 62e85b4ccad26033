//! hello-big: "hello, world" from a 16 MiB image. The initialised array below is file
//! content the loader must bring in, so start-up time can be compared against the
//! 20 KiB `hello-musl` to see how it grows with image size. Only one page of it is read.

#include <stdio.h>

#define BLOB_BYTES (16 << 20)

/* Non-zero, so it lands in .data (bytes in the file), not .bss. */
static volatile char blob[BLOB_BYTES] = {1};

int main(int argc, char **argv)
{
	(void)argv;
	printf("hello, world %d\n", blob[argc]);
	return 0;
}

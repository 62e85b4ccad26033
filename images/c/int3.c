//! int3: executes the `int3` breakpoint instruction, so the program must die with SIGTRAP
//! (exit 133).

#include <stdio.h>

int main(void)
{
	__asm__ volatile("int3");
	puts("still alive after int3");
	return 0;
}

//! ud2: executes the `ud2` instruction, so the program must die with SIGILL (exit 132).

#include <stdio.h>

int main(void)
{
	__asm__ volatile("ud2");
	puts("still alive after ud2");
	return 0;
}

//! null-deref: stores to address 0, so the program must die with SIGSEGV (exit 139) and the
//! sandbox must report fault address 0x0. The pointer is read through a volatile so the
//! compiler can't see it is NULL and replace the store with a trap of its own, and the store is
//! volatile too so the compiler can't drop it as dead.

#include <stdio.h>

int main(void)
{
	int *volatile pointer = NULL;

	*(volatile int *)pointer = 42;
	puts("still alive after a NULL store");
	return 0;
}

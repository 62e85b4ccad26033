//! div-zero: divides an integer by zero read through a volatile, so the `idiv` really runs and
//! the program must die with SIGFPE (exit 136). The dividend is volatile too: knowing it, the
//! compiler would replace the division with comparisons.

#include <stdio.h>

int main(void)
{
	volatile int dividend = 42;
	volatile int zero = 0;
	volatile int quotient = dividend / zero;

	printf("still alive after dividing by zero: %d\n", quotient);
	return 0;
}

//! spin: loops forever without a syscall, for testing that `--timeout` ends a program that
//! never gives the kernel a chance to run.

int main(void)
{
	for (;;)
		__asm__ volatile("");
}

/* clock: reads the time every way a static program can, to show which ways need a syscall.
 *
 * clock_gettime, gettimeofday and time go through the vDSO that libc finds through
 * AT_SYSINFO_EHDR (no syscall); the legacy vsyscall entry points at 0xffffffffff600000 are
 * called directly, as very old static binaries do, and must be emulated by the kernel.
 * Prints "ok NAME" / "FAIL NAME: detail" lines; exits 1 on any failure. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <time.h>

static int failures;

static void check(int ok, const char *name, const char *detail)
{
	if (ok) {
		printf("ok %s\n", name);
	} else {
		printf("FAIL %s: %s\n", name, detail);
		failures++;
	}
}

static long long ns(struct timespec t)
{
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	struct timespec a, b, real;
	struct timeval tv;
	int monotonic = 1;

	check(getauxval(AT_SYSINFO_EHDR) != 0, "vdso-announced", "no AT_SYSINFO_EHDR");

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 10000; i++) {
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (ns(b) < ns(a))
			monotonic = 0;
		a = b;
	}
	check(monotonic, "monotonic-10000-reads", "went backwards");

	clock_gettime(CLOCK_REALTIME, &real);
	gettimeofday(&tv, NULL);
	long long diff = ns(real) / 1000 - (tv.tv_sec * 1000000LL + tv.tv_usec);
	check(diff > -100000 && diff < 100000, "gettimeofday-agrees", "differs from REALTIME");
	check(real.tv_sec > 1600000000, "realtime-plausible", "before 2020");
	check(time(NULL) - real.tv_sec <= 1, "time-agrees", "differs from REALTIME");

	if (argc > 1 && argv[1][0] == 'v') {
		/* The legacy vsyscall page (fixed addresses, Linux ABI). */
		long (*vgettimeofday)(struct timeval *, void *) = (void *)0xffffffffff600000UL;
		time_t (*vtime)(time_t *) = (void *)0xffffffffff600400UL;
		struct timeval legacy;
		time_t stored = 0;

		check(vgettimeofday(&legacy, NULL) == 0 && legacy.tv_sec - real.tv_sec <= 1,
		      "vsyscall-gettimeofday", "wrong result");
		time_t now = vtime(&stored);
		check(now == stored && now - real.tv_sec <= 1, "vsyscall-time", "wrong result");
	}
	printf("clock done: %d bad\n", failures);
	return failures ? 1 : 0;
}

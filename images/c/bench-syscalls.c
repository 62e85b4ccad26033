//! bench-syscalls: times one kind of system call in a loop, inside the program itself, so the
//! same binary can be timed natively, under bwrap, under qemu-user and in the sandbox with no
//! process start-up in the figure. The benchmark harness (`benches/`) runs it.
//!
//! Usage: bench-syscalls MODE MILLIS [PATH]
//!
//! It warms up for a tenth of MILLIS, then calls in batches of 64 until MILLIS have passed,
//! reading CLOCK_MONOTONIC (the vDSO where there is one) only between batches. It prints
//! `bench MODE calls=N ns=X` on stderr, where X is nanoseconds per call and N counts the timed
//! calls (stdout is left to the `write-stdout` mode).
//!
//! Modes:
//! - `getpid`: raw `syscall(SYS_getpid)`, so libc can't cache it.
//! - `clock`: `clock_gettime(CLOCK_MONOTONIC)` through libc (the vDSO, no syscall).
//! - `write-null`: a 1-byte `write` to `/dev/null`.
//! - `write-stdout`: a 1-byte `write` to fd 1 (in the sandbox this goes to the host).
//! - `fstat PATH`: `fstat` of an open file (in the sandbox, a host file: one ring request).
//! - `stat PATH`: `stat` of a path (in the sandbox, a path the host resolves each time).
//! - `idle`: prints `ready` on stdout, then reads stdin to its end; for memory snapshots.

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static int target_fd = -1;
static const char *target_path;

static long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void call_getpid(void)
{
	syscall(SYS_getpid);
}

static void call_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
}

static void call_write(void)
{
	if (write(target_fd, "x", 1) != 1)
		die("write");
}

static void call_fstat(void)
{
	struct stat st;
	if (fstat(target_fd, &st) != 0)
		die("fstat");
}

static void call_stat(void)
{
	struct stat st;
	if (stat(target_path, &st) != 0)
		die("stat");
}

/* Calls `call` in batches until `budget_ns` have passed; returns the number of calls. */
static long run_for(void (*call)(void), long budget_ns, long *elapsed_ns)
{
	long calls = 0;
	long start = now_ns();
	long now = start;
	while (now - start < budget_ns) {
		for (int i = 0; i < BATCH; i++)
			call();
		calls += BATCH;
		now = now_ns();
	}
	*elapsed_ns = now - start;
	return calls;
}

static int idle(void)
{
	char buffer[256];
	if (write(1, "ready\n", 6) != 6)
		die("write");
	while (read(0, buffer, sizeof buffer) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "idle") == 0)
		return idle();
	if (argc < 3) {
		fprintf(stderr, "usage: bench-syscalls MODE MILLIS [PATH]\n");
		return 2;
	}
	const char *mode = argv[1];
	long budget_ns = atol(argv[2]) * 1000000L;
	target_path = argc > 3 ? argv[3] : NULL;

	void (*call)(void);
	if (strcmp(mode, "getpid") == 0) {
		call = call_getpid;
	} else if (strcmp(mode, "clock") == 0) {
		call = call_clock;
	} else if (strcmp(mode, "write-null") == 0) {
		target_fd = open("/dev/null", O_WRONLY);
		if (target_fd < 0)
			die("open /dev/null");
		call = call_write;
	} else if (strcmp(mode, "write-stdout") == 0) {
		target_fd = 1;
		call = call_write;
	} else if (strcmp(mode, "fstat") == 0 && target_path) {
		target_fd = open(target_path, O_RDONLY);
		if (target_fd < 0)
			die("open");
		call = call_fstat;
	} else if (strcmp(mode, "stat") == 0 && target_path) {
		call = call_stat;
	} else {
		fprintf(stderr, "bench-syscalls: unknown mode or missing PATH: %s\n", mode);
		return 2;
	}

	long elapsed_ns;
	run_for(call, budget_ns / 10, &elapsed_ns);
	long calls = run_for(call, budget_ns, &elapsed_ns);
	fprintf(stderr, "bench %s calls=%ld ns=%.1f\n", mode, calls, (double)elapsed_ns / calls);
	return 0;
}

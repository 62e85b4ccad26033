//! wild-pointers: hands `write(1, ...)` and `read(0, ...)` pointers no kernel may trust (NULL,
//! 1, kernel-half addresses, a buffer running off the end of its mapping, read-only text as a
//! read buffer) through raw `syscall()`, prints one `case NAME: ret=R errno=E` line per call and
//! then "still alive". Every case must fail with EFAULT and leave the program running.
//!
//! The reference output is `wild-pointers.expected`, taken from a native Linux run with stdout
//! a pipe and "abc\n" piped on stdin: a read that faults on a pipe consumes nothing, so the last
//! case still reads all four bytes.

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Prints with write(2) so no stdio buffer reorders the lines around the raw calls. */
static void say(const char *text)
{
	size_t done = 0, len = strlen(text);

	while (done < len) {
		long n = write(1, text + done, len - done);
		if (n <= 0)
			_exit(2);
		done += (size_t)n;
	}
}

static const char *errno_name(int e)
{
	static char number[16];

	switch (e) {
	case EFAULT:
		return "EFAULT";
	case EBADF:
		return "EBADF";
	case EINVAL:
		return "EINVAL";
	}
	snprintf(number, sizeof(number), "%d", e);
	return number;
}

static void report(const char *name, long ret, int err)
{
	char line[128];

	if (ret < 0)
		snprintf(line, sizeof(line), "case %s: ret=%ld errno=%s\n", name, ret,
			 errno_name(err));
	else
		snprintf(line, sizeof(line), "case %s: ret=%ld\n", name, ret);
	say(line);
}

static void try_write(const char *name, const void *buffer, size_t len)
{
	errno = 0;
	long ret = syscall(SYS_write, 1, buffer, len);
	report(name, ret, errno);
}

static void try_read(const char *name, void *buffer, size_t len)
{
	errno = 0;
	long ret = syscall(SYS_read, 0, buffer, len);
	report(name, ret, errno);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);

	/* Two pages, the second unmapped again: the first page's end is the end of a mapping. */
	char *pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	if (pages == MAP_FAILED || munmap(pages + page, page) != 0) {
		say("mmap/munmap failed\n");
		return 1;
	}
	memset(pages, 'x', page);
	char *tail = pages + page;

	try_write("write-null", NULL, 16);
	try_write("write-one", (void *)1, 16);
	try_write("write-kernel-half", (void *)0xffff800000000000UL, 16);
	try_write("write-top", (void *)0xffffffffffffff00UL, 16);
	try_write("write-past-end", tail - 16, 64);
	try_write("write-unmapped", tail, 16);

	try_read("read-null", NULL, 16);
	try_read("read-one", (void *)1, 16);
	try_read("read-kernel-half", (void *)0xffff800000000000UL, 16);
	try_read("read-top", (void *)0xffffffffffffff00UL, 16);
	try_read("read-past-end", tail - 2, 64);
	try_read("read-unmapped", tail, 16);
	try_read("read-text", (void *)&main, 16);

	/* The faulting reads consumed nothing: the bytes are all still there. */
	char data[16] = {0};
	errno = 0;
	long got = syscall(SYS_read, 0, data, sizeof(data) - 1);
	report("read-valid", got, errno);
	if (got > 0) {
		for (long i = 0; i < got; i++)
			if (data[i] == '\n')
				data[i] = '|';
		say("read-valid data: ");
		say(data);
		say("\n");
	}

	say("still alive\n");
	return 0;
}

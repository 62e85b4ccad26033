/* read, write, pread64 and pwrite64 on a file in DIR, into and out of every kind of buffer a
 * program has: fresh and touched anonymous memory, read-only and inaccessible mappings, its own
 * code, memory whose protection changed after it was touched; and through fds that were
 * dup'd, closed, reused and replaced by dup2. Prints one line per call. */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wnonnull" /* NULL buffers are the point */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static void show(const char *what, long result) {
    if (result < 0)
        printf("%s: -1 %s\n", what, strerror(errno));
    else
        printf("%s: %ld\n", what, result);
    errno = 0;
}

static unsigned sum(const unsigned char *bytes, long len) {
    unsigned total = 0;
    for (long i = 0; i < len; i++)
        total = total * 31 + bytes[i];
    return total;
}

static char *map(int prot, size_t len) {
    char *at = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) {
        perror("mmap");
        _exit(2);
    }
    return at;
}

int main(int argc, char **argv) {
    if (argc != 2 || chdir(argv[1]) != 0) {
        fprintf(stderr, "usage: transfers DIR\n");
        return 2;
    }

    unsigned char pattern[2 * PAGE];
    for (int i = 0; i < (int)sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 7 + 3);
    int fd = open("data", O_RDWR | O_CREAT | O_TRUNC, 0644);
    show("write a pattern from the stack", write(fd, pattern, sizeof pattern));

    /* Buffers of every kind. */
    char *fresh = map(PROT_READ | PROT_WRITE, 4 * PAGE);
    lseek(fd, 0, SEEK_SET);
    long got = read(fd, fresh + 100, 2 * PAGE);
    show("read into fresh anonymous memory", got);
    printf("  same bytes: %s\n", got > 0 && memcmp(fresh + 100, pattern, got) == 0 ? "yes" : "no");
    show("read at the end of the file", read(fd, fresh, PAGE));

    char *read_only = map(PROT_READ, PAGE);
    show("pread into a read-only mapping", pread(fd, read_only, 16, 0));
    char *no_access = map(PROT_NONE, PAGE);
    show("pread into a PROT_NONE mapping", pread(fd, no_access, 16, 0));
    show("pread into its own code", pread(fd, (void *)main, 16, 0));
    show("pread into NULL", pread(fd, NULL, 16, 0));
    show("pread into the kernel half", pread(fd, (void *)0xffff800000000000UL, 16, 0));

    char *protected_later = map(PROT_READ | PROT_WRITE, PAGE);
    protected_later[0] = 1;
    mprotect(protected_later, PAGE, PROT_READ);
    show("pread into touched memory made read-only", pread(fd, protected_later, 16, 0));
    char *opened_later = map(PROT_READ, PAGE);
    show("read a read-only page", opened_later[0]);
    mprotect(opened_later, PAGE, PROT_READ | PROT_WRITE);
    got = pread(fd, opened_later, 16, 32);
    show("pread into a read-only page made writable", got);
    int same = got == 16 && memcmp(opened_later, pattern + 32, 16) == 0;
    printf("  same bytes: %s\n", same ? "yes" : "no");

    /* A buffer that runs from writable into read-only or inaccessible memory. */
    char *halves = map(PROT_READ | PROT_WRITE, 3 * PAGE);
    mprotect(halves + PAGE, PAGE, PROT_READ);
    mprotect(halves + 2 * PAGE, PAGE, PROT_NONE);
    show("pread running into a read-only page", pread(fd, halves + PAGE - 16, 32, 0));
    show("pwrite running into a PROT_NONE page", pwrite(fd, halves + 2 * PAGE - 16, 32, 4 * PAGE));
    show("pread starting in a read-only page", pread(fd, halves + 2 * PAGE - 16, 32, 0));
    ftruncate(fd, sizeof pattern);

    show("pwrite from a PROT_NONE mapping", pwrite(fd, no_access, 16, 0));
    show("pwrite from NULL", pwrite(fd, NULL, 16, 0));
    show("pwrite from a read-only mapping", pwrite(fd, read_only, 16, 3 * PAGE));
    show("pwrite from its own code", pwrite(fd, (void *)main, 16, 3 * PAGE + 16));
    show("pwrite at a negative offset", pwrite(fd, pattern, 16, -1));
    show("pread at a negative offset", pread(fd, fresh, 16, -1));
    show("read of 0 bytes from NULL", read(fd, NULL, 0));
    show("write of 0 bytes from NULL", write(fd, NULL, 0));
    struct stat status;
    fstat(fd, &status);
    show("size after the pwrites", status.st_size);
    got = pread(fd, fresh, 4 * PAGE, 0);
    show("pread of the whole file", got);
    printf("  checksum %08x\n", sum((unsigned char *)fresh, got));

    /* Access modes. */
    int read_only_fd = open("data", O_RDONLY);
    int write_only_fd = open("data", O_WRONLY);
    show("write to an O_RDONLY fd", write(read_only_fd, pattern, 4));
    show("read from an O_WRONLY fd", read(write_only_fd, fresh, 4));
    show("pwrite to an O_RDONLY fd", pwrite(read_only_fd, pattern, 4, 0));
    show("pread from an O_WRONLY fd", pread(write_only_fd, fresh, 4, 0));
    int path_fd = open("data", O_PATH);
    show("read from an O_PATH fd", read(path_fd, fresh, 4));
    int directory_fd = open(".", O_RDONLY | O_DIRECTORY);
    show("read from a directory", read(directory_fd, fresh, 4));

    /* dup shares the offset; close, reuse and dup2 change what an fd number means. */
    int copy = dup(read_only_fd);
    show("read 10 through the fd", read(read_only_fd, fresh, 10));
    show("read 10 through its dup", read(copy, fresh, 10));
    show("offset seen by the fd", lseek(read_only_fd, 0, SEEK_CUR));
    close(read_only_fd);
    show("read from the closed fd", read(read_only_fd, fresh, 4));
    show("write to the closed fd", write(read_only_fd, pattern, 4));
    int other = open("other", O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("the new file got the closed fd's number: %s\n", other == read_only_fd ? "yes" : "no");
    show("write to the new file", write(other, "other file\n", 11));
    memset(fresh, 0, 32);
    show("pread from the reused fd", pread(other, fresh, 32, 0));
    printf("  read: %s", fresh);
    show("dup2 the data file over it", dup2(fd, other));
    memset(fresh, 0, 32);
    show("pread through the replaced fd", pread(other, fresh, 4, 0));
    printf("  same bytes: %s\n", memcmp(fresh, pattern, 4) == 0 ? "yes" : "no");
    show("read through a high fd", pread(fcntl(fd, F_DUPFD, 200), fresh, 4, 0));

    /* Ranges Linux refuses before looking at memory, and fd numbers it reads as 32 bits. */
    show("pread of 2^62 bytes", pread(fd, fresh, 1UL << 62, 0));
    show("pread whose range wraps around", pread(fd, fresh, -(unsigned long)fresh + 10, 0));
    show("pwrite of 2^62 bytes", pwrite(fd, fresh, 1UL << 62, 0));
    show("read of 0 bytes into the kernel half", read(fd, (void *)0xffff800000000000UL, 0));
    show("write of 0 bytes from the kernel half", write(fd, (void *)0xffff800000000000UL, 0));
    show("pread through fd + 2^32", syscall(SYS_pread64, (1L << 32) + fd, fresh, 4, 0));

    /* A 4 MiB read and write through a buffer on scattered frames (a range per page). */
    size_t big = 6 << 20;
    char *scratch = map(PROT_READ | PROT_WRITE, big);
    memset(scratch, 'q', big);
    show("write 6 MiB", pwrite(fd, scratch, big, 0));
    munmap(scratch, big);
    char *scattered = map(PROT_READ | PROT_WRITE, big);
    for (size_t i = 0; i < big; i += PAGE)
        scattered[i] = 1;
    show("pread 4 MiB into scattered pages", pread(fd, scattered + 1, 4 << 20, 0));
    show("pwrite 4 MiB from scattered pages", pwrite(fd, scattered + 1, 4 << 20, 0));
    ftruncate(fd, 3 * PAGE + 32);

    /* stdio: stdin is /dev/null, stdout a pipe (both runs are given the same). */
    char *for_stdin = map(PROT_READ | PROT_WRITE, PAGE);
    show("read stdin into a fresh page at an offset", read(0, for_stdin + 100, 5));
    show("pwrite to stdout", pwrite(1, "x\n", 2, 0));
    show("write to stdin", write(0, "x", 1));
    fflush(stdout);

    /* /dev/null never looks at the buffer, only at its range; through a low and a high fd. */
    int null = open("/dev/null", O_RDWR);
    int high_null = fcntl(null, F_DUPFD, 100);
    show("write to /dev/null from NULL", write(null, NULL, 10));
    show("read from /dev/null into NULL", read(null, NULL, 10));
    show("write to /dev/null from the kernel half", write(null, (void *)0xffff800000000000UL, 10));
    show("write to a high /dev/null fd from NULL", write(high_null, NULL, 10));
    show("pread from a high /dev/null fd into NULL", pread(high_null, NULL, 10, 0));

    /* writev and readv on /dev/null check the ranges only. */
    struct iovec wild[2] = {{NULL, 10}, {(void *)1, 20}};
    show("writev to /dev/null from wild iovecs", writev(null, wild, 2));
    show("readv from /dev/null into wild iovecs", readv(null, wild, 2));

    /* fd arguments are 32 bits wide for dup2, fcntl, close_range and select too. */
    long high = 1L << 32;
    show("dup2 to fd 2^32 + 70", syscall(SYS_dup2, fd, high + 70));
    show("F_DUPFD from 2^32 + 80", syscall(SYS_fcntl, fd, F_DUPFD, high + 80));
    show("close_range 80 to 2^32 + 81", syscall(SYS_close_range, 80, high + 81, 0));
    show("fd 80 after it", fcntl(80, F_GETFD));
    show("close_range with CLOSE_RANGE_UNSHARE", syscall(SYS_close_range, 90, 95, 2));
    struct timeval no_wait = {0, 0};
    show("select with nfds 2^32 + 2", syscall(SYS_select, high + 2, NULL, NULL, NULL, &no_wait));

    /* sendfile from stdin (/dev/null in both runs) into a file: nothing to send. */
    int sink = open("sink", O_RDWR | O_CREAT | O_TRUNC, 0644);
    show("sendfile from stdin to a file", sendfile(sink, 0, NULL, 5));

    /* A /proc file read again from its start shows the state now. */
    int uptime = open("/proc/uptime", O_RDONLY);
    char first[64] = {0}, again[64] = {0};
    read(uptime, first, sizeof first - 1);
    struct timespec pause = {1, 100000000};
    nanosleep(&pause, NULL);
    lseek(uptime, 0, SEEK_SET);
    read(uptime, again, sizeof again - 1);
    printf("uptime advanced on a second read: %s\n", atof(again) > atof(first) ? "yes" : "no");

    /* O_APPEND writes go to the end, whatever the offset. */
    int append = open("data", O_WRONLY | O_APPEND);
    lseek(append, 0, SEEK_SET);
    show("write with O_APPEND", write(append, "tail", 4));
    fstat(fd, &status);
    show("size after the append", status.st_size);
    show("offset after the append", lseek(append, 0, SEEK_CUR));

    /* ...and fcntl(F_SETFL) turns appending on and off on an open fd. */
    int later = open("data", O_WRONLY);
    show("F_SETFL O_APPEND", fcntl(later, F_SETFL, O_APPEND));
    show("F_GETFL shows O_APPEND", (fcntl(later, F_GETFL) & O_APPEND) != 0);
    show("write once appending", write(later, "ab", 2));
    fstat(fd, &status);
    show("size after it", status.st_size);
    show("F_SETFL without O_APPEND", fcntl(later, F_SETFL, 0));
    lseek(later, 0, SEEK_SET);
    show("write at 0 again", write(later, "cd", 2));
    fstat(fd, &status);
    show("size after that", status.st_size);
    got = pread(fd, fresh, 2, 0);
    printf("  first bytes: %.2s\n", fresh);
    return 0;
}

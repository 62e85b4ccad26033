/* select, pselect and ppoll on stdin, stdout and a pipe: ready sets, a timeout that waits,
 * a bad fd, a bad timespec. Prints one line per call; run with a line on stdin. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

int main(void) {
    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_SET(0, &readable);
    struct timeval five_seconds = {5, 0};
    int n = select(1, &readable, NULL, NULL, &five_seconds);
    printf("waiting for stdin: %d\n", n);

    FD_ZERO(&readable);
    FD_ZERO(&writable);
    FD_SET(0, &readable);
    FD_SET(1, &writable);
    struct timeval one_second = {1, 0};
    n = select(2, &readable, &writable, NULL, &one_second);
    printf("stdin and stdout: %d, stdin %d, stdout %d\n", n, FD_ISSET(0, &readable),
           FD_ISSET(1, &writable));

    int pipe_fds[2];
    pipe(pipe_fds);
    FD_ZERO(&readable);
    FD_SET(pipe_fds[0], &readable);
    struct timeval fifth = {0, 200000};
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    n = select(pipe_fds[0] + 1, &readable, NULL, NULL, &fifth);
    printf("empty pipe: %d, set %d, waited 0.2 s: %s\n", n, FD_ISSET(pipe_fds[0], &readable),
           seconds_since(&start) >= 0.2 ? "yes" : "no");

    write(pipe_fds[1], "x", 1);
    FD_ZERO(&readable);
    FD_SET(pipe_fds[0], &readable);
    n = select(pipe_fds[0] + 1, &readable, NULL, NULL, NULL);
    printf("pipe with a byte: %d, set %d\n", n, FD_ISSET(pipe_fds[0], &readable));

    /* Below 64 on purpose: Linux ignores set bits at or above the size of the fd table,
     * which starts at 64 and grows only if a high fd was ever open, so natively the answer
     * for a higher fd depends on what the caller left open. */
    close(40);
    FD_ZERO(&readable);
    FD_SET(40, &readable);
    errno = 0;
    n = select(41, &readable, NULL, NULL, &fifth);
    printf("fd 40, not open: %d %s\n", n, strerror(errno));

    struct pollfd entry = {pipe_fds[0], POLLIN, 0};
    struct timespec millisecond = {0, 1000000};
    n = ppoll(&entry, 1, &millisecond, NULL);
    printf("ppoll: %d, revents %d\n", n, entry.revents);

    struct timespec bad = {0, -1};
    FD_ZERO(&readable);
    FD_SET(pipe_fds[0], &readable);
    errno = 0;
    n = pselect(pipe_fds[0] + 1, &readable, NULL, NULL, &bad, NULL);
    printf("pselect, negative timespec: %d %s\n", n, strerror(errno));
    n = pselect(pipe_fds[0] + 1, &readable, NULL, NULL, &millisecond, NULL);
    printf("pselect: %d\n", n);
    return 0;
}

/* writev of UIO_MAXIOV (1024) one-byte iovecs, none adjacent to the next, to stdout; then
 * readv of a short stdin into 1024 one-byte iovecs. Prints both counts on stderr. Linux
 * writes all 1024 bytes in one call. */
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    static char bytes[2 * 1024];
    static struct iovec iov[1024];
    for (int i = 0; i < 1024; i++) {
        bytes[2 * i] = (char)('a' + i % 26);
        iov[i].iov_base = &bytes[2 * i];
        iov[i].iov_len = 1;
    }
    ssize_t written = writev(1, iov, 1024);
    ssize_t read = readv(0, iov, 1024);
    fprintf(stderr, "writev: %zd, readv: %zd\n", written, read);
    return 0;
}

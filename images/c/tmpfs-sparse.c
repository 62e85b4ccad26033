/* Writes one byte far into a /tmp file: at 1 MiB, at 2 GiB and at 2^50. Prints what each
 * pwrite returned and the file's size afterwards. The guest's tmpfs bounds a file's offsets
 * by its size limit (EFBIG past it); what matters is that none of this panics the kernel. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    int fd = open("/tmp/sparse", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    const long long offsets[] = {1LL << 20, 2LL << 30, 1LL << 50};
    for (unsigned i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        errno = 0;
        ssize_t written = pwrite(fd, "x", 1, offsets[i]);
        struct stat st;
        fstat(fd, &st);
        printf("pwrite at %lld: %zd %s, size %lld\n", offsets[i], written,
               written < 0 ? strerror(errno) : "ok", (long long)st.st_size);
    }
    char byte = 0;
    ssize_t got = pread(fd, &byte, 1, 1 << 20);
    printf("read back at 1 MiB: %zd '%c'\n", got, byte);
    return 0;
}

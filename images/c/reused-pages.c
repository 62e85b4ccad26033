/* Buffers on frames the kernel reuses (freed by munmap, handed out again in another order)
 * written to a /tmp file and to a pipe, then read back: the bytes must arrive intact however
 * the buffer's pages lie in guest-physical memory. Prints one line per check. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (64 * 1024)

static char *filled_mapping(char seed) {
    char *buffer = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < SIZE; i++)
        buffer[i] = (char)(seed + i * 7 + i / 4096);
    return buffer;
}

int main(void) {
    char *first = filled_mapping(1);
    munmap(first, SIZE);
    char *second = filled_mapping(2);
    static char back[SIZE];

    int fd = open("/tmp/reused", O_RDWR | O_CREAT | O_TRUNC, 0600);
    ssize_t written = write(fd, second, SIZE);
    ssize_t read_back = pread(fd, back, SIZE, 0);
    printf("tmpfs: wrote %zd, read %zd, same %s\n", written, read_back,
           memcmp(second, back, SIZE) == 0 ? "yes" : "no");

    int pipe_fds[2];
    pipe(pipe_fds);
    written = write(pipe_fds[1], second + 100, 8192);
    memset(back, 0, sizeof back);
    read_back = read(pipe_fds[0], back, 8192);
    printf("pipe: wrote %zd, read %zd, same %s\n", written, read_back,
           memcmp(second + 100, back, 8192) == 0 ? "yes" : "no");
    return 0;
}

// Opens /dev/null until the kernel refuses, then says what RLIMIT_NOFILE is, how many fds it
// got and the errno that stopped it: EMFILE once the fd limit (--max-fds) is reached.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int main(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        perror("getrlimit");
        return 1;
    }
    printf("RLIMIT_NOFILE %llu %llu\n", (unsigned long long)limit.rlim_cur,
           (unsigned long long)limit.rlim_max);
    int opened = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            printf("opened %d, then %s\n", opened, errno == EMFILE ? "EMFILE" : strerror(errno));
            return 0;
        }
        opened++;
    }
}

/* Calls syscalls the guest kernel does not implement, some twice, and prints what each
 * returned. The sandbox must answer ENOSYS every time and log each number once, by name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void call(const char *name, long number) {
    errno = 0;
    long result = syscall(number, 0, 0, 0, 0, 0, 0);
    printf("%s: %ld %s\n", name, result, errno == ENOSYS ? "ENOSYS" : strerror(errno));
}

int main(void) {
    call("socket", SYS_socket);
    call("shmget", SYS_shmget);
    call("socket again", SYS_socket);
    call("ptrace", SYS_ptrace);
    call("number 1000", 1000);
    call("shmget again", SYS_shmget);
    return 0;
}

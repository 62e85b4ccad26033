/* Address-space reservations larger than the guest's memory, as Go's and the JVM's heaps
 * start: PROT_NONE and MAP_NORESERVE mappings of 1 and 64 GiB, a few pages of each made
 * writable and used. Prints one line per step. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static void reserve(const char *what, unsigned long long bytes, int prot, int flags) {
    char *base = mmap(NULL, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (base == MAP_FAILED) {
        printf("%s: %s\n", what, strerror(errno));
        return;
    }
    int made_writable = 0;
    if (prot == PROT_NONE) {
        made_writable |= mprotect(base, 1 << 20, PROT_READ | PROT_WRITE);
        made_writable |= mprotect(base + bytes - 4096, 4096, PROT_READ | PROT_WRITE);
    }
    memset(base, 'x', 1 << 20);
    base[bytes - 1] = 'y';
    char first = base[0], last = base[bytes - 1];
    int unmapped = munmap(base, bytes);
    printf("%s: mapped, mprotect %d, first %c, last %c, unmap %d\n", what, made_writable, first,
           last, unmapped);
}

int main(void) {
    reserve("PROT_NONE 1 GiB", 1ULL << 30, PROT_NONE, 0);
    reserve("PROT_NONE 64 GiB", 64ULL << 30, PROT_NONE, 0);
    reserve("MAP_NORESERVE 1 GiB", 1ULL << 30, PROT_READ | PROT_WRITE, MAP_NORESERVE);
    return 0;
}

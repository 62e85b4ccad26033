/* Many small anonymous mappings side by side, then mprotect, munmap and mremap across
 * them: the kernel may keep them as one mapping (Linux merges neighbours), but every page
 * must keep its contents and its protection. Prints one line per check. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 64
#define PAGE 4096

int main(void) {
    /* Reserve a range, free it, and map it back one page at a time from the top. */
    char *base = mmap(NULL, PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(base, PAGES * PAGE);
    for (int i = PAGES - 1; i >= 0; i--) {
        char *page = mmap(base + i * PAGE, PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (page != base + i * PAGE) {
            printf("mmap of page %d failed\n", i);
            return 1;
        }
        memset(page, 'a' + i % 26, PAGE);
    }
    int good = 1;
    for (int i = 0; i < PAGES; i++)
        good &= base[i * PAGE + 100] == 'a' + i % 26;
    printf("pages keep their contents: %s\n", good ? "yes" : "no");

    printf("mprotect RO page 10: %d\n", mprotect(base + 10 * PAGE, PAGE, PROT_READ));
    int again = mprotect(base + 10 * PAGE, PAGE, PROT_READ | PROT_WRITE);
    printf("mprotect RW page 10 again: %d\n", again);
    base[10 * PAGE] = 'Z';
    printf("page 10 writable again: %c\n", base[10 * PAGE]);

    printf("munmap pages 20-29: %d\n", munmap(base + 20 * PAGE, 10 * PAGE));
    printf("page 19 and 30 intact: %c %c\n", base[19 * PAGE], base[30 * PAGE]);

    char *grown = mremap(base + 30 * PAGE, 34 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    printf("mremap grow: %s\n", grown == MAP_FAILED ? "failed" : "ok");
    if (grown != MAP_FAILED) {
        good = 1;
        for (int i = 0; i < 34; i++)
            good &= grown[i * PAGE + 7] == 'a' + (30 + i) % 26;
        printf("moved pages keep their contents: %s, new tail reads %d\n", good ? "yes" : "no",
               grown[63 * PAGE]);
    }
    printf("munmap the rest: %d %d\n", munmap(base, 20 * PAGE),
           grown == MAP_FAILED ? -1 : munmap(grown, 64 * PAGE));
    return 0;
}

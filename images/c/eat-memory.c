// Allocates and touches memory 1 MiB at a time until malloc fails, then says how far it got.
// In a sandbox with little guest memory, the kernel must refuse the allocation (ENOMEM) or
// end the program like Linux's OOM killer (SIGKILL), never panic.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    size_t chunk = (argc > 1 ? strtoul(argv[1], NULL, 0) : 1) << 20;
    size_t total = 0;
    for (;;) {
        char *p = malloc(chunk);
        if (!p) {
            printf("malloc failed after %zu MiB\n", total >> 20);
            return 0;
        }
        memset(p, 1, chunk);
        total += chunk;
    }
}

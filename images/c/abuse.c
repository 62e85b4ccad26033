// Attacks on the kernel under it: bad pointers, absurd lengths, bad fds, memory requests at
// and beyond the kernel's addresses, privileged instructions, unknown syscalls. Linux answers
// each with an errno or a signal; the sandbox must give the same answer and stay up.
//
// Usage: abuse            runs the cases that return, one line each ("name: result")
//        abuse list       names the cases that end the program with a signal
//        abuse CASE       runs one of those
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define KERNEL_DIRECT ((void *)0xffff888000000000ULL)
#define KERNEL_TEXT ((void *)0xffffffff80200000ULL)
#define NON_CANONICAL 0x8000000000000000ULL
#define UNMAPPED ((void *)0x0000100000000000ULL)

static int cases;

static const char *errname(long e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case ESPIPE: return "ESPIPE";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    default: return "E?";
    }
}

// A raw syscall, so libc checks nothing on the way.
static long raw(long n, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void show(const char *label, long ret) {
    cases++;
    if (ret < 0 && ret > -4096)
        printf("%s: %s\n", label, errname(-ret));
    else
        printf("%s: ok\n", label);
}

#define SYS(label, n, ...) show(label, raw(n, __VA_ARGS__))

static void errno_cases(void) {
    char buf[64];
    int p[2];
    pipe(p);
    write(p[1], "data", 4);

    // Pointers: NULL, the kernel half, unmapped, and wrapping around.
    SYS("write NULL", SYS_write, 1, 0, 10, 0, 0, 0);
    SYS("write kernel pointer", SYS_write, 1, (long)KERNEL_DIRECT, 10, 0, 0, 0);
    SYS("write kernel text", SYS_write, 1, (long)KERNEL_TEXT, 10, 0, 0, 0);
    SYS("write unmapped", SYS_write, 1, (long)UNMAPPED, 10, 0, 0, 0);
    SYS("write non-canonical", SYS_write, 1, (long)NON_CANONICAL, 10, 0, 0, 0);
    SYS("read into NULL", SYS_read, p[0], 0, 4, 0, 0, 0);
    SYS("read into the kernel", SYS_read, p[0], (long)KERNEL_DIRECT, 4, 0, 0, 0);
    SYS("read into read-only memory", SYS_read, p[0], (long)"constant", 4, 0, 0, 0);
    SYS("fstat into NULL", SYS_fstat, 1, 0, 0, 0, 0, 0);
    SYS("fstat into the kernel", SYS_fstat, 1, (long)KERNEL_DIRECT, 0, 0, 0, 0);
    SYS("open NULL", SYS_open, 0, O_RDONLY, 0, 0, 0, 0);
    SYS("open kernel path", SYS_open, (long)KERNEL_DIRECT, O_RDONLY, 0, 0, 0, 0);
    SYS("uname into NULL", SYS_uname, 0, 0, 0, 0, 0, 0);
    SYS("uname into the kernel", SYS_uname, (long)KERNEL_TEXT, 0, 0, 0, 0, 0);
    SYS("clock_gettime into NULL", SYS_clock_gettime, CLOCK_MONOTONIC, 0, 0, 0, 0, 0);
    SYS("gettimeofday into the kernel", SYS_gettimeofday, (long)KERNEL_DIRECT, 0, 0, 0, 0, 0);
    SYS("getrandom into NULL", SYS_getrandom, 0, 16, 0, 0, 0, 0);
    SYS("getcwd into NULL", SYS_getcwd, 0, 100, 0, 0, 0, 0);
    SYS("pipe into NULL", SYS_pipe, 0, 0, 0, 0, 0, 0);
    SYS("pipe into the kernel", SYS_pipe, (long)KERNEL_DIRECT, 0, 0, 0, 0, 0);
    SYS("poll NULL", SYS_poll, 0, 1, 0, 0, 0, 0);
    SYS("nanosleep NULL", SYS_nanosleep, 0, 0, 0, 0, 0, 0);
    SYS("futex wait on NULL", SYS_futex, 0, 0, 0, 0, 0, 0);
    SYS("sched_getaffinity into NULL", SYS_sched_getaffinity, 0, 8, 0, 0, 0, 0);
    SYS("getrlimit into NULL", SYS_getrlimit, RLIMIT_NOFILE, 0, 0, 0, 0, 0);
    SYS("rt_sigaction from the kernel", SYS_rt_sigaction, SIGUSR1, (long)KERNEL_DIRECT, 0, 8,
        0, 0);
    SYS("readv of NULL iovecs", SYS_readv, p[0], 0, 1, 0, 0, 0);
    struct iovec wild = {KERNEL_DIRECT, 8};
    SYS("writev of a kernel buffer", SYS_writev, 1, (long)&wild, 1, 0, 0, 0);

    // Lengths: 0, 1 and 2^63.
    SYS("write 0 bytes", SYS_write, 1, (long)buf, 0, 0, 0, 0);
    SYS("write 0 bytes from NULL", SYS_write, 1, 0, 0, 0, 0, 0);
    SYS("read 1 byte", SYS_read, p[0], (long)buf, 1, 0, 0, 0);
    SYS("write 2^63 bytes", SYS_write, 1, (long)buf, 1L << 62 << 1, 0, 0, 0);
    SYS("read 2^63 bytes", SYS_read, p[0], (long)buf, 1L << 62 << 1, 0, 0, 0);
    SYS("readv 1025 iovecs", SYS_readv, p[0], (long)&wild, 1025, 0, 0, 0);
    SYS("readv -1 iovecs", SYS_readv, p[0], (long)&wild, -1, 0, 0, 0);
    SYS("poll 2^20 fds", SYS_poll, (long)buf, 1 << 20, 0, 0, 0, 0);
    SYS("getcwd size 0", SYS_getcwd, (long)buf, 0, 0, 0, 0, 0);
    SYS("getrandom bad flags", SYS_getrandom, (long)buf, 16, 0xff, 0, 0, 0);
    SYS("sched_getaffinity size 0", SYS_sched_getaffinity, 0, 0, (long)buf, 0, 0, 0);

    // File descriptors: negative, huge, closed.
    SYS("write fd -1", SYS_write, -1, (long)buf, 1, 0, 0, 0);
    SYS("write fd 2^31-1", SYS_write, 0x7fffffff, (long)buf, 1, 0, 0, 0);
    SYS("close fd -1", SYS_close, -1, 0, 0, 0, 0, 0);
    SYS("close fd 4096", SYS_close, 4096, 0, 0, 0, 0, 0);
    SYS("fstat fd -100", SYS_fstat, -100, (long)buf, 0, 0, 0, 0);
    SYS("dup2 to -1", SYS_dup2, 1, -1, 0, 0, 0, 0);
    SYS("dup2 to 2^20", SYS_dup2, 1, 1 << 20, 0, 0, 0, 0);
    SYS("fcntl F_DUPFD 2^20", SYS_fcntl, 1, F_DUPFD, 1 << 20, 0, 0, 0);
    SYS("fcntl unknown command", SYS_fcntl, 1, 9999, 0, 0, 0, 0);
    SYS("lseek a pipe", SYS_lseek, p[0], 0, SEEK_SET, 0, 0, 0);
    SYS("ioctl unknown request", SYS_ioctl, p[0], 0xdeadbeef, 0, 0, 0, 0);

    // Memory: huge sizes, kernel addresses, the heap's edges.
    SYS("mmap length 0", SYS_mmap, 0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SYS("mmap 2^63 bytes", SYS_mmap, 0, 1L << 62 << 1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
        -1, 0);
    SYS("mmap 64 TiB", SYS_mmap, 0, 1L << 46, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SYS("mmap fixed at the kernel", SYS_mmap, (long)KERNEL_DIRECT, 4096, PROT_READ,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    // (A fixed mapping at page 0 is EPERM for a user but allowed to root: not compared.)
    long hinted = raw(SYS_mmap, (long)KERNEL_DIRECT, 4096, PROT_READ,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cases++;
    printf("mmap hinted at the kernel lands in user space: %d\n",
           hinted > 0 && (unsigned long)hinted < 0x800000000000UL);
    SYS("mmap bad flags", SYS_mmap, 0, 4096, PROT_READ, MAP_ANONYMOUS, -1, 0);
    SYS("mmap bad prot", SYS_mmap, 0, 4096, 0x100, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    SYS("mprotect the kernel", SYS_mprotect, (long)KERNEL_TEXT, 4096, PROT_READ | PROT_WRITE,
        0, 0, 0);
    SYS("mprotect unaligned", SYS_mprotect, (long)buf | 1, 4096, PROT_READ, 0, 0, 0);
    SYS("munmap the kernel", SYS_munmap, (long)KERNEL_DIRECT, 4096, 0, 0, 0, 0);
    SYS("munmap length 0", SYS_munmap, (long)UNMAPPED, 0, 0, 0, 0, 0);
    SYS("munmap unaligned", SYS_munmap, 1, 4096, 0, 0, 0, 0);
    SYS("mremap unaligned", SYS_mremap, 1, 4096, 8192, 0, 0, 0);
    SYS("mremap unmapped", SYS_mremap, (long)UNMAPPED, 4096, 8192, MREMAP_MAYMOVE, 0, 0);
    long start = raw(SYS_brk, 0, 0, 0, 0, 0, 0);
    cases += 3;
    printf("brk below its start refused: %d\n", raw(SYS_brk, 4096, 0, 0, 0, 0, 0) == start);
    printf("brk into the kernel refused: %d\n",
           raw(SYS_brk, (long)KERNEL_DIRECT, 0, 0, 0, 0, 0) == start);
    printf("brk past memory refused: %d\n",
           raw(SYS_brk, 0x7ffffffff000L, 0, 0, 0, 0, 0) == start);

    // The thread pointer.
    SYS("arch_prctl FS non-canonical", SYS_arch_prctl, 0x1002, (long)NON_CANONICAL, 0, 0, 0, 0);
    SYS("arch_prctl FS in the kernel", SYS_arch_prctl, 0x1002, (long)KERNEL_DIRECT, 0, 0, 0, 0);
    SYS("arch_prctl GS in the kernel", SYS_arch_prctl, 0x1001, (long)KERNEL_TEXT, 0, 0, 0, 0);
    SYS("arch_prctl unknown code", SYS_arch_prctl, 0x9999, 0, 0, 0, 0, 0);
    SYS("arch_prctl get FS into NULL", SYS_arch_prctl, 0x1003, 0, 0, 0, 0, 0);

    // Signals and time with bad values.
    SYS("rt_sigaction SIGKILL", SYS_rt_sigaction, SIGKILL, (long)buf, 0, 8, 0, 0);
    SYS("rt_sigaction signal 65", SYS_rt_sigaction, 65, 0, 0, 8, 0, 0);
    SYS("rt_sigaction sigsetsize 4", SYS_rt_sigaction, SIGUSR1, 0, 0, 4, 0, 0);
    SYS("rt_sigprocmask bad how", SYS_rt_sigprocmask, 99, (long)buf, 0, 8, 0, 0);
    SYS("clock_gettime bad clock", SYS_clock_gettime, 99, (long)buf, 0, 0, 0, 0);
    struct timespec negative = {-1, 0}, too_many_ns = {0, 2000000000};
    SYS("nanosleep negative", SYS_nanosleep, (long)&negative, 0, 0, 0, 0, 0);
    SYS("nanosleep 2e9 ns", SYS_nanosleep, (long)&too_many_ns, 0, 0, 0, 0, 0);
    SYS("futex unknown op", SYS_futex, (long)buf, 99, 0, 0, 0, 0);
    SYS("prlimit64 unknown resource", SYS_prlimit64, 0, 99, 0, (long)buf, 0, 0);
    SYS("prlimit64 no such pid", SYS_prlimit64, 0x7ffffffe, RLIMIT_NOFILE, 0, (long)buf, 0, 0);

    // Syscall numbers that don't exist.
    SYS("syscall 1000", 1000, 0, 0, 0, 0, 0, 0);
    SYS("syscall -1", -1, 0, 0, 0, 0, 0, 0);
    SYS("syscall 2^32", 1L << 32, 0, 0, 0, 0, 0, 0);
    SYS("syscall 511", 511, 0, 0, 0, 0, 0, 0);

    // A syscall made with the stack pointer aimed at the kernel still returns.
    long pid;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "movabs $0xffff888000001000, %%rsp\n\t"
                     "mov $39, %%eax\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp"
                     : "=a"(pid)
                     :
                     : "rcx", "r11", "r12", "memory");
    cases++;
    printf("syscall with a kernel stack pointer returns: %d\n", pid > 0);

    printf("cases: %d\n", cases);
}

// Cases that end the program with a signal.
#pragma GCC diagnostic ignored "-Winfinite-recursion"
static void deep(int n) {
    volatile char pad[4096];
    pad[0] = (char)n;
    deep(n + 1);
    (void)pad[0];
}

typedef void (*fn)(void);

static void write_own_code(void) { *(volatile char *)(void *)write_own_code = 0; }
static void read_kernel(void) { (void)*(volatile long *)KERNEL_DIRECT; }
static void write_kernel(void) { *(volatile long *)KERNEL_TEXT = 0; }
static void jump_kernel(void) { ((fn)KERNEL_TEXT)(); }
static void jump_non_canonical(void) { ((fn)NON_CANONICAL)(); }
static void jump_top_page(void) { ((fn)0xffffffffff000000ULL)(); }
static void read_vsyscall(void) { (void)*(volatile long *)0xffffffffff600000ULL; }
static void stack_overflow(void) { deep(0); }
static void halt(void) { __asm__ volatile("hlt"); }
static void cli(void) { __asm__ volatile("cli"); }
static void doorbell(void) { __asm__ volatile("outb %%al, %%dx" ::"a"(0), "d"(0x510)); }
static void port_in(void) { __asm__ volatile("inb %%dx, %%al" ::"d"(0x510) : "rax"); }
static void rdmsr(void) { __asm__ volatile("rdmsr" ::"c"(0xc0000080) : "rax", "rdx"); }
static void read_cr3(void) { long v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); }
static void lidt(void) { char idt[10] = {0}; __asm__ volatile("lidt %0" ::"m"(idt)); }
static void divide_overflow(void) {
    volatile long a = INT64_MIN, b = -1;
    a = a / b;
}
static void execute_stack(void) {
    unsigned char code[] = {0xc3};
    ((fn)(void *)code)();
}
static void write_read_only(void) { *(volatile char *)"literal" = 'x'; }
static void ud2(void) { __asm__ volatile("ud2"); }
static void int3(void) { __asm__ volatile("int3"); }
static void int81(void) { __asm__ volatile("int $0x81"); }
static void int_ff(void) { __asm__ volatile("int $0xff"); }
static void fs_at_null_use(void) {
    raw(SYS_arch_prctl, 0x1002, 0, 0, 0, 0, 0);
    __asm__ volatile("mov %%fs:0, %%rax" ::: "rax");
}

static const struct {
    const char *name;
    fn run;
} fatal[] = {
    {"write-own-code", write_own_code},
    {"read-kernel", read_kernel},
    {"write-kernel", write_kernel},
    {"jump-kernel", jump_kernel},
    {"jump-non-canonical", jump_non_canonical},
    {"jump-top-page", jump_top_page},
    {"read-vsyscall", read_vsyscall},
    {"stack-overflow", stack_overflow},
    {"hlt", halt},
    {"cli", cli},
    {"doorbell", doorbell},
    {"port-in", port_in},
    {"rdmsr", rdmsr},
    {"read-cr3", read_cr3},
    {"lidt", lidt},
    {"divide-overflow", divide_overflow},
    {"execute-stack", execute_stack},
    {"write-read-only", write_read_only},
    {"ud2", ud2},
    {"int3", int3},
    {"int-0x81", int81},
    {"int-0xff", int_ff},
    {"fs-at-null", fs_at_null_use},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc == 1) {
        errno_cases();
        return 0;
    }
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        if (strcmp(argv[1], "list") == 0) {
            printf("%s\n", fatal[i].name);
        } else if (strcmp(argv[1], fatal[i].name) == 0) {
            fatal[i].run();
            printf("%s: survived\n", fatal[i].name);
            return 0;
        }
    }
    return strcmp(argv[1], "list") == 0 ? 0 : 2;
}

//! syscalls: checks, one by one, the system calls a library kernel answers without the host
//! (memory, time, identity, signals bookkeeping, randomness, limits) against what Linux does.
//! Every call goes through a raw `syscall` instruction, so libc can't hide or emulate anything;
//! a few also go through libc where libc takes another path (the vDSO clocks). Prints one
//! "ok NAME" or "FAIL NAME: detail" line per check and "syscalls done: N ok, M bad" at the end;
//! exits 1 if any check failed. It passes on native Linux, which is the reference.
//!
//! `--expect-cwd PATH` makes the getcwd check demand exactly PATH (the sandbox's cwd is "/");
//! without it any absolute path passes.

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define RSEQ_SIG 0x53053053
#define RSEQ_FLAG_UNREGISTER 1
#define PAGE 4096L
#define MS 1000000L
#define SEC 1000000000L

/* Linux's struct sigaction for rt_sigaction (not libc's, whose layout differs). */
struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

struct rlimit64_raw {
	uint64_t cur, max;
};

struct rseq_area {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t padding[3];
} __attribute__((aligned(32)));

static long sc6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* SC(nr, args...): a raw syscall; returns the result or -errno, like the kernel does. */
#define SC_PICK(n, a, b, c, d, e, f, ...)                                                      \
	sc6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define SC(...) SC_PICK(__VA_ARGS__, 0, 0, 0, 0, 0, 0, 0)

static int passed, failed;

static void ok(const char *name)
{
	printf("ok %s\n", name);
	passed++;
}

static void fail(const char *name, const char *condition, const char *format, ...)
{
	va_list args;

	printf("FAIL %s: expected %s", name, condition);
	if (*format)
		printf(" ");
	va_start(args, format);
	vprintf(format, args);
	va_end(args);
	printf("\n");
	failed++;
}

/* Fails NAME with the condition's text and returns from the check when COND is false. */
#define EXPECT(name, cond, ...)                                                                \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fail(name, #cond, "" __VA_ARGS__);                                     \
			return;                                                                \
		}                                                                              \
	} while (0)

static long map_anon(long addr, long len, long flags)
{
	return SC(SYS_mmap, addr, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
}

static int is_error(long ret)
{
	return ret < 0 && ret > -4096;
}

static int all_bytes(const char *p, long len, char value)
{
	for (long i = 0; i < len; i++)
		if (p[i] != value)
			return 0;
	return 1;
}

static int64_t now_ns(int clock)
{
	struct timespec ts;

	if (SC(SYS_clock_gettime, clock, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ---- memory ------------------------------------------------------------------------------ */

static void check_mmap_anon(const char *name, long flags)
{
	long len = 3 * PAGE;
	long ret = map_anon(0, len, flags);
	EXPECT(name, !is_error(ret), "(mmap returned %ld)", ret);
	EXPECT(name, ret % PAGE == 0, "(address %#lx)", ret);

	char *p = (char *)ret;
	EXPECT(name, all_bytes(p, len, 0), "(fresh anonymous memory is zero)");
	for (long i = 0; i < len; i++)
		p[i] = (char)(i * 7 + 3);
	for (long i = 0; i < len; i++)
		EXPECT(name, p[i] == (char)(i * 7 + 3), "(byte %ld reads back)", i);

	long unmapped = SC(SYS_munmap, p, len);
	EXPECT(name, unmapped == 0, "(munmap returned %ld)", unmapped);
	ok(name);
}

static void check_mmap_hint(void)
{
	const char *name = "mmap-hint";
	long hint = 0x200000000000L;
	long ret = map_anon(hint, 2 * PAGE, MAP_PRIVATE);
	EXPECT(name, !is_error(ret), "(mmap returned %ld)", ret);
	EXPECT(name, ret % PAGE == 0, "(address %#lx)", ret);

	char *p = (char *)ret;
	p[0] = 1;
	p[2 * PAGE - 1] = 2;
	EXPECT(name, p[0] == 1 && p[2 * PAGE - 1] == 2);
	EXPECT(name, SC(SYS_munmap, p, 2 * PAGE) == 0);
	ok(name);
}

static void check_mmap_fixed(void)
{
	const char *name = "mmap-fixed";
	long ret = map_anon(0, 4 * PAGE, MAP_PRIVATE);
	EXPECT(name, !is_error(ret), "(reserving mmap returned %ld)", ret);
	char *p = (char *)ret;
	memset(p, 'r', 4 * PAGE);

	long fixed = map_anon((long)(p + PAGE), 2 * PAGE, MAP_PRIVATE | MAP_FIXED);
	EXPECT(name, fixed == (long)(p + PAGE), "(got %#lx, asked %p)", fixed, p + PAGE);
	EXPECT(name, all_bytes(p + PAGE, 2 * PAGE, 0), "(MAP_FIXED replaced the pages)");
	EXPECT(name, all_bytes(p, PAGE, 'r') && all_bytes(p + 3 * PAGE, PAGE, 'r'),
	       "(neighbouring pages kept)");

	long misaligned = map_anon((long)(p + 1), PAGE, MAP_PRIVATE | MAP_FIXED);
	EXPECT(name, misaligned == -EINVAL, "(misaligned MAP_FIXED gave %ld)", misaligned);
	EXPECT(name, SC(SYS_munmap, p, 4 * PAGE) == 0);
	ok(name);
}

static void check_mmap_bad_args(void)
{
	const char *name = "mmap-bad-args";
	long zero = map_anon(0, 0, MAP_PRIVATE);
	EXPECT(name, zero == -EINVAL, "(length 0 gave %ld)", zero);
	long neither = SC(SYS_mmap, 0, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0);
	EXPECT(name, neither == -EINVAL, "(neither private nor shared gave %ld)", neither);
	long unaligned = SC(SYS_munmap, 1, PAGE);
	EXPECT(name, unaligned == -EINVAL, "(munmap of a misaligned address gave %ld)", unaligned);
	ok(name);
}

static void check_munmap(void)
{
	const char *name = "munmap";
	long ret = map_anon(0, 2 * PAGE, MAP_PRIVATE);
	EXPECT(name, !is_error(ret), "(mmap returned %ld)", ret);
	char *p = (char *)ret;
	memset(p, 'm', 2 * PAGE);

	long unmapped = SC(SYS_munmap, p + PAGE, PAGE);
	EXPECT(name, unmapped == 0, "(munmap returned %ld)", unmapped);
	/* mprotect of a range with a hole fails with ENOMEM: the page is really gone. */
	long probe = SC(SYS_mprotect, p + PAGE, PAGE, PROT_READ);
	EXPECT(name, probe == -ENOMEM, "(mprotect of the unmapped page gave %ld)", probe);
	EXPECT(name, all_bytes(p, PAGE, 'm'), "(the first page kept its bytes)");
	EXPECT(name, SC(SYS_munmap, p, PAGE) == 0);
	ok(name);
}

static void check_mprotect(void)
{
	const char *name = "mprotect";
	long ret = map_anon(0, PAGE, MAP_PRIVATE);
	EXPECT(name, !is_error(ret), "(mmap returned %ld)", ret);
	volatile char *p = (volatile char *)ret;
	p[10] = 'a';

	long ro = SC(SYS_mprotect, p, PAGE, PROT_READ);
	EXPECT(name, ro == 0, "(PROT_READ gave %ld)", ro);
	EXPECT(name, p[10] == 'a', "(readable while read-only)");
	long rw = SC(SYS_mprotect, p, PAGE, PROT_READ | PROT_WRITE);
	EXPECT(name, rw == 0, "(PROT_READ|PROT_WRITE gave %ld)", rw);
	p[10] = 'b';
	EXPECT(name, p[10] == 'b', "(writable again)");
	EXPECT(name, SC(SYS_munmap, p, PAGE) == 0);
	ok(name);
}

static void check_mremap(void)
{
	const char *name = "mremap-grow";
	long ret = map_anon(0, 2 * PAGE, MAP_PRIVATE);
	EXPECT(name, !is_error(ret), "(mmap returned %ld)", ret);
	char *p = (char *)ret;
	for (long i = 0; i < 2 * PAGE; i++)
		p[i] = (char)(i % 251);

	long grown = SC(SYS_mremap, p, 2 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
	EXPECT(name, !is_error(grown), "(mremap returned %ld)", grown);
	char *q = (char *)grown;
	for (long i = 0; i < 2 * PAGE; i++)
		EXPECT(name, q[i] == (char)(i % 251), "(byte %ld kept)", i);
	EXPECT(name, all_bytes(q + 2 * PAGE, 6 * PAGE, 0), "(the new pages are zero)");
	memset(q + 2 * PAGE, 'g', 6 * PAGE);
	ok(name);

	name = "mremap-shrink";
	long shrunk = SC(SYS_mremap, q, 8 * PAGE, PAGE, 0);
	EXPECT(name, shrunk == (long)q, "(mremap returned %#lx, not %p)", shrunk, q);
	EXPECT(name, q[0] == 0 && q[PAGE - 1] == (char)((PAGE - 1) % 251), "(contents kept)");
	long probe = SC(SYS_mprotect, q + PAGE, 7 * PAGE, PROT_READ);
	EXPECT(name, probe == -ENOMEM, "(the cut pages are unmapped, mprotect gave %ld)", probe);
	EXPECT(name, SC(SYS_munmap, q, PAGE) == 0);
	ok(name);
}

static void check_madvise(void)
{
	const char *name = "madvise-dontneed";
	long ret = map_anon(0, 2 * PAGE, MAP_PRIVATE);
	EXPECT(name, !is_error(ret), "(mmap returned %ld)", ret);
	char *p = (char *)ret;
	memset(p, 0x5a, 2 * PAGE);

	long advised = SC(SYS_madvise, p, PAGE, MADV_DONTNEED);
	EXPECT(name, advised == 0, "(madvise returned %ld)", advised);
	EXPECT(name, all_bytes(p, PAGE, 0), "(the page reads as zero)");
	EXPECT(name, all_bytes(p + PAGE, PAGE, 0x5a), "(the next page is untouched)");
	EXPECT(name, SC(SYS_munmap, p, 2 * PAGE) == 0);
	ok(name);
}

static void check_brk(void)
{
	const char *name = "brk";
	long start = SC(SYS_brk, 0);
	EXPECT(name, start > 0, "(query returned %ld)", start);

	long grown = SC(SYS_brk, start + 64 * 1024);
	EXPECT(name, grown == start + 64 * 1024, "(grow returned %#lx from %#lx)", grown, start);
	char *heap = (char *)start;
	memset(heap, 'h', 64 * 1024);
	EXPECT(name, heap[64 * 1024 - 1] == 'h');

	long again = SC(SYS_brk, 0);
	EXPECT(name, again == grown, "(query after grow returned %#lx)", again);
	long shrunk = SC(SYS_brk, start);
	EXPECT(name, shrunk == start, "(shrink returned %#lx, not %#lx)", shrunk, start);
	ok(name);
}

/* ---- process ----------------------------------------------------------------------------- */

/* The start of a thread control block: musl's self pointer and stack canary (at 0x28) lie in
 * the first 64 bytes, and copying more might read past the end of the real one. */
static unsigned long fake_tcb[8] __attribute__((aligned(64)));

/* Runs with FS pointing at a copy of the thread block, using no libc in between, and puts FS
 * back before returning: libc keeps errno and the stack canary behind FS. */
static __attribute__((noinline)) void check_arch_prctl(void)
{
	const char *name = "arch-prctl-fs";
	unsigned long old = 0, seen = 0, through_fs = 0, after = 0;

	long get = SC(SYS_arch_prctl, ARCH_GET_FS, &old);
	EXPECT(name, get == 0 && old != 0, "(ARCH_GET_FS gave %ld, fs %#lx)", get, old);

	memcpy(fake_tcb, (void *)old, sizeof(fake_tcb));
	fake_tcb[0] = (unsigned long)fake_tcb;
	long set = SC(SYS_arch_prctl, ARCH_SET_FS, fake_tcb);
	long got = SC(SYS_arch_prctl, ARCH_GET_FS, &seen);
	__asm__ volatile("mov %%fs:0, %0" : "=r"(through_fs));
	long restore = SC(SYS_arch_prctl, ARCH_SET_FS, old);
	long final = SC(SYS_arch_prctl, ARCH_GET_FS, &after);

	EXPECT(name, set == 0 && got == 0, "(set %ld, get %ld)", set, got);
	EXPECT(name, seen == (unsigned long)fake_tcb, "(read back %#lx)", seen);
	EXPECT(name, through_fs == (unsigned long)fake_tcb, "(%%fs:0 read %#lx)", through_fs);
	EXPECT(name, restore == 0 && final == 0 && after == old, "(restored fs %#lx)", after);
	ok(name);
}

static int tid_slot;

static void check_ids(void)
{
	const char *name = "getpid-gettid";
	long pid = SC(SYS_getpid), tid = SC(SYS_gettid), ppid = SC(SYS_getppid);
	EXPECT(name, pid > 0 && tid > 0, "(pid %ld tid %ld)", pid, tid);
	EXPECT(name, tid == pid, "(the main thread's tid %ld is the pid %ld)", tid, pid);
	EXPECT(name, ppid >= 0, "(ppid %ld)", ppid);
	ok(name);

	name = "set-tid-address";
	long ret = SC(SYS_set_tid_address, &tid_slot);
	EXPECT(name, ret == tid, "(returned %ld, gettid %ld)", ret, tid);
	ok(name);

	name = "uid-gid";
	long uid = SC(SYS_getuid), euid = SC(SYS_geteuid);
	long gid = SC(SYS_getgid), egid = SC(SYS_getegid);
	EXPECT(name, uid >= 0 && euid >= 0 && gid >= 0 && egid >= 0,
	       "(uid %ld euid %ld gid %ld egid %ld)", uid, euid, gid, egid);
	ok(name);
}

static void check_uname(void)
{
	const char *name = "uname";
	struct utsname u;
	memset(&u, 0x7f, sizeof(u));
	long ret = SC(SYS_uname, &u);
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	EXPECT(name, strcmp(u.sysname, "Linux") == 0, "(sysname \"%.20s\")", u.sysname);
	EXPECT(name, strcmp(u.machine, "x86_64") == 0, "(machine \"%.20s\")", u.machine);
	EXPECT(name, memchr(u.release, 0, sizeof(u.release)) != NULL, "(release terminated)");
	ok(name);
}

static void check_sysinfo(void)
{
	const char *name = "sysinfo";
	struct sysinfo info;
	memset(&info, 0, sizeof(info));
	long ret = SC(SYS_sysinfo, &info);
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	EXPECT(name, info.totalram > 0 && info.mem_unit > 0, "(totalram %lu unit %u)",
	       (unsigned long)info.totalram, info.mem_unit);
	EXPECT(name, info.freeram <= info.totalram);
	EXPECT(name, (long)info.uptime >= 0, "(uptime %ld)", (long)info.uptime);
	ok(name);
}

static void check_limits(void)
{
	const char *name = "prlimit64-stack";
	struct rlimit64_raw lim = {0, 0};
	long ret = SC(SYS_prlimit64, 0, RLIMIT_STACK, NULL, &lim);
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	EXPECT(name, lim.cur > 0 && lim.cur <= lim.max, "(cur %#llx max %#llx)",
	       (unsigned long long)lim.cur, (unsigned long long)lim.max);
	ok(name);

	name = "getrlimit-nofile";
	struct rlimit64_raw files = {0, 0};
	ret = SC(SYS_getrlimit, RLIMIT_NOFILE, &files);
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	EXPECT(name, files.cur >= 3 && files.cur <= files.max, "(cur %llu max %llu)",
	       (unsigned long long)files.cur, (unsigned long long)files.max);
	ok(name);
}

static void check_cwd(const char *expected)
{
	const char *name = "getcwd";
	char buffer[4096];
	memset(buffer, 0x7f, sizeof(buffer));
	long ret = SC(SYS_getcwd, buffer, sizeof(buffer));
	EXPECT(name, ret > 0, "(returned %ld)", ret);
	EXPECT(name, buffer[0] == '/', "(\"%.40s\" is absolute)", buffer);
	EXPECT(name, (size_t)ret == strlen(buffer) + 1, "(returned %ld for \"%s\")", ret, buffer);
	if (expected)
		EXPECT(name, strcmp(buffer, expected) == 0, "(\"%s\", not \"%s\")", buffer,
		       expected);
	long tiny = SC(SYS_getcwd, buffer, 1);
	EXPECT(name, tiny == -ERANGE, "(a 1-byte buffer gave %ld)", tiny);
	ok(name);
}

/* ---- time -------------------------------------------------------------------------------- */

static void check_clocks(void)
{
	const char *name = "clock-realtime";
	struct timespec ts;
	long ret = SC(SYS_clock_gettime, CLOCK_REALTIME, &ts);
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	EXPECT(name, ts.tv_sec > 1577836800L, "(%ld is after 2020)", (long)ts.tv_sec);
	EXPECT(name, ts.tv_nsec >= 0 && ts.tv_nsec < SEC, "(tv_nsec %ld)", ts.tv_nsec);
	ok(name);

	name = "clock-monotonic";
	int64_t last = now_ns(CLOCK_MONOTONIC);
	EXPECT(name, last >= 0, "(clock_gettime failed)");
	for (int i = 0; i < 1000; i++) {
		int64_t now = now_ns(CLOCK_MONOTONIC);
		EXPECT(name, now >= last, "(went back from %lld to %lld at call %d)",
		       (long long)last, (long long)now, i);
		last = now;
	}
	ok(name);

	/* libc reads these clocks through the vDSO when there is one: another path entirely. */
	name = "clock-monotonic-vdso";
	struct timespec a, b;
	EXPECT(name, clock_gettime(CLOCK_MONOTONIC, &a) == 0);
	for (int i = 0; i < 1000; i++) {
		EXPECT(name, clock_gettime(CLOCK_MONOTONIC, &b) == 0);
		EXPECT(name, b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec),
		       "(went back at call %d)", i);
		a = b;
	}
	int64_t raw = now_ns(CLOCK_MONOTONIC);
	EXPECT(name, raw >= (int64_t)a.tv_sec * SEC + a.tv_nsec, "(the syscall clock is behind)");
	EXPECT(name, clock_gettime(CLOCK_REALTIME, &b) == 0 && b.tv_sec > 1577836800L);
	ok(name);

	name = "gettimeofday";
	struct timeval tv;
	ret = SC(SYS_gettimeofday, &tv, NULL);
	int64_t real = now_ns(CLOCK_REALTIME) / SEC;
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	EXPECT(name, tv.tv_usec >= 0 && tv.tv_usec < 1000000, "(tv_usec %ld)", (long)tv.tv_usec);
	EXPECT(name, tv.tv_sec <= real && tv.tv_sec + 5 >= real, "(%ld vs realtime %lld)",
	       (long)tv.tv_sec, (long long)real);
	ok(name);

	name = "time";
	long stored = 0;
	long t = SC(SYS_time, &stored);
	real = now_ns(CLOCK_REALTIME) / SEC;
	EXPECT(name, t == stored, "(returned %ld, stored %ld)", t, stored);
	EXPECT(name, t <= real && t + 5 >= real, "(%ld vs realtime %lld)", t, (long long)real);
	EXPECT(name, SC(SYS_time, NULL) >= t);
	ok(name);

	name = "clock-getres";
	clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC};
	for (int i = 0; i < 2; i++) {
		struct timespec res = {-1, -1};
		ret = SC(SYS_clock_getres, clocks[i], &res);
		EXPECT(name, ret == 0, "(clock %d returned %ld)", clocks[i], ret);
		EXPECT(name, res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 10 * MS,
		       "(clock %d resolution %ld.%09ld)", clocks[i], (long)res.tv_sec,
		       res.tv_nsec);
	}
	ok(name);
}

static void check_sleeps(void)
{
	const char *name = "nanosleep";
	struct timespec twenty = {0, 20 * MS};
	int64_t before = now_ns(CLOCK_MONOTONIC);
	long ret = SC(SYS_nanosleep, &twenty, NULL);
	int64_t slept = now_ns(CLOCK_MONOTONIC) - before;
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	EXPECT(name, slept >= 20 * MS && slept < 5 * SEC, "(slept %lld ns)", (long long)slept);
	ok(name);

	name = "clock-nanosleep";
	struct timespec ten = {0, 10 * MS};
	before = now_ns(CLOCK_MONOTONIC);
	ret = SC(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ten, NULL);
	slept = now_ns(CLOCK_MONOTONIC) - before;
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	EXPECT(name, slept >= 10 * MS && slept < 5 * SEC, "(slept %lld ns)", (long long)slept);
	struct timespec bad = {0, SEC};
	ret = SC(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &bad, NULL);
	EXPECT(name, ret == -EINVAL, "(tv_nsec of 1e9 gave %ld)", ret);
	ok(name);
}

/* ---- randomness, signals, scheduling ----------------------------------------------------- */

static void check_getrandom(void)
{
	const char *name = "getrandom";
	unsigned char first[32], second[32];
	memset(first, 0, sizeof(first));
	memset(second, 0, sizeof(second));
	long a = SC(SYS_getrandom, first, sizeof(first), 0);
	long b = SC(SYS_getrandom, second, sizeof(second), 0);
	EXPECT(name, a == 32 && b == 32, "(returned %ld and %ld)", a, b);
	EXPECT(name, !all_bytes((char *)first, 32, 0), "(32 random bytes are not all zero)");
	EXPECT(name, memcmp(first, second, 32) != 0, "(two calls give different bytes)");
	ok(name);
}

static void check_signals(void)
{
	const char *name = "rt-sigaction";
	struct kernel_sigaction old, ignore, now;
	memset(&old, 0, sizeof(old));
	memset(&now, 0, sizeof(now));
	memset(&ignore, 0, sizeof(ignore));
	ignore.handler = SIG_IGN;

	long ret = SC(SYS_rt_sigaction, SIGUSR2, NULL, &old, 8);
	EXPECT(name, ret == 0, "(query returned %ld)", ret);
	ret = SC(SYS_rt_sigaction, SIGUSR2, &ignore, NULL, 8);
	EXPECT(name, ret == 0, "(setting SIG_IGN returned %ld)", ret);
	ret = SC(SYS_rt_sigaction, SIGUSR2, NULL, &now, 8);
	EXPECT(name, ret == 0 && now.handler == SIG_IGN, "(read back gave %ld)", ret);
	ret = SC(SYS_rt_sigaction, SIGUSR2, &old, NULL, 8);
	EXPECT(name, ret == 0, "(restoring returned %ld)", ret);
	ret = SC(SYS_rt_sigaction, SIGKILL, &ignore, NULL, 8);
	EXPECT(name, ret == -EINVAL, "(changing SIGKILL gave %ld)", ret);
	ok(name);

	name = "rt-sigprocmask";
	uint64_t usr1 = 1ULL << (SIGUSR1 - 1), saved = 0, current = 0;
	ret = SC(SYS_rt_sigprocmask, SIG_BLOCK, &usr1, &saved, 8);
	EXPECT(name, ret == 0, "(SIG_BLOCK returned %ld)", ret);
	ret = SC(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &current, 8);
	EXPECT(name, ret == 0 && (current & usr1), "(mask %#llx)", (unsigned long long)current);
	ret = SC(SYS_rt_sigprocmask, SIG_SETMASK, &saved, NULL, 8);
	EXPECT(name, ret == 0, "(SIG_SETMASK returned %ld)", ret);
	ret = SC(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &current, 8);
	EXPECT(name, ret == 0 && current == saved, "(mask %#llx)", (unsigned long long)current);
	ok(name);

	name = "sigaltstack";
	static char alt[64 * 1024];
	stack_t ss = {.ss_sp = alt, .ss_flags = 0, .ss_size = sizeof(alt)}, back;
	memset(&back, 0, sizeof(back));
	ret = SC(SYS_sigaltstack, &ss, NULL);
	EXPECT(name, ret == 0, "(setting returned %ld)", ret);
	ret = SC(SYS_sigaltstack, NULL, &back);
	EXPECT(name, ret == 0 && back.ss_sp == alt && back.ss_size == sizeof(alt),
	       "(read back %ld: %p size %zu)", ret, back.ss_sp, back.ss_size);
	stack_t off = {.ss_sp = NULL, .ss_flags = SS_DISABLE, .ss_size = 0};
	ret = SC(SYS_sigaltstack, &off, NULL);
	EXPECT(name, ret == 0, "(disabling returned %ld)", ret);
	ret = SC(SYS_sigaltstack, NULL, &back);
	EXPECT(name, ret == 0 && (back.ss_flags & SS_DISABLE), "(flags %d)", back.ss_flags);
	ok(name);
}

static void check_sched(void)
{
	const char *name = "sched-yield";
	long ret = SC(SYS_sched_yield);
	EXPECT(name, ret == 0, "(returned %ld)", ret);
	ok(name);

	name = "sched-getaffinity";
	unsigned long mask[16];
	memset(mask, 0, sizeof(mask));
	ret = SC(SYS_sched_getaffinity, 0, sizeof(mask), mask);
	EXPECT(name, ret > 0 && ret <= (long)sizeof(mask) && ret % 8 == 0, "(returned %ld)", ret);
	int cpus = 0;
	for (long i = 0; i < ret / 8; i++)
		for (unsigned long bits = mask[i]; bits; bits &= bits - 1)
			cpus++;
	EXPECT(name, cpus >= 1, "(%d CPUs)", cpus);
	ok(name);
}

static struct rseq_area rseq_area;

static void check_unknown(void)
{
	const char *name = "enosys-1000";
	long ret = SC(1000);
	EXPECT(name, ret == -ENOSYS, "(returned %ld)", ret);
	ok(name);

	name = "enosys-minus-1";
	ret = SC(-1L);
	EXPECT(name, ret == -ENOSYS, "(returned %ld)", ret);
	ok(name);

	/* Registering rseq is optional for a kernel; when it accepts, it must also let go. */
	name = "rseq";
	ret = SC(SYS_rseq, &rseq_area, sizeof(rseq_area), 0, RSEQ_SIG);
	EXPECT(name, ret == 0 || ret == -ENOSYS, "(registering returned %ld)", ret);
	if (ret == 0) {
		ret = SC(SYS_rseq, &rseq_area, sizeof(rseq_area), RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
		EXPECT(name, ret == 0, "(unregistering returned %ld)", ret);
	}
	ok(name);
}

int main(int argc, char **argv)
{
	const char *expected_cwd = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--expect-cwd") == 0 && i + 1 < argc) {
			expected_cwd = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--expect-cwd PATH]\n", argv[0]);
			return 2;
		}
	}
	/* One line at a time, so a crash still shows every check that ran before it. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	check_mmap_anon("mmap-private-anon", MAP_PRIVATE);
	check_mmap_anon("mmap-shared-anon", MAP_SHARED);
	check_mmap_hint();
	check_mmap_fixed();
	check_mmap_bad_args();
	check_munmap();
	check_mprotect();
	check_mremap();
	check_madvise();
	check_brk();
	check_arch_prctl();
	check_ids();
	check_uname();
	check_sysinfo();
	check_limits();
	check_cwd(expected_cwd);
	check_clocks();
	check_sleeps();
	check_getrandom();
	check_signals();
	check_sched();
	check_unknown();

	printf("syscalls done: %d ok, %d bad\n", passed, failed);
	return failed ? 1 : 0;
}

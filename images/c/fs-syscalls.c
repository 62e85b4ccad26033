// Exercises every file-system syscall litebox-vmm implements and prints what each returned,
// so a run in the sandbox can be diffed against a native run of the same binary.
//
// Usage: fs-syscalls DIR  (an empty, writable directory). Everything printed is independent of
// where DIR is, of inode numbers, of the user running it (root may bypass permission checks, so
// none are made) and of the file system type.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SYS_statx
#define SYS_statx 332
#endif
#ifndef SYS_renameat2
#define SYS_renameat2 316
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef SYS_copy_file_range
#define SYS_copy_file_range 326
#endif
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2

static char top[4096];

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENODEV: return "ENODEV";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ESPIPE: return "ESPIPE";
    case EROFS: return "EROFS";
    case EPIPE: return "EPIPE";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "E?";
    }
}

// Prints "label: value" or "label: -1 ERRNO".
static long check(const char *label, long result) {
    if (result < 0)
        printf("%s: -1 %s\n", label, errname(errno));
    else
        printf("%s: %ld\n", label, result);
    return result;
}

// Like check, but prints "fd" for a successful open (fd numbers depend on what is inherited).
static int check_fd(const char *label, int fd) {
    if (fd < 0)
        printf("%s: -1 %s\n", label, errname(errno));
    else
        printf("%s: fd\n", label);
    return fd;
}

static void show_stat(const char *label, const char *path, int follow) {
    struct stat st;
    int r = follow ? stat(path, &st) : lstat(path, &st);
    if (r < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    // A directory's size and link count depend on the file system: leave them out.
    int dir = S_ISDIR(st.st_mode);
    printf("%s: mode=%o size=%lld nlink=%ld\n", label, st.st_mode,
           dir ? 0LL : (long long)st.st_size, dir ? 0L : (long)st.st_nlink);
}

static void show_file(const char *label, const char *path) {
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    printf("%s: %zd [", label, n);
    for (ssize_t i = 0; i < n; i++)
        putchar(buf[i] >= 32 && buf[i] < 127 ? buf[i] : '.');
    printf("]\n");
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dir(const char *label, const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    char buf[4096];
    char *names[256];
    int count = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long at = 0; at < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + at);
            if (count < 256) {
                names[count] = malloc(300);
                snprintf(names[count], 300, "%s/%d", d->d_name, d->d_type);
                count++;
            }
            at += d->d_reclen;
        }
    }
    close(fd);
    qsort(names, count, sizeof names[0], by_name);
    printf("%s:", label);
    for (int i = 0; i < count; i++)
        printf(" %s", names[i]);
    printf("\n");
}

static void show_cwd(const char *label) {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) {
        printf("%s: -1 %s\n", label, errname(errno));
        return;
    }
    size_t n = strlen(top);
    printf("%s: $W%s\n", label, strncmp(cwd, top, n) == 0 ? cwd + n : cwd);
}

static void put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, text, strlen(text));
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 2 || chdir(argv[1]) != 0) {
        fprintf(stderr, "usage: fs-syscalls EMPTY-DIR\n");
        return 2;
    }
    getcwd(top, sizeof top);
    signal(SIGPIPE, SIG_IGN);
    char buf[256];
    int fd, fd2;

    printf("== umask, open, creat, close\n");
    check("umask", umask(022));
    check("umask again", umask(022));
    fd = check_fd("open O_CREAT", open("a.txt", O_RDWR | O_CREAT, 0666));
    check("write", write(fd, "hello world\n", 12));
    check("close", close(fd));
    check("close again", close(fd));
    check_fd("open O_EXCL existing", open("a.txt", O_RDWR | O_CREAT | O_EXCL, 0600));
    check_fd("open missing", open("missing", O_RDONLY));
    check_fd("open through a file", open("a.txt/x", O_RDONLY));
    check_fd("open O_DIRECTORY on a file", open("a.txt", O_RDONLY | O_DIRECTORY));
    check_fd("open dir for writing", open(".", O_WRONLY));
    fd = check_fd("creat", creat("b.txt", 0600));
    check("write to creat fd", write(fd, "bee", 3));
    check("read from write-only fd", read(fd, buf, 3));
    close(fd);
    show_stat("stat b.txt", "b.txt", 1);
    fd = check_fd("openat AT_FDCWD", openat(AT_FDCWD, "a.txt", O_RDONLY));
    close(fd);

    printf("== read, write, pread, pwrite, readv, writev, lseek\n");
    fd = open("a.txt", O_RDWR);
    memset(buf, 0, sizeof buf);
    check("read 5", read(fd, buf, 5));
    printf("data: %s\n", buf);
    check("lseek SEEK_CUR", lseek(fd, 0, SEEK_CUR));
    check("lseek SEEK_END", lseek(fd, 0, SEEK_END));
    check("lseek SEEK_SET 6", lseek(fd, 6, SEEK_SET));
    check("lseek negative", lseek(fd, -100, SEEK_SET));
    check("pwrite at 0", pwrite(fd, "HELLO", 5, 0));
    memset(buf, 0, sizeof buf);
    check("pread at 0", pread(fd, buf, 11, 0));
    printf("data: %s\n", buf);
    check("position after pread", lseek(fd, 0, SEEK_CUR));
    struct iovec out[2] = {{"one ", 4}, {"two\n", 4}};
    lseek(fd, 0, SEEK_END);
    check("writev", writev(fd, out, 2));
    char p1[6] = {0}, p2[32] = {0};
    struct iovec in[2] = {{p1, 5}, {p2, 31}};
    lseek(fd, 0, SEEK_SET);
    check("readv", readv(fd, in, 2));
    printf("data: [%s] [%s]\n", p1, p2);
    check("lseek past the end", lseek(fd, 100, SEEK_SET));
    check("write after a hole", write(fd, "Z", 1));
    show_stat("stat after hole", "a.txt", 1);
    memset(buf, 'x', sizeof buf);
    check("pread the hole", pread(fd, buf, 4, 30));
    printf("hole bytes: %d %d %d %d\n", buf[0], buf[1], buf[2], buf[3]);
    check("read at end", read(fd, buf, 10));
    close(fd);
    check("read closed fd", read(fd, buf, 1));
    check("write bad fd", write(-1, "x", 1));

    printf("== O_APPEND, O_TRUNC\n");
    fd = open("a.txt", O_WRONLY | O_APPEND);
    lseek(fd, 0, SEEK_SET);
    check("write O_APPEND", write(fd, "END", 3));
    check("position after append", lseek(fd, 0, SEEK_CUR));
    close(fd);
    show_stat("stat after append", "a.txt", 1);
    put("t.txt", "some text");
    fd = check_fd("open O_TRUNC", open("t.txt", O_WRONLY | O_TRUNC));
    close(fd);
    show_stat("stat after O_TRUNC", "t.txt", 1);

    printf("== fstat, stat, lstat, fstatat, statx\n");
    struct stat st;
    fd = open("b.txt", O_RDONLY);
    check("fstat", fstat(fd, &st));
    printf("fstat: mode=%o size=%lld\n", st.st_mode, (long long)st.st_size);
    check("fstatat AT_EMPTY_PATH", fstatat(fd, "", &st, AT_EMPTY_PATH));
    printf("size: %lld\n", (long long)st.st_size);
    check("fstatat empty without flag", fstatat(fd, "", &st, 0));
    close(fd);
    check("fstatat AT_FDCWD", fstatat(AT_FDCWD, "b.txt", &st, 0));
    show_stat("stat missing", "nope", 1);
    show_stat("stat file/ (trailing slash)", "b.txt/", 1);
    char statxbuf[256];
    check("statx", syscall(SYS_statx, AT_FDCWD, "b.txt", 0, 0x7ff, statxbuf));
    printf("statx mode=%o size=%llu\n", *(uint16_t *)(statxbuf + 28),
           (unsigned long long)*(uint64_t *)(statxbuf + 40));

    printf("== mkdir, getdents64, rmdir\n");
    check("mkdir", mkdir("d", 0755));
    check("mkdir existing", mkdir("d", 0755));
    check("mkdir in missing", mkdir("nope/d", 0755));
    check("mkdirat", mkdirat(AT_FDCWD, "d/e", 0700));
    show_stat("stat d/e", "d/e", 1);
    put("d/f1", "1");
    put("d/f2", "22");
    list_dir("getdents64 d", "d");
    check("rmdir non-empty", rmdir("d"));
    check("rmdir a file", rmdir("d/f1"));
    check("unlink a dir", unlink("d/e"));
    check("rmdir .", rmdir("d/e/."));
    check("unlinkat AT_REMOVEDIR", unlinkat(AT_FDCWD, "d/e", AT_REMOVEDIR));
    check("unlinkat file", unlinkat(AT_FDCWD, "d/f2", 0));
    list_dir("getdents64 d after", "d");

    printf("== chdir, fchdir, getcwd\n");
    show_cwd("getcwd");
    check("chdir d", chdir("d"));
    show_cwd("getcwd in d");
    check("chdir ..", chdir(".."));
    check("chdir to a file", chdir("a.txt"));
    check("chdir missing", chdir("missing"));
    fd = open("d", O_RDONLY | O_DIRECTORY);
    check("fchdir", fchdir(fd));
    show_cwd("getcwd after fchdir");
    close(fd);
    check("chdir back", chdir(top));
    check("getcwd small buffer", getcwd(buf, 2) ? 0 : -1);

    printf("== rename, renameat, renameat2\n");
    put("r1", "r-one");
    put("r2", "r-two");
    check("rename", rename("r1", "r3"));
    show_file("r3", "r3");
    check("rename missing", rename("r1", "r4"));
    check("renameat over existing", renameat(AT_FDCWD, "r3", AT_FDCWD, "r2"));
    show_file("r2 after", "r2");
    put("r5", "r-five");
    check("renameat2 NOREPLACE", syscall(SYS_renameat2, AT_FDCWD, "r5", AT_FDCWD, "r2",
                                         RENAME_NOREPLACE));
    check("renameat2 EXCHANGE", syscall(SYS_renameat2, AT_FDCWD, "r5", AT_FDCWD, "r2",
                                        RENAME_EXCHANGE));
    show_file("r2 exchanged", "r2");
    show_file("r5 exchanged", "r5");
    mkdir("rd", 0755);
    mkdir("rd2", 0755);
    put("rd2/x", "x");
    check("rename dir over non-empty dir", rename("rd", "rd2"));
    check("rename dir into itself", rename("rd", "rd/sub"));
    check("rename file over dir", rename("r5", "rd"));
    check("rename dir over file", rename("rd", "r5"));
    check("rename dir", rename("rd", "rd3"));

    printf("== link, linkat, symlink, symlinkat, readlink, readlinkat\n");
    check("link", link("b.txt", "b.link"));
    show_stat("stat b.txt linked", "b.txt", 1);
    struct stat s1, s2;
    stat("b.txt", &s1);
    stat("b.link", &s2);
    printf("same inode: %d\n", s1.st_ino == s2.st_ino);
    check("link existing", link("b.txt", "b.link"));
    check("link a dir", link("d", "d.link"));
    check("linkat", linkat(AT_FDCWD, "b.txt", AT_FDCWD, "b.link2", 0));
    check("symlink", symlink("b.txt", "s1"));
    check("symlink dangling", symlink("no/where", "s2"));
    check("symlinkat", symlinkat("d", AT_FDCWD, "s3"));
    check("symlink existing", symlink("x", "s1"));
    show_stat("stat s1", "s1", 1);
    show_stat("lstat s1", "s1", 0);
    show_stat("stat dangling", "s2", 1);
    memset(buf, 0, sizeof buf);
    check("readlink", readlink("s1", buf, sizeof buf));
    printf("target: %s\n", buf);
    memset(buf, 0, sizeof buf);
    check("readlinkat short buffer", readlinkat(AT_FDCWD, "s2", buf, 3));
    printf("target: %s\n", buf);
    check("readlink a file", readlink("b.txt", buf, sizeof buf));
    check_fd("open O_NOFOLLOW on a symlink", open("s1", O_RDONLY | O_NOFOLLOW));
    show_file("read through symlink", "s1");
    show_file("read through dir symlink", "s3/f1");
    check("lstat s3 then unlink", unlink("s3"));
    show_stat("d still there", "d", 1);

    printf("== access, faccessat, faccessat2\n");
    check("access F_OK", access("b.txt", F_OK));
    check("access R_OK", access("b.txt", R_OK));
    check("access missing", access("nope", F_OK));
    check("access bad mode", access("b.txt", 0100));
    check("faccessat", faccessat(AT_FDCWD, "b.txt", R_OK, 0));
    check("faccessat2 NOFOLLOW dangling", syscall(SYS_faccessat2, AT_FDCWD, "s2", F_OK,
                                                  AT_SYMLINK_NOFOLLOW));
    check("faccessat2 dangling", syscall(SYS_faccessat2, AT_FDCWD, "s2", F_OK, 0));

    printf("== truncate, ftruncate, fsync, fdatasync\n");
    put("tr", "0123456789");
    check("truncate shorter", truncate("tr", 4));
    show_file("tr", "tr");
    check("truncate longer", truncate("tr", 8));
    fd = open("tr", O_RDONLY);
    memset(buf, 'x', sizeof buf);
    check("read extended", read(fd, buf, 16));
    printf("bytes: %d %d %d %d %d\n", buf[0], buf[3], buf[4], buf[7], buf[8]);
    check("ftruncate read-only fd", ftruncate(fd, 2));
    close(fd);
    fd = open("tr", O_RDWR);
    check("ftruncate", ftruncate(fd, 2));
    check("ftruncate negative", ftruncate(fd, -1));
    check("fsync", fsync(fd));
    check("fdatasync", fdatasync(fd));
    close(fd);
    show_stat("tr after", "tr", 1);
    check("truncate a dir", truncate("d", 0));

    printf("== chmod, fchmod, fchmodat, utimensat\n");
    check("chmod", chmod("b.txt", 0640));
    show_stat("b.txt 0640", "b.txt", 1);
    fd = open("b.txt", O_RDONLY);
    check("fchmod", fchmod(fd, 0604));
    close(fd);
    show_stat("b.txt 0604", "b.txt", 1);
    check("fchmodat", fchmodat(AT_FDCWD, "b.txt", 0600, 0));
    show_stat("b.txt 0600", "b.txt", 1);
    check("chmod missing", chmod("nope", 0600));
    struct timespec times[2] = {{1000000000, 5}, {1200000000, 600}};
    check("utimensat", utimensat(AT_FDCWD, "b.txt", times, 0));
    stat("b.txt", &st);
    printf("times: %ld.%ld %ld.%ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {1300000000, 0}};
    fd = open("b.txt", O_RDONLY);
    check("futimens", futimens(fd, omit));
    close(fd);
    stat("b.txt", &st);
    printf("times: %ld %ld\n", (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec);
    struct timespec bad[2] = {{0, 2000000000}, {0, 0}};
    check("utimensat bad nsec", utimensat(AT_FDCWD, "b.txt", bad, 0));
    check("utimensat NOFOLLOW on symlink", utimensat(AT_FDCWD, "s1", times,
                                                     AT_SYMLINK_NOFOLLOW));

    printf("== dup, dup2, dup3, fcntl\n");
    fd = open("a.txt", O_RDONLY);
    fd2 = dup(fd);
    printf("dup: %s\n", fd2 > fd ? "higher fd" : "?");
    read(fd, buf, 3);
    check("dup shares the offset", lseek(fd2, 0, SEEK_CUR));
    check("dup2", dup2(fd, 20));
    check("dup2 same", dup2(fd, fd) == fd);
    check("dup3 same", dup3(fd, fd, 0));
    check("dup3 O_CLOEXEC", dup3(fd, 21, O_CLOEXEC));
    check("F_GETFD 21", fcntl(21, F_GETFD));
    check("F_GETFD 20", fcntl(20, F_GETFD));
    check("F_SETFD", fcntl(20, F_SETFD, FD_CLOEXEC));
    check("F_GETFD 20 after", fcntl(20, F_GETFD));
    check("F_DUPFD", fcntl(fd, F_DUPFD, 30));
    check("F_DUPFD_CLOEXEC", fcntl(fd, F_DUPFD_CLOEXEC, 30));
    check("F_GETFD 31", fcntl(31, F_GETFD));
    check("F_GETFL", fcntl(fd, F_GETFL) & ~O_LARGEFILE);
    check("F_SETFL O_APPEND|O_NONBLOCK", fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK));
    check("F_GETFL after", fcntl(fd, F_GETFL) & ~O_LARGEFILE);
    check("F_GETFL shared with dup", fcntl(fd2, F_GETFL) & ~O_LARGEFILE);
    check("fcntl bad fd", fcntl(99, F_GETFD));
    for (int i = 20; i <= 31; i++)
        close(i);
    close(fd);
    close(fd2);

    printf("== O_PATH, AT_EMPTY_PATH, dirfds\n");
    int dir = check_fd("open O_PATH dir", open("d", O_PATH | O_DIRECTORY));
    check("read O_PATH", read(dir, buf, 1));
    check("fstat O_PATH", fstat(dir, &st));
    printf("is dir: %d\n", S_ISDIR(st.st_mode));
    fd = check_fd("openat via O_PATH dirfd", openat(dir, "f1", O_RDONLY));
    check("read it", read(fd, buf, 1));
    close(fd);
    check("fstatat via dirfd", fstatat(dir, "f1", &st, 0));
    check("mkdirat via dirfd", mkdirat(dir, "sub", 0755));
    check("unlinkat via dirfd", unlinkat(dir, "sub", AT_REMOVEDIR));
    close(dir);
    int file = open("b.txt", O_RDONLY);
    check("openat with a file as dirfd", openat(file, "x", O_RDONLY));
    close(file);
    check("fstatat lstat symlink", fstatat(AT_FDCWD, "s1", &st, AT_SYMLINK_NOFOLLOW));
    printf("is link: %d\n", S_ISLNK(st.st_mode));
    fd = check_fd("open O_PATH|O_NOFOLLOW symlink", open("s1", O_PATH | O_NOFOLLOW));
    check("fstat it", fstat(fd, &st));
    printf("is link: %d\n", S_ISLNK(st.st_mode));
    close(fd);

    printf("== pipe, pipe2\n");
    int p[2];
    check("pipe", pipe(p));
    check("write pipe", write(p[1], "abc", 3));
    memset(buf, 0, sizeof buf);
    check("read pipe", read(p[0], buf, sizeof buf));
    printf("data: %s\n", buf);
    check("lseek pipe", lseek(p[0], 0, SEEK_SET));
    check("write to read end", write(p[0], "x", 1));
    fstat(p[0], &st);
    printf("is fifo: %d\n", S_ISFIFO(st.st_mode));
    close(p[1]);
    check("read at EOF", read(p[0], buf, 4));
    close(p[0]);
    check("pipe2", pipe2(p, O_CLOEXEC | O_NONBLOCK));
    check("pipe2 F_GETFD", fcntl(p[0], F_GETFD));
    check("pipe2 read empty", read(p[0], buf, 4));
    close(p[0]);
    check("write with no reader", write(p[1], "x", 1));
    close(p[1]);
    check("pipe2 bad flags", pipe2(p, 0x10));

    printf("== sendfile, copy_file_range\n");
    put("src", "sendfile source data\n");
    int src_fd = open("src", O_RDONLY);
    int outfd = open("dst", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check("sendfile", sendfile(outfd, src_fd, NULL, 100));
    off_t off = 9;
    check("sendfile with offset", sendfile(outfd, src_fd, &off, 6));
    printf("offset now: %ld\n", (long)off);
    close(outfd);
    show_file("dst", "dst");
    check("pipe for sendfile", pipe(p));
    lseek(src_fd, 0, SEEK_SET);
    check("sendfile to a pipe", sendfile(p[1], src_fd, NULL, 8));
    memset(buf, 0, sizeof buf);
    read(p[0], buf, sizeof buf);
    printf("data: %s\n", buf);
    close(p[0]);
    close(p[1]);
    outfd = open("dst2", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    off_t in_off = 0;
    check("copy_file_range", syscall(SYS_copy_file_range, src_fd, &in_off, outfd, NULL, 8, 0));
    printf("src_fd offset: %ld\n", (long)in_off);
    close(outfd);
    show_file("dst2", "dst2");
    close(src_fd);

    printf("== statfs, fstatfs\n");
    struct statfs sf;
    check("statfs", statfs(".", &sf));
    printf("namelen: %ld\n", (long)sf.f_namelen);
    fd = open(".", O_RDONLY);
    check("fstatfs", fstatfs(fd, &sf));
    close(fd);
    check("statfs missing", statfs("nope", &sf));

    printf("== mmap of files\n");
    put("m.txt", "mapped file contents");
    fd = open("m.txt", O_RDONLY);
    char *m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("mmap private: %s\n", m == MAP_FAILED ? errname(errno) : m);
    char *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (w != MAP_FAILED) {
        memcpy(w, "MAPPED", 6);
        printf("private copy: %.20s\n", w);
    }
    show_file("file unchanged", "m.txt");
    char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    printf("mmap shared read-only: %s\n", r == MAP_FAILED ? errname(errno) : r);
    char *o = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
    printf("mmap past the end: %s\n", o == MAP_FAILED ? errname(errno) : "mapped");
    printf("mmap unaligned offset: %s\n",
           mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED ? errname(errno) : "?");
    close(fd);
    fd = open("m.txt", O_WRONLY);
    printf("mmap write-only fd: %s\n",
           mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ? errname(errno) : "?");
    close(fd);
    fd = open(".", O_RDONLY);
    printf("mmap a directory: %s\n",
           mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ? errname(errno) : "?");
    close(fd);
    fd = open("/dev/zero", O_RDWR);
    char *z = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("mmap /dev/zero: %d\n", z == MAP_FAILED ? -1 : z[100]);
    close(fd);
    printf("mmap bad fd: %s\n",
           mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 99, 0) == MAP_FAILED ? errname(errno) : "?");

    printf("== bad paths\n");
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    check_fd("open name > NAME_MAX", open(longname, O_RDONLY));
    check_fd("open empty path", open("", O_RDONLY));
    check_fd("open NULL path", open(NULL, O_RDONLY));
    check_fd("open kernel pointer", open((char *)0xffff888000000000ULL, O_RDONLY));

    printf("== final tree\n");
    list_dir(".", ".");
    return 0;
}

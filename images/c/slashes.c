/* A trailing '/' on paths in the directory argv[1]: Linux demands a directory there, and
 * never lets it turn unlink, rmdir or rename onto a symlink's target. Each call's result is
 * printed, then what is left in the directory, so a wrong file removed shows too. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *what, int result) {
    printf("%-28s %d %s\n", what, result, result < 0 ? strerror(errno) : "");
}

static int compare(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(void) {
    char *names[64];
    int count = 0;
    DIR *dir = opendir(".");
    struct dirent *entry;
    while (dir && (entry = readdir(dir)) && count < 64) {
        if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, ".."))
            names[count++] = strdup(entry->d_name);
    }
    closedir(dir);
    qsort(names, count, sizeof *names, compare);
    printf("left:");
    for (int i = 0; i < count; i++) printf(" %s", names[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    close(open("f", O_WRONLY | O_CREAT, 0644));
    mkdir("d", 0755);
    mkdir("e", 0755);
    symlink("f", "fl");
    symlink("d", "dl");
    symlink("nowhere", "dangling");

    struct stat st;
    show("unlink f/", unlink("f/"));
    show("unlink fl/", unlink("fl/"));
    show("unlink d/", unlink("d/"));
    show("rmdir dl/", rmdir("dl/"));
    show("rmdir fl/", rmdir("fl/"));
    show("rename dl/ y", rename("dl/", "y"));
    show("rename fl/ x", rename("fl/", "x"));
    show("rename f newx/", rename("f", "newx/"));
    show("rename f e/", rename("f", "e/"));
    show("rename e dl/", rename("e", "dl/"));
    show("link f newh/", link("f", "newh/"));
    show("symlink f newl/", symlink("f", "newl/"));
    show("open newf/ O_CREAT", open("newf/", O_WRONLY | O_CREAT, 0644));
    show("open f/", open("f/", O_RDONLY));
    show("truncate f/", truncate("f/", 0));
    show("chmod f/", chmod("f/", 0600));
    show("lstat dl/", lstat("dl/", &st));
    printf("%-28s %s\n", "lstat dl/ is a directory", S_ISDIR(st.st_mode) ? "yes" : "no");
    show("stat dangling/", stat("dangling/", &st));
    show("mkdir m/", mkdir("m/", 0755));
    show("mkdir dangling/", mkdir("dangling/", 0755));
    show("mkdir fl/", mkdir("fl/", 0755));
    show("rmdir m/", rmdir("m/"));
    show("rename d/ d2/", rename("d/", "d2/"));
    show("rename . zz", rename(".", "zz"));
    show("rename f ..", rename("f", ".."));
    show("rename nope/.. x", rename("nope/..", "x"));
    show("rmdir nope/..", rmdir("nope/.."));
    show("rmdir d2/..", rmdir("d2/.."));
    list();
    return 0;
}

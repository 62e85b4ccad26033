/* `..` after symlinks in the directory argv[1]: it leads to the parent of what the prefix
 * names, not of its spelling, and the working directory is where chdir really went. Prints
 * each result (paths relative to argv[1]), then what is left in the tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[4096];

static void put(const char *name, const char *text) {
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, text, strlen(text));
    close(fd);
}

static void read_as(const char *label, const char *path) {
    char buffer[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%-24s %s\n", label, strerror(errno));
        return;
    }
    read(fd, buffer, sizeof buffer - 1);
    close(fd);
    printf("%-24s %s", label, buffer);
}

static void read_through(const char *path) { read_as(path, path); }

static void where(const char *after) {
    char cwd[4096];
    const char *shown = getcwd(cwd, sizeof cwd) ? cwd : "?";
    if (!strncmp(shown, base, strlen(base))) shown += strlen(base);
    printf("%-24s cwd .%s\n", after, shown);
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0 || !getcwd(base, sizeof base)) return 2;
    mkdir("d1", 0755);
    mkdir("d1/d2", 0755);
    put("f", "top\n");
    put("d1/f", "inner\n");
    put("d1/g", "g\n");
    symlink("d1/d2", "deeplink");
    symlink("..", "d1/up");
    symlink("loop2", "loop1");
    symlink("loop1", "loop2");

    read_through("deeplink/../g");
    read_through("deeplink/../../f");
    read_through("d1/up/d1/up/f");
    read_through("d1/d2/../../f");
    read_through("f/../f");
    read_through("missing/../f");
    read_through("loop1/../f");
    read_through("deeplink/./../f");

    /* 60 directories down and 60 `..` back up: each checked once, not once per prefix. */
    static char deep[4096];
    for (int i = 0; i < 60; i++) {
        strcat(deep, "d/");
        mkdir(deep, 0755);
    }
    for (int i = 0; i < 60; i++) strcat(deep, "../");
    strcat(deep, "f");
    read_as("60 down, 60 up, f", deep);

    chdir("deeplink");
    where("chdir deeplink");
    chdir("..");
    where("chdir ..");
    read_through("../f");
    chdir("up/deeplink/..");
    where("chdir up/deeplink/..");
    chdir(base);

    int removed = unlink("deeplink/../f");
    printf("%-24s %d %s\n", "unlink deeplink/../f", removed, removed ? strerror(errno) : "");
    struct stat st;
    printf("%-24s %s\n", "d1/f left", stat("d1/f", &st) ? "no" : "yes");
    printf("%-24s %s\n", "f left", stat("f", &st) ? "no" : "yes");
    return 0;
}

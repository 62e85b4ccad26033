/* Signals a program sends itself, chosen by argv[1]: "abort", "usr1", "kill0" (signal 0 to
 * itself: prints the result), "ignored" (SIGUSR1 with SIG_IGN, then exits 3), "child"
 * (SIGCHLD, ignored by default, then exits 4), "other" (kill of another pid: prints it),
 * "everyone" (kill(-1, 0): the caller is not among the targets), "caught" (the four signals
 * ignored by default, each with a handler that does nothing visible, then exits 5). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void quiet_handler(int signal) { (void)signal; }

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "abort")) {
        abort();
    } else if (!strcmp(what, "usr1")) {
        raise(SIGUSR1);
    } else if (!strcmp(what, "kill0")) {
        int result = kill(getpid(), 0);
        printf("kill(self, 0): %d\n", result);
        return 0;
    } else if (!strcmp(what, "ignored")) {
        signal(SIGUSR1, SIG_IGN);
        raise(SIGUSR1);
        return 3;
    } else if (!strcmp(what, "child")) {
        raise(SIGCHLD);
        return 4;
    } else if (!strcmp(what, "caught")) {
        int ignored_by_default[] = {SIGCHLD, SIGCONT, SIGURG, SIGWINCH};
        for (int i = 0; i < 4; i++) {
            signal(ignored_by_default[i], quiet_handler);
            raise(ignored_by_default[i]);
        }
        printf("caught: still here\n");
        return 5;
    } else if (!strcmp(what, "other")) {
        int result = kill(getpid() + 12345, SIGTERM);
        printf("kill(other, SIGTERM): %d %s\n", result, strerror(errno));
        return 0;
    } else if (!strcmp(what, "everyone")) {
        /* -1: every process but the caller. Run natively that may be many; make it signal 0
         * so the native run harms nothing, and print only whether the caller survived. */
        kill(-1, 0);
        printf("kill(-1, 0): still here\n");
        return 0;
    }
    return 99;
}

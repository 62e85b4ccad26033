//! peak-rss: runs a program and reports its peak resident set, for the benchmark suite.
//!
//! Usage: peak-rss PROG [ARGS...]
//!
//! Forks, execs PROG (looked up in PATH) with stdio inherited, waits for it with wait4 and prints
//! `peak-rss kib=N` on stderr, then exits with PROG's status. A child's peak counts the
//! memory it had before exec too, which for a child of a large process (the harness) is
//! that process's size; this helper is a few pages, so what it reports is PROG's own peak
//! (plus at most those few pages).

#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: peak-rss PROG [ARGS...]\n");
		return 2;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		perror("execvp");
		_exit(127);
	}
	int status;
	struct rusage usage;
	if (wait4(pid, &status, 0, &usage) != pid) {
		perror("wait4");
		return 2;
	}
	fprintf(stderr, "peak-rss kib=%ld\n", usage.ru_maxrss);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

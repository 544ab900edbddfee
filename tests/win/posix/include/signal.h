/* SPDX-License-Identifier: MIT */
/*
 * tests/win/posix: what of <signal.h> the channel tests use, on Windows
 * (tests/win/posix/posix.c, tests/common/proctest.c). kill(SIGKILL) is
 * TerminateProcess; kill(SIGTERM) runs a handler installed with
 * sigaction(), else terminates too.
 */
#ifndef ML_WIN_POSIX_SIGNAL_H
#define ML_WIN_POSIX_SIGNAL_H

#include_next <signal.h>
#include <sys/types.h>

#define SIGKILL 9
#define SIGCONT 18

/* kill(pid, SIGTERM) sets this event, which sigaction()'s watcher waits on. */
#define ML_PT_SIGTERM_EVENT "Local\\mlt-sigterm-%lu"

struct sigaction {
	void (*sa_handler)(int);
	unsigned long sa_mask;
	int sa_flags;
};

int sigaction(int sig, const struct sigaction *sa, struct sigaction *old);
int kill(pid_t pid, int sig);
/* (glibc has it through <unistd.h>, which some tests reach by other headers.) */
int pause(void);

#endif

/* SPDX-License-Identifier: MIT */
/* tests/win/posix: what of <unistd.h> the channel tests use, on Windows. */
#ifndef ML_WIN_POSIX_UNISTD_H
#define ML_WIN_POSIX_UNISTD_H

#include_next <unistd.h>
#include <sys/types.h>

/* Fails (ENOSYS): the tests that fork run only with a POSIX backend. */
pid_t fork(void);
pid_t getppid(void);
/* "/proc/self/exe" only: this program. */
ssize_t readlink(const char *path, char *buf, size_t len);
int pause(void);

#endif

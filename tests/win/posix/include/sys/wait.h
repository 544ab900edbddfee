/* SPDX-License-Identifier: MIT */
/*
 * tests/win/posix: waitpid() on Windows (tests/common/proctest.c), for
 * the children of spawn() and spawn_self(); statuses as POSIX makes them.
 */
#ifndef ML_WIN_POSIX_SYS_WAIT_H
#define ML_WIN_POSIX_SYS_WAIT_H

#include <sys/types.h>

#define WNOHANG 1
#define WIFEXITED(s) (((s) & 0x7f) == 0)
#define WEXITSTATUS(s) (((s) >> 8) & 0xff)
#define WIFSIGNALED(s) (((s) & 0x7f) != 0 && ((s) & 0x7f) != 0x7f)
#define WTERMSIG(s) ((s) & 0x7f)

pid_t waitpid(pid_t pid, int *status, int options);

#endif

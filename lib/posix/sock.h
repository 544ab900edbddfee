/* SPDX-License-Identifier: MIT */
/*
 * Messages with descriptors (SCM_RIGHTS) over a Unix socket, shared by the
 * linux and darwin backends; each passes the flags its OS has.
 */
#ifndef ML_POSIX_SOCK_H
#define ML_POSIX_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The most descriptors one message carries, either way. */
#define ML__PX_MAX_FDS 4

/*
 * Send len bytes with fds[0..n) (n <= ML__PX_MAX_FDS) in one sendmsg()
 * with `flags`, again on EINTR. 0 when all of it went, -EPROTO when only
 * part did, -EINVAL for too many descriptors, else -errno.
 */
int ml__px_send(int sock, const void *buf, size_t len, const int *fds, int n, int flags);
/*
 * One recvmsg() with `flags` (again on EINTR) into buf[0..len). Every
 * descriptor that came is taken, whatever else is wrong, so none is left
 * open: the first `max` (<= ML__PX_MAX_FDS) go to fds[*n..], which *n
 * counts on, each made close-on-exec when `cloexec` asks (an OS without
 * MSG_CMSG_CLOEXEC); the rest are closed, and *lost says so, as does a
 * truncated control or data part (*lost and *trunc). Returns the bytes
 * read, or -errno.
 */
ssize_t ml__px_recv(int sock, void *buf, size_t len, int *fds, int *n, int max, int flags,
		    bool cloexec, bool *lost, bool *trunc);
/*
 * A daemon's refusal (a JOIN reply's err) as our error: the ones a daemon
 * may refuse with, and -EPROTO for anything else (a broken reply).
 */
int ml__px_refusal(int32_t err);
/* Close fds[0..n), skipping -1s. */
void ml__px_close_fds(const int *fds, int n);

#endif /* ML_POSIX_SOCK_H */

// SPDX-License-Identifier: MIT
/*
 * The darwin backend's socket work (dwn.h): the socket's path, messages
 * with a descriptor on a stream socket, and the peer's credentials, with
 * macOS's calls only: no SOCK_CLOEXEC, accept4, MSG_NOSIGNAL or
 * MSG_CMSG_CLOEXEC there (SO_NOSIGPIPE and fcntl() instead).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dwn.h"

/* Short, and lower case: the volume may not keep case apart. */
void ml__dw_sock_path(char *buf, size_t len, const char *sockid)
{
	snprintf(buf, len, "/var/tmp/memlink.%s.sock", sockid);
}

_Static_assert(sizeof("/var/tmp/memlink..sock") + ML__DW_SOCKID_LEN - 1 <= 104,
	       "fits macOS's sun_path (104 bytes)");

void ml__dw_sockid(char *buf)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[(ML__DW_SOCKID_LEN - 1) / 2];

	arc4random_buf(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++) {
		buf[2 * i] = hex[r[i] >> 4];
		buf[2 * i + 1] = hex[r[i] & 15];
	}
	buf[ML__DW_SOCKID_LEN - 1] = '\0';
}

int ml__dw_fd_flags(int fd, bool nonblock)
{
	int fl;

	if (fcntl(fd, F_SETFD, FD_CLOEXEC))
		return -errno;
	if (!nonblock)
		return 0;
	fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

int ml__dw_send(int sock, const void *buf, size_t len, const int *fds, int n)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * ML__DW_MAX_FDS)];
	} u;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (n < 0 || n > ML__DW_MAX_FDS)
		return -EINVAL;
	if (n) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.b;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
		u.h.cmsg_level = SOL_SOCKET;
		u.h.cmsg_type = SCM_RIGHTS;
		u.h.cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
		memcpy(CMSG_DATA(&u.h), fds, sizeof(int) * (size_t)n);
	}
	/* SIGPIPE: the socket has SO_NOSIGPIPE (macOS has no MSG_NOSIGNAL). */
	do
		r = sendmsg(sock, &m, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	/* A few dozen bytes into an empty stream buffer go whole, or not at all. */
	return (size_t)r == len ? 0 : -EPROTO;
}

int ml__dw_recv(int sock, void *buf, size_t len, size_t *have, int *fds, int *n)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct iovec iov = { .iov_base = (uint8_t *)buf + *have, .iov_len = len - *have };
	struct msghdr m = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.b,
		.msg_controllen = sizeof(u.b),
	};
	bool extra = false;
	ssize_t r;

	do
		r = recvmsg(sock, &m, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	/* Every descriptor that came is taken: none is left open. */
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		size_t k;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS ||
		    h->cmsg_len < CMSG_LEN(0))
			continue;
		k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;

			memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			/* No MSG_CMSG_CLOEXEC on macOS: at once, then. */
			fcntl(got, F_SETFD, FD_CLOEXEC);
			if (*n < ML__DW_MAX_FDS) {
				fds[(*n)++] = got;
			} else {
				close(got);
				extra = true;
			}
		}
	}
	if (extra || (m.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	if (r == 0)
		return -EPIPE;
	*have += (size_t)r;
	return *have == len ? 1 : 0;
}

int ml__dw_peercred(int sock, struct xucred *xu)
{
	socklen_t len = sizeof(*xu);

	memset(xu, 0, sizeof(*xu));
	/* xnu bsd/kern/uipc_usrreq.c: the credentials of the peer's connect() or listen(). */
	if (getsockopt(sock, SOL_LOCAL, LOCAL_PEERCRED, xu, &len))
		return -errno;
	return len == sizeof(*xu) && xu->cr_version == XUCRED_VERSION ? 0 : -EPROTO;
}

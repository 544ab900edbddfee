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
#include "../posix/sock.h"

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
	if (n > ML__DW_MAX_FDS)
		return -EINVAL;
	/* SIGPIPE: the socket has SO_NOSIGPIPE (macOS has no MSG_NOSIGNAL). */
	return ml__px_send(sock, buf, len, fds, n, MSG_DONTWAIT);
}

int ml__dw_recv(int sock, void *buf, size_t len, size_t *have, int *fds, int *n)
{
	bool lost, trunc;
	ssize_t r;

	/* No MSG_CMSG_CLOEXEC on macOS: each descriptor is made so at once. */
	r = ml__px_recv(sock, (uint8_t *)buf + *have, len - *have, fds, n, ML__DW_MAX_FDS,
			MSG_DONTWAIT, true, &lost, &trunc);
	if (r < 0)
		return r == -EAGAIN || r == -EWOULDBLOCK ? 0 : (int)r;
	if (lost)
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

// SPDX-License-Identifier: MIT
/* Messages with descriptors over a Unix socket (sock.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sock.h"

int ml__px_send(int sock, const void *buf, size_t len, const int *fds, int n, int flags)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * ML__PX_MAX_FDS)];
	} u;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (n < 0 || n > ML__PX_MAX_FDS)
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
	do
		r = sendmsg(sock, &m, flags);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	/* Small messages into an empty buffer go whole, or not at all. */
	return (size_t)r == len ? 0 : -EPROTO;
}

ssize_t ml__px_recv(int sock, void *buf, size_t len, int *fds, int *n, int max, int flags,
		    bool cloexec, bool *lost, bool *trunc)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * ML__PX_MAX_FDS)];
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.b,
		.msg_controllen = sizeof(u.b),
	};
	ssize_t r;

	*lost = *trunc = false;
	do
		r = recvmsg(sock, &m, flags);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	/* Of more than fit, the kernel installed those that fit and dropped the rest. */
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		size_t k;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS ||
		    h->cmsg_len < CMSG_LEN(0))
			continue;
		k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (cloexec)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
			if (*n < max) {
				fds[(*n)++] = fd;
			} else {
				close(fd);
				*lost = true;
			}
		}
	}
	if (m.msg_flags & MSG_CTRUNC)
		*lost = true;
	if (m.msg_flags & MSG_TRUNC)
		*trunc = true;
	return r;
}

void ml__px_close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int ml__px_refusal(int32_t err)
{
	switch (err) {
	case EACCES:
	case ECONNREFUSED:
	case EPROTO:
	case EPIPE:
		return -err;
	default:
		return -EPROTO;
	}
}

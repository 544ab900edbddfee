// SPDX-License-Identifier: MIT
/*
 * The linux backend's socket and descriptor work: the channel's address,
 * messages with descriptors, and checks of descriptors a peer sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lnx.h"
#include "../posix/sock.h"

socklen_t ml__lnx_addr(struct sockaddr_un *a, const char *name)
{
	size_t n = strlen(ML__WIRE_PREFIX) + strlen(name);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* Abstract: a leading NUL, and the length says where the name ends. */
	snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, ML__WIRE_PREFIX "%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int ml__lnx_send(int sock, const void *buf, size_t len, const int *fds, int n)
{
	return ml__px_send(sock, buf, len, fds, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void ml__lnx_close_fds(const int *fds, int n)
{
	ml__px_close_fds(fds, n);
}

ssize_t ml__lnx_recv(int sock, void *buf, size_t len, int *fds, int *n, int flags)
{
	bool lost, trunc;
	ssize_t r;

	*n = 0;
	r = ml__px_recv(sock, buf, len, fds, n, ML__WIRE_MAX_FDS, flags | MSG_CMSG_CLOEXEC, false,
			&lost, &trunc);
	if (r >= 0 && (lost || trunc))
		return -EMSGSIZE;
	return r;
}

bool ml__lnx_is_eventfd(int fd)
{
	char self[64], link[64];
	struct stat st;
	ssize_t n;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	n = readlink(self, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		return !strcmp(link, "anon_inode:[eventfd]");
	}
	/* No /proc: no pipe, socket, device or file at least. */
	if (fstat(fd, &st))
		return false;
	return !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) && !S_ISCHR(st.st_mode) &&
	       !S_ISBLK(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode);
}

int ml__lnx_check_memfd(int fd, uint64_t size, bool writable)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW;
	/* Sealed against writing, it could not be mapped for writing. */
	const int refuse = writable ? F_SEAL_WRITE | ML__F_SEAL_FUTURE_WRITE : 0;
	struct stat st;
	int seals;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size != size)
		return -EPROTO;
	/* Unsealed, the daemon could shrink it under us: SIGBUS on access. */
	seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & need) == need && !(seals & refuse) ? 0 : -EPROTO;
}

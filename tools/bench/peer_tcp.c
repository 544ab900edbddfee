// SPDX-License-Identifier: MIT
/*
 * TCP over loopback: the parent listens on 127.0.0.1 (a port the kernel
 * picks), each producer connects, the consumer accepts them all. Nagle is
 * off (TCP_NODELAY), as any latency-minded user would set it; framed
 * messages read through a buffer, as for `uds`.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

static int tcp_prepare(struct peer_row *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	r->nfd = 0;
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
		close(fd);
		return -errno;
	}
	r->fd[r->nfd++] = fd;
	return 0;
}

static void tcp_tune(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fd_rcvtimeo(fd);
}

static int tcp_open(struct peer_end *e)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd, err;

	if (e->role == 1)
		return 0;   /* accepts in tcp_ready, once the producers connected */
	if (getsockname(e->row->fd[0], (struct sockaddr *)&a, &alen))
		return -errno;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, alen)) {
		err = -errno;
		close(fd);
		return err;
	}
	tcp_tune(fd);
	return fd_end_open(e, fd, &fd, e->row->duplex ? 1 : 0, false);
}

static int tcp_ready(struct peer_end *e)
{
	int conn[PEER_MAX_PRODUCERS];
	unsigned n = 0;

	if (e->role == 0)
		return 0;
	while (n < e->row->nprod) {
		int fd = accept4(e->row->fd[0], NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			int err = -errno;

			while (n)
				close(conn[--n]);
			return err;
		}
		tcp_tune(fd);
		conn[n++] = fd;
	}
	return fd_end_open(e, conn[0], conn, n, false);
}

static void tcp_close(struct peer_end *e)
{
	struct fd_end *f = e->priv;

	if (!f)
		return;
	if (f->rx.nfd > 0 && e->role == 1) {
		for (unsigned i = 0; i < f->rx.nfd; i++)
			close(f->rx.fd[i]);
	} else if (f->tx >= 0) {
		close(f->tx);
	}
	fd_close(e);
}

const struct peer_ops peer_tcp = {
	.name = "tcp",
	.modes = PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.prepare = tcp_prepare,
	.unprepare = fd_row_close,
	.open = tcp_open,
	.ready = tcp_ready,
	.send = fd_send,
	.recv = fd_recv,
	.close = tcp_close,
};

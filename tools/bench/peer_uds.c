// SPDX-License-Identifier: MIT
/*
 * Unix domain sockets: `uds` (SOCK_STREAM, framed, read through a buffer)
 * and `uds-seqpacket` (SOCK_SEQPACKET, one message per send and recv).
 * One socket pair per producer, made in the parent; blocking reads.
 */
#include <errno.h>
#include <sys/socket.h>

#include "peer.h"

static int uds_prepare_type(struct peer_row *r, int type)
{
	r->nfd = 0;
	for (unsigned i = 0; i < r->nprod; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv)) {
			fd_row_close(r);
			return -errno;
		}
		fd_rcvtimeo(sv[0]);
		fd_rcvtimeo(sv[1]);
		r->fd[r->nfd++] = sv[0];   /* producer i */
		r->fd[r->nfd++] = sv[1];   /* the consumer's end */
	}
	return 0;
}

static int uds_prepare(struct peer_row *r)
{
	return uds_prepare_type(r, SOCK_STREAM);
}

static int seqp_prepare(struct peer_row *r)
{
	return uds_prepare_type(r, SOCK_SEQPACKET);
}

static int uds_open_packet(struct peer_end *e, bool packet)
{
	const struct peer_row *r = e->row;
	int rx[PEER_MAX_PRODUCERS];

	if (e->role == 0)
		return fd_end_open(e, r->fd[2 * e->index], r->fd + 2 * e->index,
				   r->duplex ? 1 : 0, packet);
	for (unsigned i = 0; i < r->nprod; i++)
		rx[i] = r->fd[2 * i + 1];
	return fd_end_open(e, r->fd[1], rx, r->nprod, packet);
}

static int uds_open(struct peer_end *e)
{
	return uds_open_packet(e, false);
}

static int seqp_open(struct peer_end *e)
{
	return uds_open_packet(e, true);
}

const struct peer_ops peer_uds = {
	.name = "uds",
	.modes = PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.prepare = uds_prepare,
	.unprepare = fd_row_close,
	.open = uds_open,
	.send = fd_send,
	.recv = fd_recv,
	.close = fd_close,
};

const struct peer_ops peer_uds_seqpacket = {
	.name = "uds-seqpacket",
	.modes = PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.prepare = seqp_prepare,
	.unprepare = fd_row_close,
	.open = seqp_open,
	.send = fd_send,
	.recv = fd_recv,
	.close = fd_close,
};

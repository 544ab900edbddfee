// SPDX-License-Identifier: MIT
/*
 * Pipes: one pipe per direction, framed messages read through a buffer.
 * Several producers share one pipe: a write of up to PIPE_BUF bytes is
 * atomic, so their frames (64-byte messages) never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "peer.h"

static int pipe_prepare(struct peer_row *r)
{
	int n = r->duplex ? 2 : 1;

	if (r->nprod > 1 && r->payload + 4 > PIPE_BUF) {
		snprintf(r->note, sizeof(r->note), "several writers: messages over PIPE_BUF interleave");
		return 1;
	}
	r->nfd = 0;
	for (int i = 0; i < n; i++) {
		int p[2];

		if (pipe2(p, O_CLOEXEC)) {
			fd_row_close(r);
			return -errno;
		}
		r->fd[r->nfd++] = p[0];  /* [0] requests: read end, [1] write end */
		r->fd[r->nfd++] = p[1];  /* [2] replies: read end, [3] write end */
	}
	return 0;
}

static int pipe_open(struct peer_end *e)
{
	const struct peer_row *r = e->row;

	if (e->role == 0)
		return fd_end_open(e, r->fd[1], r->fd + 2, r->duplex ? 1 : 0, false);
	return fd_end_open(e, r->duplex ? r->fd[3] : -1, r->fd, 1, false);
}

const struct peer_ops peer_pipe = {
	.name = "pipe",
	.modes = PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.prepare = pipe_prepare,
	.unprepare = fd_row_close,
	.open = pipe_open,
	.send = fd_send,
	.recv = fd_recv,
	.close = fd_close,
};

// SPDX-License-Identifier: MIT
/*
 * ZeroMQ over ipc:// (libzmq): a PAIR socket pair for round trips and
 * one-way streams (the server binds, the client connects), PUSH into one
 * PULL for several producers. One context with one I/O thread per process,
 * default high-water marks (1000 messages). Busy mode polls with
 * ZMQ_DONTWAIT and sched_yield() between polls: the I/O thread that moves
 * the messages shares the process's CPU, and a tight spin would starve it
 * until the next tick (30 us round trips instead of 10); blocking mode waits in zmq_recv (100 ms timeouts, to look
 * at the abort flag). Built when libzmq's pkg-config file is found.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "peer.h"

#ifdef HAVE_ZMQ
#include <zmq.h>

struct zmq_end {
	void *ctx, *sock;
};

static void zmq_path(const struct peer_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "ipc:///tmp/%s.zmq", r->name);
}

static int zmq_end_open(struct peer_end *e)
{
	const struct peer_row *r = e->row;
	struct zmq_end *z = calloc(1, sizeof(*z));
	int type, zero = 0, tmo = 100;
	char ep[128];

	if (!z)
		return -ENOMEM;
	e->priv = z;
	if (r->nprod > 1)
		type = e->role == 1 ? ZMQ_PULL : ZMQ_PUSH;
	else
		type = ZMQ_PAIR;
	z->ctx = zmq_ctx_new();
	if (!z->ctx)
		return -errno;
	z->sock = zmq_socket(z->ctx, type);
	if (!z->sock)
		return -errno;
	zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(z->sock, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
	zmq_path(r, ep, sizeof(ep));
	if ((e->role == 1 ? zmq_bind(z->sock, ep) : zmq_connect(z->sock, ep)) != 0)
		return -errno;
	return 0;
}

static int zmq_end_send(struct peer_end *e, int prio, const void *buf, size_t len)
{
	struct zmq_end *z = e->priv;
	int flags = e->row->mode == PEER_BUSY ? ZMQ_DONTWAIT : 0;
	uint32_t spins = 0;

	(void)prio;
	for (;;) {
		if (zmq_send(z->sock, buf, len, flags) == (int)len)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (flags)
			sched_yield();
		if ((!flags || (++spins & 1023u) == 0) && peer_aborted(e))
			return -ECANCELED;
	}
}

static int zmq_end_recv(struct peer_end *e, int *prio, void *buf, size_t cap)
{
	struct zmq_end *z = e->priv;
	int flags = e->row->mode == PEER_BUSY ? ZMQ_DONTWAIT : 0;
	uint32_t spins = 0;

	if (prio)
		*prio = 1;
	for (;;) {
		int n = zmq_recv(z->sock, buf, cap, flags);

		if (n >= 0)
			return (size_t)n > cap ? -EMSGSIZE : n;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (flags)
			sched_yield();
		if ((!flags || (++spins & 1023u) == 0) && peer_aborted(e))
			return -ECANCELED;
	}
}

static void zmq_end_close(struct peer_end *e)
{
	struct zmq_end *z = e->priv;

	if (!z)
		return;
	if (z->sock)
		zmq_close(z->sock);
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	free(z);
	e->priv = NULL;
}

static void zmq_unprepare(struct peer_row *r)
{
	char path[128];

	snprintf(path, sizeof(path), "/tmp/%s.zmq", r->name);
	unlink(path);
}

const struct peer_ops peer_zmq = {
	.name = "zmq",
	.modes = PEER_MODE_BIT(PEER_BUSY) | PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.unprepare = zmq_unprepare,
	.open = zmq_end_open,
	.send = zmq_end_send,
	.recv = zmq_end_recv,
	.close = zmq_end_close,
};

#else /* !HAVE_ZMQ */

static const char *zmq_skip(void)
{
	return "libzmq3-dev not installed";
}

const struct peer_ops peer_zmq = {
	.name = "zmq",
	.modes = PEER_MODE_BIT(PEER_BUSY) | PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.skip = zmq_skip,
};

#endif

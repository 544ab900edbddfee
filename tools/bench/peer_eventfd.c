// SPDX-License-Identifier: MIT
/*
 * An eventfd doorbell over a shared ring: the sender puts the message in a
 * baseline ring (baseline_ring.c) in shared memory and writes 1 to the
 * receiver's eventfd; the receiver drains the ring and, when it finds it
 * empty, sleeps in read() on the eventfd. What a careful user builds with
 * the kernel's cheapest wake-up: one write() per message, one read() per
 * sleep. A sender facing a full ring yields.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "baseline_ring.h"
#include "peer.h"

static int efd_prepare(struct peer_row *r)
{
	int err = peer_rings_prepare(r);

	r->nfd = 0;
	if (err)
		return err;
	for (int i = 0; i < 2; i++) {
		int fd = eventfd(0, EFD_CLOEXEC);

		if (fd < 0) {
			fd_row_close(r);
			return -errno;
		}
		r->fd[r->nfd++] = fd;   /* [0] wakes the server, [1] the client */
	}
	return 0;
}

struct efd_end {
	struct bl_ring tx, rx;
	int wake_peer, sleep_on;
};

static int efd_open(struct peer_end *e)
{
	struct efd_end *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	e->priv = f;
	f->wake_peer = e->row->fd[e->role == 0 ? 0 : 1];
	f->sleep_on = e->row->fd[e->role == 0 ? 1 : 0];
	return peer_rings_attach(e, &f->tx, &f->rx);
}

static int efd_send(struct peer_end *e, int prio, const void *buf, size_t len)
{
	struct efd_end *f = e->priv;
	uint64_t one = 1;
	int err;

	(void)prio;
	err = peer_rings_put(e, &f->tx, buf, len);
	if (err)
		return err;
	return write(f->wake_peer, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

static int efd_recv(struct peer_end *e, int *prio, void *buf, size_t cap)
{
	struct efd_end *f = e->priv;
	uint64_t v;
	int n;

	if (prio)
		*prio = 1;
	while ((n = bl_ring_read(&f->rx, buf, cap)) == -EAGAIN) {
		if (read(f->sleep_on, &v, sizeof(v)) != sizeof(v) && errno != EINTR)
			return -errno;
		if (peer_aborted(e))
			return -ECANCELED;
	}
	return n;
}

const struct peer_ops peer_eventfd = {
	.name = "eventfd",
	.modes = PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.uses_shm = true,
	.prepare = efd_prepare,
	.unprepare = fd_row_close,
	.open = efd_open,
	.send = efd_send,
	.recv = efd_recv,
	.close = peer_free_priv,
};

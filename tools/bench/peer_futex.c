// SPDX-License-Identifier: MIT
/*
 * A raw futex doorbell over a shared ring: the same baseline rings as the
 * eventfd peer, with one shared futex word per direction instead of an
 * eventfd. The sender puts the message in the ring, bumps the receiver's
 * word and calls FUTEX_WAKE; the receiver drains the ring and, when it finds
 * it empty, sleeps in FUTEX_WAIT on the word it last saw. The floor under
 * any futex-based sleeping transport (what memlink's blocking mode is held
 * to), with one system call per message on the sending side.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "baseline_ring.h"
#include "peer.h"

/* The two words sit after the rings, each on its own line. */
struct fx_words {
	_Atomic uint32_t word[2][32];   /* [0] wakes the server, [1] the client */
};

static struct fx_words *fx_words(const struct peer_row *r)
{
	return (struct fx_words *)((unsigned char *)r->shm + peer_rings_size(r->payload));
}

static int fx_prepare(struct peer_row *r)
{
	if (r->shm_len < peer_rings_size(r->payload) + sizeof(struct fx_words))
		return -ENOMEM;
	atomic_store(&fx_words(r)->word[0][0], 0);
	atomic_store(&fx_words(r)->word[1][0], 0);
	return peer_rings_prepare(r);
}

struct fx_end {
	struct bl_ring tx, rx;
	_Atomic uint32_t *wake_peer, *sleep_on;
	uint32_t seen;
};

static int fx_open(struct peer_end *e)
{
	struct fx_end *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	e->priv = f;
	f->wake_peer = &fx_words(e->row)->word[e->role == 0 ? 0 : 1][0];
	f->sleep_on = &fx_words(e->row)->word[e->role == 0 ? 1 : 0][0];
	f->seen = atomic_load(f->sleep_on);
	return peer_rings_attach(e, &f->tx, &f->rx);
}

static long fx_futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

static int fx_send(struct peer_end *e, int prio, const void *buf, size_t len)
{
	struct fx_end *f = e->priv;
	int err;

	(void)prio;
	err = peer_rings_put(e, &f->tx, buf, len);
	if (err)
		return err;
	atomic_fetch_add_explicit(f->wake_peer, 1, memory_order_release);
	return fx_futex(f->wake_peer, FUTEX_WAKE, 1, NULL) < 0 ? -errno : 0;
}

static int fx_recv(struct peer_end *e, int *prio, void *buf, size_t cap)
{
	/* Woken at least every 100 ms to look at the abort flag. */
	static const struct timespec tick = { 0, 100 * 1000 * 1000 };
	struct fx_end *f = e->priv;
	int n;

	if (prio)
		*prio = 1;
	for (;;) {
		/* The word first: a send after this load changes it. */
		uint32_t v = atomic_load_explicit(f->sleep_on, memory_order_acquire);

		n = bl_ring_read(&f->rx, buf, cap);
		if (n != -EAGAIN)
			return n;
		if (v == f->seen &&
		    fx_futex(f->sleep_on, FUTEX_WAIT, v, &tick) < 0 && errno != EAGAIN &&
		    errno != EINTR && errno != ETIMEDOUT)
			return -errno;
		f->seen = v;
		if (peer_aborted(e))
			return -ECANCELED;
	}
}

const struct peer_ops peer_futex = {
	.name = "futex",
	.modes = PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.uses_shm = true,
	.prepare = fx_prepare,
	.open = fx_open,
	.send = fx_send,
	.recv = fx_recv,
	.close = peer_free_priv,
};

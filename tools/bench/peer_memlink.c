// SPDX-License-Identifier: MIT
/*
 * memlink channels (ml_chan_*) in each wait mode, and the baseline ring
 * (baseline_ring.c: two fixed-slot SPSC rings, busy-polling) beside them.
 *
 * memlink: role 1 is the daemon, each producer a client; messages go on
 * the High lane unless the row asks for the three-lane mix (prio given by
 * the harness). Payloads over 4 KiB get 2 MiB rings and a 64 KiB max_msg.
 * A receiver waits with ml_chan_wait(), which spins and/or sleeps as the
 * channel's wait mode says; a sender facing a full lane spins (busy) or
 * waits in ml_chan_send_wait() (other modes). Streams of messages up to
 * 4 KiB (every row but the round trips) go in batches of up to 64, as a
 * user streaming small messages would send and read them:
 * ml_chan_send_many(), each message copied into a batch buffer here first,
 * and ml_chan_recv_view(), each copied from where it lies in the channel
 * into the harness's buffer, as every transport delivers it.
 *
 * memlink-plain: what a program written against include/memlink.h alone
 * gets. Options left at their defaults (256 KiB rings; the row's wait
 * mode, whose default is adaptive), one ml_chan_send() or ml_chan_recv()
 * per message, ml_chan_wait() when there is nothing, ml_chan_send_wait()
 * when the lane is full (busy: spin on ml_chan_send()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_ring.h"
#include "clock.h"
#include "memlink.h"
#include "peer.h"

/* ---- memlink ------------------------------------------------------------ */

/* A batch: up to 64 messages of at most 4 KiB, 32 KiB: a small part of a lane. */
#define ML_BATCH 64
#define ML_BATCH_BYTES (32u << 10)
#define ML_BATCH_MAX_MSG 4096u
#define ML_STREAM_RING (1u << 20)

struct ml_end {
	ml_chan *ch;
	unsigned client;   /* daemon: whom to answer */
	/*
	 * A stream's receiver views batches (ml_chan_recv_view), its sender
	 * sends them (ml_chan_send_many) from bbuf.
	 */
	unsigned char *bbuf;
	size_t blen, bused;
	struct ml_msg msg[ML_BATCH];
	unsigned nmsg, next;
};

static const uint32_t ml_wait_of[] = {
	[PEER_BUSY] = ML_WAIT_BUSY,
	[PEER_ADAPTIVE] = ML_WAIT_ADAPTIVE,
	[PEER_BLOCKING] = ML_WAIT_BLOCKING,
};

static int ml_open_as(struct peer_end *e, bool plain)
{
	const struct peer_row *r = e->row;
	struct ml_chan_opts o = { .size = sizeof(o), .wait_mode = ml_wait_of[r->mode],
				  .max_clients = r->nprod };
	struct ml_end *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	e->priv = m;
	/* Above the default largest message, as little as needed (plain: the default ring). */
	if (r->payload > 4096) {
		o.ring_size = plain ? 0 : 2u << 20;
		o.max_msg = plain ? (uint32_t)r->payload : 65536;
	}
	/*
	 * Streams of small messages: batches, and 1 MiB rings (as the
	 * baseline ring has) so that the writer is not held up by the
	 * reader's batches. A batch of big messages would just copy more.
	 */
	if (!plain && !r->duplex && r->payload <= ML_BATCH_MAX_MSG) {
		o.ring_size = ML_STREAM_RING;
		m->blen = ML_BATCH_BYTES;
		m->bbuf = malloc(m->blen);
		if (!m->bbuf)
			return -ENOMEM;
	}
	if (e->role == 1)
		return ml_daemon_create(&m->ch, r->name, &o);
	return ml_client_connect(&m->ch, r->name, &o);
}

static int ml_open(struct peer_end *e)
{
	return ml_open_as(e, false);
}

static int ml_open_plain(struct peer_end *e)
{
	return ml_open_as(e, true);
}

static int ml_send_one(struct peer_end *e, int prio, const void *buf, size_t len);

/* Send the batch, waiting for room as ml_send_one() does. */
static int ml_flush(struct peer_end *e)
{
	struct ml_end *m = e->priv;
	unsigned done = 0;

	while (done < m->nmsg) {
		int n = ml_chan_send_many(m->ch, m->client, m->msg + done, m->nmsg - done);

		if (n == -EAGAIN) {
			/* Full: one message the single way, which waits for room. */
			n = ml_send_one(e, m->msg[done].prio, m->msg[done].data, m->msg[done].len);
			n = n ? n : 1;
		}
		if (n < 0)
			return n;
		done += (unsigned)n;
	}
	m->nmsg = 0;
	m->bused = 0;
	return 0;
}

static int ml_send(struct peer_end *e, int prio, const void *buf, size_t len)
{
	struct ml_end *m = e->priv;
	struct ml_msg *g;
	int err;

	if (!m->bbuf)
		return ml_send_one(e, prio, buf, len);
	if (m->nmsg == ML_BATCH || m->bused + len > m->blen) {
		err = ml_flush(e);
		if (err)
			return err;
	}
	g = &m->msg[m->nmsg++];
	g->data = m->bbuf + m->bused;
	g->len = (uint32_t)len;
	g->prio = prio;
	memcpy(g->data, buf, len);
	m->bused += (len + 7) & ~(size_t)7;
	return 0;
}

static int ml_send_one(struct peer_end *e, int prio, const void *buf, size_t len)
{
	struct ml_end *m = e->priv;
	uint32_t spins = 0;
	int err;

	for (;;) {
		err = e->role == 0 ? ml_chan_send(m->ch, prio, buf, len) :
				     ml_chan_reply(m->ch, m->client, prio, buf, len);
		if (err != -EAGAIN)
			return err;
		if (e->row->mode != PEER_BUSY) {
			err = ml_chan_send_wait(m->ch, m->client, prio, buf, len, 100000000);
			if (err != -EAGAIN)
				return err;
		} else {
			cpu_relax();
		}
		if ((++spins & 1023u) == 0 && peer_aborted(e))
			return -ECANCELED;
	}
}

/* The next message of the last batch, or -EAGAIN. */
static int ml_take(struct ml_end *m, int *prio, void *buf, size_t cap)
{
	const struct ml_msg *g;

	if (m->next == m->nmsg)
		return -EAGAIN;
	g = &m->msg[m->next++];
	if (g->len > cap)
		return -EMSGSIZE;
	memcpy(buf, g->data, g->len);
	if (prio)
		*prio = g->prio;
	m->client = g->client;
	return (int)g->len;
}

static int ml_recv_one(struct ml_end *m, int *prio, void *buf, size_t cap)
{
	int n;

	if (!m->bbuf)
		return ml_chan_recv(m->ch, prio, &m->client, buf, cap);
	n = ml_take(m, prio, buf, cap);
	if (n != -EAGAIN)
		return n;
	n = ml_chan_recv_view(m->ch, m->msg, ML_BATCH);
	if (n < 0)
		return n;
	m->nmsg = (unsigned)n;
	m->next = 0;
	return ml_take(m, prio, buf, cap);
}

static int ml_recv(struct peer_end *e, int *prio, void *buf, size_t cap)
{
	struct ml_end *m = e->priv;

	for (;;) {
		int n = ml_recv_one(m, prio, buf, cap);

		if (n != -EAGAIN)
			return n;
		n = ml_chan_wait(m->ch, 100000000);
		if (n && n != -ETIMEDOUT)
			return n;
		if (peer_aborted(e))
			return -ECANCELED;
	}
}

static void ml_close(struct peer_end *e)
{
	struct ml_end *m = e->priv;

	if (m) {
		ml_chan_close(m->ch);
		free(m->bbuf);
	}
	free(m);
	e->priv = NULL;
}

const struct peer_ops peer_memlink = {
	.name = "memlink",
	.modes = PEER_MODE_BIT(PEER_BUSY) | PEER_MODE_BIT(PEER_ADAPTIVE) |
		 PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.open = ml_open,
	.send = ml_send,
	.recv = ml_recv,
	.flush = ml_flush,
	.close = ml_close,
};

const struct peer_ops peer_memlink_plain = {
	.name = "memlink-plain",
	.modes = PEER_MODE_BIT(PEER_BUSY) | PEER_MODE_BIT(PEER_ADAPTIVE) |
		 PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 12800, /* what the default 256 KiB ring takes */
	.open = ml_open_plain,
	.send = ml_send,
	.recv = ml_recv,
	.close = ml_close,
};

/* ---- baseline ring, and the rings under the eventfd doorbell ------------- */

#define RING_BYTES (1u << 20)

size_t peer_rings_size(size_t payload)
{
	return 2 * bl_ring_mem_size(bl_ring_slots_for(RING_BYTES, payload), payload);
}

int peer_rings_prepare(struct peer_row *r)
{
	size_t slots = bl_ring_slots_for(RING_BYTES, r->payload);
	size_t len = bl_ring_mem_size(slots, r->payload);
	unsigned char *u = r->shm;
	struct bl_ring tmp;

	if (!u || r->shm_len < 2 * len)
		return -ENOMEM;
	if (bl_ring_init(&tmp, u, len, slots, r->payload) ||
	    bl_ring_init(&tmp, u + len, len, slots, r->payload))
		return -EINVAL;
	return 0;
}

int peer_rings_attach(struct peer_end *e, struct bl_ring *tx, struct bl_ring *rx)
{
	const struct peer_row *r = e->row;
	size_t slots = bl_ring_slots_for(RING_BYTES, r->payload);
	size_t len = bl_ring_mem_size(slots, r->payload);
	unsigned char *u = r->shm;
	unsigned char *mine = e->role == 0 ? u : u + len, *theirs = e->role == 0 ? u + len : u;

	if (bl_ring_attach(tx, mine, len, slots, r->payload) ||
	    bl_ring_attach(rx, theirs, len, slots, r->payload))
		return -EINVAL;
	return 0;
}

struct bl_end {
	struct bl_ring tx, rx;
};

static int bl_open(struct peer_end *e)
{
	struct bl_end *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	e->priv = b;
	return peer_rings_attach(e, &b->tx, &b->rx);
}

static int bl_send(struct peer_end *e, int prio, const void *buf, size_t len)
{
	struct bl_end *b = e->priv;
	uint32_t spins = 0;
	int err;

	(void)prio;
	while ((err = bl_ring_write(&b->tx, buf, len)) == -EAGAIN) {
		cpu_relax();
		if ((++spins & 1023u) == 0 && peer_aborted(e))
			return -ECANCELED;
	}
	return err;
}

static int bl_recv(struct peer_end *e, int *prio, void *buf, size_t cap)
{
	struct bl_end *b = e->priv;
	uint32_t spins = 0;
	int n;

	if (prio)
		*prio = 1;
	while ((n = bl_ring_read(&b->rx, buf, cap)) == -EAGAIN) {
		cpu_relax();
		if ((++spins & 1023u) == 0 && peer_aborted(e))
			return -ECANCELED;
	}
	return n;
}

void peer_free_priv(struct peer_end *e)
{
	free(e->priv);
	e->priv = NULL;
}

int peer_rings_put(struct peer_end *e, struct bl_ring *tx, const void *buf, size_t len)
{
	int err;

	while ((err = bl_ring_write(tx, buf, len)) == -EAGAIN) {
		peer_pause(e);
		if (peer_aborted(e))
			return -ECANCELED;
	}
	return err;
}

const struct peer_ops peer_baseline = {
	.name = "baseline-ring",
	.modes = PEER_MODE_BIT(PEER_BUSY),
	.max_payload = 65536,
	.uses_shm = true,
	.prepare = peer_rings_prepare,
	.open = bl_open,
	.send = bl_send,
	.recv = bl_recv,
	.close = peer_free_priv,
};

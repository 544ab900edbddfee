// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: hostile clients. A real daemon (linux backend, small
 * rings) serves raw clients that join on the channel's socket and then
 * write into the area each was given as they please: header (state,
 * generation, doorbell, heartbeat) and rings. That is all a client of
 * the linux backend can write: the control region is the daemon's alone.
 * The daemon must neither crash nor touch memory outside its mappings
 * (guard.c puts guard pages around them), and every call must return
 * what the API allows.
 *
 * Input: a byte of geometry (bits 0-1: clients - 1, bits 2-3: ring size
 * 256 << n, bit 4: connect a real client first, bit 5: the daemon has
 * ML_CHAN_EVENTS), a byte of slots the harness holds by raw clients (so
 * that slots in use look alive), then operations (enum fz_chan_op). A
 * raw client's operations name it by index; FZC_POKE's offset is into
 * the areas of the raw clients one after the other; the daemon's calls
 * name clients as fz_client() says. A fresh daemon per input keeps runs
 * reproducible.
 *
 * Bit 6 of the geometry byte makes the daemon a topic's publisher instead
 * (bit 7: reliable, else lossy; ring 4096 << the ring bits), its raw
 * clients hostile subscribers: FZC_POKE_RING moves a lane of their cursor,
 * the publisher's calls are sends of every kind, and the real client is a
 * subscriber, which must never find the honest publisher's ring corrupt.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan_layout.h"
#include "fuzz.h"
#include "ring_layout.h"
#include "topic_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char name[32];

struct raw {
	int sock;            /* -1: none */
	uint8_t *area;
	size_t len;
	unsigned slot;
};

static void name_once(void)
{
	if (!name[0])
		snprintf(name, sizeof(name), "fzd-%d", (int)getpid());
}

static void raw_join(struct raw *r)
{
	r->sock = fz_join(name, &r->area, &r->len, &r->slot);
	if (r->sock >= 0)
		CHECK(r->area && r->len >= ML__PEER_SIZE);
}

static void raw_leave(struct raw *r)
{
	if (r->sock < 0)
		return;
	close(r->sock);
	munmap(r->area, r->len);
	r->sock = -1;
	r->area = NULL;
}

/* FZC_POKE: a few bytes anywhere in the raw clients' areas, end to end. */
static void poke_areas(struct raw *raw, unsigned n, struct fz *f)
{
	size_t total = 0, off;
	size_t k = fz_u16(f) | (size_t)fz_u8(f) << 16, len = fz_u8(f) % 32u;

	for (unsigned i = 0; i < n; i++)
		total += raw[i].sock >= 0 ? raw[i].len : 0;
	if (!total)
		return;
	off = k % total;
	for (unsigned i = 0; i < n; i++) {
		if (raw[i].sock < 0)
			continue;
		if (off < raw[i].len) {
			for (size_t b = 0; b < len && off + b < raw[i].len; b++)
				raw[i].area[off + b] = fz_u8(f);
			return;
		}
		off -= raw[i].len;
	}
}

/* FZC_POKE_RING: a head or tail of one of raw client i's rings moves. */
static void poke_ring(struct raw *r, size_t ring_mem, struct fz *f)
{
	unsigned which = fz_u8(f);
	size_t off = ML__PEER_SIZE + (which & 1 ? ring_mem : 0);
	unsigned lane = (which >> 2) % ML_PRIO_COUNT;
	int8_t delta = (int8_t)fz_u8(f);
	struct ml__ring_shm *shm;
	_Atomic uint64_t *w;

	if (r->sock < 0)
		return;
	CHECK(off + ring_mem <= r->len);
	shm = (struct ml__ring_shm *)(r->area + off);
	w = which & 2 ? &shm->tail[lane] : &shm->head[lane];
	atomic_store(w, atomic_load(w) + (uint64_t)(int64_t)delta);
}

/* FZC_POKE_RING, topics: a lane of raw subscriber r's cursor moves. */
static void poke_cursor(struct raw *r, struct fz *f)
{
	unsigned lane = fz_u8(f) % ML_PRIO_COUNT;
	int8_t delta = (int8_t)fz_u8(f);
	_Atomic uint64_t *w;

	if (r->sock < 0)
		return;
	w = (_Atomic uint64_t *)(void *)(r->area + ML__PEER_TOPIC_OFF) + lane;
	atomic_store(w, atomic_load(w) + (uint64_t)(int64_t)delta * 8);
}

/* One of the publisher's calls; each must answer as ml_pub(3) says. */
static void pub_op(ml_pub *p, bool reliable, unsigned op, struct fz *f)
{
	static uint8_t buf[8192];
	int prio = (int)(fz_u8(f) % 4u) - (op & 1), err; /* now and then a bad one */
	size_t len = fz_len(fz_u8(f));
	struct ml_msg m[2] = { { .data = buf, .len = (uint32_t)len, .prio = prio },
			       { .data = buf, .len = 3, .prio = ML_PRIO_LOW } };
	void *at;

	switch (op % 5) {
	case 0:
		err = ml_pub_send(p, prio, buf, len);
		break;
	case 1:
		err = ml_pub_send_wait(p, prio, buf, len, 0);
		CHECK(err != -EAGAIN);
		if (err == -ETIMEDOUT)
			err = -EAGAIN;
		break;
	case 2:
		err = ml_pub_reserve(p, prio, len, &at);
		if (!err) {
			memset(at, 0x5a, len);
			err = ml_pub_commit(p, len / 2);
			CHECK(err == 0);
		}
		break;
	case 3:
		err = ml_pub_send_many(p, m, 2);
		CHECK(err != 0);
		if (err > 0)
			err = 0;
		break;
	default:
		err = ml_pub_subscribers(p);
		CHECK(err >= 0 && err <= (int)ML_CHAN_MAX_CLIENTS);
		err = ml_pub_backpressure(p) >= 0.0 && ml_pub_backpressure(p) <= 1.0 ? 0 : -1;
		CHECK(err == 0);
		break;
	}
	CHECK(err == 0 || err == -EMSGSIZE || err == -EINVAL || (reliable && err == -EAGAIN));
}

/* The real subscriber's read: an honest publisher's ring is never corrupt. */
static void sub_op(ml_sub *s)
{
	static uint8_t buf[8192];
	int n = ml_sub_recv(s, NULL, NULL, buf, sizeof(buf));

	CHECK(n >= 0 || n == -EAGAIN || n == -EPIPE);
}

/* Hostile subscribers against a real publisher. */
static void topic_input(const uint8_t *data, size_t size)
{
	struct ml_topic_opts o = { .size = sizeof(o), .backend = ML_BACKEND_LINUX };
	struct raw raw[ML_CHAN_MAX_CLIENTS];
	unsigned max_subs = 1 + (data[0] & 3u);
	bool reliable = data[0] & 0x80;
	uint32_t held = data[1] & ((1u << max_subs) - 1);
	struct fz f = { .p = data + 2, .n = size - 2 };
	ml_pub *p = NULL;
	ml_sub *s = NULL;
	int err;

	o.max_subs = max_subs;
	o.capacity = 4096u << ((data[0] >> 2) & 3u);
	o.policy = reliable ? ML_TOPIC_RELIABLE : ML_TOPIC_LOSSY;
	CHECK(ml_pub_create(&p, name, &o) == 0);
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		raw[i].sock = -1;
	for (unsigned i = 0; i < max_subs; i++)
		if (held & (1u << i)) {
			raw_join(&raw[i]);
			CHECK(raw[i].sock >= 0);
		}
	if (data[0] & 0x10) {
		err = ml_sub_open(&s, name, &o);
		CHECK(err == 0 || (err == -ECONNREFUSED && held == (1u << max_subs) - 1));
	}
	while (f.n) {
		unsigned op = fz_u8(&f) % FZC_NOPS, i;
		struct ml__peer *pe;

		switch (op) {
		case FZC_POKE:
			poke_areas(raw, max_subs, &f);
			break;
		case FZC_BELL:
			i = fz_u8(&f) % max_subs;
			if (raw[i].sock >= 0)
				raw_leave(&raw[i]);
			else
				raw_join(&raw[i]);
			break;
		case FZC_SLOT:
			i = fz_u8(&f) % max_subs;
			pe = raw[i].sock >= 0 ? (struct ml__peer *)raw[i].area : NULL;
			if (pe) {
				atomic_store(&pe->state, fz_u8(&f) % 5u);
				atomic_fetch_add(&pe->gen, 1);
			} else {
				fz_u8(&f);
			}
			break;
		case FZC_POKE_RING:
			poke_cursor(&raw[fz_u8(&f) % max_subs], &f);
			break;
		case FZC_CLIENT_RECV:
			if (s)
				sub_op(s);
			break;
		default:
			pub_op(p, reliable, op, &f);
			break;
		}
	}
	for (unsigned k = 0; s && k < 64; k++)
		sub_op(s);
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		raw_leave(&raw[i]);
	ml_sub_close(s);
	ml_pub_close(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ml_chan_opts o = { .size = sizeof(o), .backend = ML_BACKEND_LINUX };
	struct raw raw[ML_CHAN_MAX_CLIENTS];
	ml_chan *d = NULL, *cl = NULL;
	unsigned max_clients;
	size_t ring_mem;
	uint32_t held;
	struct fz f;
	int err;

	if (size < 2)
		return 0;
	name_once();
	if (data[0] & 0x40) {
		topic_input(data, size);
		return 0;
	}
	max_clients = 1 + (data[0] & 3u);
	o.max_clients = max_clients;
	o.ring_size = 256u << ((data[0] >> 2) & 3u);
	if (data[0] & 0x20)
		o.flags = ML_CHAN_EVENTS;
	ring_mem = ml_ring_mem_size(o.ring_size);
	held = data[1] & ((1u << max_clients) - 1);
	f = (struct fz){ .p = data + 2, .n = size - 2 };
	f.ids.events = data[0] & 0x20;

	CHECK(ml_daemon_create(&d, name, &o) == 0);
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		raw[i].sock = -1;
	for (unsigned i = 0; i < max_clients; i++)
		if (held & (1u << i)) {
			raw_join(&raw[i]);
			CHECK(raw[i].sock >= 0);
		}
	if (data[0] & 0x10) {
		err = ml_client_connect(&cl, name, &o);
		CHECK(err == 0 || (err == -ECONNREFUSED && held == (1u << max_clients) - 1));
	}

	while (f.n) {
		unsigned op = fz_u8(&f) % FZC_NOPS;
		struct ml__peer *p;
		unsigned i;
		double level;

		switch (op) {
		case FZC_POKE:
			poke_areas(raw, max_clients, &f);
			break;
		case FZC_BELL:
			/* A raw client leaves, or one joins (refused when full: fine). */
			i = fz_u8(&f) % max_clients;
			if (raw[i].sock >= 0)
				raw_leave(&raw[i]);
			else
				raw_join(&raw[i]);
			break;
		case FZC_SET_BP:
			/* Mostly -0.1 to 1.175, and the doubles that are no level. */
			i = fz_u8(&f);
			level = i == 255 ? NAN : i == 254 ? INFINITY : i == 253 ? -INFINITY :
				i / 200.0 - 0.1;
			err = ml_chan_set_backpressure(d, level);
			CHECK(err == 0 || (err == -EINVAL && !(level <= 1.0)));
			break;
		case FZC_SLOT:
			/* A raw client says what it likes about itself, and rings. */
			i = fz_u8(&f) % max_clients;
			p = raw[i].sock >= 0 ? (struct ml__peer *)raw[i].area : NULL;
			if (p) {
				atomic_store(&p->state, fz_u8(&f) % 5u);
				atomic_fetch_add(&p->gen, 1);
				atomic_fetch_add(&p->dseq, 1);
			} else {
				fz_u8(&f);
			}
			break;
		case FZC_POKE_RING:
			poke_ring(&raw[fz_u8(&f) % max_clients], ring_mem, &f);
			break;
		case FZC_CLIENT_SEND:
			if (cl)
				fz_chan_op(cl, false, 1, FZC_SEND, &f);
			break;
		case FZC_CLIENT_RECV:
			if (cl)
				fz_chan_op(cl, false, 1, FZC_RECV_MAX, &f);
			break;
		case FZC_SHUTDOWN:
			CHECK(ml_chan_shutdown(d) == 0);
			break;
		default:
			fz_chan_op(d, true, max_clients, op, &f);
			break;
		}
	}
	for (unsigned k = 0; k < 64; k++)
		fz_chan_op(d, true, max_clients, FZC_RECV_MAX, &f);

	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		raw_leave(&raw[i]);
	ml_chan_close(cl);
	ml_chan_close(d);
	return 0;
}

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

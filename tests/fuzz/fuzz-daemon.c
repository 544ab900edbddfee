// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a hostile client. A real daemon (linux backend, small
 * rings) serves a region that the harness maps too (the memfd an onlooker
 * gets on the channel's socket) and writes into as it pleases: control
 * region, slots, rings. The daemon must neither crash nor
 * touch memory outside its mapping (guard.c puts guard pages around it),
 * and every call must return what the API allows.
 *
 * Input: a byte of geometry (bits 0-1: clients - 1, bits 2-3: ring size
 * 256 << n, bit 4: connect a real client first), a byte of slots the
 * harness holds by raw clients that join on the socket and never attach
 * their rings (so that slots in use look alive), then
 * operations (enum fz_chan_op). A fresh daemon per input keeps runs
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

static void name_once(void)
{
	if (!name[0])
		snprintf(name, sizeof(name), "fzd-%d", (int)getpid());
}

/* FZC_POKE_RING: a head or tail of one of slot i's rings moves. */
static void poke_ring(uint8_t *region, size_t len, unsigned max_clients, size_t ring_mem,
		      struct fz *f)
{
	unsigned slot = fz_u8(f) % max_clients, which = fz_u8(f);
	size_t off = ML__CTL_SIZE + slot * 2 * ring_mem + (which & 1 ? ring_mem : 0);
	struct ml__ring_shm *shm = (struct ml__ring_shm *)(region + off);
	unsigned lane = (which >> 2) % ML_PRIO_COUNT;
	_Atomic uint64_t *w = which & 2 ? &shm->tail[lane] : &shm->head[lane];

	CHECK(off + ring_mem <= len);
	atomic_store(w, atomic_load(w) + (uint64_t)(int64_t)(int8_t)fz_u8(f));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ml_chan_opts o = { .size = sizeof(o), .backend = ML_BACKEND_LINUX };
	ml_chan *d = NULL, *cl = NULL;
	struct ml__ctl *ctl;
	unsigned max_clients;
	uint8_t *region;
	size_t ring_mem;
	struct stat st;
	uint32_t held;
	struct fz f;
	int fd, err, raw[ML_CHAN_MAX_CLIENTS];

	if (size < 2)
		return 0;
	name_once();
	max_clients = 1 + (data[0] & 3u);
	o.max_clients = max_clients;
	o.ring_size = 256u << ((data[0] >> 2) & 3u);
	ring_mem = ml_ring_mem_size(o.ring_size);
	held = data[1] & ((1u << max_clients) - 1);
	f = (struct fz){ data + 2, size - 2 };

	CHECK(ml_daemon_create(&d, name, &o) == 0);
	fd = fz_region_fd(name);
	CHECK(fd >= 0 && fstat(fd, &st) == 0);
	region = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(region != MAP_FAILED);
	ctl = (struct ml__ctl *)region;
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		raw[i] = -1;
	for (unsigned i = 0; i < max_clients; i++)
		if (held & (1u << i))
			CHECK((raw[i] = fz_join(name)) >= 0);
	if (data[0] & 0x10) {
		err = ml_client_connect(&cl, name, &o);
		CHECK(err == 0 || (err == -ECONNREFUSED && held == (1u << max_clients) - 1));
	}

	while (f.n) {
		unsigned op = fz_u8(&f) % FZC_NOPS;
		unsigned i;
		double level;

		switch (op) {
		case FZC_POKE:
			fz_poke(region, (size_t)st.st_size, &f);
			break;
		case FZC_BELL:
			/* A raw client leaves, or one joins (refused when full: fine). */
			i = fz_u8(&f) % max_clients;
			if (raw[i] >= 0) {
				close(raw[i]);
				raw[i] = -1;
			} else {
				raw[i] = fz_join(name);
			}
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
			i = fz_u8(&f) % max_clients;
			atomic_store(&ctl->slot[i].state, fz_u8(&f) % 5u);
			atomic_fetch_add(&ctl->slots_seq, 1);
			break;
		case FZC_POKE_RING:
			poke_ring(region, (size_t)st.st_size, max_clients, ring_mem, &f);
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
		if (raw[i] >= 0)
			close(raw[i]);
	ml_chan_close(cl);
	ml_chan_close(d);
	munmap(region, (size_t)st.st_size);
	close(fd);
	return 0;
}

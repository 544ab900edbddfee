// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as the whole shared region of a
 * channel, met by a client through the real linux backend.
 *
 * Input: a byte n, n bytes of operations (enum fz_chan_op), then the
 * region. The region becomes /dev/shm/memlink.fzc-PID, page-rounded (the
 * tail zeroed) and at most 1 MiB, and the harness holds the lock on its
 * byte 0, so the library sees a live daemon behind it. If
 * ml_client_connect() accepts the region, the operations drive the client
 * while the "daemon" (the harness) keeps writing into the region and may
 * let go of its lock. ml_chan_inspect() (memlink-stat) reads the region
 * before and after. Nothing may crash, and every call must return what the
 * API allows.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_REGION (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char name[32], path[48];

/* memlink-stat's view of the region: read without joining, only reported. */
static void inspect(void)
{
	struct ml_chan_status st = { .size = sizeof(st) };
	int err = ml_chan_inspect(name, ML_BACKEND_LINUX, &st);

	if (err) {
		CHECK(err == -ENOENT || err == -EPROTO);
		return;
	}
	CHECK(st.max_clients >= 1 && st.max_clients <= ML_CHAN_MAX_CLIENTS);
	CHECK(ml_ring_mem_size(st.ring_size) != 0);
	CHECK(st.backpressure >= 0.0 && st.backpressure <= 1.0);
	for (unsigned i = 0; i < st.max_clients; i++) {
		const struct ml_chan_client_status *cs = &st.client[i];

		CHECK(cs->alive <= 1 && cs->corrupt < 64 && cs->beat_age_ns >= -1);
		for (unsigned l = 0; l < ML_PRIO_COUNT; l++)
			CHECK(cs->req_used[l] <= cs->req_cap[l] &&
			      cs->resp_used[l] <= cs->resp_cap[l]);
	}
}

/* One object name per process: fuzzers may run side by side. */
static void name_once(void)
{
	if (!name[0]) {
		snprintf(name, sizeof(name), "fzc-%d", (int)getpid());
		snprintf(path, sizeof(path), "/memlink.%s", name);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ml_chan_opts o = { .size = sizeof(o), .backend = ML_BACKEND_LINUX };
	uint8_t *region = NULL;
	size_t nops, rlen, len;
	bool locked = true;
	ml_chan *c = NULL;
	struct fz f;
	int fd, err;

	if (size < 1)
		return 0;
	name_once();
	nops = data[0] < size - 1 ? data[0] : size - 1;
	f = (struct fz){ data + 1, nops };
	rlen = size - 1 - nops;
	if (rlen > MAX_REGION)
		rlen = MAX_REGION;
	len = (rlen + 4095) / 4096 * 4096;

	fd = shm_open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)len) == 0);
	if (len) {
		region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(region != MAP_FAILED);
		memcpy(region, data + 1 + nops, rlen);
	}
	CHECK(fz_lock(fd, 0, true) == 0);

	inspect();
	err = ml_client_connect(&c, name, &o);
	if (err) {
		CHECK(err == -ENOENT || err == -EPROTO || err == -ECONNREFUSED ||
		      err == -EPIPE);
		goto out;
	}
	CHECK(region != NULL);
	while (f.n) {
		unsigned op = fz_u8(&f) % FZC_CLIENT_NOPS;

		if (op == FZC_POKE) {
			fz_poke(region, len, &f);
		} else if (op == FZC_BELL) {
			/* The daemon dies (or, as far as locks go, comes back). */
			locked = !locked;
			CHECK(fz_lock(fd, 0, locked) == 0);
		} else {
			fz_chan_op(c, false, 1, op, &f);
		}
	}
	/* What is left reads out in bounded time. */
	for (unsigned i = 0; i < 64; i++)
		fz_chan_op(c, false, 1, FZC_RECV_MAX, &f);
	inspect();
out:
	ml_chan_close(c);
	if (region)
		munmap(region, len);
	close(fd); /* and with it the lock */
	shm_unlink(path);
	return 0;
}

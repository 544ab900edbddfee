// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as a ring's shared memory.
 *
 * Input: a byte n, n bytes of operations, then the ring memory (header and
 * data as ring_layout.h has them). The memory goes into a buffer of exactly
 * that size, so ASan sees any access past it. If ml_ring_attach() accepts
 * it, the operations drive one handle as consumer and as producer against
 * a peer that wrote the memory and keeps poking at it (indices, records)
 * between calls. Whatever the bytes, every call must return a documented
 * errno or a length within bounds, and every pointer it hands out must lie
 * inside the buffer.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "memlink.h"
#include "ring_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *mem;
static size_t mem_len;
static uint32_t capacity; /* of the ring attached */

/* Record bytes handed out must lie in the data area, past the header. */
static bool in_data(const void *p, size_t len)
{
	const uint8_t *b = p, *data = mem + ML__RING_HDR_SIZE;

	return b >= data && len <= capacity && (size_t)(b - data) <= capacity - len;
}

static int pick_prio(struct fz *f)
{
	return (int)(fz_u8(f) % 5) - 1; /* -1 and 3 are invalid on purpose */
}

static void check_info(ml_ring *r)
{
	struct ml_ring_info in;
	uint32_t sum = 0;

	CHECK(ml_ring_info(r, &in) == 0);
	CHECK(in.lanes == 1 || in.lanes == 3);
	CHECK(ml_ring_mem_size(in.capacity) && ml_ring_mem_size(in.capacity) <= mem_len);
	CHECK(in.max_msg > 0 && in.max_msg <= in.capacity);
	CHECK((in.poisoned & ~((1u << in.lanes) - 1)) == 0);
	CHECK(in.poisoned == ml_ring_poisoned(r));
	for (unsigned i = 0; i < ML_PRIO_COUNT; i++) {
		CHECK(in.lane_used[i] <= in.lane_capacity[i]);
		sum += in.lane_capacity[i];
	}
	CHECK(sum == in.capacity);
}

/* A read into a buffer of exactly `buflen` bytes: ASan catches overruns. */
static void do_read(ml_ring *r, size_t buflen, uint32_t max_msg)
{
	uint8_t *buf = malloc(buflen ? buflen : 1);
	int prio = -1;
	int n;

	CHECK(buf);
	n = ml_ring_read(r, &prio, buf, buflen);
	if (n >= 0)
		CHECK((size_t)n <= buflen && (uint32_t)n <= max_msg && prio >= 0 &&
		      prio < ML_PRIO_COUNT);
	else
		CHECK(n == -EAGAIN || n == -EMSGSIZE || n == -EBADMSG || n == -EBUSY);
	free(buf);
}

static void do_peek(ml_ring *r, uint32_t max_msg)
{
	const void *p = NULL;
	int prio = -1;
	int n = ml_ring_peek(r, &prio, &p);

	if (n >= 0) {
		CHECK((uint32_t)n <= max_msg && in_data(p, (size_t)n));
		CHECK(prio >= 0 && prio < ML_PRIO_COUNT);
	} else {
		CHECK(n == -EAGAIN || n == -EBADMSG);
	}
}

/* The peer scribbling on a head or tail, or on the data, between calls. */
static void poke_index(struct fz *f)
{
	struct ml__ring_shm *shm = (struct ml__ring_shm *)mem;
	unsigned k = fz_u8(f) % 6;
	_Atomic uint64_t *w = k < 3 ? &shm->head[k] : &shm->tail[k - 3];
	uint8_t how = fz_u8(f);

	/* Mostly small steps (a peer a little ahead or behind), some jumps. */
	if (how & 1)
		atomic_store(w, fz_u64(f));
	else
		atomic_store(w, atomic_load(w) + (uint64_t)(int64_t)(int8_t)fz_u8(f));
}

static void poke_data(struct fz *f)
{
	size_t off = fz_u16(f) % mem_len;
	uint8_t bytes[8];
	size_t n = mem_len - off < sizeof(bytes) ? mem_len - off : sizeof(bytes);

	for (unsigned i = 0; i < sizeof(bytes); i++)
		bytes[i] = fz_u8(f);
	memcpy(mem + off, bytes, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	struct ml_ring_info info;
	ml_ring *r = NULL;
	size_t nops;
	int err;

	if (size < 1)
		return 0;
	nops = data[0] < size - 1 ? data[0] : size - 1;
	f = (struct fz){ .p = data + 1, .n = nops };
	mem_len = size - 1 - nops;
	if (!mem_len)
		return 0;
	/* 128-byte aligned as attach requires; exactly mem_len usable bytes. */
	CHECK(posix_memalign((void **)&mem, ML__LINE, mem_len) == 0);
	memcpy(mem, data + 1 + nops, mem_len);

	err = ml_ring_attach(&r, mem, mem_len);
	if (err) {
		CHECK(err == -EPROTO || err == -EBADMSG ||
		      (err == -EINVAL && mem_len < ML__RING_HDR_SIZE));
		goto out;
	}
	check_info(r);
	ml_ring_info(r, &info);
	capacity = info.capacity;

	while (f.n) {
		void *p;
		size_t len;
		int prio;

		switch (fz_u8(&f) % FZR_NOPS) {
		case FZR_READ:
			do_read(r, (size_t)fz_u8(&f) * 8, info.max_msg);
			break;
		case FZR_READ_MAX:
			do_read(r, info.max_msg, info.max_msg);
			break;
		case FZR_PEEK:
			do_peek(r, info.max_msg);
			break;
		case FZR_RELEASE:
			err = ml_ring_release(r);
			CHECK(err == 0 || err == -EINVAL);
			break;
		case FZR_WRITE: {
			uint8_t buf[512];

			prio = pick_prio(&f);
			len = fz_u8(&f) * 2u;
			memset(buf, 0x5a, sizeof(buf));
			err = ml_ring_write(r, prio, buf, len);
			CHECK(err == 0 || err == -EINVAL || err == -EMSGSIZE ||
			      err == -EAGAIN || err == -EBADMSG);
			CHECK(err != 0 || (prio >= 0 && prio < ML_PRIO_COUNT));
			break;
		}
		case FZR_RESERVE:
			prio = pick_prio(&f);
			len = fz_u16(&f) % (2 * info.max_msg + 1);
			err = ml_ring_reserve(r, prio, len, &p);
			CHECK(err == 0 || err == -EINVAL || err == -EMSGSIZE ||
			      err == -EAGAIN || err == -EBADMSG);
			if (!err) {
				CHECK(len <= info.max_msg && in_data(p, len));
				memset(p, 0xa5, len);
			}
			break;
		case FZR_COMMIT:
			err = ml_ring_commit(r, fz_u16(&f) % (info.max_msg + 2));
			CHECK(err == 0 || err == -EINVAL);
			break;
		case FZR_INFO:
			check_info(r);
			break;
		case FZR_POKE_IDX:
		case FZR_POKE_IDX2:
			poke_index(&f);
			break;
		case FZR_POKE_DATA:
			poke_data(&f);
			break;
		case FZR_REATTACH:
			/* A second look at memory the peer has been changing. */
			ml_ring_free(r);
			r = NULL;
			err = ml_ring_attach(&r, mem, mem_len);
			if (err) {
				CHECK(err == -EPROTO || err == -EBADMSG);
				goto out;
			}
			ml_ring_info(r, &info);
			capacity = info.capacity;
			break;
		}
	}
	/* Whatever is left reads out, or poisons its lane, in bounded time. */
	for (unsigned i = 0; i < 64; i++)
		do_read(r, info.max_msg, info.max_msg);
	check_info(r);
out:
	ml_ring_free(r);
	free(mem);
	mem = NULL;
	return 0;
}

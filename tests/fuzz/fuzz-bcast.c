// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes against a broadcast ring (bcast.h).
 *
 * Input: a byte n, n bytes of operations, then the rest. The first
 * operation byte chooses the side:
 *  - even: the rest is the ring's shared memory for a reader, in a buffer of
 *    exactly that size (ASan sees any access past it). If attach accepts
 *    it, the operations read, peek, and poke at indices and data as a
 *    hostile writer would between calls; then the reader reads until it
 *    gets an error. Every answer must be a documented errno or a length
 *    within bounds, every view inside the data area.
 *  - odd: an honest writer on a fresh 1 KiB reliable ring, whose four
 *    cursors hold values from the rest of the input and are poked by the
 *    operations. The writer must only say 0, -EAGAIN, -EMSGSIZE, -EINVAL,
 *    report bad cursors among those live since its last report, and what it writes must
 *    read back without a single -EBADMSG.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <string.h>

#include "bcast.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WCAP 1024u

static bool in_data(const uint8_t *mem, size_t mem_len, const void *p, size_t len)
{
	const uint8_t *b = p;

	return b >= mem + ML__BCAST_HDR_SIZE && b <= mem + mem_len && len <= (size_t)(mem + mem_len - b);
}

static void check_answer(int n, uint32_t max_msg, size_t buflen)
{
	if (n >= 0)
		CHECK((uint32_t)n <= max_msg && (size_t)n <= buflen);
	else
		CHECK(n == -EAGAIN || n == -EMSGSIZE || n == -EBADMSG || n == -EBUSY);
}

static void reader_side(struct fz *f, const uint8_t *bytes, size_t len)
{
	alignas(128) struct ml__bcast_cursor cur;
	struct ml__bcast_reader *r = NULL;
	uint8_t *mem, *buf;
	uint32_t max_msg;
	int err;

	if (!len)
		return;
	CHECK(posix_memalign((void **)&mem, ML__LINE, len) == 0);
	memcpy(mem, bytes, len);
	err = ml__bcast_attach(&r, mem, len, fz_u8(f) & 1, &cur);
	if (err) {
		CHECK(err == -EPROTO || err == -EBADMSG ||
		      (err == -EINVAL && len < ML__BCAST_HDR_SIZE));
		free(mem);
		return;
	}
	max_msg = ((struct ml__bcast_shm *)mem)->max_msg; /* checked by attach */
	buf = malloc(max_msg);
	CHECK(buf);
	while (f->n) {
		struct ml__bcast_shm *shm = (struct ml__bcast_shm *)mem;
		const void *p;
		size_t bl;
		int n;

		switch (fz_u8(f) % 6) {
		case 0: /* a read into a buffer of exactly bl bytes */
			bl = fz_u8(f) * 4u % (max_msg + 1);
			n = ml__bcast_read(r, NULL, NULL, buf + (max_msg - bl), bl);
			check_answer(n, max_msg, bl);
			break;
		case 1:
			n = ml__bcast_peek(r, NULL, NULL, &p);
			check_answer(n, max_msg, max_msg);
			if (n >= 0)
				CHECK(in_data(mem, len, p, (size_t)n));
			break;
		case 2:
			n = ml__bcast_done(r);
			CHECK(n == 0 || n == -EINVAL || n == -ESTALE || n == -EBADMSG);
			break;
		case 3: { /* an index moves: a little, or anywhere */
			unsigned k = fz_u8(f) % 9;
			_Atomic uint64_t *w = k < 3 ? &shm->head[k] : k < 6 ? &shm->tail[k - 3]
							    : &shm->frontier[k - 6];
			uint8_t how = fz_u8(f);

			if (how & 1)
				atomic_store(w, fz_u64(f));
			else
				atomic_store(w, atomic_load(w) + (uint64_t)(int64_t)(int8_t)fz_u8(f) * 8);
			break;
		}
		case 4: { /* data bytes change */
			size_t off = (fz_u16(f) | (size_t)fz_u8(f) << 16) % len;

			for (unsigned i = 0; i < 8 && off + i < len; i++)
				mem[off + i] = fz_u8(f);
			break;
		}
		case 5:
			CHECK((ml__bcast_poisoned(r) & ~7u) == 0);
			(void)ml__bcast_lost(r, NULL);
			break;
		}
	}
	/* Whatever is left reads out or ends in an error, in bounded time. */
	for (unsigned i = 0; i < 4096; i++) {
		int n = ml__bcast_read(r, NULL, NULL, buf, max_msg);

		check_answer(n, max_msg, max_msg);
		if (n == -EBUSY)
			CHECK(ml__bcast_done(r) != -EINVAL);
		else if (n < 0)
			break;
	}
	free(buf);
	ml__bcast_reader_free(r);
	free(mem);
}

static void writer_side(struct fz *f, const uint8_t *bytes, size_t len)
{
	alignas(128) static struct ml__bcast_cursor cur[5];
	struct ml__bcast_cursor *ptr[4] = { &cur[0], &cur[1], &cur[2], &cur[3] };
	size_t mlen = ml__bcast_mem_size(WCAP);
	struct ml__bcast_writer *w = NULL;
	struct ml__bcast_reader *r = NULL;
	uint64_t live = 0xf, was_live = 0xf, sent = 0, got = 0;
	uint8_t *mem, msg[256];
	uint32_t max_msg;
	void *p;

	memset(cur, 0, sizeof(cur));
	memcpy(cur, bytes, len < 4 * sizeof(cur[0]) ? len : 4 * sizeof(cur[0]));
	CHECK(posix_memalign((void **)&mem, ML__LINE, mlen) == 0);
	CHECK(ml__bcast_init(&w, mem, mlen, WCAP, ML__BCAST_RELIABLE, 0) == 0);
	max_msg = ((struct ml__bcast_shm *)mem)->max_msg;
	CHECK(ml__bcast_set_cursors(w, live, ptr) == 0);
	memset(msg, 0x5a, sizeof(msg));
	while (f->n) {
		int prio, err;
		size_t l;

		switch (fz_u8(f) % 5) {
		case 0:
			prio = (int)(fz_u8(f) % 4);
			l = fz_u8(f);
			err = ml__bcast_send(w, prio, msg, l);
			CHECK(err == 0 || err == -EAGAIN || err == -EMSGSIZE || err == -EINVAL);
			CHECK(err || (prio < 3 && l <= max_msg));
			sent += !err;
			break;
		case 1:
			prio = (int)(fz_u8(f) % 3);
			l = fz_u8(f);
			err = ml__bcast_reserve(w, prio, l, &p);
			CHECK(err == 0 || err == -EAGAIN || err == -EMSGSIZE);
			if (!err) {
				CHECK(in_data(mem, mlen, p, l));
				memset(p, 0xa5, l);
				err = ml__bcast_commit(w, l);
				CHECK(!err);
				sent++;
			}
			break;
		case 2: /* a cursor changes: a little, or anywhere */
			if (fz_u8(f) & 1)
				atomic_store(&cur[fz_u8(f) % 4].next[fz_u8(f) % 3], fz_u64(f));
			else
				atomic_fetch_add(&cur[fz_u8(f) % 4].next[fz_u8(f) % 3], fz_u8(f) * 8u);
			break;
		case 3:
			live = fz_u8(f) & 0xf;
			was_live |= live;
			CHECK(ml__bcast_set_cursors(w, live, ptr) == 0);
			break;
		case 4: /* bad ones were live since the last look */
			CHECK((ml__bcast_bad_cursors(w) & ~was_live) == 0);
			was_live = live;
			break;
		}
	}
	/* What the writer wrote is all there for a reader from the oldest. */
	CHECK(ml__bcast_attach(&r, mem, mlen, ML__BCAST_JOIN_OLDEST, &cur[4]) == 0);
	for (;;) {
		int n = ml__bcast_read(r, NULL, NULL, msg, sizeof(msg));

		CHECK(n == -EAGAIN || (n >= 0 && (uint32_t)n <= max_msg));
		if (n < 0)
			break;
		got++;
	}
	CHECK(got <= sent && ml__bcast_poisoned(r) == 0);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	size_t nops;

	if (size < 2)
		return 0;
	nops = data[0] < size - 1 ? data[0] : size - 1;
	f = (struct fz){ .p = data + 1, .n = nops };
	if (fz_u8(&f) & 1)
		writer_side(&f, data + 1 + nops, size - 1 - nops);
	else
		reader_side(&f, data + 1 + nops, size - 1 - nops);
	return 0;
}

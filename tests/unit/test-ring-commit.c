// SPDX-License-Identifier: MIT
/*
 * A record's header commits it: a reader that waited for a record takes it
 * by its header, before the producer stores the head (or while the head is
 * held). That is only safe because the word where the next header goes
 * never holds a stale header, whatever the payloads and pads of earlier laps
 * left there (the producer's rule, ring_layout.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "memlink.h"
#include "ring_layout.h"
#include "testutil.h"

#define CAP 256u   /* one lane, max_msg 64: a lap every few records */
#define FIFO 64u

struct rig {
	ml_ring *r;
	uint8_t *mem;
	size_t len;
	struct ml__ring_shm *shm;
	uint32_t cap;
	/* What was written and not yet read, oldest first. */
	uint8_t want[FIFO][64];
	uint32_t want_len[FIFO];
	unsigned first, count;
	uint64_t written, read;
};

static void rig_init(struct rig *g, size_t cap)
{
	memset(g, 0, sizeof(*g));
	g->cap = (uint32_t)cap;
	g->len = ml_ring_mem_size(cap);
	g->mem = tu_shared_map(g->len);
	assert_non_null(g->mem);
	g->shm = (struct ml__ring_shm *)(void *)g->mem;
	assert_int_equal(ml_ring_init(&g->r, g->mem, g->len, cap, NULL), 0);
}

static void rig_fini(struct rig *g)
{
	assert_int_equal(ml_ring_poisoned(g->r), 0);
	ml_ring_free(g->r);
	tu_shared_unmap(g->mem, g->len);
}

/*
 * Write `len` bytes (a multiple of 8) whose every word is the header a
 * record one lap later would have at that word's position: a reader that
 * mistook a stale word for a header would take one of these. 0 or -EAGAIN.
 */
static int put_decoys(struct rig *g, uint32_t len)
{
	uint64_t head = atomic_load(&g->shm->head[0]);
	unsigned slot = (g->first + g->count) % FIFO;
	uint8_t *p;
	int err;

	assert_true(g->count < FIFO && len % 8 == 0 && len <= 64);
	err = ml_ring_reserve(g->r, ML_PRIO_LOW, len, (void **)&p);
	if (err)
		return err;
	for (uint32_t i = 0; i < len; i += 8) {
		uint32_t off = (uint32_t)(p + i - (g->mem + ML__RING_HDR_SIZE));
		/* The word's position: the one at that offset within a lap of the head. */
		uint64_t pos = head + (off - (uint32_t)(head % g->cap) + g->cap) % g->cap;
		uint64_t w = (uint64_t)ML__REC_TAG(pos + g->cap, ML__REC_DATA, ML_PRIO_LOW) << 32 | 8;

		memcpy(p + i, &w, 8);
	}
	memcpy(g->want[slot], p, len);
	g->want_len[slot] = len;
	assert_int_equal(ml_ring_commit(g->r, len), 0);
	g->count++;
	g->written++;
	return 0;
}

static void get_one(struct rig *g)
{
	uint8_t buf[64];
	int n;

	assert_true(g->count > 0);
	n = ml_ring_read(g->r, NULL, buf, sizeof(buf));
	if (n != (int)g->want_len[g->first])
		fail_msg("record %llu: read %d, want %u bytes", (unsigned long long)g->read, n,
			 g->want_len[g->first]);
	assert_memory_equal(buf, g->want[g->first], (size_t)n);
	g->first = (g->first + 1) % FIFO;
	g->count--;
	g->read++;
}

/* A look that finds nothing: the reader then goes by the next header. */
static void look_empty(struct rig *g)
{
	uint8_t buf[64];

	assert_int_equal(g->count, 0);
	assert_int_equal(ml_ring_read(g->r, NULL, buf, sizeof(buf)), -EAGAIN);
}

/*
 * Lap after lap of decoy payloads, pads and a lane filled to the last byte,
 * each record read by a reader that waited for it: every record arrives
 * once, whole, in order, and no decoy is ever taken for a header.
 */
static void test_stale_words_never_commit(void **state)
{
	struct rig g;
	uint64_t x = 12345;

	(void)state;
	rig_init(&g, CAP);
	for (int round = 0; round < 4000; round++) {
		uint32_t len;

		x = tu_mix(x);
		len = (uint32_t)(x % 9) * 8;
		look_empty(&g);
		switch (round % 4) {
		case 0:
		case 1: /* one record, waited for */
			assert_int_equal(put_decoys(&g, len), 0);
			get_one(&g);
			break;
		case 2: /* a few: the first by its header, the rest by the head */
			for (int k = 0; k < 3; k++)
				assert_int_equal(put_decoys(&g, (len + 8u * (uint32_t)k) % 72u), 0);
			while (g.count)
				get_one(&g);
			break;
		default: /* full to the last byte, where the producer cannot clear */
			while (put_decoys(&g, len) == 0)
				;
			/* then 8-byte records until not one more fits */
			while (put_decoys(&g, 0) == 0)
				;
			assert_int_equal(atomic_load(&g.shm->head[0]) - atomic_load(&g.shm->tail[0]),
					 CAP);
			while (g.count)
				get_one(&g);
			break;
		}
	}
	look_empty(&g);
	assert_int_equal(g.read, g.written);
	assert_true(atomic_load(&g.shm->head[0]) > 40 * CAP);
	rig_fini(&g);
}

/*
 * Under a held head the records are still committed, by their headers: a
 * waiting reader takes them, the producer's claims show none open, and a
 * head that lags the reader is not taken for corruption.
 */
static void test_header_before_head(void **state)
{
	struct rig g;
	struct ml_ring_info info;
	void *p;

	(void)state;
	rig_init(&g, 4096);
	look_empty(&g);
	ml__ring_hold_head(g.r, true);
	assert_int_equal(put_decoys(&g, 64), 0);
	assert_int_equal(atomic_load(&g.shm->head[0]), 0);
	get_one(&g);
	assert_int_equal(atomic_load(&g.shm->tail[0]), 72);
	/* The head lags the reader: empty, not corrupt, and nothing claimed. */
	look_empty(&g);
	assert_int_equal(ml_ring_info(g.r, &info), 0);
	assert_int_equal(info.lane_used[0], 0);
	assert_int_equal(ml__ring_claims(g.r), 0);
	assert_int_equal(put_decoys(&g, 8), 0);
	assert_int_equal(put_decoys(&g, 16), 0);
	assert_int_equal(ml__ring_claims(g.r), 0);
	/* A reservation left open is a claim no header commits. */
	assert_int_equal(ml_ring_reserve(g.r, ML_PRIO_LOW, 40, &p), 0);
	assert_int_equal(ml__ring_claims(g.r), 1u);
	assert_int_equal(ml_ring_commit(g.r, 0), 0);
	assert_int_equal(ml__ring_claims(g.r), 0);
	g.want_len[(g.first + g.count) % FIFO] = 0;
	g.count++;
	g.written++;
	ml__ring_hold_head(g.r, false);
	assert_int_equal(atomic_load(&g.shm->head[0]), 72 + 16 + 24 + 8);
	while (g.count)
		get_one(&g);
	look_empty(&g);

	/* Held through more than half a lane: the head is stored anyway. */
	ml__ring_hold_head(g.r, true);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(put_decoys(&g, 64), 0);
		get_one(&g);
	}
	assert_true(atomic_load(&g.shm->head[0]) >= 120 + 2048);
	ml__ring_hold_head(g.r, false);
	assert_int_equal(atomic_load(&g.shm->head[0]), atomic_load(&g.shm->tail[0]));
	rig_fini(&g);
}

/* A head moving backwards is still corruption, lagging or not. */
static void test_head_backwards_from_lag(void **state)
{
	struct rig g;
	uint8_t buf[64];

	(void)state;
	rig_init(&g, CAP);
	assert_int_equal(put_decoys(&g, 8), 0);
	get_one(&g);
	look_empty(&g);
	ml__ring_hold_head(g.r, true);
	assert_int_equal(put_decoys(&g, 8), 0);
	get_one(&g);
	look_empty(&g); /* the head (16) lags the reader (32) */
	atomic_store(&g.shm->head[0], 8);
	assert_int_equal(ml_ring_read(g.r, NULL, buf, sizeof(buf)), -EBADMSG);
	assert_int_equal(ml_ring_poisoned(g.r), 1u);
	ml_ring_free(g.r);
	tu_shared_unmap(g.mem, g.len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stale_words_never_commit),
		cmocka_unit_test(test_header_before_head),
		cmocka_unit_test(test_head_backwards_from_lag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Corrupt shared memory on purpose: bad heads, tails and record headers must
 * be caught before they are used, poison their lane (-EBADMSG from then on)
 * and leave healthy lanes readable.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memlink.h"
#include "ring_layout.h"
#include "testutil.h"

#define CAP 256u /* one lane: max_msg 64; three lanes: 48/128/80, max_msg 12 */

struct shm_ring {
	ml_ring *r;
	uint8_t *mem;
	size_t len;
	struct ml__ring_shm *shm;
};

static void shm_ring_init(struct shm_ring *s, size_t cap, uint32_t flags)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = flags };

	s->len = ml_ring_mem_size(cap);
	s->mem = tu_shared_map(s->len);
	assert_non_null(s->mem);
	s->shm = (struct ml__ring_shm *)(void *)s->mem;
	assert_int_equal(ml_ring_init(&s->r, s->mem, s->len, cap, &o), 0);
}

static void shm_ring_fini(struct shm_ring *s)
{
	ml_ring_free(s->r);
	tu_shared_unmap(s->mem, s->len);
}

/* Overwrite the record header at byte `off` of a lane. */
static void set_rec(struct shm_ring *s, unsigned lane, uint32_t off, uint32_t len, uint32_t tag)
{
	struct ml__rec h = { .len = len, .tag = tag };

	assert_true(off + sizeof(h) <= s->shm->lane_cap[lane]);
	memcpy(s->mem + ML__RING_HDR_SIZE + s->shm->lane_off[lane] + off, &h, sizeof(h));
}

static void set_len(struct shm_ring *s, unsigned lane, uint32_t off, uint32_t len)
{
	assert_true(off + 8 <= s->shm->lane_cap[lane]);
	memcpy(s->mem + ML__RING_HDR_SIZE + s->shm->lane_off[lane] + off, &len, sizeof(len));
}

static void put(ml_ring *r, int prio, size_t len, uint64_t seq)
{
	unsigned char buf[64];

	assert_true(len <= sizeof(buf));
	tu_fill(buf, len, (uint64_t)prio, seq);
	assert_int_equal(ml_ring_write(r, prio, buf, len), 0);
}

static void get(ml_ring *r, int prio, size_t len, uint64_t seq)
{
	unsigned char buf[64];
	int p = -1;

	assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), (int)len);
	assert_int_equal(p, prio);
	assert_int_equal(tu_check(buf, len, (uint64_t)prio, seq), 0);
}

/*
 * The state of a poisoned single-lane ring: every read, peek, write and
 * reserve says -EBADMSG, and info agrees.
 */
static void assert_lane0_dead(ml_ring *r)
{
	unsigned char buf[64] = { 0 };
	struct ml_ring_info info;
	const void *cp;
	void *p;

	assert_int_equal(ml_ring_poisoned(r), 1u);
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.poisoned, 1u);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ml_ring_read(r, NULL, buf, sizeof(buf)), -EBADMSG);
		assert_int_equal(ml_ring_peek(r, NULL, &cp), -EBADMSG);
		assert_int_equal(ml_ring_release(r), -EINVAL);
		assert_int_equal(ml_ring_write(r, i, buf, 1), -EBADMSG);
		assert_int_equal(ml_ring_reserve(r, i, 1, &p), -EBADMSG);
	}
}

/* Move both offsets to `off` (a multiple of 16) with 8-byte payloads. */
static void advance(ml_ring *r, uint32_t off)
{
	for (uint32_t i = 0; i < off / 16; i++) {
		put(r, ML_PRIO_LOW, 8, 1000 + i);
		get(r, ML_PRIO_LOW, 8, 1000 + i);
	}
}

/* A head more than a lane ahead of the tail. */
static void test_head_beyond_capacity(void **state)
{
	static const uint64_t extra[] = { CAP + 8, CAP + 16, 1ull << 40, UINT64_MAX - 7 };

	(void)state;
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		struct shm_ring s;

		shm_ring_init(&s, CAP, 0);
		advance(s.r, 48);
		atomic_store(&s.shm->head[0], 48 + extra[i]);
		assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
		assert_lane0_dead(s.r);
		shm_ring_fini(&s);
	}
}

/* A head that is not a multiple of 8. */
static void test_head_unaligned(void **state)
{
	struct shm_ring s;

	(void)state;
	shm_ring_init(&s, CAP, 0);
	put(s.r, ML_PRIO_HIGH, 8, 0);
	atomic_store(&s.shm->head[0], 20);
	assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
	assert_lane0_dead(s.r);
	shm_ring_fini(&s);
}

/* A head that moved back behind the reader's tail. */
static void test_head_backwards(void **state)
{
	static const uint64_t back[] = { 8, 16, 112 };

	(void)state;
	for (size_t i = 0; i < sizeof(back) / sizeof(back[0]); i++) {
		struct shm_ring s;

		shm_ring_init(&s, CAP, 0);
		advance(s.r, 112);
		atomic_store(&s.shm->head[0], 112 - back[i]);
		assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
		assert_lane0_dead(s.r);
		shm_ring_fini(&s);
	}
}

/*
 * The producer re-reads the tail when the lane looks full: a tail ahead of
 * the head, behind the last one seen, or unaligned poisons the lane.
 */
static void test_producer_detects_bad_tail(void **state)
{
	(void)state;
	for (int c = 0; c < 4; c++) {
		struct shm_ring s;
		unsigned char b[8] = { 0 };
		uint64_t bad;

		shm_ring_init(&s, CAP, 0);
		advance(s.r, 64);
		/* Full: 16 records of 16 bytes, head 64 + 256, tail 64. */
		for (uint32_t i = 0; i < 16; i++)
			put(s.r, ML_PRIO_LOW, 8, i);
		/* A healthy full lane is just full. */
		assert_int_equal(ml_ring_write(s.r, ML_PRIO_LOW, b, 8), -EAGAIN);
		assert_int_equal(ml_ring_poisoned(s.r), 0);
		switch (c) {
		case 0: bad = 64 + CAP + 8; break; /* ahead of the head */
		case 1: bad = 56; break;           /* moved backwards */
		case 2: bad = 68; break;           /* unaligned */
		default: bad = 0; break;           /* back to zero */
		}
		atomic_store(&s.shm->tail[0], bad);
		assert_int_equal(ml_ring_write(s.r, ML_PRIO_LOW, b, 8), -EBADMSG);
		assert_lane0_dead(s.r);
		shm_ring_fini(&s);
	}
}

/* A tail that moved forward legally is not mistaken for corruption. */
static void test_producer_accepts_good_tail(void **state)
{
	struct shm_ring s;
	unsigned char b[8] = { 0 };

	(void)state;
	shm_ring_init(&s, CAP, 0);
	for (uint32_t i = 0; i < 16; i++)
		put(s.r, ML_PRIO_LOW, 8, i);
	assert_int_equal(ml_ring_write(s.r, ML_PRIO_LOW, b, 8), -EAGAIN);
	/* Another consumer (here: the test) released everything. */
	atomic_store(&s.shm->tail[0], CAP);
	assert_int_equal(ml_ring_write(s.r, ML_PRIO_LOW, b, 8), 0);
	assert_int_equal(ml_ring_poisoned(s.r), 0);
	shm_ring_fini(&s);
}

/* Record headers: bad tag, unknown type, len above max_msg, prio > 2. */
static void test_bad_record_header(void **state)
{
	static const struct {
		uint32_t len, tag;
	} bad[] = {
		{ 8, 0xdeadbeefu },                            /* not a tag */
		{ 8, 0 },                                      /* zeroed */
		{ 8, 0x1234d101u },        /* data type and prio, bad magic half */
		{ 8, ML__REC_TAG(0, ML__REC_DATA, 1) },        /* another position */
		{ 8, ML__REC_TAG(32 + CAP, ML__REC_DATA, 1) }, /* the next lap's */
		{ 8, ML__REC_TAG(32, ML__REC_DATA, 3) },       /* no such prio */
		{ 65, ML__REC_TAG(32, ML__REC_DATA, 1) },      /* > max_msg */
		{ UINT32_MAX, ML__REC_TAG(32, ML__REC_DATA, 1) },
		{ 40, ML__REC_TAG(32, ML__REC_DATA, 1) },      /* past the head */
		{ 8, ML__REC_TAG(32, ML__REC_PAD, 0) },        /* pad not at end */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shm_ring s;

		shm_ring_init(&s, CAP, 0);
		advance(s.r, 32);
		put(s.r, ML_PRIO_HIGH, 8, 0);
		set_rec(&s, 0, 32, bad[i].len, bad[i].tag);
		/* A good record behind it is never reached. */
		put(s.r, ML_PRIO_HIGH, 8, 1);
		{
			unsigned char buf[64];

			if (ml_ring_read(s.r, NULL, buf, sizeof(buf)) != -EBADMSG)
				fail_msg("case %zu not caught", i);
		}
		assert_lane0_dead(s.r);
		shm_ring_fini(&s);
	}
}

/* A record whose length would run it past the lane end. */
static void test_record_crosses_end(void **state)
{
	struct shm_ring s;

	(void)state;
	shm_ring_init(&s, CAP, 0);
	advance(s.r, 240);
	put(s.r, ML_PRIO_LOW, 8, 0);  /* 240..256 */
	put(s.r, ML_PRIO_LOW, 8, 1);  /* 0..16 */
	/* 24 bytes at 240: within the 32 published, but across the end. */
	set_len(&s, 0, 240, 24);
	assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
	assert_lane0_dead(s.r);
	shm_ring_fini(&s);
}

/* Pad records: wrong length, published alone, or followed by garbage. */
static void test_bad_pad(void **state)
{
	(void)state;
	for (int c = 0; c < 6; c++) {
		struct shm_ring s;

		shm_ring_init(&s, CAP, 0);
		advance(s.r, 240);
		/* A 24-byte record: pad 240..256, record 0..24. */
		put(s.r, ML_PRIO_LOW, 16, 0);
		switch (c) {
		case 0: /* pad shorter than the gap */
			set_rec(&s, 0, 240, 0, ML__REC_TAG(240, ML__REC_PAD, 0));
			break;
		case 1: /* pad longer than the gap */
			set_rec(&s, 0, 240, 16, ML__REC_TAG(240, ML__REC_PAD, 0));
			break;
		case 2: /* garbage where the record should be */
			set_rec(&s, 0, 0, 16, 0x12345678u);
			break;
		case 3: /* a data type and prio, but not a tag */
			set_rec(&s, 0, 0, 16, 0x1234d102u);
			break;
		case 4: /* a second pad at offset 0 */
			set_rec(&s, 0, 0, CAP - 8, ML__REC_TAG(256, ML__REC_PAD, 0));
			break;
		default: /* the head covers the pad only */
			atomic_store(&s.shm->head[0], 256);
			break;
		}
		if (ml_ring_read(s.r, NULL, NULL, 0) != -EBADMSG)
			fail_msg("pad case %d not caught", c);
		assert_lane0_dead(s.r);
		shm_ring_fini(&s);
	}
}

/* Zero-copy peek sees the same checks; nothing is left outstanding. */
static void test_peek_corrupt(void **state)
{
	struct shm_ring s;
	const void *cp = NULL;

	(void)state;
	shm_ring_init(&s, CAP, 0);
	put(s.r, ML_PRIO_LOW, 8, 0);
	set_len(&s, 0, 0, 65);
	assert_int_equal(ml_ring_peek(s.r, NULL, &cp), -EBADMSG);
	assert_null(cp);
	assert_int_equal(ml_ring_release(s.r), -EINVAL);
	assert_lane0_dead(s.r);
	shm_ring_fini(&s);
}

/* A single-lane ring stays dead even when good records follow. */
static void test_single_lane_stays_poisoned(void **state)
{
	struct shm_ring s;
	unsigned char buf[64];

	(void)state;
	shm_ring_init(&s, CAP, 0);
	put(s.r, ML_PRIO_LOW, 8, 0);
	set_rec(&s, 0, 0, 8, 0);
	assert_int_equal(ml_ring_read(s.r, NULL, buf, sizeof(buf)), -EBADMSG);
	/* Repair the header behind the library's back: still poisoned. */
	set_rec(&s, 0, 0, 8, ML__REC_TAG(0, ML__REC_DATA, ML_PRIO_LOW));
	assert_lane0_dead(s.r);
	/* The shared indices were not touched by the failed calls. */
	assert_int_equal(atomic_load(&s.shm->head[0]), 16);
	assert_int_equal(atomic_load(&s.shm->tail[0]), 0);
	shm_ring_fini(&s);
}

/* Three lanes: a record with another lane's priority poisons its lane. */
static void test_wrong_prio_for_lane(void **state)
{
	static const struct {
		unsigned lane;
		uint32_t prio;
	} cases[] = { { 0, 1 }, { 0, 2 }, { 1, 0 }, { 1, 2 }, { 2, 0 }, { 2, 1 } };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned lane = cases[i].lane;
		struct shm_ring s;
		int p = -1;

		shm_ring_init(&s, CAP, ML_RING_LANES3);
		put(s.r, (int)lane, 8, 0);
		set_rec(&s, lane, 0, 8, ML__REC_TAG(0, ML__REC_DATA, cases[i].prio));
		assert_int_equal(ml_ring_read(s.r, &p, NULL, 0), -EBADMSG);
		assert_int_equal(ml_ring_poisoned(s.r), 1u << lane);
		assert_int_equal(ml_ring_write(s.r, (int)lane, NULL, 0), -EBADMSG);
		/* The other lanes still work end to end. */
		for (unsigned l = 0; l < 3; l++) {
			if (l == lane)
				continue;
			put(s.r, (int)l, 8, 10 + l);
			get(s.r, (int)l, 8, 10 + l);
		}
		assert_int_equal(ml_ring_read(s.r, &p, NULL, 0), -EBADMSG);
		shm_ring_fini(&s);
	}
}

/*
 * Three lanes, Critical corrupt: the healthy lanes deliver all their
 * records in order, then reads return -EBADMSG rather than -EAGAIN.
 */
static void test_three_lanes_others_deliver(void **state)
{
	struct shm_ring s;
	struct ml_ring_info info;
	unsigned char buf[64] = { 0 };

	(void)state;
	shm_ring_init(&s, CAP, ML_RING_LANES3);
	put(s.r, ML_PRIO_CRITICAL, 8, 0);
	put(s.r, ML_PRIO_HIGH, 8, 0);
	put(s.r, ML_PRIO_LOW, 8, 0);
	put(s.r, ML_PRIO_HIGH, 8, 1);
	put(s.r, ML_PRIO_CRITICAL, 8, 1);
	set_rec(&s, ML_PRIO_CRITICAL, 0, 8, 0xbadbadu);

	assert_int_equal(ml_ring_read(s.r, NULL, buf, sizeof(buf)), -EBADMSG);
	assert_int_equal(ml_ring_poisoned(s.r), 1u << ML_PRIO_CRITICAL);
	get(s.r, ML_PRIO_HIGH, 8, 0);
	get(s.r, ML_PRIO_HIGH, 8, 1);
	get(s.r, ML_PRIO_LOW, 8, 0);
	assert_int_equal(ml_ring_read(s.r, NULL, buf, sizeof(buf)), -EBADMSG);
	assert_int_equal(ml_ring_read(s.r, NULL, buf, sizeof(buf)), -EBADMSG);

	/* Writes: refused on the dead lane only. */
	assert_int_equal(ml_ring_write(s.r, ML_PRIO_CRITICAL, buf, 1), -EBADMSG);
	put(s.r, ML_PRIO_LOW, 8, 1);
	get(s.r, ML_PRIO_LOW, 8, 1);
	assert_int_equal(ml_ring_read(s.r, NULL, buf, sizeof(buf)), -EBADMSG);
	assert_int_equal(ml_ring_info(s.r, &info), 0);
	assert_int_equal(info.poisoned, 1u << ML_PRIO_CRITICAL);
	shm_ring_fini(&s);
}

/*
 * Three lanes: Critical's next header is corrupt while Low has records the
 * reader already knows of. The header does not look like a record, so Low
 * is served first, but once Low runs dry the head says Critical has data
 * and the corruption is reported.
 */
static void test_three_lanes_corrupt_behind_cache(void **state)
{
	struct shm_ring s;

	(void)state;
	shm_ring_init(&s, CAP, ML_RING_LANES3);
	put(s.r, ML_PRIO_LOW, 8, 0);
	put(s.r, ML_PRIO_LOW, 8, 1);
	get(s.r, ML_PRIO_LOW, 8, 0);  /* Low's record 1 is cached */
	put(s.r, ML_PRIO_CRITICAL, 8, 0);
	set_rec(&s, ML_PRIO_CRITICAL, 0, 8, 0xbadbadu);
	get(s.r, ML_PRIO_LOW, 8, 1);
	assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
	assert_int_equal(ml_ring_poisoned(s.r), 1u << ML_PRIO_CRITICAL);
	put(s.r, ML_PRIO_HIGH, 8, 0);
	get(s.r, ML_PRIO_HIGH, 8, 0);
	shm_ring_fini(&s);
}

/*
 * Three lanes, High's head corrupt: strict priority reaches High only after
 * Critical is empty; Low then still delivers.
 */
static void test_three_lanes_bad_head(void **state)
{
	struct shm_ring s;

	(void)state;
	shm_ring_init(&s, CAP, ML_RING_LANES3);
	put(s.r, ML_PRIO_CRITICAL, 8, 0);
	put(s.r, ML_PRIO_LOW, 8, 0);
	put(s.r, ML_PRIO_HIGH, 8, 0);
	atomic_store(&s.shm->head[ML_PRIO_HIGH], 128 + 8); /* lane is 128 */

	get(s.r, ML_PRIO_CRITICAL, 8, 0);
	assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
	assert_int_equal(ml_ring_poisoned(s.r), 1u << ML_PRIO_HIGH);
	get(s.r, ML_PRIO_LOW, 8, 0);
	assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
	put(s.r, ML_PRIO_CRITICAL, 8, 1);
	get(s.r, ML_PRIO_CRITICAL, 8, 1);

	/* A second lane goes bad: both bits. */
	put(s.r, ML_PRIO_LOW, 8, 1);
	set_len(&s, ML_PRIO_LOW, 16, 13); /* max_msg is 12 */
	assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
	assert_int_equal(ml_ring_poisoned(s.r), (1u << ML_PRIO_HIGH) | (1u << ML_PRIO_LOW));
	put(s.r, ML_PRIO_CRITICAL, 8, 2);
	get(s.r, ML_PRIO_CRITICAL, 8, 2);
	assert_int_equal(ml_ring_read(s.r, NULL, NULL, 0), -EBADMSG);
	shm_ring_fini(&s);
}

/*
 * Poison belongs to the handle that found it: an attached reader is poisoned,
 * the producer's handle is not and keeps writing until the lane is full.
 */
static void test_poison_per_handle(void **state)
{
	struct shm_ring s;
	ml_ring *reader = NULL;
	unsigned n = 0;

	(void)state;
	shm_ring_init(&s, CAP, 0);
	assert_int_equal(ml_ring_attach(&reader, s.mem, s.len), 0);
	put(s.r, ML_PRIO_LOW, 8, 0);
	set_rec(&s, 0, 0, 8, ML__REC_TAG(0, ML__REC_DATA, 3));
	assert_int_equal(ml_ring_read(reader, NULL, NULL, 0), -EBADMSG);
	assert_lane0_dead(reader);
	assert_int_equal(ml_ring_poisoned(s.r), 0);
	while (ml_ring_write(s.r, ML_PRIO_LOW, NULL, 0) == 0)
		n++;
	assert_int_equal(n, (CAP - 16) / 8);
	assert_int_equal(ml_ring_poisoned(s.r), 0);
	ml_ring_free(reader);
	shm_ring_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_beyond_capacity),
		cmocka_unit_test(test_head_unaligned),
		cmocka_unit_test(test_head_backwards),
		cmocka_unit_test(test_producer_detects_bad_tail),
		cmocka_unit_test(test_producer_accepts_good_tail),
		cmocka_unit_test(test_bad_record_header),
		cmocka_unit_test(test_record_crosses_end),
		cmocka_unit_test(test_bad_pad),
		cmocka_unit_test(test_peek_corrupt),
		cmocka_unit_test(test_single_lane_stays_poisoned),
		cmocka_unit_test(test_wrong_prio_for_lane),
		cmocka_unit_test(test_three_lanes_others_deliver),
		cmocka_unit_test(test_three_lanes_corrupt_behind_cache),
		cmocka_unit_test(test_three_lanes_bad_head),
		cmocka_unit_test(test_poison_per_handle),
	};

	return cmocka_run_group_tests_name("test-ring-poison", tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * A ring running full and wrapping around: how many records fit, space coming
 * back after a read, the pad record in front of a record that would cross the
 * lane end, a record that ends exactly at the lane end, and long runs of
 * traffic checked against a model of the layout rules in ring_layout.h.
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

#define CAP 256u /* one lane of 256 bytes: max_msg is 64 */

/* Header plus payload rounded up to 8, as ring_layout.h describes. */
static uint32_t rec_bytes(size_t len)
{
	return 8u + (uint32_t)((len + 7) & ~(size_t)7);
}

static uint32_t used(ml_ring *r, unsigned lane)
{
	struct ml_ring_info info;

	assert_int_equal(ml_ring_info(r, &info), 0);
	return info.lane_used[lane];
}

/* A ring laid out in memory the test can look into. */
struct shm_ring {
	ml_ring *r;
	uint8_t *mem;
	size_t len;
};

static void shm_ring_init(struct shm_ring *s, size_t cap, const struct ml_ring_opts *opts)
{
	s->len = ml_ring_mem_size(cap);
	assert_true(s->len > 0);
	s->mem = tu_shared_map(s->len);
	assert_non_null(s->mem);
	assert_int_equal(ml_ring_init(&s->r, s->mem, s->len, cap, opts), 0);
}

static void shm_ring_fini(struct shm_ring *s)
{
	ml_ring_free(s->r);
	tu_shared_unmap(s->mem, s->len);
}

/* The record header at byte `off` of lane `lane`. */
static struct ml__rec rec_at(const struct shm_ring *s, unsigned lane, uint32_t off)
{
	const struct ml__ring_shm *shm = (const void *)s->mem;
	struct ml__rec h;

	assert_true(off + sizeof(h) <= shm->lane_cap[lane]);
	memcpy(&h, s->mem + ML__RING_HDR_SIZE + shm->lane_off[lane] + off, sizeof(h));
	return h;
}

/* Write `len` bytes of stream/seq data; returns what ml_ring_write returned. */
static int put(ml_ring *r, int prio, size_t len, uint64_t stream, uint64_t seq)
{
	unsigned char buf[4096];

	assert_true(len <= sizeof(buf));
	tu_fill(buf, len, stream, seq);
	return ml_ring_write(r, prio, buf, len);
}

/* Read one record and check it is exactly stream/seq of `len` bytes. */
static void get(ml_ring *r, int prio, size_t len, uint64_t stream, uint64_t seq)
{
	unsigned char buf[4096];
	int p = -1;

	assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), (int)len);
	assert_int_equal(p, prio);
	assert_int_equal(tu_check(buf, len, stream, seq), 0);
}

/* Fill an empty ring with one record size: exactly cap / record fit. */
static void test_fill_count(void **state)
{
	static const struct {
		size_t len;
		unsigned fit;
	} cases[] = {
		{ 0, 32 },  /* 8-byte records */
		{ 1, 16 },  /* 16 */
		{ 8, 16 },  /* 16 */
		{ 9, 10 },  /* 24: 240 bytes, the 16 left cannot take pad + record */
		{ 24, 8 },  /* 32 */
		{ 57, 3 },  /* 72 */
		{ 64, 3 },  /* 72 */
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t len = cases[c].len;
		unsigned n = 0;
		ml_ring *r = NULL;
		int err;

		assert_int_equal(ml_ring_new(&r, CAP, NULL), 0);
		while ((err = put(r, (int)(n % 3), len, c, n)) == 0) {
			n++;
			assert_true(n <= CAP / 8);
		}
		assert_int_equal(err, -EAGAIN);
		assert_int_equal(n, cases[c].fit);
		assert_int_equal(used(r, 0), n * rec_bytes(len));
		/* Still full on a second try; nothing was lost. */
		assert_int_equal(put(r, 0, len, c, 999), -EAGAIN);
		for (unsigned i = 0; i < n; i++)
			get(r, (int)(i % 3), len, c, i);
		assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
		assert_int_equal(used(r, 0), 0);
		ml_ring_free(r);
	}
}

/* Reading one record from a full ring makes room for exactly one more. */
static void test_read_one_write_one(void **state)
{
	ml_ring *r = NULL;
	unsigned seq;

	(void)state;
	assert_int_equal(ml_ring_new(&r, CAP, NULL), 0);
	for (seq = 0; seq < 16; seq++)
		assert_int_equal(put(r, 1, 8, 7, seq), 0);
	assert_int_equal(put(r, 1, 8, 7, seq), -EAGAIN);
	assert_int_equal(used(r, 0), CAP);

	/* Steady state: one out, one in, always full. */
	for (unsigned i = 0; i < 40; i++) {
		get(r, 1, 8, 7, i);
		assert_int_equal(put(r, 1, 8, 7, seq), 0);
		seq++;
		assert_int_equal(put(r, 1, 8, 7, seq), -EAGAIN);
		assert_int_equal(used(r, 0), CAP);
	}
	for (unsigned i = 40; i < seq; i++)
		get(r, 1, 8, 7, i);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/*
 * Freed space must hold the pad and the record: with 24-byte records, ten
 * fill 240 bytes; one read frees 24 bytes at the front, which with the
 * 16-byte pad at the end is exactly the 40 the next record needs.
 */
static void test_pad_needs_room(void **state)
{
	ml_ring *r = NULL;

	(void)state;
	assert_int_equal(ml_ring_new(&r, CAP, NULL), 0);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(put(r, 2, 9, 8, i), 0);
	assert_int_equal(put(r, 2, 9, 8, 10), -EAGAIN);
	get(r, 2, 9, 8, 0);
	assert_int_equal(used(r, 0), 9 * 24);
	/* Now 16 + 24 bytes are free: pad 16 + record 24 fits exactly. */
	assert_int_equal(put(r, 2, 9, 8, 10), 0);
	assert_int_equal(used(r, 0), CAP);
	assert_int_equal(put(r, 2, 0, 8, 11), -EAGAIN);
	for (unsigned i = 1; i <= 10; i++)
		get(r, 2, 9, 8, i);
	assert_int_equal(used(r, 0), 0);
	ml_ring_free(r);
}

/* The pad record's layout: a pad header up to the end, the record at 0. */
static void test_pad_layout(void **state)
{
	struct shm_ring s;
	struct ml__rec h;

	(void)state;
	shm_ring_init(&s, CAP, NULL);
	/* Move the write and read offsets to 240. */
	for (unsigned i = 0; i < 15; i++) {
		assert_int_equal(put(s.r, 0, 8, 9, i), 0);
		get(s.r, 0, 8, 9, i);
	}
	/* A 24-byte record does not fit in the last 16 bytes. */
	assert_int_equal(put(s.r, ML_PRIO_LOW, 16, 9, 100), 0);
	assert_int_equal(used(s.r, 0), 16 + 24);
	h = rec_at(&s, 0, 240);
	assert_int_equal(h.tag, ML__REC_TAG(240, ML__REC_PAD, 0));
	assert_int_equal(h.len, 8);
	h = rec_at(&s, 0, 0);
	assert_int_equal(h.tag, ML__REC_TAG(256, ML__REC_DATA, ML_PRIO_LOW));
	assert_int_equal(h.len, 16);
	assert_int_equal(tu_check(s.mem + ML__RING_HDR_SIZE + 8, 16, 9, 100), 0);
	/* The reader skips the pad and gets the record. */
	get(s.r, ML_PRIO_LOW, 16, 9, 100);
	assert_int_equal(used(s.r, 0), 0);
	/* The next record follows it at 24. */
	assert_int_equal(put(s.r, ML_PRIO_HIGH, 3, 9, 101), 0);
	h = rec_at(&s, 0, 24);
	assert_int_equal(h.tag, ML__REC_TAG(280, ML__REC_DATA, ML_PRIO_HIGH));
	assert_int_equal(h.len, 3);
	get(s.r, ML_PRIO_HIGH, 3, 9, 101);
	shm_ring_fini(&s);
}

/* A record that ends exactly at the lane end needs no pad; the next is at 0. */
static void test_exact_fit(void **state)
{
	struct shm_ring s;
	struct ml__rec h;

	(void)state;
	shm_ring_init(&s, CAP, NULL);
	/* Offsets to 184: a 64-byte payload (72-byte record) ends at 256. */
	for (unsigned i = 0; i < 23; i++) {
		assert_int_equal(put(s.r, 0, 0, 10, i), 0);
		get(s.r, 0, 0, 10, i);
	}
	assert_int_equal(put(s.r, ML_PRIO_HIGH, 64, 10, 1), 0);
	assert_int_equal(used(s.r, 0), 72);
	h = rec_at(&s, 0, 184);
	assert_int_equal(h.tag, ML__REC_TAG(184, ML__REC_DATA, ML_PRIO_HIGH));
	assert_int_equal(h.len, 64);

	assert_int_equal(put(s.r, ML_PRIO_LOW, 5, 10, 2), 0);
	assert_int_equal(used(s.r, 0), 72 + 16);
	h = rec_at(&s, 0, 0);
	assert_int_equal(h.tag, ML__REC_TAG(256, ML__REC_DATA, ML_PRIO_LOW));
	assert_int_equal(h.len, 5);

	get(s.r, ML_PRIO_HIGH, 64, 10, 1);
	get(s.r, ML_PRIO_LOW, 5, 10, 2);
	assert_int_equal(used(s.r, 0), 0);

	/* And the whole lane exactly: 16 records of 16 bytes, no gap. */
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(put(s.r, 0, 8, 11, i), 0);
	assert_int_equal(used(s.r, 0), CAP);
	assert_int_equal(put(s.r, 0, 0, 11, 16), -EAGAIN);
	for (unsigned i = 0; i < 16; i++)
		get(s.r, 0, 8, 11, i);
	shm_ring_fini(&s);
}

/*
 * A model of one lane: offsets, fill level and whether a write needs a pad,
 * from the rules in ring_layout.h. The ring must agree on every step.
 */
struct lane_model {
	uint32_t cap;
	uint64_t head, tail;
	unsigned pads;
	/* FIFO of (len, seq) */
	size_t q_len[512];
	uint64_t q_seq[512];
	unsigned q_first, q_n;
};

/* Returns the expected result of writing a `len`-byte record. */
static int model_write(struct lane_model *m, size_t len, uint64_t seq)
{
	uint32_t rec = rec_bytes(len);
	uint32_t woff = (uint32_t)(m->head % m->cap);
	uint32_t skip = rec <= m->cap - woff ? 0 : m->cap - woff;

	if (m->head - m->tail + skip + rec > m->cap)
		return -EAGAIN;
	m->pads += skip != 0;
	m->head += skip + rec;
	assert_true(m->q_n < 512);
	m->q_len[(m->q_first + m->q_n) % 512] = len;
	m->q_seq[(m->q_first + m->q_n) % 512] = seq;
	m->q_n++;
	return 0;
}

/* Pops the expected next record; the model's tail moves past its pad. */
static void model_read(struct lane_model *m, size_t *len, uint64_t *seq)
{
	uint32_t rec, roff = (uint32_t)(m->tail % m->cap);

	assert_true(m->q_n > 0);
	*len = m->q_len[m->q_first];
	*seq = m->q_seq[m->q_first];
	m->q_first = (m->q_first + 1) % 512;
	m->q_n--;
	rec = rec_bytes(*len);
	if (rec > m->cap - roff)
		m->tail += m->cap - roff;
	m->tail += rec;
}

struct wrap_stats {
	uint64_t delivered, refused;
	unsigned pads;
};

/*
 * Many write/read cycles whose sizes make records straddle the lane end;
 * the ring must accept and refuse exactly what the model does and return
 * every record, in order, with its bytes.
 */
static struct wrap_stats run_wrap(ml_ring *r, unsigned lane, int prio, uint32_t cap,
				  uint32_t max_msg, uint64_t stream, unsigned steps)
{
	static struct lane_model m;
	struct wrap_stats st = { 0 };
	uint64_t seq = 0, s;
	size_t len;

	memset(&m, 0, sizeof(m));
	m.cap = cap;
	for (unsigned i = 0; i < steps; i++) {
		uint64_t x = tu_mix(stream * 1000003 + i);

		/* Bias to writes so the ring runs full; drain now and then. */
		if (x % 5 < 3) {
			int want;

			len = (size_t)((x >> 16) % (max_msg + 1));
			want = model_write(&m, len, seq);
			assert_int_equal(put(r, prio, len, stream, seq), want);
			if (want == 0)
				seq++;
			else
				st.refused++;
		} else {
			unsigned n = (x >> 8) % 16 ? 1 : m.q_n;

			for (unsigned k = 0; k < n && m.q_n; k++) {
				model_read(&m, &len, &s);
				get(r, prio, len, stream, s);
				st.delivered++;
			}
		}
		assert_int_equal(used(r, lane), (uint32_t)(m.head - m.tail));
	}
	while (m.q_n) {
		model_read(&m, &len, &s);
		get(r, prio, len, stream, s);
		st.delivered++;
	}
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	assert_int_equal(used(r, lane), 0);
	assert_int_equal(st.delivered, seq);
	st.pads = m.pads;
	return st;
}

/* One lane of 256 bytes, thousands of records, many of them padded. */
static void test_wrap_single_lane(void **state)
{
	struct wrap_stats st;
	ml_ring *r = NULL;

	(void)state;
	assert_int_equal(ml_ring_new(&r, CAP, NULL), 0);
	st = run_wrap(r, 0, ML_PRIO_HIGH, CAP, 64, 20, 20000);
	/* The run really went round, padded and ran full. */
	assert_true(st.delivered > 5000);
	assert_true(st.pads > 100);
	assert_true(st.refused > 100);
	assert_int_equal(ml_ring_poisoned(r), 0);
	ml_ring_free(r);
}

/*
 * Three-lane lanes are not powers of two (816, 2048 and 1232 bytes for a
 * 4096-byte ring): wrap each of them, one at a time.
 */
static void test_wrap_three_lanes(void **state)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3 };
	struct ml_ring_info info;
	ml_ring *r = NULL;

	(void)state;
	assert_int_equal(ml_ring_new(&r, 4096, &o), 0);
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.lane_capacity[0], 816);
	assert_int_equal(info.lane_capacity[1], 2048);
	assert_int_equal(info.lane_capacity[2], 1232);
	for (unsigned lane = 0; lane < 3; lane++) {
		struct wrap_stats st = run_wrap(r, lane, (int)lane, info.lane_capacity[lane],
						info.max_msg, 30 + lane, 20000);

		assert_true(st.delivered > 1000);
		assert_true(st.pads > 20);
		assert_true(st.refused > 20);
	}
	assert_int_equal(ml_ring_poisoned(r), 0);
	ml_ring_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fill_count),
		cmocka_unit_test(test_read_one_write_one),
		cmocka_unit_test(test_pad_needs_room),
		cmocka_unit_test(test_pad_layout),
		cmocka_unit_test(test_exact_fit),
		cmocka_unit_test(test_wrap_single_lane),
		cmocka_unit_test(test_wrap_three_lanes),
	};

	return cmocka_run_group_tests_name("test-ring-full", tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Priorities: the 20/50/30 capacity split of a three-lane ring, reads in
 * lane order and FIFO within a lane, lanes filling up independently, the
 * starvation guard (exact sequences and a model run) against strict
 * priority, and the stored priority of a single-lane ring.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memlink.h"
#include "testutil.h"

static ml_ring *new_ring3(size_t cap, uint32_t starve_limit)
{
	struct ml_ring_opts o = {
		.size = sizeof(o),
		.flags = ML_RING_LANES3,
		.starve_limit = starve_limit,
	};
	ml_ring *r = NULL;

	assert_int_equal(ml_ring_new(&r, cap, &o), 0);
	assert_non_null(r);
	return r;
}

/* Record payloads carry their lane and sequence number: 8 bytes + filler. */
static void put(ml_ring *r, int prio, uint32_t seq)
{
	unsigned char buf[16];

	tu_fill(buf, sizeof(buf), (uint64_t)prio, seq);
	assert_int_equal(ml_ring_write(r, prio, buf, sizeof(buf)), 0);
}

/* Read one record and check it is record `seq` of lane `prio`. */
static void get(ml_ring *r, int prio, uint32_t seq)
{
	unsigned char buf[64];
	int p = -1;

	assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), 16);
	assert_int_equal(p, prio);
	assert_int_equal(tu_check(buf, 16, (uint64_t)prio, seq), 0);
}

/* Critical and High get 20% and 50% rounded down to 8; Low the rest. */
static void test_capacity_split(void **state)
{
	static const struct {
		uint32_t cap, crit, high, low, max_msg;
	} cases[] = {
		{ 256, 48, 128, 80, 12 },
		{ 1024, 200, 512, 312, 50 },
		{ 4096, 816, 2048, 1232, 204 },
		{ 65536, 13104, 32768, 19664, 3276 },
		{ 1u << 20, 209712, 524288, 314576, 4096 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ml_ring_info info;
		ml_ring *r = new_ring3(cases[i].cap, 0);

		assert_int_equal(ml_ring_info(r, &info), 0);
		assert_int_equal(info.lanes, 3);
		assert_int_equal(info.capacity, cases[i].cap);
		assert_int_equal(info.lane_capacity[ML_PRIO_CRITICAL], cases[i].crit);
		assert_int_equal(info.lane_capacity[ML_PRIO_HIGH], cases[i].high);
		assert_int_equal(info.lane_capacity[ML_PRIO_LOW], cases[i].low);
		assert_int_equal(info.lane_capacity[0] + info.lane_capacity[1] +
				 info.lane_capacity[2], cases[i].cap);
		/* Default max_msg: min(4096, a quarter of the smallest lane). */
		assert_int_equal(info.max_msg, cases[i].max_msg);
		ml_ring_free(r);
	}
}

/* The split is real: each lane holds exactly lane_capacity / 8 empty records. */
static void test_capacity_split_usable(void **state)
{
	static const uint32_t caps[] = { 256, 4096 };

	(void)state;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		struct ml_ring_info info;
		ml_ring *r = new_ring3(caps[i], 0);
		unsigned n[3] = { 0 };

		assert_int_equal(ml_ring_info(r, &info), 0);
		for (int lane = 0; lane < 3; lane++) {
			while (ml_ring_write(r, lane, NULL, 0) == 0)
				n[lane]++;
			assert_int_equal(n[lane], info.lane_capacity[lane] / 8);
			assert_int_equal(ml_ring_write(r, lane, NULL, 0), -EAGAIN);
		}
		assert_int_equal(ml_ring_info(r, &info), 0);
		for (int lane = 0; lane < 3; lane++)
			assert_int_equal(info.lane_used[lane], info.lane_capacity[lane]);
		/* Drained in lane order. */
		for (int lane = 0; lane < 3; lane++) {
			for (unsigned k = 0; k < n[lane]; k++) {
				unsigned char buf[8];
				int p = -1;

				assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), 0);
				assert_int_equal(p, lane);
			}
		}
		assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
		ml_ring_free(r);
	}
}

/* Most urgent lane first; FIFO inside a lane; new urgent data jumps ahead. */
static void test_lane_order(void **state)
{
	ml_ring *r = new_ring3(4096, 0);

	(void)state;
	put(r, ML_PRIO_LOW, 0);
	put(r, ML_PRIO_HIGH, 0);
	put(r, ML_PRIO_CRITICAL, 0);
	put(r, ML_PRIO_LOW, 1);
	put(r, ML_PRIO_CRITICAL, 1);
	put(r, ML_PRIO_HIGH, 1);
	put(r, ML_PRIO_CRITICAL, 2);

	get(r, ML_PRIO_CRITICAL, 0);
	get(r, ML_PRIO_CRITICAL, 1);
	get(r, ML_PRIO_CRITICAL, 2);
	get(r, ML_PRIO_HIGH, 0);
	/* A critical record written now is read before the rest. */
	put(r, ML_PRIO_CRITICAL, 3);
	get(r, ML_PRIO_CRITICAL, 3);
	get(r, ML_PRIO_HIGH, 1);
	get(r, ML_PRIO_LOW, 0);
	put(r, ML_PRIO_HIGH, 2);
	get(r, ML_PRIO_HIGH, 2);
	get(r, ML_PRIO_LOW, 1);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/* A full critical lane refuses writes; High and Low still accept. */
static void test_full_lane_independent(void **state)
{
	struct ml_ring_info info;
	ml_ring *r = new_ring3(4096, 0);
	uint32_t n = 0;

	(void)state;
	/* 816 bytes of 24-byte records: 34 fit exactly. */
	for (;;) {
		unsigned char buf[16];
		int err;

		tu_fill(buf, sizeof(buf), ML_PRIO_CRITICAL, n);
		err = ml_ring_write(r, ML_PRIO_CRITICAL, buf, sizeof(buf));
		if (err) {
			assert_int_equal(err, -EAGAIN);
			break;
		}
		n++;
	}
	assert_int_equal(n, 34);
	put(r, ML_PRIO_LOW, 0);
	put(r, ML_PRIO_HIGH, 0);
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.lane_used[0], 816);
	assert_int_equal(info.lane_used[1], 24);
	assert_int_equal(info.lane_used[2], 24);

	for (uint32_t i = 0; i < n; i++)
		get(r, ML_PRIO_CRITICAL, i);
	get(r, ML_PRIO_HIGH, 0);
	get(r, ML_PRIO_LOW, 0);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/*
 * starve_limit 3, Critical flooded: each waiting Low record is served right
 * after exactly three Critical reads.
 */
static void test_starvation_guard_exact(void **state)
{
	ml_ring *r = new_ring3(4096, 3);
	uint32_t c = 0;

	(void)state;
	put(r, ML_PRIO_LOW, 0);
	put(r, ML_PRIO_LOW, 1);
	for (uint32_t i = 0; i < 20; i++)
		put(r, ML_PRIO_CRITICAL, i);

	/* C C C L C C C L, then Critical only. */
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < 3; k++)
			get(r, ML_PRIO_CRITICAL, c++);
		get(r, ML_PRIO_LOW, (uint32_t)round);
	}
	while (c < 20)
		get(r, ML_PRIO_CRITICAL, c++);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);

	/* Steady flood: Critical refilled after every read, Low every 4th. */
	put(r, ML_PRIO_LOW, 2);
	for (uint32_t i = 0; i < 3; i++)
		put(r, ML_PRIO_CRITICAL, c + i);
	for (int k = 0; k < 3; k++) {
		get(r, ML_PRIO_CRITICAL, c);
		put(r, ML_PRIO_CRITICAL, c + 3);
		c++;
	}
	get(r, ML_PRIO_LOW, 2);
	ml_ring_free(r);
}

/*
 * A more urgent record written while the reader still has less urgent ones
 * cached is read first: the reader looks at the urgent lanes' next headers
 * on every read, not only when its cache runs dry.
 */
static void test_priority_over_cached(void **state)
{
	ml_ring *r = new_ring3(4096, 0);

	(void)state;
	for (uint32_t i = 0; i < 4; i++)
		put(r, ML_PRIO_LOW, i);
	get(r, ML_PRIO_LOW, 0); /* Low's records 1..3 are now cached */
	put(r, ML_PRIO_CRITICAL, 0);
	get(r, ML_PRIO_CRITICAL, 0);
	get(r, ML_PRIO_LOW, 1);
	put(r, ML_PRIO_HIGH, 0);
	put(r, ML_PRIO_CRITICAL, 1);
	get(r, ML_PRIO_CRITICAL, 1);
	get(r, ML_PRIO_HIGH, 0);
	get(r, ML_PRIO_LOW, 2);
	get(r, ML_PRIO_LOW, 3);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/*
 * urgent_every N: while Low has records in view, the reader looks at the
 * more urgent lanes only every Nth read, so a Critical record waits behind
 * at most N-1 Low ones; with nothing in view a read is strict again.
 */
static void test_urgent_every(void **state)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3, .urgent_every = 4 };
	size_t len = ml_ring_mem_size(4096);
	void *mem = tu_shared_map(len);
	ml_ring *w, *r;

	(void)state;
	assert_non_null(mem);
	assert_int_equal(ml_ring_init(&w, mem, len, 4096, &o), 0);
	/* The policy is the creator's: an attached reader applies it. */
	assert_int_equal(ml_ring_attach(&r, mem, len), 0);
	for (uint32_t i = 0; i < 8; i++)
		put(w, ML_PRIO_LOW, i);
	get(r, ML_PRIO_LOW, 0); /* Low 1..7 now in view */
	put(w, ML_PRIO_CRITICAL, 0);
	get(r, ML_PRIO_LOW, 1);
	get(r, ML_PRIO_LOW, 2);
	get(r, ML_PRIO_LOW, 3);
	get(r, ML_PRIO_CRITICAL, 0); /* the 4th read looks */
	put(w, ML_PRIO_HIGH, 0);
	put(w, ML_PRIO_CRITICAL, 1);
	get(r, ML_PRIO_LOW, 4);
	get(r, ML_PRIO_LOW, 5);
	get(r, ML_PRIO_LOW, 6);
	get(r, ML_PRIO_CRITICAL, 1); /* that look brought High into view too */
	get(r, ML_PRIO_HIGH, 0);
	get(r, ML_PRIO_LOW, 7);
	/* Nothing in view: the next read sees everything, strictly. */
	put(w, ML_PRIO_LOW, 8);
	put(w, ML_PRIO_CRITICAL, 2);
	get(r, ML_PRIO_CRITICAL, 2);
	get(r, ML_PRIO_LOW, 8);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
	ml_ring_free(w);
	tu_shared_unmap(mem, len);
}

/*
 * The guard is the creator's policy and lives in the shared header, so a
 * reader that attached from elsewhere applies the same limit.
 */
static void test_starvation_guard_attached(void **state)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3, .starve_limit = 2 };
	size_t len = ml_ring_mem_size(4096);
	void *mem = tu_shared_map(len);
	ml_ring *w, *r;

	(void)state;
	assert_non_null(mem);
	assert_int_equal(ml_ring_init(&w, mem, len, 4096, &o), 0);
	assert_int_equal(ml_ring_attach(&r, mem, len), 0);
	put(w, ML_PRIO_LOW, 0);
	for (uint32_t i = 0; i < 6; i++)
		put(w, ML_PRIO_CRITICAL, i);
	get(r, ML_PRIO_CRITICAL, 0);
	get(r, ML_PRIO_CRITICAL, 1);
	get(r, ML_PRIO_LOW, 0);
	for (uint32_t i = 2; i < 6; i++)
		get(r, ML_PRIO_CRITICAL, i);
	ml_ring_free(r);
	ml_ring_free(w);
	tu_shared_unmap(mem, len);
}

/* starve_limit 1 alternates; the guard also protects High from Critical. */
static void test_starvation_guard_limit1(void **state)
{
	ml_ring *r = new_ring3(4096, 1);

	(void)state;
	for (uint32_t i = 0; i < 4; i++)
		put(r, ML_PRIO_HIGH, i);
	for (uint32_t i = 0; i < 8; i++)
		put(r, ML_PRIO_CRITICAL, i);
	for (uint32_t i = 0; i < 4; i++) {
		get(r, ML_PRIO_CRITICAL, i);
		get(r, ML_PRIO_HIGH, i);
	}
	for (uint32_t i = 4; i < 8; i++)
		get(r, ML_PRIO_CRITICAL, i);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/* Serving a lane restarts its count: the next wait is N reads again. */
static void test_starvation_counter_resets(void **state)
{
	ml_ring *r = new_ring3(4096, 2);

	(void)state;
	put(r, ML_PRIO_LOW, 0);
	put(r, ML_PRIO_CRITICAL, 0);
	get(r, ML_PRIO_CRITICAL, 0); /* Low passed over once */
	get(r, ML_PRIO_LOW, 0);      /* only Low left; Low now empty */
	put(r, ML_PRIO_LOW, 1);
	for (uint32_t i = 1; i <= 4; i++)
		put(r, ML_PRIO_CRITICAL, i);
	get(r, ML_PRIO_CRITICAL, 1);
	get(r, ML_PRIO_CRITICAL, 2);
	get(r, ML_PRIO_LOW, 1);
	get(r, ML_PRIO_CRITICAL, 3);
	get(r, ML_PRIO_CRITICAL, 4);
	ml_ring_free(r);
}

/* starve_limit 0: strict priority, Low waits as long as Critical has data. */
static void test_strict_priority(void **state)
{
	ml_ring *r = new_ring3(4096, 0);

	(void)state;
	put(r, ML_PRIO_LOW, 0);
	put(r, ML_PRIO_HIGH, 0);
	put(r, ML_PRIO_CRITICAL, 0);
	for (uint32_t i = 0; i < 500; i++) {
		put(r, ML_PRIO_CRITICAL, i + 1);
		get(r, ML_PRIO_CRITICAL, i);
	}
	get(r, ML_PRIO_CRITICAL, 500);
	get(r, ML_PRIO_HIGH, 0);
	get(r, ML_PRIO_LOW, 0);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/*
 * A long random run with the guard on, checked two ways:
 *  - against the rule the header states: while a lane has data, at most N
 *    reads in a row come from more urgent lanes;
 *  - read by read against a model of the guard (the most urgent lane, unless
 *    a less urgent one has been passed over N times: then the least urgent
 *    such lane), which also checks FIFO order and the bytes.
 * Reads alternate between ml_ring_read and peek/release.
 */
static void run_starve_model(uint32_t limit, uint64_t seed)
{
	enum { QMAX = 16 };
	ml_ring *r = new_ring3(4096, limit);
	uint32_t q[3][QMAX], qfirst[3] = { 0 }, qn[3] = { 0 }, next[3] = { 0 };
	uint32_t skipped[3] = { 0 }, passed[3] = { 0 };
	unsigned guard_used = 0, reads = 0;

	for (unsigned step = 0; step < 30000; step++) {
		uint64_t x = tu_mix(seed + step);
		unsigned op = (unsigned)(x % 100);
		int lane, pick, got;

		if (op < 70) {
			/* Writes, mostly Critical; never more than QMAX queued. */
			lane = op < 40 ? 0 : op < 58 ? 1 : 2;
			if (qn[lane] < QMAX) {
				put(r, lane, next[lane]);
				q[lane][(qfirst[lane] + qn[lane]++) % QMAX] = next[lane]++;
			}
			continue;
		}
		/* The model's pick. */
		pick = -1;
		for (int i = 0; i < 3; i++) {
			if (!qn[i])
				skipped[i] = 0;
			else if (pick < 0)
				pick = i;
		}
		if (pick < 0) {
			assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
			continue;
		}
		for (int i = 2; i > pick; i--) {
			if (qn[i] && skipped[i] >= limit) {
				pick = i;
				guard_used++;
				break;
			}
		}
		/* The ring's pick, by read or by peek/release. */
		if (x & (1u << 20)) {
			unsigned char buf[32];

			got = -1;
			assert_int_equal(ml_ring_read(r, &got, buf, sizeof(buf)), 16);
			assert_int_equal(got, pick);
			assert_int_equal(tu_check(buf, 16, (uint64_t)pick, q[pick][qfirst[pick]]), 0);
		} else {
			const void *p = NULL;

			got = -1;
			assert_int_equal(ml_ring_peek(r, &got, &p), 16);
			assert_int_equal(got, pick);
			assert_int_equal(tu_check(p, 16, (uint64_t)pick, q[pick][qfirst[pick]]), 0);
			assert_int_equal(ml_ring_release(r), 0);
		}
		reads++;
		/* Update the model and the header's rule. */
		for (int i = pick + 1; i < 3; i++)
			if (qn[i])
				skipped[i]++;
		skipped[pick] = 0;
		for (int i = 0; i < 3; i++) {
			if (!qn[i] || i == pick)
				passed[i] = 0;
			else if (i > pick)
				passed[i]++;
			assert_true(passed[i] <= limit);
		}
		qfirst[pick] = (qfirst[pick] + 1) % QMAX;
		qn[pick]--;
	}
	/* The run exercised the guard, not just strict priority. */
	assert_true(reads > 5000);
	assert_true(guard_used > 100);
	assert_int_equal(ml_ring_poisoned(r), 0);
	ml_ring_free(r);
}

static void test_starvation_guard_model(void **state)
{
	(void)state;
	run_starve_model(1, 1000);
	run_starve_model(2, 2000);
	run_starve_model(5, 3000);
}

/* One lane: plain FIFO, each record keeps the priority it was written with. */
static void test_single_lane_prio(void **state)
{
	static const int prios[] = { 2, 0, 1, 2, 2, 0, 1, 0 };
	const size_t n = sizeof(prios) / sizeof(prios[0]);
	ml_ring *r = NULL;

	(void)state;
	assert_int_equal(ml_ring_new(&r, 1024, NULL), 0);
	for (size_t i = 0; i < n; i++)
		put(r, prios[i], (uint32_t)i);
	for (size_t i = 0; i < n; i++) {
		unsigned char buf[32];
		int p = -1;

		assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), 16);
		assert_int_equal(p, prios[i]);
		assert_int_equal(tu_check(buf, 16, (uint64_t)prios[i], i), 0);
	}
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity_split),
		cmocka_unit_test(test_capacity_split_usable),
		cmocka_unit_test(test_lane_order),
		cmocka_unit_test(test_priority_over_cached),
		cmocka_unit_test(test_urgent_every),
		cmocka_unit_test(test_full_lane_independent),
		cmocka_unit_test(test_starvation_guard_exact),
		cmocka_unit_test(test_starvation_guard_attached),
		cmocka_unit_test(test_starvation_guard_limit1),
		cmocka_unit_test(test_starvation_counter_resets),
		cmocka_unit_test(test_strict_priority),
		cmocka_unit_test(test_starvation_guard_model),
		cmocka_unit_test(test_single_lane_prio),
	};

	return cmocka_run_group_tests_name("test-ring-prio", tests, NULL, NULL);
}

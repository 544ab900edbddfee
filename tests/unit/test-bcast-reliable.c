// SPDX-License-Identifier: MIT
/*
 * Reliable broadcast: the slowest live cursor blocks the writer (-EAGAIN)
 * and reading frees room; every reader gets every record exactly. Hostile
 * cursors (beyond the head, far behind it, misaligned, random) are reported
 * and hold back nobody, and the honest readers still get everything.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bcast.h"
#include "testutil.h"

#define CAP 4096u
#define LEN 24u /* records of 40 bytes */

struct rig {
	void *mem;
	struct ml__bcast_writer *w;
	struct ml__bcast_reader *r[3];
	alignas(128) struct ml__bcast_cursor cur[3];
	struct ml__bcast_cursor *ptr[3];
	uint64_t sent[ML_PRIO_COUNT];
	uint64_t want[3][ML_PRIO_COUNT];
};

static struct rig *rig_new(unsigned readers, uint64_t live)
{
	struct rig *g = tu_shared_map(sizeof(*g));

	assert_non_null(g);
	memset(g, 0, sizeof(*g));
	g->mem = tu_shared_map(ml__bcast_mem_size(CAP));
	assert_int_equal(ml__bcast_init(&g->w, g->mem, ml__bcast_mem_size(CAP), CAP,
					ML__BCAST_RELIABLE, 0), 0);
	for (unsigned i = 0; i < 3; i++)
		g->ptr[i] = &g->cur[i];
	for (unsigned i = 0; i < readers; i++)
		assert_int_equal(ml__bcast_attach(&g->r[i], g->mem, ml__bcast_mem_size(CAP), 0,
						  &g->cur[i]), 0);
	assert_int_equal(ml__bcast_set_cursors(g->w, live, g->ptr), 0);
	return g;
}

static void rig_free(struct rig *g)
{
	for (unsigned i = 0; i < 3; i++)
		ml__bcast_reader_free(g->r[i]);
	ml__bcast_writer_free(g->w);
	tu_shared_unmap(g->mem, ml__bcast_mem_size(CAP));
	tu_shared_unmap(g, sizeof(*g));
}

static int send(struct rig *g, unsigned lane)
{
	uint8_t buf[LEN];
	int err;

	tu_fill(buf, LEN, lane, g->sent[lane]);
	err = ml__bcast_send(g->w, (int)lane, buf, LEN);
	if (!err)
		g->sent[lane]++;
	return err;
}

/* Fill a lane until -EAGAIN; how many went in. */
static uint64_t fill(struct rig *g, unsigned lane)
{
	uint64_t n = 0;
	int err;

	while ((err = send(g, lane)) == 0)
		n++;
	assert_int_equal(err, -EAGAIN);
	return n;
}

/* Reader i reads up to `max` records; each must be the next one sent. */
static uint64_t drain(struct rig *g, unsigned i, uint64_t max)
{
	uint8_t buf[256];
	uint64_t seq, n = 0;
	int prio, len;

	while (n < max && (len = ml__bcast_read(g->r[i], &prio, &seq, buf, sizeof(buf))) >= 0) {
		assert_int_equal(len, LEN);
		assert_int_equal(seq, g->want[i][prio]);
		assert_int_equal(tu_check(buf, LEN, (uint64_t)prio, seq), 0);
		g->want[i][prio]++;
		n++;
	}
	if (n < max)
		assert_int_equal(len, -EAGAIN);
	return n;
}

static void test_backpressure(void **state)
{
	struct rig *g = rig_new(2, 3);
	uint64_t n;

	(void)state;
	/* Critical: 816 bytes hold 20 records of 40. */
	n = fill(g, 0);
	assert_int_equal(n, 20);
	/* Other lanes are not held back by a full one. */
	assert_int_equal(send(g, 2), 0);
	assert_int_equal(drain(g, 0, ~0ull), 21);
	/* Reader 1 has read nothing: still full. */
	assert_int_equal(send(g, 0), -EAGAIN);
	/* One record read frees 40 bytes: with the 16 at the end, one more (padded). */
	assert_int_equal(drain(g, 1, 1), 1);
	assert_int_equal(send(g, 0), 0);
	assert_int_equal(send(g, 0), -EAGAIN);
	assert_int_equal(drain(g, 1, 1), 1);
	assert_int_equal(send(g, 0), 0);
	assert_int_equal(send(g, 0), -EAGAIN);
	/* Both read all: many laps, each reader gets every record. */
	for (int lap = 0; lap < 50; lap++) {
		drain(g, 0, ~0ull);
		drain(g, 1, ~0ull);
		n = fill(g, (unsigned)lap % 3);
		assert_true(n >= 19);
	}
	drain(g, 0, ~0ull);
	drain(g, 1, ~0ull);
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
		assert_int_equal(g->want[0][l], g->sent[l]);
		assert_int_equal(g->want[1][l], g->sent[l]);
	}
	assert_int_equal(ml__bcast_lost(g->r[0], NULL) + ml__bcast_lost(g->r[1], NULL), 0);
	assert_int_equal(ml__bcast_bad_cursors(g->w), 0);
	/* A reader no longer live holds back nobody. */
	assert_int_equal(ml__bcast_set_cursors(g->w, 1, g->ptr), 0);
	assert_int_equal(fill(g, 0), 20);
	drain(g, 0, ~0ull);
	assert_int_equal(fill(g, 0), 20);
	assert_int_equal(ml__bcast_bad_cursors(g->w), 0);
	rig_free(g);
}

/* Cursor 2 is hostile: whatever it says, it is reported and ignored. */
static void test_hostile_cursor(void **state)
{
	const uint64_t bad[] = { 1u << 20, 3, ~0ull, 0x123456789abcdef0ull };
	struct rig *g;

	(void)state;
	for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		g = rig_new(2, 7);
		for (int lap = 0; lap < 3; lap++) {
			atomic_store(&g->cur[2].next[0], bad[k]);
			assert_true(fill(g, 0) >= 19);
			assert_int_equal(ml__bcast_bad_cursors(g->w), 4);
			drain(g, 0, ~0ull);
			drain(g, 1, ~0ull);
		}
		assert_int_equal(g->want[0][0], g->sent[0]);
		assert_int_equal(g->want[1][0], g->sent[0]);
		assert_int_equal(ml__bcast_lost(g->r[0], NULL), 0);
		assert_int_equal(ml__bcast_poisoned(g->r[0]) | ml__bcast_poisoned(g->r[1]), 0);
		rig_free(g);
	}

	/* Far behind: a cursor left at 0 while the head went two laps on. */
	g = rig_new(2, 3);
	for (int lap = 0; lap < 2; lap++) {
		assert_true(fill(g, 0) >= 19);
		drain(g, 0, ~0ull);
		drain(g, 1, ~0ull);
	}
	atomic_store(&g->cur[2].next[0], 0);
	assert_int_equal(ml__bcast_set_cursors(g->w, 7, g->ptr), 0);
	assert_true(fill(g, 0) >= 19);
	assert_int_equal(ml__bcast_bad_cursors(g->w), 4);
	assert_int_equal(ml__bcast_bad_cursors(g->w), 0); /* read clears it */
	drain(g, 0, ~0ull);
	drain(g, 1, ~0ull);
	/* In range (at the head): an honest slow reader, it holds the writer. */
	atomic_store(&g->cur[2].next[0], atomic_load(&((struct ml__bcast_shm *)g->mem)->head[0]));
	assert_true(fill(g, 0) >= 19);
	drain(g, 0, ~0ull);
	drain(g, 1, ~0ull);
	assert_int_equal(send(g, 0), -EAGAIN);
	assert_int_equal(ml__bcast_bad_cursors(g->w), 0);
	assert_int_equal(g->want[0][0], g->sent[0]);
	assert_int_equal(g->want[1][0], g->sent[0]);
	rig_free(g);
}

/* A late reliable reader at the oldest record gets what is there, then all. */
static void test_late_join(void **state)
{
	struct rig *g = rig_new(1, 1);
	uint8_t buf[64];
	uint64_t seq;
	int prio;

	(void)state;
	for (int i = 0; i < 30; i++) {
		assert_int_equal(send(g, 1), 0);
		drain(g, 0, ~0ull);
	}
	assert_int_equal(ml__bcast_attach(&g->r[1], g->mem, ml__bcast_mem_size(CAP),
					  ML__BCAST_JOIN_OLDEST, &g->cur[1]), 0);
	assert_int_equal(ml__bcast_attach(&g->r[2], g->mem, ml__bcast_mem_size(CAP), 0,
					  &g->cur[2]), 0);
	assert_int_equal(ml__bcast_set_cursors(g->w, 7, g->ptr), 0);
	/* The lane was never lapped: the oldest is seq 0. */
	assert_int_equal(ml__bcast_read(g->r[1], &prio, &seq, buf, sizeof(buf)), LEN);
	assert_int_equal(seq, 0);
	assert_int_equal(ml__bcast_read(g->r[2], &prio, &seq, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(send(g, 1), 0);
	assert_int_equal(ml__bcast_read(g->r[2], &prio, &seq, buf, sizeof(buf)), LEN);
	assert_int_equal(seq, 30);
	rig_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_hostile_cursor),
		cmocka_unit_test(test_late_join),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Zero-copy: reserve/commit on the producer side, peek/release on the
 * consumer side, their error cases, and both across the lane end (the
 * reserved and peeked bytes must always be contiguous inside the lane).
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

#define CAP 256u /* one lane: max_msg 64 */

static ml_ring *new_ring(size_t cap, uint32_t flags)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = flags };
	ml_ring *r = NULL;

	assert_int_equal(ml_ring_new(&r, cap, &o), 0);
	return r;
}

static uint32_t used(ml_ring *r, unsigned lane)
{
	struct ml_ring_info info;

	assert_int_equal(ml_ring_info(r, &info), 0);
	return info.lane_used[lane];
}

static void put(ml_ring *r, int prio, size_t len, uint64_t stream, uint64_t seq)
{
	unsigned char buf[256];

	tu_fill(buf, len, stream, seq);
	assert_int_equal(ml_ring_write(r, prio, buf, len), 0);
}

static void get(ml_ring *r, int prio, size_t len, uint64_t stream, uint64_t seq)
{
	unsigned char buf[256];
	int p = -1;

	assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), (int)len);
	assert_int_equal(p, prio);
	assert_int_equal(tu_check(buf, len, stream, seq), 0);
}

/* Reserve, fill in place, commit fewer bytes: the reader sees just those. */
static void test_reserve_commit(void **state)
{
	ml_ring *r = new_ring(CAP, 0);
	const void *cp;
	void *ptr = NULL;

	(void)state;
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_HIGH, 60, &ptr), 0);
	assert_non_null(ptr);
	tu_fill(ptr, 60, 1, 0);
	/* Nothing is visible before the commit. */
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	assert_int_equal(ml_ring_peek(r, NULL, &cp), -EAGAIN);
	assert_int_equal(used(r, 0), 0);

	assert_int_equal(ml_ring_commit(r, 21), 0);
	assert_int_equal(used(r, 0), 8 + 24);
	/* The first 21 of the 60 bytes written in place. */
	{
		unsigned char want[60], buf[64];
		int p = -1;

		tu_fill(want, 60, 1, 0);
		assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), 21);
		assert_int_equal(p, ML_PRIO_HIGH);
		assert_memory_equal(buf, want, 21);
	}
	/* The reservation is used up. */
	assert_int_equal(ml_ring_commit(r, 0), -EINVAL);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);

	/* Commit of everything, and of nothing (a zero-length record). */
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 64, &ptr), 0);
	tu_fill(ptr, 64, 1, 1);
	assert_int_equal(ml_ring_commit(r, 64), 0);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_CRITICAL, 64, &ptr), 0);
	assert_int_equal(ml_ring_commit(r, 0), 0);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_HIGH, 0, &ptr), 0);
	assert_int_equal(ml_ring_commit(r, 0), 0);
	get(r, ML_PRIO_LOW, 64, 1, 1);
	get(r, ML_PRIO_CRITICAL, 0, 0, 0);
	get(r, ML_PRIO_HIGH, 0, 0, 0);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/* Commit without a reservation, or of more than was reserved: -EINVAL. */
static void test_commit_errors(void **state)
{
	ml_ring *r = new_ring(CAP, 0);
	void *ptr = NULL;

	(void)state;
	assert_int_equal(ml_ring_commit(r, 0), -EINVAL);
	assert_int_equal(ml_ring_commit(r, 8), -EINVAL);
	assert_int_equal(used(r, 0), 0);

	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 10, &ptr), 0);
	tu_fill(ptr, 10, 2, 0);
	assert_int_equal(ml_ring_commit(r, 11), -EINVAL);
	assert_int_equal(ml_ring_commit(r, SIZE_MAX), -EINVAL);
	/* The refused commits published nothing... */
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	assert_int_equal(used(r, 0), 0);
	/* ...and the reservation is still there to commit properly. */
	assert_int_equal(ml_ring_commit(r, 10), 0);
	get(r, ML_PRIO_LOW, 10, 2, 0);
	assert_int_equal(ml_ring_commit(r, 10), -EINVAL);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);

	/* Reserve refuses what write refuses. */
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 65, &ptr), -EMSGSIZE);
	assert_int_equal(ml_ring_reserve(r, 3, 1, &ptr), -EINVAL);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 1, NULL), -EINVAL);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 64, &ptr), 0);
	assert_int_equal(ml_ring_commit(r, 64), 0);
	assert_int_equal(used(r, 0), 72);
	ml_ring_free(r);
}

/* A later reserve or write drops an uncommitted reservation. */
static void test_reservation_dropped(void **state)
{
	ml_ring *r = new_ring(CAP, 0);
	void *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_CRITICAL, 40, &a), 0);
	tu_fill(a, 40, 3, 0);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_HIGH, 12, &b), 0);
	tu_fill(b, 12, 3, 1);
	assert_int_equal(ml_ring_commit(r, 12), 0);
	assert_int_equal(ml_ring_commit(r, 12), -EINVAL);
	get(r, ML_PRIO_HIGH, 12, 3, 1);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);

	/* A write after a reserve: only the write's record exists. */
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_CRITICAL, 40, &a), 0);
	tu_fill(a, 40, 3, 2);
	put(r, ML_PRIO_LOW, 5, 3, 3);
	assert_int_equal(ml_ring_commit(r, 40), -EINVAL);
	get(r, ML_PRIO_LOW, 5, 3, 3);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	assert_int_equal(used(r, 0), 0);
	ml_ring_free(r);

	/*
	 * Three lanes: a reserve on a full lane drops the reservation made
	 * on another lane, even though it fails itself.
	 */
	r = new_ring(4096, ML_RING_LANES3);
	while (ml_ring_write(r, ML_PRIO_LOW, NULL, 0) == 0)
		;
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_CRITICAL, 10, &a), 0);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 0, &b), -EAGAIN);
	assert_int_equal(ml_ring_commit(r, 10), -EINVAL);
	assert_int_equal(used(r, ML_PRIO_CRITICAL), 0);

	/* So does a write that fails, on a full lane or for its size. */
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_CRITICAL, 10, &a), 0);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, NULL, 0), -EAGAIN);
	assert_int_equal(ml_ring_commit(r, 10), -EINVAL);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_CRITICAL, 10, &a), 0);
	assert_int_equal(ml_ring_write(r, ML_PRIO_HIGH, NULL, 1u << 20), -EMSGSIZE);
	assert_int_equal(ml_ring_commit(r, 10), -EINVAL);
	assert_int_equal(used(r, ML_PRIO_CRITICAL), 0);
	ml_ring_free(r);
}

/* Reserve on a full lane is -EAGAIN and leaves no reservation behind. */
static void test_reserve_full(void **state)
{
	ml_ring *r = new_ring(CAP, 0);
	void *ptr = NULL;

	(void)state;
	for (unsigned i = 0; i < 4; i++)
		put(r, ML_PRIO_LOW, 56, 4, i); /* 4 x 64 bytes */
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 0, &ptr), -EAGAIN);
	assert_int_equal(ml_ring_commit(r, 0), -EINVAL);
	get(r, ML_PRIO_LOW, 56, 4, 0);
	/* Room again: the reservation gets the freed slot. */
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 56, &ptr), 0);
	tu_fill(ptr, 56, 4, 4);
	assert_int_equal(ml_ring_commit(r, 56), 0);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 0, &ptr), -EAGAIN);
	for (unsigned i = 1; i <= 4; i++)
		get(r, ML_PRIO_LOW, 56, 4, i);
	ml_ring_free(r);
}

/* Peek twice: same record, same pointer; release consumes it. */
static void test_peek_release(void **state)
{
	ml_ring *r = new_ring(CAP, 0);
	const void *p1 = NULL, *p2 = NULL;
	int prio1 = -1, prio2 = -1;

	(void)state;
	put(r, ML_PRIO_HIGH, 33, 5, 0);
	put(r, ML_PRIO_LOW, 7, 5, 1);

	assert_int_equal(ml_ring_peek(r, &prio1, &p1), 33);
	assert_int_equal(ml_ring_peek(r, &prio2, &p2), 33);
	assert_ptr_equal(p1, p2);
	assert_int_equal(prio1, ML_PRIO_HIGH);
	assert_int_equal(prio2, ML_PRIO_HIGH);
	assert_int_equal(tu_check(p1, 33, 5, 0), 0);
	/* Peeking consumes nothing. */
	assert_int_equal(used(r, 0), 48 + 16);
	assert_int_equal(ml_ring_release(r), 0);
	assert_int_equal(used(r, 0), 16);

	assert_int_equal(ml_ring_peek(r, NULL, &p2), 7);
	assert_ptr_not_equal(p1, p2);
	assert_int_equal(tu_check(p2, 7, 5, 1), 0);
	assert_int_equal(ml_ring_release(r), 0);
	assert_int_equal(ml_ring_release(r), -EINVAL);
	assert_int_equal(ml_ring_peek(r, NULL, &p2), -EAGAIN);
	assert_int_equal(used(r, 0), 0);

	/* A zero-length record peeks as 0 bytes. */
	assert_int_equal(ml_ring_write(r, ML_PRIO_CRITICAL, NULL, 0), 0);
	p1 = NULL;
	assert_int_equal(ml_ring_peek(r, &prio1, &p1), 0);
	assert_int_equal(prio1, ML_PRIO_CRITICAL);
	assert_non_null(p1);
	assert_int_equal(ml_ring_release(r), 0);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/* Release without peek is -EINVAL; read during a peek is -EBUSY. */
static void test_peek_errors(void **state)
{
	unsigned char buf[64];
	ml_ring *r = new_ring(CAP, 0);
	const void *p = NULL;

	(void)state;
	assert_int_equal(ml_ring_release(r), -EINVAL);
	put(r, ML_PRIO_LOW, 20, 6, 0);
	put(r, ML_PRIO_LOW, 20, 6, 1);
	assert_int_equal(ml_ring_release(r), -EINVAL);
	/* The refused release consumed nothing. */
	assert_int_equal(used(r, 0), 2 * 32);

	assert_int_equal(ml_ring_peek(r, NULL, &p), 20);
	assert_int_equal(ml_ring_read(r, NULL, buf, sizeof(buf)), -EBUSY);
	assert_int_equal(ml_ring_read(r, NULL, buf, sizeof(buf)), -EBUSY);
	/* The peeked bytes are intact and nothing moved. */
	assert_int_equal(tu_check(p, 20, 6, 0), 0);
	assert_int_equal(used(r, 0), 2 * 32);
	assert_int_equal(ml_ring_release(r), 0);
	get(r, ML_PRIO_LOW, 20, 6, 1);
	assert_int_equal(ml_ring_read(r, NULL, buf, sizeof(buf)), -EAGAIN);
	ml_ring_free(r);
}

/* In a three-lane ring an outstanding peek holds its record even when a
 * more urgent one arrives. */
static void test_peek_holds_record(void **state)
{
	ml_ring *r = new_ring(4096, ML_RING_LANES3);
	const void *p1 = NULL, *p2 = NULL;
	int prio = -1;

	(void)state;
	put(r, ML_PRIO_LOW, 30, 7, 0);
	assert_int_equal(ml_ring_peek(r, &prio, &p1), 30);
	assert_int_equal(prio, ML_PRIO_LOW);
	put(r, ML_PRIO_CRITICAL, 10, 7, 1);
	assert_int_equal(ml_ring_peek(r, &prio, &p2), 30);
	assert_int_equal(prio, ML_PRIO_LOW);
	assert_ptr_equal(p1, p2);
	assert_int_equal(tu_check(p2, 30, 7, 0), 0);
	assert_int_equal(ml_ring_release(r), 0);
	get(r, ML_PRIO_CRITICAL, 10, 7, 1);
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	ml_ring_free(r);
}

/* Rings in test-owned memory, so that pointers can be checked. */
struct shm_ring {
	ml_ring *r;
	uint8_t *mem;
	size_t len;
};

static void shm_ring_init(struct shm_ring *s, size_t cap)
{
	s->len = ml_ring_mem_size(cap);
	s->mem = tu_shared_map(s->len);
	assert_non_null(s->mem);
	assert_int_equal(ml_ring_init(&s->r, s->mem, s->len, cap, NULL), 0);
}

static void shm_ring_fini(struct shm_ring *s)
{
	ml_ring_free(s->r);
	tu_shared_unmap(s->mem, s->len);
}

/* Reserve and peek at the lane end: the bytes never straddle it. */
static void test_zero_copy_wrap(void **state)
{
	struct shm_ring s;
	uint8_t *lane;
	const void *cp = NULL;
	void *ptr = NULL;
	struct ml__rec h;

	(void)state;
	shm_ring_init(&s, CAP);
	lane = s.mem + ML__RING_HDR_SIZE;
	/* Offsets to 240: 16 bytes left before the end. */
	for (unsigned i = 0; i < 15; i++) {
		put(s.r, 0, 8, 8, i);
		get(s.r, 0, 8, 8, i);
	}
	/* An 8-byte payload fits exactly in place. */
	assert_int_equal(ml_ring_reserve(s.r, ML_PRIO_HIGH, 8, &ptr), 0);
	assert_ptr_equal(ptr, lane + 248);
	tu_fill(ptr, 8, 8, 100);
	assert_int_equal(ml_ring_commit(s.r, 8), 0);
	assert_int_equal(ml_ring_peek(s.r, NULL, &cp), 8);
	assert_ptr_equal(cp, lane + 248);
	assert_int_equal(tu_check(cp, 8, 8, 100), 0);
	assert_int_equal(ml_ring_release(s.r), 0);

	/* Back at 0; move to 240 again, then reserve more than fits there. */
	for (unsigned i = 0; i < 15; i++) {
		put(s.r, 0, 8, 8, i);
		get(s.r, 0, 8, 8, i);
	}
	assert_int_equal(ml_ring_reserve(s.r, ML_PRIO_LOW, 40, &ptr), 0);
	assert_ptr_equal(ptr, lane + 8); /* pad at 240, record at 0 */
	tu_fill(ptr, 40, 8, 101);
	/* Commit fewer bytes than reserved: the pad stays, the record shrinks. */
	assert_int_equal(ml_ring_commit(s.r, 4), 0);
	assert_int_equal(used(s.r, 0), 16 + 16);
	memcpy(&h, lane + 240, sizeof(h));
	assert_int_equal(h.tag, ML__REC_TAG(496, ML__REC_PAD, 0));
	assert_int_equal(h.len, 8);
	memcpy(&h, lane, sizeof(h));
	assert_int_equal(h.tag, ML__REC_TAG(512, ML__REC_DATA, ML_PRIO_LOW));
	assert_int_equal(h.len, 4);
	/* The next record follows the shrunk one. */
	put(s.r, ML_PRIO_CRITICAL, 3, 8, 102);
	memcpy(&h, lane + 16, sizeof(h));
	assert_int_equal(h.len, 3);

	assert_int_equal(ml_ring_peek(s.r, NULL, &cp), 4);
	assert_ptr_equal(cp, lane + 8);
	{
		unsigned char want[40];

		tu_fill(want, 40, 8, 101);
		assert_memory_equal(cp, want, 4);
	}
	assert_int_equal(ml_ring_release(s.r), 0);
	get(s.r, ML_PRIO_CRITICAL, 3, 8, 102);
	assert_int_equal(used(s.r, 0), 0);
	shm_ring_fini(&s);
}

/*
 * Many zero-copy cycles of random sizes: every reserved and peeked span lies
 * whole inside the lane, and the data and order survive.
 */
static void test_zero_copy_cycles(void **state)
{
	struct shm_ring s;
	uint8_t *lane;
	uint64_t wseq = 0, rseq = 0;
	size_t lens[64];
	unsigned wraps = 0; /* records placed back at offset 0 */

	(void)state;
	shm_ring_init(&s, CAP);
	lane = s.mem + ML__RING_HDR_SIZE;
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t x = tu_mix(9000 + i);
		const void *cp;
		void *ptr;
		int n;

		if (x & 1) {
			size_t res = (size_t)((x >> 8) % 65);
			size_t len = (size_t)((x >> 20) % (res + 1));
			int err = ml_ring_reserve(s.r, ML_PRIO_HIGH, res, &ptr);

			if (err) {
				assert_int_equal(err, -EAGAIN);
				continue;
			}
			assert_true((uint8_t *)ptr >= lane + 8);
			assert_true((uint8_t *)ptr + res <= lane + CAP);
			wraps += (uint8_t *)ptr == lane + 8;
			tu_fill(ptr, len, 10, wseq);
			assert_int_equal(ml_ring_commit(s.r, len), 0);
			lens[wseq % 64] = len;
			wseq++;
			assert_true(wseq - rseq < 64);
		} else {
			n = ml_ring_peek(s.r, NULL, &cp);
			if (rseq == wseq) {
				assert_int_equal(n, -EAGAIN);
				continue;
			}
			assert_int_equal(n, (int)lens[rseq % 64]);
			assert_true((const uint8_t *)cp >= lane + 8);
			assert_true((const uint8_t *)cp + n <= lane + CAP);
			assert_int_equal(tu_check(cp, (size_t)n, 10, rseq), 0);
			assert_int_equal(ml_ring_release(s.r), 0);
			rseq++;
		}
	}
	assert_true(wseq > 5000);
	assert_true(wraps > 100);
	while (rseq < wseq) {
		const void *cp;

		assert_int_equal(ml_ring_peek(s.r, NULL, &cp), (int)lens[rseq % 64]);
		assert_int_equal(tu_check(cp, lens[rseq % 64], 10, rseq), 0);
		assert_int_equal(ml_ring_release(s.r), 0);
		rseq++;
	}
	assert_int_equal(used(s.r, 0), 0);
	assert_int_equal(ml_ring_poisoned(s.r), 0);
	shm_ring_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserve_commit),
		cmocka_unit_test(test_commit_errors),
		cmocka_unit_test(test_reservation_dropped),
		cmocka_unit_test(test_reserve_full),
		cmocka_unit_test(test_peek_release),
		cmocka_unit_test(test_peek_errors),
		cmocka_unit_test(test_peek_holds_record),
		cmocka_unit_test(test_zero_copy_wrap),
		cmocka_unit_test(test_zero_copy_cycles),
	};

	return cmocka_run_group_tests_name("test-ring-zerocopy", tests, NULL, NULL);
}

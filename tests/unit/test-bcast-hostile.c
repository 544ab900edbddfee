// SPDX-License-Identifier: MIT
/*
 * A hostile writer: corrupt config fields fail attach with -EPROTO; corrupt
 * headers, lengths, sequence numbers and indices give -EBADMSG and poison
 * only the lane concerned, the others still read; random bytes in the whole
 * data area never make a read return anything out of bounds (under ASan,
 * never touch memory outside the ring).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bcast.h"
#include "testutil.h"

#define CAP 4096u

static size_t mem_len(void)
{
	return ml__bcast_mem_size(CAP);
}

/* A ring with 3 records in each lane, and a reader at the start. */
static void *setup(struct ml__bcast_reader **r)
{
	void *mem = tu_shared_map(mem_len());
	struct ml__bcast_writer *w;
	uint8_t buf[32];

	assert_non_null(mem);
	assert_int_equal(ml__bcast_init(&w, mem, mem_len(), CAP, ML__BCAST_LOSSY, 0), 0);
	assert_int_equal(ml__bcast_attach(r, mem, mem_len(), 0, NULL), 0);
	for (uint64_t s = 0; s < 3; s++)
		for (int l = 0; l < ML_PRIO_COUNT; l++) {
			tu_fill(buf, 24, (uint64_t)l, s);
			assert_int_equal(ml__bcast_send(w, l, buf, 24), 0);
		}
	ml__bcast_writer_free(w);
	return mem;
}

static uint8_t *lane(void *mem, unsigned l)
{
	const struct ml__bcast_shm *shm = mem;

	return (uint8_t *)mem + ML__BCAST_HDR_SIZE + shm->lane_off[l];
}

/* After the lane-0 corruption: -EBADMSG once, lanes 1 and 2 still read. */
static void expect_poisoned(struct ml__bcast_reader *r)
{
	uint8_t buf[256];
	int prio, n, got = 0;

	assert_int_equal(ml__bcast_read(r, &prio, NULL, buf, sizeof(buf)), -EBADMSG);
	assert_int_equal(ml__bcast_poisoned(r), 1);
	while ((n = ml__bcast_read(r, &prio, NULL, buf, sizeof(buf))) >= 0) {
		assert_int_equal(n, 24);
		assert_true(prio == 1 || prio == 2);
		got++;
	}
	assert_int_equal(got, 6);
	/* Nothing left, and a lane is poisoned: that is the answer. */
	assert_int_equal(n, -EBADMSG);
}

static void test_config(void **state)
{
	struct ml__bcast_reader *r;
	void *mem = setup(&r);
	struct ml__bcast_shm *shm = mem, save = *shm;
	struct ml__bcast_reader *r2 = NULL;

	(void)state;
	ml__bcast_reader_free(r);
	for (int k = 0; k < 7; k++) {
		*shm = save;
		switch (k) {
		case 0: shm->version++; break;
		case 1: shm->policy = 7; break;
		case 2: shm->capacity = CAP * 2; break; /* more than the memory */
		case 3: shm->capacity = 1000; break;
		case 4: shm->lane_cap[1] += 8; break;
		case 5: shm->max_msg = 0; break;
		case 6: shm->max_msg = 205; break;
		}
		assert_int_equal(ml__bcast_attach(&r2, mem, mem_len(), 0, NULL), -EPROTO);
	}
	*shm = save;
	/* A misaligned head at attach. */
	atomic_store(&shm->head[1], 12);
	assert_int_equal(ml__bcast_attach(&r2, mem, mem_len(), 0, NULL), -EBADMSG);
	tu_shared_unmap(mem, mem_len());
}

/* Each kind of corruption of lane 0, at the reader's next record. */
static void test_records(void **state)
{
	(void)state;
	for (int k = 0; k < 9; k++) {
		struct ml__bcast_reader *r;
		void *mem = setup(&r);
		struct ml__bcast_shm *shm = mem;
		uint8_t *l0 = lane(mem, 0), buf[64];
		uint64_t w0;

		memcpy(&w0, l0, 8);
		switch (k) {
		case 0: l0[4] ^= 0x80; break;                 /* tag: wrong position */
		case 1: w0 = (w0 & ~0xffffffffull) | 205; memcpy(l0, &w0, 8); break;
		case 2: w0 = (w0 & ~0xffffffffull) | 200; memcpy(l0, &w0, 8); break; /* past head */
		case 3: l0[4] ^= 1; break;                    /* tag: other lane */
		case 4: l0[4] |= 4; break;                    /* a pad that is not at the end */
		case 5: atomic_store(&shm->head[0], 121); break;
		case 6: atomic_store(&shm->head[0], 4096 * 8); /* far ahead, bad tail */
			atomic_store(&shm->tail[0], 4); break;
		case 7: atomic_store(&shm->head[0], 4096 * 8); /* far ahead, tail behind head */
			atomic_store(&shm->tail[0], 0); break;
		case 8: /* the second record's seq goes back */
			assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, sizeof(buf)), 24);
			memset(l0 + 40 + 8, 0, 8);
			break;
		}
		expect_poisoned(r);
		ml__bcast_reader_free(r);
		tu_shared_unmap(mem, mem_len());
	}
}

/* Random bytes everywhere but the config line: bounded answers only. */
static void test_random(void **state)
{
	(void)state;
	for (uint64_t round = 0; round < 200; round++) {
		struct ml__bcast_reader *r;
		void *mem = setup(&r);
		uint8_t *p = (uint8_t *)mem + ML__LINE;
		uint8_t buf[256];
		const void *v;
		int n;

		tu_fill(p, mem_len() - ML__LINE, 99, round);
		/* Keep indices small sometimes, so records get decoded. */
		if (round & 1) {
			struct ml__bcast_shm *shm = mem;

			for (int l = 0; l < ML_PRIO_COUNT; l++) {
				atomic_store(&shm->head[l], (atomic_load(&shm->head[l]) % 4096) & ~7ull);
				atomic_store(&shm->tail[l], 0);
				atomic_store(&shm->frontier[l], 0);
			}
		}
		for (int i = 0; i < 50; i++) {
			n = (i & 1) ? ml__bcast_peek(r, NULL, NULL, &v)
				    : ml__bcast_read(r, NULL, NULL, buf, sizeof(buf));
			if (n >= 0) {
				assert_true(n <= 204);
				if (i & 1) {
					const uint8_t *b = v;

					assert_true(b >= (uint8_t *)mem + ML__BCAST_HDR_SIZE &&
						    b + n <= (uint8_t *)mem + mem_len());
					n = ml__bcast_done(r);
					assert_true(n == 0 || n == -ESTALE || n == -EBADMSG);
				}
			} else {
				assert_true(n == -EAGAIN || n == -EBADMSG);
			}
		}
		ml__bcast_reader_free(r);
		tu_shared_unmap(mem, mem_len());
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

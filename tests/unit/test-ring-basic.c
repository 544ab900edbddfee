// SPDX-License-Identifier: MIT
/*
 * Ring basics: create/free, one record round trip, empty, zero-length and
 * oversized messages, a read buffer that is too small, argument checking,
 * ml_strerror() and ml_version().
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

#define CAP 1024u

static ml_ring *new_ring(size_t cap, const struct ml_ring_opts *opts)
{
	ml_ring *r = NULL;

	assert_int_equal(ml_ring_new(&r, cap, opts), 0);
	assert_non_null(r);
	return r;
}

static uint32_t lane0_used(ml_ring *r)
{
	struct ml_ring_info info;

	assert_int_equal(ml_ring_info(r, &info), 0);
	return info.lane_used[0];
}

/* A fresh ring reports its geometry and is empty; free(NULL) is a no-op. */
static void test_new_free(void **state)
{
	struct ml_ring_info info;
	ml_ring *r = new_ring(CAP, NULL);

	(void)state;
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.lanes, 1);
	assert_int_equal(info.capacity, CAP);
	assert_int_equal(info.lane_capacity[0], CAP);
	assert_int_equal(info.lane_capacity[1], 0);
	assert_int_equal(info.lane_capacity[2], 0);
	/* Default max_msg: min(4096, a quarter of the lane). */
	assert_int_equal(info.max_msg, CAP / 4);
	assert_int_equal(info.lane_used[0], 0);
	assert_int_equal(info.poisoned, 0);
	assert_int_equal(ml_ring_poisoned(r), 0);
	ml_ring_free(r);
	ml_ring_free(NULL);

	/* A big ring caps the default max_msg at 4096. */
	r = new_ring(1u << 16, NULL);
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.max_msg, ML_RING_DEFAULT_MAX_MSG);
	ml_ring_free(r);
}

/* The bytes and the priority come back exactly as written. */
static void test_round_trip(void **state)
{
	unsigned char in[100], out[256];
	ml_ring *r = new_ring(CAP, NULL);
	int prio = -1;

	(void)state;
	tu_fill(in, sizeof(in), 1, 1);
	assert_int_equal(ml_ring_write(r, ML_PRIO_HIGH, in, sizeof(in)), 0);
	/* header 8 + payload 100 rounded to 104 */
	assert_int_equal(lane0_used(r), 112);
	memset(out, 0, sizeof(out));
	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), (int)sizeof(in));
	assert_int_equal(prio, ML_PRIO_HIGH);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(lane0_used(r), 0);
	/* Consumed: the ring is empty again. */
	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), -EAGAIN);

	/* prio may be NULL; every priority value is stored. */
	for (int p = ML_PRIO_CRITICAL; p <= ML_PRIO_LOW; p++) {
		tu_fill(in, 7, 2, (uint64_t)p);
		assert_int_equal(ml_ring_write(r, p, in, 7), 0);
	}
	for (int p = ML_PRIO_CRITICAL; p <= ML_PRIO_LOW; p++) {
		if (p == ML_PRIO_HIGH) {
			assert_int_equal(ml_ring_read(r, NULL, out, sizeof(out)), 7);
		} else {
			prio = -1;
			assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), 7);
			assert_int_equal(prio, p);
		}
		assert_int_equal(tu_check(out, 7, 2, (uint64_t)p), 0);
	}
	ml_ring_free(r);
}

/* Reading an empty ring is -EAGAIN and leaves the out parameters alone. */
static void test_empty(void **state)
{
	unsigned char out[16];
	ml_ring *r = new_ring(CAP, NULL);
	int prio = 77;

	(void)state;
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), -EAGAIN);
	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), -EAGAIN);
	assert_int_equal(prio, 77);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0x5a);
	ml_ring_free(r);
}

/* A zero-length record is a real record: read returns 0, not -EAGAIN. */
static void test_zero_length(void **state)
{
	unsigned char out[16], one = 0xab;
	ml_ring *r = new_ring(CAP, NULL);
	int prio = -1;

	(void)state;
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, NULL, 0), 0);
	assert_int_equal(ml_ring_write(r, ML_PRIO_CRITICAL, &one, 0), 0);
	assert_int_equal(ml_ring_write(r, ML_PRIO_HIGH, &one, 1), 0);
	/* Each empty record still takes its 8-byte header. */
	assert_int_equal(lane0_used(r), 8 + 8 + 16);

	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), 0);
	assert_int_equal(prio, ML_PRIO_LOW);
	/* A zero-byte buffer is big enough for a zero-length record. */
	assert_int_equal(ml_ring_read(r, &prio, out, 0), 0);
	assert_int_equal(prio, ML_PRIO_CRITICAL);
	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), 1);
	assert_int_equal(prio, ML_PRIO_HIGH);
	assert_int_equal(out[0], 0xab);
	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), -EAGAIN);
	/* No buffer at all is fine too: nothing is copied (UBSan checks). */
	assert_int_equal(ml_ring_write(r, ML_PRIO_HIGH, NULL, 0), 0);
	assert_int_equal(ml_ring_read(r, &prio, NULL, 0), 0);
	assert_int_equal(prio, ML_PRIO_HIGH);
	ml_ring_free(r);
}

/* Larger than max_msg: -EMSGSIZE and nothing is written. */
static void test_too_large(void **state)
{
	static unsigned char in[CAP], out[CAP];
	struct ml_ring_info info;
	void *ptr = NULL;
	ml_ring *r = new_ring(CAP, NULL);

	(void)state;
	assert_int_equal(ml_ring_info(r, &info), 0);
	tu_fill(in, sizeof(in), 3, 0);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, in, info.max_msg + 1), -EMSGSIZE);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, in, CAP), -EMSGSIZE);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, in, SIZE_MAX), -EMSGSIZE);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, info.max_msg + 1, &ptr), -EMSGSIZE);
	assert_null(ptr);
	assert_int_equal(lane0_used(r), 0);
	assert_int_equal(ml_ring_read(r, NULL, out, sizeof(out)), -EAGAIN);

	/* Exactly max_msg is fine and comes back whole. */
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, in, info.max_msg), 0);
	assert_int_equal(ml_ring_read(r, NULL, out, sizeof(out)), (int)info.max_msg);
	assert_memory_equal(in, out, info.max_msg);
	assert_int_equal(ml_ring_poisoned(r), 0);
	ml_ring_free(r);
}

/* A short read buffer is -EMSGSIZE and the record stays where it is. */
static void test_read_buffer_too_small(void **state)
{
	unsigned char in[40], out[64];
	ml_ring *r = new_ring(CAP, NULL);
	int prio = 55;

	(void)state;
	tu_fill(in, sizeof(in), 4, 0);
	assert_int_equal(ml_ring_write(r, ML_PRIO_HIGH, in, sizeof(in)), 0);
	tu_fill(in, 5, 4, 1);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, in, 5), 0);

	memset(out, 0, sizeof(out));
	assert_int_equal(ml_ring_read(r, &prio, out, 39), -EMSGSIZE);
	assert_int_equal(ml_ring_read(r, &prio, out, 0), -EMSGSIZE);
	assert_int_equal(prio, 55);
	assert_int_equal(lane0_used(r), 48 + 16);

	/* The first record, not the second, is delivered afterwards. */
	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), 40);
	assert_int_equal(prio, ML_PRIO_HIGH);
	assert_int_equal(tu_check(out, 40, 4, 0), 0);
	assert_int_equal(ml_ring_read(r, &prio, out, 5), 5);
	assert_int_equal(prio, ML_PRIO_LOW);
	assert_int_equal(tu_check(out, 5, 4, 1), 0);
	assert_int_equal(ml_ring_read(r, &prio, out, sizeof(out)), -EAGAIN);
	ml_ring_free(r);
}

/* NULL handles and pointers and bad priorities are -EINVAL. */
static void test_bad_args_io(void **state)
{
	unsigned char buf[16] = { 0 };
	struct ml_ring_info info;
	const void *cptr;
	void *ptr;
	ml_ring *r = new_ring(CAP, NULL);

	(void)state;
	assert_int_equal(ml_ring_write(NULL, ML_PRIO_LOW, buf, 1), -EINVAL);
	assert_int_equal(ml_ring_write(r, -1, buf, 1), -EINVAL);
	assert_int_equal(ml_ring_write(r, 3, buf, 1), -EINVAL);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, NULL, 1), -EINVAL);
	assert_int_equal(ml_ring_reserve(NULL, ML_PRIO_LOW, 1, &ptr), -EINVAL);
	assert_int_equal(ml_ring_reserve(r, -1, 1, &ptr), -EINVAL);
	assert_int_equal(ml_ring_reserve(r, 3, 1, &ptr), -EINVAL);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_LOW, 1, NULL), -EINVAL);
	assert_int_equal(ml_ring_commit(NULL, 0), -EINVAL);
	/* None of that wrote anything. */
	assert_int_equal(lane0_used(r), 0);

	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, buf, 1), 0);
	assert_int_equal(ml_ring_read(NULL, NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ml_ring_read(r, NULL, NULL, sizeof(buf)), -EINVAL);
	assert_int_equal(ml_ring_peek(NULL, NULL, &cptr), -EINVAL);
	assert_int_equal(ml_ring_peek(r, NULL, NULL), -EINVAL);
	assert_int_equal(ml_ring_release(NULL), -EINVAL);
	assert_int_equal(ml_ring_info(NULL, &info), -EINVAL);
	assert_int_equal(ml_ring_info(r, NULL), -EINVAL);
	assert_int_equal(ml_ring_poisoned(NULL), 0);
	/* The record survived every rejected call. */
	assert_int_equal(ml_ring_read(r, NULL, buf, sizeof(buf)), 1);
	assert_int_equal(ml_ring_poisoned(r), 0);
	ml_ring_free(r);
}

/* Capacities must be powers of two in [256, 1 GiB]. */
static void test_bad_capacity(void **state)
{
	static const size_t bad[] = { 0, 1, 128, 255, 257, 384, 1000, 4095,
				      (size_t)ML_RING_MAX_CAPACITY * 2,
				      (size_t)ML_RING_MAX_CAPACITY + 1, SIZE_MAX };
	ml_ring *r = (ml_ring *)&r; /* a non-NULL sentinel */

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ml_ring_mem_size(bad[i]), 0);
		assert_int_equal(ml_ring_new(&r, bad[i], NULL), -EINVAL);
	}
	assert_ptr_equal(r, (ml_ring *)&r);
	assert_int_equal(ml_ring_new(NULL, CAP, NULL), -EINVAL);

	/* The good ones: a 512-byte header plus the data. */
	assert_int_equal(ml_ring_mem_size(ML_RING_MIN_CAPACITY), 512 + 256);
	assert_int_equal(ml_ring_mem_size(4096), 512 + 4096);
	assert_int_equal(ml_ring_mem_size(ML_RING_MAX_CAPACITY), 512 + (size_t)ML_RING_MAX_CAPACITY);

	r = new_ring(ML_RING_MIN_CAPACITY, NULL);
	ml_ring_free(r);
}

/* Unknown flags and a max_msg above a quarter of the smallest lane. */
static void test_bad_opts(void **state)
{
	struct ml_ring_opts o = { .size = sizeof(o) };
	struct ml_ring_info info;
	ml_ring *r = NULL;

	(void)state;
	o.flags = 1u << 1;
	assert_int_equal(ml_ring_new(&r, CAP, &o), -EINVAL);
	o.flags = ML_RING_LANES3 | (1u << 31);
	assert_int_equal(ml_ring_new(&r, CAP, &o), -EINVAL);
	assert_null(r);

	/* One lane of 1024: the limit is 256. */
	o.flags = 0;
	o.max_msg = CAP / 4 + 1;
	assert_int_equal(ml_ring_new(&r, CAP, &o), -EINVAL);
	o.max_msg = CAP / 4;
	r = new_ring(CAP, &o);
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.max_msg, CAP / 4);
	ml_ring_free(r);

	/* Three lanes of 1024: critical is 200 bytes, so the limit is 50. */
	o.flags = ML_RING_LANES3;
	o.max_msg = 51;
	assert_int_equal(ml_ring_new(&r, CAP, &o), -EINVAL);
	o.max_msg = 50;
	r = new_ring(CAP, &o);
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.max_msg, 50);
	ml_ring_free(r);

	/* A smaller max_msg than the default is honoured. */
	o.flags = 0;
	o.max_msg = 10;
	r = new_ring(CAP, &o);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, &o, 11), -EMSGSIZE);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, &o, 10), 0);
	ml_ring_free(r);
}

/* opts.size: the copy_struct_from_user() rules. */
static void test_opts_size(void **state)
{
	struct {
		struct ml_ring_opts o;
		uint32_t future[4];
	} big;
	struct ml_ring_opts o;
	struct ml_ring_info info;
	ml_ring *r = NULL;

	(void)state;
	/* Smaller than the first version of the struct. */
	memset(&o, 0, sizeof(o));
	assert_int_equal(ml_ring_new(&r, CAP, &o), -EINVAL);
	o.size = sizeof(o) - 1;
	assert_int_equal(ml_ring_new(&r, CAP, &o), -EINVAL);
	o.size = offsetof(struct ml_ring_opts, starve_limit);
	assert_int_equal(ml_ring_new(&r, CAP, &o), -EINVAL);
	assert_null(r);

	/* Larger, with a field we do not know set: refused. */
	memset(&big, 0, sizeof(big));
	big.o.size = sizeof(big);
	big.o.flags = ML_RING_LANES3;
	big.future[3] = 1;
	assert_int_equal(ml_ring_new(&r, CAP, &big.o), -EINVAL);
	big.future[3] = 0;
	big.future[0] = 0x100;
	assert_int_equal(ml_ring_new(&r, CAP, &big.o), -EINVAL);
	assert_null(r);

	/* Larger with a zero tail: accepted, and the known fields are used. */
	big.future[0] = 0;
	r = new_ring(CAP, &big.o);
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.lanes, 3);
	ml_ring_free(r);

	/* NULL opts: defaults. */
	r = new_ring(CAP, NULL);
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.lanes, 1);
	ml_ring_free(r);
}

/* Every errno of the contract has its own, non-empty text. */
static void test_strerror(void **state)
{
	static const int errs[] = { EINVAL, EMSGSIZE, EAGAIN, EBADMSG, EPROTO, ENOMEM, EBUSY };
	const size_t n = sizeof(errs) / sizeof(errs[0]);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const char *s = ml_strerror(-errs[i]);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
		/* Positive errnos give the same text. */
		assert_string_equal(s, ml_strerror(errs[i]));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, ml_strerror(-errs[j]));
	}
	assert_non_null(ml_strerror(0));
	assert_true(strlen(ml_strerror(0)) > 0);
	assert_string_not_equal(ml_strerror(0), ml_strerror(-EINVAL));
	/* Errnos outside the contract still give some text. */
	assert_non_null(ml_strerror(-ENOENT));
	assert_true(strlen(ml_strerror(-ENOENT)) > 0);
}

static void test_version(void **state)
{
	(void)state;
	assert_string_equal(ml_version(), "0.1.0");
	assert_int_equal(MEMLINK_VERSION_MAJOR, 0);
	assert_int_equal(MEMLINK_VERSION_MINOR, 1);
	assert_int_equal(MEMLINK_VERSION_PATCH, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_free),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_read_buffer_too_small),
		cmocka_unit_test(test_bad_args_io),
		cmocka_unit_test(test_bad_capacity),
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test(test_opts_size),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_version),
	};

	return cmocka_run_group_tests_name("test-ring-basic", tests, NULL, NULL);
}

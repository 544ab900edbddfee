// SPDX-License-Identifier: MIT
/*
 * Claims: a producer that dies between claiming room and publishing the
 * record (mid-copy, or with a reservation open) leaves a claim that the
 * consumer can see (ml__ring_claims) and a record that is never
 * delivered. Everything published before it still is.
 */
#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "memlink.h"
#include "testutil.h"

#define CAP 4096u

static ml_ring *new_ring3(void *mem, size_t len)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3 };
	ml_ring *r = NULL;

	assert_int_equal(ml_ring_init(&r, mem, len, CAP, &o), 0);
	return r;
}

/* Writes and committed reservations leave no claim; open ones do. */
static void test_claims_follow_commits(void **state)
{
	size_t len = ml_ring_mem_size(CAP);
	void *mem = tu_shared_map(len);
	ml_ring *r = new_ring3(mem, len);
	unsigned char buf[64];
	void *p;

	(void)state;
	assert_int_equal(ml__ring_claims(r), 0);
	tu_fill(buf, sizeof(buf), 1, 1);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, buf, sizeof(buf)), 0);
	assert_int_equal(ml__ring_claims(r), 0);
	assert_int_equal(ml_ring_reserve(r, ML_PRIO_HIGH, 32, &p), 0);
	assert_int_equal(ml__ring_claims(r), 1u << ML_PRIO_HIGH);
	assert_int_equal(ml_ring_commit(r, 32), 0);
	assert_int_equal(ml__ring_claims(r), 0);
	/* Across the lane's end (a pad record in front): the same. */
	for (int i = 0; i < 200; i++) {
		assert_int_equal(ml_ring_reserve(r, ML_PRIO_CRITICAL, 40 + i % 24, &p), 0);
		assert_int_equal(ml__ring_claims(r), 1u << ML_PRIO_CRITICAL);
		assert_int_equal(ml_ring_commit(r, 40 + i % 24), 0);
		assert_int_equal(ml__ring_claims(r), 0);
		assert_true(ml_ring_read(r, NULL, buf, sizeof(buf)) >= 0);
	}
	ml_ring_free(r);
	tu_shared_unmap(mem, len);
}

/*
 * A producer process that dies in the middle of a record: the consumer
 * gets every record published before, never the half-written one, and
 * sees the claim.
 */
static void test_producer_dies_mid_record(void **state)
{
	size_t len = ml_ring_mem_size(CAP);
	void *mem = tu_shared_map(len);
	ml_ring *r = new_ring3(mem, len);
	unsigned char buf[64];
	int status, n, prio;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ml_ring *w;
		void *p;

		if (ml_ring_attach(&w, mem, len))
			_exit(1);
		for (uint64_t s = 0; s < 5; s++) {
			tu_fill(buf, 48, 7, s);
			if (ml_ring_write(w, ML_PRIO_HIGH, buf, 48))
				_exit(2);
		}
		/* The sixth: room claimed, half the bytes written, then death. */
		if (ml_ring_reserve(w, ML_PRIO_HIGH, 48, &p))
			_exit(3);
		memset(p, 0xee, 24);
		kill(getpid(), SIGKILL);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	for (uint64_t s = 0; s < 5; s++) {
		n = ml_ring_read(r, &prio, buf, sizeof(buf));
		assert_int_equal(n, 48);
		assert_int_equal(prio, ML_PRIO_HIGH);
		assert_int_equal(tu_check(buf, 48, 7, s), 0);
	}
	assert_int_equal(ml_ring_read(r, &prio, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(ml__ring_claims(r), 1u << ML_PRIO_HIGH);
	assert_int_equal(ml_ring_poisoned(r), 0);
	ml_ring_free(r);
	tu_shared_unmap(mem, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claims_follow_commits),
		cmocka_unit_test(test_producer_dies_mid_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

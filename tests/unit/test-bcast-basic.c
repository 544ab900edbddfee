// SPDX-License-Identifier: MIT
/*
 * Broadcast ring basics: every priority with its own sequence numbers,
 * strict order between lanes and FIFO within one; several readers each get
 * every record; max_msg and -EMSGSIZE; wrap-around behind pad records; late
 * join at the newest and at the oldest record; a reservation never
 * committed exposes nothing; argument checks.
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

static void *mem_new(size_t cap)
{
	void *m = tu_shared_map(ml__bcast_mem_size(cap));

	assert_non_null(m);
	return m;
}

static struct ml__bcast_writer *writer(void *mem, size_t cap, unsigned policy)
{
	struct ml__bcast_writer *w = NULL;

	assert_int_equal(ml__bcast_init(&w, mem, ml__bcast_mem_size(cap), cap, policy, 0), 0);
	return w;
}

static struct ml__bcast_reader *reader(void *mem, size_t cap, unsigned flags)
{
	struct ml__bcast_reader *r = NULL;

	assert_int_equal(ml__bcast_attach(&r, mem, ml__bcast_mem_size(cap), flags, NULL), 0);
	return r;
}

/* Read one record and check it is (prio, seq) with tu_fill bytes. */
static void expect(struct ml__bcast_reader *r, int prio, uint64_t seq, uint32_t len)
{
	uint8_t buf[4096];
	uint64_t s = ~0ull;
	int p = -1;

	assert_int_equal(ml__bcast_read(r, &p, &s, buf, sizeof(buf)), (int)len);
	assert_int_equal(p, prio);
	assert_int_equal(s, seq);
	assert_int_equal(tu_check(buf, len, (uint64_t)prio, seq), 0);
}

static void send(struct ml__bcast_writer *w, int prio, uint64_t seq, uint32_t len)
{
	uint8_t buf[4096];

	tu_fill(buf, len, (uint64_t)prio, seq);
	assert_int_equal(ml__bcast_send(w, prio, buf, len), 0);
}

/* Geometry and arguments. */
static void test_args(void **state)
{
	struct ml__bcast_writer *w = NULL;
	struct ml__bcast_reader *r = NULL;
	void *mem = mem_new(CAP);
	uint8_t buf[8];

	(void)state;
	assert_int_equal(ml__bcast_mem_size(512), 0);
	assert_int_equal(ml__bcast_mem_size(3000), 0);
	assert_int_equal(ml__bcast_mem_size(CAP), CAP + ML__BCAST_HDR_SIZE);
	assert_int_equal(ml__bcast_init(&w, mem, CAP, CAP, ML__BCAST_LOSSY, 0), -EINVAL);
	assert_int_equal(ml__bcast_init(&w, (char *)mem + 8, 2 * CAP, CAP, 0, 0), -EINVAL);
	assert_int_equal(ml__bcast_init(&w, mem, 2 * CAP, CAP, 2, 0), -EINVAL);
	/* max_msg at most a quarter of the smallest lane (819 -> 816 / 4). */
	assert_int_equal(ml__bcast_init(&w, mem, 2 * CAP, CAP, 0, 205), -EINVAL);
	/* Memory never laid out: no magic. */
	assert_int_equal(ml__bcast_attach(&r, mem, 2 * CAP, 0, NULL), -EPROTO);
	assert_int_equal(ml__bcast_init(&w, mem, 2 * CAP, CAP, 0, 204), 0);
	assert_int_equal(ml__bcast_attach(&r, mem, CAP, 0, NULL), -EPROTO); /* too short */
	assert_int_equal(ml__bcast_attach(&r, mem, 2 * CAP, 4, NULL), -EINVAL);
	assert_int_equal(ml__bcast_attach(&r, mem, 2 * CAP, 0, NULL), 0);
	assert_int_equal(ml__bcast_send(w, 3, buf, 1), -EINVAL);
	assert_int_equal(ml__bcast_send(w, -1, buf, 1), -EINVAL);
	assert_int_equal(ml__bcast_send(w, 0, NULL, 1), -EINVAL);
	assert_int_equal(ml__bcast_send(w, 0, buf, 205), -EMSGSIZE);
	assert_int_equal(ml__bcast_commit(w, 0), -EINVAL);
	assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(ml__bcast_done(r), -EINVAL);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	/* A reliable ring wants the reader's cursor. */
	w = writer(mem, CAP, ML__BCAST_RELIABLE);
	assert_int_equal(ml__bcast_attach(&r, mem, 2 * CAP, 0, NULL), -EINVAL);
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

/* Strict priority between lanes, FIFO and seq from 0 within each. */
static void test_prio_order(void **state)
{
	void *mem = mem_new(CAP);
	struct ml__bcast_writer *w = writer(mem, CAP, ML__BCAST_LOSSY);
	struct ml__bcast_reader *r = reader(mem, CAP, 0);
	uint8_t buf[16];

	(void)state;
	for (uint64_t i = 0; i < 5; i++) {
		send(w, ML_PRIO_LOW, i, (uint32_t)(i * 7));
		send(w, ML_PRIO_HIGH, i, (uint32_t)(i * 5 + 1));
		send(w, ML_PRIO_CRITICAL, i, (uint32_t)(i * 3 + 2));
	}
	for (uint64_t i = 0; i < 5; i++)
		expect(r, ML_PRIO_CRITICAL, i, (uint32_t)(i * 3 + 2));
	/* A Critical record written now goes before the remaining High ones. */
	send(w, ML_PRIO_CRITICAL, 5, 9);
	expect(r, ML_PRIO_CRITICAL, 5, 9);
	for (uint64_t i = 0; i < 5; i++)
		expect(r, ML_PRIO_HIGH, i, (uint32_t)(i * 5 + 1));
	for (uint64_t i = 0; i < 5; i++)
		expect(r, ML_PRIO_LOW, i, (uint32_t)(i * 7));
	assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(ml__bcast_lost(r, NULL), 0);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

/* Each of several readers gets every record, in place and by copy. */
static void test_many_readers(void **state)
{
	void *mem = mem_new(CAP);
	struct ml__bcast_writer *w = writer(mem, CAP, ML__BCAST_LOSSY);
	struct ml__bcast_reader *r[4];
	uint64_t got[4] = { 0 };

	(void)state;
	for (int i = 0; i < 4; i++)
		r[i] = reader(mem, CAP, 0);
	/* Many laps of the High lane (2048 bytes), read as they come. */
	for (uint64_t s = 0; s < 2000; s++) {
		send(w, ML_PRIO_HIGH, s, (uint32_t)(s % 97));
		for (int i = 0; i < 4; i++) {
			if (i & 1) {
				const void *p;
				uint64_t seq;
				int prio;

				assert_int_equal(ml__bcast_peek(r[i], &prio, &seq, &p), (int)(s % 97));
				assert_int_equal(seq, s);
				assert_int_equal(tu_check(p, s % 97, ML_PRIO_HIGH, s), 0);
				assert_int_equal(ml__bcast_done(r[i]), 0);
			} else {
				expect(r[i], ML_PRIO_HIGH, s, (uint32_t)(s % 97));
			}
			got[i]++;
		}
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(got[i], 2000);
		assert_int_equal(ml__bcast_lost(r[i], NULL), 0);
		ml__bcast_reader_free(r[i]);
	}
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

/* max_msg passes, max_msg + 1 does not; a short buffer leaves the record. */
static void test_max_msg(void **state)
{
	void *mem = mem_new(CAP);
	struct ml__bcast_writer *w = writer(mem, CAP, ML__BCAST_LOSSY);
	struct ml__bcast_reader *r = reader(mem, CAP, 0);
	uint8_t buf[512];
	void *p;

	(void)state;
	/* Default: a quarter of the smallest lane (816 bytes). */
	assert_int_equal(ml__bcast_send(w, 0, buf, 205), -EMSGSIZE);
	assert_int_equal(ml__bcast_reserve(w, 0, 205, &p), -EMSGSIZE);
	send(w, 0, 0, 204);
	assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, 203), -EMSGSIZE);
	assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, 0), -EMSGSIZE);
	expect(r, 0, 0, 204);
	/* Zero-length records are records too. */
	assert_int_equal(ml__bcast_send(w, 2, NULL, 0), 0);
	assert_int_equal(ml__bcast_read(r, NULL, NULL, NULL, 0), 0);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

/* Records of every size across many wraps: pads keep every record whole. */
static void test_wrap(void **state)
{
	void *mem = mem_new(CAP);
	struct ml__bcast_writer *w = writer(mem, CAP, ML__BCAST_LOSSY);
	struct ml__bcast_reader *r = reader(mem, CAP, 0);
	const struct ml__bcast_shm *shm = mem;

	(void)state;
	for (uint64_t s = 0; s < 3000; s++) {
		uint32_t len = (uint32_t)(tu_mix(s) % 205);
		void *p;

		if (s & 1) {
			assert_int_equal(ml__bcast_reserve(w, 0, len, &p), 0);
			tu_fill(p, len, 0, s);
			assert_int_equal(ml__bcast_commit(w, len), 0);
		} else {
			send(w, 0, s, len);
		}
		expect(r, 0, s, len);
	}
	/* Many laps of the 816-byte Critical lane went by. */
	assert_true(atomic_load(&shm->head[0]) > 50 * 816);
	assert_int_equal(ml__bcast_lost(r, NULL), 0);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

/* Late join: the newest position gets what comes next; the oldest, what is there. */
static void test_late_join(void **state)
{
	void *mem = mem_new(CAP);
	struct ml__bcast_writer *w = writer(mem, CAP, ML__BCAST_LOSSY);
	struct ml__bcast_reader *newest, *oldest;
	uint64_t lost[ML_PRIO_COUNT];
	uint8_t buf[64];
	uint64_t seq = 0, first;
	int n = 0;

	(void)state;
	/* 100 records of 40 bytes lap the 2048-byte High lane. */
	for (uint64_t s = 0; s < 100; s++)
		send(w, ML_PRIO_HIGH, s, 24);
	newest = reader(mem, CAP, 0);
	oldest = reader(mem, CAP, ML__BCAST_JOIN_OLDEST);
	assert_int_equal(ml__bcast_read(newest, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	send(w, ML_PRIO_HIGH, 100, 24);
	expect(newest, ML_PRIO_HIGH, 100, 24);
	/* The oldest intact record: what a lane of 2048 bytes holds of 101. */
	assert_int_equal(ml__bcast_read(oldest, NULL, &first, buf, sizeof(buf)), 24);
	assert_int_equal(tu_check(buf, 24, ML_PRIO_HIGH, first), 0);
	assert_int_equal(first, 101 - 2048 / 40);
	for (seq = first + 1; seq <= 100; seq++, n++)
		expect(oldest, ML_PRIO_HIGH, seq, 24);
	assert_int_equal(n, 100 - first);
	assert_int_equal(ml__bcast_read(oldest, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	/* Losses count from the first record seen. */
	assert_int_equal(ml__bcast_lost(oldest, lost), 0);
	ml__bcast_reader_free(newest);
	ml__bcast_reader_free(oldest);
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

/* A reservation not committed exposes nothing; a later one replaces it. */
static void test_reserve_uncommitted(void **state)
{
	void *mem = mem_new(CAP);
	struct ml__bcast_writer *w = writer(mem, CAP, ML__BCAST_LOSSY);
	struct ml__bcast_reader *r = reader(mem, CAP, 0);
	uint8_t buf[64];
	void *p;

	(void)state;
	assert_int_equal(ml__bcast_reserve(w, 1, 32, &p), 0);
	tu_fill(p, 32, 1, 0);
	assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	/* Dropped by the next send: the record sent is seq 0. */
	send(w, 1, 0, 16);
	assert_int_equal(ml__bcast_commit(w, 32), -EINVAL);
	expect(r, 1, 0, 16);
	assert_int_equal(ml__bcast_reserve(w, 1, 32, &p), 0);
	tu_fill(p, 20, 1, 1);
	assert_int_equal(ml__bcast_commit(w, 33), -EINVAL);
	assert_int_equal(ml__bcast_commit(w, 20), 0); /* shorter than reserved */
	expect(r, 1, 1, 20);
	assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

/* A batch send is n sends; it stops at the first that fails. */
static void test_batch(void **state)
{
	void *mem = mem_new(CAP);
	struct ml__bcast_writer *w = writer(mem, CAP, ML__BCAST_LOSSY);
	struct ml__bcast_reader *r = reader(mem, CAP, 0);
	uint8_t data[3][32];
	struct ml_msg m[4];
	int err;

	(void)state;
	for (int i = 0; i < 3; i++) {
		tu_fill(data[i], 32, (uint64_t)(2 - i), 0);
		m[i] = (struct ml_msg){ .data = data[i], .len = 32, .prio = 2 - i };
	}
	m[3] = (struct ml_msg){ .data = data[0], .len = 300, .prio = 0 };
	assert_int_equal(ml__bcast_send_batch(w, m, 4, &err), 3);
	assert_int_equal(err, -EMSGSIZE);
	expect(r, 0, 0, 32);
	expect(r, 1, 0, 32);
	expect(r, 2, 0, 32);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

/* A reader started where its writer says (topics' reliable join). */
static void test_start(void **state)
{
	void *mem = mem_new(CAP);
	struct ml__bcast_writer *w = writer(mem, CAP, ML__BCAST_LOSSY);
	struct ml__bcast_reader *r = reader(mem, CAP, ML__BCAST_UNSTARTED);
	uint64_t pos[ML_PRIO_COUNT], bad[ML_PRIO_COUNT];
	uint8_t buf[64];

	(void)state;
	send(w, ML_PRIO_LOW, 0, 24);
	assert_false(ml__bcast_started(r));
	assert_false(ml__bcast_pending(r));
	assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	ml__bcast_start_at(w, false, pos);
	memcpy(bad, pos, sizeof(bad));
	bad[ML_PRIO_LOW] += 8; /* beyond the head */
	assert_int_equal(ml__bcast_start(r, bad), -EBADMSG);
	bad[ML_PRIO_LOW] = pos[ML_PRIO_LOW] + 4; /* misaligned */
	assert_int_equal(ml__bcast_start(r, bad), -EBADMSG);
	assert_false(ml__bcast_started(r));
	/* At the heads: the next one; at the tails: the oldest too. */
	assert_int_equal(ml__bcast_start(r, pos), 0);
	assert_true(ml__bcast_started(r));
	assert_int_equal(ml__bcast_read(r, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	send(w, ML_PRIO_LOW, 1, 24);
	expect(r, ML_PRIO_LOW, 1, 24);
	ml__bcast_reader_free(r);
	r = reader(mem, CAP, ML__BCAST_UNSTARTED);
	ml__bcast_start_at(w, true, pos);
	assert_int_equal(ml__bcast_start(r, pos), 0);
	expect(r, ML_PRIO_LOW, 0, 24);
	expect(r, ML_PRIO_LOW, 1, 24);
	assert_int_equal(ml__bcast_lost(r, NULL), 0);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	tu_shared_unmap(mem, ml__bcast_mem_size(CAP));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_prio_order),
		cmocka_unit_test(test_many_readers),
		cmocka_unit_test(test_max_msg),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_late_join),
		cmocka_unit_test(test_reserve_uncommitted),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

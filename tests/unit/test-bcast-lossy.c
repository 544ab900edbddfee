// SPDX-License-Identifier: MIT
/*
 * Lossy broadcast: a reader that stopped while the writer wrote three
 * capacities loses exactly the records overwritten, per lane, and every
 * record it does get is whole; received + lost == written. An in-place view
 * overwritten before done() is -ESTALE and counted as lost. A lossy reader
 * works on a read-only mapping (any store to it would kill the test).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "bcast.h"
#include "testutil.h"

#define CAP 4096u

struct maps {
	int fd;
	void *rw;        /* the writer's */
	const void *ro;  /* the readers': PROT_READ */
	size_t len;
};

static void maps_new(struct maps *m)
{
	m->len = ml__bcast_mem_size(CAP);
	m->fd = memfd_create("bcast-test", 0);
	assert_true(m->fd >= 0);
	assert_int_equal(ftruncate(m->fd, (off_t)m->len), 0);
	m->rw = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	m->ro = mmap(NULL, m->len, PROT_READ, MAP_SHARED, m->fd, 0);
	assert_true(m->rw != MAP_FAILED && m->ro != MAP_FAILED);
}

static void maps_free(struct maps *m)
{
	munmap(m->rw, m->len);
	munmap((void *)m->ro, m->len);
	close(m->fd);
}

static uint32_t len_of(unsigned lane, uint64_t seq)
{
	return (uint32_t)(tu_mix(seq * 3 + lane) % 150);
}

static void send(struct ml__bcast_writer *w, unsigned lane, uint64_t seq)
{
	uint8_t buf[256];
	uint32_t len = len_of(lane, seq);

	tu_fill(buf, len, lane, seq);
	assert_int_equal(ml__bcast_send(w, (int)lane, buf, len), 0);
}

/* Read until empty; every record must be whole. Counts per lane. */
static void drain(struct ml__bcast_reader *r, uint64_t got[ML_PRIO_COUNT],
		  uint64_t first[ML_PRIO_COUNT])
{
	uint8_t buf[256];
	uint64_t seq;
	int prio, n;

	while ((n = ml__bcast_read(r, &prio, &seq, buf, sizeof(buf))) >= 0) {
		assert_true(prio >= 0 && prio < ML_PRIO_COUNT);
		assert_int_equal((uint32_t)n, len_of((unsigned)prio, seq));
		assert_int_equal(tu_check(buf, (size_t)n, (uint64_t)prio, seq), 0);
		if (first && first[prio] == ~0ull)
			first[prio] = seq;
		got[prio]++;
	}
	assert_int_equal(n, -EAGAIN);
}

/* The reader stops, the writer writes three capacities, the reader resumes. */
static void test_overrun(void **state)
{
	struct maps m;
	struct ml__bcast_writer *w;
	struct ml__bcast_reader *r;
	uint64_t sent[ML_PRIO_COUNT] = { 0 }, got[ML_PRIO_COUNT] = { 0 };
	uint64_t first[ML_PRIO_COUNT], lost[ML_PRIO_COUNT], before[ML_PRIO_COUNT], bytes = 0, n;

	(void)state;
	maps_new(&m);
	assert_int_equal(ml__bcast_init(&w, m.rw, m.len, CAP, ML__BCAST_LOSSY, 0), 0);
	assert_int_equal(ml__bcast_attach(&r, m.ro, m.len, 0, NULL), 0);
	for (n = 0; n < 30; n++) {
		unsigned lane = (unsigned)(tu_mix(n) % 3);

		send(w, lane, sent[lane]++);
	}
	drain(r, got, NULL);
	assert_memory_equal(got, sent, sizeof(got));
	memcpy(before, sent, sizeof(before));
	/* Stopped: three capacities of records go by. */
	for (; bytes < 3 * CAP; n++) {
		unsigned lane = (unsigned)(tu_mix(n) % 3);

		bytes += 16 + ((len_of(lane, sent[lane]) + 7) & ~7u);
		send(w, lane, sent[lane]++);
	}
	memset(first, 0xff, sizeof(first));
	drain(r, got, first);
	ml__bcast_lost(r, lost);
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
		const struct ml__bcast_shm *shm = m.ro;
		const uint8_t *tail_rec = (const uint8_t *)m.ro + ML__BCAST_HDR_SIZE +
					  shm->lane_off[l] + shm->tail[l] % shm->lane_cap[l];
		uint64_t tail_seq, w0;

		/* Resumed at the oldest intact record (or the one behind its pad). */
		memcpy(&w0, tail_rec, 8);
		memcpy(&tail_seq, tail_rec + 8, 8);
		if (ML__REC_TAG_TYPE((uint32_t)(w0 >> 32)) == ML__REC_PAD)
			memcpy(&tail_seq, (const uint8_t *)m.ro + ML__BCAST_HDR_SIZE +
				       shm->lane_off[l] + 8, 8);
		assert_int_equal(first[l], tail_seq);
		/* Lost: exactly the records between the last read and that one. */
		assert_int_equal(lost[l], first[l] - before[l]);
		assert_int_equal(got[l] - before[l], sent[l] - first[l]);
		assert_int_equal(got[l] + lost[l], sent[l]);
		assert_true(lost[l] > 0);
	}
	assert_int_equal(ml__bcast_lost(r, NULL), lost[0] + lost[1] + lost[2]);
	assert_int_equal(ml__bcast_poisoned(r), 0);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	maps_free(&m);
}

/* A view overwritten before done() is -ESTALE, and counted lost. */
static void test_stale_view(void **state)
{
	struct maps m;
	struct ml__bcast_writer *w;
	struct ml__bcast_reader *r;
	uint64_t got[ML_PRIO_COUNT] = { 0 }, seq, sent = 0;
	const void *p;
	int prio;

	(void)state;
	maps_new(&m);
	assert_int_equal(ml__bcast_init(&w, m.rw, m.len, CAP, ML__BCAST_LOSSY, 0), 0);
	assert_int_equal(ml__bcast_attach(&r, m.ro, m.len, 0, NULL), 0);
	send(w, 1, sent++);
	send(w, 1, sent++);
	assert_int_equal(ml__bcast_peek(r, &prio, &seq, &p), (int)len_of(1, 0));
	assert_int_equal(seq, 0);
	assert_int_equal(ml__bcast_done(r), 0);
	assert_int_equal(ml__bcast_peek(r, &prio, &seq, &p), (int)len_of(1, 1));
	assert_int_equal(seq, 1);
	/* The same view again until done(). */
	assert_int_equal(ml__bcast_peek(r, &prio, &seq, &p), (int)len_of(1, 1));
	assert_int_equal(ml__bcast_read(r, NULL, NULL, NULL, 0), -EBUSY);
	while (sent < 100)
		send(w, 1, sent++);
	assert_int_equal(ml__bcast_done(r), -ESTALE);
	drain(r, got, NULL);
	assert_int_equal(got[1] + ml__bcast_lost(r, NULL), sent - 1);
	assert_true(got[1] > 0 && got[1] < 98);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	maps_free(&m);
}

/* Join at the oldest on a lapped ring, read-only, then follow. */
static void test_readonly_join(void **state)
{
	struct maps m;
	struct ml__bcast_writer *w;
	struct ml__bcast_reader *r;
	uint64_t got[ML_PRIO_COUNT] = { 0 }, first[ML_PRIO_COUNT];

	(void)state;
	maps_new(&m);
	assert_int_equal(ml__bcast_init(&w, m.rw, m.len, CAP, ML__BCAST_LOSSY, 0), 0);
	for (uint64_t s = 0; s < 200; s++)
		send(w, 2, s);
	assert_int_equal(ml__bcast_attach(&r, m.ro, m.len, ML__BCAST_JOIN_OLDEST, NULL), 0);
	memset(first, 0xff, sizeof(first));
	drain(r, got, first);
	assert_true(first[2] > 0 && first[2] < 200);
	assert_int_equal(got[2], 200 - first[2]);
	assert_int_equal(ml__bcast_lost(r, NULL), 0);
	ml__bcast_reader_free(r);
	ml__bcast_writer_free(w);
	maps_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overrun),
		cmocka_unit_test(test_stale_view),
		cmocka_unit_test(test_readonly_join),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Several waiter and waker processes hammering one word lose no wake-up.
 *
 * lockstep: 4 waiters and 2 wakers. The wakers advance a sequence word
 * only once every waiter has acknowledged the current value (an ack
 * counter, itself waited on by the wakers), so each waiter must observe
 * every increment. A lost wake shows up as a wait that times out (2 s,
 * while the others are busy) and as a count that does not add up: every
 * wait that returned 0 was counted by exactly one WAKE.
 *
 * free_running: the wakers increment and wake as fast as they can; the
 * waiters follow the word to its final value; a wait that times out with
 * the word already changed is a lost wake.
 */
#include "memlink_test.h"

#define NWAITERS 4
#define NWAKERS	 2
#define ROUNDS	 2000
#define FREE_INCREMENTS 5000	/* per waker */

#define SEQ_OFF	 0		/* the word */
#define ACKS_OFF 64		/* acks of all waiters together */
#define GO_OFF	 128		/* start barrier */

#define STALL_NS (2 * ML_NSEC_PER_SEC)
#define BOUND_NS (90 * ML_NSEC_PER_SEC)

struct waiter_stats {
	uint64_t observed;	/* increments seen */
	uint64_t skipped;	/* increments jumped over */
	uint64_t woken;		/* waits that returned 0 */
	uint64_t eagain;
	uint64_t timeouts;	/* stale: the word had changed */
	uint64_t errors;
	uint64_t acks_woken;	/* wakers woken by its ack WAKEs */
	uint64_t wakes;		/* its WAKE calls */
};

struct waker_stats {
	uint64_t increments;
	uint64_t seq_woken;	/* waiters its WAKEs woke */
	uint64_t woken;		/* its waits on ACKS that returned 0 */
	uint64_t eagain;
	uint64_t timeouts;
	uint64_t errors;
	uint64_t wakes;		/* its WAKE calls */
};

struct shared {
	struct waiter_stats waiter[NWAITERS];
	struct waker_stats waker[NWAKERS];
};

FIXTURE(stress) {
	long page;
	char name[MEMLINK_NAME_MAX];
	int fd;
	volatile __u32 *map;
	struct shared *sh;
	pid_t pids[NWAITERS + NWAKERS];
};

FIXTURE_SETUP(stress)
{
	self->page = ml_page_size();
	ml_name(self->name, "stress");
	self->fd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, self->fd);
	self->map = ml_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	self->sh = ml_shared_anon(sizeof(*self->sh));
	ASSERT_NE(NULL, self->sh);
}

FIXTURE_TEARDOWN(stress)
{
	close(self->fd);
}

static __u32 load(volatile __u32 *m, uint64_t off)
{
	return __atomic_load_n(&m[off / 4], __ATOMIC_SEQ_CST);
}

/* A child's own file and mapping; waits for the start signal. */
static int child_setup(const char *name, long page, volatile __u32 **m)
{
	int fd = ml_open_attach(name, 0);

	if (fd < 0)
		_exit(90);
	*m = ml_map(fd, page, PROT_READ | PROT_WRITE, 0);
	if (*m == MAP_FAILED)
		_exit(91);
	while (load(*m, GO_OFF) == 0) {
		int r = ml_wait(fd, GO_OFF, 0, 10 * ML_NSEC_PER_SEC);

		if (r && r != -EAGAIN)
			_exit(92);
	}
	return fd;
}

static void lockstep_waiter(const char *name, long page, struct waiter_stats *st)
{
	volatile __u32 *m;
	int64_t end = ml_now_ns() + BOUND_NS;
	__u32 last = 0;
	int fd = child_setup(name, page, &m);

	while (last < ROUNDS && ml_now_ns() < end) {
		__u32 v = load(m, SEQ_OFF);
		int r;

		if (v == last) {
			r = ml_wait(fd, SEQ_OFF, last, STALL_NS);
			if (r == 0)
				st->woken++;
			else if (r == -EAGAIN)
				st->eagain++;
			else if (r == -ETIMEDOUT)
				st->timeouts++;
			else
				st->errors++;
			continue;
		}
		if (v != last + 1)
			st->skipped++;
		last = v;
		st->observed++;
		__atomic_fetch_add(&m[ACKS_OFF / 4], 1, __ATOMIC_SEQ_CST);
		r = ml_wake(fd, ACKS_OFF, INT_MAX);
		st->wakes++;
		if (r < 0)
			st->errors++;
		else
			st->acks_woken += r;
	}
	_exit(last == ROUNDS ? 0 : 1);
}

static void lockstep_waker(const char *name, long page, struct waker_stats *st)
{
	volatile __u32 *m;
	int64_t end = ml_now_ns() + BOUND_NS;
	int fd = child_setup(name, page, &m);

	while (ml_now_ns() < end) {
		__u32 k = load(m, SEQ_OFF), a;
		int r;

		if (k >= ROUNDS)
			_exit(0);
		a = load(m, ACKS_OFF);
		if (a < NWAITERS * k) {
			r = ml_wait(fd, ACKS_OFF, a, STALL_NS);
			if (r == 0)
				st->woken++;
			else if (r == -EAGAIN)
				st->eagain++;
			else if (r == -ETIMEDOUT)
				st->timeouts++;
			else
				st->errors++;
			continue;
		}
		if (__atomic_compare_exchange_n(&m[SEQ_OFF / 4], &k, k + 1, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			st->increments++;
			r = ml_wake(fd, SEQ_OFF, INT_MAX);
			st->wakes++;
			if (r < 0)
				st->errors++;
			else
				st->seq_woken += r;
		}
	}
	_exit(1);
}

static void start_all(struct __test_metadata *_metadata, FIXTURE_DATA(stress) *self)
{
	struct memlink_info info;

	/* Every child sleeps on the start word: then go. */
	ASSERT_EQ(0, ml_wait_waiters(self->fd, NWAITERS + NWAKERS, 30000));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(1U + NWAITERS + NWAKERS, info.attached);
	__atomic_store_n(&self->map[GO_OFF / 4], 1, __ATOMIC_SEQ_CST);
	EXPECT_EQ(NWAITERS + NWAKERS, ml_wake(self->fd, GO_OFF, INT_MAX));
}

TEST_F_TIMEOUT(stress, lockstep, 180)
{
	uint64_t woken = 0, seq_woken = 0, acks_woken = 0, waker_woken = 0;
	uint64_t increments = 0, wakes = 0;
	struct memlink_info info;
	int64_t t0, dt;
	int i;

	for (i = 0; i < NWAITERS + NWAKERS; i++) {
		self->pids[i] = ml_fork();
		ASSERT_LE(0, self->pids[i]);
		if (self->pids[i] == 0) {
			if (i < NWAITERS)
				lockstep_waiter(self->name, self->page, &self->sh->waiter[i]);
			else
				lockstep_waker(self->name, self->page,
					       &self->sh->waker[i - NWAITERS]);
		}
	}
	start_all(_metadata, self);
	t0 = ml_now_ns();
	for (i = 0; i < NWAITERS + NWAKERS; i++)
		EXPECT_EQ(0, ml_reap(self->pids[i])) TH_LOG("process %d", i);
	dt = ml_now_ns() - t0;

	for (i = 0; i < NWAITERS; i++) {
		struct waiter_stats *s = &self->sh->waiter[i];

		ksft_print_msg("waiter %d: observed %llu woken %llu eagain %llu stalls %llu\n", i,
			       (unsigned long long)s->observed, (unsigned long long)s->woken,
			       (unsigned long long)s->eagain, (unsigned long long)s->timeouts);
		EXPECT_EQ((uint64_t)ROUNDS, s->observed) TH_LOG("waiter %d", i);
		EXPECT_EQ(0ULL, (unsigned long long)s->skipped) TH_LOG("waiter %d", i);
		EXPECT_EQ(0ULL, (unsigned long long)s->timeouts) TH_LOG("waiter %d: lost wakes", i);
		EXPECT_EQ(0ULL, (unsigned long long)s->errors) TH_LOG("waiter %d", i);
		woken += s->woken;
		acks_woken += s->acks_woken;
		wakes += s->wakes;
	}
	for (i = 0; i < NWAKERS; i++) {
		struct waker_stats *s = &self->sh->waker[i];

		ksft_print_msg("waker %d: increments %llu woke %llu, woken %llu eagain %llu stalls %llu\n",
			       i, (unsigned long long)s->increments,
			       (unsigned long long)s->seq_woken, (unsigned long long)s->woken,
			       (unsigned long long)s->eagain, (unsigned long long)s->timeouts);
		EXPECT_EQ(0ULL, (unsigned long long)s->timeouts) TH_LOG("waker %d: lost wakes", i);
		EXPECT_EQ(0ULL, (unsigned long long)s->errors) TH_LOG("waker %d", i);
		increments += s->increments;
		seq_woken += s->seq_woken;
		waker_woken += s->woken;
		wakes += s->wakes;
	}
	ksft_print_msg("%d rounds, %d waiters, %d wakers: %.1f ms\n", ROUNDS, NWAITERS,
		       NWAKERS, dt / 1e6);
	EXPECT_EQ((uint64_t)ROUNDS, increments);
	/* Every successful wait was woken by exactly one counted WAKE. */
	EXPECT_EQ(seq_woken, woken);
	EXPECT_EQ(acks_woken, waker_woken);
	EXPECT_EQ((__u32)ROUNDS, load(self->map, SEQ_OFF));
	EXPECT_EQ((__u32)(NWAITERS * ROUNDS), load(self->map, ACKS_OFF));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(0U, info.waiters);
	EXPECT_EQ(1U, info.attached);
	/* The start WAKE plus everyone's. */
	EXPECT_EQ(1 + wakes, (uint64_t)info.wakes);
	EXPECT_EQ((uint64_t)(ROUNDS + NWAITERS * ROUNDS), wakes);
	EXPECT_GT(BOUND_NS, dt);
}

static void free_waiter(const char *name, long page, struct waiter_stats *st)
{
	const __u32 final = NWAKERS * FREE_INCREMENTS;
	int64_t end = ml_now_ns() + BOUND_NS;
	volatile __u32 *m;
	int fd = child_setup(name, page, &m);
	__u32 last = 0;

	while (ml_now_ns() < end) {
		__u32 v = load(m, SEQ_OFF);
		int r;

		if (v != last) {
			st->observed++;
			last = v;
		}
		if (v == final)
			_exit(0);
		r = ml_wait(fd, SEQ_OFF, v, STALL_NS);
		if (r == 0)
			st->woken++;
		else if (r == -EAGAIN)
			st->eagain++;
		else if (r == -ETIMEDOUT && load(m, SEQ_OFF) != v)
			st->timeouts++;
		else if (r != -ETIMEDOUT)
			st->errors++;
	}
	_exit(1);
}

static void free_waker(const char *name, long page, struct waker_stats *st)
{
	volatile __u32 *m;
	int fd = child_setup(name, page, &m);
	int i, r;

	for (i = 0; i < FREE_INCREMENTS; i++) {
		__atomic_fetch_add(&m[SEQ_OFF / 4], 1, __ATOMIC_SEQ_CST);
		st->increments++;
		r = ml_wake(fd, SEQ_OFF, INT_MAX);
		st->wakes++;
		if (r < 0)
			st->errors++;
		else
			st->seq_woken += r;
	}
	_exit(0);
}

TEST_F_TIMEOUT(stress, free_running, 180)
{
	uint64_t woken = 0, seq_woken = 0;
	struct memlink_info info;
	int64_t t0, dt;
	int i;

	for (i = 0; i < NWAITERS + NWAKERS; i++) {
		self->pids[i] = ml_fork();
		ASSERT_LE(0, self->pids[i]);
		if (self->pids[i] == 0) {
			if (i < NWAITERS)
				free_waiter(self->name, self->page, &self->sh->waiter[i]);
			else
				free_waker(self->name, self->page, &self->sh->waker[i - NWAITERS]);
		}
	}
	start_all(_metadata, self);
	t0 = ml_now_ns();
	for (i = 0; i < NWAITERS + NWAKERS; i++)
		EXPECT_EQ(0, ml_reap(self->pids[i])) TH_LOG("process %d", i);
	dt = ml_now_ns() - t0;

	for (i = 0; i < NWAITERS; i++) {
		struct waiter_stats *s = &self->sh->waiter[i];

		ksft_print_msg("waiter %d: saw %llu values, woken %llu eagain %llu\n", i,
			       (unsigned long long)s->observed, (unsigned long long)s->woken,
			       (unsigned long long)s->eagain);
		EXPECT_EQ(0ULL, (unsigned long long)s->timeouts) TH_LOG("waiter %d: lost wakes", i);
		EXPECT_EQ(0ULL, (unsigned long long)s->errors) TH_LOG("waiter %d", i);
		EXPECT_LE(1ULL, (unsigned long long)s->observed);
		woken += s->woken;
	}
	for (i = 0; i < NWAKERS; i++) {
		EXPECT_EQ((uint64_t)FREE_INCREMENTS, self->sh->waker[i].increments);
		EXPECT_EQ(0ULL, (unsigned long long)self->sh->waker[i].errors);
		seq_woken += self->sh->waker[i].seq_woken;
	}
	ksft_print_msg("%d increments by %d wakers, %d waiters: %.1f ms\n",
		       NWAKERS * FREE_INCREMENTS, NWAKERS, NWAITERS, dt / 1e6);
	EXPECT_EQ(seq_woken, woken);
	EXPECT_EQ((__u32)(NWAKERS * FREE_INCREMENTS), load(self->map, SEQ_OFF));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(0U, info.waiters);
	EXPECT_EQ((uint64_t)(1 + NWAKERS * FREE_INCREMENTS), (uint64_t)info.wakes);
	EXPECT_GT(BOUND_NS, dt);
}

TEST_HARNESS_MAIN

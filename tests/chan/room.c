// SPDX-License-Identifier: MIT
/*
 * Channel tests: a sender waiting for room (ml_chan_send_wait) sleeps, and
 * the reader rings it once it has freed half the lane, not for every
 * message it reads, and never when nobody waits.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proctest.h"
#include "chan_test.h"
#include "chan_layout.h"

#define ROOM_BATCH 512

struct room_shared {
	_Atomic int filled;   /* the producer: its lane is full, n below */
	_Atomic int done;
	_Atomic long n;
	_Atomic long long sleeps;
	char name[80];
};

static void msg_fill(uint8_t *m, long i)
{
	memset(m, (int)(i & 0xff), FULL_MSG);
	memcpy(m, &i, sizeof(i));
}

static bool msg_is(const uint8_t *m, int len, long i)
{
	uint8_t want[FULL_MSG];

	msg_fill(want, i);
	return len == FULL_MSG && !memcmp(m, want, FULL_MSG);
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int daemon_rings(ml_chan *d, unsigned n)
{
	static struct ml_msg msgs[ROOM_BATCH];
	static uint8_t buf[ROOM_BATCH * FULL_MSG];

	return ml_chan_recv_many(d, msgs, n, buf, sizeof(buf));
}

/*
 * The protocol, in one process: the client's bell says "asleep, waiting
 * for room in Low" (as room_sleep() says it), and the daemon's reads ring
 * it only once the lane is at most half full; with the flag gone, never.
 */
int t_room_bell(void)
{
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL, *c = NULL;
	struct ml__peer *p;
	uint8_t m[FULL_MSG];
	char name[80];
	size_t alen = 0;
	uint32_t seq0, idle;
	long n = 0;
	int err, ret = -1;

	if (!region_mappable()) {
		skipf("needs a client area to map");
		return 1;
	}
	chan_name(name, sizeof(name), "roombell");
	o.ring_size = FULL_RING;
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(connect_retry(&c, name, 5 * SEC, -ENOENT), 0);
	p = (struct ml__peer *)area_map(name, 0, &alen);
	CHECK(p && alen >= sizeof(*p), "cannot map the client's area");
	while (msg_fill(m, n), (err = ml_chan_send(c, ML_PRIO_LOW, m, sizeof(m))) == 0)
		CHECK(++n < ROOM_BATCH, "Low lane never fills");
	CHECK_RC(err, -EAGAIN);
	CHECK(n >= 8, "only %ld messages fill a lane", n);
	idle = atomic_load(&p->bell.sleeping);
	seq0 = atomic_load(&p->bell.seq);
	atomic_store(&p->bell.sleeping, idle | ML__BELL_ASLEEP | ML__BELL_ROOM(ML_PRIO_LOW));
	/* Room, but less than half the lane: not worth a wake-up. */
	CHECK_RC(daemon_rings(d, (unsigned)(n / 2 - 2)), (int)(n / 2 - 2));
	CHECK(atomic_load(&p->bell.seq) == seq0, "rung with the lane still more than half full");
	/* Past half: rung, once for the batch. */
	CHECK_RC(daemon_rings(d, 3), 3);
	CHECK(atomic_load(&p->bell.seq) == seq0 + 1, "bell rung %u times, want 1",
	      atomic_load(&p->bell.seq) - seq0);
	/* A single read too, while the writer still says it waits. */
	CHECK_RC(ml_chan_recv(d, NULL, NULL, m, sizeof(m)), FULL_MSG);
	CHECK(atomic_load(&p->bell.seq) == seq0 + 2, "bell rung %u times, want 2",
	      atomic_load(&p->bell.seq) - seq0);
	/* Nobody waits: the rest is read without a ring. */
	atomic_store(&p->bell.sleeping, idle);
	for (long i = n / 2 + 2; i < n; i++)
		CHECK_RC(ml_chan_recv(d, NULL, NULL, m, sizeof(m)), FULL_MSG);
	CHECK_RC(ml_chan_recv(d, NULL, NULL, m, sizeof(m)), -EAGAIN);
	CHECK(atomic_load(&p->bell.seq) == seq0 + 2, "rung with nobody waiting");
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/* Fill our lane, say so, then one more with ml_chan_send_wait. */
static int room_producer(void *arg)
{
	struct room_shared *sh = arg;
	struct ml_chan_stats st = { .size = sizeof(st) };
	ml_chan *c = NULL;
	uint8_t m[FULL_MSG];
	long n = 0;
	int err, ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	while (msg_fill(m, n), (err = ml_chan_send(c, ML_PRIO_LOW, m, sizeof(m))) == 0)
		CHECK(++n < ROOM_BATCH, "Low lane never fills");
	CHECK_RC(err, -EAGAIN);
	atomic_store(&sh->n, n);
	atomic_store(&sh->filled, 1);
	CHECK_RC(ml_chan_send_wait(c, 0, ML_PRIO_LOW, m, sizeof(m), 60 * SEC), 0);
	CHECK_RC(ml_chan_stats(c, &st), 0);
	atomic_store(&sh->sleeps, (long long)st.sleeps);
	CHECK(wait_flag(&sh->done, 1, 60 * SEC), "daemon never finished");
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

/* The daemon's replies fill our lane; we read them only after a pause. */
static int room_reader(void *arg)
{
	struct room_shared *sh = arg;
	ml_chan *c = NULL;
	uint8_t m[FULL_MSG];
	long got = 0;
	int n, ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, "hi", 2), 0);
	CHECK(wait_flag(&sh->filled, 1, 60 * SEC), "daemon never filled the lane");
	pause_ms(300);
	while (got <= atomic_load(&sh->n)) {
		CHECK_RC(ml_chan_wait(c, 60 * SEC), 0);
		while ((n = ml_chan_recv(c, NULL, NULL, m, sizeof(m))) >= 0) {
			CHECK(msg_is(m, n, got), "reply %ld torn or out of order", got);
			got++;
		}
		CHECK_RC(n, -EAGAIN);
	}
	atomic_store(&sh->done, 1);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

/*
 * Both ways, in two processes: a writer whose lane is full sleeps in
 * ml_chan_send_wait (its sleeps are counted; the yields and naps it made
 * before were not) until the reader, back after a pause, frees room; every
 * message arrives, in order.
 */
int t_room_wait(void)
{
	struct room_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_stats st = { .size = sizeof(st) };
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;
	uint8_t m[FULL_MSG];
	unsigned cl = 0;
	long got = 0, n;
	long long sleeps0;
	pid_t pid = 0;
	int r, err, ret = -1;

	chan_name(sh->name, sizeof(sh->name), "roomwait");
	o.ring_size = FULL_RING;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	/* A client waits for room in its lane. */
	pid = spawn(room_producer, sh);
	CHECK(wait_flag(&sh->filled, 1, 20 * SEC), "producer never filled its lane");
	pause_ms(300);
	n = atomic_load(&sh->n);
	while (got <= n) {
		CHECK_RC(ml_chan_wait(d, 60 * SEC), 0);
		while ((r = ml_chan_recv(d, NULL, &cl, m, sizeof(m))) >= 0) {
			CHECK(msg_is(m, r, got), "message %ld torn or out of order", got);
			got++;
		}
		CHECK_RC(r, -EAGAIN);
	}
	atomic_store(&sh->done, 1);
	CHECK(reap_ok(pid, "producer", 20 * SEC), "producer");
	pid = 0;
	/* Busy handles spin to their deadline: they never sleep, by design. */
	CHECK(g_wait_mode == ML_WAIT_BUSY || atomic_load(&sh->sleeps) >= 1,
	      "the producer never slept for room");
	printf("  # a client waiting 300 ms for room slept %lld times\n", atomic_load(&sh->sleeps));

	/* The daemon waits for room in a client's lane. */
	atomic_store(&sh->filled, 0);
	atomic_store(&sh->done, 0);
	pid = spawn(room_reader, sh);
	CHECK_RC(ml_chan_wait(d, 20 * SEC), 0);
	CHECK_RC(ml_chan_recv(d, NULL, &cl, m, sizeof(m)), 2);
	n = 0;
	while (msg_fill(m, n), (err = ml_chan_reply(d, cl, ML_PRIO_LOW, m, sizeof(m))) == 0)
		CHECK(++n < ROOM_BATCH, "Low lane never fills");
	CHECK_RC(err, -EAGAIN);
	atomic_store(&sh->n, n);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	sleeps0 = (long long)st.sleeps;
	atomic_store(&sh->filled, 1);
	CHECK_RC(ml_chan_send_wait(d, cl, ML_PRIO_LOW, m, sizeof(m), 60 * SEC), 0);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(g_wait_mode == ML_WAIT_BUSY || (long long)st.sleeps > sleeps0,
	      "the daemon never slept for room");
	printf("  # the daemon waiting 300 ms for room slept %lld times\n",
	       (long long)st.sleeps - sleeps0);
	CHECK(reap_ok(pid, "reader", 20 * SEC), "reader");
	pid = 0;
	ret = 0;
out:
	atomic_store(&sh->done, 1);
	if (pid > 0)
		reap(pid, 5 * SEC);
	ml_chan_close(d);
	return ret;
}

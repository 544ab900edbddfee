// SPDX-License-Identifier: MIT
/*
 * Channel tests: a sleeping receiver costs its sender one wake-up a sleep.
 *
 * A sender streams bursts of messages to a receiver in blocking mode,
 * which sleeps whenever it finds nothing; between bursts the sender waits
 * until all is read, then lets the receiver fall asleep. A burst's first
 * message wakes it, and the rest are sent while it is still on its way
 * back: before one wake-up a sleep, each of them made another wake-up
 * call. Judged by count, both ways (client to daemon, daemon to client):
 * the sender's wake-up calls (ml_chan_stats wakeups) are at most the
 * times the receiver announced a sleep (sleeps_announced), and every
 * message arrives, in order, intact. An announced sleep is a sleep, or
 * one given up because a message came at the receiver's last look (a
 * sender that saw the flag in that moment woke a sleep that never was):
 * each is woken once at most, so the bound is exact, under any load. The
 * receiver must also have slept for real, else nothing was proven.
 *
 * On Linux the two processes are pinned to two CPUs, so that a burst is
 * sent while the receiver is on its way back (where the woken receiver
 * shares the sender's CPU, it takes the CPU from the sender at once,
 * reads one message and sleeps again).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <sched.h>
#endif

#include "proctest.h"
#include "chan_test.h"

#define ONCE_MSGS 50000u
#define ONCE_BURST 50u
#define ONCE_LEN 64u

struct once_shared {
	char name[80];
	_Atomic uint32_t phase;     /* 1: client sends; 2: daemon sends; 3: done */
	_Atomic uint32_t read;      /* messages the receiver of the phase has read */
	_Atomic uint64_t wakeups, sleeps, told; /* the client's, at the end of its phase */
	_Atomic int failed;
};

/* The nth CPU we may run on, for this process alone (Linux; else nothing). */
static void pin_nth(int nth)
{
#ifdef __linux__
	cpu_set_t set, one;
	int seen = 0;

	if (sched_getaffinity(0, sizeof(set), &set) || CPU_COUNT(&set) < 2)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && seen++ == nth) {
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			(void)sched_setaffinity(0, sizeof(one), &one);
			return;
		}
#else
	(void)nth;
#endif
}

static void fill(uint8_t *m, uint32_t seq)
{
	memcpy(m, &seq, sizeof(seq));
	for (uint32_t i = sizeof(seq); i < ONCE_LEN; i++)
		m[i] = (uint8_t)(seq * 31u + i);
}

static bool intact(const uint8_t *m, int n, uint32_t want)
{
	uint8_t ref[ONCE_LEN];

	fill(ref, want);
	return n == (int)ONCE_LEN && !memcmp(m, ref, ONCE_LEN);
}

/* Send all, in bursts; after each, wait until it is read, then a pause. */
static int send_bursts(ml_chan *c, unsigned client, struct once_shared *sh)
{
	uint8_t m[ONCE_LEN];

	for (uint32_t seq = 0; seq < ONCE_MSGS;) {
		int64_t end;

		for (uint32_t k = 0; k < ONCE_BURST; k++, seq++) {
			int err;

			fill(m, seq);
			err = ml_chan_send_wait(c, client, ML_PRIO_HIGH, m, sizeof(m), 10 * SEC);
			if (err)
				return err;
		}
		for (end = now_ns() + 10 * SEC; atomic_load(&sh->read) < seq;)
			if (now_ns() > end || atomic_load(&sh->failed))
				return -ETIMEDOUT;
		sleep_ms(1);
	}
	return 0;
}

/* Read all, in order, sleeping whenever there is nothing. */
static int read_all(ml_chan *c, struct once_shared *sh)
{
	uint8_t m[ONCE_LEN + 8];

	for (uint32_t want = 0; want < ONCE_MSGS;) {
		int n = ml_chan_recv(c, NULL, NULL, m, sizeof(m));

		if (n == -EAGAIN) {
			n = ml_chan_wait(c, 10 * SEC);
			if (n)
				return n;
			continue;
		}
		if (n < 0)
			return n;
		if (!intact(m, n, want))
			return -EBADMSG;
		atomic_store(&sh->read, ++want);
	}
	return 0;
}

static int once_client(void *arg)
{
	struct once_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	uint64_t w0, s0, t0;
	ml_chan *c = NULL;
	int ret = 1, err;

	o.wait_mode = ML_WAIT_BLOCKING;
	pin_nth(1);
	CHECK_RC(connect_opts_retry(&c, sh->name, &o, 5 * SEC, -ENOENT), 0);
	CHECK_RC(ml_chan_stats(c, &st), 0);
	w0 = st.wakeups;
	err = send_bursts(c, 0, sh);
	CHECK(!err, "client: sending: %s", ml_strerror(err));
	CHECK_RC(ml_chan_stats(c, &st), 0);
	atomic_store(&sh->wakeups, st.wakeups - w0);
	s0 = st.sleeps;
	t0 = st.sleeps_announced;
	atomic_store(&sh->read, 0);
	atomic_store(&sh->phase, 2);
	err = read_all(c, sh);
	CHECK(!err, "client: reading: %s", ml_strerror(err));
	CHECK_RC(ml_chan_stats(c, &st), 0);
	atomic_store(&sh->sleeps, st.sleeps - s0);
	atomic_store(&sh->told, st.sleeps_announced - t0);
	ret = 0;
out:
	if (ret)
		atomic_store(&sh->failed, 1);
	atomic_store(&sh->phase, 3);
	ml_chan_close(c);
	return ret;
}

/*
 * The bound itself, and that the race was run: the receiver slept (a
 * burst a sleep at least, half of them), the sender rang.
 */
static bool once_a_sleep(const char *way, uint64_t wakeups, uint64_t sleeps, uint64_t told)
{
	printf("  # %s: %u messages in bursts of %u: %llu sleeps, %llu announced, "
	       "%llu wake-up calls\n", way, ONCE_MSGS, ONCE_BURST, (unsigned long long)sleeps,
	       (unsigned long long)told, (unsigned long long)wakeups);
	/* + 1: a sleep announced before the count began may be woken in it. */
	return wakeups <= told + 1 && sleeps <= told && sleeps >= ONCE_MSGS / ONCE_BURST / 2 &&
	       wakeups > 0;
}

int t_wake_once(void)
{
	struct once_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	uint64_t sleeps, wakeups, told, s0, w0, t0;
	ml_chan *d = NULL;
	unsigned id;
	pid_t pid = 0;
	int ret = -1, err;

	CHECK(sh, "no shared memory");
	chan_name(sh->name, sizeof(sh->name), "once");
	o.wait_mode = ML_WAIT_BLOCKING;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	atomic_store(&sh->phase, 1);
	pid = spawn(once_client, sh);
	pin_nth(0);
	id = client_id(d, 0);
	CHECK(id, "the client did not come");

	/* Client to daemon. */
	CHECK_RC(ml_chan_stats(d, &st), 0);
	s0 = st.sleeps;
	t0 = st.sleeps_announced;
	err = read_all(d, sh);
	CHECK(!err, "daemon: reading: %s", ml_strerror(err));
	CHECK_RC(ml_chan_stats(d, &st), 0);
	sleeps = st.sleeps - s0;
	told = st.sleeps_announced - t0;
	for (int64_t end = now_ns() + 10 * SEC; atomic_load(&sh->phase) < 2;)
		CHECK(now_ns() < end && !atomic_load(&sh->failed), "the client did not go on");
	wakeups = atomic_load(&sh->wakeups);
	CHECK(once_a_sleep("client to daemon", wakeups, sleeps, told),
	      "client to daemon: %llu wake-up calls for %llu announced sleeps (%llu slept)",
	      (unsigned long long)wakeups, (unsigned long long)told, (unsigned long long)sleeps);

	/* Daemon to client. */
	CHECK_RC(ml_chan_stats(d, &st), 0);
	w0 = st.wakeups;
	err = send_bursts(d, id, sh);
	CHECK(!err, "daemon: sending: %s", ml_strerror(err));
	CHECK_RC(ml_chan_stats(d, &st), 0);
	wakeups = st.wakeups - w0;
	CHECK(reap_ok(pid, "client", 10 * SEC), "client");
	pid = 0;
	sleeps = atomic_load(&sh->sleeps);
	told = atomic_load(&sh->told);
	CHECK(once_a_sleep("daemon to client", wakeups, sleeps, told),
	      "daemon to client: %llu wake-up calls for %llu announced sleeps (%llu slept)",
	      (unsigned long long)wakeups, (unsigned long long)told, (unsigned long long)sleeps);
	ret = 0;
out:
	if (ret)
		atomic_store(&sh->failed, 1);
	if (pid > 0)
		reap(pid, 5 * SEC);
	ml_chan_close(d);
	return ret;
}

// SPDX-License-Identifier: MIT
/*
 * Channel tests: the daemon takes clients in turn within a lane, and a
 * more urgent message sent while it takes a round waits at most for the
 * rest of that round.
 *
 * Three streamers each put TURN_MSGS Low messages in their rings before
 * the daemon reads any, so every look sees all three: the daemon must
 * deliver them in a fixed rotation (each client every third message, each
 * one's own in order). Twice in the middle a Critical message comes: once
 * from a fourth client that had nothing waiting, once from the streamer
 * whose turn is next. Each must come after at most two Low ones (the
 * three-client round's rest), and the rotation goes on as before.
 *
 * Then a round that starts in the middle of the rotation: the first
 * streamer sends one Low and the daemon reads it, so the second has the
 * next turn; then all three send three each, and the daemon must take
 * the second, the third, the first, and so on.
 *
 * Last, a Low the daemon has seen must not hide a Critical its client
 * sends after it while others stream Highs.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "proctest.h"
#include "chan_test.h"

#define TURN_MSGS 30
#define TURN_STREAMERS 3
#define TURN_CRIT 1000u /* a Critical's seq */
#define TURN_HIGH 100000u /* a High's seq: this plus its number */

struct turn_shared {
	char name[80];
	_Atomic int connected;
	/* Told to client k: send this many Lows, or a Critical; acks counts the answers. */
	_Atomic int lows_due[TURN_STREAMERS + 1];
	_Atomic int highs_due[TURN_STREAMERS + 1];
	_Atomic int crit_due[TURN_STREAMERS + 1];
	_Atomic int acks;
	_Atomic int done;
};

struct turn_msg {
	uint32_t who, seq;
};

/* Client k: do as told until done. */
static int turn_client(struct turn_shared *sh, int k)
{
	struct turn_msg m = { .who = (uint32_t)k };
	uint32_t seq = 0, hseq = 0;
	ml_chan *c = NULL;
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	atomic_fetch_add(&sh->connected, 1);
	for (int64_t end = now_ns() + 30 * SEC; !atomic_load(&sh->done); sleep_ms(1)) {
		int lows = atomic_exchange(&sh->lows_due[k], 0);
		int highs = atomic_exchange(&sh->highs_due[k], 0);

		CHECK(now_ns() < end, "client %d: never done", k);
		if (atomic_exchange(&sh->crit_due[k], 0)) {
			m.seq = TURN_CRIT;
			CHECK_RC(ml_chan_send(c, ML_PRIO_CRITICAL, &m, sizeof(m)), 0);
			atomic_fetch_add(&sh->acks, 1);
		}
		for (int i = 0; i < lows; i++) {
			m.seq = seq++;
			CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, &m, sizeof(m)), 0);
		}
		for (int i = 0; i < highs; i++) {
			m.seq = TURN_HIGH + hseq++;
			CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, &m, sizeof(m)), 0);
		}
		if (lows || highs)
			atomic_fetch_add(&sh->acks, 1);
	}
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int turn_c0(void *a) { return turn_client(a, 0); }
static int turn_c1(void *a) { return turn_client(a, 1); }
static int turn_c2(void *a) { return turn_client(a, 2); }
static int turn_c3(void *a) { return turn_client(a, 3); }

/* Tell client k what to send, and wait until it is sent. */
static bool turn_tell(struct turn_shared *sh, int k, int lows, int highs, bool crit)
{
	int want = atomic_load(&sh->acks) + (lows > 0 || highs > 0) + crit;

	if (crit)
		atomic_store(&sh->crit_due[k], 1);
	if (highs)
		atomic_store(&sh->highs_due[k], highs);
	if (lows)
		atomic_store(&sh->lows_due[k], lows);
	return wait_flag(&sh->acks, want, 20 * SEC);
}

/* The next message, within 10 s. */
static int turn_recv(ml_chan *d, struct turn_msg *m, int *prio)
{
	for (int64_t end = now_ns() + 10 * SEC;;) {
		int n = ml_chan_recv(d, prio, NULL, m, sizeof(*m));

		if (n != -EAGAIN)
			return n == (int)sizeof(*m) ? 0 : n < 0 ? n : -EPROTO;
		if (now_ns() > end)
			return -ETIMEDOUT;
		n = ml_chan_wait(d, 100 * MS);
		if (n && n != -ETIMEDOUT)
			return n;
	}
}

int t_turns(void)
{
	struct turn_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	int (*const fn[])(void *) = { turn_c0, turn_c1, turn_c2, turn_c3 };
	uint32_t order[TURN_STREAMERS * TURN_MSGS], next_seq[TURN_STREAMERS] = { 0 };
	unsigned lows = 0, behind = 0, crits = 0;
	pid_t pid[TURN_STREAMERS + 1] = { 0 };
	int ret = -1, err, pending = -1; /* pending: whose Critical is in its ring */
	struct turn_msg m;
	ml_chan *d = NULL;
	int prio = -1;

	CHECK(sh, "no shared memory");
	chan_name(sh->name, sizeof(sh->name), "turns");
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	for (int k = 0; k <= TURN_STREAMERS; k++)
		pid[k] = spawn(fn[k], sh);
	CHECK(wait_flag(&sh->connected, TURN_STREAMERS + 1, 20 * SEC), "clients did not connect");
	for (int k = 0; k < TURN_STREAMERS; k++)
		CHECK(turn_tell(sh, k, TURN_MSGS, 0, false), "streamer %d did not send", k);
	while (lows < TURN_STREAMERS * TURN_MSGS || pending >= 0) {
		/* The Criticals: from the idle client after 4 Lows, from the next in turn after 10. */
		if (pending < 0 && ((lows == 4 && crits == 0) || (lows == 10 && crits == 1))) {
			pending = crits == 0 ? TURN_STREAMERS : (int)order[1];
			CHECK(turn_tell(sh, pending, 0, 0, true), "client %d sent no Critical", pending);
			behind = 0;
		}
		err = turn_recv(d, &m, &prio);
		CHECK(!err, "recv after %u Lows: %s", lows, ml_strerror(err));
		if (prio == ML_PRIO_CRITICAL) {
			CHECK(pending >= 0 && m.who == (uint32_t)pending && m.seq == TURN_CRIT,
			      "Critical from %u seq %u, want client %d's", m.who, m.seq, pending);
			pending = -1;
			crits++;
			continue;
		}
		CHECK(prio == ML_PRIO_LOW, "message %u at prio %d, want Low", lows, prio);
		/* A Critical in a ring waits at most for the rest of the round. */
		CHECK(pending < 0 || ++behind <= TURN_STREAMERS - 1,
		      "client %d's Critical waited behind %u Lows", pending, behind);
		CHECK(m.who < TURN_STREAMERS && m.seq == next_seq[m.who], "Low %u: client %u seq %u",
		      lows, m.who, m.seq);
		next_seq[m.who]++;
		order[lows] = m.who;
		/* A fixed rotation: three different ones first, then the same cycle. */
		for (unsigned j = 0; lows < TURN_STREAMERS && j < lows; j++)
			CHECK(order[j] != m.who, "client %u twice in the first round", m.who);
		CHECK(lows < TURN_STREAMERS || order[lows - TURN_STREAMERS] == m.who,
		      "Low %u from client %u, the rotation wants %u", lows, m.who,
		      order[lows - TURN_STREAMERS]);
		lows++;
	}
	CHECK(crits == 2, "%u Criticals", crits);
	CHECK_RC(ml_chan_recv(d, NULL, NULL, &m, sizeof(m)), -EAGAIN);

	/* The first alone, then all: the next turn is the second's. */
	CHECK(turn_tell(sh, (int)order[0], 1, 0, false), "no Low from client %u", order[0]);
	CHECK_RC(turn_recv(d, &m, &prio), 0);
	CHECK(m.who == order[0] && m.seq == next_seq[m.who]++, "client %u seq %u", m.who, m.seq);
	for (int k = 0; k < TURN_STREAMERS; k++)
		CHECK(turn_tell(sh, (int)order[k], 3, 0, false), "client %u sent nothing", order[k]);
	for (unsigned i = 0; i < 3 * TURN_STREAMERS; i++) {
		uint32_t want = order[(i + 1) % TURN_STREAMERS];

		CHECK_RC(turn_recv(d, &m, &prio), 0);
		CHECK(m.who == want && m.seq == next_seq[want], "message %u: client %u seq %u, want %u",
		      i, m.who, m.seq, want);
		next_seq[want]++;
	}
	CHECK_RC(ml_chan_recv(d, NULL, NULL, &m, sizeof(m)), -EAGAIN);

	/*
	 * A look that saw a Low does not keep it as that client's answer once
	 * a Critical follows: the idle client puts one Low in its ring, two
	 * streamers 20 Highs each; the daemon takes two Highs (having seen the
	 * Low), then the idle client sends a Critical. It must come within
	 * the round, not after every High.
	 */
	CHECK(turn_tell(sh, TURN_STREAMERS, 1, 0, false), "no Low from the idle client");
	for (int k = 0; k < 2; k++)
		CHECK(turn_tell(sh, (int)order[k], 0, 20, false), "no Highs from %u", order[k]);
	{
		uint32_t hnext[TURN_STREAMERS] = { 0 };
		unsigned highs = 0;
		bool crit = false;

		for (unsigned i = 0; i < 2 * 20 + 2; i++) {
			if (highs == 2 && !crit && i == 2)
				CHECK(turn_tell(sh, TURN_STREAMERS, 0, 0, true), "no Critical");
			CHECK_RC(turn_recv(d, &m, &prio), 0);
			if (prio == ML_PRIO_HIGH) {
				CHECK(m.who < TURN_STREAMERS && m.seq == TURN_HIGH + hnext[m.who],
				      "High from %u seq %u", m.who, m.seq);
				hnext[m.who]++;
				highs++;
				CHECK(i < 2 || crit || highs <= 2 + TURN_STREAMERS - 1,
				      "the Critical waited behind %u Highs", highs - 2);
			} else if (prio == ML_PRIO_CRITICAL) {
				CHECK(!crit && i >= 2 && m.who == TURN_STREAMERS && m.seq == TURN_CRIT,
				      "Critical from %u seq %u at %u", m.who, m.seq, i);
				crit = true;
			} else {
				/* The Low last: every High and the Critical came first. */
				CHECK(prio == ML_PRIO_LOW && m.who == TURN_STREAMERS && m.seq == 0 &&
					      highs == 40 && crit,
				      "message %u: prio %d from %u seq %u", i, prio, m.who, m.seq);
			}
		}
	}
	CHECK_RC(ml_chan_recv(d, NULL, NULL, &m, sizeof(m)), -EAGAIN);
	atomic_store(&sh->done, 1);
	for (int k = 0; k <= TURN_STREAMERS; k++) {
		CHECK(reap_ok(pid[k], "client", 10 * SEC), "client %d", k);
		pid[k] = 0;
	}
	ret = 0;
out:
	atomic_store(&sh->done, 1);
	for (int k = 0; k <= TURN_STREAMERS; k++)
		if (pid[k] > 0)
			reap(pid[k], 5 * SEC);
	ml_chan_close(d);
	return ret;
}

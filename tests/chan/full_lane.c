// SPDX-License-Identifier: MIT
/*
 * Channel tests: a full lane: non-blocking sends say -EAGAIN, timed sends
 * wait for room, other lanes still pass.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "proctest.h"
#include "chan_test.h"

struct full_shared {
	_Atomic int step;     /* daemon -> client */
	_Atomic int cstep;    /* client -> daemon */
	_Atomic long sent_low;
	_Atomic long sent_crit;
	_Atomic long long wait_ns;
	char name[80];
};

static int full_client(void *arg)
{
	struct full_shared *sh = arg;
	char msg[FULL_MSG];
	ml_chan *c = NULL;
	long n = 0;
	int64_t t;
	int err, ret = 1;

	memset(msg, 0x5a, sizeof(msg));
	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	/* Fill the Low lane: the daemon does not read. */
	while ((err = ml_chan_send(c, ML_PRIO_LOW, msg, sizeof(msg))) == 0)
		CHECK(++n < 100000, "Low lane never fills");
	CHECK_RC(err, -EAGAIN);
	CHECK(n > 0, "not one message fit");
	/* Still full a little later: nothing was lost or read. */
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, msg, sizeof(msg)), -EAGAIN);
	/* Lanes are separate: Critical still has room. */
	CHECK_RC(ml_chan_send(c, ML_PRIO_CRITICAL, msg, sizeof(msg)), 0);
	atomic_store(&sh->sent_crit, 1);
	/* Timed blocking send with no reader: -EAGAIN after about the timeout. */
	t = now_ns();
	err = ml_chan_send_wait(c, 0, ML_PRIO_LOW, msg, sizeof(msg), 200 * MS);
	t = now_ns() - t;
	CHECK_RC(err, -EAGAIN);
	CHECK(t >= 190 * MS && t < 5 * SEC, "send_wait(200 ms) gave up after %lld ms",
	      (long long)(t / MS));
	CHECK_RC(ml_chan_send_wait(c, 0, ML_PRIO_LOW, msg, sizeof(msg), 0), -EAGAIN);
	atomic_store(&sh->sent_low, n);
	/* Now the daemon starts reading after 300 ms: a long send_wait succeeds. */
	atomic_store(&sh->cstep, 1);
	t = now_ns();
	err = ml_chan_send_wait(c, 0, ML_PRIO_LOW, msg, sizeof(msg), 10 * SEC);
	t = now_ns() - t;
	CHECK_RC(err, 0);
	atomic_store(&sh->wait_ns, t);
	CHECK(t >= 250 * MS, "send_wait succeeded after %lld ms, before the daemon read",
	      (long long)(t / MS));
	atomic_store(&sh->sent_low, n + 1);
	atomic_store(&sh->cstep, 2);
	/* Wait for the daemon's half: its replies fill our response lane. */
	CHECK(wait_flag(&sh->step, 1, 20 * SEC), "daemon never filled the response lane");
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

int t_full_lane(void)
{
	struct full_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	char buf[FULL_MSG * 2];
	ml_chan *d = NULL;
	long got_low = 0, got_crit = 0, nrep = 0, want_low;
	unsigned cl = 0;
	pid_t pid = 0;
	int64_t t;
	int err, prio, n, ret = -1;

	chan_name(sh->name, sizeof(sh->name), "full");
	o.ring_size = FULL_RING;
	o.max_msg = FULL_MSG;
	o.max_clients = 1;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(full_client, sh);
	CHECK(wait_flag(&sh->cstep, 1, 20 * SEC), "client never filled its lane");
	sleep_ms(300);
	/* Read everything, including the send that waited for the room. */
	t = now_ns();
	want_low = atomic_load(&sh->sent_low) + 1;
	while (got_low < want_low || got_crit < 1) {
		CHECK(now_ns() - t < 10 * SEC, "got %ld Low + %ld Critical, want %ld + 1", got_low,
		      got_crit, want_low);
		n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf));
		if (n == -EAGAIN) {
			ml_chan_wait(d, 20 * MS);
			continue;
		}
		CHECK(n == FULL_MSG, "recv: %d (%s)", n, n < 0 ? ml_strerror(n) : "");
		CHECK(prio == ML_PRIO_CRITICAL || prio == ML_PRIO_LOW, "prio %d", prio);
		if (prio == ML_PRIO_CRITICAL) {
			/* Critical goes first even though it was sent after Low filled. */
			CHECK(got_low == 0, "Critical read after %ld Low", got_low);
			got_crit++;
		} else {
			got_low++;
		}
	}
	CHECK(wait_flag(&sh->cstep, 2, 10 * SEC), "client send_wait never returned");
	CHECK(got_low == atomic_load(&sh->sent_low), "read %ld Low, client sent %ld", got_low,
	      atomic_load(&sh->sent_low));
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	/* The daemon's side: the client does not read, so the response lane fills. */
	memset(buf, 1, sizeof(buf));
	while ((err = ml_chan_reply(d, cl, ML_PRIO_HIGH, buf, FULL_MSG)) == 0)
		CHECK(++nrep < 100000, "response lane never fills");
	CHECK_RC(err, -EAGAIN);
	t = now_ns();
	err = ml_chan_send_wait(d, cl, ML_PRIO_HIGH, buf, FULL_MSG, 150 * MS);
	t = now_ns() - t;
	CHECK_RC(err, -EAGAIN);
	CHECK(t >= 140 * MS && t < 5 * SEC, "daemon send_wait(150 ms) gave up after %lld ms",
	      (long long)(t / MS));
	atomic_store(&sh->step, 1);
	CHECK(reap_ok(pid, "client", 20 * SEC), "client");
	pid = 0;
	printf("  # Low lane held %ld x %u-byte messages; send_wait succeeded after %lld ms\n",
	       atomic_load(&sh->sent_low) - 1, FULL_MSG, atomic_load(&sh->wait_ns) / MS);
	ret = 0;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	ml_chan_close(d);
	return ret;
}

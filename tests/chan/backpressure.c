// SPDX-License-Identifier: MIT
/*
 * Channel tests: backpressure rising with lane occupancy, seen by both
 * sides, and the daemon's override.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "proctest.h"
#include "chan_test.h"

struct bp_shared {
	_Atomic int step;  /* daemon -> client */
	_Atomic int cstep; /* client -> daemon */
	double fill;       /* the client's own view when full */
	char name[80];
};

#define BP_EPS 1e-6

static bool near(double a, double b)
{
	return a > b - BP_EPS && a < b + BP_EPS;
}

static int bp_client(void *arg)
{
	struct bp_shared *sh = arg;
	char msg[FULL_MSG];
	double prev, bp;
	ml_chan *c = NULL;
	int err, ret = 1, n = 0;

	memset(msg, 7, sizeof(msg));
	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	bp = ml_chan_backpressure(c);
	CHECK(bp == 0.0, "empty channel: backpressure %g", bp);
	CHECK_RC(ml_chan_set_backpressure(c, 0.5), -EINVAL);
	prev = 0.0;
	while ((err = ml_chan_send(c, ML_PRIO_HIGH, msg, sizeof(msg))) == 0) {
		bp = ml_chan_backpressure(c);
		CHECK(bp > prev && bp <= 1.0, "after %d sends: backpressure %g, before %g", n + 1,
		      bp, prev);
		prev = bp;
		CHECK(++n < 100000, "lane never fills");
	}
	CHECK_RC(err, -EAGAIN);
	CHECK(prev > 0.8, "full lane: backpressure only %g", prev);
	sh->fill = prev;
	atomic_store(&sh->cstep, 1);
	/* Step 1: the daemon set 0.25. */
	CHECK(wait_flag(&sh->step, 1, 10 * SEC), "daemon step 1");
	bp = ml_chan_backpressure(c);
	CHECK(near(bp, 0.25), "override 0.25: client sees %g", bp);
	atomic_store(&sh->cstep, 2);
	/* Step 2: the daemon set 1.0. */
	CHECK(wait_flag(&sh->step, 2, 10 * SEC), "daemon step 2");
	bp = ml_chan_backpressure(c);
	CHECK(near(bp, 1.0), "override 1.0: client sees %g", bp);
	atomic_store(&sh->cstep, 3);
	/* Step 3: override removed: the real fill again. */
	CHECK(wait_flag(&sh->step, 3, 10 * SEC), "daemon step 3");
	bp = ml_chan_backpressure(c);
	CHECK(near(bp, sh->fill), "override removed: client sees %g, fill is %g", bp, sh->fill);
	atomic_store(&sh->cstep, 4);
	/* Step 4: the daemon read everything. */
	CHECK(wait_flag(&sh->step, 4, 10 * SEC), "daemon step 4");
	bp = ml_chan_backpressure(c);
	CHECK(bp == 0.0, "drained: client sees %g", bp);
	/* And 0.0 as an override is an override, not "none". */
	atomic_store(&sh->cstep, 5);
	CHECK(wait_flag(&sh->step, 5, 10 * SEC), "daemon step 5");
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, sizeof(msg)), 0);
	bp = ml_chan_backpressure(c);
	CHECK(near(bp, 0.0), "override 0.0 with one message in: client sees %g", bp);
	atomic_store(&sh->cstep, 6);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

int t_backpressure(void)
{
	struct bp_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	char buf[FULL_MSG];
	ml_chan *d = NULL;
	pid_t pid = 0;
	double bp;
	int n, ret = -1;

	chan_name(sh->name, sizeof(sh->name), "bp");
	o.ring_size = FULL_RING;
	o.max_msg = FULL_MSG;
	o.max_clients = 2;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	bp = ml_chan_backpressure(d);
	CHECK(bp == 0.0, "new daemon: backpressure %g", bp);
	pid = spawn(bp_client, sh);
	CHECK(wait_flag(&sh->cstep, 1, 10 * SEC), "client never filled its lane");
	/* The daemon sees the same fill (once it has looked at its clients). */
	ml_chan_connected(d);
	ml_chan_wait(d, 0);
	bp = ml_chan_backpressure(d);
	CHECK(near(bp, sh->fill), "daemon sees %g, client %g", bp, sh->fill);
	CHECK_RC(ml_chan_set_backpressure(d, 1.5), -EINVAL);
	CHECK_RC(ml_chan_set_backpressure(d, 0.25), 0);
	CHECK(near(ml_chan_backpressure(d), 0.25), "daemon override: %g", ml_chan_backpressure(d));
	atomic_store(&sh->step, 1);
	CHECK(wait_flag(&sh->cstep, 2, 10 * SEC), "client step 2");
	CHECK_RC(ml_chan_set_backpressure(d, 1.0), 0);
	atomic_store(&sh->step, 2);
	CHECK(wait_flag(&sh->cstep, 3, 10 * SEC), "client step 3");
	CHECK_RC(ml_chan_set_backpressure(d, -1.0), 0);
	CHECK(near(ml_chan_backpressure(d), sh->fill), "daemon: override removed: %g",
	      ml_chan_backpressure(d));
	atomic_store(&sh->step, 3);
	CHECK(wait_flag(&sh->cstep, 4, 10 * SEC), "client step 4");
	while ((n = ml_chan_recv(d, NULL, NULL, buf, sizeof(buf))) >= 0)
		;
	CHECK_RC(n, -EAGAIN);
	CHECK(ml_chan_backpressure(d) == 0.0, "daemon, drained: %g", ml_chan_backpressure(d));
	atomic_store(&sh->step, 4);
	CHECK(wait_flag(&sh->cstep, 5, 10 * SEC), "client step 5");
	CHECK_RC(ml_chan_set_backpressure(d, 0.0), 0);
	atomic_store(&sh->step, 5);
	CHECK(wait_flag(&sh->cstep, 6, 10 * SEC), "client step 6");
	CHECK(reap_ok(pid, "client", 10 * SEC), "client");
	pid = 0;
	ret = 0;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	ml_chan_close(d);
	return ret;
}

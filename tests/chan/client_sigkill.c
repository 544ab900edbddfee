// SPDX-License-Identifier: MIT
/*
 * Channel tests: a client killed with SIGKILL: the daemon learns it, serves
 * the others, and the slot is taken again while they go on.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

struct ckill_shared {
	_Atomic int connected;
	_Atomic int go;
	_Atomic int done;
	_Atomic int refused_ok;
	_Atomic int d_ready, victim_read, victim_dead, reaped;
	_Atomic long long d_latency;
	char name[80];
};

#define CK_ROUNDS 2000

static int ck_victim(void *arg)
{
	struct ckill_shared *sh = arg;
	ml_chan *c = NULL;
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "victim", 6), 0);
	atomic_fetch_add(&sh->connected, 1);
	for (;;)
		pause();
out:
	ml_chan_close(c);
	return ret;
}

static int ck_worker(void *arg)
{
	struct ckill_shared *sh = arg;
	char msg[64];
	ml_chan *c = NULL;
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	atomic_fetch_add(&sh->connected, 1);
	CHECK(wait_flag(&sh->go, 1, 20 * SEC), "never told to go");
	for (int i = 0; i < CK_ROUNDS; i++) {
		int len = snprintf(msg, sizeof(msg), "w%d-%d", (int)getpid(), i);

		CHECK_RC(roundtrip(c, i % ML_PRIO_COUNT, msg, (size_t)len, 10 * SEC), 0);
	}
	atomic_fetch_add(&sh->done, 1);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int ck_refused(void *arg)
{
	struct ckill_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *c = NULL;
	int err = ml_client_connect(&c, sh->name, &o);

	if (err != -ECONNREFUSED) {
		failf("4th client: connect = %d (%s), want -ECONNREFUSED", err, ml_strerror(err));
		ml_chan_close(c);
		return 1;
	}
	atomic_store(&sh->refused_ok, 1);
	return 0;
}

static int ck_newcomer(void *arg)
{
	struct ckill_shared *sh = arg;
	ml_chan *c = NULL;
	int64_t t = now_ns();
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 20 * SEC, -ECONNREFUSED), 0);
	atomic_store(&sh->d_latency, now_ns() - t);
	CHECK_RC(roundtrip(c, ML_PRIO_LOW, "newcomer", 8, 5 * SEC), 0);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

/*
 * The daemon: learns the victim's id from its message, sees the slots full,
 * learns of the kill, serves the workers and the newcomer.
 */
static int ck_daemon(void *arg)
{
	struct ckill_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	unsigned victim_id = 0, cl;
	char buf[128];
	ml_chan *d = NULL;
	long served = 0;
	int n, prio, ret = 1;

	o.max_clients = 3;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	atomic_store(&sh->d_ready, 1);
	/* The victim's one message tells its id. */
	CHECK_RC(ml_chan_wait(d, 10 * SEC), 0);
	n = ml_chan_recv(d, &prio, &victim_id, buf, sizeof(buf));
	CHECK(n == 6 && !memcmp(buf, "victim", 6), "victim's message: %d", n);
	atomic_store(&sh->victim_read, 1);
	CHECK(wait_flag(&sh->victim_dead, 1, 60 * SEC), "the victim was never killed");
	/* The daemon finds out: replies to the dead client fail with -EPIPE. */
	{
		int64_t t = now_ns();
		int err;

		while ((err = ml_chan_reply(d, victim_id, ML_PRIO_LOW, "z", 1)) == 0 &&
		       now_ns() - t < 2 * SEC)
			ml_chan_wait(d, 20 * MS);
		CHECK_RC(err, -EPIPE);
		printf("  # replies to the killed client failed after %.1f ms\n",
		       (double)(now_ns() - t) / 1e6);
	}
	CHECK(ml_chan_connected(d) == 1, "daemon lost its other clients");
	/* The others go on, and a newcomer takes the dead one's slot meanwhile. */
	atomic_store(&sh->go, 1);
	{
		int64_t end = now_ns() + 60 * SEC;
		bool saw_newcomer = false;

		while (atomic_load(&sh->done) < 2 || !saw_newcomer) {
			int err;

			CHECK(now_ns() < end, "workers done %d, newcomer seen %d after 60 s",
			      atomic_load(&sh->done), saw_newcomer);
			err = ml_chan_wait(d, 20 * MS);
			CHECK(err == 0 || err == -ETIMEDOUT, "daemon wait: %s", ml_strerror(err));
			while ((n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf))) >= 0) {
				if (n == 8 && !memcmp(buf, "newcomer", 8)) {
					saw_newcomer = true;
					/* The dead one's slot, under an id of its own. */
					CHECK(ML_CHAN_SLOT(cl) == ML_CHAN_SLOT(victim_id) &&
					      cl != victim_id, "newcomer got id %u, the dead "
					      "client's was %u", cl, victim_id);
				} else {
					CHECK(ML_CHAN_SLOT(cl) != ML_CHAN_SLOT(victim_id),
					      "message from the dead client's slot (id %u): %.*s",
					      cl, n, buf);
				}
				err = ml_chan_send_wait(d, cl, prio, buf, (size_t)n, 5 * SEC);
				CHECK_RC(err, 0);
				served++;
			}
			CHECK_RC(n, -EAGAIN);
		}
	}
	CHECK(served == 2 * CK_ROUNDS + 1, "served %ld, want %d", served, 2 * CK_ROUNDS + 1);
	/* Serve until the test has reaped them all: a worker may still wait for its last. */
	while (!atomic_load(&sh->reaped)) {
		ml_chan_wait(d, 20 * MS);
		while (ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)) >= 0)
			;
	}
	ret = 0;
out:
	atomic_store(&sh->go, 1);
	ml_chan_close(d);
	return ret;
}

/*
 * The test process holds no channel: it forks the daemon and every client,
 * and kills the victim. A client forked from the daemon would hold the
 * daemon's descriptors of the client areas (kmod: the victim's region, whose
 * slot could then not be made anew until that client exits).
 */
int t_client_sigkill(void)
{
	struct ckill_shared *sh = shared_map(sizeof(*sh));
	pid_t dm = 0, victim = 0, w[2] = { 0, 0 }, r = 0, nc = 0;
	int st, ret = -1;

	CHECK(sh, "no shared memory");
	chan_name(sh->name, sizeof(sh->name), "ckill");
	dm = spawn(ck_daemon, sh);
	CHECK(wait_flag(&sh->d_ready, 1, 10 * SEC), "the daemon never came up");
	victim = spawn(ck_victim, sh);
	CHECK(wait_flag(&sh->victim_read, 1, 10 * SEC), "the daemon never read the victim");
	w[0] = spawn(ck_worker, sh);
	w[1] = spawn(ck_worker, sh);
	CHECK(wait_flag(&sh->connected, 3, 10 * SEC), "clients never connected");
	/* Every slot taken. */
	r = spawn(ck_refused, sh);
	CHECK(reap_ok(r, "4th client", 10 * SEC), "4th client");
	r = 0;
	CHECK(atomic_load(&sh->refused_ok), "4th client was not refused");
	/* Kill the victim. */
	kill(victim, SIGKILL);
	st = reap(victim, 5 * SEC);
	victim = 0;
	CHECK(st != -1 && WIFSIGNALED(st), "victim status %#x", st);
	atomic_store(&sh->victim_dead, 1);
	CHECK(wait_flag(&sh->go, 1, 20 * SEC), "the daemon never let the workers go");
	nc = spawn(ck_newcomer, sh);
	CHECK(reap_ok(w[0], "worker", 60 * SEC), "worker");
	w[0] = 0;
	CHECK(reap_ok(w[1], "worker", 60 * SEC), "worker");
	w[1] = 0;
	CHECK(reap_ok(nc, "newcomer", 60 * SEC), "newcomer");
	nc = 0;
	atomic_store(&sh->reaped, 1);
	CHECK(reap_ok(dm, "daemon", 60 * SEC), "daemon");
	dm = 0;
	printf("  # the dead client's slot was taken %.1f ms after the kill\n",
	       (double)atomic_load(&sh->d_latency) / 1e6);
	ret = 0;
out:
	atomic_store(&sh->go, 1);
	atomic_store(&sh->reaped, 1);
	{
		pid_t all[] = { victim, w[0], w[1], r, nc, dm };

		for (unsigned i = 0; i < 6; i++)
			if (all[i] > 0) {
				kill(all[i], SIGKILL);
				waitpid(all[i], NULL, 0);
			}
	}
	return ret;
}

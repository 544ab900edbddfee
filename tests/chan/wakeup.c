// SPDX-License-Identifier: MIT
/*
 * Channel tests: no wake-up is lost when sends race a peer going to sleep.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

/*
 * Bursts of 1-3 requests a few hundred ns apart, each answered, where both
 * sides sleep whenever they find nothing (adaptive with a 1 ns spin, or
 * blocking): sends keep landing just as the peer decides to sleep, which
 * races the sender's look at the sleeping flag against the sleeper's last
 * look at the rings (a fence on one side and a remote barrier on the other
 * for adaptive handles, fences on both for blocking ones). A lost wake-up
 * does not hang: the sleeper wakes by itself after 20 ms (the liveness
 * slice) or 50 ms (its heartbeat). So no burst may take that long, but for
 * a few stray scheduling stalls: this catches a protocol that loses
 * wake-ups often (a send that rings no bell, a sleeper that skips its last
 * look); one lost rarely hides among the stalls.
 */
#define WAKE_SLICE_MS 19

struct wake_shared {
	char name[80];
	uint32_t rounds;
	int client_mode, daemon_mode;
	_Atomic uint64_t slow, max_ns, p50_ns, done;
};

static struct ml_chan_opts wake_opts(int mode)
{
	struct ml_chan_opts o = opts_default();

	o.wait_mode = (uint32_t)mode;
	o.spin_ns = 1;
	return o;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Spin for about ns nanoseconds. */
static void spin_ns(int64_t ns)
{
	for (int64_t end = now_ns() + ns; now_ns() < end;)
		;
}

static int wake_client(void *arg)
{
	struct wake_shared *sh = arg;
	struct ml_chan_opts o = wake_opts(sh->client_mode);
	uint64_t *took = calloc(sh->rounds, sizeof(*took)), slow = 0, max = 0;
	uint32_t seq = 0, rng = (uint32_t)getpid() * 2654435761u;
	ml_chan *c = NULL;
	int ret = 1, err;

	CHECK(took, "no memory");
	for (int64_t end = now_ns() + 5 * SEC;;) {
		err = ml_client_connect(&c, sh->name, &o);
		if (err != -ENOENT || now_ns() > end)
			break;
		sleep_ms(2);
	}
	CHECK_RC(err, 0);
	for (uint32_t r = 0; r < sh->rounds; r++) {
		int64_t t0 = now_ns();
		uint32_t burst = 1 + (rng >> 30) % 3, want = seq + 1;

		for (uint32_t k = 0; k < burst; k++) {
			rng = rng * 1103515245u + 12345u;
			CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, &seq, sizeof(seq)), 0);
			seq++;
			spin_ns((rng >> 16) % 1500);
		}
		/* Every request is answered with its number + 1, in order (one lane). */
		while (want <= seq) {
			uint32_t got = 0;
			int n = ml_chan_recv(c, NULL, NULL, &got, sizeof(got));

			if (n == -EAGAIN) {
				err = ml_chan_wait(c, 10 * SEC);
				CHECK(err == 0, "round %u: wait: %s", r, ml_strerror(err));
				continue;
			}
			CHECK(n == (int)sizeof(got), "round %u: recv %d", r, n);
			CHECK(got == want, "round %u: reply %u, want %u", r, got, want);
			want++;
		}
		took[r] = (uint64_t)(now_ns() - t0);
		slow += took[r] >= (uint64_t)WAKE_SLICE_MS * MS;
		max = took[r] > max ? took[r] : max;
	}
	qsort(took, sh->rounds, sizeof(*took), cmp_u64);
	atomic_store(&sh->p50_ns, took[sh->rounds / 2]);
	atomic_store(&sh->slow, slow);
	atomic_store(&sh->max_ns, max);
	ret = 0;
out:
	atomic_store(&sh->done, 1);
	free(took);
	ml_chan_close(c);
	return ret;
}

static int wake_pair(int daemon_mode, int client_mode, uint32_t rounds)
{
	static const char *const mode_name[] = {
		[ML_WAIT_ADAPTIVE] = "adaptive", [ML_WAIT_BUSY] = "busy",
		[ML_WAIT_BLOCKING] = "blocking",
	};
	struct wake_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = wake_opts(daemon_mode);
	ml_chan *d = NULL;
	pid_t pid = 0;
	int ret = -1;

	CHECK(sh, "no shared memory");
	chan_name(sh->name, sizeof(sh->name), "wake");
	sh->rounds = rounds;
	sh->client_mode = client_mode;
	sh->daemon_mode = daemon_mode;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(wake_client, sh);
	while (!atomic_load(&sh->done)) {
		uint32_t v;
		unsigned cl;
		int prio, n, err = ml_chan_wait(d, 100 * MS);

		CHECK(err == 0 || err == -ETIMEDOUT, "daemon wait: %s", ml_strerror(err));
		while ((n = ml_chan_recv(d, &prio, &cl, &v, sizeof(v))) >= 0) {
			CHECK(n == (int)sizeof(v), "request of %d bytes", n);
			v++;
			CHECK_RC(ml_chan_reply(d, cl, prio, &v, sizeof(v)), 0);
		}
		CHECK(n == -EAGAIN || n == -EPIPE, "daemon recv: %s", ml_strerror(n));
	}
	CHECK(reap_ok(pid, "client", 10 * SEC), "client");
	pid = 0;
	printf("  # daemon %s, client %s: %u bursts, p50 %.1f us, max %.1f ms, "
	       "%llu of %d ms or more\n", mode_name[daemon_mode], mode_name[client_mode], rounds,
	       (double)atomic_load(&sh->p50_ns) / 1e3, (double)atomic_load(&sh->max_ns) / 1e6,
	       (unsigned long long)atomic_load(&sh->slow), WAKE_SLICE_MS);
	CHECK(atomic_load(&sh->slow) <= 2 + rounds / 2000,
	      "daemon %s, client %s: %llu bursts took %d ms or more: lost wake-ups",
	      mode_name[daemon_mode], mode_name[client_mode],
	      (unsigned long long)atomic_load(&sh->slow), WAKE_SLICE_MS);
	ret = 0;
out:
	if (pid > 0)
		reap(pid, 5 * SEC);
	ml_chan_close(d);
	return ret;
}

int t_no_lost_wakeup(void)
{
	const char *e = getenv("CHAN_WAKE_ROUNDS");
	uint32_t n = e && *e ? (uint32_t)strtoul(e, NULL, 0) : 20000;

	if (n < 2)
		n = 2;
	if (wake_pair(ML_WAIT_ADAPTIVE, ML_WAIT_ADAPTIVE, n) ||
	    wake_pair(ML_WAIT_BLOCKING, ML_WAIT_BLOCKING, n) ||
	    wake_pair(ML_WAIT_ADAPTIVE, ML_WAIT_BLOCKING, n) ||
	    wake_pair(ML_WAIT_BLOCKING, ML_WAIT_ADAPTIVE, n))
		return -1;
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * Channel tests: no wake-up is lost when sends race a peer going to sleep.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#endif

#include "proctest.h"
#include "chan_test.h"
#include "chan_layout.h" /* the missed wake-up test writes a lane directly */

/*
 * Bursts of 1-3 requests a few hundred ns apart, each answered, where both
 * sides sleep whenever they find nothing (adaptive with a 1 ns spin, or
 * blocking): sends keep landing just as the peer decides to sleep, which
 * races the sender's look at the sleeping flag against the sleeper's last
 * look at the rings (a fence on one side and a remote barrier on the other
 * for adaptive handles, fences on both for blocking ones).
 *
 * A lost wake-up does not hang: the sleeper wakes by itself after 20 ms
 * (the liveness slice) or 50 ms (its heartbeat). So it is judged by count,
 * not by time: each side's ml_chan_stats() counts the sleeps that ran out
 * while a message waited that no sender rang even a second later
 * (missed_wakeups), and that must be 0. The bursts that took 19 ms or more
 * are only reported: on a busy machine a scheduling stall looks the same.
 */
#define WAKE_SLICE_MS 19

struct wake_shared {
	char name[80];
	uint32_t rounds;
	int client_mode, daemon_mode;
	_Atomic uint64_t slow, max_ns, p50_ns, done;
	_Atomic uint64_t client_sleeps, client_missed;
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
	CHECK_RC(connect_opts_retry(&c, sh->name, &o, 5 * SEC, -ENOENT), 0);
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
	{
		struct ml_chan_stats st = { .size = sizeof(st) };

		CHECK_RC(ml_chan_stats(c, &st), 0);
		atomic_store(&sh->client_sleeps, st.sleeps);
		atomic_store(&sh->client_missed, st.missed_wakeups);
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
	struct ml_chan_stats dst = { .size = sizeof(dst) };
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
	CHECK_RC(ml_chan_stats(d, &dst), 0);
	printf("  # daemon %s, client %s: %u bursts, p50 %.1f us, max %.1f ms, "
	       "%llu of %d ms or more; sleeps: daemon %llu, client %llu; missed wake-ups: "
	       "daemon %llu, client %llu\n", mode_name[daemon_mode], mode_name[client_mode],
	       rounds, (double)atomic_load(&sh->p50_ns) / 1e3,
	       (double)atomic_load(&sh->max_ns) / 1e6,
	       (unsigned long long)atomic_load(&sh->slow), WAKE_SLICE_MS,
	       (unsigned long long)dst.sleeps, (unsigned long long)atomic_load(&sh->client_sleeps),
	       (unsigned long long)dst.missed_wakeups,
	       (unsigned long long)atomic_load(&sh->client_missed));
	CHECK(dst.missed_wakeups == 0 && atomic_load(&sh->client_missed) == 0,
	      "daemon %s, client %s: lost wake-ups (daemon %llu, client %llu)",
	      mode_name[daemon_mode], mode_name[client_mode],
	      (unsigned long long)dst.missed_wakeups,
	      (unsigned long long)atomic_load(&sh->client_missed));
	/*
	 * The race was run: a side slept (else nothing was proven). Not both
	 * always: on a crowded machine a wait yields once before it sleeps,
	 * and a fast peer then answers within the yield.
	 */
	CHECK(dst.sleeps + atomic_load(&sh->client_sleeps) > 0,
	      "daemon %s, client %s: neither side slept (daemon %llu, client %llu)",
	      mode_name[daemon_mode], mode_name[client_mode], (unsigned long long)dst.sleeps,
	      (unsigned long long)atomic_load(&sh->client_sleeps));
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

/*
 * The same under load, as on a machine with more clients than cores: a
 * spinning process for each online CPU and one more, so that the pair
 * waits for a CPU at any moment (a sleeper woken behind a hog, a sender
 * preempted between its send and its look at the flag). Fewer rounds,
 * since each may wait for a tick.
 */
struct hogs {
	_Atomic int stop;
	_Atomic int running;
};

#define HOGS_MAX 16

static int hog(void *arg)
{
	struct hogs *h = arg;

	atomic_fetch_add(&h->running, 1);
	while (!atomic_load_explicit(&h->stop, memory_order_relaxed))
		;
	return 0;
}

static unsigned online_cpus(void)
{
#ifdef _WIN32
	SYSTEM_INFO si;

	GetSystemInfo(&si);
	return si.dwNumberOfProcessors ? (unsigned)si.dwNumberOfProcessors : 1;
#else
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
#endif
}

int t_no_lost_wakeup_crowded(void)
{
	const char *e = getenv("CHAN_WAKE_ROUNDS");
	uint32_t n = (e && *e ? (uint32_t)strtoul(e, NULL, 0) : 20000) / 4;
	struct hogs *h = shared_map(sizeof(*h));
	unsigned cpus = online_cpus(), hogs = cpus + 1 > HOGS_MAX ? HOGS_MAX : cpus + 1;
	pid_t pid[HOGS_MAX] = { 0 };
	int ret = -1;

	CHECK(h, "no shared memory");
	if (n < 2)
		n = 2;
	for (unsigned i = 0; i < hogs; i++)
		pid[i] = spawn(hog, h);
	CHECK(wait_flag(&h->running, (int)hogs, 20 * SEC), "the hogs did not start");
	printf("  # %u spinning processes beside the pair, %u CPUs\n", hogs, cpus);
	if (wake_pair(ML_WAIT_ADAPTIVE, ML_WAIT_ADAPTIVE, n) ||
	    wake_pair(ML_WAIT_BLOCKING, ML_WAIT_BLOCKING, n) ||
	    wake_pair(ML_WAIT_ADAPTIVE, ML_WAIT_BLOCKING, n) ||
	    wake_pair(ML_WAIT_BLOCKING, ML_WAIT_ADAPTIVE, n))
		goto out;
	ret = 0;
out:
	if (h)
		atomic_store(&h->stop, 1);
	for (unsigned i = 0; i < hogs; i++)
		if (pid[i] > 0 && !reap_ok(pid[i], "hog", 10 * SEC))
			ret = -1;
	return ret;
}

struct unrung {
	char name[80];
};

/* Once the daemon sleeps: one record in slot 0's request lane, and no ring. */
static int unrung_writer(void *arg)
{
	struct unrung *sh = arg;
	struct ml__ctl *ctl;
	ml_ring *r = NULL;
	size_t len = 0, alen = 0;
	uint8_t *base = ctl_map(sh->name, &len), *area = area_map(sh->name, 0, &alen);

	if (!base || !area || alen <= ML__PEER_SIZE)
		return 4;
	ctl = (struct ml__ctl *)base;
	for (int64_t end = now_ns() + 10 * SEC;
	     !(atomic_load(&ctl->bell.sleeping) & ML__BELL_ASLEEP);)
		if (now_ns() > end)
			return 2;
	if (ml_ring_attach(&r, area + ML__PEER_SIZE, alen - ML__PEER_SIZE) ||
	    ml_ring_write(r, ML_PRIO_HIGH, "unrung", 6))
		return 3;
	return 0;
}

#ifdef _WIN32
/* win: a client's area is mapped by its own process only: a thread of ours writes it. */
static DWORD WINAPI unrung_thread(void *arg)
{
	return (DWORD)unrung_writer(arg);
}
#endif

/*
 * The count itself: a message published with no ring while the daemon
 * sleeps (written into a client's lane behind the library's back, as a
 * sender that lost the race would leave it) is found when the sleep runs
 * out, and counted as a missed wake-up once no ring came within the grace.
 * Backends whose areas a test can reach (linux: its own; /dev/shm; win).
 */
int t_missed_wakeup_counted(void)
{
	struct unrung *sh = shared_map(sizeof(*sh));
	struct ml_chan_stats st = { .size = sizeof(st) };
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL, *c = NULL;
	char name[80], buf[16];
	size_t len = 0;
	int ret = -1, n, prio;
	unsigned cl;
	pid_t pid = 0;

	if (!region_mappable()) {
		skipf("needs a region to map");
		return 1;
	}
	chan_name(name, sizeof(name), "missed");
	o.wait_mode = ML_WAIT_BLOCKING;
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&c, name, &o), 0);
	CHECK(area_map(name, 0, &len), "cannot map the client's area");
	/*
	 * Take the connect's ring first: arriving late on a busy machine, it
	 * would wake the sleep below as a ring, and nothing be missed.
	 */
	n = ml_chan_wait(d, 300 * MS);
	CHECK(n == 0 || n == -ETIMEDOUT, "first wait: %s", ml_strerror(n));
	CHECK_RC(ml_chan_recv(d, &prio, &cl, buf, sizeof(buf)), -EAGAIN);
	snprintf(sh->name, sizeof(sh->name), "%s", name);
#ifdef _WIN32
	{
		HANDLE th = CreateThread(NULL, 0, unrung_thread, sh, 0, NULL);
		DWORD code = 1;

		CHECK(th, "CreateThread");
		/* The sleep runs out (its slice) and finds the message. */
		n = ml_chan_wait(d, 10 * SEC);
		WaitForSingleObject(th, 10000);
		GetExitCodeThread(th, &code);
		CloseHandle(th);
		CHECK(code == 0, "writer: %lu", (unsigned long)code);
	}
#else
	pid = spawn(unrung_writer, sh);
	CHECK(pid >= 0, "fork");
	/* The sleep runs out (its slice) and finds the message. */
	n = ml_chan_wait(d, 10 * SEC);
	CHECK(reap_ok(pid, "writer", 10 * SEC), "writer");
	pid = 0;
#endif
	CHECK_RC(n, 0);
	n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf));
	CHECK(n == 6 && !memcmp(buf, "unrung", 6), "recv %d", n);
	/* The next sleep first waits out the grace for a late ring: none. */
	CHECK_RC(ml_chan_wait(d, 1500 * MS), -ETIMEDOUT);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.missed_wakeups == 1, "missed_wakeups %llu, want 1",
	      (unsigned long long)st.missed_wakeups);
	CHECK(st.sleeps >= 2, "sleeps %llu", (unsigned long long)st.sleeps);
	/*
	 * (The client's own sends cannot follow: its producer does not know
	 * of the record written behind its back. no_lost_wakeup shows that
	 * rung messages count nothing.)
	 */
	ret = 0;
out:
	if (pid > 0)
		reap(pid, 5 * SEC);
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

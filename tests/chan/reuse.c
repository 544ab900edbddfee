// SPDX-License-Identifier: MIT
/*
 * Channel tests: a client id names one connection, never the slot's next
 * holder, and a daemon with ML_CHAN_EVENTS learns of every arrival and
 * departure exactly once (ml_chan_recv, ml_chan_wait, ml_chan_fd).
 *
 * The test process never touches a channel: it forks the daemon and every
 * client, and kills them. A process forked from a daemon would keep the
 * daemon's descriptors and mappings of client areas (kmod: the regions a
 * slot's next area is made in), as the header says a fork()ed child does.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

/* ---- a late reply to a client that was SIGKILLed ------------------------ */

struct late_shared {
	char name[80];
	bool events;
	_Atomic int d_ready;          /* the daemon has created the channel */
	_Atomic int reserved;         /* ... received A's request and reserved for A */
	_Atomic int a_dead;           /* A was killed and reaped */
	_Atomic int b_connected;
	_Atomic int b_stop;           /* the daemon is done: B stops listening */
	_Atomic int b_out;            /* B stopped listening: the daemon may go */
	_Atomic int b_count;          /* messages B received */
	_Atomic int b_bad;            /* of them, not "for B" */
	char b_first[64];
};

/* A: one request, then sleep outside any memlink call until killed. */
static int late_a(void *arg)
{
	struct late_shared *sh = arg;
	ml_chan *c = NULL;
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 10 * SEC, -ENOENT), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "request of A", 12), 0);
	for (;;)
		pause();
out:
	ml_chan_close(c);
	return ret;
}

/* B: sends nothing, counts whatever reaches it. */
static int late_b(void *arg)
{
	struct late_shared *sh = arg;
	ml_chan *c = NULL;
	char buf[256];
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 20 * SEC, -ECONNREFUSED), 0);
	atomic_store(&sh->b_connected, 1);
	for (;;) {
		int n, stop = atomic_load(&sh->b_stop);

		while ((n = ml_chan_recv(c, NULL, NULL, buf, sizeof(buf))) >= 0) {
			if (atomic_fetch_add(&sh->b_count, 1) == 0)
				snprintf(sh->b_first, sizeof(sh->b_first), "%.*s", n, buf);
			if (n != 5 || memcmp(buf, "for B", 5))
				atomic_fetch_add(&sh->b_bad, 1);
		}
		CHECK_RC(n, -EAGAIN);
		if (stop)
			break;
		n = ml_chan_wait(c, 20 * MS);
		CHECK(n == 0 || n == -ETIMEDOUT, "B: wait %s", ml_strerror(n));
	}
	ret = 0;
out:
	atomic_store(&sh->b_out, 1);
	ml_chan_close(c);
	return ret;
}

/*
 * Daemon: receive until `want` (an event, or a message when 0) comes, and
 * give its client; any other result fails. Returns the result.
 */
static int recv_until(ml_chan *d, int want, unsigned *cl, char *buf, size_t len, int64_t to)
{
	int64_t end = now_ns() + to;

	for (;;) {
		int n = ml_chan_recv(d, NULL, cl, buf, len);

		if (n == want || (want == 0 && n >= 0))
			return n;
		if (n != -EAGAIN) {
			failf("daemon: recv %d (%s) while waiting for %d", n, ml_strerror(n), want);
			return n;
		}
		if (now_ns() > end) {
			failf("daemon: nothing (waiting for %d) in %lld ms", want,
			      (long long)(to / MS));
			return -ETIMEDOUT;
		}
		ml_chan_wait(d, 20 * MS);
	}
}

/* The daemon of late_reply(): one slot, a late answer for A once B has it. */
static int late_daemon(void *arg)
{
	struct late_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	struct ml_msg m = { .data = "for A (many)", .len = 12, .prio = ML_PRIO_LOW };
	unsigned ida = 0, idb = 0, cl = 0;
	ml_chan *d = NULL;
	char buf[256];
	void *at = NULL;
	int ret = 1;

	o.max_clients = 1;
	if (sh->events)
		o.flags |= ML_CHAN_EVENTS;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	atomic_store(&sh->d_ready, 1);
	if (sh->events) {
		CHECK_RC(recv_until(d, ML_CHAN_JOINED, &ida, buf, sizeof(buf), 10 * SEC),
			 ML_CHAN_JOINED);
		CHECK_RC(recv_until(d, 0, &cl, buf, sizeof(buf), 10 * SEC), 12);
		CHECK(cl == ida, "A's message came from %u, JOINED said %u", cl, ida);
	} else {
		CHECK_RC(recv_until(d, 0, &ida, buf, sizeof(buf), 10 * SEC), 12);
	}
	CHECK(!memcmp(buf, "request of A", 12), "A's request: %.12s", buf);
	CHECK(ML_CHAN_SLOT(ida) == 0 && ida != 0, "A's id %u", ida);
	/* A bare slot number names nobody. */
	CHECK_RC(ml_chan_reply(d, 0, ML_PRIO_LOW, "x", 1), -EINVAL);
	/* Queued for A, never read: B's lanes must start empty all the same. */
	CHECK_RC(ml_chan_reply(d, ida, ML_PRIO_LOW, "queued for A", 12), 0);
	CHECK_RC(ml_chan_reply(d, ida, ML_PRIO_CRITICAL, "queued for A", 12), 0);
	/* A reservation for A, committed only after B has the slot. */
	CHECK_RC(ml_chan_send_reserve(d, ida, ML_PRIO_LOW, 16, &at), 0);
	memcpy(at, "reserved for A", 14);
	atomic_store(&sh->reserved, 1);
	CHECK(wait_flag(&sh->a_dead, 1, 20 * SEC), "A was never killed");
	if (sh->events) {
		CHECK_RC(recv_until(d, ML_CHAN_LEFT, &cl, buf, sizeof(buf), 10 * SEC), ML_CHAN_LEFT);
		CHECK(cl == ida, "LEFT for %u, A is %u", cl, ida);
		CHECK_RC(recv_until(d, ML_CHAN_JOINED, &idb, buf, sizeof(buf), 20 * SEC),
			 ML_CHAN_JOINED);
	} else {
		for (int64_t end = now_ns() + 20 * SEC; now_ns() < end;) {
			idb = client_id(d, 0);
			if (idb && idb != ida)
				break;
			ml_chan_wait(d, 20 * MS);
		}
	}
	CHECK(wait_flag(&sh->b_connected, 1, 20 * SEC), "B never connected");
	CHECK(idb && idb != ida && ML_CHAN_SLOT(idb) == 0, "B's id %u, A's %u", idb, ida);
	/* Everything naming A now fails, and reaches nobody. */
	CHECK_RC(ml_chan_send_commit(d, 14), -EPIPE);
	CHECK_RC(ml_chan_reply(d, ida, ML_PRIO_HIGH, "reply meant for A", 17), -EPIPE);
	CHECK_RC(ml_chan_send_many(d, ida, &m, 1), -EPIPE);
	CHECK_RC(ml_chan_send_wait(d, ida, ML_PRIO_CRITICAL, "wait for A", 10, 1 * SEC), -EPIPE);
	CHECK_RC(ml_chan_send_reserve(d, ida, ML_PRIO_LOW, 8, &at), -EPIPE);
	CHECK_RC(ml_chan_peer_alive(d, ida, 10 * SEC), -EPIPE);
	/* B's own id works: B must receive exactly this, and nothing else. */
	CHECK_RC(ml_chan_reply(d, idb, ML_PRIO_HIGH, "for B", 5), 0);
	CHECK(wait_flag(&sh->b_count, 1, 10 * SEC), "B received nothing");
	/* Give anything misdirected time to arrive before B stops. */
	sleep_ms(100);
	atomic_store(&sh->b_stop, 1);
	CHECK(wait_flag(&sh->b_out, 1, 10 * SEC), "B never stopped");
	ret = 0;
out:
	atomic_store(&sh->b_stop, 1);
	ml_chan_close(d);
	return ret;
}

static int late_reply(bool events)
{
	struct late_shared *sh = shared_map(sizeof(*sh));
	pid_t a = 0, b = 0, d = 0;
	int st, ret = -1;

	chan_name(sh->name, sizeof(sh->name), events ? "latev" : "late");
	sh->events = events;
	d = spawn(late_daemon, sh);
	CHECK(wait_flag(&sh->d_ready, 1, 10 * SEC), "the daemon never started");
	a = spawn(late_a, sh);
	CHECK(wait_flag(&sh->reserved, 1, 20 * SEC), "A's request never served");
	kill(a, SIGKILL);
	st = reap(a, 10 * SEC);
	a = 0;
	CHECK(st != -1 && WIFSIGNALED(st), "A's status %#x", st);
	atomic_store(&sh->a_dead, 1);
	b = spawn(late_b, sh);
	CHECK(reap_ok(d, "daemon", 60 * SEC), "daemon");
	d = 0;
	CHECK(reap_ok(b, "B", 20 * SEC), "B");
	b = 0;
	CHECK(atomic_load(&sh->b_count) == 1 && atomic_load(&sh->b_bad) == 0,
	      "B received %d messages, %d not its own (first: \"%s\")", atomic_load(&sh->b_count),
	      atomic_load(&sh->b_bad), sh->b_first);
	ret = 0;
out:
	atomic_store(&sh->b_stop, 1);
	kill_reap(a);
	kill_reap(b);
	kill_reap(d);
	return ret;
}

int t_reuse_late_reply(void)
{
	if (late_reply(false))
		return -1;
	return late_reply(true);
}

/* ---- events, in order --------------------------------------------------- */

static const char *const ev_hows[] = { "a clean close", "a death outside any call",
				       "a death inside ml_chan_wait" };

struct ev_shared {
	char name[80];
	_Atomic int d_ready;
	_Atomic int how;              /* this round's client: ev_hows[how] */
	_Atomic int sent;             /* it sent its three messages */
	_Atomic int gone;             /* rounds whose client is gone (reaped) */
	_Atomic int checked;          /* rounds the daemon has checked */
};

/* Three messages, then: 0 close, 1 die in pause(), 2 die inside a wait. */
static int ev_client(void *arg)
{
	struct ev_shared *sh = arg;
	ml_chan *c = NULL;
	int how = atomic_load(&sh->how), ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 10 * SEC, -ENOENT), 0);
	for (int i = 0; i < 3; i++) {
		char m = (char)('0' + i);

		CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, &m, 1), 0);
	}
	atomic_store(&sh->sent, 1);
	if (how == 0) {
		ml_chan_close(c);
		return 0;
	}
	for (;;) {
		if (how == 1)
			pause();
		else
			ml_chan_wait(c, -1);
	}
out:
	ml_chan_close(c);
	return ret;
}

/* The daemon: per round, once its client is gone, JOINED, 3 messages, LEFT. */
static int ev_daemon(void *arg)
{
	struct ev_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;
	char buf[64];
	int ret = 1;

	o.max_clients = 2;
	o.flags |= ML_CHAN_EVENTS;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	atomic_store(&sh->d_ready, 1);
	for (int how = 0; how < 3; how++) {
		unsigned id = 0, cl = 0;
		struct ml_msg ms[4];
		int n, got = 0;

		/* All of it is there now, whatever the backend has noticed yet. */
		CHECK(wait_flag(&sh->gone, how + 1, 20 * SEC), "round %d never came", how);
		n = recv_until(d, ML_CHAN_JOINED, &id, buf, sizeof(buf), 10 * SEC);
		CHECK(n == ML_CHAN_JOINED, "%s: first %d (%s), want JOINED", ev_hows[how], n,
		      ml_strerror(n));
		while (got < 3) {
			n = ml_chan_recv_many(d, ms, 4, buf, sizeof(buf));
			if (n == -EAGAIN) {
				ml_chan_wait(d, 20 * MS);
				continue;
			}
			CHECK(n > 0, "%s: message %d: %d (%s)", ev_hows[how], got, n, ml_strerror(n));
			for (int i = 0; i < n; i++, got++)
				CHECK(ms[i].client == id && ms[i].len == 1 &&
				      *(char *)ms[i].data == '0' + got,
				      "%s: message %d from %u: len %u", ev_hows[how], got, ms[i].client,
				      ms[i].len);
		}
		n = recv_until(d, ML_CHAN_LEFT, &cl, buf, sizeof(buf), 10 * SEC);
		CHECK(n == ML_CHAN_LEFT && cl == id, "%s: then %d (%s) for %u, want LEFT for %u",
		      ev_hows[how], n, ml_strerror(n), cl, id);
		CHECK_RC(ml_chan_reply(d, id, ML_PRIO_LOW, "x", 1), -EPIPE);
		/* Exactly once: nothing more comes. */
		sleep_ms(50);
		n = ml_chan_recv(d, NULL, &cl, buf, sizeof(buf));
		CHECK(n == -EAGAIN, "%s: after LEFT, %d (%s) for %u", ev_hows[how], n,
		      ml_strerror(n), cl);
		printf("  # %s: JOINED, 3 messages, LEFT for client %#x\n", ev_hows[how], id);
		atomic_store(&sh->checked, how + 1);
	}
	ret = 0;
out:
	ml_chan_close(d);
	return ret;
}

int t_reuse_events(void)
{
	struct ev_shared *sh = shared_map(sizeof(*sh));
	pid_t p = 0, d = 0;
	int ret = -1;

	chan_name(sh->name, sizeof(sh->name), "events");
	d = spawn(ev_daemon, sh);
	CHECK(wait_flag(&sh->d_ready, 1, 10 * SEC), "the daemon never started");
	for (int how = 0; how < 3; how++) {
		int st;

		atomic_store(&sh->how, how);
		atomic_store(&sh->sent, 0);
		p = spawn(ev_client, sh);
		CHECK(wait_flag(&sh->sent, 1, 10 * SEC), "%s: the client never sent", ev_hows[how]);
		if (how) {
			kill(p, SIGKILL);
			st = reap(p, 10 * SEC);
			CHECK(st != -1 && WIFSIGNALED(st), "%s: status %#x", ev_hows[how], st);
		} else {
			CHECK(reap_ok(p, "client", 10 * SEC), "client");
		}
		p = 0;
		atomic_store(&sh->gone, how + 1);
		CHECK(wait_flag(&sh->checked, how + 1, 30 * SEC), "%s: never checked",
		      ev_hows[how]);
	}
	CHECK(reap_ok(d, "daemon", 20 * SEC), "daemon");
	d = 0;
	ret = 0;
out:
	kill_reap(p);
	kill_reap(d);
	return ret;
}

/* ---- a departure wakes a sleeping daemon -------------------------------- */

struct wake_shared {
	char name[80];
	_Atomic int d_ready;
	_Atomic int connected;        /* rounds whose client connected */
	_Atomic int asleep;           /* rounds whose daemon is about to sleep */
	_Atomic int woke;             /* rounds whose daemon woke with LEFT */
	_Atomic long long kill_ns;    /* when the test process killed the client */
	_Atomic int no_fd;            /* the backend has no ml_chan_fd */
};

static int wake_client(void *arg)
{
	struct wake_shared *sh = arg;
	ml_chan *c = NULL;
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 10 * SEC, -ENOENT), 0);
	atomic_fetch_add(&sh->connected, 1);
	for (;;)
		pause();
out:
	ml_chan_close(c);
	return ret;
}

/* Round 0: asleep in ml_chan_wait(); round 1: in a wait on ml_chan_fd(). */
static int wake_daemon(void *arg)
{
	struct wake_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;
	char buf[64];
	int ret = 1;

	o.flags |= ML_CHAN_EVENTS;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	atomic_store(&sh->d_ready, 1);
	for (int by_fd = 0; by_fd < 2; by_fd++) {
		unsigned id = 0, cl = 0;
		int fd = -1, n;

		if (by_fd) {
			fd = ml_chan_fd(d);
			if (fd == -ENOTSUP) {
				atomic_store(&sh->no_fd, 1);
				break;
			}
			CHECK(fd >= 0, "ml_chan_fd: %s", ml_strerror(fd));
		}
		CHECK_RC(recv_until(d, ML_CHAN_JOINED, &id, buf, sizeof(buf), 10 * SEC),
			 ML_CHAN_JOINED);
		/* Nothing pending now: the daemon would sleep. */
		CHECK_RC(ml_chan_recv(d, NULL, &cl, buf, sizeof(buf)), -EAGAIN);
		if (by_fd)
			while (fd_ready(fd, 0))
				CHECK_RC(ml_chan_recv(d, NULL, &cl, buf, sizeof(buf)), -EAGAIN);
		atomic_store(&sh->asleep, by_fd + 1);
		/* The sleeper, woken by the departure: no message, no timeout. */
		if (by_fd) {
			/* A batch receive, which holds the tails while it looks. */
			for (int64_t end = now_ns() + 20 * SEC;;) {
				struct ml_msg m[4];

				CHECK(fd_ready(fd, 10000), "the descriptor stayed quiet for 10 s");
				memset(m, 0, sizeof(m));
				n = ml_chan_recv_many(d, m, 4, buf, sizeof(buf));
				cl = m[0].client;
				if (n != -EAGAIN)
					break;
				CHECK(now_ns() < end, "only stale readiness for 20 s");
			}
		} else {
			n = ml_chan_wait(d, 20 * SEC);
			CHECK(n == 0, "ml_chan_wait: %d (%s), want 0 for the departure", n,
			      ml_strerror(n));
			n = ml_chan_recv(d, NULL, &cl, buf, sizeof(buf));
		}
		CHECK(atomic_load(&sh->kill_ns), "woke before the kill: %d (%s)", n, ml_strerror(n));
		CHECK(n == ML_CHAN_LEFT && cl == id, "woken: %d (%s) for %u, want LEFT for %u", n,
		      ml_strerror(n), cl, id);
		printf("  # a daemon %s woke with LEFT %.2f ms after its client's SIGKILL\n",
		       by_fd ? "polling ml_chan_fd()" : "asleep in ml_chan_wait()",
		       (double)(now_ns() - atomic_load(&sh->kill_ns)) / 1e6);
		atomic_store(&sh->kill_ns, 0);
		atomic_store(&sh->woke, by_fd + 1);
	}
	ret = 0;
out:
	ml_chan_close(d);
	return ret;
}

int t_reuse_departure_wakes(void)
{
	struct wake_shared *sh = shared_map(sizeof(*sh));
	pid_t p = 0, d = 0;
	int ret = -1;

	chan_name(sh->name, sizeof(sh->name), "dwake");
	d = spawn(wake_daemon, sh);
	CHECK(wait_flag(&sh->d_ready, 1, 10 * SEC), "the daemon never started");
	for (int by_fd = 0; by_fd < 2; by_fd++) {
		p = spawn(wake_client, sh);
		for (int64_t end = now_ns() + 20 * SEC;
		     !atomic_load(&sh->no_fd) && atomic_load(&sh->asleep) < by_fd + 1;) {
			CHECK(now_ns() < end, "round %d: the daemon never saw its client", by_fd);
			sleep_ms(1);
		}
		if (atomic_load(&sh->no_fd)) {
			printf("  # %s: no ml_chan_fd(): the descriptor case does not apply\n",
			       active_backend);
			break;
		}
		/* Asleep by now, most likely; asleep or not, the departure must wake it. */
		sleep_ms(50);
		atomic_store(&sh->kill_ns, now_ns());
		kill_reap(p);
		p = 0;
		CHECK(wait_flag(&sh->woke, by_fd + 1, 30 * SEC), "round %d: the daemon never woke",
		      by_fd);
	}
	CHECK(reap_ok(d, "daemon", 20 * SEC), "daemon");
	d = 0;
	ret = 0;
out:
	kill_reap(p);
	kill_reap(d);
	return ret;
}

/* ---- churn: connect, SIGKILL, reconnect --------------------------------- */

#define CHURN_SLOTS 4u
#define CHURN_PENDING 64u

struct churn_shared;

/* What one client process is given: set before its spawn, kept till its reap. */
struct churn_kid {
	struct churn_shared *sh;
	uint32_t tag;
};

struct churn_shared {
	char name[80];
	struct churn_kid kid[CHURN_SLOTS + 1];
	_Atomic int connected;        /* clients that got in */
	_Atomic int answered;         /* answers a client received that were its own */
	_Atomic int foreign;          /* answers a client received that were not */
	_Atomic uint32_t bad_tag;     /* the first foreign tag seen, for the report */
	uint64_t seed;
	_Atomic int d_ready;
	_Atomic int stop;             /* every client reaped: the daemon drains and checks */
	unsigned joins, leaves, late, answers; /* the daemon's counts, for the report */
};

/*
 * A client, tag T: connect, ask for T, and take every answer: each must
 * say T. Then by T % 3: close and exit, sleep outside any call, or wait
 * inside ml_chan_wait, until killed.
 */
static int churn_client(void *arg)
{
	struct churn_kid *kid = arg;
	struct churn_shared *sh = kid->sh;
	uint32_t tag = kid->tag, got;
	ml_chan *c = NULL;
	char buf[64];
	int ret = 1, n;

	CHECK_RC(connect_retry(&c, sh->name, 30 * SEC, -ECONNREFUSED), 0);
	atomic_fetch_add(&sh->connected, 1);
	CHECK_RC(ml_chan_send_wait(c, 0, ML_PRIO_HIGH, &tag, sizeof(tag), 10 * SEC), 0);
	for (;;) {
		while ((n = ml_chan_recv(c, NULL, NULL, buf, sizeof(buf))) >= 0) {
			memcpy(&got, buf, sizeof(got));
			if (n != sizeof(got) || got != tag) {
				atomic_fetch_add(&sh->foreign, 1);
				atomic_store(&sh->bad_tag, got);
			} else {
				atomic_fetch_add(&sh->answered, 1);
				if (tag % 3 == 0) {
					ml_chan_close(c);
					return 0;
				}
			}
		}
		if (n == -EPIPE)
			break;
		CHECK_RC(n, -EAGAIN);
		if (tag % 3 == 1)
			sleep_ms(1); /* killed outside any call, mostly */
		else
			ml_chan_wait(c, 5 * MS);
	}
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct pending {
	unsigned id;
	uint32_t tag;
	int64_t due;
};

/*
 * The daemon: answers each request after a random delay, to the id it
 * came from, whether that client is still there or not; checks that
 * every message and event fits what recv said before; and once told to
 * stop and every client is gone, that each arrival had its departure.
 */
static int churn_daemon(void *arg)
{
	struct churn_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	uint64_t rs = sh->seed;
	struct pending pend[CHURN_PENDING];
	unsigned npend = 0, joins = 0, leaves = 0, late = 0, answers = 0;
	unsigned live_id[CHURN_SLOTS] = { 0 };      /* the daemon's view, by slot */
	uint32_t live_tag[CHURN_SLOTS] = { 0 };     /* the tag its client asked for */
	int64_t end = now_ns() + 280 * SEC, stop_end = 0;
	ml_chan *d = NULL;
	char buf[64];
	int ret = 1;

	o.max_clients = CHURN_SLOTS;
	o.flags |= ML_CHAN_EVENTS;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	atomic_store(&sh->d_ready, 1);
	for (;;) {
		unsigned cl;
		int n;

		CHECK(now_ns() < end, "daemon: still serving after 280 s");
		if (atomic_load(&sh->stop)) {
			if (!stop_end)
				stop_end = now_ns() + 20 * SEC;
			if (leaves == joins)
				break;
			CHECK(now_ns() < stop_end, "every client gone, %u arrivals and %u departures "
			      "reported after 20 s", joins, leaves);
		}
		/* Serve: events and requests, in the order recv gives them. */
		while ((n = ml_chan_recv(d, NULL, &cl, buf, sizeof(buf))) != -EAGAIN) {
			unsigned sl = ML_CHAN_SLOT(cl);
			uint32_t tag;

			CHECK(sl < CHURN_SLOTS, "recv %d for %u", n, cl);
			if (n == ML_CHAN_JOINED) {
				CHECK(!live_id[sl], "JOINED %u while %u holds slot %u", cl, live_id[sl],
				      sl);
				live_id[sl] = cl;
				live_tag[sl] = 0;
				joins++;
				continue;
			}
			if (n == ML_CHAN_LEFT) {
				CHECK(live_id[sl] == cl, "LEFT %u, slot %u is %u's", cl, sl,
				      live_id[sl]);
				live_id[sl] = 0;
				leaves++;
				continue;
			}
			CHECK(live_id[sl] == cl, "%d (%s) for %u, slot %u is %u's", n, ml_strerror(n),
			      cl, sl, live_id[sl]);
			if (n == -EOWNERDEAD)
				continue; /* killed inside a send: nothing of it delivered */
			CHECK(n == (int)sizeof(tag), "recv %d (%s) from %u", n, ml_strerror(n), cl);
			memcpy(&tag, buf, sizeof(tag));
			CHECK(!live_tag[sl], "client %u asked twice (%u, %u)", cl, live_tag[sl], tag);
			live_tag[sl] = tag;
			CHECK(npend < CHURN_PENDING, "%u requests pending", npend);
			pend[npend].id = cl;
			pend[npend].tag = tag;
			pend[npend].due = now_ns() + (int64_t)(rnd_next(&rs) % 3000) * 1000;
			npend++;
		}
		/* Answer what is due, to the id it came from, late or not. */
		for (unsigned i = 0; i < npend;) {
			int err;

			if (pend[i].due > now_ns()) {
				i++;
				continue;
			}
			err = ml_chan_reply(d, pend[i].id, ML_PRIO_HIGH, &pend[i].tag,
					    sizeof(pend[i].tag));
			CHECK(err == 0 || err == -EPIPE || err == -EAGAIN, "reply: %s",
			      ml_strerror(err));
			if (err == -EAGAIN) {
				i++;
				continue;
			}
			if (err == -EPIPE)
				late++;
			else
				answers++;
			pend[i] = pend[--npend];
		}
		ml_chan_wait(d, 1 * MS);
	}
	sh->joins = joins;
	sh->leaves = leaves;
	sh->late = late;
	sh->answers = answers;
	ret = 0;
out:
	ml_chan_close(d);
	return ret;
}

int t_reuse_churn(void)
{
	struct churn_shared *sh = shared_map(sizeof(*sh));
	const char *e = getenv("CHAN_CHURN");
	int cycles = e && *e ? atoi(e) : 1000, spawned = 0, reaped = 0;
	pid_t kids[CHURN_SLOTS + 1] = { 0 }, d = 0;
	int64_t end = now_ns() + 280 * SEC;
	uint64_t rs;
	int ret = -1;

	chan_name(sh->name, sizeof(sh->name), "churn");
	sh->seed = (uint64_t)now_ns() | 1;
	rs = sh->seed * 7 + 1;
	d = spawn(churn_daemon, sh);
	CHECK(wait_flag(&sh->d_ready, 1, 10 * SEC), "the daemon never started");
	while (reaped < cycles) {
		CHECK(now_ns() < end, "%d of %d cycles in 280 s (seed %#llx)", reaped, cycles,
		      (unsigned long long)sh->seed);
		/* Keep one more process than slots coming and going. */
		for (unsigned k = 0; k <= CHURN_SLOTS && spawned < cycles; k++)
			if (!kids[k]) {
				sh->kid[k].sh = sh;
				sh->kid[k].tag = (uint32_t)spawned + 1;
				kids[k] = spawn(churn_client, &sh->kid[k]);
				CHECK(kids[k] > 0, "spawn");
				spawned++;
			}
		/* Kill one now and then, at any point of its life. */
		if (rnd_next(&rs) % 4 == 0) {
			unsigned k = (unsigned)(rnd_next(&rs) % (CHURN_SLOTS + 1));

			if (kids[k])
				kill(kids[k], SIGKILL);
		}
		for (unsigned k = 0; k <= CHURN_SLOTS; k++) {
			int st;

			if (kids[k] && waitpid(kids[k], &st, WNOHANG) == kids[k]) {
				CHECK(WIFSIGNALED(st) || (WIFEXITED(st) && !WEXITSTATUS(st)),
				      "client exited %#x", st);
				kids[k] = 0;
				reaped++;
			}
		}
		sleep_ms(1);
	}
	atomic_store(&sh->stop, 1);
	CHECK(reap_ok(d, "daemon", 60 * SEC), "daemon");
	d = 0;
	CHECK(atomic_load(&sh->foreign) == 0,
	      "clients received %d answers meant for others (tag %u; seed %#llx)",
	      atomic_load(&sh->foreign), atomic_load(&sh->bad_tag), (unsigned long long)sh->seed);
	CHECK(sh->joins == sh->leaves, "%u arrivals, %u departures reported", sh->joins,
	      sh->leaves);
	CHECK(sh->joins >= (unsigned)atomic_load(&sh->connected),
	      "%d clients connected, %u arrivals reported", atomic_load(&sh->connected), sh->joins);
	CHECK(sh->joins > (unsigned)cycles / 2, "only %u of %d clients got in", sh->joins, cycles);
	CHECK(sh->late > 0, "no reply went to a client that had gone: the test tested nothing");
	printf("  # %d clients (seed %#llx): %u arrivals, %u departures; %u answers, %u to clients "
	       "gone (-EPIPE); 0 misdelivered\n",
	       cycles, (unsigned long long)sh->seed, sh->joins, sh->leaves, sh->answers, sh->late);
	ret = 0;
out:
	atomic_store(&sh->stop, 1);
	for (unsigned k = 0; k <= CHURN_SLOTS; k++)
		kill_reap(kids[k]);
	kill_reap(d);
	return ret;
}

// SPDX-License-Identifier: MIT
/*
 * Channel tests: zero-copy sends. ml_chan_send_reserve() hands out room in
 * the channel's memory and ml_chan_send_commit() sends what was written
 * there, as ml_chan_send() would; the peer sees nothing before the commit;
 * a send to the same peer, or the next reserve, drops the reservation.
 * A client process streams by reserve/commit and the daemon echoes the
 * same way, every byte checked, in order, counted.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "proctest.h"
#include "chan_test.h"

#define ZC_MSGS 20000

/* Message i: its length and bytes, from i. */
static size_t zc_len(int i)
{
	return (size_t)((i * 29) % 181);
}

static void zc_fill(unsigned char *b, int i)
{
	for (size_t j = 0; j < zc_len(i); j++)
		b[j] = (unsigned char)(i * 13 + (int)j * 7 + 1);
}

static bool zc_is(const void *p, size_t len, int i)
{
	unsigned char want[256];

	zc_fill(want, i);
	return len == zc_len(i) && !memcmp(p, want, len);
}

/*
 * The contract, daemon and client in one process: bad arguments; bytes,
 * length and priority as committed; nothing before the commit; a shorter
 * commit; a send, or a second reserve, dropping the first; a full lane;
 * the daemon's replies; a reservation whose client left.
 */
int t_send_reserve_edges(void)
{
	_Alignas(8) static unsigned char buf[4096];
	unsigned char msg[FULL_MSG];
	ml_chan *d = NULL, *c = NULL;
	int ret = -1, p = -1, n, full = 0;
	unsigned cl = 99, id;
	void *at;

	CHECK_RC(open_pair("zc-edge", &d, &c), 0);
	id = client_id(d, 0);
	CHECK(id, "the client is not in slot 0");
	CHECK_RC(ml_chan_send_reserve(NULL, 0, ML_PRIO_HIGH, 8, &at), -EINVAL);
	CHECK_RC(ml_chan_send_reserve(c, 0, ML_PRIO_HIGH, 8, NULL), -EINVAL);
	CHECK_RC(ml_chan_send_reserve(c, 0, 3, 8, &at), -EINVAL);
	CHECK_RC(ml_chan_send_reserve(c, 0, ML_PRIO_HIGH, 1u << 20, &at), -EMSGSIZE);
	CHECK_RC(ml_chan_send_reserve(d, 99, ML_PRIO_HIGH, 8, &at), -EINVAL);
	/* Bare slot numbers are no ids, the client's slot nor an empty one. */
	CHECK_RC(ml_chan_send_reserve(d, ML_CHAN_SLOT(id), ML_PRIO_HIGH, 8, &at), -EINVAL);
	CHECK_RC(ml_chan_send_reserve(d, 1, ML_PRIO_HIGH, 8, &at), -EINVAL);
	CHECK_RC(ml_chan_send_commit(NULL, 0), -EINVAL);
	CHECK_RC(ml_chan_send_commit(c, 0), -EINVAL); /* nothing reserved */

	/* Written in place, unseen until the commit, which may be shorter. */
	CHECK_RC(ml_chan_send_reserve(c, 0, ML_PRIO_CRITICAL, 100, &at), 0);
	zc_fill(at, 100);
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	CHECK_RC(ml_chan_send_commit(c, 101), -EINVAL); /* more than reserved: kept */
	CHECK_RC(ml_chan_send_commit(c, zc_len(100)), 0);
	n = ml_chan_recv(d, &p, &cl, buf, sizeof(buf));
	CHECK(n >= 0 && zc_is(buf, (size_t)n, 100) && p == ML_PRIO_CRITICAL && cl == id,
	      "committed message: len %d prio %d client %u", n, p, cl);
	CHECK_RC(ml_chan_send_commit(c, 0), -EINVAL); /* committed once */

	/* A send to the same peer drops it; so does a second reserve. */
	CHECK_RC(ml_chan_send_reserve(c, 0, ML_PRIO_LOW, 64, &at), 0);
	memset(at, 'x', 64);
	zc_fill(msg, 7);
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, msg, zc_len(7)), 0);
	CHECK_RC(ml_chan_send_commit(c, 64), -EINVAL);
	CHECK_RC(ml_chan_send_reserve(c, 0, ML_PRIO_LOW, 64, &at), 0);
	memset(at, 'y', 64);
	CHECK_RC(ml_chan_send_reserve(c, 0, ML_PRIO_LOW, 60, &at), 0);
	zc_fill(at, 8);
	CHECK_RC(ml_chan_send_commit(c, zc_len(8)), 0);
	n = ml_chan_recv(d, NULL, NULL, buf, sizeof(buf));
	CHECK(n >= 0 && zc_is(buf, (size_t)n, 7), "the send is not the first (%d bytes)", n);
	n = ml_chan_recv(d, NULL, NULL, buf, sizeof(buf));
	CHECK(n >= 0 && zc_is(buf, (size_t)n, 8), "the second reserve is not next (%d)", n);
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), -EAGAIN);

	/* A full lane: -EAGAIN, as a send would; room comes back as it is read. */
	while ((n = ml_chan_send_reserve(c, 0, ML_PRIO_HIGH, FULL_MSG, &at)) == 0) {
		zc_fill(at, 2);
		CHECK_RC(ml_chan_send_commit(c, zc_len(2)), 0);
		full++;
	}
	CHECK(n == -EAGAIN && full > 1, "full lane: %d after %d", n, full);
	for (int i = 0; i < full; i++) {
		n = ml_chan_recv(d, NULL, NULL, buf, sizeof(buf));
		CHECK(n >= 0 && zc_is(buf, (size_t)n, 2), "full-lane message %d (%d bytes)", i, n);
	}
	CHECK_RC(ml_chan_send_reserve(c, 0, ML_PRIO_HIGH, FULL_MSG, &at), 0);
	CHECK_RC(ml_chan_send_commit(c, 0), 0);
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), 0);

	/* The daemon's replies; then a client that leaves before the commit. */
	CHECK_RC(ml_chan_send_reserve(d, id, ML_PRIO_HIGH, 128, &at), 0);
	zc_fill(at, 3);
	CHECK_RC(ml_chan_send_commit(d, zc_len(3)), 0);
	n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf));
	CHECK(n >= 0 && zc_is(buf, (size_t)n, 3) && p == ML_PRIO_HIGH, "reply: %d bytes", n);
	CHECK_RC(ml_chan_send_reserve(d, id, ML_PRIO_HIGH, 64, &at), 0);
	ml_chan_close(c);
	c = NULL;
	/* The daemon hears of it from its backend (linux: its service thread), soon. */
	for (int64_t end = now_ns() + 5 * SEC; ml_chan_connected(d) && now_ns() < end;)
		sleep_ms(1);
	CHECK(!ml_chan_connected(d), "the client's leaving went unseen");
	CHECK_RC(ml_chan_send_commit(d, 8), -EPIPE);
	/* And its id takes no new reservation. */
	CHECK_RC(ml_chan_send_reserve(d, id, ML_PRIO_HIGH, 8, &at), -EPIPE);
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

struct zc_shared {
	char name[80];
	_Atomic int replies; /* the client read them all */
};

/*
 * The client: ZC_MSGS requests by reserve/commit, reading the echoes as
 * they come; each echo must be the next request's bytes.
 */
static int zc_client(void *arg)
{
	_Alignas(8) static unsigned char buf[4096];
	struct zc_shared *sh = arg;
	ml_chan *c = NULL;
	int ret = -1, sent = 0, got = 0, n;
	void *at;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	while (got < ZC_MSGS) {
		if (sent < ZC_MSGS) {
			n = ml_chan_send_reserve(c, 0, ML_PRIO_HIGH, zc_len(sent), &at);
			if (n == 0) {
				zc_fill(at, sent);
				CHECK_RC(ml_chan_send_commit(c, zc_len(sent)), 0);
				sent++;
				continue;
			}
			CHECK(n == -EAGAIN, "reserve %d: %s", sent, ml_strerror(n));
		}
		n = ml_chan_recv(c, NULL, NULL, buf, sizeof(buf));
		if (n == -EAGAIN) {
			CHECK(ml_chan_wait(c, 10 * SEC) == 0, "no echo after %d", got);
			continue;
		}
		CHECK(n >= 0 && zc_is(buf, (size_t)n, got), "echo %d: %d bytes, not its request",
		      got, n);
		got++;
	}
	atomic_store(&sh->replies, 1);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

/* The daemon echoes each request by reserve/commit, checking it first. */
int t_send_reserve_stream(void)
{
	_Alignas(8) static unsigned char buf[4096];
	struct zc_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;
	pid_t pid = 0;
	int ret = -1, got = 0, n, full = 0;
	unsigned cl = 0;
	void *at;

	o.ring_size = FULL_RING; /* full lanes on both sides, often */
	chan_name(sh->name, sizeof(sh->name), "zc-stream");
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(zc_client, sh);
	while (got < ZC_MSGS) {
		n = ml_chan_recv(d, NULL, &cl, buf, sizeof(buf));
		if (n == -EAGAIN) {
			CHECK(ml_chan_wait(d, 10 * SEC) == 0, "no request after %d", got);
			continue;
		}
		CHECK(n >= 0 && zc_is(buf, (size_t)n, got), "request %d: %d bytes, not it", got, n);
		while ((n = ml_chan_send_reserve(d, cl, ML_PRIO_HIGH, zc_len(got), &at)) == -EAGAIN) {
			full++;
			sched_yield();
		}
		CHECK_RC(n, 0);
		memcpy(at, buf, zc_len(got));
		CHECK_RC(ml_chan_send_commit(d, zc_len(got)), 0);
		got++;
	}
	CHECK(wait_flag(&sh->replies, 1, 20 * SEC), "the client did not read every echo");
	printf("  # %d requests and echoes by reserve/commit, %d reserves found the lane full\n",
	       got, full);
	ret = 0;
out:
	if (pid > 0 && !reap_ok(pid, "client", 20 * SEC))
		ret = -1;
	ml_chan_close(d);
	return ret;
}

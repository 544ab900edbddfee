// SPDX-License-Identifier: MIT
/*
 * Channel tests: batches. ml_chan_recv_many() returns what as many
 * ml_chan_recv() calls would, in the same order (priorities, clients in
 * turn), packed and aligned in the caller's buffer, and the room it took
 * is back when it returns; ml_chan_recv_view() the same messages in place,
 * their room back when the view ends; ml_chan_send_many() sends in order
 * and stops where a single send would fail. Their errors.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proctest.h"
#include "chan_test.h"

#define BT_CLIENTS 2
#define BT_MSGS 300
#define BT_CHANS 3               /* read by recv, recv_many, recv_view */

struct bt_shared {
	char name[BT_CHANS][80]; /* channels fed the same messages */
	_Atomic int ids;         /* hands out client numbers */
	_Atomic int connected;   /* clients connected to both, in turn */
	_Atomic int sent;        /* clients done sending, both channels */
	_Atomic int release;     /* the daemons have read: clients may leave */
};

/* Message i of client k: length and priority from (k, i), bytes keyed. */
static size_t bt_len(int k, int i)
{
	return (size_t)((i * 37 + k * 11) % 201);
}

static int bt_prio(int k, int i)
{
	return (i * 7 + k) % 5 == 0 ? ML_PRIO_CRITICAL : (i + k) % 3 ? ML_PRIO_HIGH : ML_PRIO_LOW;
}

static void bt_fill(unsigned char *b, int k, int i)
{
	for (size_t j = 0; j < bt_len(k, i); j++)
		b[j] = (unsigned char)(k * 101 + i * 7 + (int)j);
}

/* Client k: the same messages into both channels, then wait to be let go. */
static int bt_client(void *arg)
{
	struct bt_shared *sh = arg;
	unsigned char msg[256];
	ml_chan *c[BT_CHANS] = { NULL };
	int k = atomic_fetch_add(&sh->ids, 1), ret = -1;

	/* Client k connects k-th to both: it has slot k in both channels. */
	CHECK(wait_flag(&sh->connected, k, 10 * SEC), "client %d: no turn to connect", k);
	for (int ch = 0; ch < BT_CHANS; ch++)
		CHECK_RC(connect_retry(&c[ch], sh->name[ch], 5 * SEC, -ENOENT), 0);
	atomic_fetch_add(&sh->connected, 1);
	for (int i = 0; i < BT_MSGS; i++) {
		bt_fill(msg, k, i);
		for (int ch = 0; ch < BT_CHANS; ch++)
			CHECK_RC(ml_chan_send(c[ch], bt_prio(k, i), msg, bt_len(k, i)), 0);
	}
	atomic_fetch_add(&sh->sent, 1);
	CHECK(wait_flag(&sh->release, 1, 30 * SEC), "never released");
	ret = 0;
out:
	for (int ch = 0; ch < BT_CHANS; ch++)
		ml_chan_close(c[ch]);
	return ret;
}

struct bt_rec {
	unsigned client;         /* which client: k, found by its id */
	int prio;
	uint32_t len;
	uint32_t sum;
};

static uint32_t bt_sum(const unsigned char *p, size_t len)
{
	uint32_t s = 2166136261u;

	for (size_t j = 0; j < len; j++)
		s = (s ^ p[j]) * 16777619u;
	return s;
}

/* Which client k sent as `id` (ids[k]); BT_CLIENTS: none of them. */
static unsigned bt_who(const unsigned *ids, unsigned id)
{
	unsigned k = 0;

	while (k < BT_CLIENTS && ids[k] != id)
		k++;
	return k;
}

/*
 * Daemon: the id of slot `slot`'s client (listed_id()), waiting up to 5 s;
 * 0 if none. Unlike client_id() it never waits on the channel, which
 * would end a view.
 */
static unsigned listed_id_wait(ml_chan *d, unsigned slot)
{
	int64_t end = now_ns() + 5 * SEC;

	do {
		unsigned id = listed_id(d, slot);

		if (id)
			return id;
		sleep_ms(1);
	} while (now_ns() < end);
	return 0;
}

int t_recv_many(void)
{
	static struct bt_rec one[BT_CLIENTS * BT_MSGS], many[BT_CLIENTS * BT_MSGS],
		view[BT_CLIENTS * BT_MSGS];
	static const unsigned batch_n[] = { 1, 3, 7, 64 };
	static const size_t batch_len[] = { 256, 1000, 4096, 65536 };
	struct bt_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	_Alignas(8) static unsigned char buf[65536];
	struct ml_msg msgs[64];
	ml_chan *d[BT_CHANS] = { NULL };
	pid_t pid[BT_CLIENTS] = { 0 };
	unsigned ids[BT_CHANS][BT_CLIENTS];
	size_t none = 0, nmany = 0, nview = 0;
	unsigned calls = 0, vcalls = 0;
	int ret = -1, n;

	for (int ch = 0; ch < BT_CHANS; ch++) {
		chan_name(sh->name[ch], sizeof(sh->name[ch]),
			  ch == 0 ? "bt-one" : ch == 1 ? "bt-many" : "bt-view");
		CHECK_RC(ml_daemon_create(&d[ch], sh->name[ch], &o), 0);
	}
	for (int k = 0; k < BT_CLIENTS; k++)
		pid[k] = spawn(bt_client, sh);
	CHECK(wait_flag(&sh->sent, BT_CLIENTS, 20 * SEC), "the clients did not send");
	/* Client k has slot k in each channel; its id there names it in the records. */
	for (int ch = 0; ch < BT_CHANS; ch++)
		for (unsigned k = 0; k < BT_CLIENTS; k++) {
			ids[ch][k] = client_id(d[ch], k);
			CHECK(ids[ch][k], "channel %d: no client in slot %u", ch, k);
		}

	/* Channel 0 one message at a time. */
	for (;;) {
		unsigned cl = 99;
		int p = -1;

		n = ml_chan_recv(d[0], &p, &cl, buf, sizeof(buf));
		if (n < 0)
			break;
		CHECK(none < BT_CLIENTS * BT_MSGS, "more than was sent");
		CHECK(bt_who(ids[0], cl) < BT_CLIENTS, "message %zu from id %u, no client's", none,
		      cl);
		one[none++] = (struct bt_rec){ bt_who(ids[0], cl), p, (uint32_t)n,
					       bt_sum(buf, (size_t)n) };
	}
	CHECK(n == -EAGAIN, "recv: %s", ml_strerror(n));
	CHECK(none == BT_CLIENTS * BT_MSGS, "%zu of %d messages", none, BT_CLIENTS * BT_MSGS);

	/* Channel 1 in batches of changing counts and buffer sizes. */
	for (;;) {
		unsigned want = batch_n[calls % 4];
		size_t len = batch_len[(calls / 4) % 4];
		uintptr_t lo = (uintptr_t)buf, hi = lo + len;

		memset(msgs, 0xa5, sizeof(msgs));
		n = ml_chan_recv_many(d[1], msgs, want, buf, len);
		calls++;
		if (n == -EAGAIN)
			break;
		CHECK(n >= 1 && (unsigned)n <= want, "recv_many(%u) = %d (%s)", want, n,
		      n < 0 ? ml_strerror(n) : "");
		for (int i = 0; i < n; i++) {
			uintptr_t at = (uintptr_t)msgs[i].data;

			CHECK(nmany < BT_CLIENTS * BT_MSGS, "more than was sent");
			CHECK(at % 8 == 0 && at >= lo && at + msgs[i].len <= hi,
			      "message %d of a batch of %d outside the buffer or unaligned", i, n);
			CHECK(i == 0 || at >= (uintptr_t)msgs[i - 1].data + msgs[i - 1].len,
			      "message %d overlaps the one before", i);
			CHECK(msgs[i].reserved == 0, "reserved = %u", msgs[i].reserved);
			CHECK(bt_who(ids[1], msgs[i].client) < BT_CLIENTS,
			      "batched message %zu from id %u, no client's", nmany, msgs[i].client);
			many[nmany] = (struct bt_rec){ bt_who(ids[1], msgs[i].client), msgs[i].prio,
						       msgs[i].len,
						       bt_sum(msgs[i].data, msgs[i].len) };
			nmany++;
		}
	}
	CHECK(nmany == none, "batches gave %zu messages, single reads %zu", nmany, none);
	for (size_t i = 0; i < none; i++)
		CHECK(!memcmp(&one[i], &many[i], sizeof(one[i])),
		      "message %zu differs: one by one (client %u prio %d len %u), "
		      "batched (client %u prio %d len %u)", i, one[i].client, one[i].prio,
		      one[i].len, many[i].client, many[i].prio, many[i].len);

	/*
	 * Channel 2 by views of changing counts; each view ended by
	 * ml_chan_recv_done() or, every other time, by the next call.
	 */
	for (;;) {
		unsigned want = batch_n[vcalls % 4];

		memset(msgs, 0xa5, sizeof(msgs));
		n = ml_chan_recv_view(d[2], msgs, want);
		vcalls++;
		if (n == -EAGAIN)
			break;
		CHECK(n >= 1 && (unsigned)n <= want, "recv_view(%u) = %d (%s)", want, n,
		      n < 0 ? ml_strerror(n) : "");
		for (int i = 0; i < n; i++) {
			CHECK(nview < BT_CLIENTS * BT_MSGS, "more than was sent");
			CHECK((uintptr_t)msgs[i].data % 8 == 0, "view %d unaligned", i);
			CHECK(msgs[i].reserved == 0, "reserved = %u", msgs[i].reserved);
			CHECK(bt_who(ids[2], msgs[i].client) < BT_CLIENTS,
			      "viewed message %zu from id %u, no client's", nview, msgs[i].client);
			view[nview++] = (struct bt_rec){ bt_who(ids[2], msgs[i].client),
							 msgs[i].prio, msgs[i].len,
							 bt_sum(msgs[i].data, msgs[i].len) };
		}
		if (vcalls % 2)
			CHECK_RC(ml_chan_recv_done(d[2]), 0);
	}
	CHECK(nview == none, "views gave %zu messages, single reads %zu", nview, none);
	for (size_t i = 0; i < none; i++)
		CHECK(!memcmp(&one[i], &view[i], sizeof(one[i])),
		      "message %zu differs: one by one (client %u prio %d len %u), "
		      "viewed (client %u prio %d len %u)", i, one[i].client, one[i].prio,
		      one[i].len, view[i].client, view[i].prio, view[i].len);
	/* Every client's lanes in order, bytes as sent (client k: record k). */
	{
		int pos[BT_CLIENTS][ML_PRIO_COUNT] = { { 0 } };
		unsigned char want[256];

		for (size_t i = 0; i < none; i++) {
			unsigned k = one[i].client;
			int p = one[i].prio, m;

			CHECK(k < BT_CLIENTS && p >= 0 && p < ML_PRIO_COUNT,
			      "message %zu: client %u prio %d", i, k, p);
			for (m = pos[k][p]; m < BT_MSGS && bt_prio((int)k, m) != p; m++)
				;
			CHECK(m < BT_MSGS, "client %u: too many at prio %d", k, p);
			bt_fill(want, (int)k, m);
			CHECK(one[i].len == bt_len((int)k, m) &&
			      one[i].sum == bt_sum(want, bt_len((int)k, m)),
			      "client %u prio %d: message %zu is not its message %d", k, p, i, m);
			pos[k][p] = m + 1;
		}
	}
	printf("  # %zu messages in %u calls of recv_many, %u of recv_view, same order as recv\n",
	       nmany, calls, vcalls);
	ret = 0;
out:
	atomic_store(&sh->release, 1);
	for (int k = 0; k < BT_CLIENTS; k++)
		if (pid[k] > 0 && !reap_ok(pid[k], "client", 20 * SEC))
			ret = -1;
	for (int ch = 0; ch < BT_CHANS; ch++)
		ml_chan_close(d[ch]);
	return ret;
}

/*
 * The contract's edges, daemon and client in one process: bad arguments,
 * nothing waiting, a first message too big for the buffer (it stays), a
 * client reading replies in a batch, and room: a lane filled to -EAGAIN
 * takes as many sends again as a batch just read from it.
 */
int t_recv_many_edges(void)
{
	_Alignas(8) static unsigned char buf[4096];
	unsigned char msg[FULL_MSG];
	struct ml_msg m[8];
	ml_chan *d = NULL, *c = NULL;
	int ret = -1, n, full = 0;

	CHECK_RC(open_pair("bt-edge", &d, &c), 0);
	CHECK_RC(ml_chan_recv_many(NULL, m, 8, buf, sizeof(buf)), -EINVAL);
	CHECK_RC(ml_chan_recv_many(d, NULL, 8, buf, sizeof(buf)), -EINVAL);
	CHECK_RC(ml_chan_recv_many(d, m, 0, buf, sizeof(buf)), -EINVAL);
	CHECK_RC(ml_chan_recv_many(d, m, 8, NULL, sizeof(buf)), -EINVAL);
	CHECK_RC(ml_chan_recv_many(d, m, 8, buf, sizeof(buf)), -EAGAIN);
	CHECK_RC(ml_chan_recv_many(c, m, 8, buf, sizeof(buf)), -EAGAIN);

	/* Too big for the buffer: -EMSGSIZE, and it is still there. */
	memset(msg, 7, sizeof(msg));
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, 40), 0);
	CHECK_RC(ml_chan_recv_many(d, m, 8, buf, 32), -EMSGSIZE);
	CHECK_RC(ml_chan_recv_many(d, m, 8, buf, 40), 1);
	CHECK(m[0].len == 40 && m[0].prio == ML_PRIO_HIGH && m[0].data == (void *)buf &&
	      !memcmp(buf, msg, 40), "the 40-byte message came back wrong");

	/* Replies, read by the client in one batch, in order. */
	for (int i = 0; i < 5; i++) {
		msg[0] = (unsigned char)i;
		CHECK_RC(ml_chan_reply(d, m[0].client, ML_PRIO_LOW, msg, (size_t)i + 1), 0);
	}
	CHECK_RC(ml_chan_recv_many(c, m, 8, buf, sizeof(buf)), 5);
	for (int i = 0; i < 5; i++)
		CHECK(m[i].len == (uint32_t)i + 1 && ((unsigned char *)m[i].data)[0] == i &&
		      m[i].prio == ML_PRIO_LOW, "reply %d came back wrong", i);

	/* Fill the High lane; a batch of 3 gives room for 3 more at once. */
	while (ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG) == 0)
		full++;
	CHECK(full > 3, "the lane took only %d messages", full);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG), -EAGAIN);
	CHECK_RC(ml_chan_recv_many(d, m, 3, buf, sizeof(buf)), 3);
	for (int i = 0; i < 3; i++)
		CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG), -EAGAIN);
	/* And a batch that runs out of buffer stops there, room back too. */
	CHECK_RC(ml_chan_recv_many(d, m, 8, buf, 2 * FULL_MSG + 8), 2);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG), 0);
	n = 0;
	for (int r; (r = ml_chan_recv_many(d, m, 8, buf, sizeof(buf))) > 0;)
		n += r;
	CHECK(n == full, "drained %d of %d", n, full);
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/*
 * ml_chan_send_many(), daemon and client in one process: bad arguments,
 * a batch read back in order, a batch that stops at a message too big and
 * at a full lane (the count says how far it got, the next call why), and
 * a daemon's batch of replies.
 */
int t_send_many(void)
{
	_Alignas(8) static unsigned char buf[4096];
	static unsigned char big[8192];
	unsigned char data[8][FULL_MSG];
	struct ml_msg m[64], in[64];
	ml_chan *d = NULL, *c = NULL;
	int ret = -1, n, sent, got;
	unsigned id;

	CHECK_RC(open_pair("bt-send", &d, &c), 0);
	id = client_id(d, 0);
	CHECK(id, "the client is not in slot 0");
	for (int i = 0; i < 8; i++) {
		memset(data[i], 'a' + i, FULL_MSG);
		m[i] = (struct ml_msg){ .data = data[i], .len = (uint32_t)(i * 7 + 1),
					.prio = i % 3 == 2 ? ML_PRIO_CRITICAL : ML_PRIO_LOW };
	}
	CHECK_RC(ml_chan_send_many(NULL, 0, m, 8), -EINVAL);
	CHECK_RC(ml_chan_send_many(c, 0, NULL, 8), -EINVAL);
	CHECK_RC(ml_chan_send_many(c, 0, m, 0), -EINVAL);
	CHECK_RC(ml_chan_send_many(d, 99, m, 8), -EINVAL);
	/* Bare slot numbers are no ids, the client's slot nor an empty one. */
	CHECK_RC(ml_chan_send_many(d, ML_CHAN_SLOT(id), m, 8), -EINVAL);
	CHECK_RC(ml_chan_send_many(d, 1, m, 8), -EINVAL);

	/* Eight at two priorities: each lane in order, bytes as sent. */
	CHECK_RC(ml_chan_send_many(c, 0, m, 8), 8);
	for (int want = 0, seen = 0; seen < 8; seen++) {
		int p = -1;

		/* Critical first (2, 5), then Low (0, 1, 3, 4, 6, 7). */
		static const int order[8] = { 2, 5, 0, 1, 3, 4, 6, 7 };

		want = order[seen];
		n = ml_chan_recv(d, &p, NULL, buf, sizeof(buf));
		CHECK(n == want * 7 + 1 && p == m[want].prio && !memcmp(buf, data[want], (size_t)n),
		      "message %d: len %d prio %d, want message %d", seen, n, p, want);
	}
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), -EAGAIN);

	/* A message too big stops the batch; the next call says why. */
	m[3] = (struct ml_msg){ .data = big, .len = sizeof(big), .prio = ML_PRIO_HIGH };
	CHECK_RC(ml_chan_send_many(c, 0, m, 8), 3);
	CHECK_RC(ml_chan_send_many(c, 0, m + 3, 5), -EMSGSIZE);
	for (int i = 0; i < 3; i++)
		CHECK(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)) >= 0, "message %d lost", i);

	/* A full lane: as many as fit, then -EAGAIN; all of them arrive. */
	for (int i = 0; i < 64; i++)
		m[i] = (struct ml_msg){ .data = data[i % 8], .len = FULL_MSG, .prio = ML_PRIO_HIGH };
	sent = ml_chan_send_many(c, 0, m, 64);
	CHECK(sent > 1 && sent < 64, "a %u-byte ring took %d of 64", FULL_RING, sent);
	CHECK_RC(ml_chan_send_many(c, 0, m + sent, 64 - (unsigned)sent), -EAGAIN);
	got = 0;
	while ((n = ml_chan_recv_many(d, in, 64, buf, sizeof(buf))) > 0) {
		for (int i = 0; i < n; i++)
			CHECK(in[i].len == FULL_MSG && in[i].client == id &&
			      !memcmp(in[i].data, data[(got + i) % 8], FULL_MSG),
			      "full-lane message %d differs (from id %u, the client is %u)",
			      got + i, in[i].client, id);
		got += n;
	}
	CHECK(got == sent, "sent %d, received %d", sent, got);

	/*
	 * The daemon's replies, as a batch, to the client's batch read (to
	 * the id its messages came with: the last, empty, call cleared in[]).
	 */
	CHECK_RC(ml_chan_send_many(d, id, m, 5), 5);
	CHECK_RC(ml_chan_recv_many(c, in, 64, buf, sizeof(buf)), 5);
	/* The client gone, its id takes nothing more. */
	ml_chan_close(c);
	c = NULL;
	for (int64_t end = now_ns() + 5 * SEC; ml_chan_connected(d) && now_ns() < end;)
		sleep_ms(1);
	CHECK(!ml_chan_connected(d), "the client's leaving went unseen");
	CHECK_RC(ml_chan_send_many(d, id, m, 5), -EPIPE);
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/*
 * ml_chan_recv_view()'s contract, daemon and client in one process: bad
 * arguments, nothing waiting; the room of viewed messages stays taken
 * until the view ends, by ml_chan_recv_done(), the next recv or a wait;
 * a reply made from a view's bytes; a client viewing its replies.
 */
int t_recv_view_edges(void)
{
	_Alignas(8) static unsigned char buf[4096];
	unsigned char msg[FULL_MSG];
	struct ml_msg m[8];
	ml_chan *d = NULL, *c = NULL;
	int ret = -1, n, full = 0, sent, k, more;
	unsigned id;

	CHECK_RC(open_pair("bt-view", &d, &c), 0);
	id = client_id(d, 0);
	CHECK(id, "the client is not in slot 0");
	CHECK_RC(ml_chan_recv_view(NULL, m, 8), -EINVAL);
	CHECK_RC(ml_chan_recv_view(d, NULL, 8), -EINVAL);
	CHECK_RC(ml_chan_recv_view(d, m, 0), -EINVAL);
	CHECK_RC(ml_chan_recv_done(NULL), -EINVAL);
	CHECK_RC(ml_chan_recv_done(d), 0); /* no view: nothing to do */
	CHECK_RC(ml_chan_recv_view(d, m, 8), -EAGAIN);
	CHECK_RC(ml_chan_recv_view(c, m, 8), -EAGAIN);

	/* Fill the High lane with numbered messages. */
	for (;; full++) {
		memset(msg, 'A' + full % 26, sizeof(msg));
		if (ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG))
			break;
	}
	CHECK(full > 6, "the lane took only %d messages", full);

	/* A view of 3: the bytes in order; no room until it is done. */
	CHECK_RC(ml_chan_recv_view(d, m, 3), 3);
	for (int i = 0; i < 3; i++) {
		memset(msg, 'A' + i % 26, sizeof(msg));
		CHECK(m[i].len == FULL_MSG && m[i].prio == ML_PRIO_HIGH && m[i].client == id &&
		      !memcmp(m[i].data, msg, FULL_MSG), "viewed message %d came back wrong", i);
	}
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG), -EAGAIN);
	/* A reply made from a view's bytes, while it is held. */
	CHECK_RC(ml_chan_reply(d, m[1].client, ML_PRIO_LOW, m[1].data, m[1].len), 0);
	CHECK_RC(ml_chan_recv_done(d), 0);
	CHECK_RC(ml_chan_recv_done(d), 0); /* twice: no effect */
	for (int i = 0; i < 3; i++)
		CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG), -EAGAIN);
	sent = full + 3;

	/*
	 * The next recv ends a view: it reads on after it, the view's room
	 * back. The recv's own room may come later (a lazy tail, stored an
	 * eighth of a lane at a time while the reader reads on).
	 */
	CHECK_RC(ml_chan_recv_view(d, m, 2), 2);
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), FULL_MSG);
	memset(msg, 'A' + 5 % 26, sizeof(msg));
	CHECK(!memcmp(buf, msg, FULL_MSG), "recv after a view did not read on after it");
	for (k = 0; ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG) == 0; k++)
		;
	CHECK(k == 2 || k == 3, "a recv after a view of 2 gave room for %d messages", k);
	sent += k;

	/* So does a wait (here a poll), and all the room read is back. */
	CHECK_RC(ml_chan_recv_view(d, m, 1), 1);
	CHECK_RC(ml_chan_wait(d, 0), 0);
	for (more = 0; ml_chan_send(c, ML_PRIO_HIGH, msg, FULL_MSG) == 0; more++)
		;
	CHECK(more == 4 - k, "after a wait, room for %d messages, not %d", more, 4 - k);
	sent += more;

	/* Everything else, by views of 8; 7 were read above. */
	n = 0;
	for (int r; (r = ml_chan_recv_view(d, m, 8)) > 0;)
		n += r;
	CHECK(n == sent - 7, "drained %d of %d", n, sent - 7);

	/* The client views its reply: the bytes of message 1 ('B'). */
	memset(msg, 'B', sizeof(msg));
	CHECK_RC(ml_chan_recv_view(c, m, 8), 1);
	CHECK(m[0].len == FULL_MSG && m[0].prio == ML_PRIO_LOW && !memcmp(m[0].data, msg, FULL_MSG),
	      "the reply made from a view came back wrong");
	CHECK_RC(ml_chan_recv_view(c, m, 8), -EAGAIN);
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/*
 * A client leaves while the daemon views its messages: its slot is not
 * reclaimed (and so not given to a new client who would write over the
 * viewed bytes) until the view ends. Two slots; a scan is forced by a
 * reply to a client that connected since the daemon last looked.
 */
int t_recv_view_client_leaves(void)
{
	struct ml_chan_opts o = opts_default();
	unsigned char msg[FULL_MSG], zz[FULL_MSG];
	struct ml_msg m[8];
	ml_chan *d = NULL, *a = NULL, *b = NULL, *c = NULL;
	char name[80];
	int ret = -1, n;
	unsigned ida, idb, idc;

	o.max_clients = 2;
	chan_name(name, sizeof(name), "bt-leave");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(connect_retry(&a, name, 5 * SEC, -ENOENT), 0);
	ida = client_id(d, 0);
	CHECK(ida, "A is not in slot 0");
	memset(msg, 'a', sizeof(msg));
	memset(zz, 'z', sizeof(zz));
	for (int i = 0; i < 4; i++)
		CHECK_RC(ml_chan_send(a, ML_PRIO_HIGH, msg, FULL_MSG), 0);
	CHECK_RC(ml_chan_recv_view(d, m, 8), 4);
	ml_chan_close(a);
	a = NULL;
	CHECK_RC(connect_retry(&b, name, 5 * SEC, -ENOENT), 0);
	/*
	 * B is news to the daemon: asking for its id makes it scan the slots
	 * (without a wait, which would end the view). A's is held: B is in 1.
	 */
	idb = listed_id_wait(d, 1);
	CHECK(idb && idb != ida, "B is not in slot 1 (id %u, A's %u)", idb, ida);
	CHECK_RC(ml_chan_reply(d, idb, ML_PRIO_HIGH, "hi", 2), 0);
	/* A's slot is not free yet: C is refused, or, if let in, must not
	 * write over the view. */
	n = ml_client_connect(&c, name, &o);
	CHECK(n == 0 || n == -ECONNREFUSED, "connect while the view is held: %s",
	      ml_strerror(n));
	if (n == 0)
		for (int i = 0; i < 4; i++)
			ml_chan_send(c, ML_PRIO_HIGH, zz, FULL_MSG);
	for (int i = 0; i < 4; i++)
		CHECK(m[i].len == FULL_MSG && m[i].client == ida &&
		      !memcmp(m[i].data, msg, FULL_MSG),
		      "viewed message %d changed under the view", i);
	CHECK(n == -ECONNREFUSED, "a new client took the slot of the viewed messages");
	/* Once the view is done, the slot goes back and C gets it. */
	CHECK_RC(ml_chan_recv_done(d), 0);
	CHECK_RC(ml_chan_recv_view(d, m, 8), -EAGAIN);
	CHECK_RC(ml_client_connect(&c, name, &o), 0);
	/* A's slot, not A's id. */
	idc = client_id(d, 0);
	CHECK(idc && idc != ida, "C in slot 0 has id %u, A had %u", idc, ida);
	ret = 0;
out:
	ml_chan_close(a);
	ml_chan_close(b);
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

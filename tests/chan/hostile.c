// SPDX-License-Identifier: MIT
/*
 * Channel tests: hostile or broken clients: one dead in the middle of a
 * send, one that corrupts its lanes, one that rewrites its rings' config.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"
#include "chan_layout.h" /* for the tests that corrupt the layout */
#include "ring_layout.h"

/* Slot `slot`'s request ring, as a client writing its own area reaches it; NULL: none. */
static struct ml__ring_shm *req_ring(const char *name, unsigned slot)
{
	size_t len = 0;
	uint8_t *a = area_map(name, slot, &len);

	return a && len > ML__PEER_SIZE ? (struct ml__ring_shm *)(a + ML__PEER_SIZE) : NULL;
}

/* The last of the first n slots whose client says it is connected; n if none. */
static unsigned connected_slot(const char *name, unsigned n)
{
	unsigned found = n;

	for (unsigned i = 0; i < n; i++) {
		size_t len = 0;
		struct ml__peer *p = (struct ml__peer *)area_map(name, i, &len);

		if (p && atomic_load(&p->state) == ML__SLOT_CONNECTED)
			found = i;
	}
	return found;
}

/*
 * Receive until `want` (an errno) comes, collecting messages into log and
 * their senders' ids into from; *who: the id `want` came with.
 */
static int drain_until(ml_chan *d, int want, unsigned *who, char log[][16], unsigned *from,
		       int *nlog, int max)
{
	int64_t end = now_ns() + 3 * SEC;

	while (now_ns() < end) {
		char b[16];
		int prio, n = ml_chan_recv(d, &prio, who, b, sizeof(b) - 1);

		if (n == want)
			return 0;
		if (n >= 0 && *nlog < max) {
			b[n] = '\0';
			from[*nlog] = *who;
			snprintf(log[(*nlog)++], 16, "%s", b);
			continue;
		}
		if (n >= 0)
			return -E2BIG;
		if (n != -EAGAIN)
			return n;
		ml_chan_wait(d, 50 * MS);
	}
	return -ETIMEDOUT;
}

struct torn {
	char name[80];
	struct ml_chan_opts o;
};

/* Connect, send three, then die half-way through writing a fourth. */
static int torn_client(void *arg)
{
	struct torn *sh = arg;
	struct ml__ring_shm *rs;
	ml_chan *c = NULL;
	uint64_t h;

	if (ml_client_connect(&c, sh->name, &sh->o))
		return 1;
	for (int i = 0; i < 3; i++) {
		char m[8];

		snprintf(m, sizeof(m), "m%d", i);
		if (ml_chan_send(c, ML_PRIO_HIGH, m, strlen(m)))
			return 2;
	}
	rs = req_ring(sh->name, 0);
	if (!rs)
		return 3;
	/* What ml_ring_write does up to its memcpy, then death. */
	h = atomic_load(&rs->head[ML_PRIO_HIGH]);
	atomic_store(&rs->claim[ML_PRIO_HIGH], h + 48);
	memset((uint8_t *)rs + ML__RING_HDR_SIZE + rs->lane_off[ML_PRIO_HIGH] +
		       h % rs->lane_cap[ML_PRIO_HIGH],
	       0xee, 24);
	kill(getpid(), SIGKILL);
	return 4;
}

/*
 * A client killed in the middle of a send: room claimed, half the bytes
 * written. The daemon delivers what it sent before, never the torn one,
 * reports -EOWNERDEAD once for its slot, and a new client takes the slot.
 */
int t_dead_mid_send(void)
{
	struct torn *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	char log[8][16], name[80];
	int nlog = 0, ret = -1, status;
	unsigned who = 99, from[8], dead;
	ml_chan *d = NULL, *c = NULL;
	pid_t pid;

	if (!region_mappable()) {
		skipf("needs a region to map");
		return 1;
	}
	o.max_clients = 1;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "torn");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	snprintf(sh->name, sizeof(sh->name), "%s", name);
	sh->o = o;
	pid = spawn(torn_client, sh);
	CHECK(pid > 0, "fork");
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status),
	      "the client did not die as planned: %#x", status);
	CHECK_RC(drain_until(d, -EOWNERDEAD, &who, log, from, &nlog, 8), 0);
	CHECK(nlog == 3 && !strcmp(log[0], "m0") && !strcmp(log[1], "m1") &&
	      !strcmp(log[2], "m2"), "delivered %d messages (first %s), want m0 m1 m2", nlog,
	      nlog ? log[0] : "-");
	/* Reported under the id its messages came with, slot 0's. */
	CHECK(ML_CHAN_SLOT(who) == 0 && who == from[0] && from[1] == who && from[2] == who,
	      "-EOWNERDEAD for client %u, its messages from %u %u %u", who, from[0], from[1],
	      from[2]);
	dead = who;
	CHECK_RC(ml_chan_recv(d, NULL, &who, log[0], 16), -EAGAIN);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.abandoned == 1 && st.clients_died == 1 && st.last_error == -EOWNERDEAD &&
	      st.last_client == dead && st.poisoned == 0,
	      "stats: abandoned %llu died %llu last %d/%u poisoned %llu",
	      (unsigned long long)st.abandoned, (unsigned long long)st.clients_died,
	      st.last_error, st.last_client, (unsigned long long)st.poisoned);
	/* The slot, laid out anew, serves the next client. */
	CHECK_RC(connect_retry(&c, name, 20 * SEC, -ECONNREFUSED), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "again", 5), 0);
	CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
	CHECK_RC(ml_chan_recv(d, NULL, &who, log[0], 15), 5);
	CHECK(!memcmp(log[0], "again", 5), "after: wrong message");
	/* The dead one's slot, under an id of its own. */
	CHECK(ML_CHAN_SLOT(who) == ML_CHAN_SLOT(dead) && who != dead,
	      "the next client came as %u, the dead one was %u", who, dead);
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/*
 * A client that writes garbage over one of its lanes' indices: the daemon
 * still delivers its other lanes and the other client, reports -EBADMSG
 * once for it, and keeps serving.
 */
int t_corrupt_lane(void)
{
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	ml_chan *d = NULL, *a = NULL, *b = NULL;
	char log[8][16], name[80];
	int nlog = 0, ret = -1;
	unsigned who = 99, slot_a = 99, from[8];

	if (!region_mappable()) {
		skipf("needs a region to map");
		return 1;
	}
	o.max_clients = 2;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "bad");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&a, name, &o), 0);
	CHECK_RC(ml_chan_send(a, ML_PRIO_CRITICAL, "a0", 2), 0);
	CHECK_RC(ml_chan_send(a, ML_PRIO_CRITICAL, "a1", 2), 0);
	slot_a = connected_slot(name, 2);
	CHECK(slot_a < 2, "no connected slot");
	/* A record in the Low lane whose header then claims a megabyte. */
	CHECK_RC(ml_chan_send(a, ML_PRIO_LOW, "a2", 2), 0);
	{
		struct ml__ring_shm *rs = req_ring(name, slot_a);
		uint32_t huge = 1u << 20;

		CHECK(rs, "no area for slot %u", slot_a);
		memcpy((uint8_t *)rs + ML__RING_HDR_SIZE + rs->lane_off[ML_PRIO_LOW], &huge, 4);
	}
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	CHECK_RC(ml_chan_send(b, ML_PRIO_HIGH, "b0", 2), 0);
	CHECK_RC(drain_until(d, -EBADMSG, &who, log, from, &nlog, 8), 0);
	CHECK(nlog == 3 && !strcmp(log[0], "a0") && !strcmp(log[1], "a1") &&
	      !strcmp(log[2], "b0"), "delivered %d (first %s), want a0 a1 b0", nlog,
	      nlog ? log[0] : "-");
	/* For A: its slot, the id a0 and a1 came with; b0 another slot's. */
	CHECK(ML_CHAN_SLOT(who) == slot_a && who == from[0] && who == from[1],
	      "-EBADMSG for client %u, want slot %u's, a0 and a1 came from %u %u", who, slot_a,
	      from[0], from[1]);
	CHECK(ML_CHAN_SLOT(from[2]) != slot_a, "b0 from %u, in A's slot %u", from[2], slot_a);
	CHECK_RC(ml_chan_recv(d, NULL, &who, log[0], 16), -EAGAIN);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.poisoned == 1 && st.last_error == -EBADMSG && st.last_client == from[0] &&
	      st.abandoned == 0, "stats: poisoned %llu last %d/%u",
	      (unsigned long long)st.poisoned, st.last_error, st.last_client);
	/* The other client is still served. */
	CHECK_RC(ml_chan_send(b, ML_PRIO_LOW, "b1", 2), 0);
	CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
	CHECK_RC(ml_chan_recv(d, NULL, &who, log[0], 15), 2);
	CHECK(!memcmp(log[0], "b1", 2) && who == from[2], "after: wrong message");
	ret = 0;
out:
	ml_chan_close(a);
	ml_chan_close(b);
	ml_chan_close(d);
	return ret;
}

/*
 * A client that rewrites its rings' config line (a larger max_msg) before
 * the daemon looks: the daemon refuses those rings, says -EBADMSG once for
 * that client, and serves the others.
 */
int t_rewritten_ring_config(void)
{
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	ml_chan *d = NULL, *a = NULL, *b = NULL;
	char name[80], buf[16];
	unsigned who = 99, slot_a = 99, ida;
	int ret = -1, n;

	if (!region_mappable()) {
		skipf("needs a region to map");
		return 1;
	}
	o.max_clients = 2;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "cfg");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&a, name, &o), 0);
	slot_a = connected_slot(name, 2);
	CHECK(slot_a < 2 && req_ring(name, slot_a), "no connected slot");
	req_ring(name, slot_a)->max_msg *= 2;
	CHECK_RC(ml_chan_send(a, ML_PRIO_HIGH, "a0", 2), 0);
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	CHECK_RC(ml_chan_send(b, ML_PRIO_HIGH, "b0", 2), 0);
	CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
	n = ml_chan_recv(d, NULL, &who, buf, sizeof(buf));
	/* An id (never a bare slot number) of A's slot. */
	CHECK(n == -EBADMSG && ML_CHAN_SLOT(who) == slot_a && who != slot_a,
	      "first recv %d (%s) client %u, want -EBADMSG for slot %u's", n, ml_strerror(n),
	      who, slot_a);
	ida = who;
	CHECK_RC(ml_chan_recv(d, NULL, &who, buf, sizeof(buf)), 2);
	CHECK(!memcmp(buf, "b0", 2) && ML_CHAN_SLOT(who) != slot_a, "then %.2s from %u", buf, who);
	CHECK_RC(ml_chan_recv(d, NULL, &who, buf, sizeof(buf)), -EAGAIN);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.poisoned == 1 && st.last_error == -EBADMSG && st.last_client == ida,
	      "stats: poisoned %llu last %u, A is %u", (unsigned long long)st.poisoned,
	      st.last_client, ida);
	ret = 0;
out:
	ml_chan_close(a);
	ml_chan_close(b);
	ml_chan_close(d);
	return ret;
}

/*
 * A client that says it is connected and then that it is setting up again
 * (what no client does: it broke its header): the daemon says -EBADMSG
 * once for it, cuts it off (its later messages are not read, its slot is
 * freed) and serves the other client; and the broken header does not make
 * it rescan on every call.
 */
int t_client_goes_back(void)
{
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	ml_chan *d = NULL, *a = NULL, *b = NULL;
	struct ml__peer *pa = NULL;
	char name[80], buf[16];
	unsigned who = 99, slot_a = 99, ida;
	size_t len = 0;
	int ret = -1, n, nb = 0;

	if (!region_mappable()) {
		skipf("needs a region to map");
		return 1;
	}
	o.max_clients = 2;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "back");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&a, name, &o), 0);
	CHECK_RC(ml_chan_send(a, ML_PRIO_HIGH, "a0", 2), 0);
	CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
	CHECK_RC(ml_chan_recv(d, NULL, &who, buf, sizeof(buf)), 2);
	ida = who;
	slot_a = ML_CHAN_SLOT(ida);
	pa = (struct ml__peer *)area_map(name, slot_a, &len);
	CHECK(pa && atomic_load(&pa->state) == ML__SLOT_CONNECTED, "no header for slot %u", slot_a);
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	atomic_store(&pa->state, 7); /* neither connected nor leaving */
	CHECK_RC(ml_chan_send(a, ML_PRIO_HIGH, "a1", 2), 0);
	/* The next look (a liveness scan, at most 50 ms away) finds it. */
	for (int64_t end = now_ns() + 5 * SEC; now_ns() < end;) {
		CHECK_RC(ml_chan_send(b, ML_PRIO_HIGH, "b", 1), 0);
		ml_chan_wait(d, 20 * MS);
		while ((n = ml_chan_recv(d, NULL, &who, buf, sizeof(buf))) != -EAGAIN) {
			CHECK(n != 2 || memcmp(buf, "a1", 2), "a cut-off client's message was read");
			if (n == -EBADMSG) {
				CHECK(who == ida, "-EBADMSG for client %u, want %u", who, ida);
				goto reported;
			}
			CHECK(n == 1 && ML_CHAN_SLOT(who) != slot_a, "recv %d from %u", n, who);
			nb++;
		}
	}
	CHECK(0, "no -EBADMSG for the client that went back");
reported:
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.poisoned == 1 && st.last_client == ida, "stats: poisoned %llu last %u",
	      (unsigned long long)st.poisoned, st.last_client);
	/* Cut off: nothing of it is read any more; the other client is served. */
	CHECK_RC(ml_chan_send(a, ML_PRIO_HIGH, "a2", 2), 0);
	CHECK_RC(ml_chan_send(b, ML_PRIO_LOW, "bz", 2), 0);
	for (int64_t end = now_ns() + 2 * SEC; now_ns() < end;) {
		n = ml_chan_recv(d, NULL, &who, buf, sizeof(buf));
		if (n == -EAGAIN) {
			ml_chan_wait(d, 20 * MS);
			continue;
		}
		CHECK(n > 0 && ML_CHAN_SLOT(who) != slot_a, "after the cut: recv %d from %u", n,
		      who);
		if (n == 2 && !memcmp(buf, "bz", 2))
			break;
	}
	CHECK(n == 2 && !memcmp(buf, "bz", 2), "b's last message not delivered");
	CHECK_RC(ml_chan_recv(d, NULL, &who, buf, sizeof(buf)), -EAGAIN);
	printf("  # cut off after %d messages of the other client\n", nb);
	ret = 0;
out:
	ml_chan_close(a);
	ml_chan_close(b);
	ml_chan_close(d);
	return ret;
}

// SPDX-License-Identifier: MIT
/*
 * Channel tests: a round trip at every priority and size, both ways.
 */
#include <errno.h>
#include <string.h>

#include "proctest.h"
#include "chan_test.h"

struct rt_shared {
	_Atomic int connected;
	_Atomic int done;
	char name[80];
};

/* Client k sends at each prio, sizes 0, 1, mid and max, the bytes keyed. */
static void rt_payload(char *buf, size_t len, int k, int prio, size_t i)
{
	for (size_t j = 0; j < len; j++)
		buf[j] = (char)(k * 131 + prio * 31 + (int)i * 7 + (int)j);
}

/* The empty one last: the first of each lane tells the daemon who sent it. */
static const size_t rt_sizes[] = { 1, 100, 4096, 0 };
#define RT_SIZES (sizeof(rt_sizes) / sizeof(rt_sizes[0]))

static int rt_client(void *arg)
{
	struct rt_shared *sh = arg;
	static char msg[4096], buf[8192];
	ml_chan *c = NULL;
	int k = -1, err, ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	k = atomic_fetch_add(&sh->connected, 1);
	CHECK(!strcmp(ml_chan_backend(c), active_backend), "client backend %s", ml_chan_backend(c));
	CHECK(ml_chan_connected(c) == 1, "client: not connected");
	/* Wait until both clients are connected, so the ids differ. */
	CHECK(wait_flag(&sh->connected, 2, 10 * SEC), "other client never connected");
	for (int prio = ML_PRIO_CRITICAL; prio <= ML_PRIO_LOW; prio++) {
		for (size_t i = 0; i < RT_SIZES; i++) {
			/* First byte of a non-empty message: who sent it. */
			rt_payload(msg, rt_sizes[i], k, prio, i);
			if (rt_sizes[i])
				msg[0] = (char)k;
			CHECK_RC(ml_chan_send(c, prio, msg, rt_sizes[i]), 0);
		}
	}
	/* Too big: refused, nothing sent. */
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, msg, 4097), -EMSGSIZE);
	CHECK_RC(ml_chan_send(c, 3, msg, 1), -EINVAL);
	CHECK_RC(ml_chan_send(c, -1, msg, 1), -EINVAL);
	/* The daemon answers each at its priority: expect them all, per lane in order. */
	{
		size_t got[ML_PRIO_COUNT] = { 0 }, total = 0;
		int64_t end = now_ns() + 10 * SEC;

		while (total < ML_PRIO_COUNT * RT_SIZES) {
			unsigned cl = 99;
			int p = -1, n = ml_chan_recv(c, &p, &cl, buf, sizeof(buf));

			if (n == -EAGAIN) {
				CHECK(now_ns() < end, "only %zu replies arrived", total);
				err = ml_chan_wait(c, 100 * MS);
				CHECK(err == 0 || err == -ETIMEDOUT, "wait: %s", ml_strerror(err));
				continue;
			}
			CHECK(n >= 0, "recv: %s", ml_strerror(n));
			CHECK(p >= 0 && p < ML_PRIO_COUNT, "reply prio %d", p);
			CHECK(got[p] < RT_SIZES, "too many replies at prio %d", p);
			/* Reply = request with every byte + 1. */
			rt_payload(msg, rt_sizes[got[p]], k, p, got[p]);
			if (rt_sizes[got[p]])
				msg[0] = (char)k;
			CHECK((size_t)n == rt_sizes[got[p]], "prio %d reply %zu: len %d, want %zu", p,
			      got[p], n, rt_sizes[got[p]]);
			for (int j = 0; j < n; j++)
				CHECK(buf[j] == (char)(msg[j] + 1), "prio %d reply %zu byte %d differs",
				      p, got[p], j);
			got[p]++;
			total++;
		}
	}
	CHECK_RC(ml_chan_recv(c, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

int t_roundtrip_prios(void)
{
	struct rt_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	static char buf[8192];
	size_t got[2][ML_PRIO_COUNT] = { { 0 } };
	unsigned id_of[2] = { 0, 0 };   /* 0: not seen yet (ids are never 0) */
	pid_t pid[2] = { 0, 0 };
	ml_chan *d = NULL;
	int ret = -1, n, prio;
	unsigned cl;
	size_t total = 0;

	chan_name(sh->name, sizeof(sh->name), "rt");
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	CHECK(!strcmp(ml_chan_backend(d), active_backend), "backend %s", ml_chan_backend(d));
	CHECK(ml_chan_connected(d) == 0, "daemon connected with no client");
	for (int k = 0; k < 2; k++)
		pid[k] = spawn(rt_client, sh);
	while (total < 2 * ML_PRIO_COUNT * RT_SIZES) {
		int err = ml_chan_wait(d, 10 * SEC);
		int k;

		CHECK(err == 0, "daemon wait: %s after %zu messages", ml_strerror(err), total);
		n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf));
		if (n == -EAGAIN)
			continue;
		CHECK(n >= 0, "daemon recv: %s", ml_strerror(n));
		/* An id, not a bare slot number (generation 1 and up), its slot in range. */
		CHECK(cl >= ML_CHAN_MAX_CLIENTS && ML_CHAN_SLOT(cl) < 8,
		      "client id %u out of range", cl);
		CHECK(prio >= 0 && prio < ML_PRIO_COUNT, "prio %d", prio);
		/* Which client: byte 0 of a non-empty message; an empty one comes
		 * after non-empty ones of its lane, so its id is known by then. */
		if (n > 0) {
			k = buf[0];
			CHECK(k == 0 || k == 1, "bad sender byte %d", k);
		} else {
			k = id_of[0] == cl ? 0 : id_of[1] == cl ? 1 : -1;
			CHECK(k >= 0, "empty message from unknown id %u", cl);
		}
		if (!id_of[k])
			id_of[k] = cl;
		CHECK(id_of[k] == cl, "client %d came as id %u, earlier %u", k, cl, id_of[k]);
		CHECK(got[k][prio] < RT_SIZES, "too many at prio %d", prio);
		{
			static char want[4096];
			size_t i = got[k][prio], len = rt_sizes[i];

			rt_payload(want, len, k, prio, i);
			if (len)
				want[0] = (char)k;
			CHECK((size_t)n == len && !memcmp(buf, want, len),
			      "client %d prio %d message %zu: len %d (want %zu) or bytes differ", k,
			      prio, i, n, len);
		}
		got[k][prio]++;
		total++;
		for (int j = 0; j < n; j++)
			buf[j]++;
		CHECK_RC(ml_chan_send_wait(d, cl, prio, buf, (size_t)n, 5 * SEC), 0);
	}
	CHECK(id_of[0] != id_of[1], "both clients have id %u", id_of[0]);
	CHECK(ML_CHAN_SLOT(id_of[0]) != ML_CHAN_SLOT(id_of[1]), "both clients in slot %u",
	      ML_CHAN_SLOT(id_of[0]));
	CHECK_RC(ml_chan_reply(d, 8, 0, buf, 1), -EINVAL);
	/* A bare slot number names no client, even a connected one's slot. */
	CHECK_RC(ml_chan_reply(d, ML_CHAN_SLOT(id_of[0]), 0, buf, 1), -EINVAL);
	CHECK_RC(ml_chan_send(d, 0, buf, 1), -EINVAL);
	for (int k = 0; k < 2; k++) {
		CHECK(reap_ok(pid[k], "client", 20 * SEC), "client");
		pid[k] = 0;
	}
	/* Both left: their ids are no longer valid for replies. */
	CHECK_RC(ml_chan_reply(d, id_of[0], 0, buf, 1), -EPIPE);
	CHECK(ml_chan_connected(d) == 0, "daemon still connected after the clients left");
	ret = 0;
out:
	for (int k = 0; k < 2; k++)
		if (pid[k] > 0)
			reap(pid[k], 5 * SEC);
	ml_chan_close(d);
	return ret;
}

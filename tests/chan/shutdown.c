// SPDX-License-Identifier: MIT
/*
 * Channel tests: shutdown (and close) of the daemon seen by every client.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "proctest.h"
#include "chan_test.h"

#define SD_CLIENTS 3

struct sd_shared {
	_Atomic int connected;
	_Atomic int going; /* the daemon is about to shut down */
	_Atomic int down;  /* the daemon has shut down */
	_Atomic long long going_at;
	int use_close;
	long long seen_ns[SD_CLIENTS];
	char name[80];
};

/*
 * Client k: k = 0 waits in ml_chan_wait all along (it must wake with
 * -EPIPE); the others look only after the daemon is down. Each must first
 * get the three replies sent before the shutdown, most urgent first.
 */
static int sd_client(void *arg)
{
	struct sd_shared *sh = (struct sd_shared *)((uintptr_t)arg & ~(uintptr_t)7);
	int k = (int)((uintptr_t)arg & 7), got = 0, n, p, err, ret = 1;
	char buf[64];
	ml_chan *c = NULL;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, "h", 1), 0);
	atomic_fetch_add(&sh->connected, 1);
	if (k == 0) {
		for (;;) {
			err = ml_chan_wait(c, 20 * SEC);
			if (err == -EPIPE)
				break;
			CHECK_RC(err, 0);
			while ((n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf))) >= 0) {
				/* Sent c, b, a: this one may see them as they come. */
				CHECK(n == 1 && buf[0] == 'a' + p, "reply %d: '%c' len %d prio %d",
				      got, buf[0], n, p);
				got++;
			}
			if (n == -EPIPE)
				break;
			CHECK_RC(n, -EAGAIN);
		}
		sh->seen_ns[k] = now_ns() - atomic_load(&sh->going_at);
		CHECK(atomic_load(&sh->going), "-EPIPE before the daemon went down");
	} else {
		CHECK(wait_flag(&sh->down, 1, 20 * SEC), "daemon never went down");
	}
	/* Whatever is left, most urgent first, then -EPIPE for good. */
	while ((n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf))) >= 0) {
		CHECK(n == 1 && buf[0] == 'a' + p, "reply %d: '%c' len %d prio %d", got, buf[0], n,
		      p);
		CHECK(k == 0 || p == got, "reply %d at prio %d: not most urgent first", got, p);
		got++;
	}
	CHECK(got == 3, "client %d got %d of 3 replies sent before the shutdown", k, got);
	CHECK_RC(n, -EPIPE);
	CHECK_RC(ml_chan_recv(c, &p, NULL, buf, sizeof(buf)), -EPIPE);
	CHECK_RC(ml_chan_wait(c, 0), -EPIPE);
	CHECK_RC(ml_chan_wait(c, 1 * SEC), -EPIPE);
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, "x", 1), -EPIPE);
	CHECK_RC(ml_chan_send_wait(c, 0, ML_PRIO_LOW, "x", 1, 100 * MS), -EPIPE);
	CHECK(ml_chan_connected(c) == 0, "client still connected");
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int shutdown_test(bool use_close)
{
	struct sd_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	pid_t pid[SD_CLIENTS] = { 0 };
	char buf[8];
	unsigned ids[SD_CLIENTS];
	ml_chan *d = NULL;
	int ret = -1, n;

	chan_name(sh->name, sizeof(sh->name), use_close ? "close" : "shut");
	sh->use_close = use_close;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	for (int k = 0; k < SD_CLIENTS; k++)
		pid[k] = spawn(sd_client, (void *)((uintptr_t)sh | (uintptr_t)k));
	CHECK(wait_flag(&sh->connected, SD_CLIENTS, 10 * SEC), "clients never connected");
	/* The daemon learns its clients' ids from one message each. */
	for (int k = 0; k < SD_CLIENTS; k++) {
		int prio;

		CHECK_RC(ml_chan_wait(d, 10 * SEC), 0);
		n = ml_chan_recv(d, &prio, &ids[k], buf, sizeof(buf));
		CHECK(n == 1 && buf[0] == 'h', "hello %d: %d", k, n);
		for (int j = 0; j < k; j++)
			CHECK(ids[j] != ids[k], "two clients with id %u", ids[k]);
	}
	/* Replies in reverse priority, one per lane: they must come out a, b, c. */
	sleep_ms(50);
	for (int k = 0; k < SD_CLIENTS; k++) {
		CHECK_RC(ml_chan_reply(d, ids[k], ML_PRIO_LOW, "c", 1), 0);
		CHECK_RC(ml_chan_reply(d, ids[k], ML_PRIO_HIGH, "b", 1), 0);
		CHECK_RC(ml_chan_reply(d, ids[k], ML_PRIO_CRITICAL, "a", 1), 0);
	}
	sleep_ms(50);
	atomic_store(&sh->going_at, now_ns());
	atomic_store(&sh->going, 1);
	if (use_close) {
		ml_chan_close(d);
		d = NULL;
	} else {
		CHECK_RC(ml_chan_shutdown(d), 0);
	}
	atomic_store(&sh->down, 1);
	for (int k = 0; k < SD_CLIENTS; k++) {
		CHECK(reap_ok(pid[k], "client", 20 * SEC), "client %d", k);
		pid[k] = 0;
	}
	if (d) {
		/* A shut-down daemon receives nothing more and is not connected. */
		n = ml_chan_recv(d, NULL, NULL, buf, sizeof(buf));
		CHECK(n == -EAGAIN || n == -EPIPE, "recv after shutdown: %d", n);
	}
	if (named_backend() && !d)
		CHECK(!shm_exists(sh->name), "memlink.%s left after close", sh->name);
	printf("  # the waiting client saw -EPIPE %.1f ms after the shutdown began\n",
	       (double)sh->seen_ns[0] / 1e6);
	ret = 0;
out:
	for (int k = 0; k < SD_CLIENTS; k++)
		if (pid[k] > 0) {
			kill(pid[k], SIGKILL);
			waitpid(pid[k], NULL, 0);
		}
	ml_chan_close(d);
	return ret;
}

int t_shutdown(void)
{
	return shutdown_test(false);
}

int t_shutdown_by_close(void)
{
	return shutdown_test(true);
}

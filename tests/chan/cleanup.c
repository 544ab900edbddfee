// SPDX-License-Identifier: MIT
/*
 * Channel tests: nothing left behind in /dev/shm, and a dead daemon's
 * channel replaced.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "proctest.h"
#include "chan_test.h"

int t_shm_cleanup(void)
{
	struct ml_chan_opts o = opts_default();
	char name[80];
	const char *args[] = { "--role", "serve", name, NULL };
	ml_chan *d = NULL, *c1 = NULL, *c2 = NULL, *old = NULL;
	pid_t daemon = 0;
	int err, ret = -1;
	bool shm = named_backend();

	/* 1. daemon, clients come and go, daemon closes. */
	chan_name(name, sizeof(name), "clean");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	if (shm)
		CHECK(shm_exists(name), "no memlink.%s while the daemon runs", name);
	CHECK_RC(ml_client_connect(&c1, name, &o), 0);
	CHECK_RC(ml_client_connect(&c2, name, &o), 0);
	ml_chan_close(c1);
	c1 = NULL;
	/* 2. ... and one client still connected when the daemon closes. */
	ml_chan_close(d);
	d = NULL;
	if (shm)
		CHECK(!shm_exists(name), "memlink.%s left after the daemon closed", name);
	CHECK_RC(ml_chan_wait(c2, 0), -EPIPE);
	/* The name is free again at once. */
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	/* The old client, of the old channel, must not see the new one. */
	CHECK_RC(ml_chan_send(c2, ML_PRIO_LOW, "x", 1), -EPIPE);
	ml_chan_close(c2);
	c2 = NULL;
	ml_chan_close(d);
	d = NULL;
	if (shm)
		CHECK(!shm_exists(name), "memlink.%s left after the second daemon", name);

	/* 3. a daemon killed with SIGKILL, replaced by a new one of the same name. */
	chan_name(name, sizeof(name), "replace");
	daemon = spawn_exec(args);
	CHECK(daemon > 0, "spawn");
	CHECK_RC(connect_retry(&old, name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(roundtrip(old, ML_PRIO_HIGH, "one", 3, 5 * SEC), 0);
	/* While it lives, the name is taken. */
	CHECK_RC(ml_daemon_create(&d, name, &o), -EEXIST);
	kill(daemon, SIGKILL);
	err = reap(daemon, 5 * SEC);
	daemon = 0;
	CHECK(err != -1 && WIFSIGNALED(err), "daemon status %#x", err);
	err = ml_daemon_create(&d, name, &o);
	CHECK(err == 0, "create over a dead daemon's channel: %s", ml_strerror(err));
	/* The old client still sees a dead daemon, not the new one. */
	CHECK_RC(ml_chan_wait(old, 200 * MS), -EPIPE);
	CHECK(ml_chan_connected(old) == 0, "old client connected to the new daemon");
	/* A new client reaches the new daemon. */
	CHECK_RC(ml_client_connect(&c1, name, &o), 0);
	CHECK_RC(ml_chan_send(c1, ML_PRIO_CRITICAL, "two", 3), 0);
	{
		char b[8];
		unsigned cl;
		int prio;

		CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
		CHECK_RC(ml_chan_recv(d, &prio, &cl, b, sizeof(b)), 3);
		CHECK(!memcmp(b, "two", 3) && prio == ML_PRIO_CRITICAL, "wrong message");
		CHECK_RC(ml_chan_recv(d, &prio, &cl, b, sizeof(b)), -EAGAIN);
	}
	ml_chan_close(c1);
	c1 = NULL;
	ml_chan_close(old);
	old = NULL;
	ml_chan_close(d);
	d = NULL;
	if (shm)
		CHECK(!shm_exists(name), "memlink.%s left after the replacement closed",
		      name);
	ret = 0;
out:
	ml_chan_close(old);
	ml_chan_close(c1);
	ml_chan_close(c2);
	ml_chan_close(d);
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		reap(daemon, 5 * SEC);
	}
	return ret;
}

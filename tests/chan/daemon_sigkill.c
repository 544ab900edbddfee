// SPDX-License-Identifier: MIT
/*
 * Channel tests: a daemon killed with SIGKILL: a waiting client returns the
 * peer-gone error at once, and every later call says so.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

struct kill_shared {
	_Atomic long long killed_at;
};

static int killer(void *arg)
{
	struct kill_shared *sh = arg;
	pid_t victim = (pid_t)atomic_load(&sh->killed_at);

	sleep_ms(300);
	atomic_store(&sh->killed_at, now_ns());
	kill(victim, SIGKILL);
	return 0;
}

/*
 * `every_call`: after the wait saw -EPIPE, check that every other call on
 * the handle says -EPIPE too; else check reconnecting and replacing.
 */
static int daemon_sigkill(bool every_call)
{
	struct kill_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	char name[80], buf[8];
	const char *args[] = { "--role", "serve", name, NULL };
	pid_t daemon = 0, k = 0;
	ml_chan *c = NULL, *c2 = NULL, *d2 = NULL;
	int64_t t, delay;
	int err, st, ret = -1;

	chan_name(name, sizeof(name), "dkill");
	daemon = spawn_exec(args);
	CHECK(daemon > 0, "spawn");
	CHECK_RC(connect_retry(&c, name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(roundtrip(c, ML_PRIO_CRITICAL, "ping", 4, 5 * SEC), 0);
	CHECK(ml_chan_connected(c) == 1, "not connected");
	/* Kill the daemon while we wait for a reply that never comes. */
	atomic_store(&sh->killed_at, daemon);
	k = spawn(killer, sh);
	t = now_ns();
	err = ml_chan_wait(c, 10 * SEC);
	delay = now_ns() - atomic_load(&sh->killed_at);
	t = now_ns() - t;
	CHECK(err == -EPIPE, "wait with the daemon killed: %d (%s) after %lld ms", err,
	      ml_strerror(err), (long long)(t / MS));
	CHECK(t >= 250 * MS, "wait returned -EPIPE after %lld ms, before the kill",
	      (long long)(t / MS));
	CHECK(delay < 1 * SEC, "client noticed the dead daemon after %lld ms", (long long)(delay / MS));
	printf("  # client saw the daemon's death after %.1f ms\n", (double)delay / 1e6);
	st = reap(daemon, 5 * SEC);
	daemon = 0;
	CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "daemon status %#x", st);
	reap(k, 5 * SEC);
	k = 0;
	if (!every_call)
		goto reconnect;
	/* After that, every call on the handle says so (include/memlink.h:
	 * -EPIPE "the peer is gone: the daemon died"), as after a shutdown.
	 * Soft checks: each is reported. */
	SOFT_RC(ml_chan_connected(c), 0);
	SOFT_RC(ml_chan_wait(c, 100 * MS), -EPIPE);
	SOFT_RC(ml_chan_wait(c, 0), -EPIPE);
	SOFT_RC(ml_chan_recv(c, NULL, NULL, buf, sizeof(buf)), -EPIPE);
	SOFT_RC(ml_chan_send(c, ML_PRIO_LOW, "x", 1), -EPIPE);
	SOFT_RC(ml_chan_send_wait(c, 0, ML_PRIO_LOW, "x", 1, 100 * MS), -EPIPE);
	ret = atomic_load(&R->failed) ? -1 : 0;
	goto out;
reconnect:
	/* A new client of the dead daemon's name is refused. */
	err = ml_client_connect(&c2, name, &o);
	CHECK(err == -EPIPE || err == -ENOENT, "connect to a dead daemon: %d (%s)", err,
	      ml_strerror(err));
	/* A new daemon replaces the dead one's channel; its close removes it. */
	CHECK_RC(ml_daemon_create(&d2, name, &o), 0);
	ml_chan_close(d2);
	d2 = NULL;
	if (named_backend())
		CHECK(!shm_exists(name), "memlink.%s left after the replacement closed", name);
	ret = 0;
out:
	ml_chan_close(d2);
	ml_chan_close(c2);
	ml_chan_close(c);
	if (k > 0)
		reap(k, 5 * SEC);
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		reap(daemon, 5 * SEC);
	}
	if ((ret || every_call) && posix_shm_backend()) {
		char path[160];

		/* The dead daemon's socket file too, which only its lock file names. */
		ml_chan_gc(name, 0);

		snprintf(path, sizeof(path), "/memlink.%s", name);
		shm_unlink(path);
		/* and the darwin backend's lock file (lib/darwin/darwin.c) */
		snprintf(path, sizeof(path), "/var/tmp/memlink.%s.lock", name);
		unlink(path);
	}
	return ret;
}

int t_daemon_sigkill(void)
{
	return daemon_sigkill(false);
}

int t_daemon_sigkill_every_call(void)
{
	return daemon_sigkill(true);
}

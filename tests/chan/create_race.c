// SPDX-License-Identifier: MIT
/*
 * Channel tests: daemons starting together under one name: exactly one
 * wins.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "proctest.h"
#include "chan_test.h"

#define RACERS 4
#define RACE_ROUNDS 30

struct race {
	_Atomic int ready, go, done, release, dead_up;
	int rc[RACERS];
	char name[64];
};

static struct race *RC;

/* A child's argument: RC, and in its low bits a racer's index. */
static void *race_arg(int i)
{
	return (void *)((uintptr_t)RC | (uintptr_t)i);
}

static int racer(void *arg)
{
	int i = (int)((uintptr_t)arg & 7), rc;
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;

	/* (Windows starts children afresh: RC is theirs only through arg.) */
	RC = (struct race *)((uintptr_t)arg & ~(uintptr_t)7);

	atomic_fetch_add(&RC->ready, 1);
	while (!atomic_load(&RC->go))
		;
	rc = ml_daemon_create(&d, RC->name, &o);
	RC->rc[i] = rc;
	atomic_fetch_add(&RC->done, 1);
	while (rc == 0 && !atomic_load(&RC->release))
		sleep_ms(1);
	ml_chan_close(d);
	return 0;
}

/* A daemon that starts and is then killed: its channel is left behind. */
static int dead_daemon(void *arg)
{
	struct ml_chan_opts o = opts_default();
	ml_chan *d;

	RC = arg;
	if (ml_daemon_create(&d, RC->name, &o))
		return 1;
	atomic_store(&RC->dead_up, 1);
	for (;;)
		pause();
}

/*
 * RACERS processes create the same channel at the same moment, over a
 * free name and over a dead daemon's: exactly one of them wins, the others
 * get -EEXIST, and a client then finds the winner's channel.
 */
int t_create_race(void)
{
	struct ml_chan_opts o = opts_default();
	pid_t pids[RACERS] = { 0 }, dead = 0;
	ml_chan *c = NULL;
	int ret = -1, replaced = 0;

	RC = shared_map(sizeof(*RC));
	chan_name(RC->name, sizeof(RC->name), "race");
	for (int round = 0; round < RACE_ROUNDS; round++) {
		int wins = 0, st;

		memset(RC, 0, offsetof(struct race, name));
		if (round % 3 == 2) {
			dead = spawn(dead_daemon, RC);
			CHECK(wait_flag(&RC->dead_up, 1, 5 * SEC), "the daemon to kill did not start");
			kill(dead, SIGKILL);
			st = reap(dead, 5 * SEC);
			dead = 0;
			CHECK(st != -1 && WIFSIGNALED(st), "daemon to kill: status %#x", st);
			replaced++;
		}
		for (int i = 0; i < RACERS; i++)
			pids[i] = spawn(racer, race_arg(i));
		CHECK(wait_flag(&RC->ready, RACERS, 5 * SEC), "racers did not start");
		atomic_store(&RC->go, 1);
		CHECK(wait_flag(&RC->done, RACERS, 10 * SEC), "a create hung (round %d)", round);
		for (int i = 0; i < RACERS; i++) {
			CHECK(RC->rc[i] == 0 || RC->rc[i] == -EEXIST,
			      "round %d: create = %d (%s), want 0 or -EEXIST", round, RC->rc[i],
			      ml_strerror(RC->rc[i]));
			wins += RC->rc[i] == 0;
		}
		CHECK(wins == 1, "round %d: %d of %d racing daemons won", round, wins, RACERS);
		CHECK_RC(ml_client_connect(&c, RC->name, &o), 0);
		CHECK(ml_chan_peer_alive(c, 0, 5 * SEC) == 1, "round %d: no live daemon", round);
		ml_chan_close(c);
		c = NULL;
		atomic_store(&RC->release, 1);
		for (int i = 0; i < RACERS; i++) {
			bool ok = reap_ok(pids[i], "racer", 10 * SEC);

			pids[i] = 0;
			CHECK(ok, "round %d", round);
		}
	}
	if (named_backend())
		CHECK(!shm_exists(RC->name), "memlink.%s left after the races", RC->name);
	printf("  # %d rounds of %d racers (%d over a dead daemon): one winner each\n",
	       RACE_ROUNDS, RACERS, replaced);
	ret = 0;
out:
	ml_chan_close(c);
	atomic_store(&RC->release, 1);
	atomic_store(&RC->go, 1);
	for (int i = 0; i < RACERS; i++)
		if (pids[i] > 0)
			reap(pids[i], 5 * SEC);
	if (dead > 0) {
		kill(dead, SIGKILL);
		reap(dead, 5 * SEC);
	}
	return ret;
}

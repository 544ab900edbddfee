// SPDX-License-Identifier: MIT
/*
 * Smoke test of the darwin backend, for macOS: a daemon forks a client,
 * which sends requests that the daemon answers; the client checks every
 * reply, and the daemon then sees it gone (lock-file liveness) and that a
 * second daemon of the same name is refused. Exits 0 when all holds.
 *
 * Only built (zig cc) on Linux, not run: run it on a Mac as is.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memlink.h"

#define ROUNDS 100
#define SEC 1000000000ll

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
			return 1;                                              \
		}                                                              \
	} while (0)

static const struct ml_chan_opts opts = { .size = sizeof(opts), .backend = ML_BACKEND_DARWIN };

/* In the forked child: never touch the inherited daemon handle. */
static int client(const char *name)
{
	char buf[64], want[64];
	ml_chan *c;
	unsigned client_id;
	int n, prio;

	CHECK(ml_client_connect(&c, name, &opts) == 0);
	CHECK(strcmp(ml_chan_backend(c), "darwin") == 0);
	for (int i = 0; i < ROUNDS; i++) {
		n = snprintf(buf, sizeof(buf), "ping %d", i);
		CHECK(ml_chan_send_wait(c, 0, i % ML_PRIO_COUNT, buf, (size_t)n + 1, 5 * SEC) == 0);
		CHECK(ml_chan_wait(c, 5 * SEC) == 0);
		n = ml_chan_recv(c, &prio, &client_id, buf, sizeof(buf));
		snprintf(want, sizeof(want), "pong %d", i);
		CHECK(n == (int)strlen(want) + 1 && strcmp(buf, want) == 0);
		CHECK(prio == i % ML_PRIO_COUNT);
	}
	ml_chan_close(c);
	return 0;
}

int main(void)
{
	char name[32], buf[64];
	ml_chan *d, *d2;
	unsigned who;
	int n, prio, status;
	pid_t pid;

	snprintf(name, sizeof(name), "darwin-smoke-%d", (int)getpid());
	CHECK(ml_daemon_create(&d, name, &opts) == 0);
	CHECK(strcmp(ml_chan_backend(d), "darwin") == 0);
	CHECK(ml_chan_fd(d) == -ENOTSUP);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(client(name));
	for (int i = 0; i < ROUNDS; i++) {
		CHECK(ml_chan_wait(d, 5 * SEC) == 0);
		n = ml_chan_recv(d, &prio, &who, buf, sizeof(buf));
		CHECK(n > 5 && buf[n - 1] == '\0' && strncmp(buf, "ping ", 5) == 0);
		memcpy(buf, "pong", 4);
		CHECK(ml_chan_reply(d, who, prio, buf, (size_t)n) == 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The client left: its slot is free again once the daemon looks. */
	for (int tries = 0; ml_chan_connected(d) && tries < 100; tries++)
		usleep(10000);
	CHECK(!ml_chan_connected(d));
	/* Ours is alive, even to this process: a second daemon is refused. */
	CHECK(ml_daemon_create(&d2, name, &opts) == -EEXIST);
	ml_chan_close(d);
	CHECK(ml_client_connect(&d2, name, &opts) == -ENOENT);
	puts("chan-smoke: ok");
	return 0;
}

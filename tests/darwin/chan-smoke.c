// SPDX-License-Identifier: MIT
/*
 * Smoke test of the darwin backend, for macOS: a daemon forks a client,
 * which sends requests that the daemon answers; the client checks every
 * reply, and the daemon then sees it gone (lock-file liveness) and that a
 * second daemon of the same name is refused. Then what macOS does its own
 * way: names that differ only in case are two channels (APFS compares
 * file names case-insensitively), and with its lock file deleted (macOS
 * sweeps /tmp; here by hand) the daemon is still alive to everyone and
 * puts the file back for new clients. Exits 0 when all holds, in about a
 * second and a half.
 *
 * On a Mac it is one command: README.md, "Checking on a Mac". Here it is
 * built for macOS (make darwin) and run over the xnu simulation (make
 * darwin-sim-check).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memlink.h"

#define ROUNDS 100
#define SEC 1000000000ll
#define MS 1000000ll

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

/* A client in a child, served here to the end: 0 when it checked every reply. */
static int serve_one(ml_chan *d, const char *name)
{
	char buf[64];
	unsigned who;
	int n, prio, status;
	pid_t pid;

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
	return 0;
}

int main(void)
{
	char name[32], upper[40], lower[40], lock[96];
	ml_chan *d, *d2, *du, *dl;

	snprintf(name, sizeof(name), "darwin-smoke-%d", (int)getpid());
	CHECK(ml_daemon_create(&d, name, &opts) == 0);
	CHECK(strcmp(ml_chan_backend(d), "darwin") == 0);
	CHECK(ml_chan_fd(d) == -ENOTSUP);
	CHECK(serve_one(d, name) == 0);
	/* Ours is alive, even to this process: a second daemon is refused. */
	CHECK(ml_daemon_create(&d2, name, &opts) == -EEXIST);

	snprintf(upper, sizeof(upper), "%s-Case", name);
	snprintf(lower, sizeof(lower), "%s-case", name);
	CHECK(ml_daemon_create(&du, upper, &opts) == 0);
	CHECK(ml_daemon_create(&dl, lower, &opts) == 0);
	ml_chan_close(dl);
	ml_chan_close(du);

	/* The lock file goes (lib/darwin/darwin.c names it). */
	snprintf(lock, sizeof(lock), "/var/tmp/memlink.%s.lock", name);
	CHECK(unlink(lock) == 0);
	CHECK(ml_daemon_create(&d2, name, &opts) == -EEXIST);
	CHECK(ml_chan_gc(name, ML_BACKEND_DARWIN) == 0);
	/* The daemon looks now and then while it sleeps, and puts one back. */
	for (int tries = 0; access(lock, F_OK) && tries < 300; tries++)
		ml_chan_wait(d, 10 * MS);
	CHECK(access(lock, F_OK) == 0);
	CHECK(serve_one(d, name) == 0);

	ml_chan_close(d);
	CHECK(ml_client_connect(&d2, name, &opts) == -ENOENT);
	puts("chan-smoke: ok");
	return 0;
}

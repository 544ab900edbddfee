/* SPDX-License-Identifier: MIT */
/*
 * The program around an event loop of evloop.h: this process is a daemon
 * with a channel and a datagram socket; a client process sends it requests
 * over the channel and datagrams to the socket. The loop answers each
 * request, prints each datagram, counts timer ticks, and stops when the
 * client says goodbye.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evloop.h"

#define ROUNDS 5
#define SEC 1000000000LL

struct demo {
	int dgrams_due; /* -1 until the client's goodbye says how many */
	int dgrams;
	int bye;
};

static int done(const struct demo *d)
{
	return d->bye && d->dgrams == d->dgrams_due;
}

static int on_msg(struct evloop *l, unsigned client, int prio, const void *buf, size_t len)
{
	struct demo *d = l->arg;
	char text[64], reply[80];
	int n, err;

	/* Messages are bytes: make a string of (the start of) this one. */
	snprintf(text, sizeof(text), "%.*s", (int)(len < sizeof(text) ? len : sizeof(text) - 1),
		 (const char *)buf);
	printf("daemon: client %u says \"%s\"\n", client, text);
	if (sscanf(text, "bye %d", &d->dgrams_due) == 1)
		d->bye = 1;
	n = snprintf(reply, sizeof(reply), "got %s", text);
	err = ml_chan_reply(l->chan, client, prio, reply, (size_t)n);
	if (err)
		return err;
	return done(d);
}

static int on_dgram(struct evloop *l, const void *buf, size_t len)
{
	struct demo *d = l->arg;

	printf("daemon: datagram \"%.*s\"\n", (int)len, (const char *)buf);
	d->dgrams++;
	return done(d);
}

static int on_tick(struct evloop *l, uint64_t expirations)
{
	(void)l;
	(void)expirations;
	return 0;
}

/* A reply: wait for the descriptor-less way, ml_chan_wait(). */
static int await_reply(ml_chan *c, char *buf, size_t len)
{
	for (;;) {
		int n = ml_chan_wait(c, 2 * SEC);

		if (n)
			return n;
		n = ml_chan_recv(c, NULL, NULL, buf, len - 1);
		if (n >= 0) {
			buf[n] = '\0';
			return n;
		}
		if (n != -EAGAIN)
			return n;
	}
}

/* The client process: requests, datagrams, goodbye. */
static int client(const char *name, const struct sockaddr_un *addr, socklen_t alen)
{
	char buf[128];
	ml_chan *c;
	int s, n, err;

	for (int tries = 0; (err = ml_client_connect(&c, name, NULL)) == -ENOENT && tries < 500; tries++)
		usleep(10000); /* the daemon is starting */
	if (err) {
		fprintf(stderr, "client: connect: %s\n", ml_strerror(err));
		return 1;
	}
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		perror("client: socket");
		ml_chan_close(c);
		return 1;
	}
	for (int i = 0; i <= ROUNDS && !err; i++) {
		n = i < ROUNDS ? snprintf(buf, sizeof(buf), "request %d", i)
			       : snprintf(buf, sizeof(buf), "bye %d", ROUNDS);
		err = ml_chan_send_wait(c, 0, ML_PRIO_HIGH, buf, (size_t)n, SEC);
		if (!err && i < ROUNDS) {
			n = snprintf(buf, sizeof(buf), "datagram %d", i);
			if (sendto(s, buf, (size_t)n, 0, (const struct sockaddr *)addr, alen) != n)
				err = -errno;
		}
		if (!err && (err = await_reply(c, buf, sizeof(buf))) >= 0) {
			printf("client: daemon says \"%s\"\n", buf);
			err = 0;
		}
		usleep(30000); /* a few timer ticks */
	}
	if (err)
		fprintf(stderr, "client: %s\n", ml_strerror(err));
	close(s);
	ml_chan_close(c);
	return err ? 1 : 0;
}

int evloop_demo(const char *what, int (*loop)(struct evloop *l))
{
	struct demo d = { .dgrams_due = -1 };
	struct evloop l = {
		.sock = -1, .tick_ns = 20000000, .arg = &d,
		.on_msg = on_msg, .on_dgram = on_dgram, .on_tick = on_tick,
	};
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t alen;
	char name[ML_CHAN_NAME_MAX + 1];
	int err, status = 1;
	pid_t pid;

	/* The socket, at an abstract address: nothing in the file system. */
	snprintf(name, sizeof(name), "evloop-demo-%d", (int)getpid());
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "%s", name));
	l.sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (l.sock < 0 || bind(l.sock, (struct sockaddr *)&addr, alen)) {
		perror("socket");
		return 1;
	}
	/*
	 * The client first: a process forked once the channel exists would
	 * hold its descriptor and mapping, and keep the daemon "alive" in the
	 * kernel's eyes after its death. It waits for the channel to appear.
	 */
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		close(l.sock);
		_exit(client(name, &addr, alen));
	}

	err = ml_daemon_create(&l.chan, name, NULL);
	if (err) {
		fprintf(stderr, "ml_daemon_create: %s\n", ml_strerror(err));
		goto out;
	}
	err = loop(&l);
	if (err == -ENOTSUP)
		fprintf(stderr, "the %s backend has no descriptor to wait on with %s: "
			"use the kmod or linux backend (MEMLINK_BACKEND=kmod|linux)\n",
			ml_chan_backend(l.chan), what);
	else if (err)
		fprintf(stderr, "%s loop: %s\n", what, ml_strerror(err));
	else
		printf("daemon (%s): %llu requests, %llu datagrams, %llu timer ticks, "
		       "%llu wake-ups (%llu with nothing to do)\n", what,
		       (unsigned long long)l.msgs, (unsigned long long)l.dgrams,
		       (unsigned long long)l.ticks, (unsigned long long)l.wakeups,
		       (unsigned long long)l.idle);
out:
	if (err) /* the client may still be waiting */
		kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		err = err ? err : -ECHILD;
	ml_chan_close(l.chan); /* once the client has read its last reply */
	close(l.sock);
	return err ? 1 : 0;
}

// SPDX-License-Identifier: MIT
/*
 * memlink-ping: the ping-pong example. Run the daemon in one terminal and
 * the client in another:
 *
 *   memlink-ping daemon [--name NAME] [--mode busy|adaptive|blocking]
 *   memlink-ping client [--name NAME] [--mode ...] [--count N] [--stop]
 *
 * The daemon echoes every message back to the client that sent it, until
 * it is interrupted or a client sends "stop" (client --stop does, when it
 * is done). The client sends --count messages of each size (0, 64, 1024,
 * 4096 bytes), checks every echo and prints the round-trip table.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memlink.h"

#define STOP "stop"
#define MAX_MSG 4096

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "memlink-ping: %s: %s\n", what, ml_strerror(err));
	return 1;
}

static int run_daemon(const char *name, const struct ml_chan_opts *o)
{
	static char buf[MAX_MSG];
	unsigned long served = 0;
	ml_chan *d;
	int err = ml_daemon_create(&d, name, o);

	if (err)
		return die("create", err);
	printf("memlink-ping: daemon on channel '%s' (%s backend), waiting\n", name,
	       ml_chan_backend(d));
	fflush(stdout);
	while (!interrupted) {
		unsigned client;
		int prio, n = ml_chan_recv(d, &prio, &client, buf, sizeof(buf));

		if (n == -EAGAIN) {
			ml_chan_wait(d, 200000000);
			continue;
		}
		/* A client died mid-send, or wrote over its lanes: note it, go on. */
		if (n == -EOWNERDEAD || n == -EBADMSG) {
			fprintf(stderr, "memlink-ping: client %u (slot %u): %s\n", client,
				ML_CHAN_SLOT(client), ml_strerror(n));
			continue;
		}
		if (n < 0) {
			err = n;
			break;
		}
		if (prio == ML_PRIO_CRITICAL && n == (int)strlen(STOP) && !memcmp(buf, STOP, (size_t)n))
			break;
		err = ml_chan_send_wait(d, client, prio, buf, (size_t)n, 1000000000);
		if (err && err != -EPIPE)
			break;
		err = 0;
		served++;
	}
	printf("memlink-ping: daemon served %lu messages\n", served);
	ml_chan_close(d);
	return err ? die("serve", err) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)n);

	return (double)v[i < n ? i : n - 1] / 1000.0;
}

/* One size: `count` checked round trips; prints a table row. */
static int ping_size(ml_chan *c, size_t size, unsigned count, uint64_t *lat)
{
	static unsigned char out[MAX_MSG], in[MAX_MSG];

	for (unsigned i = 0; i < count; i++) {
		uint64_t t0 = now_ns();
		int n, err;

		for (size_t k = 0; k < size; k++)
			out[k] = (unsigned char)(i * 131 + k);
		err = ml_chan_send_wait(c, 0, ML_PRIO_HIGH, out, size, 1000000000);
		if (err)
			return die("send", err);
		while ((n = ml_chan_recv(c, NULL, NULL, in, sizeof(in))) == -EAGAIN) {
			err = ml_chan_wait(c, 2000000000);
			if (err)
				return die("wait", err);
		}
		if (n < 0)
			return die("recv", n);
		if ((size_t)n != size || memcmp(in, out, size)) {
			fprintf(stderr, "memlink-ping: echo %u of %zu bytes differs\n", i, size);
			return 1;
		}
		lat[i] = now_ns() - t0;
	}
	qsort(lat, count, sizeof(*lat), cmp_u64);
	printf("%8zu %10u %10.2f %10.2f %10.2f %10.2f\n", size, count, pct(lat, count, 0.5),
	       pct(lat, count, 0.99), pct(lat, count, 0.999), (double)lat[count - 1] / 1000.0);
	return 0;
}

static int run_client(const char *name, const struct ml_chan_opts *o, unsigned count, bool stop)
{
	static const size_t sizes[] = { 0, 64, 1024, 4096 };
	uint64_t *lat = malloc(sizeof(*lat) * count);
	ml_chan *c;
	int err = 0;

	if (!lat)
		return die("malloc", -ENOMEM);
	for (int tries = 0; (err = ml_client_connect(&c, name, o)) == -ENOENT && tries < 50; tries++)
		nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	if (err) {
		free(lat);
		return die("connect", err);
	}
	printf("memlink-ping: client on channel '%s' (%s backend), %u round trips per size\n",
	       name, ml_chan_backend(c), count);
	printf("%8s %10s %10s %10s %10s %10s\n", "bytes", "count", "p50 us", "p99 us",
	       "p99.9 us", "max us");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !err; i++)
		err = ping_size(c, sizes[i], count, lat);
	if (stop)
		ml_chan_send_wait(c, 0, ML_PRIO_CRITICAL, STOP, strlen(STOP), 1000000000);
	ml_chan_close(c);
	free(lat);
	return err;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: memlink-ping daemon [--name NAME] [--mode busy|adaptive|blocking]\n"
		   "       memlink-ping client [--name NAME] [--mode ...] [--count N] [--stop]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "name", required_argument, NULL, 'n' },  { "mode", required_argument, NULL, 'm' },
		{ "count", required_argument, NULL, 'c' }, { "stop", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	struct ml_chan_opts o = { .size = sizeof(o), .max_msg = MAX_MSG };
	const char *name = "memlink-ping";
	unsigned count = 10000;
	bool stop = false;
	int ch;

	if (argc < 2 || (strcmp(argv[1], "daemon") && strcmp(argv[1], "client"))) {
		usage(stderr);
		return 2;
	}
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'n':
			name = optarg;
			break;
		case 'm':
			if (!strcmp(optarg, "busy"))
				o.wait_mode = ML_WAIT_BUSY;
			else if (!strcmp(optarg, "blocking"))
				o.wait_mode = ML_WAIT_BLOCKING;
			else if (strcmp(optarg, "adaptive"))
				return usage(stderr), 2;
			break;
		case 'c':
			count = (unsigned)strtoul(optarg, NULL, 0);
			if (!count)
				return usage(stderr), 2;
			break;
		case 's':
			stop = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!strcmp(argv[1], "daemon"))
		return run_daemon(name, &o);
	return run_client(name, &o, count, stop);
}

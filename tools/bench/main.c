// SPDX-License-Identifier: MIT
/*
 * memlink-bench: measurement tools for memlink.
 *
 *   memlink-bench <subcommand> [options]
 *   memlink-bench --help
 *
 * Each subcommand lives in its own file; this one only dispatches.
 */
#include <stdio.h>
#include <string.h>

#include "bench_chan.h"
#include "bench_fanout.h"
#include "bench_peers.h"
#include "bench_pubsub.h"
#include "bench_ring.h"
#include "memlink.h"

struct subcmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
	void (*usage)(FILE *f);
};

static const struct subcmd subcmds[] = {
	{ "ring", "ring throughput and round trips vs a baseline SPSC ring and the floor",
	  bench_ring_main, bench_ring_usage },
	{ "rtt", "channel round trips vs the floor, baseline ring, raw futex, Unix socket",
	  bench_chan_main, bench_chan_usage },
	{ "tput", "channel throughput, one and several producers",
	  bench_chan_main, bench_chan_usage },
	{ "peers", "memlink beside sockets, pipes, mq, eventfd, Boost, ZeroMQ, iceoryx",
	  bench_peers_main, bench_peers_usage },
	{ "fanout", "one daemon, N clients: fan-out and fan-in per wait mode, beside ZeroMQ",
	  bench_fanout_main, bench_fanout_usage },
	{ "pubsub", "one publisher, N subscribers: memlink channel replies beside iceoryx, ZeroMQ",
	  bench_pubsub_main, bench_pubsub_usage },
};

#define NSUBCMDS (sizeof(subcmds) / sizeof(subcmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: memlink-bench <subcommand> [options]\n"
		   "       memlink-bench <subcommand> --help\n"
		   "       memlink-bench --help | --version\n\n"
		   "subcommands:\n");
	for (size_t i = 0; i < NSUBCMDS; i++)
		fprintf(f, "  %-8s %s\n", subcmds[i].name, subcmds[i].summary);
	fprintf(f, "\nThe floor (ring, rtt, peers): two processes on the pinned CPUs bounce one\n"
		   "shared cache line, the least a cross-core round trip can cost, measured in\n"
		   "the same run; every round-trip row's p50 over it is its x floor.\n\n");
	for (size_t i = 0; i < NSUBCMDS; i++)
		if (!i || subcmds[i].usage != subcmds[i - 1].usage) /* rtt and tput share one */
			subcmds[i].usage(f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("memlink-bench (memlink %s)\n", ml_version());
		return 0;
	}
	for (size_t i = 0; i < NSUBCMDS; i++)
		if (!strcmp(argv[1], subcmds[i].name))
			return subcmds[i].run(argc - 1, argv + 1);
	fprintf(stderr, "memlink-bench: unknown subcommand '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}

// SPDX-License-Identifier: MIT
/*
 * Writes the seed inputs of the fuzz targets (make fuzz-seeds):
 *   gen-seeds DIR   -> DIR/ring/seed-*, DIR/connect/seed-*, DIR/daemon/seed-*
 *                      and DIR/<target>/crash-*: reproducers of fixed bugs
 * Valid rings and channel regions, made by the library itself, get the
 * fuzzer past the magic and version checks at once; each comes with a few
 * operations in the targets' encoding (fuzz.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan_layout.h"
#include "fuzz.h"
#include "ring_layout.h"

static const char *dir;

#define TRY(call)                                                        \
	do {                                                             \
		int err_ = (call);                                       \
		if (err_) {                                              \
			fprintf(stderr, "gen-seeds: %s: %s\n", #call,    \
				ml_strerror(err_));                      \
			exit(1);                                         \
		}                                                        \
	} while (0)

/* DIR/target/name = n, ops, then body. */
static void put(const char *target, const char *name, const uint8_t *ops, size_t nops,
		const void *body, size_t len, bool counted)
{
	char path[4096];
	FILE *fp;
	uint8_t n = (uint8_t)nops;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
	fp = fopen(path, "wb");
	if (!fp || (counted && fwrite(&n, 1, 1, fp) != 1) ||
	    (nops && fwrite(ops, 1, nops, fp) != nops) ||
	    (len && fwrite(body, 1, len, fp) != len) || fclose(fp)) {
		perror(path);
		exit(1);
	}
	printf("%s (%zu bytes)\n", path, (counted ? 1 : 0) + nops + len);
}

/* ---- rings ---- */

static const uint8_t ring_ops[] = {
	FZR_READ, 8, FZR_PEEK, FZR_RELEASE,
	FZR_WRITE, 2, 10,              /* High, 20 bytes */
	FZR_RESERVE, 3, 16, 0,         /* Low, 16 bytes */
	FZR_COMMIT, 8, 0, FZR_INFO,
	FZR_POKE_IDX, 0, 0, 8,         /* head of lane 0 one record on */
	FZR_READ_MAX,
	FZR_POKE_DATA, 0x90, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,
	FZR_REATTACH, FZR_READ_MAX, FZR_WRITE, 1, 4,
};

static void ring_seed(const char *name, size_t cap, const struct ml_ring_opts *o,
		      unsigned writes, unsigned reads, const uint8_t *ops, size_t nops)
{
	size_t len = ml_ring_mem_size(cap);
	uint8_t msg[64];
	struct ml_ring_info info;
	void *mem;
	ml_ring *r;

	if (posix_memalign(&mem, ML__LINE, len))
		exit(1);
	TRY(ml_ring_init(&r, mem, len, cap, o));
	ml_ring_info(r, &info);
	/* Writes, reads, then writes again: indices past a wrap, pad records. */
	for (unsigned i = 0; i < writes + reads; i++) {
		memset(msg, (int)i, sizeof(msg));
		if (i >= writes / 2 && i < writes / 2 + reads)
			ml_ring_read(r, NULL, msg, sizeof(msg));
		else
			ml_ring_write(r, (int)(i % ML_PRIO_COUNT), msg, 1 + i * 7 % info.max_msg);
	}
	put("ring", name, ops, nops, mem, len, true);
	ml_ring_free(r);
	free(mem);
}

static void ring_seeds(void)
{
	struct ml_ring_opts one = { .size = sizeof(one) };
	struct ml_ring_opts three = { .size = sizeof(three), .flags = ML_RING_LANES3 };
	struct ml_ring_opts policy = { .size = sizeof(policy), .flags = ML_RING_LANES3,
				       .starve_limit = 2, .urgent_every = 3 };

	ring_seed("seed-lanes3-empty", 1024, &three, 0, 0, ring_ops, sizeof(ring_ops));
	ring_seed("seed-lanes3-wrapped", 1024, &three, 40, 25, ring_ops, sizeof(ring_ops));
	ring_seed("seed-lanes1-wrapped", 256, &one, 30, 20, ring_ops, sizeof(ring_ops));
	ring_seed("seed-policy", 2048, &policy, 60, 10, ring_ops, 0);
}

/* ---- channels ---- */

static char chan[32];

/* This process's mapping of memfd `memfd` (/proc/self/maps); NULL if none. */
static const uint8_t *mapping(const char *memfd)
{
	char line[512], want[200];
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned long lo = 0, hi;

	if (!f)
		exit(1);
	snprintf(want, sizeof(want), "/memfd:%s (deleted)\n", memfd);
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line), w = strlen(want);

		if (n >= w && !strcmp(line + n - w, want) && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			break;
		lo = 0;
	}
	fclose(f);
	return (const uint8_t *)lo;
}

/*
 * The channel's memory as fuzz-connect takes it: the control region, then
 * each slot's area (as this process, daemon and client, maps them) at its
 * place, one region.
 */
static uint8_t *region_copy(size_t *len)
{
	char memfd[80];
	const struct ml__ctl *ctl;
	uint8_t *copy;
	size_t total, base;

	snprintf(memfd, sizeof(memfd), "memlink.%s", chan);
	ctl = (const struct ml__ctl *)mapping(memfd);
	if (!ctl)
		exit(1);
	/* A topic's region comes right after the control region. */
	base = ML__CTL_SIZE + ctl->extra_size;
	total = base + ctl->max_clients * ctl->client_stride;
	copy = calloc(1, total);
	if (!copy)
		exit(1);
	memcpy(copy, ctl, base);
	for (unsigned i = 0; i < ctl->max_clients; i++) {
		const uint8_t *a;

		snprintf(memfd, sizeof(memfd), "memlink.%s.%u", chan, i);
		a = mapping(memfd);
		if (a)
			memcpy(copy + base + i * ctl->client_stride, a, ctl->client_stride);
	}
	*len = total;
	return copy;
}

static const uint8_t client_ops[] = {
	FZC_RECV, 1, FZC_RECV_MANY, 3, 2, FZC_RECV_MANY, 3, 255, FZC_RECV_MAX, FZC_WAIT,
	FZC_SEND, 0, 1, 5, FZC_SEND_WAIT, 0, 3, 2,
	FZC_BACKPRESSURE, FZC_CONNECTED, FZC_SIGNAL, FZC_PEER_ALIVE, 0, 10, FZC_BEAT,
	FZC_STATS, FZC_POKE, 0x80, 0, 0, 4, 2, 0, 0, 0,    /* daemon_state = SHUTDOWN */
	FZC_WAIT, FZC_RECV_MAX, FZC_BELL, FZC_CONNECTED, FZC_SEND, 0, 2, 3,
};

/*
 * A region with `replies` messages waiting in slot 0's response ring and
 * `sends` in its request ring, slot 0 then marked free for the fuzzed
 * client to take (or left taken: it takes slot 1).
 */
static void connect_seed(const char *name, unsigned clients, unsigned ring_size,
			 unsigned sends, unsigned replies, bool free0, const uint8_t *ops,
			 size_t nops)
{
	struct ml_chan_opts o = { .size = sizeof(o), .backend = ML_BACKEND_LINUX,
				  .max_clients = clients, .ring_size = ring_size };
	struct ml__ctl *ctl;
	ml_chan *d, *c;
	uint8_t *region;
	unsigned id;
	size_t len;

	TRY(ml_daemon_create(&d, chan, &o));
	TRY(ml_client_connect(&c, chan, &o));
	for (unsigned i = 0; i < sends; i++)
		ml_chan_send(c, (int)(i % 3), "request", 1 + i % 7);
	/* The daemon sees its client once it looks; replies go to its id. */
	if (ml_chan_clients(d, &id, 1) != 1) {
		fprintf(stderr, "gen-seeds: the daemon sees no client\n");
		exit(1);
	}
	for (unsigned i = 0; i < replies; i++)
		TRY(ml_chan_reply(d, id, (int)(i % 3), "response", 1 + i % 8));
	region = region_copy(&len);
	ctl = (struct ml__ctl *)region;
	if (free0)
		atomic_store(&ctl->slot[0].state, ML__SLOT_FREE);
	put("connect", name, ops, nops, region, len, true);
	free(region);
	ml_chan_close(c);
	ml_chan_close(d);
}

/* A subscriber's operations: receives, views, waits, and the publisher's pokes. */
static const uint8_t sub_ops[] = {
	FZC_RECV, 8, FZC_RECV_MANY, FZC_RECV, 1, FZC_RECV_MAX, FZC_WAIT, FZC_STATS,
	FZC_POKE, 0x80, 0x10, 0, 8, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, /* a lane's head */
	FZC_RECV_MAX, FZC_RECV_MANY, FZC_BELL, FZC_WAIT, FZC_RECV_MAX,
};

/* A topic with records in every lane, slot 0 free for the fuzzed subscriber. */
static void topic_seed(const char *name, uint32_t policy, unsigned records)
{
	struct ml_topic_opts o = { .size = sizeof(o), .backend = ML_BACKEND_LINUX,
				   .policy = policy, .capacity = 8192, .max_subs = 2 };
	struct ml__ctl *ctl;
	uint8_t *region;
	ml_pub *p;
	ml_sub *s;
	size_t len;

	TRY(ml_pub_create(&p, chan, &o));
	TRY(ml_sub_open(&s, chan, &o));
	ml_pub_subscribers(p);
	for (unsigned i = 0; i < records; i++)
		TRY(ml_pub_send(p, (int)(i % 3), "a record", 1 + i % 8));
	region = region_copy(&len);
	ctl = (struct ml__ctl *)region;
	atomic_store(&ctl->slot[0].state, ML__SLOT_FREE);
	put("connect", name, sub_ops, sizeof(sub_ops), region, len, true);
	free(region);
	ml_sub_close(s);
	ml_pub_close(p);
}

static void connect_seeds(void)
{
	topic_seed("seed-topic-lossy", ML_TOPIC_LOSSY, 400);
	topic_seed("seed-topic-reliable", ML_TOPIC_RELIABLE, 20);
	connect_seed("seed-fresh", 1, 256, 0, 0, true, NULL, 0);
	connect_seed("seed-messages", 2, 256, 5, 6, true, client_ops, sizeof(client_ops));
	connect_seed("seed-slot1", 2, 1024, 3, 3, false, client_ops, sizeof(client_ops));
}

/*
 * Daemon seeds are operations only: the harness makes the daemon. A
 * client byte 0-3 names the newest id seen in that slot (fz_client()).
 */
static const uint8_t daemon_ops_client[] = {
	FZC_CLIENT_SEND, 2, 5, FZC_CLIENT_SEND, 1, 3, FZC_CLIENT_SEND, 0, 7,
	FZC_CLIENT_SEND, 1, 9, FZC_RECV_MANY, 2, 3, FZC_CLIENT_SEND, 1, 9, FZC_RECV_MANY, 4, 255,
	FZC_CLIENT_SEND, 2, 5, FZC_RECV, 8, FZC_RECV_MAX, FZC_SEND, 0, 1, 4, FZC_CLIENT_RECV, FZC_WAIT,
	FZC_BACKPRESSURE, FZC_CONNECTED, FZC_PEER_ALIVE, 0, 10, FZC_SET_BP, 100,
	FZC_BACKPRESSURE, FZC_SET_BP, 0, FZC_SIGNAL, FZC_BEAT,
	FZC_SEND_WAIT, 0, 2, 4, FZC_STATS, FZC_SHUTDOWN, FZC_CLIENT_RECV,
};

static const uint8_t daemon_ops_slots[] = {
	FZC_SLOT, 1, ML__SLOT_CONNECTED, FZC_RECV_MAX, FZC_CLIENTS, 4,
	FZC_POKE_RING, 1, 0, 8, FZC_RECV_MAX,         /* request head: +8 */
	FZC_POKE_RING, 1, 1, 16, FZC_SEND, 1, 1, 3,   /* response head */
	FZC_SLOT, 1, ML__SLOT_LEAVING, FZC_CONNECTED,
	FZC_SLOT, 0, ML__SLOT_LEAVING, FZC_WAIT, FZC_BELL, 1, FZC_CONNECTED,
	FZC_SLOT, 2, ML__SLOT_CLAIMED, FZC_RECV, 1, FZC_STATS,
};

/* Reproducers of fixed bugs, replayed by every run. */
static const uint8_t daemon_crash_nan[] = {
	FZC_SET_BP, 255, FZC_BACKPRESSURE, /* level NaN: UB converting it */
};

/* Into raw client 0's header: its pid, heartbeat and doorbell count. */
static const uint8_t daemon_ops_ctl[] = {
	FZC_POKE, 8, 0, 0, 4, 0xff, 0xff, 0, 0,        /* pid */
	FZC_POKE, 16, 0, 0, 8, 0, 0, 0, 0x10, 0, 0, 0, 0, /* beat_ns */
	FZC_POKE, 12, 0, 0, 4, 0, 0, 1, 0,             /* dseq */
	FZC_SLOT, 0, ML__SLOT_LEAVING, FZC_CONNECTED, FZC_RECV_MAX,
	FZC_SLOT, 0, ML__SLOT_CONNECTED, FZC_RECV_MAX, FZC_CLIENTS, 1, FZC_SEND, 0, 0, 2,
};

/*
 * ML_CHAN_EVENTS: a real client and a raw one join, the raw one leaves
 * and comes back; calls name the ids seen, an older (gone) one, a newer
 * one, a bare slot number and a slot's first id.
 */
static const uint8_t daemon_ops_events[] = {
	FZC_RECV_MAX, FZC_CLIENT_SEND, 0, 2, 5, FZC_RECV_MAX, FZC_RECV_MAX,
	FZC_SLOT, 0, ML__SLOT_CONNECTED, FZC_RECV_MANY, 4, 16, FZC_CLIENTS, 4,
	FZC_SEND, 1, 2, 4, FZC_SEND, 0, 132, 4, FZC_PEER_ALIVE, 0, 10,
	FZC_BELL, 0, FZC_WAIT, FZC_RECV_MAX, FZC_RECV_MAX, FZC_RECV_MAX,
	FZC_SEND, 0, 1, 4, FZC_PEER_ALIVE, 0, 10, FZC_SEND_WAIT, 0, 1, 4,
	FZC_BELL, 0, FZC_SLOT, 0, ML__SLOT_CONNECTED, FZC_RECV_MAX, FZC_RECV_MAX,
	FZC_SEND, 0x80, 1, 4, FZC_SEND, 0xa0, 1, 4, FZC_SEND, 0xc1, 1, 4,
	FZC_PEER_ALIVE, 0xe0, 10, FZC_PEER_ALIVE, 0x81, 10, FZC_CLIENTS, 0, FZC_CLIENTS, 1,
	FZC_STATS, FZC_SHUTDOWN, FZC_RECV_MAX, FZC_CLIENT_RECV,
};

static void daemon_seed(const char *name, uint8_t geom, uint8_t bells, const uint8_t *ops,
			size_t nops)
{
	uint8_t buf[256];

	buf[0] = geom;
	buf[1] = bells;
	memcpy(buf + 2, ops, nops);
	put("daemon", name, NULL, 0, buf, 2 + nops, false);
}

/*
 * A topic's publisher (geometry bit 6) with a real subscriber and a raw
 * one: sends of every kind, the raw one's cursor moved and scribbled on,
 * then it leaves.
 */
static const uint8_t daemon_ops_topic[] = {
	FZC_RECV, 1, 10, FZC_RECV_MANY, 2, 20, FZC_CLIENT_RECV, FZC_WAIT, 0, 5,
	FZC_POKE_RING, 1, 0, 3, FZC_SEND, 0, 0, FZC_SEND_WAIT, 2, 30,
	FZC_POKE, 0x80, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
	FZC_RECV, 3, 200, FZC_CLIENT_RECV, FZC_SLOT, 1, 1, FZC_RECV, 1, 10,
	FZC_BELL, 1, FZC_RECV, 0, 40, FZC_CLIENT_RECV, FZC_SEND, 0, 0,
};

static void daemon_seeds(void)
{
	daemon_seed("seed-topic-reliable", 0xd1, 0x2, daemon_ops_topic, sizeof(daemon_ops_topic));
	daemon_seed("seed-topic-lossy", 0x51, 0x2, daemon_ops_topic, sizeof(daemon_ops_topic));
	daemon_seed("seed-client", 0x11, 0, daemon_ops_client, sizeof(daemon_ops_client));
	daemon_seed("seed-slots", 0x13, 0x2, daemon_ops_slots, sizeof(daemon_ops_slots));
	daemon_seed("seed-ctl", 0x04, 0x1, daemon_ops_ctl, sizeof(daemon_ops_ctl));
	daemon_seed("seed-events", 0x31, 0x1, daemon_ops_events, sizeof(daemon_ops_events));
	daemon_seed("crash-set-backpressure-nan", 0x11, 0, daemon_crash_nan,
		    sizeof(daemon_crash_nan));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-seeds DIR\n");
		return 2;
	}
	dir = argv[1];
	snprintf(chan, sizeof(chan), "fzseed-%d", (int)getpid());
	ring_seeds();
	connect_seeds();
	daemon_seeds();
	return 0;
}

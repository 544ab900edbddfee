/* SPDX-License-Identifier: MIT */
/*
 * The floor: the physical limit of a cross-core round trip, measured in
 * the same run as the rows it is compared with (`memlink-bench ring`, `rtt`
 * and `peers` each print it, and every round-trip row's p50 divided by it).
 *
 * Two processes on the benchmark's two pinned CPUs bounce one 64-bit word
 * in one shared cache line: the client writes a request, the server spins
 * until it sees it and writes the answer into the same word, the client
 * spins until it sees the answer. No payload, no index, no slot: only the
 * line going to the other core and back, which any round trip between two
 * cores pays at least once each way.
 *
 * One line, not a request line and an answer line: each hop is then one
 * ownership transfer of the line the other side is already watching, the
 * classic ping-pong. Two lines would move the same two transfers per round
 * trip, each side reading a line it never writes; one line is the least a
 * protocol can move, so that is what the floor measures.
 *
 * The word counts hops: round trip i (from 0) has request 2i+1 and answer
 * 2i+2. Each side checks that every value it sees is exactly the one after
 * the last it saw, and counts; the row is verified when both counted every
 * round trip in order.
 */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proc.h"
#include "stats.h"

/*
 * Shared bytes of one floor: the word's 64-byte line and its neighbour,
 * so that the adjacent-line prefetcher drags nothing else along with it.
 * The memory must be 128-aligned.
 */
#define FLOOR_BYTES 128u

/* Zero the word; before either side attaches (parent, or before a barrier). */
void floor_init(void *mem);

/* One process's end; the word's value survives across blocks of a run. */
struct floor_end {
	_Atomic uint64_t *word;
	struct spin spin;
	uint64_t seen;       /* last value this side wrote or read */
	uint64_t count;      /* round trips it took part in, all in order */
};

/* 0, or -EINVAL when mem is not 128-aligned. */
int floor_attach(struct floor_end *f, void *mem, const struct proc_ctx *ctx);

/*
 * n round trips as the client (role 0); each one's time goes to
 * samples[0..n) unless samples is NULL (warm-up). 0, -ECANCELED (the run
 * was aborted) or -EBADMSG (an answer out of order).
 */
int floor_client(struct floor_end *f, uint64_t n, uint32_t *samples);

/* n round trips as the server (role 1); 0, -ECANCELED or -EBADMSG. */
int floor_server(struct floor_end *f, uint64_t n);

/* A floor row of its own in a pair of processes (rtt, peers). */
struct floor_result {
	bool verified;
	char err[200];
	struct lat_summary lat;
	uint64_t round_trips;   /* timed ones */
	struct proc_usage use;  /* the client's, over the timed round trips */
};

/*
 * warm untimed round trips, then n timed, in the two processes of pp, over
 * the first FLOOR_BYTES of pp->user (which must be there). 0 when verified.
 */
int floor_run(struct proc_pair *pp, uint64_t warm, uint64_t n, unsigned timeout_s,
	      struct floor_result *out);

/* A round-trip row's p50 over the floor's; -1 when either is missing. */
double floor_ratio(uint64_t p50, uint64_t floor_p50);

#endif /* BENCH_FLOOR_H */

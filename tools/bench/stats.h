/* SPDX-License-Identifier: MIT */
/*
 * Latency percentiles from collected samples, and result output: the human
 * table and one JSON object per line.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct lat_summary {
	uint64_t n;
	uint64_t min, p50, p90, p99, p999, max;
	double mean;
};

/* Sort samples (ns) in place and summarise them; nearest-rank percentiles. */
void stats_summarize(uint32_t *samples, size_t n, struct lat_summary *out);

/* Median of v[0..n) (sorted in place); min and max to *lo and *hi. */
double stats_median(double *v, size_t n, double *lo, double *hi);

/* A message rate for a table: "1.23M", "45.6k", "789". */
const char *stats_rate(char *buf, size_t len, double v);

/* "key":"s", with s escaped for JSON. */
void stats_json_str(FILE *f, const char *key, const char *s);

/* One result row, as printed. */
struct bench_row {
	const char *bench;      /* "ring" */
	const char *transport;  /* "baseline-ring", "memlink" */
	const char *mode;       /* "busy" */
	const char *api;        /* "copy", "zerocopy" */
	const char *backend;    /* "shm" */
	unsigned payload;
	unsigned lanes;
	unsigned urgent_every;  /* ml_ring_opts.urgent_every; 0: strict reads */
	uint64_t msgs;          /* counted throughput messages, all rounds */
	unsigned rounds;        /* throughput rounds */
	double msgs_per_s;      /* median of the rounds */
	double msgs_per_s_min, msgs_per_s_max;
	const double *round_rates; /* msgs/s of each round, in run order */
	struct lat_summary rtt;
	double ratio_tput;      /* vs the baseline of the same payload; <0: none */
	double ratio_p50;
	double floor_ratio;     /* round-trip p50 / the floor's of the same run; <0: none */
	bool verified;
	size_t ring_bytes;      /* shared bytes of one ring (data area) */
	int cpu[2];             /* -1: not pinned */
	double cpu_share;       /* CPU time / wall time of the role that got less; <0: unknown */
	/*
	 * A slow consumer's rows (api "send_wait"): what it could take if
	 * messages were always there; 0: not such a row. Their cpu_share
	 * is the producer's.
	 */
	double limit_per_s;
	uint64_t preempted;     /* involuntary context switches, both roles */
	const char *error;      /* NULL when fine */
};

void stats_table_header(FILE *f);
void stats_table_row(FILE *f, const struct bench_row *r);
void stats_json_row(FILE *f, const struct bench_row *r);

#endif /* BENCH_STATS_H */

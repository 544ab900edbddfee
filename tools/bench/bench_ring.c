// SPDX-License-Identifier: MIT
/*
 * memlink-bench ring: two processes on one shared mapping, pinned to two
 * CPUs, busy-polling, for each payload size:
 *
 *   baseline-ring  the simplest fixed-slot SPSC ring (baseline_ring.c)
 *   memlink 1      one lane, ml_ring_write / ml_ring_read
 *   memlink 3      three lanes, a fixed 20/50/30 critical/high/low mix, read
 *                  strictly, and again with urgent_every = 16
 *   memlink 1 zc   one lane, reserve/commit and peek/release
 *   floor          round trips only: one cache line bounced between the
 *                  two CPUs (floor.h), the least any round trip can cost
 *
 * All of them live in one shared mapping and run inside one forked pair,
 * interleaved: round r of the throughput phase runs every transport once,
 * then round r+1, and likewise for the round-trip blocks (the floor's block
 * first in each round). On a shared or
 * virtual machine the speed of the two CPUs and of the link between them
 * drifts; interleaving makes every transport see the same drift, so the
 * ratios against baseline-ring stay side by side.
 *
 *  throughput  role 0 writes N messages as fast as it can (spinning with a
 *              pause on -EAGAIN), role 1 reads and checks every one; a round
 *              gives N / (last read - first write), CLOCK_MONOTONIC taken in
 *              both processes; the row shows the median round.
 *  round trip  role 0 sends a message on ring F, role 1 checks it and echoes
 *              it on ring B; every round trip is timed and kept, the
 *              percentiles come from all samples sorted; "x floor" is a
 *              row's p50 over the floor's of the same payload's run.
 *
 * Every message is checked on receipt the same way for every transport
 * (payload.h); a row is "verified" only if both roles checked every one of
 * its messages and the per-lane counts match.
 */
#include "bench_ring.h"

#include <errno.h>
#include <getopt.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_ring.h"
#include "clock.h"
#include "floor.h"
#include "memlink.h"
#include "payload.h"
#include "proc.h"
#include "stats.h"

#define RING_CAP (1u << 20)       /* memlink data bytes; the baseline matches it */
#define PRIO_SINGLE ML_PRIO_HIGH  /* what single-lane transports send */
#define MAX_PAYLOADS 16
#define MAX_ROUNDS 16
#define MAX_KINDS 5
#define FLOOR_K MAX_KINDS         /* the floor's place in a role's results */
#define ROWS_PER_PAYLOAD (MAX_KINDS + 1)
#define URGENT_EVERY 16           /* the batched three-lane row's ml_ring_opts.urgent_every */
#define ROW_TIMEOUT_S 900         /* hang guard for one payload, not a measurement */
#define RTT_BLOCK_WARM 1000       /* untimed round trips at the start of each block */

enum transport { T_BASELINE, T_MEMLINK };
enum api { API_COPY, API_ZC };

static const char *const transport_name[] = { "baseline-ring", "memlink" };
static const char *const api_name[] = { "copy", "zerocopy" };

/* What one row measures. The first kind is the baseline the others divide by. */
struct kind {
	enum transport t;
	enum api api;
	unsigned lanes;
	unsigned urgent_every;  /* three lanes: 0 = strict reads */
};

static const struct kind all_kinds[MAX_KINDS] = {
	{ T_BASELINE, API_COPY, 1, 0 },
	{ T_MEMLINK, API_COPY, 1, 0 },
	{ T_MEMLINK, API_COPY, 3, 0 },
	{ T_MEMLINK, API_COPY, 3, URGENT_EVERY },
	{ T_MEMLINK, API_ZC, 1, 0 },
};

/*
 * The three-lane mix: a repeating sequence of 10 priorities, 2 critical,
 * 5 high, 3 low (the 20/50/30 split of the lanes).
 */
#define MIX_LEN 10
static const int mix_pattern[MIX_LEN] = { 1, 0, 1, 2, 1, 1, 2, 0, 1, 2 };

/* ---- run description (built by the parent, inherited by both children) - */

enum { RING_T, RING_F, RING_B, NRINGS }; /* throughput, forward, back */

struct kind_run {
	struct kind k;
	size_t bl_slots;          /* baseline: slot count */
	size_t ring_len;          /* shared bytes of one ring */
	size_t off[NRINGS];       /* ring offsets in the user area */
};

struct ring_run {
	size_t payload;
	unsigned nkinds;
	struct kind_run kind[MAX_KINDS];
	unsigned rounds;              /* throughput rounds */
	uint64_t tput_warm;           /* untimed messages before round 0 */
	uint64_t tput_msgs;           /* per round */
	unsigned rtt_rounds;          /* round-trip blocks */
	uint64_t rtt_warm;            /* untimed round trips before block 0 */
	uint64_t rtt_block;           /* timed round trips per block */
	uint32_t mix_step[MIX_LEN];   /* seq -> next seq of the same lane */
	struct payload pl;
};

/* The benchmark's own shared lines, at the start of the user area. */
struct ring_shared {
	alignas(128) _Atomic uint64_t t0_ns; /* first write of the current round */
	alignas(128) unsigned char floor[FLOOR_BYTES];
};

#define SHARED_LEN 4096u
_Static_assert(sizeof(struct ring_shared) <= SHARED_LEN, "shared lines fit");

struct kind_result {
	uint32_t ok;                   /* this role checked all it had to */
	uint64_t checked;              /* messages it verified */
	uint64_t tput_msgs;            /* role 1 */
	double round_rate[MAX_ROUNDS]; /* role 1: msgs/s of each round */
	struct lat_summary rtt;        /* role 0 */
	struct proc_usage usage;       /* over this kind's timed phases */
	char err[256];
};

struct role_result {
	char err[256];                 /* a failure not tied to one kind */
	struct kind_result kind[MAX_KINDS + 1]; /* [FLOOR_K]: the floor */
};

_Static_assert(sizeof(struct role_result) <= PROC_RESULT_MAX, "result fits");

static inline int prio_for(unsigned lanes, uint64_t seq)
{
	return lanes == 3 ? mix_pattern[seq % MIX_LEN] : PRIO_SINGLE;
}

/* How many of the first n sequence numbers go to lane `prio`. */
static uint64_t mix_count(uint64_t n, int prio)
{
	uint64_t c = 0, per = 0;

	for (unsigned i = 0; i < MIX_LEN; i++) {
		if (mix_pattern[i] != prio)
			continue;
		per++;
		if (i < n % MIX_LEN)
			c++;
	}
	return n / MIX_LEN * per + c;
}

static void mix_steps(uint32_t step[MIX_LEN])
{
	for (unsigned i = 0; i < MIX_LEN; i++) {
		unsigned d = 1;

		while (mix_pattern[(i + d) % MIX_LEN] != mix_pattern[i])
			d++;
		step[i] = d;
	}
}

/* Record the first failure (of kind k, or of the role when k < 0); abort. */
static int fail(const struct proc_ctx *ctx, int k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(const struct proc_ctx *ctx, int k, const char *fmt, ...)
{
	struct role_result *res = ctx->result;
	char *err = k >= 0 ? res->kind[k].err : res->err;
	size_t len = k >= 0 ? sizeof(res->kind[k].err) : sizeof(res->err);
	va_list ap;

	if (!err[0]) {
		int n = snprintf(err, len, "%s: ", ctx->role ? "reader" : "writer");

		va_start(ap, fmt);
		vsnprintf(err + n, len - (size_t)n, fmt, ap);
		va_end(ap);
	}
	if (k >= 0)
		res->kind[k].ok = 0;
	proc_abort(ctx);
	return -1;
}

/* ---- one end of a ring, for any transport ------------------------------ */

struct ep {
	enum transport t;
	enum api api;
	ml_ring *ml;
	struct bl_ring bl;
	unsigned char *buf;       /* receive buffer for copying reads */
	size_t bufcap;
	struct spin spin;
};

/* Send len bytes from src; spin while full. 0, -ECANCELED or -errno. */
static inline int ep_send(struct ep *e, int prio, const void *src, size_t len)
{
	void *dst;
	int rc;

	if (e->t == T_BASELINE) {
		while ((rc = bl_ring_write(&e->bl, src, len)) == -EAGAIN)
			if (!spin_wait(&e->spin))
				return -ECANCELED;
		return rc;
	}
	if (e->api == API_COPY) {
		while ((rc = ml_ring_write(e->ml, prio, src, len)) == -EAGAIN)
			if (!spin_wait(&e->spin))
				return -ECANCELED;
		return rc;
	}
	while ((rc = ml_ring_reserve(e->ml, prio, len, &dst)) == -EAGAIN)
		if (!spin_wait(&e->spin))
			return -ECANCELED;
	if (rc)
		return rc;
	if (len)
		memcpy(dst, src, len);
	return ml_ring_commit(e->ml, len);
}

/*
 * Wait for the next message: returns its length and sets *prio and *data
 * (valid until ep_done()); -ECANCELED or -errno on failure.
 */
static inline int ep_recv(struct ep *e, int *prio, const void **data)
{
	int rc;

	if (e->t == T_BASELINE) {
		while ((rc = bl_ring_read(&e->bl, e->buf, e->bufcap)) == -EAGAIN)
			if (!spin_wait(&e->spin))
				return -ECANCELED;
		*prio = PRIO_SINGLE;
		*data = e->buf;
		return rc;
	}
	if (e->api == API_COPY) {
		while ((rc = ml_ring_read(e->ml, prio, e->buf, e->bufcap)) == -EAGAIN)
			if (!spin_wait(&e->spin))
				return -ECANCELED;
		*data = e->buf;
		return rc;
	}
	while ((rc = ml_ring_peek(e->ml, prio, data)) == -EAGAIN)
		if (!spin_wait(&e->spin))
			return -ECANCELED;
	return rc;
}

static inline void ep_done(struct ep *e)
{
	if (e->t == T_MEMLINK && e->api == API_ZC)
		ml_ring_release(e->ml);
}

static int ep_attach(struct ep *e, const struct ring_run *run, const struct kind_run *kr,
		     const struct proc_ctx *ctx, int which)
{
	unsigned char *mem = (unsigned char *)ctx->user + kr->off[which];

	memset(e, 0, sizeof(*e));
	e->t = kr->k.t;
	e->api = kr->k.api;
	e->spin.ctx = ctx;
	e->bufcap = (run->payload + 63) / 64 * 64 + 64;
	if (posix_memalign((void **)&e->buf, 64, e->bufcap))
		return -ENOMEM;
	memset(e->buf, 0, e->bufcap);
	if (kr->k.t == T_BASELINE)
		return bl_ring_attach(&e->bl, mem, kr->ring_len, kr->bl_slots, run->payload);
	return ml_ring_attach(&e->ml, mem, kr->ring_len);
}

static void ep_detach(struct ep *e)
{
	ml_ring_free(e->ml);
	free(e->buf);
	e->ml = NULL;
	e->buf = NULL;
}

/* ---- receiver checks ---------------------------------------------------- */

struct rx_state {
	uint64_t next[ML_PRIO_COUNT];  /* next sequence number expected per lane */
	uint64_t count[ML_PRIO_COUNT];
};

static void rx_init(struct rx_state *st, unsigned lanes)
{
	memset(st, 0, sizeof(*st));
	if (lanes == 1)
		return;
	for (int p = 0; p < ML_PRIO_COUNT; p++) {
		unsigned i = 0;

		while (mix_pattern[i] != p)
			i++;
		st->next[p] = i;
	}
}

/* Check one received message; its sequence number goes to *seq. */
static inline bool rx_check(struct rx_state *st, const struct ring_run *run, unsigned lanes,
			    int prio, const void *data, int len, uint64_t *seq)
{
	unsigned lane;

	if (lanes == 1) {
		if (prio != PRIO_SINGLE)
			return false;
		lane = 0;
		*seq = st->next[0]++;
	} else {
		if (prio < ML_PRIO_CRITICAL || prio > ML_PRIO_LOW)
			return false;
		lane = (unsigned)prio;
		*seq = st->next[lane];
		st->next[lane] += run->mix_step[*seq % MIX_LEN];
	}
	st->count[lane]++;
	return len >= 0 && payload_check(&run->pl, data, (size_t)len, *seq);
}

/* After `total` messages: did every lane get exactly its share? */
static bool rx_counts_ok(const struct rx_state *st, unsigned lanes, uint64_t total)
{
	if (lanes == 1)
		return st->count[0] == total;
	for (int p = 0; p < ML_PRIO_COUNT; p++)
		if (st->count[p] != mix_count(total, p))
			return false;
	return true;
}

/* ---- the two roles ------------------------------------------------------ */

/* Per-kind state of one child. */
struct side {
	struct ep ep[NRINGS];
	uint64_t tx_seq;          /* writer: next throughput sequence number */
	struct rx_state rx;       /* reader: throughput checks */
	uint64_t rtt_seq;         /* both: next round-trip sequence number */
	uint32_t *samples;        /* writer: round-trip times, ns */
	uint64_t nsamples;
};

static int produce(const struct proc_ctx *ctx, struct ring_run *run, int k, struct side *s,
		   uint64_t n)
{
	unsigned lanes = run->kind[k].k.lanes;

	for (uint64_t i = 0; i < n; i++, s->tx_seq++) {
		int rc = ep_send(&s->ep[RING_T], prio_for(lanes, s->tx_seq),
				 payload_stamp(&run->pl, s->tx_seq), run->payload);

		if (rc == -ECANCELED)
			return fail(ctx, k, "aborted by the other side");
		if (rc)
			return fail(ctx, k, "write failed: %s", ml_strerror(rc));
	}
	return 0;
}

static int consume(const struct proc_ctx *ctx, struct ring_run *run, int k, struct side *s,
		   uint64_t n)
{
	struct kind_result *res = &((struct role_result *)ctx->result)->kind[k];
	unsigned lanes = run->kind[k].k.lanes;
	struct ep *e = &s->ep[RING_T];

	for (uint64_t i = 0; i < n; i++) {
		const void *data;
		uint64_t seq = 0;
		int prio = -1;
		int len = ep_recv(e, &prio, &data);

		if (len == -ECANCELED)
			return fail(ctx, k, "aborted by the other side");
		if (len < 0)
			return fail(ctx, k, "read failed: %s", ml_strerror(len));
		if (!rx_check(&s->rx, run, lanes, prio, data, len, &seq))
			return fail(ctx, k, "message %llu (prio %d, %d bytes) failed its check",
				    (unsigned long long)seq, prio, len);
		ep_done(e);
		res->checked++;
	}
	return 0;
}

/* Client side of `n` round trips; timed ones go to s->samples when `keep`. */
static int rtt_client(const struct proc_ctx *ctx, struct ring_run *run, int k, struct side *s,
		      uint64_t n, bool keep)
{
	struct kind_result *res = &((struct role_result *)ctx->result)->kind[k];
	unsigned lanes = run->kind[k].k.lanes;
	struct ep *fwd = &s->ep[RING_F], *back = &s->ep[RING_B];

	for (uint64_t i = 0; i < n; i++, s->rtt_seq++) {
		uint64_t seq = s->rtt_seq, t0, t1;
		int prio = prio_for(lanes, seq), rprio = -1, len, rc;
		const void *src = payload_stamp(&run->pl, seq), *data;

		t0 = now_ns();
		rc = ep_send(fwd, prio, src, run->payload);
		if (rc == -ECANCELED)
			return fail(ctx, k, "aborted by the other side");
		if (rc)
			return fail(ctx, k, "request write failed: %s", ml_strerror(rc));
		len = ep_recv(back, &rprio, &data);
		t1 = now_ns();
		if (len == -ECANCELED)
			return fail(ctx, k, "aborted by the other side");
		if (len < 0)
			return fail(ctx, k, "echo read failed: %s", ml_strerror(len));
		if (rprio != prio || !payload_check(&run->pl, data, (size_t)len, seq))
			return fail(ctx, k, "echo %llu (prio %d, %d bytes) failed its check",
				    (unsigned long long)seq, rprio, len);
		ep_done(back);
		res->checked++;
		if (keep)
			s->samples[s->nsamples++] = t1 - t0 > UINT32_MAX ? UINT32_MAX : (uint32_t)(t1 - t0);
	}
	return 0;
}

/* Server side of `n` round trips: check each request, echo it back. */
static int rtt_server(const struct proc_ctx *ctx, struct ring_run *run, int k, struct side *s,
		      uint64_t n)
{
	struct kind_result *res = &((struct role_result *)ctx->result)->kind[k];
	unsigned lanes = run->kind[k].k.lanes;
	struct ep *fwd = &s->ep[RING_F], *back = &s->ep[RING_B];

	for (uint64_t i = 0; i < n; i++, s->rtt_seq++) {
		uint64_t seq = s->rtt_seq;
		const void *data;
		int prio = -1, len = ep_recv(fwd, &prio, &data), rc;

		if (len == -ECANCELED)
			return fail(ctx, k, "aborted by the other side");
		if (len < 0)
			return fail(ctx, k, "request read failed: %s", ml_strerror(len));
		if (prio != prio_for(lanes, seq) || !payload_check(&run->pl, data, (size_t)len, seq))
			return fail(ctx, k, "request %llu (prio %d, %d bytes) failed its check",
				    (unsigned long long)seq, prio, len);
		rc = ep_send(back, prio, data, (size_t)len);
		if (rc == -ECANCELED)
			return fail(ctx, k, "aborted by the other side");
		if (rc)
			return fail(ctx, k, "echo write failed: %s", ml_strerror(rc));
		ep_done(fwd);
		res->checked++;
	}
	return 0;
}

#define BARRIER(ctx)                                                    \
	do {                                                            \
		if (!proc_barrier(ctx))                                 \
			return fail(ctx, -1, "aborted by the other side"); \
	} while (0)

/*
 * The floor's block of a round: warm untimed round trips, then rtt_block
 * timed ones into samples (client), or all of them answered (samples NULL:
 * server).
 */
static int floor_block(const struct proc_ctx *ctx, const struct ring_run *run,
		       struct floor_end *fl, uint64_t warm, uint32_t *samples)
{
	struct kind_result *kr = &((struct role_result *)ctx->result)->kind[FLOOR_K];
	struct proc_usage u0, u1;
	int rc;

	BARRIER(ctx);
	if (samples) {
		rc = floor_client(fl, warm, NULL);
		proc_usage_mark(&u0);
		if (!rc)
			rc = floor_client(fl, run->rtt_block, samples);
	} else {
		proc_usage_mark(&u0);
		rc = floor_server(fl, warm + run->rtt_block);
	}
	proc_usage_mark(&u1);
	proc_usage_add(&kr->usage, &u0, &u1);
	kr->checked = fl->count;
	if (rc == -ECANCELED)
		return fail(ctx, FLOOR_K, "aborted by the other side");
	if (rc)
		return fail(ctx, FLOOR_K, "the line's value after %llu is out of order",
			    (unsigned long long)fl->seen);
	return 0;
}

/* Round trips of every kind's blocks, warm-ups included: the floor's too. */
static uint64_t rtt_total(const struct ring_run *run)
{
	return run->rtt_warm + (uint64_t)(run->rtt_rounds - 1) * RTT_BLOCK_WARM +
	       (uint64_t)run->rtt_rounds * run->rtt_block;
}

/* Role 0: throughput writer, then round-trip client. */
static int role_writer(const struct proc_ctx *ctx, struct ring_run *run, struct side *side,
		       struct floor_end *fl, uint32_t *fl_samples)
{
	struct role_result *res = ctx->result;
	struct ring_shared *sh = ctx->user;

	for (unsigned k = 0; k < run->nkinds; k++) {
		BARRIER(ctx);
		if (produce(ctx, run, (int)k, &side[k], run->tput_warm))
			return -1;
	}
	for (unsigned r = 0; r < run->rounds; r++) {
		for (unsigned k = 0; k < run->nkinds; k++) {
			struct proc_usage u0, u1;

			BARRIER(ctx); /* the reader has read everything before */
			proc_usage_mark(&u0);
			atomic_store_explicit(&sh->t0_ns, now_ns(), memory_order_relaxed);
			if (produce(ctx, run, (int)k, &side[k], run->tput_msgs))
				return -1;
			proc_usage_mark(&u1);
			proc_usage_add(&res->kind[k].usage, &u0, &u1);
		}
	}
	for (unsigned r = 0; r < run->rtt_rounds; r++) {
		if (floor_block(ctx, run, fl, r == 0 ? run->rtt_warm : RTT_BLOCK_WARM,
				fl_samples + (size_t)r * run->rtt_block))
			return -1;
		for (unsigned k = 0; k < run->nkinds; k++) {
			uint64_t warm = r == 0 ? run->rtt_warm : RTT_BLOCK_WARM;
			struct proc_usage u0, u1;

			BARRIER(ctx);
			if (rtt_client(ctx, run, (int)k, &side[k], warm, false))
				return -1;
			proc_usage_mark(&u0);
			if (rtt_client(ctx, run, (int)k, &side[k], run->rtt_block, true))
				return -1;
			proc_usage_mark(&u1);
			proc_usage_add(&res->kind[k].usage, &u0, &u1);
		}
	}
	for (unsigned k = 0; k < run->nkinds; k++) {
		struct kind_result *kr = &res->kind[k];
		uint64_t want = (uint64_t)run->rtt_rounds * run->rtt_block;
		uint64_t echoes = run->rtt_warm + (uint64_t)(run->rtt_rounds - 1) * RTT_BLOCK_WARM + want;

		stats_summarize(side[k].samples, side[k].nsamples, &kr->rtt);
		kr->ok = side[k].nsamples == want && kr->checked == echoes;
		if (!kr->ok)
			return fail(ctx, (int)k, "checked %llu echoes, expected %llu",
				    (unsigned long long)kr->checked, (unsigned long long)echoes);
	}
	{
		struct kind_result *kr = &res->kind[FLOOR_K];

		stats_summarize(fl_samples, (size_t)run->rtt_rounds * run->rtt_block, &kr->rtt);
		kr->ok = fl->count == rtt_total(run);
		if (!kr->ok)
			return fail(ctx, FLOOR_K, "%llu answers in order, expected %llu",
				    (unsigned long long)fl->count, (unsigned long long)rtt_total(run));
	}
	return 0;
}

/* Role 1: throughput reader, then round-trip echo server. */
static int role_reader(const struct proc_ctx *ctx, struct ring_run *run, struct side *side,
		       struct floor_end *fl)
{
	struct role_result *res = ctx->result;
	struct ring_shared *sh = ctx->user;
	uint64_t tput_total = run->tput_warm + (uint64_t)run->rounds * run->tput_msgs;

	for (unsigned k = 0; k < run->nkinds; k++) {
		rx_init(&side[k].rx, run->kind[k].k.lanes);
		BARRIER(ctx);
		if (consume(ctx, run, (int)k, &side[k], run->tput_warm))
			return -1;
	}
	for (unsigned r = 0; r < run->rounds; r++) {
		for (unsigned k = 0; k < run->nkinds; k++) {
			struct kind_result *kr = &res->kind[k];
			struct proc_usage u0, u1;
			uint64_t t1;

			BARRIER(ctx);
			proc_usage_mark(&u0);
			if (consume(ctx, run, (int)k, &side[k], run->tput_msgs))
				return -1;
			t1 = now_ns() - atomic_load_explicit(&sh->t0_ns, memory_order_relaxed);
			proc_usage_mark(&u1);
			proc_usage_add(&kr->usage, &u0, &u1);
			kr->round_rate[r] = (double)run->tput_msgs * 1e9 / (double)(t1 ? t1 : 1);
			kr->tput_msgs += run->tput_msgs;
		}
	}
	for (unsigned k = 0; k < run->nkinds; k++)
		if (!rx_counts_ok(&side[k].rx, run->kind[k].k.lanes, tput_total))
			return fail(ctx, (int)k, "per-lane message counts do not match");
	for (unsigned r = 0; r < run->rtt_rounds; r++) {
		if (floor_block(ctx, run, fl, r == 0 ? run->rtt_warm : RTT_BLOCK_WARM, NULL))
			return -1;
		for (unsigned k = 0; k < run->nkinds; k++) {
			uint64_t warm = r == 0 ? run->rtt_warm : RTT_BLOCK_WARM;
			struct proc_usage u0, u1;

			BARRIER(ctx);
			proc_usage_mark(&u0);
			if (rtt_server(ctx, run, (int)k, &side[k], warm + run->rtt_block))
				return -1;
			proc_usage_mark(&u1);
			proc_usage_add(&res->kind[k].usage, &u0, &u1);
		}
	}
	for (unsigned k = 0; k < run->nkinds; k++) {
		struct kind_result *kr = &res->kind[k];

		kr->ok = kr->checked == tput_total + rtt_total(run);
		if (!kr->ok)
			return fail(ctx, (int)k, "checked %llu messages, expected %llu",
				    (unsigned long long)kr->checked,
				    (unsigned long long)(tput_total + rtt_total(run)));
	}
	res->kind[FLOOR_K].ok = fl->count == rtt_total(run);
	if (!res->kind[FLOOR_K].ok)
		return fail(ctx, FLOOR_K, "%llu requests in order, expected %llu",
			    (unsigned long long)fl->count, (unsigned long long)rtt_total(run));
	return 0;
}

static int ring_role(const struct proc_ctx *ctx, void *arg)
{
	struct ring_run *run = arg;
	struct side side[MAX_KINDS];
	struct ring_shared *sh = ctx->user;
	size_t nfl = (size_t)run->rtt_rounds * run->rtt_block;
	uint32_t *fl_samples = NULL;
	struct floor_end fl;
	int rc = 0;

	memset(side, 0, sizeof(side));
	rc = floor_attach(&fl, sh->floor, ctx);
	if (rc)
		rc = fail(ctx, FLOOR_K, "attach the floor's line: %s", ml_strerror(rc));
	/* Touched now, so that no page fault lands in a sample. */
	if (!rc && ctx->role == 0 && !(fl_samples = malloc((nfl ? nfl : 1) * sizeof(uint32_t))))
		rc = fail(ctx, FLOOR_K, "out of memory");
	if (fl_samples)
		memset(fl_samples, 0, (nfl ? nfl : 1) * sizeof(uint32_t));
	for (unsigned k = 0; k < run->nkinds && !rc; k++) {
		for (int i = 0; i < NRINGS && !rc; i++) {
			rc = ep_attach(&side[k].ep[i], run, &run->kind[k], ctx, i);
			if (rc)
				rc = fail(ctx, (int)k, "attach ring %d: %s", i, ml_strerror(rc));
		}
		if (!rc && ctx->role == 0) {
			size_t n = (size_t)run->rtt_rounds * run->rtt_block;

			/* Touched now, so that no page fault lands in a sample. */
			side[k].samples = malloc((n ? n : 1) * sizeof(uint32_t));
			if (!side[k].samples)
				rc = fail(ctx, (int)k, "out of memory");
			else
				memset(side[k].samples, 0, (n ? n : 1) * sizeof(uint32_t));
		}
	}
	if (!rc)
		rc = ctx->role == 0 ? role_writer(ctx, run, side, &fl, fl_samples) :
				      role_reader(ctx, run, side, &fl);
	free(fl_samples);
	for (unsigned k = 0; k < run->nkinds; k++) {
		for (int i = 0; i < NRINGS; i++)
			ep_detach(&side[k].ep[i]);
		free(side[k].samples);
	}
	return rc;
}

/* ---- the parent: settings, rings, output -------------------------------- */

struct ring_opts {
	bool quick, json, zerocopy;
	uint64_t msgs, samples;
	unsigned rounds;
	unsigned payload[MAX_PAYLOADS];
	unsigned npayloads;
};

static size_t rec_bytes(size_t payload)
{
	return 8 + (payload + 7) / 8 * 8;
}

static unsigned opt_rounds(const struct ring_opts *o)
{
	return o->rounds ? o->rounds : (o->quick ? 3 : 5);
}

static uint64_t opt_samples(const struct ring_opts *o)
{
	return o->samples ? o->samples : (o->quick ? 30000 : 200000);
}

/* Counted throughput messages of one row: a byte budget, capped. */
static uint64_t default_msgs(const struct ring_opts *o, size_t payload)
{
	uint64_t cap = o->quick ? 3000000ull : 12000000ull;
	uint64_t budget = o->quick ? (256ull << 20) : (3ull << 29);
	uint64_t n = budget / rec_bytes(payload);

	return n < cap ? n : cap;
}

static void ring_geometry(struct kind_run *kr, size_t payload)
{
	if (kr->k.t == T_BASELINE) {
		kr->bl_slots = bl_ring_slots_for(RING_CAP, payload);
		kr->ring_len = bl_ring_mem_size(kr->bl_slots, payload);
	} else {
		kr->ring_len = ml_ring_mem_size(RING_CAP);
	}
}

static size_t ring_data_bytes(const struct kind_run *kr, size_t payload)
{
	return kr->k.t == T_BASELINE ? kr->bl_slots * bl_ring_slot_size(payload) : RING_CAP;
}

static void fill_run(struct ring_run *run, const struct ring_opts *o, size_t payload)
{
	uint64_t lap = RING_CAP / rec_bytes(payload); /* records in one pass of the ring */
	uint64_t msgs = o->msgs ? o->msgs : default_msgs(o, payload);
	uint64_t samples = opt_samples(o);
	size_t off = SHARED_LEN;

	memset(run, 0, sizeof(*run));
	run->payload = payload;
	for (unsigned k = 0; k < MAX_KINDS; k++) {
		struct kind_run *kr = &run->kind[run->nkinds];

		if (all_kinds[k].api == API_ZC && !o->zerocopy)
			continue;
		kr->k = all_kinds[k];
		ring_geometry(kr, payload);
		for (int i = 0; i < NRINGS; i++) {
			kr->off[i] = off;
			off += (kr->ring_len + 4095) / 4096 * 4096;
		}
		run->nkinds++;
	}
	run->rounds = opt_rounds(o);
	run->tput_msgs = msgs / run->rounds ? msgs / run->rounds : 1;
	run->tput_warm = 2 * lap > 20000 ? 2 * lap : 20000;
	if (o->quick && run->tput_warm > 100000)
		run->tput_warm = 100000;
	run->rtt_rounds = opt_rounds(o);
	run->rtt_block = samples / run->rtt_rounds ? samples / run->rtt_rounds : 1;
	run->rtt_warm = lap > 10000 ? lap : 10000;
	if (o->quick && run->rtt_warm > 20000)
		run->rtt_warm = 20000;
	mix_steps(run->mix_step);
}

static size_t shared_len(const struct ring_run *run)
{
	const struct kind_run *last = &run->kind[run->nkinds - 1];

	return last->off[NRINGS - 1] + last->ring_len;
}

/* Lay out every ring of a run, and the floor's line, in the shared area. */
static int init_rings(const struct ring_run *run, void *user)
{
	floor_init(((struct ring_shared *)user)->floor);
	for (unsigned k = 0; k < run->nkinds; k++) {
		const struct kind_run *kr = &run->kind[k];

		for (int i = 0; i < NRINGS; i++) {
			unsigned char *mem = (unsigned char *)user + kr->off[i];
			int rc;

			if (kr->k.t == T_BASELINE) {
				struct bl_ring h;

				rc = bl_ring_init(&h, mem, kr->ring_len, kr->bl_slots, run->payload);
			} else {
				struct ml_ring_opts mo = { .size = sizeof(mo) };
				ml_ring *h = NULL;

				mo.flags = kr->k.lanes == 3 ? ML_RING_LANES3 : 0;
				mo.urgent_every = kr->k.urgent_every;
				mo.max_msg = run->payload > ML_RING_DEFAULT_MAX_MSG ?
						     (uint32_t)run->payload : 0;
				rc = ml_ring_init(&h, mem, kr->ring_len, RING_CAP, &mo);
				ml_ring_free(h);
			}
			if (rc)
				return rc;
		}
	}
	return 0;
}

/*
 * Run every kind for one payload: rows[0..nkinds) are the kinds, rows[nkinds]
 * the floor measured beside them (*nrows counts it). false: not all verified.
 */
static bool run_payload(const struct ring_opts *o, size_t payload, struct bench_row *rows,
			unsigned *nrows, char (*errs)[1024], double (*round_rates)[MAX_ROUNDS])
{
	struct ring_run run;
	struct proc_pair pp;
	const char *why = NULL;
	char setup_err[128] = "";
	bool all_ok = true;
	int rc;

	fill_run(&run, o, payload);
	*nrows = run.nkinds + 1;
	for (unsigned k = 0; k <= run.nkinds; k++) {
		struct bench_row *row = &rows[k];

		memset(row, 0, sizeof(*row));
		row->bench = "ring";
		row->mode = "busy";
		row->backend = "shm";
		row->payload = (unsigned)payload;
		row->ratio_tput = row->ratio_p50 = row->floor_ratio = -1;
		row->cpu[0] = row->cpu[1] = -1;
		if (k == run.nkinds) {
			/* It carries no payload: its payload is the rows it ran beside. */
			row->transport = "floor";
			row->api = "line";
			row->lanes = 1;
			row->ring_bytes = 64;
			continue;
		}
		row->transport = transport_name[run.kind[k].k.t];
		row->api = api_name[run.kind[k].k.api];
		row->lanes = run.kind[k].k.lanes;
		row->urgent_every = run.kind[k].k.urgent_every;
		row->ring_bytes = ring_data_bytes(&run.kind[k], payload);
		row->rounds = run.rounds;
	}

	rc = payload_init(&run.pl, payload);
	if (rc) {
		snprintf(setup_err, sizeof(setup_err), "out of memory");
		goto setup_failed;
	}
	rc = proc_pair_init(&pp, shared_len(&run));
	if (rc) {
		snprintf(setup_err, sizeof(setup_err), "shared mapping: %s", ml_strerror(rc));
		payload_free(&run.pl);
		goto setup_failed;
	}
	rc = init_rings(&run, pp.user);
	if (rc)
		snprintf(setup_err, sizeof(setup_err), "ring init: %s", ml_strerror(rc));
	else
		rc = proc_pair_run(&pp, ring_role, &run, ROW_TIMEOUT_S, &why);

	{
		const struct role_result *w = proc_result(&pp, 0), *r = proc_result(&pp, 1);

		for (unsigned k = 0; k <= run.nkinds; k++) {
			unsigned ri = k < run.nkinds ? k : FLOOR_K;
			const struct kind_result *wk = &w->kind[ri], *rk = &r->kind[ri];
			struct bench_row *row = &rows[k];
			double rates[MAX_ROUNDS];
			const char *parts[5];
			size_t np = 0, len = 0;

			row->cpu[0] = pp.cpu[0];
			row->cpu[1] = pp.cpu[1];
			row->msgs = rk->tput_msgs;
			row->rtt = wk->rtt;
			row->cpu_share = -1;
			if (wk->usage.wall_ns && rk->usage.wall_ns) {
				double a = (double)wk->usage.cpu_ns / (double)wk->usage.wall_ns;
				double b = (double)rk->usage.cpu_ns / (double)rk->usage.wall_ns;

				row->cpu_share = a < b ? a : b;
				if (row->cpu_share > 1)
					row->cpu_share = 1;
			}
			row->preempted = wk->usage.preempted + rk->usage.preempted;
			if (k < run.nkinds && rk->tput_msgs == (uint64_t)run.rounds * run.tput_msgs) {
				memcpy(rates, rk->round_rate, sizeof(rates));
				memcpy(round_rates[k], rk->round_rate, sizeof(rates));
				row->round_rates = round_rates[k];
				row->msgs_per_s = stats_median(rates, run.rounds, &row->msgs_per_s_min,
							       &row->msgs_per_s_max);
			}
			row->verified = !rc && wk->ok && rk->ok;
			if (row->verified)
				continue;
			all_ok = false;
			if (setup_err[0])
				parts[np++] = setup_err;
			if (wk->err[0])
				parts[np++] = wk->err;
			if (rk->err[0])
				parts[np++] = rk->err;
			if (!wk->err[0] && !rk->err[0]) {
				parts[np++] = "not finished: the run stopped when another transport failed";
				if (w->err[0] || r->err[0])
					parts[np++] = w->err[0] ? w->err : r->err;
			}
			if (why)
				parts[np++] = why;
			errs[k][0] = 0;
			for (size_t i = 0; i < np && len + 3 < sizeof(errs[k]); i++)
				len += (size_t)snprintf(errs[k] + len, sizeof(errs[k]) - len, "%s%s",
						       i ? "; " : "", parts[i]);
			if (len >= sizeof(errs[k]))
				len = sizeof(errs[k]) - 1;
			row->error = np ? errs[k] : "not verified";
		}
	}
	proc_pair_destroy(&pp);
	payload_free(&run.pl);
	return all_ok;

setup_failed:
	for (unsigned k = 0; k <= run.nkinds; k++) {
		snprintf(errs[k], sizeof(errs[k]), "%s", setup_err);
		rows[k].error = errs[k];
	}
	return false;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_payloads(const char *s, struct ring_opts *o)
{
	int n = payload_parse_sizes(s, o->payload, MAX_PAYLOADS, 1ul << 20);

	o->npayloads = n > 0 ? (unsigned)n : 0;
	return n > 0 ? 0 : -1;
}

void bench_ring_usage(FILE *f)
{
	fprintf(f,
		"usage: memlink-bench ring [--quick] [--json] [--msgs N] [--samples N]\n"
		"                          [--rounds N] [--payload N,...] [--no-zerocopy]\n"
		"\n"
		"  Two processes on one shared mapping, pinned to two CPUs, busy-polling.\n"
		"  For each payload: throughput (msgs/s) and round-trip latency (p50, p99,\n"
		"  p99.9) of baseline-ring (the simplest fixed-slot SPSC ring), memlink with\n"
		"  one lane, memlink with three lanes (a 20/50/30 critical/high/low mix)\n"
		"  and memlink one lane zero-copy, run interleaved round by round in one\n"
		"  pair of processes; ratios are against baseline-ring of the same payload.\n"
		"  The floor row: the same two processes bounce one shared cache line (no\n"
		"  payload; its payload column names the rows it ran beside), interleaved\n"
		"  with their round-trip blocks; x floor: each row's p50 / the floor's.\n"
		"  Every message is checked by its receiver, every bounce of the line too.\n"
		"\n"
		"  --quick          fewer messages (a few seconds in all)\n"
		"  --json           one JSON object per row on stdout, nothing else\n"
		"  --msgs N         counted throughput messages per row (default by\n"
		"                   payload: min(12M, 1.5 GiB of records); quick 3M, 256 MiB)\n"
		"  --samples N      timed round trips per row (default 200000; quick 30000)\n"
		"  --rounds N       interleaved rounds, 1..%d (default 5; quick 3); msgs/s\n"
		"                   is the median round\n"
		"  --payload LIST   payload sizes in bytes (default 0,64,256,1024,4096)\n"
		"  --no-zerocopy    leave out the zero-copy rows\n"
		"\n"
		"  Exit status 1 if any row failed verification, 2 on bad usage.\n",
		MAX_ROUNDS);
}

static const struct bench_row *find_row(const struct bench_row *rows, size_t nrows,
					unsigned payload, const char *transport, unsigned lanes,
					unsigned urgent_every)
{
	for (size_t i = 0; i < nrows; i++)
		if (rows[i].payload == payload && !strcmp(rows[i].transport, transport) &&
		    rows[i].lanes == lanes && rows[i].urgent_every == urgent_every &&
		    strcmp(rows[i].api, "zerocopy") && rows[i].verified)
			return &rows[i];
	return NULL;
}

static void print_targets(const struct ring_opts *o, const struct bench_row *rows, size_t nrows)
{
	const struct bench_row *bl64 = find_row(rows, nrows, 64, "baseline-ring", 1, 0);
	const struct bench_row *ml64 = find_row(rows, nrows, 64, "memlink", 1, 0);
	const struct bench_row *fl64 = find_row(rows, nrows, 64, "floor", 1, 0);
	double share = 1;

	for (size_t i = 0; i < nrows; i++)
		if (rows[i].cpu_share >= 0 && rows[i].cpu_share < share)
			share = rows[i].cpu_share;
	printf("\ntargets (ratios from this run):\n");
	if (nrows && rows[0].cpu[0] < 0)
		printf("  (unpinned on one CPU: these ratios mean nothing)\n");
	else if (share < 0.9)
		printf("  (other work shared these CPUs: a role got as little as %.0f%% of its CPU;\n"
		       "   ratios are less reliable, see the cpu column)\n", share * 100);
	if (fl64 && bl64 && ml64)
		printf("  64 B round trip p50 / the floor (%llu ns): baseline-ring %.2fx, "
		       "memlink 1-lane %.2fx\n", (unsigned long long)fl64->rtt.p50,
		       bl64->floor_ratio, ml64->floor_ratio);
	if (bl64 && ml64 && bl64->msgs_per_s > 0 && bl64->rtt.p50) {
		double t = ml64->msgs_per_s / bl64->msgs_per_s;
		double l = (double)ml64->rtt.p50 / (double)bl64->rtt.p50;

		printf("  64 B memlink 1-lane throughput / baseline-ring  %5.2fx  (>= 1.0x)  %s\n",
		       t, t >= 1.0 ? "met" : "MISSED");
		printf("  64 B memlink 1-lane p50 / baseline-ring         %5.2fx  (<= 1.2x)  %s\n",
		       l, l <= 1.2 ? "met" : "MISSED");
	}
	for (unsigned p = 0; p < o->npayloads; p++) {
		const struct bench_row *one = find_row(rows, nrows, o->payload[p], "memlink", 1, 0);
		const struct bench_row *three = find_row(rows, nrows, o->payload[p], "memlink", 3, 0);
		const struct bench_row *batch = find_row(rows, nrows, o->payload[p], "memlink", 3,
							 URGENT_EVERY);

		if (one && three && one->msgs_per_s > 0) {
			double x = three->msgs_per_s / one->msgs_per_s;

			printf("  %4u B memlink 3-lane / 1-lane throughput      %5.2fx  (>= 0.9x)  %s\n",
			       o->payload[p], x, x >= 0.9 ? "met" : "MISSED");
		}
		if (one && batch && one->msgs_per_s > 0) {
			double x = batch->msgs_per_s / one->msgs_per_s;

			printf("  %4u B   urgent lanes every %u reads             %5.2fx  (>= 0.9x)  %s\n",
			       o->payload[p], URGENT_EVERY, x, x >= 0.9 ? "met" : "MISSED");
		}
	}
}

static void print_preamble(const struct ring_opts *o, FILE *note)
{
	struct proc_pair probe;
	bool pinned = false;

	if (!proc_pair_init(&probe, 1)) {
		pinned = probe.pinned;
		if (!o->json) {
			printf("memlink-bench ring: memlink %s, busy-poll, %u-byte rings\n",
			       ml_version(), RING_CAP);
			if (pinned)
				printf("  writer/client on CPU %d, reader/server on CPU %d\n",
				       probe.cpu[0], probe.cpu[1]);
		}
		proc_pair_destroy(&probe);
	}
	if (!pinned)
		fprintf(note, "note: fewer than two CPUs are available: both processes run "
			      "unpinned and yield instead of spinning; the numbers are not "
			      "meaningful\n");
	if (!o->json) {
		printf("  per row: ");
		if (o->msgs)
			printf("%llu", (unsigned long long)o->msgs);
		else
			printf("%s", o->quick ? "min(3M, 256 MiB)" : "min(12M, 1.5 GiB)");
		printf(" counted messages in %u interleaved rounds (msgs/s: median round),\n"
		       "  %llu timed round trips in %u blocks; every message checked;\n"
		       "  floor: one cache line bounced between the same CPUs, a block in each round\n\n",
		       opt_rounds(o), (unsigned long long)(opt_samples(o) / opt_rounds(o) * opt_rounds(o)),
		       opt_rounds(o));
		stats_table_header(stdout);
	}
}

int bench_ring_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "msgs", required_argument, NULL, 'm' },
		{ "samples", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "payload", required_argument, NULL, 'p' },
		{ "no-zerocopy", no_argument, NULL, 'Z' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const unsigned default_payloads[] = { 0, 64, 256, 1024, 4096 };
	struct ring_opts o = { .zerocopy = true };
	struct bench_row *rows;
	double (*rates)[MAX_ROUNDS];
	char (*errs)[1024];
	size_t nrows = 0;
	bool all_ok = true;
	uint64_t v;
	int c;

	for (size_t i = 0; i < sizeof(default_payloads) / sizeof(default_payloads[0]); i++)
		o.payload[o.npayloads++] = default_payloads[i];
	optind = 1;
	while ((c = getopt_long(argc, argv, "qjm:s:r:p:Zh", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.quick = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'm':
			if (parse_u64(optarg, &o.msgs) || !o.msgs) {
				fprintf(stderr, "memlink-bench ring: bad --msgs '%s'\n", optarg);
				return 2;
			}
			break;
		case 's':
			if (parse_u64(optarg, &o.samples) || !o.samples || o.samples > (1ull << 28)) {
				fprintf(stderr, "memlink-bench ring: bad --samples '%s'\n", optarg);
				return 2;
			}
			break;
		case 'r':
			if (parse_u64(optarg, &v) || !v || v > MAX_ROUNDS) {
				fprintf(stderr, "memlink-bench ring: bad --rounds '%s' (1..%d)\n",
					optarg, MAX_ROUNDS);
				return 2;
			}
			o.rounds = (unsigned)v;
			break;
		case 'p':
			if (parse_payloads(optarg, &o)) {
				fprintf(stderr, "memlink-bench ring: bad --payload '%s'\n", optarg);
				return 2;
			}
			break;
		case 'Z':
			o.zerocopy = false;
			break;
		case 'h':
			bench_ring_usage(stdout);
			return 0;
		default:
			bench_ring_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "memlink-bench ring: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	for (unsigned p = 0; p < o.npayloads; p++) {
		/* A quarter of the smallest (20%) lane of a three-lane ring. */
		if (o.payload[p] > RING_CAP / 5 / 4) {
			fprintf(stderr, "memlink-bench ring: payload %u is too large for %u-byte rings "
					"(at most %u)\n", o.payload[p], RING_CAP, RING_CAP / 5 / 4);
			return 2;
		}
	}

	rows = calloc((size_t)o.npayloads * ROWS_PER_PAYLOAD, sizeof(*rows));
	errs = calloc((size_t)o.npayloads * ROWS_PER_PAYLOAD, sizeof(*errs));
	rates = calloc((size_t)o.npayloads * ROWS_PER_PAYLOAD, sizeof(*rates));
	if (!rows || !errs || !rates) {
		free(rates);
		fprintf(stderr, "memlink-bench ring: out of memory\n");
		free(rows);
		free(errs);
		return 1;
	}
	print_preamble(&o, o.json ? stderr : stdout);

	for (unsigned p = 0; p < o.npayloads; p++) {
		struct bench_row *prow = &rows[nrows];
		unsigned n = 0;

		if (!run_payload(&o, o.payload[p], prow, &n, &errs[nrows], &rates[nrows]))
			all_ok = false;
		/* The floor first (stored last), then the kinds. */
		for (unsigned i = 0; i < n; i++) {
			unsigned k = i ? i - 1 : n - 1;
			struct bench_row *row = &prow[k];
			const struct bench_row *base = &prow[0]; /* the baseline kind comes first */
			const struct bench_row *fl = &prow[n - 1];

			if (k > 0 && k < n - 1 && row->verified && base->verified) {
				if (base->msgs_per_s > 0)
					row->ratio_tput = row->msgs_per_s / base->msgs_per_s;
				if (base->rtt.p50)
					row->ratio_p50 = (double)row->rtt.p50 / (double)base->rtt.p50;
			}
			if (k < n - 1 && row->verified && fl->verified)
				row->floor_ratio = floor_ratio(row->rtt.p50, fl->rtt.p50);
			if (o.json)
				stats_json_row(stdout, row);
			else
				stats_table_row(stdout, row);
		}
		nrows += n;
	}
	if (!o.json) {
		print_targets(&o, rows, nrows);
		if (!all_ok)
			printf("\nFAILED: at least one row did not verify\n");
	}
	free(rows);
	free(errs);
	free(rates);
	return all_ok ? 0 : 1;
}

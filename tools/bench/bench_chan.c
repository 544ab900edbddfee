// SPDX-License-Identifier: MIT
/*
 * memlink-bench rtt | tput: memlink channels between two processes, beside
 * what a user would otherwise write, measured in the same run:
 *
 *   baseline-ring  two fixed-slot SPSC rings, busy-polling (baseline_ring.c)
 *   futex          a raw futex ping-pong: each side sleeps in FUTEX_WAIT and
 *                  is woken by FUTEX_WAKE, payload in shared memory
 *   uds            a Unix stream socket pair, blocking reads
 *   memlink        ml_chan_* in each wait mode (busy, adaptive, blocking)
 *   floor          rtt only: one cache line bounced between the same two
 *                  CPUs (floor.h), run first for each payload, as many round
 *                  trips as the busy rows; every round trip's p50 over it is
 *                  its "x floor"
 *
 * rtt: the client sends, the daemon checks and echoes, the client checks
 * and times every round trip. tput: one client streams to the daemon,
 * which checks every message, one call per message (api "copy"), in
 * batches of up to 64 (api "batch": ml_chan_send_many, ml_chan_recv_many)
 * and in batches read in place (api "view": ml_chan_send_many,
 * ml_chan_recv_view), and written in place one at a time, read in place
 * (api "reserve": ml_chan_send_reserve and _commit, ml_chan_recv_view);
 * and to a slow daemon, which works TP_WORK_NS on each message, from a
 * client that sends with ml_chan_send_wait (api "send_wait": its CPU
 * share, and the daemon's own limit beside the rate delivered);
 * then 4 and 8 clients at once. rtt also
 * measures how long a waiting client takes to learn that the daemon was
 * SIGKILLed, and the CPU an idle waiting client uses after its spin.
 * Every message is checked the same way for every transport (payload.h).
 */
#include "bench_chan.h"

#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "baseline_ring.h"
#include "clock.h"
#include "floor.h"
#include "memlink.h"
#include "payload.h"
#include "proc.h"
#include "stats.h"

#define MAX_PAYLOADS 8
#define RTT_WARM 2000
#define BL_BYTES (1u << 20)
#define ROW_TIMEOUT_S 600

enum xport { X_BASELINE, X_FUTEX, X_UDS, X_MEMLINK };

/* The backend channels get here (probed once at start). */
static const char *backend_name = "?";

static const char *const xport_name[] = { "baseline-ring", "futex", "uds", "memlink" };
static const char *const mode_name[] = { "adaptive", "busy", "blocking" };

struct spec {
	enum xport x;
	enum ml_wait_mode mode;
};

static const struct spec rtt_specs[] = {
	{ X_BASELINE, ML_WAIT_BUSY },
	{ X_FUTEX, ML_WAIT_BLOCKING },
	{ X_UDS, ML_WAIT_BLOCKING },
	{ X_MEMLINK, ML_WAIT_BUSY },
	{ X_MEMLINK, ML_WAIT_ADAPTIVE },
	{ X_MEMLINK, ML_WAIT_BLOCKING },
};

struct opts {
	bool json, quick;
	unsigned npayloads;
	unsigned payload[MAX_PAYLOADS];
	uint64_t samples, msgs;
};

/* Shared between the two roles of one row. */
struct futex_area {
	_Atomic uint32_t word[2];  /* [0]: client -> daemon, [1]: back */
	unsigned char pad[120];
	unsigned char buf[2][65536 + 64];
};

struct rtt_res {
	bool verified;
	char err[200];
	struct lat_summary lat;
	struct proc_usage use;
};

struct row_arg {
	struct spec sp;
	/* memlink tput: how it is called */
	enum api { API_COPY, API_BATCH, API_VIEW, API_RESERVE, API_WAIT } api;
	size_t payload;
	uint64_t n;        /* counted messages or round trips */
	int sv[2];         /* uds socket pair */
	char name[48];     /* channel name */
};

static int futex(_Atomic uint32_t *w, int op, uint32_t val)
{
	return (int)syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

/* Both result types start with these two fields. */
static int fail(const struct proc_ctx *ctx, char err[200], const char *what, long v)
{
	snprintf(err, 200, "%s (%ld)", what, v);
	proc_abort(ctx);
	return 1;
}

/* ---- the transports, as "send one message" / "receive one message" ---- */

struct end {
	const struct proc_ctx *ctx;
	const struct row_arg *a;
	struct bl_ring tx, rx;   /* baseline */
	ml_chan *ch;             /* memlink */
	unsigned client;         /* memlink daemon: who to answer */
	unsigned char *rbuf;
};

static int end_open(struct end *e, const struct proc_ctx *ctx, const struct row_arg *a)
{
	struct ml_chan_opts o = { .size = sizeof(o), .wait_mode = a->sp.mode };
	size_t slots = bl_ring_slots_for(BL_BYTES, a->payload);
	size_t rlen = bl_ring_mem_size(slots, a->payload);
	unsigned char *u = ctx->user;

	memset(e, 0, sizeof(*e));
	e->ctx = ctx;
	e->a = a;
	e->rbuf = malloc(a->payload + 64);
	if (!e->rbuf)
		return -ENOMEM;
	switch (a->sp.x) {
	case X_BASELINE:
		/* Ring 0 carries requests, ring 1 replies; role 1 laid them out. */
		if (ctx->role == 1) {
			bl_ring_init(&e->rx, u, rlen, slots, a->payload);
			bl_ring_init(&e->tx, u + rlen, rlen, slots, a->payload);
		}
		if (!proc_barrier(ctx))
			return -ECANCELED;
		if (ctx->role == 0) {
			bl_ring_attach(&e->tx, u, rlen, slots, a->payload);
			bl_ring_attach(&e->rx, u + rlen, rlen, slots, a->payload);
		}
		return 0;
	case X_MEMLINK:
		if (ctx->role == 1) {
			int err = ml_daemon_create(&e->ch, a->name, &o);

			if (err)
				return err;
		}
		if (!proc_barrier(ctx))
			return -ECANCELED;
		return ctx->role == 0 ? ml_client_connect(&e->ch, a->name, &o) : 0;
	default:
		/* A new row starts its futex counters from zero. */
		if (a->sp.x == X_FUTEX && ctx->role == 1)
			memset(ctx->user, 0, offsetof(struct futex_area, buf));
		return proc_barrier(ctx) ? 0 : -ECANCELED;
	}
}

static void end_close(struct end *e)
{
	ml_chan_close(e->ch);
	free(e->rbuf);
}

static int xsend(struct end *e, const void *buf, size_t len)
{
	const struct row_arg *a = e->a;
	struct spin sp = { .ctx = e->ctx };
	int err;

	switch (a->sp.x) {
	case X_BASELINE:
		while ((err = bl_ring_write(&e->tx, buf, len)) == -EAGAIN)
			if (!spin_wait(&sp))
				return -ECANCELED;
		return err;
	case X_FUTEX: {
		struct futex_area *f = e->ctx->user;
		int dir = e->ctx->role == 0 ? 0 : 1;

		memcpy(f->buf[dir], buf, len);
		atomic_fetch_add_explicit(&f->word[dir], 1, memory_order_release);
		futex(&f->word[dir], FUTEX_WAKE, 1);
		return 0;
	}
	case X_UDS: {
		uint32_t l = (uint32_t)len;
		int fd = a->sv[e->ctx->role];

		if (write(fd, &l, 4) != 4 || (len && write(fd, buf, len) != (ssize_t)len))
			return -EIO;
		return 0;
	}
	case X_MEMLINK:
		do {
			err = e->ctx->role == 0 ? ml_chan_send(e->ch, ML_PRIO_HIGH, buf, len) :
						  ml_chan_reply(e->ch, e->client, ML_PRIO_HIGH, buf, len);
		} while (err == -EAGAIN && spin_wait(&sp));
		return err;
	}
	return -EINVAL;
}

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n <= 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

/* Receive one message into e->rbuf; its length, or a negative errno. */
static int xrecv(struct end *e, uint32_t *futex_seen)
{
	const struct row_arg *a = e->a;
	struct spin sp = { .ctx = e->ctx };
	int n;

	switch (a->sp.x) {
	case X_BASELINE:
		while ((n = bl_ring_read(&e->rx, e->rbuf, a->payload + 64)) == -EAGAIN)
			if (!spin_wait(&sp))
				return -ECANCELED;
		return n;
	case X_FUTEX: {
		struct futex_area *f = e->ctx->user;
		int dir = e->ctx->role == 0 ? 1 : 0;
		uint32_t v;

		while ((v = atomic_load_explicit(&f->word[dir], memory_order_acquire)) == *futex_seen) {
			futex(&f->word[dir], FUTEX_WAIT, v);
			if (proc_aborted(e->ctx))
				return -ECANCELED;
		}
		*futex_seen = v;
		memcpy(e->rbuf, f->buf[dir], a->payload);
		return (int)a->payload;
	}
	case X_UDS: {
		uint32_t l;
		int fd = a->sv[e->ctx->role];

		if (read_full(fd, &l, 4) || l > a->payload + 64 || read_full(fd, e->rbuf, l))
			return -EIO;
		return (int)l;
	}
	case X_MEMLINK:
		for (;;) {
			n = ml_chan_recv(e->ch, NULL, &e->client, e->rbuf, a->payload + 64);
			if (n != -EAGAIN)
				return n;
			n = ml_chan_wait(e->ch, 100000000);
			if (n && n != -ETIMEDOUT)
				return n;
			if (proc_aborted(e->ctx))
				return -ECANCELED;
		}
	}
	return -EINVAL;
}

/* ---- round trip --------------------------------------------------------- */

static int rtt_role(const struct proc_ctx *ctx, void *arg)
{
	const struct row_arg *a = arg;
	struct rtt_res *res = ctx->result;
	struct payload pl;
	uint32_t *samples = NULL, seen = 0;
	uint64_t total = a->n + RTT_WARM;
	struct proc_usage u0, u1;
	struct end e;
	int err;

	if (payload_init(&pl, a->payload))
		return fail(ctx, res->err, "payload", 0);
	err = end_open(&e, ctx, a);
	if (err)
		return fail(ctx, res->err, "open", err);
	if (ctx->role == 0 && !(samples = malloc(sizeof(*samples) * a->n)))
		return fail(ctx, res->err, "malloc", 0);
	proc_usage_mark(&u0);
	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0 = now_ns();
		int n;

		if (ctx->role == 0 && (err = xsend(&e, payload_stamp(&pl, i), a->payload)))
			return fail(ctx, res->err, "send", err);
		n = xrecv(&e, &seen);
		if (n < 0)
			return fail(ctx, res->err, "recv", n);
		if (!payload_check(&pl, e.rbuf, (size_t)n, i))
			return fail(ctx, res->err, "message does not check out", (long)i);
		if (ctx->role == 1 && (err = xsend(&e, e.rbuf, (size_t)n)))
			return fail(ctx, res->err, "echo", err);
		if (ctx->role == 0 && i >= RTT_WARM) {
			uint64_t dt = now_ns() - t0;

			samples[i - RTT_WARM] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		}
	}
	proc_usage_mark(&u1);
	memset(&res->use, 0, sizeof(res->use));
	proc_usage_add(&res->use, &u0, &u1);
	if (ctx->role == 0) {
		stats_summarize(samples, a->n, &res->lat);
		free(samples);
	}
	res->verified = true;
	/* The daemon closes last, so the client never sees it gone early. */
	proc_barrier(ctx);
	end_close(&e);
	payload_free(&pl);
	return 0;
}

/* ---- throughput --------------------------------------------------------- */

struct tput_res {
	bool verified;
	char err[200];
	double msgs_per_s;
	double cpu_share;    /* API_WAIT: the producer's CPU time / wall time */
	double limit_per_s;  /* API_WAIT: the consumer's, from its work alone */
};

/*
 * A slow consumer (api "send_wait"): this much work a message, after
 * reading it, while the producer sends with ml_chan_send_wait. The
 * producer is then mostly waiting for room: what it costs in CPU, and
 * whether the consumer still gets a message whenever it is ready.
 */
#define TP_WORK_NS 2000

/* Busy for about ns; the time it took. */
static uint64_t tp_work(uint64_t ns)
{
	uint64_t t0 = now_ns(), t;

	while ((t = now_ns()) - t0 < ns)
		;
	return t - t0;
}

/* The slow stream: n messages, a send_wait each; the reader works on each. */
static int tp_slow(struct end *e, struct payload *pl, uint64_t n, uint64_t *t0,
		   struct tput_res *res)
{
	uint32_t seen = 0;
	uint64_t work = 0;

	if (e->ctx->role == 0) {
		struct proc_usage u0, u1, use = { 0 };

		proc_usage_mark(&u0);
		for (uint64_t i = 0; i < n; i++) {
			int err = ml_chan_send_wait(e->ch, 0, ML_PRIO_HIGH, payload_stamp(pl, i),
						    e->a->payload, -1);

			if (err)
				return err;
		}
		proc_usage_mark(&u1);
		proc_usage_add(&use, &u0, &u1);
		res->cpu_share = use.wall_ns ? (double)use.cpu_ns / (double)use.wall_ns : -1;
		return 0;
	}
	for (uint64_t i = 0; i < n; i++) {
		int len = xrecv(e, &seen);

		if (i == 0)
			*t0 = now_ns();
		if (len < 0 || !payload_check(pl, e->rbuf, (size_t)len, i))
			return -EBADMSG;
		work += tp_work(TP_WORK_NS);
	}
	res->limit_per_s = work ? (double)n * 1e9 / (double)work : 0;
	return 0;
}

/* Batches of a memlink stream: up to 64 messages, 32 KiB (or one). */
#define TP_BATCH 64
#define TP_BATCH_BYTES (32u << 10)

static size_t tp_blen(size_t payload)
{
	return payload + 64 > TP_BATCH_BYTES ? payload + 64 : TP_BATCH_BYTES;
}

/* Send n messages in batches, each stamped into buf. */
static int tp_send_batches(struct end *e, struct payload *pl, uint64_t n, unsigned char *buf)
{
	const struct row_arg *a = e->a;
	size_t stride = (a->payload + 7) & ~(size_t)7, blen = tp_blen(a->payload);
	struct ml_msg m[TP_BATCH];
	struct spin sp = { .ctx = e->ctx };

	for (uint64_t i = 0; i < n;) {
		unsigned k = 0, done = 0;

		for (; k < TP_BATCH && i + k < n && (k + 1) * stride <= blen; k++) {
			m[k] = (struct ml_msg){ .data = buf + k * stride, .len = (uint32_t)a->payload,
						.prio = ML_PRIO_HIGH };
			memcpy(m[k].data, payload_stamp(pl, i + k), a->payload);
		}
		while (done < k) {
			int r = ml_chan_send_many(e->ch, 0, m + done, k - done);

			if (r > 0)
				done += (unsigned)r;
			else if (r != -EAGAIN)
				return r;
			else if (!spin_wait(&sp))
				return -ECANCELED;
		}
		i += k;
	}
	return 0;
}

/* Send n messages, each written into the channel's memory and committed. */
static int tp_send_in_place(struct end *e, struct payload *pl, uint64_t n)
{
	size_t len = e->a->payload;
	struct spin sp = { .ctx = e->ctx };

	for (uint64_t i = 0; i < n;) {
		void *at;
		int err = ml_chan_send_reserve(e->ch, 0, ML_PRIO_HIGH, len, &at);

		if (err == -EAGAIN) {
			if (!spin_wait(&sp))
				return -ECANCELED;
			continue;
		}
		if (err)
			return err;
		memcpy(at, payload_stamp(pl, i), len);
		err = ml_chan_send_commit(e->ch, len);
		if (err)
			return err;
		i++;
	}
	return 0;
}

/* Receive and check n messages in batches; t0 at the first. */
static int tp_recv_batches(struct end *e, struct payload *pl, uint64_t n, unsigned char *buf,
			   uint64_t *t0)
{
	const struct row_arg *a = e->a;
	struct ml_msg m[TP_BATCH];

	for (uint64_t i = 0; i < n;) {
		int got = a->api != API_BATCH ? ml_chan_recv_view(e->ch, m, TP_BATCH) :
			  ml_chan_recv_many(e->ch, m, TP_BATCH, buf, tp_blen(a->payload));

		if (got == -EAGAIN) {
			got = ml_chan_wait(e->ch, 100000000);
			if (got && got != -ETIMEDOUT)
				return got;
			if (proc_aborted(e->ctx))
				return -ECANCELED;
			continue;
		}
		if (got < 0)
			return got;
		if (i == 0)
			*t0 = now_ns();
		for (int k = 0; k < got; k++, i++)
			if (i >= n || !payload_check(pl, m[k].data, m[k].len, i))
				return -EBADMSG;
	}
	return 0;
}

static int tput_role(const struct proc_ctx *ctx, void *arg)
{
	const struct row_arg *a = arg;
	struct tput_res *res = ctx->result;
	struct payload pl;
	uint32_t seen = 0;
	uint64_t t0 = 0;
	struct end e;
	int err;

	if (payload_init(&pl, a->payload))
		return fail(ctx, res->err, "payload", 0);
	err = end_open(&e, ctx, a);
	if (err)
		return fail(ctx, res->err, "open", err);
	if (a->api == API_WAIT) {
		err = tp_slow(&e, &pl, a->n, &t0, res);
		if (err)
			return fail(ctx, res->err, ctx->role == 0 ? "send_wait" : "recv", err);
	} else if (a->api != API_COPY) {
		unsigned char *buf = malloc(tp_blen(a->payload));

		err = !buf ? -ENOMEM :
		      ctx->role == 0 && a->api == API_RESERVE ? tp_send_in_place(&e, &pl, a->n) :
		      ctx->role == 0 ? tp_send_batches(&e, &pl, a->n, buf) :
				       tp_recv_batches(&e, &pl, a->n, buf, &t0);
		free(buf);
		if (err)
			return fail(ctx, res->err, ctx->role == 0 ? "send" : "recv", err);
	} else {
		for (uint64_t i = 0; i < a->n; i++) {
			int n;

			if (ctx->role == 0) {
				if ((err = xsend(&e, payload_stamp(&pl, i), a->payload)))
					return fail(ctx, res->err, "send", err);
				continue;
			}
			n = xrecv(&e, &seen);
			if (i == 0)
				t0 = now_ns();
			if (n < 0 || !payload_check(&pl, e.rbuf, (size_t)n, i))
				return fail(ctx, res->err, "message does not check out", (long)i);
		}
	}
	if (ctx->role == 1)
		res->msgs_per_s = (double)(a->n - 1) * 1e9 / (double)(now_ns() - t0);
	res->verified = true;
	proc_barrier(ctx);
	end_close(&e);
	payload_free(&pl);
	return 0;
}

/* ---- rows ---------------------------------------------------------------- */

static void row_init(struct bench_row *r, const char *bench, const struct spec *sp,
		     size_t payload)
{
	memset(r, 0, sizeof(*r));
	r->bench = bench;
	r->transport = xport_name[sp->x];
	r->mode = mode_name[sp->mode];
	r->api = "copy";
	r->backend = sp->x == X_MEMLINK ? backend_name : "-";
	r->payload = (unsigned)payload;
	r->lanes = sp->x == X_MEMLINK ? 3 : 1;
	r->ratio_tput = r->ratio_p50 = r->floor_ratio = -1;
	r->cpu[0] = r->cpu[1] = -1;
	r->cpu_share = -1;
}

static int run_row(struct proc_pair *pp, proc_role_fn fn, struct row_arg *a, const char **why)
{
	int rc;

	snprintf(a->name, sizeof(a->name), "bench.%d", (int)getpid());
	if (a->sp.x == X_UDS && socketpair(AF_UNIX, SOCK_STREAM, 0, a->sv))
		return -1;
	rc = proc_pair_run(pp, fn, a, ROW_TIMEOUT_S, why);
	if (a->sp.x == X_UDS) {
		close(a->sv[0]);
		close(a->sv[1]);
	}
	return rc;
}

static void emit(const struct opts *o, const struct bench_row *r)
{
	if (o->json)
		stats_json_row(stdout, r);
	else
		stats_table_row(stdout, r);
}

/*
 * The floor row of a payload's group, on the CPUs the rows beside it use;
 * its p50 (0: not verified).
 */
static uint64_t floor_row(const struct opts *o, struct proc_pair *pp, size_t payload)
{
	struct spec sp = { X_BASELINE, ML_WAIT_BUSY };
	struct floor_result fr;
	struct bench_row r;

	row_init(&r, "rtt", &sp, payload);
	/* It carries no payload: its payload is the rows it runs beside. */
	r.transport = "floor";
	r.api = "line";
	r.verified = !floor_run(pp, RTT_WARM, o->samples, ROW_TIMEOUT_S, &fr);
	r.rtt = fr.lat;
	r.msgs = o->samples;
	if (!r.verified)
		r.error = fr.err;
	emit(o, &r);
	return r.verified ? r.rtt.p50 : 0;
}

static int do_rtt(const struct opts *o, struct proc_pair *pp)
{
	int bad = 0;

	for (unsigned p = 0; p < o->npayloads; p++) {
		double base_p50 = 0, futex_p50 = 0, busy_p50 = 0;
		uint64_t floor_p50 = floor_row(o, pp, o->payload[p]);

		bad |= !floor_p50;

		for (size_t s = 0; s < sizeof(rtt_specs) / sizeof(rtt_specs[0]); s++) {
			struct row_arg a = { .sp = rtt_specs[s], .payload = o->payload[p],
					     .n = o->samples };
			const struct rtt_res *res;
			const char *why = NULL;
			struct bench_row r;
			int rc;

			/* Sleeping transports are 40x slower: fewer samples. */
			if (a.sp.mode != ML_WAIT_BUSY)
				a.n = a.n / 10 + 1;
			row_init(&r, "rtt", &a.sp, a.payload);
			rc = run_row(pp, rtt_role, &a, &why);
			res = proc_result(pp, 0);
			r.verified = !rc && res->verified &&
				     ((const struct rtt_res *)proc_result(pp, 1))->verified;
			r.rtt = res->lat;
			r.msgs = a.n;
			if (!r.verified) {
				r.error = res->err[0] ? res->err :
					  ((const struct rtt_res *)proc_result(pp, 1))->err[0] ?
					  ((const struct rtt_res *)proc_result(pp, 1))->err : why;
				bad = 1;
			}
			if (a.sp.x == X_BASELINE)
				base_p50 = (double)r.rtt.p50;
			if (a.sp.x == X_FUTEX)
				futex_p50 = (double)r.rtt.p50;
			/*
			 * Ratios as the targets read: busy against the baseline
			 * ring, adaptive against busy, sleeping rows against futex.
			 */
			if (r.verified && a.sp.x != X_BASELINE && a.sp.x != X_FUTEX) {
				double base = a.sp.mode == ML_WAIT_BUSY ? base_p50 :
					      a.sp.mode == ML_WAIT_ADAPTIVE ? busy_p50 : futex_p50;

				if (base > 0)
					r.ratio_p50 = (double)r.rtt.p50 / base;
			}
			if (a.sp.x == X_MEMLINK && a.sp.mode == ML_WAIT_BUSY)
				busy_p50 = (double)r.rtt.p50;
			if (r.verified)
				r.floor_ratio = floor_ratio(r.rtt.p50, floor_p50);
			emit(o, &r);
		}
	}
	return bad;
}

static int do_tput(const struct opts *o, struct proc_pair *pp)
{
	static const struct {
		struct spec sp;
		enum api api;
	} specs[] = {
		{ { X_BASELINE, ML_WAIT_BUSY }, API_COPY },
		{ { X_UDS, ML_WAIT_BLOCKING }, API_COPY },
		{ { X_MEMLINK, ML_WAIT_BUSY }, API_COPY },
		{ { X_MEMLINK, ML_WAIT_ADAPTIVE }, API_COPY },
		{ { X_MEMLINK, ML_WAIT_BUSY }, API_BATCH },
		{ { X_MEMLINK, ML_WAIT_ADAPTIVE }, API_BATCH },
		{ { X_MEMLINK, ML_WAIT_BLOCKING }, API_BATCH },
		{ { X_MEMLINK, ML_WAIT_BUSY }, API_VIEW },
		{ { X_MEMLINK, ML_WAIT_ADAPTIVE }, API_VIEW },
		{ { X_MEMLINK, ML_WAIT_BUSY }, API_RESERVE },
		{ { X_MEMLINK, ML_WAIT_ADAPTIVE }, API_RESERVE },
		{ { X_MEMLINK, ML_WAIT_ADAPTIVE }, API_WAIT },
		{ { X_MEMLINK, ML_WAIT_BLOCKING }, API_WAIT },
	};
	static const char *const api_name[] = { "copy", "batch", "view", "reserve", "send_wait" };
	int bad = 0;

	for (unsigned p = 0; p < o->npayloads; p++) {
		double base = 0;

		for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
			struct row_arg a = { .sp = specs[s].sp, .api = specs[s].api,
					     .payload = o->payload[p], .n = o->msgs };
			const struct tput_res *res;
			const char *why = NULL;
			struct bench_row r;
			int rc;

			if (a.sp.x == X_UDS)
				a.n = a.n / 10 + 1;
			/* The slow consumer takes TP_WORK_NS a message. */
			if (a.api == API_WAIT)
				a.n = a.n / 20 + 1;
			row_init(&r, "tput", &a.sp, a.payload);
			r.api = api_name[a.api];
			rc = run_row(pp, tput_role, &a, &why);
			res = proc_result(pp, 1);
			r.verified = !rc && res->verified;
			r.msgs = a.n;
			r.msgs_per_s = r.verified ? res->msgs_per_s : 0;
			if (!r.verified) {
				r.error = res->err[0] ? res->err :
					  ((const struct tput_res *)proc_result(pp, 0))->err[0] ?
					  ((const struct tput_res *)proc_result(pp, 0))->err : why;
				bad = 1;
			}
			if (a.api == API_WAIT && r.verified) {
				r.limit_per_s = res->limit_per_s;
				r.cpu_share = ((const struct tput_res *)proc_result(pp, 0))->cpu_share;
			} else if (a.sp.x == X_BASELINE) {
				base = r.msgs_per_s;
			} else if (base > 0 && r.verified) {
				r.ratio_tput = r.msgs_per_s / base;
			}
			emit(o, &r);
		}
	}
	return bad;
}

/* ---- several producers ------------------------------------------------- */

/* k client processes stream to one daemon; per-client order is checked. */
static int do_mpsc(const struct opts *o, unsigned k, size_t payload)
{
	struct ml_chan_opts co = { .size = sizeof(co), .max_clients = k };
	uint64_t per = o->msgs / k / 4 + 1, got = 0, next[ML_CHAN_MAX_CLIENTS] = { 0 };
	unsigned ids[ML_CHAN_MAX_CLIENTS] = { 0 }; /* per slot: its client's id, 0: none yet */
	struct spec sp = { X_MEMLINK, ML_WAIT_ADAPTIVE };
	struct bench_row r;
	struct payload pl;
	pid_t pids[ML_CHAN_MAX_CLIENTS];
	char name[48], *buf = malloc(payload + 64);
	uint64_t t0 = 0;
	bool ok = true;
	ml_chan *d;

	snprintf(name, sizeof(name), "bench.mp.%d", (int)getpid());
	row_init(&r, "tput", &sp, payload);
	r.mode = "adaptive";
	if (!buf || payload_init(&pl, payload) || ml_daemon_create(&d, name, &co))
		return 1;
	for (unsigned i = 0; i < k; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			ml_chan *c;

			if (ml_client_connect(&c, name, &co))
				_exit(2);
			for (uint64_t s = 0; s < per; s++)
				if (ml_chan_send_wait(c, 0, ML_PRIO_HIGH, payload_stamp(&pl, s), payload, -1))
					_exit(3);
			/* Stay until the daemon has read everything. */
			while (ml_chan_wait(c, -1) != -EPIPE)
				;
			ml_chan_close(c);
			_exit(0);
		}
	}
	while (got < per * k && ok) {
		unsigned from, slot;
		int n = ml_chan_recv(d, NULL, &from, buf, payload + 64);

		if (n == -EAGAIN) {
			ml_chan_wait(d, 100000000);
			continue;
		}
		if (!got)
			t0 = now_ns();
		/* Each client connects once: one id per slot, its stream in order. */
		slot = ML_CHAN_SLOT(from);
		if (n >= 0 && slot < k && !ids[slot])
			ids[slot] = from;
		ok = n >= 0 && slot < k && from == ids[slot] &&
		     payload_check(&pl, buf, (size_t)n, next[slot]++);
		got++;
	}
	r.msgs_per_s = (double)(got - 1) * 1e9 / (double)(now_ns() - t0);
	ml_chan_close(d);
	for (unsigned i = 0; i < k; i++) {
		int st;

		waitpid(pids[i], &st, 0);
		ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	r.verified = ok;
	r.msgs = got;
	r.lanes = 3;
	{
		char t[32];

		snprintf(t, sizeof(t), "memlink-%up", k);
		r.transport = t;
		emit(o, &r);
	}
	payload_free(&pl);
	free(buf);
	return !ok;
}

/* ---- peer death and idle CPU ------------------------------------------- */

/*
 * SIGKILL a daemon while a client waits in `mode`; how long until the
 * client knows? One trial: the notice in ns, or 0 if it never came.
 */
static uint64_t peer_death_once(enum ml_wait_mode mode, const char **backend)
{
	struct ml_chan_opts co = { .size = sizeof(co), .wait_mode = mode };
	uint64_t kill_at, told = 0;
	int pfd[2], status, err;
	static unsigned seq;
	char name[48], c;
	ml_chan *cl;
	pid_t d;

	snprintf(name, sizeof(name), "bench.pd.%d.%u", (int)getpid(), seq++);
	if (pipe(pfd))
		return 0;
	d = fork();
	if (d == 0) {
		ml_chan *dc;

		c = ml_daemon_create(&dc, name, &co) ? 'x' : 'k';
		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (d > 0 && read(pfd[0], &c, 1) == 1 && c == 'k' && !ml_client_connect(&cl, name, &co)) {
		*backend = ml_chan_backend(cl);
		/* Let the client settle into its wait first (busy: spin), then kill. */
		ml_chan_wait(cl, 50000000);
		kill_at = now_ns();
		kill(d, SIGKILL);
		err = ml_chan_wait(cl, 5000000000LL);
		if (err == -EPIPE)
			told = now_ns() - kill_at;
		ml_chan_close(cl);
	}
	if (d > 0) {
		kill(d, SIGKILL);
		waitpid(d, &status, 0);
	}
	/* A killed daemon's channel: what it left behind (if anything) goes. */
	ml_chan_gc(name, 0);
	close(pfd[0]);
	close(pfd[1]);
	return told;
}

/*
 * The peer-death rows: a sleeping (blocking) and a spinning (busy) client,
 * trials of each; the median notice and the worst.
 */
static int do_peer_death(const struct opts *o)
{
	static const struct { enum ml_wait_mode mode; const char *name; } modes[] = {
		{ ML_WAIT_BLOCKING, "blocking" },
		{ ML_WAIT_BUSY, "busy" },
	};
	unsigned trials = o->quick ? 5 : 21;
	const char *backend = "?";
	int bad = 0;

	for (unsigned m = 0; m < 2; m++) {
		double v[21], lo, hi, med;
		unsigned got = 0;

		for (unsigned t = 0; t < trials; t++) {
			uint64_t ns = peer_death_once(modes[m].mode, &backend);

			if (ns)
				v[got++] = (double)ns;
		}
		bad |= got != trials;
		med = got ? stats_median(v, got, &lo, &hi) : 0;
		if (o->json)
			printf("{\"bench\":\"peer-death\",\"transport\":\"memlink\",\"backend\":\"%s\","
			       "\"mode\":\"%s\",\"trials\":%u,\"told\":%u,\"notice_ns\":%.0f,"
			       "\"notice_max_ns\":%.0f,\"verified\":%s}\n", backend, modes[m].name,
			       trials, got, med, got ? hi : 0.0, got == trials ? "true" : "false");
		else
			printf("peer death (%s backend, %s client): EPIPE in %u of %u trials, "
			       "median %.2f ms, worst %.2f ms after the kill\n", backend,
			       modes[m].name, got, trials, med / 1e6, got ? hi / 1e6 : 0.0);
	}
	return bad;
}

/* CPU used by a client that waits 2 s with nothing to read. */
static int do_idle(const struct opts *o)
{
	struct ml_chan_opts co = { .size = sizeof(co) };
	struct rusage r0, r1;
	uint64_t t0, t1;
	double cpu;
	char name[48];
	ml_chan *d, *c;

	snprintf(name, sizeof(name), "bench.idle.%d", (int)getpid());
	if (ml_daemon_create(&d, name, &co) || ml_client_connect(&c, name, &co))
		return 1;
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_ns();
	while (ml_chan_wait(c, 2000000000) == -ETIMEDOUT && now_ns() - t0 < 2000000000)
		;
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &r1);
	cpu = ((double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e6 +
	       (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
	       (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e6 +
	       (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec)) * 1e3 / (double)(t1 - t0);
	if (o->json)
		printf("{\"bench\":\"idle-cpu\",\"transport\":\"memlink\",\"mode\":\"adaptive\","
		       "\"cpu_pct\":%.3f,\"verified\":true}\n", cpu * 100);
	else
		printf("idle client, adaptive wait of 2 s: %.3f%% of a CPU (spin %u us included)\n",
		       cpu * 100, 50);
	ml_chan_close(c);
	ml_chan_close(d);
	return 0;
}

/* ---- command line ------------------------------------------------------ */

void bench_chan_usage(FILE *f)
{
	fprintf(f, "memlink-bench rtt|tput [--quick] [--json] [--payload N,...] [--samples N] [--msgs N]\n"
		   "  rtt   round trips through a channel in each wait mode, beside a baseline\n"
		   "        ring, a raw futex ping-pong and a Unix socket; peer-death notice;\n"
		   "        CPU of an idle waiting client. First for each payload, the floor:\n"
		   "        one shared cache line bounced between the same two CPUs (no\n"
		   "        payload); x floor is each round trip's p50 over the floor's\n"
		   "  tput  one-way throughput, and 4 and 8 producers into one daemon\n"
		   "  The backend is $MEMLINK_BACKEND or the best available.\n");
}

int bench_chan_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' },  { "json", no_argument, NULL, 'j' },
		{ "payload", required_argument, NULL, 'p' },
		{ "samples", required_argument, NULL, 's' },
		{ "msgs", required_argument, NULL, 'm' },  { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .npayloads = 4, .payload = { 0, 64, 1024, 4096 },
			  .samples = 200000, .msgs = 4000000 };
	bool rtt = !strcmp(argv[0], "rtt");
	struct proc_pair pp;
	int c, bad = 0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.quick = true;
			o.samples = 20000;
			o.msgs = 400000;
			break;
		case 'j':
			o.json = true;
			break;
		case 'p': {
			int n = payload_parse_sizes(optarg, o.payload, MAX_PAYLOADS, 1ul << 20);

			if (n < 0) {
				fprintf(stderr, "memlink-bench rtt|tput: bad --payload '%s'\n", optarg);
				return 2;
			}
			o.npayloads = (unsigned)n;
			break;
		}
		case 's':
			o.samples = strtoull(optarg, NULL, 0);
			break;
		case 'm':
			o.msgs = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			bench_chan_usage(stdout);
			return 0;
		default:
			bench_chan_usage(stderr);
			return 2;
		}
	}
	for (unsigned p = 0; p < o.npayloads; p++)
		if (o.payload[p] > 4096) {
			fprintf(stderr, "memlink-bench: payloads up to 4096 bytes\n");
			return 2;
		}
	{
		char probe[48];
		ml_chan *d;

		snprintf(probe, sizeof(probe), "bench.probe.%d", (int)getpid());
		if (!ml_daemon_create(&d, probe, NULL)) {
			static char name[16];

			snprintf(name, sizeof(name), "%s", ml_chan_backend(d));
			backend_name = name;
			ml_chan_close(d);
		}
	}
	/* Room for the futex area, or two baseline rings of any payload. */
	if (proc_pair_init(&pp, sizeof(struct futex_area) + 4 * (size_t)BL_BYTES + 65536))
		return 1;
	if (!o.json)
		stats_table_header(stdout);
	if (rtt) {
		bad |= do_rtt(&o, &pp);
		bad |= do_peer_death(&o);
		bad |= do_idle(&o);
	} else {
		bad |= do_tput(&o, &pp);
		bad |= do_mpsc(&o, 4, 64);
		bad |= do_mpsc(&o, 8, 64);
	}
	proc_pair_destroy(&pp);
	return bad;
}

// SPDX-License-Identifier: MIT
/*
 * memlink-bench fanout: one daemon process and N client processes (fork,
 * not pinned), issue 23's benchmark.
 *
 *   fan-out  the daemon sends every message to every client: plain
 *            ml_chan_reply(), ml_chan_send_wait() on -EAGAIN; each client
 *            drains with ml_chan_recv(), ml_chan_wait() on -EAGAIN
 *   fan-in   every client streams to the daemon: ml_chan_send(),
 *            ml_chan_send_wait() on -EAGAIN; the daemon drains with
 *            ml_chan_recv() and ml_chan_wait()
 *
 * in each wait mode, beside ZeroMQ over ipc:// in the same run (fan-out: one
 * XPUB with ZMQ_XPUB_NODROP to N SUB sockets; fan-in: N PUSH into one
 * PULL). Channel options are the defaults but wait_mode, and max_clients
 * when N is over the default 8.
 *
 * A row runs in phases, between barriers of all N + 1 processes:
 *   connect     the daemon creates the channel (binds), the clients connect;
 *               the daemon waits until ml_chan_clients() lists N (zmq: until
 *               the XPUB has N subscriptions, the PULL a hello from each)
 *   throughput  for a fixed wall time window, not a fixed count (busy mode
 *               with 16 clients on 2 CPUs may crawl): fan-out, the daemon
 *               sends rounds (one message to each client) for the window,
 *               then publishes how many, and the clients drain that many;
 *               fan-in, each client sends for the window from its own start
 *               and the daemon drains all of them
 *   paced       one message every 20 us from the sender(s) with its
 *               CLOCK_MONOTONIC send time in it (fan-out: the daemon, one
 *               message to all; fan-in: each client one every 20 us x N,
 *               staggered, so the daemon gets one per 20 us in all); the
 *               receivers take the one-way latency of each
 *
 * Every message carries its sender (0: the daemon, i: client i) and a
 * per-sender sequence number, which runs on across both phases, in word 0,
 * its send time in word 1 (0 in the throughput phase), and a pattern
 * derived from both in every byte after: each receiver checks every byte
 * of every message, in order, and at the end the counts sent and received
 * per sender must be equal (nothing lost or duplicated).
 *
 * Each process reports through a MAP_SHARED | MAP_ANONYMOUS area made by
 * the parent, which only watches: a child that fails aborts the row, and so
 * does one that makes no progress (no message moved, no barrier waited at)
 * for 10 s; all children are then killed and reaped, and the row says
 * verified:false. That row of processes is mproc.c's, shared with pubsub.
 */
#include "bench_fanout.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "memlink.h"
#include "mproc.h"
#include "payload.h"
#include "stats.h"

#ifdef HAVE_ZMQ
#include <zmq.h>
#endif

#define FO_MAX_CLIENTS ML_CHAN_MAX_CLIENTS
#define FO_MAX_PROCS (FO_MAX_CLIENTS + 1)
#define FO_MAX_LIST 8
#define FO_MIN_PAYLOAD 16u          /* sender and sequence, send time */
#define FO_MAX_PAYLOAD 4096u        /* the channel's default max_msg */
#define FO_PACE_NS 20000ull         /* paced phase: one message per 20 us */
#define FO_WAIT_NS 100000000ll      /* each wait: 100 ms, then look at the abort flag */
#define FO_CONNECT_NS 10000000000ull
#define FO_ROW_MAX_NS 600000000000ull
#define FO_ZMQ_HWM 100000
#define FO_GOLD 0x9e3779b97f4a7c15ull

enum { T_MEMLINK, T_ZMQ };
enum { P_OUT, P_IN };

static const char *const pattern_name[] = { "out", "in" };

static const char *mode_str(unsigned m)
{
	return m == ML_WAIT_BUSY ? "busy" : m == ML_WAIT_BLOCKING ? "blocking" : "adaptive";
}

/* ---- messages ----------------------------------------------------------- */

static uint64_t fo_mix(uint64_t x)
{
	x += FO_GOLD;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t fo_word0(unsigned sender, uint64_t seq)
{
	return (uint64_t)sender << 48 | (seq & ((1ull << 48) - 1));
}

/*
 * Word 0: sender << 48 | seq; word 1: the send time (0: none); word k >= 2:
 * mix(word 0) + k * GOLD, the last partial word cut to the length.
 */
static void fo_fill(unsigned char *b, size_t len, unsigned sender, uint64_t seq)
{
	uint64_t w0 = fo_word0(sender, seq), base = fo_mix(w0), zero = 0, w;
	size_t i = 16, k = 2;

	memcpy(b, &w0, 8);
	memcpy(b + 8, &zero, 8);
	for (; i + 8 <= len; i += 8, k++) {
		w = base + k * FO_GOLD;
		memcpy(b + i, &w, 8);
	}
	if (i < len) {
		w = base + k * FO_GOLD;
		memcpy(b + i, &w, len - i);
	}
}

static void fo_stamp_time(unsigned char *b, uint64_t t)
{
	memcpy(b + 8, &t, 8);
}

/* The sender a message names (n >= 8), or ~0u. */
static unsigned fo_sender(const unsigned char *b, size_t n)
{
	uint64_t w0;

	if (n < 8)
		return ~0u;
	memcpy(&w0, b, 8);
	return (unsigned)(w0 >> 48);
}

/* Is b[0..n) exactly message seq of sender, len bytes? Its send time to *t. */
static bool fo_check(const unsigned char *b, size_t n, size_t len, unsigned sender,
		     uint64_t seq, uint64_t *t)
{
	uint64_t w0 = fo_word0(sender, seq), base, w;
	size_t i = 16, k = 2;

	if (n != len)
		return false;
	memcpy(&w, b, 8);
	if (w != w0)
		return false;
	memcpy(t, b + 8, 8);
	base = fo_mix(w0);
	for (; i + 8 <= len; i += 8, k++) {
		memcpy(&w, b + i, 8);
		if (w != base + k * FO_GOLD)
			return false;
	}
	if (i < len) {
		w = base + k * FO_GOLD;
		if (memcmp(b + i, &w, len - i))
			return false;
	}
	return true;
}

/* ---- the shared area ---------------------------------------------------- */

/* One per process: [0] the daemon, [i] client i. */
struct fo_proc {
	alignas(128) _Atomic uint32_t tput_done; /* fan-in client: its window is over */
	uint64_t count;       /* throughput: sent (fan-in client), received (fan-out
			       * client, fan-in daemon), all copies sent (fan-out daemon) */
	uint64_t span_ns;     /* over this much wall time */
	uint64_t cpu_ns;      /* daemon: its process's CPU time over the same */
	uint64_t wakeups, sleeps;   /* ml_chan_stats deltas, throughput phase */
	uint64_t pwakeups, psleeps; /* the same, paced phase */
	uint64_t pmsgs;       /* paced: messages delivered (daemon: all copies) */
	uint64_t seq_total;   /* final sequence count: sent (fan-in client, fan-out
			       * daemon: per client) or received (fan-out client) */
	uint64_t nlat;        /* latency samples in its slice */
};

_Static_assert(FO_MAX_PROCS <= MP_MAX_PROCS, "a slot per process");

struct fo_ctl {
	struct mp_ctl mp;                       /* first: abort, barrier, slots */
	alignas(128) _Atomic uint32_t ready;    /* daemon: 1 listening, 2 failed */
	_Atomic uint64_t total;                 /* fan-out: messages per client, window */
	char backend[16];
	uint64_t recv_from[FO_MAX_PROCS];       /* fan-in daemon: final count per sender */
	struct fo_proc proc[FO_MAX_PROCS];
};

struct fo_row {
	int transport, pattern;
	unsigned mode;       /* enum ml_wait_mode; zmq: ML_WAIT_BLOCKING */
	unsigned n;          /* clients */
	size_t payload;
	uint64_t window_ns;
	uint64_t samples;    /* paced messages (fan-out: per client; fan-in: in all) */
	char name[64];       /* channel name */
	char endpoint[128];  /* zmq: ipc://path */
	char path[112];      /* zmq: its file */
};

/* What one child sees. */
struct fo_ctx {
	struct mp_self mp;   /* idx 0: the daemon; 1..n: a client */
	struct fo_ctl *ctl;
	const struct fo_row *r;
	struct fo_proc *me;
	uint32_t *lat;       /* this process's slice */
	size_t lat_cap;
	unsigned char *buf;  /* payload + 64 bytes */
	size_t cap;
};

/* Who failed, in the row's errors: "daemon: ...", "client 3 made no progress". */
static const struct mp_names fo_names = { "daemon", "client" };

static void lat_add(struct fo_ctx *x, uint64_t sent_at)
{
	if (x->me->nlat < x->lat_cap)
		x->lat[x->me->nlat++] = lat_of(sent_at);
}

/* The fan-in daemon's bookkeeping: per sender, the next sequence number. */
struct fanin {
	uint64_t next[FO_MAX_PROCS];
	unsigned slot_sender[ML_CHAN_MAX_CLIENTS]; /* memlink: slot -> sender, 0: none yet */
	uint64_t got;
};

/*
 * Check one message a fan-in daemon received (from: the memlink client id,
 * or ~0u for zmq); its send time to *t.
 */
static int fanin_take(struct fo_ctx *x, struct fanin *f, int n, unsigned from, uint64_t *t)
{
	unsigned s = fo_sender(x->buf, (size_t)n);

	if (s < 1 || s > x->r->n)
		return mp_fail(&x->mp, "message %llu names sender %u", (unsigned long long)f->got, s);
	if (from != ~0u) {
		unsigned slot = ML_CHAN_SLOT(from);

		if (!f->slot_sender[slot]) {
			for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
				if (f->slot_sender[i] == s)
					return mp_fail(&x->mp, "sender %u on two slots", s);
			f->slot_sender[slot] = s;
		} else if (f->slot_sender[slot] != s) {
			return mp_fail(&x->mp, "slot %u carries senders %u and %u", slot,
				       f->slot_sender[slot], s);
		}
	}
	if (!fo_check(x->buf, (size_t)n, x->r->payload, s, f->next[s], t))
		return mp_fail(&x->mp, "message %llu of sender %u does not check out "
			       "(lost, duplicated, out of order or corrupt)",
			       (unsigned long long)f->next[s], s);
	f->next[s]++;
	f->got++;
	return 0;
}

/* Fan-in daemon: has every client's window ended, and all of it arrived? */
static bool fanin_all_in(const struct fo_ctx *x, const struct fanin *f)
{
	uint64_t sum = 0;

	for (unsigned i = 1; i <= x->r->n; i++) {
		if (!atomic_load_explicit(&x->ctl->proc[i].tput_done, memory_order_acquire))
			return false;
		sum += x->ctl->proc[i].seq_total;
	}
	return f->got >= sum;
}

/* Its waits once nothing is there: short, so that the end is seen at once. */
#define FO_TAIL_WAIT_NS 1000000ll

/* ---- memlink ------------------------------------------------------------ */

static void ml_opts(struct ml_chan_opts *o, const struct fo_row *r)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->wait_mode = r->mode;
	/* The default is 8 clients; more need room. */
	if (r->n > 8)
		o->max_clients = r->n;
}

static void ml_snap(ml_chan *c, struct ml_chan_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);
	ml_chan_stats(c, s);
}

/* Either side: one message; send_wait, in FO_WAIT_NS steps, while full. */
static int ml_put(struct fo_ctx *x, ml_chan *c, unsigned id, const void *buf, size_t len)
{
	int err = x->mp.idx ? ml_chan_send(c, ML_PRIO_HIGH, buf, len) :
			   ml_chan_reply(c, id, ML_PRIO_HIGH, buf, len);

	while (err == -EAGAIN) {
		err = ml_chan_send_wait(c, id, ML_PRIO_HIGH, buf, len, FO_WAIT_NS);
		if (err == -EAGAIN && mp_aborted(&x->mp))
			return -ECANCELED;
	}
	return err;
}

/* One message into x->buf: its length; -EAGAIN after a wait with nothing. */
static int ml_get(struct fo_ctx *x, ml_chan *c, unsigned *from)
{
	int n = ml_chan_recv(c, NULL, from, x->buf, x->cap);

	if (n != -EAGAIN)
		return n;
	n = ml_chan_wait(c, FO_WAIT_NS);
	if (n && n != -ETIMEDOUT)
		return n;
	return mp_aborted(&x->mp) ? -ECANCELED : -EAGAIN;
}

static int ml_daemon(struct fo_ctx *x)
{
	const struct fo_row *r = x->r;
	struct ml_chan_stats s0, s1, s2;
	struct ml_chan_opts o;
	unsigned ids[ML_CHAN_MAX_CLIENTS];
	struct fanin f;
	uint64_t t0, c0, seq = 0;
	ml_chan *d = NULL;
	int err, k;

	ml_opts(&o, r);
	err = ml_daemon_create(&d, r->name, &o);
	if (err) {
		atomic_store(&x->ctl->ready, 2);
		return mp_fail(&x->mp, "ml_daemon_create: %s", ml_strerror(err));
	}
	snprintf(x->ctl->backend, sizeof(x->ctl->backend), "%s", ml_chan_backend(d));
	atomic_store_explicit(&x->ctl->ready, 1, memory_order_release);
	t0 = now_ns();
	while ((k = ml_chan_clients(d, ids, ML_CHAN_MAX_CLIENTS)) != (int)r->n) {
		if (k < 0)
			return mp_fail(&x->mp, "ml_chan_clients: %s", ml_strerror(k));
		if (now_ns() - t0 > FO_CONNECT_NS)
			return mp_fail(&x->mp, "%d of %u clients connected after 10 s", k, r->n);
		if (mp_aborted(&x->mp))
			return -1;
		mp_nap(1000000);
	}
	memset(&f, 0, sizeof(f));
	ml_snap(d, &s0);
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted at the start");

	/* Throughput. */
	t0 = now_ns();
	c0 = mp_cpu_ns();
	if (r->pattern == P_OUT) {
		uint64_t end = t0 + r->window_ns;

		bool last = false;

		/*
		 * The count goes out before the last round, so that each client
		 * knows its last message when it gets it, not at its next wait.
		 */
		while (!last) {
			if ((seq & 7) == 7 && (mp_aborted(&x->mp) || now_ns() >= end)) {
				atomic_store_explicit(&x->ctl->total, seq + 1, memory_order_release);
				last = true;
			}
			fo_fill(x->buf, r->payload, 0, seq);
			for (unsigned i = 0; i < r->n; i++)
				if ((err = ml_put(x, d, ids[i], x->buf, r->payload)))
					return mp_fail(&x->mp, "reply to id %u: %s", ids[i], ml_strerror(err));
			seq++;
			mp_bump(&x->mp);
		}
		x->me->count = seq * r->n;
		x->me->cpu_ns = mp_cpu_ns() - c0;
		x->me->span_ns = now_ns() - t0;
	} else {
		for (;;) {
			unsigned from = 0;
			uint64_t t;
			int n = ml_chan_recv(d, NULL, &from, x->buf, x->cap);

			if (n >= 0) {
				if (fanin_take(x, &f, n, from, &t))
					return -1;
				mp_bump(&x->mp);
				continue;
			}
			if (n != -EAGAIN)
				return mp_fail(&x->mp, "recv: %s", ml_strerror(n));
			/* Nothing waiting: done once every client is and all arrived. */
			if (fanin_all_in(x, &f))
				break;
			n = ml_chan_wait(d, FO_TAIL_WAIT_NS);
			if (n && n != -ETIMEDOUT)
				return mp_fail(&x->mp, "wait: %s", ml_strerror(n));
			if (mp_aborted(&x->mp))
				return -1;
		}
		x->me->count = f.got;
		x->me->cpu_ns = mp_cpu_ns() - c0;
		x->me->span_ns = now_ns() - t0;
	}
	ml_snap(d, &s1);
	x->me->wakeups = s1.wakeups - s0.wakeups;
	x->me->sleeps = s1.sleeps - s0.sleeps;
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the throughput phase");

	/* Paced. */
	if (r->pattern == P_OUT) {
		uint64_t next = now_ns();

		for (uint64_t j = 0; j < r->samples; j++, seq++) {
			pace_until(next);
			fo_fill(x->buf, r->payload, 0, seq);
			fo_stamp_time(x->buf, now_ns());
			for (unsigned i = 0; i < r->n; i++)
				if ((err = ml_put(x, d, ids[i], x->buf, r->payload)))
					return mp_fail(&x->mp, "paced reply to id %u: %s", ids[i],
						       ml_strerror(err));
			mp_bump(&x->mp);
			if (mp_aborted(&x->mp))
				return -1;
			next = pace_next(next, FO_PACE_NS);
		}
		x->me->pmsgs = r->samples * r->n;
		x->me->seq_total = seq;
	} else {
		uint64_t want = f.got + (r->samples + r->n - 1) / r->n * r->n, base = f.got;

		while (f.got < want) {
			unsigned from = 0;
			uint64_t t;
			int n = ml_get(x, d, &from);

			if (n == -EAGAIN)
				continue;
			if (n < 0)
				return mp_fail(&x->mp, "paced recv: %s", ml_strerror(n));
			if (fanin_take(x, &f, n, from, &t))
				return -1;
			lat_add(x, t);
			mp_bump(&x->mp);
		}
		x->me->pmsgs = f.got - base;
		for (unsigned i = 1; i <= r->n; i++)
			x->ctl->recv_from[i] = f.next[i];
	}
	ml_snap(d, &s2);
	x->me->pwakeups = s2.wakeups - s1.wakeups;
	x->me->psleeps = s2.sleeps - s1.sleeps;
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the paced phase");
	ml_chan_close(d);
	return 0;
}

static int ml_client(struct fo_ctx *x)
{
	const struct fo_row *r = x->r;
	struct ml_chan_stats s0, s1, s2;
	struct ml_chan_opts o;
	uint64_t t0, seq = 0;
	ml_chan *c = NULL;
	uint32_t rd;
	int err;

	t0 = now_ns();
	while ((rd = atomic_load_explicit(&x->ctl->ready, memory_order_acquire)) != 1) {
		if (rd == 2 || mp_aborted(&x->mp))
			return -1;
		if (now_ns() - t0 > FO_CONNECT_NS)
			return mp_fail(&x->mp, "no channel after 10 s");
		mp_nap(1000000);
	}
	ml_opts(&o, r);
	err = ml_client_connect(&c, r->name, &o);
	if (err)
		return mp_fail(&x->mp, "ml_client_connect: %s", ml_strerror(err));
	ml_snap(c, &s0);
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted at the start");

	t0 = now_ns();
	if (r->pattern == P_OUT) {
		uint64_t total = 0;

		for (;;) {
			uint64_t t;
			int n = ml_get(x, c, NULL);

			if (n >= 0) {
				if (!fo_check(x->buf, (size_t)n, r->payload, 0, seq, &t))
					return mp_fail(&x->mp, "message %llu does not check out (lost, "
						       "duplicated, out of order or corrupt)",
						       (unsigned long long)seq);
				seq++;
				mp_bump(&x->mp);
			} else if (n != -EAGAIN) {
				return mp_fail(&x->mp, "recv: %s", ml_strerror(n));
			}
			if (!total)
				total = atomic_load_explicit(&x->ctl->total, memory_order_acquire);
			if (total && seq >= total)
				break;
		}
		x->me->span_ns = now_ns() - t0;
		x->me->count = seq;
	} else {
		uint64_t end = t0 + r->window_ns;

		for (;;) {
			fo_fill(x->buf, r->payload, x->mp.idx, seq);
			if ((err = ml_put(x, c, 0, x->buf, r->payload)))
				return mp_fail(&x->mp, "send: %s", ml_strerror(err));
			seq++;
			mp_bump(&x->mp);
			if ((seq & 7) == 0 && (mp_aborted(&x->mp) || now_ns() >= end))
				break;
		}
		x->me->span_ns = now_ns() - t0;
		x->me->count = seq;
		x->me->seq_total = seq;
		atomic_store_explicit(&x->me->tput_done, 1, memory_order_release);
	}
	ml_snap(c, &s1);
	x->me->wakeups = s1.wakeups - s0.wakeups;
	x->me->sleeps = s1.sleeps - s0.sleeps;
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the throughput phase");

	if (r->pattern == P_OUT) {
		uint64_t want = seq + r->samples;

		while (seq < want) {
			uint64_t t;
			int n = ml_get(x, c, NULL);

			if (n == -EAGAIN)
				continue;
			if (n < 0)
				return mp_fail(&x->mp, "paced recv: %s", ml_strerror(n));
			if (!fo_check(x->buf, (size_t)n, r->payload, 0, seq, &t))
				return mp_fail(&x->mp, "paced message %llu does not check out",
					       (unsigned long long)seq);
			lat_add(x, t);
			seq++;
			mp_bump(&x->mp);
		}
		x->me->seq_total = seq;
	} else {
		uint64_t per = (r->samples + r->n - 1) / r->n, period = FO_PACE_NS * r->n;
		uint64_t next = now_ns() + (x->mp.idx - 1) * FO_PACE_NS;

		for (uint64_t j = 0; j < per; j++, seq++) {
			pace_until(next);
			fo_fill(x->buf, r->payload, x->mp.idx, seq);
			fo_stamp_time(x->buf, now_ns());
			if ((err = ml_put(x, c, 0, x->buf, r->payload)))
				return mp_fail(&x->mp, "paced send: %s", ml_strerror(err));
			mp_bump(&x->mp);
			if (mp_aborted(&x->mp))
				return -1;
			next = pace_next(next, period);
		}
		x->me->seq_total = seq;
	}
	ml_snap(c, &s2);
	x->me->pwakeups = s2.wakeups - s1.wakeups;
	x->me->psleeps = s2.sleeps - s1.sleeps;
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the paced phase");
	ml_chan_close(c);
	return 0;
}

/* ---- ZeroMQ ------------------------------------------------------------- */

#ifdef HAVE_ZMQ
static const char *zmq_skip_reason(void)
{
	return NULL;
}

struct zq {
	void *ctx, *sock;
};

static void zq_close(struct zq *z)
{
	if (z->sock)
		zmq_close(z->sock);
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	z->sock = z->ctx = NULL;
}

static int zq_open(struct fo_ctx *x, struct zq *z, int type)
{
	int zero = 0, one = 1, tmo = (int)(FO_WAIT_NS / 1000000), hwm = FO_ZMQ_HWM;

	z->ctx = zmq_ctx_new();
	if (!z->ctx)
		return mp_fail(&x->mp, "zmq_ctx_new: %s", zmq_strerror(errno));
	z->sock = zmq_socket(z->ctx, type);
	if (!z->sock)
		return mp_fail(&x->mp, "zmq_socket: %s", zmq_strerror(errno));
	zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(z->sock, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(z->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(z->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (type == ZMQ_XPUB) {
		/* Wait for room instead of dropping; every subscription reaches us. */
		if (zmq_setsockopt(z->sock, ZMQ_XPUB_NODROP, &one, sizeof(one)) ||
		    zmq_setsockopt(z->sock, ZMQ_XPUB_VERBOSE, &one, sizeof(one)))
			return mp_fail(&x->mp, "XPUB options: %s", zmq_strerror(errno));
	}
	if (type == ZMQ_SUB && zmq_setsockopt(z->sock, ZMQ_SUBSCRIBE, "", 0))
		return mp_fail(&x->mp, "ZMQ_SUBSCRIBE: %s", zmq_strerror(errno));
	return 0;
}

/*
 * Blocking send (SNDTIMEO 100 ms, then the abort flag). An XPUB with
 * NODROP refuses the message for all subscribers while one of them is at
 * its high-water mark; a blocking send waits until that pipe has room.
 */
static int zq_put(struct fo_ctx *x, struct zq *z, const void *buf, size_t len)
{
	for (;;) {
		if (zmq_send(z->sock, buf, len, 0) == (int)len)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (mp_aborted(&x->mp))
			return -ECANCELED;
	}
}

/* One message into x->buf (blocking, 100 ms); -EAGAIN when none came. */
static int zq_get(struct fo_ctx *x, struct zq *z)
{
	int n = zmq_recv(z->sock, x->buf, x->cap, 0);

	if (n >= 0)
		return (size_t)n > x->cap ? -EMSGSIZE : n;
	if (errno != EAGAIN && errno != EINTR)
		return -errno;
	return mp_aborted(&x->mp) ? -ECANCELED : -EAGAIN;
}

static int zq_daemon(struct fo_ctx *x)
{
	const struct fo_row *r = x->r;
	struct fanin f;
	struct zq z = { 0 };
	uint64_t t0, c0, seq = 0;
	unsigned subs = 0;
	int err;

	memset(&f, 0, sizeof(f));
	if (zq_open(x, &z, r->pattern == P_OUT ? ZMQ_XPUB : ZMQ_PULL)) {
		atomic_store(&x->ctl->ready, 2);
		return -1;
	}
	if (zmq_bind(z.sock, r->endpoint)) {
		atomic_store(&x->ctl->ready, 2);
		return mp_fail(&x->mp, "zmq_bind %s: %s", r->endpoint, zmq_strerror(errno));
	}
	snprintf(x->ctl->backend, sizeof(x->ctl->backend), "-");
	atomic_store_explicit(&x->ctl->ready, 1, memory_order_release);
	/* Until every SUB subscribed (fan-out), every PUSH said hello (fan-in). */
	t0 = now_ns();
	while (r->pattern == P_OUT ? subs < r->n : f.got < r->n) {
		int n = zq_get(x, &z);

		if (n == -EAGAIN || n == -ECANCELED) {
			if (mp_aborted(&x->mp))
				return -1;
			if (now_ns() - t0 > FO_CONNECT_NS)
				return mp_fail(&x->mp, "%u of %u clients there after 10 s",
					       r->pattern == P_OUT ? subs : (unsigned)f.got, r->n);
			continue;
		}
		if (n < 0)
			return mp_fail(&x->mp, "zmq_recv: %s", zmq_strerror(-n));
		if (r->pattern == P_OUT) {
			if (n >= 1 && x->buf[0] == 1)
				subs++;
		} else {
			uint64_t t;

			if (fanin_take(x, &f, n, ~0u, &t))
				return -1;
		}
	}
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted at the start");

	t0 = now_ns();
	c0 = mp_cpu_ns();
	if (r->pattern == P_OUT) {
		uint64_t end = t0 + r->window_ns;

		bool last = false;

		while (!last) {
			if ((seq & 7) == 7 && (mp_aborted(&x->mp) || now_ns() >= end)) {
				atomic_store_explicit(&x->ctl->total, seq + 1, memory_order_release);
				last = true;
			}
			fo_fill(x->buf, r->payload, 0, seq);
			if ((err = zq_put(x, &z, x->buf, r->payload)))
				return mp_fail(&x->mp, "zmq_send: %s", zmq_strerror(-err));
			seq++;
			mp_bump(&x->mp);
		}
		/* One send reaches all N: the copies count, as memlink's replies do. */
		x->me->count = seq * r->n;
		x->me->cpu_ns = mp_cpu_ns() - c0;
		x->me->span_ns = now_ns() - t0;
	} else {
		uint64_t hellos = f.got;

		for (;;) {
			zmq_pollitem_t pi = { .socket = z.sock, .events = ZMQ_POLLIN };
			uint64_t t;
			int n = zmq_recv(z.sock, x->buf, x->cap, ZMQ_DONTWAIT);

			if (n >= 0) {
				if ((size_t)n > x->cap)
					return mp_fail(&x->mp, "a message of %d bytes", n);
				if (fanin_take(x, &f, n, ~0u, &t))
					return -1;
				mp_bump(&x->mp);
				continue;
			}
			if (errno != EAGAIN && errno != EINTR)
				return mp_fail(&x->mp, "zmq_recv: %s", zmq_strerror(errno));
			/* Nothing waiting: done once every client is and all arrived. */
			if (fanin_all_in(x, &f))
				break;
			if (zmq_poll(&pi, 1, FO_TAIL_WAIT_NS / 1000000) < 0 && errno != EINTR)
				return mp_fail(&x->mp, "zmq_poll: %s", zmq_strerror(errno));
			if (mp_aborted(&x->mp))
				return -1;
		}
		x->me->count = f.got - hellos;
		x->me->cpu_ns = mp_cpu_ns() - c0;
		x->me->span_ns = now_ns() - t0;
	}
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the throughput phase");

	if (r->pattern == P_OUT) {
		uint64_t next = now_ns();

		for (uint64_t j = 0; j < r->samples; j++, seq++) {
			pace_until(next);
			fo_fill(x->buf, r->payload, 0, seq);
			fo_stamp_time(x->buf, now_ns());
			if ((err = zq_put(x, &z, x->buf, r->payload)))
				return mp_fail(&x->mp, "paced zmq_send: %s", zmq_strerror(-err));
			mp_bump(&x->mp);
			if (mp_aborted(&x->mp))
				return -1;
			next = pace_next(next, FO_PACE_NS);
		}
		x->me->pmsgs = r->samples * r->n;
		x->me->seq_total = seq;
	} else {
		uint64_t want = f.got + (r->samples + r->n - 1) / r->n * r->n, base = f.got;

		while (f.got < want) {
			uint64_t t;
			int n = zq_get(x, &z);

			if (n == -EAGAIN)
				continue;
			if (n < 0)
				return mp_fail(&x->mp, "paced zmq_recv: %s", zmq_strerror(-n));
			if (fanin_take(x, &f, n, ~0u, &t))
				return -1;
			lat_add(x, t);
			mp_bump(&x->mp);
		}
		x->me->pmsgs = f.got - base;
		for (unsigned i = 1; i <= r->n; i++)
			x->ctl->recv_from[i] = f.next[i];
	}
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the paced phase");
	zq_close(&z);
	return 0;
}

static int zq_client(struct fo_ctx *x)
{
	const struct fo_row *r = x->r;
	struct zq z = { 0 };
	uint64_t t0, seq = 0;
	uint32_t rd;
	int err;

	t0 = now_ns();
	while ((rd = atomic_load_explicit(&x->ctl->ready, memory_order_acquire)) != 1) {
		if (rd == 2 || mp_aborted(&x->mp))
			return -1;
		if (now_ns() - t0 > FO_CONNECT_NS)
			return mp_fail(&x->mp, "no socket after 10 s");
		mp_nap(1000000);
	}
	if (zq_open(x, &z, r->pattern == P_OUT ? ZMQ_SUB : ZMQ_PUSH))
		return -1;
	if (zmq_connect(z.sock, r->endpoint))
		return mp_fail(&x->mp, "zmq_connect %s: %s", r->endpoint, zmq_strerror(errno));
	if (r->pattern == P_IN) {
		/* Hello: message 0, so the daemon knows the pipe is up. */
		fo_fill(x->buf, r->payload, x->mp.idx, seq);
		if ((err = zq_put(x, &z, x->buf, r->payload)))
			return mp_fail(&x->mp, "hello: %s", zmq_strerror(-err));
		seq++;
	}
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted at the start");

	t0 = now_ns();
	if (r->pattern == P_OUT) {
		uint64_t total = 0;

		for (;;) {
			uint64_t t;
			int n = zq_get(x, &z);

			if (n >= 0) {
				if (!fo_check(x->buf, (size_t)n, r->payload, 0, seq, &t))
					return mp_fail(&x->mp, "message %llu does not check out (lost, "
						       "duplicated, out of order or corrupt)",
						       (unsigned long long)seq);
				seq++;
				mp_bump(&x->mp);
			} else if (n != -EAGAIN) {
				return mp_fail(&x->mp, "zmq_recv: %s", zmq_strerror(-n));
			}
			if (!total)
				total = atomic_load_explicit(&x->ctl->total, memory_order_acquire);
			if (total && seq >= total)
				break;
		}
		x->me->span_ns = now_ns() - t0;
		x->me->count = seq;
	} else {
		uint64_t end = t0 + r->window_ns, first = seq;

		for (;;) {
			fo_fill(x->buf, r->payload, x->mp.idx, seq);
			if ((err = zq_put(x, &z, x->buf, r->payload)))
				return mp_fail(&x->mp, "zmq_send: %s", zmq_strerror(-err));
			seq++;
			mp_bump(&x->mp);
			if ((seq & 7) == 0 && (mp_aborted(&x->mp) || now_ns() >= end))
				break;
		}
		x->me->span_ns = now_ns() - t0;
		x->me->count = seq - first;
		x->me->seq_total = seq;
		atomic_store_explicit(&x->me->tput_done, 1, memory_order_release);
	}
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the throughput phase");

	if (r->pattern == P_OUT) {
		uint64_t want = seq + r->samples;

		while (seq < want) {
			uint64_t t;
			int n = zq_get(x, &z);

			if (n == -EAGAIN)
				continue;
			if (n < 0)
				return mp_fail(&x->mp, "paced zmq_recv: %s", zmq_strerror(-n));
			if (!fo_check(x->buf, (size_t)n, r->payload, 0, seq, &t))
				return mp_fail(&x->mp, "paced message %llu does not check out",
					       (unsigned long long)seq);
			lat_add(x, t);
			seq++;
			mp_bump(&x->mp);
		}
		x->me->seq_total = seq;
	} else {
		uint64_t per = (r->samples + r->n - 1) / r->n, period = FO_PACE_NS * r->n;
		uint64_t next = now_ns() + (x->mp.idx - 1) * FO_PACE_NS;

		for (uint64_t j = 0; j < per; j++, seq++) {
			pace_until(next);
			fo_fill(x->buf, r->payload, x->mp.idx, seq);
			fo_stamp_time(x->buf, now_ns());
			if ((err = zq_put(x, &z, x->buf, r->payload)))
				return mp_fail(&x->mp, "paced zmq_send: %s", zmq_strerror(-err));
			mp_bump(&x->mp);
			if (mp_aborted(&x->mp))
				return -1;
			next = pace_next(next, period);
		}
		x->me->seq_total = seq;
	}
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the paced phase");
	zq_close(&z);
	return 0;
}
#else /* !HAVE_ZMQ */
static const char *zmq_skip_reason(void)
{
	return "libzmq3-dev not installed (built without HAVE_ZMQ)";
}
#endif

/* ---- the parent: one row ------------------------------------------------ */

/*
 * The zmq row's socket file, for a parent stopped by SIGINT or SIGTERM
 * (its children die with it: PR_SET_PDEATHSIG; linux channels leave nothing).
 */
static char cur_path[112];

static void on_stop(int sig)
{
	if (cur_path[0])
		unlink(cur_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void fo_child(struct mp_area *A, const struct fo_row *r, unsigned idx)
{
	struct fo_ctl *ctl = A->ctl;
	struct fo_ctx x = {
		.mp = { .ctl = &ctl->mp, .slot = &ctl->mp.slot[idx], .names = &fo_names,
			.idx = idx, .parties = r->n + 1 },
		.ctl = ctl,
		.r = r,
		.me = &ctl->proc[idx],
		.lat = A->lat + (size_t)idx * A->slice,
		.lat_cap = A->slice,
		.cap = r->payload + 64,
	};
	int rc = -1;

	mp_child_start();
	x.buf = malloc(x.cap);
	if (!x.buf) {
		mp_fail(&x.mp, "malloc");
		_exit(1);
	}
	if (r->transport == T_MEMLINK)
		rc = idx ? ml_client(&x) : ml_daemon(&x);
#ifdef HAVE_ZMQ
	else
		rc = idx ? zq_client(&x) : zq_daemon(&x);
#endif
	mp_child_exit(&x.mp, rc);
}

struct fo_result {
	bool verified;
	char err[200];
	const char *backend;
	char backend_buf[16];
	double rate;            /* msgs/s per client, median */
	double rate_lo, rate_hi;
	double cpu_per_msg;
	double wake_per_msg, dsleep_per_msg, csleep_per_msg;  /* < 0: none */
	double pwake_per_msg, psleep_per_msg;
	uint64_t msgs;          /* throughput messages delivered */
	struct lat_summary lat;
	bool oversub;
};

static void set_err(struct fo_result *res, const char *fmt, ...)
{
	va_list ap;

	if (res->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(res->err, sizeof(res->err), fmt, ap);
	va_end(ap);
}

struct fo_spawn_arg {
	struct mp_area *A;
	const struct fo_row *r;
};

static void fo_spawn_child(void *arg, unsigned idx)
{
	struct fo_spawn_arg *a = arg;

	fo_child(a->A, a->r, idx);
}

/* Fork, watch, reap (mp_run); 0 when every child finished its part. */
static int fo_spawn(struct mp_area *A, const struct fo_row *r, struct fo_result *res)
{
	struct fo_ctl *c = A->ctl;
	struct fo_spawn_arg a = { A, r };
	struct mp_row m = {
		.ctl = &c->mp, .names = &fo_names, .procs = r->n + 1, .max_ns = FO_ROW_MAX_NS,
		.child = fo_spawn_child, .arg = &a, .err = res->err, .err_len = sizeof(res->err),
	};
	int ret;

	memset(c, 0, sizeof(*c));
	if (r->transport == T_ZMQ)
		memcpy(cur_path, r->path, sizeof(cur_path));
	ret = mp_run(&m);
	/* Whatever a killed daemon left: the socket file, the channel. */
	if (r->transport == T_ZMQ) {
		unlink(r->path);
		cur_path[0] = 0;
	} else if (ret)
		ml_chan_gc(r->name, 0);
	return ret;
}

static void fo_row_run(struct mp_area *A, const struct fo_row *r, struct fo_result *res,
		       long ncpus)
{
	struct fo_ctl *c = A->ctl;
	double rates[FO_MAX_CLIENTS];
	uint64_t wake = 0, csleep = 0, pwake = 0, psleep = 0, delivered, nlat = 0;
	uint32_t *lat;
	int rc;

	memset(res, 0, sizeof(*res));
	res->wake_per_msg = res->dsleep_per_msg = res->csleep_per_msg = -1;
	res->pwake_per_msg = res->psleep_per_msg = -1;
	res->oversub = (long)r->n + 1 > ncpus;
	res->backend = r->transport == T_ZMQ ? "-" : "?";
	rc = fo_spawn(A, r, res);
	if (r->transport == T_MEMLINK && c->backend[0]) {
		snprintf(res->backend_buf, sizeof(res->backend_buf), "%s", c->backend);
		res->backend = res->backend_buf;
	}
	if (rc)
		return;
	for (unsigned i = 0; i <= r->n; i++)
		if (atomic_load(&c->mp.slot[i].state) != MP_OK) {
			set_err(res, "process %u did not finish", i);
			return;
		}
	/* Counts equal at the end: nothing lost, nothing extra. */
	for (unsigned i = 1; i <= r->n; i++) {
		uint64_t sent = r->pattern == P_OUT ? c->proc[0].seq_total : c->proc[i].seq_total;
		uint64_t got = r->pattern == P_OUT ? c->proc[i].seq_total : c->recv_from[i];

		if (sent != got || !sent) {
			set_err(res, "client %u: %llu sent, %llu received", i,
				(unsigned long long)sent, (unsigned long long)got);
			return;
		}
	}
	for (unsigned i = 1; i <= r->n; i++)
		rates[i - 1] = c->proc[i].span_ns ?
			       (double)c->proc[i].count * 1e9 / (double)c->proc[i].span_ns : 0;
	res->rate = stats_median(rates, r->n, &res->rate_lo, &res->rate_hi);
	delivered = c->proc[0].count;
	res->msgs = delivered;
	res->cpu_per_msg = delivered ? (double)c->proc[0].cpu_ns / (double)delivered : -1;
	if (r->transport == T_MEMLINK && delivered) {
		for (unsigned i = 0; i <= r->n; i++) {
			wake += c->proc[i].wakeups;
			pwake += c->proc[i].pwakeups;
			psleep += c->proc[i].psleeps;
			if (i)
				csleep += c->proc[i].sleeps;
		}
		res->wake_per_msg = (double)wake / (double)delivered;
		res->dsleep_per_msg = (double)c->proc[0].sleeps / (double)delivered;
		res->csleep_per_msg = (double)csleep / (double)delivered;
		if (c->proc[0].pmsgs) {
			res->pwake_per_msg = (double)pwake / (double)c->proc[0].pmsgs;
			res->psleep_per_msg = (double)psleep / (double)c->proc[0].pmsgs;
		}
	}
	/* Latency: the receivers' samples, pooled. */
	for (unsigned i = 0; i <= r->n; i++)
		nlat += c->proc[i].nlat;
	lat = malloc(sizeof(*lat) * (nlat ? nlat : 1));
	if (!lat) {
		set_err(res, "malloc");
		return;
	}
	nlat = 0;
	for (unsigned i = 0; i <= r->n; i++) {
		memcpy(lat + nlat, A->lat + (size_t)i * A->slice, sizeof(*lat) * c->proc[i].nlat);
		nlat += c->proc[i].nlat;
	}
	stats_summarize(lat, nlat, &res->lat);
	free(lat);
	res->verified = true;
}

/* ---- output ------------------------------------------------------------- */

struct fo_opts {
	bool json, quick;
	unsigned nclients, clients[FO_MAX_LIST];
	unsigned npayloads, payload[FO_MAX_LIST];
	unsigned nmodes, modes[3];
	bool only_memlink, only_zmq;
};

static void num(char *b, size_t len, double v, const char *fmt)
{
	if (v < 0)
		snprintf(b, len, "-");
	else
		snprintf(b, len, fmt, v);
}

static void table_header(void)
{
	printf("%-8s %-3s %-8s %-7s %3s %7s %10s %9s %8s %8s %8s %9s %9s %8s %9s %s\n",
	       "xport", "pat", "mode", "backend", "N", "payload", "msgs/s/cl", "d-ns/msg",
	       "wake/msg", "dslp/msg", "cslp/msg", "pace-wake", "pace-slp", "p50 ns", "p99 ns",
	       "verified");
}

static void emit_row(const struct fo_opts *o, const struct fo_row *r, const struct fo_result *res)
{
	const char *xport = r->transport == T_ZMQ ? "zmq" : "memlink";
	const char *mode = r->transport == T_ZMQ ? "blocking" : mode_str(r->mode);

	if (o->json) {
		printf("{\"bench\":\"fanout\"");
		fputc(',', stdout);
		stats_json_str(stdout, "transport", xport);
		printf(",\"pattern\":\"%s\",\"mode\":\"%s\",", pattern_name[r->pattern], mode);
		stats_json_str(stdout, "backend", res->backend);
		printf(",\"clients\":%u,\"payload\":%zu", r->n, r->payload);
		printf(",\"msgs_per_s_client\":%.0f,\"msgs_per_s_client_min\":%.0f,"
		       "\"msgs_per_s_client_max\":%.0f,\"msgs\":%llu",
		       res->rate, res->rate_lo, res->rate_hi, (unsigned long long)res->msgs);
#define JNUM(k, v, fmt)                                          \
	do {                                                     \
		if ((v) < 0)                                     \
			printf(",\"" k "\":null");               \
		else                                             \
			printf(",\"" k "\":" fmt, (v));          \
	} while (0)
		JNUM("daemon_cpu_ns_per_msg", res->verified ? res->cpu_per_msg : -1, "%.1f");
		JNUM("wakeups_per_msg", res->wake_per_msg, "%.4g");
		JNUM("sleeps_per_msg", res->dsleep_per_msg < 0 ? -1 :
		     res->dsleep_per_msg + res->csleep_per_msg, "%.4g");
		JNUM("daemon_sleeps_per_msg", res->dsleep_per_msg, "%.4g");
		JNUM("client_sleeps_per_msg", res->csleep_per_msg, "%.4g");
		JNUM("paced_wakeups_per_msg", res->pwake_per_msg, "%.4g");
		JNUM("paced_sleeps_per_msg", res->psleep_per_msg, "%.4g");
#undef JNUM
		printf(",\"samples\":%llu,\"p50_ns\":%llu,\"p99_ns\":%llu,\"lat_min_ns\":%llu,"
		       "\"lat_p90_ns\":%llu,\"lat_max_ns\":%llu,\"lat_mean_ns\":%.0f,\"pace_ns\":%llu",
		       (unsigned long long)res->lat.n, (unsigned long long)res->lat.p50,
		       (unsigned long long)res->lat.p99, (unsigned long long)res->lat.min,
		       (unsigned long long)res->lat.p90, (unsigned long long)res->lat.max,
		       res->lat.mean, FO_PACE_NS);
		printf(",\"window_ns\":%llu,\"oversubscribed\":%s,\"verified\":%s",
		       (unsigned long long)r->window_ns, res->oversub ? "true" : "false",
		       res->verified ? "true" : "false");
		if (res->err[0]) {
			fputc(',', stdout);
			stats_json_str(stdout, "error", res->err);
		}
		fputs("}\n", stdout);
	} else {
		char rate[32], cpu[32], w[32], ds[32], cs[32], pw[32], ps[32];

		if (res->verified)
			stats_rate(rate, sizeof(rate), res->rate);
		else
			snprintf(rate, sizeof(rate), "-");
		num(cpu, sizeof(cpu), res->verified ? res->cpu_per_msg : -1, "%.1f");
		num(w, sizeof(w), res->wake_per_msg, "%.4f");
		num(ds, sizeof(ds), res->dsleep_per_msg, "%.4f");
		num(cs, sizeof(cs), res->csleep_per_msg, "%.4f");
		num(pw, sizeof(pw), res->pwake_per_msg, "%.3f");
		num(ps, sizeof(ps), res->psleep_per_msg, "%.3f");
		printf("%-8s %-3s %-8s %-7s %3u %7zu %10s %9s %8s %8s %8s %9s %9s %8llu %9llu %s%s\n",
		       xport, pattern_name[r->pattern], mode, res->backend, r->n, r->payload, rate,
		       cpu, w, ds, cs, pw, ps, (unsigned long long)res->lat.p50,
		       (unsigned long long)res->lat.p99, res->verified ? "yes" : "NO",
		       res->oversub ? " (oversubscribed)" : "");
		if (res->err[0])
			printf("  ^ %s\n", res->err);
	}
	fflush(stdout);
}

static void emit_skip(const struct fo_opts *o, const struct fo_row *r, const char *why)
{
	if (o->json) {
		printf("{\"bench\":\"fanout\",\"transport\":\"zmq\",\"pattern\":\"%s\","
		       "\"mode\":\"blocking\",\"backend\":\"-\",\"payload\":%zu,",
		       pattern_name[r->pattern], r->payload);
		stats_json_str(stdout, "skipped", why);
		fputs("}\n", stdout);
	} else {
		printf("%-8s %-3s %-8s %-7s %3s %7zu  skipped: %s\n", "zmq", pattern_name[r->pattern],
		       "blocking", "-", "-", r->payload, why);
	}
	fflush(stdout);
}

/* ---- command line ------------------------------------------------------- */

void bench_fanout_usage(FILE *f)
{
	fprintf(f, "memlink-bench fanout [--quick] [--json] [--clients N,...] [--payload N,...]\n"
		   "                     [--only memlink|zmq] [--mode adaptive,blocking,busy]\n"
		   "  One daemon and N client processes (fork, not pinned): fan-out, the daemon\n"
		   "  sends every message to every client (ml_chan_reply), and fan-in, every\n"
		   "  client streams to the daemon (ml_chan_send); in each wait mode, beside\n"
		   "  ZeroMQ over ipc:// (XPUB with NODROP to N SUB; N PUSH to one PULL).\n"
		   "  Default N = 1,2,4,8,16 (--quick: 1,2,8), payloads 64,1024 (16..4096).\n"
		   "  msgs/s/cl  per client sent (in) or received (out) over a fixed window\n"
		   "             (0.5 s; --quick 0.1 s), median over the clients\n"
		   "  d-ns/msg   the daemon's CPU time per message it sent (out: all N copies)\n"
		   "             or received (in)\n"
		   "  wake/msg   ml_chan_stats wakeups of the daemon and every client, per\n"
		   "             message delivered; dslp, cslp: the daemon's and the clients'\n"
		   "             sleeps per message; pace-wake, pace-slp: the same in the paced\n"
		   "             phase (wake-ups and sleeps of all, per message delivered)\n"
		   "  p50, p99   one-way latency, one message every 20 us from the sender(s)\n"
		   "             (out: the daemon to all; in: each client every 20 us x N),\n"
		   "             20000 messages (--quick 2000); all receivers' samples pooled\n"
		   "  --mode picks memlink's wait modes; the zmq rows block (RCVTIMEO 100 ms).\n"
		   "  (oversubscribed): N + 1 processes > online CPUs. Every message is checked\n"
		   "  (sender, sequence, every byte); a row that fails says NO and the exit\n"
		   "  status is 1.\n");
}

static int parse_modes(const char *s, unsigned *out)
{
	char buf[128], *save = NULL, *t;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned m;

		if (!strcmp(t, "adaptive"))
			m = ML_WAIT_ADAPTIVE;
		else if (!strcmp(t, "blocking"))
			m = ML_WAIT_BLOCKING;
		else if (!strcmp(t, "busy"))
			m = ML_WAIT_BUSY;
		else
			return -1;
		if (n == 3)
			return -1;
		out[n++] = m;
	}
	return n ? n : -1;
}

int bench_fanout_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "clients", required_argument, NULL, 'c' },
		{ "payload", required_argument, NULL, 'p' },
		{ "only", required_argument, NULL, 'o' },
		{ "mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fo_opts o = {
		.nclients = 0,
		.npayloads = 2, .payload = { 64, 1024 },
		.nmodes = 3, .modes = { ML_WAIT_ADAPTIVE, ML_WAIT_BLOCKING, ML_WAIT_BUSY },
	};
	bool clients_set = false;
	uint64_t window, samples;
	struct mp_area A = { 0 };
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	int c, bad = 0, n;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.quick = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'c':
			if (mp_opt_list("fanout", "clients", optarg, o.clients, &o.nclients,
					FO_MAX_LIST, 1, FO_MAX_CLIENTS))
				return 2;
			clients_set = true;
			break;
		case 'p':
			if (mp_opt_list("fanout", "payload", optarg, o.payload, &o.npayloads,
					FO_MAX_LIST, FO_MIN_PAYLOAD, FO_MAX_PAYLOAD))
				return 2;
			break;
		case 'o':
			if (!strcmp(optarg, "memlink")) {
				o.only_memlink = true;
				o.only_zmq = false;
			} else if (!strcmp(optarg, "zmq")) {
				o.only_zmq = true;
				o.only_memlink = false;
			} else {
				fprintf(stderr, "memlink-bench fanout: --only memlink|zmq\n");
				return 2;
			}
			break;
		case 'm':
			n = parse_modes(optarg, o.modes);
			if (n < 0) {
				fprintf(stderr, "memlink-bench fanout: bad --mode '%s'\n", optarg);
				return 2;
			}
			o.nmodes = (unsigned)n;
			break;
		case 'h':
			bench_fanout_usage(stdout);
			return 0;
		default:
			bench_fanout_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		bench_fanout_usage(stderr);
		return 2;
	}
	if (!clients_set) {
		static const unsigned full[] = { 1, 2, 4, 8, 16 }, quick[] = { 1, 2, 8 };
		const unsigned *l = o.quick ? quick : full;

		o.nclients = o.quick ? 3 : 5;
		memcpy(o.clients, l, o.nclients * sizeof(*l));
	}
	window = o.quick ? 100000000ull : 500000000ull;
	samples = o.quick ? 2000 : 20000;
	if (mp_area_init(&A, sizeof(struct fo_ctl), FO_MAX_PROCS, samples + FO_MAX_CLIENTS) < 0) {
		fprintf(stderr, "memlink-bench fanout: mmap: %s\n", strerror(errno));
		return 1;
	}
	/* The children report through A; SIGPIPE from a socket must not kill one silently. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	if (!o.json)
		table_header();
	for (unsigned pat = 0; pat < 2; pat++) {
		for (unsigned p = 0; p < o.npayloads; p++) {
			struct fo_row r = { .pattern = (int)pat, .payload = o.payload[p],
					    .window_ns = window, .samples = samples };
			struct fo_result res;

			for (unsigned m = 0; m < o.nmodes && !o.only_zmq; m++) {
				for (unsigned k = 0; k < o.nclients; k++) {
					r.transport = T_MEMLINK;
					r.mode = o.modes[m];
					r.n = o.clients[k];
					snprintf(r.name, sizeof(r.name), "bench.fan.%d.%s%u.%s.%zu",
						 (int)getpid(), pattern_name[pat], r.n, mode_str(r.mode),
						 r.payload);
					fo_row_run(&A, &r, &res, ncpus);
					emit_row(&o, &r, &res);
					bad |= !res.verified;
				}
			}
			if (o.only_memlink)
				continue;
			r.transport = T_ZMQ;
			r.mode = ML_WAIT_BLOCKING;
			if (zmq_skip_reason()) {
				emit_skip(&o, &r, zmq_skip_reason());
				continue;
			}
			for (unsigned k = 0; k < o.nclients; k++) {
				r.n = o.clients[k];
				snprintf(r.path, sizeof(r.path), "/tmp/memlink-bench.fan.%d.%s%u.%zu.zmq",
					 (int)getpid(), pattern_name[pat], r.n, r.payload);
				snprintf(r.endpoint, sizeof(r.endpoint), "ipc://%s", r.path);
				fo_row_run(&A, &r, &res, ncpus);
				emit_row(&o, &r, &res);
				bad |= !res.verified;
			}
		}
	}
	munmap(A.map, A.len);
	return bad ? 1 : 0;
}

// SPDX-License-Identifier: MIT
/*
 * memlink-bench pubsub: one publisher process and N subscriber processes
 * (fork, not pinned), issue 18's benchmark. The transports are struct
 * ps_ops entries (bench_pubsub.h):
 *
 *   memlink       a topic (ml_pub_send(), ml_sub_recv(), ml_sub_wait()),
 *                 reliable so that nothing is dropped, as for the others;
 *                 default options but the wait mode.
 *   memlink-chan  today's workaround: the publisher is a channel's daemon
 *                 and sends every message to each client in turn with
 *                 ml_chan_reply() (ml_chan_send_wait() on a full lane);
 *                 the subscribers are clients, ml_chan_recv() and
 *                 ml_chan_wait(). Default options but the wait mode.
 *   iceoryx       its C binding: one publisher, N subscribers, copied into
 *                 a loaned chunk; WAIT_FOR_CONSUMER / BLOCK_PRODUCER, so
 *                 nothing is dropped. Busy: poll iox_sub_take_chunk();
 *                 blocking: a waitset. The bench's own iox-roudi
 *                 (peer_iceoryx.c) runs around the iceoryx rows.
 *   zmq           ZeroMQ over ipc://: XPUB (PUB that also sees the
 *                 subscriptions, to know all N are there) with
 *                 ZMQ_XPUB_NODROP, so that a full subscriber makes the
 *                 send wait instead of dropping, to N SUB sockets.
 *                 Blocking only.
 *
 * A row runs in phases, between barriers of all N + 1 processes:
 *   connect     the publisher opens, the subscribers attach, the
 *               publisher waits until it has all N
 *   throughput  the publisher sends for a fixed wall time window, then
 *               publishes how many it sent; each subscriber takes them all.
 *               One message in 16 carries its send time (unpaced latency:
 *               mostly the time spent queued)
 *   paced       one message every 20 us, each with its send time; every
 *               subscriber takes the one-way latency of each
 *
 * Every message carries its sequence number in word 0 (running on across
 * both phases), its send time in word 1 (0: none), the sequence number
 * again (xor a key) in its last word and, between, one of 64 patterns
 * chosen by the sequence number: each subscriber checks every byte of
 * every message, in order (a lost, duplicated, reordered or torn message
 * fails the row), and at the end every subscriber must have taken exactly
 * as many as were published.
 *
 * The processes report through a MAP_SHARED | MAP_ANONYMOUS area made by
 * the parent, which only watches: a child that fails aborts the row, and so
 * does one that makes no progress for 10 s; the rest are then killed and
 * reaped, and the row says verified:false. That row of processes is
 * mproc.c's, shared with fanout.
 */
#include "bench_pubsub.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
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
#include "peer.h"
#include "stats.h"

#ifdef HAVE_ZMQ
#include <zmq.h>
#endif

#ifdef HAVE_ICEORYX
#include "iceoryx_binding_c/chunk.h"
#include "iceoryx_binding_c/enums.h"
#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/types.h"
#include "iceoryx_binding_c/wait_set.h"
#endif

#define PS_MAX_SUBS 16u
#define PS_MAX_PROCS (PS_MAX_SUBS + 1)
#define PS_MAX_LIST 8
#define PS_MIN_PAYLOAD 16u          /* sequence number, send time */
#define PS_MAX_PAYLOAD 4096u        /* the channel's default max_msg */
#define PS_PACE_NS 20000ull         /* paced phase: one message per 20 us */
#define PS_WAIT_NS 100000000ll      /* each wait: 100 ms, then the abort flag */
#define PS_CONNECT_NS 10000000000ull
#define PS_ROW_MAX_NS 300000000000ull
#define PS_STAMP_EVERY 16u          /* throughput: one send time per 16 */
#define PS_TLAT_CAP 65536u          /* unpaced samples kept per subscriber */
#define PS_ZMQ_HWM 100000
#define PS_GOLD 0x9e3779b97f4a7c15ull
#define PS_KEY 0xc2b2ae3d27d4eb4full
#define PS_VARIANTS 64u             /* message bodies, by sequence number */


static const char *const mode_name[] = { "busy", "blocking" };

/* ---- messages ----------------------------------------------------------- */

static uint64_t ps_mix(uint64_t x)
{
	x += PS_GOLD;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * PS_VARIANTS prepared bodies, made by each process: the publisher only
 * stamps three words into one, so that its CPU time per message is the
 * transport's, not the pattern's (1 KiB of pattern would cost it more than
 * some transports do).
 */
struct ps_msgs {
	size_t len;
	unsigned char *var[PS_VARIANTS];
	void *alloc;
};

static int ps_msgs_init(struct ps_msgs *m, size_t len)
{
	size_t stride = (len + 63) / 64 * 64;
	unsigned char *a = aligned_alloc(64, stride * PS_VARIANTS);

	if (!a)
		return -ENOMEM;
	m->len = len;
	m->alloc = a;
	for (unsigned v = 0; v < PS_VARIANTS; v++) {
		uint64_t base = ps_mix(v), w;
		unsigned char *b = a + v * stride;
		size_t i = 16, k = 2;

		memset(b, 0, len);
		for (; i + 8 <= len; i += 8, k++) {
			w = base + k * PS_GOLD;
			memcpy(b + i, &w, 8);
		}
		if (i < len) {
			w = base + k * PS_GOLD;
			memcpy(b + i, &w, len - i);
		}
		m->var[v] = b;
	}
	return 0;
}

/* Message seq sent at t (0: no time): the bytes to send. */
static const void *ps_stamp(struct ps_msgs *m, uint64_t seq, uint64_t t)
{
	unsigned char *b = m->var[seq % PS_VARIANTS];
	uint64_t tail = seq ^ PS_KEY;

	memcpy(b, &seq, 8);
	memcpy(b + 8, &t, 8);
	if (m->len >= 24)
		memcpy(b + m->len - 8, &tail, 8);
	return b;
}

/*
 * Is b[0..n) exactly message seq? Its send time to *t. The body must be its
 * variant's, byte for byte, and the tail word must match the head's: a
 * message torn between two others (or overwritten while read) fails.
 */
static bool ps_check(const struct ps_msgs *m, const unsigned char *b, size_t n, uint64_t seq,
		     uint64_t *t)
{
	const unsigned char *v = m->var[seq % PS_VARIANTS];
	uint64_t w;

	if (n != m->len)
		return false;
	memcpy(&w, b, 8);
	if (w != seq)
		return false;
	memcpy(t, b + 8, 8);
	if (n < 24)
		return true;
	memcpy(&w, b + n - 8, 8);
	return w == (seq ^ PS_KEY) && !memcmp(b + 16, v + 16, n - 24);
}

/* ---- the shared area ---------------------------------------------------- */

/* One per process: [0] the publisher, [i] subscriber i. */
struct ps_proc {
	/* Own cache line: each process writes its own while the others run. */
	alignas(128) uint64_t count; /* throughput phase: published, or received */
	uint64_t span_ns;     /* over this much wall time */
	uint64_t cpu_ns;      /* publisher: its CPU time (all threads) over it */
	uint64_t seq_total;   /* in all: published, or received and checked */
	uint64_t nlat, ntlat; /* paced and unpaced latency samples */
};

_Static_assert(PS_MAX_PROCS <= MP_MAX_PROCS, "a slot per process");

struct ps_ctl {
	struct mp_ctl mp;                       /* first: abort, barrier, slots */
	alignas(128) _Atomic uint32_t ready;    /* publisher: 1 open, 2 failed */
	_Atomic uint64_t total;                 /* throughput: messages in the window */
	char backend[16];
	struct ps_proc proc[PS_MAX_PROCS];
};

/* The parent's run parameters, inherited. */
struct ps_run {
	uint64_t window_ns;
	uint64_t samples;     /* paced messages */
};

/* What one child sees. */
struct ps_ctx {
	struct mp_self mp;    /* idx 0: the publisher; 1..n: a subscriber */
	struct ps_ctl *ctl;
	const struct ps_row *r;
	const struct ps_run *run;
	struct ps_end e;
	struct ps_proc *me;
	uint32_t *lat, *tlat; /* this process's slices */
	struct ps_msgs msgs;  /* the publisher's bodies, the subscribers' check */
	unsigned char *buf;   /* subscriber: payload + 64 bytes */
	size_t cap;
};

/* Who failed, in the row's errors: "publisher: ...", "subscriber 3 made no progress". */
static const struct mp_names ps_names = { "publisher", "subscriber" };

/* ---- the two roles ------------------------------------------------------ */

static int pub_send(struct ps_ctx *x, uint64_t seq, uint64_t t, const char *phase)
{
	int err = x->r->ops->pub_send(&x->e, ps_stamp(&x->msgs, seq, t), x->r->payload);

	if (err)
		return mp_aborted(&x->mp) ? -1 :
					      mp_fail(&x->mp, "%s send: %s", phase, ml_strerror(err));
	mp_bump(&x->mp);
	return 0;
}

static int run_pub(struct ps_ctx *x)
{
	const struct ps_row *r = x->r;
	const struct ps_ops *t = r->ops;
	uint64_t t0, c0, end, seq = 0, next;
	bool last = false;
	int err;

	err = t->pub_open(&x->e);
	if (err) {
		atomic_store(&x->ctl->ready, 2);
		return mp_fail(&x->mp, "open: %s", ml_strerror(err));
	}
	atomic_store_explicit(&x->ctl->ready, 1, memory_order_release);
	err = t->pub_ready(&x->e);
	if (err)
		return mp_fail(&x->mp, "waiting for %u subscribers: %s", r->n, ml_strerror(err));
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted at the start");

	/* Throughput: the count goes out before the last message, so that
	 * each subscriber knows its last message when it gets it. */
	t0 = now_ns();
	c0 = mp_cpu_ns();
	end = t0 + x->run->window_ns;
	while (!last) {
		if ((seq & 7) == 7 && (mp_aborted(&x->mp) || now_ns() >= end)) {
			atomic_store_explicit(&x->ctl->total, seq + 1, memory_order_release);
			last = true;
		}
		if (pub_send(x, seq, seq % PS_STAMP_EVERY ? 0 : now_ns(), "throughput"))
			return -1;
		seq++;
	}
	x->me->cpu_ns = mp_cpu_ns() - c0;
	x->me->span_ns = now_ns() - t0;
	x->me->count = seq;
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the throughput phase");

	next = now_ns();
	for (uint64_t j = 0; j < x->run->samples; j++, seq++) {
		pace_until(next);
		if (pub_send(x, seq, now_ns(), "paced"))
			return -1;
		next = pace_next(next, PS_PACE_NS);
	}
	x->me->seq_total = seq;
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the paced phase");
	t->pub_close(&x->e);
	return 0;
}

/* One message into x->buf, checked: 1, 0 (none yet) or -1 (failed). */
static int sub_take(struct ps_ctx *x, uint64_t seq, uint64_t *t)
{
	int n = x->r->ops->sub_recv(&x->e, x->buf, x->cap);

	if (n == -EAGAIN)
		return mp_aborted(&x->mp) ? -1 : 0;
	if (n < 0)
		return mp_aborted(&x->mp) ? -1 : mp_fail(&x->mp, "recv: %s", ml_strerror(n));
	if (!ps_check(&x->msgs, x->buf, (size_t)n, seq, t))
		return mp_fail(&x->mp, "message %llu does not check out (lost, duplicated, "
			       "out of order or torn)", (unsigned long long)seq);
	mp_bump(&x->mp);
	return 1;
}

static int run_sub(struct ps_ctx *x)
{
	const struct ps_row *r = x->r;
	const struct ps_ops *t = r->ops;
	uint64_t t0, seq = 0, total = 0, want, tm;
	uint32_t rd;
	int err, k;

	t0 = now_ns();
	while ((rd = atomic_load_explicit(&x->ctl->ready, memory_order_acquire)) != 1) {
		if (rd == 2 || mp_aborted(&x->mp))
			return -1;
		if (now_ns() - t0 > PS_CONNECT_NS)
			return mp_fail(&x->mp, "no publisher after 10 s");
		mp_nap(1000000);
	}
	err = t->sub_open(&x->e);
	if (err)
		return mp_fail(&x->mp, "open: %s", ml_strerror(err));
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted at the start");

	t0 = now_ns();
	for (;;) {
		if ((k = sub_take(x, seq, &tm)) < 0)
			return -1;
		if (k) {
			if (tm && x->me->ntlat < PS_TLAT_CAP)
				x->tlat[x->me->ntlat++] = lat_of(tm);
			seq++;
		}
		if (!total)
			total = atomic_load_explicit(&x->ctl->total, memory_order_acquire);
		if (total && seq >= total)
			break;
	}
	x->me->span_ns = now_ns() - t0;
	x->me->count = seq;
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the throughput phase");

	want = seq + x->run->samples;
	while (seq < want) {
		if ((k = sub_take(x, seq, &tm)) < 0)
			return -1;
		if (k) {
			x->lat[x->me->nlat++] = lat_of(tm);
			seq++;
		}
	}
	x->me->seq_total = seq;
	if (!mp_barrier(&x->mp))
		return mp_fail(&x->mp, "aborted after the paced phase");
	t->sub_close(&x->e);
	return 0;
}

/* ---- what both memlink transports share ---------------------------------- */

/* Publisher: wait until count(h) says all n subscribers are there. */
static int ps_ml_await(struct ps_end *e, int (*count)(void *h), void *h)
{
	uint64_t t0 = now_ns();
	int k;

	while ((k = count(h)) != (int)e->r->n) {
		if (k < 0)
			return k;
		if (ps_aborted(e))
			return -ECANCELED;
		if (now_ns() - t0 > PS_CONNECT_NS)
			return -ETIMEDOUT;
		mp_nap(1000000);
	}
	return 0;
}

/* Subscriber: a receive, and if nothing is there a wait as the mode says, and one more. */
static int ps_ml_recv(struct ps_end *e, int (*recv)(void *h, void *buf, size_t cap),
			   int (*wait)(void *h, int64_t ns), void *h, void *buf, size_t cap)
{
	int n = recv(h, buf, cap);

	if (n != -EAGAIN)
		return n;
	n = wait(h, PS_WAIT_NS);
	if (n && n != -ETIMEDOUT)
		return n;
	if (ps_aborted(e))
		return -ECANCELED;
	return recv(h, buf, cap);
}

/* ---- memlink-chan: one ml_chan_reply() per subscriber --------------------- */

struct mc_end {
	ml_chan *c;
	unsigned n;
	unsigned ids[ML_CHAN_MAX_CLIENTS];
};

static void mc_opts(struct ml_chan_opts *o, const struct ps_row *r)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->wait_mode = r->mode == PS_BUSY ? ML_WAIT_BUSY : ML_WAIT_BLOCKING;
	if (r->n > 8)   /* the default is 8 clients */
		o->max_clients = r->n;
}

static int mc_pub_open(struct ps_end *e)
{
	struct ml_chan_opts o;
	struct mc_end *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return -ENOMEM;
	e->priv = m;
	mc_opts(&o, e->r);
	err = ml_daemon_create(&m->c, e->r->name, &o);
	if (err)
		return err;
	snprintf(e->backend, e->backend_len, "%s", ml_chan_backend(m->c));
	return 0;
}

static int mc_count(void *h)
{
	struct mc_end *m = h;
	int k = ml_chan_clients(m->c, m->ids, ML_CHAN_MAX_CLIENTS);

	m->n = k > 0 ? (unsigned)k : 0;
	return k;
}

static int mc_pub_ready(struct ps_end *e)
{
	return ps_ml_await(e, mc_count, e->priv);
}

static int mc_pub_send(struct ps_end *e, const void *buf, size_t len)
{
	struct mc_end *m = e->priv;

	for (unsigned i = 0; i < m->n; i++) {
		int err = ml_chan_reply(m->c, m->ids[i], ML_PRIO_HIGH, buf, len);

		while (err == -EAGAIN) {
			err = ml_chan_send_wait(m->c, m->ids[i], ML_PRIO_HIGH, buf, len, PS_WAIT_NS);
			if (err == -EAGAIN && ps_aborted(e))
				return -ECANCELED;
		}
		if (err)
			return err;
	}
	return 0;
}

static void mc_close(struct ps_end *e)
{
	struct mc_end *m = e->priv;

	if (!m)
		return;
	if (m->c)
		ml_chan_close(m->c);
	free(m);
	e->priv = NULL;
}

static int mc_sub_open(struct ps_end *e)
{
	struct ml_chan_opts o;
	struct mc_end *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	e->priv = m;
	mc_opts(&o, e->r);
	return ml_client_connect(&m->c, e->r->name, &o);
}

static int mc_recv(void *h, void *buf, size_t cap)
{
	return ml_chan_recv(((struct mc_end *)h)->c, NULL, NULL, buf, cap);
}

static int mc_wait(void *h, int64_t ns)
{
	return ml_chan_wait(((struct mc_end *)h)->c, ns);
}

static int mc_sub_recv(struct ps_end *e, void *buf, size_t cap)
{
	return ps_ml_recv(e, mc_recv, mc_wait, e->priv, buf, cap);
}

static void mc_cleanup(const struct ps_row *r)
{
	ml_chan_gc(r->name, 0);
}

static const struct ps_ops ps_memlink_chan = {
	.name = "memlink-chan",
	.modes = PS_MODE_BIT(PS_BUSY) | PS_MODE_BIT(PS_BLOCKING),
	.cleanup = mc_cleanup,
	.pub_open = mc_pub_open,
	.pub_ready = mc_pub_ready,
	.pub_send = mc_pub_send,
	.pub_close = mc_close,
	.sub_open = mc_sub_open,
	.sub_recv = mc_sub_recv,
	.sub_close = mc_close,
};

/* ---- memlink: a topic, reliable (nothing is dropped, as for the others) -- */

struct mt_end {
	ml_pub *p;
	ml_sub *s;
};

static void mt_opts(struct ml_topic_opts *o, const struct ps_row *r)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->policy = ML_TOPIC_RELIABLE;
	o->wait_mode = r->mode == PS_BUSY ? ML_WAIT_BUSY : ML_WAIT_BLOCKING;
	if (r->n > 8)   /* the default is 8 subscribers */
		o->max_subs = r->n;
}

static int mt_pub_open(struct ps_end *e)
{
	struct ml_topic_opts o;
	struct mt_end *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	e->priv = m;
	mt_opts(&o, e->r);
	return ml_pub_create(&m->p, e->r->name, &o);
}

static int mt_count(void *h)
{
	return ml_pub_subscribers(((struct mt_end *)h)->p);
}

static int mt_pub_ready(struct ps_end *e)
{
	return ps_ml_await(e, mt_count, e->priv);
}

static int mt_pub_send(struct ps_end *e, const void *buf, size_t len)
{
	struct mt_end *m = e->priv;
	int err = ml_pub_send(m->p, ML_PRIO_HIGH, buf, len);

	while (err == -EAGAIN || err == -ETIMEDOUT) {
		if (ps_aborted(e))
			return -ECANCELED;
		err = ml_pub_send_wait(m->p, ML_PRIO_HIGH, buf, len, PS_WAIT_NS);
	}
	return err;
}

static void mt_close(struct ps_end *e)
{
	struct mt_end *m = e->priv;

	if (!m)
		return;
	ml_pub_close(m->p);
	ml_sub_close(m->s);
	free(m);
	e->priv = NULL;
}

static int mt_sub_open(struct ps_end *e)
{
	struct ml_topic_opts o;
	struct mt_end *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	e->priv = m;
	mt_opts(&o, e->r);
	return ml_sub_open(&m->s, e->r->name, &o);
}

static int mt_recv(void *h, void *buf, size_t cap)
{
	return ml_sub_recv(((struct mt_end *)h)->s, NULL, NULL, buf, cap);
}

static int mt_wait(void *h, int64_t ns)
{
	return ml_sub_wait(((struct mt_end *)h)->s, ns);
}

static int mt_sub_recv(struct ps_end *e, void *buf, size_t cap)
{
	return ps_ml_recv(e, mt_recv, mt_wait, e->priv, buf, cap);
}

static const struct ps_ops ps_memlink_topic = {
	.name = "memlink",
	.modes = PS_MODE_BIT(PS_BUSY) | PS_MODE_BIT(PS_BLOCKING),
	.cleanup = mc_cleanup,
	.pub_open = mt_pub_open,
	.pub_ready = mt_pub_ready,
	.pub_send = mt_pub_send,
	.pub_close = mt_close,
	.sub_open = mt_sub_open,
	.sub_recv = mt_sub_recv,
	.sub_close = mt_close,
};

/* ---- iceoryx ------------------------------------------------------------ */

#ifdef HAVE_ICEORYX
struct ix_end {
	iox_pub_storage_t pub_st;
	iox_sub_storage_t sub_st;
	iox_ws_storage_t ws_st;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
};

/* Each process is its own iceoryx application, named after its PID. */
static struct ix_end *ix_init(struct ps_end *e)
{
	struct ix_end *c = calloc(1, sizeof(*c));
	char app[64];

	if (!c)
		return NULL;
	e->priv = c;
	snprintf(app, sizeof(app), "mlps-%d", (int)getpid());
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(app);
	return c;
}

static int ix_pub_open(struct ps_end *e)
{
	struct ix_end *c = ix_init(e);
	iox_pub_options_t po;

	if (!c)
		return -ENOMEM;
	iox_pub_options_init(&po);
	po.historyCapacity = 0;
	po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	c->pub = iox_pub_init(&c->pub_st, "mlps", e->r->name, "feed", &po);
	return c->pub ? 0 : -EIO;
}

/*
 * The publisher sees only "has subscribers"; each subscriber waits in
 * sub_open until it is SUBSCRIBED, and the barrier after does the rest.
 */
static int ix_pub_ready(struct ps_end *e)
{
	struct ix_end *c = e->priv;
	uint64_t t0 = now_ns();

	while (!iox_pub_has_subscribers(c->pub)) {
		if (ps_aborted(e))
			return -ECANCELED;
		if (now_ns() - t0 > PS_CONNECT_NS)
			return -ETIMEDOUT;
		mp_nap(1000000);
	}
	return 0;
}

static int ix_pub_send(struct ps_end *e, const void *buf, size_t len)
{
	struct ix_end *c = e->priv;
	uint32_t spins = 0;
	void *p;

	for (;;) {
		enum iox_AllocationResult res = iox_pub_loan_aligned_chunk_with_user_header(
			c->pub, &p, (uint32_t)len, 8, sizeof(uint64_t), 8);

		if (res == AllocationResult_SUCCESS)
			break;
		if (res != AllocationResult_RUNNING_OUT_OF_CHUNKS)
			return -ENOMEM;
		if (e->r->mode == PS_BUSY)
			cpu_relax();
		else
			sched_yield();
		if ((++spins & 1023u) == 0 && ps_aborted(e))
			return -ECANCELED;
	}
	/* The length rides in an 8-byte user header (the chunk header is opaque). */
	{
		uint64_t l = len;

		memcpy(iox_chunk_header_to_user_header(iox_chunk_header_from_user_payload(p)), &l, 8);
	}
	memcpy(p, buf, len);
	/* Blocks (inside iceoryx) while a subscriber's queue is full. */
	iox_pub_publish_chunk(c->pub, p);
	return 0;
}

static int ix_sub_open(struct ps_end *e)
{
	struct ix_end *c = ix_init(e);
	iox_sub_options_t so;
	uint64_t t0 = now_ns();

	if (!c)
		return -ENOMEM;
	iox_sub_options_init(&so);
	so.queueCapacity = 256;   /* iceoryx 2.0's largest */
	so.historyRequest = 0;
	so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	c->sub = iox_sub_init(&c->sub_st, "mlps", e->r->name, "feed", &so);
	if (!c->sub)
		return -EIO;
	if (e->r->mode == PS_BLOCKING) {
		c->ws = iox_ws_init(&c->ws_st);
		if (iox_ws_attach_subscriber_state(c->ws, c->sub, SubscriberState_HAS_DATA, 0,
						   NULL) != WaitSetResult_SUCCESS)
			return -EIO;
	}
	while (iox_sub_get_subscription_state(c->sub) != SubscribeState_SUBSCRIBED) {
		if (ps_aborted(e))
			return -ECANCELED;
		if (now_ns() - t0 > PS_CONNECT_NS)
			return -ETIMEDOUT;
		mp_nap(1000000);
	}
	return 0;
}

static int ix_take(struct ix_end *c, void *buf, size_t cap)
{
	const void *p;
	enum iox_ChunkReceiveResult res = iox_sub_take_chunk(c->sub, &p);
	uint64_t len;

	if (res == ChunkReceiveResult_NO_CHUNK_AVAILABLE)
		return -EAGAIN;
	if (res != ChunkReceiveResult_SUCCESS)
		return -EIO;
	memcpy(&len, iox_chunk_header_to_user_header_const(
			     iox_chunk_header_from_user_payload_const(p)), 8);
	if (len > cap) {
		iox_sub_release_chunk(c->sub, p);
		return -EMSGSIZE;
	}
	memcpy(buf, p, len);
	iox_sub_release_chunk(c->sub, p);
	return (int)len;
}

static int ix_sub_recv(struct ps_end *e, void *buf, size_t cap)
{
	struct ix_end *c = e->priv;
	int n = ix_take(c, buf, cap);
	uint64_t t0;

	if (n != -EAGAIN)
		return n;
	if (c->ws) {
		struct timespec tmo = { 0, PS_WAIT_NS };
		iox_notification_info_t info[1];
		uint64_t missed = 0;

		iox_ws_timed_wait(c->ws, tmo, info, 1, &missed);
		return ps_aborted(e) ? -ECANCELED : ix_take(c, buf, cap);
	}
	/* Busy: poll, looking at the clock and the abort flag now and then. */
	t0 = now_ns();
	for (uint32_t spins = 1;; spins++) {
		cpu_relax();
		n = ix_take(c, buf, cap);
		if (n != -EAGAIN)
			return n;
		if ((spins & 1023u) == 0 &&
		    (ps_aborted(e) || now_ns() - t0 > (uint64_t)PS_WAIT_NS))
			return ps_aborted(e) ? -ECANCELED : -EAGAIN;
	}
}

static void ix_close(struct ps_end *e)
{
	struct ix_end *c = e->priv;

	if (!c)
		return;
	if (c->ws)
		iox_ws_deinit(c->ws);
	if (c->sub)
		iox_sub_deinit(c->sub);
	if (c->pub)
		iox_pub_deinit(c->pub);
	iox_runtime_shutdown();
	free(c);
	e->priv = NULL;
}

/* The runtime leaves its socket and lock file in /tmp, named after the app. */
static void ix_reaped(const struct ps_row *r, int pid)
{
	char path[96];

	(void)r;
	snprintf(path, sizeof(path), "/tmp/mlps-%d", pid);
	unlink(path);
	snprintf(path, sizeof(path), "/tmp/mlps-%d.lock", pid);
	unlink(path);
}

static const struct ps_ops ps_iceoryx = {
	.name = "iceoryx",
	.modes = PS_MODE_BIT(PS_BUSY) | PS_MODE_BIT(PS_BLOCKING),
	.reaped = ix_reaped,
	.pub_open = ix_pub_open,
	.pub_ready = ix_pub_ready,
	.pub_send = ix_pub_send,
	.pub_close = ix_close,
	.sub_open = ix_sub_open,
	.sub_recv = ix_sub_recv,
	.sub_close = ix_close,
};
#else
static const char *ix_skip(void)
{
	return "libiceoryx-binding-c-dev not installed (built without HAVE_ICEORYX)";
}

static const struct ps_ops ps_iceoryx = {
	.name = "iceoryx",
	.modes = PS_MODE_BIT(PS_BUSY) | PS_MODE_BIT(PS_BLOCKING),
	.skip = ix_skip,
};
#endif

/* ---- ZeroMQ ------------------------------------------------------------- */

#ifdef HAVE_ZMQ
struct zq_end {
	void *ctx, *sock;
};

static void zq_path(const struct ps_row *r, char *buf, size_t len, bool ipc)
{
	snprintf(buf, len, "%s/tmp/%s.zmq", ipc ? "ipc://" : "", r->name);
}

static int zq_open(struct ps_end *e, int type)
{
	struct zq_end *z = calloc(1, sizeof(*z));
	int zero = 0, one = 1, tmo = (int)(PS_WAIT_NS / 1000000), hwm = PS_ZMQ_HWM;
	char ep[128];

	if (!z)
		return -ENOMEM;
	e->priv = z;
	z->ctx = zmq_ctx_new();
	if (!z->ctx)
		return -errno;
	z->sock = zmq_socket(z->ctx, type);
	if (!z->sock)
		return -errno;
	zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(z->sock, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(z->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(z->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zq_path(e->r, ep, sizeof(ep), true);
	if (type == ZMQ_XPUB) {
		/* Refuse a message (EAGAIN) instead of dropping it; see every subscription. */
		if (zmq_setsockopt(z->sock, ZMQ_XPUB_NODROP, &one, sizeof(one)) ||
		    zmq_setsockopt(z->sock, ZMQ_XPUB_VERBOSE, &one, sizeof(one)))
			return -errno;
		return zmq_bind(z->sock, ep) ? -errno : 0;
	}
	if (zmq_setsockopt(z->sock, ZMQ_SUBSCRIBE, "", 0))
		return -errno;
	return zmq_connect(z->sock, ep) ? -errno : 0;
}

static int zq_pub_open(struct ps_end *e)
{
	return zq_open(e, ZMQ_XPUB);
}

/* N subscription messages (byte 1, then the empty topic). */
static int zq_pub_ready(struct ps_end *e)
{
	struct zq_end *z = e->priv;
	uint64_t t0 = now_ns();
	unsigned subs = 0;
	unsigned char b[64];

	while (subs < e->r->n) {
		int n = zmq_recv(z->sock, b, sizeof(b), 0);

		if (n >= 1 && b[0] == 1)
			subs++;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (ps_aborted(e))
			return -ECANCELED;
		if (now_ns() - t0 > PS_CONNECT_NS)
			return -ETIMEDOUT;
	}
	return 0;
}

/* NODROP: while one subscriber's pipe is full the send is refused for all. */
static int zq_pub_send(struct ps_end *e, const void *buf, size_t len)
{
	struct zq_end *z = e->priv;

	for (;;) {
		if (zmq_send(z->sock, buf, len, 0) == (int)len)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (ps_aborted(e))
			return -ECANCELED;
	}
}

static int zq_sub_open(struct ps_end *e)
{
	return zq_open(e, ZMQ_SUB);
}

static int zq_sub_recv(struct ps_end *e, void *buf, size_t cap)
{
	struct zq_end *z = e->priv;
	int n = zmq_recv(z->sock, buf, cap, 0);

	if (n >= 0)
		return (size_t)n > cap ? -EMSGSIZE : n;
	if (errno != EAGAIN && errno != EINTR)
		return -errno;
	return ps_aborted(e) ? -ECANCELED : -EAGAIN;
}

static void zq_close(struct ps_end *e)
{
	struct zq_end *z = e->priv;

	if (!z)
		return;
	if (z->sock)
		zmq_close(z->sock);
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	free(z);
	e->priv = NULL;
}

static void zq_cleanup(const struct ps_row *r)
{
	char path[128];

	zq_path(r, path, sizeof(path), false);
	unlink(path);
}

static const struct ps_ops ps_zmq = {
	.name = "zmq",
	.modes = PS_MODE_BIT(PS_BLOCKING),
	.cleanup = zq_cleanup,
	.pub_open = zq_pub_open,
	.pub_ready = zq_pub_ready,
	.pub_send = zq_pub_send,
	.pub_close = zq_close,
	.sub_open = zq_sub_open,
	.sub_recv = zq_sub_recv,
	.sub_close = zq_close,
};
#else
static const char *zq_skip(void)
{
	return "libzmq3-dev not installed (built without HAVE_ZMQ)";
}

static const struct ps_ops ps_zmq = {
	.name = "zmq",
	.modes = PS_MODE_BIT(PS_BLOCKING),
	.skip = zq_skip,
};
#endif

/* The transports, in run order; memlink's topics go first once they exist. */
static const struct ps_ops *const transports[] = { &ps_memlink_topic, &ps_memlink_chan, &ps_iceoryx,
						     &ps_zmq };
#define NTRANSPORTS (sizeof(transports) / sizeof(transports[0]))

/* ---- the parent: one row ------------------------------------------------ */

struct ps_result {
	bool verified, oversub;
	long cpus;                      /* online */
	char err[200];
	char backend[16];
	double rate, rate_lo, rate_hi;  /* msgs/s per subscriber: median, min, max */
	double pub_rate;                /* messages published per second */
	double cpu_per_msg;             /* publisher CPU ns per message; < 0: none */
	uint64_t msgs;                  /* published in the throughput window */
	uint64_t samples;               /* paced samples, all subscribers */
	double p50, p99, p99_hi;        /* paced: median over subscribers; worst p99 */
	double tp50, tp99;              /* unpaced, the same medians */
};

static void set_err(struct ps_result *res, const char *fmt, ...)
{
	va_list ap;

	if (res->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(res->err, sizeof(res->err), fmt, ap);
	va_end(ap);
}

/* The current row, for a parent stopped by SIGINT or SIGTERM. */
static const struct ps_row *cur_row;
static bool roudi_up;

static void on_stop(int sig)
{
	if (cur_row && cur_row->ops->cleanup)
		cur_row->ops->cleanup(cur_row);
	if (roudi_up && peer_iceoryx.stop)
		peer_iceoryx.stop();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void ps_child(struct mp_area *A, const struct ps_row *r, const struct ps_run *run,
		     unsigned idx)
{
	struct ps_ctl *ctl = A->ctl;
	struct ps_ctx x = {
		.mp = { .ctl = &ctl->mp, .slot = &ctl->mp.slot[idx], .names = &ps_names,
			.idx = idx, .parties = r->n + 1 },
		.ctl = ctl,
		.r = r,
		.run = run,
		.e = { .r = r, .idx = idx, .abort = &ctl->mp.abort,
		       .backend = ctl->backend, .backend_len = sizeof(ctl->backend) },
		.me = &ctl->proc[idx],
		.lat = A->lat + (size_t)idx * A->slice,
		.tlat = A->lat + (size_t)idx * A->slice + run->samples,
		.cap = r->payload + 64,
	};
	int rc;

	signal(SIGHUP, SIG_DFL);
	mp_child_start();
	x.buf = malloc(x.cap);
	if (!x.buf || ps_msgs_init(&x.msgs, r->payload)) {
		mp_fail(&x.mp, "malloc");
		_exit(1);
	}
	rc = idx ? run_sub(&x) : run_pub(&x);
	if (rc) {
		/* Tell the others first: a close may take a while. */
		atomic_store(&x.mp.slot->state, MP_FAILED);
		atomic_store(&x.ctl->mp.abort, 1);
		if (x.e.priv)
			(idx ? r->ops->sub_close : r->ops->pub_close)(&x.e);
		_exit(1);
	}
	mp_child_exit(&x.mp, 0);
}

static const char *who(unsigned i)
{
	return mp_who(&ps_names, i);
}

struct ps_spawn_arg {
	struct mp_area *A;
	const struct ps_row *r;
	const struct ps_run *run;
};

static void ps_spawn_child(void *arg, unsigned idx)
{
	struct ps_spawn_arg *a = arg;

	ps_child(a->A, a->r, a->run, idx);
}

static void ps_spawn_reaped(void *arg, int pid)
{
	struct ps_spawn_arg *a = arg;

	if (a->r->ops->reaped)
		a->r->ops->reaped(a->r, pid);
}

/* Fork, watch, reap (mp_run); 0 when every child finished its part. */
static int ps_spawn(struct mp_area *A, const struct ps_row *r, const struct ps_run *run,
		    struct ps_result *res)
{
	struct ps_ctl *c = A->ctl;
	struct ps_spawn_arg a = { A, r, run };
	struct mp_row m = {
		.ctl = &c->mp, .names = &ps_names, .procs = r->n + 1, .max_ns = PS_ROW_MAX_NS,
		.child = ps_spawn_child, .reaped = ps_spawn_reaped, .arg = &a,
		.err = res->err, .err_len = sizeof(res->err),
	};
	int ret;

	memset(c, 0, sizeof(*c));
	cur_row = r;
	ret = mp_run(&m);
	if (r->ops->cleanup)
		r->ops->cleanup(r);
	cur_row = NULL;
	return ret;
}

static void ps_row_run(struct mp_area *A, const struct ps_row *r, const struct ps_run *run,
		       struct ps_result *res, long ncpus)
{
	struct ps_ctl *c = A->ctl;
	double rates[PS_MAX_SUBS], p50[PS_MAX_SUBS], p99[PS_MAX_SUBS];
	double tp50[PS_MAX_SUBS], tp99[PS_MAX_SUBS], lo, hi;
	const struct ps_proc *pub = &c->proc[0];
	unsigned nt = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	res->cpu_per_msg = -1;
	res->oversub = (long)r->n + 1 > ncpus;
	res->cpus = ncpus;
	snprintf(res->backend, sizeof(res->backend), "-");
	rc = ps_spawn(A, r, run, res);
	if (c->backend[0])
		snprintf(res->backend, sizeof(res->backend), "%s", c->backend);
	if (rc)
		return;
	for (unsigned i = 0; i <= r->n; i++)
		if (atomic_load(&c->mp.slot[i].state) != MP_OK) {
			set_err(res, "%s did not finish", who(i));
			return;
		}
	/* Counts equal at the end: nothing lost, nothing extra. */
	for (unsigned i = 1; i <= r->n; i++) {
		const struct ps_proc *s = &c->proc[i];

		if (s->seq_total != pub->seq_total || !pub->seq_total || s->count != pub->count ||
		    s->nlat != run->samples) {
			set_err(res, "subscriber %u: %llu published, %llu received", i,
				(unsigned long long)pub->seq_total,
				(unsigned long long)s->seq_total);
			return;
		}
	}
	for (unsigned i = 1; i <= r->n; i++) {
		const struct ps_proc *s = &c->proc[i];
		uint32_t *lat = A->lat + (size_t)i * A->slice;
		struct lat_summary ls;

		rates[i - 1] = s->span_ns ? (double)s->count * 1e9 / (double)s->span_ns : 0;
		stats_summarize(lat, s->nlat, &ls);
		p50[i - 1] = (double)ls.p50;
		p99[i - 1] = (double)ls.p99;
		res->samples += s->nlat;
		if (s->ntlat) {
			stats_summarize(lat + run->samples, s->ntlat, &ls);
			tp50[nt] = (double)ls.p50;
			tp99[nt++] = (double)ls.p99;
		}
	}
	res->rate = stats_median(rates, r->n, &res->rate_lo, &res->rate_hi);
	res->p50 = stats_median(p50, r->n, &lo, &hi);
	res->p99 = stats_median(p99, r->n, &lo, &res->p99_hi);
	res->tp50 = nt ? stats_median(tp50, nt, &lo, &hi) : -1;
	res->tp99 = nt ? stats_median(tp99, nt, &lo, &hi) : -1;
	res->msgs = pub->count;
	res->pub_rate = pub->span_ns ? (double)pub->count * 1e9 / (double)pub->span_ns : 0;
	res->cpu_per_msg = pub->count ? (double)pub->cpu_ns / (double)pub->count : -1;
	res->verified = true;
}

/* ---- output ------------------------------------------------------------- */

struct ps_opts {
	bool json, quick;
	unsigned nsubs, subs[PS_MAX_LIST];
	unsigned npayloads, payload[PS_MAX_LIST];
	unsigned modes;                  /* PS_MODE_BIT()s */
	bool only[NTRANSPORTS];
};

static void table_header(void)
{
	printf("%-12s %-8s %-7s %2s %7s %10s %10s %9s %9s %8s %9s %9s %s\n", "xport", "mode",
	       "backend", "N", "payload", "msgs/s/sub", "min/sub", "pub-ns", "p50 ns", "p99 ns",
	       "tput-p50", "tput-p99", "verified");
}

static void emit_row(const struct ps_opts *o, const struct ps_row *r, const struct ps_run *run,
		     const struct ps_result *res)
{
	if (o->json) {
		printf("{\"bench\":\"pubsub\",");
		stats_json_str(stdout, "transport", r->ops->name);
		printf(",\"mode\":\"%s\",", mode_name[r->mode]);
		stats_json_str(stdout, "backend", res->backend);
		printf(",\"subscribers\":%u,\"payload\":%zu", r->n, r->payload);
#define JNUM(k, v, fmt)                                          \
	do {                                                     \
		if (!res->verified || (v) < 0)                   \
			printf(",\"" k "\":null");               \
		else                                             \
			printf(",\"" k "\":" fmt, (v));          \
	} while (0)
		JNUM("msgs_per_s_sub", res->rate, "%.0f");
		JNUM("msgs_per_s_sub_min", res->rate_lo, "%.0f");
		JNUM("msgs_per_s_sub_max", res->rate_hi, "%.0f");
		JNUM("msgs_per_s_pub", res->pub_rate, "%.0f");
		printf(",\"msgs\":%llu", (unsigned long long)res->msgs);
		JNUM("pub_cpu_ns_per_msg", res->cpu_per_msg, "%.1f");
		printf(",\"samples\":%llu", (unsigned long long)res->samples);
		JNUM("p50_ns", res->p50, "%.0f");
		JNUM("p99_ns", res->p99, "%.0f");
		JNUM("p99_ns_max", res->p99_hi, "%.0f");
		JNUM("unpaced_p50_ns", res->tp50, "%.0f");
		JNUM("unpaced_p99_ns", res->tp99, "%.0f");
#undef JNUM
		printf(",\"pace_ns\":%llu,\"window_ns\":%llu,\"cpus\":%ld,\"oversubscribed\":%s,"
		       "\"verified\":%s", PS_PACE_NS, (unsigned long long)run->window_ns, res->cpus,
		       res->oversub ? "true" : "false", res->verified ? "true" : "false");
		if (res->err[0]) {
			fputc(',', stdout);
			stats_json_str(stdout, "error", res->err);
		}
		fputs("}\n", stdout);
	} else {
		char rate[32] = "-", lo[32] = "-", cpu[32] = "-", p50[32] = "-", p99[32] = "-";
		char t50[32] = "-", t99[32] = "-";

		if (res->verified) {
			stats_rate(rate, sizeof(rate), res->rate);
			stats_rate(lo, sizeof(lo), res->rate_lo);
			snprintf(cpu, sizeof(cpu), "%.1f", res->cpu_per_msg);
			snprintf(p50, sizeof(p50), "%.0f", res->p50);
			snprintf(p99, sizeof(p99), "%.0f", res->p99);
			if (res->tp50 >= 0) {
				snprintf(t50, sizeof(t50), "%.0f", res->tp50);
				snprintf(t99, sizeof(t99), "%.0f", res->tp99);
			}
		}
		printf("%-12s %-8s %-7s %2u %7zu %10s %10s %9s %9s %8s %9s %9s %s%s\n",
		       r->ops->name, mode_name[r->mode], res->backend, r->n, r->payload, rate, lo,
		       cpu, p50, p99, t50, t99, res->verified ? "yes" : "NO",
		       res->oversub ? " (oversubscribed)" : "");
		if (res->err[0])
			printf("  ^ %s\n", res->err);
	}
	fflush(stdout);
}

static void emit_skip(const struct ps_opts *o, const struct ps_row *r, const char *why)
{
	if (o->json) {
		printf("{\"bench\":\"pubsub\",");
		stats_json_str(stdout, "transport", r->ops->name);
		printf(",\"mode\":\"%s\",\"payload\":%zu,", mode_name[r->mode], r->payload);
		stats_json_str(stdout, "skipped", why);
		fputs("}\n", stdout);
	} else {
		printf("%-12s %-8s %-7s %2s %7zu  skipped: %s\n", r->ops->name, mode_name[r->mode],
		       "-", "-", r->payload, why);
	}
	fflush(stdout);
}

/* ---- command line ------------------------------------------------------- */

void bench_pubsub_usage(FILE *f)
{
	fprintf(f, "memlink-bench pubsub [--quick] [--json] [--subs N,...] [--payload N,...]\n"
		   "                     [--only memlink,memlink-chan,iceoryx,zmq] [--mode busy,blocking]\n"
		   "  One publisher and N subscriber processes (fork, not pinned), every message\n"
		   "  to every subscriber, nothing dropped:\n"
		   "    memlink       a reliable topic: ml_pub_send(), ml_sub_recv(), ml_sub_wait()\n"
		   "    memlink-chan  today's workaround: a channel daemon, one ml_chan_reply()\n"
		   "                  per subscriber (ml_chan_send_wait() when a lane is full)\n"
		   "    iceoryx       C binding publisher/subscriber, WAIT_FOR_CONSUMER and\n"
		   "                  BLOCK_PRODUCER; busy polls take_chunk, blocking a waitset;\n"
		   "                  the bench runs its own iox-roudi\n"
		   "    zmq           ipc:// XPUB with ZMQ_XPUB_NODROP (a full subscriber makes\n"
		   "                  the send wait, no drop; HWM %d) to N SUB; blocking only\n"
		   "  Default N = 1,2,4,8 (--quick: 1,2,8, up to %u), payloads 64,1024 (%u..%u).\n"
		   "  backend     memlink-chan: the channel's backend (ml_chan_backend); else -\n"
		   "  N           subscriber processes (JSON subscribers)\n"
		   "  msgs/s/sub  messages each subscriber received per second over a fixed\n"
		   "              window (0.5 s; --quick 0.1 s) of unpaced publishing: the\n"
		   "              median over the subscribers; min/sub the slowest one (JSON\n"
		   "              msgs_per_s_sub, _min, _max; msgs_per_s_pub, msgs: published)\n"
		   "  pub-ns      the publisher's CPU time (CLOCK_PROCESS_CPUTIME_ID, all its\n"
		   "              threads, including waits for room) per message published\n"
		   "              in that window (one message, however many subscribers;\n"
		   "              JSON pub_cpu_ns_per_msg); iox-roudi's time is not in it\n"
		   "  p50, p99    publish-to-receive latency, one message every 20 us, each\n"
		   "              with its CLOCK_MONOTONIC send time; 20000 messages\n"
		   "              (--quick 2000); each subscriber's percentile, the median\n"
		   "              over subscribers (JSON p50_ns, p99_ns; p99_ns_max: the worst\n"
		   "              subscriber's; samples: all subscribers' together)\n"
		   "  tput-p50/99 the same from the unpaced window (one message in %u carries\n"
		   "              its time, first %u per subscriber): mostly time spent\n"
		   "              queued (JSON unpaced_p50_ns, unpaced_p99_ns)\n"
		   "  (oversubscribed): N + 1 processes > online CPUs (JSON oversubscribed,\n"
		   "  cpus; helpers such as iox-roudi and zmq's I/O threads not counted).\n"
		   "  Every message is checked (sequence, every byte) and counted; a row that\n"
		   "  lost, reordered or tore one says NO (JSON verified:false with an error)\n"
		   "  and the exit status is 1. A transport not built in gives skipped rows.\n",
		   PS_ZMQ_HWM, PS_MAX_SUBS, PS_MIN_PAYLOAD, PS_MAX_PAYLOAD, PS_STAMP_EVERY,
		   PS_TLAT_CAP);
}

/* A comma list of names[]; their bits, 0 for anything unknown. */
static unsigned parse_names(const char *s, const char *const *names, unsigned n)
{
	char buf[256], *save = NULL, *t;
	unsigned bits = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned i;

		for (i = 0; i < n && strcmp(t, names[i]); i++)
			;
		if (i == n)
			return 0;
		bits |= 1u << i;
	}
	return bits;
}

int bench_pubsub_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "subs", required_argument, NULL, 's' },
		{ "payload", required_argument, NULL, 'p' },
		{ "only", required_argument, NULL, 'o' },
		{ "mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tnames[NTRANSPORTS];
	struct ps_opts o = {
		.npayloads = 2, .payload = { 64, 1024 },
		.modes = PS_MODE_BIT(PS_BUSY) | PS_MODE_BIT(PS_BLOCKING),
	};
	bool subs_set = false, any_only = false;
	struct ps_run run;
	struct mp_area A = { 0 };
	char ice_why[160] = "";
	int ice_err = 0;
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	int c, bad = 0;
	unsigned bits;

	for (unsigned t = 0; t < NTRANSPORTS; t++)
		tnames[t] = transports[t]->name;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.quick = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 's':
			if (mp_opt_list("pubsub", "subs", optarg, o.subs, &o.nsubs, PS_MAX_LIST, 1,
					PS_MAX_SUBS))
				return 2;
			subs_set = true;
			break;
		case 'p':
			if (mp_opt_list("pubsub", "payload", optarg, o.payload, &o.npayloads,
					PS_MAX_LIST, PS_MIN_PAYLOAD, PS_MAX_PAYLOAD))
				return 2;
			break;
		case 'o':
			bits = parse_names(optarg, tnames, NTRANSPORTS);
			if (!bits) {
				fprintf(stderr, "memlink-bench pubsub: bad --only '%s'\n", optarg);
				return 2;
			}
			for (unsigned t = 0; t < NTRANSPORTS; t++)
				o.only[t] = bits & (1u << t);
			any_only = true;
			break;
		case 'm':
			bits = parse_names(optarg, mode_name, 2);
			if (!bits) {
				fprintf(stderr, "memlink-bench pubsub: bad --mode '%s'\n", optarg);
				return 2;
			}
			o.modes = bits;
			break;
		case 'h':
			bench_pubsub_usage(stdout);
			return 0;
		default:
			bench_pubsub_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		bench_pubsub_usage(stderr);
		return 2;
	}
	if (!any_only)
		for (unsigned t = 0; t < NTRANSPORTS; t++)
			o.only[t] = true;
	if (!subs_set) {
		static const unsigned full[] = { 1, 2, 4, 8 }, quick[] = { 1, 2, 8 };

		o.nsubs = o.quick ? 3 : 4;
		memcpy(o.subs, o.quick ? quick : full, o.nsubs * sizeof(unsigned));
	}
	run.window_ns = o.quick ? 100000000ull : 500000000ull;
	run.samples = o.quick ? 2000 : 20000;
	if (mp_area_init(&A, sizeof(struct ps_ctl), PS_MAX_PROCS, run.samples + PS_TLAT_CAP) < 0) {
		fprintf(stderr, "memlink-bench pubsub: mmap: %s\n", strerror(errno));
		return 1;
	}
	/* The roudi only when an iceoryx row will run (peer_iceoryx.c's). */
	for (unsigned t = 0; t < NTRANSPORTS; t++)
		if (transports[t] == &ps_iceoryx && o.only[t] && !ps_iceoryx.skip &&
		    peer_iceoryx.start) {
			ice_err = peer_iceoryx.start(ice_why, sizeof(ice_why));
			roudi_up = !ice_err;
		}
	/* After the roudi's own handlers: ours stop it too. SIGPIPE: a socket's. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGHUP, on_stop);
	if (!o.json)
		table_header();
	for (unsigned p = 0; p < o.npayloads; p++) {
		for (unsigned t = 0; t < NTRANSPORTS; t++) {
			const struct ps_ops *ops = transports[t];

			if (!o.only[t])
				continue;
			for (unsigned m = 0; m < 2; m++) {
				struct ps_row r = { .ops = ops, .mode = (enum ps_mode)m,
						    .payload = o.payload[p] };
				struct ps_result res;
				const char *why = ops->skip ? ops->skip() : NULL;

				if (!(o.modes & PS_MODE_BIT(m)) || !(ops->modes & PS_MODE_BIT(m)))
					continue;
				if (!why && ops == &ps_iceoryx && ice_err)
					why = ice_why;
				if (why) {
					emit_skip(&o, &r, why);
					continue;
				}
				for (unsigned k = 0; k < o.nsubs; k++) {
					r.n = o.subs[k];
					snprintf(r.name, sizeof(r.name), "bench.ps.%d.%s.%s.%u.%zu",
						 (int)getpid(), ops->name, mode_name[m], r.n,
						 r.payload);
					ps_row_run(&A, &r, &run, &res, ncpus);
					emit_row(&o, &r, &run, &res);
					bad |= !res.verified;
				}
			}
		}
	}
	if (roudi_up)
		peer_iceoryx.stop();
	munmap(A.map, A.len);
	return bad ? 1 : 0;
}

// SPDX-License-Identifier: MIT
/*
 * Topics: one publisher, many subscribers (memlink.h, ml_pub(3)).
 *
 * A topic is a channel underneath (chan_ext.h): the publisher is its
 * daemon and each subscriber a client, so connect, liveness, doorbells
 * and descriptors are the channel's on every backend. The records are in
 * a broadcast ring (bcast.c) in the topic region, which every backend maps
 * read-only for clients; a reliable subscriber's cursor is in its own
 * client header. Everything a subscriber reads there was written by a
 * publisher that may be hostile, and every cursor the publisher reads by
 * a subscriber that may be: the ring checks both.
 *
 * Wake-ups: after each publish (or batch) the publisher looks at the
 * doorbell flags of the subscribers it counts, lines that stay in its
 * cache while they sleep or spin, and wakes those asleep, once a sleep
 * each. A publisher out of room in a reliable lane says in the topic line
 * which lane position it waits for, and a subscriber whose read passes it
 * rings the publisher.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bcast.h"
#include "chan_ext.h"
#include "chan_layout.h"
#include "internal.h"
#include "topic_layout.h"

#define DEFAULT_CAPACITY (256u << 10)
#define MIN_CAPACITY 4096u
#define MAX_CAPACITY (1u << 30)
#define DEFAULT_SUBS 8u
/* Subscribers send nothing: their request and response rings stay small. */
#define SUB_RING_SIZE 4096u
#define TOPIC_FLAGS (ML_CHAN_DAEMON_UID | ML_CHAN_ANY_DAEMON | ML_CHAN_GLOBAL | ML_SUB_OLDEST)

struct ml_pub {
	ml_chan *c;
	struct ml__bcast_writer *w;
	struct ml__topic_hdr *hdr;
	unsigned policy;
	uint32_t members;       /* the slots counted, as last told */
	unsigned ticks;         /* calls, to mirror now and then */
	uint32_t member_gen;    /* ml__chan_members()'s generation then */
	bool members_known;
	/* reliable: the counted subscribers' cursors, by slot */
	struct ml__bcast_cursor *cur[ML__BCAST_MAX_CURSORS];
	/* what create() lays out */
	uint32_t capacity, max_msg;
};

struct ml_sub {
	ml_chan *c;
	struct ml__bcast_reader *r;
	const struct ml__topic_hdr *hdr;
	struct ml__bcast_cursor *cursor; /* reliable: ours, in our header */
	unsigned flags;
	unsigned policy;
	bool viewing;
	int start_err;                   /* the publisher's start made no sense */
	int view_prio;
	uint64_t view_from;              /* the view's lane position before it */
	uint64_t received;
	uint64_t lost_told;              /* as our line last said */
};

/* The caller's options, checked, and the channel options they stand for. */
static int topic_opts(struct ml_topic_opts *o, struct ml_chan_opts *co,
		      const struct ml_topic_opts *in)
{
	int err = ml__copy_opts(o, sizeof(*o), in, in ? in->size : 0,
				offsetof(struct ml_topic_opts, mode) + sizeof(uint32_t));

	if (err)
		return err;
	if (o->flags & ~TOPIC_FLAGS)
		return -EINVAL;
	*co = (struct ml_chan_opts){
		.size = sizeof(*co),
		.flags = o->flags & ~ML_SUB_OLDEST,
		.backend = o->backend,
		.wait_mode = o->wait_mode,
		.spin_ns = o->spin_ns,
		.max_clients = o->max_subs ? o->max_subs : DEFAULT_SUBS,
		.ring_size = SUB_RING_SIZE,
		.mode = o->mode,
		.daemon_uid = o->daemon_uid,
	};
	return 0;
}

/* ---- publisher ----------------------------------------------------------- */

static int lay_out(void *mem, size_t len, void *arg)
{
	ml_pub *p = arg;

	p->hdr = mem;
	memset(p->hdr, 0, sizeof(*p->hdr));
	return ml__bcast_init(&p->w, (uint8_t *)mem + ML__TOPIC_HDR, len - ML__TOPIC_HDR,
			      p->capacity, p->policy, p->max_msg);
}

int ml_pub_create(ml_pub **out, const char *name, const struct ml_topic_opts *opts)
{
	struct ml_topic_opts o;
	struct ml_chan_opts co;
	struct ml__chan_ext ext = { 0 };
	size_t page = ml__os_page_size();
	ml_pub *p;
	int err;

	if (!out)
		return -EINVAL;
	err = topic_opts(&o, &co, opts);
	if (err)
		return err;
	if (!o.capacity)
		o.capacity = DEFAULT_CAPACITY;
	if (o.policy > ML_TOPIC_RELIABLE || o.max_subs > ML_TOPIC_MAX_SUBS ||
	    o.capacity < MIN_CAPACITY || o.capacity > MAX_CAPACITY ||
	    !ml__bcast_mem_size(o.capacity))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->policy = o.policy;
	p->capacity = o.capacity;
	p->max_msg = o.max_msg;
	ext.extra = (ML__TOPIC_HDR + ml__bcast_mem_size(o.capacity) + page - 1) / page * page;
	ext.lay_out = lay_out;
	ext.arg = p;
	err = ml__chan_create_ext(&p->c, name, &co, &ext);
	if (err) {
		ml__bcast_writer_free(p->w);
		free(p);
		return err;
	}
	*out = p;
	return 0;
}

/* A 32-bit word of a subscriber's line (topic_layout.h). */
static _Atomic uint32_t *line_word(const void *line, unsigned off)
{
	return (_Atomic uint32_t *)(void *)((uint8_t *)(uintptr_t)line + off);
}

/*
 * Reliable: start the subscribers counted for the first time where they
 * asked, at the heads or the tails, before holding for them; wake them,
 * as records may be there already. The line is theirs to write: what it
 * says only ever chooses between those two.
 */
static void start_members(ml_pub *p, uint32_t m)
{
	bool woke = false;

	for (; m; m &= m - 1) {
		struct ml__bcast_cursor *cur = ml__chan_member_line(p->c, (unsigned)__builtin_ctz(m));
		uint64_t pos[ML_PRIO_COUNT];

		if (!cur || atomic_load_explicit(line_word(cur, ML__SUB_STARTED_OFF),
						 memory_order_acquire) == 1)
			continue;
		ml__bcast_start_at(p->w,
				   atomic_load_explicit(line_word(cur, ML__SUB_JOIN_OFF),
							memory_order_relaxed) == ML__SUB_JOIN_OLDEST,
				   pos);
		for (unsigned l = 0; l < ML_PRIO_COUNT; l++)
			atomic_store_explicit(&cur->next[l], pos[l], memory_order_relaxed);
		atomic_store_explicit(line_word(cur, ML__SUB_STARTED_OFF), 1, memory_order_release);
		woke = true;
	}
	if (woke)
		ml__chan_wake_members(p->c);
}

/*
 * What onlookers (memlink-stat) see of each subscriber, in its slot's
 * record: its lag, from its cursor, and the losses it tells there. Both
 * are the subscriber's to write, and only ever reported.
 */
static void mirror(ml_pub *p)
{
	for (uint32_t m = p->members; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);
		const struct ml__bcast_cursor *cur = ml__chan_member_line(p->c, i);
		uint32_t lag[ML_PRIO_COUNT], cap;

		if (!cur)
			continue;
		for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
			uint64_t d = ml__bcast_head(p->w, l, &cap) -
				     atomic_load_explicit(&cur->next[l], memory_order_relaxed);

			lag[l] = d > cap ? cap : (uint32_t)d;
		}
		ml__chan_mirror_member(p->c, i, lag,
				       atomic_load_explicit((const _Atomic uint64_t *)(const void *)
								    ((const uint8_t *)cur + ML__SUB_LOST_OFF),
							    memory_order_relaxed));
	}
}

/*
 * Count the subscribers there are now: those that came since the last
 * look, and not those gone. A reliable topic holds for each one's cursor.
 */
static void members(ml_pub *p)
{
	uint32_t gen, m = ml__chan_members(p->c, &gen);
	uint64_t live = 0;

	if (p->members_known && m == p->members && gen == p->member_gen) {
		if ((++p->ticks & 255) == 0)
			mirror(p);
		return;
	}
	p->members = m;
	p->member_gen = gen;
	p->members_known = true;
	mirror(p);
	if (p->policy != ML_TOPIC_RELIABLE)
		return;
	start_members(p, m);
	for (unsigned i = 0; i < ML__BCAST_MAX_CURSORS; i++) {
		p->cur[i] = ((uint64_t)m >> i & 1) ? ml__chan_member_line(p->c, i) : NULL;
		if (p->cur[i])
			live |= 1ull << i;
	}
	ml__bcast_set_cursors(p->w, live, p->cur);
}

int ml_pub_send(ml_pub *p, int prio, const void *buf, size_t len)
{
	int err;

	if (!p)
		return -EINVAL;
	members(p);
	err = ml__bcast_send(p->w, prio, buf, len);
	if (!err)
		ml__chan_wake_members(p->c);
	return err;
}

struct pub_try {
	ml_pub *p;
	int prio;
	const void *buf;
	size_t len;
};

/* One more try for room; out of it, say whom we wait for. */
static int pub_again(void *arg)
{
	const struct pub_try *t = arg;
	int err;

	members(t->p);
	err = ml__bcast_send(t->p->w, t->prio, t->buf, t->len);
	if (err == -EAGAIN)
		atomic_store_explicit(&t->p->hdr->room_want[t->prio],
				      ml__bcast_half_free_at(t->p->w, t->prio), memory_order_relaxed);
	return err;
}

int ml_pub_send_wait(ml_pub *p, int prio, const void *buf, size_t len, int64_t timeout_ns)
{
	struct pub_try t = { p, prio, buf, len };
	int err = ml_pub_send(p, prio, buf, len);

	if (err != -EAGAIN)
		return err;
	err = ml__chan_wait_room(p->c, (unsigned)prio, pub_again, &t, timeout_ns);
	atomic_store_explicit(&p->hdr->room_want[prio], 0, memory_order_relaxed);
	if (!err)
		ml__chan_wake_members(p->c);
	return err;
}

int ml_pub_send_many(ml_pub *p, const struct ml_msg *msgs, unsigned n)
{
	unsigned sent;
	int err;

	if (!p || !msgs || !n)
		return -EINVAL;
	members(p);
	sent = ml__bcast_send_batch(p->w, msgs, n, &err);
	if (!sent)
		return err;
	ml__chan_wake_members(p->c);
	return (int)sent;
}

int ml_pub_reserve(ml_pub *p, int prio, size_t len, void **ptr)
{
	if (!p)
		return -EINVAL;
	members(p);
	return ml__bcast_reserve(p->w, prio, len, ptr);
}

int ml_pub_commit(ml_pub *p, size_t len)
{
	int err;

	if (!p)
		return -EINVAL;
	err = ml__bcast_commit(p->w, len);
	if (!err)
		ml__chan_wake_members(p->c);
	return err;
}

double ml_pub_backpressure(ml_pub *p)
{
	if (!p)
		return 0;
	members(p);
	return ml__bcast_fill(p->w);
}

int ml_pub_subscribers(ml_pub *p)
{
	int n = 0;

	if (!p)
		return -EINVAL;
	members(p);
	mirror(p);
	/* Not __builtin_popcount: without -mpopcnt it needs libgcc (a DLL on Windows). */
	for (uint32_t m = p->members; m; m &= m - 1)
		n++;
	return n;
}

void ml_pub_close(ml_pub *p)
{
	if (!p)
		return;
	ml_chan_close(p->c);
	ml__bcast_writer_free(p->w);
	free(p);
}

/* ---- subscriber ---------------------------------------------------------- */

/* Holding our slot, before the publisher can count us: our place in the ring. */
static int sub_join(ml_chan *c, void *arg)
{
	ml_sub *s = arg;
	size_t len;
	uint8_t *mem = ml__chan_extra(c, &len);
	int err;

	if (!mem || len < ML__TOPIC_HDR)
		return -EPROTO;
	s->c = c;
	s->hdr = (const struct ml__topic_hdr *)mem;
	s->cursor = ml__chan_member_line(c, 0);
	if (!s->cursor)
		return -EPROTO;
	err = ml__bcast_attach(&s->r, mem + ML__TOPIC_HDR, len - ML__TOPIC_HDR,
			       s->flags & ML_SUB_OLDEST ? ML__BCAST_JOIN_OLDEST : 0, s->cursor);
	if (err)
		return err == -EINVAL || err == -EBADMSG ? -EPROTO : err;
	s->policy = ml__bcast_policy(s->r) == ML__BCAST_RELIABLE ? ML_TOPIC_RELIABLE :
								  ML_TOPIC_LOSSY;
	if (s->policy != ML_TOPIC_RELIABLE)
		return 0;
	/* Reliable: the publisher says where we start, once it holds for us. */
	ml__bcast_reader_free(s->r);
	s->r = NULL;
	atomic_store_explicit(line_word(s->cursor, ML__SUB_JOIN_OFF),
			      s->flags & ML_SUB_OLDEST ? ML__SUB_JOIN_OLDEST : ML__SUB_JOIN_NEWEST,
			      memory_order_relaxed);
	atomic_store_explicit(line_word(s->cursor, ML__SUB_STARTED_OFF), 0, memory_order_relaxed);
	err = ml__bcast_attach(&s->r, mem + ML__TOPIC_HDR, len - ML__TOPIC_HDR,
			       ML__BCAST_UNSTARTED, s->cursor);
	return err == -EINVAL || err == -EBADMSG ? -EPROTO : err;
}

/* Reliable, not started yet: has the publisher said where? */
static void try_start(ml_sub *s)
{
	uint64_t pos[ML_PRIO_COUNT];

	if (!s->r || ml__bcast_started(s->r) || s->start_err ||
	    atomic_load_explicit(line_word(s->cursor, ML__SUB_STARTED_OFF),
				 memory_order_acquire) != 1)
		return;
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++)
		pos[l] = atomic_load_explicit(&s->cursor->next[l], memory_order_relaxed);
	s->start_err = ml__bcast_start(s->r, pos);
}

static bool sub_ready(void *arg)
{
	ml_sub *s = arg;

	try_start(s);
	return s->r && (ml__bcast_pending(s->r) || s->start_err);
}

int ml_sub_open(ml_sub **out, const char *name, const struct ml_topic_opts *opts)
{
	struct ml_topic_opts o;
	struct ml_chan_opts co;
	struct ml__chan_ext ext = { 0 };
	ml_sub *s;
	ml_chan *c;
	int err;

	if (!out)
		return -EINVAL;
	err = topic_opts(&o, &co, opts);
	if (err)
		return err;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->flags = o.flags;
	ext.join = sub_join;
	ext.ready = sub_ready;
	ext.arg = s;
	err = ml__chan_connect_ext(&c, name, &co, &ext);
	if (err) {
		ml__bcast_reader_free(s->r);
		free(s);
		return err;
	}
	s->c = c;
	*out = s;
	return 0;
}

/*
 * A reliable read moved our cursor in `lane` from `from`: ring a
 * publisher that waits for a position we just passed.
 */
static void room_given(ml_sub *s, int lane, uint64_t from)
{
	uint64_t want, to;

	if (s->policy != ML_TOPIC_RELIABLE || (unsigned)lane >= ML_PRIO_COUNT)
		return;
	want = atomic_load_explicit(&s->hdr->room_want[lane], memory_order_relaxed);
	to = atomic_load_explicit(&s->cursor->next[lane], memory_order_relaxed);
	if (want && (int64_t)(want - from) > 0 && (int64_t)(to - want) >= 0)
		ml__chan_wake_daemon(s->c);
}

/* Our positions before a read, for room_given(). */
static void positions(const ml_sub *s, uint64_t at[ML_PRIO_COUNT])
{
	for (unsigned l = 0; s->policy == ML_TOPIC_RELIABLE && l < ML_PRIO_COUNT; l++)
		at[l] = atomic_load_explicit(&s->cursor->next[l], memory_order_relaxed);
}

/* Say in our line how many records we lost, for onlookers. */
static void tell_lost(ml_sub *s)
{
	uint64_t lost = ml__bcast_lost(s->r, NULL);

	if (lost != s->lost_told) {
		s->lost_told = lost;
		atomic_store_explicit((_Atomic uint64_t *)(void *)((uint8_t *)s->cursor +
								   ML__SUB_LOST_OFF),
				      lost, memory_order_relaxed);
	}
}

static void end_view(ml_sub *s)
{
	if (s->viewing)
		ml_sub_done(s);
}

/*
 * Nothing read: an armed descriptor is armed anew, then one more look; a
 * publisher that is gone makes it -EPIPE, once what it published is read.
 */
static bool look_again(ml_sub *s, int n)
{
	return n == -EAGAIN && (ml__chan_rearm(s->c) || ml__chan_gone(s->c, false));
}

int ml_sub_recv(ml_sub *s, int *prio, uint64_t *seq, void *buf, size_t len)
{
	uint64_t at[ML_PRIO_COUNT] = { 0 };
	int n, pr = 0;

	if (!s || (len && !buf))
		return -EINVAL;
	end_view(s);
	ml__chan_tick(s->c);
	try_start(s);
	if (s->start_err)
		return s->start_err;
	positions(s, at);
	n = ml__bcast_read(s->r, &pr, seq, buf, len);
	if (look_again(s, n))
		n = ml__bcast_read(s->r, &pr, seq, buf, len);
	if (n == -EAGAIN && ml__chan_gone(s->c, false))
		return -EPIPE;
	if (n < 0)
		return n;
	s->received++;
	if (prio)
		*prio = pr;
	room_given(s, pr, at[pr]);
	tell_lost(s);
	return n;
}

int ml_sub_view(ml_sub *s, int *prio, uint64_t *seq, const void **ptr)
{
	uint64_t at[ML_PRIO_COUNT] = { 0 };
	int n, pr = 0;

	if (!s || !ptr)
		return -EINVAL;
	if (!s->viewing) {
		ml__chan_tick(s->c);
		try_start(s);
		if (s->start_err)
			return s->start_err;
		positions(s, at);
	}
	n = ml__bcast_peek(s->r, &pr, seq, ptr);
	if (!s->viewing && look_again(s, n))
		n = ml__bcast_peek(s->r, &pr, seq, ptr);
	if (n == -EAGAIN && ml__chan_gone(s->c, false))
		return -EPIPE;
	if (n < 0)
		return n;
	if (!s->viewing) {
		s->viewing = true;
		s->view_prio = pr;
		s->view_from = at[pr];
	}
	if (prio)
		*prio = pr;
	return n;
}

int ml_sub_done(ml_sub *s)
{
	int err;

	if (!s || !s->viewing)
		return -EINVAL;
	s->viewing = false;
	err = ml__bcast_done(s->r);
	tell_lost(s);
	if (err)
		return err;
	s->received++;
	room_given(s, s->view_prio, s->view_from);
	return 0;
}

int ml_sub_wait(ml_sub *s, int64_t timeout_ns)
{
	if (!s)
		return -EINVAL;
	end_view(s);
	return ml_chan_wait(s->c, timeout_ns);
}

int ml_sub_fd(ml_sub *s)
{
	return s ? ml_chan_fd(s->c) : -EINVAL;
}

int ml_sub_stats(ml_sub *s, struct ml_sub_stats *st)
{
	struct ml_chan_stats cs = { .size = sizeof(cs) };
	struct ml_sub_stats out = { 0 };

	if (!s || !st || st->size < sizeof(out))
		return -EINVAL;
	ml_chan_stats(s->c, &cs);
	out.size = (uint32_t)sizeof(out);
	out.received = s->received;
	out.lost = ml__bcast_lost(s->r, out.lost_lane);
	out.poisoned = ml__bcast_poisoned(s->r);
	out.policy = s->policy;
	out.sleeps = cs.sleeps;
	out.missed_wakeups = cs.missed_wakeups;
	memcpy(st, &out, out.size);
	return 0;
}

void ml_sub_close(ml_sub *s)
{
	if (!s)
		return;
	ml_chan_close(s->c);
	ml__bcast_reader_free(s->r);
	free(s);
}

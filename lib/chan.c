// SPDX-License-Identifier: MIT
/*
 * Channels: a daemon and its clients over one shared region (chan_layout.h),
 * through whichever backend (backend.h) the platform offers.
 *
 * Slot life cycle. A slot is taken by holding its bell first (so that
 * its client is known alive) and then moving the control region's record
 * FREE -> CLAIMED: by the client itself, or, where areas are private, by
 * the daemon's backend admitting it (ml__chan_claim), which maps a new
 * area for it. The client attaches to the rings the daemon laid out and
 * says CONNECTED in its own header; leaving, it says LEAVING there and
 * lets go of the bell. Only the daemon lays out rings, and only it frees
 * a slot: when it finds it LEAVING, or held by nobody alive, after
 * laying the rings out anew (or letting a private area go). So a ring is
 * never re-initialised under a reader or a writer.
 *
 * Whatever a client can write may be hostile: its own area always, the
 * whole region where areas are not private. So the geometry is read once
 * (by a client, after checking it) and kept privately; ring memory is
 * found through area_at() only, the rings check their own indices, and
 * the daemon takes nothing from a client's header but its state, its
 * generation and what it only reports.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "chan_ext.h"
#include "chan_layout.h"
#include "internal.h"

#define DEFAULT_MAX_CLIENTS 8u
#define DEFAULT_RING_SIZE (256u << 10)
#define DEFAULT_SPIN_NS 50000u
/*
 * Adaptive spins: the first SPIN_ALONE_NS of a spin only look (a peer
 * on another core answers within a few cache-line round trips). Past
 * that, a spin goes on only if this thread was not preempted since the
 * last such look, and yields each time it reads the clock: a thread that
 * waits for its CPU is likelier the one we wait for, when processes
 * outnumber cores.
 */
#define SPIN_ALONE_NS 2000u
/* Without kernel help, look at the peer's liveness this often while asleep. */
#define LIVENESS_SLICE_NS 20000000
/*
 * A sleep that ran out while a message waited unrung: how long its sender
 * may take to ring (preempted between publishing and ringing) before the
 * wake-up counts as lost.
 */
#define MISSED_GRACE_NS 1000000000
/* A busy daemon asks who is alive this often. */
#define LIVENESS_SCAN_NS 50000000
/* Heartbeats: written at most this often, and a sleeper wakes to beat. */
#define BEAT_MIN_NS 10000000
#define BEAT_SLICE_NS 50000000
/* Instead of a sleep, should a remote barrier ever fail (chan_sleep). */
#define NAP_NO_BARRIER_NS 1000000
/*
 * A sender waiting for room (ml_chan_send_wait) spins as its mode says,
 * then sleeps until the reader rings: at first ROOM_SLICE_NS at most,
 * twice as long each time after, up to ROOM_SLICE_MAX_NS (room_sleep()).
 */
#define ROOM_SLICE_NS 1000000
#define ROOM_SLICE_MAX_NS 16000000
/* Under ROOM_SLICE_NS before its deadline, it naps this long at most instead. */
#define ROOM_NAP_NS 20000
/* A client id: the slot in the low bits, its generation above (ML_CHAN_SLOT). */
#define ID_SLOT_BITS 5
#define GEN_MAX ((1u << (32 - ID_SLOT_BITS)) - 1)
_Static_assert(ML_CHAN_MAX_CLIENTS <= 1u << ID_SLOT_BITS, "a slot fits an id's low bits");

struct ml_chan {
	struct ml__shm shm;
	struct ml__ctl *ctl;
	bool daemon;
	bool armed;                     /* ml_chan_fd() was called: peers always ring */
	uint32_t arrivals_seq;          /* the daemon bell's word at the last arrived() */
	unsigned max_clients;
	unsigned ring_size;
	unsigned max_msg;
	uint64_t stride;                /* bytes of one client's two rings */
	uint64_t beat_ns;               /* our last heartbeat */
	unsigned ticks;                 /* calls, to read the clock on some only */
	struct ml_chan_stats stats;
	/* a sleep timed out with a message waiting and no ring (settle_missed) */
	bool suspect;
	uint32_t suspect_seq;
	uint64_t suspect_ns;
	/* daemon: slots with a report for recv (-EOWNERDEAD, -EBADMSG) */
	uint32_t owner_dead_due, poison_due;
	uint32_t owner_dead_told;       /* slots whose -EOWNERDEAD recv returned */
	uint32_t poison_seen;           /* slots whose poisoned ring was counted */
	uint32_t bad_rings;             /* slots whose rings (this gen) we refused */
	char *pidfile;                  /* daemon: ml_chan_pidfile()'s, removed at close */
	enum ml_wait_mode mode;
	uint64_t spin_ns;
	uint64_t preempted;             /* ml__os_preempted() at the last look */
	bool fence_ok;                  /* registered for remote barriers */
	uint64_t live_slice;            /* a client asks alive(0) this often at most */
	bool viewing;                   /* ml_chan_recv_view(): tails held until view_done() */
	bool lone;                      /* daemon: the last recv's client was the only one with data */
	uint32_t read_from;             /* daemon: clients read under a held tail, bit k */
	ml_ring *res_ring;              /* ml_chan_send_reserve(): where, NULL: none */
	unsigned res_bell;              /* whom its commit wakes */
	bool res_lost;                  /* the reservation's client left before the commit */
	unsigned res_id;                /* daemon: the client id the reservation is for */
	uint32_t bell_idle;             /* our bell's `sleeping` while awake */
	uint32_t epoch;                 /* the number of our latest sleep */
	/* By bell: its `sleeping` when we last woke its owner (ML__BELL_EPOCH). */
	uint32_t woke[1 + ML_CHAN_MAX_CLIENTS];
	/* client */
	unsigned slot;
	bool peer_gone;                 /* the daemon is known to be gone */
	ml_ring *req;                   /* producer */
	ml_ring *resp;                  /* consumer */
	/* daemon */
	ml_ring *reqs[ML_CHAN_MAX_CLIENTS];   /* consumer, NULL: not connected */
	ml_ring *resps[ML_CHAN_MAX_CLIENTS];  /* producer */
	uint32_t gens[ML_CHAN_MAX_CLIENTS];   /* slot generation of the handles */
	/*
	 * Client ids (ML_CHAN_SLOT): ids[i] names slot i's client from the
	 * daemon's first look at it until the slot is freed (0: none);
	 * gen_next[i] is the generation the slot's next client gets. Only
	 * here, in the daemon's memory: nothing a client writes changes them.
	 */
	uint32_t ids[ML_CHAN_MAX_CLIENTS];
	uint32_t gen_next[ML_CHAN_MAX_CLIENTS];
	uint32_t departed;                    /* slots whose client is known gone */
	uint32_t cut;                         /* of them, cut off: never read again */
	uint32_t retired;                     /* slots whose ids are used up */
	bool events;                          /* ML_CHAN_EVENTS */
	uint32_t join_due, leave_due;         /* events for recv to hand over */
	uint32_t poison_id[ML_CHAN_MAX_CLIENTS]; /* whose -EBADMSG is due (its slot may be freed) */
	uint32_t leave_told;                  /* slots whose ML_CHAN_LEFT recv returned */
	uint32_t setting_up;                  /* slots claimed, not yet connected */
	uint32_t slots_seq;                   /* ctl->slots_seq at the last scan */
	uint64_t live_scan_ns;                /* when peers' liveness was last asked */
	uint32_t changes_seen;                /* shm.changes at the last liveness scan */
	unsigned next[ML_PRIO_COUNT];         /* round-robin cursor per priority */
	uint32_t attached;                    /* bit k: reqs[k] and resps[k] are set */
	/*
	 * The clients of the daemon's last look that had a record at
	 * round_prio and are not served yet: taken in turn without looking at
	 * the others (daemon_recv).
	 */
	uint32_t round;
	int round_prio;
	/* topics (chan_ext.h) */
	uint32_t magic;                       /* ML__CHAN_MAGIC or ML__TOPIC_MAGIC */
	uint32_t member_gen;                  /* daemon: bumped by every attach and detach */
	uint64_t extra;                       /* the topic region's bytes */
	bool (*ready)(void *arg);             /* client: more to read than its ring */
	void *ready_arg;
	void *alloc_base;
};

_Static_assert(offsetof(struct ml_chan, shm) == 0, "ml__chan_claim() finds the channel");

bool ml__name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > ML_CHAN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static size_t ring_mem(const ml_chan *c)
{
	return ml_ring_mem_size(c->ring_size);
}

/* A client area's size: its header and two rings. */
static uint64_t area_stride(size_t ring_mem)
{
	return ML__PEER_SIZE + 2 * (uint64_t)ring_mem;
}

/* `len` bytes at `off` in slot i's area; NULL if not mapped or outside it. */
static void *area_at(const ml_chan *c, unsigned i, uint64_t off, uint64_t len)
{
	uint8_t *a = i < ML_CHAN_MAX_CLIENTS ? c->shm.area[i] : NULL;

	if (!a || off > c->shm.area_len || len > c->shm.area_len - off)
		return NULL;
	return a + off;
}

/* Slot i's client header; NULL if its area is not mapped. */
static struct ml__peer *peer_of(const ml_chan *c, unsigned i)
{
	return area_at(c, i, 0, sizeof(struct ml__peer));
}

/* Where areas are carved from the region: each slot's, after the control region. */
static void carve_areas(ml_chan *c)
{
	c->shm.area_len = c->stride;
	for (unsigned i = 0; i < c->max_clients; i++)
		c->shm.area[i] = ml__shm_at(&c->shm,
					    ML__CTL_SIZE + c->extra + (uint64_t)i * c->stride,
					    c->stride);
}

/* A bell's doorbell: the daemon's in the control region, a client's in its header. */
static struct ml__bell *bell_of(ml_chan *c, unsigned bell)
{
	struct ml__peer *p;

	if (!bell)
		return &c->ctl->bell;
	p = peer_of(c, bell - 1);
	return p ? &p->bell : NULL;
}

/* Slot i's request ring, or its response ring; NULL if out of the map. */
static void *ring_at(const ml_chan *c, unsigned i, bool resp)
{
	return area_at(c, i, ML__PEER_SIZE + (resp ? ring_mem(c) : 0), ring_mem(c));
}

/* Our heartbeat word: the daemon's, or our header's. */
static _Atomic uint64_t *beat_word(ml_chan *c)
{
	return c->daemon ? &c->ctl->heartbeat_ns : &peer_of(c, c->slot)->beat_ns;
}

/* Record "alive at now", at most every BEAT_MIN_NS. */
static void beat(ml_chan *c, uint64_t now)
{
	if (now - c->beat_ns >= BEAT_MIN_NS) {
		c->beat_ns = now;
		atomic_store_explicit(beat_word(c), now, memory_order_relaxed);
	}
}

static int chan_alloc(ml_chan **out, const char *name, const struct ml_chan_opts *in,
		      struct ml_chan_opts *o)
{
	void *base;
	ml_chan *c;
	int err;

	if (!out || !ml__name_ok(name))
		return -EINVAL;
	err = ml__copy_opts(o, sizeof(*o), in, in ? in->size : 0,
			    offsetof(struct ml_chan_opts, mode) + sizeof(uint32_t));
	if (err)
		return err;
	if (o->flags & ~(ML_CHAN_DAEMON_UID | ML_CHAN_ANY_DAEMON | ML_CHAN_GLOBAL |
			 ML_CHAN_EVENTS) ||
	    (o->flags & ML_CHAN_DAEMON_UID && o->flags & ML_CHAN_ANY_DAEMON) ||
	    (!(o->flags & ML_CHAN_DAEMON_UID) && o->daemon_uid) ||
	    o->wait_mode > ML_WAIT_BLOCKING || o->backend > ML_BACKEND_DARWIN)
		return -EINVAL;
	c = ml__aligned_zalloc(sizeof(*c), 64, &base);
	if (!c)
		return -ENOMEM;
	c->alloc_base = base;
	memcpy(c->shm.name, name, strlen(name) + 1);
	c->shm.flags = o->flags;
	c->shm.fd = -1;
	c->shm.poll_fd = -1;
	for (unsigned i = 0; i < ML__BELLS; i++)
		c->shm.bell_h[i] = -1;
	c->mode = (enum ml_wait_mode)o->wait_mode;
	c->spin_ns = o->spin_ns ? o->spin_ns : DEFAULT_SPIN_NS;
	/*
	 * Remote barriers make sends fence-free, at ~1-2 us per sleep of ours:
	 * worth it unless we sleep on every wait (blocking mode), where our
	 * senders fence instead (bell_ring).
	 */
	c->fence_ok = ml__os_fence_register();
	c->bell_idle = c->fence_ok && c->mode != ML_WAIT_BLOCKING ? ML__BELL_ASYM : 0;
	err = ml__backend_pick((enum ml_backend)o->backend, &c->shm.be);
	if (err) {
		free(base);
		return err;
	}
	c->live_slice = c->shm.be->live_slice_ns ? c->shm.be->live_slice_ns : LIVENESS_SLICE_NS;
	c->magic = ML__CHAN_MAGIC;
	*out = c;
	return 0;
}

static void chan_free(ml_chan *c)
{
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++) {
		ml_ring_free(c->reqs[i]);
		ml_ring_free(c->resps[i]);
	}
	ml_ring_free(c->req);
	ml_ring_free(c->resp);
	if (c->shm.base)
		c->shm.be->close(&c->shm);
	if (c->pidfile)
		remove(c->pidfile);
	free(c->pidfile);
	free(c->alloc_base);
}

/* ---- waking ------------------------------------------------------------ */

static unsigned own_bell(const ml_chan *c)
{
	return c->daemon ? 0 : 1 + c->slot;
}

/* Wake bell `bell`'s owner, whose flags read `s`, if asleep and not woken in this sleep. */
static void bell_wake(ml_chan *c, unsigned bell, struct ml__bell *b, uint32_t s)
{
	if (!(s & ML__BELL_ASLEEP))
		return;
	/*
	 * Woken already in this sleep: it reads everything before the
	 * next. (After 2^24 sleeps unseen the number may come round to
	 * an old one: a missed wake-up, which the sleep's slice bounds.)
	 */
	if ((s & ML__BELL_EPOCH) && c->woke[bell] == s)
		return;
	c->woke[bell] = s;
	/* A client that cannot write the control region counts in its header. */
	if (bell == 0 && c->shm.be->private_areas)
		atomic_fetch_add_explicit(&peer_of(c, c->slot)->dseq, 1, memory_order_release);
	else
		atomic_fetch_add_explicit(&b->seq, 1, memory_order_release);
	c->shm.be->wake(&c->shm, bell, &b->seq);
	c->stats.wakeups++;
}

/*
 * After a send: ring the peer's bell only if it may be asleep. Either we
 * see it asleep, or it sees what we sent before it sleeps: for that our
 * send and our look at its flag are ordered by a fence here paired with
 * the one in chan_sleep() or, when the owner is ASYM and we take part in
 * remote barriers, by the barrier it runs before its last look.
 */
static void bell_ring(ml_chan *c, unsigned bell)
{
	struct ml__bell *b = bell_of(c, bell);
	uint32_t s;

	if (!b)
		return;
	atomic_signal_fence(memory_order_seq_cst);
	s = atomic_load_explicit(&b->sleeping, memory_order_relaxed);
	if (!(c->fence_ok && (s & ML__BELL_ASYM))) {
		atomic_thread_fence(memory_order_seq_cst);
		s = atomic_load_explicit(&b->sleeping, memory_order_relaxed);
	}
	bell_wake(c, bell, b, s);
}

/*
 * We gave room back in ring r, whose writer owns `bell`: ring it if it
 * sleeps waiting for room in a lane of r that is now at most half full.
 * One load of the writer's flags a receive; its garbage costs a wake-up.
 * A flag set in the moment we looked may be missed: the writer's sleep is
 * bounded for that (room_sleep()).
 */
static void room_given(ml_chan *c, ml_ring *r, unsigned bell)
{
	struct ml__bell *b = bell_of(c, bell);
	uint32_t s = b ? atomic_load_explicit(&b->sleeping, memory_order_relaxed) : 0;

	if ((s & ML__BELL_ROOM_MASK) && r &&
	    ml__ring_half_free(r, (s & ML__BELL_ROOM_MASK) >> ML__BELL_ROOM_SHIFT))
		bell_ring(c, bell);
}

/*
 * How often our bell was rung: its sequence word and, for a daemon whose
 * clients count in their own headers, their counts (only ever compared
 * for change, so a client's garbage only makes a ring seem to happen).
 */
static uint32_t rung(ml_chan *c)
{
	uint32_t n = atomic_load_explicit(&bell_of(c, own_bell(c))->seq, memory_order_acquire);

	if (c->daemon && c->shm.be->private_areas)
		for (unsigned i = 0; i < c->max_clients; i++)
			if (c->reqs[i])
				n += atomic_load_explicit(&peer_of(c, i)->dseq,
							  memory_order_acquire);
	return n;
}

/*
 * Our bell's flags while we may sleep, or while armed: under a new number
 * (ML__BELL_EPOCH). An armed handle arms again each time it finds nothing,
 * which a remote barrier each time would make costly: its senders fence.
 */
static uint32_t asleep_word(ml_chan *c, uint32_t extra)
{
	uint32_t idle = c->armed ? c->bell_idle & ~ML__BELL_ASYM : c->bell_idle;

	c->epoch++;
	c->stats.sleeps_announced++;
	return idle | ML__BELL_ASLEEP | ML__BELL_EPOCH | extra | c->epoch << ML__BELL_EPOCH_SHIFT;
}

/* Say whether we sleep behind remote barriers, before peers ring us. */
static void bell_init(ml_chan *c)
{
	atomic_store_explicit(&bell_of(c, own_bell(c))->sleeping, c->bell_idle,
			      memory_order_relaxed);
}

/* ---- faults a dead or broken peer leaves ------------------------------- */

/* Daemon: the id of slot i's client (0 on a client's handle). */
static unsigned id_of(const ml_chan *c, unsigned i)
{
	return c->daemon ? c->ids[i] : 0;
}

/*
 * Daemon: slot i's client, seen for the first time, gets the slot's next
 * id; ML_CHAN_JOINED becomes due for it.
 */
static void id_give(ml_chan *c, unsigned i)
{
	if (c->ids[i])
		return;
	if (!c->gen_next[i])
		c->gen_next[i] = 1;
	c->ids[i] = c->gen_next[i]++ << ID_SLOT_BITS | i;
	if (c->events)
		c->join_due |= 1u << i;
}

/*
 * Daemon: the slot of client `id` while that client is there. -EINVAL
 * for an id never given, -EPIPE for one whose client has gone (or is
 * known to be going): never the slot's new holder.
 */
static int id_slot(const ml_chan *c, unsigned id, unsigned *slot)
{
	unsigned i = ML_CHAN_SLOT(id), gen = id >> ID_SLOT_BITS;

	if (i >= c->max_clients || !gen || gen >= c->gen_next[i])
		return -EINVAL;
	if (c->ids[i] != id || (c->departed & (1u << i)))
		return -EPIPE;
	*slot = i;
	return 0;
}

/* Reports and events waiting for the daemon's recv. */
static bool reports_due(const ml_chan *c)
{
	return (c->owner_dead_due | c->poison_due | c->join_due | c->leave_due) != 0;
}

static void note_fault(ml_chan *c, int err, unsigned client)
{
	if (err == -EOWNERDEAD)
		c->stats.abandoned++;
	else
		c->stats.poisoned++;
	c->stats.last_error = err;
	c->stats.last_client = client;
}

/*
 * A peer gone: did it die with records half written into `r` (the daemon:
 * slot i's requests)? How many.
 */
static unsigned check_abandoned(ml_chan *c, ml_ring *r, unsigned i)
{
	unsigned lanes = r ? ml__ring_claims(r) : 0, n = 0;

	for (; lanes; lanes &= lanes - 1, n++) {
		note_fault(c, -EOWNERDEAD, id_of(c, i));
		if (c->daemon)
			c->owner_dead_due |= 1u << i;
	}
	return n;
}

/*
 * Daemon: slot k's client broke its lanes or header: -EBADMSG due for it,
 * under its id, which the report keeps should the slot be freed first.
 */
static void poison(ml_chan *c, unsigned k)
{
	c->poison_seen |= 1u << k;
	c->poison_due |= 1u << k;
	c->poison_id[k] = c->ids[k];
	note_fault(c, -EBADMSG, c->ids[k]);
}

/* Daemon: client k's request ring turned out corrupt; say so once. */
static void check_poison(ml_chan *c, unsigned k)
{
	if (!ml_ring_poisoned(c->reqs[k]) || (c->poison_seen & (1u << k)))
		return;
	poison(c, k);
}

/*
 * Daemon: hand the next due report to recv, with its client: arrivals
 * first (before any message of theirs), departures last (after their
 * faults; their messages were read before they came due).
 */
static int take_report(ml_chan *c, unsigned *client)
{
	uint32_t *due = c->join_due        ? &c->join_due :
			c->owner_dead_due  ? &c->owner_dead_due :
			c->poison_due      ? &c->poison_due : &c->leave_due;
	unsigned k = (unsigned)__builtin_ctz(*due);
	int err = due == &c->join_due ? ML_CHAN_JOINED :
		  due == &c->owner_dead_due ? -EOWNERDEAD :
		  due == &c->poison_due ? -EBADMSG : ML_CHAN_LEFT;

	*due &= *due - 1;
	if (err == -EOWNERDEAD || err == ML_CHAN_LEFT) {
		/* Now the slot may go: look at it again on the next call. */
		*(err == ML_CHAN_LEFT ? &c->leave_told : &c->owner_dead_told) |= 1u << k;
		c->live_scan_ns = 0;
		c->slots_seq--;
	}
	if (client)
		*client = err == -EBADMSG ? c->poison_id[k] : c->ids[k];
	return err;
}

/* ---- daemon ------------------------------------------------------------ */

static int lay_out_slot(ml_chan *c, unsigned i)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3,
				  .max_msg = c->max_msg };
	struct ml__peer *p = peer_of(c, i);
	ml_ring *a, *b;
	int err;

	if (!p)
		return -EPROTO;
	/* Its generation goes on: a client's rings are told from its predecessor's. */
	atomic_store_explicit(&p->state, 0, memory_order_relaxed);
	p->pid = 0;
	atomic_store_explicit(&p->dseq, 0, memory_order_relaxed);
	atomic_store_explicit(&p->beat_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&p->bell.seq, 0, memory_order_relaxed);
	atomic_store_explicit(&p->bell.sleeping, 0, memory_order_relaxed);
	err = ml_ring_init(&a, ring_at(c, i, false), ring_mem(c), c->ring_size, &o);
	if (err)
		return err;
	err = ml_ring_init(&b, ring_at(c, i, true), ring_mem(c), c->ring_size, &o);
	ml_ring_free(a);
	if (err)
		return err;
	ml_ring_free(b);
	return 0;
}

/* Drop the daemon's handles on slot i's rings. */
static void daemon_detach(ml_chan *c, unsigned i)
{
	if (c->res_ring && c->res_ring == c->resps[i]) {
		c->res_ring = NULL;
		c->res_lost = true;
	}
	ml_ring_free(c->reqs[i]);
	ml_ring_free(c->resps[i]);
	c->reqs[i] = c->resps[i] = NULL;
	if (c->attached & (1u << i))
		c->member_gen++;
	c->attached &= ~(1u << i);
	c->round &= ~(1u << i);
}

/*
 * Attach to a ring of slot i, and check that it is still the one the
 * daemon laid out: anyone mapping the region can rewrite its config line
 * (another lane count, a larger max_msg) before we look.
 */
static int attach_ring(ml_chan *c, unsigned i, bool resp, ml_ring **out)
{
	struct ml_ring_info info;
	int err = ml_ring_attach(out, ring_at(c, i, resp), ring_mem(c));

	if (err)
		return err;
	ml_ring_info(*out, &info);
	if (info.lanes != ML_PRIO_COUNT || info.capacity != c->ring_size ||
	    info.max_msg != c->max_msg) {
		ml_ring_free(*out);
		*out = NULL;
		return -EPROTO;
	}
	/* Ours to read, and we come back to it until it is empty. */
	if (resp != c->daemon)
		ml__ring_lazy_tail(*out, true);
	return 0;
}

/* (Re)attach the daemon's handles to slot i's rings. */
static void daemon_attach(ml_chan *c, unsigned i, uint32_t gen)
{
	uint32_t bit = 1u << i;

	if (c->gens[i] == gen && (c->bad_rings & bit))
		return; /* refused and reported already */
	id_give(c, i);
	daemon_detach(c, i);
	c->woke[1 + i] = 0; /* a new client numbers its sleeps anew */
	c->poison_seen &= ~bit;
	c->bad_rings &= ~bit;
	c->gens[i] = gen;
	if (attach_ring(c, i, false, &c->reqs[i]) || attach_ring(c, i, true, &c->resps[i])) {
		daemon_detach(c, i);
		/* Not what we laid out: that client broke its rings; say so once. */
		c->bad_rings |= bit;
		poison(c, i);
	} else {
		c->attached |= bit;
		c->member_gen++;
	}
}

/* Slot i's lane fill, into its record (zero when not attached). */
static void mirror_lanes(ml_chan *c, unsigned i)
{
	struct ml__slot *sl = &c->ctl->slot[i];
	struct ml_ring_info q = { 0 }, r = { 0 };

	/* A topic's subscribers use no rings: the publisher mirrors them. */
	if (c->magic == ML__TOPIC_MAGIC)
		return;
	if (c->reqs[i] && c->resps[i]) {
		ml_ring_info(c->reqs[i], &q);
		ml_ring_info(c->resps[i], &r);
	}
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
		atomic_store_explicit(&sl->req_used[l], q.lane_used[l], memory_order_relaxed);
		atomic_store_explicit(&sl->resp_used[l], r.lane_used[l], memory_order_relaxed);
	}
}

/*
 * Let slot i go to a new client: its rings laid out anew in its area, or
 * its private area let go (its next client gets a new one). 0 when done.
 */
static int free_slot(ml_chan *c, unsigned i)
{
	struct ml__slot *sl = &c->ctl->slot[i];
	uint32_t bit = 1u << i;

	c->bad_rings &= ~bit;
	c->poison_seen &= ~bit;
	c->setting_up &= ~bit;
	/* Its id is gone for good: calls naming it give -EPIPE from now on. */
	c->ids[i] = 0;
	c->departed &= ~bit;
	c->cut &= ~bit;
	c->join_due &= ~bit;
	c->leave_due &= ~bit;
	c->leave_told &= ~bit;
	if (c->shm.be->private_areas)
		c->shm.be->area_free(&c->shm, i);
	/* Every id it could give was given: it stays taken, by nobody. */
	if (c->gen_next[i] > GEN_MAX) {
		c->retired |= bit;
		sl->pid = 0;
		atomic_store_explicit(&sl->state, ML__SLOT_LEAVING, memory_order_release);
		return 0;
	}
	/* Made anew, where clients take areas themselves: nobody else has this one. */
	if (!c->shm.be->private_areas || c->shm.be->premade_areas) {
		int err = c->shm.be->premade_areas ?
				  c->shm.be->area_new(&c->shm, i, c->shm.area_len) : 0;

		if (!err)
			err = lay_out_slot(c, i);
		if (err)
			return err;
	}
	sl->pid = 0;
	atomic_store_explicit(&sl->beat_ns, 0, memory_order_relaxed);
	mirror_lanes(c, i);
	atomic_store_explicit(&sl->state, ML__SLOT_FREE, memory_order_release);
	return 0;
}

/*
 * Slot i's state as the daemon judges it: FREE by its record, else what
 * its client says in its header (anything but CONNECTED or LEAVING is
 * still setting up). The record mirrors it, for onlookers.
 */
static uint32_t slot_state(ml_chan *c, unsigned i, uint32_t *gen, bool mirror)
{
	struct ml__slot *sl = &c->ctl->slot[i];
	uint32_t rec = atomic_load_explicit(&sl->state, memory_order_acquire), st;
	struct ml__peer *p;

	*gen = 0;
	/* linux: a free slot's area is the service thread's until CLAIMED. */
	if (rec == ML__SLOT_FREE && !c->shm.be->premade_areas)
		return rec;
	p = peer_of(c, i);
	st = p ? atomic_load_explicit(&p->state, memory_order_acquire) : 0;
	/* Where clients take slots themselves, a free slot's header tells. */
	if (rec == ML__SLOT_FREE &&
	    !(p && (st || atomic_load_explicit(&p->gen, memory_order_relaxed))))
		return rec;
	if (st != ML__SLOT_CONNECTED && st != ML__SLOT_LEAVING)
		st = ML__SLOT_CLAIMED;
	if (p)
		*gen = atomic_load_explicit(&p->gen, memory_order_relaxed);
	if (mirror) {
		if (rec != st)
			atomic_store_explicit(&sl->state, st, memory_order_relaxed);
		if (p) {
			sl->pid = p->pid;
			atomic_store_explicit(&sl->beat_ns,
					      atomic_load_explicit(&p->beat_ns, memory_order_relaxed),
					      memory_order_relaxed);
		}
	}
	return st;
}

/*
 * Bring the daemon's view of the slots up to date: attach to newly
 * connected clients, and reclaim slots whose client left or died.
 * `liveness` also asks the backend who is alive (a system call per slot),
 * which the hot paths skip.
 */
static void daemon_scan(ml_chan *c, bool liveness)
{
	unsigned connected = 0;
	bool rescan = false;

	c->slots_seq = atomic_load_explicit(&c->ctl->slots_seq, memory_order_acquire);
	if (liveness) {
		c->changes_seen = atomic_load_explicit(&c->shm.changes, memory_order_acquire);
		c->live_scan_ns = ml__now_ns();
	}
	c->setting_up = 0;
	for (unsigned i = 0; i < c->max_clients; i++) {
		uint32_t gen, st, bit = 1u << i;
		bool gone;

		if (c->retired & bit)
			continue;
		st = slot_state(c, i, &gen, true);
		gone = st == ML__SLOT_LEAVING || (c->departed & bit);
		/* Its LEFT was the last word: nothing it wrote since is news. */
		if ((c->leave_told & bit) && !(c->viewing && c->reqs[i])) {
			if (st != ML__SLOT_LEAVING && st != ML__SLOT_FREE && !(c->cut & bit))
				c->stats.clients_died++;
			daemon_detach(c, i);
			free_slot(c, i);
			continue;
		}

		/*
		 * A view points into these rings: leave them be until it is
		 * done, and scan again then if they need it.
		 */
		if (c->viewing && c->reqs[i]) {
			if (st == ML__SLOT_CONNECTED && c->gens[i] == gen)
				connected++;
			else
				rescan = true;
			continue;
		}
		/*
		 * Connected, then setting up again: no client goes back, so
		 * this one broke its header. Say so once and cut it off: it is
		 * gone, its slot freed (it gets no other while it holds this
		 * one's bell).
		 */
		if (st == ML__SLOT_CLAIMED && c->reqs[i]) {
			/* Told already if its rings broke first. */
			if (!(c->poison_seen & bit))
				poison(c, i);
			daemon_detach(c, i);
			c->cut |= bit;
			gone = true;
		}
		/*
		 * Taken by a client that has not said so (yet): one setting
		 * up, or one that died before it could.
		 */
		if (st == ML__SLOT_FREE && liveness && c->shm.be->premade_areas &&
		    c->shm.be->area_used(&c->shm, i) == 1) {
			st = ML__SLOT_CLAIMED;
			atomic_store_explicit(&c->ctl->slot[i].state, st, memory_order_relaxed);
		}
		if (!gone && st != ML__SLOT_FREE && liveness)
			gone = c->shm.be->alive(&c->shm, 1 + i) == 0;
		/* Gone: nothing more goes to it, whatever is still to be read. */
		if (gone)
			c->departed |= bit;
		/* A topic's clients send nothing: a departed one's slot goes now. */
		if (gone && c->magic == ML__TOPIC_MAGIC) {
			if (st != ML__SLOT_LEAVING && st != ML__SLOT_FREE && !(c->cut & bit))
				c->stats.clients_died++;
			daemon_detach(c, i);
			free_slot(c, i);
			continue;
		}
		/* What a client sent before it left is read before its slot goes. */
		if (gone && st != ML__SLOT_CLAIMED && !(c->cut & bit)) {
			const void *p;

			if (!c->reqs[i] || c->gens[i] != gen)
				daemon_attach(c, i, gen);
			if (c->reqs[i] && ml_ring_peek(c->reqs[i], NULL, &p) >= 0)
				continue;
		}
		if (gone) {
			/*
			 * A record left half-written: recv says so before the
			 * slot can go to a new client, which it then names.
			 */
			if (c->owner_dead_due & bit)
				continue;
			if (!(c->owner_dead_told & bit) && c->gens[i] == gen &&
			    check_abandoned(c, c->reqs[i], i))
				continue;
			/* And its departure, last, before the slot can go. */
			if (c->events && c->ids[i] && !(c->leave_told & bit)) {
				c->leave_due |= bit;
				continue;
			}
			c->owner_dead_told &= ~bit;
			if (st != ML__SLOT_LEAVING && st != ML__SLOT_FREE && !(c->cut & bit))
				c->stats.clients_died++;
			daemon_detach(c, i);
			free_slot(c, i);
			continue;
		}
		if (st == ML__SLOT_CLAIMED)
			c->setting_up |= 1u << i;
		if (st != ML__SLOT_CONNECTED) {
			if (c->reqs[i])
				daemon_detach(c, i);
			continue;
		}
		connected++;
		if (!c->reqs[i] || c->gens[i] != gen)
			daemon_attach(c, i, gen);
	}
	atomic_store_explicit(&c->ctl->clients, connected, memory_order_relaxed);
	for (unsigned i = 0; i < c->max_clients; i++)
		mirror_lanes(c, i);
	if (rescan)
		c->slots_seq--;
}

/*
 * Has a client that was setting up said it connected (or left)? Nothing
 * else it writes there is news: garbage must not make us scan on every
 * call.
 */
static bool set_up(ml_chan *c)
{
	for (uint32_t m = c->setting_up; m; m &= m - 1) {
		struct ml__peer *p = peer_of(c, (unsigned)__builtin_ctz(m));
		uint32_t st = p ? atomic_load_explicit(&p->state, memory_order_relaxed) : 0;

		if (st == ML__SLOT_CONNECTED || st == ML__SLOT_LEAVING)
			return true;
	}
	return false;
}

/*
 * Where clients take slots themselves: has one written a free slot's
 * header? Asked when the bell rang, which every new client rings.
 */
static bool arrived(ml_chan *c)
{
	uint32_t seq = atomic_load_explicit(&c->ctl->bell.seq, memory_order_relaxed);

	if (!c->shm.be->premade_areas || seq == c->arrivals_seq)
		return false;
	c->arrivals_seq = seq;
	for (unsigned i = 0; i < c->max_clients; i++) {
		struct ml__peer *p = peer_of(c, i);

		if (p && atomic_load_explicit(&c->ctl->slot[i].state, memory_order_relaxed) ==
				 ML__SLOT_FREE &&
		    atomic_load_explicit(&p->state, memory_order_relaxed))
			return true;
	}
	return false;
}

/*
 * Scan when a client came or went, and for the dead now and then; beat.
 * The clock is read on every 32nd call only, or when told that the
 * caller is idle anyway.
 */
static void daemon_refresh(ml_chan *c, bool idle)
{
	bool live = false;

	if (idle || (++c->ticks & 31) == 0) {
		uint64_t now = ml__now_ns();

		live = now - c->live_scan_ns > LIVENESS_SCAN_NS;
		beat(c, now);
	}
	/* The backend saw a client come or go: who is alive now? */
	if (atomic_load_explicit(&c->shm.changes, memory_order_acquire) != c->changes_seen)
		live = true;
	if (live || atomic_load_explicit(&c->ctl->slots_seq, memory_order_relaxed) != c->slots_seq ||
	    set_up(c) || arrived(c))
		daemon_scan(c, live);
}

/* The largest message a ring of ours takes when the options do not say. */
static unsigned ring_default_max_msg(const ml_chan *c)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3 };
	struct ml_ring_info info = { 0 };
	size_t len = ring_mem(c);
	void *base, *mem = ml__aligned_zalloc(len, 4096, &base);
	ml_ring *r;

	if (!mem)
		return 0;
	if (!ml_ring_init(&r, mem, len, c->ring_size, &o)) {
		ml_ring_info(r, &info);
		ml_ring_free(r);
	}
	free(base);
	return info.max_msg;
}

int ml_daemon_create(ml_chan **out, const char *name, const struct ml_chan_opts *opts)
{
	return ml__chan_create_ext(out, name, opts, NULL);
}

int ml__chan_create_ext(ml_chan **out, const char *name, const struct ml_chan_opts *opts,
			const struct ml__chan_ext *ext)
{
	struct ml_chan_opts o;
	struct ml__ctl *ctl;
	size_t len, page = ml__os_page_size();
	ml_chan *c;
	int err = chan_alloc(&c, name, opts, &o);

	if (err)
		return err;
	c->daemon = true;
	if (ext) {
		c->magic = ML__TOPIC_MAGIC;
		c->extra = ext->extra;
		err = -EINVAL;
		if (!ext->lay_out)
			goto fail;
	}
	c->events = o.flags & ML_CHAN_EVENTS;
	c->max_clients = o.max_clients ? o.max_clients : DEFAULT_MAX_CLIENTS;
	c->ring_size = o.ring_size ? o.ring_size : DEFAULT_RING_SIZE;
	c->max_msg = o.max_msg; /* 0: the ring's default, read back below */
	c->stride = area_stride(ml_ring_mem_size(c->ring_size));
	err = -EINVAL;
	if (c->max_clients > ML_CHAN_MAX_CLIENTS || !ml_ring_mem_size(c->ring_size) ||
	    (o.mode & ~0777u) || c->extra % page || c->extra > UINT32_MAX)
		goto fail;
	/* Private areas are mapped one by one, as clients come. */
	len = ML__CTL_SIZE + (size_t)c->extra;
	if (!c->shm.be->private_areas)
		len += (size_t)c->max_clients * c->stride;
	len = (len + page - 1) / page * page;
	c->shm.creator = true;
	c->shm.mode = o.mode ? o.mode : 0600;
	err = c->shm.be->create(&c->shm, len, c->shm.mode);
	if (err)
		goto fail;

	ctl = c->ctl = (struct ml__ctl *)c->shm.base;
	ctl->version = ML__CHAN_VERSION;
	ctl->ctl_size = ML__CTL_SIZE;
	ctl->max_clients = c->max_clients;
	ctl->ring_size = c->ring_size;
	ctl->client_stride = c->stride;
	ctl->region_size = len;
	ctl->extra_size = c->extra;
	ctl->daemon_pid = (uint32_t)ml__os_pid();
	if (c->shm.be->private_areas) {
		c->shm.area_len = (c->stride + page - 1) / page * page;
	} else {
		carve_areas(c);
		for (unsigned i = 0; i < c->max_clients; i++) {
			err = lay_out_slot(c, i);
			if (err)
				goto fail;
		}
	}
	if (!c->max_msg)
		c->max_msg = ring_default_max_msg(c);
	err = -ENOMEM;
	if (!c->max_msg)
		goto fail;
	ctl->max_msg = c->max_msg;
	if (ext) {
		size_t n;
		void *mem = ml__chan_extra(c, &n);

		err = mem ? ext->lay_out(mem, n, ext->arg) : -EPROTO;
		if (err)
			goto fail;
	}
	/* Areas clients take by themselves are made now, each laid out. */
	for (unsigned i = 0; c->shm.be->premade_areas && i < c->max_clients; i++) {
		err = c->shm.be->area_new(&c->shm, i, c->shm.area_len);
		if (!err)
			err = lay_out_slot(c, i);
		if (err)
			goto fail;
	}
	c->beat_ns = ml__now_ns();
	atomic_store_explicit(&ctl->heartbeat_ns, c->beat_ns, memory_order_relaxed);
	atomic_store_explicit(&ctl->daemon_state, ML__DAEMON_RUNNING, memory_order_relaxed);
	bell_init(c);
	/* The magic goes last: a client that sees it sees the rest. */
	atomic_thread_fence(memory_order_release);
	*(volatile uint32_t *)&ctl->magic = c->magic;
	if (c->shm.be->ready) {
		err = c->shm.be->ready(&c->shm);
		if (err)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	chan_free(c);
	return err;
}

/*
 * Hand over a message of n bytes at p: copied into buf, or with `view`
 * pointed to where it lies in the ring (the caller holds the tails, so it
 * stays there). -EMSGSIZE, nothing taken, when it does not fit.
 */
static int deliver(const void *p, int n, void *buf, size_t len, const void **view)
{
	if (view)
		*view = p;
	else if ((size_t)n > len)
		return -EMSGSIZE;
	else if (n)
		memcpy(buf, p, (size_t)n);
	return 0;
}

/* Round robin: after client k at a priority, the next one is looked at first. */
static void served(ml_chan *c, unsigned k, int prio)
{
	c->next[prio] = k + 1 == c->max_clients ? 0 : k + 1;
	c->read_from |= 1u << k;
}

/*
 * The next client of the round: the first at or after the lane's cursor,
 * in turn as a full look would order them.
 */
static unsigned round_next(const ml_chan *c)
{
	uint32_t after = c->round & (~0u << c->next[c->round_prio]);

	return (unsigned)__builtin_ctz(after ? after : c->round);
}

/*
 * The daemon's next message: most urgent first, clients in turn per lane;
 * copied or viewed as deliver() says.
 *
 * A look at every client also notes which of them have a record at the
 * lane it chose, and those are then taken in turn, one each, without
 * looking at the others again: with N clients streaming, a look a round
 * instead of a look a message. A record sent meanwhile to a more urgent
 * lane so waits for the round to end, at most max_clients - 1 messages
 * (ml_chan(3)). A client whose turn finds no record of the round's lane
 * (a more urgent one came, or its ring broke) ends the round, and a full
 * look follows.
 */
static int daemon_recv(ml_chan *c, int *prio, unsigned *client, void *buf, size_t len,
		       const void **view)
{
	int best_prio = ML_PRIO_COUNT, best = -1, n = 0;
	unsigned ready = 0, best_turn = 0;
	uint32_t at_best = 0;
	const void *p = NULL;

	if (c->round) {
		unsigned k = round_next(c);

		ml__ring_peek_fresh(c->reqs[k]);
		n = ml_ring_peek(c->reqs[k], &best_prio, &p);
		if (n >= 0 && best_prio == c->round_prio) {
			best = (int)k;
			goto take;
		}
		if (n == -EBADMSG)
			check_poison(c, k);
		c->round = 0;
		best_prio = ML_PRIO_COUNT;
	}
	for (uint32_t m = c->attached; m; m &= m - 1) {
		unsigned k = (unsigned)__builtin_ctz(m), turn;
		const void *q;
		int pr, len_k;

		/* A peek kept from an earlier look may hide a newer, more urgent record. */
		ml__ring_peek_fresh(c->reqs[k]);
		len_k = ml_ring_peek(c->reqs[k], &pr, &q);
		if (len_k < 0) {
			if (len_k == -EBADMSG)
				check_poison(c, k);
			continue;
		}
		ready++;
		if (pr > best_prio)
			continue;
		if (pr < best_prio)
			at_best = 0;
		at_best |= 1u << k;
		/* k's place in the round that starts at next[pr] (no division: a hot path). */
		turn = k >= c->next[pr] ? k - c->next[pr] : k + c->max_clients - c->next[pr];
		if (pr < best_prio || turn < best_turn) {
			best_prio = pr;
			best = (int)k;
			best_turn = turn;
			n = len_k;
			p = q;
		}
	}
	if (best < 0)
		return -EAGAIN;
	c->round = at_best;
	c->round_prio = best_prio;
take:
	/* Too long for buf: it stays, and is the answer again (the round too). */
	if (deliver(p, n, buf, len, view))
		return -EMSGSIZE;
	ml_ring_release(c->reqs[best]);
	c->round &= ~(1u << best);
	served(c, (unsigned)best, best_prio);
	room_given(c, c->reqs[best], 1 + (unsigned)best);
	c->lone = ready == 1;
	if (prio)
		*prio = best_prio;
	if (client)
		*client = c->ids[best];
	return n;
}

/* Slot i's client is attached and has not said it leaves. */
static bool slot_connected(const ml_chan *c, unsigned i)
{
	return c->resps[i] &&
	       atomic_load_explicit(&peer_of(c, i)->state, memory_order_acquire) ==
		       ML__SLOT_CONNECTED;
}

/* The ring of replies to client `id`, and its slot, if that client is there. */
static int reply_ring(ml_chan *c, unsigned id, ml_ring **r, unsigned *slot)
{
	unsigned i;
	int err;

	/* A backend that saw a client go says so: a reply to it fails now. */
	if (atomic_load_explicit(&c->shm.changes, memory_order_relaxed) != c->changes_seen &&
	    !c->viewing)
		daemon_scan(c, true);
	err = id_slot(c, id, &i);
	if (err)
		return err;
	/* It said it leaves: nothing more goes to it. */
	if (!slot_connected(c, i))
		return -EPIPE;
	*r = c->resps[i];
	*slot = i;
	return 0;
}

int ml_chan_reply(ml_chan *c, unsigned client, int prio, const void *buf, size_t len)
{
	unsigned slot;
	ml_ring *r;
	int err;

	if (!c || !c->daemon)
		return -EINVAL;
	err = reply_ring(c, client, &r, &slot);
	if (!err)
		err = ml_ring_write(r, prio, buf, len);
	if (err)
		return err;
	bell_ring(c, 1 + slot);
	return 0;
}

int ml_chan_shutdown(ml_chan *c)
{
	if (!c || !c->daemon)
		return -EINVAL;
	atomic_store_explicit(&c->ctl->daemon_state, ML__DAEMON_SHUTDOWN, memory_order_release);
	for (unsigned i = 0; i < c->max_clients; i++)
		if (atomic_load_explicit(&c->ctl->slot[i].state, memory_order_acquire) !=
		    ML__SLOT_FREE)
			bell_ring(c, 1 + i);
	return 0;
}

/* ---- client ------------------------------------------------------------ */

/*
 * Read a daemon's geometry from its control region, each field once, and
 * check it before anything is trusted (memlink-stat's way in too).
 */
int ml__ctl_read(const struct ml__shm *s, struct ml__geom *g)
{
	const volatile struct ml__ctl *ctl = ml__shm_at(s, 0, ML__CTL_SIZE);
	uint32_t magic;

	if (!ctl)
		return -EPROTO;
	magic = ctl->magic;
	if (magic != ML__CHAN_MAGIC && magic != ML__TOPIC_MAGIC)
		return magic == 0 ? -ENOENT : -EPROTO; /* 0: still starting */
	atomic_thread_fence(memory_order_acquire);
	if (ctl->version != ML__CHAN_VERSION || ctl->ctl_size != ML__CTL_SIZE)
		return -EPROTO;
	g->max_clients = ctl->max_clients;
	g->ring_size = ctl->ring_size;
	g->max_msg = ctl->max_msg;
	g->stride = ctl->client_stride;
	g->topic = magic == ML__TOPIC_MAGIC;
	g->extra = ctl->extra_size;
	/* A channel has no topic region; a topic's is whole pages. */
	if (g->topic ? !g->extra || g->extra % 4096 || g->extra > UINT32_MAX : g->extra)
		return -EPROTO;
	if (g->max_clients == 0 || g->max_clients > ML_CHAN_MAX_CLIENTS ||
	    !ml_ring_mem_size(g->ring_size) ||
	    g->stride != area_stride(ml_ring_mem_size(g->ring_size)) ||
	    ctl->region_size != s->len ||
	    ML__CTL_SIZE + g->extra +
			    (s->be->private_areas ? 0 : (uint64_t)g->max_clients * g->stride) >
		    s->len)
		return -EPROTO;
	/* Areas carved after the control region: a daemon of an older libmemlink (kmod). */
	if (s->be->private_areas && s->len >= ML__CTL_SIZE + g->extra + g->stride)
		return -EPROTO;
	return 0;
}

static int ctl_check(ml_chan *c)
{
	struct ml__geom g;
	int err = ml__ctl_read(&c->shm, &g);

	if (err)
		return err;
	/* A channel's client never joins a topic, nor a subscriber a channel. */
	if (g.topic != (c->magic == ML__TOPIC_MAGIC))
		return -EPROTO;
	c->extra = g.extra;
	c->ctl = (struct ml__ctl *)c->shm.base;
	c->max_clients = g.max_clients;
	c->ring_size = g.ring_size;
	c->stride = g.stride;
	c->max_msg = g.max_msg;
	if (!c->shm.be->private_areas)
		carve_areas(c);
	return 0;
}

/* The daemon is gone: remember it, and whether it died mid-reply. */
static void client_lost_daemon(ml_chan *c)
{
	if (c->peer_gone)
		return;
	c->peer_gone = true;
	check_abandoned(c, c->resp, 0);
}

/* Once known, the daemon's death is remembered: every later call says so. */
static bool daemon_gone(ml_chan *c, bool ask_backend)
{
	if (ask_backend)
		c->live_scan_ns = ml__now_ns();
	if (!c->peer_gone &&
	    (atomic_load_explicit(&c->ctl->daemon_state, memory_order_acquire) !=
		     ML__DAEMON_RUNNING ||
	     (ask_backend && c->shm.be->alive(&c->shm, 0) == 0)))
		client_lost_daemon(c);
	return c->peer_gone;
}

/*
 * Take a free slot: hold its bell first, so a claimed slot is never idle.
 * Its index, or -ECONNREFUSED. Reads only what a daemon never changes
 * after creation (ctl, max_clients): a backend's thread may call it.
 */
static int take_slot(ml_chan *c)
{
	bool private_ = c->shm.be->private_areas;

	/* The area the daemon made, taken whole: the backend lets one process in. */
	for (unsigned i = 0; c->shm.be->premade_areas && i < c->max_clients; i++) {
		if (atomic_load_explicit(&c->ctl->slot[i].state, memory_order_acquire) !=
			    ML__SLOT_FREE ||
		    c->shm.be->claim(&c->shm, i))
			continue;
		if (c->shm.area_len < c->stride) {
			c->shm.be->unhold(&c->shm, 1 + i);
			return -EPROTO;
		}
		/*
		 * The slot went round between our look and the claim: its
		 * record still names the last client while the daemon lays
		 * the new area out. Wait for it to say FREE (or CLAIMED), as
		 * long as a connect waits for a daemon's answer elsewhere (5
		 * s: a daemon on a loaded or debug kernel may take a while).
		 */
		for (uint64_t end = ml__now_ns() + 5000000000u;;) {
			uint32_t st = atomic_load_explicit(&c->ctl->slot[i].state,
							   memory_order_acquire);

			if (st == ML__SLOT_FREE || st == ML__SLOT_CLAIMED)
				break;
			if (ml__now_ns() > end)
				return -EPROTO;
			ml__os_yield();
		}
		return (int)i;
	}
	if (c->shm.be->premade_areas)
		return -ECONNREFUSED;

	for (unsigned i = 0; i < c->max_clients; i++) {
		struct ml__slot *sl = &c->ctl->slot[i];
		uint32_t st = ML__SLOT_FREE;

		if (atomic_load_explicit(&sl->state, memory_order_acquire) != ML__SLOT_FREE)
			continue;
		if (c->shm.be->hold(&c->shm, 1 + i))
			continue;
		/* A new area for each connection: nobody who had one before sees this one. */
		if (private_ && (c->shm.be->area_new(&c->shm, i, c->shm.area_len) ||
				 lay_out_slot(c, i))) {
			c->shm.be->area_free(&c->shm, i);
			c->shm.be->unhold(&c->shm, 1 + i);
			continue;
		}
		if (atomic_compare_exchange_strong_explicit(&sl->state, &st, ML__SLOT_CLAIMED,
							    memory_order_acq_rel,
							    memory_order_relaxed))
			return (int)i;
		if (private_)
			c->shm.be->area_free(&c->shm, i);
		c->shm.be->unhold(&c->shm, 1 + i);
	}
	return -ECONNREFUSED;
}

int ml__chan_claim(struct ml__shm *s)
{
	/* shm is an ml_chan's first member. */
	ml_chan *c = (ml_chan *)(void *)s;
	int i = take_slot(c);

	return i < 0 ? i : 1 + i;
}

/*
 * A client's slot: the one its daemon gave it (linux), which must be one
 * the daemon claimed for it, or one it takes itself.
 */
static int claim_slot(ml_chan *c)
{
	unsigned b = c->shm.bell;
	int i;

	if (b) {
		if (b > c->max_clients || c->shm.area_len < c->stride || !c->shm.area[b - 1] ||
		    atomic_load_explicit(&c->ctl->slot[b - 1].state, memory_order_acquire) !=
			    ML__SLOT_CLAIMED)
			return -EPROTO;
		c->slot = b - 1;
		return 0;
	}
	i = take_slot(c);
	if (i < 0)
		return i;
	c->slot = (unsigned)i;
	return 0;
}

/*
 * A client came or left: where it may write the control region, it says
 * so there; else the daemon finds out by itself (daemon_refresh).
 */
static void slots_changed(ml_chan *c)
{
	if (!c->shm.be->private_areas)
		atomic_fetch_add_explicit(&c->ctl->slots_seq, 1, memory_order_release);
}

/*
 * Is the channel's owner the daemon the client asked for (by default the
 * client's own user)? -EPERM if not; nothing to check where the backend
 * cannot tell (Windows).
 */
static int owner_check(ml_chan *c, const struct ml_chan_opts *o)
{
	uint32_t owner, want;
	int err;

	if (o->flags & ML_CHAN_ANY_DAEMON || !c->shm.be->owner)
		return 0;
	err = c->shm.be->owner(&c->shm, &owner);
	if (err == -ENOTSUP)
		return 0;
	if (err)
		return err;
	want = o->flags & ML_CHAN_DAEMON_UID ? o->daemon_uid : ml__os_euid();
	return owner == want ? 0 : -EPERM;
}

int ml_client_connect(ml_chan **out, const char *name, const struct ml_chan_opts *opts)
{
	return ml__chan_connect_ext(out, name, opts, NULL);
}

int ml__chan_connect_ext(ml_chan **out, const char *name, const struct ml_chan_opts *opts,
			 const struct ml__chan_ext *ext)
{
	struct ml_chan_opts o;
	struct ml__peer *p;
	ml_chan *c;
	int err = chan_alloc(&c, name, opts, &o);

	if (err)
		return err;
	if (ext) {
		c->magic = ML__TOPIC_MAGIC;
		c->ready = ext->ready;
		c->ready_arg = ext->arg;
	}
	err = c->shm.be->open(&c->shm);
	if (err)
		goto fail;
	err = owner_check(c, &o);
	if (err)
		goto fail;
	err = ctl_check(c);
	if (err)
		goto fail;
	if (daemon_gone(c, true)) {
		err = -EPIPE;
		goto fail;
	}
	err = claim_slot(c);
	if (err)
		goto fail;
	p = peer_of(c, c->slot);
	err = -EPROTO;
	if (p && !attach_ring(c, c->slot, false, &c->req) &&
	    !attach_ring(c, c->slot, true, &c->resp))
		err = ext && ext->join ? ext->join(c, ext->arg) : 0;
	if (err) {
		if (p)
			atomic_store_explicit(&p->state, ML__SLOT_LEAVING, memory_order_release);
		slots_changed(c);
		c->shm.be->unhold(&c->shm, 1 + c->slot);
		goto fail;
	}
	p->pid = (uint32_t)ml__os_pid();
	bell_init(c);
	c->beat_ns = ml__now_ns();
	atomic_store_explicit(&p->beat_ns, c->beat_ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->gen, 1, memory_order_relaxed);
	atomic_store_explicit(&p->state, ML__SLOT_CONNECTED, memory_order_release);
	slots_changed(c);
	/* A daemon that finds clients by itself hears of us at once. */
	if (c->shm.be->premade_areas)
		c->shm.be->wake(&c->shm, 0, &c->ctl->bell.seq);
	else
		bell_ring(c, 0);
	*out = c;
	return 0;
fail:
	chan_free(c);
	return err;
}

/*
 * The ring a send goes on: the client's requests, or the daemon's replies
 * to client `client`; *bell, whom it wakes. -EPIPE when that peer is gone.
 */
static int send_ring(ml_chan *c, unsigned client, ml_ring **r, unsigned *bell)
{
	unsigned slot;
	int err;

	*bell = 0;
	if (c->daemon) {
		err = reply_ring(c, client, r, &slot);
		if (!err)
			*bell = 1 + slot;
		return err;
	}
	if (daemon_gone(c, false))
		return -EPIPE;
	*r = c->req;
	return 0;
}

/*
 * A send found its lane full: a client asks whether the daemon lives, of
 * the backend (a system call) at most once a slice: a sender that spins
 * on a full lane must not slow down the reader it waits for.
 */
static int lane_full(ml_chan *c)
{
	return !c->daemon && daemon_gone(c, ml__now_ns() - c->live_scan_ns > c->live_slice) ?
		       -EPIPE : -EAGAIN;
}

int ml_chan_send(ml_chan *c, int prio, const void *buf, size_t len)
{
	unsigned bell;
	ml_ring *r;
	int err;

	if (!c || c->daemon)
		return -EINVAL;
	err = send_ring(c, 0, &r, &bell);
	if (!err)
		err = ml_ring_write(r, prio, buf, len);
	if (err == -EAGAIN)
		err = lane_full(c);
	if (err)
		return err;
	bell_ring(c, 0);
	return 0;
}

int ml_chan_send_many(ml_chan *c, unsigned client, const struct ml_msg *msgs, unsigned n)
{
	unsigned sent = 0, bell;
	ml_ring *r;
	int err = 0;

	if (!c || !msgs || !n)
		return -EINVAL;
	err = send_ring(c, client, &r, &bell);
	if (err)
		return err;
	/* One head store for the batch: a reader that is behind fetches its line once. */
	ml__ring_hold_head(r, true);
	sent = ml__ring_write_run(r, msgs, n, &err);
	ml__ring_hold_head(r, false);
	if (sent) {
		bell_ring(c, bell);
		return (int)sent;
	}
	return err == -EAGAIN ? lane_full(c) : err;
}

int ml_chan_send_reserve(ml_chan *c, unsigned client, int prio, size_t len, void **ptr)
{
	unsigned bell;
	ml_ring *r;
	int err;

	if (!c || !ptr)
		return -EINVAL;
	c->res_ring = NULL;
	c->res_lost = false;
	err = send_ring(c, client, &r, &bell);
	if (!err)
		err = ml_ring_reserve(r, prio, len, ptr);
	if (err == -EAGAIN)
		err = lane_full(c);
	if (err)
		return err;
	c->res_ring = r;
	c->res_bell = bell;
	c->res_id = client;
	return 0;
}

int ml_chan_send_commit(ml_chan *c, size_t len)
{
	int err;

	if (!c)
		return -EINVAL;
	if (!c->res_ring)
		return c->res_lost ? -EPIPE : -EINVAL;
	/* Its client left meanwhile: the message goes to nobody. */
	if (c->daemon) {
		ml_ring *r;
		unsigned slot;

		err = reply_ring(c, c->res_id, &r, &slot);
		if (err || !c->res_ring || r != c->res_ring) {
			c->res_ring = NULL;
			c->res_lost = false;
			return -EPIPE;
		}
	}
	/* -EINVAL too if a send on the same ring dropped the reservation. */
	err = ml_ring_commit(c->res_ring, len);
	if (err)
		return err;
	c->res_ring = NULL;
	bell_ring(c, c->res_bell);
	return 0;
}

/* ---- both sides -------------------------------------------------------- */

/* Something to receive? Never consumes; ring peeks are sticky. */
static bool has_data(ml_chan *c)
{
	const void *p;

	if (!c->daemon)
		return ml_ring_peek(c->resp, NULL, &p) >= 0 || (c->ready && c->ready(c->ready_arg));
	daemon_refresh(c, false);
	if (reports_due(c))
		return true;
	for (unsigned i = 0; i < c->max_clients; i++)
		if (c->reqs[i] && ml_ring_peek(c->reqs[i], NULL, &p) >= 0)
			return true;
	return false;
}

/* Batches: hold (or store) the tails of the rings this side reads. */
static void hold_tails(ml_chan *c, bool hold)
{
	if (!c->daemon) {
		ml__ring_hold_tail(c->resp, hold);
		if (!hold)
			room_given(c, c->resp, 0);
		return;
	}
	for (unsigned k = 0; k < c->max_clients; k++)
		if (c->reqs[k])
			ml__ring_hold_tail(c->reqs[k], hold);
	if (!hold)
		for (uint32_t m = c->read_from; m; m &= m - 1) {
			unsigned k = (unsigned)__builtin_ctz(m);

			room_given(c, c->reqs[k], 1 + k);
		}
	c->read_from = 0;
}

/* A view still held (ml_chan_recv_view): give its room back now. */
static void view_done(ml_chan *c)
{
	if (c->viewing) {
		c->viewing = false;
		hold_tails(c, false);
	}
}

/*
 * What comes before a receive: the daemon's refresh (and a fault report
 * to hand over, < 0), a client's heartbeat and look at the daemon.
 */
static int recv_prepare(ml_chan *c, unsigned *client)
{
	if (c->daemon) {
		daemon_refresh(c, false);
		/* Due only once the client's last message was read. */
		if (reports_due(c))
			return take_report(c, client);
		return 0;
	}
	if ((++c->ticks & 31) == 0) {
		uint64_t now = ml__now_ns();

		beat(c, now);
		/* A client that only polls learns of a dead daemon too. */
		daemon_gone(c, now - c->live_scan_ns > c->live_slice);
	}
	return 0;
}

/* Take the next message, copied or viewed as deliver() says. */
static int recv_take(ml_chan *c, int *prio, unsigned *client, void *buf, size_t len,
		     const void **view)
{
	const void *p;
	int n;

	if (c->daemon)
		return daemon_recv(c, prio, client, buf, len, view);
	n = ml_ring_peek(c->resp, prio, &p);
	/* A reply sent just before the daemon went is still delivered. */
	if (n == -EAGAIN && daemon_gone(c, false))
		n = ml_ring_peek(c->resp, prio, &p);
	if (n == -EAGAIN)
		return c->peer_gone ? -EPIPE : -EAGAIN;
	if (n == -EBADMSG && !c->poison_seen) {
		c->poison_seen = 1;
		note_fault(c, -EBADMSG, 0);
	}
	if (n < 0)
		return n;
	if (deliver(p, n, buf, len, view))
		return -EMSGSIZE;
	ml_ring_release(c->resp);
	room_given(c, c->resp, 0);
	if (client)
		*client = 0;
	return n;
}

bool ml__chan_rearm(ml_chan *c)
{
	if (!c->armed)
		return false;
	if (c->shm.be->fd_ack)
		c->shm.be->fd_ack(&c->shm);
	/* Armed again under a new number: a send after our look wakes us. */
	atomic_store_explicit(&bell_of(c, own_bell(c))->sleeping, asleep_word(c, 0),
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	return true;
}

/*
 * The first message of any receive. Nothing to read on an armed handle:
 * mark the descriptor's readiness seen, arm again under a new number (the
 * peers woke the last one at most once), then look once more, so a send
 * that raced with us is read now or makes the descriptor readable again.
 */
static int recv_first(ml_chan *c, int *prio, unsigned *client, void *buf, size_t len,
		      const void **view)
{
	int n = recv_take(c, prio, client, buf, len, view);

	if (n == -EAGAIN && ml__chan_rearm(c))
		n = recv_take(c, prio, client, buf, len, view);
	return n;
}

/*
 * A daemon's armed descriptor was ready because a client went (kmod: the
 * ack saw it): the readiness is gone now, so the departure must be looked
 * at before the call returns, or nothing would wake the caller for it.
 */
static bool news_acked(const ml_chan *c)
{
	return c->daemon && c->armed &&
	       atomic_load_explicit(&c->shm.changes, memory_order_acquire) != c->changes_seen;
}

int ml_chan_recv(ml_chan *c, int *prio, unsigned *client, void *buf, size_t len)
{
	int err;

	if (!c || (len && !buf))
		return -EINVAL;
	view_done(c);
	err = recv_prepare(c, client);
	if (err)
		return err;
	err = recv_first(c, prio, client, buf, len, NULL);
	if (err == -EAGAIN && news_acked(c)) {
		err = recv_prepare(c, client);
		if (!err)
			err = recv_take(c, prio, client, buf, len, NULL);
	}
	return err;
}

/*
 * A batch copied into the caller's buffer: message m, of m->len bytes, was
 * copied to *at; step past it to the next 8-byte boundary. false: no room
 * is left for another.
 */
static bool packed(struct ml_msg *m, uint8_t **at, size_t *len)
{
	m->data = *at;
	return ml__pack_step(at, len, m->len) != 0;
}

/*
 * The rest of a batch, after a first message from client k. A client
 * reads its one ring in a run, and so does the daemon when k was the only
 * client with messages waiting: n recv()s could return no other order.
 * Otherwise, one message a time, taking clients in turn.
 */
static unsigned more(ml_chan *c, unsigned k, struct ml_msg *msgs, unsigned n, uint8_t **at,
		     size_t *len)
{
	unsigned got = 0;
	int r;

	if (!c->daemon)
		return ml__ring_read_run(c->resp, msgs, n, at, len);
	if (c->lone) {
		got = ml__ring_read_run(c->reqs[k], msgs, n, at, len);
		for (unsigned i = 0; i < got; i++) {
			msgs[i].client = c->ids[k];
			served(c, k, msgs[i].prio);
		}
		return got;
	}
	for (; got < n && !reports_due(c); got++) {
		const void *v;

		memset(&msgs[got], 0, sizeof(msgs[got]));
		r = daemon_recv(c, &msgs[got].prio, &msgs[got].client, at ? *at : NULL,
				at ? *len : 0, at ? NULL : &v);
		if (r < 0)
			break;
		msgs[got].len = (uint32_t)r;
		if (!at)
			msgs[got].data = (void *)v;
		else if (!packed(&msgs[got], at, len))
			return got + 1;
	}
	return got;
}

/*
 * A batch, copied into buf (ml_chan_recv_many) or viewed in
 * place (ml_chan_recv_view). The tails are held from the first message
 * on: a batch gives its room back once, and a view not before it is done.
 * No refresh inside a batch, so the rings held stay the ones attached; a
 * fault report waits for the next call.
 */
static int recv_batch(ml_chan *c, struct ml_msg *msgs, unsigned n, void *buf, size_t len,
		      bool view)
{
	uint8_t *at = buf;
	unsigned got = 0;
	int r;

	view_done(c);
	memset(&msgs[0], 0, sizeof(msgs[0]));
	/* Twice when the ack brought news, as ml_chan_recv(): no scan under held tails. */
	for (bool again = false;; again = true) {
		r = recv_prepare(c, &msgs[0].client);
		if (r)
			return r;
		hold_tails(c, true);
		r = (again ? recv_take : recv_first)(c, &msgs[0].prio, &msgs[0].client, at, len,
						     view ? (const void **)&msgs[0].data : NULL);
		if (r != -EAGAIN || again || !news_acked(c))
			break;
		hold_tails(c, false);
	}
	if (r >= 0) {
		msgs[0].len = (uint32_t)r;
		got = 1;
		if (view || packed(&msgs[0], &at, &len))
			got += more(c, ML_CHAN_SLOT(msgs[0].client), msgs + 1, n - 1,
				    view ? NULL : &at, &len);
	}
	if (view && got)
		c->viewing = true;
	else
		hold_tails(c, false);
	return got ? (int)got : r;
}

int ml_chan_recv_many(ml_chan *c, struct ml_msg *msgs, unsigned n, void *buf, size_t len)
{
	if (!c || !msgs || !n || (len && !buf))
		return -EINVAL;
	return recv_batch(c, msgs, n, buf, len, false);
}

int ml_chan_recv_view(ml_chan *c, struct ml_msg *msgs, unsigned n)
{
	if (!c || !msgs || !n)
		return -EINVAL;
	return recv_batch(c, msgs, n, NULL, 0, true);
}

int ml_chan_recv_done(ml_chan *c)
{
	if (!c)
		return -EINVAL;
	view_done(c);
	return 0;
}

/*
 * Sleep on our bell until woken. The flag is set before the last look at
 * the rings, and the sender looks at the flag after its send (bell_ring):
 * one of the two sees the other, so no wake-up is lost.
 */
/*
 * A sleep ran out its slice while a message waited and nobody had rung.
 * Either its sender was held up between publishing and ringing (it saw us
 * asleep and will ring), or the wake-up was lost. Before sleeping again,
 * while no sender rings for anything newer (we are not marked asleep), wait
 * for that ring up to MISSED_GRACE_NS: if none comes, it is counted as
 * lost. A count, not a time, so that tests can prove no wake-up is lost
 * however busy the machine. Returns true when messages came meanwhile: the
 * caller does not sleep.
 */
static bool settle_missed(ml_chan *c)
{
	while (c->suspect) {
		if (rung(c) != c->suspect_seq) {
			c->suspect = false;
		} else if (ml__now_ns() - c->suspect_ns > MISSED_GRACE_NS) {
			c->stats.missed_wakeups++;
			c->suspect = false;
		} else if (has_data(c)) {
			return true;
		} else {
			ml__os_yield();
		}
	}
	return false;
}

/*
 * Was this thread preempted since it last asked? Asked once a wait
 * (*asked); the answer stays in *crowded: more runnable threads than
 * cores, likely one of them the peer we wait for.
 */
static bool crowded(ml_chan *c, bool *asked, bool *crowd)
{
	if (!*asked) {
		uint64_t p = ml__os_preempted();

		*asked = true;
		*crowd = p != c->preempted;
		c->preempted = p;
	}
	return *crowd;
}

/*
 * May a spin that began at `start` go on at `now` (a time read now, or
 * `start` again between reads), before *spin_end? Adaptive, past
 * SPIN_ALONE_NS: end the spin if the machine is crowded (the spin would
 * take the CPU from the very peer it waits for); else yield at each such
 * look.
 */
static bool spin_on(ml_chan *c, uint64_t start, uint64_t now, uint64_t *spin_end, bool *asked,
		    bool *crowd)
{
	if (now >= *spin_end)
		return false;
	if (c->mode != ML_WAIT_ADAPTIVE || now - start < SPIN_ALONE_NS) {
		ml__cpu_relax();
		return true;
	}
	if (crowded(c, asked, crowd)) {
		c->stats.spins_cut++;
		*spin_end = now;
		return false;
	}
	ml__os_yield();
	return true;
}

static int chan_sleep(ml_chan *c, uint64_t deadline)
{
	unsigned bell = own_bell(c);
	struct ml__bell *b = bell_of(c, bell);
	uint32_t seq, rings, word;
	uint64_t now;
	int64_t left;
	int err = 0;

	if (settle_missed(c))
		return 0;
	seq = atomic_load_explicit(&b->seq, memory_order_acquire);
	rings = rung(c);

	word = asleep_word(c, 0);
	atomic_store_explicit(&b->sleeping, word, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	/*
	 * Our senders do not fence: the barrier makes their sends visible to
	 * the look below, or our flag to their look after it. Should it ever
	 * fail, nap instead of sleeping, as a wake-up could be missed.
	 */
	if ((word & ML__BELL_ASYM) && ml__os_fence_remote()) {
		ml__os_nap(NAP_NO_BARRIER_NS);
		goto out;
	}
	if (has_data(c))
		goto out;
	now = ml__now_ns();
	beat(c, now);
	/*
	 * Liveness costs a system call per peer: ask at most once a slice,
	 * not on every sleep of a busy ping-pong.
	 */
	if (!c->daemon && daemon_gone(c, now - c->live_scan_ns > c->live_slice)) {
		err = -EPIPE;
		goto out;
	}
	/* Wake to beat now and then, however long the wait. */
	left = BEAT_SLICE_NS;
	if (deadline != UINT64_MAX && deadline - now < (uint64_t)left)
		left = now >= deadline ? 0 : (int64_t)(deadline - now);
	/*
	 * Liveness needs a look more often: by the daemon for its clients,
	 * by a client unless the backend reports the daemon's death itself.
	 */
	if ((c->daemon ? !c->shm.be->notifies_client_gone : !c->shm.be->notifies_peer_gone) &&
	    left > LIVENESS_SLICE_NS)
		left = LIVENESS_SLICE_NS;
	err = c->shm.be->wait(&c->shm, bell, &b->seq, seq, left);
	c->stats.sleeps++;
	if (err == -ETIMEDOUT && !c->armed && rung(c) == rings && has_data(c)) {
		c->suspect = true;
		c->suspect_seq = rings;
		c->suspect_ns = ml__now_ns();
	}
	if (err == -EPIPE && !c->daemon)
		client_lost_daemon(c);
	if (err == -ETIMEDOUT || err == -EINTR)
		err = 0;
out:
	if (!c->armed)
		atomic_store_explicit(&b->sleeping, c->bell_idle, memory_order_relaxed);
	return err;
}

int ml_chan_wait(ml_chan *c, int64_t timeout_ns)
{
	uint64_t start, deadline, spin_end;
	bool asked = false, crowd = false, yielded = false;

	if (!c)
		return -EINVAL;
	view_done(c);
	start = ml__now_ns();
	deadline = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t)timeout_ns;
	spin_end = c->mode == ML_WAIT_BLOCKING ? start :
		   c->mode == ML_WAIT_BUSY ? deadline : start + c->spin_ns;
	for (unsigned n = 0;; n++) {
		uint64_t now;

		if (has_data(c))
			return 0;
		/* Gone, but what it sent before going is still read first. */
		if (!c->daemon && daemon_gone(c, false))
			return has_data(c) ? 0 : -EPIPE;
		if (n & 63) {
			now = start;
		} else {
			now = ml__now_ns();
			beat(c, now);
			/* A client spinning (busy mode) asks too, once a slice. */
			if (!c->daemon && daemon_gone(c, now - c->live_scan_ns > c->live_slice))
				return has_data(c) ? 0 : -EPIPE;
		}
		if (now >= deadline) {
			/* A poll (timeout 0) still learns of a dead daemon. */
			if (!c->daemon && daemon_gone(c, true))
				return has_data(c) ? 0 : -EPIPE;
			return -ETIMEDOUT;
		}
		if (spin_on(c, start, now, &spin_end, &asked, &crowd))
			continue;
		/*
		 * Crowded, before a wait's first sleep: give the CPU once to
		 * whoever waits for it (likely the sender), and a burst it then
		 * sends is read in one wake-up, not one a message.
		 */
		if (!yielded && c->mode != ML_WAIT_BUSY && crowded(c, &asked, &crowd)) {
			yielded = true;
			ml__os_yield();
			continue;
		}
		if (chan_sleep(c, deadline) == -EPIPE)
			return has_data(c) ? 0 : -EPIPE;
		if (ml__now_ns() >= deadline && !has_data(c))
			return -ETIMEDOUT;
	}
}

static int send_once(ml_chan *c, unsigned client, int prio, const void *buf, size_t len)
{
	return c->daemon ? ml_chan_reply(c, client, prio, buf, len) :
			   ml_chan_send(c, prio, buf, len);
}

/*
 * A wait for room: again() tries once more (-EAGAIN: no room yet); lane()
 * says which lane of the ring we write lacks it, < 0 when there is none
 * to sleep on (the try then only spins).
 */
struct room_wait {
	int (*again)(void *arg);
	int (*lane)(void *arg);
	void *arg;
};

/*
 * Sleep on our own bell while lane `lane` of the ring we write has no
 * room: its reader rings us once it has freed half the lane
 * (room_given()), as does any message for us. A reader may look at our
 * flags in the moment we set them and miss them, and one of an older
 * version never rings for room: so the sleep lasts `slice` at most, and
 * the caller tries again.
 */
static int room_sleep(ml_chan *c, const struct room_wait *w, unsigned lane, uint64_t deadline,
		      uint64_t slice)
{
	unsigned bell = own_bell(c);
	struct ml__bell *b = bell_of(c, bell);
	uint32_t seq;
	uint64_t now = ml__now_ns();
	int err;

	seq = atomic_load_explicit(&b->seq, memory_order_acquire);
	atomic_store_explicit(&b->sleeping, asleep_word(c, ML__BELL_ROOM(lane)),
			      memory_order_relaxed);
	/* The reader frees room, then looks at our flags: we look after it. */
	atomic_thread_fence(memory_order_seq_cst);
	err = w->again(w->arg);
	if (err == -EAGAIN) {
		beat(c, now);
		err = c->shm.be->wait(&c->shm, bell, &b->seq, seq,
				      (int64_t)(deadline - now < slice ? deadline - now : slice));
		c->stats.sleeps++;
		if (err == -EPIPE && !c->daemon)
			client_lost_daemon(c);
		err = err == -EPIPE ? -EPIPE : -EAGAIN;
	}
	/* An armed handle stays armed, under a number no sender has woken yet. */
	atomic_store_explicit(&b->sleeping, c->armed ? asleep_word(c, 0) : c->bell_idle,
			      memory_order_relaxed);
	if (c->armed)
		atomic_thread_fence(memory_order_seq_cst);
	return err;
}

/* Try until there is room, as ml_chan_send_wait() says; -EAGAIN at the deadline. */
static int wait_room(ml_chan *c, const struct room_wait *w, int64_t timeout_ns)
{
	uint64_t start, deadline, spin_end, slice = ROOM_SLICE_NS;
	bool asked = false, crowd = false;

	start = ml__now_ns();
	deadline = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t)timeout_ns;
	/* As ml_chan_wait() waits for messages: spin first, as the mode says. */
	spin_end = c->mode == ML_WAIT_BLOCKING ? start :
		   c->mode == ML_WAIT_BUSY ? deadline : start + c->spin_ns;
	for (;;) {
		int err = w->again(w->arg), lane;
		uint64_t now;

		if (err != -EAGAIN)
			return err;
		now = ml__now_ns();
		if (now >= deadline)
			return -EAGAIN;
		lane = w->lane(w->arg);
		if (lane < 0) {
			ml__cpu_relax();
			continue;
		}
		if (spin_on(c, start, now, &spin_end, &asked, &crowd))
			continue;
		/*
		 * Too close to the deadline for a sleep on the bell, which some
		 * systems round up to a timer tick (Windows: 1 ms): nap.
		 */
		if (deadline - now < ROOM_SLICE_NS) {
			ml__os_nap(deadline - now < ROOM_NAP_NS ? deadline - now : ROOM_NAP_NS);
			continue;
		}
		err = room_sleep(c, w, (unsigned)lane, deadline, slice);
		if (err != -EAGAIN)
			return err;
		/* Rung or not, room has not come: the reader is slow, look less often. */
		if (slice < ROOM_SLICE_MAX_NS)
			slice *= 2;
	}
}

struct send_try {
	ml_chan *c;
	unsigned client;
	int prio;
	const void *buf;
	size_t len;
};

static int send_again(void *arg)
{
	const struct send_try *t = arg;

	return send_once(t->c, t->client, t->prio, t->buf, t->len);
}

/* The lane a send waits for; -1 while the client's ring is not there. */
static int send_lane(void *arg)
{
	const struct send_try *t = arg;
	ml_ring *r = t->c->req;

	if (t->c->daemon) {
		unsigned slot;

		r = reply_ring(t->c, t->client, &r, &slot) ? NULL : r;
	}
	return r ? (int)ml__ring_lane_of(r, t->prio) : -1;
}

int ml_chan_send_wait(ml_chan *c, unsigned client, int prio, const void *buf, size_t len,
		      int64_t timeout_ns)
{
	struct send_try t = { c, client, prio, buf, len };
	struct room_wait w = { send_again, send_lane, &t };

	if (!c)
		return -EINVAL;
	return wait_room(c, &w, timeout_ns);
}

int ml_chan_signal(ml_chan *c)
{
	if (!c)
		return -EINVAL;
	if (!c->daemon) {
		bell_ring(c, 0);
		return 0;
	}
	for (unsigned i = 0; i < c->max_clients; i++)
		if (c->reqs[i])
			bell_ring(c, 1 + i);
	return 0;
}

int ml_chan_connected(ml_chan *c)
{
	if (!c)
		return 0;
	if (c->daemon) {
		daemon_refresh(c, true);
		/*
		 * Asked outright: look at every header now. A client that left
		 * says so there, and where it cannot tell the daemon otherwise
		 * (linux) nothing else would make us look before the next scan.
		 */
		daemon_scan(c, false);
		return atomic_load_explicit(&c->ctl->clients, memory_order_relaxed) > 0;
	}
	return !daemon_gone(c, true);
}

int ml_chan_clients(ml_chan *c, unsigned *ids, unsigned n)
{
	unsigned count = 0;

	if (!c || !c->daemon || (n && !ids))
		return -EINVAL;
	daemon_refresh(c, true);
	/* As ml_chan_connected(): a client that left says so in its header. */
	daemon_scan(c, false);
	for (unsigned i = 0; i < c->max_clients; i++) {
		unsigned slot;

		/* As reply_ring(): one that said it leaves is not there (a view may hold its slot). */
		if (!c->ids[i] || id_slot(c, c->ids[i], &slot) || !slot_connected(c, i))
			continue;
		if (count < n)
			ids[count] = c->ids[i];
		count++;
	}
	return (int)count;
}

int ml_chan_stats(ml_chan *c, struct ml_chan_stats *st)
{
	size_t n;

	if (!c || !st || st->size < offsetof(struct ml_chan_stats, last_client) + 4)
		return -EINVAL;
	if (c->daemon)
		daemon_refresh(c, true);
	/* As much as the caller's struct holds; zeroes past ours. */
	n = st->size < sizeof(c->stats) ? st->size : sizeof(c->stats);
	memcpy((uint8_t *)st + 8, (uint8_t *)&c->stats + 8, n - 8);
	memset((uint8_t *)st + n, 0, st->size - n);
	st->flags = 0;
	return 0;
}

int ml_chan_beat(ml_chan *c)
{
	uint64_t now;

	if (!c || !c->ctl)
		return -EINVAL;
	now = ml__now_ns();
	c->beat_ns = now;
	atomic_store_explicit(beat_word(c), now, memory_order_relaxed);
	return 0;
}

int ml_chan_peer_alive(ml_chan *c, unsigned client, int64_t within_ns)
{
	_Atomic uint64_t *word;
	uint64_t now, then;

	if (!c || !c->ctl || within_ns < 0)
		return -EINVAL;
	if (c->daemon) {
		unsigned slot;
		uint32_t gen;
		ml_ring *r;
		int err = reply_ring(c, client, &r, &slot);

		if (err)
			return err;
		if (slot_state(c, slot, &gen, false) != ML__SLOT_CONNECTED ||
		    c->shm.be->alive(&c->shm, 1 + slot) != 1)
			return -EPIPE;
		word = &peer_of(c, slot)->beat_ns;
	} else {
		if (daemon_gone(c, true))
			return -EPIPE;
		word = &c->ctl->heartbeat_ns;
	}
	then = atomic_load_explicit(word, memory_order_relaxed);
	now = ml__now_ns();
	/* A beat after our clock read is as alive as can be. */
	return then >= now || now - then <= (uint64_t)within_ns;
}

int ml_chan_pidfile(ml_chan *c, const char *path)
{
	size_t n = path ? strlen(path) : 0;
	char *copy;
	FILE *f;

	if (!c || !c->daemon || !n || c->pidfile)
		return -EINVAL;
	copy = malloc(n + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, path, n + 1);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", ml__os_pid()) < 0 || fclose(f)) {
		int err = errno ? -errno : -EIO;

		if (f)
			remove(path);
		free(copy);
		return err;
	}
	c->pidfile = copy;
	return 0;
}

void ml_chan_close(ml_chan *c)
{
	if (!c)
		return;
	view_done(c);
	if (c->daemon && c->ctl) {
		ml_chan_shutdown(c);
	} else if (c->ctl && c->req) {
		atomic_store_explicit(&peer_of(c, c->slot)->state, ML__SLOT_LEAVING,
				      memory_order_release);
		slots_changed(c);
		c->shm.be->unhold(&c->shm, 1 + c->slot);
		bell_ring(c, 0);
	}
	chan_free(c);
}

/* The fullest lane of a request ring, 0..1. */
static double ring_fill(ml_ring *r)
{
	struct ml_ring_info info;
	double worst = 0;

	if (!r || ml_ring_info(r, &info))
		return 0;
	for (unsigned l = 0; l < info.lanes; l++) {
		double f = info.lane_capacity[l] ? (double)info.lane_used[l] / info.lane_capacity[l] : 0;

		if (f > worst)
			worst = f;
	}
	return worst;
}

double ml_chan_backpressure(ml_chan *c)
{
	uint32_t o;
	double worst = 0;

	if (!c || !c->ctl)
		return 0;
	o = atomic_load_explicit(&c->ctl->bp_override, memory_order_relaxed);
	if (o)
		return ml__bp_level(o);
	if (!c->daemon)
		return ring_fill(c->req);
	for (unsigned i = 0; i < c->max_clients; i++) {
		double f = ring_fill(c->reqs[i]);

		if (f > worst)
			worst = f;
	}
	return worst;
}

int ml_chan_set_backpressure(ml_chan *c, double level)
{
	/* Not "level > 1.0": a NaN must not reach the conversion below. */
	if (!c || !c->daemon || !(level <= 1.0))
		return -EINVAL;
	atomic_store_explicit(&c->ctl->bp_override,
			      level < 0 ? 0 : 1 + (uint32_t)(level * 1e6 + 0.5),
			      memory_order_relaxed);
	return 0;
}

/*
 * The descriptor polls readable after a peer's send only if the peer rings
 * our bell, which it does when it sees us "sleeping": an armed handle keeps
 * that flag up for good. Readiness is cleared before the last look at the
 * rings (chan_idle), so a send after that look makes it readable again.
 */
int ml_chan_fd(ml_chan *c)
{
	int fd;

	if (!c)
		return -EINVAL;
	fd = c->shm.be->fd(&c->shm, own_bell(c));
	if (fd >= 0 && !c->armed) {
		c->armed = true;
		atomic_store_explicit(&bell_of(c, own_bell(c))->sleeping, asleep_word(c, 0),
				      memory_order_seq_cst);
		/* Senders that did not fence see the flag from now on. */
		if (c->bell_idle & ML__BELL_ASYM)
			ml__os_fence_remote();
	}
	return fd;
}

const char *ml_chan_backend(const ml_chan *c)
{
	return c ? c->shm.be->name : NULL;
}

/* ---- what topics take (chan_ext.h) -------------------------------------- */

void *ml__chan_extra(ml_chan *c, size_t *len)
{
	*len = (size_t)c->extra;
	return c->extra ? ml__shm_at(&c->shm, ML__CTL_SIZE, c->extra) : NULL;
}

uint32_t ml__chan_members(ml_chan *c, uint32_t *gen)
{
	daemon_refresh(c, false);
	*gen = c->member_gen;
	return c->attached;
}

void *ml__chan_member_line(ml_chan *c, unsigned i)
{
	return area_at(c, c->daemon ? i : c->slot, ML__PEER_TOPIC_OFF,
		       ML__PEER_SIZE - ML__PEER_TOPIC_OFF);
}

/* As bell_ring() for each, with one fence for all the owners that need one. */
void ml__chan_wake_members(ml_chan *c)
{
	bool fenced = false;

	atomic_signal_fence(memory_order_seq_cst);
	for (uint32_t m = c->attached; m; m &= m - 1) {
		unsigned bell = 1 + (unsigned)__builtin_ctz(m);
		struct ml__bell *b = bell_of(c, bell);
		uint32_t s;

		if (!b)
			continue;
		s = atomic_load_explicit(&b->sleeping, memory_order_relaxed);
		if (!(c->fence_ok && (s & ML__BELL_ASYM))) {
			if (!fenced)
				atomic_thread_fence(memory_order_seq_cst);
			fenced = true;
			s = atomic_load_explicit(&b->sleeping, memory_order_relaxed);
		}
		bell_wake(c, bell, b, s);
	}
}

void ml__chan_wake_daemon(ml_chan *c)
{
	bell_ring(c, 0);
}

void ml__chan_tick(ml_chan *c)
{
	recv_prepare(c, NULL);
}

bool ml__chan_gone(ml_chan *c, bool ask)
{
	return daemon_gone(c, ask);
}

struct lane_try {
	int (*again)(void *arg);
	void *arg;
	int lane;
};

static int lane_again(void *arg)
{
	const struct lane_try *t = arg;

	return t->again(t->arg);
}

static int lane_fixed(void *arg)
{
	return ((const struct lane_try *)arg)->lane;
}

int ml__chan_wait_room(ml_chan *c, unsigned lane, int (*again)(void *arg), void *arg,
		       int64_t timeout_ns)
{
	struct lane_try t = { again, arg, (int)lane };
	struct room_wait w = { lane_again, lane_fixed, &t };
	int err = wait_room(c, &w, timeout_ns);

	return err == -EAGAIN ? -ETIMEDOUT : err;
}

void ml__chan_mirror_member(ml_chan *c, unsigned i, const uint32_t lag[ML_PRIO_COUNT],
			    uint64_t lost)
{
	struct ml__slot *sl = &c->ctl->slot[i];

	for (unsigned l = 0; l < ML_PRIO_COUNT; l++)
		atomic_store_explicit(&sl->resp_used[l], lag ? lag[l] : 0, memory_order_relaxed);
	atomic_store_explicit(&sl->sub_lost, lost, memory_order_relaxed);
}

// SPDX-License-Identifier: MIT
/*
 * Looking at channels from outside (memlink-stat): list them, read one's
 * state without joining it, and remove what dead daemons left behind.
 * Everything here is read from memory other processes write: it is read
 * once, checked, and only ever reported, never acted on.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bcast.h"
#include "chan_layout.h"
#include "internal.h"
#include "ring_layout.h"
#include "topic_layout.h"

static int pick(unsigned backend, const struct ml__backend **be)
{
	if (backend > ML_BACKEND_DARWIN)
		return -EINVAL;
	return ml__backend_pick((enum ml_backend)backend, be);
}

int ml_chan_list(unsigned backend, int (*fn)(const char *name, void *arg), void *arg)
{
	const struct ml__backend *be;
	int err;

	if (!fn)
		return -EINVAL;
	err = pick(backend, &be);
	return err ? err : be->list(fn, arg);
}

struct gc_count {
	const struct ml__backend *be;
	int removed;
};

static int gc_one(const char *name, void *arg)
{
	struct gc_count *g = arg;

	if (g->be->gc(name) > 0)
		g->removed++;
	return 0;
}

int ml_chan_gc(const char *name, unsigned backend)
{
	struct gc_count g = { 0 };
	int err;

	if (name && !ml__name_ok(name))
		return -EINVAL;
	err = pick(backend, &g.be);
	if (err)
		return err;
	if (name) {
		err = g.be->gc(name);
		return err == -EEXIST ? 0 : err;
	}
	err = g.be->list(gc_one, &g);
	return err < 0 ? err : g.removed;
}

/* Nanoseconds since a heartbeat, or -1 for none (or one from the future). */
static int64_t age(uint64_t beat, uint64_t now)
{
	return beat && beat <= now ? (int64_t)(now - beat) : -1;
}

/* One ring's lanes: fill levels, and which lanes' indices are insane. */
static unsigned ring_status(void *mem, size_t len, uint32_t *used, uint32_t *cap)
{
	const struct ml__ring_shm *shm = mem;
	struct ml_ring_info info;
	unsigned bad = 0;
	ml_ring *r;

	if (ml_ring_attach(&r, mem, len))
		return 7;
	ml_ring_info(r, &info);
	for (unsigned l = 0; l < info.lanes; l++) {
		uint64_t h = atomic_load_explicit(&shm->head[l], memory_order_relaxed);
		uint64_t t = atomic_load_explicit(&shm->tail[l], memory_order_relaxed);

		used[l] = info.lane_used[l];
		cap[l] = info.lane_capacity[l];
		if (h - t > info.lane_capacity[l] || (h | t) % ML__REC_ALIGN)
			bad |= 1u << l;
	}
	ml_ring_free(r);
	return bad;
}

/* Each lane's size in a ring of the channel's geometry (a scratch ring says). */
static void lane_caps(const struct ml__geom *g, uint32_t *cap)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3, .max_msg = g->max_msg };
	struct ml_ring_info info = { 0 };
	size_t len = ml_ring_mem_size(g->ring_size);
	void *base = NULL, *mem = ml__aligned_zalloc(len, 4096, &base);
	ml_ring *r;

	if (mem && !ml_ring_init(&r, mem, len, g->ring_size, &o)) {
		ml_ring_info(r, &info);
		ml_ring_free(r);
	}
	free(base);
	memcpy(cap, info.lane_capacity, sizeof(info.lane_capacity));
}

/*
 * Slot i as the daemon's record says, and, where an onlooker maps the
 * clients' areas too (they are not private), as its client's header and
 * rings say.
 */
static void slot_status(struct ml__shm *s, const struct ml__geom *g, unsigned i,
			uint64_t now, const uint32_t *lane_cap, struct ml_chan_client_status *cs)
{
	struct ml__slot *sl = &((struct ml__ctl *)s->base)->slot[i];
	size_t rmem = ml_ring_mem_size(g->ring_size);
	uint64_t off = ML__CTL_SIZE + (uint64_t)i * g->stride, beat;
	bool carved = !s->be->private_areas;
	struct ml__peer *p = carved ? ml__shm_at(s, off, sizeof(*p)) : NULL;
	void *req = carved ? ml__shm_at(s, off + ML__PEER_SIZE, rmem) : NULL;
	void *resp = carved ? ml__shm_at(s, off + ML__PEER_SIZE + rmem, rmem) : NULL;

	cs->state = atomic_load_explicit(&sl->state, memory_order_acquire);
	cs->pid = p ? p->pid : sl->pid;
	/* The daemon mirrors its clients' progress only when it looks. */
	if (p && cs->state != ML__SLOT_FREE) {
		uint32_t st = atomic_load_explicit(&p->state, memory_order_acquire);

		cs->state = st == ML__SLOT_CONNECTED || st == ML__SLOT_LEAVING ? st :
			    ML__SLOT_CLAIMED;
	}
	cs->alive = cs->state == ML__SLOT_FREE ? 0 : s->be->alive(s, 1 + i);
	beat = atomic_load_explicit(p ? &p->beat_ns : &sl->beat_ns, memory_order_relaxed);
	cs->beat_age_ns = age(beat, now);
	cs->corrupt = 0;
	if (req && resp) {
		cs->corrupt = ring_status(req, rmem, cs->req_used, cs->req_cap);
		cs->corrupt |= ring_status(resp, rmem, cs->resp_used, cs->resp_cap) << 3;
	} else if (cs->state == ML__SLOT_CONNECTED) {
		/* As the daemon last saw them, within each lane's size. */
		for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
			uint32_t q = atomic_load_explicit(&sl->req_used[l], memory_order_relaxed);
			uint32_t r = atomic_load_explicit(&sl->resp_used[l], memory_order_relaxed);

			cs->req_cap[l] = cs->resp_cap[l] = lane_cap[l];
			cs->req_used[l] = q < lane_cap[l] ? q : lane_cap[l];
			cs->resp_used[l] = r < lane_cap[l] ? r : lane_cap[l];
		}
	}
}

/*
 * A topic's policy and lane sizes, from its ring's config line, checked
 * as a subscriber checks it (nothing, if it does not check out); and what
 * the publisher mirrored of each subscriber, which replaces the lanes.
 */
static void topic_status(struct ml__shm *s, const struct ml__geom *g, struct ml_chan_status *st)
{
	const struct ml__bcast_shm *b =
		ml__shm_at(s, ML__CTL_SIZE + ML__TOPIC_HDR, sizeof(struct ml__bcast_shm));
	const struct ml__ctl *ctl = (const struct ml__ctl *)s->base;
	uint32_t off[ML_PRIO_COUNT], cap[ML_PRIO_COUNT] = { 0 };
	struct ml__bcast_shm cfg;
	double worst = 0;

	st->kind = ML_CHAN_KIND_TOPIC;
	if (b && g->extra >= ML__TOPIC_HDR + ML__BCAST_HDR_SIZE) {
		memcpy(&cfg, b, sizeof(cfg));
		if (cfg.magic == ML__BCAST_MAGIC && cfg.policy <= ML__BCAST_RELIABLE &&
		    ml__bcast_mem_size(cfg.capacity) &&
		    ML__TOPIC_HDR + ml__bcast_mem_size(cfg.capacity) <= g->extra) {
			st->topic_policy = cfg.policy;
			/* The topic's ring, not its subscribers' unused ones. */
			st->ring_size = cfg.capacity;
			st->max_msg = cfg.max_msg <= 4096 ? cfg.max_msg : 0;
			ml__lane_split(cfg.capacity, off, cap);
		}
	}
	for (unsigned i = 0; i < g->max_clients; i++) {
		struct ml_chan_client_status *cs = &st->client[i];

		memset(cs->req_used, 0, sizeof(cs->req_used));
		memset(cs->req_cap, 0, sizeof(cs->req_cap));
		for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
			uint32_t lag = atomic_load_explicit(&ctl->slot[i].resp_used[l],
							    memory_order_relaxed);

			cs->resp_cap[l] = cap[l];
			cs->resp_used[l] = cs->state == ML__SLOT_CONNECTED && lag < cap[l] ? lag :
					   cs->state == ML__SLOT_CONNECTED ? cap[l] : 0;
			/* Reliable: the slowest subscriber is what holds the publisher. */
			if (st->topic_policy == ML__BCAST_RELIABLE && cap[l] &&
			    (double)cs->resp_used[l] / cap[l] > worst)
				worst = (double)cs->resp_used[l] / cap[l];
		}
		st->sub_lost[i] = cs->state == ML__SLOT_CONNECTED ?
					  atomic_load_explicit(&ctl->slot[i].sub_lost,
							       memory_order_relaxed) :
					  0;
	}
	st->backpressure = worst;
}

/* Who the daemon and the clients are, where the backend knows it. */
static void creds(struct ml__shm *s, const struct ml__geom *g, struct ml_chan_status *st)
{
	uint32_t uid, pid;

	st->daemon_uid = st->daemon_kpid = ML_CHAN_NOBODY;
	if (s->be->cred && !s->be->cred(s, 0, &uid, &pid)) {
		st->daemon_uid = uid;
		st->daemon_kpid = pid;
	} else if (s->be->owner && !s->be->owner(s, &uid)) {
		st->daemon_uid = uid;
	}
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++) {
		st->client_uid[i] = st->client_kpid[i] = ML_CHAN_NOBODY;
		if (i < g->max_clients && s->be->cred && !s->be->cred(s, 1 + i, &uid, &pid)) {
			st->client_uid[i] = uid;
			st->client_kpid[i] = pid;
		}
	}
}

int ml_chan_inspect(const char *name, unsigned backend, struct ml_chan_status *st)
{
	struct ml__shm s = { 0 };
	struct ml__geom g;
	struct ml__ctl *ctl;
	uint32_t o, lane_cap[ML_PRIO_COUNT];
	uint64_t now;
	int err;

	if (!st || st->size < offsetof(struct ml_chan_status, daemon_uid) || !ml__name_ok(name))
		return -EINVAL;
	err = pick(backend, &s.be);
	if (err)
		return err;
	memcpy(s.name, name, strlen(name) + 1);
	s.inspect = true;
	s.fd = -1;
	for (unsigned i = 0; i < ML__BELLS; i++)
		s.bell_h[i] = -1;
	err = s.be->open(&s);
	if (err)
		return err;
	err = ml__ctl_read(&s, &g);
	if (err)
		goto out;
	ctl = (struct ml__ctl *)s.base;
	lane_caps(&g, lane_cap);
	now = ml__now_ns();
	memset((uint8_t *)st + 8, 0, st->size - 8);
	memcpy(st->name, name, strlen(name) + 1);
	memcpy(st->backend, s.be->name, strlen(s.be->name) + 1);
	st->region_size = s.len;
	st->daemon_pid = ctl->daemon_pid;
	st->daemon_alive = s.be->alive(&s, 0);
	st->daemon_state = atomic_load_explicit(&ctl->daemon_state, memory_order_acquire);
	st->max_clients = g.max_clients;
	st->clients = atomic_load_explicit(&ctl->clients, memory_order_relaxed);
	st->ring_size = g.ring_size;
	st->max_msg = g.max_msg;
	st->beat_age_ns = age(atomic_load_explicit(&ctl->heartbeat_ns, memory_order_relaxed), now);
	for (unsigned i = 0; i < g.max_clients; i++) {
		struct ml_chan_client_status *cs = &st->client[i];

		slot_status(&s, &g, i, now, lane_cap, cs);
		/* Backpressure as the daemon sees it: the fullest request lane. */
		for (unsigned l = 0; cs->state == ML__SLOT_CONNECTED && l < ML_PRIO_COUNT; l++)
			if (cs->req_cap[l] && (double)cs->req_used[l] / cs->req_cap[l] >
						      st->backpressure)
				st->backpressure = (double)cs->req_used[l] / cs->req_cap[l];
	}
	o = atomic_load_explicit(&ctl->bp_override, memory_order_relaxed);
	if (o)
		st->backpressure = ml__bp_level(o);
	if (st->size >= offsetof(struct ml_chan_status, kind))
		creds(&s, &g, st);
	if (st->size >= sizeof(*st) && g.topic)
		topic_status(&s, &g, st);
out:
	s.be->close(&s);
	return err;
}

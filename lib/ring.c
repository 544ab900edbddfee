// SPDX-License-Identifier: MIT
/*
 * Lock-free SPSC ring with one or three priority lanes. See ring_layout.h for
 * the shared layout and include/memlink.h for the contract.
 *
 * Each side keeps its own index and a cached copy of the other side's index
 * in its private handle, and touches the shared index lines only to publish
 * its own progress or when the cached view says "full" (producer) or "empty"
 * (consumer). Geometry is read from shared memory once, at init or attach,
 * and never again.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ring_layout.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
	       "ring indices need lock-free 64-bit atomics to work across processes");

struct ml__prod {
	uint64_t head[ML_PRIO_COUNT];       /* authoritative, published to shm */
	uint64_t tail_cache[ML_PRIO_COUNT]; /* last validated consumer tail */
	uint32_t woff[ML_PRIO_COUNT];       /* head modulo lane capacity */
	int res_lane;                       /* -1: no reservation outstanding */
	int res_prio;
	uint32_t res_at;                    /* offset of the reserved record */
	uint32_t res_len;
	uint32_t res_skip;                  /* pad bytes before the record */
	bool hold;                          /* ml__ring_hold_head(): store later */
	uint8_t held;                       /* lanes whose head store is held */
	uint64_t stored[ML_PRIO_COUNT];     /* the head as last stored */
};

/* The next record of a lane, as decoded and checked by cons_next(). */
struct ml__next {
	unsigned lane;
	int prio;
	uint32_t off;      /* payload offset in the lane */
	uint32_t len;
	uint32_t adv;      /* bytes consuming it frees, pad included */
	unsigned waiting;  /* lanes with data that this read passes over */
};

struct ml__cons {
	uint64_t tail[ML_PRIO_COUNT];       /* authoritative, published to shm */
	uint64_t stored[ML_PRIO_COUNT];     /* the tail as last stored to shm */
	uint64_t head_cache[ML_PRIO_COUNT]; /* where known committed records end */
	uint64_t head_seen[ML_PRIO_COUNT];  /* the head as last read */
	uint32_t roff[ML_PRIO_COUNT];       /* tail modulo lane capacity */
	uint32_t skipped[ML_PRIO_COUNT];    /* starvation guard counters */
	uint32_t unlooked;                  /* reads since urgent lanes were looked at */
	bool peeked;                        /* peek holds an unreleased record */
	bool hold;                          /* ml__ring_hold_tail(): store later */
	bool lazy;                          /* ml__ring_lazy_tail(): store in steps */
	uint8_t held;                       /* lanes whose tail store is held */
	uint8_t idle;                       /* lanes found empty at the last look */
	struct ml__next peek;               /* valid while peeked */
};

struct ml_ring {
	/* Immutable after init/attach: read by both sides. */
	struct ml__ring_shm *shm;
	uint8_t *lane_base[ML_PRIO_COUNT];
	uint32_t lane_cap[ML_PRIO_COUNT];
	uint32_t lanes;
	uint32_t max_msg;
	uint32_t capacity;
	uint32_t starve_limit;
	uint32_t urgent_every;
	void *alloc_base;  /* what to free() for the handle */
	void *mem_base;    /* heap ring data, or NULL for caller memory */
	_Atomic unsigned poisoned; /* either side may set a bit */

	/* Private to the producer and the consumer, each on its own lines. */
	alignas(ML__LINE) struct ml__prod p;
	alignas(ML__LINE) struct ml__cons c;
};

/* How far ahead of its read position a reader fetches published bytes. */
#define ML__PREFETCH 320u

static inline uint32_t rec_size(uint32_t len)
{
	return (uint32_t)sizeof(struct ml__rec) + ((len + ML__REC_ALIGN - 1) & ~(ML__REC_ALIGN - 1));
}

static bool is_pow2(size_t v)
{
	return v && !(v & (v - 1));
}

/* The split is a pure function of capacity, so attach can re-derive it. */
static void lane_geometry(uint32_t capacity, uint32_t lanes,
			  uint32_t off[ML_PRIO_COUNT], uint32_t cap[ML_PRIO_COUNT])
{
	memset(off, 0, sizeof(uint32_t) * ML_PRIO_COUNT);
	memset(cap, 0, sizeof(uint32_t) * ML_PRIO_COUNT);
	if (lanes == 1) {
		cap[0] = capacity;
		return;
	}
	ml__lane_split(capacity, off, cap);
}

void ml__lane_split(uint32_t capacity, uint32_t off[ML_PRIO_COUNT], uint32_t cap[ML_PRIO_COUNT])
{
	cap[ML_PRIO_CRITICAL] = (uint32_t)((uint64_t)capacity * 20 / 100) & ~(ML__REC_ALIGN - 1);
	cap[ML_PRIO_HIGH] = (uint32_t)((uint64_t)capacity * 50 / 100) & ~(ML__REC_ALIGN - 1);
	cap[ML_PRIO_LOW] = capacity - cap[ML_PRIO_CRITICAL] - cap[ML_PRIO_HIGH];
	off[ML_PRIO_CRITICAL] = 0;
	off[ML_PRIO_HIGH] = cap[ML_PRIO_CRITICAL];
	off[ML_PRIO_LOW] = cap[ML_PRIO_CRITICAL] + cap[ML_PRIO_HIGH];
}

static uint32_t smallest_lane(const uint32_t cap[ML_PRIO_COUNT], uint32_t lanes)
{
	uint32_t m = cap[0];

	for (uint32_t i = 1; i < lanes; i++)
		if (cap[i] < m)
			m = cap[i];
	return m;
}

/*
 * Any record (header + padded payload) must fit in half a lane, so that an
 * empty lane always has room for it whatever its write offset: a quarter of
 * the smallest lane for the payload guarantees that.
 */
static uint32_t max_msg_limit(const uint32_t cap[ML_PRIO_COUNT], uint32_t lanes)
{
	return smallest_lane(cap, lanes) / 4;
}

size_t ml_ring_mem_size(size_t capacity)
{
	if (!is_pow2(capacity) || capacity < ML_RING_MIN_CAPACITY ||
	    capacity > ML_RING_MAX_CAPACITY)
		return 0;
	return ML__RING_HDR_SIZE + capacity;
}

static int resolve_opts(const struct ml_ring_opts *in, struct ml_ring_opts *out)
{
	int err = ml__copy_opts(out, sizeof(*out), in, in ? in->size : 0,
				offsetof(struct ml_ring_opts, urgent_every) + sizeof(uint32_t));
	if (err)
		return err;
	if (out->flags & ~ML_RING_LANES3)
		return -EINVAL;
	return 0;
}

static void set_geometry(ml_ring *r, struct ml__ring_shm *shm, uint32_t lanes,
			 uint32_t capacity, uint32_t max_msg, uint32_t starve_limit,
			 uint32_t urgent_every)
{
	uint32_t off[ML_PRIO_COUNT], cap[ML_PRIO_COUNT];
	uint8_t *data = (uint8_t *)shm + ML__RING_HDR_SIZE;

	lane_geometry(capacity, lanes, off, cap);
	r->shm = shm;
	r->lanes = lanes;
	r->capacity = capacity;
	r->max_msg = max_msg;
	r->starve_limit = starve_limit;
	r->urgent_every = urgent_every;
	for (uint32_t i = 0; i < ML_PRIO_COUNT; i++) {
		r->lane_cap[i] = cap[i];
		r->lane_base[i] = i < lanes ? data + off[i] : NULL;
	}
	r->p.res_lane = -1;
}

static ml_ring *handle_alloc(void)
{
	void *base;
	ml_ring *r = ml__aligned_zalloc(sizeof(*r), alignof(ml_ring), &base);

	if (r)
		r->alloc_base = base;
	return r;
}

int ml_ring_init(ml_ring **out, void *mem, size_t len, size_t capacity,
		 const struct ml_ring_opts *opts)
{
	struct ml_ring_opts o;
	uint32_t off[ML_PRIO_COUNT], cap[ML_PRIO_COUNT], lanes, limit, max_msg;
	struct ml__ring_shm *shm = mem;
	size_t need = ml_ring_mem_size(capacity);
	ml_ring *r;
	int err;

	if (!out || !mem || !need || len < need || ((uintptr_t)mem % ML__LINE))
		return -EINVAL;
	err = resolve_opts(opts, &o);
	if (err)
		return err;
	lanes = (o.flags & ML_RING_LANES3) ? 3 : 1;
	lane_geometry((uint32_t)capacity, lanes, off, cap);
	limit = max_msg_limit(cap, lanes);
	max_msg = o.max_msg ? o.max_msg : (limit < ML_RING_DEFAULT_MAX_MSG ? limit : ML_RING_DEFAULT_MAX_MSG);
	if (max_msg > limit)
		return -EINVAL;

	r = handle_alloc();
	if (!r)
		return -ENOMEM;

	memset(shm, 0, ML__RING_HDR_SIZE);
	shm->version = ML__RING_VERSION;
	shm->lanes = lanes;
	shm->capacity = (uint32_t)capacity;
	shm->max_msg = max_msg;
	shm->starve_limit = o.starve_limit;
	shm->urgent_every = o.urgent_every;
	memcpy(shm->lane_off, off, sizeof(off));
	memcpy(shm->lane_cap, cap, sizeof(cap));
	/*
	 * The memory may have held a ring before: the first header of each
	 * lane must not be mistaken for a record (the producer's rule).
	 */
	for (uint32_t i = 0; i < lanes; i++)
		memcpy((uint8_t *)mem + ML__RING_HDR_SIZE + off[i], &(uint64_t){ ML__REC_NONE(0) },
		       sizeof(uint64_t));
	/* The magic goes last: an attacher that sees it sees the rest. */
	atomic_thread_fence(memory_order_release);
	*(volatile uint32_t *)&shm->magic = ML__RING_MAGIC;

	set_geometry(r, shm, lanes, (uint32_t)capacity, max_msg, o.starve_limit,
		     o.urgent_every);
	*out = r;
	return 0;
}

int ml_ring_new(ml_ring **out, size_t capacity, const struct ml_ring_opts *opts)
{
	size_t need = ml_ring_mem_size(capacity);
	void *base, *mem;
	int err;

	if (!out || !need)
		return -EINVAL;
	mem = ml__aligned_zalloc(need, ML__LINE, &base);
	if (!mem)
		return -ENOMEM;
	err = ml_ring_init(out, mem, need, capacity, opts);
	if (err) {
		free(base);
		return err;
	}
	(*out)->mem_base = base;
	return 0;
}

int ml_ring_attach(ml_ring **out, void *mem, size_t len)
{
	struct ml__ring_shm *shm = mem;
	struct ml__ring_shm cfg;
	uint32_t off[ML_PRIO_COUNT], cap[ML_PRIO_COUNT];
	ml_ring *r;

	if (!out || !mem || len < ML__RING_HDR_SIZE || ((uintptr_t)mem % ML__LINE))
		return -EINVAL;
	if (*(volatile uint32_t *)&shm->magic != ML__RING_MAGIC)
		return -EPROTO;
	atomic_thread_fence(memory_order_acquire);
	/* One snapshot of the config line; everything below checks the copy. */
	memcpy(&cfg, shm, offsetof(struct ml__ring_shm, pad0));
	if (cfg.version != ML__RING_VERSION || (cfg.lanes != 1 && cfg.lanes != 3) ||
	    !ml_ring_mem_size(cfg.capacity) || ml_ring_mem_size(cfg.capacity) > len)
		return -EPROTO;
	lane_geometry(cfg.capacity, cfg.lanes, off, cap);
	if (memcmp(off, cfg.lane_off, sizeof(off)) || memcmp(cap, cfg.lane_cap, sizeof(cap)) ||
	    cfg.max_msg == 0 || cfg.max_msg > max_msg_limit(cap, cfg.lanes))
		return -EPROTO;

	r = handle_alloc();
	if (!r)
		return -ENOMEM;
	set_geometry(r, shm, cfg.lanes, cfg.capacity, cfg.max_msg, cfg.starve_limit,
		     cfg.urgent_every);
	for (uint32_t i = 0; i < cfg.lanes; i++) {
		uint64_t h = atomic_load_explicit(&shm->head[i], memory_order_acquire);
		uint64_t t = atomic_load_explicit(&shm->tail[i], memory_order_acquire);

		/* A head behind the tail lags the headers its reader went by. */
		bool lags = t - h <= cap[i];

		r->c.head_seen[i] = lags ? h : t;
		if (lags)
			h = t;
		if (h - t > cap[i] || (h | t) % ML__REC_ALIGN) {
			free(r->alloc_base);
			return -EBADMSG;
		}
		r->p.head[i] = h;
		r->p.stored[i] = h;
		r->p.tail_cache[i] = t;
		r->p.woff[i] = (uint32_t)(h % cap[i]);
		r->c.tail[i] = t;
		r->c.stored[i] = t;
		r->c.head_cache[i] = t;
		r->c.roff[i] = (uint32_t)(t % cap[i]);
	}
	*out = r;
	return 0;
}

void ml_ring_free(ml_ring *r)
{
	if (!r)
		return;
	free(r->mem_base);
	free(r->alloc_base);
}

static int poison(ml_ring *r, unsigned lane)
{
	atomic_fetch_or_explicit(&r->poisoned, 1u << lane, memory_order_relaxed);
	return -EBADMSG;
}

static inline bool lane_poisoned(const ml_ring *r, unsigned lane)
{
	return atomic_load_explicit(&r->poisoned, memory_order_relaxed) & (1u << lane);
}

unsigned ml_ring_poisoned(const ml_ring *r)
{
	return r ? atomic_load_explicit(&r->poisoned, memory_order_relaxed) : 0;
}

/* ---- record headers ---------------------------------------------------- */

/*
 * Headers are written and read as one 64-bit word: the reader looks at
 * headers the producer is writing, and must never see half of one. A
 * release store commits a record; the acquire load that sees it sees the
 * payload too.
 */
static inline void hdr_put(uint8_t *at, uint64_t w, int order)
{
	__atomic_store_n((uint64_t *)(void *)at, w, order);
}

static inline void hdr_store(uint8_t *at, uint32_t len, uint32_t tag, int order)
{
	hdr_put(at, (uint64_t)tag << 32 | len, order);
}

static inline struct ml__rec hdr_get(const uint8_t *at, int order)
{
	uint64_t w = __atomic_load_n((const uint64_t *)(const void *)at, order);

	return (struct ml__rec){ .len = (uint32_t)w, .tag = (uint32_t)(w >> 32) };
}

static inline struct ml__rec hdr_load(const uint8_t *at)
{
	return hdr_get(at, __ATOMIC_RELAXED);
}

/*
 * The bytes that the header at position `pos` (offset `off`) of a lane
 * commits: its record's, or a pad's and the record after it. 0 when it
 * commits none, or says something no producer writes (which the caller's
 * checks against the head then report).
 */
static inline uint32_t hdr_commits(const ml_ring *r, unsigned lane, uint64_t pos, uint32_t off)
{
	const uint8_t *base = r->lane_base[lane];
	uint32_t skip = 0;
	struct ml__rec h = hdr_get(base + off, __ATOMIC_ACQUIRE);

	if (!ML__REC_TAG_POS_OK(h.tag, pos))
		return 0;
	if (ML__REC_TAG_TYPE(h.tag) == ML__REC_PAD) {
		skip = r->lane_cap[lane] - off;
		h = hdr_load(base);
		if (!ML__REC_TAG_POS_OK(h.tag, pos + skip) || ML__REC_TAG_TYPE(h.tag) != ML__REC_DATA)
			return 0;
	}
	return h.len > r->max_msg ? 0 : skip + rec_size(h.len);
}

/*
 * Records past the stored head are committed by their headers: a producer
 * found gone left one uncommitted only if no chain of headers leads from
 * its head to its claim.
 */
static bool committed_to(const ml_ring *r, unsigned lane, uint64_t from, uint64_t to)
{
	uint32_t cap = r->lane_cap[lane];

	if (to - from > cap || (from | to) % ML__REC_ALIGN)
		return false;
	while (from != to) {
		uint32_t step = hdr_commits(r, lane, from, (uint32_t)(from % cap));

		if (!step || step > to - from)
			return false;
		from += step;
	}
	return true;
}

unsigned ml__ring_claims(const ml_ring *r)
{
	unsigned mask = 0;

	for (unsigned l = 0; r && l < r->lanes; l++) {
		uint64_t claim = atomic_load_explicit(&r->shm->claim[l], memory_order_relaxed);
		uint64_t head = atomic_load_explicit(&r->shm->head[l], memory_order_acquire);

		if (claim != head && !committed_to(r, l, head, claim))
			mask |= 1u << l;
	}
	return mask;
}

/* ---- producer ---------------------------------------------------------- */

/*
 * Make room for `need` bytes in `lane`, re-reading the consumer's tail only
 * when the cached one says the lane is too full.
 */
static inline int prod_room(ml_ring *r, unsigned lane, uint32_t need)
{
	struct ml__prod *p = &r->p;
	uint32_t cap = r->lane_cap[lane];
	uint64_t t;

	if (p->head[lane] - p->tail_cache[lane] + need <= cap)
		return 0;
	t = atomic_load_explicit(&r->shm->tail[lane], memory_order_acquire);
	/* The tail may only move forward, never past our head. */
	if (t - p->tail_cache[lane] > p->head[lane] - p->tail_cache[lane] ||
	    t % ML__REC_ALIGN)
		return poison(r, lane);
	p->tail_cache[lane] = t;
	if (p->head[lane] - t + need > cap)
		return -EAGAIN;
	return 0;
}

static inline int prod_check(ml_ring *r, int prio, size_t len, unsigned *lane)
{
	if (!r || prio < ML_PRIO_CRITICAL || prio > ML_PRIO_LOW)
		return -EINVAL;
	if (len > r->max_msg)
		return -EMSGSIZE;
	*lane = r->lanes == 1 ? 0 : (unsigned)prio;
	if (lane_poisoned(r, *lane))
		return -EBADMSG;
	return 0;
}

/*
 * Claim space for a record of `len` payload bytes: *at is where its header
 * goes, *skip the pad bytes in front of it (0 when it fits before the end).
 */
static inline int prod_claim(ml_ring *r, unsigned lane, uint32_t len,
			     uint32_t *at, uint32_t *skip)
{
	uint32_t rec = rec_size(len);
	uint32_t woff = r->p.woff[lane];
	uint32_t room = r->lane_cap[lane] - woff;

	*skip = rec <= room ? 0 : room;
	*at = rec <= room ? woff : 0;
	return prod_room(r, lane, *skip + rec);
}

static inline void prod_store_head(ml_ring *r, unsigned lane)
{
	r->p.stored[lane] = r->p.head[lane];
	atomic_store_explicit(&r->shm->head[lane], r->p.head[lane], memory_order_release);
}

/*
 * Commit the record with its header (a pad's, if any, goes last: it is the
 * one the reader looks at), then store the head, or hold it.
 */
static inline void prod_publish(ml_ring *r, unsigned lane, int prio,
				uint32_t at, uint32_t skip, uint32_t len)
{
	struct ml__prod *p = &r->p;
	uint8_t *base = r->lane_base[lane];
	uint32_t cap = r->lane_cap[lane];
	uint64_t pos = p->head[lane];
	uint64_t next = pos + skip + rec_size(len);
	uint32_t end = at + rec_size(len);

	if (end == cap)
		end = 0;
	/* The producer's rule (ring_layout.h): no stale header where the next one goes. */
	if (next + sizeof(struct ml__rec) <= p->tail_cache[lane] + cap)
		hdr_put(base + end, ML__REC_NONE(next), __ATOMIC_RELAXED);
	hdr_store(base + at, len, ML__REC_TAG(pos + skip, ML__REC_DATA, prio),
		  skip ? __ATOMIC_RELAXED : __ATOMIC_RELEASE);
	if (skip)
		hdr_store(base + p->woff[lane], skip - (uint32_t)sizeof(struct ml__rec),
			  ML__REC_TAG(pos, ML__REC_PAD, 0), __ATOMIC_RELEASE);
	p->head[lane] = next;
	p->woff[lane] = end;
	/*
	 * A held head is stored anyway once it is half a lane ahead, so that
	 * a reader's tail, which follows the headers, is never a lane past it.
	 */
	if (p->hold && next - p->stored[lane] < cap / 2)
		p->held |= (uint8_t)(1u << lane);
	else
		prod_store_head(r, lane);
}

void ml__ring_hold_head(ml_ring *r, bool hold)
{
	r->p.hold = hold;
	if (hold)
		return;
	for (unsigned l = 0; r->p.held; l++, r->p.held >>= 1)
		if (r->p.held & 1u)
			prod_store_head(r, l);
}

/*
 * The start of a write or a reserve: drop any uncommitted reservation, check
 * the arguments (`args_ok` is the caller's own pointer check), claim space.
 */
static inline int prod_begin(ml_ring *r, int prio, size_t len, bool args_ok,
			     unsigned *lane, uint32_t *at, uint32_t *skip)
{
	int err;

	if (r)
		r->p.res_lane = -1;
	err = prod_check(r, prio, len, lane);
	if (err)
		return err;
	if (!args_ok)
		return -EINVAL;
	err = prod_claim(r, *lane, (uint32_t)len, at, skip);
	/* Where this record ends: the head it is published with. */
	if (!err)
		atomic_store_explicit(&r->shm->claim[*lane],
				      r->p.head[*lane] + *skip + rec_size((uint32_t)len),
				      memory_order_relaxed);
	return err;
}

/* One whole write: claim, copy, publish (or hold, under a held head). */
static inline int prod_write(ml_ring *r, int prio, const void *buf, size_t len)
{
	uint32_t at, skip;
	unsigned lane;
	int err = prod_begin(r, prio, len, buf || !len, &lane, &at, &skip);

	if (err)
		return err;
	if (len)
		memcpy(r->lane_base[lane] + at + sizeof(struct ml__rec), buf, len);
	prod_publish(r, lane, prio, at, skip, (uint32_t)len);
	return 0;
}

int ml_ring_write(ml_ring *r, int prio, const void *buf, size_t len)
{
	return prod_write(r, prio, buf, len);
}

/*
 * Up to n writes in a row, without a call each: msgs in order, as n
 * ml_ring_write()s would write them. How many; *err is why the next one
 * was not written (0: all were).
 */
unsigned ml__ring_write_run(ml_ring *r, const struct ml_msg *m, unsigned n, int *err)
{
	unsigned i;

	*err = 0;
	for (i = 0; i < n; i++) {
		*err = prod_write(r, m[i].prio, m[i].data, m[i].len);
		if (*err)
			break;
	}
	return i;
}

int ml_ring_reserve(ml_ring *r, int prio, size_t len, void **ptr)
{
	uint32_t at, skip;
	unsigned lane;
	int err = prod_begin(r, prio, len, ptr != NULL, &lane, &at, &skip);

	if (err)
		return err;
	r->p.res_lane = (int)lane;
	r->p.res_prio = prio;
	r->p.res_at = at;
	r->p.res_len = (uint32_t)len;
	r->p.res_skip = skip;
	*ptr = r->lane_base[lane] + at + sizeof(struct ml__rec);
	return 0;
}

int ml_ring_commit(ml_ring *r, size_t len)
{
	struct ml__prod *p;

	if (!r)
		return -EINVAL;
	p = &r->p;
	if (p->res_lane < 0 || len > p->res_len)
		return -EINVAL;
	prod_publish(r, (unsigned)p->res_lane, p->res_prio, p->res_at, p->res_skip,
		     (uint32_t)len);
	/* Shorter than reserved: the claim (prod_begin) ends where the head does. */
	if (len < p->res_len)
		atomic_store_explicit(&r->shm->claim[p->res_lane], p->head[p->res_lane],
				      memory_order_relaxed);
	p->res_lane = -1;
	return 0;
}

/* ---- consumer ---------------------------------------------------------- */

/*
 * Is a record committed at the lane's read position, going by its header?
 * That word is written only when the producer puts a record there, so
 * looking at it costs no cache-line transfer while nothing arrives, unlike
 * the head line, which the producer writes for every lane.
 */
static inline bool cons_hint(const ml_ring *r, unsigned lane)
{
	struct ml__rec h = hdr_load(r->lane_base[lane] + r->c.roff[lane]);

	return ML__REC_TAG_POS_OK(h.tag, r->c.tail[lane]);
}

/*
 * Bytes readable in `lane`: cached, else what the head says (a stream, read
 * in runs). A reader with no record in view (`alone`) is waiting: it takes
 * a record by its header (whose line it reads anyway) if the lane was
 * empty at its last look, or if the head lags. Others keep to the head:
 * the reader of a three-lane ring with records in view in another lane
 * (`alone` false) looks at this one by its next header, and reads the head
 * only if that shows a record, so that each lane is read in runs. Headers
 * are checked again when decoded, and a corrupt one that says "nothing" is
 * found once the head is read.
 */
static inline int64_t cons_avail(ml_ring *r, unsigned lane, bool alone)
{
	struct ml__cons *c = &r->c;
	uint32_t off = c->roff[lane], cap = r->lane_cap[lane], seen;
	uint8_t bit = (uint8_t)(1u << lane);
	uint64_t h, fwd, behind;

	if (lane_poisoned(r, lane))
		return 0;
	if (c->head_cache[lane] != c->tail[lane])
		return (int64_t)(c->head_cache[lane] - c->tail[lane]);
	/* The record's second line, asked for while waiting: it comes with
	 * the header, not after it.
	 */
	if (alone && off + 64 < cap)
		__builtin_prefetch(r->lane_base[lane] + off + 64);
	seen = hdr_commits(r, lane, c->tail[lane], off);
	if (seen && alone && (c->idle & bit))
		goto by_header;
	if (!seen && !alone) {
		c->idle |= bit;
		return 0;
	}
	h = atomic_load_explicit(&r->shm->head[lane], memory_order_acquire);
	/*
	 * The head only moves forward, and never more than a lane past the
	 * tail. It may be behind the tail: it lags the headers the reader
	 * went by.
	 */
	fwd = h - c->head_seen[lane];
	behind = c->tail[lane] - c->head_seen[lane];
	if (fwd > behind + cap || h % ML__REC_ALIGN)
		return poison(r, lane);
	c->head_seen[lane] = h;
	if (fwd > behind) {
		c->idle &= (uint8_t)~bit;
		c->head_cache[lane] = h;
		return (int64_t)(h - c->tail[lane]);
	}
	if (!seen || !alone) {
		c->idle |= bit;
		return 0;
	}
by_header:
	c->idle &= (uint8_t)~bit;
	c->head_cache[lane] = c->tail[lane] + seen;
	return seen;
}

/*
 * Decode the record at the read position of a lane that has `avail` > 0
 * bytes, checking every field against the lane's bounds.
 */
static inline int cons_decode(ml_ring *r, unsigned lane, uint64_t avail, struct ml__next *n)
{
	struct ml__cons *c = &r->c;
	uint32_t cap = r->lane_cap[lane];
	uint32_t off = c->roff[lane];
	uint64_t pos = c->tail[lane];
	uint32_t skip = 0, rec, prio;
	struct ml__rec h;

	/* The record's next line, fetched beside its header, not after it. */
	if (avail > 64 && off + 64 < cap)
		__builtin_prefetch(r->lane_base[lane] + off + 64);
	h = hdr_load(r->lane_base[lane] + off);
	/*
	 * Where the next header is depends on this one: fetch the published
	 * bytes a few lines ahead now, so the writer's cache is missed in
	 * parallel, not once a record in turn.
	 */
	if (avail > ML__PREFETCH && off + ML__PREFETCH < cap)
		__builtin_prefetch(r->lane_base[lane] + off + ML__PREFETCH);
	if (!ML__REC_TAG_POS_OK(h.tag, pos))
		return poison(r, lane);
	if (ML__REC_TAG_TYPE(h.tag) == ML__REC_PAD) {
		/* A pad runs exactly to the end and is published with the
		 * record that follows it at offset 0.
		 */
		skip = cap - off;
		if (h.len != skip - sizeof(h) || skip >= avail)
			return poison(r, lane);
		off = 0;
		pos += skip;
		h = hdr_load(r->lane_base[lane]);
		if (!ML__REC_TAG_POS_OK(h.tag, pos) || ML__REC_TAG_TYPE(h.tag) != ML__REC_DATA)
			return poison(r, lane);
	}
	prio = ML__REC_TAG_PRIO(h.tag);
	if (h.len > r->max_msg || prio > ML_PRIO_LOW || (r->lanes == 3 && prio != lane))
		return poison(r, lane);
	rec = rec_size(h.len);
	if (rec > cap - off || skip + rec > avail)
		return poison(r, lane);
	n->lane = lane;
	n->prio = (int)prio;
	n->off = off + (uint32_t)sizeof(h);
	n->len = h.len;
	n->adv = skip + rec;
	return 0;
}

/*
 * Find and decode the next record: the most urgent lane with data, unless
 * the starvation guard says a less urgent one has waited long enough.
 */
static inline int cons_next(ml_ring *r, struct ml__next *n)
{
	struct ml__cons *c = &r->c;
	int64_t a[ML_PRIO_COUNT];
	unsigned cached = 0, first = 0, look_to = 0;
	int pick = -1;

	n->waiting = 0;
	if (r->lanes == 1) {
		a[0] = cons_avail(r, 0, true);
		if (a[0] > 0)
			return cons_decode(r, 0, (uint64_t)a[0], n);
		if (a[0] < 0)
			return (int)a[0];
		return ml_ring_poisoned(r) ? -EBADMSG : -EAGAIN;
	}
	/* Lanes with records already known to the reader, as a bit mask. */
	for (unsigned i = 0; i < ML_PRIO_COUNT; i++)
		if (c->head_cache[i] != c->tail[i])
			cached |= 1u << i;
	cached &= ~ml_ring_poisoned(r);
	/*
	 * urgent_every: while a less urgent lane has records in view, look at
	 * the lanes above it only every Nth read. They then fill up between
	 * looks and are read in runs, instead of each urgent record being
	 * fetched from the writer's cache the moment it lands.
	 */
	if (r->urgent_every > 1 && (cached & ~1u)) {
		unsigned k = (unsigned)__builtin_ctz(cached);

		if (k && ++c->unlooked < r->urgent_every) {
			first = k;
		} else {
			/* A look brings every lane above k into view. */
			c->unlooked = 0;
			look_to = k;
		}
	}
	for (unsigned i = first; i < ML_PRIO_COUNT; i++) {
		a[i] = cons_avail(r, i, !cached);
		if (a[i] < 0)
			return (int)a[i];
		if (a[i] > 0 && pick < 0)
			pick = (int)i;
		if (a[i] == 0)
			c->skipped[i] = 0;
		if (pick >= 0 && !r->starve_limit && i + 1 >= look_to)
			break;
	}
	if (pick < 0)
		return ml_ring_poisoned(r) ? -EBADMSG : -EAGAIN;
	if (r->starve_limit) {
		/* Serve the least urgent lane that has waited too long, so the
		 * read does not pass over any other starved lane.
		 */
		for (int i = ML_PRIO_COUNT - 1; i > pick; i--) {
			if (a[i] > 0 && c->skipped[i] >= r->starve_limit) {
				pick = i;
				break;
			}
		}
		for (int i = pick + 1; i < ML_PRIO_COUNT; i++)
			if (a[i] > 0)
				n->waiting |= 1u << i;
	}
	return cons_decode(r, (unsigned)pick, (uint64_t)a[pick], n);
}

static inline void cons_store(ml_ring *r, unsigned lane)
{
	r->c.stored[lane] = r->c.tail[lane];
	atomic_store_explicit(&r->shm->tail[lane], r->c.tail[lane], memory_order_release);
}

/* Store the tails of the lanes whose store waits, unless a hold is on. */
static void cons_flush(ml_ring *r)
{
	struct ml__cons *c = &r->c;

	if (c->hold)
		return;
	for (unsigned l = 0; c->held; l++, c->held >>= 1)
		if (c->held & 1u)
			cons_store(r, l);
}

/*
 * Consume the record: free its bytes for the producer. A lazy tail is
 * stored once an eighth of the lane has been read since the last store:
 * a producer polling a full lane then pulls the tail's line once in many
 * records, not once a record.
 */
static inline void cons_advance(ml_ring *r, const struct ml__next *n)
{
	struct ml__cons *c = &r->c;
	uint32_t end = n->off - (uint32_t)sizeof(struct ml__rec) + rec_size(n->len);

	if (r->starve_limit) {
		for (unsigned i = n->lane + 1; i < r->lanes; i++)
			if (n->waiting & (1u << i))
				c->skipped[i]++;
		c->skipped[n->lane] = 0;
	}
	c->tail[n->lane] += n->adv;
	c->roff[n->lane] = end == r->lane_cap[n->lane] ? 0 : end;
	if (c->hold ||
	    (c->lazy && c->tail[n->lane] - c->stored[n->lane] < r->lane_cap[n->lane] / 8))
		c->held |= (uint8_t)(1u << n->lane);
	else
		cons_store(r, n->lane); /* a held bit of the lane stores the same again */
}

void ml__ring_hold_tail(ml_ring *r, bool hold)
{
	r->c.hold = hold;
	cons_flush(r);
}

void ml__ring_lazy_tail(ml_ring *r, bool lazy)
{
	r->c.lazy = lazy;
	cons_flush(r);
}

int ml_ring_read(ml_ring *r, int *prio, void *buf, size_t buflen)
{
	struct ml__next n;
	int err;

	if (!r || (buflen && !buf))
		return -EINVAL;
	if (r->c.peeked)
		return -EBUSY;
	err = cons_next(r, &n);
	if (err) {
		cons_flush(r);
		return err;
	}
	if (n.len > buflen)
		return -EMSGSIZE; /* nothing consumed: the record stays */
	if (n.len)
		memcpy(buf, r->lane_base[n.lane] + n.off, n.len);
	if (prio)
		*prio = n.prio;
	cons_advance(r, &n);
	return (int)n.len;
}

/*
 * The next read of a run, when it is simply the next record of the lane
 * the last one came from: that lane still has records in view, and no
 * more urgent lane shows one (by its next header: no shared line is read
 * while none arrives). Else -EAGAIN, and cons_next() decides.
 */
static inline int cons_again(ml_ring *r, struct ml__next *n)
{
	struct ml__cons *c = &r->c;
	unsigned lane = n->lane;
	uint64_t avail;

	if (lane >= r->lanes)
		return -EAGAIN;
	avail = c->head_cache[lane] - c->tail[lane];
	if (r->starve_limit || r->urgent_every > 1 || !avail || lane_poisoned(r, lane))
		return -EAGAIN;
	for (unsigned i = 0; i < lane; i++)
		if (c->head_cache[i] != c->tail[i] || cons_hint(r, i))
			return -EAGAIN;
	n->waiting = 0;
	return cons_decode(r, lane, avail, n);
}

void ml__ring_peek_fresh(ml_ring *r)
{
	struct ml__cons *c = &r->c;

	if (!c->peeked || r->starve_limit || r->urgent_every > 1)
		return;
	/* As cons_again() looks: no shared line is read while none arrives. */
	for (unsigned i = 0; i < c->peek.lane && i < r->lanes; i++)
		if (c->head_cache[i] != c->tail[i] || cons_hint(r, i)) {
			c->peeked = false;
			return;
		}
}

/*
 * Up to n more reads in a row, without a call each: the records n
 * ml_ring_read()s would return (a record peeked at first), copied to *at
 * while they fit in *left, or with `at` NULL pointed to in place, which
 * only the caller's hold on the tail keeps there.
 */
unsigned ml__ring_read_run(ml_ring *r, struct ml_msg *m, unsigned n, uint8_t **at,
			   size_t *left)
{
	struct ml__cons *c = &r->c;
	struct ml__next nx = { .lane = ML_PRIO_COUNT };
	unsigned got = 0;

	for (; got < n; got++) {
		uint8_t *p;

		if (c->peeked)
			nx = c->peek;
		else if (cons_again(r, &nx) && cons_next(r, &nx)) {
			cons_flush(r);
			break;
		}
		p = r->lane_base[nx.lane] + nx.off;
		if (at) {
			if (nx.len > *left) {
				/* It stays next, as a read that finds no room leaves it. */
				c->peek = nx;
				c->peeked = true;
				break;
			}
			memcpy(*at, p, nx.len);
			p = *at;
			ml__pack_step(at, left, nx.len);
		}
		c->peeked = false;
		m[got] = (struct ml_msg){ .data = p, .len = nx.len, .prio = nx.prio };
		cons_advance(r, &nx);
		if (at && !*left)
			return got + 1;
	}
	return got;
}

int ml_ring_peek(ml_ring *r, int *prio, const void **ptr)
{
	struct ml__cons *c;
	int err;

	if (!r || !ptr)
		return -EINVAL;
	c = &r->c;
	if (!c->peeked) {
		/*
		 * Most often the next record of the lane the last came from; a
		 * record there that does not decode is the same answer
		 * cons_next() would give.
		 */
		err = cons_again(r, &c->peek);
		if (err == -EAGAIN)
			err = cons_next(r, &c->peek);
		if (err) {
			cons_flush(r); /* found nothing: what was read frees its room now */
			return err;
		}
		c->peeked = true;
	}
	*ptr = r->lane_base[c->peek.lane] + c->peek.off;
	if (prio)
		*prio = c->peek.prio;
	return (int)c->peek.len;
}

int ml_ring_release(ml_ring *r)
{
	if (!r || !r->c.peeked)
		return -EINVAL;
	cons_advance(r, &r->c.peek);
	r->c.peeked = false;
	return 0;
}

unsigned ml__ring_lane_of(const ml_ring *r, int prio)
{
	return r->lanes == 1 ? 0 : (unsigned)prio;
}

/*
 * Half, not one record's worth: a producer woken at the first free byte
 * fills it and sleeps again, a wake-up a message; woken at half, it writes
 * half a lane while the consumer goes on with the other half.
 */
bool ml__ring_half_free(ml_ring *r, unsigned mask)
{
	if (r->c.hold)
		return false;
	for (unsigned l = 0; l < r->lanes; l++) {
		uint64_t head;

		if (!(mask & (1u << l)))
			continue;
		/* The producer sleeps: its head's line stays where it is. */
		head = atomic_load_explicit(&r->shm->head[l], memory_order_relaxed);
		if (head - r->c.tail[l] <= r->lane_cap[l] / 2) {
			cons_flush(r); /* the producer is to find it so */
			return true;
		}
	}
	return false;
}

int ml_ring_info(ml_ring *r, struct ml_ring_info *info)
{
	if (!r || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->lanes = r->lanes;
	info->max_msg = r->max_msg;
	info->capacity = r->capacity;
	info->poisoned = ml_ring_poisoned(r);
	for (unsigned i = 0; i < r->lanes; i++) {
		uint64_t t = atomic_load_explicit(&r->shm->tail[i], memory_order_acquire);
		uint64_t h = atomic_load_explicit(&r->shm->head[i], memory_order_acquire);
		uint64_t used = t - h <= r->lane_cap[i] ? 0 : h - t; /* a head may lag */

		info->lane_capacity[i] = r->lane_cap[i];
		/* Shared values: clamp rather than trust. */
		info->lane_used[i] = used > r->lane_cap[i] ? r->lane_cap[i] : (uint32_t)used;
	}
	return 0;
}

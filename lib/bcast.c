// SPDX-License-Identifier: MIT
/*
 * Broadcast ring: one writer, many readers (bcast.h, bcast_layout.h).
 *
 * Each handle keeps its own copy of the geometry, taken at init or attach
 * and never read from shared memory again. Readers check every shared value
 * against it: offsets are always taken modulo a lane's capacity and lengths
 * are bounded by max_msg, so no bytes whatsoever make a reader touch memory
 * outside the ring.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bcast.h"
#include "internal.h"

struct ml__bcast_writer {
	struct ml__bcast_shm *shm;
	uint8_t *lane_base[ML_PRIO_COUNT];
	uint32_t lane_cap[ML_PRIO_COUNT];
	uint32_t max_msg;
	unsigned policy;
	uint64_t head[ML_PRIO_COUNT];
	uint64_t tail[ML_PRIO_COUNT];
	uint64_t frontier[ML_PRIO_COUNT];
	uint64_t seq[ML_PRIO_COUNT];
	uint64_t min[ML_PRIO_COUNT];  /* reliable: the slowest cursor, cached */
	uint32_t woff[ML_PRIO_COUNT]; /* head modulo lane capacity */
	uint64_t live;
	struct ml__bcast_cursor *const *cur;
	uint64_t bad;
	int res_lane;                 /* -1: no reservation */
	uint32_t res_at, res_skip, res_len;
};

/* A record found in a lane, decoded and checked. */
struct ml__bview {
	unsigned lane;
	uint64_t pos;   /* the data record's position */
	uint64_t next;  /* where the record after it starts */
	uint64_t seq;
	uint32_t off;   /* payload offset in the lane */
	uint32_t len;
};

struct ml__bcast_reader {
	const struct ml__bcast_shm *shm;
	const uint8_t *lane_base[ML_PRIO_COUNT];
	uint32_t lane_cap[ML_PRIO_COUNT];
	uint32_t max_msg;
	unsigned policy;
	uint64_t pos[ML_PRIO_COUNT];  /* next record to read */
	uint64_t want[ML_PRIO_COUNT]; /* its expected sequence number */
	bool fresh[ML_PRIO_COUNT];    /* no sequence number known yet */
	uint64_t lost[ML_PRIO_COUNT];
	unsigned poisoned;
	struct ml__bcast_cursor *cursor;
	bool peeked;
	bool unstarted;               /* nothing to read before ml__bcast_start() */
	struct ml__bview pk;
};

/* Tries per read before a reader lapped again and again says -EAGAIN. */
#define ML__BCAST_TRIES 16

static inline uint32_t rec_size(uint32_t len)
{
	return ML__BCAST_REC_HDR + ((len + ML__REC_ALIGN - 1) & ~(ML__REC_ALIGN - 1));
}

static bool is_pow2(size_t v)
{
	return v && !(v & (v - 1));
}

/*
 * A record, pad included, must fit in half the smallest lane so that any
 * write offset leaves room for it in an empty lane: with a 16-byte header
 * a quarter of a lane of at least 200 bytes (capacity 1024) does.
 */
static uint32_t max_msg_limit(const uint32_t cap[ML_PRIO_COUNT])
{
	uint32_t m = cap[0];

	for (unsigned i = 1; i < ML_PRIO_COUNT; i++)
		if (cap[i] < m)
			m = cap[i];
	return m / 4;
}

size_t ml__bcast_mem_size(size_t capacity)
{
	if (!is_pow2(capacity) || capacity < ML__BCAST_MIN_CAPACITY ||
	    capacity > ML_RING_MAX_CAPACITY)
		return 0;
	return ML__BCAST_HDR_SIZE + capacity;
}

/* Header words: one 64-bit load or store each, never half of one. */
static inline uint64_t word_load(const uint8_t *at, int order)
{
	return __atomic_load_n((const uint64_t *)(const void *)at, order);
}

static inline void word_store(uint8_t *at, uint64_t w, int order)
{
	__atomic_store_n((uint64_t *)(void *)at, w, order);
}

static inline uint64_t hdr_word(uint32_t tag, uint32_t len)
{
	return (uint64_t)tag << 32 | len;
}

/* ---- writer ------------------------------------------------------------ */

int ml__bcast_init(struct ml__bcast_writer **out, void *mem, size_t len, size_t capacity,
		   unsigned policy, uint32_t max_msg)
{
	struct ml__bcast_shm *shm = mem;
	size_t need = ml__bcast_mem_size(capacity);
	uint32_t off[ML_PRIO_COUNT], cap[ML_PRIO_COUNT], limit;
	struct ml__bcast_writer *w;

	if (!out || !mem || !need || len < need || (uintptr_t)mem % ML__LINE ||
	    policy > ML__BCAST_RELIABLE)
		return -EINVAL;
	ml__lane_split((uint32_t)capacity, off, cap);
	limit = max_msg_limit(cap);
	if (!max_msg)
		max_msg = limit < ML_RING_DEFAULT_MAX_MSG ? limit : ML_RING_DEFAULT_MAX_MSG;
	if (max_msg > limit)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;

	memset(shm, 0, ML__BCAST_HDR_SIZE);
	shm->version = ML__BCAST_VERSION;
	shm->policy = policy;
	shm->capacity = (uint32_t)capacity;
	shm->max_msg = max_msg;
	memcpy(shm->lane_off, off, sizeof(off));
	memcpy(shm->lane_cap, cap, sizeof(cap));
	/* The magic goes last: an attacher that sees it sees the rest. */
	atomic_thread_fence(memory_order_release);
	*(volatile uint32_t *)&shm->magic = ML__BCAST_MAGIC;

	w->shm = shm;
	w->max_msg = max_msg;
	w->policy = policy;
	w->res_lane = -1;
	for (unsigned i = 0; i < ML_PRIO_COUNT; i++) {
		w->lane_base[i] = (uint8_t *)mem + ML__BCAST_HDR_SIZE + off[i];
		w->lane_cap[i] = cap[i];
	}
	*out = w;
	return 0;
}

void ml__bcast_writer_free(struct ml__bcast_writer *w)
{
	free(w);
}

int ml__bcast_set_cursors(struct ml__bcast_writer *w, uint64_t live,
			  struct ml__bcast_cursor *const *cursors)
{
	if (!w || (live && !cursors))
		return -EINVAL;
	w->live = live;
	w->cur = cursors;
	/* A new cursor may be behind the cached minimum: look again. */
	for (unsigned i = 0; i < ML_PRIO_COUNT; i++)
		w->min[i] = w->head[i] - w->lane_cap[i];
	return 0;
}

uint64_t ml__bcast_bad_cursors(struct ml__bcast_writer *w)
{
	uint64_t bad = w ? w->bad : 0;

	if (w)
		w->bad = 0;
	return bad;
}

/*
 * The slowest live cursor of a lane. Cursors are the readers' to write: one
 * not aligned, beyond the head or more than a lane behind it is reported
 * and left out, so that it holds back nobody.
 */
static uint64_t slowest(struct ml__bcast_writer *w, unsigned lane)
{
	uint64_t head = w->head[lane], m = head;

	for (uint64_t live = w->live; live; live &= live - 1) {
		unsigned i = (unsigned)__builtin_ctzll(live);
		uint64_t c = atomic_load_explicit(&w->cur[i]->next[lane], memory_order_acquire);

		if (c % ML__REC_ALIGN || head - c > w->lane_cap[lane]) {
			w->bad |= 1ull << i;
			continue;
		}
		if (head - c > head - m)
			m = c;
	}
	return m;
}

double ml__bcast_fill(struct ml__bcast_writer *w)
{
	double worst = 0;

	if (!w || w->policy != ML__BCAST_RELIABLE)
		return 0;
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
		double f;

		w->min[l] = slowest(w, l);
		f = (double)(w->head[l] - w->min[l]) / w->lane_cap[l];
		if (f > worst)
			worst = f;
	}
	return worst > 1 ? 1 : worst;
}

uint64_t ml__bcast_head(const struct ml__bcast_writer *w, unsigned lane, uint32_t *cap)
{
	*cap = w->lane_cap[lane];
	return w->head[lane];
}

uint64_t ml__bcast_half_free_at(const struct ml__bcast_writer *w, int prio)
{
	unsigned l = (unsigned)prio < ML_PRIO_COUNT ? (unsigned)prio : 0;

	return w->head[l] - w->lane_cap[l] / 2;
}

/*
 * Move the tail past every record below `limit`, walking the writer's own
 * headers. Reliable readers may have scribbled on them: a header that does
 * not check out drops everything up to the head.
 */
static void advance_tail(struct ml__bcast_writer *w, unsigned lane, uint64_t limit)
{
	const uint8_t *base = w->lane_base[lane];
	uint32_t cap = w->lane_cap[lane];
	uint64_t t = w->tail[lane], head = w->head[lane];

	while (t < limit) {
		uint32_t off = (uint32_t)(t % cap);
		uint64_t h = word_load(base + off, __ATOMIC_RELAXED);
		uint32_t tag = (uint32_t)(h >> 32), len = (uint32_t)h;

		if (!ML__REC_TAG_POS_OK(tag, t)) {
			t = head;
		} else if (ML__REC_TAG_TYPE(tag) == ML__REC_PAD) {
			t = len == cap - off - 8 ? t + (cap - off) : head;
		} else {
			t = len <= w->max_msg && rec_size(len) <= cap - off ? t + rec_size(len) : head;
		}
		if (t > head)
			t = head;
	}
	w->tail[lane] = t;
	atomic_store_explicit(&w->shm->tail[lane], t, memory_order_release);
}

/*
 * Claim room for a record of `len` bytes: *at is where its header goes,
 * *skip the pad in front of it. Bytes of an earlier lap that the write will
 * reuse are given up first: tail, then frontier, then a release fence, so
 * that a reader who sees any of the new bytes sees the frontier too.
 */
static int claim(struct ml__bcast_writer *w, unsigned lane, uint32_t len, uint32_t *at,
		 uint32_t *skip)
{
	uint32_t cap = w->lane_cap[lane], rec = rec_size(len);
	uint32_t room = cap - w->woff[lane];
	uint64_t end, limit;

	*skip = rec <= room ? 0 : room;
	*at = rec <= room ? w->woff[lane] : 0;
	end = w->head[lane] + *skip + rec;
	if (w->policy == ML__BCAST_RELIABLE && w->live && end - w->min[lane] > cap) {
		w->min[lane] = slowest(w, lane);
		if (end - w->min[lane] > cap)
			return -EAGAIN;
	}
	if (end <= cap)
		return 0;
	limit = end - cap;
	if (limit > w->tail[lane])
		advance_tail(w, lane, limit);
	if (limit > w->frontier[lane]) {
		w->frontier[lane] = limit;
		atomic_store_explicit(&w->shm->frontier[lane], limit, memory_order_release);
		atomic_thread_fence(memory_order_release);
	}
	return 0;
}

/* Commit: sequence number, header (a pad's last), then the head. */
static void publish(struct ml__bcast_writer *w, unsigned lane, uint32_t at, uint32_t skip,
		    uint32_t len)
{
	uint8_t *base = w->lane_base[lane];
	uint64_t pos = w->head[lane];
	uint32_t end = at + rec_size(len);

	word_store(base + at + 8, w->seq[lane], __ATOMIC_RELAXED);
	word_store(base + at, hdr_word(ML__REC_TAG(pos + skip, ML__REC_DATA, lane), len),
		   __ATOMIC_RELEASE);
	if (skip)
		word_store(base + w->woff[lane],
			   hdr_word(ML__REC_TAG(pos, ML__REC_PAD, 0), skip - 8), __ATOMIC_RELEASE);
	w->seq[lane]++;
	w->head[lane] = pos + skip + rec_size(len);
	w->woff[lane] = end == w->lane_cap[lane] ? 0 : end;
	atomic_store_explicit(&w->shm->head[lane], w->head[lane], memory_order_release);
}

static int begin(struct ml__bcast_writer *w, int prio, size_t len, bool args_ok,
		 uint32_t *at, uint32_t *skip)
{
	if (!w || prio < ML_PRIO_CRITICAL || prio > ML_PRIO_LOW || !args_ok)
		return -EINVAL;
	w->res_lane = -1;
	if (len > w->max_msg)
		return -EMSGSIZE;
	return claim(w, (unsigned)prio, (uint32_t)len, at, skip);
}

int ml__bcast_send(struct ml__bcast_writer *w, int prio, const void *buf, size_t len)
{
	uint32_t at, skip;
	int err = begin(w, prio, len, buf || !len, &at, &skip);

	if (err)
		return err;
	if (len)
		memcpy(w->lane_base[prio] + at + ML__BCAST_REC_HDR, buf, len);
	publish(w, (unsigned)prio, at, skip, (uint32_t)len);
	return 0;
}

int ml__bcast_reserve(struct ml__bcast_writer *w, int prio, size_t len, void **ptr)
{
	uint32_t at, skip;
	int err = begin(w, prio, len, ptr != NULL, &at, &skip);

	if (err)
		return err;
	w->res_lane = prio;
	w->res_at = at;
	w->res_skip = skip;
	w->res_len = (uint32_t)len;
	*ptr = w->lane_base[prio] + at + ML__BCAST_REC_HDR;
	return 0;
}

int ml__bcast_commit(struct ml__bcast_writer *w, size_t len)
{
	if (!w || w->res_lane < 0 || len > w->res_len)
		return -EINVAL;
	publish(w, (unsigned)w->res_lane, w->res_at, w->res_skip, (uint32_t)len);
	w->res_lane = -1;
	return 0;
}

unsigned ml__bcast_send_batch(struct ml__bcast_writer *w, const struct ml_msg *m, unsigned n,
			      int *err)
{
	unsigned i;

	*err = 0;
	for (i = 0; i < n; i++) {
		*err = ml__bcast_send(w, m[i].prio, m[i].data, m[i].len);
		if (*err)
			break;
	}
	return i;
}

/* ---- reader ------------------------------------------------------------ */

int ml__bcast_attach(struct ml__bcast_reader **out, const void *mem, size_t len,
		     unsigned flags, struct ml__bcast_cursor *cursor)
{
	const struct ml__bcast_shm *shm = mem;
	struct ml__bcast_shm cfg;
	uint32_t off[ML_PRIO_COUNT], cap[ML_PRIO_COUNT];
	struct ml__bcast_reader *r;

	if (!out || !mem || len < ML__BCAST_HDR_SIZE || (uintptr_t)mem % ML__LINE ||
	    (flags & ~(ML__BCAST_JOIN_OLDEST | ML__BCAST_UNSTARTED)))
		return -EINVAL;
	if (*(const volatile uint32_t *)&shm->magic != ML__BCAST_MAGIC)
		return -EPROTO;
	atomic_thread_fence(memory_order_acquire);
	/* One snapshot of the config line; everything below checks the copy. */
	memcpy(&cfg, shm, offsetof(struct ml__bcast_shm, pad0));
	if (cfg.version != ML__BCAST_VERSION || cfg.policy > ML__BCAST_RELIABLE ||
	    !ml__bcast_mem_size(cfg.capacity) || ml__bcast_mem_size(cfg.capacity) > len)
		return -EPROTO;
	ml__lane_split(cfg.capacity, off, cap);
	if (memcmp(off, cfg.lane_off, sizeof(off)) || memcmp(cap, cfg.lane_cap, sizeof(cap)) ||
	    !cfg.max_msg || cfg.max_msg > max_msg_limit(cap))
		return -EPROTO;
	if (cfg.policy == ML__BCAST_RELIABLE && !cursor)
		return -EINVAL;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->shm = shm;
	r->max_msg = cfg.max_msg;
	r->policy = cfg.policy;
	/* A lossy reader's cursor says where it is, for onlookers only. */
	r->cursor = cursor;
	for (unsigned i = 0; i < ML_PRIO_COUNT; i++) {
		uint64_t h = atomic_load_explicit(&shm->head[i], memory_order_acquire);
		uint64_t t = atomic_load_explicit(&shm->tail[i], memory_order_acquire);

		r->lane_base[i] = (const uint8_t *)mem + ML__BCAST_HDR_SIZE + off[i];
		r->lane_cap[i] = cap[i];
		/*
		 * Nothing written yet: the first record is sequence 0. The
		 * tail is checked when read from (it may be stale already).
		 */
		r->fresh[i] = h != 0;
		r->pos[i] = (flags & ML__BCAST_JOIN_OLDEST) ? t : h;
		if (r->pos[i] % ML__REC_ALIGN) {
			free(r);
			return -EBADMSG;
		}
		if (r->cursor && !(flags & ML__BCAST_UNSTARTED))
			atomic_store_explicit(&r->cursor->next[i], r->pos[i], memory_order_release);
	}
	r->unstarted = flags & ML__BCAST_UNSTARTED;
	*out = r;
	return 0;
}

void ml__bcast_reader_free(struct ml__bcast_reader *r)
{
	free(r);
}

static int poison(struct ml__bcast_reader *r, unsigned lane)
{
	r->poisoned |= 1u << lane;
	return -EBADMSG;
}

unsigned ml__bcast_poisoned(const struct ml__bcast_reader *r)
{
	return r ? r->poisoned : 0;
}

uint64_t ml__bcast_lost(const struct ml__bcast_reader *r, uint64_t lost[ML_PRIO_COUNT])
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < ML_PRIO_COUNT; i++) {
		if (lost)
			lost[i] = r ? r->lost[i] : 0;
		sum += r ? r->lost[i] : 0;
	}
	return sum;
}

/*
 * Seqlock check, after a copy: were the bytes read below `pos` given up by
 * the writer before or while they were read?
 */
static inline bool overwritten(const struct ml__bcast_reader *r, unsigned lane, uint64_t pos)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&r->shm->frontier[lane], memory_order_relaxed) > pos;
}

/*
 * The lossy copy races the writer by design: the bytes may be overwritten
 * while read, and overwritten() says so afterwards. TSan would report the
 * race it cannot see is checked, so this one function is not instrumented
 * (and copies by volatile words, which no compiler turns into a memcpy()
 * call that TSan intercepts). Source records are 8-byte aligned and padded
 * to 8, so whole words stay inside the record.
 */
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_thread, noinline))
#endif
static void racy_copy(void *dst, const uint8_t *src, uint32_t len)
{
	const volatile uint64_t *s = (const volatile uint64_t *)(const void *)src;
	uint8_t *d = dst;

	for (; len >= 8; len -= 8, d += 8) {
		uint64_t v = *s++;

		memcpy(d, &v, 8);
	}
	if (len) {
		uint64_t v = *s;

		memcpy(d, &v, len);
	}
}

#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_thread, noinline))
#endif
static uint64_t racy_word(const uint8_t *at)
{
	return *(const volatile uint64_t *)(const void *)at;
}

/*
 * A header word, as a reader sees it. Lossy: the writer may be reusing the
 * word for the payload of a later lap while it is read (the frontier tells
 * afterwards), a race TSan must not report either; the head's acquire
 * already ordered what was published before it. Reliable: nobody writes a
 * record that a live reader has not passed, so a plain atomic load.
 */
static inline uint64_t hdr_read(const struct ml__bcast_reader *r, const uint8_t *at)
{
	if (r->policy == ML__BCAST_LOSSY)
		return racy_word(at);
	return word_load(at, __ATOMIC_ACQUIRE);
}

/*
 * Jump to the tail of a lane the reader fell behind in (more than a lane,
 * or past the frontier). 0: try again from there; -EBADMSG: the writer's
 * indices make no sense. The tail is loaded before the head: the writer
 * stores it only below a head it stored earlier. If the head ran more
 * than a lane ahead in between, the frontier moved past the tail too.
 */
static int jump(struct ml__bcast_reader *r, unsigned lane)
{
	const struct ml__bcast_shm *shm = r->shm;
	uint64_t t = atomic_load_explicit(&shm->tail[lane], memory_order_acquire);
	uint64_t h = atomic_load_explicit(&shm->head[lane], memory_order_acquire);

	if (t % ML__REC_ALIGN)
		return poison(r, lane);
	if (!overwritten(r, lane, t) && h - t > r->lane_cap[lane])
		return poison(r, lane);
	if (t - r->pos[lane] > (uint64_t)1 << 62) /* backwards: never honest */
		return poison(r, lane);
	r->pos[lane] = t;
	return 0;
}

/*
 * Find and check the next record of a lane: 1 and *v, 0 when there is
 * none, -EBADMSG. A header that does not check out is the writer's fault
 * only if the frontier shows it was not being overwritten.
 */
static int lane_next(struct ml__bcast_reader *r, unsigned lane, struct ml__bview *v)
{
	const uint8_t *base = r->lane_base[lane];
	uint32_t cap = r->lane_cap[lane];

	for (int tries = 0; tries < ML__BCAST_TRIES; tries++) {
		uint64_t pos = r->pos[lane], h, w;
		uint64_t head = atomic_load_explicit(&r->shm->head[lane], memory_order_acquire);
		uint32_t off, tag, len, rec;

		if (head % ML__REC_ALIGN)
			return poison(r, lane);
		if (head == pos)
			return 0;
		if (head - pos > cap || overwritten(r, lane, pos)) {
			if (jump(r, lane))
				return -EBADMSG;
			continue;
		}
		off = (uint32_t)(pos % cap);
		h = hdr_read(r, base + off);
		tag = (uint32_t)(h >> 32);
		len = (uint32_t)h;
		if (!ML__REC_TAG_POS_OK(tag, pos))
			goto bad;
		if (ML__REC_TAG_TYPE(tag) == ML__REC_PAD) {
			uint32_t skip = cap - off;

			if (len != skip - 8 || head - pos <= skip)
				goto bad;
			pos += skip;
			off = 0;
			h = hdr_read(r, base);
			tag = (uint32_t)(h >> 32);
			len = (uint32_t)h;
			if (!ML__REC_TAG_POS_OK(tag, pos) || ML__REC_TAG_TYPE(tag) != ML__REC_DATA)
				goto bad;
		}
		rec = rec_size(len);
		if (ML__REC_TAG_PRIO(tag) != lane || len > r->max_msg || rec > cap - off ||
		    rec > head - pos)
			goto bad;
		w = hdr_read(r, base + off + 8);
		*v = (struct ml__bview){ .lane = lane, .pos = pos, .next = pos + rec, .seq = w,
					 .off = off + ML__BCAST_REC_HDR, .len = len };
		return 1;
bad:
		if (!overwritten(r, lane, pos))
			return poison(r, lane);
		if (jump(r, lane))
			return -EBADMSG;
	}
	return 0; /* lapped at every try: nothing for now */
}

/* The most urgent lane's next record: 1 and *v, 0: none, or -EBADMSG. */
static int next(struct ml__bcast_reader *r, struct ml__bview *v)
{
	if (r->unstarted)
		return 0;
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
		int n;

		if (r->poisoned & (1u << l))
			continue;
		n = lane_next(r, l, v);
		if (n)
			return n;
	}
	return 0;
}

/*
 * Take the record: count the gap in sequence numbers before it as lost,
 * move on, and tell the writer through the cursor (reliable).
 */
static int consume(struct ml__bcast_reader *r, const struct ml__bview *v)
{
	unsigned l = v->lane;

	if (!r->fresh[l]) {
		if (v->seq < r->want[l])
			return poison(r, l);
		r->lost[l] += v->seq - r->want[l];
	}
	r->fresh[l] = false;
	r->want[l] = v->seq + 1;
	r->pos[l] = v->next;
	if (r->cursor)
		atomic_store_explicit(&r->cursor->next[l], v->next, memory_order_release);
	return 0;
}

int ml__bcast_read(struct ml__bcast_reader *r, int *prio, uint64_t *seq, void *buf,
		   size_t buflen)
{
	struct ml__bview v;

	if (!r || (buflen && !buf))
		return -EINVAL;
	if (r->peeked)
		return -EBUSY;
	for (int tries = 0; tries < ML__BCAST_TRIES; tries++) {
		int n = next(r, &v);

		if (n < 0)
			return n;
		if (!n)
			return r->poisoned ? -EBADMSG : -EAGAIN;
		if (v.len > buflen)
			return -EMSGSIZE; /* it stays next */
		if (r->policy == ML__BCAST_RELIABLE)
			memcpy(buf, r->lane_base[v.lane] + v.off, v.len);
		else
			racy_copy(buf, r->lane_base[v.lane] + v.off, v.len);
		/* Torn: not delivered; the gap to what comes next counts it. */
		if (overwritten(r, v.lane, v.pos))
			continue;
		n = consume(r, &v);
		if (n)
			return n;
		if (prio)
			*prio = (int)v.lane;
		if (seq)
			*seq = v.seq;
		return (int)v.len;
	}
	return -EAGAIN;
}

int ml__bcast_peek(struct ml__bcast_reader *r, int *prio, uint64_t *seq, const void **ptr)
{
	if (!r || !ptr)
		return -EINVAL;
	if (!r->peeked) {
		int n = next(r, &r->pk);

		if (n < 0)
			return n;
		if (!n)
			return r->poisoned ? -EBADMSG : -EAGAIN;
		r->peeked = true;
	}
	*ptr = r->lane_base[r->pk.lane] + r->pk.off;
	if (prio)
		*prio = (int)r->pk.lane;
	if (seq)
		*seq = r->pk.seq;
	return (int)r->pk.len;
}

int ml__bcast_done(struct ml__bcast_reader *r)
{
	bool stale;
	int err;

	if (!r || !r->peeked)
		return -EINVAL;
	r->peeked = false;
	/* The header's fields were read before the view: check them first. */
	stale = overwritten(r, r->pk.lane, r->pk.pos);
	if (stale) {
		/* Its sequence number may be torn: the next record's counts it. */
		return -ML__ESTALE;
	}
	err = consume(r, &r->pk);
	return err;
}

bool ml__bcast_pending(const struct ml__bcast_reader *r)
{
	if (r->peeked)
		return true;
	if (r->unstarted)
		return false;
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++)
		if (!(r->poisoned & (1u << l)) &&
		    atomic_load_explicit(&r->shm->head[l], memory_order_acquire) != r->pos[l])
			return true;
	return false;
}

unsigned ml__bcast_policy(const struct ml__bcast_reader *r)
{
	return r->policy;
}

int ml__bcast_start(struct ml__bcast_reader *r, const uint64_t pos[ML_PRIO_COUNT])
{
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
		uint64_t h = atomic_load_explicit(&r->shm->head[l], memory_order_acquire);

		if (pos[l] % ML__REC_ALIGN || h - pos[l] > r->lane_cap[l])
			return -EBADMSG;
	}
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
		r->pos[l] = pos[l];
		/* From position 0 the first record is number 0: count from there. */
		r->fresh[l] = pos[l] != 0;
		r->want[l] = 0;
		if (r->cursor)
			atomic_store_explicit(&r->cursor->next[l], pos[l], memory_order_release);
	}
	r->unstarted = false;
	return 0;
}

bool ml__bcast_started(const struct ml__bcast_reader *r)
{
	return !r->unstarted;
}

void ml__bcast_start_at(const struct ml__bcast_writer *w, bool oldest,
			uint64_t pos[ML_PRIO_COUNT])
{
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++)
		pos[l] = oldest ? w->tail[l] : w->head[l];
}

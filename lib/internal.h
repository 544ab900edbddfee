/* SPDX-License-Identifier: MIT */
/* Helpers shared by the library's files; nothing here is exported. */
#ifndef ML_INTERNAL_H
#define ML_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Zeroed memory aligned to `align` (a power of two); *base is what to pass
 * to free(). Plain C so that every backend can use it.
 */
void *ml__aligned_zalloc(size_t size, size_t align, void **base);

/*
 * Copy a caller's options struct that starts with a uint32_t size, the way
 * the kernel's copy_struct_from_user() does: a NULL `src` gives all zeroes,
 * a size below `min_size` is -EINVAL, a larger struct than ours is accepted
 * when the bytes we do not know are zero, else -EINVAL.
 */
int ml__copy_opts(void *dst, size_t dst_size, const void *src, size_t src_size,
		  size_t min_size);

/* FNV-1a, 64 bits: short stand-ins for names too long for an OS. */
static inline uint64_t ml__fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s) {
		h ^= (uint8_t)*s++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/*
 * Lanes (bit per lane) whose producer claimed room for a record and never
 * published it: a reservation left open, or a producer that died in the
 * middle of a write. Meaningful once the producer is known gone.
 */
struct ml_ring;
unsigned ml__ring_claims(const struct ml_ring *r);

/*
 * Consumer side: while held, reads free no room (the tail is not stored);
 * releasing the hold stores every lane's tail once. A batch of reads then
 * passes the tail's cache line to the producer once, not once a record.
 */
void ml__ring_hold_tail(struct ml_ring *r, bool hold);
/*
 * Consumer side, for readers that come back (channels): a read stores the
 * tail only once an eighth of its lane has been read since the last store;
 * a look that finds nothing, a half-free answer and the end of a hold
 * store it at once. A producer then sees room an eighth of a lane late at
 * most while its reader goes on reading, and all of it once the reader
 * has drained the ring.
 */
void ml__ring_lazy_tail(struct ml_ring *r, bool lazy);
/*
 * A batch copied into a buffer: step *at past a message of len bytes, to
 * the next 8-byte boundary; returns what is left of the buffer (*left).
 */
static inline size_t ml__pack_step(uint8_t **at, size_t *left, uint32_t len)
{
	size_t adv = ((size_t)len + 7) & ~(size_t)7;

	*at += adv;
	*left -= adv < *left ? adv : *left;
	return *left;
}

/*
 * Consumer side: up to n more records, as n reads would return them, copied
 * one after another (8-byte aligned) to *at while they fit in *left, or,
 * `at` NULL, pointed to where they lie (under a held tail). How many.
 */
struct ml_msg;
unsigned ml__ring_read_run(struct ml_ring *r, struct ml_msg *m, unsigned n, uint8_t **at,
			   size_t *left);
/*
 * Producer side, the same for heads: a batch of writes stores the head once
 * (each record is still committed by its header as it is written).
 */
void ml__ring_hold_head(struct ml_ring *r, bool hold);
/*
 * Up to n writes in a row (msgs' data, len, prio), as n ml_ring_write()s
 * would write them. How many; *err is why the next one was not (0: all).
 */
unsigned ml__ring_write_run(struct ml_ring *r, const struct ml_msg *m, unsigned n, int *err);

/*
 * Consumer side, for a reader that peeks at many rings and takes from one
 * (a daemon): drop the record peeked at when a more urgent lane now shows
 * one, so that the next peek answers the most urgent again. A ring whose
 * reads are relaxed (starve_limit, urgent_every) keeps its answer.
 */
void ml__ring_peek_fresh(struct ml_ring *r);

/* The lane a message of priority prio goes to (0 on a one-lane ring). */
unsigned ml__ring_lane_of(const struct ml_ring *r, int prio);
/*
 * Consumer side, for a producer waiting for room in the lanes of `mask`
 * (bit l: lane l): is one of them at most half full, its tail stored? No
 * while the tail is held.
 */
bool ml__ring_half_free(struct ml_ring *r, unsigned mask);

/*
 * The three-lane split of a ring's capacity (20/50/30, each lane a multiple
 * of 8): offsets and sizes, for ring.c and bcast.c alike.
 */
void ml__lane_split(uint32_t capacity, uint32_t off[3], uint32_t cap[3]);

#endif /* ML_INTERNAL_H */

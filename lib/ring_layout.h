/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory layout of a ring. Both processes map these bytes; either
 * may be buggy, dead or hostile, so every value read from here is checked
 * before it is used (see ring.c).
 *
 *   offset    0  config line   written once by init, read once by attach
 *   offset  128  producer line heads of all lanes (one producer owns them)
 *   offset  256  consumer line tails of all lanes (one consumer owns them)
 *   offset  384  claim line    per lane, the head the producer will publish
 *                              when the record it is writing is done: read
 *                              by nobody while the producer lives, it tells
 *                              a record claimed and never committed by a
 *                              producer that died (ml__ring_claims)
 *   offset  512  data: lane 0, lane 1, lane 2 back to back
 *
 * The producer and consumer lines are 128 bytes apart so that adjacent-line
 * prefetch never makes them share a cache line pair. All heads sit in one
 * line, so a reader of a three-lane ring learns every lane's state with a
 * single cache-line transfer.
 *
 * Heads and tails are free-running byte counters; a lane's fill level is
 * head - tail. Records are 8-byte aligned: an 8-byte header, then the
 * payload padded to 8. A record never wraps; when it does not fit before the
 * end of the lane the producer writes a pad record up to the end and puts
 * the record at offset 0.
 *
 * A record's header is its commit: the producer writes the payload, then
 * the header with a release store (for a pad, the record at 0 first and the
 * pad's header last), and only then stores the head, which may lag behind
 * (a held head, ml__ring_hold_head). A reader that waited for a record sees
 * it by its header alone, in the line it reads anyway, and leaves the head's
 * line in the producer's cache; a reader that streams reads the head for a
 * run. That needs the word where the next header will go never to look like
 * one by accident, hence the producer's rule: publishing a record that ends
 * at position E, it writes ML__REC_NONE(E), a word that names no record,
 * into the 8 bytes at E when they are free (zeroes would not do: they name
 * position ML__TAG_KEY). When they are not, the lane is full and they hold
 * the header of the record at E - lane capacity, which names another
 * position. Payload bytes of an earlier lap are thus never where a reader
 * looks for a header.
 */
#ifndef ML_RING_LAYOUT_H
#define ML_RING_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "memlink.h"

#define ML__RING_MAGIC 0x4d4c5247u /* "MLRG" */
#define ML__RING_VERSION 3u /* 2: the claim line; 3: headers commit */
#define ML__LINE 128u
#define ML__RING_HDR_SIZE (4u * ML__LINE)

/*
 * Record header: one 64-bit word, tag in the high half, payload length in
 * the low half, stored and loaded whole (ring.c: hdr_store/hdr_load).
 *
 *   tag = ((uint32_t)pos ^ ML__TAG_KEY) | type << 2 | prio
 *
 * pos is the record's free-running position (head when it was written), so
 * a header names the lap it belongs to: the reader can tell a record that
 * was just committed at its read position from one left there on an earlier
 * lap by looking at that single word (see the producer's rule above). The
 * key keeps zeroed memory from looking like a record at position 0.
 */
struct ml__rec {
	uint32_t len;
	uint32_t tag;
};

#define ML__REC_ALIGN 8u
#define ML__REC_DATA 0u
#define ML__REC_PAD 1u
#define ML__TAG_KEY 0x4d4c5200u
#define ML__REC_TAG(pos, type, prio) \
	((((uint32_t)(pos)) ^ ML__TAG_KEY) | ((uint32_t)(type) << 2) | (uint32_t)(prio))
#define ML__REC_TAG_POS_OK(tag, pos) \
	(((tag) & ~7u) == ((((uint32_t)(pos)) ^ ML__TAG_KEY) & ~7u))
/* A word that names no record at pos: what the producer's rule leaves there. */
#define ML__REC_NONE(pos) ((uint64_t)~ML__REC_TAG(pos, 0, 0) << 32)
#define ML__REC_TAG_TYPE(tag) (((tag) >> 2) & 1u)
#define ML__REC_TAG_PRIO(tag) ((tag) & 3u)

struct ml__ring_shm {
	/* config line */
	uint32_t magic;
	uint32_t version;
	uint32_t lanes;
	uint32_t capacity;
	uint32_t max_msg;
	uint32_t lane_off[ML_PRIO_COUNT];
	uint32_t lane_cap[ML_PRIO_COUNT];
	uint32_t starve_limit;  /* the reader's policy, set by the creator */
	uint32_t urgent_every;  /* likewise */
	uint8_t pad0[ML__LINE - 13 * sizeof(uint32_t)];
	/* producer line */
	_Atomic uint64_t head[ML_PRIO_COUNT];
	uint8_t pad1[ML__LINE - ML_PRIO_COUNT * sizeof(uint64_t)];
	/* consumer line */
	_Atomic uint64_t tail[ML_PRIO_COUNT];
	uint8_t pad2[ML__LINE - ML_PRIO_COUNT * sizeof(uint64_t)];
	/* claim line */
	_Atomic uint64_t claim[ML_PRIO_COUNT];
	uint8_t pad3[ML__LINE - ML_PRIO_COUNT * sizeof(uint64_t)];
};

_Static_assert(sizeof(struct ml__ring_shm) == ML__RING_HDR_SIZE,
	       "ring header must be four 128-byte lines");

#endif /* ML_RING_LAYOUT_H */

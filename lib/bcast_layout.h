/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory layout of a broadcast ring: one writer, any number of
 * readers, each record written once and read in place by all of them. The
 * writer may be buggy, dead or hostile, and so may a reliable reader's
 * cursor, so every value read from here is checked before it is used (see
 * bcast.c). A lossy reader only reads: it may map these bytes read-only.
 *
 *   offset    0  config line    written once by init, read once by attach
 *   offset  128  writer line    per lane: head (where the next record goes)
 *                               and tail (the oldest intact record)
 *   offset  256  frontier line  per lane, the overwrite frontier: records
 *                               at positions below it may be overwritten
 *   offset  384  data: lane 0, lane 1, lane 2 back to back (20/50/30)
 *
 * Heads, tails and frontiers are free-running byte positions. A record is
 * a 16-byte header and its payload padded to 8: word 0 is the tag and the
 * length (ring_layout.h's ML__REC_TAG: the tag names the lap position, so
 * bytes of an earlier lap are never taken for a record), word 1 the lane's
 * sequence number (u64, from 0). A record never wraps: one that does not
 * fit before the end of the lane is put at offset 0 behind a pad record,
 * which is word 0 only (length: the bytes after that word to the lane end).
 *
 * The writer commits a record by its header: payload and sequence number
 * first, word 0 with release (a pad's word last), then the head, with
 * release. Readers go by the head: a record is there when it lies below
 * the head they loaded, and its header then has to say so. A writer that
 * dies before storing the head exposes nothing.
 *
 * Reuse of an earlier lap's bytes (seqlock-style): before writing bytes
 * that end at position E, the writer moves the tail past every record
 * below E - lane capacity, then stores the frontier E - capacity, then a
 * release fence, and only then writes. A reader copies a record, then,
 * after an acquire fence, loads the frontier: if it is past the record's
 * position, the copy may be torn and is dropped (counted as lost).
 *
 * Reliable rings add a cursor per reader (struct ml__bcast_cursor), in
 * memory the caller gives: the reader stores there, per lane, the position
 * of the next record it will read; the writer keeps a lane's head at most
 * a lane capacity ahead of the slowest live cursor.
 */
#ifndef ML_BCAST_LAYOUT_H
#define ML_BCAST_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "memlink.h"
#include "ring_layout.h"

#define ML__BCAST_MAGIC 0x4d4c4243u /* "MLBC" */
#define ML__BCAST_VERSION 1u
#define ML__BCAST_HDR_SIZE (3u * ML__LINE)
#define ML__BCAST_REC_HDR 16u /* tag/length word, sequence word */

struct ml__bcast_shm {
	/* config line */
	uint32_t magic;
	uint32_t version;
	uint32_t policy;   /* ML__BCAST_LOSSY or ML__BCAST_RELIABLE */
	uint32_t capacity;
	uint32_t max_msg;
	uint32_t lane_off[ML_PRIO_COUNT];
	uint32_t lane_cap[ML_PRIO_COUNT];
	uint8_t pad0[ML__LINE - 11 * sizeof(uint32_t)];
	/* writer line */
	_Atomic uint64_t head[ML_PRIO_COUNT];
	_Atomic uint64_t tail[ML_PRIO_COUNT];
	uint8_t pad1[ML__LINE - 2 * ML_PRIO_COUNT * sizeof(uint64_t)];
	/* frontier line: read by lossy readers after every copy */
	_Atomic uint64_t frontier[ML_PRIO_COUNT];
	uint8_t pad2[ML__LINE - ML_PRIO_COUNT * sizeof(uint64_t)];
};

_Static_assert(sizeof(struct ml__bcast_shm) == ML__BCAST_HDR_SIZE,
	       "bcast header must be three 128-byte lines");

/* A reliable reader's cursor: its own line, written by it alone. */
struct ml__bcast_cursor {
	_Atomic uint64_t next[ML_PRIO_COUNT];
	uint8_t pad[ML__LINE - ML_PRIO_COUNT * sizeof(uint64_t)];
};

_Static_assert(sizeof(struct ml__bcast_cursor) == ML__LINE, "a cursor is one line");

#endif /* ML_BCAST_LAYOUT_H */

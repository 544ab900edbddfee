/* SPDX-License-Identifier: MIT */
/*
 * Broadcast ring (internal, for topics): one writer, many readers, three
 * lanes. Layout in bcast_layout.h. Functions return 0 or a length, or a
 * negative errno.
 *
 * Losses: each reader counts, per lane, the records it did not get: the gap
 * between the sequence number it expected and the one it got, plus records
 * whose in-place view was overwritten (ml__bcast_done() -ML__ESTALE). Counting
 * starts at sequence 0 for a reader that attached to a lane where nothing
 * had been written yet, else at the first record it sees in that lane.
 * ml__bcast_lost() reads the counters; delivered + lost == written.
 */
#ifndef ML_BCAST_H
#define ML_BCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bcast_layout.h"

#define ML__BCAST_LOSSY 0u    /* the writer never waits, overwrites the oldest */
#define ML__BCAST_RELIABLE 1u /* the slowest live cursor bounds the writer */

#define ML__BCAST_MIN_CAPACITY 1024u
#define ML__BCAST_MAX_CURSORS 64u

/* ml__bcast_done()'s "overwritten during the view" (memlink.h: Windows lacks ESTALE). */
#define ML__ESTALE ML_ESTALE

/* ml__bcast_attach() flags */
#define ML__BCAST_JOIN_OLDEST 1u /* start at the oldest record still there,
				  * not at the next one written */
#define ML__BCAST_UNSTARTED 2u   /* read nothing until ml__bcast_start() */

struct ml__bcast_writer;
struct ml__bcast_reader;

/* Bytes of memory a ring of `capacity` (a power of two) needs; 0: invalid. */
size_t ml__bcast_mem_size(size_t capacity);

/*
 * Writer: lay out `mem` (128-byte aligned, len >= ml__bcast_mem_size()).
 * max_msg 0: the largest allowed, a quarter of the smallest lane, at most
 * 4096.
 */
int ml__bcast_init(struct ml__bcast_writer **out, void *mem, size_t len, size_t capacity,
		   unsigned policy, uint32_t max_msg);
void ml__bcast_writer_free(struct ml__bcast_writer *w);

/*
 * Reliable: the live readers' cursors, bit i of `live` for cursors[i]
 * (i < 64). The writer keeps the array pointer, not a copy of it.
 */
int ml__bcast_set_cursors(struct ml__bcast_writer *w, uint64_t live,
			  struct ml__bcast_cursor *const *cursors);
/*
 * Cursors found bad (beyond the head or more than a lane behind it) since
 * the last call, as a mask; they were ignored. Cursors are read only when
 * the writer's cached room runs out.
 */
uint64_t ml__bcast_bad_cursors(struct ml__bcast_writer *w);

/*
 * Reliable: the fullest lane, for its slowest live cursor, 0..1 (reads the
 * cursors). Lossy: 0.
 */
double ml__bcast_fill(struct ml__bcast_writer *w);
/*
 * Reliable: the position in lane `prio` that the slowest cursor must reach
 * for half the lane to be free, whom a writer out of room waits for.
 */
uint64_t ml__bcast_half_free_at(const struct ml__bcast_writer *w, int prio);
/* Lane `lane`'s head, and its capacity in bytes (for lag). */
uint64_t ml__bcast_head(const struct ml__bcast_writer *w, unsigned lane, uint32_t *cap);

/* Copying send; -EAGAIN: a reliable lane is full. */
int ml__bcast_send(struct ml__bcast_writer *w, int prio, const void *buf, size_t len);
/* Zero copy: *ptr is room for len bytes in the lane; commit publishes. */
int ml__bcast_reserve(struct ml__bcast_writer *w, int prio, size_t len, void **ptr);
int ml__bcast_commit(struct ml__bcast_writer *w, size_t len);
/* Up to n sends (m[i].prio/data/len); how many, *err why not the next. */
unsigned ml__bcast_send_batch(struct ml__bcast_writer *w, const struct ml_msg *m, unsigned n,
			      int *err);

/*
 * Reader: attach to memory a writer laid out; lossy readers only read it.
 * A reliable ring needs `cursor` (the reader's own line, which it writes);
 * the writer must be told of it (ml__bcast_set_cursors) to be held back.
 * A lossy reader given one writes its positions there too, which its
 * writer never reads (they are for onlookers).
 */
int ml__bcast_attach(struct ml__bcast_reader **out, const void *mem, size_t len,
		     unsigned flags, struct ml__bcast_cursor *cursor);
void ml__bcast_reader_free(struct ml__bcast_reader *r);

/*
 * The most urgent record waiting, FIFO within a lane: copied to buf (its
 * length returned, -EMSGSIZE leaves it waiting), its priority and sequence
 * number in *prio and *seq (either may be NULL). -EAGAIN: none.
 * -EBADMSG: the writer's bytes make no sense (the lane is poisoned).
 */
int ml__bcast_read(struct ml__bcast_reader *r, int *prio, uint64_t *seq, void *buf,
		   size_t buflen);
/*
 * In place: *ptr points into the ring until ml__bcast_done(), which says
 * -ML__ESTALE (ESTALE) if a lossy writer overwrote the record meanwhile (then counted
 * as lost: what the caller read from it is garbage).
 */
int ml__bcast_peek(struct ml__bcast_reader *r, int *prio, uint64_t *seq, const void **ptr);
int ml__bcast_done(struct ml__bcast_reader *r);

/*
 * Is there anything to read: a lane (not poisoned) whose head is not where
 * the reader is, or an open view? Never reads a record.
 */
bool ml__bcast_pending(const struct ml__bcast_reader *r);
/* The ring's ML__BCAST_* policy. */
unsigned ml__bcast_policy(const struct ml__bcast_reader *r);

/*
 * A reader attached ML__BCAST_UNSTARTED starts at pos[] (its writer chose
 * them: ml__bcast_start_at()); -EBADMSG if they make no sense (misaligned,
 * beyond the head or more than a lane behind it).
 */
int ml__bcast_start(struct ml__bcast_reader *r, const uint64_t pos[ML_PRIO_COUNT]);
bool ml__bcast_started(const struct ml__bcast_reader *r);
/* Writer: where a reader starting now begins: the heads, or the tails (oldest). */
void ml__bcast_start_at(const struct ml__bcast_writer *w, bool oldest,
			uint64_t pos[ML_PRIO_COUNT]);

/* Records lost: the total, and per lane in lost[] if not NULL. */
uint64_t ml__bcast_lost(const struct ml__bcast_reader *r, uint64_t lost[ML_PRIO_COUNT]);
/* Lanes poisoned by bytes that make no sense, as a mask. */
unsigned ml__bcast_poisoned(const struct ml__bcast_reader *r);

#endif /* ML_BCAST_H */

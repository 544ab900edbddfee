/* SPDX-License-Identifier: MIT */
/*
 * memlink: shared-memory messaging for processes on one machine.
 *
 * Conventions for every call in this header:
 *  - handles are opaque and owned by the caller until the matching _free();
 *  - a call returns 0 (or a byte count) on success and a negative errno on
 *    failure; ml_strerror() turns it into text;
 *  - nothing allocates, locks or makes a system call after a ring has been
 *    created or attached.
 */
#ifndef MEMLINK_H
#define MEMLINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the calls the shared library exports; everything else is hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define ML_API __attribute__((visibility("default")))
#else
#define ML_API
#endif

#define MEMLINK_VERSION_MAJOR 0
#define MEMLINK_VERSION_MINOR 1
#define MEMLINK_VERSION_PATCH 0

/* Message priorities. Lower value means more urgent. */
enum ml_prio {
	ML_PRIO_CRITICAL = 0,
	ML_PRIO_HIGH = 1,
	ML_PRIO_LOW = 2,
};
#define ML_PRIO_COUNT 3

/* Text for a negative errno returned by any ml_ call (or for errno itself). */
ML_API const char *ml_strerror(int err);

/* Library version as "MAJOR.MINOR.PATCH". */
ML_API const char *ml_version(void);

/*
 * Rings
 * =====
 *
 * An ml_ring is a lock-free single-producer/single-consumer queue of
 * variable-length records. One thread (or process) writes, one reads; the
 * two sides may run concurrently without any other synchronisation.
 *
 * A ring has one lane (a plain FIFO that stores each record's priority
 * with it) or three lanes (ML_RING_LANES3: Critical, High and Low get 20%,
 * 50% and 30% of the capacity, and a read returns the most urgent record
 * waiting; see urgent_every and starve_limit for the two ways to relax
 * that).
 *
 * Errors:
 *  -EINVAL    bad argument (NULL handle, bad priority, bad option)
 *  -EMSGSIZE  message longer than the ring's max_msg, or read buffer too
 *             small for the next record (the record stays in the ring)
 *  -EAGAIN    write: the lane is full; read: nothing to read
 *  -EBADMSG   the shared memory holds an index, length or header that
 *             cannot be valid; the lane is poisoned (see ml_ring_poisoned)
 *  -EPROTO    attach: the memory does not hold a ring of this version, or
 *             the ring it describes is larger than the length given
 *  -ENOMEM    creating a heap ring failed
 *  -EBUSY     read: a zero-copy peek is still outstanding
 */

typedef struct ml_ring ml_ring;

/* Use three priority lanes instead of one. */
#define ML_RING_LANES3 (1u << 0)

#define ML_RING_MIN_CAPACITY 256u
#define ML_RING_MAX_CAPACITY (1u << 30)
#define ML_RING_DEFAULT_MAX_MSG 4096u

/*
 * Ring creation options. Zero-initialise, set .size = sizeof(opts), then
 * set what you need; a NULL pointer means all defaults.
 */
struct ml_ring_opts {
	uint32_t size;         /* sizeof(struct ml_ring_opts), for growth */
	uint32_t flags;        /* ML_RING_LANES3 */
	uint32_t max_msg;      /* largest payload in bytes; 0 = the smaller
				* of 4096 and a quarter of the smallest lane;
				* at most a quarter of the smallest lane */
	uint32_t starve_limit; /* 0 = strict priority; N = a waiting lane is
				* passed over by at most N consecutive reads
				* from more urgent lanes */
	uint32_t urgent_every; /* 0 or 1 = every read looks for records in
				* more urgent lanes; N = while it has records
				* of a less urgent lane in view, a reader looks
				* only every Nth read, so an urgent record may
				* wait behind up to N-1 less urgent ones (for
				* throughput under load; see BENCHMARKS.md) */
};

/*
 * Bytes of caller memory needed for a ring of `capacity` data bytes:
 * a 384-byte header plus the data area. Returns 0 if capacity is not a
 * power of two between ML_RING_MIN_CAPACITY and ML_RING_MAX_CAPACITY.
 */
ML_API size_t ml_ring_mem_size(size_t capacity);

/*
 * Create a ring on the heap for use inside one process. `capacity` is the
 * size of the data area in bytes, a power of two.
 */
ML_API int ml_ring_new(ml_ring **out, size_t capacity, const struct ml_ring_opts *opts);

/*
 * Lay a ring out in caller-provided memory (for instance a MAP_SHARED
 * mapping). `mem` must be 128-byte aligned and `len` at least
 * ml_ring_mem_size(capacity). The handle returned uses the memory but does
 * not own it.
 */
ML_API int ml_ring_init(ml_ring **out, void *mem, size_t len, size_t capacity,
		 const struct ml_ring_opts *opts);

/*
 * Attach to a ring that ml_ring_init() laid out in `mem`, typically from
 * another process. Every field of the header is validated; the handle keeps
 * its own copy of the geometry (and of the creator's read policy:
 * starve_limit, urgent_every) and never
 * re-reads it. -EBADMSG: the memory holds corrupt indices.
 */
ML_API int ml_ring_attach(ml_ring **out, void *mem, size_t len);

/* Release a handle (and, for ml_ring_new rings, the memory). NULL is ok. */
ML_API void ml_ring_free(ml_ring *r);

/* Producer: copy `len` bytes in as one record of priority `prio`. */
ML_API int ml_ring_write(ml_ring *r, int prio, const void *buf, size_t len);

/*
 * Consumer: copy the next record into `buf` and return its length; its
 * priority goes to *prio when prio is not NULL.
 */
ML_API int ml_ring_read(ml_ring *r, int *prio, void *buf, size_t buflen);

/*
 * Producer, zero-copy: reserve `len` contiguous bytes for a record of
 * priority `prio`, fill them through *ptr, then ml_ring_commit() the bytes
 * actually used (at most `len`). Nothing is visible to the reader before
 * the commit; any later reserve or write call, whether it succeeds or
 * not, drops an uncommitted reservation.
 */
ML_API int ml_ring_reserve(ml_ring *r, int prio, size_t len, void **ptr);
ML_API int ml_ring_commit(ml_ring *r, size_t len);

/*
 * Consumer, zero-copy: point *ptr at the next record and return its length
 * (its priority to *prio). The bytes stay valid and in place until
 * ml_ring_release(); a second peek before the release returns the same
 * record.
 */
ML_API int ml_ring_peek(ml_ring *r, int *prio, const void **ptr);
ML_API int ml_ring_release(ml_ring *r);

/* Geometry and state, for either side. */
struct ml_ring_info {
	uint32_t lanes;            /* 1 or 3 */
	uint32_t max_msg;
	uint32_t capacity;         /* data bytes, all lanes */
	uint32_t lane_capacity[ML_PRIO_COUNT];
	uint32_t lane_used[ML_PRIO_COUNT]; /* bytes written, not yet read */
	uint32_t poisoned;         /* bit i set: lane i is poisoned */
};
ML_API int ml_ring_info(ml_ring *r, struct ml_ring_info *info);

/*
 * Bit mask of lanes this handle found corrupt. A poisoned lane is never
 * read again; records in healthy lanes still are, and once those are empty
 * reads return -EBADMSG rather than -EAGAIN.
 */
ML_API unsigned ml_ring_poisoned(const ml_ring *r);

#ifdef __cplusplus
}
#endif

#endif /* MEMLINK_H */

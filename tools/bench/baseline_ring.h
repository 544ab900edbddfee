/* SPDX-License-Identifier: MIT */
/*
 * The baseline: the simplest honest fixed-slot SPSC ring. Every result of
 * `memlink-bench ring` is a ratio against it, measured in the same run.
 *
 *   offset   0  head (producer's count of slots written), own 128-byte line
 *   offset 128  tail (consumer's count of slots read), own 128-byte line
 *   offset 256  slots: an 8-byte length, then the payload rounded up to 8
 *
 * The slot count is a power of two. The producer re-reads the tail on every
 * write and the consumer the head on every read (no cached copies); C11
 * acquire/release atomics, nothing else.
 */
#ifndef BENCH_BASELINE_RING_H
#define BENCH_BASELINE_RING_H

#include <stddef.h>
#include <stdint.h>

#define BL_RING_HDR 256u

/* A process's private handle; each side uses its own copy. */
struct bl_ring {
	struct bl_shm *shm;
	unsigned char *slots;
	uint64_t nslots;
	uint64_t mask;
	uint32_t slot_size;
	uint32_t max_payload;
	uint64_t head;  /* producer's own index */
	uint64_t tail;  /* consumer's own index */
};

/* Slot size for payloads up to max_payload: 8 + max_payload rounded to 8. */
size_t bl_ring_slot_size(size_t max_payload);

/* The power-of-two slot count whose ring is closest in size to `bytes`. */
size_t bl_ring_slots_for(size_t bytes, size_t max_payload);

/* Shared bytes for such a ring (header included). */
size_t bl_ring_mem_size(size_t nslots, size_t max_payload);

/* Lay out a ring in `mem` (128-aligned); zeroes the indices. */
int bl_ring_init(struct bl_ring *r, void *mem, size_t len, size_t nslots,
		 size_t max_payload);

/* A handle on a ring that bl_ring_init() laid out (from another process). */
int bl_ring_attach(struct bl_ring *r, void *mem, size_t len, size_t nslots,
		   size_t max_payload);

/* 0, -EAGAIN when full, -EMSGSIZE. */
int bl_ring_write(struct bl_ring *r, const void *buf, size_t len);

/* Length copied, -EAGAIN when empty, -EMSGSIZE, -EBADMSG. */
int bl_ring_read(struct bl_ring *r, void *buf, size_t buflen);

#endif /* BENCH_BASELINE_RING_H */

// SPDX-License-Identifier: MIT
/* The baseline fixed-slot SPSC ring; see baseline_ring.h. */
#include "baseline_ring.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

struct bl_shm {
	alignas(128) _Atomic uint64_t head;
	unsigned char pad0[128 - sizeof(uint64_t)];
	alignas(128) _Atomic uint64_t tail;
	unsigned char pad1[128 - sizeof(uint64_t)];
};

_Static_assert(sizeof(struct bl_shm) == BL_RING_HDR, "two 128-byte index lines");

size_t bl_ring_slot_size(size_t max_payload)
{
	return sizeof(uint64_t) + ((max_payload + 7) & ~(size_t)7);
}

size_t bl_ring_slots_for(size_t bytes, size_t max_payload)
{
	size_t slot = bl_ring_slot_size(max_payload);
	size_t lo = 1;

	while (lo * 2 * slot <= bytes)
		lo *= 2;
	/* lo*slot <= bytes < 2*lo*slot: take whichever is nearer in ratio. */
	if (lo * slot < bytes && (double)bytes / (double)(lo * slot) >
				 (double)(2 * lo * slot) / (double)bytes)
		return lo * 2;
	return lo;
}

size_t bl_ring_mem_size(size_t nslots, size_t max_payload)
{
	return BL_RING_HDR + nslots * bl_ring_slot_size(max_payload);
}

int bl_ring_attach(struct bl_ring *r, void *mem, size_t len, size_t nslots,
		   size_t max_payload)
{
	if (!mem || ((uintptr_t)mem % 128) || !nslots || (nslots & (nslots - 1)) ||
	    len < bl_ring_mem_size(nslots, max_payload) || max_payload > UINT32_MAX / 2)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->shm = mem;
	r->slots = (unsigned char *)mem + BL_RING_HDR;
	r->nslots = nslots;
	r->mask = nslots - 1;
	r->slot_size = (uint32_t)bl_ring_slot_size(max_payload);
	r->max_payload = (uint32_t)max_payload;
	r->head = atomic_load_explicit(&r->shm->head, memory_order_acquire);
	r->tail = atomic_load_explicit(&r->shm->tail, memory_order_acquire);
	return 0;
}

int bl_ring_init(struct bl_ring *r, void *mem, size_t len, size_t nslots,
		 size_t max_payload)
{
	if (mem && len >= BL_RING_HDR) {
		struct bl_shm *s = mem;

		atomic_store(&s->head, 0);
		atomic_store(&s->tail, 0);
	}
	return bl_ring_attach(r, mem, len, nslots, max_payload);
}

int bl_ring_write(struct bl_ring *r, const void *buf, size_t len)
{
	uint64_t head = r->head;
	uint64_t tail = atomic_load_explicit(&r->shm->tail, memory_order_acquire);
	unsigned char *slot;
	uint64_t l = len;

	if (head - tail >= r->nslots)
		return -EAGAIN;
	if (len > r->max_payload)
		return -EMSGSIZE;
	slot = r->slots + (head & r->mask) * r->slot_size;
	memcpy(slot, &l, sizeof(l));
	memcpy(slot + sizeof(l), buf, len);
	r->head = head + 1;
	atomic_store_explicit(&r->shm->head, head + 1, memory_order_release);
	return 0;
}

int bl_ring_read(struct bl_ring *r, void *buf, size_t buflen)
{
	uint64_t tail = r->tail;
	uint64_t head = atomic_load_explicit(&r->shm->head, memory_order_acquire);
	const unsigned char *slot;
	uint64_t l;

	if (head == tail)
		return -EAGAIN;
	slot = r->slots + (tail & r->mask) * r->slot_size;
	memcpy(&l, slot, sizeof(l));
	if (l > r->max_payload)
		return -EBADMSG;
	if (l > buflen)
		return -EMSGSIZE;
	memcpy(buf, slot + sizeof(l), l);
	r->tail = tail + 1;
	atomic_store_explicit(&r->shm->tail, tail + 1, memory_order_release);
	return (int)l;
}

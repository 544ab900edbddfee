/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the unit and stress tests. */
#ifndef ML_TESTUTIL_H
#define ML_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A MAP_SHARED anonymous mapping (page aligned) that survives fork(). */
void *tu_shared_map(size_t len);
void tu_shared_unmap(void *p, size_t len);

/* splitmix64: a fast, well-mixed 64-bit hash of x. */
static inline uint64_t tu_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Fill buf with bytes that depend on (stream, seq) only. */
void tu_fill(void *buf, size_t len, uint64_t stream, uint64_t seq);
/* 0 when buf holds exactly what tu_fill(stream, seq) wrote. */
int tu_check(const void *buf, size_t len, uint64_t stream, uint64_t seq);
/*
 * A record's payload for the stress tests: seq itself in the first 8
 * bytes (when they fit), then tu_fill(stream, seq); and its check (0: ok).
 */
void tu_fill_seq(void *buf, size_t len, uint64_t stream, uint64_t seq);
int tu_check_seq(const void *buf, size_t len, uint64_t stream, uint64_t seq);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Message contents and their check, identical for every transport.
 *
 * A payload of `len` bytes carries its sequence number in its first 8 bytes
 * (len >= 8) and seq ^ PL_KEY in its last 8 (len >= 16). The bytes between
 * come from one of PL_VARIANTS prepared patterns (variant seq % PL_VARIANTS),
 * whose 64-bit word sum is precomputed, so the receiver checks a message with
 * two compares and one pass of additions. Payloads under 8 bytes carry no
 * sequence number: variant 0, the receiver checks the length and the sum.
 */
#ifndef BENCH_PAYLOAD_H
#define BENCH_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PL_VARIANTS 4u
#define PL_KEY 0x9e3779b97f4a7c15ull

struct payload {
	size_t len;
	unsigned char *var[PL_VARIANTS];  /* len bytes each, 64-aligned */
	uint64_t mid_sum[PL_VARIANTS];    /* payload_mid_sum() of each */
	void *alloc;
};

int payload_init(struct payload *p, size_t len);
/*
 * Parse "--payload 0,64,1024": up to `max` sizes of at most `limit` bytes
 * into out[]; their number, or -1 for anything else.
 */
int payload_parse_sizes(const char *s, unsigned *out, unsigned max, unsigned long limit);
void payload_free(struct payload *p);

static inline unsigned payload_variant(const struct payload *p, uint64_t seq)
{
	return p->len >= 8 ? (unsigned)(seq % PL_VARIANTS) : 0;
}

/* Sum of the bytes between the stamps, as 64-bit words then single bytes. */
static inline uint64_t payload_mid_sum(const unsigned char *b, size_t len)
{
	size_t i = len >= 8 ? 8 : 0;
	size_t end = len >= 16 ? len - 8 : len;
	uint64_t sum = 0, w;

	for (; i + 8 <= end; i += 8) {
		memcpy(&w, b + i, 8);
		sum += w;
	}
	for (; i < end; i++)
		sum += b[i];
	return sum;
}

/* Stamp seq into its variant and return it: the bytes to send. */
static inline const void *payload_stamp(struct payload *p, uint64_t seq)
{
	unsigned char *b = p->var[payload_variant(p, seq)];
	uint64_t x = seq ^ PL_KEY;

	if (p->len >= 8)
		memcpy(b, &seq, 8);
	if (p->len >= 16)
		memcpy(b + p->len - 8, &x, 8);
	return b;
}

/* Does buf[0..len) hold exactly message `seq`? */
static inline bool payload_check(const struct payload *p, const void *buf,
				 size_t len, uint64_t seq)
{
	const unsigned char *b = buf;
	uint64_t w;

	if (len != p->len)
		return false;
	if (len >= 8) {
		memcpy(&w, b, 8);
		if (w != seq)
			return false;
	}
	if (len >= 16) {
		memcpy(&w, b + len - 8, 8);
		if (w != (seq ^ PL_KEY))
			return false;
	}
	return payload_mid_sum(b, len) == p->mid_sum[payload_variant(p, seq)];
}

/* The sequence number a payload carries (0 when it carries none). */
static inline uint64_t payload_seq(const void *buf, size_t len)
{
	uint64_t w = 0;

	if (len >= 8)
		memcpy(&w, buf, 8);
	return w;
}

#endif /* BENCH_PAYLOAD_H */

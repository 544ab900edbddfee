// SPDX-License-Identifier: MIT
/* Prepared payload patterns; see payload.h. */
#include "payload.h"

#include <errno.h>
#include <stdlib.h>

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int payload_init(struct payload *p, size_t len)
{
	size_t stride = (len + 63) / 64 * 64 + 64;
	unsigned char *m;

	memset(p, 0, sizeof(*p));
	if (posix_memalign(&p->alloc, 64, stride * PL_VARIANTS))
		return -ENOMEM;
	m = p->alloc;
	p->len = len;
	for (unsigned v = 0; v < PL_VARIANTS; v++) {
		unsigned char *b = m + v * stride;

		for (size_t i = 0; i < len; i += 8) {
			uint64_t w = mix64(((uint64_t)v << 40) ^ i ^ (uint64_t)len << 20);
			size_t n = len - i < 8 ? len - i : 8;

			memcpy(b + i, &w, n);
		}
		p->var[v] = b;
		p->mid_sum[v] = payload_mid_sum(b, len);
	}
	return 0;
}

void payload_free(struct payload *p)
{
	free(p->alloc);
	memset(p, 0, sizeof(*p));
}

int payload_parse_sizes(const char *s, unsigned *out, unsigned max, unsigned long limit)
{
	unsigned n = 0;

	while (*s) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(s, &end, 0);
		if (errno || end == s || *s == '-' || v > limit || n == max)
			return -1;
		out[n++] = (unsigned)v;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	return n ? (int)n : -1;
}

// SPDX-License-Identifier: MIT
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "testutil.h"

void *tu_shared_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void tu_shared_unmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

/* Word-wise so that checking 10 million records stays cheap. */
void tu_fill(void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	uint64_t x = tu_mix(stream * 0x100000001b3ull ^ seq);
	unsigned char *b = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		x = tu_mix(x);
		memcpy(b + i, &x, 8);
	}
	x = tu_mix(x);
	for (; i < len; i++, x >>= 8)
		b[i] = (unsigned char)x;
}

int tu_check(const void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	uint64_t x = tu_mix(stream * 0x100000001b3ull ^ seq), w;
	const unsigned char *b = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		x = tu_mix(x);
		memcpy(&w, b + i, 8);
		if (w != x)
			return -1;
	}
	x = tu_mix(x);
	for (; i < len; i++, x >>= 8)
		if (b[i] != (unsigned char)x)
			return -1;
	return 0;
}

void tu_fill_seq(void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	if (len >= 8) {
		memcpy(buf, &seq, 8);
		tu_fill((char *)buf + 8, len - 8, stream, seq);
	} else {
		tu_fill(buf, len, stream, seq);
	}
}

int tu_check_seq(const void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	uint64_t s;

	if (len >= 8) {
		memcpy(&s, buf, 8);
		if (s != seq)
			return -1;
		return tu_check((const char *)buf + 8, len - 8, stream, seq);
	}
	return tu_check(buf, len, stream, seq);
}

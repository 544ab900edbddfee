// SPDX-License-Identifier: MIT
/*
 * Guard pages around shared mappings, for the channel fuzz targets. ASan
 * sees neither the size of an mmap'd region nor what lies next to it: the
 * kernel packs mappings together, so an access a few bytes past the
 * library's mapping of the channel would silently hit another one. With
 * -Wl,--wrap=mmap,--wrap=munmap every MAP_SHARED mapping is placed between
 * two inaccessible pages instead, and such an access faults.
 */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "fuzz.h"

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);

/* The guarded mappings alive; the fuzz targets hold a few at a time. */
static void *guarded[64];

static size_t round_up(size_t len)
{
	return (len + FUZZ_GUARD_PAGE - 1) / FUZZ_GUARD_PAGE * FUZZ_GUARD_PAGE;
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	size_t span;
	uint8_t *res, *p;
	unsigned slot = 0;

	while (slot < 64 && guarded[slot])
		slot++;
	/* Also the runtime links through here: leave its own mappings be. */
	if (addr || !(flags & MAP_SHARED) || fd < 0 || !len || slot == 64)
		return __real_mmap(addr, len, prot, flags, fd, off);
	span = round_up(len) + 2 * FUZZ_GUARD_PAGE;
	res = __real_mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	p = __real_mmap(res + FUZZ_GUARD_PAGE, len, prot, flags | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		__real_munmap(res, span);
		return MAP_FAILED;
	}
	guarded[slot] = p;
	return p;
}

/* A guarded mapping goes with its guards. */
int __wrap_munmap(void *addr, size_t len)
{
	for (unsigned i = 0; i < 64; i++) {
		if (addr && guarded[i] == addr) {
			guarded[i] = NULL;
			return __real_munmap((uint8_t *)addr - FUZZ_GUARD_PAGE,
					     round_up(len) + 2 * FUZZ_GUARD_PAGE);
		}
	}
	return __real_munmap(addr, len);
}

// SPDX-License-Identifier: MIT
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *ml__aligned_zalloc(size_t size, size_t align, void **base)
{
	uintptr_t p;

	if (size > SIZE_MAX - align)
		return NULL;
	*base = calloc(1, size + align - 1);
	if (!*base)
		return NULL;
	p = ((uintptr_t)*base + align - 1) & ~(uintptr_t)(align - 1);
	return (void *)p;
}

// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "internal.h"

int ml__copy_opts(void *dst, size_t dst_size, const void *src, size_t src_size,
		  size_t min_size)
{
	const unsigned char *s = src;

	memset(dst, 0, dst_size);
	if (!src)
		return 0;
	if (src_size < min_size)
		return -EINVAL;
	for (size_t i = dst_size; i < src_size; i++)
		if (s[i])
			return -EINVAL;
	memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
	return 0;
}

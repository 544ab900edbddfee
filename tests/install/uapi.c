// SPDX-License-Identifier: MIT
/* Compiled by test-install.sh: <linux/memlink.h> through pkg-config's flags. */
#include <linux/memlink.h>
#include <memlink.h>

int main(void)
{
	struct memlink_create c = { .size = sizeof(c), .region_size = 1 << 20, .mode = 0600 };
	unsigned long req = MEMLINK_IOC_CREATE;

	return c.size == 0 || req == 0 || MEMLINK_ABI_VERSION < 1;
}

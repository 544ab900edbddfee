// SPDX-License-Identifier: MIT
/* macOS has no cross-process membarrier: senders always fence (chan.c). */
#include <errno.h>

#include "backend.h"

bool ml__os_fence_register(void)
{
	return false;
}

int ml__os_fence_remote(void)
{
	return -ENOTSUP;
}

// SPDX-License-Identifier: MIT
/* Windows: FlushProcessWriteBuffers() reaches only this process: senders always fence (chan.c). */
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

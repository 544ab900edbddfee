// SPDX-License-Identifier: MIT
/*
 * Where there is no barrier that reaches other processes (macOS; Windows,
 * whose FlushProcessWriteBuffers() reaches only the caller's process),
 * senders always fence (chan.c). Built by the darwin and win backends.
 */
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

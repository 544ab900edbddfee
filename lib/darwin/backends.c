// SPDX-License-Identifier: MIT
#include "backend.h"

/* macOS has one backend: POSIX shared memory and address waits. */
const struct ml__backend *const ml__backends[] = {
	&ml__backend_darwin,
	NULL,
};

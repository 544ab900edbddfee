// SPDX-License-Identifier: MIT
#include "backend.h"

/* The kernel module when it is loaded, else plain shared memory. */
const struct ml__backend *const ml__backends[] = {
	&ml__backend_kmod,
	&ml__backend_linux,
	NULL,
};

// SPDX-License-Identifier: MIT
#include "backend.h"

const struct ml__backend *const ml__backends[] = {
	&ml__backend_win,
	NULL,
};

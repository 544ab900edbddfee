// SPDX-License-Identifier: MIT
/* Choosing a backend: an explicit option, then $MEMLINK_BACKEND, then the
 * first backend of this build that is available here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

int ml__backend_pick(enum ml_backend want, const struct ml__backend **out)
{
	const char *env = getenv("MEMLINK_BACKEND");
	const struct ml__backend *const *b;

	if (want == ML_BACKEND_AUTO && env && *env && strcmp(env, "auto")) {
		for (b = ml__backends; *b; b++)
			if (!strcmp((*b)->name, env))
				break;
		if (!*b)
			return -ENODEV;
		want = (*b)->id;
	}
	for (b = ml__backends; *b; b++) {
		if (want != ML_BACKEND_AUTO && (*b)->id != want)
			continue;
		if (!(*b)->available())
			continue;
		*out = *b;
		return 0;
	}
	return -ENODEV;
}

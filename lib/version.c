// SPDX-License-Identifier: MIT
#include "memlink.h"

#define ML__STR(x) #x
#define ML__XSTR(x) ML__STR(x)

const char *ml_version(void)
{
	return ML__XSTR(MEMLINK_VERSION_MAJOR) "." ML__XSTR(MEMLINK_VERSION_MINOR) "."
		ML__XSTR(MEMLINK_VERSION_PATCH);
}

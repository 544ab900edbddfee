// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "memlink.h"

/* memlink's own meaning of the errnos it returns; others go to strerror(). */
const char *ml_strerror(int err)
{
	int e = err < 0 ? -err : err;

	switch (e) {
	case 0:
		return "Success";
	case EINVAL:
		return "Invalid argument";
	case EMSGSIZE:
		return "Message larger than the ring's limit, or buffer too small for the next message";
	case EAGAIN:
		return "Lane full (write) or nothing to read (read); try again";
	case EBADMSG:
		return "Shared memory holds a corrupt index, length or header; the lane is poisoned";
	case EPROTO:
		return "Memory does not hold a memlink ring of this layout version";
	case ENOMEM:
		return "Out of memory";
	case EBUSY:
		return "A zero-copy peek is still outstanding";
	default:
		return strerror(e);
	}
}

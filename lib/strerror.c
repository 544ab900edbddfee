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
		return "Memory does not hold a memlink ring, channel or topic of this kind and layout version";
	case ENOMEM:
		return "Out of memory";
	case EBUSY:
		return "A zero-copy peek is still outstanding";
	case ENOENT:
		return "No such channel (or it is still starting)";
	case EEXIST:
		return "A live channel of that name exists";
	case ECONNREFUSED:
		return "Every client slot of the channel is taken";
	case ETIMEDOUT:
		return "Timed out";
	case EPIPE:
		return "The peer is gone: the daemon died or shut down, or the client left";
	case ENODEV:
		return "The requested memlink backend is not available here";
	case ENOTSUP:
		return "Not supported by this backend";
	case EACCES:
		return "Permission denied by the channel's mode, or its name is held by another user";
	case EPERM:
		return "The channel is owned by another user than the daemon the client requires";
	case ENOSPC:
		return "Over a memlink.ko limit (region size, total, count, or this user's share)";
	case EISCONN:
		return "A client joined the channel (ML_CHAN_JOINED: *client is its id)";
	case ECONNRESET:
		return "A client left the channel (ML_CHAN_LEFT: its id names nobody any more)";
	case EOWNERDEAD:
		return "A peer died in the middle of a message; that message was dropped";
	case ML_ESTALE:
		return "The record viewed was overwritten meanwhile (lossy topic); it is counted lost";
	default:
		return strerror(e);
	}
}

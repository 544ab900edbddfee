// SPDX-License-Identifier: MIT
/*
 * The linux backend's channels: the listening "@memlink.<channel>"
 * sockets of this network namespace, as /proc/net/unix shows them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lnx.h"

/* __SO_ACCEPTCON in the Flags column: a socket that listens. */
#define SO_ACCEPTCON_FLAG 0x10000ul
#define TYPE_SEQPACKET 5u

int ml__lnx_list(int (*fn)(const char *name, void *arg), void *arg)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[512];
	int ret = 0;

	if (!f)
		return errno == ENOENT ? -ENOTSUP : -errno;
	/* Num: RefCount Protocol Flags Type St Inode Path */
	while (!ret && fgets(line, sizeof(line), f)) {
		unsigned long flags;
		unsigned type;
		char path[256];
		const char *name;

		if (sscanf(line, "%*s %*s %*s %lx %x %*s %*s %255s", &flags, &type, path) != 3)
			continue;
		/* Abstract names show with '@' for their leading NUL. */
		if (!(flags & SO_ACCEPTCON_FLAG) || type != TYPE_SEQPACKET || path[0] != '@' ||
		    strncmp(path + 1, ML__WIRE_PREFIX, strlen(ML__WIRE_PREFIX)))
			continue;
		name = path + 1 + strlen(ML__WIRE_PREFIX);
		if (ml__name_ok(name))
			ret = fn(name, arg);
	}
	fclose(f);
	return ret;
}

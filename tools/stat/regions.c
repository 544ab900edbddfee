// SPDX-License-Identifier: MIT
/*
 * memlink-stat --regions: memlink.ko's regions, like ipcs(1), from its
 * MEMLINK_IOC_LIST: those of this IPC namespace that this process could
 * attach (root sees all of them), and the module-wide counts for root.
 */
#include <stdbool.h>
#include <stdio.h>

#include "stat.h"

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../../include/uapi/linux/memlink.h"

static int list(int fd, struct memlink_list *l, struct memlink_info **v)
{
	for (uint32_t room = 0;;) {
		memset(l, 0, sizeof(*l));
		l->size = sizeof(*l);
		l->entries = (uint64_t)(uintptr_t)*v;
		l->entry_size = sizeof(**v);
		l->max_entries = room;
		if (ioctl(fd, MEMLINK_IOC_LIST, l))
			return -errno;
		if (l->total <= room)
			return 0;
		free(*v);
		room = l->total + 16;
		*v = calloc(room, sizeof(**v));
		if (!*v)
			return -ENOMEM;
	}
}

int ml_stat_regions(bool json)
{
	struct memlink_info *v = NULL;
	struct memlink_list l;
	int fd = open("/dev/memlink", O_RDWR | O_CLOEXEC), err;

	if (fd < 0) {
		fprintf(stderr, "memlink-stat: /dev/memlink: %s (is memlink.ko loaded?)\n",
			strerror(errno));
		return 1;
	}
	err = list(fd, &l, &v);
	close(fd);
	if (err) {
		fprintf(stderr, "memlink-stat: cannot list regions: %s\n", strerror(-err));
		free(v);
		return 1;
	}
	if (!json) {
		printf("# regions listed %u; yours %u, %llu bytes", l.count, l.user_regions,
		       (unsigned long long)l.user_bytes);
		if (l.all_regions || l.all_pages)
			printf("; all %u, %llu bytes, %llu pages", l.all_regions,
			       (unsigned long long)l.all_bytes, (unsigned long long)l.all_pages);
		printf("\n%-40s %12s %6s %6s %5s %8s %7s %s\n", "# NAME", "SIZE", "UID", "GID",
		       "MODE", "ATTACHED", "WAITERS", "CREATOR");
	}
	for (uint32_t i = 0; i < l.count; i++) {
		const struct memlink_info *r = &v[i];

		if (json)
			printf("{\"region\":\"%s\",\"size\":%llu,\"uid\":%u,\"gid\":%u,"
			       "\"mode\":\"%04o\",\"attached\":%u,\"waiters\":%u,"
			       "\"creator_alive\":%s,\"wakes\":%llu}\n",
			       r->name, (unsigned long long)r->region_size, r->uid, r->gid, r->mode,
			       r->attached, r->waiters, r->creator_alive ? "true" : "false",
			       (unsigned long long)r->wakes);
		else
			printf("%-40s %12llu %6u %6u %04o %8u %7u %s\n", r->name,
			       (unsigned long long)r->region_size, r->uid, r->gid, r->mode,
			       r->attached, r->waiters, r->creator_alive ? "alive" : "DEAD");
	}
	free(v);
	return 0;
}
#else
int ml_stat_regions(bool json)
{
	(void)json;
	fprintf(stderr, "memlink-stat: --regions lists memlink.ko's regions: Linux only\n");
	return 1;
}
#endif

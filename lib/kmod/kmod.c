// SPDX-License-Identifier: MIT
/*
 * The "kmod" backend: regions of memlink.ko (/dev/memlink, see
 * include/uapi/linux/memlink.h). The channel is one region whose creator is
 * the daemon; waits and wakes are MEMLINK_IOC_WAIT/WAKE on the word's offset,
 * and the kernel fails every waiter with EPIPE the moment the daemon's file
 * goes (exit, crash, SIGKILL): no polling for the daemon's liveness.
 *
 * The kernel knows only a region's creator, so each client bell is a
 * one-page region of its own whose creator is the bell's holder:
 *   ch.<channel>            the channel (bell 0: its creator, the daemon)
 *   cb<bell>.<channel>      bell `bell` >= 1, held by creating it
 * The prefixes keep the two kinds apart whatever the channel is called
 * ("ch." never begins "cb<digit>"). Names that would pass 63 bytes use a
 * 64-bit hash of the channel name instead: "chh.<16 hex>", "cbh<bell>.<16 hex>".
 *
 * Descriptors: fd the channel region's file, bell_h[b] the file of bell
 * b's region (the holder's own file, or one attached read-only to look at
 * it; bell regions are mode 0644 and hold nothing). All
 * are O_CLOEXEC; a fork()ed child without exec keeps them, and with them
 * the daemon's (or a client's) liveness, until it exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The module's ABI header, from this tree (no -Iinclude/uapi needed). */
#include "../../include/uapi/linux/memlink.h"

#include "backend.h"
#include "internal.h"

#define ML_KMOD_DEV "/dev/memlink"
#define FD(s) ((s)->fd)

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	int ret;

	do
		ret = ioctl(fd, cmd, arg);
	while (ret < 0 && errno == EINTR && cmd != MEMLINK_IOC_WAIT);
	return ret < 0 ? -errno : ret;
}

static int dev_open(void)
{
	int fd = open(ML_KMOD_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static bool kmod_available(void)
{
	struct memlink_handshake hs = { .size = sizeof(hs) };
	const uint64_t need = MEMLINK_FEAT_WAIT | MEMLINK_FEAT_PEER_GONE | MEMLINK_FEAT_REPLACE |
			      MEMLINK_FEAT_LIST;
	int fd = dev_open(), err;

	if (fd < 0)
		return false;
	err = xioctl(fd, MEMLINK_IOC_HANDSHAKE, &hs);
	close(fd);
	return !err && hs.abi_version == MEMLINK_ABI_VERSION && (hs.features & need) == need;
}

/* The region name of the channel (bell 0) or of client bell `bell`. */
static void region_name(char out[MEMLINK_NAME_MAX], const char *chan, unsigned bell)
{
	int n = bell ? snprintf(out, MEMLINK_NAME_MAX, "cb%u.%s", bell, chan) :
		       snprintf(out, MEMLINK_NAME_MAX, "ch.%s", chan);

	if (n < 0 || n >= MEMLINK_NAME_MAX) {
		unsigned long long h = (unsigned long long)ml__fnv1a(chan);

		if (bell)
			snprintf(out, MEMLINK_NAME_MAX, "cbh%u.%016llx", bell, h);
		else
			snprintf(out, MEMLINK_NAME_MAX, "chh.%016llx", h);
	}
}

/* Create region `name` on a new file; the descriptor or -errno. */
static int region_create(const char *name, size_t len, unsigned mode, uint32_t flags)
{
	struct memlink_create c = {
		.size = sizeof(c),
		.flags = flags,
		.region_size = len,
		.mode = mode,
	};
	int fd = dev_open(), err;

	if (fd < 0)
		return fd;
	memcpy(c.name, name, strlen(name) + 1);
	err = xioctl(fd, MEMLINK_IOC_CREATE, &c);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Attach to region `name` on a new file; the descriptor or -errno. */
static int region_attach(const char *name, uint32_t flags, uint64_t *size)
{
	struct memlink_attach a = { .size = sizeof(a), .flags = flags };
	int fd = dev_open(), err;

	if (fd < 0)
		return fd;
	memcpy(a.name, name, strlen(name) + 1);
	err = xioctl(fd, MEMLINK_IOC_ATTACH, &a);
	if (err) {
		close(fd);
		return err;
	}
	if (size)
		*size = a.region_size;
	return fd;
}

static int region_info(int fd, struct memlink_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return xioctl(fd, MEMLINK_IOC_INFO, info);
}

static int kmod_owner(struct ml__shm *s, uint32_t *uid)
{
	struct memlink_info info;
	int err = region_info(FD(s), &info);

	if (!err)
		*uid = info.uid;
	return err;
}

static int map(struct ml__shm *s, int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	s->base = p;
	s->len = len;
	return 0;
}

static int kmod_create(struct ml__shm *s, size_t len, unsigned mode)
{
	char name[MEMLINK_NAME_MAX];
	int fd, err;

	region_name(name, s->name, 0);
	/* A dead daemon's region is replaced; a live one's gives EEXIST. */
	fd = region_create(name, len, mode, MEMLINK_CREATE_REPLACE);
	if (fd < 0)
		return fd;
	err = map(s, fd, len);
	if (err) {
		close(fd);
		return err;
	}
	s->fd = fd;
	return 0;
}

static int kmod_open(struct ml__shm *s)
{
	char name[MEMLINK_NAME_MAX];
	uint64_t size = 0;
	int fd, err;

	region_name(name, s->name, 0);
	/* -EPIPE: the daemon is gone (the linux backend's connect says so too). */
	fd = region_attach(name, 0, &size);
	if (fd < 0)
		return fd;
	err = size && size <= SIZE_MAX ? map(s, fd, (size_t)size) : -EPROTO;
	if (err) {
		close(fd);
		return err;
	}
	s->fd = fd;
	return 0;
}

static void bell_drop(struct ml__shm *s, unsigned bell)
{
	if (s->bell_h[bell] >= 0)
		close((int)s->bell_h[bell]);
	s->bell_h[bell] = -1;
}

static void kmod_close(struct ml__shm *s)
{
	if (s->base)
		munmap(s->base, s->len);
	s->base = NULL;
	for (unsigned b = 0; b < ML__BELLS; b++)
		bell_drop(s, b);
	/*
	 * The daemon's file going marks the region dead: clients get EPIPE and
	 * the next daemon replaces the name; the region itself goes with the
	 * last file bound to it.
	 */
	if (FD(s) >= 0)
		close(FD(s));
	s->fd = -1;
}

static int kmod_wait(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word,
		     uint32_t expected, int64_t timeout_ns)
{
	struct memlink_wait w = {
		.size = sizeof(w),
		.offset = (uint64_t)((uint8_t *)word - s->base),
		.expected = expected,
		/* The kernel's 0 means forever; ours means "do not sleep". */
		.timeout_ns = timeout_ns < 0 ? 0 : timeout_ns == 0 ? 1 : (uint64_t)timeout_ns,
	};
	int err;

	(void)bell;
	err = xioctl(FD(s), MEMLINK_IOC_WAIT, &w);
	if (err == -EAGAIN)
		return 0;
	return err;
}

static int kmod_wake(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word)
{
	struct memlink_wake w = {
		.size = sizeof(w),
		.offset = (uint64_t)((uint8_t *)word - s->base),
		.count = UINT32_MAX,
	};
	int ret;

	(void)bell;
	ret = xioctl(FD(s), MEMLINK_IOC_WAKE, &w);
	return ret < 0 ? ret : 0;
}

static int kmod_hold(struct ml__shm *s, unsigned bell)
{
	char name[MEMLINK_NAME_MAX];
	long page = sysconf(_SC_PAGESIZE);
	int fd;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (bell == 0)
		return s->creator ? 0 : -EBUSY;
	/* Holding it already, or looking at another's: start afresh. */
	bell_drop(s, bell);
	/*
	 * Readable by all: the page holds nothing, and a daemon of another
	 * user (or group) must attach it, read-only, to see the holder live.
	 */
	region_name(name, s->name, bell);
	fd = region_create(name, page > 0 ? (size_t)page : 4096, 0644,
			   MEMLINK_CREATE_REPLACE);
	/* Held by one alive, or left by a dead holder of another user. */
	if (fd == -EEXIST || fd == -EACCES)
		return -EBUSY;
	if (fd < 0)
		return fd;
	s->bell_h[bell] = fd;
	return 0;
}

static void kmod_unhold(struct ml__shm *s, unsigned bell)
{
	if (bell && bell < ML__BELLS)
		bell_drop(s, bell);
}

static int kmod_alive(struct ml__shm *s, unsigned bell)
{
	struct memlink_info info;
	char name[MEMLINK_NAME_MAX];
	int fd, err;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (bell == 0) {
		err = region_info(FD(s), &info);
		return err ? err : info.creator_alive != 0;
	}
	if (s->bell_h[bell] >= 0) {
		err = region_info((int)s->bell_h[bell], &info);
		if (err)
			return err;
		if (info.creator_alive)
			return 1;
		/*
		 * That holder is gone. Let go of its region (else it lingers
		 * while we hold it) and look again: a new holder may have
		 * replaced it under the same name.
		 */
		bell_drop(s, bell);
	}
	region_name(name, s->name, bell);
	fd = region_attach(name, MEMLINK_ATTACH_RDONLY, NULL);
	if (fd == -ENOENT || fd == -EPIPE)
		return 0;
	if (fd < 0)
		return fd;
	s->bell_h[bell] = fd;
	return 1;
}

static int kmod_fd(struct ml__shm *s, unsigned bell)
{
	(void)bell; /* the region's fd: any wake in the region */
	return FD(s) >= 0 ? FD(s) : -ENOTSUP;
}

/*
 * Channels from the module's listing (MEMLINK_IOC_LIST): the "ch.<channel>"
 * regions of this IPC namespace that this process may attach.
 */
static int kmod_list(int (*fn)(const char *name, void *arg), void *arg)
{
	struct memlink_list l = { .size = sizeof(l) };
	struct memlink_info *v = NULL;
	char name[MEMLINK_NAME_MAX];
	int fd = dev_open(), ret = 0;

	if (fd < 0)
		return fd;
	/* Ask for the count, then for the entries, until they fit. */
	for (uint32_t room = 0;;) {
		l.entries = (uint64_t)(uintptr_t)v;
		l.entry_size = sizeof(*v);
		l.max_entries = room;
		ret = xioctl(fd, MEMLINK_IOC_LIST, &l);
		if (ret || l.total <= room)
			break;
		free(v);
		room = l.total + 16;
		v = calloc(room, sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			break;
		}
	}
	close(fd);
	for (uint32_t i = 0; !ret && v && i < l.count; i++)
		if (sscanf(v[i].name, "ch.%63s", name) == 1 && ml__name_ok(name))
			ret = fn(name, arg);
	free(v);
	return ret;
}

/*
 * Nothing to collect: the module frees a region when its last file goes,
 * and a new daemon replaces one whose creator died.
 */
static int kmod_gc(const char *name)
{
	(void)name;
	return 0;
}

/* Reading the region's wake count clears EPOLLIN until the next wake. */
static void kmod_fd_ack(struct ml__shm *s)
{
	uint64_t wakes;

	if (read(FD(s), &wakes, sizeof(wakes)) != sizeof(wakes))
		return;
}

const struct ml__backend ml__backend_kmod = {
	.name = "kmod",
	.id = ML_BACKEND_KMOD,
	.notifies_peer_gone = true,
	.available = kmod_available,
	.create = kmod_create,
	.open = kmod_open,
	.owner = kmod_owner,
	.close = kmod_close,
	.wait = kmod_wait,
	.wake = kmod_wake,
	.hold = kmod_hold,
	.unhold = kmod_unhold,
	.alive = kmod_alive,
	.fd = kmod_fd,
	.list = kmod_list,
	.gc = kmod_gc,
	.fd_ack = kmod_fd_ack,
};

// SPDX-License-Identifier: MIT
/*
 * The "kmod" backend: regions of memlink.ko (/dev/memlink, see
 * include/uapi/linux/memlink.h). The daemon creates every region, so the
 * kernel fails every waiter with EPIPE the moment the daemon's file goes
 * (exit, crash, SIGKILL): no polling for the daemon's liveness.
 *   ch.<channel>            the control region (chan_layout.h), SEALED:
 *                           clients attach it read-only; its bell word
 *                           (MEMLINK_CREATE_BELL) is the daemon's doorbell,
 *                           which a client rings with MEMLINK_WAKE_BUMP
 *   ca<slot>.<channel>      slot `slot`'s area, ONCE: the one client that
 *                           attaches it first has it, nobody else can; the
 *                           daemon makes it anew for every connection
 * So a client maps its own area and reads the control region, and can
 * neither map another client's area nor write what the daemon wrote.
 * The prefixes keep the kinds apart whatever the channel is called ("ch."
 * never begins "ca<digit>"). Names that would pass 63 bytes use a 64-bit
 * hash of the channel name instead: "chh.<16 hex>", "cah<slot>.<16 hex>".
 *
 * A client's liveness is its area's file: while it is bound, the area has
 * two files (MEMLINK_IOC_INFO's attached); its release, at exit or crash,
 * leaves one. Descriptors: fd the control region's file, bell_h[1 + i]
 * slot i's area file (the daemon's creator file, or the client's own).
 * All are O_CLOEXEC; a fork()ed child without exec keeps them, and with
 * them the daemon's (or a client's) liveness, until it exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The module's ABI header, from this tree (no -Iinclude/uapi needed). */
#include "../../include/uapi/linux/memlink.h"

#include "backend.h"
#include "chan_layout.h"
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
			      MEMLINK_FEAT_LIST | MEMLINK_FEAT_PRIVATE;
	int fd = dev_open(), err;

	if (fd < 0)
		return false;
	err = xioctl(fd, MEMLINK_IOC_HANDSHAKE, &hs);
	close(fd);
	return !err && hs.abi_version == MEMLINK_ABI_VERSION && (hs.features & need) == need;
}

/* The region name of the control region (bell 0) or of bell `bell`'s area. */
static void region_name(char out[MEMLINK_NAME_MAX], const char *chan, unsigned bell)
{
	int n = bell ? snprintf(out, MEMLINK_NAME_MAX, "ca%u.%s", bell - 1, chan) :
		       snprintf(out, MEMLINK_NAME_MAX, "ch.%s", chan);

	if (n < 0 || n >= MEMLINK_NAME_MAX) {
		unsigned long long h = (unsigned long long)ml__fnv1a(chan);

		if (bell)
			snprintf(out, MEMLINK_NAME_MAX, "cah%u.%016llx", bell - 1, h);
		else
			snprintf(out, MEMLINK_NAME_MAX, "chh.%016llx", h);
	}
}

/* Create region `name` on a new file; the descriptor or -errno. */
static int region_create(const char *name, size_t len, unsigned mode, uint32_t flags,
			 uint64_t bell_offset)
{
	struct memlink_create c = {
		.size = sizeof(c),
		.flags = flags,
		.region_size = len,
		.mode = mode,
		.bell_offset = bell_offset,
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

static void *map(int fd, size_t len, bool writable)
{
	void *p = mmap(NULL, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int kmod_create(struct ml__shm *s, size_t len, unsigned mode)
{
	char name[MEMLINK_NAME_MAX];
	int fd;

	region_name(name, s->name, 0);
	/* A dead daemon's region is replaced; a live one's gives EEXIST. */
	fd = region_create(name, len, mode,
			   MEMLINK_CREATE_REPLACE | MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL,
			   offsetof(struct ml__ctl, bell.seq));
	if (fd < 0)
		return fd;
	s->base = map(fd, len, true);
	if (!s->base) {
		int err = -errno;

		close(fd);
		return err;
	}
	s->len = len;
	s->fd = fd;
	return 0;
}

static int kmod_open(struct ml__shm *s)
{
	char name[MEMLINK_NAME_MAX];
	uint64_t size = 0;
	int fd, err = -EPROTO;

	region_name(name, s->name, 0);
	/* -EPIPE: the daemon is gone (the linux backend's connect says so too). */
	fd = region_attach(name, MEMLINK_ATTACH_RDONLY, &size);
	if (fd < 0)
		return fd;
	if (size && size <= SIZE_MAX) {
		s->base = map(fd, (size_t)size, false);
		err = s->base ? 0 : -errno;
	}
	if (err) {
		close(fd);
		return err;
	}
	s->len = (size_t)size;
	s->fd = fd;
	return 0;
}

/* Daemon: slot i's area, new (a client that had the old one keeps only that). */
static int kmod_area_new(struct ml__shm *s, unsigned slot, size_t len)
{
	char name[MEMLINK_NAME_MAX];
	int fd;

	if (slot >= ML_CHAN_MAX_CLIENTS || s->area[slot])
		return -EINVAL;
	region_name(name, s->name, 1 + slot);
	/* Our own dead area (its file let go by area_free) is replaced. */
	fd = region_create(name, len, s->mode, MEMLINK_CREATE_REPLACE | MEMLINK_CREATE_ONCE, 0);
	if (fd < 0)
		return fd;
	s->area[slot] = map(fd, len, true);
	if (!s->area[slot]) {
		int err = -errno;

		close(fd);
		return err;
	}
	s->bell_h[1 + slot] = fd;
	return 0;
}

static void kmod_area_free(struct ml__shm *s, unsigned slot)
{
	if (slot >= ML_CHAN_MAX_CLIENTS)
		return;
	if (s->area[slot])
		munmap(s->area[slot], s->area_len);
	s->area[slot] = NULL;
	/*
	 * The daemon's file going makes the area dead: its client, should it
	 * live on, gets EPIPE; the name goes to the next area_new().
	 */
	if (s->bell_h[1 + slot] >= 0)
		close((int)s->bell_h[1 + slot]);
	s->bell_h[1 + slot] = -1;
}

/* Client: take slot i's area, if nobody has since the daemon made it. */
static int kmod_claim(struct ml__shm *s, unsigned slot)
{
	char name[MEMLINK_NAME_MAX];
	uint64_t size = 0;
	void *p;
	int fd;

	if (slot >= ML_CHAN_MAX_CLIENTS || s->area[slot])
		return -EINVAL;
	region_name(name, s->name, 1 + slot);
	fd = region_attach(name, 0, &size);
	/* Taken, being made anew, or not there (yet): not ours. */
	if (fd == -EBUSY || fd == -EPIPE || fd == -ENOENT)
		return -EBUSY;
	if (fd < 0)
		return fd;
	p = size && size <= SIZE_MAX ? map(fd, (size_t)size, true) : NULL;
	if (!p) {
		close(fd);
		return -EPROTO;
	}
	s->area[slot] = p;
	s->area_len = (size_t)size;
	s->bell_h[1 + slot] = fd;
	return 0;
}

/* Daemon: did a client take slot i's area since it was made? */
static int kmod_area_used(struct ml__shm *s, unsigned slot)
{
	struct memlink_info info;
	int err;

	if (slot >= ML_CHAN_MAX_CLIENTS || s->bell_h[1 + slot] < 0)
		return 0;
	err = region_info((int)s->bell_h[1 + slot], &info);
	if (err)
		return err;
	return info.attached > 1 || info.detached > 0;
}

static void kmod_close(struct ml__shm *s)
{
	if (s->base)
		munmap(s->base, s->len);
	s->base = NULL;
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		kmod_area_free(s, i);
	/*
	 * The daemon's file going marks the region dead: clients get EPIPE and
	 * the next daemon replaces the name; the region itself goes with the
	 * last file bound to it.
	 */
	if (FD(s) >= 0)
		close(FD(s));
	s->fd = -1;
	if (s->poll_fd >= 0)
		close(s->poll_fd);
	s->poll_fd = -1;
}

/* The file and offset of a word: in the control region or in an area. */
static int word_at(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word, uint64_t *off)
{
	uint8_t *w = (uint8_t *)word, *base = s->base;
	size_t len = s->len;
	int fd = FD(s);

	if (bell) {
		if (bell >= ML__BELLS || s->bell_h[bell] < 0)
			return -EINVAL;
		base = s->area[bell - 1];
		len = s->area_len;
		fd = (int)s->bell_h[bell];
	}
	if (!base || w < base || w + sizeof(*word) > base + len)
		return -EINVAL;
	*off = (uint64_t)(w - base);
	return fd;
}

/*
 * The daemon: was a client's file released since we last looked
 * (EPOLLPRI)? Then who is alive must be asked (shm.changes).
 */
static bool client_gone_seen(struct ml__shm *s)
{
	struct pollfd p = { .fd = FD(s), .events = POLLPRI };

	if (!s->creator || FD(s) < 0 || poll(&p, 1, 0) != 1 || !(p.revents & POLLPRI))
		return false;
	atomic_fetch_add_explicit(&s->changes, 1, memory_order_release);
	return true;
}

static int kmod_wait(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word,
		     uint32_t expected, int64_t timeout_ns)
{
	struct memlink_wait w = {
		.size = sizeof(w),
		.expected = expected,
		/* The kernel's 0 means forever; ours means "do not sleep". */
		.timeout_ns = timeout_ns < 0 ? 0 : timeout_ns == 0 ? 1 : (uint64_t)timeout_ns,
	};
	uint64_t off = 0;
	int fd = word_at(s, bell, word, &off), err;

	if (fd < 0)
		return fd;
	w.offset = off;
	err = xioctl(fd, MEMLINK_IOC_WAIT, &w);
	/*
	 * The daemon, woken (a module that wakes it when a client's file goes)
	 * or at the end of its slice: a client gone is news for chan.c.
	 */
	if (bell == 0 && s->creator && client_gone_seen(s)) {
		uint64_t wakes;

		/* Marked seen, lest every later wait find it again. */
		if (read(fd, &wakes, sizeof(wakes)) != sizeof(wakes))
			return err == -EAGAIN ? 0 : err;
	}
	if (err == -EAGAIN)
		return 0;
	return err;
}

static int kmod_wake(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word)
{
	struct memlink_wake w = {
		.size = sizeof(w),
		/* A client reads the control region only: the kernel rings for it. */
		.flags = bell == 0 && !s->creator ? MEMLINK_WAKE_BUMP : 0,
		.count = UINT32_MAX,
	};
	uint64_t off = 0;
	int fd = word_at(s, bell, word, &off), ret;

	if (fd < 0)
		return fd;
	w.offset = off;
	ret = xioctl(fd, MEMLINK_IOC_WAKE, &w);
	return ret < 0 ? ret : 0;
}

/* A slot's bell is its area: held by claim() (client) or area_new() (daemon). */
static int kmod_hold(struct ml__shm *s, unsigned bell)
{
	if (bell >= ML__BELLS)
		return -EINVAL;
	if (bell == 0)
		return s->creator ? 0 : -EBUSY;
	return s->bell_h[bell] >= 0 ? 0 : -EBUSY;
}

/* A client's area goes with close(): its header must stay readable until then. */
static void kmod_unhold(struct ml__shm *s, unsigned bell)
{
	(void)s;
	(void)bell;
}

static int kmod_alive(struct ml__shm *s, unsigned bell)
{
	struct memlink_info info;
	int err;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (bell == 0) {
		err = region_info(FD(s), &info);
		return err ? err : info.creator_alive != 0;
	}
	/*
	 * An onlooker may not attach an area (it would take it): the
	 * daemon's record says, which frees a dead client's slot soon.
	 */
	if (!s->creator) {
		const struct ml__ctl *ctl = ml__shm_at(s, 0, sizeof(*ctl));

		return ctl && bell <= ML_CHAN_MAX_CLIENTS &&
		       atomic_load_explicit(&ctl->slot[bell - 1].state, memory_order_acquire) !=
			       ML__SLOT_FREE;
	}
	if (s->bell_h[bell] < 0)
		return 0;
	err = region_info((int)s->bell_h[bell], &info);
	/* Only its client attaches an area: two files while it lives. */
	return err ? err : info.attached > 1;
}

/*
 * The daemon's: the control region's file (a bump of its bell, a client
 * gone). A client's: its area's (the daemon's wakes; EPOLLHUP when the
 * daemon goes).
 */
static int own_fd(struct ml__shm *s)
{
	if (!s->creator)
		for (unsigned b = 1; b < ML__BELLS; b++)
			if (s->bell_h[b] >= 0)
				return (int)s->bell_h[b];
	return FD(s);
}

/*
 * A client's: its area's file (EPOLLIN for a wake, EPOLLHUP when the
 * daemon goes). The daemon's: an epoll descriptor over the control
 * region's file, so that what the module says with EPOLLPRI (a client's
 * file released) polls readable too.
 */
static int kmod_fd(struct ml__shm *s, unsigned bell)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLPRI };
	int fd = own_fd(s), ep, err;

	(void)bell;
	if (fd < 0)
		return -ENOTSUP;
	if (!s->creator)
		return fd;
	if (s->poll_fd >= 0)
		return s->poll_fd;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		err = -errno;
		close(ep);
		return err;
	}
	s->poll_fd = ep;
	return ep;
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

/* Reading the region's wake count clears EPOLLIN and EPOLLPRI until the next. */
static void kmod_fd_ack(struct ml__shm *s)
{
	uint64_t wakes;

	client_gone_seen(s);
	if (own_fd(s) < 0 || read(own_fd(s), &wakes, sizeof(wakes)) != sizeof(wakes))
		return;
}

const struct ml__backend ml__backend_kmod = {
	.name = "kmod",
	.id = ML_BACKEND_KMOD,
	.notifies_peer_gone = true,
	.private_areas = true,
	.premade_areas = true,
	.available = kmod_available,
	.create = kmod_create,
	.open = kmod_open,
	.owner = kmod_owner,
	.close = kmod_close,
	.wait = kmod_wait,
	.wake = kmod_wake,
	.hold = kmod_hold,
	.unhold = kmod_unhold,
	.area_new = kmod_area_new,
	.area_free = kmod_area_free,
	.claim = kmod_claim,
	.area_used = kmod_area_used,
	.alive = kmod_alive,
	.fd = kmod_fd,
	.list = kmod_list,
	.gc = kmod_gc,
	.fd_ack = kmod_fd_ack,
};

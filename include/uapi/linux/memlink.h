/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * memlink: named shared-memory regions with wait/wake and peer-death notice.
 *
 * Open /dev/memlink, then bind the file to one region, either by creating it
 * (MEMLINK_IOC_CREATE: this file becomes the region's creator) or by
 * attaching to an existing one by name (MEMLINK_IOC_ATTACH). A bound file
 * can be mmap()ed (MAP_SHARED only, never executable, not past the region's
 * end), waited on and woken. A file is bound at most once.
 *
 * Every ioctl takes a pointer to a struct that begins with
 *   __u32 size;   bytes of the struct as the caller knows it
 *   __u32 flags;  must only hold flags defined below
 * so that a struct can grow: a caller built against an older header passes
 * a smaller size and gets the old behaviour; a newer caller's extra bytes
 * are accepted when they are zero.
 *
 * Errors:
 *   ENOTTY    unknown ioctl
 *   EINVAL    bad field: size below the first version, undefined flag,
 *             bad name, size 0 or not page-aligned, offset not 4-aligned or
 *             past the end, file already bound (create/attach) or not bound
 *   EFAULT    bad pointer
 *   E2BIG     size larger than the kernel's struct with non-zero bytes past
 *             it (or larger than a page)
 *   EEXIST    create: the name is taken
 *   ENOENT    attach: no region of that name
 *   EACCES    attach: the region's mode does not allow it for the caller
 *   ENOMEM    out of memory, or over the caller's memory cgroup limit
 *   ENOSPC    over a module limit (region size, total bytes, region count)
 *   EAGAIN    wait: the word does not hold the expected value
 *   ETIMEDOUT wait: the timeout passed without a wake
 *   EINTR     wait: interrupted by a signal
 *   EPIPE     wait: the region's creator is gone (its file was released:
 *             exit, crash or SIGKILL); returned to every waiter at once and
 *             to every later wait. attach: the creator is already gone.
 *
 * mmap(): EINVAL for a file not bound, a private mapping or one past the
 * region's end; EPERM for PROT_EXEC (mprotect cannot add it later either);
 * EACCES for a writable mapping of a MEMLINK_ATTACH_RDONLY file.
 *
 * Fork: a child inherits the file and any mapping like any other file. The
 * creator is the creator's *file*, not its process: the region's creator is
 * gone only when every descriptor and mapping of that file is gone.
 */
#ifndef _UAPI_LINUX_MEMLINK_H
#define _UAPI_LINUX_MEMLINK_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MEMLINK_ABI_VERSION 1
#define MEMLINK_NAME_MAX 64 /* including the terminating NUL */

/* Features reported by MEMLINK_IOC_HANDSHAKE. */
#define MEMLINK_FEAT_WAIT      (1ULL << 0) /* wait/wake on 32-bit words */
#define MEMLINK_FEAT_PEER_GONE (1ULL << 1) /* EPIPE when the creator dies */
#define MEMLINK_FEAT_POLL      (1ULL << 2) /* poll/read wake counter */
#define MEMLINK_FEAT_REPLACE   (1ULL << 3) /* MEMLINK_CREATE_REPLACE */

struct memlink_handshake {
	__u32 size;
	__u32 flags;
	__u32 abi_version;        /* out: MEMLINK_ABI_VERSION */
	__u32 page_size;          /* out */
	__aligned_u64 features;   /* out: MEMLINK_FEAT_* */
	__aligned_u64 max_region_size; /* out: module limit, bytes */
	__aligned_u64 max_total_size;  /* out: module limit, bytes */
	__u32 max_regions;        /* out: module limit */
	__u32 __reserved;
};

/*
 * Replace a region of the same name whose creator is gone: the old region
 * loses its name (files and mappings that hold it keep it alive) and a new
 * one is created. A name whose creator is alive still gives EEXIST.
 */
#define MEMLINK_CREATE_REPLACE (1U << 0)

struct memlink_create {
	__u32 size;
	__u32 flags;              /* MEMLINK_CREATE_* */
	__aligned_u64 region_size; /* bytes, a multiple of the page size */
	__u32 mode;               /* permission bits, as for open(2): 0600... */
	__u32 __reserved;
	char name[MEMLINK_NAME_MAX]; /* 1-63 of [A-Za-z0-9._-], NUL-terminated */
};

/* Attach for reading only: no writable mappings, no wake. */
#define MEMLINK_ATTACH_RDONLY (1U << 0)

struct memlink_attach {
	__u32 size;
	__u32 flags;              /* MEMLINK_ATTACH_* */
	__aligned_u64 region_size; /* out */
	char name[MEMLINK_NAME_MAX];
};

struct memlink_info {
	__u32 size;
	__u32 flags;
	__aligned_u64 region_size;
	__u32 uid;
	__u32 gid;
	__u32 mode;
	__u32 attached;           /* files bound to the region, creator included */
	__u32 waiters;            /* tasks sleeping in MEMLINK_IOC_WAIT */
	__u32 creator_alive;      /* 1 until the creator's file is released */
	__aligned_u64 wakes;      /* MEMLINK_IOC_WAKE calls so far */
	__aligned_u64 detached;   /* non-creator files released so far */
	char name[MEMLINK_NAME_MAX];
};

struct memlink_wait {
	__u32 size;
	__u32 flags;
	__aligned_u64 offset;     /* of a 4-byte aligned __u32 in the region */
	__u32 expected;           /* sleep only while the word holds this */
	__u32 __reserved;
	__aligned_u64 timeout_ns; /* relative; 0 = no timeout */
};

struct memlink_wake {
	__u32 size;
	__u32 flags;
	__aligned_u64 offset;
	__u32 count;              /* wake at most this many waiters */
	__u32 __reserved;
};

#define MEMLINK_IOC_TYPE 0xB8
/*
 * The ioctl numbers do not encode a size: the size lives in the struct.
 * Each returns 0 or -1 with errno, except WAKE which returns the number of
 * waiters woken.
 */
#define MEMLINK_IOC_HANDSHAKE _IO(MEMLINK_IOC_TYPE, 0x00)
#define MEMLINK_IOC_CREATE    _IO(MEMLINK_IOC_TYPE, 0x01)
#define MEMLINK_IOC_ATTACH    _IO(MEMLINK_IOC_TYPE, 0x02)
#define MEMLINK_IOC_INFO      _IO(MEMLINK_IOC_TYPE, 0x03)
#define MEMLINK_IOC_WAIT      _IO(MEMLINK_IOC_TYPE, 0x04)
#define MEMLINK_IOC_WAKE      _IO(MEMLINK_IOC_TYPE, 0x05)

/*
 * poll(): EPOLLIN | EPOLLRDNORM when a wake happened in the region since
 * this file last waited or read; EPOLLPRI for the creator when a client
 * file was released since; EPOLLHUP once the creator is gone (for files
 * other than the creator's).
 * read(): 8 bytes, the region's wake count (__u64); marks wakes as seen.
 * Never blocks.
 */

#endif /* _UAPI_LINUX_MEMLINK_H */

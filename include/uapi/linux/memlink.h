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
 * Names live in the IPC namespace of the process that creates or attaches,
 * as System V IPC and POSIX message queues do: a process sees, attaches,
 * replaces and lists only the regions of its own IPC namespace. Capability
 * checks (CAP_IPC_OWNER) are made in the user namespace that owns it.
 *
 * Every ioctl takes a pointer to a struct that begins with
 *   __u32 size;   bytes of the struct as the caller knows it
 *   __u32 flags;  must only hold flags defined below
 * so that a struct can grow: a caller built against an older header passes
 * a smaller size and gets the old behaviour; a newer caller's extra bytes
 * are accepted when they are zero. The ioctl number encodes the same size
 * (_IOWR with the struct); MEMLINK_IOC() builds the number for another one.
 *
 * Errors:
 *   ENOTTY    unknown ioctl (another type, number or direction)
 *   EINVAL    bad field: size below the first version or not the size the
 *             ioctl number encodes, undefined flag, non-zero reserved
 *             field, bad name, size 0 or not page-aligned, offset not
 *             4-aligned or past the end, file already bound (create/attach)
 *             or not bound (info/wait/wake), a bell_offset without
 *             MEMLINK_CREATE_BELL, a MEMLINK_WAKE_BUMP elsewhere than the
 *             region's bell
 *   EFAULT    bad pointer
 *   E2BIG     size larger than the kernel's struct with non-zero bytes past
 *             it (or larger than a page)
 *   EEXIST    create: the name is taken (its creator lives, or no REPLACE)
 *   ENOENT    attach: no region of that name in the caller's namespace
 *   EACCES    attach: the region's mode does not allow it for the caller;
 *             create with MEMLINK_CREATE_REPLACE: the dead region belongs
 *             to another user and the caller lacks CAP_IPC_OWNER;
 *             wake without MEMLINK_WAKE_BUMP: the file was attached with
 *             MEMLINK_ATTACH_RDONLY
 *   EPERM     attach without MEMLINK_ATTACH_RDONLY to a region created
 *             MEMLINK_CREATE_SEALED
 *   EBUSY     attach: a MEMLINK_CREATE_ONCE region was attached before
 *   ENOMEM    out of memory, or over the caller's memory cgroup limit
 *   ENOSPC    over a module limit: region size, total bytes, region
 *             count, or the caller's per-user bytes or count
 *   EAGAIN    wait: the word does not hold the expected value
 *   ETIMEDOUT wait: the timeout or deadline passed without a wake
 *   EINTR     wait: interrupted by a signal whose handler ran
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

#define MEMLINK_ABI_VERSION 2
#define MEMLINK_NAME_MAX 64 /* including the terminating NUL */

/* Features reported by MEMLINK_IOC_HANDSHAKE. */
#define MEMLINK_FEAT_WAIT      (1ULL << 0) /* wait/wake on 32-bit words */
#define MEMLINK_FEAT_PEER_GONE (1ULL << 1) /* EPIPE when the creator dies */
#define MEMLINK_FEAT_POLL      (1ULL << 2) /* poll/read wake counter */
#define MEMLINK_FEAT_REPLACE   (1ULL << 3) /* MEMLINK_CREATE_REPLACE */
#define MEMLINK_FEAT_LIST      (1ULL << 4) /* MEMLINK_IOC_LIST */
#define MEMLINK_FEAT_DEADLINE  (1ULL << 5) /* MEMLINK_WAIT_ABSTIME, _REALTIME */
#define MEMLINK_FEAT_IPC_NS    (1ULL << 6) /* names per IPC namespace */
#define MEMLINK_FEAT_USER_LIMITS (1ULL << 7) /* per-user count and bytes */
/* MEMLINK_CREATE_ONCE, _SEALED and _BELL, MEMLINK_WAKE_BUMP */
#define MEMLINK_FEAT_PRIVATE   (1ULL << 8)

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
	/* Version 2: the per-user limits (0: none). */
	__aligned_u64 max_user_bytes;  /* out: bytes of one user's regions */
	__u32 max_user_regions;   /* out: regions of one user */
	__u32 __reserved2;
};

/*
 * mode is taken as given: the umask is not applied (System V IPC does not
 * apply it either), so 0666 means readable and writable by everyone.
 *
 * Replace a region of the same name whose creator is gone: the old region
 * loses its name (files and mappings that hold it keep it alive) and a new
 * one is created. Only the dead region's owner (the same effective uid) or
 * a holder of CAP_IPC_OWNER in the namespace may; anyone else gets EACCES.
 * A name whose creator is alive still gives EEXIST.
 */
#define MEMLINK_CREATE_REPLACE (1U << 0)

/*
 * Regions that one creator shares with clients who must not reach each
 * other (MEMLINK_FEAT_PRIVATE):
 *
 * ONCE: one file may ever attach, besides the creator's. The first attach
 * (read-only or not) takes the region; every later one is EBUSY, also
 * after that file is released. So a creator can hand out one region per
 * client, and nobody else (not another client of the same user) can map
 * it; to serve the next client the creator replaces it (release its file,
 * create again with MEMLINK_CREATE_REPLACE). An attach that binds but then
 * fails to write its result back (EFAULT) has taken it as well.
 *
 * SEALED: others attach it read-only only (MEMLINK_ATTACH_RDONLY); an
 * attach for writing is EPERM. The creator alone writes it.
 *
 * BELL: the word at bell_offset is the region's doorbell: any file bound
 * to it, read-only ones included, may MEMLINK_WAKE_BUMP it.
 */
#define MEMLINK_CREATE_ONCE   (1U << 1)
#define MEMLINK_CREATE_SEALED (1U << 2)
#define MEMLINK_CREATE_BELL   (1U << 3)

struct memlink_create {
	__u32 size;
	__u32 flags;              /* MEMLINK_CREATE_* */
	__aligned_u64 region_size; /* bytes, a multiple of the page size */
	__u32 mode;               /* permission bits 0777, as given: no umask */
	__u32 __reserved;
	char name[MEMLINK_NAME_MAX]; /* 1-63 of [A-Za-z0-9._-], NUL-terminated */
	/* Version 2 (MEMLINK_FEAT_PRIVATE): with MEMLINK_CREATE_BELL, else 0. */
	__aligned_u64 bell_offset; /* a 4-aligned __u32 inside the region */
};

/* Attach for reading only: no writable mappings, no wake. */
#define MEMLINK_ATTACH_RDONLY (1U << 0)

struct memlink_attach {
	__u32 size;
	__u32 flags;              /* MEMLINK_ATTACH_* */
	__aligned_u64 region_size; /* out */
	char name[MEMLINK_NAME_MAX];
};

/*
 * A region as INFO and LIST report it. uid and gid are seen from the
 * caller's user namespace (the overflow id when unmapped there).
 */
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

/*
 * Wait while the word at `offset` holds `expected`.
 *
 * Without MEMLINK_WAIT_ABSTIME, timeout_ns is relative and measured on
 * CLOCK_MONOTONIC; 0 waits without a timeout. With it, timeout_ns is an
 * absolute deadline on CLOCK_MONOTONIC, or on CLOCK_REALTIME with
 * MEMLINK_WAIT_REALTIME as well; a deadline already past makes the call a
 * non-blocking check (EAGAIN if the word differs, else ETIMEDOUT).
 * MEMLINK_WAIT_REALTIME without MEMLINK_WAIT_ABSTIME is EINVAL.
 *
 * A wait restarts as a futex wait does: a stop and continue, a ptrace
 * attach or the freezer never end it, nor does a signal whose handler was
 * installed with SA_RESTART; a handler without it gives EINTR. So that a
 * restarted (or retried) relative wait keeps its deadline, the kernel
 * rewrites the struct before it returns to handle the signal: flags gains
 * MEMLINK_WAIT_ABSTIME and timeout_ns becomes the absolute CLOCK_MONOTONIC
 * deadline. After EINTR the struct holds that deadline; passing it again
 * waits until then, not for the whole timeout once more.
 */
#define MEMLINK_WAIT_ABSTIME  (1U << 0)
#define MEMLINK_WAIT_REALTIME (1U << 1)

struct memlink_wait {
	__u32 size;
	__u32 flags;              /* MEMLINK_WAIT_*; see above */
	__aligned_u64 offset;     /* of a 4-byte aligned __u32 in the region */
	__u32 expected;           /* sleep only while the word holds this */
	__u32 __reserved;
	__aligned_u64 timeout_ns; /* in; with flags, out after a signal */
};

/*
 * BUMP: add 1 to the word first (the kernel writes it, atomically, under
 * the lock waiters compare it under), then wake. Only at the region's
 * bell (MEMLINK_CREATE_BELL), else EINVAL; allowed on read-only files. A
 * waiter that has not yet slept sees the word changed (EAGAIN), so a
 * bump is never lost however it races with the wait.
 */
#define MEMLINK_WAKE_BUMP (1U << 0)

struct memlink_wake {
	__u32 size;
	__u32 flags;              /* MEMLINK_WAKE_* */
	__aligned_u64 offset;
	__u32 count;              /* wake at most this many waiters */
	__u32 __reserved;
};

/*
 * The regions of the caller's IPC namespace that the caller could attach
 * read-only (its mode allows it, or the caller has CAP_IPC_OWNER in the
 * namespace: root sees all), in creation order, one struct memlink_info of
 * entry_size bytes each (at least its first version; larger entries get
 * zeroes past it; each entry's size field says how many bytes the kernel
 * filled). An entry_size below the first version or above a page, or a
 * null entries with max_entries > 0, is EINVAL; entries may be 0 when
 * max_entries is 0 (a count only). Works on any file, bound or not. A
 * snapshot: regions may come and go before the next call.
 */
struct memlink_list {
	__u32 size;
	__u32 flags;
	__aligned_u64 entries;    /* user pointer to max_entries entries */
	__u32 entry_size;         /* sizeof(struct memlink_info) */
	__u32 max_entries;
	__u32 count;              /* out: entries written: min(max_entries, total) */
	__u32 total;              /* out: regions listed (> count: no room) */
	__aligned_u64 user_bytes; /* out: bytes of the caller's user's regions */
	__u32 user_regions;       /* out: and their number (per-user limits) */
	__u32 __reserved;
	/*
	 * out, for CAP_SYS_ADMIN in the initial user namespace only (else 0):
	 * all regions of the machine, their bytes and the pages held.
	 */
	__aligned_u64 all_bytes;
	__aligned_u64 all_pages;
	__u32 all_regions;
	__u32 __reserved2;
};

/*
 * Type 0xB8 is taken (mshv, mrvl_cn10k_dpi); memlink moved to MEMLINK_IOC_TYPE
 * with ABI version 2. 0xBE is free in the kernel's ioctl-number.rst (as of
 * 7.2, between papr 0xB2, liveupdate 0xBA and iowarrior 0xC0); it would be
 * registered there, 00-1F, with the module. Each ioctl returns 0 or -1 with
 * errno, except WAKE which returns the number of waiters woken.
 */
#define MEMLINK_IOC_TYPE 0xBE
#define MEMLINK_IOC(nr, size) _IOC(_IOC_READ | _IOC_WRITE, MEMLINK_IOC_TYPE, (nr), (size))

#define MEMLINK_IOC_HANDSHAKE _IOWR(MEMLINK_IOC_TYPE, 0x00, struct memlink_handshake)
#define MEMLINK_IOC_CREATE    _IOWR(MEMLINK_IOC_TYPE, 0x01, struct memlink_create)
#define MEMLINK_IOC_ATTACH    _IOWR(MEMLINK_IOC_TYPE, 0x02, struct memlink_attach)
#define MEMLINK_IOC_INFO      _IOWR(MEMLINK_IOC_TYPE, 0x03, struct memlink_info)
#define MEMLINK_IOC_WAIT      _IOWR(MEMLINK_IOC_TYPE, 0x04, struct memlink_wait)
#define MEMLINK_IOC_WAKE      _IOWR(MEMLINK_IOC_TYPE, 0x05, struct memlink_wake)
#define MEMLINK_IOC_LIST      _IOWR(MEMLINK_IOC_TYPE, 0x06, struct memlink_list)

/*
 * poll(): EPOLLIN | EPOLLRDNORM when a wake happened in the region since
 * this file last waited or read; EPOLLPRI for the creator when a client
 * file was released since (which also ends the creator's MEMLINK_IOC_WAITs
 * in the region with 0, as a wake would); EPOLLHUP once the creator is gone (for files
 * other than the creator's). A file not yet bound reports nothing; a poll
 * or epoll registration made before it is bound sees the region's events
 * once it is.
 * read(): 8 bytes, the region's wake count (__u64); marks wakes as seen.
 * Never blocks. EINVAL on a file not bound.
 */

#endif /* _UAPI_LINUX_MEMLINK_H */

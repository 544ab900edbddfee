/* SPDX-License-Identifier: MIT */
/*
 * The interface every platform backend implements (lib/<os>/), in the
 * manner of libuv: chan.c speaks only to this, never to an OS directly.
 *
 * A backend gives a named shared mapping, a way to sleep on and wake a
 * 32-bit word in it, and liveness: who holds each "bell". Bell 0 is the
 * daemon's, bell 1 + i is client slot i's. The holder of a bell is alive
 * until it exits or crashes, whatever happens to its PID; a backend must
 * never judge liveness from a PID alone.
 */
#ifndef ML_BACKEND_H
#define ML_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memlink.h"

#define ML__BELLS (1 + ML_CHAN_MAX_CLIENTS)

struct ml__backend;
struct ml__darwin;
struct ml__lnx;
struct ml__win;

struct ml__shm {
	const struct ml__backend *be;
	uint8_t *base;
	size_t len;
	bool creator;
	uint32_t flags; /* the opts' ML_CHAN_* flags (win: ML_CHAN_GLOBAL) */
	char name[ML_CHAN_NAME_MAX + 1];
	/*
	 * Backend state, each backend's own: kmod and linux keep the
	 * channel's descriptor (-1 when none), darwin and win their state
	 * (NULL when none). bell_h: per bell, -1 when unused.
	 */
	int fd;
	int poll_fd; /* kmod: the epoll descriptor ml_chan_fd() gave, -1: none */
	struct ml__darwin *darwin;
	struct ml__lnx *lnx;
	struct ml__win *win;
	intptr_t bell_h[ML__BELLS];
	/*
	 * Client areas (chan_layout.h): slot i's at area[i], area_len bytes;
	 * NULL when not mapped. Carved from the region by chan.c, or, with
	 * private_areas, mapped by the backend: the daemon's by area_new()
	 * (published to the daemon's threads by the slot's state going
	 * CLAIMED), a client's own by open() or claim().
	 */
	uint8_t *area[ML_CHAN_MAX_CLIENTS];
	size_t area_len;
	/* The channel's permission bits, as create() was given them. */
	unsigned mode;
	/* open() for a look only (ml_chan_inspect): take no slot. */
	bool inspect;
	/* A client's bell, given by its daemon at open() (linux, win); 0: claim one. */
	unsigned bell;
	/*
	 * Bumped by a backend that learns by itself that a client came or
	 * went (linux: the daemon's service thread), so that the daemon
	 * looks at who is alive without asking on every call.
	 */
	_Atomic uint32_t changes;
};

/*
 * The one way into a mapping: `len` bytes at `off`, or NULL when they are
 * not all inside it. Offsets may come from memory another process writes.
 */
static inline void *ml__shm_at(const struct ml__shm *s, uint64_t off, uint64_t len)
{
	if (!s->base || off > s->len || len > s->len - off)
		return NULL;
	return s->base + off;
}

struct ml__backend {
	const char *name;
	enum ml_backend id;
	/* wait() itself returns -EPIPE when bell 0's holder dies. */
	bool notifies_peer_gone;
	/* The daemon's wait() wakes when a client dies (and bumps `changes`). */
	bool notifies_client_gone;
	/*
	 * How often a client that does not sleep asks alive(0); 0: every
	 * 20 ms. Backends whose alive() is cheap ask more often.
	 */
	uint64_t live_slice_ns;
	/*
	 * Each client's area is a mapping of its own, which no other client
	 * can map, and the control region is read-only to clients: they
	 * never write it (linux, kmod, win). Else the areas follow the control region
	 * in one region every client maps read-write.
	 */
	bool private_areas;
	/*
	 * With private_areas: the daemon makes every slot's area itself
	 * (area_new()) when it creates the channel and again whenever it
	 * frees the slot, and a client takes a free slot by claim(), which
	 * the backend lets one process do per area (kmod). Else the daemon
	 * admits each client and makes its area then (linux, win).
	 */
	bool premade_areas;
	/* Can this backend work here (device present, OS support)? */
	bool (*available)(void);
	/*
	 * Create s->name with `len` zeroed bytes and map it; the caller then
	 * holds bell 0. -EEXIST if a live creator holds the name; a name
	 * whose creator is gone is replaced.
	 */
	int (*create)(struct ml__shm *s, size_t len, unsigned mode);
	/*
	 * The daemon has laid the channel out: let clients in (NULL:
	 * nothing to do; they wait for the magic instead).
	 */
	int (*ready)(struct ml__shm *s);
	/*
	 * Map the existing s->name; sets s->len. -ENOENT, -EACCES; linux
	 * also -ECONNREFUSED (no free slot), -EPIPE, -ETIMEDOUT (a daemon
	 * that does not answer) and -EPROTO.
	 */
	int (*open)(struct ml__shm *s);
	/*
	 * The uid that owns the opened channel (its creator's effective uid,
	 * as this process's user namespace sees it), or -ENOTSUP; NULL where
	 * the backend cannot tell.
	 */
	int (*owner)(struct ml__shm *s, uint32_t *uid);
	/*
	 * Who holds `bell`, as the kernel reported it (an onlooker's view,
	 * s->inspect): -ENOENT nobody, -ENOTSUP where the backend cannot
	 * tell; NULL likewise.
	 */
	int (*cred)(struct ml__shm *s, unsigned bell, uint32_t *uid, uint32_t *pid);
	/*
	 * private_areas, daemon: map a new zeroed area of `len` bytes for
	 * slot i at s->area[i], for the connection being admitted (called
	 * by the thread that claims, after hold()).
	 */
	int (*area_new)(struct ml__shm *s, unsigned slot, size_t len);
	/*
	 * private_areas, daemon: let slot i's area go, and the bell's
	 * descriptors with it, before the slot is freed (called by the
	 * daemon's thread that frees it; a client keeps its own mapping).
	 */
	void (*area_free)(struct ml__shm *s, unsigned slot);
	/*
	 * premade_areas, client: take slot i's area, map it at s->area[i]
	 * (setting area_len) and hold its bell (1 + i). -EBUSY when another
	 * took it first or the daemon is making it anew.
	 */
	int (*claim)(struct ml__shm *s, unsigned slot);
	/*
	 * premade_areas, daemon: 1 if a client took slot i's area since the
	 * daemon made it (alive or not), 0 if nobody did, < 0 on error.
	 */
	int (*area_used)(struct ml__shm *s, unsigned slot);
	/* Unmap and let go of every bell held; the creator removes the name. */
	void (*close)(struct ml__shm *s);
	/*
	 * Sleep while *word == expected, at most timeout_ns (< 0: forever).
	 * 0 when woken or the word differs (callers re-check), -ETIMEDOUT,
	 * -EINTR, or -EPIPE when the backend itself knows bell 0 is gone.
	 */
	int (*wait)(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word,
		    uint32_t expected, int64_t timeout_ns);
	/* Wake whoever sleeps on `word` (bell `bell`'s doorbell). */
	int (*wake)(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word);
	/* Become the live holder of `bell`; -EBUSY if someone alive holds it. */
	int (*hold)(struct ml__shm *s, unsigned bell);
	/* Give `bell` up (a client leaving its slot). */
	void (*unhold)(struct ml__shm *s, unsigned bell);
	/* 1 if a live process holds `bell`, 0 if not, < 0 on error. */
	int (*alive)(struct ml__shm *s, unsigned bell);
	/*
	 * A descriptor (Windows: a HANDLE's value) that becomes ready when
	 * `bell` is rung, or -ENOTSUP.
	 */
	int (*fd)(struct ml__shm *s, unsigned bell);
	/* Mark the descriptor's readiness as seen (NULL: nothing to do). */
	void (*fd_ack)(struct ml__shm *s);
	/*
	 * Call fn with the name of every channel this backend has here,
	 * until fn returns non-zero (returned). -ENOTSUP if it cannot tell.
	 */
	int (*list)(int (*fn)(const char *name, void *arg), void *arg);
	/*
	 * Remove what a dead daemon left under `name` (objects, files):
	 * 1 removed, 0 nothing to remove, -EEXIST its daemon lives.
	 */
	int (*gc)(const char *name);
};

/* A channel name: 1-63 of [A-Za-z0-9._-] (chan.c). */
bool ml__name_ok(const char *name);
/*
 * Daemon, for a backend that admits clients itself (linux): take a free
 * slot for one, holding its bell (hold()) first. Its bell (1 + slot), or
 * -ECONNREFUSED when none is free. Safe to call from another thread of
 * the daemon's process while the daemon runs (chan.c).
 */
int ml__chan_claim(struct ml__shm *s);

extern const struct ml__backend ml__backend_kmod;
extern const struct ml__backend ml__backend_linux;
extern const struct ml__backend ml__backend_win;
extern const struct ml__backend ml__backend_darwin;

/* The backends compiled into this build, NULL-terminated, best first. */
extern const struct ml__backend *const ml__backends[];

/* Pick by option, then $MEMLINK_BACKEND, then the first available. */
int ml__backend_pick(enum ml_backend want, const struct ml__backend **out);

/* Monotonic nanoseconds, this process's id, give up the CPU (per OS). */
uint64_t ml__now_ns(void);
int ml__os_pid(void);
/* This process's effective uid (0 where there is none: Windows). */
uint32_t ml__os_euid(void);
void ml__os_yield(void);
/*
 * How often this thread was preempted while it could run (involuntary
 * context switches), only ever compared for change; 0 where the system
 * does not say.
 */
uint64_t ml__os_preempted(void);
/* Sleep about ns nanoseconds; the page size shared mappings round to. */
void ml__os_nap(uint64_t ns);
size_t ml__os_page_size(void);

/*
 * Asymmetric fences (Linux: membarrier(2)). A process for which
 * ml__os_fence_register() returned true takes part in remote barriers:
 * ml__os_fence_remote(), called by any process, returns only after every
 * running thread of every such process has passed a full memory barrier.
 * Senders then need no fence of their own before looking whether the
 * receiver sleeps; the receiver pays once per sleep instead (chan.c). Where
 * there is no such facility register() is false and remote() -ENOTSUP.
 */
bool ml__os_fence_register(void);
int ml__os_fence_remote(void);

/* Busy-wait hint for spin loops. */
static inline void ml__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif /* ML_BACKEND_H */

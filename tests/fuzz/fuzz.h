/* SPDX-License-Identifier: MIT */
/* Helpers shared by the libFuzzer targets in tests/fuzz/. */
#ifndef ML_FUZZ_H
#define ML_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sys/socket.h>
#include <sys/un.h>

#include "linux/wire.h"
#include "memlink.h"

/*
 * A broken promise of the library (a length out of bounds, an errno it must
 * not return) is a crash to libFuzzer, like a sanitizer report.
 */
#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

/*
 * What a daemon's calls said about its client ids so far (chanops.c keeps
 * it): the ids for later operations to name, and what calls naming them
 * may return. Per slot, by generation (id >> 5): ids are never reused.
 */
struct fz_ids {
	bool events;                          /* the daemon has ML_CHAN_EVENTS */
	unsigned newest[ML_CHAN_MAX_CLIENTS]; /* the newest id seen, 0: none */
	unsigned gone[ML_CHAN_MAX_CLIENTS];   /* generations up to this one are gone */
	unsigned joined[ML_CHAN_MAX_CLIENTS]; /* events: JOINED, not LEFT yet, 0: none */
};

/* The operations part of an input, read a byte at a time; 0 once used up. */
struct fz {
	const uint8_t *p;
	size_t n;
	struct fz_ids ids; /* zero but for .events, set before the first operation */
};

static inline uint8_t fz_u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

static inline uint32_t fz_u16(struct fz *f)
{
	uint32_t lo = fz_u8(f);

	return lo | (uint32_t)fz_u8(f) << 8;
}

static inline uint64_t fz_u64(struct fz *f)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)fz_u8(f) << (8 * i);
	return v;
}

/*
 * Operations, one byte each (taken modulo the count), then their argument
 * bytes; gen-seeds.c writes inputs with them.
 */
enum fz_ring_op {
	FZR_READ,     /* u8: buffer length / 8 */
	FZR_READ_MAX, /* a buffer of max_msg */
	FZR_PEEK,
	FZR_RELEASE,
	FZR_WRITE,    /* u8 prio, u8 length / 2 */
	FZR_RESERVE,  /* u8 prio, u16 length */
	FZR_COMMIT,   /* u16 length */
	FZR_INFO,
	FZR_POKE_IDX, /* u8 which, u8 how, u8 delta or u64 value */
	FZR_POKE_IDX2,
	FZR_POKE_DATA, /* u16 offset, 8 bytes */
	FZR_REATTACH,
	FZR_NOPS
};

enum fz_chan_op {
	FZC_RECV,      /* u8: buffer length / 8 */
	FZC_RECV_MAX,  /* a buffer of 64 KiB */
	FZC_RECV_MANY, /* u8 count, u8 buffer length / 8 (255: a view) */
	FZC_WAIT,      /* timeout 0 */
	FZC_SEND,      /* u8 client (fz_client), u8 prio (>= 128: reserve, commit),
			* u8 length */
	FZC_SEND_WAIT, /* the same, timeout 0 */
	FZC_BACKPRESSURE,
	FZC_CONNECTED,
	FZC_SIGNAL,
	FZC_PEER_ALIVE, /* u8 client (fz_client), u8 within / 1 ms */
	FZC_BEAT,
	FZC_STATS,
	FZC_POKE,      /* u16 + u8 << 16 offset, u8 length % 32, bytes */
	FZC_BELL,      /* u8 bell: the harness holds it, or lets go */
	FZC_CLIENT_NOPS,
	/* daemon only */
	FZC_SET_BP = FZC_CLIENT_NOPS,    /* u8 level */
	FZC_SLOT,      /* u8 client, u8 state: it says so in its header, and rings */
	FZC_POKE_RING, /* u8 slot, u8 which, u8 delta: a ring index moves */
	FZC_CLIENT_SEND, /* as FZC_SEND (its client byte unused): the real client, if any */
	FZC_CLIENT_RECV,
	FZC_SHUTDOWN,
	FZC_CLIENTS,   /* u8 room: ml_chan_clients (a client's: -EINVAL) */
	FZC_NOPS
};

/* chanops.c: a message length, short ones more often than long ones. */
size_t fz_len(uint8_t b);
/*
 * A daemon's operations name a client by a byte b: slot s = (b & 31) %
 * (max_clients + 1) (max_clients: none such), and by b >> 5: 0-3 the
 * newest id seen in slot s (none seen: the bare number s), 4 the one a
 * generation older (gone), 5 a generation newer (maybe not given yet), 6
 * the bare number s, 7 the id of s's first client (1 << 5 | s).
 */
unsigned fz_client(const struct fz *f, unsigned max_clients, uint8_t b);
/*
 * Run one of the operations both sides have (FZC_RECV to FZC_STATS, and
 * FZC_CLIENTS) on channel c and check what it returns; max_clients is the
 * daemon's.
 */
void fz_chan_op(ml_chan *c, bool daemon, unsigned max_clients, unsigned op, struct fz *f);
/* FZC_POKE: a peer writes a few bytes anywhere in the region. */
void fz_poke(uint8_t *region, size_t len, struct fz *f);
/* The linux backend's socket (lib/linux/wire.h): its abstract address. */
socklen_t fz_addr(struct sockaddr_un *a, const char *name);
/*
 * Say hello (JOIN or INSPECT) to channel `name`'s daemon: the connection,
 * or -1; its reply in *r and the descriptors it sent in fds[0..*n).
 */
int fz_hello(const char *name, unsigned kind, struct ml__wire_reply *r, int *fds, int *n);
/* The daemon's control region, as an onlooker gets it; -1 on failure. */
int fz_region_fd(const char *name);
/*
 * A raw client that takes a slot and never connects its rings: the
 * connection (closing it frees the slot), or -1 when refused. Its area,
 * mapped read-write as a client may (munmap it, *len bytes), and its
 * slot, when area is not NULL.
 */
int fz_join(const char *name, uint8_t **area, size_t *len, unsigned *slot);

/*
 * guard.c wraps mmap/munmap (linked with --wrap): every shared mapping,
 * the library's included, gets a PROT_NONE page on each side, so a touch
 * just outside it faults instead of landing in a neighbouring mapping that
 * ASan cannot tell from it.
 */
#define FUZZ_GUARD_PAGE 4096u

#endif

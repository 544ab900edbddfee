/* SPDX-License-Identifier: MIT */
/*
 * The linux backend's rendezvous: what a client and a daemon say on the
 * channel's Unix socket (linux.c). The socket is SOCK_SEQPACKET, bound in
 * the abstract namespace as "\0memlink.<channel>" (no trailing NUL in the
 * address), so it vanishes with its last descriptor and leaves nothing in
 * any filesystem.
 *
 *   client -> daemon  struct ml__wire_hello, no descriptors
 *   daemon -> client  struct ml__wire_reply:
 *     JOIN:    err 0, with descriptors [control region, client area,
 *              daemon bell, client bell]: both memfds sealed against
 *              shrinking and growing, the control region against writing
 *              too (Linux 5.1: F_SEAL_FUTURE_WRITE), the area made for
 *              this connection alone, both bells eventfds of this
 *              connection alone; bell is the client's (1 + slot)
 *     INSPECT: err 0, with descriptors [control region]; peers filled
 *     refused: err > 0 (an errno), no descriptors; then the daemon closes
 *
 * After a JOIN reply the connection stays open, silent: it is how each
 * side learns at once that the other is gone (POLLHUP), and the daemon
 * reads the client's credentials from it (SO_PEERCRED). Anything else a
 * peer sends, or sends with descriptors, breaks the protocol: the other
 * side closes the connection. Every field is checked by its receiver.
 */
#ifndef ML_LINUX_WIRE_H
#define ML_LINUX_WIRE_H

#include <stdint.h>

#include "memlink.h"

#define ML__WIRE_MAGIC 0x4d4c534bu /* "MLSK" */
#define ML__WIRE_VERSION 2u /* 2: client areas */
#define ML__WIRE_PREFIX "memlink."

enum ml__wire_kind {
	ML__WIRE_JOIN = 1,    /* a client: give me a slot */
	ML__WIRE_INSPECT = 2, /* an onlooker (ml_chan_inspect): the state, no slot */
};

struct ml__wire_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;        /* enum ml__wire_kind */
	uint32_t flags;       /* none yet: 0 */
	uint32_t pad;         /* 0 */
};

/* A slot as the daemon's kernel reported its client (SO_PEERCRED). */
struct ml__wire_peer {
	uint32_t alive;       /* 1: its connection is open */
	uint32_t uid, gid, pid;
};

struct ml__wire_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;        /* the hello's */
	int32_t err;          /* 0, or a positive errno: refused */
	uint32_t bell;        /* JOIN: the client's bell, 1 + slot */
	uint64_t region_size; /* the control region's size */
	uint64_t area_size;   /* JOIN: the client area's */
	/* INSPECT only: */
	uint32_t npeers;      /* entries of peer[] used, <= ML_CHAN_MAX_CLIENTS */
	uint32_t daemon_uid, daemon_gid, daemon_pid;
	struct ml__wire_peer peer[ML_CHAN_MAX_CLIENTS];
};

/* A JOIN reply and a refusal stop before npeers. */
#define ML__WIRE_REPLY_SHORT 32u

_Static_assert(sizeof(struct ml__wire_hello) == 16, "hello is 16 bytes");
_Static_assert(__builtin_offsetof(struct ml__wire_reply, npeers) == ML__WIRE_REPLY_SHORT,
	       "short reply");

/* Descriptors a JOIN reply carries, and at most any message may. */
#define ML__WIRE_JOIN_FDS 4
#define ML__WIRE_MAX_FDS 4

/* A client waits this long for the reply; the daemon this long for a hello. */
#define ML__WIRE_REPLY_MS 5000
#define ML__WIRE_HELLO_MS 2000
/* Connections that have not said hello yet, at most; the oldest goes first. */
#define ML__WIRE_PENDING_MAX 32

#endif /* ML_LINUX_WIRE_H */

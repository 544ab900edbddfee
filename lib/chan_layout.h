/* SPDX-License-Identifier: MIT */
/*
 * The shared layout of a channel: a control region the daemon alone
 * writes, and for each client slot an area of its own: a header the
 * client writes, then its request ring (client -> daemon) and response
 * ring (daemon -> client), each a three-lane ml_ring (ring_layout.h).
 *
 * Control region (4 KiB, and for a topic its topic region after it):
 *   0      config line     written once by the daemon before it publishes
 *                          the magic; a client checks every field
 *   128    daemon line     state, connected count, backpressure override;
 *                          at 192 its heartbeat
 *   256    daemon bell     the daemon's doorbell (bell 0)
 *   384    client slots    ML_CHAN_MAX_CLIENTS x 64 bytes: the daemon's
 *                          record of each slot (and, where clients take
 *                          slots themselves, the word they claim it by)
 *
 * Client area (client_stride bytes):
 *   0      peer header     the client's state, heartbeat and doorbell
 *                          (bell 1 + i)
 *   256    request ring, then response ring
 *
 * Where the backend gives each client its own mapping (private_areas:
 * linux), a client maps the control region read-only and sees no other
 * client's area: each area is a mapping of its own, shared only between
 * its client and the daemon, and made anew for every connection. Other
 * backends carve the areas out of one region after the control region,
 * and every client maps all of it read-write.
 *
 * A doorbell is a sequence word to sleep on and a "sleeping" flag: a side
 * about to sleep sets the flag, re-checks its rings and sleeps only if they
 * are still empty; the other side, after a send, wakes it only when the
 * flag is set, so a send to a busy receiver makes no system call. The
 * daemon's flag is in the control region; a client that cannot write it
 * counts its rings of the daemon's bell in its own header (dseq).
 */
#ifndef ML_CHAN_LAYOUT_H
#define ML_CHAN_LAYOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memlink.h"

#define ML__CHAN_MAGIC 0x4d4c4348u /* "MLCH" */
/*
 * A topic (topic.c) is a channel whose clients are its subscribers: its
 * own magic, so that neither kind connects to the other, and a topic
 * region (extra_size bytes, the broadcast ring) right after the control
 * page, which only the publisher writes.
 */
#define ML__TOPIC_MAGIC 0x4d4c5450u /* "MLTP" */
#define ML__CHAN_VERSION 3u /* 2: heartbeats; 3: client areas */
#define ML__CTL_SIZE 4096u
#define ML__PEER_SIZE 256u /* a client area's header */
#define ML__PEER_TOPIC_OFF 128u /* its last line: a subscriber's own */

enum ml__daemon_state {
	ML__DAEMON_STARTING = 0,
	ML__DAEMON_RUNNING = 1,
	ML__DAEMON_SHUTDOWN = 2,
};

enum ml__slot_state {
	ML__SLOT_FREE = 0,
	ML__SLOT_CLAIMED = 1,   /* a client is setting up its rings */
	ML__SLOT_CONNECTED = 2,
	ML__SLOT_LEAVING = 3,   /* gone; the daemon lays its rings out anew */
};

struct ml__bell {
	_Atomic uint32_t seq;      /* the word sleepers wait on */
	_Atomic uint32_t sleeping; /* ML__BELL_* bits, written by the owner */
};

/*
 * `sleeping`: ASLEEP, the owner may be asleep (or is armed, ml_chan_fd):
 * wake it after a send. ASYM, while set (all the life of an owner that
 * is never armed): it sleeps only after a remote barrier
 * (ml__os_fence_remote), so a registered sender needs no fence of its own
 * before looking at ASLEEP. Older owners write 0 and 1 only, and are
 * fenced against as before.
 */
#define ML__BELL_ASLEEP 1u
#define ML__BELL_ASYM   2u
/*
 * EPOCH, with ASLEEP: the owner numbers each sleep, and each time an
 * armed owner finds nothing to read and arms again, in the bits from
 * ML__BELL_EPOCH_SHIFT up. A sender that has woken it under one number
 * does not wake it again: a woken owner looks at every ring before it
 * sleeps under a new number. So a sleeper costs each of its senders one
 * wake-up a sleep, however many messages they send meanwhile. Owners of
 * older versions never set it, and are woken after every send while
 * ASLEEP, as before.
 */
#define ML__BELL_EPOCH 32u
#define ML__BELL_EPOCH_SHIFT 8
/*
 * ROOM(lane), with ASLEEP: the owner sleeps because lane `lane` of the ring
 * it writes is full; the peer that reads that ring rings the bell once the
 * lane is at most half full. Owners of older versions never set it, and
 * readers of older versions never ring for it: a waiting writer's sleep is
 * bounded (chan.c) so that it still finds room they free.
 */
#define ML__BELL_ROOM(lane) (4u << (lane))
#define ML__BELL_ROOM_SHIFT 2
#define ML__BELL_ROOM_MASK  (7u << ML__BELL_ROOM_SHIFT)

/*
 * The daemon's record of a slot, in the control region. `state` moves
 * FREE -> CLAIMED by whoever takes the slot (the daemon's service thread,
 * or the client itself where clients take slots), and otherwise only by
 * the daemon, which mirrors its client's progress (CONNECTED, LEAVING)
 * for onlookers and frees the slot.
 */
struct ml__slot {
	_Atomic uint32_t state;    /* enum ml__slot_state */
	uint32_t pad0;
	uint32_t pid;              /* for humans and memlink-stat only */
	uint32_t pad1;
	uint64_t start;            /* backend token (Windows: creation time) */
	_Atomic uint64_t beat_ns;  /* the client's heartbeat, as the daemon last saw it */
	/*
	 * Bytes in each lane, as the daemon last saw them: onlookers map no
	 * area. A topic's: resp_used is the subscriber's lag, the bytes of
	 * each lane it has still to read, and sub_lost the records it says
	 * it lost, as the publisher last saw them.
	 */
	_Atomic uint32_t req_used[ML_PRIO_COUNT];
	_Atomic uint32_t resp_used[ML_PRIO_COUNT];
	_Atomic uint64_t sub_lost;
};

/*
 * The header of a client's area: written by its client, except bell.seq
 * (the daemon rings it). The daemon reads every field as untrusted.
 */
struct ml__peer {
	_Atomic uint32_t state;    /* 0 (setting up), ML__SLOT_CONNECTED or _LEAVING */
	_Atomic uint32_t gen;      /* bumped by every connect */
	uint32_t pid;              /* the client's, as it says */
	_Atomic uint32_t dseq;     /* its rings of the daemon's bell (private areas) */
	_Atomic uint64_t beat_ns;  /* the client's heartbeat, monotonic ns */
	uint8_t pad0[64 - 24];
	struct ml__bell bell;      /* the client's doorbell */
	uint8_t pad1[ML__PEER_TOPIC_OFF - 64 - sizeof(struct ml__bell)];
	/* topics: a reliable subscriber's cursor line (bcast_layout.h) */
	uint8_t topic[ML__PEER_SIZE - ML__PEER_TOPIC_OFF];
};

struct ml__ctl {
	/* config line */
	uint32_t magic;
	uint32_t version;
	uint32_t ctl_size;
	uint32_t max_clients;
	uint32_t ring_size;
	uint32_t max_msg;
	uint64_t client_stride;           /* a client area's size */
	uint64_t region_size;             /* the control region's, with the areas if carved from it */
	uint32_t daemon_pid;
	uint32_t pad0;
	uint64_t daemon_start;            /* backend token, by its create() (darwin) */
	uint64_t extra_size;              /* topics: the topic region's bytes; else 0 */
	uint8_t pad1[128 - 64];
	/* daemon line */
	_Atomic uint32_t daemon_state;
	_Atomic uint32_t clients;         /* connected slots, as the daemon saw */
	_Atomic uint32_t bp_override;     /* 0: none; else 1 + level * 1e6 */
	_Atomic uint32_t slots_seq;       /* bumped when a client comes or goes */
	uint8_t pad2[64 - 16];
	/* its own cache line: written while clients read the one above */
	_Atomic uint64_t heartbeat_ns;    /* the daemon's heartbeat, monotonic ns */
	uint8_t pad3[64 - 8];
	/* daemon bell line */
	struct ml__bell bell;
	uint8_t pad4[128 - sizeof(struct ml__bell)];
	struct ml__slot slot[ML_CHAN_MAX_CLIENTS];
};

_Static_assert(sizeof(struct ml__slot) == 64, "a slot is one cache line");
_Static_assert(sizeof(struct ml__peer) == ML__PEER_SIZE, "the peer header");
_Static_assert(offsetof(struct ml__ctl, heartbeat_ns) == 192, "heartbeat on its own line");
_Static_assert(sizeof(struct ml__ctl) <= ML__CTL_SIZE, "control region fits 4 KiB");
_Static_assert(offsetof(struct ml__peer, topic) == ML__PEER_TOPIC_OFF, "a subscriber's line");

/* The level a non-zero bp_override stands for (any value is safe). */
static inline double ml__bp_level(uint32_t o)
{
	return o > 1000001u ? 1.0 : (double)(o - 1) / 1e6;
}

/* A channel's geometry, as read and checked once (chan.c). */
struct ml__geom {
	uint32_t max_clients;
	uint32_t ring_size;
	uint32_t max_msg;
	uint64_t stride;           /* bytes of one client's area: header and two rings */
	bool topic;                /* ML__TOPIC_MAGIC */
	uint64_t extra;            /* the topic region's bytes, after the control page */
};

struct ml__shm;
/* -ENOENT: still starting (no magic yet); -EPROTO: not a channel we know. */
int ml__ctl_read(const struct ml__shm *s, struct ml__geom *g);

#endif /* ML_CHAN_LAYOUT_H */

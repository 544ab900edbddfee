/* SPDX-License-Identifier: MIT */
/*
 * A topic's shared layout (topic.c): a channel (chan_layout.h, magic
 * ML__TOPIC_MAGIC) whose topic region, after the control page, only the
 * publisher writes and every subscriber maps read-only:
 *
 *   0    topic line  the lane positions a publisher waiting for room
 *                    waits for (0: none), for reliable subscribers to
 *                    ring it when they pass them
 *   128  the broadcast ring (bcast_layout.h)
 *
 * A subscriber's cursor is the last line of its own client header
 * (ML__PEER_TOPIC_OFF), which no other subscriber maps: where it is in
 * each lane (the reliable publisher's bound), and at ML__SUB_LOST_OFF in
 * it the records it lost, for onlookers (memlink-stat).
 *
 * A reliable subscriber starts where its publisher says: it writes at
 * ML__SUB_JOIN_OFF where it wants to start (ML__SUB_JOIN_*) and 0 at
 * ML__SUB_STARTED_OFF before it says it is connected; the publisher,
 * when it first counts it, writes its cursor (the heads, or the tails),
 * then 1 at ML__SUB_STARTED_OFF, and holds for it from then on; the
 * subscriber reads nothing before that, and then starts at its cursor.
 * So no record the publisher wrote after counting it is ever lost.
 */
#ifndef ML_TOPIC_LAYOUT_H
#define ML_TOPIC_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "memlink.h"
#include "ring_layout.h"

#define ML__TOPIC_HDR ML__LINE
#define ML__SUB_LOST_OFF 64u
#define ML__SUB_JOIN_OFF 80u
#define ML__SUB_STARTED_OFF 84u
#define ML__SUB_JOIN_NEWEST 1u
#define ML__SUB_JOIN_OLDEST 2u

struct ml__topic_hdr {
	_Atomic uint64_t room_want[ML_PRIO_COUNT];
	uint8_t pad[ML__TOPIC_HDR - ML_PRIO_COUNT * sizeof(uint64_t)];
};

_Static_assert(sizeof(struct ml__topic_hdr) == ML__TOPIC_HDR, "the topic line");

#endif /* ML_TOPIC_LAYOUT_H */

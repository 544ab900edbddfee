/* SPDX-License-Identifier: MIT */
/*
 * What topics (topic.c) take from channels (chan.c): a topic is a channel
 * whose daemon is the publisher and whose clients are the subscribers.
 * The channel gives them every backend's connect, liveness, doorbells and
 * descriptors; the topic region, after the control page, holds what only
 * the publisher writes and every subscriber maps read-only. Internal.
 */
#ifndef ML_CHAN_EXT_H
#define ML_CHAN_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memlink.h"

struct ml__chan_ext {
	/* Daemon: bytes of the topic region (a multiple of the page size). */
	uint64_t extra;
	/* Daemon: lay the topic region out, before any client can look. */
	int (*lay_out)(void *mem, size_t len, void *arg);
	/*
	 * Client: called once it holds its slot, before it tells the daemon
	 * it is connected (so that what it sets up there is in place when
	 * the daemon first looks). Non-zero fails the connect.
	 */
	int (*join)(ml_chan *c, void *arg);
	/* Client: is there something to read (what ml_chan_wait waits for)? */
	bool (*ready)(void *arg);
	void *arg;
};

/*
 * ml_daemon_create() and ml_client_connect() of a topic (ML__TOPIC_MAGIC):
 * the daemon frees a departed client's slot at once, reading nothing it
 * left (a subscriber sends nothing).
 */
int ml__chan_create_ext(ml_chan **out, const char *name, const struct ml_chan_opts *opts,
			const struct ml__chan_ext *ext);
int ml__chan_connect_ext(ml_chan **out, const char *name, const struct ml_chan_opts *opts,
			 const struct ml__chan_ext *ext);

/* The topic region (NULL if none), and its bytes. Read-only on a client. */
void *ml__chan_extra(ml_chan *c, size_t *len);
/*
 * Daemon: bring its view of the clients up to date (cheap unless one came
 * or went), and the slots it is attached to now, bit i for slot i. *gen
 * changes whenever a slot is attached or let go: the lines of
 * ml__chan_member_line() are only good until it does.
 */
uint32_t ml__chan_members(ml_chan *c, uint32_t *gen);
/* The last line of slot i's client header (ML__PEER_TOPIC_OFF); a client: its own. */
void *ml__chan_member_line(ml_chan *c, unsigned i);
/* Daemon: what slot i's record shows onlookers (chan_layout.h); lag NULL: nothing. */
void ml__chan_mirror_member(ml_chan *c, unsigned i, const uint32_t lag[ML_PRIO_COUNT],
			    uint64_t lost);
/* Daemon: wake every attached client that sleeps (one load each if none does). */
void ml__chan_wake_members(ml_chan *c);
/* Client: wake the daemon if it sleeps. */
void ml__chan_wake_daemon(ml_chan *c);
/*
 * Client, before a receive: beat, and now and then ask whether the daemon
 * is gone. ml__chan_gone(): is it known gone (asking the backend if `ask`)?
 */
void ml__chan_tick(ml_chan *c);
bool ml__chan_gone(ml_chan *c, bool ask);
/*
 * A receive found nothing on a handle whose descriptor is armed
 * (ml_chan_fd): true if it was armed again, and the caller must look once
 * more.
 */
bool ml__chan_rearm(ml_chan *c);
/*
 * Daemon: call again() until it returns anything but -EAGAIN, or the
 * deadline (< 0: none) passes (-ETIMEDOUT), spinning and sleeping as the
 * wait mode says, as ml_chan_send_wait() waits for room: a sleep says
 * that lane `lane` lacks room, and lasts a slice at most.
 */
int ml__chan_wait_room(ml_chan *c, unsigned lane, int (*again)(void *arg), void *arg,
		       int64_t timeout_ns);

#endif /* ML_CHAN_EXT_H */

/* SPDX-License-Identifier: MIT */
/*
 * The win backend's rendezvous: what a client and a daemon say on the
 * daemon's named pipe (serve.c), in message mode, local clients only.
 *
 *   client -> daemon  struct ml__ww_hello
 *   daemon -> client  struct ml__ww_reply:
 *     JOIN:    err 0; bell is the client's (1 + slot); token names the
 *              objects made for this connection alone, in the channel's
 *              generation G: the area memlink.NAME:G:area.<token> of
 *              area_size bytes, the client's bell memlink.NAME:G:cb.<token>
 *              and its daemon bell memlink.NAME:G:db.<token>, each with a
 *              DACL for the daemon's user and the client's
 *     INSPECT: err 0; npeers, daemon_pid and peer[] filled; no slot
 *     refused: err > 0 (an errno); then the daemon disconnects
 *
 * After a JOIN reply the connection stays open and silent: its breaking
 * is how the daemon learns that the client is gone (and the client, that
 * the daemon is). Anything a client sends after its hello, or a hello
 * that is not one, breaks the protocol: the daemon drops the connection.
 * Every field is checked by its receiver.
 */
#ifndef ML_WIN_WIRE_H
#define ML_WIN_WIRE_H

#include <stdint.h>

#include "memlink.h"

#define ML__WW_MAGIC 0x4d4c5750u /* "MLWP" */
#define ML__WW_VERSION 1u
/* 128 random bits, in hex: names nobody can guess (win.c). */
#define ML__WW_TOKEN 32

enum ml__ww_kind {
	ML__WW_JOIN = 1,
	ML__WW_INSPECT = 2,
};

struct ml__ww_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;        /* enum ml__ww_kind */
	uint32_t flags;       /* none yet: 0 */
	uint32_t pad;         /* 0 */
};

struct ml__ww_peer {
	uint32_t alive;       /* 1: its connection is open */
	uint32_t pid;         /* as the pipe reported it */
};

struct ml__ww_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;        /* the hello's */
	int32_t err;          /* 0, or a positive errno: refused */
	uint32_t bell;        /* JOIN: 1 + slot */
	uint64_t region_size; /* the control region's size */
	uint64_t area_size;   /* JOIN: the client area's */
	char token[ML__WW_TOKEN + 1]; /* JOIN: hex digits, NUL-terminated */
	char pad[7];
	/* INSPECT: */
	uint32_t npeers;      /* <= ML_CHAN_MAX_CLIENTS */
	uint32_t daemon_pid;
	struct ml__ww_peer peer[ML_CHAN_MAX_CLIENTS];
};

_Static_assert(sizeof(struct ml__ww_hello) == 16, "hello is 16 bytes");

/* A client waits this long for the pipe and the reply; the daemon for a hello. */
#define ML__WW_REPLY_MS 5000
#define ML__WW_HELLO_MS 2000
/* Pipe instances waiting for a client (or its hello) at once. */
#define ML__WW_PENDING 8

#endif /* ML_WIN_WIRE_H */

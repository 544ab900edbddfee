/* SPDX-License-Identifier: MIT */
/*
 * The darwin backend's state and the pieces its files share: darwin.c the
 * backend's operations, sock.c the socket and descriptor work, serve.c the
 * daemon's service thread.
 *
 * Who may touch what. The service thread alone owns pending[], peer[] and
 * the connections in them. The daemon's threads and the service thread
 * share live[] (atomic), ml__shm.changes, and a slot's area (areafd[],
 * ml__shm.area[]): the thread makes it while the slot is free and
 * publishes it with the slot's record going CLAIMED; the daemon's threads
 * let it go (area_free) before the record goes FREE again.
 *
 * The rendezvous (serve.c, sock.c). macOS has no SOCK_SEQPACKET for
 * AF_UNIX (xnu bsd/kern/uipc_proto.c: localsw[] has STREAM and DGRAM), so
 * it is a SOCK_STREAM socket with fixed-size messages:
 *
 *   client -> daemon  struct ml__dw_hello (16 bytes), no descriptors
 *   daemon -> client  struct ml__dw_reply (32 bytes):
 *     JOIN:    err 0, with descriptors [control region, area]: the first
 *              read-only (so it maps read-only, for good), the second the
 *              client's area, a shm object made for this connection and
 *              already unlinked; bell is the client's (1 + slot)
 *     INSPECT: err 0, with [control region] (read-only); then it closes
 *     refused: err > 0 (an errno), no descriptors; then the daemon closes
 *
 * After the reply the connection stays open: each side learns from it
 * that the other is gone, and every byte a client sends on it afterwards
 * is a knock, its ring of the daemon's bell (darwin.c). Bytes are only
 * ever counted as knocks, so nothing a client sends can do more than wake
 * the daemon.
 */
#ifndef ML_DARWIN_DWN_H
#define ML_DARWIN_DWN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "backend.h"

#ifdef __APPLE__
#include <sys/ucred.h>
#else
/*
 * The darwin-sim build (Linux): macOS's names, which
 * tests/darwin/xnu-shm-linux.c gives their macOS meaning (xnu
 * bsd/sys/un.h, bsd/sys/ucred.h, bsd/sys/socket.h).
 */
#define SOL_LOCAL 0
#define LOCAL_PEERCRED 0x001
#define SO_NOSIGPIPE 0x1022
#define XUCRED_VERSION 0
#define ML__XU_NGROUPS 16
struct xucred {
	unsigned cr_version;
	uid_t cr_uid;                    /* the effective uid */
	short cr_ngroups;
	gid_t cr_groups[ML__XU_NGROUPS]; /* [0]: the effective gid */
};
#endif

#define ML__DW_MAGIC 0x4d4c444bu /* "MLDK" */
#define ML__DW_VERSION 1u
#define ML__DW_JOIN 1u    /* a client: give me a slot */
#define ML__DW_INSPECT 2u /* an onlooker (ml_chan_inspect): the control region */
/* At most this many descriptors in a message. */
#define ML__DW_MAX_FDS 2

struct ml__dw_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;        /* ML__DW_JOIN or ML__DW_INSPECT */
	uint32_t flags;       /* 0 */
	uint32_t pad;         /* 0 */
};

struct ml__dw_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;        /* the hello's */
	int32_t err;          /* 0, or a positive errno: refused */
	uint32_t bell;        /* JOIN: the client's bell, 1 + slot */
	uint64_t area_size;   /* JOIN: the area's size */
	uint64_t region_size; /* the control region's */
};

_Static_assert(sizeof(struct ml__dw_hello) == 16, "hello is 16 bytes");
_Static_assert(sizeof(struct ml__dw_reply) == 32, "reply is 32 bytes");

/* A client waits this long for the reply; the daemon this long for a hello. */
#define ML__DW_REPLY_MS 5000
#define ML__DW_HELLO_MS 2000
/* Connections that have not said hello yet, at most; the oldest goes first. */
#define ML__DW_PENDING_MAX 32
/* The socket's random part: 24 hex digits (96 bits), then a NUL. */
#define ML__DW_SOCKID_LEN 25

/* This process's one descriptor on a lock file (darwin.c's top comment). */
struct lockfile;
#define ML__DW_LF_MAX 4

struct ml__dw_pending {
	int fd;               /* -1: unused */
	bool refused;         /* the mode does not admit it (it gets EACCES) */
	uint64_t since_ns;
};

/* A handle's state, in s->darwin. */
struct ml__darwin {
	int shm;              /* the control region's object */
	int ro;               /* daemon: a read-only descriptor of it, for clients */
	uint64_t token;       /* its daemon's */
	unsigned mode;        /* daemon: the channel's, for lock files it remakes */
	_Atomic uint64_t look_ns; /* daemon: when to look for its lock file next */
	unsigned nlf;
	/* [0]: the one opened; a daemon's later ones replaced lost ones. */
	struct lockfile *lf[ML__DW_LF_MAX];
	char sockid[ML__DW_SOCKID_LEN];
	/* daemon: the listening socket (and its path); client: its connection */
	int sock;
	char sock_path[64];
	unsigned own;         /* client: its bell, 1 + slot */
	/* daemon */
	uint32_t uid, gid;
	pid_t pid;            /* the process the thread runs in */
	bool running;
	pthread_t thread;
	int stop[2];          /* a pipe: the thread leaves once it is readable */
	_Atomic uint32_t live[ML__BELLS]; /* 1: the bell's client is connected */
	_Atomic int areafd[ML__BELLS];    /* client i's area at [1 + i]; -1: none */
	int made;             /* the service thread's note of the area it made */
	int peer[ML__BELLS];  /* the connections of clients with a slot; -1: none */
	struct ml__dw_pending pending[ML__DW_PENDING_MAX];
	uint64_t listen_paused_ns; /* out of descriptors: accept again after */
};

/* darwin.c */
/* Wake whoever sleeps on the word (bell `bell`), in this process's mapping. */
int ml__dw_wake_word(_Atomic uint32_t *word);
/* Daemon: a client came or went (hold() or its connection): take note. */
void ml__dw_unhold_client(struct ml__shm *s, unsigned bell);

/* sock.c */
/* /var/tmp/memlink.<sockid>.sock. */
void ml__dw_sock_path(char *buf, size_t len, const char *sockid);
/* A new random sockid. */
void ml__dw_sockid(char *buf);
/* Close-on-exec and, if asked, non-blocking: 0 or -errno. */
int ml__dw_fd_flags(int fd, bool nonblock);
/* One message with n (0..ML__DW_MAX_FDS) descriptors, without blocking or SIGPIPE. */
int ml__dw_send(int sock, const void *buf, size_t len, const int *fds, int n);
/*
 * Read into buf[*have, len) and descriptors into fds[*n..ML__DW_MAX_FDS)
 * (close-on-exec; any more are closed) without blocking: 1 once len bytes
 * are in, 0 for more to come, -EPIPE at EOF, else -errno; -EPROTO for
 * too many descriptors.
 */
int ml__dw_recv(int sock, void *buf, size_t len, size_t *have, int *fds, int *n);
/* The peer's credentials (LOCAL_PEERCRED): 0 or -errno. */
int ml__dw_peercred(int sock, struct xucred *xu);

/* serve.c */
int ml__dw_serve_start(struct ml__shm *s);
void ml__dw_serve_stop(struct ml__shm *s);

#endif /* ML_DARWIN_DWN_H */

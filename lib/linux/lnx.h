/* SPDX-License-Identifier: MIT */
/*
 * The linux backend's state and the pieces its files share: linux.c the
 * backend's operations, sock.c the socket and descriptor work, serve.c
 * the daemon's service thread, list.c the listing.
 *
 * Who may touch what. A daemon's service thread alone owns peer[],
 * pending[], made[] and the connections in them. The daemon's own threads
 * (those calling the library) and the service thread share live[]
 * (atomic), ml__shm.changes, and a slot's area and bells (areafd[],
 * bellfd[], dbellfd[], ml__shm.area[]): the thread makes them while the
 * slot is free and publishes them with the slot's record going CLAIMED;
 * the daemon's threads let them go (linux_area_free) before the record
 * goes FREE again. A client's state is its own.
 */
#ifndef ML_LINUX_LNX_H
#define ML_LINUX_LNX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "backend.h"
#include "wire.h"

struct ml__lnx_peer {
	int fd;               /* the client's connection, -1: none */
	uint32_t uid, gid, pid;
};

struct ml__lnx_pending {
	int fd;               /* -1: unused */
	bool refused;         /* the mode does not admit it (it gets EACCES) */
	struct ucred cr;      /* its credentials, read once at accept */
	uint64_t since_ns;
};

struct ml__lnx {
	int memfd;            /* the control region */
	int efd;              /* epoll: our bell (edge-triggered); a client's socket */
	int sock;             /* daemon: listening; client: its connection */
	/*
	 * Eventfds; -1: none. bellfd[0] is the daemon's own (its service
	 * thread rings it), bellfd[1 + i] client i's; dbellfd[1 + i] is
	 * the daemon's bell as client i alone rings it. A client has its
	 * daemon bell at dbellfd[0].
	 */
	_Atomic int bellfd[ML__BELLS];
	_Atomic int dbellfd[ML__BELLS];
	int areafd[ML__BELLS];         /* daemon: client i's area at [1 + i]; -1: none */
	/*
	 * The service thread's own note of what it made for the slot it is
	 * claiming (area, daemon bell, client bell): once the slot is
	 * published the daemon's threads may free it at any time, so the
	 * reply is built from these, never from areafd[] and the bells.
	 */
	int made[3];
	unsigned own;         /* our bell: 0 (daemon), 1 + slot (client) */
	uint32_t peer_uid;    /* client: the daemon's, by SO_PEERCRED */
	/* daemon */
	uint32_t mode, uid, gid;
	pid_t pid;            /* the process the thread runs in */
	bool running;
	pthread_t thread;
	int stopfd;           /* eventfd: the thread leaves when it is readable */
	int tfd;              /* the thread's epoll */
	_Atomic uint32_t live[ML__BELLS]; /* 1: bell's client is connected */
	struct ml__lnx_peer peer[ML__BELLS];
	struct ml__lnx_pending pending[ML__WIRE_PENDING_MAX];
	uint64_t listen_paused_ns;         /* out of descriptors: accept again after */
	/* onlooker (ml_chan_inspect): what the daemon said */
	struct ml__wire_reply status;
};

static inline struct ml__lnx *ml__lnx(const struct ml__shm *s)
{
	return s->lnx;
}

/* sock.c */
/* The channel's abstract address; its length. */
socklen_t ml__lnx_addr(struct sockaddr_un *a, const char *name);
/*
 * Send one message with n descriptors (0..ML__WIRE_MAX_FDS), without
 * blocking or SIGPIPE: 0 or -errno.
 */
int ml__lnx_send(int sock, const void *buf, size_t len, const int *fds, int n);
/*
 * Receive one message of at most len bytes and at most ML__WIRE_MAX_FDS
 * descriptors (close-on-exec), flags as recvmsg(). The length, 0 at EOF,
 * or -errno; -EMSGSIZE when the message or its descriptors did not fit
 * (what did arrive is closed). Every descriptor received is in fds[0..*n).
 */
ssize_t ml__lnx_recv(int sock, void *buf, size_t len, int *fds, int *n, int flags);
void ml__lnx_close_fds(const int *fds, int n);
/* Is fd an eventfd (/proc says so; without /proc, an anonymous inode)? */
bool ml__lnx_is_eventfd(int fd);
/*
 * A memfd whose size is exactly `size`, that can neither shrink nor grow
 * and, if `writable`, is not sealed against writing: 0, or -EPROTO.
 */
int ml__lnx_check_memfd(int fd, uint64_t size, bool writable);

/* Linux 5.1; older headers lack it. */
#define ML__F_SEAL_FUTURE_WRITE 0x0010

/* serve.c */
/* Start the daemon's service thread: the channel is ready. */
int ml__lnx_serve_start(struct ml__shm *s);
/* Stop it (in the process that started it) and close its connections. */
void ml__lnx_serve_stop(struct ml__shm *s);

/* list.c */
int ml__lnx_list(int (*fn)(const char *name, void *arg), void *arg);

#endif /* ML_LINUX_LNX_H */

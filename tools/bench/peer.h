/* SPDX-License-Identifier: MIT */
/*
 * memlink-bench peers: one small interface that every transport measured by
 * `memlink-bench peers` implements, so that one harness (bench_peers.c)
 * runs them all with the same payloads and the same checks.
 *
 * A row is one transport in one mode at one payload size. The harness
 *
 *   1. calls prepare() in the parent (socket pairs, pipes, queues, names:
 *      whatever the children inherit across fork); it may return a reason
 *      to skip this row (a payload the transport cannot carry here);
 *   2. forks the two roles (or, for several producers, one consumer and N
 *      producers), each of which calls open(), then ready(), then sends and
 *      receives messages, then close(). Role 1 (server, consumer) opens
 *      first; role 0 (client, producer) opens once role 1 has;
 *   3. calls unprepare() in the parent.
 *
 * send() and recv() move one whole message; recv() waits as the row's mode
 * says (spinning in busy mode, sleeping in blocking mode) and gives up with
 * -ECANCELED when the run is aborted (peer_aborted()), which it checks at
 * least every 100 ms. Every call returns 0 (recv: the length) or a negative
 * errno.
 */
#ifndef BENCH_PEER_H
#define BENCH_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum peer_mode { PEER_BUSY = 0, PEER_ADAPTIVE = 1, PEER_BLOCKING = 2 };
#define PEER_MODE_BIT(m) (1u << (m))

#define PEER_MAX_PRODUCERS 8
#define PEER_MAX_FDS (2 * PEER_MAX_PRODUCERS + 4)

/* Set up in the parent by prepare(), inherited by every child of the row. */
struct peer_row {
	enum peer_mode mode;
	size_t payload;          /* bytes of every message of the row */
	unsigned nprod;          /* producers: 1, or 4 and 8 into one consumer */
	bool duplex;             /* round trips: both directions */
	char name[64];           /* unique per row: "mlb.<pid>.<row>" */
	int fd[PEER_MAX_FDS];    /* descriptors prepare() made; -1 unused */
	int nfd;
	void *shm;               /* shared anonymous memory of the row */
	size_t shm_len;
	void *priv;              /* the transport's own parent-side state */
	char note[96];           /* prepare() may explain a skip here */
};

/* One process's end of a row. */
struct peer_end {
	struct peer_row *row;
	int role;                /* 0: client / producer, 1: server / consumer */
	unsigned index;          /* producer number, 0..nprod-1 */
	uint32_t *abort;         /* non-zero: give up (read atomically) */
	void *priv;              /* the transport's own state */
};

struct peer_ops {
	const char *name;        /* JSON "transport" */
	unsigned modes;          /* PEER_MODE_BIT()s it runs in */
	size_t max_payload;      /* largest payload it is measured with */
	bool mpsc;               /* several producers into one consumer */
	bool uses_shm;           /* needs peer_row.shm (rings) */
	/* NULL when usable, else why not (e.g. "libzmq3-dev not installed"). */
	const char *(*skip)(void);
	/* Once per run in the parent, around all rows (iox-roudi); may be NULL. */
	int (*start)(char *why, size_t len);
	void (*stop)(void);
	/* In the parent; 1: skip this row (reason in row->note). May be NULL. */
	int (*prepare)(struct peer_row *r);
	void (*unprepare)(struct peer_row *r);
	int (*open)(struct peer_end *e);
	/* After both sides opened: connections accepted, subscriptions made. */
	int (*ready)(struct peer_end *e);
	int (*send)(struct peer_end *e, int prio, const void *buf, size_t len);
	int (*recv)(struct peer_end *e, int *prio, void *buf, size_t cap);
	/* After a stream's last send: hand over what send() batched. May be NULL. */
	int (*flush)(struct peer_end *e);
	void (*close)(struct peer_end *e);
};

static inline bool peer_aborted(const struct peer_end *e)
{
	return __atomic_load_n((const uint32_t *)e->abort, __ATOMIC_RELAXED) != 0;
}

/* The transports, in table order. */
extern const struct peer_ops peer_memlink, peer_memlink_plain, peer_baseline, peer_uds,
	peer_uds_seqpacket, peer_pipe, peer_tcp, peer_posix_mq, peer_eventfd, peer_futex,
	peer_boost_mq, peer_zmq, peer_iceoryx;

/*
 * Framed messages over stream descriptors (uds, tcp, pipe): a 4-byte length
 * then the payload, written with one writev; read through a buffer, as a
 * real program would, from one or several descriptors.
 */
struct stream_rx {
	int fd[PEER_MAX_PRODUCERS];
	unsigned nfd;
	bool packet;             /* SOCK_SEQPACKET: one recv is one message */
	unsigned next;           /* round robin over descriptors with data */
	struct stream_buf {
		unsigned char *buf;
		size_t cap, head, tail;
	} b[PEER_MAX_PRODUCERS];
};

int stream_send(int fd, bool packet, const void *buf, size_t len);
int stream_rx_init(struct stream_rx *rx, const int *fds, unsigned nfd, bool packet,
		   size_t max_payload);
void stream_rx_free(struct stream_rx *rx);
int stream_recv(struct peer_end *e, struct stream_rx *rx, void *buf, size_t cap);

/*
 * A descriptor end built on the above: tx is where this end writes (-1:
 * nowhere), rx the descriptors it reads. The peer_ops send/recv/close of
 * the descriptor peers are fd_send, fd_recv and fd_close.
 */
struct fd_end {
	int tx;
	bool packet;
	struct stream_rx rx;
};

int fd_end_open(struct peer_end *e, int tx, const int *rx, unsigned nrx, bool packet);
int fd_send(struct peer_end *e, int prio, const void *buf, size_t len);
int fd_recv(struct peer_end *e, int *prio, void *buf, size_t cap);
void fd_close(struct peer_end *e);
/* Close every descriptor of the row (unprepare). */
void fd_row_close(struct peer_row *r);
/* SO_RCVTIMEO of 100 ms, so that blocked reads look at the abort flag. */
void fd_rcvtimeo(int fd);

/*
 * Two baseline rings (requests, replies) in peer_row.shm, laid out by the
 * parent: the baseline-ring, eventfd and futex peers (peer_memlink.c).
 */
struct bl_ring;
size_t peer_rings_size(size_t payload);
int peer_rings_prepare(struct peer_row *r);
int peer_rings_attach(struct peer_end *e, struct bl_ring *tx, struct bl_ring *rx);

/* Write into a ring, pausing (peer_pause) while it is full. */
int peer_rings_put(struct peer_end *e, struct bl_ring *tx, const void *buf, size_t len);

/* Spin-or-sleep helper for send retries on a full queue. */
void peer_pause(const struct peer_end *e);

/* close() of a peer whose end is one malloc'ed e->priv. */
void peer_free_priv(struct peer_end *e);

#ifdef __cplusplus
}
#endif

#endif /* BENCH_PEER_H */

/* SPDX-License-Identifier: MIT */
/*
 * Event loops over a memlink channel: one thread waits on the channel's
 * descriptor (ml_chan_fd(): kmod backend with memlink.ko, or linux backend
 * without it), a datagram socket and a periodic timer together, and handles
 * whichever is ready.
 *
 *   epoll-loop.c   evloop_epoll(): epoll, with a timerfd
 *   uring-loop.c   evloop_uring(): io_uring (liburing), a poll on the
 *                  channel, a recv on the socket, an IORING_OP_TIMEOUT
 *   demo.c         the programs around them: a daemon, a client process
 *
 * The one rule for the channel's descriptor (see ml_chan_fd() in
 * memlink.h): when it is ready, ml_chan_recv() until -EAGAIN, then wait
 * again. The -EAGAIN clears its readiness, and a send that races with it
 * makes it ready again, so nothing sent is ever left unseen. Messages sent
 * before the first ml_chan_fd() call do not make it ready: read them once
 * before waiting (the loops do).
 */
#ifndef EVLOOP_H
#define EVLOOP_H

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <memlink.h>

#define EVLOOP_MSG_MAX 4096   /* largest message: the channels' default max_msg */
#define EVLOOP_DGRAM_MAX 2048 /* largest datagram */

/* io_uring: a one-shot poll re-armed after each completion, not a multishot one. */
#define EVLOOP_URING_ONESHOT (1u << 0)

struct evloop {
	/* Set by the caller. */
	ml_chan *chan;      /* daemon or client handle */
	int sock;           /* a datagram socket to read, or -1 */
	int64_t tick_ns;    /* timer period, 0: no timer. Each tick also
			     * records a heartbeat (ml_chan_beat()), which a
			     * peer expects at least every 50 ms */
	unsigned flags;     /* EVLOOP_URING_ONESHOT */
	void *arg;          /* for the handlers */

	/*
	 * Handlers (on_dgram with a socket, on_tick with a timer): return 0
	 * to go on, > 0 to stop the loop (it returns 0), or a negative errno
	 * to stop it with that error. on_msg gets `client` on a daemon:
	 * the sender's id, never 0 (pass it to ml_chan_reply(); its slot
	 * is ML_CHAN_SLOT(client)), 0 on a client.
	 */
	int (*on_msg)(struct evloop *l, unsigned client, int prio, const void *buf, size_t len);
	int (*on_dgram)(struct evloop *l, const void *buf, size_t len);
	int (*on_tick)(struct evloop *l, uint64_t expirations);

	/* Counted by the loop. */
	uint64_t wakeups;   /* returns from epoll_wait() / io_uring_submit_and_wait() */
	uint64_t idle;      /* wakeups that found nothing to do */
	uint64_t msgs, dgrams, ticks;
	uint64_t reports;   /* daemon: dead or broken clients (-EOWNERDEAD, -EBADMSG) */
	uint64_t events;    /* daemon: arrivals and departures (ML_CHAN_EVENTS) */
};

/*
 * Run the loop until a handler stops it or something fails. 0, or a
 * negative errno: -ENOTSUP when the channel's backend has no descriptor
 * (kmod and linux have one), -EPIPE when a client's daemon went away,
 * -ENOSYS (io_uring) when the kernel has no io_uring, -EPERM when it is
 * not allowed (kernel.io_uring_disabled, a container's seccomp filter).
 */
int evloop_epoll(struct evloop *l);
int evloop_uring(struct evloop *l);

/* The demo program of demo.c, over one of the loops. Returns an exit status. */
int evloop_demo(const char *what, int (*loop)(struct evloop *l));

/*
 * Receive until -EAGAIN, handing each message to on_msg; *work is set when
 * there was one. 0, what a handler returned, or a channel error.
 */
static inline int evloop_drain(struct evloop *l, int *work)
{
	unsigned char buf[EVLOOP_MSG_MAX];

	for (;;) {
		unsigned client = 0; /* a daemon's client ids are never 0 */
		int prio, n, ret;

		n = ml_chan_recv(l->chan, &prio, &client, buf, sizeof(buf));
		if (n == -EAGAIN)
			return 0;
		/* A daemon's report on one client (client set): not fatal. */
		if ((n == -EOWNERDEAD || n == -EBADMSG) && client) {
			l->reports++;
			continue;
		}
		/* A daemon made with ML_CHAN_EVENTS: a client came or went. */
		if ((n == ML_CHAN_JOINED || n == ML_CHAN_LEFT) && client) {
			l->events++;
			continue;
		}
		if (n < 0)
			return n;
		l->msgs++;
		*work = 1;
		ret = l->on_msg(l, client, prio, buf, (size_t)n);
		if (ret)
			return ret;
	}
}

#endif /* EVLOOP_H */

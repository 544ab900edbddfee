/* SPDX-License-Identifier: MIT */
/*
 * uring-loop: the loop of evloop.h on io_uring (liburing). The channel's
 * descriptor gets a poll (multishot, or one-shot re-armed after each
 * completion with EVLOOP_URING_ONESHOT), the socket a recv, the timer an
 * IORING_OP_TIMEOUT with an absolute deadline; each is submitted again
 * once it completes. Runs over the kmod backend (memlink.ko) and the linux
 * one (no module needed); MEMLINK_BACKEND picks.
 *
 *   cc -std=c11 uring-loop.c demo.c -lmemlink -luring -o uring-loop && ./uring-loop
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <liburing.h>

#include "evloop.h"

enum { OP_CHAN = 1, OP_SOCK, OP_TIMER, OP_CANCEL };

struct uloop {
	struct evloop *l;
	struct io_uring ring;
	int cfd;
	unsigned inflight;            /* operations submitted, not completed */
	struct __kernel_timespec next; /* the timer's next deadline */
	unsigned char dgram[EVLOOP_DGRAM_MAX];
};

static struct io_uring_sqe *sqe_for(struct uloop *u, int op)
{
	/* The ring has room for every operation: one each, and a cancel. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (sqe) {
		io_uring_sqe_set_data64(sqe, (uint64_t)op);
		u->inflight += op != OP_CANCEL;
	}
	return sqe;
}

static int arm(struct uloop *u, int op)
{
	struct io_uring_sqe *sqe = sqe_for(u, op);

	if (!sqe)
		return -EBUSY;
	switch (op) {
	case OP_CHAN:
		if (u->l->flags & EVLOOP_URING_ONESHOT)
			io_uring_prep_poll_add(sqe, u->cfd, POLLIN);
		else
			io_uring_prep_poll_multishot(sqe, u->cfd, POLLIN);
		break;
	case OP_SOCK:
		io_uring_prep_recv(sqe, u->l->sock, u->dgram, sizeof(u->dgram), 0);
		break;
	case OP_TIMER: /* CLOCK_MONOTONIC, like a timerfd */
		io_uring_prep_timeout(sqe, &u->next, 0, IORING_TIMEOUT_ABS);
		break;
	}
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set_next(struct uloop *u, int64_t ns)
{
	u->next.tv_sec = ns / 1000000000;
	u->next.tv_nsec = ns % 1000000000;
}

/* The timer fired: count the periods that passed, like a timerfd. */
static int tick(struct uloop *u)
{
	struct evloop *l = u->l;
	int64_t next = u->next.tv_sec * 1000000000 + u->next.tv_nsec;
	uint64_t n = 1 + (uint64_t)((now_ns() - next) / l->tick_ns);

	set_next(u, next + (int64_t)n * l->tick_ns);
	l->ticks += n;
	ml_chan_beat(l->chan);
	return l->on_tick(l, n);
}

/* One completion: handle it, submit its operation again if it ended. */
static int complete(struct uloop *u, const struct io_uring_cqe *cqe, int *work)
{
	int op = (int)io_uring_cqe_get_data64(cqe), ret = 0;
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (op == OP_CANCEL)
		return 0;
	if (!more)
		u->inflight--;
	switch (op) {
	case OP_CHAN: /* res: the poll mask (POLLHUP too: recv says -EPIPE) */
		ret = cqe->res < 0 ? cqe->res : evloop_drain(u->l, work);
		break;
	case OP_SOCK:
		if (cqe->res < 0) {
			ret = cqe->res == -EINTR ? 0 : cqe->res;
			break;
		}
		u->l->dgrams++;
		*work = 1;
		ret = u->l->on_dgram(u->l, u->dgram, (size_t)cqe->res);
		break;
	case OP_TIMER:
		if (cqe->res != -ETIME)
			return cqe->res;
		*work = 1;
		ret = tick(u);
		break;
	}
	if (!ret && !more)
		ret = arm(u, op);
	return ret;
}

/* Cancel what is still in flight and reap it, before u->dgram goes away. */
static void cancel_all(struct uloop *u)
{
	struct io_uring_sqe *sqe = sqe_for(u, OP_CANCEL);
	struct io_uring_cqe *cqe;

	if (sqe)
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	while (u->inflight && io_uring_submit_and_wait(&u->ring, 1) >= 0) {
		while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
			if (io_uring_cqe_get_data64(cqe) != OP_CANCEL &&
			    !(cqe->flags & IORING_CQE_F_MORE))
				u->inflight--;
			io_uring_cqe_seen(&u->ring, cqe);
		}
	}
}

static int run(struct uloop *u)
{
	struct evloop *l = u->l;
	int err, work = 0;

	/* What was sent before ml_chan_fd() did not make it ready. */
	err = evloop_drain(l, &work);
	if (!err)
		err = arm(u, OP_CHAN);
	if (!err && l->sock >= 0)
		err = arm(u, OP_SOCK);
	if (!err && l->tick_ns > 0) {
		set_next(u, now_ns() + l->tick_ns);
		err = arm(u, OP_TIMER);
	}

	while (!err) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret = io_uring_submit_and_wait(&u->ring, 1);

		if (ret < 0) {
			if (ret != -EINTR)
				err = ret;
			continue;
		}
		l->wakeups++;
		work = 0;
		io_uring_for_each_cqe(&u->ring, head, cqe) {
			if (!err)
				err = complete(u, cqe, &work);
			else if (!(cqe->flags & IORING_CQE_F_MORE) &&
				 io_uring_cqe_get_data64(cqe) != OP_CANCEL)
				u->inflight--;
			seen++;
		}
		io_uring_cq_advance(&u->ring, seen);
		if (!work)
			l->idle++;
	}
	return err;
}

int evloop_uring(struct evloop *l)
{
	struct uloop u = { .l = l };
	int err;

	u.cfd = ml_chan_fd(l->chan); /* -ENOTSUP: a backend without one (darwin) */
	if (u.cfd < 0)
		return u.cfd;
	err = io_uring_queue_init(8, &u.ring, 0); /* -ENOSYS, -EPERM: no io_uring */
	if (err)
		return err;
	err = run(&u);
	cancel_all(&u);
	io_uring_queue_exit(&u.ring);
	return err > 0 ? 0 : err;
}

#ifndef EVLOOP_NO_MAIN
int main(void)
{
	return evloop_demo("io_uring", evloop_uring);
}
#endif

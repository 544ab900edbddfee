/* SPDX-License-Identifier: MIT */
/*
 * epoll-loop: one epoll set with a memlink channel's descriptor, a datagram
 * socket and a timerfd (see evloop.h). Runs over the kmod backend
 * (memlink.ko) and the linux one (no module needed); MEMLINK_BACKEND picks.
 *
 *   cc -std=c11 epoll-loop.c demo.c -lmemlink -o epoll-loop && ./epoll-loop
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "evloop.h"

enum { EV_CHAN, EV_SOCK, EV_TIMER };

static int watch(int ep, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int start_timer(int64_t period_ns)
{
	struct timespec ts = { .tv_sec = period_ns / 1000000000, .tv_nsec = period_ns % 1000000000 };
	struct itimerspec its = { .it_interval = ts, .it_value = ts };
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Every datagram waiting. */
static int read_socket(struct evloop *l, int *work)
{
	unsigned char buf[EVLOOP_DGRAM_MAX];

	for (;;) {
		ssize_t n = recv(l->sock, buf, sizeof(buf), MSG_DONTWAIT);
		int ret;

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		l->dgrams++;
		*work = 1;
		ret = l->on_dgram(l, buf, (size_t)n);
		if (ret)
			return ret;
	}
}

static int read_timer(struct evloop *l, int tfd, int *work)
{
	uint64_t n;

	if (read(tfd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	l->ticks += n;
	*work = 1;
	ml_chan_beat(l->chan);
	return l->on_tick(l, n);
}

int evloop_epoll(struct evloop *l)
{
	int cfd, ep, tfd = -1, err = 0, work = 0;

	cfd = ml_chan_fd(l->chan); /* -ENOTSUP: a backend without one (darwin) */
	if (cfd < 0)
		return cfd;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	err = watch(ep, cfd, EV_CHAN);
	if (!err && l->sock >= 0)
		err = watch(ep, l->sock, EV_SOCK);
	if (!err && l->tick_ns > 0) {
		tfd = start_timer(l->tick_ns);
		err = tfd < 0 ? tfd : watch(ep, tfd, EV_TIMER);
	}
	/* What was sent before ml_chan_fd() did not make it ready. */
	if (!err)
		err = evloop_drain(l, &work);

	while (!err) {
		struct epoll_event ev[3];
		int n = epoll_wait(ep, ev, 3, -1);

		if (n < 0) {
			if (errno != EINTR)
				err = -errno;
			continue;
		}
		l->wakeups++;
		work = 0;
		for (int i = 0; i < n && !err; i++) {
			switch (ev[i].data.u32) {
			case EV_CHAN: /* EPOLLHUP too: recv says -EPIPE */
				err = evloop_drain(l, &work);
				break;
			case EV_SOCK:
				err = read_socket(l, &work);
				break;
			case EV_TIMER:
				err = read_timer(l, tfd, &work);
				break;
			}
		}
		if (!work)
			l->idle++;
	}
	if (tfd >= 0)
		close(tfd);
	close(ep);
	return err > 0 ? 0 : err;
}

#ifndef EVLOOP_NO_MAIN
int main(void)
{
	return evloop_demo("epoll", evloop_epoll);
}
#endif

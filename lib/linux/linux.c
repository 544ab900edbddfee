// SPDX-License-Identifier: MIT
/*
 * The "linux" backend, on stock kernel primitives only, in the way Wayland
 * and PipeWire share memory between processes that do not trust each
 * other (wire.h has the protocol):
 *
 *   memory     a memfd, sealed so that it can neither shrink nor grow,
 *              passed to each client with SCM_RIGHTS
 *   rendezvous a SOCK_SEQPACKET socket in the abstract namespace,
 *              "\0memlink.<channel>"; the daemon's service thread
 *              (serve.c) admits clients by SO_PEERCRED against the mode
 *   doorbells  an eventfd per bell, made by the daemon, passed the same
 *              way; sleepers wait in epoll, so that the socket's POLLHUP
 *              wakes a client the moment its daemon dies
 *   liveness   the connection itself: the kernel closes it when its
 *              process goes, however it goes
 *
 * So nothing is left in any filesystem when every process of a channel
 * has gone, there is nothing to collect, and a name is free again the
 * moment its daemon's listening socket closes. Abstract names belong to a
 * network namespace: processes (containers) meet when they share one.
 *
 * Needs Linux 4.13 (SO_PEERGROUPS; before it, only a client's primary
 * group counts) and, for nanosecond sleeps, 5.11 (epoll_pwait2; before
 * it, sleeps round up to the millisecond).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lnx.h"

/* Our bell and, for a client, its daemon's connection, in the epoll set. */
#define EV_BELL 0u
#define EV_SOCK 1u

static bool linux_available(void)
{
	return true;
}

static struct ml__lnx *lnx_new(struct ml__shm *s)
{
	struct ml__lnx *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->memfd = l->efd = l->sock = l->tfd = l->stopfd = -1;
	for (unsigned b = 0; b < ML__BELLS; b++) {
		atomic_init(&l->bellfd[b], -1);
		l->peer[b].fd = -1;
	}
	for (unsigned i = 0; i < ML__WIRE_PENDING_MAX; i++)
		l->pending[i].fd = -1;
	s->lnx = l;
	return l;
}

static void linux_close(struct ml__shm *s)
{
	struct ml__lnx *l = ml__lnx(s);

	if (!l)
		return;
	if (s->creator)
		ml__lnx_serve_stop(s);
	if (s->base)
		munmap(s->base, s->len);
	s->base = NULL;
	/* The daemon's listening socket going frees the name. */
	if (l->sock >= 0)
		close(l->sock);
	if (l->efd >= 0)
		close(l->efd);
	if (l->memfd >= 0)
		close(l->memfd);
	for (unsigned b = 0; b < ML__BELLS; b++) {
		int fd = atomic_load_explicit(&l->bellfd[b], memory_order_relaxed);

		if (fd >= 0)
			close(fd);
	}
	free(l);
	s->lnx = NULL;
}

static int watch(int efd, int fd, uint32_t events, uint32_t what)
{
	struct epoll_event ev = { .events = events, .data.u32 = what };

	return epoll_ctl(efd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int map(struct ml__shm *s, int fd, size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	s->base = p;
	s->len = len;
	return 0;
}

/* Sleepers wait in epoll: an eventfd rung wakes them, edge-triggered. */
static int new_bell(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

static int linux_create(struct ml__shm *s, size_t len, unsigned mode)
{
	struct ml__lnx *l = lnx_new(s);
	struct sockaddr_un a;
	socklen_t alen;
	char name[ML_CHAN_NAME_MAX + 16];
	int err, fd;

	if (!l)
		return -ENOMEM;
	l->mode = mode;
	l->uid = (uint32_t)geteuid();
	l->gid = (uint32_t)getegid();
	/* The name first: of daemons starting together, one binds it. */
	l->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->sock < 0)
		goto fail_errno;
	alen = ml__lnx_addr(&a, s->name);
	if (bind(l->sock, (struct sockaddr *)&a, alen)) {
		err = errno == EADDRINUSE ? -EEXIST : -errno;
		goto fail;
	}
	snprintf(name, sizeof(name), ML__WIRE_PREFIX "%s", s->name);
	l->memfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (l->memfd < 0 || ftruncate(l->memfd, (off_t)len) ||
	    fcntl(l->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		goto fail_errno;
	err = map(s, l->memfd, len, PROT_READ | PROT_WRITE);
	if (err)
		goto fail;
	fd = new_bell();
	if (fd < 0) {
		err = fd;
		goto fail;
	}
	atomic_store_explicit(&l->bellfd[0], fd, memory_order_relaxed);
	l->efd = epoll_create1(EPOLL_CLOEXEC);
	if (l->efd < 0)
		goto fail_errno;
	err = watch(l->efd, fd, EPOLLIN | EPOLLET, EV_BELL);
	if (err)
		goto fail;
	return 0;
fail_errno:
	err = -errno;
fail:
	linux_close(s);
	return err;
}

/* The channel is laid out: let clients in. */
static int linux_ready(struct ml__shm *s)
{
	return ml__lnx_serve_start(s);
}

/* Connect to the channel's daemon; the daemon's uid and pid. */
static int dial(struct ml__lnx *l, const char *chan, struct ucred *cr)
{
	struct timeval tv = { ML__WIRE_REPLY_MS / 1000, 0 };
	socklen_t crlen = sizeof(*cr);
	struct sockaddr_un a;
	socklen_t alen = ml__lnx_addr(&a, chan);

	l->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (l->sock < 0)
		return -errno;
	/* A full backlog blocks connect() this long at most. */
	setsockopt(l->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(l->sock, (struct sockaddr *)&a, alen)) {
		/* No such name, or one nobody listens on (yet): no channel. */
		if (errno == ECONNREFUSED || errno == ENOENT)
			return -ENOENT;
		return errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;
	}
	if (getsockopt(l->sock, SOL_SOCKET, SO_PEERCRED, cr, &crlen) || crlen != sizeof(*cr))
		return -EPROTO;
	return 0;
}

/* Wait for the daemon's reply, up to ML__WIRE_REPLY_MS. */
static int await_reply(int sock)
{
	uint64_t end = ml__now_ns() + (uint64_t)ML__WIRE_REPLY_MS * 1000000;
	struct pollfd p = { .fd = sock, .events = POLLIN };

	for (;;) {
		uint64_t now = ml__now_ns();
		int r;

		if (now >= end)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)((end - now) / 1000000 + 1));
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* The errors a daemon may refuse with; anything else is a broken reply. */
static int refusal(int32_t err)
{
	switch (err) {
	case EACCES:
	case ECONNREFUSED:
	case EPROTO:
	case EPIPE:
		return -err;
	default:
		return -EPROTO;
	}
}

/*
 * Check a reply and what came with it; on success the descriptors are the
 * caller's, else all are closed.
 */
static int check_reply(const struct ml__wire_reply *r, ssize_t len, unsigned kind,
		       const int *fds, int n)
{
	bool join = kind == ML__WIRE_JOIN;

	if (len < (ssize_t)ML__WIRE_REPLY_SHORT || r->magic != ML__WIRE_MAGIC ||
	    r->version != ML__WIRE_VERSION || r->kind != kind)
		return -EPROTO;
	if (r->err)
		return n ? -EPROTO : refusal(r->err);
	if (len != (join ? (ssize_t)ML__WIRE_REPLY_SHORT : (ssize_t)sizeof(*r)) ||
	    n != (join ? ML__WIRE_JOIN_FDS : 1) || r->region_size < 4096 ||
	    r->region_size > SIZE_MAX || ml__lnx_check_memfd(fds[0], r->region_size))
		return -EPROTO;
	if (join)
		return r->bell >= 1 && r->bell < ML__BELLS && ml__lnx_is_eventfd(fds[1]) &&
			       ml__lnx_is_eventfd(fds[2]) ? 0 : -EPROTO;
	return r->npeers <= ML_CHAN_MAX_CLIENTS ? 0 : -EPROTO;
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

/* A client's bells and its epoll set, from the JOIN reply's descriptors. */
static int joined(struct ml__shm *s, unsigned bell, const int *fds)
{
	struct ml__lnx *l = ml__lnx(s);
	int err;

	atomic_store_explicit(&l->bellfd[0], fds[1], memory_order_relaxed);
	atomic_store_explicit(&l->bellfd[bell], fds[2], memory_order_relaxed);
	l->own = bell;
	s->bell = bell;
	/* A peer's write must never block us: the file is the peer's too. */
	err = nonblock(fds[1]);
	if (!err)
		err = nonblock(fds[2]);
	if (err)
		return err;
	l->efd = epoll_create1(EPOLL_CLOEXEC);
	if (l->efd < 0)
		return -errno;
	err = watch(l->efd, fds[2], EPOLLIN | EPOLLET, EV_BELL);
	return err ? err : watch(l->efd, l->sock, EPOLLIN | EPOLLRDHUP, EV_SOCK);
}

static int linux_open(struct ml__shm *s)
{
	struct ml__lnx *l = lnx_new(s);
	struct ml__wire_hello h = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = s->inspect ? ML__WIRE_INSPECT : ML__WIRE_JOIN,
	};
	struct ml__wire_reply *r;
	struct ucred cr;
	int fds[ML__WIRE_MAX_FDS], n = 0, err;
	ssize_t len;

	if (!l)
		return -ENOMEM;
	r = &l->status;
	err = dial(l, s->name, &cr);
	if (!err)
		err = ml__lnx_send(l->sock, &h, sizeof(h), NULL, 0);
	/* Refused at accept and closed already: its refusal waits to be read. */
	if (err == -EPIPE || err == -ECONNRESET)
		err = 0;
	if (!err)
		err = await_reply(l->sock);
	if (err == -ECONNRESET)
		err = -EPIPE;
	if (err)
		goto fail;
	len = ml__lnx_recv(l->sock, r, sizeof(*r), fds, &n, MSG_DONTWAIT);
	/* Closed without a word (or reset, our hello unread): it went, or would not have us. */
	err = len == 0 || len == -ECONNRESET ? -EPIPE : len == -EMSGSIZE ? -EPROTO :
	      len < 0 ? (int)len : 0;
	if (!err)
		err = check_reply(r, len, h.kind, fds, n);
	if (err)
		goto fail;
	l->peer_uid = (uint32_t)cr.uid;
	err = map(s, fds[0], (size_t)r->region_size,
		  s->inspect ? PROT_READ : PROT_READ | PROT_WRITE);
	close(fds[0]);
	fds[0] = -1;
	if (err)
		goto fail;
	if (!s->inspect) {
		/* fds[1..2] are our bells from here on, closed with them. */
		n = 0;
		err = joined(s, r->bell, fds);
		if (err)
			goto fail;
	}
	if (s->inspect) {
		/* The daemon has said all it will: it lived then. */
		close(l->sock);
		l->sock = -1;
	}
	return 0;
fail:
	ml__lnx_close_fds(fds, n);
	linux_close(s);
	return err;
}

static int linux_owner(struct ml__shm *s, uint32_t *uid)
{
	*uid = s->creator ? ml__lnx(s)->uid : ml__lnx(s)->peer_uid;
	return 0;
}

static int linux_cred(struct ml__shm *s, unsigned bell, uint32_t *uid, uint32_t *pid)
{
	struct ml__lnx *l = ml__lnx(s);

	if (!s->inspect || bell >= ML__BELLS)
		return -ENOTSUP;
	if (bell == 0) {
		*uid = l->status.daemon_uid;
		*pid = l->status.daemon_pid;
		return 0;
	}
	if (bell > l->status.npeers || !l->status.peer[bell - 1].alive)
		return -ENOENT;
	*uid = l->status.peer[bell - 1].uid;
	*pid = l->status.peer[bell - 1].pid;
	return 0;
}

/* Before Linux 5.11 (no epoll_pwait2): milliseconds, rounded up. */
static _Atomic bool no_pwait2;

static int sleep_in(int efd, struct epoll_event ev[2], const struct timespec *ts)
{
	long long ms;
	int n;

	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		n = epoll_pwait2(efd, ev, 2, ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
	if (!ts)
		return epoll_wait(efd, ev, 2, -1);
	ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	return epoll_wait(efd, ev, 2, ms > INT_MAX ? INT_MAX : (int)ms);
}

static int linux_wait(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word,
		      uint32_t expected, int64_t timeout_ns)
{
	struct ml__lnx *l = ml__lnx(s);
	struct epoll_event ev[2];
	struct timespec ts;
	int n;

	(void)bell;
	if (atomic_load_explicit(word, memory_order_acquire) != expected)
		return 0;
	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
	}
	n = sleep_in(l->efd, ev, timeout_ns >= 0 ? &ts : NULL);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++)
		if (ev[i].data.u32 == EV_SOCK)
			return -EPIPE; /* the daemon is gone (or broke the protocol) */
	return n ? 0 : -ETIMEDOUT;
}

static int linux_wake(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word)
{
	int fd = bell < ML__BELLS ?
			 atomic_load_explicit(&ml__lnx(s)->bellfd[bell], memory_order_relaxed) : -1;
	uint64_t one = 1;

	(void)word;
	/* EAGAIN: the count is at its maximum, so the sleeper wakes anyway. */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

/*
 * The daemon holds bell 0; the service thread holds a client's bell for
 * it while it gives it the slot (ml__chan_claim), and lets go when its
 * connection closes. A client holds the one bell it was given.
 */
static int linux_hold(struct ml__shm *s, unsigned bell)
{
	struct ml__lnx *l = ml__lnx(s);
	uint32_t free_ = 0;
	int fd;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (!s->creator)
		return bell && bell == l->own ? 0 : -EBUSY;
	if (bell == 0)
		return 0;
	if (!atomic_compare_exchange_strong_explicit(&l->live[bell], &free_, 1,
						     memory_order_acq_rel, memory_order_relaxed))
		return -EBUSY;
	if (atomic_load_explicit(&l->bellfd[bell], memory_order_relaxed) < 0) {
		fd = new_bell();
		if (fd < 0) {
			atomic_store_explicit(&l->live[bell], 0, memory_order_release);
			return fd;
		}
		atomic_store_explicit(&l->bellfd[bell], fd, memory_order_release);
	}
	return 0;
}

static void linux_unhold(struct ml__shm *s, unsigned bell)
{
	struct ml__lnx *l = ml__lnx(s);

	if (bell == 0 || bell >= ML__BELLS)
		return;
	if (s->creator) {
		atomic_store_explicit(&l->live[bell], 0, memory_order_release);
	} else if (bell == l->own && l->sock >= 0) {
		/* Leaving: the daemon's thread sees the connection close. */
		close(l->sock);
		l->sock = -1;
	}
}

static int linux_alive(struct ml__shm *s, unsigned bell)
{
	struct ml__lnx *l = ml__lnx(s);
	struct pollfd p;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (s->creator)
		return bell == 0 ? 1 : (int)atomic_load_explicit(&l->live[bell],
								  memory_order_acquire);
	if (s->inspect)
		return bell == 0 ? 1 : bell <= l->status.npeers && l->status.peer[bell - 1].alive;
	if (bell != 0)
		return -EINVAL;
	if (l->sock < 0)
		return 0;
	p.fd = l->sock;
	p.events = POLLIN | POLLRDHUP;
	/* Any news on a connection that must stay silent: gone, or broken. */
	return poll(&p, 1, 0) > 0 ? 0 : 1;
}

static int linux_fd(struct ml__shm *s, unsigned bell)
{
	(void)bell;
	return ml__lnx(s)->efd >= 0 ? ml__lnx(s)->efd : -ENOTSUP;
}

/* Take the bell's edges: the epoll set is readable again after a new ring. */
static void linux_fd_ack(struct ml__shm *s)
{
	struct epoll_event ev[2];

	(void)!epoll_wait(ml__lnx(s)->efd, ev, 2, 0);
}

/* Nothing is ever left behind to collect. */
static int linux_gc(const char *name)
{
	(void)name;
	return 0;
}

const struct ml__backend ml__backend_linux = {
	.name = "linux",
	.id = ML_BACKEND_LINUX,
	.notifies_peer_gone = true,
	.notifies_client_gone = true,
	.live_slice_ns = 250000,
	.available = linux_available,
	.create = linux_create,
	.ready = linux_ready,
	.open = linux_open,
	.owner = linux_owner,
	.cred = linux_cred,
	.close = linux_close,
	.wait = linux_wait,
	.wake = linux_wake,
	.hold = linux_hold,
	.unhold = linux_unhold,
	.alive = linux_alive,
	.fd = linux_fd,
	.fd_ack = linux_fd_ack,
	.list = ml__lnx_list,
	.gc = linux_gc,
};

// SPDX-License-Identifier: MIT
/*
 * The "linux" backend, on stock kernel primitives only, in the way Wayland
 * and PipeWire share memory between processes that do not trust each
 * other (wire.h has the protocol):
 *
 *   memory     memfds, sealed so that they can neither shrink nor grow,
 *              passed with SCM_RIGHTS: the control region, sealed
 *              against writing once the daemon has mapped it, so that
 *              clients can only read it; and for each connection an area
 *              of its own (chan_layout.h), which only that client and
 *              the daemon ever hold
 *   rendezvous a SOCK_SEQPACKET socket in the abstract namespace,
 *              "\0memlink.<channel>"; the daemon's service thread
 *              (serve.c) admits clients by SO_PEERCRED against the mode
 *   doorbells  eventfds, made by the daemon for each connection (one to
 *              ring the client, one to ring the daemon), passed the same
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
 * group counts); 5.1 to keep clients from writing the control region
 * (F_SEAL_FUTURE_WRITE; before it, a client could map it for writing
 * through /proc/self/fd); and, for nanosecond sleeps, 5.11 (epoll_pwait2;
 * before it, sleeps round up to the millisecond).
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

#include "../posix/sock.h"
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
		atomic_init(&l->dbellfd[b], -1);
		l->areafd[b] = -1;
		l->peer[b].fd = -1;
	}
	for (unsigned i = 0; i < ML__WIRE_PENDING_MAX; i++)
		l->pending[i].fd = -1;
	s->lnx = l;
	return l;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void close_bell(_Atomic int *bell)
{
	int fd = atomic_exchange_explicit(bell, -1, memory_order_relaxed);

	if (fd >= 0)
		close(fd);
}

/*
 * The daemon lets slot i's area and this connection's bells go. Its
 * client, if alive, keeps its own: nobody else will ever see them.
 */
static void linux_area_free(struct ml__shm *s, unsigned i)
{
	struct ml__lnx *l = ml__lnx(s);
	unsigned b = 1 + i;
	int dfd;

	if (i >= ML_CHAN_MAX_CLIENTS)
		return;
	if (s->area[i])
		munmap(s->area[i], s->area_len);
	s->area[i] = NULL;
	close_fd(&l->areafd[b]);
	dfd = atomic_load_explicit(&l->dbellfd[b], memory_order_relaxed);
	/* Its client may hold the file open: leave no stale entry in our set. */
	if (dfd >= 0 && l->efd >= 0)
		epoll_ctl(l->efd, EPOLL_CTL_DEL, dfd, NULL);
	close_bell(&l->dbellfd[b]);
	close_bell(&l->bellfd[b]);
}

static void linux_close(struct ml__shm *s)
{
	struct ml__lnx *l = ml__lnx(s);

	if (!l)
		return;
	if (s->creator) {
		ml__lnx_serve_stop(s);
		for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
			linux_area_free(s, i);
	} else if (l->own && s->area[l->own - 1]) {
		munmap(s->area[l->own - 1], s->area_len);
		s->area[l->own - 1] = NULL;
	}
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
		close_bell(&l->bellfd[b]);
		close_bell(&l->dbellfd[b]);
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

/* A sealed memfd of `len` bytes, mapped read-write at *p. */
static int new_memory(const char *name, size_t len, void **p)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), err;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) {
		err = -errno;
		close(fd);
		return err;
	}
	*p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*p == MAP_FAILED) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* A new area for slot i, for the connection being admitted (serve.c's thread). */
static int linux_area_new(struct ml__shm *s, unsigned i, size_t len)
{
	struct ml__lnx *l = ml__lnx(s);
	char name[ML_CHAN_NAME_MAX + 32];
	void *p;
	int fd;

	if (i >= ML_CHAN_MAX_CLIENTS || l->areafd[1 + i] >= 0)
		return -EINVAL;
	snprintf(name, sizeof(name), ML__WIRE_PREFIX "%s.%u", s->name, i);
	fd = new_memory(name, len, &p);
	if (fd < 0)
		return fd;
	/* Nothing can be added to it or taken from it any more. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL)) {
		munmap(p, len);
		close(fd);
		return -errno;
	}
	l->areafd[1 + i] = fd;
	l->made[0] = fd;
	s->area[i] = p;
	return 0;
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
	fd = new_memory(name, len, (void **)&s->base);
	if (fd < 0) {
		s->base = NULL;
		err = fd;
		goto fail;
	}
	l->memfd = fd;
	s->len = len;
	/*
	 * Our mapping stays writable; nobody can map it for writing from
	 * now on, or write() it (a kernel before 5.1 cannot seal so).
	 */
	if (fcntl(fd, F_ADD_SEALS, ML__F_SEAL_FUTURE_WRITE) && errno != EINVAL)
		goto fail_errno;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL))
		goto fail_errno;
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
		return n ? -EPROTO : ml__px_refusal(r->err);
	if (len != (join ? (ssize_t)ML__WIRE_REPLY_SHORT : (ssize_t)sizeof(*r)) ||
	    n != (join ? ML__WIRE_JOIN_FDS : 1) || r->region_size < 4096 ||
	    r->region_size > SIZE_MAX || ml__lnx_check_memfd(fds[0], r->region_size, false))
		return -EPROTO;
	if (join)
		return r->bell >= 1 && r->bell < ML__BELLS && r->area_size >= 4096 &&
			       r->area_size <= SIZE_MAX &&
			       !ml__lnx_check_memfd(fds[1], r->area_size, true) &&
			       ml__lnx_is_eventfd(fds[2]) && ml__lnx_is_eventfd(fds[3]) ? 0 :
			       -EPROTO;
	return r->npeers <= ML_CHAN_MAX_CLIENTS ? 0 : -EPROTO;
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

/*
 * A client's area, bells and epoll set, from the JOIN reply's descriptors
 * [control region, area, daemon bell, client bell] (the first is mapped
 * already). The bells are ours from here on, closed with us.
 */
static int joined(struct ml__shm *s, const struct ml__wire_reply *r, const int *fds)
{
	struct ml__lnx *l = ml__lnx(s);
	unsigned bell = r->bell;
	void *p;
	int err;

	atomic_store_explicit(&l->bellfd[0], fds[2], memory_order_relaxed);
	atomic_store_explicit(&l->bellfd[bell], fds[3], memory_order_relaxed);
	l->own = bell;
	s->bell = bell;
	p = mmap(NULL, (size_t)r->area_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (p == MAP_FAILED)
		return errno == EPERM ? -EPROTO : -errno;
	s->area[bell - 1] = p;
	s->area_len = (size_t)r->area_size;
	/* A peer's write must never block us: the file is the peer's too. */
	err = nonblock(fds[2]);
	if (!err)
		err = nonblock(fds[3]);
	if (err)
		return err;
	l->efd = epoll_create1(EPOLL_CLOEXEC);
	if (l->efd < 0)
		return -errno;
	err = watch(l->efd, fds[3], EPOLLIN | EPOLLET, EV_BELL);
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
	/* Only the daemon writes the control region. */
	err = map(s, fds[0], (size_t)r->region_size, PROT_READ);
	close(fds[0]);
	fds[0] = -1;
	if (err)
		goto fail;
	if (!s->inspect) {
		err = joined(s, r, fds);
		close(fds[1]);
		fds[1] = -1;
		n = 0;
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
 *
 * Each connection gets bells of its own, both ways: a client that left
 * but lives on must not ring, or drain, its successor's. They go with
 * the slot's area (linux_area_free), which the daemon lets go before it
 * frees the slot, so a slot being taken has none.
 */
static int linux_hold(struct ml__shm *s, unsigned bell)
{
	struct ml__lnx *l = ml__lnx(s);
	uint32_t free_ = 0;
	int cfd, dfd, err;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (!s->creator)
		return bell && bell == l->own ? 0 : -EBUSY;
	if (bell == 0)
		return 0;
	if (atomic_load_explicit(&l->bellfd[bell], memory_order_relaxed) >= 0 ||
	    !atomic_compare_exchange_strong_explicit(&l->live[bell], &free_, 1,
						     memory_order_acq_rel, memory_order_relaxed))
		return -EBUSY;
	cfd = new_bell();
	dfd = cfd < 0 ? -1 : new_bell();
	err = cfd < 0 ? cfd : dfd < 0 ? dfd : watch(l->efd, dfd, EPOLLIN | EPOLLET, EV_BELL);
	if (err) {
		if (cfd >= 0)
			close(cfd);
		if (dfd >= 0)
			close(dfd);
		atomic_store_explicit(&l->live[bell], 0, memory_order_release);
		return err;
	}
	atomic_store_explicit(&l->bellfd[bell], cfd, memory_order_release);
	atomic_store_explicit(&l->dbellfd[bell], dfd, memory_order_release);
	l->made[1] = dfd;
	l->made[2] = cfd;
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

/*
 * Take the bells' edges (a daemon has one per client): the epoll set is
 * readable again after a new ring.
 */
static void linux_fd_ack(struct ml__shm *s)
{
	struct epoll_event ev[ML__BELLS + 1];

	(void)!epoll_wait(ml__lnx(s)->efd, ev, ML__BELLS + 1, 0);
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
	.private_areas = true,
	.available = linux_available,
	.create = linux_create,
	.ready = linux_ready,
	.open = linux_open,
	.owner = linux_owner,
	.cred = linux_cred,
	.area_new = linux_area_new,
	.area_free = linux_area_free,
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

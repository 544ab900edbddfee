// SPDX-License-Identifier: MIT
/*
 * The daemon's service thread (linux backend): it accepts clients on the
 * channel's socket, checks who they are, gives each a slot with the
 * channel's memory and doorbells, and watches their connections, so that
 * a client that dies is known at once. It blocks every signal, sleeps in
 * epoll_wait() and never touches the rings: the daemon's hot path is the
 * same as without it.
 *
 * A peer may be hostile. Whatever it sends is read without blocking, at
 * most one message a wake-up; any descriptor it sends is closed; one that
 * breaks the protocol loses its connection, one that says nothing loses it
 * after ML__WIRE_HELLO_MS, and at most ML__WIRE_PENDING_MAX wait at once
 * (the oldest goes). Nothing it does stops the thread serving others.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lnx.h"

enum tag { TAG_STOP = 1, TAG_LISTEN, TAG_PENDING, TAG_PEER };

/* What an epoll event is about: kind, index, and the descriptor meant. */
static uint64_t tag(enum tag kind, unsigned i, int fd)
{
	return (uint64_t)kind << 56 | (uint64_t)i << 32 | (uint32_t)fd;
}

/* Wake the daemon: a client came or went. */
static void changed(struct ml__shm *s)
{
	struct ml__lnx *l = ml__lnx(s);
	uint64_t one = 1;
	int fd = atomic_load_explicit(&l->bellfd[0], memory_order_relaxed);

	atomic_fetch_add_explicit(&s->changes, 1, memory_order_release);
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: rung 2^64 - 2 times already, it wakes */
}

static void drop_pending(struct ml__lnx *l, unsigned i)
{
	if (l->pending[i].fd < 0)
		return;
	epoll_ctl(l->tfd, EPOLL_CTL_DEL, l->pending[i].fd, NULL);
	close(l->pending[i].fd);
	l->pending[i].fd = -1;
}

static void drop_peer(struct ml__shm *s, unsigned b)
{
	struct ml__lnx *l = ml__lnx(s);

	if (l->peer[b].fd < 0)
		return;
	epoll_ctl(l->tfd, EPOLL_CTL_DEL, l->peer[b].fd, NULL);
	close(l->peer[b].fd);
	l->peer[b].fd = -1;
	atomic_store_explicit(&l->live[b], 0, memory_order_release);
	changed(s);
}

static bool in_groups(gid_t g, const gid_t *v, int n)
{
	for (int i = 0; i < n; i++)
		if (v[i] == g)
			return true;
	return false;
}

/*
 * May this peer use the channel? As a file of the daemon's uid and gid
 * with the channel's mode would say (read and write both needed), with
 * the credentials and groups the kernel gives for the connection. Root
 * may, as it may open any file.
 */
static bool admitted(const struct ml__lnx *l, int fd, struct ucred *cr)
{
	gid_t groups[256];
	socklen_t len = sizeof(*cr), glen = sizeof(groups);
	unsigned bits;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &len) || len != sizeof(*cr))
		return false;
	if (cr->uid == 0)
		return true;
	if (cr->uid == l->uid) {
		bits = l->mode >> 6;
	} else {
		bool member = cr->gid == l->gid;

		/* Supplementary groups since Linux 4.13; more than 256: not counted. */
		if (!member && !getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen))
			member = in_groups(l->gid, groups, (int)(glen / sizeof(gid_t)));
		bits = member ? l->mode >> 3 : l->mode;
	}
	return (bits & 6) == 6;
}

/*
 * A new connection waits for its hello. When all places are taken, the
 * one silent longest goes, one the mode refuses (`refused`, by its
 * credentials at accept) before any it admits; and a refused newcomer
 * takes no admitted one's place: a user the mode refuses cannot keep
 * those it admits out by flooding.
 */
static void add_pending(struct ml__lnx *l, int fd, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	struct ucred cr = { 0 };
	/* A connection's credentials are its connect()'s: look once. */
	bool refused = !admitted(l, fd, &cr);
	unsigned at = ML__WIRE_PENDING_MAX;

	unsigned oldest = ML__WIRE_PENDING_MAX, oldest_refused = ML__WIRE_PENDING_MAX;

	for (unsigned i = 0; i < ML__WIRE_PENDING_MAX && at == ML__WIRE_PENDING_MAX; i++) {
		const struct ml__lnx_pending *p = &l->pending[i];

		if (p->fd < 0)
			at = i;
		else if (p->refused && (oldest_refused == ML__WIRE_PENDING_MAX ||
					p->since_ns < l->pending[oldest_refused].since_ns))
			oldest_refused = i;
		else if (!p->refused && (oldest == ML__WIRE_PENDING_MAX ||
					 p->since_ns < l->pending[oldest].since_ns))
			oldest = i;
	}
	if (at == ML__WIRE_PENDING_MAX)
		at = oldest_refused != ML__WIRE_PENDING_MAX ? oldest_refused :
		     refused ? ML__WIRE_PENDING_MAX : oldest;
	if (at == ML__WIRE_PENDING_MAX) {
		close(fd);
		return;
	}
	drop_pending(l, at);
	ev.data.u64 = tag(TAG_PENDING, at, fd);
	if (epoll_ctl(l->tfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		return;
	}
	l->pending[at].fd = fd;
	l->pending[at].since_ns = now;
	l->pending[at].refused = refused;
	l->pending[at].cr = cr;
}

static void listen_on(struct ml__lnx *l, bool on)
{
	struct epoll_event ev = {
		.events = on ? EPOLLIN : 0,
		.data.u64 = tag(TAG_LISTEN, 0, l->sock),
	};

	epoll_ctl(l->tfd, EPOLL_CTL_MOD, l->sock, &ev);
}

/*
 * At most a table's worth a wake-up: the socket stays readable, and the
 * hellos of those accepted are read in between.
 */
static void accept_all(struct ml__lnx *l, uint64_t now)
{
	for (unsigned k = 0; k < ML__WIRE_PENDING_MAX; k++) {
		int fd = accept4(l->sock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			add_pending(l, fd, now);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		/*
		 * Out of descriptors or memory: the socket stays readable, so
		 * stop looking at it for a while instead of spinning on it.
		 */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			listen_on(l, false);
			l->listen_paused_ns = now + 100000000;
		}
		return;
	}
}

static int reply(int fd, const struct ml__wire_hello *h, int err, const int *fds, int n,
		 const struct ml__wire_reply *full)
{
	struct ml__wire_reply r = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = h->kind,
		.err = err,
	};

	if (full)
		return ml__lnx_send(fd, full, sizeof(*full), fds, n);
	return ml__lnx_send(fd, &r, ML__WIRE_REPLY_SHORT, fds, n);
}

static void inspect(struct ml__shm *s, int fd, const struct ml__wire_hello *h)
{
	struct ml__lnx *l = ml__lnx(s);
	struct ml__wire_reply r = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = h->kind,
		.region_size = s->len,
		.npeers = ML__BELLS - 1,
		.daemon_uid = l->uid,
		.daemon_gid = l->gid,
		.daemon_pid = (uint32_t)l->pid,
	};

	for (unsigned b = 1; b < ML__BELLS; b++) {
		struct ml__wire_peer *p = &r.peer[b - 1];

		p->alive = atomic_load_explicit(&l->live[b], memory_order_acquire) &&
			   l->peer[b].fd >= 0;
		if (l->peer[b].fd >= 0) {
			p->uid = l->peer[b].uid;
			p->gid = l->peer[b].gid;
			p->pid = l->peer[b].pid;
		}
	}
	reply(fd, h, 0, &l->memfd, 1, &r);
}

/* A JOIN: a slot, and the memory and doorbells to go with it. */
static void join(struct ml__shm *s, unsigned i, const struct ml__wire_hello *h,
		 const struct ucred *cr)
{
	struct ml__lnx *l = ml__lnx(s);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	struct ml__wire_reply r = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = h->kind,
		.region_size = s->len,
		.area_size = s->area_len,
	};
	int fd = l->pending[i].fd, fds[ML__WIRE_JOIN_FDS];
	int bell = ml__chan_claim(s);

	if (bell < 0) {
		reply(fd, h, -bell, NULL, 0, NULL);
		drop_pending(l, i);
		return;
	}
	/* The daemon looks at the new slot, and then for its client's hello. */
	changed(s);
	r.bell = (uint32_t)bell;
	/*
	 * What the claim made, as this thread noted it (lnx.h): the slot is
	 * the daemon's to free from now on. It frees it only once the
	 * client says it left or its connection is gone, both after the
	 * reply, but nothing here may rely on that.
	 */
	fds[0] = l->memfd;
	fds[1] = l->made[0];
	fds[2] = l->made[1];
	fds[3] = l->made[2];
	ev.data.u64 = tag(TAG_PEER, (unsigned)bell, fd);
	if (ml__lnx_send(fd, &r, ML__WIRE_REPLY_SHORT, fds, ML__WIRE_JOIN_FDS) ||
	    epoll_ctl(l->tfd, EPOLL_CTL_MOD, fd, &ev)) {
		/* Claimed, but the client never got it: the daemon frees it. */
		drop_pending(l, i);
		atomic_store_explicit(&l->live[bell], 0, memory_order_release);
		changed(s);
		return;
	}
	l->peer[bell].fd = fd;
	l->peer[bell].uid = (uint32_t)cr->uid;
	l->peer[bell].gid = (uint32_t)cr->gid;
	l->peer[bell].pid = (uint32_t)cr->pid;
	l->pending[i].fd = -1;
}

/* A connection that has not said hello yet has something for us. */
static void hello(struct ml__shm *s, unsigned i)
{
	struct ml__lnx *l = ml__lnx(s);
	union {
		struct ml__wire_hello h;
		char b[sizeof(struct ml__wire_hello) + 1];
	} u;
	int fds[ML__WIRE_MAX_FDS], n, fd = l->pending[i].fd;
	ssize_t r = ml__lnx_recv(fd, &u, sizeof(u), fds, &n, MSG_DONTWAIT);

	if (r == -EAGAIN)
		return;
	ml__lnx_close_fds(fds, n);
	/* Gone, or descriptors, or too long: no answer. */
	if (r <= 0 || n) {
		drop_pending(l, i);
		return;
	}
	if ((size_t)r != sizeof(u.h) || u.h.magic != ML__WIRE_MAGIC ||
	    u.h.version != ML__WIRE_VERSION || u.h.flags || u.h.pad ||
	    (u.h.kind != ML__WIRE_JOIN && u.h.kind != ML__WIRE_INSPECT)) {
		if ((size_t)r >= 8 && u.h.magic == ML__WIRE_MAGIC)
			reply(fd, &u.h, EPROTO, NULL, 0, NULL);
		drop_pending(l, i);
		return;
	}
	if (l->pending[i].refused) {
		reply(fd, &u.h, EACCES, NULL, 0, NULL);
		drop_pending(l, i);
		return;
	}
	if (u.h.kind == ML__WIRE_INSPECT) {
		inspect(s, fd, &u.h);
		drop_pending(l, i);
		return;
	}
	join(s, i, &u.h, &l->pending[i].cr);
}

/*
 * Silent too long: let go, unless its hello is there after all (a long
 * wake-up may have kept us from it). The next time anyone is due, in ms
 * (-1: none).
 */
static int reap(struct ml__shm *s, uint64_t now)
{
	struct ml__lnx *l = ml__lnx(s);
	const uint64_t limit = (uint64_t)ML__WIRE_HELLO_MS * 1000000;
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < ML__WIRE_PENDING_MAX; i++) {
		if (l->pending[i].fd < 0)
			continue;
		if (now - l->pending[i].since_ns >= limit) {
			int fd = l->pending[i].fd;

			hello(s, i);
			if (l->pending[i].fd == fd)
				drop_pending(l, i);
		} else if (l->pending[i].since_ns + limit < next) {
			next = l->pending[i].since_ns + limit;
		}
	}
	if (l->listen_paused_ns) {
		if (now >= l->listen_paused_ns) {
			l->listen_paused_ns = 0;
			listen_on(l, true);
		} else if (l->listen_paused_ns < next) {
			next = l->listen_paused_ns;
		}
	}
	return next == UINT64_MAX ? -1 : (int)((next - now) / 1000000 + 1);
}

static void *serve(void *arg)
{
	struct ml__shm *s = arg;
	struct ml__lnx *l = ml__lnx(s);
	struct epoll_event ev[16];
	int timeout = -1;

	for (;;) {
		int n = epoll_wait(l->tfd, ev, 16, timeout);
		uint64_t now = ml__now_ns();

		for (int k = 0; k < n; k++) {
			unsigned kind = (unsigned)(ev[k].data.u64 >> 56);
			unsigned i = (unsigned)(ev[k].data.u64 >> 32) & 0xffffff;
			int fd = (int)(uint32_t)ev[k].data.u64;

			if (kind == TAG_STOP)
				return NULL;
			if (kind == TAG_LISTEN)
				accept_all(l, now);
			else if (kind == TAG_PENDING && i < ML__WIRE_PENDING_MAX &&
				 l->pending[i].fd == fd)
				hello(s, i);
			/* A client's connection: closed, or it broke the protocol. */
			else if (kind == TAG_PEER && i < ML__BELLS && l->peer[i].fd == fd)
				drop_peer(s, i);
		}
		timeout = reap(s, ml__now_ns());
	}
}

static int watch(struct ml__lnx *l, int fd, enum tag kind)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag(kind, 0, fd) };

	return epoll_ctl(l->tfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int ml__lnx_serve_start(struct ml__shm *s)
{
	struct ml__lnx *l = ml__lnx(s);
	sigset_t all, old;
	int err;

	l->tfd = epoll_create1(EPOLL_CLOEXEC);
	l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->tfd < 0 || l->stopfd < 0)
		return -errno;
	err = watch(l, l->stopfd, TAG_STOP);
	if (!err)
		err = watch(l, l->sock, TAG_LISTEN);
	if (!err && listen(l->sock, 128))
		err = -errno;
	if (err)
		return err;
	/* Signals are the daemon's: none is ever delivered to this thread. */
	l->pid = getpid();
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&l->thread, NULL, serve, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return err;
	l->running = true;
	return 0;
}

void ml__lnx_serve_stop(struct ml__shm *s)
{
	struct ml__lnx *l = ml__lnx(s);
	uint64_t one = 1;

	/* A fork()ed child has the descriptors but not the thread. */
	if (l->running && getpid() == l->pid) {
		if (write(l->stopfd, &one, sizeof(one)) == sizeof(one))
			pthread_join(l->thread, NULL);
	}
	l->running = false;
	for (unsigned i = 0; i < ML__WIRE_PENDING_MAX; i++)
		if (l->pending[i].fd >= 0)
			close(l->pending[i].fd);
	for (unsigned b = 0; b < ML__BELLS; b++)
		if (l->peer[b].fd >= 0)
			close(l->peer[b].fd);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->stopfd >= 0)
		close(l->stopfd);
	l->tfd = l->stopfd = -1;
}

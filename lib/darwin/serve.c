// SPDX-License-Identifier: MIT
/*
 * The daemon's service thread (darwin backend), as lib/linux/serve.c but
 * with poll() (kqueue would do too; poll is enough for 1 + 32 + 32
 * descriptors and is the same call on both systems): it accepts clients
 * on the channel's socket, checks who they are (LOCAL_PEERCRED), gives
 * each a slot with an area of its own, and watches their connections:
 * a client that dies is known at once (EOF), and a knock (any byte) rings
 * the daemon's bell. It blocks every signal and never touches the rings.
 *
 * A peer may be hostile: whatever it sends is read without blocking; a
 * descriptor it sends is closed and costs it its connection; one that says
 * nothing loses it after ML__DW_HELLO_MS, and at most ML__DW_PENDING_MAX
 * wait at once (the oldest goes, one the mode refuses first).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan_layout.h"
#include "dwn.h"

/* The daemon's bell word, in its own (writable) mapping of the control region. */
static _Atomic uint32_t *daemon_word(struct ml__shm *s)
{
	return &((struct ml__ctl *)s->base)->bell.seq;
}

/*
 * Ring the daemon: the word changes before the wake, so that a daemon
 * about to sleep on its old value does not (no wake-up is lost).
 */
static void ring(struct ml__shm *s)
{
	atomic_fetch_add_explicit(daemon_word(s), 1, memory_order_seq_cst);
	ml__dw_wake_word(daemon_word(s));
}

/* A client came or went: the daemon looks at who is alive. */
static void changed(struct ml__shm *s)
{
	atomic_fetch_add_explicit(&s->changes, 1, memory_order_release);
	ring(s);
}

static void drop_pending(struct ml__darwin *d, unsigned i)
{
	if (d->pending[i].fd < 0)
		return;
	close(d->pending[i].fd);
	d->pending[i].fd = -1;
}

static void drop_peer(struct ml__shm *s, unsigned b)
{
	struct ml__darwin *d = s->darwin;

	if (d->peer[b] < 0)
		return;
	close(d->peer[b]);
	d->peer[b] = -1;
	ml__dw_unhold_client(s, b);
	changed(s);
}

static bool in_groups(gid_t g, const struct xucred *xu)
{
	for (int i = 0; i < xu->cr_ngroups && i < (int)(sizeof(xu->cr_groups) / sizeof(gid_t)); i++)
		if (xu->cr_groups[i] == g)
			return true;
	return false;
}

/*
 * May this peer use the channel? As a file of the daemon's uid and gid
 * with the channel's mode would say (read and write both), for the
 * credentials the kernel took at connect(): the effective uid and up to
 * 16 groups, the effective gid first. Root may, as it may open any file.
 */
static bool admitted(const struct ml__darwin *d, int fd)
{
	struct xucred xu;
	unsigned bits;

	if (ml__dw_peercred(fd, &xu))
		return false;
	if (xu.cr_uid == 0)
		return true;
	if (xu.cr_uid == d->uid)
		bits = d->mode >> 6;
	else
		bits = in_groups(d->gid, &xu) ? d->mode >> 3 : d->mode;
	return (bits & 6) == 6;
}

/* As linux's add_pending(): a refused flood cannot keep admitted newcomers out. */
static void add_pending(struct ml__darwin *d, int fd, uint64_t now)
{
	bool refused = !admitted(d, fd);
	unsigned at = ML__DW_PENDING_MAX, oldest = ML__DW_PENDING_MAX,
		 oldest_refused = ML__DW_PENDING_MAX;

	for (unsigned i = 0; i < ML__DW_PENDING_MAX && at == ML__DW_PENDING_MAX; i++) {
		const struct ml__dw_pending *p = &d->pending[i];

		if (p->fd < 0)
			at = i;
		else if (p->refused && (oldest_refused == ML__DW_PENDING_MAX ||
					p->since_ns < d->pending[oldest_refused].since_ns))
			oldest_refused = i;
		else if (!p->refused && (oldest == ML__DW_PENDING_MAX ||
					 p->since_ns < d->pending[oldest].since_ns))
			oldest = i;
	}
	if (at == ML__DW_PENDING_MAX)
		at = oldest_refused != ML__DW_PENDING_MAX ? oldest_refused :
		     refused ? ML__DW_PENDING_MAX : oldest;
	if (at == ML__DW_PENDING_MAX) {
		close(fd);
		return;
	}
	drop_pending(d, at);
	d->pending[at].fd = fd;
	d->pending[at].since_ns = now;
	d->pending[at].refused = refused;
}

static void accept_all(struct ml__darwin *d, uint64_t now)
{
	for (unsigned k = 0; k < ML__DW_PENDING_MAX; k++) {
		int one = 1, fd = accept(d->sock, NULL, NULL);

		if (fd >= 0) {
			/* No accept4() on macOS; the listener is non-blocking, not its children. */
			if (ml__dw_fd_flags(fd, true) ||
			    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one))) {
				close(fd);
				continue;
			}
			add_pending(d, fd, now);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		/* Out of descriptors: look again later rather than spin on it. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			d->listen_paused_ns = now + 100000000;
		return;
	}
}

static int reply(struct ml__shm *s, int fd, uint16_t kind, int err, uint32_t bell,
		 const int *fds, int n)
{
	struct ml__dw_reply r = {
		.magic = ML__DW_MAGIC,
		.version = ML__DW_VERSION,
		.kind = kind,
		.err = err,
		.bell = bell,
		.area_size = err || kind != ML__DW_JOIN ? 0 : s->area_len,
		.region_size = err ? 0 : s->len,
	};

	return ml__dw_send(fd, &r, sizeof(r), fds, n);
}

/* A JOIN: a slot, and its area. */
static void join(struct ml__shm *s, unsigned i)
{
	struct ml__darwin *d = s->darwin;
	int fd = d->pending[i].fd, bell = ml__chan_claim(s), fds[2];

	if (bell < 0) {
		reply(s, fd, ML__DW_JOIN, -bell, 0, NULL, 0);
		drop_pending(d, i);
		return;
	}
	/* The daemon looks at the new slot, and then for its client's hello. */
	changed(s);
	/*
	 * From the note this thread made (dwn.h): the slot is the daemon's
	 * to free from now on, and with it areafd[].
	 */
	fds[0] = d->ro;
	fds[1] = d->made;
	if (reply(s, fd, ML__DW_JOIN, 0, (uint32_t)bell, fds, 2)) {
		drop_pending(d, i);
		ml__dw_unhold_client(s, (unsigned)bell);
		changed(s);
		return;
	}
	d->peer[bell] = fd;
	d->pending[i].fd = -1;
}

/* A connection that has not said hello yet has something for us. */
static void hello(struct ml__shm *s, unsigned i)
{
	struct ml__darwin *d = s->darwin;
	struct ml__dw_hello h;
	int fd = d->pending[i].fd, got[ML__DW_MAX_FDS], ngot = 0;
	ssize_t n;
	size_t have = 0;
	int r;

	/* All 16 bytes there, or wait for them (the reaper ends a wait too long). */
	n = recv(fd, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n > 0 && (size_t)n < sizeof(h))
		return;
	r = n <= 0 ? -EPIPE : ml__dw_recv(fd, &h, sizeof(h), &have, got, &ngot);
	for (int k = 0; k < ngot; k++)
		close(got[k]);
	/* Gone, or descriptors: no answer. */
	if (r != 1 || ngot) {
		drop_pending(d, i);
		return;
	}
	if (h.magic != ML__DW_MAGIC || h.version != ML__DW_VERSION ||
	    (h.kind != ML__DW_JOIN && h.kind != ML__DW_INSPECT) || h.flags || h.pad) {
		if (h.magic == ML__DW_MAGIC)
			reply(s, fd, h.kind, EPROTO, 0, NULL, 0);
		drop_pending(d, i);
		return;
	}
	if (d->pending[i].refused) {
		reply(s, fd, h.kind, EACCES, 0, NULL, 0);
		drop_pending(d, i);
		return;
	}
	if (h.kind == ML__DW_INSPECT) {
		reply(s, fd, h.kind, 0, 0, &d->ro, 1);
		drop_pending(d, i);
		return;
	}
	join(s, i);
}

/* A client's connection is readable: knocks, or it went (EOF or error). */
static void peer_readable(struct ml__shm *s, unsigned b)
{
	struct ml__darwin *d = s->darwin;
	char buf[64];
	ssize_t n = recv(d->peer[b], buf, sizeof(buf), MSG_DONTWAIT);

	if (n > 0)
		ring(s);
	else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		drop_peer(s, b);
}

/* Silent too long: let go. The next time anyone is due, in ms (-1: none). */
static int reap(struct ml__shm *s, uint64_t now)
{
	struct ml__darwin *d = s->darwin;
	const uint64_t limit = (uint64_t)ML__DW_HELLO_MS * 1000000;
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < ML__DW_PENDING_MAX; i++) {
		if (d->pending[i].fd < 0)
			continue;
		if (now - d->pending[i].since_ns >= limit) {
			int fd = d->pending[i].fd;

			hello(s, i);
			if (d->pending[i].fd == fd)
				drop_pending(d, i);
		} else if (d->pending[i].since_ns + limit < next) {
			next = d->pending[i].since_ns + limit;
		}
	}
	if (d->listen_paused_ns) {
		if (now >= d->listen_paused_ns)
			d->listen_paused_ns = 0;
		else if (d->listen_paused_ns < next)
			next = d->listen_paused_ns;
	}
	return next == UINT64_MAX ? -1 : (int)((next - now) / 1000000 + 1);
}

enum tag { TAG_STOP, TAG_LISTEN, TAG_PENDING, TAG_PEER };

static void *serve(void *arg)
{
	struct ml__shm *s = arg;
	struct ml__darwin *d = s->darwin;
	struct pollfd p[2 + ML__DW_PENDING_MAX + ML__BELLS];
	uint8_t kind[sizeof(p) / sizeof(p[0])], idx[sizeof(p) / sizeof(p[0])];
	int timeout = -1;

	for (;;) {
		unsigned n = 0;
		int r;

		p[n] = (struct pollfd){ .fd = d->stop[0], .events = POLLIN };
		kind[n++] = TAG_STOP;
		if (!d->listen_paused_ns) {
			p[n] = (struct pollfd){ .fd = d->sock, .events = POLLIN };
			kind[n++] = TAG_LISTEN;
		}
		for (unsigned i = 0; i < ML__DW_PENDING_MAX; i++)
			if (d->pending[i].fd >= 0) {
				p[n] = (struct pollfd){ .fd = d->pending[i].fd, .events = POLLIN };
				kind[n] = TAG_PENDING;
				idx[n++] = (uint8_t)i;
			}
		for (unsigned b = 1; b < ML__BELLS; b++)
			if (d->peer[b] >= 0) {
				p[n] = (struct pollfd){ .fd = d->peer[b], .events = POLLIN };
				kind[n] = TAG_PEER;
				idx[n++] = (uint8_t)b;
			}
		r = poll(p, n, timeout);
		for (unsigned k = 0; r > 0 && k < n; k++) {
			if (!p[k].revents)
				continue;
			if (kind[k] == TAG_STOP)
				return NULL;
			if (kind[k] == TAG_LISTEN)
				accept_all(d, ml__now_ns());
			else if (kind[k] == TAG_PENDING && d->pending[idx[k]].fd == p[k].fd)
				hello(s, idx[k]);
			else if (kind[k] == TAG_PEER && d->peer[idx[k]] == p[k].fd)
				peer_readable(s, idx[k]);
		}
		timeout = reap(s, ml__now_ns());
	}
}

int ml__dw_serve_start(struct ml__shm *s)
{
	struct ml__darwin *d = s->darwin;
	sigset_t all, old;
	int err;

	if (pipe(d->stop))
		return -errno;
	err = ml__dw_fd_flags(d->stop[0], true);
	if (!err)
		err = ml__dw_fd_flags(d->stop[1], true);
	if (!err && listen(d->sock, 128))
		err = -errno;
	if (err)
		return err;
	/* Signals are the daemon's: none is ever delivered to this thread. */
	d->pid = getpid();
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&d->thread, NULL, serve, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return err;
	d->running = true;
	return 0;
}

void ml__dw_serve_stop(struct ml__shm *s)
{
	struct ml__darwin *d = s->darwin;

	/* A fork()ed child has the descriptors but not the thread. */
	if (d->running && getpid() == d->pid && write(d->stop[1], "x", 1) == 1)
		pthread_join(d->thread, NULL);
	d->running = false;
	for (unsigned i = 0; i < ML__DW_PENDING_MAX; i++)
		drop_pending(d, i);
	for (unsigned b = 0; b < ML__BELLS; b++)
		if (d->peer[b] >= 0) {
			close(d->peer[b]);
			d->peer[b] = -1;
		}
	for (int i = 0; i < 2; i++)
		if (d->stop[i] >= 0) {
			close(d->stop[i]);
			d->stop[i] = -1;
		}
}

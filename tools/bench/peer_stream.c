// SPDX-License-Identifier: MIT
/*
 * Framed messages over descriptors, shared by the uds, uds-seqpacket, tcp
 * and pipe peers; see peer.h.
 *
 * A frame is a 4-byte length and the payload, written with one writev. A
 * stream reader reads as much as is there into a 256 KiB buffer and hands
 * out whole frames from it (what a real program does: one read for many
 * small messages); a seqpacket reader receives one message per recvmsg
 * straight into the caller's buffer. With several descriptors (several
 * producers) the reader polls them and serves those with data in turn.
 * Waits give up every 100 ms (poll timeout, SO_RCVTIMEO on sockets) to look
 * at the abort flag.
 */
#include "peer.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clock.h"

#define RX_BUF (256u * 1024u)

void peer_pause(const struct peer_end *e)
{
	if (e->row->mode == PEER_BUSY)
		cpu_relax();
	else
		sched_yield();
}

int stream_send(int fd, bool packet, const void *buf, size_t len)
{
	uint32_t l = (uint32_t)len;
	struct iovec iov[2] = { { &l, 4 }, { (void *)buf, len } };
	size_t total = 4 + len, done = 0;

	if (packet) {
		ssize_t n = writev(fd, iov, 2);

		return n == (ssize_t)total ? 0 : -EIO;
	}
	while (done < total) {
		ssize_t n = writev(fd, iov, 2);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
		/* A partial write: skip what went out. */
		for (int i = 0; i < 2 && n > 0; i++) {
			size_t take = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;

			iov[i].iov_base = (char *)iov[i].iov_base + take;
			iov[i].iov_len -= take;
			n -= (ssize_t)take;
		}
	}
	return 0;
}

int stream_rx_init(struct stream_rx *rx, const int *fds, unsigned nfd, bool packet,
		   size_t max_payload)
{
	memset(rx, 0, sizeof(*rx));
	if (nfd == 0 || nfd > PEER_MAX_PRODUCERS)
		return -EINVAL;
	rx->nfd = nfd;
	rx->packet = packet;
	for (unsigned i = 0; i < nfd; i++) {
		rx->fd[i] = fds[i];
		if (packet)
			continue;
		rx->b[i].cap = RX_BUF > 2 * (max_payload + 4) ? RX_BUF : 2 * (max_payload + 4);
		rx->b[i].buf = malloc(rx->b[i].cap);
		if (!rx->b[i].buf)
			return -ENOMEM;
	}
	return 0;
}

void stream_rx_free(struct stream_rx *rx)
{
	for (unsigned i = 0; i < rx->nfd; i++)
		free(rx->b[i].buf);
	memset(rx, 0, sizeof(*rx));
}

/* A whole frame buffered for descriptor i: copy it out. */
static int take_frame(struct stream_buf *b, void *buf, size_t cap)
{
	size_t avail = b->tail - b->head;
	uint32_t len;

	if (avail < 4)
		return -EAGAIN;
	memcpy(&len, b->buf + b->head, 4);
	if (len > cap || len + 4 > b->cap)
		return -EMSGSIZE;
	if (avail < 4 + (size_t)len)
		return -EAGAIN;
	memcpy(buf, b->buf + b->head + 4, len);
	b->head += 4 + (size_t)len;
	if (b->head == b->tail)
		b->head = b->tail = 0;
	return (int)len;
}

/* Read what is there (or block until something is) into descriptor i's buffer. */
static int fill(struct stream_buf *b, int fd)
{
	ssize_t n;

	if (b->head && b->cap - b->tail < b->cap / 2) {
		memmove(b->buf, b->buf + b->head, b->tail - b->head);
		b->tail -= b->head;
		b->head = 0;
	}
	n = read(fd, b->buf + b->tail, b->cap - b->tail);
	if (n > 0) {
		b->tail += (size_t)n;
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return -EAGAIN;
	return -EIO;  /* 0: the other end closed */
}

static int recv_packet(int fd, void *buf, size_t cap)
{
	uint32_t len = 0;
	struct iovec iov[2] = { { &len, 4 }, { buf, cap } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n = recvmsg(fd, &m, 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return -EAGAIN;
	if (n < 4 || (m.msg_flags & MSG_TRUNC) || (size_t)n != 4 + (size_t)len)
		return -EIO;
	return (int)len;
}

int stream_recv(struct peer_end *e, struct stream_rx *rx, void *buf, size_t cap)
{
	for (;;) {
		struct pollfd pf[PEER_MAX_PRODUCERS];
		int err;

		if (!rx->packet) {
			for (unsigned k = 0; k < rx->nfd; k++) {
				unsigned i = (rx->next + k) % rx->nfd;
				int n = take_frame(&rx->b[i], buf, cap);

				if (n != -EAGAIN) {
					rx->next = i + 1;
					return n;
				}
			}
		}
		if (peer_aborted(e))
			return -ECANCELED;
		if (rx->nfd == 1) {
			/* One descriptor: a blocking read (sockets time out). */
			err = rx->packet ? recv_packet(rx->fd[0], buf, cap) : fill(&rx->b[0], rx->fd[0]);
			if (rx->packet && err >= 0)
				return err;
			if (err && err != -EAGAIN)
				return err;
			continue;
		}
		for (unsigned i = 0; i < rx->nfd; i++)
			pf[i] = (struct pollfd){ .fd = rx->fd[i], .events = POLLIN };
		if (poll(pf, rx->nfd, 100) <= 0)
			continue;
		for (unsigned k = 0; k < rx->nfd; k++) {
			unsigned i = (rx->next + k) % rx->nfd;

			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (rx->packet) {
				rx->next = i + 1;
				err = recv_packet(rx->fd[i], buf, cap);
				if (err != -EAGAIN)
					return err;
				continue;
			}
			err = fill(&rx->b[i], rx->fd[i]);
			if (err && err != -EAGAIN)
				return err;
		}
	}
}

/* ---- descriptor ends ---------------------------------------------------- */

int fd_end_open(struct peer_end *e, int tx, const int *rx, unsigned nrx, bool packet)
{
	struct fd_end *f = calloc(1, sizeof(*f));
	int err;

	if (!f)
		return -ENOMEM;
	f->tx = tx;
	f->packet = packet;
	e->priv = f;
	if (nrx && (err = stream_rx_init(&f->rx, rx, nrx, packet, e->row->payload)))
		return err;
	return 0;
}

int fd_send(struct peer_end *e, int prio, const void *buf, size_t len)
{
	const struct fd_end *f = e->priv;

	(void)prio;
	return stream_send(f->tx, f->packet, buf, len);
}

int fd_recv(struct peer_end *e, int *prio, void *buf, size_t cap)
{
	struct fd_end *f = e->priv;

	if (prio)
		*prio = 1;
	return stream_recv(e, &f->rx, buf, cap);
}

void fd_close(struct peer_end *e)
{
	struct fd_end *f = e->priv;

	if (!f)
		return;
	stream_rx_free(&f->rx);
	free(f);
	e->priv = NULL;
}

void fd_row_close(struct peer_row *r)
{
	for (int i = 0; i < r->nfd; i++)
		if (r->fd[i] >= 0)
			close(r->fd[i]);
	r->nfd = 0;
}

void fd_rcvtimeo(int fd)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

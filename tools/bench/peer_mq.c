// SPDX-License-Identifier: MIT
/*
 * POSIX message queues: one queue per direction, opened in the parent and
 * unlinked at once (the descriptors live on in the children, nothing is
 * left in /dev/mqueue). 64 messages deep where allowed, else the system's
 * msg_max; a payload over what the system allows is a skipped row.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <time.h>

#include "peer.h"

static int mq_make(struct peer_row *r, const char *dir, mqd_t *out)
{
	char name[96];
	long depth[] = { 64, 10 };

	snprintf(name, sizeof(name), "/%s.%s", r->name, dir);
	for (unsigned i = 0; i < 2; i++) {
		struct mq_attr a = { .mq_maxmsg = depth[i],
				     .mq_msgsize = r->payload ? (long)r->payload : 1 };
		mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &a);

		if (q != (mqd_t)-1) {
			mq_unlink(name);
			*out = q;
			return 0;
		}
		if (errno != EINVAL && errno != EMFILE && errno != ENOMEM)
			break;
	}
	snprintf(r->note, sizeof(r->note), "mq_open of %zu-byte messages: %s", r->payload,
		 errno == EINVAL ? "over /proc/sys/fs/mqueue/msgsize_max" : "failed");
	return 1;
}

static int mq_prepare(struct peer_row *r)
{
	mqd_t q;
	int rc;

	r->nfd = 0;
	if ((rc = mq_make(r, "req", &q)))
		return rc;
	r->fd[r->nfd++] = (int)q;
	if (r->duplex) {
		if ((rc = mq_make(r, "resp", &q))) {
			mq_close((mqd_t)r->fd[0]);
			r->nfd = 0;
			return rc;
		}
		r->fd[r->nfd++] = (int)q;
	}
	return 0;
}

static void mq_unprepare(struct peer_row *r)
{
	for (int i = 0; i < r->nfd; i++)
		mq_close((mqd_t)r->fd[i]);
	r->nfd = 0;
}

static int mq_open_end(struct peer_end *e)
{
	(void)e;
	return 0;
}

static struct timespec soon(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += 100000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_nsec -= 1000000000;
		t.tv_sec++;
	}
	return t;
}

static int mq_send_msg(struct peer_end *e, int prio, const void *buf, size_t len)
{
	mqd_t q = (mqd_t)e->row->fd[e->role == 0 ? 0 : 1];

	(void)prio;
	for (;;) {
		struct timespec t = soon();

		if (!mq_timedsend(q, buf, len, 0, &t))
			return 0;
		if (errno != ETIMEDOUT && errno != EINTR)
			return -errno;
		if (peer_aborted(e))
			return -ECANCELED;
	}
}

static int mq_recv_msg(struct peer_end *e, int *prio, void *buf, size_t cap)
{
	mqd_t q = (mqd_t)e->row->fd[e->role == 1 ? 0 : 1];

	if (prio)
		*prio = 1;
	for (;;) {
		struct timespec t = soon();
		ssize_t n = mq_timedreceive(q, buf, cap, NULL, &t);

		if (n >= 0)
			return (int)n;
		if (errno != ETIMEDOUT && errno != EINTR)
			return -errno;
		if (peer_aborted(e))
			return -ECANCELED;
	}
}

static void mq_close_end(struct peer_end *e)
{
	(void)e;
}

const struct peer_ops peer_posix_mq = {
	.name = "posix-mq",
	.modes = PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.prepare = mq_prepare,
	.unprepare = mq_unprepare,
	.open = mq_open_end,
	.send = mq_send_msg,
	.recv = mq_recv_msg,
	.close = mq_close_end,
};

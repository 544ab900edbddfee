// SPDX-License-Identifier: GPL-2.0
/*
 * poll()/epoll and read(): EPOLLIN | EPOLLRDNORM after a wake in the
 * region, cleared by read() (which returns the 8-byte wake count) or by a
 * wait; read() never blocks; an unbound file polls nothing, and a poll or
 * epoll registration made before it is bound sees the region's events.
 */
#include "memlink_test.h"

#include <sys/epoll.h>

FIXTURE(poll) {
	long page;
	char name[MEMLINK_NAME_MAX];
	int cfd;	/* creator */
	int afd;	/* client */
};

FIXTURE_SETUP(poll)
{
	self->page = ml_page_size();
	ml_name(self->name, "poll");
	self->cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, self->cfd);
	self->afd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, self->afd);
}

FIXTURE_TEARDOWN(poll)
{
	close(self->afd);
	close(self->cfd);
}

static short revents(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDNORM | POLLPRI | POLLOUT };

	return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

/* WAKE from a process of its own, attached by name. */
static int wake_from_child(const char *name, uint64_t offset, long delay_ms)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		int fd = ml_open_attach(name, 0);

		if (fd < 0)
			_exit(10);
		ml_sleep_ms(delay_ms);
		_exit(ml_wake(fd, offset, 1) == 0 ? 0 : 11);
	}
	return pid < 0 ? -1 : ml_reap(pid);
}

static __u64 read_wakes(int fd)
{
	__u64 v = ~0ULL;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return ~0ULL;
	return v;
}

TEST_F(poll, epollin_after_wake_cleared_by_read)
{
	struct memlink_info info;

	EXPECT_EQ(0, revents(self->afd));
	EXPECT_EQ(0, revents(self->cfd));

	/*
	 * A wake with nobody waiting still counts. (The waking client has
	 * left again: the creator also has EPOLLPRI.)
	 */
	ASSERT_EQ(0, wake_from_child(self->name, 0, 0));
	EXPECT_EQ(POLLIN | POLLRDNORM, revents(self->afd));
	EXPECT_EQ(POLLIN | POLLRDNORM | POLLPRI, revents(self->cfd));
	/* Polling does not clear it. */
	EXPECT_EQ(POLLIN | POLLRDNORM, revents(self->afd));

	EXPECT_EQ(1ULL, (unsigned long long)read_wakes(self->afd));
	EXPECT_EQ(0, revents(self->afd));
	/* Per file: the creator has not read yet. */
	EXPECT_EQ(POLLIN | POLLRDNORM | POLLPRI, revents(self->cfd));

	ASSERT_EQ(0, wake_from_child(self->name, 4, 0));
	ASSERT_EQ(0, ml_wake(self->cfd, 8, 3));
	EXPECT_EQ(POLLIN | POLLRDNORM, revents(self->afd));
	EXPECT_EQ(3ULL, (unsigned long long)read_wakes(self->afd));
	EXPECT_EQ(3ULL, (unsigned long long)read_wakes(self->cfd));
	EXPECT_EQ(0, revents(self->afd));
	EXPECT_EQ(0, revents(self->cfd));
	ASSERT_EQ(0, ml_info(self->cfd, &info));
	EXPECT_EQ(3ULL, (unsigned long long)info.wakes);
}

TEST_F(poll, cleared_by_wait)
{
	ASSERT_EQ(0, ml_wake(self->cfd, 0, 1));
	EXPECT_EQ(POLLIN | POLLRDNORM, revents(self->afd));
	/* A wait that returns EAGAIN at once... */
	EXPECT_EQ(-EAGAIN, ml_wait(self->afd, 0, 1, 0));
	EXPECT_EQ(0, revents(self->afd));

	/* ...or one that times out. */
	ASSERT_EQ(0, ml_wake(self->cfd, 0, 1));
	EXPECT_EQ(POLLIN | POLLRDNORM, revents(self->afd));
	EXPECT_EQ(-ETIMEDOUT, ml_wait(self->afd, 0, 0, ML_NSEC_PER_MSEC));
	EXPECT_EQ(0, revents(self->afd));
	/* The creator's file did neither. */
	EXPECT_EQ(POLLIN | POLLRDNORM, revents(self->cfd));
	/* An invalid wait is not a wait. */
	EXPECT_EQ(-EINVAL, ml_wait(self->cfd, 2, 0, 0));
	EXPECT_EQ(POLLIN | POLLRDNORM, revents(self->cfd));
}

/* epoll sleeps until another process wakes; edge-triggered fires once. */
TEST_F(poll, epoll_wakes_up)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out;
	int64_t t0, dt;
	int ep, n;
	pid_t pid;

	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->afd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));

	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = ml_open_attach(self->name, 0);

		if (fd < 0)
			_exit(10);
		ml_sleep_ms(50);
		_exit(ml_wake(fd, 0, 1) == 0 ? 0 : 11);
	}
	t0 = ml_now_ns();
	n = epoll_wait(ep, &out, 1, 5000);
	dt = ml_now_ns() - t0;
	EXPECT_EQ(1, n);
	/* Only the events asked for are reported. */
	EXPECT_EQ((__u32)EPOLLIN, out.events);
	EXPECT_GT(2 * ML_NSEC_PER_SEC, dt);
	ksft_print_msg("epoll woke %.3f ms after it started (wake sent at ~50 ms)\n",
		       dt / 1e6);
	EXPECT_EQ(0, ml_reap(pid));
	/* Edge-triggered: reported once, though still readable. */
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));
	EXPECT_EQ(POLLIN | POLLRDNORM, revents(self->afd));
	close(ep);
}

/* A wake that wakes a waiter is seen by poll on the other files. */
TEST_F(poll, wake_of_waiter_is_seen)
{
	struct pollfd p = { .fd = self->cfd, .events = POLLIN };
	pid_t w;

	w = ml_spawn_waiter(self->name, 0, 0, 0, 10 * ML_NSEC_PER_SEC);
	ASSERT_LT(0, w);
	ASSERT_EQ(0, ml_wait_waiters(self->cfd, 1, 10000));
	EXPECT_EQ(0, poll(&p, 1, 0));
	EXPECT_EQ(1, ml_wake(self->afd, 0, 1));
	EXPECT_EQ(0, ml_reap(w));
	EXPECT_EQ(1, poll(&p, 1, 1000));
	EXPECT_EQ(POLLIN, p.revents);
}

/* read(): 8 bytes, needs at least 8, never blocks, not seekable. */
TEST_F(poll, read_semantics)
{
	char buf[16];
	__u32 small;
	int64_t t0, dt;
	int fd;

	EXPECT_ERRNO(EINVAL, read(self->afd, &small, sizeof(small)));
	EXPECT_ERRNO(EINVAL, read(self->afd, buf, 7));
	EXPECT_ERRNO(EINVAL, read(self->afd, buf, 0));
	memset(buf, 0x77, sizeof(buf));
	EXPECT_EQ(8, read(self->afd, buf, sizeof(buf)));
	EXPECT_EQ(0ULL, *(unsigned long long *)buf);
	EXPECT_EQ(0x77, buf[8]);

	/* Nothing new: read still returns at once. */
	t0 = ml_now_ns();
	EXPECT_EQ(0ULL, (unsigned long long)read_wakes(self->afd));
	EXPECT_EQ(0ULL, (unsigned long long)read_wakes(self->afd));
	dt = ml_now_ns() - t0;
	EXPECT_GT(500 * ML_NSEC_PER_MSEC, dt);

	EXPECT_ERRNO(ESPIPE, lseek(self->afd, 0, SEEK_SET));
	EXPECT_ERRNO(ESPIPE, pread(self->afd, buf, 8, 0));

	/* Unbound: read is EINVAL, poll reports nothing. */
	fd = ml_open();
	ASSERT_LE(0, fd);
	EXPECT_ERRNO(EINVAL, read(fd, buf, 8));
	EXPECT_EQ(0, revents(fd));
	close(fd);
}

/*
 * An epoll registration made before the file is bound fires for the
 * region's wakes once it is: it used to be lost (poll of an unbound file
 * registered on no queue at all). Also for a blocked epoll_wait() that
 * began before the attach, and for EPOLLHUP when the creator goes.
 */
TEST_F(poll, epoll_registered_before_bind)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLPRI }, got;
	int fd, ep, p[2];
	pid_t pid;

	fd = ml_open();
	ASSERT_LE(0, fd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ev.data.fd = fd;
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &got, 1, 0));

	ASSERT_EQ(0, ml_attach(fd, self->name));
	EXPECT_EQ(0, epoll_wait(ep, &got, 1, 0));
	EXPECT_EQ(0, ml_wake(self->cfd, 0, 1));
	ASSERT_EQ(1, epoll_wait(ep, &got, 1, 5000));
	EXPECT_EQ((unsigned int)EPOLLIN, got.events);
	EXPECT_EQ(1ULL, (unsigned long long)read_wakes(fd));
	EXPECT_EQ(0, epoll_wait(ep, &got, 1, 0));

	/* A child wakes while we sleep in epoll_wait (not a level left over). */
	ASSERT_EQ(0, pipe(p));
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int wfd = ml_open_attach(self->name, 0);
		char c;

		if (wfd < 0 || read(p[0], &c, 1) != 1)
			_exit(1);
		ml_sleep_ms(100);
		_exit(ml_wake(wfd, 0, 1) < 0 ? 2 : 0);
	}
	ASSERT_EQ(0, ml_signal(p[1]));
	ASSERT_EQ(1, epoll_wait(ep, &got, 1, 10000));
	EXPECT_EQ((unsigned int)EPOLLIN, got.events);
	EXPECT_EQ(0, ml_reap(pid));
	read_wakes(fd);

	/* The creator goes: EPOLLHUP, reported though not asked for. */
	close(self->cfd);
	self->cfd = -1;
	ASSERT_EQ(1, epoll_wait(ep, &got, 1, 5000));
	EXPECT_NE(0U, got.events & EPOLLHUP);
	close(ep);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/* No EPOLLHUP while the creator lives; a client leaving is EPOLLPRI for the creator. */
TEST_F(poll, no_hup_while_creator_lives)
{
	int fd;

	fd = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, fd);
	close(fd);
	/* A client left: EPOLLPRI for the creator only, no HUP anywhere. */
	EXPECT_EQ(POLLPRI, revents(self->cfd));
	EXPECT_EQ(0, revents(self->afd));
	close(self->afd);
	self->afd = ml_open();	/* teardown closes it */
	EXPECT_EQ(POLLPRI, revents(self->cfd));
	EXPECT_EQ(0ULL, (unsigned long long)read_wakes(self->cfd));
	EXPECT_EQ(0, revents(self->cfd));
}

TEST_HARNESS_MAIN

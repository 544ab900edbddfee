// SPDX-License-Identifier: GPL-2.0
/*
 * Peers that go away. The creator's file released (SIGKILL, exit, close):
 * every waiter wakes with EPIPE at once, later waits fail with EPIPE, INFO
 * says creator_alive 0, poll gives EPOLLHUP, attach gives EPIPE, and
 * MEMLINK_CREATE_REPLACE (only it) can take the name. A client leaving is
 * seen by the creator: INFO's detached count and EPOLLPRI.
 */
#include "memlink_test.h"

#include <sys/epoll.h>

#define LONG_NS (10 * ML_NSEC_PER_SEC)

FIXTURE(peer) {
	long page;
	char name[MEMLINK_NAME_MAX];
	unsigned long long saved_max_regions;
	bool restore;
};

FIXTURE_SETUP(peer)
{
	self->page = ml_page_size();
	ml_name(self->name, "peer");
}

FIXTURE_TEARDOWN(peer)
{
	if (self->restore)
		ml_param_set("max_regions", self->saved_max_regions);
}

/*
 * A creator process: creates `name` (2 pages, 0600), maps it, says so on
 * the pipe and sleeps until killed. Returns its pid; *rfd gets the pipe.
 */
static pid_t spawn_creator(const char *name, size_t len, int *rfd)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = ml_fork();
	if (pid == 0) {
		int fd = ml_open_create(name, len, 0600);
		void *m;

		if (fd < 0)
			_exit(10);
		m = ml_map(fd, len, PROT_READ | PROT_WRITE, 0);
		if (m == MAP_FAILED)
			_exit(11);
		ml_signal(p[1]);
		for (;;)
			pause();
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

static bool poll_has(int fd, short events, short want)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, 0) == 1 && (p.revents & want) == want;
}

static short poll_revents(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

TEST_F(peer, creator_sigkill)
{
	struct memlink_info info;
	int64_t *t_kill, t_woke, delay, t0, dt;
	pid_t creator, killer;
	struct ml_listing proc;
	int rfd, fd, fd2, nfd, ret;
	char want[128];

	t_kill = ml_shared_anon(sizeof(*t_kill));
	ASSERT_NE(NULL, t_kill);
	creator = spawn_creator(self->name, 2 * self->page, &rfd);
	ASSERT_LT(0, creator);
	ASSERT_EQ(0, ml_await(rfd, 10000));

	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(1U, info.creator_alive);
	EXPECT_EQ(2U, info.attached);
	EXPECT_EQ(0, poll_revents(fd, POLLIN | POLLPRI));

	/* The killer shares our file to watch for our wait. */
	killer = ml_fork();
	ASSERT_LE(0, killer);
	if (killer == 0) {
		if (ml_wait_waiters(fd, 1, 10000))
			_exit(10);
		ml_sleep_ms(20);
		*t_kill = ml_now_ns();
		kill(creator, SIGKILL);
		_exit(0);
	}
	ret = ml_wait(fd, 0, 0, LONG_NS);
	t_woke = ml_now_ns();
	EXPECT_EQ(-EPIPE, ret);
	EXPECT_EQ(0, ml_reap(killer));
	EXPECT_EQ(ML_KILLED(SIGKILL), ml_reap(creator));
	delay = t_woke - *t_kill;
	ksft_print_msg("waiter woke with %d %.3f ms after SIGKILL of the creator\n",
		       ret, delay / 1e6);
	EXPECT_GT(ML_NSEC_PER_SEC, delay);

	/* Later waits: EPIPE at once, whatever the word holds. */
	t0 = ml_now_ns();
	EXPECT_EQ(-EPIPE, ml_wait(fd, 0, 0, 0));
	EXPECT_EQ(-EPIPE, ml_wait(fd, 0, 1, 0));
	EXPECT_EQ(-EPIPE, ml_wait(fd, 4, 0, LONG_NS));
	dt = ml_now_ns() - t0;
	EXPECT_GT(500 * ML_NSEC_PER_MSEC, dt);
	/* Waking still works (nobody to wake). */
	EXPECT_EQ(0, ml_wake(fd, 0, 1));

	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(0U, info.creator_alive);
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(0U, info.waiters);
	EXPECT_STREQ(self->name, info.name);

	EXPECT_TRUE(poll_has(fd, POLLIN, POLLHUP));

	/* The name still points at the dead region: attach says EPIPE. */
	fd2 = ml_open();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EPIPE, ml_attach(fd2, self->name));
	EXPECT_EQ(-EPIPE, ml_attach_flags(fd2, self->name, MEMLINK_ATTACH_RDONLY, NULL));
	ASSERT_EQ(0, ml_listing_read(&proc, self->name));
	EXPECT_EQ(1, proc.found);
	snprintf(want, sizeof(want), "%s %ld 0 0 0600 1 0 0\n", self->name, 2 * self->page);
	EXPECT_STREQ(want, proc.line);

	/* Plain create: EEXIST. REPLACE: a new region under the name. */
	EXPECT_EQ(-EEXIST, ml_create(fd2, self->name, self->page, 0600));
	EXPECT_EQ(0, ml_create_flags(fd2, self->name, self->page, 0640,
				     MEMLINK_CREATE_REPLACE));
	ASSERT_EQ(0, ml_info(fd2, &info));
	EXPECT_EQ(1U, info.creator_alive);
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ((__u64)self->page, info.region_size);
	EXPECT_EQ(0640U, info.mode);

	/* Attach now finds the new region. */
	nfd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, nfd);
	ASSERT_EQ(0, ml_info(fd2, &info));
	EXPECT_EQ(2U, info.attached);
	EXPECT_EQ(-ETIMEDOUT, ml_wait(nfd, 0, 0, 1000));

	/* The old file keeps the old region, still dead. */
	EXPECT_EQ(-EPIPE, ml_wait(fd, 0, 0, 0));
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(0U, info.creator_alive);
	EXPECT_EQ((__u64)(2 * self->page), info.region_size);

	/* Listed once (the new one); the old one still counts until closed. */
	ASSERT_EQ(0, ml_listing_read(&proc, self->name));
	EXPECT_EQ(1, proc.found);
	snprintf(want, sizeof(want), "%s %ld 0 0 0640 2 0 1\n", self->name, self->page);
	EXPECT_STREQ(want, proc.line);
	EXPECT_EQ((unsigned int)proc.lines + 1, proc.regions);
	close(fd);
	ASSERT_EQ(0, ml_listing_read(&proc, NULL));
	EXPECT_EQ((unsigned int)proc.lines, proc.regions);

	close(nfd);
	close(fd2);
	close(rfd);
}

/* Every waiter, in several processes, gets EPIPE; epoll reports EPOLLHUP. */
TEST_F(peer, all_waiters_epipe_and_epollhup)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct memlink_info info;
	pid_t creator, w[3];
	int rfd, fd, ep, i, n;
	int64_t t0, dt;

	creator = spawn_creator(self->name, self->page, &rfd);
	ASSERT_LT(0, creator);
	ASSERT_EQ(0, ml_await(rfd, 10000));
	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	for (i = 0; i < 3; i++) {
		w[i] = ml_spawn_waiter(self->name, 4 * i, 0, i == 2 ? MEMLINK_ATTACH_RDONLY : 0,
				       LONG_NS);
		ASSERT_LT(0, w[i]);
	}
	ASSERT_EQ(0, ml_wait_waiters(fd, 3, 10000));
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));

	t0 = ml_now_ns();
	ASSERT_EQ(0, kill(creator, SIGKILL));
	n = epoll_wait(ep, &out, 1, 5000);
	dt = ml_now_ns() - t0;
	EXPECT_EQ(1, n);
	EXPECT_TRUE(!!(out.events & EPOLLHUP));
	ksft_print_msg("epoll saw EPOLLHUP %.3f ms after SIGKILL\n", dt / 1e6);
	EXPECT_GT(ML_NSEC_PER_SEC, dt);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(ML_WAIT_EXIT(EPIPE), ml_reap_timeout(w[i], 5000));
	EXPECT_EQ(ML_KILLED(SIGKILL), ml_reap(creator));
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(0U, info.waiters);
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(3ULL, (unsigned long long)info.detached);
	close(ep);
	close(fd);
	close(rfd);
}

/* The creator closing its file (or exiting normally) is the same. */
TEST_F(peer, creator_close)
{
	struct memlink_info info;
	pid_t w;
	int cfd, fd;

	cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cfd);
	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	w = ml_spawn_waiter(self->name, 0, 0, 0, LONG_NS);
	ASSERT_LT(0, w);
	ASSERT_EQ(0, ml_wait_waiters(cfd, 1, 10000));
	close(cfd);
	EXPECT_EQ(ML_WAIT_EXIT(EPIPE), ml_reap_timeout(w, 5000));
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(0U, info.creator_alive);
	EXPECT_EQ(-EPIPE, ml_wait(fd, 0, 0, 0));
	EXPECT_TRUE(poll_has(fd, POLLIN, POLLHUP));
	close(fd);
}

/*
 * The creator is a file, not a process: a forked child holding the file
 * keeps the creator alive, and so does a mapping after close().
 */
TEST_F(peer, creator_is_the_file)
{
	struct memlink_info info;
	pid_t test = getpid(), c, g = 0, w;
	int p[2], fd, cfd;
	void *m;

	ASSERT_EQ(0, pipe(p));
	c = ml_fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		int f = ml_open_create(self->name, self->page, 0600);

		if (f < 0)
			_exit(10);
		/* The grandchild inherits f and outlives c, not the test. */
		g = fork();
		if (g == 0) {
			while (kill(test, 0) == 0)
				ml_sleep_ms(10);
			_exit(0);
		}
		if (write(p[1], &g, sizeof(g)) != sizeof(g))
			_exit(11);
		for (;;)
			pause();
	}
	ASSERT_EQ((ssize_t)sizeof(g), read(p[0], &g, sizeof(g)));
	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	w = ml_spawn_waiter(self->name, 0, 0, 0, LONG_NS);
	ASSERT_LT(0, w);
	ASSERT_EQ(0, ml_wait_waiters(fd, 1, 10000));

	/* The creating process dies; its file lives on in the grandchild. */
	ASSERT_EQ(0, kill(c, SIGKILL));
	EXPECT_EQ(ML_KILLED(SIGKILL), ml_reap(c));
	ml_sleep_ms(100);
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(1U, info.creator_alive);
	EXPECT_EQ(1U, info.waiters);
	EXPECT_EQ(-ETIMEDOUT, ml_wait(fd, 4, 0, 1000));

	/* The file's last holder dies: now the creator is gone. */
	ASSERT_EQ(0, kill(g, SIGKILL));
	EXPECT_EQ(ML_WAIT_EXIT(EPIPE), ml_reap_timeout(w, 5000));
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(0U, info.creator_alive);
	close(fd);

	/* A mapping alone keeps the creator's file, hence the creator. */
	ml_name(self->name, "peer-map");
	cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cfd);
	/* Spawned before the mapping exists, so it does not inherit it. */
	w = ml_spawn_waiter(self->name, 0, 0, 0, LONG_NS);
	ASSERT_LT(0, w);
	ASSERT_EQ(0, ml_wait_waiters(cfd, 1, 10000));
	m = ml_map(cfd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, m);
	close(cfd);
	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	ml_sleep_ms(50);
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(1U, info.creator_alive);
	EXPECT_EQ(3U, info.attached);
	EXPECT_EQ(1U, info.waiters);
	ASSERT_EQ(0, munmap(m, self->page));
	EXPECT_EQ(ML_WAIT_EXIT(EPIPE), ml_reap_timeout(w, 5000));
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(0U, info.creator_alive);
	EXPECT_EQ(1U, info.attached);
	close(fd);
}

/*
 * The creator's file shared with a live child: killing the creator's
 * process is not the creator's departure.
 */
TEST_F(peer, forked_holder_keeps_creator)
{
	struct memlink_info info;
	pid_t holder;
	int cfd, fd;

	cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cfd);
	holder = ml_fork();
	ASSERT_LE(0, holder);
	if (holder == 0) {
		for (;;)
			pause();
	}
	close(cfd);	/* the holder's copy is the last descriptor */
	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	ml_sleep_ms(50);
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(1U, info.creator_alive);
	EXPECT_EQ(-ETIMEDOUT, ml_wait(fd, 0, 0, 1000));
	ASSERT_EQ(0, kill(holder, SIGKILL));
	EXPECT_EQ(ML_KILLED(SIGKILL), ml_reap(holder));
	EXPECT_EQ(0, ML_INFO_FIELD_WAIT(fd, creator_alive, 0U, 2000));
	EXPECT_EQ(-EPIPE, ml_wait(fd, 0, 0, 0));
	close(fd);
}

/* REPLACE only replaces a dead creator; on a free name it just creates. */
TEST_F(peer, replace_rules)
{
	struct memlink_info info;
	int cfd, fd;

	fd = ml_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, ml_create_flags(fd, self->name, self->page, 0600, MEMLINK_CREATE_REPLACE));
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(1U, info.creator_alive);
	cfd = ml_open();
	ASSERT_LE(0, cfd);
	EXPECT_EQ(-EEXIST, ml_create_flags(cfd, self->name, self->page, 0600,
					   MEMLINK_CREATE_REPLACE));
	EXPECT_EQ(-EEXIST, ml_create(cfd, self->name, self->page, 0600));
	/* The failed creates left cfd unbound. */
	EXPECT_EQ(-EINVAL, ml_info(cfd, &info));
	close(fd);
	/* All files gone: the name is free for a plain create. */
	EXPECT_EQ(0, ml_create(cfd, self->name, self->page, 0600));
	close(cfd);
}

/*
 * A failed REPLACE changes nothing: when the new region cannot be admitted
 * (ENOSPC), the old region keeps its name (attach still says EPIPE, the
 * listing still shows it).
 */
TEST_F(peer, failed_replace_keeps_old_name)
{
	struct ml_listing proc;
	pid_t creator;
	int rfd, fd, fd2;

	creator = spawn_creator(self->name, self->page, &rfd);
	ASSERT_LT(0, creator);
	ASSERT_EQ(0, ml_await(rfd, 10000));
	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kill(creator, SIGKILL));
	EXPECT_EQ(ML_KILLED(SIGKILL), ml_reap(creator));
	ASSERT_EQ(0, ML_INFO_FIELD_WAIT(fd, creator_alive, 0U, 2000));

	ASSERT_EQ(0, ml_param_get("max_regions", &self->saved_max_regions));
	ASSERT_EQ(0, ml_listing_read(&proc, NULL));
	self->restore = true;
	ASSERT_EQ(0, ml_param_set("max_regions", proc.regions));
	fd2 = ml_open();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-ENOSPC, ml_create_flags(fd2, self->name, self->page, 0600,
					   MEMLINK_CREATE_REPLACE));
	ASSERT_EQ(0, ml_param_set("max_regions", self->saved_max_regions));
	self->restore = false;

	ASSERT_EQ(0, ml_listing_read(&proc, self->name));
	EXPECT_EQ(1, proc.found) TH_LOG("the failed REPLACE unlisted the old region");
	EXPECT_EQ(-EPIPE, ml_attach(fd2, self->name))
		TH_LOG("the failed REPLACE took the old region's name");
	close(fd2);
	close(fd);
	close(rfd);
}

/* A client leaving: detached counts it and the creator gets EPOLLPRI. */
TEST_F(peer, client_leaves)
{
	struct epoll_event ev = { .events = EPOLLPRI }, out;
	struct memlink_info info;
	int cfd, other, ep, p[2];
	int64_t t0, dt;
	__u64 wakes;
	pid_t c;

	cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cfd);
	other = ml_open_attach(self->name, 0);
	ASSERT_LE(0, other);
	EXPECT_EQ(0, poll_revents(cfd, POLLIN | POLLPRI));

	/* A client process that attaches, then exits. */
	ASSERT_EQ(0, pipe(p));
	c = ml_fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		if (ml_open_attach(self->name, 0) < 0)
			_exit(10);
		_exit(0);
	}
	EXPECT_EQ(0, ml_reap(c));
	ASSERT_EQ(0, ml_info(cfd, &info));
	EXPECT_EQ(1ULL, (unsigned long long)info.detached);
	EXPECT_EQ(2U, info.attached);
	EXPECT_EQ(1U, info.creator_alive);
	EXPECT_EQ(POLLPRI, poll_revents(cfd, POLLIN | POLLPRI));
	/* Only the creator hears of it. */
	EXPECT_EQ(0, poll_revents(other, POLLIN | POLLPRI));
	/* read() marks it seen. */
	EXPECT_EQ(8, read(cfd, &wakes, sizeof(wakes)));
	EXPECT_EQ(0, poll_revents(cfd, POLLIN | POLLPRI));

	/* A client killed with SIGKILL while the creator sleeps in epoll. */
	c = ml_fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		if (ml_open_attach(self->name, 0) < 0)
			_exit(10);
		ml_signal(p[1]);
		for (;;)
			pause();
	}
	ASSERT_EQ(0, ml_await(p[0], 10000));
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));
	t0 = ml_now_ns();
	ASSERT_EQ(0, kill(c, SIGKILL));
	EXPECT_EQ(1, epoll_wait(ep, &out, 1, 5000));
	dt = ml_now_ns() - t0;
	EXPECT_EQ((__u32)EPOLLPRI, out.events & (EPOLLPRI | EPOLLHUP | EPOLLIN));
	ksft_print_msg("creator saw EPOLLPRI %.3f ms after SIGKILL of a client\n", dt / 1e6);
	EXPECT_EQ(ML_KILLED(SIGKILL), ml_reap(c));
	ASSERT_EQ(0, ml_info(cfd, &info));
	EXPECT_EQ(2ULL, (unsigned long long)info.detached);
	EXPECT_EQ(2U, info.attached);

	/* The other client leaving counts too. */
	close(other);
	ASSERT_EQ(0, ml_info(cfd, &info));
	EXPECT_EQ(3ULL, (unsigned long long)info.detached);
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(1U, info.creator_alive);
	close(ep);
	close(cfd);
}

TEST_HARNESS_MAIN

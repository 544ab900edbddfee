// SPDX-License-Identifier: GPL-2.0
/*
 * MEMLINK_IOC_WAIT / MEMLINK_IOC_WAKE across processes: WAKE returns the
 * number woken and wakes only waiters of its word; a wait returns EAGAIN at
 * once when the word differs, ETIMEDOUT after its timeout, EINTR on a
 * signal.
 */
#include "memlink_test.h"

#define WAIT_LONG_NS (10 * ML_NSEC_PER_SEC)

FIXTURE(wait) {
	long page;
	char name[MEMLINK_NAME_MAX];
	int fd;				/* the creator */
	volatile __u32 *map;		/* the whole region, 2 pages */
};

FIXTURE_SETUP(wait)
{
	self->page = ml_page_size();
	ml_name(self->name, "wait");
	self->fd = ml_open_create(self->name, 2 * self->page, 0600);
	ASSERT_LE(0, self->fd);
	self->map = ml_map(self->fd, 2 * self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, self->map);
}

FIXTURE_TEARDOWN(wait)
{
	if (self->map && self->map != MAP_FAILED)
		munmap((void *)self->map, 2 * self->page);
	close(self->fd);
}

static pid_t spawn_waiter(const char *name, uint64_t offset, uint32_t expected,
			  uint32_t flags)
{
	return ml_spawn_waiter(name, offset, expected, flags, WAIT_LONG_NS);
}

TEST_F(wait, wake_returns_number_woken)
{
	struct memlink_info info;
	pid_t pids[5];
	int i;

	for (i = 0; i < 5; i++) {
		pids[i] = spawn_waiter(self->name, 0, 0, 0);
		ASSERT_LT(0, pids[i]);
	}
	ASSERT_EQ(0, ml_wait_waiters(self->fd, 5, 10000));
	self->map[0] = 1;

	EXPECT_EQ(1, ml_wake(self->fd, 0, 1));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(4U, info.waiters);
	EXPECT_EQ(2, ml_wake(self->fd, 0, 2));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(2U, info.waiters);
	EXPECT_EQ(2, ml_wake(self->fd, 0, UINT32_MAX));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(0U, info.waiters);
	EXPECT_EQ(0, ml_wake(self->fd, 0, UINT32_MAX));
	for (i = 0; i < 5; i++)
		EXPECT_EQ(0, ml_reap(pids[i]));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(4ULL, (unsigned long long)info.wakes);
}

/* The creator waits; a client in another process changes the word and wakes. */
TEST_F(wait, waker_in_other_process)
{
	int64_t t0, dt;
	pid_t pid;
	int ret;

	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		volatile __u32 *m;
		int fd = ml_open_attach(self->name, 0);

		if (fd < 0)
			_exit(10);
		m = ml_map(fd, self->page, PROT_READ | PROT_WRITE, 0);
		if (m == MAP_FAILED)
			_exit(11);
		if (ml_wait_waiters(fd, 1, 10000))
			_exit(12);
		ml_sleep_ms(20);
		m[1] = 7;
		ret = ml_wake(fd, 4, 1);
		_exit(ret == 1 ? 0 : 13);
	}
	t0 = ml_now_ns();
	ret = ml_wait(self->fd, 4, 0, WAIT_LONG_NS);
	dt = ml_now_ns() - t0;
	EXPECT_EQ(0, ret);
	EXPECT_EQ(7U, self->map[1]);
	EXPECT_EQ(0, ml_reap(pid)) TH_LOG("the waker's WAKE did not return 1");
	EXPECT_GT(WAIT_LONG_NS, dt);
	ksft_print_msg("woken by another process after %.1f ms\n", dt / 1e6);
}

/* A wake reaches only the waiters of its word. */
TEST_F(wait, wake_matches_offset)
{
	const uint64_t off2 = self->page + 8;
	pid_t a, b;

	a = spawn_waiter(self->name, 0, 0, 0);
	ASSERT_LT(0, a);
	b = spawn_waiter(self->name, off2, 0, 0);
	ASSERT_LT(0, b);
	ASSERT_EQ(0, ml_wait_waiters(self->fd, 2, 10000));

	EXPECT_EQ(0, ml_wake(self->fd, 4, UINT32_MAX));
	EXPECT_EQ(0, ml_wake(self->fd, self->page, UINT32_MAX));
	EXPECT_EQ(0, ml_wake(self->fd, off2 + 4, UINT32_MAX));
	EXPECT_EQ(1, ml_wake(self->fd, off2, UINT32_MAX));
	EXPECT_EQ(0, ml_reap(b));
	EXPECT_EQ(0, ml_wait_waiters(self->fd, 1, 1000));
	EXPECT_EQ(1, ml_wake(self->fd, 0, UINT32_MAX));
	EXPECT_EQ(0, ml_reap(a));
}

/* count 0 wakes nobody (but is a wake for the counter). */
TEST_F(wait, wake_count_zero)
{
	struct memlink_info info;
	pid_t pid;

	pid = spawn_waiter(self->name, 0, 0, 0);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, ml_wait_waiters(self->fd, 1, 10000));
	EXPECT_EQ(0, ml_wake(self->fd, 0, 0));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(1U, info.waiters);
	EXPECT_EQ(1ULL, (unsigned long long)info.wakes);
	EXPECT_EQ(1, ml_wake(self->fd, 0, 1));
	EXPECT_EQ(0, ml_reap(pid));
}

/* A read-only client may wait, and is woken like any other. */
TEST_F(wait, rdonly_client_waits)
{
	pid_t pid = spawn_waiter(self->name, 8, 0, MEMLINK_ATTACH_RDONLY);

	ASSERT_LT(0, pid);
	ASSERT_EQ(0, ml_wait_waiters(self->fd, 1, 10000));
	EXPECT_EQ(1, ml_wake(self->fd, 8, 1));
	EXPECT_EQ(0, ml_reap(pid));
}

/* The word already differs: EAGAIN at once, even without a timeout. */
TEST_F(wait, eagain_when_word_differs)
{
	const uint64_t last = 2 * self->page - 4;
	struct memlink_info info;
	int64_t t0, dt;
	pid_t pid;

	self->map[0] = 5;
	self->map[last / 4] = 0xffffffff;
	t0 = ml_now_ns();
	EXPECT_EQ(-EAGAIN, ml_wait(self->fd, 0, 4, 0));
	EXPECT_EQ(-EAGAIN, ml_wait(self->fd, 0, 0, 0));
	EXPECT_EQ(-EAGAIN, ml_wait(self->fd, 0, 6, WAIT_LONG_NS));
	EXPECT_EQ(-EAGAIN, ml_wait(self->fd, last, 0, 0));
	EXPECT_EQ(-EAGAIN, ml_wait(self->fd, last, 0x7fffffff, 0));
	EXPECT_EQ(-EAGAIN, ml_wait(self->fd, self->page, 1, 0));
	dt = ml_now_ns() - t0;
	EXPECT_GT(500 * ML_NSEC_PER_MSEC, dt);
	ksft_print_msg("6 EAGAIN waits took %.3f ms\n", dt / 1e6);
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(0U, info.waiters);

	/* The same with a word written by another process. */
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = ml_open_attach(self->name, 0);
		volatile __u32 *m;

		if (fd < 0)
			_exit(10);
		m = ml_map(fd, self->page, PROT_READ | PROT_WRITE, 0);
		if (m == MAP_FAILED)
			_exit(11);
		m[3] = 99;
		_exit(0);
	}
	ASSERT_EQ(0, ml_reap(pid));
	EXPECT_EQ(-EAGAIN, ml_wait(self->fd, 12, 0, 0));
	EXPECT_EQ(-ETIMEDOUT, ml_wait(self->fd, 12, 99, 1000));
}

static void check_timeout(struct __test_metadata *_metadata, int fd, int64_t ms)
{
	int64_t t0, dt;
	int ret;

	t0 = ml_now_ns();
	ret = ml_wait(fd, 0, 0, ms * ML_NSEC_PER_MSEC);
	dt = ml_now_ns() - t0;
	ksft_print_msg("timeout %lld ms: returned %d after %.3f ms\n",
		       (long long)ms, ret, dt / 1e6);
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_LE(ms * ML_NSEC_PER_MSEC, dt);
	/* Generous: the VM is emulated. */
	EXPECT_GT((ms + 500) * ML_NSEC_PER_MSEC, dt);
}

TEST_F(wait, timeout_accuracy)
{
	struct memlink_info info;
	int64_t t0, dt;

	check_timeout(_metadata, self->fd, 50);
	check_timeout(_metadata, self->fd, 200);
	check_timeout(_metadata, self->fd, 1);

	/* 1 ns: expires at once. */
	t0 = ml_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ml_wait(self->fd, 0, 0, 1));
	dt = ml_now_ns() - t0;
	EXPECT_GT(500 * ML_NSEC_PER_MSEC, dt);

	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(0U, info.waiters);
	EXPECT_EQ(0ULL, (unsigned long long)info.wakes);
}

/* A wake before the timeout: 0, not ETIMEDOUT, and well before it. */
TEST_F(wait, woken_before_timeout)
{
	int64_t t0, dt;
	pid_t pid;
	int ret;

	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (ml_wait_waiters(self->fd, 1, 10000))
			_exit(10);
		ml_sleep_ms(50);
		_exit(ml_wake(self->fd, 0, 1) == 1 ? 0 : 11);
	}
	t0 = ml_now_ns();
	ret = ml_wait(self->fd, 0, 0, 5 * ML_NSEC_PER_SEC);
	dt = ml_now_ns() - t0;
	EXPECT_EQ(0, ret);
	EXPECT_EQ(0, ml_reap(pid));
	EXPECT_LE(50 * ML_NSEC_PER_MSEC, dt);
	EXPECT_GT(5 * ML_NSEC_PER_SEC, dt);
}

/* Huge timeouts do not overflow into "already expired". */
TEST_F(wait, huge_timeout)
{
	const uint64_t timeouts[] = { UINT64_MAX, (uint64_t)INT64_MAX + 1, INT64_MAX };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(timeouts); i++) {
		pid_t pid = ml_fork();
		int ret;

		ASSERT_LE(0, pid);
		if (pid == 0) {
			if (ml_wait_waiters(self->fd, 1, 10000))
				_exit(10);
			ml_sleep_ms(100);
			_exit(ml_wake(self->fd, 0, 1) == 1 ? 0 : 11);
		}
		ret = ml_wait(self->fd, 0, 0, timeouts[i]);
		EXPECT_EQ(0, ret) TH_LOG("timeout_ns %#llx", (unsigned long long)timeouts[i]);
		EXPECT_EQ(0, ml_reap(pid));
	}
}

static void on_signal(int sig)
{
	(void)sig;
}

/*
 * A signal whose handler runs without SA_RESTART interrupts a wait: EINTR,
 * the waiter is gone from the count, and the struct holds the wait's
 * absolute deadline (MEMLINK_WAIT_ABSTIME). With SA_RESTART the handler
 * runs and the wait goes on, until a wake ends it (restart_test.c has
 * stops and ptrace).
 */
TEST_F(wait, eintr)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct memlink_info info;
	struct memlink_wait w;
	pid_t parent = getpid();
	int64_t t0;
	pid_t pid;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (ml_wait_waiters(self->fd, 1, 10000))
			_exit(10);
		kill(parent, SIGUSR1);
		_exit(0);
	}
	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.timeout_ns = WAIT_LONG_NS;
	t0 = ml_now_ns();
	EXPECT_EQ(-EINTR, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));
	EXPECT_EQ((__u32)MEMLINK_WAIT_ABSTIME, w.flags);
	EXPECT_LE(t0 + WAIT_LONG_NS, (int64_t)w.timeout_ns);
	EXPECT_GE(ml_now_ns() + WAIT_LONG_NS, (int64_t)w.timeout_ns);
	/* Passed again, it is the same deadline: 10 s ahead, not 10 s more. */
	w.expected = 1;
	EXPECT_EQ(-EAGAIN, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));
	EXPECT_EQ(0, ml_reap(pid));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(0U, info.waiters);

	/* SA_RESTART: the handler runs, the wait goes on and a wake ends it. */
	sa.sa_flags = SA_RESTART;
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int wfd = ml_open_attach(self->name, 0);

		if (wfd < 0 || ml_wait_waiters(wfd, 1, 10000))
			_exit(10);
		kill(parent, SIGUSR1);
		ml_sleep_ms(200);
		/* Waiting again after the handler: the wake finds it. */
		if (ml_wait_waiters(wfd, 1, 10000))
			_exit(11);
		_exit(ml_wake(wfd, 0, 1) == 1 ? 0 : 12);
	}
	EXPECT_EQ(0, ml_wait(self->fd, 0, 0, WAIT_LONG_NS));
	EXPECT_EQ(0, ml_reap(pid));

	/* The file still waits normally. */
	EXPECT_EQ(-ETIMEDOUT, ml_wait(self->fd, 0, 0, 1000));
}

TEST_HARNESS_MAIN

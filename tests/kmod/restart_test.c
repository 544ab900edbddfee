// SPDX-License-Identifier: GPL-2.0
/*
 * Waits restart as futex waits do: a stop and continue, a ptrace attach
 * (PTRACE_ATTACH, PTRACE_SEIZE + PTRACE_INTERRUPT) or the cgroup freezer
 * never make a blocking wait return EINTR when no handler runs, and a
 * relative timeout keeps its deadline across the restart (the struct is
 * rewritten as the absolute deadline). Deadlines: MEMLINK_WAIT_ABSTIME on
 * CLOCK_MONOTONIC and, with MEMLINK_WAIT_REALTIME, on CLOCK_REALTIME; a
 * deadline already past is a non-blocking check.
 *
 * Each waiter is a child process: it attaches, waits once on word 0 and
 * exits with ML_WAIT_EXIT(errno) (0 when woken). The parent interrupts it,
 * then changes the word and wakes it: an exit of 0 proves the wait was
 * still there, restarted, after the interruption.
 */
#include "memlink_test.h"

#include <sys/mount.h>
#include <sys/ptrace.h>

#define LONG_NS (60 * ML_NSEC_PER_SEC)

FIXTURE(restart) {
	long page;
	char name[MEMLINK_NAME_MAX];
	int fd;				/* the creator */
	volatile __u32 *map;
};

FIXTURE_SETUP(restart)
{
	self->page = ml_page_size();
	ml_name(self->name, "restart");
	self->fd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, self->fd);
	self->map = ml_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, self->map);
}

FIXTURE_TEARDOWN(restart)
{
	munmap((void *)self->map, self->page);
	close(self->fd);
}

/* Wake the waiter of word 0 for good: change the word, then wake. */
static int finish(FIXTURE_DATA(restart) *self)
{
	self->map[0] = 1;
	return ml_wake(self->fd, 0, 1);
}

/* The waiter sleeps in the module (waiters count 1), or -ETIMEDOUT. */
static int asleep(FIXTURE_DATA(restart) *self)
{
	return ml_wait_waiters(self->fd, 1, 10000 * ml_time_scale());
}

/* Is task `pid` stopped (state T or t in /proc/PID/stat)? */
static int stopped(pid_t pid)
{
	char path[64], buf[256], *p;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && (p[2] == 'T' || p[2] == 't');
}

static int wait_stopped(pid_t pid)
{
	int i;

	for (i = 0; i < 10000 * ml_time_scale(); i++) {
		if (stopped(pid))
			return 0;
		usleep(1000);
	}
	return -1;
}

TEST_F(restart, sigstop_sigcont)
{
	pid_t w = ml_spawn_waiter(self->name, 0, 0, 0, 0);
	int round;

	ASSERT_LT(0, w);
	for (round = 0; round < 3; round++) {
		ASSERT_EQ(0, asleep(self));
		ASSERT_EQ(0, kill(w, SIGSTOP));
		ASSERT_EQ(0, wait_stopped(w));
		ml_sleep_ms(50);
		ASSERT_EQ(0, kill(w, SIGCONT));
	}
	ASSERT_EQ(0, asleep(self));
	EXPECT_EQ(1, finish(self));
	EXPECT_EQ(0, ml_reap(w));
}

/*
 * A timed wait stopped for most of its timeout ends at its deadline, not a
 * whole timeout after the continue: the stop turned it into its absolute
 * deadline (without that it would end at stop + timeout = 7 s).
 */
TEST_F(restart, sigstop_keeps_deadline)
{
	int64_t stop_ms = 3000, timeout_ms = 4000;
	struct { int64_t start, elapsed; __u64 deadline; __u32 flags; int ret; } *r;
	pid_t w;

	r = ml_shared_anon(sizeof(*r));
	ASSERT_NE(NULL, r);
	w = ml_fork();
	ASSERT_LE(0, w);
	if (w == 0) {
		struct memlink_wait wt = {
			.size = sizeof(wt),
			.timeout_ns = timeout_ms * ML_NSEC_PER_MSEC,
		};
		int fd = ml_open_attach(self->name, 0);

		if (fd < 0)
			_exit(99);
		r->start = ml_now_ns();
		r->ret = ml_ioctl(fd, MEMLINK_IOC_WAIT, &wt);
		r->elapsed = ml_now_ns() - r->start;
		r->deadline = wt.timeout_ns;
		r->flags = wt.flags;
		_exit(0);
	}
	ASSERT_EQ(0, asleep(self));
	ASSERT_EQ(0, kill(w, SIGSTOP));
	ASSERT_EQ(0, wait_stopped(w));
	ml_sleep_ms(stop_ms);
	ASSERT_EQ(0, kill(w, SIGCONT));
	ASSERT_EQ(0, ml_reap(w));
	EXPECT_EQ(-ETIMEDOUT, r->ret);
	/* The stop rewrote the wait as its deadline: start + timeout. */
	EXPECT_EQ((__u32)MEMLINK_WAIT_ABSTIME, r->flags);
	EXPECT_LE(r->start + timeout_ms * ML_NSEC_PER_MSEC, (int64_t)r->deadline);
	EXPECT_GT(r->start + (timeout_ms + 1000) * ML_NSEC_PER_MSEC, (int64_t)r->deadline);
	/* Never early, and well before stop + timeout. */
	EXPECT_LE(timeout_ms * ML_NSEC_PER_MSEC, r->elapsed);
	EXPECT_GT((stop_ms + timeout_ms - 1000) * ML_NSEC_PER_MSEC, r->elapsed);
}

TEST_F(restart, ptrace_attach)
{
	pid_t w = ml_spawn_waiter(self->name, 0, 0, 0, 0);
	int status;

	ASSERT_LT(0, w);
	ASSERT_EQ(0, asleep(self));
	ASSERT_EQ(0, ptrace(PTRACE_ATTACH, w, NULL, NULL));
	ASSERT_EQ(w, waitpid(w, &status, 0));
	ASSERT_TRUE(WIFSTOPPED(status));
	ml_sleep_ms(50);
	ASSERT_EQ(0, ptrace(PTRACE_DETACH, w, NULL, NULL));
	ASSERT_EQ(0, asleep(self));
	EXPECT_EQ(1, finish(self));
	EXPECT_EQ(0, ml_reap(w));
}

TEST_F(restart, ptrace_seize_interrupt)
{
	pid_t w = ml_spawn_waiter(self->name, 0, 0, 0, 0);
	int status, round;

	ASSERT_LT(0, w);
	ASSERT_EQ(0, asleep(self));
	ASSERT_EQ(0, ptrace(PTRACE_SEIZE, w, NULL, NULL));
	for (round = 0; round < 3; round++) {
		ASSERT_EQ(0, ptrace(PTRACE_INTERRUPT, w, NULL, NULL));
		ASSERT_EQ(w, waitpid(w, &status, 0));
		ASSERT_TRUE(WIFSTOPPED(status));
		ASSERT_EQ(0, ptrace(PTRACE_CONT, w, NULL, NULL));
		ASSERT_EQ(0, asleep(self));
	}
	/* Detach needs a stopped tracee: one more interrupt. */
	ASSERT_EQ(0, ptrace(PTRACE_INTERRUPT, w, NULL, NULL));
	ASSERT_EQ(w, waitpid(w, &status, 0));
	ASSERT_EQ(0, ptrace(PTRACE_DETACH, w, NULL, NULL));
	ASSERT_EQ(0, asleep(self));
	EXPECT_EQ(1, finish(self));
	EXPECT_EQ(0, ml_reap(w));
}

/* The cgroup v2 freezer: frozen and thawed, the wait goes on. */
TEST_F(restart, cgroup_freezer)
{
	const char *root = "/sys/fs/cgroup", *cg = "/sys/fs/cgroup/memlink-restart";
	char path[128], buf[64];
	pid_t w;
	int fd, i, frozen = 0;

	mkdir(root, 0755);
	if (access("/sys/fs/cgroup/cgroup.procs", F_OK) &&
	    mount("none", root, "cgroup2", 0, NULL))
		SKIP(return, "no cgroup2 here (%s)", strerror(errno));
	if (mkdir(cg, 0755) && errno != EEXIST)
		SKIP(return, "cannot make a cgroup: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/cgroup.freeze", cg);
	if (access(path, W_OK))
		SKIP(rmdir(cg); return, "no cgroup freezer");

	w = ml_spawn_waiter(self->name, 0, 0, 0, 0);
	ASSERT_LT(0, w);
	ASSERT_EQ(0, asleep(self));
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	snprintf(buf, sizeof(buf), "%d\n", (int)w);
	ASSERT_EQ((ssize_t)strlen(buf), write(fd, buf, strlen(buf)));
	close(fd);

	snprintf(path, sizeof(path), "%s/cgroup.freeze", cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(2, write(fd, "1\n", 2));
	snprintf(path, sizeof(path), "%s/cgroup.events", cg);
	for (i = 0; i < 10000 * ml_time_scale() && !frozen; i++) {
		int efd = open(path, O_RDONLY | O_CLOEXEC);
		int n = efd < 0 ? -1 : read(efd, buf, sizeof(buf) - 1);

		if (efd >= 0)
			close(efd);
		buf[n > 0 ? n : 0] = 0;
		frozen = strstr(buf, "frozen 1") != NULL;
		if (!frozen)
			usleep(1000);
	}
	EXPECT_TRUE(frozen);
	ml_sleep_ms(50);
	ASSERT_EQ(2, write(fd, "0\n", 2));
	close(fd);

	ASSERT_EQ(0, asleep(self));
	EXPECT_EQ(1, finish(self));
	EXPECT_EQ(0, ml_reap(w));
	rmdir(cg);
}

/* Deadlines on CLOCK_MONOTONIC and CLOCK_REALTIME; past ones do not sleep. */
TEST_F(restart, deadlines)
{
	struct memlink_wait w = { .size = sizeof(w), .flags = MEMLINK_WAIT_ABSTIME };
	struct timespec ts;
	int64_t t0, dt;

	/* Past (0, and a second ago): a non-blocking check. */
	EXPECT_EQ(-ETIMEDOUT, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));
	w.expected = 7;
	EXPECT_EQ(-EAGAIN, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));
	w.expected = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w.timeout_ns = (__u64)ts.tv_sec * ML_NSEC_PER_SEC + ts.tv_nsec - ML_NSEC_PER_SEC;
	EXPECT_EQ(-ETIMEDOUT, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));

	/* 200 ms ahead on each clock: not before it. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w.timeout_ns = (__u64)ts.tv_sec * ML_NSEC_PER_SEC + ts.tv_nsec + 200 * ML_NSEC_PER_MSEC;
	t0 = ml_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));
	dt = ml_now_ns() - t0;
	EXPECT_LE(190 * ML_NSEC_PER_MSEC, dt);

	w.flags = MEMLINK_WAIT_ABSTIME | MEMLINK_WAIT_REALTIME;
	clock_gettime(CLOCK_REALTIME, &ts);
	w.timeout_ns = (__u64)ts.tv_sec * ML_NSEC_PER_SEC + ts.tv_nsec + 200 * ML_NSEC_PER_MSEC;
	t0 = ml_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));
	dt = ml_now_ns() - t0;
	EXPECT_LE(190 * ML_NSEC_PER_MSEC, dt);
	/* A realtime deadline of a monotonic scale is long past. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w.timeout_ns = (__u64)ts.tv_sec * ML_NSEC_PER_SEC + ts.tv_nsec + 60 * ML_NSEC_PER_SEC;
	EXPECT_EQ(-ETIMEDOUT, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));

	/* REALTIME needs ABSTIME. */
	w.flags = MEMLINK_WAIT_REALTIME;
	EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, &w));
}

/* An absolute deadline is not written back, and a wake still ends it. */
TEST_F(restart, deadline_woken)
{
	struct { int ret; __u64 after; } *r = ml_shared_anon(sizeof(*r));
	__u64 deadline;
	struct timespec ts;
	pid_t w;

	ASSERT_NE(NULL, r);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = (__u64)ts.tv_sec * ML_NSEC_PER_SEC + ts.tv_nsec + LONG_NS;
	w = ml_fork();
	ASSERT_LE(0, w);
	if (w == 0) {
		struct memlink_wait wt = {
			.size = sizeof(wt),
			.flags = MEMLINK_WAIT_ABSTIME,
			.timeout_ns = deadline,
		};
		int fd = ml_open_attach(self->name, 0);

		if (fd < 0)
			_exit(99);
		r->ret = ml_ioctl(fd, MEMLINK_IOC_WAIT, &wt);
		r->after = wt.timeout_ns;
		_exit(0);
	}
	ASSERT_EQ(0, asleep(self));
	ASSERT_EQ(0, kill(w, SIGSTOP));
	ASSERT_EQ(0, wait_stopped(w));
	ASSERT_EQ(0, kill(w, SIGCONT));
	ASSERT_EQ(0, asleep(self));
	EXPECT_EQ(1, finish(self));
	ASSERT_EQ(0, ml_reap(w));
	EXPECT_EQ(0, r->ret);
	EXPECT_EQ(deadline, r->after);
}

TEST_HARNESS_MAIN

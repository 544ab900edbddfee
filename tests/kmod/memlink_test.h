/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the memlink.ko kselftests (tests/kmod/NAME_test.c).
 *
 * Every test runs as root in a VM with memlink.ko loaded (evloop_test also
 * on the host, over the linux backend: make test-evloop). The harness forks
 * one process per test; processes a test forks itself are started with
 * ml_fork(), which makes them die with SIGKILL when the test process dies
 * (a failed ASSERT aborts it), so nothing is left waiting in the module.
 * Children report with their exit status only: never ASSERT in a child.
 */
#ifndef MEMLINK_TEST_H
#define MEMLINK_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/memlink.h>

/*
 * The 6.1 harness leaves parameters unused (__timeout_handler's ucontext,
 * the variant of every TEST()): keep -Wextra -Werror builds clean.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#define ML_DEV		"/dev/memlink"
#define ML_PARAMS	"/sys/module/memlink/parameters/"

#define ML_NSEC_PER_MSEC 1000000LL
#define ML_NSEC_PER_SEC	 1000000000LL

/* iommufd-selftest style: the call fails, and with this errno. */
#define EXPECT_ERRNO(expected_errno, cmd)				\
	({								\
		ASSERT_EQ(-1, cmd);					\
		EXPECT_EQ(expected_errno, errno);			\
	})

static inline long ml_page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/*
 * How much slower than the stock kernel this one runs: the debug (KASAN,
 * lockdep) VM sets ML_TIME_SCALE from memlink_vm.time_scale; timing bounds
 * are multiplied by it.
 */
static inline int64_t ml_time_scale(void)
{
	const char *s = getenv("ML_TIME_SCALE");
	long v = s ? strtol(s, NULL, 10) : 1;

	return v > 0 ? v : 1;
}

static inline int64_t ml_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * ML_NSEC_PER_SEC + ts.tv_nsec;
}

static inline void ml_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * ML_NSEC_PER_MSEC };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* A region name no other test (or run) uses: tag, pid and a counter. */
static inline void ml_name(char *buf, const char *tag)
{
	static unsigned int seq;

	snprintf(buf, MEMLINK_NAME_MAX, "kst.%.30s-%d-%u", tag, (int)getpid(), seq++);
}

static inline int ml_open(void)
{
	return open(ML_DEV, O_RDWR | O_CLOEXEC);
}

/* The ioctl wrappers return the ioctl's result, or -errno. */
static inline int ml_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

static inline int ml_handshake(int fd, struct memlink_handshake *hs)
{
	memset(hs, 0, sizeof(*hs));
	hs->size = sizeof(*hs);
	return ml_ioctl(fd, MEMLINK_IOC_HANDSHAKE, hs);
}

/* Copy a name; up to all MEMLINK_NAME_MAX bytes, so no NUL is possible. */
static inline void ml_set_name(char *dst, const char *src)
{
	memset(dst, 0, MEMLINK_NAME_MAX);
	memcpy(dst, src, strnlen(src, MEMLINK_NAME_MAX));
}

static inline int ml_create_flags(int fd, const char *name, uint64_t size, uint32_t mode,
				  uint32_t flags)
{
	struct memlink_create c = {
		.size = sizeof(c),
		.flags = flags,
		.region_size = size,
		.mode = mode,
	};

	ml_set_name(c.name, name);
	return ml_ioctl(fd, MEMLINK_IOC_CREATE, &c);
}

static inline int ml_create(int fd, const char *name, uint64_t size, uint32_t mode)
{
	return ml_create_flags(fd, name, size, mode, 0);
}

static inline int ml_attach_flags(int fd, const char *name, uint32_t flags, uint64_t *size)
{
	struct memlink_attach a = { .size = sizeof(a), .flags = flags };
	int ret;

	ml_set_name(a.name, name);
	ret = ml_ioctl(fd, MEMLINK_IOC_ATTACH, &a);
	if (!ret && size)
		*size = a.region_size;
	return ret;
}

static inline int ml_attach(int fd, const char *name)
{
	return ml_attach_flags(fd, name, 0, NULL);
}

static inline int ml_info(int fd, struct memlink_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return ml_ioctl(fd, MEMLINK_IOC_INFO, info);
}

static inline int ml_wait(int fd, uint64_t offset, uint32_t expected, uint64_t timeout_ns)
{
	struct memlink_wait w = {
		.size = sizeof(w),
		.offset = offset,
		.expected = expected,
		.timeout_ns = timeout_ns,
	};

	return ml_ioctl(fd, MEMLINK_IOC_WAIT, &w);
}

static inline int ml_wake(int fd, uint64_t offset, uint32_t count)
{
	struct memlink_wake w = { .size = sizeof(w), .offset = offset, .count = count };

	return ml_ioctl(fd, MEMLINK_IOC_WAKE, &w);
}

/* Open a file and create a region on it; returns the fd or -errno. */
static inline int ml_open_create(const char *name, uint64_t size, uint32_t mode)
{
	int fd = ml_open();
	int ret;

	if (fd < 0)
		return -errno;
	ret = ml_create(fd, name, size, mode);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* Open a file and attach it; returns the fd or -errno. */
static inline int ml_open_attach(const char *name, uint32_t flags)
{
	int fd = ml_open();
	int ret;

	if (fd < 0)
		return -errno;
	ret = ml_attach_flags(fd, name, flags, NULL);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static inline void *ml_map(int fd, size_t len, int prot, off_t off)
{
	return mmap(NULL, len, prot, MAP_SHARED, fd, off);
}

/* Anonymous shared memory for results from child processes. */
static inline void *ml_shared_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Poll INFO until `field` of the region reaches `want`; 0, or -ETIMEDOUT. */
#define ML_INFO_FIELD_WAIT(fd, field, want, timeout_ms)			\
	({								\
		struct memlink_info __i;				\
		int64_t __end = ml_now_ns() +				\
			(int64_t)(timeout_ms) * ML_NSEC_PER_MSEC;	\
		int __r = -ETIMEDOUT;					\
		while (ml_now_ns() < __end) {				\
			if (ml_info(fd, &__i))				\
				break;					\
			if (__i.field == (want)) {			\
				__r = 0;				\
				break;					\
			}						\
			usleep(1000);					\
		}							\
		__r;							\
	})

static inline int ml_wait_waiters(int fd, uint32_t n, int timeout_ms)
{
	return ML_INFO_FIELD_WAIT(fd, waiters, n, timeout_ms);
}

/*
 * fork() for a test's helper process: it gets SIGKILL if the test process
 * dies first (an ASSERT abort()s it).
 */
static inline pid_t ml_fork(void)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
	}
	return pid;
}

/* Reap a child: its exit status, ML_KILLED(signal) when killed, -1 on error. */
#define ML_KILLED(sig) (256 + (sig))

static inline int ml_reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return ML_KILLED(WTERMSIG(status));
	return -1;
}

/* Reap with a deadline: like ml_reap(), or -ETIMEDOUT (child still runs). */
static inline int ml_reap_timeout(pid_t pid, int timeout_ms)
{
	int64_t end = ml_now_ns() + (int64_t)timeout_ms * ML_NSEC_PER_MSEC;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0)
			return -1;
		if (ml_now_ns() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return ML_KILLED(WTERMSIG(status));
	return -1;
}

/* The exit status of a waiter process whose wait failed with `err`. */
#define ML_WAIT_EXIT(err) (100 + (err))

/*
 * A waiter process of its own (it attaches by name): waits for the word at
 * `offset` to leave `expected`. Exits 0 when woken, ML_WAIT_EXIT(errno)
 * when the wait fails, 99 when it cannot attach. It closes the files it
 * inherits (a creator's file there would keep the creator alive), but not
 * inherited mappings: spawn it before the creator maps, or use
 * MADV_DONTFORK, when that matters.
 */
static inline pid_t ml_spawn_waiter(const char *name, uint64_t offset, uint32_t expected,
				    uint32_t flags, uint64_t timeout_ns)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		int fd, ret;

		closefrom(3);
		fd = ml_open_attach(name, flags);
		if (fd < 0)
			_exit(99);
		ret = ml_wait(fd, offset, expected, timeout_ns);
		_exit(ret ? ML_WAIT_EXIT(-ret) : 0);
	}
	return pid;
}

/* One byte through a pipe: a simple go/ready signal between processes. */
static inline int ml_signal(int wfd)
{
	char c = 1;

	return write(wfd, &c, 1) == 1 ? 0 : -1;
}

static inline int ml_await(int rfd, int timeout_ms)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };
	char c;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return read(rfd, &c, 1) == 1 ? 0 : -1;
}

/*
 * What MEMLINK_IOC_LIST shows the caller: the module-wide counts (root
 * sees them), and the regions listed with the one named `find`.
 */
struct ml_listing {
	int abi;		/* from the handshake */
	unsigned int regions;	/* all regions of the machine (root) */
	unsigned long long bytes;
	long pages;
	unsigned int user_regions; /* the caller's user's */
	unsigned long long user_bytes;
	int lines;		/* regions listed */
	int found;		/* listed regions named `find` */
	/* the last such, as "name size uid gid mode attached waiters alive\n" */
	char line[256];
};

#define ML_LIST_MAX 2048

static inline int ml_list(int fd, struct memlink_list *l, struct memlink_info *v, __u32 room)
{
	memset(l, 0, sizeof(*l));
	l->size = sizeof(*l);
	l->entries = (__u64)(uintptr_t)v;
	l->entry_size = sizeof(*v);
	l->max_entries = room;
	return ml_ioctl(fd, MEMLINK_IOC_LIST, l);
}

static inline int ml_listing_read(struct ml_listing *p, const char *find)
{
	static struct memlink_info v[ML_LIST_MAX];
	struct memlink_handshake hs;
	struct memlink_list l;
	int fd = ml_open(), ret;
	__u32 i;

	memset(p, 0, sizeof(*p));
	if (fd < 0)
		return -errno;
	ret = ml_handshake(fd, &hs);
	if (!ret)
		ret = ml_list(fd, &l, v, ML_LIST_MAX);
	close(fd);
	if (ret)
		return ret;
	if (l.count != l.total || l.count > ML_LIST_MAX)
		return -EPROTO;
	p->abi = hs.abi_version;
	p->regions = l.all_regions;
	p->bytes = l.all_bytes;
	p->pages = l.all_pages;
	p->user_regions = l.user_regions;
	p->user_bytes = l.user_bytes;
	p->lines = l.count;
	for (i = 0; i < l.count; i++) {
		if (v[i].size != sizeof(v[i]) || v[i].flags ||
		    strnlen(v[i].name, MEMLINK_NAME_MAX) == MEMLINK_NAME_MAX)
			return -EPROTO;
		if (find && !strcmp(v[i].name, find)) {
			p->found++;
			snprintf(p->line, sizeof(p->line), "%s %llu %u %u %04o %u %u %u\n",
				 v[i].name, (unsigned long long)v[i].region_size, v[i].uid,
				 v[i].gid, v[i].mode, v[i].attached, v[i].waiters,
				 v[i].creator_alive);
		}
	}
	return 0;
}

static inline int ml_param_get(const char *name, unsigned long long *val)
{
	char path[128], buf[64];
	int fd, n;

	snprintf(path, sizeof(path), ML_PARAMS "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	*val = strtoull(buf, NULL, 0);
	return 0;
}

static inline int ml_param_set(const char *name, unsigned long long val)
{
	char path[128], buf[64];
	int fd, n, len;

	snprintf(path, sizeof(path), ML_PARAMS "%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%llu\n", val);
	n = write(fd, buf, len);
	close(fd);
	return n == len ? 0 : -EIO;
}

/* Drop to uid/gid with no supplementary groups (and so no capabilities). */
static inline int ml_become(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
		return -1;
	/* A credential change clears the parent-death signal: set it again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	return 0;
}

#endif /* MEMLINK_TEST_H */

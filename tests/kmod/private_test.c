// SPDX-License-Identifier: GPL-2.0
/*
 * Private regions (MEMLINK_FEAT_PRIVATE): what a creator uses to serve
 * clients that must not reach each other. ONCE lets one file attach, ever;
 * SEALED lets others attach read-only only; BELL names the one word any
 * attached file, read-only ones too, may MEMLINK_WAKE_BUMP.
 */
#include <stddef.h>

#include "memlink_test.h"

#ifndef offsetofend
#define offsetofend(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#endif

#define OTHER_UID 1001
#define BELL_OFF 256

/* CREATE with the fields of version 2 of the struct. */
static int create2(int fd, const char *name, uint64_t size, uint32_t mode, uint32_t flags,
		   uint64_t bell_offset)
{
	struct memlink_create c = {
		.size = sizeof(c),
		.flags = flags,
		.region_size = size,
		.mode = mode,
		.bell_offset = bell_offset,
	};

	ml_set_name(c.name, name);
	return ml_ioctl(fd, MEMLINK_IOC_CREATE, &c);
}

static int open_create2(const char *name, uint64_t size, uint32_t mode, uint32_t flags,
			uint64_t bell_offset)
{
	int fd = ml_open(), ret;

	if (fd < 0)
		return -errno;
	ret = create2(fd, name, size, mode, flags, bell_offset);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int bump(int fd, uint64_t offset)
{
	struct memlink_wake w = {
		.size = sizeof(w),
		.flags = MEMLINK_WAKE_BUMP,
		.offset = offset,
		.count = UINT32_MAX,
	};

	return ml_ioctl(fd, MEMLINK_IOC_WAKE, &w);
}

/* As OTHER_UID: attach `name` with `flags`; 0 or the errno (200+: set-up). */
static int attach_as_other(const char *name, uint32_t flags)
{
	pid_t pid = ml_fork();
	int st;

	if (pid == 0) {
		int fd, ret;

		if (setgroups(0, NULL) || setgid(OTHER_UID) || setuid(OTHER_UID))
			_exit(200);
		fd = ml_open();
		if (fd < 0)
			_exit(201);
		ret = ml_attach_flags(fd, name, flags, NULL);
		_exit(ret ? -ret : 0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return 250;
	return WEXITSTATUS(st);
}

TEST(handshake_reports_private)
{
	struct memlink_handshake hs;
	int fd = ml_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_handshake(fd, &hs));
	EXPECT_EQ((__u64)MEMLINK_FEAT_PRIVATE, hs.features & MEMLINK_FEAT_PRIVATE);
	close(fd);
}

/* The first attach takes it; every later one is EBUSY, read-only or not, also after. */
TEST(once_admits_one_file)
{
	char name[MEMLINK_NAME_MAX];
	long page = ml_page_size();
	int cr, a, b;
	volatile __u32 *m, *mc;

	ml_name(name, "once");
	cr = open_create2(name, page, 0666, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	a = ml_open_attach(name, 0);
	ASSERT_LE(0, a);
	EXPECT_EQ(-EBUSY, ml_open_attach(name, 0));
	EXPECT_EQ(-EBUSY, ml_open_attach(name, MEMLINK_ATTACH_RDONLY));
	/* Another user, whom the mode would admit: refused as well. */
	EXPECT_EQ(EBUSY, attach_as_other(name, 0));
	EXPECT_EQ(EBUSY, attach_as_other(name, MEMLINK_ATTACH_RDONLY));

	/* The two that have it share its memory and wake each other. */
	m = ml_map(a, page, PROT_READ | PROT_WRITE, 0);
	mc = ml_map(cr, page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_NE(MAP_FAILED, mc);
	m[3] = 0xabcd;
	EXPECT_EQ(0xabcdU, mc[3]);
	EXPECT_LE(0, ml_wake(cr, 12, 1));
	EXPECT_LE(0, ml_wake(a, 12, 1));

	/* Released: still taken. */
	munmap((void *)m, page);
	close(a);
	EXPECT_EQ(0, ML_INFO_FIELD_WAIT(cr, detached, 1, 5000));
	b = ml_open_attach(name, 0);
	EXPECT_EQ(-EBUSY, b);
	if (b >= 0)
		close(b);
	munmap((void *)mc, page);
	close(cr);
}

/* A read-only attach takes it too: nobody looks on unseen. */
TEST(once_taken_by_a_reader)
{
	char name[MEMLINK_NAME_MAX];
	int cr, r;

	ml_name(name, "oncer");
	cr = open_create2(name, ml_page_size(), 0644, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	r = ml_open_attach(name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	EXPECT_EQ(-EBUSY, ml_open_attach(name, 0));
	close(r);
	close(cr);
}

/*
 * To serve the next client the creator replaces it: a new region, zeroed,
 * which the next file attaches; the old one stays with whoever holds it.
 */
TEST(once_replaced_for_the_next)
{
	char name[MEMLINK_NAME_MAX];
	long page = ml_page_size();
	volatile __u32 *old, *fresh;
	int cr, a, cr2, b;

	ml_name(name, "oncerep");
	cr = open_create2(name, page, 0600, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	a = ml_open_attach(name, 0);
	ASSERT_LE(0, a);
	old = ml_map(a, page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, old);
	old[0] = 0x5eed;
	/* While the creator lives its name is not free. */
	EXPECT_EQ(-EEXIST, open_create2(name, page, 0600,
					MEMLINK_CREATE_ONCE | MEMLINK_CREATE_REPLACE, 0));
	close(cr);
	/* The creator gone: the one that has it hears so, and nobody new gets in. */
	EXPECT_EQ(-EPIPE, ml_wait(a, 0, 0x5eed, 0));
	EXPECT_EQ(-EPIPE, ml_open_attach(name, 0));
	cr2 = open_create2(name, page, 0600, MEMLINK_CREATE_ONCE | MEMLINK_CREATE_REPLACE, 0);
	ASSERT_LE(0, cr2);
	b = ml_open_attach(name, 0);
	ASSERT_LE(0, b);
	fresh = ml_map(b, page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, fresh);
	EXPECT_EQ(0U, fresh[0]);
	EXPECT_EQ(0x5eedU, old[0]);
	EXPECT_EQ(-EBUSY, ml_open_attach(name, 0));
	munmap((void *)fresh, page);
	munmap((void *)old, page);
	close(b);
	close(a);
	close(cr2);
}

/* SEALED: others attach read-only only, and cannot map or make it writable. */
TEST(sealed_readers_only)
{
	char name[MEMLINK_NAME_MAX];
	long page = ml_page_size();
	volatile __u32 *w;
	void *p;
	int cr, r, fd;

	ml_name(name, "seal");
	cr = open_create2(name, page, 0666, MEMLINK_CREATE_SEALED, 0);
	ASSERT_LE(0, cr);
	EXPECT_EQ(-EPERM, ml_open_attach(name, 0));
	EXPECT_EQ(EPERM, attach_as_other(name, 0));
	EXPECT_EQ(0, attach_as_other(name, MEMLINK_ATTACH_RDONLY));
	r = ml_open_attach(name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	EXPECT_EQ(MAP_FAILED, ml_map(r, page, PROT_READ | PROT_WRITE, 0));
	EXPECT_EQ(EACCES, errno);
	p = ml_map(r, page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, page, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	/* The creator writes; the reader sees it. */
	w = ml_map(cr, page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	w[1] = 77;
	EXPECT_EQ(77U, ((volatile __u32 *)p)[1]);
	/* A plain wake from a reader stays EACCES. */
	EXPECT_EQ(-EACCES, ml_wake(r, 0, 1));
	munmap(p, page);
	munmap((void *)w, page);
	close(r);
	close(cr);

	/* The mode still rules first: EACCES, not EPERM, for one it refuses. */
	ml_name(name, "seal0600");
	fd = open_create2(name, page, 0600, MEMLINK_CREATE_SEALED, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EACCES, attach_as_other(name, 0));
	EXPECT_EQ(EACCES, attach_as_other(name, MEMLINK_ATTACH_RDONLY));
	close(fd);
}

/* A bump adds exactly 1 per call, from a read-only file too. */
TEST(bell_bump_counts)
{
	char name[MEMLINK_NAME_MAX];
	long page = ml_page_size();
	volatile __u32 *w;
	int cr, r;

	ml_name(name, "bell");
	cr = open_create2(name, page, 0644, MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL,
			  BELL_OFF);
	ASSERT_LE(0, cr);
	r = ml_open_attach(name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	w = ml_map(cr, page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	w[BELL_OFF / 4] = 0xfffffff0u; /* and it wraps as an unsigned word does */
	for (int i = 0; i < 1000; i++) {
		ASSERT_LE(0, bump(r, BELL_OFF));
	}
	EXPECT_EQ((__u32)(0xfffffff0u + 1000), w[BELL_OFF / 4]);
	EXPECT_EQ(0, bump(cr, BELL_OFF));
	EXPECT_EQ((__u32)(0xfffffff0u + 1001), w[BELL_OFF / 4]);
	/* Nothing else moved. */
	EXPECT_EQ(0U, w[BELL_OFF / 4 - 1]);
	EXPECT_EQ(0U, w[BELL_OFF / 4 + 1]);
	/* Only at the bell. */
	EXPECT_EQ(-EINVAL, bump(r, BELL_OFF + 4));
	EXPECT_EQ(-EINVAL, bump(cr, 0));
	EXPECT_EQ(-EACCES, ml_wake(r, BELL_OFF, 1));
	munmap((void *)w, page);
	close(r);
	close(cr);
}

/* No bell, no bump; unknown wake flags stay EINVAL. */
TEST(bump_needs_a_bell)
{
	char name[MEMLINK_NAME_MAX];
	struct memlink_wake wk = { .size = sizeof(wk), .flags = 1U << 1, .count = 1 };
	int cr;

	ml_name(name, "nobell");
	cr = open_create2(name, ml_page_size(), 0600, 0, 0);
	ASSERT_LE(0, cr);
	EXPECT_EQ(-EINVAL, bump(cr, 0));
	EXPECT_EQ(-EINVAL, ml_ioctl(cr, MEMLINK_IOC_WAKE, &wk));
	close(cr);
}

/*
 * A bump wakes a waiter of another process sleeping on the old value, and
 * one that has not slept yet sees the word changed: never lost.
 */
TEST(bump_wakes_a_sleeper)
{
	char name[MEMLINK_NAME_MAX];
	long page = ml_page_size();
	int cr, r, st, rounds = 50;
	volatile __u32 *w;
	__u32 before;
	pid_t pid;

	ml_name(name, "bellwake");
	cr = open_create2(name, page, 0644, MEMLINK_CREATE_BELL | MEMLINK_CREATE_SEALED,
			  BELL_OFF);
	ASSERT_LE(0, cr);
	w = ml_map(cr, page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	pid = ml_fork();
	if (pid == 0) {
		/* The ringer, read-only: one bump per round, after the creator sleeps. */
		int fd = ml_open_attach(name, MEMLINK_ATTACH_RDONLY);

		if (fd < 0)
			_exit(1);
		for (int i = 0; i < rounds; i++) {
			if (ml_wait_waiters(fd, 1, 10000 * (int)ml_time_scale()))
				_exit(2);
			if (bump(fd, BELL_OFF) < 0)
				_exit(3);
			/* Until the creator is past this round. */
			while (w[0] != (__u32)i + 1)
				usleep(100);
		}
		_exit(0);
	}
	ASSERT_LT(0, pid);
	for (int i = 0; i < rounds; i++) {
		__u32 v = w[BELL_OFF / 4];
		int ret;

		do
			ret = ml_wait(cr, BELL_OFF, v, 30 * ML_NSEC_PER_SEC * ml_time_scale());
		while (ret == -EINTR);
		ASSERT_EQ(0, ret);
		ASSERT_EQ(v + 1, w[BELL_OFF / 4]);
		w[0] = (__u32)i + 1;
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* A bump before the wait: the wait sees the word moved. */
	r = ml_open_attach(name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	before = w[BELL_OFF / 4];
	ASSERT_EQ(0, bump(r, BELL_OFF));
	EXPECT_EQ(-EAGAIN, ml_wait(cr, BELL_OFF, before, ML_NSEC_PER_SEC));
	munmap((void *)w, page);
	close(r);
	close(cr);
}

/* bell_offset: a word of the region, and only with MEMLINK_CREATE_BELL. */
TEST(bell_offset_checked)
{
	char name[MEMLINK_NAME_MAX];
	long page = ml_page_size();
	struct memlink_create c = { .size = offsetofend(struct memlink_create, name),
				    .region_size = page, .mode = 0600 };
	int fd = ml_open();

	ASSERT_LE(0, fd);
	ml_name(name, "belloff");
	EXPECT_EQ(-EINVAL, create2(fd, name, page, 0600, MEMLINK_CREATE_BELL, 2));
	EXPECT_EQ(-EINVAL, create2(fd, name, page, 0600, MEMLINK_CREATE_BELL, page));
	EXPECT_EQ(-EINVAL, create2(fd, name, page, 0600, MEMLINK_CREATE_BELL, page - 2));
	EXPECT_EQ(-EINVAL, create2(fd, name, page, 0600, 0, 8));
	EXPECT_EQ(-EINVAL, create2(fd, name, page, 0600, 1U << 4, 0));
	/* The last word is fine. */
	EXPECT_EQ(0, create2(fd, name, page, 0600, MEMLINK_CREATE_BELL, page - 4));
	close(fd);

	/* The first version of the struct (88 bytes) still creates, with no bell. */
	fd = ml_open();
	ASSERT_LE(0, fd);
	ml_name(name, "v1");
	ml_set_name(c.name, name);
	EXPECT_EQ(0, ml_ioctl(fd, MEMLINK_IOC(_IOC_NR(MEMLINK_IOC_CREATE), c.size), &c));
	EXPECT_EQ(-EINVAL, bump(fd, 0));
	close(fd);
}

TEST_HARNESS_MAIN

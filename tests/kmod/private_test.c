// SPDX-License-Identifier: GPL-2.0
/*
 * Private regions (MEMLINK_FEAT_PRIVATE): what a creator uses to serve
 * clients that must not reach each other.
 *
 * ONCE: one file may ever attach besides the creator's; every later attach
 * is EBUSY, read-only or not, of any user (root too), also after that file
 * is gone. SEALED: others attach read-only only; an attach for writing is
 * EPERM, after the mode's EACCES and a dead creator's EPIPE. BELL names the
 * one word that any bound file, read-only ones too, may MEMLINK_WAKE_BUMP:
 * the kernel adds 1 to it and wakes its waiters; a bump anywhere else, or
 * of a region without a bell, is EINVAL, and a plain wake from a read-only
 * file stays EACCES.
 *
 * The tests run as root (CAP_IPC_OWNER); the other user is a child that
 * drops to OTHER_UID.
 */
#include "memlink_test.h"

#include <stddef.h>

#ifndef offsetofend
#define offsetofend(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#endif

#define OTHER_UID	1001
#define BELL_OFF	256
#define BELL_IDX	(BELL_OFF / 4)
#define LONG_WAIT_NS	(30 * ML_NSEC_PER_SEC)
/* The first version of struct memlink_create: it ended at name. */
#define CREATE_V1_SIZE	offsetofend(struct memlink_create, name)

FIXTURE(priv) {
	long page;
	char name[MEMLINK_NAME_MAX];
	int ms;			/* generous bounds for polling the module, in ms */
};

FIXTURE_SETUP(priv)
{
	self->page = ml_page_size();
	self->ms = 10000 * (int)ml_time_scale();
	ml_name(self->name, "priv");
}

FIXTURE_TEARDOWN(priv)
{
}

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

/* Open a file and create a region on it; the fd or -errno. */
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

/* MEMLINK_WAKE_BUMP of the word at `offset`, waking up to `count`. */
static int bump_n(int fd, uint64_t offset, uint32_t count)
{
	struct memlink_wake w = {
		.size = sizeof(w),
		.flags = MEMLINK_WAKE_BUMP,
		.offset = offset,
		.count = count,
	};

	return ml_ioctl(fd, MEMLINK_IOC_WAKE, &w);
}

static int bump(int fd, uint64_t offset)
{
	return bump_n(fd, offset, UINT32_MAX);
}

static uint64_t info_wakes(int fd)
{
	struct memlink_info info;

	return ml_info(fd, &info) ? ~0ULL : info.wakes;
}

static int info_attached(int fd)
{
	struct memlink_info info;

	return ml_info(fd, &info) ? -1 : (int)info.attached;
}

/*
 * As OTHER_UID (no groups, no capabilities): attach `name` with `flags`.
 * 0 or the attach's errno; 200+ when the child could not set itself up.
 */
static int attach_as_other(const char *name, uint32_t flags)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		int fd, ret;

		if (ml_become(OTHER_UID, OTHER_UID))
			_exit(200);
		if (geteuid() != OTHER_UID)
			_exit(201);
		fd = ml_open();
		if (fd < 0)
			_exit(202);
		ret = ml_attach_flags(fd, name, flags, NULL);
		_exit(ret ? -ret : 0);
	}
	return pid < 0 ? -1 : ml_reap(pid);
}

TEST(handshake_reports_private)
{
	struct memlink_handshake hs;
	int fd = ml_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_handshake(fd, &hs));
	EXPECT_EQ(MEMLINK_FEAT_PRIVATE, 1ULL << 8);
	EXPECT_EQ((__u64)MEMLINK_FEAT_PRIVATE, hs.features & MEMLINK_FEAT_PRIVATE);
	close(fd);
}

/* ---- ONCE ------------------------------------------------------------------ */

/*
 * The first attach takes it; every later one is EBUSY, read-write or
 * read-only, root's (CAP_IPC_OWNER) or another user's whom the mode
 * admits. A refused attach leaves no trace, and its file stays unbound.
 */
TEST_F(priv, once_second_attach_ebusy)
{
	char other[MEMLINK_NAME_MAX];
	struct memlink_info info;
	int cr, a, fd, ocr;

	cr = open_create2(self->name, self->page, 0666, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	a = ml_open_attach(self->name, 0);
	ASSERT_LE(0, a);

	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, 0));
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY));
	EXPECT_EQ(EBUSY, attach_as_other(self->name, 0));
	EXPECT_EQ(EBUSY, attach_as_other(self->name, MEMLINK_ATTACH_RDONLY));

	ASSERT_EQ(0, ml_info(cr, &info));
	EXPECT_EQ(2U, info.attached);
	EXPECT_EQ(0ULL, (unsigned long long)info.detached);

	/* The refused file is still unbound: it may attach elsewhere. */
	ml_name(other, "priv-other");
	ocr = ml_open_create(other, self->page, 0600);
	ASSERT_LE(0, ocr);
	fd = ml_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EBUSY, ml_attach(fd, self->name));
	EXPECT_EQ(-EINVAL, ml_info(fd, &info));
	EXPECT_EQ(0, ml_attach(fd, other));
	EXPECT_EQ(2, info_attached(ocr));
	close(fd);
	close(ocr);
	close(a);
	close(cr);
}

/* Taken for good: the file that took it is released, and still EBUSY. */
TEST_F(priv, once_ebusy_after_release)
{
	struct memlink_info info;
	int cr, a;

	cr = open_create2(self->name, self->page, 0600, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	a = ml_open_attach(self->name, 0);
	ASSERT_LE(0, a);
	close(a);
	ASSERT_EQ(0, ML_INFO_FIELD_WAIT(cr, detached, 1, self->ms));

	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, 0));
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY));
	ASSERT_EQ(0, ml_info(cr, &info));
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(1ULL, (unsigned long long)info.detached);
	EXPECT_EQ(1U, info.creator_alive);
	close(cr);
}

/* A read-only attach takes it too: nobody looks on unseen, nor writes. */
TEST_F(priv, once_taken_by_a_reader)
{
	int cr, r;

	cr = open_create2(self->name, self->page, 0644, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, 0));
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY));
	EXPECT_EQ(2, info_attached(cr));
	close(r);
	close(cr);
}

/* Another user's attach takes it as well: then root gets EBUSY. */
TEST_F(priv, once_taken_by_another_user)
{
	int cr;

	cr = open_create2(self->name, self->page, 0666, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	ASSERT_EQ(0, attach_as_other(self->name, MEMLINK_ATTACH_RDONLY));
	/* That child has exited: its file is gone, the region stays taken. */
	ASSERT_EQ(0, ML_INFO_FIELD_WAIT(cr, detached, 1, self->ms));
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, 0));
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY));
	EXPECT_EQ(EBUSY, attach_as_other(self->name, 0));
	close(cr);
}

/*
 * The creator and the one client share the memory and wake each other;
 * once the client is gone the creator still maps, waits and wakes.
 */
TEST_F(priv, once_creator_keeps_its_region)
{
	volatile __u32 *mc, *ma, *again;
	int cr, a, ret;
	pid_t pid;

	cr = open_create2(self->name, 2 * self->page, 0600, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	mc = ml_map(cr, 2 * self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, mc);
	a = ml_open_attach(self->name, 0);
	ASSERT_LE(0, a);
	ma = ml_map(a, 2 * self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, ma);
	ma[3] = 0xabcd;
	EXPECT_EQ(0xabcdU, mc[3]);

	/* The client's file, in another process, waits; the creator wakes it. */
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		ret = ml_wait(a, 8, 0, LONG_WAIT_NS * ml_time_scale());
		_exit(ret ? ML_WAIT_EXIT(-ret) : 0);
	}
	ASSERT_EQ(0, ml_wait_waiters(cr, 1, self->ms));
	mc[2] = 1;
	EXPECT_EQ(1, ml_wake(cr, 8, UINT32_MAX));
	EXPECT_EQ(0, ml_reap(pid));
	/* And the client wakes the creator's waiters (none here). */
	EXPECT_EQ(0, ml_wake(a, 8, 1));

	munmap((void *)ma, 2 * self->page);
	close(a);
	ASSERT_EQ(0, ML_INFO_FIELD_WAIT(cr, detached, 1, self->ms));
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, 0));

	/* The creator: a new mapping sees what the client wrote; wait, wake. */
	again = ml_map(cr, self->page, PROT_READ | PROT_WRITE, self->page);
	ASSERT_NE(MAP_FAILED, again);
	again[0] = 5;
	EXPECT_EQ(5U, mc[self->page / 4]);
	EXPECT_EQ(0xabcdU, mc[3]);
	EXPECT_EQ(0, ml_wake(cr, 8, UINT32_MAX));
	EXPECT_EQ(-EAGAIN, ml_wait(cr, self->page, 0, ML_NSEC_PER_SEC));
	EXPECT_EQ(-ETIMEDOUT, ml_wait(cr, self->page, 5, ML_NSEC_PER_MSEC));
	EXPECT_EQ(3ULL, (unsigned long long)info_wakes(cr));
	munmap((void *)again, self->page);
	munmap((void *)mc, 2 * self->page);
	close(cr);
}

/*
 * To serve the next client the creator replaces it: a new region, zeroed,
 * which one file attaches; the old one stays with whoever holds it.
 */
TEST_F(priv, once_replaced_for_the_next)
{
	volatile __u32 *old, *fresh;
	int cr, a, cr2, b;

	cr = open_create2(self->name, self->page, 0600, MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	a = ml_open_attach(self->name, 0);
	ASSERT_LE(0, a);
	old = ml_map(a, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, old);
	old[0] = 0x5eed;
	old[1] = 0x5eed;
	/* While the creator lives its name is not free. */
	EXPECT_EQ(-EEXIST, open_create2(self->name, self->page, 0600,
					MEMLINK_CREATE_ONCE | MEMLINK_CREATE_REPLACE, 0));
	close(cr);
	/* The creator gone: the one that has it hears so; nobody gets in. */
	EXPECT_EQ(-EPIPE, ml_wait(a, 0, 0x5eed, 0));
	EXPECT_EQ(-EPIPE, ml_open_attach(self->name, 0));

	cr2 = open_create2(self->name, self->page, 0600,
			   MEMLINK_CREATE_ONCE | MEMLINK_CREATE_REPLACE, 0);
	ASSERT_LE(0, cr2);
	EXPECT_EQ(1, info_attached(cr2));
	b = ml_open_attach(self->name, 0);
	ASSERT_LE(0, b);
	fresh = ml_map(b, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, fresh);
	EXPECT_EQ(0U, fresh[0]);
	EXPECT_EQ(0U, fresh[1]);
	EXPECT_EQ(0x5eedU, old[0]);
	fresh[0] = 1;
	EXPECT_EQ(0x5eedU, old[0]);
	/* The new region is ONCE too. */
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, 0));
	EXPECT_EQ(2, info_attached(cr2));
	munmap((void *)fresh, self->page);
	munmap((void *)old, self->page);
	close(b);
	close(a);
	close(cr2);
}

/* ---- SEALED ---------------------------------------------------------------- */

/*
 * Others, root too, attach read-only only: for writing EPERM, which leaves
 * no trace; the refused file may then attach read-only.
 */
TEST_F(priv, sealed_write_attach_eperm)
{
	struct memlink_info info;
	int cr, fd, r;

	cr = open_create2(self->name, self->page, 0666, MEMLINK_CREATE_SEALED, 0);
	ASSERT_LE(0, cr);
	EXPECT_EQ(-EPERM, ml_open_attach(self->name, 0));
	EXPECT_EQ(EPERM, attach_as_other(self->name, 0));
	EXPECT_EQ(0, attach_as_other(self->name, MEMLINK_ATTACH_RDONLY));
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);

	fd = ml_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EPERM, ml_attach(fd, self->name));
	EXPECT_EQ(-EINVAL, ml_info(fd, &info));
	EXPECT_EQ(0, ml_attach_flags(fd, self->name, MEMLINK_ATTACH_RDONLY, NULL));

	/* Only the other user's read-only file came and went. */
	ASSERT_EQ(0, ML_INFO_FIELD_WAIT(cr, detached, 1, self->ms));
	ASSERT_EQ(0, ml_info(cr, &info));
	EXPECT_EQ(3U, info.attached);
	EXPECT_EQ(1ULL, (unsigned long long)info.detached);
	close(fd);
	close(r);
	close(cr);
}

/*
 * A sealed region's reader cannot write it: no writable mapping, no
 * mprotect to one, no plain wake; it reads what the creator writes, and
 * waits on it.
 */
TEST_F(priv, sealed_reader_cannot_write)
{
	volatile __u32 *w, *p;
	int cr, r;
	pid_t pid;

	cr = open_create2(self->name, self->page, 0644, MEMLINK_CREATE_SEALED, 0);
	ASSERT_LE(0, cr);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	EXPECT_EQ(MAP_FAILED, ml_map(r, self->page, PROT_READ | PROT_WRITE, 0));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, ml_map(r, self->page, PROT_WRITE, 0));
	EXPECT_EQ(EACCES, errno);
	p = ml_map(r, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect((void *)p, self->page, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-EACCES, ml_wake(r, 0, 1));

	w = ml_map(cr, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	w[1] = 77;
	EXPECT_EQ(77U, p[1]);

	/* The reader, in another process, waits; the creator wakes it. */
	pid = ml_spawn_waiter(self->name, 4, 77, MEMLINK_ATTACH_RDONLY,
			      LONG_WAIT_NS * ml_time_scale());
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, ml_wait_waiters(cr, 1, self->ms));
	w[1] = 78;
	EXPECT_EQ(1, ml_wake(cr, 4, 1));
	EXPECT_EQ(0, ml_reap(pid));
	/* Neither refused wake counted. */
	EXPECT_EQ(1ULL, (unsigned long long)info_wakes(cr));
	munmap((void *)p, self->page);
	munmap((void *)w, self->page);
	close(r);
	close(cr);
}

/* The mode rules first: EACCES, not EPERM, for whom it refuses. */
TEST_F(priv, sealed_mode_denial_first)
{
	char name[MEMLINK_NAME_MAX];
	int cr;

	cr = open_create2(self->name, self->page, 0600, MEMLINK_CREATE_SEALED, 0);
	ASSERT_LE(0, cr);
	EXPECT_EQ(EACCES, attach_as_other(self->name, 0));
	EXPECT_EQ(EACCES, attach_as_other(self->name, MEMLINK_ATTACH_RDONLY));
	close(cr);

	/* 0644: others may read; for writing the mode refuses first. */
	ml_name(name, "priv-0644");
	cr = open_create2(name, self->page, 0644, MEMLINK_CREATE_SEALED, 0);
	ASSERT_LE(0, cr);
	EXPECT_EQ(EACCES, attach_as_other(name, 0));
	EXPECT_EQ(0, attach_as_other(name, MEMLINK_ATTACH_RDONLY));
	close(cr);
}

/* A dead creator: EPIPE, not EPERM, for an attach for writing. */
TEST_F(priv, sealed_dead_creator_epipe)
{
	int cr, r;

	cr = open_create2(self->name, self->page, 0666, MEMLINK_CREATE_SEALED, 0);
	ASSERT_LE(0, cr);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	close(cr);
	EXPECT_EQ(-EPIPE, ml_wait(r, 0, 0, 0));
	EXPECT_EQ(-EPIPE, ml_open_attach(self->name, 0));
	EXPECT_EQ(-EPIPE, ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY));
	EXPECT_EQ(EPIPE, attach_as_other(self->name, 0));
	close(r);
}

/*
 * SEALED and ONCE: an attach for writing is EPERM and does not take the
 * region; the first read-only one does; then read-only is EBUSY and for
 * writing still EPERM.
 */
TEST_F(priv, sealed_once_together)
{
	int cr, r;

	cr = open_create2(self->name, self->page, 0666,
			  MEMLINK_CREATE_SEALED | MEMLINK_CREATE_ONCE, 0);
	ASSERT_LE(0, cr);
	EXPECT_EQ(-EPERM, ml_open_attach(self->name, 0));
	EXPECT_EQ(EPERM, attach_as_other(self->name, 0));
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY));
	EXPECT_EQ(-EPERM, ml_open_attach(self->name, 0));
	EXPECT_EQ(EBUSY, attach_as_other(self->name, MEMLINK_ATTACH_RDONLY));
	EXPECT_EQ(2, info_attached(cr));
	close(r);
	close(cr);
}

/* ---- BELL and MEMLINK_WAKE_BUMP -------------------------------------------- */

/*
 * A bump adds exactly 1 per call, from a read-only file too, and counts as
 * a wake; nothing else in the region moves; the word wraps as a __u32.
 */
TEST_F(priv, bump_counts)
{
	volatile __u32 *w;
	int cr, r, i, fails = 0;

	cr = open_create2(self->name, self->page, 0644,
			  MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL, BELL_OFF);
	ASSERT_LE(0, cr);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	w = ml_map(cr, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);

	for (i = 0; i < 1000; i++)
		fails += bump(r, BELL_OFF) != 0;
	EXPECT_EQ(0, fails);
	EXPECT_EQ(1000U, w[BELL_IDX]);
	EXPECT_EQ(1000ULL, (unsigned long long)info_wakes(cr));

	/* The creator bumps as well; and the word wraps. */
	w[BELL_IDX] = 0xfffffffeU;
	EXPECT_EQ(0, bump(cr, BELL_OFF));
	EXPECT_EQ(0xffffffffU, w[BELL_IDX]);
	EXPECT_EQ(0, bump(r, BELL_OFF));
	EXPECT_EQ(0U, w[BELL_IDX]);
	/* count 0: bumped, nobody to wake anyway. */
	EXPECT_EQ(0, bump_n(r, BELL_OFF, 0));
	EXPECT_EQ(1U, w[BELL_IDX]);
	EXPECT_EQ(1003ULL, (unsigned long long)info_wakes(cr));

	/* Nothing else moved. */
	for (i = 0, fails = 0; i < self->page / 4; i++)
		fails += i != BELL_IDX && w[i];
	EXPECT_EQ(0, fails);
	munmap((void *)w, self->page);
	close(r);
	close(cr);
}

/*
 * Bumps from many processes' read-only files and the creator's own atomic
 * adds in user space all count: the kernel's add is atomic.
 */
#define BUMPERS 4
#define BUMPS	2500

TEST_F_TIMEOUT(priv, bump_is_atomic, 120)
{
	volatile __u32 *w;
	pid_t pids[BUMPERS];
	int cr, i, go[2];

	cr = open_create2(self->name, self->page, 0600, MEMLINK_CREATE_BELL, BELL_OFF);
	ASSERT_LE(0, cr);
	ASSERT_EQ(0, pipe(go));
	for (i = 0; i < BUMPERS; i++) {
		pids[i] = ml_fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			int fd, n, bad = 0;

			fd = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
			if (fd < 0)
				_exit(10);
			if (ml_await(go[0], self->ms))
				_exit(11);
			for (n = 0; n < BUMPS; n++)
				bad += bump(fd, BELL_OFF) < 0;
			_exit(bad ? 12 : 0);
		}
	}
	w = ml_map(cr, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	ASSERT_EQ(0, ML_INFO_FIELD_WAIT(cr, attached, BUMPERS + 1, self->ms));
	for (i = 0; i < BUMPERS; i++)
		ASSERT_EQ(0, ml_signal(go[1]));
	for (i = 0; i < BUMPS; i++)
		__atomic_fetch_add(&w[BELL_IDX], 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < BUMPERS; i++)
		EXPECT_EQ(0, ml_reap(pids[i]));
	EXPECT_EQ((__u32)(BUMPERS + 1) * BUMPS, w[BELL_IDX]);
	EXPECT_EQ((unsigned long long)BUMPERS * BUMPS, (unsigned long long)info_wakes(cr));
	munmap((void *)w, self->page);
	close(cr);
}

/*
 * Waiters of other processes sleeping on the bell's old value: a bump from
 * a read-only file wakes them, up to its count, and returns how many.
 */
TEST_F(priv, bump_wakes_other_processes)
{
	volatile __u32 *w;
	pid_t pids[3];
	int cr, r, i;

	cr = open_create2(self->name, self->page, 0644,
			  MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL, BELL_OFF);
	ASSERT_LE(0, cr);
	for (i = 0; i < 3; i++) {
		pids[i] = ml_spawn_waiter(self->name, BELL_OFF, 0, MEMLINK_ATTACH_RDONLY,
					  LONG_WAIT_NS * ml_time_scale());
		ASSERT_LT(0, pids[i]);
	}
	w = ml_map(cr, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	ASSERT_EQ(0, ml_wait_waiters(cr, 3, self->ms));

	/* Up to its count: one of the three, then the other two. */
	EXPECT_EQ(1, bump_n(r, BELL_OFF, 1));
	EXPECT_EQ(1U, w[BELL_IDX]);
	ASSERT_EQ(0, ml_wait_waiters(cr, 2, self->ms));
	EXPECT_EQ(2, bump(r, BELL_OFF));
	EXPECT_EQ(2U, w[BELL_IDX]);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, ml_reap(pids[i]));
	EXPECT_EQ(0, bump(r, BELL_OFF));
	EXPECT_EQ(3U, w[BELL_IDX]);
	munmap((void *)w, self->page);
	close(r);
	close(cr);
}

/*
 * Rounds of: the creator sleeps on the bell's value, a read-only file in
 * another process bumps it; the creator is woken with the word one more.
 * A bump before the wait: the wait sees the word moved (EAGAIN).
 */
TEST_F_TIMEOUT(priv, bump_wakes_the_creator, 120)
{
	const int rounds = 50;
	volatile __u32 *w;
	int cr, r, i, ret;
	__u32 before;
	pid_t pid;

	cr = open_create2(self->name, self->page, 0644,
			  MEMLINK_CREATE_BELL | MEMLINK_CREATE_SEALED, BELL_OFF);
	ASSERT_LE(0, cr);
	w = ml_map(cr, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* One bump per round, once the creator sleeps; it wakes it. */
		int fd = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
		volatile __u32 *m;

		if (fd < 0)
			_exit(10);
		m = ml_map(fd, self->page, PROT_READ, 0);
		if (m == MAP_FAILED)
			_exit(11);
		for (i = 0; i < rounds; i++) {
			if (ml_wait_waiters(fd, 1, self->ms))
				_exit(12);
			if (bump(fd, BELL_OFF) != 1)
				_exit(13);
			/* Until the creator is past this round. */
			while (m[0] != (__u32)i + 1)
				usleep(100);
		}
		_exit(0);
	}
	for (i = 0; i < rounds; i++) {
		__u32 v = w[BELL_IDX];

		ret = ml_wait(cr, BELL_OFF, v, LONG_WAIT_NS * ml_time_scale());
		ASSERT_EQ(0, ret) TH_LOG("round %d", i);
		ASSERT_EQ(v + 1, w[BELL_IDX]) TH_LOG("round %d", i);
		w[0] = (__u32)i + 1;
	}
	EXPECT_EQ(0, ml_reap(pid));
	EXPECT_EQ((__u32)rounds, w[BELL_IDX]);

	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	before = w[BELL_IDX];
	ASSERT_EQ(0, bump(r, BELL_OFF));
	EXPECT_EQ(-EAGAIN, ml_wait(cr, BELL_OFF, before, ML_NSEC_PER_SEC));
	munmap((void *)w, self->page);
	close(r);
	close(cr);
}

/* A bump elsewhere than the bell: EINVAL, from any file; nothing moves. */
TEST_F(priv, bump_elsewhere_einval)
{
	const uint64_t offs[] = { 0, 4, BELL_OFF - 4, BELL_OFF + 4, BELL_OFF + 1,
				  BELL_OFF + 2, 4096 - 4, 4096, ~0ULL & ~3ULL };
	struct memlink_wake k = { .size = sizeof(k), .offset = BELL_OFF, .count = 1 };
	volatile __u32 *w;
	int cr, r, i, fails;

	cr = open_create2(self->name, self->page, 0644, MEMLINK_CREATE_BELL, BELL_OFF);
	ASSERT_LE(0, cr);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	w = ml_map(cr, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	for (i = 0; i < (int)ARRAY_SIZE(offs); i++) {
		EXPECT_EQ(-EINVAL, bump(r, offs[i])) TH_LOG("offset %#llx",
							   (unsigned long long)offs[i]);
		EXPECT_EQ(-EINVAL, bump(cr, offs[i])) TH_LOG("offset %#llx",
							    (unsigned long long)offs[i]);
	}
	for (i = 0, fails = 0; i < self->page / 4; i++)
		fails += w[i] != 0;
	EXPECT_EQ(0, fails);
	EXPECT_EQ(0ULL, (unsigned long long)info_wakes(cr));
	/* Undefined wake flags, with the bump or not: EINVAL. */
	for (i = 1; i < 32; i++) {
		k.flags = 1U << i;
		EXPECT_EQ(-EINVAL, ml_ioctl(r, MEMLINK_IOC_WAKE, &k)) TH_LOG("bit %d", i);
		k.flags |= MEMLINK_WAKE_BUMP;
		EXPECT_EQ(-EINVAL, ml_ioctl(cr, MEMLINK_IOC_WAKE, &k)) TH_LOG("bit %d", i);
	}
	EXPECT_EQ(0U, w[BELL_IDX]);
	EXPECT_EQ(0ULL, (unsigned long long)info_wakes(cr));
	munmap((void *)w, self->page);
	close(r);
	close(cr);
}

/*
 * No bell, no bump: EINVAL for every file, the read-only one too (not
 * EACCES), whose plain wake stays EACCES.
 */
TEST_F(priv, bump_needs_a_bell)
{
	volatile __u32 *w;
	int cr, r, a;

	cr = open_create2(self->name, self->page, 0644, MEMLINK_CREATE_SEALED, 0);
	ASSERT_LE(0, cr);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	w = ml_map(cr, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	EXPECT_EQ(-EINVAL, bump(cr, 0));
	EXPECT_EQ(-EINVAL, bump(r, 0));
	EXPECT_EQ(-EINVAL, bump(r, BELL_OFF));
	EXPECT_EQ(-EACCES, ml_wake(r, 0, 1));
	EXPECT_EQ(0U, w[0]);
	EXPECT_EQ(0ULL, (unsigned long long)info_wakes(cr));
	close(r);
	munmap((void *)w, self->page);
	close(cr);

	/* A plain region, a read-write client: EINVAL too. */
	ml_name(self->name, "priv-plain");
	cr = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cr);
	a = ml_open_attach(self->name, 0);
	ASSERT_LE(0, a);
	EXPECT_EQ(-EINVAL, bump(a, 0));
	EXPECT_EQ(-EINVAL, bump(cr, 0));
	EXPECT_EQ(0, ml_wake(a, 0, 1));
	EXPECT_EQ(1ULL, (unsigned long long)info_wakes(cr));
	close(a);
	close(cr);
}

/*
 * At the bell itself a plain wake is still a wake: EACCES from a read-only
 * file, and from a writer it wakes without touching the word.
 */
TEST_F(priv, plain_wake_at_the_bell)
{
	volatile __u32 *w;
	int cr, r;
	pid_t pid;

	cr = open_create2(self->name, self->page, 0644, MEMLINK_CREATE_BELL, BELL_OFF);
	ASSERT_LE(0, cr);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	EXPECT_EQ(-EACCES, ml_wake(r, BELL_OFF, 1));
	EXPECT_EQ(-EACCES, ml_wake(r, 0, 1));

	pid = ml_spawn_waiter(self->name, BELL_OFF, 0, MEMLINK_ATTACH_RDONLY,
			      LONG_WAIT_NS * ml_time_scale());
	ASSERT_LT(0, pid);
	w = ml_map(cr, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	ASSERT_EQ(0, ml_wait_waiters(cr, 1, self->ms));
	EXPECT_EQ(1, ml_wake(cr, BELL_OFF, 1));
	EXPECT_EQ(0, ml_reap(pid));
	EXPECT_EQ(0U, w[BELL_IDX]);
	EXPECT_EQ(1ULL, (unsigned long long)info_wakes(cr));
	munmap((void *)w, self->page);
	close(r);
	close(cr);
}

/* A bump makes the region's files readable (poll), as a wake does. */
TEST_F(priv, bump_polls_in)
{
	struct pollfd p;
	uint64_t wakes;
	int cr, r;

	cr = open_create2(self->name, self->page, 0644,
			  MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL, BELL_OFF);
	ASSERT_LE(0, cr);
	r = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, r);
	p = (struct pollfd){ .fd = cr, .events = POLLIN };
	EXPECT_EQ(0, poll(&p, 1, 0));
	ASSERT_EQ(0, bump(r, BELL_OFF));
	p.revents = 0;
	EXPECT_EQ(1, poll(&p, 1, self->ms));
	EXPECT_TRUE(p.revents & POLLIN);
	ASSERT_EQ((ssize_t)sizeof(wakes), read(cr, &wakes, sizeof(wakes)));
	EXPECT_EQ(1ULL, (unsigned long long)wakes);
	p.revents = 0;
	EXPECT_EQ(0, poll(&p, 1, 0));
	close(r);
	close(cr);
}

/* bell_offset: a 4-aligned word of the region, and only with MEMLINK_CREATE_BELL. */
TEST_F(priv, bell_offset_checked)
{
	const uint64_t size = 2 * self->page;
	const uint64_t bad[] = { 1, 2, 3, 6, BELL_OFF + 1, size - 2, size - 1, size,
				 size + 4, 1ULL << 32, ~0ULL & ~3ULL, ~0ULL };
	const uint64_t lone[] = { 4, 8, BELL_OFF, size - 4, size, ~0ULL };
	struct memlink_info info;
	volatile __u32 *w;
	int fd, i;

	fd = ml_open();
	ASSERT_LE(0, fd);
	for (i = 0; i < (int)ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, create2(fd, self->name, size, 0600, MEMLINK_CREATE_BELL,
					   bad[i])) TH_LOG("bell_offset %#llx",
							   (unsigned long long)bad[i]);
	}
	/* Without the flag, any bell_offset but 0, with other flags or none. */
	for (i = 0; i < (int)ARRAY_SIZE(lone); i++) {
		EXPECT_EQ(-EINVAL, create2(fd, self->name, size, 0600, 0, lone[i]))
			TH_LOG("bell_offset %#llx", (unsigned long long)lone[i]);
		EXPECT_EQ(-EINVAL, create2(fd, self->name, size, 0600,
					   MEMLINK_CREATE_ONCE | MEMLINK_CREATE_SEALED, lone[i]))
			TH_LOG("bell_offset %#llx", (unsigned long long)lone[i]);
	}
	/* Undefined create flags: EINVAL, with a bell or not. */
	for (i = 4; i < 32; i++) {
		EXPECT_EQ(-EINVAL, create2(fd, self->name, size, 0600, 1U << i, 0));
		EXPECT_EQ(-EINVAL, create2(fd, self->name, size, 0600,
					   MEMLINK_CREATE_BELL | 1U << i, 0));
	}
	/* None of that created or bound anything. */
	EXPECT_EQ(-EINVAL, ml_info(fd, &info));
	EXPECT_EQ(-ENOENT, ml_open_attach(self->name, 0));

	/* The last word, in the second page: that one is bumped. */
	ASSERT_EQ(0, create2(fd, self->name, size, 0600, MEMLINK_CREATE_BELL, size - 4));
	w = ml_map(fd, size, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	EXPECT_EQ(0, bump(fd, size - 4));
	EXPECT_EQ(-EINVAL, bump(fd, self->page - 4));
	EXPECT_EQ(1U, w[size / 4 - 1]);
	EXPECT_EQ(0U, w[self->page / 4 - 1]);
	munmap((void *)w, size);
	close(fd);

	/* Offset 0 is a bell too, with the flag. */
	ml_name(self->name, "priv-bell0");
	fd = open_create2(self->name, self->page, 0600, MEMLINK_CREATE_BELL, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, bump(fd, 0));
	EXPECT_EQ(-EINVAL, bump(fd, 4));
	close(fd);
}

/*
 * The first version of struct memlink_create (88 bytes, no bell_offset,
 * MEMLINK_IOC(1, 88)) still creates: a plain region without a bell, or
 * with the flags it can carry.
 */
TEST_F(priv, create_struct_v1)
{
	struct memlink_create c = { .size = CREATE_V1_SIZE, .region_size = self->page,
				    .mode = 0600 };
	const unsigned long cmd = MEMLINK_IOC(_IOC_NR(MEMLINK_IOC_CREATE), CREATE_V1_SIZE);
	struct memlink_info info;
	int fd, a;

	ASSERT_EQ(88U, CREATE_V1_SIZE);
	ASSERT_EQ(96U, sizeof(struct memlink_create));
	fd = ml_open();
	ASSERT_LE(0, fd);
	ml_set_name(c.name, self->name);
	ASSERT_EQ(0, ml_ioctl(fd, cmd, &c));
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ((__u64)self->page, info.region_size);
	EXPECT_EQ(1U, info.creator_alive);
	EXPECT_EQ(-EINVAL, bump(fd, 0));
	a = ml_open_attach(self->name, 0);
	ASSERT_LE(0, a);
	EXPECT_EQ(0, ml_wake(a, 0, 1));
	close(a);
	close(fd);

	/* ONCE through the 88-byte struct. */
	fd = ml_open();
	ASSERT_LE(0, fd);
	ml_name(self->name, "priv-v1once");
	ml_set_name(c.name, self->name);
	c.flags = MEMLINK_CREATE_ONCE;
	ASSERT_EQ(0, ml_ioctl(fd, cmd, &c));
	a = ml_open_attach(self->name, 0);
	ASSERT_LE(0, a);
	EXPECT_EQ(-EBUSY, ml_open_attach(self->name, 0));
	close(a);
	close(fd);

	/* The 88-byte struct with the 96-byte number: EINVAL, nothing created. */
	fd = ml_open();
	ASSERT_LE(0, fd);
	ml_name(self->name, "priv-v1num");
	ml_set_name(c.name, self->name);
	c.flags = 0;
	EXPECT_EQ(-EINVAL, ml_ioctl(fd, MEMLINK_IOC_CREATE, &c));
	EXPECT_EQ(-ENOENT, ml_open_attach(self->name, 0));
	close(fd);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * Access control on attach: the region's mode and owner, System V style
 * (owner bits, else group bits, else other bits; CAP_IPC_OWNER overrides).
 * The tests run as root, which has CAP_IPC_OWNER: the denied side is a
 * child that drops to another uid (and so loses its capabilities).
 */
#include "memlink_test.h"

#define UID_A 1000
#define UID_B 1001
#define NO_GROUP ((gid_t)-1)

enum { JUST_ATTACH, MAP_AND_WRITE, MAP_AND_READ };

FIXTURE(perm) {
	long page;
	char name[MEMLINK_NAME_MAX];
};

FIXTURE_SETUP(perm)
{
	self->page = ml_page_size();
	ml_name(self->name, "perm");
}

FIXTURE_TEARDOWN(perm)
{
}

/*
 * As uid/gid (plus one supplementary group unless NO_GROUP), attach to
 * `name` with `flags`, then maybe map it. Returns 0, or the errno of the
 * first step that failed (200+ for setup failures).
 */
static int attach_as(const char *name, uid_t uid, gid_t gid, gid_t extra, uint32_t flags,
		     int what)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		volatile __u32 *m;
		int fd, ret;

		if (setgroups(extra == NO_GROUP ? 0 : 1, &extra) || setgid(gid) || setuid(uid))
			_exit(200);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (geteuid() != uid)
			_exit(201);
		fd = ml_open();
		if (fd < 0)
			_exit(202);
		ret = ml_attach_flags(fd, name, flags, NULL);
		if (ret)
			_exit(-ret);
		if (what == JUST_ATTACH)
			_exit(0);
		m = ml_map(fd, ml_page_size(), what == MAP_AND_WRITE ? PROT_READ | PROT_WRITE :
			   PROT_READ, 0);
		if (m == MAP_FAILED)
			_exit(errno);
		if (what == MAP_AND_WRITE)
			m[0] = 0xc0ffee00 + uid;
		else if (m[0] != 0x5eed)
			_exit(203);
		_exit(0);
	}
	return pid < 0 ? -1 : ml_reap(pid);
}

TEST_F(perm, mode_0600_denies_other_uid)
{
	struct memlink_info info;
	int cfd, fd;

	cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cfd);
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, NO_GROUP, 0, JUST_ATTACH));
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, NO_GROUP,
				    MEMLINK_ATTACH_RDONLY, JUST_ATTACH));
	/* In root's group (gid 0) but the group bits are 0. */
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, 0, NO_GROUP, MEMLINK_ATTACH_RDONLY,
				    JUST_ATTACH));
	/* Root, the owner, attaches; the denied tries left no trace. */
	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_info(cfd, &info));
	EXPECT_EQ(2U, info.attached);
	EXPECT_EQ(0ULL, (unsigned long long)info.detached);
	close(fd);
	close(cfd);
}

TEST_F(perm, mode_0666_allows_other_uid)
{
	volatile __u32 *m;
	int cfd;

	cfd = ml_open_create(self->name, self->page, 0666);
	ASSERT_LE(0, cfd);
	m = ml_map(cfd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, m);
	m[0] = 0x5eed;
	EXPECT_EQ(0, attach_as(self->name, UID_A, UID_A, NO_GROUP, MEMLINK_ATTACH_RDONLY,
			       MAP_AND_READ));
	EXPECT_EQ(0, attach_as(self->name, UID_A, UID_A, NO_GROUP, 0, MAP_AND_WRITE));
	EXPECT_EQ(0xc0ffee00U + UID_A, m[0]);
	munmap((void *)m, self->page);
	close(cfd);
}

/* 0644: others may attach read-only only. */
TEST_F(perm, mode_0644_read_only_for_others)
{
	volatile __u32 *m;
	int cfd;

	cfd = ml_open_create(self->name, self->page, 0644);
	ASSERT_LE(0, cfd);
	m = ml_map(cfd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, m);
	m[0] = 0x5eed;
	EXPECT_EQ(0, attach_as(self->name, UID_A, UID_A, NO_GROUP, MEMLINK_ATTACH_RDONLY,
			       MAP_AND_READ));
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, NO_GROUP, 0, JUST_ATTACH));
	munmap((void *)m, self->page);
	close(cfd);

	/* Write-only bits (0622) allow neither: read-write needs rw. */
	ml_name(self->name, "perm-w");
	cfd = ml_open_create(self->name, self->page, 0622);
	ASSERT_LE(0, cfd);
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, NO_GROUP, 0, JUST_ATTACH));
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, NO_GROUP, MEMLINK_ATTACH_RDONLY,
				    JUST_ATTACH));
	close(cfd);
}

/* The group bits apply to members of the region's group (gid 0 here). */
TEST_F(perm, group_bits)
{
	int cfd;

	cfd = ml_open_create(self->name, self->page, 0640);
	ASSERT_LE(0, cfd);
	/* Supplementary group 0. */
	EXPECT_EQ(0, attach_as(self->name, UID_A, UID_A, 0, MEMLINK_ATTACH_RDONLY,
			       JUST_ATTACH));
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, 0, 0, JUST_ATTACH));
	/* Primary group 0. */
	EXPECT_EQ(0, attach_as(self->name, UID_A, 0, NO_GROUP, MEMLINK_ATTACH_RDONLY,
			       JUST_ATTACH));
	/* Not in the group: the other bits (0) apply. */
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, NO_GROUP, MEMLINK_ATTACH_RDONLY,
				    JUST_ATTACH));
	close(cfd);

	ml_name(self->name, "perm-g");
	cfd = ml_open_create(self->name, self->page, 0660);
	ASSERT_LE(0, cfd);
	EXPECT_EQ(0, attach_as(self->name, UID_A, UID_A, 0, 0, JUST_ATTACH));
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, NO_GROUP, 0, JUST_ATTACH));
	close(cfd);
}

/*
 * A region created by uid 1000 with 0600: uid 1000 attaches from another
 * process, uid 1001 cannot, root can (CAP_IPC_OWNER). INFO and the listing
 * show the owner.
 */
TEST_F(perm, created_by_other_uid)
{
	struct memlink_info info;
	struct ml_listing proc;
	char want[128];
	int p[2], fd;
	pid_t owner;

	ASSERT_EQ(0, pipe(p));
	owner = ml_fork();
	ASSERT_LE(0, owner);
	if (owner == 0) {
		int cfd;

		if (ml_become(UID_A, UID_A))
			_exit(200);
		cfd = ml_open_create(self->name, self->page, 0600);
		if (cfd < 0)
			_exit(-cfd);
		ml_signal(p[1]);
		for (;;)
			pause();
	}
	ASSERT_EQ(0, ml_await(p[0], 10000));

	EXPECT_EQ(0, attach_as(self->name, UID_A, UID_A, NO_GROUP, 0, JUST_ATTACH));
	EXPECT_EQ(0, attach_as(self->name, UID_A, UID_A, NO_GROUP, MEMLINK_ATTACH_RDONLY,
			       JUST_ATTACH));
	EXPECT_EQ(EACCES, attach_as(self->name, UID_B, UID_B, NO_GROUP, 0, JUST_ATTACH));
	EXPECT_EQ(EACCES, attach_as(self->name, UID_B, UID_A, NO_GROUP, MEMLINK_ATTACH_RDONLY,
				    JUST_ATTACH));

	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ((__u32)UID_A, info.uid);
	EXPECT_EQ((__u32)UID_A, info.gid);
	EXPECT_EQ(0600U, info.mode);
	EXPECT_EQ(2U, info.attached);
	EXPECT_EQ(2ULL, (unsigned long long)info.detached);

	ASSERT_EQ(0, ml_listing_read(&proc, self->name));
	EXPECT_EQ(1, proc.found);
	snprintf(want, sizeof(want), "%s %ld %d %d 0600 2 0 1\n", self->name, self->page,
		 UID_A, UID_A);
	EXPECT_STREQ(want, proc.line);

	ASSERT_EQ(0, kill(owner, SIGKILL));
	EXPECT_EQ(ML_KILLED(SIGKILL), ml_reap(owner));
	close(fd);
}

/* Owner bits win over other bits: 0066 denies its own owner (not root). */
TEST_F(perm, owner_class_decides)
{
	int p[2];
	pid_t owner;

	ASSERT_EQ(0, pipe(p));
	owner = ml_fork();
	ASSERT_LE(0, owner);
	if (owner == 0) {
		int cfd;

		if (ml_become(UID_A, UID_A))
			_exit(200);
		cfd = ml_open_create(self->name, self->page, 0066);
		if (cfd < 0)
			_exit(-cfd);
		ml_signal(p[1]);
		for (;;)
			pause();
	}
	ASSERT_EQ(0, ml_await(p[0], 10000));
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, UID_A, NO_GROUP, MEMLINK_ATTACH_RDONLY,
				    JUST_ATTACH));
	EXPECT_EQ(0, attach_as(self->name, UID_B, UID_B, NO_GROUP, 0, JUST_ATTACH));
	EXPECT_EQ(0, attach_as(self->name, UID_B, UID_A, NO_GROUP, 0, JUST_ATTACH));
	ASSERT_EQ(0, kill(owner, SIGKILL));
	EXPECT_EQ(ML_KILLED(SIGKILL), ml_reap(owner));
}

/* Mode 0: nobody but CAP_IPC_OWNER. */
TEST_F(perm, mode_0000)
{
	int cfd, fd;

	cfd = ml_open_create(self->name, self->page, 0);
	ASSERT_LE(0, cfd);
	EXPECT_EQ(EACCES, attach_as(self->name, UID_A, 0, 0, MEMLINK_ATTACH_RDONLY,
				    JUST_ATTACH));
	fd = ml_open_attach(self->name, 0);
	EXPECT_LE(0, fd);
	close(fd);
	close(cfd);
}

/* An unprivileged user can use the module end to end. */
TEST_F(perm, unprivileged_user)
{
	pid_t pid = ml_fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct memlink_handshake hs;
		int cfd, afd;

		if (ml_become(UID_B, UID_B))
			_exit(200);
		if (ml_handshake(ml_open(), &hs))
			_exit(10);
		cfd = ml_open_create(self->name, self->page, 0600);
		if (cfd < 0)
			_exit(11);
		afd = ml_open_attach(self->name, 0);
		if (afd < 0)
			_exit(12);
		if (ml_wait(afd, 0, 0, ML_NSEC_PER_MSEC) != -ETIMEDOUT)
			_exit(13);
		if (ml_wake(afd, 0, 1) != 0)
			_exit(14);
		_exit(0);
	}
	EXPECT_EQ(0, ml_reap(pid));
}

TEST_HARNESS_MAIN

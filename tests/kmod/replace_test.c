// SPDX-License-Identifier: GPL-2.0
/*
 * MEMLINK_CREATE_REPLACE takes a dead creator's name only for the region's
 * owner (the same effective uid) or for CAP_IPC_OWNER in the namespace's
 * user namespace; anyone else gets EACCES, and the name, the region and
 * the owner's right to take it back are untouched.
 *
 * The attack this closes: uid B, refused on attach, replaced uid A's 0600
 * region whose daemon had died (while a client still held it) with a 0666
 * region of its own; a reconnecting client attached to the impostor, and
 * the real daemon, restarted, got EEXIST for good.
 */
#include "memlink_test.h"

#include <sched.h>

#define UID_A 1000
#define UID_B 1001
#define UID_C 1002

FIXTURE(replace) {
	long page;
	char name[MEMLINK_NAME_MAX];
	int held;		/* root's file on A's region, keeping it alive */
};

/* As `uid`: create (flags) `name` with `mode`, then exit 0 or the errno. */
static int create_as(const char *name, uid_t uid, uint64_t size, uint32_t mode,
		     uint32_t flags, bool keep)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		int fd, ret;

		if (ml_become(uid, uid))
			_exit(200);
		fd = ml_open();
		if (fd < 0)
			_exit(201);
		ret = ml_create_flags(fd, name, size, mode, flags);
		if (ret)
			_exit(-ret);
		if (keep)
			for (;;)
				pause();
		_exit(0);
	}
	return pid < 0 ? -1 : ml_reap(pid);
}

/*
 * A's daemon created the region and died; root's attached file (a client
 * that has not noticed yet) keeps the region, creator dead, under its name.
 */
FIXTURE_SETUP(replace)
{
	struct memlink_info info;
	int p[2];
	pid_t a;

	self->page = ml_page_size();
	ml_name(self->name, "repl");
	ASSERT_EQ(0, pipe(p));
	a = ml_fork();
	ASSERT_LE(0, a);
	if (a == 0) {
		int fd;

		if (ml_become(UID_A, UID_A))
			_exit(200);
		fd = ml_open_create(self->name, self->page, 0600);
		if (fd < 0)
			_exit(-fd);
		ml_signal(p[1]);
		for (;;)
			pause();
	}
	ASSERT_EQ(0, ml_await(p[0], 10000));
	self->held = ml_open_attach(self->name, 0);
	ASSERT_LE(0, self->held);
	ASSERT_EQ(0, kill(a, SIGKILL));
	ASSERT_EQ(ML_KILLED(SIGKILL), ml_reap(a));
	ASSERT_EQ(0, ml_info(self->held, &info));
	ASSERT_EQ(0U, info.creator_alive);
	ASSERT_EQ((__u32)UID_A, info.uid);
	close(p[0]);
	close(p[1]);
}

FIXTURE_TEARDOWN(replace)
{
	close(self->held);
}

/* The name still leads to A's dead region (attach: EPIPE; listed once). */
static void expect_untouched(struct __test_metadata *_metadata,
			     FIXTURE_DATA(replace) *self)
{
	struct ml_listing l;
	char want[160];

	EXPECT_EQ(-EPIPE, ml_open_attach(self->name, 0));
	ASSERT_EQ(0, ml_listing_read(&l, self->name));
	EXPECT_EQ(1, l.found);
	snprintf(want, sizeof(want), "%s %ld %d %d 0600 1 0 0\n", self->name, self->page,
		 UID_A, UID_A);
	EXPECT_STREQ(want, l.line);
}

TEST_F(replace, other_uid_refused)
{
	/* Whatever mode the impostor asks for. */
	EXPECT_EQ(EACCES, create_as(self->name, UID_B, self->page, 0666,
				    MEMLINK_CREATE_REPLACE, false));
	EXPECT_EQ(EACCES, create_as(self->name, UID_B, self->page, 0600,
				    MEMLINK_CREATE_REPLACE, false));
	/* Without REPLACE: the name is taken. */
	EXPECT_EQ(EEXIST, create_as(self->name, UID_B, self->page, 0666, 0, false));
	/* Nor anyone else. */
	EXPECT_EQ(EACCES, create_as(self->name, UID_C, self->page, 0600,
				    MEMLINK_CREATE_REPLACE, false));
	expect_untouched(_metadata, self);
}

/* The owner, restarted, takes its name back; so does root. */
TEST_F(replace, owner_and_cap_ipc_owner)
{
	struct memlink_info info;
	int fd;

	EXPECT_EQ(EACCES, create_as(self->name, UID_B, self->page, 0666,
				    MEMLINK_CREATE_REPLACE, false));
	EXPECT_EQ(0, create_as(self->name, UID_A, 2 * self->page, 0600,
			       MEMLINK_CREATE_REPLACE, false));
	/* A's new daemon exited: its region went with it; the old one is unnamed. */
	EXPECT_EQ(-ENOENT, ml_open_attach(self->name, 0));

	/* Root (CAP_IPC_OWNER in the initial namespace) may replace. */
	fd = ml_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, ml_create_flags(fd, self->name, self->page, 0600, MEMLINK_CREATE_REPLACE));
	close(fd);

	/* The held file still sees A's first region, dead. */
	ASSERT_EQ(0, ml_info(self->held, &info));
	EXPECT_EQ((__u32)UID_A, info.uid);
	EXPECT_EQ(0U, info.creator_alive);
}

/*
 * The sequence: B cannot take over, so a client of another uid
 * never reaches an impostor, and A's restarted daemon is not locked out.
 */
TEST_F(replace, impostor_sequence)
{
	struct memlink_info info;
	int p[2], fd;
	pid_t a2, c;

	EXPECT_EQ(EACCES, create_as(self->name, UID_B, self->page, 0666,
				    MEMLINK_CREATE_REPLACE, false));
	/* A client of uid C finds no region it could attach. */
	c = ml_fork();
	ASSERT_LE(0, c);
	if (c == 0) {
		if (ml_become(UID_C, UID_C))
			_exit(200);
		_exit(-ml_open_attach(self->name, 0));
	}
	/* 0600 of A, creator dead: the mode refuses C first. */
	EXPECT_EQ(EACCES, ml_reap(c));
	ASSERT_EQ(0, pipe(p));
	a2 = ml_fork();
	ASSERT_LE(0, a2);
	if (a2 == 0) {
		if (ml_become(UID_A, UID_A))
			_exit(200);
		fd = ml_open();
		if (fd < 0 || ml_create_flags(fd, self->name, self->page, 0666,
					      MEMLINK_CREATE_REPLACE))
			_exit(201);
		ml_signal(p[1]);
		for (;;)
			pause();
	}
	ASSERT_EQ(0, ml_await(p[0], 10000));
	fd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ((__u32)UID_A, info.uid);
	EXPECT_EQ(1U, info.creator_alive);
	close(fd);
	kill(a2, SIGKILL);
	ml_reap(a2);
}

/*
 * CAP_IPC_OWNER counts only in the user namespace that owns the region's
 * IPC namespace: B, root of a user namespace of its own but still in the
 * initial IPC namespace, is refused.
 */
TEST_F(replace, cap_in_child_user_ns_does_not_count)
{
	pid_t pid = ml_fork();
	int ret;

	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		if (ml_become(UID_B, UID_B))
			_exit(200);
		if (unshare(CLONE_NEWUSER))
			_exit(errno == EPERM || errno == EINVAL ? 250 : 201);
		fd = ml_open();
		if (fd < 0)
			_exit(202);
		ret = ml_create_flags(fd, self->name, self->page, 0666, MEMLINK_CREATE_REPLACE);
		_exit(ret ? -ret : 0);
	}
	ret = ml_reap(pid);
	if (ret == 250)
		SKIP(return, "no user namespaces here");
	EXPECT_EQ(EACCES, ret);
	expect_untouched(_metadata, self);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * Regions live per IPC namespace, as System V IPC and POSIX message queues
 * do. A process in a new user and IPC namespace (uid 65534 there, with all
 * capabilities of its own user namespace) cannot attach, replace or list
 * the parent namespace's regions, and the parent cannot reach its regions
 * by name; the same name may exist in both. A descriptor is a capability:
 * passed across, it keeps working. A namespace that is gone takes its
 * names with it, even while a region of it is still held elsewhere.
 *
 * Each child reports through its exit status and a shared page.
 */
#include "memlink_test.h"

#include <sched.h>
#include <sys/socket.h>

struct ns_report {
	int attach_parent;	/* -errno of attaching the parent's name */
	int attach_parent_ro;
	int replace_parent;	/* -errno of REPLACE of the parent's dead name */
	__u32 list_total;	/* regions the child's listing shows */
	int create_same_name;	/* -errno of creating the parent's name */
	__u64 size_seen;	/* size of the child's own region of that name */
	int attach_only_parent;	/* -errno of attaching a name only the parent has */
};

FIXTURE(ns) {
	long page;
	char name[MEMLINK_NAME_MAX];	/* the parent's 0666 region, 3 pages */
	char dead[MEMLINK_NAME_MAX];	/* the parent's region whose creator died */
	char only[MEMLINK_NAME_MAX];	/* a name only the parent has */
	int cfd, ofd, dead_held;
	struct ns_report *r;
};

FIXTURE_SETUP(ns)
{
	int fd;

	self->page = ml_page_size();
	ml_name(self->name, "ns");
	ml_name(self->dead, "ns-dead");
	ml_name(self->only, "ns-only");
	self->cfd = ml_open_create(self->name, 3 * self->page, 0666);
	ASSERT_LE(0, self->cfd);
	self->ofd = ml_open_create(self->only, self->page, 0666);
	ASSERT_LE(0, self->ofd);
	fd = ml_open_create(self->dead, self->page, 0666);
	ASSERT_LE(0, fd);
	self->dead_held = ml_open_attach(self->dead, 0);
	ASSERT_LE(0, self->dead_held);
	close(fd);
	self->r = ml_shared_anon(sizeof(*self->r));
	ASSERT_NE(NULL, self->r);
}

FIXTURE_TEARDOWN(ns)
{
	close(self->dead_held);
	close(self->ofd);
	close(self->cfd);
}

/* Into a new user + IPC namespace; 0, or 250 when the kernel has none. */
static int new_ns(void)
{
	if (unshare(CLONE_NEWUSER | CLONE_NEWIPC))
		return errno == EINVAL || errno == EPERM || errno == ENOSPC ? 250 : 201;
	return 0;
}

static int send_fd(int sock, int fd)
{
	char c = 'f', ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *h;
	int fd;

	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	h = CMSG_FIRSTHDR(&m);
	if (!h || h->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(h), sizeof(int));
	return fd;
}

/* The child cannot see or reach the parent's names; its own are its own. */
TEST_F(ns, child_sees_nothing_of_parent)
{
	struct ns_report *r = self->r;
	struct memlink_info info;
	uint64_t size = 0;
	pid_t pid;
	int ret, fd;

	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct memlink_list l;
		int keep;

		ret = new_ns();
		if (ret)
			_exit(ret);
		if (getuid() != 65534)
			_exit(202);
		r->attach_parent = ml_open_attach(self->name, 0);
		r->attach_parent_ro = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
		fd = ml_open();
		r->replace_parent = ml_create_flags(fd, self->dead, self->page, 0666,
						    MEMLINK_CREATE_REPLACE);
		close(fd);
		r->attach_only_parent = ml_open_attach(self->only, 0);
		fd = ml_open();
		ml_list(fd, &l, NULL, 0);
		r->list_total = l.total;
		close(fd);
		/* The parent's name is free here. */
		keep = ml_open();
		r->create_same_name = ml_create(keep, self->name, self->page, 0600);
		fd = ml_open();
		if (!ml_attach_flags(fd, self->name, 0, &size))
			r->size_seen = size;
		_exit(0);
	}
	ret = ml_reap(pid);
	if (ret == 250)
		SKIP(return, "no user or IPC namespaces here");
	ASSERT_EQ(0, ret);
	EXPECT_EQ(-ENOENT, r->attach_parent);
	EXPECT_EQ(-ENOENT, r->attach_parent_ro);
	EXPECT_EQ(-ENOENT, r->attach_only_parent);
	/* REPLACE found no such name in its namespace: it just created one. */
	EXPECT_EQ(0, r->replace_parent);
	EXPECT_EQ(0U, r->list_total);
	EXPECT_EQ(0, r->create_same_name);
	EXPECT_EQ((__u64)self->page, r->size_seen);

	/* The parent's regions are untouched. */
	fd = ml_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_attach_flags(fd, self->name, 0, &size));
	EXPECT_EQ((__u64)(3 * self->page), size);
	close(fd);
	ASSERT_EQ(0, ml_info(self->dead_held, &info));
	EXPECT_EQ(0U, info.creator_alive);
	EXPECT_EQ(-EPIPE, ml_open_attach(self->dead, 0));
}

/*
 * The parent cannot reach the child's names, nor list them; a descriptor
 * the child passes out keeps working (the memory is shared).
 */
TEST_F(ns, parent_sees_nothing_of_child)
{
	char cname[MEMLINK_NAME_MAX];
	struct ml_listing l;
	volatile __u32 *m;
	int sv[2], fd, ret;
	pid_t pid;
	char c;

	ml_name(cname, "ns-child");
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		volatile __u32 *cm;
		int cfd;

		close(sv[0]);
		ret = new_ns();
		if (ret) {
			/* A byte without a descriptor: the parent skips. */
			if (write(sv[1], "n", 1) != 1)
				_exit(208);
			_exit(ret);
		}
		cfd = ml_open_create(cname, self->page, 0666);
		if (cfd < 0)
			_exit(203);
		cm = ml_map(cfd, self->page, PROT_READ | PROT_WRITE, 0);
		if (cm == MAP_FAILED)
			_exit(204);
		cm[0] = 0x1234;
		if (send_fd(sv[1], cfd))
			_exit(205);
		/* Wait for the parent's word, then leave. */
		if (read(sv[1], &c, 1) != 1)
			_exit(206);
		_exit(cm[1] == 0xabcd ? 0 : 207);
	}
	close(sv[1]);
	fd = recv_fd(sv[0]);
	if (fd < 0) {
		ret = ml_reap(pid);
		if (ret == 250)
			SKIP(return, "no user or IPC namespaces here");
		ASSERT_LE(0, fd) TH_LOG("child exited %d", ret);
	}
	EXPECT_EQ(-ENOENT, ml_open_attach(cname, 0));
	ASSERT_EQ(0, ml_listing_read(&l, cname));
	EXPECT_EQ(0, l.found);

	/* The passed descriptor is the child's region. */
	m = ml_map(fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(0x1234U, m[0]);
	m[1] = 0xabcd;
	ASSERT_EQ(1, write(sv[0], "x", 1));
	EXPECT_EQ(0, ml_reap(pid));
	munmap((void *)m, self->page);
	close(fd);
	close(sv[0]);
}

/*
 * A namespace that is gone takes its names along: its region, still held
 * by the parent through a passed descriptor, is not found by a process of
 * a new namespace (the kernel may well put that namespace at the same
 * address and give it the same inode number).
 */
TEST_F(ns, dead_namespace_names_gone)
{
	char cname[MEMLINK_NAME_MAX];
	int sv[2], fd, ret, round;
	pid_t pid;

	ml_name(cname, "ns-gone");
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int cfd;

		ret = new_ns();
		if (ret)
			_exit(ret);
		cfd = ml_open_create(cname, self->page, 0666);
		if (cfd < 0 || send_fd(sv[1], cfd))
			_exit(203);
		_exit(0);
	}
	ret = ml_reap(pid);
	if (ret == 250)
		SKIP(return, "no user or IPC namespaces here");
	ASSERT_EQ(0, ret);
	fd = recv_fd(sv[0]);
	ASSERT_LE(0, fd);

	for (round = 0; round < 8; round++) {
		pid = ml_fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			ret = new_ns();
			if (ret)
				_exit(ret);
			ret = ml_open_attach(cname, MEMLINK_ATTACH_RDONLY);
			_exit(ret == -ENOENT ? 0 : ret < 0 ? -ret : 1);
		}
		EXPECT_EQ(0, ml_reap(pid)) TH_LOG("round %d", round);
	}
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

/*
 * unshare(CLONE_NEWIPC) of a process that holds a region: its descriptor
 * still works, its names do not follow it.
 */
TEST_F(ns, unshare_keeps_descriptors)
{
	pid_t pid = ml_fork();
	int ret;

	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct memlink_info info;

		ret = new_ns();
		if (ret)
			_exit(ret);
		if (ml_info(self->cfd, &info) || info.region_size != (__u64)(3 * self->page))
			_exit(203);
		if (ml_wake(self->cfd, 0, 1) < 0)
			_exit(204);
		_exit(ml_open_attach(self->name, 0) == -ENOENT ? 0 : 205);
	}
	ret = ml_reap(pid);
	if (ret == 250)
		SKIP(return, "no user or IPC namespaces here");
	EXPECT_EQ(0, ret);
}

TEST_HARNESS_MAIN

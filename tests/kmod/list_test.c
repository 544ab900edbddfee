// SPDX-License-Identifier: GPL-2.0
/*
 * MEMLINK_IOC_LIST shows a user only the regions it could attach read-only
 * (mode bits for it, as for attach; root, with CAP_IPC_OWNER, sees all), in
 * creation order; the module-wide counts only to CAP_SYS_ADMIN; the
 * caller's own user's counts to everyone. Entries may be larger than the
 * kernel's (zero tail) but not smaller than the first version; a short
 * array gets the first entries and the total. It replaces /proc/memlink,
 * which listed every region of the machine, 0600 ones of other users
 * included, to everyone.
 */
#include "memlink_test.h"

#include <stddef.h>

#define UID_A 1000
#define UID_B 1001
#define GID_G 2000

struct seen {
	int ret;
	__u32 count, total, user_regions;
	__u64 all_bytes, all_pages;
	__u32 all_regions;
	char names[8][MEMLINK_NAME_MAX];
};

FIXTURE(list) {
	long page;
	char n600[MEMLINK_NAME_MAX], n640[MEMLINK_NAME_MAX], n644[MEMLINK_NAME_MAX];
	char n000[MEMLINK_NAME_MAX], own[MEMLINK_NAME_MAX];
	int fds[4];
	pid_t owner;	/* A's process holding A's own 0600 region */
	struct seen *s;
};

/* Root's regions: 0600, 0640 (group G), 0644, 0000; A's own 0600. */
FIXTURE_SETUP(list)
{
	int p[2], i;

	self->page = ml_page_size();
	ml_name(self->n600, "list600");
	ml_name(self->n640, "list640");
	ml_name(self->n644, "list644");
	ml_name(self->n000, "list000");
	ml_name(self->own, "listown");
	self->fds[0] = ml_open_create(self->n600, self->page, 0600);
	self->fds[1] = ml_open();
	self->fds[2] = ml_open_create(self->n644, self->page, 0644);
	self->fds[3] = ml_open_create(self->n000, self->page, 0000);
	for (i = 0; i < 4; i++)
		ASSERT_LE(0, self->fds[i]);
	/* 0640 with group G: created by a root process whose egid is G. */
	ASSERT_EQ(0, setegid(GID_G));
	ASSERT_EQ(0, ml_create(self->fds[1], self->n640, self->page, 0640));
	ASSERT_EQ(0, setegid(0));

	ASSERT_EQ(0, pipe(p));
	self->owner = ml_fork();
	ASSERT_LE(0, self->owner);
	if (self->owner == 0) {
		if (ml_become(UID_A, UID_A) || ml_open_create(self->own, self->page, 0600) < 0)
			_exit(200);
		ml_signal(p[1]);
		for (;;)
			pause();
	}
	ASSERT_EQ(0, ml_await(p[0], 10000));
	close(p[0]);
	close(p[1]);
	self->s = ml_shared_anon(sizeof(*self->s));
	ASSERT_NE(NULL, self->s);
}

FIXTURE_TEARDOWN(list)
{
	int i;

	kill(self->owner, SIGKILL);
	ml_reap(self->owner);
	for (i = 0; i < 4; i++)
		close(self->fds[i]);
}

/* As uid with `group` as a supplementary group (or none): what LIST shows. */
static int list_as(struct seen *s, uid_t uid, gid_t group, const char *prefix)
{
	pid_t pid;

	/* Cleared before the fork: the child may write its answer first. */
	memset(s, 0, sizeof(*s));
	pid = ml_fork();

	if (pid == 0) {
		static struct memlink_info v[ML_LIST_MAX];
		struct memlink_list l;
		int fd, n = 0;
		__u32 i;

		if (uid && (setgroups(group ? 1 : 0, &group) || setgid(uid) || setuid(uid)))
			_exit(200);
		fd = ml_open();
		s->ret = ml_list(fd, &l, v, ML_LIST_MAX);
		s->count = l.count;
		s->total = l.total;
		s->user_regions = l.user_regions;
		s->all_bytes = l.all_bytes;
		s->all_pages = l.all_pages;
		s->all_regions = l.all_regions;
		for (i = 0; i < l.count && n < 8; i++)
			if (!strncmp(v[i].name, prefix, strlen(prefix)))
				memcpy(s->names[n++], v[i].name, MEMLINK_NAME_MAX);
		_exit(0);
	}
	return pid < 0 ? -1 : ml_reap(pid);
}

static bool has(const struct seen *s, const char *name)
{
	int i;

	for (i = 0; i < 8; i++)
		if (!strcmp(s->names[i], name))
			return true;
	return false;
}

TEST_F(list, user_sees_what_it_may_attach)
{
	struct seen *s = self->s;
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "kst.list");
	/* B, no group: the 0644 region only. */
	ASSERT_EQ(0, list_as(s, UID_B, 0, prefix));
	EXPECT_EQ(0, s->ret);
	EXPECT_TRUE(has(s, self->n644));
	EXPECT_FALSE(has(s, self->n600));
	EXPECT_FALSE(has(s, self->n640));
	EXPECT_FALSE(has(s, self->n000));
	EXPECT_FALSE(has(s, self->own));
	/* Not root: no module-wide counts. */
	EXPECT_EQ(0U, s->all_regions);
	EXPECT_EQ(0ULL, (unsigned long long)s->all_bytes);
	EXPECT_EQ(0ULL, (unsigned long long)s->all_pages);
	EXPECT_EQ(0U, s->user_regions);

	/* B in group G: the 0640 region too. */
	ASSERT_EQ(0, list_as(s, UID_B, GID_G, prefix));
	EXPECT_TRUE(has(s, self->n644));
	EXPECT_TRUE(has(s, self->n640));
	EXPECT_FALSE(has(s, self->n600));
	EXPECT_FALSE(has(s, self->own));

	/* A: its own 0600 region, and 0644; its count of regions is 1. */
	ASSERT_EQ(0, list_as(s, UID_A, 0, prefix));
	EXPECT_TRUE(has(s, self->own));
	EXPECT_TRUE(has(s, self->n644));
	EXPECT_FALSE(has(s, self->n600));
	EXPECT_FALSE(has(s, self->n000));
	EXPECT_EQ(1U, s->user_regions);

	/* Root: everything, in creation order, and the module's counts. */
	ASSERT_EQ(0, list_as(s, 0, 0, prefix));
	EXPECT_STREQ(self->n600, s->names[0]);
	EXPECT_STREQ(self->n644, s->names[1]);
	EXPECT_STREQ(self->n000, s->names[2]);
	EXPECT_STREQ(self->n640, s->names[3]);
	EXPECT_STREQ(self->own, s->names[4]);
	EXPECT_LE(5U, s->all_regions);
	EXPECT_LE((__u64)(5 * self->page), s->all_bytes);
	EXPECT_LE((__u64)5, s->all_pages);
}

/* The listing agrees with attach: every name B lists, B can attach. */
TEST_F(list, listed_means_attachable)
{
	pid_t pid = ml_fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		static struct memlink_info v[ML_LIST_MAX];
		struct memlink_list l;
		int fd;
		__u32 i;

		if (ml_become(UID_B, UID_B))
			_exit(200);
		fd = ml_open();
		if (ml_list(fd, &l, v, ML_LIST_MAX))
			_exit(201);
		for (i = 0; i < l.count; i++) {
			int a = ml_open_attach(v[i].name, MEMLINK_ATTACH_RDONLY);

			/* A region whose creator just died is listed, EPIPE. */
			if (a < 0 && a != -EPIPE)
				_exit(202);
			if (a >= 0)
				close(a);
		}
		_exit(0);
	}
	EXPECT_EQ(0, ml_reap(pid));
}

/* Entry sizes, room, and the struct's own rules. */
TEST_F(list, entries_and_room)
{
	static struct memlink_info v[ML_LIST_MAX];
	const size_t first = offsetof(struct memlink_info, name) + MEMLINK_NAME_MAX;
	unsigned char *big;
	struct memlink_list l, l2;
	size_t es = sizeof(struct memlink_info) + 24;
	__u32 i;
	int fd;

	fd = ml_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_list(fd, &l, NULL, 0));
	ASSERT_LE(5U, l.total);
	EXPECT_EQ(0U, l.count);

	/* Room for 2: the first 2, and the total. */
	ASSERT_EQ(0, ml_list(fd, &l2, v, 2));
	EXPECT_EQ(2U, l2.count);
	EXPECT_EQ(l.total, l2.total);

	/* Larger entries: the known part, then zeroes, at the caller's stride. */
	big = calloc(l.total + 4, es);
	ASSERT_NE(NULL, big);
	memset(big, 0xee, (l.total + 4) * es);
	memset(&l2, 0, sizeof(l2));
	l2.size = sizeof(l2);
	l2.entries = (__u64)(uintptr_t)big;
	l2.entry_size = es;
	l2.max_entries = l.total + 4;
	ASSERT_EQ(0, ml_ioctl(fd, MEMLINK_IOC_LIST, &l2));
	EXPECT_EQ(l.total, l2.count);
	for (i = 0; i < l2.count; i++) {
		struct memlink_info *e = (void *)(big + i * es);
		size_t b;

		EXPECT_EQ(sizeof(*e), e->size);
		EXPECT_EQ(0U, e->flags);
		EXPECT_EQ(0U, e->region_size % self->page);
		for (b = sizeof(*e); b < es; b++)
			EXPECT_EQ(0, big[i * es + b]);
	}
	/* Past the entries written: untouched. */
	EXPECT_EQ(0xee, big[l2.count * es]);
	free(big);

	/* An entry smaller than the first version, or over a page: EINVAL. */
	memset(&l2, 0, sizeof(l2));
	l2.size = sizeof(l2);
	l2.entries = (__u64)(uintptr_t)v;
	l2.max_entries = 1;
	l2.entry_size = first - 1;
	EXPECT_EQ(-EINVAL, ml_ioctl(fd, MEMLINK_IOC_LIST, &l2));
	l2.entry_size = self->page + 1;
	EXPECT_EQ(-EINVAL, ml_ioctl(fd, MEMLINK_IOC_LIST, &l2));
	/* The first version's entry size works. */
	l2.entry_size = first;
	EXPECT_EQ(0, ml_ioctl(fd, MEMLINK_IOC_LIST, &l2));
	EXPECT_EQ(1U, l2.count);
	/* No room asked: no pointer needed. */
	l2.entries = 0;
	l2.max_entries = 0;
	EXPECT_EQ(0, ml_ioctl(fd, MEMLINK_IOC_LIST, &l2));
	/* Entries at a bad address: EFAULT. */
	l2.entries = 16;
	l2.max_entries = 4;
	l2.entry_size = sizeof(v[0]);
	EXPECT_EQ(-EFAULT, ml_ioctl(fd, MEMLINK_IOC_LIST, &l2));
	/* The out fields of a previous answer are ignored on input. */
	ASSERT_EQ(0, ml_list(fd, &l2, v, 2));
	EXPECT_EQ(0, ml_ioctl(fd, MEMLINK_IOC_LIST, &l2));
	close(fd);
}

/* memlink-stat --regions prints the listing (the VM has it in /bin). */
TEST_F(list, memlink_stat_regions)
{
	char line[512];
	int found = 0, lines = 0;
	FILE *f;

	if (access("/bin/memlink-stat", X_OK))
		SKIP(return, "no /bin/memlink-stat here");
	f = popen("/bin/memlink-stat --regions", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		lines++;
		if (!strncmp(line, self->n600, strlen(self->n600)) &&
		    line[strlen(self->n600)] == ' ')
			found += strstr(line, " 0600 ") && strstr(line, " alive") ? 1 : 100;
	}
	EXPECT_EQ(0, pclose(f));
	EXPECT_EQ(1, found);
	EXPECT_LE(7, lines);
}

TEST_HARNESS_MAIN

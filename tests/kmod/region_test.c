// SPDX-License-Identifier: GPL-2.0
/*
 * Regions: create, attach by name and mmap from separate processes, which
 * see each other's writes; INFO; zeroed pages; lifetime of a name.
 */
#include "memlink_test.h"

FIXTURE(region) {
	long page;
	char name[MEMLINK_NAME_MAX];
};

FIXTURE_SETUP(region)
{
	self->page = ml_page_size();
	ml_name(self->name, "region");
}

FIXTURE_TEARDOWN(region)
{
}

static __u32 pattern(unsigned int who, size_t i)
{
	return (who << 24) ^ (__u32)(i * 2654435761U);
}

/*
 * Two unrelated processes: the child forks before the region exists, so
 * it shares neither file nor mapping; it attaches by name, maps, checks
 * the creator's data in every page and writes its own, which the creator
 * then sees in its mapping.
 */
TEST_F(region, two_processes_share_memory)
{
	const size_t npages = 4, len = npages * self->page, words = len / 4;
	int to_child[2], to_parent[2];
	volatile __u32 *map;
	pid_t pid;
	size_t i;
	int fd;

	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		volatile __u32 *m;
		uint64_t size = 0;
		int cfd;

		if (ml_await(to_child[0], 10000))
			_exit(10);
		cfd = ml_open();
		if (cfd < 0 || ml_attach_flags(cfd, self->name, 0, &size))
			_exit(11);
		if (size != len)
			_exit(12);
		m = ml_map(cfd, len, PROT_READ | PROT_WRITE, 0);
		if (m == MAP_FAILED)
			_exit(13);
		for (i = 0; i < words; i++)
			if (m[i] != pattern(1, i))
				_exit(14);
		for (i = 0; i < words; i++)
			m[i] = pattern(2, i);
		ml_signal(to_parent[1]);
		/* Then see the creator's second round. */
		if (ml_await(to_child[0], 10000))
			_exit(15);
		for (i = 0; i < words; i++)
			if (m[i] != pattern(3, i))
				_exit(16);
		_exit(0);
	}

	fd = ml_open_create(self->name, len, 0600);
	ASSERT_LE(0, fd);
	map = ml_map(fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, map);
	for (i = 0; i < words; i++)
		map[i] = pattern(1, i);
	ASSERT_EQ(0, ml_signal(to_child[1]));
	ASSERT_EQ(0, ml_await(to_parent[0], 10000));
	for (i = 0; i < words; i++)
		if (map[i] != pattern(2, i))
			break;
	EXPECT_EQ(words, i) TH_LOG("creator sees the child's write at word %zu", i);
	for (i = 0; i < words; i++)
		map[i] = pattern(3, i);
	ASSERT_EQ(0, ml_signal(to_child[1]));
	EXPECT_EQ(0, ml_reap(pid));
	munmap((void *)map, len);
	close(fd);
}

/* A forked child shares the creator's file and mapping, like any file. */
TEST_F(region, fork_inherits_file_and_mapping)
{
	struct memlink_info info;
	volatile __u32 *map;
	pid_t pid;
	int fd;

	fd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, fd);
	map = ml_map(fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, map);
	map[5] = 0xabcd;
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct memlink_info ci;

		if (map[5] != 0xabcd)
			_exit(10);
		map[6] = 0x1234;
		if (ml_info(fd, &ci) || ci.attached != 1)
			_exit(11);
		_exit(0);
	}
	EXPECT_EQ(0, ml_reap(pid));
	EXPECT_EQ(0x1234U, map[6]);
	/* The inherited file is the same file: no attach, no detach. */
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(0ULL, (unsigned long long)info.detached);
	EXPECT_EQ(1U, info.creator_alive);
	munmap((void *)map, self->page);
	close(fd);
}

/* INFO on the creator and on clients, as files come and go. */
TEST_F(region, info_fields)
{
	struct memlink_info info, ainfo;
	uint64_t size = 0;
	int cfd, a1, a2;

	cfd = ml_open_create(self->name, 3 * self->page, 0640);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, ml_info(cfd, &info));
	EXPECT_EQ(sizeof(info), info.size);
	EXPECT_EQ(0U, info.flags);
	EXPECT_EQ((__u64)(3 * self->page), info.region_size);
	EXPECT_EQ((__u32)geteuid(), info.uid);
	EXPECT_EQ((__u32)getegid(), info.gid);
	EXPECT_EQ(0640U, info.mode);
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(0U, info.waiters);
	EXPECT_EQ(1U, info.creator_alive);
	EXPECT_EQ(0ULL, (unsigned long long)info.wakes);
	EXPECT_EQ(0ULL, (unsigned long long)info.detached);
	EXPECT_STREQ(self->name, info.name);

	a1 = ml_open();
	ASSERT_LE(0, a1);
	ASSERT_EQ(0, ml_attach_flags(a1, self->name, 0, &size));
	EXPECT_EQ((__u64)(3 * self->page), size);
	a2 = ml_open();
	ASSERT_LE(0, a2);
	ASSERT_EQ(0, ml_attach_flags(a2, self->name, MEMLINK_ATTACH_RDONLY, &size));
	EXPECT_EQ((__u64)(3 * self->page), size);

	ASSERT_EQ(0, ml_info(cfd, &info));
	EXPECT_EQ(3U, info.attached);
	ASSERT_EQ(0, ml_info(a2, &ainfo));
	/* Every file of the region sees the same region. */
	EXPECT_EQ(3U, ainfo.attached);
	EXPECT_STREQ(self->name, ainfo.name);
	EXPECT_EQ(0640U, ainfo.mode);
	EXPECT_EQ(1U, ainfo.creator_alive);

	EXPECT_EQ(0, ml_wake(a1, 0, 1));
	EXPECT_EQ(0, ml_wake(cfd, 8, 1));
	close(a1);
	ASSERT_EQ(0, ml_info(cfd, &info));
	EXPECT_EQ(2U, info.attached);
	EXPECT_EQ(1ULL, (unsigned long long)info.detached);
	EXPECT_EQ(2ULL, (unsigned long long)info.wakes);
	close(a2);
	ASSERT_EQ(0, ml_info(cfd, &info));
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(2ULL, (unsigned long long)info.detached);
	close(cfd);
}

/*
 * Every byte of a new region is zero, also when it reuses freed pages.
 * Note: a kernel with init_on_alloc=1 (Debian's default) zeroes every page
 * itself, which hides a missing __GFP_ZERO; boot with init_on_alloc=0 for
 * this test to have teeth.
 */
TEST_F(region, pages_zeroed)
{
	const size_t len = 256 * self->page;	/* 1 MiB */
	int round;

	for (round = 0; round < 4; round++) {
		char name[MEMLINK_NAME_MAX];
		unsigned char *m, *am;
		size_t i, bad = 0;
		int fd, afd;

		ml_name(name, "zero");
		fd = ml_open_create(name, len, 0600);
		ASSERT_LE(0, fd);
		m = ml_map(fd, len, PROT_READ | PROT_WRITE, 0);
		ASSERT_NE(MAP_FAILED, m);
		for (i = 0; i < len; i++)
			bad += m[i] != 0;
		EXPECT_EQ(0U, bad) TH_LOG("round %d: %zu non-zero bytes", round, bad);

		/* A client's view of an untouched second mapping is zero too. */
		afd = ml_open_attach(name, MEMLINK_ATTACH_RDONLY);
		ASSERT_LE(0, afd);
		am = ml_map(afd, len, PROT_READ, 0);
		ASSERT_NE(MAP_FAILED, am);
		for (i = 0, bad = 0; i < len; i++)
			bad += am[i] != 0;
		EXPECT_EQ(0U, bad);

		/* Dirty everything so the next round's pages may be these. */
		memset(m, 0xa5, len);
		EXPECT_EQ(0xa5, am[len - 1]);
		munmap(am, len);
		munmap(m, len);
		close(afd);
		close(fd);
	}
}

/* A mapping at an offset sees the right page. */
TEST_F(region, map_at_offset)
{
	volatile __u32 *all, *second;
	int fd, afd;

	fd = ml_open_create(self->name, 4 * self->page, 0600);
	ASSERT_LE(0, fd);
	all = ml_map(fd, 4 * self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, all);
	afd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, afd);
	second = ml_map(afd, 2 * self->page, PROT_READ | PROT_WRITE, 2 * self->page);
	ASSERT_NE(MAP_FAILED, second);
	all[2 * self->page / 4] = 0x11111111;
	all[3 * self->page / 4 + 1] = 0x22222222;
	EXPECT_EQ(0x11111111U, second[0]);
	EXPECT_EQ(0x22222222U, second[self->page / 4 + 1]);
	second[7] = 0x33333333;
	EXPECT_EQ(0x33333333U, all[2 * self->page / 4 + 7]);
	munmap((void *)second, 2 * self->page);
	munmap((void *)all, 4 * self->page);
	close(afd);
	close(fd);
}

/* Two regions are two memories. */
TEST_F(region, regions_are_separate)
{
	char other[MEMLINK_NAME_MAX];
	volatile __u32 *a, *b;
	int fa, fb;

	ml_name(other, "region-b");
	fa = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, fa);
	fb = ml_open_create(other, self->page, 0600);
	ASSERT_LE(0, fb);
	a = ml_map(fa, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, a);
	b = ml_map(fb, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, b);
	a[0] = 1;
	b[0] = 2;
	EXPECT_EQ(1U, a[0]);
	EXPECT_EQ(2U, b[0]);
	munmap((void *)a, self->page);
	munmap((void *)b, self->page);
	close(fa);
	close(fb);
}

/*
 * A region lives while any file refers to it; when the last is closed the
 * name is free again (attach: ENOENT, create: works, fresh zero pages).
 */
TEST_F(region, lifetime)
{
	volatile __u32 *m;
	int cfd, afd;

	cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cfd);
	afd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, afd);
	m = ml_map(afd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, m);
	m[0] = 42;
	close(cfd);
	/* The client's file and mapping keep the memory. */
	EXPECT_EQ(42U, m[0]);
	close(afd);
	EXPECT_EQ(42U, m[0]);
	munmap((void *)m, self->page);

	afd = ml_open();
	ASSERT_LE(0, afd);
	EXPECT_EQ(-ENOENT, ml_attach(afd, self->name));
	cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cfd);
	m = ml_map(cfd, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(0U, m[0]);
	munmap((void *)m, self->page);
	close(cfd);
	close(afd);
}

/* Names: 63 characters, every allowed character, case matters. */
TEST_F(region, names)
{
	char longest[MEMLINK_NAME_MAX], upper[MEMLINK_NAME_MAX];
	struct memlink_info info;
	int fd, fd2, afd;
	size_t i;

	memset(longest, 0, sizeof(longest));
	snprintf(longest, sizeof(longest), "kst.long-%d-", (int)getpid());
	for (i = strlen(longest); i < MEMLINK_NAME_MAX - 1; i++)
		longest[i] = 'x';
	fd = ml_open_create(longest, self->page, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_info(fd, &info));
	EXPECT_STREQ(longest, info.name);
	afd = ml_open_attach(longest, 0);
	ASSERT_LE(0, afd);
	close(afd);
	close(fd);

	snprintf(upper, sizeof(upper), "AZaz09._-%d", (int)getpid());
	fd = ml_open_create(upper, self->page, 0600);
	ASSERT_LE(0, fd);
	/* The same letters in the other case are another name. */
	for (i = 0; upper[i]; i++)
		if (upper[i] >= 'a' && upper[i] <= 'z')
			upper[i] -= 'a' - 'A';
		else if (upper[i] >= 'A' && upper[i] <= 'Z')
			upper[i] += 'a' - 'A';
	fd2 = ml_open_create(upper, self->page, 0600);
	EXPECT_LE(0, fd2);
	close(fd2);
	close(fd);
}

/* A read-only client maps read-only and sees the creator's writes. */
TEST_F(region, rdonly_client_sees_writes)
{
	volatile __u32 *w, *r;
	int cfd, afd;

	cfd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, cfd);
	w = ml_map(cfd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	afd = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, afd);
	r = ml_map(afd, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, r);
	w[100] = 0xfeedface;
	EXPECT_EQ(0xfeedfaceU, r[100]);
	munmap((void *)r, self->page);
	munmap((void *)w, self->page);
	close(afd);
	close(cfd);
}

TEST_HARNESS_MAIN

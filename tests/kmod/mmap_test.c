// SPDX-License-Identifier: GPL-2.0
/*
 * mmap() of a region: MAP_SHARED only (EINVAL otherwise), never past the
 * end (EINVAL), never executable (EPERM, and mprotect cannot add it later),
 * and a read-only attach can neither map writable (EACCES) nor WAKE.
 */
#include "memlink_test.h"

#define NPAGES 4

FIXTURE(mmap) {
	long page;
	size_t len;
	char name[MEMLINK_NAME_MAX];
	int cfd;
};

FIXTURE_SETUP(mmap)
{
	self->page = ml_page_size();
	self->len = NPAGES * self->page;
	ml_name(self->name, "mmap");
	self->cfd = ml_open_create(self->name, self->len, 0644);
	ASSERT_LE(0, self->cfd);
}

FIXTURE_TEARDOWN(mmap)
{
	close(self->cfd);
}

#define EXPECT_MMAP_ERRNO(_err, _len, _prot, _flags, _fd, _off)		\
	do {								\
		void *__m = mmap(NULL, _len, _prot, _flags, _fd, _off);	\
		EXPECT_EQ(MAP_FAILED, __m);				\
		EXPECT_EQ(_err, errno);					\
		if (__m != MAP_FAILED)					\
			munmap(__m, _len);				\
	} while (0)

TEST_F(mmap, past_end_refused)
{
	const int rw = PROT_READ | PROT_WRITE;
	long pg = self->page;
	void *m;

	EXPECT_MMAP_ERRNO(EINVAL, self->len + pg, rw, MAP_SHARED, self->cfd, 0);
	EXPECT_MMAP_ERRNO(EINVAL, self->len + 1, rw, MAP_SHARED, self->cfd, 0);
	EXPECT_MMAP_ERRNO(EINVAL, pg, rw, MAP_SHARED, self->cfd, self->len);
	EXPECT_MMAP_ERRNO(EINVAL, 2 * pg, rw, MAP_SHARED, self->cfd, self->len - pg);
	EXPECT_MMAP_ERRNO(EINVAL, pg, rw, MAP_SHARED, self->cfd, (off_t)pg << 30);
	EXPECT_MMAP_ERRNO(EINVAL, pg, PROT_READ, MAP_SHARED, self->cfd, self->len + 8 * pg);

	/* Exactly up to the end is fine. */
	m = mmap(NULL, pg, rw, MAP_SHARED, self->cfd, self->len - pg);
	ASSERT_NE(MAP_FAILED, m);
	munmap(m, pg);
	m = mmap(NULL, self->len, rw, MAP_SHARED, self->cfd, 0);
	ASSERT_NE(MAP_FAILED, m);

	/* Nor can a mapping grow past the end later. */
	EXPECT_EQ(MAP_FAILED, mremap(m, self->len, self->len + pg, MREMAP_MAYMOVE));
	munmap(m, self->len);
	m = mmap(NULL, pg, rw, MAP_SHARED, self->cfd, self->len - pg);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(MAP_FAILED, mremap(m, pg, 2 * pg, MREMAP_MAYMOVE));
	munmap(m, pg);
}

TEST_F(mmap, map_private_refused)
{
	int afd;

	EXPECT_MMAP_ERRNO(EINVAL, self->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->cfd, 0);
	EXPECT_MMAP_ERRNO(EINVAL, self->page, PROT_READ, MAP_PRIVATE, self->cfd, 0);
	afd = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, afd);
	EXPECT_MMAP_ERRNO(EINVAL, self->page, PROT_READ, MAP_PRIVATE, afd, 0);
	close(afd);
}

TEST_F(mmap, map_shared_validate_works)
{
	volatile __u32 *m = mmap(NULL, self->page, PROT_READ | PROT_WRITE,
				 MAP_SHARED_VALIDATE, self->cfd, 0);

	ASSERT_NE(MAP_FAILED, m);
	m[0] = 1;
	EXPECT_EQ(1U, m[0]);
	munmap((void *)m, self->page);
}

TEST_F(mmap, prot_exec_refused)
{
	EXPECT_MMAP_ERRNO(EPERM, self->page, PROT_READ | PROT_EXEC, MAP_SHARED, self->cfd, 0);
	EXPECT_MMAP_ERRNO(EPERM, self->page, PROT_EXEC, MAP_SHARED, self->cfd, 0);
	EXPECT_MMAP_ERRNO(EPERM, self->len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED,
			  self->cfd, 0);
}

TEST_F(mmap, mprotect_exec_refused)
{
	volatile __u32 *m = ml_map(self->cfd, self->len, PROT_READ | PROT_WRITE, 0);

	ASSERT_NE(MAP_FAILED, m);
	EXPECT_ERRNO(EACCES, mprotect((void *)m, self->len, PROT_READ | PROT_EXEC));
	EXPECT_ERRNO(EACCES, mprotect((void *)m, self->page, PROT_READ | PROT_WRITE | PROT_EXEC));
	EXPECT_ERRNO(EACCES, mprotect((void *)m, self->page, PROT_EXEC));
	/* Dropping and restoring write is fine; the mapping still works. */
	EXPECT_EQ(0, mprotect((void *)m, self->len, PROT_READ));
	EXPECT_EQ(0, mprotect((void *)m, self->len, PROT_READ | PROT_WRITE));
	m[3] = 3;
	EXPECT_EQ(3U, m[3]);
	munmap((void *)m, self->len);
}

/* A read-only attach: no writable mapping, now or later, and no WAKE. */
TEST_F(mmap, rdonly_attach)
{
	struct memlink_info info;
	volatile __u32 *m, *w;
	pid_t waiter;
	int afd;

	afd = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, afd);
	EXPECT_MMAP_ERRNO(EACCES, self->page, PROT_READ | PROT_WRITE, MAP_SHARED, afd, 0);
	EXPECT_MMAP_ERRNO(EACCES, self->page, PROT_WRITE, MAP_SHARED, afd, 0);

	m = ml_map(afd, self->len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_ERRNO(EACCES, mprotect((void *)m, self->len, PROT_READ | PROT_WRITE));
	EXPECT_ERRNO(EACCES, mprotect((void *)m, self->len, PROT_READ | PROT_EXEC));

	w = ml_map(self->cfd, self->len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	w[0] = 77;
	EXPECT_EQ(77U, m[0]);

	/* WAKE: EACCES, nobody woken, not counted. */
	waiter = ml_spawn_waiter(self->name, 0, 77, 0, 10 * ML_NSEC_PER_SEC);
	ASSERT_LT(0, waiter);
	ASSERT_EQ(0, ml_wait_waiters(self->cfd, 1, 10000));
	EXPECT_EQ(-EACCES, ml_wake(afd, 0, 1));
	EXPECT_EQ(-EACCES, ml_wake(afd, 0, UINT32_MAX));
	ASSERT_EQ(0, ml_info(afd, &info));
	EXPECT_EQ(1U, info.waiters);
	EXPECT_EQ(0ULL, (unsigned long long)info.wakes);
	/* Bad arguments are still EINVAL first. */
	EXPECT_EQ(-EINVAL, ml_wake(afd, 1, 1));
	/* WAIT is allowed. */
	EXPECT_EQ(-EAGAIN, ml_wait(afd, 0, 0, 0));
	EXPECT_EQ(1, ml_wake(self->cfd, 0, 1));
	EXPECT_EQ(0, ml_reap(waiter));

	munmap((void *)w, self->len);
	munmap((void *)m, self->len);
	close(afd);
}

/*
 * A file opened O_RDONLY (the natural way for a reader) and attached
 * read-only: MAP_SHARED with PROT_READ is a shared mapping and must work.
 */
TEST_F(mmap, o_rdonly_file_maps_shared_read)
{
	volatile __u32 *w, *m;
	int fd;

	w = ml_map(self->cfd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	w[1] = 0xbeef;

	fd = open(ML_DEV, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ml_attach_flags(fd, self->name, MEMLINK_ATTACH_RDONLY, NULL));
	m = mmap(NULL, self->page, PROT_READ, MAP_SHARED, fd, 0);
	EXPECT_NE(MAP_FAILED, m) TH_LOG("mmap(PROT_READ, MAP_SHARED) of an O_RDONLY file: %s",
					strerror(errno));
	if (m != MAP_FAILED) {
		EXPECT_EQ(0xbeefU, m[1]);
		w[2] = 5;
		EXPECT_EQ(5U, m[2]);
		munmap((void *)m, self->page);
	}
	/* Writable needs a writable file, whatever the attach. */
	EXPECT_MMAP_ERRNO(EACCES, self->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	munmap((void *)w, self->page);
}

TEST_F(mmap, unbound_file_refused)
{
	int fd = ml_open();

	ASSERT_LE(0, fd);
	EXPECT_MMAP_ERRNO(EINVAL, self->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT_MMAP_ERRNO(EINVAL, self->page, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
}

/* Dropping the page tables loses nothing: the pages belong to the region. */
TEST_F(mmap, madv_dontneed_keeps_data)
{
	volatile __u32 *m = ml_map(self->cfd, self->len, PROT_READ | PROT_WRITE, 0);
	size_t i, words = self->len / 4, bad = 0;

	ASSERT_NE(MAP_FAILED, m);
	for (i = 0; i < words; i++)
		m[i] = i ^ 0x5a5a5a5a;
	ASSERT_EQ(0, madvise((void *)m, self->len, MADV_DONTNEED));
	for (i = 0; i < words; i++)
		bad += m[i] != (i ^ 0x5a5a5a5a);
	EXPECT_EQ(0U, bad);
	munmap((void *)m, self->len);
}

/* A mapping outlives its file's descriptor (and keeps the region). */
TEST_F(mmap, mapping_outlives_close)
{
	volatile __u32 *m;
	int afd;

	afd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, afd);
	m = ml_map(afd, self->len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, m);
	close(afd);
	close(self->cfd);
	self->cfd = ml_open();	/* for the teardown */
	m[self->len / 4 - 1] = 9;
	EXPECT_EQ(9U, m[self->len / 4 - 1]);
	munmap((void *)m, self->len);
	EXPECT_EQ(-ENOENT, ml_attach(self->cfd, self->name));
}

TEST_HARNESS_MAIN

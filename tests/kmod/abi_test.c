// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl ABI contract, iommufd-selftest style: for every ioctl, the
 * struct size rules (EINVAL below the first version, E2BIG for a non-zero
 * tail or more than a page, a larger zeroed struct works, the number's
 * encoded size must be the struct's), undefined flags and reserved fields
 * (EINVAL), bad pointers (EFAULT) and unknown ioctl numbers, types and
 * directions (ENOTTY), including ABI version 1's numbers of type 0xB8.
 */
#include "memlink_test.h"

#include <stddef.h>

#define MAX_FRESH 64

FIXTURE(abi) {
	long page;
	int fd;			/* unbound */
	int cfd;		/* creator of `name` */
	char name[MEMLINK_NAME_MAX];
	char *buf;		/* two pages */
	char *guard;		/* a page followed by an unmapped page */
	char *ro;		/* a read-only page */
	void *unmapped;		/* an address with nothing mapped */
	int fresh[MAX_FRESH];	/* fds opened by sized() */
	int nfresh;
};

FIXTURE_SETUP(abi)
{
	char *p;

	self->page = ml_page_size();
	self->fd = ml_open();
	ASSERT_LE(0, self->fd);
	ml_name(self->name, "abi");
	self->cfd = ml_open_create(self->name, 2 * self->page, 0600);
	ASSERT_LE(0, self->cfd);

	self->buf = mmap(NULL, 2 * self->page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);

	self->ro = mmap(NULL, self->page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->ro);

	/* Last: no later mapping may land in the holes. */
	p = mmap(NULL, 3 * self->page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p + self->page, self->page));
	ASSERT_EQ(0, munmap(p + 2 * self->page, self->page));
	self->guard = p;
	self->unmapped = p + 2 * self->page;

}

FIXTURE_TEARDOWN(abi)
{
	int i;

	for (i = 0; i < self->nfresh; i++)
		close(self->fresh[i]);
	if (self->cfd >= 0)
		close(self->cfd);
	if (self->fd >= 0)
		close(self->fd);
}

/* How a sized() call gets its file. */
enum target {
	T_UNBOUND,	/* the fixture's unbound file */
	T_BOUND,	/* the creator's file */
	T_FRESH,	/* a new unbound file per call (create, attach) */
};

/*
 * Issue `cmd` with struct `s` (ksize bytes) declaring `usize` bytes; the
 * bytes past ksize are zero except the one at offset `nz` (when >= 0). For
 * CREATE with T_FRESH, every call gets a new region name.
 */
static int sized(FIXTURE_DATA(abi) *self, enum target t, unsigned long cmd,
		 const void *s, size_t ksize, uint32_t usize, long nz)
{
	int fd = t == T_BOUND ? self->cfd : self->fd;

	memset(self->buf, 0, 2 * self->page);
	memcpy(self->buf, s, ksize);
	memcpy(self->buf, &usize, sizeof(usize));
	if (nz >= 0)
		self->buf[nz] = 0x5a;
	if (t == T_FRESH) {
		if (self->nfresh == MAX_FRESH)
			return -EMFILE;
		fd = ml_open();
		if (fd < 0)
			return -EMFILE;
		self->fresh[self->nfresh++] = fd;
		if (cmd == MEMLINK_IOC_CREATE)
			ml_name(self->buf + offsetof(struct memlink_create, name), "abi-sz");
	}
	/* The number encodes the declared size, as a caller's header would. */
	if (usize <= _IOC_SIZEMASK)
		cmd = MEMLINK_IOC(_IOC_NR(cmd), usize);
	return ml_ioctl(fd, cmd, self->buf);
}

/*
 * The size rules for one ioctl whose first version is _min bytes; `ok` is
 * what an accepted struct gives (0, or -EAGAIN for a wait whose word
 * differs).
 */
#define CHECK_SIZES_MIN(_t, _cmd, _s, _ok, _min)			\
	do {								\
		size_t ks = sizeof(_s), mn = (_min);			\
		long pg = self->page;					\
		/* Below the first version: EINVAL. */			\
		EXPECT_EQ(-EINVAL, sized(self, _t, _cmd, &_s, ks, 0, -1)); \
		EXPECT_EQ(-EINVAL, sized(self, _t, _cmd, &_s, ks, 4, -1)); \
		EXPECT_EQ(-EINVAL, sized(self, _t, _cmd, &_s, ks, 8, -1)); \
		EXPECT_EQ(-EINVAL, sized(self, _t, _cmd, &_s, ks, mn - 8, -1)); \
		EXPECT_EQ(-EINVAL, sized(self, _t, _cmd, &_s, ks, mn - 1, -1)); \
		/* The first version, the current size, larger with a zero tail. */ \
		EXPECT_EQ(_ok, sized(self, _t, _cmd, &_s, ks, mn, -1)); \
		EXPECT_EQ(_ok, sized(self, _t, _cmd, &_s, ks, ks, -1)); \
		EXPECT_EQ(_ok, sized(self, _t, _cmd, &_s, ks, ks + 1, -1)); \
		EXPECT_EQ(_ok, sized(self, _t, _cmd, &_s, ks, ks + 8, -1)); \
		EXPECT_EQ(_ok, sized(self, _t, _cmd, &_s, ks, pg, -1)); \
		/* A non-zero byte past the struct: E2BIG. */		\
		EXPECT_EQ(-E2BIG, sized(self, _t, _cmd, &_s, ks, ks + 1, ks)); \
		EXPECT_EQ(-E2BIG, sized(self, _t, _cmd, &_s, ks, ks + 8, ks + 7)); \
		EXPECT_EQ(-E2BIG, sized(self, _t, _cmd, &_s, ks, pg, pg - 1)); \
		/* A non-zero byte beyond the declared size is not read. */ \
		EXPECT_EQ(_ok, sized(self, _t, _cmd, &_s, ks, ks + 8, ks + 8)); \
		/* More than a page: E2BIG even when zero. */		\
		EXPECT_EQ(-E2BIG, sized(self, _t, _cmd, &_s, ks, pg + 1, -1)); \
		EXPECT_EQ(-E2BIG, sized(self, _t, _cmd, &_s, ks, 2 * pg, -1)); \
		EXPECT_EQ(-E2BIG, sized(self, _t, _cmd, &_s, ks, UINT32_MAX, -1)); \
	} while (0)

#define CHECK_SIZES(_t, _cmd, _s, _ok) CHECK_SIZES_MIN(_t, _cmd, _s, _ok, sizeof(_s))

TEST_F(abi, size_handshake)
{
	struct memlink_handshake s = { 0 };
	struct memlink_handshake *out = (void *)self->buf;

	/* Version 1 ended at __reserved: callers built against it still work. */
	const size_t v1 = offsetof(struct memlink_handshake, __reserved) + 4;

	CHECK_SIZES_MIN(T_UNBOUND, MEMLINK_IOC_HANDSHAKE, s, 0, v1);
	CHECK_SIZES_MIN(T_BOUND, MEMLINK_IOC_HANDSHAKE, s, 0, v1);
	/* A version-1 caller gets the version-1 fields, nothing past them. */
	ASSERT_EQ(0, sized(self, T_UNBOUND, MEMLINK_IOC_HANDSHAKE, &s, sizeof(s), v1, -1));
	EXPECT_EQ((__u32)MEMLINK_ABI_VERSION, out->abi_version);
	for (size_t i = v1; i < sizeof(s); i++)
		EXPECT_EQ(0, self->buf[i]);

	/* A larger struct gets the known fields; its tail stays zero. */
	ASSERT_EQ(0, sized(self, T_UNBOUND, MEMLINK_IOC_HANDSHAKE, &s, sizeof(s),
			   sizeof(s) + 16, -1));
	EXPECT_EQ((__u32)MEMLINK_ABI_VERSION, out->abi_version);
	EXPECT_EQ((unsigned long)self->page, (unsigned long)out->page_size);
	EXPECT_EQ(sizeof(s) + 16, out->size);
	for (size_t i = sizeof(s); i < sizeof(s) + 16; i++)
		EXPECT_EQ(0, self->buf[i]);
}

TEST_F(abi, size_create)
{
	struct memlink_create s = { .region_size = self->page, .mode = 0600 };
	struct memlink_info info;
	int i, bound = 0;

	/* Version 1 ended at name; version 2 added bell_offset. */
	CHECK_SIZES_MIN(T_FRESH, MEMLINK_IOC_CREATE, s, 0,
			offsetof(struct memlink_create, name) + MEMLINK_NAME_MAX);
	/* The 6 accepted calls created and bound; the others did not. */
	for (i = 0; i < self->nfresh; i++) {
		int r = ml_info(self->fresh[i], &info);

		if (r == 0) {
			bound++;
			EXPECT_EQ((__u64)self->page, info.region_size);
			EXPECT_EQ(1U, info.creator_alive);
			EXPECT_EQ(0600U, info.mode);
		} else {
			EXPECT_EQ(-EINVAL, r);
		}
	}
	EXPECT_EQ(6, bound);
}

TEST_F(abi, size_attach)
{
	struct memlink_attach s = { 0 };
	struct memlink_attach *out = (void *)self->buf;

	strcpy(s.name, self->name);
	CHECK_SIZES(T_FRESH, MEMLINK_IOC_ATTACH, s, 0);

	ASSERT_EQ(0, sized(self, T_FRESH, MEMLINK_IOC_ATTACH, &s, sizeof(s),
			   sizeof(s) + 8, -1));
	EXPECT_EQ((__u64)(2 * self->page), out->region_size);
	EXPECT_EQ(0, self->buf[sizeof(s)]);
}

TEST_F(abi, size_info)
{
	struct memlink_info s = { 0 };
	struct memlink_info *out = (void *)self->buf;

	CHECK_SIZES(T_BOUND, MEMLINK_IOC_INFO, s, 0);

	ASSERT_EQ(0, sized(self, T_BOUND, MEMLINK_IOC_INFO, &s, sizeof(s),
			   sizeof(s) + 8, -1));
	EXPECT_EQ((__u64)(2 * self->page), out->region_size);
	EXPECT_STREQ(self->name, out->name);
	EXPECT_EQ(0, self->buf[sizeof(s)]);
}

TEST_F(abi, size_wait)
{
	/* The word is 0: expecting 1 returns EAGAIN at once. */
	struct memlink_wait s = { .offset = 0, .expected = 1 };

	CHECK_SIZES(T_BOUND, MEMLINK_IOC_WAIT, s, -EAGAIN);
}

TEST_F(abi, size_list)
{
	struct memlink_list s = { 0 };

	CHECK_SIZES(T_UNBOUND, MEMLINK_IOC_LIST, s, 0);
	CHECK_SIZES(T_BOUND, MEMLINK_IOC_LIST, s, 0);
}

TEST_F(abi, size_wake)
{
	struct memlink_wake s = { .offset = 0, .count = 1 };
	struct memlink_info info;

	CHECK_SIZES(T_BOUND, MEMLINK_IOC_WAKE, s, 0);
	/* Exactly the 6 accepted calls counted as wakes. */
	ASSERT_EQ(0, ml_info(self->cfd, &info));
	EXPECT_EQ(6ULL, (unsigned long long)info.wakes);
}

/* Every undefined flag bit is refused, for every ioctl. */
TEST_F(abi, undefined_flags)
{
	int bit;

	for (bit = 0; bit < 32; bit++) {
		__u32 f = 1U << bit;
		struct memlink_handshake hs = { .size = sizeof(hs), .flags = f };
		struct memlink_create c = { .size = sizeof(c), .flags = f,
					    .region_size = self->page, .mode = 0600 };
		struct memlink_attach a = { .size = sizeof(a), .flags = f };
		struct memlink_info in = { .size = sizeof(in), .flags = f };
		struct memlink_wait w = { .size = sizeof(w), .flags = f, .expected = 1 };
		struct memlink_wake k = { .size = sizeof(k), .flags = f };
		struct memlink_list l = { .size = sizeof(l), .flags = f };

		EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs));
		EXPECT_EQ(-EINVAL, ml_ioctl(self->cfd, MEMLINK_IOC_INFO, &in));
		/* Bit 0 is MEMLINK_WAKE_BUMP: EINVAL too, the region has no bell. */
		EXPECT_EQ(-EINVAL, ml_ioctl(self->cfd, MEMLINK_IOC_WAKE, &k)) TH_LOG("bit %d", bit);
		EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC_LIST, &l));
		/*
		 * WAIT defines ABSTIME (alone: a deadline long past, so the
		 * word that differs gives EAGAIN); REALTIME needs ABSTIME.
		 */
		EXPECT_EQ(f == MEMLINK_WAIT_ABSTIME ? -EAGAIN : -EINVAL,
			  ml_ioctl(self->cfd, MEMLINK_IOC_WAIT, &w)) TH_LOG("bit %d", bit);
		/* Bit 0 is MEMLINK_CREATE_REPLACE / MEMLINK_ATTACH_RDONLY. */
		if (f == MEMLINK_CREATE_REPLACE)
			continue;
		strcpy(a.name, self->name);
		EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC_ATTACH, &a)) TH_LOG("bit %d", bit);
		/* Bits 1-3: MEMLINK_CREATE_ONCE, _SEALED, _BELL (private_test.c). */
		if (f & (MEMLINK_CREATE_ONCE | MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL))
			continue;
		ml_name(c.name, "abi-flag");
		EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC_CREATE, &c)) TH_LOG("bit %d", bit);
	}
	/* The refused calls left the file unbound and counted no wake. */
	{
		struct memlink_info info;

		EXPECT_EQ(-EINVAL, ml_info(self->fd, &info));
		ASSERT_EQ(0, ml_info(self->cfd, &info));
		EXPECT_EQ(0ULL, (unsigned long long)info.wakes);
		EXPECT_EQ(1U, info.attached);
	}
}

/* Reserved fields must be zero. */
TEST_F(abi, reserved_fields)
{
	struct memlink_handshake hs = { .size = sizeof(hs), .__reserved = 1 };
	struct memlink_create c = { .size = sizeof(c), .region_size = self->page,
				    .mode = 0600, .__reserved = 1 };
	struct memlink_wait w = { .size = sizeof(w), .expected = 1, .__reserved = 1 };
	struct memlink_wake k = { .size = sizeof(k), .__reserved = 1 };
	struct memlink_list l = { .size = sizeof(l), .__reserved = 1 };
	struct memlink_list l2 = { .size = sizeof(l2), .__reserved2 = 1 };
	struct memlink_handshake hs2 = { .size = sizeof(hs2), .__reserved2 = 1 };

	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_LIST, &l));
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_LIST, &l2));
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs2));
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs));
	ml_name(c.name, "abi-rsv");
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_CREATE, &c));
	c.__reserved = 0x80000000U;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_CREATE, &c));
	EXPECT_ERRNO(EINVAL, ioctl(self->cfd, MEMLINK_IOC_WAIT, &w));
	EXPECT_ERRNO(EINVAL, ioctl(self->cfd, MEMLINK_IOC_WAKE, &k));

	/* The same calls with the field zeroed work. */
	hs.__reserved = 0;
	EXPECT_EQ(0, ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs));
	w.__reserved = 0;
	EXPECT_ERRNO(EAGAIN, ioctl(self->cfd, MEMLINK_IOC_WAIT, &w));
	k.__reserved = 0;
	EXPECT_EQ(0, ioctl(self->cfd, MEMLINK_IOC_WAKE, &k));
	c.__reserved = 0;
	EXPECT_EQ(0, ioctl(self->fd, MEMLINK_IOC_CREATE, &c));
}

/* Unknown numbers, another type byte, direction/size bits: ENOTTY. */
TEST_F(abi, enotty)
{
	const unsigned long cmds[] = {
		MEMLINK_IOC(0x07, sizeof(struct memlink_handshake)),
		MEMLINK_IOC(0x7f, sizeof(struct memlink_handshake)),
		MEMLINK_IOC(0xff, sizeof(struct memlink_handshake)),
		_IOWR(MEMLINK_IOC_TYPE + 1, 0x00, struct memlink_handshake),
		_IOWR(MEMLINK_IOC_TYPE - 1, 0x00, struct memlink_handshake),
		_IOWR('f', 0x00, struct memlink_handshake),
		_IO(0, 0),
		/* Version 1's numbers: type 0xB8, no direction or size. */
		_IO(0xB8, 0x00),
		_IO(0xB8, 0x01),
		_IO(0xB8, 0x03),
		_IO(0xB8, 0x05),
		/* The right type and number with another direction. */
		_IO(MEMLINK_IOC_TYPE, 0x00),
		_IO(MEMLINK_IOC_TYPE, 0x05),
		_IOW(MEMLINK_IOC_TYPE, 0x00, struct memlink_handshake),
		_IOR(MEMLINK_IOC_TYPE, 0x00, struct memlink_handshake),
		_IOW(MEMLINK_IOC_TYPE, 0x01, struct memlink_create),
		_IOR(MEMLINK_IOC_TYPE, 0x03, struct memlink_info),
		_IOW(MEMLINK_IOC_TYPE, 0x06, struct memlink_list),
	};
	struct memlink_handshake hs = { .size = sizeof(hs) };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		EXPECT_EQ(-ENOTTY, ml_ioctl(self->fd, cmds[i], &hs)) TH_LOG("cmd %#lx", cmds[i]);
		EXPECT_EQ(-ENOTTY, ml_ioctl(self->cfd, cmds[i], &hs)) TH_LOG("cmd %#lx", cmds[i]);
		/* ENOTTY wins over a bad pointer. */
		EXPECT_EQ(-ENOTTY, ml_ioctl(self->fd, cmds[i], NULL)) TH_LOG("cmd %#lx", cmds[i]);
	}
	/* The file is still fine. */
	EXPECT_EQ(0, ml_handshake(self->fd, &hs));
}

/* The numbers of ABI version 2: type, number, direction and size. */
TEST(numbers)
{
	const struct {
		unsigned long cmd;
		unsigned int nr;
		size_t size;
	} t[] = {
		{ MEMLINK_IOC_HANDSHAKE, 0x00, sizeof(struct memlink_handshake) },
		{ MEMLINK_IOC_CREATE, 0x01, sizeof(struct memlink_create) },
		{ MEMLINK_IOC_ATTACH, 0x02, sizeof(struct memlink_attach) },
		{ MEMLINK_IOC_INFO, 0x03, sizeof(struct memlink_info) },
		{ MEMLINK_IOC_WAIT, 0x04, sizeof(struct memlink_wait) },
		{ MEMLINK_IOC_WAKE, 0x05, sizeof(struct memlink_wake) },
		{ MEMLINK_IOC_LIST, 0x06, sizeof(struct memlink_list) },
	};
	size_t i;

	ASSERT_EQ(2, MEMLINK_ABI_VERSION);
	ASSERT_NE(0xB8, MEMLINK_IOC_TYPE);
	for (i = 0; i < ARRAY_SIZE(t); i++) {
		EXPECT_EQ((unsigned long)MEMLINK_IOC_TYPE, _IOC_TYPE(t[i].cmd));
		EXPECT_EQ((unsigned long)t[i].nr, _IOC_NR(t[i].cmd));
		EXPECT_EQ((unsigned long)(_IOC_READ | _IOC_WRITE), _IOC_DIR(t[i].cmd));
		EXPECT_EQ((unsigned long)t[i].size, _IOC_SIZE(t[i].cmd));
		EXPECT_EQ(t[i].cmd, MEMLINK_IOC(t[i].nr, t[i].size));
	}
}

/*
 * The size the number encodes must be the struct's size field: a caller's
 * header and its struct disagree otherwise. EINVAL, and nothing happens.
 */
TEST_F(abi, size_must_match_number)
{
	struct memlink_handshake hs = { .size = sizeof(hs) };
	struct memlink_wake k = { .size = sizeof(k), .count = 1 };
	struct memlink_info info;

	EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC(0x00, sizeof(hs) + 8), &hs));
	EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC(0x00, sizeof(hs) - 8), &hs));
	EXPECT_EQ(-EINVAL, ml_ioctl(self->cfd, MEMLINK_IOC(0x05, sizeof(k) + 8), &k));
	k.size = sizeof(k) + 8;
	EXPECT_EQ(-EINVAL, ml_ioctl(self->cfd, MEMLINK_IOC_WAKE, &k));
	ASSERT_EQ(0, ml_info(self->cfd, &info));
	EXPECT_EQ(0ULL, (unsigned long long)info.wakes);
	/* Both at the larger size: accepted (the tail is zero). */
	memset(self->buf, 0, 2 * self->page);
	k.size = sizeof(k) + 8;
	memcpy(self->buf, &k, sizeof(k));
	EXPECT_EQ(0, ml_ioctl(self->cfd, MEMLINK_IOC(0x05, sizeof(k) + 8), self->buf));
	ASSERT_EQ(0, ml_info(self->cfd, &info));
	EXPECT_EQ(1ULL, (unsigned long long)info.wakes);
}

/* Bad pointers for the struct: EFAULT, and nothing happens. */
TEST_F(abi, efault_in)
{
	const unsigned long cmds[] = {
		MEMLINK_IOC_HANDSHAKE, MEMLINK_IOC_CREATE, MEMLINK_IOC_ATTACH,
		MEMLINK_IOC_INFO, MEMLINK_IOC_WAIT, MEMLINK_IOC_WAKE, MEMLINK_IOC_LIST,
	};
	const size_t sizes[] = {
		sizeof(struct memlink_handshake), sizeof(struct memlink_create),
		sizeof(struct memlink_attach), sizeof(struct memlink_info),
		sizeof(struct memlink_wait), sizeof(struct memlink_wake),
		sizeof(struct memlink_list),
	};
	void *kernel = (void *)0xffff888000000000UL;
	struct memlink_info info;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		/* The region ioctls need a bound file to look at the pointer. */
		int fd = i >= 3 ? self->cfd : self->fd;
		__u32 ks = sizes[i];
		char *straddle = self->guard + self->page - sizeof(__u32);
		char *tail = self->guard + self->page - ks;

		EXPECT_EQ(-EFAULT, ml_ioctl(fd, cmds[i], NULL)) TH_LOG("cmd %#lx", cmds[i]);
		EXPECT_EQ(-EFAULT, ml_ioctl(fd, cmds[i], (void *)1)) TH_LOG("cmd %#lx", cmds[i]);
		EXPECT_EQ(-EFAULT, ml_ioctl(fd, cmds[i], self->unmapped)) TH_LOG("cmd %#lx", cmds[i]);
		EXPECT_EQ(-EFAULT, ml_ioctl(fd, cmds[i], kernel)) TH_LOG("cmd %#lx", cmds[i]);

		/* The size field is readable, the rest of the struct is not. */
		memcpy(straddle, &ks, sizeof(ks));
		EXPECT_EQ(-EFAULT, ml_ioctl(fd, cmds[i], straddle)) TH_LOG("cmd %#lx", cmds[i]);

		/*
		 * The struct is readable and zero, but the declared larger
		 * size runs into the unmapped page.
		 */
		memset(tail, 0, ks);
		ks += 8;
		memcpy(tail, &ks, sizeof(ks));
		EXPECT_EQ(-EFAULT, ml_ioctl(fd, MEMLINK_IOC(_IOC_NR(cmds[i]), ks), tail))
			TH_LOG("cmd %#lx", cmds[i]);
	}

	/* No create or attach happened; the region saw no wake. */
	EXPECT_EQ(-EINVAL, ml_info(self->fd, &info));
	ASSERT_EQ(0, ml_info(self->cfd, &info));
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(0ULL, (unsigned long long)info.wakes);
	/* The unbound file can still be bound. */
	EXPECT_EQ(0, ml_attach(self->fd, self->name));
}

/*
 * A struct the caller can read but not write: EFAULT for the ioctls that
 * write results back; those that only read it work.
 */
TEST_F(abi, efault_out)
{
	struct memlink_handshake *hs = (void *)self->ro;
	struct memlink_info *in = (void *)self->ro;
	struct memlink_create *c = (void *)self->ro;
	struct memlink_wait *w = (void *)self->ro;
	struct memlink_wake *k = (void *)self->ro;
	struct memlink_info info;
	char name[MEMLINK_NAME_MAX];
	int fd;

	memset(self->ro, 0, self->page);
	hs->size = sizeof(*hs);
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ));
	EXPECT_EQ(-EFAULT, ml_ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, hs));

	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ | PROT_WRITE));
	memset(self->ro, 0, self->page);
	in->size = sizeof(*in);
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ));
	EXPECT_EQ(-EFAULT, ml_ioctl(self->cfd, MEMLINK_IOC_INFO, in));

	/* CREATE writes nothing back: a read-only struct works. */
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ | PROT_WRITE));
	memset(self->ro, 0, self->page);
	c->size = sizeof(*c);
	c->region_size = self->page;
	c->mode = 0600;
	ml_name(name, "abi-ro");
	strcpy(c->name, name);
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ));
	fd = ml_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, ml_ioctl(fd, MEMLINK_IOC_CREATE, c));
	close(fd);

	/* Nor do WAIT and WAKE. */
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ | PROT_WRITE));
	memset(self->ro, 0, self->page);
	w->size = sizeof(*w);
	w->expected = 1;
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ));
	EXPECT_EQ(-EAGAIN, ml_ioctl(self->cfd, MEMLINK_IOC_WAIT, w));
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ | PROT_WRITE));
	memset(self->ro, 0, self->page);
	k->size = sizeof(*k);
	k->count = 1;
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ));
	EXPECT_EQ(0, ml_ioctl(self->cfd, MEMLINK_IOC_WAKE, k));
	ASSERT_EQ(0, ml_info(self->cfd, &info));
	EXPECT_EQ(1ULL, (unsigned long long)info.wakes);
}

/*
 * ATTACH into a read-only struct: EFAULT from the copy back, but (as
 * main.c documents) the file is bound and counted, and can be closed.
 */
TEST_F(abi, efault_attach_out_still_binds)
{
	struct memlink_attach *a = (void *)self->ro;
	struct memlink_info info;

	memset(self->ro, 0, self->page);
	a->size = sizeof(*a);
	strcpy(a->name, self->name);
	ASSERT_EQ(0, mprotect(self->ro, self->page, PROT_READ));
	EXPECT_EQ(-EFAULT, ml_ioctl(self->fd, MEMLINK_IOC_ATTACH, a));
	ASSERT_EQ(0, ml_info(self->fd, &info));
	EXPECT_EQ(2U, info.attached);
	EXPECT_EQ(-EINVAL, ml_attach(self->fd, self->name));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, ml_info(self->cfd, &info));
	EXPECT_EQ(1U, info.attached);
	EXPECT_EQ(1ULL, (unsigned long long)info.detached);
}

/* read() into a bad buffer: EFAULT. */
TEST_F(abi, efault_read)
{
	void *volatile null = NULL;	/* hidden from the compiler's checks */
	__u64 v;

	EXPECT_ERRNO(EFAULT, read(self->cfd, null, 8));
	EXPECT_ERRNO(EFAULT, read(self->cfd, self->unmapped, 8));
	EXPECT_ERRNO(EFAULT, read(self->cfd, self->guard + self->page - 4, 8));
	EXPECT_EQ(8, read(self->cfd, &v, sizeof(v)));
	EXPECT_EQ(0ULL, (unsigned long long)v);
}

TEST_HARNESS_MAIN

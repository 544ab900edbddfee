// SPDX-License-Identifier: GPL-2.0
/*
 * MEMLINK_IOC_HANDSHAKE: ABI version, features, page size and the module
 * limits, which must follow /sys/module/memlink/parameters.
 */
#include "memlink_test.h"

#include <sys/sysmacros.h>

#define ML_ALL_FEATURES (MEMLINK_FEAT_WAIT | MEMLINK_FEAT_PEER_GONE | \
			 MEMLINK_FEAT_POLL | MEMLINK_FEAT_REPLACE | \
			 MEMLINK_FEAT_LIST | MEMLINK_FEAT_DEADLINE | \
			 MEMLINK_FEAT_IPC_NS | MEMLINK_FEAT_USER_LIMITS | \
			 MEMLINK_FEAT_PRIVATE)

FIXTURE(handshake) {
	int fd;
	unsigned long long saved_max_regions;
	bool restore;
};

FIXTURE_SETUP(handshake)
{
	self->fd = ml_open();
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", ML_DEV, strerror(errno));
}

FIXTURE_TEARDOWN(handshake)
{
	if (self->restore)
		ml_param_set("max_regions", self->saved_max_regions);
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(handshake, values)
{
	struct memlink_handshake hs;
	unsigned long long v = 0;

	ASSERT_EQ(0, ml_handshake(self->fd, &hs));
	EXPECT_EQ(sizeof(hs), hs.size);
	EXPECT_EQ(0U, hs.flags);
	EXPECT_EQ((__u32)MEMLINK_ABI_VERSION, hs.abi_version);
	EXPECT_EQ(2, MEMLINK_ABI_VERSION);
	EXPECT_EQ((unsigned long)ml_page_size(), (unsigned long)hs.page_size);
	/* Every feature this header knows, and nothing it does not. */
	EXPECT_EQ((__u64)ML_ALL_FEATURES, hs.features);
	EXPECT_EQ(0U, hs.__reserved);

	ASSERT_EQ(0, ml_param_get("max_region_size", &v));
	EXPECT_EQ(v, hs.max_region_size);
	ASSERT_EQ(0, ml_param_get("max_total_size", &v));
	EXPECT_EQ(v, hs.max_total_size);
	ASSERT_EQ(0, ml_param_get("max_regions", &v));
	EXPECT_EQ(v, (unsigned long long)hs.max_regions);
	ASSERT_EQ(0, ml_param_get("max_user_bytes", &v));
	EXPECT_EQ(v, hs.max_user_bytes);
	ASSERT_EQ(0, ml_param_get("max_user_regions", &v));
	EXPECT_EQ(v, (unsigned long long)hs.max_user_regions);
	EXPECT_EQ(0U, hs.__reserved2);

	/* Sane limits: a region of one page fits. */
	EXPECT_LE((__u64)hs.page_size, hs.max_region_size);
	EXPECT_LE(hs.max_region_size, hs.max_total_size);
	EXPECT_LT(0U, hs.max_regions);
	/* Page-aligned limits. */
	EXPECT_EQ(0ULL, hs.max_region_size % hs.page_size);

	ksft_print_msg("abi=%u page_size=%u features=%#llx max_region_size=%llu max_total_size=%llu max_regions=%u\n",
		       hs.abi_version, hs.page_size, (unsigned long long)hs.features,
		       (unsigned long long)hs.max_region_size,
		       (unsigned long long)hs.max_total_size, hs.max_regions);
}

/* The listing works on a file that is not bound, and the handshake agrees. */
TEST_F(handshake, list_unbound)
{
	struct ml_listing p;
	struct memlink_list l;

	ASSERT_EQ(0, ml_listing_read(&p, NULL));
	EXPECT_EQ(MEMLINK_ABI_VERSION, p.abi);
	ASSERT_EQ(0, ml_list(self->fd, &l, NULL, 0));
	EXPECT_EQ(0U, l.count);
	EXPECT_EQ((__u32)p.lines, l.total);
}

/* Out fields are written whatever the caller put there. */
TEST_F(handshake, overwrites_out_fields)
{
	struct memlink_handshake hs;

	memset(&hs, 0xff, sizeof(hs));
	hs.size = sizeof(hs);
	hs.flags = 0;
	hs.__reserved = 0;
	hs.__reserved2 = 0;
	ASSERT_EQ(0, ml_ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs));
	EXPECT_EQ((__u32)MEMLINK_ABI_VERSION, hs.abi_version);
	EXPECT_EQ((unsigned long)ml_page_size(), (unsigned long)hs.page_size);
	EXPECT_EQ((__u64)ML_ALL_FEATURES, hs.features);
}

/* Works on an unbound, a creator's, an attached and a read-only-opened file. */
TEST_F(handshake, any_file)
{
	struct memlink_handshake ref, hs;
	char name[MEMLINK_NAME_MAX];
	int cfd, afd, rofd;

	ASSERT_EQ(0, ml_handshake(self->fd, &ref));

	ml_name(name, "hs-any");
	cfd = ml_open_create(name, ml_page_size(), 0600);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, ml_handshake(cfd, &hs));
	EXPECT_EQ(0, memcmp(&ref, &hs, sizeof(hs)));

	afd = ml_open_attach(name, 0);
	ASSERT_LE(0, afd);
	ASSERT_EQ(0, ml_handshake(afd, &hs));
	EXPECT_EQ(0, memcmp(&ref, &hs, sizeof(hs)));

	rofd = open(ML_DEV, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, rofd);
	ASSERT_EQ(0, ml_handshake(rofd, &hs));
	EXPECT_EQ(0, memcmp(&ref, &hs, sizeof(hs)));

	close(rofd);
	close(afd);
	close(cfd);
}

/* Limits are read live from the module parameters. */
TEST_F(handshake, follows_params)
{
	struct memlink_handshake hs;

	ASSERT_EQ(0, ml_param_get("max_regions", &self->saved_max_regions));
	self->restore = true;
	ASSERT_EQ(0, ml_param_set("max_regions", self->saved_max_regions + 7));
	ASSERT_EQ(0, ml_handshake(self->fd, &hs));
	EXPECT_EQ(self->saved_max_regions + 7, (unsigned long long)hs.max_regions);
	ASSERT_EQ(0, ml_param_set("max_regions", self->saved_max_regions));
	self->restore = false;
	ASSERT_EQ(0, ml_handshake(self->fd, &hs));
	EXPECT_EQ(self->saved_max_regions, (unsigned long long)hs.max_regions);
}

/* flags and __reserved must be zero. */
TEST_F(handshake, flags_reserved)
{
	struct memlink_handshake hs = { .size = sizeof(hs), .flags = 1 };

	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs));
	hs.flags = 1U << 31;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs));
	hs.flags = 0;
	hs.__reserved = 1;
	EXPECT_ERRNO(EINVAL, ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs));
	hs.__reserved = 0;
	EXPECT_EQ(0, ioctl(self->fd, MEMLINK_IOC_HANDSHAKE, &hs));
}

/* /dev/memlink: a misc character device anyone may open. */
TEST(device_node)
{
	struct stat st;
	int fd;

	ASSERT_EQ(0, stat(ML_DEV, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(10U, major(st.st_rdev));	/* MISC_MAJOR */
	EXPECT_EQ(0666U, st.st_mode & 07777);
	fd = open(ML_DEV, O_RDONLY | O_CLOEXEC);
	EXPECT_LE(0, fd);
	close(fd);
	/* Not seekable. */
	fd = ml_open();
	ASSERT_LE(0, fd);
	EXPECT_ERRNO(ESPIPE, lseek(fd, 0, SEEK_CUR));
	close(fd);
}

TEST_HARNESS_MAIN

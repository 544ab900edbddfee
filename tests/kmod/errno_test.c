// SPDX-License-Identifier: GPL-2.0
/*
 * The errno contract of include/uapi/linux/memlink.h, one case at a time
 * (struct sizes, flags, pointers and ENOTTY are in abi_test.c): EINVAL for
 * bad names, sizes, modes, offsets and binding state; EEXIST, ENOENT,
 * EACCES, ENOSPC (each module limit, lowered for the test and restored),
 * EAGAIN, ETIMEDOUT, EINTR and EPIPE.
 */
#include "memlink_test.h"

#include <ctype.h>
#include <sys/time.h>

static const char *const params[] = { "max_region_size", "max_total_size", "max_regions" };
#define NPARAMS 3

FIXTURE(err) {
	long page;
	char name[MEMLINK_NAME_MAX];
	int fd;		/* unbound */
	int cfd;	/* creator of name, 2 pages */
	unsigned long long saved[NPARAMS];
	bool restore[NPARAMS];
};

FIXTURE_SETUP(err)
{
	self->page = ml_page_size();
	ml_name(self->name, "err");
	self->fd = ml_open();
	ASSERT_LE(0, self->fd);
	self->cfd = ml_open_create(self->name, 2 * self->page, 0600);
	ASSERT_LE(0, self->cfd);
}

FIXTURE_TEARDOWN(err)
{
	int i;

	for (i = 0; i < NPARAMS; i++)
		if (self->restore[i])
			ml_param_set(params[i], self->saved[i]);
	close(self->cfd);
	close(self->fd);
}

/* Set a module parameter for this test; the teardown restores it. */
static int set_param(FIXTURE_DATA(err) *self, int i, unsigned long long v)
{
	if (!self->restore[i]) {
		int ret = ml_param_get(params[i], &self->saved[i]);

		if (ret)
			return ret;
		self->restore[i] = true;
	}
	return ml_param_set(params[i], v);
}

static int restore_param(FIXTURE_DATA(err) *self, int i)
{
	int ret = ml_param_set(params[i], self->saved[i]);

	self->restore[i] = false;
	return ret;
}

/* Create on a new file; returns 0 or -errno, the file stays open in *fdp. */
static int create_new(int *fdp, const char *name, uint64_t size, uint32_t mode)
{
	*fdp = ml_open();
	if (*fdp < 0)
		return -EMFILE;
	return ml_create(*fdp, name, size, mode);
}

static int create_raw_name(const char raw[MEMLINK_NAME_MAX], long size)
{
	struct memlink_create c = { .size = sizeof(c), .region_size = size, .mode = 0600 };
	int fd = ml_open(), ret;

	memcpy(c.name, raw, MEMLINK_NAME_MAX);
	ret = ml_ioctl(fd, MEMLINK_IOC_CREATE, &c);
	close(fd);
	return ret;
}

static int attach_raw_name(const char raw[MEMLINK_NAME_MAX])
{
	struct memlink_attach a = { .size = sizeof(a) };
	int fd = ml_open(), ret;

	memcpy(a.name, raw, MEMLINK_NAME_MAX);
	ret = ml_ioctl(fd, MEMLINK_IOC_ATTACH, &a);
	close(fd);
	return ret;
}

static const char *const bad_names[] = {
	"a/b", "/", "a b", " ", "a\nb", "a\tb", "a:b", "a*b", "a\\b",
	"a\"b", "a'b", "a$b", "a%b", "a,b", "a;b", "a=b", "a~b",
	"a+b", "a@b", "a#b", "a(b)", "a[b]", "a{b}", "a<b>", "a|b",
	"a?b", "a!b", "a&b", "a^b", "a`b", "\x01", "a\x7f",
};

TEST_F(err, einval_names)
{
	char raw[MEMLINK_NAME_MAX];
	size_t i;

	/* Empty. */
	memset(raw, 0, sizeof(raw));
	EXPECT_EQ(-EINVAL, create_raw_name(raw, self->page));
	EXPECT_EQ(-EINVAL, attach_raw_name(raw));
	/* 64 characters, no NUL. */
	memset(raw, 'a', sizeof(raw));
	EXPECT_EQ(-EINVAL, create_raw_name(raw, self->page));
	EXPECT_EQ(-EINVAL, attach_raw_name(raw));
	/* 63 and a NUL is fine. */
	raw[MEMLINK_NAME_MAX - 1] = 0;
	snprintf(raw, 20, "kst.63.%d", (int)getpid());
	raw[strlen(raw)] = 'a';
	EXPECT_EQ(0, create_raw_name(raw, self->page));

	/* Illegal characters, also as the only one, for create and attach. */
	for (i = 0; i < ARRAY_SIZE(bad_names); i++) {
		memset(raw, 0, sizeof(raw));
		strcpy(raw, bad_names[i]);
		EXPECT_EQ(-EINVAL, create_raw_name(raw, self->page))
			TH_LOG("name \"%s\"", bad_names[i]);
		EXPECT_EQ(-EINVAL, attach_raw_name(raw)) TH_LOG("name \"%s\"", bad_names[i]);
	}
	/* The NUL ends the name: what follows it is not looked at. */
	memset(raw, 0, sizeof(raw));
	snprintf(raw, sizeof(raw), "kst.nul.%d", (int)getpid());
	strcpy(raw + strlen(raw) + 1, "/ junk");
	EXPECT_EQ(0, create_raw_name(raw, self->page));
}

/*
 * Every byte value: only [A-Za-z0-9._-] may appear in a name. Bytes from
 * 0x80 up (Latin-1 letters, UTF-8 sequences) are not in that set.
 */
TEST_F(err, einval_name_bytes)
{
	int c, refused = 0, created = 0, attach_not_einval = 0;
	char clist[3 * 256] = "", alist[3 * 256] = "";

	for (c = 1; c < 256; c++) {
		bool ok = (c < 128 && isalnum(c)) || c == '.' || c == '_' || c == '-';
		char raw[MEMLINK_NAME_MAX] = { 0 };
		int ret, len;

		len = snprintf(raw, sizeof(raw), "kst.b%d.%d.", c, (int)getpid());
		raw[len] = (char)c;
		ret = create_raw_name(raw, self->page);
		if (ok && ret) {
			refused++;
			TH_LOG("byte %#x refused: %d", c, ret);
		} else if (!ok && ret != -EINVAL) {
			created++;
			snprintf(clist + strlen(clist), sizeof(clist) - strlen(clist), "%02x ", c);
		}
		/* The region is gone again, so a valid name would give ENOENT. */
		if (!ok && attach_raw_name(raw) != -EINVAL) {
			attach_not_einval++;
			snprintf(alist + strlen(alist), sizeof(alist) - strlen(alist), "%02x ", c);
		}
	}
	EXPECT_EQ(0, refused);
	EXPECT_EQ(0, created) TH_LOG("create accepted names with the bytes: %s", clist);
	EXPECT_EQ(0, attach_not_einval)
		TH_LOG("attach did not say EINVAL for names with the bytes: %s", alist);
}

TEST_F(err, einval_region_size)
{
	const uint64_t sizes[] = {
		0, 1, 4, 100, self->page - 1, self->page + 1, self->page + self->page / 2,
		3 * self->page - 8, UINT64_MAX, (uint64_t)INT64_MAX,
	};
	char name[MEMLINK_NAME_MAX];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		ml_name(name, "err-size");
		EXPECT_EQ(-EINVAL, ml_create(self->fd, name, sizes[i], 0600))
			TH_LOG("size %llu", (unsigned long long)sizes[i]);
	}
	/* Still unbound after all that. */
	ml_name(name, "err-size");
	EXPECT_EQ(0, ml_create(self->fd, name, self->page, 0600));
}

TEST_F(err, einval_mode)
{
	const uint32_t modes[] = { 01000, 02000, 04000, 04777, 01777, 010000, 0170777,
				   0xffffffff, 0x80000000 };
	char name[MEMLINK_NAME_MAX];
	size_t i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(modes); i++) {
		ml_name(name, "err-mode");
		EXPECT_EQ(-EINVAL, ml_create(self->fd, name, self->page, modes[i]))
			TH_LOG("mode %#o", modes[i]);
	}
	/* 0777 and 0 are fine. */
	ml_name(name, "err-mode");
	EXPECT_EQ(0, create_new(&fd, name, self->page, 0777));
	close(fd);
	ml_name(name, "err-mode");
	EXPECT_EQ(0, create_new(&fd, name, self->page, 0));
	close(fd);
}

TEST_F(err, einval_offsets)
{
	const uint64_t size = 2 * self->page;
	const uint64_t bad[] = {
		1, 2, 3, 5, size - 2, size - 1, size, size + 4, 4 * size,
		UINT64_MAX, UINT64_MAX - 3, (uint64_t)1 << 63,
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, ml_wait(self->cfd, bad[i], 0, 1))
			TH_LOG("wait offset %llu", (unsigned long long)bad[i]);
		EXPECT_EQ(-EINVAL, ml_wake(self->cfd, bad[i], 1))
			TH_LOG("wake offset %llu", (unsigned long long)bad[i]);
	}
	/* The last word is fine. */
	EXPECT_EQ(-ETIMEDOUT, ml_wait(self->cfd, size - 4, 0, 1));
	EXPECT_EQ(0, ml_wake(self->cfd, size - 4, 1));
}

/* INFO, WAIT, WAKE, read and mmap need a bound file. */
TEST_F(err, einval_unbound)
{
	struct memlink_info info;
	char buf[8];
	void *m;

	EXPECT_EQ(-EINVAL, ml_info(self->fd, &info));
	EXPECT_EQ(-EINVAL, ml_wait(self->fd, 0, 0, 1));
	EXPECT_EQ(-EINVAL, ml_wake(self->fd, 0, 1));
	/* Checked before the argument. */
	EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC_INFO, NULL));
	EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC_WAIT, NULL));
	EXPECT_EQ(-EINVAL, ml_ioctl(self->fd, MEMLINK_IOC_WAKE, NULL));
	EXPECT_ERRNO(EINVAL, read(self->fd, buf, sizeof(buf)));
	m = mmap(NULL, self->page, PROT_READ, MAP_SHARED, self->fd, 0);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
}

/* A file is bound once: create or attach on a bound file is EINVAL. */
TEST_F(err, einval_already_bound)
{
	char other[MEMLINK_NAME_MAX];
	struct memlink_info info;
	int afd;

	ml_name(other, "err-other");
	EXPECT_EQ(-EINVAL, ml_create(self->cfd, other, self->page, 0600));
	EXPECT_EQ(-EINVAL, ml_create(self->cfd, self->name, self->page, 0600));
	EXPECT_EQ(-EINVAL, ml_attach(self->cfd, self->name));
	afd = ml_open_attach(self->name, 0);
	ASSERT_LE(0, afd);
	EXPECT_EQ(-EINVAL, ml_attach(afd, self->name));
	EXPECT_EQ(-EINVAL, ml_create(afd, other, self->page, 0600));
	EXPECT_EQ(-EINVAL, ml_create_flags(afd, other, self->page, 0600,
					   MEMLINK_CREATE_REPLACE));
	/* Nothing was created, the bindings did not change. */
	EXPECT_EQ(-ENOENT, ml_attach(self->fd, other));
	ASSERT_EQ(0, ml_info(afd, &info));
	EXPECT_STREQ(self->name, info.name);
	EXPECT_EQ(2U, info.attached);
	close(afd);
}

TEST_F(err, eexist)
{
	int fd;
	pid_t pid;

	EXPECT_EQ(-EEXIST, create_new(&fd, self->name, 2 * self->page, 0600));
	/* The failed create left the file unbound. */
	EXPECT_EQ(0, ml_attach(fd, self->name));
	close(fd);
	/* Another size, mode or process does not matter. */
	EXPECT_EQ(-EEXIST, create_new(&fd, self->name, self->page, 0666));
	close(fd);
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int f;

		_exit(-create_new(&f, self->name, self->page, 0600));
	}
	EXPECT_EQ(EEXIST, ml_reap(pid));
}

TEST_F(err, enoent)
{
	char gone[MEMLINK_NAME_MAX];
	int fd;

	ml_name(gone, "err-none");
	EXPECT_EQ(-ENOENT, ml_attach(self->fd, gone));
	EXPECT_EQ(-ENOENT, ml_attach_flags(self->fd, gone, MEMLINK_ATTACH_RDONLY, NULL));
	/* A region whose every file is closed is gone. */
	fd = ml_open_create(gone, self->page, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(-ENOENT, ml_attach(self->fd, gone));
	/* Names are exact. */
	EXPECT_EQ(-ENOENT, ml_attach(self->fd, "kst.err"));
	self->name[strlen(self->name) - 1] ^= 1;
	EXPECT_EQ(-ENOENT, ml_attach(self->fd, self->name));
}

TEST_F(err, eacces)
{
	pid_t pid;
	int afd;

	/* Read-only attach: WAKE is EACCES, writable mmap EACCES. */
	afd = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, afd);
	EXPECT_EQ(-EACCES, ml_wake(afd, 0, 1));
	EXPECT_EQ(MAP_FAILED, ml_map(afd, self->page, PROT_READ | PROT_WRITE, 0));
	EXPECT_EQ(EACCES, errno);
	close(afd);

	/* Another uid on a 0600 region (see perm_test.c for more). */
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (ml_become(1000, 1000))
			_exit(200);
		_exit(-ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY));
	}
	EXPECT_EQ(EACCES, ml_reap(pid));
}

/* Larger than max_region_size (from the handshake): ENOSPC, nothing allocated. */
TEST_F(err, enospc_region_size)
{
	struct memlink_handshake hs;
	unsigned long long v = 0;
	struct ml_listing before, after;
	char name[MEMLINK_NAME_MAX];
	int fd;

	ASSERT_EQ(0, ml_handshake(self->fd, &hs));
	ASSERT_EQ(0, ml_param_get("max_region_size", &v));
	ASSERT_EQ(v, hs.max_region_size);
	ASSERT_EQ(0, ml_listing_read(&before, NULL));
	ml_name(name, "err-big");
	EXPECT_EQ(-ENOSPC, ml_create(self->fd, name, hs.max_region_size + self->page, 0600));
	EXPECT_EQ(-ENOSPC, ml_create(self->fd, name, 2 * hs.max_region_size, 0600));
	EXPECT_EQ(-ENOSPC, ml_create(self->fd, name, UINT64_MAX & ~(uint64_t)(self->page - 1),
				     0600));
	ASSERT_EQ(0, ml_listing_read(&after, NULL));
	EXPECT_EQ(before.pages, after.pages);
	EXPECT_EQ(before.regions, after.regions);

	/* With the limit lowered: exactly the limit fits, a page more does not. */
	ASSERT_EQ(0, set_param(self, 0, 16 * self->page));
	ASSERT_EQ(0, ml_handshake(self->fd, &hs));
	EXPECT_EQ((__u64)(16 * self->page), hs.max_region_size);
	EXPECT_EQ(-ENOSPC, ml_create(self->fd, name, 17 * self->page, 0600));
	EXPECT_EQ(0, create_new(&fd, name, 16 * self->page, 0600));
	close(fd);
	ASSERT_EQ(0, restore_param(self, 0));
	/* The failed creates left the file unbound. */
	EXPECT_EQ(0, ml_create(self->fd, name, 17 * self->page, 0600));
}

/* max_regions: one region too many is ENOSPC; closing one makes room. */
TEST_F(err, enospc_region_count)
{
	char name[MEMLINK_NAME_MAX];
	struct ml_listing proc;
	int fds[3], fd, i;

	ASSERT_EQ(0, ml_listing_read(&proc, NULL));
	ASSERT_EQ(0, set_param(self, 2, proc.regions + 3));
	for (i = 0; i < 3; i++) {
		ml_name(name, "err-count");
		ASSERT_EQ(0, create_new(&fds[i], name, self->page, 0600));
	}
	ml_name(name, "err-count");
	EXPECT_EQ(-ENOSPC, create_new(&fd, name, self->page, 0600));
	/* Attach is no new region: allowed. */
	EXPECT_EQ(0, ml_attach(fd, self->name));
	close(fd);
	close(fds[1]);
	EXPECT_EQ(0, create_new(&fds[1], name, self->page, 0600));
	ml_name(name, "err-count");
	EXPECT_EQ(-ENOSPC, create_new(&fd, name, self->page, 0600));
	ASSERT_EQ(0, restore_param(self, 2));
	EXPECT_EQ(0, ml_create(fd, name, self->page, 0600));
	close(fd);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

/* max_total_size: the sum of all regions. */
TEST_F(err, enospc_total_size)
{
	char name[MEMLINK_NAME_MAX];
	struct ml_listing proc;
	int a, b, c;

	ASSERT_EQ(0, ml_listing_read(&proc, NULL));
	ASSERT_EQ(0, set_param(self, 1, proc.bytes + 8 * self->page));
	ml_name(name, "err-total");
	ASSERT_EQ(0, create_new(&a, name, 5 * self->page, 0600));
	ml_name(name, "err-total");
	EXPECT_EQ(-ENOSPC, create_new(&b, name, 4 * self->page, 0600));
	EXPECT_EQ(0, ml_create(b, name, 3 * self->page, 0600));
	ml_name(name, "err-total");
	EXPECT_EQ(-ENOSPC, create_new(&c, name, self->page, 0600));
	close(a);
	EXPECT_EQ(0, ml_create(c, name, 5 * self->page, 0600));
	close(b);
	close(c);
}

TEST_F(err, eagain_etimedout)
{
	volatile __u32 *m = ml_map(self->cfd, self->page, PROT_READ | PROT_WRITE, 0);

	ASSERT_NE(MAP_FAILED, m);
	m[1] = 3;
	EXPECT_EQ(-EAGAIN, ml_wait(self->cfd, 4, 2, 0));
	EXPECT_EQ(-ETIMEDOUT, ml_wait(self->cfd, 4, 3, 10 * ML_NSEC_PER_MSEC));
	munmap((void *)m, self->page);
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST_F(err, eintr)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval it = { .it_value = { .tv_usec = 100000 } };

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	EXPECT_EQ(-EINTR, ml_wait(self->cfd, 0, 0, 0));
}

TEST_F(err, epipe)
{
	int afd = ml_open_attach(self->name, 0);

	ASSERT_LE(0, afd);
	close(self->cfd);
	self->cfd = ml_open();	/* for the teardown */
	EXPECT_EQ(-EPIPE, ml_wait(afd, 0, 0, 0));
	EXPECT_EQ(-EPIPE, ml_wait(afd, 0, 1, 0));
	EXPECT_EQ(-EPIPE, ml_attach(self->fd, self->name));
	/* Argument errors still come first. */
	EXPECT_EQ(-EINVAL, ml_wait(afd, 2, 0, 0));
	close(afd);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * Limits hold before memory is taken, also under concurrency, and per user:
 *  - concurrent creations never hold more pages than max_total_size,
 *    counted from the module's own page count (LIST, as root) sampled all
 *    along; before the fix, pages were allocated first and checked after
 *    (four 32 MiB creations held 114 MiB under a 4 MiB limit);
 *  - max_user_regions and max_user_bytes bound one uid, not the others,
 *    and a refused or released region gives its share back;
 *  - under a memory cgroup limit a large region fails with ENOMEM and the
 *    creator lives (no OOM kill).
 * Module parameters are saved and restored by the fixture.
 */
#include "memlink_test.h"

#include <sys/mount.h>

#define UID_A 1000
#define UID_B 1001

static const char *const params[] = {
	"max_region_size", "max_total_size", "max_regions", "max_user_bytes",
	"max_user_regions",
};

#define NPARAMS (sizeof(params) / sizeof(params[0]))

FIXTURE(lim) {
	long page;
	unsigned long long saved[NPARAMS];
};

FIXTURE_SETUP(lim)
{
	size_t i;

	self->page = ml_page_size();
	for (i = 0; i < NPARAMS; i++)
		ASSERT_EQ(0, ml_param_get(params[i], &self->saved[i]));
}

FIXTURE_TEARDOWN(lim)
{
	size_t i;

	for (i = 0; i < NPARAMS; i++)
		ml_param_set(params[i], self->saved[i]);
}

/* As uid (0: stay root): create a region, exit with 0 or its errno. */
static pid_t creator(const char *name, uid_t uid, uint64_t size, int loops)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		char n[MEMLINK_NAME_MAX];
		int i, ret = 0;

		if (uid && ml_become(uid, uid))
			_exit(200);
		for (i = 0; i < loops; i++) {
			int fd = ml_open();

			snprintf(n, sizeof(n), "%.40s-%d-%d", name, (int)getpid(), i);
			ret = fd < 0 ? -errno : ml_create(fd, n, size, 0600);
			if (fd >= 0)
				close(fd);
			if (ret && ret != -ENOSPC)
				_exit(-ret);
		}
		_exit(0);
	}
	return pid;
}

/*
 * Four processes create and free 3 MiB regions as fast as they can under
 * an 8 MiB total: at most two fit at once, and the module's page count,
 * sampled meanwhile, never passes 8 MiB.
 */
TEST_F(lim, concurrent_creates_stay_under_total)
{
	const uint64_t region = 3 << 20, total = 8 << 20;
	struct ml_listing base, l;
	long max_pages = 0, samples = 0, over = 0;
	pid_t pids[4];
	int i, running;

	ASSERT_EQ(0, ml_listing_read(&base, NULL));
	ASSERT_EQ(0, ml_param_set("max_region_size", 32 << 20));
	ASSERT_EQ(0, ml_param_set("max_total_size", base.bytes + total));
	ASSERT_EQ(0, ml_param_set("max_user_bytes", 0));
	for (i = 0; i < 4; i++) {
		pids[i] = creator("lim-conc", 0, region, 200);
		ASSERT_LT(0, pids[i]);
	}
	do {
		ASSERT_EQ(0, ml_listing_read(&l, NULL));
		samples++;
		if (l.pages - base.pages > max_pages)
			max_pages = l.pages - base.pages;
		if ((uint64_t)(l.pages - base.pages) * self->page > total)
			over++;
		running = 0;
		for (i = 0; i < 4; i++)
			if (pids[i] && waitpid(pids[i], NULL, WNOHANG) == 0)
				running++;
			else
				pids[i] = 0;
	} while (running);
	TH_LOG("%ld samples, at most %ld pages over the base (limit %llu)", samples, max_pages,
	       (unsigned long long)(total / self->page));
	EXPECT_EQ(0, over);
	EXPECT_GE((long)(total / self->page), max_pages);

	/* The case: 32 MiB regions under a 4 MiB total, none taken. */
	ASSERT_EQ(0, ml_param_set("max_total_size", base.bytes + (4 << 20)));
	for (i = 0; i < 4; i++) {
		pids[i] = creator("lim-big", 0, 32 << 20, 5);
		ASSERT_LT(0, pids[i]);
	}
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, ml_reap(pids[i]));
	ASSERT_EQ(0, ml_listing_read(&l, NULL));
	EXPECT_EQ(base.pages, l.pages);
	EXPECT_EQ(base.regions, l.regions);
	EXPECT_EQ(base.bytes, l.bytes);
}

struct user_report {
	int ret[6];
	__u32 user_regions;
	__u64 user_bytes;
};

/* max_user_regions: the fourth region of A is refused, B's is not. */
TEST_F(lim, per_user_regions)
{
	struct user_report *r = ml_shared_anon(sizeof(*r));
	pid_t pid;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, ml_param_set("max_user_regions", 3));
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char n[MEMLINK_NAME_MAX];
		struct memlink_list l;
		int fds[5], i;

		if (ml_become(UID_A, UID_A))
			_exit(200);
		for (i = 0; i < 5; i++) {
			ml_name(n, "lim-user");
			fds[i] = ml_open();
			r->ret[i] = ml_create(fds[i], n, ml_page_size(), 0600);
		}
		ml_list(fds[4], &l, NULL, 0);
		r->user_regions = l.user_regions;
		r->user_bytes = l.user_bytes;
		/* One released: room for one again. */
		close(fds[0]);
		ml_name(n, "lim-user");
		r->ret[5] = ml_create(fds[4], n, ml_page_size(), 0600);
		_exit(0);
	}
	ASSERT_EQ(0, ml_reap(pid));
	EXPECT_EQ(0, r->ret[0]);
	EXPECT_EQ(0, r->ret[1]);
	EXPECT_EQ(0, r->ret[2]);
	EXPECT_EQ(-ENOSPC, r->ret[3]);
	EXPECT_EQ(-ENOSPC, r->ret[4]);
	EXPECT_EQ(0, r->ret[5]);
	EXPECT_EQ(3U, r->user_regions);
	EXPECT_EQ((__u64)(3 * self->page), r->user_bytes);

	/* A's regions went with A; B has its own share. */
	pid = creator("lim-user-b", UID_B, self->page, 3);
	ASSERT_LT(0, pid);
	EXPECT_EQ(0, ml_reap(pid));
}

/* max_user_bytes: A's bytes are bounded, not those of others. */
TEST_F(lim, per_user_bytes)
{
	struct user_report *r = ml_shared_anon(sizeof(*r));
	pid_t a, b;
	int p[2];

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, ml_param_set("max_user_bytes", 8 * self->page));
	ASSERT_EQ(0, pipe(p));
	a = ml_fork();
	ASSERT_LE(0, a);
	if (a == 0) {
		char n[MEMLINK_NAME_MAX];
		long pg = ml_page_size();
		int f[4], i;

		if (ml_become(UID_A, UID_A))
			_exit(200);
		for (i = 0; i < 4; i++)
			f[i] = ml_open();
		ml_name(n, "lim-bytes");
		r->ret[0] = ml_create(f[0], n, 5 * pg, 0600);
		ml_name(n, "lim-bytes");
		r->ret[1] = ml_create(f[1], n, 4 * pg, 0600);	/* 9 > 8 */
		r->ret[2] = ml_create(f[1], n, 3 * pg, 0600);	/* exactly 8 */
		ml_name(n, "lim-bytes");
		r->ret[3] = ml_create(f[2], n, pg, 0600);
		ml_signal(p[1]);
		for (;;)
			pause();
	}
	ASSERT_EQ(0, ml_await(p[0], 10000));
	EXPECT_EQ(0, r->ret[0]);
	EXPECT_EQ(-ENOSPC, r->ret[1]);
	EXPECT_EQ(0, r->ret[2]);
	EXPECT_EQ(-ENOSPC, r->ret[3]);
	/* B is not charged for A. */
	b = creator("lim-bytes-b", UID_B, 8 * self->page, 1);
	ASSERT_LT(0, b);
	EXPECT_EQ(0, ml_reap(b));
	kill(a, SIGKILL);
	ml_reap(a);
}

/* A failed creation gives everything back: counts as before. */
TEST_F(lim, refusals_leave_nothing)
{
	struct ml_listing before, after;
	pid_t pid;

	ASSERT_EQ(0, ml_listing_read(&before, NULL));
	ASSERT_EQ(0, ml_param_set("max_user_regions", 1));
	pid = creator("lim-refuse", UID_A, self->page, 50);
	ASSERT_LT(0, pid);
	EXPECT_EQ(0, ml_reap(pid));
	ASSERT_EQ(0, ml_listing_read(&after, NULL));
	EXPECT_EQ(before.pages, after.pages);
	EXPECT_EQ(before.regions, after.regions);
	EXPECT_EQ(before.bytes, after.bytes);
}

/* Write a string into a cgroup file; 0 or -errno. */
static int cg_write(const char *cg, const char *file, const char *val)
{
	char path[160];
	int fd, n, len = strlen(val);

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	n = n == len ? 0 : -errno;
	close(fd);
	return n;
}

/*
 * Over the memory cgroup's limit a creation fails with ENOMEM: the pages
 * are allocated with __GFP_RETRY_MAYFAIL, which never calls the OOM
 * killer (it used to kill the creator, or another task).
 */
TEST_F(lim, memcg_enomem_no_oom_kill)
{
	const char *root = "/sys/fs/cgroup", *cg = "/sys/fs/cgroup/memlink-lim";
	char buf[32];
	pid_t pid;
	int p[2], ret;

	mkdir(root, 0755);
	if (access("/sys/fs/cgroup/cgroup.procs", F_OK) &&
	    mount("none", root, "cgroup2", 0, NULL))
		SKIP(return, "no cgroup2 here (%s)", strerror(errno));
	if (cg_write(root, "cgroup.subtree_control", "+memory"))
		SKIP(return, "no memory controller");
	if (mkdir(cg, 0755) && errno != EEXIST)
		SKIP(return, "cannot make a cgroup: %s", strerror(errno));
	ASSERT_EQ(0, cg_write(cg, "memory.max", "16777216"));
	cg_write(cg, "memory.swap.max", "0");	/* none without swap support */
	ASSERT_EQ(0, ml_param_set("max_region_size", 128 << 20));
	ASSERT_EQ(0, ml_param_set("max_user_bytes", 0));

	ASSERT_EQ(0, pipe(p));
	pid = ml_fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char n[MEMLINK_NAME_MAX], c;
		int fd;

		if (read(p[0], &c, 1) != 1)
			_exit(200);
		fd = ml_open();
		ml_name(n, "lim-memcg");
		_exit(-ml_create(fd, n, 64 << 20, 0600));
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	ASSERT_EQ(0, cg_write(cg, "cgroup.procs", buf));
	ASSERT_EQ(0, ml_signal(p[1]));
	ret = ml_reap(pid);
	EXPECT_EQ(ENOMEM, ret) TH_LOG("exit %d (%d: killed by signal %d)", ret, ML_KILLED(0),
				      ret - ML_KILLED(0));
	rmdir(cg);
}

TEST_HARNESS_MAIN

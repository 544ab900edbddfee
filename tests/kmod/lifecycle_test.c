// SPDX-License-Identifier: GPL-2.0
/*
 * Region lifetime and the /proc/memlink listing: the listing shows each
 * live region and the module's totals; 1,000 create/destroy cycles leave no
 * region and no page behind; a creator killed in the middle of allocating
 * its region leaves nothing behind either; the module cannot be unloaded
 * while a region exists.
 *
 * The tests here expect no other region to exist (each test binary runs on
 * its own, and every test process has exited, closing its files).
 */
#include "memlink_test.h"

#define CYCLES 1000

FIXTURE(life) {
	long page;
	char name[MEMLINK_NAME_MAX];
};

FIXTURE_SETUP(life)
{
	self->page = ml_page_size();
	ml_name(self->name, "life");
}

FIXTURE_TEARDOWN(life)
{
}

static void expect_empty(struct __test_metadata *_metadata, const char *when)
{
	struct ml_listing p;

	ASSERT_EQ(0, ml_listing_read(&p, NULL));
	EXPECT_EQ(MEMLINK_ABI_VERSION, p.abi);
	EXPECT_EQ(0U, p.regions) TH_LOG("%s", when);
	EXPECT_EQ(0ULL, p.bytes) TH_LOG("%s", when);
	EXPECT_EQ(0L, p.pages) TH_LOG("%s", when);
	EXPECT_EQ(0, p.lines) TH_LOG("%s", when);
}

TEST_F(life, proc_listing)
{
	struct ml_listing p;
	char want[160];
	int cfd, afd;
	pid_t w;

	expect_empty(_metadata, "before");
	cfd = ml_open_create(self->name, 3 * self->page, 0640);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, ml_listing_read(&p, self->name));
	EXPECT_EQ(1U, p.regions);
	EXPECT_EQ((unsigned long long)(3 * self->page), p.bytes);
	EXPECT_EQ(3L, p.pages);
	EXPECT_EQ(1, p.lines);
	EXPECT_EQ(1, p.found);
	snprintf(want, sizeof(want), "%s %ld 0 0 0640 1 0 1\n", self->name, 3 * self->page);
	EXPECT_STREQ(want, p.line);

	afd = ml_open_attach(self->name, MEMLINK_ATTACH_RDONLY);
	ASSERT_LE(0, afd);
	w = ml_spawn_waiter(self->name, 0, 0, 0, 10 * ML_NSEC_PER_SEC);
	ASSERT_LT(0, w);
	ASSERT_EQ(0, ml_wait_waiters(cfd, 1, 10000));
	ASSERT_EQ(0, ml_listing_read(&p, self->name));
	snprintf(want, sizeof(want), "%s %ld 0 0 0640 3 1 1\n", self->name, 3 * self->page);
	EXPECT_STREQ(want, p.line);
	EXPECT_EQ(1, ml_wake(cfd, 0, 1));
	EXPECT_EQ(0, ml_reap(w));

	/* The creator leaves: listed with creator_alive 0 while afd holds it. */
	close(cfd);
	ASSERT_EQ(0, ml_listing_read(&p, self->name));
	snprintf(want, sizeof(want), "%s %ld 0 0 0640 1 0 0\n", self->name, 3 * self->page);
	EXPECT_STREQ(want, p.line);
	EXPECT_EQ(3L, p.pages);
	close(afd);
	expect_empty(_metadata, "after");
}

/* 1,000 create/destroy cycles in several shapes; nothing is left behind. */
TEST_F_TIMEOUT(life, create_destroy_cycles, 300)
{
	int64_t t0 = ml_now_ns();
	int i, fails = 0;

	expect_empty(_metadata, "before the cycles");
	for (i = 0; i < CYCLES; i++) {
		char name[MEMLINK_NAME_MAX];
		long npages = 1 + i % 4;
		volatile __u32 *m = NULL;
		struct ml_listing p;
		int cfd, afd = -1;

		/* Even cycles reuse one name: it must be free again each time. */
		if (i % 2)
			ml_name(name, "cycle");
		else
			snprintf(name, sizeof(name), "%s", self->name);
		cfd = ml_open_create(name, npages * self->page, 0600);
		if (cfd < 0) {
			fails++;
			TH_LOG("cycle %d: create: %d", i, cfd);
			continue;
		}
		if (i % 3 == 0) {
			afd = ml_open_attach(name, i % 2 ? MEMLINK_ATTACH_RDONLY : 0);
			if (afd < 0) {
				fails++;
				TH_LOG("cycle %d: attach: %d", i, afd);
			}
		}
		if (i % 10 == 0) {
			m = ml_map(cfd, npages * self->page, PROT_READ | PROT_WRITE, 0);
			if (m == MAP_FAILED) {
				fails++;
				m = NULL;
			} else {
				long k;

				for (k = 0; k < npages; k++) {
					if (m[k * self->page / 4]) {
						fails++;
						TH_LOG("cycle %d: page %ld not zero", i, k);
					}
					m[k * self->page / 4] = i;
				}
			}
		}
		if (i % 100 == 0) {
			if (ml_listing_read(&p, name) || p.regions != 1 || p.found != 1 ||
			    p.pages != npages) {
				fails++;
				TH_LOG("cycle %d: listing regions=%u pages=%ld found=%d", i,
				       p.regions, p.pages, p.found);
			}
		}
		/* Alternate who goes first: creator, client, or the mapping last. */
		if (i % 2) {
			close(cfd);
			if (afd >= 0)
				close(afd);
		} else {
			if (afd >= 0)
				close(afd);
			close(cfd);
		}
		if (m)
			munmap((void *)m, npages * self->page);
	}
	ksft_print_msg("%d create/destroy cycles took %.1f ms\n", CYCLES,
		       (ml_now_ns() - t0) / 1e6);
	EXPECT_EQ(0, fails);
	expect_empty(_metadata, "after the cycles");
}

/*
 * A creator SIGKILLed while the module allocates its region's pages: the
 * create fails, and every page, region and byte is accounted for again.
 */
TEST_F_TIMEOUT(life, sigkill_during_create, 120)
{
	const uint64_t size = 64ULL << 20;	/* 16384 pages */
	int64_t t0, t_create;
	int attempt, fd;

	expect_empty(_metadata, "before");
	/* How long a create of this size takes here. */
	fd = ml_open();
	ASSERT_LE(0, fd);
	t0 = ml_now_ns();
	ASSERT_EQ(0, ml_create(fd, self->name, size, 0600));
	t_create = ml_now_ns() - t0;
	close(fd);
	ksft_print_msg("a %llu MiB create takes %.1f ms\n",
		       (unsigned long long)(size >> 20), t_create / 1e6);
	expect_empty(_metadata, "after the timed create");

	for (attempt = 0; attempt < 8; attempt++) {
		char name[MEMLINK_NAME_MAX];
		int p[2], status;
		pid_t pid;

		ml_name(name, "life-kill");
		ASSERT_EQ(0, pipe(p));
		pid = ml_fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			int f = ml_open();

			ml_signal(p[1]);
			_exit(ml_create(f, name, size, 0600) ? 1 : 0);
		}
		ASSERT_EQ(0, ml_await(p[0], 10000));
		/* Somewhere from 10% to 80% into the allocation. */
		usleep((t_create / 1000) * (1 + attempt) / 10);
		kill(pid, SIGKILL);
		status = ml_reap(pid);
		EXPECT_TRUE(status == ML_KILLED(SIGKILL) || status == 0) TH_LOG("status %d", status);
		close(p[0]);
		close(p[1]);
		expect_empty(_metadata, "after a creator was killed");
		if (!_metadata->passed) {
			TH_LOG("attempt %d (killed %lld%% into a create)", attempt,
			       (long long)(1 + attempt) * 10);
			break;
		}
	}
}

/*
 * A bound file pins the module: rmmod must fail and leave the region and the
 * listing in place. (The VM runner unloads the module once every test has
 * ended and checks that /proc/memlink is gone.)
 */
TEST_F(life, no_unload_while_region_exists)
{
	struct ml_listing p;
	int fd, status;

	fd = ml_open_create(self->name, self->page, 0600);
	ASSERT_LE(0, fd);
	status = system("rmmod memlink 2>/dev/null");
	ASSERT_NE(-1, status);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	ASSERT_EQ(0, ml_listing_read(&p, self->name));
	EXPECT_EQ(1, p.found);
	EXPECT_EQ(1U, p.regions);
	close(fd);
	expect_empty(_metadata, "after close");
}

TEST_HARNESS_MAIN

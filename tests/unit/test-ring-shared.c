// SPDX-License-Identifier: MIT
/*
 * Rings in caller memory: ml_ring_init() and ml_ring_attach() on the same
 * bytes, attach's validation of the header, attaching after traffic, and a
 * real second process through fork().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "memlink.h"
#include "ring_layout.h"
#include "testutil.h"

#define CAP 4096u

static struct ml_ring_opts lanes_opts(uint32_t flags)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = flags };

	return o;
}

/* Write record seq of a stream: length and bytes both follow from seq. */
static size_t rec_len(uint64_t seq, uint32_t max_msg)
{
	return (size_t)(tu_mix(seq ^ 0x5eed) % (max_msg + 1));
}

static int put(ml_ring *r, int prio, uint64_t stream, uint64_t seq, uint32_t max_msg)
{
	unsigned char buf[4096];
	size_t len = rec_len(seq, max_msg);

	tu_fill(buf, len, stream, seq);
	return ml_ring_write(r, prio, buf, len);
}

static void get(ml_ring *r, int prio, uint64_t stream, uint64_t seq, uint32_t max_msg)
{
	unsigned char buf[4096];
	size_t len = rec_len(seq, max_msg);
	int p = -1;

	assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), (int)len);
	assert_int_equal(p, prio);
	assert_int_equal(tu_check(buf, len, stream, seq), 0);
}

/* Fixed 56-byte payloads: 64-byte records. */
static int put_fixed(ml_ring *r, int prio, uint64_t seq)
{
	unsigned char buf[56];

	tu_fill(buf, sizeof(buf), 99, seq);
	return ml_ring_write(r, prio, buf, sizeof(buf));
}

static void get_fixed(ml_ring *r, int prio, uint64_t seq)
{
	unsigned char buf[64];
	int p = -1;

	assert_int_equal(ml_ring_read(r, &p, buf, sizeof(buf)), 56);
	assert_int_equal(p, prio);
	assert_int_equal(tu_check(buf, 56, 99, seq), 0);
}

/* Init lays the ring out; a second handle attaches and sees the same ring. */
static void test_init_attach(void **state)
{
	static const uint32_t flags[] = { 0, ML_RING_LANES3 };

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		struct ml_ring_opts o = lanes_opts(flags[f]);
		size_t len = ml_ring_mem_size(CAP);
		void *mem = tu_shared_map(len);
		struct ml__ring_shm *shm = mem;
		struct ml_ring_info ia, ib;
		ml_ring *a = NULL, *b = NULL;
		uint64_t n;

		assert_non_null(mem);
		assert_int_equal(ml_ring_init(&a, mem, len, CAP, &o), 0);
		assert_int_equal(shm->magic, ML__RING_MAGIC);
		assert_int_equal(shm->version, ML__RING_VERSION);
		assert_int_equal(ml_ring_attach(&b, mem, len), 0);
		assert_non_null(b);
		assert_ptr_not_equal(a, b);

		assert_int_equal(ml_ring_info(a, &ia), 0);
		assert_int_equal(ml_ring_info(b, &ib), 0);
		assert_memory_equal(&ia, &ib, sizeof(ia));
		assert_int_equal(ib.lanes, flags[f] ? 3 : 1);
		assert_int_equal(ib.capacity, CAP);

		/*
		 * Fill the empty lane from a with 64-byte records, drain one on b:
		 * a sees the room only through the tail b published.
		 */
		n = 0;
		while (put_fixed(a, ML_PRIO_LOW, n) == 0)
			n++;
		assert_int_equal(n, ia.lane_capacity[flags[f] ? 2 : 0] / 64);
		get_fixed(b, ML_PRIO_LOW, 0);
		assert_int_equal(put_fixed(a, ML_PRIO_LOW, n), 0);
		assert_int_equal(put_fixed(a, ML_PRIO_LOW, n + 1), -EAGAIN);
		for (uint64_t i = 1; i <= n; i++)
			get_fixed(b, ML_PRIO_LOW, i);
		assert_int_equal(ml_ring_read(b, NULL, NULL, 0), -EAGAIN);
		/* Random sizes up to max_msg, many times round the lanes. */
		for (uint64_t i = 0; i < 300; i++) {
			assert_int_equal(put(a, (int)(i % 3), f, i, ia.max_msg), 0);
			get(b, (int)(i % 3), f, i, ia.max_msg);
		}
		assert_int_equal(ml_ring_read(b, NULL, NULL, 0), -EAGAIN);

		assert_int_equal(ml_ring_poisoned(a) | ml_ring_poisoned(b), 0);
		ml_ring_free(b);
		ml_ring_free(a);
		tu_shared_unmap(mem, len);
	}
}

/* ml_ring_init's own argument checks. */
static void test_init_bad_args(void **state)
{
	struct ml_ring_opts bad_flags = { .size = sizeof(bad_flags), .flags = 1u << 5 };
	size_t len = ml_ring_mem_size(CAP);
	uint8_t *mem = tu_shared_map(len + ML__LINE);
	ml_ring *r = NULL;

	(void)state;
	assert_non_null(mem);
	assert_int_equal(ml_ring_init(NULL, mem, len, CAP, NULL), -EINVAL);
	assert_int_equal(ml_ring_init(&r, NULL, len, CAP, NULL), -EINVAL);
	assert_int_equal(ml_ring_init(&r, mem, len - 1, CAP, NULL), -EINVAL);
	assert_int_equal(ml_ring_init(&r, mem, 0, CAP, NULL), -EINVAL);
	assert_int_equal(ml_ring_init(&r, mem, len, CAP + 1, NULL), -EINVAL);
	assert_int_equal(ml_ring_init(&r, mem, len, 128, NULL), -EINVAL);
	assert_int_equal(ml_ring_init(&r, mem, len, 0, NULL), -EINVAL);
	assert_int_equal(ml_ring_init(&r, mem, len, CAP, &bad_flags), -EINVAL);
	/* mem must be 128-byte aligned. */
	assert_int_equal(ml_ring_init(&r, mem + 64, len, CAP, NULL), -EINVAL);
	assert_int_equal(ml_ring_init(&r, mem + 8, len, CAP, NULL), -EINVAL);
	assert_null(r);
	/* None of the refused calls wrote a ring there. */
	assert_int_equal(ml_ring_attach(&r, mem, len), -EPROTO);
	assert_null(r);

	/* 128 bytes in and exactly ml_ring_mem_size() long is fine. */
	assert_int_equal(ml_ring_init(&r, mem + ML__LINE, len, CAP, NULL), 0);
	assert_int_equal(ml_ring_write(r, ML_PRIO_LOW, "x", 1), 0);
	ml_ring_free(r);
	tu_shared_unmap(mem, len + ML__LINE);
}

/* ml_ring_attach's argument checks. */
static void test_attach_bad_args(void **state)
{
	size_t len = ml_ring_mem_size(CAP);
	uint8_t *mem = tu_shared_map(len + ML__LINE);
	ml_ring *a = NULL, *b = NULL;

	(void)state;
	assert_non_null(mem);
	assert_int_equal(ml_ring_init(&a, mem, len, CAP, NULL), 0);
	assert_int_equal(ml_ring_attach(NULL, mem, len), -EINVAL);
	assert_int_equal(ml_ring_attach(&b, NULL, len), -EINVAL);
	assert_int_equal(ml_ring_attach(&b, mem + 64, len), -EINVAL);
	assert_int_equal(ml_ring_attach(&b, mem + 8, len), -EINVAL);
	/* Too short to hold even the header. */
	assert_int_equal(ml_ring_attach(&b, mem, 0), -EINVAL);
	assert_int_equal(ml_ring_attach(&b, mem, ML__RING_HDR_SIZE - 1), -EINVAL);
	/*
	 * A header, but fewer bytes than the ring it describes: the memory
	 * given does not hold that ring.
	 */
	assert_int_equal(ml_ring_attach(&b, mem, ML__RING_HDR_SIZE), -EPROTO);
	assert_int_equal(ml_ring_attach(&b, mem, len - 1), -EPROTO);
	assert_null(b);
	/* More than needed is fine. */
	assert_int_equal(ml_ring_attach(&b, mem, len + ML__LINE), 0);
	ml_ring_free(b);
	ml_ring_free(a);
	tu_shared_unmap(mem, len + ML__LINE);
}

/* Zeroed memory is not a ring. */
static void test_attach_zeroed(void **state)
{
	size_t len = ml_ring_mem_size(CAP);
	void *mem = tu_shared_map(len);
	ml_ring *r = NULL;

	(void)state;
	assert_non_null(mem);
	assert_int_equal(ml_ring_attach(&r, mem, len), -EPROTO);
	assert_null(r);
	tu_shared_unmap(mem, len);
}

#define CFG(field) offsetof(struct ml__ring_shm, field)

/* One corrupted config word and what attach must say about it. */
struct cfg_case {
	uint32_t flags; /* ring to lay out */
	size_t off;     /* byte offset of the word in the header */
	uint32_t val;
	int want;
};

/* Every header field is checked; the good values still attach. */
static void test_attach_bad_header(void **state)
{
	static const struct cfg_case cases[] = {
		{ 0, CFG(magic), 0, -EPROTO },
		{ 0, CFG(magic), ML__RING_MAGIC + 1, -EPROTO },
		{ 0, CFG(version), 0, -EPROTO },
		{ 0, CFG(version), ML__RING_VERSION + 1, -EPROTO },
		{ 0, CFG(lanes), 0, -EPROTO },
		{ 0, CFG(lanes), 2, -EPROTO },
		{ 0, CFG(lanes), 4, -EPROTO },
		/* lanes flipped: the geometry no longer matches */
		{ 0, CFG(lanes), 3, -EPROTO },
		{ ML_RING_LANES3, CFG(lanes), 1, -EPROTO },
		/* capacity: not a power of two, too small, too big for len */
		{ 0, CFG(capacity), 0, -EPROTO },
		{ 0, CFG(capacity), CAP + 8, -EPROTO },
		{ 0, CFG(capacity), 128, -EPROTO },
		{ 0, CFG(capacity), CAP * 2, -EPROTO },
		{ 0, CFG(capacity), 1u << 31, -EPROTO },
		/* a valid capacity that the lane geometry does not match */
		{ 0, CFG(capacity), CAP / 2, -EPROTO },
		{ ML_RING_LANES3, CFG(capacity), CAP / 2, -EPROTO },
		/* lane geometry */
		{ 0, CFG(lane_cap[0]), CAP - 8, -EPROTO },
		{ 0, CFG(lane_cap[1]), 8, -EPROTO },
		{ 0, CFG(lane_off[1]), 8, -EPROTO },
		{ 0, CFG(lane_off[0]), 8, -EPROTO },
		{ ML_RING_LANES3, CFG(lane_cap[0]), 824, -EPROTO },
		{ ML_RING_LANES3, CFG(lane_cap[1]), 2040, -EPROTO },
		{ ML_RING_LANES3, CFG(lane_cap[2]), 1240, -EPROTO },
		{ ML_RING_LANES3, CFG(lane_off[1]), 824, -EPROTO },
		{ ML_RING_LANES3, CFG(lane_off[2]), 0, -EPROTO },
		/* max_msg: 0, or above a quarter of the smallest lane */
		{ 0, CFG(max_msg), 0, -EPROTO },
		{ 0, CFG(max_msg), CAP / 4 + 1, -EPROTO },
		{ 0, CFG(max_msg), UINT32_MAX, -EPROTO },
		{ ML_RING_LANES3, CFG(max_msg), 0, -EPROTO },
		{ ML_RING_LANES3, CFG(max_msg), 205, -EPROTO },
		/* legal values */
		{ 0, CFG(max_msg), 1, 0 },
		{ 0, CFG(max_msg), CAP / 4, 0 },
		{ ML_RING_LANES3, CFG(max_msg), 204, 0 },
		{ ML_RING_LANES3, CFG(max_msg), 17, 0 },
	};
	size_t len = ml_ring_mem_size(CAP);
	uint8_t *mem = tu_shared_map(len);

	(void)state;
	assert_non_null(mem);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ml_ring_opts o = lanes_opts(cases[i].flags);
		ml_ring *a = NULL, *b = NULL;
		int err;

		assert_int_equal(ml_ring_init(&a, mem, len, CAP, &o), 0);
		memcpy(mem + cases[i].off, &cases[i].val, sizeof(uint32_t));
		err = ml_ring_attach(&b, mem, len);
		if (err != cases[i].want)
			fail_msg("case %zu (offset %zu = %u): attach returned %d, want %d",
				 i, cases[i].off, cases[i].val, err, cases[i].want);
		if (err == 0) {
			struct ml_ring_info info;

			/* The attached side uses the header's max_msg. */
			assert_int_equal(ml_ring_info(b, &info), 0);
			assert_int_equal(info.max_msg, cases[i].val);
			assert_int_equal(ml_ring_write(b, ML_PRIO_LOW, mem, cases[i].val + 1),
					 -EMSGSIZE);
			ml_ring_free(b);
		} else {
			assert_null(b);
		}
		ml_ring_free(a);
	}
	tu_shared_unmap(mem, len);
}

/* Indices that cannot be valid make attach fail with -EBADMSG. */
static void test_attach_bad_indices(void **state)
{
	static const struct {
		uint32_t flags;
		unsigned lane;
		uint64_t head, tail;
		int want;
	} cases[] = {
		{ 0, 0, CAP + 8, 0, -EBADMSG },   /* more than the lane holds */
		{ 0, 0, 4, 0, -EBADMSG },         /* head not 8-aligned */
		{ 0, 0, 16, 12, -EBADMSG },       /* tail not 8-aligned */
		{ 0, 0, 8, 16 + CAP, -EBADMSG },  /* tail a lane past the head */
		{ ML_RING_LANES3, 0, 824, 0, -EBADMSG }, /* critical is 816 */
		{ ML_RING_LANES3, 2, 1240, 0, -EBADMSG }, /* low is 1232 */
		{ ML_RING_LANES3, 1, 0, 2048 + 8, -EBADMSG }, /* high is 2048 */
		/* a head behind the tail lags the headers the reader went by */
		{ 0, 0, 8, 16, 0 },
		{ 0, 0, 8, 8 + CAP, 0 },
		/* free-running counters far from zero are fine */
		{ 0, 0, 1ull << 40, 1ull << 40, 0 },
		{ ML_RING_LANES3, 0, 816ull * 1000003, 816ull * 1000003, 0 },
		{ ML_RING_LANES3, 2, (1ull << 50) + 8, (1ull << 50) + 8, 0 },
	};
	size_t len = ml_ring_mem_size(CAP);
	uint8_t *mem = tu_shared_map(len);
	struct ml__ring_shm *shm = (void *)mem;

	(void)state;
	assert_non_null(mem);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ml_ring_opts o = lanes_opts(cases[i].flags);
		unsigned lane = cases[i].lane;
		ml_ring *a = NULL, *b = NULL;
		int err;

		assert_int_equal(ml_ring_init(&a, mem, len, CAP, &o), 0);
		ml_ring_free(a);
		atomic_store(&shm->head[lane], cases[i].head);
		atomic_store(&shm->tail[lane], cases[i].tail);
		err = ml_ring_attach(&b, mem, len);
		if (err != cases[i].want)
			fail_msg("case %zu: attach returned %d, want %d", i, err, cases[i].want);
		if (err) {
			assert_null(b);
			continue;
		}
		/* Empty lane at an arbitrary offset: works both ways. */
		for (uint64_t k = 0; k < 50; k++) {
			assert_int_equal(put(b, (int)lane, 7, k, 204), 0);
			get(b, (int)lane, 7, k, 204);
		}
		assert_int_equal(atomic_load(&shm->head[lane]), atomic_load(&shm->tail[lane]));
		assert_true(atomic_load(&shm->head[lane]) > cases[i].head);
		ml_ring_free(b);
	}
	tu_shared_unmap(mem, len);
}

/*
 * Attach after traffic picks up both indices: a consumer handle joins while
 * records are waiting, then a new producer handle replaces the first one.
 */
static void test_attach_after_traffic(void **state)
{
	static const uint32_t flags[] = { 0, ML_RING_LANES3 };

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		struct ml_ring_opts o = lanes_opts(flags[f]);
		size_t len = ml_ring_mem_size(CAP);
		void *mem = tu_shared_map(len);
		struct ml_ring_info ia, ib;
		ml_ring *a = NULL, *b = NULL, *c = NULL;
		uint64_t seq;
		int prio = flags[f] ? ML_PRIO_HIGH : ML_PRIO_LOW;
		unsigned lane = flags[f] ? ML_PRIO_HIGH : 0;

		assert_non_null(mem);
		assert_int_equal(ml_ring_init(&a, mem, len, CAP, &o), 0);
		assert_int_equal(ml_ring_info(a, &ia), 0);
		/* Go round the lane many times on one handle. */
		for (seq = 0; seq < 500; seq++) {
			assert_int_equal(put(a, prio, 40, seq, ia.max_msg), 0);
			get(a, prio, 40, seq, ia.max_msg);
		}
		/* Leave three records waiting. */
		for (; seq < 503; seq++)
			assert_int_equal(put(a, prio, 40, seq, ia.max_msg), 0);

		assert_int_equal(ml_ring_attach(&b, mem, len), 0);
		assert_int_equal(ml_ring_info(a, &ia), 0);
		assert_int_equal(ml_ring_info(b, &ib), 0);
		assert_memory_equal(&ia, &ib, sizeof(ia));
		assert_true(ib.lane_used[lane] > 0);
		for (uint64_t i = 500; i < 503; i++)
			get(b, prio, 40, i, ia.max_msg);
		assert_int_equal(ml_ring_read(b, NULL, NULL, 0), -EAGAIN);

		/* a keeps producing for b. */
		for (; seq < 600; seq++) {
			assert_int_equal(put(a, prio, 40, seq, ia.max_msg), 0);
			get(b, prio, 40, seq, ia.max_msg);
		}
		/* a goes away with two records unread; c takes over. */
		assert_int_equal(put(a, prio, 40, seq++, ia.max_msg), 0);
		assert_int_equal(put(a, prio, 40, seq++, ia.max_msg), 0);
		ml_ring_free(a);
		assert_int_equal(ml_ring_attach(&c, mem, len), 0);
		for (; seq < 900; seq++) {
			assert_int_equal(put(c, prio, 40, seq, ia.max_msg), 0);
			get(b, prio, 40, seq - 2, ia.max_msg);
		}
		get(b, prio, 40, seq - 2, ia.max_msg);
		get(b, prio, 40, seq - 1, ia.max_msg);
		assert_int_equal(ml_ring_read(b, NULL, NULL, 0), -EAGAIN);
		assert_int_equal(ml_ring_info(c, &ia), 0);
		assert_int_equal(ia.lane_used[lane], 0);
		assert_int_equal(ml_ring_poisoned(b) | ml_ring_poisoned(c), 0);
		ml_ring_free(c);
		ml_ring_free(b);
		tu_shared_unmap(mem, len);
	}
}

/* ---- across fork() ------------------------------------------------------ */

#define FORK_RECORDS 20000u
#define FORK_SECONDS 60

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Which lane record seq goes to: a mix, so that lanes interleave. */
static int fork_prio(uint64_t seq)
{
	return (int)(tu_mix(seq * 7 + 1) % 3);
}

/* The child's producer: no cmocka here, only an exit code. */
static int child_produce(void *mem, size_t len)
{
	struct ml_ring_info info;
	double end = now_s() + FORK_SECONDS;
	ml_ring *r = NULL;

	if (ml_ring_attach(&r, mem, len) || ml_ring_info(r, &info))
		return 10;
	for (uint64_t seq = 0; seq < FORK_RECORDS;) {
		int err = put(r, fork_prio(seq), 50, seq, info.max_msg);

		if (err == 0) {
			seq++;
		} else if (err == -EAGAIN) {
			if (now_s() > end)
				return 11;
			sched_yield();
		} else {
			return 12;
		}
	}
	ml_ring_free(r);
	return 0;
}

/* The child's consumer: checks what the parent sent. */
static int child_consume(void *mem, size_t len)
{
	unsigned char buf[4096];
	struct ml_ring_info info;
	double end = now_s() + FORK_SECONDS;
	ml_ring *r = NULL;
	uint64_t seq = 0;

	if (ml_ring_attach(&r, mem, len) || ml_ring_info(r, &info))
		return 20;
	while (seq < FORK_RECORDS) {
		int p = -1, n = ml_ring_read(r, &p, buf, sizeof(buf));

		if (n == -EAGAIN) {
			if (now_s() > end)
				return 21;
			sched_yield();
			continue;
		}
		if (n != (int)rec_len(seq, info.max_msg))
			return 22;
		if (p != (int)(seq % 3))
			return 23;
		if (tu_check(buf, (size_t)n, 51, seq))
			return 24;
		seq++;
	}
	/* Nothing extra. */
	if (ml_ring_read(r, NULL, buf, sizeof(buf)) != -EAGAIN)
		return 25;
	ml_ring_free(r);
	return 0;
}

static void wait_child(pid_t pid)
{
	int status = 0;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		fail_msg("child did not exit normally (status 0x%x)", status);
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A child process attaches and writes; the parent reads everything, in
 * order within each lane, with the right bytes, and nothing more.
 */
static void run_fork_child_writes(uint32_t flags)
{
	struct ml_ring_opts o = lanes_opts(flags);
	size_t len = ml_ring_mem_size(CAP);
	void *mem = tu_shared_map(len);
	uint64_t next[3], got = 0, per_lane[3] = { 0 };
	struct ml_ring_info info;
	double end = now_s() + FORK_SECONDS;
	ml_ring *r = NULL;
	pid_t pid;

	assert_non_null(mem);
	assert_int_equal(ml_ring_init(&r, mem, len, CAP, &o), 0);
	assert_int_equal(ml_ring_info(r, &info), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_produce(mem, len));

	/* next[l]: the next seq the child sends on lane l (one lane: any). */
	for (int l = 0; l < 3; l++) {
		next[l] = 0;
		while (next[l] < FORK_RECORDS && fork_prio(next[l]) != l)
			next[l]++;
	}
	while (got < FORK_RECORDS) {
		unsigned char buf[4096];
		int p = -1, n = ml_ring_read(r, &p, buf, sizeof(buf));
		uint64_t seq;

		if (n == -EAGAIN) {
			if (now_s() > end)
				fail_msg("timed out after %llu records", (unsigned long long)got);
			sched_yield();
			continue;
		}
		assert_true(p >= 0 && p < 3);
		/* One lane is one FIFO: seq is simply the count so far. */
		seq = info.lanes == 1 ? got : next[p];
		assert_int_equal(fork_prio(seq), p);
		assert_int_equal(n, (int)rec_len(seq, info.max_msg));
		assert_int_equal(tu_check(buf, (size_t)n, 50, seq), 0);
		if (info.lanes == 3)
			do
				next[p]++;
			while (next[p] < FORK_RECORDS && fork_prio(next[p]) != p);
		per_lane[p]++;
		got++;
	}
	wait_child(pid);
	/* The child is gone: nothing else arrives. */
	assert_int_equal(ml_ring_read(r, NULL, NULL, 0), -EAGAIN);
	assert_true(per_lane[0] > 0 && per_lane[1] > 0 && per_lane[2] > 0);
	assert_int_equal(ml_ring_poisoned(r), 0);
	ml_ring_free(r);
	tu_shared_unmap(mem, len);
}

static void test_fork_child_writes(void **state)
{
	(void)state;
	run_fork_child_writes(0);
	run_fork_child_writes(ML_RING_LANES3);
}

/* The other way round: the parent writes, the child checks and reports. */
static void test_fork_child_reads(void **state)
{
	size_t len = ml_ring_mem_size(CAP);
	void *mem = tu_shared_map(len);
	struct ml_ring_info info;
	double end = now_s() + FORK_SECONDS;
	ml_ring *r = NULL;
	pid_t pid;

	(void)state;
	assert_non_null(mem);
	assert_int_equal(ml_ring_init(&r, mem, len, CAP, NULL), 0);
	assert_int_equal(ml_ring_info(r, &info), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_consume(mem, len));
	for (uint64_t seq = 0; seq < FORK_RECORDS;) {
		int err = put(r, (int)(seq % 3), 51, seq, info.max_msg);

		if (err == -EAGAIN) {
			if (now_s() > end)
				fail_msg("timed out at record %llu", (unsigned long long)seq);
			sched_yield();
			continue;
		}
		assert_int_equal(err, 0);
		seq++;
	}
	wait_child(pid);
	/* The child consumed everything: the shared tail caught up. */
	assert_int_equal(ml_ring_info(r, &info), 0);
	assert_int_equal(info.lane_used[0], 0);
	ml_ring_free(r);
	tu_shared_unmap(mem, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_attach),
		cmocka_unit_test(test_init_bad_args),
		cmocka_unit_test(test_attach_bad_args),
		cmocka_unit_test(test_attach_zeroed),
		cmocka_unit_test(test_attach_bad_header),
		cmocka_unit_test(test_attach_bad_indices),
		cmocka_unit_test(test_attach_after_traffic),
		cmocka_unit_test(test_fork_child_writes),
		cmocka_unit_test(test_fork_child_reads),
	};

	return cmocka_run_group_tests_name("test-ring-shared", tests, NULL, NULL);
}

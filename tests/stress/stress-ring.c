// SPDX-License-Identifier: MIT
/*
 * Stress: one producer and one consumer pass millions of records of random
 * sizes and priorities through a ring, as two threads or as two processes
 * (fork over a MAP_SHARED mapping). The reader checks every record: its
 * lane's sequence number, its exact length and every byte, so a lost,
 * duplicated, reordered or torn record fails the run.
 *
 *   stress-ring threads|procs [records]   (default 10 million, or
 *                                          $ML_STRESS_RECORDS)
 *
 * A three-lane ring is run with strict reads and with urgent_every = 16, and
 * a single-lane ring, where the global order and each record's stored
 * priority are checked too.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memlink.h"
#include "testutil.h"

#define RING_CAP (1u << 18)
#define STALL_SECONDS 60

struct shared_result {
	_Atomic int producer_done;
	int producer_err;
	uint64_t sent[ML_PRIO_COUNT];
};

struct run {
	unsigned lanes;
	uint64_t records;
	uint64_t seed;
	uint32_t max_msg;
	void *mem;
	size_t mem_len;
	struct shared_result *res;
};

/* What record n of the whole stream is: its lane, from the seed alone. */
static unsigned rec_lane(const struct run *run, uint64_t n)
{
	return (unsigned)(tu_mix(run->seed ^ (n * 0x2545f4914f6cdd1dull)) % ML_PRIO_COUNT);
}

/* Length of the i-th record of a lane: mostly small, 1 in 32 up to max. */
static uint32_t rec_len(const struct run *run, unsigned lane, uint64_t i)
{
	uint64_t h = tu_mix(run->seed + ((uint64_t)lane << 56) + i);

	if ((h & 31) == 0)
		return (uint32_t)((h >> 8) % (run->max_msg + 1));
	return (uint32_t)((h >> 8) % 257);
}

static void relax(unsigned *spins)
{
	if (++*spins % 256 == 0)
		sched_yield();
}

static int produce(struct run *run, ml_ring *r)
{
	uint64_t sent[ML_PRIO_COUNT] = { 0 };
	static char buf[1 << 16];

	for (uint64_t n = 0; n < run->records; n++) {
		unsigned lane = rec_lane(run, n), spins = 0;
		uint64_t i = sent[lane];
		uint32_t len = rec_len(run, lane, i);
		int err;

		/* Alternate the copying and the zero-copy paths. */
		if (n & 1) {
			void *p;

			while ((err = ml_ring_reserve(r, (int)lane, len, &p)) == -EAGAIN)
				relax(&spins);
			if (!err) {
				tu_fill_seq(p, len, lane, i);
				err = ml_ring_commit(r, len);
			}
		} else {
			tu_fill_seq(buf, len, lane, i);
			while ((err = ml_ring_write(r, (int)lane, buf, len)) == -EAGAIN)
				relax(&spins);
		}
		if (err) {
			fprintf(stderr, "producer: record %llu: %s\n", (unsigned long long)n,
				ml_strerror(err));
			run->res->producer_err = err;
			break;
		}
		sent[lane]++;
	}
	memcpy(run->res->sent, sent, sizeof(sent));
	atomic_store_explicit(&run->res->producer_done, 1, memory_order_release);
	return run->res->producer_err;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Read until every record arrived. `peer` is the producer's pid in process
 * mode, so that a producer that died is noticed instead of waited for.
 */
static int consume(struct run *run, ml_ring *r, pid_t peer)
{
	uint64_t got[ML_PRIO_COUNT] = { 0 }, total = 0;
	static char buf[1 << 16];
	double last_progress = now_s();
	unsigned spins = 0;

	while (total < run->records) {
		const void *p = buf;
		int prio = -1, len;
		bool peeked = total & 1;

		len = peeked ? ml_ring_peek(r, &prio, &p) : ml_ring_read(r, &prio, buf, sizeof(buf));
		if (len == -EAGAIN) {
			relax(&spins);
			if (spins % 4096 == 0) {
				if (now_s() - last_progress > STALL_SECONDS) {
					fprintf(stderr, "consumer: no progress for %d s at record %llu\n",
						STALL_SECONDS, (unsigned long long)total);
					return -1;
				}
				if (peer > 0 && waitpid(peer, NULL, WNOHANG) == peer) {
					fprintf(stderr, "consumer: producer exited early\n");
					return -1;
				}
				if (atomic_load_explicit(&run->res->producer_done, memory_order_acquire) &&
				    run->res->producer_err)
					return -1;
			}
			continue;
		}
		if (len < 0) {
			fprintf(stderr, "consumer: record %llu: %s\n", (unsigned long long)total,
				ml_strerror(len));
			return -1;
		}
		if (prio < ML_PRIO_CRITICAL || prio > ML_PRIO_LOW) {
			fprintf(stderr, "consumer: bad priority %d\n", prio);
			return -1;
		}
		/* A single lane keeps the global order: the stream tells the lane. */
		if (run->lanes == 1 && (unsigned)prio != rec_lane(run, total)) {
			fprintf(stderr, "consumer: record %llu has priority %d, sent %u\n",
				(unsigned long long)total, prio, rec_lane(run, total));
			return -1;
		}
		if ((uint32_t)len != rec_len(run, (unsigned)prio, got[prio]) ||
		    tu_check_seq(p, (uint32_t)len, (unsigned)prio, got[prio])) {
			fprintf(stderr, "consumer: lane %d record %llu: wrong length or bytes (len %d)\n",
				prio, (unsigned long long)got[prio], len);
			return -1;
		}
		if (peeked && ml_ring_release(r)) {
			fprintf(stderr, "consumer: release failed\n");
			return -1;
		}
		got[prio]++;
		total++;
		spins = 0;
		if (total % 65536 == 0)
			last_progress = now_s();
	}
	/* Everything sent arrived, and nothing more is in the ring. */
	while (!atomic_load_explicit(&run->res->producer_done, memory_order_acquire))
		sched_yield();
	if (memcmp(got, run->res->sent, sizeof(got)) || run->res->producer_err) {
		fprintf(stderr, "consumer: counts differ from the producer's\n");
		return -1;
	}
	if (ml_ring_read(r, NULL, buf, sizeof(buf)) != -EAGAIN) {
		fprintf(stderr, "consumer: ring not empty after the last record\n");
		return -1;
	}
	return 0;
}

static void *producer_thread(void *arg)
{
	struct run *run = arg;
	ml_ring *r;

	if (ml_ring_attach(&r, run->mem, run->mem_len)) {
		run->res->producer_err = -1;
		atomic_store(&run->res->producer_done, 1);
		return NULL;
	}
	produce(run, r);
	ml_ring_free(r);
	return NULL;
}

static int run_threads(struct run *run, ml_ring *r)
{
	pthread_t t;
	int err;

	if (pthread_create(&t, NULL, producer_thread, run))
		return -1;
	err = consume(run, r, 0);
	if (err) /* do not wait for a producer that may be stuck on a full ring */
		return err;
	pthread_join(t, NULL);
	return 0;
}

static int run_procs(struct run *run, ml_ring *r)
{
	int status, err;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		ml_ring *pr;

		if (ml_ring_attach(&pr, run->mem, run->mem_len))
			_exit(2);
		_exit(produce(run, pr) ? 1 : 0);
	}
	err = consume(run, r, pid);
	if (err)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		fprintf(stderr, "producer process failed (status %#x)\n", status);
		err = -1;
	}
	return err;
}

static int run_one(const char *mode, unsigned lanes, uint32_t urgent_every, uint64_t records)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = lanes == 3 ? ML_RING_LANES3 : 0,
				  .urgent_every = urgent_every };
	struct run run = { .lanes = lanes, .records = records, .seed = (uint64_t)time(NULL) };
	struct ml_ring_info info;
	double t0, dt;
	ml_ring *r;
	int err;

	run.mem_len = ml_ring_mem_size(RING_CAP) + 4096;
	run.mem = tu_shared_map(run.mem_len);
	if (!run.mem)
		return -1;
	run.res = (struct shared_result *)((char *)run.mem + ml_ring_mem_size(RING_CAP));
	err = ml_ring_init(&r, run.mem, ml_ring_mem_size(RING_CAP), RING_CAP, &o);
	if (err) {
		fprintf(stderr, "init: %s\n", ml_strerror(err));
		return -1;
	}
	run.mem_len = ml_ring_mem_size(RING_CAP);
	ml_ring_info(r, &info);
	run.max_msg = info.max_msg;

	t0 = now_s();
	err = strcmp(mode, "threads") ? run_procs(&run, r) : run_threads(&run, r);
	dt = now_s() - t0;
	printf("stress-ring %s lanes=%u urgent_every=%u seed=%llu: %llu records in %.2f s (%.2f M/s): %s\n",
	       mode, lanes, urgent_every, (unsigned long long)run.seed, (unsigned long long)records, dt,
	       records / dt / 1e6, err ? "FAILED" : "ok");
	ml_ring_free(r);
	tu_shared_unmap(run.mem, ml_ring_mem_size(RING_CAP) + 4096);
	return err;
}

int main(int argc, char **argv)
{
	const char *env = getenv("ML_STRESS_RECORDS");
	uint64_t records = 10000000;

	if (argc < 2 || (strcmp(argv[1], "threads") && strcmp(argv[1], "procs"))) {
		fprintf(stderr, "usage: %s threads|procs [records]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		records = strtoull(argv[2], NULL, 0);
	else if (env)
		records = strtoull(env, NULL, 0);
	if (run_one(argv[1], 3, 0, records) || run_one(argv[1], 3, 16, records / 4 + 1) ||
	    run_one(argv[1], 1, 0, records / 4 + 1))
		return 1;
	return 0;
}

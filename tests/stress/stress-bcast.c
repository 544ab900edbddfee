// SPDX-License-Identifier: MIT
/*
 * Stress: one writer and four readers on a broadcast ring, as threads or as
 * processes (fork over a MAP_SHARED mapping), records of random sizes and
 * priorities whose bytes are a function of (lane, seq), so a torn or
 * misplaced record fails its check.
 *
 *   stress-bcast threads|procs [records]   (default 4 million per policy,
 *                                            or $ML_STRESS_RECORDS)
 *
 * RELIABLE: every reader gets every record exactly, in order, per lane.
 * LOSSY, with reader 3 deliberately slow: every record delivered is whole,
 * sequence numbers only go up, and per lane delivered + lost == written.
 * In process mode a lossy reader also reads in place: a view must check
 * out whenever ml__bcast_done() says it was not overwritten.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bcast.h"
#include "testutil.h"

#define CAP (1u << 16)
#define READERS 4
#define STALL_SECONDS 60

struct reader_res {
	uint64_t got[ML_PRIO_COUNT];
	uint64_t lost[ML_PRIO_COUNT];
	uint64_t stale;
	int err;
};

struct shared {
	alignas(128) struct ml__bcast_cursor cur[READERS];
	_Atomic int writer_done;
	_Atomic int abort_run;
	int writer_err;
	uint64_t sent[ML_PRIO_COUNT];
	struct reader_res res[READERS];
};

struct run {
	unsigned policy;
	bool procs;
	uint64_t records;
	uint64_t seed;
	uint32_t max_msg;
	struct shared *sh;
	struct ml__bcast_writer *w;
	struct ml__bcast_reader *r[READERS];
	struct ml__bcast_cursor *ptr[READERS];
	unsigned id; /* a reader thread's */
};

static unsigned rec_lane(const struct run *run, uint64_t n)
{
	return (unsigned)(tu_mix(run->seed ^ (n * 0x9e3779b97f4a7c15ull)) % ML_PRIO_COUNT);
}

/* Mostly small, 1 in 16 up to max_msg. */
static uint32_t rec_len(const struct run *run, unsigned lane, uint64_t seq)
{
	uint64_t h = tu_mix(run->seed + ((uint64_t)lane << 56) + seq);

	if ((h & 15) == 0)
		return (uint32_t)((h >> 8) % (run->max_msg + 1));
	return (uint32_t)((h >> 8) % 200);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void relax(unsigned *spins)
{
	if (++*spins % 128 == 0)
		sched_yield();
}

static int write_all(struct run *run)
{
	uint64_t sent[ML_PRIO_COUNT] = { 0 };
	static char buf[8192];
	int err = 0;

	for (uint64_t n = 0; n < run->records && !err; n++) {
		unsigned lane = rec_lane(run, n), spins = 0;
		uint64_t seq = sent[lane];
		uint32_t len = rec_len(run, lane, seq);

		for (;;) {
			if (n & 1) {
				void *p;

				err = ml__bcast_reserve(run->w, (int)lane, len, &p);
				if (!err) {
					tu_fill_seq(p, len, lane, seq);
					err = ml__bcast_commit(run->w, len);
				}
			} else {
				tu_fill_seq(buf, len, lane, seq);
				err = ml__bcast_send(run->w, (int)lane, buf, len);
			}
			if (err != -EAGAIN || atomic_load(&run->sh->abort_run))
				break;
			relax(&spins);
		}
		if (err) {
			fprintf(stderr, "writer: record %llu: error %d\n", (unsigned long long)n, err);
			break;
		}
		sent[lane]++;
	}
	if (ml__bcast_bad_cursors(run->w)) {
		fprintf(stderr, "writer: honest cursors reported bad\n");
		err = -1;
	}
	memcpy(run->sh->sent, sent, sizeof(sent));
	run->sh->writer_err = err;
	atomic_store_explicit(&run->sh->writer_done, 1, memory_order_release);
	return err;
}

/* One record in place (process mode, lossy reader 1): checked, then done(). */
static int read_view(struct run *run, struct ml__bcast_reader *r, struct reader_res *res,
		     int *prio, uint64_t *seq)
{
	const void *p;
	int len = ml__bcast_peek(r, prio, seq, &p);
	int bad, err;

	if (len < 0)
		return len;
	bad = (uint32_t)len != rec_len(run, (unsigned)*prio, *seq) ||
	      tu_check_seq(p, (uint32_t)len, (unsigned)*prio, *seq);
	err = ml__bcast_done(r);
	if (err == -ESTALE) {
		res->stale++;
		return -ESTALE;
	}
	if (err)
		return err;
	return bad ? -EILSEQ : len;
}

static int read_all(struct run *run, unsigned id)
{
	struct ml__bcast_reader *r = run->r[id];
	struct reader_res *res = &run->sh->res[id];
	uint64_t next[ML_PRIO_COUNT] = { 0 }, total = 0;
	bool lossy = run->policy == ML__BCAST_LOSSY;
	bool slow = lossy && id == 3, view = run->procs && (!lossy || id == 1);
	static _Thread_local char buf[8192];
	double last = now_s();
	unsigned spins = 0;

	for (;;) {
		bool done = atomic_load_explicit(&run->sh->writer_done, memory_order_acquire);
		uint64_t seq = 0;
		int prio = -1, len;

		if (view && (total & 1))
			len = read_view(run, r, res, &prio, &seq);
		else
			len = ml__bcast_read(r, &prio, &seq, buf, sizeof(buf));
		if (len == -ESTALE)
			continue;
		if (len == -EAGAIN) {
			/* Nothing, looked at after the writer was done: drained. */
			if (done)
				break;
			relax(&spins);
			if (spins % 8192 == 0 && (atomic_load(&run->sh->abort_run) ||
						  now_s() - last > STALL_SECONDS)) {
				fprintf(stderr, "reader %u: stalled or aborted at %llu\n", id,
					(unsigned long long)total);
				return -1;
			}
			continue;
		}
		if (len < 0 || prio < 0 || prio >= ML_PRIO_COUNT) {
			fprintf(stderr, "reader %u: error %d at record %llu\n", id, len,
				(unsigned long long)total);
			return -1;
		}
		if (!(view && (total & 1)) && ((uint32_t)len != rec_len(run, (unsigned)prio, seq) ||
					      tu_check_seq(buf, (uint32_t)len, (unsigned)prio, seq))) {
			fprintf(stderr, "reader %u: lane %d seq %llu torn (len %d)\n", id, prio,
				(unsigned long long)seq, len);
			return -1;
		}
		/* Reliable: exactly the next one; lossy: never back, never twice. */
		if (lossy ? seq < next[prio] : seq != next[prio]) {
			fprintf(stderr, "reader %u: lane %d seq %llu, expected %s%llu\n", id, prio,
				(unsigned long long)seq, lossy ? ">= " : "",
				(unsigned long long)next[prio]);
			return -1;
		}
		next[prio] = seq + 1;
		res->got[prio]++;
		total++;
		spins = 0;
		if (total % 4096 == 0)
			last = now_s();
		if (slow && total % 64 == 0)
			nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
	}
	ml__bcast_lost(r, res->lost);
	for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
		if (res->got[l] + res->lost[l] != run->sh->sent[l] || (!lossy && res->lost[l])) {
			fprintf(stderr, "reader %u: lane %u: got %llu + lost %llu != sent %llu\n", id,
				l, (unsigned long long)res->got[l], (unsigned long long)res->lost[l],
				(unsigned long long)run->sh->sent[l]);
			return -1;
		}
	}
	return 0;
}

static void *reader_thread(void *arg)
{
	struct run *run = arg;

	run->sh->res[run->id].err = read_all(run, run->id);
	return NULL;
}

static int run_threads(struct run *run)
{
	struct run rr[READERS];
	pthread_t t[READERS];
	int err = 0;

	for (unsigned i = 0; i < READERS; i++) {
		rr[i] = *run;
		rr[i].id = i;
		if (pthread_create(&t[i], NULL, reader_thread, &rr[i]))
			return -1;
	}
	if (write_all(run))
		atomic_store(&run->sh->abort_run, 1);
	for (unsigned i = 0; i < READERS; i++) {
		pthread_join(t[i], NULL);
		err |= run->sh->res[i].err;
	}
	return err || run->sh->writer_err ? -1 : 0;
}

static int run_procs(struct run *run)
{
	pid_t pid[READERS + 1];
	int err = 0, status;

	for (unsigned i = 0; i <= READERS; i++) {
		pid[i] = fork();
		if (pid[i] < 0)
			return -1;
		if (pid[i] == 0)
			_exit(i < READERS ? (read_all(run, i) ? 1 : 0) : (write_all(run) ? 1 : 0));
	}
	/* The writer first: if it failed, the readers are told to give up. */
	if (waitpid(pid[READERS], &status, 0) != pid[READERS] || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "writer process failed (status %#x)\n", status);
		atomic_store(&run->sh->abort_run, 1);
		err = -1;
	}
	for (unsigned i = 0; i < READERS; i++) {
		if (waitpid(pid[i], &status, 0) != pid[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "reader process %u failed (status %#x)\n", i, status);
			err = -1;
		}
	}
	return err;
}

static int run_one(const char *mode, unsigned policy, uint64_t records)
{
	struct run run = { .policy = policy, .procs = strcmp(mode, "threads") != 0,
			   .records = records, .seed = (uint64_t)time(NULL) ^ policy };
	size_t len = ml__bcast_mem_size(CAP);
	void *mem = tu_shared_map(len);
	uint64_t lost = 0, got = 0, stale = 0;
	double t0, dt;
	int err;

	run.sh = tu_shared_map(sizeof(*run.sh));
	if (!mem || !run.sh)
		return -1;
	memset(run.sh, 0, sizeof(*run.sh));
	err = ml__bcast_init(&run.w, mem, len, CAP, policy, 0);
	if (err)
		return -1;
	run.max_msg = (uint32_t)((CAP * 20 / 100) & ~7u) / 4;
	if (run.max_msg > 4096)
		run.max_msg = 4096;
	/* Attached before the first record: every loss is counted. */
	for (unsigned i = 0; i < READERS; i++) {
		run.ptr[i] = &run.sh->cur[i];
		if (ml__bcast_attach(&run.r[i], mem, len, 0, &run.sh->cur[i]))
			return -1;
	}
	if (policy == ML__BCAST_RELIABLE)
		ml__bcast_set_cursors(run.w, (1u << READERS) - 1, run.ptr);

	t0 = now_s();
	err = run.procs ? run_procs(&run) : run_threads(&run);
	dt = now_s() - t0;
	for (unsigned i = 0; i < READERS; i++) {
		for (unsigned l = 0; l < ML_PRIO_COUNT; l++) {
			lost += run.sh->res[i].lost[l];
			got += run.sh->res[i].got[l];
		}
		stale += run.sh->res[i].stale;
	}
	printf("stress-bcast %s %s seed=%llu: %llu records to %d readers in %.2f s: "
	       "delivered %llu, lost %llu (stale views %llu): %s\n",
	       mode, policy == ML__BCAST_LOSSY ? "lossy" : "reliable",
	       (unsigned long long)run.seed, (unsigned long long)records, READERS, dt,
	       (unsigned long long)got, (unsigned long long)lost, (unsigned long long)stale,
	       err ? "FAILED" : "ok");
	for (unsigned i = 0; i < READERS; i++)
		ml__bcast_reader_free(run.r[i]);
	ml__bcast_writer_free(run.w);
	tu_shared_unmap(run.sh, sizeof(*run.sh));
	tu_shared_unmap(mem, len);
	return err;
}

int main(int argc, char **argv)
{
	const char *env = getenv("ML_STRESS_RECORDS");
	uint64_t records = 4000000;

	if (argc < 2 || (strcmp(argv[1], "threads") && strcmp(argv[1], "procs"))) {
		fprintf(stderr, "usage: %s threads|procs [records]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		records = strtoull(argv[2], NULL, 0);
	else if (env)
		records = strtoull(env, NULL, 0);
	if (run_one(argv[1], ML__BCAST_RELIABLE, records) ||
	    run_one(argv[1], ML__BCAST_LOSSY, records))
		return 1;
	return 0;
}

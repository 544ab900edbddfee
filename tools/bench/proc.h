/* SPDX-License-Identifier: MIT */
/*
 * Two pinned processes over one MAP_SHARED anonymous mapping.
 *
 * proc_pair_init() picks two distinct CPUs from the allowed set and maps a
 * shared area: a control block (start barrier, abort flag, one result area
 * per role) and `user_len` bytes for the benchmark, 4096-aligned.
 * proc_pair_run() forks role 0 and role 1, pins each to its CPU, touches
 * every page of the mapping, and calls fn(ctx, arg) in each child; the
 * children's results come back through proc_result(). A child that fails or
 * hangs raises the abort flag, which the other one sees in its spin loops.
 */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"

#define PROC_LINE 128
#define PROC_RESULT_MAX 8192

struct proc_ctl {
	alignas(PROC_LINE) _Atomic uint32_t bar_count;
	_Atomic uint32_t bar_gen;
	alignas(PROC_LINE) _Atomic uint32_t abort;
	alignas(PROC_LINE) unsigned char result[2][PROC_RESULT_MAX];
};

/* What a child gets: its role, where it runs, the shared areas. */
struct proc_ctx {
	struct proc_ctl *ctl;
	int role;           /* 0 or 1 */
	int cpu;            /* -1: not pinned */
	bool yield;         /* only one CPU: yield instead of spinning */
	void *user;         /* benchmark part of the shared mapping */
	size_t user_len;
	void *result;       /* this role's PROC_RESULT_MAX bytes */
};

struct proc_pair {
	int cpu[2];         /* -1 when not pinned */
	bool pinned;
	int ncpus;          /* CPUs in our affinity mask */
	void *map;
	size_t map_len;
	struct proc_ctl *ctl;
	void *user;
	size_t user_len;
};

typedef int (*proc_role_fn)(const struct proc_ctx *ctx, void *arg);

/* 0 or a negative errno. */
int proc_pair_init(struct proc_pair *pp, size_t user_len);
void proc_pair_destroy(struct proc_pair *pp);

/*
 * Run fn in two children. Returns 0 when both exited with status 0, -1
 * otherwise (a message naming the cause goes to *why when not NULL).
 * Result areas are zeroed before the children start.
 */
int proc_pair_run(struct proc_pair *pp, proc_role_fn fn, void *arg,
		  unsigned timeout_s, const char **why);

void *proc_result(const struct proc_pair *pp, int role);

/*
 * How much CPU a child really got: wall time, its CPU time and its
 * involuntary context switches, so that a measurement disturbed by other
 * work on the same CPUs can say so. Costs two system calls; take marks only
 * outside timed loops.
 */
struct proc_usage {
	uint64_t wall_ns;
	uint64_t cpu_ns;
	uint64_t preempted;  /* involuntary context switches */
};

void proc_usage_mark(struct proc_usage *u);

/* acc += (end - start) */
void proc_usage_add(struct proc_usage *acc, const struct proc_usage *start,
		    const struct proc_usage *end);

/* Both roles meet here; false if the run was aborted meanwhile. */
bool proc_barrier(const struct proc_ctx *ctx);

/* Tell the other role to give up (after a verification failure). */
void proc_abort(const struct proc_ctx *ctx);

static inline bool proc_aborted(const struct proc_ctx *ctx)
{
	return atomic_load_explicit(&ctx->ctl->abort, memory_order_relaxed) != 0;
}

static inline void proc_relax(const struct proc_ctx *ctx)
{
	if (ctx->yield)
		sched_yield();
	else
		cpu_relax();
}

/*
 * Busy-wait helper: call spin_wait() after each failed attempt; it relaxes
 * and returns false once the run has been aborted (checked every 1024 steps
 * so the poll loop stays tight).
 */
struct spin {
	const struct proc_ctx *ctx;
	uint32_t n;
};

static inline bool spin_wait(struct spin *s)
{
	proc_relax(s->ctx);
	if ((++s->n & 1023u) == 0 && proc_aborted(s->ctx))
		return false;
	return true;
}

#endif /* BENCH_PROC_H */

/* SPDX-License-Identifier: MIT */
/*
 * A row of N + 1 forked processes (one lead, N members) over one
 * MAP_SHARED | MAP_ANONYMOUS area made by the parent, which only watches:
 * what fanout and pubsub share.
 *
 * The area starts with a struct mp_ctl: the abort flag, a barrier for all
 * N + 1, and one slot per process (progress, state, first failure). A child
 * that fails raises the abort flag; one that makes no progress for
 * MP_STALL_NS is aborted by the parent, which kills what is left after
 * MP_GRACE_NS and reaps everything (mp_run).
 */
#ifndef BENCH_MPROC_H
#define BENCH_MPROC_H

#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"

#define MP_LINE 128
#define MP_MAX_PROCS 33u              /* ML_CHAN_MAX_CLIENTS + 1, fanout's most */
#define MP_STALL_NS 10000000000ull    /* no progress for this long: abort */
#define MP_GRACE_NS 2000000000ull     /* after an abort, before SIGKILL */

enum { MP_RUNNING, MP_OK, MP_FAILED };

/* One per process; [0] the lead, [i] member i. */
struct mp_slot {
	alignas(MP_LINE) _Atomic uint64_t progress; /* bumped as messages move */
	alignas(MP_LINE) _Atomic uint32_t state;    /* MP_* */
	uint32_t secondary;   /* err came after the row was aborted: not the cause */
	char err[160];
};

struct mp_ctl {
	alignas(MP_LINE) _Atomic uint32_t abort;
	alignas(MP_LINE) _Atomic uint32_t bar_count;
	_Atomic uint32_t bar_gen;
	struct mp_slot slot[MP_MAX_PROCS];
};

/* The row's names for its processes: "daemon" and "client 3". */
struct mp_names {
	const char *lead, *member;
};

/* What one child knows of the row. */
struct mp_self {
	struct mp_ctl *ctl;
	struct mp_slot *slot;
	const struct mp_names *names;
	unsigned idx;         /* 0: the lead; 1..n: a member */
	unsigned parties;     /* n + 1 */
};

static inline bool mp_aborted(const struct mp_self *s)
{
	return atomic_load_explicit(&s->ctl->abort, memory_order_relaxed) != 0;
}

/* Only its process writes it: a plain add, no locked instruction. */
static inline void mp_bump(const struct mp_self *s)
{
	atomic_store_explicit(&s->slot->progress,
			      atomic_load_explicit(&s->slot->progress, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Keeps the first failure ("client 3: ...") and aborts the row; -1. */
int mp_fail(const struct mp_self *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * All N + 1 meet here; false if the row was aborted. Waiting counts as
 * progress: the one that keeps the others waiting is the one that stalls.
 */
bool mp_barrier(const struct mp_self *s);

void mp_nap(long ns);

/* This process's CPU time, all threads. */
uint64_t mp_cpu_ns(void);

/*
 * Pacing: clock_nanosleep to an absolute deadline (timer slack set to 1 ns
 * in every child), not a spin on the clock: with up to 17 processes on 2
 * CPUs a spinning sender would take a CPU from the receivers it measures.
 * A sender that is more than a period late starts its schedule again from
 * now rather than catching up with a burst.
 */
void pace_until(uint64_t t);
uint64_t pace_next(uint64_t next, uint64_t period);

/* One-way latency of a message stamped at sent_at, saturated. */
static inline uint32_t lat_of(uint64_t sent_at)
{
	uint64_t dt = now_ns() - sent_at;

	return dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
}

/* "daemon", "client 3": for messages (not reentrant). */
const char *mp_who(const struct mp_names *n, unsigned i);

/* In a new child: die with the parent, sleep to the nanosecond. */
void mp_child_start(void);

/* A child's end: its state, the abort flag on failure, _exit. */
_Noreturn void mp_child_exit(const struct mp_self *s, int rc);

/*
 * The shared area: the benchmark's control block (which starts with a
 * struct mp_ctl), page-aligned, then procs slices of `slice` latency
 * samples. Zeroed. 0 or a negative errno.
 */
struct mp_area {
	void *map;
	size_t len;
	void *ctl;
	uint32_t *lat;
	size_t slice;
};

int mp_area_init(struct mp_area *A, size_t ctl_size, unsigned procs, size_t slice);

/* The parent's side of one row. */
struct mp_row {
	struct mp_ctl *ctl;   /* zeroed by the caller, with the rest of its block */
	const struct mp_names *names;
	unsigned procs;       /* n + 1 */
	uint64_t max_ns;      /* the whole row: abort after this long */
	void (*child)(void *arg, unsigned idx);   /* runs child idx; never returns */
	void (*reaped)(void *arg, int pid);       /* optional: a child is gone */
	void *arg;
	char *err;            /* the cause of a failure: first one wins */
	size_t err_len;
};

/* Fork, watch, reap; 0 when every child finished its part. */
int mp_run(const struct mp_row *m);

/*
 * A list option (--clients, --payload): its entries to out[], their count to
 * *n; 0, or 2 (the exit code) after saying "memlink-bench <bench>: bad --<opt>".
 */
int mp_opt_list(const char *bench, const char *opt, const char *arg, unsigned *out,
		unsigned *n, unsigned max, unsigned lo, unsigned hi);

#endif /* BENCH_MPROC_H */

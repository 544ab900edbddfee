/* SPDX-License-Identifier: MIT */
/*
 * memlink-bench pubsub: one publisher process, N subscriber processes
 * (issue 18's benchmark). Every transport is one struct ps_ops in the
 * table of bench_pubsub.c, so that memlink's topics (ml_pub_*, ml_sub_*)
 * join as one more entry.
 *
 * For each row the harness forks the publisher (index 0) and then the N
 * subscribers (1..N), each of which calls, in this order:
 *
 *   publisher                      subscriber
 *   pub_open   create, bind        (waits until pub_open returned)
 *                                  sub_open   connect, subscribe; returns
 *                                             once the publisher may see it
 *   pub_ready  until all N are
 *              attached
 *              ---- every process meets at a barrier ----
 *   pub_send   one message to      sub_recv   one message
 *              all, many times
 *              ---- barriers between the phases, at the end ----
 *   pub_close                      sub_close
 *
 * Every call returns 0 (sub_recv: the message's length) or a negative
 * errno. pub_send waits for room as the row's mode says (a full queue
 * never drops); sub_recv waits as the mode says (spin or sleep) for at
 * most about 100 ms, then gives -EAGAIN, so that the harness can look at
 * the abort flag; both give -ECANCELED once ps_aborted(). A process that
 * fails still calls its close (if its open set priv); one that was killed
 * does not, which is what reaped() is for. Nothing is
 * shared between the processes but what the transport itself opens:
 * a transport keeps its per-process state in ps_end.priv.
 */
#ifndef BENCH_PUBSUB_H
#define BENCH_PUBSUB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ps_mode { PS_BUSY = 0, PS_BLOCKING = 1 };
#define PS_MODE_BIT(m) (1u << (m))

/* One row, set up by the parent and inherited by every child. */
struct ps_row {
	const struct ps_ops *ops;
	enum ps_mode mode;
	unsigned n;               /* subscribers */
	size_t payload;           /* bytes of every message */
	char name[64];            /* unique per row: channel, service, file */
};

/* One process's end of a row. */
struct ps_end {
	const struct ps_row *r;
	unsigned idx;             /* 0: the publisher; 1..n: a subscriber */
	_Atomic uint32_t *abort;  /* non-zero: give up */
	char *backend;            /* publisher: may name its backend here */
	size_t backend_len;
	void *priv;               /* the transport's own state */
};

struct ps_ops {
	const char *name;         /* JSON "transport" */
	unsigned modes;           /* PS_MODE_BIT()s it runs in */
	/* NULL when usable, else why not. */
	const char *(*skip)(void);
	/* Once per run in the parent, around all its rows; may be NULL. */
	int (*start)(char *why, size_t len);
	void (*stop)(void);
	/* In the parent after the row (files it left); may be NULL. */
	void (*cleanup)(const struct ps_row *r);
	/* In the parent, for each child once reaped, however it ended; may be NULL. */
	void (*reaped)(const struct ps_row *r, int pid);
	int (*pub_open)(struct ps_end *e);
	int (*pub_ready)(struct ps_end *e);
	int (*pub_send)(struct ps_end *e, const void *buf, size_t len);
	void (*pub_close)(struct ps_end *e);
	int (*sub_open)(struct ps_end *e);
	int (*sub_recv)(struct ps_end *e, void *buf, size_t cap);
	void (*sub_close)(struct ps_end *e);
};

static inline bool ps_aborted(const struct ps_end *e)
{
	return atomic_load_explicit(e->abort, memory_order_relaxed) != 0;
}

/* memlink-bench pubsub (argv[0] is the subcommand). */
int bench_pubsub_main(int argc, char **argv);
void bench_pubsub_usage(FILE *f);

#endif

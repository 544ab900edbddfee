// SPDX-License-Identifier: GPL-2.0
/*
 * Wait and wake on 32-bit words of a region, and the news that a peer is
 * gone: the creator's departure fails every waiter with EPIPE, a client's
 * departure is counted and shown to the creator through poll().
 */
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>

#include "memlink_internal.h"

struct ml_waiter {
	struct list_head node;		/* on region->waiters, under its lock */
	struct task_struct *task;
	u64 offset;
	int result;			/* ML_WAITING until a waker decides */
};

#define ML_WAITING 1

/* Sleep until woken, signalled or past `expires` (0: no timeout). */
static int ml_sleep(struct ml_waiter *w, ktime_t expires)
{
	int ret = 0;

	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (READ_ONCE(w->result) != ML_WAITING)
			break;
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (!expires) {
			schedule();
		} else if (!schedule_hrtimeout_range(&expires, current->timer_slack_ns,
						     HRTIMER_MODE_ABS)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	__set_current_state(TASK_RUNNING);
	return ret;
}

int ml_wait(struct ml_file *mf, const struct memlink_wait *wt)
{
	struct ml_region *r = mf->region;
	struct ml_waiter w = { .task = current, .offset = wt->offset, .result = ML_WAITING };
	ktime_t expires = 0;
	int ret;

	if (wt->flags || wt->__reserved || !ml_region_offset_ok(r, wt->offset))
		return -EINVAL;
	if (wt->timeout_ns)
		expires = ktime_add_safe(ktime_get(),
					 ns_to_ktime(min_t(u64, wt->timeout_ns, KTIME_MAX)));

	spin_lock(&r->lock);
	mf->seen_wakes = r->wakes;
	if (!r->creator_alive) {
		spin_unlock(&r->lock);
		return -EPIPE;
	}
	if (ml_region_word(r, wt->offset) != wt->expected) {
		spin_unlock(&r->lock);
		return -EAGAIN;
	}
	list_add_tail(&w.node, &r->waiters);
	r->nwaiters++;
	spin_unlock(&r->lock);

	ret = ml_sleep(&w, expires);

	/* A waker that already chose us wins over a timeout or a signal. */
	spin_lock(&r->lock);
	if (w.result == ML_WAITING) {
		list_del(&w.node);
		r->nwaiters--;
	} else {
		ret = w.result;
	}
	spin_unlock(&r->lock);
	return ret;
}

/* Hand `result` to a waiter; the caller holds r->lock. */
static void ml_wake_one(struct ml_region *r, struct ml_waiter *w, int result)
{
	list_del(&w->node);
	r->nwaiters--;
	WRITE_ONCE(w->result, result);
	/* Under r->lock: the waiter cannot return and vanish before this. */
	wake_up_process(w->task);
}

int ml_wake(struct ml_file *mf, const struct memlink_wake *wk)
{
	struct ml_region *r = mf->region;
	struct ml_waiter *w, *tmp;
	int woken = 0;

	if (wk->flags || wk->__reserved || !ml_region_offset_ok(r, wk->offset))
		return -EINVAL;
	if (mf->rdonly)
		return -EACCES;

	spin_lock(&r->lock);
	r->wakes++;
	list_for_each_entry_safe(w, tmp, &r->waiters, node) {
		if (woken >= wk->count || woken == INT_MAX)
			break;
		if (w->offset == wk->offset) {
			ml_wake_one(r, w, 0);
			woken++;
		}
	}
	spin_unlock(&r->lock);
	wake_up_interruptible_poll(&r->poll_wq, EPOLLIN | EPOLLRDNORM);
	return woken;
}

void ml_wake_creator_gone(struct ml_region *r)
{
	struct ml_waiter *w, *tmp;

	spin_lock(&r->lock);
	r->attached--;
	r->creator_alive = false;
	list_for_each_entry_safe(w, tmp, &r->waiters, node)
		ml_wake_one(r, w, -EPIPE);
	spin_unlock(&r->lock);
	wake_up_interruptible_poll(&r->poll_wq, EPOLLHUP);
}

void ml_wake_client_gone(struct ml_region *r)
{
	spin_lock(&r->lock);
	r->attached--;
	r->detached++;
	spin_unlock(&r->lock);
	wake_up_interruptible_poll(&r->poll_wq, EPOLLPRI);
}

__poll_t ml_poll_mask(struct ml_file *mf)
{
	struct ml_region *r = mf->region;
	__poll_t mask = 0;

	spin_lock(&r->lock);
	if (r->wakes != mf->seen_wakes)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (mf->creator && r->detached != mf->seen_detached)
		mask |= EPOLLPRI;
	if (!mf->creator && !r->creator_alive)
		mask |= EPOLLHUP;
	spin_unlock(&r->lock);
	return mask;
}

u64 ml_read_wakes(struct ml_file *mf)
{
	struct ml_region *r = mf->region;
	u64 wakes;

	spin_lock(&r->lock);
	wakes = r->wakes;
	mf->seen_wakes = wakes;
	mf->seen_detached = r->detached;
	spin_unlock(&r->lock);
	return wakes;
}

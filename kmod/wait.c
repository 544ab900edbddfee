// SPDX-License-Identifier: GPL-2.0
/*
 * Wait and wake on 32-bit words of a region, and the news that a peer is
 * gone: the creator's departure fails every waiter with EPIPE, a client's
 * departure is counted and shown to the creator through poll().
 *
 * A wait ends as a futex wait does. A signal makes it return
 * -ERESTARTSYS, so the kernel restarts it when no handler runs (stop and
 * continue, a ptrace attach) or the handler has SA_RESTART, and returns
 * EINTR otherwise; the freezer does not end it at all (TASK_FREEZABLE).
 * futex keeps a relative timeout across the restart in a restart block
 * holding the absolute deadline. A module cannot use one: restart_syscall()
 * would call into the module after its file, and the module itself, may be
 * gone, and a restart that never comes (a handler ran) would leak the
 * reference that prevents that. So the deadline goes where the restarted
 * call reads it, the caller's struct: the relative timeout is rewritten as
 * the absolute CLOCK_MONOTONIC deadline, with MEMLINK_WAIT_ABSTIME.
 */
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "memlink_internal.h"

struct ml_waiter {
	struct list_head node;		/* on region->waiters, under its lock */
	struct task_struct *task;
	u64 offset;
	bool creator;			/* waits through the creator's file */
	int result;			/* ML_WAITING until a waker decides */
};

#define ML_WAITING 1
#define ML_WAIT_FLAGS (MEMLINK_WAIT_ABSTIME | MEMLINK_WAIT_REALTIME)

struct ml_deadline {
	ktime_t expires;		/* absolute, on `clock`; 0: none */
	clockid_t clock;
	bool relative;			/* the caller gave a timeout, not a deadline */
};

static void ml_deadline_init(struct ml_deadline *d, const struct memlink_wait *wt)
{
	ktime_t t = ns_to_ktime(min_t(u64, wt->timeout_ns, KTIME_MAX));

	d->clock = wt->flags & MEMLINK_WAIT_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC;
	d->relative = !(wt->flags & MEMLINK_WAIT_ABSTIME);
	if (!d->relative)
		/* 0 is a deadline long past, not "none": a non-blocking check. */
		d->expires = t ? t : 1;
	else if (wt->timeout_ns)
		d->expires = ktime_add_safe(ktime_get(), t);
	else
		d->expires = 0;
}

/* Sleep until woken, signalled or past the deadline. */
static int ml_sleep(struct ml_waiter *w, struct ml_deadline *d)
{
	int ret = 0;

	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE | TASK_FREEZABLE);
		if (READ_ONCE(w->result) != ML_WAITING)
			break;
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		if (!d->expires) {
			schedule();
		} else if (!schedule_hrtimeout_range_clock(&d->expires, current->timer_slack_ns,
							   HRTIMER_MODE_ABS, d->clock)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	__set_current_state(TASK_RUNNING);
	return ret;
}

/*
 * A signal ended the sleep of a relative timed wait: rewrite it as its
 * absolute deadline, so that the restarted (or retried) call keeps it.
 */
static int ml_wait_interrupted(const struct memlink_wait *wt, const struct ml_deadline *d,
			       void __user *uarg)
{
	struct memlink_wait __user *uw = uarg;

	if (!d->relative || !d->expires)
		return -ERESTARTSYS;
	if (put_user((u64)ktime_to_ns(d->expires), &uw->timeout_ns) ||
	    put_user(wt->flags | MEMLINK_WAIT_ABSTIME, &uw->flags))
		return -EFAULT;
	return -ERESTARTSYS;
}

int ml_wait(struct ml_file *mf, const struct memlink_wait *wt, void __user *uarg)
{
	struct ml_region *r = mf->region;
	struct ml_waiter w = { .task = current, .offset = wt->offset, .creator = mf->creator,
			       .result = ML_WAITING };
	struct ml_deadline d;
	int ret;

	if (wt->flags & ~ML_WAIT_FLAGS || wt->__reserved || !ml_region_offset_ok(r, wt->offset))
		return -EINVAL;
	if ((wt->flags & MEMLINK_WAIT_REALTIME) && !(wt->flags & MEMLINK_WAIT_ABSTIME))
		return -EINVAL;
	ml_deadline_init(&d, wt);

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

	ret = ml_sleep(&w, &d);

	/* A waker that already chose us wins over a timeout or a signal. */
	spin_lock(&r->lock);
	if (w.result == ML_WAITING) {
		list_del(&w.node);
		r->nwaiters--;
	} else {
		ret = w.result;
	}
	spin_unlock(&r->lock);
	if (ret == -ERESTARTSYS)
		ret = ml_wait_interrupted(wt, &d, uarg);
	return ret;
}

/* Wake every file's poll() sleepers with `mask`; the caller holds r->lock. */
static void ml_poll_wake(struct ml_region *r, __poll_t mask)
{
	struct ml_file *f;

	lockdep_assert_held(&r->lock);
	list_for_each_entry(f, &r->files, node)
		if (wq_has_sleeper(&f->poll_wq))
			wake_up_interruptible_poll(&f->poll_wq, mask);
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

	bool bump = wk->flags & MEMLINK_WAKE_BUMP;

	if (wk->flags & ~MEMLINK_WAKE_BUMP || wk->__reserved || !ml_region_offset_ok(r, wk->offset))
		return -EINVAL;
	/* A bell may be bumped by any file bound to it, read-only ones too. */
	if (bump && (!(r->cflags & MEMLINK_CREATE_BELL) || wk->offset != r->bell_offset))
		return -EINVAL;
	if (mf->rdonly && !bump)
		return -EACCES;

	spin_lock(&r->lock);
	if (bump)
		ml_region_bump(r, wk->offset);
	r->wakes++;
	list_for_each_entry_safe(w, tmp, &r->waiters, node) {
		if (woken >= wk->count || woken == INT_MAX)
			break;
		if (w->offset == wk->offset) {
			ml_wake_one(r, w, 0);
			woken++;
		}
	}
	ml_poll_wake(r, EPOLLIN | EPOLLRDNORM);
	spin_unlock(&r->lock);
	return woken;
}

void ml_wake_creator_gone(struct ml_region *r, struct ml_file *mf)
{
	struct ml_waiter *w, *tmp;

	spin_lock(&r->lock);
	list_del(&mf->node);
	r->attached--;
	r->creator_alive = false;
	list_for_each_entry_safe(w, tmp, &r->waiters, node)
		ml_wake_one(r, w, -EPIPE);
	ml_poll_wake(r, EPOLLHUP);
	spin_unlock(&r->lock);
}

void ml_wake_client_gone(struct ml_region *r, struct ml_file *mf)
{
	struct ml_waiter *w, *tmp;

	spin_lock(&r->lock);
	list_del(&mf->node);
	r->attached--;
	r->detached++;
	/* The creator's sleepers re-check their word and see EPOLLPRI: a client went. */
	list_for_each_entry_safe(w, tmp, &r->waiters, node)
		if (w->creator)
			ml_wake_one(r, w, 0);
	ml_poll_wake(r, EPOLLPRI);
	spin_unlock(&r->lock);
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

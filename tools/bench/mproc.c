// SPDX-License-Identifier: MIT
/* A row of N + 1 processes: see mproc.h. */
#include "mproc.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "payload.h"

int mp_fail(const struct mp_self *s, const char *fmt, ...)
{
	struct mp_slot *me = s->slot;
	va_list ap;

	/* The first failure is the cause; a later one in the same process keeps it. */
	if (!me->err[0]) {
		int off = snprintf(me->err, sizeof(me->err), "%s: ", mp_who(s->names, s->idx));

		me->secondary = mp_aborted(s);
		va_start(ap, fmt);
		vsnprintf(me->err + off, sizeof(me->err) - (size_t)off, fmt, ap);
		va_end(ap);
	}
	atomic_store_explicit(&s->ctl->abort, 1, memory_order_relaxed);
	return -1;
}

void mp_nap(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

bool mp_barrier(const struct mp_self *s)
{
	struct mp_ctl *c = s->ctl;
	uint32_t gen = atomic_load_explicit(&c->bar_gen, memory_order_acquire);

	if (atomic_fetch_add_explicit(&c->bar_count, 1, memory_order_acq_rel) == s->parties - 1) {
		atomic_store_explicit(&c->bar_count, 0, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->bar_gen, 1, memory_order_release);
		return !mp_aborted(s);
	}
	for (unsigned n = 0; atomic_load_explicit(&c->bar_gen, memory_order_acquire) == gen; n++) {
		if (mp_aborted(s))
			return false;
		mp_bump(s);
		/* More processes than CPUs: let the late ones run. */
		if (n < 200)
			sched_yield();
		else
			mp_nap(20000);
	}
	return !mp_aborted(s);
}

uint64_t mp_cpu_ns(void)
{
	struct timespec ts = { 0, 0 };

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void pace_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000ull), (long)(t % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

uint64_t pace_next(uint64_t next, uint64_t period)
{
	uint64_t now = now_ns();

	next += period;
	return now > next + period ? now : next;
}

const char *mp_who(const struct mp_names *n, unsigned i)
{
	static char b[24];

	if (!i)
		return n->lead;
	snprintf(b, sizeof(b), "%s %u", n->member, i);
	return b;
}

void mp_child_start(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The parent died before the prctl: nobody would reap or kill us. */
	if (getppid() == 1)
		_exit(1);
	prctl(PR_SET_TIMERSLACK, 1UL);
}

_Noreturn void mp_child_exit(const struct mp_self *s, int rc)
{
	atomic_store(&s->slot->state, rc ? MP_FAILED : MP_OK);
	if (rc)
		atomic_store(&s->ctl->abort, 1);
	_exit(rc ? 1 : 0);
}

int mp_area_init(struct mp_area *A, size_t ctl_size, unsigned procs, size_t slice)
{
	size_t ctl_len = (ctl_size + 4095) / 4096 * 4096;
	void *m;

	A->slice = slice;
	A->len = ctl_len + procs * slice * sizeof(uint32_t);
	m = mmap(NULL, A->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	memset(m, 0, A->len);
	A->map = m;
	A->ctl = m;
	A->lat = (uint32_t *)((unsigned char *)m + ctl_len);
	return 0;
}

static void row_err(const struct mp_row *m, const char *fmt, ...)
{
	va_list ap;

	if (m->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(m->err, m->err_len, fmt, ap);
	va_end(ap);
}

int mp_run(const struct mp_row *m)
{
	struct mp_ctl *c = m->ctl;
	pid_t pid[MP_MAX_PROCS];
	bool done[MP_MAX_PROCS] = { false };
	uint64_t seen[MP_MAX_PROCS], seen_at[MP_MAX_PROCS], start = now_ns(), abort_at = 0;
	unsigned procs = m->procs, live = 0;
	bool killed = false;  /* we sent SIGKILL */
	int ret = 0;

	fflush(NULL);
	for (unsigned i = 0; i < procs; i++) {
		pid[i] = fork();
		if (pid[i] == 0)
			m->child(m->arg, i);
		if (pid[i] < 0) {
			row_err(m, "fork: %s", strerror(errno));
			atomic_store(&c->abort, 1);
			done[i] = true;
			ret = -1;
			continue;
		}
		live++;
		seen[i] = 0;
		seen_at[i] = start;
	}
	while (live) {
		uint64_t now;
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);

		if (w > 0) {
			for (unsigned i = 0; i < procs; i++) {
				if (pid[i] != w || done[i])
					continue;
				done[i] = true;
				live--;
				if (m->reaped)
					m->reaped(m->arg, (int)w);
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					/* Killed, not by us: the cause. An exit says why in err. */
					if (WIFSIGNALED(st) && !killed && !c->slot[i].err[0])
						row_err(m, "%s killed by signal %d",
							mp_who(m->names, i), WTERMSIG(st));
					atomic_store(&c->abort, 1);
					ret = -1;
				}
			}
			continue;
		}
		if (w < 0 && errno != EINTR)
			break;
		mp_nap(5000000);
		now = now_ns();
		for (unsigned i = 0; i < procs; i++) {
			uint64_t p;

			if (done[i] || pid[i] <= 0)
				continue;
			p = atomic_load_explicit(&c->slot[i].progress, memory_order_relaxed);
			if (p != seen[i]) {
				seen[i] = p;
				seen_at[i] = now;
			} else if (now - seen_at[i] > MP_STALL_NS && !abort_at) {
				row_err(m, "%s made no progress for 10 s", mp_who(m->names, i));
				atomic_store(&c->abort, 1);
			}
		}
		if (!abort_at && now - start > m->max_ns) {
			row_err(m, "row took over %llu s",
				(unsigned long long)(m->max_ns / 1000000000ull));
			atomic_store(&c->abort, 1);
		}
		if (atomic_load(&c->abort) && !abort_at) {
			abort_at = now;
			ret = -1;
		}
		/* Aborted: the children had their grace; the rest are killed (once: SIGKILL). */
		if (abort_at && now - abort_at > MP_GRACE_NS && !killed) {
			killed = true;
			for (unsigned i = 0; i < procs; i++)
				if (!done[i] && pid[i] > 0)
					kill(pid[i], SIGKILL);
		}
	}
	if (atomic_load(&c->abort)) {
		ret = -1;
		/* The cause: a failure before the abort, else any that was said. */
		for (int pass = 0; pass < 2; pass++)
			for (unsigned i = 0; i < procs; i++)
				if (c->slot[i].err[0] && (pass || !c->slot[i].secondary))
					row_err(m, "%s", c->slot[i].err);
		row_err(m, "aborted");
	}
	return ret;
}

/* A size list (payload_parse_sizes) with every entry in [lo, hi]; its count or -1. */
static int parse_list(const char *s, unsigned *out, unsigned max, unsigned lo, unsigned hi)
{
	int n = payload_parse_sizes(s, out, max, hi);

	for (int i = 0; i < n; i++)
		if (out[i] < lo)
			return -1;
	return n;
}

int mp_opt_list(const char *bench, const char *opt, const char *arg, unsigned *out,
		unsigned *n, unsigned max, unsigned lo, unsigned hi)
{
	int k = parse_list(arg, out, max, lo, hi);

	if (k < 0) {
		fprintf(stderr, "memlink-bench %s: bad --%s '%s' (%u..%u)\n", bench, opt, arg, lo,
			hi);
		return 2;
	}
	*n = (unsigned)k;
	return 0;
}

// SPDX-License-Identifier: MIT
/* Fork, pin and synchronise the two processes of a benchmark run. */
#include "proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096u

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

/* The first two CPUs of our affinity mask; returns how many there are. */
static int pick_cpus(int cpu[2])
{
	cpu_set_t set;
	int n = 0;

	cpu[0] = cpu[1] = -1;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (n < 2)
			cpu[n] = i;
		n++;
	}
	return n;
}

int proc_pair_init(struct proc_pair *pp, size_t user_len)
{
	size_t ctl_len = round_up(sizeof(struct proc_ctl), PAGE);
	void *map;

	memset(pp, 0, sizeof(*pp));
	pp->ncpus = pick_cpus(pp->cpu);
	pp->pinned = pp->ncpus >= 2;
	if (!pp->pinned)
		pp->cpu[0] = pp->cpu[1] = -1;
	pp->user_len = round_up(user_len ? user_len : 1, PAGE);
	pp->map_len = ctl_len + pp->user_len;
	map = mmap(NULL, pp->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	/* Allocate every page now, not in the middle of a measurement. */
	memset(map, 0, pp->map_len);
	pp->map = map;
	pp->ctl = map;
	pp->user = (unsigned char *)map + ctl_len;
	return 0;
}

void proc_pair_destroy(struct proc_pair *pp)
{
	if (pp->map)
		munmap(pp->map, pp->map_len);
	pp->map = NULL;
}

void *proc_result(const struct proc_pair *pp, int role)
{
	return pp->ctl->result[role];
}

bool proc_barrier(const struct proc_ctx *ctx)
{
	struct proc_ctl *c = ctx->ctl;
	uint32_t gen = atomic_load_explicit(&c->bar_gen, memory_order_acquire);
	struct spin s = { .ctx = ctx };

	if (atomic_fetch_add_explicit(&c->bar_count, 1, memory_order_acq_rel) == 1) {
		atomic_store_explicit(&c->bar_count, 0, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->bar_gen, 1, memory_order_release);
		return !proc_aborted(ctx);
	}
	while (atomic_load_explicit(&c->bar_gen, memory_order_acquire) == gen)
		if (!spin_wait(&s))
			return false;
	return !proc_aborted(ctx);
}

void proc_usage_mark(struct proc_usage *u)
{
	struct timespec ts = { 0, 0 };
	struct rusage ru;

	u->wall_ns = now_ns();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	u->cpu_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	memset(&ru, 0, sizeof(ru));
	getrusage(RUSAGE_SELF, &ru);
	u->preempted = (uint64_t)ru.ru_nivcsw;
}

void proc_usage_add(struct proc_usage *acc, const struct proc_usage *start,
		    const struct proc_usage *end)
{
	acc->wall_ns += end->wall_ns - start->wall_ns;
	acc->cpu_ns += end->cpu_ns - start->cpu_ns;
	acc->preempted += end->preempted - start->preempted;
}

void proc_abort(const struct proc_ctx *ctx)
{
	atomic_store_explicit(&ctx->ctl->abort, 1, memory_order_relaxed);
}

static void touch_pages(const struct proc_pair *pp)
{
	volatile unsigned char *p = pp->map;

	/* Shared-mapping PTEs are not copied by fork: fault them in up front. */
	for (size_t off = 0; off < pp->map_len; off += PAGE)
		(void)p[off];
}

static void child(struct proc_pair *pp, int role, proc_role_fn fn, void *arg)
{
	struct proc_ctx ctx = {
		.ctl = pp->ctl,
		.role = role,
		.cpu = pp->cpu[role],
		.yield = !pp->pinned,
		.user = pp->user,
		.user_len = pp->user_len,
		.result = pp->ctl->result[role],
	};
	int rc;

	signal(SIGALRM, SIG_DFL);
	if (pp->pinned) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(pp->cpu[role], &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			ctx.cpu = -1;
			ctx.yield = true;
		}
	}
	touch_pages(pp);
	rc = fn(&ctx, arg);
	if (rc)
		proc_abort(&ctx);
	_exit(rc ? 1 : 0);
}

static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

int proc_pair_run(struct proc_pair *pp, proc_role_fn fn, void *arg,
		  unsigned timeout_s, const char **why)
{
	struct sigaction sa, old;
	pid_t pid[2] = { -1, -1 };
	bool done[2] = { false, false };
	int live = 0, grace = 0, ret = 0;
	const char *cause = NULL;

	atomic_store(&pp->ctl->bar_count, 0);
	atomic_store(&pp->ctl->bar_gen, 0);
	atomic_store(&pp->ctl->abort, 0);
	memset(pp->ctl->result, 0, sizeof(pp->ctl->result));
	fflush(NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: waitpid must return */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	alarm_fired = 0;

	for (int role = 0; role < 2; role++) {
		pid[role] = fork();
		if (pid[role] == 0)
			child(pp, role, fn, arg);
		if (pid[role] < 0) {
			cause = "fork failed";
			atomic_store(&pp->ctl->abort, 1);
			done[role] = true;
			ret = -1;
			continue;
		}
		live++;
	}
	alarm(timeout_s ? timeout_s : 1);
	while (live > 0) {
		int st;
		pid_t w = waitpid(-1, &st, 0);

		if (w < 0) {
			if (errno != EINTR)
				break;
			if (!alarm_fired)
				continue;
			alarm_fired = 0;
			atomic_store(&pp->ctl->abort, 1);
			if (!cause)
				cause = "timed out";
			ret = -1;
			if (grace++ == 0) {
				alarm(2); /* let the children notice the abort flag */
				continue;
			}
			for (int role = 0; role < 2; role++)
				if (!done[role] && pid[role] > 0)
					kill(pid[role], SIGKILL);
			continue;
		}
		for (int role = 0; role < 2; role++) {
			if (w != pid[role] || done[role])
				continue;
			done[role] = true;
			live--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				atomic_store(&pp->ctl->abort, 1);
				if (!cause)
					cause = WIFSIGNALED(st) ? "child killed by a signal" : "child failed";
				ret = -1;
			}
		}
	}
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	if (why)
		*why = cause;
	return ret;
}

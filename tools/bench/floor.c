// SPDX-License-Identifier: MIT
/* The floor: one cache line bounced between two cores; see floor.h. */
#include "floor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

_Static_assert(sizeof(struct floor_result) <= PROC_RESULT_MAX, "result fits");

void floor_init(void *mem)
{
	atomic_store((_Atomic uint64_t *)mem, 0);
}

int floor_attach(struct floor_end *f, void *mem, const struct proc_ctx *ctx)
{
	memset(f, 0, sizeof(*f));
	if ((uintptr_t)mem % FLOOR_BYTES)
		return -EINVAL;
	f->word = mem;
	f->spin.ctx = ctx;
	f->seen = atomic_load_explicit(f->word, memory_order_acquire);
	return 0;
}

/* Spin until the word moves off `was`; its new value, or 0 when aborted. */
static inline uint64_t await_change(struct floor_end *f, uint64_t was)
{
	uint64_t v;

	while ((v = atomic_load_explicit(f->word, memory_order_acquire)) == was)
		if (!spin_wait(&f->spin))
			return 0;
	return v;
}

int floor_client(struct floor_end *f, uint64_t n, uint32_t *samples)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t req = f->seen + 1, t0 = now_ns(), got, dt;

		atomic_store_explicit(f->word, req, memory_order_release);
		got = await_change(f, req);
		dt = now_ns() - t0;
		if (!got)
			return -ECANCELED;
		if (got != req + 1)
			return -EBADMSG;
		f->seen = got;
		f->count++;
		if (samples)
			samples[i] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
	}
	return 0;
}

int floor_server(struct floor_end *f, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t req = await_change(f, f->seen);

		if (!req)
			return -ECANCELED;
		if (req != f->seen + 1)
			return -EBADMSG;
		f->seen = req + 1;
		atomic_store_explicit(f->word, f->seen, memory_order_release);
		f->count++;
	}
	return 0;
}

double floor_ratio(uint64_t p50, uint64_t floor_p50)
{
	return p50 && floor_p50 ? (double)p50 / (double)floor_p50 : -1;
}

/* ---- a row of its own ---------------------------------------------------- */

struct floor_job {
	uint64_t warm, n;
};

static int floor_fail(const struct proc_ctx *ctx, struct floor_result *res, const char *what,
		      int err)
{
	if (!res->err[0])
		snprintf(res->err, sizeof(res->err), "%s: %s (%llu round trips in order)",
			 ctx->role ? "server" : "client", what,
			 (unsigned long long)res->round_trips);
	proc_abort(ctx);
	return err ? err : -1;
}

static int floor_role(const struct proc_ctx *ctx, void *arg)
{
	const struct floor_job *j = arg;
	struct floor_result *res = ctx->result;
	uint32_t *samples = NULL;
	struct proc_usage u0, u1;
	struct floor_end f;
	int err;

	if (ctx->user_len < FLOOR_BYTES || floor_attach(&f, ctx->user, ctx))
		return floor_fail(ctx, res, "no room for the line", -EINVAL);
	/* Touched now, so that no page fault lands in a sample. */
	if (ctx->role == 0) {
		if (!(samples = malloc((j->n ? j->n : 1) * sizeof(*samples))))
			return floor_fail(ctx, res, "out of memory", -ENOMEM);
		memset(samples, 0, (j->n ? j->n : 1) * sizeof(*samples));
	}
	if (!proc_barrier(ctx))
		err = -ECANCELED;
	else if (ctx->role == 1)
		err = floor_server(&f, j->warm + j->n);
	else if (!(err = floor_client(&f, j->warm, NULL))) {
		proc_usage_mark(&u0);
		err = floor_client(&f, j->n, samples);
		proc_usage_mark(&u1);
		proc_usage_add(&res->use, &u0, &u1);
	}
	res->round_trips = f.count;
	if (err) {
		free(samples);
		return floor_fail(ctx, res, err == -EBADMSG ? "a hop out of order" :
				  "aborted by the other side", err);
	}
	if (ctx->role == 0)
		stats_summarize(samples, j->n, &res->lat);
	free(samples);
	res->verified = f.count == j->warm + j->n;
	return res->verified ? 0 : floor_fail(ctx, res, "round trips missing", -EBADMSG);
}

int floor_run(struct proc_pair *pp, uint64_t warm, uint64_t n, unsigned timeout_s,
	      struct floor_result *out)
{
	struct floor_job j = { .warm = warm, .n = n };
	const struct floor_result *c, *s;
	const char *why = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!n || pp->user_len < FLOOR_BYTES) {
		snprintf(out->err, sizeof(out->err), "floor: no samples or no shared line");
		return -EINVAL;
	}
	floor_init(pp->user);
	rc = proc_pair_run(pp, floor_role, &j, timeout_s, &why);
	c = proc_result(pp, 0);
	s = proc_result(pp, 1);
	*out = *c;
	out->round_trips = n;
	out->verified = !rc && c->verified && s->verified && c->lat.n == n;
	if (!out->verified)
		snprintf(out->err, sizeof(out->err), "%s", c->err[0] ? c->err : s->err[0] ? s->err :
			 why ? why : "not verified");
	return out->verified ? 0 : -EBADMSG;
}

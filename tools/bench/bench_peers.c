// SPDX-License-Identifier: MIT
/*
 * memlink-bench peers: memlink beside what users would otherwise pick, in
 * one run, through one harness (peer.h), with the same payloads (payload.h)
 * and the same checks:
 *
 *   memlink        channels in busy, adaptive and blocking mode
 *   baseline-ring  two fixed-slot SPSC rings, busy
 *   uds            Unix stream socket pair     uds-seqpacket  SOCK_SEQPACKET
 *   pipe           a pipe each way             tcp            loopback, NODELAY
 *   posix-mq       POSIX message queues        eventfd        ring + eventfd
 *   futex          ring + a raw shared futex word per direction (the floor
 *                  for futex sleepers: memlink's blocking mode is held to it)
 *   boost-mq       Boost.Interprocess message_queue (busy, blocking)
 *   zmq            ZeroMQ ipc:// PAIR (busy, blocking)
 *   iceoryx        iceoryx 2.0 C binding: busy-poll (busy), waitset (blocking)
 *   floor          round trips only, not a transport: one cache line bounced
 *                  between the two CPUs (floor.h), the least a cross-core
 *                  round trip can cost; first in each payload's group, run
 *                  like a busy row; every round trip's p50 over it is its
 *                  "x floor" (floor_ratio)
 *
 * Tests, all between processes:
 *   rtt    round trips, two processes pinned to two CPUs; the client times
 *          each with CLOCK_MONOTONIC after a warm-up; every sample is kept
 *          and sorted (p50, p99, p99.9, max); 0, 64, 1024, 4096, 65536 B
 *   tput   one-way stream, pinned; the receiver times all but the first
 *          tenth; also memlink's three-lane mix (2/5/3 Critical/High/Low)
 *   mpsc   4 and 8 producers into one consumer, 64 B, not pinned
 *   idle   CPU used by a receiver that waits 1 s for a message
 * Round-trip and stream rows run 3 times (--quick: once), fresh processes
 * and transport each time, and report the run with the median p50, the
 * median rate: here one run swings by a third against the next, with where
 * the hypervisor puts the two vCPUs.
 * Every message is checked by its receiver (sequence number at both ends,
 * checksum of the rest; per producer and per lane where there are several);
 * a row that failed says verified:false and the bench exits non-zero.
 * Optional peers (boost-mq, zmq, iceoryx) are built when their packages
 * are there (make bench installs them) and listed as skipped otherwise.
 */
#include "bench_peers.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "floor.h"
#include "payload.h"
#include "peer.h"
#include "proc.h"
#include "stats.h"

#define MAX_PAYLOADS 8
#define MAX_RESULTS 512
#define ROW_TIMEOUT_S 120
#define MAX_ROUNDS 9
#define SHM_BYTES (6u << 20)

static const struct peer_ops *const peers[] = {
	&peer_memlink, &peer_memlink_plain, &peer_baseline, &peer_uds, &peer_uds_seqpacket, &peer_pipe, &peer_tcp,
	&peer_posix_mq, &peer_eventfd, &peer_futex, &peer_boost_mq, &peer_zmq, &peer_iceoryx,
};
#define NPEERS (sizeof(peers) / sizeof(peers[0]))

/* The floor's rows name it like a transport; it has no send or recv. */
static const struct peer_ops floor_ops = {
	.name = "floor",
	.modes = PEER_MODE_BIT(PEER_BUSY),
	.max_payload = 65536,
};

static const char *const mode_name[] = { "busy", "adaptive", "blocking" };

enum test { T_RTT, T_TPUT, T_MPSC, T_IDLE };
static const char *const test_name[] = { "rtt", "tput", "mpsc", "idle" };

/* Priorities of the three-lane mix, 2/5/3 Critical/High/Low, interleaved. */
static const int mix_prio[10] = { 1, 0, 1, 2, 1, 2, 1, 0, 1, 2 };

struct opts {
	bool json, quick;
	unsigned npayloads;
	unsigned payload[MAX_PAYLOADS];
	uint64_t samples;     /* busy round trips per row; sleeping: a tenth */
	uint64_t msgs;        /* streamed messages per row; kernel paths: a tenth */
	uint64_t bytes;       /* at most this many payload bytes per stream row */
	uint64_t idle_ns;
	unsigned rounds;      /* runs per row, the median reported */
	const char *plot;
	const char *only;     /* comma-separated transports, or NULL */
};

/* What the parent hands both children of a row (copied by fork). */
struct job {
	enum test test;
	const struct peer_ops *p;
	struct peer_row row;
	bool mix;
	uint64_t n, warm;
	uint64_t idle_ns;
	const char *plot;
	unsigned round;          /* which run of the row */
};

/* What a child leaves in its result area. */
struct child_res {
	bool verified;
	char err[200];
	struct lat_summary lat;
	double msgs_per_s;
	double cpu;          /* idle: CPU time / wall time of the receiver */
	uint64_t n;
	uint64_t t_warm;     /* tput sender: when it sent message `warm` */
};

/* One row, as reported. */
struct result {
	enum test test;
	const struct peer_ops *p;
	enum peer_mode mode;
	bool mix;
	unsigned nprod;
	size_t payload;
	bool pinned;
	int cpu[2];
	const char *skipped;   /* static, or points into skip_buf */
	char skip_buf[96];
	bool verified;
	char err[200];
	struct lat_summary lat;
	uint64_t msgs;
	double msgs_per_s;     /* streams: the median of `rounds` runs */
	unsigned rounds;
	double cpu_pct;
	double ratio_p50, ratio_tput;
	double floor_ratio;    /* round trips: p50 / the floor's of the payload */
};

static struct result results[MAX_RESULTS];
static unsigned nresults;
static unsigned rows_total, rows_done;
static uint64_t run_t0, last_progress;
static char start_why[NPEERS][160];
static bool started[NPEERS];

/* ---- the two roles of a row ------------------------------------------- */

/*
 * A role that failed after opening still closes its end, so that brokers
 * (iox-roudi) see its ports go; open_pair() says which end that is.
 */
static struct peer_end *opened_end;
static const struct peer_ops *opened_ops;

static int fail(const struct proc_ctx *ctx, struct child_res *res, const char *what, long v)
{
	if (!res->err[0])
		snprintf(res->err, sizeof(res->err), "%s (%ld)", what, v);
	proc_abort(ctx);
	return 1;
}

/* Open both ends (server first), then ready() both; 0 or the error. */
static int open_pair(const struct proc_ctx *ctx, struct job *j, struct peer_end *e,
		     struct child_res *res)
{
	int err = 0;

	memset(e, 0, sizeof(*e));
	e->row = &j->row;
	e->role = ctx->role;
	e->abort = (uint32_t *)&ctx->ctl->abort;
	opened_end = e;
	opened_ops = j->p;
	if (ctx->role == 1 && (err = j->p->open(e)))
		return fail(ctx, res, "open", err);
	if (!proc_barrier(ctx))
		return fail(ctx, res, "peer did not open", 0);
	if (ctx->role == 0 && (err = j->p->open(e)))
		return fail(ctx, res, "open", err);
	if (j->p->ready && (err = j->p->ready(e)))
		return fail(ctx, res, "ready", err);
	if (!proc_barrier(ctx))
		return fail(ctx, res, "peer not ready", 0);
	return 0;
}

/* A row's CDF file: the chart's name, or (round >= 0) one run's. */
static void cdf_path(char *path, size_t len, const struct job *j, int round)
{
	if (round < 0)
		snprintf(path, len, "%s/cdf-%s-%s.dat", j->plot, j->p->name,
			 mode_name[j->row.mode]);
	else
		snprintf(path, len, "%s/cdf-%s-%s.%d.tmp", j->plot, j->p->name,
			 mode_name[j->row.mode], round);
}

/* The sorted samples of a 64-byte row as a CDF, for --plot. */
static void write_cdf(const struct job *j, const uint32_t *s, uint64_t n)
{
	static const double tail[] = { 0.99, 0.995, 0.999, 0.9995, 0.9999 };
	char path[512];
	FILE *f;

	cdf_path(path, sizeof(path), j, (int)j->round);
	f = fopen(path, "w");
	if (!f || !n) {
		if (f)
			fclose(f);
		return;
	}
	fprintf(f, "# round trip ns, fraction at or below (%llu samples)\n", (unsigned long long)n);
	for (unsigned k = 0; k < 1000; k++) {
		uint64_t i = n * k / 1000;

		fprintf(f, "%u %.6f\n", s[i], (double)(i + 1) / (double)n);
	}
	for (unsigned k = 0; k < sizeof(tail) / sizeof(tail[0]); k++) {
		uint64_t i = (uint64_t)((double)n * tail[k]);

		if (i < n)
			fprintf(f, "%u %.6f\n", s[i], (double)(i + 1) / (double)n);
	}
	fprintf(f, "%u 1.0\n", s[n - 1]);
	fclose(f);
}


/*
 * A role that fails closes its end after its body returned: so the ends
 * are static, one per process (each role runs in a child of its own).
 */
static void close_opened(void)
{
	if (opened_end && opened_ops && opened_end->priv)
		opened_ops->close(opened_end);
	opened_end = NULL;
}

static int rtt_role_body(const struct proc_ctx *ctx, void *arg);
static int tput_role_body(const struct proc_ctx *ctx, void *arg);
static int idle_role_body(const struct proc_ctx *ctx, void *arg);

static int rtt_role(const struct proc_ctx *ctx, void *arg)
{
	int rc = rtt_role_body(ctx, arg);

	if (rc)
		close_opened();
	return rc;
}

static int tput_role(const struct proc_ctx *ctx, void *arg)
{
	int rc = tput_role_body(ctx, arg);

	if (rc)
		close_opened();
	return rc;
}

static int idle_role(const struct proc_ctx *ctx, void *arg)
{
	int rc = idle_role_body(ctx, arg);

	if (rc)
		close_opened();
	return rc;
}

static int rtt_role_body(const struct proc_ctx *ctx, void *arg)
{
	struct job *j = arg;
	struct child_res *res = ctx->result;
	size_t cap = j->row.payload + 64;
	unsigned char *rbuf = malloc(cap);
	uint32_t *samples = NULL;
	static struct peer_end e;
	struct payload pl;
	int err;

	if (!rbuf || payload_init(&pl, j->row.payload))
		return fail(ctx, res, "malloc", 0);
	if (ctx->role == 0 && !(samples = malloc(sizeof(*samples) * (j->n ? j->n : 1))))
		return fail(ctx, res, "malloc", 0);
	if (open_pair(ctx, j, &e, res))
		return 1;
	for (uint64_t i = 0; i < j->n + j->warm; i++) {
		uint64_t t0 = now_ns();
		int n;

		if (ctx->role == 0 && (err = j->p->send(&e, 1, payload_stamp(&pl, i), j->row.payload)))
			return fail(ctx, res, "send", err);
		n = j->p->recv(&e, NULL, rbuf, cap);
		if (n < 0)
			return fail(ctx, res, "recv", n);
		if (!payload_check(&pl, rbuf, (size_t)n, i))
			return fail(ctx, res, "message does not check out", (long)i);
		if (ctx->role == 1 && (err = j->p->send(&e, 1, rbuf, (size_t)n)))
			return fail(ctx, res, "echo", err);
		if (ctx->role == 0 && i >= j->warm) {
			uint64_t dt = now_ns() - t0;

			samples[i - j->warm] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		}
	}
	if (ctx->role == 0) {
		stats_summarize(samples, j->n, &res->lat);
		if (j->plot && j->row.payload == 64)
			write_cdf(j, samples, j->n);
		free(samples);
	}
	res->n = j->n;
	res->verified = true;
	proc_barrier(ctx);
	j->p->close(&e);
	payload_free(&pl);
	free(rbuf);
	return 0;
}

/* Lane of message i in the mix, and the next message after i in that lane. */
static uint64_t mix_next(uint64_t i, int lane)
{
	do
		i++;
	while (mix_prio[i % 10] != lane);
	return i;
}

static int tput_role_body(const struct proc_ctx *ctx, void *arg)
{
	struct job *j = arg;
	struct child_res *res = ctx->result;
	size_t cap = j->row.payload + 64;
	unsigned char *rbuf = malloc(cap);
	uint64_t next[3], t_end = 0;
	static struct peer_end e;
	struct payload pl;
	int err;

	if (!rbuf || payload_init(&pl, j->row.payload))
		return fail(ctx, res, "malloc", 0);
	if (open_pair(ctx, j, &e, res))
		return 1;
	for (int l = 0; l < 3; l++)
		next[l] = mix_prio[0] == l ? 0 : mix_next(0, l);
	for (uint64_t i = 0; i < j->n; i++) {
		int prio = j->mix ? mix_prio[i % 10] : 1, got = -1;
		uint64_t seq = i;
		int n;

		if (ctx->role == 0) {
			if (i == j->warm)
				res->t_warm = now_ns();
			if ((err = j->p->send(&e, prio, payload_stamp(&pl, i), j->row.payload)))
				return fail(ctx, res, "send", err);
			if (i + 1 == j->n && j->p->flush && (err = j->p->flush(&e)))
				return fail(ctx, res, "flush", err);
			continue;
		}
		n = j->p->recv(&e, &got, rbuf, cap);
		if (n < 0)
			return fail(ctx, res, "recv", n);
		if (j->mix) {
			/* In order within each lane; lanes interleave as read. */
			if (got < 0 || got > 2)
				return fail(ctx, res, "bad priority", got);
			seq = next[got];
			next[got] = mix_next(seq, got);
		}
		if (!payload_check(&pl, rbuf, (size_t)n, seq))
			return fail(ctx, res, "message does not check out", (long)i);
	}
	t_end = now_ns();
	res->verified = true;
	proc_barrier(ctx);
	/*
	 * From the sender's message `warm` to the receiver's last: a stream
	 * that fits in the transport's buffers cannot look faster than it was
	 * sent.
	 */
	if (ctx->role == 1) {
		const struct child_res *tx = (const struct child_res *)ctx->ctl->result[0];
		uint64_t dt = t_end > tx->t_warm ? t_end - tx->t_warm : 0;

		res->msgs_per_s = dt ? (double)(j->n - j->warm) * 1e9 / (double)dt : 0;
		res->n = j->n;
	}
	j->p->close(&e);
	payload_free(&pl);
	free(rbuf);
	return 0;
}

/* The receiver waits idle_ns for one message; what CPU does it use? */
static int idle_role_body(const struct proc_ctx *ctx, void *arg)
{
	struct job *j = arg;
	struct child_res *res = ctx->result;
	size_t cap = j->row.payload + 64;
	unsigned char *rbuf = malloc(cap);
	struct proc_usage u0, u1, acc = { 0, 0, 0 };
	static struct peer_end e;
	struct payload pl;
	int err, n;

	if (!rbuf || payload_init(&pl, j->row.payload))
		return fail(ctx, res, "malloc", 0);
	if (open_pair(ctx, j, &e, res))
		return 1;
	if (ctx->role == 0) {
		struct timespec ts = { (time_t)(j->idle_ns / 1000000000u),
				       (long)(j->idle_ns % 1000000000u) };

		nanosleep(&ts, NULL);
		if ((err = j->p->send(&e, 1, payload_stamp(&pl, 0), j->row.payload)))
			return fail(ctx, res, "send", err);
		if (j->p->flush && (err = j->p->flush(&e)))
			return fail(ctx, res, "flush", err);
	} else {
		proc_usage_mark(&u0);
		n = j->p->recv(&e, NULL, rbuf, cap);
		proc_usage_mark(&u1);
		if (n < 0)
			return fail(ctx, res, "recv", n);
		if (!payload_check(&pl, rbuf, (size_t)n, 0))
			return fail(ctx, res, "message does not check out", 0);
		proc_usage_add(&acc, &u0, &u1);
		res->cpu = acc.wall_ns ? (double)acc.cpu_ns / (double)acc.wall_ns : 0;
	}
	res->n = 1;
	res->verified = true;
	proc_barrier(ctx);
	j->p->close(&e);
	payload_free(&pl);
	free(rbuf);
	return 0;
}

/* ---- several producers -------------------------------------------------- */

struct mpsc_ctl {
	_Atomic uint32_t consumer_open, opened, go, done;
};

static bool wait_flag(_Atomic uint32_t *f, uint32_t want, const struct peer_end *e)
{
	while (atomic_load(f) < want) {
		if (peer_aborted(e))
			return false;
		usleep(100);
	}
	return true;
}

static int mpsc_consumer(struct job *j, struct mpsc_ctl *mc, struct proc_ctl *ctl)
{
	struct child_res *res = (struct child_res *)ctl->result[1];
	struct proc_ctx ctx = { .ctl = ctl, .role = 1, .cpu = -1 };
	uint64_t next[PEER_MAX_PRODUCERS] = { 0 }, total = j->n * j->row.nprod, t0 = 0;
	size_t cap = j->row.payload + 64;
	unsigned char *rbuf = malloc(cap);
	static struct peer_end e;
	struct payload pl;
	int err;

	e = (struct peer_end){ .row = &j->row, .role = 1, .abort = (uint32_t *)&ctl->abort };
	if (!rbuf || payload_init(&pl, j->row.payload))
		return fail(&ctx, res, "malloc", 0);
	opened_end = &e;
	opened_ops = j->p;
	if ((err = j->p->open(&e)))
		return fail(&ctx, res, "open", err);
	atomic_store(&mc->consumer_open, 1);
	if (!wait_flag(&mc->opened, j->row.nprod, &e))
		return fail(&ctx, res, "producers did not open", 0);
	if (j->p->ready && (err = j->p->ready(&e)))
		return fail(&ctx, res, "ready", err);
	/* Counted from the start: producers begin at `go`, all of them. */
	t0 = now_ns();
	atomic_store(&mc->go, 1);
	for (uint64_t i = 0; i < total; i++) {
		int n = j->p->recv(&e, NULL, rbuf, cap);
		uint64_t seq, who;

		if (n < 0)
			return fail(&ctx, res, "recv", n);
		seq = payload_seq(rbuf, (size_t)n);
		who = seq >> 48;
		if (who >= j->row.nprod || !payload_check(&pl, rbuf, (size_t)n, (who << 48) | next[who]))
			return fail(&ctx, res, "message does not check out", (long)i);
		next[who]++;
	}
	res->msgs_per_s = (double)total * 1e9 / (double)(now_ns() - t0);
	res->n = total;
	res->verified = true;
	atomic_store(&mc->done, 1);
	j->p->close(&e);
	payload_free(&pl);
	free(rbuf);
	return 0;
}

static int mpsc_producer(struct job *j, unsigned idx, struct mpsc_ctl *mc, struct proc_ctl *ctl)
{
	struct child_res *res = (struct child_res *)ctl->result[0];
	struct proc_ctx ctx = { .ctl = ctl, .role = 0, .cpu = -1 };
	static struct peer_end e;
	struct payload pl;
	int err;

	e = (struct peer_end){ .row = &j->row, .role = 0, .index = idx,
			       .abort = (uint32_t *)&ctl->abort };
	if (payload_init(&pl, j->row.payload))
		return fail(&ctx, res, "malloc", 0);
	if (!wait_flag(&mc->consumer_open, 1, &e))
		return fail(&ctx, res, "consumer did not open", 0);
	opened_end = &e;
	opened_ops = j->p;
	if ((err = j->p->open(&e)))
		return fail(&ctx, res, "open", err);
	if (j->p->ready && (err = j->p->ready(&e)))
		return fail(&ctx, res, "ready", err);
	atomic_fetch_add(&mc->opened, 1);
	if (!wait_flag(&mc->go, 1, &e))
		return fail(&ctx, res, "consumer not ready", 0);
	for (uint64_t s = 0; s < j->n; s++)
		if ((err = j->p->send(&e, 1, payload_stamp(&pl, ((uint64_t)idx << 48) | s),
				      j->row.payload)))
			return fail(&ctx, res, "send", err);
	if (j->p->flush && (err = j->p->flush(&e)))
		return fail(&ctx, res, "flush", err);
	/* Stay until the consumer has read everything. */
	if (!wait_flag(&mc->done, 1, &e))
		return fail(&ctx, res, "consumer did not finish", 0);
	j->p->close(&e);
	payload_free(&pl);
	return 0;
}

static int run_mpsc(struct proc_pair *pp, struct job *j, const char **why)
{
	struct mpsc_ctl *mc = (struct mpsc_ctl *)((unsigned char *)pp->user + pp->user_len - 4096);
	pid_t pid[PEER_MAX_PRODUCERS + 1];
	unsigned n = j->row.nprod + 1, live = 0;
	uint64_t deadline = now_ns() + (uint64_t)ROW_TIMEOUT_S * 1000000000u, kill_at = 0;
	int ret = 0;

	memset(mc, 0, sizeof(*mc));
	atomic_store(&pp->ctl->abort, 0);
	memset(pp->ctl->result, 0, sizeof(pp->ctl->result));
	fflush(NULL);
	for (unsigned i = 0; i < n; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			int rc = i == 0 ? mpsc_consumer(j, mc, pp->ctl) :
					  mpsc_producer(j, i - 1, mc, pp->ctl);

			if (rc)
				close_opened();
			_exit(rc);
		}
		if (pid[i] < 0) {
			atomic_store(&pp->ctl->abort, 1);
			*why = "fork failed";
			ret = -1;
			n = i;
			break;
		}
		live++;
	}
	while (live) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);

		if (w <= 0) {
			uint64_t now = now_ns();

			if (now > deadline && !kill_at) {
				atomic_store(&pp->ctl->abort, 1);
				*why = "timed out";
				ret = -1;
				kill_at = now + 2000000000u;
			}
			if (kill_at && now > kill_at)
				for (unsigned i = 0; i < n; i++)
					if (pid[i] > 0)
						kill(pid[i], SIGKILL);
			usleep(1000);
			continue;
		}
		for (unsigned i = 0; i < n; i++) {
			if (pid[i] != w)
				continue;
			pid[i] = -1;
			live--;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				atomic_store(&pp->ctl->abort, 1);
				if (!*why)
					*why = "a producer or the consumer failed";
				ret = -1;
			}
		}
	}
	return ret;
}

/* ---- output ------------------------------------------------------------- */

static void json_str(FILE *f, const char *key, const char *s)
{
	fputc(',', f);
	stats_json_str(f, key, s);
}

static void json_ratio(FILE *f, const char *key, double v)
{
	if (v > 0)
		fprintf(f, ",\"%s\":%.4g", key, v);
	else
		fprintf(f, ",\"%s\":null", key);
}

static void emit_json(const struct result *r)
{
	FILE *f = stdout;

	fprintf(f, "{\"bench\":\"peers-%s\"", test_name[r->test]);
	json_str(f, "transport", r->p->name);
	json_str(f, "mode", mode_name[r->mode]);
	if (r->payload != (size_t)-1)
		fprintf(f, ",\"payload\":%zu", r->payload);
	else
		fprintf(f, ",\"payload\":null");
	fprintf(f, ",\"lanes\":%u,\"mix\":%s,\"producers\":%u", r->p == &peer_memlink ? 3 : 1,
		r->mix ? "true" : "false", r->nprod);
	if (r->skipped) {
		json_str(f, "skipped", r->skipped);
		fputs("}\n", f);
		fflush(f);
		return;
	}
	if (r->test == T_RTT)
		fprintf(f, ",\"samples\":%llu,\"rtt_min_ns\":%llu,\"rtt_p50_ns\":%llu,"
			"\"rtt_p90_ns\":%llu,\"rtt_p99_ns\":%llu,\"rtt_p999_ns\":%llu,"
			"\"rtt_max_ns\":%llu,\"rtt_mean_ns\":%.1f",
			(unsigned long long)r->lat.n, (unsigned long long)r->lat.min,
			(unsigned long long)r->lat.p50, (unsigned long long)r->lat.p90,
			(unsigned long long)r->lat.p99, (unsigned long long)r->lat.p999,
			(unsigned long long)r->lat.max, r->lat.mean);
	if (r->test == T_TPUT || r->test == T_MPSC)
		fprintf(f, ",\"msgs\":%llu,\"msgs_per_s\":%.0f,\"rounds\":%u",
			(unsigned long long)r->msgs, r->msgs_per_s, r->rounds);
	if (r->test == T_IDLE)
		fprintf(f, ",\"cpu_pct\":%.3f", r->cpu_pct);
	if (r->test == T_RTT) {
		json_ratio(f, "ratio_p50", r->ratio_p50);
		json_ratio(f, "floor_ratio", r->floor_ratio);
	}
	if (r->test == T_TPUT || r->test == T_MPSC)
		json_ratio(f, "ratio_tput", r->ratio_tput);
	if (r->pinned)
		fprintf(f, ",\"cpus\":[%d,%d],\"pinned\":true", r->cpu[0], r->cpu[1]);
	else
		fprintf(f, ",\"cpus\":null,\"pinned\":false");
	fprintf(f, ",\"verified\":%s", r->verified ? "true" : "false");
	if (r->err[0])
		json_str(f, "error", r->err);
	fputs("}\n", f);
	fflush(f);
}

static const char *ratio(char *buf, size_t len, double v)
{
	if (v > 0)
		snprintf(buf, len, v >= 100 ? "%.0fx" : v >= 10 ? "%.1fx" : "%.2fx", v);
	else
		snprintf(buf, len, "-");
	return buf;
}

static void table_header(enum test t)
{
	static const char *const title[] = {
		("round trips, ns (x p50: this row's p50 / memlink's in the same mode;\n"
		 " x floor: / the floor's, one cache line bounced between the same CPUs)"),
		"one-way throughput (x tput: this row / memlink in the same mode)",
		"several producers into one consumer, 64 B, not pinned (x tput: / memlink)",
		"CPU of a receiver waiting idle for one message",
	};

	printf("\n%s\n", title[t]);
	switch (t) {
	case T_RTT:
		printf("%-14s %-9s %7s %8s %8s %9s %9s %8s %8s %8s\n", "transport", "mode", "payload",
		       "p50", "p99", "p99.9", "max", "x p50", "x floor", "verified");
		break;
	case T_TPUT:
	case T_MPSC:
		printf("%-14s %-9s %7s %9s %9s %9s %8s\n", "transport", "mode",
		       t == T_MPSC ? "prods" : "payload", "msgs/s", "MB/s", "x tput", "verified");
		break;
	case T_IDLE:
		printf("%-14s %-9s %9s %8s\n", "transport", "mode", "cpu", "verified");
		break;
	}
}

static void emit_table(const struct result *r)
{
	char a[32], b[32], c[32], name[32];

	snprintf(name, sizeof(name), "%s%s", r->p->name, r->mix ? " mix" : "");
	if (r->skipped) {
		if (r->payload == (size_t)-1)
			printf("%-14s %-9s %7s  skipped: %s\n", name, mode_name[r->mode], "-", r->skipped);
		else
			printf("%-14s %-9s %7zu  skipped: %s\n", name, mode_name[r->mode], r->payload,
			       r->skipped);
		fflush(stdout);
		return;
	}
	switch (r->test) {
	case T_RTT:
		printf("%-14s %-9s %7zu %8llu %8llu %9llu %9llu %8s %8s %8s\n", name, mode_name[r->mode],
		       r->payload, (unsigned long long)r->lat.p50, (unsigned long long)r->lat.p99,
		       (unsigned long long)r->lat.p999, (unsigned long long)r->lat.max,
		       ratio(c, sizeof(c), r->ratio_p50), ratio(b, sizeof(b), r->floor_ratio),
		       r->verified ? "yes" : "NO");
		break;
	case T_TPUT:
	case T_MPSC:
		snprintf(b, sizeof(b), "%.1f", r->msgs_per_s * (double)r->payload / 1e6);
		printf("%-14s %-9s %7zu %9s %9s %9s %8s\n", name, mode_name[r->mode],
		       r->test == T_MPSC ? (size_t)r->nprod : r->payload,
		       stats_rate(a, sizeof(a), r->msgs_per_s), b, ratio(c, sizeof(c), r->ratio_tput),
		       r->verified ? "yes" : "NO");
		break;
	case T_IDLE:
		snprintf(a, sizeof(a), "%.2f%%", r->cpu_pct);
		printf("%-14s %-9s %9s %8s\n", name, mode_name[r->mode], a, r->verified ? "yes" : "NO");
		break;
	}
	if (r->err[0])
		printf("  ^ %s\n", r->err);
	fflush(stdout);
}

static void emit(const struct opts *o, const struct result *r)
{
	if (o->json)
		emit_json(r);
	else
		emit_table(r);
}

static void progress(const struct opts *o, const struct result *r, bool force)
{
	uint64_t now = now_ns();
	bool tty = isatty(2);
	char what[96];

	if (!tty && !force && (o->quick || now - last_progress < 10000000000ull))
		return;
	last_progress = now;
	if (r->test == T_MPSC)
		snprintf(what, sizeof(what), "%s %s %u producers", r->p->name, mode_name[r->mode], r->nprod);
	else
		snprintf(what, sizeof(what), "%s%s %s %zu B %s", r->p->name, r->mix ? " mix" : "",
			 mode_name[r->mode], r->payload, test_name[r->test]);
	fprintf(stderr, "%speers: %u/%u rows, %s, %.0f s%s", tty ? "\r\033[K" : "", rows_done,
		rows_total, what, (double)(now - run_t0) / 1e9, tty ? "" : "\n");
	fflush(stderr);
}

/* ---- rows --------------------------------------------------------------- */

static const struct result *find(enum test t, const struct peer_ops *p, enum peer_mode m,
				 size_t payload, unsigned nprod, bool mix)
{
	for (unsigned i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (r->test == t && r->p == p && r->mode == m && r->payload == payload &&
		    r->nprod == nprod && r->mix == mix && !r->skipped && r->verified)
			return r;
	}
	return NULL;
}

static bool wanted(const struct opts *o, const struct peer_ops *p)
{
	const char *s = o->only;
	size_t n = strlen(p->name);

	if (!s)
		return true;
	while (*s) {
		if (!strncmp(s, p->name, n) && (s[n] == ',' || s[n] == 0))
			return true;
		s = strchr(s, ',');
		if (!s)
			break;
		s++;
	}
	return p == &peer_memlink;   /* the reference is always there */
}

static int peer_index(const struct peer_ops *p)
{
	for (unsigned i = 0; i < NPEERS; i++)
		if (peers[i] == p)
			return (int)i;
	return -1;
}

/* The reason every row of p is skipped, or NULL. */
static const char *peer_skipped(const struct peer_ops *p)
{
	int i = peer_index(p);

	if (p->skip)
		return p->skip();
	if (i >= 0 && start_why[i][0])
		return start_why[i];
	return NULL;
}

/* The median of n rates (n <= MAX_ROUNDS), 0 for none. */
static double median_rate(const double *v, unsigned n)
{
	double a[MAX_ROUNDS];

	if (!n)
		return 0;
	memcpy(a, v, n * sizeof(*a));
	for (unsigned i = 1; i < n; i++)
		for (unsigned k = i; k && a[k - 1] > a[k]; k--) {
			double x = a[k];

			a[k] = a[k - 1];
			a[k - 1] = x;
		}
	return n % 2 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
}

/* The run whose p50 is the median of n runs' (the lower one for even n). */
static unsigned median_p50(const struct lat_summary *l, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned below = 0, same = 0;

		for (unsigned k = 0; k < n; k++) {
			below += l[k].p50 < l[i].p50;
			same += k < i && l[k].p50 == l[i].p50;
		}
		if (below + same == (n - 1) / 2)
			return i;
	}
	return 0;
}

/* The chart shows the median run's CDF; the other runs' files go. */
static void keep_cdf(const struct job *j, unsigned keep, unsigned n)
{
	char from[512], to[512];

	for (unsigned k = 0; k < n; k++) {
		cdf_path(from, sizeof(from), j, (int)k);
		if (k != keep) {
			remove(from);
			continue;
		}
		cdf_path(to, sizeof(to), j, -1);
		rename(from, to);
	}
}

/* The next row's result, counted and announced. */
static struct result *new_result(const struct opts *o, const struct proc_pair *pp, enum test t,
				 const struct peer_ops *p, enum peer_mode m, size_t payload,
				 unsigned nprod, bool mix)
{
	struct result *r = &results[nresults < MAX_RESULTS ? nresults : MAX_RESULTS - 1];

	memset(r, 0, sizeof(*r));
	r->test = t;
	r->p = p;
	r->mode = m;
	r->mix = mix;
	r->nprod = nprod;
	r->payload = payload;
	r->pinned = t != T_MPSC && pp->pinned;
	r->cpu[0] = pp->cpu[0];
	r->cpu[1] = pp->cpu[1];
	r->ratio_p50 = r->ratio_tput = r->floor_ratio = -1;
	if (nresults < MAX_RESULTS)
		nresults++;
	rows_done++;
	progress(o, r, false);
	return r;
}

/*
 * The floor of one payload's group, before the group's round trips: run
 * like a busy row (as many round trips and runs, the median p50 kept), on
 * the same pinned CPUs. It carries no payload: its payload names the rows
 * it is measured beside.
 */
static int run_floor_row(const struct opts *o, struct proc_pair *pp, size_t payload)
{
	struct result *r = new_result(o, pp, T_RTT, &floor_ops, PEER_BUSY, payload, 1, false);
	struct lat_summary lats[MAX_ROUNDS];
	uint64_t n = o->samples;
	unsigned done = 0;

	for (unsigned k = 0; k < o->rounds; k++) {
		struct floor_result fr;

		if (floor_run(pp, n / 10 + 100, n, ROW_TIMEOUT_S, &fr)) {
			snprintf(r->err, sizeof(r->err), "%s", fr.err);
			break;
		}
		lats[done++] = fr.lat;
	}
	r->verified = done == o->rounds;
	r->rounds = done;
	r->msgs = n;
	if (done)
		r->lat = lats[median_p50(lats, done)];
	emit(o, r);
	return !r->verified;
}

static int run_row(const struct opts *o, struct proc_pair *pp, enum test t,
		   const struct peer_ops *p, enum peer_mode m, size_t payload, unsigned nprod,
		   bool mix)
{
	static unsigned seq;
	struct result *r = new_result(o, pp, t, p, m, payload, nprod, mix);
	const struct child_res *res0, *res1;
	const char *why = NULL;
	struct job j;
	bool sleeping = m != PEER_BUSY && !(p == &peer_memlink && t == T_TPUT);
	double rates[MAX_ROUNDS];
	struct lat_summary lats[MAX_ROUNDS];
	unsigned rounds, done = 0;
	int rc = 0;

	memset(&j, 0, sizeof(j));
	j.test = t;
	j.p = p;
	j.mix = mix;
	j.plot = o->plot;
	j.idle_ns = o->idle_ns;
	j.row.mode = m;
	j.row.payload = payload;
	j.row.nprod = nprod;
	j.row.duplex = t == T_RTT;
	j.row.shm = pp->user;
	j.row.shm_len = pp->user_len - 4096;
	for (int i = 0; i < PEER_MAX_FDS; i++)
		j.row.fd[i] = -1;
	snprintf(j.row.name, sizeof(j.row.name), "mlb.%d.%u", (int)getpid(), seq++);
	switch (t) {
	case T_RTT:
		j.n = sleeping ? o->samples / 10 + 1 : o->samples;
		j.warm = j.n / 10 + 100;
		break;
	case T_TPUT:
	case T_MPSC: {
		uint64_t cap = o->bytes / (payload > 64 ? payload : 64);

		j.n = sleeping && p != &peer_memlink ? o->msgs / 10 : o->msgs;
		if (j.n > cap)
			j.n = cap;
		if (j.n < 2000)
			j.n = 2000;
		if (t == T_MPSC)
			j.n /= nprod;
		j.warm = j.n * (t == T_MPSC ? nprod : 1) / 10;
		break;
	}
	case T_IDLE:
		j.n = 1;
		break;
	}

	r->skipped = peer_skipped(p);
	if (!r->skipped && payload > p->max_payload)
		r->skipped = "payload over the transport's limit";
	/* o->rounds runs, the median reported (head of this file). */
	rounds = t == T_IDLE ? 1 : o->rounds;
	for (unsigned k = 0; k < rounds && !r->skipped; k++) {
		j.round = k;
		if (p->prepare) {
			memset(j.row.note, 0, sizeof(j.row.note));
			rc = p->prepare(&j.row);
			if (rc > 0) {
				snprintf(r->skip_buf, sizeof(r->skip_buf), "%s",
					 j.row.note[0] ? j.row.note : "prepare failed");
				r->skipped = r->skip_buf;
				break;
			}
			if (rc < 0) {
				snprintf(r->err, sizeof(r->err), "prepare: %s (%d)",
					 j.row.note[0] ? j.row.note : "failed", rc);
				emit(o, r);
				return 1;
			}
		}
		if (t == T_MPSC)
			rc = run_mpsc(pp, &j, &why);
		else
			rc = proc_pair_run(pp, t == T_RTT ? rtt_role : t == T_TPUT ? tput_role :
					   idle_role, &j, ROW_TIMEOUT_S, &why);
		if (p->unprepare)
			p->unprepare(&j.row);
		res0 = proc_result(pp, 0);
		res1 = proc_result(pp, 1);
		r->verified = !rc && res1->verified && (t == T_MPSC || res0->verified);
		if (!r->verified) {
			snprintf(r->err, sizeof(r->err), "%s", res0->err[0] ? res0->err :
				 res1->err[0] ? res1->err : why ? why : "failed");
			break;
		}
		rates[k] = res1->msgs_per_s;
		lats[k] = res0->lat;
		r->msgs = t == T_RTT ? res0->n : res1->n;
		r->cpu_pct = res1->cpu * 100;
		done = k + 1;
	}
	if (r->skipped) {
		emit(o, r);
		return 0;
	}
	r->rounds = done;
	r->msgs_per_s = median_rate(rates, done);
	if (done) {
		unsigned mid = median_p50(lats, done);

		r->lat = lats[mid];
		if (t == T_RTT && j.plot && payload == 64)
			keep_cdf(&j, mid, done);
	}
	if (r->verified && t == T_RTT) {
		const struct result *fl = find(T_RTT, &floor_ops, PEER_BUSY, payload, 1, false);

		if (fl)
			r->floor_ratio = floor_ratio(r->lat.p50, fl->lat.p50);
	}
	if (r->verified && p != &peer_memlink) {
		const struct result *ref = find(t, &peer_memlink, m, payload, nprod, false);

		if (!ref && t == T_MPSC)
			ref = find(t, &peer_memlink, PEER_ADAPTIVE, payload, nprod, false);
		if (ref && t == T_RTT && ref->lat.p50)
			r->ratio_p50 = (double)r->lat.p50 / (double)ref->lat.p50;
		if (ref && (t == T_TPUT || t == T_MPSC) && ref->msgs_per_s > 0)
			r->ratio_tput = r->msgs_per_s / ref->msgs_per_s;
	}
	if (mix) {
		const struct result *ref = find(T_TPUT, &peer_memlink, m, payload, 1, false);

		if (ref && ref->msgs_per_s > 0)
			r->ratio_tput = r->msgs_per_s / ref->msgs_per_s;
	}
	emit(o, r);
	return !r->verified;
}

/* ---- the plan ----------------------------------------------------------- */

/* The peers' modes, in order; calls fn for each (p, mode). */
#define FOR_SPECS(o, pi, m)                                                       \
	for (unsigned pi = 0; pi < NPEERS; pi++)                                  \
		if (wanted(o, peers[pi]))                                         \
			for (int m = 0; m < 3; m++)                               \
				if (peers[pi]->modes & PEER_MODE_BIT(m))

static unsigned count_rows(const struct opts *o)
{
	unsigned n = 0;

	n += o->npayloads;                               /* the floor */
	FOR_SPECS(o, pi, m) {
		n += 2 * o->npayloads;                  /* rtt, tput */
		if (peers[pi] == &peer_memlink && m == PEER_BUSY)
			n += o->npayloads;               /* mix */
		if (peers[pi]->mpsc && m != PEER_BUSY)
			n += 2;
		if (m != PEER_BUSY || peers[pi] == &peer_memlink)
			n++;                             /* idle */
	}
	return n;
}

/* A peer skipped as a whole: one row per mode. */
static bool skip_whole(const struct opts *o, const struct peer_ops *p, enum test t)
{
	const char *why = peer_skipped(p);

	if (!why)
		return false;
	for (int m = 0; m < 3; m++) {
		struct result r;

		if (!(p->modes & PEER_MODE_BIT(m)))
			continue;
		memset(&r, 0, sizeof(r));
		r.test = t;
		r.p = p;
		r.mode = m;
		r.nprod = 1;
		r.payload = (size_t)-1;
		r.skipped = why;
		emit(o, &r);
	}
	return true;
}

/* ---- targets and plots --------------------------------------------------- */

static double best_tput(const struct peer_ops *p, size_t payload)
{
	double best = 0;

	for (unsigned i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (r->test == T_TPUT && r->p == p && r->payload == payload && !r->mix &&
		    !r->skipped && r->verified && r->msgs_per_s > best)
			best = r->msgs_per_s;
	}
	return best;
}

static void targets(void)
{
	const struct result *ml_busy = find(T_RTT, &peer_memlink, PEER_BUSY, 64, 1, false);
	const struct result *ml_blk = find(T_RTT, &peer_memlink, PEER_BLOCKING, 64, 1, false);
	const struct result *ice = find(T_RTT, &peer_iceoryx, PEER_BUSY, 64, 1, false);
	const struct result *fx = find(T_RTT, &peer_futex, PEER_BLOCKING, 64, 1, false);
	const struct result *fl = find(T_RTT, &floor_ops, PEER_BUSY, 64, 1, false);
	const struct peer_ops *others[] = { &peer_boost_mq, &peer_zmq, &peer_posix_mq, &peer_uds,
					    &peer_uds_seqpacket, &peer_tcp };
	double ml_t = best_tput(&peer_memlink, 64), ice_t = best_tput(&peer_iceoryx, 64), oth = 0;
	const char *oth_name = "-";
	const struct result *best_blk = NULL;

	printf("\ntargets (64-byte messages, this run)\n");
	if (ml_busy && fl)
		printf("  busy round trip p50: memlink %llu ns, the floor %llu ns: %.2fx (target <= 1.6x): %s\n",
		       (unsigned long long)ml_busy->lat.p50, (unsigned long long)fl->lat.p50,
		       ml_busy->floor_ratio, ml_busy->lat.p50 * 10 <= fl->lat.p50 * 16 ? "met" : "NOT met");
	else
		printf("  busy round trip p50 vs the floor: not measured\n");
	if (ml_busy && ice)
		printf("  busy round trip p50: memlink %llu ns, iceoryx busy-poll %llu ns: %.3fx (target <= 0.2x): %s\n",
		       (unsigned long long)ml_busy->lat.p50, (unsigned long long)ice->lat.p50,
		       (double)ml_busy->lat.p50 / (double)ice->lat.p50,
		       ml_busy->lat.p50 * 5 <= ice->lat.p50 ? "met" : "NOT met");
	else
		printf("  busy round trip p50 vs iceoryx: not measured\n");
	if (ml_t > 0 && ice_t > 0)
		printf("  throughput: memlink %.2fM/s, iceoryx %.2fM/s: %.1fx (target >= 30x): %s\n",
		       ml_t / 1e6, ice_t / 1e6, ml_t / ice_t, ml_t >= 30 * ice_t ? "met" : "NOT met");
	else
		printf("  throughput vs iceoryx: not measured\n");
	for (unsigned i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		double t = best_tput(others[i], 64);

		if (t > oth) {
			oth = t;
			oth_name = others[i]->name;
		}
	}
	if (ml_t > 0 && oth > 0)
		printf("  throughput: memlink %.2fM/s, best of boost-mq/zmq/posix-mq/sockets %s %.2fM/s: %.1fx (target >= 8x): %s\n",
		       ml_t / 1e6, oth_name, oth / 1e6, ml_t / oth, ml_t >= 8 * oth ? "met" : "NOT met");
	/* What a user gets: default options, one call a message, the default mode. */
	{
		const struct result *pl = find(T_TPUT, &peer_memlink_plain, PEER_ADAPTIVE, 64, 1, false);

		if (pl && pl->verified && oth > 0)
			printf("  throughput, the default way (memlink-plain adaptive): %.2fM/s, %.1fx %s\n",
			       pl->msgs_per_s / 1e6, pl->msgs_per_s / oth, oth_name);
	}
	for (unsigned i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (r->test == T_RTT && r->p != &peer_memlink && r->p != &peer_memlink_plain &&
		    r->mode == PEER_BLOCKING &&
		    r->payload == 64 && !r->skipped && r->verified &&
		    (!best_blk || r->lat.p50 < best_blk->lat.p50))
			best_blk = r;
	}
	/*
	 * A sleeping wake-up is the whole cost of a blocking round trip, and a
	 * raw futex ping-pong is the floor for futex sleepers: memlink's
	 * blocking mode is held to 1.1x the same run's futex row; the best
	 * blocking peer (often a Unix socket or the eventfd ring) beside it.
	 */
	if (ml_blk && fx)
		printf("  blocking round trip p50: memlink %llu ns, raw futex %llu ns: %.2fx (target <= 1.1x): %s\n",
		       (unsigned long long)ml_blk->lat.p50, (unsigned long long)fx->lat.p50,
		       (double)ml_blk->lat.p50 / (double)fx->lat.p50,
		       ml_blk->lat.p50 * 10 <= fx->lat.p50 * 11 ? "met" : "NOT met");
	if (ml_blk && best_blk)
		printf("  blocking round trip p50 beside the best blocking peer %s %llu ns: %.2fx\n",
		       best_blk->p->name, (unsigned long long)best_blk->lat.p50,
		       (double)ml_blk->lat.p50 / (double)best_blk->lat.p50);
}

static bool have_gnuplot(void)
{
	return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static int plot(const struct opts *o)
{
	char path[512], cmd[700];
	bool any = false;
	FILE *f;

	/* Throughput: each transport's best mode, by payload. */
	snprintf(path, sizeof(path), "%s/tput.dat", o->plot);
	f = fopen(path, "w");
	if (!f)
		return 1;
	fprintf(f, "payload");
	for (unsigned pi = 0; pi < NPEERS; pi++)
		if (wanted(o, peers[pi]) && !peer_skipped(peers[pi]))
			fprintf(f, " %s", peers[pi]->name);
	fprintf(f, "\n");
	for (unsigned k = 0; k < o->npayloads; k++) {
		fprintf(f, "%u", o->payload[k]);
		for (unsigned pi = 0; pi < NPEERS; pi++) {
			double t;

			if (!wanted(o, peers[pi]) || peer_skipped(peers[pi]))
				continue;
			t = best_tput(peers[pi], o->payload[k]);
			if (t > 0)
				fprintf(f, " %.0f", t);
			else
				fprintf(f, " NaN");
		}
		fprintf(f, "\n");
	}
	fclose(f);

	snprintf(path, sizeof(path), "%s/peers.gp", o->plot);
	f = fopen(path, "w");
	if (!f)
		return 1;
	fprintf(f, "# memlink-bench peers --plot: run with gnuplot from this directory\n"
		   "do for [fmt in \"png svg\"] {\n"
		   "  if (fmt eq \"png\") { set terminal pngcairo size 1100,650 font \"sans,10\" }"
		   " else { set terminal svg size 1100,650 font \"sans,10\" }\n"
		   "  set output \"latency-cdf-64.\".fmt\n"
		   "  set title \"Round trip, 64-byte messages: CDF (memlink-bench peers)\"\n"
		   "  set logscale x; set xlabel \"round trip (ns, log scale)\"\n"
		   "  set ylabel \"fraction of round trips\"; set yrange [0:1.001]\n"
		   "  set key outside right; set grid\n  plot \\\n");
	for (unsigned pi = 0; pi < NPEERS; pi++) {
		for (int m = 0; m < 3; m++) {
			if (!find(T_RTT, peers[pi], m, 64, 1, false))
				continue;
			fprintf(f, "%s    \"cdf-%s-%s.dat\" using 1:2 with lines lw 2 title \"%s %s\"",
				any ? ", \\\n" : "", peers[pi]->name, mode_name[m], peers[pi]->name,
				peers[pi] == &peer_iceoryx ? (m == PEER_BUSY ? "busy-poll" : "waitset") :
							     mode_name[m]);
			any = true;
		}
	}
	if (!any)
		fprintf(f, "    NaN notitle");
	fprintf(f, "\n  unset logscale x; unset yrange\n"
		   "  set output \"throughput.\".fmt\n"
		   "  set title \"One-way throughput by payload, each transport's best mode (memlink-bench peers)\"\n"
		   "  set style data histograms; set style histogram clustered gap 1\n"
		   "  set style fill solid 0.85 border -1; set boxwidth 0.9\n"
		   "  set logscale y; set ylabel \"messages/s (log scale)\"; set xlabel \"payload (bytes)\"\n"
		   "  set key outside right; set grid ytics\n"
		   "  plot for [i=2:*] \"tput.dat\" using i:xtic(1) title columnheader(i)\n"
		   "  unset logscale y; set style data lines\n"
		   "}\n");
	fclose(f);
	if (!have_gnuplot()) {
		fprintf(stderr, "peers: gnuplot not found (Debian gnuplot-nox); data and script are in %s\n",
			o->plot);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "cd '%s' && gnuplot peers.gp", o->plot);
	if (system(cmd) != 0) {
		fprintf(stderr, "peers: gnuplot failed (script %s/peers.gp)\n", o->plot);
		return 1;
	}
	fprintf(stderr, "peers: charts in %s: latency-cdf-64.{png,svg}, throughput.{png,svg}\n", o->plot);
	return 0;
}

/* ---- command line ------------------------------------------------------ */

void bench_peers_usage(FILE *f)
{
	fprintf(f, "memlink-bench peers [--quick] [--json] [--plot DIR] [--only T,...] [--payload N,...]\n"
		   "                    [--samples N] [--msgs N] [--idle-ms N]\n"
		   "  memlink beside uds, uds-seqpacket, pipe, tcp, posix-mq, eventfd, futex, boost-mq,\n"
		   "  zmq and iceoryx: round trips (p50/p99/p99.9/max), one-way throughput,\n"
		   "  4 and 8 producers, idle receiver CPU; rows run 3 times, the median\n"
		   "  shown; --quick (once each) takes a few minutes, the full run about 15.\n"
		   "  memlink streams in batches, read in place; memlink-plain is what a\n"
		   "  program gets with default options and one send or recv per message.\n"
		   "  Each payload's round trips begin with the floor: one shared cache line\n"
		   "  bounced between the same two CPUs (no payload); x floor is each round\n"
		   "  trip's p50 over the floor's.\n"
		   "  --plot DIR writes CDF and throughput charts (gnuplot).\n"
		   "  Peers whose packages are missing are listed as skipped (make bench).\n");
}

int bench_peers_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' },  { "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'P' },
		{ "only", required_argument, NULL, 'o' },
		{ "payload", required_argument, NULL, 'p' },
		{ "samples", required_argument, NULL, 's' },
		{ "msgs", required_argument, NULL, 'm' },
		{ "idle-ms", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .npayloads = 5, .payload = { 0, 64, 1024, 4096, 65536 },
			  .samples = 100000, .msgs = 2000000, .bytes = 1ull << 31,
			  .idle_ns = 1000000000, .rounds = 3 };
	bool samples_set = false, msgs_set = false, idle_set = false;
	struct proc_pair pp;
	int c, bad = 0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'q':
			o.quick = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'P':
			o.plot = optarg;
			break;
		case 'o':
			o.only = optarg;
			break;
		case 'p': {
			int n = payload_parse_sizes(optarg, o.payload, MAX_PAYLOADS, 1ul << 20);

			if (n < 0) {
				fprintf(stderr, "memlink-bench peers: bad --payload '%s'\n", optarg);
				return 2;
			}
			o.npayloads = (unsigned)n;
			break;
		}
		case 's':
			o.samples = strtoull(optarg, NULL, 0);
			samples_set = true;
			break;
		case 'm':
			o.msgs = strtoull(optarg, NULL, 0);
			msgs_set = true;
			break;
		case 'i':
			o.idle_ns = strtoull(optarg, NULL, 0) * 1000000u;
			idle_set = true;
			break;
		case 'h':
			bench_peers_usage(stdout);
			return 0;
		default:
			bench_peers_usage(stderr);
			return 2;
		}
	}
	if (o.quick) {
		if (!samples_set)
			o.samples = 5000;
		if (!msgs_set)
			o.msgs = 100000;
		if (!idle_set)
			o.idle_ns = 200000000;
		o.bytes = 64ull << 20;
		o.rounds = 1;
	}
	for (unsigned k = 0; k < o.npayloads; k++)
		if (o.payload[k] > 65536) {
			fprintf(stderr, "memlink-bench peers: payloads up to 65536 bytes\n");
			return 2;
		}
	if (o.plot && mkdir(o.plot, 0755) && errno != EEXIST) {
		fprintf(stderr, "memlink-bench peers: cannot create %s\n", o.plot);
		return 2;
	}
	if (proc_pair_init(&pp, SHM_BYTES))
		return 1;
	run_t0 = last_progress = now_ns();
	rows_total = count_rows(&o);
	for (unsigned pi = 0; pi < NPEERS; pi++) {
		if (!wanted(&o, peers[pi]) || peers[pi]->skip || !peers[pi]->start)
			continue;
		if (peers[pi]->start(start_why[pi], sizeof(start_why[pi])) == 0)
			started[pi] = true;
		else if (!start_why[pi][0])
			snprintf(start_why[pi], sizeof(start_why[pi]), "start failed");
	}
	if (!o.json)
		printf("memlink-bench peers: %s, CPUs %d and %d%s\n", o.quick ? "quick run" : "full run",
		       pp.cpu[0], pp.cpu[1], pp.pinned ? "" : " (not pinned: fewer than 2 CPUs)");

	if (!o.json)
		table_header(T_RTT);
	for (unsigned pi = 0; pi < NPEERS; pi++)
		if (wanted(&o, peers[pi]))
			skip_whole(&o, peers[pi], T_RTT);
	for (unsigned k = 0; k < o.npayloads; k++) {
		bad |= run_floor_row(&o, &pp, o.payload[k]);
		FOR_SPECS(&o, pi, m) {
			if (!peer_skipped(peers[pi]))
				bad |= run_row(&o, &pp, T_RTT, peers[pi], m, o.payload[k], 1, false);
			else
				rows_done += 1;
		}
	}

	if (!o.json)
		table_header(T_TPUT);
	for (unsigned pi = 0; pi < NPEERS; pi++)
		if (wanted(&o, peers[pi]))
			skip_whole(&o, peers[pi], T_TPUT);
	for (unsigned k = 0; k < o.npayloads; k++) {
		FOR_SPECS(&o, pi, m) {
			if (!peer_skipped(peers[pi]))
				bad |= run_row(&o, &pp, T_TPUT, peers[pi], m, o.payload[k], 1, false);
			else
				rows_done += 1;
		}
		bad |= run_row(&o, &pp, T_TPUT, &peer_memlink, PEER_BUSY, o.payload[k], 1, true);
	}

	if (!o.json)
		table_header(T_MPSC);
	for (unsigned k = 4; k <= 8; k += 4) {
		FOR_SPECS(&o, pi, m) {
			if (!peers[pi]->mpsc || m == PEER_BUSY)
				continue;
			if (!peer_skipped(peers[pi]))
				bad |= run_row(&o, &pp, T_MPSC, peers[pi], m, 64, k, false);
			else
				rows_done += 1;
		}
	}

	if (!o.json)
		table_header(T_IDLE);
	FOR_SPECS(&o, pi, m) {
		if (m == PEER_BUSY && peers[pi] != &peer_memlink)
			continue;
		if (!peer_skipped(peers[pi]))
			bad |= run_row(&o, &pp, T_IDLE, peers[pi], m, 64, 1, false);
		else
			rows_done += 1;
	}

	for (unsigned pi = 0; pi < NPEERS; pi++)
		if (started[pi] && peers[pi]->stop)
			peers[pi]->stop();
	if (isatty(2))
		fprintf(stderr, "\r\033[K");
	fprintf(stderr, "peers: %u rows in %.1f s%s\n", rows_done, (double)(now_ns() - run_t0) / 1e9,
		bad ? ", SOME FAILED" : "");
	if (!o.json)
		targets();
	if (o.plot)
		bad |= plot(&o);
	proc_pair_destroy(&pp);
	return bad;
}

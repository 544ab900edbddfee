// SPDX-License-Identifier: MIT
/*
 * Channel integration tests: a daemon and its clients as real processes
 * (fork, and fork+exec of this same binary), through whichever backend
 * $MEMLINK_BACKEND names (make test-chan sets "linux"; the VM runs the same
 * program, linked statically, with "kmod").
 *
 * Plain C11 + POSIX, no test framework: every test runs in its own process
 * group under a watchdog and prints "ok N name" or "not ok N name: reason";
 * the last line is "chan: N passed, N failed" and the exit status is
 * non-zero when anything failed.
 *
 *   test-chan [test-name...]        run all tests, or only those named
 * Environment:
 *   MEMLINK_BACKEND  backend to use (kmod|linux|...; default: the library's)
 *   CHAN_MSGS        messages per client in the many-clients tests
 *                    (default 1000000)
 *   CHAN_SEED        seed of the many-clients tests (default: time)
 *   CHAN_WAKE_ROUNDS bursts per pair of modes in no_lost_wakeup
 *                    (default 20000)
 *   CHAN_TIMEOUT     watchdog per test in seconds (default 300)
 *   CHAN_WAIT_MODE   adaptive|blocking|busy for every handle (default
 *                    adaptive)
 *   CHAN_SUITE       name on the summary line (default "chan")
 *   ML_TALLY         a file to append "passed failed" to (make check)
 *
 * Tests that look at /dev/shm or at the control region's bytes only apply
 * to backends with a POSIX shared memory object ("linux", "darwin"); they
 * report "# SKIP" elsewhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memlink.h"
#include "proctest.h"
#include "chan_layout.h" /* for the tests that corrupt the layout */
#include "ring_layout.h"


/* ---- helpers (the runner is tests/common/proctest.c) -------------------- */

static char self_exe[PATH_MAX];
static unsigned name_seq;
static pid_t runner_pid;
static int g_wait_mode = ML_WAIT_ADAPTIVE;

static struct ml_chan_opts opts_default(void)
{
	struct ml_chan_opts o;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.wait_mode = (uint32_t)g_wait_mode;
	return o;
}

/* A channel name unique to this run and test. */
static void chan_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "mlt-%d-%u-%s", (int)runner_pid, ++name_seq, tag);
}

static const char *backend_name(void)
{
	const char *b = getenv("MEMLINK_BACKEND");

	return b && *b ? b : "auto";
}

/* The backend the library picks, by creating a throwaway channel. */
static char active_backend[16] = "?";

static bool posix_shm_backend(void)
{
	return !strcmp(active_backend, "linux") || !strcmp(active_backend, "darwin");
}

static bool shm_exists(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/dev/shm/memlink.%s", name);
	return access(path, F_OK) == 0;
}

/* Fork and exec this binary with the given role arguments (NULL-ended). */
static pid_t spawn_exec(const char *const *args)
{
	char *argv[16];
	unsigned n = 0;
	pid_t pid;

	argv[n++] = self_exe;
	while (*args && n < 15)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		execv(self_exe, argv);
		fprintf(stderr, "exec %s: %s\n", self_exe, strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		failf("fork: %s", strerror(errno));
	return pid;
}

/* Connect, retrying while the channel is not there yet (a starting daemon). */
static int connect_retry(ml_chan **c, const char *name, int64_t timeout_ns, int retry_on)
{
	int64_t end = now_ns() + timeout_ns;
	struct ml_chan_opts o = opts_default();
	int err;

	for (;;) {
		err = ml_client_connect(c, name, &o);
		if (err != retry_on || now_ns() > end)
			return err;
		sleep_ms(2);
	}
}

/* ---- an echo daemon and echo clients ------------------------------------ */

/*
 * Serve: echo every request back to its client at its priority, until
 * *stop (when not NULL) or the deadline. Replies to a client that left are
 * dropped (-EPIPE). Returns the number of messages served, < 0 on error.
 */
static long serve_echo(ml_chan *d, _Atomic int *stop, int64_t timeout_ns)
{
	int64_t end = now_ns() + timeout_ns;
	static char buf[1 << 16];
	long served = 0;

	while (!(stop && atomic_load(stop))) {
		int prio, n, err;
		unsigned cl;

		if (now_ns() > end)
			return served;
		err = ml_chan_wait(d, 20 * MS);
		if (err == -ETIMEDOUT)
			continue;
		if (err) {
			failf("daemon: ml_chan_wait: %s", ml_strerror(err));
			return -1;
		}
		while ((n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf))) >= 0) {
			err = ml_chan_send_wait(d, cl, prio, buf, (size_t)n, 5 * SEC);
			if (err && err != -EPIPE) {
				failf("daemon: reply to %u: %s", cl, ml_strerror(err));
				return -1;
			}
			served++;
		}
		if (n != -EAGAIN) {
			failf("daemon: ml_chan_recv: %s", ml_strerror(n));
			return -1;
		}
	}
	return served;
}

/* Client: send `len` bytes at prio and wait for the same bytes back. */
static int roundtrip(ml_chan *c, int prio, const void *msg, size_t len, int64_t timeout_ns)
{
	static char buf[1 << 16];
	int64_t end = now_ns() + timeout_ns;
	int err, n, p = -1;

	err = ml_chan_send_wait(c, 0, prio, msg, len, timeout_ns);
	if (err) {
		failf("client %d: send: %s", (int)getpid(), ml_strerror(err));
		return err;
	}
	for (;;) {
		n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf));
		if (n >= 0)
			break;
		if (n != -EAGAIN) {
			failf("client %d: recv: %s", (int)getpid(), ml_strerror(n));
			return n;
		}
		if (now_ns() > end) {
			failf("client %d: no reply in %lld ms", (int)getpid(),
			      (long long)(timeout_ns / MS));
			return -ETIMEDOUT;
		}
		err = ml_chan_wait(c, 50 * MS);
		if (err && err != -ETIMEDOUT) {
			failf("client %d: wait: %s", (int)getpid(), ml_strerror(err));
			return err;
		}
	}
	if ((size_t)n != len || p != prio || (len && memcmp(buf, msg, len))) {
		failf("client %d: reply differs (len %d/%zu, prio %d/%d)", (int)getpid(), n, len, p,
		      prio);
		return -EBADMSG;
	}
	return 0;
}

static _Atomic int serve_stop;

static void on_term(int sig)
{
	(void)sig;
	atomic_store(&serve_stop, 1);
}

/* Role "serve NAME [MAX_CLIENTS]": an echo daemon until SIGTERM or killed. */
static int role_serve(int argc, char **argv)
{
	struct sigaction sa;

	struct ml_chan_opts o = opts_default();
	ml_chan *d;
	int err;

	if (argc < 1)
		return 2;
	if (argc > 1)
		o.max_clients = (uint32_t)atoi(argv[1]);
	err = ml_daemon_create(&d, argv[0], &o);
	if (err) {
		fprintf(stderr, "serve: create %s: %s\n", argv[0], ml_strerror(err));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	err = serve_echo(d, &serve_stop, 600 * SEC) < 0;
	ml_chan_close(d);
	return err;
}

/* ---- test: every priority, both ways ------------------------------------ */

struct rt_shared {
	_Atomic int connected;
	_Atomic int done;
	char name[80];
};

/* Client k sends at each prio, sizes 0, 1, mid and max, the bytes keyed. */
static void rt_payload(char *buf, size_t len, int k, int prio, size_t i)
{
	for (size_t j = 0; j < len; j++)
		buf[j] = (char)(k * 131 + prio * 31 + (int)i * 7 + (int)j);
}

/* The empty one last: the first of each lane tells the daemon who sent it. */
static const size_t rt_sizes[] = { 1, 100, 4096, 0 };
#define RT_SIZES (sizeof(rt_sizes) / sizeof(rt_sizes[0]))

static int rt_client(void *arg)
{
	struct rt_shared *sh = arg;
	static char msg[4096], buf[8192];
	ml_chan *c = NULL;
	int k = -1, err, ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	k = atomic_fetch_add(&sh->connected, 1);
	CHECK(!strcmp(ml_chan_backend(c), active_backend), "client backend %s", ml_chan_backend(c));
	CHECK(ml_chan_connected(c) == 1, "client: not connected");
	/* Wait until both clients are connected, so the ids differ. */
	CHECK(wait_flag(&sh->connected, 2, 10 * SEC), "other client never connected");
	for (int prio = ML_PRIO_CRITICAL; prio <= ML_PRIO_LOW; prio++) {
		for (size_t i = 0; i < RT_SIZES; i++) {
			/* First byte of a non-empty message: who sent it. */
			rt_payload(msg, rt_sizes[i], k, prio, i);
			if (rt_sizes[i])
				msg[0] = (char)k;
			CHECK_RC(ml_chan_send(c, prio, msg, rt_sizes[i]), 0);
		}
	}
	/* Too big: refused, nothing sent. */
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, msg, 4097), -EMSGSIZE);
	CHECK_RC(ml_chan_send(c, 3, msg, 1), -EINVAL);
	CHECK_RC(ml_chan_send(c, -1, msg, 1), -EINVAL);
	/* The daemon answers each at its priority: expect them all, per lane in order. */
	{
		size_t got[ML_PRIO_COUNT] = { 0 }, total = 0;
		int64_t end = now_ns() + 10 * SEC;

		while (total < ML_PRIO_COUNT * RT_SIZES) {
			unsigned cl = 99;
			int p = -1, n = ml_chan_recv(c, &p, &cl, buf, sizeof(buf));

			if (n == -EAGAIN) {
				CHECK(now_ns() < end, "only %zu replies arrived", total);
				err = ml_chan_wait(c, 100 * MS);
				CHECK(err == 0 || err == -ETIMEDOUT, "wait: %s", ml_strerror(err));
				continue;
			}
			CHECK(n >= 0, "recv: %s", ml_strerror(n));
			CHECK(p >= 0 && p < ML_PRIO_COUNT, "reply prio %d", p);
			CHECK(got[p] < RT_SIZES, "too many replies at prio %d", p);
			/* Reply = request with every byte + 1. */
			rt_payload(msg, rt_sizes[got[p]], k, p, got[p]);
			if (rt_sizes[got[p]])
				msg[0] = (char)k;
			CHECK((size_t)n == rt_sizes[got[p]], "prio %d reply %zu: len %d, want %zu", p,
			      got[p], n, rt_sizes[got[p]]);
			for (int j = 0; j < n; j++)
				CHECK(buf[j] == (char)(msg[j] + 1), "prio %d reply %zu byte %d differs",
				      p, got[p], j);
			got[p]++;
			total++;
		}
	}
	CHECK_RC(ml_chan_recv(c, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int t_roundtrip_prios(void)
{
	struct rt_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	static char buf[8192];
	size_t got[2][ML_PRIO_COUNT] = { { 0 } };
	int id_of[2] = { -1, -1 };
	pid_t pid[2] = { 0, 0 };
	ml_chan *d = NULL;
	int ret = -1, n, prio;
	unsigned cl;
	size_t total = 0;

	chan_name(sh->name, sizeof(sh->name), "rt");
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	CHECK(!strcmp(ml_chan_backend(d), active_backend), "backend %s", ml_chan_backend(d));
	CHECK(ml_chan_connected(d) == 0, "daemon connected with no client");
	for (int k = 0; k < 2; k++)
		pid[k] = spawn(rt_client, sh);
	while (total < 2 * ML_PRIO_COUNT * RT_SIZES) {
		int err = ml_chan_wait(d, 10 * SEC);
		int k;

		CHECK(err == 0, "daemon wait: %s after %zu messages", ml_strerror(err), total);
		n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf));
		if (n == -EAGAIN)
			continue;
		CHECK(n >= 0, "daemon recv: %s", ml_strerror(n));
		CHECK(cl < 8, "client id %u out of range", cl);
		CHECK(prio >= 0 && prio < ML_PRIO_COUNT, "prio %d", prio);
		/* Which client: byte 0 of a non-empty message; an empty one comes
		 * after non-empty ones of its lane, so its id is known by then. */
		if (n > 0) {
			k = buf[0];
			CHECK(k == 0 || k == 1, "bad sender byte %d", k);
		} else {
			k = id_of[0] == (int)cl ? 0 : id_of[1] == (int)cl ? 1 : -1;
			CHECK(k >= 0, "empty message from unknown id %u", cl);
		}
		if (id_of[k] < 0)
			id_of[k] = (int)cl;
		CHECK(id_of[k] == (int)cl, "client %d came as id %u, earlier %d", k, cl, id_of[k]);
		CHECK(got[k][prio] < RT_SIZES, "too many at prio %d", prio);
		{
			static char want[4096];
			size_t i = got[k][prio], len = rt_sizes[i];

			rt_payload(want, len, k, prio, i);
			if (len)
				want[0] = (char)k;
			CHECK((size_t)n == len && !memcmp(buf, want, len),
			      "client %d prio %d message %zu: len %d (want %zu) or bytes differ", k,
			      prio, i, n, len);
		}
		got[k][prio]++;
		total++;
		for (int j = 0; j < n; j++)
			buf[j]++;
		CHECK_RC(ml_chan_send_wait(d, cl, prio, buf, (size_t)n, 5 * SEC), 0);
	}
	CHECK(id_of[0] != id_of[1], "both clients have id %d", id_of[0]);
	CHECK_RC(ml_chan_reply(d, 8, 0, buf, 1), -EINVAL);
	CHECK_RC(ml_chan_send(d, 0, buf, 1), -EINVAL);
	for (int k = 0; k < 2; k++) {
		CHECK(reap_ok(pid[k], "client", 20 * SEC), "client");
		pid[k] = 0;
	}
	/* Both left: their ids are no longer valid for replies. */
	CHECK_RC(ml_chan_reply(d, (unsigned)id_of[0], 0, buf, 1), -EPIPE);
	CHECK(ml_chan_connected(d) == 0, "daemon still connected after the clients left");
	ret = 0;
out:
	for (int k = 0; k < 2; k++)
		if (pid[k] > 0)
			reap(pid[k], 5 * SEC);
	ml_chan_close(d);
	return ret;
}

/* ---- test: many clients, many messages ---------------------------------- */

/* A request: this header, then body bytes from (seed, client, lane, seq). */
struct req_hdr {
	uint32_t client;
	uint32_t lane;
	uint64_t seq;
	uint32_t len;
	uint32_t sum;
};

/* A reply: what the daemon saw, then filler to a length keyed by seq. */
struct rep_hdr {
	uint64_t seq;
	uint32_t lane;
	uint32_t sum;
};

#define WINDOW 65536u /* replies a client can be owed per lane */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint32_t body_sum(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static uint32_t stress_len(uint64_t seed, unsigned client, unsigned lane, uint64_t seq,
			   uint32_t max_msg)
{
	uint64_t h = mix(seed ^ ((uint64_t)client << 40) ^ ((uint64_t)lane << 56) ^ (seq * 3));
	uint32_t min = sizeof(struct req_hdr);

	if ((h & 15) == 0) /* 1 in 16 anywhere up to the largest */
		return min + (uint32_t)((h >> 8) % (max_msg - min + 1));
	return min + (uint32_t)((h >> 8) % 233);
}

/* Role "stress-client NAME INDEX MSGS SEED": send, check every reply. */
static int role_stress_client(int argc, char **argv)
{
	static unsigned char msg[65536], buf[65536];
	static uint32_t sums[ML_PRIO_COUNT][WINDOW];
	uint64_t sent[ML_PRIO_COUNT] = { 0 }, rcvd[ML_PRIO_COUNT] = { 0 };
	uint64_t n_sent = 0, n_rcvd = 0, msgs, seed;
	int64_t last_progress;
	unsigned idx, lane = 0;
	bool pending = false;
	ml_chan *c = NULL;
	int err, ret = 1;

	if (argc < 4)
		return 2;
	idx = (unsigned)atoi(argv[1]);
	msgs = strtoull(argv[2], NULL, 0);
	seed = strtoull(argv[3], NULL, 0);
	err = connect_retry(&c, argv[0], 10 * SEC, -ENOENT);
	if (err) {
		fprintf(stderr, "stress-client %u: connect: %s\n", idx, ml_strerror(err));
		return 1;
	}
	last_progress = now_ns();
	while (n_sent < msgs || n_rcvd < msgs) {
		bool progress = false;
		int n, p;

		/* Build the next request once; send it when there is room. */
		if (n_sent < msgs && !pending) {
			struct req_hdr h;
			uint64_t x;

			lane = (unsigned)(mix(seed ^ ((uint64_t)idx << 48) ^ n_sent) % ML_PRIO_COUNT);
			h.client = idx;
			h.lane = lane;
			h.seq = sent[lane];
			h.len = stress_len(seed, idx, lane, h.seq, 4096);
			x = mix(seed + ((uint64_t)idx << 40) + ((uint64_t)lane << 56) + h.seq);
			for (uint32_t i = sizeof(h); i < h.len; i += 8) {
				x = mix(x);
				memcpy(msg + i, &x, h.len - i < 8 ? h.len - i : 8);
			}
			h.sum = body_sum(msg + sizeof(h), h.len - sizeof(h));
			memcpy(msg, &h, sizeof(h));
			pending = true;
		}
		if (pending && sent[lane] - rcvd[lane] < WINDOW) {
			struct req_hdr h;

			memcpy(&h, msg, sizeof(h));
			err = ml_chan_send(c, (int)lane, msg, h.len);
			if (!err) {
				sums[lane][h.seq % WINDOW] = h.sum;
				sent[lane]++;
				n_sent++;
				pending = false;
				progress = true;
			} else if (err != -EAGAIN) {
				fprintf(stderr, "stress-client %u: send %llu: %s\n", idx,
					(unsigned long long)n_sent, ml_strerror(err));
				goto out;
			}
		}
		while ((n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf))) >= 0) {
			struct rep_hdr r;
			uint32_t want_len;

			if ((size_t)n < sizeof(r) || p < 0 || p >= ML_PRIO_COUNT) {
				fprintf(stderr, "stress-client %u: bad reply (len %d, prio %d)\n", idx,
					n, p);
				goto out;
			}
			memcpy(&r, buf, sizeof(r));
			want_len = (uint32_t)(sizeof(r) + r.seq % 49);
			if (r.lane != (uint32_t)p || r.seq != rcvd[p] || rcvd[p] >= sent[p] ||
			    r.sum != sums[p][r.seq % WINDOW] || (uint32_t)n != want_len) {
				fprintf(stderr,
					"stress-client %u: reply prio %d: seq %llu lane %u sum %08x len %d, want seq %llu sum %08x len %u\n",
					idx, p, (unsigned long long)r.seq, r.lane, r.sum, n,
					(unsigned long long)rcvd[p], sums[p][rcvd[p] % WINDOW], want_len);
				goto out;
			}
			for (int i = (int)sizeof(r); i < n; i++)
				if (buf[i] != (unsigned char)(r.seq + (uint64_t)i)) {
					fprintf(stderr, "stress-client %u: reply filler differs\n", idx);
					goto out;
				}
			rcvd[p]++;
			n_rcvd++;
			progress = true;
		}
		if (n != -EAGAIN) {
			fprintf(stderr, "stress-client %u: recv: %s\n", idx, ml_strerror(n));
			goto out;
		}
		if (progress) {
			if ((n_rcvd & 4095) == 0)
				last_progress = now_ns();
			continue;
		}
		if (now_ns() - last_progress > 60 * SEC) {
			fprintf(stderr, "stress-client %u: no progress for 60 s (sent %llu, got %llu)\n",
				idx, (unsigned long long)n_sent, (unsigned long long)n_rcvd);
			goto out;
		}
		err = ml_chan_wait(c, 50 * MS);
		if (err && err != -ETIMEDOUT) {
			fprintf(stderr, "stress-client %u: wait: %s\n", idx, ml_strerror(err));
			goto out;
		}
		last_progress = err ? last_progress : now_ns();
	}
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static uint64_t stress_msgs(void)
{
	const char *e = getenv("CHAN_MSGS");

	return e && *e ? strtoull(e, NULL, 0) : 1000000;
}

static int many_clients(unsigned nclients)
{
	static unsigned char buf[65536], rep[128];
	uint64_t expect[ML_CHAN_MAX_CLIENTS][ML_PRIO_COUNT];
	int idx_of_slot[ML_CHAN_MAX_CLIENTS];
	struct ml_chan_opts o = opts_default();
	uint64_t msgs = stress_msgs(), total = 0, seed;
	pid_t pid[16] = { 0 };
	char name[80], sidx[16], smsgs[32], sseed[32];
	int64_t t0, last = 0;
	double dt;
	ml_chan *d = NULL;
	int ret = -1;

	seed = getenv("CHAN_SEED") ? strtoull(getenv("CHAN_SEED"), NULL, 0) :
				     (uint64_t)time(NULL) ^ (uint64_t)getpid();
	memset(expect, 0, sizeof(expect));
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		idx_of_slot[i] = -1;
	chan_name(name, sizeof(name), "many");
	o.max_clients = nclients;
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	snprintf(smsgs, sizeof(smsgs), "%llu", (unsigned long long)msgs);
	snprintf(sseed, sizeof(sseed), "%llu", (unsigned long long)seed);
	t0 = now_ns();
	for (unsigned k = 0; k < nclients; k++) {
		const char *args[] = { "--role", "stress-client", name, sidx, smsgs, sseed, NULL };

		snprintf(sidx, sizeof(sidx), "%u", k);
		pid[k] = spawn_exec(args);
		CHECK(pid[k] > 0, "spawn");
	}
	last = now_ns();
	while (total < msgs * nclients) {
		int prio, n, err;
		unsigned cl;

		n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf));
		if (n == -EAGAIN) {
			if (now_ns() - last > 60 * SEC) {
				int st;

				for (unsigned k = 0; k < nclients; k++)
					if (waitpid(pid[k], &st, WNOHANG) == pid[k]) {
						failf("client %u exited early (status %#x) at %llu messages",
						      k, st, (unsigned long long)total);
						pid[k] = 0;
						goto out;
					}
				CHECK(0, "no message for 60 s after %llu", (unsigned long long)total);
			}
			err = ml_chan_wait(d, 100 * MS);
			CHECK(err == 0 || err == -ETIMEDOUT, "daemon wait: %s", ml_strerror(err));
			if (err == -ETIMEDOUT) {
				/* A client that died early shows as no traffic. */
				for (unsigned k = 0; k < nclients; k++) {
					int st;

					if (pid[k] > 0 && waitpid(pid[k], &st, WNOHANG) == pid[k]) {
						pid[k] = 0;
						CHECK(0, "client %u exited (status %#x) before the end, at %llu messages",
						      k, st, (unsigned long long)total);
					}
				}
			}
			continue;
		}
		CHECK(n >= 0, "daemon recv: %s", ml_strerror(n));
		CHECK(cl < nclients, "client id %u", cl);
		{
			struct req_hdr h;
			struct rep_hdr r;
			uint32_t rlen;

			CHECK((size_t)n >= sizeof(h), "short message (%d bytes) from %u", n, cl);
			memcpy(&h, buf, sizeof(h));
			if (idx_of_slot[cl] < 0)
				idx_of_slot[cl] = (int)h.client;
			CHECK(h.client < nclients && idx_of_slot[cl] == (int)h.client,
			      "slot %u: message from client %u, earlier %d", cl, h.client,
			      idx_of_slot[cl]);
			CHECK(h.lane == (uint32_t)prio, "client %u: lane %u came at prio %d", h.client,
			      h.lane, prio);
			CHECK(h.seq == expect[cl][prio],
			      "client %u lane %d: seq %llu, want %llu (lost or reordered)", h.client,
			      prio, (unsigned long long)h.seq,
			      (unsigned long long)expect[cl][prio]);
			CHECK(h.len == (uint32_t)n &&
				      h.len == stress_len(seed, h.client, h.lane, h.seq, 4096),
			      "client %u lane %d seq %llu: len %d, header %u", h.client, prio,
			      (unsigned long long)h.seq, n, h.len);
			CHECK(body_sum(buf + sizeof(h), h.len - sizeof(h)) == h.sum,
			      "client %u lane %d seq %llu: checksum differs", h.client, prio,
			      (unsigned long long)h.seq);
			expect[cl][prio]++;
			total++;
			r.seq = h.seq;
			r.lane = h.lane;
			r.sum = h.sum;
			rlen = (uint32_t)(sizeof(r) + r.seq % 49);
			memcpy(rep, &r, sizeof(r));
			for (uint32_t i = sizeof(r); i < rlen; i++)
				rep[i] = (unsigned char)(r.seq + i);
			err = ml_chan_reply(d, cl, prio, rep, rlen);
			if (err == -EAGAIN)
				err = ml_chan_send_wait(d, cl, prio, rep, rlen, 30 * SEC);
			CHECK_RC(err, 0);
		}
		if ((total & 1023) == 0)
			last = now_ns();
	}
	for (unsigned k = 0; k < nclients; k++) {
		CHECK(reap_ok(pid[k], "stress client", 60 * SEC), "client %u", k);
		pid[k] = 0;
	}
	dt = (double)(now_ns() - t0) / 1e9;
	/* Every client gone, nothing left over. */
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	CHECK(ml_chan_connected(d) == 0, "daemon still sees clients");
	for (unsigned s = 0; s < nclients; s++) {
		uint64_t sum = 0;

		for (int p = 0; p < ML_PRIO_COUNT; p++)
			sum += expect[s][p];
		CHECK(sum == msgs, "slot %u: %llu messages, want %llu", s, (unsigned long long)sum,
		      (unsigned long long)msgs);
	}
	printf("  # %u clients x %llu messages (seed %llu): %.2f s, %.0f round trips/s\n", nclients,
	       (unsigned long long)msgs, (unsigned long long)seed, dt, (double)total / dt);
	ret = 0;
out:
	for (unsigned k = 0; k < nclients; k++)
		if (pid[k] > 0) {
			kill(pid[k], SIGKILL);
			waitpid(pid[k], NULL, 0);
		}
	ml_chan_close(d);
	return ret;
}

static int t_many_clients_4(void)
{
	return many_clients(4);
}

static int t_many_clients_8(void)
{
	return many_clients(8);
}

/* ---- test: a full lane ---------------------------------------------------- */

struct full_shared {
	_Atomic int step;     /* daemon -> client */
	_Atomic int cstep;    /* client -> daemon */
	_Atomic long sent_low;
	_Atomic long sent_crit;
	_Atomic long long wait_ns;
	char name[80];
};

#define FULL_RING 4096u
#define FULL_MSG 64u

static int full_client(void *arg)
{
	struct full_shared *sh = arg;
	char msg[FULL_MSG];
	ml_chan *c = NULL;
	long n = 0;
	int64_t t;
	int err, ret = 1;

	memset(msg, 0x5a, sizeof(msg));
	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	/* Fill the Low lane: the daemon does not read. */
	while ((err = ml_chan_send(c, ML_PRIO_LOW, msg, sizeof(msg))) == 0)
		CHECK(++n < 100000, "Low lane never fills");
	CHECK_RC(err, -EAGAIN);
	CHECK(n > 0, "not one message fit");
	/* Still full a little later: nothing was lost or read. */
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, msg, sizeof(msg)), -EAGAIN);
	/* Lanes are separate: Critical still has room. */
	CHECK_RC(ml_chan_send(c, ML_PRIO_CRITICAL, msg, sizeof(msg)), 0);
	atomic_store(&sh->sent_crit, 1);
	/* Timed blocking send with no reader: -EAGAIN after about the timeout. */
	t = now_ns();
	err = ml_chan_send_wait(c, 0, ML_PRIO_LOW, msg, sizeof(msg), 200 * MS);
	t = now_ns() - t;
	CHECK_RC(err, -EAGAIN);
	CHECK(t >= 190 * MS && t < 5 * SEC, "send_wait(200 ms) gave up after %lld ms",
	      (long long)(t / MS));
	CHECK_RC(ml_chan_send_wait(c, 0, ML_PRIO_LOW, msg, sizeof(msg), 0), -EAGAIN);
	atomic_store(&sh->sent_low, n);
	/* Now the daemon starts reading after 300 ms: a long send_wait succeeds. */
	atomic_store(&sh->cstep, 1);
	t = now_ns();
	err = ml_chan_send_wait(c, 0, ML_PRIO_LOW, msg, sizeof(msg), 10 * SEC);
	t = now_ns() - t;
	CHECK_RC(err, 0);
	atomic_store(&sh->wait_ns, t);
	CHECK(t >= 250 * MS, "send_wait succeeded after %lld ms, before the daemon read",
	      (long long)(t / MS));
	atomic_store(&sh->sent_low, n + 1);
	atomic_store(&sh->cstep, 2);
	/* Wait for the daemon's half: its replies fill our response lane. */
	CHECK(wait_flag(&sh->step, 1, 20 * SEC), "daemon never filled the response lane");
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int t_full_lane(void)
{
	struct full_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	char buf[FULL_MSG * 2];
	ml_chan *d = NULL;
	long got_low = 0, got_crit = 0, nrep = 0, want_low;
	unsigned cl = 0;
	pid_t pid = 0;
	int64_t t;
	int err, prio, n, ret = -1;

	chan_name(sh->name, sizeof(sh->name), "full");
	o.ring_size = FULL_RING;
	o.max_msg = FULL_MSG;
	o.max_clients = 1;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(full_client, sh);
	CHECK(wait_flag(&sh->cstep, 1, 20 * SEC), "client never filled its lane");
	sleep_ms(300);
	/* Read everything, including the send that waited for the room. */
	t = now_ns();
	want_low = atomic_load(&sh->sent_low) + 1;
	while (got_low < want_low || got_crit < 1) {
		CHECK(now_ns() - t < 10 * SEC, "got %ld Low + %ld Critical, want %ld + 1", got_low,
		      got_crit, want_low);
		n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf));
		if (n == -EAGAIN) {
			ml_chan_wait(d, 20 * MS);
			continue;
		}
		CHECK(n == FULL_MSG, "recv: %d (%s)", n, n < 0 ? ml_strerror(n) : "");
		CHECK(prio == ML_PRIO_CRITICAL || prio == ML_PRIO_LOW, "prio %d", prio);
		if (prio == ML_PRIO_CRITICAL) {
			/* Critical goes first even though it was sent after Low filled. */
			CHECK(got_low == 0, "Critical read after %ld Low", got_low);
			got_crit++;
		} else {
			got_low++;
		}
	}
	CHECK(wait_flag(&sh->cstep, 2, 10 * SEC), "client send_wait never returned");
	CHECK(got_low == atomic_load(&sh->sent_low), "read %ld Low, client sent %ld", got_low,
	      atomic_load(&sh->sent_low));
	CHECK_RC(ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)), -EAGAIN);
	/* The daemon's side: the client does not read, so the response lane fills. */
	memset(buf, 1, sizeof(buf));
	while ((err = ml_chan_reply(d, cl, ML_PRIO_HIGH, buf, FULL_MSG)) == 0)
		CHECK(++nrep < 100000, "response lane never fills");
	CHECK_RC(err, -EAGAIN);
	t = now_ns();
	err = ml_chan_send_wait(d, cl, ML_PRIO_HIGH, buf, FULL_MSG, 150 * MS);
	t = now_ns() - t;
	CHECK_RC(err, -EAGAIN);
	CHECK(t >= 140 * MS && t < 5 * SEC, "daemon send_wait(150 ms) gave up after %lld ms",
	      (long long)(t / MS));
	atomic_store(&sh->step, 1);
	CHECK(reap_ok(pid, "client", 20 * SEC), "client");
	pid = 0;
	printf("  # Low lane held %ld x %u-byte messages; send_wait succeeded after %lld ms\n",
	       atomic_load(&sh->sent_low) - 1, FULL_MSG, atomic_load(&sh->wait_ns) / MS);
	ret = 0;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	ml_chan_close(d);
	return ret;
}

/* ---- test: backpressure --------------------------------------------------- */

struct bp_shared {
	_Atomic int step;  /* daemon -> client */
	_Atomic int cstep; /* client -> daemon */
	double fill;       /* the client's own view when full */
	char name[80];
};

#define BP_EPS 1e-6

static bool near(double a, double b)
{
	return a > b - BP_EPS && a < b + BP_EPS;
}

static int bp_client(void *arg)
{
	struct bp_shared *sh = arg;
	char msg[FULL_MSG];
	double prev, bp;
	ml_chan *c = NULL;
	int err, ret = 1, n = 0;

	memset(msg, 7, sizeof(msg));
	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	bp = ml_chan_backpressure(c);
	CHECK(bp == 0.0, "empty channel: backpressure %g", bp);
	CHECK_RC(ml_chan_set_backpressure(c, 0.5), -EINVAL);
	prev = 0.0;
	while ((err = ml_chan_send(c, ML_PRIO_HIGH, msg, sizeof(msg))) == 0) {
		bp = ml_chan_backpressure(c);
		CHECK(bp > prev && bp <= 1.0, "after %d sends: backpressure %g, before %g", n + 1,
		      bp, prev);
		prev = bp;
		CHECK(++n < 100000, "lane never fills");
	}
	CHECK_RC(err, -EAGAIN);
	CHECK(prev > 0.8, "full lane: backpressure only %g", prev);
	sh->fill = prev;
	atomic_store(&sh->cstep, 1);
	/* Step 1: the daemon set 0.25. */
	CHECK(wait_flag(&sh->step, 1, 10 * SEC), "daemon step 1");
	bp = ml_chan_backpressure(c);
	CHECK(near(bp, 0.25), "override 0.25: client sees %g", bp);
	atomic_store(&sh->cstep, 2);
	/* Step 2: the daemon set 1.0. */
	CHECK(wait_flag(&sh->step, 2, 10 * SEC), "daemon step 2");
	bp = ml_chan_backpressure(c);
	CHECK(near(bp, 1.0), "override 1.0: client sees %g", bp);
	atomic_store(&sh->cstep, 3);
	/* Step 3: override removed: the real fill again. */
	CHECK(wait_flag(&sh->step, 3, 10 * SEC), "daemon step 3");
	bp = ml_chan_backpressure(c);
	CHECK(near(bp, sh->fill), "override removed: client sees %g, fill is %g", bp, sh->fill);
	atomic_store(&sh->cstep, 4);
	/* Step 4: the daemon read everything. */
	CHECK(wait_flag(&sh->step, 4, 10 * SEC), "daemon step 4");
	bp = ml_chan_backpressure(c);
	CHECK(bp == 0.0, "drained: client sees %g", bp);
	/* And 0.0 as an override is an override, not "none". */
	atomic_store(&sh->cstep, 5);
	CHECK(wait_flag(&sh->step, 5, 10 * SEC), "daemon step 5");
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, msg, sizeof(msg)), 0);
	bp = ml_chan_backpressure(c);
	CHECK(near(bp, 0.0), "override 0.0 with one message in: client sees %g", bp);
	atomic_store(&sh->cstep, 6);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int t_backpressure(void)
{
	struct bp_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	char buf[FULL_MSG];
	ml_chan *d = NULL;
	pid_t pid = 0;
	double bp;
	int n, ret = -1;

	chan_name(sh->name, sizeof(sh->name), "bp");
	o.ring_size = FULL_RING;
	o.max_msg = FULL_MSG;
	o.max_clients = 2;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	bp = ml_chan_backpressure(d);
	CHECK(bp == 0.0, "new daemon: backpressure %g", bp);
	pid = spawn(bp_client, sh);
	CHECK(wait_flag(&sh->cstep, 1, 10 * SEC), "client never filled its lane");
	/* The daemon sees the same fill (once it has looked at its clients). */
	ml_chan_connected(d);
	ml_chan_wait(d, 0);
	bp = ml_chan_backpressure(d);
	CHECK(near(bp, sh->fill), "daemon sees %g, client %g", bp, sh->fill);
	CHECK_RC(ml_chan_set_backpressure(d, 1.5), -EINVAL);
	CHECK_RC(ml_chan_set_backpressure(d, 0.25), 0);
	CHECK(near(ml_chan_backpressure(d), 0.25), "daemon override: %g", ml_chan_backpressure(d));
	atomic_store(&sh->step, 1);
	CHECK(wait_flag(&sh->cstep, 2, 10 * SEC), "client step 2");
	CHECK_RC(ml_chan_set_backpressure(d, 1.0), 0);
	atomic_store(&sh->step, 2);
	CHECK(wait_flag(&sh->cstep, 3, 10 * SEC), "client step 3");
	CHECK_RC(ml_chan_set_backpressure(d, -1.0), 0);
	CHECK(near(ml_chan_backpressure(d), sh->fill), "daemon: override removed: %g",
	      ml_chan_backpressure(d));
	atomic_store(&sh->step, 3);
	CHECK(wait_flag(&sh->cstep, 4, 10 * SEC), "client step 4");
	while ((n = ml_chan_recv(d, NULL, NULL, buf, sizeof(buf))) >= 0)
		;
	CHECK_RC(n, -EAGAIN);
	CHECK(ml_chan_backpressure(d) == 0.0, "daemon, drained: %g", ml_chan_backpressure(d));
	atomic_store(&sh->step, 4);
	CHECK(wait_flag(&sh->cstep, 5, 10 * SEC), "client step 5");
	CHECK_RC(ml_chan_set_backpressure(d, 0.0), 0);
	atomic_store(&sh->step, 5);
	CHECK(wait_flag(&sh->cstep, 6, 10 * SEC), "client step 6");
	CHECK(reap_ok(pid, "client", 10 * SEC), "client");
	pid = 0;
	ret = 0;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	ml_chan_close(d);
	return ret;
}

/* ---- test: shutdown ------------------------------------------------------- */

#define SD_CLIENTS 3

struct sd_shared {
	_Atomic int connected;
	_Atomic int going; /* the daemon is about to shut down */
	_Atomic int down;  /* the daemon has shut down */
	_Atomic long long going_at;
	int use_close;
	long long seen_ns[SD_CLIENTS];
	char name[80];
};

/*
 * Client k: k = 0 waits in ml_chan_wait all along (it must wake with
 * -EPIPE); the others look only after the daemon is down. Each must first
 * get the three replies sent before the shutdown, most urgent first.
 */
static int sd_client(void *arg)
{
	struct sd_shared *sh = (struct sd_shared *)((uintptr_t)arg & ~(uintptr_t)7);
	int k = (int)((uintptr_t)arg & 7), got = 0, n, p, err, ret = 1;
	char buf[64];
	ml_chan *c = NULL;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, "h", 1), 0);
	atomic_fetch_add(&sh->connected, 1);
	if (k == 0) {
		for (;;) {
			err = ml_chan_wait(c, 20 * SEC);
			if (err == -EPIPE)
				break;
			CHECK_RC(err, 0);
			while ((n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf))) >= 0) {
				/* Sent c, b, a: this one may see them as they come. */
				CHECK(n == 1 && buf[0] == 'a' + p, "reply %d: '%c' len %d prio %d",
				      got, buf[0], n, p);
				got++;
			}
			if (n == -EPIPE)
				break;
			CHECK_RC(n, -EAGAIN);
		}
		sh->seen_ns[k] = now_ns() - atomic_load(&sh->going_at);
		CHECK(atomic_load(&sh->going), "-EPIPE before the daemon went down");
	} else {
		CHECK(wait_flag(&sh->down, 1, 20 * SEC), "daemon never went down");
	}
	/* Whatever is left, most urgent first, then -EPIPE for good. */
	while ((n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf))) >= 0) {
		CHECK(n == 1 && buf[0] == 'a' + p, "reply %d: '%c' len %d prio %d", got, buf[0], n,
		      p);
		CHECK(k == 0 || p == got, "reply %d at prio %d: not most urgent first", got, p);
		got++;
	}
	CHECK(got == 3, "client %d got %d of 3 replies sent before the shutdown", k, got);
	CHECK_RC(n, -EPIPE);
	CHECK_RC(ml_chan_recv(c, &p, NULL, buf, sizeof(buf)), -EPIPE);
	CHECK_RC(ml_chan_wait(c, 0), -EPIPE);
	CHECK_RC(ml_chan_wait(c, 1 * SEC), -EPIPE);
	CHECK_RC(ml_chan_send(c, ML_PRIO_LOW, "x", 1), -EPIPE);
	CHECK_RC(ml_chan_send_wait(c, 0, ML_PRIO_LOW, "x", 1, 100 * MS), -EPIPE);
	CHECK(ml_chan_connected(c) == 0, "client still connected");
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int shutdown_test(bool use_close)
{
	struct sd_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	pid_t pid[SD_CLIENTS] = { 0 };
	char buf[8];
	unsigned ids[SD_CLIENTS];
	ml_chan *d = NULL;
	int ret = -1, n;

	chan_name(sh->name, sizeof(sh->name), use_close ? "close" : "shut");
	sh->use_close = use_close;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	for (int k = 0; k < SD_CLIENTS; k++)
		pid[k] = spawn(sd_client, (void *)((uintptr_t)sh | (uintptr_t)k));
	CHECK(wait_flag(&sh->connected, SD_CLIENTS, 10 * SEC), "clients never connected");
	/* The daemon learns its clients' ids from one message each. */
	for (int k = 0; k < SD_CLIENTS; k++) {
		int prio;

		CHECK_RC(ml_chan_wait(d, 10 * SEC), 0);
		n = ml_chan_recv(d, &prio, &ids[k], buf, sizeof(buf));
		CHECK(n == 1 && buf[0] == 'h', "hello %d: %d", k, n);
		for (int j = 0; j < k; j++)
			CHECK(ids[j] != ids[k], "two clients with id %u", ids[k]);
	}
	/* Replies in reverse priority, one per lane: they must come out a, b, c. */
	sleep_ms(50);
	for (int k = 0; k < SD_CLIENTS; k++) {
		CHECK_RC(ml_chan_reply(d, ids[k], ML_PRIO_LOW, "c", 1), 0);
		CHECK_RC(ml_chan_reply(d, ids[k], ML_PRIO_HIGH, "b", 1), 0);
		CHECK_RC(ml_chan_reply(d, ids[k], ML_PRIO_CRITICAL, "a", 1), 0);
	}
	sleep_ms(50);
	atomic_store(&sh->going_at, now_ns());
	atomic_store(&sh->going, 1);
	if (use_close) {
		ml_chan_close(d);
		d = NULL;
	} else {
		CHECK_RC(ml_chan_shutdown(d), 0);
	}
	atomic_store(&sh->down, 1);
	for (int k = 0; k < SD_CLIENTS; k++) {
		CHECK(reap_ok(pid[k], "client", 20 * SEC), "client %d", k);
		pid[k] = 0;
	}
	if (d) {
		/* A shut-down daemon receives nothing more and is not connected. */
		n = ml_chan_recv(d, NULL, NULL, buf, sizeof(buf));
		CHECK(n == -EAGAIN || n == -EPIPE, "recv after shutdown: %d", n);
	}
	if (posix_shm_backend() && !d)
		CHECK(!shm_exists(sh->name), "/dev/shm/memlink.%s left after close", sh->name);
	printf("  # the waiting client saw -EPIPE %.1f ms after the shutdown began\n",
	       (double)sh->seen_ns[0] / 1e6);
	ret = 0;
out:
	for (int k = 0; k < SD_CLIENTS; k++)
		if (pid[k] > 0) {
			kill(pid[k], SIGKILL);
			waitpid(pid[k], NULL, 0);
		}
	ml_chan_close(d);
	return ret;
}

static int t_shutdown(void)
{
	return shutdown_test(false);
}

static int t_shutdown_by_close(void)
{
	return shutdown_test(true);
}

/* ---- test: connect errors -------------------------------------------------- */

struct hold_shared {
	_Atomic int connected;
	_Atomic int release; /* client k leaves when release > k */
	_Atomic int left;
	char name[80];
};

static int hold_client(void *arg)
{
	struct hold_shared *sh = (struct hold_shared *)((uintptr_t)arg & ~(uintptr_t)7);
	int k = (int)((uintptr_t)arg & 7), ret = 1;
	ml_chan *c = NULL;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(roundtrip(c, ML_PRIO_HIGH, "hold", 4, 5 * SEC), 0);
	atomic_fetch_add(&sh->connected, 1);
	CHECK(wait_flag(&sh->release, k + 1, 60 * SEC), "never released");
	ml_chan_close(c);
	c = NULL;
	atomic_fetch_add(&sh->left, 1);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int t_connect_errors(void)
{
	struct hold_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	const char *args[] = { "--role", "serve", sh->name, "2", NULL };
	pid_t daemon = 0, pid[2] = { 0, 0 };
	char missing[80];
	ml_chan *c = NULL, *c2 = NULL, *d2 = NULL;
	int64_t t;
	int err, ret = -1;

	chan_name(missing, sizeof(missing), "missing");
	CHECK_RC(ml_client_connect(&c, missing, &o), -ENOENT);
	CHECK_RC(ml_client_connect(&c, "", &o), -EINVAL);
	CHECK_RC(ml_client_connect(&c, "bad/name", &o), -EINVAL);
	CHECK_RC(ml_client_connect(&c, NULL, &o), -EINVAL);
	{
		char longname[ML_CHAN_NAME_MAX + 2];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = 0;
		CHECK_RC(ml_client_connect(&c, longname, &o), -EINVAL);
		CHECK_RC(ml_daemon_create(&c, longname, &o), -EINVAL);
	}
	{
		struct ml_chan_opts bad = opts_default();

		bad.flags = 1;
		CHECK_RC(ml_daemon_create(&c, missing, &bad), -EINVAL);
		bad = opts_default();
		bad.max_clients = ML_CHAN_MAX_CLIENTS + 1;
		CHECK_RC(ml_daemon_create(&c, missing, &bad), -EINVAL);
		bad = opts_default();
		bad.ring_size = 1000;
		CHECK_RC(ml_daemon_create(&c, missing, &bad), -EINVAL);
		if (posix_shm_backend())
			CHECK(!shm_exists(missing), "a refused create left /dev/shm/memlink.%s",
			      missing);
	}

	/* A daemon process with two slots. */
	chan_name(sh->name, sizeof(sh->name), "slots");
	daemon = spawn_exec(args);
	CHECK(daemon > 0, "spawn");
	for (int k = 0; k < 2; k++)
		pid[k] = spawn(hold_client, (void *)((uintptr_t)sh | (uintptr_t)k));
	CHECK(wait_flag(&sh->connected, 2, 10 * SEC), "clients never connected");
	/* A live daemon's name cannot be taken. */
	CHECK_RC(ml_daemon_create(&d2, sh->name, &o), -EEXIST);
	/* Both slots taken. */
	CHECK_RC(ml_client_connect(&c, sh->name, &o), -ECONNREFUSED);
	/* Client 0 leaves: its slot comes back (once the daemon has seen it go). */
	atomic_store(&sh->release, 1);
	CHECK(wait_flag(&sh->left, 1, 10 * SEC), "client 0 never left");
	t = now_ns();
	err = connect_retry(&c, sh->name, 2 * SEC, -ECONNREFUSED);
	t = now_ns() - t;
	CHECK(err == 0, "connect after a client left: %s (after %lld ms)", ml_strerror(err),
	      (long long)(t / MS));
	CHECK_RC(roundtrip(c, ML_PRIO_LOW, "new", 3, 5 * SEC), 0);
	printf("  # a freed slot could be taken %.1f ms after its client left\n", (double)t / 1e6);
	/* Full again. */
	CHECK_RC(ml_client_connect(&c2, sh->name, &o), -ECONNREFUSED);
	atomic_store(&sh->release, 2);
	CHECK(reap_ok(pid[0], "client 0", 10 * SEC), "client 0");
	pid[0] = 0;
	CHECK(reap_ok(pid[1], "client 1", 10 * SEC), "client 1");
	pid[1] = 0;
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(c2);
	ml_chan_close(d2);
	atomic_store(&sh->release, 99);
	for (int k = 0; k < 2; k++)
		if (pid[k] > 0)
			reap(pid[k], 5 * SEC);
	if (daemon > 0) {
		kill(daemon, SIGTERM);
		if (!reap_ok(daemon, "daemon (SIGTERM)", 5 * SEC))
			ret = -1;
		if (posix_shm_backend() && shm_exists(sh->name)) {
			failf("/dev/shm/memlink.%s left after the daemon closed", sh->name);
			ret = -1;
		}
	}
	return ret;
}

/* Corrupt one field of the control region and expect -EPROTO, then restore. */
static int t_layout_mismatch(void)
{
	struct ml_chan_opts o = opts_default();
	char name[80], path[160];
	struct ml__ctl *ctl = NULL;
	ml_chan *d = NULL, *c = NULL;
	struct stat st;
	int fd = -1, ret = -1;

	if (!posix_shm_backend()) {
		skipf("needs a /dev/shm backend");
		return 1;
	}
	chan_name(name, sizeof(name), "proto");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	snprintf(path, sizeof(path), "/dev/shm/memlink.%s", name);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK(!fstat(fd, &st) && (size_t)st.st_size >= ML__CTL_SIZE, "size");
	CHECK((st.st_mode & 0777) == 0600, "mode %o, want 0600", (unsigned)(st.st_mode & 0777));
	ctl = mmap(NULL, ML__CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(ctl != MAP_FAILED, "mmap: %s", strerror(errno));
	CHECK(ctl->magic == ML__CHAN_MAGIC && ctl->version == ML__CHAN_VERSION,
	      "magic %#x version %u", ctl->magic, ctl->version);
	{
		/* Each field alone: version, magic, ctl_size, stride, region size. */
		uint32_t *f32[] = { &ctl->version, &ctl->magic, &ctl->ctl_size, &ctl->max_clients };
		uint32_t bad32[] = { ML__CHAN_VERSION + 1, 0x12345678, 8192, ML_CHAN_MAX_CLIENTS + 1 };
		uint64_t *f64[] = { &ctl->client_stride, &ctl->region_size };

		for (unsigned i = 0; i < 4; i++) {
			uint32_t keep = *f32[i];

			*f32[i] = bad32[i];
			c = NULL;
			int err = ml_client_connect(&c, name, &o);

			*f32[i] = keep;
			CHECK(err == -EPROTO, "field %u corrupted: connect = %d (%s), want -EPROTO", i,
			      err, ml_strerror(err));
		}
		for (unsigned i = 0; i < 2; i++) {
			uint64_t keep = *f64[i];

			*f64[i] = keep * 2;
			c = NULL;
			int err = ml_client_connect(&c, name, &o);

			*f64[i] = keep;
			CHECK(err == -EPROTO, "64-bit field %u corrupted: connect = %d (%s), want -EPROTO",
			      i, err, ml_strerror(err));
		}
	}
	/* Restored: connecting works, and a round trip goes through. */
	c = NULL;
	CHECK_RC(ml_client_connect(&c, name, &o), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "v", 1), 0);
	{
		char b[4];
		unsigned cl;
		int prio;

		CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
		CHECK_RC(ml_chan_recv(d, &prio, &cl, b, sizeof(b)), 1);
		CHECK(prio == ML_PRIO_HIGH && b[0] == 'v', "prio %d byte %c", prio, b[0]);
	}
	ret = 0;
out:
	if (ctl && ctl != MAP_FAILED)
		munmap(ctl, ML__CTL_SIZE);
	if (fd >= 0)
		close(fd);
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/* ---- test: a daemon killed with SIGKILL ----------------------------------- */

struct kill_shared {
	_Atomic long long killed_at;
};

static int killer(void *arg)
{
	struct kill_shared *sh = arg;
	pid_t victim = (pid_t)atomic_load(&sh->killed_at);

	sleep_ms(300);
	atomic_store(&sh->killed_at, now_ns());
	kill(victim, SIGKILL);
	return 0;
}

/*
 * `every_call`: after the wait saw -EPIPE, check that every other call on
 * the handle says -EPIPE too; else check reconnecting and replacing.
 */
static int daemon_sigkill(bool every_call)
{
	struct kill_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	char name[80], buf[8];
	const char *args[] = { "--role", "serve", name, NULL };
	pid_t daemon = 0, k = 0;
	ml_chan *c = NULL, *c2 = NULL, *d2 = NULL;
	int64_t t, delay;
	int err, st, ret = -1;

	chan_name(name, sizeof(name), "dkill");
	daemon = spawn_exec(args);
	CHECK(daemon > 0, "spawn");
	CHECK_RC(connect_retry(&c, name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(roundtrip(c, ML_PRIO_CRITICAL, "ping", 4, 5 * SEC), 0);
	CHECK(ml_chan_connected(c) == 1, "not connected");
	/* Kill the daemon while we wait for a reply that never comes. */
	atomic_store(&sh->killed_at, daemon);
	k = spawn(killer, sh);
	t = now_ns();
	err = ml_chan_wait(c, 10 * SEC);
	delay = now_ns() - atomic_load(&sh->killed_at);
	t = now_ns() - t;
	CHECK(err == -EPIPE, "wait with the daemon killed: %d (%s) after %lld ms", err,
	      ml_strerror(err), (long long)(t / MS));
	CHECK(t >= 250 * MS, "wait returned -EPIPE after %lld ms, before the kill",
	      (long long)(t / MS));
	CHECK(delay < 1 * SEC, "client noticed the dead daemon after %lld ms", (long long)(delay / MS));
	printf("  # client saw the daemon's death after %.1f ms\n", (double)delay / 1e6);
	st = reap(daemon, 5 * SEC);
	daemon = 0;
	CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "daemon status %#x", st);
	reap(k, 5 * SEC);
	k = 0;
	if (!every_call)
		goto reconnect;
	/* After that, every call on the handle says so (include/memlink.h:
	 * -EPIPE "the peer is gone: the daemon died"), as after a shutdown.
	 * Soft checks: each is reported. */
	SOFT_RC(ml_chan_connected(c), 0);
	SOFT_RC(ml_chan_wait(c, 100 * MS), -EPIPE);
	SOFT_RC(ml_chan_wait(c, 0), -EPIPE);
	SOFT_RC(ml_chan_recv(c, NULL, NULL, buf, sizeof(buf)), -EPIPE);
	SOFT_RC(ml_chan_send(c, ML_PRIO_LOW, "x", 1), -EPIPE);
	SOFT_RC(ml_chan_send_wait(c, 0, ML_PRIO_LOW, "x", 1, 100 * MS), -EPIPE);
	ret = atomic_load(&R->failed) ? -1 : 0;
	goto out;
reconnect:
	/* A new client of the dead daemon's name is refused. */
	err = ml_client_connect(&c2, name, &o);
	CHECK(err == -EPIPE || err == -ENOENT, "connect to a dead daemon: %d (%s)", err,
	      ml_strerror(err));
	/* A new daemon replaces the dead one's channel; its close removes it. */
	CHECK_RC(ml_daemon_create(&d2, name, &o), 0);
	ml_chan_close(d2);
	d2 = NULL;
	if (posix_shm_backend())
		CHECK(!shm_exists(name), "/dev/shm/memlink.%s left after the replacement closed", name);
	ret = 0;
out:
	ml_chan_close(d2);
	ml_chan_close(c2);
	ml_chan_close(c);
	if (k > 0)
		reap(k, 5 * SEC);
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		reap(daemon, 5 * SEC);
	}
	if ((ret || every_call) && posix_shm_backend()) {
		char path[160];

		snprintf(path, sizeof(path), "/memlink.%s", name);
		shm_unlink(path);
		/* and the darwin backend's lock file (lib/darwin/darwin.c) */
		snprintf(path, sizeof(path), "/tmp/memlink.%s.lock", name);
		unlink(path);
	}
	return ret;
}

static int t_daemon_sigkill(void)
{
	return daemon_sigkill(false);
}

static int t_daemon_sigkill_every_call(void)
{
	return daemon_sigkill(true);
}

/* ---- test: a client killed with SIGKILL ------------------------------------ */

struct ckill_shared {
	_Atomic int connected;
	_Atomic int go;
	_Atomic int done;
	_Atomic int refused_ok;
	_Atomic long long d_latency;
	char name[80];
};

#define CK_ROUNDS 2000

static int ck_victim(void *arg)
{
	struct ckill_shared *sh = arg;
	ml_chan *c = NULL;
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "victim", 6), 0);
	atomic_fetch_add(&sh->connected, 1);
	for (;;)
		pause();
out:
	ml_chan_close(c);
	return ret;
}

static int ck_worker(void *arg)
{
	struct ckill_shared *sh = arg;
	char msg[64];
	ml_chan *c = NULL;
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	atomic_fetch_add(&sh->connected, 1);
	CHECK(wait_flag(&sh->go, 1, 20 * SEC), "never told to go");
	for (int i = 0; i < CK_ROUNDS; i++) {
		int len = snprintf(msg, sizeof(msg), "w%d-%d", (int)getpid(), i);

		CHECK_RC(roundtrip(c, i % ML_PRIO_COUNT, msg, (size_t)len, 10 * SEC), 0);
	}
	atomic_fetch_add(&sh->done, 1);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int ck_refused(void *arg)
{
	struct ckill_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *c = NULL;
	int err = ml_client_connect(&c, sh->name, &o);

	if (err != -ECONNREFUSED) {
		failf("4th client: connect = %d (%s), want -ECONNREFUSED", err, ml_strerror(err));
		ml_chan_close(c);
		return 1;
	}
	atomic_store(&sh->refused_ok, 1);
	return 0;
}

static int ck_newcomer(void *arg)
{
	struct ckill_shared *sh = arg;
	ml_chan *c = NULL;
	int64_t t = now_ns();
	int ret = 1;

	CHECK_RC(connect_retry(&c, sh->name, 3 * SEC, -ECONNREFUSED), 0);
	atomic_store(&sh->d_latency, now_ns() - t);
	CHECK_RC(roundtrip(c, ML_PRIO_LOW, "newcomer", 8, 5 * SEC), 0);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int t_client_sigkill(void)
{
	struct ckill_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	pid_t victim = 0, w[2] = { 0, 0 }, r = 0, nc = 0;
	unsigned victim_id = 99;
	char buf[128];
	ml_chan *d = NULL;
	long served = 0;
	int st, n, prio, ret = -1;
	unsigned cl;

	chan_name(sh->name, sizeof(sh->name), "ckill");
	o.max_clients = 3;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	victim = spawn(ck_victim, sh);
	/* The victim's one message tells its id. */
	CHECK_RC(ml_chan_wait(d, 10 * SEC), 0);
	n = ml_chan_recv(d, &prio, &victim_id, buf, sizeof(buf));
	CHECK(n == 6 && !memcmp(buf, "victim", 6), "victim's message: %d", n);
	w[0] = spawn(ck_worker, sh);
	w[1] = spawn(ck_worker, sh);
	CHECK(wait_flag(&sh->connected, 3, 10 * SEC), "clients never connected");
	/* Every slot taken. */
	r = spawn(ck_refused, sh);
	CHECK(reap_ok(r, "4th client", 10 * SEC), "4th client");
	r = 0;
	CHECK(atomic_load(&sh->refused_ok), "4th client was not refused");
	/* Kill the victim. */
	kill(victim, SIGKILL);
	st = reap(victim, 5 * SEC);
	victim = 0;
	CHECK(st != -1 && WIFSIGNALED(st), "victim status %#x", st);
	/* The daemon finds out: replies to the dead client fail with -EPIPE. */
	{
		int64_t t = now_ns();
		int err;

		while ((err = ml_chan_reply(d, victim_id, ML_PRIO_LOW, "z", 1)) == 0 &&
		       now_ns() - t < 2 * SEC)
			ml_chan_wait(d, 20 * MS);
		CHECK_RC(err, -EPIPE);
		printf("  # replies to the killed client failed after %.1f ms\n",
		       (double)(now_ns() - t) / 1e6);
	}
	CHECK(ml_chan_connected(d) == 1, "daemon lost its other clients");
	/* The others go on. */
	atomic_store(&sh->go, 1);
	/* A newcomer takes the dead one's slot while the workers go on. */
	nc = spawn(ck_newcomer, sh);
	{
		int64_t end = now_ns() + 60 * SEC;
		bool saw_newcomer = false;

		while (atomic_load(&sh->done) < 2 || !saw_newcomer) {
			int err;

			CHECK(now_ns() < end, "workers done %d, newcomer seen %d after 60 s",
			      atomic_load(&sh->done), saw_newcomer);
			err = ml_chan_wait(d, 20 * MS);
			CHECK(err == 0 || err == -ETIMEDOUT, "daemon wait: %s", ml_strerror(err));
			while ((n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf))) >= 0) {
				if (n == 8 && !memcmp(buf, "newcomer", 8)) {
					saw_newcomer = true;
					CHECK(cl == victim_id, "newcomer got slot %u, the dead client's was %u",
					      cl, victim_id);
				} else {
					CHECK(cl != victim_id, "message from the dead client's slot %u: %.*s",
					      cl, n, buf);
				}
				err = ml_chan_send_wait(d, cl, prio, buf, (size_t)n, 5 * SEC);
				CHECK_RC(err, 0);
				served++;
			}
			CHECK_RC(n, -EAGAIN);
		}
	}
	CHECK(reap_ok(w[0], "worker", 20 * SEC), "worker");
	w[0] = 0;
	CHECK(reap_ok(w[1], "worker", 20 * SEC), "worker");
	w[1] = 0;
	CHECK(reap_ok(nc, "newcomer", 20 * SEC), "newcomer");
	nc = 0;
	CHECK(served == 2 * CK_ROUNDS + 1, "served %ld, want %d", served, 2 * CK_ROUNDS + 1);
	printf("  # the dead client's slot was taken %.1f ms after the kill\n",
	       (double)atomic_load(&sh->d_latency) / 1e6);
	ret = 0;
out:
	atomic_store(&sh->go, 1);
	{
		pid_t all[] = { victim, w[0], w[1], r, nc };

		for (unsigned i = 0; i < 5; i++)
			if (all[i] > 0) {
				kill(all[i], SIGKILL);
				waitpid(all[i], NULL, 0);
			}
	}
	ml_chan_close(d);
	return ret;
}

/* ---- test: nothing left behind ------------------------------------------------ */

static int t_shm_cleanup(void)
{
	struct ml_chan_opts o = opts_default();
	char name[80];
	const char *args[] = { "--role", "serve", name, NULL };
	ml_chan *d = NULL, *c1 = NULL, *c2 = NULL, *old = NULL;
	pid_t daemon = 0;
	int err, ret = -1;
	bool shm = posix_shm_backend();

	/* 1. daemon, clients come and go, daemon closes. */
	chan_name(name, sizeof(name), "clean");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	if (shm)
		CHECK(shm_exists(name), "no /dev/shm/memlink.%s while the daemon runs", name);
	CHECK_RC(ml_client_connect(&c1, name, &o), 0);
	CHECK_RC(ml_client_connect(&c2, name, &o), 0);
	ml_chan_close(c1);
	c1 = NULL;
	/* 2. ... and one client still connected when the daemon closes. */
	ml_chan_close(d);
	d = NULL;
	if (shm)
		CHECK(!shm_exists(name), "/dev/shm/memlink.%s left after the daemon closed", name);
	CHECK_RC(ml_chan_wait(c2, 0), -EPIPE);
	/* The name is free again at once. */
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	/* The old client, of the old channel, must not see the new one. */
	CHECK_RC(ml_chan_send(c2, ML_PRIO_LOW, "x", 1), -EPIPE);
	ml_chan_close(c2);
	c2 = NULL;
	ml_chan_close(d);
	d = NULL;
	if (shm)
		CHECK(!shm_exists(name), "/dev/shm/memlink.%s left after the second daemon", name);

	/* 3. a daemon killed with SIGKILL, replaced by a new one of the same name. */
	chan_name(name, sizeof(name), "replace");
	daemon = spawn_exec(args);
	CHECK(daemon > 0, "spawn");
	CHECK_RC(connect_retry(&old, name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(roundtrip(old, ML_PRIO_HIGH, "one", 3, 5 * SEC), 0);
	/* While it lives, the name is taken. */
	CHECK_RC(ml_daemon_create(&d, name, &o), -EEXIST);
	kill(daemon, SIGKILL);
	err = reap(daemon, 5 * SEC);
	daemon = 0;
	CHECK(err != -1 && WIFSIGNALED(err), "daemon status %#x", err);
	err = ml_daemon_create(&d, name, &o);
	CHECK(err == 0, "create over a dead daemon's channel: %s", ml_strerror(err));
	/* The old client still sees a dead daemon, not the new one. */
	CHECK_RC(ml_chan_wait(old, 200 * MS), -EPIPE);
	CHECK(ml_chan_connected(old) == 0, "old client connected to the new daemon");
	/* A new client reaches the new daemon. */
	CHECK_RC(ml_client_connect(&c1, name, &o), 0);
	CHECK_RC(ml_chan_send(c1, ML_PRIO_CRITICAL, "two", 3), 0);
	{
		char b[8];
		unsigned cl;
		int prio;

		CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
		CHECK_RC(ml_chan_recv(d, &prio, &cl, b, sizeof(b)), 3);
		CHECK(!memcmp(b, "two", 3) && prio == ML_PRIO_CRITICAL, "wrong message");
		CHECK_RC(ml_chan_recv(d, &prio, &cl, b, sizeof(b)), -EAGAIN);
	}
	ml_chan_close(c1);
	c1 = NULL;
	ml_chan_close(old);
	old = NULL;
	ml_chan_close(d);
	d = NULL;
	if (shm)
		CHECK(!shm_exists(name), "/dev/shm/memlink.%s left after the replacement closed",
		      name);
	ret = 0;
out:
	ml_chan_close(old);
	ml_chan_close(c1);
	ml_chan_close(c2);
	ml_chan_close(d);
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		reap(daemon, 5 * SEC);
	}
	return ret;
}

/* ---- tests: a client dead mid-send, a client that corrupts its lanes -------- */

/* The whole region of a /dev/shm channel, mapped; NULL on failure. */
static uint8_t *map_region(const char *name, size_t *len)
{
	char path[160];
	struct stat st;
	void *p;
	int fd;

	snprintf(path, sizeof(path), "/dev/shm/memlink.%s", name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	*len = (size_t)st.st_size;
	return p == MAP_FAILED ? NULL : p;
}

/* Slot `slot`'s request ring in a mapped region. */
static struct ml__ring_shm *req_ring(uint8_t *base, unsigned slot)
{
	struct ml__ctl *ctl = (struct ml__ctl *)base;

	return (struct ml__ring_shm *)(base + ctl->ctl_size + slot * ctl->client_stride);
}

/* The last of the first n slots that is connected; n if none is. */
static unsigned connected_slot(const uint8_t *base, unsigned n)
{
	const struct ml__ctl *ctl = (const struct ml__ctl *)base;
	unsigned found = n;

	for (unsigned i = 0; i < n; i++)
		if (atomic_load(&ctl->slot[i].state) == ML__SLOT_CONNECTED)
			found = i;
	return found;
}

/* Receive until `want` (an errno) comes, collecting messages into log. */
static int drain_until(ml_chan *d, int want, unsigned *who, char log[][16], int *nlog,
		       int max)
{
	int64_t end = now_ns() + 3 * SEC;

	while (now_ns() < end) {
		char b[16];
		int prio, n = ml_chan_recv(d, &prio, who, b, sizeof(b) - 1);

		if (n == want)
			return 0;
		if (n >= 0 && *nlog < max) {
			b[n] = '\0';
			snprintf(log[(*nlog)++], 16, "%s", b);
			continue;
		}
		if (n >= 0)
			return -E2BIG;
		if (n != -EAGAIN)
			return n;
		ml_chan_wait(d, 50 * MS);
	}
	return -ETIMEDOUT;
}

/*
 * A client killed in the middle of a send: room claimed, half the bytes
 * written. The daemon delivers what it sent before, never the torn one,
 * reports -EOWNERDEAD once for its slot, and a new client takes the slot.
 */
static int t_dead_mid_send(void)
{
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	char log[8][16], name[80];
	int nlog = 0, ret = -1, status;
	unsigned who = 99;
	ml_chan *d = NULL, *c = NULL;
	pid_t pid;

	if (!posix_shm_backend()) {
		skipf("needs a /dev/shm backend");
		return 1;
	}
	o.max_clients = 1;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "torn");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	pid = fork();
	if (pid == 0) {
		struct ml__ring_shm *rs;
		uint8_t *base;
		uint64_t h;
		size_t len;

		if (ml_client_connect(&c, name, &o))
			_exit(1);
		for (int i = 0; i < 3; i++) {
			char m[8];

			snprintf(m, sizeof(m), "m%d", i);
			if (ml_chan_send(c, ML_PRIO_HIGH, m, strlen(m)))
				_exit(2);
		}
		base = map_region(name, &len);
		if (!base)
			_exit(3);
		/* What ml_ring_write does up to its memcpy, then death. */
		rs = req_ring(base, 0);
		h = atomic_load(&rs->head[ML_PRIO_HIGH]);
		atomic_store(&rs->claim[ML_PRIO_HIGH], h + 48);
		memset(base + ML__RING_HDR_SIZE + ((uint8_t *)rs - base) +
			       rs->lane_off[ML_PRIO_HIGH] + h % rs->lane_cap[ML_PRIO_HIGH],
		       0xee, 24);
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	CHECK(pid > 0, "fork");
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status),
	      "the client did not die as planned: %#x", status);
	CHECK_RC(drain_until(d, -EOWNERDEAD, &who, log, &nlog, 8), 0);
	CHECK(who == 0, "-EOWNERDEAD for client %u, want 0", who);
	CHECK(nlog == 3 && !strcmp(log[0], "m0") && !strcmp(log[1], "m1") &&
	      !strcmp(log[2], "m2"), "delivered %d messages (first %s), want m0 m1 m2", nlog,
	      nlog ? log[0] : "-");
	CHECK_RC(ml_chan_recv(d, NULL, &who, log[0], 16), -EAGAIN);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.abandoned == 1 && st.clients_died == 1 && st.last_error == -EOWNERDEAD &&
	      st.last_client == 0 && st.poisoned == 0,
	      "stats: abandoned %llu died %llu last %d/%u poisoned %llu",
	      (unsigned long long)st.abandoned, (unsigned long long)st.clients_died,
	      st.last_error, st.last_client, (unsigned long long)st.poisoned);
	/* The slot, laid out anew, serves the next client. */
	CHECK_RC(connect_retry(&c, name, 2 * SEC, -ECONNREFUSED), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "again", 5), 0);
	CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
	CHECK_RC(ml_chan_recv(d, NULL, &who, log[0], 15), 5);
	CHECK(!memcmp(log[0], "again", 5) && who == 0, "after: wrong message");
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/*
 * A client that writes garbage over one of its lanes' indices: the daemon
 * still delivers its other lanes and the other client, reports -EBADMSG
 * once for it, and keeps serving.
 */
static int t_corrupt_lane(void)
{
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	ml_chan *d = NULL, *a = NULL, *b = NULL;
	char log[8][16], name[80];
	int nlog = 0, ret = -1;
	unsigned who = 99, slot_a = 99;
	uint8_t *base = NULL;
	size_t len = 0;

	if (!posix_shm_backend()) {
		skipf("needs a /dev/shm backend");
		return 1;
	}
	o.max_clients = 2;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "bad");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&a, name, &o), 0);
	CHECK_RC(ml_chan_send(a, ML_PRIO_CRITICAL, "a0", 2), 0);
	CHECK_RC(ml_chan_send(a, ML_PRIO_CRITICAL, "a1", 2), 0);
	base = map_region(name, &len);
	CHECK(base, "map");
	slot_a = connected_slot(base, 2);
	CHECK(slot_a < 2, "no connected slot");
	/* A record in the Low lane whose header then claims a megabyte. */
	CHECK_RC(ml_chan_send(a, ML_PRIO_LOW, "a2", 2), 0);
	{
		struct ml__ring_shm *rs = req_ring(base, slot_a);
		uint32_t huge = 1u << 20;

		memcpy((uint8_t *)rs + ML__RING_HDR_SIZE + rs->lane_off[ML_PRIO_LOW], &huge, 4);
	}
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	CHECK_RC(ml_chan_send(b, ML_PRIO_HIGH, "b0", 2), 0);
	CHECK_RC(drain_until(d, -EBADMSG, &who, log, &nlog, 8), 0);
	CHECK(who == slot_a, "-EBADMSG for client %u, want %u", who, slot_a);
	CHECK(nlog == 3 && !strcmp(log[0], "a0") && !strcmp(log[1], "a1") &&
	      !strcmp(log[2], "b0"), "delivered %d (first %s), want a0 a1 b0", nlog,
	      nlog ? log[0] : "-");
	CHECK_RC(ml_chan_recv(d, NULL, &who, log[0], 16), -EAGAIN);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.poisoned == 1 && st.last_error == -EBADMSG && st.last_client == slot_a &&
	      st.abandoned == 0, "stats: poisoned %llu last %d/%u",
	      (unsigned long long)st.poisoned, st.last_error, st.last_client);
	/* The other client is still served. */
	CHECK_RC(ml_chan_send(b, ML_PRIO_LOW, "b1", 2), 0);
	CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
	CHECK_RC(ml_chan_recv(d, NULL, &who, log[0], 15), 2);
	CHECK(!memcmp(log[0], "b1", 2) && who != slot_a, "after: wrong message");
	ret = 0;
out:
	if (base)
		munmap(base, len);
	ml_chan_close(a);
	ml_chan_close(b);
	ml_chan_close(d);
	return ret;
}

/* ---- test: inspection, listing and collecting dead channels ------------- */

static double absd(double v)
{
	return v < 0 ? -v : v;
}

static int find_name(const char *name, void *arg)
{
	return !strcmp(name, (const char *)arg);
}

/* A daemon that starts and is then killed, leaving its channel behind. */
static int kill_daemon_of(const char *name)
{
	int go[2];
	char c = 0;
	pid_t pid;

	if (pipe(go))
		return -1;
	pid = fork();
	if (pid == 0) {
		struct ml_chan_opts o = opts_default();
		ml_chan *d;

		c = ml_daemon_create(&d, name, &o) ? 'x' : 'k';
		if (write(go[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(go[0], &c, 1) != 1 || c != 'k')
		c = 0;
	close(go[0]);
	close(go[1]);
	kill(pid, SIGKILL);
	return reap(pid, 5 * SEC) != -1 && c ? 0 : -1;
}

/*
 * ml_chan_inspect sees a running channel as its users do (clients, fill
 * levels, heartbeats, backpressure); ml_chan_list lists it; ml_chan_gc
 * leaves it alone while its daemon lives and removes a dead daemon's.
 */
static int t_inspect_and_gc(void)
{
	struct ml_chan_opts o = opts_default();
	struct ml_chan_status *st = calloc(1, sizeof(*st));
	char name[80], dead[80];
	ml_chan *d = NULL, *a = NULL, *b = NULL;
	unsigned sa = 99, sb = 99;
	int ret = -1, n;

	CHECK(st, "calloc");
	st->size = sizeof(*st);
	o.max_clients = 4;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "stat");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&a, name, &o), 0);
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	for (int i = 0; i < 20; i++)
		CHECK_RC(ml_chan_send(b, ML_PRIO_LOW, "0123456789abcdef0123456789abcdef", 32), 0);
	CHECK(ml_chan_connected(d) == 1, "not connected");
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	CHECK(!strcmp(st->name, name) && !strcmp(st->backend, active_backend),
	      "name %s backend %s", st->name, st->backend);
	CHECK(st->daemon_alive == 1 && st->daemon_state == 1 && st->daemon_pid == (uint32_t)getpid(),
	      "daemon alive %d state %u pid %u", st->daemon_alive, st->daemon_state,
	      st->daemon_pid);
	CHECK(st->max_clients == 4 && st->clients == 2 && st->ring_size == 16384,
	      "clients %u/%u ring %u", st->clients, st->max_clients, st->ring_size);
	CHECK(st->beat_age_ns >= 0 && st->beat_age_ns < 5 * SEC, "daemon beat age %lld",
	      (long long)st->beat_age_ns);
	for (unsigned i = 0; i < 4; i++) {
		const struct ml_chan_client_status *cs = &st->client[i];

		if (cs->state != 2)
			continue;
		CHECK(cs->alive == 1 && cs->pid == (uint32_t)getpid() && !cs->corrupt,
		      "slot %u: alive %d pid %u corrupt %#x", i, cs->alive, cs->pid, cs->corrupt);
		if (cs->req_used[ML_PRIO_LOW])
			sb = i;
		else
			sa = i;
	}
	CHECK(sa < 4 && sb < 4 && sa != sb, "slots: a %u b %u", sa, sb);
	CHECK(st->client[sb].req_used[ML_PRIO_LOW] == 20 * 40, "b's Low lane holds %u bytes",
	      st->client[sb].req_used[ML_PRIO_LOW]);
	CHECK(st->backpressure > 0 && st->backpressure <= 1.0 &&
	      absd(st->backpressure - ml_chan_backpressure(d)) < 1e-9,
	      "backpressure %f, the daemon says %f", st->backpressure, ml_chan_backpressure(d));
	CHECK_RC(ml_chan_set_backpressure(d, 0.25), 0);
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	CHECK(absd(st->backpressure - 0.25) < 1e-6, "override: %f", st->backpressure);
	/* Listed; a live daemon's channel is not collected. */
	CHECK(ml_chan_list(0, find_name, name) == 1, "%s not listed", name);
	CHECK_RC(ml_chan_gc(name, 0), 0);
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	/* A killed daemon's: inspect says so; gc removes it where it stays. */
	chan_name(dead, sizeof(dead), "statdead");
	CHECK(kill_daemon_of(dead) == 0, "the daemon to kill did not start");
	n = ml_chan_inspect(dead, 0, st);
	if (posix_shm_backend()) {
		CHECK(n == 0 && st->daemon_alive == 0, "dead daemon: inspect %d, alive %d", n,
		      st->daemon_alive);
		CHECK(ml_chan_list(0, find_name, dead) == 1, "%s not listed", dead);
		/* By name: other tests' dead channels are theirs to look at. */
		CHECK_RC(ml_chan_gc(dead, 0), 1);
		CHECK(!shm_exists(dead), "/dev/shm/memlink.%s left after gc", dead);
	} else {
		/* The module freed the region with its creator's last file. */
		CHECK(n == -ENOENT, "dead daemon, kmod: inspect %d", n);
		CHECK_RC(ml_chan_gc(dead, 0), 0);
	}
	CHECK_RC(ml_chan_inspect(dead, 0, st), -ENOENT);
	CHECK(ml_chan_list(0, find_name, dead) == 0, "%s still listed", dead);
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	CHECK_RC(ml_chan_inspect("no-such-channel-here", 0, st), -ENOENT);
	/* A PID file for humans: this process's pid, gone with the daemon. */
	{
		char pidfile[128], line[32] = "";
		FILE *f;

		snprintf(pidfile, sizeof(pidfile), "/tmp/%s.pid", name);
		CHECK_RC(ml_chan_pidfile(d, pidfile), 0);
		CHECK_RC(ml_chan_pidfile(d, pidfile), -EINVAL);
		CHECK_RC(ml_chan_pidfile(a, pidfile), -EINVAL);
		f = fopen(pidfile, "r");
		CHECK(f && fgets(line, sizeof(line), f), "no pid file %s", pidfile);
		fclose(f);
		CHECK(atoi(line) == (int)getpid(), "pid file says %s", line);
		ml_chan_close(d);
		d = NULL;
		CHECK(access(pidfile, F_OK) != 0, "%s left after close", pidfile);
	}
	st->size = 8;
	CHECK_RC(ml_chan_inspect(name, 0, st), -EINVAL);
	ret = 0;
out:
	free(st);
	ml_chan_close(a);
	ml_chan_close(b);
	ml_chan_close(d);
	return ret;
}

/* Run a shell command line; its output (up to len - 1 bytes) and status. */
static int run_cmd(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (!f)
		return -1;
	while (n + 1 < len && !feof(f)) {
		size_t k = fread(out + n, 1, len - 1 - n, f);

		if (!k)
			break;
		n += k;
	}
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * The memlink-stat tool ($MEMLINK_STAT) against a running daemon process
 * with two clients, then with the daemon killed, then collected.
 */
static int t_stat_tool(void)
{
	const char *tool = getenv("MEMLINK_STAT");
	struct ml_chan_opts o = opts_default();
	char name[80], cmd[600], out[8192];
	ml_chan *a = NULL, *b = NULL;
	pid_t daemon = 0;
	int ret = -1, rc = -1;
	int64_t end;

	if (!tool || !*tool) {
		skipf("MEMLINK_STAT does not name the memlink-stat binary");
		return 1;
	}
	chan_name(name, sizeof(name), "tool");
	{
		const char *args[] = { "--role", "serve", name, "4", NULL };

		daemon = spawn_exec(args);
	}
	CHECK(daemon > 0, "spawn");
	CHECK_RC(connect_retry(&a, name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	CHECK_RC(roundtrip(a, ML_PRIO_HIGH, "x", 1, 5 * SEC), 0);
	CHECK_RC(roundtrip(b, ML_PRIO_LOW, "y", 1, 5 * SEC), 0);
	snprintf(cmd, sizeof(cmd), "%s --json %s", tool, name);
	/* The daemon counts its clients as it runs: give it a moment. */
	for (end = now_ns() + 5 * SEC; now_ns() < end; sleep_ms(20)) {
		rc = run_cmd(cmd, out, sizeof(out));
		if (rc == 0 && strstr(out, "\"clients\":2,"))
			break;
	}
	CHECK(rc == 0, "%s: exit %d: %s", cmd, rc, out);
	CHECK(strstr(out, "\"daemon_alive\":true") && strstr(out, "\"clients\":2,") &&
	      strstr(out, "\"max_clients\":4") && strstr(out, "\"state\":\"connected\""),
	      "%s: %s", cmd, out);
	snprintf(cmd, sizeof(cmd), "%s %s", tool, name);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, name) && strstr(out, "alive running") &&
	      strstr(out, "client 0") && strstr(out, "client 1"), "%s: exit %d: %s", cmd, rc, out);
	/* Listing without a name finds it too. */
	snprintf(cmd, sizeof(cmd), "%s --json", tool);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(strstr(out, name), "%s: exit %d, %s not listed", cmd, rc, name);
	/* The daemon killed: its clients still hold the channel, reported dead. */
	kill(daemon, SIGKILL);
	reap(daemon, 5 * SEC);
	daemon = 0;
	snprintf(cmd, sizeof(cmd), "%s --json %s", tool, name);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, "\"daemon_alive\":false"), "%s: exit %d: %s", cmd, rc, out);
	CHECK(posix_shm_backend() || strstr(out, "The peer is gone"), "%s: %s", cmd, out);
	ml_chan_close(a);
	ml_chan_close(b);
	a = b = NULL;
	/* Collected: removed here, or already freed by the module. */
	snprintf(cmd, sizeof(cmd), "%s --gc %s", tool, name);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, posix_shm_backend() ? "removed 1 " : "removed 0 "),
	      "%s: exit %d: %s", cmd, rc, out);
	snprintf(cmd, sizeof(cmd), "%s %s", tool, name);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(rc == 1 && strstr(out, "No such channel"), "%s after gc: exit %d: %s", cmd, rc, out);
	ret = 0;
out:
	ml_chan_close(a);
	ml_chan_close(b);
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		reap(daemon, 5 * SEC);
	}
	return ret;
}

/*
 * A client that rewrites its rings' config line (a larger max_msg) before
 * the daemon looks: the daemon refuses those rings, says -EBADMSG once for
 * that client, and serves the others.
 */
static int t_rewritten_ring_config(void)
{
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	ml_chan *d = NULL, *a = NULL, *b = NULL;
	char name[80], buf[16];
	unsigned who = 99, slot_a = 99;
	uint8_t *base = NULL;
	size_t len = 0;
	int ret = -1, n;

	if (!posix_shm_backend()) {
		skipf("needs a /dev/shm backend");
		return 1;
	}
	o.max_clients = 2;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "cfg");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&a, name, &o), 0);
	base = map_region(name, &len);
	CHECK(base, "map");
	slot_a = connected_slot(base, 2);
	CHECK(slot_a < 2, "no connected slot");
	req_ring(base, slot_a)->max_msg *= 2;
	CHECK_RC(ml_chan_send(a, ML_PRIO_HIGH, "a0", 2), 0);
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	CHECK_RC(ml_chan_send(b, ML_PRIO_HIGH, "b0", 2), 0);
	CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
	n = ml_chan_recv(d, NULL, &who, buf, sizeof(buf));
	CHECK(n == -EBADMSG && who == slot_a, "first recv %d (%s) client %u, want -EBADMSG for %u", n,
	      ml_strerror(n), who, slot_a);
	CHECK_RC(ml_chan_recv(d, NULL, &who, buf, sizeof(buf)), 2);
	CHECK(!memcmp(buf, "b0", 2) && who != slot_a, "then %.2s from %u", buf, who);
	CHECK_RC(ml_chan_recv(d, NULL, &who, buf, sizeof(buf)), -EAGAIN);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.poisoned == 1 && st.last_error == -EBADMSG, "stats: poisoned %llu",
	      (unsigned long long)st.poisoned);
	ret = 0;
out:
	if (base)
		munmap(base, len);
	ml_chan_close(a);
	ml_chan_close(b);
	ml_chan_close(d);
	return ret;
}

/* ---- test: daemons starting together ------------------------------------ */

#define RACERS 4
#define RACE_ROUNDS 30

struct race {
	_Atomic int ready, go, done, release, dead_up;
	int rc[RACERS];
	char name[64];
};

static struct race *RC;

static int racer(void *arg)
{
	int i = (int)(intptr_t)arg, rc;
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;

	atomic_fetch_add(&RC->ready, 1);
	while (!atomic_load(&RC->go))
		;
	rc = ml_daemon_create(&d, RC->name, &o);
	RC->rc[i] = rc;
	atomic_fetch_add(&RC->done, 1);
	while (rc == 0 && !atomic_load(&RC->release))
		sleep_ms(1);
	ml_chan_close(d);
	return 0;
}

/* A daemon that starts and is then killed: its channel is left behind. */
static int dead_daemon(void *arg)
{
	struct ml_chan_opts o = opts_default();
	ml_chan *d;

	(void)arg;
	if (ml_daemon_create(&d, RC->name, &o))
		return 1;
	atomic_store(&RC->dead_up, 1);
	for (;;)
		pause();
}

/*
 * RACERS processes create the same channel at the same moment, over a
 * free name and over a dead daemon's: exactly one of them wins, the others
 * get -EEXIST, and a client then finds the winner's channel.
 */
static int t_create_race(void)
{
	struct ml_chan_opts o = opts_default();
	pid_t pids[RACERS] = { 0 }, dead = 0;
	ml_chan *c = NULL;
	int ret = -1, replaced = 0;

	RC = shared_map(sizeof(*RC));
	chan_name(RC->name, sizeof(RC->name), "race");
	for (int round = 0; round < RACE_ROUNDS; round++) {
		int wins = 0, st;

		memset(RC, 0, offsetof(struct race, name));
		if (round % 3 == 2) {
			dead = spawn(dead_daemon, NULL);
			CHECK(wait_flag(&RC->dead_up, 1, 5 * SEC), "the daemon to kill did not start");
			kill(dead, SIGKILL);
			st = reap(dead, 5 * SEC);
			dead = 0;
			CHECK(st != -1 && WIFSIGNALED(st), "daemon to kill: status %#x", st);
			replaced++;
		}
		for (int i = 0; i < RACERS; i++)
			pids[i] = spawn(racer, (void *)(intptr_t)i);
		CHECK(wait_flag(&RC->ready, RACERS, 5 * SEC), "racers did not start");
		atomic_store(&RC->go, 1);
		CHECK(wait_flag(&RC->done, RACERS, 10 * SEC), "a create hung (round %d)", round);
		for (int i = 0; i < RACERS; i++) {
			CHECK(RC->rc[i] == 0 || RC->rc[i] == -EEXIST,
			      "round %d: create = %d (%s), want 0 or -EEXIST", round, RC->rc[i],
			      ml_strerror(RC->rc[i]));
			wins += RC->rc[i] == 0;
		}
		CHECK(wins == 1, "round %d: %d of %d racing daemons won", round, wins, RACERS);
		CHECK_RC(ml_client_connect(&c, RC->name, &o), 0);
		CHECK(ml_chan_peer_alive(c, 0, 5 * SEC) == 1, "round %d: no live daemon", round);
		ml_chan_close(c);
		c = NULL;
		atomic_store(&RC->release, 1);
		for (int i = 0; i < RACERS; i++) {
			bool ok = reap_ok(pids[i], "racer", 10 * SEC);

			pids[i] = 0;
			CHECK(ok, "round %d", round);
		}
	}
	if (posix_shm_backend())
		CHECK(!shm_exists(RC->name), "/dev/shm/memlink.%s left after the races", RC->name);
	printf("  # %d rounds of %d racers (%d over a dead daemon): one winner each\n",
	       RACE_ROUNDS, RACERS, replaced);
	ret = 0;
out:
	ml_chan_close(c);
	atomic_store(&RC->release, 1);
	atomic_store(&RC->go, 1);
	for (int i = 0; i < RACERS; i++)
		if (pids[i] > 0)
			reap(pids[i], 5 * SEC);
	if (dead > 0) {
		kill(dead, SIGKILL);
		reap(dead, 5 * SEC);
	}
	return ret;
}

/* ---- permissions --------------------------------------------------------- */

/*
 * A channel's mode is enforced against other users: the daemon (root)
 * creates it 0600 and a client that dropped to an unprivileged uid/gid gets
 * -EACCES; at 0666 the same client connects and a message goes there and
 * back. Needs root to switch users.
 */
#define PERM_UID 65534

struct perm_shared {
	char name[80];
	_Atomic int done;	/* the client is finished with the daemon */
};

/* Exit status: 0 as expected, 1 otherwise (the reason is in R). */
static int perm_client(void *arg, int want)
{
	struct perm_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *c = NULL;
	int err, ret = 1;

	if (setgroups(0, NULL) || setgid(PERM_UID) || setuid(PERM_UID)) {
		failf("client: cannot become uid %d: %s", PERM_UID, strerror(errno));
		goto out;
	}
	CHECK(geteuid() == PERM_UID && getegid() == PERM_UID, "client still uid %d gid %d",
	      (int)geteuid(), (int)getegid());
	err = ml_client_connect(&c, sh->name, &o);
	CHECK(err == want, "uid %d connecting to a %s channel: %d (%s), want %d (%s)", PERM_UID,
	      want ? "0600" : "0666", err, err ? ml_strerror(err) : "ok", want,
	      want ? ml_strerror(want) : "ok");
	if (!want)
		CHECK_RC(roundtrip(c, ML_PRIO_HIGH, "not root", 8, 10 * SEC), 0);
	ret = 0;
out:
	ml_chan_close(c);
	atomic_store(&sh->done, 1);
	return ret;
}

static int perm_client_refused(void *arg)
{
	return perm_client(arg, -EACCES);
}

static int perm_client_admitted(void *arg)
{
	return perm_client(arg, 0);
}

static int t_perm_other_user(void)
{
	struct perm_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;
	pid_t pid = 0;
	int ret = -1;
	long served;

	if (geteuid() != 0) {
		skipf("needs root to switch to an unprivileged uid");
		return 1;
	}
	/* 0600: refused before the daemon ever hears of the client. */
	chan_name(sh->name, sizeof(sh->name), "perm600");
	o.mode = 0600;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(perm_client_refused, sh);
	CHECK(pid > 0, "spawn");
	CHECK(reap_ok(pid, "client of the 0600 channel", 20 * SEC), "client");
	pid = 0;
	CHECK(ml_chan_connected(d) == 0, "a refused client shows as connected");
	ml_chan_close(d);
	d = NULL;

	/* 0666: the same client is served. */
	chan_name(sh->name, sizeof(sh->name), "perm666");
	atomic_store(&sh->done, 0);
	o.mode = 0666;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(perm_client_admitted, sh);
	CHECK(pid > 0, "spawn");
	served = serve_echo(d, &sh->done, 20 * SEC);
	CHECK(served == 1, "the daemon served %ld messages, want 1", served);
	CHECK(reap_ok(pid, "client of the 0666 channel", 20 * SEC), "client");
	pid = 0;
	ret = 0;
out:
	if (pid > 0)
		reap(pid, 5 * SEC);
	ml_chan_close(d);
	return ret;
}

/* ---- test: no wake-up is lost -------------------------------------------- */

/*
 * Bursts of 1-3 requests a few hundred ns apart, each answered, where both
 * sides sleep whenever they find nothing (adaptive with a 1 ns spin, or
 * blocking): sends keep landing just as the peer decides to sleep, which
 * races the sender's look at the sleeping flag against the sleeper's last
 * look at the rings (a fence on one side and a remote barrier on the other
 * for adaptive handles, fences on both for blocking ones). A lost wake-up
 * does not hang: the sleeper wakes by itself after 20 ms (the liveness
 * slice) or 50 ms (its heartbeat). So no burst may take that long, but for
 * a few stray scheduling stalls: this catches a protocol that loses
 * wake-ups often (a send that rings no bell, a sleeper that skips its last
 * look); one lost rarely hides among the stalls.
 */
#define WAKE_SLICE_MS 19

struct wake_shared {
	char name[80];
	uint32_t rounds;
	int client_mode, daemon_mode;
	_Atomic uint64_t slow, max_ns, p50_ns, done;
};

static struct ml_chan_opts wake_opts(int mode)
{
	struct ml_chan_opts o = opts_default();

	o.wait_mode = (uint32_t)mode;
	o.spin_ns = 1;
	return o;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Spin for about ns nanoseconds. */
static void spin_ns(int64_t ns)
{
	for (int64_t end = now_ns() + ns; now_ns() < end;)
		;
}

static int wake_client(void *arg)
{
	struct wake_shared *sh = arg;
	struct ml_chan_opts o = wake_opts(sh->client_mode);
	uint64_t *took = calloc(sh->rounds, sizeof(*took)), slow = 0, max = 0;
	uint32_t seq = 0, rng = (uint32_t)getpid() * 2654435761u;
	ml_chan *c = NULL;
	int ret = 1, err;

	CHECK(took, "no memory");
	for (int64_t end = now_ns() + 5 * SEC;;) {
		err = ml_client_connect(&c, sh->name, &o);
		if (err != -ENOENT || now_ns() > end)
			break;
		sleep_ms(2);
	}
	CHECK_RC(err, 0);
	for (uint32_t r = 0; r < sh->rounds; r++) {
		int64_t t0 = now_ns();
		uint32_t burst = 1 + (rng >> 30) % 3, want = seq + 1;

		for (uint32_t k = 0; k < burst; k++) {
			rng = rng * 1103515245u + 12345u;
			CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, &seq, sizeof(seq)), 0);
			seq++;
			spin_ns((rng >> 16) % 1500);
		}
		/* Every request is answered with its number + 1, in order (one lane). */
		while (want <= seq) {
			uint32_t got = 0;
			int n = ml_chan_recv(c, NULL, NULL, &got, sizeof(got));

			if (n == -EAGAIN) {
				err = ml_chan_wait(c, 10 * SEC);
				CHECK(err == 0, "round %u: wait: %s", r, ml_strerror(err));
				continue;
			}
			CHECK(n == (int)sizeof(got), "round %u: recv %d", r, n);
			CHECK(got == want, "round %u: reply %u, want %u", r, got, want);
			want++;
		}
		took[r] = (uint64_t)(now_ns() - t0);
		slow += took[r] >= (uint64_t)WAKE_SLICE_MS * MS;
		max = took[r] > max ? took[r] : max;
	}
	qsort(took, sh->rounds, sizeof(*took), cmp_u64);
	atomic_store(&sh->p50_ns, took[sh->rounds / 2]);
	atomic_store(&sh->slow, slow);
	atomic_store(&sh->max_ns, max);
	ret = 0;
out:
	atomic_store(&sh->done, 1);
	free(took);
	ml_chan_close(c);
	return ret;
}

static int wake_pair(int daemon_mode, int client_mode, uint32_t rounds)
{
	static const char *const mode_name[] = {
		[ML_WAIT_ADAPTIVE] = "adaptive", [ML_WAIT_BUSY] = "busy",
		[ML_WAIT_BLOCKING] = "blocking",
	};
	struct wake_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = wake_opts(daemon_mode);
	ml_chan *d = NULL;
	pid_t pid = 0;
	int ret = -1;

	CHECK(sh, "no shared memory");
	chan_name(sh->name, sizeof(sh->name), "wake");
	sh->rounds = rounds;
	sh->client_mode = client_mode;
	sh->daemon_mode = daemon_mode;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(wake_client, sh);
	while (!atomic_load(&sh->done)) {
		uint32_t v;
		unsigned cl;
		int prio, n, err = ml_chan_wait(d, 100 * MS);

		CHECK(err == 0 || err == -ETIMEDOUT, "daemon wait: %s", ml_strerror(err));
		while ((n = ml_chan_recv(d, &prio, &cl, &v, sizeof(v))) >= 0) {
			CHECK(n == (int)sizeof(v), "request of %d bytes", n);
			v++;
			CHECK_RC(ml_chan_reply(d, cl, prio, &v, sizeof(v)), 0);
		}
		CHECK(n == -EAGAIN || n == -EPIPE, "daemon recv: %s", ml_strerror(n));
	}
	CHECK(reap_ok(pid, "client", 10 * SEC), "client");
	pid = 0;
	printf("  # daemon %s, client %s: %u bursts, p50 %.1f us, max %.1f ms, "
	       "%llu of %d ms or more\n", mode_name[daemon_mode], mode_name[client_mode], rounds,
	       (double)atomic_load(&sh->p50_ns) / 1e3, (double)atomic_load(&sh->max_ns) / 1e6,
	       (unsigned long long)atomic_load(&sh->slow), WAKE_SLICE_MS);
	CHECK(atomic_load(&sh->slow) <= 2 + rounds / 2000,
	      "daemon %s, client %s: %llu bursts took %d ms or more: lost wake-ups",
	      mode_name[daemon_mode], mode_name[client_mode],
	      (unsigned long long)atomic_load(&sh->slow), WAKE_SLICE_MS);
	ret = 0;
out:
	if (pid > 0)
		reap(pid, 5 * SEC);
	ml_chan_close(d);
	return ret;
}

static int t_no_lost_wakeup(void)
{
	const char *e = getenv("CHAN_WAKE_ROUNDS");
	uint32_t n = e && *e ? (uint32_t)strtoul(e, NULL, 0) : 20000;

	if (n < 2)
		n = 2;
	if (wake_pair(ML_WAIT_ADAPTIVE, ML_WAIT_ADAPTIVE, n) ||
	    wake_pair(ML_WAIT_BLOCKING, ML_WAIT_BLOCKING, n) ||
	    wake_pair(ML_WAIT_ADAPTIVE, ML_WAIT_BLOCKING, n) ||
	    wake_pair(ML_WAIT_BLOCKING, ML_WAIT_ADAPTIVE, n))
		return -1;
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static const struct pt_test tests[] = {
	{ "roundtrip_every_priority", t_roundtrip_prios },
	{ "no_lost_wakeup", t_no_lost_wakeup },
	{ "connect_errors_and_slot_reuse", t_connect_errors },
	{ "layout_version_mismatch", t_layout_mismatch },
	{ "full_lane_and_send_wait", t_full_lane },
	{ "backpressure", t_backpressure },
	{ "shutdown_seen_by_every_client", t_shutdown },
	{ "daemon_close_seen_by_every_client", t_shutdown_by_close },
	{ "daemon_sigkill_wait_returns_epipe", t_daemon_sigkill },
	{ "daemon_sigkill_then_every_call_epipe", t_daemon_sigkill_every_call },
	{ "client_sigkill", t_client_sigkill },
	{ "shm_cleanup_and_replace_dead_daemon", t_shm_cleanup },
	{ "create_race", t_create_race },
	{ "inspect_list_gc", t_inspect_and_gc },
	{ "memlink_stat_tool", t_stat_tool },
	{ "client_dead_mid_send", t_dead_mid_send },
	{ "client_corrupts_a_lane", t_corrupt_lane },
	{ "client_rewrites_ring_config", t_rewritten_ring_config },
	{ "many_clients_4", t_many_clients_4 },
	{ "many_clients_8", t_many_clients_8 },
	{ "other_user_and_mode", t_perm_other_user },
};

/* Count what this run left in /dev/shm. */
/* Objects (and the darwin backend's lock files) of this run in `dirname`. */
static int leftovers_in(const char *dirname)
{
	char prefix[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(prefix, sizeof(prefix), "memlink.mlt-%d-", (int)runner_pid);
	dir = opendir(dirname);
	if (!dir)
		return 0;
	while ((e = readdir(dir)))
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			char path[300];

			printf("  # left behind: %s/%s\n", dirname, e->d_name);
			snprintf(path, sizeof(path), "%s/%s", dirname, e->d_name);
			unlink(path);
			n++;
		}
	closedir(dir);
	return n;
}

static int leftovers(void)
{
	return leftovers_in("/dev/shm") +
	       (!strcmp(active_backend, "darwin") ? leftovers_in("/tmp") : 0);
}

static int wait_mode_from_env(void)
{
	const char *m = getenv("CHAN_WAIT_MODE");

	if (!m || !*m || !strcmp(m, "adaptive"))
		return ML_WAIT_ADAPTIVE;
	if (!strcmp(m, "blocking"))
		return ML_WAIT_BLOCKING;
	if (!strcmp(m, "busy"))
		return ML_WAIT_BUSY;
	fprintf(stderr, "CHAN_WAIT_MODE=%s: want adaptive, blocking or busy\n", m);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *to = getenv("CHAN_TIMEOUT");
	int64_t timeout = (to && *to ? atoll(to) : 300) * SEC;
	struct pt_tally tally = { 0 };
	const char *suite;
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	g_wait_mode = wait_mode_from_env();
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n > 0)
		self_exe[n] = 0;
	else
		snprintf(self_exe, sizeof(self_exe), "%s", argv[0]);

	/* Helper processes: fork+exec of this binary in a role. */
	if (argc >= 3 && !strcmp(argv[1], "--role")) {
		runner_pid = getppid();
		if (!strcmp(argv[2], "serve"))
			return role_serve(argc - 3, argv + 3);
		if (!strcmp(argv[2], "stress-client"))
			return role_stress_client(argc - 3, argv + 3);
		fprintf(stderr, "unknown role %s\n", argv[2]);
		return 2;
	}

	runner_pid = getpid();
	pt_init();
	{
		struct ml_chan_opts o = opts_default();
		char name[80];
		ml_chan *d;
		int err;

		chan_name(name, sizeof(name), "probe");
		err = ml_daemon_create(&d, name, &o);
		if (err) {
			printf("not ok 1 backend: ml_daemon_create with MEMLINK_BACKEND=%s: %s\n",
			       backend_name(), ml_strerror(err));
			printf("chan: 0 passed, 1 failed\n");
			return 1;
		}
		snprintf(active_backend, sizeof(active_backend), "%s", ml_chan_backend(d));
		ml_chan_close(d);
	}
	printf("# memlink %s, backend %s (MEMLINK_BACKEND=%s), %llu messages per client\n",
	       ml_version(), active_backend, backend_name(), (unsigned long long)stress_msgs());

	pt_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv, timeout, &tally);
	if (posix_shm_backend()) {
		char why[64];
		int left = leftovers();

		snprintf(why, sizeof(why), "%d objects", left);
		pt_result(&tally, "nothing_left_in_dev_shm", !left, why);
	}
	suite = getenv("CHAN_SUITE");
	return pt_finish(suite && *suite ? suite : "chan", &tally);
}

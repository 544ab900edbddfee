// SPDX-License-Identifier: MIT
/*
 * Fault-injection tests for channels: real processes killed (SIGKILL) or
 * stopped (SIGSTOP) at random moments while they stream, through whichever
 * backend $MEMLINK_BACKEND names (make test-fault sets "linux"; the VM runs
 * the same program, linked statically, with "kmod").
 *
 *   kill_daemon        4 clients stream to a daemon that is SIGKILLed at a
 *                      random moment, FAULT_TRIALS times: every client must
 *                      get -EPIPE within 2 s, then reconnect to the
 *                      restarted daemon (same name) and complete a round
 *                      trip. Each client waits its own way: polling recv()
 *                      only, blocking mode with wait(forever), busy mode with
 *                      wait(forever), send_wait(forever) without replies
 *   kill_client        a daemon and 4 streaming clients, one SIGKILLed at a
 *                      random moment (often inside a large send), FAULT_TRIALS
 *                      times: the daemon gets every record the victim
 *                      committed and nothing else, intact and in order, keeps
 *                      serving the others, and a 5th client takes the slot;
 *                      in half the trials the daemon looks away meanwhile,
 *                      so the victim dies with records unread
 *   sigstop_heartbeat  a stopped daemon (and a stopped client) is seen as not
 *                      alive by ml_chan_peer_alive() yet still connected, and
 *                      alive again after SIGCONT
 *
 * Plain C11 + POSIX, no test framework: every test runs in its own process
 * group under a watchdog and prints "ok N name" or "not ok N name: reason",
 * and a "# name: trials ..., hangs ..., torn ..., leaks ..." summary line;
 * the last line is "fault: N passed, N failed" and the exit status is
 * non-zero when anything failed.
 *
 *   test-fault [test-name...]       run all tests, or only those named
 * Environment:
 *   MEMLINK_BACKEND  backend to use (kmod|linux|...; default: the library's)
 *   FAULT_TRIALS     kills per test (default 100)
 *   FAULT_SEED       seed of every random choice (default: time); printed
 *   FAULT_TIMEOUT    watchdog per test in seconds (default 300)
 *   FAULT_SUITE      name on the summary line (default "fault")
 *   ML_TIME_SCALE    factor for every time bound (a slow, debug kernel)
 *   ML_TALLY         a file to append "passed failed" to (make check)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The module's ABI, for its listing (kmod runs). */
#include "../../include/uapi/linux/memlink.h"
#include "memlink.h"
#include "proctest.h"

/* ---- helpers (the runner is tests/common/proctest.c) -------------------- */

static pid_t runner_pid;
static uint64_t g_seed;
static unsigned g_trials = 100;
static int64_t g_scale = 1; /* ML_TIME_SCALE */
static char active_backend[16] = "?";

static struct ml_chan_opts opts_mode(int mode)
{
	struct ml_chan_opts o;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.wait_mode = (uint32_t)mode;
	return o;
}

/* A channel name unique to this run and test. */
static void chan_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "flt-%d-%s", (int)runner_pid, tag);
}

static bool posix_shm_backend(void)
{
	return !strcmp(active_backend, "linux") || !strcmp(active_backend, "darwin");
}

/* Poll `*v` until it is at least `want` (or timeout): false on timeout. */
static bool wait_at_least(_Atomic int *v, int want, int64_t timeout_ns)
{
	int64_t end = now_ns() + timeout_ns;

	while (atomic_load(v) < want) {
		if (now_ns() > end)
			return false;
		sleep_us(100);
	}
	return true;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A random stream: replayable from FAULT_SEED and the stream's key. */
static uint64_t rnd(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix(*s);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Are regions of channel `name` still listed by memlink.ko (kmod)? */
static int kmod_regions_of(const char *name)
{
	static struct memlink_info v[4096];
	struct memlink_list l = {
		.size = sizeof(l),
		.entries = (uint64_t)(uintptr_t)v,
		.entry_size = sizeof(v[0]),
		.max_entries = 4096,
	};
	char want[96];
	size_t wl;
	int fd = open("/dev/memlink", O_RDWR | O_CLOEXEC), n = 0;

	if (fd < 0)
		return 0;
	if (ioctl(fd, MEMLINK_IOC_LIST, &l)) {
		close(fd);
		return 0;
	}
	close(fd);
	/* The channel is "ch.NAME", slot i's area "caI.NAME" (lib/kmod/kmod.c). */
	snprintf(want, sizeof(want), ".%s", name);
	wl = strlen(want);
	for (uint32_t i = 0; i < l.count; i++) {
		const char *r = v[i].name;
		size_t len = strnlen(r, sizeof(v[i].name));

		if (len > wl && !strcmp(r + len - wl, want) &&
		    (!strncmp(r, "ch.", 3) || !strncmp(r, "ca", 2))) {
			printf("  # left behind: region %s in memlink.ko\n", r);
			n++;
		}
	}
	return n;
}

/* Shared objects of channel `name` still there: /dev/shm or memlink.ko. */
#ifndef _WIN32
/* linux: is "@memlink.<name>" still bound (/proc/net/unix lists it)? */
static bool socket_bound(const char *name)
{
	char line[512], want[160];
	FILE *f = fopen("/proc/net/unix", "re");
	bool found = false;

	if (!f)
		return false;
	snprintf(want, sizeof(want), " @memlink.%s\n", name);
	while (!found && fgets(line, sizeof(line), f))
		found = strlen(line) >= strlen(want) &&
			!strcmp(line + strlen(line) - strlen(want), want);
	fclose(f);
	return found;
}
#endif

static int leaks_of(const char *name)
{
	if (posix_shm_backend()) {
		char path[160];

		snprintf(path, sizeof(path), "/dev/shm/memlink.%s", name);
		if (access(path, F_OK) == 0) {
			printf("  # left behind: %s\n", path);
			snprintf(path, sizeof(path), "/memlink.%s", name);
			shm_unlink(path);
			return 1;
		}
		return 0;
	}
	if (!strcmp(active_backend, "kmod"))
		return kmod_regions_of(name);
#ifndef _WIN32
	/* linux: the name is the daemon's listening socket, gone with the last daemon. */
	if (!strcmp(active_backend, "linux") && socket_bound(name)) {
		printf("  # left behind: @memlink.%s\n", name);
		return 1;
	}
#endif
	return 0;
}

/* ---- messages ------------------------------------------------------------- */

/*
 * A request: this header, then a body. A data body is a window of `pool`
 * (same in every process: made from the seed before any fork) at offset
 * off * POOL_STEP, of lens[len] bytes. `sum` is the body's checksum mixed
 * with every header field, so a torn, stale or misplaced record fails it.
 * Body checksums of pool windows are computed once (bsum), so a sender
 * spends its time copying, not summing: a kill often lands in the copy.
 */
struct msg_hdr {
	uint32_t magic;
	uint16_t client;
	uint8_t lane;
	uint8_t kind;
	uint32_t conn;    /* kill_daemon: the daemon generation */
	uint16_t off;
	uint16_t len;     /* index into lens[] */
	uint64_t seq;     /* per client, per lane */
	uint64_t sum;
};

/* A reply: the request's identity and checksum. */
struct rep_hdr {
	uint32_t magic;
	uint16_t client;
	uint8_t lane;
	uint8_t kind;
	uint64_t seq;
	uint64_t sum;
};

#define MSG_MAGIC 0x464c5431u /* "FLT1" */
#define REP_MAGIC 0x464c5232u

enum { K_DATA = 1, K_HELLO = 2, K_END = 3, K_DATA_NOREPLY = 4 };

static const uint32_t lens[] = { 0,    8,    40,   96,    200,   512,   1000, 2048,
				 4000, 6000, 8184, 12000, 16344, 24000, 32728 };
#define NLENS (sizeof(lens) / sizeof(lens[0]))
#define NOFF 64u
#define POOL_STEP 520u
#define POOL_SIZE (NOFF * POOL_STEP + 32768u)
#define MAX_MSG_BYTES (sizeof(struct msg_hdr) + 32728u)

static unsigned char pool[POOL_SIZE];
static uint64_t bsum[NOFF][NLENS];

static uint64_t wsum(const unsigned char *p, size_t len)
{
	uint64_t a = 0, b = 0;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		a += w;
		b += a;
	}
	for (; i < len; i++) {
		a += p[i];
		b += a;
	}
	return a ^ (b * 0x9e3779b97f4a7c15ull) ^ len;
}

static void pool_init(uint64_t seed)
{
	uint64_t s = seed ^ 0x706f6f6cull;

	for (size_t i = 0; i < POOL_SIZE; i += 8) {
		uint64_t w = rnd(&s);

		memcpy(pool + i, &w, POOL_SIZE - i < 8 ? POOL_SIZE - i : 8);
	}
	for (unsigned o = 0; o < NOFF; o++)
		for (unsigned l = 0; l < NLENS; l++)
			bsum[o][l] = wsum(pool + o * POOL_STEP, lens[l]);
}

static uint64_t hdr_key(const struct msg_hdr *h)
{
	uint64_t id = h->client | (uint64_t)h->lane << 16 | (uint64_t)h->kind << 24 |
		      (uint64_t)h->conn << 32;

	return mix(id ^ mix(h->seq ^ (uint64_t)h->off << 40 ^ (uint64_t)h->len << 52));
}

/* Write a data (or hello) message's header; returns the message's length. */
static size_t put_hdr(unsigned char *buf, unsigned client, unsigned kind, uint32_t conn,
		      unsigned lane, uint64_t seq, unsigned off, unsigned len)
{
	struct msg_hdr h = {
		.magic = MSG_MAGIC, .client = (uint16_t)client, .lane = (uint8_t)lane,
		.kind = (uint8_t)kind, .conn = conn, .off = (uint16_t)off, .len = (uint16_t)len,
		.seq = seq,
	};

	h.sum = bsum[off][len] ^ hdr_key(&h);
	memcpy(buf, &h, sizeof(h));
	return sizeof(h) + lens[len];
}

/* Build a data (or hello) message into buf; returns its length. */
static size_t build_data(unsigned char *buf, unsigned client, unsigned kind, uint32_t conn,
			 unsigned lane, uint64_t seq, unsigned off, unsigned len)
{
	memcpy(buf + sizeof(struct msg_hdr), pool + off * POOL_STEP, lens[len]);
	return put_hdr(buf, client, kind, conn, lane, seq, off, len);
}

/* An END message: the client's per-lane counts as the body. */
static size_t build_end(unsigned char *buf, unsigned client, uint32_t conn, const uint64_t sent[3])
{
	struct msg_hdr h = {
		.magic = MSG_MAGIC, .client = (uint16_t)client, .lane = ML_PRIO_CRITICAL,
		.kind = K_END, .conn = conn, .seq = 0,
	};

	memcpy(buf + sizeof(h), sent, 3 * sizeof(uint64_t));
	h.sum = wsum(buf + sizeof(h), 3 * sizeof(uint64_t)) ^ hdr_key(&h);
	memcpy(buf, &h, sizeof(h));
	return sizeof(h) + 3 * sizeof(uint64_t);
}

/*
 * Is this record whole and what its header says? Empty string if so, else
 * the reason (the caller then checks the sequence).
 */
static const char *msg_check(const unsigned char *buf, int n, int prio, struct msg_hdr *h)
{
	size_t body;

	if (n < (int)sizeof(*h))
		return "shorter than a header";
	memcpy(h, buf, sizeof(*h));
	body = (size_t)n - sizeof(*h);
	if (h->magic != MSG_MAGIC)
		return "bad magic";
	if (h->lane != prio)
		return "lane differs from the priority it came at";
	if (h->kind == K_END)
		return body == 3 * sizeof(uint64_t) &&
				       (wsum(buf + sizeof(*h), body) ^ hdr_key(h)) == h->sum ?
			       "" :
			       "END record corrupt";
	if (h->kind != K_DATA && h->kind != K_HELLO && h->kind != K_DATA_NOREPLY)
		return "bad kind";
	if (h->off >= NOFF || h->len >= NLENS || body != lens[h->len])
		return "length differs from the header's";
	if ((wsum(buf + sizeof(*h), body) ^ hdr_key(h)) != h->sum)
		return "checksum differs (torn or stale record)";
	/* Small bodies byte for byte too (large ones: the checksum is enough). */
	if (body <= 4096 && memcmp(buf + sizeof(*h), pool + h->off * POOL_STEP, body))
		return "body differs";
	return "";
}

static size_t build_reply(unsigned char *buf, const struct msg_hdr *h)
{
	struct rep_hdr r = { .magic = REP_MAGIC, .client = h->client, .lane = h->lane,
			     .kind = h->kind, .seq = h->seq, .sum = h->sum };

	memcpy(buf, &r, sizeof(r));
	return sizeof(r);
}

/* ---- a streaming client ----------------------------------------------------- */

#define WIN 64u /* requests a client may have unanswered */

/* How a client waits and sends: each kill_daemon client has its own. */
enum style {
	S_POLL,        /* send(), then only recv() polls (and yields) */
	S_BLOCKING,    /* blocking mode: send_wait(2 s), wait(forever) */
	S_BUSY,        /* busy mode: send(), wait(forever) spinning */
	S_SENDWAIT,    /* adaptive: send_wait(forever), no replies asked */
	S_ADAPTIVE,    /* adaptive: send(), recv(), wait(50 ms) */
};

static const char *const style_name[] = { "recv-poll", "blocking", "busy", "send_wait",
					   "adaptive" };
static const char *const call_name[] = { "?", "send", "send_wait", "wait", "recv", "connect" };
enum { C_SEND = 1, C_SEND_WAIT, C_WAIT, C_RECV, C_CONNECT };

struct streamer {
	ml_chan *c;
	unsigned id;
	uint32_t conn;
	int style;
	uint64_t rng;
	unsigned max_len;            /* highest lens[] index to use */
	unsigned large_pct;          /* % of messages from the 3 largest allowed */
	unsigned kind;               /* K_DATA, or K_DATA_NOREPLY */
	uint64_t sent[3], got[3];
	uint64_t sums[3][WIN];
	unsigned outstanding;
	bool pending;
	unsigned lane;
	size_t len;
	unsigned char msg[MAX_MSG_BYTES];
	int gone_call;               /* the call that said -EPIPE */
	bool end_acked;              /* the reply to our END came */
	_Atomic long *torn;
};

static unsigned char rbuf[MAX_MSG_BYTES + 64];

/* Read every reply waiting; -EPIPE, or 0, or -1 on a bad reply. */
static int st_drain(struct streamer *s, bool *progress)
{
	int n, p;

	while ((n = ml_chan_recv(s->c, &p, NULL, rbuf, sizeof(rbuf))) >= 0) {
		struct rep_hdr r;

		if (n != (int)sizeof(r) || p < 0 || p > 2) {
			atomic_fetch_add(s->torn, 1);
			failf("client %u: reply of %d bytes at prio %d", s->id, n, p);
			return -1;
		}
		memcpy(&r, rbuf, sizeof(r));
		if (r.magic == REP_MAGIC && r.kind == K_END && r.client == s->id && !s->end_acked) {
			s->end_acked = true;
			*progress = true;
			continue;
		}
		if (r.magic != REP_MAGIC || r.client != s->id || r.lane != p ||
		    r.seq != s->got[p] || r.seq >= s->sent[p] || r.sum != s->sums[p][r.seq % WIN]) {
			atomic_fetch_add(s->torn, 1);
			failf("client %u: reply lane %d seq %llu (want %llu, sent %llu) client %u sum %s",
			      s->id, p, (unsigned long long)r.seq, (unsigned long long)s->got[p],
			      (unsigned long long)s->sent[p], r.client,
			      r.sum == s->sums[p][r.seq % WIN] ? "ok" : "differs");
			return -1;
		}
		s->got[p]++;
		s->outstanding--;
		*progress = true;
	}
	if (n == -EPIPE) {
		s->gone_call = C_RECV;
		return -EPIPE;
	}
	if (n != -EAGAIN) {
		failf("client %u: recv: %s", s->id, ml_strerror(n));
		return -1;
	}
	return 0;
}

/* Build the next message if none is pending. */
static void st_next(struct streamer *s)
{
	uint64_t r;
	unsigned len;

	if (s->pending)
		return;
	r = rnd(&s->rng);
	s->lane = (unsigned)(r % 3);
	if ((r >> 8) % 100 < s->large_pct)
		len = s->max_len - (unsigned)((r >> 16) % 3);
	else
		len = (unsigned)((r >> 16) % (s->max_len > 8 ? 9 : s->max_len + 1));
	s->len = build_data(s->msg, s->id, s->kind, s->conn, s->lane, s->sent[s->lane],
			    (unsigned)((r >> 32) % NOFF), len);
	s->pending = true;
}

static void st_sent(struct streamer *s)
{
	struct msg_hdr h;

	memcpy(&h, s->msg, sizeof(h));
	s->sums[s->lane][s->sent[s->lane] % WIN] = h.sum;
	s->sent[s->lane]++;
	if (s->kind == K_DATA)
		s->outstanding++;
	s->pending = false;
}

/*
 * One step of streaming: send what the window allows, read replies, wait
 * a little. 0: go on; -EPIPE (s->gone_call says which call); -1: failed.
 */
static int st_step(struct streamer *s)
{
	bool progress = false;
	int err;

	for (unsigned k = 0; k < 8 && (s->kind != K_DATA || s->outstanding < WIN); k++) {
		st_next(s);
		switch (s->style) {
		case S_BLOCKING:
			err = ml_chan_send_wait(s->c, 0, (int)s->lane, s->msg, s->len, 2 * SEC);
			if (err == -EPIPE)
				s->gone_call = C_SEND_WAIT;
			break;
		case S_SENDWAIT:
			err = ml_chan_send_wait(s->c, 0, (int)s->lane, s->msg, s->len, -1);
			if (err == -EPIPE)
				s->gone_call = C_SEND_WAIT;
			break;
		default:
			err = ml_chan_send(s->c, (int)s->lane, s->msg, s->len);
			if (err == -EPIPE)
				s->gone_call = C_SEND;
			break;
		}
		if (!err)
			st_sent(s);
		if (err == -EAGAIN)
			break;
		if (err == -EPIPE)
			return -EPIPE;
		if (err) {
			failf("client %u: send: %s", s->id, ml_strerror(err));
			return -1;
		}
		progress = true;
	}
	err = st_drain(s, &progress);
	if (err)
		return err;
	if (progress)
		return 0;
	switch (s->style) {
	case S_POLL:
		sched_yield();
		return 0;
	case S_BLOCKING:
	case S_SENDWAIT:
	case S_BUSY:
		err = ml_chan_wait(s->c, -1);
		break;
	default:
		err = ml_chan_wait(s->c, 50 * MS);
		break;
	}
	if (err == -EPIPE) {
		s->gone_call = C_WAIT;
		return -EPIPE;
	}
	if (err && err != -ETIMEDOUT) {
		failf("client %u: wait: %s", s->id, ml_strerror(err));
		return -1;
	}
	return 0;
}

/* Send a HELLO and wait for its reply, within timeout. */
static int hello(ml_chan *c, unsigned id, uint32_t conn, int64_t timeout_ns)
{
	unsigned char m[sizeof(struct msg_hdr) + 64];
	struct rep_hdr r;
	int64_t end = now_ns() + timeout_ns;
	size_t len = build_data(m, id, K_HELLO, conn, ML_PRIO_HIGH, 0, id % NOFF, 2);
	int err, n, p;

	err = ml_chan_send_wait(c, 0, ML_PRIO_HIGH, m, len, timeout_ns);
	if (err)
		return err;
	for (;;) {
		n = ml_chan_recv(c, &p, NULL, &r, sizeof(r));
		if (n >= 0)
			break;
		if (n != -EAGAIN)
			return n;
		if (now_ns() > end)
			return -ETIMEDOUT;
		err = ml_chan_wait(c, 20 * MS);
		if (err && err != -ETIMEDOUT)
			return err;
	}
	if (n != (int)sizeof(r) || r.magic != REP_MAGIC || r.kind != K_HELLO || r.client != id ||
	    p != ML_PRIO_HIGH)
		return -EBADMSG;
	return 0;
}

/* ---- a verifying daemon ----------------------------------------------------- */

#define MAX_IDS 8
#define NCLI 4 /* each daemon's max_clients */

struct verifier {
	uint64_t expect[ML_CHAN_MAX_CLIENTS][3]; /* per slot, per lane */
	int id_of_slot[ML_CHAN_MAX_CLIENTS];     /* -1: not seen yet */
	unsigned cid_of_slot[ML_CHAN_MAX_CLIENTS]; /* the daemon's id for it, 0: none yet */
	uint64_t got[MAX_IDS][3];                /* per client id */
	bool ended[MAX_IDS];
	uint64_t end_counts[MAX_IDS][3];
	bool hello[MAX_IDS];
	long msgs;
	long torn;
};

static void verifier_init(struct verifier *v)
{
	memset(v, 0, sizeof(*v));
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		v->id_of_slot[i] = -1;
}

/*
 * Check one record from client `id` (as recv named it): whole, from the
 * client that holds its slot, under the id its hello came with, next in
 * its lane. Returns 0, or -1 (counted as torn, reported).
 */
static int verify(struct verifier *v, const unsigned char *buf, int n, int prio, unsigned id,
		  struct msg_hdr *h)
{
	const char *why = msg_check(buf, n, prio, h);
	unsigned cl = ML_CHAN_SLOT(id);

	if (!*why && h->client >= MAX_IDS)
		why = "bad client id";
	if (!*why && (cl >= NCLI || id >> 5 == 0))
		why = "bad daemon id";
	/* A slot's next client is never given its last one's id. */
	if (!*why && h->kind == K_HELLO && v->cid_of_slot[cl] == id)
		why = "new client in the slot under the old one's id";
	if (!*why && h->kind == K_HELLO) {
		/* A new client in this slot: the last one's stream is over. */
		v->id_of_slot[cl] = h->client;
		v->cid_of_slot[cl] = id;
		memset(v->expect[cl], 0, sizeof(v->expect[cl]));
		v->hello[h->client] = true;
		return 0;
	}
	if (!*why && v->id_of_slot[cl] != (int)h->client)
		why = "client differs from the slot's";
	if (!*why && v->cid_of_slot[cl] != id)
		why = "daemon id differs from the one its hello came with";
	if (!*why && h->kind == K_END) {
		v->ended[h->client] = true;
		memcpy(v->end_counts[h->client], buf + sizeof(*h), sizeof(v->end_counts[0]));
		return 0;
	}
	if (!*why && h->seq != v->expect[cl][prio])
		why = h->seq < v->expect[cl][prio] ? "duplicate or reordered" : "gap (lost record)";
	if (*why) {
		v->torn++;
		failf("daemon: id %#x slot %u prio %d (%d bytes, client %u seq %llu, want %llu): %s",
		      id, cl, prio, n, h->client, (unsigned long long)h->seq,
		      (unsigned long long)v->expect[cl][prio], why);
		return -1;
	}
	v->expect[cl][prio]++;
	v->got[h->client][prio]++;
	v->msgs++;
	return 0;
}

/* ---- test: kill the daemon -------------------------------------------------- */

struct kd_shared {
	char name[64];
	_Atomic int daemon_up;          /* generation whose daemon serves, + 1 */
	_Atomic int stop;               /* clients: leave */
	_Atomic int daemon_stop;        /* the last daemon: close */
	_Atomic int ready[NCLI];        /* generation + 1 reconnected and round-tripped */
	_Atomic int gone_gen[NCLI];     /* generation + 1 whose death the client saw */
	_Atomic int64_t gone_at[NCLI];
	_Atomic int gone_call[NCLI];
	_Atomic int create_err;
	_Atomic long torn;
	_Atomic long msgs;
	_Atomic long reconnects;
};

struct kd_arg {
	struct kd_shared *sh;
	unsigned id;
	int gen;          /* daemon: its generation; client: the first to join */
};

static int kd_daemon(void *arg)
{
	struct kd_arg *a = arg;
	struct kd_shared *sh = a->sh;
	struct ml_chan_opts o = opts_mode(ML_WAIT_ADAPTIVE);
	static struct verifier v;
	static unsigned char buf[MAX_MSG_BYTES + 64];
	unsigned char rep[64];
	ml_chan *d = NULL;
	int err, n, prio;
	unsigned cl;

	verifier_init(&v);
	o.max_clients = NCLI;
	o.ring_size = 512u << 10;
	o.max_msg = 16384;
	err = ml_daemon_create(&d, sh->name, &o);
	if (err) {
		atomic_store(&sh->create_err, err);
		failf("daemon %d: ml_daemon_create: %s", a->gen, ml_strerror(err));
		return 1;
	}
	atomic_store(&sh->daemon_up, a->gen + 1);
	while (!atomic_load(&sh->daemon_stop)) {
		err = ml_chan_wait(d, 20 * MS);
		if (err && err != -ETIMEDOUT) {
			failf("daemon %d: wait: %s", a->gen, ml_strerror(err));
			return 1;
		}
		while ((n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf))) >= 0) {
			struct msg_hdr h;

			if (verify(&v, buf, n, prio, cl, &h)) {
				atomic_fetch_add(&sh->torn, 1);
				continue;
			}
			atomic_fetch_add(&sh->msgs, 1);
			if (h.kind == K_DATA_NOREPLY)
				continue;
			err = ml_chan_send_wait(d, cl, prio, rep, build_reply(rep, &h), 2 * SEC);
			if (err && err != -EPIPE) {
				failf("daemon %d: reply: %s", a->gen, ml_strerror(err));
				return 1;
			}
		}
		if (n != -EAGAIN) {
			failf("daemon %d: recv: %s", a->gen, ml_strerror(n));
			return 1;
		}
	}
	ml_chan_close(d);
	return 0;
}

static int kd_client(void *arg)
{
	struct kd_arg *a = arg;
	struct kd_shared *sh = a->sh;
	static struct streamer s;
	int style = (int)(a->id % 4);
	int mode = style == S_BLOCKING ? ML_WAIT_BLOCKING :
		   style == S_BUSY ? ML_WAIT_BUSY : ML_WAIT_ADAPTIVE;
	struct ml_chan_opts o = opts_mode(mode);

	for (int gen = a->gen;; gen++) {
		int64_t end;
		int err;

		/* The daemon of this generation, or the end. */
		while (atomic_load(&sh->daemon_up) <= gen) {
			if (atomic_load(&sh->stop))
				return 0;
			sleep_us(100);
		}
		memset(&s, 0, sizeof(s));
		s.id = a->id;
		s.conn = (uint32_t)gen;
		s.style = style;
		s.rng = g_seed ^ mix((uint64_t)gen << 8 | a->id);
		s.max_len = 12;
		s.large_pct = 10;
		/* Three wait for replies, one only pushes (sees -EPIPE from a send). */
		s.kind = style == S_SENDWAIT ? K_DATA_NOREPLY : K_DATA;
		s.torn = &sh->torn;
		end = now_ns() + 5 * SEC * g_scale;
		while ((err = ml_client_connect(&s.c, sh->name, &o)) == -ENOENT || err == -EPIPE) {
			if (now_ns() > end)
				break;
			sleep_us(200);
		}
		if (err) {
			failf("client %u gen %d: connect: %s", a->id, gen, ml_strerror(err));
			return 1;
		}
		err = hello(s.c, s.id, s.conn, 5 * SEC * g_scale);
		if (err) {
			failf("client %u gen %d: first round trip: %s", a->id, gen, ml_strerror(err));
			ml_chan_close(s.c);
			return 1;
		}
		atomic_fetch_add(&sh->reconnects, 1);
		atomic_store(&sh->ready[a->id], gen + 1);
		while (!(err = st_step(&s)))
			if (atomic_load(&sh->stop)) {
				ml_chan_close(s.c);
				return 0;
			}
		if (err != -EPIPE) {
			ml_chan_close(s.c);
			return 1;
		}
		atomic_store(&sh->gone_at[a->id], now_ns());
		atomic_store(&sh->gone_call[a->id], s.gone_call);
		atomic_store(&sh->gone_gen[a->id], gen + 1);
		ml_chan_close(s.c);
	}
}

static void print_delays(const char *what, int64_t *d, unsigned n)
{
	if (!n) {
		printf("%s -\n", what);
		return;
	}
	qsort(d, n, sizeof(*d), cmp_i64);
	printf("%s median %.2f ms, worst %.2f ms\n", what, (double)d[n / 2] / 1e6,
	       (double)d[n - 1] / 1e6);
}

static int t_kill_daemon(void)
{
	struct kd_shared *sh = shared_map(sizeof(*sh));
	struct kd_arg da = { .sh = sh }, ca[NCLI];
	int64_t bound = 2 * SEC * g_scale;
	int64_t *delays = calloc((size_t)g_trials * NCLI, sizeof(int64_t));
	unsigned ndelays = 0, hangs = 0, leaks = 0, calls[6] = { 0 };
	pid_t daemon = 0, cli[NCLI] = { 0 };
	uint64_t rs = g_seed ^ 0x6b64;
	int ret = -1;

	chan_name(sh->name, sizeof(sh->name), "kd");
	for (unsigned i = 0; i < NCLI; i++) {
		ca[i] = (struct kd_arg){ .sh = sh, .id = i, .gen = 0 };
		cli[i] = spawn(kd_client, &ca[i]);
		CHECK(cli[i] > 0, "spawn");
	}
	for (int gen = 0; gen <= (int)g_trials; gen++) {
		int64_t killed_at, delay_us;
		int st;

		da.gen = gen;
		daemon = spawn(kd_daemon, &da);
		CHECK(daemon > 0, "spawn");
		CHECK(wait_at_least(&sh->daemon_up, gen + 1, 5 * SEC * g_scale),
		      "daemon %d not up (create: %s)", gen, ml_strerror(atomic_load(&sh->create_err)));
		/* Every client back, with a round trip to the new daemon. */
		for (unsigned i = 0; i < NCLI; i++)
			CHECK(wait_at_least(&sh->ready[i], gen + 1, 5 * SEC * g_scale),
			      "trial %d: client %u did not reconnect (ready %d)", gen, i,
			      atomic_load(&sh->ready[i]));
		if (gen == (int)g_trials)
			break;
		/* Let them stream, then kill at a random moment. */
		delay_us = (int64_t)(rnd(&rs) % 20000);
		sleep_us((long)delay_us);
		killed_at = now_ns();
		kill(daemon, SIGKILL);
		for (unsigned i = 0; i < NCLI; i++) {
			while (atomic_load(&sh->gone_gen[i]) < gen + 1 && now_ns() - killed_at < bound)
				sleep_us(100);
			if (atomic_load(&sh->gone_gen[i]) < gen + 1) {
				/* A hang: count it, replace the client. */
				hangs++;
				failf("trial %d: client %u (%s) got no -EPIPE within %lld ms of the kill",
				      gen, i, style_name[i % 4], (long long)(bound / MS));
				kill(cli[i], SIGKILL);
				reap(cli[i], 5 * SEC);
				ca[i].gen = gen + 1;
				cli[i] = spawn(kd_client, &ca[i]);
				CHECK(cli[i] > 0, "spawn");
				continue;
			}
			delays[ndelays++] = atomic_load(&sh->gone_at[i]) - killed_at;
			calls[atomic_load(&sh->gone_call[i]) % 6]++;
		}
		st = reap(daemon, 5 * SEC);
		daemon = 0;
		CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "trial %d: daemon status %#x", gen, st);
	}
	/* The last daemon serves them all; then everyone leaves cleanly. */
	atomic_store(&sh->stop, 1);
	for (unsigned i = 0; i < NCLI; i++) {
		CHECK(reap_ok(cli[i], "client", 5 * SEC * g_scale), "client %u", i);
		cli[i] = 0;
	}
	atomic_store(&sh->daemon_stop, 1);
	CHECK(reap_ok(daemon, "last daemon", 5 * SEC * g_scale), "last daemon");
	daemon = 0;
	leaks = (unsigned)leaks_of(sh->name);
	printf("  # kill_daemon: %u trials, %u hangs, %ld torn records, %u leaks, %ld records checked, "
	       "%ld reconnects;",
	       g_trials, hangs, atomic_load(&sh->torn), leaks, atomic_load(&sh->msgs),
	       atomic_load(&sh->reconnects));
	print_delays(" peer-gone delay", delays, ndelays);
	printf("  #   -EPIPE came from: send %u, send_wait %u, wait %u, recv %u\n", calls[C_SEND],
	       calls[C_SEND_WAIT], calls[C_WAIT], calls[C_RECV]);
	CHECK(hangs == 0, "%u hangs", hangs);
	CHECK(atomic_load(&sh->torn) == 0, "%ld torn records", atomic_load(&sh->torn));
	CHECK(leaks == 0, "channel %s left behind after the last daemon closed", sh->name);
	CHECK(atomic_load(&sh->reconnects) == (long)NCLI * (g_trials + 1), "%ld reconnects, want %ld",
	      atomic_load(&sh->reconnects), (long)NCLI * (g_trials + 1));
	ret = 0;
out:
	atomic_store(&sh->stop, 1);
	atomic_store(&sh->daemon_stop, 1);
	for (unsigned i = 0; i < NCLI; i++)
		if (cli[i] > 0) {
			kill(cli[i], SIGKILL);
			waitpid(cli[i], NULL, 0);
		}
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		waitpid(daemon, NULL, 0);
	}
	free(delays);
	return ret;
}

/* ---- test: kill a client ---------------------------------------------------- */

#define NEWCOMER NCLI /* the 5th client's id */

struct kc_shared {
	char name[64];
	_Atomic int daemon_up;
	_Atomic int ready;              /* clients connected and round-tripped */
	_Atomic int stop;               /* survivors: send END and finish */
	_Atomic int victim;
	_Atomic int victim_final;       /* victim dead, its counts below final */
	_Atomic uint64_t victim_sent[3];
	_Atomic int victim_in_send;
	_Atomic int victim_lane;
	_Atomic int newcomer_ok;
	_Atomic int64_t newcomer_at;    /* connected, ns */
	_Atomic long torn;
	_Atomic long msgs;
	_Atomic long victim_got[3];
	_Atomic int daemon_done;
	_Atomic int owner_dead;         /* -EOWNERDEAD reports (kills mid-send) */
	_Atomic int late_reports;       /* ... read after the slot's next client's hello */
	_Atomic int pause;              /* daemon: do not read for now */
};

struct kc_arg {
	struct kc_shared *sh;
	unsigned id;
	int trial;
};

/* The daemon serves until every survivor ENDed and the newcomer said hello. */
static int kc_daemon(void *arg)
{
	struct kc_arg *a = arg;
	struct kc_shared *sh = a->sh;
	struct ml_chan_opts o = opts_mode(ML_WAIT_ADAPTIVE);
	static struct verifier v;
	static unsigned char buf[MAX_MSG_BYTES + 64];
	unsigned char rep[64];
	int64_t end = now_ns() + 30 * SEC * g_scale;
	int victim = atomic_load(&sh->victim);
	unsigned victim_id = 0; /* the daemon's id for it, from its hello */
	ml_chan *d = NULL;
	int err, n, prio, ret = 1;
	unsigned cl;

	verifier_init(&v);
	o.max_clients = NCLI;
	o.ring_size = 1u << 20;
	o.max_msg = 32768;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	atomic_store(&sh->daemon_up, 1);
	/*
	 * Until the newcomer said hello and every survivor's END came, with
	 * all it counted (END is Critical: it may overtake its Low records).
	 */
	for (;;) {
		bool all = v.hello[NEWCOMER];

		for (unsigned i = 0; i < NCLI; i++)
			for (int l = 0; l < 3 && (int)i != victim; l++)
				if (!v.ended[i] || v.got[i][l] != v.end_counts[i][l])
					all = false;
		if (all)
			break;
		if (now_ns() > end) {
			for (unsigned i = 0; i < NCLI; i++)
				if ((int)i != victim)
					failf("trial %d: daemon: client %u ended %d, got %llu/%llu/%llu, it sent %llu/%llu/%llu",
					      a->trial, i, v.ended[i], (unsigned long long)v.got[i][0],
					      (unsigned long long)v.got[i][1], (unsigned long long)v.got[i][2],
					      (unsigned long long)v.end_counts[i][0],
					      (unsigned long long)v.end_counts[i][1],
					      (unsigned long long)v.end_counts[i][2]);
			CHECK(0, "trial %d: daemon: survivors' streams incomplete (newcomer %d)", a->trial,
			      v.hello[NEWCOMER]);
		}
		/* Told to look away: the victim dies with records unread. */
		while (atomic_load(&sh->pause) && now_ns() < end)
			sleep_us(200);
		err = ml_chan_wait(d, 20 * MS);
		CHECK(err == 0 || err == -ETIMEDOUT, "daemon wait: %s", ml_strerror(err));
		for (;;) {
			struct msg_hdr h;

			n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf));
			if (n == -EOWNERDEAD) {
				/*
				 * The victim died inside a send: once, its id, and
				 * before the slot goes to a newcomer (whose hello would
				 * otherwise be read first and the report blame it).
				 */
				CHECK(cl == victim_id,
				      "trial %d: -EOWNERDEAD for id %#x (slot %u, client %d), the victim's is %#x",
				      a->trial, cl, ML_CHAN_SLOT(cl),
				      ML_CHAN_SLOT(cl) < NCLI ? v.id_of_slot[ML_CHAN_SLOT(cl)] : -1,
				      victim_id);
				if (v.id_of_slot[ML_CHAN_SLOT(cl)] != victim) {
					atomic_fetch_add(&sh->late_reports, 1);
					CHECK(0,
					      "trial %d: -EOWNERDEAD for slot %u read after client %d's hello in that slot",
					      a->trial, ML_CHAN_SLOT(cl), v.id_of_slot[ML_CHAN_SLOT(cl)]);
				}
				atomic_fetch_add(&sh->owner_dead, 1);
				continue;
			}
			if (n < 0)
				break;
			if (verify(&v, buf, n, prio, cl, &h)) {
				atomic_fetch_add(&sh->torn, 1);
				continue;
			}
			atomic_fetch_add(&sh->msgs, 1);
			if (h.kind == K_HELLO && (int)h.client == victim)
				victim_id = cl;
			/* The newcomer has the victim's slot (the only free one), not its id. */
			if (h.kind == K_HELLO && h.client == NEWCOMER)
				CHECK(ML_CHAN_SLOT(cl) == ML_CHAN_SLOT(victim_id) && cl != victim_id,
				      "trial %d: newcomer's id %#x, the victim's %#x", a->trial, cl,
				      victim_id);
			if (h.kind != K_DATA && h.kind != K_HELLO && h.kind != K_END)
				continue;
			err = ml_chan_send_wait(d, cl, prio, rep, build_reply(rep, &h), 2 * SEC);
			CHECK(err == 0 || (err == -EPIPE && (int)h.client == victim),
			      "trial %d: reply to client %u: %s", a->trial, h.client, ml_strerror(err));
		}
		CHECK_RC(n, -EAGAIN);
	}
	for (int l = 0; l < 3; l++)
		atomic_store(&sh->victim_got[l], (long)v.got[victim][l]);
	/* Everyone leaves; the daemon sees it. */
	while (ml_chan_connected(d)) {
		CHECK(now_ns() < end, "trial %d: daemon still sees clients", a->trial);
		ml_chan_wait(d, 10 * MS);
		while (ml_chan_recv(d, &prio, &cl, buf, sizeof(buf)) >= 0)
			;
	}
	ret = 0;
out:
	ml_chan_close(d);
	atomic_store(&sh->daemon_done, 1);
	return ret;
}

/*
 * The victim: records mostly large, from buffers built beforehand (only the
 * header is written per record), so that most of its time goes into
 * ml_chan_send()'s copy; a full lane makes it nap, outside any send.
 */
static int kc_victim(struct kc_shared *sh, ml_chan *c, unsigned id, int trial)
{
	static unsigned char vb[NOFF][MAX_MSG_BYTES];
	uint64_t sent[3] = { 0 }, rs = g_seed ^ mix((uint64_t)trial << 8 | id | 0x76000000ull);

	for (unsigned o = 0; o < NOFF; o++)
		memcpy(vb[o] + sizeof(struct msg_hdr), pool + o * POOL_STEP, lens[NLENS - 1]);
	for (;;) {
		uint64_t r = rnd(&rs);
		unsigned lane = (unsigned)(r % 3), off = (unsigned)((r >> 8) % NOFF), len;
		size_t n;
		int err;

		len = (r >> 16) % 100 < 80 ? NLENS - 1 - (unsigned)((r >> 24) % 4) :
					      (unsigned)((r >> 24) % 9);
		n = put_hdr(vb[off], id, K_DATA_NOREPLY, 0, lane, sent[lane], off, len);
		for (;;) {
			atomic_store(&sh->victim_lane, (int)lane);
			atomic_store(&sh->victim_in_send, 1);
			err = ml_chan_send(c, (int)lane, vb[off], n);
			if (!err) {
				sent[lane]++;
				atomic_store(&sh->victim_sent[lane], sent[lane]);
			}
			atomic_store(&sh->victim_in_send, 0);
			if (err != -EAGAIN)
				break;
			sleep_us(20);
		}
		if (err) {
			failf("trial %d: victim: send: %s", trial, ml_strerror(err));
			return 1;
		}
	}
}

static int kc_client(void *arg)
{
	struct kc_arg *a = arg;
	struct kc_shared *sh = a->sh;
	static struct streamer s;
	struct ml_chan_opts o = opts_mode(ML_WAIT_ADAPTIVE);
	bool victim = (int)a->id == atomic_load(&sh->victim);
	int64_t end;
	int err, ret = 1;

	memset(&s, 0, sizeof(s));
	s.id = a->id;
	s.rng = g_seed ^ mix((uint64_t)a->trial << 8 | a->id | 0x6b63000000ull);
	s.torn = &sh->torn;
	s.style = S_ADAPTIVE;
	s.max_len = 12;
	s.large_pct = 5;
	s.kind = K_DATA;
	CHECK_RC(ml_client_connect(&s.c, sh->name, &o), 0);
	CHECK_RC(hello(s.c, s.id, 0, 5 * SEC * g_scale), 0);
	atomic_fetch_add(&sh->ready, 1);
	if (victim)
		return kc_victim(sh, s.c, s.id, a->trial);
	/* Survivors stream at a moderate pace: the CPUs go to the victim. */
	while (!atomic_load(&sh->stop)) {
		err = st_step(&s);
		CHECK(err == 0, "trial %d: client %u: %s", a->trial, a->id,
		      err == -EPIPE ? call_name[s.gone_call] : "failed");
		sleep_us(100);
	}
	CHECK(!victim, "the victim outlived the test");
	/* The end: my counts, then every reply. */
	{
		unsigned char m[128];
		size_t len = build_end(m, s.id, 0, s.sent);

		CHECK_RC(ml_chan_send_wait(s.c, 0, ML_PRIO_CRITICAL, m, len, 5 * SEC * g_scale), 0);
	}
	end = now_ns() + 10 * SEC * g_scale;
	while (s.outstanding || !s.end_acked) {
		bool progress = false;

		CHECK(now_ns() < end, "trial %d: client %u: %u replies missing", a->trial, a->id,
		      s.outstanding);
		CHECK_RC(st_drain(&s, &progress), 0);
		if (!progress) {
			err = ml_chan_wait(s.c, 20 * MS);
			CHECK(err == 0 || err == -ETIMEDOUT, "wait: %s", ml_strerror(err));
		}
	}
	ret = 0;
out:
	ml_chan_close(s.c);
	return ret;
}

/* The 5th client: connects once the victim's slot is free, one round trip. */
static int kc_newcomer(void *arg)
{
	struct kc_arg *a = arg;
	struct kc_shared *sh = a->sh;
	struct ml_chan_opts o = opts_mode(ML_WAIT_ADAPTIVE);
	int64_t end = now_ns() + 2 * SEC * g_scale;
	ml_chan *c = NULL;
	int err, ret = 1;

	while ((err = ml_client_connect(&c, sh->name, &o)) == -ECONNREFUSED && now_ns() < end)
		sleep_us(200);
	CHECK(err == 0, "trial %d: newcomer: connect: %s (the dead client's slot never freed?)",
	      a->trial, ml_strerror(err));
	atomic_store(&sh->newcomer_at, now_ns());
	CHECK_RC(hello(c, NEWCOMER, 0, 5 * SEC * g_scale), 0);
	atomic_store(&sh->newcomer_ok, 1);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

static int t_kill_client(void)
{
	struct kc_shared *sh = shared_map(sizeof(*sh));
	int64_t *delays = calloc(g_trials, sizeof(int64_t));
	unsigned ndelays = 0, hangs = 0, leaks = 0, in_send = 0, hits[3] = { 0 }, mid_copy = 0, late = 0;
	unsigned vpaused = 0;
	pid_t daemon = 0, cli[NCLI] = { 0 }, nc = 0;
	uint64_t rs = g_seed ^ 0x6b63;
	long torn = 0, msgs = 0;
	char name[64];
	int ret = -1;

	chan_name(name, sizeof(name), "kc");
	for (unsigned t = 0; t < g_trials; t++) {
		struct kc_arg da = { .sh = sh, .trial = (int)t }, ca[NCLI + 1];
		int victim = (int)(rnd(&rs) % NCLI);
		int64_t delay_us = 2000 + (int64_t)(rnd(&rs) % 20000), killed_at;
		uint64_t vsent[3];
		int vin, vlane, st, od, paused;

		torn += atomic_load(&sh->torn);
		msgs += atomic_load(&sh->msgs);
		memset(sh, 0, sizeof(*sh));
		memcpy(sh->name, name, sizeof(name));
		atomic_store(&sh->victim, victim);
		daemon = spawn(kc_daemon, &da);
		CHECK(daemon > 0, "spawn");
		CHECK(wait_at_least(&sh->daemon_up, 1, 5 * SEC * g_scale), "trial %u: daemon not up", t);
		for (unsigned i = 0; i < NCLI; i++) {
			ca[i] = (struct kc_arg){ .sh = sh, .id = i, .trial = (int)t };
			cli[i] = spawn(kc_client, &ca[i]);
			CHECK(cli[i] > 0, "spawn");
		}
		CHECK(wait_at_least(&sh->ready, NCLI, 5 * SEC * g_scale), "trial %u: clients not ready",
		      t);
		sleep_us((long)delay_us);
		/*
		 * Every other trial (at random) the daemon stops reading first:
		 * the victim dies with its ring full, and the daemon's next look
		 * at it is after a liveness scan is due, so it finds a dead
		 * client with records unread, which must still be delivered.
		 */
		paused = rnd(&rs) & 1;
		if (paused) {
			atomic_store(&sh->pause, 1);
			sleep_ms(5);
		}
		killed_at = now_ns();
		kill(cli[victim], SIGKILL);
		st = reap(cli[victim], 5 * SEC);
		if (paused) {
			sleep_ms(60);
			vpaused += atomic_load(&sh->victim_sent[0]) + atomic_load(&sh->victim_sent[1]) +
				   atomic_load(&sh->victim_sent[2]) > 0;
			atomic_store(&sh->pause, 0);
		}
		cli[victim] = 0;
		CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "trial %u: victim status %#x", t, st);
		vin = atomic_load(&sh->victim_in_send);
		vlane = atomic_load(&sh->victim_lane);
		for (int l = 0; l < 3; l++)
			vsent[l] = atomic_load(&sh->victim_sent[l]);
		in_send += vin != 0;
		atomic_store(&sh->victim_final, 1);
		/* A 5th client takes the free slot. */
		ca[NCLI] = (struct kc_arg){ .sh = sh, .id = NEWCOMER, .trial = (int)t };
		nc = spawn(kc_newcomer, &ca[NCLI]);
		CHECK(nc > 0, "spawn");
		if (!reap_ok(nc, "newcomer", 10 * SEC * g_scale)) {
			hangs++;
			nc = 0;
			goto out;
		}
		nc = 0;
		delays[ndelays++] = atomic_load(&sh->newcomer_at) - killed_at;
		/* The survivors finish; the daemon checks them and exits. */
		atomic_store(&sh->stop, 1);
		for (unsigned i = 0; i < NCLI; i++) {
			if (cli[i] <= 0)
				continue;
			if (!reap_ok(cli[i], "survivor", 20 * SEC * g_scale))
				hangs++;
			cli[i] = 0;
		}
		if (!reap_ok(daemon, "daemon", 20 * SEC * g_scale))
			hangs++;
		daemon = 0;
		CHECK(!atomic_load(&R->failed), "trial %u failed", t);
		/*
		 * -EOWNERDEAD: the kill came between claim and commit, so inside
		 * a send, and that record was not delivered.
		 */
		od = atomic_load(&sh->owner_dead);
		CHECK(od == 0 || (od == 1 && vin), "trial %u: %d -EOWNERDEAD reports, victim in a send: %d",
		      t, od, vin);
		mid_copy += (unsigned)od;
		late += (unsigned)atomic_load(&sh->late_reports);
		/* What the victim committed, the daemon got: no more, no less. */
		for (int l = 0; l < 3; l++) {
			uint64_t got = (uint64_t)atomic_load(&sh->victim_got[l]);
			bool maybe = vin && vlane == l && !od;

			if (maybe && got == vsent[l] + 1)
				hits[l]++;
			CHECK(got == vsent[l] || (maybe && got == vsent[l] + 1),
			      "trial %u: victim lane %d: daemon got %llu records, the victim had sent %llu%s",
			      t, l, (unsigned long long)got, (unsigned long long)vsent[l],
			      maybe ? " (+1 in flight)" : "");
		}
		leaks += (unsigned)leaks_of(name);
		CHECK(leaks == 0, "trial %u: channel %s left behind", t, name);
	}
	torn += atomic_load(&sh->torn);
	msgs += atomic_load(&sh->msgs);
	printf("  # kill_client: %u trials, %u hangs, %ld torn records, %u leaks, %ld records checked; "
	       "%u kills inside a send (%u mid-copy: -EOWNERDEAD, %u of those reported after the "
	       "slot's next client's hello; %u just after the commit); %u with the daemon looking away;",
	       g_trials, hangs, torn, leaks, msgs, in_send, mid_copy, late, hits[0] + hits[1] + hits[2],
	       vpaused);
	print_delays(" slot-free delay", delays, ndelays);
	ret = 0;
out:
	atomic_store(&sh->stop, 1);
	if (nc > 0) {
		kill(nc, SIGKILL);
		waitpid(nc, NULL, 0);
	}
	for (unsigned i = 0; i < NCLI; i++)
		if (cli[i] > 0) {
			kill(cli[i], SIGKILL);
			waitpid(cli[i], NULL, 0);
		}
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		waitpid(daemon, NULL, 0);
	}
	if (ret)
		printf("  # kill_client: %u hangs, %ld torn records, %u leaks before the failure\n",
		       hangs, torn + atomic_load(&sh->torn), leaks);
	free(delays);
	return ret;
}

/* ---- test: SIGSTOP and heartbeats -------------------------------------------- */

struct hb_shared {
	char name[64];
	_Atomic int up;
	_Atomic int stop;
	_Atomic int client_ok;
};

/* A daemon that waits and receives in a loop, echoing. */
static int hb_daemon(void *arg)
{
	struct hb_shared *sh = arg;
	struct ml_chan_opts o = opts_mode(ML_WAIT_ADAPTIVE);
	unsigned char buf[256];
	ml_chan *d = NULL;
	int n, prio, ret = 1;
	unsigned cl;

	o.max_clients = 2;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	atomic_store(&sh->up, 1);
	while (!atomic_load(&sh->stop)) {
		int err = ml_chan_wait(d, 100 * MS);

		CHECK(err == 0 || err == -ETIMEDOUT, "daemon wait: %s", ml_strerror(err));
		while ((n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf))) >= 0) {
			struct msg_hdr h;

			if (*msg_check(buf, n, prio, &h))
				continue;
			err = ml_chan_send_wait(d, cl, prio, buf, build_reply(buf, &h), SEC);
			CHECK(err == 0 || err == -EPIPE, "reply: %s", ml_strerror(err));
		}
	}
	ret = 0;
out:
	ml_chan_close(d);
	return ret;
}

/* A client that waits in a loop (and so beats), until stopped. */
static int hb_client(void *arg)
{
	struct hb_shared *sh = arg;
	struct ml_chan_opts o = opts_mode(ML_WAIT_ADAPTIVE);
	ml_chan *c = NULL;
	int ret = 1;

	CHECK_RC(ml_client_connect(&c, sh->name, &o), 0);
	CHECK_RC(hello(c, 1, 0, 5 * SEC * g_scale), 0);
	atomic_store(&sh->client_ok, 1);
	while (!atomic_load(&sh->stop)) {
		int err = ml_chan_wait(c, 100 * MS);

		CHECK(err == -ETIMEDOUT || err == 0, "client wait: %s", ml_strerror(err));
	}
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

/* Poll peer_alive until it returns `want`, within bound; the time it took. */
static int64_t until_alive(ml_chan *c, unsigned client, int64_t within, int want, int64_t bound,
			   int *last)
{
	int64_t t0 = now_ns();

	for (;;) {
		*last = ml_chan_peer_alive(c, client, within);
		if (*last == want)
			return now_ns() - t0;
		if (now_ns() - t0 > bound)
			return -1;
		/* Keep our own side beating while we look. */
		ml_chan_wait(c, 2 * MS);
	}
}

static int t_sigstop_heartbeat(void)
{
	struct hb_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_mode(ML_WAIT_ADAPTIVE);
	const int64_t within = 200 * MS * g_scale, bound = 2 * SEC * g_scale;
	int64_t t_dead, t_back, t_cdead, t_cback;
	pid_t daemon = 0, cl = 0;
	ml_chan *c = NULL, *d = NULL;
	int last = 0, ret = -1;
	unsigned id = 0; /* the client's, as the daemon's recv named it */

	chan_name(sh->name, sizeof(sh->name), "hb");
	/* 1. The client (us) watches a stopped daemon. */
	daemon = spawn(hb_daemon, sh);
	CHECK(daemon > 0, "spawn");
	CHECK(wait_at_least(&sh->up, 1, 5 * SEC * g_scale), "daemon not up");
	CHECK_RC(ml_client_connect(&c, sh->name, &o), 0);
	CHECK_RC(hello(c, 0, 0, 5 * SEC * g_scale), 0);
	CHECK(until_alive(c, 0, within, 1, bound, &last) >= 0,
	      "a running daemon is not alive: peer_alive = %d", last);
	kill(daemon, SIGSTOP);
	t_dead = until_alive(c, 0, within, 0, bound, &last);
	CHECK(t_dead >= 0, "daemon stopped for %lld ms: peer_alive still %d (%s)",
	      (long long)(bound / MS), last, last < 0 ? ml_strerror(last) : "");
	/* Seen by the age of its last beat, so not at once (a beat is 50 ms old at most). */
	CHECK(t_dead >= within / 2 && t_dead <= within + 300 * MS * g_scale,
	      "stopped daemon seen not alive after %lld ms (within = %lld ms)", (long long)(t_dead / MS),
	      (long long)(within / MS));
	CHECK(ml_chan_connected(c) == 1, "a stopped daemon is not connected");
	sleep_ms(50);
	CHECK(ml_chan_peer_alive(c, 0, within) == 0, "stopped daemon alive again");
	CHECK(ml_chan_connected(c) == 1, "a stopped daemon is not connected");
	kill(daemon, SIGCONT);
	t_back = until_alive(c, 0, within, 1, bound, &last);
	CHECK(t_back >= 0, "daemon continued %lld ms ago: peer_alive still %d", (long long)(bound / MS),
	      last);
	CHECK_RC(hello(c, 0, 0, 5 * SEC * g_scale), 0);
	ml_chan_close(c);
	c = NULL;
	atomic_store(&sh->stop, 1);
	CHECK(reap_ok(daemon, "daemon", 5 * SEC * g_scale), "daemon");
	daemon = 0;
	CHECK(leaks_of(sh->name) == 0, "channel left behind");

	/* 2. The daemon (us) watches a stopped client. */
	atomic_store(&sh->stop, 0);
	{
		struct ml_chan_opts od = opts_mode(ML_WAIT_ADAPTIVE);
		unsigned char buf[256];
		int64_t end;
		int n, prio;

		od.max_clients = 2;
		CHECK_RC(ml_daemon_create(&d, sh->name, &od), 0);
		cl = spawn(hb_client, sh);
		CHECK(cl > 0, "spawn");
		end = now_ns() + 5 * SEC * g_scale;
		while (!atomic_load(&sh->client_ok)) {
			CHECK(now_ns() < end, "client never round-tripped");
			ml_chan_wait(d, 5 * MS);
			while ((n = ml_chan_recv(d, &prio, &id, buf, sizeof(buf))) >= 0) {
				struct msg_hdr h;

				CHECK(!*msg_check(buf, n, prio, &h), "client's hello");
				CHECK_RC(ml_chan_reply(d, id, prio, buf, build_reply(buf, &h)), 0);
			}
		}
		CHECK(id >> 5 && ML_CHAN_SLOT(id) < 2, "client id %#x", id);
		CHECK(until_alive(d, id, within, 1, bound, &last) >= 0,
		      "a waiting client is not alive: peer_alive = %d", last);
		kill(cl, SIGSTOP);
		t_cdead = until_alive(d, id, within, 0, bound, &last);
		CHECK(t_cdead >= 0, "client stopped: peer_alive still %d", last);
		CHECK(t_cdead >= within / 2 && t_cdead <= within + 300 * MS * g_scale,
		      "stopped client seen not alive after %lld ms (within = %lld ms)",
		      (long long)(t_cdead / MS), (long long)(within / MS));
		CHECK(ml_chan_connected(d) == 1, "a stopped client is not connected");
		kill(cl, SIGCONT);
		t_cback = until_alive(d, id, within, 1, bound, &last);
		CHECK(t_cback >= 0, "client continued: peer_alive still %d", last);
		/* A client killed is gone, not just quiet. */
		kill(cl, SIGKILL);
		reap(cl, 5 * SEC);
		cl = 0;
		end = now_ns() + bound;
		while ((last = ml_chan_peer_alive(d, id, within)) != -EPIPE && now_ns() < end)
			ml_chan_wait(d, 5 * MS);
		CHECK(last == -EPIPE, "killed client: peer_alive = %d, want -EPIPE", last);
	}
	printf("  # sigstop_heartbeat: 1 trial, 0 hangs, 0 torn records, 0 leaks; stopped daemon seen "
	       "after %.1f ms, back after %.1f ms; stopped client seen after %.1f ms, back after %.1f ms\n",
	       (double)t_dead / 1e6, (double)t_back / 1e6, (double)t_cdead / 1e6,
	       (double)t_cback / 1e6);
	ret = 0;
out:
	atomic_store(&sh->stop, 1);
	if (daemon > 0) {
		kill(daemon, SIGCONT);
		kill(daemon, SIGKILL);
		waitpid(daemon, NULL, 0);
	}
	if (cl > 0) {
		kill(cl, SIGCONT);
		kill(cl, SIGKILL);
		waitpid(cl, NULL, 0);
	}
	ml_chan_close(c);
	ml_chan_close(d);
	if (ret == 0 && leaks_of(sh->name)) {
		failf("channel %s left behind", sh->name);
		ret = -1;
	}
	return ret;
}

/* ---- main ---------------------------------------------------------------- */

static const struct pt_test tests[] = {
	{ "kill_daemon", t_kill_daemon },
	{ "kill_client", t_kill_client },
	{ "sigstop_heartbeat", t_sigstop_heartbeat },
};

int main(int argc, char **argv)
{
	const char *to = getenv("FAULT_TIMEOUT"), *e;
	int64_t timeout = (to && *to ? atoll(to) : 300) * SEC;
	struct pt_tally tally = { 0 };
	const char *suite;

	setvbuf(stdout, NULL, _IOLBF, 0);
	runner_pid = getpid();
	e = getenv("FAULT_SEED");
	g_seed = e && *e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	e = getenv("FAULT_TRIALS");
	if (e && *e)
		g_trials = (unsigned)strtoul(e, NULL, 0);
	e = getenv("ML_TIME_SCALE");
	if (e && atoi(e) > 1)
		g_scale = atoi(e);
	pool_init(g_seed);
	pt_init();
	suite = getenv("FAULT_SUITE");
	suite = suite && *suite ? suite : "fault";
	{
		struct ml_chan_opts o = opts_mode(ML_WAIT_ADAPTIVE);
		char name[80];
		ml_chan *d;
		int err;

		chan_name(name, sizeof(name), "probe");
		err = ml_daemon_create(&d, name, &o);
		if (err) {
			e = getenv("MEMLINK_BACKEND");
			printf("not ok 1 backend: ml_daemon_create with MEMLINK_BACKEND=%s: %s\n",
			       e ? e : "", ml_strerror(err));
			printf("%s: 0 passed, 1 failed\n", suite);
			return 1;
		}
		snprintf(active_backend, sizeof(active_backend), "%s", ml_chan_backend(d));
		ml_chan_close(d);
	}
	printf("# memlink %s, backend %s, %u trials, FAULT_SEED=%llu, time scale %lld\n",
	       ml_version(), active_backend, g_trials, (unsigned long long)g_seed,
	       (long long)g_scale);
	pt_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv, timeout, &tally);
	return pt_finish(suite, &tally);
}

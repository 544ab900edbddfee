// SPDX-License-Identifier: GPL-2.0
/*
 * Event loops over a channel's descriptor, in the VM over the kmod backend
 * and on the host over the linux one: the loops of examples/
 * (evloop_epoll, evloop_uring with a multishot and with a re-armed one-shot
 * poll) wait on a channel's ml_chan_fd(), a datagram socket and a timer
 * together, as real processes send to them:
 *  - client_loop: the loop on a client; a daemon process pushes messages
 *    in many small bursts, each answered before the next, so sends keep
 *    landing while the loop is between its last recv and its next wait;
 *    the first burst comes before the loop has called ml_chan_fd();
 *  - daemon_loop: the loop on a daemon; several client processes send
 *    bursts and wait for the answers;
 *  - example: the examples' programs (examples/demo.c), as they are.
 * A writer process sends datagrams meanwhile. Every message is checked
 * (sequence in its lane, sender, bytes), so are the datagrams and the
 * timer ticks, and the loop may wake with nothing to do only a little
 * (no busy waiting). A missed message stalls its sender: the loop's
 * watchdog, on the timer, fails the test.
 *
 * The backend: $MEMLINK_BACKEND, kmod when unset (what the VM runs), or
 * linux (make test-evloop runs it so on the host, without the module).
 *
 * Links the examples' loops, the library and liburing (see the Makefile).
 * Without io_uring (-ENOSYS: not in the kernel; -EPERM: disabled by
 * kernel.io_uring_disabled or refused by a seccomp filter, as in many
 * containers) the io_uring variants skip.
 */
#include "memlink_test.h"

#include <stdbool.h>
#include <sys/socket.h>

#include <liburing.h>
#include <memlink.h>

#include "evloop.h"

#define TICK_NS		(10 * ML_NSEC_PER_MSEC)
#define MIN_TICKS	3
#define PUSH_MSGS	3000	/* client_loop: messages from the daemon */
#define CLIENTS		4	/* daemon_loop: client processes */
#define CLIENT_MSGS	1000	/* ... messages from each */
#define BURST_MAX	5
#define DGRAMS		50
#define MSG_MAX		64
#define LONG_NS		(10 * ML_NSEC_PER_SEC)

/* A message: sequence number, sender, then bytes derived from both. */
static size_t msg_fill(uint8_t *buf, uint32_t seq, uint32_t who)
{
	size_t len = 8 + (seq * 37u + who * 11u) % (MSG_MAX - 8 + 1);

	memcpy(buf, &seq, 4);
	memcpy(buf + 4, &who, 4);
	for (size_t i = 8; i < len; i++)
		buf[i] = (uint8_t)(seq * 7u + who * 3u + i);
	return len;
}

/* Its answer: every byte after the header plus one. */
static void msg_answer(uint8_t *buf, size_t len)
{
	for (size_t i = 8; i < len; i++)
		buf[i]++;
}

/* A message (or with `answer`, its answer) as sent? *seq and *who from it. */
static bool msg_check(const void *buf, size_t len, bool answer, uint32_t *seq, uint32_t *who)
{
	uint8_t want[MSG_MAX];
	size_t n;

	if (len < 8 || len > MSG_MAX)
		return false;
	memcpy(seq, buf, 4);
	memcpy(who, (const uint8_t *)buf + 4, 4);
	n = msg_fill(want, *seq, *who);
	if (answer)
		msg_answer(want, n);
	return n == len && !memcmp(want, buf, n);
}

static int burst_len(uint32_t burst)
{
	return 1 + (int)((burst * 7u + burst / 3u) % BURST_MAX);
}

/* $MEMLINK_BACKEND: kmod (unset) or linux; its enum ml_backend, 0 if neither. */
static const char *backend_name(void)
{
	const char *b = getenv("MEMLINK_BACKEND");

	return b && *b ? b : "kmod";
}

static unsigned backend(void)
{
	const char *b = backend_name();

	return !strcmp(b, "kmod") ? ML_BACKEND_KMOD : !strcmp(b, "linux") ? ML_BACKEND_LINUX : 0;
}

static struct ml_chan_opts chan_opts(unsigned max_clients)
{
	struct ml_chan_opts o = {
		.size = sizeof(o),
		.backend = backend(),
		.max_clients = max_clients,
		.ring_size = 64u << 10,
	};

	return o;
}

static void chan_name(char *buf, const char *tag)
{
	static unsigned int seq;

	snprintf(buf, ML_CHAN_NAME_MAX + 1, "kst-ev-%s-%d-%u", tag, (int)getpid(), seq++);
}

static int connect_retry(ml_chan **c, const char *name, int timeout_ms)
{
	struct ml_chan_opts o = chan_opts(0);
	int64_t end = ml_now_ns() + (int64_t)timeout_ms * ML_NSEC_PER_MSEC;
	int err;

	for (;;) {
		err = ml_client_connect(c, name, &o);
		if ((err != -ENOENT && err != -EPROTO) || ml_now_ns() > end)
			return err;
		usleep(1000);
	}
}

/* Wait for and receive one message (ml_chan_wait, no descriptor). */
static int recv_wait(ml_chan *c, int *prio, unsigned *client, void *buf, size_t len)
{
	int64_t end = ml_now_ns() + LONG_NS * ml_time_scale();

	for (;;) {
		int n = ml_chan_recv(c, prio, client, buf, len);

		if (n != -EAGAIN)
			return n;
		if (ml_now_ns() > end)
			return -ETIMEDOUT;
		n = ml_chan_wait(c, 100 * ML_NSEC_PER_MSEC);
		if (n && n != -ETIMEDOUT)
			return n;
	}
}

/*
 * Send messages seq 0..count-1 of `who` in bursts; after each burst take
 * the answers to all of it (any order) before the next. Sometimes pause,
 * so the loop also goes to sleep. `client`: the daemon's peer. 0, or an
 * exit code saying what failed.
 */
static int send_bursts(ml_chan *c, unsigned client, uint32_t who, uint32_t count)
{
	uint8_t buf[MSG_MAX];

	for (uint32_t seq = 0, burst = 0; seq < count; burst++) {
		uint32_t first = seq, n = (uint32_t)burst_len(burst), mask = 0;

		for (; seq < count && seq - first < n; seq++) {
			size_t len = msg_fill(buf, seq, who);

			if (ml_chan_send_wait(c, client, (int)(seq % ML_PRIO_COUNT), buf, len, LONG_NS))
				return 30;
		}
		for (uint32_t i = first; i < seq; i++) {
			uint32_t aseq, awho;
			int prio, got = recv_wait(c, &prio, NULL, buf, sizeof(buf));

			if (got < 0)
				return got == -ETIMEDOUT ? 31 : 32;
			if (!msg_check(buf, (size_t)got, true, &aseq, &awho) || awho != who ||
			    aseq < first || aseq >= seq || (mask & (1u << (aseq - first))) ||
			    prio != (int)(aseq % ML_PRIO_COUNT))
				return 33;
			mask |= 1u << (aseq - first);
		}
		if (burst % 16 == 15)
			usleep(2000);
	}
	return 0;
}

/* A daemon process pushing `count` messages to the first client in bursts. */
static pid_t spawn_pusher(const char *name, uint32_t count)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		struct ml_chan_opts o = chan_opts(1);
		uint8_t buf[MSG_MAX];
		unsigned client;
		ml_chan *d;
		int n, err;

		closefrom(3);
		if (ml_daemon_create(&d, name, &o))
			_exit(10);
		/* Its hello: who it is. */
		n = recv_wait(d, NULL, &client, buf, sizeof(buf));
		if (n != 4 || memcmp(buf, "helo", 4))
			_exit(11);
		err = send_bursts(d, client, 0, count);
		/* Stay until the client said goodbye (an empty message). */
		if (!err && recv_wait(d, NULL, &client, buf, sizeof(buf)) != 0)
			err = 12;
		ml_chan_close(d);
		_exit(err);
	}
	return pid;
}

/* A client process: connect (the daemon may not be there yet), send. */
static pid_t spawn_sender(const char *name, uint32_t who, uint32_t count)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		ml_chan *c;
		int err;

		closefrom(3);
		if (connect_retry(&c, name, 10000 * (int)ml_time_scale()))
			_exit(20);
		err = send_bursts(c, 0, who, count);
		ml_chan_close(c);
		_exit(err);
	}
	return pid;
}

static size_t dgram_fill(uint8_t *buf, uint32_t seq)
{
	size_t len = 4 + seq % 29;

	memcpy(buf, &seq, 4);
	for (size_t i = 4; i < len; i++)
		buf[i] = (uint8_t)(seq ^ i);
	return len;
}

/* A process writing `count` datagrams to `fd`, a few ms apart. */
static pid_t spawn_writer(int fd, uint32_t count)
{
	pid_t pid = ml_fork();

	if (pid == 0) {
		uint8_t buf[64];

		for (uint32_t seq = 0; seq < count; seq++) {
			size_t len = dgram_fill(buf, seq);

			if (send(fd, buf, len, 0) != (ssize_t)len)
				_exit(50);
			usleep(1000 + (seq % 5) * 1000);
		}
		_exit(0);
	}
	return pid;
}

/* What the loop saw, checked as it goes. */
struct seen {
	ml_chan *chan;
	bool daemon;
	unsigned senders;
	uint32_t per_sender;
	uint32_t msgs[CLIENTS];
	uint32_t next[CLIENTS][ML_PRIO_COUNT]; /* next seq in each lane */
	unsigned id[CLIENTS];                  /* daemon: each sender's client id */
	uint32_t dgrams;
	uint64_t ticks;
	int64_t deadline;
	char why[160];                         /* the first thing wrong */
};

static bool all_seen(const struct seen *s)
{
	for (unsigned i = 0; i < s->senders; i++)
		if (s->msgs[i] < s->per_sender)
			return false;
	return s->dgrams == DGRAMS && s->ticks >= MIN_TICKS;
}

static int wrong(struct seen *s, const char *what, uint32_t a, uint32_t b)
{
	if (!s->why[0])
		snprintf(s->why, sizeof(s->why), "%s (%u, %u)", what, a, b);
	return -EPROTO;
}

static int on_msg(struct evloop *l, unsigned client, int prio, const void *buf, size_t len)
{
	struct seen *s = l->arg;
	uint8_t ans[MSG_MAX];
	uint32_t seq = 0, who = 0;
	int err;

	if (!msg_check(buf, len, false, &seq, &who) || who >= s->senders)
		return wrong(s, "message corrupt", (uint32_t)len, who);
	if (prio != (int)(seq % ML_PRIO_COUNT))
		return wrong(s, "message in the wrong lane", seq, (uint32_t)prio);
	if (seq != s->next[who][prio])
		return wrong(s, "message out of sequence: got, expected", seq, s->next[who][prio]);
	if (s->daemon) {
		/* A connection keeps its id: ids, not slots, are compared. */
		if (s->msgs[who] == 0)
			s->id[who] = client;
		else if (s->id[who] != client)
			return wrong(s, "sender changed client ids", who, client);
	}
	s->next[who][prio] += ML_PRIO_COUNT;
	s->msgs[who]++;

	memcpy(ans, buf, len);
	msg_answer(ans, len);
	err = s->daemon ? ml_chan_reply(s->chan, client, prio, ans, len)
			: ml_chan_send(s->chan, prio, ans, len);
	if (err)
		return wrong(s, "answer failed: errno, seq", (uint32_t)-err, seq);
	return all_seen(s);
}

static int on_dgram(struct evloop *l, const void *buf, size_t len)
{
	struct seen *s = l->arg;
	uint8_t want[64];
	size_t n = dgram_fill(want, s->dgrams);

	if (len != n || memcmp(buf, want, n))
		return wrong(s, "datagram wrong: number, length", s->dgrams, (uint32_t)len);
	s->dgrams++;
	return all_seen(s);
}

static int on_tick(struct evloop *l, uint64_t expirations)
{
	struct seen *s = l->arg;
	uint32_t got = 0;

	s->ticks += expirations;
	if (ml_now_ns() < s->deadline)
		return all_seen(s);
	for (unsigned i = 0; i < s->senders; i++)
		got += s->msgs[i];
	snprintf(s->why, sizeof(s->why),
		 "timed out: %u of %u messages, %u of %u datagrams, %llu ticks",
		 got, s->senders * s->per_sender, s->dgrams, DGRAMS,
		 (unsigned long long)s->ticks);
	return -ETIMEDOUT;
}

FIXTURE(evloop) {
	int sv[2];
	pid_t writer;
};

FIXTURE_VARIANT(evloop) {
	int (*loop)(struct evloop *l);
	unsigned flags;
	bool uring;
};

FIXTURE_VARIANT_ADD(evloop, epoll) {
	.loop = evloop_epoll,
};

FIXTURE_VARIANT_ADD(evloop, uring_multishot) {
	.loop = evloop_uring,
	.uring = true,
};

FIXTURE_VARIANT_ADD(evloop, uring_oneshot) {
	.loop = evloop_uring,
	.flags = EVLOOP_URING_ONESHOT,
	.uring = true,
};

FIXTURE_SETUP(evloop)
{
	self->writer = -1;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, self->sv));
	if (!backend())
		TH_LOG("MEMLINK_BACKEND=%s: kmod or linux", backend_name());
	ASSERT_NE(0u, backend());
	/* Also for the examples' programs, which open channels without options. */
	setenv("MEMLINK_BACKEND", backend_name(), 1);
}

FIXTURE_TEARDOWN(evloop)
{
	if (self->writer > 0)
		kill(self->writer, SIGKILL);
	close(self->sv[0]);
	close(self->sv[1]);
}

/*
 * The io_uring variants need io_uring: in the kernel (the debug one may not
 * have it), and allowed (kernel.io_uring_disabled, a container's seccomp).
 */
#define SKIP_WITHOUT_URING()							\
	do {									\
		struct io_uring __r;						\
		int __e = variant->uring ? io_uring_queue_init(2, &__r, 0) : 1; \
										\
		if (__e == -ENOSYS)						\
			SKIP(return, "no io_uring in this kernel");		\
		if (__e == -EPERM)						\
			SKIP(return, "io_uring is not allowed here");		\
		if (__e == 0)							\
			io_uring_queue_exit(&__r);				\
	} while (0)

/* Run the loop over `s`, then check what it counted. */
#define RUN_LOOP(s, l)								\
	do {									\
		int64_t __t0 = ml_now_ns(), __el;				\
		int __err;							\
										\
		(s)->deadline = __t0 + 60 * ML_NSEC_PER_SEC * ml_time_scale();	\
		__err = variant->loop(l);					\
		__el = ml_now_ns() - __t0;					\
		TH_LOG("%.0f ms: %llu msgs, %llu datagrams, %llu ticks; "	\
		       "%llu wake-ups, %llu with nothing to do", __el / 1e6,	\
		       (unsigned long long)(l)->msgs,				\
		       (unsigned long long)(l)->dgrams,				\
		       (unsigned long long)(l)->ticks,				\
		       (unsigned long long)(l)->wakeups,			\
		       (unsigned long long)(l)->idle);				\
		if ((s)->why[0])						\
			TH_LOG("%s", (s)->why);					\
		ASSERT_EQ(0, __err);						\
		ASSERT_TRUE(all_seen(s));					\
		EXPECT_EQ((s)->senders * (s)->per_sender, (l)->msgs);		\
		EXPECT_EQ((uint64_t)DGRAMS, (l)->dgrams);			\
		EXPECT_EQ((uint64_t)0, (l)->reports);				\
		/* Ticks as the clock says, none lost behind the messages. */	\
		EXPECT_LE((l)->ticks, (uint64_t)(__el / TICK_NS) + 1);		\
		EXPECT_GE((l)->ticks + 2, (uint64_t)(__el / TICK_NS) / 2);	\
		/*								\
		 * A wake-up with nothing to do comes from a send whose wake	\
		 * landed after its message was read: at most one per message	\
		 * (and rare). A loop that spins would have them by the		\
		 * million; one that sleeps through a send would time out.	\
		 */								\
		EXPECT_GE((l)->msgs / 4 + 10, (l)->idle);			\
	} while (0)

TEST_F_TIMEOUT(evloop, client_loop, 300)
{
	char name[ML_CHAN_NAME_MAX + 1];
	struct seen s = { .senders = 1, .per_sender = PUSH_MSGS };
	struct evloop l = {
		.sock = self->sv[0], .tick_ns = TICK_NS, .flags = variant->flags, .arg = &s,
		.on_msg = on_msg, .on_dgram = on_dgram, .on_tick = on_tick,
	};
	pid_t daemon;

	SKIP_WITHOUT_URING();
	for (int p = 0; p < ML_PRIO_COUNT; p++)
		s.next[0][p] = (uint32_t)p;
	chan_name(name, "cl");
	self->writer = spawn_writer(self->sv[1], DGRAMS);
	ASSERT_LT(0, self->writer);
	daemon = spawn_pusher(name, PUSH_MSGS);
	ASSERT_LT(0, daemon);
	ASSERT_EQ(0, connect_retry(&s.chan, name, 10000 * (int)ml_time_scale()));
	l.chan = s.chan;
	ASSERT_EQ(0, ml_chan_send(s.chan, ML_PRIO_HIGH, "helo", 4));
	/* The first burst arrives before ml_chan_fd() arms the descriptor. */
	ml_sleep_ms(50);

	RUN_LOOP(&s, &l);

	EXPECT_EQ(0, ml_chan_send(s.chan, ML_PRIO_LOW, NULL, 0)); /* goodbye */
	EXPECT_EQ(0, ml_reap_timeout(daemon, 10000 * (int)ml_time_scale()));
	EXPECT_EQ(0, ml_reap_timeout(self->writer, 10000 * (int)ml_time_scale()));
	self->writer = -1;
	ml_chan_close(s.chan);
}

TEST_F_TIMEOUT(evloop, daemon_loop, 300)
{
	struct ml_chan_opts o = chan_opts(CLIENTS);
	char name[ML_CHAN_NAME_MAX + 1];
	struct seen s = { .daemon = true, .senders = CLIENTS, .per_sender = CLIENT_MSGS };
	struct evloop l = {
		.sock = self->sv[0], .tick_ns = TICK_NS, .flags = variant->flags, .arg = &s,
		.on_msg = on_msg, .on_dgram = on_dgram, .on_tick = on_tick,
	};
	pid_t client[CLIENTS];

	SKIP_WITHOUT_URING();
	for (unsigned i = 0; i < CLIENTS; i++)
		for (int p = 0; p < ML_PRIO_COUNT; p++)
			s.next[i][p] = (uint32_t)p;
	chan_name(name, "dm");
	self->writer = spawn_writer(self->sv[1], DGRAMS);
	ASSERT_LT(0, self->writer);
	/* Clients before the channel: they must not inherit the daemon's file. */
	for (unsigned i = 0; i < CLIENTS; i++) {
		client[i] = spawn_sender(name, i, CLIENT_MSGS);
		ASSERT_LT(0, client[i]);
	}
	ASSERT_EQ(0, ml_daemon_create(&s.chan, name, &o));
	l.chan = s.chan;

	RUN_LOOP(&s, &l);

	/* Each client leaves once it has its last answer. */
	for (unsigned i = 0; i < CLIENTS; i++)
		EXPECT_EQ(0, ml_reap_timeout(client[i], 10000 * (int)ml_time_scale()));
	EXPECT_EQ(0, ml_reap_timeout(self->writer, 10000 * (int)ml_time_scale()));
	self->writer = -1;
	ml_chan_close(s.chan);
}

/* The examples' programs themselves (main() is evloop_demo()). */
TEST_F_TIMEOUT(evloop, example, 120)
{
	SKIP_WITHOUT_URING();
	if (variant->flags)
		SKIP(return, "the demo runs the default (multishot) loop");
	EXPECT_EQ(0, evloop_demo(variant->uring ? "io_uring" : "epoll", variant->loop));
}

TEST_HARNESS_MAIN

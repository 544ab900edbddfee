// SPDX-License-Identifier: MIT
/*
 * What the channel targets share: the calls either side of a channel
 * makes, each with the only results the API allows, and the harness's own
 * ways of playing the hostile peer (writing into the region, talking on
 * the channel's socket).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

static const uint8_t pattern[8192] = { 1, 2, 3, 4, 5, 6, 7, 8 };

size_t fz_len(uint8_t b)
{
	return b < 128 ? b % 32u : (size_t)(b - 128) * 64u;
}

static bool is_prio(int prio)
{
	return prio >= 0 && prio < ML_PRIO_COUNT;
}

#define GEN(id) ((unsigned)(id) >> 5)

/*
 * A daemon named client `id`: one it gave (slot in range, a generation),
 * not one known gone. Newer than the slot's newest so far, it is the
 * slot's next client, and so every older one has gone.
 */
static void saw_id(struct fz_ids *ids, unsigned max_clients, unsigned id)
{
	unsigned s = ML_CHAN_SLOT(id);

	CHECK(s < max_clients && GEN(id) >= 1 && GEN(id) > ids->gone[s]);
	if (GEN(id) > GEN(ids->newest[s])) {
		ids->newest[s] = id;
		ids->gone[s] = GEN(id) - 1;
	}
}

/*
 * A daemon's message or fault report from client `id`; with events, it
 * came between that client's JOINED and LEFT.
 */
static void saw_sender(struct fz_ids *ids, unsigned max_clients, unsigned id)
{
	saw_id(ids, max_clients, id);
	if (ids->events)
		CHECK(ids->joined[ML_CHAN_SLOT(id)] == id);
}

/*
 * A daemon's event: each once per client, JOINED while the slot's last
 * client has LEFT, LEFT after JOINED; from then on calls naming it give
 * -EPIPE (check_named()).
 */
static void saw_event(struct fz_ids *ids, unsigned max_clients, int ev, unsigned id)
{
	unsigned s = ML_CHAN_SLOT(id);

	CHECK(ids->events);
	saw_id(ids, max_clients, id);
	if (ev == ML_CHAN_JOINED) {
		CHECK(!ids->joined[s]);
		ids->joined[s] = id;
	} else {
		CHECK(ids->joined[s] == id);
		ids->joined[s] = 0;
		ids->gone[s] = GEN(id);
	}
}

/* What a recv told a daemon of the client (or event) of result n. */
static void saw_result(struct fz_ids *ids, unsigned max_clients, int n, unsigned id)
{
	if (n >= 0 || n == -EOWNERDEAD || n == -EBADMSG)
		saw_sender(ids, max_clients, id);
	else if (n == ML_CHAN_JOINED || n == ML_CHAN_LEFT)
		saw_event(ids, max_clients, n, id);
}

/* A recv's error: what the API allows (events only on a daemon with them). */
static bool recv_err_ok(const struct fz_ids *ids, bool daemon, int n)
{
	return n == -EAGAIN || n == -EBADMSG || n == -EPIPE || (daemon && n == -EOWNERDEAD) ||
	       (daemon && ids->events && (n == ML_CHAN_JOINED || n == ML_CHAN_LEFT));
}

/*
 * A daemon's call named client `id` (err: its result; args_ok: nothing
 * else in the call is wrong): an id never given is -EINVAL, one gone
 * -EPIPE (never its slot's newcomer), one given is never -EINVAL.
 */
static void check_named(const struct fz_ids *ids, unsigned max_clients, unsigned id, int err,
			bool args_ok)
{
	unsigned s = ML_CHAN_SLOT(id);

	if (s >= max_clients || !GEN(id))
		CHECK(err == -EINVAL);
	else if (GEN(id) <= ids->gone[s])
		CHECK(err == -EPIPE);
	else if (GEN(id) <= GEN(ids->newest[s]) && args_ok)
		CHECK(err != -EINVAL);
}

unsigned fz_client(const struct fz *f, unsigned max_clients, uint8_t b)
{
	unsigned s = (b & 31u) % (max_clients + 1), newest = 0;

	if (s < ML_CHAN_MAX_CLIENTS)
		newest = f->ids.newest[s];
	switch (b >> 5) {
	case 4:
		return newest ? newest - (1u << 5) : s;
	case 5:
		return newest ? newest + (1u << 5) : s;
	case 6:
		return s;
	case 7:
		return 1u << 5 | s;
	default:
		return newest ? newest : s;
	}
}

/* Exactly `buflen` bytes to receive into, so ASan sees any overrun. */
static void do_recv(ml_chan *c, bool daemon, unsigned max_clients, size_t buflen,
		    struct fz_ids *ids)
{
	uint8_t *buf = malloc(buflen ? buflen : 1);
	unsigned client = ~0u;
	int prio = -1;
	int n;

	CHECK(buf);
	n = ml_chan_recv(c, &prio, &client, buf, buflen);
	if (n >= 0)
		CHECK((size_t)n <= buflen && is_prio(prio) && (daemon || client == 0));
	else
		CHECK(n == -EMSGSIZE || recv_err_ok(ids, daemon, n));
	/* A daemon's messages, reports and events name their client. */
	if (daemon)
		saw_result(ids, max_clients, n, client);
	free(buf);
}

/* A batch: every message inside the buffer, aligned, in bounds. */
static void do_recv_many(ml_chan *c, bool daemon, unsigned max_clients, unsigned n,
			 size_t buflen, struct fz_ids *ids)
{
	uint8_t *buf = malloc(buflen ? buflen : 1);
	struct ml_msg *m = malloc(sizeof(*m) * (n ? n : 1));
	size_t end = 0;
	int got;

	CHECK(buf && m);
	got = ml_chan_recv_many(c, m, n, buf, buflen);
	if (got >= 0) {
		CHECK(n && got >= 1 && (unsigned)got <= n);
		for (int i = 0; i < got; i++) {
			size_t at = (size_t)((uint8_t *)m[i].data - buf);

			CHECK(at % 8 == 0 && at >= end && at + m[i].len <= buflen &&
			      is_prio(m[i].prio) && !m[i].reserved && (daemon || m[i].client == 0));
			if (daemon)
				saw_sender(ids, max_clients, m[i].client);
			end = at + m[i].len;
		}
	} else {
		CHECK((!n && got == -EINVAL) || got == -EMSGSIZE || recv_err_ok(ids, daemon, got));
		/* A report or event, as the first result: msgs[0] names its client. */
		if (daemon && n)
			saw_result(ids, max_clients, got, m[0].client);
	}
	free(m);
	free(buf);
}

/*
 * A view: every message aligned, its bytes readable where they lie (ASan
 * sees a wild pointer); left held, for the next operation to end or not.
 */
static void do_recv_view(ml_chan *c, bool daemon, unsigned max_clients, unsigned n,
			 struct fz_ids *ids)
{
	struct ml_msg *m = malloc(sizeof(*m) * (n ? n : 1));
	volatile uint8_t sink = 0;
	int got;

	CHECK(m);
	got = ml_chan_recv_view(c, m, n);
	if (got >= 0) {
		CHECK(n && got >= 1 && (unsigned)got <= n);
		for (int i = 0; i < got; i++) {
			const uint8_t *p = m[i].data;

			CHECK((uintptr_t)p % 8 == 0 && m[i].len <= 65536 && is_prio(m[i].prio) &&
			      !m[i].reserved && (daemon || m[i].client == 0));
			if (daemon)
				saw_sender(ids, max_clients, m[i].client);
			for (uint32_t j = 0; j < m[i].len; j++)
				sink ^= p[j];
		}
	} else {
		CHECK((!n && got == -EINVAL) || recv_err_ok(ids, daemon, got));
		if (daemon && n)
			saw_result(ids, max_clients, got, m[0].client);
	}
	(void)sink;
	free(m);
}

static void check_send(int err)
{
	CHECK(err == 0 || err == -EINVAL || err == -EMSGSIZE || err == -EAGAIN ||
	      err == -EBADMSG || err == -EPIPE);
}

/*
 * A send by reserve and commit: once the room is there, the commit sends,
 * unless (a daemon's) the client was found gone in between: -EPIPE, and
 * the reservation is dropped.
 */
static int send_in_place(ml_chan *c, bool daemon, unsigned client, int prio, size_t len)
{
	void *p;
	int err = ml_chan_send_reserve(c, client, prio, len, &p);

	if (err)
		return err;
	memcpy(p, pattern, len);
	err = ml_chan_send_commit(c, len + 1);
	CHECK(err == -EINVAL || (daemon && err == -EPIPE));
	if (err == -EINVAL)
		err = ml_chan_send_commit(c, len);
	CHECK(err == 0 || (daemon && err == -EPIPE));
	CHECK(ml_chan_send_commit(c, len) == -EINVAL);
	return err;
}

/*
 * ml_chan_clients into exactly n ids (ASan sees an overrun): a daemon's
 * ids in slot order, each one it gave and not one known gone; more than
 * n may be connected, never more than max_clients.
 */
static void do_clients(ml_chan *c, bool daemon, unsigned max_clients, unsigned n,
		       struct fz_ids *ids)
{
	unsigned *out = n ? malloc(sizeof(*out) * n) : NULL;
	int got;

	CHECK(!n || out);
	got = ml_chan_clients(c, out, n);
	if (!daemon) {
		CHECK(got == -EINVAL);
	} else {
		CHECK(got >= 0 && (unsigned)got <= max_clients);
		for (unsigned i = 0; i < (unsigned)got && i < n; i++) {
			CHECK(!i || ML_CHAN_SLOT(out[i]) > ML_CHAN_SLOT(out[i - 1]));
			saw_id(ids, max_clients, out[i]);
		}
	}
	free(out);
}

void fz_chan_op(ml_chan *c, bool daemon, unsigned max_clients, unsigned op, struct fz *f)
{
	unsigned client, n, pv;
	double bp;
	int prio, err;
	size_t len;

	switch (op) {
	case FZC_RECV:
		do_recv(c, daemon, max_clients, (size_t)fz_u8(f) * 8, &f->ids);
		break;
	case FZC_RECV_MAX:
		do_recv(c, daemon, max_clients, 65536, &f->ids);
		break;
	case FZC_RECV_MANY:
		n = fz_u8(f) % 17u;
		len = fz_u8(f);
		if (len == 255)
			do_recv_view(c, daemon, max_clients, n, &f->ids);
		else
			do_recv_many(c, daemon, max_clients, n, len * 8, &f->ids);
		break;
	case FZC_WAIT:
		err = ml_chan_wait(c, 0);
		CHECK(err == 0 || err == -ETIMEDOUT || (!daemon && err == -EPIPE));
		break;
	case FZC_SEND:
	case FZC_SEND_WAIT:
		/* A daemon replies, to a client that may be gone, or never was. */
		pv = fz_u8(f);
		client = daemon ? fz_client(f, max_clients, (uint8_t)pv) : 0;
		pv = fz_u8(f);
		prio = (int)(pv % 5) - 1;
		len = fz_len(fz_u8(f));
		if (op == FZC_SEND_WAIT)
			err = ml_chan_send_wait(c, client, prio, pattern, len, 0);
		else if (pv >= 128)
			err = send_in_place(c, daemon, client, prio, len);
		else if (daemon)
			err = ml_chan_reply(c, client, prio, pattern, len);
		else
			err = ml_chan_send(c, prio, pattern, len);
		check_send(err);
		CHECK(err || is_prio(prio));
		if (daemon)
			check_named(&f->ids, max_clients, client, err, is_prio(prio));
		break;
	case FZC_BACKPRESSURE:
		bp = ml_chan_backpressure(c);
		CHECK(bp >= 0.0 && bp <= 1.0);
		break;
	case FZC_CONNECTED:
		err = ml_chan_connected(c);
		CHECK(err == 0 || err == 1);
		break;
	case FZC_SIGNAL:
		CHECK(ml_chan_signal(c) == 0);
		break;
	case FZC_PEER_ALIVE:
		client = daemon ? fz_client(f, max_clients, fz_u8(f)) : fz_u8(f);
		err = ml_chan_peer_alive(c, client, (int64_t)fz_u8(f) * 1000000);
		CHECK(err == 0 || err == 1 || err == -EPIPE || (err == -EINVAL && daemon));
		if (daemon)
			check_named(&f->ids, max_clients, client, err, true);
		break;
	case FZC_BEAT:
		CHECK(ml_chan_beat(c) == 0);
		break;
	case FZC_STATS: {
		struct ml_chan_stats st = { .size = sizeof(st) };

		CHECK(ml_chan_stats(c, &st) == 0);
		CHECK(st.last_error == 0 || st.last_error == -EOWNERDEAD ||
		      st.last_error == -EBADMSG);
		/* A daemon's last fault names the client's id (gone by now, maybe). */
		if (daemon && st.last_error)
			CHECK(ML_CHAN_SLOT(st.last_client) < max_clients && GEN(st.last_client) >= 1);
		else
			CHECK(st.last_client == 0);
		break;
	}
	case FZC_CLIENTS:
		n = fz_u8(f) % (ML_CHAN_MAX_CLIENTS + 2);
		do_clients(c, daemon, max_clients, n, &f->ids);
		break;
	}
}

void fz_poke(uint8_t *region, size_t len, struct fz *f)
{
	size_t off = fz_u16(f) | (size_t)fz_u8(f) << 16;
	size_t n = fz_u8(f) % 32u;

	if (!len)
		return;
	off %= len;
	for (size_t i = 0; i < n && off + i < len; i++)
		region[off + i] = fz_u8(f);
}

socklen_t fz_addr(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "memlink.%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1));
}

int fz_hello(const char *name, unsigned kind, struct ml__wire_reply *r, int *fds, int *n)
{
	struct ml__wire_hello h = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = (uint16_t)kind,
	};
	union {
		struct cmsghdr c;
		char b[CMSG_SPACE(sizeof(int) * ML__WIRE_MAX_FDS)];
	} u;
	struct iovec iov = { .iov_base = r, .iov_len = sizeof(*r) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };
	struct sockaddr_un a;
	socklen_t alen = fz_addr(&a, name);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ssize_t got;

	*n = 0;
	if (s < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	/* libFuzzer's SIGALRM (its -timeout) may interrupt any of these. */
	while ((got = connect(s, (struct sockaddr *)&a, alen)) && errno == EINTR)
		;
	while (!got && (got = send(s, &h, sizeof(h), 0)) < 0 && errno == EINTR)
		;
	if (got == sizeof(h))
		while ((got = recvmsg(s, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
			;
	if (got < (ssize_t)ML__WIRE_REPLY_SHORT) {
		close(s);
		return -1;
	}
	if (CMSG_FIRSTHDR(&m) && CMSG_FIRSTHDR(&m)->cmsg_type == SCM_RIGHTS) {
		*n = (int)((CMSG_FIRSTHDR(&m)->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(fds, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int) * (size_t)*n);
	}
	return s;
}

int fz_region_fd(const char *name)
{
	struct ml__wire_reply r;
	int fds[ML__WIRE_MAX_FDS], n, s = fz_hello(name, ML__WIRE_INSPECT, &r, fds, &n);

	if (s < 0)
		return -1;
	close(s);
	for (int i = 1; i < n; i++)
		close(fds[i]);
	return n && !r.err ? fds[0] : -1;
}

int fz_join(const char *name, uint8_t **area, size_t *len, unsigned *slot)
{
	struct ml__wire_reply r;
	int fds[ML__WIRE_MAX_FDS], n, s = fz_hello(name, ML__WIRE_JOIN, &r, fds, &n);

	if (s >= 0 && r.err) {
		close(s);
		s = -1;
	}
	if (area) {
		*area = NULL;
		/* [control region, area, daemon bell, client bell] */
		if (s >= 0 && n == ML__WIRE_JOIN_FDS && r.bell >= 1) {
			void *p = mmap(NULL, (size_t)r.area_size, PROT_READ | PROT_WRITE,
				       MAP_SHARED, fds[1], 0);

			if (p != MAP_FAILED) {
				*area = p;
				*len = (size_t)r.area_size;
				*slot = r.bell - 1;
			}
		}
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return s;
}

// SPDX-License-Identifier: MIT
/*
 * Channel tests of the linux backend's socket (lib/linux/wire.h): hostile
 * peers on the daemon's socket, an impostor daemon answering a client,
 * the mode's group bits against real groups, daemons of another uid, a
 * daemon that is gone or stopped, nothing left after SIGKILLs in every
 * order, ml_chan_fd()'s readiness on both sides, sleepers seeing a peer
 * die, close-on-exec descriptors, and a flood of connections from a user
 * the mode refuses. Each skips on other backends.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proctest.h"
#include "chan_test.h"

#ifdef _WIN32
#define SKIP_ALL(fn)                                  \
	int fn(void)                                  \
	{                                             \
		skipf("the linux backend's socket");  \
		return 1;                             \
	}
SKIP_ALL(t_sock_hostile_peers)
SKIP_ALL(t_sock_impostor_daemon)
SKIP_ALL(t_sock_group_mode)
SKIP_ALL(t_sock_gone_or_stopped)
SKIP_ALL(t_sock_kill_orders)
SKIP_ALL(t_sock_fd_readiness)
SKIP_ALL(t_sock_uid_daemon)
SKIP_ALL(t_sock_death_sleepers)
SKIP_ALL(t_sock_fds_cloexec)
SKIP_ALL(t_sock_connect_flood)
#else
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "linux/wire.h"

static bool linux_only(void)
{
	if (strcmp(active_backend, "linux")) {
		skipf("the linux backend's socket");
		return false;
	}
	return true;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A raw connection to the channel's socket; -1 on failure. */
static int dial(const char *name)
{
	struct sockaddr_un a;
	socklen_t len = sock_addr(&a, name);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (s >= 0 && connect(s, (struct sockaddr *)&a, len)) {
		close(s);
		s = -1;
	}
	return s;
}

/* Send a message with n descriptors. */
static int send_fds(int s, const void *buf, size_t len, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 253)];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *h;

	if (n) {
		memset(cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
		h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
		memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)n);
	}
	return sendmsg(s, &m, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

/*
 * What the daemon does with a connection within `ms`: 0 it closed it
 * without a word (unread or not), > 0 the err of its (short) reply, -1 it said nothing
 * and kept it open, -2 anything else.
 */
static int outcome(int s, int ms)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	struct ml__wire_reply r;
	ssize_t n;

	if (poll(&p, 1, ms) == 0)
		return -1;
	n = recv(s, &r, sizeof(r), MSG_DONTWAIT);
	/* Closed with what we sent unread: the kernel says ECONNRESET. */
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return 0;
	if (n == ML__WIRE_REPLY_SHORT && r.magic == ML__WIRE_MAGIC && r.err > 0 &&
	    recv(s, &r, sizeof(r), 0) == 0)
		return r.err;
	return -2;
}

static struct ml__wire_hello hello(uint16_t kind)
{
	struct ml__wire_hello h = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = kind,
	};

	return h;
}

/* A region that looks like a channel, in a memfd: sealed or not, and how big. */
static int fake_region(size_t len, bool seal)
{
	int fd = memfd_create("impostor", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)len) ||
	    (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* ---- hostile peers on the daemon's socket ---------------------------- */

struct hostile {
	char name[80];
	_Atomic int up, stop, measure;
	_Atomic int fds_before, fds_after;
	_Atomic long served;
	/* the client in the background: round trips while the attacks go on */
	_Atomic int bg_up, bg_stop, bg_trips;
};

/* The daemon: serves echoes until told, then counts its descriptors again. */
static int hostile_daemon(void *arg)
{
	struct hostile *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;
	int64_t end;
	int n;

	o.max_clients = 3;
	o.ring_size = 16384;
	if (ml_daemon_create(&d, sh->name, &o))
		return 1;
	atomic_store(&sh->up, 1);
	for (int64_t stop = now_ns() + 120 * SEC; !atomic_load(&sh->stop) && now_ns() < stop;) {
		long got = serve_echo(d, &sh->stop, 50 * MS);

		if (got < 0)
			return 1;
		atomic_fetch_add(&sh->served, got);
		/* Once every slot has had a client: a bell each, kept for good. */
		if (atomic_load(&sh->measure) == 1) {
			atomic_store(&sh->fds_before, count_fds());
			atomic_store(&sh->measure, 2);
		}
		/*
		 * After the attacks, the same clients connected: its thread lets
		 * go of what the peers left as it sees them go.
		 */
		if (atomic_load(&sh->measure) == 3) {
			for (end = now_ns() + 10 * SEC; now_ns() < end; sleep_ms(20)) {
				n = count_fds();
				if (n == atomic_load(&sh->fds_before))
					break;
			}
			atomic_store(&sh->fds_after, count_fds());
			atomic_store(&sh->measure, 4);
		}
	}
	ml_chan_close(d);
	return 0;
}

/* A well-behaved client, another process: round trips until told to stop. */
static int hostile_bg(void *arg)
{
	struct hostile *sh = arg;
	ml_chan *c = NULL;

	if (connect_retry(&c, sh->name, 10 * SEC, -ENOENT))
		return 10;
	atomic_store(&sh->bg_up, 1);
	while (!atomic_load(&sh->bg_stop)) {
		char m[32];

		snprintf(m, sizeof(m), "background %d", atomic_load(&sh->bg_trips));
		if (roundtrip(c, ML_PRIO_LOW, m, strlen(m), 10 * SEC)) {
			ml_chan_close(c);
			return 11;
		}
		atomic_fetch_add(&sh->bg_trips, 1);
	}
	ml_chan_close(c);
	return 0;
}

/*
 * Peers that send garbage, bad hellos, descriptors (many, and of the wrong
 * kinds), that never speak (more of them than may wait), and ones that
 * join and then break the protocol. The daemon answers each as the
 * protocol says, keeps serving well-behaved clients throughout (one in
 * this process between the attacks, one in another process all along:
 * its round trips counted, every echo compared), lets in a new client
 * afterwards, has served exactly the round trips its clients made, and
 * leaks no descriptor.
 */
int t_sock_hostile_peers(void)
{
	struct hostile *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	int silent[ML__WIRE_PENDING_MAX + 8], fds[200], p[2] = { -1, -1 }, s = -1, ret = -1;
	unsigned trips = 0, lates = 0;
	ml_chan *good = NULL, *late = NULL;
	pid_t daemon = 0, bg = 0;

	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++)
		silent[i] = -1;
	for (unsigned i = 0; i < 200; i++)
		fds[i] = -1;
	if (!linux_only())
		return 1;
	chan_name(sh->name, sizeof(sh->name), "hostile");
	daemon = spawn(hostile_daemon, sh);
	CHECK(daemon > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
	/* (Forked before this process has a connection of its own to pass on.) */
	bg = spawn(hostile_bg, sh);
	CHECK(bg > 0 && wait_flag(&sh->bg_up, 1, 10 * SEC), "background client not up");
	CHECK_RC(ml_client_connect(&good, sh->name, &o), 0);
	CHECK_RC(ml_client_connect(&late, sh->name, &o), 0);
	ml_chan_close(late);
	late = NULL;
	sleep_ms(200);
	atomic_store(&sh->measure, 1);
	CHECK(wait_flag(&sh->measure, 2, 10 * SEC), "the daemon did not count");
	/* A round trip here, and one of the background client since the attack. */
#define TRIP(what)                                                                           \
	do {                                                                                 \
		int bg0_ = atomic_load(&sh->bg_trips);                                       \
		CHECK_RC(roundtrip(good, ML_PRIO_HIGH, "still here", 10, 10 * SEC), 0);      \
		trips++;                                                                     \
		CHECK(wait_flag(&sh->bg_trips, bg0_ + 1, 10 * SEC),                          \
		      "the background client made no round trip in 10 s after %s", what);    \
	} while (0)
	TRIP("the start");
	/* Garbage: closed, no answer. */
	s = dial(sh->name);
	CHECK(s >= 0 && send(s, "\x01\x02garbage that is no hello at all", 34, 0) == 34, "send");
	CHECK_RC(outcome(s, 10000), 0);
	close(s);
	s = -1;
	TRIP("garbage");
	/* A hello-sized message of another magic: not ours, closed without a word. */
	{
		struct ml__wire_hello h = hello(ML__WIRE_JOIN);

		h.magic = 0x4b534c4d;
		s = dial(sh->name);
		CHECK(s >= 0 && send(s, &h, sizeof(h), 0) == sizeof(h), "send");
		CHECK_RC(outcome(s, 10000), 0);
		close(s);
		s = -1;
		TRIP("a bad magic");
	}
	/* Hellos of our magic but wrong otherwise: refused with EPROTO. */
	for (int k = 0; k < 8; k++) {
		static const char *const what[] = { "version", "kind 77", "flags", "short (12)",
						    "kind 0", "pad", "long (17)", "long (4096)" };
		char big[4096];
		struct ml__wire_hello h = hello(ML__WIRE_JOIN);
		size_t len = sizeof(h);
		int got;

		if (k == 0)
			h.version = 99;
		else if (k == 1)
			h.kind = 77;
		else if (k == 2)
			h.flags = 1;
		else if (k == 3)
			len = 12; /* short */
		else if (k == 4)
			h.kind = 0;
		else if (k == 5)
			h.pad = 1;
		else
			len = k == 6 ? 17 : sizeof(big);
		memset(big, 0, sizeof(big));
		memcpy(big, &h, sizeof(h));
		s = dial(sh->name);
		CHECK(s >= 0 && send(s, big, len, 0) == (ssize_t)len, "send");
		got = outcome(s, 10000);
		/* Too long to read whole (truncated): closed without a word may do. */
		CHECK(got == EPROTO || (k == 7 && got == 0),
		      "bad hello (%s): outcome %d, not refused with EPROTO", what[k], got);
		close(s);
		s = -1;
		TRIP(what[k]);
	}
	/* Descriptors with a hello: 200 of them, of every wrong kind. */
	CHECK(!pipe(p), "pipe");
	for (int i = 0; i < 200; i++) {
		if (i % 5 == 0)
			fds[i] = memfd_create("unsealed", MFD_CLOEXEC);
		else if (i % 5 == 1)
			fds[i] = dup(p[0]);
		else if (i % 5 == 2)
			fds[i] = eventfd(0, EFD_CLOEXEC);
		else if (i % 5 == 3)
			fds[i] = dup(p[1]);
		else
			fds[i] = fake_region(1024, true); /* sealed, too small */
		CHECK(fds[i] >= 0, "descriptor %d", i);
	}
	for (unsigned i = 0; i < 6; i++) {
		static const int counts[] = { 1, 3, 4, 200, 5, 1 };
		struct ml__wire_hello h = hello(i == 5 ? ML__WIRE_INSPECT : ML__WIRE_JOIN);

		s = dial(sh->name);
		CHECK(s >= 0, "dial");
		/* counts[4]: from fds[4] on, the sealed small memfd first */
		CHECK_RC(send_fds(s, &h, sizeof(h), fds + (i == 4 ? 4 : 0), counts[i]), 0);
		CHECK(outcome(s, 10000) == 0, "a hello with %d descriptors was not just closed",
		      counts[i]);
		close(s);
		s = -1;
		TRIP("descriptors");
	}
	for (int i = 0; i < 200; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	/* Silent ones, more than may wait: the good clients and a new one still get in. */
	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++) {
		silent[i] = dial(sh->name);
		CHECK(silent[i] >= 0, "silent %u", i);
	}
	TRIP("silent peers");
	CHECK_RC(connect_retry(&late, sh->name, 10 * SEC, -EPIPE), 0);
	CHECK_RC(roundtrip(late, ML_PRIO_LOW, "late", 4, 10 * SEC), 0);
	lates++;
	ml_chan_close(late);
	late = NULL;
	/* Every silent one is let go, by eviction or after ML__WIRE_HELLO_MS. */
	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++) {
		CHECK(outcome(silent[i], 20000) == 0, "silent %u: not closed", i);
		close(silent[i]);
		silent[i] = -1;
	}
	TRIP("the silent peers went");
	/*
	 * Clients that join, then send anything (bytes; a hello with a
	 * descriptor), or leave without ever touching the region: cut off or
	 * gone, their slot freed each time.
	 */
	for (int v = 0; v < 3; v++) {
		struct ml__wire_hello h = hello(ML__WIRE_JOIN);
		struct ml__wire_reply r;
		int got[8], ng = 0;
		char cb[CMSG_SPACE(sizeof(int) * 8)];
		struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb,
				    .msg_controllen = sizeof(cb) };

		/* The slot of the client that left is free once the daemon has looked. */
		for (int64_t end = now_ns() + 10 * SEC;; sleep_ms(10)) {
			s = dial(sh->name);
			CHECK(s >= 0 && send(s, &h, sizeof(h), 0) == sizeof(h), "join");
			m.msg_controllen = sizeof(cb);
			CHECK(recvmsg(s, &m, MSG_CMSG_CLOEXEC) >= ML__WIRE_REPLY_SHORT, "no reply");
			if (r.err != ECONNREFUSED || now_ns() > end)
				break;
			close(s);
		}
		CHECK(!r.err && r.bell >= 1, "join %d refused: err %d", v, r.err);
		if (CMSG_FIRSTHDR(&m)) {
			ng = (int)((CMSG_FIRSTHDR(&m)->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int) * (size_t)ng);
		}
		for (int i = 0; i < ng; i++)
			close(got[i]);
		CHECK(ng == ML__WIRE_JOIN_FDS, "join gave %d descriptors", ng);
		if (v == 0) {
			CHECK(send(s, "more", 4, 0) == 4, "send");
			CHECK_RC(outcome(s, 10000), 0);
		} else if (v == 1) {
			CHECK_RC(send_fds(s, &h, sizeof(h), p, 1), 0);
			CHECK_RC(outcome(s, 10000), 0);
		}
		close(s);
		s = -1;
		TRIP("a joined peer broke the protocol");
		/* Its slot (the third of three) is free again. */
		CHECK_RC(connect_retry(&late, sh->name, 10 * SEC, -ECONNREFUSED), 0);
		CHECK_RC(roundtrip(late, ML_PRIO_LOW, "late", 4, 10 * SEC), 0);
		lates++;
		ml_chan_close(late);
		late = NULL;
	}
	TRIP("the end");
	atomic_store(&sh->measure, 3);
	CHECK(wait_flag(&sh->measure, 4, 30 * SEC), "the daemon did not count again");
	atomic_store(&sh->bg_stop, 1);
	CHECK(reap_ok(bg, "background client", 30 * SEC), "background client");
	bg = 0;
	ml_chan_close(good);
	good = NULL;
	atomic_store(&sh->stop, 1);
	CHECK(reap_ok(daemon, "daemon", 30 * SEC), "daemon");
	daemon = 0;
	printf("  # %u round trips between the attacks, %d in the background; daemon "
	       "descriptors %d before, %d after\n",
	       trips, atomic_load(&sh->bg_trips), atomic_load(&sh->fds_before),
	       atomic_load(&sh->fds_after));
	CHECK(atomic_load(&sh->fds_after) == atomic_load(&sh->fds_before),
	      "the daemon holds %d descriptors, %d before the attacks", atomic_load(&sh->fds_after),
	      atomic_load(&sh->fds_before));
	CHECK(atomic_load(&sh->served) == (long)(trips + lates) + atomic_load(&sh->bg_trips),
	      "the daemon served %ld echoes, its clients made %u + %u + %d round trips",
	      atomic_load(&sh->served), trips, lates, atomic_load(&sh->bg_trips));
	ret = 0;
out:
	if (s >= 0)
		close(s);
	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++)
		if (silent[i] >= 0)
			close(silent[i]);
	for (int i = 0; i < 200; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	ml_chan_close(late);
	ml_chan_close(good);
	if (bg > 0) {
		atomic_store(&sh->bg_stop, 1);
		kill(bg, SIGKILL);
		reap(bg, 5 * SEC);
	}
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		reap(daemon, 5 * SEC);
	}
	return ret;
#undef TRIP
}

/* ---- an impostor daemon ------------------------------------------------ */

enum impostor_kind {
	IMP_GARBAGE,
	IMP_NO_FDS,
	IMP_UNSEALED,
	IMP_TOO_SMALL,
	IMP_TINY_REGION,
	IMP_PIPE_BELL,
	IMP_TOO_MANY_FDS,
	IMP_WRONG_KIND,
	IMP_BELL_ZERO,
	IMP_BELL_HIGH,
	IMP_ERR_WITH_FDS,
	IMP_NOT_CLAIMED,
	IMP_REFUSE,
	IMP_CLOSE,
	IMP_BAD_MAGIC,
	IMP_BAD_VERSION,
	IMP_LONG_REPLY,
	IMP_MANY_FDS,
	IMP_WRITE_SEALED,
	IMP_SOCKET_REGION,
	IMP_FILE_REGION,
	IMP_MEMFD_BELL,
	IMP_ERR_UNKNOWN,
	IMP_ERR_FULL,
	IMP_SILENT,
	IMP_AREA_UNSEALED,
	IMP_AREA_SMALL,
	IMP_NO_AREA_SIZE,
	IMP_CTL_RO_SEALED,
	IMP_KINDS
};

static const int imp_want[IMP_KINDS] = {
	[IMP_GARBAGE] = -EPROTO,   [IMP_NO_FDS] = -EPROTO,       [IMP_UNSEALED] = -EPROTO,
	[IMP_TOO_SMALL] = -EPROTO, [IMP_TINY_REGION] = -EPROTO,  [IMP_PIPE_BELL] = -EPROTO,
	[IMP_TOO_MANY_FDS] = -EPROTO, [IMP_WRONG_KIND] = -EPROTO, [IMP_BELL_ZERO] = -EPROTO,
	[IMP_BELL_HIGH] = -EPROTO, [IMP_ERR_WITH_FDS] = -EPROTO, [IMP_NOT_CLAIMED] = -ENOENT,
	[IMP_REFUSE] = -EACCES,    [IMP_CLOSE] = -EPIPE,         [IMP_SILENT] = -ETIMEDOUT,
	[IMP_BAD_MAGIC] = -EPROTO, [IMP_BAD_VERSION] = -EPROTO,  [IMP_LONG_REPLY] = -EPROTO,
	[IMP_MANY_FDS] = -EPROTO,  [IMP_WRITE_SEALED] = -EPROTO, [IMP_SOCKET_REGION] = -EPROTO,
	[IMP_FILE_REGION] = -EPROTO, [IMP_MEMFD_BELL] = -EPROTO, [IMP_ERR_UNKNOWN] = -EPROTO,
	[IMP_ERR_FULL] = -ECONNREFUSED, [IMP_AREA_UNSEALED] = -EPROTO, [IMP_AREA_SMALL] = -EPROTO,
	[IMP_NO_AREA_SIZE] = -EPROTO,
	/* Sealed against writing, as a daemon seals it: only empty. */
	[IMP_CTL_RO_SEALED] = -ENOENT,
};

static const char *const imp_what[IMP_KINDS] = {
	[IMP_GARBAGE] = "garbage", [IMP_NO_FDS] = "no descriptors",
	[IMP_UNSEALED] = "a memfd without seals", [IMP_TOO_SMALL] = "a memfd smaller than said",
	[IMP_TINY_REGION] = "a 1024-byte region", [IMP_PIPE_BELL] = "a pipe for a bell",
	[IMP_TOO_MANY_FDS] = "5 descriptors", [IMP_WRONG_KIND] = "an INSPECT reply",
	[IMP_BELL_ZERO] = "bell 0", [IMP_BELL_HIGH] = "bell 40",
	[IMP_ERR_WITH_FDS] = "a refusal with descriptors",
	[IMP_NOT_CLAIMED] = "an empty region", [IMP_REFUSE] = "EACCES",
	[IMP_CLOSE] = "closing at once", [IMP_BAD_MAGIC] = "a bad magic",
	[IMP_BAD_VERSION] = "a bad version", [IMP_LONG_REPLY] = "a JOIN reply of full length",
	[IMP_MANY_FDS] = "200 descriptors", [IMP_WRITE_SEALED] = "a write-sealed area",
	[IMP_SOCKET_REGION] = "a socket for the region",
	[IMP_FILE_REGION] = "an unsealable tmpfs file for the region",
	[IMP_MEMFD_BELL] = "a memfd for the daemon's bell", [IMP_ERR_UNKNOWN] = "err 9999",
	[IMP_ERR_FULL] = "ECONNREFUSED", [IMP_SILENT] = "silence",
	[IMP_AREA_UNSEALED] = "an area without seals",
	[IMP_AREA_SMALL] = "an area smaller than said", [IMP_NO_AREA_SIZE] = "area size 0",
	[IMP_CTL_RO_SEALED] = "an empty control region sealed against writing",
};

struct impostor {
	char name[80];
	_Atomic int up, kind, stop;
};

static void impostor_answer(int c, enum impostor_kind k)
{
	struct ml__wire_reply r = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = ML__WIRE_JOIN,
		.bell = 1,
		.region_size = 65536,
		.area_size = 65536,
	};
	int fds[6], n = ML__WIRE_JOIN_FDS, p[2], many[200];
	size_t len = ML__WIRE_REPLY_SHORT;

	/* [control region, area, daemon bell, client bell], one more, a spare. */
	fds[0] = fake_region(65536, k != IMP_UNSEALED);
	fds[1] = fake_region(65536, k != IMP_AREA_UNSEALED);
	fds[2] = eventfd(0, EFD_CLOEXEC);
	fds[3] = eventfd(0, EFD_CLOEXEC);
	fds[4] = eventfd(0, EFD_CLOEXEC);
	fds[5] = -1;
	switch (k) {
	case IMP_GARBAGE:
		send(c, "\xff\xfe garbage", 10, MSG_NOSIGNAL);
		goto done;
	case IMP_NO_FDS:
		n = 0;
		break;
	case IMP_TOO_SMALL:
		r.region_size = 1 << 20; /* more than the memfd has */
		break;
	case IMP_TINY_REGION:
		close(fds[0]);
		fds[0] = fake_region(1024, true);
		r.region_size = 1024;
		break;
	case IMP_PIPE_BELL:
		if (pipe(p) == 0) {
			close(fds[3]);
			fds[3] = p[1];
			fds[5] = p[0];
		}
		break;
	case IMP_AREA_SMALL:
		r.area_size = 1 << 20;
		break;
	case IMP_NO_AREA_SIZE:
		r.area_size = 0;
		break;
	case IMP_CTL_RO_SEALED:
		close(fds[0]);
		fds[0] = memfd_create("impostor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fds[0] >= 0 && !ftruncate(fds[0], 65536))
			fcntl(fds[0], F_ADD_SEALS,
			      F_SEAL_SHRINK | F_SEAL_GROW | 0x0010 /* F_SEAL_FUTURE_WRITE */);
		break;
	case IMP_TOO_MANY_FDS:
		n = 5;
		break;
	case IMP_WRONG_KIND:
		r.kind = ML__WIRE_INSPECT;
		break;
	case IMP_BELL_ZERO:
		r.bell = 0;
		break;
	case IMP_BELL_HIGH:
		r.bell = 40;
		break;
	case IMP_ERR_WITH_FDS:
		r.err = EACCES;
		break;
	case IMP_REFUSE:
		r.err = EACCES;
		n = 0;
		break;
	case IMP_CLOSE:
		goto done;
	case IMP_BAD_MAGIC:
		r.magic ^= 0x20;
		break;
	case IMP_BAD_VERSION:
		r.version = ML__WIRE_VERSION + 1;
		break;
	case IMP_LONG_REPLY:
		len = sizeof(r);
		break;
	case IMP_MANY_FDS:
		for (int i = 0; i < 200; i++)
			many[i] = i < 4 ? fds[i] : fds[2 + i % 3];
		send_fds(c, &r, len, many, 200);
		goto done;
	case IMP_WRITE_SEALED:
		/* Sealed as asked, and against writing too: it cannot be mapped to write. */
		close(fds[1]);
		fds[1] = memfd_create("impostor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fds[1] >= 0 && !ftruncate(fds[1], 65536))
			fcntl(fds[1], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
		break;
	case IMP_SOCKET_REGION:
		close(fds[0]);
		fds[0] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		break;
	case IMP_FILE_REGION:
		/* A regular file of the right size, which no seal can hold. */
		close(fds[0]);
		fds[0] = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fds[0] < 0)
			fds[0] = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fds[0] >= 0 && ftruncate(fds[0], 65536)) {
			close(fds[0]);
			fds[0] = -1;
		}
		break;
	case IMP_MEMFD_BELL:
		close(fds[2]);
		fds[2] = fake_region(4096, true);
		break;
	case IMP_ERR_UNKNOWN:
		r.err = 9999;
		n = 0;
		break;
	case IMP_ERR_FULL:
		r.err = ECONNREFUSED;
		n = 0;
		break;
	case IMP_SILENT:
		sleep_ms(8000);
		goto done;
	default:
		/* IMP_NOT_CLAIMED: a right reply, but no channel in the region (still starting). */
		break;
	}
	send_fds(c, &r, len, fds, n);
done:
	for (int i = 0; i < 6; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int impostor(void *arg)
{
	struct impostor *sh = arg;
	struct sockaddr_un a;
	socklen_t len = sock_addr(&a, sh->name);
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, len) || listen(l, 8))
		return 1;
	atomic_store(&sh->up, 1);
	while (!atomic_load(&sh->stop)) {
		struct ml__wire_hello h;
		struct pollfd p = { .fd = l, .events = POLLIN };
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (recv(c, &h, sizeof(h), 0) == sizeof(h))
			impostor_answer(c, (enum impostor_kind)atomic_load(&sh->kind));
		close(c);
	}
	return 0;
}

/*
 * Something else on the channel's socket, answering a client's hello with
 * every kind of broken reply: the client gets the error the API names
 * (-EPROTO for a broken reply, -ETIMEDOUT for none within 5 s), never
 * crashes or hangs, and keeps no descriptor it was sent.
 */
int t_sock_impostor_daemon(void)
{
	struct impostor *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	pid_t imp = 0;
	int ret = -1;

	if (!linux_only())
		return 1;
	o.flags = ML_CHAN_ANY_DAEMON;
	chan_name(sh->name, sizeof(sh->name), "impostor");
	imp = spawn(impostor, sh);
	CHECK(imp > 0 && wait_flag(&sh->up, 1, 10 * SEC), "impostor not up");
	for (int k = 0; k < IMP_KINDS; k++) {
		int before = count_fds(), after, err;
		int64_t t = now_ns();
		ml_chan *c = NULL;

		atomic_store(&sh->kind, k);
		err = ml_client_connect(&c, sh->name, &o);
		t = now_ns() - t;
		after = count_fds();
		if (!err)
			ml_chan_close(c);
		/* Soft: every kind is tried and each wrong answer reported. */
		if (err != imp_want[k])
			fail_at(__LINE__, "impostor reply %d (%s): connect = %d (%s), want %d (%s)", k,
				imp_what[k], err, ml_strerror(err), imp_want[k],
				ml_strerror(imp_want[k]));
		if (after != before)
			fail_at(__LINE__, "impostor reply %d (%s): %d descriptors after, %d before",
				k, imp_what[k], after, before);
		if (t > 30 * SEC)
			fail_at(__LINE__, "impostor reply %d (%s): connect took %lld ms", k,
				imp_what[k], (long long)(t / MS));
		if (k == IMP_SILENT)
			printf("  # a silent impostor: %s after %.1f s\n", ml_strerror(err),
			       (double)t / SEC);
	}
	ret = atomic_load(&R->failed) ? -1 : 0;
out:
	if (imp > 0) {
		atomic_store(&sh->stop, 1);
		if (reap(imp, 15 * SEC) == -1)
			ret = -1;
	}
	return ret;
}

/* ---- the mode's group bits ----------------------------------------------- */

#define GRP_UID 65534
#define GRP_GID 4242

struct grp_shared {
	char name[80];
	_Atomic int up, stop;
	int gid, groups, want;  /* the client's primary gid, whether in GRP_GID, result */
	_Atomic int done;
};

static int grp_daemon(void *arg)
{
	struct grp_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;

	o.mode = 0660;
	if (setegid(GRP_GID) || ml_daemon_create(&d, sh->name, &o))
		return 1;
	atomic_store(&sh->up, 1);
	serve_echo(d, &sh->stop, 120 * SEC);
	ml_chan_close(d);
	return 0;
}

static int grp_client(void *arg)
{
	struct grp_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	gid_t g = GRP_GID;
	ml_chan *c = NULL;
	int err;

	o.flags = ML_CHAN_DAEMON_UID;
	o.daemon_uid = 0;
	if (setgroups(sh->groups ? 1 : 0, &g) || setgid((gid_t)sh->gid) || setuid(GRP_UID))
		return 10;
	err = ml_client_connect(&c, sh->name, &o);
	if (err != sh->want)
		return 11;
	if (!err && roundtrip(c, ML_PRIO_HIGH, "group", 5, 10 * SEC))
		return 12;
	ml_chan_close(c);
	return 0;
}

/*
 * A 0660 channel of a daemon whose group is GRP_GID: a client of another
 * uid is let in when GRP_GID is its primary group or one of its
 * supplementary groups (the kernel's SO_PEERGROUPS), refused with -EACCES
 * when it is neither. Needs root to switch users.
 */
int t_sock_group_mode(void)
{
	struct grp_shared *sh = shared_map(sizeof(*sh));
	static const struct { int gid, groups, want; } cases[] = {
		{ GRP_GID, 0, 0 },          /* primary group */
		{ GRP_UID, 1, 0 },          /* supplementary group */
		{ GRP_UID, 0, -EACCES },    /* neither */
	};
	pid_t daemon = 0;
	int ret = -1;

	if (!linux_only())
		return 1;
	if (geteuid() != 0) {
		skipf("needs root to switch users");
		return 1;
	}
	chan_name(sh->name, sizeof(sh->name), "group");
	daemon = spawn(grp_daemon, sh);
	CHECK(daemon > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
	for (unsigned i = 0; i < 3; i++) {
		pid_t c;
		int st;

		sh->gid = cases[i].gid;
		sh->groups = cases[i].groups;
		sh->want = cases[i].want;
		c = spawn(grp_client, sh);
		st = reap(c, 30 * SEC);
		CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "case %u (gid %d, in group %d, want %d): client status %#x", i, cases[i].gid,
		      cases[i].groups, cases[i].want, st);
	}
	ret = 0;
out:
	if (daemon > 0) {
		atomic_store(&sh->stop, 1);
		if (!reap_ok(daemon, "daemon", 10 * SEC))
			ret = -1;
	}
	return ret;
}

/* ---- a daemon gone, or stopped ------------------------------------------ */

struct idle_daemon {
	char name[80];
	_Atomic int up;
	bool fork_child;        /* fork() a child that keeps the descriptors */
	_Atomic int orphan;     /* its pid */
};

static int idle_daemon(void *arg)
{
	struct idle_daemon *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;

	if (ml_daemon_create(&d, sh->name, &o))
		return 1;
	if (sh->fork_child) {
		pid_t child = fork();

		if (child == 0)
			for (;;)
				pause();
		atomic_store(&sh->orphan, (int)child);
	}
	atomic_store(&sh->up, 1);
	for (;;)
		pause();
}

/* Has every thread of `pid` stopped (state T in /proc/PID/task/TID/stat)? */
static bool all_stopped(pid_t pid, int64_t timeout_ns)
{
	char dir[64];

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	for (int64_t end = now_ns() + timeout_ns; now_ns() < end; sleep_ms(1)) {
		DIR *d = opendir(dir);
		struct dirent *e;
		bool all = d != NULL;

		while (d && all && (e = readdir(d))) {
			char path[128], buf[512], *p;
			FILE *f;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%.20s/stat", dir, e->d_name);
			f = fopen(path, "re");
			if (!f)
				continue; /* exited */
			p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
			fclose(f);
			all = p && (p[2] == 'T' || p[2] == 't');
		}
		if (d)
			closedir(d);
		if (all)
			return true;
	}
	return false;
}

/*
 * A client of a daemon killed with SIGKILL gets -ENOENT at once, every
 * time; of one stopped with SIGSTOP, -ETIMEDOUT after the 5 s the client
 * waits for an answer: never a hang. Continued, the daemon lets clients
 * in again. A killed daemon whose fork()ed child keeps its socket: an
 * error within the same 5 s, and -ENOENT once the child is gone.
 */
int t_sock_gone_or_stopped(void)
{
	struct idle_daemon *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	ml_chan *c = NULL;
	pid_t d = 0, orphan = 0;
	int64_t t;
	int ret = -1;

	if (!linux_only())
		return 1;
	chan_name(sh->name, sizeof(sh->name), "stopped");
	d = spawn(idle_daemon, sh);
	CHECK(d > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
	/* Idle, it still answers: its thread does. */
	CHECK_RC(ml_client_connect(&c, sh->name, &o), 0);
	ml_chan_close(c);
	c = NULL;
	kill(d, SIGSTOP);
	/* kill() returns before every thread has stopped: its service thread too. */
	CHECK(all_stopped(d, 10 * SEC), "the daemon did not stop");
	t = now_ns();
	CHECK_RC(ml_client_connect(&c, sh->name, &o), -ETIMEDOUT);
	t = now_ns() - t;
	printf("  # a stopped daemon: -ETIMEDOUT after %.1f s\n", (double)t / SEC);
	CHECK(t >= 4 * SEC && t < 60 * SEC, "timed out after %lld ms", (long long)(t / MS));
	kill(d, SIGCONT);
	CHECK_RC(connect_retry(&c, sh->name, 10 * SEC, -EPIPE), 0);
	ml_chan_close(c);
	c = NULL;
	kill(d, SIGKILL);
	CHECK(reap(d, 5 * SEC) != -1, "reap");
	d = 0;
	t = now_ns();
	CHECK_RC(ml_client_connect(&c, sh->name, &o), -ENOENT);
	CHECK(now_ns() - t < 5 * SEC, "-ENOENT took %lld ms", (long long)((now_ns() - t) / MS));
	CHECK(!socket_exists(sh->name), "the killed daemon's socket is still bound");
	/* Ten times more: each at once. */
	for (int i = 0; i < 10; i++) {
		t = now_ns();
		CHECK_RC(ml_client_connect(&c, sh->name, &o), -ENOENT);
		CHECK(now_ns() - t < 5 * SEC, "-ENOENT took %lld ms",
		      (long long)((now_ns() - t) / MS));
	}

	/*
	 * A daemon killed while a fork()ed child of it (no exec) lives on:
	 * the child keeps the socket, which nobody serves. A client still
	 * gets an error in bounded time (the reply's 5 s), never a hang.
	 */
	memset(sh, 0, sizeof(*sh));
	chan_name(sh->name, sizeof(sh->name), "orphan");
	sh->fork_child = true;
	d = spawn(idle_daemon, sh);
	CHECK(d > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
	orphan = (pid_t)atomic_load(&sh->orphan);
	CHECK(orphan > 0, "no child");
	kill(d, SIGKILL);
	CHECK(reap(d, 5 * SEC) != -1, "reap");
	d = 0;
	{
		int err;

		t = now_ns();
		err = ml_client_connect(&c, sh->name, &o);
		t = now_ns() - t;
		if (!err) {
			ml_chan_close(c);
			c = NULL;
		}
		printf("  # a killed daemon's fork()ed child holds its socket: connect %s after "
		       "%.1f s\n", err ? ml_strerror(err) : "ok", (double)t / SEC);
		CHECK(err < 0 && t < 15 * SEC, "connect = %d (%s) after %lld ms", err,
		      ml_strerror(err), (long long)(t / MS));
	}
	/* The child gone, so is the socket. */
	kill(orphan, SIGKILL);
	for (int64_t end = now_ns() + 10 * SEC; socket_exists(sh->name) && now_ns() < end;)
		sleep_ms(5);
	orphan = 0;
	CHECK(!socket_exists(sh->name), "the orphan's socket is still bound");
	CHECK_RC(ml_client_connect(&c, sh->name, &o), -ENOENT);
	ret = 0;
out:
	ml_chan_close(c);
	if (orphan > 0)
		kill(orphan, SIGKILL);
	if (d > 0) {
		kill(d, SIGCONT);
		kill(d, SIGKILL);
		reap(d, 5 * SEC);
	}
	return ret;
}

/* ---- SIGKILL in every order ------------------------------------------- */

struct kill_order {
	char name[80];
	_Atomic int up, connected;
};

static int ko_daemon(void *arg)
{
	struct kill_order *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;

	if (ml_daemon_create(&d, sh->name, &o))
		return 1;
	atomic_store(&sh->up, 1);
	serve_echo(d, NULL, 120 * SEC);
	return 0;
}

static int ko_client(void *arg)
{
	struct kill_order *sh = arg;
	ml_chan *c;

	if (connect_retry(&c, sh->name, 10 * SEC, -ENOENT) ||
	    roundtrip(c, ML_PRIO_HIGH, "k", 1, 10 * SEC))
		return 1;
	atomic_fetch_add(&sh->connected, 1);
	while (ml_chan_wait(c, -1) != -EPIPE)
		;
	for (;;)
		pause();
}

/* Anything of the channel's name in /dev/shm (the former linux design's)? */
static bool in_dev_shm(const char *name)
{
	char path[160];

	snprintf(path, sizeof(path), "/dev/shm/memlink.%s", name);
	return access(path, F_OK) == 0;
}

/* Top-level entries of the places a channel could leave files in. */
#define SNAP_MAX 4096
static char snap_before[SNAP_MAX][200], snap_after[SNAP_MAX][200];

static int snapshot(char (*v)[200])
{
	const char *dirs[] = { "/tmp", "/var/tmp", "/run", "/run/user/0", "/dev/shm",
			       getenv("XDG_RUNTIME_DIR"), NULL };
	int n = 0;

	for (int i = 0; dirs[i]; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		if (!d)
			continue;
		while ((e = readdir(d)) && n < SNAP_MAX)
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				snprintf(v[n++], sizeof(v[0]), "%s/%.150s", dirs[i], e->d_name);
		closedir(d);
	}
	return n;
}

/*
 * A new entry that may be this run's channels': one naming this run, or
 * memlink but not another run's test channels (memlink.mlt-PID-,
 * memlink.flt-PID- of another PID: suites running beside this one).
 */
static bool ours(const char *path)
{
	char mine[32];
	const char *m;

	snprintf(mine, sizeof(mine), "mlt-%d-", (int)runner_pid);
	if (strstr(path, mine))
		return true;
	if (!(m = strstr(path, "memlink")))
		return false;
	return strncmp(m, "memlink.mlt-", 12) && strncmp(m, "memlink.flt-", 12);
}

/*
 * A daemon and two clients, real processes, killed with SIGKILL in each
 * of the six orders: afterwards nothing of the channel is left, neither
 * its socket nor anything in /dev/shm, and no file of it in /tmp, /run,
 * /dev/shm (...) with no gc step; the name is free.
 */
int t_sock_kill_orders(void)
{
	static const char *const orders[] = { "dab", "dba", "adb", "bda", "abd", "bad" };
	struct kill_order *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	int ret = -1, nb, na, added = 0;
	pid_t p[3] = { 0, 0, 0 };
	ml_chan *d = NULL;

	if (!linux_only())
		return 1;
	nb = snapshot(snap_before);
	for (unsigned t = 0; t < sizeof(orders) / sizeof(orders[0]); t++) {
		memset(sh, 0, sizeof(*sh));
		chan_name(sh->name, sizeof(sh->name), "korder");
		p[0] = spawn(ko_daemon, sh);
		CHECK(p[0] > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
		p[1] = spawn(ko_client, sh);
		p[2] = spawn(ko_client, sh);
		CHECK(wait_flag(&sh->connected, 2, 10 * SEC), "clients not connected");
		CHECK(socket_exists(sh->name), "no socket while the daemon runs");
		for (const char *w = orders[t]; *w; w++) {
			int i = *w == 'd' ? 0 : *w == 'a' ? 1 : 2;

			kill(p[i], SIGKILL);
			CHECK(reap(p[i], 5 * SEC) != -1, "reap");
			p[i] = 0;
		}
		CHECK(!socket_exists(sh->name), "order %s: the socket is left", orders[t]);
		CHECK(!in_dev_shm(sh->name), "order %s: /dev/shm/memlink.%s is left", orders[t],
		      sh->name);
		/* The name is free: a new daemon takes it at once. */
		CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
		ml_chan_close(d);
		d = NULL;
	}
	na = snapshot(snap_after);
	for (int i = 0; i < na; i++) {
		bool old = false;

		for (int j = 0; j < nb && !old; j++)
			old = !strcmp(snap_after[i], snap_before[j]);
		if (old)
			continue;
		if (ours(snap_after[i])) {
			printf("  # left behind: %s\n", snap_after[i]);
			added++;
		} else {
			printf("  # new meanwhile, not of this run: %s\n", snap_after[i]);
		}
	}
	CHECK(!added, "%d new files of the channels after the kills", added);
	ret = 0;
out:
	ml_chan_close(d);
	for (int i = 0; i < 3; i++)
		if (p[i] > 0) {
			kill(p[i], SIGKILL);
			reap(p[i], 5 * SEC);
		}
	return ret;
}

/* ---- ml_chan_fd ---------------------------------------------------------- */

struct fd_shared {
	char name[80];
	_Atomic int go;
};

static int fd_client(void *arg)
{
	struct fd_shared *sh = arg;
	ml_chan *c;

	struct ml_chan_opts o = opts_default();

	if (ml_client_connect(&c, sh->name, &o))
		return 1;
	atomic_store(&sh->go, 1);
	for (;;)
		pause();
}

/*
 * Both sides' descriptors: readable after the peer's send and not after a
 * receive that found nothing; a daemon's when a client comes and when one
 * dies; a client's, for good, when its daemon dies.
 */
int t_sock_fd_readiness(void)
{
	struct fd_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	struct ml_chan_stats st = { .size = sizeof(st) };
	ml_chan *d = NULL, *c = NULL;
	int dfd, cfd, ret = -1;
	char b[16];
	unsigned who;
	pid_t k = 0;

	if (!linux_only())
		return 1;
	chan_name(sh->name, sizeof(sh->name), "fd");
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	dfd = ml_chan_fd(d);
	CHECK(dfd >= 0, "daemon fd: %d", dfd);
	CHECK_RC(ml_client_connect(&c, sh->name, &o), 0);
	cfd = ml_chan_fd(c);
	CHECK(cfd >= 0, "client fd: %d", cfd);
	/* The connect rang: read it away. */
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), -EAGAIN);
	CHECK(!fd_ready(dfd, 0), "daemon readable with nothing to read");
	CHECK(!fd_ready(cfd, 0), "client readable with nothing to read");
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "ping", 4), 0);
	CHECK(fd_ready(dfd, 5000), "daemon not readable after a send");
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), 4);
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), -EAGAIN);
	CHECK(!fd_ready(dfd, 0), "daemon still readable after the recv that found nothing");
	CHECK_RC(ml_chan_reply(d, who, ML_PRIO_HIGH, "pong", 4), 0);
	CHECK(fd_ready(cfd, 5000), "client not readable after a reply");
	CHECK_RC(ml_chan_recv(c, NULL, NULL, b, sizeof(b)), 4);
	CHECK_RC(ml_chan_recv(c, NULL, NULL, b, sizeof(b)), -EAGAIN);
	CHECK(!fd_ready(cfd, 0), "client still readable after the recv that found nothing");
	/* A client comes (another process), then dies. */
	k = spawn(fd_client, sh);
	CHECK(k > 0 && wait_flag(&sh->go, 1, 10 * SEC), "second client");
	CHECK(fd_ready(dfd, 5000), "daemon not readable when a client came");
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), -EAGAIN);
	kill(k, SIGKILL);
	CHECK(reap(k, 5 * SEC) != -1, "reap");
	k = 0;
	CHECK(fd_ready(dfd, 5000), "daemon not readable when a client died");
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), -EAGAIN);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.clients_died == 1, "clients_died %llu", (unsigned long long)st.clients_died);
	/* The daemon goes: the client's descriptor turns readable and stays so. */
	ml_chan_close(d);
	d = NULL;
	CHECK(fd_ready(cfd, 5000), "client not readable after its daemon closed");
	CHECK_RC(ml_chan_recv(c, NULL, NULL, b, sizeof(b)), -EPIPE);
	CHECK(fd_ready(cfd, 0), "client not readable after -EPIPE");
	ret = 0;
out:
	if (k > 0) {
		kill(k, SIGKILL);
		reap(k, 5 * SEC);
	}
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/* ---- daemons of another uid ---------------------------------------------- */

#define UID_D 1001 /* the daemon's user */
#define UID_O 1002 /* another user */

struct uid_shared {
	char name[80];
	uint32_t mode;
	_Atomic int up, stop;
	/* the client's case */
	uint32_t uid, flags, daemon_uid;
	int want;
	bool hold, inspect; /* stay connected until release; inspect instead */
	_Atomic int held, release;
};

static int become(uid_t uid, gid_t gid)
{
	return setgroups(0, NULL) || setgid(gid) || setuid(uid) ? -errno : 0;
}

static int uid_daemon(void *arg)
{
	struct uid_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;

	o.mode = sh->mode;
	if (become(UID_D, UID_D) || ml_daemon_create(&d, sh->name, &o))
		return 10;
	atomic_store(&sh->up, 1);
	serve_echo(d, &sh->stop, 120 * SEC);
	ml_chan_close(d);
	return 0;
}

/* Exit 0 when the connect (or inspect) gave sh->want; the reason is in R. */
static int uid_client(void *arg)
{
	struct uid_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	struct ml_chan_status st = { .size = sizeof(st) };
	ml_chan *c = NULL;
	int before, after, err, ret = 1;

	if (sh->uid && become(sh->uid, sh->uid)) {
		failf("cannot become uid %u: %s", sh->uid, strerror(errno));
		return 10;
	}
	o.flags = sh->flags;
	o.daemon_uid = sh->daemon_uid;
	before = count_fds();
	err = sh->inspect ? ml_chan_inspect(sh->name, 0, &st) : ml_client_connect(&c, sh->name, &o);
	CHECK(err == sh->want, "uid %u (flags %#x, daemon_uid %u) %s: %d (%s), want %d (%s)",
	      sh->uid, sh->flags, sh->daemon_uid, sh->inspect ? "inspecting" : "connecting", err,
	      ml_strerror(err), sh->want, ml_strerror(sh->want));
	if (err || sh->inspect) {
		after = count_fds();
		CHECK(after == before, "uid %u refused: %d descriptors after, %d before", sh->uid,
		      after, before);
	} else {
		CHECK_RC(roundtrip(c, ML_PRIO_HIGH, "other uid", 9, 10 * SEC), 0);
		if (sh->hold) {
			atomic_store(&sh->held, 1);
			CHECK(wait_flag(&sh->release, 1, 60 * SEC), "never released");
		}
	}
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

/* One client process of uid `uid` (0: root) with these options: false on failure. */
static bool uid_case(struct uid_shared *sh, uint32_t uid, uint32_t flags, uint32_t duid, int want)
{
	pid_t pid;

	sh->uid = uid;
	sh->flags = flags;
	sh->daemon_uid = duid;
	sh->want = want;
	sh->hold = sh->inspect = false;
	pid = spawn(uid_client, sh);
	return pid > 0 && reap_ok(pid, "client", 30 * SEC);
}

static void uid_daemon_stop(struct uid_shared *sh, pid_t *daemon)
{
	if (*daemon <= 0)
		return;
	atomic_store(&sh->stop, 1);
	reap_ok(*daemon, "daemon", 10 * SEC);
	*daemon = 0;
}

/*
 * A daemon running as UID_D (not root). 0600: another user is refused
 * (-EACCES), the same user in another process and root are let in; a
 * client that asks for its own uid (root, by default) or names another
 * refuses this daemon with -EPERM, and one naming UID_D takes it.
 * ml_chan_inspect shows the uids and pids the kernel gave, and refuses a
 * user the mode does not admit. 0666: anyone is let in, and the owner is
 * the client's to check. Refusals leave the client no descriptor.
 */
int t_sock_uid_daemon(void)
{
	struct uid_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_status *st = calloc(1, sizeof(*st));
	pid_t daemon = 0, holder = 0;
	int ret = -1, slot = -1;

	if (!linux_only()) {
		free(st);
		return 1;
	}
	if (geteuid() != 0) {
		free(st);
		skipf("needs root to switch users");
		return 1;
	}
	CHECK(st, "calloc");
	chan_name(sh->name, sizeof(sh->name), "uid600");
	sh->mode = 0600;
	daemon = spawn(uid_daemon, sh);
	CHECK(daemon > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
	CHECK(uid_case(sh, UID_O, ML_CHAN_DAEMON_UID, UID_D, -EACCES), "another user at 0600");
	CHECK(uid_case(sh, UID_O, 0, 0, -EACCES), "another user at 0600, default");
	CHECK(uid_case(sh, UID_D, 0, 0, 0), "the daemon's user, by default");
	CHECK(uid_case(sh, 0, 0, 0, -EPERM), "root, by default (its own uid)");
	CHECK(uid_case(sh, 0, ML_CHAN_DAEMON_UID, UID_D, 0), "root naming the daemon's uid");
	CHECK(uid_case(sh, 0, ML_CHAN_DAEMON_UID, UID_O, -EPERM), "root naming another uid");
	CHECK(uid_case(sh, 0, ML_CHAN_ANY_DAEMON, 0, 0), "root taking any daemon");
	/* Who is who, as the kernel said: a client of UID_D connected meanwhile. */
	sh->uid = UID_D;
	sh->flags = 0;
	sh->daemon_uid = 0;
	sh->want = 0;
	sh->hold = true;
	sh->inspect = false;
	atomic_store(&sh->held, 0);
	atomic_store(&sh->release, 0);
	holder = spawn(uid_client, sh);
	CHECK(holder > 0 && wait_flag(&sh->held, 1, 10 * SEC), "holder not connected");
	st->size = sizeof(*st);
	CHECK_RC(ml_chan_inspect(sh->name, 0, st), 0);
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		if (st->client[i].state == 2)
			slot = slot < 0 ? (int)i : 99;
	CHECK(slot >= 0 && slot < (int)ML_CHAN_MAX_CLIENTS, "connected slots: %d", slot);
	CHECK(st->daemon_uid == UID_D && st->daemon_kpid == (uint32_t)daemon,
	      "daemon uid %u pid %u, want %u %d", st->daemon_uid, st->daemon_kpid, UID_D,
	      (int)daemon);
	CHECK(st->client_uid[slot] == UID_D && st->client_kpid[slot] == (uint32_t)holder,
	      "client uid %u pid %u, want %u %d", st->client_uid[slot], st->client_kpid[slot],
	      UID_D, (int)holder);
	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
		CHECK(i == (unsigned)slot ||
		      (st->client_uid[i] == ML_CHAN_NOBODY && st->client_kpid[i] == ML_CHAN_NOBODY),
		      "free slot %u: uid %u pid %u", i, st->client_uid[i], st->client_kpid[i]);
	atomic_store(&sh->release, 1);
	CHECK(reap_ok(holder, "holder", 10 * SEC), "holder");
	holder = 0;
	/* An onlooker the mode does not admit learns nothing. */
	sh->uid = UID_O;
	sh->want = -EACCES;
	sh->hold = false;
	sh->inspect = true;
	holder = spawn(uid_client, sh);
	CHECK(holder > 0 && reap_ok(holder, "onlooker", 30 * SEC), "onlooker of another uid");
	holder = 0;
	uid_daemon_stop(sh, &daemon);

	chan_name(sh->name, sizeof(sh->name), "uid666");
	sh->mode = 0666;
	atomic_store(&sh->up, 0);
	atomic_store(&sh->stop, 0);
	daemon = spawn(uid_daemon, sh);
	CHECK(daemon > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
	CHECK(uid_case(sh, UID_O, 0, 0, -EPERM), "another user by default at 0666");
	CHECK(uid_case(sh, UID_O, ML_CHAN_DAEMON_UID, UID_D, 0), "another user naming the daemon");
	CHECK(uid_case(sh, UID_O, ML_CHAN_DAEMON_UID, 0, -EPERM), "another user requiring root");
	CHECK(uid_case(sh, UID_O, ML_CHAN_ANY_DAEMON, 0, 0), "another user taking any daemon");
	ret = 0;
out:
	free(st);
	atomic_store(&sh->release, 1);
	if (holder > 0)
		reap(holder, 10 * SEC);
	if (daemon > 0) {
		atomic_store(&sh->stop, 1);
		if (reap(daemon, 10 * SEC) == -1)
			ret = -1;
	}
	return ret;
}

/* ---- a flood of connections from a user the mode refuses ----------------- */

struct flood {
	char name[80];
	_Atomic int up, stop, flooding;
	_Atomic long made;
};

static int flood_daemon(void *arg)
{
	struct flood *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;

	o.mode = 0600;
	o.max_clients = 2;
	if (ml_daemon_create(&d, sh->name, &o))
		return 10;
	atomic_store(&sh->up, 1);
	serve_echo(d, &sh->stop, 120 * SEC);
	ml_chan_close(d);
	return 0;
}

/* uid 65534: connects as fast as it can, holding the last 200 open. */
static int flooder(void *arg)
{
	struct flood *sh = arg;
	struct sockaddr_un a;
	socklen_t len = sock_addr(&a, sh->name);
	int ring[200];
	unsigned k = 0;

	for (unsigned i = 0; i < 200; i++)
		ring[i] = -1;
	if (become(65534, 65534))
		return 10;
	while (!atomic_load(&sh->stop)) {
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (s < 0) {
			sleep_us(100);
			continue;
		}
		if (connect(s, (struct sockaddr *)&a, len)) {
			close(s);
			continue;
		}
		if (ring[k % 200] >= 0)
			close(ring[k % 200]);
		ring[k++ % 200] = s;
		atomic_fetch_add(&sh->made, 1);
		if (k == 1000)
			atomic_store(&sh->flooding, 1);
	}
	return 0;
}

/*
 * A user the channel's mode (0600) refuses opens connections as fast as
 * it can and never speaks: it may not keep the daemon's own user out.
 * Each of 20 connects of an admitted client (one attempt each) gets in
 * and makes a round trip.
 */
int t_sock_connect_flood(void)
{
	struct flood *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	pid_t daemon = 0, fl = 0;
	int ret = -1, ok = 0, first_err = 0;
	int64_t t = 0;

	if (!linux_only())
		return 1;
	if (geteuid() != 0) {
		skipf("needs root to switch users");
		return 1;
	}
	chan_name(sh->name, sizeof(sh->name), "flood");
	daemon = spawn(flood_daemon, sh);
	CHECK(daemon > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
	fl = spawn(flooder, sh);
	CHECK(fl > 0 && wait_flag(&sh->flooding, 1, 20 * SEC), "the flood did not start");
	for (int i = 0; i < 20; i++) {
		ml_chan *c = NULL;
		int64_t t0 = now_ns();
		int err = ml_client_connect(&c, sh->name, &o);

		if (now_ns() - t0 > t)
			t = now_ns() - t0;
		if (!err)
			err = roundtrip(c, ML_PRIO_HIGH, "flood", 5, 10 * SEC);
		ml_chan_close(c);
		if (!err)
			ok++;
		else if (!first_err)
			first_err = err;
	}
	atomic_store(&sh->stop, 1);
	CHECK(reap_ok(fl, "flooder", 10 * SEC), "flooder");
	fl = 0;
	printf("  # under a flood (%ld connections of a refused user): %d of 20 connects got "
	       "in, the slowest in %.1f ms\n",
	       atomic_load(&sh->made), ok, (double)t / 1e6);
	CHECK(ok == 20, "%d of 20 connects failed, the first with %d (%s)", 20 - ok, first_err,
	      ml_strerror(first_err));
	ret = 0;
out:
	atomic_store(&sh->stop, 1);
	if (fl > 0) {
		kill(fl, SIGKILL);
		reap(fl, 5 * SEC);
	}
	if (daemon > 0 && !reap_ok(daemon, "daemon", 10 * SEC))
		ret = -1;
	return ret;
}

/* ---- sleepers see a peer die -------------------------------------------- */

struct sleeper {
	char name[80];
	int mode;
	_Atomic int ready, err;
	_Atomic long long woke_at, kill_at, joined_at;
	pid_t victim;
};

/* A client asleep in ml_chan_wait(-1): what it returned, and when. */
static int sleeper_client(void *arg)
{
	struct sleeper *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *c = NULL;
	int err;

	o.wait_mode = (uint32_t)sh->mode;
	for (int64_t end = now_ns() + 10 * SEC;; sleep_ms(2)) {
		err = ml_client_connect(&c, sh->name, &o);
		if (err != -ENOENT || now_ns() > end)
			break;
	}
	if (err || roundtrip(c, ML_PRIO_HIGH, "sleep", 5, 10 * SEC))
		return 10;
	atomic_store(&sh->ready, 1);
	err = ml_chan_wait(c, -1);
	atomic_store(&sh->woke_at, now_ns());
	atomic_store(&sh->err, err);
	ml_chan_close(c);
	return 0;
}

/* A client that sends one message and waits to be killed. */
static int doomed_client(void *arg)
{
	struct sleeper *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *c;

	if (ml_client_connect(&c, sh->name, &o) || ml_chan_send(c, ML_PRIO_HIGH, "a", 1))
		return 10;
	atomic_store(&sh->ready, 1);
	for (;;)
		pause();
}

/* Kill sh->victim in 300 ms, then take its slot as soon as it is free. */
static int successor(void *arg)
{
	struct sleeper *sh = arg;
	ml_chan *c = NULL;

	sleep_ms(300);
	atomic_store(&sh->kill_at, now_ns());
	kill(sh->victim, SIGKILL);
	if (connect_retry(&c, sh->name, 5 * SEC, -ECONNREFUSED))
		return 10;
	atomic_store(&sh->joined_at, now_ns());
	if (ml_chan_send(c, ML_PRIO_HIGH, "b", 1))
		return 11;
	ml_chan_close(c);
	return 0;
}

/*
 * SIGKILL seen by a peer that sleeps, in every wait mode: a client in
 * ml_chan_wait(-1) returns -EPIPE when its daemon is killed, and its
 * ml_chan_fd() turns readable; a daemon asleep in ml_chan_wait() frees
 * a killed client's slot at once (its only slot: a successor gets in and
 * is heard while the daemon still waits), counting it in clients_died.
 * The delays are printed, the bound (2 s) only catches a peer that never
 * noticed.
 */
int t_sock_death_sleepers(void)
{
	static const int modes[] = { ML_WAIT_BLOCKING, ML_WAIT_ADAPTIVE, ML_WAIT_BUSY };
	static const char *const mode_name[] = { "adaptive", "busy", "blocking" };
	struct sleeper *sh = shared_map(sizeof(*sh));
	char name[80];
	const char *args[] = { "--role", "serve", name, NULL };
	pid_t daemon = 0, client = 0, succ = 0;
	ml_chan *c = NULL, *d = NULL;
	int ret = -1, st;
	int64_t delay, t;

	if (!linux_only())
		return 1;
	for (unsigned m = 0; m < 3; m++) {
		memset(sh, 0, sizeof(*sh));
		chan_name(name, sizeof(name), "sleepk");
		snprintf(sh->name, sizeof(sh->name), "%s", name);
		sh->mode = modes[m];
		daemon = spawn_exec(args);
		CHECK(daemon > 0, "spawn");
		client = spawn(sleeper_client, sh);
		CHECK(client > 0 && wait_flag(&sh->ready, 1, 10 * SEC), "client not up");
		sleep_ms(200);
		atomic_store(&sh->kill_at, now_ns());
		kill(daemon, SIGKILL);
		CHECK(reap(daemon, 5 * SEC) != -1, "reap daemon");
		daemon = 0;
		st = reap(client, 10 * SEC);
		client = 0;
		CHECK(st != -1, "%s client: ml_chan_wait(-1) still asleep 10 s after its daemon's "
		      "SIGKILL", mode_name[modes[m]]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s client: status %#x",
		      mode_name[modes[m]], st);
		CHECK(atomic_load(&sh->err) == -EPIPE, "%s client: ml_chan_wait(-1) = %d (%s)",
		      mode_name[modes[m]], atomic_load(&sh->err), ml_strerror(atomic_load(&sh->err)));
		delay = atomic_load(&sh->woke_at) - atomic_load(&sh->kill_at);
		printf("  # %s client in ml_chan_wait(-1): -EPIPE %.2f ms after its daemon's "
		       "SIGKILL\n", mode_name[modes[m]], (double)delay / 1e6);
		CHECK(delay < 2 * SEC, "%s client noticed after %lld ms", mode_name[modes[m]],
		      (long long)(delay / MS));
	}

	/* The client's descriptor, when its daemon is killed. */
	{
		char b[8];
		int cfd;

		chan_name(name, sizeof(name), "sleepfd");
		daemon = spawn_exec(args);
		CHECK(daemon > 0, "spawn");
		CHECK_RC(connect_retry(&c, name, 10 * SEC, -ENOENT), 0);
		cfd = ml_chan_fd(c);
		CHECK(cfd >= 0, "client fd: %d", cfd);
		CHECK_RC(roundtrip(c, ML_PRIO_HIGH, "fd", 2, 10 * SEC), 0);
		CHECK_RC(ml_chan_recv(c, NULL, NULL, b, sizeof(b)), -EAGAIN);
		CHECK(!fd_ready(cfd, 0), "client readable with nothing to read");
		delay = now_ns();
		kill(daemon, SIGKILL);
		CHECK(fd_ready(cfd, 5000), "client not readable 5 s after its daemon's SIGKILL");
		delay = now_ns() - delay;
		printf("  # a client's ml_chan_fd() readable %.2f ms after its daemon's SIGKILL\n",
		       (double)delay / 1e6);
		/*
		 * An event loop that receives until -EAGAIN whenever the
		 * descriptor is ready (memlink.h) learns of the death from a
		 * recv: not necessarily the first (a client asks the backend at
		 * most once a liveness slice), but soon, the descriptor staying
		 * ready meanwhile.
		 */
		{
			int64_t end = now_ns() + 2 * SEC;
			long calls = 0;
			int n;

			t = now_ns();
			do {
				CHECK(fd_ready(cfd, 0), "client not readable before -EPIPE");
				n = ml_chan_recv(c, NULL, NULL, b, sizeof(b));
				calls++;
			} while (n == -EAGAIN && now_ns() < end);
			t = now_ns() - t;
			CHECK(n == -EPIPE, "recv after its daemon's SIGKILL: %d (%s) for %lld ms", n,
			      ml_strerror(n), (long long)(t / MS));
			printf("  # then the loop's recv said -EPIPE on call %ld, %.2f ms later\n",
			       calls, (double)t / 1e6);
		}
		CHECK_RC(ml_chan_connected(c), 0);
		CHECK_RC(ml_chan_recv(c, NULL, NULL, b, sizeof(b)), -EPIPE);
		CHECK(fd_ready(cfd, 0), "client not readable after -EPIPE");
		ml_chan_close(c);
		c = NULL;
		CHECK(reap(daemon, 5 * SEC) != -1, "reap daemon");
		daemon = 0;
	}

	/* A daemon asleep (blocking, busy) when its only client is killed. */
	for (unsigned m = 0; m < 2; m++) {
		int mode = m ? ML_WAIT_BUSY : ML_WAIT_BLOCKING;
		struct ml_chan_opts o = opts_default();
		struct ml_chan_stats stats = { .size = sizeof(stats) };
		char b[8];
		unsigned who = 99, doomed;
		int n, err;

		memset(sh, 0, sizeof(*sh));
		chan_name(sh->name, sizeof(sh->name), "sleepd");
		o.max_clients = 1;
		o.wait_mode = (uint32_t)mode;
		CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
		client = spawn(doomed_client, sh);
		CHECK(client > 0 && wait_flag(&sh->ready, 1, 10 * SEC), "client not up");
		CHECK_RC(ml_chan_wait(d, 5 * SEC), 0);
		CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), 1);
		CHECK(b[0] == 'a' && ML_CHAN_SLOT(who) == 0, "first message %c from %u", b[0], who);
		doomed = who;
		CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), -EAGAIN);
		sh->victim = client;
		succ = spawn(successor, sh);
		CHECK(succ > 0, "spawn");
		/* Asleep from here on until the successor's message. */
		t = now_ns();
		err = ml_chan_wait(d, 10 * SEC);
		t = now_ns() - t;
		CHECK(err == 0, "%s daemon: wait = %d (%s) after %lld ms", mode_name[mode], err,
		      ml_strerror(err), (long long)(t / MS));
		n = ml_chan_recv(d, NULL, &who, b, sizeof(b));
		/* The killed client's slot, under an id of its own. */
		CHECK(n == 1 && b[0] == 'b' && ML_CHAN_SLOT(who) == 0 && who != doomed,
		      "%s daemon: recv %d (%c from %u), want b from slot 0, not id %u",
		      mode_name[mode], n, n > 0 ? b[0] : '-', who, doomed);
		CHECK(reap_ok(succ, "successor", 10 * SEC), "successor");
		succ = 0;
		CHECK(reap(client, 5 * SEC) != -1, "reap client");
		client = 0;
		CHECK_RC(ml_chan_stats(d, &stats), 0);
		CHECK(stats.clients_died == 1, "%s daemon: clients_died %llu", mode_name[mode],
		      (unsigned long long)stats.clients_died);
		delay = atomic_load(&sh->joined_at) - atomic_load(&sh->kill_at);
		printf("  # %s daemon asleep: the killed client's slot taken again %.2f ms after "
		       "the SIGKILL\n", mode_name[mode], (double)delay / 1e6);
		CHECK(delay < 2 * SEC, "%s daemon freed the slot after %lld ms", mode_name[mode],
		      (long long)(delay / MS));
		ml_chan_close(d);
		d = NULL;
	}
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	if (succ > 0) {
		kill(succ, SIGKILL);
		reap(succ, 5 * SEC);
	}
	if (client > 0) {
		kill(client, SIGKILL);
		reap(client, 5 * SEC);
	}
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		reap(daemon, 5 * SEC);
	}
	return ret;
}

/* ---- descriptors --------------------------------------------------------- */

/* Mark this process's open descriptors (below 1024) in `set`. */
static void fd_set_of(bool set[1024])
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;

	memset(set, 0, 1024);
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd >= 0 && fd < 1024 && fd != dirfd(dir))
			set[fd] = true;
	}
	closedir(dir);
}

/*
 * Every descriptor the library opens for a daemon, a client, ml_chan_fd()
 * and an onlooker is close-on-exec (a daemon's exec()ed child must not
 * keep its socket, or its channel would outlive it), and all of them go
 * with ml_chan_close().
 */
int t_sock_fds_cloexec(void)
{
	static bool before[1024], during[1024], after[1024];
	struct ml_chan_opts o = opts_default();
	struct ml_chan_status *st = calloc(1, sizeof(*st));
	ml_chan *d = NULL, *c = NULL;
	char name[80];
	int ret = -1, n = 0;

	if (!linux_only()) {
		free(st);
		return 1;
	}
	CHECK(st, "calloc");
	chan_name(name, sizeof(name), "cloexec");
	fd_set_of(before);
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&c, name, &o), 0);
	CHECK(ml_chan_fd(d) >= 0 && ml_chan_fd(c) >= 0, "ml_chan_fd");
	st->size = sizeof(*st);
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	fd_set_of(during);
	for (int fd = 0; fd < 1024; fd++) {
		char self[64], link[128] = "?";
		int fl;

		if (!during[fd] || before[fd])
			continue;
		n++;
		fl = fcntl(fd, F_GETFD);
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		if (readlink(self, link, sizeof(link) - 1) < 0)
			snprintf(link, sizeof(link), "?");
		CHECK(fl >= 0 && (fl & FD_CLOEXEC), "descriptor %d (%s) is not close-on-exec", fd,
		      link);
	}
	CHECK(n >= 4, "only %d new descriptors for a daemon and a client", n);
	ml_chan_close(c);
	c = NULL;
	ml_chan_close(d);
	d = NULL;
	fd_set_of(after);
	for (int fd = 0; fd < 1024; fd++)
		CHECK(after[fd] == before[fd], "descriptor %d %s after both closed", fd,
		      after[fd] ? "left open" : "closed (not ours)");
	printf("  # a daemon and its client in one process: %d descriptors, all close-on-exec\n",
	       n);
	ret = 0;
out:
	free(st);
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}
#endif

// SPDX-License-Identifier: MIT
/*
 * Channel tests of the linux backend's socket (lib/linux/wire.h): hostile
 * peers on the daemon's socket, an impostor daemon answering a client,
 * the mode's group bits against real groups, a daemon that is gone or
 * stopped, nothing left after SIGKILLs in every order, and ml_chan_fd()'s
 * readiness on both sides. Each skips on other backends.
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

static socklen_t addr_of(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "memlink.%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1));
}

/* A raw connection to the channel's socket; -1 on failure. */
static int dial(const char *name)
{
	struct sockaddr_un a;
	socklen_t len = addr_of(&a, name);
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

/* ---- hostile peers on the daemon's socket ---------------------------- */

struct hostile {
	char name[80];
	_Atomic int up, stop, measure;
	_Atomic int fds_before, fds_after;
	_Atomic long served;
};

/* The daemon: serves echoes until told, then counts its descriptors again. */
static int hostile_daemon(void *arg)
{
	struct hostile *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;
	int64_t end;
	int n;

	o.max_clients = 2;
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

/*
 * Peers that send garbage, bad hellos, descriptors (many, and of the wrong
 * kinds), that never speak (more of them than may wait), and one that
 * joins and then breaks the protocol. The daemon answers each as the
 * protocol says, keeps serving a well-behaved client throughout (its
 * round trips counted), lets in a new client afterwards, and leaks no
 * descriptor.
 */
int t_sock_hostile_peers(void)
{
	struct hostile *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	int silent[ML__WIRE_PENDING_MAX + 8], fds[200], p[2] = { -1, -1 }, s = -1, ret = -1;
	unsigned trips = 0;
	ml_chan *good = NULL, *late = NULL;
	pid_t daemon = 0;

	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++)
		silent[i] = -1;
	if (!linux_only())
		return 1;
	chan_name(sh->name, sizeof(sh->name), "hostile");
	daemon = spawn(hostile_daemon, sh);
	CHECK(daemon > 0 && wait_flag(&sh->up, 1, 10 * SEC), "daemon not up");
	CHECK_RC(ml_client_connect(&good, sh->name, &o), 0);
	CHECK_RC(ml_client_connect(&late, sh->name, &o), 0);
	ml_chan_close(late);
	late = NULL;
	sleep_ms(200);
	atomic_store(&sh->measure, 1);
	CHECK(wait_flag(&sh->measure, 2, 10 * SEC), "the daemon did not count");
#define TRIP()                                                                          \
	do {                                                                            \
		CHECK_RC(roundtrip(good, ML_PRIO_HIGH, "still here", 10, 10 * SEC), 0); \
		trips++;                                                                \
	} while (0)
	TRIP();
	/* Garbage: closed, no answer. */
	s = dial(sh->name);
	CHECK(s >= 0 && send(s, "\x01\x02garbage that is no hello at all", 34, 0) == 34, "send");
	CHECK_RC(outcome(s, 10000), 0);
	close(s);
	TRIP();
	/* Hellos of our magic but wrong otherwise: refused with EPROTO. */
	for (int k = 0; k < 4; k++) {
		struct ml__wire_hello h = hello(ML__WIRE_JOIN);
		size_t len = sizeof(h);

		if (k == 0)
			h.version = 99;
		else if (k == 1)
			h.kind = 77;
		else if (k == 2)
			h.flags = 1;
		else
			len = 12; /* short */
		s = dial(sh->name);
		CHECK(s >= 0 && send(s, &h, len, 0) == (ssize_t)len, "send");
		CHECK(outcome(s, 10000) == EPROTO, "bad hello %d: not refused with EPROTO", k);
		close(s);
		TRIP();
	}
	/* Descriptors with a hello: 200 of them, of every wrong kind. */
	CHECK(!pipe(p), "pipe");
	for (int i = 0; i < 200; i++) {
		if (i % 4 == 0)
			fds[i] = memfd_create("unsealed", MFD_CLOEXEC);
		else if (i % 4 == 1)
			fds[i] = dup(p[0]);
		else if (i % 4 == 2)
			fds[i] = eventfd(0, EFD_CLOEXEC);
		else
			fds[i] = dup(p[1]);
		CHECK(fds[i] >= 0, "descriptor %d", i);
	}
	for (unsigned i = 0; i < 4; i++) {
		static const int counts[] = { 1, 3, 4, 200 };
		struct ml__wire_hello h = hello(ML__WIRE_JOIN);

		s = dial(sh->name);
		CHECK(s >= 0, "dial");
		CHECK_RC(send_fds(s, &h, sizeof(h), fds, counts[i]), 0);
		CHECK(outcome(s, 10000) == 0, "a hello with %d descriptors was not just closed",
		      counts[i]);
		close(s);
		s = -1;
		TRIP();
	}
	for (int i = 0; i < 200; i++)
		close(fds[i]);
	/* Silent ones, more than may wait: the good client and a new one still get in. */
	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++) {
		silent[i] = dial(sh->name);
		CHECK(silent[i] >= 0, "silent %u", i);
	}
	TRIP();
	CHECK_RC(connect_retry(&late, sh->name, 10 * SEC, -EPIPE), 0);
	CHECK_RC(roundtrip(late, ML_PRIO_LOW, "late", 4, 10 * SEC), 0);
	ml_chan_close(late);
	late = NULL;
	/* Every silent one is let go, by eviction or after ML__WIRE_HELLO_MS. */
	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++) {
		CHECK(outcome(silent[i], 20000) == 0, "silent %u: not closed", i);
		close(silent[i]);
		silent[i] = -1;
	}
	TRIP();
	/* A client that joins, then sends anything: cut off, its slot freed. */
	{
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
		CHECK(!r.err && r.bell >= 1, "join refused: err %d", r.err);
		if (CMSG_FIRSTHDR(&m)) {
			ng = (int)((CMSG_FIRSTHDR(&m)->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int) * (size_t)ng);
		}
		for (int i = 0; i < ng; i++)
			close(got[i]);
		CHECK(ng == 3, "join gave %d descriptors", ng);
		CHECK(send(s, "more", 4, 0) == 4, "send");
		CHECK_RC(outcome(s, 10000), 0);
		close(s);
		s = -1;
	}
	TRIP();
	/* Its slot (the second of two) is free again. */
	CHECK_RC(connect_retry(&late, sh->name, 10 * SEC, -ECONNREFUSED), 0);
	CHECK_RC(roundtrip(late, ML_PRIO_LOW, "late", 4, 10 * SEC), 0);
	ml_chan_close(late);
	late = NULL;
	TRIP();
	atomic_store(&sh->measure, 3);
	CHECK(wait_flag(&sh->measure, 4, 30 * SEC), "the daemon did not count again");
	ml_chan_close(good);
	good = NULL;
	atomic_store(&sh->stop, 1);
	CHECK(reap_ok(daemon, "daemon", 30 * SEC), "daemon");
	daemon = 0;
	printf("  # %u round trips between the attacks; daemon descriptors %d before, %d after\n",
	       trips, atomic_load(&sh->fds_before), atomic_load(&sh->fds_after));
	CHECK(atomic_load(&sh->fds_after) == atomic_load(&sh->fds_before),
	      "the daemon holds %d descriptors, %d before the attacks", atomic_load(&sh->fds_after),
	      atomic_load(&sh->fds_before));
	CHECK(atomic_load(&sh->served) >= (long)trips + 2, "served %ld", atomic_load(&sh->served));
	ret = 0;
out:
	if (s >= 0)
		close(s);
	for (unsigned i = 0; i < sizeof(silent) / sizeof(silent[0]); i++)
		if (silent[i] >= 0)
			close(silent[i]);
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	ml_chan_close(late);
	ml_chan_close(good);
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
	IMP_SILENT,
	IMP_KINDS
};

static const int imp_want[IMP_KINDS] = {
	[IMP_GARBAGE] = -EPROTO,   [IMP_NO_FDS] = -EPROTO,       [IMP_UNSEALED] = -EPROTO,
	[IMP_TOO_SMALL] = -EPROTO, [IMP_TINY_REGION] = -EPROTO,  [IMP_PIPE_BELL] = -EPROTO,
	[IMP_TOO_MANY_FDS] = -EPROTO, [IMP_WRONG_KIND] = -EPROTO, [IMP_BELL_ZERO] = -EPROTO,
	[IMP_BELL_HIGH] = -EPROTO, [IMP_ERR_WITH_FDS] = -EPROTO, [IMP_NOT_CLAIMED] = -ENOENT,
	[IMP_REFUSE] = -EACCES,    [IMP_CLOSE] = -EPIPE,         [IMP_SILENT] = -ETIMEDOUT,
};

struct impostor {
	char name[80];
	_Atomic int up, kind, stop;
};

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

static void impostor_answer(int c, enum impostor_kind k)
{
	struct ml__wire_reply r = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = ML__WIRE_JOIN,
		.bell = 1,
		.region_size = 65536,
	};
	int fds[6], n = 3, p[2];
	size_t len = ML__WIRE_REPLY_SHORT;

	fds[0] = fake_region(65536, k != IMP_UNSEALED);
	fds[1] = eventfd(0, EFD_CLOEXEC);
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
			close(fds[2]);
			fds[2] = p[1];
			fds[5] = p[0];
		}
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
	socklen_t len = addr_of(&a, sh->name);
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
		CHECK(err == imp_want[k], "impostor reply %d: connect = %d (%s), want %d", k, err,
		      ml_strerror(err), imp_want[k]);
		CHECK(after == before, "impostor reply %d: %d descriptors after, %d before", k,
		      after, before);
		CHECK(t < 30 * SEC, "impostor reply %d: connect took %lld ms", k,
		      (long long)(t / MS));
	}
	ret = 0;
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
};

static int idle_daemon(void *arg)
{
	struct idle_daemon *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;

	if (ml_daemon_create(&d, sh->name, &o))
		return 1;
	atomic_store(&sh->up, 1);
	for (;;)
		pause();
}

/*
 * A client of a daemon killed with SIGKILL gets -ENOENT at once; of one
 * stopped with SIGSTOP, -ETIMEDOUT after the 5 s the client waits for an
 * answer: never a hang. Continued, the daemon lets clients in again.
 */
int t_sock_gone_or_stopped(void)
{
	struct idle_daemon *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	ml_chan *c = NULL;
	pid_t d = 0;
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
	ret = 0;
out:
	ml_chan_close(c);
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

/*
 * A daemon and two clients, real processes, killed with SIGKILL in each
 * order: afterwards nothing of the channel is left, neither its socket nor
 * anything in /dev/shm, with no gc step, and the name is free.
 */
int t_sock_kill_orders(void)
{
	static const char *const orders[] = { "dab", "abd", "adb", "bda" };
	struct kill_order *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	int ret = -1;
	pid_t p[3] = { 0, 0, 0 };
	ml_chan *d = NULL;

	if (!linux_only())
		return 1;
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

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

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
	CHECK(!readable(dfd, 0), "daemon readable with nothing to read");
	CHECK(!readable(cfd, 0), "client readable with nothing to read");
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "ping", 4), 0);
	CHECK(readable(dfd, 5000), "daemon not readable after a send");
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), 4);
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), -EAGAIN);
	CHECK(!readable(dfd, 0), "daemon still readable after the recv that found nothing");
	CHECK_RC(ml_chan_reply(d, who, ML_PRIO_HIGH, "pong", 4), 0);
	CHECK(readable(cfd, 5000), "client not readable after a reply");
	CHECK_RC(ml_chan_recv(c, NULL, NULL, b, sizeof(b)), 4);
	CHECK_RC(ml_chan_recv(c, NULL, NULL, b, sizeof(b)), -EAGAIN);
	CHECK(!readable(cfd, 0), "client still readable after the recv that found nothing");
	/* A client comes (another process), then dies. */
	k = spawn(fd_client, sh);
	CHECK(k > 0 && wait_flag(&sh->go, 1, 10 * SEC), "second client");
	CHECK(readable(dfd, 5000), "daemon not readable when a client came");
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), -EAGAIN);
	kill(k, SIGKILL);
	CHECK(reap(k, 5 * SEC) != -1, "reap");
	k = 0;
	CHECK(readable(dfd, 5000), "daemon not readable when a client died");
	CHECK_RC(ml_chan_recv(d, NULL, &who, b, sizeof(b)), -EAGAIN);
	CHECK_RC(ml_chan_stats(d, &st), 0);
	CHECK(st.clients_died == 1, "clients_died %llu", (unsigned long long)st.clients_died);
	/* The daemon goes: the client's descriptor turns readable and stays so. */
	ml_chan_close(d);
	d = NULL;
	CHECK(readable(cfd, 5000), "client not readable after its daemon closed");
	CHECK_RC(ml_chan_recv(c, NULL, NULL, b, sizeof(b)), -EPIPE);
	CHECK(readable(cfd, 0), "client not readable after -EPIPE");
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
#endif

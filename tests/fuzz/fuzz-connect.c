// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as a channel's shared memory, met by a
 * client through the real linux backend.
 *
 * Input: a byte n, n bytes of operations (enum fz_chan_op), then the
 * memory, laid out as one region (chan_layout.h): the control region's
 * 4 KiB, then the client areas at client_stride bytes each, at most 1 MiB
 * in all. The harness plays the daemon: a thread bound to the channel's
 * socket answers hellos as a daemon would. A JOIN gets the first free
 * slot of the control region, claimed, with the control region (a sealed
 * memfd of 4 KiB), that slot's area (the bytes at its place, in a sealed
 * memfd page-rounded, the tail zeroed; a page of zeroes when the place is
 * outside the input) and two eventfds; an INSPECT the control region. It
 * keeps the client's connection, so the library sees a live daemon. If
 * ml_client_connect() accepts, the operations drive the client while the
 * "daemon" keeps writing into both memfds and may die (its end of the
 * connection closes). ml_chan_inspect() (memlink-stat) reads the control
 * region before and after. Nothing may crash, every call must return what
 * the API allows, and no descriptor may be left behind.
 *
 * A control region with a topic's magic (ML__TOPIC_MAGIC) is a topic's:
 * its topic region (extra_size bytes, at most MAX_EXTRA) follows the
 * control region in the region's memfd, the areas after both, and a
 * subscriber (ml_sub_open) meets it instead of a client, reading through
 * the operations' receives, views and waits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chan_layout.h"
#include "fuzz.h"

#define MAX_REGION (1u << 20)
#define MAX_EXTRA (256u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char name[32];

/* The harness's daemon: what the thread answers with, under `lock`. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int g_memfd = -1, g_conn = -1, g_listen = -1;
static uint8_t *g_region;             /* the control region (and a topic's), g_region_len bytes */
static size_t g_region_len;
static const uint8_t *g_input;        /* the memory as input, g_input_len bytes */
static size_t g_input_len;
static int g_areafd = -1;             /* the area given to the client, if any */
static uint8_t *g_area;
static size_t g_area_len;

/* A sealed memfd of len bytes, mapped at *p, holding `n` bytes of src. */
static int sealed(const char *what, size_t len, const uint8_t *src, size_t n, uint8_t **p)
{
	int fd = memfd_create(what, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)len) == 0);
	CHECK(!fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
	*p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(*p != MAP_FAILED);
	memcpy(*p, src, n < len ? n : len);
	return fd;
}

/* Slot i's area, from the input at its place (under `lock`, with no area given yet). */
static void make_area(unsigned i, uint64_t stride)
{
	uint64_t off = g_region_len + (uint64_t)i * stride, n = 0;
	size_t len;

	if (stride && stride <= g_input_len && off < g_input_len)
		n = g_input_len - off < stride ? g_input_len - off : stride;
	len = n ? (size_t)(stride + 4095) / 4096 * 4096 : 4096;
	g_area_len = len;
	g_areafd = sealed("fzc-area", len, n ? g_input + off : g_input, (size_t)n, &g_area);
}

static void drop_area(void)
{
	if (g_areafd < 0)
		return;
	munmap(g_area, g_area_len);
	close(g_areafd);
	g_areafd = -1;
	g_area = NULL;
}

static void answer(int c)
{
	struct ml__wire_hello h;
	struct ml__wire_reply r = { .magic = ML__WIRE_MAGIC, .version = ML__WIRE_VERSION };
	int fds[4] = { -1, -1, -1, -1 }, n = 0;
	size_t len = ML__WIRE_REPLY_SHORT;

	if (recv(c, &h, sizeof(h), 0) != sizeof(h) || g_memfd < 0) {
		close(c);
		return;
	}
	r.kind = h.kind;
	r.region_size = g_region_len;
	fds[n++] = g_memfd;
	if (h.kind == ML__WIRE_INSPECT) {
		len = sizeof(r);
		r.npeers = ML_CHAN_MAX_CLIENTS;
	} else {
		const struct ml__ctl *ctl = (const struct ml__ctl *)g_region;
		unsigned max = ctl->max_clients;

		/* As a daemon would: the first free slot, claimed, with an area (one at a time). */
		for (unsigned i = 0; i < max && i < ML_CHAN_MAX_CLIENTS && !r.bell && g_areafd < 0;
		     i++) {
			_Atomic uint32_t *st = (_Atomic uint32_t *)&ctl->slot[i].state;
			uint32_t free_ = ML__SLOT_FREE;

			if (atomic_compare_exchange_strong(st, &free_, ML__SLOT_CLAIMED)) {
				r.bell = 1 + i;
				make_area(i, ctl->client_stride);
			}
		}
		if (!r.bell) {
			r.err = ECONNREFUSED;
			n = 0;
		} else {
			r.area_size = g_area_len;
			fds[n++] = g_areafd;
			fds[n++] = eventfd(0, EFD_CLOEXEC);
			fds[n++] = eventfd(0, EFD_CLOEXEC);
		}
	}
	{
		char cb[CMSG_SPACE(sizeof(int) * 4)];
		struct iovec iov = { .iov_base = &r, .iov_len = len };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

		if (n) {
			memset(cb, 0, sizeof(cb));
			m.msg_control = cb;
			m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
			CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
			CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
			CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
			memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), fds, sizeof(int) * (size_t)n);
		}
		sendmsg(c, &m, MSG_NOSIGNAL);
	}
	for (int i = 2; i < n; i++)
		close(fds[i]);
	if (h.kind == ML__WIRE_JOIN && !r.err) {
		if (g_conn >= 0)
			close(g_conn);
		g_conn = c; /* the client's liveness, and ours to it */
	} else {
		close(c);
	}
}

static void *daemon_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			continue;
		pthread_mutex_lock(&lock);
		answer(c);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

/*
 * Descriptors of the kinds the library could leave open: all but pipes,
 * which the sanitizers' symbolizer opens for good when libFuzzer prints a
 * new function.
 */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], link[64];
	int n = 0;

	CHECK(d);
	while ((e = readdir(d))) {
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, link, sizeof(link) - 1);
		n += k < 0 || k < 5 || memcmp(link, "pipe:", 5);
	}
	closedir(d);
	return n;
}

/* memlink-stat's view of the region: read without joining, only reported. */
static void inspect(void)
{
	struct ml_chan_status st = { .size = sizeof(st) };
	int err = ml_chan_inspect(name, ML_BACKEND_LINUX, &st);

	if (err) {
		CHECK(err == -ENOENT || err == -EPROTO || err == -EPIPE);
		return;
	}
	CHECK(st.max_clients >= 1 && st.max_clients <= ML_CHAN_MAX_CLIENTS);
	CHECK(ml_ring_mem_size(st.ring_size) != 0);
	CHECK(st.backpressure >= 0.0 && st.backpressure <= 1.0);
	for (unsigned i = 0; i < st.max_clients; i++) {
		const struct ml_chan_client_status *cs = &st.client[i];

		CHECK(cs->alive <= 1 && cs->corrupt < 64 && cs->beat_age_ns >= -1);
		for (unsigned l = 0; l < ML_PRIO_COUNT; l++)
			CHECK(cs->req_used[l] <= cs->req_cap[l] &&
			      cs->resp_used[l] <= cs->resp_cap[l]);
	}
}

/* One channel per process (fuzzers may run side by side), one daemon thread. */
static int fds_at_start = -1;

static void name_once(void)
{
	struct sockaddr_un a;
	socklen_t alen;
	pthread_t t;

	if (name[0])
		return;
	snprintf(name, sizeof(name), "fzc-%d", (int)getpid());
	alen = fz_addr(&a, name);
	g_listen = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(g_listen >= 0 && !bind(g_listen, (struct sockaddr *)&a, alen) &&
	      !listen(g_listen, 16));
	CHECK(!pthread_create(&t, NULL, daemon_thread, NULL));
	fds_at_start = count_fds();
}

/* FZC_POKE: the daemon writes a few bytes into the control region, then the area. */
static void poke(struct fz *f)
{
	size_t k = fz_u16(f) | (size_t)fz_u8(f) << 16, n = fz_u8(f) % 32u;
	size_t total = g_region_len + (g_area ? g_area_len : 0), off = k % total;

	for (size_t i = 0; i < n && off + i < total; i++) {
		uint8_t b = fz_u8(f);

		if (off + i < g_region_len)
			g_region[off + i] = b;
		else
			g_area[off + i - g_region_len] = b;
	}
}

/*
 * The harness daemon's own operations, for a client and a subscriber alike:
 * FZC_POKE writes into the memory, FZC_BELL dies (its end of the
 * connection goes). false: not one of them.
 */
static bool daemon_op(unsigned op, struct fz *f)
{
	if (op != FZC_POKE && op != FZC_BELL)
		return false;
	pthread_mutex_lock(&lock);
	if (op == FZC_POKE) {
		poke(f);
	} else {
		if (g_conn >= 0)
			close(g_conn);
		g_conn = -1;
	}
	pthread_mutex_unlock(&lock);
	return true;
}

/* The control region's bytes, and a topic's region after them if the input says so. */
static size_t region_len(const uint8_t *mem, size_t len)
{
	struct ml__ctl ctl;

	if (len < sizeof(ctl))
		return ML__CTL_SIZE;
	memcpy(&ctl, mem, sizeof(ctl));
	if (ctl.magic != ML__TOPIC_MAGIC || !ctl.extra_size || ctl.extra_size % 4096 ||
	    ctl.extra_size > MAX_EXTRA)
		return ML__CTL_SIZE;
	return ML__CTL_SIZE + (size_t)ctl.extra_size;
}

static void sub_answer(int n, size_t cap)
{
	CHECK((n >= 0 && (size_t)n <= cap) || n == -EAGAIN || n == -EMSGSIZE || n == -EPIPE ||
	      n == -EBADMSG);
}

/* The operations as a subscriber's calls; then what is left, in bounded time. */
static void drive_sub(ml_sub *s, struct fz *f)
{
	static uint8_t buf[4096];
	struct ml_sub_stats st = { .size = sizeof(st) };

	while (f->n) {
		unsigned op = fz_u8(f) % FZC_CLIENT_NOPS;
		const void *at;
		uint64_t seq;
		int prio, n;

		if (daemon_op(op, f)) {
			continue;
		} else if (op == FZC_RECV_MANY) {
			n = ml_sub_view(s, &prio, &seq, &at);
			sub_answer(n, 4096);
			if (n >= 0) {
				CHECK(prio >= 0 && prio < ML_PRIO_COUNT);
				memcpy(buf, at, (size_t)n); /* inside the mapping, or ASan says */
				n = ml_sub_done(s);
				CHECK(n == 0 || n == -ML_ESTALE);
			}
		} else if (op == FZC_WAIT) {
			n = ml_sub_wait(s, 0);
			CHECK(n == 0 || n == -ETIMEDOUT || n == -EPIPE);
		} else if (op == FZC_STATS) {
			CHECK(ml_sub_stats(s, &st) == 0 && st.poisoned < 8);
		} else {
			size_t cap = op == FZC_RECV ? fz_u8(f) * 8u : sizeof(buf);

			sub_answer(ml_sub_recv(s, &prio, &seq, buf, cap), cap);
		}
	}
	for (unsigned i = 0; i < 64; i++)
		sub_answer(ml_sub_recv(s, NULL, NULL, buf, sizeof(buf)), sizeof(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ml_chan_opts o = { .size = sizeof(o), .backend = ML_BACKEND_LINUX };
	uint8_t *region = NULL;
	size_t nops, rlen, rsize;
	ml_chan *c = NULL;
	ml_sub *s = NULL;
	struct fz f;
	int fd, err;

	if (size < 1)
		return 0;
	name_once();
	nops = data[0] < size - 1 ? data[0] : size - 1;
	f = (struct fz){ .p = data + 1, .n = nops };
	rlen = size - 1 - nops;
	if (rlen > MAX_REGION)
		rlen = MAX_REGION;

	rsize = region_len(data + 1 + nops, rlen);
	fd = sealed("fzc", rsize, data + 1 + nops, rlen, &region);
	pthread_mutex_lock(&lock);
	g_memfd = fd;
	g_region = region;
	g_region_len = rsize;
	g_input = data + 1 + nops;
	g_input_len = rlen;
	pthread_mutex_unlock(&lock);

	inspect();
	if (rsize > ML__CTL_SIZE) {
		struct ml_topic_opts to = { .size = sizeof(to), .backend = ML_BACKEND_LINUX };

		err = ml_sub_open(&s, name, &to);
		CHECK(!err || err == -ENOENT || err == -EPROTO || err == -ECONNREFUSED ||
		      err == -EPIPE || err == -EPERM);
		if (!err)
			drive_sub(s, &f);
		inspect();
		goto out;
	}
	err = ml_client_connect(&c, name, &o);
	if (err) {
		CHECK(err == -ENOENT || err == -EPROTO || err == -ECONNREFUSED ||
		      err == -EPIPE || err == -EPERM);
		goto out;
	}
	while (f.n) {
		unsigned op = fz_u8(&f) % FZC_CLIENT_NOPS;

		if (!daemon_op(op, &f))
			fz_chan_op(c, false, 1, op, &f);
	}
	/* What is left reads out in bounded time. */
	for (unsigned i = 0; i < 64; i++)
		fz_chan_op(c, false, 1, FZC_RECV_MAX, &f);
	inspect();
out:
	ml_chan_close(c);
	ml_sub_close(s);
	pthread_mutex_lock(&lock);
	if (g_conn >= 0)
		close(g_conn);
	g_conn = g_memfd = -1;
	g_region = NULL;
	g_input = NULL;
	drop_area();
	pthread_mutex_unlock(&lock);
	munmap(region, rsize);
	close(fd);
	/* Whatever the daemon sent, the client kept none of it. */
	CHECK(count_fds() == fds_at_start);
	return 0;
}

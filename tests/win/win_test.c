// SPDX-License-Identifier: MIT
/*
 * Channel tests for the win backend, run under wine (or on Windows).
 *
 * Windows has no fork(): the test program starts copies of itself with
 * CreateProcess and a role argument to play a daemon or a client:
 *   win_test                          run every test
 *   win_test echo NAME MODE           daemon: echo every message back
 *   win_test idle NAME                daemon: create, then wait forever
 *   win_test flood NAME ID N          client: send N messages per lane, wait
 *                                     for the daemon's acknowledgement
 *   win_test linger NAME              client: connect, then wait forever
 * Ends with "win: N passed, N failed" and exits non-zero on a failure;
 * tests/win/run.sh runs it under wine and keeps $ML_TALLY.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memlink.h"

#define SEC 1000000000LL
#define MAX_MSG 512
#define FLOOD_CLIENTS 4
#define FLOOD_N 3000 /* messages per lane per client */

static char self[MAX_PATH];
static int failures_here;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			printf("    FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			printf(__VA_ARGS__);                                    \
			printf("\n");                                           \
			fflush(stdout);                                         \
			failures_here++;                                        \
			goto out;                                               \
		}                                                               \
	} while (0)

static int64_t now_ns(void)
{
	LARGE_INTEGER c, f;

	QueryPerformanceCounter(&c);
	QueryPerformanceFrequency(&f);
	return (int64_t)((double)c.QuadPart * 1e9 / (double)f.QuadPart);
}

static void chan_name(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "mlw-%lu-%s", (unsigned long)GetCurrentProcessId(), what);
}

/* Start `exe` (NULL: this program) with the arguments. */
static HANDLE spawn_prog(const char *exe, const char *fmt, va_list ap)
{
	char cmd[1024], args[768];
	STARTUPINFOA si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;

	vsnprintf(args, sizeof(args), fmt, ap);
	snprintf(cmd, sizeof(cmd), "\"%s\" %s", exe ? exe : self, args);
	if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
		printf("    CreateProcess(%s) failed: %lu\n", cmd, GetLastError());
		return NULL;
	}
	CloseHandle(pi.hThread);
	return pi.hProcess;
}

static HANDLE spawn(const char *fmt, ...)
{
	va_list ap;
	HANDLE h;

	va_start(ap, fmt);
	h = spawn_prog(NULL, fmt, ap);
	va_end(ap);
	return h;
}

/* Start a tool built beside this program (make win) with the arguments. */
static HANDLE spawn_tool(const char *tool, const char *fmt, ...)
{
	char exe[MAX_PATH], *slash;
	va_list ap;
	HANDLE h;

	snprintf(exe, sizeof(exe), "%s", self);
	slash = strrchr(exe, '\\');
	snprintf(slash ? slash + 1 : exe, sizeof(exe) - (size_t)(slash ? slash + 1 - exe : 0),
		 "%s.exe", tool);
	va_start(ap, fmt);
	h = spawn_prog(exe, fmt, ap);
	va_end(ap);
	return h;
}

static void reap(HANDLE *p)
{
	if (!*p)
		return;
	if (WaitForSingleObject(*p, 0) == WAIT_TIMEOUT)
		TerminateProcess(*p, 99);
	WaitForSingleObject(*p, 10000);
	CloseHandle(*p);
	*p = NULL;
}

/* Wait for a process to end; its exit code, or -1 if it did not in time. */
static long exit_code(HANDLE *p, DWORD ms)
{
	DWORD code;

	if (!*p || WaitForSingleObject(*p, ms) != WAIT_OBJECT_0 || !GetExitCodeProcess(*p, &code)) {
		reap(p);
		return -1;
	}
	CloseHandle(*p);
	*p = NULL;
	return (long)code;
}

/* Connect, retrying while the daemon process is still starting. */
static int connect_retry(ml_chan **c, const char *name, const struct ml_chan_opts *o,
			 int64_t timeout_ns)
{
	int64_t end = now_ns() + timeout_ns;
	int err;

	for (;;) {
		err = ml_client_connect(c, name, o);
		if (err != -ENOENT || now_ns() > end)
			return err;
		Sleep(10);
	}
}

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31u + i * 7u + (i >> 8));
}

/* ---- roles ---------------------------------------------------------------- */

/*
 * Daemon: before closing, let the clients leave. (A client that finds its
 * ring empty and then the daemon shut down reports -EPIPE even when the
 * reply came in between: chan.c looks at the ring only once.)
 */
static void linger(ml_chan *d)
{
	uint8_t buf[MAX_MSG];
	int64_t end = now_ns() + 10 * SEC;

	while (ml_chan_connected(d) && now_ns() < end) {
		ml_chan_wait(d, SEC / 50);
		while (ml_chan_recv(d, NULL, NULL, buf, sizeof(buf)) >= 0)
			;
	}
}

/* Daemon: echo each message back to its sender, bytes ^ 0xa5, same priority. */
static int echo_loop(ml_chan *d, int64_t deadline)
{
	uint8_t buf[MAX_MSG];

	while (now_ns() < deadline) {
		unsigned client;
		int prio, n, err = ml_chan_wait(d, SEC / 20);

		if (err == -ETIMEDOUT)
			continue;
		if (err)
			return err;
		while ((n = ml_chan_recv(d, &prio, &client, buf, sizeof(buf))) >= 0) {
			if (n == 4 && !memcmp(buf, "quit", 4)) {
				ml_chan_send_wait(d, client, prio, "bye", 3, 5 * SEC);
				linger(d);
				return 0;
			}
			for (int i = 0; i < n; i++)
				buf[i] ^= 0xa5;
			err = ml_chan_send_wait(d, client, prio, buf, (size_t)n, 5 * SEC);
			if (err && err != -EPIPE)
				return err;
		}
	}
	return -ETIMEDOUT;
}

static int role_echo(const char *name, int mode)
{
	struct ml_chan_opts o = { .size = sizeof(o), .wait_mode = (uint32_t)mode,
				  .max_clients = 2, .ring_size = 16384, .max_msg = MAX_MSG };
	ml_chan *d;
	int err = ml_daemon_create(&d, name, &o);

	if (err) {
		printf("echo: create %s: %s\n", name, ml_strerror(err));
		return 1;
	}
	err = echo_loop(d, now_ns() + 120 * SEC);
	ml_chan_close(d);
	return err ? 1 : 0;
}

static int role_idle(const char *name)
{
	struct ml_chan_opts o = { .size = sizeof(o), .max_clients = 2, .ring_size = 16384,
				  .max_msg = 64 };
	ml_chan *d;
	int err = ml_daemon_create(&d, name, &o);

	if (err) {
		printf("idle: create %s: %s\n", name, ml_strerror(err));
		return 1;
	}
	for (int i = 0; i < 1200; i++)
		ml_chan_wait(d, SEC / 10);
	ml_chan_close(d);
	return 0;
}

struct flood_msg {
	uint32_t id;
	uint32_t seq;
	uint8_t fill[24];
};

static int role_flood(const char *name, unsigned id, unsigned n)
{
	ml_chan *c;
	struct flood_msg m = { .id = id };
	char ack[16];
	int err = connect_retry(&c, name, NULL, 20 * SEC), prio;

	if (err) {
		printf("flood %u: connect: %s\n", id, ml_strerror(err));
		return 1;
	}
	/* Interleave the lanes so that the daemon sees them mixed. */
	for (unsigned seq = 0; seq < n; seq++)
		for (int p = 0; p < ML_PRIO_COUNT; p++) {
			m.seq = seq;
			memset(m.fill, (int)(id * 3 + (unsigned)p), sizeof(m.fill));
			err = ml_chan_send_wait(c, 0, p, &m, sizeof(m), 30 * SEC);
			if (err) {
				printf("flood %u: send %u/%d: %s\n", id, seq, p, ml_strerror(err));
				goto out;
			}
		}
	/* Stay until the daemon has read everything: leaving drops the rest. */
	err = ml_chan_wait(c, 60 * SEC);
	if (!err) {
		err = ml_chan_recv(c, &prio, NULL, ack, sizeof(ack));
		err = err == 3 && !memcmp(ack, "ack", 3) ? 0 : -EBADMSG;
	}
	if (err)
		printf("flood %u: ack: %s\n", id, ml_strerror(err));
out:
	ml_chan_close(c);
	return err ? 1 : 0;
}

static int role_linger(const char *name)
{
	ml_chan *c;
	int err = connect_retry(&c, name, NULL, 20 * SEC);

	if (err) {
		printf("linger: connect: %s\n", ml_strerror(err));
		return 1;
	}
	Sleep(120000);
	ml_chan_close(c);
	return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_missing(void)
{
	ml_chan *c = NULL;
	char name[64];
	int err;

	chan_name(name, sizeof(name), "missing");
	err = ml_client_connect(&c, name, NULL);
	CHECK(err == -ENOENT, "connect to a missing channel: %d (%s)", err, ml_strerror(err));
	err = ml_client_connect(&c, "bad/name", NULL);
	CHECK(err == -EINVAL, "bad name: %d", err);
out:
	return;
}

/*
 * Every errno a channel call returns should have a text. msvcrt's strerror()
 * knows only the classic ones, so this reports the missing ones (a note,
 * not a failure: lib/strerror.c is portable code, see the report).
 */
static void test_strerror(void)
{
	static const int errs[] = { ENOENT, EEXIST, EPROTO, ECONNREFUSED, EAGAIN, ETIMEDOUT,
				    EPIPE, ENODEV, ENOTSUP, EINVAL, EMSGSIZE, EBADMSG };
	char missing[256] = "";

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		const char *t = ml_strerror(-errs[i]);

		CHECK(t && *t, "no text for %d", errs[i]);
		if (strstr(t, "Unknown"))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 " %d", errs[i]);
	}
	if (*missing)
		printf("    note: ml_strerror says \"Unknown error\" for errno%s\n", missing);
out:
	return;
}

/* Request/response at every priority, lengths 0..MAX_MSG, data checked. */
static int pingpong(ml_chan *c, unsigned rounds)
{
	uint8_t out[MAX_MSG], in[MAX_MSG];
	int err = 0;

	for (unsigned r = 0; r < rounds; r++)
		for (int p = 0; p < ML_PRIO_COUNT; p++) {
			size_t len = (r * 37u + (unsigned)p * 11u) % (MAX_MSG + 1);
			int prio = -1, n;

			pattern(out, len, r * 3 + (unsigned)p);
			err = ml_chan_send_wait(c, 0, p, out, len, 10 * SEC);
			CHECK(err == 0, "send r%u p%d: %s", r, p, ml_strerror(err));
			err = ml_chan_wait(c, 10 * SEC);
			CHECK(err == 0, "wait r%u p%d: %s", r, p, ml_strerror(err));
			n = ml_chan_recv(c, &prio, NULL, in, sizeof(in));
			CHECK(n == (int)len, "recv r%u p%d: %d, want %zu", r, p, n, len);
			CHECK(prio == p, "reply priority %d, want %d", prio, p);
			for (size_t i = 0; i < len; i++)
				CHECK(in[i] == (out[i] ^ 0xa5), "byte %zu of r%u p%d", i, r, p);
		}
	return 0;
out:
	return err ? err : -EBADMSG;
}

static int quit(ml_chan *c)
{
	char bye[8];
	int n, err = ml_chan_send_wait(c, 0, ML_PRIO_CRITICAL, "quit", 4, 10 * SEC);

	if (err)
		return err;
	err = ml_chan_wait(c, 10 * SEC);
	if (err)
		return err;
	n = ml_chan_recv(c, NULL, NULL, bye, sizeof(bye));
	return n == 3 && !memcmp(bye, "bye", 3) ? 0 : -EBADMSG;
}

static void test_pingpong_procs(int mode)
{
	struct ml_chan_opts o = { .size = sizeof(o), .wait_mode = (uint32_t)mode };
	HANDLE d = NULL;
	ml_chan *c = NULL;
	char name[64];
	DWORD code = 1;
	int64_t t;
	int err;

	chan_name(name, sizeof(name), mode == ML_WAIT_BLOCKING ? "pp-block" : "pp");
	d = spawn("echo %s %d", name, mode);
	CHECK(d, "spawn");
	err = connect_retry(&c, name, &o, 20 * SEC);
	CHECK(err == 0, "connect: %s", ml_strerror(err));
	CHECK(!strcmp(ml_chan_backend(c), "win"), "backend %s", ml_chan_backend(c));
	CHECK(ml_chan_connected(c) == 1, "connected");
	t = now_ns();
	err = pingpong(c, 300);
	CHECK(err == 0, "pingpong");
	t = now_ns() - t;
	printf("    900 round trips across processes (%s): %.1f us each\n",
	       mode == ML_WAIT_BLOCKING ? "blocking" : "adaptive", (double)t / 900 / 1e3);
	err = quit(c);
	CHECK(err == 0, "quit: %s", ml_strerror(err));
	ml_chan_close(c);
	c = NULL;
	CHECK(WaitForSingleObject(d, 10000) == WAIT_OBJECT_0, "daemon exits");
	GetExitCodeProcess(d, &code);
	CHECK(code == 0, "daemon exit code %lu", code);
out:
	ml_chan_close(c);
	reap(&d);
}

struct echo_thread {
	char name[64];
	int mode;
	int err;
	HANDLE ready;
};

static DWORD WINAPI echo_thread_main(void *arg)
{
	struct echo_thread *e = arg;
	struct ml_chan_opts o = { .size = sizeof(o), .wait_mode = (uint32_t)e->mode,
				  .max_clients = 2, .ring_size = 16384, .max_msg = MAX_MSG };
	ml_chan *d;

	e->err = ml_daemon_create(&d, e->name, &o);
	SetEvent(e->ready);
	if (e->err)
		return 1;
	e->err = echo_loop(d, now_ns() + 60 * SEC);
	ml_chan_close(d);
	return 0;
}

/* An echo daemon thread on a channel named after `tag`, created and ready. */
static HANDLE echo_thread_start(struct echo_thread *e, const char *tag)
{
	HANDLE th;

	chan_name(e->name, sizeof(e->name), tag);
	e->ready = CreateEventW(NULL, TRUE, FALSE, NULL);
	th = CreateThread(NULL, 0, echo_thread_main, e, 0, NULL);
	if (th)
		WaitForSingleObject(e->ready, INFINITE);
	return th;
}

static void echo_thread_stop(struct echo_thread *e, HANDLE th)
{
	if (th) {
		WaitForSingleObject(th, 10000);
		CloseHandle(th);
	}
	CloseHandle(e->ready);
}

/* Daemon and client in one process: the WaitOnAddress path. */
static void test_pingpong_threads(void)
{
	struct echo_thread e = { .mode = ML_WAIT_BLOCKING };
	struct ml_chan_opts o = { .size = sizeof(o), .wait_mode = ML_WAIT_BLOCKING };
	HANDLE th = NULL;
	ml_chan *c = NULL;
	int64_t t;
	int err;

	th = echo_thread_start(&e, "pp-thr");
	CHECK(th, "CreateThread");
	CHECK(e.err == 0, "create: %s", ml_strerror(e.err));
	err = ml_client_connect(&c, e.name, &o);
	CHECK(err == 0, "connect: %s", ml_strerror(err));
	t = now_ns();
	err = pingpong(c, 300);
	CHECK(err == 0, "pingpong");
	t = now_ns() - t;
	printf("    900 round trips between threads (blocking): %.1f us each\n",
	       (double)t / 900 / 1e3);
	err = quit(c);
	CHECK(err == 0, "quit: %s", ml_strerror(err));
	ml_chan_close(c);
	c = NULL;
	CHECK(WaitForSingleObject(th, 10000) == WAIT_OBJECT_0, "daemon thread exits");
	CHECK(e.err == 0, "echo loop: %s", ml_strerror(e.err));
out:
	ml_chan_close(c);
	echo_thread_stop(&e, th);
}

/*
 * ml_chan_fd() on Windows: a HANDLE of an auto-reset event, signalled by
 * each reply, whether the daemon is another process or a thread of ours
 * (which otherwise wakes us by address): wait on it, recv until -EAGAIN.
 */
static int handle_rounds(ml_chan *c, unsigned rounds)
{
	uint8_t in[MAX_MSG];
	HANDLE h;
	int fd = ml_chan_fd(c), n, err = 0;

	CHECK(fd >= 0, "ml_chan_fd: %s", ml_strerror(fd));
	h = (HANDLE)(intptr_t)fd;
	CHECK(WaitForSingleObject(h, 0) == WAIT_TIMEOUT, "signalled before anything was sent");
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t out[16];

		pattern(out, sizeof(out), r);
		err = ml_chan_send(c, ML_PRIO_HIGH, out, sizeof(out));
		CHECK(err == 0, "send %u: %s", r, ml_strerror(err));
		CHECK(WaitForSingleObject(h, 10000) == WAIT_OBJECT_0, "round %u: never signalled", r);
		n = ml_chan_recv(c, NULL, NULL, in, sizeof(in));
		CHECK(n == (int)sizeof(out), "round %u: recv %d", r, n);
		for (size_t i = 0; i < sizeof(out); i++)
			CHECK(in[i] == (out[i] ^ 0xa5), "byte %zu of round %u", i, r);
		n = ml_chan_recv(c, NULL, NULL, in, sizeof(in));
		CHECK(n == -EAGAIN, "round %u: second recv %d", r, n);
	}
	/* Everything read: quiet until the next reply. */
	CHECK(WaitForSingleObject(h, 200) == WAIT_TIMEOUT, "signalled with nothing sent");
	return 0;
out:
	return err ? err : -EBADMSG;
}

static void test_handle_procs(void)
{
	struct ml_chan_opts o = { .size = sizeof(o) };
	HANDLE d = NULL;
	ml_chan *c = NULL;
	char name[64];
	int err;

	chan_name(name, sizeof(name), "fd");
	d = spawn("echo %s %d", name, ML_WAIT_BLOCKING);
	CHECK(d, "spawn");
	err = connect_retry(&c, name, &o, 20 * SEC);
	CHECK(err == 0, "connect: %s", ml_strerror(err));
	CHECK(handle_rounds(c, 100) == 0, "across processes");
	err = quit(c);
	CHECK(err == 0, "quit: %s", ml_strerror(err));
	printf("    100 replies, each seen through the handle, across processes\n");
out:
	ml_chan_close(c);
	reap(&d);
}

static void test_handle_threads(void)
{
	struct echo_thread e = { .mode = ML_WAIT_BLOCKING };
	struct ml_chan_opts o = { .size = sizeof(o) };
	HANDLE th = NULL;
	ml_chan *c = NULL;
	int err;

	th = echo_thread_start(&e, "fd-thr");
	CHECK(th, "CreateThread");
	CHECK(e.err == 0, "create: %s", ml_strerror(e.err));
	err = ml_client_connect(&c, e.name, &o);
	CHECK(err == 0, "connect: %s", ml_strerror(err));
	CHECK(handle_rounds(c, 100) == 0, "between threads");
	err = quit(c);
	CHECK(err == 0, "quit: %s", ml_strerror(err));
	printf("    100 replies, each seen through the handle, between threads\n");
out:
	ml_chan_close(c);
	echo_thread_stop(&e, th);
}

/*
 * The tools, as Windows programs: memlink-ping's daemon and client make
 * their round trips and stop; memlink-stat reads the live channel.
 */
static void test_tools(void)
{
	HANDLE d = NULL, c = NULL, st = NULL;
	ml_chan *probe = NULL;
	struct ml_chan_opts o = { .size = sizeof(o) };
	char name[64];
	long code;
	int err;

	chan_name(name, sizeof(name), "tools");
	d = spawn_tool("memlink-ping", "daemon --name %s", name);
	CHECK(d, "spawn memlink-ping daemon");
	err = connect_retry(&probe, name, &o, 20 * SEC);
	CHECK(err == 0, "the daemon's channel: %s", ml_strerror(err));
	ml_chan_close(probe);
	probe = NULL;
	st = spawn_tool("memlink-stat", "%s", name);
	code = exit_code(&st, 20000);
	CHECK(code == 0, "memlink-stat %s: exit %ld", name, code);
	c = spawn_tool("memlink-ping", "client --name %s --count 200 --stop", name);
	code = exit_code(&c, 60000);
	CHECK(code == 0, "memlink-ping client: exit %ld", code);
	code = exit_code(&d, 20000);
	CHECK(code == 0, "memlink-ping daemon: exit %ld", code);
	st = spawn_tool("memlink-stat", "%s", name);
	code = exit_code(&st, 20000);
	CHECK(code == 1, "memlink-stat of a closed channel: exit %ld, want 1", code);
out:
	ml_chan_close(probe);
	reap(&c);
	reap(&st);
	reap(&d);
}

/* FLOOD_CLIENTS processes x FLOOD_N messages per lane: no loss, lane order kept. */
static void test_flood(void)
{
	struct ml_chan_opts o = { .size = sizeof(o), .max_clients = FLOOD_CLIENTS,
				  .ring_size = 16384, .max_msg = 64 };
	HANDLE kids[FLOOD_CLIENTS] = { 0 };
	uint32_t next[FLOOD_CLIENTS][ML_PRIO_COUNT] = { { 0 } };
	unsigned slot_of[FLOOD_CLIENTS], got[FLOOD_CLIENTS] = { 0 };
	unsigned total = 0, want = FLOOD_CLIENTS * FLOOD_N * ML_PRIO_COUNT;
	ml_chan *d = NULL;
	char name[64];
	int64_t t0, deadline;
	int err;

	for (unsigned i = 0; i < FLOOD_CLIENTS; i++)
		slot_of[i] = ~0u;
	chan_name(name, sizeof(name), "flood");
	err = ml_daemon_create(&d, name, &o);
	CHECK(err == 0, "create: %s", ml_strerror(err));
	for (unsigned i = 0; i < FLOOD_CLIENTS; i++) {
		kids[i] = spawn("flood %s %u %u", name, i, FLOOD_N);
		CHECK(kids[i], "spawn %u", i);
	}
	t0 = now_ns();
	deadline = t0 + 120 * SEC;
	while (total < want) {
		struct flood_msg m;
		unsigned client;
		int prio, n;

		CHECK(now_ns() < deadline, "timed out with %u of %u", total, want);
		err = ml_chan_wait(d, SEC / 10);
		if (err == -ETIMEDOUT)
			continue;
		CHECK(err == 0, "wait: %s", ml_strerror(err));
		while ((n = ml_chan_recv(d, &prio, &client, &m, sizeof(m))) >= 0) {
			CHECK(n == (int)sizeof(m), "length %d", n);
			CHECK(m.id < FLOOD_CLIENTS && prio >= 0 && prio < ML_PRIO_COUNT,
			      "id %u prio %d", m.id, prio);
			if (slot_of[m.id] == ~0u)
				slot_of[m.id] = client;
			CHECK(slot_of[m.id] == client, "client %u moved from slot %u to %u",
			      m.id, slot_of[m.id], client);
			CHECK(m.seq == next[m.id][prio], "client %u lane %d: seq %u, want %u",
			      m.id, prio, m.seq, next[m.id][prio]);
			CHECK(m.fill[0] == (uint8_t)(m.id * 3 + (unsigned)prio) &&
			      m.fill[23] == m.fill[0], "payload of %u/%d/%u", m.id, prio, m.seq);
			next[m.id][prio]++;
			total++;
			if (++got[m.id] == FLOOD_N * ML_PRIO_COUNT) {
				err = ml_chan_send_wait(d, client, ML_PRIO_HIGH, "ack", 3, 10 * SEC);
				CHECK(err == 0, "ack %u: %s", m.id, ml_strerror(err));
			}
		}
	}
	printf("    %u messages from %u processes in %.0f ms\n", total, FLOOD_CLIENTS,
	       (double)(now_ns() - t0) / 1e6);
	for (unsigned i = 0; i < FLOOD_CLIENTS; i++) {
		DWORD code = 1;

		CHECK(WaitForSingleObject(kids[i], 30000) == WAIT_OBJECT_0, "client %u exits", i);
		GetExitCodeProcess(kids[i], &code);
		CHECK(code == 0, "client %u exit code %lu", i, code);
	}
out:
	for (unsigned i = 0; i < FLOOD_CLIENTS; i++)
		reap(&kids[i]);
	ml_chan_close(d);
}

struct killer {
	HANDLE proc;
	DWORD delay_ms;
	int64_t at;
};

static DWORD WINAPI killer_main(void *arg)
{
	struct killer *k = arg;

	Sleep(k->delay_ms);
	k->at = now_ns();
	TerminateProcess(k->proc, 9);
	return 0;
}

/*
 * A killed daemon: a waiting client gets -EPIPE; a new daemon may then
 * take the name (while the old client still has the old region mapped),
 * but not while the old one lived.
 */
static void test_daemon_killed(void)
{
	struct ml_chan_opts o = { .size = sizeof(o), .wait_mode = ML_WAIT_BLOCKING };
	struct killer k = { .delay_ms = 300 };
	HANDLE d = NULL, kt = NULL;
	ml_chan *c = NULL, *d2 = NULL, *c2 = NULL;
	char name[64];
	int64_t t;
	int err;

	chan_name(name, sizeof(name), "killed");
	d = spawn("idle %s", name);
	CHECK(d, "spawn");
	err = connect_retry(&c, name, &o, 20 * SEC);
	CHECK(err == 0, "connect: %s", ml_strerror(err));
	err = ml_daemon_create(&d2, name, NULL);
	CHECK(err == -EEXIST, "create over a live daemon: %d (%s)", err, ml_strerror(err));
	d2 = NULL;
	CHECK(ml_chan_connected(c) == 1, "connected before the kill");
	k.proc = d;
	kt = CreateThread(NULL, 0, killer_main, &k, 0, NULL);
	CHECK(kt, "CreateThread");
	err = ml_chan_wait(c, 20 * SEC);
	t = now_ns();
	WaitForSingleObject(kt, INFINITE);
	CHECK(err == -EPIPE, "wait after the kill: %d (%s)", err, ml_strerror(err));
	printf("    -EPIPE %.1f ms after TerminateProcess\n", (double)(t - k.at) / 1e6);
	CHECK(t - k.at < 2 * SEC, "took too long");
	/* (A send only looks at the daemon's liveness when the lane is full.) */
	CHECK(ml_chan_connected(c) == 0, "not connected after the kill");

	/* The dead daemon's name is free again, the old client still there. */
	err = ml_daemon_create(&d2, name, NULL);
	CHECK(err == 0, "create over a dead daemon: %s", ml_strerror(err));
	err = ml_client_connect(&c2, name, NULL);
	CHECK(err == 0, "connect to the new daemon: %s", ml_strerror(err));
	err = ml_chan_send(c2, ML_PRIO_HIGH, "hello", 5);
	CHECK(err == 0, "send to the new daemon: %s", ml_strerror(err));
	{
		char buf[8];
		int n = ml_chan_recv(d2, NULL, NULL, buf, sizeof(buf));

		CHECK(n == 5 && !memcmp(buf, "hello", 5), "new daemon got %d", n);
	}
	CHECK(ml_chan_connected(c) == 0, "the old client took the new daemon for its own");
	err = ml_chan_wait(c, SEC);
	CHECK(err == -EPIPE, "old client, wait: %d (%s)", err, ml_strerror(err));
	CHECK(ml_chan_connected(c2) == 1, "new client connected");
out:
	if (kt)
		CloseHandle(kt);
	ml_chan_close(c2);
	ml_chan_close(d2);
	ml_chan_close(c);
	reap(&d);
}

/* A killed client: the daemon notices and its slot can be taken again. */
static void test_client_killed(void)
{
	struct ml_chan_opts o = { .size = sizeof(o), .max_clients = 1, .ring_size = 16384,
				  .max_msg = 64 };
	HANDLE k = NULL;
	ml_chan *d = NULL, *c = NULL;
	char name[64];
	int64_t t, end;
	int err;

	chan_name(name, sizeof(name), "cl-killed");
	err = ml_daemon_create(&d, name, &o);
	CHECK(err == 0, "create: %s", ml_strerror(err));
	k = spawn("linger %s", name);
	CHECK(k, "spawn");
	for (end = now_ns() + 20 * SEC; !ml_chan_connected(d) && now_ns() < end;)
		Sleep(5);
	CHECK(ml_chan_connected(d) == 1, "client connected");
	err = ml_client_connect(&c, name, NULL);
	CHECK(err == -ECONNREFUSED, "second client of one slot: %d (%s)", err,
	      ml_strerror(err));
	c = NULL;
	TerminateProcess(k, 9);
	WaitForSingleObject(k, 10000);
	t = now_ns();
	for (end = t + 5 * SEC; ml_chan_connected(d) && now_ns() < end;)
		ml_chan_wait(d, SEC / 100);
	CHECK(ml_chan_connected(d) == 0, "daemon still sees the killed client");
	printf("    daemon saw the killed client gone after %.1f ms\n",
	       (double)(now_ns() - t) / 1e6);
	err = ml_client_connect(&c, name, NULL);
	CHECK(err == 0, "slot taken again: %s", ml_strerror(err));
out:
	ml_chan_close(c);
	ml_chan_close(d);
	reap(&k);
}

/* Every slot taken across processes: -ECONNREFUSED; a leaving client frees one. */
static void test_refused(void)
{
	HANDLE d = NULL;
	ml_chan *c[3] = { NULL };
	char name[64];
	int64_t end;
	int err;

	chan_name(name, sizeof(name), "refused");
	d = spawn("echo %s %d", name, ML_WAIT_ADAPTIVE); /* max_clients = 2 */
	CHECK(d, "spawn");
	err = connect_retry(&c[0], name, NULL, 20 * SEC);
	CHECK(err == 0, "client 0: %s", ml_strerror(err));
	err = ml_client_connect(&c[1], name, NULL);
	CHECK(err == 0, "client 1: %s", ml_strerror(err));
	err = ml_client_connect(&c[2], name, NULL);
	CHECK(err == -ECONNREFUSED, "client 2: %d (%s)", err, ml_strerror(err));
	c[2] = NULL;
	ml_chan_close(c[1]);
	c[1] = NULL;
	/* The daemon lays the slot out anew before it is free. */
	for (end = now_ns() + 5 * SEC; now_ns() < end; Sleep(10)) {
		err = ml_client_connect(&c[2], name, NULL);
		if (err != -ECONNREFUSED)
			break;
	}
	CHECK(err == 0, "after a client left: %s", ml_strerror(err));
	err = pingpong(c[2], 5);
	CHECK(err == 0, "pingpong on the reused slot");
	err = pingpong(c[0], 5);
	CHECK(err == 0, "pingpong on the first slot");
	err = quit(c[0]);
	CHECK(err == 0, "quit: %s", ml_strerror(err));
out:
	for (int i = 0; i < 3; i++)
		ml_chan_close(c[i]);
	if (failures_here && d) {
		DWORD code = 0;

		WaitForSingleObject(d, 1000);
		GetExitCodeProcess(d, &code);
		printf("    echo daemon: exit code %lu\n", code);
	}
	reap(&d);
}

/* ---- the ring itself, two threads ---------------------------------------- */

struct ring_run {
	ml_ring *r;
	unsigned n;
	int err;
};

static DWORD WINAPI ring_producer(void *arg)
{
	struct ring_run *rr = arg;
	uint8_t buf[64];

	for (unsigned i = 0; i < rr->n; i++) {
		int p = (int)(i % 7 == 0 ? 0 : i % 3 == 0 ? 1 : 2);
		size_t len = 4 + i % 60;
		int err;

		memcpy(buf, &i, 4);
		pattern(buf + 4, len - 4, i);
		while ((err = ml_ring_write(rr->r, p, buf, len)) == -EAGAIN)
			SwitchToThread();
		if (err) {
			rr->err = err;
			return 1;
		}
	}
	return 0;
}

static void test_ring_threads(void)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3 };
	struct ring_run rr = { .n = 300000 };
	uint32_t last[ML_PRIO_COUNT] = { 0 };
	bool seen[ML_PRIO_COUNT] = { false };
	uint8_t buf[64], want[64];
	HANDLE th = NULL;
	unsigned got = 0;
	int64_t end;

	CHECK(ml_ring_new(&rr.r, 4096, &o) == 0, "ml_ring_new");
	th = CreateThread(NULL, 0, ring_producer, &rr, 0, NULL);
	CHECK(th, "CreateThread");
	for (end = now_ns() + 60 * SEC; got < rr.n;) {
		int prio, n = ml_ring_read(rr.r, &prio, buf, sizeof(buf));
		uint32_t i;

		if (n == -EAGAIN) {
			CHECK(now_ns() < end && !rr.err, "stalled at %u (%d)", got, rr.err);
			SwitchToThread();
			continue;
		}
		CHECK(n >= 4, "read: %d", n);
		memcpy(&i, buf, 4);
		CHECK(n == (int)(4 + i % 60), "length %d of record %u", n, i);
		pattern(want, (size_t)n - 4, i);
		CHECK(!memcmp(buf + 4, want, (size_t)n - 4), "payload of record %u", i);
		CHECK(!seen[prio] || i > last[prio], "lane %d: %u after %u", prio, i, last[prio]);
		seen[prio] = true;
		last[prio] = i;
		got++;
	}
	CHECK(ml_ring_poisoned(rr.r) == 0, "poisoned");
out:
	if (th) {
		WaitForSingleObject(th, 60000);
		CloseHandle(th);
	}
	ml_ring_free(rr.r);
}

/* ---- main ----------------------------------------------------------------- */

struct test {
	const char *name;
	void (*fn)(void);
};

static void pp_adaptive(void)
{
	test_pingpong_procs(ML_WAIT_ADAPTIVE);
}

static void pp_blocking(void)
{
	test_pingpong_procs(ML_WAIT_BLOCKING);
}

static const struct test tests[] = {
	{ "missing channel: -ENOENT", test_missing },
	{ "ml_strerror: text for every errno", test_strerror },
	{ "ring: two threads, three lanes", test_ring_threads },
	{ "pingpong across processes, adaptive", pp_adaptive },
	{ "pingpong across processes, blocking", pp_blocking },
	{ "pingpong between threads (WaitOnAddress)", test_pingpong_threads },
	{ "4 client processes, no loss, lane order", test_flood },
	{ "too many clients: -ECONNREFUSED", test_refused },
	{ "daemon killed: -EPIPE, name reusable", test_daemon_killed },
	{ "client killed: slot reclaimed", test_client_killed },
	{ "ml_chan_fd: a HANDLE across processes", test_handle_procs },
	{ "ml_chan_fd: a HANDLE between threads", test_handle_threads },
	{ "memlink-ping and memlink-stat as Windows programs", test_tools },
};

int main(int argc, char **argv)
{
	unsigned passed = 0, failed = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	GetModuleFileNameA(NULL, self, sizeof(self));
	if (argc >= 4 && !strcmp(argv[1], "echo"))
		return role_echo(argv[2], atoi(argv[3]));
	if (argc >= 3 && !strcmp(argv[1], "idle"))
		return role_idle(argv[2]);
	if (argc >= 5 && !strcmp(argv[1], "flood"))
		return role_flood(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
	if (argc >= 3 && !strcmp(argv[1], "linger"))
		return role_linger(argv[2]);
	if (argc > 1 && strcmp(argv[1], "only")) {
		fprintf(stderr, "usage: %s [only TEXT | echo|idle|flood|linger ...]\n", argv[0]);
		return 2;
	}

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int64_t t = now_ns();

		/* "only TEXT": the tests whose name contains TEXT. */
		if (argc > 2 && !strstr(tests[i].name, argv[2]))
			continue;
		failures_here = 0;
		printf("[ RUN  ] %s\n", tests[i].name);
		tests[i].fn();
		printf("[ %s ] %s (%.0f ms)\n", failures_here ? "FAIL" : " OK ", tests[i].name,
		       (double)(now_ns() - t) / 1e6);
		if (failures_here)
			failed++;
		else
			passed++;
	}
	printf("win: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

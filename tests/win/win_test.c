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
 *   win_test dll PATH NAME free|exit  load a DLL that opens NAME, then
 *                                     unload it or exit (its DllMain closes)
 * Ends with "win: N passed, N failed" and exits non-zero on a failure;
 * tests/win/run.sh runs it under wine and keeps $ML_TALLY.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <aclapi.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memlink.h"
#ifdef ML_WIN_STATIC
/* The static build reaches the backend's insides too. */
#include "backend.h"
#include "win/win.h"
#endif

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

/* Daemon and client in one process: the WaitOnAddress path (the client's bell). */
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
	unsigned id_of[FLOOD_CLIENTS] = { 0 }, got[FLOOD_CLIENTS] = { 0 }; /* 0: none yet */
	unsigned total = 0, want = FLOOD_CLIENTS * FLOOD_N * ML_PRIO_COUNT;
	ml_chan *d = NULL;
	char name[64];
	int64_t t0, deadline;
	int err;

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
			/* Ids are never 0, and a connection keeps its own. */
			CHECK(client != 0, "client %u: id 0", m.id);
			if (!id_of[m.id])
				id_of[m.id] = client;
			CHECK(id_of[m.id] == client, "client %u changed ids from %#x to %#x",
			      m.id, id_of[m.id], client);
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

static int find_name(const char *name, void *arg)
{
	return !strcmp(name, (const char *)arg);
}

/* ---- security: the mode as DACLs ------------------------------------------ */

/* K_CTL: the control region, a mapping no mode lets a peer write. */
enum obj_kind { K_MAP, K_EVENT, K_MUTEX, K_CTL };

/* What a mode bit grants, by kind (read, write), and an owner's all (sec.c). */
static const DWORD kind_rw[4][2] = {
	[K_MAP] = { SECTION_QUERY | SECTION_MAP_READ, SECTION_MAP_WRITE },
	[K_EVENT] = { SYNCHRONIZE, EVENT_MODIFY_STATE },
	[K_MUTEX] = { SYNCHRONIZE, MUTEX_MODIFY_STATE },
	[K_CTL] = { SECTION_QUERY | SECTION_MAP_READ, 0 },
};
static const DWORD kind_all[4] = { SECTION_ALL_ACCESS, EVENT_ALL_ACCESS, MUTEX_ALL_ACCESS,
				   SECTION_ALL_ACCESS };

static DWORD bits_mask(enum obj_kind k, unsigned bits)
{
	return (bits & 4 ? kind_rw[k][0] : 0) | (bits & 2 ? kind_rw[k][1] : 0);
}

static void *token_info(TOKEN_INFORMATION_CLASS cls)
{
	HANDLE tok;
	DWORD len = 0;
	void *p = NULL;

	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return NULL;
	GetTokenInformation(tok, cls, NULL, 0, &len);
	if (len && (p = malloc(len)) && !GetTokenInformation(tok, cls, p, len, &len)) {
		free(p);
		p = NULL;
	}
	CloseHandle(tok);
	return p;
}

/* This process's integrity level is above medium (elevated, system). */
static bool above_medium(void)
{
	TOKEN_MANDATORY_LABEL *il = token_info(TokenIntegrityLevel);
	bool above = false;

	if (il) {
		PSID s = il->Label.Sid;

		above = *GetSidSubAuthority(s, *GetSidSubAuthorityCount(s) - 1) >
			SECURITY_MANDATORY_MEDIUM_RID;
		free(il);
	}
	return above;
}

/* An object of the channel, opened to read its security (NULL: none). */
static HANDLE open_sec(enum obj_kind k, const wchar_t *name)
{
	DWORD a = READ_CONTROL;

	return k == K_MAP || k == K_CTL ? OpenFileMappingW(a, FALSE, name) :
	       k == K_EVENT ? OpenEventW(a, FALSE, name) : OpenMutexW(a, FALSE, name);
}

/* The generation a channel's pointer mapping names; -1 if none. */
static long chan_gen(const char *chan)
{
	wchar_t name[160];
	HANDLE h;
	LONG *p, g = 0;

	swprintf(name, 160, L"Local\\memlink.%hs", chan);
	h = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
	p = h ? MapViewOfFile(h, FILE_MAP_READ, 0, 0, 4096) : NULL;
	if (p) {
		g = p[0];
		UnmapViewOfFile(p);
	}
	if (h)
		CloseHandle(h);
	return (long)g - 1;
}

/*
 * One object's security: owned by us, a protected DACL of the ACEs that
 * `mode` makes and no others, labelled medium only if we are above it.
 * 0 if so; else a note in why.
 */
static int check_sd(enum obj_kind k, const wchar_t *name, unsigned mode, char *why, size_t n)
{
	TOKEN_USER *user = token_info(TokenUser);
	TOKEN_PRIMARY_GROUP *group = token_info(TokenPrimaryGroup);
	PSID owner = NULL, au = NULL;
	SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
	PACL dacl = NULL, sacl = NULL;
	PSECURITY_DESCRIPTOR sd = NULL;
	SECURITY_DESCRIPTOR_CONTROL ctl = 0;
	DWORD rev, e, want_g = bits_mask(k, mode >> 3 & 7), want_o = bits_mask(k, mode & 7);
	bool seen_u = false, seen_g = false, seen_o = false, label = false;
	HANDLE h = open_sec(k, name);
	int bad = -1;

	*why = 0;
	if (!h || !user || !group) {
		snprintf(why, n, "cannot open %ls: %lu", name, GetLastError());
		goto out;
	}
	AllocateAndInitializeSid(&nt, 1, SECURITY_AUTHENTICATED_USER_RID, 0, 0, 0, 0, 0, 0, 0, &au);
	e = GetSecurityInfo(h, SE_KERNEL_OBJECT,
			    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION |
				    LABEL_SECURITY_INFORMATION,
			    &owner, NULL, &dacl, &sacl, &sd);
	if (e) {
		snprintf(why, n, "GetSecurityInfo(%ls): %lu", name, e);
		goto out;
	}
	if (!owner || !EqualSid(owner, user->User.Sid)) {
		snprintf(why, n, "%ls: not owned by this user", name);
		goto out;
	}
	GetSecurityDescriptorControl(sd, &ctl, &rev);
	if (!dacl || !(ctl & SE_DACL_PROTECTED)) {
		snprintf(why, n, "%ls: %s", name, dacl ? "DACL not protected" : "no DACL");
		goto out;
	}
	for (DWORD i = 0; i < dacl->AceCount; i++) {
		ACCESS_ALLOWED_ACE *a;
		PSID s;

		if (!GetAce(dacl, i, (void **)&a) || a->Header.AceType != ACCESS_ALLOWED_ACE_TYPE) {
			snprintf(why, n, "%ls: ACE %lu is not an allow ACE", name, i);
			goto out;
		}
		s = &a->SidStart;
		if (EqualSid(s, user->User.Sid) && !seen_u && a->Mask == kind_all[k]) {
			seen_u = true;
		} else if (EqualSid(s, group->PrimaryGroup) && !seen_g && want_g && a->Mask == want_g) {
			seen_g = true;
		} else if (EqualSid(s, au) && !seen_o && want_o && a->Mask == want_o) {
			seen_o = true;
		} else {
			snprintf(why, n, "%ls (mode %o): ACE %lu (mask %#lx) is not one the mode makes",
				 name, mode, i, a->Mask);
			goto out;
		}
	}
	if (!seen_u || seen_g != !!want_g || seen_o != !!want_o) {
		snprintf(why, n, "%ls (mode %o): ACEs user %d group %d other %d", name, mode, seen_u,
			 seen_g, seen_o);
		goto out;
	}
	for (DWORD i = 0; sacl && i < sacl->AceCount; i++) {
		SYSTEM_MANDATORY_LABEL_ACE *a;

		if (GetAce(sacl, i, (void **)&a) && a->Header.AceType == SYSTEM_MANDATORY_LABEL_ACE_TYPE &&
		    *GetSidSubAuthority(&a->SidStart, 0) == SECURITY_MANDATORY_MEDIUM_RID &&
		    a->Mask == SYSTEM_MANDATORY_LABEL_NO_WRITE_UP)
			label = true;
	}
	if (label != above_medium()) {
		snprintf(why, n, "%ls: medium label %s, process %s medium", name,
			 label ? "present" : "absent", above_medium() ? "above" : "at or below");
		goto out;
	}
	bad = 0;
out:
	if (sd)
		LocalFree(sd);
	if (au)
		FreeSid(au);
	if (h)
		CloseHandle(h);
	free(user);
	free(group);
	return bad;
}

/*
 * Every object a daemon shares carries the mode's DACL, read back with
 * GetSecurityInfo: 0600 admits only its owner, 0660 adds the token's
 * primary group, 0666 Authenticated Users, 0640 read rights only; the
 * control region grants them reading only, whatever the mode. (Wine
 * keeps and returns the descriptors; whether it enforces them between
 * users, sessions and integrity levels it cannot show: it has one user.)
 */
static void test_dacl(void)
{
	static const unsigned modes[] = { 0600, 0660, 0666, 0640, 0 };
	ml_chan *d = NULL;
	char name[64], why[512];
	int checked = 0;

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct ml_chan_opts o = { .size = sizeof(o), .mode = modes[m], .max_clients = 2 };
		unsigned mode = modes[m] ? modes[m] : 0600;
		wchar_t base[160], obj[200];
		long gen;
		int err;

		snprintf(name, sizeof(name), "mlw-%lu-dacl%o", (unsigned long)GetCurrentProcessId(),
			 modes[m]);
		err = ml_daemon_create(&d, name, &o);
		CHECK(err == 0, "create mode %o: %s", modes[m], ml_strerror(err));
		gen = chan_gen(name);
		CHECK(gen >= 0, "no generation for %s", name);
		swprintf(base, 160, L"Local\\memlink.%hs", name);
		/* The pointer, like the control region: read-only to the group and others. */
		CHECK(!check_sd(K_CTL, base, mode, why, sizeof(why)), "%s", why);
		swprintf(obj, 200, L"%ls:lock", base);
		CHECK(!check_sd(K_MUTEX, obj, mode, why, sizeof(why)), "%s", why);
		/* The control region: read-only to the group and others. */
		swprintf(obj, 200, L"%ls:%ld", base, gen);
		CHECK(!check_sd(K_CTL, obj, mode, why, sizeof(why)), "%s", why);
		/* The daemon's liveness; clients' objects are theirs (check_peer_sd). */
		swprintf(obj, 200, L"%ls:%ld:hold0", base, gen);
		CHECK(!check_sd(K_MUTEX, obj, mode, why, sizeof(why)), "%s", why);
		swprintf(obj, 200, L"%ls:%ld:probe0", base, gen);
		CHECK(!check_sd(K_MUTEX, obj, mode, why, sizeof(why)), "%s", why);
		checked += 5;
		ml_chan_close(d);
		d = NULL;
	}
	printf("    %d objects' DACLs as their modes say (0600, 0660, 0666, 0640, default); "
	       "medium label %s\n", checked, above_medium() ? "on each (this process is above medium)" :
							      "on none (this process is not above medium)");
out:
	ml_chan_close(d);
}

/* Drop this user's ACE from an object's DACL: what is left is a peer's. */
static int drop_owner_ace(enum obj_kind k, const wchar_t *name)
{
	TOKEN_USER *user = token_info(TokenUser);
	DWORD a = READ_CONTROL | WRITE_DAC, e;
	HANDLE h = k == K_MAP || k == K_CTL ? OpenFileMappingW(a, FALSE, name) :
		   k == K_EVENT ? OpenEventW(a, FALSE, name) : OpenMutexW(a, FALSE, name);
	PSECURITY_DESCRIPTOR sd = NULL;
	PACL dacl = NULL, left = NULL;
	int ret = -1;

	if (!h || !user || GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL,
					   NULL, &dacl, NULL, &sd))
		goto out;
	left = calloc(1, dacl->AclSize);
	if (!left || !InitializeAcl(left, dacl->AclSize, ACL_REVISION))
		goto out;
	for (DWORD i = 0; i < dacl->AceCount; i++) {
		ACCESS_ALLOWED_ACE *ace;

		if (GetAce(dacl, i, (void **)&ace) && !EqualSid(&ace->SidStart, user->User.Sid) &&
		    !AddAccessAllowedAce(left, ACL_REVISION, ace->Mask, &ace->SidStart))
			goto out;
	}
	e = SetSecurityInfo(h, SE_KERNEL_OBJECT,
			    DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL,
			    NULL, left, NULL);
	ret = e ? -1 : 0;
out:
	free(left);
	if (sd)
		LocalFree(sd);
	if (h)
		CloseHandle(h);
	free(user);
	return ret;
}

/*
 * What a peer of another user gets from the mode, and no more, is enough
 * to use the channel, and what the mode refuses stays refused: the owner's
 * ACE is taken off every object a client opens, leaving the group's or
 * other's (wine's token has the primary group and Authenticated Users,
 * and wine checks DACLs on open and a handle's rights on use). A client
 * that asked for more than it needs (FILE_MAP_ALL_ACCESS, EVENT_ALL_ACCESS)
 * would fail here. 0660 and 0666: connect, a message each way, the
 * event's HANDLE, inspection; 0640 and 0600: -EACCES.
 */
static void test_dacl_enforced(void)
{
	static const struct {
		unsigned mode;
		int want;
	} cases[] = { { 0660, 0 }, { 0666, 0 }, { 0606, 0 }, { 0640, -EACCES }, { 0600, -EACCES } };
	struct ml_chan_status *st = calloc(1, sizeof(*st));
	ml_chan *d = NULL, *c = NULL;
	char name[64], buf[8];
	int err, n;

	CHECK(st, "calloc");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ml_chan_opts o = { .size = sizeof(o), .mode = cases[i].mode, .max_clients = 2 };
		wchar_t base[160], obj[200];
		long gen;
		unsigned cl = 99;

		snprintf(name, sizeof(name), "mlw-%lu-enf%o", (unsigned long)GetCurrentProcessId(),
			 cases[i].mode);
		err = ml_daemon_create(&d, name, &o);
		CHECK(err == 0, "create: %s", ml_strerror(err));
		gen = chan_gen(name);
		swprintf(base, 160, L"Local\\memlink.%hs", name);
		CHECK(!drop_owner_ace(K_MAP, base), "%ls", base);
		swprintf(obj, 200, L"%ls:%ld", base, gen);
		CHECK(!drop_owner_ace(K_MAP, obj), "%ls", obj);
		/*
		 * The daemon's liveness. A client's own objects are made for it
		 * when it connects, for the daemon's user and its own (which
		 * is ours here: wine has one user).
		 */
		for (int k = 0; k < 2; k++) {
			swprintf(obj, 200, L"%ls:%ld:%ls0", base, gen, k ? L"probe" : L"hold");
			CHECK(!drop_owner_ace(K_MUTEX, obj), "%ls", obj);
		}
		swprintf(obj, 200, L"%ls:%ld", base, gen);
		for (int k = 0; k < 2; k++) {
			/* The peer's ACE never lets it write the control region, or the pointer. */
			HANDLE w = OpenFileMappingW(FILE_MAP_WRITE, FALSE, k ? base : obj);
			DWORD e = GetLastError();

			if (w)
				CloseHandle(w);
			CHECK(!w && e == ERROR_ACCESS_DENIED,
			      "mode %o, a peer's ACE only: %ls opened for writing (%lu)", cases[i].mode,
			      k ? base : obj, w ? 0ul : (unsigned long)e);
		}
		err = ml_client_connect(&c, name, NULL);
		CHECK(err == cases[i].want, "mode %o, a peer's ACE only: connect %d (%s), want %d",
		      cases[i].mode, err, ml_strerror(err), cases[i].want);
		if (!err) {
			int fd = ml_chan_fd(c);

			CHECK(fd >= 0, "mode %o: ml_chan_fd: %s", cases[i].mode, ml_strerror(fd));
			CHECK(ml_chan_send(c, ML_PRIO_HIGH, "up", 2) == 0, "send");
			CHECK(ml_chan_wait(d, 5 * SEC) == 0, "the daemon's wait");
			n = ml_chan_recv(d, NULL, &cl, buf, sizeof(buf));
			CHECK(n == 2, "daemon recv %d", n);
			CHECK(ml_chan_reply(d, cl, ML_PRIO_HIGH, "down", 4) == 0, "reply");
			CHECK(WaitForSingleObject((HANDLE)(intptr_t)fd, 5000) == WAIT_OBJECT_0,
			      "mode %o: the client's event never signalled", cases[i].mode);
			n = ml_chan_recv(c, NULL, NULL, buf, sizeof(buf));
			CHECK(n == 4, "client recv %d", n);
			st->size = sizeof(*st);
			err = ml_chan_inspect(name, 0, st);
			/* client[] is by slot; cl is an id. */
			CHECK(err == 0 && st->daemon_alive == 1 &&
			      st->client[ML_CHAN_SLOT(cl)].alive == 1,
			      "mode %o: inspect %d, daemon %d, client %#x %d", cases[i].mode, err,
			      st->daemon_alive, cl, st->client[ML_CHAN_SLOT(cl)].alive);
			ml_chan_close(c);
		}
		c = NULL;
		ml_chan_close(d);
		d = NULL;
	}
	printf("    a peer admitted by the group's or other's ACE alone talks (0660, 0666, 0606); "
	       "0640, 0600 refuse it; none opens the control region or the pointer for writing\n");
out:
	free(st);
	ml_chan_close(c);
	ml_chan_close(d);
}

/* ---- the daemon's pipe, from a hostile peer ------------------------------ */

/* The pipe a channel's daemon serves, as its pointer mapping names it. */
static bool pipe_of(const char *chan, wchar_t *out, size_t n)
{
	wchar_t name[160];
	HANDLE h;
	char *p;
	bool ok = false;

	swprintf(name, 160, L"Local\\memlink.%hs", chan);
	h = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
	p = h ? MapViewOfFile(h, FILE_MAP_READ, 0, 0, 4096) : NULL;
	if (p) {
		/* After the generation (4 bytes), a pad (4) and the size (8). */
		ok = strnlen(p + 16, 40) == 32;
		if (ok)
			swprintf(out, n, L"\\\\.\\pipe\\memlink.%.32hs", p + 16);
		UnmapViewOfFile(p);
	}
	if (h)
		CloseHandle(h);
	return ok;
}

/* A raw connection to the pipe, in message mode; NULL on failure. */
static HANDLE raw_dial(const wchar_t *pipe)
{
	DWORD mode = PIPE_READMODE_MESSAGE;

	for (int i = 0; i < 500; i++) {
		HANDLE h = CreateFileW(pipe, GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES,
				       0, NULL, OPEN_EXISTING, 0, NULL);

		if (h != INVALID_HANDLE_VALUE) {
			SetNamedPipeHandleState(h, &mode, NULL, NULL);
			return h;
		}
		if (GetLastError() != ERROR_PIPE_BUSY)
			return NULL;
		Sleep(10);
	}
	return NULL;
}

/*
 * What the daemon does with a raw connection within ms: 1 it dropped it
 * (broken), 0 it still holds it, silent; > 1: that many bytes arrived.
 */
static int raw_fate(HANDLE h, DWORD ms)
{
	for (DWORD t = 0;; t += 10) {
		DWORD avail = 0;

		if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL))
			return 1;
		if (avail)
			return (int)avail + 1;
		if (t >= ms)
			return 0;
		Sleep(10);
	}
}

/*
 * Peers that break the protocol lose their connection and hurt nobody:
 * garbage is dropped at once, an overlong hello and one of another
 * version get EPROTO (kept until they go, not to lose it unread), eight peers that say nothing (every listening
 * instance) are dropped after the hello timeout while a real client that
 * waits for an instance still connects, and a joined peer that speaks
 * after its reply is dropped and its slot freed (both slots serve real
 * clients then).
 */
static void test_pipe_hostile(void)
{
	struct ml_chan_opts o = { .size = sizeof(o), .max_clients = 2, .ring_size = 4096,
				  .max_msg = 64 };
	struct ml__ww_hello_raw {
		uint32_t magic;
		uint16_t version, kind;
		uint32_t flags, pad;
	} hello = { 0x4d4c5750u, 1, 1, 0, 0 };
	ml_chan *d = NULL, *c = NULL, *c2 = NULL;
	HANDLE raw[8] = { 0 }, h = NULL;
	wchar_t pipe[200];
	char name[64], big[100] = { 0 }, buf[512];
	DWORD n;
	int err, dropped = 0;

	chan_name(name, sizeof(name), "pipe-hostile");
	err = ml_daemon_create(&d, name, &o);
	CHECK(err == 0, "create: %s", ml_strerror(err));
	CHECK(pipe_of(name, pipe, 200), "no pipe in the pointer mapping");
	/* Garbage: dropped without a word. */
	h = raw_dial(pipe);
	CHECK(h && WriteFile(h, "xyz", 3, &n, NULL), "garbage: %lu", GetLastError());
	CHECK(raw_fate(h, 5000) == 1, "garbage: not dropped");
	CloseHandle(h);
	h = NULL;
	/* A hello one byte too long, one of another version: EPROTO, then dropped. */
	for (int k = 0; k < 2; k++) {
		DWORD len = sizeof(hello) + (k ? 0 : 1);

		hello.version = k ? 99 : 1;
		memcpy(big, &hello, sizeof(hello));
		h = raw_dial(pipe);
		CHECK(h && WriteFile(h, big, len, &n, NULL), "bad hello %d: %lu", k, GetLastError());
		CHECK(raw_fate(h, 5000) > 1 && ReadFile(h, buf, sizeof(buf), &n, NULL) && n >= 12 &&
		      *(int32_t *)(buf + 8) == EPROTO, "bad hello %d: no EPROTO reply", k);
		/* Not gone: the daemon lets go after its timeout all the same. */
		CHECK(raw_fate(h, 10000) == 1, "bad hello %d: never dropped", k);
		CloseHandle(h);
		h = NULL;
	}
	hello.version = 1;
	/* Every instance held by a silent peer: a client still gets in. */
	for (int i = 0; i < 8; i++) {
		raw[i] = raw_dial(pipe);
		CHECK(raw[i], "silent peer %d: %lu", i, GetLastError());
	}
	err = ml_client_connect(&c, name, NULL);
	CHECK(err == 0, "connect past 8 silent peers: %s", ml_strerror(err));
	for (int i = 0; i < 8; i++)
		dropped += raw_fate(raw[i], 5000) == 1;
	CHECK(dropped == 8, "%d of 8 silent peers dropped", dropped);
	ml_chan_close(c);
	c = NULL;
	/* Joined, then speaking: dropped, and its slot goes to others. */
	h = raw_dial(pipe);
	CHECK(h && WriteFile(h, &hello, sizeof(hello), &n, NULL), "join: %lu", GetLastError());
	CHECK(raw_fate(h, 5000) > 1 && ReadFile(h, buf, sizeof(buf), &n, NULL) && n > 16 &&
	      *(int32_t *)(buf + 8) == 0, "join: no slot");
	CHECK(WriteFile(h, "!", 1, &n, NULL), "speak: %lu", GetLastError());
	CHECK(raw_fate(h, 5000) == 1, "a joined peer that spoke: not dropped");
	for (int64_t end = now_ns() + 10 * SEC; now_ns() < end;) {
		ml_chan_wait(d, 20 * 1000000);
		err = ml_client_connect(&c, name, NULL);
		if (err != -ECONNREFUSED)
			break;
	}
	CHECK(err == 0, "connect: %s", ml_strerror(err));
	err = ml_client_connect(&c2, name, NULL);
	CHECK(err == 0, "both slots free again: %s", ml_strerror(err));
	printf("    garbage, 8 silent peers, a joined peer that spoke: dropped; an overlong "
	       "hello, another version: EPROTO; clients served\n");
out:
	for (int i = 0; i < 8; i++)
		if (raw[i])
			CloseHandle(raw[i]);
	if (h)
		CloseHandle(h);
	ml_chan_close(c2);
	ml_chan_close(c);
	ml_chan_close(d);
}

/*
 * The daemon's HANDLE (ml_chan_fd): signalled by any client's send, once
 * armed, though each client rings a daemon bell of its own.
 */
static void test_daemon_handle(void)
{
	struct ml_chan_opts o = { .size = sizeof(o), .max_clients = 3, .ring_size = 4096,
				  .max_msg = 64 };
	ml_chan *d = NULL, *c[3] = { 0 };
	char name[64], b[8];
	int fd, err, got = 0;

	chan_name(name, sizeof(name), "dhandle");
	err = ml_daemon_create(&d, name, &o);
	CHECK(err == 0, "create: %s", ml_strerror(err));
	fd = ml_chan_fd(d);
	CHECK(fd >= 0, "ml_chan_fd: %s", ml_strerror(fd));
	for (int i = 0; i < 3; i++) {
		err = ml_client_connect(&c[i], name, NULL);
		CHECK(err == 0, "connect %d: %s", i, ml_strerror(err));
	}
	for (int i = 0; i < 3; i++) {
		/* Drain what is there (arrivals), then one send: the HANDLE wakes. */
		while (ml_chan_recv(d, NULL, NULL, b, sizeof(b)) >= 0)
			got++;
		CHECK(ml_chan_send(c[i], ML_PRIO_HIGH, "x", 1) == 0, "send %d", i);
		CHECK(WaitForSingleObject((HANDLE)(intptr_t)fd, 5000) == WAIT_OBJECT_0,
		      "client %d's send did not signal the daemon's HANDLE", i);
		for (int64_t end = now_ns() + 5 * SEC; now_ns() < end;)
			if (ml_chan_recv(d, NULL, NULL, b, sizeof(b)) == 1) {
				got++;
				break;
			}
	}
	CHECK(got == 3, "%d of 3 messages", got);
	printf("    the daemon's HANDLE woke for each of 3 clients' sends\n");
out:
	for (int i = 0; i < 3; i++)
		ml_chan_close(c[i]);
	ml_chan_close(d);
}

/*
 * The namespace: a Global\ channel is found with ML_CHAN_GLOBAL only, and
 * a Local\ one of the same name is another channel.
 */
static void test_global(void)
{
	struct ml_chan_opts g = { .size = sizeof(g), .flags = ML_CHAN_GLOBAL };
	ml_chan *d = NULL, *c = NULL, *l = NULL;
	char name[64], buf[8];
	wchar_t obj[160];
	HANDLE h;
	int err, n;

	chan_name(name, sizeof(name), "global");
	err = ml_daemon_create(&d, name, &g);
	CHECK(err == 0, "create in Global\\: %s", ml_strerror(err));
	swprintf(obj, 160, L"Global\\memlink.%hs", name);
	h = OpenFileMappingW(FILE_MAP_READ, FALSE, obj);
	CHECK(h, "no %ls", obj);
	CloseHandle(h);
	err = ml_client_connect(&c, name, NULL);
	CHECK(err == -ENOENT, "connect without ML_CHAN_GLOBAL: %d (%s)", err, ml_strerror(err));
	c = NULL;
	err = ml_client_connect(&c, name, &g);
	CHECK(err == 0, "connect with ML_CHAN_GLOBAL: %s", ml_strerror(err));
	err = ml_chan_send(c, ML_PRIO_HIGH, "g", 1);
	CHECK(err == 0, "send: %s", ml_strerror(err));
	n = ml_chan_recv(d, NULL, NULL, buf, sizeof(buf));
	CHECK(n == 1 && buf[0] == 'g', "recv %d", n);
	err = ml_daemon_create(&l, name, NULL);
	CHECK(err == 0, "a Local\\ channel of the same name: %s", ml_strerror(err));
	CHECK(ml_chan_list(0, find_name, name) == 1, "the Local\\ one is listed");
	ml_chan_close(l);
	l = NULL;
	CHECK(ml_chan_list(0, find_name, name) == 0, "a Global\\ channel is listed");
out:
	ml_chan_close(l);
	ml_chan_close(c);
	ml_chan_close(d);
}

/* ---- naps ------------------------------------------------------------------ */

/* A daemon and one client in this process, on a small ring. */
static int small_pair(const char *tag, ml_chan **d, ml_chan **c, char *name, size_t len)
{
	struct ml_chan_opts o = { .size = sizeof(o), .max_clients = 1, .ring_size = 4096,
				  .max_msg = 64 };
	int err;

	chan_name(name, len, tag);
	err = ml_daemon_create(d, name, &o);
	return err ? err : ml_client_connect(c, name, NULL);
}

/*
 * Naps shorter than a tick stay short. Judged by the fastest of many, so
 * that no load can fail it: Sleep(1) never returns in less than a
 * millisecond (on Windows a 15.6 ms tick), so the old naps' fastest was
 * 1 ms or more. Through the API: ml_chan_send_wait on a full lane, 300 us
 * (yields, then 20 us naps); the static build also times ml__os_nap():
 * 20 us (spun) under 1 ms, 300 us (a high-resolution timer) under 2 ms,
 * as wine's timers fire on whole milliseconds: a tick would be 15.6 ms.
 */
static void test_naps(void)
{
	ml_chan *d = NULL, *c = NULL;
	char name[64], msg[64] = { 0 };
	int64_t best = INT64_MAX;
	int err, full = 0;

	err = small_pair("naps", &d, &c, name, sizeof(name));
	CHECK(err == 0, "pair: %s", ml_strerror(err));
	while (ml_chan_send(c, ML_PRIO_LOW, msg, sizeof(msg)) == 0)
		full++;
	for (int i = 0; i < 50; i++) {
		int64_t t = now_ns();

		err = ml_chan_send_wait(c, 0, ML_PRIO_LOW, msg, sizeof(msg), 300000);
		t = now_ns() - t;
		CHECK(err == -EAGAIN, "send_wait on a full lane: %d (%s)", err, ml_strerror(err));
		CHECK(t >= 300000, "send_wait gave up after %lld ns, before its 300 us", (long long)t);
		best = t < best ? t : best;
	}
	printf("    lane full after %d; send_wait(300 us) on it: fastest of 50 %.0f us\n", full,
	       (double)best / 1e3);
	CHECK(best < 1000000, "every send_wait(300 us) took 1 ms or more (fastest %.0f us): "
	      "naps as long as a tick", (double)best / 1e3);
#ifdef ML_WIN_STATIC
	{
		static const uint64_t lens[] = { 20000, 300000 };

		for (size_t k = 0; k < 2; k++) {
			best = INT64_MAX;
			for (int i = 0; i < 100; i++) {
				int64_t t = now_ns();

				ml__os_nap(lens[k]);
				t = now_ns() - t;
				CHECK(t >= (int64_t)lens[k], "a %llu ns nap took %lld ns",
				      (unsigned long long)lens[k], (long long)t);
				best = t < best ? t : best;
			}
			printf("    ml__os_nap(%llu us): fastest of 100 %.0f us (%s)\n",
			       (unsigned long long)lens[k] / 1000, (double)best / 1e3,
			       k ? (ml__win_nap_hires() ? "high-resolution timer" :
							  "no high-resolution timer: spun") :
				   "spun, yielding");
			CHECK(best < (k ? 2000000 : 1000000), "naps of %llu us all took %d ms or more",
			      (unsigned long long)lens[k] / 1000, k ? 2 : 1);
		}
	}
#endif
out:
	ml_chan_close(c);
	ml_chan_close(d);
}

/* ---- probes ---------------------------------------------------------------- */

struct inspector {
	char name[64];
	unsigned rounds;
	volatile LONG alive, dead, errors;
};

static DWORD WINAPI inspect_main(void *arg)
{
	struct inspector *in = arg;
	struct ml_chan_status *st = calloc(1, sizeof(*st));

	for (unsigned i = 0; st && i < in->rounds; i++) {
		st->size = sizeof(*st);
		if (ml_chan_inspect(in->name, 0, st))
			InterlockedIncrement(&in->errors);
		else if (st->daemon_alive == 1)
			InterlockedIncrement(&in->alive);
		else if (st->daemon_alive == 0)
			InterlockedIncrement(&in->dead);
		else
			InterlockedIncrement(&in->errors);
	}
	free(st);
	return 0;
}

/*
 * Probers at once never take a dead daemon for a live one: its client
 * keeps the channel open, four threads inspect it 100 times each, and
 * every one of the 400 answers is "dead" (before the probe lock, two
 * probes at once made one of them see the other as the holder).
 */
static void test_probe_dead(void)
{
	struct inspector in = { .rounds = 100 };
	HANDLE d = NULL, th[4] = { 0 };
	ml_chan *c = NULL;
	int err;

	chan_name(in.name, sizeof(in.name), "probe-dead");
	d = spawn("idle %s", in.name);
	CHECK(d, "spawn");
	err = connect_retry(&c, in.name, NULL, 20 * SEC);
	CHECK(err == 0, "connect: %s", ml_strerror(err));
	TerminateProcess(d, 9);
	WaitForSingleObject(d, 10000);
	for (int i = 0; i < 4; i++)
		th[i] = CreateThread(NULL, 0, inspect_main, &in, 0, NULL);
	for (int i = 0; i < 4; i++)
		if (th[i])
			WaitForSingleObject(th[i], 60000);
	printf("    400 inspections of a dead daemon's channel: %ld dead, %ld alive, %ld errors\n",
	       in.dead, in.alive, in.errors);
	CHECK(in.alive == 0 && in.errors == 0 && in.dead == 400, "a dead daemon seen alive");
out:
	for (int i = 0; i < 4; i++)
		if (th[i])
			CloseHandle(th[i]);
	ml_chan_close(c);
	reap(&d);
}

#ifdef ML_WIN_STATIC
/*
 * A client's own objects (lib/win/win.c): its area and its two bells,
 * named by the token its connection alone carried, each owned by the
 * daemon's user with a protected DACL of that user and the client's user
 * (one ACE here: wine has one user) and no label unless above medium;
 * the client holds its bell with SYNCHRONIZE | EVENT_MODIFY_STATE and the
 * daemon's with EVENT_MODIFY_STATE only, so it cannot wait on it; another
 * connection's token is another.
 */
static void test_peer_objects(void)
{
	ml_chan *d = NULL, *c = NULL, *c2 = NULL;
	struct ml_chan_opts o = { .size = sizeof(o), .max_clients = 2, .ring_size = 4096,
				  .max_msg = 64 };
	struct ml__shm *s;
	struct ml__win *st;
	char name[64];
	int err;

	chan_name(name, sizeof(name), "peerobj");
	err = ml_daemon_create(&d, name, &o);
	CHECK(err == 0, "create: %s", ml_strerror(err));
	err = ml_client_connect(&c, name, NULL);
	CHECK(err == 0, "connect: %s", ml_strerror(err));
	err = ml_client_connect(&c2, name, NULL);
	CHECK(err == 0, "connect 2: %s", ml_strerror(err));
	s = (struct ml__shm *)c;
	st = s->win;
	CHECK(strcmp(st->status.token, ((struct ml__shm *)c2)->win->status.token),
	      "two connections, one token");
	{
		static const wchar_t *const what[] = { L"area", L"cb", L"db" };
		TOKEN_USER *user = token_info(TokenUser);
		wchar_t obj[200];

		CHECK(user, "token");
		for (int k = 0; k < 3; k++) {
			PSID owner = NULL;
			PACL dacl = NULL;
			PSECURITY_DESCRIPTOR sd = NULL;
			ACCESS_ALLOWED_ACE *a = NULL;
			HANDLE h;
			DWORD e;
			bool ok;

			swprintf(obj, 200, L"%ls:%ls.%hs", st->region, what[k], st->status.token);
			h = k ? OpenEventW(READ_CONTROL, FALSE, obj) :
				OpenFileMappingW(READ_CONTROL, FALSE, obj);
			CHECK(h, "open %ls: %lu", obj, GetLastError());
			e = GetSecurityInfo(h, SE_KERNEL_OBJECT,
					    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
					    &owner, NULL, &dacl, NULL, &sd);
			ok = !e && owner && EqualSid(owner, user->User.Sid) && dacl &&
			     dacl->AceCount == 1 && GetAce(dacl, 0, (void **)&a) &&
			     EqualSid(&a->SidStart, user->User.Sid);
			if (sd)
				LocalFree(sd);
			CloseHandle(h);
			CHECK(ok, "%ls: not the daemon's user's alone", obj);
		}
		free(user);
	}
	{
		/* What the client holds: the rights it uses, no more. */
		typedef LONG(NTAPI * qo_fn)(HANDLE, int, void *, ULONG, ULONG *);
		qo_fn qo = (qo_fn)(void (*)(void))GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
								  "NtQueryObject");
		struct {
			ULONG attr;
			ACCESS_MASK granted;
			ULONG rest[20];
		} info;
		ULONG n;

		CHECK(qo, "NtQueryObject");
		CHECK(!qo(st->cbell[st->own], 0, &info, sizeof(info), &n) &&
		      info.granted == (SYNCHRONIZE | EVENT_MODIFY_STATE),
		      "the client's bell: rights %#lx", (unsigned long)info.granted);
		CHECK(!qo(st->dbell[0], 0, &info, sizeof(info), &n) &&
		      info.granted == EVENT_MODIFY_STATE,
		      "the daemon's bell: rights %#lx, want EVENT_MODIFY_STATE only",
		      (unsigned long)info.granted);
		CHECK(WaitForSingleObject(st->dbell[0], 0) == WAIT_FAILED &&
		      GetLastError() == ERROR_ACCESS_DENIED,
		      "the client could wait on the daemon's bell");
	}
	printf("    a client's area and bells: the daemon's user's and the client's only; "
	       "the daemon's bell can be rung, not waited on\n");
out:
	ml_chan_close(c2);
	ml_chan_close(c);
	ml_chan_close(d);
}
#endif

#ifdef ML_WIN_STATIC
struct prober {
	struct ml__shm s;
	volatile LONG stop, probes, alive, errors;
};

/* Ask the backend, as the daemon's scan and inspection do, without end. */
static DWORD WINAPI probe_main(void *arg)
{
	struct prober *p = arg;

	while (!p->stop) {
		int r = p->s.be->alive(&p->s, 1);

		InterlockedIncrement(&p->probes);
		if (r == 1)
			InterlockedIncrement(&p->alive);
		else if (r)
			InterlockedIncrement(&p->errors);
	}
	return 0;
}

/*
 * A probe never makes a connect fail, and never calls a free slot held.
 * Three threads probe the one client slot of a channel without pause,
 * through the backend (ml_chan_inspect and the daemon only ask about
 * slots in use; a slot changes hands between their look at its state and
 * their probe). With nobody holding it, not one probe says "alive"; then
 * 100 connects, each to the slot just freed, all succeed (before the
 * probe lock, a connect that met a probe found the slot taken:
 * -ECONNREFUSED). Since clients' slots are their pipe connections, an
 * onlooker's probe of one reads what the daemon said when it looked.
 */
static void test_probe_connect(void)
{
	struct prober *p = calloc(1, sizeof(*p));
	HANDLE th[3] = { 0 };
	ml_chan *d = NULL, *c = NULL;
	char name[64];
	long alive_free = 0, refused = 0;
	int err;

	CHECK(p, "calloc");
	err = small_pair("probe", &d, &c, name, sizeof(name));
	CHECK(err == 0, "pair: %s", ml_strerror(err));
	ml_chan_close(c);
	c = NULL;
	while (ml_chan_connected(d))
		;
	p->s.be = &ml__backend_win;
	/* An onlooker: a backend open() that is not one asks for a slot. */
	p->s.inspect = true;
	snprintf(p->s.name, sizeof(p->s.name), "%s", name);
	p->s.fd = -1;
	for (unsigned i = 0; i < ML__BELLS; i++)
		p->s.bell_h[i] = -1;
	err = p->s.be->open(&p->s);
	CHECK(err == 0, "backend open: %s", ml_strerror(err));
	for (int i = 0; i < 3; i++)
		th[i] = CreateThread(NULL, 0, probe_main, p, 0, NULL);
	/* The slot is free: nobody may be seen holding it. */
	while (p->probes < 3000)
		Sleep(1);
	alive_free = p->alive;
	for (int i = 0; i < 100; i++) {
		err = ml_client_connect(&c, name, NULL);
		if (err == -ECONNREFUSED) {
			refused++;
			continue;
		}
		CHECK(err == 0, "connect %d: %s", i, ml_strerror(err));
		ml_chan_close(c);
		c = NULL;
		/* The daemon lays the slot out anew and frees it. */
		while (ml_chan_connected(d))
			;
	}
	p->stop = 1;
	for (int i = 0; i < 3; i++)
		if (th[i])
			WaitForSingleObject(th[i], 10000);
	printf("    %ld probes: a free slot seen held %ld times; 100 connects under them, %ld refused\n",
	       p->probes, alive_free, refused);
	CHECK(alive_free == 0, "a free slot seen held by %ld of the first probes", alive_free);
	CHECK(refused == 0, "%ld of 100 connects refused because of a probe", refused);
	CHECK(p->errors == 0, "%ld probes failed", p->errors);
out:
	if (p) {
		p->stop = 1;
		for (int i = 0; i < 3; i++)
			if (th[i]) {
				WaitForSingleObject(th[i], 10000);
				CloseHandle(th[i]);
			}
		if (p->s.be && p->s.base)
			p->s.be->close(&p->s);
		free(p);
	}
	ml_chan_close(c);
	ml_chan_close(d);
}
#endif

/* ---- DllMain ----------------------------------------------------------------- */

/*
 * Role "dll PATH NAME free|exit": load the DLL, which opens a daemon and
 * a client of NAME; then unload it (its DllMain closes them with the
 * loader lock held) and see the channel gone, or exit with them open.
 * Exit 0 when what happened is what should.
 */
static int role_dll(const char *path, const char *name, const char *how)
{
	HMODULE m = LoadLibraryA(path);
	int (*open_fn)(const char *);
	ml_chan *c = NULL;
	int err;

	if (!m) {
		printf("dll: LoadLibrary %s: %lu\n", path, GetLastError());
		return 1;
	}
	open_fn = (int (*)(const char *))(uintptr_t)GetProcAddress(m, "mlt_dll_open");
	err = open_fn ? open_fn(name) : -ENOSYS;
	if (err) {
		printf("dll: open %s: %s\n", name, ml_strerror(err));
		return 1;
	}
	if (!strcmp(how, "exit"))
		exit(0); /* DllMain closes them as the process ends */
	FreeLibrary(m);
	/* Unloaded: closed. Still loaded (libmemlink.a's holder threads pin
	 * the DLL they run in while its channels are open): open. */
	m = GetModuleHandleA(path);
	err = ml_client_connect(&c, name, NULL);
	ml_chan_close(c);
	printf("    FreeLibrary: %s, the channel %s\n", m ? "still loaded" : "unloaded",
	       err == -ENOENT ? "gone" : err ? ml_strerror(err) : "there");
	return (!m && err == -ENOENT) || (m && err == 0) ? 0 : 1;
}

/*
 * ml_chan_close from DllMain, on unload and at process exit, for a DLL
 * linked with memlink.dll and one linked with libmemlink.a: it returns
 * (it waited for holder threads to exit before, which a DLL_PROCESS_DETACH
 * does not allow: a deadlock) and the channel goes.
 */
static void test_dllmain(void)
{
	static const char *const dlls[] = { "mlt-dll.dll", "mlt-dll-static.dll" };
	static const char *const hows[] = { "free", "exit" };
	char path[MAX_PATH], name[64], *slash;
	HANDLE p = NULL;
	ml_chan *c = NULL;
	long code;
	int err;

	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++) {
			snprintf(path, sizeof(path), "%s", self);
			slash = strrchr(path, '\\');
			snprintf(slash ? slash + 1 : path,
				 sizeof(path) - (size_t)(slash ? slash + 1 - path : 0), "%s", dlls[i]);
			snprintf(name, sizeof(name), "mlw-%lu-dll%d%d",
				 (unsigned long)GetCurrentProcessId(), i, j);
			p = spawn("dll %s %s %s", path, name, hows[j]);
			CHECK(p, "spawn");
			code = exit_code(&p, 30000);
			CHECK(code == 0, "%s, %s: exit %ld (-1: hung in DllMain)", dlls[i], hows[j], code);
			err = ml_client_connect(&c, name, NULL);
			CHECK(err == -ENOENT, "%s, %s: the channel is still there (%d)", dlls[i],
			      hows[j], err);
			c = NULL;
		}
	printf("    closed from DllMain: on FreeLibrary and at exit, with memlink.dll and with "
	       "libmemlink.a\n");
out:
	ml_chan_close(c);
	reap(&p);
}

/* ---- listing --------------------------------------------------------------- */

/* A channel's record file (lib/win/records.c), as the library names it. */
static void record_path(const char *chan, wchar_t *buf, size_t n)
{
	size_t at;

	GetEnvironmentVariableW(L"LOCALAPPDATA", buf, (DWORD)n);
	wcscat(buf, L"\\memlink\\ch-");
	at = wcslen(buf);
	for (; *chan; chan++) {
		if (*chan >= 'A' && *chan <= 'Z') {
			buf[at++] = L'^';
			buf[at++] = (wchar_t)(*chan - 'A' + 'a');
		} else {
			buf[at++] = (wchar_t)*chan;
		}
	}
	buf[at] = 0;
	wcscat(buf, L".rec");
}

/*
 * ml_chan_list and ml_chan_gc through the daemons' records: names that
 * differ only in case are two channels; a live daemon's record is not
 * collected; a killed daemon's is gone with its process; one nothing
 * closed (a machine that went down) is listed, has no channel, and gc
 * removes it, by name and in a sweep.
 */
static void test_records(void)
{
	ml_chan *up = NULL, *low = NULL;
	struct ml_chan_status *st = calloc(1, sizeof(*st));
	char upper[64], lower[64], stale[64], killed[64];
	wchar_t path[MAX_PATH];
	HANDLE f, d = NULL;
	int err;

	CHECK(st, "calloc");
	snprintf(upper, sizeof(upper), "mlw-%lu-Rec", (unsigned long)GetCurrentProcessId());
	snprintf(lower, sizeof(lower), "mlw-%lu-rec", (unsigned long)GetCurrentProcessId());
	snprintf(stale, sizeof(stale), "mlw-%lu-Stale.", (unsigned long)GetCurrentProcessId());
	chan_name(killed, sizeof(killed), "rec-killed");
	err = ml_daemon_create(&up, upper, NULL);
	CHECK(err == 0, "create %s: %s", upper, ml_strerror(err));
	err = ml_daemon_create(&low, lower, NULL);
	CHECK(err == 0, "create %s: %s", lower, ml_strerror(err));
	CHECK(ml_chan_list(0, find_name, upper) == 1, "%s not listed", upper);
	CHECK(ml_chan_list(0, find_name, lower) == 1, "%s not listed", lower);
	CHECK(ml_chan_gc(upper, 0) == 0, "gc took a live daemon's record");
	CHECK(ml_chan_list(0, find_name, upper) == 1, "%s not listed after gc", upper);
	ml_chan_close(up);
	up = NULL;
	CHECK(ml_chan_list(0, find_name, upper) == 0, "%s listed after close", upper);
	CHECK(ml_chan_list(0, find_name, lower) == 1, "%s gone with %s", lower, upper);

	/* Killed: the system deletes the record with the process's handles. */
	d = spawn("idle %s", killed);
	CHECK(d, "spawn");
	for (int64_t end = now_ns() + 20 * SEC; !ml_chan_list(0, find_name, killed);) {
		CHECK(now_ns() < end, "%s never listed", killed);
		Sleep(10);
	}
	TerminateProcess(d, 9);
	WaitForSingleObject(d, 10000);
	CHECK(ml_chan_list(0, find_name, killed) == 0, "a killed daemon's record is left");

	/* Left by a crash of the machine: nothing holds it. */
	record_path(stale, path, MAX_PATH);
	f = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
	CHECK(f != INVALID_HANDLE_VALUE, "cannot write %ls", path);
	CloseHandle(f);
	CHECK(ml_chan_list(0, find_name, stale) == 1, "a stale record (%s) is not listed", stale);
	st->size = sizeof(*st);
	err = ml_chan_inspect(stale, 0, st);
	CHECK(err == -ENOENT, "inspect of a stale record's channel: %d", err);
	CHECK(ml_chan_gc(stale, 0) == 1, "gc of a stale record by name");
	CHECK(ml_chan_list(0, find_name, stale) == 0, "the stale record survived gc");
	f = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
	CHECK(f != INVALID_HANDLE_VALUE, "cannot write %ls", path);
	CloseHandle(f);
	err = ml_chan_gc(NULL, 0);
	CHECK(err >= 1, "a sweep removed %d records", err);
	CHECK(ml_chan_list(0, find_name, stale) == 0, "the stale record survived the sweep");
	CHECK(ml_chan_list(0, find_name, lower) == 1, "the sweep took a live daemon's record");
	printf("    live records listed and kept, case kept apart; a killed daemon's gone with it; "
	       "a stale one collected\n");
out:
	free(st);
	ml_chan_close(up);
	ml_chan_close(low);
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
	{ "mode: every object's DACL (GetSecurityInfo)", test_dacl },
	{ "mode: a peer's ACE alone suffices, a refusal holds", test_dacl_enforced },
	{ "ML_CHAN_GLOBAL: the Global\\ namespace", test_global },
	{ "the daemon's pipe: hostile peers dropped, clients served", test_pipe_hostile },
	{ "ml_chan_fd: the daemon's HANDLE hears every client", test_daemon_handle },
	{ "naps shorter than a tick stay short", test_naps },
	{ "probes never see a dead daemon alive", test_probe_dead },
#ifdef ML_WIN_STATIC
	{ "a client's own objects: its DACL, its rights", test_peer_objects },
#endif
#ifdef ML_WIN_STATIC
	{ "probes never fail a connect, never see a free slot held", test_probe_connect },
#endif
	{ "ml_chan_close from DllMain", test_dllmain },
	{ "ml_chan_list, ml_chan_gc: channel records", test_records },
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
	if (argc >= 5 && !strcmp(argv[1], "dll"))
		return role_dll(argv[2], argv[3], argv[4]);
	if (argc > 1 && strcmp(argv[1], "only")) {
		fprintf(stderr, "usage: %s [only TEXT | echo|idle|flood|linger|dll ...]\n", argv[0]);
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

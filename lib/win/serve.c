// SPDX-License-Identifier: MIT
/*
 * The daemon's service thread (win backend): it serves the daemon's named
 * pipe, learns who each client is, gives it a slot with an area and
 * doorbells of its own (ml__chan_claim), and watches its connection, so
 * that a client that dies is known at once. It sleeps in
 * WaitForMultipleObjects on overlapped I/O (its stop event, ML__WW_PENDING
 * instances waiting for a client or its hello, one per connected client:
 * at most 1 + 8 + 32 handles) and never touches the rings. Events rather
 * than a completion port: every connection's I/O is cancelled and waited
 * for in place before its OVERLAPPED is used again or freed, which a port
 * would only report later, and 41 handles fit one wait.
 *
 * A peer may be hostile. Whatever it sends is read into a buffer of a
 * hello's size and one byte more, without blocking; a connection that
 * sends anything else, or more, loses it; one that says nothing loses it
 * after ML__WW_HELLO_MS; a connected client that sends anything at all is
 * dropped as if it had gone. Nothing it does stops the thread serving
 * others (a reply that cannot be written at once is given up on).
 */
#include "win.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/*
 * An instance's state: none, listening, waiting for a hello, answered
 * and waiting for the peer to go (a disconnect would discard the answer
 * unread), or a client's connection (peer[]).
 */
enum { C_NONE, C_LISTEN, C_HELLO, C_BYE, C_PEER };

#define REPLY_MS 1000

void ml__win_changed(struct ml__shm *s)
{
	atomic_fetch_add_explicit(&s->changes, 1, memory_order_release);
	SetEvent(s->win->ev0);
}

/* A new instance of the daemon's pipe; `first` makes sure nobody else has the name. */
static HANDLE pipe_new(struct ml__win *st, bool first)
{
	HANDLE h = CreateNamedPipeW(st->pipe_name,
				    PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
					    (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
				    PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT |
					    PIPE_REJECT_REMOTE_CLIENTS,
				    PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, &st->pipe_sa);

	return h == INVALID_HANDLE_VALUE ? NULL : h;
}

/*
 * Stop what a connection's overlapped I/O was doing, and wait till it has.
 * Only where some is pending: a call that failed at once may leave the
 * OVERLAPPED looking pending (wine does), and the wait would never end.
 */
static void conn_cancel(struct ml__win_conn *c)
{
	DWORD n;

	if ((c->state == C_LISTEN && !c->connected) || c->state == C_HELLO || c->state == C_BYE ||
	    c->state == C_PEER) {
		CancelIoEx(c->pipe, &c->ov);
		GetOverlappedResult(c->pipe, &c->ov, &n, TRUE);
	}
}

/* Listen for the next client on this instance. */
static void conn_listen(struct ml__win *st, struct ml__win_conn *c)
{
	if (!c->pipe)
		c->pipe = pipe_new(st, false);
	if (!c->pipe) {
		c->state = C_NONE;
		return;
	}
	memset(&c->ov, 0, sizeof(c->ov));
	ResetEvent(c->ev);
	c->ov.hEvent = c->ev;
	c->state = C_LISTEN;
	c->connected = false;
	if (ConnectNamedPipe(c->pipe, &c->ov))
		return; /* the event is set */
	if (GetLastError() == ERROR_PIPE_CONNECTED) {
		/* Nothing pending: no overlapped result to ask for. */
		c->connected = true;
		SetEvent(c->ev);
	} else if (GetLastError() != ERROR_IO_PENDING) {
		/* Broken: a new instance next time round. */
		CloseHandle(c->pipe);
		c->pipe = NULL;
		c->state = C_NONE;
	}
}

/* Let this instance's client go, and listen again. */
static void conn_reset(struct ml__win *st, struct ml__win_conn *c)
{
	conn_cancel(c);
	if (c->pipe)
		DisconnectNamedPipe(c->pipe);
	conn_listen(st, c);
}

/* One overlapped read into c->in (a hello), or of one byte (a peer). */
static bool conn_read(struct ml__win_conn *c, DWORD len)
{
	memset(&c->ov, 0, sizeof(c->ov));
	ResetEvent(c->ev);
	c->ov.hEvent = c->ev;
	if (ReadFile(c->pipe, &c->in, len, NULL, &c->ov))
		return true;
	return GetLastError() == ERROR_IO_PENDING || GetLastError() == ERROR_MORE_DATA;
}

static void reply(struct ml__win_conn *c, const struct ml__ww_reply *r)
{
	OVERLAPPED ov = { 0 };
	DWORD n;

	ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!ov.hEvent)
		return;
	if (!WriteFile(c->pipe, r, sizeof(*r), NULL, &ov) && GetLastError() == ERROR_IO_PENDING &&
	    WaitForSingleObject(ov.hEvent, REPLY_MS) != WAIT_OBJECT_0) {
		CancelIoEx(c->pipe, &ov);
		GetOverlappedResult(c->pipe, &ov, &n, TRUE);
	}
	CloseHandle(ov.hEvent);
}

/*
 * Answered: wait for the peer to read and go (a read that ends when it
 * closes), at most ML__WW_HELLO_MS, then listen again.
 */
static void bye(struct ml__win *st, struct ml__win_conn *c, uint64_t now)
{
	c->state = C_BYE;
	c->since_ns = now;
	if (!conn_read(c, 1)) {
		c->state = C_NONE; /* nothing pending to cancel */
		conn_reset(st, c);
	}
}

static void refuse(struct ml__win *st, struct ml__win_conn *c, const struct ml__ww_hello *h,
		   int err)
{
	struct ml__ww_reply r = {
		.magic = ML__WW_MAGIC, .version = ML__WW_VERSION, .kind = h->kind, .err = err,
	};

	c->state = C_NONE; /* no I/O pending */
	reply(c, &r);
	bye(st, c, ml__now_ns());
}

/*
 * The client's user, from its token: by impersonating it (the client lets
 * us identify it, no more), else from its process's token. NULL: unknown.
 */
static PSID client_sid(struct ml__win_conn *c)
{
	HANDLE tok = NULL, proc;
	PSID sid = NULL;

	if (ImpersonateNamedPipeClient(c->pipe)) {
		if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tok))
			tok = NULL;
		RevertToSelf();
	}
	if (!tok && c->pid) {
		proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, c->pid);
		if (proc) {
			if (!OpenProcessToken(proc, TOKEN_QUERY, &tok))
				tok = NULL;
			CloseHandle(proc);
		}
	}
	if (tok) {
		sid = ml__win_token_sid(tok);
		CloseHandle(tok);
	}
	return sid;
}

static void inspect(struct ml__shm *s, struct ml__win_conn *c, const struct ml__ww_hello *h)
{
	struct ml__win *st = s->win;
	struct ml__ww_reply r = {
		.magic = ML__WW_MAGIC,
		.version = ML__WW_VERSION,
		.kind = h->kind,
		.region_size = s->len,
		.npeers = ML__BELLS - 1,
		.daemon_pid = (uint32_t)GetCurrentProcessId(),
	};

	for (unsigned b = 1; b < ML__BELLS; b++) {
		r.peer[b - 1].alive = st->peer[b].state == C_PEER &&
				      InterlockedCompareExchange(&st->live[b], 0, 0);
		r.peer[b - 1].pid = st->peer[b].state == C_PEER ? st->peer[b].pid : 0;
	}
	reply(c, &r);
}

static void drop_peer(struct ml__shm *s, unsigned b);

/*
 * Connections that broke already, before a claim: a client that left
 * closes its pipe before a newcomer can ask for its slot, which must not
 * find the slot held for want of our having looked.
 */
static void reap_peers(struct ml__shm *s)
{
	struct ml__win *st = s->win;

	for (unsigned b = 1; b < ML__BELLS; b++)
		if (st->peer[b].state == C_PEER && WaitForSingleObject(st->peer[b].ev, 0) == WAIT_OBJECT_0)
			drop_peer(s, b);
}

/* A JOIN: a slot, and the memory and doorbells to go with it. */
static void join(struct ml__shm *s, struct ml__win_conn *c, const struct ml__ww_hello *h)
{
	struct ml__win *st = s->win;
	struct ml__ww_reply r = {
		.magic = ML__WW_MAGIC,
		.version = ML__WW_VERSION,
		.kind = h->kind,
		.region_size = s->len,
		.area_size = s->area_len,
	};
	struct ml__win_conn *p;
	int bell;

	st->claim_sid = client_sid(c);
	if (!st->claim_sid) {
		refuse(st, c, h, EACCES);
		return;
	}
	reap_peers(s);
	bell = ml__chan_claim(s);
	free(st->claim_sid);
	st->claim_sid = NULL;
	if (bell < 0) {
		refuse(st, c, h, -bell);
		return;
	}
	/* The daemon looks at the new slot, and then for its client. */
	ml__win_changed(s);
	r.bell = (uint32_t)bell;
	/* What the claim made, as this thread noted it: the slot is the daemon's now. */
	memcpy(r.token, st->made, sizeof(r.token));
	reply(c, &r);
	/* The instance becomes the client's connection; a new one listens. */
	p = &st->peer[bell];
	p->pipe = c->pipe;
	p->pid = c->pid;
	p->state = C_PEER;
	c->pipe = NULL;
	c->state = C_NONE;
	conn_listen(st, c);
	if (!conn_read(p, 1)) {
		/* Gone already: the daemon frees the slot. */
		p->state = C_NONE;
		CloseHandle(p->pipe);
		p->pipe = NULL;
		InterlockedExchange(&st->live[bell], 0);
		ml__win_changed(s);
	}
}

/* Something happened on a pending instance: a client came, or said hello. */
static void pending(struct ml__shm *s, struct ml__win_conn *c, uint64_t now)
{
	struct ml__win *st = s->win;
	const struct ml__ww_hello *h = &c->in.h;
	DWORD n = 0;
	ULONG pid = 0;
	BOOL ok = c->state == C_LISTEN && c->connected ? TRUE :
			GetOverlappedResult(c->pipe, &c->ov, &n, FALSE);

	if (c->state == C_BYE) {
		conn_reset(st, c); /* gone, or it spoke: either way, done */
		return;
	}
	if (c->state == C_LISTEN) {
		if (!ok && GetLastError() != ERROR_PIPE_CONNECTED) {
			conn_reset(st, c);
			return;
		}
		c->pid = GetNamedPipeClientProcessId(c->pipe, &pid) ? (uint32_t)pid : 0;
		c->since_ns = now;
		c->state = C_HELLO;
		if (!conn_read(c, sizeof(c->in))) {
			c->state = C_NONE; /* nothing pending to cancel */
			conn_reset(st, c);
		}
		return;
	}
	/* Too long (ERROR_MORE_DATA), too short, or not a hello of ours. */
	if (!ok || n != sizeof(*h) || h->magic != ML__WW_MAGIC || h->version != ML__WW_VERSION ||
	    h->flags || h->pad || (h->kind != ML__WW_JOIN && h->kind != ML__WW_INSPECT)) {
		if (ok && n >= 8 && h->magic == ML__WW_MAGIC)
			refuse(st, c, h, EPROTO);
		else
			conn_reset(st, c);
		return;
	}
	c->state = C_NONE; /* no I/O pending */
	if (h->kind == ML__WW_INSPECT) {
		inspect(s, c, h);
		bye(st, c, now);
		return;
	}
	join(s, c, h);
}

/* A connected client's pipe has news: it broke (the client is gone), or it spoke. */
static void drop_peer(struct ml__shm *s, unsigned b)
{
	struct ml__win *st = s->win;
	struct ml__win_conn *p = &st->peer[b];

	conn_cancel(p);
	DisconnectNamedPipe(p->pipe);
	CloseHandle(p->pipe);
	p->pipe = NULL;
	p->state = C_NONE;
	InterlockedExchange(&st->live[b], 0);
	ml__win_changed(s);
}

static DWORD WINAPI serve_main(void *arg)
{
	struct ml__shm *s = arg;
	struct ml__win *st = s->win;
	HMODULE mod = st->module;

	for (;;) {
		HANDLE h[1 + ML__WW_PENDING + ML__BELLS];
		struct ml__win_conn *who[1 + ML__WW_PENDING + ML__BELLS];
		uint64_t now = ml__now_ns(), next = UINT64_MAX;
		const uint64_t limit = (uint64_t)ML__WW_HELLO_MS * 1000000;
		DWORD n = 0, r, ms;

		h[n] = st->stop;
		who[n++] = NULL;
		for (unsigned i = 0; i < ML__WW_PENDING; i++) {
			struct ml__win_conn *c = &st->pend[i];

			if (c->state == C_NONE)
				conn_listen(st, c);
			/* Still none (out of resources): try again soon. */
			if (c->state == C_NONE && now + 100000000 < next)
				next = now + 100000000;
			if (c->state == C_HELLO || c->state == C_BYE) {
				/* Silent (or not gone) too long: let go (news would have set the event). */
				if (now - c->since_ns >= limit &&
				    WaitForSingleObject(c->ev, 0) != WAIT_OBJECT_0) {
					conn_reset(st, c);
				} else if (c->since_ns + limit < next) {
					next = c->since_ns + limit;
				}
			}
			if (c->state != C_NONE) {
				h[n] = c->ev;
				who[n++] = c;
			}
		}
		for (unsigned b = 1; b < ML__BELLS; b++)
			if (st->peer[b].state == C_PEER) {
				h[n] = st->peer[b].ev;
				who[n++] = &st->peer[b];
			}
		ms = next == UINT64_MAX ? INFINITE :
		     next <= now ? 0 : (DWORD)((next - now) / 1000000 + 1);
		r = WaitForMultipleObjects(n, h, FALSE, ms);
		if (r == WAIT_OBJECT_0)
			break;
		/*
		 * The first signalled, and every other one after it: a peer
		 * that keeps connecting must not keep us from a client's
		 * death notice further down the list.
		 */
		for (DWORD k = r - WAIT_OBJECT_0; r > WAIT_OBJECT_0 && k < n; k++) {
			struct ml__win_conn *c = who[k];
			bool peer = c >= st->peer && c < st->peer + ML__BELLS;

			if (k != r - WAIT_OBJECT_0 && WaitForSingleObject(h[k], 0) != WAIT_OBJECT_0)
				continue;
			if (peer && c->state == C_PEER)
				drop_peer(s, (unsigned)(c - st->peer));
			else if (!peer && c->state != C_NONE)
				pending(s, c, ml__now_ns());
		}
		if (r == WAIT_FAILED) {
			Sleep(10);
		}
	}
	/* No I/O of ours may complete into memory the daemon frees. */
	for (unsigned i = 0; i < ML__WW_PENDING + ML__BELLS; i++) {
		struct ml__win_conn *c = i < ML__WW_PENDING ? &st->pend[i] :
				       &st->peer[i - ML__WW_PENDING];

		conn_cancel(c);
		c->state = C_NONE;
	}
	/* From here on the daemon may free everything. */
	SetEvent(st->done);
	if (mod)
		FreeLibraryAndExitThread(mod, 0);
	return 0;
}

/*
 * Daemon, at create(): the pipe's name, new and random, its DACL from the
 * mode, and its first instance, so that the name is ours before the
 * pointer mapping publishes it.
 */
int ml__win_serve_init(struct ml__shm *s)
{
	struct ml__win *st = s->win;
	struct ml__win_sa sa;
	char tok[ML__WW_TOKEN + 1];
	int err = ml__win_random_token(tok);

	if (err)
		return err;
	err = ml__win_sa_new(&sa, st->mode);
	if (err)
		return err;
	/* Keep the pipe's descriptor, for the instances made later. */
	st->pipe_sa = sa.sa[ML__WIN_PIPE];
	sa.sa[ML__WIN_PIPE].lpSecurityDescriptor = NULL;
	ml__win_sa_free(&sa);
	swprintf(st->pipe_name, ML__WIN_NAME_LEN, L"\\\\.\\pipe\\memlink.%hs", tok);
	st->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
	st->done = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!st->stop || !st->done)
		return ml__win_err(GetLastError());
	for (unsigned i = 0; i < ML__WW_PENDING; i++) {
		st->pend[i].ev = CreateEventW(NULL, TRUE, FALSE, NULL);
		st->pend[i].pipe = pipe_new(st, i == 0);
		if (!st->pend[i].ev || !st->pend[i].pipe)
			return i == 0 && GetLastError() == ERROR_ACCESS_DENIED ?
				       -EEXIST : ml__win_err(GetLastError());
	}
	for (unsigned b = 1; b < ML__BELLS; b++) {
		st->peer[b].ev = CreateEventW(NULL, TRUE, FALSE, NULL);
		if (!st->peer[b].ev)
			return ml__win_err(GetLastError());
	}
	memcpy(st->ptr->pipe, tok, sizeof(tok));
	return 0;
}

int ml__win_serve_start(struct ml__shm *s)
{
	struct ml__win *st = s->win;

	st->module = ml__win_pin_self();
	st->thread = CreateThread(NULL, 64 << 10, serve_main, s,
				  STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
	if (!st->thread) {
		if (st->module)
			FreeLibrary(st->module);
		st->module = NULL;
		return ml__win_err(GetLastError());
	}
	return 0;
}

/*
 * Stop the thread: once it says it is done, not once it has exited (a
 * thread's exit needs the loader lock: see win.c); should it be gone
 * already, as at process exit, its handle says so. Then its connections
 * (the thread cancelled their I/O; a thread killed by the process's exit
 * could not, and nothing waits for that I/O then: the process is going).
 */
void ml__win_serve_stop(struct ml__shm *s)
{
	struct ml__win *st = s->win;
	HANDLE both[2];

	if (st->thread) {
		SetEvent(st->stop);
		both[0] = st->done;
		both[1] = st->thread;
		WaitForMultipleObjects(2, both, FALSE, INFINITE);
		CloseHandle(st->thread);
		st->thread = NULL;
	}
	for (unsigned i = 0; i < ML__WW_PENDING + ML__BELLS; i++) {
		struct ml__win_conn *c = i < ML__WW_PENDING ? &st->pend[i] :
				       &st->peer[i - ML__WW_PENDING];

		if (c->pipe)
			CloseHandle(c->pipe);
		if (c->ev)
			CloseHandle(c->ev);
		c->pipe = c->ev = NULL;
		c->state = C_NONE;
	}
	if (st->stop)
		CloseHandle(st->stop);
	if (st->done)
		CloseHandle(st->done);
	st->stop = st->done = NULL;
}

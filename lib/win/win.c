// SPDX-License-Identifier: MIT
/*
 * The "win" backend: pagefile-backed named file mappings and events, a
 * named pipe per daemon, and named mutexes for the daemon's liveness.
 * Each client's lanes are a mapping of its own, shared only between that
 * client and the daemon, and the control region is read-only to clients
 * (issue 20): the Windows form of the linux backend's design.
 *
 * Names, in the session's Local\ namespace, or with ML_CHAN_GLOBAL the
 * machine's Global\ one (':' cannot occur in a channel name, so one
 * channel's objects never collide with another's); T is a token of 128
 * random bits (RtlGenRandom) in hex, new for every daemon and every
 * connection:
 *
 *   memlink.NAME           a 4 KiB "pointer" mapping: which generation
 *                          of the channel is current, its control
 *                          region's size, and its daemon's pipe; like
 *                          the control region, only the daemon writes it
 *   memlink.NAME:lock      mutex: held by the live daemon of NAME
 *   memlink.NAME:G         the control region, generation G: the daemon
 *                          maps it read-write, everyone else read-only
 *                          (FILE_MAP_READ), and its DACL grants no other
 *                          user more than reading, whatever the mode
 *   memlink.NAME:G:hold0   mutex: held by the live daemon (probed by
 *   memlink.NAME:G:probe0  clients and onlookers; see Liveness)
 *   \\.\pipe\memlink.T     the daemon's service (serve.c, win_wire.h):
 *                          local clients only, made with
 *                          FILE_FLAG_FIRST_PIPE_INSTANCE (nobody else
 *                          serves that name) and a DACL from the mode
 *   memlink.NAME:G:area.T  one client's area (chan_layout.h)
 *   memlink.NAME:G:cb.T    auto-reset event: that client's bell
 *   memlink.NAME:G:db.T    auto-reset event: the daemon's bell, as that
 *                          client alone rings it
 *
 * A client says hello on the pipe; the daemon's service thread learns its
 * user (impersonating it, at identification level only) and process,
 * takes a slot for it (ml__chan_claim), makes its area and bells with a
 * DACL for the daemon's user and that client's user alone, and answers
 * with their token on that client's connection only. So a client can
 * name no other client's objects: their names travel on their own pipe.
 * On real Windows an object directory can be listed, names and all, by
 * its session's users: against another user the DACL is what protects;
 * between processes of one user nothing does (each may open the other's
 * process and read its memory, as ptrace(2) may on Linux), and unguessable
 * names are only a second line. Wine keeps and reports DACLs, and checks
 * them on open, but has one user: tests/chan/isolate.c says what it shows.
 *
 * The client's bell may be waited on and set by it (SYNCHRONIZE |
 * EVENT_MODIFY_STATE); its daemon bell only set (EVENT_MODIFY_STATE): no
 * client can wait on a daemon bell and so take wake-ups meant for the
 * daemon, and a client that resets its own daemon bell only loses its own
 * wake-ups. The daemon sleeps on all its clients' daemon bells at once
 * (WaitForMultipleObjects, at most 1 + 32 handles), and on ev0, which its
 * service thread sets when a client comes or goes.
 *
 * Windows cannot remove a name: an object lives while anyone has a handle
 * on it. Clients of a dead daemon may keep its control region mapped, so a
 * new daemon cannot take that region over; it creates the next generation
 * and points memlink.NAME at it instead.
 *
 * Security of the shared objects. The daemon creates the pointer, the
 * lock, the control region and bell 0's mutexes before it publishes the
 * generation, each with a DACL made from the channel's mode (sec.c): no
 * client ever creates one with its own defaults. Everyone else opens
 * them with the rights they use and no more.
 *
 * Liveness. The daemon owns bell 0's named mutex; a mutex whose owner
 * dies becomes abandoned, so alive(0) tries to acquire it without
 * waiting: WAIT_TIMEOUT means someone alive owns it, WAIT_OBJECT_0 or
 * WAIT_ABANDONED means nobody does (and it is released again at once).
 * Every such try, the holder's and a prober's, is made holding the probe
 * lock, a second mutex held for just those two calls: so a try never
 * finds the mutex owned by another try, only by its holder. A client also
 * takes its pipe breaking for the daemon's death. The daemon knows its
 * clients by their connections: the service thread sees one break the
 * moment its process ends, however it ends, and wakes the daemon. Nothing
 * is judged from a PID.
 *
 * A mutex is owned by a thread, not a process, and a thread may
 * re-acquire a mutex it owns; so that neither the exit of the thread that
 * called create() nor a probe from that same thread gives a wrong answer,
 * every held mutex is owned by a small "holder" thread of the backend's,
 * which lives until close() or until the process dies. Letting a mutex go
 * waits until its holder has released it, never for the thread to exit:
 * a thread's exit needs the loader lock, so ml_chan_close() works from
 * DllMain and from a DLL's destructors (the service thread is stopped the
 * same way). The threads keep the module they run in loaded until they
 * are done (FreeLibraryAndExitThread).
 *
 * Sleeping and waking. A bell is an auto-reset named event: the waker
 * SetEvent()s it, the waiter waits on it with the timeout (after chan.c
 * has set its sleeping flag and looked again). A wake that comes before
 * the wait leaves the event signalled, so it is never lost; a stale
 * signal only gives one early return, which callers tolerate. A client
 * bell's only waker is the daemon: when both are in this process (a
 * process-wide note of who is here says so) the client sleeps with
 * WaitOnAddress on its view of the word and the daemon wakes that view
 * with WakeByAddressAll, no kernel object involved (and sets the event
 * too, for a HANDLE from ml_chan_fd()). The daemon's bells are always
 * events: a client of another process may connect at any time.
 *
 * Listing. Named objects cannot be listed portably: each daemon keeps a
 * record file that the system deletes when the daemon goes (records.c).
 */
#include "win.h"

#include <errno.h>
#include <ntsecapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "chan_layout.h"

#define NAME_LEN ML__WIN_NAME_LEN
#define PTR_SIZE 4096u
#define MAX_GENS 64u
/* A probe lock is held for two calls: longer means a stopped process has it. */
#define PROBE_LOCK_MS 2000

/* A mutex owned on our behalf by a thread that outlives the caller's. */
struct ml__win_holder {
	HANDLE mx, px;            /* not ours: the state's handles; px NULL: none */
	HANDLE release, released, done, thread;
	HMODULE module;           /* pinned for the thread, NULL: not needed */
	int result;
	unsigned bell;            /* ~0u: the daemon's name lock */
};

#define ST(s) ((s)->win)

static bool win_available(void)
{
	return true;
}

static void set_region(struct ml__win *st, unsigned gen)
{
	st->gen = gen;
	swprintf(st->region, NAME_LEN, L"%ls:%u", st->chan, gen);
}

int ml__win_random_token(char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[ML__WW_TOKEN / 2];

	if (!RtlGenRandom(r, sizeof(r)))
		return -EIO;
	for (unsigned i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[ML__WW_TOKEN] = 0;
	return 0;
}

/* A token as a peer sent it: exactly ML__WW_TOKEN lower-case hex digits. */
static bool token_ok(const char *t)
{
	for (unsigned i = 0; i < ML__WW_TOKEN; i++)
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return false;
	return t[ML__WW_TOKEN] == 0;
}

/* A connection's object of kind `what` ("area", "cb", "db"). */
static void conn_name(wchar_t *buf, const struct ml__win *st, const wchar_t *what,
		      const char *token)
{
	swprintf(buf, NAME_LEN, L"%ls:%ls.%hs", st->region, what, token);
}

/* ---- in this process --------------------------------------------------- */

/*
 * Who of a channel generation is in this process: its daemon (bell 0,
 * area NULL) or a client (its bell, and its view of its area). A client
 * whose daemon is here sleeps on its bell's word with WaitOnAddress, and
 * the daemon wakes it with WakeByAddressAll on the client's own view: no
 * kernel object on that path, as before areas were private.
 */
struct here {
	struct here *next;
	const wchar_t *region;    /* the state's, which outlives the entry */
	unsigned bell;
	uint8_t *area;
};

static SRWLOCK here_lock = SRWLOCK_INIT;
static struct here *here_head;

static struct here *here_add(const wchar_t *region, unsigned bell, uint8_t *area)
{
	struct here *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->region = region;
	h->bell = bell;
	h->area = area;
	AcquireSRWLockExclusive(&here_lock);
	h->next = here_head;
	here_head = h;
	ReleaseSRWLockExclusive(&here_lock);
	return h;
}

static void here_del(struct here *h)
{
	if (!h)
		return;
	AcquireSRWLockExclusive(&here_lock);
	for (struct here **pp = &here_head; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	ReleaseSRWLockExclusive(&here_lock);
	free(h);
}

/* Is the daemon of `region` in this process? */
static bool daemon_here(const wchar_t *region)
{
	bool found = false;

	AcquireSRWLockShared(&here_lock);
	for (struct here *h = here_head; h && !found; h = h->next)
		found = h->bell == 0 && !wcscmp(h->region, region);
	ReleaseSRWLockShared(&here_lock);
	return found;
}

/*
 * Wake client `bell` of `region` by address if it is in this process:
 * `off` bytes into its view of its area, under the lock, so that the view
 * cannot go meanwhile.
 */
static void wake_here(const wchar_t *region, unsigned bell, size_t off)
{
	AcquireSRWLockShared(&here_lock);
	for (struct here *h = here_head; h; h = h->next)
		if (h->bell == bell && h->area && !wcscmp(h->region, region)) {
			WakeByAddressAll(h->area + off);
			break;
		}
	ReleaseSRWLockShared(&here_lock);
}

/* ---- holding mutexes ---------------------------------------------------- */

/*
 * Try to take mx without waiting, holding its probe lock px (when not
 * NULL) meanwhile; `keep` it, or release it again before px. 0: it was
 * free or abandoned (its owner died), -EBUSY: a live thread owns it.
 */
static int try_take(HANDLE px, HANDLE mx, bool keep)
{
	DWORD r = px ? WaitForSingleObject(px, PROBE_LOCK_MS) : WAIT_OBJECT_0;
	int ret;

	if (r == WAIT_TIMEOUT)
		return -ETIMEDOUT;
	if (r != WAIT_OBJECT_0 && r != WAIT_ABANDONED)
		return ml__win_err(GetLastError());
	r = WaitForSingleObject(mx, 0);
	if (r == WAIT_OBJECT_0 || r == WAIT_ABANDONED) {
		ret = 0;
		if (!keep)
			ReleaseMutex(mx);
	} else {
		ret = r == WAIT_TIMEOUT ? -EBUSY : ml__win_err(GetLastError());
	}
	if (px)
		ReleaseMutex(px);
	return ret;
}

static DWORD WINAPI holder_main(void *arg)
{
	struct ml__win_holder *h = arg;
	HMODULE mod = h->module;
	int r = try_take(h->px, h->mx, true);

	h->result = r;
	/* From here on the caller may free h once it is signalled. */
	SetEvent(h->done);
	if (!r) {
		WaitForSingleObject(h->release, INFINITE);
		ReleaseMutex(h->mx);
		SetEvent(h->released);
	}
	if (mod)
		FreeLibraryAndExitThread(mod, 0);
	return 0;
}

static void holder_free(struct ml__win_holder *h)
{
	if (h->release)
		CloseHandle(h->release);
	if (h->released)
		CloseHandle(h->released);
	if (h->done)
		CloseHandle(h->done);
	if (h->thread)
		CloseHandle(h->thread);
	free(h);
}

/*
 * Keep the module that holds this code loaded while a thread of ours (a
 * holder, the service thread) runs it, unless it is the program itself
 * (never unloaded). NULL: no pin.
 */
HMODULE ml__win_pin_self(void)
{
	HMODULE mod = NULL;

	if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
				GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
				(LPCWSTR)(uintptr_t)holder_main, &mod) ||
	    mod == GetModuleHandleW(NULL))
		return NULL;
	if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
				(LPCWSTR)(uintptr_t)holder_main, &mod))
		return NULL;
	return mod;
}

/* Have a holder thread own `mx`; -EBUSY if someone alive owns it. */
static int holder_start(HANDLE px, HANDLE mx, unsigned bell, struct ml__win_holder **out)
{
	struct ml__win_holder *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return -ENOMEM;
	h->mx = mx;
	h->px = px;
	h->bell = bell;
	h->release = CreateEventW(NULL, TRUE, FALSE, NULL);
	h->released = CreateEventW(NULL, TRUE, FALSE, NULL);
	h->done = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!h->release || !h->released || !h->done)
		goto fail_os;
	h->module = ml__win_pin_self();
	h->thread = CreateThread(NULL, 64 << 10, holder_main, h,
				 STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
	if (!h->thread) {
		if (h->module)
			FreeLibrary(h->module);
		goto fail_os;
	}
	WaitForSingleObject(h->done, INFINITE);
	if (h->result) {
		err = h->result;
		holder_free(h);
		return err;
	}
	*out = h;
	return 0;
fail_os:
	err = ml__win_err(GetLastError());
	holder_free(h);
	return err;
}

/*
 * Let go: once the mutex is released, not once the thread has exited
 * (see above). Should the thread be gone already, as in a DLL's
 * destructors at process exit, its handle says so.
 */
static void holder_stop(struct ml__win_holder *h)
{
	HANDLE both[2];

	if (!h)
		return;
	SetEvent(h->release);
	both[0] = h->released;
	both[1] = h->thread;
	WaitForMultipleObjects(2, both, FALSE, INFINITE);
	holder_free(h);
}

/* ---- bell 0's liveness -------------------------------------------------- */

/*
 * Bell 0's mutexes: the daemon made them with the generation; anyone else
 * opens them on first use. NULL with the error in GetLastError()
 * (ERROR_FILE_NOT_FOUND: nobody has them open, so the generation's daemon
 * and clients are all gone).
 */
static HANDLE bell0_obj(struct ml__shm *s, bool probe)
{
	HANDLE *slot = probe ? &ST(s)->px0 : &ST(s)->mx0;
	HANDLE h = *(HANDLE volatile *)slot, old;
	wchar_t name[NAME_LEN];

	if (h)
		return h;
	swprintf(name, NAME_LEN, L"%ls:%ls0", ST(s)->region, probe ? L"probe" : L"hold");
	h = OpenMutexW(ML__WIN_OPEN_MUTEX, FALSE, name);
	if (!h)
		return NULL;
	old = InterlockedCompareExchangePointer((PVOID volatile *)slot, h, NULL);
	if (old) {
		CloseHandle(h);
		return old;
	}
	return h;
}

/* Daemon: make bell 0's mutexes of this generation; -EEXIST if one was there. */
static int bell0_make(struct ml__win *st, const struct ml__win_sa *sa)
{
	for (int k = 0; k < 2; k++) {
		wchar_t name[NAME_LEN];
		HANDLE h;

		swprintf(name, NAME_LEN, L"%ls:%ls0", st->region, k ? L"probe" : L"hold");
		h = CreateMutexExW((SECURITY_ATTRIBUTES *)&sa->sa[ML__WIN_MUTEX], name, 0,
				   ML__WIN_OPEN_MUTEX);
		if (!h)
			return ml__win_err(GetLastError());
		*(k ? &st->px0 : &st->mx0) = h;
		/* Someone has this generation's objects open: not ours to use. */
		if (GetLastError() == ERROR_ALREADY_EXISTS)
			return -EEXIST;
	}
	return 0;
}

static void bell0_close(struct ml__win *st)
{
	if (st->mx0)
		CloseHandle(st->mx0);
	if (st->px0)
		CloseHandle(st->px0);
	st->mx0 = st->px0 = NULL;
}

/*
 * The daemon holds bell 0 (its mutex, from create()); a client bell is
 * held for its client by the service thread while it admits it
 * (ml__chan_claim), and is let go when its connection breaks. A client
 * holds the one bell it was given.
 */
static int win_hold(struct ml__shm *s, unsigned bell)
{
	struct ml__win *st = ST(s);

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (!s->creator)
		return bell && bell == st->own ? 0 : -EBUSY;
	if (bell == 0)
		return st->held0 ? 0 : holder_start(st->px0, st->mx0, 0, &st->held0);
	/* A slot whose objects are not let go yet is not free either. */
	if (st->area_map[bell] || InterlockedCompareExchange(&st->live[bell], 1, 0) != 0)
		return -EBUSY;
	return 0;
}

static void win_unhold(struct ml__shm *s, unsigned bell)
{
	struct ml__win *st = ST(s);

	if (bell == 0 || bell >= ML__BELLS)
		return;
	if (s->creator) {
		InterlockedExchange(&st->live[bell], 0);
	} else if (bell == st->own && st->pipe) {
		/* Leaving: the daemon's service thread sees the connection break. */
		CloseHandle(st->pipe);
		st->pipe = NULL;
	}
}

static int win_alive(struct ml__shm *s, unsigned bell)
{
	struct ml__win *st = ST(s);
	HANDLE mx, px;
	DWORD avail = 0;
	int r;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (s->creator)
		return bell == 0 ? 1 : InterlockedCompareExchange(&st->live[bell], 0, 0) != 0;
	if (bell) {
		if (!s->inspect)
			return -EINVAL;
		return st->status_ok && bell <= st->status.npeers && st->status.peer[bell - 1].alive;
	}
	/* Any news on a connection that must stay silent: gone, or broken. */
	if (st->pipe && (!PeekNamedPipe(st->pipe, NULL, 0, NULL, &avail, NULL) || avail))
		return 0;
	mx = bell0_obj(s, false);
	px = mx ? bell0_obj(s, true) : NULL;
	if (!mx || !px)
		return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : ml__win_err(GetLastError());
	r = try_take(px, mx, false);
	return r == -EBUSY ? 1 : r;
}

/* ---- a client's objects ------------------------------------------------- */

/*
 * The daemon lets slot i's area and this connection's bells go. Its
 * client, if alive, keeps its own handles: nobody else will ever see them.
 */
static void win_area_free(struct ml__shm *s, unsigned i)
{
	struct ml__win *st = ST(s);
	unsigned b = 1 + i;
	HANDLE h;

	if (i >= ML_CHAN_MAX_CLIENTS)
		return;
	AcquireSRWLockExclusive(&st->arm_lock);
	if (st->relay[b])
		UnregisterWaitEx(st->relay[b], INVALID_HANDLE_VALUE);
	st->relay[b] = NULL;
	ReleaseSRWLockExclusive(&st->arm_lock);
	h = InterlockedExchangePointer((PVOID volatile *)&st->dbell[b], NULL);
	if (h)
		CloseHandle(h);
	if (st->cbell[b])
		CloseHandle(st->cbell[b]);
	st->cbell[b] = NULL;
	if (s->area[i])
		UnmapViewOfFile(s->area[i]);
	s->area[i] = NULL;
	if (st->area_map[b])
		CloseHandle(st->area_map[b]);
	st->area_map[b] = NULL;
}

static VOID CALLBACK relay_main(PVOID ev, BOOLEAN timed_out)
{
	(void)timed_out;
	SetEvent(ev);
}

/* Armed: ev0 is what the daemon's HANDLE is, so it must hear bell b too. */
static void relay_add(struct ml__win *st, unsigned b)
{
	HANDLE db = st->dbell[b];

	if (st->armed && db && !st->relay[b] &&
	    !RegisterWaitForSingleObject(&st->relay[b], db, relay_main, st->ev0, INFINITE,
					 WT_EXECUTEINWAITTHREAD))
		st->relay[b] = NULL;
}

/*
 * A new area and bells for slot i, for the connection being admitted
 * (the service thread, for st->claim_sid): each named by a new token,
 * none there before, each with a DACL for the daemon's user and that
 * client's. The token is noted in st->made for the reply.
 */
static int win_area_new(struct ml__shm *s, unsigned i, size_t len)
{
	struct ml__win *st = ST(s);
	unsigned b = 1 + i;
	SECURITY_ATTRIBUTES sa[3] = { 0 };
	wchar_t name[NAME_LEN];
	char tok[ML__WW_TOKEN + 1];
	HANDLE cb = NULL, db = NULL, m = NULL;
	void *p = NULL;
	int err;

	if (i >= ML_CHAN_MAX_CLIENTS || st->area_map[b] || !st->claim_sid)
		return -EINVAL;
	err = ml__win_random_token(tok);
	if (!err)
		err = ml__win_sa_peer(&sa[0], ML__WIN_MAP, st->claim_sid, ML__WIN_PEER_AREA);
	if (!err)
		err = ml__win_sa_peer(&sa[1], ML__WIN_EVENT, st->claim_sid, ML__WIN_PEER_BELL);
	if (!err)
		err = ml__win_sa_peer(&sa[2], ML__WIN_EVENT, st->claim_sid, ML__WIN_PEER_DBELL);
	if (err)
		goto out;
	err = -EEXIST;
	conn_name(name, st, L"area", tok);
	m = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa[0], PAGE_READWRITE,
			       (DWORD)((uint64_t)len >> 32), (DWORD)len, name);
	if (!m || GetLastError() == ERROR_ALREADY_EXISTS)
		goto fail;
	conn_name(name, st, L"cb", tok);
	cb = CreateEventExW(&sa[1], name, 0, EVENT_ALL_ACCESS);
	if (!cb || GetLastError() == ERROR_ALREADY_EXISTS)
		goto fail;
	conn_name(name, st, L"db", tok);
	db = CreateEventExW(&sa[2], name, 0, EVENT_ALL_ACCESS);
	if (!db || GetLastError() == ERROR_ALREADY_EXISTS)
		goto fail;
	p = MapViewOfFile(m, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, len);
	if (!p)
		goto fail;
	st->area_map[b] = m;
	st->cbell[b] = cb;
	InterlockedExchangePointer((PVOID volatile *)&st->dbell[b], db);
	s->area[i] = p;
	memcpy(st->made, tok, sizeof(tok));
	AcquireSRWLockExclusive(&st->arm_lock);
	relay_add(st, b);
	ReleaseSRWLockExclusive(&st->arm_lock);
	err = 0;
	goto out;
fail:
	if (m || cb || db)
		err = GetLastError() == ERROR_ALREADY_EXISTS ? -EEXIST : ml__win_err(GetLastError());
	else
		err = ml__win_err(GetLastError());
	if (m)
		CloseHandle(m);
	if (cb)
		CloseHandle(cb);
	if (db)
		CloseHandle(db);
out:
	for (int k = 0; k < 3; k++)
		if (sa[k].lpSecurityDescriptor)
			LocalFree(sa[k].lpSecurityDescriptor);
	return err;
}

/* ---- mappings ----------------------------------------------------------- */

static void state_free(struct ml__shm *s)
{
	struct ml__win *st = ST(s);

	if (!st)
		return;
	/* Before any view goes: a daemon here may be waking us by address. */
	here_del(st->here);
	st->here = NULL;
	if (s->creator) {
		ml__win_serve_stop(s);
		for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++)
			win_area_free(s, i);
	} else {
		if (st->own && s->area[st->own - 1])
			UnmapViewOfFile(s->area[st->own - 1]);
		if (st->own)
			s->area[st->own - 1] = NULL;
		if (st->pipe)
			CloseHandle(st->pipe);
		for (unsigned b = 0; b < ML__BELLS; b++) {
			if (st->cbell[b])
				CloseHandle(st->cbell[b]);
			if (st->dbell[b])
				CloseHandle(st->dbell[b]);
			if (st->area_map[b])
				CloseHandle(st->area_map[b]);
		}
	}
	holder_stop(st->held0);
	bell0_close(st);
	if (st->ev0)
		CloseHandle(st->ev0);
	if (st->pipe_sa.lpSecurityDescriptor)
		LocalFree(st->pipe_sa.lpSecurityDescriptor);
	/* The record first: a successor waits for it once it has the lock. */
	if (st->record)
		CloseHandle(st->record);
	holder_stop(st->lock);
	if (st->lock_mx)
		CloseHandle(st->lock_mx);
	if (s->base)
		UnmapViewOfFile(s->base);
	s->base = NULL;
	if (st->map)
		CloseHandle(st->map);
	if (st->ptr)
		UnmapViewOfFile(st->ptr);
	if (st->ptr_map)
		CloseHandle(st->ptr_map);
	free(st->claim_sid);
	free(st);
	s->win = NULL;
}

static int state_new(struct ml__shm *s)
{
	const wchar_t *prefix = s->flags & ML_CHAN_GLOBAL ? L"Global\\memlink." :
							     L"Local\\memlink.";
	struct ml__win *st = calloc(1, sizeof(*st));
	size_t n = wcslen(prefix);

	if (!st)
		return -ENOMEM;
	wcscpy(st->chan, prefix);
	/* Channel names are ASCII (chan.c checks them). */
	for (size_t i = 0; s->name[i] && n + i < NAME_LEN - 1; i++)
		st->chan[n + i] = (wchar_t)(unsigned char)s->name[i];
	InitializeSRWLock(&st->arm_lock);
	s->win = st;
	return 0;
}

/* A dead daemon's object we reopen must be our user's, not a squatter's. */
static int check_mine(HANDLE h)
{
	if (GetLastError() != ERROR_ALREADY_EXISTS)
		return 0;
	return ml__win_mine(h) == 1 ? 0 : -EACCES;
}

static int win_create(struct ml__shm *s, size_t len, unsigned mode)
{
	struct ml__win_sa sa;
	struct ml__win *st;
	wchar_t name[NAME_LEN];
	unsigned gen;
	int err;

	err = ml__win_sa_new(&sa, mode);
	if (err)
		return err;
	err = state_new(s);
	if (err) {
		ml__win_sa_free(&sa);
		return err;
	}
	st = ST(s);
	st->mode = mode;
	swprintf(name, NAME_LEN, L"%ls:lock", st->chan);
	st->lock_mx = CreateMutexExW(&sa.sa[ML__WIN_MUTEX], name, 0,
				     ML__WIN_OPEN_MUTEX | READ_CONTROL);
	if (!st->lock_mx)
		goto fail_os;
	err = check_mine(st->lock_mx);
	if (err)
		goto fail;
	/* A live daemon owns the lock (nobody probes it: clients look at the
	 * generation's bell 0); a dead one's is abandoned and ours to take.
	 */
	err = holder_start(NULL, st->lock_mx, ~0u, &st->lock);
	if (err) {
		err = err == -EBUSY ? -EEXIST : err;
		goto fail;
	}

	/* Read-only to others too: it names the daemon's pipe, which nobody may redirect. */
	st->ptr_map = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa.sa[ML__WIN_CTL], PAGE_READWRITE,
					 0, PTR_SIZE, st->chan);
	if (!st->ptr_map)
		goto fail_os;
	err = check_mine(st->ptr_map);
	if (err)
		goto fail;
	st->ptr = MapViewOfFile(st->ptr_map, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, PTR_SIZE);
	if (!st->ptr)
		goto fail_os;
	/* Past any generation a dead daemon's clients may still have open. */
	gen = (unsigned)st->ptr->gen1;
	for (unsigned k = 0;; k++) {
		if (k == MAX_GENS) {
			err = -EEXIST;
			goto fail;
		}
		set_region(st, gen + k);
		st->map = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa.sa[ML__WIN_CTL],
					     PAGE_READWRITE, (DWORD)((uint64_t)len >> 32),
					     (DWORD)len, st->region);
		if (!st->map)
			goto fail_os;
		if (GetLastError() != ERROR_ALREADY_EXISTS) {
			err = bell0_make(st, &sa);
			if (!err)
				break;
			if (err != -EEXIST)
				goto fail;
			bell0_close(st);
		}
		CloseHandle(st->map);
		st->map = NULL;
	}
	s->base = MapViewOfFile(st->map, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, len);
	if (!s->base)
		goto fail_os;
	s->len = len;
	st->ev0 = CreateEventW(NULL, FALSE, FALSE, NULL);
	if (!st->ev0)
		goto fail_os;
	err = win_hold(s, 0);
	if (!err)
		err = ml__win_serve_init(s);
	if (err)
		goto fail;
	st->here = here_add(st->region, 0, NULL);
	if (!(s->flags & ML_CHAN_GLOBAL))
		st->record = ml__win_record_open(s->name);
	ml__win_sa_free(&sa);
	/* Publish: clients that open the name from now on find this region. */
	InterlockedExchange64(&st->ptr->len, (LONG64)len);
	InterlockedExchange(&st->ptr->gen1, (LONG)(st->gen + 1));
	return 0;
fail_os:
	err = ml__win_err(GetLastError());
fail:
	ml__win_sa_free(&sa);
	state_free(s);
	return err;
}

/* The channel is laid out: let clients in. */
static int win_ready(struct ml__shm *s)
{
	return ml__win_serve_start(s);
}

/* One overlapped transfer on our pipe, waited for up to ms: 0, or -errno. */
static int pipe_io(HANDLE pipe, bool write, void *buf, DWORD len, DWORD *done, DWORD ms)
{
	OVERLAPPED ov = { 0 };
	BOOL ok;
	DWORD e;
	int err = 0;

	ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!ov.hEvent)
		return ml__win_err(GetLastError());
	ok = write ? WriteFile(pipe, buf, len, NULL, &ov) : ReadFile(pipe, buf, len, NULL, &ov);
	if (!ok && GetLastError() != ERROR_IO_PENDING) {
		e = GetLastError();
		err = e == ERROR_MORE_DATA ? -EPROTO :
		      e == ERROR_BROKEN_PIPE || e == ERROR_NO_DATA || e == ERROR_PIPE_NOT_CONNECTED ?
					     -EPIPE : ml__win_err(e);
		goto out;
	}
	if (WaitForSingleObject(ov.hEvent, ms) != WAIT_OBJECT_0) {
		CancelIoEx(pipe, &ov);
		GetOverlappedResult(pipe, &ov, done, TRUE);
		err = -ETIMEDOUT;
		goto out;
	}
	if (!GetOverlappedResult(pipe, &ov, done, FALSE)) {
		e = GetLastError();
		err = e == ERROR_MORE_DATA ? -EPROTO :
		      e == ERROR_BROKEN_PIPE || e == ERROR_NO_DATA || e == ERROR_PIPE_NOT_CONNECTED ?
					     -EPIPE : ml__win_err(e);
	}
out:
	CloseHandle(ov.hEvent);
	return err;
}

/*
 * Connect to the daemon's pipe (waiting while every instance is busy), in
 * message mode, letting the daemon identify us but never act as us.
 */
static int dial(struct ml__win *st)
{
	uint64_t end = ml__now_ns() + (uint64_t)ML__WW_REPLY_MS * 1000000;
	DWORD mode = PIPE_READMODE_MESSAGE, e;

	for (;;) {
		st->pipe = CreateFileW(st->pipe_name, ML__WIN_PIPE_READ | ML__WIN_PIPE_WRITE, 0, NULL,
				       OPEN_EXISTING,
				       FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
					       SECURITY_IDENTIFICATION,
				       NULL);
		if (st->pipe != INVALID_HANDLE_VALUE)
			break;
		st->pipe = NULL;
		e = GetLastError();
		/* No pipe: its daemon is gone (the pointer named one). */
		if (e == ERROR_FILE_NOT_FOUND)
			return -EPIPE;
		if (e != ERROR_PIPE_BUSY)
			return ml__win_err(e);
		if (ml__now_ns() > end)
			return -ETIMEDOUT;
		WaitNamedPipeW(st->pipe_name, 100);
	}
	return SetNamedPipeHandleState(st->pipe, &mode, NULL, NULL) ? 0 :
									ml__win_err(GetLastError());
}

/* The errors a daemon may refuse with; anything else is a broken reply. */
static int refusal(int32_t err)
{
	switch (err) {
	case EACCES:
	case ECONNREFUSED:
	case EPROTO:
		return -err;
	default:
		return -EPROTO;
	}
}

/* Ask the daemon: a slot (JOIN) or its state (INSPECT). */
static int ask(struct ml__shm *s)
{
	struct ml__win *st = ST(s);
	struct ml__ww_hello h = {
		.magic = ML__WW_MAGIC,
		.version = ML__WW_VERSION,
		.kind = s->inspect ? ML__WW_INSPECT : ML__WW_JOIN,
	};
	union {
		struct ml__ww_reply r;
		uint8_t b[sizeof(struct ml__ww_reply) + 1];
	} u;
	struct ml__ww_reply *r = &u.r;
	DWORD n = 0;
	int err = dial(st);

	if (!err)
		err = pipe_io(st->pipe, true, &h, sizeof(h), &n, ML__WW_REPLY_MS);
	if (!err)
		err = pipe_io(st->pipe, false, &u, sizeof(u), &n, ML__WW_REPLY_MS);
	if (err)
		return err;
	if (n < offsetof(struct ml__ww_reply, bell) || r->magic != ML__WW_MAGIC ||
	    r->version != ML__WW_VERSION || r->kind != h.kind)
		return -EPROTO;
	if (r->err)
		return refusal(r->err);
	if (n != sizeof(*r) || r->region_size != s->len)
		return -EPROTO;
	if (s->inspect) {
		if (r->npeers > ML_CHAN_MAX_CLIENTS)
			return -EPROTO;
		st->status = *r;
		st->status_ok = true;
		return 0;
	}
	if (r->bell < 1 || r->bell >= ML__BELLS || r->area_size < 4096 ||
	    r->area_size > SIZE_MAX || !token_ok(r->token))
		return -EPROTO;
	st->status = *r;
	return 0;
}

/*
 * A client's area and bells, as its JOIN reply names them: opened with
 * the rights it uses, no more; the area must be as large as it was said
 * to be.
 */
static int joined(struct ml__shm *s)
{
	struct ml__win *st = ST(s);
	const struct ml__ww_reply *r = &st->status;
	unsigned b = r->bell;
	MEMORY_BASIC_INFORMATION mi;
	wchar_t name[NAME_LEN];
	void *p;

	st->own = b;
	conn_name(name, st, L"cb", r->token);
	st->cbell[b] = OpenEventW(ML__WIN_PEER_BELL, FALSE, name);
	conn_name(name, st, L"db", r->token);
	st->dbell[0] = OpenEventW(ML__WIN_PEER_DBELL, FALSE, name);
	conn_name(name, st, L"area", r->token);
	st->area_map[b] = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, name);
	if (!st->cbell[b] || !st->dbell[0] || !st->area_map[b])
		return ml__win_err(GetLastError());
	p = MapViewOfFile(st->area_map[b], FILE_MAP_READ | FILE_MAP_WRITE, 0, 0,
			  (SIZE_T)r->area_size);
	if (!p)
		return ml__win_err(GetLastError());
	s->area[b - 1] = p;
	if (!VirtualQuery(p, &mi, sizeof(mi)) || mi.RegionSize < (SIZE_T)r->area_size)
		return -EPROTO;
	s->area_len = (size_t)r->area_size;
	s->bell = b;
	st->here = here_add(st->region, b, p);
	return 0;
}

static int win_open(struct ml__shm *s)
{
	struct ml__win *st;
	struct ml__win_ptr *p;
	MEMORY_BASIC_INFORMATION mi;
	char pipe[ML__WW_TOKEN + 1];
	LONG gen1;
	LONG64 len;
	int err = state_new(s);

	if (err)
		return err;
	st = ST(s);
	st->ptr_map = OpenFileMappingW(FILE_MAP_READ, FALSE, st->chan);
	if (!st->ptr_map)
		goto fail_os;
	p = MapViewOfFile(st->ptr_map, FILE_MAP_READ, 0, 0, PTR_SIZE);
	if (!p)
		goto fail_os;
	/* A read-only view: no interlocked read (it would write). */
	gen1 = p->gen1;
	atomic_thread_fence(memory_order_acquire);
	len = p->len;
	memcpy(pipe, p->pipe, sizeof(pipe));
	UnmapViewOfFile(p);
	if (gen1 == 0) {
		err = -ENOENT; /* a daemon is still creating it */
		goto fail;
	}
	if (!token_ok(pipe)) {
		err = -EPROTO;
		goto fail;
	}
	swprintf(st->pipe_name, NAME_LEN, L"\\\\.\\pipe\\memlink.%hs", pipe);
	set_region(st, (unsigned)gen1 - 1);
	/* Only the daemon writes the control region. */
	st->map = OpenFileMappingW(FILE_MAP_READ, FALSE, st->region);
	if (!st->map)
		goto fail_os;
	if (len <= 0 || (uint64_t)len > SIZE_MAX) {
		err = -EPROTO;
		goto fail;
	}
	s->base = MapViewOfFile(st->map, FILE_MAP_READ, 0, 0, (SIZE_T)len);
	if (!s->base)
		goto fail_os;
	if (!VirtualQuery(s->base, &mi, sizeof(mi)) || mi.RegionSize < (SIZE_T)len) {
		err = -EPROTO;
		goto fail;
	}
	s->len = (size_t)len;
	/*
	 * The daemon's bell, now: held open, it stays there to be probed
	 * (abandoned) after the daemon dies. Gone already: so is everyone.
	 */
	if (!bell0_obj(s, false) || !bell0_obj(s, true))
		goto fail_os;
	err = ask(s);
	/* An onlooker of a dead daemon still reads what it left. */
	if (s->inspect && err == -EPIPE) {
		if (st->pipe)
			CloseHandle(st->pipe);
		st->pipe = NULL;
		return 0;
	}
	if (!err && !s->inspect)
		err = joined(s);
	if (err)
		goto fail;
	if (s->inspect) {
		/* The daemon has said all it will. */
		CloseHandle(st->pipe);
		st->pipe = NULL;
	}
	return 0;
fail_os:
	err = ml__win_err(GetLastError());
fail:
	state_free(s);
	return err;
}

static void win_close(struct ml__shm *s)
{
	/* A daemon going away leaves the pointer as it is: its pipe and its
	 * region's bell 0 go, which is what clients look at.
	 */
	if (ST(s))
		state_free(s);
	s->base = NULL;
}

/* ---- sleeping and waking ------------------------------------------------ */

static DWORD to_ms(int64_t timeout_ns)
{
	int64_t ms;

	if (timeout_ns < 0)
		return INFINITE;
	ms = (timeout_ns + 999999) / 1000000;
	return ms >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)ms;
}

/*
 * The daemon sleeps on ev0 and on the daemon bell of every slot in use
 * (armed, ev0 alone: it relays them all). A slot's bell is looked at only
 * once its record says it is taken: before that it is the service
 * thread's, which may still let it go.
 */
static DWORD daemon_sleep(struct ml__shm *s, DWORD ms)
{
	struct ml__win *st = ST(s);
	const struct ml__ctl *ctl = (const struct ml__ctl *)s->base;
	HANDLE h[ML__BELLS];
	DWORD n = 0;

	h[n++] = st->ev0;
	for (unsigned i = 0; !st->armed && i < ML_CHAN_MAX_CLIENTS; i++) {
		HANDLE db;

		if (atomic_load_explicit(&((struct ml__ctl *)ctl)->slot[i].state,
					 memory_order_acquire) == ML__SLOT_FREE)
			continue;
		db = st->dbell[1 + i];
		if (db)
			h[n++] = db;
	}
	return WaitForMultipleObjects(n, h, FALSE, ms);
}

static int win_wait(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word,
		    uint32_t expected, int64_t timeout_ns)
{
	DWORD ms = to_ms(timeout_ns), r;
	HANDLE ev;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (atomic_load_explicit(word, memory_order_acquire) != expected)
		return 0;
	if (s->creator && bell == 0) {
		r = daemon_sleep(s, ms);
	} else if (ST(s)->here && daemon_here(ST(s)->region)) {
		/* Our daemon is in this process: it wakes us by address. */
		if (WaitOnAddress((volatile void *)word, &expected, sizeof(expected), ms))
			return 0;
		return GetLastError() == ERROR_TIMEOUT ? -ETIMEDOUT : ml__win_err(GetLastError());
	} else {
		ev = ST(s)->cbell[bell];
		if (!ev)
			return -EINVAL;
		r = WaitForSingleObject(ev, ms);
	}
	if (r < WAIT_OBJECT_0 + ML__BELLS)
		return 0;
	return r == WAIT_TIMEOUT ? -ETIMEDOUT : ml__win_err(GetLastError());
}

static int win_wake(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word)
{
	struct ml__win *st = ST(s);
	HANDLE ev;

	if (bell >= ML__BELLS)
		return -EINVAL;
	/*
	 * A client of ours in this process sleeps on its own view of the
	 * word; the event is set as well, for a HANDLE from ml_chan_fd().
	 */
	if (s->creator && bell && s->area[bell - 1] && (uint8_t *)word >= s->area[bell - 1] &&
	    (uint8_t *)word < s->area[bell - 1] + s->area_len)
		wake_here(st->region, bell, (size_t)((uint8_t *)word - s->area[bell - 1]));
	/* A client rings its own daemon bell; the daemon a client's bell. */
	ev = s->creator ? (bell ? st->cbell[bell] : st->ev0) : bell == 0 ? st->dbell[0] : NULL;
	if (!ev)
		return -EINVAL;
	return SetEvent(ev) ? 0 : ml__win_err(GetLastError());
}

/*
 * A client's: its bell's auto-reset event, which a wait that returns
 * consumes. The daemon's: ev0, which from now on relays every client's
 * daemon bell (a thread-pool wait per bell). Handle values fit 32 bits
 * (Windows keeps them so for 32-bit processes).
 */
static int win_fd(struct ml__shm *s, unsigned bell)
{
	struct ml__win *st = ST(s);
	HANDLE ev;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (s->creator && bell == 0) {
		AcquireSRWLockExclusive(&st->arm_lock);
		st->armed = true;
		for (unsigned b = 1; b < ML__BELLS; b++)
			relay_add(st, b);
		ReleaseSRWLockExclusive(&st->arm_lock);
		ev = st->ev0;
	} else {
		ev = st->cbell[bell];
	}
	if (!ev)
		return -ENOTSUP;
	if ((uintptr_t)ev > INT32_MAX)
		return -EOVERFLOW;
	return (int)(intptr_t)ev;
}

/* The records of live daemons (records.c); objects vanish by themselves. */
static int win_list(int (*fn)(const char *name, void *arg), void *arg)
{
	return ml__win_record_list(fn, arg);
}

static int win_gc(const char *name)
{
	return ml__win_record_gc(name);
}

const struct ml__backend ml__backend_win = {
	.name = "win",
	.id = ML_BACKEND_WIN,
	.notifies_client_gone = true,
	.private_areas = true,
	.available = win_available,
	.create = win_create,
	.ready = win_ready,
	.open = win_open,
	.area_new = win_area_new,
	.area_free = win_area_free,
	.close = win_close,
	.wait = win_wait,
	.wake = win_wake,
	.hold = win_hold,
	.unhold = win_unhold,
	.alive = win_alive,
	.fd = win_fd,
	.list = win_list,
	.gc = win_gc,
};

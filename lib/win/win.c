// SPDX-License-Identifier: MIT
/*
 * The "win" backend: pagefile-backed named file mappings, named events and
 * WaitOnAddress to sleep and wake, and named mutexes for liveness.
 *
 * Names (all in the session's Local\ namespace; ':' cannot occur in a
 * channel name, so one channel's objects never collide with another's):
 *
 *   Local\memlink.NAME          a 4 KiB "pointer" mapping: which generation
 *                               of the channel is current, and its size
 *   Local\memlink.NAME:lock     mutex: held by the live daemon of NAME
 *   Local\memlink.NAME:G        the channel's region, generation G
 *   Local\memlink.NAME:G:holdN  mutex: held by the live holder of bell N
 *   Local\memlink.NAME:G:bellN  auto-reset event: bell N's doorbell
 *
 * Windows cannot remove a name: an object lives while anyone has a handle
 * on it. Clients of a dead daemon may keep its region mapped, so a new
 * daemon cannot take that region over; it creates the next generation and
 * points Local\memlink.NAME at it instead.
 *
 * Liveness. The holder of a bell owns a named mutex; a mutex whose owner
 * dies becomes abandoned, so alive(bell) tries to acquire it without
 * waiting: WAIT_TIMEOUT means someone alive owns it, WAIT_OBJECT_0 or
 * WAIT_ABANDONED means nobody does (and it is released again at once).
 * Nothing is judged from a PID. A mutex is owned by a thread, not a
 * process, and a thread may re-acquire a mutex it owns; so that neither the
 * exit of the thread that called hold() nor a probe from that same thread
 * gives a wrong answer, every held mutex is owned by a small "holder" thread
 * of the backend's, which lives until unhold() or until the process dies.
 *
 * Sleeping and waking. WaitOnAddress cannot be woken from another process,
 * and a thread cannot sleep on an address and a handle at once, so a bell
 * whose wakers may be in other processes is an auto-reset named event: the
 * waker SetEvent()s it, the waiter waits on it with the timeout (after
 * chan.c has set its sleeping flag and looked again). A wake that comes
 * before the wait leaves the event signalled, so it is never lost; a stale
 * signal only gives one early return, which callers tolerate. A client
 * bell's only waker is the daemon: when both are in this process (the
 * process-wide registry of held bells says so) the client sleeps with
 * WaitOnAddress and the daemon wakes it with WakeByAddressAll, no kernel
 * object involved. The daemon's own bell is always an event, since a
 * client of another process may connect at any time.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "backend.h"

#define NAME_LEN (ML_CHAN_NAME_MAX + 64)
#define PTR_SIZE 4096u
#define MAX_GENS 64u

/* The pointer mapping's contents. */
struct win_ptr {
	volatile LONG gen1; /* current generation + 1; 0: none yet */
	LONG pad;
	volatile LONG64 len; /* that generation's region size */
};

/* A mutex owned on our behalf by a thread that outlives the caller's. */
struct holder {
	struct holder *next;      /* in the process-wide registry */
	HANDLE mx;                /* not ours: the state's handle */
	HANDLE release, done, thread;
	int result;
	unsigned bell;            /* ~0u: the daemon's name lock */
	wchar_t region[NAME_LEN]; /* which channel generation */
	uint8_t *base;            /* the holder's view of it */
};

struct win_state {
	HANDLE map;                  /* the region */
	HANDLE ptr_map;              /* the pointer mapping (daemon only) */
	struct win_ptr *ptr;
	HANDLE lock_mx;              /* Local\memlink.NAME:lock (daemon only) */
	struct holder *lock;
	HANDLE ev[ML__BELLS];        /* created on first use */
	HANDLE mx[ML__BELLS];
	struct holder *held[ML__BELLS];
	unsigned gen;
	wchar_t chan[NAME_LEN];      /* Local\memlink.NAME */
	wchar_t region[NAME_LEN];    /* Local\memlink.NAME:G */
};

#define ST(s) ((struct win_state *)(s)->h[1])

/* Bells held in this process, for "is the daemon in this process?". */
static SRWLOCK reg_lock = SRWLOCK_INIT;
static struct holder *reg_head;

static int win_err(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
		return -ENOENT;
	case ERROR_ACCESS_DENIED:
		return -EACCES;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
	case ERROR_COMMITMENT_LIMIT:
		return -ENOMEM;
	case ERROR_ALREADY_EXISTS:
		return -EEXIST;
	case ERROR_INVALID_HANDLE: /* the name belongs to an object of another type */
		return -EPROTO;
	default:
		return -EIO;
	}
}

static bool win_available(void)
{
	return true;
}

static void obj_name(wchar_t *buf, const wchar_t *base, const wchar_t *what, unsigned n)
{
	swprintf(buf, NAME_LEN, L"%ls:%ls%u", base, what, n);
}

static void set_region(struct win_state *st, unsigned gen)
{
	st->gen = gen;
	swprintf(st->region, NAME_LEN, L"%ls:%u", st->chan, gen);
}

/* ---- holding mutexes ---------------------------------------------------- */

static DWORD WINAPI holder_main(void *arg)
{
	struct holder *h = arg;
	DWORD r = WaitForSingleObject(h->mx, 0);

	h->result = r == WAIT_OBJECT_0 || r == WAIT_ABANDONED ? 0 :
		    r == WAIT_TIMEOUT ? -EBUSY : win_err(GetLastError());
	SetEvent(h->done);
	if (h->result)
		return 0;
	WaitForSingleObject(h->release, INFINITE);
	ReleaseMutex(h->mx);
	return 0;
}

static void holder_free(struct holder *h)
{
	if (h->release)
		CloseHandle(h->release);
	if (h->done)
		CloseHandle(h->done);
	if (h->thread)
		CloseHandle(h->thread);
	free(h);
}

/* Have a holder thread own `mx`; -EBUSY if someone alive owns it. */
static int holder_start(HANDLE mx, const struct ml__shm *s, unsigned bell, struct holder **out)
{
	struct holder *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return -ENOMEM;
	h->mx = mx;
	h->bell = bell;
	h->base = s->base;
	wcscpy(h->region, ST(s)->region);
	h->release = CreateEventW(NULL, TRUE, FALSE, NULL);
	h->done = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!h->release || !h->done)
		goto fail_os;
	h->thread = CreateThread(NULL, 64 << 10, holder_main, h,
				 STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
	if (!h->thread)
		goto fail_os;
	WaitForSingleObject(h->done, INFINITE);
	if (h->result) {
		err = h->result;
		WaitForSingleObject(h->thread, INFINITE);
		holder_free(h);
		return err;
	}
	AcquireSRWLockExclusive(&reg_lock);
	h->next = reg_head;
	reg_head = h;
	ReleaseSRWLockExclusive(&reg_lock);
	*out = h;
	return 0;
fail_os:
	err = win_err(GetLastError());
	holder_free(h);
	return err;
}

static void holder_stop(struct holder *h)
{
	struct holder **pp;

	if (!h)
		return;
	AcquireSRWLockExclusive(&reg_lock);
	for (pp = &reg_head; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	ReleaseSRWLockExclusive(&reg_lock);
	SetEvent(h->release);
	WaitForSingleObject(h->thread, INFINITE);
	holder_free(h);
}

/* Where this process's holder of `bell` of `region` maps it, or NULL. */
static uint8_t *held_here(const wchar_t *region, unsigned bell)
{
	uint8_t *base = NULL;

	AcquireSRWLockShared(&reg_lock);
	for (struct holder *h = reg_head; h; h = h->next)
		if (h->bell == bell && !wcscmp(h->region, region)) {
			base = h->base;
			break;
		}
	ReleaseSRWLockShared(&reg_lock);
	return base;
}

/* The handle in *slot, created under `name` on first use by any thread. */
static HANDLE lazy_handle(HANDLE *slot, const wchar_t *region, const wchar_t *what,
			  unsigned bell, bool event)
{
	wchar_t name[NAME_LEN];
	HANDLE h = *(HANDLE volatile *)slot, old;

	if (h)
		return h;
	obj_name(name, region, what, bell);
	h = event ? CreateEventW(NULL, FALSE, FALSE, name) : CreateMutexW(NULL, FALSE, name);
	if (!h)
		return NULL;
	old = InterlockedCompareExchangePointer(slot, h, NULL);
	if (old) {
		CloseHandle(h);
		return old;
	}
	return h;
}

static HANDLE bell_mutex(struct ml__shm *s, unsigned bell)
{
	return lazy_handle(&ST(s)->mx[bell], ST(s)->region, L"hold", bell, false);
}

static HANDLE bell_event(struct ml__shm *s, unsigned bell)
{
	return lazy_handle(&ST(s)->ev[bell], ST(s)->region, L"bell", bell, true);
}

/* 1: a live thread owns mx; 0: nobody does (an abandoned one is taken back). */
static int probe(HANDLE mx)
{
	DWORD r = WaitForSingleObject(mx, 0);

	if (r == WAIT_TIMEOUT)
		return 1;
	if (r == WAIT_OBJECT_0 || r == WAIT_ABANDONED) {
		ReleaseMutex(mx);
		return 0;
	}
	return win_err(GetLastError());
}

static int win_hold(struct ml__shm *s, unsigned bell)
{
	struct win_state *st = ST(s);
	HANDLE mx;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (st->held[bell])
		return -EBUSY;
	mx = bell_mutex(s, bell);
	if (!mx)
		return win_err(GetLastError());
	return holder_start(mx, s, bell, &st->held[bell]);
}

static void win_unhold(struct ml__shm *s, unsigned bell)
{
	struct win_state *st = ST(s);

	if (bell >= ML__BELLS || !st->held[bell])
		return;
	holder_stop(st->held[bell]);
	st->held[bell] = NULL;
}

static int win_alive(struct ml__shm *s, unsigned bell)
{
	HANDLE mx;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (ST(s)->held[bell])
		return 1;
	mx = bell_mutex(s, bell);
	if (!mx)
		return win_err(GetLastError());
	return probe(mx);
}

/* ---- mappings ----------------------------------------------------------- */

static void state_free(struct ml__shm *s)
{
	struct win_state *st = ST(s);

	if (!st)
		return;
	for (unsigned i = 0; i < ML__BELLS; i++) {
		holder_stop(st->held[i]);
		if (st->ev[i])
			CloseHandle(st->ev[i]);
		if (st->mx[i])
			CloseHandle(st->mx[i]);
	}
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
	free(st);
	s->h[1] = -1;
}

static int state_new(struct ml__shm *s)
{
	static const wchar_t prefix[] = L"Local\\memlink.";
	struct win_state *st = calloc(1, sizeof(*st));
	size_t n = wcslen(prefix);

	if (!st)
		return -ENOMEM;
	wcscpy(st->chan, prefix);
	/* Channel names are ASCII (chan.c checks them). */
	for (size_t i = 0; s->name[i] && n + i < NAME_LEN - 1; i++)
		st->chan[n + i] = (wchar_t)(unsigned char)s->name[i];
	s->h[1] = (intptr_t)st;
	return 0;
}

static int win_create(struct ml__shm *s, size_t len, unsigned mode)
{
	struct win_state *st;
	wchar_t name[NAME_LEN];
	unsigned gen;
	int err;

	(void)mode; /* Local\ objects get the session's default security */
	err = state_new(s);
	if (err)
		return err;
	st = ST(s);
	swprintf(name, NAME_LEN, L"%ls:lock", st->chan);
	st->lock_mx = CreateMutexW(NULL, FALSE, name);
	if (!st->lock_mx)
		goto fail_os;
	/* A live daemon owns the lock (nobody probes it: clients look at the
	 * generation's bell 0); a dead one's is abandoned and ours to take.
	 */
	err = holder_start(st->lock_mx, s, ~0u, &st->lock);
	if (err) {
		err = err == -EBUSY ? -EEXIST : err;
		goto fail;
	}

	st->ptr_map = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
					 PTR_SIZE, st->chan);
	if (!st->ptr_map)
		goto fail_os;
	st->ptr = MapViewOfFile(st->ptr_map, FILE_MAP_ALL_ACCESS, 0, 0, PTR_SIZE);
	if (!st->ptr)
		goto fail_os;
	/* Past any generation a dead daemon's clients may still have mapped. */
	gen = (unsigned)st->ptr->gen1;
	for (unsigned k = 0;; k++) {
		if (k == MAX_GENS) {
			err = -EEXIST;
			goto fail;
		}
		set_region(st, gen + k);
		st->map = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE,
					     (DWORD)((uint64_t)len >> 32), (DWORD)len, st->region);
		if (!st->map)
			goto fail_os;
		if (GetLastError() != ERROR_ALREADY_EXISTS)
			break;
		CloseHandle(st->map);
		st->map = NULL;
	}
	s->base = MapViewOfFile(st->map, FILE_MAP_ALL_ACCESS, 0, 0, len);
	if (!s->base)
		goto fail_os;
	s->len = len;
	err = win_hold(s, 0);
	if (err)
		goto fail;
	/* Publish: clients that open the name from now on find this region. */
	InterlockedExchange64(&st->ptr->len, (LONG64)len);
	InterlockedExchange(&st->ptr->gen1, (LONG)(st->gen + 1));
	return 0;
fail_os:
	err = win_err(GetLastError());
fail:
	state_free(s);
	return err;
}

static int win_open(struct ml__shm *s)
{
	struct win_state *st;
	HANDLE pm;
	struct win_ptr *p;
	MEMORY_BASIC_INFORMATION mi;
	LONG gen1;
	LONG64 len;
	int err = state_new(s);

	if (err)
		return err;
	st = ST(s);
	pm = OpenFileMappingW(FILE_MAP_READ, FALSE, st->chan);
	if (!pm)
		goto fail_os;
	p = MapViewOfFile(pm, FILE_MAP_READ, 0, 0, PTR_SIZE);
	if (!p) {
		err = win_err(GetLastError());
		CloseHandle(pm);
		goto fail;
	}
	/* A read-only view: no interlocked read (it would write). */
	gen1 = p->gen1;
	atomic_thread_fence(memory_order_acquire);
	len = p->len;
	UnmapViewOfFile(p);
	CloseHandle(pm);
	if (gen1 == 0) {
		err = -ENOENT; /* a daemon is still creating it */
		goto fail;
	}
	set_region(st, (unsigned)gen1 - 1);
	st->map = OpenFileMappingW(FILE_MAP_ALL_ACCESS, FALSE, st->region);
	if (!st->map)
		goto fail_os;
	if (len <= 0 || (uint64_t)len > SIZE_MAX) {
		err = -EPROTO;
		goto fail;
	}
	s->base = MapViewOfFile(st->map, FILE_MAP_ALL_ACCESS, 0, 0, (SIZE_T)len);
	if (!s->base)
		goto fail_os;
	if (!VirtualQuery(s->base, &mi, sizeof(mi)) || mi.RegionSize < (SIZE_T)len) {
		err = -EPROTO;
		goto fail;
	}
	s->len = (size_t)len;
	return 0;
fail_os:
	err = win_err(GetLastError());
fail:
	state_free(s);
	return err;
}

static void win_close(struct ml__shm *s)
{
	struct win_state *st = ST(s);

	/* A daemon going away leaves the pointer as it is: its region's bell
	 * 0 is no longer held, which is what clients look at.
	 */
	if (st)
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

static int win_wait(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word,
		    uint32_t expected, int64_t timeout_ns)
{
	DWORD ms = to_ms(timeout_ns), r;
	HANDLE ev;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (atomic_load_explicit(word, memory_order_acquire) != expected)
		return 0;
	if (bell && held_here(ST(s)->region, 0)) {
		/* Our daemon is in this process: it wakes us by address. */
		if (WaitOnAddress((volatile void *)word, &expected, sizeof(expected), ms))
			return 0;
		return GetLastError() == ERROR_TIMEOUT ? -ETIMEDOUT : win_err(GetLastError());
	}
	ev = bell_event(s, bell);
	if (!ev)
		return win_err(GetLastError());
	r = WaitForSingleObject(ev, ms);
	if (r == WAIT_OBJECT_0)
		return 0;
	return r == WAIT_TIMEOUT ? -ETIMEDOUT : win_err(GetLastError());
}

static int win_wake(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word)
{
	uint8_t *there;
	HANDLE ev;

	if (bell >= ML__BELLS)
		return -EINVAL;
	there = bell ? held_here(ST(s)->region, bell) : NULL;
	if (there)
		/*
		 * The client is in this process and sleeps on its own view;
		 * the event is set as well, for a handle from ml_chan_fd().
		 */
		WakeByAddressAll(there + ((uint8_t *)word - s->base));
	ev = bell_event(s, bell);
	if (!ev || !SetEvent(ev))
		return win_err(GetLastError());
	return 0;
}

/*
 * The bell's auto-reset event: a wait on it that returns consumes the
 * signal, which is all the "ack" it needs. Handle values fit 32 bits
 * (Windows keeps them so for 32-bit processes).
 */
static int win_fd(struct ml__shm *s, unsigned bell)
{
	HANDLE ev;

	if (bell >= ML__BELLS)
		return -EINVAL;
	ev = bell_event(s, bell);
	if (!ev)
		return win_err(GetLastError());
	if ((uintptr_t)ev > INT32_MAX)
		return -EOVERFLOW;
	return (int)(intptr_t)ev;
}

/* Named objects cannot be listed, and vanish with their last handle. */
static int win_list(int (*fn)(const char *name, void *arg), void *arg)
{
	(void)fn;
	(void)arg;
	return -ENOTSUP;
}

static int win_gc(const char *name)
{
	(void)name;
	return 0;
}

const struct ml__backend ml__backend_win = {
	.name = "win",
	.id = ML_BACKEND_WIN,
	.available = win_available,
	.create = win_create,
	.open = win_open,
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

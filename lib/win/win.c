// SPDX-License-Identifier: MIT
/*
 * The "win" backend: pagefile-backed named file mappings, named events and
 * WaitOnAddress to sleep and wake, and named mutexes for liveness.
 *
 * Names, in the session's Local\ namespace, or with ML_CHAN_GLOBAL the
 * machine's Global\ one (':' cannot occur in a channel name, so one
 * channel's objects never collide with another's):
 *
 *   memlink.NAME           a 4 KiB "pointer" mapping: which generation
 *                          of the channel is current, and its size
 *   memlink.NAME:lock      mutex: held by the live daemon of NAME
 *   memlink.NAME:G         the channel's region, generation G
 *   memlink.NAME:G:holdN   mutex: held by the live holder of bell N
 *   memlink.NAME:G:probeN  mutex: taken around every try of holdN
 *   memlink.NAME:G:bellN   auto-reset event: bell N's doorbell
 *
 * Windows cannot remove a name: an object lives while anyone has a handle
 * on it. Clients of a dead daemon may keep its region mapped, so a new
 * daemon cannot take that region over; it creates the next generation and
 * points memlink.NAME at it instead.
 *
 * Security. The daemon creates every object of a generation, those of
 * every bell included, before it publishes the generation, each with a
 * DACL made from the channel's mode (sec.c): no client ever creates one
 * with its own defaults, and the objects live as long as the daemon.
 * Everyone else opens them with the rights they use and no more: the
 * pointer to read, the region to read and write, events to wait on and
 * set, mutexes to wait on and release.
 *
 * Liveness. The holder of a bell owns a named mutex; a mutex whose owner
 * dies becomes abandoned, so alive(bell) tries to acquire it without
 * waiting: WAIT_TIMEOUT means someone alive owns it, WAIT_OBJECT_0 or
 * WAIT_ABANDONED means nobody does (and it is released again at once).
 * Every such try, a holder's and a prober's, is made holding the bell's
 * probe lock, a second mutex held for just those two calls: so a try
 * never finds the mutex owned by another try, only by its holder. Without
 * it a connect could find its free slot taken (by a prober, for a moment)
 * and get -ECONNREFUSED, and a prober could take a dead holder for a live
 * one (finding another prober in there). Nothing is judged from a PID.
 *
 * A mutex is owned by a thread, not a process, and a thread may
 * re-acquire a mutex it owns; so that neither the exit of the thread that
 * called hold() nor a probe from that same thread gives a wrong answer,
 * every held mutex is owned by a small "holder" thread of the backend's,
 * which lives until unhold() or until the process dies. Letting a bell go
 * waits until its holder has released the mutex, never for the thread to
 * exit: a thread's exit needs the loader lock, so ml_chan_close() works
 * from DllMain and from a DLL's destructors. The thread keeps the module
 * it runs in loaded until it is done (FreeLibraryAndExitThread).
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
 *
 * Listing. Named objects cannot be listed: each daemon keeps a record
 * file that the system deletes when the daemon goes (records.c).
 */
#include "win.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "backend.h"

#define NAME_LEN (ML_CHAN_NAME_MAX + 64)
#define PTR_SIZE 4096u
#define MAX_GENS 64u
/* A probe lock is held for two calls: longer means a stopped process has it. */
#define PROBE_LOCK_MS 2000

/* The pointer mapping's contents. */
struct win_ptr {
	volatile LONG gen1; /* current generation + 1; 0: none yet */
	LONG pad;
	volatile LONG64 len; /* that generation's region size */
};

/* A mutex owned on our behalf by a thread that outlives the caller's. */
struct holder {
	struct holder *next;      /* in the process-wide registry */
	HANDLE mx, px;            /* not ours: the state's handles; px NULL: none */
	HANDLE release, released, done, thread;
	HMODULE module;           /* pinned for the thread, NULL: not needed */
	int result;
	unsigned bell;            /* ~0u: the daemon's name lock */
	wchar_t region[NAME_LEN]; /* which channel generation */
	uint8_t *base;            /* the holder's view of it */
};

struct ml__win {
	HANDLE map;                  /* the region */
	/*
	 * The pointer mapping: clients keep it open (not mapped), so that a
	 * dead daemon's region stays in reach of inspection while they live.
	 */
	HANDLE ptr_map;
	struct win_ptr *ptr;
	HANDLE lock_mx;              /* memlink.NAME:lock (daemon only) */
	struct holder *lock;
	HANDLE record;               /* daemon: its channel record, or NULL */
	/* The daemon's are made with the generation; others open on first use. */
	HANDLE ev[ML__BELLS];
	HANDLE mx[ML__BELLS];
	HANDLE px[ML__BELLS];
	struct holder *held[ML__BELLS];
	unsigned gen;
	wchar_t chan[NAME_LEN];      /* Local\memlink.NAME or Global\memlink.NAME */
	wchar_t region[NAME_LEN];    /* ...:G */
};

#define ST(s) ((s)->win)

/* Bells held in this process, for "is the daemon in this process?". */
static SRWLOCK reg_lock = SRWLOCK_INIT;
static struct holder *reg_head;

static bool win_available(void)
{
	return true;
}

static void obj_name(wchar_t *buf, const wchar_t *base, const wchar_t *what, unsigned n)
{
	swprintf(buf, NAME_LEN, L"%ls:%ls%u", base, what, n);
}

static void set_region(struct ml__win *st, unsigned gen)
{
	st->gen = gen;
	swprintf(st->region, NAME_LEN, L"%ls:%u", st->chan, gen);
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
	struct holder *h = arg;
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

static void holder_free(struct holder *h)
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
 * Keep the module that holds this code loaded while a holder thread runs
 * it, unless it is the program itself (never unloaded). NULL: no pin.
 */
static HMODULE pin_self(void)
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
static int holder_start(HANDLE px, HANDLE mx, const struct ml__shm *s, unsigned bell,
			struct holder **out)
{
	struct holder *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return -ENOMEM;
	h->mx = mx;
	h->px = px;
	h->bell = bell;
	h->base = s->base;
	wcscpy(h->region, ST(s)->region);
	h->release = CreateEventW(NULL, TRUE, FALSE, NULL);
	h->released = CreateEventW(NULL, TRUE, FALSE, NULL);
	h->done = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!h->release || !h->released || !h->done)
		goto fail_os;
	h->module = pin_self();
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
	AcquireSRWLockExclusive(&reg_lock);
	h->next = reg_head;
	reg_head = h;
	ReleaseSRWLockExclusive(&reg_lock);
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
static void holder_stop(struct holder *h)
{
	struct holder **pp;
	HANDLE both[2];

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
	both[0] = h->released;
	both[1] = h->thread;
	WaitForMultipleObjects(2, both, FALSE, INFINITE);
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

/* ---- the objects of a bell ---------------------------------------------- */

enum bell_obj { OBJ_EVENT, OBJ_HOLD, OBJ_PROBE };

static const wchar_t *const obj_what[] = { L"bell", L"hold", L"probe" };

static HANDLE *obj_slot(struct ml__win *st, enum bell_obj k, unsigned bell)
{
	return k == OBJ_EVENT ? &st->ev[bell] : k == OBJ_HOLD ? &st->mx[bell] : &st->px[bell];
}

/*
 * Bell `bell`'s object of kind k: the daemon made it with the generation;
 * anyone else opens it on first use, with the rights it needs. NULL with
 * the error in GetLastError() (ERROR_FILE_NOT_FOUND: nobody has it open,
 * so the generation's daemon and clients are all gone).
 */
static HANDLE bell_obj(struct ml__shm *s, enum bell_obj k, unsigned bell)
{
	HANDLE *slot = obj_slot(ST(s), k, bell);
	HANDLE h = *(HANDLE volatile *)slot, old;
	wchar_t name[NAME_LEN];

	if (h)
		return h;
	obj_name(name, ST(s)->region, obj_what[k], bell);
	h = k == OBJ_EVENT ? OpenEventW(ML__WIN_OPEN_EVENT, FALSE, name) :
			     OpenMutexW(ML__WIN_OPEN_MUTEX, FALSE, name);
	if (!h)
		return NULL;
	old = InterlockedCompareExchangePointer((PVOID volatile *)slot, h, NULL);
	if (old) {
		CloseHandle(h);
		return old;
	}
	return h;
}

/* Open all of a bell's objects (a client's own, and the daemon's). */
static int bell_open(struct ml__shm *s, unsigned bell)
{
	for (int k = OBJ_EVENT; k <= OBJ_PROBE; k++)
		if (!bell_obj(s, (enum bell_obj)k, bell))
			return ml__win_err(GetLastError());
	return 0;
}

/* Daemon: make every bell's objects of this generation; -EEXIST if one was there. */
static int bells_make(struct ml__win *st, const struct ml__win_sa *sa)
{
	for (unsigned b = 0; b < ML__BELLS; b++)
		for (int k = OBJ_EVENT; k <= OBJ_PROBE; k++) {
			wchar_t name[NAME_LEN];
			HANDLE h;

			obj_name(name, st->region, obj_what[k], b);
			h = k == OBJ_EVENT ?
				    CreateEventExW((SECURITY_ATTRIBUTES *)&sa->sa[ML__WIN_EVENT], name,
						   0, ML__WIN_OPEN_EVENT) :
				    CreateMutexExW((SECURITY_ATTRIBUTES *)&sa->sa[ML__WIN_MUTEX], name,
						   0, ML__WIN_OPEN_MUTEX);
			if (!h)
				return ml__win_err(GetLastError());
			*obj_slot(st, (enum bell_obj)k, b) = h;
			/* Someone has this generation's objects open: not ours to use. */
			if (GetLastError() == ERROR_ALREADY_EXISTS)
				return -EEXIST;
		}
	return 0;
}

static void bells_close(struct ml__win *st)
{
	for (unsigned i = 0; i < ML__BELLS; i++)
		for (int k = OBJ_EVENT; k <= OBJ_PROBE; k++) {
			HANDLE *slot = obj_slot(st, (enum bell_obj)k, i);

			if (*slot)
				CloseHandle(*slot);
			*slot = NULL;
		}
}

static int win_hold(struct ml__shm *s, unsigned bell)
{
	struct ml__win *st = ST(s);
	int err;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (st->held[bell])
		return -EBUSY;
	/* Its event too: a holder's doorbell must not vanish under it. */
	err = bell_open(s, bell);
	if (err)
		return err;
	return holder_start(st->px[bell], st->mx[bell], s, bell, &st->held[bell]);
}

static void win_unhold(struct ml__shm *s, unsigned bell)
{
	struct ml__win *st = ST(s);

	if (bell >= ML__BELLS || !st->held[bell])
		return;
	holder_stop(st->held[bell]);
	st->held[bell] = NULL;
}

static int win_alive(struct ml__shm *s, unsigned bell)
{
	HANDLE mx, px;
	int r;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (ST(s)->held[bell])
		return 1;
	mx = bell_obj(s, OBJ_HOLD, bell);
	px = mx ? bell_obj(s, OBJ_PROBE, bell) : NULL;
	if (!mx || !px)
		return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : ml__win_err(GetLastError());
	r = try_take(px, mx, false);
	return r == -EBUSY ? 1 : r;
}

/* ---- mappings ----------------------------------------------------------- */

static void state_free(struct ml__shm *s)
{
	struct ml__win *st = ST(s);

	if (!st)
		return;
	for (unsigned i = 0; i < ML__BELLS; i++)
		holder_stop(st->held[i]);
	bells_close(st);
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
	err = holder_start(NULL, st->lock_mx, s, ~0u, &st->lock);
	if (err) {
		err = err == -EBUSY ? -EEXIST : err;
		goto fail;
	}

	st->ptr_map = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa.sa[ML__WIN_MAP], PAGE_READWRITE,
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
		st->map = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa.sa[ML__WIN_MAP],
					     PAGE_READWRITE, (DWORD)((uint64_t)len >> 32),
					     (DWORD)len, st->region);
		if (!st->map)
			goto fail_os;
		if (GetLastError() != ERROR_ALREADY_EXISTS) {
			err = bells_make(st, &sa);
			if (!err)
				break;
			if (err != -EEXIST)
				goto fail;
			bells_close(st);
		}
		CloseHandle(st->map);
		st->map = NULL;
	}
	s->base = MapViewOfFile(st->map, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, len);
	if (!s->base)
		goto fail_os;
	s->len = len;
	err = win_hold(s, 0);
	if (err)
		goto fail;
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

static int win_open(struct ml__shm *s)
{
	struct ml__win *st;
	struct win_ptr *p;
	MEMORY_BASIC_INFORMATION mi;
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
	UnmapViewOfFile(p);
	if (gen1 == 0) {
		err = -ENOENT; /* a daemon is still creating it */
		goto fail;
	}
	set_region(st, (unsigned)gen1 - 1);
	st->map = OpenFileMappingW(ML__WIN_OPEN_MAP, FALSE, st->region);
	if (!st->map)
		goto fail_os;
	if (len <= 0 || (uint64_t)len > SIZE_MAX) {
		err = -EPROTO;
		goto fail;
	}
	s->base = MapViewOfFile(st->map, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, (SIZE_T)len);
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
	err = bell_open(s, 0);
	if (err)
		goto fail;
	return 0;
fail_os:
	err = ml__win_err(GetLastError());
fail:
	state_free(s);
	return err;
}

static void win_close(struct ml__shm *s)
{
	struct ml__win *st = ST(s);

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
		return GetLastError() == ERROR_TIMEOUT ? -ETIMEDOUT : ml__win_err(GetLastError());
	}
	ev = bell_obj(s, OBJ_EVENT, bell);
	if (!ev)
		return ml__win_err(GetLastError());
	r = WaitForSingleObject(ev, ms);
	if (r == WAIT_OBJECT_0)
		return 0;
	return r == WAIT_TIMEOUT ? -ETIMEDOUT : ml__win_err(GetLastError());
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
	ev = bell_obj(s, OBJ_EVENT, bell);
	if (!ev || !SetEvent(ev))
		return ml__win_err(GetLastError());
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
	ev = bell_obj(s, OBJ_EVENT, bell);
	if (!ev)
		return ml__win_err(GetLastError());
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

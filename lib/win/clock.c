// SPDX-License-Identifier: MIT
/* Time, process id, yielding, sleeping and page size on Windows. */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include "backend.h"
#include "win.h"

uint64_t ml__now_ns(void)
{
	static volatile LONG64 freq; /* counts per second; fixed at boot */
	LARGE_INTEGER c, f;
	uint64_t hz = (uint64_t)freq;

	if (!hz) {
		QueryPerformanceFrequency(&f);
		hz = (uint64_t)f.QuadPart;
		freq = (LONG64)hz;
	}
	QueryPerformanceCounter(&c);
	/* Split so that counter * 1e9 cannot overflow. */
	return (uint64_t)c.QuadPart / hz * 1000000000u +
	       (uint64_t)c.QuadPart % hz * 1000000000u / hz;
}

/* No uid on Windows; the channel's owner is not checked there. */
uint32_t ml__os_euid(void)
{
	return 0;
}

int ml__os_pid(void)
{
	return (int)GetCurrentProcessId();
}

void ml__os_yield(void)
{
	if (!SwitchToThread())
		Sleep(0);
}

/* Windows keeps no count of preemptions that is cheap to read: spins yield. */
uint64_t ml__os_preempted(void)
{
	return 0;
}

/* Windows 10 1803 and later; older ones refuse the flag. */
#ifndef CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
#define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x2
#endif
/* Below this a nap spins and yields: no timer of Windows is that fine. */
#define NAP_SPIN_NS 50000u

/* 1: high-resolution timers work here, -1: they do not, 0: not known yet. */
static volatile LONG hires = 0;

static void nap_spin(uint64_t end)
{
	while (ml__now_ns() < end)
		ml__os_yield();
}

/*
 * Sleep() counts in system ticks, 15.6 ms unless some process asked
 * for finer ones: a 20 us nap would last a tick. So a short nap spins,
 * yielding; a longer one waits on a high-resolution waitable timer (made
 * for the nap: a timer per thread could not be closed when the thread
 * ends); without those, below a millisecond it spins too. Never shorter
 * than asked: what a timer leaves is spun out.
 */
void ml__os_nap(uint64_t ns)
{
	uint64_t end = ml__now_ns() + ns;
	HANDLE t = NULL;

	if (ns >= NAP_SPIN_NS && hires >= 0) {
		t = CreateWaitableTimerExW(NULL, NULL, CREATE_WAITABLE_TIMER_HIGH_RESOLUTION,
					   TIMER_ALL_ACCESS);
		InterlockedCompareExchange(&hires, t ? 1 : -1, 0);
	}
	if (t) {
		/* Negative: relative, in 100 ns units. */
		LARGE_INTEGER due = { .QuadPart = -(LONGLONG)(ns / 100) };

		if (SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE))
			WaitForSingleObject(t, INFINITE);
		CloseHandle(t);
	} else if (ns >= 1000000) {
		Sleep((DWORD)(ns / 1000000));
	}
	nap_spin(end);
}

/* For tests/win: 1 if naps use high-resolution timers (after a first one). */
int ml__win_nap_hires(void)
{
	return hires > 0;
}

size_t ml__os_page_size(void)
{
	SYSTEM_INFO si;

	/*
	 * Pages: each mapping (the control region, each client's area) is
	 * viewed whole from offset 0, so only the page rounds its size; the
	 * allocation granularity (64 KiB) would make the control region
	 * large enough to pass for one with areas carved after it.
	 */
	GetSystemInfo(&si);
	return si.dwPageSize ? si.dwPageSize : 4096;
}

// SPDX-License-Identifier: MIT
/* Time, process id, yielding, sleeping and page size on Windows. */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include "backend.h"

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

void ml__os_nap(uint64_t ns)
{
	/* Sleep() has millisecond granularity: round up, at least 1 ms. */
	Sleep((DWORD)((ns + 999999) / 1000000));
}

size_t ml__os_page_size(void)
{
	SYSTEM_INFO si;

	/* Views of a mapping are placed on allocation-granularity boundaries. */
	GetSystemInfo(&si);
	return si.dwAllocationGranularity ? si.dwAllocationGranularity : 65536;
}

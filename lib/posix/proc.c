// SPDX-License-Identifier: MIT
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

int ml__os_pid(void)
{
	return (int)getpid();
}

uint32_t ml__os_euid(void)
{
	return (uint32_t)geteuid();
}

void ml__os_yield(void)
{
	sched_yield();
}

uint64_t ml__os_preempted(void)
{
	struct rusage ru;

#ifdef RUSAGE_THREAD
	if (getrusage(RUSAGE_THREAD, &ru))
#else
	if (getrusage(RUSAGE_SELF, &ru)) /* macOS: no per-thread count */
#endif
		return 0;
	return (uint64_t)ru.ru_nivcsw;
}

void ml__os_nap(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	nanosleep(&ts, NULL);
}

size_t ml__os_page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

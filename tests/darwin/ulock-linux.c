// SPDX-License-Identifier: MIT
/*
 * Run the darwin backend on Linux: the two macOS calls it needs besides
 * POSIX, __ulock_wait/__ulock_wake and (with -DSIM_OS_SYNC, linked with
 * -rdynamic so that dlsym() finds them) os_sync_wait_on_address, made of
 * shared futexes. Everything else the backend uses (shm_open, fcntl
 * record locks, link) behaves on Linux as on macOS.
 *
 * They insist on the cross-process forms, as macOS would need: a private
 * wait would work here, between processes, and fail on a Mac.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define UL_COMPARE_AND_WAIT_SHARED 3u
#define ULF_WAKE_ALL 0x00000100u
#define ULF_NO_ERRNO 0x01000000u

int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "darwin sim: %s\n", what);
		abort();
	}
}

/* 0 when woken or the word differed, else -errno. */
static int futex_wait(void *addr, uint32_t value, const struct timespec *ts)
{
	if (syscall(SYS_futex, addr, FUTEX_WAIT, value, ts, NULL, 0) == 0 || errno == EAGAIN)
		return 0;
	return -errno;
}

/* How many were woken. */
static int futex_wake(void *addr, int n)
{
	long r = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);

	return r < 0 ? -errno : (int)r;
}

int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us)
{
	struct timespec ts = { timeout_us / 1000000, (long)(timeout_us % 1000000) * 1000 };
	int r;

	must((operation & 0xff) == UL_COMPARE_AND_WAIT_SHARED, "ulock_wait: not the shared op");
	must(operation & ULF_NO_ERRNO, "ulock_wait: errno form");
	r = futex_wait(addr, (uint32_t)value, timeout_us ? &ts : NULL);
	return r;
}

int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value)
{
	int r;

	(void)wake_value;
	must((operation & 0xff) == UL_COMPARE_AND_WAIT_SHARED, "ulock_wake: not the shared op");
	must(operation & ULF_NO_ERRNO, "ulock_wake: errno form");
	r = futex_wake(addr, operation & ULF_WAKE_ALL ? INT_MAX : 1);
	/* macOS: ENOENT when nobody waited. */
	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

#ifdef SIM_OS_SYNC
#define OS_SYNC_WAIT_ON_ADDRESS_SHARED 0x1u
#define OS_SYNC_WAKE_BY_ADDRESS_SHARED 0x1u
#define OS_CLOCK_MACH_ABSOLUTE_TIME 32u

int os_sync_wait_on_address_with_timeout(void *addr, uint64_t value, size_t size,
					 uint32_t flags, uint32_t clockid, uint64_t timeout_ns);
int os_sync_wake_by_address_all(void *addr, size_t size, uint32_t flags);

/* -1 with errno, like the real ones; a timeout of 0 is EINVAL there. */
int os_sync_wait_on_address_with_timeout(void *addr, uint64_t value, size_t size,
					 uint32_t flags, uint32_t clockid, uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000u),
			       (long)(timeout_ns % 1000000000u) };
	int r;

	must(flags == OS_SYNC_WAIT_ON_ADDRESS_SHARED, "os_sync wait: not shared");
	must(size == 4 && clockid == OS_CLOCK_MACH_ABSOLUTE_TIME, "os_sync wait: size/clock");
	if (timeout_ns == 0) {
		errno = EINVAL;
		return -1;
	}
	r = futex_wait(addr, (uint32_t)value, &ts);
	if (r) {
		errno = -r;
		return -1;
	}
	return 0;
}

int os_sync_wake_by_address_all(void *addr, size_t size, uint32_t flags)
{
	int r;

	must(flags == OS_SYNC_WAKE_BY_ADDRESS_SHARED && size == 4, "os_sync wake: not shared");
	r = futex_wake(addr, INT_MAX);
	if (r <= 0) {
		errno = r == 0 ? ENOENT : -r;
		return -1;
	}
	return 0;
}
#endif

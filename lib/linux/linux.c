// SPDX-License-Identifier: MIT
/*
 * The "linux" backend: a POSIX shared memory object (/dev/shm/memlink.NAME),
 * shared futexes to sleep and wake, and open-file-description locks for
 * liveness: the holder of bell b holds a write lock on byte b of the
 * object. The kernel drops such a lock when the last descriptor of that open
 * file goes, so a crashed or killed process lets go of its bells by itself,
 * and nobody is judged alive or dead from a PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../posix/shm.h"
#include "backend.h"

#define FD(s) ((int)(s)->h[0])

static bool linux_available(void)
{
	return true;
}

/* Lock (F_WRLCK), unlock (F_UNLCK) or, with get, probe byte `bell`. */
static int bell_lock(int fd, unsigned bell, short type, bool get)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)bell,
		.l_len = 1,
	};

	if (fcntl(fd, get ? F_OFD_GETLK : F_OFD_SETLK, &fl))
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	return get ? fl.l_type != F_UNLCK : 0;
}

static int linux_alive(struct ml__shm *s, unsigned bell)
{
	return bell_lock(FD(s), bell, F_WRLCK, true);
}

static int linux_hold(struct ml__shm *s, unsigned bell)
{
	return bell_lock(FD(s), bell, F_WRLCK, false);
}

static void linux_unhold(struct ml__shm *s, unsigned bell)
{
	bell_lock(FD(s), bell, F_UNLCK, false);
}

static int linux_create(struct ml__shm *s, size_t len, unsigned mode)
{
	int fd, err;

	for (int tries = 0; tries < 2; tries++) {
		err = ml__posix_shm_create(s, len, mode, &fd);
		if (err != -EEXIST)
			break;
		/* The name exists: refuse a live daemon's, replace a dead one's. */
		err = ml__posix_shm_open(s, &fd);
		if (err == -ENOENT)
			continue;
		if (err)
			return err;
		err = bell_lock(fd, 0, F_WRLCK, true);
		if (!err)
			ml__posix_shm_unlink_if_ours(s, fd);
		ml__posix_shm_close(s, fd);
		if (err)
			return err == 1 ? -EEXIST : err;
		err = -EEXIST;
	}
	if (err)
		return err;
	s->h[0] = fd;
	err = bell_lock(fd, 0, F_WRLCK, false);
	if (err) {
		ml__posix_shm_unlink_if_ours(s, fd);
		ml__posix_shm_close(s, fd);
		return err;
	}
	return 0;
}

static int linux_open(struct ml__shm *s)
{
	int fd, err = ml__posix_shm_open(s, &fd);

	if (!err)
		s->h[0] = fd;
	return err;
}

static void linux_close(struct ml__shm *s)
{
	if (s->creator)
		ml__posix_shm_unlink_if_ours(s, FD(s));
	ml__posix_shm_close(s, FD(s));
	s->h[0] = -1;
}

static int linux_wait(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word,
		      uint32_t expected, int64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;

	(void)s;
	(void)bell;
	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tp = &ts;
	}
	/* Not FUTEX_PRIVATE: the word is in memory shared between processes. */
	if (syscall(SYS_futex, word, FUTEX_WAIT, expected, tp, NULL, 0)) {
		if (errno == EAGAIN)
			return 0;
		return errno == ETIMEDOUT ? -ETIMEDOUT : -errno;
	}
	return 0;
}

static int linux_wake(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word)
{
	(void)s;
	(void)bell;
	if (syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0) < 0)
		return -errno;
	return 0;
}

static int linux_fd(struct ml__shm *s)
{
	(void)s;
	return -ENOTSUP;
}

const struct ml__backend ml__backend_linux = {
	.name = "linux",
	.id = ML_BACKEND_LINUX,
	.available = linux_available,
	.create = linux_create,
	.open = linux_open,
	.close = linux_close,
	.wait = linux_wait,
	.wake = linux_wake,
	.hold = linux_hold,
	.unhold = linux_unhold,
	.alive = linux_alive,
	.fd = linux_fd,
};

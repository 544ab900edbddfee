// SPDX-License-Identifier: MIT
/*
 * The "linux" backend: a POSIX shared memory object (/dev/shm/memlink.NAME),
 * shared futexes to sleep and wake, and open-file-description locks for
 * liveness: the holder of bell b holds a write lock on byte b of the
 * object. The kernel drops such a lock when the last descriptor of that open
 * file goes, so a crashed or killed process lets go of its bells by itself,
 * and nobody is judged alive or dead from a PID.
 *
 * Needs /dev/shm to be a tmpfs (O_TMPFILE, Linux 3.11) and /proc mounted
 * (linkat() of /proc/self/fd/N; without /proc only root may link).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../posix/lock.h"
#include "../posix/shm.h"
#include "backend.h"

#define FD(s) ((s)->fd)
/* Where glibc's shm_open() keeps its objects. */
#define SHM_DIR "/dev/shm"

static const struct ml__posix_shm linux_shm = {
	.name_max = NAME_MAX,
	.oflags = O_CLOEXEC,
	.umask = true,
};

static bool linux_available(void)
{
	return true;
}

/* Lock (F_WRLCK), unlock (F_UNLCK) or, with get, probe byte `bell`. */
static int bell_lock(int fd, unsigned bell, short type, bool get)
{
	return ml__posix_bell_lock(fd, bell, type, get ? F_OFD_GETLK : F_OFD_SETLK, get);
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

static int dead_open(void *arg, const char *path, int *fd)
{
	(void)arg;
	*fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	return *fd < 0 ? -errno : 0;
}

static int dead_take(void *arg, int fd)
{
	(void)arg;
	return bell_lock(fd, 0, F_WRLCK, false);
}

static void dead_done(void *arg, int fd, bool taken)
{
	(void)arg;
	(void)taken;
	close(fd); /* and with it our lock */
}

/* A dead daemon's object is its own lock: nothing else goes with it. */
static const struct ml__posix_dead dead_ops = {
	.open = dead_open,
	.take = dead_take,
	.done = dead_done,
};

static int unlink_dead(void *arg, const char *path)
{
	return ml__posix_unlink_dead(path, &dead_ops, arg);
}

static void object_path(char *buf, size_t len, const char *name)
{
	char obj[ML_CHAN_NAME_MAX + 16];

	ml__posix_shm_name(&linux_shm, obj, sizeof(obj), name);
	snprintf(buf, len, SHM_DIR "%s", obj);
}

static int linux_gc(const char *name)
{
	char path[ML_CHAN_NAME_MAX + 32];

	object_path(path, sizeof(path), name);
	return unlink_dead(NULL, path);
}

static int linux_list(int (*fn)(const char *name, void *arg), void *arg)
{
	return ml__posix_list(SHM_DIR, "memlink.", "", NULL, fn, arg);
}

/* Give the unnamed object (fd) the name `path`. */
static int link_object(void *arg, const char *path)
{
	int fd = *(int *)arg;
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (!linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) ||
	    (errno == ENOENT && !linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH)))
		return 0;
	return -errno; /* ENOENT: no /proc, and no right to AT_EMPTY_PATH */
}

/*
 * The object is made whole before it gets its name: an unnamed file in
 * /dev/shm (O_TMPFILE), sized, mapped and with bell 0 held, is then linked
 * in. A name thus always belongs to a live daemon or a dead one, never to
 * one half-started, and of daemons starting together exactly one wins.
 */
static int linux_create(struct ml__shm *s, size_t len, unsigned mode)
{
	char path[ML_CHAN_NAME_MAX + 32];
	int fd, err;

	object_path(path, sizeof(path), s->name);
	fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return -errno;
	/* open() applies the umask; the mode asked for is the mode meant. */
	if (fchmod(fd, (mode_t)mode) || ftruncate(fd, (off_t)len)) {
		err = -errno;
		goto fail;
	}
	err = bell_lock(fd, 0, F_WRLCK, false);
	if (!err)
		err = ml__posix_shm_map(s, fd, len);
	if (!err)
		err = ml__posix_publish(path, link_object, unlink_dead, &fd, 8);
	if (err)
		goto fail;
	s->fd = fd;
	return 0;
fail:
	ml__posix_shm_close(s, fd);
	return err;
}

static int linux_open(struct ml__shm *s)
{
	int fd, err = ml__posix_shm_open(&linux_shm, s, &fd);

	if (!err)
		s->fd = fd;
	return err;
}

static int linux_owner(struct ml__shm *s, uint32_t *uid)
{
	return ml__posix_shm_owner(FD(s), uid);
}

static void linux_close(struct ml__shm *s)
{
	if (s->creator)
		ml__posix_shm_unlink_if_ours(&linux_shm, s, FD(s));
	ml__posix_shm_close(s, FD(s));
	s->fd = -1;
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

static int linux_fd(struct ml__shm *s, unsigned bell)
{
	(void)s;
	(void)bell;
	return -ENOTSUP;
}

const struct ml__backend ml__backend_linux = {
	.name = "linux",
	.id = ML_BACKEND_LINUX,
	.available = linux_available,
	.create = linux_create,
	.open = linux_open,
	.owner = linux_owner,
	.close = linux_close,
	.wait = linux_wait,
	.wake = linux_wake,
	.hold = linux_hold,
	.unhold = linux_unhold,
	.alive = linux_alive,
	.fd = linux_fd,
	.list = linux_list,
	.gc = linux_gc,
};

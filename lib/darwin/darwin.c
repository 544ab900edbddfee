// SPDX-License-Identifier: MIT
/*
 * The "darwin" backend (macOS): a POSIX shared memory object for the
 * region (lib/posix/shm.c), os_sync_wait_on_address (macOS 14.4+) or else
 * __ulock_wait to sleep and wake, and fcntl() record locks on a lock file,
 * /tmp/memlink.NAME.lock, for liveness: the holder of bell b holds a write
 * lock on byte b. macOS shm objects take no locks, and has no public
 * open-file-description locks, hence the separate file.
 *
 * POSIX record locks belong to the process, not to a descriptor: a
 * process never conflicts with its own locks, and closing ANY descriptor
 * of the file drops all of them. So each process keeps exactly one
 * descriptor per lock file, shared by all its handles (struct lockfile),
 * and answers for its own bells itself. A child after fork() inherits
 * neither the locks nor the table's meaning; it ignores its parent's
 * entries (and never closes their descriptors).
 *
 * A new daemon always makes a new lock file (and a new object): clients
 * of a dead daemon keep the old file, whose byte 0 nobody holds, so they
 * see it gone. Clients open the lock file before the object, and a daemon
 * creates them in the same order (darwin_create), so a client never pairs
 * an old object with a new daemon's lock file.
 *
 * Not run here: this file is only compiled and linked for macOS (zig cc).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../posix/shm.h"
#include "backend.h"

/*
 * <os/os_sync_wait_on_address.h> (macOS 14.4). Looked up with dlsym(), not
 * declared weak_import: a weak reference still needs the symbol in the
 * SDK's libSystem at link time, which SDKs before 14.4 lack.
 */
#define OS_SYNC_WAIT_ON_ADDRESS_SHARED 0x1u
#define OS_SYNC_WAKE_BY_ADDRESS_SHARED 0x1u
#define OS_CLOCK_MACH_ABSOLUTE_TIME 32u
#define DAY_NS (86400ull * 1000000000u)
typedef int (*os_wait_fn)(void *addr, uint64_t value, size_t size, uint32_t flags,
			  uint32_t clockid, uint64_t timeout_ns);
typedef int (*os_wake_fn)(void *addr, size_t size, uint32_t flags);

/* xnu bsd/sys/ulock.h: private, in libSystem since macOS 10.12. */
#define UL_COMPARE_AND_WAIT_SHARED 3u /* 32-bit word, any process */
#define ULF_WAKE_ALL 0x00000100u
#define ULF_NO_ERRNO 0x01000000u      /* return -errno, leave errno be */
int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);

#define SHM_FD(s) ((int)(s)->h[0])

/* xnu's PSHMNAMLEN is 31 and its length check counts the final NUL. */
const size_t ml__posix_shm_name_max = 30;
#define LF(s) ((struct lockfile *)(s)->h[1])

/* This process's one descriptor on a lock file (see the top). */
struct lockfile {
	struct lockfile *next;
	pid_t pid;        /* the process that opened it; others ignore it */
	dev_t dev;
	ino_t ino;
	int fd;
	unsigned refs;    /* handles using it */
	uint64_t held;    /* bit b: a handle of this process holds bell b */
};

_Static_assert(ML__BELLS <= 64, "a bit per bell in lockfile.held");

static pthread_mutex_t lf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lockfile *lf_list;
static pthread_once_t os_once = PTHREAD_ONCE_INIT;
static os_wait_fn os_wait;
static os_wake_fn os_wake;

static void lock_path(char *buf, size_t len, const char *name)
{
	/* Not $TMPDIR: it differs per user, and a channel may serve several. */
	snprintf(buf, len, "/tmp/memlink.%s.lock", name);
}

/* The table's entry for this file, if this process has one. Under lf_lock. */
static struct lockfile *lf_find(dev_t dev, ino_t ino)
{
	for (struct lockfile *l = lf_list; l; l = l->next)
		if (l->pid == getpid() && l->dev == dev && l->ino == ino)
			return l;
	return NULL;
}

/*
 * Take a reference on the lock file at `path`, opening it if this process
 * has no descriptor on it yet; `excl` creates a new one. Looking the path
 * up with stat() first never opens a second descriptor of a file in the
 * table: a file, once unlinked, never returns under the name (a new
 * daemon's file is linked in, but it is a new file).
 */
static int lf_get(struct ml__shm *s, const char *path, bool excl, unsigned mode)
{
	struct lockfile *l = NULL;
	struct stat st;
	int fd, err = 0;

	pthread_mutex_lock(&lf_lock);
	if (!excl && !stat(path, &st))
		l = lf_find(st.st_dev, st.st_ino);
	if (l)
		goto out;
	fd = open(path, O_RDWR | O_CLOEXEC | (excl ? O_CREAT | O_EXCL : 0), (mode_t)mode);
	if (fd < 0) {
		err = -errno;
		goto unlock;
	}
	l = calloc(1, sizeof(*l));
	/* open() applies the umask; the channel's mode is the mode meant. */
	if (!l || fstat(fd, &st) || (excl && fchmod(fd, (mode_t)mode))) {
		err = l ? -errno : -ENOMEM;
		if (excl)
			unlink(path);
		close(fd);
		free(l);
		goto unlock;
	}
	l->pid = getpid();
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->fd = fd;
	l->next = lf_list;
	lf_list = l;
out:
	l->refs++;
	s->h[1] = (intptr_t)l;
unlock:
	pthread_mutex_unlock(&lf_lock);
	return err;
}

/* Drop a handle's reference; the last one closes (and so unlocks) it. */
static void lf_put(struct ml__shm *s)
{
	struct lockfile *l = LF(s), **p;

	if (s->h[1] == -1)
		return;
	s->h[1] = -1;
	pthread_mutex_lock(&lf_lock);
	if (--l->refs == 0) {
		for (p = &lf_list; *p != l; p = &(*p)->next)
			;
		*p = l->next;
		close(l->fd);
		free(l);
	}
	pthread_mutex_unlock(&lf_lock);
}

/* fcntl() on byte `bell`: lock, unlock, or with F_GETLK probe. */
static int bell_fcntl(int fd, unsigned bell, short type, int cmd)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)bell,
		.l_len = 1,
	};

	if (fcntl(fd, cmd, &fl))
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	return cmd == F_GETLK ? fl.l_type != F_UNLCK : 0;
}

static int darwin_alive(struct ml__shm *s, unsigned bell)
{
	struct lockfile *l = LF(s);
	int ret = 1;

	pthread_mutex_lock(&lf_lock);
	/* F_GETLK never reports this process's own locks. */
	if (!(l->held & (1ull << bell)))
		ret = bell_fcntl(l->fd, bell, F_WRLCK, F_GETLK);
	pthread_mutex_unlock(&lf_lock);
	return ret;
}

static int darwin_hold(struct ml__shm *s, unsigned bell)
{
	struct lockfile *l = LF(s);
	int err = -EBUSY;

	pthread_mutex_lock(&lf_lock);
	/* F_SETLK would grant a bell another handle of ours already holds. */
	if (!(l->held & (1ull << bell)))
		err = bell_fcntl(l->fd, bell, F_WRLCK, F_SETLK);
	if (!err) {
		l->held |= 1ull << bell;
		s->bell_h[bell] = 1;
	}
	pthread_mutex_unlock(&lf_lock);
	return err;
}

static void darwin_unhold(struct ml__shm *s, unsigned bell)
{
	struct lockfile *l = LF(s);

	if (s->bell_h[bell] != 1)
		return;
	pthread_mutex_lock(&lf_lock);
	bell_fcntl(l->fd, bell, F_UNLCK, F_SETLK);
	l->held &= ~(1ull << bell);
	s->bell_h[bell] = -1;
	pthread_mutex_unlock(&lf_lock);
}

/* Remove the lock file's name if it is still ours (see unlink_if_ours). */
static void lf_unlink_if_ours(struct ml__shm *s)
{
	char path[ML_CHAN_NAME_MAX + 32];
	struct stat st;

	lock_path(path, sizeof(path), s->name);
	if (!stat(path, &st) && st.st_dev == LF(s)->dev && st.st_ino == LF(s)->ino)
		unlink(path);
}

/*
 * The lock file under s->name is a dead daemon's? Then remove its object
 * and its name: 1, or 0 if there is no lock file; -EEXIST if its daemon
 * lives. Holding its byte 0 while we do keeps any other new daemon from
 * doing the same.
 */
static int lf_unlink_dead(const struct ml__shm *s)
{
	char path[ML_CHAN_NAME_MAX + 32], obj[ML_CHAN_NAME_MAX + 16];
	struct ml__shm old = { .h = { -1, -1, -1, -1 } };
	int err;

	memcpy(old.name, s->name, sizeof(old.name));
	for (unsigned b = 0; b < ML__BELLS; b++)
		old.bell_h[b] = -1;
	lock_path(path, sizeof(path), s->name);
	err = lf_get(&old, path, false, 0);
	if (err)
		return err == -ENOENT ? 0 : err;
	err = darwin_hold(&old, 0);
	if (!err) {
		ml__posix_shm_path(obj, sizeof(obj), s->name);
		shm_unlink(obj);
		lf_unlink_if_ours(&old);
		darwin_unhold(&old, 0);
		err = 1;
	}
	lf_put(&old);
	return err == -EBUSY ? -EEXIST : err;
}

static int darwin_gc(const char *name)
{
	struct ml__shm s = { .h = { -1, -1, -1, -1 } };
	char obj[ML_CHAN_NAME_MAX + 16];
	int err;

	memcpy(s.name, name, strlen(name) + 1);
	err = lf_unlink_dead(&s);
	if (err)
		return err;
	/* No lock file (a cleaned /tmp): an object left is nobody's. */
	ml__posix_shm_path(obj, sizeof(obj), name);
	return shm_unlink(obj) == 0;
}

/* Channels by their lock files, /tmp/memlink.<name>.lock. */
static int darwin_list(int (*fn)(const char *name, void *arg), void *arg)
{
	char name[ML_CHAN_NAME_MAX + 1];
	DIR *dir = opendir("/tmp");
	struct dirent *e;
	int ret = 0;

	if (!dir)
		return -errno;
	while (!ret && (e = readdir(dir))) {
		size_t n = strlen(e->d_name);

		if (n < 8 + 5 + 1 || n - 13 > ML_CHAN_NAME_MAX ||
		    strncmp(e->d_name, "memlink.", 8) || strcmp(e->d_name + n - 5, ".lock"))
			continue;
		memcpy(name, e->d_name + 8, n - 13);
		name[n - 13] = '\0';
		if (ml__name_ok(name))
			ret = fn(name, arg);
	}
	closedir(dir);
	return ret;
}

/*
 * A new lock file, with bell 0 held, is linked in under the name: of
 * daemons starting together exactly one links it, and a name never
 * belongs to a daemon that is not yet holding it. Only then is the object
 * made: clients open the lock file first, so none pairs a new daemon's
 * lock file with an old object.
 */
static int darwin_create(struct ml__shm *s, size_t len, unsigned mode)
{
	char path[ML_CHAN_NAME_MAX + 32], tmp[ML_CHAN_NAME_MAX + 48];
	char obj[ML_CHAN_NAME_MAX + 16];
	int fd, err;

	lock_path(path, sizeof(path), s->name);
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	unlink(tmp); /* a dead process with our pid may have left it */
	err = lf_get(s, tmp, true, mode);
	if (err)
		return err;
	err = darwin_hold(s, 0);
	for (int tries = 0; !err; tries++) {
		if (!link(tmp, path))
			break;
		if (errno != EEXIST)
			err = -errno;
		else if ((err = tries < 8 ? lf_unlink_dead(s) : -EEXIST) > 0)
			err = 0;
	}
	unlink(tmp);
	if (err)
		goto fail;
	/* The name is ours now: an object under it is a dead daemon's. */
	ml__posix_shm_path(obj, sizeof(obj), s->name);
	shm_unlink(obj);
	err = ml__posix_shm_create(s, len, mode, &fd);
	if (err) {
		lf_unlink_if_ours(s);
		goto fail;
	}
	s->h[0] = fd;
	return 0;
fail:
	darwin_unhold(s, 0);
	lf_put(s);
	return err;
}

static int darwin_owner(struct ml__shm *s, uint32_t *uid)
{
	return ml__posix_shm_owner(SHM_FD(s), uid);
}

static int darwin_open(struct ml__shm *s)
{
	char path[ML_CHAN_NAME_MAX + 32];
	int fd, err;

	lock_path(path, sizeof(path), s->name);
	err = lf_get(s, path, false, 0);

	if (err)
		return err;
	err = ml__posix_shm_open(s, &fd);
	if (err) {
		lf_put(s);
		return err;
	}
	s->h[0] = fd;
	return 0;
}

static void darwin_close(struct ml__shm *s)
{
	if (s->creator) {
		ml__posix_shm_unlink_if_ours(s, SHM_FD(s));
		lf_unlink_if_ours(s);
	}
	for (unsigned b = 0; b < ML__BELLS; b++)
		darwin_unhold(s, b);
	ml__posix_shm_close(s, SHM_FD(s));
	s->h[0] = -1;
	lf_put(s);
}

static void os_resolve(void)
{
	os_wait = (os_wait_fn)dlsym(RTLD_DEFAULT, "os_sync_wait_on_address_with_timeout");
	os_wake = (os_wake_fn)dlsym(RTLD_DEFAULT, "os_sync_wake_by_address_all");
	if (!os_wait || !os_wake)
		os_wait = NULL, os_wake = NULL;
}

static bool darwin_available(void)
{
	pthread_once(&os_once, os_resolve);
	return true;
}

static int darwin_wait(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word,
		       uint32_t expected, int64_t timeout_ns)
{
	int ret;

	(void)s;
	(void)bell;
	/* Both calls read 0 as "forever" (os_sync: EINVAL): never pass it. */
	if (timeout_ns == 0)
		return atomic_load(word) == expected ? -ETIMEDOUT : 0;
	pthread_once(&os_once, os_resolve);
	if (os_wait) {
		/* No "forever" here: a day, then a spurious wake-up (callers re-check). */
		uint64_t ns = timeout_ns < 0 ? DAY_NS : (uint64_t)timeout_ns;

		ret = os_wait((void *)word, expected, sizeof(*word), OS_SYNC_WAIT_ON_ADDRESS_SHARED,
			      OS_CLOCK_MACH_ABSOLUTE_TIME, ns) < 0 ? -errno : 0;
		if (ret == -ETIMEDOUT && timeout_ns < 0)
			ret = 0;
	} else {
		/* Microseconds, rounded up so that a short wait still sleeps. */
		uint64_t us = timeout_ns < 0 ? 0 : ((uint64_t)timeout_ns + 999) / 1000;

		ret = __ulock_wait(UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO, (void *)word,
				   expected, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
	}
	/* >= 0: the waiters left, whether woken or the word differed. */
	return ret < 0 ? ret : 0;
}

static int darwin_wake(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word)
{
	int ret;

	(void)s;
	(void)bell;
	pthread_once(&os_once, os_resolve);
	if (os_wake)
		ret = os_wake((void *)word, sizeof(*word), OS_SYNC_WAKE_BY_ADDRESS_SHARED) < 0 ?
		      -errno : 0;
	else
		ret = __ulock_wake(UL_COMPARE_AND_WAIT_SHARED | ULF_WAKE_ALL | ULF_NO_ERRNO,
				   (void *)word, 0);
	/* -ENOENT: nobody was asleep, which is no error. */
	return ret < 0 && ret != -ENOENT ? ret : 0;
}

static int darwin_fd(struct ml__shm *s, unsigned bell)
{
	(void)s;
	(void)bell;
	return -ENOTSUP;
}

const struct ml__backend ml__backend_darwin = {
	.name = "darwin",
	.id = ML_BACKEND_DARWIN,
	.available = darwin_available,
	.create = darwin_create,
	.open = darwin_open,
	.owner = darwin_owner,
	.close = darwin_close,
	.wait = darwin_wait,
	.wake = darwin_wake,
	.hold = darwin_hold,
	.unhold = darwin_unhold,
	.alive = darwin_alive,
	.fd = darwin_fd,
	.list = darwin_list,
	.gc = darwin_gc,
};

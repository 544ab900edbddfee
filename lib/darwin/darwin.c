// SPDX-License-Identifier: MIT
/*
 * The "darwin" backend (macOS): the linux backend's design (lib/linux), as
 * macOS allows it, with POSIX shared memory objects (lib/posix/shm.c):
 *
 *   control region  the object /memlink.NAME, mode 0400: its creator, the
 *                   daemon, keeps its read-write descriptor, nobody else
 *                   can open it; clients and onlookers get a read-only
 *                   descriptor over the socket and map it read-only
 *                   (object_create)
 *   client areas    an object per connection, 0600, sized once, unlinked
 *                   at once and passed over the socket (SCM_RIGHTS): only
 *                   that client and the daemon ever hold it (area_new)
 *   rendezvous      a stream socket at /var/tmp/memlink.<random>.sock,
 *                   named in the lock file; the daemon's service thread
 *                   (serve.c) admits clients by LOCAL_PEERCRED against the
 *                   mode, and each client checks that the socket's peer
 *                   made the lock file and owns the region (dial, ask)
 *   doorbells       os_sync_wait_on_address (macOS 14.4+) or else
 *                   __ulock_wait on a word: a client's in its own area;
 *                   the daemon's in the control region, which a client
 *                   rings by a byte on its connection (darwin_wake)
 *   liveness        a client's: its connection, which the daemon's thread
 *                   watches (the daemon is told at once); the daemon's:
 *                   a write lock on byte 0 of its lock file,
 *                   /var/tmp/memlink.NAME.lock, which also names the
 *                   socket, and a client also sees its connection close
 *
 * Why not the kernel objects linux uses: no memfd and no seals (but xnu's
 * one ftruncate() per object is as good as F_SEAL_SHRINK | F_SEAL_GROW,
 * and a read-only descriptor of a 0400 object as good as
 * F_SEAL_FUTURE_WRITE), no
 * abstract socket names (so a file, which a crash leaves behind: the next
 * daemon or gc removes it) and no SOCK_SEQPACKET for AF_UNIX (dwn.h). xnu's
 * shm objects take no locks (EBADF) and macOS has no public
 * open-file-description locks, hence the separate lock file for the
 * daemon; it also holds byte 1 + i while client i is connected, for
 * onlookers (ml_chan_inspect), who do not connect.
 *
 * xnu's shm is not Linux's (bsd/kern/posix_shm.c): no fchmod() (EINVAL),
 * so the mode, which xnu stores without the umask, is only checked; no
 * O_CLOEXEC (macOS 26.4 rejects it; every shm descriptor is close-on-exec
 * anyway); one ftruncate() per object; names of 31 bytes at most (30
 * for older xnu); and fstat() gives no st_dev/st_ino, so objects are told
 * apart by a token.
 *
 * Where the lock files and sockets live. /tmp is swept of files not
 * accessed for 3 days (periodic's 110.clean-tmps, tmp_cleaner since macOS
 * 14), and a record lock is no access; so is $TMPDIR (dirhelper), which is
 * per user besides, while a channel may serve several users. /var/tmp is
 * shared, sticky and not swept. A lock file can still be deleted by hand:
 * a missing one never counts as a dead daemon (a new daemon or gc backs
 * off from an object whose lock file is gone), and a live daemon that
 * finds its own gone links a new one in (look()), naming the same socket.
 * Their names keep case apart ("Case" is "+case"): the volume is
 * case-insensitive by default, shm names are not. A socket's name is
 * lower-case hex, nothing of the channel's: nothing to fold, and it fits
 * macOS's 104-byte sun_path. A lock file is written by its daemon's user
 * alone (it says where clients go); others open it read-only.
 *
 * The token. A daemon writes a random 64-bit token into its lock file
 * before linking it in and into its region (the control region's
 * daemon_start, chan_layout.h) before anything else. A client takes a
 * region only with its lock file's token: a new daemon's lock file is
 * linked in before it replaces a dead one's object, and a live lock must
 * never be paired with a dead region. A dead daemon's object is removed
 * only by whoever holds its lock file's byte 0 and finds its token there
 * (or by a new daemon holding the name, if it never got a token).
 *
 * POSIX record locks belong to the process, not to a descriptor: a
 * process never conflicts with its own locks, and closing ANY descriptor
 * of the file drops all of them. So each process keeps one descriptor per
 * lock file, shared by all its handles (struct lockfile: a client's or an
 * onlooker's in the daemon's own process must not drop the daemon's
 * locks), and answers for its own bells itself. One it opened by mistake
 * (a daemon of this process linked the file in between our stat() and
 * open()) is kept until the file's last handle goes. A child after fork()
 * inherits neither the locks nor the table's meaning; it ignores its
 * parent's entries (and never closes their descriptors).
 *
 * Not run here: this file is compiled and linked for macOS (zig cc), and
 * run on Linux over tests/darwin's xnu simulation (make darwin-sim-check).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../posix/lock.h"
#include "../posix/shm.h"
#include "../posix/sock.h"
#include "backend.h"
#include "chan_layout.h"
#include "dwn.h"
#include "internal.h"

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

static const struct ml__posix_shm darwin_shm = {
	/* PSHMNAMLEN is 31 with the '/'; older xnu counted the final NUL too. */
	.name_max = 30,
	.oflags = 0,
	.umask = false,
};

#define LOCK_DIR "/var/tmp"
#define PATH_LEN (sizeof(LOCK_DIR "/memlink..lock.") + 2 * ML_CHAN_NAME_MAX + 12)
#define OBJ_LEN (ML_CHAN_NAME_MAX + 16)
/* A lock file's first bytes: this, the daemon's token, its socket's sockid. */
#define LOCK_MAGIC "memlink2"
#define TOKEN_OFF offsetof(struct ml__ctl, daemon_start)
/* A live daemon looks for its lock file this often (when it sleeps or scans). */
#define LOOK_NS 1000000000ull
/* Lock files a daemon may have made, its first and those that replaced lost ones. */
#define LF_MAX ML__DW_LF_MAX

struct lock_hdr {
	char magic[8];
	uint64_t token;
	char sockid[32];
};

_Static_assert(sizeof(((struct lock_hdr *)0)->sockid) >= ML__DW_SOCKID_LEN, "sockid fits");

/* This process's one descriptor on a lock file (see the top). */
struct lockfile {
	struct lockfile *next;
	pid_t pid;        /* the process that opened it; others ignore it */
	dev_t dev;
	ino_t ino;
	int fd;
	int *spare;       /* more descriptors of it, kept open (see the top) */
	unsigned nspare;
	unsigned refs;    /* handles using it */
	uint64_t held;    /* bit b: a handle of this process holds bell b */
};

_Static_assert(ML__BELLS <= 64, "a bit per bell in lockfile.held");

static pthread_mutex_t lf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static struct lockfile *lf_list;
static pthread_once_t os_once = PTHREAD_ONCE_INIT;
static os_wait_fn os_wait;
static os_wake_fn os_wake;

static struct ml__darwin *dstate(const struct ml__shm *s)
{
	return s->darwin;
}

/* Channel names are [A-Za-z0-9._-]: an upper-case letter is '+' and its lower case. */
static void lock_path(char *buf, size_t len, const char *name)
{
	char enc[2 * ML_CHAN_NAME_MAX + 1];
	size_t n = 0;

	for (; *name && n + 2 < sizeof(enc); name++) {
		if (*name >= 'A' && *name <= 'Z') {
			enc[n++] = '+';
			enc[n++] = (char)(*name - 'A' + 'a');
		} else {
			enc[n++] = *name;
		}
	}
	enc[n] = '\0';
	snprintf(buf, len, LOCK_DIR "/memlink.%s.lock", enc);
}

/* The other way, in place; false if it is no name lock_path() makes. */
static bool lock_name(char *name)
{
	char *out = name;

	for (const char *p = name; *p; p++) {
		if (*p >= 'A' && *p <= 'Z')
			return false;
		if (*p == '+') {
			if (p[1] < 'a' || p[1] > 'z')
				return false;
			*out++ = (char)(*++p - 'a' + 'A');
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
	return true;
}

static uint64_t new_token(void)
{
	uint64_t t;

	do
		arc4random_buf(&t, sizeof(t));
	while (!t || t == UINT64_MAX);
	return t;
}

/* The token a lock file holds (0 if it holds none) and its sockid (if asked). */
static uint64_t lock_read(int fd, char *sockid)
{
	struct lock_hdr h;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, LOCK_MAGIC, sizeof(h.magic)))
		return 0;
	for (unsigned i = 0; i < ML__DW_SOCKID_LEN - 1; i++)
		if (!((h.sockid[i] >= '0' && h.sockid[i] <= '9') ||
		      (h.sockid[i] >= 'a' && h.sockid[i] <= 'f')))
			return 0;
	if (sockid) {
		memcpy(sockid, h.sockid, ML__DW_SOCKID_LEN - 1);
		sockid[ML__DW_SOCKID_LEN - 1] = '\0';
	}
	return h.token;
}

/*
 * The named object's token: 1, 0 if there is no object, or -1 if it never
 * got one (unsized, or no token nor magic yet: its creator is making it
 * or died doing so). One we cannot read, or an older memlink's (a magic
 * but no token), is someone's: UINT64_MAX.
 */
static int object_token(const char *name, uint64_t *token)
{
	uint8_t head[TOKEN_OFF + 8];
	uint32_t magic;
	int err;

	*token = 0;
	err = ml__posix_shm_peek(&darwin_shm, name, 0, head, sizeof(head));
	if (err == -ENOENT)
		return 0;
	if (err == -ENODATA)
		return -1;
	if (err) {
		*token = UINT64_MAX;
		return 1;
	}
	memcpy(&magic, head, sizeof(magic));
	memcpy(token, head + TOKEN_OFF, sizeof(*token));
	if (!*token && magic == ML__CHAN_MAGIC)
		*token = UINT64_MAX;
	return *token ? 1 : -1;
}

static void object_unlink(const char *name)
{
	char obj[OBJ_LEN];

	ml__posix_shm_name(&darwin_shm, obj, sizeof(obj), name);
	shm_unlink(obj);
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
 * has no descriptor on it yet; with `hdr` create a new one holding it.
 */
static int lf_get(const char *path, const struct lock_hdr *hdr, unsigned mode,
		  struct lockfile **out)
{
	struct lockfile *l = NULL;
	struct stat st;
	int fd, *sp, err = 0;

	pthread_mutex_lock(&lf_lock);
	/* Most often it is in the table: then no second descriptor is opened. */
	if (!hdr && !stat(path, &st))
		l = lf_find(st.st_dev, st.st_ino);
	if (l)
		goto ref;
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (hdr ? O_CREAT | O_EXCL : 0),
		  (mode_t)mode);
	/*
	 * Clients and onlookers only read it and probe its locks (F_GETLK
	 * needs no write access): only its daemon's user may write it.
	 */
	if (fd < 0 && !hdr && errno == EACCES)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		err = -errno;
		goto unlock;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -ENOENT;
		goto fail;
	}
	l = hdr ? NULL : lf_find(st.st_dev, st.st_ino);
	if (l) {
		/* Linked in since the stat(): closing fd would drop our locks. */
		sp = realloc(l->spare, (l->nspare + 1) * sizeof(*sp));
		if (!sp) {
			err = -ENOMEM;
			l = NULL;
			goto unlock; /* fd leaks rather than our locks */
		}
		l->spare = sp;
		sp[l->nspare++] = fd;
		goto ref;
	}
	/* open() applies the umask; the mode given is the mode meant. */
	if (hdr && (fchmod(fd, (mode_t)mode) ||
		    pwrite(fd, hdr, sizeof(*hdr), 0) != (ssize_t)sizeof(*hdr))) {
		err = -errno;
		goto fail;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		err = -ENOMEM;
		goto fail;
	}
	l->pid = getpid();
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->fd = fd;
	l->next = lf_list;
	lf_list = l;
ref:
	l->refs++;
	*out = l;
unlock:
	pthread_mutex_unlock(&lf_lock);
	return err;
fail:
	if (hdr)
		unlink(path);
	close(fd);
	goto unlock;
}

/* Drop a reference; the last one closes (and so unlocks) it. */
static void lf_put(struct lockfile *l)
{
	struct lockfile **p;

	pthread_mutex_lock(&lf_lock);
	if (--l->refs == 0) {
		for (p = &lf_list; *p != l; p = &(*p)->next)
			;
		*p = l->next;
		for (unsigned i = 0; i < l->nspare; i++)
			close(l->spare[i]);
		close(l->fd);
		free(l->spare);
		free(l);
	}
	pthread_mutex_unlock(&lf_lock);
}

/* Bells on one lock file, for this process. Under lf_lock. */
static int lf_hold(struct lockfile *l, unsigned bell)
{
	int err;

	/* F_SETLK would grant a bell another handle of ours already holds. */
	if (l->held & (1ull << bell))
		return -EBUSY;
	err = ml__posix_bell_lock(l->fd, bell, F_WRLCK, F_SETLK, false);
	if (!err)
		l->held |= 1ull << bell;
	return err;
}

static void lf_unhold(struct lockfile *l, unsigned bell)
{
	ml__posix_bell_lock(l->fd, bell, F_UNLCK, F_SETLK, false);
	l->held &= ~(1ull << bell);
}

static int lf_alive(struct lockfile *l, unsigned bell)
{
	/* F_GETLK never reports this process's own locks. */
	if (l->held & (1ull << bell))
		return 1;
	return ml__posix_bell_lock(l->fd, bell, F_WRLCK, F_GETLK, true);
}

/* Is `path` one of the handle's lock files? */
static bool ours(const struct ml__darwin *d, const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return false;
	for (unsigned i = 0; i < d->nlf; i++)
		if (st.st_dev == d->lf[i]->dev && st.st_ino == d->lf[i]->ino)
			return true;
	return false;
}

/* ---- a dead daemon's lock file, through lib/posix/lock.c ---------------- */

struct dead {
	const char *name;
	struct lockfile *l;
};

static int dead_open(void *arg, const char *path, int *fd)
{
	struct dead *x = arg;
	int err = lf_get(path, NULL, 0, &x->l);

	if (!err)
		*fd = x->l->fd;
	return err;
}

static int dead_take(void *arg, int fd)
{
	struct dead *x = arg;
	int err;

	(void)fd;
	pthread_mutex_lock(&lf_lock);
	err = lf_hold(x->l, 0);
	pthread_mutex_unlock(&lf_lock);
	/* Opened read-only: another user's, which only its user (or root) may remove. */
	return err == -EBADF ? -EACCES : err;
}

/*
 * Its daemon is dead: so is its object, if the object has its token, and
 * the socket it named (a file in /var/tmp, which outlives its daemon).
 */
static void dead_gone(void *arg, int fd)
{
	struct dead *x = arg;
	char sockid[ML__DW_SOCKID_LEN], path[64];
	uint64_t mine = lock_read(fd, sockid), token;
	int r = object_token(x->name, &token);

	if (r < 0 || (r > 0 && mine && token == mine))
		object_unlink(x->name);
	if (mine) {
		ml__dw_sock_path(path, sizeof(path), sockid);
		unlink(path);
	}
}

static void dead_done(void *arg, int fd, bool taken)
{
	struct dead *x = arg;

	(void)fd;
	if (taken) {
		pthread_mutex_lock(&lf_lock);
		lf_unhold(x->l, 0);
		pthread_mutex_unlock(&lf_lock);
	}
	lf_put(x->l);
}

static const struct ml__posix_dead dead_ops = {
	.open = dead_open,
	.take = dead_take,
	.gone = dead_gone,
	.done = dead_done,
};

/* The lock file under `name` a dead daemon's? Then remove it and its object. */
static int unlink_dead(const char *name)
{
	char path[PATH_LEN];
	struct dead x = { .name = name };

	lock_path(path, sizeof(path), name);
	return ml__posix_unlink_dead(path, &dead_ops, &x);
}

static int darwin_gc(const char *name)
{
	uint64_t token;
	int err = unlink_dead(name);

	if (err < 0)
		return err;
	/*
	 * What is left has no lock file to tell whether its daemon lives
	 * (deleted by hand, or some sweep): not ours to remove. Not even one
	 * without a token: its daemon may be making it now, under a lock
	 * file just linked in. The next daemon of the name takes it.
	 */
	return object_token(name, &token) == 0 || err ? err : -EEXIST;
}

/* Channels by their lock files, /var/tmp/memlink.<name>.lock. */
static int darwin_list(int (*fn)(const char *name, void *arg), void *arg)
{
	return ml__posix_list(LOCK_DIR, "memlink.", ".lock", lock_name, fn, arg);
}

/* ---- creating, opening, closing ----------------------------------------- */

/*
 * A new lock file at `tmp` with our token, sockid and bell 0 held, added
 * to d->lf. Others may read it (as the channel's mode says), only our
 * user write it: it names the socket clients go to.
 */
static int lf_new(struct ml__darwin *d, const char *tmp)
{
	struct lock_hdr hdr = { .token = d->token };
	struct lockfile *l;
	int err;

	if (d->nlf == LF_MAX)
		return -EMFILE;
	memcpy(hdr.magic, LOCK_MAGIC, sizeof(hdr.magic));
	memcpy(hdr.sockid, d->sockid, sizeof(d->sockid));
	unlink(tmp); /* a dead process with our pid may have left it */
	err = lf_get(tmp, &hdr, (d->mode & 0444u) | 0600u, &l);
	if (err)
		return err;
	pthread_mutex_lock(&lf_lock);
	err = lf_hold(l, 0);
	if (!err)
		d->lf[d->nlf++] = l;
	pthread_mutex_unlock(&lf_lock);
	if (err) {
		unlink(tmp);
		lf_put(l);
	}
	return err;
}

/* Undo lf_new() for the last one. */
static void lf_drop_last(struct ml__darwin *d)
{
	struct lockfile *l;

	pthread_mutex_lock(&lf_lock);
	l = d->lf[--d->nlf];
	lf_unhold(l, 0);
	pthread_mutex_unlock(&lf_lock);
	lf_put(l);
}

/* A name for a new lock file before it is linked in, this process's alone. */
static void tmp_path(char *buf, size_t len, const char *path)
{
	static _Atomic unsigned seq;

	snprintf(buf, len, "%s.%d.%u", path, (int)getpid(), atomic_fetch_add(&seq, 1));
}

struct publish {
	const char *tmp, *name;
};

static int publish_link(void *arg, const char *path)
{
	return link(((struct publish *)arg)->tmp, path) ? -errno : 0;
}

static int publish_dead(void *arg, const char *path)
{
	(void)path;
	return unlink_dead(((struct publish *)arg)->name);
}

/*
 * The control region, once the name is ours. One left under it without a
 * token was never finished and is nobody's; one with a token is a
 * daemon's that lost its lock file (a dead daemon's went with its lock
 * file, in dead_gone()), alive maybe: -EEXIST.
 *
 * Mode 0400, whatever the channel's: xnu checks an object's mode only when
 * an existing one is opened (bsd/kern/posix_shm.c, shm_open: pshm_access
 * for one found in the cache), so we, its creator, keep our read-write
 * descriptor, and nobody else but root may open it at all: not to write
 * it, and not to size it before we do either (xnu lets a read-only
 * descriptor ftruncate an unsized object). There is no fchmod() to
 * change that. Clients and onlookers get a read-only descriptor of ours
 * over the socket instead (d->ro), which maps without VM_PROT_WRITE even
 * as the maximum protection (pshm_mmap), so that mprotect() cannot make
 * it writable. Only we (or root) may shm_unlink() it.
 */
static int object_create(struct ml__shm *s, size_t len)
{
	struct ml__darwin *d = dstate(s);
	char obj[OBJ_LEN];
	uint64_t token;
	int err = -EEXIST;

	for (int tries = 0; err == -EEXIST && tries < 2; tries++) {
		err = ml__posix_shm_create(&darwin_shm, s, len, 0400u, &d->shm);
		if (err != -EEXIST)
			break;
		if (object_token(s->name, &token) > 0)
			return -EEXIST;
		object_unlink(s->name);
	}
	if (err)
		return err;
	ml__posix_shm_name(&darwin_shm, obj, sizeof(obj), s->name);
	d->ro = shm_open(obj, O_RDONLY, 0);
	if (d->ro >= 0)
		return 0;
	err = -errno;
	object_unlink(s->name);
	ml__posix_shm_close(s, d->shm);
	d->shm = -1;
	return err;
}

/*
 * fork() while another thread holds lf_lock (a daemon's service thread,
 * admitting a client) would leave the child a lock nobody lets go: the
 * forking thread takes it first and both sides let go after.
 */
static void fork_prepare(void)
{
	pthread_mutex_lock(&lf_lock);
}

static void fork_done(void)
{
	pthread_mutex_unlock(&lf_lock);
}

static void fork_register(void)
{
	(void)pthread_atfork(fork_prepare, fork_done, fork_done);
}

static struct ml__darwin *dw_new(void)
{
	struct ml__darwin *d = calloc(1, sizeof(*d));

	pthread_once(&fork_once, fork_register);

	if (!d)
		return NULL;
	d->shm = d->ro = d->sock = d->made = -1;
	d->stop[0] = d->stop[1] = -1;
	for (unsigned b = 0; b < ML__BELLS; b++) {
		atomic_init(&d->areafd[b], -1);
		d->peer[b] = -1;
	}
	for (unsigned i = 0; i < ML__DW_PENDING_MAX; i++)
		d->pending[i].fd = -1;
	return d;
}

static void sock_close(struct ml__darwin *d)
{
	if (d->sock >= 0)
		close(d->sock);
	d->sock = -1;
	if (d->sock_path[0])
		unlink(d->sock_path);
	d->sock_path[0] = '\0';
}

/*
 * The daemon's socket, bound (listening from ready()) at a path nobody
 * can guess, /var/tmp/memlink.<96 random bits>.sock, published in the lock
 * file: nobody can bind it first to pose as the daemon. Anyone may
 * connect() (macOS asks for write access to the file): the service thread
 * judges who by LOCAL_PEERCRED, and answers EACCES.
 */
static int sock_bind(struct ml__darwin *d)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int err = -EADDRINUSE;

	d->sock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (d->sock < 0)
		return -errno;
	err = ml__dw_fd_flags(d->sock, true);
	for (int tries = 0; !err && tries < 4; tries++) {
		ml__dw_sockid(d->sockid);
		ml__dw_sock_path(a.sun_path, sizeof(a.sun_path), d->sockid);
		if (!bind(d->sock, (struct sockaddr *)&a, sizeof(a))) {
			ml__dw_sock_path(d->sock_path, sizeof(d->sock_path), d->sockid);
			/* bind() applied the umask. */
			return chmod(a.sun_path, 0666) ? -errno : 0;
		}
		err = errno == EADDRINUSE ? 0 : -errno;
	}
	return err ? err : -EADDRINUSE;
}

/*
 * A new lock file, with our token, our socket's sockid and bell 0 held,
 * is linked in under the name: of daemons starting together exactly one
 * links it, and a name never belongs to a daemon that is not yet holding
 * it. Only then is the object made, our token in it first of all.
 */
static int darwin_create(struct ml__shm *s, size_t len, unsigned mode)
{
	char path[PATH_LEN], tmp[PATH_LEN + 24];
	struct publish pub = { .tmp = tmp, .name = s->name };
	struct ml__darwin *d = dw_new();
	int err;

	if (!d)
		return -ENOMEM;
	d->token = new_token();
	d->mode = mode;
	d->uid = (uint32_t)geteuid();
	d->gid = (uint32_t)getegid();
	s->darwin = d;
	err = sock_bind(d);
	if (err)
		goto fail;
	lock_path(path, sizeof(path), s->name);
	tmp_path(tmp, sizeof(tmp), path);
	err = lf_new(d, tmp);
	if (err)
		goto fail;
	s->bell_h[0] = 1;
	err = ml__posix_publish(path, publish_link, publish_dead, &pub, 8);
	unlink(tmp);
	if (!err) {
		err = object_create(s, len);
		if (err && ours(d, path))
			unlink(path);
	}
	if (err) {
		lf_drop_last(d);
		s->bell_h[0] = -1;
		goto fail;
	}
	*(volatile uint64_t *)(s->base + TOKEN_OFF) = d->token;
	atomic_store_explicit(&d->look_ns, ml__now_ns() + LOOK_NS, memory_order_relaxed);
	return 0;
fail:
	sock_close(d);
	free(d);
	s->darwin = NULL;
	return err;
}

/* The channel is laid out: let clients in. */
static int darwin_ready(struct ml__shm *s)
{
	return ml__dw_serve_start(s);
}

static int darwin_owner(struct ml__shm *s, uint32_t *uid)
{
	return ml__posix_shm_owner(dstate(s)->shm, uid);
}

/* Wait for the reply, all of it, and its descriptors, ML__DW_REPLY_MS at most. */
static int await_reply(int sock, struct ml__dw_reply *r, int *fds, int *n)
{
	uint64_t end = ml__now_ns() + (uint64_t)ML__DW_REPLY_MS * 1000000;
	struct pollfd p = { .fd = sock, .events = POLLIN };
	size_t have = 0;

	for (;;) {
		uint64_t now = ml__now_ns();
		int k = ml__dw_recv(sock, r, sizeof(*r), &have, fds, n);

		if (k)
			return k < 0 ? k : 0;
		if (now >= end)
			return -ETIMEDOUT;
		k = poll(&p, 1, (int)((end - now) / 1000000 + 1));
		if (k < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * Connect to the socket the lock file names. Its peer must be the user
 * who made the lock file (LOCAL_PEERCRED), which nobody else can write: a
 * socket file that somehow names someone else's listener gets -EPROTO.
 */
static int dial(struct ml__darwin *d)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct xucred xu;
	struct stat st;
	int one = 1, err;

	ml__dw_sock_path(a.sun_path, sizeof(a.sun_path), d->sockid);
	d->sock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (d->sock < 0)
		return -errno;
	if (ml__dw_fd_flags(d->sock, false) ||
	    setsockopt(d->sock, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one)))
		return -errno;
	if (connect(d->sock, (struct sockaddr *)&a, sizeof(a))) {
		/* Not listening yet (or the backlog is full), or gone: no channel now. */
		if (errno == ECONNREFUSED || errno == ENOENT)
			return -ENOENT;
		return -errno;
	}
	err = ml__dw_peercred(d->sock, &xu);
	if (!err && fstat(d->lf[0]->fd, &st))
		err = -errno;
	if (!err && xu.cr_uid != st.st_uid)
		err = -EPROTO;
	return err ? err : ml__dw_fd_flags(d->sock, true);
}

/*
 * Say hello, and take what the reply brings: the control region (mapped
 * read-only, from a read-only descriptor) and for a JOIN the client's area
 * (a descriptor of an object nobody can name).
 */
static int ask(struct ml__shm *s, struct ml__darwin *d, uint16_t kind)
{
	struct ml__dw_hello h = {
		.magic = ML__DW_MAGIC,
		.version = ML__DW_VERSION,
		.kind = kind,
	};
	struct ml__dw_reply r;
	struct stat st, ast, lst;
	uint32_t owner;
	int fds[ML__DW_MAX_FDS], n = 0, err;
	void *p;

	err = ml__dw_send(d->sock, &h, sizeof(h), NULL, 0);
	/* Refused at accept and closed already: its refusal waits to be read. */
	if (err == -EPIPE || err == -ECONNRESET)
		err = 0;
	if (!err)
		err = await_reply(d->sock, &r, fds, &n);
	if (err == -ECONNRESET)
		err = -EPIPE;
	if (!err && (r.magic != ML__DW_MAGIC || r.version != ML__DW_VERSION || r.kind != kind))
		err = -EPROTO;
	if (!err && r.err)
		err = n ? -EPROTO : ml__px_refusal(r.err);
	if (!err && (n != (kind == ML__DW_JOIN ? 2 : 1) || r.region_size < 4096 ||
		     r.region_size > SIZE_MAX || fstat(fds[0], &st) || st.st_size < 0 ||
		     (uint64_t)st.st_size != r.region_size ||
		     ml__posix_shm_owner(fds[0], &owner) || fstat(d->lf[0]->fd, &lst) ||
		     owner != (uint32_t)lst.st_uid))
		err = -EPROTO;
	if (!err && kind == ML__DW_JOIN &&
	    (r.bell < 1 || r.bell >= ML__BELLS || r.area_size < 4096 || r.area_size > SIZE_MAX ||
	     fstat(fds[1], &ast) || ast.st_size < 0 || (uint64_t)ast.st_size < r.area_size))
		err = -EPROTO;
	/* Only the daemon writes the control region. */
	if (!err)
		err = ml__posix_shm_map(s, fds[0], (size_t)r.region_size, PROT_READ);
	if (!err) {
		d->shm = fds[0];
		fds[0] = -1;
	}
	if (!err && kind == ML__DW_JOIN) {
		p = mmap(NULL, (size_t)r.area_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
		if (p == MAP_FAILED) {
			err = errno == EPERM || errno == EINVAL ? -EPROTO : -errno;
		} else {
			d->own = r.bell;
			s->bell = r.bell;
			s->area[r.bell - 1] = p;
			s->area_len = (size_t)r.area_size;
		}
	}
	/* The mapping keeps the area; its descriptor would only go astray. */
	for (int k = 0; k < n; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	return err;
}

/*
 * A client or an onlooker: the lock file names the socket, and the daemon
 * gives the control region (and a client its area) through it. An
 * onlooker of a daemon that does not answer (dead, or not listening yet)
 * opens the control region by name instead, which only the daemon's user
 * (or root) may.
 */
static int darwin_open(struct ml__shm *s)
{
	char path[PATH_LEN];
	struct ml__darwin *d = dw_new();
	int err;

	if (!d)
		return -ENOMEM;
	lock_path(path, sizeof(path), s->name);
	err = lf_get(path, NULL, 0, &d->lf[0]);
	if (err)
		goto fail;
	d->nlf = 1;
	/* Linked in only once it has its token: without one it is not a daemon's. */
	d->token = lock_read(d->lf[0]->fd, d->sockid);
	err = d->token ? dial(d) : -ENOENT;
	if (!err)
		err = ask(s, d, s->inspect ? ML__DW_INSPECT : ML__DW_JOIN);
	if (s->inspect && d->sock >= 0) {
		close(d->sock);
		d->sock = -1;
	}
	if (s->inspect && d->token && (err == -ENOENT || err == -EPIPE))
		err = ml__posix_shm_open(&darwin_shm, s, false, &d->shm);
	/* The region must be the lock file's daemon's, else it is still starting. */
	if (!err) {
		volatile uint64_t *t = ml__shm_at(s, TOKEN_OFF, sizeof(*t));

		err = !t ? -EPROTO : *t != d->token ? -ENOENT : 0;
	}
	if (err) {
		if (d->own && s->area[d->own - 1])
			munmap(s->area[d->own - 1], s->area_len);
		if (d->own)
			s->area[d->own - 1] = NULL;
		s->bell = 0;
		if (d->sock >= 0)
			close(d->sock);
		ml__posix_shm_close(s, d->shm);
		lf_put(d->lf[0]);
		goto fail;
	}
	s->darwin = d;
	return 0;
fail:
	free(d);
	return err;
}
/*
 * Bell 0 is the daemon's lock on byte 0 of its lock file. A client's bell
 * is its connection: the service thread holds it for the client while it
 * gives it the slot (ml__chan_claim) and lets go when the connection
 * closes, so that no slot goes to a newcomer while its holder lives. The
 * daemon also holds the bell's byte of its lock file meanwhile, for
 * onlookers (ml_chan_inspect), who see only the lock file.
 */
static int darwin_hold(struct ml__shm *s, unsigned bell)
{
	struct ml__darwin *d = dstate(s);
	uint32_t free_ = 0;
	int err;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (!s->creator)
		return bell && bell == d->own ? 0 : -EBUSY;
	if (bell) {
		/* An area not let go yet: the slot is not free. */
		if (atomic_load_explicit(&d->areafd[bell], memory_order_acquire) >= 0 ||
		    !atomic_compare_exchange_strong_explicit(&d->live[bell], &free_, 1,
							     memory_order_acq_rel,
							     memory_order_relaxed))
			return -EBUSY;
		/* For onlookers only: on every lock file (look() adds its new ones). */
		pthread_mutex_lock(&lf_lock);
		for (unsigned i = 0; i < d->nlf; i++)
			(void)lf_hold(d->lf[i], bell);
		pthread_mutex_unlock(&lf_lock);
		return 0;
	}
	pthread_mutex_lock(&lf_lock);
	err = lf_hold(d->lf[0], bell);
	pthread_mutex_unlock(&lf_lock);
	if (!err)
		s->bell_h[bell] = 1;
	return err;
}

/*
 * Client bells are held and let go by the service thread alone (hold()
 * through ml__chan_claim, and this): never two at once for a bell. live[]
 * goes first, so that look() adding a lock file meanwhile holds no byte
 * for a client already gone.
 */
void ml__dw_unhold_client(struct ml__shm *s, unsigned bell)
{
	struct ml__darwin *d = dstate(s);

	atomic_store_explicit(&d->live[bell], 0, memory_order_seq_cst);
	pthread_mutex_lock(&lf_lock);
	for (unsigned i = 0; i < d->nlf; i++)
		if (d->lf[i]->held & (1ull << bell))
			lf_unhold(d->lf[i], bell);
	pthread_mutex_unlock(&lf_lock);
}

/* A handle holding a bell holds it on every one of its lock files. */
static void darwin_unhold(struct ml__shm *s, unsigned bell)
{
	struct ml__darwin *d = dstate(s);

	if (bell >= ML__BELLS)
		return;
	if (bell && s->creator) {
		ml__dw_unhold_client(s, bell);
		return;
	}
	if (bell && !s->creator) {
		/* Leaving: the daemon's thread sees the connection close. */
		if (bell == d->own && d->sock >= 0) {
			close(d->sock);
			d->sock = -1;
		}
		return;
	}
	if (s->bell_h[bell] != 1)
		return;
	pthread_mutex_lock(&lf_lock);
	for (unsigned i = 0; i < d->nlf; i++)
		lf_unhold(d->lf[i], bell);
	pthread_mutex_unlock(&lf_lock);
	s->bell_h[bell] = -1;
}

/*
 * The daemon: is its lock file still there? Deleted, a new one takes its
 * place: clients that come now find the daemon there. The daemon holds
 * bell 0 on both.
 */
static void look(struct ml__shm *s)
{
	struct ml__darwin *d = dstate(s);
	char path[PATH_LEN], tmp[PATH_LEN + 24];
	struct stat st;
	uint64_t now, next;

	if (!s->creator || !d)
		return;
	now = ml__now_ns();
	next = atomic_load_explicit(&d->look_ns, memory_order_relaxed);
	if (now < next || !atomic_compare_exchange_strong(&d->look_ns, &next, now + LOOK_NS))
		return;
	lock_path(path, sizeof(path), s->name);
	if (!stat(path, &st) || errno != ENOENT)
		return; /* ours, or someone else's, who will find ours alive */
	tmp_path(tmp, sizeof(tmp), path);
	/* lf_new() adds it to d->lf under lf_lock: the service thread reads d->lf too. */
	if (lf_new(d, tmp))
		return;
	/* The connected clients' bytes too, for onlookers of the new one. */
	pthread_mutex_lock(&lf_lock);
	for (unsigned b = 1; b < ML__BELLS; b++)
		if (atomic_load_explicit(&d->live[b], memory_order_seq_cst))
			(void)lf_hold(d->lf[d->nlf - 1], b);
	pthread_mutex_unlock(&lf_lock);
	if (link(tmp, path))
		lf_drop_last(d);
	unlink(tmp);
}

static int darwin_alive(struct ml__shm *s, unsigned bell)
{
	struct ml__darwin *d = dstate(s);
	struct pollfd p;
	int ret = 0;

	if (bell >= ML__BELLS)
		return -EINVAL;
	if (s->creator) {
		look(s);
		return bell == 0 ? 1 :
		       (int)atomic_load_explicit(&d->live[bell], memory_order_acquire);
	}
	if (!s->inspect) {
		if (bell != 0)
			return -EINVAL;
		if (d->sock < 0)
			return 0;
		/* Any news on a connection that must stay silent: gone. */
		p.fd = d->sock;
		p.events = POLLIN;
		p.revents = 0;
		return poll(&p, 1, 0) > 0 ? 0 : 1;
	}
	pthread_mutex_lock(&lf_lock);
	for (unsigned i = 0; i < d->nlf && ret == 0; i++)
		ret = lf_alive(d->lf[i], bell);
	pthread_mutex_unlock(&lf_lock);
	return ret;
}

/*
 * A new area for slot i, for the connection being admitted (the service
 * thread): an object of a random name, O_EXCL, 0600, sized once and
 * unlinked at once, so that it is only ever reached through the
 * descriptor the daemon passes. xnu sizes an object once only
 * (pshm_truncate: EINVAL after), so its client can neither shrink it
 * under the daemon (no SIGBUS for the daemon) nor grow it.
 */
static int darwin_area_new(struct ml__shm *s, unsigned i, size_t len)
{
	struct ml__darwin *d = dstate(s);
	char name[32];
	void *p;
	int fd = -1, err;

	if (i >= ML_CHAN_MAX_CLIENTS || atomic_load(&d->areafd[1 + i]) >= 0)
		return -EINVAL;
	for (int tries = 0; fd < 0 && tries < 4; tries++) {
		uint64_t r;

		arc4random_buf(&r, sizeof(r));
		/*
		 * '+': no channel's object has it (lib/posix/shm.c); then the
		 * slot and 16 bits of the channel's name's hash, for humans
		 * and tests, and 48 random bits: at most 29 bytes (xnu takes
		 * 30). Nobody else could open it meanwhile anyway (0600).
		 */
		snprintf(name, sizeof(name), "/memlink+%u.%04x.%012llx", i,
			 (unsigned)(ml__fnv1a(s->name) & 0xffff),
			 (unsigned long long)(r & 0xffffffffffffull));
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len)) {
		err = -errno;
		goto fail;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	shm_unlink(name);
	atomic_store_explicit(&d->areafd[1 + i], fd, memory_order_release);
	d->made = fd;
	s->area[i] = p;
	return 0;
fail:
	shm_unlink(name);
	close(fd);
	return err;
}

/* The daemon lets slot i's area go; its client, if alive, keeps its own mapping. */
static void darwin_area_free(struct ml__shm *s, unsigned i)
{
	struct ml__darwin *d = dstate(s);
	int fd;

	if (i >= ML_CHAN_MAX_CLIENTS)
		return;
	if (s->area[i])
		munmap(s->area[i], s->area_len);
	s->area[i] = NULL;
	fd = atomic_exchange_explicit(&d->areafd[1 + i], -1, memory_order_acq_rel);
	if (fd >= 0)
		close(fd);
}

static void darwin_close(struct ml__shm *s)
{
	struct ml__darwin *d = dstate(s);
	char path[PATH_LEN];
	uint64_t token;

	if (!d)
		return;
	/* The object first: it never outlives its lock file by our doing. */
	if (s->creator) {
		ml__dw_serve_stop(s);
		for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++) {
			darwin_area_free(s, i);
			/* Another handle of ours may keep the lock file (and our locks) open. */
			ml__dw_unhold_client(s, 1 + i);
		}
		if (object_token(s->name, &token) > 0 && token == d->token)
			object_unlink(s->name);
		lock_path(path, sizeof(path), s->name);
		if (ours(d, path))
			unlink(path);
		/* A fork()ed child's close leaves its parent's socket file be. */
		if (d->pid && d->pid != getpid())
			d->sock_path[0] = '\0';
		sock_close(d);
	} else {
		if (d->own && s->area[d->own - 1]) {
			munmap(s->area[d->own - 1], s->area_len);
			s->area[d->own - 1] = NULL;
		}
		if (d->sock >= 0)
			close(d->sock);
		d->sock = -1;
	}
	for (unsigned b = 0; b < ML__BELLS; b++)
		if (!b || !s->creator)
			darwin_unhold(s, b);
	ml__posix_shm_close(s, d->shm);
	if (d->ro >= 0)
		close(d->ro);
	for (unsigned i = 0; i < d->nlf; i++)
		lf_put(d->lf[i]);
	free(d);
	s->darwin = NULL;
}
/* ---- sleeping and waking ------------------------------------------------ */

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

	if (bell == 0)
		look(s);
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

int ml__dw_wake_word(_Atomic uint32_t *word)
{
	int ret;

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

/*
 * A client rings the daemon by a knock, a byte on its connection, which
 * the service thread turns into a change of the daemon's bell word and a
 * wake (serve.c): the word lives in the control region, which clients
 * cannot write, so no client can set it back and make the daemon sleep
 * through a ring, and a knock stays in the socket until read, so none is
 * lost between the daemon's last look and its sleep. chan.c knocks only
 * when it sees the daemon asleep (or about to be). A full socket
 * (EAGAIN) has knocks unread already; a closed one (EPIPE: SO_NOSIGPIPE)
 * has no daemon left to wake, which alive(0) reports.
 */
static int darwin_wake(struct ml__shm *s, unsigned bell, _Atomic uint32_t *word)
{
	struct ml__darwin *d = dstate(s);

	if (!s->creator && bell == 0) {
		if (d->sock >= 0 && send(d->sock, "k", 1, MSG_DONTWAIT) < 0 && errno != EAGAIN &&
		    errno != EWOULDBLOCK && errno != EPIPE && errno != ECONNRESET)
			return -errno;
		return 0;
	}
	return ml__dw_wake_word(word);
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
	.notifies_client_gone = true,
	.private_areas = true,
	.available = darwin_available,
	.create = darwin_create,
	.ready = darwin_ready,
	.open = darwin_open,
	.owner = darwin_owner,
	.area_new = darwin_area_new,
	.area_free = darwin_area_free,
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

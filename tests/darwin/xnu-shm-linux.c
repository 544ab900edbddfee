// SPDX-License-Identifier: MIT
/*
 * xnu's POSIX shared memory and APFS's names, on Linux, for the darwin-sim
 * build: linked with -Wl,--wrap=NAME for each call below, so that the
 * library's and the tests' calls come here (__real_NAME is glibc's). As
 * read in xnu's bsd/kern/posix_shm.c and kern_descrip.c:
 *
 *   shm_open    the name, '/' included, is at most PSHMNAMLEN (31) bytes,
 *               else ENAMETOOLONG (xnu copies it in with room for 32); no
 *               O_CLOEXEC (EINVAL, macOS 26.4 and later), but every shm
 *               descriptor is close-on-exec; the mode is kept as
 *               mode & ALLPERMS, without the umask; O_TRUNC only while
 *               the object is unsized (EINVAL).
 *   shm_unlink  a bad name is EINVAL.
 *   ftruncate   once per object (EINVAL after), rounded up to a page.
 *   fstat       mode (permission bits only), uid, gid and size; st_dev,
 *               st_ino and the rest are 0.
 *   mmap        MAP_SHARED only, of a sized object and within its size
 *               (EINVAL); PROT_WRITE on a read-only descriptor is EPERM.
 *   fchmod      EINVAL: shm descriptors have no such operation.
 *   fcntl       record locks are for vnodes only: EBADF on shm.
 *
 * A descriptor is a shm one if it came from shm_open() here (a table, by
 * descriptor, checked against the file it names). Sized means a size
 * above 0: an ftruncate() to 0, which xnu would count, is not counted.
 *
 * Who may open an object, and how, is Linux's check on the /dev/shm file,
 * which is xnu's pshm_access() (owner bits for the owner, else group bits
 * for a member of its group, else the others'; root always), made only
 * when an existing object is opened, as xnu does: the creator's O_CREAT
 * | O_EXCL open of a new one is never refused for its mode. A read-only
 * descriptor maps without write even at most (Linux: VM_MAYWRITE clear;
 * xnu: max_prot), so mprotect() cannot make it writable. shm_unlink()
 * needs write access or to be the owner (xnu) and the owner (Linux's
 * sticky /dev/shm): alike for an object without write bits.
 *
 * Unix sockets, where Linux differs from xnu (bsd/kern/uipc_usrreq.c,
 * uipc_socket.c, bsd/sys/un.h):
 *
 *   getsockopt  SOL_LOCAL (0) LOCAL_PEERCRED (1): struct xucred, the
 *               peer's effective uid and up to 16 groups, the effective
 *               gid first (Linux: SO_PEERCRED and SO_PEERGROUPS)
 *   setsockopt  SOL_SOCKET SO_NOSIGPIPE: a send on a closed connection
 *               says EPIPE without SIGPIPE (Linux: MSG_NOSIGNAL on each)
 *   recvmsg     a shm descriptor that comes with SCM_RIGHTS is a shm one
 *               in its new process too (ftruncate, fstat, mmap as above)
 *
 * XNU_SIM_ALLOW="cloexec,fchmod" lets those two through, to show what
 * else breaks in code that fails on them first.
 *
 * The lock directory (/var/tmp, xnu-sim.h), and /tmp where older
 * versions kept their lock files, compare names as APFS does by default:
 * case-insensitively, keeping the case they were made with. open, stat,
 * link and unlink find a name in any case; making one that exists in
 * another case fails with EEXIST. A file lock in the directory makes each
 * of those calls atomic against the others. Only their own entries are
 * so, not what is below them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "xnu-sim.h"

#define PSHMNAMLEN 31
#define MAX_FDS 4096

int __real_shm_open(const char *name, int oflag, mode_t mode);
int __real_shm_unlink(const char *name);
int __real_ftruncate(int fd, off_t len);
int __real_fstat(int fd, struct stat *st);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_fchmod(int fd, mode_t mode);
int __real_fcntl(int fd, int cmd, ...);
int __real_close(int fd);
int __real_open(const char *path, int flags, ...);
int __real_stat(const char *path, struct stat *st);
int __real_link(const char *from, const char *to);
int __real_unlink(const char *path);
int __real_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int __real_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
ssize_t __real_recvmsg(int fd, struct msghdr *m, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr *m, int flags);
ssize_t __real_send(int fd, const void *buf, size_t len, int flags);

int __wrap_shm_open(const char *name, int oflag, mode_t mode);
int __wrap_shm_unlink(const char *name);
int __wrap_ftruncate(int fd, off_t len);
int __wrap_fstat(int fd, struct stat *st);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_fchmod(int fd, mode_t mode);
int __wrap_fcntl(int fd, int cmd, ...);
int __wrap_close(int fd);
int __wrap_open(const char *path, int flags, ...);
int __wrap_stat(const char *path, struct stat *st);
int __wrap_link(const char *from, const char *to);
int __wrap_unlink(const char *path);
int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int __wrap_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
ssize_t __wrap_recvmsg(int fd, struct msghdr *m, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *m, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);

void (*xnu_sim_after_stat)(const char *path);
void (*xnu_sim_before_link)(const char *path);
void (*xnu_sim_after_link)(const char *path);

static const char *const ci_dirs[] = { XNU_SIM_LOCK_DIR, "/tmp" };

static pthread_mutex_t fds_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	bool shm;
	bool nosigpipe;   /* a socket with SO_NOSIGPIPE */
	dev_t dev;
	ino_t ino;
} fds[MAX_FDS];

/*
 * The table's lock, held across fork() (a daemon's service thread may be
 * in a wrapped call): a child must not inherit it taken. xnu has no such
 * lock; only the simulation needs this.
 */
static void fds_prepare(void)
{
	pthread_mutex_lock(&fds_lock);
}

static void fds_done(void)
{
	pthread_mutex_unlock(&fds_lock);
}

__attribute__((constructor)) static void fds_atfork(void)
{
	pthread_atfork(fds_prepare, fds_done, fds_done);
}

/* Is this xnu check off (XNU_SIM_ALLOW)? */
static bool allowed(const char *what)
{
	const char *a = getenv("XNU_SIM_ALLOW");

	return a && strstr(a, what);
}

static int fail(int err)
{
	errno = err;
	return -1;
}

/* Is fd one of shm_open()'s? Then *st is what Linux says of it. */
static bool is_shm(int fd, struct stat *st)
{
	struct stat mine;
	bool yes = false;

	if (fd < 0 || fd >= MAX_FDS)
		return false;
	if (!st)
		st = &mine;
	pthread_mutex_lock(&fds_lock);
	if (fds[fd].shm) {
		yes = !__real_fstat(fd, st) && st->st_dev == fds[fd].dev &&
		      st->st_ino == fds[fd].ino;
		fds[fd].shm = yes;
	}
	pthread_mutex_unlock(&fds_lock);
	return yes;
}

static size_t page_up(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

/* ---- shm ---------------------------------------------------------------- */

/* pshm_get_name(): at least one byte, at most PSHMNAMLEN with the NUL's room. */
static int name_check(const char *name)
{
	size_t n = strlen(name);

	return n == 0 ? EINVAL : n > PSHMNAMLEN ? ENAMETOOLONG : 0;
}

int __wrap_shm_open(const char *name, int oflag, mode_t mode)
{
	int flags = oflag & ~(O_CREAT | O_EXCL | O_TRUNC), fd, err = name_check(name);
	bool made = false;
	struct stat st;

	if (err)
		return fail(err);
	if ((oflag & O_CLOEXEC) && !allowed("cloexec"))
		return fail(EINVAL);
	oflag &= ~O_CLOEXEC;
	if ((oflag & O_ACCMODE) == O_ACCMODE)
		return fail(EINVAL);
	for (;;) {
		if (oflag & O_CREAT) {
			fd = __real_shm_open(name, flags | O_CREAT | O_EXCL, mode & 07777);
			if (fd >= 0) {
				made = true;
				break;
			}
			if (errno != EEXIST || (oflag & O_EXCL))
				return -1;
		}
		fd = __real_shm_open(name, flags, 0);
		if (fd >= 0 || errno != ENOENT || !(oflag & O_CREAT))
			break;
	}
	if (fd < 0)
		return -1;
	err = __real_fstat(fd, &st) ? errno : 0;
	if (!err && (oflag & O_TRUNC) && st.st_size > 0)
		err = EINVAL;
	/* Kept as asked: Linux applied the umask. */
	if (!err && made && __real_fchmod(fd, mode & 07777))
		err = errno;
	if (!err && (fd >= MAX_FDS || __real_fcntl(fd, F_SETFD, FD_CLOEXEC)))
		err = fd >= MAX_FDS ? EMFILE : errno;
	if (err) {
		if (made)
			__real_shm_unlink(name);
		__real_close(fd);
		return fail(err);
	}
	pthread_mutex_lock(&fds_lock);
	fds[fd].shm = true;
	fds[fd].dev = st.st_dev;
	fds[fd].ino = st.st_ino;
	pthread_mutex_unlock(&fds_lock);
	return fd;
}

int __wrap_shm_unlink(const char *name)
{
	if (name_check(name))
		return fail(EINVAL);
	return __real_shm_unlink(name);
}

int __wrap_ftruncate(int fd, off_t len)
{
	struct stat st;

	if (!is_shm(fd, &st))
		return __real_ftruncate(fd, len);
	if (st.st_size > 0 || len < 0)
		return fail(EINVAL);
	return __real_ftruncate(fd, (off_t)page_up((size_t)len));
}

int __wrap_fstat(int fd, struct stat *out)
{
	struct stat st;

	if (!is_shm(fd, &st))
		return __real_fstat(fd, out);
	memset(out, 0, sizeof(*out));
	out->st_mode = st.st_mode & 07777;
	out->st_uid = st.st_uid;
	out->st_gid = st.st_gid;
	out->st_size = st.st_size;
	return 0;
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct stat st;
	size_t size;

	if ((flags & MAP_ANONYMOUS) || !is_shm(fd, &st))
		return __real_mmap(addr, len, prot, flags, fd, off);
	size = page_up((size_t)st.st_size);
	if (!(flags & MAP_SHARED) || st.st_size <= 0 || off < 0 || len > size ||
	    (size_t)off > size - len) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if ((prot & PROT_WRITE) && (__real_fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY) {
		errno = EPERM;
		return MAP_FAILED;
	}
	return __real_mmap(addr, len, prot, flags, fd, off);
}

int __wrap_fchmod(int fd, mode_t mode)
{
	if (is_shm(fd, NULL) && !allowed("fchmod"))
		return fail(EINVAL);
	return __real_fchmod(fd, mode);
}

int __wrap_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *p;
	int v;

	switch (cmd) {
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_GETLK:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		va_start(ap, cmd);
		p = va_arg(ap, void *);
		va_end(ap);
		if (is_shm(fd, NULL))
			return fail(EBADF);
		return __real_fcntl(fd, cmd, p);
	case F_GETOWN_EX:
	case F_SETOWN_EX:
		va_start(ap, cmd);
		p = va_arg(ap, void *);
		va_end(ap);
		return __real_fcntl(fd, cmd, p);
	case F_GETFD:
	case F_GETFL:
	case F_GETOWN:
	case F_GETSIG:
	case F_GETLEASE:
	case F_GETPIPE_SZ:
		return __real_fcntl(fd, cmd);
	default:
		va_start(ap, cmd);
		v = va_arg(ap, int);
		va_end(ap);
		return __real_fcntl(fd, cmd, v);
	}
}

int __wrap_close(int fd)
{
	if (fd >= 0 && fd < MAX_FDS) {
		pthread_mutex_lock(&fds_lock);
		fds[fd].shm = false;
		fds[fd].nosigpipe = false;
		pthread_mutex_unlock(&fds_lock);
	}
	return __real_close(fd);
}

/* ---- unix sockets ------------------------------------------------------- */

/* macOS's values (bsd/sys/un.h, bsd/sys/socket.h, bsd/sys/ucred.h). */
#define XNU_SOL_LOCAL 0
#define XNU_LOCAL_PEERCRED 0x001
#define XNU_SO_NOSIGPIPE 0x1022
struct xnu_xucred {
	unsigned cr_version;
	uid_t cr_uid;
	short cr_ngroups;
	gid_t cr_groups[16];
};

static bool is_unix(int fd)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);

	return !getsockname(fd, (struct sockaddr *)&a, &len) && a.sun_family == AF_UNIX;
}

int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct xnu_xucred xu = { 0 };
	struct ucred cr;
	gid_t groups[64];
	socklen_t crlen = sizeof(cr), glen = sizeof(groups);
	int n;

	/* Linux's level 0 is IPPROTO_IP, which a unix socket has not. */
	if (level != XNU_SOL_LOCAL || name != XNU_LOCAL_PEERCRED || !is_unix(fd))
		return __real_getsockopt(fd, level, name, val, len);
	if (!len || *len < sizeof(xu))
		return fail(EINVAL);
	if (__real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen))
		return -1;
	/* Not connected: xnu says ENOTCONN; Linux gives uid -1. */
	if (cr.pid == 0 && cr.uid == (uid_t)-1)
		return fail(ENOTCONN);
	xu.cr_uid = cr.uid;
	xu.cr_groups[0] = cr.gid;
	xu.cr_ngroups = 1;
	if (!__real_getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen)) {
		n = (int)(glen / sizeof(gid_t));
		for (int i = 0; i < n && xu.cr_ngroups < 16; i++)
			if (groups[i] != cr.gid)
				xu.cr_groups[xu.cr_ngroups++] = groups[i];
	}
	memcpy(val, &xu, sizeof(xu));
	*len = sizeof(xu);
	return 0;
}

int __wrap_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (level != SOL_SOCKET || name != XNU_SO_NOSIGPIPE)
		return __real_setsockopt(fd, level, name, val, len);
	if (fd < 0 || fd >= MAX_FDS || len != sizeof(int) || !is_unix(fd))
		return fail(fd < 0 || fd >= MAX_FDS ? EBADF : EINVAL);
	pthread_mutex_lock(&fds_lock);
	fds[fd].nosigpipe = *(const int *)val != 0;
	pthread_mutex_unlock(&fds_lock);
	return 0;
}

static int sigpipe_flags(int fd, int flags)
{
	bool no = false;

	if (fd >= 0 && fd < MAX_FDS) {
		pthread_mutex_lock(&fds_lock);
		no = fds[fd].nosigpipe;
		pthread_mutex_unlock(&fds_lock);
	}
	return no ? flags | MSG_NOSIGNAL : flags;
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *m, int flags)
{
	/* macOS has no MSG_NOSIGNAL for the caller to pass. */
	if (flags & MSG_NOSIGNAL)
		return fail(EINVAL);
	return __real_sendmsg(fd, m, sigpipe_flags(fd, flags));
}

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
	if (flags & MSG_NOSIGNAL)
		return fail(EINVAL);
	return __real_send(fd, buf, len, sigpipe_flags(fd, flags));
}

/* Is fd a file of /dev/shm, where __real_shm_open() makes its objects? */
static bool shm_file(int fd, struct stat *st)
{
	struct stat dir;

	return !__real_fstat(fd, st) && S_ISREG(st->st_mode) && !__real_stat("/dev/shm", &dir) &&
	       st->st_dev == dir.st_dev;
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *m, int flags)
{
	ssize_t r;

	/* macOS has no MSG_CMSG_CLOEXEC. */
	if (flags & MSG_CMSG_CLOEXEC)
		return fail(EINVAL);
	r = __real_recvmsg(fd, m, flags);
	if (r < 0)
		return r;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
		size_t k;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			struct stat st;
			int got;

			memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (got < 0 || got >= MAX_FDS || !shm_file(got, &st))
				continue;
			pthread_mutex_lock(&fds_lock);
			fds[got].shm = true;
			fds[got].dev = st.st_dev;
			fds[got].ino = st.st_ino;
			pthread_mutex_unlock(&fds_lock);
		}
	}
	return r;
}

/* ---- the lock directory, case-insensitive ------------------------------- */

/* The case-insensitive directory `path` is directly in, or NULL. */
static const char *ci_dir(const char *path)
{
	for (size_t i = 0; i < sizeof(ci_dirs) / sizeof(ci_dirs[0]); i++) {
		size_t n = strlen(ci_dirs[i]);

		if (!strncmp(path, ci_dirs[i], n) && path[n] == '/' && path[n + 1] &&
		    !strchr(path + n + 1, '/'))
			return ci_dirs[i];
	}
	return NULL;
}

/* Make the next call atomic against the others of any process. */
static int dir_lock(const char *dir)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s/.memlink-xnu-sim", dir);
	fd = __real_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd >= 0) {
		__real_fchmod(fd, 0666); /* for every user of the tests */
		flock(fd, LOCK_EX);
	}
	return fd;
}

static void dir_unlock(int fd)
{
	int err = errno;

	if (fd >= 0)
		__real_close(fd);
	errno = err;
}

/* The name `path` has in its directory, whatever its case. */
static const char *ci(const char *path, char *buf, size_t len)
{
	const char *dir = ci_dir(path), *found = path;
	struct stat st;
	struct dirent *e;
	DIR *d;

	if (!dir || !lstat(path, &st))
		return path;
	d = opendir(dir);
	while (d && (e = readdir(d)))
		if (!strcasecmp(e->d_name, path + strlen(dir) + 1)) {
			snprintf(buf, len, "%s/%s", dir, e->d_name);
			found = buf;
			break;
		}
	if (d)
		closedir(d);
	return found;
}

int __wrap_open(const char *path, int flags, ...)
{
	char buf[512];
	mode_t mode = 0;
	va_list ap;
	int fd, lk;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (!ci_dir(path))
		return __real_open(path, flags, mode);
	lk = dir_lock(ci_dir(path));
	/* Another case of the name exists: O_EXCL fails, else that opens. */
	fd = __real_open(ci(path, buf, sizeof(buf)), flags, mode);
	dir_unlock(lk);
	return fd;
}

int __wrap_stat(const char *path, struct stat *st)
{
	char buf[512];
	int r, lk;

	if (!ci_dir(path))
		return __real_stat(path, st);
	lk = dir_lock(ci_dir(path));
	r = __real_stat(ci(path, buf, sizeof(buf)), st);
	dir_unlock(lk);
	if (xnu_sim_after_stat) {
		int err = errno;

		xnu_sim_after_stat(path);
		errno = err;
	}
	return r;
}

int __wrap_link(const char *from, const char *to)
{
	char a[512], b[512];
	int r, lk;

	if (!ci_dir(to))
		return __real_link(from, to);
	if (xnu_sim_before_link)
		xnu_sim_before_link(to);
	lk = dir_lock(ci_dir(to));
	/* `to` in another case exists: then link() finds it there, EEXIST. */
	r = __real_link(ci(from, a, sizeof(a)), ci(to, b, sizeof(b)));
	dir_unlock(lk);
	if (!r && xnu_sim_after_link)
		xnu_sim_after_link(to);
	return r;
}

int __wrap_unlink(const char *path)
{
	char buf[512];
	int r, lk;

	if (!ci_dir(path))
		return __real_unlink(path);
	lk = dir_lock(ci_dir(path));
	r = __real_unlink(ci(path, buf, sizeof(buf)));
	dir_unlock(lk);
	return r;
}

// SPDX-License-Identifier: MIT
/*
 * What the channel tests share: naming, spawning roles, connecting,
 * an echo daemon and a round trip through it (chan_test.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include "backend.h"
#endif

#ifndef _WIN32
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "linux/wire.h"
#endif

#ifdef __linux__
#include <dirent.h>
#include <sys/ioctl.h>

#include "../../include/uapi/linux/memlink.h"
#endif

#define CHAN_TEST_NO_TRACK
#include "proctest.h"
#include "chan_test.h"
#include "chan_layout.h"
#include "internal.h"

char self_exe[PATH_MAX];
static unsigned name_seq;
pid_t runner_pid;
int g_wait_mode = ML_WAIT_ADAPTIVE;

struct ml_chan_opts opts_default(void)
{
	struct ml_chan_opts o;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.wait_mode = (uint32_t)g_wait_mode;
	return o;
}

/* A channel name unique to this run and test. */
void chan_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "mlt-%d-%u-%s", (int)runner_pid, ++name_seq, tag);
}

const char *backend_name(void)
{
	const char *b = getenv("MEMLINK_BACKEND");

	return b && *b ? b : "auto";
}

/* The backend the library picks, by creating a throwaway channel. */
char active_backend[16] = "?";

bool posix_shm_backend(void)
{
	return !strcmp(active_backend, "darwin");
}

bool named_backend(void)
{
	return posix_shm_backend() || !strcmp(active_backend, "linux");
}

/* Backends whose regions ctl_map() and area_map() reach: all. */
bool region_mappable(void)
{
	return named_backend() || !strcmp(active_backend, "win") ||
	       !strcmp(active_backend, "kmod");
}

#ifdef __linux__
/* kmod: up to max of our descriptors bound to module region `region`; how many there are. */
static int kmod_fds(const char *region, int *fds, int max, uint64_t *size)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int count = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct memlink_info info = { .size = sizeof(info) };
		char path[300], link[64];
		int fd = atoi(e->d_name);
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, link, sizeof(link) - 1);
		if (e->d_name[0] == '.' || k <= 0 || fd == dirfd(d))
			continue;
		link[k] = '\0';
		if (strcmp(link, "/dev/memlink") || ioctl(fd, MEMLINK_IOC_INFO, &info) ||
		    strcmp(info.name, region))
			continue;
		if (count < max)
			fds[count] = fd;
		count++;
		if (size)
			*size = info.region_size;
	}
	closedir(d);
	return count;
}

/*
 * kmod: a descriptor of this process's bound to the module's region
 * `region` (lib/kmod/kmod.c names them), its size in *size; -1 if none.
 * *n (if given): how many descriptors are bound to it.
 */
int kmod_region_fd(const char *region, uint64_t *size, int *n)
{
	int fd = -1, k = kmod_fds(region, &fd, 1, size);

	if (n)
		*n = k;
	return k ? fd : -1;
}

/*
 * kmod: region `region` mapped anew, writable, through one of our
 * descriptors (a daemon's and a client's may both be ours); NULL if
 * none may.
 */
static uint8_t *kmod_map(const char *region, size_t *len)
{
	uint64_t size = 0;
	int fds[8], n = kmod_fds(region, fds, 8, &size);

	for (int i = 0; i < n && i < 8 && size; i++) {
		void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);

		if (p != MAP_FAILED) {
			*len = (size_t)size;
			return p;
		}
	}
	return NULL;
}
#endif

#ifndef _WIN32
socklen_t sock_addr(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, ML__WIRE_PREFIX "%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1));
}

/* Is "@memlink.<name>" bound in this network namespace (/proc/net/unix)? */
bool socket_exists(const char *name)
{
	char line[512], want[160];
	FILE *f = fopen("/proc/net/unix", "re");
	bool found = false;

	if (!f)
		return false;
	snprintf(want, sizeof(want), " @memlink.%s\n", name);
	while (!found && fgets(line, sizeof(line), f)) {
		size_t n = strlen(line), w = strlen(want);

		found = n >= w && !strcmp(line + n - w, want);
	}
	fclose(f);
	return found;
}
#endif

bool shm_exists(const char *name)
{
	char path[256];

#ifndef _WIN32
	if (!strcmp(active_backend, "linux"))
		return socket_exists(name);
#endif
	snprintf(path, sizeof(path), "/dev/shm/memlink.%s", name);
	return access(path, F_OK) == 0;
}

/* What a test's child processes must see as the runner set it (Windows). */
void chan_test_inherit(void)
{
	pt_inherit(&runner_pid, sizeof(runner_pid));
	pt_inherit(&name_seq, sizeof(name_seq));
	pt_inherit(active_backend, sizeof(active_backend));
}

/* Fork and exec this binary with the given role arguments (NULL-ended). */
pid_t spawn_exec(const char *const *args)
{
#ifdef _WIN32
	return spawn_self(args);
#else
	char *argv[16];
	unsigned n = 0;
	pid_t pid;

	argv[n++] = self_exe;
	while (*args && n < 15)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		execv(self_exe, argv);
		fprintf(stderr, "exec %s: %s\n", self_exe, strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		failf("fork: %s", strerror(errno));
	return pid;
#endif
}

/* Connect, retrying while the channel is not there yet (a starting daemon). */
int connect_opts_retry(ml_chan **c, const char *name, const struct ml_chan_opts *o,
		       int64_t timeout_ns, int retry_on)
{
	int64_t end = now_ns() + timeout_ns;
	int err;

	for (;;) {
		err = ml_client_connect(c, name, o);
		if (err != retry_on || now_ns() > end)
			return err;
		sleep_ms(2);
	}
}

int connect_retry(ml_chan **c, const char *name, int64_t timeout_ns, int retry_on)
{
	struct ml_chan_opts o = opts_default();

	return connect_opts_retry(c, name, &o, timeout_ns, retry_on);
}

/* ---- an echo daemon and echo clients ------------------------------------ */

/*
 * Serve: echo every request back to its client at its priority, until
 * *stop (when not NULL) or the deadline. Replies to a client that left are
 * dropped (-EPIPE). Returns the number of messages served, < 0 on error.
 */
long serve_echo(ml_chan *d, _Atomic int *stop, int64_t timeout_ns)
{
	int64_t end = now_ns() + timeout_ns;
	static char buf[1 << 16];
	long served = 0;

	while (!(stop && atomic_load(stop))) {
		int prio, n, err;
		unsigned cl;

		if (now_ns() > end)
			return served;
		err = ml_chan_wait(d, 20 * MS);
		if (err == -ETIMEDOUT)
			continue;
		if (err) {
			failf("daemon: ml_chan_wait: %s", ml_strerror(err));
			return -1;
		}
		while ((n = ml_chan_recv(d, &prio, &cl, buf, sizeof(buf))) >= 0) {
			err = ml_chan_send_wait(d, cl, prio, buf, (size_t)n, 5 * SEC);
			if (err && err != -EPIPE) {
				failf("daemon: reply to %u: %s", cl, ml_strerror(err));
				return -1;
			}
			served++;
		}
		if (n != -EAGAIN) {
			failf("daemon: ml_chan_recv: %s", ml_strerror(n));
			return -1;
		}
	}
	return served;
}

unsigned listed_id(ml_chan *d, unsigned slot)
{
	unsigned ids[ML_CHAN_MAX_CLIENTS];
	int n = ml_chan_clients(d, ids, ML_CHAN_MAX_CLIENTS);

	for (int i = 0; i < n && i < (int)ML_CHAN_MAX_CLIENTS; i++)
		if (ML_CHAN_SLOT(ids[i]) == slot)
			return ids[i];
	return 0;
}

unsigned client_id(ml_chan *d, unsigned slot)
{
	int64_t end = now_ns() + 5 * SEC;

	do {
		unsigned id = listed_id(d, slot);

		if (id)
			return id;
		ml_chan_wait(d, 1 * MS);
	} while (now_ns() < end);
	return 0;
}

void kill_reap(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

bool fd_ready(int fd, int ms)
{
#ifdef _WIN32
	return WaitForSingleObject((HANDLE)(intptr_t)fd, (DWORD)ms) == WAIT_OBJECT_0;
#else
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
#endif
}

/* Client: send `len` bytes at prio and wait for the same bytes back. */
int roundtrip(ml_chan *c, int prio, const void *msg, size_t len, int64_t timeout_ns)
{
	static char buf[1 << 16];
	int64_t end = now_ns() + timeout_ns;
	int err, n, p = -1;

	err = ml_chan_send_wait(c, 0, prio, msg, len, timeout_ns);
	if (err) {
		failf("client %d: send: %s", (int)getpid(), ml_strerror(err));
		return err;
	}
	for (;;) {
		n = ml_chan_recv(c, &p, NULL, buf, sizeof(buf));
		if (n >= 0)
			break;
		if (n != -EAGAIN) {
			failf("client %d: recv: %s", (int)getpid(), ml_strerror(n));
			return n;
		}
		if (now_ns() > end) {
			failf("client %d: no reply in %lld ms", (int)getpid(),
			      (long long)(timeout_ns / MS));
			return -ETIMEDOUT;
		}
		err = ml_chan_wait(c, 50 * MS);
		if (err && err != -ETIMEDOUT) {
			failf("client %d: wait: %s", (int)getpid(), ml_strerror(err));
			return err;
		}
	}
	if ((size_t)n != len || p != prio || (len && memcmp(buf, msg, len))) {
		failf("client %d: reply differs (len %d/%zu, prio %d/%d)", (int)getpid(), n, len, p,
		      prio);
		return -EBADMSG;
	}
	return 0;
}

static _Atomic int serve_stop;

static void on_term(int sig)
{
	(void)sig;
	atomic_store(&serve_stop, 1);
}

/* Role "serve NAME [MAX_CLIENTS]": an echo daemon until SIGTERM or killed. */
int role_serve(int argc, char **argv)
{
	struct sigaction sa;

	struct ml_chan_opts o = opts_default();
	ml_chan *d;
	int err;

	if (argc < 1)
		return 2;
	if (argc > 1)
		o.max_clients = (uint32_t)atoi(argv[1]);
	err = ml_daemon_create(&d, argv[0], &o);
	if (err) {
		fprintf(stderr, "serve: create %s: %s\n", argv[0], ml_strerror(err));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	err = serve_echo(d, &serve_stop, 600 * SEC) < 0;
	ml_chan_close(d);
	return err;
}

#ifdef _WIN32
/* The channels open in this process, by name (win_track). */
#define TRACK_MAX 256
static struct {
	ml_chan *c;
	char name[ML_CHAN_NAME_MAX + 1];
	bool daemon;
} tracked[TRACK_MAX];
static SRWLOCK track_lock = SRWLOCK_INIT;

static void track(ml_chan *c, const char *name, bool daemon)
{
	AcquireSRWLockExclusive(&track_lock);
	for (unsigned i = 0; i < TRACK_MAX; i++)
		if (!tracked[i].c) {
			tracked[i].c = c;
			snprintf(tracked[i].name, sizeof(tracked[i].name), "%s", name);
			tracked[i].daemon = daemon;
			break;
		}
	ReleaseSRWLockExclusive(&track_lock);
}

int win_daemon_create(ml_chan **out, const char *name, const struct ml_chan_opts *o)
{
	int err = ml_daemon_create(out, name, o);

	if (!err)
		track(*out, name, true);
	return err;
}

int win_client_connect(ml_chan **out, const char *name, const struct ml_chan_opts *o)
{
	int err = ml_client_connect(out, name, o);

	if (!err)
		track(*out, name, false);
	return err;
}

void win_chan_close(ml_chan *c)
{
	AcquireSRWLockExclusive(&track_lock);
	for (unsigned i = 0; c && i < TRACK_MAX; i++)
		if (tracked[i].c == c)
			tracked[i].c = NULL;
	ReleaseSRWLockExclusive(&track_lock);
	ml_chan_close(c);
}

/*
 * Slot `slot`'s area as this process maps it: its daemon's view, or its
 * client's own (an ml_chan starts with its struct ml__shm: lib/chan.c).
 */
static uint8_t *win_area(const char *name, unsigned slot, size_t *len)
{
	uint8_t *found = NULL;

	AcquireSRWLockShared(&track_lock);
	for (int pass = 0; pass < 2 && !found; pass++)
		for (unsigned i = 0; i < TRACK_MAX && !found; i++) {
			const struct ml__shm *s = (const struct ml__shm *)tracked[i].c;

			if (!s || tracked[i].daemon != !pass || strcmp(tracked[i].name, name) ||
			    slot >= ML_CHAN_MAX_CLIENTS || (pass && s->bell != 1 + slot))
				continue;
			found = s->area[slot];
			*len = s->area_len;
		}
	ReleaseSRWLockShared(&track_lock);
	return found;
}

/*
 * The control region of a win channel, mapped read-write anew (its
 * owner's ACE allows it; lib/win/win.c): the pointer mapping names the
 * current generation; munmap() unmaps it.
 */
uint8_t *map_region(const char *name, size_t *len)
{
	char path[160];
	HANDLE h;
	LONG *ptr;
	LONG gen1;
	void *p;

	snprintf(path, sizeof(path), "Local\\memlink.%s", name);
	h = OpenFileMappingA(FILE_MAP_READ, FALSE, path);
	ptr = h ? MapViewOfFile(h, FILE_MAP_READ, 0, 0, 4096) : NULL;
	if (h)
		CloseHandle(h);
	if (!ptr)
		return NULL;
	gen1 = ptr[0];
	*len = (size_t)*(volatile LONG64 *)(ptr + 2);
	UnmapViewOfFile(ptr);
	if (!gen1)
		return NULL;
	snprintf(path, sizeof(path), "Local\\memlink.%s:%ld", name, (long)gen1 - 1);
	h = OpenFileMappingA(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, path);
	p = h ? MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, *len) : NULL;
	if (h)
		CloseHandle(h);
	return p;
}
#else
/*
 * linux: the daemon's memfd, as an onlooker asks for it on the channel's
 * socket (lib/linux/wire.h); -1 on failure.
 */
int inspect_memfd(const char *name)
{
	struct ml__wire_hello h = {
		.magic = ML__WIRE_MAGIC,
		.version = ML__WIRE_VERSION,
		.kind = ML__WIRE_INSPECT,
	};
	struct ml__wire_reply r;
	struct sockaddr_un a;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };
	struct timeval tv = { 5, 0 };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), fd = -1;
	socklen_t alen;
	ssize_t n;

	if (s < 0)
		return -1;
	alen = sock_addr(&a, name);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!connect(s, (struct sockaddr *)&a, alen) && send(s, &h, sizeof(h), 0) == sizeof(h)) {
		n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
		if (n == (ssize_t)sizeof(r) && !r.err && CMSG_FIRSTHDR(&m) &&
		    CMSG_FIRSTHDR(&m)->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(fd));
	}
	close(s);
	return fd;
}

/*
 * linux: this process's mapping of the memfd named `memfd` (as
 * /proc/self/maps shows "/memfd:NAME (deleted)"), its length and whether
 * it is writable; NULL if it maps none.
 */
/*
 * A mapping of ours whose file's path starts with `prefix` (NULL: any)
 * and whose line ends with `want`, as own_mapping() says.
 */
static uint8_t *maps_find(const char *prefix, const char *want, size_t *len, bool *writable)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	uint8_t *found = NULL;

	if (!f)
		return NULL;
	/* A writable one first: a process with a daemon and a client has both. */
	while (!(found && writable && *writable) && fgets(line, sizeof(line), f)) {
		size_t n = strlen(line), w = strlen(want);
		const char *path = strchr(line, '/');
		unsigned long lo, hi;
		char perms[8];

		if (n < w || strcmp(line + n - w, want) ||
		    (prefix && (!path || strncmp(path, prefix, strlen(prefix)))) ||
		    sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || (found && perms[1] != 'w'))
			continue;
		found = (uint8_t *)lo;
		*len = hi - lo;
		if (writable)
			*writable = perms[1] == 'w';
		else
			break;
	}
	fclose(f);
	return found;
}

uint8_t *own_mapping(const char *memfd, size_t *len, bool *writable)
{
	char want[200];

	snprintf(want, sizeof(want), "/memfd:%s (deleted)\n", memfd);
	return maps_find(NULL, want, len, writable);
}

uint8_t *darwin_ctl(const char *name, size_t *len, bool *writable)
{
	char want[200];

	snprintf(want, sizeof(want), "/dev/shm/memlink.%s\n", name);
	return maps_find(want, want, len, writable);
}

uint8_t *darwin_area(const char *name, unsigned slot, size_t *len)
{
	char prefix[200];

	snprintf(prefix, sizeof(prefix), "/dev/shm/memlink+%u.%04x.", slot,
		 (unsigned)(ml__fnv1a(name) & 0xffff));
	return maps_find(prefix, " (deleted)\n", len, NULL);
}

/* The whole region of a darwin channel (linux: its control region, read-only); NULL on failure. */
uint8_t *map_region(const char *name, size_t *len)
{
	char path[160];
	struct stat st;
	bool linux_ = !strcmp(active_backend, "linux");
	void *p;
	int fd;

	if (linux_) {
		fd = inspect_memfd(name);
	} else {
		snprintf(path, sizeof(path), "/dev/shm/memlink.%s", name);
		fd = open(path, O_RDWR);
	}
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, (size_t)st.st_size, linux_ ? PROT_READ : PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	close(fd);
	*len = (size_t)st.st_size;
	return p == MAP_FAILED ? NULL : p;
}
#endif

uint8_t *ctl_map(const char *name, size_t *len)
{
	char memfd[120];
	bool w = false;
	uint8_t *p;

#ifdef __linux__
	if (!strcmp(active_backend, "kmod")) {
		char region[MEMLINK_NAME_MAX];

		/* The daemon's: a client's is read-only, and so is its file. */
		snprintf(region, sizeof(region), "ch.%s", name);
		return kmod_map(region, len);
	}
#endif
#ifndef _WIN32
	if (!strcmp(active_backend, "darwin")) {
		/* The daemon's, in this process: a client's is read-only, and so is its object. */
		p = darwin_ctl(name, len, &w);
		return p && w ? p : NULL;
	}
#endif
	if (strcmp(active_backend, "linux"))
		return map_region(name, len);
#ifdef _WIN32
	(void)memfd;
	(void)w;
	(void)p;
	return NULL;
#else
	snprintf(memfd, sizeof(memfd), ML__WIRE_PREFIX "%s", name);
	p = own_mapping(memfd, len, &w);
	return p && w ? p : NULL;
#endif
}

uint8_t *area_map(const char *name, unsigned slot, size_t *len)
{
	struct ml__ctl *ctl;
	char memfd[120];
	uint8_t *base;
	size_t rlen = 0;

#ifdef __linux__
	if (!strcmp(active_backend, "kmod")) {
		/* Ours: the daemon's, or the one a client took. */
		snprintf(memfd, sizeof(memfd), "ca%u.%s", slot, name);
		return kmod_map(memfd, len);
	}
#endif
#ifndef _WIN32
	if (!strcmp(active_backend, "linux")) {
		snprintf(memfd, sizeof(memfd), ML__WIRE_PREFIX "%s.%u", name, slot);
		return own_mapping(memfd, len, NULL);
	}
	/* Ours: the daemon's, or the one the daemon gave this client. */
	if (!strcmp(active_backend, "darwin"))
		return darwin_area(name, slot, len);
#else
	(void)memfd;
	if (!strcmp(active_backend, "win"))
		return win_area(name, slot, len);
#endif
	base = map_region(name, &rlen);
	if (!base)
		return NULL;
	ctl = (struct ml__ctl *)base;
	if (slot >= ctl->max_clients ||
	    ML__CTL_SIZE + (slot + 1) * ctl->client_stride > rlen)
		return NULL;
	*len = ctl->client_stride;
	return base + ML__CTL_SIZE + slot * ctl->client_stride;
}

int open_pair(const char *tag, ml_chan **d, ml_chan **c)
{
	struct ml_chan_opts o = opts_default();
	char name[80];
	int err;

	o.ring_size = FULL_RING;
	chan_name(name, sizeof(name), tag);
	err = ml_daemon_create(d, name, &o);
	return err ? err : connect_retry(c, name, 5 * SEC, -ENOENT);
}

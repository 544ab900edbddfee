// SPDX-License-Identifier: MIT
/*
 * The darwin backend where macOS differs from Linux, over the xnu
 * simulation (xnu-shm-linux.c; make darwin-sim-check): what tests/chan
 * cannot see. Each test in its own process group, as tests/chan's.
 *
 *   xnu-test [test-name...]
 * Environment:
 *   XNU_SIM_ALLOW   "cloexec,fchmod": let those two calls through, to see
 *                   what else breaks in code that fails on them first
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "memlink.h"
#include "proctest.h"
#include "xnu-sim.h"

static const struct ml_chan_opts opts = { .size = sizeof(opts), .backend = ML_BACKEND_DARWIN };
static unsigned name_seq;

/* A channel name of this run: "x<pid>-<n>-<tag>" (short: 21 bytes fit xnu's shm names). */
static void name_of(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "x%d-%u-%s", (int)getpid(), ++name_seq, tag);
}

/* The lock file of `name`: the current layout's, else the one before it. */
static void lock_file(char *buf, size_t len, const char *name, bool old)
{
	snprintf(buf, len, "%s/memlink.%s.lock", old ? "/tmp" : XNU_SIM_LOCK_DIR, name);
}

/* Delete `name`'s lock file, wherever it is: 0 if there was one. */
static int delete_lock(const char *name)
{
	char path[160];
	int n = 0;

	lock_file(path, sizeof(path), name, false);
	n += !unlink(path);
	lock_file(path, sizeof(path), name, true);
	n += !unlink(path);
	return n ? 0 : -1;
}

/*
 * The path of the socket the lock file of `name` names (lib/darwin: after
 * the magic and the token, 24 hex digits), or "" if none.
 */
static void sock_of(const char *name, char *buf, size_t len)
{
	char path[160], id[25] = { 0 };
	int fd;

	buf[0] = '\0';
	lock_file(path, sizeof(path), name, false);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (pread(fd, id, 24, 16) == 24 && strspn(id, "0123456789abcdef") == 24)
		snprintf(buf, len, XNU_SIM_LOCK_DIR "/memlink.%s.sock", id);
	close(fd);
}

static bool lock_exists(const char *name)
{
	char path[160];
	struct stat st;

	lock_file(path, sizeof(path), name, false);
	if (!stat(path, &st))
		return true;
	lock_file(path, sizeof(path), name, true);
	return !stat(path, &st);
}

/* Remove by hand what the library would not (a test's own leftovers). */
static void remove_object(const char *name)
{
	char obj[96];

	snprintf(obj, sizeof(obj), "/memlink.%s", name);
	shm_unlink(obj);
	delete_lock(name);
}

/* A message there and back, the daemon in this process or not (serve). */
static int ping(ml_chan *c, ml_chan *d_here)
{
	char buf[16];
	unsigned who;
	int prio, n;

	if (ml_chan_send(c, ML_PRIO_HIGH, "ping", 4))
		return -1;
	if (d_here) {
		if (ml_chan_wait(d_here, 2 * SEC) ||
		    (n = ml_chan_recv(d_here, &prio, &who, buf, sizeof(buf))) != 4 ||
		    ml_chan_reply(d_here, who, prio, buf, (size_t)n))
			return -1;
	}
	if (ml_chan_wait(c, 5 * SEC))
		return -1;
	n = ml_chan_recv(c, &prio, NULL, buf, sizeof(buf));
	return n == 4 && !memcmp(buf, "ping", 4) ? 0 : -1;
}

/* ---- a daemon in a child process ---------------------------------------- */

struct served {
	char name[80];
	_Atomic int up;      /* 1: created, 2: its create failed (err) */
	_Atomic int err;
	_Atomic int stop;
	/* a daemon paused right after linking its lock file in (pause_hook) */
	_Atomic int pause, linked, go;
};

static struct served *SV;

static void pause_hook(const char *path)
{
	char want[160];

	lock_file(want, sizeof(want), SV->name, false);
	if (strcmp(path, want)) {
		lock_file(want, sizeof(want), SV->name, true);
		if (strcmp(path, want))
			return;
	}
	atomic_store(&SV->linked, 1);
	wait_flag(&SV->go, 1, 10 * SEC);
}

/* Create SV->name and echo until SV->stop (or SIGKILL). */
static int serve(void *arg)
{
	char buf[64];
	ml_chan *d;
	unsigned who;
	int prio, n, err;

	SV = arg;
	if (atomic_load(&SV->pause))
		xnu_sim_after_link = pause_hook;
	err = ml_daemon_create(&d, SV->name, &opts);
	atomic_store(&SV->err, err);
	atomic_store(&SV->up, err ? 2 : 1);
	if (err)
		return 1;
	while (!atomic_load(&SV->stop)) {
		err = ml_chan_wait(d, 50 * MS);
		if (err && err != -ETIMEDOUT)
			break;
		while ((n = ml_chan_recv(d, &prio, &who, buf, sizeof(buf))) >= 0)
			ml_chan_reply(d, who, prio, buf, (size_t)n);
	}
	ml_chan_close(d);
	return 0;
}

static pid_t start_daemon(struct served *sv, const char *name)
{
	pid_t pid;

	snprintf(sv->name, sizeof(sv->name), "%s", name);
	pid = spawn(serve, sv);
	if (pid <= 0 || !wait_flag(&sv->up, 1, 5 * SEC))
		return -1;
	return pid;
}

static void kill_daemon(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		reap(pid, 5 * SEC);
	}
}

static int find(const char *name, void *arg)
{
	return !strcmp(name, arg);
}

/* ---- the tests ---------------------------------------------------------- */

/* The simulation itself: xnu's shm calls and APFS's names, as the top of xnu-shm-linux.c says. */
static int t_sim(void)
{
	char name[64], path[160], other[160];
	mode_t old = umask(022);
	struct stat st;
	void *p;
	int fd = -1, fd2 = -1, ret = -1;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };

	snprintf(name, sizeof(name), "/x%d-sim", (int)getpid());
	shm_unlink(name);
	if (!getenv("XNU_SIM_ALLOW"))
		CHECK(shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600) < 0 &&
		      errno == EINVAL, "O_CLOEXEC taken");
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0666);
	CHECK(fd >= 0, "shm_open: %s", strerror(errno));
	CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC), "not close-on-exec");
	CHECK(!fstat(fd, &st) && st.st_mode == 0666 && st.st_ino == 0 && st.st_dev == 0,
	      "fstat: mode %o ino %lu: the umask, or an inode", (unsigned)st.st_mode,
	      (unsigned long)st.st_ino);
	if (!getenv("XNU_SIM_ALLOW"))
		CHECK(fchmod(fd, 0600) && errno == EINVAL, "fchmod worked");
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL,
	      "an unsized object mapped");
	CHECK(!ftruncate(fd, 100) && !fstat(fd, &st) && st.st_size == getpagesize(),
	      "ftruncate: %s, size %lld", strerror(errno), (long long)st.st_size);
	CHECK(ftruncate(fd, 8192) && errno == EINVAL, "a second ftruncate worked");
	CHECK(mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL,
	      "mapped past the size");
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED && errno == EINVAL,
	      "MAP_PRIVATE mapped");
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	munmap(p, 4096);
	CHECK(fcntl(fd, F_SETLK, &fl) && errno == EBADF, "a record lock on shm");
	fd2 = shm_open(name, O_RDONLY | O_TRUNC, 0);
	CHECK(fd2 < 0 && errno == EINVAL, "O_TRUNC of a sized object");
	CHECK(shm_unlink(name) == 0, "shm_unlink: %s", strerror(errno));
	/* PSHMNAMLEN: 31 bytes with the '/', no more. */
	memset(name, 'n', sizeof(name));
	name[0] = '/';
	name[31] = '\0';
	fd2 = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd2 >= 0, "31 bytes: %s", strerror(errno));
	CHECK(!shm_unlink(name), "31 bytes: unlink");
	name[31] = 'n';
	name[32] = '\0';
	CHECK(shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600) < 0 && errno == ENAMETOOLONG,
	      "32 bytes taken");
	CHECK(shm_unlink(name) && errno == EINVAL, "unlink of 32 bytes");
	/* APFS: one name in any case, kept as made. */
	snprintf(path, sizeof(path), XNU_SIM_LOCK_DIR "/x%d-Sim.Case", (int)getpid());
	snprintf(other, sizeof(other), XNU_SIM_LOCK_DIR "/x%d-sim.case", (int)getpid());
	close(open(path, O_RDWR | O_CREAT | O_EXCL, 0600));
	CHECK(!stat(other, &st), "the other case not found");
	CHECK(open(other, O_RDWR | O_CREAT | O_EXCL, 0600) < 0 && errno == EEXIST,
	      "made in another case");
	CHECK(link(path, other) && errno == EEXIST, "linked in another case");
	CHECK(!unlink(other) && stat(path, &st), "unlink of the other case");
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (fd2 >= 0)
		close(fd2);
	umask(old);
	return ret;
}

/*
 * A channel's mode gives its lock file's, whatever the umask: its read
 * bits and the owner's rw (only the daemon's user writes it: it names the
 * socket). Its object is 0400 whatever the mode: nobody else opens it
 * (clients get a read-only descriptor over the socket).
 */
static int t_mode(void)
{
	struct ml_chan_opts o = opts;
	char name[80], path[160], obj[96];
	mode_t old = umask(077);
	struct stat st;
	ml_chan *d = NULL;
	int fd = -1, ret = -1;

	name_of(name, sizeof(name), "mode");
	o.mode = 0660;
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	snprintf(obj, sizeof(obj), "/memlink.%s", name);
	fd = shm_open(obj, O_RDONLY, 0);
	CHECK(fd >= 0 && !fstat(fd, &st) && st.st_mode == 0400, "object mode %o",
	      (unsigned)st.st_mode);
	lock_file(path, sizeof(path), name, false);
	if (stat(path, &st))
		lock_file(path, sizeof(path), name, true);
	CHECK(!stat(path, &st), "no lock file");
	CHECK((st.st_mode & 0777) == 0640, "lock file mode %o", (unsigned)st.st_mode & 0777);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	ml_chan_close(d);
	umask(old);
	return ret;
}

/*
 * Names of every length, to 63: their objects' names fit 31 bytes (the
 * longer ones are hashed), and their lock files keep them whole.
 */
static int t_name_lengths(void)
{
	static const unsigned lens[] = { 1, 20, 21, 22, 23, ML_CHAN_NAME_MAX };
	char name[ML_CHAN_NAME_MAX + 1];
	ml_chan *d = NULL, *c = NULL;
	int ret = -1;

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		/* This run's, padded or cut to the length. */
		int n = snprintf(name, sizeof(name), "x%d-%u-", (int)getpid(), i);

		memset(name + n, 'z', sizeof(name) - 1 - (size_t)n);
		name[lens[i]] = '\0';
		CHECK(ml_daemon_create(&d, name, &opts) == 0, "create, %u bytes", lens[i]);
		CHECK(ml_client_connect(&c, name, &opts) == 0, "connect, %u bytes", lens[i]);
		CHECK(ping(c, d) == 0, "round trip, %u bytes", lens[i]);
		CHECK(ml_chan_list(ML_BACKEND_DARWIN, find, name) == 1, "not listed, %u bytes",
		      lens[i]);
		ml_chan_close(c);
		ml_chan_close(d);
		c = d = NULL;
	}
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

/*
 * "Case" and "case" are two channels on a case-insensitive volume too:
 * both live at once, and when "Case" dies, starting "case" leaves its
 * lock file (and so its object) for gc or the next "Case" to remove.
 */
static int t_case(void)
{
	struct served *sv = shared_map(sizeof(*sv));
	char upper[80], lower[80];
	ml_chan *d = NULL, *c = NULL, *cu = NULL;
	struct ml_chan_status *st = calloc(1, sizeof(*st));
	pid_t pid = 0;
	int err, ret = -1;

	snprintf(upper, sizeof(upper), "X%d-Case", (int)getpid());
	snprintf(lower, sizeof(lower), "x%d-case", (int)getpid());
	pid = start_daemon(sv, upper);
	CHECK(pid > 0 && atomic_load(&sv->up) == 1, "%s did not start: %s", upper,
	      ml_strerror(atomic_load(&sv->err)));
	err = ml_daemon_create(&d, lower, &opts);
	if (err) {
		failf("%s alive, create %s: %s", upper, lower, ml_strerror(err)); /* and go on */
	} else {
		CHECK_RC(ml_client_connect(&c, lower, &opts), 0);
		CHECK(ping(c, d) == 0, "round trip to %s", lower);
	}
	CHECK_RC(ml_client_connect(&cu, upper, &opts), 0);
	CHECK(ping(cu, NULL) == 0, "round trip to %s", upper);
	ml_chan_close(cu);
	ml_chan_close(c);
	ml_chan_close(d);
	cu = c = d = NULL;
	kill_daemon(pid);
	pid = 0;
	CHECK_RC(ml_daemon_create(&d, lower, &opts), 0);
	CHECK(ml_chan_list(ML_BACKEND_DARWIN, find, upper) == 1,
	      "%s's lock file went when %s started: its object is left to no one", upper, lower);
	st->size = sizeof(*st);
	CHECK_RC(ml_chan_inspect(upper, ML_BACKEND_DARWIN, st), 0);
	CHECK(st->daemon_alive == 0, "dead %s alive: %d", upper, st->daemon_alive);
	CHECK_RC(ml_chan_gc(upper, ML_BACKEND_DARWIN), 1);
	CHECK_RC(ml_chan_inspect(upper, ML_BACKEND_DARWIN, st), -ENOENT);
	CHECK_RC(ml_client_connect(&c, lower, &opts), 0);
	CHECK(ping(c, d) == 0, "round trip to %s after", lower);
	ret = atomic_load(&R->failed) ? -1 : 0;
out:
	ml_chan_close(cu);
	ml_chan_close(c);
	ml_chan_close(d);
	kill_daemon(pid);
	if (ret) {
		remove_object(upper);
		remove_object(lower);
	}
	free(st);
	return ret;
}

/*
 * The lock file deleted under a live daemon (macOS sweeps /tmp of files
 * not accessed for 3 days; anyone may delete one): a second daemon is
 * refused, gc leaves the channel be, clients keep working, and the daemon
 * puts a lock file back so that new clients can come.
 */
static int t_lock_deleted(void)
{
	struct served *sv = shared_map(sizeof(*sv));
	char name[80];
	ml_chan *c1 = NULL, *c2 = NULL, *d2 = NULL;
	pid_t pid = 0;
	int64_t t;
	int err, ret = -1;

	name_of(name, sizeof(name), "swept");
	pid = start_daemon(sv, name);
	CHECK(pid > 0 && atomic_load(&sv->up) == 1, "daemon: %s", ml_strerror(atomic_load(&sv->err)));
	CHECK_RC(ml_client_connect(&c1, name, &opts), 0);
	CHECK(ping(c1, NULL) == 0, "round trip");
	CHECK(delete_lock(name) == 0, "no lock file to delete");

	SOFT_RC(ml_chan_gc(name, ML_BACKEND_DARWIN), 0);
	err = ml_daemon_create(&d2, name, &opts);
	SOFT_RC(err, -EEXIST);
	ml_chan_close(d2);
	d2 = NULL;
	SOFT_RC(ping(c1, NULL), 0);
	t = now_ns();
	err = ml_client_connect(&c2, name, &opts);
	while (err == -ENOENT && now_ns() - t < 5 * SEC) {
		sleep_ms(10);
		err = ml_client_connect(&c2, name, &opts);
	}
	CHECK(err == 0, "a new client after the lock file went: %s after %lld ms", ml_strerror(err),
	      (long long)((now_ns() - t) / MS));
	printf("  # a new client got in %.0f ms after the lock file was deleted\n",
	       (double)(now_ns() - t) / 1e6);
	CHECK(lock_exists(name), "connected, but no lock file");
	CHECK(ping(c2, NULL) == 0, "round trip, new client");
	CHECK(ping(c1, NULL) == 0, "round trip, old client");
	CHECK(atomic_load(&R->failed) == 0, "see above");
	/* The daemon dies: both its lock files say so. */
	kill_daemon(pid);
	pid = 0;
	CHECK_RC(ml_chan_wait(c1, 2 * SEC), -EPIPE);
	CHECK_RC(ml_chan_wait(c2, 2 * SEC), -EPIPE);
	ml_chan_close(c1);
	ml_chan_close(c2);
	c1 = c2 = NULL;
	CHECK_RC(ml_chan_gc(name, ML_BACKEND_DARWIN), 1);
	CHECK_RC(ml_client_connect(&c1, name, &opts), -ENOENT);
	ret = 0;
out:
	ml_chan_close(c1);
	ml_chan_close(c2);
	ml_chan_close(d2);
	kill_daemon(pid);
	if (ret)
		remove_object(name);
	return ret;
}

/*
 * A live lock file is never paired with a dead region. A daemon died and
 * its lock file went too; a new daemon has linked its own in and not yet
 * dealt with the old object: a client must not take that for the new
 * channel (it would wait forever). Nothing proves the old daemon dead
 * (its lock file is gone), so the new daemon does not take its name.
 */
static int t_dead_region(void)
{
	struct served *sv = shared_map(sizeof(*sv)), *sv2 = shared_map(sizeof(*sv2));
	char name[80], sock[160] = "";
	ml_chan *c = NULL;
	pid_t pid = 0, pid2 = 0;
	int err, ret = -1;

	name_of(name, sizeof(name), "stale");
	pid = start_daemon(sv, name);
	CHECK(pid > 0 && atomic_load(&sv->up) == 1, "daemon: %s", ml_strerror(atomic_load(&sv->err)));
	kill_daemon(pid);
	pid = 0;
	/* Its socket file is named only there: once that is gone, nobody can find it. */
	sock_of(name, sock, sizeof(sock));
	CHECK(delete_lock(name) == 0, "no lock file to delete");

	snprintf(sv2->name, sizeof(sv2->name), "%s", name);
	atomic_store(&sv2->pause, 1);
	pid2 = spawn(serve, sv2);
	CHECK(pid2 > 0 && wait_flag(&sv2->linked, 1, 5 * SEC), "the new daemon never linked");
	err = ml_client_connect(&c, name, &opts);
	CHECK(err == -ENOENT, "live lock, dead region: connect = %s, want %s", ml_strerror(err),
	      ml_strerror(-ENOENT));
	atomic_store(&sv2->go, 1);
	CHECK(wait_flag(&sv2->up, 1, 5 * SEC) || atomic_load(&sv2->up) == 2, "new daemon hung");
	CHECK(atomic_load(&sv2->err) == -EEXIST, "over an object whose lock file is gone: %s",
	      ml_strerror(atomic_load(&sv2->err)));
	CHECK_RC(ml_chan_gc(name, ML_BACKEND_DARWIN), 0);
	ret = 0;
out:
	atomic_store(&sv2->go, 1);
	atomic_store(&sv2->stop, 1);
	ml_chan_close(c);
	kill_daemon(pid);
	if (pid2 > 0)
		reap(pid2, 5 * SEC);
	remove_object(name);
	if (sock[0])
		unlink(sock);
	return ret;
}

/* A listener at `path` as uid 1002, until stop; up: 1 listening, 2 failed. */
struct squat {
	char path[160];
	_Atomic int up, stop;
};

static int squatter(void *arg)
{
	struct squat *q = arg;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	gid_t g = 1002;
	int fd;

	if (strlen(q->path) >= sizeof(a.sun_path)) {
		atomic_store(&q->up, 2);
		return 1;
	}
	memcpy(a.sun_path, q->path, strlen(q->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (setgroups(1, &g) || setgid(g) || setuid(1002) || fd < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8)) {
		atomic_store(&q->up, 2);
		return 1;
	}
	atomic_store(&q->up, 1);
	wait_flag(&q->stop, 1, 20 * SEC);
	unlink(q->path);
	return 0;
}

/*
 * The rendezvous as only macOS has it: a socket file in /var/tmp (no
 * abstract names), at a path that does not come from the channel's name
 * (lower-case hex: nothing for a case-insensitive volume to fold; 104
 * bytes of sun_path at most), named by the lock file. A killed daemon's
 * socket file stays behind (nothing sweeps /var/tmp): its clients see
 * the daemon gone, a new client is refused, and the next daemon of the
 * name removes it, as gc does. A lock file rewritten to send clients to
 * another user's listener gets them -EPROTO: the socket's peer must own
 * the control region (LOCAL_PEERCRED).
 */
static int t_socket(void)
{
	struct served *sv = shared_map(sizeof(*sv));
	struct squat *q = shared_map(sizeof(*q));
	char name[80], sock[160], sock2[160], path[160], id[25];
	ml_chan *c = NULL, *d = NULL;
	struct stat st;
	pid_t pid = 0, qpid = 0;
	int fd = -1, err, ret = -1;

	name_of(name, sizeof(name), "sock");
	pid = start_daemon(sv, name);
	CHECK(pid > 0 && atomic_load(&sv->up) == 1, "daemon: %s", ml_strerror(atomic_load(&sv->err)));
	sock_of(name, sock, sizeof(sock));
	CHECK(sock[0], "the lock file names no socket");
	CHECK(strlen(sock) < 104, "%s: too long for macOS's sun_path", sock);
	CHECK(!stat(sock, &st) && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0666,
	      "%s: not a socket anyone may connect to (mode %o)", sock, (unsigned)st.st_mode & 0777);
	CHECK_RC(ml_client_connect(&c, name, &opts), 0);
	CHECK(ping(c, NULL) == 0, "round trip");
	kill_daemon(pid);
	pid = 0;
	CHECK_RC(ml_chan_wait(c, 2 * SEC), -EPIPE);
	ml_chan_close(c);
	c = NULL;
	CHECK(!stat(sock, &st), "the killed daemon's socket file went: who removed it?");
	err = ml_client_connect(&c, name, &opts);
	CHECK(err == -ENOENT || err == -EPIPE, "connect to a dead daemon: %s", ml_strerror(err));
	/* The next daemon of the name removes it, and has a socket of its own. */
	CHECK_RC(ml_daemon_create(&d, name, &opts), 0);
	CHECK(stat(sock, &st) && errno == ENOENT, "the dead daemon's socket file is left");
	sock_of(name, sock2, sizeof(sock2));
	CHECK(sock2[0] && strcmp(sock, sock2), "the new daemon's socket: %s", sock2);
	CHECK_RC(ml_client_connect(&c, name, &opts), 0);
	CHECK(ping(c, d) == 0, "round trip to the new daemon");
	ml_chan_close(c);
	c = NULL;
	/* Root may rewrite the lock file: to another user's listener. */
	snprintf(id, sizeof(id), "%024x", 0x5eed);
	snprintf(q->path, sizeof(q->path), XNU_SIM_LOCK_DIR "/memlink.%s.sock", id);
	unlink(q->path);
	qpid = spawn(squatter, q);
	CHECK(qpid > 0 && wait_flag(&q->up, 1, 5 * SEC) && atomic_load(&q->up) == 1,
	      "the other user's listener");
	lock_file(path, sizeof(path), name, false);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0 && pwrite(fd, id, 24, 16) == 24, "rewrite %s", path);
	err = ml_client_connect(&c, name, &opts);
	CHECK(err == -EPROTO, "sent to another user's socket: connect = %s, want %s",
	      ml_strerror(err), ml_strerror(-EPROTO));
	/* Put back, it works again. */
	CHECK(pwrite(fd, sock2 + strlen(XNU_SIM_LOCK_DIR "/memlink."), 24, 16) == 24, "restore");
	CHECK_RC(ml_client_connect(&c, name, &opts), 0);
	CHECK(ping(c, d) == 0, "round trip after");
	ml_chan_close(c);
	c = NULL;
	ml_chan_close(d);
	d = NULL;
	CHECK(stat(sock2, &st) && errno == ENOENT, "the daemon's close left its socket file");
	/* gc removes a killed daemon's socket file with its lock file. */
	atomic_store(&sv->up, 0);
	pid = start_daemon(sv, name);
	CHECK(pid > 0 && atomic_load(&sv->up) == 1, "daemon: %s", ml_strerror(atomic_load(&sv->err)));
	sock_of(name, sock, sizeof(sock));
	kill_daemon(pid);
	pid = 0;
	CHECK_RC(ml_chan_gc(name, ML_BACKEND_DARWIN), 1);
	CHECK(sock[0] && stat(sock, &st) && errno == ENOENT, "gc left the socket file %s", sock);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	atomic_store(&q->stop, 1);
	if (qpid > 0)
		reap(qpid, 5 * SEC);
	ml_chan_close(c);
	ml_chan_close(d);
	kill_daemon(pid);
	if (ret)
		remove_object(name);
	return ret;
}

/*
 * A daemon closing removes its own object and lock file only: xnu's
 * fstat() gives every shm object st_ino 0, so it is told by its token.
 * Here the old daemon's files went by hand and a new daemon took the name.
 */
static int t_close_leaves_newer(void)
{
	struct served *sv = shared_map(sizeof(*sv));
	char name[80], obj[96];
	ml_chan *d = NULL, *c = NULL;
	pid_t pid;
	int ret = -1;

	name_of(name, sizeof(name), "newer");
	pid = start_daemon(sv, name);
	CHECK(pid > 0 && atomic_load(&sv->up) == 1, "daemon: %s", ml_strerror(atomic_load(&sv->err)));
	CHECK(delete_lock(name) == 0, "no lock file to delete");
	snprintf(obj, sizeof(obj), "/memlink.%s", name);
	CHECK(!shm_unlink(obj), "shm_unlink %s: %s", obj, strerror(errno));
	CHECK_RC(ml_daemon_create(&d, name, &opts), 0);
	atomic_store(&sv->stop, 1);
	CHECK(reap_ok(pid, "old daemon", 5 * SEC), "old daemon");
	CHECK(lock_exists(name), "the old daemon's close removed the new one's lock file");
	CHECK_RC(ml_client_connect(&c, name, &opts), 0);
	CHECK(ping(c, d) == 0, "round trip to the new daemon");
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(d);
	if (ret)
		remove_object(name);
	return ret;
}

/*
 * One process, one descriptor per lock file: a client of this process
 * opening the lock file while a daemon of this process links it in must
 * not get a second descriptor (closing it would drop the daemon's locks:
 * record locks are the process's). The hooks put the client's open()
 * between the daemon's link() and the client's stat(), where it misses.
 */
struct race1 {
	char name[80], path[2][160];
	pthread_t client;
	_Atomic int at_link, stat_done, linked, armed;
	ml_chan *d;
	int err;
};

static struct race1 *R1;

static bool r1_path(const char *path)
{
	return !strcmp(path, R1->path[0]) || !strcmp(path, R1->path[1]);
}

static void r1_before_link(const char *path)
{
	if (!r1_path(path))
		return;
	atomic_store(&R1->at_link, 1);
	wait_flag(&R1->stat_done, 1, 2 * SEC);
}

static void r1_after_link(const char *path)
{
	if (r1_path(path))
		atomic_store(&R1->linked, 1);
}

static void r1_after_stat(const char *path)
{
	if (!r1_path(path) || !pthread_equal(pthread_self(), R1->client) ||
	    !atomic_exchange(&R1->armed, 0))
		return;
	atomic_store(&R1->stat_done, 1);
	wait_flag(&R1->linked, 1, 2 * SEC);
}

static void *r1_daemon(void *arg)
{
	(void)arg;
	R1->err = ml_daemon_create(&R1->d, R1->name, &opts);
	return NULL;
}

struct peek {
	char name[80];
	_Atomic int alive, create;
};

static int r1_look(void *arg)
{
	struct peek *pk = arg;
	struct ml_chan_status st = { .size = sizeof(st) };
	ml_chan *d;
	int err = ml_chan_inspect(pk->name, ML_BACKEND_DARWIN, &st);

	atomic_store(&pk->alive, err ? err : st.daemon_alive);
	err = ml_daemon_create(&d, pk->name, &opts);
	atomic_store(&pk->create, err);
	if (!err)
		ml_chan_close(d);
	return 0;
}

static int t_one_descriptor(void)
{
	struct race1 r = { 0 };
	struct peek *pk = shared_map(sizeof(*pk));
	ml_chan *c = NULL;
	pthread_t th;
	bool started = false;
	pid_t pid;
	int err, ret = -1;

	R1 = &r;
	name_of(r.name, sizeof(r.name), "onefd");
	lock_file(r.path[0], sizeof(r.path[0]), r.name, false);
	lock_file(r.path[1], sizeof(r.path[1]), r.name, true);
	r.client = pthread_self();
	atomic_store(&r.armed, 1);
	xnu_sim_before_link = r1_before_link;
	xnu_sim_after_link = r1_after_link;
	xnu_sim_after_stat = r1_after_stat;
	CHECK(!pthread_create(&th, NULL, r1_daemon, NULL), "pthread_create");
	started = true;
	CHECK(wait_flag(&r.at_link, 1, 5 * SEC), "the daemon never came to link()");
	err = ml_client_connect(&c, r.name, &opts); /* the daemon is not ready: any result */
	ml_chan_close(c);
	c = NULL;
	pthread_join(th, NULL);
	started = false;
	CHECK(atomic_load(&r.linked), "the hooks missed (err %d)", err);
	CHECK_RC(r.err, 0);
	/* Another process must see the daemon alive, and not start a second one. */
	snprintf(pk->name, sizeof(pk->name), "%s", r.name);
	pid = spawn(r1_look, pk);
	CHECK(reap_ok(pid, "look", 10 * SEC), "look");
	CHECK(atomic_load(&pk->alive) == 1, "the daemon looks dead to others: %d",
	      atomic_load(&pk->alive));
	CHECK(atomic_load(&pk->create) == -EEXIST, "a second daemon started: %s",
	      ml_strerror(atomic_load(&pk->create)));
	ret = 0;
out:
	if (started) {
		atomic_store(&r.stat_done, 1);
		pthread_join(th, NULL);
	}
	xnu_sim_before_link = NULL;
	xnu_sim_after_link = NULL;
	xnu_sim_after_stat = NULL;
	ml_chan_close(r.d);
	if (ret)
		remove_object(r.name);
	return ret;
}

/* A raw connection to `path`: -1 on failure. */
static int raw_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || strlen(path) >= sizeof(a.sun_path)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The daemon's hello, as lib/darwin/dwn.h has it. */
static void raw_hello(uint8_t h[16])
{
	uint32_t magic = 0x4d4c444bu;
	uint16_t version = 1, kind = 1;

	memset(h, 0, 16);
	memcpy(h, &magic, 4);
	memcpy(h + 4, &version, 2);
	memcpy(h + 6, &kind, 2);
}

/*
 * Read until `len` bytes or EOF, within `ms`: the bytes read, and the
 * descriptors that came (their count in *nfds; the last kept in *keep
 * if asked, the others closed).
 */
static ssize_t raw_read_fd(int fd, void *buf, size_t len, int ms, int *nfds, int *keep)
{
	int64_t end = now_ns() + (int64_t)ms * MS;
	size_t have = 0;

	*nfds = 0;
	while (have < len && now_ns() < end) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 4)];
		} u;
		struct iovec iov = { .iov_base = (char *)buf + have, .iov_len = len - have };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
				    .msg_controllen = sizeof(u.b) };
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recvmsg(fd, &m, MSG_DONTWAIT);
		if (n <= 0)
			break;
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
			for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int got;

				memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
				if (keep) {
					if (*keep >= 0)
						close(*keep);
					*keep = got;
				} else {
					close(got);
				}
				(*nfds)++;
			}
		have += (size_t)n;
	}
	return (ssize_t)have;
}

static ssize_t raw_read(int fd, void *buf, size_t len, int ms, int *nfds)
{
	return raw_read_fd(fd, buf, len, ms, nfds, NULL);
}

/* Closed by the daemon within `ms` (EOF, nothing more): true. */
static bool raw_closed(int fd, int ms)
{
	char b[64];
	int n = 0;

	return raw_read(fd, b, sizeof(b), ms, &n) == 0 && n == 0;
}

/* As uid 1002 on a 0600 channel: the daemon's refusal (its err field), or -1. */
static int refused_peer(void *arg)
{
	const char *path = arg;
	uint8_t h[16], r[32];
	gid_t g = 1002;
	int32_t err;
	int fd, n;

	if (setgroups(1, &g) || setgid(g) || setuid(1002))
		return 100;
	fd = raw_connect(path);
	raw_hello(h);
	if (fd < 0 || write(fd, h, sizeof(h)) != (ssize_t)sizeof(h) ||
	    raw_read(fd, r, sizeof(r), 5000, &n) != (ssize_t)sizeof(r) || n)
		return 101;
	memcpy(&err, r + 8, 4);
	return err == EACCES && raw_closed(fd, 5000) ? 0 : 102;
}

/*
 * Peers that break the protocol, against the daemon's service thread:
 * more silent connections than it keeps waiting, garbage, a hello with a
 * descriptor, half a hello, a peer joined by hand that keeps its area's
 * descriptor (it cannot resize the area) and floods knocks, another user
 * the mode refuses. Each gets what it should (closed, EINVAL, EACCES), and
 * a client connects and makes round trips throughout.
 */
static int t_hostile_peers(void)
{
	struct served *sv = shared_map(sizeof(*sv));
	char name[80], sock[160];
	uint8_t h[16], r[32], junk[4096];
	int silent[40], garbage = -1, withfd = -1, half = -1, joined = -1, area = -1, nfds, code;
	struct stat st;
	uint64_t size;
	void *p;
	ml_chan *c = NULL;
	pid_t pid = 0, ref;
	int ret = -1;

	for (unsigned i = 0; i < 40; i++)
		silent[i] = -1;
	name_of(name, sizeof(name), "peers");
	pid = start_daemon(sv, name);
	CHECK(pid > 0 && atomic_load(&sv->up) == 1, "daemon: %s", ml_strerror(atomic_load(&sv->err)));
	sock_of(name, sock, sizeof(sock));
	CHECK(sock[0], "no socket");
	for (unsigned i = 0; i < 40; i++)
		silent[i] = raw_connect(sock);
	/* A newcomer takes the place of the oldest silent one. */
	CHECK_RC(ml_client_connect(&c, name, &opts), 0);
	CHECK(ping(c, NULL) == 0, "round trip past 40 silent connections");
	CHECK(raw_closed(silent[0], 5000), "the oldest silent connection is still open");
	garbage = raw_connect(sock);
	memset(junk, 0xa5, 16);
	CHECK(garbage >= 0 && write(garbage, junk, 16) == 16, "garbage");
	CHECK(raw_closed(garbage, 5000), "garbage: not closed");
	withfd = raw_connect(sock);
	raw_hello(h);
	{
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} u = { 0 };
		struct iovec iov = { .iov_base = h, .iov_len = sizeof(h) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
				    .msg_controllen = sizeof(u.b) };
		int one = 0;

		u.h.cmsg_level = SOL_SOCKET;
		u.h.cmsg_type = SCM_RIGHTS;
		u.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&u.h), &one, sizeof(int));
		CHECK(withfd >= 0 && sendmsg(withfd, &m, 0) == (ssize_t)sizeof(h), "hello with a descriptor");
	}
	CHECK(raw_closed(withfd, 5000), "a hello with a descriptor: not closed without a word");
	half = raw_connect(sock);
	CHECK(half >= 0 && write(half, h, 8) == 8, "half a hello");
	CHECK(raw_closed(half, 6000), "half a hello: not closed after the daemon's wait");
	/* Joined by hand, then a flood of knocks: the daemon serves on. */
	joined = raw_connect(sock);
	CHECK(joined >= 0 && write(joined, h, sizeof(h)) == (ssize_t)sizeof(h), "hello");
	CHECK(raw_read_fd(joined, r, sizeof(r), 5000, &nfds, &area) == (ssize_t)sizeof(r) &&
		      nfds == 2 && area >= 0,
	      "a JOIN reply with the control region and the area: %d descriptors", nfds);
	/*
	 * The area's descriptor, kept: xnu sizes an object once, so the
	 * client can neither shrink it under the daemon (SIGBUS there) nor
	 * grow it, nor map past its end.
	 */
	memcpy(&size, r + 16, 8);
	CHECK(!fstat(area, &st) && (uint64_t)st.st_size == size && size >= 4096, "area size");
	CHECK(ftruncate(area, 0) && errno == EINVAL, "the client shrank its area");
	CHECK(ftruncate(area, (off_t)size * 2) && errno == EINVAL, "the client grew its area");
	p = mmap(NULL, (size_t)size * 2, PROT_READ | PROT_WRITE, MAP_SHARED, area, 0);
	CHECK(p == MAP_FAILED && errno == EINVAL, "mapped past the area's end");
	memset(junk, 'k', sizeof(junk));
	for (int k = 0; k < 256; k++) {
		if (write(joined, junk, sizeof(junk)) < 0)
			break;
		if (!(k & 15))
			CHECK(ping(c, NULL) == 0, "round trip during the flood (%d)", k);
	}
	CHECK(ping(c, NULL) == 0, "round trip after the flood");
	/* An onlooker's INSPECT: the control region alone, read-only for good. */
	{
		uint16_t kind = 2;
		int ro = -1, ins = raw_connect(sock);

		memcpy(h + 6, &kind, 2);
		CHECK(ins >= 0 && write(ins, h, sizeof(h)) == (ssize_t)sizeof(h), "inspect hello");
		CHECK(raw_read_fd(ins, r, sizeof(r), 5000, &nfds, &ro) == (ssize_t)sizeof(r) &&
			      nfds == 1 && ro >= 0,
		      "an INSPECT reply with the control region: %d descriptors", nfds);
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
		CHECK(p == MAP_FAILED && errno == EPERM, "the control region mapped for writing");
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
		CHECK(p != MAP_FAILED && !mprotect(p, 4096, PROT_READ) &&
			      mprotect(p, 4096, PROT_READ | PROT_WRITE) && errno == EACCES,
		      "mprotect made the control region writable");
		munmap(p, 4096);
		close(ro);
		CHECK(raw_closed(ins, 5000), "inspect: not closed after the reply");
		close(ins);
		kind = 1;
		memcpy(h + 6, &kind, 2);
	}
	ref = spawn(refused_peer, sock);
	code = reap(ref, 20 * SEC);
	CHECK(WIFEXITED(code) && WEXITSTATUS(code) == 0, "another user, mode 0600: exit %d",
	      WIFEXITED(code) ? WEXITSTATUS(code) : -1);
	CHECK(ping(c, NULL) == 0, "round trip at the end");
	ret = 0;
out:
	for (unsigned i = 0; i < 40; i++)
		if (silent[i] >= 0)
			close(silent[i]);
	if (garbage >= 0)
		close(garbage);
	if (withfd >= 0)
		close(withfd);
	if (half >= 0)
		close(half);
	if (joined >= 0)
		close(joined);
	if (area >= 0)
		close(area);
	ml_chan_close(c);
	atomic_store(&sv->stop, 1);
	if (pid > 0 && !reap_ok(pid, "daemon", 5 * SEC))
		ret = -1;
	if (ret)
		remove_object(name);
	return ret;
}

static const struct pt_test tests[] = {
	{ "xnu_shm_as_simulated", t_sim },
	{ "mode_without_umask", t_mode },
	{ "name_lengths", t_name_lengths },
	{ "names_differing_in_case", t_case },
	{ "lock_file_deleted_under_live_daemon", t_lock_deleted },
	{ "live_lock_never_with_dead_region", t_dead_region },
	{ "one_descriptor_per_lock_file", t_one_descriptor },
	{ "close_leaves_a_newer_daemon_be", t_close_leaves_newer },
	{ "socket_rendezvous", t_socket },
	{ "hostile_peers", t_hostile_peers },
};

int main(int argc, char **argv)
{
	struct pt_tally tally = { 0 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	pt_init();
	pt_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv, 60 * SEC, &tally);
	return pt_finish("darwin-sim-xnu", &tally);
}

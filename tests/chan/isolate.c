// SPDX-License-Identifier: MIT
/*
 * Channel tests: clients kept apart (issue 20). On a backend with private
 * areas (linux, kmod, darwin), a hostile client of another user, on a 0666 channel,
 * cannot map or write the control region, cannot name or map another
 * client's area, finds no other client's payload in anything it can
 * read, and scribbling over all it can write for seconds costs the other
 * clients nothing: every round trip comes back whole and in order, the
 * daemon reports the hostile client once (-EBADMSG) and gives its slot to
 * the next client once it has gone.
 *
 * Every process of a test is forked from the test process before it
 * touches any channel, so none inherits another's mappings: the daemon,
 * the victims and the hostile client each have only what the library
 * gave them.
 *
 * win (under wine): every process is the test program started anew, so
 * none has another's mappings either. Wine has one user, so the hostile
 * client is of the victims' and the daemon's user here: what a DACL
 * keeps from another user wine cannot show (tests/win/win_test.c shows
 * that a peer's ACE never opens the control region for writing, wine
 * checking DACLs on open), nor that Windows keeps a process of another
 * user out of the others' memory (the same user may read it: /proc's
 * checks are skipped). What it shows: the hostile's view of the control
 * region is read-only and cannot be made writable, a write to it faults,
 * the shared-region design's names are gone, it maps one area (its own)
 * and finds no victim's marker in all its memory, and its scribbling
 * costs the victims nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#endif

#ifdef __linux__
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../include/uapi/linux/memlink.h"
#endif

#include "proctest.h"
#include "chan_test.h"
#include "chan_layout.h"
#include "ring_layout.h"

#define ISO_VICTIM_UID 1001
#define ISO_HOSTILE_UID 1002
#define ISO_VICTIMS 3
#define ISO_MARK 16
#define ISO_MSG 64

struct iso {
	char name[80];
	/* the victims' marker, XORed with 0x5a: the hostile must not hold it */
	uint8_t hidden[ISO_MARK];
	_Atomic int daemon_up, stop, go;
	_Atomic int victims_up, victims_done;
	_Atomic int hostile_up, hostile_done, hostile_slot;
	_Atomic int victim_pid[ISO_VICTIMS], daemon_pid;
	_Atomic int victim_seq;                   /* win: each victim's number */
	unsigned max_clients;                     /* the daemon's slots; 0: iso_max_clients */
	_Atomic long badmsg[ML_CHAN_MAX_CLIENTS]; /* the daemon's -EBADMSG, per slot */
	_Atomic long served;
	_Atomic long found_foreign;               /* marker hits in the hostile's memory */
	_Atomic long found_own;                   /* marker hits in a victim's own memory */
	_Atomic long scribbles;
	_Atomic int cut_err;                      /* what the cut-off client's wait said */
	long trips;                               /* each victim's round trips */
	char why[256];                            /* a child's reason for failing */
};

static bool private_areas_here(void)
{
	if (strcmp(active_backend, "linux") && strcmp(active_backend, "kmod") &&
	    strcmp(active_backend, "darwin") && strcmp(active_backend, "win")) {
		skipf("clients have private areas on the linux, kmod, darwin and win backends only");
		return false;
	}
#ifdef __linux__
	if (geteuid() != 0) {
		skipf("needs root to run clients as other users");
		return false;
	}
#endif
	return true;
}

#if defined(__linux__) || defined(_WIN32)
#ifdef _WIN32
/* Wine has one user: every process of a test is of it (see the top). */
static int become(unsigned uid)
{
	(void)uid;
	return 0;
}
#else
/*
 * Another user, as a process started by that user would be: dumpable
 * again (a setuid() from root clears it), so that /proc guards it by
 * its uid, as it guards every ordinary process.
 */
static int become(uid_t uid)
{
	gid_t g = (gid_t)uid;

	return setgroups(1, &g) || setgid(g) || setuid(uid) || prctl(PR_SET_DUMPABLE, 1) ? -1 : 0;
}
#endif

/* Slots of the daemons the tests start (a test may want fewer). */
static unsigned iso_max_clients = ISO_VICTIMS + 1;

static struct ml_chan_opts iso_opts(void)
{
	struct ml_chan_opts o = opts_default();

	o.flags = ML_CHAN_ANY_DAEMON;
	o.ring_size = 16384;
	o.max_clients = iso_max_clients;
	o.mode = 0666;
	return o;
}

/* Connect as a client of a daemon of any user, while the name is not there yet. */
static int iso_connect(ml_chan **c, const char *name)
{
	struct ml_chan_opts o = iso_opts();
	int err;

	for (int64_t end = now_ns() + 10 * SEC;; sleep_ms(5)) {
		err = ml_client_connect(c, name, &o);
		if (err != -ENOENT || now_ns() > end)
			return err;
	}
}

/*
 * Say why in the shared page, once, with errno's story; the exit status
 * says which check.
 */
static int child_fail(struct iso *sh, int code, const char *what, const char *arg)
{
	if (!sh->why[0])
		snprintf(sh->why, sizeof(sh->why), "%s%s (errno: %s)", what, arg ? arg : "",
			 strerror(errno));
	return code;
}

#ifdef _WIN32
/*
 * How often the marker is in memory this process can read: every
 * committed region VirtualQuery calls readable, read through
 * ReadProcessMemory (which fails where a load would fault), skipping the
 * bytes at `skip` (the caller's own copy of the marker) and the buffer it
 * reads into.
 */
static long find_marker(const uint8_t *mark, const void *skip1, const void *skip2, size_t skiplen)
{
	static uint8_t buf[1 << 16];
	const DWORD readable = PAGE_READONLY | PAGE_READWRITE | PAGE_WRITECOPY | PAGE_EXECUTE_READ |
			       PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY;
	MEMORY_BASIC_INFORMATION mi;
	long hits = 0;

	for (uint8_t *at = NULL; VirtualQuery(at, &mi, sizeof(mi)) == sizeof(mi);
	     at = (uint8_t *)mi.BaseAddress + mi.RegionSize) {
		uint8_t *lo = mi.BaseAddress, *hi = lo + mi.RegionSize;

		if (mi.State != MEM_COMMIT || !(mi.Protect & readable) || (mi.Protect & PAGE_GUARD) ||
		    mi.RegionSize > (64u << 20))
			continue;
		for (uint8_t *p = lo; p < hi; p += sizeof(buf) - ISO_MARK) {
			size_t want = (size_t)(hi - p) < sizeof(buf) ? (size_t)(hi - p) : sizeof(buf);
			SIZE_T n = 0;

			if (!ReadProcessMemory(GetCurrentProcess(), p, buf, want, &n))
				n = 0;
			for (SIZE_T i = 0; n >= ISO_MARK && i + ISO_MARK <= n; i++) {
				const uint8_t *where = p + i;

				if (buf[i] != mark[0] || memcmp(buf + i, mark, ISO_MARK))
					continue;
				if ((where >= (const uint8_t *)skip1 &&
				     where < (const uint8_t *)skip1 + skiplen) ||
				    (where >= (const uint8_t *)skip2 &&
				     where < (const uint8_t *)skip2 + skiplen) ||
				    (where >= buf && where < buf + sizeof(buf)))
					continue;
				hits++;
			}
			if (want < sizeof(buf))
				break;
		}
	}
	return hits;
}

/* The marker, in a page of its own (skipped by find_marker). */
static uint8_t *reveal(const struct iso *sh)
{
	uint8_t *m = VirtualAlloc(NULL, 4096, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);

	for (int i = 0; m && i < ISO_MARK; i++)
		m[i] = sh->hidden[i] ^ 0x5a;
	return m;
}
#else
/*
 * How often the marker is in memory this process can read, found through
 * /proc/self/mem (which says EIO for what cannot be read, where a load
 * would fault), skipping the bytes at `skip` (the caller's own copy of
 * the marker, and the buffer it reads into).
 */
static long find_marker(const uint8_t *mark, const void *skip1, const void *skip2, size_t skiplen)
{
	static uint8_t buf[1 << 16];
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "re");
	int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	long hits = 0;

	if (!maps || mem < 0) {
		if (maps)
			fclose(maps);
		if (mem >= 0)
			close(mem);
		return -1;
	}
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];

		/*
		 * Not the sanitizers' shadow (terabytes, reserved and never
		 * touched): every mapping the library makes is far smaller.
		 */
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    strstr(line, "[vvar") || strstr(line, "[vsyscall]") || hi - lo > (64ul << 20))
			continue;
		for (unsigned long at = lo; at < hi; at += sizeof(buf) - ISO_MARK) {
			size_t want = hi - at < sizeof(buf) ? hi - at : sizeof(buf);
			ssize_t n = pread(mem, buf, want, (off_t)at);

			for (ssize_t i = 0; n >= ISO_MARK && i + ISO_MARK <= n; i++) {
				const uint8_t *where = (const uint8_t *)(at + (unsigned long)i);

				if (buf[i] != mark[0] || memcmp(buf + i, mark, ISO_MARK))
					continue;
				if ((where >= (const uint8_t *)skip1 &&
				     where < (const uint8_t *)skip1 + skiplen) ||
				    (where >= (const uint8_t *)skip2 &&
				     where < (const uint8_t *)skip2 + skiplen) ||
				    (where >= buf && where < buf + sizeof(buf)))
					continue;
				hits++;
			}
			if (want < sizeof(buf))
				break;
		}
	}
	fclose(maps);
	close(mem);
	return hits;
}

/* The marker, in a page of its own (skipped by find_marker). */
static uint8_t *reveal(const struct iso *sh)
{
	uint8_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	for (int i = 0; i < ISO_MARK; i++)
		m[i] = sh->hidden[i] ^ 0x5a;
	return m;
}
#endif

/* The daemon: echoes, counting -EBADMSG per client, until told to stop. */
static int iso_daemon(void *arg)
{
	struct iso *sh = arg;
	struct ml_chan_opts o = iso_opts();
	ml_chan *d = NULL;
	char buf[256];

	/* win: started anew, this process has not seen the test's setting. */
	if (sh->max_clients)
		o.max_clients = sh->max_clients;
	if (ml_daemon_create(&d, sh->name, &o))
		return child_fail(sh, 2, "daemon: create", NULL);
	atomic_store(&sh->daemon_up, 1);
	while (!atomic_load(&sh->stop)) {
		unsigned who = 0;
		int prio, n = ml_chan_recv(d, &prio, &who, buf, sizeof(buf));

		if (n >= 0) {
			if (ml_chan_send_wait(d, who, prio, buf, (size_t)n, 5 * SEC) == 0)
				atomic_fetch_add(&sh->served, 1);
		} else if (n == -EBADMSG && who >= ML_CHAN_MAX_CLIENTS) {
			/* Counted by slot; a bare slot number (no id) counts nowhere. */
			atomic_fetch_add(&sh->badmsg[ML_CHAN_SLOT(who)], 1);
		} else if (n == -EAGAIN) {
			ml_chan_wait(d, 50 * MS);
		}
	}
	ml_chan_close(d);
	return 0;
}

/* A well-behaved client of another user: round trips of marked messages, checked. */
static int iso_victim(void *arg)
{
	struct iso *sh = arg;
	ml_chan *c = NULL;
	uint8_t *mark, msg[ISO_MSG], back[ISO_MSG + 8];
	int id = -1, err;
	long hits;

#ifdef _WIN32
	/* Started anew, not forked: it takes the next number, and says its pid. */
	id = atomic_fetch_add(&sh->victim_seq, 1);
	if (id >= ISO_VICTIMS)
		id = -1;
	else
		atomic_store(&sh->victim_pid[id], (int)getpid());
#else
	for (int i = 0; i < ISO_VICTIMS; i++)
		if (atomic_load(&sh->victim_pid[i]) == (int)getpid())
			id = i;
#endif
	mark = reveal(sh);
	if (id < 0 || !mark || become(ISO_VICTIM_UID))
		return child_fail(sh, 2, "victim: set up", NULL);
	err = iso_connect(&c, sh->name);
	if (err) {
		errno = -err;
		return child_fail(sh, 3, "victim: connect", NULL);
	}
	atomic_fetch_add(&sh->victims_up, 1);
	if (!wait_flag(&sh->go, 1, 30 * SEC))
		return child_fail(sh, 4, "victim: no go", NULL);
	for (long k = 0; k < sh->trips; k++) {
		int prio;

		memcpy(msg, mark, ISO_MARK);
		msg[ISO_MARK] = (uint8_t)id;
		memcpy(msg + ISO_MARK + 1, &k, sizeof(k));
		memset(msg + ISO_MARK + 1 + sizeof(k), (int)(k & 0xff), ISO_MSG - ISO_MARK - 1 - sizeof(k));
		err = ml_chan_send_wait(c, 0, (int)(k % ML_PRIO_COUNT), msg, sizeof(msg), 10 * SEC);
		while (!err) {
			int n = ml_chan_recv(c, &prio, NULL, back, sizeof(back));

			if (n == (int)sizeof(msg)) {
				if (memcmp(back, msg, sizeof(msg)))
					return child_fail(sh, 5, "victim: a reply torn or not mine",
							  NULL);
				break;
			}
			if (n != -EAGAIN) {
				errno = n < 0 ? -n : EPROTO;
				return child_fail(sh, 6, "victim: recv", NULL);
			}
			err = ml_chan_wait(c, 10 * SEC);
		}
		if (err) {
			errno = -err;
			return child_fail(sh, 7, "victim: send or wait", NULL);
		}
	}
	/* The search works: our own messages are in our own area. */
	hits = find_marker(mark, mark, mark, 4096);
	if (hits > 0)
		atomic_fetch_add(&sh->found_own, hits);
	ml_chan_close(c);
	atomic_fetch_add(&sh->victims_done, 1);
	return 0;
}

static bool kmod_(void)
{
	return !strcmp(active_backend, "kmod");
}

#ifdef __linux__
static bool darwin_(void)
{
	return !strcmp(active_backend, "darwin");
}

/*
 * This process's slot of the channel: the one area it maps (linux), or
 * holds a descriptor of (kmod); -1 if not exactly one.
 */
static int own_slot(const char *name)
{
	char memfd[120];
	int slot = -1, n = 0;

	for (unsigned i = 0; i < ML_CHAN_MAX_CLIENTS; i++) {
		size_t len;
		int k = 0;

		if (kmod_()) {
			snprintf(memfd, sizeof(memfd), "ca%u.%s", i, name);
			kmod_region_fd(memfd, NULL, &k);
		} else if (darwin_()) {
			k = darwin_area(name, i, &len) != NULL;
		} else {
			snprintf(memfd, sizeof(memfd), "memlink.%s.%u", name, i);
			k = own_mapping(memfd, &len, NULL) != NULL;
		}
		if (k) {
			slot = (int)i;
			n += k;
		}
	}
	return n == 1 ? slot : -1;
}

/* Slot `slot`'s area as its client has it (kmod: mapped anew). */
static uint8_t *own_area(const char *name, int slot, size_t *len)
{
	char memfd[120];

	if (slot < 0)
		return NULL;
	if (kmod_() || darwin_())
		return area_map(name, (unsigned)slot, len);
	snprintf(memfd, sizeof(memfd), "memlink.%s.%d", name, slot);
	return own_mapping(memfd, len, NULL);
}

/* kmod: this process's one read-only mapping of a region (the control region's). */
static uint8_t *kmod_ro_mapping(size_t *len)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	uint8_t *found = NULL;
	int n = 0;

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];

		if (!strstr(line, " /dev/memlink\n") ||
		    sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[1] == 'w')
			continue;
		found = (uint8_t *)lo;
		*len = hi - lo;
		n++;
	}
	fclose(f);
	return n == 1 ? found : NULL;
}

/* kmod: attach region `region` on a new file: 0 or -errno. */
static int kmod_attach(const char *region, uint32_t flags)
{
	struct memlink_attach a = { .size = sizeof(a), .flags = flags };
	int fd = open("/dev/memlink", O_RDWR | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	snprintf(a.name, sizeof(a.name), "%s", region);
	err = ioctl(fd, MEMLINK_IOC_ATTACH, &a) ? -errno : 0;
	close(fd);
	return err;
}

/*
 * darwin (simulated): does any area object still have a name? The daemon
 * unlinks each as soon as it is made, so none can be opened by name.
 */
static bool darwin_no_area_names(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	bool none = true;

	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "memlink+", 8))
			none = false;
	if (d)
		closedir(d);
	return d && none;
}

/* darwin (simulated): a new descriptor of ours of the control region, dup()ed; -1 if none. */
static int darwin_ctl_fd(const char *name)
{
	char want[160], path[300], link[200];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	snprintf(want, sizeof(want), "/dev/shm/memlink.%s", name);
	while (d && found < 0 && (e = readdir(d))) {
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, link, sizeof(link) - 1);
		if (e->d_name[0] == '.' || k <= 0 || atoi(e->d_name) == dirfd(d))
			continue;
		link[k] = '\0';
		if (!strcmp(link, want))
			found = dup(atoi(e->d_name));
	}
	if (d)
		closedir(d);
	return found;
}

/* A write to p in a child must kill it with SIGSEGV. */
static bool write_faults(volatile uint8_t *p)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		p[64] = 0xee;
		_exit(0);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
	       WTERMSIG(status) == SIGSEGV;
}

/* Can this process open anything of process pid's that would show its memory? */
static const char *reaches(int pid)
{
	static const char *const what[] = { "mem", "fd", "map_files", "environ" };
	char path[64];

	for (unsigned i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		DIR *d;
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/%s", pid, what[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			if (i != 1 && i != 2)
				return what[i];
		}
		d = opendir(path);
		if (d) {
			struct dirent *e;
			int n = 0;

			while ((e = readdir(d)))
				n += e->d_name[0] != '.';
			closedir(d);
			if (n)
				return what[i];
		}
	}
	return NULL;
}

/*
 * What a hostile client tries, beyond its own area: the control region
 * (its mapping, a new mapping, write(), a reopen through /proc), other
 * areas, the other processes. 0 when every way is shut.
 */
static int try_ways_in(struct iso *sh, ml_chan *c)
{
	char memfd[120], path[64];
	size_t len = 0;
	bool w = true;
	uint8_t *ctl;
	void *p;
	int fd, fd2;

	(void)c;
	snprintf(memfd, sizeof(memfd), kmod_() ? "ch.%s" : "memlink.%s", sh->name);
	if (kmod_()) {
		ctl = kmod_ro_mapping(&len);
		w = false;
	} else if (darwin_()) {
		ctl = darwin_ctl(sh->name, &len, &w);
	} else {
		ctl = own_mapping(memfd, &len, &w);
	}
	if (!ctl || w)
		return child_fail(sh, 10, "hostile: control region mapped: ",
				  ctl ? "writable" : "none");
	if (!mprotect(ctl, len, PROT_READ | PROT_WRITE))
		return child_fail(sh, 11, "hostile: mprotect made the control region writable",
				  NULL);
	if (!write_faults(ctl))
		return child_fail(sh, 12, "hostile: a write to the control region did not fault",
				  NULL);
	/*
	 * darwin: its object, mode 0400, which xnu (and the simulation)
	 * opens for nobody but its creator's user and root, not even
	 * read-only; the library's read-only descriptor, which the daemon
	 * gave it, is all it has.
	 */
	if (darwin_()) {
		char obj[120];

		snprintf(obj, sizeof(obj), "/memlink.%s", sh->name);
		for (int k = 0; k < 2; k++) {
			fd = shm_open(obj, k ? O_RDONLY : O_RDWR, 0);
			if (fd >= 0 || errno != EACCES)
				return child_fail(sh, 13, "hostile: opened the control region",
						  k ? " read-only" : " for writing");
		}
		if (!darwin_no_area_names())
			return child_fail(sh, 13, "hostile: an area has a name", NULL);
		/* As an onlooker it gets the same read-only view, through the daemon. */
		{
			struct ml_chan_status st = { .size = sizeof(st) };
			int slot = own_slot(sh->name), err = ml_chan_inspect(sh->name, 0, &st);

			if (err || st.daemon_alive != 1 || slot < 0 || st.client[slot].alive != 1) {
				errno = err < 0 ? -err : EPROTO;
				return child_fail(sh, 13, "hostile: inspect", NULL);
			}
		}
	}
	/* linux: the daemon hands it to onlookers; kmod: our own file of it; darwin: ours. */
	if (darwin_())
		fd = darwin_ctl_fd(sh->name);
	else
		fd = kmod_() ? kmod_region_fd(memfd, NULL, NULL) : inspect_memfd(sh->name);
	if (fd < 0)
		return child_fail(sh, 13, "hostile: no control region descriptor", NULL);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED)
		return child_fail(sh, 14, "hostile: mapped the control region for writing", NULL);
	if (pwrite(fd, "x", 1, 64) >= 0)
		return child_fail(sh, 15, "hostile: wrote the control region", NULL);
	/* kmod: attaching it anew, for writing, and any area: all refused. */
	if (kmod_() && kmod_attach(memfd, 0) != -EPERM)
		return child_fail(sh, 15, "hostile: attached the control region for writing",
				  NULL);
	for (unsigned i = 0; kmod_() && i < iso_max_clients; i++) {
		char area[120];
		int e1, e2;

		snprintf(area, sizeof(area), "ca%u.%s", i, sh->name);
		e1 = kmod_attach(area, MEMLINK_ATTACH_RDONLY);
		e2 = kmod_attach(area, 0);
		if (e1 != -EBUSY || e2 != -EBUSY) {
			errno = e1 ? -e1 : -e2;
			return child_fail(sh, 17, "hostile: attached an area: ", area);
		}
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDWR | O_CLOEXEC);
	if (fd2 >= 0) {
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
		close(fd2);
		if (p != MAP_FAILED)
			return child_fail(sh, 16, "hostile: reopened the control region for writing",
					  NULL);
	}
	close(fd);
	if (own_slot(sh->name) < 0)
		return child_fail(sh, 17, "hostile: maps other areas than its own", NULL);
	for (int i = 0; i < ISO_VICTIMS; i++) {
		const char *r = reaches(atomic_load(&sh->victim_pid[i]));

		if (r)
			return child_fail(sh, 18, "hostile: reaches a victim's /proc/PID/", r);
	}
	if (reaches(atomic_load(&sh->daemon_pid)))
		return child_fail(sh, 19, "hostile: reaches the daemon's /proc/PID", NULL);
	return 0;
}
#endif

#ifdef _WIN32
/* This process's slot of the channel and its area, as the library mapped them. */
static uint8_t *my_area(struct iso *sh, ml_chan *c, int *slot, size_t *len)
{
	const struct ml__shm *s = (const struct ml__shm *)c;

	(void)sh;
	*slot = s->bell >= 1 && s->bell <= ML_CHAN_MAX_CLIENTS ? (int)s->bell - 1 : -1;
	if (*slot < 0)
		return NULL;
	*len = s->area_len;
	return s->area[*slot];
}

/* Views of file mappings in this process of exactly `len` bytes. */
static int views_of(size_t len)
{
	MEMORY_BASIC_INFORMATION mi;
	int n = 0;

	for (uint8_t *at = NULL; VirtualQuery(at, &mi, sizeof(mi)) == sizeof(mi);
	     at = (uint8_t *)mi.BaseAddress + mi.RegionSize)
		n += mi.Type == MEM_MAPPED && mi.State == MEM_COMMIT &&
		     mi.BaseAddress == mi.AllocationBase && mi.RegionSize == len;
	return n;
}

/*
 * What a hostile client tries, beyond its own area (wine: of the one
 * user; see the top): its view of the control region is read-only, cannot
 * be made writable, and a write to it faults (IsBadWritePtr writes under
 * an exception handler); the shared region's old per-slot objects
 * (memlink.NAME:G:bellN, holdN, probeN) are not there to open; it maps
 * exactly one area, its own. A new writable view of the control region
 * by name is refused only by the DACL to another user, which wine cannot
 * show (tests/win shows the ACE refusing). 0 when every way is shut.
 */
static int try_ways_in(struct iso *sh, ml_chan *c)
{
	const struct ml__shm *s = (const struct ml__shm *)c;
	MEMORY_BASIC_INFORMATION mi;
	DWORD old = 0;
	char obj[200];

	if (!VirtualQuery(s->base, &mi, sizeof(mi)) || mi.Protect != PAGE_READONLY)
		return child_fail(sh, 10, "hostile: control region mapped: ", "not read-only");
	if (VirtualProtect(s->base, 4096, PAGE_READWRITE, &old))
		return child_fail(sh, 11, "hostile: VirtualProtect made the control region writable",
				  NULL);
	if (!IsBadWritePtr(s->base + 64, 1))
		return child_fail(sh, 12, "hostile: a write to the control region did not fault",
				  NULL);
	for (unsigned b = 0; b <= ML_CHAN_MAX_CLIENTS; b++) {
		static const char *const what[] = { "bell", "hold", "probe" };
		long gen = -1;
		HANDLE h;

		for (long g = 0; g < 64 && gen < 0; g++) {
			snprintf(obj, sizeof(obj), "Local\\memlink.%s:%ld", sh->name, g);
			h = OpenFileMappingA(FILE_MAP_READ, FALSE, obj);
			if (h) {
				gen = g;
				CloseHandle(h);
			}
		}
		for (int k = 0; k < 3; k++) {
			/* The daemon's liveness stays (hold0, probe0): nobody rings with it. */
			if (b == 0 && k)
				continue;
			snprintf(obj, sizeof(obj), "Local\\memlink.%s:%ld:%s%u", sh->name, gen, what[k], b);
			h = k ? OpenMutexA(SYNCHRONIZE, FALSE, obj) : OpenEventA(SYNCHRONIZE, FALSE, obj);
			if (h) {
				CloseHandle(h);
				return child_fail(sh, 13, "hostile: opened a shared doorbell: ", obj);
			}
		}
	}
	if (views_of(s->area_len) != 1)
		return child_fail(sh, 17, "hostile: maps other areas than its own", NULL);
	return 0;
}
#else
static uint8_t *my_area(struct iso *sh, ml_chan *c, int *slot, size_t *len)
{
	(void)c;
	*slot = own_slot(sh->name);
	return own_area(sh->name, *slot, len);
}
#endif

/* The hostile client: looks for ways in, then scribbles over its area and searches. */
static int iso_hostile(void *arg)
{
	struct iso *sh = arg;
	uint64_t rnd = (uint64_t)now_ns() | 1;
	uint8_t *mark, *area;
	ml_chan *c = NULL;
	size_t len = 0;
	int slot, err;
	long hits;

	mark = reveal(sh);
	if (!mark || become(ISO_HOSTILE_UID))
		return child_fail(sh, 2, "hostile: set up", NULL);
	err = iso_connect(&c, sh->name);
	if (err) {
		errno = -err;
		return child_fail(sh, 3, "hostile: connect", NULL);
	}
	area = my_area(sh, c, &slot, &len);
	if (!area)
		return child_fail(sh, 4, "hostile: no area of its own", NULL);
	atomic_store(&sh->hostile_slot, slot);
	err = try_ways_in(sh, c);
	if (err)
		return err;
	atomic_store(&sh->hostile_up, 1);
	wait_flag(&sh->go, 1, 30 * SEC);
	/* While the victims talk: garbage everywhere it can write, and searches. */
	for (int64_t end = now_ns() + 2 * SEC; now_ns() < end;) {
		for (size_t i = 0; i + 8 <= len; i += 8) {
			rnd ^= rnd << 13;
			rnd ^= rnd >> 7;
			rnd ^= rnd << 17;
			memcpy(area + i, &rnd, 8);
		}
		ml_chan_signal(c);
		atomic_fetch_add(&sh->scribbles, 1);
		hits = find_marker(mark, mark, mark, 4096);
		if (hits)
			atomic_fetch_add(&sh->found_foreign, hits < 0 ? 1000000 : hits);
	}
	/* A request lane whose indices say more is written than the lane holds. */
	{
		uint64_t *head = (uint64_t *)(area + ML__PEER_SIZE + offsetof(struct ml__ring_shm, head));

		head[0] = 1u << 30;
	}
	ml_chan_signal(c);
	atomic_store(&sh->hostile_done, 1);
	/* The daemon says so before the hostile leaves. */
	for (int64_t end = now_ns() + 10 * SEC;
	     !atomic_load(&sh->badmsg[slot]) && now_ns() < end;)
		sleep_ms(10);
	_exit(0); /* no ml_chan_close(): its connection going is the news */
}

/*
 * A hostile client that breaks its header (connected, then setting up
 * again) and, once the daemon has cut it off, stays until told.
 */
static int iso_goes_back(void *arg)
{
	struct iso *sh = arg;
	struct ml__peer *p;
	ml_chan *c = NULL;
	size_t len = 0;
	int slot, err;

	if (become(ISO_HOSTILE_UID))
		return child_fail(sh, 2, "hostile: set up", NULL);
	err = iso_connect(&c, sh->name);
	if (err) {
		errno = -err;
		return child_fail(sh, 3, "hostile: connect", NULL);
	}
	p = (struct ml__peer *)my_area(sh, c, &slot, &len);
	if (!p)
		return child_fail(sh, 4, "hostile: no area of its own", NULL);
	atomic_store(&sh->hostile_slot, slot);
	/* Seen connected first, by a round trip. */
	if (roundtrip(c, ML_PRIO_HIGH, "hello", 5, 10 * SEC))
		return child_fail(sh, 5, "hostile: no round trip", NULL);
	atomic_store(&p->state, 0);
	ml_chan_signal(c);
	for (int64_t end = now_ns() + 10 * SEC; !atomic_load(&sh->badmsg[slot]);) {
		if (now_ns() > end)
			return child_fail(sh, 6, "hostile: never cut off", NULL);
		sleep_ms(5);
	}
	/* kmod: its area is dead once the daemon let it go (linux: it sleeps on). */
	for (int k = 0; k < 20 && !err; k++)
		err = ml_chan_wait(c, 100 * MS);
	atomic_store(&sh->cut_err, err);
	atomic_store(&sh->hostile_up, 1);
	wait_flag(&sh->hostile_done, 1, 30 * SEC);
	_exit(0);
}

/* A client of the victims' user that wants one round trip: 0, or connect's error. */
static int iso_newcomer(void *arg)
{
	struct iso *sh = arg;
	struct ml_chan_opts o = iso_opts();
	ml_chan *c = NULL;
	int err;

	if (become(ISO_VICTIM_UID))
		return 2;
	err = ml_client_connect(&c, sh->name, &o);
	if (err == -ECONNREFUSED)
		return 10;
	if (err)
		return 11;
	err = roundtrip(c, ML_PRIO_HIGH, "newcomer", 8, 10 * SEC);
	ml_chan_close(c);
	return err ? 12 : 0;
}

static int exit_code(pid_t pid, int64_t timeout)
{
	int st = reap(pid, timeout);

	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Set up: a daemon, the victims (connected, waiting for `go`), and the
 * hostile client (connected, its checks done). 0, or -1 with the reason
 * failed already.
 */
static int iso_start(struct iso *sh, const char *tag, long trips, pid_t *dpid, pid_t *vpid,
		     pid_t *hpid)
{
	uint64_t r = (uint64_t)now_ns() * 0x9e3779b97f4a7c15ull;

	chan_name(sh->name, sizeof(sh->name), tag);
	sh->trips = trips;
	for (int i = 0; i < ISO_MARK; i++, r = r * 6364136223846793005ull + 1442695040888963407ull)
		sh->hidden[i] = (uint8_t)(r >> 56) ^ 0x5a;
	*dpid = spawn(iso_daemon, sh);
	if (*dpid <= 0 || !wait_flag(&sh->daemon_up, 1, 10 * SEC)) {
		failf("daemon not up: %s", sh->why);
		return -1;
	}
	atomic_store(&sh->daemon_pid, (int)*dpid);
	for (int i = 0; i < ISO_VICTIMS; i++) {
#ifdef _WIN32
		vpid[i] = spawn(iso_victim, sh);
		if (vpid[i] <= 0) {
			failf("spawn");
			return -1;
		}
		continue;
#endif
		/* Its pid first: each victim finds its number by it. */
		vpid[i] = fork();
		if (vpid[i] == 0) {
			atomic_store(&sh->victim_pid[i], (int)getpid());
			_exit(iso_victim(sh));
		}
		if (vpid[i] < 0) {
			failf("fork");
			return -1;
		}
	}
	if (!wait_flag(&sh->victims_up, ISO_VICTIMS, 20 * SEC)) {
		failf("victims not up: %s", sh->why);
		return -1;
	}
	*hpid = spawn(iso_hostile, sh);
	if (*hpid <= 0 || !wait_flag(&sh->hostile_up, 1, 20 * SEC)) {
		failf("hostile client: %s", sh->why[0] ? sh->why : "not up");
		return -1;
	}
	return 0;
}

static void iso_stop(struct iso *sh, pid_t dpid, const pid_t *vpid, pid_t hpid)
{
	atomic_store(&sh->go, 1);
	if (hpid > 0)
		reap(hpid, 20 * SEC);
	for (int i = 0; i < ISO_VICTIMS; i++)
		if (vpid[i] > 0)
			reap(vpid[i], 30 * SEC);
	atomic_store(&sh->stop, 1);
	if (dpid > 0)
		reap(dpid, 10 * SEC);
}

/*
 * No way in: a hostile client of another user cannot map or write the
 * control region (its own mapping is read-only, mprotect is refused, a
 * write faults, a new writable mapping, write() and a reopen through
 * /proc fail), maps no area but its own, and cannot reach the victims' or
 * the daemon's memory through /proc. Then one round trip each.
 */
int t_isolate_no_way_in(void)
{
	struct iso *sh = shared_map(sizeof(*sh));
	pid_t dpid = 0, hpid = 0, vpid[ISO_VICTIMS] = { 0 };
	int ret = -1;

	if (!private_areas_here())
		return 1;
	CHECK(sh, "shared_map");
	CHECK_RC(iso_start(sh, "isoway", 1, &dpid, vpid, &hpid), 0);
	atomic_store(&sh->go, 1);
	CHECK(wait_flag(&sh->victims_done, ISO_VICTIMS, 30 * SEC), "victims: %s", sh->why);
	ret = 0;
out:
	iso_stop(sh, dpid, vpid, hpid);
	return ret;
}

/*
 * Scribbling: while three victims make their round trips, the hostile
 * client writes garbage over its whole area for two seconds (and rings),
 * and searches all the memory it can read for the victims' marker. Every
 * victim gets every reply back whole; the marker is never found by the
 * hostile (and found by a victim in its own memory, so the search works);
 * the daemon reports the hostile's slot once, no other; a newcomer is
 * refused while the hostile lives (the channel is full), and gets its
 * slot once it has gone.
 */
int t_isolate_scribble(void)
{
	struct iso *sh = shared_map(sizeof(*sh));
	pid_t dpid = 0, hpid = 0, vpid[ISO_VICTIMS] = { 0 }, n;
	int ret = -1, slot, code = -1;
	const char *env = getenv("CHAN_ISO_TRIPS");

	if (!private_areas_here())
		return 1;
	CHECK(sh, "shared_map");
	CHECK_RC(iso_start(sh, "isoscr", env ? atol(env) : 3000, &dpid, vpid, &hpid), 0);
	slot = atomic_load(&sh->hostile_slot);
	/* Full: a newcomer is refused while the hostile client lives. */
	n = spawn(iso_newcomer, sh);
	CHECK(n > 0 && (code = exit_code(n, 20 * SEC)) == 10,
	      "a newcomer while the channel is full: exit %d, want 10 (-ECONNREFUSED)", code);
	atomic_store(&sh->go, 1);
	for (int i = 0; i < ISO_VICTIMS; i++) {
		code = exit_code(vpid[i], 60 * SEC);
		vpid[i] = 0;
		CHECK(code == 0, "victim %d: exit %d: %s", i, code, sh->why);
	}
	CHECK(atomic_load(&sh->victims_done) == ISO_VICTIMS, "victims done %d",
	      atomic_load(&sh->victims_done));
	code = exit_code(hpid, 30 * SEC);
	hpid = 0;
	CHECK(code == 0, "hostile client: exit %d: %s", code, sh->why);
	CHECK(atomic_load(&sh->scribbles) > 0, "the hostile client never scribbled");
	CHECK(atomic_load(&sh->found_foreign) == 0,
	      "the hostile client found the victims' marker %ld times",
	      atomic_load(&sh->found_foreign));
	CHECK(atomic_load(&sh->found_own) > 0, "no victim found its own marker: the search is blind");
	for (int i = 0; i < ISO_VICTIMS + 1; i++)
		CHECK(atomic_load(&sh->badmsg[i]) == (i == slot),
		      "slot %d: -EBADMSG %ld times (the hostile's slot is %d)", i,
		      atomic_load(&sh->badmsg[i]), slot);
	/* Its slot goes to the next client once it has gone. */
	for (int64_t end = now_ns() + 10 * SEC;;) {
		n = spawn(iso_newcomer, sh);
		code = n > 0 ? exit_code(n, 20 * SEC) : -1;
		if (code != 10 || now_ns() > end)
			break;
		sleep_ms(20);
	}
	CHECK(code == 0, "a newcomer after the hostile left: exit %d", code);
	printf("  # %ld round trips served to %d victims while a hostile client scribbled %ld "
	       "times over its area; marker found by the hostile 0 times, by the victims %ld\n",
	       atomic_load(&sh->served), ISO_VICTIMS, atomic_load(&sh->scribbles),
	       atomic_load(&sh->found_own));
	ret = 0;
out:
	iso_stop(sh, dpid, vpid, hpid);
	return ret;
}
/*
 * A client cut off for breaking its header. linux: it keeps its slot's
 * bell while it lives: the slot is freed in the daemon's records, yet no
 * newcomer gets it (-ECONNREFUSED on a one-slot channel) until the broken
 * client has gone; then the next one does. kmod: its area dies with the
 * daemon's file of it (its wait says -EPIPE), and a newcomer gets a new
 * area for the slot at once, which the broken client cannot reach.
 */
int t_isolate_cut_off(void)
{
	struct iso *sh = shared_map(sizeof(*sh));
	pid_t dpid = 0, hpid = 0, n;
	int ret = -1, code = -1;

	if (!private_areas_here())
		return 1;
	CHECK(sh, "shared_map");
	iso_max_clients = 1;
	sh->max_clients = 1;
	chan_name(sh->name, sizeof(sh->name), "isocut");
	dpid = spawn(iso_daemon, sh);
	CHECK(dpid > 0 && wait_flag(&sh->daemon_up, 1, 10 * SEC), "daemon not up: %s", sh->why);
	hpid = spawn(iso_goes_back, sh);
	CHECK(hpid > 0 && wait_flag(&sh->hostile_up, 1, 20 * SEC), "hostile client: %s", sh->why);
	CHECK(atomic_load(&sh->badmsg[0]) == 1, "-EBADMSG %ld times, want once",
	      atomic_load(&sh->badmsg[0]));
	if (kmod_()) {
		CHECK(atomic_load(&sh->cut_err) == -EPIPE, "the cut-off client's wait: %d, want %d",
		      atomic_load(&sh->cut_err), -EPIPE);
		for (int64_t end = now_ns() + 10 * SEC;;) {
			n = spawn(iso_newcomer, sh);
			code = n > 0 ? exit_code(n, 20 * SEC) : -1;
			if (code != 10 || now_ns() > end)
				break;
			sleep_ms(20);
		}
		CHECK(code == 0, "a newcomer while the cut-off client lives: exit %d, want 0",
		      code);
	} else {
		n = spawn(iso_newcomer, sh);
		CHECK(n > 0 && (code = exit_code(n, 20 * SEC)) == 10,
		      "a newcomer while the cut-off client lives: exit %d, want 10 (-ECONNREFUSED)",
		      code);
	}
	atomic_store(&sh->hostile_done, 1);
	code = exit_code(hpid, 20 * SEC);
	hpid = 0;
	CHECK(code == 0, "hostile client: exit %d: %s", code, sh->why);
	for (int64_t end = now_ns() + 10 * SEC;;) {
		n = spawn(iso_newcomer, sh);
		code = n > 0 ? exit_code(n, 20 * SEC) : -1;
		if (code != 10 || now_ns() > end)
			break;
		sleep_ms(20);
	}
	CHECK(code == 0, "a newcomer after the cut-off client left: exit %d", code);
	ret = 0;
out:
	iso_max_clients = ISO_VICTIMS + 1;
	atomic_store(&sh->hostile_done, 1);
	if (hpid > 0)
		reap(hpid, 20 * SEC);
	atomic_store(&sh->stop, 1);
	if (dpid > 0)
		reap(dpid, 10 * SEC);
	return ret;
}
#else
int t_isolate_cut_off(void)
{
	private_areas_here();
	return 1;
}

int t_isolate_no_way_in(void)
{
	private_areas_here();
	return 1;
}

int t_isolate_scribble(void)
{
	private_areas_here();
	return 1;
}
#endif

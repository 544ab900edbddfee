// SPDX-License-Identifier: GPL-2.0
/*
 * A fuzzer for /dev/memlink: FZ_WORKERS processes at once do random things
 * to the device for ML_FUZZ_SECONDS (default 60; wall-clock, not scaled by
 * ML_TIME_SCALE, at most FZ_MAX_SECONDS):
 *
 *  - every ioctl of ABI version 2 with random field values (huge sizes and
 *    offsets, undefined flags, reserved fields, bad names), random struct
 *    sizes (smaller, the first version's, larger with a zero or a non-zero
 *    tail, more than a page), mostly encoded in the ioctl number as a
 *    caller's header would (MEMLINK_IOC()) and sometimes not, and random
 *    pointers: NULL, low, PROT_NONE, kernel, past the end of user space,
 *    misaligned, read-only, inside a memlink mapping, or a struct that ends
 *    right where a PROT_NONE page begins;
 *  - ioctl numbers of type MEMLINK_IOC_TYPE with random nr/dir/size bits,
 *    version 1's numbers (type 0xB8) and other types, and the real numbers
 *    with random upper bits (the kernel sees 32 bits);
 *  - create (REPLACE too)/attach/close/dup of files bound to regions of a
 *    small shared name pool, so that the processes race on the same
 *    regions, and of a dead region of root's that the parent keeps named:
 *    EEXIST to create, EPIPE to attach, EACCES to REPLACE for the
 *    unprivileged workers;
 *  - private regions among them (MEMLINK_CREATE_ONCE, _SEALED, _BELL with
 *    good and bad bell_offsets, also cut short by a first version's size):
 *    attaches then may be EBUSY or EPERM (never EPERM read-only), and
 *    MEMLINK_WAKE_BUMP is EINVAL but at a bell, where it works from any
 *    file (never EACCES);
 *  - LIST with random entry sizes, entry counts and entry pointers, on bound
 *    and unbound files: well-formed entries, no name twice, only what the
 *    caller may see, nothing written past the entries it reports;
 *  - mmap with random offsets, lengths, protections and flags, then
 *    touching, munmap, mprotect, mremap and madvise of those mappings;
 *  - wait and wake on a few hot words while other processes destroy the
 *    regions: relative waits (untimed and cut short by SIGALRM, or timed,
 *    and then sometimes cut short: the struct comes back as its deadline,
 *    and waits on when passed again) and deadlines on CLOCK_MONOTONIC or
 *    CLOCK_REALTIME (past, near, far); poll, epoll (an unbound file
 *    reports nothing), read and write on the files; flips of max_regions
 *    and the per-user limits (ENOSPC is legal);
 *  - some root workers in an IPC namespace of their own: there they see
 *    none of the others' regions.
 *
 * The parent SIGKILLs a random worker now and then and starts another in its
 * slot; a worker also exits by itself at times. It also stops and continues
 * a worker, or sends it SIGUSR1 (an SA_RESTART handler): neither may end a
 * wait with EINTR. Every worker of every slot and generation has its own
 * seed, derived from the run's seed, which is printed: ML_FUZZ_SEED=<seed>
 * replays the same operation streams (the interleaving of the processes,
 * and so some results, differ). In the VM:
 *   tools/vm/run.sh --tests build/tests/kmod/fuzz_test \
 *       --append "ML_FUZZ_SEED=0x... ML_FUZZ_SECONDS=300"
 * (the kernel hands unknown NAME=value arguments to init as environment).
 *
 * A worker fails the test when a call returns anything but 0 (a count for
 * WAKE, a length for read) or -1 with an errno of the contract of
 * include/uapi/linux/memlink.h for that call, when it returns another errno
 * than the one the contract dictates for the input (EFAULT for an
 * unreadable struct, E2BIG for a non-zero tail, EINVAL for an undefined
 * flag...), when it succeeds where it must not (an executable or private
 * mapping, a mapping past the end, growing one with mremap, a write
 * through a read-only attach), when the kernel writes outside the output
 * fields of the struct (WAIT's flags and timeout_ns only after a signal, to
 * its deadline), when a wait times out before its time or ends with EINTR
 * though no handler without SA_RESTART ran, or when a listing or a result
 * makes no sense. A worker that dies of a signal the parent did not send
 * (SIGSEGV, SIGBUS, or the OOM killer's SIGKILL) fails it too, as does one
 * that does not stop within a few seconds of being told to (a task stuck in
 * the module). At the end no region of the fuzzer may be left, and the
 * module's page and region counts must be back where they were. The VM
 * runner itself fails the run on any oops, WARNING, lockdep or KASAN report
 * and checks that the module unloads and leaks nothing.
 *
 * The module limits are lowered for the run (4 MiB regions, 24 MiB in all,
 * 12 MiB and 16 regions per user) so that huge sizes cannot push the VM
 * into the OOM killer and the per-user limits are reached, and restored.
 */
#include "memlink_test.h"

#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/time.h>

#define FZ_WORKERS		8
#define FZ_NAMES		6	/* the shared name pool */
#define FZ_DEAD			FZ_NAMES /* names[FZ_DEAD]: the parent's dead region */
#define FZ_FDS			8	/* files per worker */
#define FZ_MAPS			8	/* mappings per worker */
#define FZ_MAX_REGION		(4ULL << 20)
#define FZ_MAX_TOTAL		(24ULL << 20)
#define FZ_MAX_REGIONS_LO	12
#define FZ_MAX_REGIONS_HI	48
#define FZ_USER_BYTES		(12ULL << 20)
#define FZ_USER_BYTES_LO	(3ULL << 20)
#define FZ_USER_REGIONS		16
#define FZ_USER_REGIONS_LO	4
#define FZ_DEFAULT_SECONDS	60
#define FZ_MAX_SECONDS		1200
#define FZ_HARNESS_TIMEOUT	(FZ_MAX_SECONDS + 300)
#define FZ_UID			65534	/* every 4th worker runs as this user */
#define FZ_HOT_WORDS		6
#define FZ_NERR			136	/* errno slots in the counts; 0: success */
#define FZ_RESV_PAGES		16
#define FZ_LIST_PAGES		64	/* LIST's entries arena, then a PROT_NONE page */
#define FZ_FEATURES		0x1ffULL /* the MEMLINK_FEAT_* of version 2 */

/* Worker exit codes. */
#define FZ_EXIT_DONE		0	/* told to stop */
#define FZ_EXIT_FAIL		1	/* w->me->fail says why */
#define FZ_EXIT_AGAIN		3	/* left by itself: start another */

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#define MADV_POPULATE_WRITE	23
#endif

enum fz_op {
	OP_OPEN, OP_CLOSE, OP_DUP, OP_HANDSHAKE, OP_CREATE, OP_ATTACH, OP_INFO,
	OP_WAIT, OP_WAKE, OP_BADCMD, OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_MREMAP,
	OP_MADVISE, OP_TOUCH, OP_POLL, OP_EPOLL, OP_READ, OP_WRITE, OP_LIST,
	OP_PARAM, OP_EXIT, OP_COUNT
};

static const char *const fz_op_name[OP_COUNT] = {
	"open", "close", "dup", "handshake", "create", "attach", "info",
	"wait", "wake", "badcmd", "mmap", "munmap", "mprotect", "mremap",
	"madvise", "touch", "poll", "epoll", "read", "write", "list",
	"param", "exit",
};

static const unsigned int fz_weight[OP_COUNT] = {
	[OP_OPEN] = 50, [OP_CLOSE] = 35, [OP_DUP] = 10, [OP_HANDSHAKE] = 15,
	[OP_CREATE] = 60, [OP_ATTACH] = 80, [OP_INFO] = 40, [OP_WAIT] = 80,
	[OP_WAKE] = 80, [OP_BADCMD] = 60, [OP_MMAP] = 60, [OP_MUNMAP] = 25,
	[OP_MPROTECT] = 15, [OP_MREMAP] = 15, [OP_MADVISE] = 15,
	[OP_TOUCH] = 60, [OP_POLL] = 40, [OP_EPOLL] = 25, [OP_READ] = 40,
	[OP_WRITE] = 10, [OP_LIST] = 30, [OP_PARAM] = 2, [OP_EXIT] = 1,
};

/* Checks that passed, beyond the errno counts: what the run did verify. */
enum fz_stat {
	ST_SIZE_MISMATCH, ST_V1_HANDSHAKE, ST_EINTR_DEADLINE, ST_RESTART_DEADLINE, ST_RETRY,
	ST_REL_TIMEDOUT,
	ST_ABS_TIMEDOUT, ST_PAST_DEADLINE, ST_DEAD_EACCES, ST_DEAD_EEXIST, ST_DEAD_EPIPE,
	ST_LIST_ENTRIES, ST_LIST_FULL, ST_LIST_SHORT, ST_UNBOUND_POLL, ST_UNBOUND_EPOLL,
	ST_OWN_NS, ST_LIMIT_ENOSPC, ST_PRIV_CREATED, ST_BUMP_BELL, ST_BUMP_NOT_BELL, ST_COUNT
};

static const char *const fz_stat_name[ST_COUNT] = {
	"size-mismatch", "v1-handshake", "eintr-deadline", "restart-deadline", "eintr-retry",
	"rel-timedout", "abs-timedout", "past-deadline", "dead-eacces", "dead-eexist",
	"dead-epipe", "list-entries", "list-full", "list-short", "unbound-poll",
	"unbound-epoll", "own-ipc-ns", "limit-enospc", "private-created", "bump-bell",
	"bump-not-bell",
};

/* One worker slot, in memory shared with the parent. */
struct fz_slot {
	pid_t pid;
	int sent_kill;		/* the parent sent this pid SIGKILL */
	unsigned int gen;	/* workers started in this slot */
	unsigned int stops;	/* odd while the parent stops and continues it */
	int ready;		/* its handlers are in place: it may be signalled */
	int last_op;
	uint64_t ops;
	uint64_t res[OP_COUNT][FZ_NERR];	/* [op][0]: ok, [op][errno] */
	uint64_t stat[ST_COUNT];
	char fail[1024];
};

struct fz_shared {
	int stop;
	struct fz_slot w[FZ_WORKERS];
};

/* ---- the ioctls and their contract ---------------------------------------- */

enum { C_HANDSHAKE, C_CREATE, C_ATTACH, C_INFO, C_WAIT, C_WAKE, C_LIST, C_COUNT };

struct fz_cmd {
	const char *name;
	unsigned int cmd;
	size_t ks;		/* the struct */
	size_t minsz;		/* its first version */
	size_t out[2][2];	/* [from, to) bytes the kernel may write back */
	bool needs_bound;
	int errs[10];		/* the errnos it may fail with, 0-terminated */
};

#ifndef offsetofend
#define offsetofend(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#endif
#define FZ_OUT(type, from, to) { offsetof(type, from), offsetof(type, to) }

static const struct fz_cmd fz_cmds[C_COUNT] = {
	[C_HANDSHAKE] = { "HANDSHAKE", MEMLINK_IOC_HANDSHAKE, sizeof(struct memlink_handshake),
			  offsetofend(struct memlink_handshake, __reserved),
			  { FZ_OUT(struct memlink_handshake, abi_version, __reserved),
			    FZ_OUT(struct memlink_handshake, max_user_bytes, __reserved2) },
			  false, { EFAULT, EINVAL, E2BIG } },
	[C_CREATE] = { "CREATE", MEMLINK_IOC_CREATE, sizeof(struct memlink_create),
		       offsetofend(struct memlink_create, name), { { 0, 0 } }, false,
		       { EFAULT, EINVAL, E2BIG, EEXIST, EACCES, ENOMEM, ENOSPC } },
	[C_ATTACH] = { "ATTACH", MEMLINK_IOC_ATTACH, sizeof(struct memlink_attach),
		       sizeof(struct memlink_attach),
		       { FZ_OUT(struct memlink_attach, region_size, name) }, false,
		       { EFAULT, EINVAL, E2BIG, ENOENT, EACCES, EPIPE, EPERM, EBUSY } },
	/* The kernel puts its own struct size in size (op_info checks it). */
	[C_INFO] = { "INFO", MEMLINK_IOC_INFO, sizeof(struct memlink_info),
		     sizeof(struct memlink_info),
		     { FZ_OUT(struct memlink_info, size, flags),
		       { offsetof(struct memlink_info, region_size), sizeof(struct memlink_info) } },
		     true, { EFAULT, EINVAL, E2BIG } },
	/* flags and timeout_ns are written after a signal only: fz_call() knows. */
	[C_WAIT] = { "WAIT", MEMLINK_IOC_WAIT, sizeof(struct memlink_wait),
		     sizeof(struct memlink_wait), { { 0, 0 } }, true,
		     { EFAULT, EINVAL, E2BIG, EAGAIN, ETIMEDOUT, EINTR, EPIPE } },
	[C_WAKE] = { "WAKE", MEMLINK_IOC_WAKE, sizeof(struct memlink_wake),
		     sizeof(struct memlink_wake), { { 0, 0 } }, true,
		     { EFAULT, EINVAL, E2BIG, EACCES } },
	[C_LIST] = { "LIST", MEMLINK_IOC_LIST, sizeof(struct memlink_list),
		     sizeof(struct memlink_list),
		     { FZ_OUT(struct memlink_list, count, __reserved),
		       FZ_OUT(struct memlink_list, all_bytes, __reserved2) },
		     false, { EFAULT, EINVAL, E2BIG, ENOMEM } },
};

static bool fz_errno_in(const int *errs, int e)
{
	for (; *errs; errs++)
		if (*errs == e)
			return true;
	return false;
}

/* ---- worker state ------------------------------------------------------------ */

enum { B_NO, B_YES };		/* what a file slot knows of its binding */
enum { T_NO, T_YES, T_UNKNOWN };

struct fz_fd {
	int fd;			/* -1: empty */
	int acc;		/* O_RDONLY, O_WRONLY or O_RDWR */
	int bound;		/* B_YES is sure; B_NO is sure unless shared */
	bool shared;		/* dup()ed: another slot may bind the file */
	int creator;		/* T_* */
	int rdonly;		/* T_* */
	int name;		/* pool index, -1 unknown */
	uint64_t size;		/* region size, 0 unknown */
	int bell;		/* T_*: the region has a bell (MEMLINK_CREATE_BELL) */
	uint64_t bell_off;	/* at this offset, when bell is T_YES */
	uint64_t wakes;		/* the last read() */
	uint32_t tag;		/* this open's, in its epoll registrations */
	bool epolled;		/* registered with w->epfd */
};

struct fz_map {
	char *addr;		/* NULL: empty */
	size_t len;
	int prot;
	int slot;		/* the file slot while it is open, else -1 */
	uint64_t off;		/* file offset of addr */
};

struct wk {
	struct fz_shared *sh;
	struct fz_slot *me;
	int idx;
	bool root;		/* euid 0: CAP_IPC_OWNER and CAP_SYS_ADMIN */
	bool own_ns;		/* in an IPC namespace of its own */
	uint64_t rng;
	long page;
	int64_t hard_end;
	char names[FZ_NAMES + 1][MEMLINK_NAME_MAX];
	struct fz_fd fds[FZ_FDS];
	struct fz_map maps[FZ_MAPS];
	uint32_t next_tag;
	char *buf;		/* two pages, read-write */
	char *edge;		/* a read-write page, then a PROT_NONE one */
	char *ro;		/* a read-only page */
	char *resv;		/* FZ_RESV_PAGES of PROT_NONE */
	char *lbuf;		/* FZ_LIST_PAGES read-write, then a PROT_NONE one */
	int epfd;
	bool alarm_armed;
	/* Set by the op for fz_call(): EFAULT may come from elsewhere (LIST). */
	bool efault_ok;
	/* What fz_call() saw of its call. */
	uint32_t usize;		/* the size field */
	bool sig_alarm;		/* a SIGALRM handler ran during it */
	bool sig_restart;	/* a stop or an SA_RESTART handler may have restarted it */
	unsigned char snap[8192];	/* the struct and canary before a call */
};

/* Handler runs, to tell an EINTR or a restart from nothing. */
static volatile sig_atomic_t fz_alarms, fz_usr1s;

static void fz_on_alarm(int sig)
{
	(void)sig;
	fz_alarms++;
}

static void fz_on_usr1(int sig)
{
	(void)sig;
	fz_usr1s++;
}

/* Signals around a blocking call: take a mark before, judge after. */
struct fz_sigmark {
	sig_atomic_t alarms, usr1s;
	unsigned int stops;
};

static void fz_sigmark(struct wk *w, struct fz_sigmark *m)
{
	m->alarms = fz_alarms;
	m->usr1s = fz_usr1s;
	m->stops = __atomic_load_n(&w->me->stops, __ATOMIC_SEQ_CST);
}

/* A handler without SA_RESTART ran since the mark. */
static bool fz_sig_alarm(const struct fz_sigmark *m)
{
	return fz_alarms != m->alarms;
}

/*
 * A stop or an SA_RESTART handler may have interrupted the call since the
 * mark. The parent counts a stop and continue as two increments around
 * both signals, and SIGCONT drops a stop still pending: an even count
 * unchanged since the mark means that no stop reached the call.
 */
static bool fz_sig_restart(struct wk *w, const struct fz_sigmark *m)
{
	return fz_usr1s != m->usr1s || (m->stops & 1) ||
	       __atomic_load_n(&w->me->stops, __ATOMIC_SEQ_CST) != m->stops;
}

static uint64_t fz_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(struct wk *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(struct wk *w, uint64_t n)
{
	return n ? rnd(w) % n : 0;
}

/* True with probability n/1000. */
static bool chance(struct wk *w, unsigned int n)
{
	return below(w, 1000) < n;
}

static void __attribute__((noreturn, format(printf, 2, 3)))
fz_fail(struct wk *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(w->me->fail, sizeof(w->me->fail), "worker %d (pid %d, uid %d, op #%llu %s): ",
		     w->idx, (int)getpid(), (int)geteuid(), (unsigned long long)w->me->ops,
		     fz_op_name[w->me->last_op]);
	va_start(ap, fmt);
	vsnprintf(w->me->fail + n, sizeof(w->me->fail) - n, fmt, ap);
	va_end(ap);
	_exit(FZ_EXIT_FAIL);
}

static void fz_count(struct wk *w, int op, int ret, int err)
{
	int e = ret < 0 ? err : 0;

	w->me->res[op][e > 0 && e < FZ_NERR ? e : (e ? FZ_NERR - 1 : 0)]++;
}

static void fz_stat(struct wk *w, int st)
{
	w->me->stat[st]++;
}

static int64_t fz_clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * ML_NSEC_PER_SEC + ts.tv_nsec;
}

/*
 * SIGALRM every `ms` until disarmed, to cut an untimed wait or poll short.
 * Not one-shot: on a slow machine the first may come before the call has
 * started, and the call would then never end.
 */
static void fz_arm(struct wk *w, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct itimerval it = { .it_interval = tv, .it_value = tv };

	setitimer(ITIMER_REAL, &it, NULL);
	w->alarm_armed = true;
}

static void fz_disarm(struct wk *w)
{
	struct itimerval it = { { 0, 0 }, { 0, 0 } };

	setitimer(ITIMER_REAL, &it, NULL);
	w->alarm_armed = false;
}

static bool fz_name_ok(const char *n)
{
	size_t len = strnlen(n, MEMLINK_NAME_MAX), i;

	if (!len || len == MEMLINK_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/*
 * A name for create/attach: mostly from the pool, at times the parent's dead
 * region; *pool gets its index (FZ_DEAD for that one).
 */
static void fz_pick_name(struct wk *w, char *dst, int *pool)
{
	static const char bad[] = "/ \n\xe9*:";
	size_t len;

	memset(dst, 0, MEMLINK_NAME_MAX);
	*pool = -1;
	if (!chance(w, 100)) {
		*pool = chance(w, 40) ? FZ_DEAD : (int)below(w, FZ_NAMES);
		memcpy(dst, w->names[*pool], strlen(w->names[*pool]));
		return;
	}
	switch (below(w, 5)) {
	case 0:		/* empty */
		break;
	case 1:		/* no NUL in 64 bytes */
		memset(dst, 'a' + below(w, 26), MEMLINK_NAME_MAX);
		break;
	case 2:		/* 63 bytes: the longest valid name, not in the pool */
		snprintf(dst, MEMLINK_NAME_MAX, "%s", w->names[below(w, FZ_NAMES)]);
		len = strlen(dst);
		memset(dst + len, 'z', MEMLINK_NAME_MAX - 1 - len);
		break;
	case 3:		/* a pool name with a bad character */
		memcpy(dst, w->names[0], strlen(w->names[0]));
		dst[below(w, strlen(w->names[0]))] = bad[below(w, sizeof(bad) - 1)];
		break;
	default:	/* random bytes */
		len = 1 + below(w, MEMLINK_NAME_MAX - 1);
		for (size_t i = 0; i < len; i++)
			dst[i] = (char)(1 + below(w, 255));
		break;
	}
}

/* An open file slot, opening one when there is none; -1 when that fails. */
static int fz_any_slot(struct wk *w);

static int fz_open_slot(struct wk *w, int s)
{
	static const int accs[] = { O_RDWR, O_RDWR, O_RDWR, O_RDWR, O_RDWR, O_RDWR, O_RDWR,
				    O_RDWR, O_RDONLY, O_WRONLY };
	int acc = accs[below(w, ARRAY_SIZE(accs))];
	int fd = open(ML_DEV, acc | O_CLOEXEC | (chance(w, 100) ? O_NONBLOCK : 0));

	fz_count(w, OP_OPEN, fd, errno);
	if (fd < 0) {
		if (errno != ENOMEM && errno != EMFILE && errno != ENFILE)
			fz_fail(w, "open(%s): %s", ML_DEV, strerror(errno));
		return -1;
	}
	w->fds[s] = (struct fz_fd){ .fd = fd, .acc = acc, .bound = B_NO, .creator = T_NO,
				    .rdonly = T_NO, .name = -1, .bell = T_UNKNOWN,
				    .tag = ++w->next_tag };
	return s;
}

static int fz_any_slot(struct wk *w)
{
	int start = below(w, FZ_FDS), i;

	for (i = 0; i < FZ_FDS; i++) {
		int s = (start + i) % FZ_FDS;

		if (w->fds[s].fd >= 0)
			return s;
	}
	return fz_open_slot(w, start);
}

/* For the calls on a region: mostly a slot known to be bound, if any. */
static int fz_region_slot(struct wk *w)
{
	int start = below(w, FZ_FDS), i;

	if (chance(w, 750))
		for (i = 0; i < FZ_FDS; i++) {
			int s = (start + i) % FZ_FDS;

			if (w->fds[s].fd >= 0 && w->fds[s].bound == B_YES)
				return s;
		}
	return fz_any_slot(w);
}

static int fz_bound(struct wk *w, int s)
{
	struct fz_fd *f = &w->fds[s];

	if (f->bound == B_YES)
		return B_YES;
	return f->shared ? -1 : B_NO;
}

static void fz_close_slot(struct wk *w, int s)
{
	int i;

	if (w->fds[s].fd < 0)
		return;
	if (close(w->fds[s].fd))
		fz_fail(w, "close: %s", strerror(errno));
	w->fds[s].fd = -1;
	for (i = 0; i < FZ_MAPS; i++)
		if (w->maps[i].addr && w->maps[i].slot == s)
			w->maps[i].slot = -1;
}

/* ---- struct placement -------------------------------------------------------- */

enum { PL_GOOD, PL_MISALIGN, PL_EDGE, PL_RO, PL_REGION, PL_NULL, PL_LOW, PL_RESV,
	PL_KERNEL, PL_BEYOND, PL_COUNT };

static const char *const fz_pl_name[PL_COUNT] = {
	"good", "misaligned", "edge", "read-only", "in-region", "NULL", "low", "PROT_NONE",
	"kernel", "past-user",
};

struct fz_arg {
	int pl;
	char *ptr;
	size_t readable;	/* bytes the kernel can read at ptr */
	bool exact;		/* the bytes there are ours, nobody else's */
	size_t snap;		/* bytes saved in w->snap (good placements) */
};

static int fz_pick_pl(struct wk *w)
{
	static const unsigned int cum[PL_COUNT] = { 620, 700, 780, 830, 880, 910, 930, 960,
						    980, 1000 };
	unsigned int r = below(w, 1000);
	int i;

	for (i = 0; i < PL_COUNT; i++)
		if (r < cum[i])
			return i;
	return PL_GOOD;
}

/* A mapping of ours, for ioctl structs inside a region; -1 if none. */
static int fz_any_map(struct wk *w)
{
	int start = below(w, FZ_MAPS), i;

	for (i = 0; i < FZ_MAPS; i++) {
		int m = (start + i) % FZ_MAPS;

		if (w->maps[m].addr)
			return m;
	}
	return -1;
}

/*
 * Lay out the struct `img` (ks bytes, its size field already usize) at a
 * pointer of a random kind; a size above ks gets a tail of zeros, or of
 * garbage when tail_nz.
 */
static void fz_place(struct wk *w, struct fz_arg *a, const void *img, size_t ks, uint32_t usize,
		     bool tail_nz)
{
	static const uintptr_t kaddr[] = {
		0xffff888000000000UL, 0xffffffff81000000UL, 0xffffffffff600000UL,
		0xfffffffffffff000UL, 0xfffffffffffffffcUL, 0x8000000000000000UL,
	};
	size_t len = usize < w->page + 64 ? usize : w->page + 64, n;
	unsigned char tmp[8192];

	if (len < sizeof(__u32))	/* the size field is there, whatever it says */
		len = sizeof(__u32);
	memset(tmp, 0, len + 16);
	memcpy(tmp, img, len < ks ? len : ks);
	if (tail_nz && len > ks)
		tmp[ks + below(w, len - ks)] = 1 + below(w, 255);
	a->pl = fz_pick_pl(w);
	a->exact = true;
	a->snap = 0;
	switch (a->pl) {
	case PL_GOOD:
	case PL_MISALIGN:
		a->ptr = w->buf + (a->pl == PL_MISALIGN ? 1 + below(w, 7) : 0);
		a->readable = SIZE_MAX;
		memcpy(a->ptr, tmp, len);
		/* A canary after it: the kernel writes no further than usize. */
		memset(a->ptr + len, 0xa5, 16);
		a->snap = len + 16;
		memcpy(w->snap, a->ptr, a->snap);
		break;
	case PL_EDGE:
		/* The struct (or its size field, or less) ends at PROT_NONE. */
		n = 1 + below(w, (len > ks ? len : ks) + 8);
		if (n > (size_t)w->page)
			n = w->page;
		a->ptr = w->edge + w->page - n;
		a->readable = n;
		memcpy(a->ptr, tmp, n < len ? n : len);
		if (n > len)
			memset(a->ptr + len, 0, n - len);
		break;
	case PL_RO:
		mprotect(w->ro, w->page, PROT_READ | PROT_WRITE);
		memcpy(w->ro, tmp, len);
		mprotect(w->ro, w->page, PROT_READ);
		a->ptr = w->ro;
		a->readable = w->page;
		break;
	case PL_REGION: {
		int m = fz_any_map(w);
		struct fz_map *mp;

		if (m < 0) {
			a->pl = PL_NULL;
			a->ptr = NULL;
			a->readable = 0;
			break;
		}
		/* Others write there too: nothing about it is exact. */
		mp = &w->maps[m];
		a->ptr = mp->addr + (below(w, mp->len) & ~7UL);
		if (mp->prot & PROT_WRITE)
			memcpy(a->ptr, tmp, (size_t)(mp->addr + mp->len - a->ptr) < len ?
			       (size_t)(mp->addr + mp->len - a->ptr) : len);
		a->exact = false;
		a->readable = 0;
		break;
	}
	case PL_NULL:
		a->ptr = NULL;
		a->readable = 0;
		break;
	case PL_LOW:
		a->ptr = (char *)(uintptr_t)(1 + below(w, 65535));
		a->readable = 0;
		break;
	case PL_RESV:
		a->ptr = w->resv + below(w, FZ_RESV_PAGES * w->page - 8);
		a->readable = 0;
		break;
	case PL_KERNEL:
		a->ptr = (char *)kaddr[below(w, ARRAY_SIZE(kaddr))];
		a->readable = 0;
		break;
	default:	/* past the end of user space */
		a->ptr = (char *)(uintptr_t)(0x7ffffffff000UL + below(w, 8192));
		a->readable = 0;
		break;
	}
}

/* A struct size: mostly right, sometimes smaller, larger or absurd. */
static uint32_t fz_pick_usize(struct wk *w, const struct fz_cmd *c, bool *tail_nz)
{
	uint32_t r = below(w, 1000);

	*tail_nz = false;
	if (r < 700)
		return c->ks;
	if (r < 730 && c->minsz < c->ks)	/* a caller of the first version */
		return c->minsz + below(w, c->ks - c->minsz);
	if (r < 780)
		return below(w, c->minsz);
	if (r < 880)
		return c->ks + 1 + below(w, 128);
	if (r < 930) {
		*tail_nz = true;
		return c->ks + 1 + below(w, 128);
	}
	if (r < 960)
		return w->page + below(w, 2);
	if (r < 980)
		return w->page - below(w, 8);
	return (uint32_t)rnd(w);
}

/* The size of a call: its size field, and the size its number encodes. */
struct fz_size {
	uint32_t usize;
	uint32_t enc;
	bool tail_nz;		/* garbage past the kernel's struct */
};

/*
 * Mostly the number encodes the size field, as MEMLINK_IOC() in a caller's
 * header would; sometimes they disagree (the header's size with another
 * size field, or any).
 */
static void fz_pick_size(struct wk *w, const struct fz_cmd *c, struct fz_size *sz)
{
	sz->usize = fz_pick_usize(w, c, &sz->tail_nz);
	sz->enc = sz->usize <= _IOC_SIZEMASK ? sz->usize : c->ks;
	if (chance(w, 80)) {
		switch (below(w, 3)) {
		case 0:
			sz->enc = c->ks;
			break;
		case 1:
			sz->enc = (sz->usize + 1 + below(w, 16)) & _IOC_SIZEMASK;
			break;
		default:
			sz->enc = below(w, _IOC_SIZEMASK + 1);
			break;
		}
	}
}

/*
 * The errno the contract dictates for this call before the fields are
 * looked at, or -1 when that is not known (then *intact tells whether the
 * kernel sees the struct exactly as laid out, so that the caller's field
 * checks apply). The order is the module's: binding, the size field's
 * read, below the first version, above a page, not the number's size,
 * then copy_struct_from_user() (the tail, then the struct).
 */
static int fz_expect(struct wk *w, const struct fz_cmd *c, int bound, const struct fz_arg *a,
		     const struct fz_size *sz, bool *intact)
{
	*intact = false;
	if (c->needs_bound) {
		if (bound == B_NO)
			return EINVAL;
		if (bound != B_YES)
			return -1;
	}
	if (!a->exact)
		return -1;
	if (a->readable < sizeof(__u32))
		return EFAULT;
	if (sz->usize < c->minsz)
		return EINVAL;
	if (sz->usize > (uint32_t)w->page)
		return E2BIG;
	if (sz->usize != sz->enc)
		return EINVAL;
	if (a->readable < sz->usize)
		/* A garbage tail may be found before the fault. */
		return sz->usize > c->ks && sz->tail_nz ? -1 : EFAULT;
	if (sz->usize > c->ks && sz->tail_nz)
		return E2BIG;
	*intact = true;
	return -1;
}

static bool fz_is_out(const struct fz_cmd *c, size_t i)
{
	return (i >= c->out[0][0] && i < c->out[0][1]) || (i >= c->out[1][0] && i < c->out[1][1]);
}

/*
 * Issue ioctl c on slot s with the struct img (ks bytes, fields set; its
 * size field and the number's size are sz's, or chosen here when sz is
 * NULL). fexp: the errno dictated by the fields when the kernel sees them
 * intact (-1: none). Returns the ioctl's result; *err its errno, *intact
 * whether the fields reached the kernel as they are, and the struct as the
 * kernel left it is copied back to img when readable. w->usize and
 * w->sig_* tell the op more.
 */
static int fz_call(struct wk *w, int op, int ci, int s, void *img, int fexp, int *err,
		   bool *intact, const struct fz_size *psz)
{
	const struct fz_cmd *c = &fz_cmds[ci];
	struct fz_sigmark mark;
	struct fz_size sz;
	struct fz_arg a;
	unsigned long cmd;
	bool efault_ok = w->efault_ok, saw;
	int exp, ret, e;
	size_t i, lim;

	w->efault_ok = false;
	if (psz)
		sz = *psz;
	else
		fz_pick_size(w, c, &sz);
	cmd = MEMLINK_IOC(_IOC_NR(c->cmd), sz.enc);
	memcpy(img, &sz.usize, sizeof(sz.usize));
	fz_place(w, &a, img, c->ks, sz.usize, sz.tail_nz);
	exp = fz_expect(w, c, fz_bound(w, s), &a, &sz, intact);
	saw = *intact;
	if (exp < 0 && *intact)
		exp = fexp;
	/* EINVAL for the number's size alone: the struct was all right. */
	if (exp == EINVAL && a.exact && a.readable >= sizeof(__u32) && sz.usize != sz.enc &&
	    sz.usize >= c->minsz && sz.usize <= (uint32_t)w->page &&
	    (!c->needs_bound || fz_bound(w, s) == B_YES))
		fz_stat(w, ST_SIZE_MISMATCH);
	if (chance(w, 50))	/* the kernel takes the low 32 bits */
		cmd |= (unsigned long)(1 + below(w, 0xffffffffUL)) << 32;
	fz_sigmark(w, &mark);
	ret = ioctl(w->fds[s].fd, cmd, a.ptr);
	e = ret < 0 ? errno : 0;
	w->sig_alarm = fz_sig_alarm(&mark);
	w->sig_restart = fz_sig_restart(w, &mark);
	w->usize = sz.usize;
	*err = e;
	fz_count(w, op, ret, e);
	if (ret < -1 || (ret > 0 && ci != C_WAKE))
		fz_fail(w, "%s returned %d", c->name, ret);
	if (ret < 0 && !fz_errno_in(c->errs, e))
		fz_fail(w, "%s (size %u, %s struct) failed with %s (%d): not in its contract",
			c->name, sz.usize, fz_pl_name[a.pl], strerrorname_np(e), e);
	if (exp > 0 && (ret >= 0 || e != exp))
		fz_fail(w, "%s (size %u of %zu, number's size %u, %s struct%s, bound %d) returned "
			"%d (%s), want %s", c->name, sz.usize, c->ks, sz.enc, fz_pl_name[a.pl],
			sz.tail_nz ? ", garbage tail" : "", fz_bound(w, s), ret,
			ret < 0 ? strerrorname_np(e) : "ok", strerrorname_np(exp));
	/* A struct it can read and write: EFAULT only for what it points to. */
	if (saw && ret < 0 && e == EFAULT && a.pl != PL_RO && !efault_ok)
		fz_fail(w, "%s (size %u, %s struct): EFAULT", c->name, sz.usize, fz_pl_name[a.pl]);
	/* Only a handler without SA_RESTART ends a wait early. */
	if (ret < 0 && e == EINTR && !w->sig_alarm)
		fz_fail(w, "%s: EINTR, but no handler without SA_RESTART ran%s", c->name,
			w->sig_restart ? " (a stop or an SA_RESTART handler did)" : "");
	if (a.snap) {
		/*
		 * Outside the output fields, up to usize, nothing may change;
		 * WAIT's flags and timeout_ns only when a signal interrupted
		 * it (op_wait() checks what they became).
		 */
		bool wait_out = ci == C_WAIT && ((ret < 0 && e == EINTR) || w->sig_restart);
		size_t fl = offsetof(struct memlink_wait, flags);
		size_t to = offsetof(struct memlink_wait, timeout_ns);

		lim = sz.usize < c->ks ? sz.usize : c->ks;
		for (i = 0; i < a.snap; i++) {
			if (i < lim && (fz_is_out(c, i) ||
					(wait_out && ((i >= fl && i < fl + 4) || (i >= to && i < to + 8)))))
				continue;
			if ((unsigned char)a.ptr[i] != w->snap[i])
				fz_fail(w, "%s (size %u, %s) -> %d %s: byte %zu changed %#x -> %#x",
					c->name, sz.usize, fz_pl_name[a.pl], ret,
					ret < 0 ? strerrorname_np(e) : "ok", i, w->snap[i],
					(unsigned char)a.ptr[i]);
		}
		memcpy(img, a.ptr, c->ks);
	}
	if (!a.snap)
		*intact = false;	/* the caller cannot read the results */
	return ret;
}

/* ---- the operations ---------------------------------------------------------- */

/* Whether a byte of the field at [off, off + len) within usize is set. */
static bool fz_nz_within(const void *img, size_t off, size_t len, uint32_t usize)
{
	const unsigned char *p = img;
	size_t i;

	for (i = off; i < off + len && i < usize; i++)
		if (p[i])
			return true;
	return false;
}

/* The fields of `type` up to `field` fit in the size the caller gave. */
#define FZ_HAS(w, type, field) ((w)->usize >= offsetofend(type, field))

static void op_handshake(struct wk *w)
{
	const struct fz_cmd *c = &fz_cmds[C_HANDSHAKE];
	struct memlink_handshake h;
	int s = fz_any_slot(w), err, ret, fexp = -1;
	struct fz_size sz;
	bool intact;

	if (s < 0)
		return;
	memset(&h, 0, sizeof(h));
	if (chance(w, 50))
		h.flags = rnd(w);
	if (chance(w, 50))
		h.__reserved = rnd(w);
	if (chance(w, 50))
		h.__reserved2 = 1 + below(w, 0xffffffffU);
	if (chance(w, 30)) {	/* out fields are overwritten */
		h.abi_version = rnd(w);
		h.max_user_bytes = rnd(w);
		h.max_user_regions = rnd(w);
	}
	/* A first version's size leaves __reserved2 out (or a part of it). */
	fz_pick_size(w, c, &sz);
	if (h.flags || h.__reserved ||
	    fz_nz_within(&h, offsetof(struct memlink_handshake, __reserved2),
			 sizeof(h.__reserved2), sz.usize))
		fexp = EINVAL;
	ret = fz_call(w, OP_HANDSHAKE, C_HANDSHAKE, s, &h, fexp, &err, &intact, &sz);
	if (ret || !intact)
		return;
	if (w->usize < sizeof(h))
		fz_stat(w, ST_V1_HANDSHAKE);
	if (h.abi_version != MEMLINK_ABI_VERSION || h.page_size != (__u32)w->page ||
	    (h.features & FZ_FEATURES) != FZ_FEATURES || h.max_region_size != FZ_MAX_REGION ||
	    h.max_total_size != FZ_MAX_TOTAL ||
	    (h.max_regions != FZ_MAX_REGIONS_LO && h.max_regions != FZ_MAX_REGIONS_HI))
		fz_fail(w, "HANDSHAKE: abi %u page %u features %#llx limits %llu %llu %u",
			h.abi_version, h.page_size, (unsigned long long)h.features,
			(unsigned long long)h.max_region_size,
			(unsigned long long)h.max_total_size, h.max_regions);
	/* The per-user limits, when the caller's struct has them. */
	if (FZ_HAS(w, struct memlink_handshake, max_user_bytes) &&
	    h.max_user_bytes != FZ_USER_BYTES && h.max_user_bytes != FZ_USER_BYTES_LO &&
	    h.max_user_bytes)
		fz_fail(w, "HANDSHAKE (size %u): max_user_bytes %llu", w->usize,
			(unsigned long long)h.max_user_bytes);
	if (FZ_HAS(w, struct memlink_handshake, max_user_regions) &&
	    h.max_user_regions != FZ_USER_REGIONS && h.max_user_regions != FZ_USER_REGIONS_LO &&
	    h.max_user_regions)
		fz_fail(w, "HANDSHAKE (size %u): max_user_regions %u", w->usize,
			h.max_user_regions);
}

static uint64_t fz_pick_region_size(struct wk *w)
{
	uint64_t r = below(w, 1000), p = w->page;

	if (r < 800)
		return p * (1 + below(w, 4));
	if (r < 870)
		return p * (1 + below(w, FZ_MAX_REGION / p));
	if (r < 900)
		return FZ_MAX_REGION + p * below(w, 2);
	if (r < 930)
		return 0;
	if (r < 960)
		return p * (1 + below(w, 4)) + 1 + below(w, p - 1);
	return rnd(w) & ~(p - 1) & (below(w, 2) ? ~0ULL : 0x0000ffffffffffffULL);
}

static uint64_t fz_pick_offset(struct wk *w, uint64_t size);

/* The field at [off, off + 8) as the kernel sees it: the bytes within usize. */
static uint64_t fz_seen_u64(const void *img, size_t off, uint32_t usize)
{
	unsigned char b[8] = { 0 };
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(b) && off + i < usize; i++)
		b[i] = ((const unsigned char *)img)[off + i];
	memcpy(&v, b, sizeof(v));
	return v;
}

#define FZ_CREATE_FLAGS (MEMLINK_CREATE_REPLACE | MEMLINK_CREATE_ONCE | \
			 MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL)
#define FZ_PRIVATE_FLAGS (MEMLINK_CREATE_ONCE | MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL)

static void op_create(struct wk *w)
{
	static const __u32 modes[] = { 0600, 0644, 0666, 0660, 0606, 0400, 0, 0777 };
	const size_t bo = offsetof(struct memlink_create, bell_offset);
	struct memlink_create c;
	int s = fz_any_slot(w), err, ret, pool, fexp = -1, bound;
	bool valid, intact, dead, replace;
	struct fz_size sz;
	uint64_t bell;

	if (s < 0)
		return;
	bound = fz_bound(w, s);
	memset(&c, 0, sizeof(c));
	if (chance(w, 150))
		c.flags = MEMLINK_CREATE_REPLACE;
	/* Private regions: later attaches may be EBUSY or EPERM, bumps work at the bell. */
	if (chance(w, 80))
		c.flags |= MEMLINK_CREATE_ONCE;
	if (chance(w, 80))
		c.flags |= MEMLINK_CREATE_SEALED;
	if (chance(w, 120)) {
		c.flags |= MEMLINK_CREATE_BELL;
		c.bell_offset = fz_pick_offset(w, w->page);
	}
	if (chance(w, 20))	/* a bell_offset, with the flag or not */
		c.bell_offset = chance(w, 500) ? fz_pick_offset(w, w->page) : rnd(w);
	if (chance(w, 20))
		c.flags = rnd(w);
	c.region_size = fz_pick_region_size(w);
	c.mode = chance(w, 30) ? (__u32)rnd(w) : modes[below(w, ARRAY_SIZE(modes))];
	if (chance(w, 20))
		c.__reserved = 1 + below(w, 0xffffffffU);
	fz_pick_name(w, c.name, &pool);
	/*
	 * The parent's dead region of root's: another user may not replace
	 * it; root may, and so never tries (the others' checks need it).
	 */
	dead = pool == FZ_DEAD && !w->own_ns;
	if (dead && !w->root && chance(w, 500)) {
		c.flags = MEMLINK_CREATE_REPLACE;
		c.bell_offset = 0;
	}
	if (dead && w->root)
		c.flags &= ~MEMLINK_CREATE_REPLACE;
	replace = c.flags & MEMLINK_CREATE_REPLACE;
	/*
	 * A first version's size (or one cut inside bell_offset) leaves the
	 * rest of bell_offset to the kernel's zeros.
	 */
	fz_pick_size(w, &fz_cmds[C_CREATE], &sz);
	bell = fz_seen_u64(&c, bo, sz.usize);
	valid = !(c.flags & ~FZ_CREATE_FLAGS) && !c.__reserved && fz_name_ok(c.name) &&
		c.region_size && !(c.region_size % w->page) && !(c.mode & ~0777) &&
		(c.flags & MEMLINK_CREATE_BELL ? !(bell & 3) && bell <= c.region_size - 4 : !bell);
	if (!valid || bound == B_YES)
		fexp = EINVAL;
	else if (bound == B_NO && c.region_size > FZ_MAX_REGION)
		fexp = ENOSPC;
	else if (bound == B_NO && dead)
		fexp = replace ? EACCES : EEXIST;
	ret = fz_call(w, OP_CREATE, C_CREATE, s, &c, fexp, &err, &intact, &sz);
	/* EACCES: REPLACE of another user's region without CAP_IPC_OWNER only. */
	if (ret < 0 && err == EACCES && (w->root || (intact && !replace)))
		fz_fail(w, "CREATE (flags %#x) as uid %d: EACCES", c.flags, (int)geteuid());
	if (ret < 0 && intact && err == fexp && (fexp == EACCES || fexp == EEXIST))
		fz_stat(w, fexp == EACCES ? ST_DEAD_EACCES : ST_DEAD_EEXIST);
	/* A size within max_region_size: the count, total or per-user limits. */
	if (ret < 0 && intact && err == ENOSPC && valid && c.region_size <= FZ_MAX_REGION)
		fz_stat(w, ST_LIMIT_ENOSPC);
	if (ret == 0) {
		struct fz_fd *f = &w->fds[s];

		f->bound = B_YES;
		f->creator = T_YES;
		f->rdonly = T_NO;
		f->name = intact ? pool : -1;
		f->size = intact ? c.region_size : 0;
		f->bell = !intact ? T_UNKNOWN : c.flags & MEMLINK_CREATE_BELL ? T_YES : T_NO;
		f->bell_off = bell;
		if (intact && (c.flags & FZ_PRIVATE_FLAGS))
			fz_stat(w, ST_PRIV_CREATED);
	}
}

static void op_attach(struct wk *w)
{
	struct memlink_attach a;
	int s = fz_any_slot(w), err, ret, pool, fexp = -1, bound;
	bool intact;

	if (s < 0)
		return;
	bound = fz_bound(w, s);
	memset(&a, 0, sizeof(a));
	if (chance(w, 200))
		a.flags = MEMLINK_ATTACH_RDONLY;
	if (chance(w, 20))
		a.flags = rnd(w);
	if (chance(w, 30))	/* an out field */
		a.region_size = rnd(w);
	fz_pick_name(w, a.name, &pool);
	if ((a.flags & ~MEMLINK_ATTACH_RDONLY) || !fz_name_ok(a.name) || bound == B_YES)
		fexp = EINVAL;
	else if (bound == B_NO && pool == FZ_DEAD && !w->own_ns)
		fexp = EPIPE;	/* mode 0666: anyone may, but its creator is gone */
	ret = fz_call(w, OP_ATTACH, C_ATTACH, s, &a, fexp, &err, &intact, NULL);
	/* CAP_IPC_OWNER passes every mode. */
	if (ret < 0 && err == EACCES && w->root)
		fz_fail(w, "ATTACH as root: EACCES");
	/* SEALED refuses attaches for writing only. */
	if (ret < 0 && err == EPERM && intact && (a.flags & MEMLINK_ATTACH_RDONLY))
		fz_fail(w, "ATTACH (flags %#x): EPERM for a read-only attach", a.flags);
	if (ret < 0 && intact && err == EPIPE && fexp == EPIPE)
		fz_stat(w, ST_DEAD_EPIPE);
	if (ret == 0 || (ret < 0 && err == EFAULT && fz_bound(w, s) != B_YES)) {
		struct fz_fd *f = &w->fds[s];

		/* EFAULT may come after the binding (results not written). */
		if (ret < 0) {
			f->shared = true;	/* bound or not: unknown from now on */
			return;
		}
		f->bound = B_YES;
		f->creator = T_NO;
		f->rdonly = intact ? (a.flags ? T_YES : T_NO) : T_UNKNOWN;
		f->name = intact ? pool : -1;
		f->size = 0;
		f->bell = T_UNKNOWN;	/* whatever its creator chose */
		if (intact) {
			if (!a.region_size || a.region_size % w->page ||
			    a.region_size > FZ_MAX_REGION)
				fz_fail(w, "ATTACH: region_size %llu",
					(unsigned long long)a.region_size);
			f->size = a.region_size;
		}
	}
}

static void op_info(struct wk *w)
{
	struct memlink_info in;
	int s = fz_region_slot(w), err, ret;
	bool intact;

	if (s < 0)
		return;
	memset(&in, 0, sizeof(in));
	if (chance(w, 50))
		in.flags = rnd(w);
	if (chance(w, 100))
		memset(in.name, 'x', sizeof(in.name));
	ret = fz_call(w, OP_INFO, C_INFO, s, &in, in.flags ? EINVAL : -1, &err, &intact, NULL);
	if (ret == 0 && intact) {
		struct fz_fd *f = &w->fds[s];

		/*
		 * size: the caller's, or the kernel's own (it fills entries of
		 * LIST with the same code). uid: 0 or ours; only root's in an
		 * IPC namespace of root's own.
		 */
		if ((in.size != w->usize && in.size != sizeof(in)) || in.flags ||
		    !in.region_size || in.region_size % w->page || in.mode & ~0777 ||
		    !in.attached || in.creator_alive > 1 || !fz_name_ok(in.name) ||
		    (in.uid != 0 && in.uid != FZ_UID) || (w->own_ns && in.uid != 0) ||
		    (f->size && in.region_size != f->size) ||
		    (f->name >= 0 && strcmp(in.name, w->names[f->name])) ||
		    (f->creator == T_YES && !in.creator_alive))
			fz_fail(w, "INFO: size %u flags %#x '%.64s' size %llu (want %llu) uid %u "
				"mode %o attached %u alive %u", in.size, in.flags, in.name,
				(unsigned long long)in.region_size, (unsigned long long)f->size,
				in.uid, in.mode, in.attached, in.creator_alive);
	}
}

static const uint64_t fz_hot[FZ_HOT_WORDS] = { 0, 4, 8, 64, 128, 4092 };

static uint64_t fz_pick_offset(struct wk *w, uint64_t size)
{
	uint64_t r = below(w, 1000);

	if (r < 750)
		return fz_hot[below(w, FZ_HOT_WORDS)];
	if (r < 850)
		return size ? below(w, size / 4) * 4 : below(w, 1024) * 4;
	if (r < 900)
		return size ? size - 4 + below(w, 2) * 4 : 4096;
	if (r < 950)
		return below(w, 4096) | 1;
	return rnd(w);
}

static bool fz_offset_ok(uint64_t off, uint64_t size)
{
	return !(off & 3) && size >= 4 && off <= size - 4;
}

/* The word at `off` of slot s's region through one of our mappings of it. */
static bool fz_peek(struct wk *w, int s, uint64_t off, __u32 *val)
{
	int i;

	for (i = 0; i < FZ_MAPS; i++) {
		struct fz_map *m = &w->maps[i];

		if (m->addr && m->slot == s && (m->prot & PROT_READ) && !(off & 3) &&
		    off >= m->off && off + 4 <= m->off + m->len) {
			*val = __atomic_load_n((__u32 *)(m->addr + (off - m->off)), __ATOMIC_SEQ_CST);
			return true;
		}
	}
	return false;
}

/* now + timeout as the kernel adds them (ktime_add_safe(): KTIME_MAX at most). */
static uint64_t fz_deadline(int64_t now, uint64_t timeout)
{
	if (timeout > INT64_MAX)
		timeout = INT64_MAX;
	return (uint64_t)now > INT64_MAX - timeout ? INT64_MAX : now + timeout;
}

/*
 * A wait: relative (untimed, a few ms, or long enough that a SIGALRM ends
 * it, the struct rewritten as its deadline) or to a deadline on
 * CLOCK_MONOTONIC or CLOCK_REALTIME (past, near, far). The untimed and far
 * ones are cut short by SIGALRM. After EINTR it is sometimes passed again
 * as the kernel left it, as a caller's retry would: it keeps the deadline.
 */
static void op_wait(struct wk *w)
{
	struct memlink_wait wt;
	int s = fz_region_slot(w), err, ret, fexp = -1;
	clockid_t clk = CLOCK_MONOTONIC;
	bool intact, untimed = false, past = false, rel, retry;
	uint32_t oflags;
	uint64_t orig;
	struct fz_fd *f;
	long alarm_ms = 0;
	int64_t t0, t1;
	__u32 val;

	if (s < 0)
		return;
	f = &w->fds[s];
	memset(&wt, 0, sizeof(wt));
	wt.offset = fz_pick_offset(w, f->size);
	if (fz_peek(w, s, wt.offset, &val) && !chance(w, 200))
		wt.expected = val;
	else
		wt.expected = chance(w, 700) ? 0 : (__u32)rnd(w);
	if (chance(w, 600)) {
		switch (below(w, 10)) {
		case 0:
			wt.timeout_ns = 0;
			untimed = true;
			break;
		case 1:
			wt.timeout_ns = chance(w, 500) ? ~0ULL : (uint64_t)INT64_MAX + below(w, 1000);
			untimed = true;
			break;
		case 2:
		case 3:	/* ended by SIGALRM: rewritten as its deadline */
			wt.timeout_ns = (50 + below(w, 250)) * ML_NSEC_PER_MSEC;
			alarm_ms = 2 + below(w, 20);
			break;
		default:
			wt.timeout_ns = (1 + below(w, 30)) * ML_NSEC_PER_MSEC;
			break;
		}
	} else {
		int64_t now;

		wt.flags = MEMLINK_WAIT_ABSTIME;
		if (chance(w, 500)) {
			wt.flags |= MEMLINK_WAIT_REALTIME;
			clk = CLOCK_REALTIME;
		}
		now = fz_clock_ns(clk);
		switch (below(w, 3)) {
		case 0:	/* 0 is long past too: a non-blocking check */
			wt.timeout_ns = chance(w, 300) ? below(w, 2) : (uint64_t)(now - below(w, now));
			past = true;
			break;
		case 1:
			wt.timeout_ns = now + (1 + below(w, 30)) * ML_NSEC_PER_MSEC;
			break;
		default:
			wt.timeout_ns = chance(w, 300) ? ~0ULL :
					now + (1000 + below(w, 1000000)) * ML_NSEC_PER_SEC;
			untimed = true;
			break;
		}
	}
	if (chance(w, 20))	/* REALTIME needs ABSTIME */
		wt.flags = MEMLINK_WAIT_REALTIME;
	if (chance(w, 30))
		wt.flags = rnd(w);
	if (chance(w, 30))
		wt.__reserved = 1 + below(w, 0xffffffffU);
	if ((wt.flags & ~(MEMLINK_WAIT_ABSTIME | MEMLINK_WAIT_REALTIME)) || wt.__reserved ||
	    (wt.flags & (MEMLINK_WAIT_ABSTIME | MEMLINK_WAIT_REALTIME)) == MEMLINK_WAIT_REALTIME ||
	    (f->size && f->bound == B_YES && !fz_offset_ok(wt.offset, f->size)))
		fexp = EINVAL;
	if (untimed)
		alarm_ms = 5 + below(w, 100);
	for (retry = false;; retry = true) {
		rel = !(wt.flags & MEMLINK_WAIT_ABSTIME);
		clk = wt.flags & MEMLINK_WAIT_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC;
		oflags = wt.flags;
		orig = wt.timeout_ns;
		if (alarm_ms)
			fz_arm(w, alarm_ms);
		t0 = ml_now_ns();
		ret = fz_call(w, OP_WAIT, C_WAIT, s, &wt, fexp, &err, &intact, NULL);
		t1 = ml_now_ns();
		if (alarm_ms)
			fz_disarm(w);
		if (!intact)
			return;
		if (ret < 0 && err == ETIMEDOUT) {
			int64_t now = rel ? t1 : fz_clock_ns(clk);

			if (untimed)
				fz_fail(w, "WAIT (flags %#x): ETIMEDOUT with timeout %llu ns", oflags,
					(unsigned long long)orig);
			/* Never before its time (a restart keeps the deadline too). */
			if (rel ? now - t0 < (int64_t)orig : now < (int64_t)orig)
				fz_fail(w, "WAIT (flags %#x, timeout %llu ns): ETIMEDOUT %lld ns early",
					oflags, (unsigned long long)orig,
					(long long)(rel ? (int64_t)orig - (now - t0) :
						    (int64_t)orig - now));
			fz_stat(w, past ? ST_PAST_DEADLINE : rel ? ST_REL_TIMEDOUT : ST_ABS_TIMEDOUT);
		}
		if (wt.flags != oflags || wt.timeout_ns != orig) {
			/*
			 * fz_call() let them change only after a signal: a
			 * relative timed wait becomes its CLOCK_MONOTONIC
			 * deadline, taken during the call.
			 */
			if (!rel || !orig || wt.flags != (oflags | MEMLINK_WAIT_ABSTIME) ||
			    wt.timeout_ns < fz_deadline(t0, orig) || wt.timeout_ns > fz_deadline(t1, orig))
				fz_fail(w, "WAIT (flags %#x, timeout %llu ns, from %lld to %lld) -> %s: "
					"flags %#x timeout_ns %llu", oflags, (unsigned long long)orig,
					(long long)t0, (long long)t1,
					ret < 0 ? strerrorname_np(err) : "ok", wt.flags,
					(unsigned long long)wt.timeout_ns);
			fz_stat(w, ret < 0 && err == EINTR ? ST_EINTR_DEADLINE : ST_RESTART_DEADLINE);
		} else if (ret < 0 && err == EINTR && rel && orig) {
			fz_fail(w, "WAIT (timeout %llu ns): EINTR, and the struct not rewritten as its "
				"deadline", (unsigned long long)orig);
		}
		if (retry || !(ret < 0 && err == EINTR && wt.flags != oflags) || chance(w, 500))
			break;
		fz_stat(w, ST_RETRY);
		past = false;
	}
}

/*
 * A wake, or a MEMLINK_WAKE_BUMP: EINVAL but at the region's bell, where
 * it works from any file (a read-only one too: never EACCES). A creator's
 * slot knows where its bell is, if any; an attached one does not.
 */
static void op_wake(struct wk *w)
{
	struct memlink_wake wk;
	int s = fz_region_slot(w), err, ret, fexp = -1;
	bool intact, bump, at_bell = false;
	struct fz_fd *f;

	if (s < 0)
		return;
	f = &w->fds[s];
	memset(&wk, 0, sizeof(wk));
	wk.offset = fz_pick_offset(w, f->size);
	/* A creator's own bell: mostly bumped. */
	if (f->bound == B_YES && f->bell == T_YES && chance(w, 300)) {
		wk.offset = f->bell_off;
		if (chance(w, 700))
			wk.flags = MEMLINK_WAKE_BUMP;
	}
	switch (below(w, 10)) {
	case 0:
		wk.count = 0;
		break;
	case 1:
		wk.count = INT_MAX;
		break;
	case 2:
		wk.count = ~0U;
		break;
	default:
		wk.count = 1 + below(w, 4);
		break;
	}
	if (chance(w, 200))
		wk.flags = MEMLINK_WAKE_BUMP;
	if (chance(w, 30))
		wk.flags = rnd(w);
	if (chance(w, 30))
		wk.__reserved = 1 + below(w, 0xffffffffU);
	bump = wk.flags & MEMLINK_WAKE_BUMP;
	if ((wk.flags & ~MEMLINK_WAKE_BUMP) || wk.__reserved ||
	    (f->size && f->bound == B_YES && !fz_offset_ok(wk.offset, f->size)))
		fexp = EINVAL;
	else if (bump && f->bound == B_YES && f->bell != T_UNKNOWN &&
		 (f->bell == T_NO || wk.offset != f->bell_off))
		fexp = EINVAL;	/* not the bell: the offset's checks come first, EINVAL too */
	else if (bump && f->bound == B_YES && f->bell == T_YES)
		at_bell = true;	/* a bell is inside its region: it works */
	else if (!bump && f->bound == B_YES && f->size && f->rdonly == T_YES)
		fexp = EACCES;
	ret = fz_call(w, OP_WAKE, C_WAKE, s, &wk, fexp, &err, &intact, NULL);
	if (ret > 0 && intact && (uint32_t)ret > wk.count)
		fz_fail(w, "WAKE woke %d, count %u", ret, wk.count);
	if (ret < 0 && err == EACCES && f->bound == B_YES && !f->shared && f->rdonly == T_NO)
		fz_fail(w, "WAKE: EACCES on a file not attached read-only");
	if (ret < 0 && err == EACCES && intact && bump)
		fz_fail(w, "WAKE (flags %#x, offset %llu): EACCES for a bump", wk.flags,
			(unsigned long long)wk.offset);
	if (intact && at_bell) {
		if (ret < 0)
			fz_fail(w, "WAKE_BUMP at the bell %llu of the region it created: %s",
				(unsigned long long)wk.offset, strerrorname_np(err));
		fz_stat(w, ST_BUMP_BELL);
	}
	if (intact && fexp == EINVAL && bump && !(wk.flags & ~MEMLINK_WAKE_BUMP) &&
	    !wk.__reserved && f->size && fz_offset_ok(wk.offset, f->size))
		fz_stat(w, ST_BUMP_NOT_BELL);
}

/*
 * Random ioctl numbers: mostly memlink's type with random direction, number
 * and size bits, else version 1's type 0xB8 (its _IO numbers too) or any.
 * Another type, direction or number is ENOTTY whatever the argument. A real
 * type, direction and number with any size bits goes on to the size rules
 * (the size field mostly matches the number's, to get past that check);
 * its struct has undefined flags, so one the kernel reads whole is EINVAL.
 * Nothing is written back either way.
 */
static void op_badcmd(struct wk *w)
{
	const unsigned int rw = _IOC_READ | _IOC_WRITE;
	unsigned int type, dir, nr, size, i, r;
	int s = fz_any_slot(w), ret, e, exp = ENOTTY, ci = -1;
	unsigned char img[256];
	const struct fz_cmd *c;
	unsigned long cmd;
	struct fz_size sz;
	struct fz_arg a;
	bool intact;

	if (s < 0)
		return;
	r = below(w, 100);
	type = r < 75 ? MEMLINK_IOC_TYPE : r < 90 ? 0xB8 : below(w, 256);
	/*
	 * Types whose numbers the VFS serves itself before any driver sees
	 * them (FIBMAP/FIGETBSZ 0x00, FIONBIO/FIOCLEX... 'T', FIFREEZE 'X',
	 * FS_IOC_* 'f' and 0x15, FICLONE 0x94): not the module's to answer.
	 */
	if (type == 0x00 || type == 0x15 || type == 'T' || type == 'X' || type == 'f' ||
	    type == 0x94)
		type = MEMLINK_IOC_TYPE + 1;
	dir = chance(w, 400) ? rw : below(w, 4);
	nr = chance(w, 600) ? below(w, C_COUNT + 2) : below(w, 256);
	r = below(w, 100);
	if (r < 20)
		size = 0;
	else if (r < 60)	/* a struct's size, or its first version's */
		size = chance(w, 800) ? fz_cmds[below(w, C_COUNT)].ks :
					fz_cmds[C_HANDSHAKE].minsz;
	else
		size = below(w, 1 << _IOC_SIZEBITS);
	if (type == 0xB8 && chance(w, 500)) {	/* version 1's very numbers */
		dir = _IOC_NONE;
		size = 0;
		nr = below(w, 6);
	}
	cmd = _IOC(dir, type, nr, size);
	if (type == MEMLINK_IOC_TYPE && dir == rw)
		for (i = 0; i < C_COUNT; i++)
			if (_IOC_NR(fz_cmds[i].cmd) == nr)
				ci = i;
	for (i = 0; i < sizeof(img); i++)
		img[i] = rnd(w);
	if (ci < 0) {
		/* Any struct will do: laid out like CREATE's. */
		c = NULL;
		sz.usize = fz_pick_usize(w, &fz_cmds[C_CREATE], &sz.tail_nz);
		memcpy(img, &sz.usize, sizeof(sz.usize));
		fz_place(w, &a, img, fz_cmds[C_CREATE].ks, sz.usize, sz.tail_nz);
	} else {
		c = &fz_cmds[ci];
		sz.enc = size;
		if (chance(w, 700)) {
			sz.usize = size;
			sz.tail_nz = chance(w, 300);
		} else {
			sz.usize = fz_pick_usize(w, c, &sz.tail_nz);
		}
		memcpy(img, &sz.usize, sizeof(sz.usize));
		memset(img + 4, 0xff, 4);	/* flags: all undefined */
		/* Not in a region: others' bytes there could make it valid. */
		do
			fz_place(w, &a, img, c->ks, sz.usize, sz.tail_nz);
		while (a.pl == PL_REGION);
		exp = fz_expect(w, c, fz_bound(w, s), &a, &sz, &intact);
		if (exp < 0 && intact)
			exp = EINVAL;
	}
	if (chance(w, 50))	/* the kernel takes the low 32 bits */
		cmd |= (unsigned long)(1 + below(w, 0xffffffffUL)) << 32;
	ret = ioctl(w->fds[s].fd, cmd, a.ptr);
	e = ret < 0 ? errno : 0;
	fz_count(w, OP_BADCMD, ret, e);
	if (ret != -1 || (exp > 0 && e != exp) || (c && !fz_errno_in(c->errs, e)))
		fz_fail(w, "ioctl %#lx (%s arg, size field %u) returned %d (%s), want %s", cmd,
			fz_pl_name[a.pl], sz.usize, ret, ret < 0 ? strerrorname_np(e) : "ok",
			exp > 0 ? strerrorname_np(exp) : c->name);
	for (i = 0; i < a.snap; i++)
		if ((unsigned char)a.ptr[i] != w->snap[i])
			fz_fail(w, "ioctl %#lx: byte %u of its argument changed", cmd, i);
}

static int fz_free_map(struct wk *w)
{
	int i;

	for (i = 0; i < FZ_MAPS; i++)
		if (!w->maps[i].addr)
			return i;
	return -1;
}

/* Read or write a few words of mapping m, then maybe wake its hot words. */
static void fz_touch(struct wk *w, int m)
{
	struct fz_map *mp = &w->maps[m];
	int i, n = 1 + below(w, 8);

	for (i = 0; i < n; i++) {
		uint64_t off = chance(w, 500) ? fz_hot[below(w, FZ_HOT_WORDS)] :
						below(w, mp->len / 4) * 4;
		__u32 *p;

		if (off < mp->off || off + 4 > mp->off + mp->len)
			off = mp->off + below(w, mp->len / 4) * 4;
		p = (__u32 *)(mp->addr + (off - mp->off));
		if (mp->prot & PROT_WRITE)
			__atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
		else if (mp->prot & PROT_READ)
			(void)__atomic_load_n(p, __ATOMIC_SEQ_CST);
		if ((mp->prot & PROT_WRITE) && mp->slot >= 0 && chance(w, 600)) {
			int ret = ml_wake(w->fds[mp->slot].fd, off, 1 + below(w, 4));

			/* A writable mapping: the file is not read-only. */
			fz_count(w, OP_TOUCH, ret, -ret);
			if (ret < 0)
				fz_fail(w, "WAKE %llu through a writable mapping: %s",
					(unsigned long long)off, strerrorname_np(-ret));
		}
	}
}

static void op_mmap(struct wk *w)
{
	int s = fz_region_slot(w), m, prot, flags, e;
	uint64_t size, len, off, r;
	struct fz_fd *f;
	void *hint = NULL;
	char *p;

	if (s < 0)
		return;
	f = &w->fds[s];
	size = f->size ? f->size : w->page * (1 + below(w, 4));
	r = below(w, 1000);
	if (r < 800)
		len = w->page * (1 + below(w, size / w->page));
	else if (r < 850)
		len = 0;
	else if (r < 900)
		len = 1 + below(w, size + w->page);
	else if (r < 950)
		len = size + w->page * (1 + below(w, 2));
	else
		len = chance(w, 500) ? 1ULL << (30 + below(w, 20)) : ~0ULL >> below(w, 8);
	r = below(w, 1000);
	if (r < 700)
		off = 0;
	else if (r < 900)
		off = w->page * below(w, size / w->page + 2);
	else if (r < 950)
		off = 1 + below(w, w->page - 1);
	else
		off = (rnd(w) & ~(uint64_t)(w->page - 1)) >> below(w, 16);
	prot = (chance(w, 900) ? PROT_READ : 0) | (chance(w, 700) ? PROT_WRITE : 0) |
	       (chance(w, 80) ? PROT_EXEC : 0);
	r = below(w, 1000);
	flags = r < 850 ? MAP_SHARED : r < 900 ? MAP_PRIVATE : MAP_SHARED_VALIDATE;
	if (chance(w, 50)) {
		flags |= MAP_FIXED_NOREPLACE;
		hint = (void *)(uintptr_t)((1ULL << 40) + below(w, 1ULL << 30) * w->page);
	}
	if (chance(w, 80))
		flags |= MAP_POPULATE;
	if (chance(w, 20))
		flags |= MAP_LOCKED;
	p = mmap(hint, len, prot, flags, f->fd, (off_t)off);
	e = errno;
	fz_count(w, OP_MMAP, p == MAP_FAILED ? -1 : 0, e);
	if (p == MAP_FAILED) {
		static const int ok[] = { EINVAL, EPERM, EACCES, ENOMEM, EEXIST, EOVERFLOW,
					  EAGAIN, 0 };

		/* MAP_SHARED_VALIDATE refuses flags it does not know of. */
		if (!fz_errno_in(ok, e) &&
		    !(e == EOPNOTSUPP && (flags & MAP_SHARED_VALIDATE) == MAP_SHARED_VALIDATE))
			fz_fail(w, "mmap(len %#llx, prot %#x, flags %#x, off %#llx): %s",
				(unsigned long long)len, prot, flags, (unsigned long long)off,
				strerrorname_np(e));
		return;
	}
	if (prot & PROT_EXEC || (flags & 3) == MAP_PRIVATE || fz_bound(w, s) == B_NO ||
	    (f->rdonly == T_YES && (prot & PROT_WRITE)) || off % w->page ||
	    (f->size && (off > f->size || len > f->size - off)))
		fz_fail(w, "mmap(len %#llx, prot %#x, flags %#x, off %#llx) of a %s file "
			"(size %llu, rdonly %d) worked", (unsigned long long)len, prot, flags,
			(unsigned long long)off, fz_bound(w, s) == B_YES ? "bound" : "unbound?",
			(unsigned long long)f->size, f->rdonly);
	m = fz_free_map(w);
	if (m < 0) {	/* the table is full: touch it and let it go */
		struct fz_map keep = w->maps[0];

		w->maps[0] = (struct fz_map){ p, len, prot, s, off };
		fz_touch(w, 0);
		if (munmap(p, len))
			fz_fail(w, "munmap: %s", strerror(errno));
		w->maps[0] = keep;
		return;
	}
	/* The length as mapped: whole pages. */
	len = (len + w->page - 1) & ~(uint64_t)(w->page - 1);
	w->maps[m] = (struct fz_map){ p, len, prot, s, off };
	fz_touch(w, m);
}

static void op_munmap(struct wk *w)
{
	int m = fz_any_map(w);
	struct fz_map *mp;
	size_t cut;

	if (m < 0)
		return;
	mp = &w->maps[m];
	cut = mp->len > (size_t)w->page && chance(w, 300) ?
	      w->page * (1 + below(w, mp->len / w->page - 1)) : mp->len;
	if (cut == mp->len) {
		if (munmap(mp->addr, mp->len))
			fz_fail(w, "munmap: %s", strerror(errno));
		mp->addr = NULL;
	} else if (chance(w, 500)) {	/* the head */
		if (munmap(mp->addr, cut))
			fz_fail(w, "munmap head: %s", strerror(errno));
		mp->addr += cut;
		mp->off += cut;
		mp->len -= cut;
	} else {			/* the tail */
		if (munmap(mp->addr + mp->len - cut, cut))
			fz_fail(w, "munmap tail: %s", strerror(errno));
		mp->len -= cut;
	}
	fz_count(w, OP_MUNMAP, 0, 0);
}

static void op_mprotect(struct wk *w)
{
	int m = fz_any_map(w), prot, ret, e;
	struct fz_map *mp;

	if (m < 0)
		return;
	mp = &w->maps[m];
	prot = (chance(w, 800) ? PROT_READ : 0) | (chance(w, 600) ? PROT_WRITE : 0) |
	       (chance(w, 150) ? PROT_EXEC : 0);
	ret = mprotect(mp->addr, mp->len, prot);
	e = errno;
	fz_count(w, OP_MPROTECT, ret, e);
	if (ret) {
		if (e != EACCES && e != ENOMEM && e != EINVAL)
			fz_fail(w, "mprotect(%#x): %s", prot, strerrorname_np(e));
		return;
	}
	if (prot & PROT_EXEC)
		fz_fail(w, "mprotect(PROT_EXEC) of a memlink mapping worked");
	if ((prot & PROT_WRITE) && mp->slot >= 0 && w->fds[mp->slot].rdonly == T_YES)
		fz_fail(w, "mprotect(PROT_WRITE) of a read-only attach worked");
	mp->prot = prot;
}

static void op_mremap(struct wk *w)
{
	int m = fz_any_map(w), e;
	struct fz_map *mp;
	size_t nlen;
	char *p;

	if (m < 0)
		return;
	mp = &w->maps[m];
	switch (below(w, 3)) {
	case 0:		/* grow: VM_DONTEXPAND refuses */
		nlen = mp->len + w->page * (1 + below(w, 4));
		p = mremap(mp->addr, mp->len, nlen, chance(w, 500) ? MREMAP_MAYMOVE : 0);
		e = errno;
		fz_count(w, OP_MREMAP, p == MAP_FAILED ? -1 : 0, e);
		if (p != MAP_FAILED)
			fz_fail(w, "mremap grew a memlink mapping from %zu to %zu", mp->len, nlen);
		if (e != EFAULT && e != ENOMEM && e != EINVAL)
			fz_fail(w, "mremap grow: %s", strerrorname_np(e));
		break;
	case 1:		/* shrink */
		if (mp->len <= (size_t)w->page)
			return;
		nlen = mp->len - w->page * (1 + below(w, mp->len / w->page - 1));
		p = mremap(mp->addr, mp->len, nlen, 0);
		e = errno;
		fz_count(w, OP_MREMAP, p == MAP_FAILED ? -1 : 0, e);
		if (p == MAP_FAILED)
			fz_fail(w, "mremap shrink %zu -> %zu: %s", mp->len, nlen,
				strerrorname_np(e));
		mp->len = nlen;
		break;
	default: {	/* move, onto a fresh reservation */
		char *dst = mmap(NULL, mp->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (dst == MAP_FAILED)
			return;
		p = mremap(mp->addr, mp->len, mp->len, MREMAP_MAYMOVE | MREMAP_FIXED |
			   (chance(w, 200) ? MREMAP_DONTUNMAP : 0), dst);
		e = errno;
		fz_count(w, OP_MREMAP, p == MAP_FAILED ? -1 : 0, e);
		if (p == MAP_FAILED) {
			munmap(dst, mp->len);
			if (e != EINVAL && e != ENOMEM && e != EFAULT)
				fz_fail(w, "mremap move: %s", strerrorname_np(e));
			return;
		}
		mp->addr = p;
		break;
	}
	}
}

static void op_madvise(struct wk *w)
{
	static const int advs[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED,
		MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK, MADV_DONTDUMP,
		MADV_DODUMP, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ,
		MADV_POPULATE_WRITE, MADV_WIPEONFORK, MADV_KEEPONFORK,
	};
	int m = fz_any_map(w), ret, adv = advs[below(w, ARRAY_SIZE(advs))];
	struct fz_map *mp;
	size_t start, len;

	if (m < 0)
		return;
	mp = &w->maps[m];
	start = w->page * below(w, mp->len / w->page);
	len = w->page * (1 + below(w, (mp->len - start) / w->page));
	/* Not the module's contract: only that nothing breaks. */
	ret = madvise(mp->addr + start, len, adv);
	fz_count(w, OP_MADVISE, ret, errno);
	if (chance(w, 500))
		fz_touch(w, m);
}

static void op_touch(struct wk *w)
{
	int m = fz_any_map(w);

	if (m >= 0)
		fz_touch(w, m);
}

static void op_poll(struct wk *w)
{
	static const short evs[] = { POLLIN, POLLPRI, POLLOUT, POLLRDNORM, POLLRDHUP };
	struct pollfd pf[4];
	int slot[4], n = 1 + below(w, 4), i, j, timeout, ret, e;
	struct fz_sigmark mark;

	for (i = 0; i < n; i++) {
		slot[i] = fz_region_slot(w);
		if (slot[i] < 0)
			return;
		pf[i].fd = w->fds[slot[i]].fd;
		pf[i].events = 0;
		for (j = 0; j < (int)ARRAY_SIZE(evs); j++)
			if (chance(w, 500))
				pf[i].events |= evs[j];
		pf[i].revents = 0;
	}
	timeout = chance(w, 500) ? 0 : chance(w, 800) ? 1 + (int)below(w, 20) : -1;
	if (timeout < 0)
		fz_arm(w, 5 + below(w, 50));
	fz_sigmark(w, &mark);
	ret = poll(pf, n, timeout);
	e = errno;
	if (timeout < 0)
		fz_disarm(w);
	fz_count(w, OP_POLL, ret, e);
	if (ret < 0) {
		/* Any handler ends poll() (ERESTARTNOHAND); a stop does not. */
		if (!(e == EINTR && (fz_sig_alarm(&mark) || fz_usr1s != mark.usr1s)) &&
		    e != ENOMEM)
			fz_fail(w, "poll: %s", strerrorname_np(e));
		return;
	}
	for (i = 0; i < n; i++) {
		struct fz_fd *f = &w->fds[slot[i]];
		short re = pf[i].revents, bad;
		int b = fz_bound(w, slot[i]);

		bad = re & ~(POLLIN | POLLRDNORM | POLLPRI | POLLHUP | POLLERR);
		/* A file not bound reports nothing (not even POLLERR). */
		if (b == B_NO)
			bad |= re;
		if (b == B_YES && (re & POLLERR))
			bad |= POLLERR;
		if (b == B_YES && f->creator == T_YES && (re & POLLHUP))
			bad |= POLLHUP;
		if (b == B_YES && f->creator == T_NO && (re & POLLPRI))
			bad |= POLLPRI;
		if (bad)
			fz_fail(w, "poll: revents %#x (events %#x) on a %s %s file", re,
				pf[i].events, b == B_YES ? "bound" : b == B_NO ? "unbound" : "?",
				f->creator == T_YES ? "creator" : "client");
		if (b == B_NO)
			fz_stat(w, ST_UNBOUND_POLL);
	}
}

/* The slot an epoll event's data names, if it is still that open; else -1. */
static int fz_epoll_slot(struct wk *w, uint64_t data)
{
	int s = data & 0xff;

	if (s >= FZ_FDS || w->fds[s].fd < 0 || w->fds[s].tag != (uint32_t)(data >> 8))
		return -1;
	return s;
}

static void op_epoll(struct wk *w)
{
	struct epoll_event ev = { 0 }, out[8];
	int s = fz_any_slot(w), ret, e, r = below(w, 10), i, t;
	struct fz_sigmark mark;

	if (s < 0)
		return;
	if (r < 4) {
		/* Registered before the file is bound, or after. */
		ev.events = EPOLLIN | (chance(w, 500) ? EPOLLPRI : 0) |
			    (chance(w, 300) ? EPOLLET : 0) | (chance(w, 100) ? EPOLLONESHOT : 0);
		ev.data.u64 = (uint64_t)w->fds[s].tag << 8 | s;
		ret = epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->fds[s].fd, &ev);
		e = errno;
		fz_count(w, OP_EPOLL, ret, e);
		if (ret && e != EEXIST && e != ENOMEM && e != ENOSPC)
			fz_fail(w, "epoll_ctl ADD: %s", strerrorname_np(e));
		w->fds[s].epolled |= !ret || e == EEXIST;
	} else if (r < 6) {
		ret = epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->fds[s].fd, NULL);
		e = errno;
		fz_count(w, OP_EPOLL, ret, e);
		if (ret && e != ENOENT)
			fz_fail(w, "epoll_ctl DEL: %s", strerrorname_np(e));
		w->fds[s].epolled = false;
	} else {
		fz_sigmark(w, &mark);
		ret = epoll_wait(w->epfd, out, 8, chance(w, 500) ? 0 : 1 + below(w, 10));
		e = errno;
		fz_count(w, OP_EPOLL, ret, e);
		/* epoll_wait() is never restarted: EINTR after a stop too. */
		if (ret < 0 && !(e == EINTR && (fz_sig_alarm(&mark) ||
						fz_sig_restart(w, &mark))))
			fz_fail(w, "epoll_wait: %s", strerrorname_np(e));
		for (i = 0; i < ret; i++) {
			t = fz_epoll_slot(w, out[i].data.u64);
			if (t < 0)
				continue;	/* a file since closed, or dup()ed */
			if (fz_bound(w, t) == B_NO)
				fz_fail(w, "epoll: events %#x on an unbound file", out[i].events);
			if (out[i].events & ~(EPOLLIN | EPOLLRDNORM | EPOLLPRI | EPOLLHUP))
				fz_fail(w, "epoll: events %#x", out[i].events);
		}
		/* The unbound files registered, if any, said nothing. */
		for (t = 0; t < FZ_FDS; t++)
			if (w->fds[t].fd >= 0 && w->fds[t].epolled && fz_bound(w, t) == B_NO)
				fz_stat(w, ST_UNBOUND_EPOLL);
	}
}

static void op_read(struct wk *w)
{
	int s = fz_region_slot(w), pl = below(w, 10), b;
	size_t count, r = below(w, 100), i;
	struct fz_fd *f;
	char *p;
	ssize_t n;
	int e;

	if (s < 0)
		return;
	f = &w->fds[s];
	count = r < 70 ? 8 : r < 80 ? below(w, 8) : r < 95 ? 9 + below(w, 4096) : SIZE_MAX >> 1;
	switch (pl) {
	case 0:
		p = NULL;
		break;
	case 1:
		p = (char *)0xffff888000000000UL;
		break;
	case 2:
		p = w->resv;
		break;
	case 3:
		p = w->ro;
		break;
	case 4:		/* the 8 bytes would run into PROT_NONE */
		p = w->edge + w->page - 1 - below(w, 7);
		break;
	default:
		p = w->buf + below(w, 8);
		memset(p, 0x5a, 8192 - 8);
		break;
	}
	b = fz_bound(w, s);
	n = read(f->fd, p, count);
	e = errno;
	fz_count(w, OP_READ, n < 0 ? -1 : 0, e);
	if (n < 0) {
		if (e != EINVAL && e != EFAULT && e != EBADF && e != EAGAIN)
			fz_fail(w, "read(%zu): %s", count, strerrorname_np(e));
		if (e == EBADF && f->acc != O_WRONLY)
			fz_fail(w, "read: EBADF on a readable file");
		if (e == EAGAIN)
			fz_fail(w, "read: EAGAIN (it never blocks)");
		if (pl >= 5 && f->acc != O_WRONLY && count >= 8 && count < SIZE_MAX >> 1 &&
		    b == B_YES)
			fz_fail(w, "read(%zu) of a bound file: %s", count, strerrorname_np(e));
		return;
	}
	if (n != 8 || count < 8 || b == B_NO || f->acc == O_WRONLY)
		fz_fail(w, "read(%zu) of a %s file returned %zd", count,
			b == B_NO ? "unbound" : "bound", n);
	if (pl >= 5) {
		uint64_t v;

		memcpy(&v, p, 8);
		if (v < f->wakes && !f->shared)
			fz_fail(w, "read: wake count went back from %llu to %llu",
				(unsigned long long)f->wakes, (unsigned long long)v);
		f->wakes = v;
		for (i = 8; i < count && i < 8192 - 16; i++)
			if (p[i] != 0x5a)
				fz_fail(w, "read(%zu): byte %zu past the 8 changed", count, i);
	}
}

static void op_write(struct wk *w)
{
	int s = fz_any_slot(w), e;
	ssize_t n;
	off_t o;

	if (s < 0)
		return;
	n = write(w->fds[s].fd, w->buf, 8);
	e = errno;
	fz_count(w, OP_WRITE, n < 0 ? -1 : 0, e);
	if (n >= 0 || (e != EINVAL && e != EBADF))
		fz_fail(w, "write: %zd (%s), want EINVAL or EBADF", n, strerrorname_np(e));
	o = lseek(w->fds[s].fd, below(w, 100), SEEK_SET);
	e = errno;
	fz_count(w, OP_WRITE, o < 0 ? -1 : 0, e);
	if (o >= 0 || e != ESPIPE)
		fz_fail(w, "lseek: %lld (%s), want ESPIPE", (long long)o, strerrorname_np(e));
}

/* Where LIST's entries go. */
enum { LE_GOOD, LE_EDGE, LE_NULL, LE_RO, LE_RESV, LE_KERNEL, LE_LOW, LE_BEYOND, LE_REGION,
	LE_COUNT };

static int fz_pick_le(struct wk *w)
{
	static const unsigned int cum[LE_COUNT] = { 700, 780, 830, 860, 890, 920, 940, 960, 1000 };
	unsigned int r = below(w, 1000);
	int i;

	for (i = 0; i < LE_COUNT; i++)
		if (r < cum[i])
			return i;
	return LE_GOOD;
}

/* One entry of a LIST the caller may trust: well-formed and its to see. */
static void fz_list_entry(struct wk *w, const char *e, uint32_t es, uint32_t i,
			  char (*seen)[MEMLINK_NAME_MAX], bool *dead)
{
	const size_t is = sizeof(struct memlink_info);
	struct memlink_info in;
	unsigned int granted;
	uint32_t j;

	memcpy(&in, e, is);
	/* size: the bytes of the entry the kernel filled. */
	if (in.size != (es < is ? es : is) || in.flags || !in.region_size ||
	    in.region_size % w->page ||
	    in.mode & ~0777 || in.creator_alive > 1 || !fz_name_ok(in.name))
		fz_fail(w, "LIST: bad entry %u: size %u flags %#x region_size %llu mode %o alive %u "
			"name '%.64s'", i, in.size, in.flags, (unsigned long long)in.region_size,
			in.mode, in.creator_alive, in.name);
	for (j = is; j < es; j++)
		if (e[j])
			fz_fail(w, "LIST: entry %u of %u bytes: byte %u past the struct is %#x", i, es,
				j, (unsigned char)e[j]);
	/* Only what the caller could attach read-only (System V rules). */
	granted = in.uid == FZ_UID ? in.mode >> 6 : in.gid == FZ_UID ? in.mode >> 3 : in.mode;
	if (!w->root && !(granted & 4))
		fz_fail(w, "LIST shows uid %d '%s' (uid %u gid %u mode %04o)", (int)geteuid(),
			in.name, in.uid, in.gid, in.mode);
	/* Only root's own regions in a namespace of root's own. */
	if (w->own_ns && in.uid != 0)
		fz_fail(w, "LIST in an IPC namespace of its own shows '%s' of uid %u", in.name,
			in.uid);
	if (!w->own_ns && !strcmp(in.name, w->names[FZ_DEAD])) {
		if (in.creator_alive || in.uid != 0 || in.mode != 0666)
			fz_fail(w, "LIST: the dead region: alive %u uid %u mode %o", in.creator_alive,
				in.uid, in.mode);
		*dead = true;
	}
	if (i < 64) {
		for (j = 0; j < i; j++)
			if (!strcmp(seen[j], in.name))
				fz_fail(w, "LIST lists %s twice", in.name);
		memcpy(seen[i], in.name, MEMLINK_NAME_MAX);
	}
}

/*
 * MEMLINK_IOC_LIST with random entry sizes, counts and entry pointers, on
 * any file: its counts make sense, the entries it reports are well-formed,
 * listed once and the caller's to see, and nothing is written past them.
 */
static void op_list(struct wk *w)
{
	static char seen[64][MEMLINK_NAME_MAX];
	const size_t is = sizeof(struct memlink_info), arena = FZ_LIST_PAGES * w->page;
	int s = fz_any_slot(w), err, ret, fexp = -1, le = fz_pick_le(w), m;
	uint64_t avail = 0, fill = 0, i;
	bool intact, exact = false, dead = false;
	struct memlink_list l;
	char *ents = NULL;
	uint32_t es, max, r;

	if (s < 0)
		return;
	r = below(w, 1000);
	if (r < 700)
		es = is;
	else if (r < 850)
		es = is + 1 + below(w, 256);
	else if (r < 900)
		es = below(w, is);
	else if (r < 950)
		es = w->page + below(w, 2);
	else
		es = (uint32_t)rnd(w);
	r = below(w, 1000);
	if (r < 150)
		max = 0;
	else if (r < 500)
		max = 1 + below(w, 8);
	else if (r < 900)
		max = 1 + below(w, 64);
	else if (r < 950)
		max = 64 + below(w, 1024);
	else
		max = chance(w, 500) ? ~0U : (uint32_t)rnd(w);
	switch (le) {
	case LE_GOOD:
		ents = w->lbuf + (chance(w, 200) ? 1 + below(w, 7) : 0);
		avail = w->lbuf + arena - ents;
		exact = true;
		break;
	case LE_EDGE:	/* the array runs into the PROT_NONE page */
		avail = (uint64_t)es * 8 + 1;
		avail = 1 + below(w, avail < arena ? avail : arena);
		ents = w->lbuf + arena - avail;
		exact = true;
		break;
	case LE_NULL:
		break;
	case LE_RO:
		ents = w->ro;
		break;
	case LE_RESV:
		ents = w->resv + below(w, FZ_RESV_PAGES * w->page - 8);
		break;
	case LE_KERNEL:
		ents = (char *)0xffff888000000000UL;
		break;
	case LE_LOW:
		ents = (char *)(uintptr_t)(1 + below(w, 65535));
		break;
	case LE_BEYOND:
		ents = (char *)(uintptr_t)(0x7ffffffff000UL + below(w, 8192));
		break;
	default:
		m = fz_any_map(w);
		if (m < 0)
			break;
		ents = w->maps[m].addr + (below(w, w->maps[m].len) & ~7UL);
		/* Past the mapping may lie memory of ours: no entry goes there. */
		if (es >= is && max > (w->maps[m].addr + w->maps[m].len - ents) / es)
			max = (w->maps[m].addr + w->maps[m].len - ents) / es;
		break;
	}
	memset(&l, 0, sizeof(l));
	l.entries = (uintptr_t)ents;
	l.entry_size = es;
	l.max_entries = max;
	if (chance(w, 300)) {	/* a previous answer: ignored */
		l.count = rnd(w);
		l.total = rnd(w);
		l.user_bytes = rnd(w);
		l.user_regions = rnd(w);
		l.all_bytes = rnd(w);
		l.all_pages = rnd(w);
		l.all_regions = rnd(w);
	}
	if (chance(w, 30))
		l.flags = rnd(w);
	if (chance(w, 30))
		l.__reserved = 1 + below(w, 0xffffffffU);
	if (chance(w, 30))
		l.__reserved2 = 1 + below(w, 0xffffffffU);
	/*
	 * An entry_size above a page is EINVAL in the module, but the header
	 * does not say so: either is taken.
	 */
	if (l.flags || l.__reserved || l.__reserved2 || (max && (es < is || !ents)))
		fexp = EINVAL;
	/* Entries that may not all fit in writable memory: EFAULT is theirs. */
	w->efault_ok = !exact || (uint64_t)max * es > avail;
	if (exact) {
		fill = (uint64_t)(max < 64 ? max : 64) * es + 64;
		if (fill > avail)
			fill = avail;
		memset(ents, 0xa5, fill);
	}
	ret = fz_call(w, OP_LIST, C_LIST, s, &l, fexp, &err, &intact, NULL);
	if (ret || !intact)
		return;
	if (l.count > max || l.count > l.total)
		fz_fail(w, "LIST: count %u total %u max_entries %u", l.count, l.total, max);
	/* Fewer than there was room for: regions created during the call. */
	if (l.count < max && l.count < l.total)
		fz_stat(w, ST_LIST_SHORT);
	if (l.user_bytes % w->page || !l.user_bytes != !l.user_regions ||
	    l.user_bytes > FZ_MAX_TOTAL || l.user_regions > FZ_MAX_REGIONS_HI)
		fz_fail(w, "LIST: user_bytes %llu user_regions %u",
			(unsigned long long)l.user_bytes, l.user_regions);
	/* The machine's counts: CAP_SYS_ADMIN in the initial user namespace. */
	if (w->root ? l.all_regions < l.user_regions || l.all_regions < l.total ||
		      l.all_bytes < l.user_bytes || l.all_bytes % w->page ||
		      l.all_bytes > FZ_MAX_TOTAL || l.all_regions > FZ_MAX_REGIONS_HI :
		      l.all_bytes || l.all_pages || l.all_regions)
		fz_fail(w, "LIST as uid %d (%s): all_regions %u all_bytes %llu all_pages %llu, "
			"total %u user_regions %u user_bytes %llu", (int)geteuid(),
			w->root ? "root" : "want 0 without CAP_SYS_ADMIN", l.all_regions,
			(unsigned long long)l.all_bytes, (unsigned long long)l.all_pages, l.total,
			l.user_regions, (unsigned long long)l.user_bytes);
	if (!exact) {
		/* Only a region of ours takes entries; the rest would fault. */
		if (l.count && le != LE_REGION)
			fz_fail(w, "LIST wrote %u entries to %p", l.count, ents);
		return;
	}
	if ((uint64_t)l.count * es > avail)
		fz_fail(w, "LIST: %u entries of %u bytes in %llu writable", l.count, es,
			(unsigned long long)avail);
	for (i = 0; i < l.count; i++)
		fz_list_entry(w, ents + i * es, es, i, seen, &dead);
	/* Nothing written past the entries it reports. */
	for (i = (uint64_t)l.count * es; i < fill; i++)
		if ((unsigned char)ents[i] != 0xa5)
			fz_fail(w, "LIST: %u entries of %u bytes, byte %llu changed", l.count, es,
				(unsigned long long)i);
	if (l.count)
		fz_stat(w, ST_LIST_ENTRIES);
	/* All of the listing: the parent's dead region is in it. */
	if (l.count == l.total && !w->own_ns) {
		if (!dead)
			fz_fail(w, "LIST: %u regions, not the dead one '%s'", l.total,
				w->names[FZ_DEAD]);
		fz_stat(w, ST_LIST_FULL);
	}
}

/* Flip a limit: the region count, or a per-user one (0: none). */
static void op_param(struct wk *w)
{
	const char *name;
	uint64_t v;
	int ret;

	if (!w->root)
		return;
	switch (below(w, 3)) {
	case 0:
		name = "max_regions";
		v = chance(w, 500) ? FZ_MAX_REGIONS_LO : FZ_MAX_REGIONS_HI;
		break;
	case 1:
		name = "max_user_bytes";
		v = chance(w, 300) ? 0 : chance(w, 500) ? FZ_USER_BYTES_LO : FZ_USER_BYTES;
		break;
	default:
		name = "max_user_regions";
		v = chance(w, 300) ? 0 : chance(w, 500) ? FZ_USER_REGIONS_LO : FZ_USER_REGIONS;
		break;
	}
	ret = ml_param_set(name, v);
	fz_count(w, OP_PARAM, ret, -ret);
	if (ret)
		fz_fail(w, "%s: %s", name, strerrorname_np(-ret));
}

static void op_close(struct wk *w)
{
	int s = below(w, FZ_FDS);

	if (w->fds[s].fd >= 0) {
		fz_close_slot(w, s);
		fz_count(w, OP_CLOSE, 0, 0);
	}
}

static void op_open(struct wk *w)
{
	int s = below(w, FZ_FDS);

	fz_close_slot(w, s);
	fz_open_slot(w, s);
}

static void op_dup(struct wk *w)
{
	int from = fz_any_slot(w), to = below(w, FZ_FDS), fd;

	if (from < 0 || to == from)
		return;
	fz_close_slot(w, to);
	fd = fcntl(w->fds[from].fd, F_DUPFD_CLOEXEC, 3);
	fz_count(w, OP_DUP, fd, errno);
	if (fd < 0) {
		if (errno != EMFILE)
			fz_fail(w, "dup: %s", strerror(errno));
		return;
	}
	w->fds[from].shared = true;
	w->fds[to] = w->fds[from];
	w->fds[to].fd = fd;
}

static void op_exit(struct wk *w)
{
	if (!chance(w, 50))
		return;
	/* Leave by itself, with whatever is open and mapped. */
	if (chance(w, 500))
		for (int s = 0; s < FZ_FDS; s++)
			fz_close_slot(w, s);
	_exit(FZ_EXIT_AGAIN);
}

static void (*const fz_ops[OP_COUNT])(struct wk *w) = {
	[OP_OPEN] = op_open, [OP_CLOSE] = op_close, [OP_DUP] = op_dup,
	[OP_HANDSHAKE] = op_handshake, [OP_CREATE] = op_create, [OP_ATTACH] = op_attach,
	[OP_INFO] = op_info, [OP_WAIT] = op_wait, [OP_WAKE] = op_wake,
	[OP_BADCMD] = op_badcmd, [OP_MMAP] = op_mmap, [OP_MUNMAP] = op_munmap,
	[OP_MPROTECT] = op_mprotect, [OP_MREMAP] = op_mremap, [OP_MADVISE] = op_madvise,
	[OP_TOUCH] = op_touch, [OP_POLL] = op_poll, [OP_EPOLL] = op_epoll,
	[OP_READ] = op_read, [OP_WRITE] = op_write, [OP_LIST] = op_list,
	[OP_PARAM] = op_param, [OP_EXIT] = op_exit,
};

static void __attribute__((noreturn))
fz_worker(struct fz_shared *sh, int idx, uint64_t seed, const char *prefix, int64_t hard_end)
{
	static struct wk w;
	struct sigaction sa;
	unsigned int total = 0, r, i;
	char *p;

	memset(&w, 0, sizeof(w));
	w.sh = sh;
	w.me = &sh->w[idx];
	w.idx = idx;
	w.rng = seed | 1;
	w.page = ml_page_size();
	w.hard_end = hard_end;
	w.root = idx % 4 != 3;
	w.me->last_op = OP_OPEN;
	for (i = 0; i < FZ_NAMES; i++)
		snprintf(w.names[i], MEMLINK_NAME_MAX, "%s%u", prefix, i);
	snprintf(w.names[FZ_DEAD], MEMLINK_NAME_MAX, "%sdead", prefix);
	for (i = 0; i < FZ_FDS; i++)
		w.fds[i].fd = -1;
	/* Some root workers see the same names in an IPC namespace of their own. */
	if (w.root && chance(&w, 150)) {
		if (unshare(CLONE_NEWIPC))
			fz_fail(&w, "unshare(CLONE_NEWIPC): %s", strerror(errno));
		w.own_ns = true;
		fz_stat(&w, ST_OWN_NS);
	}
	if (!w.root && ml_become(FZ_UID, FZ_UID))
		fz_fail(&w, "cannot become uid %d: %s", FZ_UID, strerror(errno));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fz_on_alarm;	/* no SA_RESTART: waits see EINTR */
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = fz_on_usr1;	/* the parent's: a wait goes on */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	__atomic_store_n(&w.me->ready, 1, __ATOMIC_SEQ_CST);

	w.buf = mmap(NULL, 2 * w.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	p = mmap(NULL, 2 * w.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w.ro = mmap(NULL, w.page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w.resv = mmap(NULL, FZ_RESV_PAGES * w.page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	w.lbuf = mmap(NULL, (FZ_LIST_PAGES + 1) * w.page, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w.buf == MAP_FAILED || p == MAP_FAILED || w.ro == MAP_FAILED ||
	    w.resv == MAP_FAILED || w.lbuf == MAP_FAILED ||
	    mprotect(p + w.page, w.page, PROT_NONE) ||
	    mprotect(w.lbuf + FZ_LIST_PAGES * w.page, w.page, PROT_NONE))
		fz_fail(&w, "arena: %s", strerror(errno));
	w.edge = p;
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w.epfd < 0)
		fz_fail(&w, "epoll_create1: %s", strerror(errno));

	for (i = 0; i < OP_COUNT; i++)
		total += fz_weight[i];
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED) && ml_now_ns() < hard_end) {
		r = below(&w, total);
		for (i = 0; r >= fz_weight[i]; i++)
			r -= fz_weight[i];
		w.me->last_op = i;
		fz_ops[i](&w);
		w.me->ops++;
	}
	_exit(FZ_EXIT_DONE);
}

/* ---- the parent ------------------------------------------------------------- */

#define FZ_NPARAMS 5

FIXTURE(fuzz) {
	struct fz_shared *sh;
	unsigned long long saved[FZ_NPARAMS];
	bool params_set;
	int dead_fd;
};

static const char *const fz_params[FZ_NPARAMS] = {
	"max_region_size", "max_total_size", "max_regions", "max_user_bytes", "max_user_regions",
};

FIXTURE_SETUP(fuzz)
{
	const unsigned long long want[FZ_NPARAMS] = {
		FZ_MAX_REGION, FZ_MAX_TOTAL, FZ_MAX_REGIONS_HI, FZ_USER_BYTES, FZ_USER_REGIONS,
	};
	int i;

	self->dead_fd = -1;
	self->sh = ml_shared_anon(sizeof(*self->sh));
	ASSERT_NE(NULL, self->sh);
	for (i = 0; i < FZ_NPARAMS; i++)
		ASSERT_EQ(0, ml_param_get(fz_params[i], &self->saved[i]));
	self->params_set = true;
	for (i = 0; i < FZ_NPARAMS; i++)
		ASSERT_EQ(0, ml_param_set(fz_params[i], want[i]));
}

FIXTURE_TEARDOWN(fuzz)
{
	int i;

	/* After a failed ASSERT: no worker may outlive the test. */
	for (i = 0; i < FZ_WORKERS; i++)
		if (self->sh && self->sh->w[i].pid > 0) {
			kill(self->sh->w[i].pid, SIGKILL);
			waitpid(self->sh->w[i].pid, NULL, 0);
		}
	if (self->dead_fd >= 0)
		close(self->dead_fd);
	if (self->params_set)
		for (i = 0; i < FZ_NPARAMS; i++)
			EXPECT_EQ(0, ml_param_set(fz_params[i], self->saved[i]));
}

static uint64_t fz_env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static pid_t fz_spawn(struct fz_shared *sh, int i, uint64_t seed, const char *prefix,
		      int64_t hard_end)
{
	struct fz_slot *sl = &sh->w[i];
	uint64_t wseed = fz_mix(seed ^ fz_mix(((uint64_t)i << 32) | sl->gen));
	pid_t pid;

	sl->gen++;
	sl->sent_kill = 0;
	sl->ready = 0;
	pid = ml_fork();
	if (pid == 0)
		fz_worker(sh, i, wseed, prefix, hard_end);
	sl->pid = pid;
	return pid;
}

/* What /proc says a task is doing, for a worker that does not stop. */
static void fz_show_task(pid_t pid)
{
	char path[64], buf[2048];
	const char *what[] = { "wchan", "stack" };
	size_t k;

	for (k = 0; k < ARRAY_SIZE(what); k++) {
		ssize_t n;
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what[k]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
			printf("#   %s: %s\n", what[k], l);
	}
}

TEST_F_TIMEOUT(fuzz, random_ops, FZ_HARNESS_TIMEOUT)
{
	struct fz_shared *sh = self->sh;
	uint64_t seed = fz_env_u64("ML_FUZZ_SEED", fz_mix((uint64_t)ml_now_ns() ^ getpid()));
	uint64_t secs = fz_env_u64("ML_FUZZ_SECONDS", FZ_DEFAULT_SECONDS);
	int64_t grace = 10 * ML_NSEC_PER_SEC * ml_time_scale(), start, end, hard_end;
	uint64_t prng = fz_mix(seed ^ 0x5eedULL), kills = 0, respawns = 0, voluntary = 0;
	uint64_t ops = 0, res[OP_COUNT][FZ_NERR];
	uint64_t stats[ST_COUNT] = { 0 }, pokes = 0;
	int failures = 0, i, j, op, fd;
	char prefix[32], dead[MEMLINK_NAME_MAX];
	struct ml_listing before, after;

	if (secs < 1)
		secs = 1;
	if (secs > FZ_MAX_SECONDS)
		secs = FZ_MAX_SECONDS;
	snprintf(prefix, sizeof(prefix), "fz%d.", (int)getpid());
	printf("# fuzz: seed %#llx, %llu s, %d workers (every 4th as uid %d); replay with "
	       "ML_FUZZ_SEED=%#llx\n", (unsigned long long)seed, (unsigned long long)secs,
	       FZ_WORKERS, FZ_UID, (unsigned long long)seed);
	fflush(stdout);
	ASSERT_EQ(0, ml_listing_read(&before, NULL));

	/*
	 * A region of root's whose creator is gone, named while this client
	 * file lives: EEXIST to create, EPIPE to attach, EACCES to REPLACE for
	 * the unprivileged workers (root workers leave it alone).
	 */
	snprintf(dead, sizeof(dead), "%sdead", prefix);
	fd = ml_open_create(dead, ml_page_size(), 0666);
	ASSERT_LE(0, fd);
	self->dead_fd = ml_open_attach(dead, 0);
	ASSERT_LE(0, self->dead_fd);
	close(fd);

	start = ml_now_ns();
	end = start + (int64_t)secs * ML_NSEC_PER_SEC;
	hard_end = end + grace;
	for (i = 0; i < FZ_WORKERS; i++)
		ASSERT_LT(0, fz_spawn(sh, i, seed, prefix, hard_end));

	/* Reap, judge and restart workers; SIGKILL one now and then. */
	while (!failures) {
		int st;
		pid_t pid;
		bool stopping = ml_now_ns() >= end;

		if (stopping && !sh->stop)
			__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			struct fz_slot *sl = NULL;

			for (i = 0; i < FZ_WORKERS; i++)
				if (sh->w[i].pid == pid)
					sl = &sh->w[i];
			if (!sl)
				continue;
			i = sl - sh->w;
			sl->pid = 0;
			if (sl->fail[0] || (WIFEXITED(st) && WEXITSTATUS(st) != FZ_EXIT_AGAIN &&
					    !(WEXITSTATUS(st) == FZ_EXIT_DONE && sh->stop)) ||
			    (WIFSIGNALED(st) && !(WTERMSIG(st) == SIGKILL && sl->sent_kill))) {
				printf("# FAIL: worker %d (pid %d, generation %u) %s %d during %s: %s\n",
				       i, (int)pid, sl->gen,
				       WIFEXITED(st) ? "exited with" : "died of signal",
				       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
				       fz_op_name[sl->last_op],
				       sl->fail[0] ? sl->fail : "(no report)");
				failures++;
				continue;
			}
			if (WIFSIGNALED(st))
				kills++;
			else if (WEXITSTATUS(st) == FZ_EXIT_AGAIN)
				voluntary++;
			if (!sh->stop) {
				ASSERT_LT(0, fz_spawn(sh, i, seed, prefix, hard_end));
				respawns++;
			}
		}
		if (failures)
			break;
		if (stopping) {
			for (i = 0; i < FZ_WORKERS && !sh->w[i].pid; i++)
				;
			if (i == FZ_WORKERS)
				break;
			if (ml_now_ns() > hard_end) {
				for (i = 0; i < FZ_WORKERS; i++) {
					if (!sh->w[i].pid)
						continue;
					printf("# FAIL: worker %d (pid %d) still in %s %.1f s after "
					       "the stop\n", i, (int)sh->w[i].pid,
					       fz_op_name[sh->w[i].last_op],
					       (double)(ml_now_ns() - end) / ML_NSEC_PER_SEC);
					fz_show_task(sh->w[i].pid);
					failures++;
				}
				break;
			}
		} else if (fz_mix(prng++) % 1000 < 60) {
			i = fz_mix(prng++) % FZ_WORKERS;
			if (sh->w[i].pid > 0) {
				sh->w[i].sent_kill = 1;
				kill(sh->w[i].pid, SIGKILL);
			}
		} else if (fz_mix(prng++) % 1000 < 150) {
			/*
			 * A stop and continue, or an SA_RESTART handler: no
			 * EINTR. Not before its handlers are in: SIGUSR1 kills.
			 */
			struct fz_slot *sl = &sh->w[fz_mix(prng++) % FZ_WORKERS];

			if (sl->pid > 0 && __atomic_load_n(&sl->ready, __ATOMIC_SEQ_CST)) {
				if (fz_mix(prng++) % 2) {
					__atomic_fetch_add(&sl->stops, 1, __ATOMIC_SEQ_CST);
					kill(sl->pid, SIGSTOP);
					ml_sleep_ms(1 + fz_mix(prng++) % 5);
					kill(sl->pid, SIGCONT);
					__atomic_fetch_add(&sl->stops, 1, __ATOMIC_SEQ_CST);
				} else {
					kill(sl->pid, SIGUSR1);
				}
				pokes++;
			}
		}
		ml_sleep_ms(2 + fz_mix(prng++) % 40);
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < FZ_WORKERS; i++)
		if (sh->w[i].pid > 0) {
			sh->w[i].sent_kill = 1;
			kill(sh->w[i].pid, SIGKILL);
			waitpid(sh->w[i].pid, NULL, 0);
			sh->w[i].pid = 0;
		}

	memset(res, 0, sizeof(res));
	for (i = 0; i < FZ_WORKERS; i++) {
		ops += sh->w[i].ops;
		for (op = 0; op < OP_COUNT; op++)
			for (j = 0; j < FZ_NERR; j++)
				res[op][j] += sh->w[i].res[op][j];
		for (j = 0; j < ST_COUNT; j++)
			stats[j] += sh->w[i].stat[j];
	}
	printf("# fuzz: %llu operations in %.1f s, %llu workers killed, %llu left by "
	       "themselves, %llu started again, %llu stopped or signalled\n",
	       (unsigned long long)ops, (double)(ml_now_ns() - start) / ML_NSEC_PER_SEC,
	       (unsigned long long)kills, (unsigned long long)voluntary,
	       (unsigned long long)respawns, (unsigned long long)pokes);
	for (j = 0; j < ST_COUNT; j++)
		printf("%s %s %llu%s", j % 4 ? "," : "#   checks:", fz_stat_name[j],
		       (unsigned long long)stats[j], j % 4 == 3 || j == ST_COUNT - 1 ? "\n" : "");
	for (op = 0; op < OP_COUNT; op++) {
		char line[1024];
		int n = 0;

		for (j = 1; j < FZ_NERR; j++)
			if (res[op][j])
				n += snprintf(line + n, sizeof(line) - n, " %s %llu",
					      j == FZ_NERR - 1 ? "other" : strerrorname_np(j),
					      (unsigned long long)res[op][j]);
		printf("#   %-9s ok %-8llu%s\n", fz_op_name[op], (unsigned long long)res[op][0],
		       n ? line : "");
	}
	fflush(stdout);
	ASSERT_EQ(0, failures);

	close(self->dead_fd);
	self->dead_fd = -1;

	/* Everything the workers had is released when they are reaped. */
	for (i = 0; i < 500 * ml_time_scale(); i++) {
		ASSERT_EQ(0, ml_listing_read(&after, prefix));
		if (!after.found && after.regions == before.regions &&
		    after.pages == before.pages && after.bytes == before.bytes)
			break;
		ml_sleep_ms(10);
	}
	EXPECT_EQ(0, after.found) TH_LOG("left: %s", after.line);
	EXPECT_EQ(before.regions, after.regions);
	EXPECT_EQ(before.bytes, after.bytes);
	EXPECT_EQ(before.pages, after.pages);

	/* It did exercise the module. */
	EXPECT_LT(100ULL, (unsigned long long)ops);
	EXPECT_LT(0ULL, (unsigned long long)res[OP_CREATE][0]);
	EXPECT_LT(0ULL, (unsigned long long)res[OP_ATTACH][0]);
	EXPECT_LT(0ULL, (unsigned long long)res[OP_MMAP][0]);
	EXPECT_LT(0ULL, (unsigned long long)res[OP_WAIT][EPIPE]);
}

TEST_HARNESS_MAIN

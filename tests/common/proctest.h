/* SPDX-License-Identifier: MIT */
/*
 * The runner of the multi-process integration tests (tests/chan,
 * tests/fault): each test runs in its own process group under a watchdog,
 * and any of its processes can fail it, the first reason winning. Plain
 * C11 + POSIX, so the VM can run the programs statically linked.
 *
 * A test function returns 0 (passed; or skipped, after skipf()), or < 0;
 * CHECK() and friends record a failure and `goto out`.
 *
 * Windows (mingw-w64, under wine; tests/win/posix/ gives the few POSIX
 * calls the tests make): there is no fork(), so the program starts again
 * for each test and for each spawn(), told by its command line what to
 * run, and a job object stands for the process group. shared_map()
 * memory is one mapping placed at the same address in every process of a
 * run, so pointers into it mean the same everywhere; a spawn()ed function
 * is found by its offset in the program. What fork() would also have
 * copied, the globals a child reads, is registered with pt_inherit().
 */
#ifndef ML_PROCTEST_H
#define ML_PROCTEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MS 1000000ll
#define SEC 1000000000ll

/* Shared with every process of a test: the first failure's reason wins. */
struct report {
	_Atomic int failed;
	_Atomic int skipped;
	char reason[1024];
};

extern struct report *R;

struct pt_test {
	const char *name;
	int (*fn)(void);
};

struct pt_tally {
	unsigned num, passed, failed;
};

/* C99 formats (mingw: its own printf, with __USE_MINGW_ANSI_STDIO). */
#ifdef __MINGW32__
#define PT_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define PT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

PT_PRINTF(1, 2) void failf(const char *fmt, ...);
PT_PRINTF(2, 3) void fail_at(int line, const char *fmt, ...);
void skipf(const char *why);

#define CHECK(cond, ...)                                \
	do {                                            \
		if (!(cond)) {                          \
			fail_at(__LINE__, __VA_ARGS__); \
			goto out;                       \
		}                                       \
	} while (0)

/* Like CHECK_RC, but go on: later checks still run (and print). */
#define SOFT_RC(expr, want)                                                        \
	do {                                                                       \
		int rc_ = (expr), want_ = (want);                                  \
		if (rc_ != want_)                                                  \
			fail_at(__LINE__, "%s = %d (%s), want %d (%s)", #expr, rc_, \
				rc_ < 0 ? ml_strerror(rc_) : "ok", want_,          \
				want_ < 0 ? ml_strerror(want_) : "ok");            \
	} while (0)

/* expr must return `want` (an int, usually 0 or a negative errno). */
#define CHECK_RC(expr, want)                                                       \
	do {                                                                       \
		int rc_ = (expr), want_ = (want);                                  \
		if (rc_ != want_) {                                                \
			fail_at(__LINE__, "%s = %d (%s), want %d (%s)", #expr, rc_, \
				rc_ < 0 ? ml_strerror(rc_) : "ok", want_,          \
				want_ < 0 ? ml_strerror(want_) : "ok");            \
			goto out;                                                  \
		}                                                                  \
	} while (0)

int64_t now_ns(void);
void sleep_us(long us);
void sleep_ms(long ms);

/* A MAP_SHARED anonymous mapping, zeroed, that survives fork(). */
void *shared_map(size_t len);
/* Fork a child running fn(arg); its return value is the exit status. */
pid_t spawn(int (*fn)(void *), void *arg);
/* Reap `pid` within timeout; its wait status, or -1 (then it was killed). */
int reap(pid_t pid, int64_t timeout_ns);
/* The child must exit 0 within timeout; else fail the test. */
bool reap_ok(pid_t pid, const char *what, int64_t timeout_ns);
/* Poll *flag until it reaches `want`: false on timeout. */
bool wait_flag(_Atomic int *flag, int want, int64_t timeout_ns);

/* Set up R; call first. */
void pt_init(void);
/*
 * Windows: globals that a test or a spawn()ed child must see as its
 * parent had them, registered in the same order in every process before
 * pt_child(). POSIX: nothing to do (fork copies them).
 */
void pt_inherit(void *addr, size_t len);
/*
 * Windows: call right after pt_init(), with the tests pt_run() gets. In a
 * process started to run one test, or a spawn()ed function, this runs it
 * and exits. POSIX: returns at once.
 */
void pt_child(const struct pt_test *tests, size_t n, int argc, char **argv);
#ifdef _WIN32
/* Start this program again with args (NULL-ended): fork+exec's stand-in. */
pid_t spawn_self(const char *const *args);
#endif
/*
 * Run each test (only those named in argv[1..], if any) and print
 * "ok N name" or "not ok N name: reason", counting into *t.
 */
void pt_run(const struct pt_test *tests, size_t n, int argc, char **argv, int64_t timeout_ns,
	    struct pt_tally *t);
/* Count and print a result that is not a test function's. */
void pt_result(struct pt_tally *t, const char *name, bool ok, const char *why);
/* "SUITE: N passed, N failed", added to $ML_TALLY; the exit status. */
int pt_finish(const char *suite, const struct pt_tally *t);

#endif

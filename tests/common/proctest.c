// SPDX-License-Identifier: MIT
/* The multi-process test runner: see proctest.h. */
#include "proctest.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct report *R;

static void vfail(const char *fmt, va_list ap)
{
	char buf[sizeof(R->reason)];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (R && !atomic_exchange(&R->failed, 1))
		memcpy(R->reason, buf, sizeof(buf));
	else
		fprintf(stderr, "  # also (pid %d): %s\n", (int)getpid(), buf);
}

void failf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(fmt, ap);
	va_end(ap);
}

void fail_at(int line, const char *fmt, ...)
{
	char buf[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	failf("line %d: %s", line, buf);
}

void skipf(const char *why)
{
	atomic_store(&R->skipped, 1);
	snprintf(R->reason, sizeof(R->reason), "%s", why);
}

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void sleep_ms(long ms)
{
	sleep_us(ms * 1000);
}

void *shared_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	memset(p, 0, len);
	return p;
}

pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		_exit(fn(arg));
	if (pid < 0)
		failf("fork: %s", strerror(errno));
	return pid;
}

int reap(pid_t pid, int64_t timeout_ns)
{
	int64_t end = now_ns() + timeout_ns;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		if (now_ns() > end) {
			kill(pid, SIGCONT); /* a stopped one too */
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_us(200);
	}
}

bool reap_ok(pid_t pid, const char *what, int64_t timeout_ns)
{
	int st = reap(pid, timeout_ns);

	if (st == -1) {
		failf("%s (pid %d) did not finish in %lld ms", what, (int)pid,
		      (long long)(timeout_ns / MS));
		return false;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		failf("%s (pid %d) failed: %s %d", what, (int)pid, WIFEXITED(st) ? "exit" : "signal",
		      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return false;
	}
	return true;
}

bool wait_flag(_Atomic int *flag, int want, int64_t timeout_ns)
{
	int64_t end = now_ns() + timeout_ns;

	while (atomic_load(flag) < want) {
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}

void pt_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	R = shared_map(sizeof(*R));
}

/* Kill the test's whole process group (stopped members too), reap it. */
static void kill_group(pid_t pid, int *st)
{
	kill(-pid, SIGCONT);
	kill(-pid, SIGKILL);
	waitpid(pid, st, 0);
}

/* One test in its own process group: 0 passed, 1 skipped, -1 failed. */
static int run_one(const struct pt_test *t, int64_t timeout_ns, double *secs)
{
	int64_t t0 = now_ns();
	siginfo_t si;
	pid_t pid;
	int st;

	memset(R, 0, sizeof(*R));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		snprintf(R->reason, sizeof(R->reason), "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int r;

		setpgid(0, 0);
		r = t->fn();
		fflush(stdout);
		if (r < 0 && !atomic_load(&R->failed))
			failf("failed without a reason");
		exit(r < 0 ? 1 : 0);
	}
	setpgid(pid, pid);
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
			break;
		if (now_ns() - t0 > timeout_ns) {
			char first[512] = "";

			kill_group(pid, &st);
			*secs = (double)(now_ns() - t0) / 1e9;
			if (atomic_load(&R->failed)) {
				memcpy(first, R->reason, sizeof(first) - 1);
				first[sizeof(first) - 1] = 0;
			}
			snprintf(R->reason, sizeof(R->reason), "timed out after %.0f s%s%s", *secs,
				 *first ? "; first failure: " : "", first);
			return -1;
		}
		sleep_ms(5);
	}
	/* Whatever the test left running goes with it. */
	kill_group(pid, &st);
	*secs = (double)(now_ns() - t0) / 1e9;
	if (atomic_load(&R->failed))
		return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(R->reason, sizeof(R->reason), "test process %s %d",
			 WIFEXITED(st) ? "exited" : "killed by signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return -1;
	}
	return atomic_load(&R->skipped) ? 1 : 0;
}

void pt_run(const struct pt_test *tests, size_t n, int argc, char **argv, int64_t timeout_ns,
	    struct pt_tally *t)
{
	for (size_t i = 0; i < n; i++) {
		double secs = 0;
		bool want = argc < 2;
		int r;

		for (int a = 1; a < argc; a++)
			want |= !strcmp(argv[a], tests[i].name);
		if (!want)
			continue;
		t->num++;
		r = run_one(&tests[i], timeout_ns, &secs);
		if (r < 0) {
			printf("not ok %u %s: %s (%.2f s)\n", t->num, tests[i].name, R->reason, secs);
			t->failed++;
		} else if (r > 0) {
			printf("ok %u %s # SKIP %s\n", t->num, tests[i].name, R->reason);
			t->passed++;
		} else {
			printf("ok %u %s (%.2f s)\n", t->num, tests[i].name, secs);
			t->passed++;
		}
	}
}

void pt_result(struct pt_tally *t, const char *name, bool ok, const char *why)
{
	t->num++;
	if (ok) {
		printf("ok %u %s\n", t->num, name);
		t->passed++;
	} else {
		printf("not ok %u %s: %s\n", t->num, name, why);
		t->failed++;
	}
}

int pt_finish(const char *suite, const struct pt_tally *t)
{
	const char *tally = getenv("ML_TALLY");

	printf("%s: %u passed, %u failed\n", suite, t->passed, t->failed);
	/* Like tests/run-suite.sh: make check adds up every suite's counts. */
	if (tally && *tally) {
		FILE *f = fopen(tally, "a");

		if (f) {
			fprintf(f, "%u %u\n", t->passed, t->failed);
			fclose(f);
		}
	}
	return t->failed ? 1 : 0;
}

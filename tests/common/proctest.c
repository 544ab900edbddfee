// SPDX-License-Identifier: MIT
/* The multi-process test runner: see proctest.h. */
#include "proctest.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <process.h>
#include <sys/wait.h> /* tests/win/posix */
#else
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

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

#ifndef _WIN32
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

#endif

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

#ifndef _WIN32
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
static int run_one(const struct pt_test *t, size_t index, int64_t timeout_ns, double *secs)
{
	int64_t t0 = now_ns();
	siginfo_t si;
	pid_t pid;
	int st;

	(void)index;
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

void pt_inherit(void *addr, size_t len)
{
	(void)addr;
	(void)len;
}

void pt_child(const struct pt_test *tests, size_t n, int argc, char **argv)
{
	(void)tests;
	(void)n;
	(void)argc;
	(void)argv;
}
#endif

#ifdef _WIN32
/*
 * Windows. Every process of a run maps one arena (a named mapping made by
 * the runner, named in $ML_PT_ARENA with its address) at the same
 * address; R and shared_map() memory live in it. A test runs in a process
 * started as "PROG --pt-test K STATE", inside a job object that is killed
 * after it, as a process group would be; spawn(fn, arg) starts "PROG
 * --pt-spawn OFFSET ARG STATE", OFFSET being fn's distance from
 * pt_child() in the program, STATE the pt_inherit() globals in hex.
 */
#define ARENA_SIZE (16u << 20)
/* High in the address space, where nothing else lands (else: anywhere). */
#define ARENA_ADDR ((void *)(uintptr_t)0x5f0000000000ull)
#define ARENA_HDR 64u
/* What a process killed by kill() exits with: this | the signal. */
#define KILLED_CODE 0x4d4c0000u

struct arena {
	_Atomic size_t used;
	size_t fresh; /* used, with nothing but R allocated */
};

static struct arena *arena;
static HANDLE arena_map;
static struct {
	void *addr;
	size_t len;
} inherited[16];
static unsigned n_inherited;
/* This process's children: pids and their handles, until reaped. */
static struct {
	pid_t pid;
	HANDLE h;
} kids[512];

static void die(const char *what)
{
	fprintf(stderr, "proctest: %s: error %lu\n", what, (unsigned long)GetLastError());
	exit(2);
}

int64_t now_ns(void)
{
	static LARGE_INTEGER f;
	LARGE_INTEGER c;

	if (!f.QuadPart)
		QueryPerformanceFrequency(&f);
	QueryPerformanceCounter(&c);
	return (int64_t)(c.QuadPart / f.QuadPart * SEC + c.QuadPart % f.QuadPart * SEC / f.QuadPart);
}

/* A high-resolution waitable timer where there is one (Sleep() counts ticks). */
void sleep_us(long us)
{
	HANDLE t = CreateWaitableTimerExW(NULL, NULL, 0x2 /* HIGH_RESOLUTION */, TIMER_ALL_ACCESS);
	LARGE_INTEGER due = { .QuadPart = -(LONGLONG)us * 10 };

	if (!t || !SetWaitableTimer(t, &due, 0, NULL, NULL, FALSE))
		Sleep((DWORD)((us + 999) / 1000));
	else
		WaitForSingleObject(t, INFINITE);
	if (t)
		CloseHandle(t);
}

void sleep_ms(long ms)
{
	sleep_us(ms * 1000);
}

void *shared_map(size_t len)
{
	size_t need = (len + 63) & ~(size_t)63;
	size_t at = atomic_fetch_add(&arena->used, need);

	if (at + need > ARENA_SIZE) {
		fprintf(stderr, "proctest: shared_map(%zu): the arena is full\n", len);
		exit(2);
	}
	memset((uint8_t *)arena + at, 0, len);
	return (uint8_t *)arena + at;
}

void pt_inherit(void *addr, size_t len)
{
	if (n_inherited == sizeof(inherited) / sizeof(inherited[0])) {
		fprintf(stderr, "proctest: too many pt_inherit()\n");
		exit(2);
	}
	inherited[n_inherited].addr = addr;
	inherited[n_inherited++].len = len;
}

/* The inherited globals as hex, in buf (of len). */
static void state_out(char *buf, size_t len)
{
	size_t at = 0;

	for (unsigned i = 0; i < n_inherited; i++)
		for (size_t k = 0; k < inherited[i].len && at + 3 < len; k++)
			at += (size_t)snprintf(buf + at, len - at, "%02x",
					       ((const uint8_t *)inherited[i].addr)[k]);
	if (!at)
		snprintf(buf, len, "-");
}

static void state_in(const char *hex)
{
	size_t total = 0;

	for (unsigned i = 0; i < n_inherited; i++)
		total += inherited[i].len;
	if (strcmp(hex, "-") && strlen(hex) != 2 * total) {
		fprintf(stderr, "proctest: inherited state of %zu bytes, want %zu\n",
			strlen(hex) / 2, total);
		exit(2);
	}
	for (unsigned i = 0; i < n_inherited; i++)
		for (size_t k = 0; k < inherited[i].len; k++, hex += 2) {
			unsigned v;

			sscanf(hex, "%2x", &v);
			((uint8_t *)inherited[i].addr)[k] = (uint8_t)v;
		}
}

static void kid_add(pid_t pid, HANDLE h)
{
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
		if (!kids[i].h) {
			kids[i].pid = pid;
			kids[i].h = h;
			return;
		}
	fprintf(stderr, "proctest: too many children\n");
	exit(2);
}

/* The handle of child pid (take: forget it), or NULL. */
static HANDLE kid_handle(pid_t pid, bool take)
{
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
		if (kids[i].h && kids[i].pid == pid) {
			HANDLE h = kids[i].h;

			if (take)
				kids[i].h = NULL;
			return h;
		}
	return NULL;
}

/* This program again with `args` (a command line's tail); its pid, or -1. */
static pid_t start_self(const char *args, bool suspended, PROCESS_INFORMATION *out)
{
	static char self[MAX_PATH];
	STARTUPINFOA si = { .cb = sizeof(si), .dwFlags = STARTF_USESTDHANDLES };
	PROCESS_INFORMATION pi;
	size_t len;
	char *cmd;

	if (!*self)
		GetModuleFileNameA(NULL, self, sizeof(self));
	len = strlen(self) + strlen(args) + 8;
	cmd = malloc(len);
	if (!cmd)
		return -1;
	snprintf(cmd, len, "\"%s\" %s", self, args);
	si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
	si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
	si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
	fflush(stdout);
	fflush(stderr);
	/*
	 * Under wine on a loaded machine CreateProcess now and then fails with
	 * ERROR_INTERNAL_ERROR (or out of resources) and works when tried again:
	 * a few tries, said, before the test fails for it.
	 */
	for (int tries = 1;; tries++) {
		DWORD e;

		if (CreateProcessA(self, cmd, NULL, NULL, TRUE, suspended ? CREATE_SUSPENDED : 0,
				   NULL, NULL, &si, &pi))
			break;
		e = GetLastError();
		if (tries == 5 || (e != ERROR_INTERNAL_ERROR && e != ERROR_NOT_ENOUGH_MEMORY &&
				   e != ERROR_NO_SYSTEM_RESOURCES && e != ERROR_OUTOFMEMORY)) {
			failf("CreateProcess %s: error %lu (%d tries)", cmd, (unsigned long)e, tries);
			free(cmd);
			return -1;
		}
		fprintf(stderr, "  # CreateProcess: error %lu, trying again\n", (unsigned long)e);
		Sleep(50 * (DWORD)tries);
	}
	free(cmd);
	if (out) {
		*out = pi;
		return (pid_t)pi.dwProcessId;
	}
	CloseHandle(pi.hThread);
	kid_add((pid_t)pi.dwProcessId, pi.hProcess);
	return (pid_t)pi.dwProcessId;
}

pid_t spawn(int (*fn)(void *), void *arg)
{
	char state[1024], args[1200];

	state_out(state, sizeof(state));
	snprintf(args, sizeof(args), "--pt-spawn %lld %llx %s",
		 (long long)((intptr_t)fn - (intptr_t)pt_child), (unsigned long long)(uintptr_t)arg,
		 state);
	return start_self(args, false, NULL);
}

pid_t spawn_self(const char *const *args)
{
	char line[2048] = "";

	for (; *args; args++) {
		size_t at = strlen(line);

		snprintf(line + at, sizeof(line) - at, "%s\"%s\"", at ? " " : "", *args);
	}
	return start_self(line, false, NULL);
}

/* A wait status as POSIX makes it, from an exit code. */
static int status_of(DWORD code)
{
	if ((code & 0xffffff00u) == KILLED_CODE)
		return (int)(code & 0x7f);
	if (code >= 0xc0000000u)
		return 11; /* an exception: as SIGSEGV */
	return (int)((code & 0xff) << 8);
}

pid_t waitpid(pid_t pid, int *status, int options)
{
	HANDLE h = kid_handle(pid, false);
	DWORD code;

	if (!h) {
		errno = ECHILD;
		return -1;
	}
	if (WaitForSingleObject(h, options & WNOHANG ? 0 : INFINITE) != WAIT_OBJECT_0)
		return 0;
	GetExitCodeProcess(h, &code);
	if (status)
		*status = status_of(code);
	CloseHandle(kid_handle(pid, true));
	return pid;
}

int kill(pid_t pid, int sig)
{
	HANDLE h = kid_handle(pid, false), own = NULL;
	char name[64];
	int ret = 0;

	if (!h)
		h = own = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, (DWORD)pid);
	if (!h) {
		errno = ESRCH;
		return -1;
	}
	if (sig == SIGTERM) {
		/* A handler's watcher waits on this event (tests/win/posix). */
		HANDLE ev;

		snprintf(name, sizeof(name), ML_PT_SIGTERM_EVENT, (unsigned long)pid);
		ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, name);
		if (ev) {
			SetEvent(ev);
			CloseHandle(ev);
			goto out;
		}
	}
	if (sig && sig != SIGCONT && !TerminateProcess(h, KILLED_CODE | (unsigned)sig)) {
		errno = EPERM;
		ret = -1;
	}
out:
	if (own)
		CloseHandle(own);
	return ret;
}

int reap(pid_t pid, int64_t timeout_ns)
{
	HANDLE h = kid_handle(pid, false);
	int st;

	if (!h)
		return -1;
	if (WaitForSingleObject(h, (DWORD)(timeout_ns / MS)) != WAIT_OBJECT_0) {
		TerminateProcess(h, KILLED_CODE | SIGKILL);
		waitpid(pid, &st, 0);
		return -1;
	}
	waitpid(pid, &st, 0);
	return st;
}

void pt_init(void)
{
	char env[128], name[64];
	void *at = NULL;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (GetEnvironmentVariableA("ML_PT_ARENA", env, sizeof(env))) {
		unsigned long long addr = 0;

		if (sscanf(env, "%63s %llx", name, &addr) != 2)
			die("ML_PT_ARENA");
		arena_map = OpenFileMappingA(FILE_MAP_ALL_ACCESS, FALSE, name);
		if (!arena_map)
			die(name);
		at = MapViewOfFileEx(arena_map, FILE_MAP_ALL_ACCESS, 0, 0, 0, (void *)(uintptr_t)addr);
		if (at != (void *)(uintptr_t)addr)
			die("the arena's address is taken in this process");
	} else {
		snprintf(name, sizeof(name), "Local\\mlt-arena-%lu",
			 (unsigned long)GetCurrentProcessId());
		arena_map = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
					       ARENA_SIZE, name);
		if (!arena_map)
			die(name);
		at = MapViewOfFileEx(arena_map, FILE_MAP_ALL_ACCESS, 0, 0, 0, ARENA_ADDR);
		if (!at)
			at = MapViewOfFile(arena_map, FILE_MAP_ALL_ACCESS, 0, 0, 0);
		if (!at)
			die("MapViewOfFile");
		snprintf(env, sizeof(env), "%s %llx", name, (unsigned long long)(uintptr_t)at);
		SetEnvironmentVariableA("ML_PT_ARENA", env);
		arena = at;
		atomic_store(&arena->used, ARENA_HDR);
		R = shared_map(sizeof(*R));
		arena->fresh = atomic_load(&arena->used);
	}
	arena = at;
	R = (struct report *)((uint8_t *)at + ARENA_HDR);
	/* Our std handles go to every child, as fork would have them. */
	SetHandleInformation(GetStdHandle(STD_OUTPUT_HANDLE), HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
	SetHandleInformation(GetStdHandle(STD_ERROR_HANDLE), HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
	SetHandleInformation(GetStdHandle(STD_INPUT_HANDLE), HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
}

/* The part of a test that runs in its process: as the POSIX child does. */
static int test_body(const struct pt_test *t)
{
	int r = t->fn();

	fflush(stdout);
	if (r < 0 && !atomic_load(&R->failed))
		failf("failed without a reason");
	return r < 0 ? 1 : 0;
}

void pt_child(const struct pt_test *tests, size_t n, int argc, char **argv)
{
	int code;

	if (argc >= 4 && !strcmp(argv[1], "--pt-test")) {
		size_t k = (size_t)strtoul(argv[2], NULL, 10);

		if (k >= n)
			exit(2);
		state_in(argv[3]);
		code = test_body(&tests[k]);
	} else if (argc >= 5 && !strcmp(argv[1], "--pt-spawn")) {
		int (*fn)(void *) = (int (*)(void *))((intptr_t)pt_child +
						      (intptr_t)strtoll(argv[2], NULL, 10));
		void *arg = (void *)(uintptr_t)strtoull(argv[3], NULL, 16);

		state_in(argv[4]);
		code = fn(arg);
	} else {
		return;
	}
	fflush(stdout);
	fflush(stderr);
	_exit(code);
}

/* One test in its own process and job: 0 passed, 1 skipped, -1 failed. */
static int run_one(const struct pt_test *t, size_t index, int64_t timeout_ns, double *secs)
{
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION li = { 0 };
	int64_t t0 = now_ns();
	char state[1024], args[1200];
	PROCESS_INFORMATION pi;
	HANDLE job;
	DWORD r, code = 1;

	(void)t; /* the child finds it by index */
	memset(R, 0, sizeof(*R));
	atomic_store(&arena->used, arena->fresh);
	job = CreateJobObjectW(NULL, NULL);
	li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
	if (job)
		SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof(li));
	state_out(state, sizeof(state));
	snprintf(args, sizeof(args), "--pt-test %zu %s", index, state);
	if (start_self(args, true, &pi) < 0) {
		snprintf(R->reason, sizeof(R->reason), "CreateProcess: error %lu",
			 (unsigned long)GetLastError());
		if (job)
			CloseHandle(job);
		return -1;
	}
	if (job && !AssignProcessToJobObject(job, pi.hProcess)) {
		CloseHandle(job);
		job = NULL; /* then only the test's own process is killed */
	}
	ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	r = WaitForSingleObject(pi.hProcess, (DWORD)(timeout_ns / MS));
	GetExitCodeProcess(pi.hProcess, &code);
	/* Whatever the test left running goes with it. */
	if (job) {
		TerminateJobObject(job, KILLED_CODE | SIGKILL);
		CloseHandle(job);
	}
	if (r != WAIT_OBJECT_0) {
		char first[512] = "";

		TerminateProcess(pi.hProcess, KILLED_CODE | SIGKILL);
		WaitForSingleObject(pi.hProcess, INFINITE);
		CloseHandle(pi.hProcess);
		*secs = (double)(now_ns() - t0) / 1e9;
		if (atomic_load(&R->failed)) {
			memcpy(first, R->reason, sizeof(first) - 1);
			first[sizeof(first) - 1] = 0;
		}
		snprintf(R->reason, sizeof(R->reason), "timed out after %.0f s%s%s", *secs,
			 *first ? "; first failure: " : "", first);
		return -1;
	}
	CloseHandle(pi.hProcess);
	*secs = (double)(now_ns() - t0) / 1e9;
	if (atomic_load(&R->failed))
		return -1;
	if (code) {
		int st = status_of(code);

		snprintf(R->reason, sizeof(R->reason), "test process %s %d",
			 WIFEXITED(st) ? "exited" : "killed by signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return -1;
	}
	return atomic_load(&R->skipped) ? 1 : 0;
}
#endif

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
		r = run_one(&tests[i], i, timeout_ns, &secs);
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

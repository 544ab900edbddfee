// SPDX-License-Identifier: MIT
/*
 * The POSIX calls the channel tests (tests/chan) make, on Windows, as far
 * as they mean something there; the process ones (spawn, waitpid, kill)
 * are in tests/common/proctest.c. Built only into the Windows suite.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <tlhelp32.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

pid_t fork(void)
{
	errno = ENOSYS;
	return -1;
}

pid_t getppid(void)
{
	PROCESSENTRY32 pe = { .dwSize = sizeof(pe) };
	DWORD self = GetCurrentProcessId(), parent = 0;
	HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);

	if (snap == INVALID_HANDLE_VALUE)
		return 0;
	for (BOOL ok = Process32First(snap, &pe); ok; ok = Process32Next(snap, &pe))
		if (pe.th32ProcessID == self) {
			parent = pe.th32ParentProcessID;
			break;
		}
	CloseHandle(snap);
	return (pid_t)parent;
}

ssize_t readlink(const char *path, char *buf, size_t len)
{
	DWORD n;

	if (strcmp(path, "/proc/self/exe")) {
		errno = ENOENT;
		return -1;
	}
	n = GetModuleFileNameA(NULL, buf, (DWORD)len);
	return n && n < len ? (ssize_t)n : -1;
}

int pause(void)
{
	for (;;)
		Sleep(INFINITE);
}

/* Raise SIGTERM here when kill(ourselves, SIGTERM) sets the event. */
static DWORD WINAPI term_watch(void *ev)
{
	WaitForSingleObject(ev, INFINITE);
	raise(SIGTERM);
	return 0;
}

int sigaction(int sig, const struct sigaction *sa, struct sigaction *old)
{
	static HANDLE ev;
	char name[64];
	HANDLE th;

	if (old)
		memset(old, 0, sizeof(*old));
	if (!sa)
		return 0;
	if (signal(sig, sa->sa_handler) == SIG_ERR)
		return -1;
	if (sig != SIGTERM || ev)
		return 0;
	snprintf(name, sizeof(name), ML_PT_SIGTERM_EVENT, (unsigned long)GetCurrentProcessId());
	ev = CreateEventA(NULL, FALSE, FALSE, name);
	th = ev ? CreateThread(NULL, 0, term_watch, ev, 0, NULL) : NULL;
	if (!th)
		return -1;
	CloseHandle(th);
	return 0;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	(void)addr;
	(void)len;
	(void)prot;
	(void)flags;
	(void)fd;
	(void)off;
	errno = ENOSYS;
	return MAP_FAILED;
}

int munmap(void *addr, size_t len)
{
	(void)len;
	return UnmapViewOfFile(addr) ? 0 : -1;
}

int shm_unlink(const char *name)
{
	(void)name;
	errno = ENOSYS;
	return -1;
}

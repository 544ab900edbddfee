// SPDX-License-Identifier: MIT
/*
 * Channel records, for ml_chan_list() and ml_chan_gc(): Windows cannot
 * list named objects, so the daemon of each Local\ channel keeps a file
 *
 *   %LOCALAPPDATA%\memlink\ch-NAME.rec
 *
 * open for as long as it lives, made with FILE_FLAG_DELETE_ON_CLOSE and
 * without FILE_SHARE_DELETE:
 *  - the system deletes it when the daemon's handle closes: at
 *    ml_chan_close(), or when its process ends, however it ends;
 *  - while it is open nobody else can delete it (a sharing violation),
 *    which is how gc tells a live daemon's record from one that nothing
 *    closed (the machine went down), which it removes.
 * The records are per user, as Local\ names are per session: a user lists
 * their own channels. Global\ channels have none (inspect looks in Local\).
 *
 * Object names are case-sensitive and file names are not, and some base
 * names are devices (CON, NUL): so an upper-case letter is written as '^'
 * and its lower case, behind "ch-" and before ".rec" (a channel name may
 * end in '.', which Win32 strips from the end of a file name).
 */
#include "win.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "backend.h"

#define REC_PREFIX L"ch-"
#define REC_SUFFIX L".rec"
/* How long a new daemon waits for a dead predecessor's record to go. */
#define REC_WAIT_MS 2000

/* The directory of records, made when `make`; -ENOTSUP without one. */
static int rec_dir(wchar_t *buf, size_t n, bool make)
{
	DWORD k = GetEnvironmentVariableW(L"LOCALAPPDATA", buf, (DWORD)n);

	if (!k || k >= n - 16)
		return -ENOTSUP;
	wcscat(buf, L"\\memlink");
	if (make && !CreateDirectoryW(buf, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
		return ml__win_err(GetLastError());
	return 0;
}

static int rec_path(const char *name, wchar_t *buf, size_t n, bool make)
{
	int err = rec_dir(buf, n, make);
	size_t at;

	if (err)
		return err;
	wcscat(buf, L"\\" REC_PREFIX);
	at = wcslen(buf);
	for (; *name && at + 8 < n; name++) {
		if (*name >= 'A' && *name <= 'Z') {
			buf[at++] = L'^';
			buf[at++] = (wchar_t)(*name - 'A' + 'a');
		} else {
			buf[at++] = (wchar_t)(unsigned char)*name;
		}
	}
	buf[at] = 0;
	wcscat(buf, REC_SUFFIX);
	return 0;
}

/* A record's file name back to its channel's name; false if it is none. */
static bool rec_name(const wchar_t *file, char *name)
{
	size_t n = wcslen(file), pre = wcslen(REC_PREFIX), suf = wcslen(REC_SUFFIX), k = 0;

	if (n <= pre + suf || wcsncmp(file, REC_PREFIX, pre) || wcscmp(file + n - suf, REC_SUFFIX))
		return false;
	for (size_t i = pre; i < n - suf; i++) {
		wchar_t ch = file[i];

		if (k == ML_CHAN_NAME_MAX)
			return false;
		if (ch == L'^') {
			ch = file[++i];
			if (ch < L'a' || ch > L'z' || i >= n - suf)
				return false;
			ch = (wchar_t)(ch - L'a' + L'A');
		} else if (ch >= L'A' && ch <= L'Z') {
			ch = (wchar_t)(ch - L'A' + L'a'); /* the file system's doing */
		}
		if (ch > 127)
			return false;
		name[k++] = (char)ch;
	}
	name[k] = 0;
	return ml__name_ok(name);
}

HANDLE ml__win_record_open(const char *name)
{
	wchar_t path[MAX_PATH];
	char text[160];
	DWORD n, e;
	HANDLE h = INVALID_HANDLE_VALUE;

	if (rec_path(name, path, MAX_PATH, true))
		return NULL;
	for (int waited = 0;; waited += 10) {
		h = CreateFileW(path, GENERIC_WRITE | DELETE, FILE_SHARE_READ, NULL, CREATE_ALWAYS,
				FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
		if (h != INVALID_HANDLE_VALUE)
			break;
		/*
		 * Held open, or being deleted: the daemon we replace has lost
		 * its lock, but its process may not have closed everything yet.
		 */
		e = GetLastError();
		if ((e != ERROR_SHARING_VIOLATION && e != ERROR_ACCESS_DENIED) || waited >= REC_WAIT_MS)
			return NULL;
		Sleep(10);
	}
	n = (DWORD)snprintf(text, sizeof(text), "memlink channel %s\r\ndaemon pid %lu\r\n", name,
			    (unsigned long)GetCurrentProcessId());
	WriteFile(h, text, n, &n, NULL);
	return h;
}

int ml__win_record_list(int (*fn)(const char *name, void *arg), void *arg)
{
	wchar_t pat[MAX_PATH];
	WIN32_FIND_DATAW fd;
	HANDLE f;
	int err = rec_dir(pat, MAX_PATH, false), r = 0;

	if (err)
		return err;
	wcscat(pat, L"\\" REC_PREFIX L"*" REC_SUFFIX);
	f = FindFirstFileW(pat, &fd);
	if (f == INVALID_HANDLE_VALUE) {
		DWORD e = GetLastError();

		return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? 0 : ml__win_err(e);
	}
	do {
		char name[ML_CHAN_NAME_MAX + 1];

		if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) && rec_name(fd.cFileName, name))
			r = fn(name, arg);
	} while (!r && FindNextFileW(f, &fd));
	FindClose(f);
	return r;
}

int ml__win_record_gc(const char *name)
{
	wchar_t path[MAX_PATH];
	DWORD e;
	int err = rec_path(name, path, MAX_PATH, false);

	if (err)
		return err == -ENOTSUP ? 0 : err;
	if (DeleteFileW(path))
		return 1;
	e = GetLastError();
	if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
		return 0;
	/* Open without FILE_SHARE_DELETE, or being deleted: its daemon lives. */
	if (e == ERROR_SHARING_VIOLATION || e == ERROR_ACCESS_DENIED)
		return -EEXIST;
	return ml__win_err(e);
}

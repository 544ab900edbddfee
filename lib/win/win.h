/* SPDX-License-Identifier: MIT */
/*
 * What the win backend's files share: errors, the security descriptors
 * made from a channel's mode (sec.c) and the per-user channel records
 * that let ml_chan_list() see channels (records.c).
 */
#ifndef ML_WIN_H
#define ML_WIN_H

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdbool.h>

/* The kinds of object a channel is made of. */
enum ml__win_obj {
	ML__WIN_MAP,   /* file mappings: the region, the pointer */
	ML__WIN_EVENT, /* doorbells */
	ML__WIN_MUTEX, /* liveness and probe locks */
	ML__WIN_OBJS,
};

/* Rights a process that did not create an object opens it with. */
#define ML__WIN_OPEN_MAP (FILE_MAP_READ | FILE_MAP_WRITE)
#define ML__WIN_OPEN_EVENT (SYNCHRONIZE | EVENT_MODIFY_STATE)
#define ML__WIN_OPEN_MUTEX (SYNCHRONIZE | MUTEX_MODIFY_STATE)

/* One SECURITY_ATTRIBUTES per kind of object, made from a mode. */
struct ml__win_sa {
	SECURITY_ATTRIBUTES sa[ML__WIN_OBJS];
};

/* A negative errno for a Win32 error code. */
int ml__win_err(DWORD e);

/* Build the DACLs (and label) for `mode` (sec.c); free them again. */
int ml__win_sa_new(struct ml__win_sa *out, unsigned mode);
void ml__win_sa_free(struct ml__win_sa *sa);
/* 1 if this process's user owns the object `h` (READ_CONTROL), 0 if not. */
int ml__win_mine(HANDLE h);

/*
 * Channel records (records.c): the daemon of `name` keeps one open for
 * as long as it lives; the system deletes it when the daemon's process
 * ends, however it ends. NULL when there is none (best effort: listing
 * is for monitoring, a channel works without it).
 */
HANDLE ml__win_record_open(const char *name);
int ml__win_record_list(int (*fn)(const char *name, void *arg), void *arg);
int ml__win_record_gc(const char *name);

/* For tests/win: 1 once a nap has used a high-resolution timer (clock.c). */
int ml__win_nap_hires(void);

#endif /* ML_WIN_H */

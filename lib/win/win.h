/* SPDX-License-Identifier: MIT */
/*
 * What the win backend's files share: errors, the security descriptors
 * made from a channel's mode (sec.c), the per-user channel records that
 * let ml_chan_list() see channels (records.c), and the channel's state,
 * which the daemon's threads (win.c) and its service thread (serve.c)
 * share.
 */
#ifndef ML_WIN_H
#define ML_WIN_H

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "win_wire.h"

/* The kinds of object a channel is made of. */
enum ml__win_obj {
	ML__WIN_MAP,   /* file mappings: the region, the pointer */
	ML__WIN_EVENT, /* doorbells */
	ML__WIN_MUTEX, /* liveness and probe locks */
	ML__WIN_CTL,   /* the control region: read-only to all but its owner */
	ML__WIN_PIPE,  /* the service's named pipe */
	ML__WIN_OBJS,
};

/* Rights a process that did not create an object opens it with. */
#define ML__WIN_OPEN_MAP (FILE_MAP_READ | FILE_MAP_WRITE)
#define ML__WIN_OPEN_EVENT (SYNCHRONIZE | EVENT_MODIFY_STATE)
#define ML__WIN_OPEN_MUTEX (SYNCHRONIZE | MUTEX_MODIFY_STATE)
/*
 * A pipe's client reads and writes messages and sets the read mode
 * (FILE_WRITE_ATTRIBUTES). Never FILE_GENERIC_WRITE: its FILE_APPEND_DATA
 * is, on a pipe, FILE_CREATE_PIPE_INSTANCE, which would let a client
 * serve instances of the daemon's pipe itself.
 */
#define ML__WIN_PIPE_READ (FILE_READ_DATA | FILE_READ_ATTRIBUTES | SYNCHRONIZE)
#define ML__WIN_PIPE_WRITE (FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | SYNCHRONIZE)
/* What a client gets of its own objects: its area; its bell; the daemon's bell. */
#define ML__WIN_PEER_AREA (SECTION_QUERY | SECTION_MAP_READ | SECTION_MAP_WRITE)
#define ML__WIN_PEER_BELL (SYNCHRONIZE | EVENT_MODIFY_STATE)
/* Only to ring it: no client can wait on it, and so take the daemon's wake-ups. */
#define ML__WIN_PEER_DBELL EVENT_MODIFY_STATE

/* One SECURITY_ATTRIBUTES per kind of object, made from a mode. */
struct ml__win_sa {
	SECURITY_ATTRIBUTES sa[ML__WIN_OBJS];
};

/* A negative errno for a Win32 error code. */
int ml__win_err(DWORD e);

/* Build the DACLs (and label) for `mode` (sec.c); free them again. */
int ml__win_sa_new(struct ml__win_sa *out, unsigned mode);
void ml__win_sa_free(struct ml__win_sa *sa);
/*
 * A DACL for one client's object of kind k: all rights to the daemon's
 * user, `rights` to `peer` (the client's user SID), nothing to anyone else.
 * Free out->lpSecurityDescriptor with LocalFree().
 */
int ml__win_sa_peer(SECURITY_ATTRIBUTES *out, enum ml__win_obj k, PSID peer, DWORD rights);
/* The user SID of a token, malloc'ed; NULL on failure. */
PSID ml__win_token_sid(HANDLE tok);
/* 1 if this process's user owns the object `h` (READ_CONTROL), 0 if not. */
int ml__win_mine(HANDLE h);

#define ML__WIN_NAME_LEN (ML_CHAN_NAME_MAX + 96)

/* The daemon's service thread's view of one pipe instance (serve.c). */
struct ml__win_conn {
	HANDLE pipe;         /* NULL: none */
	HANDLE ev;           /* its overlapped I/O's event */
	OVERLAPPED ov;
	int state;           /* enum in serve.c */
	bool connected;      /* its client came before ConnectNamedPipe: no I/O pending */
	uint64_t since_ns;   /* when its hello became due */
	uint32_t pid;        /* its client's process, as the pipe says */
	union {
		struct ml__ww_hello h;
		uint8_t b[sizeof(struct ml__ww_hello) + 1];
	} in;                /* a hello; one byte more shows one too long */
};

/*
 * A channel's state. Who touches what, in the daemon: its service thread
 * alone owns pend[] and peer[]; it makes a slot's objects (area_map[],
 * cbell[], dbell[], ml__shm.area[]) while the slot is free, through
 * ml__chan_claim(), and publishes them with the slot's record going
 * CLAIMED; the daemon's threads let them go (area_free) before the record
 * goes FREE again. live[] and ml__shm.changes are shared (atomic).
 */
struct ml__win {
	HANDLE map;                  /* the control region */
	/*
	 * The pointer mapping: clients keep it open (not mapped), so that a
	 * dead daemon's region stays in reach of inspection while they live.
	 */
	HANDLE ptr_map;
	struct ml__win_ptr *ptr;
	HANDLE lock_mx;              /* memlink.NAME:lock (daemon only) */
	struct ml__win_holder *lock;
	HANDLE record;               /* daemon: its channel record, or NULL */
	/* Bell 0's liveness: held by the daemon, probed by everyone else. */
	HANDLE mx0, px0;
	struct ml__win_holder *held0;
	unsigned gen;
	wchar_t chan[ML__WIN_NAME_LEN];   /* Local\memlink.NAME or Global\memlink.NAME */
	wchar_t region[ML__WIN_NAME_LEN]; /* ...:G */
	wchar_t pipe_name[ML__WIN_NAME_LEN];
	/*
	 * Doorbells. A client's bell (daemon -> client) at cbell[1 + i]; the
	 * daemon's bell as client i alone rings it at dbell[1 + i]; ev0 is
	 * the daemon's own, which its service thread sets. A client has its
	 * own bell at cbell[own] and its daemon bell at dbell[0].
	 */
	HANDLE cbell[ML__BELLS];
	HANDLE volatile dbell[ML__BELLS];
	HANDLE area_map[ML__BELLS];
	HANDLE ev0;
	unsigned own;                /* client: its bell */
	struct here *here;           /* this process's note of us (win.c), NULL: none */
	HANDLE pipe;                 /* client: its connection */
	/* daemon */
	unsigned mode;
	bool armed;                  /* ml_chan_fd(): ev0 relays every client's bell */
	SRWLOCK arm_lock;            /* armed, relay[] */
	HANDLE relay[ML__BELLS];     /* registered waits on dbell[] */
	SECURITY_ATTRIBUTES pipe_sa;
	HANDLE thread, stop, done;
	HMODULE module;              /* pinned for the service thread, NULL: not needed */
	volatile LONG live[ML__BELLS];    /* 1: bell's client is connected */
	PSID claim_sid;              /* the client being admitted (service thread) */
	char made[ML__WW_TOKEN + 1]; /* the names made for it */
	struct ml__win_conn pend[ML__WW_PENDING];
	struct ml__win_conn peer[ML__BELLS];
	/* onlooker: what the daemon said */
	struct ml__ww_reply status;
	bool status_ok;
};

/* The pointer mapping's contents. */
struct ml__win_ptr {
	volatile LONG gen1;          /* current generation + 1; 0: none yet */
	LONG pad;
	volatile LONG64 len;         /* that generation's control region's size */
	char pipe[ML__WW_TOKEN + 1]; /* the service's pipe: \\.\pipe\memlink.<this> */
};

/* win.c, for serve.c; the second pins this module for a thread of ours (NULL: no need). */
HMODULE ml__win_pin_self(void);
int ml__win_random_token(char *out);
/* serve.c */
int ml__win_serve_init(struct ml__shm *s);
int ml__win_serve_start(struct ml__shm *s);
void ml__win_serve_stop(struct ml__shm *s);
/* Wake the daemon: a client came or went. */
void ml__win_changed(struct ml__shm *s);

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

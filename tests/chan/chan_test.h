/* SPDX-License-Identifier: MIT */
/*
 * What the channel integration tests share (every file of tests/chan is one program:
 * main.c runs them, util.c holds the helpers and the echo daemon). Each
 * other file is one feature's tests; the runner is tests/common/proctest.c.
 */
#ifndef ML_CHAN_TEST_H
#define ML_CHAN_TEST_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memlink.h"

/* ---- util.c ---- */

extern char self_exe[PATH_MAX];    /* this binary, for fork+exec roles */
extern pid_t runner_pid;           /* the runner: names its channels */
extern int g_wait_mode;            /* $CHAN_WAIT_MODE, for every handle */
extern char active_backend[16];    /* what the library picked */

struct ml_chan_opts opts_default(void);
/* Register the globals above for a test's child processes (pt_inherit). */
void chan_test_inherit(void);
/* A channel name unique to this run and test. */
void chan_name(char *buf, size_t len, const char *tag);
/* $MEMLINK_BACKEND, or "auto". */
const char *backend_name(void);
/* Backends with a POSIX shm object (/dev/shm): "darwin". */
bool posix_shm_backend(void);
/*
 * Backends whose channel has a name outside any process, to look for:
 * darwin's shm object, linux's socket (@memlink.NAME).
 */
bool named_backend(void);
/* Backends whose region map_region() can map: those, and "win". */
bool region_mappable(void);
/* Does the channel's name exist (linux: its socket; darwin: /dev/shm)? */
bool shm_exists(const char *name);
/* linux: is @memlink.NAME bound in this network namespace? */
bool socket_exists(const char *name);
#ifndef _WIN32
#include <sys/socket.h>
#include <sys/un.h>
/* linux: the channel's abstract address (lib/linux/wire.h); its length. */
socklen_t sock_addr(struct sockaddr_un *a, const char *name);
#endif
/* Fork and exec this binary with the given role arguments (NULL-ended). */
pid_t spawn_exec(const char *const *args);
/* Connect, retrying while the result is `retry_on` (a starting daemon). */
int connect_retry(ml_chan **c, const char *name, int64_t timeout_ns, int retry_on);
/* The same with the caller's options. */
int connect_opts_retry(ml_chan **c, const char *name, const struct ml_chan_opts *o,
		       int64_t timeout_ns, int retry_on);
/* Echo every request to its client until *stop or the timeout. */
long serve_echo(ml_chan *d, _Atomic int *stop, int64_t timeout_ns);
/* Daemon: the id of slot `slot`'s client as ml_chan_clients() lists it now; 0: none. */
unsigned listed_id(ml_chan *d, unsigned slot);
/*
 * The same, waiting up to 5 s (in ml_chan_wait) for one to be there: a
 * client connected in this process a moment ago may not be yet. 0: none.
 */
unsigned client_id(ml_chan *d, unsigned slot);
/* SIGKILL and reap `pid`, if > 0 (a test's clean-up). */
void kill_reap(pid_t pid);
/* Is a channel's descriptor (ml_chan_fd; win: an event HANDLE) ready within ms? */
bool fd_ready(int fd, int ms);
/* Send `len` bytes at prio and wait for the same bytes back. */
int roundtrip(ml_chan *c, int prio, const void *msg, size_t len, int64_t timeout_ns);
/*
 * The whole region of a darwin channel, mapped read-write (it holds
 * every client's area); win: its control region, read-write (as its
 * owner may); linux: its control region, read-only (an onlooker's view).
 * NULL on failure.
 */
uint8_t *map_region(const char *name, size_t *len);
/*
 * The control region, writable: a fresh mapping of the region (darwin,
 * win), or, linux, the mapping of this process, or, kmod, a new
 * mapping through a descriptor of this process's; this process must be
 * the channel's daemon (or a fork of it). NULL if there is none.
 */
uint8_t *ctl_map(const char *name, size_t *len);
/*
 * Slot `slot`'s client area (chan_layout.h), `*len` bytes, writable: in
 * a fresh mapping of the region (darwin), or, linux and kmod, as this
 * process (the daemon, or that slot's client, or a fork of either) maps
 * it (kmod: mapped anew), or, win, as this process's daemon or that
 * slot's client of the channel maps it (win_track). NULL if there is none.
 */
uint8_t *area_map(const char *name, unsigned slot, size_t *len);
#ifdef _WIN32
/*
 * win: a client's area is named by a token only its connection carried,
 * so the tests find it as the library mapped it in this process: every
 * channel the tests open or close goes through these, which note it.
 */
int win_daemon_create(ml_chan **out, const char *name, const struct ml_chan_opts *o);
int win_client_connect(ml_chan **out, const char *name, const struct ml_chan_opts *o);
void win_chan_close(ml_chan *c);
#ifndef CHAN_TEST_NO_TRACK
#define ml_daemon_create win_daemon_create
#define ml_client_connect win_client_connect
#define ml_chan_close win_chan_close
#endif
#endif
#ifndef _WIN32
/* linux: this process's mapping of memfd `memfd`; NULL if none. */
uint8_t *own_mapping(const char *memfd, size_t *len, bool *writable);
/*
 * darwin (simulated): this process's mapping of the channel's control
 * region (*writable says whether it is writable), and of slot `slot`'s
 * area (lib/darwin/darwin.c names them); NULL if none.
 */
uint8_t *darwin_ctl(const char *name, size_t *len, bool *writable);
uint8_t *darwin_area(const char *name, unsigned slot, size_t *len);
/* linux: the control region's memfd, as an onlooker gets it; -1 on failure. */
int inspect_memfd(const char *name);
#ifdef __linux__
/* kmod: our descriptor bound to module region `region` (and its size, how many); -1: none. */
int kmod_region_fd(const char *region, uint64_t *size, int *n);
#endif
#endif

/* Roles run by fork+exec of this binary ("--role NAME ARGS..."). */
int role_serve(int argc, char **argv);         /* util.c */
int role_stress_client(int argc, char **argv); /* many_clients.c */
uint64_t stress_msgs(void);                    /* many_clients.c: $CHAN_MSGS */

/* A small ring, and a message size, that fill a lane quickly. */
#define FULL_RING 4096u
#define FULL_MSG 64u

/* A daemon and one client of it, both in this process, on a FULL_RING channel. */
int open_pair(const char *tag, ml_chan **d, ml_chan **c);

/* ---- the tests, by file ---- */

int t_roundtrip_prios(void);           /* prio.c */
int t_turns(void);                     /* turns.c */
int t_many_clients_4(void);            /* many_clients.c */
int t_many_clients_8(void);
int t_full_lane(void);                 /* full_lane.c */
int t_room_bell(void);                 /* room.c */
int t_room_wait(void);
int t_backpressure(void);              /* backpressure.c */
int t_shutdown(void);                  /* shutdown.c */
int t_shutdown_by_close(void);
int t_connect_errors(void);            /* connect.c */
int t_layout_mismatch(void);
int t_daemon_sigkill(void);            /* daemon_sigkill.c */
int t_daemon_sigkill_every_call(void);
int t_client_sigkill(void);            /* client_sigkill.c */
int t_shm_cleanup(void);               /* cleanup.c */
int t_dead_mid_send(void);             /* hostile.c */
int t_corrupt_lane(void);
int t_rewritten_ring_config(void);
int t_client_goes_back(void);
int t_inspect_and_gc(void);            /* inspect.c */
int t_stat_tool(void);
int t_create_race(void);               /* create_race.c */
int t_perm_other_user(void);           /* perm.c */
int t_sock_hostile_peers(void);        /* sock.c: the linux backend's socket */
int t_sock_impostor_daemon(void);
int t_sock_group_mode(void);
int t_sock_gone_or_stopped(void);
int t_sock_kill_orders(void);
int t_sock_fd_readiness(void);
int t_sock_uid_daemon(void);
int t_sock_death_sleepers(void);
int t_sock_fds_cloexec(void);
int t_sock_connect_flood(void);
int t_isolate_no_way_in(void);         /* isolate.c: clients kept apart */
int t_isolate_scribble(void);
int t_isolate_cut_off(void);
int t_no_lost_wakeup(void);            /* wakeup.c */
int t_no_lost_wakeup_crowded(void);    /* wakeup.c */
int t_missed_wakeup_counted(void);     /* wakeup.c */
int t_recv_many(void);                 /* batch.c */
int t_recv_many_edges(void);
int t_send_many(void);
int t_recv_view_edges(void);
int t_send_reserve_edges(void);       /* zerocopy.c */
int t_send_reserve_stream(void);
int t_recv_view_client_leaves(void);
int t_reuse_late_reply(void);          /* reuse.c: client ids never name a newcomer */
int t_reuse_churn(void);
int t_reuse_events(void);
int t_reuse_departure_wakes(void);
int t_wake_once(void);                 /* wake_once.c: one wake-up a sleep */
int t_topic_reliable(void);            /* topic.c: publish-subscribe */
int t_topic_lossy(void);
int t_topic_late_join(void);
int t_topic_publisher_sigkill(void);
int t_topic_subscriber_sigkill(void);
int t_topic_read_only(void);
int t_topic_edges(void);
int t_topic_wakeup(void);

#endif /* ML_CHAN_TEST_H */

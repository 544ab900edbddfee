/* SPDX-License-Identifier: MIT */
/*
 * Liveness by record locks, shared by the linux and darwin backends: the
 * holder of bell b holds a write lock on byte b of a file (linux: the
 * object itself, darwin: a lock file beside it). A file under a channel's
 * name belongs to a dead daemon once nobody holds its byte 0.
 */
#ifndef ML_POSIX_LOCK_H
#define ML_POSIX_LOCK_H

#include <stdbool.h>

/*
 * fcntl() `cmd` (a SETLK kind, or with `get` a GETLK kind: F_OFD_* on
 * Linux, the per-process F_SETLK/F_GETLK on macOS) with `type` on byte
 * `bell`. 0, or 1/0 for held/free when probing; -EBUSY if someone else
 * holds it.
 */
int ml__posix_bell_lock(int fd, unsigned bell, short type, int cmd, bool get);

/* How a backend opens, takes and lets go of a file under a channel's name. */
struct ml__posix_dead {
	/* Open `path` into *fd: 0, -ENOENT if nothing is there. */
	int (*open)(void *arg, const char *path, int *fd);
	/* Take byte 0 for ourselves: 0, -EBUSY if someone alive has it. */
	int (*take)(void *arg, int fd);
	/* Holding it, with `path` still naming it: remove what goes with it. */
	void (*gone)(void *arg, int fd);
	/* Let go of byte 0 (if taken) and of fd. */
	void (*done)(void *arg, int fd, bool taken);
};

/*
 * Is the file at `path` a dead daemon's? Then remove the name: 1, or 0 if
 * there is none; -EEXIST if its daemon lives. Holding its byte 0 while we
 * look keeps any other new daemon from doing the same at the same time.
 */
int ml__posix_unlink_dead(const char *path, const struct ml__posix_dead *ops, void *arg);

/*
 * Give `path` to a new daemon with link_fn(arg, path) (0 or -errno): of
 * daemons racing for it exactly one wins. A dead daemon's file there is
 * removed with dead(arg, path) and the link tried again, `tries` times in
 * all; then -EEXIST (daemons keep coming and going under the name).
 */
int ml__posix_publish(const char *path, int (*link_fn)(void *arg, const char *path),
		      int (*dead)(void *arg, const char *path), void *arg, int tries);

/*
 * Call fn with the channel name of every entry of `dir` named prefix NAME
 * suffix, NAME decoded in place by `decode` (NULL: as it is; false: not
 * one of ours) and a valid channel name, until fn returns non-zero
 * (returned).
 */
int ml__posix_list(const char *dir, const char *prefix, const char *suffix,
		   bool (*decode)(char *name), int (*fn)(const char *name, void *arg), void *arg);

#endif

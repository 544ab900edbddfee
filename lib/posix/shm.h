/* SPDX-License-Identifier: MIT */
/* POSIX shared memory objects, shared by the linux and darwin backends. */
#ifndef ML_POSIX_SHM_H
#define ML_POSIX_SHM_H

#include "backend.h"

/*
 * The longest object name shm_open() takes here, counting the leading '/'
 * (defined by the backend: macOS allows 31 bytes, Linux NAME_MAX).
 */
extern const size_t ml__posix_shm_name_max;

/*
 * The object's name under shm_open(): "/memlink.<name>", or for a name too
 * long for this OS "/memlink#<16 hex digits>", a hash of it.
 */
void ml__posix_shm_path(char *buf, size_t len, const char *name);
/* The same for a given longest name (tests). */
void ml__posix_shm_path_max(char *buf, size_t len, const char *name, size_t max);
/* Map `len` bytes of fd shared, read-write, into s->base and s->len. */
int ml__posix_shm_map(struct ml__shm *s, int fd, size_t len);

/*
 * Create the object exclusively (O_EXCL), size it and map it; *fd gets the
 * descriptor. -EEXIST if the name exists.
 */
int ml__posix_shm_create(struct ml__shm *s, size_t len, unsigned mode, int *fd);
/* Open and map an existing object; sets s->len. */
int ml__posix_shm_open(struct ml__shm *s, int *fd);
/* The object's owner, its creator's effective uid. */
int ml__posix_shm_owner(int fd, uint32_t *uid);
/* Remove the name, but only if it still names the object behind fd. */
void ml__posix_shm_unlink_if_ours(const struct ml__shm *s, int fd);
/* Unmap and close. */
void ml__posix_shm_close(struct ml__shm *s, int fd);

#endif

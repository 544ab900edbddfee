/* SPDX-License-Identifier: MIT */
/* POSIX shared memory objects, shared by the linux and darwin backends. */
#ifndef ML_POSIX_SHM_H
#define ML_POSIX_SHM_H

#include "backend.h"

/* "/memlink.<name>": the object's name under shm_open(). */
void ml__posix_shm_path(char *buf, size_t len, const char *name);

/*
 * Create the object exclusively (O_EXCL), size it and map it; *fd gets the
 * descriptor. -EEXIST if the name exists.
 */
int ml__posix_shm_create(struct ml__shm *s, size_t len, unsigned mode, int *fd);
/* Open and map an existing object; sets s->len. */
int ml__posix_shm_open(struct ml__shm *s, int *fd);
/* Remove the name, but only if it still names the object behind fd. */
void ml__posix_shm_unlink_if_ours(const struct ml__shm *s, int fd);
/* Unmap and close. */
void ml__posix_shm_close(struct ml__shm *s, int fd);

#endif

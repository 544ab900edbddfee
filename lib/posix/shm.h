/* SPDX-License-Identifier: MIT */
/* POSIX shared memory objects, shared by the linux and darwin backends. */
#ifndef ML_POSIX_SHM_H
#define ML_POSIX_SHM_H

#include "backend.h"

/*
 * What differs from one OS to another behind the same calls; each backend
 * passes its own.
 */
struct ml__posix_shm {
	/* The longest name shm_open() takes, counting the leading '/'. */
	size_t name_max;
	/* Added to every shm_open(): O_CLOEXEC where the OS accepts it. */
	int oflags;
	/*
	 * shm_open() applies the umask (Linux): fchmod() to the mode meant.
	 * Else the object must come out with the mode asked for (checked).
	 */
	bool umask;
};

/*
 * The object's name under shm_open(): "/memlink.<name>", or for a name too
 * long for the OS "/memlink#<16 hex digits>", a hash of it.
 */
void ml__posix_shm_name(const struct ml__posix_shm *os, char *buf, size_t len, const char *name);
/* The same for a given longest name. */
void ml__posix_shm_path_max(char *buf, size_t len, const char *name, size_t max);
/* Map `len` bytes of fd shared, with `prot`, into s->base and s->len. */
int ml__posix_shm_map(struct ml__shm *s, int fd, size_t len, int prot);

/*
 * Create the object exclusively (O_EXCL), size it (one ftruncate(), all
 * xnu allows) and map it; *fd gets the descriptor. -EEXIST if the name
 * exists, -EPERM if the object did not get `mode`.
 */
int ml__posix_shm_create(const struct ml__posix_shm *os, struct ml__shm *s, size_t len,
			 unsigned mode, int *fd);
/*
 * Open and map an existing object, read-write or (!writable) read-only:
 * O_RDONLY and PROT_READ, so that neither the descriptor nor the mapping
 * can ever be made writable. Sets s->len. -ENOENT while unsized.
 */
int ml__posix_shm_open(const struct ml__posix_shm *os, struct ml__shm *s, bool writable, int *fd);
/*
 * Read `n` bytes at `off` of the object named for `name`, without
 * opening it for writing: 0, -ENOENT if there is none, -ENODATA if it is
 * not that large (not yet sized).
 */
int ml__posix_shm_peek(const struct ml__posix_shm *os, const char *name, size_t off, void *buf,
		       size_t n);
/* The object's owner, its creator's effective uid. */
int ml__posix_shm_owner(int fd, uint32_t *uid);
/*
 * Remove the name, but only if it still names the object behind fd, as
 * told by st_dev/st_ino: Linux only (xnu's fstat() gives 0 for both).
 */
void ml__posix_shm_unlink_if_ours(const struct ml__posix_shm *os, const struct ml__shm *s, int fd);
/* Unmap and close. */
void ml__posix_shm_close(struct ml__shm *s, int fd);

#endif

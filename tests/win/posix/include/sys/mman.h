/* SPDX-License-Identifier: MIT */
/*
 * tests/win/posix: <sys/mman.h> for code that maps /dev/shm, which only
 * runs with a POSIX backend: mmap() fails; munmap() unmaps a view (of
 * map_region(), tests/chan/util.c).
 */
#ifndef ML_WIN_POSIX_SYS_MMAN_H
#define ML_WIN_POSIX_SYS_MMAN_H

#include <stddef.h>
#include <sys/types.h>

#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 1
#define MAP_ANONYMOUS 0x20
#define MAP_FAILED ((void *)-1)

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int munmap(void *addr, size_t len);
int shm_unlink(const char *name);

#endif

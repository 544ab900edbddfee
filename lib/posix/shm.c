// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "shm.h"

#define PATH_LEN (ML_CHAN_NAME_MAX + 16)

void ml__posix_shm_name(const struct ml__posix_shm *os, char *buf, size_t len, const char *name)
{
	ml__posix_shm_path_max(buf, len, name, os->name_max);
}

void ml__posix_shm_path_max(char *buf, size_t len, const char *name, size_t max)
{
	if (strlen("/memlink.") + strlen(name) <= max) {
		snprintf(buf, len, "/memlink.%s", name);
		return;
	}
	/* Too long for this OS: a hash, after a '#' no channel name has. */
	snprintf(buf, len, "/memlink#%016llx", (unsigned long long)ml__fnv1a(name));
}

int ml__posix_shm_map(struct ml__shm *s, int fd, size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	s->base = p;
	s->len = len;
	return 0;
}

int ml__posix_shm_create(const struct ml__posix_shm *os, struct ml__shm *s, size_t len,
			 unsigned mode, int *fd)
{
	char path[PATH_LEN];
	struct stat st;
	int err;

	ml__posix_shm_name(os, path, sizeof(path), s->name);
	*fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | os->oflags, (mode_t)mode);
	if (*fd < 0)
		return -errno;
	/*
	 * The mode asked for is the mode meant. Linux applied the umask, so
	 * set it; xnu stores it as given and has no fchmod() for shm at all
	 * (EINVAL), so look.
	 */
	if (os->umask ? fchmod(*fd, (mode_t)mode) : fstat(*fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (!os->umask && (st.st_mode & 07777) != mode) {
		err = -EPERM;
		goto fail;
	}
	if (ftruncate(*fd, (off_t)len)) {
		err = -errno;
		goto fail;
	}
	err = ml__posix_shm_map(s, *fd, len, PROT_READ | PROT_WRITE);
	if (err)
		goto fail;
	return 0;
fail:
	shm_unlink(path);
	close(*fd);
	*fd = -1;
	return err;
}

int ml__posix_shm_open(const struct ml__posix_shm *os, struct ml__shm *s, bool writable, int *fd)
{
	char path[PATH_LEN];
	struct stat st;
	int err;

	ml__posix_shm_name(os, path, sizeof(path), s->name);
	*fd = shm_open(path, (writable ? O_RDWR : O_RDONLY) | os->oflags, 0);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st)) {
		err = -errno;
		goto fail;
	}
	/* Size 0: the daemon has created the object but not sized it yet. */
	err = st.st_size > 0 ? ml__posix_shm_map(s, *fd, (size_t)st.st_size,
						 writable ? PROT_READ | PROT_WRITE : PROT_READ) :
			       -ENOENT;
	if (err)
		goto fail;
	return 0;
fail:
	close(*fd);
	*fd = -1;
	return err;
}

int ml__posix_shm_peek(const struct ml__posix_shm *os, const char *name, size_t off, void *buf,
		       size_t n)
{
	char path[PATH_LEN];
	struct stat st;
	void *p;
	int fd, err = 0;

	ml__posix_shm_name(os, path, sizeof(path), name);
	fd = shm_open(path, O_RDONLY | os->oflags, 0);
	if (fd < 0)
		return -errno;
	/* xnu maps no more than was sized, and nothing before. */
	if (fstat(fd, &st))
		err = -errno;
	else if (st.st_size < 0 || (uint64_t)st.st_size < (uint64_t)off + n)
		err = -ENODATA;
	if (!err) {
		p = mmap(NULL, off + n, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			err = -errno;
		} else {
			memcpy(buf, (const uint8_t *)p + off, n);
			munmap(p, off + n);
		}
	}
	close(fd);
	return err;
}

int ml__posix_shm_owner(int fd, uint32_t *uid)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	*uid = (uint32_t)st.st_uid;
	return 0;
}

void ml__posix_shm_unlink_if_ours(const struct ml__posix_shm *os, const struct ml__shm *s, int fd)
{
	char path[PATH_LEN];
	struct stat mine, named;
	int nfd;

	ml__posix_shm_name(os, path, sizeof(path), s->name);
	nfd = shm_open(path, O_RDONLY | os->oflags, 0);
	if (nfd < 0)
		return;
	/* A newer daemon may have replaced the object: leave that one be. */
	if (!fstat(fd, &mine) && !fstat(nfd, &named) && mine.st_ino == named.st_ino &&
	    mine.st_dev == named.st_dev)
		shm_unlink(path);
	close(nfd);
}

void ml__posix_shm_close(struct ml__shm *s, int fd)
{
	if (s->base)
		munmap(s->base, s->len);
	s->base = NULL;
	if (fd >= 0)
		close(fd);
}

// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "lock.h"

int ml__posix_bell_lock(int fd, unsigned bell, short type, int cmd, bool get)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)bell,
		.l_len = 1,
	};

	if (fcntl(fd, cmd, &fl))
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	return get ? fl.l_type != F_UNLCK : 0;
}

int ml__posix_unlink_dead(const char *path, const struct ml__posix_dead *ops, void *arg)
{
	struct stat mine, named;
	int fd, err;

	err = ops->open(arg, path, &fd);
	if (err)
		return err == -ENOENT ? 0 : err;
	err = ops->take(arg, fd);
	if (!err && !fstat(fd, &mine) && !stat(path, &named) && mine.st_ino == named.st_ino &&
	    mine.st_dev == named.st_dev) {
		if (ops->gone)
			ops->gone(arg, fd);
		if (!unlink(path))
			err = 1;
	}
	ops->done(arg, fd, err >= 0);
	return err == -EBUSY ? -EEXIST : err;
}

int ml__posix_publish(const char *path, int (*link_fn)(void *arg, const char *path),
		      int (*dead)(void *arg, const char *path), void *arg, int tries)
{
	int err;

	for (int t = 0; t < tries; t++) {
		err = link_fn(arg, path);
		if (err != -EEXIST)
			return err;
		err = dead(arg, path);
		if (err < 0)
			return err;
	}
	return -EEXIST;
}

int ml__posix_list(const char *dir, const char *prefix, const char *suffix,
		   bool (*decode)(char *name), int (*fn)(const char *name, void *arg), void *arg)
{
	size_t plen = strlen(prefix), slen = strlen(suffix);
	char name[2 * ML_CHAN_NAME_MAX + 1];
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	if (!d)
		return -errno;
	while (!ret && (e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n < plen + slen || n - plen - slen >= sizeof(name) ||
		    strncmp(e->d_name, prefix, plen) || strcmp(e->d_name + n - slen, suffix))
			continue;
		memcpy(name, e->d_name + plen, n - plen - slen);
		name[n - plen - slen] = '\0';
		if ((!decode || decode(name)) && ml__name_ok(name))
			ret = fn(name, arg);
	}
	closedir(d);
	return ret;
}

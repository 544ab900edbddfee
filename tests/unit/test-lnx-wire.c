// SPDX-License-Identifier: MIT
/*
 * The linux backend's socket helpers (lib/linux/sock.c): every channel
 * name fits an abstract address; descriptors a peer sends are checked for
 * their kind, a memfd for its size and seals; a message with more
 * descriptors than allowed arrives with none left open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "memlink.h"
#include "linux/lnx.h"

static void test_every_name_fits(void **state)
{
	char longest[ML_CHAN_NAME_MAX + 1];
	struct sockaddr_un a, b;
	socklen_t n;

	(void)state;
	memset(longest, 'y', ML_CHAN_NAME_MAX);
	longest[ML_CHAN_NAME_MAX] = '\0';
	n = ml__lnx_addr(&a, longest);
	assert_int_equal(a.sun_path[0], '\0');
	assert_int_equal(n, offsetof(struct sockaddr_un, sun_path) + 1 + 8 + ML_CHAN_NAME_MAX);
	assert_true(n <= sizeof(a));
	assert_memory_equal(a.sun_path + 1, "memlink.", 8);
	assert_memory_equal(a.sun_path + 9, longest, ML_CHAN_NAME_MAX);
	/* The length, not a NUL, ends the name: "a" is not "ab". */
	assert_int_not_equal(ml__lnx_addr(&a, "a"), ml__lnx_addr(&b, "ab"));
}

static void test_memfd_checked(void **state)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8192), 0);
	/* Unsealed: it could shrink under a reader. */
	assert_int_equal(ml__lnx_check_memfd(fd, 8192, true), -EPROTO);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	assert_int_equal(ml__lnx_check_memfd(fd, 8192, true), -EPROTO); /* may still grow */
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), 0);
	assert_int_equal(ml__lnx_check_memfd(fd, 8192, true), 0);
	assert_int_equal(ml__lnx_check_memfd(fd, 8192, false), 0);
	/* Not the size the peer claims. */
	assert_int_equal(ml__lnx_check_memfd(fd, 4096, true), -EPROTO);
	assert_int_equal(ml__lnx_check_memfd(fd, 16384, false), -EPROTO);
	close(fd);
}

/*
 * Sealed against writing, as a daemon seals its control region: fine to
 * map read-only, refused as a client's area, which the client writes.
 */
static void test_memfd_write_sealed(void **state)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
				ML__F_SEAL_FUTURE_WRITE), 0);
	assert_int_equal(ml__lnx_check_memfd(fd, 4096, false), 0);
	assert_int_equal(ml__lnx_check_memfd(fd, 4096, true), -EPROTO);
	/* And nobody can map it for writing any more. */
	assert_true(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
	close(fd);
	fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), 0);
	assert_int_equal(ml__lnx_check_memfd(fd, 4096, true), -EPROTO);
	assert_int_equal(ml__lnx_check_memfd(fd, 4096, false), 0);
	close(fd);
}

static void test_eventfd_kind(void **state)
{
	int e = eventfd(0, EFD_CLOEXEC), p[2];

	(void)state;
	assert_true(e >= 0);
	assert_int_equal(pipe(p), 0);
	assert_true(ml__lnx_is_eventfd(e));
	assert_false(ml__lnx_is_eventfd(p[0]));
	assert_false(ml__lnx_is_eventfd(p[1]));
	close(e);
	close(p[0]);
	close(p[1]);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* More descriptors than ML__WIRE_MAX_FDS: -EMSGSIZE, and none stays open. */
static void test_too_many_fds(void **state)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 8)];
	} u;
	int sv[2], fds[8], got[ML__WIRE_MAX_FDS], n = -1, before;
	char byte = 'x', buf[4];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	for (int i = 0; i < 8; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	memset(&u, 0, sizeof(u));
	u.h.cmsg_level = SOL_SOCKET;
	u.h.cmsg_type = SCM_RIGHTS;
	u.h.cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(&u.h), fds, sizeof(fds));
	assert_int_equal(sendmsg(sv[0], &m, 0), 1);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	before = count_fds();
	assert_int_equal(ml__lnx_recv(sv[1], buf, sizeof(buf), got, &n, MSG_DONTWAIT), -EMSGSIZE);
	assert_int_equal(n, ML__WIRE_MAX_FDS);
	ml__lnx_close_fds(got, n);
	assert_int_equal(count_fds(), before);
	/* And one that fits comes through whole. */
	assert_int_equal(ml__lnx_send(sv[0], "hi", 2, &sv[0], 1), 0);
	assert_int_equal(ml__lnx_recv(sv[1], buf, sizeof(buf), got, &n, MSG_DONTWAIT), 2);
	assert_int_equal(n, 1);
	assert_memory_equal(buf, "hi", 2);
	close(got[0]);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_name_fits),
		cmocka_unit_test(test_memfd_checked),
		cmocka_unit_test(test_memfd_write_sealed),
		cmocka_unit_test(test_eventfd_kind),
		cmocka_unit_test(test_too_many_fds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * Built by tests/install/test-install.sh against an installed memlink, with
 * nothing but `pkg-config --cflags --libs memlink`: a three-lane ring (the
 * most urgent record first, then FIFO, then -EAGAIN) and a channel round
 * trip between a daemon and a forked client. Prints "ok" and exits 0.
 *   prog VERSION      VERSION: what ml_version() must say
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memlink.h>

#define SEC 1000000000LL

static int fail(const char *what, int err)
{
	fprintf(stderr, "prog: %s: %s\n", what, err ? ml_strerror(err) : "unexpected result");
	return 1;
}

static int ring(void)
{
	struct ml_ring_opts o = { .size = sizeof(o), .flags = ML_RING_LANES3 };
	struct ml_ring_info info;
	char buf[64];
	ml_ring *r;
	int prio, n, err = ml_ring_new(&r, 4096, &o);

	if (err)
		return fail("ml_ring_new", err);
	if ((err = ml_ring_write(r, ML_PRIO_LOW, "low", 3)) ||
	    (err = ml_ring_write(r, ML_PRIO_CRITICAL, "critical", 8)) ||
	    (err = ml_ring_write(r, ML_PRIO_LOW, "low2", 4)))
		return fail("ml_ring_write", err);
	if ((err = ml_ring_info(r, &info)) || info.lanes != 3)
		return fail("ml_ring_info", err);
	n = ml_ring_read(r, &prio, buf, sizeof(buf));
	if (n != 8 || prio != ML_PRIO_CRITICAL || memcmp(buf, "critical", 8))
		return fail("read critical first", n < 0 ? n : 0);
	n = ml_ring_read(r, &prio, buf, sizeof(buf));
	if (n != 3 || prio != ML_PRIO_LOW || memcmp(buf, "low", 3))
		return fail("read low", n < 0 ? n : 0);
	n = ml_ring_read(r, &prio, buf, sizeof(buf));
	if (n != 4 || memcmp(buf, "low2", 4))
		return fail("read low2", n < 0 ? n : 0);
	if ((n = ml_ring_read(r, &prio, buf, sizeof(buf))) != -EAGAIN)
		return fail("read an empty ring", n < 0 ? n : 0);
	ml_ring_free(r);
	return 0;
}

static int client(const char *name)
{
	char buf[64];
	ml_chan *c;
	int n, err = ml_client_connect(&c, name, NULL);

	if (err)
		return fail("ml_client_connect", err);
	if ((err = ml_chan_send_wait(c, 0, ML_PRIO_HIGH, "ping", 4, 5 * SEC)))
		return fail("ml_chan_send_wait", err);
	while ((n = ml_chan_recv(c, NULL, NULL, buf, sizeof(buf))) == -EAGAIN)
		if ((err = ml_chan_wait(c, 5 * SEC)))
			return fail("client ml_chan_wait", err);
	if (n != 9 || memcmp(buf, "pong:ping", 9))
		return fail("client ml_chan_recv", n < 0 ? n : 0);
	ml_chan_close(c);
	return 0;
}

static int chan(void)
{
	char name[ML_CHAN_NAME_MAX + 1], buf[64];
	unsigned who;
	int prio, n, status, err;
	ml_chan *d;
	pid_t pid;

	snprintf(name, sizeof(name), "ml-install-test-%ld", (long)getpid());
	if ((err = ml_daemon_create(&d, name, NULL)))
		return fail("ml_daemon_create", err);
	pid = fork();
	if (pid < 0)
		return fail("fork", -errno);
	if (pid == 0)
		_exit(client(name));
	while ((n = ml_chan_recv(d, &prio, &who, buf, sizeof(buf))) == -EAGAIN)
		if ((err = ml_chan_wait(d, 5 * SEC)))
			break;
	if (n != 4 || prio != ML_PRIO_HIGH || memcmp(buf, "ping", 4))
		err = fail("daemon ml_chan_recv", n < 0 ? n : err);
	else if ((err = ml_chan_reply(d, who, prio, "pong:ping", 9)))
		err = fail("ml_chan_reply", err);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		err = fail("the client", 0);
	ml_chan_close(d);
	ml_chan_gc(name, 0);
	return err;
}

int main(int argc, char **argv)
{
	alarm(30);
	if (argc != 2 || strcmp(ml_version(), argv[1])) {
		fprintf(stderr, "prog: ml_version() is %s\n", ml_version());
		return 1;
	}
	if (ring() || chan())
		return 1;
	printf("ok\n");
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * Channel tests: permissions: a channel's mode is enforced against other
 * users.
 */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

/*
 * A channel's mode is enforced against other users: the daemon (root)
 * creates it 0600 and a client that dropped to an unprivileged uid/gid gets
 * -EACCES; at 0666 the same client connects and a message goes there and
 * back. Needs root to switch users.
 */
#define PERM_UID 65534

struct perm_shared {
	char name[80];
	_Atomic int done;	/* the client is finished with the daemon */
};

/* Exit status: 0 as expected, 1 otherwise (the reason is in R). */
static int perm_client(void *arg, int want)
{
	struct perm_shared *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *c = NULL;
	int err, ret = 1;

	if (setgroups(0, NULL) || setgid(PERM_UID) || setuid(PERM_UID)) {
		failf("client: cannot become uid %d: %s", PERM_UID, strerror(errno));
		goto out;
	}
	CHECK(geteuid() == PERM_UID && getegid() == PERM_UID, "client still uid %d gid %d",
	      (int)geteuid(), (int)getegid());
	err = ml_client_connect(&c, sh->name, &o);
	CHECK(err == want, "uid %d connecting to a %s channel: %d (%s), want %d (%s)", PERM_UID,
	      want ? "0600" : "0666", err, err ? ml_strerror(err) : "ok", want,
	      want ? ml_strerror(want) : "ok");
	if (!want)
		CHECK_RC(roundtrip(c, ML_PRIO_HIGH, "not root", 8, 10 * SEC), 0);
	ret = 0;
out:
	ml_chan_close(c);
	atomic_store(&sh->done, 1);
	return ret;
}

static int perm_client_refused(void *arg)
{
	return perm_client(arg, -EACCES);
}

static int perm_client_admitted(void *arg)
{
	return perm_client(arg, 0);
}

int t_perm_other_user(void)
{
	struct perm_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;
	pid_t pid = 0;
	int ret = -1;
	long served;

	if (geteuid() != 0) {
		skipf("needs root to switch to an unprivileged uid");
		return 1;
	}
	/* 0600: refused before the daemon ever hears of the client. */
	chan_name(sh->name, sizeof(sh->name), "perm600");
	o.mode = 0600;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(perm_client_refused, sh);
	CHECK(pid > 0, "spawn");
	CHECK(reap_ok(pid, "client of the 0600 channel", 20 * SEC), "client");
	pid = 0;
	CHECK(ml_chan_connected(d) == 0, "a refused client shows as connected");
	ml_chan_close(d);
	d = NULL;

	/* 0666: the same client is served. */
	chan_name(sh->name, sizeof(sh->name), "perm666");
	atomic_store(&sh->done, 0);
	o.mode = 0666;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	pid = spawn(perm_client_admitted, sh);
	CHECK(pid > 0, "spawn");
	served = serve_echo(d, &sh->done, 20 * SEC);
	CHECK(served == 1, "the daemon served %ld messages, want 1", served);
	CHECK(reap_ok(pid, "client of the 0666 channel", 20 * SEC), "client");
	pid = 0;
	ret = 0;
out:
	if (pid > 0)
		reap(pid, 5 * SEC);
	ml_chan_close(d);
	return ret;
}

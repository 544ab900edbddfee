// SPDX-License-Identifier: MIT
/*
 * Channel tests: permissions: a channel's mode is enforced against other
 * users.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

#ifdef _WIN32
/* No uids to switch to: tests/win checks the DACLs that modes make there. */
int t_perm_other_user(void)
{
	skipf("Windows has no uids to switch to (tests/win reads back the DACLs)");
	return 1;
}
#else
#include <grp.h>

/*
 * A channel's mode and owner are enforced against other users: the daemon
 * (root) creates it 0600 and a client that dropped to an unprivileged
 * uid/gid gets -EACCES; at 0666 the same client is refused with -EPERM
 * when it asks for nothing (a client accepts only its own user as the
 * daemon), and connects, and a message goes there and back, when it names
 * root with ML_CHAN_DAEMON_UID or accepts any owner. Naming another uid
 * than the owner's gives -EPERM again. Needs root to switch users.
 */
#define PERM_UID 65534

struct perm_shared {
	char name[80];
	uint32_t flags;		/* the client's ML_CHAN_* flags */
	uint32_t daemon_uid;
	int want;		/* what its connect must return */
	_Atomic int done;	/* the client is finished with the daemon */
};

/* Exit status: 0 as expected, 1 otherwise (the reason is in R). */
static int perm_client(void *arg)
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
	o.flags = sh->flags;
	o.daemon_uid = sh->daemon_uid;
	err = ml_client_connect(&c, sh->name, &o);
	CHECK(err == sh->want, "uid %d (flags %#x, daemon_uid %u) connecting: %d (%s), want %d (%s)",
	      PERM_UID, sh->flags, sh->daemon_uid, err, err ? ml_strerror(err) : "ok", sh->want,
	      sh->want ? ml_strerror(sh->want) : "ok");
	if (!sh->want)
		CHECK_RC(roundtrip(c, ML_PRIO_HIGH, "not root", 8, 10 * SEC), 0);
	ret = 0;
out:
	ml_chan_close(c);
	atomic_store(&sh->done, 1);
	return ret;
}

/* One client of `d` with these options; 0 when it got `want`. */
static int perm_case(ml_chan *d, struct perm_shared *sh, uint32_t flags, uint32_t uid, int want)
{
	long served;
	pid_t pid;

	sh->flags = flags;
	sh->daemon_uid = uid;
	sh->want = want;
	atomic_store(&sh->done, 0);
	pid = spawn(perm_client, sh);
	if (pid <= 0) {
		failf("spawn");
		return -1;
	}
	served = serve_echo(d, &sh->done, 20 * SEC);
	if (!reap_ok(pid, "client", 20 * SEC))
		return -1;
	if (served != (want ? 0 : 1)) {
		failf("flags %#x: the daemon served %ld messages, want %d", flags, served,
		      want ? 0 : 1);
		return -1;
	}
	if (want && ml_chan_connected(d) != 0) {
		failf("a refused client shows as connected");
		return -1;
	}
	return 0;
}

int t_perm_other_user(void)
{
	struct perm_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	ml_chan *d = NULL;
	int ret = -1;

	if (geteuid() != 0) {
		skipf("needs root to switch to an unprivileged uid");
		return 1;
	}
	/* 0600: refused by the mode before the daemon ever hears of it. */
	chan_name(sh->name, sizeof(sh->name), "perm600");
	o.mode = 0600;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	CHECK_RC(perm_case(d, sh, ML_CHAN_DAEMON_UID, 0, -EACCES), 0);
	ml_chan_close(d);
	d = NULL;

	/* 0666: the mode admits; the owner decides. */
	chan_name(sh->name, sizeof(sh->name), "perm666");
	o.mode = 0666;
	CHECK_RC(ml_daemon_create(&d, sh->name, &o), 0);
	CHECK_RC(perm_case(d, sh, 0, 0, -EPERM), 0);
	CHECK_RC(perm_case(d, sh, ML_CHAN_DAEMON_UID, 1, -EPERM), 0);
	CHECK_RC(perm_case(d, sh, ML_CHAN_DAEMON_UID, 0, 0), 0);
	CHECK_RC(perm_case(d, sh, ML_CHAN_ANY_DAEMON, 0, 0), 0);
	ret = 0;
out:
	ml_chan_close(d);
	return ret;
}
#endif

// SPDX-License-Identifier: MIT
/*
 * Channel tests: connect errors (missing channel, too many clients, layout
 * or version mismatch) and slot reuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"
#include "chan_layout.h" /* for the tests that corrupt the layout */

struct hold_shared {
	_Atomic int connected;
	_Atomic int release; /* client k leaves when release > k */
	_Atomic int left;
	char name[80];
};

static int hold_client(void *arg)
{
	struct hold_shared *sh = (struct hold_shared *)((uintptr_t)arg & ~(uintptr_t)7);
	int k = (int)((uintptr_t)arg & 7), ret = 1;
	ml_chan *c = NULL;

	CHECK_RC(connect_retry(&c, sh->name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(roundtrip(c, ML_PRIO_HIGH, "hold", 4, 5 * SEC), 0);
	atomic_fetch_add(&sh->connected, 1);
	CHECK(wait_flag(&sh->release, k + 1, 60 * SEC), "never released");
	ml_chan_close(c);
	c = NULL;
	atomic_fetch_add(&sh->left, 1);
	ret = 0;
out:
	ml_chan_close(c);
	return ret;
}

int t_connect_errors(void)
{
	struct hold_shared *sh = shared_map(sizeof(*sh));
	struct ml_chan_opts o = opts_default();
	const char *args[] = { "--role", "serve", sh->name, "2", NULL };
	pid_t daemon = 0, pid[2] = { 0, 0 };
	char missing[80];
	ml_chan *c = NULL, *c2 = NULL, *d2 = NULL;
	int64_t t;
	int err, ret = -1;

	chan_name(missing, sizeof(missing), "missing");
	CHECK_RC(ml_client_connect(&c, missing, &o), -ENOENT);
	CHECK_RC(ml_client_connect(&c, "", &o), -EINVAL);
	CHECK_RC(ml_client_connect(&c, "bad/name", &o), -EINVAL);
	CHECK_RC(ml_client_connect(&c, NULL, &o), -EINVAL);
	{
		char longname[ML_CHAN_NAME_MAX + 2];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = 0;
		CHECK_RC(ml_client_connect(&c, longname, &o), -EINVAL);
		CHECK_RC(ml_daemon_create(&c, longname, &o), -EINVAL);
	}
	{
		struct ml_chan_opts bad = opts_default();

		bad.flags = 1u << 31;
		CHECK_RC(ml_daemon_create(&c, missing, &bad), -EINVAL);
		CHECK_RC(ml_client_connect(&c, missing, &bad), -EINVAL);
		bad.flags = ML_CHAN_DAEMON_UID | ML_CHAN_ANY_DAEMON;
		CHECK_RC(ml_client_connect(&c, missing, &bad), -EINVAL);
		bad = opts_default();
		bad.daemon_uid = 1;	/* without ML_CHAN_DAEMON_UID */
		CHECK_RC(ml_client_connect(&c, missing, &bad), -EINVAL);
		bad = opts_default();
		bad = opts_default();
		bad.max_clients = ML_CHAN_MAX_CLIENTS + 1;
		CHECK_RC(ml_daemon_create(&c, missing, &bad), -EINVAL);
		bad = opts_default();
		bad.ring_size = 1000;
		CHECK_RC(ml_daemon_create(&c, missing, &bad), -EINVAL);
		if (named_backend())
			CHECK(!shm_exists(missing), "a refused create left memlink.%s",
			      missing);
	}

	/* A daemon process with two slots. */
	chan_name(sh->name, sizeof(sh->name), "slots");
	daemon = spawn_exec(args);
	CHECK(daemon > 0, "spawn");
	for (int k = 0; k < 2; k++)
		pid[k] = spawn(hold_client, (void *)((uintptr_t)sh | (uintptr_t)k));
	CHECK(wait_flag(&sh->connected, 2, 10 * SEC), "clients never connected");
	/* A live daemon's name cannot be taken. */
	CHECK_RC(ml_daemon_create(&d2, sh->name, &o), -EEXIST);
	/* Both slots taken. */
	CHECK_RC(ml_client_connect(&c, sh->name, &o), -ECONNREFUSED);
	/* Client 0 leaves: its slot comes back (once the daemon has seen it go). */
	atomic_store(&sh->release, 1);
	CHECK(wait_flag(&sh->left, 1, 10 * SEC), "client 0 never left");
	t = now_ns();
	err = connect_retry(&c, sh->name, 20 * SEC, -ECONNREFUSED);
	t = now_ns() - t;
	CHECK(err == 0, "connect after a client left: %s (after %lld ms)", ml_strerror(err),
	      (long long)(t / MS));
	CHECK_RC(roundtrip(c, ML_PRIO_LOW, "new", 3, 5 * SEC), 0);
	printf("  # a freed slot could be taken %.1f ms after its client left\n", (double)t / 1e6);
	/* Full again. */
	CHECK_RC(ml_client_connect(&c2, sh->name, &o), -ECONNREFUSED);
	atomic_store(&sh->release, 2);
	CHECK(reap_ok(pid[0], "client 0", 10 * SEC), "client 0");
	pid[0] = 0;
	CHECK(reap_ok(pid[1], "client 1", 10 * SEC), "client 1");
	pid[1] = 0;
	ret = 0;
out:
	ml_chan_close(c);
	ml_chan_close(c2);
	ml_chan_close(d2);
	atomic_store(&sh->release, 99);
	for (int k = 0; k < 2; k++)
		if (pid[k] > 0)
			reap(pid[k], 5 * SEC);
	if (daemon > 0) {
		kill(daemon, SIGTERM);
		if (!reap_ok(daemon, "daemon (SIGTERM)", 5 * SEC))
			ret = -1;
		if (named_backend() && shm_exists(sh->name)) {
			failf("memlink.%s left after the daemon closed", sh->name);
			ret = -1;
		}
	}
	return ret;
}

/* Corrupt one field of the control region and expect -EPROTO, then restore. */
int t_layout_mismatch(void)
{
	struct ml_chan_opts o = opts_default();
	char name[80], path[160];
	struct ml__ctl *ctl = NULL;
	ml_chan *d = NULL, *c = NULL;
	struct stat st;
	int fd = -1, ret = -1;

	if (!region_mappable()) {
		skipf("needs a region to map");
		return 1;
	}
	chan_name(name, sizeof(name), "proto");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	if (!posix_shm_backend()) {
		/*
		 * linux: the daemon's own mapping (clients cannot write the
		 * control region: tests/chan/isolate.c); win: the mapping
		 * (its DACL: tests/win).
		 */
		size_t len = 0;

		ctl = (struct ml__ctl *)ctl_map(name, &len);
		CHECK(ctl && len >= ML__CTL_SIZE, "cannot map the region");
	} else {
		snprintf(path, sizeof(path), "/dev/shm/memlink.%s", name);
		fd = open(path, O_RDWR);
		CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
		CHECK(!fstat(fd, &st) && (size_t)st.st_size >= ML__CTL_SIZE, "size");
		/* darwin: 0400 whatever the mode: nobody but its creator (and root) opens it. */
		CHECK((st.st_mode & 0777) == 0400, "mode %o, want 0400",
		      (unsigned)(st.st_mode & 0777));
		ctl = mmap(NULL, ML__CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(ctl != MAP_FAILED, "mmap: %s", strerror(errno));
	}
	CHECK(ctl->magic == ML__CHAN_MAGIC && ctl->version == ML__CHAN_VERSION,
	      "magic %#x version %u", ctl->magic, ctl->version);
	{
		/* Each field alone: version, magic, ctl_size, stride, region size. */
		uint32_t *f32[] = { &ctl->version, &ctl->magic, &ctl->ctl_size, &ctl->max_clients };
		uint32_t bad32[] = { ML__CHAN_VERSION + 1, 0x12345678, 8192, ML_CHAN_MAX_CLIENTS + 1 };
		uint64_t *f64[] = { &ctl->client_stride, &ctl->region_size };

		for (unsigned i = 0; i < 4; i++) {
			uint32_t keep = *f32[i];

			*f32[i] = bad32[i];
			c = NULL;
			int err = ml_client_connect(&c, name, &o);

			*f32[i] = keep;
			CHECK(err == -EPROTO, "field %u corrupted: connect = %d (%s), want -EPROTO", i,
			      err, ml_strerror(err));
		}
		for (unsigned i = 0; i < 2; i++) {
			uint64_t keep = *f64[i];

			*f64[i] = keep * 2;
			c = NULL;
			int err = ml_client_connect(&c, name, &o);

			*f64[i] = keep;
			CHECK(err == -EPROTO, "64-bit field %u corrupted: connect = %d (%s), want -EPROTO",
			      i, err, ml_strerror(err));
		}
	}
	/* Restored: connecting works, and a round trip goes through. */
	c = NULL;
	CHECK_RC(ml_client_connect(&c, name, &o), 0);
	CHECK_RC(ml_chan_send(c, ML_PRIO_HIGH, "v", 1), 0);
	{
		char b[4];
		unsigned cl;
		int prio;

		CHECK_RC(ml_chan_wait(d, 2 * SEC), 0);
		CHECK_RC(ml_chan_recv(d, &prio, &cl, b, sizeof(b)), 1);
		CHECK(prio == ML_PRIO_HIGH && b[0] == 'v', "prio %d byte %c", prio, b[0]);
	}
	ret = 0;
out:
	/* linux's is the daemon's own. */
	if (ctl && ctl != MAP_FAILED && strcmp(active_backend, "linux"))
		munmap(ctl, ML__CTL_SIZE);
	if (fd >= 0)
		close(fd);
	ml_chan_close(c);
	ml_chan_close(d);
	return ret;
}

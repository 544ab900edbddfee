// SPDX-License-Identifier: MIT
/*
 * Channel tests: inspection, listing and collecting dead channels
 * (ml_chan_inspect, ml_chan_list, ml_chan_gc) and the memlink-stat tool.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

static double absd(double v)
{
	return v < 0 ? -v : v;
}

static int find_name(const char *name, void *arg)
{
	return !strcmp(name, (const char *)arg);
}

struct doomed {
	_Atomic int state; /* 1: created its channel, 2: could not */
	char name[80];
};

static int doomed_daemon(void *arg)
{
	struct doomed *sh = arg;
	struct ml_chan_opts o = opts_default();
	ml_chan *d;
	int err = ml_daemon_create(&d, sh->name, &o);

	atomic_store(&sh->state, err ? 2 : 1);
	if (err)
		return 1;
	for (;;)
		pause();
}

/* A daemon that starts and is then killed, leaving its channel behind. */
static int kill_daemon_of(const char *name)
{
	struct doomed *sh = shared_map(sizeof(*sh));
	bool up;
	pid_t pid;

	snprintf(sh->name, sizeof(sh->name), "%s", name);
	pid = spawn(doomed_daemon, sh);
	if (pid <= 0)
		return -1;
	up = wait_flag(&sh->state, 1, 5 * SEC) && atomic_load(&sh->state) == 1;
	kill(pid, SIGKILL);
	return reap(pid, 5 * SEC) != -1 && up ? 0 : -1;
}

/*
 * ml_chan_inspect sees a running channel as its users do (clients, fill
 * levels, heartbeats, backpressure); ml_chan_list lists it; ml_chan_gc
 * leaves it alone while its daemon lives and removes a dead daemon's.
 */
int t_inspect_and_gc(void)
{
	struct ml_chan_opts o = opts_default();
	struct ml_chan_status *st = calloc(1, sizeof(*st));
	char name[80], dead[80];
	ml_chan *d = NULL, *a = NULL, *b = NULL;
	unsigned sa = 99, sb = 99;
	int ret = -1, n;

	CHECK(st, "calloc");
	st->size = sizeof(*st);
	o.max_clients = 4;
	o.ring_size = 16384;
	chan_name(name, sizeof(name), "stat");
	CHECK_RC(ml_daemon_create(&d, name, &o), 0);
	CHECK_RC(ml_client_connect(&a, name, &o), 0);
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	for (int i = 0; i < 20; i++)
		CHECK_RC(ml_chan_send(b, ML_PRIO_LOW, "0123456789abcdef0123456789abcdef", 32), 0);
	CHECK(ml_chan_connected(d) == 1, "not connected");
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	CHECK(!strcmp(st->name, name) && !strcmp(st->backend, active_backend),
	      "name %s backend %s", st->name, st->backend);
	CHECK(st->daemon_alive == 1 && st->daemon_state == 1 && st->daemon_pid == (uint32_t)getpid(),
	      "daemon alive %d state %u pid %u", st->daemon_alive, st->daemon_state,
	      st->daemon_pid);
	CHECK(st->max_clients == 4 && st->clients == 2 && st->ring_size == 16384,
	      "clients %u/%u ring %u", st->clients, st->max_clients, st->ring_size);
	CHECK(st->beat_age_ns >= 0 && st->beat_age_ns < 5 * SEC, "daemon beat age %lld",
	      (long long)st->beat_age_ns);
	for (unsigned i = 0; i < 4; i++) {
		const struct ml_chan_client_status *cs = &st->client[i];

		if (cs->state != 2)
			continue;
		CHECK(cs->alive == 1 && cs->pid == (uint32_t)getpid() && !cs->corrupt,
		      "slot %u: alive %d pid %u corrupt %#x", i, cs->alive, cs->pid, cs->corrupt);
		if (cs->req_used[ML_PRIO_LOW])
			sb = i;
		else
			sa = i;
	}
	/* (linux: as the daemon last saw them; it looked at ml_chan_connected() above.) */
	CHECK(sa < 4 && sb < 4 && sa != sb, "slots: a %u b %u", sa, sb);
	CHECK(st->client[sb].req_used[ML_PRIO_LOW] == 20 * 40, "b's Low lane holds %u bytes",
	      st->client[sb].req_used[ML_PRIO_LOW]);
	CHECK(st->backpressure > 0 && st->backpressure <= 1.0 &&
	      absd(st->backpressure - ml_chan_backpressure(d)) < 1e-9,
	      "backpressure %f, the daemon says %f", st->backpressure, ml_chan_backpressure(d));
	CHECK_RC(ml_chan_set_backpressure(d, 0.25), 0);
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	CHECK(absd(st->backpressure - 0.25) < 1e-6, "override: %f", st->backpressure);
	/* Listed; a live daemon's channel is not collected. */
	CHECK(ml_chan_list(0, find_name, name) == 1, "%s not listed", name);
	CHECK_RC(ml_chan_gc(name, 0), 0);
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	/* A killed daemon's: inspect says so; gc removes it where it stays. */
	chan_name(dead, sizeof(dead), "statdead");
	CHECK(kill_daemon_of(dead) == 0, "the daemon to kill did not start");
	n = ml_chan_inspect(dead, 0, st);
	if (posix_shm_backend()) {
		CHECK(n == 0 && st->daemon_alive == 0, "dead daemon: inspect %d, alive %d", n,
		      st->daemon_alive);
		CHECK(ml_chan_list(0, find_name, dead) == 1, "%s not listed", dead);
		/* By name: other tests' dead channels are theirs to look at. */
		CHECK_RC(ml_chan_gc(dead, 0), 1);
		CHECK(!shm_exists(dead), "memlink.%s left after gc", dead);
	} else {
		/*
		 * The module freed the region with its creator's last file;
		 * Windows its objects with their last handle, and the daemon's
		 * record with it (lib/win/records.c).
		 */
		CHECK(n == -ENOENT, "dead daemon, %s: inspect %d", active_backend, n);
		CHECK_RC(ml_chan_gc(dead, 0), 0);
	}
	CHECK_RC(ml_chan_inspect(dead, 0, st), -ENOENT);
	CHECK(ml_chan_list(0, find_name, dead) == 0, "%s still listed", dead);
	CHECK_RC(ml_chan_inspect(name, 0, st), 0);
	CHECK_RC(ml_chan_inspect("no-such-channel-here", 0, st), -ENOENT);
	/* A PID file for humans: this process's pid, gone with the daemon. */
	{
		char pidfile[128], line[32] = "";
		FILE *f;

#ifdef _WIN32
		snprintf(pidfile, sizeof(pidfile), "%s\\%s.pid",
			 getenv("TEMP") ? getenv("TEMP") : ".", name);
#else
		snprintf(pidfile, sizeof(pidfile), "/tmp/%s.pid", name);
#endif
		CHECK_RC(ml_chan_pidfile(d, pidfile), 0);
		CHECK_RC(ml_chan_pidfile(d, pidfile), -EINVAL);
		CHECK_RC(ml_chan_pidfile(a, pidfile), -EINVAL);
		f = fopen(pidfile, "r");
		CHECK(f && fgets(line, sizeof(line), f), "no pid file %s", pidfile);
		fclose(f);
		CHECK(atoi(line) == (int)getpid(), "pid file says %s", line);
		ml_chan_close(d);
		d = NULL;
		CHECK(access(pidfile, F_OK) != 0, "%s left after close", pidfile);
	}
	st->size = 8;
	CHECK_RC(ml_chan_inspect(name, 0, st), -EINVAL);
	ret = 0;
out:
	free(st);
	ml_chan_close(a);
	ml_chan_close(b);
	ml_chan_close(d);
	return ret;
}

/* Run a shell command line; its output (up to len - 1 bytes) and status. */
static int run_cmd(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (!f)
		return -1;
	while (n + 1 < len && !feof(f)) {
		size_t k = fread(out + n, 1, len - 1 - n, f);

		if (!k)
			break;
		n += k;
	}
	out[n] = '\0';
	st = pclose(f);
#ifdef _WIN32
	return st; /* the exit code itself */
#else
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
#endif
}

/*
 * The memlink-stat tool ($MEMLINK_STAT) against a running daemon process
 * with two clients, then with the daemon killed, then collected.
 */
int t_stat_tool(void)
{
	const char *tool = getenv("MEMLINK_STAT");
	struct ml_chan_opts o = opts_default();
	char name[80], cmd[600], out[8192];
	ml_chan *a = NULL, *b = NULL;
	pid_t daemon = 0;
	int ret = -1, rc = -1;
	int64_t end;

#ifdef _WIN32
	/* By default the one built beside this program (make win). */
	static char beside[PATH_MAX];

	if ((!tool || !*tool) && strrchr(self_exe, '\\')) {
		snprintf(beside, sizeof(beside), "%.*smemlink-stat.exe",
			 (int)(strrchr(self_exe, '\\') + 1 - self_exe), self_exe);
		tool = beside;
	}
#endif
	if (!tool || !*tool) {
		skipf("MEMLINK_STAT does not name the memlink-stat binary");
		return 1;
	}
	chan_name(name, sizeof(name), "tool");
	{
		const char *args[] = { "--role", "serve", name, "4", NULL };

		daemon = spawn_exec(args);
	}
	CHECK(daemon > 0, "spawn");
	CHECK_RC(connect_retry(&a, name, 5 * SEC, -ENOENT), 0);
	CHECK_RC(ml_client_connect(&b, name, &o), 0);
	CHECK_RC(roundtrip(a, ML_PRIO_HIGH, "x", 1, 5 * SEC), 0);
	CHECK_RC(roundtrip(b, ML_PRIO_LOW, "y", 1, 5 * SEC), 0);
	snprintf(cmd, sizeof(cmd), "%s --json %s", tool, name);
	/* The daemon counts its clients as it runs: give it a moment. */
	for (end = now_ns() + 5 * SEC; now_ns() < end; sleep_ms(20)) {
		rc = run_cmd(cmd, out, sizeof(out));
		if (rc == 0 && strstr(out, "\"clients\":2,"))
			break;
	}
	CHECK(rc == 0, "%s: exit %d: %s", cmd, rc, out);
	CHECK(strstr(out, "\"daemon_alive\":true") && strstr(out, "\"clients\":2,") &&
	      strstr(out, "\"max_clients\":4") && strstr(out, "\"state\":\"connected\""),
	      "%s: %s", cmd, out);
	snprintf(cmd, sizeof(cmd), "%s %s", tool, name);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, name) && strstr(out, "alive running") &&
	      strstr(out, "client 0") && strstr(out, "client 1"), "%s: exit %d: %s", cmd, rc, out);
	/* Listing without a name finds it too. */
	snprintf(cmd, sizeof(cmd), "%s --json", tool);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(strstr(out, name), "%s: exit %d, %s not listed", cmd, rc, name);
	/*
	 * The daemon killed: its clients still hold the channel, reported
	 * dead; linux: nothing of it is left to look at.
	 */
	kill(daemon, SIGKILL);
	reap(daemon, 5 * SEC);
	daemon = 0;
	snprintf(cmd, sizeof(cmd), "%s --json %s", tool, name);
	rc = run_cmd(cmd, out, sizeof(out));
	if (!strcmp(active_backend, "linux"))
		CHECK(rc == 1 && strstr(out, "No such channel"), "%s: exit %d: %s", cmd, rc, out);
	else
		CHECK(rc == 0 && strstr(out, "\"daemon_alive\":false"), "%s: exit %d: %s", cmd,
		      rc, out);
	/* (kmod: the module lets no one new in, inspect included.) */
	CHECK(strcmp(active_backend, "kmod") || strstr(out, "The peer is gone"), "%s: %s", cmd, out);
	ml_chan_close(a);
	ml_chan_close(b);
	a = b = NULL;
	/* Collected: removed here, or already freed by the module. */
	snprintf(cmd, sizeof(cmd), "%s --gc %s", tool, name);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(rc == 0 && strstr(out, posix_shm_backend() ? "removed 1 " : "removed 0 "),
	      "%s: exit %d: %s", cmd, rc, out);
	snprintf(cmd, sizeof(cmd), "%s %s", tool, name);
	rc = run_cmd(cmd, out, sizeof(out));
	CHECK(rc == 1 && strstr(out, "No such channel"), "%s after gc: exit %d: %s", cmd, rc, out);
	ret = 0;
out:
	ml_chan_close(a);
	ml_chan_close(b);
	if (daemon > 0) {
		kill(daemon, SIGKILL);
		reap(daemon, 5 * SEC);
	}
	return ret;
}

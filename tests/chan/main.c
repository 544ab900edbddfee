// SPDX-License-Identifier: MIT
/*
 * Channel integration tests: a daemon and its clients as real processes
 * (fork, and fork+exec of this same binary), through whichever backend
 * $MEMLINK_BACKEND names (make test-chan sets "linux"; the VM runs the same
 * program, linked statically, with "kmod").
 *
 * Plain C11 + POSIX, no test framework: every test runs in its own process
 * group under a watchdog and prints "ok N name" or "not ok N name: reason";
 * the last line is "chan: N passed, N failed" and the exit status is
 * non-zero when anything failed.
 *
 *   test-chan [test-name...]        run all tests, or only those named
 * Environment:
 *   MEMLINK_BACKEND  backend to use (kmod|linux|...; default: the library's)
 *   CHAN_MSGS        messages per client in the many-clients tests
 *                    (default 1000000)
 *   CHAN_SEED        seed of the many-clients tests (default: time)
 *   CHAN_WAKE_ROUNDS bursts per pair of modes in no_lost_wakeup
 *                    (default 20000)
 *   CHAN_TIMEOUT     watchdog per test in seconds (default 300)
 *   CHAN_WAIT_MODE   adaptive|blocking|busy for every handle (default
 *                    adaptive)
 *   CHAN_SUITE       name on the summary line (default "chan")
 *   ML_TALLY         a file to append "passed failed" to (make check)
 *
 * Tests that look at /dev/shm or at the control region's bytes only apply
 * to backends with a POSIX shared memory object ("linux", "darwin"); they
 * report "# SKIP" elsewhere.
 *
 * One program: this file runs the tests, util.c holds what they share
 * (chan_test.h), each other file one feature's tests.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proctest.h"
#include "chan_test.h"

static const struct pt_test tests[] = {
	{ "roundtrip_every_priority", t_roundtrip_prios },
	{ "clients_in_turn", t_turns },
	{ "recv_many_same_as_recv", t_recv_many },
	{ "recv_many_edges", t_recv_many_edges },
	{ "recv_view_edges", t_recv_view_edges },
	{ "recv_view_client_leaves", t_recv_view_client_leaves },
	{ "send_many", t_send_many },
	{ "send_reserve_edges", t_send_reserve_edges },
	{ "send_reserve_stream", t_send_reserve_stream },
	{ "no_lost_wakeup", t_no_lost_wakeup },
	{ "no_lost_wakeup_crowded", t_no_lost_wakeup_crowded },
	{ "missed_wakeup_counted", t_missed_wakeup_counted },
	{ "wake_once_a_sleep", t_wake_once },
	{ "topic_edges", t_topic_edges },
	{ "topic_reliable_every_record", t_topic_reliable },
	{ "topic_lossy_gaps_are_losses", t_topic_lossy },
	{ "topic_late_join", t_topic_late_join },
	{ "topic_publisher_sigkill", t_topic_publisher_sigkill },
	{ "topic_subscriber_sigkill", t_topic_subscriber_sigkill },
	{ "topic_read_only", t_topic_read_only },
	{ "topic_no_lost_wakeup", t_topic_wakeup },
	{ "connect_errors_and_slot_reuse", t_connect_errors },
	{ "layout_version_mismatch", t_layout_mismatch },
	{ "full_lane_and_send_wait", t_full_lane },
	{ "room_bell", t_room_bell },
	{ "room_wait", t_room_wait },
	{ "backpressure", t_backpressure },
	{ "shutdown_seen_by_every_client", t_shutdown },
	{ "daemon_close_seen_by_every_client", t_shutdown_by_close },
	{ "daemon_sigkill_wait_returns_epipe", t_daemon_sigkill },
	{ "daemon_sigkill_then_every_call_epipe", t_daemon_sigkill_every_call },
	{ "client_sigkill", t_client_sigkill },
	{ "shm_cleanup_and_replace_dead_daemon", t_shm_cleanup },
	{ "create_race", t_create_race },
	{ "inspect_list_gc", t_inspect_and_gc },
	{ "memlink_stat_tool", t_stat_tool },
	{ "client_dead_mid_send", t_dead_mid_send },
	{ "client_corrupts_a_lane", t_corrupt_lane },
	{ "client_rewrites_ring_config", t_rewritten_ring_config },
	{ "client_goes_back", t_client_goes_back },
	{ "many_clients_4", t_many_clients_4 },
	{ "many_clients_8", t_many_clients_8 },
	{ "other_user_and_mode", t_perm_other_user },
	{ "sock_hostile_peers", t_sock_hostile_peers },
	{ "sock_impostor_daemon", t_sock_impostor_daemon },
	{ "sock_group_mode", t_sock_group_mode },
	{ "sock_gone_or_stopped", t_sock_gone_or_stopped },
	{ "sock_kill_orders", t_sock_kill_orders },
	{ "sock_fd_readiness", t_sock_fd_readiness },
	{ "sock_uid_daemon", t_sock_uid_daemon },
	{ "sock_death_sleepers", t_sock_death_sleepers },
	{ "sock_fds_cloexec", t_sock_fds_cloexec },
	{ "sock_connect_flood", t_sock_connect_flood },
	{ "isolate_no_way_in", t_isolate_no_way_in },
	{ "isolate_scribble", t_isolate_scribble },
	{ "isolate_cut_off", t_isolate_cut_off },
	{ "reuse_late_reply", t_reuse_late_reply },
	{ "reuse_churn", t_reuse_churn },
	{ "reuse_events", t_reuse_events },
	{ "reuse_departure_wakes", t_reuse_departure_wakes },
};

/* Entries of `dirname` named prefix...: removed, and counted. */
static int leftovers_named(const char *dirname, const char *prefix)
{
	struct dirent *e;
	DIR *dir;
	int n = 0;

	dir = opendir(dirname);
	if (!dir)
		return 0;
	while ((e = readdir(dir)))
		if (!strncmp(e->d_name, prefix, strlen(prefix))) {
			char path[300];

			printf("  # left behind: %s/%s\n", dirname, e->d_name);
			snprintf(path, sizeof(path), "%s/%s", dirname, e->d_name);
			unlink(path);
			n++;
		}
	closedir(dir);
	return n;
}

/* Objects (and the darwin backend's lock files) of this run in `dirname`. */
static int leftovers_in(const char *dirname)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "memlink.mlt-%d-", (int)runner_pid);
	return leftovers_named(dirname, prefix);
}

/* linux: sockets of this run's channels still bound (/proc/net/unix). */
static int sockets_left(void)
{
	char line[512], want[64];
	FILE *f = fopen("/proc/net/unix", "re");
	int n = 0;

	if (!f)
		return 0;
	snprintf(want, sizeof(want), " @memlink.mlt-%d-", (int)runner_pid);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, want)) {
			printf("  # left behind: socket%s", strstr(line, want));
			n++;
		}
	fclose(f);
	return n;
}

static int leftovers(void)
{
	/* darwin: areas are unlinked as soon as they are made (lib/darwin/darwin.c). */
	return leftovers_in("/dev/shm") +
	       (!strcmp(active_backend, "darwin") ?
			leftovers_in("/var/tmp") + leftovers_named("/dev/shm", "memlink+") : 0) +
	       (!strcmp(active_backend, "linux") ? sockets_left() : 0);
}

/* win: records (lib/win/records.c) of this run's channels still listed. */
static int count_run(const char *name, void *arg)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "mlt-%d-", (int)runner_pid);
	if (!strncmp(name, prefix, strlen(prefix))) {
		printf("  # left behind: the record of %s\n", name);
		++*(int *)arg;
	}
	return 0;
}

static int wait_mode_from_env(void)
{
	const char *m = getenv("CHAN_WAIT_MODE");

	if (!m || !*m || !strcmp(m, "adaptive"))
		return ML_WAIT_ADAPTIVE;
	if (!strcmp(m, "blocking"))
		return ML_WAIT_BLOCKING;
	if (!strcmp(m, "busy"))
		return ML_WAIT_BUSY;
	fprintf(stderr, "CHAN_WAIT_MODE=%s: want adaptive, blocking or busy\n", m);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *to = getenv("CHAN_TIMEOUT");
	int64_t timeout = (to && *to ? atoll(to) : 300) * SEC;
	struct pt_tally tally = { 0 };
	const char *suite;
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	g_wait_mode = wait_mode_from_env();
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n > 0)
		self_exe[n] = 0;
	else
		snprintf(self_exe, sizeof(self_exe), "%s", argv[0]);

	/* Helper processes: fork+exec of this binary in a role. */
	if (argc >= 3 && !strcmp(argv[1], "--role")) {
		runner_pid = getppid();
		if (!strcmp(argv[2], "serve"))
			return role_serve(argc - 3, argv + 3);
		if (!strcmp(argv[2], "stress-client"))
			return role_stress_client(argc - 3, argv + 3);
		fprintf(stderr, "unknown role %s\n", argv[2]);
		return 2;
	}

	runner_pid = getpid();
	chan_test_inherit();
	pt_init();
	/* Windows: a process started for one test, or a child of one, ends here. */
	pt_child(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
	{
		struct ml_chan_opts o = opts_default();
		char name[80];
		ml_chan *d;
		int err;

		chan_name(name, sizeof(name), "probe");
		err = ml_daemon_create(&d, name, &o);
		if (err) {
			printf("not ok 1 backend: ml_daemon_create with MEMLINK_BACKEND=%s: %s\n",
			       backend_name(), ml_strerror(err));
			printf("chan: 0 passed, 1 failed\n");
			return 1;
		}
		snprintf(active_backend, sizeof(active_backend), "%s", ml_chan_backend(d));
		ml_chan_close(d);
	}
	printf("# memlink %s, backend %s (MEMLINK_BACKEND=%s), %llu messages per client\n",
	       ml_version(), active_backend, backend_name(), (unsigned long long)stress_msgs());

	pt_run(tests, sizeof(tests) / sizeof(tests[0]), argc, argv, timeout, &tally);
	if (named_backend()) {
		char why[64];
		int left = leftovers();

		snprintf(why, sizeof(why), "%d objects", left);
		pt_result(&tally, "nothing_left_behind", !left, why);
	} else if (!strcmp(active_backend, "win")) {
		char why[64];
		int left = 0, err = ml_chan_list(0, count_run, &left);

		snprintf(why, sizeof(why), "%d records (list: %s)", left, err ? ml_strerror(err) : "ok");
		pt_result(&tally, "nothing_left_in_records", !left && !err, why);
	}
	suite = getenv("CHAN_SUITE");
	return pt_finish(suite && *suite ? suite : "chan", &tally);
}

// SPDX-License-Identifier: MIT
/*
 * iceoryx 2.0 through its C binding (Debian: libiceoryx-binding-c-dev,
 * iceoryx). A publisher/subscriber pair each way for round trips, one for
 * streams, N publishers into one subscriber for several producers.
 * Messages are copied into a loaned chunk (like memlink's copy API); the
 * length rides in an 8-byte user header. Publishers wait for a slow
 * subscriber (WAIT_FOR_CONSUMER / BLOCK_PRODUCER), nothing is dropped.
 * Busy mode polls iox_sub_take_chunk; blocking mode ("waitset") sleeps in
 * iox_ws_timed_wait.
 *
 * The bench runs its own iox-roudi: started once before the first row with
 * a configuration of its own (mempools up to 64 KiB messages), tracked by
 * PID (a pid file in /tmp, PR_SET_PDEATHSIG so that it dies with the bench)
 * and stopped with SIGTERM at the end, at exit and on SIGINT/SIGTERM. A
 * roudi left by an earlier run of the bench (same configuration path, PID
 * from the pid file) is stopped first; a roudi of someone else's makes the
 * iceoryx rows skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "peer.h"

#ifdef HAVE_ICEORYX
#include "iceoryx_binding_c/chunk.h"
#include "iceoryx_binding_c/enums.h"
#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/types.h"
#include "iceoryx_binding_c/wait_set.h"

#define ROUDI_CFG "/tmp/memlink-bench-roudi.toml"
#define ROUDI_LOG "/tmp/memlink-bench-roudi.log"
#define ROUDI_PID "/tmp/memlink-bench-roudi.pid"

/* Chunks hold an iceoryx header, our 8-byte user header and the payload. */
static const char roudi_cfg[] =
	"# written by memlink-bench peers\n"
	"[general]\nversion = 1\n\n[[segment]]\n\n"
	"[[segment.mempool]]\nsize = 256\ncount = 2048\n\n"
	"[[segment.mempool]]\nsize = 2048\ncount = 1024\n\n"
	"[[segment.mempool]]\nsize = 8192\ncount = 1024\n\n"
	"[[segment.mempool]]\nsize = 65664\ncount = 320\n";

static pid_t roudi_pid = -1;   /* ours, while it runs */
static pid_t roudi_owner = -1; /* the process that started it */

static bool find_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[512];

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (access(buf, X_OK) == 0)
			return true;
		path += n + (end ? 1 : 0);
	}
	return false;
}

static bool file_has(const char *file, const char *needle)
{
	char buf[8192];
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	for (ssize_t i = 0; i < n; i++)  /* cmdline: NULs between words */
		if (!buf[i])
			buf[i] = ' ';
	return strstr(buf, needle) != NULL;
}

/* A roudi that an earlier run of the bench left behind (its PID in ROUDI_PID). */
static void stop_stale(void)
{
	char proc[64], buf[32];
	FILE *f = fopen(ROUDI_PID, "r");
	long pid = 0;

	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f))
		pid = strtol(buf, NULL, 10);
	fclose(f);
	unlink(ROUDI_PID);
	if (pid <= 1)
		return;
	snprintf(proc, sizeof(proc), "/proc/%ld/cmdline", pid);
	if (!file_has(proc, "iox-roudi") || !file_has(proc, ROUDI_CFG))
		return;
	kill((pid_t)pid, SIGTERM);
	for (int i = 0; i < 300 && kill((pid_t)pid, 0) == 0; i++) {
		snprintf(proc, sizeof(proc), "/proc/%ld/stat", pid);
		if (file_has(proc, ") Z "))
			break;   /* a zombie: its parent will reap it */
		usleep(10000);
	}
	if (kill((pid_t)pid, 0) == 0)
		kill((pid_t)pid, SIGKILL);
}

static void ice_stop(void)
{
	int st;

	if (roudi_pid <= 0 || getpid() != roudi_owner)
		return;
	kill(roudi_pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(roudi_pid, &st, WNOHANG) == roudi_pid) {
			roudi_pid = -1;
			break;
		}
		usleep(10000);
	}
	if (roudi_pid > 0) {
		kill(roudi_pid, SIGKILL);
		waitpid(roudi_pid, &st, 0);
		roudi_pid = -1;
	}
	unlink(ROUDI_PID);
	/*
	 * iceoryx 2.0's RouDi leaves its segments in /dev/shm when it stops
	 * (about 100 MB here): the management segment and one named after
	 * the user. Ours ran alone (it held RouDi's lock), so they are ours.
	 */
	shm_unlink("/iceoryx_mgmt");
	{
		struct passwd *pw = getpwuid(geteuid());
		char seg[128];

		if (pw && pw->pw_name) {
			snprintf(seg, sizeof(seg), "/%s", pw->pw_name);
			shm_unlink(seg);
		}
	}
}

static void on_signal(int sig)
{
	ice_stop();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int ice_start(char *why, size_t len)
{
	static bool hooked;
	FILE *f;
	int st;

	if (!find_in_path("iox-roudi")) {
		snprintf(why, len, "iox-roudi not found (Debian package iceoryx)");
		return -ENOENT;
	}
	stop_stale();
	f = fopen(ROUDI_CFG, "w");
	if (!f || fputs(roudi_cfg, f) < 0 || fclose(f)) {
		snprintf(why, len, "cannot write %s", ROUDI_CFG);
		return -EIO;
	}
	roudi_owner = getpid();
	roudi_pid = fork();
	if (roudi_pid < 0) {
		snprintf(why, len, "fork failed");
		return -errno;
	}
	if (roudi_pid == 0) {
		int fd = open(ROUDI_LOG, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != roudi_owner)
			_exit(1);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setpgid(0, 0);   /* a ^C to the bench reaches it through the bench */
		/*
		 * Monitoring off: a busy-polling process pinned to its CPU can
		 * starve its own keep-alive thread for a second, and RouDi would
		 * then "remove" (kill) it in the middle of a row.
		 */
		execlp("iox-roudi", "iox-roudi", "-c", ROUDI_CFG, "-m", "off", (char *)NULL);
		_exit(127);
	}
	if (!hooked) {
		hooked = true;
		atexit(ice_stop);
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		signal(SIGHUP, on_signal);
	}
	/* Ready when it says so; 15 s at most. */
	for (int i = 0; i < 1500; i++) {
		if (file_has(ROUDI_LOG, "RouDi is ready for clients")) {
			f = fopen(ROUDI_PID, "w");
			if (f) {
				fprintf(f, "%d\n", (int)roudi_pid);
				fclose(f);
			}
			return 0;
		}
		if (waitpid(roudi_pid, &st, WNOHANG) == roudi_pid) {
			roudi_pid = -1;
			snprintf(why, len, "%s", file_has(ROUDI_LOG, "acquire lock") ?
				 "another iox-roudi is running" :
				 "iox-roudi exited at start (see " ROUDI_LOG ")");
			return -EBUSY;
		}
		usleep(10000);
	}
	ice_stop();
	snprintf(why, len, "iox-roudi not ready after 15 s");
	return -ETIMEDOUT;
}

/* ---- one process's end ---------------------------------------------------- */

struct ice_end {
	iox_pub_storage_t pub_st;
	iox_sub_storage_t sub_st;
	iox_ws_storage_t ws_st;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
};

static int ice_open(struct peer_end *e)
{
	const struct peer_row *r = e->row;
	struct ice_end *c = calloc(1, sizeof(*c));
	iox_pub_options_t po;
	iox_sub_options_t so;
	char app[64];
	bool pub_req = e->role == 0, sub_req = e->role == 1;

	if (!c)
		return -ENOMEM;
	e->priv = c;
	snprintf(app, sizeof(app), "mlb-%d", (int)getpid());
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(app);
	iox_pub_options_init(&po);
	po.historyCapacity = 0;
	po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	iox_sub_options_init(&so);
	so.queueCapacity = 256;
	so.historyRequest = 0;
	so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	/* Requests flow 0 -> 1; replies 1 -> 0 when the row is a round trip. */
	if (pub_req || (r->duplex && e->role == 1))
		c->pub = iox_pub_init(&c->pub_st, "mlb", r->name, pub_req ? "req" : "resp", &po);
	if (sub_req || (r->duplex && e->role == 0))
		c->sub = iox_sub_init(&c->sub_st, "mlb", r->name, sub_req ? "req" : "resp", &so);
	if (c->sub && r->mode != PEER_BUSY) {
		c->ws = iox_ws_init(&c->ws_st);
		if (iox_ws_attach_subscriber_state(c->ws, c->sub, SubscriberState_HAS_DATA, 0, NULL) !=
		    WaitSetResult_SUCCESS)
			return -EIO;
	}
	return 0;
}

/* Wait until our subscriber is connected and our publisher has a subscriber. */
static int ice_ready(struct peer_end *e)
{
	struct ice_end *c = e->priv;
	uint64_t t0 = now_ns();

	for (;;) {
		bool sub_ok = !c->sub || iox_sub_get_subscription_state(c->sub) == SubscribeState_SUBSCRIBED;
		bool pub_ok = !c->pub || iox_pub_has_subscribers(c->pub);

		if (sub_ok && pub_ok)
			return 0;
		if (peer_aborted(e))
			return -ECANCELED;
		if (now_ns() - t0 > 10000000000ull)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

static int ice_send(struct peer_end *e, int prio, const void *buf, size_t len)
{
	struct ice_end *c = e->priv;
	uint32_t spins = 0;
	void *p;

	(void)prio;
	for (;;) {
		enum iox_AllocationResult res = iox_pub_loan_aligned_chunk_with_user_header(
			c->pub, &p, (uint32_t)len, 8, sizeof(uint64_t), 8);

		if (res == AllocationResult_SUCCESS)
			break;
		if (res != AllocationResult_RUNNING_OUT_OF_CHUNKS)
			return -ENOMEM;
		peer_pause(e);
		if ((++spins & 1023u) == 0 && peer_aborted(e))
			return -ECANCELED;
	}
	{
		uint64_t l = len;

		memcpy(iox_chunk_header_to_user_header(iox_chunk_header_from_user_payload(p)), &l, 8);
	}
	memcpy(p, buf, len);
	iox_pub_publish_chunk(c->pub, p);
	return 0;
}

static int ice_recv(struct peer_end *e, int *prio, void *buf, size_t cap)
{
	struct ice_end *c = e->priv;
	uint32_t spins = 0;
	const void *p;
	uint64_t len;

	if (prio)
		*prio = 1;
	for (;;) {
		enum iox_ChunkReceiveResult res = iox_sub_take_chunk(c->sub, &p);

		if (res == ChunkReceiveResult_SUCCESS)
			break;
		if (res != ChunkReceiveResult_NO_CHUNK_AVAILABLE)
			return -EIO;
		if (c->ws) {
			struct timespec t = { 0, 100000000 };
			iox_notification_info_t info[1];
			uint64_t missed = 0;

			iox_ws_timed_wait(c->ws, t, info, 1, &missed);
			if (peer_aborted(e))
				return -ECANCELED;
		} else {
			cpu_relax();
			if ((++spins & 1023u) == 0 && peer_aborted(e))
				return -ECANCELED;
		}
	}
	memcpy(&len, iox_chunk_header_to_user_header_const(iox_chunk_header_from_user_payload_const(p)), 8);
	if (len > cap) {
		iox_sub_release_chunk(c->sub, p);
		return -EMSGSIZE;
	}
	memcpy(buf, p, len);
	iox_sub_release_chunk(c->sub, p);
	return (int)len;
}

static void ice_close(struct peer_end *e)
{
	struct ice_end *c = e->priv;

	if (!c)
		return;
	if (c->ws)
		iox_ws_deinit(c->ws);
	if (c->sub)
		iox_sub_deinit(c->sub);
	if (c->pub)
		iox_pub_deinit(c->pub);
	iox_runtime_shutdown();
	/* The runtime leaves its socket and lock file in /tmp: ours, by name. */
	{
		char path[96];

		snprintf(path, sizeof(path), "/tmp/mlb-%d", (int)getpid());
		unlink(path);
		snprintf(path, sizeof(path), "/tmp/mlb-%d.lock", (int)getpid());
		unlink(path);
	}
	free(c);
	e->priv = NULL;
}

const struct peer_ops peer_iceoryx = {
	.name = "iceoryx",
	.modes = PEER_MODE_BIT(PEER_BUSY) | PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.start = ice_start,
	.stop = ice_stop,
	.open = ice_open,
	.ready = ice_ready,
	.send = ice_send,
	.recv = ice_recv,
	.close = ice_close,
};

#else /* !HAVE_ICEORYX */

static const char *ice_skip(void)
{
	return "libiceoryx-binding-c-dev not installed";
}

const struct peer_ops peer_iceoryx = {
	.name = "iceoryx",
	.modes = PEER_MODE_BIT(PEER_BUSY) | PEER_MODE_BIT(PEER_BLOCKING),
	.max_payload = 65536,
	.mpsc = true,
	.skip = ice_skip,
};

#endif
